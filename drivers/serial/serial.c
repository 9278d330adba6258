/* serial: a serial port (a board's UART, a USB serial adapter) served as
 * dfnet.hw.serial.Serial (proto/dfnet/hw/serial.proto): the remote console of a lab board.
 *
 *   start        finds the node's tty (port.h), opens it in raw mode, starts the reader
 *                thread, serves Serial and publishes class "serial". No tty, or one that
 *                cannot be opened: FAILED_PRECONDITION with the reason.
 *   prepare_stop wakes the reader thread and joins it.
 *   stop         ends what is still waiting (UNAVAILABLE) and closes the port.
 *
 * Threads. The reader thread is the only reader of the port: it polls the tty and an
 * eventfd (its stop signal), and appends what arrives, under `mu`, to the Read buffer
 * and to every subscriber's buffer, each bounded (64 KiB; the oldest bytes go first and
 * are counted); then it posts one task_flush to the dispatcher. Everything else runs on
 * the default dispatcher (no allow_sync_calls: nothing here blocks it):
 *  - Read takes from the Read buffer at once, or parks (with a timer task and a cancel
 *    callback, both naming the Read by id, never by pointer) until task_flush serves it.
 *  - Subscribe registers a stream and sends it an empty Data item at once (the stream is
 *    in place: what the port receives from then on reaches it); task_flush sends what its
 *    buffer holds, 4 KiB a Data item. The caller's credit window is honoured by dfnet_call_send:
 * with no room it returns RESOURCE_EXHAUSTED at once, the item is kept, and a flush is retried 10
 * ms later. The data keeps accumulating (bounded) meanwhile.
 *  - Write writes what the non-blocking tty takes and retries every 5 ms for the rest,
 *    until done, cancelled, or its deadline (10 s at most) passes.
 * A port that fails (hang-up, I/O error, unplugged adapter) ends every waiting Read and
 * stream with UNAVAILABLE; later calls get UNAVAILABLE with the same reason.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pb_encode.h>

#include "dfnet/driver.h"
#include "dfnet/hw/serial.pb.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/retry.h"
#include "drivers/serial/port.h"

#define SERIAL_BUF_SIZE 65536u /* the Read buffer and each stream's buffer, bytes */
#define SERIAL_ITEM_MAX 4096u  /* bytes per Read reply / Data item (serial.options) */
#define SERIAL_WRITE_MAX_MS 10000u
#define SERIAL_WRITE_RETRY_MS 5u
#define SERIAL_FLUSH_RETRY_MS 10u

/* A bounded byte ring that drops its oldest bytes when full. */
typedef struct ring {
  uint8_t *buf; /* SERIAL_BUF_SIZE bytes */
  size_t head;  /* index of the oldest byte */
  size_t len;
} ring_t;

/* Append data; returns how many old bytes were dropped to make room. */
static size_t ring_push(ring_t *r, const uint8_t *data, size_t n) {
  size_t dropped = 0;
  if (n > SERIAL_BUF_SIZE) {
    dropped += n - SERIAL_BUF_SIZE;
    data += n - SERIAL_BUF_SIZE;
    n = SERIAL_BUF_SIZE;
  }
  if (r->len + n > SERIAL_BUF_SIZE) {
    size_t drop = r->len + n - SERIAL_BUF_SIZE;
    r->head = (r->head + drop) % SERIAL_BUF_SIZE;
    r->len -= drop;
    dropped += drop;
  }
  for (size_t i = 0; i < n; i++)
    r->buf[(r->head + r->len + i) % SERIAL_BUF_SIZE] = data[i];
  r->len += n;
  return dropped;
}

/* Take up to max bytes into out; returns how many. */
static size_t ring_pop(ring_t *r, uint8_t *out, size_t max) {
  size_t n = r->len < max ? r->len : max;
  for (size_t i = 0; i < n; i++)
    out[i] = r->buf[(r->head + i) % SERIAL_BUF_SIZE];
  r->head = (r->head + n) % SERIAL_BUF_SIZE;
  r->len -= n;
  return n;
}

/* A Subscribe stream. */
typedef struct stream {
  uint64_t id;
  dfnet_call_t *call;
  ring_t ring;      /* under mu */
  uint64_t dropped; /* under mu: bytes lost since the last item */
  uint8_t *held;    /* an encoded Data item the window had no room for (dispatcher) */
  size_t held_len;
  struct stream *next;
} stream_t;

