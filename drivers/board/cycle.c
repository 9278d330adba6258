/* board: CycleAndWait (proto/dfnet/lab/board.proto): power-cycle the board and watch its
 * console for a pattern.
 *
 * One cycle at a time (b->cycle), named by an id in every callback, timer and cancel
 * callback; it goes through three phases:
 *
 *   OPENING   the console's Serial.Log{now, follow} is open; waiting for its first item
 *             (the stream is in place). At most CYCLE_OPEN_MS.
 *   WATCHING  Power.Cycle{off_ms} was called (its end only matters when it fails); every
 *             console byte goes to the caller as CycleProgress items and through the
 *             pattern search (the last plen - 1 bytes are carried across items), and the
 *             last 4 KiB are kept for the tail; timeout_ms counts from the Cycle call.
 *   ENDING    the end is decided (matched, deadline, a parent's failure): the Log stream is
 *             cancelled, the bytes not sent yet and the last item (matched, or the tail)
 *             go out, then the call is answered and the cycle freed.
 *
 * Credit: each Log item is handed on at once (dfnet_call_send); when the caller's window
 * is full (RESOURCE_EXHAUSTED: no allow_sync_calls, nothing blocks), the bytes wait in
 * `pending`, a timer retries, and the Log stream gets no new credit meanwhile, so what
 * waits is bounded by the Log's window (CYCLE_LOG_CREDIT items of at most 4 KiB).
 * The caller's cancel (or deadline) ends the cycle at once; a Power.Cycle in flight is left
 * to finish (cancelling it would leave the board off).
 */
/* memmem: _GNU_SOURCE is defined by the build (the top CMakeLists.txt) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "dfnet/driver.h"
#include "dfnet/hw/power.pb.h"
#include "dfnet/hw/serial.pb.h"
#include "dfnet/lab/board.pb.h"
#include "drivers/board/board.h"
#include "drivers/common/drvkit.h"

#define CYCLE_PATTERN_MAX 128u
#define CYCLE_TIMEOUT_DEFAULT 120000u
#define CYCLE_TIMEOUT_MAX 3600000u
#define CYCLE_OFF_MAX 600000u /* Power.Cycle's bound */
#define CYCLE_OPEN_MS 10000u  /* the most the Log stream may take to be in place */
#define CYCLE_ITEM 4096u      /* CycleProgress.console's bound */
#define CYCLE_LOG_CREDIT 16u
#define CYCLE_PENDING_MAX ((CYCLE_LOG_CREDIT + 2u) * CYCLE_ITEM)
#define CYCLE_RETRY_MS 20u /* the caller's window was full: try again then */

typedef enum cycle_phase { CYCLE_OPENING, CYCLE_WATCHING, CYCLE_ENDING } cycle_phase_t;

struct board_cycle {
  uint64_t id;
  dfnet_call_t *call;
  cycle_phase_t phase;
  char pattern[CYCLE_PATTERN_MAX + 1];
  size_t plen;
  uint32_t timeout_ms, off_ms;
  uint64_t deadline_at; /* drvkit__now_ms(): the phase's end */
  dfnet_driver_call_id_t log_id;
  bool log_open;                    /* the Log call has not ended */
  uint8_t carry[CYCLE_PATTERN_MAX]; /* the last plen - 1 bytes seen */
  size_t carry_len;
  uint8_t tail[CYCLE_ITEM]; /* the last bytes the console printed */
  size_t tail_len;
  uint8_t *pending; /* console bytes not sent yet (CYCLE_PENDING_MAX) */
  size_t pending_len;
  uint64_t pending_dropped;
  uint32_t owed_credit; /* Log items consumed while bytes were pending */
  bool retry_armed;
  /* ENDING */
  dfnet_status_t end_status;
  char end_msg[400];
  bool end_matched;   /* the last item says matched (after the pending bytes) */
  bool end_tail;      /* the last item holds the tail (the pending bytes are dropped) */
  bool end_item_sent; /* that last item went */
};

static board_cycle_t *cycle_find(board_t *b, uint64_t id) {
  return b->cycle != NULL && b->cycle->id == id ? b->cycle : NULL;
}

