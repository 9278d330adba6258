/* dfnet-manager: the held leases (docs/architecture.md "Leases"; lease.h): records by id, the
 * claims index (moniker -> the lease that claims it), coverage and conflicts, granting,
 * renewing and ending a lease through the store, the one timer, and loading at start-up.
 *
 * A claim is a lease's node: a root (it covers its subtree) or a composite root's parent
 * (itself only). A node is covered by the lease that claims it, or by one whose subtree
 * claim is on one of its ancestors: up its primary parents (its moniker's prefixes), and up
 * every other parent of a composite node on the way. No two leases conflict, so a moniker
 * has one claim at most; a store edited by hand that breaks this keeps the first.
 *
 * Scale (bench/lease_bench: 10,000 leases). Each claim is counted at every prefix of its
 * moniker: whether a claim is below a root is one lookup, and which one is found down the
 * root's subtree (every claim is walked only when a composite node has claims below it, or
 * a claimed node below the root is not in the topology). The leases that expire are a
 * min-heap: the timer's next expiry is its first. Nothing else walks every lease per change.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/lease.h"

#define LEASE_DAG_DEPTH 16     /* composite parents followed up from one node */
#define LEASE_SUBTREE_DEPTH 64 /* levels walked down a root's subtree for composites */

struct lease_claim {
  UT_hash_handle hh;   /* mgr_leases.claims, by moniker */
  const char *moniker; /* the lease's nodes[i] */
  uint64_t lease_id;
  bool node_only; /* a composite root's parent: covers itself only */
  uint64_t seq;   /* its place in the claims' order (the hash's): mgr_leases.claim_seq */
};

dfnet_status_t lease__init(mgr_t *m) {
  m->leases = calloc(1, sizeof *m->leases);
  return m->leases != NULL ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

mgr_lease_t *lease__get(mgr_t *m, uint64_t id) {
  mgr_lease_t *l = NULL;
  if (m->leases != NULL)
    HASH_FIND(hh, m->leases->by_id, &id, sizeof id, l);
  return l;
}

/* ---- records ---------------------------------------------------------------------- */

static void lease_free(mgr_lease_t *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->target_count; i++)
    free(l->targets[i]);
  for (size_t i = 0; l->nodes != NULL && i < l->node_count; i++)
    free(l->nodes[i]);
  free(l->nodes);
  explicit_bzero(l->verified, sizeof l->verified);
  free(l);
}

/* A record with copies of rec's strings (rec.id may be 0: set later), or NULL without
 * memory. root_count: how many of rec's nodes are roots. */
static mgr_lease_t *lease_new(const store_lease_t *rec, size_t root_count, const char *reason) {
  mgr_lease_t *l = calloc(1, sizeof *l);
  if (l == NULL ||
      (rec->node_count > 0 && (l->nodes = calloc(rec->node_count, sizeof(char *))) == NULL)) {
    free(l);
    return NULL;
  }
  l->id = rec->id;
  topology__fmt(l->holder, sizeof l->holder, "%s", rec->holder);
  l->role = rec->role;
  l->priority = rec->priority;
  l->ttl_ms = rec->ttl_ms;
  l->acquired_ms = rec->acquired_ms;
  l->expires_ms = rec->expires_ms;
  memcpy(l->token_digest, rec->token_digest, sizeof l->token_digest);
  l->generation = rec->generation;
  topology__fmt(l->reason, sizeof l->reason, "%s", reason ? reason : "");
  l->expiry_slot = SIZE_MAX;
  bool ok = true;
  for (size_t i = 0; i < rec->target_count && i < STORE_TARGETS_MAX; i++) {
    l->kinds[i] = rec->targets[i].kind;
    ok &= (l->targets[i] = strdup(rec->targets[i].text)) != NULL;
    l->target_count++;
  }
  for (size_t i = 0; i < rec->node_count; i++) {
    ok &= (l->nodes[i] = strdup(rec->nodes[i])) != NULL;
    l->node_count++;
  }
  l->root_count = root_count < l->node_count ? root_count : l->node_count;
  if (!ok) {
    lease_free(l);
    return NULL;
  }
  return l;
}

