/* bench/store_bench: the manager's durable store (manager/store.h) with the load:
 * 10,000 leases, 1,000 queue entries, 200 driver flags, 50 composite specs and 100,000
 * audit rows in a real file (issue 20 "Benchmark").
 *
 * Prints, each beside a floor measured in the same run:
 *   - start-up: store__open + loading every lease, queue entry, driver flag and spec (what
 *     the manager does once when it starts; the target is <= 1 s), against opening
 *     the file with SQLite alone and `SELECT count(*) FROM lease`;
 *   - the cost of a lease change with synchronous=FULL: an acquire (begin, two ids, the
 *     lease, an audit row, commit), a lone lease put and a renewal, against an empty
 *     transaction's commit (no I/O at all), the smallest write commit (one counter row) and
 *     a bare 4 KiB pwrite + fdatasync of a file in the same directory (the disk's floor);
 *   - audit queries: since a time, by exact moniker, by substring.
 * Asserts nothing. Usage: store_bench [DIR] (default: a new store-bench-XXXXXX directory in
 * the current one, removed at the end). The page cache is warm: these are not cold starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_util.h"
#include "manager/store.h"

#define LEASES 10000
#define QUEUE 1000
#define FLAGS 200
#define SPECS 50
#define AUDIT_ROWS 100000
#define BATCH 1000 /* records per transaction while filling */
#define OPS 300    /* samples of each per-operation figure */
#define STARTUPS 5 /* start-ups measured (and as many floors, alternated) */
#define T0 1796000000000ull

static char g_dir[512];
static bool g_made_dir;

static void remove_dir(void) {
  if (!g_made_dir)
    return;
  static const char *const names[] = {"dfnet.db", "dfnet.db-wal", "dfnet.db-shm", "fsync-floor"};
  char path[600];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
    unlink(path);
  }
  rmdir(g_dir);
}

static void check(dfnet_status_t st, const char *err, const char *what) {
  if (st != DFNET_STATUS_OK)
    bench_die("%s: %s: %s", what, dfnet_status_str(st), err);
}

/* ---- The load ------------------------------------------------------------------------- */

typedef struct names {
  char target[2][64];
  char node[3][64];
  store_target_t targets[2];
  const char *nodes[3];
} names_t;

static void lease_names(names_t *n, unsigned i) {
  snprintf(n->target[0], sizeof n->target[0], "dev.lab-%03u.pci.00_%02x_0", i % 500, i % 32);
  snprintf(n->target[1], sizeof n->target[1], "class/serial/%03u", i % 1000);
  snprintf(n->node[0], sizeof n->node[0], "dev.lab-%03u.pci.00_%02x_0", i % 500, i % 32);
  snprintf(n->node[1], sizeof n->node[1], "dev.lab-%03u.usb.001_%03u", i % 500, i % 128);
  snprintf(n->node[2], sizeof n->node[2], "dev.lab-%03u.board", i % 500);
  n->targets[0] = (store_target_t){STORE_TARGET_MONIKER, n->target[0]};
  n->targets[1] = (store_target_t){STORE_TARGET_CLASS_PATH, n->target[1]};
  for (int k = 0; k < 3; k++)
    n->nodes[k] = n->node[k];
}

static store_lease_t make_lease(names_t *n, uint64_t id, uint64_t fence) {
  lease_names(n, (unsigned)id);
  store_lease_t l = {.id = id,
                     .holder = id % 2 ? "ci-runner-17" : "alice",
                     .role = dfnet_v1_Role_OPERATOR,
                     .priority = STORE_PRIORITY_NORMAL,
                     .targets = n->targets,
                     .target_count = 2,
                     .nodes = n->nodes,
                     .node_count = 3,
                     .ttl_ms = 1800000,
                     .acquired_ms = T0 + id,
                     .expires_ms = T0 + id + 1800000,
                     .generation = fence};
  store__token_digest((const uint8_t *)&id, sizeof id, l.token_digest);
  return l;
}

static void begin(store_t *s) {
  char err[512];
  check(store__begin(s, err, sizeof err), err, "begin");
}

static void commit(store_t *s) {
  char err[512];
  check(store__commit(s, err, sizeof err), err, "commit");
}

static void fill_leases(store_t *s) {
  char err[512];
  for (int i = 0; i < LEASES; i++) {
    if (i % BATCH == 0)
      begin(s);
    names_t n;
    uint64_t id, fence;
    check(store__next(s, STORE_ID_LEASE, &id, err, sizeof err), err, "next");
    check(store__next(s, STORE_ID_FENCE, &fence, err, sizeof err), err, "next");
    store_lease_t l = make_lease(&n, id, fence);
    check(store__lease_put(s, &l, err, sizeof err), err, "lease put");
    if (i % BATCH == BATCH - 1)
      commit(s);
  }
}

