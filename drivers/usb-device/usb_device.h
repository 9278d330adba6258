/* usb-device's internals, shared by its files:
 *
 *   usb_device.c  the lifecycle (start, prepare_stop, stop) and the interface children
 *   device.c      dfnet.hw.usb.Device, for remote clients: the whole device
 *   interface.c   dfnet.hw.usb.Interface, for the drivers of the interface children
 *   stream.c      Interface.ReadStream: one reader thread per stream
 *   transfer.c    what both services share: libusb's errors, the handle, timeouts,
 *                 endpoints, claims, descriptors, request checks and replies
 *
 * Fuchsia's USB stack has the same two levels: usb-composite binds the device and adds a
 * child per interface, handing each child the protocol of its own interface; a class or
 * vendor driver binds the child (docs/spec/dfv2.md "Nodes": a bus driver hands each child
 * only its own resources).
 *
 * Threads. Everything runs on the driver's default dispatcher ("allow_sync_calls":
 * libusb's synchronous transfers block it, each bounded by its timeout and the call's
 * deadline) except the ReadStream readers, one thread per stream, which touch only the
 * libusb handle (libusb is thread-safe), their call and their stream record's atomics.
 * The handle is opened on the dispatcher before any reader starts and closed in `stop`,
 * after `prepare_stop` has joined every reader; it is never closed in between (a device
 * that is gone is marked so instead).
 */
#ifndef DFNET_DRIVERS_USB_DEVICE_H
#define DFNET_DRIVERS_USB_DEVICE_H

#include <libusb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pb.h>

#include "dfnet/driver.h"
#include "dfnet/hw/usb.pb.h"

#define USBDEV_TIMEOUT_DEFAULT_MS 1000u
#define USBDEV_TIMEOUT_MAX_MS 60000u
#define USBDEV_CONTROL_MAX 4096u   /* ControlTransferRequest.data / IN length bound */
#define USBDEV_TRANSFER_MAX 16384u /* TransferRequest.data / TransferReply.data bound */
#define USBDEV_IFC_MAX 32u         /* interface numbers usbfs can claim: 0..31 */
#define USBDEV_INTERFACE_SERVICE "dfnet.hw.usb.Interface"

/* One interface of the active configuration. Dispatcher only. */
typedef struct usbdev_ifc {
  bool present;  /* in the active configuration (and numbered below USBDEV_IFC_MAX) */
  bool child;    /* its "ifc-NNN" child node was added and not removed since */
  uint8_t owner; /* the interface number of the child that holds it: its own, or the
                    child that claimed it beside its own (Interface.Claim) */
  uint8_t alt;   /* the alternate setting selected through Interface (0 at start) */
  bool claimed;  /* claimed (usbfs) for its owner through Interface, until Release */
  bool detached; /* that claim detached a kernel driver, re-attached at Release */
} usbdev_ifc_t;

typedef struct usbdev_stream usbdev_stream_t;

typedef struct usb_dev {
  dfnet_driver_t *driver;
  libusb_context *usb;
  libusb_device *dev;      /* one reference held */
  libusb_device_handle *h; /* NULL until a request needs it; closed only in stop */
  bool gone;               /* the device answered "no device": unplugged */
  uint32_t bus, address;
  uint16_t vendor_id, product_id;
  uint8_t config_value; /* the active configuration's bConfigurationValue (0: none) */
  char port_path[32];
  char sysfs_name[64];  /* "1-1.2", for the kernel driver's name in messages */
  char device_file[64]; /* "/dev/bus/usb/001/011", for messages */
  const char *moniker;  /* the device node's */
  usbdev_ifc_t ifc[USBDEV_IFC_MAX];
  usbdev_stream_t *streams; /* ReadStream readers; the list is the dispatcher's */
} usb_dev_t;

/* An interface taken for one Device transfer (claimed, then released after it). */
typedef struct usbdev_claim {
  int ifc;
  bool detached;
  bool claimed;
} usbdev_claim_t;