static lease_claim_t *claim_find(mgr_leases_t *ls, const char *moniker) {
  lease_claim_t *c = NULL;
  HASH_FIND(hh, ls->claims, moniker, strlen(moniker), c);
  return c;
}

/* ---- the claims' prefix counts ------------------------------------------------------ */

/* How many claims are at or below a moniker prefix: those whose moniker is the text, or
 * begins with it and a '.' (is_prefix_node). Counted at each of a claim's prefixes, so "is
 * any claim below this root by moniker" is one lookup instead of a walk of every claim. */
struct lease_prefix {
  UT_hash_handle hh; /* mgr_leases.prefixes, by text */
  size_t count;
  char text[];
};

/* Count (up) or uncount the claim on `moniker` at its first `upto` prefixes, in the order of
 * its text before each '.', then itself. A count that reaches 0 goes. Returns how many were
 * counted: fewer than asked only when up and out of memory. */
static size_t prefixes_step(mgr_leases_t *ls, const char *moniker, bool up, size_t upto) {
  size_t done = 0;
  for (size_t len = 0; done < upto; len++) {
    if (moniker[len] != '.' && moniker[len] != '\0')
      continue;
    lease_prefix_t *p = NULL;
    HASH_FIND(hh, ls->prefixes, moniker, len, p);
    if (p == NULL && up) {
      if ((p = calloc(1, sizeof *p + len + 1)) == NULL)
        return done;
      memcpy(p->text, moniker, len);
      HASH_ADD_KEYPTR(hh, ls->prefixes, p->text, len, p);
    }
    if (p != NULL && (up ? ++p->count : --p->count) == 0) {
      HASH_DEL(ls->prefixes, p);
      free(p);
    }
    done++;
    if (moniker[len] == '\0')
      break;
  }
  return done;
}

/* Count the claim on moniker at each of its prefixes. False without memory (none counted). */
static bool prefixes_count(mgr_leases_t *ls, const char *moniker) {
  size_t levels = 1;
  for (const char *c = moniker; *c != '\0'; c++)
    levels += *c == '.';
  size_t done = prefixes_step(ls, moniker, true, levels);
  if (done == levels)
    return true;
  prefixes_step(ls, moniker, false, done);
  return false;
}

/* How many claims are at or below `root` by moniker. */
static size_t prefix_claims(mgr_leases_t *ls, const char *root) {
  lease_prefix_t *p = NULL;
  HASH_FIND(hh, ls->prefixes, root, strlen(root), p);
  return p != NULL ? p->count : 0;
}

size_t lease__claims_below(mgr_t *m, const char *moniker) {
  return m->leases != NULL ? prefix_claims(m->leases, moniker) : 0;
}

/* ---- the expiry heap -------------------------------------------------------------- */

/* The leases that expire, in a binary min-heap by expiry (then id): the next one is first,
 * without a walk of every lease at each change. */

static bool expiry_before(const mgr_lease_t *a, const mgr_lease_t *b) {
  return a->expires_ms != b->expires_ms ? a->expires_ms < b->expires_ms : a->id < b->id;
}

static void expiry_put(mgr_leases_t *ls, size_t i, mgr_lease_t *l) {
  ls->expiries[i] = l;
  l->expiry_slot = i;
}

