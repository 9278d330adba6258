/* dfnet-manager: the store's write brackets and transactions (store_internal.h, store.h
 * "Transactions"): every call's writes in a transaction of their own, or in a savepoint
 * inside the caller's (store__begin ... store__commit / store__rollback). A transaction
 * SQLite rolled back by itself (after some I/O errors) is noticed and reported. */
#include "manager/store.h"

#include <sqlite3.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

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
