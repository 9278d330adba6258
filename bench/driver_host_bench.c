/* driver_host_bench: figures for issue 6's driver host targets, and what the confinement of
 * issue 22 ("Driver rights") costs. Prints, for driver hosts sandboxed (docs/architecture.md
 * "Confinement": the driver user, Landlock, seccomp, limits) beside unsandboxed ones:
 *   - driver host start: fork+exec of dfnet-driver-host to the driver's `start` having
 *     returned (the DriverStart Status back at the supervisor), p50 and max (target < 20 ms);
 *     the two kinds alternate, start after start, in the same run;
 *   - unary echo round trip through the supervisor and the socketpair to the echo test
 *     driver, 64-byte payload, p50/p99, and the driver host's CPU per call (the sum of its
 *     threads' run time, /proc/<pid>/task/<tid>/schedstat): what the seccomp filter adds to
 *     every system call shows there;
 *   - calls per second with 16 unary calls in flight.
 * Usage: driver_host_bench [starts] [calls]
 */
#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver_user.h"
#include "host/supervisor/supervisor.h"
#include "lib/log.h"

typedef struct bench {
  const char *label; /* "sandboxed", "unsandboxed" */
  dfnet_supervisor_t *sup;
  dfnet_envelope_t *env;
  uint64_t finals; /* final answers received */
  uint64_t last_id;
  int last_code;
  int exits;
  uint64_t next_id;
} bench_t;

/* What one kind of driver host measured. */
typedef struct figures {
  double start_p50_ms, start_max_ms;
  double rtt_p50_us, rtt_p99_us;
  double cpu_per_call_us;
  double calls_per_s;
} figures_t;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void on_envelope(void *arg, uint64_t host, const dfnet_envelope_t *env) {
  bench_t *b = arg;
  (void)host;
  if (env->pb.which_msg == dfnet_v1_Envelope_status_tag ||
      (env->pb.which_msg == dfnet_v1_Envelope_reply_tag && env->pb.msg.reply.end_of_stream)) {
    b->finals++;
    b->last_id = env->pb.id;
    b->last_code = env->pb.which_msg == dfnet_v1_Envelope_status_tag ? (int)env->pb.msg.status.code
                                                                     : (int)env->pb.msg.reply.code;
  }
}

static void on_exit_cb(void *arg, const dfnet_driver_host_exit_t *x) {
  (void)x;
  ((bench_t *)arg)->exits++;
}

static void pump(bench_t *b) {
  struct pollfd p = {.fd = dfnet_supervisor_fd(b->sup), .events = POLLIN};
  poll(&p, 1, 1000);
  dfnet_supervisor_dispatch(b->sup);
}

static void wait_finals(bench_t *b, uint64_t want) {
  while (b->finals < want)
    pump(b);
}

static void send_start(bench_t *b, uint64_t host) {
  dfnet_envelope_init(b->env);
  b->env->pb.id = b->next_id++;
  b->env->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &b->env->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "dev.bench.echo");
  snprintf(m->binary, sizeof m->binary, "echo.so");
  snprintf(m->local_path, sizeof m->local_path, "%s", DFNET_TEST_DRIVER_DIR);
  if (dfnet_supervisor_send(b->sup, host, b->env) != DFNET_STATUS_OK) {
    fprintf(stderr, "send DriverStart failed\n");
    exit(1);
  }
}

static void send_echo(bench_t *b, uint64_t host, const uint8_t *payload) {
  dfnet_envelope_init(b->env);
  b->env->pb.id = b->next_id++;
  b->env->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(b->env->pb.msg.call.target, sizeof b->env->pb.msg.call.target, "dev.bench.echo");
  snprintf(b->env->pb.msg.call.method, sizeof b->env->pb.msg.call.method, "/dfnet.test.Echo/Echo");
  b->env->pb.msg.call.deadline_ms = 5000;
  b->env->bulk.data = payload;
  b->env->bulk.size = 64;
  if (dfnet_supervisor_send(b->sup, host, b->env) != DFNET_STATUS_OK) {
    fprintf(stderr, "send Call failed\n");
    exit(1);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i];
}

/* A supervisor for driver hosts sandboxed or not (the driver user, the echo driver's
 * directory readable). Exits on failure. */
