/* dfnet-manager: the store's durable counters (store.h "Ids"): lease and queue ids, queue
 * sequence numbers and fencing generations, each taken from its store_counter row and never
 * reused once committed. */
#include "manager/store.h"

#include <sqlite3.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

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