static void expiry_up(mgr_leases_t *ls, size_t i) {
  mgr_lease_t *l = ls->expiries[i];
  while (i > 0 && expiry_before(l, ls->expiries[(i - 1) / 2])) {
    expiry_put(ls, i, ls->expiries[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  expiry_put(ls, i, l);
}

static void expiry_down(mgr_leases_t *ls, size_t i) {
  mgr_lease_t *l = ls->expiries[i];
  for (size_t c = 2 * i + 1; c < ls->expiry_count; c = 2 * i + 1) {
    if (c + 1 < ls->expiry_count && expiry_before(ls->expiries[c + 1], ls->expiries[c]))
      c++;
    if (!expiry_before(ls->expiries[c], l))
      break;
    expiry_put(ls, i, ls->expiries[c]);
    i = c;
  }
  expiry_put(ls, i, l);
}

/* Room for one more lease in the heap. False without memory. */
static bool expiry_reserve(mgr_leases_t *ls) {
  mgr_lease_t **a =
      dfnet_array_grow(ls->expiries, ls->expiry_count, &ls->expiry_cap, sizeof *a, 64);
  if (a == NULL)
    return false;
  ls->expiries = a;
  return true;
}

static void expiry_remove(mgr_leases_t *ls, mgr_lease_t *l) {
  size_t i = l->expiry_slot;
  if (i == SIZE_MAX)
    return;
  l->expiry_slot = SIZE_MAX;
  mgr_lease_t *last = ls->expiries[--ls->expiry_count];
  if (i == ls->expiry_count)
    return;
  expiry_put(ls, i, last);
  expiry_up(ls, i);
  expiry_down(ls, last->expiry_slot);
}

/* l's expires_ms was set: its place in the heap follows (in when it expires, out when it
 * does not). Room was reserved when it was not in the heap. */
static void expiry_update(mgr_leases_t *ls, mgr_lease_t *l) {
  if (l->expires_ms == 0) {
    expiry_remove(ls, l);
  } else if (l->expiry_slot == SIZE_MAX) {
    expiry_put(ls, ls->expiry_count++, l);
    expiry_up(ls, l->expiry_slot);
  } else {
    expiry_up(ls, l->expiry_slot);
    expiry_down(ls, l->expiry_slot);
  }
}

/* The leases due by `now` at heap slot i and below it, into out[*n]. */
static void expiry_due(const mgr_leases_t *ls, size_t i, uint64_t now, mgr_lease_t **out,
                       size_t *n) {
  if (i >= ls->expiry_count || ls->expiries[i]->expires_ms > now)
    return;
  out[(*n)++] = ls->expiries[i];
  expiry_due(ls, 2 * i + 1, now, out, n);
  expiry_due(ls, 2 * i + 2, now, out, n);
}

/* ---- holding ---------------------------------------------------------------------- */

/* Drop the claims made[0, n) (NULL ones skipped): lease_hold's way back. */
static void claims_drop(mgr_leases_t *ls, lease_claim_t **made, size_t n) {
  for (size_t j = 0; j < n; j++) {
    if (made[j] != NULL) {
      prefixes_step(ls, made[j]->moniker, false, SIZE_MAX);
      HASH_DEL(ls->claims, made[j]);
      free(made[j]);
    }
  }
}

/* Hold l: by id, its claims (counted at their prefixes) and its expiry. Returns false
 * without memory (nothing held). */
static bool lease_hold(mgr_t *m, mgr_lease_t *l) {
  mgr_leases_t *ls = m->leases;
  lease_claim_t **made = calloc(l->node_count + 1, sizeof *made);
  if (made == NULL || (l->expires_ms != 0 && !expiry_reserve(ls))) {
    free(made);
    return false;
  }
  for (size_t i = 0; i < l->node_count; i++) {
    if (claim_find(ls, l->nodes[i]) != NULL) {
      DFNET_LOGW("lease", l->nodes[i], "claimed twice (lease %" PRIu64 " too): the first kept",
                 l->id);
      continue;
    }
    lease_claim_t *c = calloc(1, sizeof *c);
    if (c == NULL || !prefixes_count(ls, l->nodes[i])) {
      free(c);
      claims_drop(ls, made, i);
      free(made);
      return false;
    }
    c->moniker = l->nodes[i];
    c->lease_id = l->id;
    c->node_only = i >= l->root_count;
    c->seq = ++ls->claim_seq;
    HASH_ADD_KEYPTR(hh, ls->claims, c->moniker, strlen(c->moniker), c);
    made[i] = c;
  }
  free(made);
  HASH_ADD(hh, ls->by_id, id, sizeof l->id, l);
  expiry_update(ls, l);
  return true;
}

/* Stop holding l (its claims, its expiry and its place by id); l itself is the caller's. */
static void lease_unhold(mgr_t *m, mgr_lease_t *l) {
  mgr_leases_t *ls = m->leases;
  for (size_t i = 0; i < l->node_count; i++) {
    lease_claim_t *c = claim_find(ls, l->nodes[i]);
    if (c != NULL && c->lease_id == l->id) {
      prefixes_step(ls, c->moniker, false, SIZE_MAX);
      HASH_DEL(ls->claims, c);
      free(c);
    }
  }
  expiry_remove(ls, l);
  HASH_DEL(ls->by_id, l);
}

static int cmp_lease_id(const void *a, const void *b) {
  uint64_t x = (*(mgr_lease_t *const *)a)->id, y = (*(mgr_lease_t *const *)b)->id;
  return x < y ? -1 : x > y;
}

size_t lease__sorted(mgr_t *m, mgr_lease_t ***out) {
  *out = NULL;
  size_t n = m->leases != NULL ? HASH_COUNT(m->leases->by_id) : 0;
  if (n == 0 || (*out = malloc(n * sizeof **out)) == NULL)
    return 0;
  size_t i = 0;
  mgr_lease_t *l, *tmp;
  HASH_ITER(hh, m->leases->by_id, l, tmp)
    (*out)[i++] = l;
  qsort(*out, n, sizeof **out, cmp_lease_id);
  return n;
}

/* ---- coverage --------------------------------------------------------------------- */

/* The lease with a subtree claim on n or above it (primary parents, and every parent of a
 * composite node on the way up), or NULL. */
static mgr_lease_t *covering_up(mgr_t *m, const topology_node_t *n, int depth) {
  for (const topology_node_t *x = n; x != NULL; x = x->parent_count > 0 ? x->parents[0] : NULL) {
    lease_claim_t *c = claim_find(m->leases, x->moniker);
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
  lease_claim_t *c = claim_find(m->leases, moniker);
  if (c != NULL)
    return lease__get(m, c->lease_id);
  const topology_node_t *n = topology__find(&m->topo, moniker);
  if (n != NULL)
    return covering_up(m, n, 0);
  char up[TOPOLOGY_MONIKER_MAX + 1];
  topology__fmt(up, sizeof up, "%s", moniker);
  for (char *dot = strrchr(up, '.'); dot != NULL; dot = strrchr(up, '.')) {
    *dot = '\0';
    if ((c = claim_find(m->leases, up)) != NULL && !c->node_only)
      return lease__get(m, c->lease_id);
  }
  return NULL;
}

mgr_lease_t *lease__covering_node(mgr_t *m, const topology_node_t *n) {
  if (m->leases == NULL || m->leases->claims == NULL)
    return NULL;
  lease_claim_t *c = claim_find(m->leases, n->moniker);
  return c != NULL ? lease__get(m, c->lease_id) : covering_up(m, n, 0);
}

mgr_lease_t *lease__covering_down(mgr_t *m, const topology_node_t *n, mgr_lease_t **through) {
  if (m->leases == NULL || m->leases->claims == NULL) {
    *through = NULL;
    return NULL;
  }
  /* covering_up's first step at n; its walk on up is what n's parent got: *through */
  lease_claim_t *c = claim_find(m->leases, n->moniker);
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
    *below = prefix_claims(m->leases, p->nodes[i]) > 0;
  /* a node of several parents is a composite's assembled node (topology__add_composite) */
  for (const mgr_composite_t *c = m->composites; c != NULL && !*via_composite; c = c->next)
    *via_composite = c->node_moniker != NULL ? prefix_claims(m->leases, c->node_moniker) > 0
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
  lease_claim_t *cl = claim_find(c->ls, n->moniker);
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
    size_t want = prefix_claims(ls, p->nodes[i]);
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

/* ---- the store -------------------------------------------------------------------- */

dfnet_status_t lease__audit(mgr_t *m, store_audit_action_t action, const char *actor,
                            uint64_t lease_id, const store_target_t *targets, size_t target_count,
                            const char *const *nodes, size_t node_count, const char *detail,
                            char *err, size_t err_size) {
  char cut[STORE_DETAIL_MAX + 1];
  topology__fmt(cut, sizeof cut, "%s", detail ? detail : "");
  store_audit_t row = {.time_ms = mgr__wall_ms(),
                       .actor = actor,
                       .action = action,
                       .lease_id = lease_id,
                       .targets = targets,
                       .target_count = target_count,
                       .nodes = nodes,
                       .node_count = node_count,
                       .detail = cut};
  return store__audit_append(m->store, &row, NULL, err, err_size);
}

/* The targets and nodes of l in the store's shapes, into the caller's arrays. */
static void lease_shapes(const mgr_lease_t *l, store_target_t *targets) {
  for (size_t i = 0; i < l->target_count; i++)
    targets[i] = (store_target_t){l->kinds[i], l->targets[i]};
}

/* The targets' texts, space separated, for events and logs. */
static void targets_text(char *buf, size_t size, const store_target_t *t, size_t count) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < count && len + 1 < size; i++) {
    int n = snprintf(buf + len, size - len, "%s%s", i ? " " : "", t[i].text);
    if (n < 0)
      break;
    len += (size_t)n < size - len ? (size_t)n : size - len - 1;
  }
}

/* Ask `id` and `generation` of the store, and a token naming the lease. */
static dfnet_status_t take_ids(mgr_t *m, uint64_t *id, uint64_t *generation, char *token, char *err,
                               size_t err_size) {
  dfnet_status_t st = store__next(m->store, STORE_ID_LEASE, id, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__next(m->store, STORE_ID_FENCE, generation, err, err_size);
  if (st == DFNET_STATUS_OK && (st = lease__token_new(*id, token)) != DFNET_STATUS_OK)
    topology__fmt(err, err_size, "no random bytes for a lease token");
  return st;
}

/* The transaction of a grant: the lease, its audit row, the queue entry's removal. */
static dfnet_status_t grant_write(mgr_t *m, const lease_ask_t *a, const store_lease_t *rec,
                                  uint64_t queue_id, char *err, size_t err_size) {
  char detail[STORE_DETAIL_MAX + 1];
  if (queue_id != 0)
    topology__fmt(detail, sizeof detail, "granted after waiting (request %" PRIu64 ")%s%s",
                  queue_id, a->reason && a->reason[0] ? ": " : "", a->reason ? a->reason : "");
  else
    topology__fmt(detail, sizeof detail, "%s", a->reason ? a->reason : "");
  dfnet_status_t st = store__lease_put(m->store, rec, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = lease__audit(m, STORE_AUDIT_ACQUIRE, a->principal, rec->id, rec->targets,
                      rec->target_count, rec->nodes, rec->node_count, detail, err, err_size);
  if (st == DFNET_STATUS_OK && queue_id != 0)
    st = store__queue_delete(m->store, queue_id, err, err_size);
  if (st == DFNET_STATUS_OK && queue_id != 0) {
    topology__fmt(detail, sizeof detail, "request %" PRIu64 " granted as lease %" PRIu64, queue_id,
                  rec->id);
    st = lease__audit(m, STORE_AUDIT_DEQUEUE, a->principal, rec->id, a->targets, a->target_count,
                      NULL, 0, detail, err, err_size);
  }
  return st;
}

dfnet_status_t lease__grant(mgr_t *m, const lease_ask_t *a, const lease_plan_t *p,
                            uint64_t queue_id, mgr_lease_t **out, char *token, char *err,
                            size_t err_size) {
  uint64_t now = mgr__wall_ms();
  store_lease_t rec = {.holder = a->principal,
                       .role = a->role,
                       .priority = a->priority,
                       .targets = p->targets,
                       .target_count = p->target_count,
                       .nodes = p->nodes,
                       .node_count = p->node_count,
                       .ttl_ms = a->ttl_ms,
                       .acquired_ms = now,
                       .expires_ms = a->ttl_ms ? now + a->ttl_ms : 0};
  mgr_lease_t *l = lease_new(&rec, p->root_count, a->reason);
  if (l == NULL) {
    topology__fmt(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  dfnet_status_t st = store__begin(m->store, err, err_size);
  if (st == DFNET_STATUS_OK &&
      (st = take_ids(m, &rec.id, &rec.generation, token, err, err_size)) == DFNET_STATUS_OK) {
    store__token_digest((const uint8_t *)token, strlen(token), rec.token_digest);
    st = grant_write(m, a, &rec, queue_id, err, err_size);
  }
  if (st == DFNET_STATUS_OK)
    st = store__commit(m->store, err, err_size);
  else
    store__rollback(m->store);
  if (st == DFNET_STATUS_OK) {
    l->id = rec.id;
    l->generation = rec.generation;
    memcpy(l->token_digest, rec.token_digest, sizeof l->token_digest);
    if (!lease_hold(m, l)) { /* the store has it: the next start-up holds it */
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      topology__fmt(err, err_size, "out of memory holding lease %" PRIu64, rec.id);
    }
  }
  if (st != DFNET_STATUS_OK) {
    memset(token, 0, LEASE_TOKEN_SIZE);
    lease_free(l);
    return st;
  }
  char subject[24], detail[600], what[500];
  targets_text(what, sizeof what, p->targets, p->target_count);
  snprintf(subject, sizeof subject, "%" PRIu64, l->id);
  topology__fmt(detail, sizeof detail, "%s: %s", l->holder, what);
  DFNET_LOGI("lease", subject, "acquired by %s: %s (ttl %" PRIu64 " ms)", l->holder, what,
             l->ttl_ms);
  streams__event(m, dfnet_v1_WatchEvent_Kind_LEASE_ACQUIRED, subject, detail, DFNET_STATUS_OK);
  lease__arm_timer(m);
  *out = l;
  return DFNET_STATUS_OK;
}

/* The transaction of an end: the lease's deletion and its audit row. */
static dfnet_status_t end_write(mgr_t *m, const mgr_lease_t *l, store_audit_action_t how,
                                const char *actor, const char *detail, char *err, size_t err_size) {
  store_target_t targets[STORE_TARGETS_MAX];
  lease_shapes(l, targets);
  dfnet_status_t st = store__begin(m->store, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__lease_delete(m->store, l->id, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = lease__audit(m, how, actor, l->id, targets, l->target_count, (const char *const *)l->nodes,
                      l->node_count, detail, err, err_size);
  if (st == DFNET_STATUS_OK)
    return store__commit(m->store, err, err_size);
  store__rollback(m->store);
  return st;
}

dfnet_status_t lease__end(mgr_t *m, mgr_lease_t *l, store_audit_action_t how, const char *actor,
                          const char *detail, const char *why, char *err, size_t err_size) {
  dfnet_status_t st = end_write(m, l, how, actor, detail, err, err_size);
  char subject[24];
  snprintf(subject, sizeof subject, "%" PRIu64, l->id);
  if (st != DFNET_STATUS_OK && how != STORE_AUDIT_EXPIRE)
    return st;
  if (st != DFNET_STATUS_OK) /* expired all the same: the next start-up ends it again */
    DFNET_LOGE("lease", subject, "expiry not recorded: %s", err);
  lease_unhold(m, l);
  calls__lease_ended(m, l->id, why);
  char text[700];
  if (how == STORE_AUDIT_EXPIRE)
    topology__fmt(text, sizeof text, "%s's lease expired", l->holder);
  else
    topology__fmt(text, sizeof text, "%sby %s%s%s",
                  how == STORE_AUDIT_FORCE_RELEASE ? "force " : "", actor,
                  detail && detail[0] ? ": " : "", detail ? detail : "");
  DFNET_LOGI("lease", subject, "%s: %s", store__audit_action_str(how), text);
  streams__event(m,
                 how == STORE_AUDIT_EXPIRE ? dfnet_v1_WatchEvent_Kind_LEASE_EXPIRED
                                           : dfnet_v1_WatchEvent_Kind_LEASE_RELEASED,
                 subject, text, DFNET_STATUS_OK);
  lease_free(l);
  lease__arm_timer(m);
  return DFNET_STATUS_OK;
}

dfnet_status_t lease__renew(mgr_t *m, mgr_lease_t *l, uint64_t ttl_ms, const char *actor, char *err,
                            size_t err_size) {
  uint64_t expires = ttl_ms ? mgr__wall_ms() + ttl_ms : 0;
  char detail[80] = "no expiry";
  if (expires != 0) {
    char when[32];
    lease__fmt_time(when, sizeof when, expires);
    topology__fmt(detail, sizeof detail, "until %s", when);
  }
  if (expires != 0 && l->expiry_slot == SIZE_MAX && !expiry_reserve(m->leases)) {
    topology__fmt(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  store_target_t targets[STORE_TARGETS_MAX];
  lease_shapes(l, targets);
  dfnet_status_t st = store__begin(m->store, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__lease_renew(m->store, l->id, ttl_ms, expires, l->generation, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = lease__audit(m, STORE_AUDIT_RENEW, actor, l->id, targets, l->target_count,
                      (const char *const *)l->nodes, l->node_count, detail, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__commit(m->store, err, err_size);
  else
    store__rollback(m->store);
  if (st != DFNET_STATUS_OK)
    return st;
  l->ttl_ms = ttl_ms;
  l->expires_ms = expires;
  expiry_update(m->leases, l);
  lease__arm_timer(m);
  return DFNET_STATUS_OK;
}

/* ---- the timer -------------------------------------------------------------------- */

/* End every lease whose expiry has passed. */
static void expire_due(mgr_t *m, uint64_t now) {
  mgr_leases_t *ls = m->leases;
  if (ls->expiry_count == 0 || ls->expiries[0]->expires_ms > now)
    return;
  mgr_lease_t **all = malloc(ls->expiry_count * sizeof *all);
  size_t n = 0;
  if (all != NULL)
    expiry_due(ls, 0, now, all, &n);
  if (n > 1) /* in id order */
    qsort(all, n, sizeof *all, cmp_lease_id);
  for (size_t i = 0; i < n; i++) {
    mgr_lease_t *l = all[i];
    char when[32], detail[64], why[64], err[600];
    lease__fmt_time(when, sizeof when, l->expires_ms);
    snprintf(detail, sizeof detail, "expired at %s", when);
    snprintf(why, sizeof why, "lease %" PRIu64 " expired", l->id);
    if (lease__end(m, l, STORE_AUDIT_EXPIRE, LEASE_ACTOR_MANAGER, detail, why, err, sizeof err) !=
        DFNET_STATUS_OK) /* an expiry always ends; lease__end logged the store's failure */
      DFNET_LOGD("lease", NULL, "expiry: %s", err);
  }
  free(all);
}

static void lease_timer(void *user) {
  mgr_t *m = user;
  if (m->leases == NULL)
    return;
  m->leases->timer = 0;
  if (m->stopping)
    return;
  uint64_t now = mgr__wall_ms();
  expire_due(m, now);
  lease_queue__expire(m, now);
  lease_queue__try(m);
  lease__arm_timer(m);
}

void lease__arm_timer(mgr_t *m) {
  mgr_leases_t *ls = m->leases;
  if (ls == NULL || m->transport == NULL || m->stopping)
    return;
  uint64_t now = mgr__wall_ms(), due = lease_queue__next_due(m, now);
  if (ls->expiry_count > 0 && ls->expiries[0]->expires_ms < due) /* the heap's first */
    due = ls->expiries[0]->expires_ms;
  if (ls->timer != 0)
    (void)dfnet_transport_timer_cancel(m->transport, ls->timer);
  ls->timer = 0;
  if (due == UINT64_MAX)
    return;
  uint64_t delay = due > now ? due - now : 0;
  if (delay > LEASE_TIMER_MAX_MS)
    delay = LEASE_TIMER_MAX_MS;
  if (dfnet_transport_timer_start(m->transport, (uint32_t)delay, lease_timer, m, &ls->timer) !=
      DFNET_STATUS_OK)
    DFNET_LOGE("lease", NULL, "no timer: leases expire at the next change");
}

/* ---- loading and shutdown ------------------------------------------------------------ */

typedef struct load_ctx {
  mgr_lease_t **items;
  size_t count, cap;
} load_ctx_t;

static dfnet_status_t load_one(void *arg, const store_lease_t *rec) {
  load_ctx_t *c = arg;
  mgr_lease_t **items = dfnet_array_grow(c->items, c->count, &c->cap, sizeof *items, 64);
  if (items == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  c->items = items;
  /* lease.h "Coverage": one root per target, in order, then composite parents */
  mgr_lease_t *l = lease_new(rec, rec->target_count, NULL);
  if (l == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  c->items[c->count++] = l;
  return DFNET_STATUS_OK;
}

dfnet_status_t lease__load(mgr_t *m, char *err, size_t err_size) {
  load_ctx_t c = {0};
  dfnet_status_t st = store__lease_load(m->store, load_one, &c, err, err_size);
  if (st == DFNET_STATUS_RESOURCE_EXHAUSTED && err != NULL && err[0] == '\0')
    topology__fmt(err, err_size, "out of memory loading the leases");
  size_t i = 0, expired = 0;
  uint64_t now = mgr__wall_ms();
  for (; st == DFNET_STATUS_OK && i < c.count; i++) {
    if (!lease_hold(m, c.items[i])) {
      topology__fmt(err, err_size, "out of memory loading the leases");
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      break;
    }
    expired += c.items[i]->expires_ms != 0 && c.items[i]->expires_ms <= now;
  }
  for (; i < c.count; i++)
    lease_free(c.items[i]);
  free(c.items);
  if (st != DFNET_STATUS_OK)
    return st;
  DFNET_LOGI("lease", NULL, "%zu lease(s) loaded, %zu expired meanwhile", c.count, expired);
  expire_due(m, now);
  st = lease_queue__load(m, err, err_size);
  lease__arm_timer(m);
  return st;
}

void lease__destroy(mgr_t *m) {
  mgr_leases_t *ls = m->leases;
  if (ls == NULL)
    return;
  if (ls->timer != 0 && m->transport != NULL)
    (void)dfnet_transport_timer_cancel(m->transport, ls->timer);
  lease_queue__destroy(m);
  lease_claim_t *c, *ctmp;
  HASH_ITER(hh, ls->claims, c, ctmp) {
    HASH_DEL(ls->claims, c);
    free(c);
  }
  lease_prefix_t *x, *xtmp;
  HASH_ITER(hh, ls->prefixes, x, xtmp) {
    HASH_DEL(ls->prefixes, x);
    free(x);
  }
  free(ls->expiries);
  mgr_lease_t *l, *tmp;
  HASH_ITER(hh, ls->by_id, l, tmp) {
    HASH_DEL(ls->by_id, l);
    lease_free(l);
  }
  free(ls);
  m->leases = NULL;
}
