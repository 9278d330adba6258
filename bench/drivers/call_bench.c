/* call_bench: the measuring driver of driver_calls_bench. Bound to a node offered
 * dfnet.test.Echo (the `parent` test driver's child, or a composite whose parent is such a
 * child), it connects at start to the first dfnet.test.Echo offer it received, whatever its
 * instance, and measures calls of /dfnet.test.Echo/Echo (64 B, each reply checked to be the
 * request) when the bench program asks, through dfnet.bench.Calls:
 *
 *   /dfnet.bench.Calls/Info  unary: "pid=P;instance=I;source=S" (this driver host's pid, the
 *                            offer it called).
 *   /dfnet.bench.Calls/Run   unary. The request is "key=value;..." text:
 *                              depth=D     calls in flight (1..64; default 1); each call's
 *                                          on_done starts the next in its place
 *                              calls=N     with depth 1: N calls counted after warmup=W (300)
 *                                          not counted; the answer has their p50 / p99
 *                              ms=T        otherwise: calls for T ms after warm_ms=W (300);
 *                                          the answer has the calls completed in that window
 *                            Answered when the last call has ended, with
 *                            "calls=C;failed=F;p50_ns=..;p99_ns=..;window_calls=M;
 *                            window_ns=T;first=STATUS" (C: every call made, for CPU per call).
 *
 * One Run at a time (a second is answered FAILED_PRECONDITION). Latencies are taken on the
 * driver's dispatcher, from dfnet_driver_client_call to on_done. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dfnet/driver.h"

#define SERVICE "dfnet.test.Echo"
#define MAX_DEPTH 64
#define PAYLOAD 64

typedef struct bench {
  dfnet_driver_t *driver;
  dfnet_driver_client_t *client;
  dfnet_offer_t offer;
  bool stopping;
  /* the Run in progress (dispatcher only) */
  dfnet_call_t *run;
  uint32_t depth, in_flight, warmup, count;
  uint64_t t_warm, t_end; /* rate: the window's bounds */
  uint64_t started_at[MAX_DEPTH];
  uint64_t done, failed, w0_calls, w0_t, w1_calls, w1_t;
  dfnet_status_t first;
  uint64_t *lat; /* latency runs: `count` durations */
  uint32_t nlat;
  uint8_t req[PAYLOAD];
} bench_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The value of `key` in "k=v;k=v", or `dflt`. */
static uint32_t field_u32(const char *req, size_t len, const char *key, uint32_t dflt) {
  size_t klen = strlen(key);
  for (size_t i = 0; i + klen < len; i++) {
    if ((i == 0 || req[i - 1] == ';') && strncmp(req + i, key, klen) == 0 && req[i + klen] == '=') {
      char buf[16];
      size_t n = 0;
      for (size_t k = i + klen + 1; k < len && req[k] != ';' && n < sizeof buf - 1; k++)
        buf[n++] = req[k];
      buf[n] = '\0';
      return (uint32_t)strtoul(buf, NULL, 10);
    }
  }
  return dflt;
}

static void reply_text(dfnet_call_t *call, dfnet_status_t st, const char *text) {
  dfnet_call_reply(call, st, st == DFNET_STATUS_OK ? NULL : text, (const uint8_t *)text,
                   strlen(text));
}

/* The last call of the Run has ended: answer it. */
static void run_finish(bench_t *b) {
  char lat[96] = "";
  if (b->lat != NULL && b->nlat > 0) {
    qsort(b->lat, b->nlat, sizeof *b->lat, cmp_u64);
    snprintf(lat, sizeof lat, "p50_ns=%llu;p99_ns=%llu;", (unsigned long long)b->lat[b->nlat / 2],
             (unsigned long long)b->lat[(size_t)b->nlat * 99 / 100]);
  }
  bool window = b->w0_t != 0 && b->w1_t != 0; /* a rate run that ran its course */
  char text[512];
  snprintf(text, sizeof text, "calls=%llu;failed=%llu;%swindow_calls=%llu;window_ns=%llu;first=%s",
           (unsigned long long)b->done, (unsigned long long)b->failed, lat,
           (unsigned long long)(window ? b->w1_calls - b->w0_calls : 0),
           (unsigned long long)(window ? b->w1_t - b->w0_t : 0), dfnet_status_str(b->first));
  free(b->lat);
  b->lat = NULL;
  dfnet_call_t *run = b->run;
  b->run = NULL;
  reply_text(run, DFNET_STATUS_OK, text);
}

static void on_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t call,
                    dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                    void *arg);

/* Start a call in slot `slot`; false (counted as failed) when it could not start. */
static bool call_start(bench_t *b, uint32_t slot) {
  dfnet_driver_client_call_args_t args = {.method = "Echo",
                                          .request = b->req,
                                          .len = sizeof b->req,
                                          .deadline_ms = 10000,
                                          .on_done = on_done,
                                          .arg = (void *)(uintptr_t)slot};
  b->started_at[slot] = now_ns();
  dfnet_status_t st = dfnet_driver_client_call(b->client, &args, NULL);
  if (st == DFNET_STATUS_OK)
    return true;
  b->failed++;
  if (b->first == DFNET_STATUS_OK)
    b->first = st;
  return false;
}

