/* board: a lab board, served as dfnet.lab.Board (proto/dfnet/lab/board.proto) with class
 * "board", on a composite node whose parents are the board's power switch (primary,
 * "power") and its serial console ("console"), possibly on two hosts.
 *
 *   start   connects to the offers the composite received under its parents' names
 *           (docs/architecture.md "Binding"): dfnet.hw.power.Power "power" and
 *           dfnet.hw.serial.Serial "console" (a missing one fails the start NOT_FOUND),
 *           serves Board and publishes class "board".
 *   Power   forwards the action to the power parent (Get, On, Off, Cycle) and answers its
 *           PowerState as is.
 *   State   asks both parents at once (Power.Get, Serial.Log{last_lines: 16}, the last
 *           non-empty of them kept) and answers when both have ended, OK whatever they
 *           said.
 *   CycleAndWait  cycle.c.
 *   stop    closes both clients (what is in flight ends CANCELLED inside the close and
 *           its call is answered there), then ends a CycleAndWait left waiting.
 *
 * Threads: everything runs on the default dispatcher and nothing blocks it (no
 * allow_sync_calls): every call to a parent is chained through its on_done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>

#include "dfnet/driver.h"
#include "dfnet/hw/power.pb.h"
#include "dfnet/hw/serial.pb.h"
#include "dfnet/lab/board.pb.h"
#include "drivers/board/board.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/start.h"

#define BOARD_STATE_DEADLINE_MS 10000u /* State's calls to the parents, at most */
#define BOARD_LOG_TAIL 4096u           /* the bytes of State's Log kept to find the line */
/* State's Log asks for the last lines, not only the last one: a console whose output ends
 * with an empty line ("\r\n\r\n") still has a last non-empty line */
#define BOARD_STATE_LINES 16u

_Static_assert(sizeof(((dfnet_lab_BoardState *)0)->last_line) == BOARD_LINE_MAX + 1,
               "BOARD_LINE_MAX is board.options' bound");

uint32_t board__sub_deadline(const dfnet_call_t *call, uint32_t bound_ms) {
  uint32_t left = dfnet_call_deadline_left_ms(call);
  if (left == 0)
    return 1; /* passed: the call ends at once */
  if (left == UINT32_MAX)
    return bound_ms;
  return bound_ms != 0 && bound_ms < left ? bound_ms : left;
}

void board__keep_tail(uint8_t *tail, size_t cap, size_t *tail_len, const uint8_t *p, size_t n) {
  if (n >= cap) {
    memcpy(tail, p + n - cap, cap);
    *tail_len = cap;
    return;
  }
  size_t keep = *tail_len + n <= cap ? *tail_len : cap - n;
  memmove(tail, tail + *tail_len - keep, keep);
  memcpy(tail + keep, p, n);
  *tail_len = keep + n;
}

/* ---- Power ------------------------------------------------------------------------- */

static void power_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                       dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                       void *arg) {
  dfnet_call_t *call = arg;
  (void)driver;
  (void)ctx;
  (void)id;
  if (status == DFNET_STATUS_OK)
    (void)dfnet_call_reply(call, DFNET_STATUS_OK, NULL, data, len);
  else
    drvkit__fail(call, status, "power: %s",
                 message != NULL && message[0] != '\0' ? message : dfnet_status_str(status));
}

static void board_power(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  board_t *b = ctx;
  dfnet_lab_PowerRequest req;
  if (!drvkit__decode(call, dfnet_lab_PowerRequest_fields, &req, request, len))
    return;
  const char *method;
  dfnet_hw_power_CycleRequest cr = {.off_ms = req.off_ms}; /* Cycle's request */
  switch (req.action) {
  case dfnet_lab_PowerRequest_Action_GET:
    method = "Get";
    break;
  case dfnet_lab_PowerRequest_Action_ON:
    method = "On";
    break;
  case dfnet_lab_PowerRequest_Action_OFF:
    method = "Off";
    break;
  case dfnet_lab_PowerRequest_Action_CYCLE:
    method = "Cycle";
    break;
  default:
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "unknown action %d", (int)req.action);
    return;
  }
  dfnet_driver_client_call_args_t args = {.method = method,
                                          .deadline_ms = board__sub_deadline(call, 0),
                                          .on_done = power_done,
                                          .arg = call};
  dfnet_status_t st =
      req.action == dfnet_lab_PowerRequest_Action_CYCLE
          ? drvkit__call_encoded(b->power, &args, dfnet_hw_power_CycleRequest_fields, &cr, NULL)
          : dfnet_driver_client_call(b->power, &args, NULL);
  if (st != DFNET_STATUS_OK)
    drvkit__fail(call, st == DFNET_STATUS_INVALID_ARGUMENT ? DFNET_STATUS_INTERNAL : st,
                 "power: cannot call Power.%s: %s", method, dfnet_status_str(st));
}

