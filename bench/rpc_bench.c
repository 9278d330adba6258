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
 * processes' pids are printed to stderr (for perf record -p). Prints figures only and
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
#include "scripted_server.h"
#include "one_cpu.h"

#define E2E_NODE "dev.lab-r.platform.echo0"
#define E2E_UNARY "/dfnet.test.Echo/Echo"
#define E2E_STREAM "/dfnet.test.Echo/Stream"
#define FLOOR_NODE "n"
#define FLOOR_UNARY "/test.Echo/Unary"

#define TARGET_LATENCY_FACTOR 4.0
#define TARGET_CALLS_PER_S 40000.0
#define TARGET_STREAM_MB_S 60.0

static char cert_dir[256];
static uint16_t floor_port;

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  bool up;
} E;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("rpc_bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1); /* atexit: the fabric and the scripted peer's files go */
}

static const char *met(bool ok) { return ok ? "met" : "NOT met"; }

/* ---- the floor's peer ---------------------------------------------------------------- */

static dfnet_client_t *connect_floor(void) {
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)floor_port);
  snprintf(crt, sizeof crt, "%s/operator/bob.crt", cert_dir);
  snprintf(key, sizeof key, "%s/operator/bob.key", cert_dir);
  snprintf(ca, sizeof ca, "%s/operator/ca.crt", cert_dir);
  dfnet_client_options_t o = {.url = url, .cert_file = crt, .key_file = key, .ca_file = ca};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_connect(&o, &c, &err) != DFNET_STATUS_OK)
    die("connect to the scripted peer: %s", err.message);
  return c;
}

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
    die("cannot make the fabric's directory, certificates and packages");
  if (fabric_issue(&E.fab, "host", "lab-r") != 0 || fabric_issue(&E.fab, "operator", "op") != 0)
    die("cannot issue certificates");
  const char *board[] = {"echo0:1", NULL};
  fabric_write_board(&E.fab, board);
  if (fabric_start_manager(&E.fab, "127.0.0.1", 30) != 0)
    die("dfnet-manager did not start (see %s)", E.fab.manager_log);
  fabric_start_agent(&E.fab, &E.agent);
  dfnet_client_t *c = fabric_connect(&E.fab, "op");
  if (c == NULL)
    die("cannot connect to dfnet-manager");
  fabric_node_t n;
  if (!fabric_wait_node(c, E2E_NODE, fabric_is_bound, NULL, 30000, &n))
    die("%s was not bound in 30 s (see %s)", E2E_NODE, E.agent.log);
  dfnet_client_close(c);
}

static dfnet_client_t *connect_e2e(void) {
  dfnet_client_t *c = fabric_connect(&E.fab, "op");
  if (c == NULL)
    die("cannot connect to dfnet-manager");
  return c;
}

/* ---- CPU time of the fabric's processes (less sensitive to other load than rates) ---- */

/* P_CLIENT is this process: the bench's client threads (the floor's peer is idle then). */
enum { P_CLIENT, P_MANAGER, P_AGENT, P_DRIVER_HOST, P_COUNT };
static const char *const proc_names[P_COUNT] = {"client", "manager", "agent", "driver host"};
static pid_t procs[P_COUNT];

/* utime + stime of `pid` in clock ticks, or 0. */
static uint64_t cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return ut + st;
}

static void cpu_snapshot(uint64_t out[P_COUNT]) {
  for (int i = 0; i < P_COUNT; i++)
    out[i] = procs[i] > 0 ? cpu_ticks(procs[i]) : 0;
}

/* CPU microseconds each process spent per unit of work since `before`. */
static void cpu_per(const uint64_t before[P_COUNT], double units, double out[P_COUNT]) {
  uint64_t now[P_COUNT];
  cpu_snapshot(now);
  double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
  for (int i = 0; i < P_COUNT; i++)
    out[i] = units > 0 ? (double)(now[i] - before[i]) * tick_us / units : 0.0;
}

static void cpu_print(const double per[P_COUNT], const char *unit) {
  printf("    CPU per %s:", unit);
  for (int i = 0; i < P_COUNT; i++)
    printf("%s %s %.1f us", i ? "," : "", proc_names[i], per[i]);
  printf("\n");
}

