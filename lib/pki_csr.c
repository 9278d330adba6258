/* Certificate signing requests (lib/pki.h "Enrollment"; issue 23 item 2): PKCS#10 (RFC 2986)
 * written and read with mbedTLS 2.28. The requester makes its P-256 key and a CSR naming
 * itself (CN) signed with it, so that its private key never leaves its machine; the CA checks
 * the CSR's own signature (proof that the requester holds the key: mbedTLS's parser does not
 * check it) and issues a leaf for the CSR's public key (pki__leaf_issue). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_csr.h>

#include "lib/log.h"
#include "lib/pki_internal.h"

#define CSR_DER_MAX 1024 /* a P-256 CSR with a short subject is about 250 bytes */

struct dfnet_pki_csr {
  mbedtls_x509_csr csr;
};

void dfnet_pki_csr_free(dfnet_pki_csr_t *csr) {
  if (csr == NULL)
    return;
  mbedtls_x509_csr_free(&csr->csr);
  free(csr);
}

/* Write a CSR for key with subject CN=name,O=dfnet into a new buffer. */
static dfnet_status_t csr_write(const char *name, dfnet_pki_key_t *key, uint8_t **der_out,
                                size_t *len_out) {
  static const unsigned char pers[] = "dfnet-csr";
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509write_csr w;
  unsigned char *buf = malloc(CSR_DER_MAX);
  char dn[DFNET_PKI_NAME_MAX + 16];
  snprintf(dn, sizeof dn, "CN=%s,O=dfnet", name);
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_x509write_csr_init(&w);
  mbedtls_x509write_csr_set_key(&w, &key->pk);
  mbedtls_x509write_csr_set_md_alg(&w, MBEDTLS_MD_SHA256);
  int rc = buf == NULL ? MBEDTLS_ERR_X509_ALLOC_FAILED
                       : mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers,
                                               sizeof pers - 1);
  if (rc == 0)
    rc = mbedtls_x509write_csr_set_subject_name(&w, dn);
  if (rc == 0)
    rc = mbedtls_x509write_csr_der(&w, buf, CSR_DER_MAX, mbedtls_ctr_drbg_random, &drbg);
  dfnet_status_t st = DFNET_STATUS_OK;
  if (rc > 0) { /* written at the end of buf */
    memmove(buf, buf + CSR_DER_MAX - (size_t)rc, (size_t)rc);
    *der_out = buf;
    *len_out = (size_t)rc;
    buf = NULL;
  } else {
    st = pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, name, "writing the CSR");
  }
  free(buf);
  mbedtls_x509write_csr_free(&w);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return st;
}

dfnet_status_t dfnet_pki_csr_create(const char *name, dfnet_pki_key_t **key_out, uint8_t **der_out,
                                    size_t *len_out) {
  if (key_out == NULL || der_out == NULL || len_out == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "CSR: NULL output");
  *key_out = NULL;
  *der_out = NULL;
  *len_out = 0;
  dfnet_status_t st = pki__name_check("CSR: name", name, NULL);
  if (st != DFNET_STATUS_OK)
    return st;
  dfnet_pki_key_t *key = NULL;
  st = dfnet_pki_key_generate(&key);
  if (st == DFNET_STATUS_OK)
    st = csr_write(name, key, der_out, len_out);
  if (st != DFNET_STATUS_OK) {
    dfnet_pki_key_free(key);
    return st;
  }
  *key_out = key;
  return DFNET_STATUS_OK;
}

/* Is the CSR's own signature good (RFC 2986 §4.2: over certificationRequestInfo)? */
static int csr_signature_check(mbedtls_x509_csr *c) {
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(c->sig_md);
  unsigned char hash[MBEDTLS_MD_MAX_SIZE];
  if (md == NULL)
    return MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG;
  int rc = mbedtls_md(md, c->cri.p, c->cri.len, hash);
  if (rc == 0)
    rc = mbedtls_pk_verify_ext(c->sig_pk, c->sig_opts, &c->pk, c->sig_md, hash,
                               mbedtls_md_get_size(md), c->sig.p, c->sig.len);
  return rc;
}

dfnet_status_t dfnet_pki_csr_parse(const uint8_t *der, size_t len, dfnet_pki_csr_t **out) {
  if (out == NULL || der == NULL || len == 0) {
    if (out != NULL)
      *out = NULL;
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "CSR: no bytes");
  }
  *out = NULL;
  dfnet_pki_csr_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, NULL, "out of memory");
  mbedtls_x509_csr_init(&c->csr);
  int rc = mbedtls_x509_csr_parse_der(&c->csr, der, len);
  dfnet_status_t st = DFNET_STATUS_OK;
  if (rc != 0)
    st = pki__fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, NULL, "parsing the CSR");
  else if (mbedtls_pk_get_type(&c->csr.pk) != MBEDTLS_PK_ECKEY ||
           mbedtls_pk_ec(c->csr.pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
    st = pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "CSR: the key is not ECDSA P-256");
  else if (c->csr.sig_md != MBEDTLS_MD_SHA256)
    st = pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "CSR: not signed with SHA-256");
  else if ((rc = csr_signature_check(&c->csr)) != 0)
    st = pki__fail_mbedtls(rc, DFNET_STATUS_UNAUTHENTICATED, NULL,
                           "CSR: its signature does not verify with its own key");
  if (st != DFNET_STATUS_OK) {
    dfnet_pki_csr_free(c);
    return st;
  }
  *out = c;
  return DFNET_STATUS_OK;
}

void dfnet_pki_csr_name(const dfnet_pki_csr_t *csr, char out[DFNET_PKI_NAME_MAX + 1]) {
  out[0] = '\0';
  if (csr != NULL)
    pki__name_copy(&csr->csr.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), out);
}

dfnet_status_t dfnet_pki_leaf_issue_csr(const dfnet_pki_cert_t *ca_cert,
                                        const dfnet_pki_key_t *ca_key,
                                        const dfnet_pki_leaf_params_t *params,
                                        const dfnet_pki_csr_t *csr, dfnet_pki_cert_t **cert_out) {
  if (csr == NULL) {
    if (cert_out != NULL)
      *cert_out = NULL;
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "issuing for a CSR: no CSR");
  }
  return pki__leaf_issue(ca_cert, ca_key, params, &csr->csr.pk, cert_out, NULL);
}
