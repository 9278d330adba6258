/* manager/store: the durable store against real SQLite files in a temporary directory
 * (below $DFNET_BUILD_DIR, else the current directory): round trips of every record kind,
 * a reopen that keeps exact values, ids never reused, transactions, migrations from a v1
 * file written by hand, a newer or damaged file refused, a lease that survives kill -9 of
 * the writer right after its call returned, audit queries, and every bound. Each case
 * closes what it opened (fds counted) and removes its directory, also when it fails
 * (cmocka's teardown), at exit and on SIGTERM/SIGINT/SIGHUP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "child.h"
#include "manager/store.h"

#define OK DFNET_STATUS_OK
typedef unsigned long long ull;

/* ---- Fixture: a temporary state directory ----------------------------------------------- */

typedef struct fixture {
  char dir[512];
  int fds; /* open at setup */
  store_t *s;
  char err[1024];
} fixture_t;

static fixture_t *g_live; /* the fixture whose directory exists, for exit and signals */
static pid_t g_owner;

/* The only names a case leaves in its directory. Async-signal-safe (unlink, rmdir). */
static const char *const leftovers[] = {"dfnet.db", "dfnet.db-wal", "dfnet.db-shm",
                                        "dfnet.db-journal"};

static void remove_dir(const char *dir) {
  char path[600];
  for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
    size_t n = strlen(dir);
    memcpy(path, dir, n);
    path[n] = '/';
    memcpy(path + n + 1, leftovers[i], strlen(leftovers[i]) + 1);
    if (unlink(path) != 0 && errno == EISDIR)
      rmdir(path);
  }
  rmdir(dir);
}

static void cleanup_at_exit(void) {
  if (g_live != NULL && getpid() == g_owner)
    remove_dir(g_live->dir);
}

static void on_signal(int sig) {
  test_child_kill_all();
  cleanup_at_exit();
  signal(sig, SIG_DFL);
  raise(sig);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
    n += de->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return n;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  const char *base = getenv("DFNET_BUILD_DIR");
  snprintf(f->dir, sizeof f->dir, "%s/store-test-XXXXXX", base != NULL ? base : ".");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  f->fds = count_fds();
  g_live = f;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  store__close(f->s);
  f->s = NULL;
  int fds = count_fds();
  remove_dir(f->dir);
  bool gone = access(f->dir, F_OK) != 0;
  g_live = NULL;
  int want = f->fds;
  free(f);
  assert_int_equal(fds, want); /* nothing leaked */
  assert_true(gone);           /* nothing but the store's files was left */
  return 0;
}

static const char *db_path(const fixture_t *f) {
  static char path[600];
  snprintf(path, sizeof path, "%s/dfnet.db", f->dir);
  return path;
}

static void open_ok(fixture_t *f) {
  store__close(f->s);
  f->s = NULL;
  dfnet_status_t st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  if (st != OK)
    fail_msg("open: %s: %s", dfnet_status_str(st), f->err);
}

static void reopen(fixture_t *f) { open_ok(f); }

