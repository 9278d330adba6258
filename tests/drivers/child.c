/* child: a test driver that calls the service its parent offered its node (issue 18
 * "Drivers that talk to drivers"; include/dfnet/driver.h "Calling another driver"). At start
 * it connects to dfnet.test.Echo (instance "default", or the string property
 * "dfnet.test.INSTANCE"; a failed connect fails the start with that status), and it serves
 * dfnet.test.Child, through which the tests drive it:
 *
 *   /dfnet.test.Child/Run     unary. The request is "key=value;..." text:
 *                               method=NAME    the parent's method (Echo, Stream, Hold ...)
 *                               count=N        Stream: the request is u32 LE N + payload
 *                               credit=W       the call's credit window (0: the default)
 *                               grant=1        give W more credit each time W items came
 *                               deadline=MS    the call's deadline
 *                               cancel_after=K cancel the call when K items came
 *                               cancel_ms=MS   cancel the call MS after it started
 *                               repeat=N       make the call N times, each from the
 *                                              previous one's on_done (unary), and add
 *                                              "calls=N;p50_ns=..;p99_ns=.." (latencies)
 *                               delay=MS       start the call from a task MS later (on
 *                                              the dispatcher's own thread, while the
 *                                              driver host's link thread sleeps)
 *                               instance=NAME  call the offer of dfnet.test.Echo under
 *                                              this instance (a composite's parent: its
 *                                              name, "0", "1" ...) instead of the one
 *                                              connected at start: the first use connects
 *                                              a client to it, kept until `stop`; a failed
 *                                              connect answers "connect=S"
 *                               payload=TEXT   the rest of the request
 *                             It calls the parent and, when the call has ended (on_done),
 *                             answers OK with "status=S;items=N;violations=V;client=C;
 *                             data=BYTES": the call's final status, the items received, how
 *                             many came beyond the credit given, the client's status then,
 *                             and the reply's bytes; or "start=S;client=C" when
 *                             dfnet_driver_client_call refused the call.
 *   /dfnet.test.Child/Status  unary: "client=C" (request "instance=NAME": that offer's
 *                             client, connected on first use as for Run).
 *   /dfnet.test.Child/Offer   unary: "n=N;0=service,instance,source;..." (dfnet_driver_offer).
 *
 * The clients are closed in `stop`: what is still in flight is cancelled at the parent, and
 * its on_done runs inside close (the Run calls of the test have ended UNAVAILABLE by then).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dfnet/driver.h"

typedef struct run {
  struct run *next;
  dfnet_call_t *call;            /* the test's Run call, answered from on_done */
  dfnet_driver_client_t *client; /* the client it calls through (not owned) */
  uint32_t items, granted, window, violations, cancel_after, cancel_ms;
  dfnet_driver_call_id_t id;
  bool grant;
  dfnet_driver_client_call_args_t args; /* the call to make */
  char method[128];
  uint8_t body[1028];
  uint32_t repeat, done; /* repeat=N: calls made, and their latencies */
  uint64_t t0;
  uint64_t *lat;
} run_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* "calls=N;p50_ns=..;p99_ns=..;" of a repeated run into out. */
static int latencies(run_t *r, char *out, size_t cap) {
  if (r->repeat == 0 || r->done == 0)
    return snprintf(out, cap, "%s", "");
  qsort(r->lat, r->done, sizeof *r->lat, cmp_u64);
  return snprintf(out, cap, "calls=%u;p50_ns=%llu;p99_ns=%llu;", r->done,
                  (unsigned long long)r->lat[r->done / 2],
                  (unsigned long long)r->lat[(size_t)r->done * 99 / 100]);
}

/* A client of another instance of the offer (instance=NAME), kept until `stop`. */
#define CHILD_EXTRA_MAX 8
typedef struct extra_client {
  char instance[129];
  dfnet_driver_client_t *client;
} extra_client_t;

