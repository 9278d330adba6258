/* dfnet-manager: composites (docs/spec/dfv2.md "Composites"): composite node specs and the
 * instances of composite bind rules, and assembling a composite node from its parents.
 *
 * A node that no driver owns is presented to every composite as a bind parent: composite
 * node specs first, then composite drivers (one instance per driver and host: bind rules
 * cannot tell one board's nodes from another's, so each host assembles its own). A node
 * taken as a parent is OWNED_BY_COMPOSITE; once every non-optional parent is taken, the
 * composite node is added under all of them and bound to the composite driver. A spec's
 * parents may be on several hosts: the composite node is its primary parent's host's, its
 * driver runs there, and it reaches the other parents' offers through the manager
 * (offers.c, handle_call.c). A record keeps its parents by moniker + id (docs/style.md 7)
 * and drops one that is gone; a composite node goes with any of its parents.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "dfnet/bind_keys.h"
#include "lib/log.h"
#include "lib/property.h"
#include "manager/manager.h"

/* The bounds of a composite node spec (query.options). */
#define SPEC_PARENTS_MAX pb_arraysize(dfnet_v1_CompositeNodeSpec, parents)
#define SPEC_PARENT_PROPS_MAX pb_arraysize(dfnet_v1_ParentSpec, properties)
/* assign_parents marks the composite driver's nodes taken in one word. */
#define USED_BITS (sizeof(uint32_t) * CHAR_BIT)

_Static_assert(SPEC_PARENTS_MAX <= MGR_COMPOSITE_PARENTS_MAX, "a spec's parents fit its record");
_Static_assert(SPEC_PARENTS_MAX <= TOPOLOGY_PARENTS_MAX, "a spec's parents fit its node");
_Static_assert(SPEC_PARENT_PROPS_MAX <= DFNET_BIND_NODE_MAX_PROPERTIES, "a spec parent matches");
_Static_assert(pb_membersize(mgr_composite_t, name) == TOPOLOGY_NAME_MAX + 1,
               "a composite's name is its node's name");
/* nanopb is built without PB_FIELD_32BIT: a message struct stays under 64 KiB (query.options
 * bounds a spec parent for 16 of them to fit a listing). */
_Static_assert(sizeof(dfnet_v1_AddCompositeNodeSpec) < 65536, "AddCompositeNodeSpec");
_Static_assert(sizeof(dfnet_v1_CompositeInfo) < 65536, "CompositeInfo");

mgr_composite_t *binder__composite_get(mgr_t *m, uint32_t id) {
  mgr_composite_t *c;
  DL_SEARCH_SCALAR(m->composites, c, id, id);
  return c;
}

static void composite_free(mgr_composite_t *c) {
  for (size_t i = 0; i < c->parent_count; i++)
    free(c->parents[i].moniker);
  free(c->node_moniker);
  free(c->spec);
  free(c);
}

/* ---- matching a composite node spec ------------------------------------------------- */

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

/* A bind rule's value v against a node's property p: a string value and an enum value of
 * the same text are equal. */
static bool value_equals(const topology_prop_t *p, const dfnet_bind_property_t *v) {
  switch (v->type) {
  case DFNET_BIND_VALUE_UINT:
    return p->type == DFNET_BIND_VALUE_UINT && p->int_value == v->int_value;
  case DFNET_BIND_VALUE_BOOL:
    return p->type == DFNET_BIND_VALUE_BOOL && p->bool_value == v->bool_value;
  case DFNET_BIND_VALUE_STRING:
  case DFNET_BIND_VALUE_ENUM:
    return (p->type == DFNET_BIND_VALUE_STRING || p->type == DFNET_BIND_VALUE_ENUM) &&
           strcmp(p->str_value, v->str_value) == 0;
  default:
    return false;
  }
}

