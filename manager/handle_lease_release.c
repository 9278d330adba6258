/* dfnet-manager: LeaseRelease from a client, role operator (docs/architecture.md "Leases",
 * "The end of a lease"; proto/dfnet/v1/lease.proto): the holder with its token (or role admin
 * with the token), or role admin with force and a reason. The lease leaves the store with
 * its audit row ("release", "force_release"); the calls in flight that carried its token end
 * CANCELLED ("lease 42 released"); LEASE_RELEASED goes to watchers; the request is answered
 * OK; then the queue is tried. Errors: NOT_FOUND (no such lease), PERMISSION_DENIED (no
 * token, a wrong one, another's lease; force without role admin), INVALID_ARGUMENT (force
 * without a reason), the store's (the lease stays). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "manager/lease.h"

/* May s release l with this request? OK, or the answer's code with why set. */
static dfnet_status_t allowed(const mgr_session_t *s, const mgr_lease_t *l,
                              const dfnet_v1_LeaseRelease *q, char *why, size_t why_size) {
  bool admin = s->role == dfnet_v1_Role_ADMIN;
  if (q->force) {
    if (!admin) {
      topology__fmt(why, why_size, "a force release needs role admin");
      return DFNET_STATUS_PERMISSION_DENIED;
    }
    if (q->reason[0] == '\0') {
      topology__fmt(why, why_size, "a force release needs a reason");
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    return DFNET_STATUS_OK;
  }
  size_t len = strnlen(q->token, sizeof q->token);
  if (len == 0) {
    topology__fmt(why, why_size, "releasing lease %" PRIu64 " needs its token%s", l->id,
                  admin ? " (or force and a reason)" : "");
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  if (!store__token_matches(l->token_digest, (const uint8_t *)q->token, len) ||
      (strcmp(l->holder, s->name) != 0 && !admin)) {
    topology__fmt(why, why_size, "not the token of lease %" PRIu64 " held by %s", l->id, l->holder);
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  return DFNET_STATUS_OK;
}

void handle__lease_release(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseRelease *q = &env->pb.msg.lease_release;
  uint64_t id = env->pb.id;
  mgr_lease_t *l = lease__get(m, q->id);
  char why[700];
  if (l == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_NOT_FOUND,
                           "no lease %" PRIu64 " (expired or released)", q->id);
    return;
  }
  dfnet_status_t st = allowed(s, l, q, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, id, st, "%s", why);
    return;
  }
  uint64_t lid = l->id;
  char cancel[400], reason[sizeof q->reason];
  lease__clean_text(reason, sizeof reason, q->reason);
  if (q->force)
    topology__fmt(cancel, sizeof cancel, "lease %" PRIu64 " released by force (%s: %s)", lid,
                  s->name, reason);
  else
    snprintf(cancel, sizeof cancel, "lease %" PRIu64 " released", lid);
  st = lease__end(m, l, q->force ? STORE_AUDIT_FORCE_RELEASE : STORE_AUDIT_RELEASE, s->name,
                  reason[0] ? reason : "released", cancel, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, id, st, "%s", why);
    return;
  }
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "lease %" PRIu64 " released", lid);
  lease_queue__try(m);
}
