/* dfnet-manager: NodeAdd from a host agent (docs/architecture.md "Host session protocol"
 * 2 and 7; docs/spec/dfv2.md "Nodes" AddChild). Answered with Status. A node re-announced after
 * a reconnect is reconciled: its binding is kept and nothing is restarted. A child of a
 * node whose driver is stopping is refused (DFv2: its children are going; the host's
 * driver is on its way out). A composite node is the manager's to make: the host announces
 * one only to reconcile it (it recorded it when the manager started its driver there); one
 * the manager no longer knows is refused and the host told to forget it (NodeRemove), which
 * stops its driver. A child added while its parent's driver starts (its DriverStart not yet
 * answered: an asynchronous start) is hidden: neither listed nor bound until the start is
 * answered OK, removed with a failed one. A test node's children are the manager's only:
 * a host naming one as parent is answered NOT_FOUND. */
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

/* The driver the host says runs on n: keep it (reconcile), never restart it. */
static void adopt_driver(mgr_t *m, topology_node_t *n, const dfnet_v1_NodeAdd *a) {
  driver_t *d = driver_index__find_url(&m->index, a->driver_url);
  if (d == NULL) {
    char why[400];
    topology__fmt(why, sizeof why, "host reports driver %s, which is not in the index",
                  a->driver_url);
    DFNET_LOGW("nodes", n->moniker, "%s", why);
    topology__set_unbound(n, DFNET_STATUS_NOT_FOUND, why);
    return;
  }
  if (n->state == dfnet_v1_NodeState_BOUND && n->driver_id == d->id) {
    n->driver_host_id = a->driver_host_id;
    DFNET_LOGI("nodes", n->moniker, "reconciled: %s still runs in driver host %llu", d->url,
               (unsigned long long)a->driver_host_id);
    return;
  }
  if (n->state == dfnet_v1_NodeState_BOUND)
    binder__unbind(m, n, DFNET_STATUS_OK, NULL);
  n->state = dfnet_v1_NodeState_BOUND;
  n->driver_id = d->id;
  n->driver_host_id = a->driver_host_id;
  d->device_count++;
  topology__set_unbound(n, DFNET_STATUS_OK, NULL);
  DFNET_LOGI("nodes", n->moniker, "adopted running driver %s (driver host %llu)", d->url,
             (unsigned long long)a->driver_host_id);
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_BOUND, n->moniker, d->url, DFNET_STATUS_OK);
}

static void reconcile(mgr_t *m, mgr_session_t *s, topology_node_t *n, const dfnet_v1_NodeAdd *a,
                      uint64_t id) {
  if (!handle__node_set_props(m, s, id, n, a->properties, a->properties_count,
                              (const char(*)[128])a->offers, a->offers_count))
    return;
  n->offline = false;
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "reconciled");
  if (a->driver_url[0] != '\0') {
    adopt_driver(m, n, a);
    return;
  }
  if (n->state == dfnet_v1_NodeState_BOUND)
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, "driver no longer running after reconnect");
  binder__bind_node(m, n, NULL);
}

/* A node the host runs a composite driver on that the manager does not know (its composite
 * went while the host was away, or the manager restarted): refused, and the host told to
 * forget it. True when so (answered). */
static bool stale_composite(mgr_t *m, mgr_session_t *s, const dfnet_v1_NodeAdd *a,
                            const char *moniker, uint64_t id) {
  const driver_t *d =
      a->driver_url[0] != '\0' ? driver_index__find_url(&m->index, a->driver_url) : NULL;
  if (d == NULL || !d->composite)
    return false;
  DFNET_LOGW("nodes", moniker,
             "host %s re-announced a composite node the manager has not: "
             "it is told to forget it",
             s->name);
  sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION,
                         "%s: no such composite node (its composite is gone); forget it", moniker);
  binder__forget(m, s->host_id, moniker, "no such composite node");
  return true;
}

void handle__node_add(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_NodeAdd *a = &env->pb.msg.node_add;
  uint64_t id = env->pb.id;
  mgr_host_t *h = hosts__get(m, s->host_id);
  if (h == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION, "no host record");
    return;
  }
  topology_node_t *parent = topology__find(&m->topo, a->parent);
  if (parent == NULL || parent->test) { /* a test node is the manager's only */
    sessions__reply_status(m, s->id, id, DFNET_STATUS_NOT_FOUND, "parent '%s' not found",
                           a->parent);
    return;
  }
  if (parent->host_id != h->id) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED,
                           "parent '%s' belongs to another host", a->parent);
    return;
  }
  const char *why;
  if (!topology__name_valid(a->name, &why)) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_INVALID_ARGUMENT, "%s.%s: %s", a->parent,
                           a->name, why);
    return;
  }
  char moniker[TOPOLOGY_MONIKER_MAX + 2];
  topology__fmt(moniker, sizeof moniker, "%s.%s", a->parent, a->name);
  topology_node_t *n = topology__find(&m->topo, moniker);
  if (n != NULL) {
    if (n->offline && n->host_id == h->id)
      reconcile(m, s, n, a, id);
    else
      sessions__reply_status(m, s->id, id, DFNET_STATUS_ALREADY_EXISTS, "node %s already exists",
                             moniker);
    return;
  }
  if (parent->stopping) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_UNAVAILABLE,
                           "%s: the driver of %s is stopping", moniker, a->parent);
    return;
  }
  if (stale_composite(m, s, a, moniker, id))
    return;
  topology_add_args_t args = {
      .name = a->name,
      .props = a->properties,
      .prop_count = a->properties_count,
      .offers = (const char(*)[128])a->offers,
      .offer_count = a->offers_count,
      .class_name = a->class_name,
      .owned = a->owned,
      .host_id = h->id,
  };
  char err[300];
  dfnet_status_t st = topology__add(&m->topo, parent, &args, &n, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGI("nodes", moniker, "NodeAdd refused: %s", err);
    sessions__reply_status(m, s->id, id, st, "%s: %s", moniker, err);
    return;
  }
  h->node_count++;
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "added");
  if (a->driver_url[0] == '\0' && (parent->starting || parent->hidden)) {
    /* its parent's driver has not finished starting (asynchronous start): not listed, not
     * bound until that start is answered OK (binder.c), removed if it fails */
    n->hidden = true;
    DFNET_LOGD("nodes", n->moniker, "held back until %s has started", parent->moniker);
    return;
  }
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_ADDED, n->moniker, NULL, DFNET_STATUS_OK);
  if (a->driver_url[0] != '\0')
    adopt_driver(m, n, a);
  else
    binder__bind_node(m, n, NULL);
}
