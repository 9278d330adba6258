/* usb-device: the fallback driver of every USB device (but hubs), served as
 * dfnet.hw.usb.Device (proto/dfnet/hw/usb.proto) through libusb-1.0: remote USB access
 * at the method level, authenticated and encrypted by the fabric.
 *
 *   start  finds the device libusb sees at the node's bus and address ("dfnet.usb.BUS",
 *          "dfnet.usb.ADDRESS", checked against "dfnet.usb.PORT_PATH"), serves Device and
 *          publishes class "usb-device". The device is opened on the first request that
 *          needs it (strings, transfers), so a device the driver host may not open still
 *          serves its descriptors; the open's error goes to that request.
 *   Descriptors come from the kernel's cache (libusb_get_*_descriptor): no bus traffic.
 *   Transfers are libusb's synchronous ones, bounded by the request's timeout and the
 *          call's deadline; they block the dispatcher, hence "allow_sync_calls" in the
 *          manifest. A bulk or interrupt transfer claims the interface that holds the
 *          endpoint for the transfer only, and releases it after. A kernel driver bound to
 *          that interface is detached (and re-attached after) only when the request says
 *          detach_kernel_driver; otherwise the request fails FAILED_PRECONDITION naming it.
 *   An unplugged device fails the request UNAVAILABLE ("no device"); the handle is
 *          dropped and reopened by the next request.
 */
#include <errno.h>
#include <libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/dfnet_usb.h"
#include "dfnet/driver.h"
#include "dfnet/hw/usb.pb.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/start.h"

#define USB_TIMEOUT_DEFAULT_MS 1000u
#define USB_TIMEOUT_MAX_MS 60000u
#define USB_CONTROL_MAX 4096u   /* ControlTransferRequest.data / IN length bound */
#define USB_TRANSFER_MAX 16384u /* TransferRequest.data / TransferReply.data bound */

typedef struct usb_dev {
  dfnet_driver_t *driver;
  libusb_context *usb;
  libusb_device *dev;      /* one reference held */
  libusb_device_handle *h; /* NULL until a request needs it */
  uint32_t bus, address;
  char port_path[32];
  char sysfs_name[64]; /* "1-1.2", for the kernel driver's name in messages */
} usb_dev_t;

/* libusb's error as a status (one edge: every libusb error goes through here). */
static dfnet_status_t status_from_libusb(int rc) {
  switch (rc) {
  case LIBUSB_ERROR_TIMEOUT:
    return DFNET_STATUS_DEADLINE_EXCEEDED;
  case LIBUSB_ERROR_NO_DEVICE:
  case LIBUSB_ERROR_PIPE:
  case LIBUSB_ERROR_IO:
  case LIBUSB_ERROR_INTERRUPTED:
    return DFNET_STATUS_UNAVAILABLE;
  case LIBUSB_ERROR_ACCESS:
    return DFNET_STATUS_PERMISSION_DENIED;
  case LIBUSB_ERROR_BUSY:
    return DFNET_STATUS_FAILED_PRECONDITION;
  case LIBUSB_ERROR_NOT_FOUND:
    return DFNET_STATUS_NOT_FOUND;
  case LIBUSB_ERROR_INVALID_PARAM:
    return DFNET_STATUS_INVALID_ARGUMENT;
  case LIBUSB_ERROR_OVERFLOW:
    return DFNET_STATUS_DATA_LOSS;
  case LIBUSB_ERROR_NO_MEM:
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  case LIBUSB_ERROR_NOT_SUPPORTED:
    return DFNET_STATUS_UNIMPLEMENTED;
  default:
    return DFNET_STATUS_INTERNAL;
  }
}

/* Fail the call with libusb's error; drop the handle when the device is gone. */
static void fail_usb(usb_dev_t *u, dfnet_call_t *call, int rc, const char *what) {
  if (rc == LIBUSB_ERROR_NO_DEVICE && u->h != NULL) {
    libusb_close(u->h);
    u->h = NULL;
  }
  drvkit__fail(call, status_from_libusb(rc), "%s on %s (bus %u address %u): %s%s", what,
               u->port_path, u->bus, u->address, libusb_strerror(rc),
               rc == LIBUSB_ERROR_PIPE ? " (endpoint stalled: the device refused the request)"
                                       : "");
}

