/* dfnet-manager: fencing a client's Call (docs/architecture.md "Leases", "Fencing"; lease.h
 * lease__fence_call). The lease's token is the capability, and it is the holder's: a call
 * to a covered node passes with the covering lease's token from a session of its holder.
 * A token of a lease that ended names no lease: the call is then judged as one without a
 * token. Checked before routing (handle_call.c), so a refused caller learns nothing of the
 * node's state; the token is never forwarded. */
#include <string.h>

#include "manager/lease.h"

dfnet_status_t lease__fence_call(mgr_t *m, const mgr_session_t *s, const dfnet_v1_Call *call,
                                 const topology_node_t *named, const topology_node_t *serving,
                                 uint64_t *lease_id, char *why, size_t why_size) {
  *lease_id = 0;
  const mgr_lease_t *l = lease__covering(m, named->moniker);
  if (l == NULL) {
    if (!m->cfg.require_lease)
      return DFNET_STATUS_OK;
    topology__fmt(why, why_size, "dfnet-manager requires a lease: dfnet lease acquire %s",
                  call->target);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  size_t len = strnlen(call->lease_token, sizeof call->lease_token);
  if (len > 0 && strcmp(s->name, l->holder) == 0 &&
      store__token_matches(l->token_digest, (const uint8_t *)call->lease_token, len)) {
    *lease_id = l->id;
    return DFNET_STATUS_OK;
  }
  /* name the node the call goes to when the lease covers it, else the one it named */
  const mgr_lease_t *on_serving = lease__covering(m, serving->moniker);
  lease__fmt_held(why, why_size, on_serving == l ? serving->moniker : named->moniker, l);
  return DFNET_STATUS_FAILED_PRECONDITION;
}
