/* usb-device: dfnet.hw.usb.Device, the whole device for remote clients
 * (proto/dfnet/hw/usb.proto).
 *
 *   Descriptors come from the kernel's cache (libusb_get_*_descriptor): no bus traffic.
 *   Transfers are libusb's synchronous ones, bounded by the request's timeout and the
 *          call's deadline. A bulk or interrupt transfer claims the interface that holds the
 *          endpoint for the transfer only, and releases it after. A kernel driver bound to
 *          that interface is detached (and re-attached after) only when the request says
 *          detach_kernel_driver; otherwise the request fails FAILED_PRECONDITION naming it.
 *          An interface an interface child's driver holds (Interface, interface.c) is that
 *          driver's: transfers on it are FAILED_PRECONDITION naming the child.
 *   An unplugged device fails the request UNAVAILABLE ("no device"); its node goes with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/common/drvkit.h"
#include "drivers/usb-device/usb_device.h"

/* ---- descriptors -------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v & 0xff);
  p[1] = (uint8_t)(v >> 8);
}

/* /dfnet.hw.usb.Device/GetDeviceDescriptor */
static void get_device_descriptor(void *ctx, dfnet_call_t *call, const uint8_t *request,
                                  size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_GetDeviceDescriptorRequest req = dfnet_hw_usb_GetDeviceDescriptorRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_usb_GetDeviceDescriptorRequest_fields, &req, request, len))
    return;
  struct libusb_device_descriptor d;
  int rc = libusb_get_device_descriptor(u->dev, &d);
  if (rc != 0) {
    usbdev__fail(u, call, rc, "reading the device descriptor");
    return;
  }
  dfnet_hw_usb_DeviceDescriptor r = dfnet_hw_usb_DeviceDescriptor_init_zero;
  /* The 18 bytes as on the wire (USB 2.0 table 9-8); libusb keeps them host-endian. */
  uint8_t *raw = r.raw.bytes;
  raw[0] = d.bLength;
  raw[1] = d.bDescriptorType;
  put16(raw + 2, d.bcdUSB);
  raw[4] = d.bDeviceClass;
  raw[5] = d.bDeviceSubClass;
  raw[6] = d.bDeviceProtocol;
  raw[7] = d.bMaxPacketSize0;
  put16(raw + 8, d.idVendor);
  put16(raw + 10, d.idProduct);
  put16(raw + 12, d.bcdDevice);
  raw[14] = d.iManufacturer;
  raw[15] = d.iProduct;
  raw[16] = d.iSerialNumber;
  raw[17] = d.bNumConfigurations;
  r.raw.size = 18;
  r.usb_version = d.bcdUSB;
  r.device_class = d.bDeviceClass;
  r.device_subclass = d.bDeviceSubClass;
  r.device_protocol = d.bDeviceProtocol;
  r.max_packet_size0 = d.bMaxPacketSize0;
  r.vendor_id = d.idVendor;
  r.product_id = d.idProduct;
  r.device_version = d.bcdDevice;
  r.manufacturer_index = d.iManufacturer;
  r.product_index = d.iProduct;
  r.serial_number_index = d.iSerialNumber;
  r.num_configurations = d.bNumConfigurations;
  r.bus = u->bus;
  r.address = u->address;
  snprintf(r.port_path, sizeof r.port_path, "%s", u->port_path);
  drvkit__reply(call, dfnet_hw_usb_DeviceDescriptor_fields, &r);
}

/* /dfnet.hw.usb.Device/GetConfigDescriptor */
static void get_config_descriptor(void *ctx, dfnet_call_t *call, const uint8_t *request,
                                  size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_GetConfigDescriptorRequest req = dfnet_hw_usb_GetConfigDescriptorRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_usb_GetConfigDescriptorRequest_fields, &req, request, len))
    return;
  struct libusb_device_descriptor d;
  int rc = libusb_get_device_descriptor(u->dev, &d);
  if (rc == 0 && req.index >= d.bNumConfigurations) {
    drvkit__fail(call, DFNET_STATUS_NOT_FOUND, "configuration %u: the device has %u", req.index,
                 d.bNumConfigurations);
    return;
  }
  struct libusb_config_descriptor *c = NULL;
  if (rc == 0)
    rc = libusb_get_config_descriptor(u->dev, (uint8_t)req.index, &c);
  if (rc != 0) {
    usbdev__fail(u, call, rc, "reading the configuration descriptor");
    return;
  }
  dfnet_hw_usb_ConfigDescriptor *r = drvkit__calloc(call, sizeof *r);
  if (r == NULL)
    goto free_config;
  size_t n = 0;
  if (!usbdev__config_raw(c, r->raw.bytes, sizeof r->raw.bytes, &n)) {
    drvkit__fail(call, DFNET_STATUS_OUT_OF_RANGE, "configuration %u is over %zu bytes", req.index,
                 sizeof r->raw.bytes);
    goto free_reply;
  }
  r->raw.size = (pb_size_t)n;
  r->configuration_value = c->bConfigurationValue;
  r->num_interfaces = c->bNumInterfaces;
  struct libusb_config_descriptor *active = NULL;
  if (libusb_get_active_config_descriptor(u->dev, &active) == 0) {
    r->active = active->bConfigurationValue == c->bConfigurationValue;
    libusb_free_config_descriptor(active);
  }
  drvkit__reply(call, dfnet_hw_usb_ConfigDescriptor_fields, r);
