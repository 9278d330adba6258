/* Internals shared by lib/pki*.c (not a public header; the API is lib/pki.h).
 *
 *   pki.c         the objects, roles and names, DN attributes, and the one edge where
 *                 errno and mbedTLS codes become statuses (each logged once there)
 *   pki_x509.c    making keys and certificates (RFC 5280 writing, SANs as DER)
 *   pki_files.c   PEM files: writing (atomically, lib/fileio.h), loading, parsing
 *   pki_verify.c  verification (RFC 5280 §6), what a certificate says, host matching
 *                 (RFC 6125)
 *   pki_state.c   the manager's state directory: init and issue
 */
#ifndef DFNET_LIB_PKI_INTERNAL_H
#define DFNET_LIB_PKI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "lib/pki.h"

#define PKI_LOG "pki"
#define PKI_FILE_MAX (1024 * 1024) /* largest PEM file we read */

struct dfnet_pki_cert {
  mbedtls_x509_crt crt;
};

struct dfnet_pki_key {
  mbedtls_pk_context pk;
};

/* ---- The one edge where errno and mbedTLS codes become statuses (pki.c) ---------------- */

/* Log one line (subsystem "pki", subject may be NULL) with the status, and return it. */
dfnet_status_t pki__fail(dfnet_status_t code, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An mbedTLS error: logged with its text and raw code, returned as `code`. */
dfnet_status_t pki__fail_mbedtls(int rc, dfnet_status_t code, const char *subject,
                                 const char *what);

/* An errno from a file operation on `path`: lib/fileio.h's map, logged with the errno. */
dfnet_status_t pki__fail_errno(int err, const char *path, const char *what);

/* ---- Objects and names (pki.c) ----------------------------------------------------------- */

/* OK when dfnet_pki_name_valid(name); else INVALID_ARGUMENT, logged as "<what> "<name>": the
 * rule for names" under `subject` (may be NULL). name may be NULL. */
dfnet_status_t pki__name_check(const char *what, const char *name, const char *subject);

/* Whether s[0..len) holds only ASCII letters, digits and characters of `extra` (the
 * character sets of peer names and SAN DNS names). */
bool pki__chars_valid(const char *s, size_t len, const char *extra);

/* New empty objects; NULL when out of memory. */
dfnet_pki_cert_t *pki__cert_new(void);
dfnet_pki_key_t *pki__key_new(void);

/* Copy a DN attribute value into out (size DFNET_PKI_NAME_MAX + 1); "" when absent, too
 * long or holding a NUL. */
void pki__name_copy(const mbedtls_x509_name *name, const char *oid, size_t oid_len, char *out);

/* The subject CN of a certificate, as pki__name_copy(). */
void pki__cert_cn(const dfnet_pki_cert_t *cert, char out[DFNET_PKI_NAME_MAX + 1]);

/* An X.509 time as UTC seconds; (time_t)-1 when it cannot be represented. */
time_t pki__x509_time(const mbedtls_x509_time *xt);

/* ---- SANs (pki_x509.c) ---------------------------------------------------------------------- */

/* One parsed SAN for writing: a DNS name or 4/16 address octets. */
typedef struct pki__san {
  bool is_ip;
  size_t len;
  unsigned char bytes[DFNET_PKI_SAN_MAX];
} pki__san_t;

/* Parse `count` SAN strings into out[count] (logged on error: INVALID_ARGUMENT). */
dfnet_status_t pki__sans_parse(const char *const *sans, size_t count, const char *subject,
                               pki__san_t *out) __attribute__((warn_unused_result));

/* ---- Issuing (pki_x509.c) ---------------------------------------------------------------------
 */

/* dfnet_pki_leaf_issue, for subject_public's key when it is not NULL (a CSR's: borrowed for
 * the call; key_out may then be NULL and gets NULL), else for a new key (*key_out). */
dfnet_status_t pki__leaf_issue(const dfnet_pki_cert_t *ca_cert, const dfnet_pki_key_t *ca_key,
                               const dfnet_pki_leaf_params_t *params,
                               const mbedtls_pk_context *subject_public,
                               dfnet_pki_cert_t **cert_out, dfnet_pki_key_t **key_out)
    __attribute__((warn_unused_result));

/* ---- Verification (pki_verify.c) ------------------------------------------------------------ */

/* mbedtls_x509_crt_verify, its flags sorted into dfnet_pki_verify_reason_t bits. Logs
 * nothing. Returns the reasons (0: verified); *rc_out and *flags_out get mbedTLS's. */
uint32_t pki__verify_quiet(const dfnet_pki_cert_t *ca, const dfnet_pki_cert_t *leaf, int *rc_out,
                           uint32_t *flags_out);

#endif /* DFNET_LIB_PKI_INTERNAL_H */
