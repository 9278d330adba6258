/* dfnet-manager: a lease request's targets resolved against the topology (docs/architecture.md
 * "Leases", "What it covers"; lease.h lease__resolve): monikers, class paths, and selectors
 * that pick one online, bound node. The plan it makes names what a lease granted now would
 * hold: one root per target, then the parents of composite roots.
 *
 * Selectors, KEY=VALUE, all satisfied by the one node they pick:
 *   host=NAME     the node's host;
 *   class=NAME    the node's class (class/<NAME>/<NNN>);
 *   KEY=VALUE     a label of the node's host, or a property of the node: its key as `dfnet
 *                 node show` prints it (a string key, or an integer key's name such as
 *                 fuchsia.BIND_PCI_VID), its value as written there or plainly (0x1af4 or
 *                 6900 for an integer, a string with or without its quotes, true/false,
 *                 Enum(x.y.Z) or x.y.Z).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/lease.h"

#define SELECTOR_KEY_MAX 255

bool lease__selector_valid(const char *text) {
  for (const char *p = text; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return false;
  const char *eq = strchr(text, '=');
  return eq != NULL && eq != text && (size_t)(eq - text) <= SELECTOR_KEY_MAX;
}

/* The node a target stands for: one kept by its parent's driver (a class entry) stands for
 * the driver's node that serves it, as a call to it does (handle_call.c); a node kept by its
 * host agent (a bus node) for itself. */
static const topology_node_t *serving_node(const topology_node_t *n) {
  const topology_node_t *x = n;
  while (x->state == dfnet_v1_NodeState_OWNED_BY_PARENT && x->parent_count > 0 &&
         x->parents[0] != NULL)
    x = x->parents[0];
  return x != n && x->state == dfnet_v1_NodeState_BOUND && x->driver_id != 0 ? x : n;
}

/* ---- selectors ---------------------------------------------------------------------- */

static bool value_matches(const topology_prop_t *p, const char *v) {
  size_t len = strlen(v);
  switch (p->type) {
  case DFNET_BIND_VALUE_UINT: {
    char *end;
    unsigned long long x = strtoull(v, &end, 0);
    return *v != '\0' && *v != '-' && *end == '\0' && x == p->int_value;
  }
  case DFNET_BIND_VALUE_STRING:
    return strcmp(p->str_value, v) == 0 ||
           (len >= 2 && v[0] == '"' && v[len - 1] == '"' && strlen(p->str_value) == len - 2 &&
            strncmp(p->str_value, v + 1, len - 2) == 0);
  case DFNET_BIND_VALUE_BOOL:
    return strcmp(v, p->bool_value ? "true" : "false") == 0;
  case DFNET_BIND_VALUE_ENUM:
    return strcmp(p->str_value, v) == 0 ||
           (len > 6 && strncmp(v, "Enum(", 5) == 0 && v[len - 1] == ')' &&
            strlen(p->str_value) == len - 6 && strncmp(p->str_value, v + 5, len - 6) == 0);
  default:
    return false;
  }
}

/* Does node n (of host h, may be NULL) satisfy selector KEY=VALUE? */
static bool satisfies(const topology_node_t *n, const mgr_host_t *h, const char *selector) {
  const char *eq = strchr(selector, '=');
  size_t klen = (size_t)(eq - selector);
  const char *v = eq + 1;
  char key[SELECTOR_KEY_MAX + 1];
  memcpy(key, selector, klen);
  key[klen] = '\0';
  if (strcmp(key, "host") == 0)
    return h != NULL && strcmp(h->name, v) == 0;
  if (strcmp(key, "class") == 0)
    return n->class_name != NULL && strcmp(n->class_name, v) == 0;
  for (pb_size_t i = 0; h != NULL && i < h->label_count; i++)
    if (strcmp(h->labels[i].key, key) == 0 && strcmp(h->labels[i].value, v) == 0)
      return true;
  char buf[32];
  for (uint8_t i = 0; i < n->prop_count; i++)
    if (strcmp(topology__prop_key_name(&n->props[i], buf, sizeof buf), key) == 0 &&
        value_matches(&n->props[i], v))
      return true;
  return false;
}

