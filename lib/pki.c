/* dfnet's PKI on mbedTLS 2.28 (lib/pki.h): the objects, roles and names, and the one edge
 * where errno and mbedTLS codes become statuses. The rest is by concept, beside it
 * (lib/pki_internal.h lists the files). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/oid.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/pki_internal.h"
#include "lib/role.h"

/* ---- The one edge where errno and mbedTLS codes become dfnet statuses ----------------- */

dfnet_status_t pki__fail(dfnet_status_t code, const char *subject, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  DFNET_LOGE(PKI_LOG, subject, "%s (%s)", msg, dfnet_status_str(code));
  return code;
}

dfnet_status_t pki__fail_mbedtls(int rc, dfnet_status_t code, const char *subject,
                                 const char *what) {
  char text[200];
  mbedtls_strerror(rc, text, sizeof text);
  return pki__fail(code, subject, "%s: %s (mbedTLS -0x%04x)", what, text,
                   (unsigned)(rc < 0 ? -rc : rc));
}

dfnet_status_t pki__fail_errno(int err, const char *path, const char *what) {
  return pki__fail(dfnet_errno_status(err), path, "%s: %s (errno %d)", what, strerror(err), err);
}

/* ---- Roles and names ------------------------------------------------------------------ */

dfnet_status_t dfnet_pki_role_parse(const char *text, dfnet_pki_role_t *out) {
  const dfnet_role_t *role = dfnet_role_by_name(text);
  if (role == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  *out = role->pki;
  return DFNET_STATUS_OK;
}

const char *dfnet_pki_role_str(dfnet_pki_role_t role) {
  const dfnet_role_t *row = dfnet_role_by_pki(role);
  return row != NULL ? row->name : "none";
}

bool pki__chars_valid(const char *s, size_t len, const char *extra) {
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(extra, c) != NULL);
    if (!ok)
      return false;
  }
  return true;
}

bool dfnet_pki_name_valid(const char *name) {
  if (name == NULL)
    return false;
  size_t len = strlen(name);
  if (len == 0 || len > DFNET_PKI_NAME_MAX || name[0] == '.' || name[0] == '-')
    return false;
  return pki__chars_valid(name, len, "._-");
}

dfnet_status_t pki__name_check(const char *what, const char *name, const char *subject) {
  if (dfnet_pki_name_valid(name))
    return DFNET_STATUS_OK;
  return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, subject,
                   "%s \"%.80s\": 1..64 characters of [A-Za-z0-9._-], not starting with '.' "
                   "or '-'",
                   what, name ? name : "(null)");
}

/* ---- Objects ------------------------------------------------------------------------ */

dfnet_pki_cert_t *pki__cert_new(void) {
  dfnet_pki_cert_t *cert = calloc(1, sizeof *cert);
  if (cert != NULL)
    mbedtls_x509_crt_init(&cert->crt);
  return cert;
}

void dfnet_pki_cert_free(dfnet_pki_cert_t *cert) {
  if (cert == NULL)
    return;
  mbedtls_x509_crt_free(&cert->crt);
  free(cert);
}

dfnet_pki_key_t *pki__key_new(void) {
  dfnet_pki_key_t *key = calloc(1, sizeof *key);
  if (key != NULL)
    mbedtls_pk_init(&key->pk);
  return key;
}

void dfnet_pki_key_free(dfnet_pki_key_t *key) {
  if (key == NULL)
    return;
  mbedtls_pk_free(&key->pk); /* wipes the key material */
  free(key);
}

const uint8_t *dfnet_pki_cert_der(const dfnet_pki_cert_t *cert, size_t *len_out) {
  if (cert == NULL) {
    if (len_out)
      *len_out = 0;
    return NULL;
  }
  if (len_out)
    *len_out = cert->crt.raw.len;
  return cert->crt.raw.p;
}

/* ---- Distinguished names and times -------------------------------------------------- */

time_t pki__x509_time(const mbedtls_x509_time *xt) {
  struct tm tm = {0};
  tm.tm_year = xt->year - 1900;
  tm.tm_mon = xt->mon - 1;
  tm.tm_mday = xt->day;
  tm.tm_hour = xt->hour;
  tm.tm_min = xt->min;
  tm.tm_sec = xt->sec;
  return timegm(&tm);
}

/* The value of a subject/issuer attribute, or NULL. */
static const mbedtls_x509_buf *name_find(const mbedtls_x509_name *name, const char *oid,
                                         size_t oid_len) {
  for (; name != NULL; name = name->next) {
    if (name->oid.p != NULL && name->oid.len == oid_len && memcmp(name->oid.p, oid, oid_len) == 0)
      return &name->val;
  }
  return NULL;
}

void pki__name_copy(const mbedtls_x509_name *name, const char *oid, size_t oid_len, char *out) {
  out[0] = '\0';
  const mbedtls_x509_buf *val = name_find(name, oid, oid_len);
  if (val == NULL || val->len > DFNET_PKI_NAME_MAX || memchr(val->p, 0, val->len) != NULL)
    return;
  memcpy(out, val->p, val->len);
  out[val->len] = '\0';
}

void pki__cert_cn(const dfnet_pki_cert_t *cert, char out[DFNET_PKI_NAME_MAX + 1]) {
  pki__name_copy(&cert->crt.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), out);
}
