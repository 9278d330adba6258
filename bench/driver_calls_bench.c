/* driver_calls_bench: figures for calls between drivers (issue 18 "Benchmark";
 * include/dfnet/driver.h "Calling another driver"), beside the floors they are compared
 * with, measured in the same run.
 *
 * A real fabric on loopback: dfnet-manager, two dfnet-host agents (boards lab-a and lab-b),
 * their dfnet-driver-host processes. The `parent` test driver (tests/drivers/echo.c built
 * with ECHO_PARENT) runs on three platform devices and adds a child offered dfnet.test.Echo
 * under each; the measuring driver (bench/drivers/call_bench.c) is bound where it calls a
 * parent's /dfnet.test.Echo/Echo (64 B):
 *
 *   (a) in process        on lab-a's first parent's child, colocated in the parent's driver
 *                         host: the call is handed to the parent's dispatcher (no socket),
 *                         whose handler runs inline on the caller's thread when it is idle
 *                         (include/dfnet/driver.h "Threads": no thread wake-up);
 *   (b) across driver     on lab-a's second parent's child, in a driver host of its own: the
 *       hosts             call goes through lab-a's agent;
 *   (c) across boards     on a composite (node spec "remote") whose primary parent is a
 *                         platform device of lab-a and whose other parent is the child of
 *                         lab-b's parent: the call goes lab-a's agent -> the manager ->
 *                         lab-b's agent -> the parent's driver host.
 *
 * The bench program asks the measuring driver to run the calls (/dfnet.bench.Calls/Run) and
 * prints for each: unary p50 / p99 one call at a time (best p50 of 2 runs of 5000, each
 * interleaved with the floors' runs), calls per second with 16 in flight (each completion
 * starts the next call from the driver's on_done), and the CPU time each process involved
 * spent per call (from /proc/<pid>/stat, over the whole Run: warm-up included). The floors:
 * the single-hop secure-websocket floor rpc_bench prints (libdfnet-client to the scripted
 * peer of tests/clients) and the end-to-end client unary (libdfnet-client -> manager ->
 * lab-b's agent -> the parent's driver host), with the issue's targets beside the figures:
 * in process p50 <= 10 us; across driver hosts p50 <= the floor's p50; across boards p50 <=
 * 1.2x the end-to-end client unary p50.
 *
 * This VM charges about 45 us per wake-up of a thread on another CPU, so the output says
 * whether the processes were pinned to one CPU. A run that is not pinned runs itself again
 * with DFNET_BENCH_ONE_CPU=1 (bench/one_cpu.h: this program and every process it starts on
 * CPU 0) and prints that run's figures after its own. $DRIVER_CALLS_BENCH_SECONDS (default
 * 3) is the length of each calls-per-second phase; DFNET_BUILD_DIR may name another build
 * tree (as for rpc_bench; bench/drivers/call_bench.so included). Every process it starts is
 * a tests/child.h child (fabric.h): none outlives it. Prints figures only and never asserts
 * on them; a failed call or a fabric that does not come up ends the run with status 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dfnet/bind.h"
#include "dfnet/client.h"
#include "integration/fabric.h"
#include "lib/log.h"
#include "bench_util.h"
#include "child.h"
#include "client_calls.h"
#include "one_cpu.h"

#define NAME "driver_calls_bench"
#define PARENT_CO "dev.lab-a.platform.pco"   /* its child's caller shares its driver host */
#define PARENT_SEP "dev.lab-a.platform.psep" /* its child's caller has a driver host */
#define PARENT_B "dev.lab-b.platform.pb"     /* its child is the composite's other parent */
#define CHILD_CO PARENT_CO ".child"
#define CHILD_SEP PARENT_SEP ".child"
#define CHILD_B PARENT_B ".child"
#define COMPOSITE "dev.lab-a.platform.anchor.remote"
#define ECHO "/dfnet.test.Echo/Echo"
#define RUN "/dfnet.bench.Calls/Run"
#define INFO "/dfnet.bench.Calls/Info"

