/* dfnet-manager: lease expiry (docs/architecture.md "Leases"; lease.h): the leases that
 * expire, a min-heap whose first is the timer's next expiry, and the one timer of the leases
 * (expiries, and the wait queue's deadlines, graces and retries: lease_queue.c), which ends
 * the leases whose expiry has passed. Nothing walks every lease per change.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/log.h"
#include "manager/lease_internal.h"

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
bool lease__expiry_reserve(mgr_leases_t *ls) {
  mgr_lease_t **a =
      dfnet_array_grow(ls->expiries, ls->expiry_count, &ls->expiry_cap, sizeof *a, 64);
  if (a == NULL)
    return false;
  ls->expiries = a;
  return true;
}

void lease__expiry_remove(mgr_leases_t *ls, mgr_lease_t *l) {
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
void lease__expiry_update(mgr_leases_t *ls, mgr_lease_t *l) {
  if (l->expires_ms == 0) {
    lease__expiry_remove(ls, l);
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

/* ---- the timer -------------------------------------------------------------------- */

/* End every lease whose expiry has passed. */
void lease__expire_due(mgr_t *m, uint64_t now) {
  mgr_leases_t *ls = m->leases;
  if (ls->expiry_count == 0 || ls->expiries[0]->expires_ms > now)
    return;
  mgr_lease_t **all = malloc(ls->expiry_count * sizeof *all);
  size_t n = 0;
  if (all != NULL)
    expiry_due(ls, 0, now, all, &n);
  if (n > 1) /* in id order */
    qsort(all, n, sizeof *all, lease__cmp_lease_id);
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
  lease__expire_due(m, now);
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
