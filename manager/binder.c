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

#include "dfnet/bind_keys.h"
#include "lib/log.h"
#include "lib/property.h"
#include "manager/manager.h"

/* Pending records of this file. A stop carries what follows once the host answered it:
 * nothing, a start of the driver it stopped (restart), or a new match (unregister, disable,
 * forced RequestBind: `manual` then). (2 is crash_policy.c's restart.) */
enum {
  PENDING_START = 1,
  PENDING_STOP = 3,
  PENDING_STOP_THEN_START = 4,
  PENDING_STOP_THEN_BIND = 5,
};

static void stop_with_children(mgr_t *m, topology_node_t *n, int kind, uint32_t then_driver,
                               const char *url_suffix, bool manual);
static topology_node_t *last_child(const topology_node_t *n, bool hidden_only);

/* Is p the node's own fuchsia.BIND_AUTOBIND (integer key, or its string name)? */
static bool is_autobind(const topology_prop_t *p) {
  return p->str_key == NULL ? p->int_key == DFNET_BIND_AUTOBIND
                            : strcmp(p->str_key, "fuchsia.BIND_AUTOBIND") == 0;
}

void binder__match_node_init(const topology_node_t *n, bool autobind, binder_match_node_t *out) {
  size_t count = 0;
  if (n->prop_count <= DFNET_BIND_NODE_MAX_PROPERTIES) {
    for (size_t i = 0; i < n->prop_count; i++)
      if (!is_autobind(&n->props[i]))
        out->props[count++] = n->props[i];
    if (count < DFNET_BIND_NODE_MAX_PROPERTIES)
      out->props[count++] = (topology_prop_t){.int_key = DFNET_BIND_AUTOBIND,
                                              .type = DFNET_BIND_VALUE_UINT,
                                              .int_value = autobind ? 1 : 0};
  }
  if (dfnet_bind_node_init(&out->bn, out->props, count) != DFNET_STATUS_OK)
    dfnet_bind_node_init(&out->bn, NULL, 0);
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
  n->driver_host_pid = 0;
  n->starting = false;
  n->start_request = 0;
  n->suspended = false;
  topology__set_unbound(n, code, msg);
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_UNBOUND, n->moniker, msg, code);
}

/* ---- starting drivers --------------------------------------------------------------- */

/* Its parent's driver has started: n (a child it added meanwhile) and the hidden nodes below
 * it are listed (NODE_ADDED) and matched now, parents first. */
static void reveal(mgr_t *m, topology_node_t *n) {
  n->hidden = false;
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_ADDED, n->moniker, NULL, DFNET_STATUS_OK);
  binder__bind_node(m, n, NULL);
  for (uint32_t i = 0; i < n->child_count; i++)
    if (n->children[i]->hidden)
      reveal(m, n->children[i]);
}

/* n's start completed OK (DriverStatus RUNNING from its host). */
static void started(mgr_t *m, topology_node_t *n, driver_t *d, uint64_t driver_host_id,
                    uint32_t pid) {
  n->starting = false;
  n->start_request = 0;
  n->state = dfnet_v1_NodeState_BOUND;
  if (driver_host_id != 0)
    n->driver_host_id = driver_host_id;
  if (pid != 0)
    n->driver_host_pid = pid;
  d->device_count++;
  topology__set_unbound(n, DFNET_STATUS_OK, NULL);
  metrics__bind(m, DFNET_STATUS_OK);
  DFNET_LOGI("binder", n->moniker, "bound to %s", d->url);
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_BOUND, n->moniker, d->url, DFNET_STATUS_OK);
  /* the children its driver added while it started (asynchronous start) */
  for (uint32_t i = 0; i < n->child_count; i++)
    if (n->children[i]->hidden)
      reveal(m, n->children[i]);
}

/* n's start failed with `code`: the children its driver added meanwhile go with it (never
 * listed; their host drops them as the driver stops). When the host did not answer
 * (`unanswered`: the manager's deadline, or the session dropped) the driver may still run
 * there: it is asked to stop (its children first). */
