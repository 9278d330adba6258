/* dfnet-manager: ListLeases from a client, role viewer (proto/dfnet/v1/lease.proto): one
 * LeaseInfo per held lease, by id, then one per waiting request in queue order
 * (queue_position 1, 2, ...), never a token; closed by Status OK "N leases, M waiting".
 * `target` (a moniker or class path): only the leases covering that node and the requests
 * that want it or a node above or below it; `id`: only that lease or waiting request (the
 * two id spaces are apart: a waiting request has a queue_position). An item that does not
 * fit the session's send queue ends the list RESOURCE_EXHAUSTED "list interrupted". */
#include <stdlib.h>

#include "manager/lease.h"

static bool send_item(void *arg, const dfnet_v1_LeaseInfo *info) {
  list_stream_t *ls = arg;
  dfnet_envelope_t *w = list_stream__item(ls, dfnet_v1_Envelope_lease_info_tag);
  w->pb.msg.lease_info = *info;
  return list_stream__send(ls, w);
}

void handle__list_leases(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_ListLeases *q = &env->pb.msg.list_leases;
  list_stream_t ls = {m, s->id, env->pb.id, 0, false};
  const char *node = NULL;
  if (q->target[0] != '\0') {
    const topology_node_t *n = topology__find_named(&m->topo, q->target);
    node = n != NULL ? n->moniker : q->target;
  }
  const mgr_lease_t *covering = node != NULL ? lease__covering(m, node) : NULL;
  mgr_lease_t **all = NULL;
  size_t n = lease__sorted(m, &all), leases = 0;
  for (size_t i = 0; i < n && !ls.failed; i++) {
    if ((q->id != 0 && all[i]->id != q->id) || (node != NULL && covering != all[i]))
      continue;
    /* filled in place: no copy of the LeaseInfo (lease__fill_info clears it first) */
    dfnet_envelope_t *w = list_stream__item(&ls, dfnet_v1_Envelope_lease_info_tag);
    lease__fill_info(all[i], &w->pb.msg.lease_info);
    leases += list_stream__send(&ls, w);
  }
  free(all);
  size_t waiting = ls.failed ? 0 : lease_queue__each(m, q->id, node, send_item, &ls);
  list_stream__end(&ls, "%zu leases, %zu waiting", leases, waiting);
}
