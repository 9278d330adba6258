/* dfnet-manager: the durable store, <state-dir>/dfnet.db (issue 20 "Leases", item 7
 * "Persistence in SQLite").
 *
 * What the manager must not forget when it restarts: leases (with their original expiry),
 * the wait queue (with its first-come-first-served order), the append-only audit log of
 * lease changes, and the state that today lives only in memory: driver flags (a URL's
 * `disabled`) and composite node specs; and (issue 23) the certificates the manager has
 * seen or issued with their revocations, and join tokens (never their secrets). The
 * manager loads everything once at start-up (store__*_load) and writes each change through
 * as it makes it; it never reads the store to answer a request but for the audit history
 * (store__audit_query), and reads back only a certificate new to it (store__cert_load of
 * one serial: `dfnet-manager issue` may have recorded it meanwhile).
 *
 * Backend. This header is the interface; the implementation (store*.c) is SQLite 3 (Debian's
 * libsqlite3, at least 3.24 for upserts), one connection:
 *   - WAL journal, `synchronous=FULL`: a change whose call (or store__commit) returned OK is
 *     in the file and survives `kill -9` of the manager and a power cut; foreign keys on; a
 *     busy timeout of STORE_BUSY_TIMEOUT_MS (another process holding a lock on the file,
 *     e.g. the sqlite3 shell, delays a call that long rather than failing it at once);
 *   - the file is created 0600 (SQLite's -wal and -shm files take its mode);
 *   - the SQL is kept portable (standard types and statements; upserts in the form SQLite
 *     and PostgreSQL share; LIMIT) so that a shared database can replace SQLite later for a
 *     highly available pair of managers: only the PRAGMAs of store.c and the
 *     schema-catalogue query of store_schema.c are SQLite's own.
 *
 * Schema versions. The file carries its schema version (table schema_version). Opening
 * applies the migrations the file lacks, in order, each in one transaction (a failure
 * leaves the file at the last version that completed); a file of a newer schema than this
 * dfnet knows (STORE_SCHEMA_VERSION) is refused, naming both versions.
 *
 * Ids. Lease ids, queue ids and queue sequence numbers come from store__next (durable
 * counters): never reused, also across restarts, once the transaction that took them
 * committed. A put must name an id the store handed out.
 *
 * Transactions. Every call is atomic by itself: a put of a lease with its targets and nodes,
 * an audit row with its targets, all or nothing. Changes that must be atomic together (a
 * release: delete the lease, promote the queue's head, two audit rows) go between
 * store__begin and store__commit, which costs one fsync for the lot. Inside a transaction a
 * call that fails undoes its own changes only (a savepoint): the caller then rolls back (or
 * commits what came before). The manager applies a change to its memory only once the call
 * (or the commit) returned OK.
 *
 * Records. Structs of this header are the records' shapes; every string is NUL-terminated
 * UTF-8 without control characters (bytes < 0x20 and 0x7f) and bounded by the STORE_*_MAX
 * constants below (bytes, without the NUL); times are wall-clock milliseconds since the Unix
 * epoch, kept exactly; every integer is below 2^63. A put borrows its record for the call
 * (everything is copied into the file); a load or query hands its callback a record whose
 * strings and arrays belong to the store and are valid during the callback only. A record
 * read back that breaks a bound (a file edited by hand, or damaged) fails the load with
 * DATA_LOSS naming the table and row.
 *
 * Errors. Every fallible call returns a dfnet_status_t and, when err is not NULL, writes one
 * line into err[0..err_size) naming the file and SQLite's message with its extended result
 * code ("/var/lib/dfnet/dfnet.db: writing lease 42: database or disk is full (SQLite 13)").
 * SQLite's codes are translated here, once: a damaged file or one that is no database
 * DATA_LOSS; a full disk or no memory RESOURCE_EXHAUSTED; a file that cannot be opened or
 * an I/O error through lib/fileio.h's errno map (EACCES: PERMISSION_DENIED, EIO and others
 * UNAVAILABLE); a read-only file PERMISSION_DENIED; a lock held too long UNAVAILABLE; a
 * bug of ours (SQL, misuse) INTERNAL. Nothing is logged: the caller logs the line.
 *
 * Thread: the manager's service thread only (the one event loop, docs/architecture.md
 * "Processes and threads"); a store is never used from two threads. Calls block for the
 * disk (a commit: one fdatasync of the WAL; see bench/store_bench.c for the figures).
 */
