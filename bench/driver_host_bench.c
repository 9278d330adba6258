/* driver_host_bench: figures for issue 6's driver host targets. Prints
 *   - driver host start: fork+exec of dfnet-driver-host to the driver's `start` having
 *     returned (the DriverStart Status back at the supervisor), p50 and max (target < 20 ms);
 *   - unary echo round trip through the supervisor and the socketpair to the echo test
 *     driver, 64-byte payload, p50/p99;
 *   - calls per second with 16 unary calls in flight.
 * Usage: driver_host_bench [starts] [calls]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/supervisor/supervisor.h"

typedef struct bench {
  dfnet_supervisor_t *sup;
  dfnet_envelope_t *env;
  uint64_t finals; /* final answers received */
  uint64_t last_id;
  int last_code;
  int exits;
} bench_t;

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

static void wait_finals(bench_t *b, uint64_t want) {
  while (b->finals < want) {
    struct pollfd p = {.fd = dfnet_supervisor_fd(b->sup), .events = POLLIN};
    poll(&p, 1, 1000);
    dfnet_supervisor_dispatch(b->sup);
  }
}

static void send_start(bench_t *b, uint64_t host, uint64_t id) {
  dfnet_envelope_init(b->env);
  b->env->pb.id = id;
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

static void send_echo(bench_t *b, uint64_t host, uint64_t id, const uint8_t *payload) {
  dfnet_envelope_init(b->env);
  b->env->pb.id = id;
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

int main(int argc, char **argv) {
  size_t starts = argc > 1 ? strtoul(argv[1], NULL, 10) : 20;
  size_t calls = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000;
  if (starts == 0 || calls == 0)
    return 2;
  bench_t b = {0};
  b.env = malloc(sizeof *b.env);
  static const char *const extra[] = {"--log-level", "warn", NULL};
  dfnet_supervisor_config_t cfg = {.driver_host_path = DFNET_DRIVER_HOST_BUILD_PATH,
                                   .extra_args = extra,
                                   .on_envelope = on_envelope,
                                   .on_exit = on_exit_cb,
                                   .arg = &b};
  if (dfnet_supervisor_new(&cfg, &b.sup) != DFNET_STATUS_OK)
    return 1;

  double *start_ms = calloc(starts, sizeof *start_ms);
  uint64_t id = 1;
  for (size_t i = 0; i < starts; i++) {
    uint64_t host;
    double t0 = now_us();
    if (dfnet_supervisor_spawn(b.sup, &host, NULL) != DFNET_STATUS_OK)
      return 1;
    send_start(&b, host, id++);
    wait_finals(&b, b.finals + 1);
    start_ms[i] = (now_us() - t0) / 1e3;
    if (b.last_code != 0) {
      fprintf(stderr, "DriverStart failed: %d\n", b.last_code);
      return 1;
    }
    int exits = b.exits;
    dfnet_supervisor_close(b.sup, host);
    while (b.exits == exits) {
      struct pollfd p = {.fd = dfnet_supervisor_fd(b.sup), .events = POLLIN};
      poll(&p, 1, 1000);
      dfnet_supervisor_dispatch(b.sup);
    }
  }
  qsort(start_ms, starts, sizeof *start_ms, cmp_double);
  printf(
      "driver host start (fork+exec -> driver start returned), %zu runs: p50 %.2f ms, "
      "max %.2f ms (target < 20 ms)\n",
      starts, pct(start_ms, starts, 0.5), start_ms[starts - 1]);

  uint64_t host;
  if (dfnet_supervisor_spawn(b.sup, &host, NULL) != DFNET_STATUS_OK)
    return 1;
  send_start(&b, host, id++);
  wait_finals(&b, b.finals + 1);
  uint8_t payload[64];
  memset(payload, 0xa5, sizeof payload);
  for (int i = 0; i < 200; i++) { /* warm up */
    send_echo(&b, host, id++, payload);
    wait_finals(&b, b.finals + 1);
  }
  double *rtt = calloc(calls, sizeof *rtt);
  for (size_t i = 0; i < calls; i++) {
    double t0 = now_us();
    send_echo(&b, host, id++, payload);
    wait_finals(&b, b.finals + 1);
    rtt[i] = now_us() - t0;
  }
  qsort(rtt, calls, sizeof *rtt, cmp_double);
  printf(
      "unary echo round trip (64 B, supervisor <-> driver host <-> echo), %zu calls: "
      "p50 %.1f us, p99 %.1f us\n",
      calls, pct(rtt, calls, 0.5), pct(rtt, calls, 0.99));

  const uint64_t inflight = 16;
  uint64_t base = b.finals;
  double t0 = now_us();
  for (uint64_t i = 0; i < inflight; i++)
    send_echo(&b, host, id++, payload);
  uint64_t sent = inflight;
  while (b.finals - base < calls) {
    uint64_t before = b.finals;
    wait_finals(&b, before + 1);
    for (uint64_t k = before; k < b.finals && sent < calls; k++, sent++)
      send_echo(&b, host, id++, payload);
  }
  double secs = (now_us() - t0) / 1e6;
  printf("unary echo with %llu in flight: %.0f calls/s\n", (unsigned long long)inflight,
         (double)calls / secs);
  dfnet_supervisor_free(b.sup);
  free(start_ms);
  free(rtt);
  free(b.env);
  return 0;
}