static int cmp_node(const void *a, const void *b) {
  return strcmp((*(topology_node_t *const *)a)->moniker, (*(topology_node_t *const *)b)->moniker);
}

static bool subtrees_meet(mgr_t *m, const char *x, const char *y, const char **node);

/* Does the subtree of moniker meet that of a root of p? */
static bool overlaps_roots(mgr_t *m, const lease_plan_t *p, const char *moniker,
                           const char **which) {
  for (size_t i = 0; i < p->root_count; i++) {
    const char *where;
    if (subtrees_meet(m, p->nodes[i], moniker, &where)) {
      if (which != NULL)
        *which = p->nodes[i];
      return true;
    }
  }
  return false;
}

/* The node the selectors pick: online, bound, all of them satisfied, not overlapping p's
 * roots; in moniker order the first no lease conflicts with, else the first. NULL: none
 * matches (or no memory). */
static const topology_node_t *pick(mgr_t *m, const char *const *sel, size_t nsel,
                                   const lease_plan_t *p) {
  topology_node_t **cand = malloc((m->topo.count + 1) * sizeof *cand);
  if (cand == NULL)
    return NULL;
  size_t nc = 0;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->offline || n->hidden || n->state != dfnet_v1_NodeState_BOUND || n->driver_id == 0)
      continue;
    const mgr_host_t *h = hosts__get(m, n->host_id);
    bool all = true;
    for (size_t i = 0; i < nsel && all; i++)
      all = satisfies(n, h, sel[i]);
    if (all && !overlaps_roots(m, p, n->moniker, NULL))
      cand[nc++] = n;
  }
  if (nc > 1)
    qsort(cand, nc, sizeof *cand, cmp_node);
  const topology_node_t *best = nc > 0 ? cand[0] : NULL;
  for (size_t i = 0; i < nc; i++) {
    lease_plan_t one = {.root_count = 1, .node_count = 1, .nodes = {cand[i]->moniker}};
    if (!lease__conflicts(m, &one)) {
      best = cand[i];
      break;
    }
  }
  free(cand);
  return best;
}

/* ---- the plan ----------------------------------------------------------------------- */

static void add_root(lease_plan_t *p, store_target_t t, const char *moniker) {
  p->targets[p->target_count++] = t;
  p->nodes[p->node_count++] = moniker;
  p->root_count++;
}

/* The device behind a composite's parent x, when x is a child a device's driver added only
 * to offer its service (no driver of its own; a lab board's outlet and port:
 * drivers/common/drvkit.h drvkit__offer_child): that device, whose driver serves what x
 * offers the composite (a call to the device would otherwise bypass the lease). NULL for
 * any other parent. */
static const topology_node_t *offering_device(const topology_node_t *x) {
  if (x->offer_count > 0 && x->driver_id == 0 && x->parent_count > 0 && x->parents[0] != NULL &&
      x->parents[0]->driver_id != 0)
    return x->parents[0];
  return NULL;
}

/* Add node n to p's claims unless a root covers it or it is there already. */
static void add_claim(mgr_t *m, lease_plan_t *p, const topology_node_t *n) {
  bool listed = false;
  for (size_t j = 0; j < p->root_count && !listed; j++)
    listed = lease__descends(m, p->nodes[j], n->moniker); /* a root covers it */
  for (size_t j = p->root_count; j < p->node_count && !listed; j++)
    listed = strcmp(p->nodes[j], n->moniker) == 0;
  if (!listed && p->node_count < STORE_NODES_MAX)
    p->nodes[p->node_count++] = n->moniker;
}

/* The parents of p's composite roots, each once, and the devices behind the ones that only
 * offer their device's service (offering_device). */
static void add_parents(mgr_t *m, lease_plan_t *p) {
  for (size_t r = 0; r < p->root_count; r++) {
    const topology_node_t *n = topology__find(&m->topo, p->nodes[r]);
    if (n == NULL || !n->composite)
      continue;
    for (uint8_t i = 0; i < n->parent_count; i++) {
      const topology_node_t *parent = n->parents[i];
      if (parent == NULL)
        continue;
      add_claim(m, p, parent);
      const topology_node_t *device = offering_device(parent);
      if (device != NULL)
        add_claim(m, p, device);
    }
  }
}

