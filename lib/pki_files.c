/* PEM files (lib/pki.h "Files"): written atomically and read with a bound, both through
 * lib/fileio.h; certificates parsed from memory; key pairs checked. */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/pki_internal.h"

#define PKI_PEM_MAX 8192

/* ---- Writing ------------------------------------------------------------------------ */

/* Atomically replace `path` with the parts (lib/fileio.h), mode `mode`; logged on error. */
static __attribute__((warn_unused_result)) dfnet_status_t
pem_file_write(const char *path, const struct iovec *parts, size_t count, mode_t mode) {
  char why[300];
  dfnet_status_t st = dfnet_file_writev_atomic(path, parts, count, mode, why, sizeof why);
  if (st != DFNET_STATUS_OK)
    return pki__fail(st, path, "%s", why);
  return DFNET_STATUS_OK;
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
    return pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "writing certificate PEM");
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
    return pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, subject, "writing key PEM");
  *len = strlen((const char *)buf);
  return DFNET_STATUS_OK;
}

/* Atomically replace `path` with the PEM of `cert` followed by that of `key`, each left out
 * when NULL (one at least is given): mode 0600 when it holds a key, else 0644. The key's
 * PEM is wiped from the stack after. Returns what failed, logged with `path`. */
static __attribute__((warn_unused_result)) dfnet_status_t
pem_write(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key, const char *path) {
  unsigned char cpem[PKI_PEM_MAX], kpem[PKI_PEM_MAX];
  struct iovec parts[2] = {{.iov_base = NULL}};
  size_t count = 0;
  dfnet_status_t st = DFNET_STATUS_OK;
  if (cert != NULL) {
    parts[count].iov_base = cpem;
    st = cert_pem(cert, path, cpem, sizeof cpem, &parts[count].iov_len);
    count++;
  }
  if (st == DFNET_STATUS_OK && key != NULL) {
    parts[count].iov_base = kpem;
    st = key_pem(key, path, kpem, sizeof kpem, &parts[count].iov_len);
    count++;
  }
  if (st == DFNET_STATUS_OK)
    st = pem_file_write(path, parts, count, key != NULL ? 0600 : 0644);
  if (key != NULL)
    mbedtls_platform_zeroize(kpem, sizeof kpem);
  return st;
}

dfnet_status_t dfnet_pki_cert_pem(const dfnet_pki_cert_t *cert, char *out, size_t cap) {
  size_t len = 0;
  if (cert == NULL || out == NULL || cap == 0)
    return DFNET_STATUS_INVALID_ARGUMENT;
  out[0] = '\0';
  return cert_pem(cert, NULL, (unsigned char *)out, cap, &len) == DFNET_STATUS_OK
             ? DFNET_STATUS_OK
             : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t dfnet_pki_cert_write(const dfnet_pki_cert_t *cert, const char *path) {
  if (cert == NULL || path == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path, "writing a certificate: NULL argument");
  return pem_write(cert, NULL, path);
}

dfnet_status_t dfnet_pki_key_write(const dfnet_pki_key_t *key, const char *path) {
  if (key == NULL || path == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path, "writing a key: NULL argument");
  return pem_write(NULL, key, path);
}

dfnet_status_t dfnet_pki_pem_write(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key,
                                   const char *path) {
  if (cert == NULL || key == NULL || path == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path, "writing a PEM: NULL argument");
  return pem_write(cert, key, path);
}

/* ---- Reading ------------------------------------------------------------------------ */

/* Load a PEM object from `path`: check the arguments (`what` names the object in the
 * message of a NULL one), read the file whole (at most PKI_FILE_MAX bytes, NUL-terminated,
 * with the errors of lib/pki.h: over the bound, like not a regular file, is
 * INVALID_ARGUMENT), hand its bytes to `parse` with `out`, then wipe and free them. Returns
 * what failed, logged, or what `parse` returned. */
static __attribute__((warn_unused_result)) dfnet_status_t
pem_load(const char *path, bool out_given, const char *what,
         dfnet_status_t (*parse)(const char *path, const dfnet_file_t *f, void *out), void *out) {
  if (!out_given || path == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path, "loading %s: NULL argument", what);
  dfnet_file_t f;
  char why[300];
  dfnet_status_t st = dfnet_file_read(path, PKI_FILE_MAX, DFNET_FILE_SECRET, &f, why, sizeof why);
  if (st == DFNET_STATUS_OUT_OF_RANGE)
    st = DFNET_STATUS_INVALID_ARGUMENT;
  if (st != DFNET_STATUS_OK)
    return pki__fail(st, path, "%s", why);
  st = parse(path, &f, out);
  dfnet_file_free(&f); /* wipes the bytes */
  return st;
}

/* A certificate from a PEM file's bytes into *(dfnet_pki_cert_t **)out (pem_load). */
static dfnet_status_t cert_from_pem(const char *path, const dfnet_file_t *f, void *out) {
  if (strstr((const char *)f->data, "-----BEGIN CERTIFICATE-----") == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path,
                     "no PEM certificate (\"-----BEGIN CERTIFICATE-----\") in the file");
  dfnet_pki_cert_t *cert = pki__cert_new();
  if (cert == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, path, "out of memory");
  int rc = mbedtls_x509_crt_parse(&cert->crt, f->data, f->size + 1);
  if (rc != 0) {
    dfnet_pki_cert_free(cert);
    if (rc > 0)
      return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path,
                       "%d of the file's certificates could not be parsed", rc);
    return pki__fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, path, "parsing the certificate");
  }
  *(dfnet_pki_cert_t **)out = cert;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_pki_cert_load(const char *path, dfnet_pki_cert_t **out) {
  if (out != NULL)
    *out = NULL;
  return pem_load(path, out != NULL, "a certificate", cert_from_pem, out);
}

