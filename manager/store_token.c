/* dfnet-manager: join tokens in the store (store.h "Join tokens"; issue 23 item 1): a token's
 * role, name or name prefix, expiry, uses left and the SHA-256 of its secret, never the
 * secret (join_token), and its labels (join_token_label, in order). */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/role.h"
#include "manager/store_internal.h"

/* The roles a token may enrol: a host, or a person's operator or viewer (an admin is made
 * by `dfnet-manager issue` on the manager's machine only). */
static const char *token_role_name(dfnet_v1_Role role) {
  if (role != dfnet_v1_Role_HOST && role != dfnet_v1_Role_OPERATOR && role != dfnet_v1_Role_VIEWER)
    return NULL;
  return dfnet_role_by_wire(role)->name;
}

static bool id_valid(const char *id) {
  return store_sql__check_text(id, 1, STORE_TOKEN_ID_MAX, "id", NULL, 0);
}

static bool labels_valid(const store_token_t *t, char *why, size_t cap) {
  if (t->label_count > STORE_LABELS_MAX || (t->label_count > 0 && t->labels == NULL)) {
    dfnet_why_set(why, cap, "labels: %zu of them (at most %u)", t->label_count, STORE_LABELS_MAX);
    return false;
  }
  for (size_t i = 0; i < t->label_count; i++)
    if (!store_sql__check_text(t->labels[i].key, 1, STORE_LABEL_KEY_MAX, "label key", why, cap) ||
        !store_sql__check_text(t->labels[i].value, 0, STORE_LABEL_VALUE_MAX, "label value", why,
                               cap))
      return false;
  return true;
}

static bool token_valid(const store_token_t *t, char *err, size_t err_size) {
  char why[160];
  bool ok = id_valid(t->id);
  if (!ok)
    snprintf(why, sizeof why, "id: not 1..%u bytes of text", STORE_TOKEN_ID_MAX);
  else if (!(ok = token_role_name(t->role) != NULL))
    snprintf(why, sizeof why, "role %d: not host, operator or viewer", (int)t->role);
  else
    ok = store_sql__check_text(t->name, 0, STORE_PRINCIPAL_MAX, "name", why, sizeof why) &&
         store_sql__check_text(t->name_prefix, 0, STORE_PRINCIPAL_MAX, "name_prefix", why,
                               sizeof why) &&
         store_sql__check_text(t->created_by, 1, STORE_PRINCIPAL_MAX, "created_by", why,
                               sizeof why) &&
         store_sql__check_u63(t->created_ms, "created_ms", why, sizeof why) &&
         store_sql__check_u63(t->expires_ms, "expires_ms", why, sizeof why) &&
         labels_valid(t, why, sizeof why);
  if (!ok)
    dfnet_why_set(err, err_size, "join token %s: %s", id_valid(t->id) ? t->id : "?", why);
  return ok;
}

/* Inside the caller's bracket: the token's row, then its labels. SQLite's code. */
static int write_token(store_t *s, const store_token_t *t) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_TOKEN_INSERT);
  store_sql__bind_text(st, 1, t->id);
  sqlite3_bind_blob(st, 2, t->secret_digest, STORE_DIGEST_SIZE, SQLITE_STATIC);
  store_sql__bind_text(st, 3, token_role_name(t->role));
  store_sql__bind_text(st, 4, t->name);
  store_sql__bind_text(st, 5, t->name_prefix);
  store_sql__bind_u63(st, 6, t->created_ms);
  store_sql__bind_text(st, 7, t->created_by);
  store_sql__bind_u63(st, 8, t->expires_ms);
  store_sql__bind_u63(st, 9, t->uses_left);
  int rc = store_sql__run(s, st);
  for (size_t i = 0; i < t->label_count && rc == SQLITE_DONE; i++) {
    st = store_sql__stmt(s, STMT_TOKEN_LABEL_INSERT);
    store_sql__bind_text(st, 1, t->id);
    store_sql__bind_u63(st, 2, i);
    store_sql__bind_text(st, 3, t->labels[i].key);
    store_sql__bind_text(st, 4, t->labels[i].value);
    rc = store_sql__run(s, st);
  }
  return rc;
}

