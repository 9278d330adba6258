/* dfnet-manager: lease coverage and conflicts (docs/architecture.md "Leases"; lease.h
 * "Coverage"): which held lease covers a node, whether a node descends from a root, and
 * which held lease conflicts with a plan, from the claims index (lease.c).
 *
 * A node is covered by the lease that claims it, or by one whose subtree claim is on one of
 * its ancestors: up its primary parents (its moniker's prefixes), and up every other parent
 * of a composite node on the way.
 *
 * Scale (bench/lease_bench: 10,000 leases). Whether a claim is below a root is one lookup of
 * the claims' prefix counts, and which one is found down the root's subtree (every claim is
 * walked only when a composite node has claims below it, or a claimed node below the root
 * is not in the topology).
 */
#include <string.h>

#include "manager/lease_internal.h"

#define LEASE_DAG_DEPTH 16     /* composite parents followed up from one node */
#define LEASE_SUBTREE_DEPTH 64 /* levels walked down a root's subtree for composites */

/* ---- coverage --------------------------------------------------------------------- */

/* The lease with a subtree claim on n or above it (primary parents, and every parent of a
 * composite node on the way up), or NULL. */
static mgr_lease_t *covering_up(mgr_t *m, const topology_node_t *n, int depth) {
  for (const topology_node_t *x = n; x != NULL; x = x->parent_count > 0 ? x->parents[0] : NULL) {
    lease_claim_t *c = lease__claim_find(m->leases, x->moniker);
    if (c != NULL && !c->node_only)
      return lease__get(m, c->lease_id);
    if (x->parent_count > 1 && depth < LEASE_DAG_DEPTH) {
      for (uint8_t i = 1; i < x->parent_count; i++) {
        mgr_lease_t *l = x->parents[i] ? covering_up(m, x->parents[i], depth + 1) : NULL;
        if (l != NULL)
          return l;
      }
    }
  }
  return NULL;
}

mgr_lease_t *lease__covering(mgr_t *m, const char *moniker) {
  if (m->leases == NULL || m->leases->claims == NULL)
    return NULL;
  lease_claim_t *c = lease__claim_find(m->leases, moniker);
  if (c != NULL)
    return lease__get(m, c->lease_id);
  const topology_node_t *n = topology__find(&m->topo, moniker);
  if (n != NULL)
    return covering_up(m, n, 0);
  char up[TOPOLOGY_MONIKER_MAX + 1];
  topology__fmt(up, sizeof up, "%s", moniker);
  for (char *dot = strrchr(up, '.'); dot != NULL; dot = strrchr(up, '.')) {
    *dot = '\0';
    if ((c = lease__claim_find(m->leases, up)) != NULL && !c->node_only)
      return lease__get(m, c->lease_id);
  }
  return NULL;
}

mgr_lease_t *lease__covering_node(mgr_t *m, const topology_node_t *n) {
  if (m->leases == NULL || m->leases->claims == NULL)
    return NULL;
  lease_claim_t *c = lease__claim_find(m->leases, n->moniker);
  return c != NULL ? lease__get(m, c->lease_id) : covering_up(m, n, 0);
}

mgr_lease_t *lease__covering_down(mgr_t *m, const topology_node_t *n, mgr_lease_t **through) {
  if (m->leases == NULL || m->leases->claims == NULL) {
    *through = NULL;
    return NULL;
  }
  /* covering_up's first step at n; its walk on up is what n's parent got: *through */
  lease_claim_t *c = lease__claim_find(m->leases, n->moniker);
  mgr_lease_t *sub = c != NULL && !c->node_only ? lease__get(m, c->lease_id) : NULL;
  for (uint8_t i = 1; sub == NULL && n->parent_count > 1 && i < n->parent_count; i++)
    sub = n->parents[i] ? covering_up(m, n->parents[i], 1) : NULL;
  if (sub == NULL)
    sub = *through;
  *through = sub;
  return c != NULL ? lease__get(m, c->lease_id) : sub;
}

static bool is_prefix_node(const char *root, size_t root_len, const char *moniker) {
  return strncmp(moniker, root, root_len) == 0 &&
         (moniker[root_len] == '\0' || moniker[root_len] == '.');
}

/* Does root reach n through a non-primary parent of a composite node on n's way up? */
static bool descends_up(const char *root, size_t root_len, const topology_node_t *n, int depth) {
  for (const topology_node_t *x = n; x != NULL; x = x->parent_count > 0 ? x->parents[0] : NULL) {
    if (x->parent_count < 2 || depth >= LEASE_DAG_DEPTH)
      continue;
    for (uint8_t i = 1; i < x->parent_count; i++) {
      const topology_node_t *p = x->parents[i];
      if (p != NULL &&
          (is_prefix_node(root, root_len, p->moniker) || descends_up(root, root_len, p, depth + 1)))
        return true;
    }
  }
  return false;
}

bool lease__descends(mgr_t *m, const char *root, const char *moniker) {
  size_t root_len = strlen(root);
  if (is_prefix_node(root, root_len, moniker))
    return true;
  const topology_node_t *n = topology__find(&m->topo, moniker);
  return n != NULL && descends_up(root, root_len, n, 0);
}

static bool composite_below(const topology_node_t *n, int depth,
                            bool (*fn)(void *arg, const topology_node_t *composite), void *arg) {
  if (n->composite && fn(arg, n))
    return true;
  for (uint32_t i = 0; depth < LEASE_SUBTREE_DEPTH && i < n->child_count; i++)
    if (composite_below(n->children[i], depth + 1, fn, arg))
      return true;
  return false;
}

