/* dfnet-manager: LeaseHistory from a client, role viewer (proto/dfnet/v1/lease.proto): the
 * audit log, read from the store (store__audit_query), oldest first: one LeaseAuditEntry per
 * row, at most `limit` (0: 1000; at most 10000), closed by Status OK "N entries", or "N
 * entries, more" when the limit cut it (ask again with after_seq = the last seq). `target`:
 * the rows naming it exactly, as a target as asked or a node a lease covered; since_ms:
 * rows from then. Errors: INVALID_ARGUMENT (limit over 10000), RESOURCE_EXHAUSTED (an entry
 * did not fit the session's send queue: "list interrupted"), the store's. */
#include <inttypes.h>

#include "manager/lease.h"

static dfnet_status_t send_row(void *arg, const store_audit_row_t *row) {
  list_stream_t *ls = arg;
  dfnet_envelope_t *w = list_stream__item(ls, dfnet_v1_Envelope_lease_audit_entry_tag);
  dfnet_v1_LeaseAuditEntry *e = &w->pb.msg.lease_audit_entry;
  e->seq = row->seq;
  e->time_ms = row->time_ms;
  topology__fmt(e->actor, sizeof e->actor, "%s", row->actor);
  topology__fmt(e->action, sizeof e->action, "%s", store__audit_action_str(row->action));
  e->lease_id = row->lease_id;
  topology__fmt(e->targets, sizeof e->targets, "%s", row->targets);
  topology__fmt(e->detail, sizeof e->detail, "%s", row->detail);
  return list_stream__send(ls, w) ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

void handle__lease_history(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseHistory *q = &env->pb.msg.lease_history;
  if (q->limit > LEASE_HISTORY_LIMIT_MAX) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INVALID_ARGUMENT,
                           "limit %u is over %u entries", (unsigned)q->limit,
                           LEASE_HISTORY_LIMIT_MAX);
    return;
  }
  store_audit_query_t aq = {.target = q->target,
                            .exact = true,
                            .since_ms = q->since_ms,
                            .after_seq = q->after_seq,
                            .limit = q->limit ? q->limit : LEASE_HISTORY_LIMIT_DEFAULT};
  list_stream_t ls = {m, s->id, env->pb.id, 0, false};
  bool more = false;
  char err[700];
  dfnet_status_t st = store__audit_query(m->store, &aq, send_row, &ls, &more, err, sizeof err);
  if (st != DFNET_STATUS_OK && !ls.failed)
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", err);
  else
    list_stream__end(&ls, "%zu entries%s", ls.sent, more ? ", more" : "");
}