static void *id_arg(uint64_t id) { return (void *)(uintptr_t)id; }
static uint64_t arg_id(void *arg) { return (uint64_t)(uintptr_t)arg; }

static void cycle_free(board_t *b, board_cycle_t *c) {
  if (b->cycle == c)
    b->cycle = NULL;
  free(c->pending);
  free(c);
}

static void cycle_cancel_log(board_t *b, board_cycle_t *c) {
  if (c->log_open && b->console != NULL)
    (void)dfnet_driver_client_cancel(b->console, c->log_id);
}

static void cycle_flush(board_t *b, board_cycle_t *c);

static void cycle_retry(dfnet_driver_t *driver, void *ctx, void *arg) {
  board_t *b = ctx;
  (void)driver;
  board_cycle_t *c = cycle_find(b, arg_id(arg));
  if (c == NULL)
    return;
  c->retry_armed = false;
  cycle_flush(b, c);
}

/* Send one CycleProgress. Returns dfnet_call_send's status. */
static dfnet_status_t cycle_send(board_cycle_t *c, const uint8_t *data, size_t n, bool matched,
                                 bool tail) {
  dfnet_lab_CycleProgress p = dfnet_lab_CycleProgress_init_zero;
  if (n > 0)
    memcpy(p.console.bytes, data, n);
  p.console.size = (pb_size_t)n;
  p.matched = matched;
  p.tail = tail;
  uint8_t buf[dfnet_lab_CycleProgress_size];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  if (!pb_encode(&os, dfnet_lab_CycleProgress_fields, &p))
    return DFNET_STATUS_INTERNAL;
  return dfnet_call_send(c->call, buf, os.bytes_written);
}

/* Answer the call with the end decided and free the cycle. */
static void cycle_answer(board_t *b, board_cycle_t *c) {
  if (c->end_status == DFNET_STATUS_OK)
    (void)dfnet_call_reply(c->call, DFNET_STATUS_OK, NULL, NULL, 0);
  else
    drvkit__fail(c->call, c->end_status, "%s", c->end_msg);
  cycle_free(b, c);
}

/* Send what is pending (and, ENDING, the last item, then answer). On a full window, try
 * again in CYCLE_RETRY_MS. */
static void cycle_flush(board_t *b, board_cycle_t *c) {
  dfnet_status_t st = DFNET_STATUS_OK;
  while (c->pending_len > 0) {
    size_t n = c->pending_len < CYCLE_ITEM ? c->pending_len : CYCLE_ITEM;
    bool last = c->phase == CYCLE_ENDING && c->end_matched && n == c->pending_len;
    st = cycle_send(c, c->pending, n, last, false);
    if (st != DFNET_STATUS_OK)
      break;
    memmove(c->pending, c->pending + n, c->pending_len - n);
    c->pending_len -= n;
    if (last)
      c->end_item_sent = true;
  }
  if (st == DFNET_STATUS_OK && c->phase == CYCLE_ENDING && !c->end_item_sent &&
      (c->end_matched || c->end_tail)) {
    st = c->end_matched ? cycle_send(c, NULL, 0, true, false)
                        : cycle_send(c, c->tail, c->tail_len, false, true);
    if (st == DFNET_STATUS_OK)
      c->end_item_sent = true;
  }
  if (st == DFNET_STATUS_RESOURCE_EXHAUSTED) {
    if (!c->retry_armed && !b->stopping &&
        dfnet_driver_post(b->driver, CYCLE_RETRY_MS, cycle_retry, id_arg(c->id)) ==
            DFNET_STATUS_OK) {
      c->retry_armed = true;
      return;
    }
    if (c->retry_armed)
      return;
    st = DFNET_STATUS_UNAVAILABLE; /* the driver is stopping: give up */
  }
  if (st != DFNET_STATUS_OK) {
    /* the call has ended (cancelled, deadline, driver stopping), or a bug: answer it */
    cycle_cancel_log(b, c);
    if (c->phase != CYCLE_ENDING) {
      c->end_status = st;
      snprintf(c->end_msg, sizeof c->end_msg, "the call ended: %s", dfnet_status_str(st));
    }
    cycle_answer(b, c);
    return;
  }
  if (c->phase == CYCLE_ENDING) {
    cycle_answer(b, c);
    return;
  }
  if (c->owed_credit > 0 && b->console != NULL) {
    (void)dfnet_driver_client_credit(b->console, c->log_id, c->owed_credit);
    c->owed_credit = 0;
  }
}

