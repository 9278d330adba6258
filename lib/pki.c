/* dfnet's PKI on mbedTLS 2.28 (lib/pki.h). */
#include "lib/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include "lib/log.h"

#define PKI_LOG "pki"
#define PKI_FILE_MAX (1024 * 1024) /* largest PEM file we read */
#define PKI_DER_MAX 4096           /* largest certificate we write */
#define PKI_SKEW_SECONDS (5 * 60)  /* not-before backdating for clock skew */
#define PKI_SERIAL_LEN 16

struct dfnet_pki_cert {
  mbedtls_x509_crt crt;
};

struct dfnet_pki_key {
  mbedtls_pk_context pk;
};

/* ---- The one edge where errno and mbedTLS codes become dfnet statuses ----------------- */

static dfnet_status_t pki_fail(dfnet_status_t code, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static dfnet_status_t pki_fail(dfnet_status_t code, const char *subject, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  DFNET_LOGE(PKI_LOG, subject, "%s (%s)", msg, dfnet_status_str(code));
  return code;
}

/* An mbedTLS error: logged with its text and raw code, returned as `code`. */
static dfnet_status_t pki_fail_mbedtls(int rc, dfnet_status_t code, const char *subject,
                                       const char *what) {
  char text[200];
  mbedtls_strerror(rc, text, sizeof text);
  return pki_fail(code, subject, "%s: %s (mbedTLS -0x%04x)", what, text,
                  (unsigned)(rc < 0 ? -rc : rc));
}

/* An errno from a file operation on `path`. */
static dfnet_status_t pki_fail_errno(int err, const char *path, const char *what) {
  dfnet_status_t code;
  switch (err) {
  case ENOENT:
  case ENOTDIR:
    code = DFNET_STATUS_NOT_FOUND;
    break;
  case EACCES:
  case EPERM:
  case EROFS:
    code = DFNET_STATUS_PERMISSION_DENIED;
    break;
  case ENOMEM:
    code = DFNET_STATUS_INTERNAL;
    break;
  default:
    code = DFNET_STATUS_UNAVAILABLE;
    break;
  }
  return pki_fail(code, path, "%s: %s (errno %d)", what, strerror(err), err);
}

/* ---- Roles and names ------------------------------------------------------------------ */

static const char *const role_names[] = {
    [DFNET_PKI_ROLE_NONE] = "none",     [DFNET_PKI_ROLE_HOST] = "host",
    [DFNET_PKI_ROLE_ADMIN] = "admin",   [DFNET_PKI_ROLE_OPERATOR] = "operator",
    [DFNET_PKI_ROLE_VIEWER] = "viewer", [DFNET_PKI_ROLE_MANAGER] = "manager",
};
#define PKI_ROLE_COUNT (sizeof role_names / sizeof role_names[0])

dfnet_status_t dfnet_pki_role_parse(const char *text, dfnet_pki_role_t *out) {
  if (text == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  for (size_t i = DFNET_PKI_ROLE_HOST; i < PKI_ROLE_COUNT; i++) {
    if (strcmp(text, role_names[i]) == 0) {
      *out = (dfnet_pki_role_t)i;
      return DFNET_STATUS_OK;
    }
  }
  return DFNET_STATUS_INVALID_ARGUMENT;
}

const char *dfnet_pki_role_str(dfnet_pki_role_t role) {
  if ((unsigned)role >= PKI_ROLE_COUNT)
    return role_names[DFNET_PKI_ROLE_NONE];
  return role_names[role];
}

static bool role_valid(dfnet_pki_role_t role) {
  return role > DFNET_PKI_ROLE_NONE && (unsigned)role < PKI_ROLE_COUNT;
}

bool dfnet_pki_name_valid(const char *name) {
  if (name == NULL)
    return false;
  size_t len = strlen(name);
  if (len == 0 || len > DFNET_PKI_NAME_MAX || name[0] == '.' || name[0] == '-')
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

/* A CA's CN: printable ASCII without the characters a DN string would need escaped. */
static bool ca_cn_valid(const char *cn) {
  size_t len = strlen(cn);
  if (len == 0 || len > DFNET_PKI_NAME_MAX || cn[0] == ' ' || cn[len - 1] == ' ')
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)cn[i];
    if (c < 0x20 || c > 0x7e || strchr(",+=\\\"<>;#", c) != NULL)
      return false;
  }
  return true;
}

/* A DNS name for a SAN: [A-Za-z0-9.*-], 1..253 characters, no empty label. */
static bool dns_name_valid(const char *s) {
  size_t len = strlen(s);
  if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.' || strstr(s, "..") != NULL)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '*';
    if (!ok)
      return false;
  }
  return true;
}

/* ---- Objects ------------------------------------------------------------------------ */

static dfnet_pki_cert_t *cert_new(void) {
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

static dfnet_pki_key_t *key_new(void) {
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

/* ---- Randomness ------------------------------------------------------------------- */

typedef struct pki_rng {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
} pki_rng_t;

static __attribute__((warn_unused_result)) dfnet_status_t rng_init(pki_rng_t *rng,
                                                                   const char *subject) {
  static const unsigned char pers[] = "dfnet-pki";
  mbedtls_entropy_init(&rng->entropy);
  mbedtls_ctr_drbg_init(&rng->drbg);
  int rc =
      mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy, pers, sizeof pers - 1);
  if (rc != 0)
    return pki_fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "seeding the RNG");
  return DFNET_STATUS_OK;
}

static void rng_free(pki_rng_t *rng) {
  mbedtls_ctr_drbg_free(&rng->drbg);
  mbedtls_entropy_free(&rng->entropy);
}

/* ---- Building certificates ---------------------------------------------------------- */

static __attribute__((warn_unused_result)) dfnet_status_t
key_generate(pki_rng_t *rng, const char *subject, dfnet_pki_key_t **out) {
  dfnet_pki_key_t *key = key_new();
  if (key == NULL)
    return pki_fail(DFNET_STATUS_INTERNAL, subject, "out of memory");
  int rc = mbedtls_pk_setup(&key->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (rc == 0)
    rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key->pk),
                             mbedtls_ctr_drbg_random, &rng->drbg);
  if (rc != 0) {
    dfnet_pki_key_free(key);
    return pki_fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "generating a P-256 key");
  }
  *out = key;
  return DFNET_STATUS_OK;
}

/* "YYYYMMDDhhmmss" in UTC, as mbedtls_x509write_crt_set_validity wants it. */
static bool format_x509_time(time_t t, char out[32]) {
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1950 || tm.tm_year + 1900 > 9999)
    return false;
  snprintf(out, 32, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec);
  return true;
}

