/* dfnet-manager: the held leases (docs/architecture.md "Leases"; lease.h): records by id, the
 * claims index (moniker -> the lease that claims it) with its prefix counts, holding a lease
 * (its claims and its expiry), and loading at start-up and freeing at shutdown. Coverage and
 * conflicts are lease_coverage.c's, the expiry heap and the timer lease_expiry.c's, granting,
 * renewing and ending through the store lease_grant.c's.
 *
 * A claim is a lease's node: a root (it covers its subtree) or a composite root's parent
 * (itself only). No two leases conflict, so a moniker has one claim at most; a store edited
 * by hand that breaks this keeps the first.
 *
 * Scale (bench/lease_bench: 10,000 leases). Each claim is counted at every prefix of its
 * moniker: whether a claim is below a root is one lookup (lease_coverage.c). Nothing else
 * walks every lease per change.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/lease_internal.h"

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

void lease__free(mgr_lease_t *l) {
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
mgr_lease_t *lease__new(const store_lease_t *rec, size_t root_count, const char *reason) {
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
    lease__free(l);
    return NULL;
  }
  return l;
}

lease_claim_t *lease__claim_find(mgr_leases_t *ls, const char *moniker) {
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
size_t lease__prefix_claims(mgr_leases_t *ls, const char *root) {
  lease_prefix_t *p = NULL;
  HASH_FIND(hh, ls->prefixes, root, strlen(root), p);
  return p != NULL ? p->count : 0;
}

size_t lease__claims_below(mgr_t *m, const char *moniker) {
  return m->leases != NULL ? lease__prefix_claims(m->leases, moniker) : 0;
}

/* ---- holding ---------------------------------------------------------------------- */

/* Drop the claims made[0, n) (NULL ones skipped): lease__hold's way back. */
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
bool lease__hold(mgr_t *m, mgr_lease_t *l) {
  mgr_leases_t *ls = m->leases;
  lease_claim_t **made = calloc(l->node_count + 1, sizeof *made);
  if (made == NULL || (l->expires_ms != 0 && !lease__expiry_reserve(ls))) {
    free(made);
    return false;
  }
  for (size_t i = 0; i < l->node_count; i++) {
    if (lease__claim_find(ls, l->nodes[i]) != NULL) {
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
  lease__expiry_update(ls, l);
  return true;
}

/* Stop holding l (its claims, its expiry and its place by id); l itself is the caller's. */
void lease__unhold(mgr_t *m, mgr_lease_t *l) {
  mgr_leases_t *ls = m->leases;
  for (size_t i = 0; i < l->node_count; i++) {
    lease_claim_t *c = lease__claim_find(ls, l->nodes[i]);
    if (c != NULL && c->lease_id == l->id) {
      prefixes_step(ls, c->moniker, false, SIZE_MAX);
      HASH_DEL(ls->claims, c);
      free(c);
    }
  }
  lease__expiry_remove(ls, l);
  HASH_DEL(ls->by_id, l);
}

int lease__cmp_lease_id(const void *a, const void *b) {
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
  qsort(*out, n, sizeof **out, lease__cmp_lease_id);
  return n;
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
  mgr_lease_t *l = lease__new(rec, rec->target_count, NULL);
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
    if (!lease__hold(m, c.items[i])) {
      topology__fmt(err, err_size, "out of memory loading the leases");
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      break;
    }
    expired += c.items[i]->expires_ms != 0 && c.items[i]->expires_ms <= now;
  }
  for (; i < c.count; i++)
    lease__free(c.items[i]);
  free(c.items);
  if (st != DFNET_STATUS_OK)
    return st;
  DFNET_LOGI("lease", NULL, "%zu lease(s) loaded, %zu expired meanwhile", c.count, expired);
  lease__expire_due(m, now);
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
    lease__free(l);
  }
  free(ls);
  m->leases = NULL;
}
