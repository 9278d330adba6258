/* dfnet-manager: binding nodes to drivers (docs/spec/dfv2.md "Driver index policy",
 * "Driver hosts and lifecycle"; docs/design.md "Binding sequence").
 *
 * node added -> composites (composite_node_spec.c) -> driver index -> DriverStart to the
 * host that owns the node; the reply (or a DriverStatus, or a DriverHostExit handled in
 * crash_policy.c) settles the node's state. A driver is stopped with DriverStop, and what
 * follows (nothing, a start, a new match) waits for the host's answer. The reason a node
 * is unbound is kept on it (docs/style.md 9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/property.h"
#include "manager/manager.h"

/* Pending records of this file. A stop carries what follows once the host answered it:
 * nothing, a start of the driver it stopped (restart), or a new match (unregister, forced
 * RequestBind). (2 is crash_policy.c's restart.) */
enum {
  PENDING_START = 1,
  PENDING_STOP = 3,
  PENDING_STOP_THEN_START = 4,
  PENDING_STOP_THEN_BIND = 5,
};

void binder__bind_node_init(const topology_node_t *n, dfnet_bind_node_t *out) {
  if (dfnet_bind_node_init(out, n->props, n->prop_count) != DFNET_STATUS_OK)
    dfnet_bind_node_init(out, NULL, 0);
}

void binder__unbind(mgr_t *m, topology_node_t *n, dfnet_status_t code, const char *msg) {
  if (n->state == dfnet_v1_NodeState_BOUND) {
    driver_t *d = driver_index__get(&m->index, n->driver_id);
    if (d != NULL && d->device_count > 0)
      d->device_count--;
  }
  n->state = dfnet_v1_NodeState_UNBOUND;
  n->driver_id = 0;
  n->driver_host_id = 0;
  n->starting = false;
  n->start_request = 0;
  topology__set_unbound(n, code, msg);
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_UNBOUND, n->moniker, msg, code);
}

/* ---- starting drivers --------------------------------------------------------------- */

static void on_start_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                           bool last) {
  mgr_pending_t *p = user;
  mgr_t *m = p->mgr;
  if (!last)
    return;
  dfnet_status_t code = status;
  char msg[600];
  topology__fmt(msg, sizeof msg, "%s", dfnet_status_str(status));
  uint64_t driver_host_id = 0;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    code = (dfnet_status_t)reply->pb.msg.status.code;
    topology__fmt(msg, sizeof msg, "%s", reply->pb.msg.status.message);
  } else if (status == DFNET_STATUS_OK &&
             reply->pb.which_msg == dfnet_v1_Envelope_driver_status_tag) {
    /* docs/architecture.md "Host session protocol" 4: success is DriverStatus RUNNING. */
    const dfnet_v1_DriverStatus *ds = &reply->pb.msg.driver_status;
    driver_host_id = ds->driver_host_id;
    if (ds->state != dfnet_v1_DriverState_RUNNING && ds->state != dfnet_v1_DriverState_STARTING) {
      code = ds->has_status && ds->status.code != dfnet_v1_Code_OK ? (dfnet_status_t)ds->status.code
                                                                   : DFNET_STATUS_UNKNOWN;
      topology__fmt(msg, sizeof msg, "driver state %d: %s", (int)ds->state,
                    ds->has_status ? ds->status.message : "");
    }
  } else if (status == DFNET_STATUS_OK) {
    code = DFNET_STATUS_INTERNAL;
    topology__fmt(msg, sizeof msg, "unexpected reply %s",
                  dfnet_envelope_msg_name(reply->pb.which_msg));
  }
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  if (n == NULL || n->id != p->node_id || !n->starting || n->start_request != p->request_id)
    goto free_pending; /* removed or restarted meanwhile */
  driver_t *d = driver_index__get(&m->index, p->driver_id);
  n->starting = false;
  n->start_request = 0;
  if (code == DFNET_STATUS_OK && d != NULL) {
    n->state = dfnet_v1_NodeState_BOUND;
    if (driver_host_id != 0)
      n->driver_host_id = driver_host_id;
    d->device_count++;
    topology__set_unbound(n, DFNET_STATUS_OK, NULL);
    DFNET_LOGI("binder", n->moniker, "bound to %s", d->url);
    streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_BOUND, n->moniker, d->url, DFNET_STATUS_OK);
  } else {
    char why[900];
    topology__fmt(why, sizeof why, "driver %s failed to start: %s: %s", d ? d->url : "(gone)",
                  dfnet_status_str(code), msg);
    DFNET_LOGW("binder", n->moniker, "%s", why);
    binder__unbind(m, n, code == DFNET_STATUS_OK ? DFNET_STATUS_INTERNAL : code, why);
  }
