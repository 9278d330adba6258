/* Enrolling with a join token, the requester's side (lib/enroll.h): a key and a CSR made
 * here, one Enroll over dfnet.enroll.v1 after the manager's certificate passed the CA pin,
 * and the files written atomically; renewal's key, CSR and timing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/enroll.h"
#include "lib/fileio.h"
#include "lib/transport.h"

#define ENROLL_TIMEOUT_DEFAULT_MS 15000u

/* What the connection attempts said (on_connect_error, service thread; read by the caller). */
typedef struct enroll_wait {
  pthread_mutex_t mu;
  dfnet_status_t code; /* OK: nothing said yet */
  bool final;          /* retrying cannot help: stop */
  char message[512];
} enroll_wait_t;

static void on_connect_error(void *user, dfnet_status_t code, const char *message,
                             bool retry_helps) {
  enroll_wait_t *w = user;
  pthread_mutex_lock(&w->mu);
  w->code = code;
  w->final = !retry_helps;
  snprintf(w->message, sizeof w->message, "%s", message ? message : "");
  pthread_mutex_unlock(&w->mu);
}

/* Wait for the enrollment session; the last connection error when there is none. */
static dfnet_status_t wait_session(dfnet_transport_t *t, dfnet_endpoint_id_t ep, enroll_wait_t *w,
                                   uint32_t timeout_ms, dfnet_session_id_t *sid, char *why,
                                   size_t why_size) {
  uint64_t end = dfnet_transport_now_ms() + timeout_ms;
  for (;;) {
    if (dfnet_transport_wait_session(t, ep, 100, sid) == DFNET_STATUS_OK)
      return DFNET_STATUS_OK;
    pthread_mutex_lock(&w->mu);
    dfnet_status_t code = w->code;
    bool final = w->final;
    if (code != DFNET_STATUS_OK)
      snprintf(why, why_size, "%s", w->message);
    pthread_mutex_unlock(&w->mu);
    if (code != DFNET_STATUS_OK && final)
      return code;
    if (dfnet_transport_now_ms() >= end) {
      if (code == DFNET_STATUS_OK)
        snprintf(why, why_size, "no session with the manager within %u ms", timeout_ms);
      return code != DFNET_STATUS_OK ? code : DFNET_STATUS_DEADLINE_EXCEEDED;
    }
  }
}

/* Send Enroll on the session and take the answer into out->answer. */
static dfnet_status_t exchange(dfnet_transport_t *t, dfnet_session_id_t sid,
                               const dfnet_enroll_request_t *rq, const uint8_t *csr, size_t csr_len,
                               uint32_t timeout_ms, dfnet_enroll_result_t *out, char *why,
                               size_t why_size) {
  dfnet_envelope_t req, reply;
  void *bulk = NULL;
  dfnet_envelope_init(&req);
  req.pb.which_msg = dfnet_v1_Envelope_enroll_tag;
  snprintf(req.pb.msg.enroll.token, sizeof req.pb.msg.enroll.token, "%s", rq->token);
  memcpy(req.pb.msg.enroll.csr_der.bytes, csr, csr_len);
  req.pb.msg.enroll.csr_der.size = (pb_size_t)csr_len;
  dfnet_status_t st = dfnet_transport_request_sync(t, sid, &req, timeout_ms, &reply, &bulk);
  memset(&req.pb.msg.enroll.token, 0, sizeof req.pb.msg.enroll.token);
  free(bulk);
  if (st != DFNET_STATUS_OK) {
    snprintf(why, why_size, "no answer from the manager: %s", dfnet_status_str(st));
    return st;
  }
  if (reply.pb.which_msg == dfnet_v1_Envelope_status_tag) {
    snprintf(why, why_size, "%s", reply.pb.msg.status.message);
    st = (dfnet_status_t)reply.pb.msg.status.code;
    return st != DFNET_STATUS_OK ? st : DFNET_STATUS_INTERNAL;
  }
  if (reply.pb.which_msg != dfnet_v1_Envelope_enroll_result_tag) {
    snprintf(why, why_size, "the manager answered %s, not EnrollResult",
             dfnet_envelope_msg_name(reply.pb.which_msg));
    return DFNET_STATUS_INTERNAL;
  }
  out->answer = reply.pb.msg.enroll_result;
  return DFNET_STATUS_OK;
}