/* The open handle, opening the device now if needed; on failure the call is failed. */
static libusb_device_handle *handle(usb_dev_t *u, dfnet_call_t *call) {
  if (u->h == NULL) {
    int rc = libusb_open(u->dev, &u->h);
    if (rc != 0) {
      u->h = NULL;
      fail_usb(u, call, rc, "opening the device");
    }
  }
  return u->h;
}

/* The timeout of a transfer request: 0 -> default, bounded by the call's deadline.
 * Returns false (call failed) when out of range or the deadline has passed. */
static bool transfer_timeout(dfnet_call_t *call, uint32_t requested, unsigned int *out) {
  if (requested > USB_TIMEOUT_MAX_MS) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "timeout_ms %u: at most %u", requested,
                 USB_TIMEOUT_MAX_MS);
    return false;
  }
  uint32_t t = requested != 0 ? requested : USB_TIMEOUT_DEFAULT_MS;
  uint32_t left = dfnet_call_deadline_left_ms(call);
  if (left == 0) {
    drvkit__fail(call, DFNET_STATUS_DEADLINE_EXCEEDED, "the call's deadline has passed");
    return false;
  }
  *out = t < left ? t : left;
  return true;
}

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
    fail_usb(u, call, rc, "reading the device descriptor");
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

/* Append n bytes to out (cap bytes); false when they do not fit. */
static bool append(uint8_t *out, size_t cap, size_t *len, const void *data, size_t n) {
  if (n > cap - *len)
    return false;
  if (n == 0)
    return true; /* libusb leaves `extra` NULL when there is none */
  memcpy(out + *len, data, n);
  *len += n;
  return true;
}

/* The configuration descriptor's bytes as the device sent them, rebuilt from libusb's
 * parse: libusb keeps every descriptor it does not parse, in order, in the `extra` of
 * the descriptor before it, so header + extra, then per interface setting its header +
 * extra and its endpoints' headers + extra, is the original sequence. */
