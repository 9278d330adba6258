/* Making keys and certificates (lib/pki.h "Making certificates"): RFC 5280 writing with
 * mbedTLS 2.28, subjectAltName and extendedKeyUsage as DER by hand. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>

#include "lib/log.h"
#include "lib/pki_internal.h"
#include "lib/role.h"

#define PKI_DER_MAX 4096          /* largest certificate we write */
#define PKI_SKEW_SECONDS (5 * 60) /* not-before backdating for clock skew */
#define PKI_SERIAL_LEN 16

/* ---- Names -------------------------------------------------------------------------- */

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
  return pki__chars_valid(s, len, ".-*");
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
    return pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "seeding the RNG");
  return DFNET_STATUS_OK;
}

static void rng_free(pki_rng_t *rng) {
  mbedtls_ctr_drbg_free(&rng->drbg);
  mbedtls_entropy_free(&rng->entropy);
}

/* ---- Building certificates ---------------------------------------------------------- */

static __attribute__((warn_unused_result)) dfnet_status_t
key_generate(pki_rng_t *rng, const char *subject, dfnet_pki_key_t **out) {
  dfnet_pki_key_t *key = pki__key_new();
  if (key == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, subject, "out of memory");
  int rc = mbedtls_pk_setup(&key->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (rc == 0)
    rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key->pk),
                             mbedtls_ctr_drbg_random, &rng->drbg);
  if (rc != 0) {
    dfnet_pki_key_free(key);
    return pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "generating a P-256 key");
  }
  *out = key;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_pki_key_generate(dfnet_pki_key_t **out) {
  if (out == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "generating a key: NULL output");
  *out = NULL;
  pki_rng_t rng;
  dfnet_status_t st = rng_init(&rng, NULL);
  if (st == DFNET_STATUS_OK)
    st = key_generate(&rng, NULL, out);
  rng_free(&rng);
  return st;
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
      return pki__fail(DFNET_STATUS_FAILED_PRECONDITION, NULL,
                       "the CA's subject has an attribute dfnet cannot copy into an issuer");
    int w = snprintf(out + used, size - used, "%s%s=", used ? "," : "", short_name);
    if (w < 0 || (size_t)w >= size - used)
      goto too_long;
    used += (size_t)w;
    for (size_t i = 0; i < n->val.len; i++) {
      unsigned char c = n->val.p[i];
      if (c == 0)
        return pki__fail(DFNET_STATUS_FAILED_PRECONDITION, NULL,
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
  return pki__fail(DFNET_STATUS_FAILED_PRECONDITION, NULL, "the CA's subject is too long");
}

/* Close a DER SEQUENCE written backwards: its `len` bytes of contents start at p (inside
 * buf); prepend the length and the tag. Returns the bytes of the whole SEQUENCE (*start
 * set to its first), or an mbedTLS error. */
static int write_sequence(unsigned char *p, unsigned char *buf, size_t len, unsigned char **start) {
  int rc;
  if ((rc = mbedtls_asn1_write_len(&p, buf, len)) < 0)
    return rc;
  len += (size_t)rc;
  if ((rc = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
    return rc;
  len += (size_t)rc;
  *start = p;
  return (int)len;
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
  return write_sequence(p, buf, len, start);
}

dfnet_status_t pki__sans_parse(const char *const *sans, size_t count, const char *subject,
                               pki__san_t *out) {
  if (count > DFNET_PKI_MAX_SANS)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, subject,
                     "%zu subjectAltName entries, at most %d", count, DFNET_PKI_MAX_SANS);
  if (count > 0 && sans == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, subject, "SAN list is NULL");
  for (size_t i = 0; i < count; i++) {
    const char *s = sans[i];
    if (s == NULL)
      return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, subject, "SAN %zu is NULL", i);
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
      return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, subject,
                       "SAN \"%.64s\" is neither an IP address nor a DNS name", s);
    }
  }
  return DFNET_STATUS_OK;
}

