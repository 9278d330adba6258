/* dfnet-manager: the wait queue in the store (store.h "The wait queue"): an entry row
 * (lease_queue) and its targets (lease_queue_target), loaded in queue order. */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

typedef unsigned long long ull;

/* Every bound of an entry but its ids' origin. */
static bool entry_valid(const store_queue_entry_t *e, char *err, size_t err_size) {
  if (e->id == 0 || e->seq == 0) {
    dfnet_why_set(err, err_size, "%s: 0 is none", e->id == 0 ? "id" : "seq");
    return false;
  }
  if (!store_sql__check_u63(e->id, "id", err, err_size) ||
      !store_sql__check_u63(e->seq, "seq", err, err_size) ||
      !store_sql__check_text(e->principal, 1, STORE_PRINCIPAL_MAX, "principal", err, err_size))
    return false;
  if (store_sql__role_name(e->role) == NULL) {
    dfnet_why_set(err, err_size, "role: %d is not a client's role", (int)e->role);
    return false;
  }
  if ((unsigned)e->priority > STORE_PRIORITY_HIGH) {
    dfnet_why_set(err, err_size, "priority: unknown band %d", (int)e->priority);
    return false;
  }
  return store_sql__check_targets(e->targets, e->target_count, 1, err, err_size) &&
         store_sql__check_u63(e->ttl_ms, "ttl_ms", err, err_size) &&
         store_sql__check_u63(e->enqueued_ms, "enqueued_ms", err, err_size) &&
         store_sql__check_u63(e->deadline_ms, "deadline_ms", err, err_size);
}

/* The entry's row and targets (a failed bind leaves NULL: see store_lease.c). */
static int write_entry(store_t *s, const store_queue_entry_t *e) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_QUEUE_UPSERT);
  store_sql__bind_u63(st, 1, e->id);
  store_sql__bind_u63(st, 2, e->seq);
  store_sql__bind_text(st, 3, e->principal);
  store_sql__bind_text(st, 4, store_sql__role_name(e->role));
  sqlite3_bind_int(st, 5, (int)e->priority);
  store_sql__bind_u63(st, 6, e->ttl_ms);
  store_sql__bind_u63(st, 7, e->enqueued_ms);
  store_sql__bind_u63(st, 8, e->deadline_ms);
  int rc = store_sql__run(s, st);
  if (rc == SQLITE_DONE)
    rc = store_sql__write_targets(s, STMT_QUEUE_TARGETS_CLEAR, STMT_QUEUE_TARGET_INSERT, e->id,
                                  e->targets, e->target_count);
  return rc;
}

dfnet_status_t store__queue_put(store_t *s, const store_queue_entry_t *entry, char *err,
                                size_t err_size) {
  char why[256];
  if (!entry_valid(entry, why, sizeof why)) {
    dfnet_why_set(err, err_size, "queue entry %llu: %s", (ull)entry->id, why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (entry->id > s->last[STORE_ID_QUEUE] || entry->seq > s->last[STORE_ID_QUEUE_SEQ]) {
    dfnet_why_set(err, err_size, "queue entry %llu: %s not handed out by store__next",
                  (ull)entry->id, entry->id > s->last[STORE_ID_QUEUE] ? "id" : "seq");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  int rc = write_entry(s, entry);
  if (rc != SQLITE_DONE)
    st = store_sql__fail(s, rc, err, err_size, "writing queue entry %llu (seq %llu)",
                         (ull)entry->id, (ull)entry->seq);
  return store_sql__op_end(s, st, err, err_size);
}

dfnet_status_t store__queue_delete(store_t *s, uint64_t id, char *err, size_t err_size) {
  /* its targets go with it (ON DELETE CASCADE) */
  return store_sql__delete_id(s, STMT_QUEUE_DELETE, id, "queue entry", err, err_size);
}

/* The entry columns of the row st is on (strings valid until st steps on). */
static bool read_row(sqlite3_stmt *st, store_queue_entry_t *e) {
  memset(e, 0, sizeof *e);
  const char *role;
  uint64_t priority;
  if (!store_sql__col_u63(st, 0, &e->id) || !store_sql__col_u63(st, 1, &e->seq) ||
      !store_sql__col_text(st, 2, &e->principal, NULL) ||
      !store_sql__col_text(st, 3, &role, NULL) || !store_sql__role_parse(role, &e->role) ||
      !store_sql__col_u63(st, 4, &priority) || priority > STORE_PRIORITY_HIGH ||
      !store_sql__col_u63(st, 5, &e->ttl_ms) || !store_sql__col_u63(st, 6, &e->enqueued_ms) ||
      !store_sql__col_u63(st, 7, &e->deadline_ms))
    return false;
  e->priority = (store_priority_t)priority;
  return true;
}

/* The targets of entry e, in order, into the scratch. */
static dfnet_status_t read_targets(store_t *s, store_queue_entry_t *e, char *err, size_t err_size) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_QUEUE_TARGET_LOAD);
  store_sql__bind_u63(st, 1, e->id);
  size_t n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t pos, kind;
    const char *text = NULL;
    if (n < STORE_TARGETS_MAX && store_sql__col_u63(st, 0, &pos) && pos == n &&
        store_sql__col_u63(st, 1, &kind) && kind <= STORE_TARGET_SELECTOR)
      text = store_sql__col_copy(s, st, 2, n);
    if (text == NULL) {
      sqlite3_reset(st);
      return store_sql__damaged(s, err, err_size,
                                "lease_queue_target: entry %llu target %zu: out of order, over "
                                "%u, or not a valid value",
                                (ull)e->id, n, STORE_TARGETS_MAX);
    }
    s->targets[n++] = (store_target_t){.kind = (store_target_kind_t)kind, .text = text};
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sql__fail(s, rc, err, err_size, "reading queue entry %llu", (ull)e->id);
  e->targets = s->targets;
  e->target_count = n;
  return DFNET_STATUS_OK;
}

static dfnet_status_t walk(store_t *s, store_queue_fn fn, void *arg, char *err, size_t err_size) {
  sqlite3_stmt *qs = store_sql__stmt(s, STMT_QUEUE_LOAD);
  dfnet_status_t st = DFNET_STATUS_OK;
  int rc = SQLITE_DONE;
  while (st == DFNET_STATUS_OK && (rc = sqlite3_step(qs)) == SQLITE_ROW) {
    store_queue_entry_t e;
    char why[256];
    if (!read_row(qs, &e))
      st = store_sql__damaged(s, err, err_size,
                              "queue entry %llu: a column out of its type or "
                              "range",
                              (ull)e.id);
    else if ((st = read_targets(s, &e, err, err_size)) != DFNET_STATUS_OK)
      break;
    else if (!entry_valid(&e, why, sizeof why))
      st = store_sql__damaged(s, err, err_size, "queue entry %llu: %s", (ull)e.id, why);
    else
      st = fn(arg, &e);
  }
  return store_sql__walk_end(s, qs, rc, st, "reading the queue", err, err_size);
}

dfnet_status_t store__queue_load(store_t *s, store_queue_fn fn, void *arg, char *err,
                                 size_t err_size) {
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  return store_sql__op_end(s, walk(s, fn, arg, err, err_size), err, err_size);
}