#ifndef DFNET_MANAGER_STORE_H
#define DFNET_MANAGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "dfnet/v1/query.pb.h"
#include "dfnet/v1/session.pb.h"
#include "lib/package.h"
#include "lib/pki.h"
#include "manager/topology.h"

#define STORE_FILE_NAME "dfnet.db"             /* in the state directory */
#define STORE_SCHEMA_VERSION 3u                /* the newest schema this dfnet knows */
#define STORE_BUSY_TIMEOUT_MS 5000             /* SQLite's busy timeout */
#define STORE_DIGEST_SIZE 32u                  /* SHA-256 of a lease token */
#define STORE_PRINCIPAL_MAX DFNET_PKI_NAME_MAX /* a certificate CN: 64 */
#define STORE_TARGET_MAX TOPOLOGY_MONIKER_MAX  /* a target or node moniker: 511 */
#define STORE_TARGETS_MAX 16u                  /* targets of one lease or queue entry */
/* Nodes a lease covers: each target resolves to a node, or a composite and its parents. */
#define STORE_NODES_MAX (STORE_TARGETS_MAX * (1u + TOPOLOGY_PARENTS_MAX))
#define STORE_DETAIL_MAX 511u /* an audit row's reason or detail */
/* An audit row's targets text: its targets joined by single spaces. */
#define STORE_AUDIT_TEXT_MAX (STORE_TARGETS_MAX * (STORE_TARGET_MAX + 1u) - 1u)
#define STORE_AUDIT_LIMIT_MAX 100000u              /* rows of one audit query */
#define STORE_URL_MAX (DFNET_PACKAGE_URL_MAX - 1u) /* a driver URL: 255 */
#define STORE_SPEC_NAME_MAX (pb_membersize(dfnet_v1_CompositeNodeSpec, name) - 1u) /* 128 */
#define STORE_SPEC_SIZE_MAX dfnet_v1_CompositeNodeSpec_size /* an encoded spec's bytes */
#define STORE_SERIAL_MAX 40u   /* a certificate serial in lower-case hex (RFC 5280: 20 octets) */
#define STORE_ADDRESS_MAX 63u  /* a peer address, "[::1]:50312" */
#define STORE_REASON_MAX 256u  /* why a certificate was revoked */
#define STORE_TOKEN_ID_MAX 12u /* a join token's id: 6 random octets in hex */
#define STORE_LABELS_MAX 16u   /* labels of a join token */
#define STORE_LABEL_KEY_MAX 63u
#define STORE_LABEL_VALUE_MAX 127u

typedef struct store store_t;

/* What a lease or queue entry names (issue 20, item 1). */
typedef enum store_target_kind {
  STORE_TARGET_MONIKER = 0,    /* a node moniker: the lease covers its subtree */
  STORE_TARGET_CLASS_PATH = 1, /* "class/<class>/<NNN>" */
  STORE_TARGET_SELECTOR = 2,   /* a selector's text ("soc=imx8mp") */
} store_target_kind_t;

typedef struct store_target {
  store_target_kind_t kind;
  const char *text; /* 1..STORE_TARGET_MAX bytes */
} store_target_t;

/* A priority band of the wait queue: the queue is served high first, then first come first
 * served. Never renumbered (the file keeps the numbers). */
typedef enum store_priority {
  STORE_PRIORITY_LOW = 0,
  STORE_PRIORITY_NORMAL = 1,
  STORE_PRIORITY_HIGH = 2,
} store_priority_t;