free_reply:
  free(r);
free_config:
  libusb_free_config_descriptor(c);
}

/* UTF-16LE (n bytes) to UTF-8 in out[cap] (NUL-terminated); unpaired surrogates become
 * U+FFFD. */
static void utf16le_to_utf8(const uint8_t *in, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i + 1 < n && o + 4 < cap; i += 2) {
    uint32_t c = (uint32_t)in[i] | (uint32_t)in[i + 1] << 8;
    if (c >= 0xd800 && c <= 0xdbff && i + 3 < n) {
      uint32_t lo = (uint32_t)in[i + 2] | (uint32_t)in[i + 3] << 8;
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        i += 2;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x80) {
      out[o++] = (char)c;
    } else if (c < 0x800) {
      out[o++] = (char)(0xc0 | c >> 6);
      out[o++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out[o++] = (char)(0xe0 | c >> 12);
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (c & 0x3f));
    } else {
      out[o++] = (char)(0xf0 | c >> 18);
      out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (c & 0x3f));
    }
  }
  out[o] = '\0';
}

/* /dfnet.hw.usb.Device/GetStringDescriptor */
static void get_string_descriptor(void *ctx, dfnet_call_t *call, const uint8_t *request,
                                  size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_GetStringDescriptorRequest req = dfnet_hw_usb_GetStringDescriptorRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_usb_GetStringDescriptorRequest_fields, &req, request, len))
    return;
  if (req.index > 255 || req.langid > 0xffff) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "index %u / langid 0x%x out of range",
                 req.index, req.langid);
    return;
  }
  libusb_device_handle *h = usbdev__handle(u, call);
  if (h == NULL)
    return;
  uint8_t buf[255];
  uint16_t langid = (uint16_t)req.langid;
  int rc;
  if (req.index != 0 && langid == 0) {
    /* The device's first language (string descriptor 0 lists them). */
    rc = libusb_get_string_descriptor(h, 0, 0, buf, sizeof buf);
    if (rc < 4) {
      usbdev__fail(u, call, rc < 0 ? rc : LIBUSB_ERROR_IO, "reading the language list");
      return;
    }
    langid = (uint16_t)(buf[2] | buf[3] << 8);
  }
  rc = libusb_get_string_descriptor(h, (uint8_t)req.index, langid, buf, sizeof buf);
  if (rc < 0) {
    usbdev__fail(u, call, rc, "reading a string descriptor");
    return;
  }
  if (rc < 2 || buf[1] != LIBUSB_DT_STRING || buf[0] > rc) {
    drvkit__fail(call, DFNET_STATUS_DATA_LOSS, "string descriptor %u: malformed (%d bytes)",
                 req.index, rc);
    return;
  }
  dfnet_hw_usb_StringDescriptor r = dfnet_hw_usb_StringDescriptor_init_zero;
  size_t n = (size_t)buf[0] - 2;
  memcpy(r.raw.bytes, buf + 2, n);
  r.raw.size = (pb_size_t)n;
  r.langid = langid;
  if (req.index != 0)
    utf16le_to_utf8(buf + 2, n, r.text, sizeof r.text);
  drvkit__reply(call, dfnet_hw_usb_StringDescriptor_fields, &r);
}

/* ---- transfers ------------------------------------------------------------------------ */

/* Refuse (FAILED_PRECONDITION) a transfer on interface ifc when an interface child's
 * driver holds it. */
