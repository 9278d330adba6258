/* dfnet-manager: NodeRemove from a host agent (hot-unplug; docs/architecture.md "Host
 * session protocol" 3). The subtree goes bottom-up, descendants' drivers stopped first
 * (docs/spec/dfv2.md "Nodes": removing twice is harmless). Answered with Status. */
#include <stdio.h>

#include "manager/manager.h"

void handle__node_remove(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_NodeRemove *r = &env->pb.msg.node_remove;
  uint64_t id = env->pb.id;
  topology_node_t *n = topology__find(&m->topo, r->moniker);
  if (n == NULL) {
    if (id != 0)
      sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%s: already removed", r->moniker);
    return;
  }
  if (n->host_id != s->host_id || n->parents[0] == NULL) {
    if (id != 0)
      sessions__reply_status(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED,
                             "%s is not a node this host may remove", r->moniker);
    return;
  }
  char reason[600];
  topology__fmt(reason, sizeof reason, "removed by its host%s%s", r->has_reason ? ": " : "",
                r->has_reason ? r->reason.message : "");
  binder__remove_subtree(m, n, true, reason);
  if (id != 0)
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "removed");
}
