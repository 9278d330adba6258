/* dfnet-manager: DriverControl from an admin client, on a driver named by its URL or its
 * unique name (driver_index__resolve; docs/architecture.md "Node control"):
 *   DISABLE     it matches no new node, and it is stopped on every node it runs on (children
 *               first), each matched again once stopped (ffx: "Disables the given driver,
 *               and restart its nodes with rematching");
 *   ENABLE      it matches again: every unbound node is matched again, and every node a
 *               fallback driver took that it now wins is moved to it
 *               (control__reclaim_from_fallbacks); the request waits for the nodes it
 *               starts on;
 *   RESTART     every driver host running it is restarted: on each node, its children go,
 *               its DriverStop, then its DriverStart once the host answered the stop;
 *   UNREGISTER  a registered driver only (a boot driver comes back with the next start, so
 *               it is refused FAILED_PRECONDITION: disable it instead): its record and
 *               package leave the state directory, it is stopped on every node it had,
 *               it leaves the index, and those nodes are matched again (another driver, a
 *               fallback, or unbound with the reason).
 * Answered with DriverControlResult once every node touched has settled (node_control.c;
 * ENABLE: the nodes it bound, once they run): its URL, driver hosts restarted (RESTART),
 * nodes it was stopped on (ENABLE: started on), a NodeOutcome per node. Or a Status:
 * NOT_FOUND (no such URL or name), FAILED_PRECONDITION
 * (an ambiguous name, listing the URLs; a boot driver's UNREGISTER), UNAVAILABLE (the state
 * directory refused the removal: nothing changed), INVALID_ARGUMENT (unknown action),
 * RESOURCE_EXHAUSTED (no memory for the request's record: nothing changed). */
#include <stdio.h>

#include "lib/log.h"
#include "manager/lease.h"
#include "manager/manager.h"

/* UNREGISTER: the steps above. OK, or a status with err set. */
static dfnet_status_t unregister(mgr_t *m, mgr_session_t *s, driver_t *d, mgr_control_t *c,
                                 char *err, size_t err_size) {
  if (d->source != DRIVER_REGISTERED) {
    topology__fmt(err, err_size,
                  "%s is a boot driver (from --drivers) and cannot be unregistered; `dfnet "
                  "driver disable` stops it matching nodes",
                  d->url);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  dfnet_status_t st = package_store__forget(m, d->digest, d, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  char why[400];
  if (persist__driver_forget(m, d, why, sizeof why) != DFNET_STATUS_OK) /* flags kept: harmless */
    DFNET_LOGW("index", d->url, "its flags stay in the store: %s", why);
  topology__fmt(why, sizeof why, "driver %s unregistered by %s", d->url, s->name);
  uint32_t nodes = control__release_driver(m, d, why, c);
  DFNET_LOGI("index", d->url, "unregistered by %s (stopped on %u node(s))", s->name, nodes);
  streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_UNREGISTERED, d->url, s->name, DFNET_STATUS_OK);
  driver_index__remove(&m->index, d);
  return DFNET_STATUS_OK;
}

/* Carry out action `a` on d, recording what it touched in c. OK, or a status with err. */
static dfnet_status_t act(mgr_t *m, mgr_session_t *s, driver_t *d, dfnet_v1_DriverControl_Action a,
                          mgr_control_t *c, char *err, size_t err_size) {
  char why[400];
  uint32_t n;
  /* DISABLE and ENABLE survive a restart: written through first (persist.c) */
  bool flag = a == dfnet_v1_DriverControl_Action_DISABLE;
  dfnet_status_t st = DFNET_STATUS_OK;
  if (flag || a == dfnet_v1_DriverControl_Action_ENABLE)
    st = persist__driver_flags(m, d, flag, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  switch (a) {
  case dfnet_v1_DriverControl_Action_DISABLE:
    d->disabled = true;
    topology__fmt(why, sizeof why, "driver %s disabled by %s", d->url, s->name);
    n = control__release_driver(m, d, why, c);
    DFNET_LOGI("index", d->url, "disabled by %s (stopped on %u node(s))", s->name, n);
    streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_DISABLED, d->url, s->name, DFNET_STATUS_OK);
    return DFNET_STATUS_OK;
  case dfnet_v1_DriverControl_Action_ENABLE:
    d->disabled = false;
    DFNET_LOGI("index", d->url, "enabled by %s", s->name);
    streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_ENABLED, d->url, s->name, DFNET_STATUS_OK);
    return DFNET_STATUS_OK;
  case dfnet_v1_DriverControl_Action_RESTART:
    n = control__restart_driver(m, d, c);
    DFNET_LOGI("index", d->url, "restarting %u driver host(s) for %s", n, s->name);
    return DFNET_STATUS_OK;
  case dfnet_v1_DriverControl_Action_UNREGISTER:
    return unregister(m, s, d, c, err, err_size);
  default:
    topology__fmt(err, err_size, "unknown action %d", (int)a);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
}

void handle__driver_control(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_DriverControl *dc = &env->pb.msg.driver_control;
  char err[600];
  driver_t *d = NULL;
  dfnet_status_t st = driver_index__resolve(&m->index, dc->url, &d, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", err);
    return;
  }
  mgr_control_t *c = control__new(m, s->id, env->pb.id, CONTROL_DRIVER, d->url);
  if (c == NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  st = act(m, s, d, dc->action, c, err, sizeof err); /* UNREGISTER frees d */
  if (st != DFNET_STATUS_OK) {
    control__discard(c);
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", err);
    return;
  }
  if (dc->action != dfnet_v1_DriverControl_Action_RESTART)
    binder__bind_all_unbound(m); /* ENABLE; the parents DISABLE or UNREGISTER set free */
  if (dc->action == dfnet_v1_DriverControl_Action_ENABLE) {
    char why[400];
    topology__fmt(why, sizeof why, "driver %s enabled by %s", d->url, s->name);
    uint32_t moved = control__reclaim_from_fallbacks(m, d, why, c);
    uint32_t bound = control__touch_starting(m, d, c); /* answered once they run */
    control__set_counts(c, 0, bound + moved);
  }
  control__commit(m, c);
}