/* A lease: one principal's exclusive use of its targets until expires_ms. */
typedef struct store_lease {
  uint64_t id;                   /* from store__next(STORE_ID_LEASE); never 0 */
  const char *holder;            /* certificate CN, 1..STORE_PRINCIPAL_MAX bytes */
  dfnet_v1_Role role;            /* the holder's role when it acquired (a client role) */
  store_priority_t priority;     /* the band it asked for */
  const store_target_t *targets; /* [1..STORE_TARGETS_MAX], in the order asked */
  size_t target_count;
  const char *const *nodes; /* the node monikers it covers, [0..STORE_NODES_MAX] */
  size_t node_count;
  uint64_t ttl_ms;                         /* 0: never expires (admins; the manager's policy) */
  uint64_t acquired_ms;                    /* wall clock */
  uint64_t expires_ms;                     /* wall clock; 0 exactly when ttl_ms is 0 */
  uint8_t token_digest[STORE_DIGEST_SIZE]; /* store__token_digest(token); never the token */
  uint64_t generation; /* fencing counter (store__next(STORE_ID_FENCE)); the manager's */
} store_lease_t;

/* A request waiting in the queue for its targets. */
typedef struct store_queue_entry {
  uint64_t id;           /* from store__next(STORE_ID_QUEUE); never 0 */
  uint64_t seq;          /* from store__next(STORE_ID_QUEUE_SEQ): the order of arrival */
  const char *principal; /* certificate CN, 1..STORE_PRINCIPAL_MAX bytes */
  dfnet_v1_Role role;    /* the principal's role (a client role) */
  store_priority_t priority;
  const store_target_t *targets; /* [1..STORE_TARGETS_MAX] */
  size_t target_count;
  uint64_t ttl_ms;      /* the TTL the lease will have when granted */
  uint64_t enqueued_ms; /* wall clock */
  uint64_t deadline_ms; /* wall clock: leaves the queue then; 0 = waits until served */
} store_queue_entry_t;

/* What an audit row records. Never renumbered; the file keeps the names. */
#define STORE_AUDIT_ACTIONS(X)                                                      \
  X(ACQUIRE, "acquire")                                                             \
  X(RENEW, "renew")                                                                 \
  X(RELEASE, "release")                                                             \
  X(EXPIRE, "expire")                                                               \
  X(FORCE_RELEASE, "force_release")                                                 \
  X(QUEUE, "queue")                                                                 \
  X(DEQUEUE, "dequeue")           /* left the queue: granted, timed out, gone */    \
  X(CERT_REVOKE, "cert_revoke")   /* issue 23: target "cert:<serial>" */            \
  X(TOKEN_CREATE, "token_create") /* issue 23: target "token:<id>" */               \
  X(TOKEN_REVOKE, "token_revoke")                                                   \
  X(ENROLL, "enroll")         /* issue 23: a certificate issued for a join token */ \
  X(CERT_RENEW, "cert_renew") /* issue 23: a certificate renewed for a new key */

typedef enum store_audit_action {
#define STORE_AUDIT_ENUM_(id, name) STORE_AUDIT_##id,
  STORE_AUDIT_ACTIONS(STORE_AUDIT_ENUM_)
#undef STORE_AUDIT_ENUM_
      STORE_AUDIT_ACTION_COUNT
} store_audit_action_t;

/* An audit row to append. */
typedef struct store_audit {
  uint64_t time_ms;
  const char *actor; /* who: a CN, or "dfnet-manager" for an expiry; 1..STORE_PRINCIPAL_MAX */
  store_audit_action_t action;
  uint64_t lease_id;             /* 0: none (queue actions before a grant) */
  const store_target_t *targets; /* [0..STORE_TARGETS_MAX]: the row's targets text */
  size_t target_count;
  const char *const *nodes; /* [0..STORE_NODES_MAX]: found by an exact query too */
  size_t node_count;
  const char *detail; /* why, 0..STORE_DETAIL_MAX bytes; NULL = "" */
} store_audit_t;

/* An audit row read back. */
typedef struct store_audit_row {
  uint64_t seq; /* 1, 2, ... in the order appended; never reused */
  uint64_t time_ms;
  const char *actor;
  store_audit_action_t action;
  uint64_t lease_id;
  const char *targets; /* the targets' texts joined by single spaces ("" for none) */
  const char *detail;
} store_audit_row_t;

