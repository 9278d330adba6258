/* inline_peer: a test driver for the calls between two drivers of one driver host that the
 * runtime runs inline (include/dfnet/driver.h "Threads"; host/driver_host/dispatcher.c),
 * for test_driver_inline.c. Two instances call each other: each serves dfnet.test.Peer and
 * is offered the other's (instance "default"), connected on first use (by then the other
 * has started, so the client is bound to it in this process).
 *
 * Every callback (handler, on_item, on_done, cancel callback, posted task) checks the
 * dispatcher's promises: it counts one that began while another callback of this driver
 * was running, on the same thread (`nested`: reentered) or on another (`overlaps`), and one
 * for which dfnet_driver_on_dispatcher() was false (`off`).
 *
 *   /dfnet.test.Peer/Where   unary: "tid=T", the thread it ran on.
 *   /dfnet.test.Peer/Busy    unary: keeps its dispatcher busy for the request's decimal ms,
 *                            then answers "busy".
 *   /dfnet.test.Peer/Relay   unary: request decimal N: 0 answers "0"; else it calls the
 *                            other's Relay with N-1 and answers "N,<that answer>".
 *   /dfnet.test.Peer/Stream  server-streaming: request decimal N: N items "i", then OK; it
 *                            never blocks (a full window is tried again 1 ms later).
 *   /dfnet.test.Peer/Hold    unary: kept until the call ends without a reply; counts why,
 *                            and notes the thread of the cancel callback.
 *   /dfnet.test.Peer/Stats   unary: "nested=N;overlaps=O;off=F;held=H;cancelled=C;
 *                            deadline=D;cancel_cb_tid=T".
 *   /dfnet.test.Peer/Run     unary, the tests' entry: calls the other's method as the
 *                            request says ("method=M;arg=A;credit=W;grant=1;deadline=MS;
 *                            cancel_ms=MS") and, once that call's on_done ran, answers OK
 *                            with "status=S;items=N;violations=V;call_tid=T;done_tid=T;
 *                            cancel_tid=T;data=BYTES" (call_tid: the thread that called
 *                            dfnet_driver_client_call; done_tid: the thread on_done ran on;
 *                            cancel_tid: the one that cancelled), or "start=S" when the call
 *                            could not start.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dfnet/driver.h"

#define SERVICE "dfnet.test.Peer"

typedef struct run {
  struct run *next;
  dfnet_call_t *call; /* the test's Run, answered from on_done */
  dfnet_driver_call_id_t id;
  uint32_t items, granted, window, violations;
  bool grant;
  long call_tid, cancel_tid;
} run_t;

typedef struct stream {
  struct stream *next;
  dfnet_call_t *call;
  uint32_t left;
} stream_t;

typedef struct peer {
  dfnet_driver_t *driver;
  dfnet_driver_client_t *client; /* to the other, on first use */
  atomic_long inside;            /* the thread running one of its callbacks (0: none) */
  atomic_int nested, overlaps, off;
  int held, cancelled, deadline;
  long cancel_cb_tid;
  run_t *runs;
  stream_t *streams; /* in flight (a retry may wait on the dispatcher) */
} peer_t;

static long tid(void) { return (long)syscall(SYS_gettid); }

/* Every callback begins with enter() and ends with leave(its result). */
static long enter(peer_t *p) {
  long me = tid(), was = 0;
  if (!dfnet_driver_on_dispatcher(p->driver))
    atomic_fetch_add(&p->off, 1);
  if (atomic_compare_exchange_strong(&p->inside, &was, me))
    return me;
  atomic_fetch_add(was == me ? &p->nested : &p->overlaps, 1);
  return 0; /* the callback inside clears it */
}

static void leave(peer_t *p, long token) {
  if (token != 0)
    atomic_store(&p->inside, 0);
}

static void reply_text(dfnet_call_t *call, dfnet_status_t st, const char *text) {
  dfnet_call_reply(call, st, NULL, (const uint8_t *)text, strlen(text));
}

/* The request as a NUL-terminated string (cut to cap). */
static void text_of(const uint8_t *req, size_t len, char *out, size_t cap) {
  size_t n = len < cap - 1 ? len : cap - 1;
  memcpy(out, req, n);
  out[n] = '\0';
}

/* The value of `key` in "k=v;k=v" into out ("" when absent). */
static void field(const char *text, const char *key, char *out, size_t cap) {
  size_t klen = strlen(key);
  out[0] = '\0';
  for (const char *p = text; (p = strstr(p, key)) != NULL; p += klen) {
    if ((p == text || p[-1] == ';') && p[klen] == '=') {
      size_t n = strcspn(p + klen + 1, ";");
      snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p + klen + 1);
      return;
    }
  }
}

static uint32_t field_u32(const char *text, const char *key) {
  char v[32];
  field(text, key, v, sizeof v);
  return (uint32_t)strtoul(v, NULL, 10);
}

static dfnet_driver_client_t *other(peer_t *p) {
  if (p->client == NULL &&
      dfnet_driver_connect(p->driver, SERVICE, NULL, &p->client) != DFNET_STATUS_OK)
    p->client = NULL;
  return p->client;
}

