/* rpc_bench: figures for calls through libdfnet-client (issue 7 "Benchmark").
 *
 * One run on loopback measures two paths:
 *
 *   floor       libdfnet-client to a peer one secure-websocket hop away (the scripted
 *               manager peer of tests/clients: the real transport, TLS 1.2, answering
 *               /test.Echo/Unary itself);
 *   end to end  libdfnet-client -> dfnet-manager -> dfnet-host -> dfnet-driver-host -> the
 *               echo test driver (tests/drivers/echo.c) and back: a real fabric brought
 *               up with tests/integration/fabric.h (/dfnet.test.Echo/Echo, Stream).
 *
 * and prints:
 *   unary round trip, 64 B payload, one call at a time: p50 / p99 (floor and end to end);
 *   end-to-end calls per second with 16 in flight on one client, and with 4 clients x 16
 *   (each completion starts the next call from the client's callback); the one-client
 *   figure again from a child run with the client and the whole fabric on one CPU (the
 *   code's own cost, without cross-CPU wake-ups; not a target of its own);
 *   end-to-end streaming MB/s: Stream with 16 KiB items, credit window 32 (or
 *   $RPC_BENCH_CREDIT), from the echo driver to the client;
 * with issue 7's targets beside them (end-to-end p50 <= 4x the floor's p50, >= 40,000
 * calls/s with 16 in flight, >= 60 MB/s streaming) and whether each is met.
 *
 * Beneath the rates: the CPU time the client (this process), the manager, the agent and the driver
 * host spent per call (per MiB streamed), from /proc/<pid>/stat: less sensitive to other load on
 * the machine than the rates, so changes to the call path are compared with it. To compare two
 * builds of the fabric under the same load, run them alternately: DFNET_BUILD_DIR may name another
 * tree holding manager/dfnet-manager, host/agent/dfnet-host, host/driver_host/dfnet-driver-host and
 * tests/drivers/. $RPC_BENCH_SECONDS (default 3) is the length of each calls-per-second phase; the
 * processes' pids are printed to stderr (for perf record -p). The driver host runs confined
 * (docs/architecture.md "Confinement"); $RPC_BENCH_NO_SANDBOX=1 starts the agent with
 * --no-sandbox, to measure what the seccomp filter and Landlock cost per call (alternate
 * runs with and without). Prints figures only and
 * never asserts on them; a failed call or a fabric that does not come up ends the run
 * with exit status 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dfnet/client.h"
#include "integration/fabric.h"
#include "lib/log.h"
#include "bench_util.h"
#include "client_calls.h"
#include "one_cpu.h"

#define E2E_NODE "dev.lab-r.platform.echo0"
#define E2E_UNARY "/dfnet.test.Echo/Echo"
#define E2E_STREAM "/dfnet.test.Echo/Stream"

#define TARGET_LATENCY_FACTOR 4.0
#define TARGET_CALLS_PER_S 40000.0
#define TARGET_STREAM_MB_S 60.0

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  bool up;
} E;

/* ---- the fabric --------------------------------------------------------------------- */

static void fabric_down(void) {
  if (E.up) {
    E.up = false;
    fabric_cleanup(&E.fab, &E.agent, 1);
  }
}

static void fabric_up(void) {
  static const fabric_package_t packages[] = {{"echo", "echo.so", NULL, 1}, {NULL, NULL, NULL, 0}};
  E.agent.name = "lab-r";
  E.up = true; /* from here on the directory goes at exit, however far this gets */
  if (fabric_init(&E.fab, "rpc-bench", NULL, packages) != 0)
    bench_die("cannot make the fabric's directory, certificates and packages");
  if (fabric_issue(&E.fab, "host", "lab-r") != 0 || fabric_issue(&E.fab, "operator", "op") != 0)
    bench_die("cannot issue certificates");
  const char *board[] = {"echo0:1", NULL};
  fabric_write_board(&E.fab, board);
  if (fabric_start_manager(&E.fab, "127.0.0.1", 30) != 0)
    bench_die("dfnet-manager did not start (see %s)", E.fab.manager_log);
  static const char *const unconfined[] = {"--no-sandbox", NULL};
  const char *ns = getenv("RPC_BENCH_NO_SANDBOX");
  if (ns != NULL && strcmp(ns, "1") == 0)
    E.agent.extra = unconfined;
  fprintf(stderr, "rpc_bench: driver host %s\n", E.agent.extra ? "unconfined" : "confined");
  fabric_start_agent(&E.fab, &E.agent);
  dfnet_client_t *c = fabric_connect(&E.fab, "op");
  if (c == NULL)
    bench_die("cannot connect to dfnet-manager");
  fabric_node_t n;
  if (!fabric_wait_node(c, E2E_NODE, fabric_is_bound, NULL, 30000, &n))
    bench_die("%s was not bound in 30 s (see %s)", E2E_NODE, E.agent.log);
  dfnet_client_close(c);
}