#define TARGET_IN_PROCESS_P50_US 10.0
#define TARGET_ACROSS_BOARDS_FACTOR 1.2

/* The services the parent offers its child, as a bind library: the child's offer-derived
 * property "dfnet.test.Echo" = "dfnet.test.Echo.DriverTransport" (docs/architecture.md
 * "Binding"). */
static const char echo_library[] =
    "library dfnet.test;\n"
    "enum Echo {\n  ZirconTransport,\n  DriverTransport,\n};\n";
static const char caller_rules[] =
    "using dfnet.test;\n"
    "dfnet.test.Echo == dfnet.test.Echo.DriverTransport;\n";
static const char composite_rules[] =
    "composite callx;\n"
    "primary node \"anchor\" { fuchsia.BIND_PROTOCOL == 70; }\n"
    "node \"echo\" { fuchsia.BIND_PROTOCOL == 71; }\n";

static struct {
  fabric_t fab;
  fabric_agent_t agents[2]; /* lab-a, lab-b */
  char board_b[320];
  const char *b_extra[3];
  bool up;
  dfnet_client_t *admin, *op;
} F;

/* ---- the fabric --------------------------------------------------------------------- */

static void fabric_down(void) {
  if (!F.up)
    return;
  F.up = false;
  dfnet_client_close(F.op);
  dfnet_client_close(F.admin);
  F.op = F.admin = NULL;
  fabric_cleanup(&F.fab, F.agents, 2);
}

/* A driver package <root>/drivers/<name> of bench/drivers/call_bench.so: the manifest,
 * the bind rules compiled with the dfnet.test library and bind/lib, the .so. */
static void write_call_package(const char *name, const char *rules, const char *extra) {
  char dir[600], path[700];
  snprintf(dir, sizeof dir, "%s/drivers/%s", F.fab.root, name);
  if (fabric_sh("mkdir -p '%s/meta/bind' '%s/driver' && cp '%s/bench/drivers/call_bench.so' "
                "'%s/driver/%s.so'",
                dir, dir, F.fab.build, dir, name) != 0)
    bench_die("cannot make the package %s (is bench/drivers/call_bench.so built?)", name);
  dfnet_bind_source_t lib = {
      .path = "dfnet.test.bind", .text = echo_library, .len = strlen(echo_library)};
  dfnet_bind_source_t src = {.path = name, .text = rules, .len = strlen(rules)};
  char lib_dir[600];
  snprintf(lib_dir, sizeof lib_dir, "%s/bind/lib", getenv("DFNET_SOURCE_DIR"));
  const char *lib_dirs[] = {lib_dir};
  dfnet_bind_compile_options_t o = {
      .libraries = &lib, .library_count = 1, .lib_dirs = lib_dirs, .lib_dir_count = 1};
  uint8_t *bc = NULL;
  size_t bc_len = 0;
  char *error = NULL;
  if (dfnet_bind_compile(&src, &o, &bc, &bc_len, &error) != DFNET_STATUS_OK)
    bench_die("bind rules of %s: %s", name, error ? error : "compile failed");
  snprintf(path, sizeof path, "%s/meta/bind/%s.bindbc", dir, name);
  FILE *f = fopen(path, "wb");
  bool ok = f != NULL && fwrite(bc, 1, bc_len, f) == bc_len;
  ok = f != NULL && fclose(f) == 0 && ok;
  free(bc);
  snprintf(path, sizeof path, "%s/meta/%s.json", dir, name);
  f = ok ? fopen(path, "w") : NULL;
  ok = f != NULL && fprintf(f,
                            "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/%s.so\", "
                            "\"bind\": \"meta/bind/%s.bindbc\"%s%s}}\n",
                            name, name, extra ? ", " : "", extra ? extra : "") > 0;
  if (f == NULL || fclose(f) != 0 || !ok)
    bench_die("cannot write the package %s", name);
}