/* Run SQL on the file with SQLite directly (a v1 file by hand, a row edited by hand). */
static void sql_by_hand(const fixture_t *f, const char *sql) {
  sqlite3 *db = NULL;
  char *msg = NULL;
  assert_int_equal(sqlite3_open(db_path(f), &db), SQLITE_OK);
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    fail_msg("sql by hand: %s", msg != NULL ? msg : sqlite3_errstr(rc));
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void expect(dfnet_status_t got, dfnet_status_t want, const char *err, const char *what) {
  if (got != want)
    fail_msg("%s: got %s (%s), want %s", what, dfnet_status_str(got), err, dfnet_status_str(want));
}

/* ---- Records ---------------------------------------------------------------------------- */

static const store_target_t three_targets[] = {
    {STORE_TARGET_MONIKER, "dev.lab-a.pci.00_05_0"},
    {STORE_TARGET_CLASS_PATH, "class/rng/000"},
    {STORE_TARGET_SELECTOR, "soc=imx8mp"},
};
static const char *const four_nodes[] = {"dev.lab-a.pci.00_05_0", "dev.lab-b.usb.001_004",
                                         "dev.lab-a.board", "dev.lab-c.board.uart0"};

static store_lease_t a_lease(uint64_t id) {
  store_lease_t l = {
      .id = id,
      .holder = "alice",
      .role = dfnet_v1_Role_OPERATOR,
      .priority = STORE_PRIORITY_NORMAL,
      .targets = three_targets,
      .target_count = 3,
      .nodes = four_nodes,
      .node_count = 4,
      .ttl_ms = 1800000,
      .acquired_ms = 1796000000123ull,
      .expires_ms = 1796001800123ull,
      .generation = 41,
  };
  store__token_digest((const uint8_t *)"token-of-alice", 14, l.token_digest);
  return l;
}

static void assert_targets_equal(const store_target_t *a, size_t an, const store_target_t *b,
                                 size_t bn) {
  assert_int_equal(an, bn);
  for (size_t i = 0; i < an; i++) {
    assert_int_equal(a[i].kind, b[i].kind);
    assert_string_equal(a[i].text, b[i].text);
  }
}

static void assert_lease_equal(const store_lease_t *a, const store_lease_t *b) {
  assert_int_equal(a->id, b->id);
  assert_string_equal(a->holder, b->holder);
  assert_int_equal(a->role, b->role);
  assert_int_equal(a->priority, b->priority);
  assert_targets_equal(a->targets, a->target_count, b->targets, b->target_count);
  assert_int_equal(a->node_count, b->node_count);
  for (size_t i = 0; i < a->node_count; i++)
    assert_string_equal(a->nodes[i], b->nodes[i]);
  assert_int_equal(a->ttl_ms, b->ttl_ms);
  assert_int_equal(a->acquired_ms, b->acquired_ms);
  assert_int_equal(a->expires_ms, b->expires_ms);
  assert_memory_equal(a->token_digest, b->token_digest, STORE_DIGEST_SIZE);
  assert_int_equal(a->generation, b->generation);
}

/* A load checks each record against want[] in order. */
typedef struct want_leases {
  const store_lease_t *want;
  size_t count, seen;
} want_leases_t;

static dfnet_status_t check_lease(void *arg, const store_lease_t *l) {
  want_leases_t *w = arg;
  assert_true(w->seen < w->count);
  assert_lease_equal(l, &w->want[w->seen++]);
  return OK;
}

static void expect_leases(fixture_t *f, const store_lease_t *want, size_t count) {
  want_leases_t w = {.want = want, .count = count};
  expect(store__lease_load(f->s, check_lease, &w, f->err, sizeof f->err), OK, f->err, "load");
  assert_int_equal(w.seen, count);
}

static uint64_t next_id(fixture_t *f, store_id_kind_t kind) {
  uint64_t v = 0;
  expect(store__next(f->s, kind, &v, f->err, sizeof f->err), OK, f->err, "next");
  return v;
}

static void put_lease(fixture_t *f, const store_lease_t *l) {
  expect(store__lease_put(f->s, l, f->err, sizeof f->err), OK, f->err, "lease put");
}

static store_queue_entry_t an_entry(uint64_t id, uint64_t seq, store_priority_t p,
                                    const char *who) {
  return (store_queue_entry_t){
      .id = id,
      .seq = seq,
      .principal = who,
      .role = p == STORE_PRIORITY_HIGH ? dfnet_v1_Role_ADMIN : dfnet_v1_Role_OPERATOR,
      .priority = p,
      .targets = three_targets,
      .target_count = 1 + (size_t)(id % 3),
      .ttl_ms = 3600000,
      .enqueued_ms = 1796000000000ull + seq,
      .deadline_ms = seq % 2 ? 0 : 1796000300000ull,
  };
}

typedef struct want_entries {
  const store_queue_entry_t *want;
  size_t count, seen;
} want_entries_t;

static dfnet_status_t check_entry(void *arg, const store_queue_entry_t *e) {
  want_entries_t *w = arg;
  assert_true(w->seen < w->count);
  const store_queue_entry_t *x = &w->want[w->seen++];
  assert_int_equal(e->id, x->id);
  assert_int_equal(e->seq, x->seq);
  assert_string_equal(e->principal, x->principal);
  assert_int_equal(e->role, x->role);
  assert_int_equal(e->priority, x->priority);
  assert_targets_equal(e->targets, e->target_count, x->targets, x->target_count);
  assert_int_equal(e->ttl_ms, x->ttl_ms);
  assert_int_equal(e->enqueued_ms, x->enqueued_ms);
  assert_int_equal(e->deadline_ms, x->deadline_ms);
  return OK;
}

static void expect_queue(fixture_t *f, const store_queue_entry_t *want, size_t count) {
  want_entries_t w = {.want = want, .count = count};
  expect(store__queue_load(f->s, check_entry, &w, f->err, sizeof f->err), OK, f->err, "queue load");
  assert_int_equal(w.seen, count);
}

/* Audit rows a query returned, as "seq:action:targets" joined by '|'. */
typedef struct audit_seen {
  char text[4096];
  uint64_t last_seq;
  size_t count;
} audit_seen_t;

static dfnet_status_t collect_audit(void *arg, const store_audit_row_t *r) {
  audit_seen_t *a = arg;
  size_t n = strlen(a->text);
  snprintf(a->text + n, sizeof a->text - n, "%s%llu:%s:%s", n ? "|" : "", (ull)r->seq,
           store__audit_action_str(r->action), r->targets);
  a->last_seq = r->seq;
  a->count++;
  return OK;
}

static bool query(fixture_t *f, const store_audit_query_t *q, audit_seen_t *out) {
  bool more = true;
  memset(out, 0, sizeof *out);
  expect(store__audit_query(f->s, q, collect_audit, out, &more, f->err, sizeof f->err), OK, f->err,
         "audit query");
  return more;
}

static uint64_t audit(fixture_t *f, uint64_t time_ms, store_audit_action_t action,
                      uint64_t lease_id, const store_target_t *targets, size_t target_count,
                      const char *const *nodes, size_t node_count, const char *detail) {
  store_audit_t row = {.time_ms = time_ms,
                       .actor = "alice",
                       .action = action,
                       .lease_id = lease_id,
                       .targets = targets,
                       .target_count = target_count,
                       .nodes = nodes,
                       .node_count = node_count,
                       .detail = detail};
  uint64_t seq = 0;
  expect(store__audit_append(f->s, &row, &seq, f->err, sizeof f->err), OK, f->err, "audit");
  return seq;
}

static dfnet_status_t count_leases(void *arg, const store_lease_t *l) {
  (void)l;
  (*(size_t *)arg)++;
  return OK;
}
static dfnet_status_t count_audit(void *arg, const store_audit_row_t *r) {
  (void)r;
  (*(size_t *)arg)++;
  return OK;
}

/* ---- Opening ---------------------------------------------------------------------------- */

static void test_open_new_file(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  assert_int_equal(store__schema_version(f->s), STORE_SCHEMA_VERSION);
  assert_string_equal(store__path(f->s), db_path(f));
  struct stat sb;
  assert_int_equal(stat(db_path(f), &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600); /* created private */
  /* the file says WAL to any reader */
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(db_path(f), &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  /* an empty store loads nothing */
  expect_leases(f, NULL, 0);
  expect_queue(f, NULL, 0);
}

/* ---- Round trips ------------------------------------------------------------------------ */

static void test_lease_round_trip(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  store_lease_t a = a_lease(next_id(f, STORE_ID_LEASE));
  store_lease_t b = a_lease(next_id(f, STORE_ID_LEASE));
  b.holder = "ci-runner-7";
  b.role = dfnet_v1_Role_ADMIN;
  b.priority = STORE_PRIORITY_HIGH;
  b.ttl_ms = 0; /* an admin's lease that never expires */
  b.expires_ms = 0;
  b.node_count = 0;
  b.target_count = 1;
  put_lease(f, &a);
  put_lease(f, &b);
  store_lease_t both[] = {a, b};
  expect_leases(f, both, 2);

  /* a put replaces, targets and nodes included */
  a.targets = three_targets + 2;
  a.target_count = 1;
  a.nodes = four_nodes + 1;
  a.node_count = 2;
  a.generation = 42;
  store__token_digest((const uint8_t *)"rotated", 7, a.token_digest);
  put_lease(f, &a);
  both[0] = a;
  expect_leases(f, both, 2);

  /* a renewal changes ttl, expiry and generation only */
  expect(
      store__lease_renew(f->s, a.id, 3600000, a.acquired_ms + 7200000, 43, f->err, sizeof f->err),
      OK, f->err, "renew");
  both[0].ttl_ms = 3600000;
  both[0].expires_ms = a.acquired_ms + 7200000;
  both[0].generation = 43;
  expect_leases(f, both, 2);
  expect(store__lease_renew(f->s, 999, 1, 2, 3, f->err, sizeof f->err), DFNET_STATUS_NOT_FOUND,
         f->err, "renew of nothing");

  expect(store__lease_delete(f->s, a.id, f->err, sizeof f->err), OK, f->err, "delete");
  expect_leases(f, &b, 1);
  expect(store__lease_delete(f->s, a.id, f->err, sizeof f->err), DFNET_STATUS_NOT_FOUND, f->err,
         "delete twice");
  assert_non_null(strstr(f->err, "no lease"));

  /* the token digest: SHA-256, matched in constant time */
  static const uint8_t sha256_abc[STORE_DIGEST_SIZE] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  uint8_t d[STORE_DIGEST_SIZE];
  store__token_digest((const uint8_t *)"abc", 3, d);
  assert_memory_equal(d, sha256_abc, STORE_DIGEST_SIZE);
  assert_true(store__token_matches(b.token_digest, (const uint8_t *)"token-of-alice", 14));
  assert_false(store__token_matches(b.token_digest, (const uint8_t *)"token-of-alicf", 14));
  assert_false(store__token_matches(b.token_digest, NULL, 0));
}

static void test_queue_round_trip_in_order(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  static const char *const who[] = {"bob", "carol", "dave", "erin", "frank"};
  static const store_priority_t band[] = {STORE_PRIORITY_NORMAL, STORE_PRIORITY_LOW,
                                          STORE_PRIORITY_HIGH, STORE_PRIORITY_NORMAL,
                                          STORE_PRIORITY_HIGH};
  store_queue_entry_t e[5];
  for (int i = 0; i < 5; i++) {
    uint64_t id = next_id(f, STORE_ID_QUEUE);
    e[i] = an_entry(id, next_id(f, STORE_ID_QUEUE_SEQ), band[i], who[i]);
    expect(store__queue_put(f->s, &e[i], f->err, sizeof f->err), OK, f->err, "queue put");
  }
  /* high first, then first come first served */
  store_queue_entry_t order[] = {e[2], e[4], e[0], e[3], e[1]};
  expect_queue(f, order, 5);
  reopen(f);
  expect_queue(f, order, 5);

  expect(store__queue_delete(f->s, e[2].id, f->err, sizeof f->err), OK, f->err, "dequeue");
  expect_queue(f, order + 1, 4);
  expect(store__queue_delete(f->s, e[2].id, f->err, sizeof f->err), DFNET_STATUS_NOT_FOUND, f->err,
         "dequeue twice");

  /* two entries cannot share a seq */
  store_queue_entry_t dup =
      an_entry(next_id(f, STORE_ID_QUEUE), e[0].seq, STORE_PRIORITY_LOW, "grace");
  expect(store__queue_put(f->s, &dup, f->err, sizeof f->err), DFNET_STATUS_ALREADY_EXISTS, f->err,
         "same seq");
  expect_queue(f, order + 1, 4);
}

/* Values of the flags and specs, checked by visitors. */
typedef struct state_seen {
  char text[1024];
} state_seen_t;

static dfnet_status_t see_flags(void *arg, const store_driver_flags_t *x) {
  state_seen_t *s = arg;
  size_t n = strlen(s->text);
  snprintf(s->text + n, sizeof s->text - n, "%s%s=%d", n ? "|" : "", x->url, x->disabled);
  return OK;
}

static dfnet_status_t see_specs(void *arg, const store_spec_t *x) {
  state_seen_t *s = arg;
  size_t n = strlen(s->text);
  n += (size_t)snprintf(s->text + n, sizeof s->text - n, "%s%s:", n ? "|" : "", x->name);
  for (size_t i = 0; i < x->size && n + 3 < sizeof s->text; i++)
    n += (size_t)snprintf(s->text + n, sizeof s->text - n, "%02x", x->bytes[i]);
  return OK;
}

static void expect_state(fixture_t *f, const char *flags, const char *specs) {
  state_seen_t a = {""}, b = {""};
  expect(store__driver_flags_load(f->s, see_flags, &a, f->err, sizeof f->err), OK, f->err,
         "flags load");
  expect(store__spec_load(f->s, see_specs, &b, f->err, sizeof f->err), OK, f->err, "spec load");
  assert_string_equal(a.text, flags);
  assert_string_equal(b.text, specs);
}

static void test_flags_and_specs_values(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  store_driver_flags_t fl[] = {{"dfnet-pkg://0123456789ab/serial#meta/serial.json", true},
                               {"dfnet-boot:///virtio-rng#meta/virtio-rng.json", true}};
  for (int i = 0; i < 2; i++)
    expect(store__driver_flags_put(f->s, &fl[i], f->err, sizeof f->err), OK, f->err, "flags");
  fl[1].disabled = false;
  expect(store__driver_flags_put(f->s, &fl[1], f->err, sizeof f->err), OK, f->err, "replace");
  static const uint8_t bytes[] = {0x0a, 0x05, 'b', 'o', 'a', 'r', 'd', 0x00, 0xff};
  store_spec_t specs[] = {{"board", bytes, sizeof bytes}, {"empty", NULL, 0}};
  for (int i = 0; i < 2; i++)
    expect(store__spec_put(f->s, &specs[i], f->err, sizeof f->err), OK, f->err, "spec");
  const char *want_flags =
      "dfnet-boot:///virtio-rng#meta/virtio-rng.json=0|"
      "dfnet-pkg://0123456789ab/serial#meta/serial.json=1";
  expect_state(f, want_flags, "board:0a05626f61726400ff|empty:");
  reopen(f);
  expect_state(f, want_flags, "board:0a05626f61726400ff|empty:");

  specs[0].size = 3; /* a put replaces the bytes */
  expect(store__spec_put(f->s, &specs[0], f->err, sizeof f->err), OK, f->err, "spec replace");
  expect(store__spec_delete(f->s, "empty", f->err, sizeof f->err), OK, f->err, "spec delete");
  expect(store__driver_flags_delete(f->s, fl[0].url, f->err, sizeof f->err), OK, f->err,
         "flags delete");
  expect_state(f, "dfnet-boot:///virtio-rng#meta/virtio-rng.json=0", "board:0a0562");
  expect(store__spec_delete(f->s, "empty", f->err, sizeof f->err), DFNET_STATUS_NOT_FOUND, f->err,
         "spec delete twice");
  expect(store__driver_flags_delete(f->s, fl[0].url, f->err, sizeof f->err), DFNET_STATUS_NOT_FOUND,
         f->err, "flags delete twice");
}

/* ---- The audit log ---------------------------------------------------------------------- */

static void test_audit_queries(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  static const store_target_t t_a[] = {{STORE_TARGET_MONIKER, "dev.lab-a.pci.00_05_0"}};
  static const store_target_t t_b[] = {{STORE_TARGET_CLASS_PATH, "class/rng/000"},
                                       {STORE_TARGET_SELECTOR, "soc=imx8mp"}};
  static const store_target_t t_odd[] = {{STORE_TARGET_SELECTOR, "name=50%_off\\x"}};
  static const char *const n_b[] = {"dev.lab-b.pci.00_06_0", "dev.lab-b.board"};
  const uint64_t t0 = 1796000000000ull;
  assert_int_equal(audit(f, t0, STORE_AUDIT_ACQUIRE, 1, t_a, 1, NULL, 0, NULL), 1);
  assert_int_equal(audit(f, t0 + 10, STORE_AUDIT_QUEUE, 0, t_b, 2, NULL, 0, "waiting"), 2);
  assert_int_equal(audit(f, t0 + 20, STORE_AUDIT_RELEASE, 1, t_a, 1, NULL, 0, ""), 3);
  assert_int_equal(audit(f, t0 + 30, STORE_AUDIT_ACQUIRE, 2, t_b, 2, n_b, 2, "from the queue"), 4);
  assert_int_equal(audit(f, t0 + 40, STORE_AUDIT_FORCE_RELEASE, 2, t_b, 2, n_b, 2, "stuck"), 5);
  assert_int_equal(audit(f, t0 + 50, STORE_AUDIT_EXPIRE, 3, t_odd, 1, NULL, 0, NULL), 6);
  reopen(f); /* the sequence goes on after a restart */
  assert_int_equal(audit(f, t0 + 60, STORE_AUDIT_RENEW, 1, t_a, 1, NULL, 0, NULL), 7);

  audit_seen_t a;
  store_audit_query_t q = {.limit = 100};
  assert_false(query(f, &q, &a));
  assert_int_equal(a.count, 7);

  q.since_ms = t0 + 30; /* since */
  assert_false(query(f, &q, &a));
  assert_string_equal(a.text,
                      "4:acquire:class/rng/000 soc=imx8mp|"
                      "5:force_release:class/rng/000 soc=imx8mp|"
                      "6:expire:name=50%_off\\x|7:renew:dev.lab-a.pci.00_05_0");

  /* exact: a target, or a node the lease covered */
  q = (store_audit_query_t){.target = "dev.lab-b.board", .exact = true, .limit = 100};
  assert_false(query(f, &q, &a));
  assert_string_equal(a.text,
                      "4:acquire:class/rng/000 soc=imx8mp|"
                      "5:force_release:class/rng/000 soc=imx8mp");
  q.target = "class/rng/000";
  q.since_ms = t0 + 35;
  assert_false(query(f, &q, &a));
  assert_string_equal(a.text, "5:force_release:class/rng/000 soc=imx8mp");
  q = (store_audit_query_t){.target = "dev.lab-a", .exact = true, .limit = 100};
  assert_false(query(f, &q, &a));
  assert_int_equal(a.count, 0); /* exact is exact */

  /* substring of the targets text: bytes, case-sensitive, LIKE's wildcards are plain */
  q = (store_audit_query_t){.target = "lab-a", .limit = 100};
  assert_false(query(f, &q, &a));
  assert_string_equal(a.text,
                      "1:acquire:dev.lab-a.pci.00_05_0|3:release:dev.lab-a.pci.00_05_0|"
                      "7:renew:dev.lab-a.pci.00_05_0");
  q.target = "LAB-A";
  assert_false(query(f, &q, &a));
  assert_int_equal(a.count, 0);
  q.target = "50%_off\\";
  assert_false(query(f, &q, &a));
  assert_string_equal(a.text, "6:expire:name=50%_off\\x");
  q.target = "0%0"; /* would match "00_05_0" if % were a wildcard */
  assert_false(query(f, &q, &a));
  assert_int_equal(a.count, 0);

  /* the cap, and the next page */
  q = (store_audit_query_t){.limit = 3};
  assert_true(query(f, &q, &a));
  assert_int_equal(a.count, 3);
  q.after_seq = a.last_seq;
  assert_true(query(f, &q, &a));
  assert_string_equal(a.text,
                      "4:acquire:class/rng/000 soc=imx8mp|"
                      "5:force_release:class/rng/000 soc=imx8mp|"
                      "6:expire:name=50%_off\\x");
  q.after_seq = a.last_seq;
  assert_false(query(f, &q, &a));
  assert_int_equal(a.count, 1);
  q = (store_audit_query_t){.target = "lab", .limit = 2}; /* the cap counts matches only */
  assert_true(query(f, &q, &a));
  assert_string_equal(a.text, "1:acquire:dev.lab-a.pci.00_05_0|3:release:dev.lab-a.pci.00_05_0");
}

/* ---- Restarts --------------------------------------------------------------------------- */

static void test_reopen_keeps_exact_values(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  store_lease_t l = a_lease(next_id(f, STORE_ID_LEASE));
  l.acquired_ms = (uint64_t)INT64_MAX - 1; /* every bit of a BIGINT comes back */
  l.expires_ms = (uint64_t)INT64_MAX;
  l.generation = next_id(f, STORE_ID_FENCE);
  l.priority = STORE_PRIORITY_LOW;
  put_lease(f, &l);
  store_lease_t big = a_lease(next_id(f, STORE_ID_LEASE));
  static store_target_t many[STORE_TARGETS_MAX];
  static char texts[STORE_TARGETS_MAX][STORE_TARGET_MAX + 1];
  static const char *nodes[STORE_NODES_MAX];
  static char node_texts[STORE_NODES_MAX][STORE_TARGET_MAX + 1];
  for (size_t i = 0; i < STORE_TARGETS_MAX; i++) {
    memset(texts[i], 'a' + (int)i, STORE_TARGET_MAX); /* the longest a target may be */
    texts[i][STORE_TARGET_MAX] = '\0';
    many[i] = (store_target_t){(store_target_kind_t)(i % 3), texts[i]};
  }
  for (size_t i = 0; i < STORE_NODES_MAX; i++) {
    snprintf(node_texts[i], sizeof node_texts[i], "dev.lab-%zu.board.n%zu", i % 7, i);
    nodes[i] = node_texts[i];
  }
  big.targets = many;
  big.target_count = STORE_TARGETS_MAX;
  big.nodes = nodes;
  big.node_count = STORE_NODES_MAX;
  big.holder = "a-principal-name-of-exactly-sixty-four-bytes-0123456789abcdefghi";
  assert_int_equal(strlen(big.holder), STORE_PRINCIPAL_MAX);
  put_lease(f, &big);
  store_lease_t both[] = {l, big};
  store__close(f->s);
  f->s = NULL;
  reopen(f);
  expect_leases(f, both, 2);
}

static void test_ids_never_reused(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  for (uint64_t want = 1; want <= 3; want++)
    assert_int_equal(next_id(f, STORE_ID_LEASE), want);
  store_lease_t l = a_lease(3);
  put_lease(f, &l);
  expect(store__lease_delete(f->s, 3, f->err, sizeof f->err), OK, f->err, "delete");
  assert_int_equal(next_id(f, STORE_ID_QUEUE), 1);
  assert_int_equal(next_id(f, STORE_ID_QUEUE_SEQ), 1);
  assert_int_equal(next_id(f, STORE_ID_FENCE), 1);
  reopen(f); /* nothing of them left in the tables: the counters remember */
  assert_int_equal(next_id(f, STORE_ID_LEASE), 4);
  assert_int_equal(next_id(f, STORE_ID_QUEUE), 2);
  assert_int_equal(next_id(f, STORE_ID_QUEUE_SEQ), 2);
  assert_int_equal(next_id(f, STORE_ID_FENCE), 2);

  /* taken in a transaction that rolled back: not handed out again while the store is open */
  expect(store__begin(f->s, f->err, sizeof f->err), OK, f->err, "begin");
  assert_int_equal(next_id(f, STORE_ID_LEASE), 5);
  store__rollback(f->s);
  assert_int_equal(next_id(f, STORE_ID_LEASE), 6);
  reopen(f);
  assert_int_equal(next_id(f, STORE_ID_LEASE), 7);

  /* a put must name an id the store handed out */
  l = a_lease(8);
  expect(store__lease_put(f->s, &l, f->err, sizeof f->err), DFNET_STATUS_INVALID_ARGUMENT, f->err,
         "id from nowhere");
  assert_non_null(strstr(f->err, "not handed out"));
  expect(store__next(f->s, STORE_ID_KIND_COUNT, &l.id, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "no such counter");
}

/* ---- Transactions ----------------------------------------------------------------------- */

static void test_transactions(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  expect(store__commit(f->s, f->err, sizeof f->err), DFNET_STATUS_FAILED_PRECONDITION, f->err,
         "commit of nothing");
  store__rollback(f->s); /* a no-op */

  /* rolled back: nothing of it stays */
  store_lease_t a = a_lease(next_id(f, STORE_ID_LEASE));
  expect(store__begin(f->s, f->err, sizeof f->err), OK, f->err, "begin");
  assert_true(store__in_transaction(f->s));
  expect(store__begin(f->s, f->err, sizeof f->err), DFNET_STATUS_FAILED_PRECONDITION, f->err,
         "nested begin");
  put_lease(f, &a);
  audit(f, 1, STORE_AUDIT_ACQUIRE, a.id, a.targets, a.target_count, NULL, 0, NULL);
  store__rollback(f->s);
  assert_false(store__in_transaction(f->s));
  expect_leases(f, NULL, 0);
  audit_seen_t seen;
  store_audit_query_t all = {.limit = 10};
  query(f, &all, &seen);
  assert_int_equal(seen.count, 0);

  /* a release: delete the lease, promote the queue's head, two audit rows, one commit; a
   * call that fails inside undoes only itself */
  put_lease(f, &a);
  store_queue_entry_t head = an_entry(next_id(f, STORE_ID_QUEUE), next_id(f, STORE_ID_QUEUE_SEQ),
                                      STORE_PRIORITY_NORMAL, "bob");
  expect(store__queue_put(f->s, &head, f->err, sizeof f->err), OK, f->err, "queue");
  expect(store__begin(f->s, f->err, sizeof f->err), OK, f->err, "begin");
  expect(store__lease_delete(f->s, a.id, f->err, sizeof f->err), OK, f->err, "delete");
  audit(f, 2, STORE_AUDIT_RELEASE, a.id, a.targets, a.target_count, NULL, 0, NULL);
  store_lease_t granted = a_lease(next_id(f, STORE_ID_LEASE));
  granted.holder = "bob";
  put_lease(f, &granted);
  store_queue_entry_t clash = head;
  clash.id = next_id(f, STORE_ID_QUEUE); /* same seq as head: refused, undone alone */
  expect(store__queue_put(f->s, &clash, f->err, sizeof f->err), DFNET_STATUS_ALREADY_EXISTS, f->err,
         "clash");
  expect(store__queue_delete(f->s, head.id, f->err, sizeof f->err), OK, f->err, "dequeue");
  audit(f, 3, STORE_AUDIT_DEQUEUE, granted.id, head.targets, head.target_count, NULL, 0, "granted");
  expect(store__commit(f->s, f->err, sizeof f->err), OK, f->err, "commit");
  assert_false(store__in_transaction(f->s));
  reopen(f);
  expect_leases(f, &granted, 1);
  expect_queue(f, NULL, 0);
  query(f, &all, &seen);
  assert_int_equal(seen.count, 2);
}

/* ---- Migrations and versions ------------------------------------------------------------ */

/* The schema of version 1 as dfnet wrote it, frozen here: a file of that version, made by
 * hand, with a lease, a queue entry and an audit row. */
static const char v1_file[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version (version) VALUES (1);"
    "CREATE TABLE store_counter (name VARCHAR(32) NOT NULL PRIMARY KEY,"
    " last_value BIGINT NOT NULL);"
    "INSERT INTO store_counter (name, last_value) VALUES"
    " ('lease_id', 7), ('queue_id', 2), ('queue_seq', 5), ('fence', 9);"
    "CREATE TABLE lease (id INTEGER PRIMARY KEY, holder VARCHAR(64) NOT NULL,"
    " role VARCHAR(16) NOT NULL, priority SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 2),"
    " ttl_ms BIGINT NOT NULL, acquired_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,"
    " token_sha256 BLOB NOT NULL, generation BIGINT NOT NULL);"
    "CREATE TABLE lease_target (lease_id BIGINT NOT NULL REFERENCES lease (id) ON DELETE CASCADE,"
    " pos SMALLINT NOT NULL, kind SMALLINT NOT NULL CHECK (kind BETWEEN 0 AND 2),"
    " target VARCHAR(511) NOT NULL, PRIMARY KEY (lease_id, pos));"
    "CREATE TABLE lease_node (lease_id BIGINT NOT NULL REFERENCES lease (id) ON DELETE CASCADE,"
    " pos SMALLINT NOT NULL, moniker VARCHAR(511) NOT NULL, PRIMARY KEY (lease_id, pos));"
    "CREATE TABLE lease_queue (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL UNIQUE,"
    " principal VARCHAR(64) NOT NULL, role VARCHAR(16) NOT NULL,"
    " priority SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 2), ttl_ms BIGINT NOT NULL,"
    " enqueued_ms BIGINT NOT NULL, deadline_ms BIGINT NOT NULL);"
    "CREATE TABLE lease_queue_target (queue_id BIGINT NOT NULL REFERENCES lease_queue (id)"
    " ON DELETE CASCADE, pos SMALLINT NOT NULL, kind SMALLINT NOT NULL"
    " CHECK (kind BETWEEN 0 AND 2), target VARCHAR(511) NOT NULL, PRIMARY KEY (queue_id, pos));"
    "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, time_ms BIGINT NOT NULL,"
    " actor VARCHAR(64) NOT NULL, action VARCHAR(16) NOT NULL, lease_id BIGINT NOT NULL,"
    " targets VARCHAR(8191) NOT NULL, detail VARCHAR(511) NOT NULL);"
    "CREATE INDEX audit_log_time ON audit_log (time_ms);"
    "CREATE TABLE audit_target (target VARCHAR(511) NOT NULL,"
    " seq BIGINT NOT NULL REFERENCES audit_log (seq), PRIMARY KEY (target, seq));"
    "INSERT INTO lease VALUES (7, 'alice', 'operator', 1, 1800000, 1796000000123,"
    " 1796001800123, X'00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 9);"
    "INSERT INTO lease_target VALUES (7, 0, 0, 'dev.lab-a.pci.00_05_0'),"
    " (7, 1, 1, 'class/rng/000');"
    "INSERT INTO lease_node VALUES (7, 0, 'dev.lab-a.pci.00_05_0');"
    "INSERT INTO lease_queue VALUES (2, 5, 'bob', 'admin', 2, 60000, 1796000000500, 0);"
    "INSERT INTO lease_queue_target VALUES (2, 0, 2, 'soc=imx8mp');"
    "INSERT INTO audit_log VALUES (11, 1796000000123, 'alice', 'acquire', 7,"
    " 'dev.lab-a.pci.00_05_0 class/rng/000', '');"
    "INSERT INTO audit_target VALUES ('dev.lab-a.pci.00_05_0', 11), ('class/rng/000', 11);";

static void test_migrate_from_v1(void **state) {
  fixture_t *f = *state;
  sql_by_hand(f, v1_file);
  open_ok(f);
  assert_int_equal(store__schema_version(f->s), STORE_SCHEMA_VERSION);
  static const store_target_t t[] = {{STORE_TARGET_MONIKER, "dev.lab-a.pci.00_05_0"},
                                     {STORE_TARGET_CLASS_PATH, "class/rng/000"}};
  static const char *const n[] = {"dev.lab-a.pci.00_05_0"};
  store_lease_t want = {.id = 7,
                        .holder = "alice",
                        .role = dfnet_v1_Role_OPERATOR,
                        .priority = STORE_PRIORITY_NORMAL,
                        .targets = t,
                        .target_count = 2,
                        .nodes = n,
                        .node_count = 1,
                        .ttl_ms = 1800000,
                        .acquired_ms = 1796000000123ull,
                        .expires_ms = 1796001800123ull,
                        .generation = 9};
  for (int i = 0; i < 32; i++)
    want.token_digest[i] = (uint8_t)((i % 16) * 0x11);
  expect_leases(f, &want, 1);
  static const store_target_t qt[] = {{STORE_TARGET_SELECTOR, "soc=imx8mp"}};
  store_queue_entry_t qe = {.id = 2,
                            .seq = 5,
                            .principal = "bob",
                            .role = dfnet_v1_Role_ADMIN,
                            .priority = STORE_PRIORITY_HIGH,
                            .targets = qt,
                            .target_count = 1,
                            .ttl_ms = 60000,
                            .enqueued_ms = 1796000000500ull};
  expect_queue(f, &qe, 1);
  /* the counters and the audit sequence go on from the file's */
  assert_int_equal(next_id(f, STORE_ID_LEASE), 8);
  assert_int_equal(next_id(f, STORE_ID_QUEUE_SEQ), 6);
  assert_int_equal(next_id(f, STORE_ID_FENCE), 10);
  assert_int_equal(audit(f, 1796000000999ull, STORE_AUDIT_RENEW, 7, t, 1, NULL, 0, NULL), 12);
  /* the tables of version 2 are there */
  store_driver_flags_t fl = {"dfnet-boot:///x#meta/x.json", true};
  expect(store__driver_flags_put(f->s, &fl, f->err, sizeof f->err), OK, f->err, "flags");
  reopen(f); /* nothing to migrate twice */
  assert_int_equal(store__schema_version(f->s), STORE_SCHEMA_VERSION);
  expect_state(f, "dfnet-boot:///x#meta/x.json=1", "");
}

static void test_failed_migration_changes_nothing(void **state) {
  fixture_t *f = *state;
  sql_by_hand(f, v1_file);
  /* a table in the way of migration 2 */
  sql_by_hand(f, "CREATE TABLE driver_flag (something_else INTEGER);");
  dfnet_status_t st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  assert_int_not_equal(st, OK);
  assert_null(f->s);
  assert_non_null(strstr(f->err, "from schema version 1 to 2"));
  assert_non_null(strstr(f->err, db_path(f)));
  /* still a version 1 file, without migration 2's other table */
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  assert_int_equal(sqlite3_open(db_path(f), &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT (SELECT version FROM schema_version), (SELECT "
                                      "COUNT(*) FROM sqlite_master WHERE name = "
                                      "'composite_spec')",
                                      -1, &q, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 1);
  assert_int_equal(sqlite3_column_int(q, 1), 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

static void test_newer_version_refused(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  store__close(f->s);
  f->s = NULL;
  sql_by_hand(f, "UPDATE schema_version SET version = 99;");
  dfnet_status_t st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_FAILED_PRECONDITION, f->err, "newer");
  assert_null(f->s);
  char want[64];
  snprintf(want, sizeof want, "up to version %u", STORE_SCHEMA_VERSION);
  assert_non_null(strstr(f->err, "schema version 99"));
  assert_non_null(strstr(f->err, want));
  assert_non_null(strstr(f->err, db_path(f)));
}

/* ---- Damaged and unreadable files ------------------------------------------------------- */

static void write_random(const char *path, off_t offset, size_t size, unsigned seed) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  uint8_t buf[4096];
  for (size_t done = 0; done < size; done += sizeof buf) {
    for (size_t i = 0; i < sizeof buf; i++) {
      seed = seed * 1103515245u + 12345u;
      buf[i] = (uint8_t)(seed >> 16);
    }
    assert_int_equal(pwrite(fd, buf, sizeof buf, offset + (off_t)done), (ssize_t)sizeof buf);
  }
  close(fd);
}

static void test_random_bytes_refused(void **state) {
  fixture_t *f = *state;
  write_random(db_path(f), 0, 16384, 1);
  dfnet_status_t st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_DATA_LOSS, f->err, "random bytes");
  assert_null(f->s);
  assert_non_null(strstr(f->err, db_path(f)));
  assert_non_null(strstr(f->err, "file is not a database"));
  assert_non_null(strstr(f->err, "move it away"));
}

static dfnet_status_t ignore_lease(void *arg, const store_lease_t *l) {
  (void)arg;
  (void)l;
  return OK;
}
static dfnet_status_t ignore_audit(void *arg, const store_audit_row_t *r) {
  (void)arg;
  (void)r;
  return OK;
}

static void test_damaged_pages_refused(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  expect(store__begin(f->s, f->err, sizeof f->err), OK, f->err, "begin");
  for (int i = 0; i < 200; i++) {
    store_lease_t l = a_lease(next_id(f, STORE_ID_LEASE));
    put_lease(f, &l);
    audit(f, (uint64_t)i, STORE_AUDIT_ACQUIRE, l.id, l.targets, l.target_count, l.nodes,
          l.node_count, "a detail long enough to fill some pages of the audit log");
  }
  expect(store__commit(f->s, f->err, sizeof f->err), OK, f->err, "commit");
  store__close(f->s); /* checkpointed into the file */
  f->s = NULL;
  struct stat sb;
  assert_int_equal(stat(db_path(f), &sb), 0);
  assert_true(sb.st_size > 8 * 4096);
  write_random(db_path(f), 4096, (size_t)sb.st_size - 4096, 7); /* all but the first page */
  dfnet_status_t st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  if (st == OK) {
    st = store__lease_load(f->s, ignore_lease, NULL, f->err, sizeof f->err);
    if (st == OK) {
      store_audit_query_t q = {.limit = 1000};
      st = store__audit_query(f->s, &q, ignore_audit, NULL, NULL, f->err, sizeof f->err);
    }
  }
  expect(st, DFNET_STATUS_DATA_LOSS, f->err, "damaged pages");
  assert_non_null(strstr(f->err, db_path(f)));
}

static void test_damaged_row_refused(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  store_lease_t l = a_lease(next_id(f, STORE_ID_LEASE));
  put_lease(f, &l);
  store__close(f->s);
  f->s = NULL;
  sql_by_hand(f, "UPDATE lease SET role = 'host';");
  open_ok(f);
  expect(store__lease_load(f->s, ignore_lease, NULL, f->err, sizeof f->err), DFNET_STATUS_DATA_LOSS,
         f->err, "a host's lease");
  assert_non_null(strstr(f->err, "lease 1"));
  store__close(f->s);
  f->s = NULL;
  sql_by_hand(f,
              "UPDATE lease SET role = 'operator';"
              "UPDATE lease_target SET target = 'x' || char(10) WHERE pos = 1;");
  open_ok(f);
  expect(store__lease_load(f->s, ignore_lease, NULL, f->err, sizeof f->err), DFNET_STATUS_DATA_LOSS,
         f->err, "a control character");
  assert_non_null(strstr(f->err, "target 1"));
}

static void test_unopenable_refused(void **state) {
  fixture_t *f = *state;
  char missing[600];
  snprintf(missing, sizeof missing, "%s/not-there", f->dir);
  dfnet_status_t st = store__open(missing, &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_NOT_FOUND, f->err, "no state directory");
  assert_non_null(strstr(f->err, missing));

  assert_int_equal(mkdir(db_path(f), 0700), 0); /* a directory where the file should be */
  st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_UNAVAILABLE, f->err, "a directory");
  assert_null(f->s);
  assert_non_null(strstr(f->err, db_path(f)));
  assert_int_equal(rmdir(db_path(f)), 0);

  /* a SQLite file that is not dfnet's */
  sql_by_hand(f, "CREATE TABLE something (x INTEGER);");
  st = store__open(f->dir, &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_DATA_LOSS, f->err, "not dfnet's");
  assert_non_null(strstr(f->err, "not a dfnet store"));

  st = store__open(NULL, &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_INVALID_ARGUMENT, f->err, "NULL");
  st = store__open("", &f->s, f->err, sizeof f->err);
  expect(st, DFNET_STATUS_INVALID_ARGUMENT, f->err, "empty");
}

/* ---- kill -9 right after the call returned ---------------------------------------------- */

#define CRASH_REPORTED_BEFORE_KILL 20

/* The child: commit leases (with an audit row each, as an acquire does) as fast as it can,
 * telling the parent each id once its commit returned. */
static void crash_child(const char *dir, int out) {
  store_t *s = NULL;
  char err[512];
  if (store__open(dir, &s, err, sizeof err) != OK)
    _exit(2);
  for (;;) {
    store_lease_t l = a_lease(0);
    if (store__begin(s, err, sizeof err) != OK ||
        store__next(s, STORE_ID_LEASE, &l.id, err, sizeof err) != OK)
      _exit(3);
    l.expires_ms += l.id; /* each its own expiry */
    store_audit_t row = {.time_ms = l.acquired_ms,
                         .actor = l.holder,
                         .action = STORE_AUDIT_ACQUIRE,
                         .lease_id = l.id,
                         .targets = l.targets,
                         .target_count = l.target_count};
    if (store__lease_put(s, &l, err, sizeof err) != OK ||
        store__audit_append(s, &row, NULL, err, sizeof err) != OK ||
        store__commit(s, err, sizeof err) != OK)
      _exit(4);
    if (write(out, &l.id, sizeof l.id) != (ssize_t)sizeof l.id)
      _exit(5);
  }
}

static dfnet_status_t collect_ids(void *arg, const store_lease_t *l) {
  uint64_t *max = arg;
  store_lease_t want = a_lease(l->id);
  want.expires_ms += l->id;
  assert_lease_equal(l, &want);
  assert_int_equal(l->id, *max + 1); /* no hole */
  *max = l->id;
  return OK;
}

static void test_kill_9_after_commit(void **state) {
  fixture_t *f = *state;
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    crash_child(f->dir, p[1]);
  }
  close(p[1]);
  uint64_t id = 0, reported = 0;
  size_t got = 0;
  while (read(p[0], &id, sizeof id) == (ssize_t)sizeof id) {
    reported = id;
    if (++got == CRASH_REPORTED_BEFORE_KILL)
      kill(pid, SIGKILL); /* right after its call returned */
  }
  close(p[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  test_child_kill_all(); /* reaped: the registry lets go of it (its pidfd) */
  assert_true(got >= CRASH_REPORTED_BEFORE_KILL);

  open_ok(f); /* the WAL is recovered */
  uint64_t max = 0;
  expect(store__lease_load(f->s, collect_ids, &max, f->err, sizeof f->err), OK, f->err, "load");
  assert_true(max >= reported); /* every lease whose commit returned is there */
  store_audit_query_t q = {.limit = STORE_AUDIT_LIMIT_MAX};
  size_t rows = 0;
  expect(store__audit_query(f->s, &q, count_audit, &rows, NULL, f->err, sizeof f->err), OK, f->err,
         "audit");
  assert_int_equal(rows, max);
  assert_int_equal(next_id(f, STORE_ID_LEASE), max + 1);
}

/* ---- Bounds ----------------------------------------------------------------------------- */

static char long_text[STORE_AUDIT_TEXT_MAX + 2]; /* 'x' * n, set by text_of */
static const char *text_of(size_t n) {
  memset(long_text, 'x', n);
  long_text[n] = '\0';
  return long_text;
}

static store_target_t seventeen[STORE_TARGETS_MAX + 1];
static const char *too_many_nodes[STORE_NODES_MAX + 1];

/* A valid lease, spoilt by one case. */
typedef struct lease_case {
  const char *name;
  void (*spoil)(store_lease_t *l, store_target_t *t);
  const char *says;
  bool queue_too; /* a field a queue entry has too: its put is refused the same way */
} lease_case_t;

static void no_targets(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->target_count = 0;
}
static void many_targets(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->targets = seventeen;
  l->target_count = STORE_TARGETS_MAX + 1;
}
static void long_target(store_lease_t *l, store_target_t *t) {
  t[0] = (store_target_t){STORE_TARGET_MONIKER, text_of(STORE_TARGET_MAX + 1)};
  l->targets = t;
}
static void empty_target(store_lease_t *l, store_target_t *t) {
  t[0] = (store_target_t){STORE_TARGET_MONIKER, ""};
  l->targets = t;
}
static void control_target(store_lease_t *l, store_target_t *t) {
  t[0] = (store_target_t){STORE_TARGET_MONIKER, "dev.lab-a\n"};
  l->targets = t;
}
static void bad_kind(store_lease_t *l, store_target_t *t) {
  t[0] = (store_target_t){(store_target_kind_t)3, "dev.lab-a"};
  l->targets = t;
}
static void long_holder(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->holder = text_of(STORE_PRINCIPAL_MAX + 1);
}
static void no_holder(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->holder = NULL;
}
static void host_role(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->role = dfnet_v1_Role_HOST;
}
static void bad_priority(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->priority = (store_priority_t)3;
}
static void many_nodes(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->nodes = too_many_nodes;
  l->node_count = STORE_NODES_MAX + 1;
}
static void long_node(store_lease_t *l, store_target_t *t) {
  (void)t;
  static const char *one[1];
  one[0] = text_of(STORE_TARGET_MAX + 1);
  l->nodes = one;
  l->node_count = 1;
}
static void huge_expiry(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->expires_ms = UINT64_MAX;
}
static void expiry_without_ttl(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->ttl_ms = 0;
}
static void id_zero(store_lease_t *l, store_target_t *t) {
  (void)t;
  l->id = 0;
}

static const lease_case_t lease_cases[] = {
    {"no target", no_targets, "targets: 0 of them", true},
    {"17 targets", many_targets, "targets: 17 of them", true},
    {"a target of 512 bytes", long_target, "target 0: too long", true},
    {"an empty target", empty_target, "target 0: empty", true},
    {"a control character", control_target, "target 0: control character 0x0a", true},
    {"an unknown target kind", bad_kind, "target 0: unknown kind", true},
    {"a holder of 65 bytes", long_holder, "holder: too long", true},
    {"no holder", no_holder, "holder: missing", true},
    {"a host's lease", host_role, "role", true},
    {"an unknown band", bad_priority, "priority", true},
    {"273 nodes", many_nodes, "nodes: 273 of them", false},
    {"a node of 512 bytes", long_node, "node 0: too long", false},
    {"an expiry over 2^63", huge_expiry, "expires_ms", false},
    {"an expiry without a ttl", expiry_without_ttl, "expires_ms", false},
    {"id 0", id_zero, "id", false},
};

static void test_bounds_refused(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  for (size_t i = 0; i <= STORE_TARGETS_MAX; i++)
    seventeen[i] = (store_target_t){STORE_TARGET_MONIKER, "dev.lab-a"};
  for (size_t i = 0; i <= STORE_NODES_MAX; i++)
    too_many_nodes[i] = "dev.lab-a";
  uint64_t id = next_id(f, STORE_ID_LEASE);
  uint64_t qid = next_id(f, STORE_ID_QUEUE), qseq = next_id(f, STORE_ID_QUEUE_SEQ);
  for (size_t i = 0; i < sizeof lease_cases / sizeof lease_cases[0]; i++) {
    const lease_case_t *c = &lease_cases[i];
    store_lease_t l = a_lease(id);
    store_target_t t[1];
    c->spoil(&l, t);
    dfnet_status_t st = store__lease_put(f->s, &l, f->err, sizeof f->err);
    if (st != DFNET_STATUS_INVALID_ARGUMENT || strstr(f->err, c->says) == NULL)
      fail_msg("case %s: got %s '%s', want INVALID_ARGUMENT '%s'", c->name, dfnet_status_str(st),
               f->err, c->says);
    if (!c->queue_too)
      continue;
    store_queue_entry_t e = an_entry(qid, qseq, STORE_PRIORITY_NORMAL, "bob");
    e.targets = l.targets;
    e.target_count = l.target_count;
    e.principal = l.holder;
    e.role = l.role;
    e.priority = l.priority;
    const char *says = strncmp(c->says, "holder", 6) == 0 ? "principal" : c->says;
    st = store__queue_put(f->s, &e, f->err, sizeof f->err);
    if (st != DFNET_STATUS_INVALID_ARGUMENT || strstr(f->err, says) == NULL)
      fail_msg("case %s (queue): got %s '%s', want INVALID_ARGUMENT '%s'", c->name,
               dfnet_status_str(st), f->err, says);
  }
  expect_leases(f, NULL, 0); /* nothing was written */
  expect_queue(f, NULL, 0);

  /* the longest values are fine */
  store_lease_t l = a_lease(id);
  store_target_t t[1] = {{STORE_TARGET_SELECTOR, text_of(STORE_TARGET_MAX)}};
  l.targets = t;
  l.target_count = 1;
  put_lease(f, &l);

  /* the audit log */
  store_audit_t row = {.time_ms = 1,
                       .actor = "alice",
                       .action = STORE_AUDIT_ACQUIRE,
                       .detail = text_of(STORE_DETAIL_MAX + 1)};
  expect(store__audit_append(f->s, &row, NULL, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "detail of 512 bytes");
  row.detail = NULL;
  row.action = STORE_AUDIT_ACTION_COUNT;
  expect(store__audit_append(f->s, &row, NULL, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "unknown action");
  row.action = STORE_AUDIT_RENEW;
  row.targets = seventeen;
  row.target_count = STORE_TARGETS_MAX + 1;
  expect(store__audit_append(f->s, &row, NULL, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "17 targets");
  row.target_count = STORE_TARGETS_MAX; /* all 16 of the longest fit the targets text */
  static store_target_t longest[STORE_TARGETS_MAX];
  static char texts[STORE_TARGETS_MAX][STORE_TARGET_MAX + 1];
  for (size_t i = 0; i < STORE_TARGETS_MAX; i++) {
    memset(texts[i], 'a' + (int)i, STORE_TARGET_MAX);
    longest[i] = (store_target_t){STORE_TARGET_MONIKER, texts[i]};
  }
  row.targets = longest;
  expect(store__audit_append(f->s, &row, NULL, f->err, sizeof f->err), OK, f->err, "16 longest");
  audit_seen_t seen;
  store_audit_query_t q = {.target = texts[15], .exact = true, .limit = 1};
  query(f, &q, &seen);
  assert_int_equal(seen.count, 1);
  q.limit = 0;
  expect(store__audit_query(f->s, &q, ignore_audit, NULL, NULL, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "limit 0");
  q.limit = STORE_AUDIT_LIMIT_MAX + 1;
  expect(store__audit_query(f->s, &q, ignore_audit, NULL, NULL, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "limit over");
  q = (store_audit_query_t){.target = text_of(STORE_TARGET_MAX + 1), .limit = 1};
  expect(store__audit_query(f->s, &q, ignore_audit, NULL, NULL, f->err, sizeof f->err),
         DFNET_STATUS_INVALID_ARGUMENT, f->err, "target over");

  /* driver flags and specs */
  store_driver_flags_t fl = {.url = text_of(STORE_URL_MAX + 1)};
  expect(store__driver_flags_put(f->s, &fl, f->err, sizeof f->err), DFNET_STATUS_INVALID_ARGUMENT,
         f->err, "url of 256 bytes");
  fl.url = text_of(STORE_URL_MAX);
  expect(store__driver_flags_put(f->s, &fl, f->err, sizeof f->err), OK, f->err, "url of 255");
  store_spec_t spec = {.name = text_of(STORE_SPEC_NAME_MAX + 1), .size = 0};
  expect(store__spec_put(f->s, &spec, f->err, sizeof f->err), DFNET_STATUS_INVALID_ARGUMENT, f->err,
         "name of 129 bytes");
  static uint8_t big[STORE_SPEC_SIZE_MAX + 1];
  spec = (store_spec_t){.name = "board", .bytes = big, .size = sizeof big};
  expect(store__spec_put(f->s, &spec, f->err, sizeof f->err), DFNET_STATUS_INVALID_ARGUMENT, f->err,
         "spec over its size");
  spec.size = STORE_SPEC_SIZE_MAX;
  expect(store__spec_put(f->s, &spec, f->err, sizeof f->err), OK, f->err, "spec of max size");
  size_t n = 0;
  expect(store__lease_load(f->s, count_leases, &n, f->err, sizeof f->err), OK, f->err, "load");
  assert_int_equal(n, 1);
}

/* A callback's status stops a load and is what it returns. */
static dfnet_status_t stop_at_first(void *arg, const store_lease_t *l) {
  (void)l;
  (*(size_t *)arg)++;
  return DFNET_STATUS_CANCELLED;
}

static void test_callback_stops_load(void **state) {
  fixture_t *f = *state;
  open_ok(f);
  for (int i = 0; i < 3; i++) {
    store_lease_t l = a_lease(next_id(f, STORE_ID_LEASE));
    put_lease(f, &l);
  }
  size_t n = 0;
  assert_int_equal(store__lease_load(f->s, stop_at_first, &n, f->err, sizeof f->err),
                   DFNET_STATUS_CANCELLED);
  assert_int_equal(n, 1);
  /* the store is usable afterwards, inside a transaction too */
  expect(store__begin(f->s, f->err, sizeof f->err), OK, f->err, "begin");
  n = 0;
  assert_int_equal(store__lease_load(f->s, stop_at_first, &n, f->err, sizeof f->err),
                   DFNET_STATUS_CANCELLED);
  store_lease_t l = a_lease(next_id(f, STORE_ID_LEASE));
  put_lease(f, &l);
  expect(store__commit(f->s, f->err, sizeof f->err), OK, f->err, "commit");
  n = 0;
  expect(store__lease_load(f->s, count_leases, &n, f->err, sizeof f->err), OK, f->err, "load");
  assert_int_equal(n, 4);
}

int main(void) {
  g_owner = getpid();
  atexit(cleanup_at_exit);
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], on_signal);
#define IN_DIR(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      IN_DIR(test_open_new_file),
      IN_DIR(test_lease_round_trip),
      IN_DIR(test_queue_round_trip_in_order),
      IN_DIR(test_flags_and_specs_values),
      IN_DIR(test_audit_queries),
      IN_DIR(test_reopen_keeps_exact_values),
      IN_DIR(test_ids_never_reused),
      IN_DIR(test_transactions),
      IN_DIR(test_migrate_from_v1),
      IN_DIR(test_failed_migration_changes_nothing),
      IN_DIR(test_newer_version_refused),
      IN_DIR(test_random_bytes_refused),
      IN_DIR(test_damaged_pages_refused),
      IN_DIR(test_damaged_row_refused),
      IN_DIR(test_unopenable_refused),
      IN_DIR(test_kill_9_after_commit),
      IN_DIR(test_bounds_refused),
      IN_DIR(test_callback_stops_load),
  };
#undef IN_DIR
  return cmocka_run_group_tests(tests, NULL, NULL);
}