static void bench_init(bench_t *b, bool sandboxed) {
  static const char *const extra[] = {"--log-level", "warn", NULL};
  static const char *const read_only[] = {DFNET_TEST_DRIVER_DIR, NULL};
  memset(b, 0, sizeof *b);
  b->label = sandboxed ? "sandboxed" : "unsandboxed";
  b->env = malloc(sizeof *b->env);
  b->next_id = 1;
  dfnet_supervisor_config_t cfg = {.driver_host_path = DFNET_DRIVER_HOST_BUILD_PATH,
                                   .extra_args = extra,
                                   .sandbox = {.enabled = sandboxed, .read_only = read_only},
                                   .on_envelope = on_envelope,
                                   .on_exit = on_exit_cb,
                                   .arg = b};
  if (b->env == NULL || (sandboxed && !test_driver_user(&cfg.sandbox.uid, &cfg.sandbox.gid)) ||
      dfnet_supervisor_new(&cfg, &b->sup) != DFNET_STATUS_OK)
    exit(1);
}

/* Spawn a driver host and start echo in it; its id. Exits on failure. */
static uint64_t spawn_echo(bench_t *b) {
  uint64_t host;
  if (dfnet_supervisor_spawn(b->sup, &host, NULL) != DFNET_STATUS_OK)
    exit(1);
  send_start(b, host);
  wait_finals(b, b->finals + 1);
  if (b->last_code != 0) {
    fprintf(stderr, "%s DriverStart failed: %d\n", b->label, b->last_code);
    exit(1);
  }
  return host;
}

static void close_host(bench_t *b, uint64_t host) {
  int exits = b->exits;
  dfnet_supervisor_close(b->sup, host);
  while (b->exits == exits)
    pump(b);
}

/* `starts` starts of each kind, alternating: start time p50 and max into figs[0], figs[1]. */
static void measure_starts(bench_t *kinds, figures_t *figs, size_t starts) {
  double *ms[2] = {calloc(starts, sizeof(double)), calloc(starts, sizeof(double))};
  for (size_t i = 0; i < starts; i++) {
    for (int k = 0; k < 2; k++) {
      double t0 = now_us();
      uint64_t host = spawn_echo(&kinds[k]);
      ms[k][i] = (now_us() - t0) / 1e3;
      close_host(&kinds[k], host);
    }
  }
  for (int k = 0; k < 2; k++) {
    qsort(ms[k], starts, sizeof(double), cmp_double);
    figs[k].start_p50_ms = pct(ms[k], starts, 0.5);
    figs[k].start_max_ms = ms[k][starts - 1];
    free(ms[k]);
  }
}

/* The CPU time of process pid so far, all its threads, µs (/proc/<pid>/task/<tid>/schedstat:
 * its first field is the time on a CPU, ns). */
static double cpu_us(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  DIR *dir = opendir(path);
  double total = 0;
  struct dirent *e;
  while (dir != NULL && (e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char stat[320];
    snprintf(stat, sizeof stat, "/proc/%ld/task/%s/schedstat", (long)pid, e->d_name);
    FILE *f = fopen(stat, "r");
    unsigned long long ns = 0;
    if (f != NULL && fscanf(f, "%llu", &ns) == 1)
      total += (double)ns / 1e3;
    if (f != NULL)
      fclose(f);
  }
  if (dir != NULL)
    closedir(dir);
  return total;
}

#define ROUND 500 /* calls of one kind before the other kind's turn */

/* The round trips of `calls` unary calls one at a time on each kind's driver host (hosts[k]),
 * the kinds taking turns every ROUND calls, and each driver host's CPU per call. */
static void measure_round_trips(bench_t *kinds, const uint64_t *hosts, size_t calls,
                                figures_t *figs) {
  uint8_t payload[64];
  memset(payload, 0xa5, sizeof payload);
  double *rtt[2] = {calloc(calls, sizeof(double)), calloc(calls, sizeof(double))};
  double cpu[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < 200; i++) { /* warm up */
      send_echo(&kinds[k], hosts[k], payload);
      wait_finals(&kinds[k], kinds[k].finals + 1);
    }
  }
  for (size_t done = 0; done < calls; done += ROUND) {
    size_t n = calls - done < ROUND ? calls - done : ROUND;
    for (int k = 0; k < 2; k++) {
      bench_t *b = &kinds[k];
      pid_t pid = dfnet_supervisor_pid(b->sup, hosts[k]);
      double cpu0 = cpu_us(pid);
      for (size_t i = done; i < done + n; i++) {
        double t0 = now_us();
        send_echo(b, hosts[k], payload);
        wait_finals(b, b->finals + 1);
        rtt[k][i] = now_us() - t0;
      }
      cpu[k] += cpu_us(pid) - cpu0;
    }
  }
  for (int k = 0; k < 2; k++) {
    figs[k].cpu_per_call_us = cpu[k] / (double)calls;
    qsort(rtt[k], calls, sizeof(double), cmp_double);
    figs[k].rtt_p50_us = pct(rtt[k], calls, 0.5);
    figs[k].rtt_p99_us = pct(rtt[k], calls, 0.99);
    free(rtt[k]);
  }
}