/* The answer's CA is the one pinned, and its certificate is for our key. */
static dfnet_status_t answer_check(const dfnet_enroll_result_t *r, const uint8_t pin[32], char *why,
                                   size_t why_size) {
  dfnet_pki_cert_t *ca = NULL, *cert = NULL;
  uint8_t h[32];
  const dfnet_v1_EnrollResult *a = &r->answer;
  dfnet_status_t st = dfnet_pki_cert_parse((const uint8_t *)a->ca_pem, strlen(a->ca_pem), &ca);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_cert_spki_sha256(ca, h);
  if (st == DFNET_STATUS_OK && memcmp(h, pin, sizeof h) != 0)
    st = DFNET_STATUS_UNAUTHENTICATED;
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_cert_parse((const uint8_t *)a->certificate_pem, strlen(a->certificate_pem),
                              &cert);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_key_check_pair(cert, r->key);
  if (st != DFNET_STATUS_OK)
    snprintf(why, why_size,
             "the manager's answer does not hold: %s (its CA is not the pinned "
             "one, or the certificate is not for our key)",
             dfnet_status_str(st));
  dfnet_pki_cert_free(cert);
  dfnet_pki_cert_free(ca);
  return st == DFNET_STATUS_OK ? st : DFNET_STATUS_UNAUTHENTICATED;
}

/* Connect on dfnet.enroll.v1 with the pin, send, take the answer. */
static dfnet_status_t enroll_over_wire(const dfnet_enroll_request_t *rq, const uint8_t pin[32],
                                       const uint8_t *csr, size_t csr_len, uint32_t timeout_ms,
                                       dfnet_enroll_result_t *out, char *why, size_t why_size) {
  enroll_wait_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .code = DFNET_STATUS_OK};
  dfnet_transport_t *t = NULL;
  dfnet_endpoint_id_t ep = 0;
  dfnet_session_id_t sid = 0;
  dfnet_client_config_t cc = {.url = rq->url,
                              .subprotocol = DFNET_SUBPROTOCOL_ENROLL,
                              .ca_pin = pin,
                              .callbacks = {.on_connect_error = on_connect_error},
                              .user = &w};
  dfnet_status_t st = dfnet_transport_create(&t);
  if (st == DFNET_STATUS_OK && (st = dfnet_transport_connect(t, &cc, &ep)) != DFNET_STATUS_OK)
    snprintf(why, why_size, "cannot connect to %s: %s", rq->url, dfnet_status_str(st));
  if (st == DFNET_STATUS_OK)
    st = dfnet_transport_start(t);
  if (st == DFNET_STATUS_OK)
    st = wait_session(t, ep, &w, timeout_ms, &sid, why, why_size);
  if (st == DFNET_STATUS_OK)
    st = exchange(t, sid, rq, csr, csr_len, timeout_ms, out, why, why_size);
  dfnet_transport_destroy(t);
  pthread_mutex_destroy(&w.mu);
  return st;
}

