/* usb-device: dfnet.hw.usb.Interface, the part of the device one interface child owns, for
 * the driver bound to that child (proto/dfnet/hw/usb.proto).
 *
 * Who calls. The service is served on the device's node, the source of the offer each
 * "ifc-NNN" child received; the call's caller is the calling driver's node moniker, set by
 * the host agent (never by the caller), and its driver URL is not empty. A caller that is
 * not "<this node>.ifc-NNN" with that child still in place is PERMISSION_DENIED: remote
 * clients (whose caller is their certificate's name, and their driver URL empty), other
 * drivers, a child removed because another one claimed its interface.
 *
 * What a child reaches: the interfaces whose `owner` it is (its own, and those it claimed
 * beside it), their endpoints, control requests addressed to them, vendor requests
 * addressed to the device, and the standard GET_STATUS and GET_DESCRIPTOR. An interface is
 * claimed (usbfs) by the first request that needs it and kept for the child until Release.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/common/drvkit.h"
#include "drivers/usb-device/usb_device.h"

/* The interface number of the child making the call, or -1 (the call failed
 * PERMISSION_DENIED). */
static int calling_child(const usb_dev_t *u, dfnet_call_t *call) {
  const char *caller = dfnet_call_caller(call);
  const char *url = dfnet_call_caller_driver_url(call);
  size_t n = strlen(u->moniker);
  int k = -1;
  if (url != NULL && url[0] != '\0' && strncmp(caller, u->moniker, n) == 0 &&
      strncmp(caller + n, ".ifc-", 5) == 0) {
    const char *d = caller + n + 5;
    if (isdigit((unsigned char)d[0]) && isdigit((unsigned char)d[1]) &&
        isdigit((unsigned char)d[2]) && d[3] == '\0')
      k = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    if (k >= (int)USBDEV_IFC_MAX || (k >= 0 && (!u->ifc[k].present || !u->ifc[k].child)))
      k = -1;
  }
  if (k < 0)
    drvkit__fail(call, DFNET_STATUS_PERMISSION_DENIED,
                 "%s serves the drivers of %s's interface children (%s.ifc-NNN), not %s%s",
                 USBDEV_INTERFACE_SERVICE, u->moniker, u->moniker,
                 caller[0] != '\0' ? caller : "an unnamed caller",
                 url == NULL || url[0] == '\0' ? " (not a driver)" : "");
  return k;
}

/* Claim interface x (usbfs) for its owner unless it is already, detaching a kernel driver
 * only when `detach`. On failure the call is failed and false returned. */
static bool hold(usb_dev_t *u, dfnet_call_t *call, int x, bool detach) {
  if (u->ifc[x].claimed)
    return true;
  usbdev_claim_t cl;
  if (usbdev__handle(u, call) == NULL || !usbdev__claim(u, call, x, detach, &cl))
    return false;
  u->ifc[x].claimed = true;
  u->ifc[x].detached = cl.detached;
  dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_DEBUG, "interface %d claimed for ifc-%03u%s", x,
                   u->ifc[x].owner, cl.detached ? " (kernel driver detached)" : "");
  return true;
}

/* Is interface x one child k holds? */
static bool owns(const usb_dev_t *u, int k, uint32_t x) {
  return x < USBDEV_IFC_MAX && u->ifc[x].present && u->ifc[x].owner == k;
}

bool usbdev__held_by_child(const usb_dev_t *u, int ifc, char *out, size_t cap) {
  if (ifc < 0 || ifc >= (int)USBDEV_IFC_MAX || !u->ifc[ifc].present || !u->ifc[ifc].claimed)
    return false;
  snprintf(out, cap, "%s.ifc-%03u", u->moniker, u->ifc[ifc].owner);
  return true;
}

/* Release interface x's usbfs claim (its streams end first). */
static void let_go(usb_dev_t *u, int x, const char *why) {
  usbdev_ifc_t *f = &u->ifc[x];
  if (!f->claimed)
    return;
  usbdev__streams_end(u, x, why);
  usbdev__release(u, &(usbdev_claim_t){.ifc = x, .claimed = true, .detached = f->detached});
  f->claimed = false;
  f->detached = false;
}