static bool config_raw(const struct libusb_config_descriptor *c, uint8_t *out, size_t cap,
                       size_t *len) {
  uint8_t h[9] = {c->bLength,
                  c->bDescriptorType,
                  0,
                  0,
                  c->bNumInterfaces,
                  c->bConfigurationValue,
                  c->iConfiguration,
                  c->bmAttributes,
                  c->MaxPower};
  put16(h + 2, c->wTotalLength);
  *len = 0;
  if (!append(out, cap, len, h, 9) || !append(out, cap, len, c->extra, (size_t)c->extra_length))
    return false;
  for (int i = 0; i < c->bNumInterfaces; i++) {
    for (int a = 0; a < c->interface[i].num_altsetting; a++) {
      const struct libusb_interface_descriptor *d = &c->interface[i].altsetting[a];
      uint8_t ih[9] = {
          d->bLength,       d->bDescriptorType, d->bInterfaceNumber,   d->bAlternateSetting,
          d->bNumEndpoints, d->bInterfaceClass, d->bInterfaceSubClass, d->bInterfaceProtocol,
          d->iInterface};
      if (!append(out, cap, len, ih, 9) ||
          !append(out, cap, len, d->extra, (size_t)d->extra_length))
        return false;
      for (int e = 0; e < d->bNumEndpoints; e++) {
        const struct libusb_endpoint_descriptor *ep = &d->endpoint[e];
        uint8_t eh[9] = {
            ep->bLength, ep->bDescriptorType, ep->bEndpointAddress, ep->bmAttributes, 0,
            0,           ep->bInterval,       ep->bRefresh,         ep->bSynchAddress};
        put16(eh + 4, ep->wMaxPacketSize);
        size_t n = ep->bLength >= 9 ? 9 : 7; /* audio endpoints carry two more bytes */
        if (!append(out, cap, len, eh, n) ||
            !append(out, cap, len, ep->extra, (size_t)ep->extra_length))
          return false;
      }
    }
  }
  return true;
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
    fail_usb(u, call, rc, "reading the configuration descriptor");
    return;
  }
  dfnet_hw_usb_ConfigDescriptor *r = calloc(1, sizeof *r);
  if (r == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto free_config;
  }
  size_t n = 0;
  if (!config_raw(c, r->raw.bytes, sizeof r->raw.bytes, &n)) {
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
  libusb_device_handle *h = handle(u, call);
  if (h == NULL)
    return;
  uint8_t buf[255];
  uint16_t langid = (uint16_t)req.langid;
  int rc;
  if (req.index != 0 && langid == 0) {
    /* The device's first language (string descriptor 0 lists them). */
    rc = libusb_get_string_descriptor(h, 0, 0, buf, sizeof buf);
    if (rc < 4) {
      fail_usb(u, call, rc < 0 ? rc : LIBUSB_ERROR_IO, "reading the language list");
      return;
    }
    langid = (uint16_t)(buf[2] | buf[3] << 8);
  }
  rc = libusb_get_string_descriptor(h, (uint8_t)req.index, langid, buf, sizeof buf);
  if (rc < 0) {
    fail_usb(u, call, rc, "reading a string descriptor");
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

/* Where an endpoint is: its interface number and transfer type, from the active
 * configuration. Returns OK, NOT_FOUND, or libusb's error as a status (why set). */
static dfnet_status_t find_endpoint(usb_dev_t *u, uint8_t address, int *ifc, int *type, char *why,
                                    size_t cap) {
  struct libusb_config_descriptor *c = NULL;
  int rc = libusb_get_active_config_descriptor(u->dev, &c);
  if (rc != 0) {
    snprintf(why, cap, "no active configuration: %s", libusb_strerror(rc));
    return status_from_libusb(rc);
  }
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  snprintf(why, cap, "endpoint 0x%02x is not in the active configuration", address);
  for (int i = 0; i < c->bNumInterfaces && st != DFNET_STATUS_OK; i++) {
    for (int a = 0; a < c->interface[i].num_altsetting && st != DFNET_STATUS_OK; a++) {
      const struct libusb_interface_descriptor *d = &c->interface[i].altsetting[a];
      for (int e = 0; e < d->bNumEndpoints; e++) {
        if (d->endpoint[e].bEndpointAddress == address) {
          *ifc = d->bInterfaceNumber;
          *type = d->endpoint[e].bmAttributes & 0x3;
          st = DFNET_STATUS_OK;
          break;
        }
      }
    }
  }
  libusb_free_config_descriptor(c);
  return st;
}

/* The name of the kernel driver bound to interface ifc, from sysfs ("usbhid"), or
 * "a kernel driver". */
static void kernel_driver_name(const usb_dev_t *u, int ifc, char *out, size_t cap) {
  snprintf(out, cap, "a kernel driver");
  struct libusb_config_descriptor *c = NULL;
  if (u->sysfs_name[0] == '\0' || libusb_get_active_config_descriptor(u->dev, &c) != 0)
    return;
  char path[256], target[1024];
  snprintf(path, sizeof path, "/sys/bus/usb/devices/%s:%u.%d/driver", u->sysfs_name,
           c->bConfigurationValue, ifc);
  libusb_free_config_descriptor(c);
  if (drvkit__read_link(path, target, sizeof target) == DFNET_STATUS_OK)
    snprintf(out, cap, "kernel driver %s", drvkit__basename(target));
}

/* An interface taken for one transfer. */
typedef struct claim {
  int ifc;
  bool detached;
  bool claimed;
} claim_t;

/* Claim interface ifc, detaching its kernel driver only when `detach`. On failure the
 * call is failed and false returned. */
static bool claim(usb_dev_t *u, dfnet_call_t *call, int ifc, bool detach, claim_t *cl) {
  *cl = (claim_t){.ifc = ifc};
  int active = libusb_kernel_driver_active(u->h, ifc);
  if (active == 1 && !detach) {
    char name[128];
    kernel_driver_name(u, ifc, name, sizeof name);
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION,
                 "interface %d of %s is held by %s; set detach_kernel_driver to take it for "
                 "the transfer",
                 ifc, u->port_path, name);
    return false;
  }
  if (active == 1) {
    int rc = libusb_detach_kernel_driver(u->h, ifc);
    if (rc != 0) {
      fail_usb(u, call, rc, "detaching the kernel driver");
      return false;
    }
    cl->detached = true;
  }
  int rc = libusb_claim_interface(u->h, ifc);
  if (rc != 0) {
    if (cl->detached)
      (void)libusb_attach_kernel_driver(u->h, ifc);
    fail_usb(u, call, rc,
             rc == LIBUSB_ERROR_BUSY ? "claiming the interface (another program "
                                       "has it)"
                                     : "claiming the interface");
    return false;
  }
  cl->claimed = true;
  return true;
}

static void release(usb_dev_t *u, claim_t *cl) {
  if (u->h == NULL)
    return;
  if (cl->claimed)
    (void)libusb_release_interface(u->h, cl->ifc);
  if (cl->detached && libusb_attach_kernel_driver(u->h, cl->ifc) != 0)
    dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_WARN,
                     "could not re-attach the kernel driver of interface %d", cl->ifc);
}