dfnet_status_t dfnet_enroll(const dfnet_enroll_request_t *rq, dfnet_enroll_result_t *out, char *why,
                            size_t why_size) {
  uint8_t pin[32];
  memset(out, 0, sizeof *out);
  if (rq == NULL || rq->url == NULL || rq->token == NULL || rq->name == NULL) {
    snprintf(why, why_size, "enrollment needs a manager URL, a token and a name");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (dfnet_pki_pin_parse(rq->ca_pin, pin) != DFNET_STATUS_OK) {
    snprintf(why, why_size, "--ca-pin %s: want sha256:<64 hex digits>",
             rq->ca_pin ? rq->ca_pin : "");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (strchr(rq->token, '.') == NULL ||
      strlen(rq->token) >= sizeof(((dfnet_v1_Enroll *)0)->token)) {
    snprintf(why, why_size, "--token: want <id>.<secret>, as `dfnet token create` printed it");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  uint8_t *csr = NULL;
  size_t csr_len = 0;
  dfnet_status_t st = dfnet_pki_csr_create(rq->name, &out->key, &csr, &csr_len);
  if (st != DFNET_STATUS_OK) {
    snprintf(why, why_size, "%s: %s", rq->name,
             st == DFNET_STATUS_INVALID_ARGUMENT
                 ? "not a dfnet name (letters, digits, '.', '-', '_'; at most 64)"
                 : "cannot make a key and its CSR");
    return st;
  }
  if (csr_len > sizeof(((dfnet_v1_Enroll *)0)->csr_der.bytes)) {
    snprintf(why, why_size, "the CSR is %zu bytes: too large", csr_len);
    st = DFNET_STATUS_INTERNAL;
  }
  uint32_t timeout = rq->timeout_ms ? rq->timeout_ms : ENROLL_TIMEOUT_DEFAULT_MS;
  if (st == DFNET_STATUS_OK)
    st = enroll_over_wire(rq, pin, csr, csr_len, timeout, out, why, why_size);
  free(csr);
  if (st == DFNET_STATUS_OK)
    st = answer_check(out, pin, why, why_size);
  if (st != DFNET_STATUS_OK)
    dfnet_enroll_free(out);
  return st;
}

void dfnet_enroll_free(dfnet_enroll_result_t *r) {
  if (r == NULL)
    return;
  dfnet_pki_key_free(r->key);
  memset(r, 0, sizeof *r);
}

dfnet_status_t dfnet_enroll_write(const dfnet_pki_key_t *key, const char *cert_pem,
                                  const char *ca_pem, const char *key_path, const char *cert_path,
                                  const char *ca_path, char *why, size_t why_size) {
  dfnet_pki_cert_t *cert = NULL;
  dfnet_status_t st = dfnet_pki_cert_parse((const uint8_t *)cert_pem, strlen(cert_pem), &cert);
  dfnet_pki_cert_free(cert);
  if (st != DFNET_STATUS_OK) {
    snprintf(why, why_size, "the certificate does not parse");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if ((st = dfnet_pki_key_write(key, key_path)) != DFNET_STATUS_OK) {
    snprintf(why, why_size, "cannot write %s: %s", key_path, dfnet_status_str(st));
    return st;
  }
  char w[300];
  if (ca_path != NULL && (st = dfnet_file_write_atomic(ca_path, ca_pem, strlen(ca_pem), 0644, w,
                                                       sizeof w)) != DFNET_STATUS_OK) {
    snprintf(why, why_size, "cannot write %s: %s", ca_path, w);
    return st;
  }
  st = dfnet_file_write_atomic(cert_path, cert_pem, strlen(cert_pem), 0644, w, sizeof w);
  if (st != DFNET_STATUS_OK)
    snprintf(why, why_size, "cannot write %s: %s", cert_path, w);
  return st;
}

dfnet_status_t dfnet_renew_csr(const char *name, dfnet_pki_key_t **key_out,
                               dfnet_v1_CertRenew *req) {
  uint8_t *csr = NULL;
  size_t len = 0;
  dfnet_status_t st = dfnet_pki_csr_create(name, key_out, &csr, &len);
  if (st != DFNET_STATUS_OK)
    return st;
  if (len > sizeof req->csr_der.bytes) {
    free(csr);
    dfnet_pki_key_free(*key_out);
    *key_out = NULL;
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  memcpy(req->csr_der.bytes, csr, len);
  req->csr_der.size = (pb_size_t)len;
  free(csr);
  return DFNET_STATUS_OK;
}

uint64_t dfnet_renew_delay_ms(int64_t not_before, int64_t not_after, int64_t now_s,
                              double jitter_unit) {
  double life = (double)(not_after - not_before);
  if (life <= 0)
    return 0;
  double at = (double)not_before + life * 2.0 / 3.0 + life * 0.1 * (2.0 * jitter_unit - 1.0);
  double delay = (at - (double)now_s) * 1000.0;
  return delay > 0 ? (uint64_t)delay : 0;
}