/* Which audit rows store__audit_query returns: those matching every field set. */
typedef struct store_audit_query {
  /* NULL or "": every row. Else, with exact, rows naming it as a target or a covered node
   * (byte-exact); without, rows whose targets text contains it (bytes, case-sensitive). */
  const char *target;
  bool exact;
  uint64_t since_ms;  /* rows with time_ms >= since_ms */
  uint64_t after_seq; /* rows with seq > after_seq: the next page after a capped answer */
  uint32_t limit;     /* at most this many rows, 1..STORE_AUDIT_LIMIT_MAX */
} store_audit_query_t;

/* A driver's durable flags, by URL. */
typedef struct store_driver_flags {
  const char *url; /* 1..STORE_URL_MAX bytes */
  bool disabled;
} store_driver_flags_t;

/* A composite node spec, by name: the nanopb encoding of dfnet_v1_CompositeNodeSpec, kept
 * as opaque bytes. */
typedef struct store_spec {
  const char *name; /* 1..STORE_SPEC_NAME_MAX bytes */
  const uint8_t *bytes;
  size_t size; /* 0..STORE_SPEC_SIZE_MAX */
} store_spec_t;

/* The durable counters of store__next. */
typedef enum store_id_kind {
  STORE_ID_LEASE = 0,     /* lease ids */
  STORE_ID_QUEUE = 1,     /* queue entry ids */
  STORE_ID_QUEUE_SEQ = 2, /* queue arrival order */
  STORE_ID_FENCE = 3,     /* fencing generations, increasing over every lease */
  STORE_ID_KIND_COUNT
} store_id_kind_t;

/* A certificate the manager has seen at a session's open or issued (issue 23 item 4). */
typedef struct store_cert {
  const char *serial;        /* lower-case hex, 1..STORE_SERIAL_MAX: the key */
  const char *name;          /* subject CN, 1..STORE_PRINCIPAL_MAX */
  const char *role;          /* subject OU: "host", "admin", "operator", "viewer" */
  uint64_t not_after_ms;     /* wall clock */
  bool issued;               /* by `dfnet-manager issue` of this state directory */
  uint64_t first_seen_ms;    /* 0: never presented to this manager */
  uint64_t last_seen_ms;     /* 0: never */
  const char *last_address;  /* 0..STORE_ADDRESS_MAX; "" when never seen */
  uint64_t revoked_ms;       /* 0: not revoked */
  const char *revoked_by;    /* 0..STORE_PRINCIPAL_MAX ("" when not revoked) */
  const char *revoke_reason; /* 0..STORE_REASON_MAX */
} store_cert_t;

/* A label of a join token (becomes the enrolled host's label). */
typedef struct store_label {
  const char *key;   /* 1..STORE_LABEL_KEY_MAX */
  const char *value; /* 0..STORE_LABEL_VALUE_MAX */
} store_label_t;

/* A join token (issue 23 item 1): never its secret, only its digest. */
typedef struct store_token {
  const char *id;                           /* 1..STORE_TOKEN_ID_MAX: the key */
  uint8_t secret_digest[STORE_DIGEST_SIZE]; /* SHA-256(id || "." || secret) */
  dfnet_v1_Role role;                       /* HOST, OPERATOR or VIEWER */
  const char *name;                         /* exact CN, or "" */
  const char *name_prefix;                  /* or a prefix, or "" */
  const store_label_t *labels;              /* [0..STORE_LABELS_MAX] */
  size_t label_count;
  uint64_t created_ms;
  const char *created_by; /* 1..STORE_PRINCIPAL_MAX */
  uint64_t expires_ms;    /* wall clock */
  uint32_t uses_left;
  uint64_t revoked_ms; /* 0: not revoked */
} store_token_t;

typedef dfnet_status_t (*store_cert_fn)(void *arg, const store_cert_t *cert);
typedef dfnet_status_t (*store_token_fn)(void *arg, const store_token_t *token);

/* Load and query callbacks: OK goes on; any other status stops the walk and is what the
 * call returns (err is then the callback's to fill, or left as it was). A callback must not
 * call the store: the walk's statements are in use (collect first, write afterwards). */