/* ---- State ------------------------------------------------------------------------- */

/* One State call: its two calls to the parents and the reply they fill. */
typedef struct state_job {
  dfnet_call_t *call;
  int waiting; /* parents' calls not ended yet */
  dfnet_lab_BoardState reply;
  uint8_t tail[BOARD_LOG_TAIL]; /* the Log's last bytes */
  size_t tail_len;
} state_job_t;

static void state_finish(state_job_t *j) {
  if (--j->waiting > 0)
    return;
  drvkit__reply(j->call, dfnet_lab_BoardState_fields, &j->reply);
  free(j);
}

static void state_power_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                             dfnet_status_t status, const char *message, const uint8_t *data,
                             size_t len, void *arg) {
  state_job_t *j = arg;
  (void)driver;
  (void)ctx;
  (void)id;
  dfnet_hw_power_PowerState ps = dfnet_hw_power_PowerState_init_zero;
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (status != DFNET_STATUS_OK)
    snprintf(j->reply.power_error, sizeof j->reply.power_error, "%s: %s", dfnet_status_str(status),
             message != NULL ? message : "");
  else if (!pb_decode(&is, dfnet_hw_power_PowerState_fields, &ps))
    snprintf(j->reply.power_error, sizeof j->reply.power_error,
             "INTERNAL: Power.Get's reply is not a PowerState: %s", PB_GET_ERROR(&is));
  else
    j->reply.power = ps.state;
  state_finish(j);
}

static void state_log_item(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                           const uint8_t *data, size_t len, void *arg) {
  board_t *b = ctx;
  state_job_t *j = arg;
  (void)driver;
  dfnet_hw_serial_LogData d;
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (pb_decode(&is, dfnet_hw_serial_LogData_fields, &d))
    board__keep_tail(j->tail, sizeof j->tail, &j->tail_len, d.data.bytes, d.data.size);
  (void)dfnet_driver_client_credit(b->console, id, 1);
}

/* The last non-empty line of tail[len] into out[cap] (its end kept when longer; a
 * carriage return ends a line too, and NULs become spaces). */
static void last_line(const uint8_t *tail, size_t len, char *out, size_t cap) {
  size_t end = len;
  while (end > 0 && (tail[end - 1] == '\n' || tail[end - 1] == '\r' || tail[end - 1] == ' ' ||
                     tail[end - 1] == '\t' || tail[end - 1] == '\0'))
    end--;
  size_t start = end;
  while (start > 0 && tail[start - 1] != '\n' && tail[start - 1] != '\r')
    start--;
  if (end - start > cap - 1)
    start = end - (cap - 1);
  size_t n = 0;
  for (size_t i = start; i < end; i++)
    out[n++] = tail[i] == '\0' ? ' ' : (char)tail[i];
  out[n] = '\0';
}

static void state_log_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                           dfnet_status_t status, const char *message, const uint8_t *data,
                           size_t len, void *arg) {
  board_t *b = ctx;
  state_job_t *j = arg;
  (void)driver;
  (void)id;
  (void)data;
  (void)len;
  if (status != DFNET_STATUS_OK) {
    snprintf(j->reply.console_error, sizeof j->reply.console_error, "%s: %s",
             dfnet_status_str(status), message != NULL ? message : "");
  } else {
    char line[BOARD_LINE_MAX + 1];
    last_line(j->tail, j->tail_len, line, sizeof line);
    if (line[0] != '\0')
      memcpy(b->last_line, line, sizeof line);
  }
  memcpy(j->reply.last_line, b->last_line, sizeof j->reply.last_line);
  state_finish(j);
}

