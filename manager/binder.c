/* dfnet-manager: binding nodes to drivers (docs/spec/dfv2.md "Driver index policy",
 * "Composites", "Driver hosts and lifecycle"; docs/design.md "Binding sequence").
 *
 * node added -> composite node specs -> composite drivers -> driver index -> DriverStart to
 * the host that owns the node; the reply (or a DriverStatus / DriverHostExit later)
 * settles the node's state. The reason a node is unbound is kept on it (docs/style.md 9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind_keys.h"
#include "lib/log.h"
#include "manager/manager.h"

/* Pending records of this file. A stop carries what follows once the host answered it:
 * nothing, a start of the driver it stopped (restart), or a new match (unregister, forced
 * RequestBind). */
enum {
  PENDING_START = 1,
  PENDING_RESTART = 2,
  PENDING_STOP = 3,
  PENDING_STOP_THEN_START = 4,
  PENDING_STOP_THEN_BIND = 5,
};

void binder__bind_node_init(const topology_node_t *n, dfnet_bind_node_t *out) {
  if (dfnet_bind_node_init(out, n->props, n->prop_count) != DFNET_STATUS_OK)
    dfnet_bind_node_init(out, NULL, 0);
}

static mgr_composite_t *composite_get(mgr_t *m, uint32_t id) {
  for (mgr_composite_t *c = m->composites; c; c = c->next)
    if (c->id == id)
      return c;
  return NULL;
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
  size_t np = n->prop_count < 64 ? n->prop_count : 64;
  for (size_t i = 0; i < np; i++)
    topology__prop_to_wire(&n->props[i], &ds->properties[i]);
  ds->properties_count = (pb_size_t)np;
  for (size_t i = 0; parent != NULL && i < parent->offer_count && i < 16; i++) {
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

/* ---- composites --------------------------------------------------------------------- */

static bool prop_key_is(const topology_prop_t *p, bool int_key, uint32_t k, const char *s) {
  if (int_key) {
    if (p->str_key == NULL)
      return p->int_key == k;
    const char *name = dfnet_bind_key_name(k);
    return name != NULL && strcmp(p->str_key, name) == 0;
  }
  if (p->str_key != NULL)
    return strcmp(p->str_key, s) == 0;
  const char *name = dfnet_bind_key_name(p->int_key);
  return name != NULL && strcmp(name, s) == 0;
}

static bool value_equals(const topology_prop_t *p, const dfnet_v1_PropertyValue *v) {
  switch (v->which_value) {
  case dfnet_v1_PropertyValue_int_value_tag:
    return p->type == DFNET_BIND_VALUE_UINT && p->int_value == v->value.int_value;
  case dfnet_v1_PropertyValue_bool_value_tag:
    return p->type == DFNET_BIND_VALUE_BOOL && p->bool_value == v->value.bool_value;
  case dfnet_v1_PropertyValue_str_value_tag:
  case dfnet_v1_PropertyValue_enum_value_tag:
    return (p->type == DFNET_BIND_VALUE_STRING || p->type == DFNET_BIND_VALUE_ENUM) &&
           strcmp(p->str_value, v->which_value == dfnet_v1_PropertyValue_str_value_tag
                                    ? v->value.str_value
                                    : v->value.enum_value) == 0;
  default:
    return false;
  }
}

/* Composite node spec parent: every ACCEPT key has one of its values, no REJECT value. */
static bool spec_parent_matches(const dfnet_v1_ParentSpec *ps, const topology_node_t *n) {
  for (pb_size_t r = 0; r < ps->bind_rules_count; r++) {
    const dfnet_v1_BindRule *rule = &ps->bind_rules[r];
    bool int_key = rule->which_key == dfnet_v1_BindRule_int_key_tag;
    const topology_prop_t *p = NULL;
    for (uint8_t i = 0; i < n->prop_count && p == NULL; i++)
      if (prop_key_is(&n->props[i], int_key, rule->key.int_key, rule->key.str_key))
        p = &n->props[i];
    bool any = false;
    for (pb_size_t v = 0; p != NULL && v < rule->values_count && !any; v++)
      any = value_equals(p, &rule->values[v]);
    if (rule->condition == dfnet_v1_Condition_ACCEPT ? !any : any)
      return false;
  }
  return true;
}

static void spec_parent_props(const dfnet_v1_ParentSpec *ps, dfnet_bind_property_t *out,
                              size_t *count) {
  *count = 0;
  for (pb_size_t i = 0; i < ps->properties_count; i++) {
    const dfnet_v1_NodeProperty *w = &ps->properties[i];
    dfnet_bind_property_t *p = &out[(*count)++];
    memset(p, 0, sizeof *p);
    if (w->which_key == dfnet_v1_NodeProperty_str_key_tag)
      p->str_key = w->key.str_key;
    else
      p->int_key = w->key.int_key;
    switch (w->which_value) {
    case dfnet_v1_NodeProperty_int_value_tag:
      p->type = DFNET_BIND_VALUE_UINT;
      p->int_value = w->value.int_value;
      break;
    case dfnet_v1_NodeProperty_bool_value_tag:
      p->type = DFNET_BIND_VALUE_BOOL;
      p->bool_value = w->value.bool_value;
      break;
    case dfnet_v1_NodeProperty_enum_value_tag:
      p->type = DFNET_BIND_VALUE_ENUM;
      p->str_value = w->value.enum_value;
      break;
    default:
      p->type = DFNET_BIND_VALUE_STRING;
      p->str_value = w->value.str_value;
      break;
    }
  }
}

/* Assign spec parents to the composite driver's nodes: parent 0 to the primary, the others
 * to distinct nodes, every non-optional node used (DFv2 composite node spec matching). */
static bool assign_parents(const dfnet_bind_program_t *prog, const dfnet_bind_node_t *parents,
                           size_t np, size_t next, uint32_t used) {
  size_t nn = dfnet_bind_program_node_count(prog);
  if (next == np) {
    for (size_t j = 0; j < nn; j++) {
      const char *name;
      dfnet_bind_node_type_t type;
      dfnet_bind_program_node_info(prog, j, &name, &type);
      if (type != DFNET_BIND_NODE_OPTIONAL && !(used & (1u << j)))
        return false;
    }
    return true;
  }
  for (size_t j = next == 0 ? 0 : 1; j < (next == 0 ? 1 : nn) && j < 32; j++) {
    if (used & (1u << j))
      continue;
    if (dfnet_bind_program_match_composite_node(prog, j, &parents[next], NULL) != DFNET_BIND_MATCH)
      continue;
    if (assign_parents(prog, parents, np, next + 1, used | (1u << j)))
      return true;
  }
  return false;
}

static bool spec_matches_driver(const dfnet_v1_CompositeNodeSpec *spec, const driver_t *d) {
  size_t np = spec->parents_count;
  if (np == 0 || np > dfnet_bind_program_node_count(d->program))
    return false;
  dfnet_bind_property_t props[4][8];
  dfnet_bind_node_t *nodes = calloc(np, sizeof *nodes);
  if (nodes == NULL)
    return false;
  for (size_t i = 0; i < np; i++) {
    size_t count;
    spec_parent_props(&spec->parents[i], props[i], &count);
    dfnet_bind_node_init(&nodes[i], props[i], count);
  }
  bool ok = assign_parents(d->program, nodes, np, 0, 0);
  free(nodes);
  return ok;
}

/* The composite driver for a spec: exactly one, or a reason. */
static driver_t *spec_driver(mgr_t *m, mgr_composite_t *c) {
  driver_t *found = NULL;
  size_t n = 0;
  for (size_t i = 0; i < m->index.count; i++) {
    driver_t *d = m->index.drivers[i];
    if (d == NULL || !d->composite || d->disabled || !spec_matches_driver(c->spec, d))
      continue;
    if (n++ == 0)
      found = d;
  }
  if (n == 1)
    return found;
  c->status = n == 0 ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_FAILED_PRECONDITION;
  topology__fmt(c->message, sizeof c->message,
                n == 0 ? "no composite driver matches composite node spec %s"
                       : "multiple composite drivers match composite node spec %s",
                c->name);
  return NULL;
}

static void bind_composite_node(mgr_t *m, topology_node_t *n) {
  mgr_composite_t *c = composite_get(m, n->composite_id);
  if (c == NULL)
    return;
  driver_t *d = c->from_spec ? spec_driver(m, c) : driver_index__get(&m->index, c->driver_id);
  if (d != NULL && d->disabled) {
    c->status = DFNET_STATUS_FAILED_PRECONDITION;
    topology__fmt(c->message, sizeof c->message, "composite driver %s is disabled", d->url);
    d = NULL;
  }
  if (d == NULL) {
    topology__set_unbound(n, c->status, c->message);
    return;
  }
  c->driver_id = d->id;
  c->status = DFNET_STATUS_OK;
  c->message[0] = '\0';
  binder__start(m, n, d);
}

static topology_node_t *slot_node(mgr_t *m, mgr_composite_slot_t *s) {
  if (s->moniker == NULL)
    return NULL;
  topology_node_t *n = topology__find(&m->topo, s->moniker);
  if (n == NULL || n->id != s->node_id) {
    free(s->moniker);
    s->moniker = NULL;
    s->node_id = 0;
    return NULL;
  }
  return n;
}

static void try_assemble(mgr_t *m, mgr_composite_t *c) {
  if (c->node_moniker != NULL)
    return;
  topology_node_t *parents[TOPOLOGY_PARENTS_MAX] = {0};
  size_t np = 0;
  for (size_t i = 0; i < c->slot_count; i++) {
    topology_node_t *n = slot_node(m, &c->slots[i]);
    if (n == NULL && !c->slots[i].optional)
      return;
    if (n != NULL && np < TOPOLOGY_PARENTS_MAX)
      parents[np++] = n;
  }
  if (np == 0)
    return;
  for (size_t i = 1; i < np; i++) {
    if (parents[i]->host_id != parents[0]->host_id) {
      mgr_host_t *a = hosts__get(m, parents[0]->host_id), *b = hosts__get(m, parents[i]->host_id);
      c->status = DFNET_STATUS_FAILED_PRECONDITION;
      topology__fmt(c->message, sizeof c->message,
                    "composite %s: parents on different hosts (%s, %s) are not supported", c->name,
                    a ? a->name : "?", b ? b->name : "?");
      DFNET_LOGW("binder", c->name, "%s", c->message);
      for (size_t k = 0; k < np; k++)
        topology__set_unbound(parents[k], c->status, c->message);
      return;
    }
  }
  char err[256];
  topology_node_t *cn = NULL;
  dfnet_status_t st = topology__add_composite(&m->topo, parents, np, c->name, parents[0]->host_id,
                                              &cn, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    c->status = st;
    topology__fmt(c->message, sizeof c->message, "composite %s: %s", c->name, err);
    DFNET_LOGW("binder", c->name, "%s", c->message);
    return;
  }
  cn->composite_id = c->id;
  c->node_moniker = strdup(cn->moniker);
  c->node_id = cn->id;
  mgr_host_t *h = hosts__get(m, cn->host_id);
  if (h != NULL)
    h->node_count++;
  DFNET_LOGI("binder", cn->moniker, "composite %s assembled from %zu parents", c->name, np);
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_ADDED, cn->moniker, c->name, DFNET_STATUS_OK);
  bind_composite_node(m, cn);
}

static void fill_slot(mgr_t *m, mgr_composite_t *c, size_t i, topology_node_t *n) {
  c->slots[i].moniker = strdup(n->moniker);
  c->slots[i].node_id = n->id;
  n->state = dfnet_v1_NodeState_OWNED_BY_COMPOSITE;
  topology__set_unbound(n, DFNET_STATUS_OK, NULL);
  try_assemble(m, c);
}

static bool in_composite(mgr_t *m, mgr_composite_t *c, const topology_node_t *n) {
  for (size_t i = 0; i < c->slot_count; i++)
    if (slot_node(m, &c->slots[i]) == n)
      return true;
  return false;
}

static bool offer_to_spec(mgr_t *m, mgr_composite_t *c, topology_node_t *n) {
  if (in_composite(m, c, n))
    return true;
  for (size_t i = 0; i < c->slot_count; i++) {
    if (slot_node(m, &c->slots[i]) != NULL || !spec_parent_matches(&c->spec->parents[i], n))
      continue;
    fill_slot(m, c, i, n);
    return true;
  }
  return false;
}

static mgr_composite_t *composite_new(mgr_t *m) {
  mgr_composite_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->id = ++m->next_composite_id;
  mgr_composite_t **tail = &m->composites;
  while (*tail)
    tail = &(*tail)->next;
  *tail = c;
  return c;
}

static mgr_composite_t *driver_instance(mgr_t *m, driver_t *d, uint32_t host_id) {
  for (mgr_composite_t *c = m->composites; c; c = c->next)
    if (!c->from_spec && c->driver_id == d->id && c->host_id == host_id)
      return c;
  mgr_composite_t *c = composite_new(m);
  if (c == NULL)
    return NULL;
  c->driver_id = d->id;
  c->host_id = host_id;
  topology__fmt(c->name, sizeof c->name, "%s",
                dfnet_bind_program_composite_name(d->program)
                    ? dfnet_bind_program_composite_name(d->program)
                    : d->name);
  size_t nn = dfnet_bind_program_node_count(d->program);
  c->slot_count = nn < 16 ? nn : 16;
  for (size_t j = 0; j < c->slot_count; j++) {
    const char *name;
    dfnet_bind_node_type_t type;
    dfnet_bind_program_node_info(d->program, j, &name, &type);
    topology__fmt(c->slots[j].name, sizeof c->slots[j].name, "%s", name);
    c->slots[j].primary = type == DFNET_BIND_NODE_PRIMARY;
    c->slots[j].optional = type == DFNET_BIND_NODE_OPTIONAL;
  }
  return c;
}

static bool offer_to_composite_driver(mgr_t *m, driver_t *d, topology_node_t *n,
                                      const dfnet_bind_node_t *bn) {
  size_t nn = dfnet_bind_program_node_count(d->program);
  for (size_t j = 0; j < nn && j < 16; j++) {
    if (dfnet_bind_program_match_composite_node(d->program, j, bn, NULL) != DFNET_BIND_MATCH)
      continue;
    mgr_composite_t *c = driver_instance(m, d, n->host_id);
    if (c == NULL)
      return false;
    if (in_composite(m, c, n))
      return true;
    if (slot_node(m, &c->slots[j]) != NULL)
      continue;
    fill_slot(m, c, j, n);
    return true;
  }
  return false;
}

/* Composite node specs first, then composite drivers. True when n became a parent. */
static bool offer_to_composites(mgr_t *m, topology_node_t *n, const dfnet_bind_node_t *bn) {
  bool owned = false;
  for (mgr_composite_t *c = m->composites; c; c = c->next)
    if (c->from_spec && offer_to_spec(m, c, n))
      owned = true;
  for (size_t i = 0; i < m->index.count; i++) {
    driver_t *d = m->index.drivers[i];
    if (d != NULL && d->composite && !d->disabled && offer_to_composite_driver(m, d, n, bn))
      owned = true;
  }
  return owned;
}

/* ---- binding ------------------------------------------------------------------------ */

void binder__bind_node(mgr_t *m, topology_node_t *n, const char *url_suffix) {
  if (n->owned || n->offline || n->starting || n->stopping ||
      n->state == dfnet_v1_NodeState_BOUND || n->state == dfnet_v1_NodeState_QUARANTINED ||
      m->stopping)
    return;
  if (n->composite) {
    bind_composite_node(m, n);
    return;
  }
  dfnet_bind_node_t *bn = malloc(sizeof *bn);
  if (bn == NULL) {
    topology__set_unbound(n, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  binder__bind_node_init(n, bn);
  if (offer_to_composites(m, n, bn) || n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
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

/* ---- removal ------------------------------------------------------------------------ */

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

void binder__node_removed_from_composites(mgr_t *m, topology_node_t *n) {
  for (mgr_composite_t *c = m->composites; c; c = c->next) {
    for (size_t i = 0; i < c->slot_count; i++) {
      if (c->slots[i].moniker != NULL && c->slots[i].node_id == n->id) {
        free(c->slots[i].moniker);
        c->slots[i].moniker = NULL;
        c->slots[i].node_id = 0;
      }
    }
    if (c->node_moniker != NULL && c->node_id == n->id) {
      free(c->node_moniker);
      c->node_moniker = NULL;
      c->node_id = 0;
    }
  }
}

void binder__remove_subtree(mgr_t *m, topology_node_t *n, bool stop_drivers, const char *reason) {
  while (n->child_count > 0)
    binder__remove_subtree(m, n->children[n->child_count - 1], stop_drivers, reason);
  if (stop_drivers && (n->state == dfnet_v1_NodeState_BOUND || n->starting))
    binder__stop_driver(m, n);
  if (n->state == dfnet_v1_NodeState_BOUND) {
    driver_t *d = driver_index__get(&m->index, n->driver_id);
    if (d != NULL && d->device_count > 0)
      d->device_count--;
  }
  binder__node_removed_from_composites(m, n);
  mgr_host_t *h = hosts__get(m, n->host_id);
  if (h != NULL && h->node_count > 0)
    h->node_count--;
  DFNET_LOGD("binder", n->moniker, "removed (%s)", reason ? reason : "");
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_REMOVED, n->moniker, reason, DFNET_STATUS_OK);
  topology__remove(&m->topo, n);
}

void binder__destroy_composites(mgr_t *m) {
  mgr_composite_t *c = m->composites;
  while (c) {
    mgr_composite_t *next = c->next;
    for (size_t i = 0; i < c->slot_count; i++)
      free(c->slots[i].moniker);
    free(c->node_moniker);
    free(c->spec);
    free(c);
    c = next;
  }
  m->composites = NULL;
}

/* ---- driver host crashes and driver status ------------------------------------------ */

static void on_restart_timer(void *user) {
  mgr_pending_t *p = user;
  mgr_t *m = p->mgr;
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  driver_t *d = driver_index__get(&m->index, p->driver_id);
  if (n != NULL && n->id == p->node_id && d != NULL && !d->disabled &&
      n->state == dfnet_v1_NodeState_UNBOUND && !n->starting && !n->offline) {
    DFNET_LOGI("binder", n->moniker, "restarting %s after a driver host crash", d->url);
    binder__start(m, n, d);
  }
  pending__free(p);
}

/* Record a crash now; returns the crashes within the window. */
static unsigned record_crash(topology_node_t *n, uint64_t now) {
  unsigned kept = 0;
  uint64_t keep[MGR_CRASH_LIMIT];
  for (unsigned i = 0; i < n->crash_count; i++)
    if (now - n->crash_ms[i] < MGR_CRASH_WINDOW_MS)
      keep[kept++] = n->crash_ms[i];
  if (kept == MGR_CRASH_LIMIT) {
    memmove(keep, keep + 1, (MGR_CRASH_LIMIT - 1) * sizeof *keep);
    kept--;
  }
  keep[kept++] = now;
  memcpy(n->crash_ms, keep, kept * sizeof *keep);
  n->crash_count = (uint8_t)kept;
  return kept;
}

static void crash_one(mgr_t *m, mgr_host_t *h, topology_node_t *n, const char *reason) {
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  char why[300];
  topology__fmt(why, sizeof why, "driver host exited: %s", reason);
  streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_HOST_EXITED, n->moniker, reason,
                 DFNET_STATUS_UNAVAILABLE);
  if (d != NULL && d->m.host_restart_on_crash) {
    unsigned crashes = record_crash(n, dfnet_transport_now_ms());
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, why);
    if (crashes >= MGR_CRASH_LIMIT) {
      n->state = dfnet_v1_NodeState_QUARANTINED;
      topology__fmt(why, sizeof why, "quarantined: driver %s crashed %u times within %u s", d->url,
                    crashes, MGR_CRASH_WINDOW_MS / 1000);
      topology__set_unbound(n, DFNET_STATUS_FAILED_PRECONDITION, why);
      DFNET_LOGW("binder", n->moniker, "%s", why);
      return;
    }
    uint32_t delay = MGR_RESTART_BACKOFF_MS << (crashes - 1);
    if (delay > MGR_RESTART_BACKOFF_MAX_MS)
      delay = MGR_RESTART_BACKOFF_MAX_MS;
    mgr_pending_t *p = pending__new(m, PENDING_RESTART);
    if (p == NULL)
      return;
    p->node_id = n->id;
    p->driver_id = d->id;
    topology__fmt(p->moniker, sizeof p->moniker, "%s", n->moniker);
    DFNET_LOGW("binder", n->moniker, "%s; restarting %s in %u ms (crash %u)", why, d->url, delay,
               crashes);
    if (pending__timer(p, delay, on_restart_timer) != DFNET_STATUS_OK)
      pending__free(p);
    return;
  }
  /* No restart: the node and its subtree go, descendants' drivers stopped first. */
  DFNET_LOGW("binder", n->moniker, "%s; removing the node and its subtree", why);
  binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, why);
  char moniker[TOPOLOGY_MONIKER_MAX + 1];
  topology__fmt(moniker, sizeof moniker, "%s", n->moniker);
  binder__remove_subtree(m, n, true, why);
  if (h->session != 0) {
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.which_msg = dfnet_v1_Envelope_node_remove_tag;
    topology__fmt(env->pb.msg.node_remove.moniker, sizeof env->pb.msg.node_remove.moniker, "%s",
                  moniker);
    env->pb.msg.node_remove.has_reason = true;
    env->pb.msg.node_remove.reason.code = dfnet_v1_Code_UNAVAILABLE;
    topology__fmt(env->pb.msg.node_remove.reason.message,
                  sizeof env->pb.msg.node_remove.reason.message, "%s", why);
    dfnet_transport_send(m->transport, h->session, env, 0);
  }
}

void binder__driver_host_exit(mgr_t *m, mgr_host_t *h, const dfnet_v1_DriverHostExit *e) {
  /* Collect first (monikers + ids): handling one may remove others. */
  size_t cap = 16, count = 0;
  struct victim {
    char moniker[TOPOLOGY_MONIKER_MAX + 1];
    uint64_t id;
  } *v = malloc(cap * sizeof *v);
  if (v == NULL)
    return;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    bool listed = false;
    for (pb_size_t i = 0; i < e->nodes_count && !listed; i++)
      listed = strcmp(e->nodes[i], n->moniker) == 0;
    if (n->host_id != h->id || (n->state != dfnet_v1_NodeState_BOUND && !n->starting))
      continue;
    if (!listed && (e->driver_host_id == 0 || n->driver_host_id != e->driver_host_id))
      continue;
    if (count == cap) {
      struct victim *p = realloc(v, 2 * cap * sizeof *v);
      if (p == NULL)
        break;
      v = p;
      cap *= 2;
    }
    topology__fmt(v[count].moniker, sizeof v[count].moniker, "%s", n->moniker);
    v[count++].id = n->id;
  }
  char reason[200];
  topology__fmt(reason, sizeof reason, "driver host %llu (pid %u) %s",
                (unsigned long long)e->driver_host_id, (unsigned)e->pid,
                e->reason[0] ? e->reason : "exited");
  for (size_t i = 0; i < count; i++) {
    n = topology__find(&m->topo, v[i].moniker);
    if (n != NULL && n->id == v[i].id && (n->state == dfnet_v1_NodeState_BOUND || n->starting))
      crash_one(m, h, n, reason);
  }
  free(v);
}

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
  struct {
    uint32_t host;
    uint64_t dh;
  } seen[256];
  uint32_t nseen = 0;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->state != dfnet_v1_NodeState_BOUND || n->driver_id != d->id)
      continue;
    bool dup = false;
    for (uint32_t i = 0; i < nseen && !dup; i++)
      dup = seen[i].host == n->host_id && seen[i].dh == n->driver_host_id && n->driver_host_id != 0;
    if (!dup && nseen < 256) {
      seen[nseen].host = n->host_id;
      seen[nseen++].dh = n->driver_host_id;
    }
    stop_driver(m, n, PENDING_STOP_THEN_START, d->id, NULL); /* started once stopped */
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, "restarting");
  }
  return nseen;
}

