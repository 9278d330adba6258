/* dfnet-manager: Enroll, the one request of a dfnet.enroll.v1 session (issue 23 item 2;
 * docs/architecture.md "Transport and trust"). The peer has no certificate; it checked ours
 * against its CA pin before sending. cert__enroll redeems the token and issues the
 * certificate; the answer carries it, our CA and the token's labels. Then, whatever the
 * answer, the session is closed: an enrollment session serves one request.
 */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "manager/cert.h"

#define SUB "enroll"

/* Close the enrollment session once what is queued (the answer) is written. */
static void done(mgr_t *m, mgr_session_t *s, dfnet_status_t code, const char *why) {
  (void)dfnet_transport_session_close(m->transport, s->id, code, why);
}

/* The answer: the certificate, our CA, the token's labels. OK or the first failure. */
static dfnet_status_t answer(mgr_t *m, mgr_session_t *s, uint64_t id, const cert_enrolled_t *e,
                             char *why, size_t why_size) {
  dfnet_envelope_t *w = mgr__env(m);
  w->pb.id = id;
  w->pb.which_msg = dfnet_v1_Envelope_enroll_result_tag;
  dfnet_v1_EnrollResult *r = &w->pb.msg.enroll_result;
  dfnet_status_t st = dfnet_pki_cert_pem(e->cert, r->certificate_pem, sizeof r->certificate_pem);
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, DFNET_PKI_CA_CERT_FILE);
  if (st == DFNET_STATUS_OK)
    st = dfnet_file_read_into(path, 0, r->ca_pem, sizeof r->ca_pem, NULL, why, why_size);
  if (st != DFNET_STATUS_OK)
    return st;
  size_t n = e->grant.label_count;
  if (n > pb_arraysize(dfnet_v1_EnrollResult, labels))
    n = pb_arraysize(dfnet_v1_EnrollResult, labels);
  for (size_t i = 0; i < n; i++) {
    snprintf(r->labels[i].key, sizeof r->labels[i].key, "%s", e->grant.labels[i].key);
    snprintf(r->labels[i].value, sizeof r->labels[i].value, "%s", e->grant.labels[i].value);
  }
  r->labels_count = (pb_size_t)n;
  snprintf(r->name, sizeof r->name, "%s", e->name);
  r->role = e->grant.role;
  dfnet_pki_cert_info_t info;
  if (dfnet_pki_cert_info(e->cert, &info) == DFNET_STATUS_OK && info.not_after > 0)
    r->not_after_ms = (uint64_t)info.not_after * 1000u;
  return dfnet_transport_send(m->transport, s->id, w, DFNET_SEND_PAST_HWM);
}

void handle__enroll(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  char why[512] = "";
  if (env->pb.which_msg != dfnet_v1_Envelope_enroll_tag || s->welcomed) {
    DFNET_LOGW(SUB, s->address, "refused: %s on an enrollment session",
               dfnet_envelope_msg_name(env->pb.which_msg));
    snprintf(why, sizeof why, "an enrollment session serves one Enroll, not %s",
             s->welcomed ? "a second one" : dfnet_envelope_msg_name(env->pb.which_msg));
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_PERMISSION_DENIED, "%s", why);
    done(m, s, DFNET_STATUS_PERMISSION_DENIED, "one Enroll per session");
    return;
  }
  s->welcomed = true; /* one request: the Hello deadline stops, a second one is refused */
  if (s->hello_timer != 0) {
    (void)dfnet_transport_timer_cancel(m->transport, s->hello_timer);
    s->hello_timer = 0;
  }
  const dfnet_v1_Enroll *q = &env->pb.msg.enroll;
  cert_enrolled_t e;
  dfnet_status_t st = cert__enroll(m, q->token, q->csr_der.bytes, q->csr_der.size, s->address, 0,
                                   &e, why, sizeof why);
  if (st == DFNET_STATUS_OK) {
    st = answer(m, s, env->pb.id, &e, why, sizeof why);
    if (st != DFNET_STATUS_OK)
      DFNET_LOGE(SUB, e.name, "certificate %s issued, the answer not sent: %s %s", e.serial,
                 dfnet_status_str(st), why);
    dfnet_pki_cert_free(e.cert);
  }
  if (st != DFNET_STATUS_OK) /* cert__enroll logged its refusal once */
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", why[0] ? why : dfnet_status_str(st));
  done(m, s, st, st == DFNET_STATUS_OK ? "enrolled" : dfnet_status_str(st));
}