void usbdev__release_all(usb_dev_t *u) {
  for (int x = 0; x < (int)USBDEV_IFC_MAX; x++)
    let_go(u, x, "usb-device is stopping");
}

/* ---- GetInterface ------------------------------------------------------------------------ */

/* The setting of `ifc` selected now (alt), else its first. */
static const struct libusb_interface_descriptor *current_setting(const struct libusb_interface *ifc,
                                                                 uint8_t alt) {
  for (int a = 0; a < ifc->num_altsetting; a++)
    if (ifc->altsetting[a].bAlternateSetting == alt)
      return &ifc->altsetting[a];
  return &ifc->altsetting[0];
}

/* Add one interface the child holds to *r. False (why set) when over a bound. */
static bool add_interface(const usb_dev_t *u, int k, const struct libusb_interface *ifc,
                          dfnet_hw_usb_InterfaceInfo *r, size_t *len, char *why, size_t cap) {
  uint8_t x = ifc->altsetting[0].bInterfaceNumber;
  const struct libusb_interface_descriptor *d = current_setting(ifc, u->ifc[x].alt);
  if (!usbdev__interface_raw(ifc, r->descriptors.bytes, sizeof r->descriptors.bytes, len)) {
    snprintf(why, cap, "the descriptors of the child's interfaces are over %zu bytes",
             sizeof r->descriptors.bytes);
    return false;
  }
  if (x == k) {
    r->alternate_setting = d->bAlternateSetting;
    r->interface_class = d->bInterfaceClass;
    r->interface_subclass = d->bInterfaceSubClass;
    r->interface_protocol = d->bInterfaceProtocol;
  } else {
    r->claimed_interfaces[r->claimed_interfaces_count++] = x;
  }
  for (int e = 0; e < d->bNumEndpoints; e++) {
    const pb_size_t max = sizeof r->endpoints / sizeof r->endpoints[0];
    if (r->endpoints_count == max) {
      snprintf(why, cap, "the child's interfaces have over %u endpoints", (unsigned)max);
      return false;
    }
    const struct libusb_endpoint_descriptor *ep = &d->endpoint[e];
    r->endpoints[r->endpoints_count++] = (dfnet_hw_usb_Endpoint){
        .address = ep->bEndpointAddress,
        .attributes = ep->bmAttributes,
        .max_packet_size = ep->wMaxPacketSize,
        .interval = ep->bInterval,
        .interface_number = x,
    };
  }
  return true;
}

/* Reply with what child k holds (GetInterface, and after Claim / SetAlternateSetting). */
static void reply_info(usb_dev_t *u, dfnet_call_t *call, int k) {
  struct libusb_config_descriptor *c = NULL;
  int rc = libusb_get_active_config_descriptor(u->dev, &c);
  if (rc != 0) {
    usbdev__fail(u, call, rc, "reading the active configuration");
    return;
  }
  dfnet_hw_usb_InterfaceInfo *r = calloc(1, sizeof *r);
  char why[160] = "out of memory";
  bool ok = r != NULL;
  size_t len = 0;
  if (ok) {
    r->interface_number = (uint32_t)k;
    r->vendor_id = u->vendor_id;
    r->product_id = u->product_id;
    r->configuration_value = c->bConfigurationValue;
    r->claimed = u->ifc[k].claimed;
  }
  /* The child's own interface first, then the ones it claimed, in the order listed. */
  for (int pass = 0; pass < 2 && ok; pass++) {
    for (int i = 0; i < c->bNumInterfaces && ok; i++) {
      const struct libusb_interface *ifc = &c->interface[i];
      if (ifc->num_altsetting < 1)
        continue;
      uint8_t x = ifc->altsetting[0].bInterfaceNumber;
      if (owns(u, k, x) && (pass == 0) == (x == k))
        ok = add_interface(u, k, ifc, r, &len, why, sizeof why);
    }
  }
  libusb_free_config_descriptor(c);
  if (ok) {
    r->descriptors.size = (pb_size_t)len;
    drvkit__reply(call, dfnet_hw_usb_InterfaceInfo_fields, r);
  } else {
    drvkit__fail(call, r == NULL ? DFNET_STATUS_RESOURCE_EXHAUSTED : DFNET_STATUS_OUT_OF_RANGE,
                 "%s", why);
  }
  free(r);
}