/* Release the transfer's interface, then reply: the bytes moved (IN data), or the error
 * with how far it got. */
static void transfer_done(usb_dev_t *u, dfnet_call_t *call, claim_t *cl, int rc, const uint8_t *in,
                          int transferred, const char *what) {
  release(u, cl);
  if (rc < 0 && rc != LIBUSB_ERROR_TIMEOUT) {
    fail_usb(u, call, rc, what);
    return;
  }
  if (rc == LIBUSB_ERROR_TIMEOUT) {
    drvkit__fail(call, DFNET_STATUS_DEADLINE_EXCEEDED, "%s timed out after %d bytes", what,
                 transferred);
    return;
  }
  dfnet_hw_usb_TransferReply *r = calloc(1, sizeof *r);
  if (r == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (in != NULL && transferred > 0) {
    memcpy(r->data.bytes, in, (size_t)transferred);
    r->data.size = (pb_size_t)transferred;
  }
  r->transferred = (uint32_t)transferred;
  drvkit__reply(call, dfnet_hw_usb_TransferReply_fields, r);
  free(r);
}

/* A transfer request (decoded on the heap: the messages are large) and the data buffer. */
typedef struct transfer_mem {
  void *req;
  uint8_t *buf;
} transfer_mem_t;

/* Allocate the request (req_size bytes) and buf_size bytes of data buffer, and decode the
 * request as `fields`. On failure the call is failed and false returned; free with
 * transfer_free either way. */
static bool transfer_begin(dfnet_call_t *call, const pb_msgdesc_t *fields, size_t req_size,
                           size_t buf_size, const uint8_t *request, size_t len,
                           transfer_mem_t *mem) {
  mem->req = calloc(1, req_size);
  mem->buf = malloc(buf_size);
  if (mem->req == NULL || mem->buf == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return false;
  }
  return drvkit__decode(call, fields, mem->req, request, len);
}

static void transfer_free(transfer_mem_t *mem) {
  free(mem->buf);
  free(mem->req);
}

/* /dfnet.hw.usb.Device/ControlTransfer */
static void control_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  transfer_mem_t mem;
  if (!transfer_begin(call, dfnet_hw_usb_ControlTransferRequest_fields,
                      sizeof(dfnet_hw_usb_ControlTransferRequest), USB_CONTROL_MAX, request, len,
                      &mem))
    goto free_request;
  dfnet_hw_usb_ControlTransferRequest *req = mem.req;
  uint8_t *buf = mem.buf;
  bool in = (req->request_type & LIBUSB_ENDPOINT_IN) != 0;
  unsigned int timeout;
  if (req->request_type > 0xff || req->request > 0xff || req->value > 0xffff ||
      req->index > 0xffff || (in && req->length > USB_CONTROL_MAX) || (in && req->data.size > 0) ||
      (!in && req->length > 0)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "bmRequestType/bRequest are bytes, wValue/wIndex 16 bits; IN (bit 7 of "
                 "request_type) takes `length` up to %u, OUT takes `data`",
                 USB_CONTROL_MAX);
    goto free_request;
  }
  if (!transfer_timeout(call, req->timeout_ms, &timeout) || handle(u, call) == NULL)
    goto free_request;
  /* A request to an interface goes through its claim when the caller asks to take it
   * from its kernel driver. */
  claim_t cl = {0};
  bool to_interface = (req->request_type & 0x1f) == LIBUSB_RECIPIENT_INTERFACE;
  if (to_interface && req->detach_kernel_driver && !claim(u, call, req->index & 0xff, true, &cl))
    goto free_request;
  uint16_t length = in ? (uint16_t)req->length : (uint16_t)req->data.size;
  if (!in)
    memcpy(buf, req->data.bytes, req->data.size);
  int rc =
      libusb_control_transfer(u->h, (uint8_t)req->request_type, (uint8_t)req->request,
                              (uint16_t)req->value, (uint16_t)req->index, buf, length, timeout);
  transfer_done(u, call, &cl, rc < 0 ? rc : 0, in ? buf : NULL, rc < 0 ? 0 : rc,
                "control transfer");