/* ---- unary round trip --------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct latency {
  double p50_us, p99_us;
} latency_t;

static latency_t bench_latency(dfnet_client_t *c, const char *node, const char *method) {
  enum { N = 5000, WARMUP = 300 };
  static uint64_t t[N];
  uint8_t req[64];
  memset(req, 0xab, sizeof req);
  dfnet_client_call_options_t o = {.deadline_ms = 5000};
  for (int i = -WARMUP; i < N; i++) {
    uint8_t *reply = NULL;
    size_t len = 0;
    dfnet_client_error_t err;
    uint64_t t0 = now_ns();
    dfnet_status_t st = dfnet_client_call(c, node, method, req, sizeof req, &o, &reply, &len, &err);
    uint64_t dt = now_ns() - t0;
    if (st != DFNET_STATUS_OK)
      die("%s %s: %s: %s", node, method, dfnet_status_str(st), err.message);
    if (len != sizeof req || memcmp(reply, req, len) != 0)
      die("%s %s: the reply is not the request echoed", node, method);
    if (i >= 0)
      t[i] = dt;
    free(reply);
  }
  qsort(t, N, sizeof t[0], cmp_u64);
  return (latency_t){t[N / 2] / 1e3, t[N * 99 / 100] / 1e3};
}

/* ---- calls in flight ---------------------------------------------------------------- */

enum { DEPTH = 16, MAX_CLIENTS = 4 };

typedef struct pipe_state {
  dfnet_client_t *c;
  const char *node, *method;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned in_flight;
  bool stop;
  uint64_t done, failed;
  dfnet_status_t first_failure;
} pipe_state_t;

static const uint8_t pl_req[64] = {0x5a};

static void pl_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *m);

/* Start one call; false when it could not start. mu not held. */
static bool pl_start(pipe_state_t *p) {
  dfnet_client_call_options_t o = {.deadline_ms = 10000};
  dfnet_status_t st = dfnet_client_call_start(p->c, p->node, p->method, pl_req, sizeof pl_req, &o,
                                              NULL, pl_done, p, NULL);
  if (st == DFNET_STATUS_OK)
    return true;
  pthread_mutex_lock(&p->mu);
  p->in_flight--;
  p->failed++;
  if (p->first_failure == DFNET_STATUS_OK)
    p->first_failure = st;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return false;
}

/* A call ended (client thread): count it and start the next one in its place. */
static void pl_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *m) {
  pipe_state_t *p = user;
  (void)id;
  (void)m;
  pthread_mutex_lock(&p->mu);
  p->done++;
  if (st != DFNET_STATUS_OK) {
    p->failed++;
    if (p->first_failure == DFNET_STATUS_OK)
      p->first_failure = st;
  }
  bool again = !p->stop && st == DFNET_STATUS_OK;
  if (!again) {
    p->in_flight--;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  if (again)
    pl_start(p);
}

/* Keep DEPTH unary calls in flight on each of `clients` connections for `seconds`;
 * returns completed calls per second over that time. */
static double bench_throughput(dfnet_client_t *(*connect)(void), const char *node,
                               const char *method, int clients, double seconds,
                               double cpu[P_COUNT]) {
  static pipe_state_t p[MAX_CLIENTS];
  for (int i = 0; i < clients; i++) {
    memset(&p[i], 0, sizeof p[i]);
    p[i].c = connect();
    p[i].node = node;
    p[i].method = method;
    pthread_mutex_init(&p[i].mu, NULL);
    pthread_cond_init(&p[i].cv, NULL);
  }
  uint64_t t0 = now_ns();
  uint64_t done0[MAX_CLIENTS];
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    p[i].in_flight = DEPTH;
    pthread_mutex_unlock(&p[i].mu);
    for (int k = 0; k < DEPTH; k++)
      pl_start(&p[i]);
  }
  /* A short warm-up, then count what completes in `seconds`. */
  struct timespec warm = {0, 300 * 1000000L};
  nanosleep(&warm, NULL);
  t0 = now_ns();
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    done0[i] = p[i].done;
    pthread_mutex_unlock(&p[i].mu);
  }
  uint64_t cpu0[P_COUNT];
  cpu_snapshot(cpu0);
  struct timespec run = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&run, NULL);
  uint64_t total = 0, failed = 0;
  dfnet_status_t why = DFNET_STATUS_OK;
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    total += p[i].done - done0[i];
    p[i].stop = true;
    pthread_mutex_unlock(&p[i].mu);
  }
  double s = (now_ns() - t0) / 1e9;
  cpu_per(cpu0, (double)total, cpu);
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    while (p[i].in_flight > 0)
      pthread_cond_wait(&p[i].cv, &p[i].mu);
    failed += p[i].failed;
    if (why == DFNET_STATUS_OK)
      why = p[i].first_failure;
    pthread_mutex_unlock(&p[i].mu);
    dfnet_client_close(p[i].c);
    pthread_mutex_destroy(&p[i].mu);
    pthread_cond_destroy(&p[i].cv);
  }
  if (failed > 0)
    die("%s %s: %llu calls failed (first: %s)", node, method, (unsigned long long)failed,
        dfnet_status_str(why));
  return total / s;
}