/* A parked Read. */
typedef struct pending_read {
  uint64_t id;
  dfnet_call_t *call;
  uint32_t max_bytes;
  struct pending_read *next;
} pending_read_t;

/* A Write in progress (served in order). */
typedef struct write_job {
  dfnet_call_t *call;
  uint8_t data[SERIAL_ITEM_MAX];
  size_t len, done;
  uint64_t give_up_ms;
  struct write_job *next;
} write_job_t;

typedef struct serial {
  dfnet_driver_t *driver;
  char tty[1024];
  int fd;
  int wake_fd; /* eventfd: tells the reader thread to exit */
  pthread_t reader;
  bool reader_running;
  pthread_mutex_t mu;
  bool mu_ready;
  /* Under mu: */
  ring_t rx; /* received, not yet Read */
  stream_t *streams;
  bool flush_posted; /* a task_flush is queued */
  char failure[256]; /* non-empty once the port failed */
  /* Dispatcher only: */
  pending_read_t *reads;      /* oldest first */
  write_job_t *writes;        /* oldest first */
  drvkit_retry_t write_retry; /* write_pump again: the tty took less than asked */
  drvkit_retry_t flush_retry; /* flush again: a stream's window was full */
  uint64_t next_id;
} serial_t;

static void task_flush(dfnet_driver_t *driver, void *ctx, void *arg);

/* ---- the reader thread ------------------------------------------------------------ */

static void reader_deliver(serial_t *s, const uint8_t *data, size_t n, const char *failure) {
  pthread_mutex_lock(&s->mu);
  if (n > 0) {
    (void)ring_push(&s->rx, data, n);
    for (stream_t *st = s->streams; st != NULL; st = st->next)
      st->dropped += ring_push(&st->ring, data, n);
  }
  if (failure != NULL)
    snprintf(s->failure, sizeof s->failure, "%s", failure);
  bool post = !s->flush_posted;
  s->flush_posted = true;
  pthread_mutex_unlock(&s->mu);
  if (post)
    (void)dfnet_driver_post(s->driver, 0, task_flush, NULL);
}

static void *reader_main(void *arg) {
  serial_t *s = arg;
  uint8_t buf[SERIAL_ITEM_MAX];
  char failure[256];
  for (;;) {
    struct pollfd pfd[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      snprintf(failure, sizeof failure, "serial port %.200s: poll: %s", s->tty, strerror(errno));
      reader_deliver(s, NULL, 0, failure);
      return NULL;
    }
    if (pfd[1].revents != 0)
      return NULL; /* prepare_stop */
    if (pfd[0].revents == 0)
      continue;
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n > 0) {
      reader_deliver(s, buf, (size_t)n, NULL);
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    /* End of file, EIO (hang-up: the other end closed, the adapter was unplugged) or
     * another error: the port is gone; stop reading it. */
    snprintf(failure, sizeof failure, "serial port %.200s failed: %s", s->tty,
             n == 0 ? "hang-up" : strerror(errno));
    reader_deliver(s, NULL, 0, failure);
    return NULL;
  }
}

/* The port's failure into why (empty string: healthy). Dispatcher or any thread. */
static bool port_failed(serial_t *s, char *why, size_t cap) {
  pthread_mutex_lock(&s->mu);
  snprintf(why, cap, "%s", s->failure);
  pthread_mutex_unlock(&s->mu);
  return why[0] != '\0';
}

/* ---- Read -------------------------------------------------------------------------------- */