static dfnet_client_t *connect_e2e(void) {
  dfnet_client_t *c = fabric_connect(&E.fab, "op");
  if (c == NULL)
    bench_die("cannot connect to dfnet-manager");
  return c;
}

/* The client (this process: the bench's client threads; the floor's peer is idle then), the
 * manager, the agent and the driver host. */
static bench_procs_t procs;

/* ---- run ---------------------------------------------------------------------------- */

static void find_pids(void) {
  pid_t driver_host = bench_first_child(E.agent.pid);
  bench_procs_add(&procs, "client", getpid());
  bench_procs_add(&procs, "manager", E.fab.manager);
  bench_procs_add(&procs, "agent", E.agent.pid);
  bench_procs_add(&procs, "driver host", driver_host);
  fprintf(stderr, "rpc_bench: pids: manager %ld, agent %ld, driver host %ld\n", (long)E.fab.manager,
          (long)E.agent.pid, (long)driver_host);
}

/* The 16-in-flight phase again in a child run with the client and the whole fabric on
 * CPU 0 (DFNET_BENCH_ONE_CPU): the code's own cost per call, without the wake-ups of idle
 * CPUs between the processes (tens of microseconds each in a VM whose idle CPUs halt). */
static void throughput_on_one_cpu(const char *self) {
  char cmd[1200], line[512];
  snprintf(cmd, sizeof cmd, "DFNET_BENCH_ONE_CPU=1 '%s' unary 2>/dev/null", self);
  FILE *f = popen(cmd, "r");
  if (f == NULL)
    return;
  bool got = false;
  while (fgets(line, sizeof line, f) != NULL) {
    double cps = 0;
    const char *colon = strstr(line, "client:");
    if (colon != NULL && sscanf(colon + 7, "%lf", &cps) == 1) {
      got = true;
      printf("  the same, client and fabric on one CPU: %8.0f calls/s   (%s)\n", cps,
             cps >= TARGET_CALLS_PER_S ? "at or above 40000" : "below 40000");
    } else {
      printf("  %s", line);
    }
  }
  int status = pclose(f);
  if (!got)
    printf(
        "  the same, client and fabric on one CPU: the child run failed (status %d; run "
        "DFNET_BENCH_ONE_CPU=1 rpc_bench unary to see why)\n",
        status);
}

/* "rpc_bench stream" / "rpc_bench unary": only that end-to-end phase. */
static void run_only(const char *only, double seconds, uint32_t credit) {
  dfnet_client_t *c = connect_e2e();
  uint32_t n = getenv("RPC_BENCH_STREAM_COUNT")
                   ? (uint32_t)strtoul(getenv("RPC_BENCH_STREAM_COUNT"), NULL, 10)
                   : 4096;
  double cpu[BENCH_PROCS_MAX];
  if (strcmp(only, "stream") == 0) {
    printf("end to end, streaming %u x 16 KiB, credit %u: %.1f MB/s\n", n, credit,
           bench_client_stream(c, E2E_NODE, E2E_STREAM, n, 16384, credit, &procs, cpu));
    bench_cpu_print(&procs, cpu, "MiB");
  } else {
    printf("end to end, unary 64 B, 16 in flight x 1 client: %.0f calls/s\n",
           bench_client_rate(connect_e2e, E2E_NODE, E2E_UNARY, 1, seconds, &procs, cpu));
    bench_cpu_print(&procs, cpu, "call");
  }
  dfnet_client_close(c);
}