typedef dfnet_status_t (*store_lease_fn)(void *arg, const store_lease_t *lease);
typedef dfnet_status_t (*store_queue_fn)(void *arg, const store_queue_entry_t *entry);
typedef dfnet_status_t (*store_audit_fn)(void *arg, const store_audit_row_t *row);
typedef dfnet_status_t (*store_driver_flags_fn)(void *arg, const store_driver_flags_t *flags);
typedef dfnet_status_t (*store_spec_fn)(void *arg, const store_spec_t *spec);

/* ---- Opening and closing ------------------------------------------------------------ */

/* Open (creating it 0600 when absent) <state_dir>/dfnet.db, which must exist as a
 * directory; set it up (WAL, synchronous=FULL, foreign keys, busy timeout), apply the
 * migrations the file lacks, prepare the statements. *out is the store (close with
 * store__close).
 * Errors (*out NULL): INVALID_ARGUMENT (state_dir NULL, empty or too long); the errno map
 * (no such directory: NOT_FOUND; EACCES: PERMISSION_DENIED; a directory where the file
 * should be: UNAVAILABLE); DATA_LOSS (not a SQLite database, damaged, or a schema that is
 * not dfnet's: err has the path and SQLite's message); PERMISSION_DENIED (the file can
 * only be read); FAILED_PRECONDITION (the file's schema is newer than this dfnet's: err
 * names both versions; SQLite older than 3.24; the file refuses WAL); RESOURCE_EXHAUSTED
 * (no memory, disk full during a migration); UNAVAILABLE (locked by another process past
 * the busy timeout; I/O errors). */
