/* rpc_bench: figures for calls through libdfnet-client (issue 7 "Benchmark").
 *
 * This run measures the single hop — libdfnet-client to a peer on the real transport
 * (the scripted manager peer of tests/clients: TLS 1.2 websocket on loopback, answering
 * /test.Echo/Unary and /test.Echo/Stream itself) — which is the floor an end-to-end call
 * through manager, host agent and driver host is compared with:
 *   unary round trip, 64 B payload: p50 / p99 (one call at a time);
 *   calls per second with 16 in flight on one client, and with 4 clients x 16;
 *   streaming MB/s (16 KiB messages, credit window 32) from the peer to the client.
 * The end-to-end figures (through dfnet-manager, dfnet-host and the echo test driver) are
 * not in this program yet. Prints figures only; never asserts on them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dfnet/client.h"
#include "lib/log.h"
#include "scripted_server.h"

static char cert_dir[256];
static uint16_t port;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static dfnet_client_t *connect_client(void) {
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/operator/bob.crt", cert_dir);
  snprintf(key, sizeof key, "%s/operator/bob.key", cert_dir);
  snprintf(ca, sizeof ca, "%s/operator/ca.crt", cert_dir);
  dfnet_client_options_t o = {.url = url, .cert_file = crt, .key_file = key, .ca_file = ca};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_connect(&o, &c, &err) != DFNET_STATUS_OK)
    fprintf(stderr, "connect: %s\n", err.message);
  return c;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void bench_latency(dfnet_client_t *c) {
  enum { N = 5000 };
  static uint64_t t[N];
  uint8_t req[64];
  memset(req, 0xab, sizeof req);
  for (int i = -200; i < N; i++) {
    uint8_t *reply = NULL;
    size_t len = 0;
    uint64_t t0 = now_ns();
    if (dfnet_client_call(c, "n", "/test.Echo/Unary", req, sizeof req, NULL, &reply, &len, NULL) !=
        DFNET_STATUS_OK) {
      fprintf(stderr, "call failed\n");
      return;
    }
    if (i >= 0)
      t[i] = now_ns() - t0;
    free(reply);
  }
  qsort(t, N, sizeof t[0], cmp_u64);
  printf("single hop unary 64 B (floor): p50 %.1f us  p99 %.1f us  (%d calls)\n",
         t[N / 2] / 1e3, t[N * 99 / 100] / 1e3, N);
}

/* ---- calls in flight ---- */

typedef struct pipe_state {
  dfnet_client_t *c;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned in_flight;
  uint64_t done, failed;
} pipe_state_t;

static void pl_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *m) {
  pipe_state_t *p = user;
  (void)id;
  (void)m;
  pthread_mutex_lock(&p->mu);
  p->in_flight--;
  p->done++;
  if (st != DFNET_STATUS_OK)
    p->failed++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Keep `depth` unary calls in flight for `total` calls. */
static void *pipeline(void *arg) {
  pipe_state_t *p = arg;
  uint8_t req[64];
  memset(req, 0x5a, sizeof req);
  const uint64_t total = 40000;
  uint64_t started = 0;
  pthread_mutex_lock(&p->mu);
  while (p->done < total) {
    while (p->in_flight < 16 && started < total) {
      p->in_flight++;
      started++;
      pthread_mutex_unlock(&p->mu);
      if (dfnet_client_call_start(p->c, "n", "/test.Echo/Unary", req, sizeof req, NULL, NULL,
                                  pl_done, p, NULL) != DFNET_STATUS_OK) {
        pthread_mutex_lock(&p->mu);
        p->in_flight--;
        p->done++;
        p->failed++;
        continue;
      }
      pthread_mutex_lock(&p->mu);
    }
    pthread_cond_wait(&p->cv, &p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void bench_throughput(int clients) {
  pipe_state_t p[4];
  pthread_t th[4];
  for (int i = 0; i < clients; i++) {
    memset(&p[i], 0, sizeof p[i]);
    p[i].c = connect_client();
    pthread_mutex_init(&p[i].mu, NULL);
    pthread_cond_init(&p[i].cv, NULL);
  }
  uint64_t t0 = now_ns();
  for (int i = 0; i < clients; i++)
    pthread_create(&th[i], NULL, pipeline, &p[i]);
  uint64_t total = 0, failed = 0;
  for (int i = 0; i < clients; i++) {
    pthread_join(th[i], NULL);
    total += p[i].done;
    failed += p[i].failed;
  }
  double s = (now_ns() - t0) / 1e9;
  printf("unary 64 B, 16 in flight x %d client(s): %.0f calls/s (%llu calls, %llu failed)\n",
         clients, total / s, (unsigned long long)total, (unsigned long long)failed);
  for (int i = 0; i < clients; i++)
    dfnet_client_close(p[i].c);
}

/* ---- streaming ---- */

typedef struct stream_state {
  uint64_t bytes;
  int fd[2];
  dfnet_status_t status;
} stream_state_t;

static void st_msg(void *user, dfnet_client_call_id_t id, const uint8_t *d, size_t n) {
  stream_state_t *s = user;
  (void)id;
  (void)d;
  s->bytes += n;
}

static void st_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *m) {
  stream_state_t *s = user;
  (void)id;
  (void)m;
  s->status = st;
  char b = 1;
  ssize_t w = write(s->fd[1], &b, 1);
  (void)w;
}

static void bench_stream(dfnet_client_t *c) {
  const uint32_t count = 16384, size = 16384; /* 256 MiB */
  uint8_t req[8];
  for (int i = 0; i < 4; i++) {
    req[i] = (uint8_t)(count >> (8 * i));
    req[4 + i] = (uint8_t)(size >> (8 * i));
  }
  stream_state_t s = {0};
  if (pipe(s.fd) != 0)
    return;
  dfnet_client_call_options_t co = {.credit = (uint32_t)(getenv("RPC_BENCH_CREDIT") ? strtoul(getenv("RPC_BENCH_CREDIT"), NULL, 10) : 32)};
  uint64_t t0 = now_ns();
  if (dfnet_client_call_start(c, "n", "/test.Echo/Stream", req, sizeof req, &co, st_msg, st_done,
                              &s, NULL) != DFNET_STATUS_OK)
    return;
  char b;
  if (read(s.fd[0], &b, 1) != 1)
    return;
  double sec = (now_ns() - t0) / 1e9;
  printf("streaming %u x %u B, credit %u: %.1f MB/s (%s)\n", count, size, co.credit, s.bytes / sec / 1e6,
         dfnet_status_str(s.status));
  close(s.fd[0]);
  close(s.fd[1]);
}

int main(void) {
  dfnet_log_set_level(DFNET_LOG_WARN);
  snprintf(cert_dir, sizeof cert_dir, "/tmp/dfnet-rpc-bench-%d", (int)getpid());
  if (ss_make_certs(cert_dir) != 0)
    return 1;
  scripted_server_t *s = ss_start(cert_dir, &port);
  if (s == NULL)
    return 1;
  dfnet_client_t *c = connect_client();
  if (c == NULL)
    return 1;
  bench_latency(c);
  bench_throughput(1);
  bench_throughput(4);
  bench_stream(c);
  printf("end-to-end (manager, host agent, driver host, echo driver): not measured by this build\n");
  dfnet_client_close(c);
  ss_stop(s);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
  return system(cmd) == 0 ? 0 : 1;
}