/* Reply to a Read with what the Read buffer holds (possibly nothing). */
static void read_reply(serial_t *s, dfnet_call_t *call, uint32_t max_bytes) {
  dfnet_hw_serial_ReadReply *reply = calloc(1, sizeof *reply);
  if (reply == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  pthread_mutex_lock(&s->mu);
  reply->data.size = (pb_size_t)ring_pop(&s->rx, reply->data.bytes, max_bytes);
  pthread_mutex_unlock(&s->mu);
  drvkit__reply(call, dfnet_hw_serial_ReadReply_fields, reply);
  free(reply);
}

/* Remove the parked Read `id`; NULL when it is no longer parked. */
static pending_read_t *unpark(serial_t *s, uint64_t id) {
  for (pending_read_t **p = &s->reads; *p != NULL; p = &(*p)->next) {
    if ((*p)->id == id) {
      pending_read_t *r = *p;
      *p = r->next;
      return r;
    }
  }
  return NULL;
}

/* The Read's timeout passed with nothing received: OK with no data. */
static void task_read_timeout(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  serial_t *s = ctx;
  pending_read_t *r = unpark(s, (uint64_t)(uintptr_t)arg);
  if (r != NULL) {
    read_reply(s, r->call, r->max_bytes);
    free(r);
  }
}

static void read_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  serial_t *s = ctx;
  pending_read_t *r = unpark(s, (uint64_t)(uintptr_t)arg);
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
  if (port_failed(s, why, sizeof why)) {
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    return;
  }
  pending_read_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  r->id = ++s->next_id;
  r->call = call;
  r->max_bytes = max;
  pending_read_t **tail = &s->reads;
  while (*tail != NULL)
    tail = &(*tail)->next;
  *tail = r;
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

static stream_t *stream_unlink(serial_t *s, uint64_t id) {
  stream_t *found = NULL;
  pthread_mutex_lock(&s->mu);
  for (stream_t **p = &s->streams; *p != NULL; p = &(*p)->next) {
    if ((*p)->id == id) {
      found = *p;
      *p = found->next;
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return found;
}

static void stream_free(stream_t *st) {
  if (st == NULL)
    return;
  free(st->ring.buf);
  free(st->held);
  free(st);
}

static void stream_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  serial_t *s = ctx;
  stream_free(stream_unlink(s, (uint64_t)(uintptr_t)arg));
  (void)dfnet_call_reply(call, why, NULL, NULL, 0);
}

static bool stream_flush(serial_t *s, stream_t *st, bool *window_full);

/* /dfnet.hw.serial.Serial/Subscribe */
static void serial_subscribe(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  dfnet_hw_serial_SubscribeRequest req = dfnet_hw_serial_SubscribeRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_serial_SubscribeRequest_fields, &req, request, len))
    return;
  char why[256];
  if (port_failed(s, why, sizeof why)) {
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    return;
  }
  stream_t *st = calloc(1, sizeof *st);
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
  st->next = s->streams;
  s->streams = st;
  pthread_mutex_unlock(&s->mu);
  dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_DEBUG, "stream %llu subscribed (%s)",
                   (unsigned long long)st->id, dfnet_call_caller(call));
  /* The first item, empty (an empty Data encodes to no bytes): the stream is in place. */
  st->held = malloc(1);
  st->held_len = 0;
  bool window_full = false;
  if (st->held != NULL)
    (void)stream_flush(s, st, &window_full);
  if (window_full)
    drvkit__retry_arm(s->driver, &s->flush_retry);
}

/* Encode the next Data item of the stream into st->held (from its buffer). False when
 * there is nothing to send. */
static bool stream_take(serial_t *s, stream_t *st) {
  dfnet_hw_serial_Data *item = calloc(1, sizeof *item);
  if (item == NULL)
    return false;
  pthread_mutex_lock(&s->mu);
  item->data.size = (pb_size_t)ring_pop(&st->ring, item->data.bytes, SERIAL_ITEM_MAX);
  item->dropped = st->dropped;
  st->dropped = 0;
  pthread_mutex_unlock(&s->mu);
  bool any = item->data.size > 0 || item->dropped > 0;
  size_t size = 0;
  if (any && pb_get_encoded_size(&size, dfnet_hw_serial_Data_fields, item) &&
      (st->held = malloc(size > 0 ? size : 1)) != NULL) {
    pb_ostream_t out = pb_ostream_from_buffer(st->held, size);
    if (pb_encode(&out, dfnet_hw_serial_Data_fields, item))
      st->held_len = out.bytes_written;
    else {
      free(st->held);
      st->held = NULL;
    }
  }
  free(item);
  return st->held != NULL;
}

/* Send what the stream holds while its window has room. Returns false when the stream
 * ended (the caller is gone: it was replied to and freed). */
static bool stream_flush(serial_t *s, stream_t *st, bool *window_full) {
  while (st->held != NULL || stream_take(s, st)) {
    dfnet_status_t rc = dfnet_call_send(st->call, st->held, st->held_len);
    if (rc == DFNET_STATUS_RESOURCE_EXHAUSTED) {
      *window_full = true;
      return true;
    }
    free(st->held);
    st->held = NULL;
    if (rc != DFNET_STATUS_OK) {
      /* The call ended (cancelled, deadline, stopping): its cancel callback is queued
       * and will unlink, free and complete it. */
      return true;
    }
  }
  return true;
}