/* subjectAltName ::= GeneralNames ::= SEQUENCE OF GeneralName, with
 *   dNSName [2] IMPLICIT IA5String, iPAddress [7] IMPLICIT OCTET STRING (RFC 5280 §4.2.1.6).
 * mbedTLS 2.28 has no writer for it; this is the DER by hand. */
static int write_san(const pki__san_t *sans, size_t count, unsigned char *buf, size_t size,
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
  return write_sequence(p, buf, len, start);
}

/* Everything that differs between a CA and a leaf. */
typedef struct cert_spec {
  const char *subject_dn;  /* "CN=...,OU=...,O=dfnet" */
  const char *log_subject; /* name for log lines */
  time_t not_before, not_after;
  bool is_ca;
  const pki__san_t *sans;
  size_t san_count;
} cert_spec_t;

/* Serial: 16 random octets, top bit clear (positive), next bit set (non-zero, full
 * length) — RFC 5280 §4.1.2.2. Returns 0 or an mbedTLS error. */
static int serial_draw(pki_rng_t *rng, mbedtls_mpi *serial) {
  unsigned char bytes[PKI_SERIAL_LEN];
  int rc = mbedtls_ctr_drbg_random(&rng->drbg, bytes, sizeof bytes);
  if (rc != 0)
    return rc;
  bytes[0] = (unsigned char)((bytes[0] & 0x7f) | 0x40);
  return mbedtls_mpi_read_binary(serial, bytes, sizeof bytes);
}

/* The writer's keys and the fields every certificate has: serial, validity (nb, na as
 * format_x509_time() writes them), names, basicConstraints, keyUsage, SKI and AKI.
 * Returns 0, or an mbedTLS error with *what saying which step. */
static int writer_fields(mbedtls_x509write_cert *w, const mbedtls_mpi *serial,
                         const cert_spec_t *spec, const char *nb, const char *na,
                         const char *issuer_name, const char **what) {
  int rc;
  mbedtls_x509write_crt_set_version(w, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(w, MBEDTLS_MD_SHA256);
  *what = "setting the serial number";
  if ((rc = mbedtls_x509write_crt_set_serial(w, serial)) != 0)
    return rc;
  *what = "setting the validity";
  if ((rc = mbedtls_x509write_crt_set_validity(w, nb, na)) != 0)
    return rc;
  *what = "setting the subject name";
  if ((rc = mbedtls_x509write_crt_set_subject_name(w, spec->subject_dn)) != 0)
    return rc;
  *what = "setting the issuer name";
  if ((rc = mbedtls_x509write_crt_set_issuer_name(w, issuer_name != NULL ? issuer_name
                                                                         : spec->subject_dn)) != 0)
    return rc;
  *what = "writing basicConstraints";
  if ((rc = mbedtls_x509write_crt_set_basic_constraints(w, spec->is_ca ? 1 : 0,
                                                        spec->is_ca ? 0 : -1)) != 0)
    return rc;
  *what = "writing keyUsage";
  if ((rc = mbedtls_x509write_crt_set_key_usage(
           w, spec->is_ca ? (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)
                          : MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0)
    return rc;
  *what = "writing subjectKeyIdentifier";
  if ((rc = mbedtls_x509write_crt_set_subject_key_identifier(w)) != 0)
    return rc;
  *what = "writing authorityKeyIdentifier";
  return mbedtls_x509write_crt_set_authority_key_identifier(w);
}

/* A leaf's extendedKeyUsage and any certificate's subjectAltName. Returns 0, or an mbedTLS
 * error with *what saying which. */
static int writer_extensions(mbedtls_x509write_cert *w, const cert_spec_t *spec,
                             const char **what) {
  unsigned char ext[1024], *ext_start = NULL;
  int rc;
  if (!spec->is_ca) {
    *what = "writing extendedKeyUsage";
    if ((rc = write_eku(ext, sizeof ext, &ext_start)) < 0)
      return rc;
    if ((rc = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                  0, ext_start, (size_t)rc)) != 0)
      return rc;
  }
  if (spec->san_count > 0) {
    *what = "writing subjectAltName";
    if ((rc = write_san(spec->sans, spec->san_count, ext, sizeof ext, &ext_start)) < 0)
      return rc;
    if ((rc = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                  ext_start, (size_t)rc)) != 0)
      return rc;
  }
  return 0;
}

/* Sign what the writer holds and parse it back into a new dfnet_pki_cert_t. */
static __attribute__((warn_unused_result)) dfnet_status_t writer_sign(mbedtls_x509write_cert *w,
                                                                      pki_rng_t *rng,
                                                                      const char *log_subject,
                                                                      dfnet_pki_cert_t **out) {
  unsigned char *der = malloc(PKI_DER_MAX);
  if (der == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, log_subject, "out of memory");
  dfnet_status_t st = DFNET_STATUS_OK;
  const char *what = "signing the certificate";
  int rc = mbedtls_x509write_crt_der(w, der, PKI_DER_MAX, mbedtls_ctr_drbg_random, &rng->drbg);
  if (rc < 0)
    goto mbedtls_failed;
  size_t der_len = (size_t)rc;
  dfnet_pki_cert_t *cert = pki__cert_new();
  if (cert == NULL) {
    st = pki__fail(DFNET_STATUS_INTERNAL, log_subject, "out of memory");
    goto der_made;
  }
  what = "parsing the certificate just written";
  if ((rc = mbedtls_x509_crt_parse_der(&cert->crt, der + PKI_DER_MAX - der_len, der_len)) != 0) {
    dfnet_pki_cert_free(cert);
    goto mbedtls_failed;
  }
  *out = cert;
  goto der_made;

mbedtls_failed:
  st = pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, log_subject, what);
der_made:
  free(der);
  return st;
}