typedef struct child {
  dfnet_driver_t *driver;
  dfnet_driver_client_t *client;
  run_t *runs;
  extra_client_t extra[CHILD_EXTRA_MAX];
  size_t extra_count;
} child_t;

/* The value of `key` in "k=v;k=v;payload=..." into out (payload: the rest of the text). */
static bool field(const char *req, size_t len, const char *key, char *out, size_t cap) {
  size_t klen = strlen(key);
  for (size_t i = 0; i + klen < len; i++) {
    if ((i == 0 || req[i - 1] == ';') && strncmp(req + i, key, klen) == 0 && req[i + klen] == '=') {
      size_t start = i + klen + 1, end = start;
      bool rest = strcmp(key, "payload") == 0;
      while (end < len && (rest || req[end] != ';'))
        end++;
      size_t n = end - start < cap - 1 ? end - start : cap - 1;
      memcpy(out, req + start, n);
      out[n] = '\0';
      return true;
    }
    if (strncmp(req + i, "payload=", 8) == 0 && (i == 0 || req[i - 1] == ';'))
      return false; /* the payload is last and may hold anything */
  }
  return false;
}

static uint32_t field_u32(const char *req, size_t len, const char *key) {
  char buf[32];
  return field(req, len, key, buf, sizeof buf) ? (uint32_t)strtoul(buf, NULL, 10) : 0;
}

/* The client a request names: with instance=NAME the client of that offer of
 * dfnet.test.Echo (connected on first use), else the one connected at start. NULL, with
 * the connect's status in *st, when it cannot be had. Dispatcher only. */
static dfnet_driver_client_t *client_for(child_t *c, const char *req, size_t len,
                                         dfnet_status_t *st) {
  char instance[sizeof c->extra[0].instance];
  *st = DFNET_STATUS_OK;
  if (!field(req, len, "instance", instance, sizeof instance))
    return c->client;
  for (size_t i = 0; i < c->extra_count; i++)
    if (strcmp(c->extra[i].instance, instance) == 0)
      return c->extra[i].client;
  if (c->extra_count == CHILD_EXTRA_MAX) {
    *st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    return NULL;
  }
  extra_client_t *e = &c->extra[c->extra_count];
  *st = dfnet_driver_connect(c->driver, "dfnet.test.Echo", instance, &e->client);
  if (*st != DFNET_STATUS_OK)
    return NULL;
  snprintf(e->instance, sizeof e->instance, "%s", instance);
  c->extra_count++;
  return e->client;
}

/* Answer a call with "connect=S" (client_for failed). */
static void reply_connect(dfnet_call_t *call, dfnet_status_t st) {
  char out[64];
  snprintf(out, sizeof out, "connect=%s", dfnet_status_str(st));
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)out, strlen(out));
}

static void run_forget(child_t *c, run_t *r) {
  for (run_t **pp = &c->runs; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      return;
    }
  }
}

static run_t *run_find(child_t *c, dfnet_driver_call_id_t id) {
  for (run_t *r = c->runs; r != NULL; r = r->next)
    if (r->id == id)
      return r;
  return NULL;
}

static void on_item(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t call,
                    const uint8_t *data, size_t len, void *arg) {
  run_t *r = arg;
  (void)driver;
  (void)ctx;
  (void)data;
  (void)len;
  r->items++;
  if (r->items > r->granted)
    r->violations++;
  if (r->cancel_after != 0 && r->items == r->cancel_after)
    dfnet_driver_client_cancel(r->client, call);
  else if (r->grant && r->items == r->granted) {
    dfnet_driver_client_credit(r->client, call, r->window);
    r->granted += r->window;
  }
}