/* The directory, certificates, packages and boards: lab-a has the parents pco and psep
 * (did 1) and the composite's anchor (did 7, no driver of its own); lab-b the parent pb. */
static void fabric_prepare(void) {
  static const fabric_package_t packages[] = {{"parent", "parent.so", NULL, 1},
                                              {NULL, NULL, NULL, 0}};
  F.up = true; /* from here on the directory goes at exit, however far this gets */
  if (fabric_init(&F.fab, "driver-calls-bench", NULL, packages) != 0)
    bench_die("cannot make the fabric's directory, certificates and packages");
  if (fabric_issue(&F.fab, "host", "lab-a") != 0 || fabric_issue(&F.fab, "host", "lab-b") != 0 ||
      fabric_issue(&F.fab, "admin", "root") != 0 || fabric_issue(&F.fab, "operator", "op") != 0)
    bench_die("cannot issue certificates");
  /* Both match every child: each child is bound to one of them by a RequestBind. */
  write_call_package("callco", caller_rules, "\"colocate\": \"true\"");
  write_call_package("callsep", caller_rules, NULL);
  write_call_package("callx", composite_rules, NULL);
  const char *board_b[] = {"pb:1", NULL}, *board_a[] = {"pco:1", "psep:1", "anchor:7", NULL};
  fabric_write_board(&F.fab, board_b);
  snprintf(F.board_b, sizeof F.board_b, "%s/board-b.json", F.fab.root);
  if (fabric_sh("mv '%s/board.json' '%s'", F.fab.root, F.board_b) != 0)
    bench_die("cannot write lab-b's board");
  fabric_write_board(&F.fab, board_a);
  F.agents[0].name = "lab-a";
  F.agents[1].name = "lab-b";
  F.b_extra[0] = "--board"; /* the last --board counts */
  F.b_extra[1] = F.board_b;
  F.agents[1].extra = F.b_extra;
}

static dfnet_client_t *connect_as(const char *name) {
  dfnet_client_t *c = fabric_connect(&F.fab, name);
  if (c == NULL)
    bench_die("cannot connect to dfnet-manager as %s", name);
  return c;
}

static dfnet_client_t *connect_op(void) { return connect_as("op"); }

static void wait_node(const char *moniker, fabric_node_pred_t pred, const char *what,
                      const char *log) {
  if (!fabric_wait_node(F.admin, moniker, pred, NULL, 30000, NULL))
    bench_die("%s was not %s in 30 s (see %s)", moniker, what, log);
}

/* Bind `child` to the driver named `driver` (both caller packages match it). */
static void bind_child(const char *child, const char *driver) {
  wait_node(child, fabric_is_found, "added", F.agents[0].log);
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_request_bind(F.admin, child, false, driver, &err);
  if (st != DFNET_STATUS_OK && !fabric_is_bound(fabric_node(F.admin, child), NULL))
    bench_die("bind %s to %s: %s: %s", child, driver, dfnet_status_str(st), err.message);
  wait_node(child, fabric_is_bound, "bound", F.agents[0].log);
}

/* The composite node spec "remote": lab-a's anchor (primary) and a child offered
 * dfnet.test.Echo, shown to callx's composite rules as protocols 70 and 71. */
static void add_remote_spec(void) {
  dfnet_client_property_t values[2] = {
      {.str_key = "fuchsia.BIND_PLATFORM_DEV_DID", .type = DFNET_CLIENT_VALUE_INT, .int_value = 7},
      {.str_key = "dfnet.test.Echo",
       .type = DFNET_CLIENT_VALUE_STRING,
       .str_value = "dfnet.test.Echo.DriverTransport"}};
  dfnet_client_property_t props[2] = {
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 70},
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 71}};
  dfnet_client_bind_rule_t rules[2];
  dfnet_client_parent_spec_t parents[2];
  for (int i = 0; i < 2; i++) {
    rules[i] = (dfnet_client_bind_rule_t){.str_key = values[i].str_key,
                                          .condition = DFNET_CLIENT_ACCEPT,
                                          .value_count = 1,
                                          .values = &values[i]};
    parents[i] = (dfnet_client_parent_spec_t){
        .rule_count = 1, .rules = &rules[i], .property_count = 1, .properties = &props[i]};
  }
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_add_composite_node_spec(F.admin, "remote", parents, 2, &err);
  if (st != DFNET_STATUS_OK)
    bench_die("add the composite node spec: %s: %s", dfnet_status_str(st), err.message);
}

