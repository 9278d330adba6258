/* power: a board's power switch, served as dfnet.hw.power.Power
 * (proto/dfnet/hw/power.proto) with class "power", on a board-file platform device whose
 * "power" resource names the switch (host/enum/board_device.c; power_switch.h for the properties
 * and the backends).
 *
 *   start   reads the switch from the node's properties (FAILED_PRECONDITION with the
 *           reason when they do not describe one), starts the worker, serves Power,
 *           publishes class "power" and offers Power to a child "outlet" (a lab board's
 *           composite takes it as its power parent). It does not touch the switch: a plug
 *           that is unplugged now may answer later.
 *   calls   are queued (at most POWER_QUEUE_MAX; RESOURCE_EXHAUSTED beyond) and run one
 *           after the other on the worker thread, in arrival order: one switch does one
 *           thing at a time, and a Cycle is not cut by another caller's On. Each request
 *           to the switch gets at most 5 s (the setting "request_timeout_ms" in the
 *           manifest's program.config, or DFNET_POWER_REQUEST_MS) and ends a little before
 *           the call's deadline, so a switch that does not answer ends it UNAVAILABLE. On,
 *           Off and Cycle read the state back afterwards and end UNAVAILABLE when it is not
 *           what was asked. A call that ended while queued (cancelled, deadline) is
 *           skipped; one that ends during a Cycle's off time stops there (the power stays
 *           off) and the caller has its status.
 *   stop    (prepare_stop) sets the abort flag the backends poll, joins the worker and
 *           ends the queued calls UNAVAILABLE.
 *
 * Threads: handlers on the default dispatcher (they only queue: no allow_sync_calls); the
 * worker replies to calls itself (dfnet_call_reply runs on any thread). The state and the
 * time of its last change are the worker's alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dfnet/driver.h"
#include "dfnet/hw/power.pb.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/start.h"
#include "drivers/common/worker.h"
#include "drivers/power/power_switch.h"

#define POWER_QUEUE_MAX 64          /* calls waiting for the switch */
#define POWER_REQUEST_MS "5000"     /* the most one request to the switch may take, default */
#define POWER_REQUEST_MS_MAX 60000u /* and the setting's bound */
#define POWER_CYCLE_OFF_MS 2000u    /* Cycle's off time when the request gives 0 */
#define POWER_CYCLE_OFF_MAX 600000u /* and its bound */

_Static_assert((int)POWER_ON == (int)dfnet_hw_power_State_ON &&
                   (int)POWER_OFF == (int)dfnet_hw_power_State_OFF &&
                   (int)POWER_UNKNOWN == (int)dfnet_hw_power_State_STATE_UNKNOWN,
               "power_state_t is dfnet.hw.power.State");

typedef enum power_op { OP_ON, OP_OFF, OP_CYCLE, OP_GET } power_op_t;

/* One queued call. */
typedef struct power_job {
  drvkit_job_t job; /* first: the worker's (its call) */
  power_op_t op;
  uint32_t off_ms; /* OP_CYCLE */
} power_job_t;

/* The driver's context (allocated zeroed by the driver host). */
typedef struct power_drv {
  dfnet_driver_t *driver;
  power_switch_t sw;
  uint32_t request_ms;      /* the most one request to the switch may take (setting) */
  drvkit_worker_t worker;   /* runs the calls; its `stopping` is the backends' abort flag */
  power_state_t last;       /* worker only: the state last seen */
  uint64_t changed_unix_ms; /* worker only: when it last changed, 0: not seen */
} power_drv_t;

static uint64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The time a request to the switch may take now: the setting, or less so that the call
 * ends with the switch's failure (UNAVAILABLE) a little before its deadline would. */
static uint32_t request_ms(const power_drv_t *p, dfnet_call_t *call) {
  uint32_t left = dfnet_call_deadline_left_ms(call);
  left = left > 200 ? left - 100 : left / 2;
  return left < p->request_ms ? left : p->request_ms;
}

