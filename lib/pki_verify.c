/* Reading certificates (lib/pki.h "Reading certificates"): verification against the CA
 * (RFC 5280 §6), what a certificate says, and the one hostname check (RFC 6125 §6.4,
 * iPAddress SANs per RFC 5280 §4.2.1.6). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "lib/pki_internal.h"

/* ---- Verification ------------------------------------------------------------------- */

uint32_t pki__verify_quiet(const dfnet_pki_cert_t *ca, const dfnet_pki_cert_t *leaf, int *rc_out,
                           uint32_t *flags_out) {
  uint32_t flags = 0;
  /* mbedtls_x509_crt_verify takes non-const chains; it only reads them. */
  int rc = mbedtls_x509_crt_verify((mbedtls_x509_crt *)&leaf->crt, (mbedtls_x509_crt *)&ca->crt,
                                   NULL, NULL, &flags, NULL, NULL);
  *rc_out = rc;
  *flags_out = flags;
  if (rc == 0 && flags == 0)
    return 0;
  static const struct {
    uint32_t flags;
    uint32_t reason;
  } map[] = {
      {MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_BAD_KEY |
           MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK,
       DFNET_PKI_VERIFY_UNTRUSTED},
      {MBEDTLS_X509_BADCERT_EXPIRED, DFNET_PKI_VERIFY_EXPIRED},
      {MBEDTLS_X509_BADCERT_FUTURE, DFNET_PKI_VERIFY_NOT_YET_VALID},
      {MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
           MBEDTLS_X509_BADCERT_NS_CERT_TYPE,
       DFNET_PKI_VERIFY_BAD_USAGE},
  };
  uint32_t reasons = 0, rest = flags;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    if (flags & map[i].flags)
      reasons |= map[i].reason;
    rest &= ~map[i].flags;
  }
  if (rest != 0 || reasons == 0)
    reasons |= DFNET_PKI_VERIFY_OTHER;
  return reasons;
}

dfnet_status_t dfnet_pki_cert_verify(const dfnet_pki_cert_t *ca, const dfnet_pki_cert_t *leaf,
                                     uint32_t *reasons_out) {
  if (reasons_out)
    *reasons_out = 0;
  if (ca == NULL || leaf == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "verifying: NULL argument");
  int rc;
  uint32_t flags;
  uint32_t reasons = pki__verify_quiet(ca, leaf, &rc, &flags);
  if (reasons == 0)
    return DFNET_STATUS_OK;
  if (reasons_out)
    *reasons_out = reasons;

  char info[512];
  int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
  if (n < 0)
    snprintf(info, sizeof info, "flags 0x%08x", flags);
  /* One log line: mbedTLS ends each reason with a newline; join them with ';'. */
  size_t ilen = strlen(info);
  while (ilen > 0 && info[ilen - 1] == '\n')
    info[--ilen] = '\0';
  for (char *p = info; *p != '\0'; p++)
    if (*p == '\n')
      *p = ';';
  char cn[DFNET_PKI_NAME_MAX + 1];
  pki__cert_cn(leaf, cn);
  DFNET_LOGW(PKI_LOG, cn[0] ? cn : NULL,
             "certificate refused: %s (mbedTLS -0x%04x, flags 0x%08x) (UNAUTHENTICATED)", info,
             (unsigned)(rc < 0 ? -rc : rc), flags);
  return DFNET_STATUS_UNAUTHENTICATED;
}

/* ---- What a certificate says ------------------------------------------------------- */

/* Walk the subjectAltName extension in v3_ext (mbedTLS 2.28 does not keep iPAddress
 * entries in subject_alt_names on every version, so we read the DER ourselves).
 * Calls visit(tag_number, value, len, ctx) for each GeneralName.
 * Returns 0, or an mbedTLS ASN.1 error for malformed DER. */
typedef void (*san_visit_fn)(int tag, const unsigned char *v, size_t len, void *ctx);

static int san_walk(const mbedtls_x509_crt *crt, san_visit_fn visit, void *ctx) {
  if (crt->v3_ext.p == NULL || crt->v3_ext.len == 0)
    return 0;
  unsigned char *p = crt->v3_ext.p;
  const unsigned char *end = p + crt->v3_ext.len;
  size_t len;
  int rc = mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
  if (rc != 0)
    return rc;
  end = p + len;
  while (p < end) {
    if ((rc = mbedtls_asn1_get_tag(&p, end, &len,
                                   MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) != 0)
      return rc;
    const unsigned char *ext_end = p + len;
    mbedtls_x509_buf oid = {.tag = MBEDTLS_ASN1_OID};
    if ((rc = mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID)) != 0)
      return rc;
    oid.p = p;
    p += oid.len;
    int critical = 0;
    rc = mbedtls_asn1_get_bool(&p, ext_end, &critical);
    if (rc != 0 && rc != MBEDTLS_ERR_ASN1_UNEXPECTED_TAG)
      return rc;
    if ((rc = mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING)) != 0)
      return rc;
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0) {
      unsigned char *q = p;
      const unsigned char *val_end = p + len;
      size_t seq_len;
      if ((rc = mbedtls_asn1_get_tag(&q, val_end, &seq_len,
                                     MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) != 0)
        return rc;
      const unsigned char *seq_end = q + seq_len;
      while (q < seq_end) {
        int tag = *q++;
        size_t vlen;
        if ((rc = mbedtls_asn1_get_len(&q, seq_end, &vlen)) != 0)
          return rc;
        if ((tag & MBEDTLS_ASN1_CONTEXT_SPECIFIC) == MBEDTLS_ASN1_CONTEXT_SPECIFIC)
          visit(tag & 0x1f, q, vlen, ctx);
        q += vlen;
      }
    }
    p = (unsigned char *)ext_end;
  }
  return 0;
}

