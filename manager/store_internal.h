/* dfnet-manager: what the store's files share (not public; manager/store.h is the interface).
 *
 * Files: store.c (opening, closing), store_sql.c (SQLite's result codes, the statements
 * run, bound and read), store_tx.c (write brackets, transactions), store_write.c (the
 * writes records share), store_counter.c (counters), store_check.c (the checks every
 * record shares), store_schema.c (the schema and its migrations), store_lease.c (leases,
 * lease tokens), store_queue.c (the wait queue), store_audit.c (the audit log),
 * store_state.c (driver flags, composite node specs), store_cert.c (certificates seen and
 * issued, revocations), store_token.c (join tokens).
 *
 * Every statement is prepared once, at open, from STORE_STATEMENTS below (one place to read
 * all the SQL the store runs but the schema): the hot paths never parse SQL. A write is
 * bracketed by store_sql__op_begin / store_sql__op_end: a transaction of its own, or a
 * savepoint inside the caller's (store__begin). Thread: the store's one thread (store.h).
 */
#ifndef DFNET_MANAGER_STORE_INTERNAL_H
#define DFNET_MANAGER_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "manager/store.h"

/* X(id, sql). Parameters are numbered (?1 ...) as the functions bind them. Upserts use the
 * form SQLite (3.24+) and PostgreSQL share; LIMIT is both's. The audit queries with a time
 * bound write `+seq` (the same value) so that SQLite walks the time index and sorts the rows
 * it found, rather than walking the whole log in seq order to filter it: a recent --since is
 * a short walk. */
