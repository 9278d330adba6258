/* usb-device: Interface.ReadStream, one reader thread per stream (usb_device.h "Threads").
 *
 * The reader reads the endpoint with libusb's synchronous transfers of STREAM_POLL_MS and
 * sends every transfer that completed as one item (dfnet_call_send, which on a driver's own
 * thread blocks while the caller's credit and the 64 queued items are used up: the reader
 * then stops reading and the device is NAKed, USB's own flow control). Between transfers
 * it looks at its call (ended: cancelled, deadline, driver stopping) and at its `quit`
 * flag (the dispatcher ends streams when their interface is released or changes its
 * alternate setting; releasing the interface or changing its setting also kills the
 * transfer in flight, so the reader notices at once). The reader replies to its call
 * itself, exactly once, then marks itself done; the dispatcher joins done readers when a
 * stream starts, and every reader in prepare_stop (by then the driver host has ended every
 * call, so no reader stays blocked in dfnet_call_send).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include <pb_encode.h>

#include "drivers/common/drvkit.h"
#include "drivers/usb-device/usb_device.h"

#define STREAM_POLL_MS 100u

struct usbdev_stream {
  dfnet_driver_t *driver;
  libusb_device_handle *h;
  dfnet_call_t *call; /* the reader's from its start */
  usbdev_endpoint_t ep;
  uint32_t length;
  pthread_t thread;
  atomic_bool quit; /* set by the dispatcher; `why` is written before */
  atomic_bool done; /* set by the reader when it has replied */
  char why[128];
  usbdev_stream_t *next, *prev; /* u->streams */
};

/* One transfer of the stream: its libusb result, bytes read into buf. */
static int stream_read(usbdev_stream_t *s, uint8_t *buf, int *n) {
  *n = 0;
  return s->ep.type == LIBUSB_TRANSFER_TYPE_BULK
             ? libusb_bulk_transfer(s->h, s->ep.address, buf, (int)s->length, n, STREAM_POLL_MS)
             : libusb_interrupt_transfer(s->h, s->ep.address, buf, (int)s->length, n,
                                         STREAM_POLL_MS);
}

/* Send n bytes of buf as one TransferReply item. Returns dfnet_call_send's status. */
static dfnet_status_t stream_send(usbdev_stream_t *s, dfnet_hw_usb_TransferReply *item,
                                  uint8_t *enc, size_t cap, const uint8_t *buf, int n) {
  memcpy(item->data.bytes, buf, (size_t)n);
  item->data.size = (pb_size_t)n;
  item->transferred = (uint32_t)n;
  pb_ostream_t os = pb_ostream_from_buffer(enc, cap);
  if (!pb_encode(&os, dfnet_hw_usb_TransferReply_fields, item))
    return DFNET_STATUS_INTERNAL;
  return dfnet_call_send(s->call, enc, os.bytes_written);
}

static void *reader_main(void *arg) {
  usbdev_stream_t *s = arg;
  size_t cap = USBDEV_TRANSFER_MAX + 16;
  uint8_t *buf = malloc(s->length), *enc = malloc(cap);
  dfnet_hw_usb_TransferReply *item = calloc(1, sizeof *item);
  dfnet_status_t end = DFNET_STATUS_OK;
  char why[256] = "";
  if (buf == NULL || enc == NULL || item == NULL) {
    end = DFNET_STATUS_RESOURCE_EXHAUSTED;
    snprintf(why, sizeof why, "out of memory");
  }
  while (end == DFNET_STATUS_OK) {
    if ((end = dfnet_call_status(s->call)) != DFNET_STATUS_OK)
      break;
    int n, rc = stream_read(s, buf, &n);
    if (atomic_load(&s->quit)) {
      end = DFNET_STATUS_CANCELLED;
      snprintf(why, sizeof why, "%s", s->why);
    } else if (rc == LIBUSB_ERROR_TIMEOUT && n == 0) {
      continue; /* nothing yet: look at the call again */
    } else if (rc != 0 && rc != LIBUSB_ERROR_TIMEOUT) {
      end = usbdev__status_from_libusb(rc);
      snprintf(why, sizeof why, "reading endpoint 0x%02x: %s", s->ep.address, libusb_strerror(rc));
      dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_WARN, "stream on interface %u: %s", s->ep.ifc,
                       why);
    } else {
      end = stream_send(s, item, enc, cap, buf, n); /* not OK once the call has ended */
    }
  }
  (void)dfnet_call_reply(s->call, end, why[0] != '\0' ? why : NULL, NULL, 0);
  free(item);
  free(enc);
  free(buf);
  atomic_store(&s->done, true);
  return NULL;
}

void usbdev__stream_start(usb_dev_t *u, dfnet_call_t *call, const usbdev_endpoint_t *ep,
                          uint32_t length) {
  usbdev_stream_t *s = drvkit__calloc(call, sizeof *s);
  if (s == NULL)
    return;
  *s = (usbdev_stream_t){.driver = u->driver, .h = u->h, .call = call, .ep = *ep, .length = length};
  atomic_init(&s->quit, false);
  atomic_init(&s->done, false);
  int rc = pthread_create(&s->thread, NULL, reader_main, s);
  if (rc != 0) {
    free(s);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "cannot start a reader thread: %s",
                 strerror(rc));
    return;
  }
  DL_PREPEND(u->streams, s);
  dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_DEBUG,
                   "stream on endpoint 0x%02x (interface %u) for %s, %u bytes a transfer",
                   ep->address, ep->ifc, dfnet_call_caller(call), length);
}

void usbdev__streams_end(usb_dev_t *u, int ifc, const char *why) {
  usbdev_stream_t *s;
  DL_FOREACH(u->streams, s) {
    if (ifc >= 0 && s->ep.ifc != ifc)
      continue;
    if (!atomic_load(&s->quit))
      snprintf(s->why, sizeof s->why, "%s", why);
    atomic_store(&s->quit, true);
  }
}

/* Join and free the streams that are done (all: every stream, waiting for each). */
static void join(usb_dev_t *u, bool all) {
  usbdev_stream_t *s, *tmp;
  DL_FOREACH_SAFE(u->streams, s, tmp) {
    if (!all && !atomic_load(&s->done))
      continue;
    pthread_join(s->thread, NULL);
    DL_DELETE(u->streams, s);
    free(s);
  }
}

void usbdev__streams_reap(usb_dev_t *u) { join(u, false); }

void usbdev__streams_join(usb_dev_t *u) {
  usbdev__streams_end(u, -1, "usb-device is stopping");
  join(u, true);
}