/* Decide the end: cancel the Log stream and send what must go before the answer. */
static void cycle_end(board_t *b, board_cycle_t *c, dfnet_status_t status, bool matched, bool tail,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void cycle_end(board_t *b, board_cycle_t *c, dfnet_status_t status, bool matched, bool tail,
                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->end_msg, sizeof c->end_msg, fmt, ap);
  va_end(ap);
  c->phase = CYCLE_ENDING;
  c->end_status = status;
  c->end_matched = matched;
  c->end_tail = tail;
  if (tail)
    c->pending_len = 0; /* the tail holds the last of it */
  cycle_cancel_log(b, c);
  dfnet_driver_log(b->driver,
                   status == DFNET_STATUS_OK ? DFNET_DRIVER_LOG_INFO : DFNET_DRIVER_LOG_DEBUG,
                   "cycle %llu ends %s%s%s", (unsigned long long)c->id, dfnet_status_str(status),
                   c->end_msg[0] != '\0' ? ": " : "", c->end_msg);
  cycle_flush(b, c);
}

static void cycle_timer(dfnet_driver_t *driver, void *ctx, void *arg) {
  board_t *b = ctx;
  board_cycle_t *c = cycle_find(b, arg_id(arg));
  if (c == NULL || c->phase == CYCLE_ENDING)
    return;
  uint64_t now = drvkit__now_ms();
  if (now < c->deadline_at) {
    /* an earlier phase's timer: wait for the rest */
    (void)dfnet_driver_post(driver, (uint32_t)(c->deadline_at - now), cycle_timer, arg);
    return;
  }
  if (c->phase == CYCLE_OPENING)
    cycle_end(b, c, DFNET_STATUS_UNAVAILABLE, false, false,
              "console: the log stream was not in place within %u ms", CYCLE_OPEN_MS);
  else
    cycle_end(b, c, DFNET_STATUS_DEADLINE_EXCEEDED, false, true,
              "pattern \"%s\" not seen within %u ms", c->pattern, c->timeout_ms);
}

static void cycle_arm(board_t *b, board_cycle_t *c, uint32_t ms) {
  c->deadline_at = drvkit__now_ms() + ms;
  if (dfnet_driver_post(b->driver, ms, cycle_timer, id_arg(c->id)) != DFNET_STATUS_OK)
    dfnet_driver_log(b->driver, DFNET_DRIVER_LOG_WARN, "cycle %llu: no timer (stopping)",
                     (unsigned long long)c->id);
}

static void cycle_power_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                             dfnet_status_t status, const char *message, const uint8_t *data,
                             size_t len, void *arg) {
  board_t *b = ctx;
  (void)id;
  (void)data;
  (void)len;
  board_cycle_t *c = cycle_find(b, arg_id(arg));
  if (status != DFNET_STATUS_OK)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "Power.Cycle: %s: %s", dfnet_status_str(status),
                     message != NULL ? message : "");
  if (c == NULL || c->phase == CYCLE_ENDING || status == DFNET_STATUS_OK)
    return;
  cycle_end(b, c, status, false, false, "power: %s",
            message != NULL && message[0] != '\0' ? message : dfnet_status_str(status));
}

/* The Log stream is in place: cycle the power, and count the timeout from now. */
static void cycle_power(board_t *b, board_cycle_t *c) {
  c->phase = CYCLE_WATCHING;
  dfnet_hw_power_CycleRequest req = {.off_ms = c->off_ms};
  dfnet_driver_client_call_args_t args = {
      .method = "Cycle", .on_done = cycle_power_done, .arg = id_arg(c->id)};
  dfnet_status_t st =
      drvkit__call_encoded(b->power, &args, dfnet_hw_power_CycleRequest_fields, &req, NULL);
  if (st != DFNET_STATUS_OK) {
    cycle_end(b, c, st == DFNET_STATUS_INVALID_ARGUMENT ? DFNET_STATUS_INTERNAL : st, false, false,
              "power: cannot call Power.Cycle: %s", dfnet_status_str(st));
    return;
  }
  cycle_arm(b, c, c->timeout_ms);
}