/* Bring the fabric up: lab-a's callers bound first, so that the spec added next can only
 * take lab-b's child (started after it) as its other parent. */
static void fabric_up(void) {
  fabric_prepare();
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    bench_die("dfnet-manager did not start (see %s)", F.fab.manager_log);
  fabric_start_agent(&F.fab, &F.agents[0]);
  F.admin = connect_as("root");
  F.op = connect_op();
  bind_child(CHILD_CO, "callco");
  bind_child(CHILD_SEP, "callsep");
  add_remote_spec();
  fabric_start_agent(&F.fab, &F.agents[1]);
  wait_node(COMPOSITE, fabric_is_bound, "bound", F.agents[0].log);
}

/* ---- the processes ------------------------------------------------------------------ */

/* The pid of the driver host the agent spawned for `moniker`'s driver (its log), or 0. */
static pid_t spawned_for(const char *agent_log, const char *moniker) {
  char needle[300], line[1024];
  snprintf(needle, sizeof needle, " %s: driver host ", moniker);
  FILE *f = fopen(agent_log, "r");
  long pid = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    const char *at = strstr(line, needle);
    const char *p = at != NULL ? strstr(at, "spawned (pid ") : NULL;
    if (p != NULL)
      pid = strtol(p + strlen("spawned (pid "), NULL, 10);
  }
  if (f != NULL)
    fclose(f);
  return (pid_t)pid;
}

/* A unary call to the measuring driver on `node`; its text answer into out. */
static void ask(const char *node, const char *method, const char *req, char *out, size_t cap) {
  dfnet_status_t st = fabric_call(F.op, node, method, req, strlen(req), 600000, out, cap);
  if (st != DFNET_STATUS_OK)
    bench_die("%s %s %s: %s", node, method, req, dfnet_status_str(st));
}

/* The number after "key=" in "k=v;k=v", or 0. */
static uint64_t field(const char *text, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = text; (p = strstr(p, key)) != NULL; p += klen)
    if ((p == text || p[-1] == ';') && p[klen] == '=')
      return strtoull(p + klen + 1, NULL, 10);
  return 0;
}

/* One path measured: where the measuring driver runs and the processes it involves. */
typedef struct path {
  const char *node, *label, *target;
  bench_procs_t procs;
  bench_latency_t lat;
  double lat_cpu[BENCH_PROCS_MAX];
  double rate, rate_cpu[BENCH_PROCS_MAX];
} path_t;

enum { PATH_IN_PROCESS, PATH_ACROSS_HOSTS, PATH_ACROSS_BOARDS, PATH_COUNT };
static path_t paths[PATH_COUNT];
static bench_procs_t client_procs; /* the end-to-end client's */

/* The caller's driver host as the measuring driver says, checked against the offer. */
static pid_t caller_pid(const char *node, const char *want_source) {
  char info[512];
  ask(node, INFO, "", info, sizeof info);
  if (strstr(info, want_source) == NULL)
    bench_die("%s calls another parent than %s: %s", node, want_source, info);
  return (pid_t)field(info, "pid");
}

