/* dfnet-manager: certificates over a fleet's life (issue 23 items 4 and 1; docs/architecture.md
 * "Transport and trust"): every certificate the manager has seen or issued, revocation, and
 * the join tokens' book (manager/token.h). Files: cert.c (the records, revocation, the
 * transport's is_revoked hook, the sessions' certificates), cert_issued.c (`dfnet-manager
 * issue` records what it issued), cert_enroll.c (a join token and a CSR become a
 * certificate), handle_cert_list.c, handle_cert_revoke.c,
 * handle_token_create.c, handle_token_list.c, handle_token_revoke.c (one message each).
 *
 * Records. Each certificate a session opens with is recorded in the store (serial, name,
 * role, not-after, first and last seen, last address); the last-seen time is written when
 * the record is new, the address changed or the stored time is CERT_SEEN_WRITE_MS old
 * (a reconnecting fleet costs no fsync per session), and kept exactly in memory. The
 * manager loads every record at start-up and answers CertList from memory.
 *
 * Revocation. CertRevoke (admin) marks every certificate it names revoked in the store with
 * an audit row each (cert_revoke, target "cert:<serial>"), then closes every live session
 * presenting one of them with UNAUTHENTICATED "certificate <serial> of <name> was revoked:
 * <reason>". The transport asks cert__is_revoked at every handshake, full or resumed, so a
 * revoked certificate never opens a session again, across restarts too.
 *
 * Thread: the manager's service thread, like everything of mgr_t.
 */
#ifndef DFNET_MANAGER_CERT_H
#define DFNET_MANAGER_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/transport.h"
#include "manager/manager.h"
#include "manager/token.h"

#define CERT_SEEN_WRITE_MS 60000u /* last-seen writes at most this often per certificate */
#define CERT_REASON_MAX 256u      /* bytes of a revocation's reason */

/* Load every certificate record and join token from m->store and keep them (m->trust).
 * At start-up, after the store opened, before listening. Errors: RESOURCE_EXHAUSTED
 * (memory), the store's (err: the file and the cause). */
dfnet_status_t cert__init(mgr_t *m, char *err, size_t err_size) __attribute__((warn_unused_result));

/* Free what cert__init made. NULL m->trust is a no-op. */
void cert__destroy(mgr_t *m);

/* The transport's revocation hook (dfnet_server_config_t.is_revoked; user is the mgr_t):
 * true when the certificate of that serial is revoked, with why = "certificate <serial> of
 * <name> was revoked: <reason>". Never blocks: a hash lookup. */
bool cert__is_revoked(void *user, const uint8_t *serial, size_t len, const char *cn, char *why,
                      size_t why_cap);

/* A session opened (sessions.c): remember its certificate, record it as seen (a store
 * failure is logged, the session carries on). */
void cert__session_open(mgr_t *m, const dfnet_session_info_t *info);

/* A session closed (sessions.c): forget its certificate. Unknown ids: nothing. */
void cert__session_closed(mgr_t *m, dfnet_session_id_t sid);

/* What cert__revoke did. */
typedef struct cert_revoke_result {
  char name[STORE_PRINCIPAL_MAX + 1];
  char serials[16][STORE_SERIAL_MAX + 1]; /* revoked now, the first 16 */
  size_t revoked;                         /* revoked now (may be over 16) */
  size_t already;                         /* of that name, revoked before */
  size_t sessions_closed;
} cert_revoke_result_t;

/* Revoke the certificate of serial `target` (hex; upper case and colons accepted), or
 * every certificate named `target`, by `actor` for `reason` (1..CERT_REASON_MAX bytes):
 * each written to the store with its audit row in one transaction, then every live session
 * presenting one of them closed UNAUTHENTICATED. *out says what was done. Errors (why set):
 * INVALID_ARGUMENT (no reason, or too long); NOT_FOUND (no certificate of that serial or
 * name: why suggests the nearest name); FAILED_PRECONDITION (every one named was revoked
 * already); the store's (nothing revoked after the one that failed). */