static void on_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t call,
                    dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                    void *arg) {
  child_t *c = ctx;
  run_t *r = arg;
  (void)driver;
  (void)call;
  if (r->repeat > 0) {
    uint64_t now = now_ns();
    r->lat[r->done++] = now - r->t0;
    r->t0 = now;
    if (status == DFNET_STATUS_OK && r->done < r->repeat &&
        dfnet_driver_client_call(r->client, &r->args, &r->id) == DFNET_STATUS_OK)
      return;
  }
  char lat[128];
  latencies(r, lat, sizeof lat);
  char text[2048];
  int n = snprintf(text, sizeof text, "status=%s;items=%u;violations=%u;client=%s;%smsg=%s;data=",
                   dfnet_status_str(status), r->items, r->violations,
                   dfnet_status_str(dfnet_driver_client_status(r->client)), lat, message);
  size_t used = n > 0 && (size_t)n < sizeof text ? (size_t)n : 0;
  size_t take = len < sizeof text - used ? len : sizeof text - used;
  if (take > 0)
    memcpy(text + used, data, take);
  run_forget(c, r);
  dfnet_call_reply(r->call, DFNET_STATUS_OK, NULL, (const uint8_t *)text, used + take);
  free(r->lat);
  free(r);
}

static void cancel_later(dfnet_driver_t *driver, void *ctx, void *arg) {
  child_t *c = ctx;
  (void)driver;
  dfnet_driver_call_id_t id = (dfnet_driver_call_id_t)(uintptr_t)arg;
  run_t *r = run_find(c, id);
  if (r != NULL)
    dfnet_driver_client_cancel(r->client, id);
}

/* Start the parent's call of a run; a refusal answers the run at once. */
static void run_start(child_t *c, run_t *r) {
  r->t0 = now_ns();
  dfnet_status_t st = dfnet_driver_client_call(r->client, &r->args, &r->id);
  if (st != DFNET_STATUS_OK) {
    char out[256];
    snprintf(out, sizeof out, "start=%s;client=%s", dfnet_status_str(st),
             dfnet_status_str(dfnet_driver_client_status(r->client)));
    dfnet_call_reply(r->call, DFNET_STATUS_OK, NULL, (const uint8_t *)out, strlen(out));
    free(r->lat);
    free(r);
    return;
  }
  r->next = c->runs;
  c->runs = r;
  if (r->cancel_ms > 0)
    dfnet_driver_post(c->driver, r->cancel_ms, cancel_later, (void *)(uintptr_t)r->id);
}

static void run_later(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  run_start(ctx, arg);
}

static void child_run(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  child_t *c = ctx;
  const char *text = (const char *)req;
  dfnet_status_t connected;
  dfnet_driver_client_t *client = client_for(c, text, len, &connected);
  if (client == NULL) {
    reply_connect(call, connected);
    return;
  }
  run_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    dfnet_call_reply(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return;
  }
  r->client = client;
  char payload[1024] = "";
  snprintf(r->method, sizeof r->method, "Echo");
  field(text, len, "method", r->method, sizeof r->method);
  field(text, len, "payload", payload, sizeof payload);
  bool stream = strcmp(r->method, "Stream") == 0;
  size_t body_len = 0, plen = strlen(payload);
  if (stream) {
    uint32_t count = field_u32(text, len, "count");
    r->body[0] = (uint8_t)count;
    r->body[1] = (uint8_t)(count >> 8);
    r->body[2] = (uint8_t)(count >> 16);
    r->body[3] = (uint8_t)(count >> 24);
    body_len = 4;
  }
  memcpy(r->body + body_len, payload, plen);
  body_len += plen;
  r->call = call;
  r->window = field_u32(text, len, "credit");
  r->granted = r->window != 0 ? r->window : 16;
  r->grant = field_u32(text, len, "grant") != 0;
  r->cancel_after = field_u32(text, len, "cancel_after");
  r->cancel_ms = field_u32(text, len, "cancel_ms");
  r->args = (dfnet_driver_client_call_args_t){.method = r->method,
                                              .request = r->body,
                                              .len = body_len,
                                              .deadline_ms = field_u32(text, len, "deadline"),
                                              .credit = r->window,
                                              .on_item = stream ? on_item : NULL,
                                              .on_done = on_done,
                                              .arg = r};
  if (r->window == 0)
    r->window = 16;
  r->repeat = stream ? 0 : field_u32(text, len, "repeat");
  if (r->repeat > 0 && (r->lat = calloc(r->repeat, sizeof *r->lat)) == NULL)
    r->repeat = 0;
  uint32_t delay = field_u32(text, len, "delay");
  if (delay == 0 || dfnet_driver_post(c->driver, delay, run_later, r) != DFNET_STATUS_OK)
    run_start(c, r);
}

