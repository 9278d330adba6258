/* dfnet-manager: the store's schema and its migrations (store.h "Schema versions").
 *
 * Migrations are applied in order, each in one transaction with the schema_version update,
 * and never edited once released: a change is a new migration at the end. Types are the
 * standard ones (BIGINT, SMALLINT, VARCHAR, BOOLEAN, BLOB); INTEGER PRIMARY KEY makes
 * SQLite keep the table in that key's order (its rowid) and is standard SQL too. Lengths
 * are not enforced by SQLite: the store checks every value (store_check.c), on write and on read.
 */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

typedef struct migration {
  uint32_t version;
  const char *what;
  const char *sql;
} migration_t;

static const migration_t migrations[] = {
    {1, "leases, the wait queue and the audit log",
     "CREATE TABLE schema_version (version INTEGER NOT NULL);"
     "INSERT INTO schema_version (version) VALUES (0);"
     /* durable counters: the last value handed out */
     "CREATE TABLE store_counter ("
     " name VARCHAR(32) NOT NULL PRIMARY KEY,"
     " last_value BIGINT NOT NULL);"
     "INSERT INTO store_counter (name, last_value) VALUES"
     " ('lease_id', 0), ('queue_id', 0), ('queue_seq', 0), ('fence', 0);"
     "CREATE TABLE lease ("
     " id INTEGER PRIMARY KEY,"
     " holder VARCHAR(64) NOT NULL,"
     " role VARCHAR(16) NOT NULL,"
     " priority SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 2),"
     " ttl_ms BIGINT NOT NULL,"
     " acquired_ms BIGINT NOT NULL,"
     " expires_ms BIGINT NOT NULL,"
     " token_sha256 BLOB NOT NULL,"
     " generation BIGINT NOT NULL);"
     "CREATE TABLE lease_target ("
     " lease_id BIGINT NOT NULL REFERENCES lease (id) ON DELETE CASCADE,"
     " pos SMALLINT NOT NULL,"
     " kind SMALLINT NOT NULL CHECK (kind BETWEEN 0 AND 2),"
     " target VARCHAR(511) NOT NULL,"
     " PRIMARY KEY (lease_id, pos));"
     "CREATE TABLE lease_node ("
     " lease_id BIGINT NOT NULL REFERENCES lease (id) ON DELETE CASCADE,"
     " pos SMALLINT NOT NULL,"
     " moniker VARCHAR(511) NOT NULL,"
     " PRIMARY KEY (lease_id, pos));"
     "CREATE TABLE lease_queue ("
     " id INTEGER PRIMARY KEY,"
     " seq BIGINT NOT NULL UNIQUE,"
     " principal VARCHAR(64) NOT NULL,"
     " role VARCHAR(16) NOT NULL,"
     " priority SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 2),"
     " ttl_ms BIGINT NOT NULL,"
     " enqueued_ms BIGINT NOT NULL,"
     " deadline_ms BIGINT NOT NULL);"
     "CREATE TABLE lease_queue_target ("
     " queue_id BIGINT NOT NULL REFERENCES lease_queue (id) ON DELETE CASCADE,"
     " pos SMALLINT NOT NULL,"
     " kind SMALLINT NOT NULL CHECK (kind BETWEEN 0 AND 2),"
     " target VARCHAR(511) NOT NULL,"
     " PRIMARY KEY (queue_id, pos));"
     /* append-only: the store has no statement that changes or deletes a row */
     "CREATE TABLE audit_log ("
     " seq INTEGER PRIMARY KEY,"
     " time_ms BIGINT NOT NULL,"
     " actor VARCHAR(64) NOT NULL,"
     " action VARCHAR(16) NOT NULL,"
     " lease_id BIGINT NOT NULL,"
     " targets VARCHAR(8191) NOT NULL,"
     " detail VARCHAR(511) NOT NULL);"
     "CREATE INDEX audit_log_time ON audit_log (time_ms);"
     /* each target and covered node of a row, for queries by exact moniker */
     "CREATE TABLE audit_target ("
     " target VARCHAR(511) NOT NULL,"
     " seq BIGINT NOT NULL REFERENCES audit_log (seq),"
     " PRIMARY KEY (target, seq));"},
    {2, "driver flags and composite node specs",
     "CREATE TABLE driver_flag ("
     " url VARCHAR(255) NOT NULL PRIMARY KEY,"
     " disabled BOOLEAN NOT NULL);"
     "CREATE TABLE composite_spec ("
     " name VARCHAR(128) NOT NULL PRIMARY KEY,"
     " spec BLOB NOT NULL);"},
    {3, "certificates and join tokens (issue 23)",
     /* every certificate seen at a session's open or issued; revoked_ms 0: not revoked */
     "CREATE TABLE certificate ("
     " serial VARCHAR(40) NOT NULL PRIMARY KEY,"
     " name VARCHAR(64) NOT NULL,"
     " role VARCHAR(16) NOT NULL,"
     " not_after_ms BIGINT NOT NULL,"
     " issued BOOLEAN NOT NULL,"
     " first_seen_ms BIGINT NOT NULL,"
     " last_seen_ms BIGINT NOT NULL,"
     " last_address VARCHAR(63) NOT NULL,"
     " revoked_ms BIGINT NOT NULL,"
     " revoked_by VARCHAR(64) NOT NULL,"
     " revoke_reason VARCHAR(256) NOT NULL);"
     "CREATE INDEX certificate_name ON certificate (name);"
     /* join tokens: the SHA-256 of the secret (salted with the id), never the secret */
     "CREATE TABLE join_token ("
     " id VARCHAR(12) NOT NULL PRIMARY KEY,"
     " secret_sha256 BLOB NOT NULL,"
     " role VARCHAR(16) NOT NULL,"
     " name VARCHAR(64) NOT NULL,"
     " name_prefix VARCHAR(64) NOT NULL,"
     " created_ms BIGINT NOT NULL,"
     " created_by VARCHAR(64) NOT NULL,"
     " expires_ms BIGINT NOT NULL,"
     " uses_left BIGINT NOT NULL,"
     " revoked_ms BIGINT NOT NULL);"
     "CREATE TABLE join_token_label ("
     " token_id VARCHAR(12) NOT NULL REFERENCES join_token (id) ON DELETE CASCADE,"
     " pos SMALLINT NOT NULL,"
     " label_key VARCHAR(63) NOT NULL,"
     " label_value VARCHAR(127) NOT NULL,"
     " PRIMARY KEY (token_id, pos));"},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");

static const char *const counter_names[STORE_ID_KIND_COUNT] = {
    [STORE_ID_LEASE] = "lease_id",
    [STORE_ID_QUEUE] = "queue_id",
    [STORE_ID_QUEUE_SEQ] = "queue_seq",
    [STORE_ID_FENCE] = "fence",
};

/* The largest value each counter's table holds (by its key or an index: no scan): a
 * counter is never below it. Fencing generations are the manager's to take; their counter
 * row alone counts. */
static const char *const counter_floor_sql[STORE_ID_KIND_COUNT + 1] = {
    [STORE_ID_LEASE] = "SELECT MAX(id) FROM lease",
    [STORE_ID_QUEUE] = "SELECT MAX(id) FROM lease_queue",
    [STORE_ID_QUEUE_SEQ] = "SELECT MAX(seq) FROM lease_queue",
    [STORE_ID_FENCE] = NULL,
    [STORE_SEQ_AUDIT] = "SELECT MAX(seq) FROM audit_log",
};

const char *store_schema__counter_name(store_id_kind_t kind) {
  return (unsigned)kind < STORE_ID_KIND_COUNT ? counter_names[kind] : "?";
}

/* Run sql (one statement) and read one integer of its one row into *out: 0 for NULL or
 * no row. Returns SQLite's code (SQLITE_OK) or SQLITE_MISMATCH for a value that is not a
 * non-negative integer. */
static int query_u63(store_t *s, const char *sql, uint64_t *out, int *rows) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  *out = 0;
  *rows = 0;
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    (*rows)++;
    if (sqlite3_column_type(st, 0) != SQLITE_NULL && !store_sql__col_u63(st, 0, out))
      rc = SQLITE_MISMATCH;
    else
      rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The file's schema version: 0 for a file with no table at all (new). */
static dfnet_status_t read_version(store_t *s, uint32_t *version, char *err, size_t err_size) {
  uint64_t n, v;
  int rows;
  /* SQLite's own catalogue: the one query of the store that no other database has */
  int rc = query_u63(s,
                     "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                     "name = 'schema_version'",
                     &n, &rows);
  if (rc != SQLITE_OK)
    return store_sql__fail(s, rc, err, err_size, "reading the schema");
  if (n == 0) {
    rc = query_u63(s, "SELECT COUNT(*) FROM sqlite_master", &n, &rows);
    if (rc != SQLITE_OK)
      return store_sql__fail(s, rc, err, err_size, "reading the schema");
    if (n != 0)
      return store_sql__damaged(s, err, err_size,
                                "it holds tables but no schema_version: not a dfnet store");
    *version = 0;
    return DFNET_STATUS_OK;
  }
  rc = query_u63(s, "SELECT version FROM schema_version", &v, &rows);
  if (rc == SQLITE_MISMATCH || (rc == SQLITE_OK && (rows != 1 || v == 0 || v > UINT32_MAX)))
    return store_sql__damaged(s, err, err_size, "schema_version holds %d rows, not one version",
                              rows);
  if (rc != SQLITE_OK)
    return store_sql__fail(s, rc, err, err_size, "reading the schema version");
  *version = (uint32_t)v;
  return DFNET_STATUS_OK;
}

/* Apply migration m in one transaction. */
static dfnet_status_t apply(store_t *s, const migration_t *m, char *err, size_t err_size) {
  char *msg = NULL;
  char update[96];
  snprintf(update, sizeof update, "UPDATE schema_version SET version = %u", m->version);
  int rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(s->db, m->sql, NULL, NULL, &msg);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(s->db, update, NULL, NULL, &msg);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg);
  if (rc == SQLITE_OK) {
    s->version = m->version;
    return DFNET_STATUS_OK;
  }
  dfnet_status_t st =
      store_sql__fail(s, rc, err, err_size, "migrating from schema version %u to %u (%s)",
                      m->version - 1, m->version, m->what);
  sqlite3_free(msg);
  if (!sqlite3_get_autocommit(s->db))
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return st;
}

