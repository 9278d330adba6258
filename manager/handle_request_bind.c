/* dfnet-manager: RequestBind from an admin client (DFv2 RequestBind{force_rebind,
 * driver_url_suffix}): a manual bind, matched with fuchsia.BIND_AUTOBIND = 0 (automatic
 * attempts present 1), so a disable_autobind driver binds here only. It gives a quarantined
 * node another chance and binds a node an admin unbound (UnbindNode). Already bound and
 * not forced -> FAILED_PRECONDITION (DFv2 ALREADY_BOUND); a start pending -> ALREADY_EXISTS.
 * driver_url_suffix may also be a driver's URL or unique name (driver_index__resolve): that driver
 * only; a name several drivers have -> FAILED_PRECONDITION listing their URLs. A forced rebind
 * stops the bound driver and matches the node once the host has stopped it. Answered with the
 * node's new state: OK when a driver is starting or the old one stopping, else the reason it stays
 * unbound. A node not listed yet (added while its parent's driver starts) is NOT_FOUND. */
#include "manager/manager.h"

void handle__request_bind(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_RequestBind *r = &env->pb.msg.request_bind;
  uint64_t id = env->pb.id;
  topology_node_t *n = sessions__node_or_reply(m, s->id, id, r->node, false);
  if (n == NULL)
    return;
  if (n->hidden) { /* not listed yet: it is matched when its parent's driver has started */
    sessions__reply_status(m, s->id, id, DFNET_STATUS_NOT_FOUND,
                           "node %s not found (not listed until its parent's driver has started)",
                           r->node);
    return;
  }
  if (n->starting) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_ALREADY_EXISTS,
                           "a bind of %s is already pending", n->moniker);
    return;
  }
  const char *suffix = r->driver_url_suffix;
  driver_t *named = NULL;
  char err[600];
  dfnet_status_t st = suffix[0] == '\0'
                          ? DFNET_STATUS_NOT_FOUND
                          : driver_index__resolve(&m->index, suffix, &named, err, sizeof err);
  if (st == DFNET_STATUS_FAILED_PRECONDITION) {
    sessions__reply_status(m, s->id, id, st, "%s", err);
    return;
  }
  if (named != NULL)
    suffix = named->url; /* a whole URL is its own suffix */
  if (n->state == dfnet_v1_NodeState_BOUND) {
    if (!r->force_rebind) {
      sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION,
                             "ALREADY_BOUND: %s is bound", n->moniker);
      return;
    }
    binder__stop_then_bind(m, n, suffix, true); /* matched again once the host stopped it */
    binder__unbind(m, n, DFNET_STATUS_OK, NULL);
  } else if (n->state == dfnet_v1_NodeState_QUARANTINED) {
    n->state = dfnet_v1_NodeState_UNBOUND; /* an admin asked: give it another chance */
    n->crash_count = 0;
  }
  binder__bind_node_manual(m, n, suffix);
  if (n->stopping) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK,
                           "stopping the driver of %s; it is matched again once stopped",
                           n->moniker);
  } else if (n->starting) {
    driver_t *d = driver_index__get(&m->index, n->driver_id);
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "starting %s", d ? d->url : "");
  } else {
    sessions__reply_status(m, s->id, id,
                           n->unbound_code == DFNET_STATUS_OK ? DFNET_STATUS_OK : n->unbound_code,
                           "%s", n->unbound_msg ? n->unbound_msg : "not bound");
  }
}