static time_t x509_time_to_time_t(const mbedtls_x509_time *xt) {
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

/* Copy a DN attribute value into out (size DFNET_PKI_NAME_MAX + 1); "" when absent or too
 * long. */
static void name_copy(const mbedtls_x509_name *name, const char *oid, size_t oid_len, char *out) {
  out[0] = '\0';
  const mbedtls_x509_buf *val = name_find(name, oid, oid_len);
  if (val == NULL || val->len > DFNET_PKI_NAME_MAX || memchr(val->p, 0, val->len) != NULL)
    return;
  memcpy(out, val->p, val->len);
  out[val->len] = '\0';
}

/* The CA's subject as a DN string for mbedtls_x509write_crt_set_issuer_name, so that the
 * leaf's issuer equals it byte for byte in what chain building compares (RFC 5280 §7.1). */
static __attribute__((warn_unused_result)) dfnet_status_t issuer_string(const mbedtls_x509_crt *ca,
                                                                        char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (const mbedtls_x509_name *n = &ca->subject; n != NULL; n = n->next) {
    if (n->oid.p == NULL)
      continue;
    const char *short_name = NULL;
    if (mbedtls_oid_get_attr_short_name(&n->oid, &short_name) != 0)
      return pki_fail(DFNET_STATUS_FAILED_PRECONDITION, NULL,
                      "the CA's subject has an attribute dfnet cannot copy into an issuer");
    int w = snprintf(out + used, size - used, "%s%s=", used ? "," : "", short_name);
    if (w < 0 || (size_t)w >= size - used)
      goto too_long;
    used += (size_t)w;
    for (size_t i = 0; i < n->val.len; i++) {
      unsigned char c = n->val.p[i];
      if (c == 0)
        return pki_fail(DFNET_STATUS_FAILED_PRECONDITION, NULL,
                        "the CA's subject holds a NUL byte");
      if (used + 3 >= size)
        goto too_long;
      if (c == ',')
        out[used++] = '\\';
      out[used++] = (char)c;
    }
    out[used] = '\0';
  }
  return DFNET_STATUS_OK;
too_long:
  return pki_fail(DFNET_STATUS_FAILED_PRECONDITION, NULL, "the CA's subject is too long");
}

/* extendedKeyUsage ::= SEQUENCE { serverAuth, clientAuth } (RFC 5280 §4.2.1.12). */
static int write_eku(unsigned char *buf, size_t size, unsigned char **start) {
  unsigned char *p = buf + size;
  size_t len = 0;
  int rc;
  /* Written backwards: last element first. */
  if ((rc = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH))) < 0)
    return rc;
  len += (size_t)rc;
  if ((rc = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))) < 0)
    return rc;
  len += (size_t)rc;
  if ((rc = mbedtls_asn1_write_len(&p, buf, len)) < 0)
    return rc;
  len += (size_t)rc;
  if ((rc = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
    return rc;
  len += (size_t)rc;
  *start = p;
  return (int)len;
}

/* One parsed SAN for writing: a DNS name or 4/16 address octets. */
typedef struct san_entry {
  bool is_ip;
  size_t len;
  unsigned char bytes[DFNET_PKI_SAN_MAX];
} san_entry_t;

static __attribute__((warn_unused_result)) dfnet_status_t
sans_parse(const char *const *sans, size_t count, const char *subject, san_entry_t *out) {
  if (count > DFNET_PKI_MAX_SANS)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, subject,
                    "%zu subjectAltName entries, at most %d", count, DFNET_PKI_MAX_SANS);
  if (count > 0 && sans == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, subject, "SAN list is NULL");
  for (size_t i = 0; i < count; i++) {
    const char *s = sans[i];
    if (s == NULL)
      return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, subject, "SAN %zu is NULL", i);
    if (inet_pton(AF_INET, s, out[i].bytes) == 1) {
      out[i].is_ip = true;
      out[i].len = 4;
    } else if (inet_pton(AF_INET6, s, out[i].bytes) == 1) {
      out[i].is_ip = true;
      out[i].len = 16;
    } else if (dns_name_valid(s)) {
      out[i].is_ip = false;
      out[i].len = strlen(s);
      memcpy(out[i].bytes, s, out[i].len);
    } else {
      return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, subject,
                      "SAN \"%.64s\" is neither an IP address nor a DNS name", s);
    }
  }
  return DFNET_STATUS_OK;
}

/* subjectAltName ::= GeneralNames ::= SEQUENCE OF GeneralName, with
 *   dNSName [2] IMPLICIT IA5String, iPAddress [7] IMPLICIT OCTET STRING (RFC 5280 §4.2.1.6).
 * mbedTLS 2.28 has no writer for it; this is the DER by hand. */