#define STORE_STATEMENTS(X)                                                                      \
  X(BEGIN, "BEGIN")                                                                              \
  X(COMMIT, "COMMIT")                                                                            \
  X(ROLLBACK, "ROLLBACK")                                                                        \
  X(SAVEPOINT, "SAVEPOINT store_op")                                                             \
  X(RELEASE, "RELEASE SAVEPOINT store_op")                                                       \
  X(ROLLBACK_TO, "ROLLBACK TO SAVEPOINT store_op")                                               \
  X(COUNTER_SET, "UPDATE store_counter SET last_value = ?2 WHERE name = ?1")                     \
  X(LEASE_UPSERT,                                                                                \
    "INSERT INTO lease (id, holder, role, priority, ttl_ms, acquired_ms, expires_ms, "           \
    "token_sha256, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "                     \
    "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, role = excluded.role, "            \
    "priority = excluded.priority, ttl_ms = excluded.ttl_ms, "                                   \
    "acquired_ms = excluded.acquired_ms, expires_ms = excluded.expires_ms, "                     \
    "token_sha256 = excluded.token_sha256, generation = excluded.generation")                    \
  X(LEASE_TARGETS_CLEAR, "DELETE FROM lease_target WHERE lease_id = ?1")                         \
  X(LEASE_TARGET_INSERT,                                                                         \
    "INSERT INTO lease_target (lease_id, pos, kind, target) VALUES (?1, ?2, ?3, ?4)")            \
  X(LEASE_NODES_CLEAR, "DELETE FROM lease_node WHERE lease_id = ?1")                             \
  X(LEASE_NODE_INSERT, "INSERT INTO lease_node (lease_id, pos, moniker) VALUES (?1, ?2, ?3)")    \
  X(LEASE_RENEW, "UPDATE lease SET ttl_ms = ?2, expires_ms = ?3, generation = ?4 WHERE id = ?1") \
  X(LEASE_DELETE, "DELETE FROM lease WHERE id = ?1")                                             \
  X(LEASE_LOAD,                                                                                  \
    "SELECT id, holder, role, priority, ttl_ms, acquired_ms, expires_ms, token_sha256, "         \
    "generation FROM lease ORDER BY id")                                                         \
  X(LEASE_TARGET_LOAD,                                                                           \
    "SELECT lease_id, pos, kind, target FROM lease_target "                                      \
    "ORDER BY lease_id, pos")                                                                    \
  X(LEASE_NODE_LOAD, "SELECT lease_id, pos, moniker FROM lease_node ORDER BY lease_id, pos")     \
  X(QUEUE_UPSERT,                                                                                \
    "INSERT INTO lease_queue (id, seq, principal, role, priority, ttl_ms, enqueued_ms, "         \
    "deadline_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "                                      \
    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, principal = excluded.principal, "        \
    "role = excluded.role, priority = excluded.priority, ttl_ms = excluded.ttl_ms, "             \
    "enqueued_ms = excluded.enqueued_ms, deadline_ms = excluded.deadline_ms")                    \
  X(QUEUE_TARGETS_CLEAR, "DELETE FROM lease_queue_target WHERE queue_id = ?1")                   \
  X(QUEUE_TARGET_INSERT,                                                                         \
    "INSERT INTO lease_queue_target (queue_id, pos, kind, target) VALUES (?1, ?2, ?3, ?4)")      \
  X(QUEUE_DELETE, "DELETE FROM lease_queue WHERE id = ?1")                                       \
  X(QUEUE_LOAD,                                                                                  \
    "SELECT id, seq, principal, role, priority, ttl_ms, enqueued_ms, deadline_ms "               \
    "FROM lease_queue ORDER BY priority DESC, seq")                                              \
  X(QUEUE_TARGET_LOAD,                                                                           \
    "SELECT pos, kind, target FROM lease_queue_target WHERE queue_id = ?1 ORDER BY pos")         \
  X(AUDIT_INSERT,                                                                                \
    "INSERT INTO audit_log (seq, time_ms, actor, action, lease_id, targets, "                    \
    "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                               \
  X(AUDIT_TARGET_INSERT, "INSERT INTO audit_target (target, seq) VALUES (?1, ?2)")               \
  X(AUDIT_QUERY_ALL,                                                                             \
    "SELECT seq, time_ms, actor, action, lease_id, targets, detail "                             \
    "FROM audit_log WHERE seq > ?2 AND time_ms >= ?3 ORDER BY seq LIMIT ?4")                     \
  X(AUDIT_QUERY_SINCE,                                                                           \
    "SELECT seq, time_ms, actor, action, lease_id, targets, detail "                             \
    "FROM audit_log WHERE time_ms >= ?3 AND +seq > ?2 ORDER BY +seq "                            \
    "LIMIT ?4")                                                                                  \
  X(AUDIT_QUERY_EXACT,                                                                           \
    "SELECT a.seq, a.time_ms, a.actor, a.action, a.lease_id, a.targets, a.detail "               \
    "FROM audit_target t JOIN audit_log a ON a.seq = t.seq "                                     \
    "WHERE t.target = ?1 AND t.seq > ?2 AND a.time_ms >= ?3 ORDER BY t.seq LIMIT ?4")            \
  X(AUDIT_QUERY_LIKE,                                                                            \
    "SELECT seq, time_ms, actor, action, lease_id, targets, detail "                             \
    "FROM audit_log WHERE targets LIKE ?1 ESCAPE '\\' AND seq > ?2 "                             \
    "AND time_ms >= ?3 ORDER BY seq")                                                            \
  X(AUDIT_QUERY_LIKE_SINCE,                                                                      \
    "SELECT seq, time_ms, actor, action, lease_id, targets, detail FROM audit_log "              \
    "WHERE time_ms >= ?3 AND targets LIKE ?1 ESCAPE '\\' AND +seq > ?2 ORDER BY +seq")           \
  X(FLAGS_UPSERT,                                                                                \
    "INSERT INTO driver_flag (url, disabled) VALUES (?1, ?2) "                                   \
    "ON CONFLICT (url) DO UPDATE SET disabled = excluded.disabled")                              \
  X(FLAGS_DELETE, "DELETE FROM driver_flag WHERE url = ?1")                                      \
  X(FLAGS_LOAD, "SELECT url, disabled FROM driver_flag ORDER BY url")                            \
  X(SPEC_UPSERT,                                                                                 \
    "INSERT INTO composite_spec (name, spec) VALUES (?1, ?2) "                                   \
    "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec")                                     \
  X(SPEC_DELETE, "DELETE FROM composite_spec WHERE name = ?1")                                   \
  X(SPEC_LOAD, "SELECT name, spec FROM composite_spec ORDER BY name")                            \
  X(CERT_SEEN,                                                                                   \
    "INSERT INTO certificate (serial, name, role, not_after_ms, issued, first_seen_ms, "         \
    "last_seen_ms, last_address, revoked_ms, revoked_by, revoke_reason) "                        \
    "VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?6, 0, '', '') "                                         \
    "ON CONFLICT (serial) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, "                  \
    "last_address = excluded.last_address, first_seen_ms = CASE "                                \
    "WHEN certificate.first_seen_ms = 0 THEN excluded.first_seen_ms "                            \
    "ELSE certificate.first_seen_ms END")                                                        \
  X(CERT_ISSUED,                                                                                 \
    "INSERT INTO certificate (serial, name, role, not_after_ms, issued, first_seen_ms, "         \
    "last_seen_ms, last_address, revoked_ms, revoked_by, revoke_reason) "                        \
    "VALUES (?1, ?2, ?3, ?4, 1, 0, 0, '', 0, '', '') "                                           \
    "ON CONFLICT (serial) DO UPDATE SET issued = 1")                                             \
  X(CERT_REVOKE,                                                                                 \
    "UPDATE certificate SET revoked_ms = ?2, revoked_by = ?3, revoke_reason = ?4 "               \
    "WHERE serial = ?1 AND revoked_ms = 0")                                                      \
  X(CERT_EXISTS, "SELECT revoked_ms FROM certificate WHERE serial = ?1")                         \
  X(CERT_LOAD,                                                                                   \
    "SELECT serial, name, role, not_after_ms, issued, first_seen_ms, last_seen_ms, "             \
    "last_address, revoked_ms, revoked_by, revoke_reason FROM certificate "                      \
    "ORDER BY name, serial")                                                                     \
  X(CERT_GET,                                                                                    \
    "SELECT serial, name, role, not_after_ms, issued, first_seen_ms, last_seen_ms, "             \
    "last_address, revoked_ms, revoked_by, revoke_reason FROM certificate WHERE serial = ?1")    \
  X(TOKEN_INSERT,                                                                                \
    "INSERT INTO join_token (id, secret_sha256, role, name, name_prefix, created_ms, "           \
    "created_by, expires_ms, uses_left, revoked_ms) "                                            \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)")                                            \
  X(TOKEN_LABEL_INSERT,                                                                          \
    "INSERT INTO join_token_label (token_id, pos, label_key, label_value) "                      \
    "VALUES (?1, ?2, ?3, ?4)")                                                                   \
  X(TOKEN_SET_USES, "UPDATE join_token SET uses_left = ?2 WHERE id = ?1")                        \
  X(TOKEN_REVOKE, "UPDATE join_token SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms = 0")      \
  X(TOKEN_EXISTS, "SELECT revoked_ms FROM join_token WHERE id = ?1")                             \
  X(TOKEN_LOAD,                                                                                  \
    "SELECT id, secret_sha256, role, name, name_prefix, created_ms, created_by, expires_ms, "    \
    "uses_left, revoked_ms FROM join_token ORDER BY created_ms, id")                             \
  X(TOKEN_LABEL_LOAD,                                                                            \
    "SELECT label_key, label_value FROM join_token_label WHERE token_id = ?1 ORDER BY pos")

typedef enum store_stmt {
#define STORE_STMT_ENUM_(id, sql) STMT_##id,
  STORE_STATEMENTS(STORE_STMT_ENUM_)
#undef STORE_STMT_ENUM_
      STMT_COUNT
} store_stmt_t;

/* The audit log's sequence has no counter row: rows are never deleted, so its largest seq
 * is the last one handed out. It is kept beside the counters, at this index. */
#define STORE_SEQ_AUDIT STORE_ID_KIND_COUNT

/* Load scratch: the targets and nodes of the record being read (strings copied out of
 * statements that step on). */
#define STORE_TEXT_SLOTS (STORE_TARGETS_MAX + STORE_NODES_MAX)

struct store {
  sqlite3 *db;
  char *path; /* <state_dir>/dfnet.db, owned */
  uint32_t version;
  bool in_tx;     /* between store__begin and store__commit / store__rollback */
  bool tx_lost;   /* SQLite rolled that transaction back by itself (a full disk ...) */
  unsigned depth; /* store_sql__op_begin calls not yet ended */
  uint64_t last[STORE_ID_KIND_COUNT + 1]; /* the last value handed out, per counter */
  sqlite3_stmt *stmt[STMT_COUNT];
  store_target_t targets[STORE_TARGETS_MAX];
  const char *nodes[STORE_NODES_MAX];
  char (*text)[STORE_TARGET_MAX + 1]; /* [STORE_TEXT_SLOTS], owned */
  char audit_text[STORE_AUDIT_TEXT_MAX + 1];
};

/* ---- Failures (store_sql.c) --------------------------------------------------------- */

/* The one place a SQLite result code becomes a status (store.h "Errors"). sys_errno: the
 * errno SQLite saw for CANTOPEN and IOERR (sqlite3_system_errno), else 0. */
dfnet_status_t store_sql__status(int rc, int sys_errno);

/* Report SQLite's failure rc while doing what fmt says: "<path>: <what>: <SQLite's message>
 * (SQLite <extended code>)" into err. Returns the status of rc. */
dfnet_status_t store_sql__fail(store_t *s, int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6), warn_unused_result));