bool lease__composite_below(mgr_t *m, const char *root,
                            bool (*fn)(void *arg, const topology_node_t *composite), void *arg) {
  const topology_node_t *n = m->composites != NULL ? topology__find(&m->topo, root) : NULL;
  return n != NULL && composite_below(n, 0, fn, arg);
}

typedef struct shared_ctx {
  mgr_t *m;
  mgr_lease_t *lease;
  const char *node;
} shared_ctx_t;

/* Is composite d covered by a lease (through a parent outside the subtree walked)? */
static bool covered_composite(void *arg, const topology_node_t *d) {
  shared_ctx_t *c = arg;
  c->lease = lease__covering(c->m, d->moniker);
  c->node = d->moniker;
  return c->lease != NULL;
}

/* Is a claim inside the subtree of a root of p, as lease__descends sees it? It is below the
 * root by moniker (*below), or the node it claims is below a node of several parents (a
 * composite node, by moniker: its primary parents are its moniker's prefixes), whose other
 * parents may lead up to the root (*via_composite). The prefix counts answer both without a
 * walk of every claim. */
static void claims_inside(mgr_t *m, const lease_plan_t *p, bool *below, bool *via_composite) {
  *below = *via_composite = false;
  for (size_t i = 0; i < p->root_count && !*below; i++)
    *below = lease__prefix_claims(m->leases, p->nodes[i]) > 0;
  /* a node of several parents is a composite's assembled node (topology__add_composite) */
  for (const mgr_composite_t *c = m->composites; c != NULL && !*via_composite; c = c->next)
    *via_composite = c->node_moniker != NULL ? lease__prefix_claims(m->leases, c->node_moniker) > 0
                                             : c->node_id != 0; /* moniker not kept: maybe */
}

typedef struct below_ctx {
  mgr_leases_t *ls;
  size_t budget;        /* nodes left to visit */
  size_t found;         /* claims met */
  lease_claim_t *first; /* the first of them in the claims' order */
} below_ctx_t;

/* Visit node n and the nodes below it by moniker (down through primary parents), noting the
 * claims on them. False when the budget ran out. */
static bool below_walk(below_ctx_t *c, const topology_node_t *n) {
  if (c->budget == 0)
    return false;
  c->budget--;
  lease_claim_t *cl = lease__claim_find(c->ls, n->moniker);
  if (cl != NULL) {
    c->found++;
    if (c->first == NULL || cl->seq < c->first->seq)
      c->first = cl;
  }
  for (uint32_t i = 0; i < n->child_count; i++) {
    const topology_node_t *k = n->children[i];
    if (k->parent_count > 0 && k->parents[0] == n && !below_walk(c, k))
      return false;
  }
  return true;
}

/* The first claim (in the claims' order) below a root of p by moniker, found through the
 * roots' subtrees in the topology instead of a walk of every claim; NULL when that cannot
 * tell: a claim below a root on a node the topology does not have (its count says so), or
 * subtrees larger than the claims. */
static lease_claim_t *first_below(mgr_t *m, const lease_plan_t *p) {
  mgr_leases_t *ls = m->leases;
  below_ctx_t c = {ls, HASH_COUNT(ls->claims), 0, NULL};
  for (size_t i = 0; i < p->root_count; i++) {
    size_t want = lease__prefix_claims(ls, p->nodes[i]);
    if (want == 0)
      continue;
    const topology_node_t *n = topology__find(&m->topo, p->nodes[i]);
    c.found = 0;
    if (n == NULL || !below_walk(&c, n) || c.found != want)
      return NULL;
  }
  return c.first;
}

mgr_lease_t *lease__conflict(mgr_t *m, const lease_plan_t *p, const char **node) {
  if (m->leases == NULL || m->leases->claims == NULL)
    return NULL;
  for (size_t i = 0; i < p->node_count; i++) {
    mgr_lease_t *l = lease__covering(m, p->nodes[i]);
    if (l != NULL) {
      if (node != NULL)
        *node = p->nodes[i];
      return l;
    }
  }
  /* a claim inside a root's subtree: the first in the claims' order, when there is one */
  bool below, via_composite;
  claims_inside(m, p, &below, &via_composite);
  lease_claim_t *first = below && !via_composite ? first_below(m, p) : NULL;
  if (first != NULL) {
    if (node != NULL)
      *node = first->moniker;
    return lease__get(m, first->lease_id);
  }
  if (below || via_composite) {
    lease_claim_t *c, *tmp;
    HASH_ITER(hh, m->leases->claims, c, tmp) {
      for (size_t i = 0; i < p->root_count; i++) {
        if (lease__descends(m, p->nodes[i], c->moniker)) {
          if (node != NULL)
            *node = c->moniker;
          return lease__get(m, c->lease_id);
        }
      }
    }
  }
  /* a composite below a root that a lease covers through one of its other parents */
  shared_ctx_t sc = {m, NULL, NULL};
  for (size_t i = 0; i < p->root_count; i++) {
    if (lease__composite_below(m, p->nodes[i], covered_composite, &sc)) {
      if (node != NULL)
        *node = sc.node;
      return sc.lease;
    }
  }
  return NULL;
}

bool lease__conflicts(mgr_t *m, const lease_plan_t *p) {
  if (m->leases == NULL || m->leases->claims == NULL)
    return false;
  bool below, via_composite;
  claims_inside(m, p, &below, &via_composite);
  return below || lease__conflict(m, p, NULL) != NULL;
}