/* ---- streaming ---------------------------------------------------------------------- */

typedef struct stream_state {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t bytes, messages;
  bool done;
  dfnet_status_t status;
  char message[256];
} stream_state_t;

static void st_msg(void *user, dfnet_client_call_id_t id, const uint8_t *d, size_t n) {
  stream_state_t *s = user;
  (void)id;
  (void)d;
  s->bytes += n; /* client thread only until done */
  s->messages++;
}

static void st_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *m) {
  stream_state_t *s = user;
  (void)id;
  pthread_mutex_lock(&s->mu);
  s->status = st;
  snprintf(s->message, sizeof s->message, "%s", m ? m : "");
  s->done = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* Stream `count` items of `size` bytes from the echo driver; returns MB/s. */
static double bench_stream(dfnet_client_t *c, uint32_t count, uint32_t size, uint32_t credit,
                           double cpu[P_COUNT]) {
  uint8_t *req = malloc(4 + (size_t)size);
  if (req == NULL)
    die("out of memory");
  for (int i = 0; i < 4; i++)
    req[i] = (uint8_t)(count >> (8 * i));
  memset(req + 4, 0xc3, size);
  stream_state_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  dfnet_client_call_options_t co = {.deadline_ms = 120000, .credit = credit};
  uint64_t cpu0[P_COUNT];
  cpu_snapshot(cpu0);
  uint64_t t0 = now_ns();
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_call_start(c, E2E_NODE, E2E_STREAM, req, 4 + (size_t)size, &co,
                                              st_msg, st_done, &s, NULL);
  free(req);
  if (st != DFNET_STATUS_OK)
    die("%s %s: %s", E2E_NODE, E2E_STREAM, dfnet_status_str(st));
  (void)err;
  pthread_mutex_lock(&s.mu);
  while (!s.done)
    pthread_cond_wait(&s.cv, &s.mu);
  pthread_mutex_unlock(&s.mu);
  double sec = (now_ns() - t0) / 1e9;
  cpu_per(cpu0, (double)s.bytes / 1048576.0, cpu);
  if (s.status != DFNET_STATUS_OK || s.messages != count || s.bytes != (uint64_t)count * size)
    die("stream: %s (%s) after %llu of %u items", dfnet_status_str(s.status), s.message,
        (unsigned long long)s.messages, count);
  return s.bytes / sec / 1e6;
}

/* ---- run ---------------------------------------------------------------------------- */

static void remove_cert_dir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "rpc_bench: cannot remove %s\n", cert_dir);
}

static void find_pids(void) {
  procs[P_CLIENT] = getpid();
  procs[P_MANAGER] = E.fab.manager;
  procs[P_AGENT] = E.agent.pid;
  char path[80];
  snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)E.agent.pid, (long)E.agent.pid);
  FILE *f = fopen(path, "r");
  long child = 0;
  if (f != NULL && fscanf(f, "%ld", &child) == 1)
    procs[P_DRIVER_HOST] = (pid_t)child;
  if (f != NULL)
    fclose(f);
  fprintf(stderr, "rpc_bench: pids: manager %ld, agent %ld, driver host %ld\n",
          (long)procs[P_MANAGER], (long)procs[P_AGENT], (long)procs[P_DRIVER_HOST]);
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

