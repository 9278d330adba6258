/* dfnet-manager: what the manager shows of leases (lease.h "lease_info.c"): LeaseInfo, the
 * lease fields of NodeInfo and HostInfo (proto/dfnet/v1/query.proto), and the one sentence
 * that says who holds a node, used by fencing and by a refused acquire alike. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/lease.h"

void lease__fmt_time(char *buf, size_t size, uint64_t wall_ms) {
  time_t t = (time_t)(wall_ms / 1000u);
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    topology__fmt(buf, size, "%" PRIu64 " ms", wall_ms);
}

void lease__fmt_held(char *buf, size_t size, const char *node, const mgr_lease_t *l) {
  if (l->expires_ms == 0) {
    topology__fmt(buf, size, "%s is leased by %s (lease %" PRIu64 ", no expiry)", node, l->holder,
                  l->id);
    return;
  }
  char when[32];
  lease__fmt_time(when, sizeof when, l->expires_ms);
  topology__fmt(buf, size, "%s is leased by %s until %s (lease %" PRIu64 ")", node, l->holder, when,
                l->id);
}

static dfnet_v1_LeasePriority wire_priority(store_priority_t p) {
  return p == STORE_PRIORITY_HIGH  ? dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH
         : p == STORE_PRIORITY_LOW ? dfnet_v1_LeasePriority_LEASE_PRIORITY_LOW
                                   : dfnet_v1_LeasePriority_LEASE_PRIORITY_NORMAL;
}

void lease__fill_info(const mgr_lease_t *l, dfnet_v1_LeaseInfo *out) {
  memset(out, 0, sizeof *out);
  out->id = l->id;
  topology__fmt(out->holder, sizeof out->holder, "%s", l->holder);
  for (size_t i = 0; i < l->target_count && i < pb_arraysize(dfnet_v1_LeaseInfo, targets); i++)
    topology__fmt(out->targets[out->targets_count++], sizeof out->targets[0], "%s", l->targets[i]);
  for (size_t i = 0; i < l->node_count && i < pb_arraysize(dfnet_v1_LeaseInfo, nodes); i++)
    topology__fmt(out->nodes[out->nodes_count++], sizeof out->nodes[0], "%s", l->nodes[i]);
  out->node_count = (uint32_t)l->node_count;
  out->acquired_ms = l->acquired_ms;
  out->expires_ms = l->expires_ms;
  out->ttl_ms = l->ttl_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)l->ttl_ms;
  out->priority = wire_priority(l->priority);
  topology__fmt(out->reason, sizeof out->reason, "%s", l->reason);
}

dfnet_status_t lease__send_info(mgr_t *m, dfnet_session_id_t sid, uint64_t id, const mgr_lease_t *l,
                                const char *token) {
  dfnet_envelope_t *w = mgr__env(m);
  w->pb.id = id;
  w->pb.which_msg = dfnet_v1_Envelope_lease_info_tag;
  lease__fill_info(l, &w->pb.msg.lease_info);
  if (token != NULL)
    topology__fmt(w->pb.msg.lease_info.token, sizeof w->pb.msg.lease_info.token, "%s", token);
  dfnet_status_t st = dfnet_transport_send(m->transport, sid, w, DFNET_SEND_PAST_HWM);
  memset(w->pb.msg.lease_info.token, 0, sizeof w->pb.msg.lease_info.token);
  return st;
}

void lease__fill_node_info(mgr_t *m, const topology_node_t *n, dfnet_v1_NodeInfo *out) {
  const mgr_lease_t *l = lease__covering(m, n->moniker);
  if (l == NULL)
    return;
  out->lease_id = l->id;
  topology__fmt(out->lease_holder, sizeof out->lease_holder, "%s", l->holder);
  out->lease_expires_ms = l->expires_ms;
}

void lease__fill_host_info(mgr_t *m, const mgr_host_t *h, dfnet_v1_HostInfo *out) {
  if (m->leases == NULL || m->leases->by_id == NULL)
    return;
  const size_t cap = pb_arraysize(dfnet_v1_HostInfo, lease_holders);
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->host_id != h->id || n->hidden)
      continue;
    const mgr_lease_t *l = lease__covering(m, n->moniker);
    if (l == NULL)
      continue;
    out->leased_nodes++;
    bool listed = false;
    for (pb_size_t i = 0; i < out->lease_holders_count && !listed; i++)
      listed = strncmp(out->lease_holders[i], l->holder, sizeof out->lease_holders[i] - 1) == 0;
    if (!listed && out->lease_holders_count < cap)
      topology__fmt(out->lease_holders[out->lease_holders_count++], sizeof out->lease_holders[0],
                    "%s", l->holder);
  }
}

void lease__clean_text(char *dst, size_t size, const char *src) {
  topology__fmt(dst, size, "%s", src ? src : "");
  for (char *p = dst; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}
