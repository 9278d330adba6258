/* dfnet-manager: renewal (manager/cert.h cert__renew; issue 23 item 3): a live host or client
 * session asks for a certificate of its own name and role for a new key, before its current
 * one runs out. The session's certificate must not be revoked; the CSR must be signed by the
 * new key and name the session's CN. The new certificate is valid as long as an enrolled
 * one, recorded as issued and audited (cert_renew). The session goes on with its current
 * certificate; the peer presents the new one at its next connection.
 */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "manager/cert.h"

#define SUB "renew"

/* The session's certificate may renew: a record, not revoked. */
static dfnet_status_t session_check(mgr_t *m, const mgr_session_t *s, char *serial, char *why,
                                    size_t why_size) {
  bool revoked = false;
  if (!cert__session_cert(m, s->id, serial, &revoked, why, why_size)) {
    dfnet_why_set(why, why_size, "this session's certificate is not on record");
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  return revoked ? DFNET_STATUS_UNAUTHENTICATED : DFNET_STATUS_OK;
}

/* The CSR verifies and names the session's CN. On OK *out is the parsed CSR. */
static dfnet_status_t csr_check(const mgr_session_t *s, const uint8_t *csr, size_t csr_len,
                                dfnet_pki_csr_t **out, char *why, size_t why_size) {
  dfnet_status_t st = dfnet_pki_csr_parse(csr, csr_len, out);
  if (st != DFNET_STATUS_OK) {
    dfnet_why_set(why, why_size, "%s",
                  st == DFNET_STATUS_UNAUTHENTICATED
                      ? "the CSR's signature does not verify with its own key"
                      : "the CSR is not a P-256 PKCS#10 request signed with SHA-256");
    return st;
  }
  char name[DFNET_PKI_NAME_MAX + 1];
  dfnet_pki_csr_name(*out, name);
  if (strcmp(name, s->name) != 0) {
    dfnet_why_set(why, why_size, "the CSR names %s, this session's certificate is %s's", name,
                  s->name);
    dfnet_pki_csr_free(*out);
    *out = NULL;
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t cert__renew(mgr_t *m, const mgr_session_t *s, const uint8_t *csr, size_t csr_len,
                           dfnet_pki_cert_t **cert_out, char serial_out[STORE_SERIAL_MAX + 1],
                           char *why, size_t why_size) {
  *cert_out = NULL;
  serial_out[0] = '\0';
  char old[STORE_SERIAL_MAX + 1] = "";
  dfnet_pki_csr_t *req = NULL;
  dfnet_status_t st = s != NULL ? session_check(m, s, old, why, why_size) : DFNET_STATUS_NOT_FOUND;
  if (st == DFNET_STATUS_OK)
    st = csr_check(s, csr, csr_len, &req, why, why_size);
  if (st == DFNET_STATUS_OK)
    st = cert__issue_csr(m, s->name, s->role, req, CERT_ENROLL_DAYS, cert_out, why, why_size);
  dfnet_pki_csr_free(req);
  if (st == DFNET_STATUS_OK) {
    char detail[STORE_DETAIL_MAX + 1];
    snprintf(detail, sizeof detail, "%s renewed certificate %s for a new key from %s", s->name, old,
             s->address);
    st = cert__record_new(m, *cert_out, s->name, STORE_AUDIT_CERT_RENEW, detail, serial_out, why,
                          why_size);
  }
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(SUB, s != NULL ? s->name : NULL, "renewal refused: %s: %s", dfnet_status_str(st),
               why);
    dfnet_pki_cert_free(*cert_out);
    *cert_out = NULL;
    return st;
  }
  DFNET_LOGI(SUB, s->name, "certificate %s renewed: %s", old, serial_out);
  return DFNET_STATUS_OK;
}