static void fill_queue_flags_specs(store_t *s) {
  char err[512];
  begin(s);
  for (int i = 0; i < QUEUE; i++) {
    names_t n;
    lease_names(&n, (unsigned)i);
    store_queue_entry_t e = {.principal = "bob",
                             .role = dfnet_v1_Role_OPERATOR,
                             .priority = (store_priority_t)(i % 3),
                             .targets = n.targets,
                             .target_count = 2,
                             .ttl_ms = 3600000,
                             .enqueued_ms = T0 + (uint64_t)i,
                             .deadline_ms = T0 + 600000};
    check(store__next(s, STORE_ID_QUEUE, &e.id, err, sizeof err), err, "next");
    check(store__next(s, STORE_ID_QUEUE_SEQ, &e.seq, err, sizeof err), err, "next");
    check(store__queue_put(s, &e, err, sizeof err), err, "queue put");
  }
  for (int i = 0; i < FLAGS; i++) {
    char url[128];
    snprintf(url, sizeof url, "dfnet-pkg://%012x/driver-%d#meta/driver-%d.json", i, i, i);
    store_driver_flags_t f = {.url = url, .disabled = i % 4 == 0};
    check(store__driver_flags_put(s, &f, err, sizeof err), err, "flags put");
  }
  static uint8_t bytes[2048];
  for (int i = 0; i < SPECS; i++) {
    char name[32];
    snprintf(name, sizeof name, "board-%02d", i);
    for (size_t k = 0; k < sizeof bytes; k++)
      bytes[k] = (uint8_t)(k * 31 + (size_t)i);
    store_spec_t sp = {.name = name, .bytes = bytes, .size = sizeof bytes};
    check(store__spec_put(s, &sp, err, sizeof err), err, "spec put");
  }
  commit(s);
}

static void fill_audit(store_t *s) {
  char err[512];
  static const store_audit_action_t actions[] = {STORE_AUDIT_ACQUIRE, STORE_AUDIT_RENEW,
                                                 STORE_AUDIT_RENEW, STORE_AUDIT_RELEASE,
                                                 STORE_AUDIT_QUEUE};
  for (int i = 0; i < AUDIT_ROWS; i++) {
    if (i % BATCH == 0)
      begin(s);
    names_t n;
    lease_names(&n, (unsigned)i % LEASES);
    store_audit_t row = {.time_ms = T0 + (uint64_t)i * 1000,
                         .actor = i % 2 ? "ci-runner-17" : "alice",
                         .action = actions[i % 5],
                         .lease_id = (uint64_t)(i % LEASES) + 1,
                         .targets = n.targets,
                         .target_count = 1,
                         .nodes = n.nodes + 1,
                         .node_count = 1,
                         .detail = i % 5 == 3 ? "released by the holder" : ""};
    check(store__audit_append(s, &row, NULL, err, sizeof err), err, "audit");
    if (i % BATCH == BATCH - 1)
      commit(s);
  }
}

/* ---- Start-up ------------------------------------------------------------------------- */

typedef struct loaded {
  size_t leases, entries, flags, specs, bytes;
} loaded_t;

static dfnet_status_t on_lease(void *arg, const store_lease_t *l) {
  loaded_t *c = arg;
  c->leases++;
  c->bytes += strlen(l->holder);
  for (size_t i = 0; i < l->target_count; i++)
    c->bytes += strlen(l->targets[i].text);
  for (size_t i = 0; i < l->node_count; i++)
    c->bytes += strlen(l->nodes[i]);
  return DFNET_STATUS_OK;
}
static dfnet_status_t on_entry(void *arg, const store_queue_entry_t *e) {
  loaded_t *c = arg;
  c->entries++;
  c->bytes += strlen(e->principal) + strlen(e->targets[0].text);
  return DFNET_STATUS_OK;
}
static dfnet_status_t on_flags(void *arg, const store_driver_flags_t *f) {
  loaded_t *c = arg;
  c->flags++;
  c->bytes += strlen(f->url);
  return DFNET_STATUS_OK;
}
static dfnet_status_t on_spec(void *arg, const store_spec_t *sp) {
  loaded_t *c = arg;
  c->specs++;
  c->bytes += sp->size;
  return DFNET_STATUS_OK;
}

