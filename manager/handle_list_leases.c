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

/* The scratch envelope as a LeaseInfo answer, cleared not at all: the caller fills the
 * LeaseInfo completely (lease__fill_info clears it first). */
static dfnet_envelope_t *item_env(list_ctx_t *c) {
  return dfnet_envelope_reuse(c->m->scratch, c->id, dfnet_v1_Envelope_lease_info_tag);
}

static bool send_env(list_ctx_t *c, dfnet_envelope_t *w) {
  c->failed = dfnet_transport_send(c->m->transport, c->sid, w, 0) != DFNET_STATUS_OK;
  return !c->failed;
}

static bool send_item(void *arg, const dfnet_v1_LeaseInfo *info) {
  list_ctx_t *c = arg;
  dfnet_envelope_t *w = item_env(c);
  w->pb.msg.lease_info = *info;
  return send_env(c, w);
}

void handle__list_leases(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_ListLeases *q = &env->pb.msg.list_leases;
  list_ctx_t c = {m, s->id, env->pb.id, false};
  const char *node = NULL;
  if (q->target[0] != '\0') {
    const topology_node_t *n = topology__find_named(&m->topo, q->target);
    node = n != NULL ? n->moniker : q->target;
  }
  const mgr_lease_t *covering = node != NULL ? lease__covering(m, node) : NULL;
  mgr_lease_t **all = NULL;
  size_t n = lease__sorted(m, &all), leases = 0;
  for (size_t i = 0; i < n && !c.failed; i++) {
    if ((q->id != 0 && all[i]->id != q->id) || (node != NULL && covering != all[i]))
      continue;
    dfnet_envelope_t *w = item_env(&c); /* filled in place: no copy of the LeaseInfo */
    lease__fill_info(all[i], &w->pb.msg.lease_info);
    leases += send_env(&c, w);
  }
  free(all);
  size_t waiting = c.failed ? 0 : lease_queue__each(m, q->id, node, send_item, &c);
  if (c.failed)
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                           "list interrupted");
  else
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_OK, "%zu leases, %zu waiting", leases,
                           waiting);
}