static int write_san(const san_entry_t *sans, size_t count, unsigned char *buf, size_t size,
                     unsigned char **start) {
  unsigned char *p = buf + size;
  size_t len = 0;
  int rc;
  for (size_t i = count; i-- > 0;) {
    size_t entry = 0;
    if ((rc = mbedtls_asn1_write_raw_buffer(&p, buf, sans[i].bytes, sans[i].len)) < 0)
      return rc;
    entry += (size_t)rc;
    if ((rc = mbedtls_asn1_write_len(&p, buf, sans[i].len)) < 0)
      return rc;
    entry += (size_t)rc;
    if ((rc = mbedtls_asn1_write_tag(&p, buf,
                                     MBEDTLS_ASN1_CONTEXT_SPECIFIC | (sans[i].is_ip ? 7 : 2))) < 0)
      return rc;
    entry += (size_t)rc;
    len += entry;
  }
  if ((rc = mbedtls_asn1_write_len(&p, buf, len)) < 0)
    return rc;
  len += (size_t)rc;
  if ((rc = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
    return rc;
  len += (size_t)rc;
  *start = p;
  return (int)len;
}

/* Everything that differs between a CA and a leaf. */
typedef struct cert_spec {
  const char *subject_dn;  /* "CN=...,OU=...,O=dfnet" */
  const char *log_subject; /* name for log lines */
  time_t not_before, not_after;
  bool is_ca;
  const san_entry_t *sans;
  size_t san_count;
} cert_spec_t;

/* Sign a certificate for subject_key with issuer_key (issuer_name NULL: self-signed) and
 * parse it back into a new dfnet_pki_cert_t. */
static __attribute__((warn_unused_result)) dfnet_status_t
cert_build(pki_rng_t *rng, const cert_spec_t *spec, dfnet_pki_key_t *subject_key,
           const char *issuer_name, dfnet_pki_key_t *issuer_key, dfnet_pki_cert_t **out) {
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  const char *what = "";
  int rc = 0;
  char nb[32], na[32];
  unsigned char serial_bytes[PKI_SERIAL_LEN];
  unsigned char ext[1024], *ext_start = NULL;
  unsigned char *der = NULL;
  mbedtls_mpi serial;
  mbedtls_x509write_cert w;
  mbedtls_mpi_init(&serial);
  mbedtls_x509write_crt_init(&w);

  if (!format_x509_time(spec->not_before, nb) || !format_x509_time(spec->not_after, na)) {
    st = pki_fail(DFNET_STATUS_INVALID_ARGUMENT, spec->log_subject,
                  "validity outside the years 1950..9999");
    goto writer_made;
  }
  /* Serial: 16 random octets, top bit clear (positive), next bit set (non-zero, full
   * length) — RFC 5280 §4.1.2.2. */
  what = "drawing a serial number";
  if ((rc = mbedtls_ctr_drbg_random(&rng->drbg, serial_bytes, sizeof serial_bytes)) != 0)
    goto mbedtls_failed;
  serial_bytes[0] = (unsigned char)((serial_bytes[0] & 0x7f) | 0x40);
  if ((rc = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes)) != 0)
    goto mbedtls_failed;

  mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&w, &subject_key->pk);
  mbedtls_x509write_crt_set_issuer_key(&w, &issuer_key->pk);
  what = "setting the serial number";
  if ((rc = mbedtls_x509write_crt_set_serial(&w, &serial)) != 0)
    goto mbedtls_failed;
  what = "setting the validity";
  if ((rc = mbedtls_x509write_crt_set_validity(&w, nb, na)) != 0)
    goto mbedtls_failed;
  what = "setting the subject name";
  if ((rc = mbedtls_x509write_crt_set_subject_name(&w, spec->subject_dn)) != 0)
    goto mbedtls_failed;
  what = "setting the issuer name";
  if ((rc = mbedtls_x509write_crt_set_issuer_name(&w, issuer_name != NULL ? issuer_name
                                                                          : spec->subject_dn)) != 0)
    goto mbedtls_failed;
  what = "writing basicConstraints";
  if ((rc = mbedtls_x509write_crt_set_basic_constraints(&w, spec->is_ca ? 1 : 0,
                                                        spec->is_ca ? 0 : -1)) != 0)
    goto mbedtls_failed;
  what = "writing keyUsage";
  if ((rc = mbedtls_x509write_crt_set_key_usage(
           &w, spec->is_ca ? (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)
                           : MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0)
    goto mbedtls_failed;
  what = "writing subjectKeyIdentifier";
  if ((rc = mbedtls_x509write_crt_set_subject_key_identifier(&w)) != 0)
    goto mbedtls_failed;
  what = "writing authorityKeyIdentifier";
  if ((rc = mbedtls_x509write_crt_set_authority_key_identifier(&w)) != 0)
    goto mbedtls_failed;
  if (!spec->is_ca) {
    what = "writing extendedKeyUsage";
    if ((rc = write_eku(ext, sizeof ext, &ext_start)) < 0)
      goto mbedtls_failed;
    if ((rc = mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                  0, ext_start, (size_t)rc)) != 0)
      goto mbedtls_failed;
  }
  if (spec->san_count > 0) {
    what = "writing subjectAltName";
    if ((rc = write_san(spec->sans, spec->san_count, ext, sizeof ext, &ext_start)) < 0)
      goto mbedtls_failed;
    if ((rc = mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                  ext_start, (size_t)rc)) != 0)
      goto mbedtls_failed;
  }

  der = malloc(PKI_DER_MAX);
  if (der == NULL) {
    st = pki_fail(DFNET_STATUS_INTERNAL, spec->log_subject, "out of memory");
    goto writer_made;
  }
  what = "signing the certificate";
  if ((rc = mbedtls_x509write_crt_der(&w, der, PKI_DER_MAX, mbedtls_ctr_drbg_random, &rng->drbg)) <
      0)
    goto mbedtls_failed;
  size_t der_len = (size_t)rc;
  dfnet_pki_cert_t *cert = cert_new();
  if (cert == NULL) {
    st = pki_fail(DFNET_STATUS_INTERNAL, spec->log_subject, "out of memory");
    goto der_made;
  }
  what = "parsing the certificate just written";
  if ((rc = mbedtls_x509_crt_parse_der(&cert->crt, der + PKI_DER_MAX - der_len, der_len)) != 0) {
    dfnet_pki_cert_free(cert);
    goto mbedtls_failed;
  }
  *out = cert;
  st = DFNET_STATUS_OK;
  goto der_made;

mbedtls_failed:
  st = pki_fail_mbedtls(rc, DFNET_STATUS_INTERNAL, spec->log_subject, what);
der_made:
  free(der);
writer_made:
  mbedtls_x509write_crt_free(&w);
  mbedtls_mpi_free(&serial);
  return st;
}

dfnet_status_t dfnet_pki_ca_create(const char *cn, dfnet_pki_cert_t **cert_out,
                                   dfnet_pki_key_t **key_out) {
  if (cert_out == NULL || key_out == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "creating a CA: NULL output");
  *cert_out = NULL;
  *key_out = NULL;
  if (cn == NULL || !ca_cn_valid(cn))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL,
                    "creating a CA: CN \"%.80s\" must be 1..64 printable characters without "
                    ", + = \\ \" < > ; #",
                    cn ? cn : "(null)");
  char dn[DFNET_PKI_NAME_MAX + 32];
  snprintf(dn, sizeof dn, "CN=%s,O=dfnet", cn);
  time_t now = time(NULL);
  cert_spec_t spec = {
      .subject_dn = dn,
      .log_subject = cn,
      .not_before = now - PKI_SKEW_SECONDS,
      .not_after = now + (time_t)DFNET_PKI_CA_DAYS * 86400,
      .is_ca = true,
  };
  pki_rng_t rng;
  dfnet_pki_key_t *key = NULL;
  dfnet_status_t st = rng_init(&rng, cn);
  if (st != DFNET_STATUS_OK)
    goto rng_made;
  st = key_generate(&rng, cn, &key);
  if (st != DFNET_STATUS_OK)
    goto rng_made;
  st = cert_build(&rng, &spec, key, NULL, key, cert_out);
  if (st != DFNET_STATUS_OK)
    goto key_made;
  *key_out = key;
  DFNET_LOGI(PKI_LOG, cn, "created a CA (ECDSA P-256, %d days)", DFNET_PKI_CA_DAYS);
  goto rng_made;

key_made:
  dfnet_pki_key_free(key);
rng_made:
  rng_free(&rng);
  return st;
}