static void start_failed(mgr_t *m, topology_node_t *n, const driver_t *d, dfnet_status_t code,
                         const char *msg, bool unanswered) {
  char why[900];
  topology__fmt(why, sizeof why, "driver %s failed to start: %s: %s", d ? d->url : "(gone)",
                dfnet_status_str(code), msg);
  DFNET_LOGW("binder", n->moniker, "%s", why);
  metrics__bind(m, code);
  if (unanswered && d != NULL) {
    stop_with_children(m, n, PENDING_STOP, 0, NULL, false);
  } else {
    topology_node_t *c;
    while ((c = last_child(n, true)) != NULL)
      binder__remove_tree(m, c, NULL, true, why);
  }
  binder__unbind(m, n, code, why);
}

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
  uint32_t pid = 0;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    code = (dfnet_status_t)reply->pb.msg.status.code;
    topology__fmt(msg, sizeof msg, "%s", reply->pb.msg.status.message);
  } else if (status == DFNET_STATUS_OK &&
             reply->pb.which_msg == dfnet_v1_Envelope_driver_status_tag) {
    /* docs/architecture.md "Host session protocol" 4: success is DriverStatus RUNNING. */
    const dfnet_v1_DriverStatus *ds = &reply->pb.msg.driver_status;
    driver_host_id = ds->driver_host_id;
    pid = ds->pid;
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
  if (code == DFNET_STATUS_OK && d != NULL)
    started(m, n, d, driver_host_id, pid);
  else
    start_failed(m, n, d, code == DFNET_STATUS_OK ? DFNET_STATUS_INTERNAL : code, msg,
                 status != DFNET_STATUS_OK);
free_pending:
  pending__free(p);
}

/* Every offer of a node reaches its driver. */
_Static_assert(TOPOLOGY_OFFERS_MAX <= pb_arraysize(dfnet_v1_DriverStart, offers), "offers");
_Static_assert(sizeof(dfnet_v1_DriverStart) < 65536, "a message struct stays under 64 KiB");

/* The driver host n's driver joins when its manifest says colocate (0: a new one): its
 * parent's, when the parent's driver runs on n's host. A composite's is its primary
 * parent's, which has no driver of its own (OWNED_BY_COMPOSITE): the driver host of the
 * driver that added that parent, as in DFv2 a node belongs to its creator's driver host. */
