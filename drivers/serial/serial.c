/* serial: a serial port (a board's UART, a USB serial adapter) served as
 * dfnet.hw.serial.Serial (proto/dfnet/hw/serial.proto): the remote console of a lab board.
 * This is the core; the port itself is a backend (serial.h): a kernel tty (tty.c) or a USB
 * serial adapter's interface reached through the dfnet.hw.usb.Interface its parent,
 * usb-device, offers (usb.c).
 *
 *   start        picks the backend (a "dfnet.platform.TTY" property: tty; a USB interface
 *                node: usb), opens the port, serves Serial, publishes class "serial" and
 *                offers Serial to a child "port" (a lab board's console parent). A
 *                port that cannot be opened: FAILED_PRECONDITION with the reason. (A USB
 *                port finishes opening after start: its calls wait for it, and if it fails
 *                they get UNAVAILABLE with the reason.)
 *   prepare_stop stops the backend (its reader thread, its calls).
 *   stop         ends what is still waiting (UNAVAILABLE) and closes the port.
 *
 * Everything here runs on the default dispatcher (no allow_sync_calls: nothing blocks it).
 * What the port receives arrives through serial__deliver (from the tty reader thread, or
 * from the USB backend on the dispatcher), under `mu`, into the Read buffer and every
 * subscriber's buffer, each bounded (ring.c: 64 KiB; the oldest bytes go first and are
 * counted); then one flush task serves them:
 *  - Read takes from the Read buffer at once, or parks (with a timer task and a cancel
 *    callback, both naming the Read by id, never by pointer) until a flush serves it.
 *  - Subscribe registers a stream and sends it an empty Data item at once (the stream is
 *    in place: what the port receives from then on reaches it); a flush sends what its
 *    buffer holds, 4 KiB a Data item. The caller's credit window is honoured by
 *    dfnet_call_send: with no room it returns RESOURCE_EXHAUSTED at once, the item is kept,
 *    and a flush is retried 10 ms later. The data keeps accumulating (bounded) meanwhile.
 *  - Write and Configure are jobs served one at a time, in order, by the backend
 *    (serial__job_done ends each; jobs.c), once the port is open. A Write from anyone but the
 *    caller attached to the console (Attach's writer seat) ends FAILED_PRECONDITION.
 *  - Everything received also goes into the port's history (history.c: a ring, 1 MiB by
 *    default, the setting "history_bytes"), which Log and Attach streams replay and follow
 *    (log.c), flushed with the others.
 * A port that fails (hang-up, I/O error, unplugged adapter) ends every waiting Read,
 * stream and job with UNAVAILABLE; later calls get UNAVAILABLE with the same reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utlist.h>

#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "drivers/common/drvkit.h"
#include "drivers/serial/held.h"
#include "drivers/serial/serial.h"

#define SERIAL_FLUSH_RETRY_MS 10u
#define SERIAL_HISTORY_DEFAULT "1048576" /* the history's bytes (setting "history_bytes") */

/* A Subscribe stream. */
struct serial_stream {
  uint64_t id;
  dfnet_call_t *call;
  serial_ring_t ring; /* under mu */
  uint64_t dropped;   /* under mu: bytes lost since the last item */
  serial_held_t held; /* an encoded Data item the window had no room for (dispatcher) */
  serial_stream_t *next;
};

/* A parked Read. */
struct serial_read {
  uint64_t id;
  dfnet_call_t *call;
  uint32_t max_bytes;
  serial_read_t *next;
};

static void task_flush(dfnet_driver_t *driver, void *ctx, void *arg);

/* ---- what the port delivers ---------------------------------------------------------- */