free_request:
  transfer_free(&mem);
}

/* Bulk and interrupt transfers. */
static void endpoint_transfer(usb_dev_t *u, dfnet_call_t *call, const uint8_t *request, size_t len,
                              int want_type) {
  const char *what =
      want_type == LIBUSB_TRANSFER_TYPE_BULK ? "bulk transfer" : "interrupt transfer";
  transfer_mem_t mem;
  if (!transfer_begin(call, dfnet_hw_usb_TransferRequest_fields,
                      sizeof(dfnet_hw_usb_TransferRequest), USB_TRANSFER_MAX, request, len, &mem))
    goto free_request;
  dfnet_hw_usb_TransferRequest *req = mem.req;
  uint8_t *buf = mem.buf;
  bool in = (req->endpoint & LIBUSB_ENDPOINT_IN) != 0;
  if (req->endpoint > 0xff || (req->endpoint & 0x0f) == 0 ||
      (in && (req->length == 0 || req->length > USB_TRANSFER_MAX || req->data.size > 0)) ||
      (!in && req->length > 0)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "endpoint 0x%02x: an IN endpoint (bit 7) takes `length` 1..%u, an OUT one "
                 "takes `data`; endpoint 0 is for ControlTransfer",
                 req->endpoint, USB_TRANSFER_MAX);
    goto free_request;
  }
  char why[160];
  int ifc = -1, type = -1;
  dfnet_status_t st = find_endpoint(u, (uint8_t)req->endpoint, &ifc, &type, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    drvkit__fail(call, st, "%s", why);
    goto free_request;
  }
  if (type != want_type) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "endpoint 0x%02x is not a%s endpoint",
                 req->endpoint, want_type == LIBUSB_TRANSFER_TYPE_BULK ? " bulk" : "n interrupt");
    goto free_request;
  }
  unsigned int timeout;
  claim_t cl;
  if (!transfer_timeout(call, req->timeout_ms, &timeout) || handle(u, call) == NULL ||
      !claim(u, call, ifc, req->detach_kernel_driver, &cl))
    goto free_request;
  int length = in ? (int)req->length : (int)req->data.size;
  if (!in)
    memcpy(buf, req->data.bytes, req->data.size);
  int transferred = 0;
  int rc =
      want_type == LIBUSB_TRANSFER_TYPE_BULK
          ? libusb_bulk_transfer(u->h, (uint8_t)req->endpoint, buf, length, &transferred, timeout)
          : libusb_interrupt_transfer(u->h, (uint8_t)req->endpoint, buf, length, &transferred,
                                      timeout);
  transfer_done(u, call, &cl, rc, in ? buf : NULL, transferred, what);
free_request:
  transfer_free(&mem);
}

/* /dfnet.hw.usb.Device/BulkTransfer */
static void bulk_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  endpoint_transfer(ctx, call, request, len, LIBUSB_TRANSFER_TYPE_BULK);
}

/* /dfnet.hw.usb.Device/InterruptTransfer */
static void interrupt_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  endpoint_transfer(ctx, call, request, len, LIBUSB_TRANSFER_TYPE_INTERRUPT);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