/* Count a completed call; true when another should take its place. */
static bool count_call(bench_t *b, uint32_t slot, uint64_t now) {
  b->done++;
  if (b->lat != NULL) { /* a latency run, depth 1 */
    if (b->done > b->warmup && b->nlat < b->count)
      b->lat[b->nlat++] = now - b->started_at[slot];
    return b->nlat < b->count;
  }
  if (b->w0_t == 0 && now >= b->t_warm) {
    b->w0_t = now;
    b->w0_calls = b->done;
  }
  if (b->w1_t == 0 && now >= b->t_end) {
    b->w1_t = now;
    b->w1_calls = b->done;
  }
  return b->w1_t == 0;
}

static void on_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t call,
                    dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                    void *arg) {
  bench_t *b = ctx;
  uint32_t slot = (uint32_t)(uintptr_t)arg;
  (void)driver;
  (void)call;
  (void)message;
  uint64_t now = now_ns();
  if (status == DFNET_STATUS_OK && (len != sizeof b->req || memcmp(data, b->req, len) != 0))
    status = DFNET_STATUS_DATA_LOSS; /* not the request echoed */
  if (status != DFNET_STATUS_OK) {
    b->failed++;
    if (b->first == DFNET_STATUS_OK)
      b->first = status;
  }
  bool again = count_call(b, slot, now) && b->failed == 0 && !b->stopping;
  if (again && call_start(b, slot))
    return;
  if (--b->in_flight == 0 && b->run != NULL)
    run_finish(b);
}

static void bench_run(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  bench_t *b = ctx;
  const char *text = (const char *)req;
  if (b->run != NULL) {
    reply_text(call, DFNET_STATUS_FAILED_PRECONDITION, "a Run is in progress");
    return;
  }
  uint32_t depth = field_u32(text, len, "depth", 1);
  if (depth < 1 || depth > MAX_DEPTH) {
    reply_text(call, DFNET_STATUS_INVALID_ARGUMENT, "depth must be 1..64");
    return;
  }
  b->run = call;
  b->depth = depth;
  b->done = b->failed = b->w0_calls = b->w0_t = b->w1_calls = b->w1_t = 0;
  b->first = DFNET_STATUS_OK;
  b->nlat = 0;
  b->lat = NULL;
  uint64_t t0 = now_ns();
  if (depth == 1 && field_u32(text, len, "calls", 0) > 0) {
    b->count = field_u32(text, len, "calls", 0);
    b->warmup = field_u32(text, len, "warmup", 300);
    b->lat = calloc(b->count, sizeof *b->lat);
    if (b->lat == NULL) {
      b->run = NULL;
      reply_text(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  } else {
    b->t_warm = t0 + (uint64_t)field_u32(text, len, "warm_ms", 300) * 1000000u;
    b->t_end = b->t_warm + (uint64_t)field_u32(text, len, "ms", 3000) * 1000000u;
  }
  b->in_flight = depth;
  for (uint32_t i = 0; i < depth; i++)
    if (!call_start(b, i))
      b->in_flight--;
  if (b->in_flight == 0)
    run_finish(b);
}

static void bench_info(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  bench_t *b = ctx;
  (void)req;
  (void)len;
  char text[512];
  snprintf(text, sizeof text, "pid=%ld;instance=%s;source=%s", (long)getpid(), b->offer.instance,
           b->offer.source);
  reply_text(call, DFNET_STATUS_OK, text);
}

static const dfnet_method_t bench_methods[] = {
    {"Run", bench_run, false},
    {"Info", bench_info, false},
};

/* The first dfnet.test.Echo offer the node received, into b->offer. */
static dfnet_status_t find_offer(bench_t *b) {
  size_t count = 0;
  dfnet_offer_t o;
  dfnet_driver_offer(b->driver, 0, &o, &count);
  for (size_t i = 0; i < count; i++) {
    if (dfnet_driver_offer(b->driver, i, &o, NULL) == DFNET_STATUS_OK &&
        strcmp(o.service, SERVICE) == 0) {
      b->offer = o;
      return DFNET_STATUS_OK;
    }
  }
  dfnet_driver_log(b->driver, DFNET_DRIVER_LOG_WARN, "no %s among the %zu offers", SERVICE, count);
  return DFNET_STATUS_NOT_FOUND;
}

static dfnet_status_t bench_start(dfnet_driver_t *driver, void *ctx) {
  bench_t *b = ctx;
  b->driver = driver;
  memset(b->req, 0xab, sizeof b->req);
  dfnet_status_t st = find_offer(b);
  if (st == DFNET_STATUS_OK)
    st = dfnet_driver_connect(driver, SERVICE, b->offer.instance, &b->client);
  if (st != DFNET_STATUS_OK)
    return st;
  st = dfnet_driver_serve(driver, "dfnet.bench.Calls", bench_methods,
                          sizeof bench_methods / sizeof bench_methods[0]);
  if (st != DFNET_STATUS_OK)
    dfnet_driver_client_close(b->client);
  return st;
}

static void bench_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  bench_t *b = ctx;
  (void)driver;
  b->stopping = true; /* no call starts any more */
}

static void bench_stop(dfnet_driver_t *driver, void *ctx) {
  bench_t *b = ctx;
  (void)driver;
  b->stopping = true;
  dfnet_driver_client_close(b->client); /* what is left ends in here (CANCELLED) */
  b->client = NULL;
  free(b->lat);
  b->lat = NULL;
}

DFNET_DRIVER("call_bench", bench_t, .start = bench_start, .prepare_stop = bench_prepare_stop,
             .stop = bench_stop);
