/* dfnet-manager: the durable store on SQLite (store.h): opening, closing, SQLite's result
 * codes, transactions, counters and the checks every record shares. */
#include "manager/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/fileio.h"
#include "lib/role.h"
#include "manager/store_internal.h"

#define STORE_SQLITE_MIN 3024000 /* upserts (ON CONFLICT ... DO UPDATE) */

static const char *const statement_sql[STMT_COUNT] = {
#define STORE_STMT_SQL_(id, sql) [STMT_##id] = sql,
    STORE_STATEMENTS(STORE_STMT_SQL_)
#undef STORE_STMT_SQL_
};

/* ---- Failures --------------------------------------------------------------------------- */

dfnet_status_t store_sql__status(int rc, int sys_errno) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return DFNET_STATUS_OK;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
  case SQLITE_FORMAT:
    return DFNET_STATUS_DATA_LOSS;
  case SQLITE_FULL:
  case SQLITE_NOMEM:
  case SQLITE_TOOBIG:
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  case SQLITE_PERM:
  case SQLITE_READONLY:
  case SQLITE_AUTH:
    return DFNET_STATUS_PERMISSION_DENIED;
  case SQLITE_CANTOPEN:
  case SQLITE_IOERR:
    return sys_errno != 0 ? dfnet_errno_status(sys_errno) : DFNET_STATUS_UNAVAILABLE;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_PROTOCOL:
    return DFNET_STATUS_UNAVAILABLE;
  case SQLITE_ABORT:
  case SQLITE_INTERRUPT:
    return DFNET_STATUS_ABORTED;
  case SQLITE_CONSTRAINT:
    return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY
               ? DFNET_STATUS_ALREADY_EXISTS
               : DFNET_STATUS_FAILED_PRECONDITION;
  default: /* SQLITE_ERROR (our SQL), SQLITE_MISUSE, SQLITE_RANGE, SQLITE_SCHEMA ... */
    return DFNET_STATUS_INTERNAL;
  }
}

dfnet_status_t store_sql__fail(store_t *s, int rc, char *err, size_t err_size, const char *fmt,
                               ...) {
  int base = rc & 0xff;
  int sys = (base == SQLITE_CANTOPEN || base == SQLITE_IOERR) && s->db != NULL
                ? sqlite3_system_errno(s->db)
                : 0;
  const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (sys != 0)
    dfnet_why_set(err, err_size, "%s: %s: %s (SQLite %d, errno %d: %s)", s->path, what, msg, rc,
                  sys, strerror(sys));
  else
    dfnet_why_set(err, err_size, "%s: %s: %s (SQLite %d)", s->path, what, msg, rc);
  return store_sql__status(rc, sys);
}

