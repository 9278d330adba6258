/* Calls through libdfnet-client for the call benchmarks (client_calls.h): latency, calls in
 * flight, and the single-hop floor peer. Measures nothing by itself. */
#include "client_calls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scripted_server.h"

/* ---- unary round trip --------------------------------------------------------------- */

bench_latency_t bench_client_latency(dfnet_client_t *c, const char *node, const char *method) {
  enum { N = 5000, WARMUP = 300 };
  static uint64_t t[N];
  uint8_t req[64];
  memset(req, 0xab, sizeof req);
  dfnet_client_call_options_t o = {.deadline_ms = 5000};
  for (int i = -WARMUP; i < N; i++) {
    uint8_t *reply = NULL;
    size_t len = 0;
    dfnet_client_error_t err;
    uint64_t t0 = bench_now_ns();
    dfnet_status_t st = dfnet_client_call(c, node, method, req, sizeof req, &o, &reply, &len, &err);
    uint64_t dt = bench_now_ns() - t0;
    if (st != DFNET_STATUS_OK)
      bench_die("%s %s: %s: %s", node, method, dfnet_status_str(st), err.message);
    if (len != sizeof req || memcmp(reply, req, len) != 0)
      bench_die("%s %s: the reply is not the request echoed", node, method);
    if (i >= 0)
      t[i] = dt;
    free(reply);
  }
  return bench_percentiles(t, N);
}

/* ---- calls in flight ---------------------------------------------------------------- */

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

static void sleep_s(double seconds) {
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Stop the pipelines, wait for their calls, close them; dies when a call failed. */
static void pl_finish(pipe_state_t *p, int clients) {
  uint64_t failed = 0;
  dfnet_status_t why = DFNET_STATUS_OK;
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
    bench_die("%s %s: %llu calls failed (first: %s)", p[0].node, p[0].method,
              (unsigned long long)failed, dfnet_status_str(why));
}

double bench_client_rate(dfnet_client_t *(*connect)(void), const char *node, const char *method,
                         int clients, double seconds, const bench_procs_t *procs,
                         double cpu[BENCH_PROCS_MAX]) {
  static pipe_state_t p[BENCH_MAX_CLIENTS];
  if (clients > BENCH_MAX_CLIENTS)
    clients = BENCH_MAX_CLIENTS;
  for (int i = 0; i < clients; i++) {
    memset(&p[i], 0, sizeof p[i]);
    p[i].c = connect();
    p[i].node = node;
    p[i].method = method;
    pthread_mutex_init(&p[i].mu, NULL);
    pthread_cond_init(&p[i].cv, NULL);
  }
  uint64_t done0[BENCH_MAX_CLIENTS];
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    p[i].in_flight = BENCH_DEPTH;
    pthread_mutex_unlock(&p[i].mu);
    for (int k = 0; k < BENCH_DEPTH; k++)
      pl_start(&p[i]);
  }
  /* A short warm-up, then count what completes in `seconds`. */
  sleep_s(0.3);
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    done0[i] = p[i].done;
    pthread_mutex_unlock(&p[i].mu);
  }
  bench_cpu_t cpu0;
  bench_cpu_snapshot(procs, &cpu0);
  sleep_s(seconds);
  uint64_t total = 0;
  for (int i = 0; i < clients; i++) {
    pthread_mutex_lock(&p[i].mu);
    total += p[i].done - done0[i];
    p[i].stop = true;
    pthread_mutex_unlock(&p[i].mu);
  }
  double s = (bench_now_ns() - t0) / 1e9;
  bench_cpu_per(procs, &cpu0, (double)total, cpu);
  pl_finish(p, clients);
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

double bench_client_stream(dfnet_client_t *c, const char *node, const char *method, uint32_t count,
                           uint32_t size, uint32_t credit, const bench_procs_t *procs,
                           double cpu[BENCH_PROCS_MAX]) {
  uint8_t *req = malloc(4 + (size_t)size);
  if (req == NULL)
    bench_die("out of memory");
  for (int i = 0; i < 4; i++)
    req[i] = (uint8_t)(count >> (8 * i));
  memset(req + 4, 0xc3, size);
  stream_state_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  dfnet_client_call_options_t co = {.deadline_ms = 120000, .credit = credit};
  bench_cpu_t cpu0;
  bench_cpu_snapshot(procs, &cpu0);
  uint64_t t0 = bench_now_ns();
  dfnet_status_t st = dfnet_client_call_start(c, node, method, req, 4 + (size_t)size, &co, st_msg,
                                              st_done, &s, NULL);
  free(req);
  if (st != DFNET_STATUS_OK)
    bench_die("%s %s: %s", node, method, dfnet_status_str(st));
  pthread_mutex_lock(&s.mu);
  while (!s.done)
    pthread_cond_wait(&s.cv, &s.mu);
  pthread_mutex_unlock(&s.mu);
  double sec = (bench_now_ns() - t0) / 1e9;
  bench_cpu_per(procs, &cpu0, (double)s.bytes / 1048576.0, cpu);
  if (s.status != DFNET_STATUS_OK || s.messages != count || s.bytes != (uint64_t)count * size)
    bench_die("stream: %s (%s) after %llu of %u items", dfnet_status_str(s.status), s.message,
              (unsigned long long)s.messages, count);
  return s.bytes / sec / 1e6;
}

/* ---- the floor's peer ---------------------------------------------------------------- */

static char g_cert_dir[256];
static uint16_t g_port;
static scripted_server_t *g_peer;

static void remove_cert_dir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_cert_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", g_cert_dir);
}

void bench_floor_start(const char *prefix) {
  snprintf(g_cert_dir, sizeof g_cert_dir, "/tmp/dfnet-%s-peer-%d", prefix, (int)getpid());
  if (ss_make_certs(g_cert_dir) != 0)
    bench_die("cannot make the scripted peer's certificates");
  atexit(remove_cert_dir);
  g_peer = ss_start(g_cert_dir, &g_port);
  if (g_peer == NULL)
    bench_die("the scripted peer did not start");
}

dfnet_client_t *bench_floor_connect(void) {
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)g_port);
  snprintf(crt, sizeof crt, "%s/operator/bob.crt", g_cert_dir);
  snprintf(key, sizeof key, "%s/operator/bob.key", g_cert_dir);
  snprintf(ca, sizeof ca, "%s/operator/ca.crt", g_cert_dir);
  dfnet_client_options_t o = {.url = url, .cert_file = crt, .key_file = key, .ca_file = ca};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_connect(&o, &c, &err) != DFNET_STATUS_OK)
    bench_die("connect to the scripted peer: %s", err.message);
  return c;
}

void bench_floor_stop(void) {
  ss_stop(g_peer);
  g_peer = NULL;
}