/* The selectors' text, space separated, for a message. */
static void selectors_text(char *buf, size_t size, const char *const *sel, size_t nsel) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < nsel && len + 1 < size; i++) {
    int w = snprintf(buf + len, size - len, "%s%s", i ? " " : "", sel[i]);
    len += w > 0 && (size_t)w < size - len ? (size_t)w : size - len - 1;
  }
}

dfnet_status_t lease__resolve(mgr_t *m, const lease_ask_t *a, bool best_effort, lease_plan_t *p,
                              char *err, size_t err_size) {
  p->target_count = p->root_count = p->node_count = 0;
  const char *sel[STORE_TARGETS_MAX];
  size_t nsel = 0;
  for (size_t i = 0; i < a->target_count; i++) {
    store_target_t t = a->targets[i];
    if (t.kind == STORE_TARGET_SELECTOR) {
      if (!lease__selector_valid(t.text) && !best_effort) {
        topology__fmt(err, err_size, "selector '%s' is not KEY=VALUE", t.text);
        return DFNET_STATUS_INVALID_ARGUMENT;
      }
      if (lease__selector_valid(t.text))
        sel[nsel++] = t.text;
      continue;
    }
    const topology_node_t *n = topology__find_named(&m->topo, t.text);
    if (n == NULL) {
      if (best_effort && t.kind == STORE_TARGET_MONIKER)
        add_root(p, t, t.text); /* wanted all the same: the node may come back */
      if (best_effort)
        continue;
      topology__fmt(err, err_size, "no node or class entry '%s'", t.text);
      return DFNET_STATUS_NOT_FOUND;
    }
    n = serving_node(n);
    const char *other = NULL;
    if (!best_effort && overlaps_roots(m, p, n->moniker, &other)) {
      topology__fmt(err, err_size, "targets overlap: %s and %s (a lease on one covers the other)",
                    other, n->moniker);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    add_root(p, t, n->moniker);
  }
  if (nsel > 0) {
    const topology_node_t *n = pick(m, sel, nsel, p);
    if (n == NULL && !best_effort) {
      char text[600];
      selectors_text(text, sizeof text, sel, nsel);
      topology__fmt(err, err_size, "no online, bound node matches %s", text);
      return DFNET_STATUS_NOT_FOUND;
    }
    if (n != NULL)
      add_root(p, (store_target_t){STORE_TARGET_MONIKER, n->moniker}, n->moniker);
  }
  add_parents(m, p);
  return DFNET_STATUS_OK;
}

typedef struct meet_ctx {
  mgr_t *m;
  const char *other;
  const char *node;
} meet_ctx_t;

static bool below_other(void *arg, const topology_node_t *d) {
  meet_ctx_t *c = arg;
  c->node = d->moniker;
  return lease__descends(c->m, c->other, d->moniker);
}

/* Do the subtrees of x and y meet: one below the other, or a composite below x that is also
 * below y (through another parent)? *node gets where. */
static bool subtrees_meet(mgr_t *m, const char *x, const char *y, const char **node) {
  if (lease__descends(m, x, y)) {
    *node = y;
    return true;
  }
  if (lease__descends(m, y, x)) {
    *node = x;
    return true;
  }
  meet_ctx_t c = {m, y, NULL};
  if (lease__composite_below(m, x, below_other, &c)) {
    *node = c.node;
    return true;
  }
  return false;
}

bool lease__plans_overlap(mgr_t *m, const lease_plan_t *a, const lease_plan_t *b,
                          const char **node) {
  for (size_t i = 0; i < a->node_count; i++) {
    bool a_root = i < a->root_count;
    for (size_t j = 0; j < b->node_count; j++) {
      bool b_root = j < b->root_count;
      const char *x = a->nodes[i], *y = b->nodes[j], *where = x;
      bool hit = a_root && b_root ? subtrees_meet(m, x, y, &where)
                 : a_root         ? lease__descends(m, x, (where = y))
                 : b_root         ? lease__descends(m, y, x)
                                  : strcmp(x, y) == 0;
      if (hit) {
        if (node != NULL)
          *node = where;
        return true;
      }
    }
  }
  return false;
}