/* /dfnet.hw.usb.Interface/GetInterface */
static void get_interface(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_GetInterfaceRequest req = dfnet_hw_usb_GetInterfaceRequest_init_zero;
  int k = calling_child(u, call);
  if (k < 0 || !drvkit__decode(call, dfnet_hw_usb_GetInterfaceRequest_fields, &req, request, len))
    return;
  reply_info(u, call, k);
}

/* ---- Claim, Release, SetAlternateSetting ------------------------------------------------ */

/* /dfnet.hw.usb.Interface/Claim */
static void claim(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_ClaimRequest req = dfnet_hw_usb_ClaimRequest_init_zero;
  int k = calling_child(u, call);
  if (k < 0 || !drvkit__decode(call, dfnet_hw_usb_ClaimRequest_fields, &req, request, len))
    return;
  uint32_t x = req.interface_number;
  if (x >= USBDEV_IFC_MAX || !u->ifc[x].present) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "interface %u is not in the active configuration of %s", x, u->port_path);
    return;
  }
  usbdev_ifc_t *f = &u->ifc[x];
  char holder[600];
  if (f->owner != k && (f->owner != x || f->claimed)) {
    snprintf(holder, sizeof holder, "%s.ifc-%03u", u->moniker, f->owner);
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION,
                 "interface %u of %s is held by the driver of %s", x, u->port_path, holder);
    return;
  }
  if (!hold(u, call, (int)x, req.detach_kernel_driver))
    return;
  if (f->owner != k) {
    /* Fuchsia's ClaimInterface: the interface is the claimer's from now on; its own child
     * node goes (the manager stops its driver first). */
    char name[16];
    snprintf(name, sizeof name, "ifc-%03u", x);
    f->owner = (uint8_t)k;
    if (f->child) {
      (void)dfnet_driver_remove_child(u->driver, name);
      f->child = false;
    }
    dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_INFO,
                     "interface %u claimed by the driver of ifc-%03d: node %s removed", x, k, name);
  }
  reply_info(u, call, k);
}

/* /dfnet.hw.usb.Interface/Release */
static void release(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_ReleaseRequest req = dfnet_hw_usb_ReleaseRequest_init_zero;
  int k = calling_child(u, call);
  if (k < 0 || !drvkit__decode(call, dfnet_hw_usb_ReleaseRequest_fields, &req, request, len))
    return;
  for (int x = 0; x < (int)USBDEV_IFC_MAX; x++)
    if (owns(u, k, (uint32_t)x))
      let_go(u, x, "the interface was released");
  dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_INFO,
                   "the driver of ifc-%03d released its interfaces", k);
  dfnet_hw_usb_ReleaseReply r = dfnet_hw_usb_ReleaseReply_init_zero;
  drvkit__reply(call, dfnet_hw_usb_ReleaseReply_fields, &r);
}

/* Does interface x have alternate setting alt in the active configuration? */
static bool has_setting(const usb_dev_t *u, uint32_t x, uint32_t alt) {
  struct libusb_config_descriptor *c = NULL;
  bool found = false;
  if (libusb_get_active_config_descriptor(u->dev, &c) != 0)
    return false;
  for (int i = 0; i < c->bNumInterfaces && !found; i++)
    for (int a = 0; a < c->interface[i].num_altsetting && !found; a++)
      found = c->interface[i].altsetting[a].bInterfaceNumber == x &&
              c->interface[i].altsetting[a].bAlternateSetting == alt;
  libusb_free_config_descriptor(c);
  return found;
}

