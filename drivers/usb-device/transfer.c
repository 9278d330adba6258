/* usb-device: what the Device and Interface services share (usb_device.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/common/drvkit.h"
#include "drivers/usb-device/usb_device.h"

dfnet_status_t usbdev__status_from_libusb(int rc) {
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

void usbdev__fail(usb_dev_t *u, dfnet_call_t *call, int rc, const char *what) {
  if (rc == LIBUSB_ERROR_NO_DEVICE)
    u->gone = true;
  drvkit__fail(call, usbdev__status_from_libusb(rc), "%s on %s (bus %u address %u): %s%s%s%s", what,
               u->port_path, u->bus, u->address, libusb_strerror(rc),
               rc == LIBUSB_ERROR_PIPE ? " (endpoint stalled: the device refused the request)" : "",
               rc == LIBUSB_ERROR_ACCESS ? "; check the permissions of " : "",
               rc == LIBUSB_ERROR_ACCESS ? u->device_file : "");
}

libusb_device_handle *usbdev__handle(usb_dev_t *u, dfnet_call_t *call) {
  if (u->gone) {
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE,
                 "the device at %s (bus %u address %u) is gone (unplugged)", u->port_path, u->bus,
                 u->address);
    return NULL;
  }
  if (u->h == NULL) {
    int rc = libusb_open(u->dev, &u->h);
    if (rc != 0) {
      u->h = NULL;
      usbdev__fail(u, call, rc, "opening the device");
    }
  }
  return u->h;
}

bool usbdev__timeout(dfnet_call_t *call, uint32_t requested, unsigned int *out) {
  if (requested > USBDEV_TIMEOUT_MAX_MS) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "timeout_ms %u: at most %u", requested,
                 USBDEV_TIMEOUT_MAX_MS);
    return false;
  }
  uint32_t t = requested != 0 ? requested : USBDEV_TIMEOUT_DEFAULT_MS;
  uint32_t left = dfnet_call_deadline_left_ms(call);
  if (left == 0) {
    drvkit__fail(call, DFNET_STATUS_DEADLINE_EXCEEDED, "the call's deadline has passed");
    return false;
  }
  *out = t < left ? t : left;
  return true;
}

dfnet_status_t usbdev__find_endpoint(const usb_dev_t *u, uint8_t address, usbdev_endpoint_t *out,
                                     char *why, size_t cap) {
  struct libusb_config_descriptor *c = NULL;
  int rc = libusb_get_active_config_descriptor(u->dev, &c);
  if (rc != 0) {
    snprintf(why, cap, "no active configuration: %s", libusb_strerror(rc));
    return usbdev__status_from_libusb(rc);
  }
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  snprintf(why, cap, "endpoint 0x%02x is not in the active configuration", address);
  for (int i = 0; i < c->bNumInterfaces && st != DFNET_STATUS_OK; i++) {
    for (int a = 0; a < c->interface[i].num_altsetting && st != DFNET_STATUS_OK; a++) {
      const struct libusb_interface_descriptor *d = &c->interface[i].altsetting[a];
      for (int e = 0; e < d->bNumEndpoints && st != DFNET_STATUS_OK; e++) {
        const struct libusb_endpoint_descriptor *ep = &d->endpoint[e];
        if (ep->bEndpointAddress != address)
          continue;
        *out = (usbdev_endpoint_t){.address = address,
                                   .ifc = d->bInterfaceNumber,
                                   .type = ep->bmAttributes & 0x3,
                                   .max_packet_size = ep->wMaxPacketSize};
        st = DFNET_STATUS_OK;
      }
    }
  }
  libusb_free_config_descriptor(c);
  return st;
}

void usbdev__kernel_driver_name(const usb_dev_t *u, int ifc, char *out, size_t cap) {
  snprintf(out, cap, "a kernel driver");
  if (u->sysfs_name[0] == '\0' || u->config_value == 0)
    return;
  char path[256], target[1024];
  snprintf(path, sizeof path, "/sys/bus/usb/devices/%s:%u.%d/driver", u->sysfs_name,
           u->config_value, ifc);
  /* by path: usb-device is the exception that still opens its device by path (libusb) */
  if (drvkit__read_link_at(AT_FDCWD, path, target, sizeof target) == DFNET_STATUS_OK)
    snprintf(out, cap, "kernel driver %s", drvkit__basename(target));
}