/* Check a leaf's parameters and work out its validity window. */
static __attribute__((warn_unused_result)) dfnet_status_t
leaf_params_check(const dfnet_pki_cert_t *ca, const dfnet_pki_leaf_params_t *p, time_t *not_before,
                  time_t *not_after) {
  const char *name = p->name ? p->name : "(null)";
  if (!dfnet_pki_name_valid(p->name))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL,
                    "certificate name \"%.80s\": 1..64 characters of [A-Za-z0-9._-], not "
                    "starting with '.' or '-'",
                    name);
  if (!role_valid(p->role))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, name,
                    "role %d is not host, admin, operator, viewer or manager", (int)p->role);
  if (p->not_after != 0) {
    if (p->not_before >= p->not_after)
      return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, name,
                      "explicit validity: not_before must be before not_after");
    *not_before = p->not_before;
    *not_after = p->not_after;
    return DFNET_STATUS_OK;
  }
  if (p->days < 1 || p->days > DFNET_PKI_MAX_DAYS)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, name, "validity of %u days: 1..%d", p->days,
                    DFNET_PKI_MAX_DAYS);
  time_t now = time(NULL);
  *not_before = now - PKI_SKEW_SECONDS;
  *not_after = now + (time_t)p->days * 86400;
  time_t ca_end = x509_time_to_time_t(&ca->crt.valid_to);
  if (ca_end != (time_t)-1 && *not_after > ca_end) {
    DFNET_LOGW(PKI_LOG, name, "validity cut to the CA's end");
    *not_after = ca_end;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_pki_leaf_issue(const dfnet_pki_cert_t *ca_cert, const dfnet_pki_key_t *ca_key,
                                    const dfnet_pki_leaf_params_t *params,
                                    dfnet_pki_cert_t **cert_out, dfnet_pki_key_t **key_out) {
  if (cert_out == NULL || key_out == NULL || ca_cert == NULL || ca_key == NULL || params == NULL) {
    if (cert_out)
      *cert_out = NULL;
    if (key_out)
      *key_out = NULL;
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "issuing a certificate: NULL argument");
  }
  *cert_out = NULL;
  *key_out = NULL;
  time_t nb = 0, na = 0;
  dfnet_status_t st = leaf_params_check(ca_cert, params, &nb, &na);
  if (st != DFNET_STATUS_OK)
    return st;
  const char *name = params->name;
  san_entry_t *sans = calloc(DFNET_PKI_MAX_SANS, sizeof *sans);
  if (sans == NULL)
    return pki_fail(DFNET_STATUS_INTERNAL, name, "out of memory");
  if ((st = sans_parse(params->sans, params->san_count, name, sans)) != DFNET_STATUS_OK)
    goto sans_made;
  if (!ca_cert->crt.ca_istrue) {
    st = pki_fail(DFNET_STATUS_FAILED_PRECONDITION, name,
                  "the issuing certificate is not a CA (basicConstraints CA:false)");
    goto sans_made;
  }
  if ((st = dfnet_pki_key_check_pair(ca_cert, ca_key)) != DFNET_STATUS_OK)
    goto sans_made;
  char issuer[512];
  if ((st = issuer_string(&ca_cert->crt, issuer, sizeof issuer)) != DFNET_STATUS_OK)
    goto sans_made;
  char dn[3 * DFNET_PKI_NAME_MAX + 32];
  snprintf(dn, sizeof dn, "CN=%s,OU=%s,O=dfnet", name, dfnet_pki_role_str(params->role));
  cert_spec_t spec = {
      .subject_dn = dn,
      .log_subject = name,
      .not_before = nb,
      .not_after = na,
      .is_ca = false,
      .sans = sans,
      .san_count = params->san_count,
  };

  pki_rng_t rng;
  dfnet_pki_key_t *key = NULL;
  if ((st = rng_init(&rng, name)) != DFNET_STATUS_OK)
    goto rng_made;
  if ((st = key_generate(&rng, name, &key)) != DFNET_STATUS_OK)
    goto rng_made;
  /* The writer takes non-const keys; it only reads them. */
  st = cert_build(&rng, &spec, key, issuer, (dfnet_pki_key_t *)ca_key, cert_out);
  if (st != DFNET_STATUS_OK)
    goto key_made;
  *key_out = key;
  DFNET_LOGI(PKI_LOG, name, "issued a certificate, role %s, %zu SANs",
             dfnet_pki_role_str(params->role), params->san_count);
  goto rng_made;

key_made:
  dfnet_pki_key_free(key);
rng_made:
  rng_free(&rng);
sans_made:
  free(sans);
  return st;
}

/* ---- Files ------------------------------------------------------------------------ */

static int write_all(int fd, const unsigned char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Make a rename in path's directory durable (best effort: a failure here loses nothing
 * that is not already on disk under the old name, so it is only logged). */
static void dir_sync(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(dir, sizeof dir, ".");
  else if (slash == path)
    snprintf(dir, sizeof dir, "/");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    DFNET_LOGW(PKI_LOG, dir, "fsync of the directory: %s (errno %d)", strerror(errno), errno);
  if (fd >= 0)
    close(fd);
}

/* Atomically replace `path` with the parts' bytes, final mode `mode`. The temporary file
 * is created 0600 by mkstemp, so nothing is readable by others before fchmod. */
static __attribute__((warn_unused_result)) dfnet_status_t
file_write_atomic(const char *path, const unsigned char *const *parts, const size_t *lens,
                  size_t nparts, mode_t mode) {
  size_t plen = strlen(path);
  if (plen == 0 || plen > PATH_MAX - 16)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "path too long or empty");
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return pki_fail_errno(errno, path, "creating a temporary file");
  const char *what = "writing";
  for (size_t i = 0; i < nparts; i++) {
    if (write_all(fd, parts[i], lens[i]) != 0)
      goto io_failed;
  }
  what = "fsync";
  if (fsync(fd) != 0)
    goto io_failed;
  what = "chmod";
  if (fchmod(fd, mode) != 0)
    goto io_failed;
  what = "closing";
  if (close(fd) != 0) {
    fd = -1;
    goto io_failed;
  }
  fd = -1;
  what = "renaming into place";
  if (rename(tmp, path) != 0)
    goto io_failed;
  dir_sync(path);
  return DFNET_STATUS_OK;

io_failed : {
  int err = errno;
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  return pki_fail_errno(err, path, what);
}
}

/* PEM text of the first certificate, NUL-terminated; *len excludes the NUL. */
static __attribute__((warn_unused_result)) dfnet_status_t cert_pem(const dfnet_pki_cert_t *cert,
                                                                   const char *subject,
                                                                   unsigned char *buf, size_t size,
                                                                   size_t *len) {
  size_t olen = 0;
  int rc = mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                    cert->crt.raw.p, cert->crt.raw.len, buf, size, &olen);
  if (rc != 0)
    return pki_fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "writing certificate PEM");
  *len = olen > 0 ? olen - 1 : 0; /* olen counts the NUL */
  return DFNET_STATUS_OK;
}