/* A row read back that breaks the record's bounds: "<path>: <table> row <id>: <why>" into
 * err. Returns DATA_LOSS. */
dfnet_status_t store_sql__damaged(store_t *s, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), warn_unused_result));

/* ---- Statements (store_sql.c) ------------------------------------------------------- */

/* Statement `id`, reset and with its bindings cleared. */
sqlite3_stmt *store_sql__stmt(store_t *s, store_stmt_t id);

/* Run a statement that returns no rows to its end, then reset it. Returns SQLite's code
 * (SQLITE_DONE on success); the statement's error message is still readable. */
int store_sql__run(store_t *s, sqlite3_stmt *st);

/* Bind helpers; they return SQLite's code. Strings are bound without a copy: rebind before
 * every step (store_sql__stmt clears the bindings). v must be below 2^63 (checked first). */
int store_sql__bind_text(sqlite3_stmt *st, int idx, const char *text);
int store_sql__bind_u63(sqlite3_stmt *st, int idx, uint64_t v);

/* Column readers: false when the column is not of the type, negative, or text with a NUL
 * inside. A text is valid until the statement steps on. */
bool store_sql__col_u63(sqlite3_stmt *st, int col, uint64_t *out);
bool store_sql__col_text(sqlite3_stmt *st, int col, const char **out, size_t *len);