bool usbdev__claim(usb_dev_t *u, dfnet_call_t *call, int ifc, bool detach, usbdev_claim_t *cl) {
  *cl = (usbdev_claim_t){.ifc = ifc};
  int active = libusb_kernel_driver_active(u->h, ifc);
  if (active == 1 && !detach) {
    char name[128];
    usbdev__kernel_driver_name(u, ifc, name, sizeof name);
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION,
                 "interface %d of %s is held by %s; set detach_kernel_driver to take it", ifc,
                 u->port_path, name);
    return false;
  }
  if (active == 1) {
    int rc = libusb_detach_kernel_driver(u->h, ifc);
    if (rc != 0) {
      usbdev__fail(u, call, rc, "detaching the kernel driver");
      return false;
    }
    cl->detached = true;
  }
  int rc = libusb_claim_interface(u->h, ifc);
  if (rc != 0) {
    if (cl->detached)
      (void)libusb_attach_kernel_driver(u->h, ifc);
    usbdev__fail(u, call, rc,
                 rc == LIBUSB_ERROR_BUSY ? "claiming the interface (another program has it)"
                                         : "claiming the interface");
    return false;
  }
  cl->claimed = true;
  return true;
}

void usbdev__release(usb_dev_t *u, const usbdev_claim_t *cl) {
  if (u->h == NULL)
    return;
  if (cl->claimed)
    (void)libusb_release_interface(u->h, cl->ifc);
  if (cl->detached && !u->gone && libusb_attach_kernel_driver(u->h, cl->ifc) != 0)
    dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_WARN,
                     "could not re-attach the kernel driver of interface %d", cl->ifc);
}

void usbdev__transfer_done(usb_dev_t *u, dfnet_call_t *call, const usbdev_claim_t *cl, int rc,
                           const uint8_t *in, int transferred, const char *what) {
  if (cl != NULL)
    usbdev__release(u, cl);
  if (rc < 0 && rc != LIBUSB_ERROR_TIMEOUT) {
    usbdev__fail(u, call, rc, what);
    return;
  }
  if (rc == LIBUSB_ERROR_TIMEOUT) {
    drvkit__fail(call, DFNET_STATUS_DEADLINE_EXCEEDED, "%s timed out after %d bytes", what,
                 transferred);
    return;
  }
  dfnet_hw_usb_TransferReply *r = drvkit__calloc(call, sizeof *r);
  if (r == NULL)
    return;
  if (in != NULL && transferred > 0) {
    memcpy(r->data.bytes, in, (size_t)transferred);
    r->data.size = (pb_size_t)transferred;
  }
  r->transferred = (uint32_t)transferred;
  drvkit__reply(call, dfnet_hw_usb_TransferReply_fields, r);
  free(r);
}

bool usbdev__mem_begin(dfnet_call_t *call, const pb_msgdesc_t *fields, size_t req_size,
                       size_t buf_size, const uint8_t *request, size_t len, usbdev_mem_t *mem) {
  mem->req = calloc(1, req_size);
  mem->buf = malloc(buf_size);
  if (mem->req == NULL || mem->buf == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return false;
  }
  return drvkit__decode(call, fields, mem->req, request, len);
}

void usbdev__mem_free(usbdev_mem_t *mem) {
  free(mem->buf);
  free(mem->req);
}

bool usbdev__control_valid(dfnet_call_t *call, const dfnet_hw_usb_ControlTransferRequest *req) {
  bool in = (req->request_type & LIBUSB_ENDPOINT_IN) != 0;
  if (req->request_type > 0xff || req->request > 0xff || req->value > 0xffff ||
      req->index > 0xffff || (in && req->length > USBDEV_CONTROL_MAX) ||
      (in && req->data.size > 0) || (!in && req->length > 0)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "bmRequestType/bRequest are bytes, wValue/wIndex 16 bits; IN (bit 7 of "
                 "request_type) takes `length` up to %u, OUT takes `data`",
                 USBDEV_CONTROL_MAX);
    return false;
  }
  return true;
}

bool usbdev__transfer_valid(dfnet_call_t *call, const dfnet_hw_usb_TransferRequest *req) {
  bool in = (req->endpoint & LIBUSB_ENDPOINT_IN) != 0;
  if (req->endpoint > 0xff || (req->endpoint & 0x0f) == 0 ||
      (in && (req->length == 0 || req->length > USBDEV_TRANSFER_MAX || req->data.size > 0)) ||
      (!in && req->length > 0)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "endpoint 0x%02x: an IN endpoint (bit 7) takes `length` 1..%u, an OUT one "
                 "takes `data`; endpoint 0 is for ControlTransfer",
                 req->endpoint, USBDEV_TRANSFER_MAX);
    return false;
  }
  return true;
}

