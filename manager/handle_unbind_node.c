/* dfnet-manager: UnbindNode from an admin client (docs/architecture.md "Node control"): the
 * node's driver is stopped, the drivers below it first (its children go, as a driver's
 * children go with it), and the node stays unbound, reason "unbound by <client>", matched
 * again only by a RequestBind. Answered once its host answered the DriverStop
 * (node_control.c): OK; NOT_FOUND; FAILED_PRECONDITION (no driver bound or starting, a
 * node kept by its parent or a composite, a test node); UNAVAILABLE (its driver is already
 * stopping); DEADLINE_EXCEEDED (the stop was not answered in time). */
#include "lib/log.h"
#include "manager/manager.h"

/* Why n cannot be unbound (answered), or true when it can. */
static bool unbindable(mgr_t *m, mgr_session_t *s, uint64_t id, const topology_node_t *n) {
  if (n->owned || n->state == dfnet_v1_NodeState_OWNED_BY_PARENT ||
      n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION,
                           "%s is kept by %s: it has no driver of its own", n->moniker,
                           n->owned ? "its parent's driver" : "a composite");
    return false;
  }
  if (n->stopping) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_UNAVAILABLE,
                           "the driver of %s is already stopping", n->moniker);
    return false;
  }
  if (n->state != dfnet_v1_NodeState_BOUND && !n->starting) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION,
                           "no driver is bound to %s%s", n->moniker,
                           n->test ? " (a test node)" : "");
    return false;
  }
  return true;
}

void handle__unbind_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_UnbindNode *u = &env->pb.msg.unbind_node;
  uint64_t id = env->pb.id;
  topology_node_t *n = sessions__node_or_reply(m, s->id, id, u->node, false);
  if (n == NULL)
    return;
  if (!unbindable(m, s, id, n))
    return;
  mgr_control_t *c = control__new(m, s->id, id, CONTROL_UNBIND, n->moniker);
  if (c == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  char why[200];
  topology__fmt(why, sizeof why, "unbound by %s", s->name);
  DFNET_LOGI("binder", n->moniker, "%s", why);
  control__touch(c, n);
  n->held = true; /* not matched again until a RequestBind */
  binder__stop_subtree(m, n);
  binder__unbind(m, n, DFNET_STATUS_FAILED_PRECONDITION, why);
  control__commit(m, c);
}
