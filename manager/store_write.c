/* dfnet-manager: the writes the store's records share (store_internal.h): a row's targets
 * replaced, one row written in a bracket of its own, a row revoked, a row deleted by id. */
#include <stdio.h>

#include <sqlite3.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

/* ---- Shared writes ---------------------------------------------------------------------- */

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