/* Where an endpoint of the active configuration is. */
typedef struct usbdev_endpoint {
  uint8_t address;
  uint8_t ifc; /* bInterfaceNumber of the interface holding it */
  int type;    /* LIBUSB_TRANSFER_TYPE_* (bmAttributes bits 1..0) */
  uint16_t max_packet_size;
} usbdev_endpoint_t;

/* A transfer request (decoded on the heap: the messages are large) and its data buffer. */
typedef struct usbdev_mem {
  void *req;
  uint8_t *buf;
} usbdev_mem_t;

/* ---- transfer.c -------------------------------------------------------------------- */

/* libusb's error as a status (the one edge where libusb's errors are translated). */
dfnet_status_t usbdev__status_from_libusb(int rc);

/* Fail the call with libusb's error `rc` while doing `what`; a device that is gone is
 * marked so. */
void usbdev__fail(usb_dev_t *u, dfnet_call_t *call, int rc, const char *what);

/* The open handle, opening the device now if needed; NULL (the call failed) when the
 * device cannot be opened or is gone. Dispatcher. */
libusb_device_handle *usbdev__handle(usb_dev_t *u, dfnet_call_t *call);

/* The timeout of a transfer: 0 -> the default, bounded by the call's deadline. False (the
 * call failed) when out of range or the deadline has passed. */
bool usbdev__timeout(dfnet_call_t *call, uint32_t requested, unsigned int *out)
    __attribute__((warn_unused_result));

/* Find endpoint `address` in the active configuration (any alternate setting). Returns OK,
 * NOT_FOUND, or libusb's error as a status; why[cap] says what went wrong. */
dfnet_status_t usbdev__find_endpoint(const usb_dev_t *u, uint8_t address, usbdev_endpoint_t *out,
                                     char *why, size_t cap) __attribute__((warn_unused_result));

/* The kernel driver bound to interface ifc, from sysfs ("kernel driver usbhid"), or
 * "a kernel driver". */
void usbdev__kernel_driver_name(const usb_dev_t *u, int ifc, char *out, size_t cap);

/* Claim interface ifc (usbfs), detaching its kernel driver only when `detach`; *cl says
 * what was done, for usbdev__release. On failure the call is failed and false returned.
 * Dispatcher. */
bool usbdev__claim(usb_dev_t *u, dfnet_call_t *call, int ifc, bool detach, usbdev_claim_t *cl)
    __attribute__((warn_unused_result));
/* Undo usbdev__claim. */
void usbdev__release(usb_dev_t *u, const usbdev_claim_t *cl);

/* Reply to a transfer: the bytes moved (`in`, IN data), or the error with how far it got.
 * Releases *cl first when not NULL. */
void usbdev__transfer_done(usb_dev_t *u, dfnet_call_t *call, const usbdev_claim_t *cl, int rc,
                           const uint8_t *in, int transferred, const char *what);

/* Allocate the request (req_size bytes) and buf_size bytes of data buffer, and decode the
 * request as `fields`. On failure the call is failed and false returned; free with
 * usbdev__mem_free either way. */
bool usbdev__mem_begin(dfnet_call_t *call, const pb_msgdesc_t *fields, size_t req_size,
                       size_t buf_size, const uint8_t *request, size_t len, usbdev_mem_t *mem)
    __attribute__((warn_unused_result));
void usbdev__mem_free(usbdev_mem_t *mem);

/* Check a control request's fields (bytes, 16-bit words, IN takes `length`, OUT `data`).
 * On failure the call is failed and false returned. */
bool usbdev__control_valid(dfnet_call_t *call, const dfnet_hw_usb_ControlTransferRequest *req)
    __attribute__((warn_unused_result));

/* Check a bulk/interrupt request's fields (an IN endpoint takes `length` 1..16384, an OUT
 * one `data`; not endpoint 0). On failure the call is failed and false returned. */