static __attribute__((warn_unused_result)) dfnet_status_t key_pem(const dfnet_pki_key_t *key,
                                                                  const char *subject,
                                                                  unsigned char *buf, size_t size,
                                                                  size_t *len) {
  /* mbedtls_pk_write_key_pem takes a non-const context; it only reads it. */
  int rc = mbedtls_pk_write_key_pem((mbedtls_pk_context *)&key->pk, buf, size);
  if (rc != 0)
    return pki_fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "writing key PEM");
  *len = strlen((const char *)buf);
  return DFNET_STATUS_OK;
}

#define PKI_PEM_MAX 8192

dfnet_status_t dfnet_pki_cert_write(const dfnet_pki_cert_t *cert, const char *path) {
  if (cert == NULL || path == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "writing a certificate: NULL argument");
  unsigned char pem[PKI_PEM_MAX];
  size_t len = 0;
  dfnet_status_t st = cert_pem(cert, path, pem, sizeof pem, &len);
  if (st != DFNET_STATUS_OK)
    return st;
  const unsigned char *parts[] = {pem};
  return file_write_atomic(path, parts, &len, 1, 0644);
}

dfnet_status_t dfnet_pki_key_write(const dfnet_pki_key_t *key, const char *path) {
  if (key == NULL || path == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "writing a key: NULL argument");
  unsigned char pem[PKI_PEM_MAX];
  size_t len = 0;
  dfnet_status_t st = key_pem(key, path, pem, sizeof pem, &len);
  if (st == DFNET_STATUS_OK) {
    const unsigned char *parts[] = {pem};
    st = file_write_atomic(path, parts, &len, 1, 0600);
  }
  mbedtls_platform_zeroize(pem, sizeof pem);
  return st;
}

dfnet_status_t dfnet_pki_pem_write(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key,
                                   const char *path) {
  if (cert == NULL || key == NULL || path == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "writing a PEM: NULL argument");
  unsigned char cpem[PKI_PEM_MAX], kpem[PKI_PEM_MAX];
  size_t lens[2];
  dfnet_status_t st = cert_pem(cert, path, cpem, sizeof cpem, &lens[0]);
  if (st == DFNET_STATUS_OK)
    st = key_pem(key, path, kpem, sizeof kpem, &lens[1]);
  if (st == DFNET_STATUS_OK) {
    const unsigned char *parts[] = {cpem, kpem};
    st = file_write_atomic(path, parts, lens, 2, 0600);
  }
  mbedtls_platform_zeroize(kpem, sizeof kpem);
  return st;
}

/* Read a whole file (at most PKI_FILE_MAX) into a new NUL-terminated buffer.
 * *len excludes the NUL; *mode gets the file's mode. */
static __attribute__((warn_unused_result)) dfnet_status_t
file_read(const char *path, unsigned char **out, size_t *len, mode_t *mode) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return pki_fail_errno(errno, path, "opening");
  dfnet_status_t st;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = pki_fail_errno(errno, path, "stat");
    goto fd_opened;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "not a regular file");
    goto fd_opened;
  }
  if (sb.st_size > PKI_FILE_MAX) {
    st = pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "file of %lld bytes, over %d",
                  (long long)sb.st_size, PKI_FILE_MAX);
    goto fd_opened;
  }
  size_t cap = (size_t)sb.st_size + 1;
  unsigned char *buf = malloc(cap);
  if (buf == NULL) {
    st = pki_fail(DFNET_STATUS_INTERNAL, path, "out of memory");
    goto fd_opened;
  }
  size_t have = 0;
  while (have < cap - 1) {
    ssize_t n = read(fd, buf + have, cap - 1 - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      st = pki_fail_errno(errno, path, "reading");
      mbedtls_platform_zeroize(buf, cap);
      free(buf);
      goto fd_opened;
    }
    if (n == 0)
      break; /* the file shrank; take what is there */
    have += (size_t)n;
  }
  buf[have] = '\0';
  *out = buf;
  *len = have;
  *mode = sb.st_mode;
  st = DFNET_STATUS_OK;
fd_opened:
  close(fd);
  return st;
}

dfnet_status_t dfnet_pki_cert_load(const char *path, dfnet_pki_cert_t **out) {
  if (out == NULL || path == NULL) {
    if (out)
      *out = NULL;
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "loading a certificate: NULL argument");
  }
  *out = NULL;
  unsigned char *buf;
  size_t len;
  mode_t mode;
  dfnet_status_t st = file_read(path, &buf, &len, &mode);
  if (st != DFNET_STATUS_OK)
    return st;
  if (strstr((const char *)buf, "-----BEGIN CERTIFICATE-----") == NULL) {
    st = pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path,
                  "no PEM certificate (\"-----BEGIN CERTIFICATE-----\") in the file");
    goto buf_read;
  }
  dfnet_pki_cert_t *cert = cert_new();
  if (cert == NULL) {
    st = pki_fail(DFNET_STATUS_INTERNAL, path, "out of memory");
    goto buf_read;
  }
  int rc = mbedtls_x509_crt_parse(&cert->crt, buf, len + 1);
  if (rc != 0) {
    dfnet_pki_cert_free(cert);
    if (rc > 0)
      st = pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path,
                    "%d of the file's certificates could not be parsed", rc);
    else
      st = pki_fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, path, "parsing the certificate");
    goto buf_read;
  }
  *out = cert;
buf_read:
  free(buf);
  return st;
}

dfnet_status_t dfnet_pki_cert_parse(const uint8_t *data, size_t len, dfnet_pki_cert_t **out) {
  if (out == NULL || data == NULL || len == 0 || len > PKI_FILE_MAX) {
    if (out)
      *out = NULL;
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL,
                    "parsing a certificate: NULL, empty or over 1 MiB");
  }
  *out = NULL;
  dfnet_pki_cert_t *cert = cert_new();
  if (cert == NULL)
    return pki_fail(DFNET_STATUS_INTERNAL, NULL, "out of memory");
  int rc;
  bool pem = len >= 11 && memmem(data, len, "-----BEGIN ", 11) != NULL;
  if (pem) {
    /* mbedTLS wants PEM NUL-terminated, with the NUL counted. */
    unsigned char *copy = malloc(len + 1);
    if (copy == NULL) {
      dfnet_pki_cert_free(cert);
      return pki_fail(DFNET_STATUS_INTERNAL, NULL, "out of memory");
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    rc = mbedtls_x509_crt_parse(&cert->crt, copy, len + 1);
    free(copy);
  } else {
    rc = mbedtls_x509_crt_parse_der(&cert->crt, data, len);
  }
  if (rc != 0) {
    dfnet_pki_cert_free(cert);
    if (rc > 0)
      return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "%d certificates could not be parsed",
                      rc);
    return pki_fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, NULL, "parsing a certificate");
  }
  *out = cert;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_pki_key_load(const char *path, dfnet_pki_key_t **out) {
  if (out == NULL || path == NULL) {
    if (out)
      *out = NULL;
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "loading a key: NULL argument");
  }
  *out = NULL;
  unsigned char *buf;
  size_t len;
  mode_t mode;
  dfnet_status_t st = file_read(path, &buf, &len, &mode);
  if (st != DFNET_STATUS_OK)
    return st;
  dfnet_pki_key_t *key = key_new();
  if (key == NULL) {
    st = pki_fail(DFNET_STATUS_INTERNAL, path, "out of memory");
    goto buf_read;
  }
  int rc = mbedtls_pk_parse_key(&key->pk, buf, len + 1, NULL, 0);
  if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
    st = pki_fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, path,
                          "the key is passphrase-protected; dfnet reads unencrypted keys");
    goto key_made;
  }
  if (rc != 0) {
    st = pki_fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, path, "parsing the private key");
    goto key_made;
  }
  if (!mbedtls_pk_can_do(&key->pk, MBEDTLS_PK_ECKEY) ||
      mbedtls_pk_ec(key->pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
    st = pki_fail(DFNET_STATUS_INVALID_ARGUMENT, path, "a %s key; dfnet keys are ECDSA P-256",
                  mbedtls_pk_get_name(&key->pk));
    goto key_made;
  }
  if ((mode & 077) != 0)
    DFNET_LOGW(PKI_LOG, path, "private key file is readable by others (mode %04o); use 0600",
               (unsigned)(mode & 07777));
  *out = key;
  key = NULL;
key_made:
  dfnet_pki_key_free(key);
buf_read:
  mbedtls_platform_zeroize(buf, len + 1);
  free(buf);
  return st;
}