/* `calls` unary calls with 16 in flight: the seconds they took. */
static double run_inflight(bench_t *b, uint64_t host, size_t calls) {
  uint8_t payload[64];
  memset(payload, 0xa5, sizeof payload);
  const uint64_t inflight = 16;
  uint64_t base = b->finals;
  double t0 = now_us();
  for (uint64_t i = 0; i < inflight && i < calls; i++)
    send_echo(b, host, payload);
  uint64_t sent = inflight < calls ? inflight : calls;
  while (b->finals - base < calls) {
    uint64_t before = b->finals;
    wait_finals(b, before + 1);
    for (uint64_t k = before; k < b->finals && sent < calls; k++, sent++)
      send_echo(b, host, payload);
  }
  return (now_us() - t0) / 1e6;
}

/* Calls per second with 16 in flight, the kinds taking turns every 10 * ROUND calls. */
static void measure_throughput(bench_t *kinds, const uint64_t *hosts, size_t calls,
                               figures_t *figs) {
  double secs[2] = {0, 0};
  for (size_t done = 0; done < calls; done += 10 * ROUND) {
    size_t n = calls - done < 10 * ROUND ? calls - done : 10 * ROUND;
    for (int k = 0; k < 2; k++)
      secs[k] += run_inflight(&kinds[k], hosts[k], n);
  }
  for (int k = 0; k < 2; k++)
    figs[k].calls_per_s = (double)calls / secs[k];
}

int main(int argc, char **argv) {
  size_t starts = argc > 1 ? strtoul(argv[1], NULL, 10) : 20;
  size_t calls = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000;
  if (starts == 0 || calls == 0)
    return 2;
  dfnet_log_set_level(DFNET_LOG_WARN); /* not a line per driver host's exit */
  bench_t kinds[2];
  figures_t figs[2];
  memset(figs, 0, sizeof figs);
  bench_init(&kinds[0], true);
  bench_init(&kinds[1], false);
  measure_starts(kinds, figs, starts);
  uint64_t hosts[2] = {spawn_echo(&kinds[0]), spawn_echo(&kinds[1])};
  measure_round_trips(kinds, hosts, calls, figs);
  measure_throughput(kinds, hosts, calls, figs);
  for (int k = 0; k < 2; k++)
    close_host(&kinds[k], hosts[k]);
  printf("%-58s %12s %12s\n", "", "sandboxed", "unsandboxed");
  printf("%-58s %9.2f ms %9.2f ms\n", "driver host start p50 (fork+exec -> start returned)",
         figs[0].start_p50_ms, figs[1].start_p50_ms);
  printf("%-58s %9.2f ms %9.2f ms\n", "driver host start max (target < 20 ms)",
         figs[0].start_max_ms, figs[1].start_max_ms);
  printf("%-58s %9.1f us %9.1f us\n", "unary echo round trip p50 (64 B)", figs[0].rtt_p50_us,
         figs[1].rtt_p50_us);
  printf("%-58s %9.1f us %9.1f us\n", "unary echo round trip p99", figs[0].rtt_p99_us,
         figs[1].rtt_p99_us);
  printf("%-58s %9.2f us %9.2f us\n", "driver host CPU per call (all its threads)",
         figs[0].cpu_per_call_us, figs[1].cpu_per_call_us);
  printf("%-58s %7.0f /s   %7.0f /s\n", "unary echo with 16 in flight", figs[0].calls_per_s,
         figs[1].calls_per_s);
  printf("(%zu starts of each kind, alternating; %zu calls of each kind, taking turns)\n", starts,
         calls);
  for (int k = 0; k < 2; k++) {
    dfnet_supervisor_free(kinds[k].sup);
    free(kinds[k].env);
  }
  return 0;
}