static uint64_t colocation(const topology_node_t *n) {
  const topology_node_t *p = n->parent_count > 0 ? n->parents[0] : NULL;
  if (n->composite && p != NULL && p->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
    p = p->parent_count > 0 ? p->parents[0] : NULL;
  if (p == NULL || p->state != dfnet_v1_NodeState_BOUND || p->host_id != n->host_id)
    return 0;
  return p->driver_host_id;
}

/* DriverStart.offers: the names of the services in offered[0..count), each once. */
static void fill_offer_names(dfnet_v1_DriverStart *ds) {
  const size_t cap = pb_arraysize(dfnet_v1_DriverStart, offers);
  for (pb_size_t i = 0; i < ds->offered_count && ds->offers_count < cap; i++) {
    bool seen = false;
    for (pb_size_t j = 0; j < ds->offers_count && !seen; j++)
      seen = strcmp(ds->offers[j], ds->offered[i].service) == 0;
    if (!seen)
      topology__fmt(ds->offers[ds->offers_count++], sizeof ds->offers[0], "%s",
                    ds->offered[i].service);
  }
}

/* Fill the DriverStart of d on n. Returns how many offers n received: more than
 * DriverStart.offered holds is an error of the caller's to report. */
static size_t fill_start(mgr_t *m, const topology_node_t *n, const driver_t *d,
                         dfnet_envelope_t *env) {
  dfnet_v1_DriverStart *ds = &env->pb.msg.driver_start;
  env->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  topology__fmt(ds->node, sizeof ds->node, "%s", n->moniker);
  topology__fmt(ds->url, sizeof ds->url, "%s", d->url);
  memcpy(ds->package_digest, d->digest, sizeof ds->package_digest);
  topology__fmt(ds->binary, sizeof ds->binary, "%s", d->m.binary);
  if (d->m.colocate)
    ds->driver_host_id = colocation(n);
  for (size_t i = 0; i < d->m.dispatcher_opt_count; i++)
    topology__fmt(ds->dispatcher_opts[i], sizeof ds->dispatcher_opts[i], "%s",
                  d->m.dispatcher_opts[i]);
  ds->dispatcher_opts_count = (pb_size_t)d->m.dispatcher_opt_count;
  ds->host_restart_on_crash = d->m.host_restart_on_crash;
  ds->start_timeout_ms = driver_index__start_timeout_ms(d);
  ds->properties_count = (pb_size_t)topology__props_to_wire(
      n, ds->properties, sizeof ds->properties / sizeof ds->properties[0]);
  const size_t cap = pb_arraysize(dfnet_v1_DriverStart, offered);
  size_t offered = offers__list(m, n, ds->offered, cap);
  ds->offered_count = (pb_size_t)(offered < cap ? offered : cap);
  fill_offer_names(ds);
  env->bulk.data = (const uint8_t *)d->m.program_json;
  env->bulk.size = strlen(d->m.program_json);
  return offered;
}

void binder__start(mgr_t *m, topology_node_t *n, driver_t *d) {
  mgr_host_t *h = hosts__get(m, n->host_id);
  if (h == NULL || h->session == 0) {
    topology__set_unbound(n, DFNET_STATUS_UNAVAILABLE, "host offline");
    return;
  }
  if (n->test) /* a test node is matched, never started */
    return;
  if (n->stopping) { /* the host refuses a start before the stop is done; it follows then */
    topology__set_unbound(n, DFNET_STATUS_UNAVAILABLE, "its previous driver is stopping");
    return;
  }
  dfnet_envelope_t *env = mgr__env(m);
  size_t offered = fill_start(m, n, d, env);
  if (offered > pb_arraysize(dfnet_v1_DriverStart, offered)) {
    char why[300];
    topology__fmt(why, sizeof why, "driver %s: the node received %zu offers, at most %zu fit",
                  d->url, offered, (size_t)pb_arraysize(dfnet_v1_DriverStart, offered));
    DFNET_LOGW("binder", n->moniker, "%s", why);
    topology__set_unbound(n, DFNET_STATUS_RESOURCE_EXHAUSTED, why);
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
  /* The host stops a start that outlasts start_timeout_ms and answers DEADLINE_EXCEEDED;
   * the manager waits that long and a margin for the stop and the answer. */
  dfnet_request_opts_t opts = {.deadline_ms =
                                   driver_index__start_timeout_ms(d) + MGR_START_MARGIN_MS,
                               .on_reply = on_start_reply,
                               .user = p};
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
  n->driver_host_pid = 0;
  n->suspended = false;
  DFNET_LOGD("binder", n->moniker, "starting %s on host %s", d->url, h->name);
}

/* ---- binding ------------------------------------------------------------------------ */

/* A test node learns what would bind it, and nothing starts. */
static void match_test_node(mgr_t *m, topology_node_t *n, const dfnet_bind_node_t *bn,
                            const char *url_suffix) {
  driver_match_t r;
  driver_index__match(&m->index, bn, url_suffix, &r);
  char why[sizeof r.reason + 300];
  if (r.status == DFNET_STATUS_OK)
    topology__fmt(why, sizeof why, "test node: would bind %s", r.driver->url);
  else
    topology__fmt(why, sizeof why, "test node: %s", r.reason);
  topology__set_unbound(n, r.status, why);
}

/* Match n (autobind: an automatic attempt, else a RequestBind) and act on the answer. */
static void bind_node(mgr_t *m, topology_node_t *n, const char *url_suffix, bool autobind) {
  if (n->owned || n->offline || n->starting || n->stopping || n->hidden || (n->held && autobind) ||
      n->state == dfnet_v1_NodeState_BOUND || n->state == dfnet_v1_NodeState_QUARANTINED ||
      m->stopping)
    return;
  if (n->composite && !n->test) {
    binder__bind_composite_node(m, n);
    return;
  }
  binder_match_node_t *mn = malloc(sizeof *mn);
  if (mn == NULL) {
    topology__set_unbound(n, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  binder__match_node_init(n, autobind, mn);
  if (n->test) {
    match_test_node(m, n, &mn->bn, url_suffix);
    goto free_mn;
  }
  if (binder__bind_parent(m, n, &mn->bn) || n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
    goto free_mn;
  driver_match_t r;
  driver_index__match(&m->index, &mn->bn, url_suffix, &r);
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
free_mn:
  free(mn);
}

void binder__bind_node(mgr_t *m, topology_node_t *n, const char *url_suffix) {
  bind_node(m, n, url_suffix, true);
}

void binder__bind_node_manual(mgr_t *m, topology_node_t *n, const char *url_suffix) {
  n->held = false;
  bind_node(m, n, url_suffix, false);
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
    bind_node(m, n, p->url_suffix[0] ? p->url_suffix : NULL, !p->manual);
  }
}

void binder__forget(mgr_t *m, uint32_t host_id, const char *moniker, const char *why) {
  mgr_host_t *h = hosts__get(m, host_id);
  if (h == NULL || h->session == 0)
    return;
  dfnet_envelope_t *env = mgr__env(m);
  env->pb.which_msg = dfnet_v1_Envelope_node_remove_tag;
  dfnet_v1_NodeRemove *r = &env->pb.msg.node_remove;
  topology__fmt(r->moniker, sizeof r->moniker, "%s", moniker);
  r->has_reason = true;
  r->reason.code = dfnet_v1_Code_UNAVAILABLE;
  topology__fmt(r->reason.message, sizeof r->reason.message, "%s", why);
  dfnet_status_t st = dfnet_transport_send(m->transport, h->session, env, 0);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW("binder", moniker, "NodeRemove not sent to %s: %s", h->name, dfnet_status_str(st));
}

#define FORGET_WHY "a parent of the composite is gone"

/* Stop p is over (answered, or it could not be sent): n is free again and what follows
 * follows; the stop waiting for this one loses a count. */
static void stop_done(mgr_t *m, mgr_pending_t *p) {
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  if (n != NULL && n->id == p->node_id && n->stopping && n->stop_request == p->request_id) {
    n->stopping = false;
    n->stop_request = 0;
    after_stop(m, p, n);
  }
  if (p->forget)
    binder__forget(m, p->host_id, p->moniker, FORGET_WHY);
  mgr_pending_t *up = p->up;
  pending__free(p);
  binder__stop_release(m, up);
}

static void on_stop_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  mgr_pending_t *p = user;
  if (!last)
    return;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag &&
      reply->pb.msg.status.code != dfnet_v1_Code_OK)
    DFNET_LOGW("binder", p->moniker, "DriverStop: %s: %s",
               dfnet_status_str((dfnet_status_t)reply->pb.msg.status.code),
               reply->pb.msg.status.message);
  else if (status != DFNET_STATUS_OK && status != DFNET_STATUS_CANCELLED)
    DFNET_LOGW("binder", p->moniker, "DriverStop: %s", dfnet_status_str(status));
  stop_done(p->mgr, p);
}

/* A stop record for n's driver; `kind` and the record's fields say what follows. NULL
 * when there is nothing to stop or nobody to ask: what follows then follows the next time
 * the node is matched (the caller unbinds it). */
static mgr_pending_t *stop_begin(mgr_t *m, topology_node_t *n, mgr_pending_t *up, int kind,
                                 uint32_t then_driver, const char *url_suffix, bool manual) {
  mgr_host_t *h = hosts__get(m, n->host_id);
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  if ((n->state != dfnet_v1_NodeState_BOUND && !n->starting) || d == NULL || h == NULL ||
      h->session == 0)
    return NULL;
  mgr_pending_t *p = pending__new(m, kind);
  if (p == NULL)
    return NULL;
  p->node_id = n->id;
  p->host_id = n->host_id;
  p->driver_id = then_driver;
  p->driver_host_id = n->driver_host_id;
  topology__fmt(p->moniker, sizeof p->moniker, "%s", n->moniker);
  topology__fmt(p->stop_url, sizeof p->stop_url, "%s", d->url);
  topology__fmt(p->url_suffix, sizeof p->url_suffix, "%s", url_suffix ? url_suffix : "");
  p->manual = manual;
  p->waiting = 1; /* the builder's count */
  p->up = up;
  if (up != NULL)
    up->waiting++;
  n->stopping = true;
  n->stop_request = 0;
  n->suspended = false; /* a stop ends a suspend */
  return p;
}

mgr_pending_t *binder__stop_begin(mgr_t *m, topology_node_t *n, mgr_pending_t *up) {
  return stop_begin(m, n, up, PENDING_STOP, 0, NULL, false);
}

void binder__stop_release(mgr_t *m, mgr_pending_t *p) {
  if (p == NULL || --p->waiting > 0)
    return;
  if (p->then != NULL) { /* a barrier: what waited for the stops below follows */
    p->then(m, p);
    return;
  }
  mgr_host_t *h = hosts__get(m, p->host_id);
  dfnet_status_t st = DFNET_STATUS_UNAVAILABLE;
  uint64_t id = 0;
  if (h != NULL && h->session != 0) {
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
    dfnet_v1_DriverStop *s = &env->pb.msg.driver_stop;
    topology__fmt(s->node, sizeof s->node, "%s", p->moniker);
    topology__fmt(s->url, sizeof s->url, "%s", p->stop_url);
    s->driver_host_id = p->driver_host_id;
    dfnet_request_opts_t opts = {
        .deadline_ms = MGR_STOP_DEADLINE_MS, .on_reply = on_stop_reply, .user = p};
    st = dfnet_transport_request(m->transport, h->session, env, &opts, 0, &id);
    if (st != DFNET_STATUS_OK)
      DFNET_LOGW("binder", p->moniker, "DriverStop could not be sent: %s", dfnet_status_str(st));
  }
  if (st != DFNET_STATUS_OK) {
    stop_done(m, p); /* nothing to wait for */
    return;
  }
  p->request_id = id;
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  if (n != NULL && n->id == p->node_id && n->stopping)
    n->stop_request = id;
}

void binder__forget_after(mgr_t *m, const topology_node_t *n, mgr_pending_t *p) {
  if (p != NULL)
    p->forget = true;
  else
    binder__forget(m, n->host_id, n->moniker, FORGET_WHY);
}

/* The last child of n that is not a test node (hidden_only: a hidden one), or NULL. */
static topology_node_t *last_child(const topology_node_t *n, bool hidden_only) {
  for (uint32_t i = n->child_count; i > 0; i--) {
    topology_node_t *c = n->children[i - 1];
    if (!c->test && (c->hidden || !hidden_only))
      return c;
  }
  return NULL;
}

void binder__remove_children(mgr_t *m, topology_node_t *n, mgr_pending_t *up, const char *why) {
  topology_node_t *c;
  while ((c = last_child(n, false)) != NULL) /* one removal may take several (a composite) */
    binder__remove_tree(m, c, up, true, why);
}

/* Stop n's driver, its children going first (DFv2: a driver's children go with it, their
 * drivers stopped child before parent); `kind` says what follows. */
static void stop_with_children(mgr_t *m, topology_node_t *n, int kind, uint32_t then_driver,
                               const char *url_suffix, bool manual) {
  mgr_pending_t *p = stop_begin(m, n, NULL, kind, then_driver, url_suffix, manual);
  if (n->child_count > 0) {
    char why[TOPOLOGY_MONIKER_MAX + 64];
    topology__fmt(why, sizeof why, "the driver of %s stopped", n->moniker);
    binder__remove_children(m, n, p, why);
  }
  binder__stop_release(m, p);
}

void binder__stop_driver(mgr_t *m, topology_node_t *n) {
  binder__stop_release(m, stop_begin(m, n, NULL, PENDING_STOP, 0, NULL, false));
}

void binder__stop_subtree(mgr_t *m, topology_node_t *n) {
  stop_with_children(m, n, PENDING_STOP, 0, NULL, false);
}

void binder__stop_then_bind(mgr_t *m, topology_node_t *n, const char *url_suffix, bool manual) {
  stop_with_children(m, n, PENDING_STOP_THEN_BIND, 0, url_suffix, manual);
}

void binder__stop_then_start(mgr_t *m, topology_node_t *n) {
  stop_with_children(m, n, PENDING_STOP_THEN_START, n->driver_id, NULL, false);
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
    if (st->pid != 0)
      n->driver_host_pid = st->pid;
    break;
  case dfnet_v1_DriverState_SUSPENDED: /* the agent's word; SuspendNode sets it too */
    if (n->state == dfnet_v1_NodeState_BOUND && !n->suspended) {
      n->suspended = true;
      streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_SUSPENDED, n->moniker, NULL, DFNET_STATUS_OK);
    }
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