static void cert_cn(const dfnet_pki_cert_t *cert, char out[DFNET_PKI_NAME_MAX + 1]) {
  name_copy(&cert->crt.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), out);
}

dfnet_status_t dfnet_pki_key_check_pair(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key) {
  if (cert == NULL || key == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "checking a key pair: NULL argument");
  int rc = mbedtls_pk_check_pair(&cert->crt.pk, &key->pk);
  if (rc != 0) {
    char cn[DFNET_PKI_NAME_MAX + 1];
    cert_cn(cert, cn);
    return pki_fail_mbedtls(rc, DFNET_STATUS_FAILED_PRECONDITION, cn,
                            "the private key does not match the certificate");
  }
  return DFNET_STATUS_OK;
}

/* ---- Reading certificates ------------------------------------------------------------ */

/* mbedtls_x509_crt_verify, its flags sorted into dfnet_pki_verify_reason_t bits. Logs
 * nothing. Returns the reasons (0: verified). */
static uint32_t verify_quiet(const dfnet_pki_cert_t *ca, const dfnet_pki_cert_t *leaf, int *rc_out,
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
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "verifying: NULL argument");
  int rc;
  uint32_t flags;
  uint32_t reasons = verify_quiet(ca, leaf, &rc, &flags);
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
  cert_cn(leaf, cn);
  DFNET_LOGW(PKI_LOG, cn[0] ? cn : NULL,
             "certificate refused: %s (mbedTLS -0x%04x, flags 0x%08x) (UNAUTHENTICATED)", info,
             (unsigned)(rc < 0 ? -rc : rc), flags);
  return DFNET_STATUS_UNAUTHENTICATED;
}

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
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "certificate info: NULL argument");
  memset(info, 0, sizeof *info);
  const mbedtls_x509_crt *crt = &cert->crt;
  cert_cn(cert, info->cn);
  name_copy(&crt->subject, MBEDTLS_OID_AT_ORG_UNIT, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT),
            info->ou);
  name_copy(&crt->issuer, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), info->issuer_cn);
  if (dfnet_pki_role_parse(info->ou, &info->role) != DFNET_STATUS_OK)
    info->role = DFNET_PKI_ROLE_NONE;
  size_t s = 0;
  for (size_t i = 0; i < crt->serial.len && s + 2 < sizeof info->serial_hex; i++)
    s += (size_t)snprintf(info->serial_hex + s, sizeof info->serial_hex - s, "%02x",
                          crt->serial.p[i]);
  info->not_before = x509_time_to_time_t(&crt->valid_from);
  info->not_after = x509_time_to_time_t(&crt->valid_to);
  info->is_ca = crt->ca_istrue != 0;
  int rc = san_walk(crt, san_collect, info);
  if (rc != 0)
    return pki_fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, info->cn,
                            "malformed subjectAltName");
  return DFNET_STATUS_OK;
}

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
  name_copy(&crt->subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), cn);
  return cn[0] != '\0' && strcasecmp(cn, host) == 0;
}

/* ---- The manager's state directory -------------------------------------------------- */

static __attribute__((warn_unused_result)) dfnet_status_t
path_join(char *out, size_t size, const char *dir, const char *name, const char *ext) {
  int n = snprintf(out, size, "%s/%s%s", dir, name, ext ? ext : "");
  if (n < 0 || (size_t)n >= size)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, dir, "path too long");
  return DFNET_STATUS_OK;
}