dfnet_status_t dfnet_pki_cert_parse(const uint8_t *data, size_t len, dfnet_pki_cert_t **out) {
  if (out == NULL || data == NULL || len == 0 || len > PKI_FILE_MAX) {
    if (out)
      *out = NULL;
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL,
                     "parsing a certificate: NULL, empty or over 1 MiB");
  }
  *out = NULL;
  dfnet_pki_cert_t *cert = pki__cert_new();
  if (cert == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, NULL, "out of memory");
  int rc;
  bool pem = len >= 11 && memmem(data, len, "-----BEGIN ", 11) != NULL;
  if (pem) {
    /* mbedTLS wants PEM NUL-terminated, with the NUL counted. */
    unsigned char *copy = malloc(len + 1);
    if (copy == NULL) {
      dfnet_pki_cert_free(cert);
      return pki__fail(DFNET_STATUS_INTERNAL, NULL, "out of memory");
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
      return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "%d certificates could not be parsed",
                       rc);
    return pki__fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, NULL, "parsing a certificate");
  }
  *out = cert;
  return DFNET_STATUS_OK;
}

/* A private key from a PEM file's bytes into *(dfnet_pki_key_t **)out (pem_load). */
static dfnet_status_t key_from_pem(const char *path, const dfnet_file_t *f, void *out) {
  dfnet_pki_key_t *key = pki__key_new();
  if (key == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, path, "out of memory");
  dfnet_status_t st = DFNET_STATUS_OK;
  int rc = mbedtls_pk_parse_key(&key->pk, f->data, f->size + 1, NULL, 0);
  if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
    st = pki__fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, path,
                           "the key is passphrase-protected; dfnet reads unencrypted keys");
    goto key_made;
  }
  if (rc != 0) {
    st = pki__fail_mbedtls(rc, DFNET_STATUS_INVALID_ARGUMENT, path, "parsing the private key");
    goto key_made;
  }
  if (!mbedtls_pk_can_do(&key->pk, MBEDTLS_PK_ECKEY) ||
      mbedtls_pk_ec(key->pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
    st = pki__fail(DFNET_STATUS_INVALID_ARGUMENT, path, "a %s key; dfnet keys are ECDSA P-256",
                   mbedtls_pk_get_name(&key->pk));
    goto key_made;
  }
  if ((f->mode & 077) != 0)
    DFNET_LOGW(PKI_LOG, path, "private key file is readable by others (mode %04o); use 0600",
               (unsigned)(f->mode & 07777));
  *(dfnet_pki_key_t **)out = key;
  key = NULL;
key_made:
  dfnet_pki_key_free(key);
  return st;
}

dfnet_status_t dfnet_pki_key_load(const char *path, dfnet_pki_key_t **out) {
  if (out != NULL)
    *out = NULL;
  return pem_load(path, out != NULL, "a key", key_from_pem, out);
}

dfnet_status_t dfnet_pki_key_check_pair(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key) {
  if (cert == NULL || key == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "checking a key pair: NULL argument");
  int rc = mbedtls_pk_check_pair(&cert->crt.pk, &key->pk);
  if (rc != 0) {
    char cn[DFNET_PKI_NAME_MAX + 1];
    pki__cert_cn(cert, cn);
    return pki__fail_mbedtls(rc, DFNET_STATUS_FAILED_PRECONDITION, cn,
                             "the private key does not match the certificate");
  }
  return DFNET_STATUS_OK;
}
