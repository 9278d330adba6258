/* dfnet-manager: NodeUpdate from a host agent: new properties or offers (e.g. a kernel
 * driver bound to a PCI function). An unbound node is matched again. Answered with Status. */
#include "manager/manager.h"

bool handle__node_set_props(mgr_t *m, mgr_session_t *s, uint64_t id, topology_node_t *n,
                            const dfnet_v1_NodeProperty *props, size_t prop_count,
                            const char (*offers)[128], size_t offer_count) {
  char err[300];
  dfnet_status_t st =
      topology__update(&m->topo, n, props, prop_count, offers, offer_count, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    sessions__reply_status(m, s->id, id, st, "%s: %s", n->moniker, err);
  return st == DFNET_STATUS_OK;
}

void handle__node_update(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_NodeUpdate *u = &env->pb.msg.node_update;
  uint64_t id = env->pb.id;
  topology_node_t *n = topology__find(&m->topo, u->moniker);
  if (n == NULL || n->host_id != s->host_id) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_NOT_FOUND, "node %s not found on this host",
                           u->moniker);
    return;
  }
  if (!handle__node_set_props(m, s, id, n, u->properties, u->properties_count,
                              (const char(*)[128])u->offers, u->offers_count))
    return;
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "updated");
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_UPDATED, n->moniker, NULL, DFNET_STATUS_OK);
  if (n->state == dfnet_v1_NodeState_UNBOUND)
    binder__bind_node(m, n, NULL);
}
