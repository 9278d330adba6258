/* dfnet-manager: what the manager shows of leases (lease.h "lease_info.c"): LeaseInfo, the
 * lease fields of NodeInfo and HostInfo (proto/dfnet/v1/query.proto), and the one sentence
 * that says who holds a node, used by fencing and by a refused acquire alike. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
  const mgr_lease_t *l = lease__covering_node(m, n);
  if (l == NULL)
    return;
  out->lease_id = l->id;
  topology__fmt(out->lease_holder, sizeof out->lease_holder, "%s", l->holder);
  out->lease_expires_ms = l->expires_ms;
}

typedef struct host_leased {
  uint64_t node_id;
  const mgr_lease_t *lease;
} host_leased_t;

typedef struct host_walk {
  mgr_t *m;
  uint32_t host_id;
  host_leased_t *items; /* the host's covered nodes */
  size_t count, cap;
  bool failed; /* out of memory */
} host_walk_t;

/* Note the covered nodes of host w->host_id at n and below it by moniker (down through
 * primary parents: every node of a host is below its root, hosts.c). through: as
 * lease__covering_down's. */
static void host_walk(host_walk_t *w, const topology_node_t *n, mgr_lease_t *through) {
  const mgr_lease_t *covering = lease__covering_down(w->m, n, &through);
  const mgr_lease_t *l = n->host_id == w->host_id && !n->hidden ? covering : NULL;
  if (l != NULL) {
    host_leased_t *items = dfnet_array_grow(w->items, w->count, &w->cap, sizeof *items, 64);
    if (items == NULL) {
      w->failed = true;
      return;
    }
    w->items = items;
    w->items[w->count++] = (host_leased_t){n->id, l};
  }
  for (uint32_t i = 0; i < n->child_count && !w->failed; i++)
    if (n->children[i]->parents[0] == n)
      host_walk(w, n->children[i], through);
}

static int cmp_leased(const void *a, const void *b) {
  uint64_t x = ((const host_leased_t *)a)->node_id, y = ((const host_leased_t *)b)->node_id;
  return x < y ? -1 : x > y;
}

void lease__fill_host_info(mgr_t *m, const mgr_host_t *h, dfnet_v1_HostInfo *out) {
  if (m->leases == NULL || m->leases->by_id == NULL)
    return;
  char root[TOPOLOGY_MONIKER_MAX + 1];
  topology__fmt(root, sizeof root, "dev.%s", h->name); /* its root, as hosts.c names it */
  /* no claim on a node of h's, nor a composite through which one above could cover one */
  if (m->composites == NULL && lease__claims_below(m, root) == 0)
    return;
  const topology_node_t *r = topology__find(&m->topo, root);
  host_walk_t w = {.m = m, .host_id = h->id};
  if (r != NULL)
    host_walk(&w, r, NULL);
  if (w.count > 1) /* the order of the topology's hash: node ids, which only grow */
    qsort(w.items, w.count, sizeof *w.items, cmp_leased);
  const size_t cap = pb_arraysize(dfnet_v1_HostInfo, lease_holders);
  for (size_t k = 0; k < w.count && !w.failed; k++) {
    const mgr_lease_t *l = w.items[k].lease;
    out->leased_nodes++;
    bool listed = false;
    for (pb_size_t i = 0; i < out->lease_holders_count && !listed; i++)
      listed = strncmp(out->lease_holders[i], l->holder, sizeof out->lease_holders[i] - 1) == 0;
    if (!listed && out->lease_holders_count < cap)
      topology__fmt(out->lease_holders[out->lease_holders_count++], sizeof out->lease_holders[0],
                    "%s", l->holder);
  }
  free(w.items);
}

void lease__clean_text(char *dst, size_t size, const char *src) {
  topology__fmt(dst, size, "%s", src ? src : "");
  for (char *p = dst; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}
