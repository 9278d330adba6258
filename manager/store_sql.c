/* dfnet-manager: the store's SQLite calls (store_internal.h): its result codes made statuses
 * and failures reported, the prepared statements run, bound and read, and the end of a walk
 * over their rows. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

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

dfnet_status_t store_sql__walk_end(store_t *s, sqlite3_stmt *st, int rc, dfnet_status_t status,
                                   const char *what, char *err, size_t err_size) {
  if (status == DFNET_STATUS_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
    status = store_sql__fail(s, rc, err, err_size, "%s", what);
  sqlite3_reset(st);
  return status;
}