dfnet_status_t cert__revoke(mgr_t *m, const char *target, const char *reason, const char *actor,
                            cert_revoke_result_t *out, char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* Call fn for every certificate record, by name then serial; online says whether a session
 * presents it now. Stops at the first status that is not OK and returns it. */
typedef dfnet_status_t (*cert_each_fn)(void *arg, const store_cert_t *cert, bool online);
dfnet_status_t cert__each(mgr_t *m, cert_each_fn fn, void *arg);

/* The join tokens' book (token.h). */
token_book_t *cert__tokens(mgr_t *m);

/* `dfnet-manager issue`: record the certificate in crt_path as issued in the store of
 * state_dir (opened and closed for the call; the running manager may hold it: SQLite's busy
 * timeout). Errors (err set): the certificate's load errors (lib/pki.h), the store's. */
dfnet_status_t cert__record_issued(const char *state_dir, const char *crt_path, char *err,
                                   size_t err_size) __attribute__((warn_unused_result));

/* ---- Enrollment (cert_enroll.c; issue 23 item 2) ---- */

#define CERT_ENROLL_DAYS 30u /* the validity of an enrolled certificate by default */

/* What cert__enroll issued. */
typedef struct cert_enrolled {
  dfnet_pki_cert_t *cert; /* the new certificate (the caller frees it) */
  char serial[STORE_SERIAL_MAX + 1];
  char name[STORE_PRINCIPAL_MAX + 1];
  token_grant_t grant; /* what the token granted: role, labels (the host's labels) */
} cert_enrolled_t;

/* Enrol the holder of a CSR (PKCS#10 DER, csr_len bytes) with join token `token` presented
 * from `source` (a peer address) at now: the CSR must verify (its own signature, P-256) and
 * name the token's name (or one starting with its prefix, or any dfnet name when the token
 * names none), and no live certificate (not revoked, not expired) may have that name; then
 * the token's use is taken (token__redeem: constant time, expiry, uses, the rate limit) and
 * a certificate of the token's role and that name is issued by the state directory's CA
 * for the CSR's key, valid `days` (0: CERT_ENROLL_DAYS), recorded as issued with an audit row
 * (enroll, target "cert:<serial>") and kept. Errors (why set; each refusal logged once):
 * INVALID_ARGUMENT (an unparsable CSR, not P-256/SHA-256, not a dfnet name, days over
 * DFNET_PKI_MAX_DAYS), UNAUTHENTICATED (a CSR whose signature does not verify; a token that
 * is no token), PERMISSION_DENIED (the CSR names another name than the token's; a revoked
 * token), ALREADY_EXISTS (the name is enrolled already under a live certificate: revoke it
 * first), DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (token__redeem's), NOT_FOUND (no CA in the
 * state directory), INTERNAL (issuing), the store's. Nothing is taken from the token unless
 * the certificate was issued. */
dfnet_status_t cert__enroll(mgr_t *m, const char *token, const uint8_t *csr, size_t csr_len,
                            const char *source, unsigned days, cert_enrolled_t *out, char *why,
                            size_t why_size) __attribute__((warn_unused_result));

/* The validity of an enrolled or renewed certificate into p: `days`, or, when the
 * environment variable DFNET_CERT_LIFETIME_S holds a number of seconds (1..31536000; for
 * tests of renewal only: certificates of a few seconds), an explicit window from one
 * second ago to that many seconds from now. */
void cert__validity(unsigned days, dfnet_pki_leaf_params_t *p);

/* Renew the certificate of live session s (cert_renew.c; issue 23 item 3): the CSR (DER,
 * csr_len bytes) must verify and name the session's certificate's CN; the session's
 * certificate must not be revoked. A certificate of the same name and role for the CSR's
 * key, valid CERT_ENROLL_DAYS (cert__validity), is issued, recorded as issued with an audit
 * row (cert_renew, target "cert:<new serial>") and kept. On OK *cert_out (the caller frees
 * it) and serial_out. Errors (why set; each refusal logged once): UNAUTHENTICATED (revoked,
 * or the CSR's signature fails), PERMISSION_DENIED (another name; a session without a
 * certificate record), INVALID_ARGUMENT (a malformed CSR), NOT_FOUND (no CA), INTERNAL,
 * the store's. */
dfnet_status_t cert__renew(mgr_t *m, const mgr_session_t *s, const uint8_t *csr, size_t csr_len,
                           dfnet_pki_cert_t **cert_out, char serial_out[STORE_SERIAL_MAX + 1],
                           char *why, size_t why_size) __attribute__((warn_unused_result));

/* cert.c, for cert_renew.c: the serial of the certificate session sid opened with, and
 * whether it is revoked now (then why says so). false when the session has no record. */
bool cert__session_cert(mgr_t *m, dfnet_session_id_t sid, char serial[STORE_SERIAL_MAX + 1],
                        bool *revoked, char *why, size_t why_cap);

/* Issue a certificate named `name` of wire role `role` for the CSR's key from the state
 * directory's CA, valid `days` (cert__validity). *out: the caller frees it. Errors (why
 * set): NOT_FOUND (no CA), the PKI's (lib/pki.h dfnet_pki_leaf_issue_csr). */
dfnet_status_t cert__issue_csr(mgr_t *m, const char *name, dfnet_v1_Role role,
                               const dfnet_pki_csr_t *csr, unsigned days, dfnet_pki_cert_t **out,
                               char *why, size_t why_size) __attribute__((warn_unused_result));

/* Record a certificate the manager issued now (store row marked issued, an audit row of
 * `action` (a store_audit_action_t) by `name` with `detail`, target "cert:<serial>", one
 * transaction; then kept in memory). serial_out gets its serial. Errors: the store's. */
dfnet_status_t cert__record_new(mgr_t *m, const dfnet_pki_cert_t *cert, const char *name,
                                int action, const char *detail,
                                char serial_out[STORE_SERIAL_MAX + 1], char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* cert.c, for cert_enroll.c: keep a record in memory (the store has it). false without
 * memory. */
bool cert__remember(mgr_t *m, const store_cert_t *c);

/* cert.c, for cert_enroll.c: a certificate named `name` that is neither revoked nor expired
 * at now_ms: its serial and not-after into the outputs; false when there is none. */
bool cert__live_of_name(mgr_t *m, const char *name, uint64_t now_ms,
                        char serial[STORE_SERIAL_MAX + 1], uint64_t *not_after_ms);

/* ---- handle_cert_*.c, handle_token_*.c: one client message each ---- */
void handle__cert_list(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__cert_revoke(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__token_create(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__token_list(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__token_revoke(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

/* Enroll on an enrollment session (handle_enroll.c): anything else is refused
 * PERMISSION_DENIED; either way the session is then closed. */
void handle__enroll(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

/* CertRenew on a host or client session (handle_cert_renew.c). */
void handle__cert_renew(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

/* Fill *i from a token record, without the secret (handle_token_create.c; the list too). */
void handle__token_info_fill(const store_token_t *t, dfnet_v1_TokenInfo *i);

#endif /* DFNET_MANAGER_CERT_H */