/* 1: exists, 0: does not, -1: error (logged, *st set). */
static int file_exists(const char *path, dfnet_status_t *st) {
  struct stat sb;
  if (stat(path, &sb) == 0)
    return 1;
  if (errno == ENOENT)
    return 0;
  *st = pki_fail_errno(errno, path, "stat");
  return -1;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static __attribute__((warn_unused_result)) dfnet_status_t dir_ensure(const char *dir) {
  if (mkdir(dir, 0700) == 0) {
    DFNET_LOGI(PKI_LOG, dir, "created directory");
    return DFNET_STATUS_OK;
  }
  if (errno == ENOENT) { /* a parent is missing: make it first */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    while (slash != NULL && slash > parent && slash[1] == '\0') { /* trailing slashes */
      *slash = '\0';
      slash = strrchr(parent, '/');
    }
    if (slash != NULL && slash > parent) {
      *slash = '\0';
      dfnet_status_t st = dir_ensure(parent);
      if (st != DFNET_STATUS_OK)
        return st;
      if (mkdir(dir, 0700) == 0) {
        DFNET_LOGI(PKI_LOG, dir, "created directory");
        return DFNET_STATUS_OK;
      }
    }
  }
  if (errno != EEXIST)
    return pki_fail_errno(errno, dir, "creating directory");
  struct stat sb;
  if (stat(dir, &sb) != 0)
    return pki_fail_errno(errno, dir, "stat");
  if (!S_ISDIR(sb.st_mode))
    return pki_fail(DFNET_STATUS_FAILED_PRECONDITION, dir, "exists and is not a directory");
  return DFNET_STATUS_OK;
}

/* Load a certificate and its key, and check they belong together. */
static __attribute__((warn_unused_result)) dfnet_status_t pair_load(const char *crt_path,
                                                                    const char *key_path,
                                                                    dfnet_pki_cert_t **cert,
                                                                    dfnet_pki_key_t **key) {
  dfnet_status_t st = dfnet_pki_cert_load(crt_path, cert);
  if (st != DFNET_STATUS_OK)
    return st;
  if ((st = dfnet_pki_key_load(key_path, key)) != DFNET_STATUS_OK)
    goto cert_loaded;
  if ((st = dfnet_pki_key_check_pair(*cert, *key)) != DFNET_STATUS_OK)
    goto key_loaded;
  return DFNET_STATUS_OK;
key_loaded:
  dfnet_pki_key_free(*key);
  *key = NULL;
cert_loaded:
  dfnet_pki_cert_free(*cert);
  *cert = NULL;
  return st;
}

/* How many of the files exist; -1 on a stat error (logged, *st set). */
static int count_existing(const char *const *paths, size_t n, dfnet_status_t *st) {
  int have = 0;
  for (size_t i = 0; i < n; i++) {
    int e = file_exists(paths[i], st);
    if (e < 0)
      return -1;
    have += e;
  }
  return have;
}

static __attribute__((warn_unused_result)) dfnet_status_t partial_set(const char *const *paths,
                                                                      size_t n, const char *what) {
  dfnet_status_t ignored = DFNET_STATUS_OK;
  for (size_t i = 0; i < n; i++) {
    if (file_exists(paths[i], &ignored) == 0)
      return pki_fail(DFNET_STATUS_FAILED_PRECONDITION, paths[i],
                      "missing while the rest of the %s is there; restore it or remove the "
                      "set to make a new one",
                      what);
  }
  return pki_fail(DFNET_STATUS_FAILED_PRECONDITION, paths[0], "incomplete %s", what);
}

/* The CA of a state directory: load it, or create it when neither file exists. */
static __attribute__((warn_unused_result)) dfnet_status_t
state_ca(const char *dir, const char *manager_name, bool *created, dfnet_pki_cert_t **ca,
         dfnet_pki_key_t **ca_key) {
  char crt_path[PATH_MAX], key_path[PATH_MAX];
  dfnet_status_t st;
  if ((st = path_join(crt_path, sizeof crt_path, dir, DFNET_PKI_CA_CERT_FILE, NULL)) != 0 ||
      (st = path_join(key_path, sizeof key_path, dir, DFNET_PKI_CA_KEY_FILE, NULL)) != 0)
    return st;
  const char *paths[] = {crt_path, key_path};
  int have = count_existing(paths, 2, &st);
  if (have < 0)
    return st;
  if (have == 2)
    return pair_load(crt_path, key_path, ca, ca_key);
  if (have == 1)
    return partial_set(paths, 2, "CA (ca.crt, ca.key)");
  char cn[DFNET_PKI_NAME_MAX + 16];
  snprintf(cn, sizeof cn, "dfnet CA %s", manager_name);
  if (strlen(cn) > DFNET_PKI_NAME_MAX)
    cn[DFNET_PKI_NAME_MAX] = '\0';
  if ((st = dfnet_pki_ca_create(cn, ca, ca_key)) != DFNET_STATUS_OK)
    return st;
  /* Key first: a ca.crt without its key would block the next init. */
  if ((st = dfnet_pki_key_write(*ca_key, key_path)) != DFNET_STATUS_OK ||
      (st = dfnet_pki_cert_write(*ca, crt_path)) != DFNET_STATUS_OK) {
    dfnet_pki_cert_free(*ca);
    dfnet_pki_key_free(*ca_key);
    *ca = NULL;
    *ca_key = NULL;
    return st;
  }
  *created = true;
  return DFNET_STATUS_OK;
}

/* Write <cert, key, cert+key> to three paths. */
static __attribute__((warn_unused_result)) dfnet_status_t
set_write(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key, const char *crt_path,
          const char *key_path, const char *pem_path) {
  dfnet_status_t st = dfnet_pki_key_write(key, key_path);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_pem_write(cert, key, pem_path);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_cert_write(cert, crt_path);
  return st;
}

static __attribute__((warn_unused_result)) dfnet_status_t
state_manager(const char *dir, const char *manager_name, const char *const *sans, size_t san_count,
              const dfnet_pki_cert_t *ca, const dfnet_pki_key_t *ca_key, bool *created) {
  char crt_path[PATH_MAX], key_path[PATH_MAX], pem_path[PATH_MAX];
  dfnet_status_t st;
  if ((st = path_join(crt_path, sizeof crt_path, dir, DFNET_PKI_MANAGER_CERT_FILE, NULL)) != 0 ||
      (st = path_join(key_path, sizeof key_path, dir, DFNET_PKI_MANAGER_KEY_FILE, NULL)) != 0 ||
      (st = path_join(pem_path, sizeof pem_path, dir, DFNET_PKI_MANAGER_PEM_FILE, NULL)) != 0)
    return st;
  const char *paths[] = {crt_path, key_path, pem_path};
  int have = count_existing(paths, 3, &st);
  if (have < 0)
    return st;
  if (have > 0 && have < 3)
    return partial_set(paths, 3, "manager certificate (manager.crt, .key, .pem)");
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_key_t *key = NULL;
  if (have == 3) {
    if ((st = pair_load(crt_path, key_path, &cert, &key)) != DFNET_STATUS_OK)
      return st;
    int rc;
    uint32_t flags;
    uint32_t reasons = verify_quiet(ca, cert, &rc, &flags);
    if (reasons &
        (DFNET_PKI_VERIFY_UNTRUSTED | DFNET_PKI_VERIFY_BAD_USAGE | DFNET_PKI_VERIFY_OTHER))
      st = pki_fail(DFNET_STATUS_FAILED_PRECONDITION, crt_path,
                    "not issued by this state directory's CA (mbedTLS flags 0x%08x)", flags);
    else if (reasons != 0) /* init leaves existing files alone, but says so */
      DFNET_LOGW(PKI_LOG, crt_path,
                 "the manager certificate is %s; remove manager.crt, .key and .pem and run "
                 "init again to renew it",
                 (reasons & DFNET_PKI_VERIFY_EXPIRED) ? "expired" : "not yet valid");
    goto pair_made;
  }
  const char *all[DFNET_PKI_MAX_SANS];
  all[0] = "localhost";
  all[1] = "127.0.0.1";
  all[2] = "::1";
  for (size_t i = 0; i < san_count; i++)
    all[3 + i] = sans[i];
  dfnet_pki_leaf_params_t p = {
      .name = manager_name,
      .role = DFNET_PKI_ROLE_MANAGER,
      .sans = all,
      .san_count = 3 + san_count,
      .days = DFNET_PKI_MANAGER_DAYS,
  };
  if ((st = dfnet_pki_leaf_issue(ca, ca_key, &p, &cert, &key)) != DFNET_STATUS_OK)
    return st;
  if ((st = set_write(cert, key, crt_path, key_path, pem_path)) == DFNET_STATUS_OK)
    *created = true;
pair_made:
  dfnet_pki_cert_free(cert);
  dfnet_pki_key_free(key);
  return st;
}

dfnet_status_t dfnet_pki_init_state_dir(const char *dir, const char *manager_name,
                                        const char *const *sans, size_t san_count,
                                        bool *created_out) {
  if (created_out)
    *created_out = false;
  if (dir == NULL || dir[0] == '\0')
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "init: no state directory");
  if (!dfnet_pki_name_valid(manager_name))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, dir,
                    "init: manager name \"%.80s\": 1..64 characters of [A-Za-z0-9._-], not "
                    "starting with '.' or '-'",
                    manager_name ? manager_name : "(null)");
  if (san_count > DFNET_PKI_MAX_SANS - 3 || (san_count > 0 && sans == NULL))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, dir,
                    "init: %zu extra SANs (at most %d, and not NULL)", san_count,
                    DFNET_PKI_MAX_SANS - 3);
  /* Check the SANs before anything is written. */
  san_entry_t *check = calloc(DFNET_PKI_MAX_SANS, sizeof *check);
  if (check == NULL)
    return pki_fail(DFNET_STATUS_INTERNAL, dir, "out of memory");
  dfnet_status_t st = sans_parse(sans, san_count, manager_name, check);
  free(check);
  if (st != DFNET_STATUS_OK)
    return st;
  if ((st = dir_ensure(dir)) != DFNET_STATUS_OK)
    return st;
  bool created = false;
  dfnet_pki_cert_t *ca = NULL;
  dfnet_pki_key_t *ca_key = NULL;
  if ((st = state_ca(dir, manager_name, &created, &ca, &ca_key)) != DFNET_STATUS_OK)
    return st;
  st = state_manager(dir, manager_name, sans, san_count, ca, ca_key, &created);
  dfnet_pki_cert_free(ca);
  dfnet_pki_key_free(ca_key);
  if (created_out)
    *created_out = created;
  if (st == DFNET_STATUS_OK)
    DFNET_LOGI(PKI_LOG, dir, created ? "PKI initialised" : "PKI already initialised");
  return st;
}

