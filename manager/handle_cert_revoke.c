/* dfnet-manager: CertRevoke from a client, role admin (proto/dfnet/v1/trust.proto; issue 23
 * item 4): cert__revoke does the work (store, audit rows, live sessions closed
 * UNAUTHENTICATED); answered with CertRevokeResult, or a Status with the reason:
 * INVALID_ARGUMENT, NOT_FOUND (with the nearest name), FAILED_PRECONDITION, the store's. */
#include <stdio.h>

#include "lib/log.h"
#include "manager/cert.h"

void handle__cert_revoke(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_CertRevoke *q = &env->pb.msg.cert_revoke;
  cert_revoke_result_t r;
  char why[600];
  if (q->target[0] == '\0') {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INVALID_ARGUMENT,
                           "name the certificate: a name or a serial (dfnet cert list)");
    return;
  }
  dfnet_status_t st = cert__revoke(m, q->target, q->reason, s->name, &r, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGI("cert", s->name, "revoking %s refused: %s: %s", q->target, dfnet_status_str(st),
               why);
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", why);
    return;
  }
  dfnet_envelope_t *w = mgr__env(m);
  w->pb.id = env->pb.id;
  w->pb.which_msg = dfnet_v1_Envelope_cert_revoke_result_tag;
  dfnet_v1_CertRevokeResult *o = &w->pb.msg.cert_revoke_result;
  size_t n = r.revoked < pb_arraysize(dfnet_v1_CertRevokeResult, serials)
                 ? r.revoked
                 : pb_arraysize(dfnet_v1_CertRevokeResult, serials);
  for (size_t i = 0; i < n; i++)
    snprintf(o->serials[i], sizeof o->serials[i], "%s", r.serials[i]);
  o->serials_count = (pb_size_t)n;
  snprintf(o->name, sizeof o->name, "%s", r.name);
  o->sessions_closed = (uint32_t)r.sessions_closed;
  o->already_revoked = (uint32_t)r.already;
  (void)dfnet_transport_send(m->transport, s->id, w, DFNET_SEND_PAST_HWM);
}
