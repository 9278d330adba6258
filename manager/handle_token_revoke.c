/* dfnet-manager: TokenRevoke from a client, role admin (proto/dfnet/v1/trust.proto; issue 23
 * item 1): token__revoke writes it with its audit row; answered with Status OK, NOT_FOUND,
 * FAILED_PRECONDITION (revoked already) or the store's failure. */
#include "lib/log.h"
#include "manager/cert.h"

void handle__token_revoke(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const char *id = env->pb.msg.token_revoke.id;
  char why[600];
  dfnet_status_t st = token__revoke(cert__tokens(m), id, s->name, mgr__wall_ms(), why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGI("token", s->name, "TokenRevoke %s refused: %s: %s", id, dfnet_status_str(st), why);
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", why);
    return;
  }
  sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_OK, "join token %s revoked", id);
}
