/* dfnet-manager: the manager's other durable state in the store (store.h "Driver flags",
 * "Composite node specs"): a driver URL's flags (driver_flag) and composite node specs by
 * name (composite_spec, the encoded spec as opaque bytes). */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

/* Run one keyed write (an upsert or a delete) in its own bracket. A delete that removed
 * nothing is NOT_FOUND ("no <what> <key>"). */
static dfnet_status_t keyed_write(store_t *s, sqlite3_stmt *st, bool is_delete, const char *what,
                                  const char *key, char *err, size_t err_size) {
  dfnet_status_t status = store_sql__op_begin(s, err, err_size);
  if (status != DFNET_STATUS_OK) {
    sqlite3_reset(st);
    return status;
  }
  int rc = store_sql__run(s, st);
  if (rc != SQLITE_DONE) {
    status = store_sql__fail(s, rc, err, err_size, "%s %s %s", is_delete ? "deleting" : "writing",
                             what, key);
  } else if (is_delete && sqlite3_changes(s->db) == 0) {
    dfnet_why_set(err, err_size, "%s: no %s %s", s->path, what, key);
    status = DFNET_STATUS_NOT_FOUND;
  }
  sqlite3_reset(st);
  return store_sql__op_end(s, status, err, err_size);
}

/* ---- Driver flags ------------------------------------------------------------------- */

dfnet_status_t store__driver_flags_put(store_t *s, const store_driver_flags_t *flags, char *err,
                                       size_t err_size) {
  char why[160];
  if (!store_sql__check_text(flags->url, 1, STORE_URL_MAX, "url", why, sizeof why)) {
    dfnet_why_set(err, err_size, "driver flags: %s", why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  sqlite3_stmt *st = store_sql__stmt(s, STMT_FLAGS_UPSERT);
  store_sql__bind_text(st, 1, flags->url);
  sqlite3_bind_int(st, 2, flags->disabled ? 1 : 0);
  return keyed_write(s, st, false, "the flags of", flags->url, err, err_size);
}

dfnet_status_t store__driver_flags_delete(store_t *s, const char *url, char *err, size_t err_size) {
  char why[160];
  if (!store_sql__check_text(url, 1, STORE_URL_MAX, "url", why, sizeof why)) {
    dfnet_why_set(err, err_size, "driver flags: %s", why);
    return DFNET_STATUS_NOT_FOUND;
  }
  sqlite3_stmt *st = store_sql__stmt(s, STMT_FLAGS_DELETE);
  store_sql__bind_text(st, 1, url);
  return keyed_write(s, st, true, "flags for", url, err, err_size);
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
  if (status == DFNET_STATUS_OK && rc != SQLITE_DONE)
    status = store_sql__fail(s, rc, err, err_size, "reading the driver flags");
  sqlite3_reset(st);
  return status;
}

/* ---- Composite node specs ----------------------------------------------------------- */

dfnet_status_t store__spec_put(store_t *s, const store_spec_t *spec, char *err, size_t err_size) {
  char why[160];
  if (!store_sql__check_text(spec->name, 1, STORE_SPEC_NAME_MAX, "name", why, sizeof why)) {
    dfnet_why_set(err, err_size, "composite node spec: %s", why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
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
  return keyed_write(s, st, false, "composite node spec", spec->name, err, err_size);
}

dfnet_status_t store__spec_delete(store_t *s, const char *name, char *err, size_t err_size) {
  char why[160];
  if (!store_sql__check_text(name, 1, STORE_SPEC_NAME_MAX, "name", why, sizeof why)) {
    dfnet_why_set(err, err_size, "composite node spec: %s", why);
    return DFNET_STATUS_NOT_FOUND;
  }
  sqlite3_stmt *st = store_sql__stmt(s, STMT_SPEC_DELETE);
  store_sql__bind_text(st, 1, name);
  return keyed_write(s, st, true, "composite node spec", name, err, err_size);
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
  if (status == DFNET_STATUS_OK && rc != SQLITE_DONE)
    status = store_sql__fail(s, rc, err, err_size, "reading the composite node specs");
  sqlite3_reset(st);
  return status;
}