bool usbdev__transfer_valid(dfnet_call_t *call, const dfnet_hw_usb_TransferRequest *req)
    __attribute__((warn_unused_result));

/* Run the control transfer *req on the open handle (timeout already bounded), then
 * usbdev__transfer_done with cl. buf holds USBDEV_CONTROL_MAX bytes. */
void usbdev__control_run(usb_dev_t *u, dfnet_call_t *call,
                         const dfnet_hw_usb_ControlTransferRequest *req, unsigned int timeout,
                         uint8_t *buf, const usbdev_claim_t *cl);

/* Run the bulk or interrupt transfer *req (type LIBUSB_TRANSFER_TYPE_*) on the open handle,
 * then usbdev__transfer_done with cl. buf holds USBDEV_TRANSFER_MAX bytes. */
void usbdev__endpoint_run(usb_dev_t *u, dfnet_call_t *call, const dfnet_hw_usb_TransferRequest *req,
                          int type, unsigned int timeout, uint8_t *buf, const usbdev_claim_t *cl);

/* The endpoint type a BulkTransfer or InterruptTransfer call (of Device or Interface) asks
 * for, from the call's method path: LIBUSB_TRANSFER_TYPE_INTERRUPT for ".../InterruptTransfer",
 * else LIBUSB_TRANSFER_TYPE_BULK. The call is only read; until it is completed, on the thread
 * that handles it; does not block; no errors. */
int usbdev__method_transfer_type(const dfnet_call_t *call);

/* "a bulk" / "an interrupt" ... for messages. */
const char *usbdev__type_name(int type);

/* Append the descriptors of one interface (every alternate setting: the interface
 * descriptor, its class-specific descriptors, its endpoints) as the device sent them to
 * out[cap] at *len. False when they do not fit. */
bool usbdev__interface_raw(const struct libusb_interface *ifc, uint8_t *out, size_t cap,
                           size_t *len) __attribute__((warn_unused_result));

/* The configuration descriptor's bytes as the device sent them. False when over cap. */
bool usbdev__config_raw(const struct libusb_config_descriptor *c, uint8_t *out, size_t cap,
                        size_t *len) __attribute__((warn_unused_result));

/* ---- device.c / interface.c: the method tables ----------------------------------------- */

extern const dfnet_method_t usbdev__device_methods[];
extern const size_t usbdev__device_method_count;
extern const dfnet_method_t usbdev__interface_methods[];
extern const size_t usbdev__interface_method_count;

/* The child node that holds interface ifc through Interface, as "<moniker>.ifc-NNN" in
 * out[cap]; false when no child has claimed it. For the Device service's refusals. */
bool usbdev__held_by_child(const usb_dev_t *u, int ifc, char *out, size_t cap);

/* Release every Interface claim still in place (stop). Dispatcher. */
void usbdev__release_all(usb_dev_t *u);

/* ---- stream.c -------------------------------------------------------------------------- */

/* Start a reader thread for ReadStream on endpoint ep of interface ifc (already checked and
 * claimed) reading `length` bytes per transfer. The thread owns the call from then on and
 * replies to it when the stream ends. On failure the call is failed here. Dispatcher. */
void usbdev__stream_start(usb_dev_t *u, dfnet_call_t *call, const usbdev_endpoint_t *ep,
                          uint32_t length);

/* Tell the readers of interface ifc's streams (-1: every stream) to end their calls with
 * CANCELLED and `why` (copied); they do after the transfer in flight (which releasing the
 * interface or changing its setting kills). Does not wait. Dispatcher. */
void usbdev__streams_end(usb_dev_t *u, int ifc, const char *why);

/* Join the threads of streams that ended. Dispatcher. */
void usbdev__streams_reap(usb_dev_t *u);

/* End every stream and join every reader (prepare_stop: the driver host has ended the
 * calls, so none stays blocked in dfnet_call_send). */
void usbdev__streams_join(usb_dev_t *u);

#endif /* DFNET_DRIVERS_USB_DEVICE_H */