/* /dfnet.hw.usb.Interface/SetAlternateSetting */
static void set_alternate_setting(void *ctx, dfnet_call_t *call, const uint8_t *request,
                                  size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_SetAlternateSettingRequest req = dfnet_hw_usb_SetAlternateSettingRequest_init_zero;
  int k = calling_child(u, call);
  if (k < 0 ||
      !drvkit__decode(call, dfnet_hw_usb_SetAlternateSettingRequest_fields, &req, request, len))
    return;
  if (!owns(u, k, req.interface_number) ||
      !has_setting(u, req.interface_number, req.alternate_setting)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "interface %u setting %u: not one of the settings of ifc-%03d's interfaces",
                 req.interface_number, req.alternate_setting, k);
    return;
  }
  int x = (int)req.interface_number;
  if (!hold(u, call, x, false))
    return;
  usbdev__streams_end(u, x, "the interface's alternate setting changed");
  int rc = libusb_set_interface_alt_setting(u->h, x, (int)req.alternate_setting);
  if (rc != 0) {
    usbdev__fail(u, call, rc, "selecting an alternate setting");
    return;
  }
  u->ifc[x].alt = (uint8_t)req.alternate_setting;
  reply_info(u, call, k);
}

/* ---- transfers ------------------------------------------------------------------------- */

/* May child k send this control request? *ifc gets the interface it addresses (-1: the
 * device). On refusal the call is failed INVALID_ARGUMENT and false returned. */
static bool control_allowed(const usb_dev_t *u, dfnet_call_t *call, int k,
                            const dfnet_hw_usb_ControlTransferRequest *req, int *ifc) {
  uint32_t type = req->request_type & 0x60, recipient = req->request_type & 0x1f;
  bool in = (req->request_type & LIBUSB_ENDPOINT_IN) != 0;
  *ifc = -1;
  if (recipient == LIBUSB_RECIPIENT_INTERFACE) {
    if (type == LIBUSB_REQUEST_TYPE_STANDARD && req->request == LIBUSB_REQUEST_SET_INTERFACE) {
      drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                   "SET_INTERFACE goes through SetAlternateSetting");
      return false;
    }
    if (!owns(u, k, req->index & 0xff)) {
      drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                   "a request to interface %u: not one of ifc-%03d's interfaces", req->index & 0xff,
                   k);
      return false;
    }
    *ifc = (int)(req->index & 0xff);
    return true;
  }
  if (recipient == LIBUSB_RECIPIENT_ENDPOINT && (req->index & 0x0f) != 0) {
    usbdev_endpoint_t ep;
    char why[128];
    if (usbdev__find_endpoint(u, (uint8_t)(req->index & 0xff), &ep, why, sizeof why) !=
            DFNET_STATUS_OK ||
        !owns(u, k, ep.ifc)) {
      drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                   "a request to endpoint 0x%02x: not an endpoint of ifc-%03d's interfaces",
                   req->index & 0xff, k);
      return false;
    }
    *ifc = ep.ifc;
    return true;
  }
  bool read_only =
      type == LIBUSB_REQUEST_TYPE_STANDARD && in &&
      (req->request == LIBUSB_REQUEST_GET_STATUS || req->request == LIBUSB_REQUEST_GET_DESCRIPTOR);
  if (type == LIBUSB_REQUEST_TYPE_VENDOR || read_only)
    return true;
  drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
               "request 0x%02x (bmRequestType 0x%02x) addresses the device, not an interface: "
               "only vendor requests, GET_STATUS and GET_DESCRIPTOR go to the device",
               req->request, req->request_type);
  return false;
}

/* /dfnet.hw.usb.Interface/ControlTransfer */
static void control_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  int k = calling_child(u, call), x = -1;
  unsigned int timeout;
  usbdev_mem_t mem = {0};
  if (k < 0 || !usbdev__mem_begin(call, dfnet_hw_usb_ControlTransferRequest_fields,
                                  sizeof(dfnet_hw_usb_ControlTransferRequest), USBDEV_CONTROL_MAX,
                                  request, len, &mem))
    goto free_request;
  dfnet_hw_usb_ControlTransferRequest *req = mem.req;
  if (!usbdev__control_valid(call, req) || !control_allowed(u, call, k, req, &x) ||
      !usbdev__timeout(call, req->timeout_ms, &timeout) || usbdev__handle(u, call) == NULL ||
      (x >= 0 && !hold(u, call, x, req->detach_kernel_driver)))
    goto free_request;
  usbdev__control_run(u, call, req, timeout, mem.buf, NULL);