/* Does `rule` hold a value equal to p's? */
static bool rule_has_value(const dfnet_v1_BindRule *rule, const topology_prop_t *p) {
  for (pb_size_t v = 0; v < rule->values_count; v++) {
    dfnet_bind_property_t value;
    if (dfnet_property_value_from_wire(&rule->values[v], &value) && value_equals(p, &value))
      return true;
  }
  return false;
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
    bool any = p != NULL && rule_has_value(rule, p);
    if (rule->condition == dfnet_v1_Condition_ACCEPT ? !any : any)
      return false;
  }
  return true;
}

/* A spec parent's properties in the matcher's form (strings borrowed from ps); a property
 * without a value is an empty string, as it always was. */
static size_t spec_parent_props(const dfnet_v1_ParentSpec *ps,
                                dfnet_bind_property_t out[SPEC_PARENT_PROPS_MAX]) {
  for (pb_size_t i = 0; i < ps->properties_count; i++) {
    if (!dfnet_property_from_wire(&ps->properties[i], &out[i])) {
      out[i].type = DFNET_BIND_VALUE_STRING;
      out[i].str_value = "";
    }
  }
  return ps->properties_count;
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
  for (size_t j = next == 0 ? 0 : 1; j < (next == 0 ? 1 : nn) && j < USED_BITS; j++) {
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
  if (np == 0 || np > SPEC_PARENTS_MAX || np > dfnet_bind_program_node_count(d->program))
    return false;
  dfnet_bind_property_t props[SPEC_PARENTS_MAX][SPEC_PARENT_PROPS_MAX];
  dfnet_bind_node_t *nodes = calloc(np, sizeof *nodes);
  if (nodes == NULL)
    return false;
  for (size_t i = 0; i < np; i++)
    dfnet_bind_node_init(&nodes[i], props[i], spec_parent_props(&spec->parents[i], props[i]));
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

/* ---- assembling --------------------------------------------------------------------- */

void binder__bind_composite_node(mgr_t *m, topology_node_t *n) {
  mgr_composite_t *c = binder__composite_get(m, n->composite_id);
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

/* The node taken as parent p, or NULL (none, or gone: then p is free again). */
static topology_node_t *parent_node(mgr_t *m, mgr_composite_parent_t *p) {
  if (p->moniker == NULL)
    return NULL;
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  if (n == NULL || n->id != p->node_id) {
    free(p->moniker);
    p->moniker = NULL;
    p->node_id = 0;
    return NULL;
  }
  return n;
}

/* How many hosts the parents are on. */
static size_t parents_hosts(topology_node_t *const *nodes, size_t count) {
  size_t hosts = 0;
  for (size_t i = 0; i < count; i++) {
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++)
      seen = nodes[j]->host_id == nodes[i]->host_id;
    hosts += !seen;
  }
  return hosts;
}

/* Add c's composite node once every non-optional parent is taken, and bind it. The
 * primary parent (parents[0]) names it and gives it its host. */
static void try_assemble(mgr_t *m, mgr_composite_t *c) {
  if (c->node_moniker != NULL)
    return;
  topology_node_t *nodes[TOPOLOGY_PARENTS_MAX] = {0};
  size_t np = 0;
  for (size_t i = 0; i < c->parent_count; i++) {
    topology_node_t *n = parent_node(m, &c->parents[i]);
    if (n == NULL && !c->parents[i].optional)
      return;
    if (n != NULL && np < TOPOLOGY_PARENTS_MAX)
      nodes[np++] = n;
  }
  if (np == 0 || !c->parents[0].primary) /* the primary comes first and is never optional */
    return;
  char err[256];
  topology_node_t *cn = NULL;
  dfnet_status_t st = topology__add_composite(&m->topo, nodes, np, c->name, nodes[0]->host_id, &cn,
                                              err, sizeof err);
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
  DFNET_LOGI("binder", cn->moniker, "composite %s assembled from %zu parents%s", c->name, np,
             parents_hosts(nodes, np) > 1 ? " on several hosts" : "");
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_ADDED, cn->moniker, c->name, DFNET_STATUS_OK);
  binder__bind_composite_node(m, cn);
}

/* n becomes c's parent i. */
static void take_parent(mgr_t *m, mgr_composite_t *c, size_t i, topology_node_t *n) {
  c->parents[i].moniker = strdup(n->moniker);
  c->parents[i].node_id = n->id;
  n->state = dfnet_v1_NodeState_OWNED_BY_COMPOSITE;
  topology__set_unbound(n, DFNET_STATUS_OK, NULL);
  try_assemble(m, c);
}

static bool in_composite(mgr_t *m, mgr_composite_t *c, const topology_node_t *n) {
  for (size_t i = 0; i < c->parent_count; i++)
    if (parent_node(m, &c->parents[i]) == n)
      return true;
  return false;
}

/* ---- bind parents ------------------------------------------------------------------- */

/* Present n to spec c as a bind parent: true when n is (now) one of its parents. */
static bool bind_parent_to_spec(mgr_t *m, mgr_composite_t *c, topology_node_t *n) {
  if (in_composite(m, c, n))
    return true;
  for (size_t i = 0; i < c->parent_count; i++) {
    if (parent_node(m, &c->parents[i]) != NULL || !spec_parent_matches(&c->spec->parents[i], n))
      continue;
    take_parent(m, c, i, n);
    return true;
  }
  return false;
}

static mgr_composite_t *composite_new(mgr_t *m) {
  mgr_composite_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->id = ++m->next_composite_id;
  DL_APPEND(m->composites, c);
  return c;
}

/* The instance of composite driver d on a host (made on first use). */
static mgr_composite_t *driver_instance(mgr_t *m, driver_t *d, uint32_t host_id) {
  mgr_composite_t *c;
  DL_FOREACH(m->composites, c) {
    if (!c->from_spec && c->driver_id == d->id && c->host_id == host_id)
      return c;
  }
  c = composite_new(m);
  if (c == NULL)
    return NULL;
  c->driver_id = d->id;
  c->host_id = host_id;
  topology__fmt(c->name, sizeof c->name, "%s",
                dfnet_bind_program_composite_name(d->program)
                    ? dfnet_bind_program_composite_name(d->program)
                    : d->name);
  size_t nn = dfnet_bind_program_node_count(d->program);
  c->parent_count = nn < MGR_COMPOSITE_PARENTS_MAX ? nn : MGR_COMPOSITE_PARENTS_MAX;
  for (size_t j = 0; j < c->parent_count; j++) {
    const char *name;
    dfnet_bind_node_type_t type;
    dfnet_bind_program_node_info(d->program, j, &name, &type);
    topology__fmt(c->parents[j].name, sizeof c->parents[j].name, "%s", name);
    c->parents[j].primary = type == DFNET_BIND_NODE_PRIMARY;
    c->parents[j].optional = type == DFNET_BIND_NODE_OPTIONAL;
  }
  return c;
}

/* Present n to composite driver d as a bind parent: true when n is (now) a parent of d's
 * instance on n's host. */
static bool bind_parent_to_driver(mgr_t *m, driver_t *d, topology_node_t *n,
                                  const dfnet_bind_node_t *bn) {
  size_t nn = dfnet_bind_program_node_count(d->program);
  for (size_t j = 0; j < nn && j < MGR_COMPOSITE_PARENTS_MAX; j++) {
    if (dfnet_bind_program_match_composite_node(d->program, j, bn, NULL) != DFNET_BIND_MATCH)
      continue;
    mgr_composite_t *c = driver_instance(m, d, n->host_id);
    if (c == NULL)
      return false;
    if (in_composite(m, c, n))
      return true;
    if (parent_node(m, &c->parents[j]) != NULL)
      continue;
    take_parent(m, c, j, n);
    return true;
  }
  return false;
}

bool binder__bind_parent(mgr_t *m, topology_node_t *n, const dfnet_bind_node_t *bn) {
  bool owned = false;
  mgr_composite_t *c;
  DL_FOREACH(m->composites, c) {
    if (c->from_spec && bind_parent_to_spec(m, c, n))
      owned = true;
  }
  for (size_t i = 0; i < m->index.count; i++) {
    driver_t *d = m->index.drivers[i];
    if (d != NULL && d->composite && !d->disabled && bind_parent_to_driver(m, d, n, bn))
      owned = true;
  }
  return owned;
}

/* ---- records ------------------------------------------------------------------------ */

void binder__node_removed_from_composites(mgr_t *m, topology_node_t *n) {
  mgr_composite_t *c;
  DL_FOREACH(m->composites, c) {
    for (size_t i = 0; i < c->parent_count; i++) {
      if (c->parents[i].moniker != NULL && c->parents[i].node_id == n->id) {
        free(c->parents[i].moniker);
        c->parents[i].moniker = NULL;
        c->parents[i].node_id = 0;
      }
    }
    if (c->node_moniker != NULL && c->node_id == n->id) {
      free(c->node_moniker);
      c->node_moniker = NULL;
      c->node_id = 0;
    }
  }
}

void binder__destroy_composites(mgr_t *m) {
  mgr_composite_t *c, *next;
  DL_FOREACH_SAFE(m->composites, c, next) {
    composite_free(c);
  }
  m->composites = NULL;
}

/* c leaves the list: its composite node goes (drivers below it stopped), and its parents
 * are free to bind again unless another composite holds them. Returns 1 when the composite
 * node had d bound or starting. */
static uint32_t composite_drop(mgr_t *m, mgr_composite_t *c, const driver_t *d,
                               const char *reason) {
  uint32_t stopped = 0;
  topology_node_t *cn = c->node_moniker ? topology__find(&m->topo, c->node_moniker) : NULL;
  if (cn != NULL && cn->id == c->node_id) {
    stopped = cn->driver_id == d->id && (cn->state == dfnet_v1_NodeState_BOUND || cn->starting);
    binder__remove_subtree(m, cn, true, reason);
  }
  for (size_t i = 0; i < c->parent_count; i++) {
    topology_node_t *n = parent_node(m, &c->parents[i]);
    bool held = false;
    if (n != NULL) {
      mgr_composite_t *o;
      DL_FOREACH(m->composites, o) {
        if ((held = in_composite(m, o, n)))
          break;
      }
    }
    if (n != NULL && !held && n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
      n->state = dfnet_v1_NodeState_UNBOUND;
  }
  composite_free(c);
  return stopped;
}

uint32_t binder__composites_forget_driver(mgr_t *m, const driver_t *d, const char *reason) {
  uint32_t stopped = 0; /* composite nodes that had d */
  mgr_composite_t *c, *next;
  DL_FOREACH_SAFE(m->composites, c, next) {
    if (c->driver_id != d->id)
      continue;
    if (c->from_spec) {
      c->driver_id = 0;
      continue;
    }
    DL_DELETE(m->composites, c);
    stopped += composite_drop(m, c, d, reason);
  }
  return stopped;
}

/* ---- composite node specs from admins ----------------------------------------------- */

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

/* A spec of a name already taken is refused. (Its parents may be on any hosts.) */
static dfnet_status_t spec_admissible(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                      size_t err_size) {
  const mgr_composite_t *c;
  DL_FOREACH(m->composites, c) {
    if (c->from_spec && strcmp(c->name, spec->name) == 0) {
      topology__fmt(err, err_size, "composite node spec %s already exists", spec->name);
      return DFNET_STATUS_ALREADY_EXISTS;
    }
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t binder__spec_admissible(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                       size_t err_size) {
  if (!spec_valid(spec, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  return spec_admissible(m, spec, err, err_size);
}

dfnet_status_t binder__add_spec(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                size_t err_size) {
  dfnet_status_t st = binder__spec_admissible(m, spec, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
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
  c->parent_count = spec->parents_count;
  for (size_t i = 0; i < c->parent_count; i++) {
    topology__fmt(c->parents[i].name, sizeof c->parents[i].name, "%zu", i);
    c->parents[i].primary = i == 0;
  }
  DFNET_LOGI("binder", c->name, "composite node spec added with %zu parents", c->parent_count);
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->composite || n->owned || n->offline)
      continue;
    if (n->state == dfnet_v1_NodeState_UNBOUND || n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE)
      bind_parent_to_spec(m, c, n);
  }
  return DFNET_STATUS_OK;
}