static void board_state(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  board_t *b = ctx;
  dfnet_lab_StateRequest req;
  if (!drvkit__decode(call, dfnet_lab_StateRequest_fields, &req, request, len))
    return;
  state_job_t *j = drvkit__calloc(call, sizeof *j);
  if (j == NULL)
    return;
  j->call = call;
  j->waiting = 3; /* the two calls, and this handler (so neither ends the job early) */
  uint32_t deadline = board__sub_deadline(call, BOARD_STATE_DEADLINE_MS);

  dfnet_driver_client_call_args_t get = {
      .method = "Get", .deadline_ms = deadline, .on_done = state_power_done, .arg = j};
  dfnet_status_t st = dfnet_driver_client_call(b->power, &get, NULL);
  if (st != DFNET_STATUS_OK) {
    snprintf(j->reply.power_error, sizeof j->reply.power_error,
             "%s: cannot call Power.Get: the power driver is not reachable", dfnet_status_str(st));
    j->waiting--;
  }

  dfnet_hw_serial_LogRequest lr = dfnet_hw_serial_LogRequest_init_zero;
  lr.which_from = dfnet_hw_serial_LogRequest_last_lines_tag;
  lr.from.last_lines = BOARD_STATE_LINES;
  dfnet_driver_client_call_args_t log = {.method = "Log",
                                         .deadline_ms = deadline,
                                         .credit = 16,
                                         .on_item = state_log_item,
                                         .on_done = state_log_done,
                                         .arg = j};
  st = drvkit__call_encoded(b->console, &log, dfnet_hw_serial_LogRequest_fields, &lr, NULL);
  if (st != DFNET_STATUS_OK) {
    snprintf(j->reply.console_error, sizeof j->reply.console_error,
             "%s: cannot call Serial.Log: the serial driver is not reachable",
             dfnet_status_str(st));
    memcpy(j->reply.last_line, b->last_line, sizeof j->reply.last_line);
    j->waiting--;
  }
  state_finish(j); /* the handler's own share */
}

/* ---- the driver ---------------------------------------------------------------------- */

static const dfnet_method_t board_methods[] = {
    {.name = "Power", .handler = board_power},
    {.name = "CycleAndWait", .handler = board__cycle_and_wait, .server_streaming = true},
    {.name = "State", .handler = board_state},
};

/* Connect to the parent that offers `service`: the offer of that service, whatever its
 * instance (a composite's offers come under its parents' names: the composite bind rules'
 * node names, `role`, or a composite node spec's parent indexes, "0" and "1"); a board has
 * one parent of each service. Logs and returns NOT_FOUND when there is none. */
static dfnet_status_t connect_parent(dfnet_driver_t *driver, const char *service, const char *role,
                                     dfnet_driver_client_t **out) {
  dfnet_offer_t o;
  size_t count = 0;
  (void)dfnet_driver_offer(driver, 0, &o, &count);
  for (size_t i = 0; i < count; i++) {
    if (dfnet_driver_offer(driver, i, &o, NULL) == DFNET_STATUS_OK &&
        strcmp(o.service, service) == 0)
      return dfnet_driver_connect(driver, service, o.instance, out);
  }
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "no %s parent: nothing offers %s to the board",
                   role, service);
  return DFNET_STATUS_NOT_FOUND;
}

static dfnet_status_t board_start(dfnet_driver_t *driver, void *ctx) {
  board_t *b = ctx;
  b->driver = driver;
  dfnet_status_t st = connect_parent(driver, "dfnet.hw.power.Power", "power", &b->power);
  if (st != DFNET_STATUS_OK)
    return st;
  st = connect_parent(driver, "dfnet.hw.serial.Serial", "console", &b->console);
  if (st != DFNET_STATUS_OK)
    goto fail;
  st = drvkit__serve(driver, "dfnet.lab.Board", board_methods,
                     sizeof board_methods / sizeof board_methods[0], "board");
  if (st != DFNET_STATUS_OK)
    goto fail;
  return DFNET_STATUS_OK;
fail:
  dfnet_driver_client_close(b->console);
  dfnet_driver_client_close(b->power);
  b->console = b->power = NULL;
  return st;
}

static void board_stop(dfnet_driver_t *driver, void *ctx) {
  board_t *b = ctx;
  (void)driver;
  b->stopping = true;
  /* each call still in flight ends CANCELLED in here, and its call is answered */
  dfnet_driver_client_close(b->power);
  dfnet_driver_client_close(b->console);
  b->power = b->console = NULL;
  board__cycle_stop(b);
}

DFNET_DRIVER("board", board_t, .start = board_start, .stop = board_stop);