/* Sign a certificate for subject_key with issuer_key (issuer_name NULL: self-signed) and
 * parse it back into a new dfnet_pki_cert_t. */
static __attribute__((warn_unused_result)) dfnet_status_t
cert_build(pki_rng_t *rng, const cert_spec_t *spec, dfnet_pki_key_t *subject_key,
           const char *issuer_name, dfnet_pki_key_t *issuer_key, dfnet_pki_cert_t **out) {
  char nb[32], na[32];
  if (!format_x509_time(spec->not_before, nb) || !format_x509_time(spec->not_after, na))
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, spec->log_subject,
                     "validity outside the years 1950..9999");
  dfnet_status_t st;
  const char *what = "drawing a serial number";
  mbedtls_mpi serial;
  mbedtls_x509write_cert w;
  mbedtls_mpi_init(&serial);
  mbedtls_x509write_crt_init(&w);
  mbedtls_x509write_crt_set_subject_key(&w, &subject_key->pk);
  mbedtls_x509write_crt_set_issuer_key(&w, &issuer_key->pk);
  int rc = serial_draw(rng, &serial);
  if (rc == 0)
    rc = writer_fields(&w, &serial, spec, nb, na, issuer_name, &what);
  if (rc == 0)
    rc = writer_extensions(&w, spec, &what);
  if (rc == 0)
    st = writer_sign(&w, rng, spec->log_subject, out);
  else
    st = pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, spec->log_subject, what);
  mbedtls_x509write_crt_free(&w);
  mbedtls_mpi_free(&serial);
  return st;
}