static bool not_held(const usb_dev_t *u, dfnet_call_t *call, int ifc) {
  char child[600];
  if (ifc < 0 || !usbdev__held_by_child(u, ifc, child, sizeof child))
    return true;
  drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION,
               "interface %d of %s is held by the driver of %s (dfnet.hw.usb.Interface)", ifc,
               u->port_path, child);
  return false;
}

/* The interface a control request addresses (recipient interface: wIndex's low byte;
 * recipient endpoint: the interface of that endpoint), or -1. */
static int control_interface(const usb_dev_t *u, const dfnet_hw_usb_ControlTransferRequest *req) {
  uint32_t recipient = req->request_type & 0x1f;
  if (recipient == LIBUSB_RECIPIENT_INTERFACE)
    return (int)(req->index & 0xff);
  usbdev_endpoint_t ep;
  char why[128];
  if (recipient == LIBUSB_RECIPIENT_ENDPOINT && (req->index & 0x0f) != 0 &&
      usbdev__find_endpoint(u, (uint8_t)(req->index & 0xff), &ep, why, sizeof why) ==
          DFNET_STATUS_OK)
    return ep.ifc;
  return -1;
}

/* /dfnet.hw.usb.Device/ControlTransfer */
static void control_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  usbdev_mem_t mem;
  if (!usbdev__mem_begin(call, dfnet_hw_usb_ControlTransferRequest_fields,
                         sizeof(dfnet_hw_usb_ControlTransferRequest), USBDEV_CONTROL_MAX, request,
                         len, &mem))
    goto free_request;
  dfnet_hw_usb_ControlTransferRequest *req = mem.req;
  unsigned int timeout;
  if (!usbdev__control_valid(call, req) || !not_held(u, call, control_interface(u, req)) ||
      !usbdev__timeout(call, req->timeout_ms, &timeout) || usbdev__handle(u, call) == NULL)
    goto free_request;
  /* A request to an interface goes through its claim when the caller asks to take it
   * from its kernel driver. */
  usbdev_claim_t cl = {0};
  bool to_interface = (req->request_type & 0x1f) == LIBUSB_RECIPIENT_INTERFACE;
  if (to_interface && req->detach_kernel_driver &&
      !usbdev__claim(u, call, (int)(req->index & 0xff), true, &cl))
    goto free_request;
  usbdev__control_run(u, call, req, timeout, mem.buf, &cl);
free_request:
  usbdev__mem_free(&mem);
}

/* /dfnet.hw.usb.Device/BulkTransfer and /dfnet.hw.usb.Device/InterruptTransfer */
static void endpoint_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  int want_type = usbdev__method_transfer_type(call);
  usbdev_mem_t mem;
  if (!usbdev__mem_begin(call, dfnet_hw_usb_TransferRequest_fields,
                         sizeof(dfnet_hw_usb_TransferRequest), USBDEV_TRANSFER_MAX, request, len,
                         &mem))
    goto free_request;
  dfnet_hw_usb_TransferRequest *req = mem.req;
  if (!usbdev__transfer_valid(call, req))
    goto free_request;
  char why[160];
  usbdev_endpoint_t ep;
  dfnet_status_t st = usbdev__find_endpoint(u, (uint8_t)req->endpoint, &ep, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    drvkit__fail(call, st, "%s", why);
    goto free_request;
  }
  if (ep.type != want_type) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "endpoint 0x%02x is not %s endpoint",
                 req->endpoint, usbdev__type_name(want_type));
    goto free_request;
  }
  unsigned int timeout;
  usbdev_claim_t cl;
  if (!not_held(u, call, ep.ifc) || !usbdev__timeout(call, req->timeout_ms, &timeout) ||
      usbdev__handle(u, call) == NULL ||
      !usbdev__claim(u, call, ep.ifc, req->detach_kernel_driver, &cl))
    goto free_request;
  usbdev__endpoint_run(u, call, req, want_type, timeout, mem.buf, &cl);
free_request:
  usbdev__mem_free(&mem);
}

const dfnet_method_t usbdev__device_methods[] = {
    {.name = "GetDeviceDescriptor", .handler = get_device_descriptor},
    {.name = "GetConfigDescriptor", .handler = get_config_descriptor},
    {.name = "GetStringDescriptor", .handler = get_string_descriptor},
    {.name = "ControlTransfer", .handler = control_transfer},
    {.name = "BulkTransfer", .handler = endpoint_transfer},
    {.name = "InterruptTransfer", .handler = endpoint_transfer},
};
const size_t usbdev__device_method_count =
    sizeof usbdev__device_methods / sizeof usbdev__device_methods[0];
