/* dfnet-manager: LeaseAcquire from a client, role operator (docs/architecture.md "Leases";
 * proto/dfnet/v1/lease.proto). The targets (monikers, class paths) and the selectors (`match`)
 * are resolved (lease_target.c) and taken all or nothing: granted at once and answered with a
 * LeaseInfo carrying the token, when no lease covers any of their nodes and no request that
 * waits before this one wants them; else, with `wait`, queued (lease_queue.c), told its place
 * (interim LeaseInfo with queue_position, whenever it changes) and answered once granted;
 * else refused FAILED_PRECONDITION naming the holder. TTL: ttl_ms, 0 the
 * default (30 min); at most 24 h for role operator; role admin any, or none (no_expiry).
 * resume_id takes a waiting request's place again (its session dropped, or the manager
 * restarted). Errors: INVALID_ARGUMENT (no target, more than 16 targets and selectors, an
 * empty target, a selector not KEY=VALUE, overlapping targets, a TTL over the role's
 * maximum), PERMISSION_DENIED (priority high or no_expiry without role admin; another's
 * waiting request), NOT_FOUND (a target; no node for the selectors; no such waiting
 * request), FAILED_PRECONDITION (taken, without wait), RESOURCE_EXHAUSTED, the store's. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/lease.h"

/* The request as the resolver sees it, with the role rules applied. OK, or an error with
 * err set. Strings borrowed from q, and `reason` (q's, cleaned). */
static dfnet_status_t ask_from(const mgr_session_t *s, const dfnet_v1_LeaseAcquire *q,
                               const char *reason, lease_ask_t *a, char *err, size_t err_size) {
  bool admin = s->role == dfnet_v1_Role_ADMIN;
  size_t total = (size_t)q->targets_count + q->match_count;
  if (total == 0 || total > STORE_TARGETS_MAX) {
    topology__fmt(err, err_size,
                  total == 0 ? "nothing to lease: give a target or a selector"
                             : "at most %u targets and selectors together",
                  STORE_TARGETS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *a = (lease_ask_t){.principal = s->name, .role = s->role, .reason = reason};
  for (pb_size_t i = 0; i < q->targets_count; i++) {
    if (q->targets[i][0] == '\0') {
      topology__fmt(err, err_size, "target %u is empty", (unsigned)i + 1);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    bool class_path = strncmp(q->targets[i], "class/", 6) == 0;
    a->targets[a->target_count++] = (store_target_t){
        class_path ? STORE_TARGET_CLASS_PATH : STORE_TARGET_MONIKER, q->targets[i]};
  }
  for (pb_size_t i = 0; i < q->match_count; i++) {
    if (!lease__selector_valid(q->match[i])) {
      topology__fmt(err, err_size, "selector '%s' is not KEY=VALUE", q->match[i]);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    a->targets[a->target_count++] = (store_target_t){STORE_TARGET_SELECTOR, q->match[i]};
  }
  if ((q->priority == dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH || q->no_expiry) && !admin) {
    topology__fmt(err, err_size, "%s needs role admin",
                  q->no_expiry ? "a lease without expiry" : "priority high");
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  a->priority = q->priority == dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH  ? STORE_PRIORITY_HIGH
                : q->priority == dfnet_v1_LeasePriority_LEASE_PRIORITY_LOW ? STORE_PRIORITY_LOW
                                                                           : STORE_PRIORITY_NORMAL;
  a->ttl_ms = q->no_expiry ? 0 : q->ttl_ms ? q->ttl_ms : LEASE_TTL_DEFAULT_MS;
  if (!admin && a->ttl_ms > LEASE_TTL_OPERATOR_MAX_MS) {
    topology__fmt(err, err_size, "ttl %" PRIu64 " ms is over role operator's maximum, %u ms (24 h)",
                  a->ttl_ms, LEASE_TTL_OPERATOR_MAX_MS);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  return DFNET_STATUS_OK;
}

/* Taken: queue it (wait), or say by whom. Answers unless queued. */
static void taken(mgr_t *m, mgr_session_t *s, uint64_t id, const dfnet_v1_LeaseAcquire *q,
                  const lease_ask_t *a, const char *why) {
  char err[900];
  if (!q->wait) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION, "%s", why);
    return;
  }
  dfnet_status_t st = lease_queue__enqueue(m, s, id, a, q->wait_ms, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    sessions__reply_status(m, s->id, id, st, "%s", err);
}

void handle__lease_acquire(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseAcquire *q = &env->pb.msg.lease_acquire;
  uint64_t id = env->pb.id;
  char err[900];
  dfnet_status_t st;
  if (q->resume_id != 0) {
    if ((st = lease_queue__resume(m, s, id, q->resume_id, err, sizeof err)) != DFNET_STATUS_OK)
      sessions__reply_status(m, s->id, id, st, "%s", err);
    return;
  }
  lease_ask_t a;
  char reason[sizeof q->reason];
  lease__clean_text(reason, sizeof reason, q->reason);
  lease_plan_t *p = malloc(sizeof *p);
  if (p == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if ((st = ask_from(s, q, reason, &a, err, sizeof err)) != DFNET_STATUS_OK ||
      (st = lease__resolve(m, &a, false, p, err, sizeof err)) != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, id, st, "%s", err);
    free(p);
    return;
  }
  const char *node = NULL, *who = NULL;
  uint64_t waiter = 0;
  const mgr_lease_t *held = lease__conflict(m, p, &node);
  if (held != NULL) {
    lease__fmt_held(err, sizeof err, node, held);
    taken(m, s, id, q, &a, err);
  } else if (lease_queue__blocker(m, a.priority, p, &waiter, &who, &node)) {
    topology__fmt(err, sizeof err,
                  "%s is wanted by a request of %s that waits before this one "
                  "(request %" PRIu64 ")",
                  node, who, waiter);
    taken(m, s, id, q, &a, err);
  } else {
    char token[LEASE_TOKEN_SIZE];
    mgr_lease_t *l = NULL;
    if ((st = lease__grant(m, &a, p, 0, &l, token, err, sizeof err)) != DFNET_STATUS_OK) {
      DFNET_LOGW("lease", s->name, "acquire failed: %s", err);
      sessions__reply_status(m, s->id, id, st, "%s", err);
    } else {
      (void)lease__send_info(m, s->id, id, l, token);
      memset(token, 0, sizeof token);
    }
  }
  free(p);
}
