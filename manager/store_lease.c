/* dfnet-manager: leases in the store (store.h "Leases"): a lease row, its targets
 * (lease_target) and the nodes it covers (lease_node), and the digest of its token. */
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "lib/fileio.h"
#include "manager/store_internal.h"

typedef unsigned long long ull;

/* ---- Tokens ------------------------------------------------------------------------- */

void store__token_digest(const uint8_t *token, size_t len, uint8_t out[STORE_DIGEST_SIZE]) {
  static const uint8_t none[1];
  (void)mbedtls_sha256_ret(len > 0 ? token : none, len, out, 0);
}

bool store__token_matches(const uint8_t digest[STORE_DIGEST_SIZE], const uint8_t *token,
                          size_t len) {
  uint8_t d[STORE_DIGEST_SIZE];
  store__token_digest(token, len, d);
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < STORE_DIGEST_SIZE; i++)
    diff |= (uint8_t)(d[i] ^ digest[i]);
  mbedtls_platform_zeroize(d, sizeof d);
  return diff == 0;
}

/* ---- Checks ------------------------------------------------------------------------- */

/* Every bound of a lease but its id's origin (store.h "Records"). */
static bool lease_valid(const store_lease_t *l, char *err, size_t err_size) {
  if (l->id == 0 || !store_sql__check_u63(l->id, "id", err, err_size)) {
    if (l->id == 0)
      dfnet_why_set(err, err_size, "id: 0 is no lease id");
    return false;
  }
  if (!store_sql__check_text(l->holder, 1, STORE_PRINCIPAL_MAX, "holder", err, err_size))
    return false;
  if (store_sql__role_name(l->role) == NULL) {
    dfnet_why_set(err, err_size, "role: %d is not a client's role", (int)l->role);
    return false;
  }
  if ((unsigned)l->priority > STORE_PRIORITY_HIGH) {
    dfnet_why_set(err, err_size, "priority: unknown band %d", (int)l->priority);
    return false;
  }
  if (!store_sql__check_targets(l->targets, l->target_count, 1, err, err_size) ||
      !store_sql__check_nodes(l->nodes, l->node_count, err, err_size) ||
      !store_sql__check_u63(l->ttl_ms, "ttl_ms", err, err_size) ||
      !store_sql__check_u63(l->acquired_ms, "acquired_ms", err, err_size) ||
      !store_sql__check_u63(l->expires_ms, "expires_ms", err, err_size) ||
      !store_sql__check_u63(l->generation, "generation", err, err_size))
    return false;
  if ((l->ttl_ms == 0) != (l->expires_ms == 0)) {
    dfnet_why_set(err, err_size, "expires_ms: %llu with ttl_ms %llu (0 exactly when ttl_ms is 0)",
                  (ull)l->expires_ms, (ull)l->ttl_ms);
    return false;
  }
  return true;
}

/* ---- Writing ------------------------------------------------------------------------ */

/* A bind that fails leaves NULL, which every column refuses (NOT NULL): the step reports
 * it. Values were checked before. */
static int write_row(store_t *s, const store_lease_t *l) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_LEASE_UPSERT);
  store_sql__bind_u63(st, 1, l->id);
  store_sql__bind_text(st, 2, l->holder);
  store_sql__bind_text(st, 3, store_sql__role_name(l->role));
  sqlite3_bind_int(st, 4, (int)l->priority);
  store_sql__bind_u63(st, 5, l->ttl_ms);
  store_sql__bind_u63(st, 6, l->acquired_ms);
  store_sql__bind_u63(st, 7, l->expires_ms);
  sqlite3_bind_blob(st, 8, l->token_digest, STORE_DIGEST_SIZE, SQLITE_STATIC);
  store_sql__bind_u63(st, 9, l->generation);
  return store_sql__run(s, st);
}

static int write_nodes(store_t *s, const store_lease_t *l) {
  sqlite3_stmt *st = store_sql__stmt(s, STMT_LEASE_NODES_CLEAR);
  store_sql__bind_u63(st, 1, l->id);
  int rc = store_sql__run(s, st);
  for (size_t i = 0; rc == SQLITE_DONE && i < l->node_count; i++) {
    st = store_sql__stmt(s, STMT_LEASE_NODE_INSERT);
    store_sql__bind_u63(st, 1, l->id);
    sqlite3_bind_int(st, 2, (int)i);
    store_sql__bind_text(st, 3, l->nodes[i]);
    rc = store_sql__run(s, st);
  }
  return rc;
}