static void child_status(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  child_t *c = ctx;
  dfnet_status_t connected;
  dfnet_driver_client_t *client = client_for(c, (const char *)req, len, &connected);
  if (client == NULL) {
    reply_connect(call, connected);
    return;
  }
  char out[64];
  snprintf(out, sizeof out, "client=%s", dfnet_status_str(dfnet_driver_client_status(client)));
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)out, strlen(out));
}

static void child_offer(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  child_t *c = ctx;
  (void)req;
  (void)len;
  char out[2048];
  size_t count = 0, used = 0;
  dfnet_offer_t o;
  dfnet_driver_offer(c->driver, 0, &o, &count);
  int n = snprintf(out, sizeof out, "n=%zu", count);
  used = n > 0 ? (size_t)n : 0;
  for (size_t i = 0; i < count && used < sizeof out; i++) {
    if (dfnet_driver_offer(c->driver, i, &o, NULL) != DFNET_STATUS_OK)
      break;
    n = snprintf(out + used, sizeof out - used, ";%zu=%s,%s,%s", i, o.service, o.instance,
                 o.source);
    used += n > 0 ? (size_t)n : 0;
  }
  if (used >= sizeof out)
    used = sizeof out - 1;
  bool past = dfnet_driver_offer(c->driver, count, &o, NULL) == DFNET_STATUS_OUT_OF_RANGE;
  dfnet_call_reply(call, past ? DFNET_STATUS_OK : DFNET_STATUS_INTERNAL, NULL, (const uint8_t *)out,
                   used);
}

static const dfnet_method_t child_methods[] = {
    {"Run", child_run, false},
    {"Status", child_status, false},
    {"Offer", child_offer, false},
};

static dfnet_status_t child_start(dfnet_driver_t *driver, void *ctx) {
  child_t *c = ctx;
  c->driver = driver;
  const dfnet_node_property_t *p = dfnet_driver_property_find(driver, 0, "dfnet.test.INSTANCE");
  const char *instance = p != NULL && p->type == DFNET_PROPERTY_STRING ? p->value_str : NULL;
  dfnet_status_t st = dfnet_driver_connect(driver, "dfnet.test.Echo", instance, &c->client);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "no dfnet.test.Echo offered: %s",
                     dfnet_status_str(st));
    return st;
  }
  st = dfnet_driver_serve(driver, "dfnet.test.Child", child_methods,
                          sizeof child_methods / sizeof child_methods[0]);
  if (st != DFNET_STATUS_OK)
    dfnet_driver_client_close(c->client);
  return st;
}

static void child_stop(dfnet_driver_t *driver, void *ctx) {
  child_t *c = ctx;
  (void)driver;
  /* on_done of what is left runs in here (CANCELLED) and frees the runs */
  dfnet_driver_client_close(c->client);
  c->client = NULL;
  for (size_t i = 0; i < c->extra_count; i++)
    dfnet_driver_client_close(c->extra[i].client);
  c->extra_count = 0;
  while (c->runs != NULL) { /* none: each on_done freed its own */
    run_t *r = c->runs;
    c->runs = r->next;
    free(r);
  }
}

DFNET_DRIVER("child", child_t, .start = child_start, .stop = child_stop);
