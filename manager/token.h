/* dfnet-manager: join tokens (issue 23 item 1; docs/architecture.md "Transport and trust").
 *
 * A join token lets a new host or person enrol once (or `uses` times) before it expires:
 * "<id>.<secret>", id 6 random octets and secret 16, both from mbedTLS's CTR-DRBG
 * (dfnet_pki_random), in lower-case hex. The store keeps only SHA-256(id "." secret) (the
 * id salts it), the role (host, operator or viewer: an admin is only made on the manager's
 * machine), the name or name prefix the certificate will carry, labels, the expiry, the
 * uses left and who created it. A redemption (token__redeem) compares digests in constant
 * time, then checks revocation, expiry and uses left, and decrements the uses; failures are
 * counted per source address and an address with TOKEN_FAILURES_PER_MINUTE failures in
 * the last minute is refused before its token is looked at. Every refusal is logged once
 * (subsystem "token", subject the source address) with its reason.
 *
 * The book holds every token in memory (loaded once from the store) and writes each change
 * through the store first, with its audit row in the same transaction (create, revoke).
 *
 * Thread: the manager's service thread (the store's). The book borrows the store.
 */
#ifndef DFNET_MANAGER_TOKEN_H
#define DFNET_MANAGER_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "manager/store.h"

#define TOKEN_ID_BYTES 6u
#define TOKEN_SECRET_BYTES 16u
#define TOKEN_ID_HEX (2u * TOKEN_ID_BYTES)                          /* 12 */
#define TOKEN_SECRET_HEX (2u * TOKEN_SECRET_BYTES)                  /* 32 */
#define TOKEN_TEXT_SIZE (TOKEN_ID_HEX + 1u + TOKEN_SECRET_HEX + 1u) /* "<id>.<secret>" + NUL */
#define TOKEN_TTL_DEFAULT_MS (60u * 60u * 1000u)                    /* 1 hour */
#define TOKEN_TTL_MAX_MS (30ull * 24u * 60u * 60u * 1000u)          /* 30 days */
#define TOKEN_USES_MAX 10000u
#define TOKEN_FAILURES_PER_MINUTE 10u /* per source address */
#define TOKEN_SOURCES_MAX 4096u       /* addresses remembered for the rate limit */

typedef struct token_book token_book_t;

/* What a new token says (token__create). Strings borrowed for the call. */
typedef struct token_spec {
  dfnet_v1_Role role;          /* HOST, OPERATOR or VIEWER */
  const char *name;            /* exact certificate CN, or NULL/"" */
  const char *name_prefix;     /* or a CN prefix, or NULL/""; not both */
  uint64_t ttl_ms;             /* 0: TOKEN_TTL_DEFAULT_MS; at most TOKEN_TTL_MAX_MS */
  uint32_t uses;               /* 0: 1; at most TOKEN_USES_MAX */
  const store_label_t *labels; /* [0..STORE_LABELS_MAX]: keys and values as a host's */
  size_t label_count;
} token_spec_t;

/* What a redeemed token grants (token__redeem): copies. */
typedef struct token_grant {
  char id[TOKEN_ID_HEX + 1];
  dfnet_v1_Role role;
  char name[STORE_PRINCIPAL_MAX + 1];        /* "" when the token names a prefix */
  char name_prefix[STORE_PRINCIPAL_MAX + 1]; /* "" when it names a name */
  store_label_t labels[STORE_LABELS_MAX];    /* pointing into the strings below */
  size_t label_count;
  char label_text[STORE_LABELS_MAX][STORE_LABEL_KEY_MAX + STORE_LABEL_VALUE_MAX + 2];
  uint32_t uses_left; /* after this redemption */
} token_grant_t;

/* Open the book: load every token from the store. *out is the book (token__book_free).
 * Errors: RESOURCE_EXHAUSTED (memory); the store's (err set). */
dfnet_status_t token__book_open(store_t *store, token_book_t **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Free the book (the store stays open). NULL is a no-op. */
void token__book_free(token_book_t *b);

/* Create a token for spec, by `by` (a CN) at now_ms: written to the store with an audit row
 * (token_create, target "token:<id>") in one transaction, then kept. token_out gets
 * "<id>.<secret>" (TOKEN_TEXT_SIZE bytes: shown once, never kept), *info (may be NULL) the
 * record (strings owned by the book, valid until it changes). Errors: INVALID_ARGUMENT
 * (role, both name and prefix, a name or prefix that is not a dfnet name's characters, ttl,
 * uses or a label out of range; err says which); INTERNAL (RNG); the store's. */
dfnet_status_t token__create(token_book_t *b, const token_spec_t *spec, const char *by,
                             uint64_t now_ms, char token_out[TOKEN_TEXT_SIZE],
                             const store_token_t **info, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Revoke token `id` (by `by`, at now_ms): written with an audit row (token_revoke), kept.
 * Errors: NOT_FOUND (no such token); FAILED_PRECONDITION (revoked already); the store's. */
dfnet_status_t token__revoke(token_book_t *b, const char *id, const char *by, uint64_t now_ms,
                             char *err, size_t err_size) __attribute__((warn_unused_result));

/* Call fn for every token, by creation (the records the store would load). Stops at the
 * first status that is not OK and returns it. */
dfnet_status_t token__each(token_book_t *b, store_token_fn fn, void *arg);

/* The redeemer's own checks (token__redeem): called with what a valid token grants before
 * its use is taken; a status other than OK (why filled) refuses the redemption with it and
 * leaves the token's uses as they were. */
typedef dfnet_status_t (*token_accept_fn)(void *arg, const token_grant_t *grant, char *why,
                                          size_t why_size);

/* Redeem token "<id>.<secret>" (text, NUL-terminated) presented from `source` (a peer
 * address "192.0.2.7:50312" / "[::1]:50312"; the port is ignored) at now_ms: on OK the token
 * had a use left, accept (may be NULL) agreed, its uses_left is one less (written through
 * the store) and *out says what it grants. Errors, each logged once with the source and its
 * reason and counted against the source: INVALID_ARGUMENT (not "<12 hex>.<32 hex>"),
 * UNAUTHENTICATED (no such token, or a wrong secret: the same answer, so that ids cannot be
 * probed), PERMISSION_DENIED (revoked), DEADLINE_EXCEEDED (expired), RESOURCE_EXHAUSTED (no
 * uses left); RESOURCE_EXHAUSTED also when the source has TOKEN_FAILURES_PER_MINUTE failures
 * in the last minute (the token is not looked at); not counted: what accept returned, and
 * the store's failure. why (may be NULL) gets the reason. */
dfnet_status_t token__redeem(token_book_t *b, const char *text, const char *source, uint64_t now_ms,
                             token_accept_fn accept, void *arg, token_grant_t *out, char *why,
                             size_t why_size) __attribute__((warn_unused_result));

#endif /* DFNET_MANAGER_TOKEN_H */
