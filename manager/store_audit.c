/* dfnet-manager: the append-only audit log in the store (store.h "The audit log"): a row per
 * change (audit_log, indexed by time) and a row per target or covered node of it
 * (audit_target, keyed by target then seq: the index of queries by exact moniker). */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

typedef unsigned long long ull;

static const char *const action_names[STORE_AUDIT_ACTION_COUNT] = {
#define STORE_AUDIT_NAME_(id, name) [STORE_AUDIT_##id] = name,
    STORE_AUDIT_ACTIONS(STORE_AUDIT_NAME_)
#undef STORE_AUDIT_NAME_
};

const char *store__audit_action_str(store_audit_action_t action) {
  return (unsigned)action < STORE_AUDIT_ACTION_COUNT ? action_names[action] : "unknown";
}

static bool action_parse(const char *name, store_audit_action_t *out) {
  for (int i = 0; i < STORE_AUDIT_ACTION_COUNT; i++) {
    if (strcmp(name, action_names[i]) == 0) {
      *out = (store_audit_action_t)i;
      return true;
    }
  }
  return false;
}

/* ---- Appending ---------------------------------------------------------------------- */

static bool row_valid(const store_audit_t *r, char *err, size_t err_size) {
  if ((unsigned)r->action >= STORE_AUDIT_ACTION_COUNT) {
    dfnet_why_set(err, err_size, "action: unknown %d", (int)r->action);
    return false;
  }
  return store_sql__check_u63(r->time_ms, "time_ms", err, err_size) &&
         store_sql__check_u63(r->lease_id, "lease_id", err, err_size) &&
         store_sql__check_text(r->actor, 1, STORE_PRINCIPAL_MAX, "actor", err, err_size) &&
         store_sql__check_targets(r->targets, r->target_count, 0, err, err_size) &&
         store_sql__check_nodes(r->nodes, r->node_count, err, err_size) &&
         store_sql__check_text(r->detail != NULL ? r->detail : "", 0, STORE_DETAIL_MAX, "detail",
                               err, err_size);
}

/* The targets' texts joined by single spaces into s->audit_text (it fits: checked). */
static const char *targets_text(store_t *s, const store_audit_t *r) {
  size_t len = 0;
  s->audit_text[0] = '\0';
  for (size_t i = 0; i < r->target_count; i++) {
    size_t n = strlen(r->targets[i].text);
    if (i > 0)
      s->audit_text[len++] = ' ';
    memcpy(s->audit_text + len, r->targets[i].text, n + 1);
    len += n;
  }
  return s->audit_text;
}

/* One audit_target row per distinct target text and node. */
static int write_targets(store_t *s, const store_audit_t *r, uint64_t seq) {
  const char *all[STORE_TEXT_SLOTS];
  size_t count = 0;
  int rc = SQLITE_DONE;
  for (size_t i = 0; i < r->target_count + r->node_count; i++) {
    const char *t = i < r->target_count ? r->targets[i].text : r->nodes[i - r->target_count];
    bool seen = false;
    for (size_t j = 0; j < count && !seen; j++)
      seen = strcmp(all[j], t) == 0;
    if (seen)
      continue;
    all[count++] = t;
    sqlite3_stmt *st = store_sql__stmt(s, STMT_AUDIT_TARGET_INSERT);
    store_sql__bind_text(st, 1, t);
    store_sql__bind_u63(st, 2, seq);
    if ((rc = store_sql__run(s, st)) != SQLITE_DONE)
      break;
  }
  return rc;
}