static uint64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void serial__deliver(serial_t *s, const uint8_t *data, size_t n, const char *failure) {
  pthread_mutex_lock(&s->mu);
  if (n > 0) {
    serial_history_append(&s->history, data, n, unix_ms());
    (void)serial_ring_push(&s->rx, data, n);
    for (serial_stream_t *st = s->streams; st != NULL; st = st->next)
      st->dropped += serial_ring_push(&st->ring, data, n);
  }
  if (failure != NULL && s->failure[0] == '\0')
    snprintf(s->failure, sizeof s->failure, "%s", failure);
  bool post = !s->flush_posted;
  s->flush_posted = true;
  pthread_mutex_unlock(&s->mu);
  if (post)
    (void)dfnet_driver_post(s->driver, 0, task_flush, NULL);
}

/* The port's failure into why (empty string: healthy). Dispatcher or any thread. */
bool serial__failed(serial_t *s, char *why, size_t cap) {
  pthread_mutex_lock(&s->mu);
  snprintf(why, cap, "%s", s->failure);
  pthread_mutex_unlock(&s->mu);
  return why[0] != '\0';
}

/* ---- Read -------------------------------------------------------------------------------- */

/* Reply to a Read with what the Read buffer holds (possibly nothing). */
static void read_reply(serial_t *s, dfnet_call_t *call, uint32_t max_bytes) {
  dfnet_hw_serial_ReadReply *reply = drvkit__calloc(call, sizeof *reply);
  if (reply == NULL)
    return;
  pthread_mutex_lock(&s->mu);
  reply->data.size = (pb_size_t)serial_ring_pop(&s->rx, reply->data.bytes, max_bytes);
  pthread_mutex_unlock(&s->mu);
  drvkit__reply(call, dfnet_hw_serial_ReadReply_fields, reply);
  free(reply);
}

/* Remove the parked Read `id`; NULL when it is no longer parked. */
static serial_read_t *unpark(serial_t *s, uint64_t id) {
  serial_read_t *r;
  LL_SEARCH_SCALAR(s->reads, r, id, id);
  if (r != NULL)
    LL_DELETE(s->reads, r);
  return r;
}

/* The Read's timeout passed with nothing received: OK with no data. */
static void task_read_timeout(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  serial_t *s = ctx;
  serial_read_t *r = unpark(s, (uint64_t)(uintptr_t)arg);
  if (r != NULL) {
    read_reply(s, r->call, r->max_bytes);
    free(r);
  }
}

static void read_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  serial_t *s = ctx;
  serial_read_t *r = unpark(s, (uint64_t)(uintptr_t)arg);
  (void)dfnet_call_reply(call, why, NULL, NULL, 0);
  free(r);
}

/* /dfnet.hw.serial.Serial/Read */
static void serial_read(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  dfnet_hw_serial_ReadRequest req = dfnet_hw_serial_ReadRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_serial_ReadRequest_fields, &req, request, len))
    return;
  if (req.max_bytes > SERIAL_ITEM_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "max_bytes %u: at most %u", req.max_bytes,
                 SERIAL_ITEM_MAX);
    return;
  }
  uint32_t max = req.max_bytes != 0 ? req.max_bytes : SERIAL_ITEM_MAX;
  char why[256];
  pthread_mutex_lock(&s->mu);
  bool ready = s->rx.len > 0;
  pthread_mutex_unlock(&s->mu);
  if (ready || req.timeout_ms == 0) {
    read_reply(s, call, max); /* what is buffered, even after a failure */
    return;
  }
  if (serial__failed(s, why, sizeof why)) {
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    return;
  }
  serial_read_t *r = drvkit__calloc(call, sizeof *r);
  if (r == NULL)
    return;
  r->id = ++s->next_id;
  r->call = call;
  r->max_bytes = max;
  LL_APPEND(s->reads, r);
  uint32_t left = dfnet_call_deadline_left_ms(call);
  uint32_t wait = req.timeout_ms < left ? req.timeout_ms : left;
  void *id = (void *)(uintptr_t)r->id;
  if (dfnet_driver_post(s->driver, wait, task_read_timeout, id) != DFNET_STATUS_OK ||
      dfnet_call_on_cancel(call, read_cancelled, id) != DFNET_STATUS_OK) {
    free(unpark(s, r->id));
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "the driver is stopping");
  }
}