/* Copy a row's target text into the load scratch slot `slot` (< STORE_TEXT_SLOTS).
 * Returns the copy, or NULL when it is over STORE_TARGET_MAX bytes or not text. */
const char *store_sql__col_copy(store_t *s, sqlite3_stmt *st, int col, size_t slot);

/* The end of a walk over the rows of st, whose last sqlite3_step returned rc: status, the
 * walk's own, unless it is OK and that step failed (neither a row, where the walk stopped
 * early, nor the end): then SQLite's failure, reported as `what` ("reading the
 * certificates"). Resets st. */
dfnet_status_t store_sql__walk_end(store_t *s, sqlite3_stmt *st, int rc, dfnet_status_t status,
                                   const char *what, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* ---- Write brackets (store_tx.c) ---------------------------------------------------- */

/* Start one call's writes: BEGIN, or SAVEPOINT inside a transaction or another call's
 * bracket. Errors: ABORTED (SQLite had rolled back the caller's transaction); as SQLite. */
dfnet_status_t store_sql__op_begin(store_t *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* End the bracket: with st OK, COMMIT or RELEASE (a failure is returned, with err);
 * otherwise undo the call's writes and return st (err is left as the caller wrote it). */
dfnet_status_t store_sql__op_end(store_t *s, dfnet_status_t st, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* ---- Shared writes (store_write.c) -------------------------------------------------- */

/* Replace the targets of row `id`: `clear` (its parameter: the id) removes the old ones,
 * `insert` (the id, the index, the kind, the text) adds targets[0..count) in order. Inside
 * the caller's bracket; values were checked before (a failed bind leaves NULL, which the
 * NOT NULL columns refuse). Returns SQLite's code (SQLITE_DONE on success). */
int store_sql__write_targets(store_t *s, store_stmt_t clear, store_stmt_t insert, uint64_t id,
                             const store_target_t *targets, size_t count);

/* Run st (bound; reset afterwards either way), a write of one row keyed `key`, in a
 * bracket of its own. A failure is reported "<doing> <what> <key>" (store_sql__fail's
 * statuses); with must_change, a run that changed no row is NOT_FOUND ("<path>: no <what>
 * <key>"). Errors: also store_sql__op_begin's and store_sql__op_end's. */
dfnet_status_t store_sql__write_one(store_t *s, sqlite3_stmt *st, const char *doing,
                                    bool must_change, const char *what, const char *key, char *err,
                                    size_t err_size) __attribute__((warn_unused_result));

/* Delete row `id` of `what` with statement `stmt` (its one parameter: the id), as
 * store_sql__write_one "deleting", must_change. An id over 2^63 - 1 names no row:
 * NOT_FOUND. */
dfnet_status_t store_sql__delete_id(store_t *s, store_stmt_t stmt, uint64_t id, const char *what,
                                    char *err, size_t err_size) __attribute__((warn_unused_result));

/* Revoke the row keyed `key` at time_ms (checked by the caller): `exists` reads its
 * revoked_ms column (its one parameter: the key), then `revoke` sets it (parameters: 1 the
 * key, 2 the time, 3 `by` and 4 `reason` when not NULL; store_cert.c, store_token.c). OK;
 * NOT_FOUND ("<path>: no <what> <key>" into err); FAILED_PRECONDITION ("<what> <key> was
 * revoked already"); DATA_LOSS; as SQLite says (store_sql__write_one's). */
dfnet_status_t store_sql__revoke(store_t *s, store_stmt_t exists, store_stmt_t revoke,
                                 const char *what, const char *key, uint64_t time_ms,
                                 const char *by, const char *reason, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* ---- Counters (store_counter.c) ----------------------------------------------------- */

/* Take the next value of counter `kind` (a store_id_kind_t) and write it to store_counter. */
dfnet_status_t store_sql__take(store_t *s, store_id_kind_t kind, uint64_t *out, char *err,
                               size_t err_size) __attribute__((warn_unused_result));

/* ---- Checks every record shares (store_check.c) ------------------------------------- */

/* Is text 1..max bytes (min 0: may be empty) without control characters? On false, err
 * says "<field>: ..." and the caller returns INVALID_ARGUMENT (or DATA_LOSS for a row). */
bool store_sql__check_text(const char *text, size_t min, size_t max, const char *field, char *err,
                           size_t err_size);

/* targets[0..count): min..STORE_TARGETS_MAX of them, each a known kind and a valid text. */
bool store_sql__check_targets(const store_target_t *targets, size_t count, size_t min, char *err,
                              size_t err_size);

/* nodes[0..count): at most STORE_NODES_MAX node monikers. */
bool store_sql__check_nodes(const char *const *nodes, size_t count, char *err, size_t err_size);

/* Is v below 2^63 (what a SQL BIGINT holds)? */
bool store_sql__check_u63(uint64_t v, const char *field, char *err, size_t err_size);

/* The text a role is stored as ("admin", "operator", "viewer"), or NULL for a role that is
 * not a client's. */
const char *store_sql__role_name(dfnet_v1_Role role);

/* The client role stored as `name`; false for any other text. */
bool store_sql__role_parse(const char *name, dfnet_v1_Role *out);

/* ---- Schema (store_schema.c) -------------------------------------------------------- */

/* Read the file's schema version and apply the migrations it lacks, each in one
 * transaction; s->version is the result. Errors: DATA_LOSS (not dfnet's or damaged),
 * FAILED_PRECONDITION (newer than STORE_SCHEMA_VERSION), as SQLite says. */
dfnet_status_t store_schema__migrate(store_t *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Load the counters (store_counter, and the audit log's largest seq) into s->last, each at
 * least the largest id its table holds (fencing generations: the row alone). Errors:
 * DATA_LOSS; as SQLite says. */
dfnet_status_t store_schema__load_counters(store_t *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* The counter's row name in store_counter ("lease_id" ...). */
const char *store_schema__counter_name(store_id_kind_t kind);

#endif /* DFNET_MANAGER_STORE_INTERNAL_H */