dfnet_status_t store__audit_append(store_t *s, const store_audit_t *row, uint64_t *seq, char *err,
                                   size_t err_size) {
  char why[256];
  if (!row_valid(row, why, sizeof why)) {
    dfnet_why_set(err, err_size, "audit row: %s", why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (s->last[STORE_SEQ_AUDIT] >= (uint64_t)INT64_MAX) {
    dfnet_why_set(err, err_size, "%s: the audit log's sequence is exhausted", s->path);
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  uint64_t next = s->last[STORE_SEQ_AUDIT] + 1;
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  sqlite3_stmt *q = store_sql__stmt(s, STMT_AUDIT_INSERT);
  store_sql__bind_u63(q, 1, next);
  store_sql__bind_u63(q, 2, row->time_ms);
  store_sql__bind_text(q, 3, row->actor);
  store_sql__bind_text(q, 4, action_names[row->action]);
  store_sql__bind_u63(q, 5, row->lease_id);
  store_sql__bind_text(q, 6, targets_text(s, row));
  store_sql__bind_text(q, 7, row->detail != NULL ? row->detail : "");
  int rc = store_sql__run(s, q);
  if (rc == SQLITE_DONE)
    rc = write_targets(s, row, next);
  if (rc != SQLITE_DONE)
    st = store_sql__fail(s, rc, err, err_size, "appending audit row %llu", (ull)next);
  st = store_sql__op_end(s, st, err, err_size);
  if (st == DFNET_STATUS_OK) {
    s->last[STORE_SEQ_AUDIT] = next;
    if (seq != NULL)
      *seq = next;
  }
  return st;
}

/* ---- Querying ----------------------------------------------------------------------- */

/* "%<text with %, _ and \ escaped>%" for LIKE ... ESCAPE '\'. */
static void like_pattern(const char *text, char *out, size_t out_size) {
  size_t n = 0;
  out[n++] = '%';
  for (; *text != '\0' && n + 3 < out_size; text++) {
    if (*text == '%' || *text == '_' || *text == '\\')
      out[n++] = '\\';
    out[n++] = *text;
  }
  out[n++] = '%';
  out[n] = '\0';
}

/* The row st is on (strings valid until st steps on). */
static bool read_row(sqlite3_stmt *st, store_audit_row_t *r) {
  memset(r, 0, sizeof *r);
  const char *action;
  return store_sql__col_u63(st, 0, &r->seq) && store_sql__col_u63(st, 1, &r->time_ms) &&
         store_sql__col_text(st, 2, &r->actor, NULL) &&
         store_sql__check_text(r->actor, 1, STORE_PRINCIPAL_MAX, "actor", NULL, 0) &&
         store_sql__col_text(st, 3, &action, NULL) && action_parse(action, &r->action) &&
         store_sql__col_u63(st, 4, &r->lease_id) && store_sql__col_text(st, 5, &r->targets, NULL) &&
         store_sql__check_text(r->targets, 0, STORE_AUDIT_TEXT_MAX, "targets", NULL, 0) &&
         store_sql__col_text(st, 6, &r->detail, NULL) &&
         store_sql__check_text(r->detail, 0, STORE_DETAIL_MAX, "detail", NULL, 0);
}

static bool query_valid(const store_audit_query_t *q, char *err, size_t err_size) {
  if (q->limit == 0 || q->limit > STORE_AUDIT_LIMIT_MAX) {
    dfnet_why_set(err, err_size, "limit: %u (1..%u)", q->limit, STORE_AUDIT_LIMIT_MAX);
    return false;
  }
  return (q->target == NULL ||
          store_sql__check_text(q->target, 0, STORE_TARGET_MAX, "target", err, err_size)) &&
         store_sql__check_u63(q->since_ms, "since_ms", err, err_size) &&
         store_sql__check_u63(q->after_seq, "after_seq", err, err_size);
}

/* The statement for q, bound. pattern holds the LIKE pattern while it runs. */
static sqlite3_stmt *query_stmt(store_t *s, const store_audit_query_t *q, char *pattern,
                                size_t pattern_size) {
  bool any = q->target == NULL || q->target[0] == '\0', since = q->since_ms > 0;
  store_stmt_t id = q->exact ? STMT_AUDIT_QUERY_EXACT
                    : since  ? STMT_AUDIT_QUERY_LIKE_SINCE
                             : STMT_AUDIT_QUERY_LIKE;
  if (any)
    id = since ? STMT_AUDIT_QUERY_SINCE : STMT_AUDIT_QUERY_ALL;
  sqlite3_stmt *st = store_sql__stmt(s, id);
  if (!any && q->exact) {
    store_sql__bind_text(st, 1, q->target);
  } else if (!any) {
    like_pattern(q->target, pattern, pattern_size);
    store_sql__bind_text(st, 1, pattern);
  }
  store_sql__bind_u63(st, 2, q->after_seq);
  store_sql__bind_u63(st, 3, q->since_ms);
  if (any || q->exact)
    sqlite3_bind_int64(st, 4, (sqlite3_int64)q->limit + 1); /* one more: is there more? */
  return st;
}

dfnet_status_t store__audit_query(store_t *s, const store_audit_query_t *q, store_audit_fn fn,
                                  void *arg, bool *more, char *err, size_t err_size) {
  char why[256];
  if (more != NULL)
    *more = false;
  if (!query_valid(q, why, sizeof why)) {
    dfnet_why_set(err, err_size, "audit query: %s", why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  /* LIKE is case-insensitive for ASCII in SQLite and not in others: it only narrows the
   * rows, strstr decides (bytes, case-sensitive) */
  bool substring = q->target != NULL && q->target[0] != '\0' && !q->exact;
  char pattern[2 * STORE_TARGET_MAX + 3];
  sqlite3_stmt *st = query_stmt(s, q, pattern, sizeof pattern);
  dfnet_status_t status = DFNET_STATUS_OK;
  uint32_t given = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_audit_row_t r;
    if (!read_row(st, &r)) {
      status = store_sql__damaged(s, err, err_size,
                                  "audit_log row %llu: a column out of its type "
                                  "or range",
                                  (ull)r.seq);
      break;
    }
    if (substring && strstr(r.targets, q->target) == NULL)
      continue;
    if (given == q->limit) {
      if (more != NULL)
        *more = true;
      break;
    }
    given++;
    if ((status = fn(arg, &r)) != DFNET_STATUS_OK)
      break;
  }
  return store_sql__walk_end(s, st, rc, status, "querying the audit log", err, err_size);
}

dfnet_status_t store__change_audited(store_t *s, store_change_fn change, void *arg,
                                     const store_audit_t *row, char *err, size_t err_size) {
  dfnet_status_t st = store__begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  st = change(s, arg, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__audit_append(s, row, NULL, err, err_size);
  if (st == DFNET_STATUS_OK)
    return store__commit(s, err, err_size);
  store__rollback(s);
  return st;
}

dfnet_status_t store__change_audited_on(store_t *s, store_change_fn change, void *arg,
                                        const char *selector, store_audit_t row, char *err,
                                        size_t err_size) {
  store_target_t tg = {STORE_TARGET_SELECTOR, selector};
  row.targets = &tg;
  row.target_count = 1;
  return store__change_audited(s, change, arg, &row, err, err_size);
}
