/* dfnet-manager: certificates in the store (store.h "Certificates"; issue 23 item 4): every
 * certificate the manager has seen at a session's open or issued, and its revocation
 * (table certificate, keyed by serial, indexed by name). */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/pki.h"
#include "manager/store_internal.h"

/* Is serial 1..STORE_SERIAL_MAX lower-case hex digits? */
static bool serial_valid(const char *serial) {
  size_t n = serial != NULL ? strlen(serial) : 0;
  if (n == 0 || n > STORE_SERIAL_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((serial[i] >= '0' && serial[i] <= '9') || (serial[i] >= 'a' && serial[i] <= 'f')))
      return false;
  return true;
}

/* Is role the OU of a leaf a peer may present ("host", "admin", "operator", "viewer")? */
static bool leaf_role_valid(const char *role) {
  dfnet_pki_role_t r;
  return role != NULL && dfnet_pki_role_parse(role, &r) == DFNET_STATUS_OK &&
         r != DFNET_PKI_ROLE_MANAGER;
}

/* The checks of a certificate record to write; on false err says which field. */
static bool cert_valid(const store_cert_t *c, bool seen, char *err, size_t err_size) {
  char why[160];
  bool ok = true;
  if (!serial_valid(c->serial)) {
    snprintf(why, sizeof why, "serial: not 1..%u lower-case hex digits", STORE_SERIAL_MAX);
    ok = false;
  } else if (!leaf_role_valid(c->role)) {
    snprintf(why, sizeof why, "role: \"%s\" is not host, admin, operator or viewer",
             c->role != NULL ? c->role : "");
    ok = false;
  } else {
    ok = store_sql__check_text(c->name, 1, STORE_PRINCIPAL_MAX, "name", why, sizeof why) &&
         store_sql__check_u63(c->not_after_ms, "not_after_ms", why, sizeof why) &&
         (!seen || (store_sql__check_u63(c->last_seen_ms, "last_seen_ms", why, sizeof why) &&
                    store_sql__check_text(c->last_address != NULL ? c->last_address : "", 0,
                                          STORE_ADDRESS_MAX, "last_address", why, sizeof why)));
  }
  if (!ok)
    dfnet_why_set(err, err_size, "certificate %s: %s", serial_valid(c->serial) ? c->serial : "?",
                  why);
  return ok;
}

/* Bind the fields both upserts share: serial, name, role, not-after. */
static void bind_identity(sqlite3_stmt *st, const store_cert_t *c) {
  store_sql__bind_text(st, 1, c->serial);
  store_sql__bind_text(st, 2, c->name);
  store_sql__bind_text(st, 3, c->role);
  store_sql__bind_u63(st, 4, c->not_after_ms);
}

dfnet_status_t store__cert_seen(store_t *s, const store_cert_t *c, char *err, size_t err_size) {
  if (!cert_valid(c, true, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  sqlite3_stmt *st = store_sql__stmt(s, STMT_CERT_SEEN);
  bind_identity(st, c);
  store_sql__bind_u63(st, 5, c->last_seen_ms);
  store_sql__bind_text(st, 6, c->last_address != NULL ? c->last_address : "");
  return store_sql__write_one(s, st, "recording", false, "certificate", c->serial, err, err_size);
}

dfnet_status_t store__cert_issued(store_t *s, const store_cert_t *c, char *err, size_t err_size) {
  if (!cert_valid(c, false, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  sqlite3_stmt *st = store_sql__stmt(s, STMT_CERT_ISSUED);
  bind_identity(st, c);
  return store_sql__write_one(s, st, "recording", false, "issued certificate", c->serial, err,
                              err_size);
}

dfnet_status_t store__cert_revoke(store_t *s, const char *serial, uint64_t time_ms, const char *by,
                                  const char *reason, char *err, size_t err_size) {
  char why[160];
  if (!serial_valid(serial)) {
    dfnet_why_set(err, err_size, "certificate: serial is not 1..%u lower-case hex digits",
                  STORE_SERIAL_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (time_ms == 0 || !store_sql__check_u63(time_ms, "time_ms", why, sizeof why) ||
      !store_sql__check_text(by, 1, STORE_PRINCIPAL_MAX, "revoked_by", why, sizeof why) ||
      !store_sql__check_text(reason, 0, STORE_REASON_MAX, "reason", why, sizeof why)) {
    dfnet_why_set(err, err_size, "revoking certificate %s: %s", serial,
                  time_ms == 0 ? "time_ms is 0" : why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  return store_sql__revoke(s, STMT_CERT_EXISTS, STMT_CERT_REVOKE, "certificate", serial, time_ms,
                           by, reason, err, err_size);
}

/* Read one row of CERT_LOAD / CERT_GET into *c (strings valid until the statement steps).
 * false when a column breaks its bounds. */
static bool cert_row(sqlite3_stmt *st, store_cert_t *c) {
  uint64_t issued;
  if (!store_sql__col_text(st, 0, &c->serial, NULL) || !serial_valid(c->serial) ||
      !store_sql__col_text(st, 1, &c->name, NULL) || !store_sql__col_text(st, 2, &c->role, NULL) ||
      !store_sql__col_u63(st, 3, &c->not_after_ms) || !store_sql__col_u63(st, 4, &issued) ||
      issued > 1 || !store_sql__col_u63(st, 5, &c->first_seen_ms) ||
      !store_sql__col_u63(st, 6, &c->last_seen_ms) ||
      !store_sql__col_text(st, 7, &c->last_address, NULL) ||
      !store_sql__col_u63(st, 8, &c->revoked_ms) ||
      !store_sql__col_text(st, 9, &c->revoked_by, NULL) ||
      !store_sql__col_text(st, 10, &c->revoke_reason, NULL))
    return false;
  c->issued = issued == 1;
  return leaf_role_valid(c->role) &&
         store_sql__check_text(c->name, 1, STORE_PRINCIPAL_MAX, "name", NULL, 0) &&
         store_sql__check_text(c->last_address, 0, STORE_ADDRESS_MAX, "address", NULL, 0) &&
         store_sql__check_text(c->revoked_by, 0, STORE_PRINCIPAL_MAX, "by", NULL, 0) &&
         store_sql__check_text(c->revoke_reason, 0, STORE_REASON_MAX, "reason", NULL, 0);
}

dfnet_status_t store__cert_load(store_t *s, const char *serial, store_cert_fn fn, void *arg,
                                char *err, size_t err_size) {
  if (serial != NULL && !serial_valid(serial))
    return DFNET_STATUS_OK; /* names no row */
  sqlite3_stmt *st = store_sql__stmt(s, serial != NULL ? STMT_CERT_GET : STMT_CERT_LOAD);
  if (serial != NULL)
    store_sql__bind_text(st, 1, serial);
  dfnet_status_t status = DFNET_STATUS_OK;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_cert_t c;
    if (!cert_row(st, &c)) {
      status = store_sql__damaged(s, err, err_size, "certificate: a row out of its type or range");
      break;
    }
    if ((status = fn(arg, &c)) != DFNET_STATUS_OK)
      break;
  }
  return store_sql__walk_end(s, st, rc, status, "reading the certificates", err, err_size);
}