/* ---- served ------------------------------------------------------------------------ */

static void peer_where(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  (void)req;
  (void)len;
  char text[64];
  snprintf(text, sizeof text, "tid=%ld", tid());
  reply_text(call, DFNET_STATUS_OK, text);
  leave(p, in);
}

static void peer_busy(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  char text[32];
  text_of(req, len, text, sizeof text);
  struct timespec ms = {.tv_nsec = 1000000};
  for (unsigned long i = strtoul(text, NULL, 10); i > 0; i--)
    nanosleep(&ms, NULL);
  reply_text(call, DFNET_STATUS_OK, "busy");
  leave(p, in);
}

typedef struct relay {
  dfnet_call_t *call;
  unsigned long n;
} relay_t;

static void relay_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                       dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                       void *arg) {
  peer_t *p = ctx;
  long in = enter(p);
  relay_t *r = arg;
  (void)driver;
  (void)id;
  (void)message;
  char text[512];
  snprintf(text, sizeof text, "%lu,%.*s", r->n, (int)(len < 400 ? len : 400), (const char *)data);
  reply_text(r->call, status, text);
  free(r);
  leave(p, in);
}

static void peer_relay(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  char text[32];
  text_of(req, len, text, sizeof text);
  relay_t *r = malloc(sizeof *r);
  dfnet_driver_client_t *c = other(p);
  if (r == NULL || c == NULL || (r->n = strtoul(text, NULL, 10)) == 0) {
    reply_text(call, r == NULL || c == NULL ? DFNET_STATUS_INTERNAL : DFNET_STATUS_OK, "0");
    free(r);
    leave(p, in);
    return;
  }
  r->call = call;
  char next[32];
  snprintf(next, sizeof next, "%lu", r->n - 1);
  dfnet_driver_client_call_args_t args = {.method = "Relay",
                                          .request = (const uint8_t *)next,
                                          .len = strlen(next),
                                          .on_done = relay_done,
                                          .arg = r};
  dfnet_status_t st = dfnet_driver_client_call(c, &args, NULL);
  if (st != DFNET_STATUS_OK) {
    reply_text(call, st, "relay refused");
    free(r);
  }
  leave(p, in);
}

static void stream_forget(peer_t *p, stream_t *s) {
  for (stream_t **pp = &p->streams; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  free(s);
}

static void stream_continue(dfnet_driver_t *driver, void *ctx, void *arg) {
  peer_t *p = ctx;
  long in = enter(p);
  stream_t *s = arg;
  while (s->left > 0) {
    dfnet_status_t st = dfnet_call_send(s->call, (const uint8_t *)"i", 1);
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED &&
        dfnet_driver_post(driver, 1, stream_continue, s) == DFNET_STATUS_OK) {
      leave(p, in);
      return; /* the window is full: again in 1 ms */
    }
    if (st != DFNET_STATUS_OK) {
      dfnet_call_reply(s->call, st, "stream ended", NULL, 0);
      stream_forget(p, s);
      leave(p, in);
      return;
    }
    s->left--;
  }
  dfnet_call_reply(s->call, DFNET_STATUS_OK, NULL, NULL, 0);
  stream_forget(p, s);
  leave(p, in);
}

static void peer_stream(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  char text[32];
  text_of(req, len, text, sizeof text);
  stream_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    dfnet_call_reply(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    leave(p, in);
    return;
  }
  s->call = call;
  s->left = (uint32_t)strtoul(text, NULL, 10);
  s->next = p->streams;
  p->streams = s;
  leave(p, in);
  stream_continue(p->driver, p, s);
}

static void hold_ended(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  peer_t *p = ctx;
  long in = enter(p);
  (void)arg;
  p->cancelled += why == DFNET_STATUS_CANCELLED;
  p->deadline += why == DFNET_STATUS_DEADLINE_EXCEEDED;
  p->cancel_cb_tid = tid();
  dfnet_call_reply(call, why, "held until it ended", NULL, 0); /* dropped: it has ended */
  leave(p, in);
}

static void peer_hold(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  (void)req;
  (void)len;
  p->held++;
  if (dfnet_call_on_cancel(call, hold_ended, NULL) != DFNET_STATUS_OK)
    dfnet_call_reply(call, DFNET_STATUS_INTERNAL, "cannot watch the call", NULL, 0);
  leave(p, in);
}

static void peer_stats(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  (void)req;
  (void)len;
  char text[256];
  snprintf(text, sizeof text,
           "nested=%d;overlaps=%d;off=%d;held=%d;cancelled=%d;deadline=%d;cancel_cb_tid=%ld",
           atomic_load(&p->nested), atomic_load(&p->overlaps), atomic_load(&p->off), p->held,
           p->cancelled, p->deadline, p->cancel_cb_tid);
  reply_text(call, DFNET_STATUS_OK, text);
  leave(p, in);
}

/* ---- Run: calling the other --------------------------------------------------------- */

static run_t *run_find(peer_t *p, dfnet_driver_call_id_t id) {
  for (run_t *r = p->runs; r != NULL; r = r->next)
    if (r->id == id)
      return r;
  return NULL;
}

