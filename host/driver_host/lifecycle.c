/* A driver's lifecycle beyond load, start and stop (issue 19 "Driver lifecycle and control as
 * the seeds describe it"; include/dfnet/driver.h "Asynchronous start", the `suspend` and
 * `resume` hooks): the asynchronous start and its completion, the start timeout, and
 * DriverSuspend / DriverResume.
 *
 * The start's outcome is decided once, under the driver's mu (dh__driver_start_decide_locked):
 * by `start` returning (driver.c task_start), by dfnet_driver_start_complete (any thread),
 * by the start timeout (the link thread, dh__driver_expire_starts), or by a stop before an
 * asynchronous start completed (driver.c dh__driver_begin_stop). OK makes the driver
 * RUNNING and answers the DriverStart at once. A failure after `start` returned OK stops
 * the driver like a DriverStop (prepare_stop, drain, stop) and answers the DriverStart when
 * it has stopped (a stop waiter), so that whoever waits for it knows the driver is gone; a
 * `start` that returned an error is answered the same way, once its final task ran (so a
 * DriverStart for the same node right after finds it gone, not stopping).
 * The timeout bounds the whole start, `start` included: a `start` that blocks past it is
 * failed DEADLINE_EXCEEDED, and the answer waits for it to return and for the stop.
 *
 * Suspend and resume run their hook on the driver's dispatcher, behind the calls already
 * queued; `suspended` (an atomic) then makes the calls that reach the driver end
 * UNAVAILABLE "suspended" before its handler (call.c task_call), from the link and from
 * drivers of this process alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

#define LC_SUBSYS "driver-host"

/* ---- the start ------------------------------------------------------------------------- */

dh_waiter_t *dh__driver_waiter_new(uint64_t id, dfnet_status_t code, const char *message) {
  dh_waiter_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->id = id;
  w->code = code;
  dh__strlcpy(w->message, message != NULL ? message : "", sizeof w->message);
  return w;
}

bool dh__driver_start_decide_locked(dfnet_driver_t *drv, dfnet_status_t code) {
  if (drv->start_done)
    return false;
  drv->start_done = true;
  atomic_fetch_sub(&drv->host->starts_pending, 1);
  if (code == DFNET_STATUS_OK && drv->state == DH_DRIVER_STARTING)
    drv->state = DH_DRIVER_RUNNING;
  return true;
}

bool dh__driver_start_decide_deferred_locked(dfnet_driver_t *drv, dfnet_status_t code,
                                             dh_waiter_t *w) {
  if (!dh__driver_start_decide_locked(drv, code))
    return false;
  if (w != NULL)
    LL_PREPEND(drv->stop_waiters, w);
  return true;
}

bool dh__driver_start_fail(dfnet_driver_t *drv, dfnet_status_t code, const char *message) {
  dh_waiter_t *w = dh__driver_waiter_new(drv->start_id, code, message);
  pthread_mutex_lock(&drv->mu);
  bool decided = dh__driver_start_decide_deferred_locked(drv, code, w);
  pthread_mutex_unlock(&drv->mu);
  if (!decided) {
    free(w);
    return false;
  }
  DFNET_LOGW(LC_SUBSYS, drv->moniker, "%s; stopping the driver, then answering %s", message,
             dfnet_status_str(code));
  if (w == NULL) /* no memory for the waiter: answered now rather than never */
    dh__link_send_status(drv->host, drv->start_id, code, message);
  dh__driver_begin_stop(drv, 0);
  return true;
}

int dh__driver_expire_starts(dh_host_t *host) {
  if (atomic_load(&host->starts_pending) == 0)
    return -1; /* the usual case: no lock taken */
  uint64_t now = dh__now_ns(), next = 0;
  dfnet_driver_t *d;
  LL_FOREACH(host->drivers, d) {
    pthread_mutex_lock(&d->mu);
    bool pending = !d->start_done && d->state != DH_DRIVER_STOPPED;
    pthread_mutex_unlock(&d->mu);
    if (!pending || d->start_deadline_ns == 0)
      continue;
    if (d->start_deadline_ns <= now) {
      char msg[96];
      snprintf(msg, sizeof msg, "start did not complete within %u ms", d->start_timeout_ms);
      (void)dh__driver_start_fail(d, DFNET_STATUS_DEADLINE_EXCEEDED, msg);
    } else if (next == 0 || d->start_deadline_ns < next) {
      next = d->start_deadline_ns;
    }
  }
  if (next == 0)
    return -1;
  return (int)((next - now + 999999u) / 1000000u);
}

dfnet_status_t dfnet_driver_start_async(dfnet_driver_t *driver) {
  if (driver == NULL || !dfnet_driver_on_dispatcher(driver) || !driver->in_start) {
    if (driver != NULL)
      dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                       "dfnet_driver_start_async outside of start: refused");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  pthread_mutex_lock(&driver->mu);
  bool twice = driver->start_async;
  driver->start_async = true;
  pthread_mutex_unlock(&driver->mu);
  return twice ? DFNET_STATUS_FAILED_PRECONDITION : DFNET_STATUS_OK;
}