static void find_processes(void) {
  pid_t mgr = F.fab.manager, a = F.agents[0].pid, b = F.agents[1].pid;
  pid_t co = caller_pid(CHILD_CO, PARENT_CO), sep = caller_pid(CHILD_SEP, PARENT_SEP);
  pid_t x = caller_pid(COMPOSITE, PARENT_B);
  pid_t parent_co = spawned_for(F.agents[0].log, PARENT_CO);
  pid_t parent_sep = spawned_for(F.agents[0].log, PARENT_SEP);
  pid_t parent_b = spawned_for(F.agents[1].log, PARENT_B);
  if (parent_b == 0)
    parent_b = bench_first_child(b); /* lab-b runs one driver host */
  if (co != parent_co)
    bench_die("the colocated caller runs in pid %ld, its parent in %ld", (long)co, (long)parent_co);
  if (sep == parent_sep || parent_sep == 0 || x == 0 || parent_b == 0)
    bench_die("unexpected driver hosts: caller %ld / parent %ld, composite %ld, lab-b's %ld",
              (long)sep, (long)parent_sep, (long)x, (long)parent_b);
  fprintf(stderr,
          NAME
          ": pids: manager %ld, agents %ld %ld; driver hosts: pco+caller %ld, psep %ld, "
          "its caller %ld, pb %ld, composite caller %ld\n",
          (long)mgr, (long)a, (long)b, (long)co, (long)parent_sep, (long)sep, (long)parent_b,
          (long)x);
  path_t *p = &paths[PATH_IN_PROCESS];
  *p = (path_t){.node = CHILD_CO, .label = "(a) in process, one driver host"};
  bench_procs_add(&p->procs, "driver host (caller + parent)", co);
  bench_procs_add(&p->procs, "agent a", a);
  bench_procs_add(&p->procs, "manager", mgr);
  p = &paths[PATH_ACROSS_HOSTS];
  *p = (path_t){.node = CHILD_SEP, .label = "(b) across driver hosts, one board"};
  bench_procs_add(&p->procs, "caller's driver host", sep);
  bench_procs_add(&p->procs, "agent a", a);
  bench_procs_add(&p->procs, "parent's driver host", parent_sep);
  bench_procs_add(&p->procs, "manager", mgr);
  p = &paths[PATH_ACROSS_BOARDS];
  *p = (path_t){.node = COMPOSITE, .label = "(c) across boards, through the manager"};
  bench_procs_add(&p->procs, "caller's driver host", x);
  bench_procs_add(&p->procs, "agent a", a);
  bench_procs_add(&p->procs, "manager", mgr);
  bench_procs_add(&p->procs, "agent b", b);
  bench_procs_add(&p->procs, "parent's driver host", parent_b);
  bench_procs_add(&client_procs, "client", getpid());
  bench_procs_add(&client_procs, "manager", mgr);
  bench_procs_add(&client_procs, "agent b", b);
  bench_procs_add(&client_procs, "parent's driver host", parent_b);
}

/* ---- measuring ---------------------------------------------------------------------- */

/* Ask the driver on p->node for a Run; the calls it made, and its answer in out. */
static uint64_t run(const path_t *p, const char *req, char *out, size_t cap) {
  ask(p->node, RUN, req, out, cap);
  uint64_t calls = field(out, "calls");
  if (field(out, "failed") != 0 || calls == 0 || strstr(out, "first=OK") == NULL)
    bench_die("%s: calls of the parent failed: %s", p->node, out);
  return calls;
}

/* 5000 calls one at a time; keeps the run with the better p50 of those made so far. */
static void path_latency(path_t *p) {
  char out[512];
  bench_cpu_t cpu0;
  bench_cpu_snapshot(&p->procs, &cpu0);
  uint64_t calls = run(p, "depth=1;calls=5000;warmup=300", out, sizeof out);
  bench_latency_t l = {field(out, "p50_ns") / 1e3, field(out, "p99_ns") / 1e3};
  if (p->lat.p50_us == 0 || l.p50_us < p->lat.p50_us) {
    p->lat = l;
    bench_cpu_per(&p->procs, &cpu0, (double)calls, p->lat_cpu);
  }
}