/* "<bus>-<port>.<port>..." of a device ("1-0" for a root hub), as host/enum/usb.c. */
static void port_path_of(libusb_device *dev, char *out, size_t cap) {
  uint8_t ports[8];
  int n = libusb_get_port_numbers(dev, ports, 8);
  int o = snprintf(out, cap, "%u-", libusb_get_bus_number(dev));
  if (n <= 0)
    snprintf(out + o, cap - (size_t)o, "0");
  for (int i = 0; i < n && (size_t)o < cap; i++)
    o += snprintf(out + o, cap - (size_t)o, i == 0 ? "%u" : ".%u", ports[i]);
}

/* Find the node's device among libusb's; a reference is taken. */
static dfnet_status_t find_device(usb_dev_t *u, const char *want_port, char *why, size_t cap) {
  libusb_device **list = NULL;
  ssize_t n = libusb_get_device_list(u->usb, &list);
  if (n < 0) {
    snprintf(why, cap, "cannot list USB devices: %s", libusb_strerror((int)n));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  for (ssize_t i = 0; i < n && u->dev == NULL; i++) {
    if (libusb_get_bus_number(list[i]) == u->bus &&
        libusb_get_device_address(list[i]) == u->address)
      u->dev = libusb_ref_device(list[i]);
  }
  libusb_free_device_list(list, 1);
  if (u->dev == NULL) {
    snprintf(why, cap, "no USB device at bus %u address %u (unplugged?)", u->bus, u->address);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  port_path_of(u->dev, u->port_path, sizeof u->port_path);
  if (want_port != NULL && strcmp(want_port, u->port_path) != 0) {
    snprintf(why, cap,
             "the device at bus %u address %u is at port %s, not %.32s: the node "
             "is stale (re-plugged?)",
             u->bus, u->address, u->port_path, want_port);
    libusb_unref_device(u->dev);
    u->dev = NULL;
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t usb_device_start(dfnet_driver_t *driver, void *ctx) {
  usb_dev_t *u = ctx;
  char why[400];
  u->driver = driver;
  if (!drvkit__prop_uint(driver, 0, BIND_DFNET_USB_BUS, &u->bus) ||
      !drvkit__prop_uint(driver, 0, BIND_DFNET_USB_ADDRESS, &u->address)) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "the node lacks \"dfnet.usb.BUS\" / \"dfnet.usb.ADDRESS\": not a USB "
                     "device published by dfnet-host");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  const char *sysfs_name = drvkit__prop_string(driver, BIND_DFNET_USB_SYSFS_NAME);
  if (sysfs_name != NULL && strchr(sysfs_name, '/') == NULL)
    snprintf(u->sysfs_name, sizeof u->sysfs_name, "%s", sysfs_name);
  int rc = libusb_init(&u->usb);
  if (rc != 0) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "libusb_init: %s", libusb_strerror(rc));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  dfnet_status_t st =
      find_device(u, drvkit__prop_string(driver, BIND_DFNET_USB_PORT_PATH), why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    goto exit_libusb;
  }
  static const dfnet_method_t methods[] = {
      {.name = "GetDeviceDescriptor", .handler = get_device_descriptor},
      {.name = "GetConfigDescriptor", .handler = get_config_descriptor},
      {.name = "GetStringDescriptor", .handler = get_string_descriptor},
      {.name = "ControlTransfer", .handler = control_transfer},
      {.name = "BulkTransfer", .handler = bulk_transfer},
      {.name = "InterruptTransfer", .handler = interrupt_transfer},
  };
  st = drvkit__serve(driver, "dfnet.hw.usb.Device", methods, 6, "usb-device");
  if (st != DFNET_STATUS_OK)
    goto unref_device;
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving USB device %s (bus %u address %u)",
                   u->port_path, u->bus, u->address);
  return DFNET_STATUS_OK;

unref_device:
  libusb_unref_device(u->dev);
exit_libusb:
  libusb_exit(u->usb);
  return st;
}

static void usb_device_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  usb_dev_t *u = ctx;
  if (u->h != NULL)
    libusb_close(u->h);
  libusb_unref_device(u->dev);
  libusb_exit(u->usb);
}

static const dfnet_driver_ops_t usb_device_ops = {
    .api_version = DFNET_DRIVER_API_VERSION,
    .name = "usb-device",
    .ctx_size = sizeof(usb_dev_t),
    .start = usb_device_start,
    .stop = usb_device_stop,
};
DFNET_DRIVER_EXPORT(usb_device_ops);