dfnet_status_t store_schema__migrate(store_t *s, char *err, size_t err_size) {
  uint32_t version = 0;
  dfnet_status_t st = read_version(s, &version, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  if (version > STORE_SCHEMA_VERSION) {
    dfnet_why_set(err, err_size,
                  "%s: schema version %u was written by a newer dfnet; this one knows up to "
                  "version %u: run the newer dfnet-manager, or move the file away",
                  s->path, version, STORE_SCHEMA_VERSION);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  s->version = version;
  for (uint32_t v = version; v < STORE_SCHEMA_VERSION; v++) {
    st = apply(s, &migrations[v], err, err_size);
    if (st != DFNET_STATUS_OK)
      return st;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t store_schema__load_counters(store_t *s, char *err, size_t err_size) {
  for (int k = 0; k <= STORE_SEQ_AUDIT; k++) {
    uint64_t floor = 0;
    int rows;
    int rc = counter_floor_sql[k] != NULL ? query_u63(s, counter_floor_sql[k], &floor, &rows)
                                          : SQLITE_OK;
    if (rc == SQLITE_MISMATCH)
      return store_sql__damaged(s, err, err_size, "%s", counter_floor_sql[k]);
    if (rc != SQLITE_OK)
      return store_sql__fail(s, rc, err, err_size, "reading the counters");
    s->last[k] = floor;
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, "SELECT name, last_value FROM store_counter", -1, &st, NULL);
  bool seen[STORE_ID_KIND_COUNT] = {false};
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *name;
    uint64_t v;
    if (!store_sql__col_text(st, 0, &name, NULL) || !store_sql__col_u63(st, 1, &v)) {
      sqlite3_finalize(st);
      return store_sql__damaged(s, err, err_size, "store_counter: a row is not a name and value");
    }
    for (int k = 0; k < STORE_ID_KIND_COUNT; k++) {
      if (strcmp(name, counter_names[k]) == 0) {
        seen[k] = true;
        if (v > s->last[k])
          s->last[k] = v;
      }
    }
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_OK)
    return store_sql__fail(s, rc, err, err_size, "reading the counters");
  for (int k = 0; k < STORE_ID_KIND_COUNT; k++)
    if (!seen[k])
      return store_sql__damaged(s, err, err_size, "store_counter has no row %s", counter_names[k]);
  return DFNET_STATUS_OK;
}