static void san_collect(int tag, const unsigned char *v, size_t len, void *ctx) {
  dfnet_pki_cert_info_t *info = ctx;
  dfnet_pki_san_t san;
  if (tag == 2) {
    if (len > DFNET_PKI_SAN_MAX || memchr(v, 0, len) != NULL) {
      info->sans_truncated = true;
      return;
    }
    san.type = DFNET_PKI_SAN_DNS;
    memcpy(san.text, v, len);
    san.text[len] = '\0';
  } else if (tag == 7 && (len == 4 || len == 16)) {
    san.type = DFNET_PKI_SAN_IP;
    if (inet_ntop(len == 4 ? AF_INET : AF_INET6, v, san.text, sizeof san.text) == NULL) {
      info->sans_truncated = true;
      return;
    }
  } else {
    return; /* another GeneralName type: not ours */
  }
  if (info->san_count >= DFNET_PKI_MAX_SANS) {
    info->sans_truncated = true;
    return;
  }
  info->sans[info->san_count++] = san;
}

dfnet_status_t dfnet_pki_cert_info(const dfnet_pki_cert_t *cert, dfnet_pki_cert_info_t *info) {
  if (cert == NULL || info == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "certificate info: NULL argument");
  memset(info, 0, sizeof *info);
  const mbedtls_x509_crt *crt = &cert->crt;
  pki__cert_cn(cert, info->cn);
  pki__name_copy(&crt->subject, MBEDTLS_OID_AT_ORG_UNIT, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT),
                 info->ou);
  pki__name_copy(&crt->issuer, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN),
                 info->issuer_cn);
  if (dfnet_pki_role_parse(info->ou, &info->role) != DFNET_STATUS_OK)
    info->role = DFNET_PKI_ROLE_NONE;
  size_t octets = (sizeof info->serial_hex - 1) / 2; /* RFC 5280: at most 20 */
  dfnet_hex_encode(crt->serial.p, crt->serial.len < octets ? crt->serial.len : octets,
                   info->serial_hex);
  info->not_before = pki__x509_time(&crt->valid_from);
  info->not_after = pki__x509_time(&crt->valid_to);
  info->is_ca = crt->ca_istrue != 0;
  int rc = san_walk(crt, san_collect, info);
  if (rc != 0)
    return pki__fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, info->cn,
                             "malformed subjectAltName");
  return DFNET_STATUS_OK;
}

/* ---- Host matching (RFC 6125) ------------------------------------------------------ */

typedef struct host_match {
  const char *host;
  bool host_is_ip;
  size_t ip_len;
  unsigned char ip[16];
  bool matched;
  bool any_san;
} host_match_t;

/* RFC 6125 §6.4.3: "*.example.com" covers exactly one leftmost label. */
static bool dns_match(const char *pattern, size_t plen, const char *host) {
  size_t hlen = strlen(host);
  if (plen == hlen && strncasecmp(pattern, host, plen) == 0)
    return true;
  if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
    const char *dot = strchr(host, '.');
    if (dot == NULL || dot == host)
      return false;
    size_t rest = hlen - (size_t)(dot - host);
    return rest == plen - 1 && strncasecmp(pattern + 1, dot, rest) == 0;
  }
  return false;
}

static void san_match(int tag, const unsigned char *v, size_t len, void *ctx) {
  host_match_t *m = ctx;
  if (tag != 2 && tag != 7)
    return;
  m->any_san = true;
  if (m->host_is_ip) {
    if (tag == 7 && len == m->ip_len && memcmp(v, m->ip, len) == 0)
      m->matched = true;
  } else if (tag == 2 && memchr(v, 0, len) == NULL) {
    if (dns_match((const char *)v, len, m->host))
      m->matched = true;
  }
}

bool dfnet_pki_cert_matches_host(const dfnet_pki_cert_t *cert, const char *host) {
  return cert != NULL && dfnet_pki_x509_matches_host(&cert->crt, host);
}

bool dfnet_pki_x509_matches_host(const mbedtls_x509_crt *crt, const char *host) {
  if (crt == NULL || host == NULL || host[0] == '\0')
    return false;
  host_match_t m = {.host = host};
  if (inet_pton(AF_INET, host, m.ip) == 1) {
    m.host_is_ip = true;
    m.ip_len = 4;
  } else if (inet_pton(AF_INET6, host, m.ip) == 1) {
    m.host_is_ip = true;
    m.ip_len = 16;
  }
  if (san_walk(crt, san_match, &m) != 0)
    return false;
  if (m.matched)
    return true;
  if (m.any_san || m.host_is_ip)
    return false;
  char cn[DFNET_PKI_NAME_MAX + 1];
  pki__name_copy(&crt->subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), cn);
  return cn[0] != '\0' && strcasecmp(cn, host) == 0;
}