/* The worker saw `state`, after a switch it made (switched) or in a plain read: remember
 * when it changed. The first read after start is no change; a switch away from an unknown
 * state is. */
static void observe(power_drv_t *p, power_state_t state, bool switched) {
  if (state == POWER_UNKNOWN || state == p->last)
    return;
  if (p->last != POWER_UNKNOWN || switched)
    p->changed_unix_ms = unix_ms();
  p->last = state;
}

/* Switch, then read back. OK with *state, else the status with why. */
static dfnet_status_t switch_to(power_drv_t *p, dfnet_call_t *call, bool on, power_state_t *state,
                                char *why, size_t why_size) {
  const power_switch_t *sw = &p->sw;
  dfnet_status_t st = sw->backend->set(sw, on, request_ms(p, call), why, why_size);
  if (st != DFNET_STATUS_OK)
    return st;
  if ((st = sw->backend->get(sw, state, request_ms(p, call), why, why_size)) != DFNET_STATUS_OK)
    return st;
  observe(p, *state, true);
  if (*state != POWER_UNKNOWN && *state != (on ? POWER_ON : POWER_OFF)) {
    snprintf(why, why_size, "%s: switched %s, but it reads back %s", sw->address, on ? "on" : "off",
             power_state_str(*state));
    return DFNET_STATUS_UNAVAILABLE;
  }
  if (*state == POWER_UNKNOWN) /* a switch that cannot tell: trust the command */
    observe(p, on ? POWER_ON : POWER_OFF, true);
  return DFNET_STATUS_OK;
}

/* Run one job on the worker and complete its call (drvkit_run_fn). */
static void run_job(void *ctx, drvkit_job_t *queued) {
  power_drv_t *p = ctx;
  power_job_t *job = (power_job_t *)queued;
  dfnet_call_t *call = job->job.call;
  dfnet_status_t st = dfnet_call_status(call);
  if (st != DFNET_STATUS_OK) { /* ended while queued: the caller has its status */
    (void)dfnet_call_reply(call, st, NULL, NULL, 0);
    return;
  }
  char why[400] = "";
  power_state_t state = POWER_UNKNOWN;
  switch (job->op) {
  case OP_GET:
    if ((st = p->sw.backend->get(&p->sw, &state, request_ms(p, call), why, sizeof why)) ==
        DFNET_STATUS_OK)
      observe(p, state, false);
    break;
  case OP_ON:
  case OP_OFF:
    st = switch_to(p, call, job->op == OP_ON, &state, why, sizeof why);
    break;
  case OP_CYCLE:
    st = switch_to(p, call, false, &state, why, sizeof why);
    if (st == DFNET_STATUS_OK &&
        (st = dfnet_call_wait_cancelled(call, job->off_ms)) != DFNET_STATUS_OK)
      snprintf(why, sizeof why, "%s: the call ended while the power was off; it stays off",
               p->sw.address);
    if (st == DFNET_STATUS_OK)
      st = switch_to(p, call, true, &state, why, sizeof why);
    break;
  }
  if (st != DFNET_STATUS_OK) {
    drvkit__fail(call, st, "%s", why);
    return;
  }
  dfnet_hw_power_PowerState reply = dfnet_hw_power_PowerState_init_zero;
  reply.state = (dfnet_hw_power_State)state;
  reply.changed_unix_ms = p->changed_unix_ms;
  snprintf(reply.backend, sizeof reply.backend, "%s", p->sw.backend->name);
  snprintf(reply.address, sizeof reply.address, "%s", p->sw.address);
  if (job->op != OP_GET) {
    const char *who = dfnet_call_caller(call);
    dfnet_driver_log(p->driver, DFNET_DRIVER_LOG_INFO, "%s %s%s%s",
                     job->op == OP_CYCLE ? "cycled, now" : "switched", power_state_str(state),
                     who[0] != '\0' ? " for " : "", who);
  }
  drvkit__reply(call, dfnet_hw_power_PowerState_fields, &reply);
}