/* 16 in flight for `seconds` after 300 ms of warm-up. */
static void path_rate(path_t *p, double seconds) {
  char req[96], out[512];
  snprintf(req, sizeof req, "depth=%d;warm_ms=300;ms=%u", BENCH_DEPTH, (unsigned)(seconds * 1000));
  bench_cpu_t cpu0;
  bench_cpu_snapshot(&p->procs, &cpu0);
  uint64_t calls = run(p, req, out, sizeof out);
  bench_cpu_per(&p->procs, &cpu0, (double)calls, p->rate_cpu);
  uint64_t ns = field(out, "window_ns");
  p->rate = ns > 0 ? (double)field(out, "window_calls") * 1e9 / (double)ns : 0;
}

static bench_latency_t better(bench_latency_t a, bench_latency_t b) {
  return a.p50_us <= b.p50_us ? a : b;
}

/* ---- the report --------------------------------------------------------------------- */

static bool pinned(void) { return getenv("DFNET_BENCH_ONE_CPU") != NULL; }

static void print_paths(const bench_latency_t *floor, const bench_latency_t *e2e) {
  const path_t *a = &paths[PATH_IN_PROCESS], *b = &paths[PATH_ACROSS_HOSTS],
               *c = &paths[PATH_ACROSS_BOARDS];
  double limit_c = TARGET_ACROSS_BOARDS_FACTOR * e2e->p50_us;
  printf("driver -> parent driver, unary 64 B, one call at a time (call_bench -> parent):\n");
  printf("  %-40s p50 %7.1f us  p99 %7.1f us   (target p50 <= %.0f us: %s)\n", a->label,
         a->lat.p50_us, a->lat.p99_us, TARGET_IN_PROCESS_P50_US,
         bench_met(a->lat.p50_us <= TARGET_IN_PROCESS_P50_US));
  bench_cpu_print(&a->procs, a->lat_cpu, "call");
  printf(
      "  %-40s p50 %7.1f us  p99 %7.1f us   vs single-hop wss floor p50 %.1f us"
      " (target <= floor: %s)\n",
      b->label, b->lat.p50_us, b->lat.p99_us, floor->p50_us,
      bench_met(b->lat.p50_us <= floor->p50_us));
  bench_cpu_print(&b->procs, b->lat_cpu, "call");
  printf(
      "  %-40s p50 %7.1f us  p99 %7.1f us   vs end-to-end client p50 %.1f us"
      " (target <= %.1fx = %.1f us: %s)\n",
      c->label, c->lat.p50_us, c->lat.p99_us, e2e->p50_us, TARGET_ACROSS_BOARDS_FACTOR, limit_c,
      bench_met(c->lat.p50_us <= limit_c));
  bench_cpu_print(&c->procs, c->lat_cpu, "call");
  printf("driver -> parent driver, unary 64 B, %d in flight:\n", BENCH_DEPTH);
  for (int i = 0; i < PATH_COUNT; i++) {
    printf("  %-40s %8.0f calls/s\n", paths[i].label, paths[i].rate);
    bench_cpu_print(&paths[i].procs, paths[i].rate_cpu, "call");
  }
}

static void report(const bench_latency_t *floor, const bench_latency_t *e2e, double e2e_rate,
                   const double e2e_cpu[BENCH_PROCS_MAX]) {
  printf(NAME " (loopback; best p50 of 2 interleaved runs of 5000 calls for each latency; %s)\n",
         pinned() ? "every process pinned to CPU 0 (DFNET_BENCH_ONE_CPU)"
                  : "processes NOT pinned: a wake-up on another CPU costs ~45 us on this VM");
  printf("floors, measured in this run:\n");
  printf("  %-40s p50 %7.1f us  p99 %7.1f us\n", "single hop, secure websocket (floor)",
         floor->p50_us, floor->p99_us);
  printf("  %-40s p50 %7.1f us  p99 %7.1f us\n", "end-to-end client unary (lab-b's parent)",
         e2e->p50_us, e2e->p99_us);
  printf("  %-40s %8.0f calls/s\n", "end-to-end client, 16 in flight", e2e_rate);
  bench_cpu_print(&client_procs, e2e_cpu, "call");
  print_paths(floor, e2e);
  char cpus[64];
  snprintf(cpus, sizeof cpus, "%ld CPUs shared with other work", sysconf(_SC_NPROCESSORS_ONLN));
  bench_print_loadavg(cpus);
}