/* ---- Subscribe --------------------------------------------------------------------------- */

static serial_stream_t *stream_unlink(serial_t *s, uint64_t id) {
  serial_stream_t *found;
  pthread_mutex_lock(&s->mu);
  LL_SEARCH_SCALAR(s->streams, found, id, id);
  if (found != NULL)
    LL_DELETE(s->streams, found);
  pthread_mutex_unlock(&s->mu);
  return found;
}

static void stream_free(serial_stream_t *st) {
  if (st == NULL)
    return;
  free(st->ring.buf);
  serial_held_clear(&st->held);
  free(st);
}

static void stream_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  serial_t *s = ctx;
  stream_free(stream_unlink(s, (uint64_t)(uintptr_t)arg));
  (void)dfnet_call_reply(call, why, NULL, NULL, 0);
}

static void stream_flush(serial_t *s, serial_stream_t *st, bool *window_full);

/* /dfnet.hw.serial.Serial/Subscribe */
static void serial_subscribe(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  dfnet_hw_serial_SubscribeRequest req = dfnet_hw_serial_SubscribeRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_serial_SubscribeRequest_fields, &req, request, len))
    return;
  char why[256];
  if (serial__failed(s, why, sizeof why)) {
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    return;
  }
  serial_stream_t *st = calloc(1, sizeof *st);
  if (st == NULL || (st->ring.buf = malloc(SERIAL_BUF_SIZE)) == NULL) {
    stream_free(st);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  st->id = ++s->next_id;
  st->call = call;
  if (dfnet_call_on_cancel(call, stream_cancelled, (void *)(uintptr_t)st->id) != DFNET_STATUS_OK) {
    stream_free(st);
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "the call ended");
    return;
  }
  pthread_mutex_lock(&s->mu);
  LL_PREPEND(s->streams, st);
  pthread_mutex_unlock(&s->mu);
  dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_DEBUG, "stream %llu subscribed (%s)",
                   (unsigned long long)st->id, dfnet_call_caller(call));
  /* The first item, empty (an empty Data encodes to no bytes): the stream is in place. */
  st->held = (serial_held_t){.buf = malloc(1), .len = 0};
  bool window_full = false;
  if (st->held.buf != NULL)
    stream_flush(s, st, &window_full);
  if (window_full)
    drvkit__retry_arm(s->driver, &s->flush_retry);
}

/* The next Data item of Subscribe stream `stream`, from its buffer, into the zeroed *msg
 * (serial_item_kind_t's fill; ctx: the serial_t). False when there is nothing to send. */
static bool stream_fill(void *ctx, void *stream, void *msg) {
  serial_t *s = ctx;
  serial_stream_t *st = stream;
  dfnet_hw_serial_Data *item = msg;
  pthread_mutex_lock(&s->mu);
  item->data.size = (pb_size_t)serial_ring_pop(&st->ring, item->data.bytes, SERIAL_ITEM_MAX);
  item->dropped = st->dropped;
  st->dropped = 0;
  pthread_mutex_unlock(&s->mu);
  return item->data.size > 0 || item->dropped > 0;
}

static const serial_item_kind_t stream_items = {
    .fields = dfnet_hw_serial_Data_fields,
    .size = sizeof(dfnet_hw_serial_Data),
    .fill = stream_fill,
};

/* Send what the stream holds while its window has room (*window_full set when it had
 * none). A call that ended leaves the stream to its cancel callback, which is queued and
 * will unlink, free and complete it. */
static void stream_flush(serial_t *s, serial_stream_t *st, bool *window_full) {
  (void)serial_held_send(&st->held, st->call, &stream_items, s, st, window_full);
}

/* ---- flushing: what the port delivered ---------------------------------------------- */