/* Queue a call for the worker; on failure complete it. Runs on the dispatcher. */
static void enqueue(power_drv_t *p, dfnet_call_t *call, power_op_t op, uint32_t off_ms) {
  power_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory queueing the call");
    return;
  }
  *job = (power_job_t){.job.call = call, .op = op, .off_ms = off_ms};
  if (!drvkit__worker_post(&p->worker, &job->job)) {
    free(job);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "%s: %d calls already wait for the switch",
                 p->sw.address, POWER_QUEUE_MAX);
  }
}

/* On, Off and Get: their requests are empty messages; the method names the operation. */
static void power_simple(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  const char *method = strrchr(dfnet_call_method(call), '/') + 1;
  power_op_t op = strcmp(method, "On") == 0 ? OP_ON : strcmp(method, "Off") == 0 ? OP_OFF : OP_GET;
  dfnet_hw_power_GetRequest req; /* SwitchRequest has the same (no) fields */
  if (drvkit__decode(call, dfnet_hw_power_GetRequest_fields, &req, request, len))
    enqueue(ctx, call, op, 0);
}

static void power_cycle(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  dfnet_hw_power_CycleRequest req;
  if (!drvkit__decode(call, dfnet_hw_power_CycleRequest_fields, &req, request, len))
    return;
  if (req.off_ms > POWER_CYCLE_OFF_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "off_ms %u: must be 0..%u (0: %u)",
                 req.off_ms, POWER_CYCLE_OFF_MAX, POWER_CYCLE_OFF_MS);
    return;
  }
  enqueue(ctx, call, OP_CYCLE, req.off_ms != 0 ? req.off_ms : POWER_CYCLE_OFF_MS);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static dfnet_status_t power_start(dfnet_driver_t *driver, void *ctx) {
  power_drv_t *p = ctx;
  p->driver = driver;
  char why[400];
  if (power_switch_from_node(driver, &p->worker.stopping, &p->sw, why, sizeof why) !=
      DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  char text[16];
  char *end = NULL;
  if (drvkit__setting(driver, "request_timeout_ms", "DFNET_POWER_REQUEST_MS", POWER_REQUEST_MS,
                      text, sizeof text) != DFNET_STATUS_OK ||
      (p->request_ms = (uint32_t)strtoul(text, &end, 10)) < 10 ||
      p->request_ms > POWER_REQUEST_MS_MAX || *end != '\0') {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "setting \"request_timeout_ms\": must be 10..%u milliseconds",
                     POWER_REQUEST_MS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (drvkit__worker_start(&p->worker, POWER_QUEUE_MAX, run_job, p) != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "cannot start the worker thread");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  static const dfnet_method_t methods[] = {{.name = "On", .handler = power_simple},
                                           {.name = "Off", .handler = power_simple},
                                           {.name = "Cycle", .handler = power_cycle},
                                           {.name = "Get", .handler = power_simple}};
  dfnet_status_t st = drvkit__serve(driver, "dfnet.hw.power.Power", methods,
                                    sizeof methods / sizeof methods[0], "power");
  if (st != DFNET_STATUS_OK) {
    drvkit__worker_fini(&p->worker);
    return st;
  }
  (void)drvkit__offer_child(driver, "outlet", "dfnet.hw.power.Power"); /* for a board */
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving the %s switch %s", p->sw.backend->name,
                   p->sw.address);
  return DFNET_STATUS_OK;
}

static void power_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  power_drv_t *p = ctx;
  drvkit__worker_stop(&p->worker); /* the backends see the abort flag within 50 ms */
}

static void power_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  power_drv_t *p = ctx;
  drvkit__worker_fini(&p->worker);
}

DFNET_DRIVER("power", power_drv_t, .start = power_start, .prepare_stop = power_prepare_stop,
             .stop = power_stop);