dfnet_status_t store__lease_put(store_t *s, const store_lease_t *lease, char *err,
                                size_t err_size) {
  char why[256];
  if (!lease_valid(lease, why, sizeof why)) {
    dfnet_why_set(err, err_size, "lease %llu: %s", (ull)lease->id, why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (lease->id > s->last[STORE_ID_LEASE]) {
    dfnet_why_set(err, err_size, "lease %llu: id not handed out by store__next", (ull)lease->id);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  int rc = write_row(s, lease);
  if (rc == SQLITE_DONE)
    rc = store_sql__write_targets(s, STMT_LEASE_TARGETS_CLEAR, STMT_LEASE_TARGET_INSERT, lease->id,
                                  lease->targets, lease->target_count);
  if (rc == SQLITE_DONE)
    rc = write_nodes(s, lease);
  if (rc != SQLITE_DONE)
    st = store_sql__fail(s, rc, err, err_size, "writing lease %llu", (ull)lease->id);
  return store_sql__op_end(s, st, err, err_size);
}

dfnet_status_t store__lease_renew(store_t *s, uint64_t id, uint64_t ttl_ms, uint64_t expires_ms,
                                  uint64_t generation, char *err, size_t err_size) {
  char why[128] = "expires_ms: 0 exactly when ttl_ms is 0";
  if (!store_sql__check_u63(id, "id", why, sizeof why) ||
      !store_sql__check_u63(ttl_ms, "ttl_ms", why, sizeof why) ||
      !store_sql__check_u63(expires_ms, "expires_ms", why, sizeof why) ||
      !store_sql__check_u63(generation, "generation", why, sizeof why) ||
      (ttl_ms == 0) != (expires_ms == 0)) {
    dfnet_why_set(err, err_size, "lease %llu: %s", (ull)id, why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  sqlite3_stmt *q = store_sql__stmt(s, STMT_LEASE_RENEW);
  store_sql__bind_u63(q, 1, id);
  store_sql__bind_u63(q, 2, ttl_ms);
  store_sql__bind_u63(q, 3, expires_ms);
  store_sql__bind_u63(q, 4, generation);
  char key[24];
  snprintf(key, sizeof key, "%llu", (ull)id);
  return store_sql__write_one(s, q, "renewing", true, "lease", key, err, err_size);
}

dfnet_status_t store__lease_delete(store_t *s, uint64_t id, char *err, size_t err_size) {
  /* its targets and nodes go with it (ON DELETE CASCADE) */
  return store_sql__delete_id(s, STMT_LEASE_DELETE, id, "lease", err, err_size);
}

/* ---- Loading ------------------------------------------------------------------------ */

/* The lease columns of the row st is on, into *l (strings valid until st steps on). */
static dfnet_status_t read_row(store_t *s, sqlite3_stmt *st, store_lease_t *l, char *err,
                               size_t err_size) {
  memset(l, 0, sizeof *l);
  const char *role;
  uint64_t priority;
  bool ok = store_sql__col_u63(st, 0, &l->id) && store_sql__col_text(st, 1, &l->holder, NULL) &&
            store_sql__col_text(st, 2, &role, NULL) && store_sql__role_parse(role, &l->role) &&
            store_sql__col_u63(st, 3, &priority) && priority <= STORE_PRIORITY_HIGH &&
            store_sql__col_u63(st, 4, &l->ttl_ms) && store_sql__col_u63(st, 5, &l->acquired_ms) &&
            store_sql__col_u63(st, 6, &l->expires_ms) &&
            sqlite3_column_type(st, 7) == SQLITE_BLOB &&
            sqlite3_column_bytes(st, 7) == (int)STORE_DIGEST_SIZE &&
            store_sql__col_u63(st, 8, &l->generation);
  if (!ok)
    return store_sql__damaged(s, err, err_size, "lease %llu: a column out of its type or range",
                              (ull)l->id);
  l->priority = (store_priority_t)priority;
  memcpy(l->token_digest, sqlite3_column_blob(st, 7), STORE_DIGEST_SIZE);
  return DFNET_STATUS_OK;
}

/* The rows of lease_target (nodes false) or lease_node that belong to lease `id`, from the
 * cursor st (its last step's code in *rc, SQLITE_ROW while on a row), into the scratch;
 * *count gets how many. Rows of a lease that does not exist are damage. */
static dfnet_status_t read_children(store_t *s, sqlite3_stmt *st, int *rc, uint64_t id, bool nodes,
                                    size_t *count, char *err, size_t err_size) {
  const char *table = nodes ? "lease_node" : "lease_target";
  size_t max = nodes ? STORE_NODES_MAX : STORE_TARGETS_MAX;
  *count = 0;
  for (; *rc == SQLITE_ROW; *rc = sqlite3_step(st)) {
    uint64_t owner, pos, kind = 0;
    if (!store_sql__col_u63(st, 0, &owner) || !store_sql__col_u63(st, 1, &pos))
      return store_sql__damaged(s, err, err_size, "%s: a row without lease or position", table);
    if (owner > id)
      break;
    if (owner < id)
      return store_sql__damaged(s, err, err_size, "%s: a row of lease %llu, which is gone", table,
                                (ull)owner);
    const char *text = NULL;
    if (pos == *count && *count < max)
      text = store_sql__col_copy(s, st, nodes ? 2 : 3, (nodes ? STORE_TARGETS_MAX : 0) + *count);
    if (text == NULL ||
        (!nodes && (!store_sql__col_u63(st, 2, &kind) || kind > STORE_TARGET_SELECTOR)))
      return store_sql__damaged(s, err, err_size,
                                "%s: lease %llu position %llu: out of order, "
                                "over %zu, or not a valid value",
                                table, (ull)id, (ull)pos, max);
    if (nodes)
      s->nodes[*count] = text;
    else
      s->targets[*count] = (store_target_t){.kind = (store_target_kind_t)kind, .text = text};
    (*count)++;
  }
  if (*rc != SQLITE_ROW && *rc != SQLITE_DONE)
    return store_sql__fail(s, *rc, err, err_size, "reading %s", table);
  return DFNET_STATUS_OK;
}

/* Walk lease, lease_target and lease_node together, all three in lease id order. */
static dfnet_status_t walk(store_t *s, store_lease_fn fn, void *arg, char *err, size_t err_size) {
  sqlite3_stmt *ls = store_sql__stmt(s, STMT_LEASE_LOAD);
  sqlite3_stmt *ts = store_sql__stmt(s, STMT_LEASE_TARGET_LOAD);
  sqlite3_stmt *ns = store_sql__stmt(s, STMT_LEASE_NODE_LOAD);
  int trc = sqlite3_step(ts), nrc = sqlite3_step(ns), rc = SQLITE_DONE;
  dfnet_status_t st = DFNET_STATUS_OK;
  while (st == DFNET_STATUS_OK && (rc = sqlite3_step(ls)) == SQLITE_ROW) {
    store_lease_t l;
    char why[256];
    if ((st = read_row(s, ls, &l, err, err_size)) != DFNET_STATUS_OK ||
        (st = read_children(s, ts, &trc, l.id, false, &l.target_count, err, err_size)) !=
            DFNET_STATUS_OK ||
        (st = read_children(s, ns, &nrc, l.id, true, &l.node_count, err, err_size)) !=
            DFNET_STATUS_OK)
      break;
    l.targets = s->targets;
    l.nodes = s->nodes;
    if (!lease_valid(&l, why, sizeof why))
      st = store_sql__damaged(s, err, err_size, "lease %llu: %s", (ull)l.id, why);
    else
      st = fn(arg, &l);
  }
  if (st == DFNET_STATUS_OK && rc != SQLITE_DONE)
    st = store_sql__fail(s, rc, err, err_size, "reading the leases");
  else if (st == DFNET_STATUS_OK && (trc == SQLITE_ROW || nrc == SQLITE_ROW))
    st = store_sql__damaged(s, err, err_size, "%s: rows of a lease that is gone",
                            trc == SQLITE_ROW ? "lease_target" : "lease_node");
  else if (st == DFNET_STATUS_OK && (trc != SQLITE_DONE || nrc != SQLITE_DONE))
    st = store_sql__fail(s, trc != SQLITE_DONE ? trc : nrc, err, err_size,
                         "reading the leases' targets and nodes");
  sqlite3_reset(ls);
  sqlite3_reset(ts);
  sqlite3_reset(ns);
  return st;
}

dfnet_status_t store__lease_load(store_t *s, store_lease_fn fn, void *arg, char *err,
                                 size_t err_size) {
  dfnet_status_t st = store_sql__op_begin(s, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  return store_sql__op_end(s, walk(s, fn, arg, err, err_size), err, err_size);
}
