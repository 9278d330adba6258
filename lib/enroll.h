/* Enrolling with a join token, the requester's side (issue 23 items 2 and 3;
 * docs/architecture.md "Transport and trust"): `dfnet-host join` and `dfnet login`.
 *
 * dfnet_enroll() makes a P-256 key here (it never leaves this process but into the key file
 * the caller writes), a CSR naming `name`, connects to the manager on dfnet.enroll.v1 with
 * no certificate, checks the manager's certificate against the CA pin before sending
 * anything (lib/transport_enroll.c), sends Enroll{token, CSR} and takes the answer.
 * dfnet_enroll_write() writes key (0600), certificate and CA atomically.
 * dfnet_renew_csr() / dfnet_renew_apply() are renewal's halves: a new key and its CSR for
 * CertRenew, then the answer's certificate and the new key written over the old files.
 */
#ifndef DFNET_LIB_ENROLL_H
#define DFNET_LIB_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "dfnet/v1/envelope.pb.h"
#include "lib/pki.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What to enrol. Strings borrowed for the call. */
typedef struct dfnet_enroll_request {
  const char *url;     /* wss://HOST:PORT of the manager */
  const char *token;   /* "<id>.<secret>" */
  const char *ca_pin;  /* "sha256:<64 hex>": the SHA-256 of the CA's SubjectPublicKeyInfo */
  const char *name;    /* the certificate's CN: a dfnet name */
  uint32_t timeout_ms; /* for the whole exchange; 0: 15000 */
} dfnet_enroll_request_t;

/* What the manager granted. */
typedef struct dfnet_enroll_result {
  dfnet_pki_key_t *key;         /* the new key (the caller frees it: dfnet_enroll_free) */
  dfnet_v1_EnrollResult answer; /* certificate PEM, CA PEM, labels, name, role, not-after */
} dfnet_enroll_result_t;

/* Enrol (see the top). On OK *out holds the key and the answer. Errors (why: one line for
 * the user, naming the status's cause): INVALID_ARGUMENT (a malformed pin, token or name;
 * a malformed CSR for the manager), UNAUTHENTICATED ("the manager's CA does not match
 * --ca-pin ...": nothing was sent; or the manager refused the token), and every refusal of
 * the manager with its status (PERMISSION_DENIED, ALREADY_EXISTS, DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED...), UNAVAILABLE (nothing answers; the last connection error),
 * DEADLINE_EXCEEDED (no answer within timeout_ms), INTERNAL. Blocking; any thread but a
 * transport's service thread. */
dfnet_status_t dfnet_enroll(const dfnet_enroll_request_t *rq, dfnet_enroll_result_t *out, char *why,
                            size_t why_size) __attribute__((warn_unused_result));

/* Free what dfnet_enroll() made (the key is wiped). NULL is a no-op. */
void dfnet_enroll_free(dfnet_enroll_result_t *r);

/* Write key_path (0600), cert_path (0644, the PEM text) and, when ca_path is not NULL,
 * ca_path (0644), each atomically (lib/fileio.h), the key first and the certificate last, so
 * that a certificate on disk always has its key beside it. Errors (why names the file):
 * the file writes' (NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE), and
 * INVALID_ARGUMENT for a certificate PEM that does not parse. Any thread. */
dfnet_status_t dfnet_enroll_write(const dfnet_pki_key_t *key, const char *cert_pem,
                                  const char *ca_pem, const char *key_path, const char *cert_path,
                                  const char *ca_path, char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* Renewal's first half: a new P-256 key (*key_out, the caller frees it) and a CSR naming
 * `name` into req (its csr_der). Errors: as dfnet_pki_csr_create, RESOURCE_EXHAUSTED (a CSR
 * over the message's bound). Any thread. */
dfnet_status_t dfnet_renew_csr(const char *name, dfnet_pki_key_t **key_out, dfnet_v1_CertRenew *req)
    __attribute__((warn_unused_result));

/* When to renew a certificate valid from not_before to not_after (UTC seconds): at 2/3 of
 * its lifetime, +- 10 % of the lifetime drawn from jitter_unit (0..1), in ms from now_s
 * (0 when due already). */
uint64_t dfnet_renew_delay_ms(int64_t not_before, int64_t not_after, int64_t now_s,
                              double jitter_unit);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_ENROLL_H */
