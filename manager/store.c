/* dfnet-manager: the durable store on SQLite (store.h): opening it (the file created 0600,
 * the connection set up, the schema migrated, every statement prepared, the counters
 * loaded) and closing it. The rest: store_internal.h "Files". */
#include "manager/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

#define STORE_SQLITE_MIN 3024000 /* upserts (ON CONFLICT ... DO UPDATE) */

static const char *const statement_sql[STMT_COUNT] = {
#define STORE_STMT_SQL_(id, sql) [STMT_##id] = sql,
    STORE_STATEMENTS(STORE_STMT_SQL_)
#undef STORE_STMT_SQL_
};

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