/* ---- flushing: what the reader thread delivered ---------------------------------------- */

static void end_everything(serial_t *s, const char *why) {
  while (s->reads != NULL) {
    pending_read_t *r = s->reads;
    s->reads = r->next;
    drvkit__fail(r->call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    free(r);
  }
  for (;;) {
    pthread_mutex_lock(&s->mu);
    stream_t *st = s->streams;
    if (st != NULL)
      s->streams = st->next;
    pthread_mutex_unlock(&s->mu);
    if (st == NULL)
      break;
    (void)dfnet_call_reply(st->call, DFNET_STATUS_UNAVAILABLE, why, NULL, 0);
    stream_free(st);
  }
}

/* Serve parked Reads and streams from what the reader delivered; `retry`: the run of
 * flush_retry, not the reader's task_flush. Dispatcher. */
static void flush(serial_t *s, bool retry) {
  pthread_mutex_lock(&s->mu);
  if (!retry)
    s->flush_posted = false;
  bool have = s->rx.len > 0;
  pthread_mutex_unlock(&s->mu);
  /* Parked Reads, oldest first. */
  while (have && s->reads != NULL) {
    pending_read_t *r = s->reads;
    s->reads = r->next;
    read_reply(s, r->call, r->max_bytes);
    free(r);
    pthread_mutex_lock(&s->mu);
    have = s->rx.len > 0;
    pthread_mutex_unlock(&s->mu);
  }
  /* Streams: the list only changes on this dispatcher, so walking it unlocked is safe. */
  bool window_full = false;
  for (stream_t *st = s->streams; st != NULL; st = st->next)
    (void)stream_flush(s, st, &window_full);
  if (window_full)
    drvkit__retry_arm(s->driver, &s->flush_retry);
  char why[256];
  if (port_failed(s, why, sizeof why))
    end_everything(s, why);
}

static void task_flush(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  (void)arg;
  flush(ctx, false);
}

static void flush_again(void *ctx) { flush(ctx, true); }

/* ---- Write ----------------------------------------------------------------------------- */

static void write_pump(serial_t *s) {
  while (s->writes != NULL) {
    write_job_t *w = s->writes;
    ssize_t n = 0;
    while (w->done < w->len && (n = write(s->fd, w->data + w->done, w->len - w->done)) > 0)
      w->done += (size_t)n;
    dfnet_status_t st;
    if (w->done == w->len) {
      dfnet_hw_serial_WriteReply reply = {.written = (uint32_t)w->done};
      drvkit__reply(w->call, dfnet_hw_serial_WriteReply_fields, &reply);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      drvkit__fail(w->call, DFNET_STATUS_UNAVAILABLE, "writing %s: %s (%zu of %zu bytes written)",
                   s->tty, strerror(errno), w->done, w->len);
    } else if ((st = dfnet_call_status(w->call)) != DFNET_STATUS_OK) {
      (void)dfnet_call_reply(w->call, st, NULL, NULL, 0);
    } else if (drvkit__now_ms() >= w->give_up_ms) {
      drvkit__fail(w->call, DFNET_STATUS_DEADLINE_EXCEEDED,
                   "%s took %zu of %zu bytes before the deadline (flow control holding it?)",
                   s->tty, w->done, w->len);
    } else {
      drvkit__retry_arm(s->driver, &s->write_retry);
      return; /* when stopping, stop() ends it */
    }
    s->writes = w->next;
    free(w);
  }
}

static void write_again(void *ctx) { write_pump(ctx); }

/* /dfnet.hw.serial.Serial/Write */
static void serial_write(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  char why[256];
  if (port_failed(s, why, sizeof why)) {
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    return;
  }
  dfnet_hw_serial_WriteRequest *req = calloc(1, sizeof *req);
  write_job_t *w = calloc(1, sizeof *w);
  if (req == NULL || w == NULL) {
    free(req);
    free(w);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (!drvkit__decode(call, dfnet_hw_serial_WriteRequest_fields, req, request, len)) {
    free(req);
    free(w);
    return;
  }
  w->call = call;
  memcpy(w->data, req->data.bytes, req->data.size);
  w->len = req->data.size;
  free(req);
  uint32_t left = dfnet_call_deadline_left_ms(call);
  w->give_up_ms = drvkit__now_ms() + (left < SERIAL_WRITE_MAX_MS ? left : SERIAL_WRITE_MAX_MS);
  write_job_t **tail = &s->writes;
  while (*tail != NULL)
    tail = &(*tail)->next;
  *tail = w;
  if (s->writes == w) /* else an earlier Write is waiting for the port */
    write_pump(s);
}

/* ---- Configure ------------------------------------------------------------------------- */

/* /dfnet.hw.serial.Serial/Configure */
static void serial_configure(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  serial_t *s = ctx;
  dfnet_hw_serial_Config want = dfnet_hw_serial_Config_init_zero;
  dfnet_hw_serial_Config got = dfnet_hw_serial_Config_init_zero;
  if (!drvkit__decode(call, dfnet_hw_serial_Config_fields, &want, request, len))
    return;
  char why[256];
  dfnet_status_t st = serial__configure(s->fd, &want, &got, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    drvkit__fail(call, st, "%s: %s", s->tty, why);
    return;
  }
  dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_INFO,
                   "%s: %u baud, %u data bits, parity %d, "
                   "%u stop bits, flow control %d",
                   s->tty, got.baud_rate, got.data_bits, (int)got.parity, got.stop_bits,
                   (int)got.flow_control);
  drvkit__reply(call, dfnet_hw_serial_Config_fields, &got);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static dfnet_status_t serial_start(dfnet_driver_t *driver, void *ctx) {
  serial_t *s = ctx;
  char why[512];
  s->driver = driver;
  s->fd = -1;
  s->wake_fd = -1;
  s->write_retry = (drvkit_retry_t){.run = write_again, .delay_ms = SERIAL_WRITE_RETRY_MS};
  s->flush_retry = (drvkit_retry_t){.run = flush_again, .delay_ms = SERIAL_FLUSH_RETRY_MS};
  dfnet_status_t st = serial__find_tty(driver, s->tty, sizeof s->tty, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    return st;
  }
  s->fd = serial__open_raw(s->tty, why, sizeof why);
  if (s->fd < 0) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  st = DFNET_STATUS_INTERNAL;
  if ((s->rx.buf = malloc(SERIAL_BUF_SIZE)) == NULL)
    goto close_port;
  if ((s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
    goto close_port;
  pthread_mutex_init(&s->mu, NULL);
  s->mu_ready = true;
  static const dfnet_method_t methods[] = {
      {.name = "Configure", .handler = serial_configure},
      {.name = "Write", .handler = serial_write},
      {.name = "Read", .handler = serial_read},
      {.name = "Subscribe", .handler = serial_subscribe, .server_streaming = true},
  };
  st = dfnet_driver_serve(driver, "dfnet.hw.serial.Serial", methods, 4);
  if (st != DFNET_STATUS_OK)
    goto close_port;
  if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
    st = DFNET_STATUS_INTERNAL;
    goto close_port;
  }
  s->reader_running = true;
  (void)drvkit__publish_class(driver, "serial");
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving %s", s->tty);
  return DFNET_STATUS_OK;

close_port:
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "cannot start on %s: %s", s->tty,
                   dfnet_status_str(st));
  if (s->wake_fd >= 0)
    close(s->wake_fd);
  free(s->rx.buf);
  close(s->fd);
  if (s->mu_ready)
    pthread_mutex_destroy(&s->mu);
  return st;
}

static void serial_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  serial_t *s = ctx;
  if (s->reader_running) {
    uint64_t one = 1;
    (void)!write(s->wake_fd, &one, sizeof one);
    pthread_join(s->reader, NULL);
    s->reader_running = false;
  }
}

static void serial_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  serial_t *s = ctx;
  end_everything(s, "the driver stopped");
  while (s->writes != NULL) {
    write_job_t *w = s->writes;
    s->writes = w->next;
    (void)dfnet_call_reply(w->call, DFNET_STATUS_UNAVAILABLE, "the driver stopped", NULL, 0);
    free(w);
  }
  free(s->rx.buf);
  close(s->wake_fd);
  close(s->fd);
  pthread_mutex_destroy(&s->mu);
}

static const dfnet_driver_ops_t serial_ops = {
    .api_version = DFNET_DRIVER_API_VERSION,
    .name = "serial",
    .ctx_size = sizeof(serial_t),
    .start = serial_start,
    .prepare_stop = serial_prepare_stop,
    .stop = serial_stop,
};
DFNET_DRIVER_EXPORT(serial_ops);