dfnet_status_t store__open(const char *state_dir, store_t **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Roll back an open transaction, finalize the statements and close the file (SQLite
 * checkpoints the WAL into it). NULL is a no-op. */
void store__close(store_t *s);

/* The file's path (owned by the store). */
const char *store__path(const store_t *s);

/* The file's schema version (STORE_SCHEMA_VERSION once open). */
uint32_t store__schema_version(const store_t *s);

/* ---- Transactions ------------------------------------------------------------------- */

/* Start a transaction: the calls up to store__commit are durable together or not at all.
 * Not nested. Errors: FAILED_PRECONDITION (one is open already); as SQLite says. */
dfnet_status_t store__begin(store_t *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Make the transaction's changes durable (one fdatasync). Whatever it returns, no
 * transaction is open afterwards: on failure everything since store__begin is undone.
 * Errors: FAILED_PRECONDITION (none open); ABORTED (SQLite had rolled it back after an
 * earlier failure inside it, e.g. a full disk); RESOURCE_EXHAUSTED; UNAVAILABLE; as SQLite
 * says. */
dfnet_status_t store__commit(store_t *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Undo the open transaction; no-op when none is open. Cannot fail in a way the caller could
 * act on: nothing of the transaction is in the file afterwards. */
void store__rollback(store_t *s);

/* Is a transaction open? */
bool store__in_transaction(const store_t *s);

/* ---- Ids ---------------------------------------------------------------------------- */

/* The next value of a durable counter (1, 2, ...) into *out: never handed out twice by
 * this store, and never after a restart once the transaction that took it committed. Take
 * it inside the transaction that writes the record (outside, it costs a commit of its own).
 * Errors: INVALID_ARGUMENT (kind); OUT_OF_RANGE (2^63 reached); as SQLite says. */
dfnet_status_t store__next(store_t *s, store_id_kind_t kind, uint64_t *out, char *err,
                           size_t err_size) __attribute__((warn_unused_result));

/* ---- Leases ------------------------------------------------------------------------- */

/* SHA-256 (mbedTLS) of a lease token into out: what a lease keeps instead of the token.
 * token may be NULL when len is 0. Any thread. */
void store__token_digest(const uint8_t *token, size_t len, uint8_t out[STORE_DIGEST_SIZE]);

/* Does store__token_digest(token) equal digest? In time independent of where they differ
 * (a fencing check must not tell a caller how much of a guess was right). Any thread. */
bool store__token_matches(const uint8_t digest[STORE_DIGEST_SIZE], const uint8_t *token,
                          size_t len);

/* Insert the lease, or replace the lease with its id (targets and nodes included).
 * Errors: INVALID_ARGUMENT (a field out of its bounds, an id store__next did not hand
 * out, an unknown role, priority or target kind; err names the field); as SQLite says. */
dfnet_status_t store__lease_put(store_t *s, const store_lease_t *lease, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* A renewal: set lease `id`'s ttl_ms, expires_ms and generation (one UPDATE). Errors:
 * INVALID_ARGUMENT (expires_ms 0 without ttl_ms 0 or the other way round, a value over
 * 2^63 - 1); NOT_FOUND (no such lease); as SQLite says. */
dfnet_status_t store__lease_renew(store_t *s, uint64_t id, uint64_t ttl_ms, uint64_t expires_ms,
                                  uint64_t generation, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Delete lease `id` with its targets and nodes. Errors: NOT_FOUND; as SQLite says. */
dfnet_status_t store__lease_delete(store_t *s, uint64_t id, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Call fn for every lease, by increasing id. Errors: DATA_LOSS (a row out of its bounds,
 * or the file damaged); what fn returned; as SQLite says. */
dfnet_status_t store__lease_load(store_t *s, store_lease_fn fn, void *arg, char *err,
                                 size_t err_size) __attribute__((warn_unused_result));

/* ---- The wait queue ----------------------------------------------------------------- */

/* Insert the entry, or replace the entry with its id. Errors: INVALID_ARGUMENT (as for a
 * lease; an id or seq store__next did not hand out); ALREADY_EXISTS (another entry has
 * that seq); as SQLite says. */
dfnet_status_t store__queue_put(store_t *s, const store_queue_entry_t *entry, char *err,
                                size_t err_size) __attribute__((warn_unused_result));

/* Delete entry `id` with its targets. Errors: NOT_FOUND; as SQLite says. */
dfnet_status_t store__queue_delete(store_t *s, uint64_t id, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Call fn for every entry in queue order: priority band high to low, then seq. Errors as
 * store__lease_load. */
dfnet_status_t store__queue_load(store_t *s, store_queue_fn fn, void *arg, char *err,
                                 size_t err_size) __attribute__((warn_unused_result));

/* ---- The audit log ------------------------------------------------------------------ */

/* The action's name ("force_release"); "unknown" out of range. Static string. */
const char *store__audit_action_str(store_audit_action_t action);

/* Append a row; *seq (may be NULL) gets its number. Rows are never changed or deleted.
 * Errors: INVALID_ARGUMENT (a field out of its bounds); as SQLite says. */
dfnet_status_t store__audit_append(store_t *s, const store_audit_t *row, uint64_t *seq, char *err,
                                   size_t err_size) __attribute__((warn_unused_result));

/* A change of the store and its audit row, durable together or not at all: store__begin,
 * change(s, arg, err, err_size), store__audit_append(row), store__commit; on any failure
 * store__rollback and its status (err says why). change runs on the calling thread, in the
 * transaction. Errors: those of the four steps. */
typedef dfnet_status_t (*store_change_fn)(store_t *s, void *arg, char *err, size_t err_size);
dfnet_status_t store__change_audited(store_t *s, store_change_fn change, void *arg,
                                     const store_audit_t *row, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* store__change_audited with `row` given one target, the selector `selector` ("cert:<serial>",
 * "token:<id>"); row's own targets are not read. */
dfnet_status_t store__change_audited_on(store_t *s, store_change_fn change, void *arg,
                                        const char *selector, store_audit_t row, char *err,
                                        size_t err_size) __attribute__((warn_unused_result));

/* Call fn for the rows matching q, oldest (lowest seq) first, at most q->limit of them;
 * *more (may be NULL) says whether more matched (ask again with after_seq = the last seq
 * seen). Indexed: by time, and by exact target or node. Errors: INVALID_ARGUMENT (limit 0
 * or over STORE_AUDIT_LIMIT_MAX, a target over STORE_TARGET_MAX bytes); DATA_LOSS; what fn
 * returned; as SQLite says. */
dfnet_status_t store__audit_query(store_t *s, const store_audit_query_t *q, store_audit_fn fn,
                                  void *arg, bool *more, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* ---- Driver flags ------------------------------------------------------------------- */

/* Insert or replace a driver's flags. Errors: INVALID_ARGUMENT (url); as SQLite says. */
dfnet_status_t store__driver_flags_put(store_t *s, const store_driver_flags_t *flags, char *err,
                                       size_t err_size) __attribute__((warn_unused_result));

/* Forget a driver's flags (it was unregistered). Errors: NOT_FOUND; as SQLite says. */
dfnet_status_t store__driver_flags_delete(store_t *s, const char *url, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Call fn for every driver's flags, by URL (bytes). Errors as store__lease_load. */
dfnet_status_t store__driver_flags_load(store_t *s, store_driver_flags_fn fn, void *arg, char *err,
                                        size_t err_size) __attribute__((warn_unused_result));

/* ---- Composite node specs ----------------------------------------------------------- */

/* Insert or replace a spec by name (the bytes are copied). Errors: INVALID_ARGUMENT (name,
 * size); as SQLite says. */
dfnet_status_t store__spec_put(store_t *s, const store_spec_t *spec, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Delete the spec `name`. Errors: NOT_FOUND; as SQLite says. */
dfnet_status_t store__spec_delete(store_t *s, const char *name, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Call fn for every spec, by name (bytes). Errors as store__lease_load. */
dfnet_status_t store__spec_load(store_t *s, store_spec_fn fn, void *arg, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* ---- Certificates (store_cert.c; issue 23 item 4) ---------------------------------- */

/* A session opened with this certificate at now_ms from address: insert it (first and last
 * seen now, not issued, not revoked) or update its last_seen_ms and last_address (name,
 * role and not-after as given: they are the certificate's). Fields of c used: serial, name,
 * role, not_after_ms, last_seen_ms (now), last_address. Errors: INVALID_ARGUMENT (a field
 * out of its bounds, a role that is not a leaf's); as SQLite says. */
dfnet_status_t store__cert_seen(store_t *s, const store_cert_t *c, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* `dfnet-manager issue` made this certificate: insert it (issued, never seen) or mark it
 * issued. Fields used: serial, name, role, not_after_ms. Errors as store__cert_seen. */
dfnet_status_t store__cert_issued(store_t *s, const store_cert_t *c, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Mark certificate `serial` revoked at time_ms by `by` for `reason`. Errors:
 * INVALID_ARGUMENT (a field out of its bounds); NOT_FOUND (no such certificate);
 * FAILED_PRECONDITION (revoked already: the first revocation stands); as SQLite says. */
dfnet_status_t store__cert_revoke(store_t *s, const char *serial, uint64_t time_ms, const char *by,
                                  const char *reason, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Call fn for every certificate (serial NULL), by name then serial, or for the one of that
 * serial (none: fn is not called, OK). Errors as store__lease_load. */
dfnet_status_t store__cert_load(store_t *s, const char *serial, store_cert_fn fn, void *arg,
                                char *err, size_t err_size) __attribute__((warn_unused_result));

/* ---- Join tokens (store_token.c; issue 23 item 1) ------------------------------------ */

/* Insert a new token with its labels. Errors: INVALID_ARGUMENT (a field out of its bounds,
 * a role that is not HOST, OPERATOR or VIEWER); ALREADY_EXISTS (the id is taken); as
 * SQLite says. */
dfnet_status_t store__token_put(store_t *s, const store_token_t *t, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Set token `id`'s uses_left (a redemption). Errors: NOT_FOUND; as SQLite says. */
dfnet_status_t store__token_set_uses(store_t *s, const char *id, uint32_t uses_left, char *err,
                                     size_t err_size) __attribute__((warn_unused_result));

/* Mark token `id` revoked at time_ms. Errors: NOT_FOUND; FAILED_PRECONDITION (revoked
 * already); as SQLite says. */
dfnet_status_t store__token_revoke(store_t *s, const char *id, uint64_t time_ms, char *err,
                                   size_t err_size) __attribute__((warn_unused_result));

/* Call fn for every token, by creation time then id. Errors as store__lease_load. */
dfnet_status_t store__token_load(store_t *s, store_token_fn fn, void *arg, char *err,
                                 size_t err_size) __attribute__((warn_unused_result));

#endif /* DFNET_MANAGER_STORE_H */