/* Console bytes: keep the tail, search the pattern, hand them on. */
static void cycle_console(board_t *b, board_cycle_t *c, const uint8_t *p, size_t n) {
  board__keep_tail(c->tail, sizeof c->tail, &c->tail_len, p, n);

  /* the pattern, across items: the carried bytes, then these */
  uint8_t scan[CYCLE_PATTERN_MAX + CYCLE_ITEM];
  size_t sn = c->carry_len;
  memcpy(scan, c->carry, sn);
  size_t take = n < CYCLE_ITEM ? n : CYCLE_ITEM; /* a LogData holds at most 4096 */
  memcpy(scan + sn, p + n - take, take);
  sn += take;
  bool found = memmem(scan, sn, c->pattern, c->plen) != NULL;
  size_t keep = c->plen - 1 < sn ? c->plen - 1 : sn;
  memcpy(c->carry, scan + sn - keep, keep);
  c->carry_len = keep;

  if (c->pending_len + n > CYCLE_PENDING_MAX) { /* cannot happen with credit withheld */
    size_t drop = c->pending_len + n - CYCLE_PENDING_MAX;
    if (drop > c->pending_len)
      drop = c->pending_len;
    memmove(c->pending, c->pending + drop, c->pending_len - drop);
    c->pending_len -= drop;
    c->pending_dropped += drop;
  }
  size_t room = CYCLE_PENDING_MAX - c->pending_len;
  size_t put = n < room ? n : room;
  memcpy(c->pending + c->pending_len, p + n - put, put);
  c->pending_len += put;

  if (found)
    cycle_end(b, c, DFNET_STATUS_OK, true, false, "%s", "");
  else
    cycle_flush(b, c);
}

static void cycle_log_item(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                           const uint8_t *data, size_t len, void *arg) {
  board_t *b = ctx;
  (void)driver;
  (void)id;
  board_cycle_t *c = cycle_find(b, arg_id(arg));
  if (c == NULL || c->phase == CYCLE_ENDING)
    return; /* its stream is being cancelled */
  dfnet_hw_serial_LogData *d = calloc(1, sizeof *d);
  if (d == NULL) {
    cycle_end(b, c, DFNET_STATUS_RESOURCE_EXHAUSTED, false, false, "out of memory");
    return;
  }
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (!pb_decode(&is, dfnet_hw_serial_LogData_fields, d)) {
    cycle_end(b, c, DFNET_STATUS_UNAVAILABLE, false, false,
              "console: Serial.Log sent an item that is not a LogData: %s", PB_GET_ERROR(&is));
    free(d);
    return;
  }
  c->owed_credit++;
  if (c->phase == CYCLE_OPENING) {
    cycle_power(b, c);
    c = cycle_find(b, arg_id(arg)); /* it may have ended */
  }
  if (c != NULL && c->phase != CYCLE_ENDING && d->data.size > 0)
    cycle_console(b, c, d->data.bytes, d->data.size);
  else if (c != NULL && c->phase != CYCLE_ENDING)
    cycle_flush(b, c); /* gives the credit back */
  free(d);
}

static void cycle_log_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                           dfnet_status_t status, const char *message, const uint8_t *data,
                           size_t len, void *arg) {
  board_t *b = ctx;
  (void)driver;
  (void)id;
  (void)data;
  (void)len;
  board_cycle_t *c = cycle_find(b, arg_id(arg));
  if (c == NULL)
    return;
  c->log_open = false;
  if (c->phase == CYCLE_ENDING)
    return;
  cycle_end(b, c, DFNET_STATUS_UNAVAILABLE, false, false, "console: %s",
            status == DFNET_STATUS_OK               ? "the log stream ended"
            : message != NULL && message[0] != '\0' ? message
                                                    : dfnet_status_str(status));
}