/* A composite driver leaves the index: a composite node spec keeps its slots (its node is
 * matched again later); an instance of the driver's composite bind rules goes, with its
 * composite node (drivers below it stopped), and its parents are free to bind again
 * unless another composite holds them. */
static uint32_t composites_forget_driver(mgr_t *m, const driver_t *d, const char *reason) {
  uint32_t stopped = 0; /* composite nodes that had d */
  mgr_composite_t **link = &m->composites;
  while (*link != NULL) {
    mgr_composite_t *c = *link;
    if (c->driver_id != d->id) {
      link = &c->next;
      continue;
    }
    if (c->from_spec) {
      c->driver_id = 0;
      link = &c->next;
      continue;
    }
    *link = c->next;
    topology_node_t *cn = c->node_moniker ? topology__find(&m->topo, c->node_moniker) : NULL;
    if (cn != NULL && cn->id == c->node_id) {
      stopped += cn->driver_id == d->id && (cn->state == dfnet_v1_NodeState_BOUND || cn->starting);
      binder__remove_subtree(m, cn, true, reason);
    }
    for (size_t i = 0; i < c->slot_count; i++) {
      topology_node_t *n = slot_node(m, &c->slots[i]);
      bool held = false;
      for (mgr_composite_t *o = m->composites; o != NULL && n != NULL && !held; o = o->next)
        held = in_composite(m, o, n);
      if (n != NULL && !held && n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
        n->state = dfnet_v1_NodeState_UNBOUND;
      free(c->slots[i].moniker);
    }
    free(c->node_moniker);
    free(c->spec);
    free(c);
  }
  return stopped;
}

uint32_t binder__release_driver(mgr_t *m, driver_t *d, const char *reason) {
  uint32_t released = composites_forget_driver(m, d, reason);
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

/* ---- composite node specs ----------------------------------------------------------- */

static bool spec_valid(const dfnet_v1_CompositeNodeSpec *spec, char *err, size_t err_size) {
  const char *why;
  if (!topology__name_valid(spec->name, &why)) {
    topology__fmt(err, err_size, "MISSING_ARGS: composite node spec name: %s", why);
    return false;
  }
  if (spec->parents_count == 0) {
    topology__fmt(err, err_size, "EMPTY_NODES: composite node spec %s has no parents", spec->name);
    return false;
  }
  for (pb_size_t i = 0; i < spec->parents_count; i++) {
    const dfnet_v1_ParentSpec *ps = &spec->parents[i];
    if (ps->bind_rules_count == 0) {
      topology__fmt(err, err_size, "MISSING_ARGS: parent %u has no bind rules", (unsigned)i);
      return false;
    }
    for (pb_size_t r = 0; r < ps->bind_rules_count; r++) {
      const dfnet_v1_BindRule *b = &ps->bind_rules[r];
      if (b->which_key == 0 || b->condition == dfnet_v1_Condition_CONDITION_UNSPECIFIED ||
          b->values_count == 0) {
        topology__fmt(err, err_size,
                      "MISSING_ARGS: parent %u bind rule %u needs a key, a condition and values",
                      (unsigned)i, (unsigned)r);
        return false;
      }
    }
  }
  return true;
}

dfnet_status_t binder__add_spec(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                size_t err_size) {
  if (!spec_valid(spec, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  for (mgr_composite_t *c = m->composites; c; c = c->next) {
    if (c->from_spec && strcmp(c->name, spec->name) == 0) {
      topology__fmt(err, err_size, "composite node spec %s already exists", spec->name);
      return DFNET_STATUS_ALREADY_EXISTS;
    }
  }
  /* Parents that would be on different hosts: refused now, with the reason. */
  topology_node_t *first[4] = {0};
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->composite || n->owned)
      continue;
    for (pb_size_t i = 0; i < spec->parents_count; i++)
      if (first[i] == NULL && spec_parent_matches(&spec->parents[i], n)) {
        first[i] = n;
        break;
      }
  }
  for (pb_size_t i = 1; i < spec->parents_count; i++) {
    if (first[0] && first[i] && first[i]->host_id != first[0]->host_id) {
      topology__fmt(err, err_size,
                    "composite node spec %s: parents %s and %s are on different hosts; "
                    "composites across hosts are not supported",
                    spec->name, first[0]->moniker, first[i]->moniker);
      return DFNET_STATUS_FAILED_PRECONDITION;
    }
  }
  mgr_composite_t *c = composite_new(m);
  dfnet_v1_CompositeNodeSpec *copy = malloc(sizeof *copy);
  if (c == NULL || copy == NULL) {
    free(copy);
    topology__fmt(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *copy = *spec;
  c->from_spec = true;
  c->spec = copy;
  topology__fmt(c->name, sizeof c->name, "%s", spec->name);
  c->slot_count = spec->parents_count;
  for (size_t i = 0; i < c->slot_count; i++) {
    topology__fmt(c->slots[i].name, sizeof c->slots[i].name, "%zu", i);
    c->slots[i].primary = i == 0;
  }
  DFNET_LOGI("binder", c->name, "composite node spec added with %zu parents", c->slot_count);
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->composite || n->owned || n->offline)
      continue;
    if (n->state == dfnet_v1_NodeState_UNBOUND || n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
      offer_to_spec(m, c, n);
  }
  return DFNET_STATUS_OK;
}