void usbdev__control_run(usb_dev_t *u, dfnet_call_t *call,
                         const dfnet_hw_usb_ControlTransferRequest *req, unsigned int timeout,
                         uint8_t *buf, const usbdev_claim_t *cl) {
  bool in = (req->request_type & LIBUSB_ENDPOINT_IN) != 0;
  uint16_t length = in ? (uint16_t)req->length : (uint16_t)req->data.size;
  if (!in)
    memcpy(buf, req->data.bytes, req->data.size);
  int rc =
      libusb_control_transfer(u->h, (uint8_t)req->request_type, (uint8_t)req->request,
                              (uint16_t)req->value, (uint16_t)req->index, buf, length, timeout);
  usbdev__transfer_done(u, call, cl, rc < 0 ? rc : 0, in ? buf : NULL, rc < 0 ? 0 : rc,
                        "control transfer");
}

int usbdev__method_transfer_type(const dfnet_call_t *call) {
  const char *name = strrchr(dfnet_call_method(call), '/');
  return name != NULL && strcmp(name, "/InterruptTransfer") == 0 ? LIBUSB_TRANSFER_TYPE_INTERRUPT
                                                                 : LIBUSB_TRANSFER_TYPE_BULK;
}

const char *usbdev__type_name(int type) {
  switch (type) {
  case LIBUSB_TRANSFER_TYPE_BULK:
    return "a bulk";
  case LIBUSB_TRANSFER_TYPE_INTERRUPT:
    return "an interrupt";
  case LIBUSB_TRANSFER_TYPE_ISOCHRONOUS:
    return "an isochronous";
  default:
    return "a control";
  }
}

void usbdev__endpoint_run(usb_dev_t *u, dfnet_call_t *call, const dfnet_hw_usb_TransferRequest *req,
                          int type, unsigned int timeout, uint8_t *buf, const usbdev_claim_t *cl) {
  bool in = (req->endpoint & LIBUSB_ENDPOINT_IN) != 0;
  int length = in ? (int)req->length : (int)req->data.size;
  if (!in)
    memcpy(buf, req->data.bytes, req->data.size);
  int transferred = 0;
  int rc =
      type == LIBUSB_TRANSFER_TYPE_BULK
          ? libusb_bulk_transfer(u->h, (uint8_t)req->endpoint, buf, length, &transferred, timeout)
          : libusb_interrupt_transfer(u->h, (uint8_t)req->endpoint, buf, length, &transferred,
                                      timeout);
  usbdev__transfer_done(u, call, cl, rc, in ? buf : NULL, transferred,
                        type == LIBUSB_TRANSFER_TYPE_BULK ? "bulk transfer" : "interrupt transfer");
}

/* ---- descriptors as the device sent them ------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v & 0xff);
  p[1] = (uint8_t)(v >> 8);
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

/* libusb keeps every descriptor it does not parse, in order, in the `extra` of the
 * descriptor before it, so a descriptor's header + extra, then its children's, is the
 * original sequence. */
bool usbdev__interface_raw(const struct libusb_interface *ifc, uint8_t *out, size_t cap,
                           size_t *len) {
  for (int a = 0; a < ifc->num_altsetting; a++) {
    const struct libusb_interface_descriptor *d = &ifc->altsetting[a];
    uint8_t ih[9] = {
        d->bLength,       d->bDescriptorType, d->bInterfaceNumber,   d->bAlternateSetting,
        d->bNumEndpoints, d->bInterfaceClass, d->bInterfaceSubClass, d->bInterfaceProtocol,
        d->iInterface};
    if (!append(out, cap, len, ih, 9) || !append(out, cap, len, d->extra, (size_t)d->extra_length))
      return false;
    for (int e = 0; e < d->bNumEndpoints; e++) {
      const struct libusb_endpoint_descriptor *ep = &d->endpoint[e];
      uint8_t eh[9] = {ep->bLength, ep->bDescriptorType, ep->bEndpointAddress, ep->bmAttributes, 0,
                       0,           ep->bInterval,       ep->bRefresh,         ep->bSynchAddress};
      put16(eh + 4, ep->wMaxPacketSize);
      size_t n = ep->bLength >= 9 ? 9 : 7; /* audio endpoints carry two more bytes */
      if (!append(out, cap, len, eh, n) ||
          !append(out, cap, len, ep->extra, (size_t)ep->extra_length))
        return false;
    }
  }
  return true;
}

bool usbdev__config_raw(const struct libusb_config_descriptor *c, uint8_t *out, size_t cap,
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
  for (int i = 0; i < c->bNumInterfaces; i++)
    if (!usbdev__interface_raw(&c->interface[i], out, cap, len))
      return false;
  return true;
}
