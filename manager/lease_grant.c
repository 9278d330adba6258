/* dfnet-manager: granting, renewing and ending a lease through the store (docs/architecture.md
 * "Leases"; lease.h): each one store transaction with its audit rows, then applied in memory
 * (lease.c holds the lease), logged and sent to watchers, the timer re-armed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "manager/lease_internal.h"

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
  mgr_lease_t *l = lease__new(&rec, p->root_count, a->reason);
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
    if (!lease__hold(m, l)) { /* the store has it: the next start-up holds it */
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      topology__fmt(err, err_size, "out of memory holding lease %" PRIu64, rec.id);
    }
  }
  if (st != DFNET_STATUS_OK) {
    memset(token, 0, LEASE_TOKEN_SIZE);
    lease__free(l);
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
  lease__unhold(m, l);
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
  lease__free(l);
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
  if (expires != 0 && l->expiry_slot == SIZE_MAX && !lease__expiry_reserve(m->leases)) {
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
  lease__expiry_update(m->leases, l);
  lease__arm_timer(m);
  return DFNET_STATUS_OK;
}
