/* dfnet-manager: CertRenew (manager/cert.h cert__renew; issue 23 item 3), on a host or client
 * session: answered with CertRenewResult (the new certificate, its not-after and serial) or
 * the refusal's Status. The session carries on either way. */
#include <stdio.h>

#include "lib/pki.h"
#include "manager/cert.h"

void handle__cert_renew(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_CertRenew *q = &env->pb.msg.cert_renew;
  char why[512] = "", serial[STORE_SERIAL_MAX + 1];
  dfnet_pki_cert_t *cert = NULL;
  dfnet_status_t st =
      cert__renew(m, s, q->csr_der.bytes, q->csr_der.size, &cert, serial, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", why[0] ? why : dfnet_status_str(st));
    return;
  }
  dfnet_envelope_t *w = mgr__env(m);
  w->pb.id = env->pb.id;
  w->pb.which_msg = dfnet_v1_Envelope_cert_renew_result_tag;
  dfnet_v1_CertRenewResult *r = &w->pb.msg.cert_renew_result;
  st = dfnet_pki_cert_pem(cert, r->certificate_pem, sizeof r->certificate_pem);
  dfnet_pki_cert_info_t info;
  if (st == DFNET_STATUS_OK && dfnet_pki_cert_info(cert, &info) == DFNET_STATUS_OK)
    r->not_after_ms = info.not_after > 0 ? (uint64_t)info.not_after * 1000u : 0;
  snprintf(r->serial, sizeof r->serial, "%s", serial);
  dfnet_pki_cert_free(cert);
  if (st == DFNET_STATUS_OK)
    st = dfnet_transport_send(m->transport, s->id, w, DFNET_SEND_PAST_HWM);
  if (st != DFNET_STATUS_OK)
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INTERNAL,
                           "certificate %s issued, not sent: %s", serial, dfnet_status_str(st));
}