/* Every figure, then the report. */
static void measure(double seconds) {
  dfnet_client_t *fc = bench_floor_connect();
  bench_latency_t floor = {0}, e2e = {0};
  /* Interleave the latency runs so that every path sees the same load on the machine. */
  for (int round = 0; round < 2; round++) {
    bench_latency_t f = bench_client_latency(fc, BENCH_FLOOR_NODE, BENCH_FLOOR_UNARY);
    bench_latency_t e = bench_client_latency(F.op, PARENT_B, ECHO);
    floor = round == 0 ? f : better(floor, f);
    e2e = round == 0 ? e : better(e2e, e);
    for (int i = 0; i < PATH_COUNT; i++)
      path_latency(&paths[i]);
  }
  dfnet_client_close(fc);
  bench_floor_stop();
  double e2e_cpu[BENCH_PROCS_MAX];
  double e2e_rate =
      bench_client_rate(connect_op, PARENT_B, ECHO, 1, seconds, &client_procs, e2e_cpu);
  for (int i = 0; i < PATH_COUNT; i++)
    path_rate(&paths[i], seconds);
  report(&floor, &e2e, e2e_rate, e2e_cpu);
}

/* The same run with every process on CPU 0; its report indented under this one's. The run
 * is a tests/child.h child: it and what it starts go when this program ends, however. */
static void run_on_one_cpu(void) {
  printf("\nthe same, every process on CPU 0 (without cross-CPU wake-ups):\n");
  fflush(stdout);
  int fds[2];
  if (pipe(fds) != 0)
    bench_die("pipe: %s", strerror(errno));
  pid_t pid = test_child_fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (dup2(fds[1], 1) < 0 || null < 0 || dup2(null, 2) < 0)
      _exit(127);
    close(fds[0]);
    close(fds[1]);
    setenv("DFNET_BENCH_ONE_CPU", "1", 1);
    execl("/proc/self/exe", NAME, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = pid > 0 ? fdopen(fds[0], "r") : NULL;
  if (f == NULL)
    bench_die("cannot start the pinned run: %s", strerror(errno));
  char line[512];
  while (fgets(line, sizeof line, f) != NULL)
    printf("  %s", line);
  fclose(f);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    printf("  the pinned run failed (status %d; run DFNET_BENCH_ONE_CPU=1 " NAME " to see why)\n",
           status);
}

int main(void) {
  bench_set_name(NAME);
  bench_one_cpu_if_asked(NAME);
  dfnet_log_set_level(DFNET_LOG_WARN);
  signal(SIGPIPE, SIG_IGN);
  /* Outside ctest: the build tree and the fixtures this program was built with. */
  setenv("DFNET_SOURCE_DIR", DRIVER_CALLS_BENCH_SOURCE_DIR, 0);
  setenv("DFNET_BUILD_DIR", DRIVER_CALLS_BENCH_BUILD_DIR, 0);
  const char *s = getenv("DRIVER_CALLS_BENCH_SECONDS");
  double seconds = s != NULL && atof(s) > 0 ? atof(s) : 3.0;

  bench_floor_start("driver-calls-bench");
  atexit(fabric_down);
  fabric_up();
  find_processes();
  measure(seconds);
  fabric_down();
  fflush(stdout);
  if (!pinned() && sysconf(_SC_NPROCESSORS_ONLN) > 1)
    run_on_one_cpu();
  return 0;
}