/* The manager's start-up: open, load everything, close. Nanoseconds. */
static uint64_t startup(loaded_t *c, uint64_t *open_ns) {
  char err[512];
  store_t *s = NULL;
  memset(c, 0, sizeof *c);
  uint64_t t = bench_now_ns();
  check(store__open(g_dir, &s, err, sizeof err), err, "open");
  *open_ns = bench_now_ns() - t;
  check(store__lease_load(s, on_lease, c, err, sizeof err), err, "lease load");
  check(store__queue_load(s, on_entry, c, err, sizeof err), err, "queue load");
  check(store__driver_flags_load(s, on_flags, c, err, sizeof err), err, "flags load");
  check(store__spec_load(s, on_spec, c, err, sizeof err), err, "spec load");
  uint64_t took = bench_now_ns() - t;
  store__close(s);
  return took;
}

/* The floor: SQLite alone opens the file and counts the leases. Nanoseconds. */
static uint64_t floor_count(void) {
  char path[600];
  snprintf(path, sizeof path, "%s/dfnet.db", g_dir);
  uint64_t t = bench_now_ns();
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT count(*) FROM lease", -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) < LEASES)
    bench_die("floor: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  uint64_t took = bench_now_ns() - t;
  sqlite3_close(db);
  return took;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void measure_startup(void) {
  uint64_t up[STARTUPS], open_only[STARTUPS], fl[STARTUPS];
  loaded_t c;
  for (int i = 0; i < STARTUPS; i++) {
    up[i] = startup(&c, &open_only[i]);
    fl[i] = floor_count();
  }
  qsort(up, STARTUPS, sizeof up[0], cmp_u64);
  qsort(open_only, STARTUPS, sizeof open_only[0], cmp_u64);
  qsort(fl, STARTUPS, sizeof fl[0], cmp_u64);
  double median_ms = up[STARTUPS / 2] / 1e6;
  printf(
      "start-up: open + load %zu leases, %zu queue entries, %zu driver flags, %zu specs "
      "(%zu KiB of strings and bytes)\n",
      c.leases, c.entries, c.flags, c.specs, c.bytes / 1024);
  printf(
      "  store:  median %.1f ms, min %.1f ms (of which store__open: median %.2f ms)  "
      "target <= 1000 ms: %s\n",
      median_ms, up[0] / 1e6, open_only[STARTUPS / 2] / 1e6, bench_met(median_ms <= 1000));
  printf("  floor:  median %.2f ms, min %.2f ms (sqlite3_open_v2 + SELECT count(*) FROM lease)\n",
         fl[STARTUPS / 2] / 1e6, fl[0] / 1e6);
}

/* ---- Per operation -------------------------------------------------------------------- */

static void print_latency(const char *what, uint64_t *t, size_t n) {
  bench_latency_t l = bench_percentiles(t, n);
  printf("  %-58s p50 %8.1f us  p99 %8.1f us\n", what, l.p50_us, l.p99_us);
}

static void measure_ops(void) {
  char err[512];
  store_t *s = NULL;
  check(store__open(g_dir, &s, err, sizeof err), err, "open");
  static uint64_t t[OPS];
  uint64_t last_id = 0;
  printf("per operation, synchronous=FULL (%d samples each):\n", OPS);

  for (int i = 0; i < OPS; i++) { /* an acquire */
    uint64_t t0 = bench_now_ns(), id, fence;
    names_t n;
    begin(s);
    check(store__next(s, STORE_ID_LEASE, &id, err, sizeof err), err, "next");
    check(store__next(s, STORE_ID_FENCE, &fence, err, sizeof err), err, "next");
    store_lease_t l = make_lease(&n, id, fence);
    store_audit_t row = {.time_ms = T0,
                         .actor = l.holder,
                         .action = STORE_AUDIT_ACQUIRE,
                         .lease_id = id,
                         .targets = l.targets,
                         .target_count = l.target_count,
                         .nodes = l.nodes,
                         .node_count = l.node_count};
    check(store__lease_put(s, &l, err, sizeof err), err, "lease put");
    check(store__audit_append(s, &row, NULL, err, sizeof err), err, "audit");
    commit(s);
    t[i] = bench_now_ns() - t0;
    last_id = id;
  }
  print_latency("acquire (begin, 2 ids, lease, audit row, commit)", t, OPS);

  for (int i = 0; i < OPS; i++) { /* a lone put: its own transaction */
    names_t n;
    store_lease_t l = make_lease(&n, last_id - (uint64_t)(i % 100), 7);
    uint64_t t0 = bench_now_ns();
    check(store__lease_put(s, &l, err, sizeof err), err, "lease put");
    t[i] = bench_now_ns() - t0;
  }
  print_latency("lease put (replace, autocommit)", t, OPS);

  for (int i = 0; i < OPS; i++) {
    uint64_t t0 = bench_now_ns();
    check(
        store__lease_renew(s, last_id, 1800000, T0 + (uint64_t)i, (uint64_t)i + 1, err, sizeof err),
        err, "renew");
    t[i] = bench_now_ns() - t0;
  }
  print_latency("renew (one UPDATE, autocommit)", t, OPS);

  for (int i = 0; i < OPS; i++) {
    uint64_t t0 = bench_now_ns();
    begin(s);
    commit(s);
    t[i] = bench_now_ns() - t0;
  }
  print_latency("floor: empty transaction (begin + commit, no I/O)", t, OPS);

  for (int i = 0; i < OPS; i++) {
    uint64_t t0 = bench_now_ns(), v;
    check(store__next(s, STORE_ID_FENCE, &v, err, sizeof err), err, "next");
    t[i] = bench_now_ns() - t0;
  }
  print_latency("floor: smallest write commit (one counter row)", t, OPS);
  store__close(s);

  bench_fsync_floor(g_dir, t, OPS);
  print_latency("floor: pwrite 4 KiB + fdatasync (the disk)", t, OPS);
}

/* ---- Audit queries -------------------------------------------------------------------- */

static dfnet_status_t count_row(void *arg, const store_audit_row_t *r) {
  (void)r;
  (*(size_t *)arg)++;
  return DFNET_STATUS_OK;
}

static void measure_queries(void) {
  char err[512];
  store_t *s = NULL;
  check(store__open(g_dir, &s, err, sizeof err), err, "open");
  static const struct {
    const char *what;
    store_audit_query_t q;
  } cases[] = {
      {"since the last 1% of the time, all rows",
       {.since_ms = T0 + (uint64_t)AUDIT_ROWS * 990, .limit = 1000}},
      {"exact node moniker, all time",
       {.target = "dev.lab-007.usb.001_007", .exact = true, .limit = 1000}},
      {"substring \"lab-123.pci\", first 100", {.target = "lab-123.pci", .limit = 100}},
      {"everything, first 1,000", {.limit = 1000}},
  };
  printf("audit queries over %d rows:\n", AUDIT_ROWS);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static uint64_t t[50];
    size_t rows = 0;
    for (int k = 0; k < 50; k++) {
      rows = 0;
      uint64_t t0 = bench_now_ns();
      check(store__audit_query(s, &cases[i].q, count_row, &rows, NULL, err, sizeof err), err,
            "query");
      t[k] = bench_now_ns() - t0;
    }
    char what[128];
    snprintf(what, sizeof what, "%s (%zu rows)", cases[i].what, rows);
    print_latency(what, t, 50);
  }
  store__close(s);
}

int main(int argc, char **argv) {
  bench_set_name("store_bench");
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    fprintf(stderr, "usage: store_bench [DIR]\n");
    return 2;
  }
  if (argc == 2) {
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    if (mkdir(g_dir, 0700) != 0)
      bench_die("%s: cannot create (it must not exist)", g_dir);
  } else {
    snprintf(g_dir, sizeof g_dir, "store-bench-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
      bench_die("cannot create a directory here");
  }
  g_made_dir = true;
  atexit(remove_dir);
  printf("store_bench: SQLite %s, file %s/dfnet.db\n", sqlite3_libversion(), g_dir);

  char err[512];
  store_t *s = NULL;
  check(store__open(g_dir, &s, err, sizeof err), err, "open");
  uint64_t t = bench_now_ns();
  fill_leases(s);
  uint64_t t_leases = bench_now_ns();
  fill_queue_flags_specs(s);
  uint64_t t_audit = bench_now_ns();
  fill_audit(s);
  uint64_t t_end = bench_now_ns();
  store__close(s);
  struct stat sb;
  char path[600];
  snprintf(path, sizeof path, "%s/dfnet.db", g_dir);
  if (stat(path, &sb) != 0)
    bench_die("%s: gone", path);
  printf(
      "filled in %.1f s (transactions of %d): %d leases (%.1f us each), %d queue entries, "
      "%d driver flags, %d specs, %d audit rows (%.1f us each); %.1f MiB\n",
      (t_end - t) / 1e9, BATCH, LEASES, (t_leases - t) / 1e3 / LEASES, QUEUE, FLAGS, SPECS,
      AUDIT_ROWS, (t_end - t_audit) / 1e3 / AUDIT_ROWS, sb.st_size / 1048576.0);

  measure_startup();
  measure_ops();
  measure_queries();
  return 0;
}