/* Is <path> absent, or a certificate whose DER equals ca's? 1 absent, 0 same, -1 differs or
 * error (logged, *st set). */
static int ca_copy_state(const char *path, const dfnet_pki_cert_t *ca, dfnet_status_t *st) {
  int e = file_exists(path, st);
  if (e <= 0)
    return e < 0 ? -1 : 1;
  dfnet_pki_cert_t *there = NULL;
  if ((*st = dfnet_pki_cert_load(path, &there)) != DFNET_STATUS_OK)
    return -1;
  bool same = there->crt.raw.len == ca->crt.raw.len &&
              memcmp(there->crt.raw.p, ca->crt.raw.p, ca->crt.raw.len) == 0;
  dfnet_pki_cert_free(there);
  if (same)
    return 0;
  *st = pki_fail(DFNET_STATUS_ALREADY_EXISTS, path, "holds another CA's certificate");
  return -1;
}

dfnet_status_t dfnet_pki_issue_to_dir(const char *state_dir, dfnet_pki_role_t role,
                                      const char *name, const char *out_dir,
                                      const char *const *sans, size_t san_count, unsigned days) {
  if (state_dir == NULL || out_dir == NULL)
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, name, "issue: NULL directory");
  if (role == DFNET_PKI_ROLE_MANAGER || !role_valid(role))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, name,
                    "issue: role must be host, admin, operator or viewer");
  if (!dfnet_pki_name_valid(name))
    return pki_fail(DFNET_STATUS_INVALID_ARGUMENT, NULL,
                    "issue: name \"%.80s\": 1..64 characters of [A-Za-z0-9._-], not starting "
                    "with '.' or '-'",
                    name ? name : "(null)");
  char ca_crt[PATH_MAX], ca_key_path[PATH_MAX], crt_path[PATH_MAX], key_path[PATH_MAX],
      pem_path[PATH_MAX], ca_copy[PATH_MAX];
  dfnet_status_t st;
  if ((st = path_join(ca_crt, sizeof ca_crt, state_dir, DFNET_PKI_CA_CERT_FILE, NULL)) != 0 ||
      (st = path_join(ca_key_path, sizeof ca_key_path, state_dir, DFNET_PKI_CA_KEY_FILE, NULL)) !=
          0 ||
      (st = path_join(crt_path, sizeof crt_path, out_dir, name, ".crt")) != 0 ||
      (st = path_join(key_path, sizeof key_path, out_dir, name, ".key")) != 0 ||
      (st = path_join(pem_path, sizeof pem_path, out_dir, name, ".pem")) != 0 ||
      (st = path_join(ca_copy, sizeof ca_copy, out_dir, DFNET_PKI_CA_CERT_FILE, NULL)) != 0)
    return st;

  dfnet_pki_cert_t *ca = NULL, *cert = NULL;
  dfnet_pki_key_t *ca_key = NULL, *key = NULL;
  if ((st = pair_load(ca_crt, ca_key_path, &ca, &ca_key)) != DFNET_STATUS_OK)
    return st;
  if ((st = dir_ensure(out_dir)) != DFNET_STATUS_OK)
    goto ca_loaded;
  const char *outputs[] = {crt_path, key_path, pem_path};
  for (size_t i = 0; i < 3; i++) {
    int e = file_exists(outputs[i], &st);
    if (e < 0)
      goto ca_loaded;
    if (e > 0) {
      st = pki_fail(DFNET_STATUS_ALREADY_EXISTS, outputs[i],
                    "already exists; remove it to issue a new certificate for %s", name);
      goto ca_loaded;
    }
  }
  int ca_state = ca_copy_state(ca_copy, ca, &st);
  if (ca_state < 0)
    goto ca_loaded;
  dfnet_pki_leaf_params_t p = {
      .name = name, .role = role, .sans = sans, .san_count = san_count, .days = days};
  if ((st = dfnet_pki_leaf_issue(ca, ca_key, &p, &cert, &key)) != DFNET_STATUS_OK)
    goto ca_loaded;
  if ((st = set_write(cert, key, crt_path, key_path, pem_path)) != DFNET_STATUS_OK)
    goto leaf_made;
  if (ca_state == 1 && (st = dfnet_pki_cert_write(ca, ca_copy)) != DFNET_STATUS_OK)
    goto leaf_made;
  DFNET_LOGI(PKI_LOG, name, "wrote %s, %s, %s", crt_path, key_path, pem_path);

leaf_made:
  dfnet_pki_cert_free(cert);
  dfnet_pki_key_free(key);
ca_loaded:
  dfnet_pki_cert_free(ca);
  dfnet_pki_key_free(ca_key);
  return st;
}