dfnet_status_t store_sql__damaged(store_t *s, char *err, size_t err_size, const char *fmt, ...) {
  char what[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  dfnet_why_set(err, err_size, "%s: damaged: %s", s->path, what);
  return DFNET_STATUS_DATA_LOSS;
}

/* ---- Statements ------------------------------------------------------------------------- */

sqlite3_stmt *store_sql__stmt(store_t *s, store_stmt_t id) {
  sqlite3_stmt *st = s->stmt[id];
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

int store_sql__run(store_t *s, sqlite3_stmt *st) {
  (void)s;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    rc = SQLITE_DONE; /* a statement of ours that writes returns no rows */
  /* reset after reading the code: the message stays with the connection */
  if (rc == SQLITE_DONE)
    sqlite3_reset(st);
  return rc;
}

int store_sql__bind_text(sqlite3_stmt *st, int idx, const char *text) {
  return sqlite3_bind_text(st, idx, text, -1, SQLITE_STATIC);
}

int store_sql__bind_u63(sqlite3_stmt *st, int idx, uint64_t v) {
  if (v > (uint64_t)INT64_MAX)
    return SQLITE_RANGE;
  return sqlite3_bind_int64(st, idx, (sqlite3_int64)v);
}

bool store_sql__col_u63(sqlite3_stmt *st, int col, uint64_t *out) {
  if (sqlite3_column_type(st, col) != SQLITE_INTEGER)
    return false;
  sqlite3_int64 v = sqlite3_column_int64(st, col);
  if (v < 0)
    return false;
  *out = (uint64_t)v;
  return true;
}

bool store_sql__col_text(sqlite3_stmt *st, int col, const char **out, size_t *len) {
  if (sqlite3_column_type(st, col) != SQLITE_TEXT)
    return false;
  const char *t = (const char *)sqlite3_column_text(st, col);
  int n = sqlite3_column_bytes(st, col);
  if (t == NULL || n < 0 || strlen(t) != (size_t)n)
    return false;
  *out = t;
  if (len != NULL)
    *len = (size_t)n;
  return true;
}

const char *store_sql__col_copy(store_t *s, sqlite3_stmt *st, int col, size_t slot) {
  const char *t;
  size_t n;
  if (slot >= STORE_TEXT_SLOTS || !store_sql__col_text(st, col, &t, &n) || n > STORE_TARGET_MAX)
    return NULL;
  memcpy(s->text[slot], t, n + 1);
  return s->text[slot];
}

/* ---- Write brackets --------------------------------------------------------------------- */

/* Run a bracket statement; SQLite's code. */
static int bracket(store_t *s, store_stmt_t id) {
  return store_sql__run(s, store_sql__stmt(s, id));
}

/* Did SQLite end the caller's transaction by itself (it does after some I/O errors)? */
static bool tx_gone(store_t *s) {
  if (s->in_tx && !s->tx_lost && sqlite3_get_autocommit(s->db))
    s->tx_lost = true;
  return s->tx_lost;
}

dfnet_status_t store_sql__op_begin(store_t *s, char *err, size_t err_size) {
  if (tx_gone(s)) {
    dfnet_why_set(err, err_size,
                  "%s: the transaction was rolled back after an earlier failure; roll back",
                  s->path);
    return DFNET_STATUS_ABORTED;
  }
  bool nested = s->in_tx || s->depth > 0;
  int rc = bracket(s, nested ? STMT_SAVEPOINT : STMT_BEGIN);
  if (rc != SQLITE_DONE)
    return store_sql__fail(s, rc, err, err_size, "starting a write");
  s->depth++;
  return DFNET_STATUS_OK;
}

/* Undo the bracket's writes; nothing to report (the caller's failure is what counts). */
static void op_undo(store_t *s, bool nested) {
  if (nested) {
    if (tx_gone(s) || (!s->in_tx && sqlite3_get_autocommit(s->db)))
      return;
    if (bracket(s, STMT_ROLLBACK_TO) == SQLITE_DONE)
      (void)bracket(s, STMT_RELEASE);
  } else if (!sqlite3_get_autocommit(s->db)) {
    (void)bracket(s, STMT_ROLLBACK);
  }
}

dfnet_status_t store_sql__op_end(store_t *s, dfnet_status_t st, char *err, size_t err_size) {
  s->depth--;
  bool nested = s->in_tx || s->depth > 0;
  if (st == DFNET_STATUS_OK) {
    int rc = bracket(s, nested ? STMT_RELEASE : STMT_COMMIT);
    if (rc == SQLITE_DONE)
      return DFNET_STATUS_OK;
    st = store_sql__fail(s, rc, err, err_size, nested ? "ending a write" : "committing");
  }
  op_undo(s, nested);
  return st;
}

int store_sql__write_targets(store_t *s, store_stmt_t clear, store_stmt_t insert, uint64_t id,
                             const store_target_t *targets, size_t count) {
  sqlite3_stmt *st = store_sql__stmt(s, clear);
  store_sql__bind_u63(st, 1, id);
  int rc = store_sql__run(s, st);
  for (size_t i = 0; rc == SQLITE_DONE && i < count; i++) {
    st = store_sql__stmt(s, insert);
    store_sql__bind_u63(st, 1, id);
    sqlite3_bind_int(st, 2, (int)i);
    sqlite3_bind_int(st, 3, (int)targets[i].kind);
    store_sql__bind_text(st, 4, targets[i].text);
    rc = store_sql__run(s, st);
  }
  return rc;
}

dfnet_status_t store_sql__write_one(store_t *s, sqlite3_stmt *st, const char *doing,
                                    bool must_change, const char *what, const char *key, char *err,
                                    size_t err_size) {
  dfnet_status_t status = store_sql__op_begin(s, err, err_size);
  if (status != DFNET_STATUS_OK) {
    sqlite3_reset(st);
    return status;
  }
  int rc = store_sql__run(s, st);
  if (rc != SQLITE_DONE) {
    status = store_sql__fail(s, rc, err, err_size, "%s %s %s", doing, what, key);
  } else if (must_change && sqlite3_changes(s->db) == 0) {
    dfnet_why_set(err, err_size, "%s: no %s %s", s->path, what, key);
    status = DFNET_STATUS_NOT_FOUND;
  }
  sqlite3_reset(st);
  return store_sql__op_end(s, status, err, err_size);
}

dfnet_status_t store_sql__walk_end(store_t *s, sqlite3_stmt *st, int rc, dfnet_status_t status,
                                   const char *what, char *err, size_t err_size) {
  if (status == DFNET_STATUS_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
    status = store_sql__fail(s, rc, err, err_size, "%s", what);
  sqlite3_reset(st);
  return status;
}

/* The revoked_ms column of the row keyed `key` (statement `stmt`, its one parameter). */
static dfnet_status_t revoked_ms(store_t *s, store_stmt_t stmt, const char *what, const char *key,
                                 uint64_t *out, char *err, size_t err_size) {
  sqlite3_stmt *st = store_sql__stmt(s, stmt);
  store_sql__bind_text(st, 1, key);
  int rc = sqlite3_step(st);
  dfnet_status_t status = DFNET_STATUS_OK;
  if (rc == SQLITE_DONE) {
    dfnet_why_set(err, err_size, "%s: no %s %s", s->path, what, key);
    status = DFNET_STATUS_NOT_FOUND;
  } else if (rc != SQLITE_ROW) {
    status = store_sql__fail(s, rc, err, err_size, "reading %s %s", what, key);
  } else if (!store_sql__col_u63(st, 0, out)) {
    status = store_sql__damaged(s, err, err_size, "%s %s: revoked_ms is not a time", what, key);
  }
  sqlite3_reset(st);
  return status;
}

dfnet_status_t store_sql__revoke(store_t *s, store_stmt_t exists, store_stmt_t revoke,
                                 const char *what, const char *key, uint64_t time_ms,
                                 const char *by, const char *reason, char *err, size_t err_size) {
  uint64_t revoked = 0;
  dfnet_status_t status = revoked_ms(s, exists, what, key, &revoked, err, err_size);
  if (status != DFNET_STATUS_OK)
    return status;
  if (revoked != 0) {
    dfnet_why_set(err, err_size, "%s %s was revoked already", what, key);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  sqlite3_stmt *st = store_sql__stmt(s, revoke);
  store_sql__bind_text(st, 1, key);
  store_sql__bind_u63(st, 2, time_ms);
  if (by != NULL)
    store_sql__bind_text(st, 3, by);
  if (reason != NULL)
    store_sql__bind_text(st, 4, reason);
  return store_sql__write_one(s, st, "revoking", true, what, key, err, err_size);
}

dfnet_status_t store_sql__delete_id(store_t *s, store_stmt_t stmt, uint64_t id, const char *what,
                                    char *err, size_t err_size) {
  char key[24];
  snprintf(key, sizeof key, "%llu", (unsigned long long)id);
  if (id > (uint64_t)INT64_MAX) {
    dfnet_why_set(err, err_size, "%s: no %s %s", s->path, what, key);
    return DFNET_STATUS_NOT_FOUND;
  }
  sqlite3_stmt *st = store_sql__stmt(s, stmt);
  store_sql__bind_u63(st, 1, id);
  return store_sql__write_one(s, st, "deleting", true, what, key, err, err_size);
}

/* ---- Transactions ----------------------------------------------------------------------- */

dfnet_status_t store__begin(store_t *s, char *err, size_t err_size) {
  if (s->in_tx || s->depth > 0) {
    dfnet_why_set(err, err_size, "%s: a transaction is open already", s->path);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  int rc = bracket(s, STMT_BEGIN);
  if (rc != SQLITE_DONE)
    return store_sql__fail(s, rc, err, err_size, "beginning a transaction");
  s->in_tx = true;
  s->tx_lost = false;
  return DFNET_STATUS_OK;
}

dfnet_status_t store__commit(store_t *s, char *err, size_t err_size) {
  if (!s->in_tx) {
    dfnet_why_set(err, err_size, "%s: no transaction is open", s->path);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  bool lost = tx_gone(s);
  s->in_tx = false;
  s->tx_lost = false;
  if (lost) {
    dfnet_why_set(err, err_size,
                  "%s: the transaction was rolled back after an earlier failure; nothing of it "
                  "was written",
                  s->path);
    return DFNET_STATUS_ABORTED;
  }
  int rc = bracket(s, STMT_COMMIT);
  if (rc == SQLITE_DONE)
    return DFNET_STATUS_OK;
  dfnet_status_t st = store_sql__fail(s, rc, err, err_size, "committing");
  if (!sqlite3_get_autocommit(s->db))
    (void)bracket(s, STMT_ROLLBACK);
  return st;
}

void store__rollback(store_t *s) {
  if (s == NULL || !s->in_tx)
    return;
  if (!sqlite3_get_autocommit(s->db))
    (void)bracket(s, STMT_ROLLBACK);
  s->in_tx = false;
  s->tx_lost = false;
}

bool store__in_transaction(const store_t *s) { return s->in_tx; }

/* ---- Counters --------------------------------------------------------------------------- */

dfnet_status_t store_sql__take(store_t *s, store_id_kind_t kind, uint64_t *out, char *err,
                               size_t err_size) {
  if (s->last[kind] >= (uint64_t)INT64_MAX) {
    dfnet_why_set(err, err_size, "%s: counter %s is exhausted", s->path,
                  store_schema__counter_name(kind));
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  uint64_t v = s->last[kind] + 1;
  sqlite3_stmt *st = store_sql__stmt(s, STMT_COUNTER_SET);
  store_sql__bind_text(st, 1, store_schema__counter_name(kind));
  store_sql__bind_u63(st, 2, v);
  int rc = store_sql__run(s, st);
  if (rc != SQLITE_DONE)
    return store_sql__fail(s, rc, err, err_size, "advancing counter %s",
                           store_schema__counter_name(kind));
  if (sqlite3_changes(s->db) != 1)
    return store_sql__damaged(s, err, err_size, "store_counter has no row %s",
                              store_schema__counter_name(kind));
  s->last[kind] = v;
  *out = v;
  return DFNET_STATUS_OK;
}

dfnet_status_t store__next(store_t *s, store_id_kind_t kind, uint64_t *out, char *err,
                           size_t err_size) {
  if ((unsigned)kind >= STORE_ID_KIND_COUNT) {
    dfnet_why_set(err, err_size, "no counter %d", (int)kind);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  return store_sql__op_end(s, store_sql__take(s, kind, out, err, err_size), err, err_size);
}

/* ---- Checks ----------------------------------------------------------------------------- */

bool store_sql__check_text(const char *text, size_t min, size_t max, const char *field, char *err,
                           size_t err_size) {
  if (text == NULL) {
    dfnet_why_set(err, err_size, "%s: missing", field);
    return false;
  }
  size_t n = strnlen(text, max + 1);
  if (n < min || n > max) {
    dfnet_why_set(err, err_size, "%s: %s (%zu..%zu bytes)", field, n < min ? "empty" : "too long",
                  min, max);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c < 0x20 || c == 0x7f) {
      dfnet_why_set(err, err_size, "%s: control character 0x%02x at byte %zu", field, c, i);
      return false;
    }
  }
  return true;
}

bool store_sql__check_targets(const store_target_t *targets, size_t count, size_t min, char *err,
                              size_t err_size) {
  if (count < min || count > STORE_TARGETS_MAX || (count > 0 && targets == NULL)) {
    dfnet_why_set(err, err_size, "targets: %zu of them (%zu..%u)", count, min, STORE_TARGETS_MAX);
    return false;
  }
  for (size_t i = 0; i < count; i++) {
    char field[32];
    snprintf(field, sizeof field, "target %zu", i);
    if ((unsigned)targets[i].kind > STORE_TARGET_SELECTOR) {
      dfnet_why_set(err, err_size, "%s: unknown kind %d", field, (int)targets[i].kind);
      return false;
    }
    if (!store_sql__check_text(targets[i].text, 1, STORE_TARGET_MAX, field, err, err_size))
      return false;
  }
  return true;
}

bool store_sql__check_nodes(const char *const *nodes, size_t count, char *err, size_t err_size) {
  if (count > STORE_NODES_MAX || (count > 0 && nodes == NULL)) {
    dfnet_why_set(err, err_size, "nodes: %zu of them (at most %u)", count, STORE_NODES_MAX);
    return false;
  }
  for (size_t i = 0; i < count; i++) {
    char field[32];
    snprintf(field, sizeof field, "node %zu", i);
    if (!store_sql__check_text(nodes[i], 1, STORE_TARGET_MAX, field, err, err_size))
      return false;
  }
  return true;
}

bool store_sql__check_u63(uint64_t v, const char *field, char *err, size_t err_size) {
  if (v <= (uint64_t)INT64_MAX)
    return true;
  dfnet_why_set(err, err_size, "%s: %llu is over 2^63 - 1", field, (unsigned long long)v);
  return false;
}

const char *store_sql__role_name(dfnet_v1_Role role) {
  const dfnet_role_t *r = dfnet_role_by_wire(role);
  return r != NULL && r->client_rank > 0 ? r->name : NULL;
}

bool store_sql__role_parse(const char *name, dfnet_v1_Role *out) {
  const dfnet_role_t *r = dfnet_role_by_name(name);
  if (r == NULL || r->client_rank == 0)
    return false;
  *out = r->wire;
  return true;
}

/* ---- Opening and closing ---------------------------------------------------------------- */

/* Create the file 0600 when it is not there (SQLite would make it 0644 less the umask; its
 * -wal and -shm files take the database file's mode). */
static dfnet_status_t create_private(const char *path, char *err, size_t err_size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    return DFNET_STATUS_OK;
  }
  if (errno == EEXIST)
    return DFNET_STATUS_OK;
  int e = errno;
  dfnet_why_set(err, err_size, "%s: creating: %s (errno %d)", path, strerror(e), e);
  return dfnet_errno_status(e);
}

/* Run a PRAGMA and read its one text answer into out (may be NULL). */
static int pragma(store_t *s, const char *sql, char *out, size_t out_size) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  if (out != NULL && out_size > 0)
    out[0] = '\0';
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    if (out != NULL && t != NULL)
      snprintf(out, out_size, "%s", (const char *)t);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A failure at open: SQLite's message, and what a damaged file means for its owner. */
static dfnet_status_t open_fail(store_t *s, int rc, char *err, size_t err_size, const char *what) {
  dfnet_status_t st = store_sql__fail(s, rc, err, err_size, "%s", what);
  if (st == DFNET_STATUS_DATA_LOSS && err != NULL) {
    size_t n = strlen(err);
    dfnet_why_set(err + n, err_size - n,
                  "; the file is damaged or not a dfnet store: move it away to start with an "
                  "empty one (its leases and audit log are then lost)");
  }
  return st;
}

/* WAL, synchronous=FULL, foreign keys, busy timeout: store.h "Backend". */
static dfnet_status_t configure(store_t *s, char *err, size_t err_size) {
  char answer[32];
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
  (void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  int rc = pragma(s, "PRAGMA journal_mode=WAL", answer, sizeof answer);
  if (rc != SQLITE_OK)
    return open_fail(s, rc, err, err_size, "opening");
  if (sqlite3_db_readonly(s->db, "main") == 1) {
    dfnet_why_set(err, err_size, "%s: can only be read (its permissions or its file system)",
                  s->path);
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  if (strcmp(answer, "wal") != 0) {
    dfnet_why_set(err, err_size, "%s: cannot use a write-ahead log here (journal mode \"%s\")",
                  s->path, answer);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if ((rc = pragma(s, "PRAGMA synchronous=FULL", NULL, 0)) != SQLITE_OK ||
      (rc = pragma(s, "PRAGMA foreign_keys=ON", NULL, 0)) != SQLITE_OK ||
      (rc = pragma(s, "PRAGMA foreign_keys", answer, sizeof answer)) != SQLITE_OK)
    return open_fail(s, rc, err, err_size, "setting up");
  if (strcmp(answer, "1") != 0) {
    dfnet_why_set(err, err_size, "%s: this SQLite cannot enforce foreign keys", s->path);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t prepare_all(store_t *s, char *err, size_t err_size) {
  for (int i = 0; i < STMT_COUNT; i++) {
    int rc = sqlite3_prepare_v3(s->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                NULL);
    if (rc != SQLITE_OK)
      return open_fail(s, rc, err, err_size, "preparing the statements");
  }
  return DFNET_STATUS_OK;
}

/* Allocate the store and build its path. */
static dfnet_status_t store_alloc(const char *state_dir, store_t **out, char *err,
                                  size_t err_size) {
  size_t dir_len = state_dir != NULL ? strnlen(state_dir, PATH_MAX) : 0;
  if (dir_len == 0 || dir_len + sizeof "/" STORE_FILE_NAME > PATH_MAX) {
    dfnet_why_set(err, err_size, "state directory: %s", dir_len == 0 ? "missing" : "too long");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  store_t *s = calloc(1, sizeof *s);
  char *path = malloc(dir_len + sizeof "/" STORE_FILE_NAME);
  char(*text)[STORE_TARGET_MAX + 1] = calloc(STORE_TEXT_SLOTS, sizeof *text);
  if (s == NULL || path == NULL || text == NULL) {
    free(s);
    free(path);
    free(text);
    dfnet_why_set(err, err_size, "%s: out of memory", state_dir);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  snprintf(path, dir_len + sizeof "/" STORE_FILE_NAME, "%.*s/%s", (int)dir_len, state_dir,
           STORE_FILE_NAME);
  s->path = path;
  s->text = text;
  *out = s;
  return DFNET_STATUS_OK;
}

dfnet_status_t store__open(const char *state_dir, store_t **out, char *err, size_t err_size) {
  *out = NULL;
  if (sqlite3_libversion_number() < STORE_SQLITE_MIN) {
    dfnet_why_set(err, err_size, "SQLite %s is too old: the store needs 3.24 or newer",
                  sqlite3_libversion());
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  store_t *s;
  dfnet_status_t st = store_alloc(state_dir, &s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  st = create_private(s->path, err, err_size);
  if (st != DFNET_STATUS_OK)
    goto open_failed;
  int rc = sqlite3_open_v2(s->path, &s->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    st = open_fail(s, rc, err, err_size, "opening");
    goto open_failed;
  }
  if ((st = configure(s, err, err_size)) != DFNET_STATUS_OK ||
      (st = store_schema__migrate(s, err, err_size)) != DFNET_STATUS_OK ||
      (st = prepare_all(s, err, err_size)) != DFNET_STATUS_OK ||
      (st = store_schema__load_counters(s, err, err_size)) != DFNET_STATUS_OK)
    goto open_failed;
  *out = s;
  return DFNET_STATUS_OK;

open_failed:
  store__close(s);
  return st;
}

void store__close(store_t *s) {
  if (s == NULL)
    return;
  if (s->db != NULL) {
    store__rollback(s);
    for (int i = 0; i < STMT_COUNT; i++)
      sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
  }
  free(s->text);
  free(s->path);
  free(s);
}

const char *store__path(const store_t *s) { return s->path; }

uint32_t store__schema_version(const store_t *s) { return s->version; }
