/* dfnet-manager: enrollment's certificate (manager/cert.h "Enrollment"; issue 23 item 2): a
 * join token and a CSR (PKCS#10) become a certificate of the token's role and name for the
 * requester's own key, issued by the state directory's CA and recorded. The wire that carries
 * them: the dfnet.enroll.v1 subprotocol (handle_enroll.c). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "lib/role.h"
#include "manager/cert.h"

#define SUB "enroll"

void cert__validity(unsigned days, dfnet_pki_leaf_params_t *p) {
  p->days = days;
  const char *e = getenv("DFNET_CERT_LIFETIME_S"); /* tests of renewal only */
  char *end = NULL;
  long s = e != NULL && *e ? strtol(e, &end, 10) : 0;
  if (s >= 1 && s <= 31536000 && end != NULL && *end == '\0') {
    time_t now = time(NULL);
    p->not_before = now - 1;
    p->not_after = now + s;
  }
}

/* What the token's accept hook needs and makes. */
typedef struct enroll_ctx {
  mgr_t *m;
  const dfnet_pki_csr_t *csr;
  unsigned days;
  uint64_t now_ms;
  cert_enrolled_t *out;
} enroll_ctx_t;

/* The CSR's name, checked against what the token allows, into out. */
static dfnet_status_t name_check(const token_grant_t *g, const dfnet_pki_csr_t *csr,
                                 char out[STORE_PRINCIPAL_MAX + 1], char *why, size_t why_size) {
  dfnet_pki_csr_name(csr, out);
  if (!dfnet_pki_name_valid(out)) {
    dfnet_why_set(why, why_size, "the CSR's CN \"%s\" is not a dfnet name", out);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (g->name[0] != '\0' && strcmp(out, g->name) != 0) {
    dfnet_why_set(why, why_size, "the token enrols %s, the CSR names %s", g->name, out);
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  if (g->name_prefix[0] != '\0' && strncmp(out, g->name_prefix, strlen(g->name_prefix)) != 0) {
    dfnet_why_set(why, why_size, "the token enrols names starting with %s, the CSR names %s",
                  g->name_prefix, out);
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t cert__issue_csr(mgr_t *m, const char *name, dfnet_v1_Role wire_role,
                               const dfnet_pki_csr_t *csr, unsigned days, dfnet_pki_cert_t **out,
                               char *why, size_t why_size) {
  char path[1200];
  dfnet_pki_cert_t *ca = NULL;
  dfnet_pki_key_t *ca_key = NULL;
  *out = NULL;
  snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, DFNET_PKI_CA_CERT_FILE);
  dfnet_status_t st = dfnet_pki_cert_load(path, &ca);
  if (st == DFNET_STATUS_OK) {
    snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, DFNET_PKI_CA_KEY_FILE);
    st = dfnet_pki_key_load(path, &ca_key);
  }
  if (st == DFNET_STATUS_OK) {
    const dfnet_role_t *role = dfnet_role_by_wire(wire_role);
    dfnet_pki_leaf_params_t p = {.name = name,
                                 .role = role != NULL ? role->pki : DFNET_PKI_ROLE_NONE};
    cert__validity(days, &p);
    st = dfnet_pki_leaf_issue_csr(ca, ca_key, &p, csr, out);
  }
  if (st != DFNET_STATUS_OK)
    dfnet_why_set(why, why_size, "the certificate was not issued: %s (the manager's log says why)",
                  dfnet_status_str(st));
  dfnet_pki_key_free(ca_key);
  dfnet_pki_cert_free(ca);
  return st;
}

/* token__redeem's accept hook: the name, no live certificate of it, then the certificate. */
static dfnet_status_t accept_grant(void *arg, const token_grant_t *g, char *why, size_t why_size) {
  enroll_ctx_t *x = arg;
  dfnet_status_t st = name_check(g, x->csr, x->out->name, why, why_size);
  if (st != DFNET_STATUS_OK)
    return st;
  char serial[STORE_SERIAL_MAX + 1];
  uint64_t until = 0;
  if (cert__live_of_name(x->m, x->out->name, x->now_ms, serial, &until)) {
    dfnet_why_set(why, why_size,
                  "%s is enrolled already (certificate %s): revoke it first (dfnet cert revoke "
                  "%s --reason ...)",
                  x->out->name, serial, x->out->name);
    return DFNET_STATUS_ALREADY_EXISTS;
  }
  return cert__issue_csr(x->m, x->out->name, g->role, x->csr, x->days, &x->out->cert, why,
                         why_size);
}

/* A certificate issued, for store__change_audited. */
static dfnet_status_t store_issued(store_t *s, void *arg, char *err, size_t err_size) {
  return store__cert_issued(s, arg, err, err_size);
}

dfnet_status_t cert__record_new(mgr_t *m, const dfnet_pki_cert_t *cert, const char *name,
                                int action, const char *detail,
                                char serial_out[STORE_SERIAL_MAX + 1], char *why, size_t why_size) {
  dfnet_pki_cert_info_t info;
  dfnet_status_t st = dfnet_pki_cert_info(cert, &info);
  if (st != DFNET_STATUS_OK)
    return st;
  snprintf(serial_out, STORE_SERIAL_MAX + 1, "%s", info.serial_hex);
  store_cert_t c = {.serial = serial_out,
                    .name = name,
                    .role = dfnet_pki_role_str(info.role),
                    .not_after_ms = (uint64_t)(info.not_after > 0 ? info.not_after : 0) * 1000u,
                    .issued = true,
                    .last_address = "",
                    .revoked_by = "",
                    .revoke_reason = ""};
  char target[8 + STORE_SERIAL_MAX];
  snprintf(target, sizeof target, "cert:%s", serial_out);
  store_audit_t row = {.time_ms = mgr__wall_ms(),
                       .actor = name,
                       .action = (store_audit_action_t)action,
                       .detail = detail};
  st = store__change_audited_on(m->store, store_issued, &c, target, row, why, why_size);
  if (st == DFNET_STATUS_OK && !cert__remember(m, &c))
    DFNET_LOGW(SUB, name,
               "certificate %s recorded, not kept in memory (no memory): listed "
               "after a restart",
               serial_out);
  return st;
}

/* Record the enrolled certificate (store, audit row enroll, memory). */
static dfnet_status_t record(mgr_t *m, cert_enrolled_t *e, const char *source, char *why,
                             size_t why_size) {
  char detail[STORE_DETAIL_MAX + 1];
  const dfnet_role_t *role = dfnet_role_by_wire(e->grant.role);
  snprintf(detail, sizeof detail, "%s (%s) with join token %s from %s", e->name,
           role != NULL ? role->name : "?", e->grant.id, source != NULL ? source : "?");
  return cert__record_new(m, e->cert, e->name, STORE_AUDIT_ENROLL, detail, e->serial, why,
                          why_size);
}

dfnet_status_t cert__enroll(mgr_t *m, const char *token, const uint8_t *csr, size_t csr_len,
                            const char *source, unsigned days, cert_enrolled_t *out, char *why,
                            size_t why_size) {
  memset(out, 0, sizeof *out);
  if (days > DFNET_PKI_MAX_DAYS) {
    dfnet_why_set(why, why_size, "%u days: at most %d", days, DFNET_PKI_MAX_DAYS);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_pki_csr_t *req = NULL;
  dfnet_status_t st = dfnet_pki_csr_parse(csr, csr_len, &req);
  if (st != DFNET_STATUS_OK) {
    dfnet_why_set(why, why_size, "%s",
                  st == DFNET_STATUS_UNAUTHENTICATED
                      ? "the CSR's signature does not verify with its own key"
                      : "the CSR is not a P-256 PKCS#10 request signed with SHA-256");
    DFNET_LOGW(SUB, source, "enrollment refused: %s: %s", dfnet_status_str(st), why);
    return st;
  }
  enroll_ctx_t x = {m, req, days ? days : CERT_ENROLL_DAYS, mgr__wall_ms(), out};
  st = token__redeem(cert__tokens(m), token, source, x.now_ms, accept_grant, &x, &out->grant, why,
                     why_size);
  dfnet_pki_csr_free(req);
  if (st == DFNET_STATUS_OK)
    st = record(m, out, source, why, why_size);
  if (st != DFNET_STATUS_OK) {
    dfnet_pki_cert_free(out->cert);
    out->cert = NULL;
    return st;
  }
  DFNET_LOGI(SUB, out->name, "enrolled from %s with join token %s: certificate %s, role %s",
             source != NULL ? source : "?", out->grant.id, out->serial,
             dfnet_role_by_wire(out->grant.role)->name);
  return DFNET_STATUS_OK;
}