static void run_forget(peer_t *p, run_t *r) {
  for (run_t **pp = &p->runs; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      return;
    }
  }
}

static void run_item(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                     const uint8_t *data, size_t len, void *arg) {
  peer_t *p = ctx;
  long in = enter(p);
  run_t *r = arg;
  (void)driver;
  (void)data;
  (void)len;
  r->items++;
  if (r->items > r->granted)
    r->violations++;
  if (r->grant && r->items == r->granted) {
    dfnet_driver_client_credit(p->client, id, r->window);
    r->granted += r->window;
  }
  leave(p, in);
}

static void run_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                     dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                     void *arg) {
  peer_t *p = ctx;
  long in = enter(p);
  run_t *r = arg;
  (void)driver;
  (void)id;
  (void)message;
  char text[1024];
  int n = snprintf(text, sizeof text,
                   "status=%s;items=%u;violations=%u;call_tid=%ld;done_tid=%ld;cancel_tid=%ld;"
                   "data=%.*s",
                   dfnet_status_str(status), r->items, r->violations, r->call_tid, tid(),
                   r->cancel_tid, (int)(len < 512 ? len : 512), (const char *)data);
  run_forget(p, r);
  dfnet_call_reply(r->call, DFNET_STATUS_OK, NULL, (const uint8_t *)text,
                   n > 0 && (size_t)n < sizeof text ? (size_t)n : 0);
  free(r);
  leave(p, in);
}

static void cancel_later(dfnet_driver_t *driver, void *ctx, void *arg) {
  peer_t *p = ctx;
  long in = enter(p);
  (void)driver;
  dfnet_driver_call_id_t id = (dfnet_driver_call_id_t)(uintptr_t)arg;
  run_t *r = run_find(p, id);
  if (r != NULL) {
    r->cancel_tid = tid();
    dfnet_driver_client_cancel(p->client, id);
  }
  leave(p, in);
}

static void peer_run(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  peer_t *p = ctx;
  long in = enter(p);
  char text[256], method[32], arg[64];
  text_of(req, len, text, sizeof text);
  field(text, "method", method, sizeof method);
  field(text, "arg", arg, sizeof arg);
  run_t *r = calloc(1, sizeof *r);
  dfnet_driver_client_t *c = other(p);
  if (r == NULL || c == NULL) {
    reply_text(call, DFNET_STATUS_OK, r == NULL ? "start=RESOURCE_EXHAUSTED" : "start=NOT_FOUND");
    free(r);
    leave(p, in);
    return;
  }
  bool stream = strcmp(method, "Stream") == 0;
  r->call = call;
  r->window = field_u32(text, "credit");
  r->grant = field_u32(text, "grant") != 0;
  dfnet_driver_client_call_args_t args = {.method = method,
                                          .request = (const uint8_t *)arg,
                                          .len = strlen(arg),
                                          .deadline_ms = field_u32(text, "deadline"),
                                          .credit = r->window,
                                          .on_item = stream ? run_item : NULL,
                                          .on_done = run_done,
                                          .arg = r};
  if (r->window == 0)
    r->window = 16;
  r->granted = r->window;
  r->call_tid = tid();
  dfnet_status_t st = dfnet_driver_client_call(c, &args, &r->id);
  if (st != DFNET_STATUS_OK) {
    char out[64];
    snprintf(out, sizeof out, "start=%s", dfnet_status_str(st));
    reply_text(call, DFNET_STATUS_OK, out);
    free(r);
    leave(p, in);
    return;
  }
  r->next = p->runs;
  p->runs = r;
  uint32_t cancel_ms = field_u32(text, "cancel_ms");
  if (cancel_ms > 0)
    dfnet_driver_post(p->driver, cancel_ms, cancel_later, (void *)(uintptr_t)r->id);
  leave(p, in);
}

static const dfnet_method_t peer_methods[] = {
    {"Where", peer_where, false},  {"Busy", peer_busy, false}, {"Relay", peer_relay, false},
    {"Stream", peer_stream, true}, {"Hold", peer_hold, false}, {"Stats", peer_stats, false},
    {"Run", peer_run, false},
};

static dfnet_status_t peer_start(dfnet_driver_t *driver, void *ctx) {
  peer_t *p = ctx;
  p->driver = driver;
  long in = enter(p);
  dfnet_status_t st = dfnet_driver_serve(driver, SERVICE, peer_methods,
                                         sizeof peer_methods / sizeof peer_methods[0]);
  leave(p, in);
  return st;
}

static void peer_stop(dfnet_driver_t *driver, void *ctx) {
  peer_t *p = ctx;
  (void)driver;
  /* on_done of what is left runs in here (CANCELLED) and frees its run */
  dfnet_driver_client_close(p->client);
  p->client = NULL;
  while (p->runs != NULL) {
    run_t *r = p->runs;
    p->runs = r->next;
    free(r);
  }
  while (p->streams != NULL)
    stream_forget(p, p->streams);
}

DFNET_DRIVER("inline_peer", peer_t, .start = peer_start, .stop = peer_stop);