dfnet_status_t dfnet_pki_ca_create(const char *cn, dfnet_pki_cert_t **cert_out,
                                   dfnet_pki_key_t **key_out) {
  if (cert_out == NULL || key_out == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "creating a CA: NULL output");
  *cert_out = NULL;
  *key_out = NULL;
  if (cn == NULL || !ca_cn_valid(cn))
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL,
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
  dfnet_status_t st = pki__name_check("certificate name", p->name, NULL);
  if (st != DFNET_STATUS_OK)
    return st;
  if (dfnet_role_by_pki(p->role) == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, name,
                     "role %d is not host, admin, operator, viewer or manager", (int)p->role);
  if (p->not_after != 0) {
    if (p->not_before >= p->not_after)
      return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, name,
                       "explicit validity: not_before must be before not_after");
    *not_before = p->not_before;
    *not_after = p->not_after;
    return DFNET_STATUS_OK;
  }
  if (p->days < 1 || p->days > DFNET_PKI_MAX_DAYS)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, name, "validity of %u days: 1..%d", p->days,
                     DFNET_PKI_MAX_DAYS);
  time_t now = time(NULL);
  *not_before = now - PKI_SKEW_SECONDS;
  *not_after = now + (time_t)p->days * 86400;
  time_t ca_end = pki__x509_time(&ca->crt.valid_to);
  if (ca_end != (time_t)-1 && *not_after > ca_end) {
    DFNET_LOGW(PKI_LOG, name, "validity cut to the CA's end");
    *not_after = ca_end;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_pki_leaf_issue(const dfnet_pki_cert_t *ca_cert, const dfnet_pki_key_t *ca_key,
                                    const dfnet_pki_leaf_params_t *params,
                                    dfnet_pki_cert_t **cert_out, dfnet_pki_key_t **key_out) {
  if (key_out == NULL) {
    if (cert_out)
      *cert_out = NULL;
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "issuing a certificate: NULL argument");
  }
  return pki__leaf_issue(ca_cert, ca_key, params, NULL, cert_out, key_out);
}

dfnet_status_t pki__leaf_issue(const dfnet_pki_cert_t *ca_cert, const dfnet_pki_key_t *ca_key,
                               const dfnet_pki_leaf_params_t *params,
                               const mbedtls_pk_context *subject_public,
                               dfnet_pki_cert_t **cert_out, dfnet_pki_key_t **key_out) {
  if (cert_out == NULL || ca_cert == NULL || ca_key == NULL || params == NULL) {
    if (cert_out)
      *cert_out = NULL;
    if (key_out)
      *key_out = NULL;
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "issuing a certificate: NULL argument");
  }
  *cert_out = NULL;
  if (key_out != NULL)
    *key_out = NULL;
  time_t nb = 0, na = 0;
  dfnet_status_t st = leaf_params_check(ca_cert, params, &nb, &na);
  if (st != DFNET_STATUS_OK)
    return st;
  const char *name = params->name;
  pki__san_t *sans = calloc(DFNET_PKI_MAX_SANS, sizeof *sans);
  if (sans == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, name, "out of memory");
  if ((st = pki__sans_parse(params->sans, params->san_count, name, sans)) != DFNET_STATUS_OK)
    goto sans_made;
  if (!ca_cert->crt.ca_istrue) {
    st = pki__fail(DFNET_STATUS_FAILED_PRECONDITION, name,
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
  dfnet_pki_key_t *key = NULL, given;
  if ((st = rng_init(&rng, name)) != DFNET_STATUS_OK)
    goto rng_made;
  if (subject_public != NULL) /* a CSR's key: borrowed (the writer only reads it) */
    given.pk = *subject_public;
  else if ((st = key_generate(&rng, name, &key)) != DFNET_STATUS_OK)
    goto rng_made;
  /* The writer takes non-const keys; it only reads them. */
  st = cert_build(&rng, &spec, key != NULL ? key : &given, issuer, (dfnet_pki_key_t *)ca_key,
                  cert_out);
  if (st != DFNET_STATUS_OK)
    goto key_made;
  if (key_out != NULL)
    *key_out = key;
  DFNET_LOGI(PKI_LOG, name, "issued a certificate, role %s, %zu SANs%s",
             dfnet_pki_role_str(params->role), params->san_count,
             subject_public != NULL ? ", for a CSR's key" : "");
  goto rng_made;

key_made:
  dfnet_pki_key_free(key);
rng_made:
  rng_free(&rng);
sans_made:
  free(sans);
  return st;
}
