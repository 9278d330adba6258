/* dfnet-manager: DriverControl from an admin client, on a driver named by its URL or its
 * unique name (driver_index__resolve):
 *   DISABLE     it matches no new node (running instances keep running);
 *   ENABLE      it matches again, and every unbound node is matched again;
 *   RESTART     every driver host running it is restarted;
 *   UNREGISTER  a registered driver only (a boot driver comes back with the next start, so
 *               it is refused FAILED_PRECONDITION: disable it instead): its record and
 *               package leave the state directory, it is stopped on every node it had,
 *               it leaves the index, and those nodes are matched again (another driver, a
 *               fallback, or unbound with the reason).
 * Answered with DriverControlResult (its URL; RESTART: driver hosts restarted;
 * UNREGISTER: nodes it was stopped on), or a Status: NOT_FOUND (no such URL or name),
 * FAILED_PRECONDITION (an ambiguous name, listing the URLs; a boot driver's UNREGISTER),
 * UNAVAILABLE (the state directory refused the removal: nothing changed),
 * INVALID_ARGUMENT (unknown action). */
#include <stdio.h>

#include "lib/log.h"
#include "manager/manager.h"

/* UNREGISTER: the steps above. OK with *nodes set, or a status with err set. */
static dfnet_status_t unregister(mgr_t *m, mgr_session_t *s, driver_t *d, uint32_t *nodes,
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
  topology__fmt(why, sizeof why, "driver %s unregistered by %s", d->url, s->name);
  *nodes = binder__release_driver(m, d, why);
  DFNET_LOGI("index", d->url, "unregistered by %s (stopped on %u node(s))", s->name, *nodes);
  streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_UNREGISTERED, d->url, s->name, DFNET_STATUS_OK);
  driver_index__remove(&m->index, d);
  return DFNET_STATUS_OK;
}

void handle__driver_control(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_DriverControl *c = &env->pb.msg.driver_control;
  char err[600], url[DFNET_PACKAGE_URL_MAX];
  driver_t *d = NULL;
  dfnet_status_t st = driver_index__resolve(&m->index, c->url, &d, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", err);
    return;
  }
  topology__fmt(url, sizeof url, "%s", d->url); /* UNREGISTER frees d */
  uint32_t driver_hosts = 0, nodes = 0;
  switch (c->action) {
  case dfnet_v1_DriverControl_Action_DISABLE:
    d->disabled = true;
    DFNET_LOGI("index", d->url, "disabled by %s", s->name);
    streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_DISABLED, d->url, s->name, DFNET_STATUS_OK);
    break;
  case dfnet_v1_DriverControl_Action_ENABLE:
    d->disabled = false;
    DFNET_LOGI("index", d->url, "enabled by %s", s->name);
    streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_ENABLED, d->url, s->name, DFNET_STATUS_OK);
    break;
  case dfnet_v1_DriverControl_Action_RESTART:
    driver_hosts = binder__restart_driver(m, d);
    DFNET_LOGI("index", d->url, "restarted %u driver host(s) for %s", driver_hosts, s->name);
    break;
  case dfnet_v1_DriverControl_Action_UNREGISTER:
    st = unregister(m, s, d, &nodes, err, sizeof err);
    if (st != DFNET_STATUS_OK) {
      sessions__reply_status(m, s->id, env->pb.id, st, "%s", err);
      return;
    }
    break;
  default:
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INVALID_ARGUMENT, "unknown action %d",
                           (int)c->action);
    return;
  }
  /* built after the action: the binder builds its envelopes in the same scratch */
  dfnet_envelope_t *out = mgr__env(m);
  out->pb.id = env->pb.id;
  out->pb.which_msg = dfnet_v1_Envelope_driver_control_result_tag;
  dfnet_v1_DriverControlResult *r = &out->pb.msg.driver_control_result;
  topology__fmt(r->url, sizeof r->url, "%s", url);
  r->driver_hosts = driver_hosts;
  r->nodes = nodes;
  dfnet_transport_send(m->transport, s->id, out, 0);
  if (c->action == dfnet_v1_DriverControl_Action_ENABLE ||
      c->action == dfnet_v1_DriverControl_Action_UNREGISTER)
    binder__bind_all_unbound(m);
}