dfnet_status_t dfnet_driver_start_complete(dfnet_driver_t *driver, dfnet_status_t status) {
  if (driver == NULL)
    return DFNET_STATUS_FAILED_PRECONDITION;
  if ((unsigned)status >= DFNET_STATUS_COUNT)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&driver->mu);
  bool pending = driver->start_async && !driver->start_done;
  bool decided = pending && status == DFNET_STATUS_OK &&
                 dh__driver_start_decide_locked(driver, DFNET_STATUS_OK);
  pthread_mutex_unlock(&driver->mu);
  if (!pending) {
    DFNET_LOGD(LC_SUBSYS, driver->moniker,
               "dfnet_driver_start_complete(%s): the start is not pending: refused",
               dfnet_status_str(status));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (decided) {
    DFNET_LOGI(LC_SUBSYS, driver->moniker, "driver %s started (asynchronously)", driver->name);
    dh__link_send_status(driver->host, driver->start_id, DFNET_STATUS_OK, NULL);
    return DFNET_STATUS_OK;
  }
  char msg[700];
  snprintf(msg, sizeof msg, "driver %s failed to start on %s: %s", driver->name, driver->moniker,
           dfnet_status_str(status));
  return dh__driver_start_fail(driver, status, msg) ? DFNET_STATUS_OK
                                                    : DFNET_STATUS_FAILED_PRECONDITION;
}

bool dfnet_driver_suspended(const dfnet_driver_t *driver) {
  return driver != NULL && atomic_load(&driver->suspended);
}

/* ---- suspend and resume ------------------------------------------------------------------ */

typedef struct control_task {
  dfnet_driver_t *driver;
  uint64_t id; /* the DriverSuspend / DriverResume to answer */
  uint32_t flags;
  bool resume;
} control_task_t;

/* Why the driver cannot be suspended / resumed now, or NULL. Dispatcher thread. */
static const char *control_refusal(dfnet_driver_t *drv, bool resume) {
  pthread_mutex_lock(&drv->mu);
  dh_driver_state_t state = drv->state;
  pthread_mutex_unlock(&drv->mu);
  bool suspended = atomic_load(&drv->suspended);
  if (state == DH_DRIVER_STARTING)
    return "its start has not completed";
  if (state != DH_DRIVER_RUNNING)
    return "it is stopping";
  if (!resume && suspended)
    return "it is suspended already";
  if (resume && !suspended)
    return "it is not suspended";
  return NULL;
}

static void task_control(void *arg) {
  control_task_t *t = arg;
  dfnet_driver_t *drv = t->driver;
  const char *verb = t->resume ? "resume" : "suspend";
  char msg[700] = "";
  dfnet_status_t st;
  const char *refusal = control_refusal(drv, t->resume);
  if (refusal != NULL) {
    st = DFNET_STATUS_FAILED_PRECONDITION;
    snprintf(msg, sizeof msg, "cannot %s the driver on %s: %s", verb, drv->moniker, refusal);
  } else {
    st = t->resume ? dh__driver_hook_resume(drv) : dh__driver_hook_suspend(drv, t->flags);
    if (st == DFNET_STATUS_OK)
      atomic_store(&drv->suspended, !t->resume);
    else
      snprintf(msg, sizeof msg, "the %s hook of driver %s on %s returned %s", verb, drv->name,
               drv->moniker, dfnet_status_str(st));
  }
  if (st == DFNET_STATUS_OK && t->resume)
    DFNET_LOGI(LC_SUBSYS, drv->moniker, "driver %s resumed", drv->name);
  else if (st == DFNET_STATUS_OK)
    DFNET_LOGI(LC_SUBSYS, drv->moniker, "driver %s suspended (flags 0x%x)", drv->name, t->flags);
  else
    DFNET_LOGW(LC_SUBSYS, drv->moniker, "%s", msg);
  dh__link_send_status(drv->host, t->id, st, msg[0] != '\0' ? msg : NULL);
  free(t);
}

/* The dispatcher shut down before the task ran: the request still gets its one answer. */
static void drop_control(void *arg) {
  control_task_t *t = arg;
  dh__link_send_status(t->driver->host, t->id, DFNET_STATUS_FAILED_PRECONDITION,
                       "the driver stopped");
  free(t);
}

static void control(dh_host_t *host, uint64_t id, const char *node, uint32_t flags, bool resume) {
  char msg[700];
  dfnet_driver_t *drv = dh__driver_find_live(host, node, NULL);
  if (drv == NULL) {
    snprintf(msg, sizeof msg, "no driver runs on node %s in this driver host", node);
    DFNET_LOGW(LC_SUBSYS, node, "Driver%s: %s", resume ? "Resume" : "Suspend", msg);
    dh__link_send_status(host, id, DFNET_STATUS_FAILED_PRECONDITION, msg);
    return;
  }
  control_task_t *t = malloc(sizeof *t);
  if (t == NULL) {
    dh__link_send_status(host, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  *t = (control_task_t){drv, id, flags, resume};
  if (dh__dispatcher_post(&drv->dispatcher, 0, task_control, drop_control, t, false) !=
      DFNET_STATUS_OK) {
    free(t);
    snprintf(msg, sizeof msg, "the driver on %s is stopping", node);
    dh__link_send_status(host, id, DFNET_STATUS_FAILED_PRECONDITION, msg);
  }
}

void dh__driver_handle_suspend(dh_host_t *host, uint64_t id, const dfnet_v1_DriverSuspend *m) {
  control(host, id, m->node, m->flags, false);
}

void dh__driver_handle_resume(dh_host_t *host, uint64_t id, const dfnet_v1_DriverResume *m) {
  control(host, id, m->node, 0, true);
}
