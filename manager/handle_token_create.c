/* dfnet-manager: TokenCreate from a client, role admin (proto/dfnet/v1/trust.proto; issue 23
 * item 1): token__create writes the token with its audit row; answered with a TokenInfo
 * carrying the token (the one time its secret is shown) and the CA pin, "sha256:<hex of the
 * SHA-256 of the CA certificate's SubjectPublicKeyInfo DER>", or a Status with the reason. */
#include <stdio.h>

#include <mbedtls/platform_util.h>

#include "lib/log.h"
#include "lib/pki.h"
#include "manager/cert.h"

/* The pin of the state directory's CA into out ("" when it cannot be read: logged). */
static void ca_pin(mgr_t *m, char out[DFNET_PKI_PIN_TEXT_SIZE]) {
  char path[1200];
  uint8_t sha[32];
  dfnet_pki_cert_t *ca = NULL;
  snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, DFNET_PKI_CA_CERT_FILE);
  out[0] = '\0';
  if (dfnet_pki_cert_load(path, &ca) == DFNET_STATUS_OK &&
      dfnet_pki_cert_spki_sha256(ca, sha) == DFNET_STATUS_OK)
    dfnet_pki_pin_format(sha, out);
  dfnet_pki_cert_free(ca);
}

/* Fill a TokenInfo from a token record (no secret). */
void handle__token_info_fill(const store_token_t *t, dfnet_v1_TokenInfo *i) {
  *i = (dfnet_v1_TokenInfo)dfnet_v1_TokenInfo_init_zero;
  snprintf(i->id, sizeof i->id, "%s", t->id);
  i->role = t->role;
  snprintf(i->name, sizeof i->name, "%s", t->name);
  snprintf(i->name_prefix, sizeof i->name_prefix, "%s", t->name_prefix);
  for (size_t k = 0; k < t->label_count && k < pb_arraysize(dfnet_v1_TokenInfo, labels); k++) {
    snprintf(i->labels[k].key, sizeof i->labels[k].key, "%s", t->labels[k].key);
    snprintf(i->labels[k].value, sizeof i->labels[k].value, "%s", t->labels[k].value);
    i->labels_count++;
  }
  i->created_ms = t->created_ms;
  i->expires_ms = t->expires_ms;
  i->uses_left = t->uses_left;
  snprintf(i->created_by, sizeof i->created_by, "%s", t->created_by);
  i->revoked_ms = t->revoked_ms;
}

void handle__token_create(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_TokenCreate *q = &env->pb.msg.token_create;
  store_label_t labels[STORE_LABELS_MAX];
  size_t n = q->labels_count < STORE_LABELS_MAX ? q->labels_count : STORE_LABELS_MAX;
  for (size_t i = 0; i < n; i++)
    labels[i] = (store_label_t){q->labels[i].key, q->labels[i].value};
  token_spec_t spec = {.role = q->role,
                       .name = q->name,
                       .name_prefix = q->name_prefix,
                       .ttl_ms = q->ttl_ms,
                       .uses = q->uses,
                       .labels = labels,
                       .label_count = n};
  char token[TOKEN_TEXT_SIZE], why[600];
  const store_token_t *t = NULL;
  dfnet_status_t st =
      token__create(cert__tokens(m), &spec, s->name, mgr__wall_ms(), token, &t, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGI("token", s->name, "TokenCreate refused: %s: %s", dfnet_status_str(st), why);
    sessions__reply_status(m, s->id, env->pb.id, st, "%s", why);
    return;
  }
  dfnet_envelope_t *w = mgr__env(m);
  w->pb.id = env->pb.id;
  w->pb.which_msg = dfnet_v1_Envelope_token_info_tag;
  handle__token_info_fill(t, &w->pb.msg.token_info);
  snprintf(w->pb.msg.token_info.token, sizeof w->pb.msg.token_info.token, "%s", token);
  ca_pin(m, w->pb.msg.token_info.ca_pin);
  (void)dfnet_transport_send(m->transport, s->id, w, DFNET_SEND_PAST_HWM);
  mbedtls_platform_zeroize(token, sizeof token);
  mbedtls_platform_zeroize(w->pb.msg.token_info.token, sizeof w->pb.msg.token_info.token);
}