free_pending:
  pending__free(p);
}

/* Every offer of a node reaches the driver of its child. */
_Static_assert(TOPOLOGY_OFFERS_MAX <= pb_arraysize(dfnet_v1_DriverStart, offers), "offers");

static void fill_start(mgr_t *m, const topology_node_t *n, const driver_t *d,
                       dfnet_envelope_t *env) {
  dfnet_v1_DriverStart *ds = &env->pb.msg.driver_start;
  env->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  topology__fmt(ds->node, sizeof ds->node, "%s", n->moniker);
  topology__fmt(ds->url, sizeof ds->url, "%s", d->url);
  memcpy(ds->package_digest, d->digest, sizeof ds->package_digest);
  topology__fmt(ds->binary, sizeof ds->binary, "%s", d->m.binary);
  const topology_node_t *parent = n->parents[0];
  if (d->m.colocate && parent != NULL && parent->state == dfnet_v1_NodeState_BOUND &&
      parent->host_id == n->host_id)
    ds->driver_host_id = parent->driver_host_id;
  for (size_t i = 0; i < d->m.dispatcher_opt_count; i++)
    topology__fmt(ds->dispatcher_opts[i], sizeof ds->dispatcher_opts[i], "%s",
                  d->m.dispatcher_opts[i]);
  ds->dispatcher_opts_count = (pb_size_t)d->m.dispatcher_opt_count;
  ds->host_restart_on_crash = d->m.host_restart_on_crash;
  ds->properties_count = (pb_size_t)topology__props_to_wire(
      n, ds->properties, sizeof ds->properties / sizeof ds->properties[0]);
  for (size_t i = 0; parent != NULL && i < parent->offer_count; i++) {
    topology__fmt(ds->offers[i], sizeof ds->offers[i], "%s", parent->offers[i]);
    ds->offers_count++;
  }
  env->bulk.data = (const uint8_t *)d->m.program_json;
  env->bulk.size = strlen(d->m.program_json);
  (void)m;
}

