/* dfnet-manager: what the files of the held leases share (lease.c, lease_coverage.c,
 * lease_expiry.c, lease_grant.c), not for the rest of the manager: lease.h is the leases'
 * interface. Thread: the manager's service thread only (lease.h).
 */
#ifndef DFNET_MANAGER_LEASE_INTERNAL_H
#define DFNET_MANAGER_LEASE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager/lease.h"

struct lease_claim {
  UT_hash_handle hh;   /* mgr_leases.claims, by moniker */
  const char *moniker; /* the lease's nodes[i] */
  uint64_t lease_id;
  bool node_only; /* a composite root's parent: covers itself only */
  uint64_t seq;   /* its place in the claims' order (the hash's): mgr_leases.claim_seq */
};

/* ---- lease.c: records, claims, holding ------------------------------------------------ */

/* Free record l and its strings (NULL-safe); it must not be held. */
void lease__free(mgr_lease_t *l);

/* A record with copies of rec's strings, not held (lease.c has the details), or NULL
 * without memory. */
mgr_lease_t *lease__new(const store_lease_t *rec, size_t root_count, const char *reason);

/* The claim on `moniker` exactly, or NULL. */
lease_claim_t *lease__claim_find(mgr_leases_t *ls, const char *moniker);

/* How many claims are at or below `root` by moniker (the prefix counts): O(1). */
size_t lease__prefix_claims(mgr_leases_t *ls, const char *root);

/* Hold l: by id, its claims and its expiry. False without memory (nothing held). */
bool lease__hold(mgr_t *m, mgr_lease_t *l);

/* Stop holding l (its claims, its expiry, its place by id); l itself is the caller's. */
void lease__unhold(mgr_t *m, mgr_lease_t *l);

/* qsort's comparison of two mgr_lease_t pointers by id. */
int lease__cmp_lease_id(const void *a, const void *b);

/* ---- lease_expiry.c: the expiry heap -------------------------------------------------- */

/* Room for one more lease in the heap. False without memory. */
bool lease__expiry_reserve(mgr_leases_t *ls);

/* Take l out of the heap (nothing when it is not in it). */
void lease__expiry_remove(mgr_leases_t *ls, mgr_lease_t *l);

/* l's expires_ms was set: its place in the heap follows (in when it expires, out when it
 * does not). Room was reserved (lease__expiry_reserve) when it was not in the heap. */
void lease__expiry_update(mgr_leases_t *ls, mgr_lease_t *l);

/* End every lease whose expiry has passed by `now` (wall ms), in id order (lease__end). */
void lease__expire_due(mgr_t *m, uint64_t now);

#endif
