/* serial: Log and Attach (proto/dfnet/hw/serial.proto), the port's history replayed and
 * followed (history.h), and the writer seat.
 *
 * A log stream is a cursor into the history, not a buffer of its own: a flush sends what
 * lies between its cursor and the history's end, 4 KiB a LogData, while the caller's
 * credit window has room (dfnet_call_send; with no room the encoded item is held and the
 * flush retried, as Subscribe's). A cursor the ring has overtaken jumps to the oldest byte
 * kept, and the next item counts what was skipped (dropped). A stream without follow ends
 * OK at the end the history had when it was asked for; a following one ends UNAVAILABLE
 * once it has caught up with a port that failed.
 *
 * The writer seat: Attach takes it (the caller's name, Call.caller) for as long as its
 * stream lasts; meanwhile a Write from anyone else, or a second Attach, ends
 * FAILED_PRECONDITION naming the holder.
 *
 * Everything here runs on the default dispatcher; the history is read under s->mu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "drivers/common/drvkit.h"
#include "drivers/serial/held.h"
#include "drivers/serial/serial.h"

struct serial_log {
  uint64_t id;
  dfnet_call_t *call;
  uint64_t cursor; /* the next byte to send */
  uint64_t until;  /* without follow: the end to stop at */
  bool follow;
  bool writer;        /* holds the writer seat */
  bool sent_any;      /* the first item went (a follow stream's empty "in place" item) */
  serial_held_t held; /* an encoded item the window had no room for */
  serial_log_t *next;
};

static serial_log_t *log_unlink(serial_t *s, uint64_t id) {
  serial_log_t *l;
  LL_SEARCH_SCALAR(s->logs, l, id, id);
  if (l != NULL)
    LL_DELETE(s->logs, l);
  return l;
}

static void log_free(serial_t *s, serial_log_t *l) {
  if (l == NULL)
    return;
  if (l->writer) {
    s->writer_held = false;
    dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_INFO, "%s: the writer seat is free", s->name);
  }
  serial_held_clear(&l->held);
  free(l);
}

/* End stream l (unlinked) with status and message, and free it. */
static void log_end(serial_t *s, serial_log_t *l, dfnet_status_t status, const char *message) {
  (void)dfnet_call_reply(l->call, status, message, NULL, 0);
  log_free(s, l);
}

static void log_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  serial_t *s = ctx;
  log_free(s, log_unlink(s, (uint64_t)(uintptr_t)arg));
  (void)dfnet_call_reply(call, why, NULL, NULL, 0);
}

/* The next LogData of log stream `stream` from the history into the zeroed *msg
 * (serial_item_kind_t's fill; ctx: the serial_t). False when there is nothing to send now. */
static bool log_fill(void *ctx, void *stream, void *msg) {
  serial_t *s = ctx;
  serial_log_t *l = stream;
  dfnet_hw_serial_LogData *item = msg;
  pthread_mutex_lock(&s->mu);
  const serial_history_t *h = &s->history;
  if (l->cursor < h->start) { /* the ring overtook it (a replay counts only up to its end) */
    uint64_t to = l->follow || h->start < l->until ? h->start : l->until;
    item->dropped = to > l->cursor ? to - l->cursor : 0;
    l->cursor = h->start;
  }
  uint64_t end = l->follow ? h->end : (l->until < h->end ? l->until : h->end);
  size_t max = end <= l->cursor                    ? 0 /* a replay the ring overtook */
               : end - l->cursor < SERIAL_ITEM_MAX ? (size_t)(end - l->cursor)
                                                   : SERIAL_ITEM_MAX;
  item->offset = l->cursor;
  item->data.size =
      (pb_size_t)serial_history_copy(h, l->cursor, item->data.bytes, max, &item->unix_ms);
  l->cursor += item->data.size;
  pthread_mutex_unlock(&s->mu);
  bool any = item->data.size > 0 || item->dropped > 0 || !l->sent_any;
  l->sent_any = true;
  return any;
}

static const serial_item_kind_t log_items = {
    .fields = dfnet_hw_serial_LogData_fields,
    .size = sizeof(dfnet_hw_serial_LogData),
    .fill = log_fill,
};