static void end_everything(serial_t *s, const char *why) {
  while (s->reads != NULL) {
    serial_read_t *r = s->reads;
    LL_DELETE(s->reads, r);
    drvkit__fail(r->call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    free(r);
  }
  for (;;) {
    pthread_mutex_lock(&s->mu);
    serial_stream_t *st = s->streams;
    if (st != NULL)
      LL_DELETE(s->streams, st);
    pthread_mutex_unlock(&s->mu);
    if (st == NULL)
      break;
    (void)dfnet_call_reply(st->call, DFNET_STATUS_UNAVAILABLE, why, NULL, 0);
    stream_free(st);
  }
  serial__pump(s); /* the jobs that wait end too */
}

/* Serve parked Reads and streams from what the port delivered; `retry`: the run of
 * flush_retry, not the flush task. Dispatcher. */
static void flush(serial_t *s, bool retry) {
  pthread_mutex_lock(&s->mu);
  if (!retry)
    s->flush_posted = false;
  bool have = s->rx.len > 0;
  pthread_mutex_unlock(&s->mu);
  /* Parked Reads, oldest first. */
  while (have && s->reads != NULL) {
    serial_read_t *r = s->reads;
    LL_DELETE(s->reads, r);
    read_reply(s, r->call, r->max_bytes);
    free(r);
    pthread_mutex_lock(&s->mu);
    have = s->rx.len > 0;
    pthread_mutex_unlock(&s->mu);
  }
  /* Streams: the list only changes on this dispatcher, so walking it unlocked is safe. */
  bool window_full = false;
  for (serial_stream_t *st = s->streams; st != NULL; st = st->next)
    stream_flush(s, st, &window_full);
  serial__logs_flush(s, &window_full);
  if (window_full)
    drvkit__retry_arm(s->driver, &s->flush_retry);
  char why[256];
  if (serial__failed(s, why, sizeof why))
    end_everything(s, why);
}

static void task_flush(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  (void)arg;
  flush(ctx, false);
}

static void flush_again(void *ctx) { flush(ctx, true); }

void serial__port_failed(serial_t *s, const char *why) {
  serial__deliver(s, NULL, 0, why);
  dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_WARN, "%s", why);
}

/* ---- Write and Configure: their requests, queued as jobs (jobs.c) ----------------------- */

/* /dfnet.hw.serial.Serial/Write */
static void serial_write(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  dfnet_hw_serial_WriteRequest *req = calloc(1, sizeof *req);
  serial_job_t *j = calloc(1, sizeof *j);
  if (req == NULL || j == NULL) {
    free(req);
    free(j);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (!drvkit__decode(call, dfnet_hw_serial_WriteRequest_fields, req, request, len)) {
    free(req);
    free(j);
    return;
  }
  char why[512];
  if (!serial__may_write(s, call, why, sizeof why)) {
    free(req);
    free(j);
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION, "%s", why);
    return;
  }
  j->call = call;
  memcpy(j->data, req->data.bytes, req->data.size);
  j->len = req->data.size;
  free(req);
  uint32_t left = dfnet_call_deadline_left_ms(call);
  j->give_up_ms = drvkit__now_ms() + (left < SERIAL_WRITE_MAX_MS ? left : SERIAL_WRITE_MAX_MS);
  serial__enqueue(s, j);
}