/* The caller cancelled, or its deadline passed: end at once (the reply is dropped). */
static void cycle_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  board_t *b = ctx;
  (void)call;
  board_cycle_t *c = cycle_find(b, arg_id(arg));
  if (c == NULL)
    return;
  cycle_cancel_log(b, c);
  c->phase = CYCLE_ENDING;
  c->end_status = why;
  snprintf(c->end_msg, sizeof c->end_msg, "the call ended: %s", dfnet_status_str(why));
  cycle_answer(b, c);
}

void board__cycle_and_wait(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  board_t *b = ctx;
  dfnet_lab_CycleAndWaitRequest req;
  if (!drvkit__decode(call, dfnet_lab_CycleAndWaitRequest_fields, &req, request, len))
    return;
  size_t plen = strlen(req.pattern);
  if (plen == 0 || plen > CYCLE_PATTERN_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "pattern must be 1..%u bytes, not %zu",
                 CYCLE_PATTERN_MAX, plen);
    return;
  }
  if (req.timeout_ms > CYCLE_TIMEOUT_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "timeout_ms %u is over %u", req.timeout_ms,
                 CYCLE_TIMEOUT_MAX);
    return;
  }
  if (req.off_ms > CYCLE_OFF_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "off_ms %u is over %u", req.off_ms,
                 CYCLE_OFF_MAX);
    return;
  }
  if (b->cycle != NULL) {
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION, "a cycle is already running");
    return;
  }
  board_cycle_t *c = calloc(1, sizeof *c);
  uint8_t *pending = malloc(CYCLE_PENDING_MAX);
  if (c == NULL || pending == NULL) {
    free(c);
    free(pending);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  c->id = ++b->next_cycle_id;
  c->call = call;
  c->pending = pending;
  memcpy(c->pattern, req.pattern, plen + 1);
  c->plen = plen;
  c->timeout_ms = req.timeout_ms != 0 ? req.timeout_ms : CYCLE_TIMEOUT_DEFAULT;
  c->off_ms = req.off_ms;
  c->phase = CYCLE_OPENING;
  b->cycle = c;

  dfnet_hw_serial_LogRequest lr = dfnet_hw_serial_LogRequest_init_zero;
  lr.which_from = dfnet_hw_serial_LogRequest_now_tag;
  lr.from.now = true;
  lr.follow = true;
  dfnet_driver_client_call_args_t args = {.method = "Log",
                                          .credit = CYCLE_LOG_CREDIT,
                                          .on_item = cycle_log_item,
                                          .on_done = cycle_log_done,
                                          .arg = id_arg(c->id)};
  dfnet_status_t st =
      drvkit__call_encoded(b->console, &args, dfnet_hw_serial_LogRequest_fields, &lr, &c->log_id);
  if (st != DFNET_STATUS_OK) {
    c->end_status = st == DFNET_STATUS_INVALID_ARGUMENT ? DFNET_STATUS_INTERNAL : st;
    if (c->end_status == DFNET_STATUS_FAILED_PRECONDITION)
      c->end_status = DFNET_STATUS_UNAVAILABLE;
    snprintf(c->end_msg, sizeof c->end_msg, "console: cannot call Serial.Log: %s",
             dfnet_status_str(st));
    cycle_answer(b, c);
    return;
  }
  c->log_open = true;
  (void)dfnet_call_on_cancel(call, cycle_cancelled, id_arg(c->id));
  dfnet_driver_log(b->driver, DFNET_DRIVER_LOG_INFO,
                   "cycle %llu: waiting for \"%s\" within %u ms (off %u ms)",
                   (unsigned long long)c->id, c->pattern, c->timeout_ms, c->off_ms);
  cycle_arm(b, c, CYCLE_OPEN_MS);
}

void board__cycle_stop(board_t *b) {
  board_cycle_t *c = b->cycle;
  if (c == NULL)
    return;
  if (c->phase != CYCLE_ENDING) {
    c->end_status = DFNET_STATUS_UNAVAILABLE;
    snprintf(c->end_msg, sizeof c->end_msg, "the board driver is stopping");
  }
  cycle_answer(b, c);
}