int main(int argc, char **argv) {
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
  snprintf(cert_dir, sizeof cert_dir, "/tmp/dfnet-rpc-bench-peer-%d", (int)getpid());
  if (ss_make_certs(cert_dir) != 0)
    die("cannot make the scripted peer's certificates");
  atexit(remove_cert_dir);
  scripted_server_t *peer = ss_start(cert_dir, &floor_port);
  if (peer == NULL)
    die("the scripted peer did not start");

  /* The fabric: manager, agent, driver host, echo driver. */
  atexit(fabric_down);
  fabric_up();
  find_pids();

  if (only != NULL) {
    dfnet_client_t *c = connect_e2e();
    uint32_t n = getenv("RPC_BENCH_STREAM_COUNT")
                     ? (uint32_t)strtoul(getenv("RPC_BENCH_STREAM_COUNT"), NULL, 10)
                     : 4096;
    double cpu[P_COUNT];
    if (strcmp(only, "stream") == 0) {
      printf("end to end, streaming %u x 16 KiB, credit %u: %.1f MB/s\n", n, credit,
             bench_stream(c, n, 16384, credit, cpu));
      cpu_print(cpu, "MiB");
    } else {
      printf("end to end, unary 64 B, 16 in flight x 1 client: %.0f calls/s\n",
             bench_throughput(connect_e2e, E2E_NODE, E2E_UNARY, 1, seconds, cpu));
      cpu_print(cpu, "call");
    }
    dfnet_client_close(c);
    ss_stop(peer);
    fabric_down();
    return 0;
  }

  dfnet_client_t *fc = connect_floor();
  dfnet_client_t *ec = connect_e2e();
  /* Interleave the two latency runs so both see the same load on the machine. */
  latency_t floor_a = bench_latency(fc, FLOOR_NODE, FLOOR_UNARY);
  latency_t e2e_a = bench_latency(ec, E2E_NODE, E2E_UNARY);
  latency_t floor_b = bench_latency(fc, FLOOR_NODE, FLOOR_UNARY);
  latency_t e2e_b = bench_latency(ec, E2E_NODE, E2E_UNARY);
  latency_t floor = floor_a.p50_us <= floor_b.p50_us ? floor_a : floor_b;
  latency_t e2e = e2e_a.p50_us <= e2e_b.p50_us ? e2e_a : e2e_b;
  dfnet_client_close(fc);
  ss_stop(peer);

  double cpu1[P_COUNT], cpu4[P_COUNT], cpus[P_COUNT];
  double cps1 = bench_throughput(connect_e2e, E2E_NODE, E2E_UNARY, 1, seconds, cpu1);
  double cps4 = bench_throughput(connect_e2e, E2E_NODE, E2E_UNARY, MAX_CLIENTS, seconds, cpu4);
  double mbs = bench_stream(ec, 4096, 16384, credit, cpus);
  dfnet_client_close(ec);

  double ratio = e2e.p50_us / floor.p50_us;
  printf("rpc_bench (loopback; best of 2 interleaved runs of 5000 calls for each latency)\n");
  printf("single hop, secure websocket, unary 64 B (floor): p50 %7.1f us  p99 %7.1f us\n",
         floor.p50_us, floor.p99_us);
  printf(
      "end to end, unary 64 B:                           p50 %7.1f us  p99 %7.1f us"
      "   = %.2fx floor  (target <= %.0fx = %.1f us: %s)\n",
      e2e.p50_us, e2e.p99_us, ratio, TARGET_LATENCY_FACTOR, TARGET_LATENCY_FACTOR * floor.p50_us,
      met(ratio <= TARGET_LATENCY_FACTOR));
  printf(
      "end to end, unary 64 B, 16 in flight x 1 client:  %8.0f calls/s"
      "   (target >= %.0f: %s)\n",
      cps1, TARGET_CALLS_PER_S, met(cps1 >= TARGET_CALLS_PER_S));
  cpu_print(cpu1, "call");
  fflush(stdout);
  if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
    throughput_on_one_cpu(argv[0]);
  printf(
      "end to end, unary 64 B, 16 in flight x 4 clients: %8.0f calls/s"
      "   (target >= %.0f: %s)\n",
      cps4, TARGET_CALLS_PER_S, met(cps4 >= TARGET_CALLS_PER_S));
  cpu_print(cpu4, "call");
  printf(
      "end to end, streaming 4096 x 16 KiB, credit %u:   %8.1f MB/s"
      "      (target >= %.0f: %s)\n",
      credit, mbs, TARGET_STREAM_MB_S, met(mbs >= TARGET_STREAM_MB_S));
  cpu_print(cpus, "MiB");
  double load[3] = {0};
  if (getloadavg(load, 3) == 3)
    printf("load average at the end: %.2f %.2f %.2f (2 cores shared with other work)\n", load[0],
           load[1], load[2]);
  fabric_down();
  return 0;
}