free_request:
  usbdev__mem_free(&mem);
}

/* Endpoint `address` of child k, of transfer type want (-1: bulk or interrupt), into *ep.
 * On failure the call is failed INVALID_ARGUMENT and false returned. */
static bool child_endpoint(const usb_dev_t *u, dfnet_call_t *call, int k, uint32_t address,
                           int want, usbdev_endpoint_t *ep) {
  char why[160];
  if (usbdev__find_endpoint(u, (uint8_t)address, ep, why, sizeof why) != DFNET_STATUS_OK ||
      !owns(u, k, ep->ifc)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "endpoint 0x%02x is not an endpoint of ifc-%03d's interfaces", address, k);
    return false;
  }
  bool ok = want >= 0 ? ep->type == want
                      : ep->type == LIBUSB_TRANSFER_TYPE_BULK ||
                            ep->type == LIBUSB_TRANSFER_TYPE_INTERRUPT;
  if (!ok)
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "endpoint 0x%02x is %s endpoint", address,
                 usbdev__type_name(ep->type));
  return ok;
}

/* /dfnet.hw.usb.Interface/BulkTransfer and /dfnet.hw.usb.Interface/InterruptTransfer */
static void endpoint_transfer(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  int want_type = usbdev__method_transfer_type(call);
  int k = calling_child(u, call);
  usbdev_mem_t mem = {0};
  usbdev_endpoint_t ep;
  unsigned int timeout;
  if (k < 0 || !usbdev__mem_begin(call, dfnet_hw_usb_TransferRequest_fields,
                                  sizeof(dfnet_hw_usb_TransferRequest), USBDEV_TRANSFER_MAX,
                                  request, len, &mem))
    goto free_request;
  dfnet_hw_usb_TransferRequest *req = mem.req;
  if (!usbdev__transfer_valid(call, req) ||
      !child_endpoint(u, call, k, req->endpoint, want_type, &ep) ||
      !usbdev__timeout(call, req->timeout_ms, &timeout) ||
      !hold(u, call, ep.ifc, req->detach_kernel_driver))
    goto free_request;
  usbdev__endpoint_run(u, call, req, want_type, timeout, mem.buf, NULL);
free_request:
  usbdev__mem_free(&mem);
}

/* /dfnet.hw.usb.Interface/ReadStream */
static void read_stream(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  usb_dev_t *u = ctx;
  dfnet_hw_usb_ReadStreamRequest req = dfnet_hw_usb_ReadStreamRequest_init_zero;
  usbdev_endpoint_t ep;
  int k = calling_child(u, call);
  if (k < 0 || !drvkit__decode(call, dfnet_hw_usb_ReadStreamRequest_fields, &req, request, len))
    return;
  if (req.endpoint > 0xff || (req.endpoint & LIBUSB_ENDPOINT_IN) == 0 ||
      (req.endpoint & 0x0f) == 0 || req.length == 0 || req.length > USBDEV_TRANSFER_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "endpoint 0x%02x, length %u: a stream reads an IN endpoint (bit 7, not "
                 "endpoint 0), 1..%u bytes a transfer",
                 req.endpoint, req.length, USBDEV_TRANSFER_MAX);
    return;
  }
  if (!child_endpoint(u, call, k, req.endpoint, -1, &ep) ||
      !hold(u, call, ep.ifc, req.detach_kernel_driver))
    return;
  usbdev__streams_reap(u);
  usbdev__stream_start(u, call, &ep, req.length);
}

const dfnet_method_t usbdev__interface_methods[] = {
    {.name = "GetInterface", .handler = get_interface},
    {.name = "Claim", .handler = claim},
    {.name = "Release", .handler = release},
    {.name = "SetAlternateSetting", .handler = set_alternate_setting},
    {.name = "ControlTransfer", .handler = control_transfer},
    {.name = "BulkTransfer", .handler = endpoint_transfer},
    {.name = "InterruptTransfer", .handler = endpoint_transfer},
    {.name = "ReadStream", .handler = read_stream, .server_streaming = true},
};
const size_t usbdev__interface_method_count =
    sizeof usbdev__interface_methods / sizeof usbdev__interface_methods[0];
