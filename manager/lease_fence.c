/* dfnet-manager: fencing a client's Call (docs/architecture.md "Leases", "Fencing"; lease.h
 * lease__fence_call). The lease's token is the capability, and it is the holder's: a call
 * to a covered node passes with the covering lease's token from a session of its holder.
 * A token of a lease that ended names no lease: the call is then judged as one without a
 * token. Checked before routing (handle_call.c), so a refused caller learns nothing of the
 * node's state; the token is never forwarded. A method the serving node's driver declares
 * read-only (its manifest's read_only_methods) passes without a lease. */
#include <string.h>

#include "manager/lease.h"

/* Is token (len bytes) lease l's? The last token that matched l's digest is kept in memory
 * (l->verified), and a call carrying it again is compared with it in constant time: a
 * SHA-256 of the token (most of what fencing costs a call) only for a token not seen yet. */
static bool token_is(mgr_lease_t *l, const char *token, size_t len) {
  if (len == l->verified_len) {
    volatile uint64_t diff = 0; /* every byte looked at, wherever they differ */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
      uint64_t a, b;
      memcpy(&a, token + i, 8);
      memcpy(&b, l->verified + i, 8);
      diff |= a ^ b;
    }
    for (; i < len; i++)
      diff |= (uint8_t)(token[i] ^ l->verified[i]);
    if (diff == 0)
      return true;
  }
  if (len >= sizeof l->verified ||
      !store__token_matches(l->token_digest, (const uint8_t *)token, len))
    return false;
  memcpy(l->verified, token, len);
  l->verified_len = len;
  return true;
}

dfnet_status_t lease__fence_call(mgr_t *m, const mgr_session_t *s, const dfnet_v1_Call *call,
                                 const topology_node_t *named, const topology_node_t *serving,
                                 uint64_t *lease_id, char *why, size_t why_size) {
  *lease_id = 0;
  /* A read-only method (it observes the device, never changes it: a console's Subscribe)
   * needs no lease: anyone who may call may watch while someone else holds the node. */
  const driver_t *d =
      serving->driver_id != 0 ? driver_index__get(&m->index, serving->driver_id) : NULL;
  if (d != NULL && d->m.read_only_method_count > 0 &&
      driver_index__method_read_only(d, call->method))
    return DFNET_STATUS_OK;
  mgr_lease_t *l = lease__covering_node(m, named);
  if (l == NULL) {
    if (!m->cfg.require_lease)
      return DFNET_STATUS_OK;
    topology__fmt(why, why_size, "dfnet-manager requires a lease: dfnet lease acquire %s",
                  call->target);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  size_t len = strnlen(call->lease_token, sizeof call->lease_token);
  if (len > 0 && strcmp(s->name, l->holder) == 0 && token_is(l, call->lease_token, len)) {
    *lease_id = l->id;
    return DFNET_STATUS_OK;
  }
  /* name the node the call goes to when the lease covers it, else the one it named */
  const mgr_lease_t *on_serving = lease__covering_node(m, serving);
  lease__fmt_held(why, why_size, on_serving == l ? serving->moniker : named->moniker, l);
  return DFNET_STATUS_FAILED_PRECONDITION;
}