/* Has l sent all it will? OK: no; else the status it ends with (OK for a finished replay). */
static bool log_finished(serial_t *s, const serial_log_t *l, dfnet_status_t *status, char *why,
                         size_t cap) {
  pthread_mutex_lock(&s->mu);
  bool caught_up = l->cursor >= s->history.end;
  snprintf(why, cap, "%s", s->failure);
  pthread_mutex_unlock(&s->mu);
  if (!l->follow && (l->cursor >= l->until || caught_up)) {
    *status = DFNET_STATUS_OK;
    return true;
  }
  if (l->follow && caught_up && why[0] != '\0') {
    *status = DFNET_STATUS_UNAVAILABLE;
    return true;
  }
  return false;
}

/* Send what l can; end it when it is done. Returns false when l was ended and freed. */
static bool log_flush(serial_t *s, serial_log_t *l, bool *window_full) {
  /* stopped early: the window is full, or the call ended (its cancel callback unlinks and
   * frees l) */
  if (!serial_held_send(&l->held, l->call, &log_items, s, l, window_full))
    return true;
  dfnet_status_t status;
  char why[256];
  if (!log_finished(s, l, &status, why, sizeof why))
    return true;
  log_end(s, log_unlink(s, l->id), status, status == DFNET_STATUS_OK ? NULL : why);
  return false;
}

void serial__logs_flush(serial_t *s, bool *window_full) {
  serial_log_t *l, *tmp;
  LL_FOREACH_SAFE(s->logs, l, tmp) { /* l may be freed */
    (void)log_flush(s, l, window_full);
  }
}

void serial__logs_end(serial_t *s, const char *why) {
  while (s->logs != NULL) {
    serial_log_t *l = s->logs;
    LL_DELETE(s->logs, l);
    log_end(s, l, DFNET_STATUS_UNAVAILABLE, why);
  }
}

bool serial__may_write(serial_t *s, dfnet_call_t *call, char *why, size_t cap) {
  if (!s->writer_held || strcmp(s->writer, dfnet_call_caller(call)) == 0)
    return true;
  snprintf(why, cap,
           "%s: %s is attached to this console and holds its writer seat (watch it with "
           "`dfnet serial console --read-only`)",
           s->name, s->writer);
  return false;
}

/* The cursor a LogRequest asks for. */
static uint64_t start_at(serial_t *s, const dfnet_hw_serial_LogRequest *req) {
  const serial_history_t *h = &s->history;
  switch (req->which_from) {
  case dfnet_hw_serial_LogRequest_since_unix_ms_tag:
    return serial_history_since(h, req->from.since_unix_ms);
  case dfnet_hw_serial_LogRequest_last_lines_tag:
    return serial_history_last_lines(h, req->from.last_lines);
  case dfnet_hw_serial_LogRequest_offset_tag:
    return req->from.offset < h->end ? req->from.offset : h->end;
  case dfnet_hw_serial_LogRequest_now_tag:
    return h->end;
  default:
    return h->start;
  }
}

/* Log (writer false) and Attach (writer true). */
static void log_open(serial_t *s, dfnet_call_t *call, const uint8_t *request, size_t len,
                     bool writer) {
  dfnet_hw_serial_LogRequest req = dfnet_hw_serial_LogRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_serial_LogRequest_fields, &req, request, len))
    return;
  if (writer && s->writer_held) {
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION,
                 "%s: %s is already attached to this console (one writer at a time; watch it "
                 "with `dfnet serial console --read-only`)",
                 s->name, s->writer);
    return;
  }
  serial_log_t *l = drvkit__calloc(call, sizeof *l);
  if (l == NULL)
    return;
  l->id = ++s->next_id;
  l->call = call;
  l->follow = writer || req.follow;
  pthread_mutex_lock(&s->mu);
  l->cursor = start_at(s, &req);
  l->until = s->history.end;
  pthread_mutex_unlock(&s->mu);
  if (dfnet_call_on_cancel(call, log_cancelled, (void *)(uintptr_t)l->id) != DFNET_STATUS_OK) {
    free(l);
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "the call ended");
    return;
  }
  if (writer) {
    l->writer = s->writer_held = true;
    snprintf(s->writer, sizeof s->writer, "%s", dfnet_call_caller(call));
    dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_INFO, "%s: %s attached (writer)", s->name,
                     s->writer);
  }
  LL_PREPEND(s->logs, l);
  bool window_full = false;
  if (log_flush(s, l, &window_full) && window_full)
    drvkit__retry_arm(s->driver, &s->flush_retry);
}

void serial__log(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  log_open(ctx, call, request, len, false);
}

void serial__attach(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  log_open(ctx, call, request, len, true);
}
