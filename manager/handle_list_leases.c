/* dfnet-manager: ListLeases from a client, role viewer (proto/dfnet/v1/lease.proto): one
 * LeaseInfo per held lease, by id, then one per waiting request in queue order
 * (queue_position 1, 2, ...), never a token; closed by Status OK "N leases, M waiting".
 * `target` (a moniker or class path): only the leases covering that node and the requests
 * that want it or a node above or below it; `id`: only that lease or waiting request (the
 * two id spaces are apart: a waiting request has a queue_position). An item that does not
 * fit the session's send queue ends the list RESOURCE_EXHAUSTED "list interrupted". */
#include <stdlib.h>

#include "manager/lease.h"

typedef struct list_ctx {
  mgr_t *m;
  dfnet_session_id_t sid;
  uint64_t id;
  bool failed;
} list_ctx_t;

static bool send_item(void *arg, const dfnet_v1_LeaseInfo *info) {
  list_ctx_t *c = arg;
  dfnet_envelope_t *w = mgr__env(c->m);
  w->pb.id = c->id;
  w->pb.which_msg = dfnet_v1_Envelope_lease_info_tag;
  w->pb.msg.lease_info = *info;
  c->failed = dfnet_transport_send(c->m->transport, c->sid, w, 0) != DFNET_STATUS_OK;
  return !c->failed;
}

void handle__list_leases(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_ListLeases *q = &env->pb.msg.list_leases;
  list_ctx_t c = {m, s->id, env->pb.id, false};
  const char *node = NULL;
  if (q->target[0] != '\0') {
    const topology_node_t *n = topology__find_named(&m->topo, q->target);
    node = n != NULL ? n->moniker : q->target;
  }
  dfnet_v1_LeaseInfo *info = malloc(sizeof *info);
  mgr_lease_t **all = NULL;
  size_t n = info != NULL ? lease__sorted(m, &all) : 0, leases = 0;
  for (size_t i = 0; i < n && !c.failed; i++) {
    if ((q->id != 0 && all[i]->id != q->id) || (node != NULL && lease__covering(m, node) != all[i]))
      continue;
    lease__fill_info(all[i], info);
    leases += send_item(&c, info);
  }
  free(all);
  free(info);
  size_t waiting = c.failed ? 0 : lease_queue__each(m, q->id, node, send_item, &c);
  if (c.failed)
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                           "list interrupted");
  else
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_OK, "%zu leases, %zu waiting", leases,
                           waiting);
}