void binder__start(mgr_t *m, topology_node_t *n, driver_t *d) {
  mgr_host_t *h = hosts__get(m, n->host_id);
  if (h == NULL || h->session == 0) {
    topology__set_unbound(n, DFNET_STATUS_UNAVAILABLE, "host offline");
    return;
  }
  if (n->stopping) { /* the host refuses a start before the stop is done; it follows then */
    topology__set_unbound(n, DFNET_STATUS_UNAVAILABLE, "its previous driver is stopping");
    return;
  }
  mgr_pending_t *p = pending__new(m, PENDING_START);
  if (p == NULL) {
    topology__set_unbound(n, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  p->node_id = n->id;
  topology__fmt(p->moniker, sizeof p->moniker, "%s", n->moniker);
  p->driver_id = d->id;
  dfnet_envelope_t *env = mgr__env(m);
  fill_start(m, n, d, env);
  dfnet_request_opts_t opts = {
      .deadline_ms = MGR_START_DEADLINE_MS, .on_reply = on_start_reply, .user = p};
  uint64_t id = 0;
  dfnet_status_t st = dfnet_transport_request(m->transport, h->session, env, &opts, 0, &id);
  if (st != DFNET_STATUS_OK) {
    pending__free(p);
    char why[400];
    topology__fmt(why, sizeof why, "driver %s: DriverStart could not be sent: %s", d->url,
                  dfnet_status_str(st));
    DFNET_LOGW("binder", n->moniker, "%s", why);
    n->driver_id = 0;
    n->starting = false;
    topology__set_unbound(n, st, why);
    return;
  }
  p->request_id = id;
  n->driver_id = d->id;
  n->starting = true;
  n->start_request = id;
  n->driver_host_id = 0;
  DFNET_LOGD("binder", n->moniker, "starting %s on host %s", d->url, h->name);
}

/* ---- binding ------------------------------------------------------------------------ */

void binder__bind_node(mgr_t *m, topology_node_t *n, const char *url_suffix) {
  if (n->owned || n->offline || n->starting || n->stopping ||
      n->state == dfnet_v1_NodeState_BOUND || n->state == dfnet_v1_NodeState_QUARANTINED ||
      m->stopping)
    return;
  if (n->composite) {
    binder__bind_composite_node(m, n);
    return;
  }
  dfnet_bind_node_t *bn = malloc(sizeof *bn);
  if (bn == NULL) {
    topology__set_unbound(n, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  binder__bind_node_init(n, bn);
  if (binder__bind_parent(m, n, bn) || n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
    goto free_bn;
  driver_match_t r;
  driver_index__match(&m->index, bn, url_suffix, &r);
  if (r.status == DFNET_STATUS_OK) {
    binder__start(m, n, r.driver);
  } else {
    bool changed = n->unbound_code != r.status;
    topology__set_unbound(n, r.status, r.reason);
    if (r.status != DFNET_STATUS_NOT_FOUND || changed)
      DFNET_LOGD("binder", n->moniker, "unbound: %s", r.reason);
    if (r.status == DFNET_STATUS_FAILED_PRECONDITION)
      DFNET_LOGW("binder", n->moniker, "%s", r.reason);
  }
free_bn:
  free(bn);
}

void binder__bind_all_unbound(mgr_t *m) {
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->state == dfnet_v1_NodeState_UNBOUND || n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
      binder__bind_node(m, n, NULL);
  }
}

/* ---- stopping drivers --------------------------------------------------------------- */

/* What follows a stop (PENDING_STOP_THEN_*), on the node if it is still the same one and
 * free: start the driver again, or match the node again. */
static void after_stop(mgr_t *m, mgr_pending_t *p, topology_node_t *n) {
  if (n == NULL || n->id != p->node_id || n->starting || n->stopping ||
      n->state != dfnet_v1_NodeState_UNBOUND || m->stopping)
    return;
  if (p->kind == PENDING_STOP_THEN_START) {
    driver_t *d = driver_index__get(&m->index, p->driver_id);
    if (d != NULL && !d->disabled && !n->offline)
      binder__start(m, n, d);
    else
      binder__bind_node(m, n, NULL); /* gone or disabled meanwhile: whatever matches now */
  } else if (p->kind == PENDING_STOP_THEN_BIND) {
    binder__bind_node(m, n, p->url_suffix[0] ? p->url_suffix : NULL);
  }
}

static void on_stop_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  mgr_pending_t *p = user;
  if (!last)
    return;
  mgr_t *m = p->mgr;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag &&
      reply->pb.msg.status.code != dfnet_v1_Code_OK)
    DFNET_LOGW("binder", p->moniker, "DriverStop: %s: %s",
               dfnet_status_str((dfnet_status_t)reply->pb.msg.status.code),
               reply->pb.msg.status.message);
  else if (status != DFNET_STATUS_OK && status != DFNET_STATUS_CANCELLED)
    DFNET_LOGW("binder", p->moniker, "DriverStop: %s", dfnet_status_str(status));
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  if (n != NULL && n->id == p->node_id && n->stopping && n->stop_request == p->request_id) {
    n->stopping = false;
    n->stop_request = 0;
    after_stop(m, p, n);
  }
  pending__free(p);
}

/* Send DriverStop for n's driver; `kind` and the record's fields say what follows. */
static void stop_driver(mgr_t *m, topology_node_t *n, int kind, uint32_t then_driver,
                        const char *url_suffix) {
  mgr_host_t *h = hosts__get(m, n->host_id);
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  mgr_pending_t *p = pending__new(m, kind);
  if (p == NULL)
    return;
  p->node_id = n->id;
  p->driver_id = then_driver;
  topology__fmt(p->moniker, sizeof p->moniker, "%s", n->moniker);
  topology__fmt(p->url_suffix, sizeof p->url_suffix, "%s", url_suffix ? url_suffix : "");
  dfnet_status_t st = DFNET_STATUS_UNAVAILABLE;
  uint64_t id = 0;
  if (h != NULL && h->session != 0 && d != NULL) {
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
    dfnet_v1_DriverStop *s = &env->pb.msg.driver_stop;
    topology__fmt(s->node, sizeof s->node, "%s", n->moniker);
    topology__fmt(s->url, sizeof s->url, "%s", d->url);
    s->driver_host_id = n->driver_host_id;
    dfnet_request_opts_t opts = {
        .deadline_ms = MGR_START_DEADLINE_MS, .on_reply = on_stop_reply, .user = p};
    st = dfnet_transport_request(m->transport, h->session, env, &opts, 0, &id);
    if (st != DFNET_STATUS_OK)
      DFNET_LOGW("binder", n->moniker, "DriverStop could not be sent: %s", dfnet_status_str(st));
  }
  if (st == DFNET_STATUS_OK) {
    p->request_id = id;
    n->stopping = true;
    n->stop_request = id;
    return;
  }
  /* nothing to wait for (host offline, no driver, not sent): what follows follows when the
   * caller has unbound n, the next time the node is matched */
  pending__free(p);
}

void binder__stop_driver(mgr_t *m, topology_node_t *n) { stop_driver(m, n, PENDING_STOP, 0, NULL); }

void binder__stop_then_bind(mgr_t *m, topology_node_t *n, const char *url_suffix) {
  stop_driver(m, n, PENDING_STOP_THEN_BIND, 0, url_suffix);
}

/* ---- driver status ---------------------------------------------------------------- */

void binder__driver_status(mgr_t *m, mgr_host_t *h, const dfnet_v1_DriverStatus *st) {
  topology_node_t *n = topology__find(&m->topo, st->node);
  if (n == NULL || n->host_id != h->id) {
    DFNET_LOGD("binder", st->node, "DriverStatus for an unknown node ignored");
    return;
  }
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  if (d == NULL || strcmp(d->url, st->url) != 0)
    return;
  switch (st->state) {
  case dfnet_v1_DriverState_STARTING:
  case dfnet_v1_DriverState_RUNNING:
    n->driver_host_id = st->driver_host_id;
    break;
  case dfnet_v1_DriverState_STOPPED:
  case dfnet_v1_DriverState_FAILED:
    if (n->state == dfnet_v1_NodeState_BOUND && n->driver_host_id == st->driver_host_id) {
      char why[700];
      topology__fmt(why, sizeof why, "driver %s %s: %s", d->url,
                    st->state == dfnet_v1_DriverState_FAILED ? "failed" : "stopped",
                    st->has_status ? st->status.message : "");
      dfnet_status_t code = st->has_status && st->status.code != dfnet_v1_Code_OK
                                ? (dfnet_status_t)st->status.code
                                : DFNET_STATUS_ABORTED;
      binder__unbind(m, n, code, why);
    }
    break;
  default:
    break;
  }
}

/* ---- driver control ----------------------------------------------------------------- */

uint32_t binder__restart_driver(mgr_t *m, driver_t *d) {
  /* without memory for the list, every node counts as a driver host of its own */
  topology_driver_host_t *refs = malloc((m->topo.count ? m->topo.count : 1) * sizeof *refs);
  size_t count = 0;
  uint32_t nodes = 0;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->state != dfnet_v1_NodeState_BOUND || n->driver_id != d->id)
      continue;
    if (refs != NULL && count < m->topo.count)
      refs[count++] = (topology_driver_host_t){.host = n->host_id, .id = n->driver_host_id};
    nodes++;
    stop_driver(m, n, PENDING_STOP_THEN_START, d->id, NULL); /* started once stopped */
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, "restarting");
  }
  uint32_t driver_hosts = nodes;
  if (refs != NULL) {
    topology__sort_driver_hosts(refs, count);
    driver_hosts = topology__count_driver_hosts(refs, count, 0);
  }
  free(refs);
  return driver_hosts;
}

uint32_t binder__release_driver(mgr_t *m, driver_t *d, const char *reason) {
  uint32_t released = binder__composites_forget_driver(m, d, reason);
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->driver_id != d->id || (n->state != dfnet_v1_NodeState_BOUND && !n->starting))
      continue;
    binder__stop_then_bind(m, n, NULL); /* matched again once stopped */
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, reason);
    released++;
  }
  return released;
}
