/* dfnet-manager: LeaseRenew from a client, role operator (docs/architecture.md "Leases",
 * "Time"; proto/dfnet/v1/lease.proto): the holder with its token, or role admin with or
 * without it, sets expires_ms = now + ttl_ms (0: the lease's own ttl_ms; a lease without
 * expiry keeps none), within the renewer's role maximum; written through with its audit row,
 * then answered with the LeaseInfo (no token). Errors: NOT_FOUND (no such lease: expired or
 * released), PERMISSION_DENIED (no token, a wrong one, another's lease), INVALID_ARGUMENT
 * (a TTL over role operator's maximum), the store's. */
#include <inttypes.h>
#include <string.h>

#include "manager/lease.h"

void handle__lease_renew(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseRenew *q = &env->pb.msg.lease_renew;
  uint64_t id = env->pb.id;
  mgr_lease_t *l = lease__get(m, q->id);
  if (l == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_NOT_FOUND,
                           "no lease %" PRIu64 " (expired or released)", q->id);
    return;
  }
  bool admin = s->role == dfnet_v1_Role_ADMIN;
  size_t len = strnlen(q->token, sizeof q->token);
  if (len == 0 && !admin) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED,
                           "renewing lease %" PRIu64 " needs its token", l->id);
    return;
  }
  if (len > 0 && (!store__token_matches(l->token_digest, (const uint8_t *)q->token, len) ||
                  (strcmp(l->holder, s->name) != 0 && !admin))) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED,
                           "not the token of lease %" PRIu64 " held by %s", l->id, l->holder);
    return;
  }
  uint64_t ttl = q->ttl_ms ? q->ttl_ms : l->ttl_ms;
  if (!admin && ttl > LEASE_TTL_OPERATOR_MAX_MS) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_INVALID_ARGUMENT,
                           "ttl %" PRIu64 " ms is over role operator's maximum, %u ms (24 h)", ttl,
                           LEASE_TTL_OPERATOR_MAX_MS);
    return;
  }
  char err[700];
  dfnet_status_t st = lease__renew(m, l, ttl, s->name, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, id, st, "%s", err);
    return;
  }
  (void)lease__send_info(m, s->id, id, l, NULL);
}