dfnet_status_t store__token_put(store_t *s, const store_token_t *t, char *err, size_t err_size) {
  if (!token_valid(t, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  int rc = write_token(s, t);
  if (rc != SQLITE_DONE)
    st = store_sql__fail(s, rc, err, err_size, "writing join token %s", t->id);
  return store_sql__op_end(s, st, err, err_size);
}

dfnet_status_t store__token_set_uses(store_t *s, const char *id, uint32_t uses_left, char *err,
                                     size_t err_size) {
  if (!id_valid(id)) {
    dfnet_why_set(err, err_size, "%s: no join token %s", s->path, id != NULL ? id : "(null)");
    return DFNET_STATUS_NOT_FOUND;
  }
  sqlite3_stmt *st = store_sql__stmt(s, STMT_TOKEN_SET_USES);
  store_sql__bind_text(st, 1, id);
  store_sql__bind_u63(st, 2, uses_left);
  return store_sql__write_one(s, st, "writing the uses of", true, "join token", id, err, err_size);
}

dfnet_status_t store__token_revoke(store_t *s, const char *id, uint64_t time_ms, char *err,
                                   size_t err_size) {
  if (!id_valid(id)) {
    dfnet_why_set(err, err_size, "%s: no join token %s", s->path, id != NULL ? id : "(null)");
    return DFNET_STATUS_NOT_FOUND;
  }
  if (time_ms == 0 || !store_sql__check_u63(time_ms, "time_ms", err, err_size)) {
    if (time_ms == 0)
      dfnet_why_set(err, err_size, "revoking join token %s: time_ms is 0", id);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  return store_sql__revoke(s, STMT_TOKEN_EXISTS, STMT_TOKEN_REVOKE, "join token", id, time_ms, NULL,
                           NULL, err, err_size);
}

/* The labels of token `id` into the load scratch (s->text, two slots per label) and
 * labels[]. Returns the count, or -1 for a row out of bounds or SQLite's failure (*rc). */
static int load_labels(store_t *s, const char *id, store_label_t *labels, int *rc) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_TOKEN_LABEL_LOAD);
  store_sql__bind_text(st, 1, id);
  int n = 0;
  while ((*rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == (int)STORE_LABELS_MAX) {
      n = -1;
      break;
    }
    labels[n].key = store_sql__col_copy(s, st, 0, 2 * (size_t)n);
    labels[n].value = store_sql__col_copy(s, st, 1, 2 * (size_t)n + 1);
    if (labels[n].key == NULL || labels[n].value == NULL ||
        !store_sql__check_text(labels[n].key, 1, STORE_LABEL_KEY_MAX, "key", NULL, 0) ||
        !store_sql__check_text(labels[n].value, 0, STORE_LABEL_VALUE_MAX, "value", NULL, 0)) {
      n = -1;
      break;
    }
    n++;
  }
  sqlite3_reset(st);
  return *rc == SQLITE_DONE || *rc == SQLITE_ROW ? n : -1;
}

/* One row of TOKEN_LOAD into *t (strings valid until the statement steps); false when a
 * column breaks its bounds. */
static bool token_row(sqlite3_stmt *st, store_token_t *t) {
  const char *role;
  uint64_t uses;
  int digest_size = sqlite3_column_type(st, 1) == SQLITE_BLOB ? sqlite3_column_bytes(st, 1) : -1;
  if (!store_sql__col_text(st, 0, &t->id, NULL) || !id_valid(t->id) ||
      digest_size != (int)STORE_DIGEST_SIZE || !store_sql__col_text(st, 2, &role, NULL) ||
      dfnet_role_by_name(role) == NULL || !store_sql__col_text(st, 3, &t->name, NULL) ||
      !store_sql__col_text(st, 4, &t->name_prefix, NULL) ||
      !store_sql__col_u63(st, 5, &t->created_ms) ||
      !store_sql__col_text(st, 6, &t->created_by, NULL) ||
      !store_sql__col_u63(st, 7, &t->expires_ms) || !store_sql__col_u63(st, 8, &uses) ||
      uses > UINT32_MAX || !store_sql__col_u63(st, 9, &t->revoked_ms))
    return false;
  memcpy(t->secret_digest, sqlite3_column_blob(st, 1), STORE_DIGEST_SIZE);
  t->role = dfnet_role_by_name(role)->wire;
  t->uses_left = (uint32_t)uses;
  return token_role_name(t->role) != NULL &&
         store_sql__check_text(t->name, 0, STORE_PRINCIPAL_MAX, "name", NULL, 0) &&
         store_sql__check_text(t->name_prefix, 0, STORE_PRINCIPAL_MAX, "prefix", NULL, 0) &&
         store_sql__check_text(t->created_by, 1, STORE_PRINCIPAL_MAX, "by", NULL, 0);
}

dfnet_status_t store__token_load(store_t *s, store_token_fn fn, void *arg, char *err,
                                 size_t err_size) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_TOKEN_LOAD);
  dfnet_status_t status = DFNET_STATUS_OK;
  store_label_t labels[STORE_LABELS_MAX];
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_token_t t;
    int lrc = SQLITE_DONE;
    int n = token_row(st, &t) ? load_labels(s, t.id, labels, &lrc) : -1;
    if (n < 0) {
      status =
          lrc != SQLITE_DONE && lrc != SQLITE_ROW
              ? store_sql__fail(s, lrc, err, err_size, "reading the join tokens' labels")
              : store_sql__damaged(s, err, err_size, "join_token: a row out of its type or range");
      break;
    }
    t.labels = labels;
    t.label_count = (size_t)n;
    if ((status = fn(arg, &t)) != DFNET_STATUS_OK)
      break;
  }
  return store_sql__walk_end(s, st, rc, status, "reading the join tokens", err, err_size);
}