/* Every phase, with the targets. */
static void run_all(const char *self, double seconds, uint32_t credit) {
  dfnet_client_t *fc = bench_floor_connect();
  dfnet_client_t *ec = connect_e2e();
  /* Interleave the two latency runs so both see the same load on the machine. */
  bench_latency_t floor_a = bench_client_latency(fc, BENCH_FLOOR_NODE, BENCH_FLOOR_UNARY);
  bench_latency_t e2e_a = bench_client_latency(ec, E2E_NODE, E2E_UNARY);
  bench_latency_t floor_b = bench_client_latency(fc, BENCH_FLOOR_NODE, BENCH_FLOOR_UNARY);
  bench_latency_t e2e_b = bench_client_latency(ec, E2E_NODE, E2E_UNARY);
  bench_latency_t floor = floor_a.p50_us <= floor_b.p50_us ? floor_a : floor_b;
  bench_latency_t e2e = e2e_a.p50_us <= e2e_b.p50_us ? e2e_a : e2e_b;
  dfnet_client_close(fc);
  bench_floor_stop();

  double cpu1[BENCH_PROCS_MAX], cpu4[BENCH_PROCS_MAX], cpus[BENCH_PROCS_MAX];
  double cps1 = bench_client_rate(connect_e2e, E2E_NODE, E2E_UNARY, 1, seconds, &procs, cpu1);
  double cps4 =
      bench_client_rate(connect_e2e, E2E_NODE, E2E_UNARY, BENCH_MAX_CLIENTS, seconds, &procs, cpu4);
  double mbs = bench_client_stream(ec, E2E_NODE, E2E_STREAM, 4096, 16384, credit, &procs, cpus);
  dfnet_client_close(ec);

  double ratio = e2e.p50_us / floor.p50_us;
  printf("rpc_bench (loopback; best of 2 interleaved runs of 5000 calls for each latency)\n");
  printf("single hop, secure websocket, unary 64 B (floor): p50 %7.1f us  p99 %7.1f us\n",
         floor.p50_us, floor.p99_us);
  printf(
      "end to end, unary 64 B:                           p50 %7.1f us  p99 %7.1f us"
      "   = %.2fx floor  (target <= %.0fx = %.1f us: %s)\n",
      e2e.p50_us, e2e.p99_us, ratio, TARGET_LATENCY_FACTOR, TARGET_LATENCY_FACTOR * floor.p50_us,
      bench_met(ratio <= TARGET_LATENCY_FACTOR));
  printf(
      "end to end, unary 64 B, 16 in flight x 1 client:  %8.0f calls/s"
      "   (target >= %.0f: %s)\n",
      cps1, TARGET_CALLS_PER_S, bench_met(cps1 >= TARGET_CALLS_PER_S));
  bench_cpu_print(&procs, cpu1, "call");
  fflush(stdout);
  if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
    throughput_on_one_cpu(self);
  printf(
      "end to end, unary 64 B, 16 in flight x 4 clients: %8.0f calls/s"
      "   (target >= %.0f: %s)\n",
      cps4, TARGET_CALLS_PER_S, bench_met(cps4 >= TARGET_CALLS_PER_S));
  bench_cpu_print(&procs, cpu4, "call");
  printf(
      "end to end, streaming 4096 x 16 KiB, credit %u:   %8.1f MB/s"
      "      (target >= %.0f: %s)\n",
      credit, mbs, TARGET_STREAM_MB_S, bench_met(mbs >= TARGET_STREAM_MB_S));
  bench_cpu_print(&procs, cpus, "MiB");
  bench_print_loadavg("2 cores shared with other work");
}

int main(int argc, char **argv) {
  bench_set_name("rpc_bench");
  bench_one_cpu_if_asked("rpc_bench");
  /* "rpc_bench stream" / "rpc_bench unary": only that end-to-end phase, for profiling
   * (perf record -p on the printed pids); the figures then print without targets. */
  const char *only = argc > 1 ? argv[1] : NULL;
  if (only != NULL && strcmp(only, "stream") != 0 && strcmp(only, "unary") != 0) {
    fprintf(stderr, "usage: rpc_bench [stream|unary]\n");
    return 2;
  }
  dfnet_log_set_level(DFNET_LOG_WARN);
  signal(SIGPIPE, SIG_IGN);
  /* Outside ctest: the build tree and the fixtures this program was built with. */
  setenv("DFNET_SOURCE_DIR", RPC_BENCH_SOURCE_DIR, 0);
  setenv("DFNET_BUILD_DIR", RPC_BENCH_BUILD_DIR, 0);
  double seconds = getenv("RPC_BENCH_SECONDS") ? atof(getenv("RPC_BENCH_SECONDS")) : 3.0;
  if (seconds <= 0)
    seconds = 3.0;
  uint32_t credit =
      getenv("RPC_BENCH_CREDIT") ? (uint32_t)strtoul(getenv("RPC_BENCH_CREDIT"), NULL, 10) : 32;

  /* The floor: one hop to the scripted peer. */
  bench_floor_start("rpc-bench");

  /* The fabric: manager, agent, driver host, echo driver. */
  atexit(fabric_down);
  fabric_up();
  find_pids();

  if (only != NULL) {
    run_only(only, seconds, credit);
    bench_floor_stop();
  } else {
    run_all(argv[0], seconds, credit);
  }
  fabric_down();
  return 0;
}