/* /dfnet.hw.serial.Serial/Configure */
static void serial_configure(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  serial_job_t *j = drvkit__calloc(call, sizeof *j);
  if (j == NULL)
    return;
  if (!drvkit__decode(call, dfnet_hw_serial_Config_fields, &j->config, request, len)) {
    free(j);
    return;
  }
  j->call = call;
  j->configure = true;
  serial__enqueue(s, j);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

/* The backend for the node: a tty for a board-file serial port, the USB one for an interface
 * of a USB device. NULL (why set) when the node is neither. */
static const serial_port_ops_t *backend(dfnet_driver_t *driver, char *why, size_t cap) {
  if (drvkit__prop_string(driver, "dfnet.platform.TTY") != NULL)
    return &serial__tty_ops;
  uint32_t protocol = 0;
  if (drvkit__prop_uint(driver, DFNET_BIND_PROTOCOL, NULL, &protocol) &&
      protocol == BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE)
    return &serial__usb_ops;
  snprintf(why, cap,
           "the node has neither \"dfnet.platform.TTY\" (a board-file serial port) nor is it a "
           "USB interface (fuchsia.BIND_PROTOCOL %u)",
           protocol);
  return NULL;
}

/* Stop the port's backend (prepare_stop: it is idempotent) and release it: its close, then
 * its state. Dispatcher. */
static void port_close(serial_t *s) {
  s->ops->prepare_stop(s);
  if (s->port == NULL)
    return;
  if (s->ops->close != NULL)
    s->ops->close(s);
  free(s->port);
  s->port = NULL;
}

static dfnet_status_t serial_start(dfnet_driver_t *driver, void *ctx) {
  serial_t *s = ctx;
  char why[512];
  s->driver = driver;
  s->flush_retry = (drvkit_retry_t){.run = flush_again, .delay_ms = SERIAL_FLUSH_RETRY_MS};
  s->ops = backend(driver, why, sizeof why);
  if (s->ops == NULL) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  char text[24];
  char *end = NULL;
  unsigned long long history = 0;
  if (drvkit__setting(driver, "history_bytes", "DFNET_SERIAL_HISTORY_BYTES", SERIAL_HISTORY_DEFAULT,
                      text, sizeof text) != DFNET_STATUS_OK ||
      (history = strtoull(text, &end, 10), *end != '\0') ||
      serial_history_init(&s->history, (size_t)history) == DFNET_STATUS_INVALID_ARGUMENT) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "setting \"history_bytes\" \"%s\": must be 1024..268435456 bytes", text);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (s->history.buf == NULL || (s->rx.buf = malloc(SERIAL_BUF_SIZE)) == NULL) {
    serial_history_free(&s->history);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  pthread_mutex_init(&s->mu, NULL);
  s->mu_ready = true;
  dfnet_status_t st = s->ops->open(s, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    goto free_buffer;
  }
  static const dfnet_method_t methods[] = {
      {.name = "Configure", .handler = serial_configure},
      {.name = "Write", .handler = serial_write},
      {.name = "Read", .handler = serial_read},
      {.name = "Subscribe", .handler = serial_subscribe, .server_streaming = true},
      {.name = "Log", .handler = serial__log, .server_streaming = true},
      {.name = "Attach", .handler = serial__attach, .server_streaming = true},
  };
  st = dfnet_driver_serve(driver, "dfnet.hw.serial.Serial", methods,
                          sizeof methods / sizeof methods[0]);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "cannot serve on %s: %s", s->name,
                     dfnet_status_str(st));
    goto close_port;
  }
  (void)drvkit__publish_class(driver, "serial");
  (void)drvkit__offer_child(driver, "port", "dfnet.hw.serial.Serial"); /* for a board */
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving %s (%s)", s->name, s->ops->name);
  return DFNET_STATUS_OK;

close_port:
  port_close(s);
free_buffer:
  free(s->rx.buf);
  serial_history_free(&s->history);
  pthread_mutex_destroy(&s->mu);
  return st;
}

static void serial_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  serial_t *s = ctx;
  s->ops->prepare_stop(s);
}

static void serial_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  serial_t *s = ctx;
  port_close(s);
  pthread_mutex_lock(&s->mu);
  if (s->failure[0] == '\0')
    snprintf(s->failure, sizeof s->failure, "the driver stopped");
  pthread_mutex_unlock(&s->mu);
  end_everything(s, "the driver stopped");
  serial__logs_end(s, "the driver stopped");
  serial__drop_jobs(s, "the driver stopped");
  free(s->rx.buf);
  serial_history_free(&s->history);
  pthread_mutex_destroy(&s->mu);
}

DFNET_DRIVER("serial", serial_t, .start = serial_start, .prepare_stop = serial_prepare_stop,
             .stop = serial_stop);
