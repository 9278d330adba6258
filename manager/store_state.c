/* dfnet-manager: the manager's other durable state in the store (store.h "Driver flags",
 * "Composite node specs"): a driver URL's flags (driver_flag) and composite node specs by
 * name (composite_spec, the encoded spec as opaque bytes). */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

/* Is key 1..max bytes of text (store_sql__check_text)? On false, err says "<record>:
 * <field>: ...". */
static bool key_valid(const char *key, size_t max, const char *field, const char *record, char *err,
                      size_t err_size) {
  char why[160];
  if (store_sql__check_text(key, 1, max, field, why, sizeof why))
    return true;
  dfnet_why_set(err, err_size, "%s: %s", record, why);
  return false;
}

/* Delete the row keyed `key` with statement `stmt` (its one parameter: the key), as
 * store_sql__write_one "deleting <what> <key>". A key that is not valid (key_valid) names
 * no row: NOT_FOUND. */
static dfnet_status_t key_delete(store_t *s, store_stmt_t stmt, const char *key, size_t max,
                                 const char *field, const char *record, const char *what, char *err,
                                 size_t err_size) {
  if (!key_valid(key, max, field, record, err, err_size))
    return DFNET_STATUS_NOT_FOUND;
  sqlite3_stmt *st = store_sql__stmt(s, stmt);
  store_sql__bind_text(st, 1, key);
  return store_sql__write_one(s, st, "deleting", true, what, key, err, err_size);
}

/* ---- Driver flags ------------------------------------------------------------------- */

dfnet_status_t store__driver_flags_put(store_t *s, const store_driver_flags_t *flags, char *err,
                                       size_t err_size) {
  if (!key_valid(flags->url, STORE_URL_MAX, "url", "driver flags", err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  sqlite3_stmt *st = store_sql__stmt(s, STMT_FLAGS_UPSERT);
  store_sql__bind_text(st, 1, flags->url);
  sqlite3_bind_int(st, 2, flags->disabled ? 1 : 0);
  return store_sql__write_one(s, st, "writing", false, "the flags of", flags->url, err, err_size);
}

dfnet_status_t store__driver_flags_delete(store_t *s, const char *url, char *err, size_t err_size) {
  return key_delete(s, STMT_FLAGS_DELETE, url, STORE_URL_MAX, "url", "driver flags", "flags for",
                    err, err_size);
}

dfnet_status_t store__driver_flags_load(store_t *s, store_driver_flags_fn fn, void *arg, char *err,
                                        size_t err_size) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_FLAGS_LOAD);
  dfnet_status_t status = DFNET_STATUS_OK;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_driver_flags_t f;
    uint64_t disabled;
    if (!store_sql__col_text(st, 0, &f.url, NULL) ||
        !store_sql__check_text(f.url, 1, STORE_URL_MAX, "url", NULL, 0) ||
        !store_sql__col_u63(st, 1, &disabled) || disabled > 1) {
      status = store_sql__damaged(s, err, err_size, "driver_flag: a row out of its type or range");
      break;
    }
    f.disabled = disabled == 1;
    if ((status = fn(arg, &f)) != DFNET_STATUS_OK)
      break;
  }
  return store_sql__walk_end(s, st, rc, status, "reading the driver flags", err, err_size);
}

/* ---- Composite node specs ----------------------------------------------------------- */

dfnet_status_t store__spec_put(store_t *s, const store_spec_t *spec, char *err, size_t err_size) {
  if (!key_valid(spec->name, STORE_SPEC_NAME_MAX, "name", "composite node spec", err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (spec->size > STORE_SPEC_SIZE_MAX || (spec->size > 0 && spec->bytes == NULL)) {
    dfnet_why_set(err, err_size, "composite node spec %s: %zu bytes (at most %u)", spec->name,
                  spec->size, (unsigned)STORE_SPEC_SIZE_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  sqlite3_stmt *st = store_sql__stmt(s, STMT_SPEC_UPSERT);
  store_sql__bind_text(st, 1, spec->name);
  if (spec->size == 0) /* a zero-length blob, not NULL */
    sqlite3_bind_zeroblob(st, 2, 0);
  else
    sqlite3_bind_blob(st, 2, spec->bytes, (int)spec->size, SQLITE_STATIC);
  return store_sql__write_one(s, st, "writing", false, "composite node spec", spec->name, err,
                              err_size);
}

dfnet_status_t store__spec_delete(store_t *s, const char *name, char *err, size_t err_size) {
  return key_delete(s, STMT_SPEC_DELETE, name, STORE_SPEC_NAME_MAX, "name", "composite node spec",
                    "composite node spec", err, err_size);
}

dfnet_status_t store__spec_load(store_t *s, store_spec_fn fn, void *arg, char *err,
                                size_t err_size) {
  static const uint8_t empty[1];
  sqlite3_stmt *st = store_sql__stmt(s, STMT_SPEC_LOAD);
  dfnet_status_t status = DFNET_STATUS_OK;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_spec_t spec;
    bool blob = sqlite3_column_type(st, 1) == SQLITE_BLOB;
    const void *bytes = blob ? sqlite3_column_blob(st, 1) : NULL;
    int size = blob ? sqlite3_column_bytes(st, 1) : -1;
    if (!store_sql__col_text(st, 0, &spec.name, NULL) ||
        !store_sql__check_text(spec.name, 1, STORE_SPEC_NAME_MAX, "name", NULL, 0) || size < 0 ||
        (size_t)size > STORE_SPEC_SIZE_MAX) {
      status =
          store_sql__damaged(s, err, err_size, "composite_spec: a row out of its type or range");
      break;
    }
    spec.size = (size_t)size;
    spec.bytes = size > 0 ? bytes : empty;
    if ((status = fn(arg, &spec)) != DFNET_STATUS_OK)
      break;
  }
  return store_sql__walk_end(s, st, rc, status, "reading the composite node specs", err, err_size);
}
