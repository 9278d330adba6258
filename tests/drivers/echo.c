/* echo: a test driver (issue 8 "Test-only drivers"). Serves dfnet.test.Echo with raw
 * bytes payloads:
 *   /dfnet.test.Echo/Echo      unary: replies with the request.
 *   /dfnet.test.Echo/Stream    server-streaming: request = u32 LE count N + payload;
 *                              N items of payload, then OK. Never blocks its dispatcher:
 *                              when the caller's window is full it retries later.
 *   /dfnet.test.Echo/Describe  unary: "moniker=..;name=..;props=N;program=..".
 *   /dfnet.test.Echo/AddChild  unary: adds a child named by the request; replies with the
 *                              manager's verdict.
 *   /dfnet.test.Echo/RemoveChild unary: removes the child named by the request.
 *   /dfnet.test.Echo/Hold      unary: keeps the call until it ends without a reply
 *                              (cancelled, deadline, driver stopping) and counts why.
 *   /dfnet.test.Echo/WhoCalls  unary: "caller=<dfnet_call_caller>;url=<..._driver_url>".
 *   /dfnet.test.Echo/Stats     unary: "held=H cancelled=C deadline=D unavailable=U
 *                              whocalls=W last=<caller>;<url>".
 * With the string property "dfnet.test.TRACE" naming a file, it appends one line per
 * hook ("start", "prepare_stop", "stop") there.
 *
 * Built a second time as "parent" (ECHO_PARENT; issue 18 "Drivers that talk to drivers"):
 * at start it also adds a child node for the manager to bind (not owned), named by the
 * string property "dfnet.test.CHILD" (default "child"), offering dfnet.test.Echo to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dfnet/driver.h"
#include "test_file.h"

typedef struct stream {
  struct stream *next, *prev;
  dfnet_call_t *call;
  uint32_t left;
  size_t len;
  uint8_t data[];
} stream_t;

typedef struct echo {
  dfnet_driver_t *driver;
  const char *trace; /* property string, owned by the driver host */
  stream_t *streams; /* in flight; a retry may be waiting on the dispatcher */
  /* Hold and WhoCalls (dispatcher only) */
  int held, cancelled, deadline, unavailable, whocalls;
  char last_caller[512], last_url[256];
} echo_t;

static int count_streams(const echo_t *e) {
  int n = 0;
  for (const stream_t *s = e->streams; s != NULL; s = s->next)
    n++;
  return n;
}

static void stream_free(echo_t *e, stream_t *s) {
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    e->streams = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  free(s);
}

static void trace(echo_t *e, const char *what) {
  if (e->trace == NULL)
    return;
  char line[256];
  snprintf(line, sizeof line, "%s\n", what);
  (void)test_file_write(e->driver, e->trace, line, true);
}

static void echo_echo(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, req, len);
}

static void stream_continue(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  echo_t *e = ctx;
  stream_t *s = arg;
  while (s->left > 0) {
    dfnet_status_t st = dfnet_call_send(s->call, s->data, s->len);
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED &&
        dfnet_driver_post(e->driver, 1, stream_continue, s) == DFNET_STATUS_OK)
      return; /* the window is full: try again in 1 ms */
    if (st != DFNET_STATUS_OK) {
      dfnet_call_reply(s->call, st, "stream ended", NULL, 0);
      goto done;
    }
    s->left--;
  }
  dfnet_call_reply(s->call, DFNET_STATUS_OK, NULL, NULL, 0);
done:
  stream_free(e, s);
}

static void echo_stream(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  if (len < 4) {
    dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, "want u32 count + payload", NULL, 0);
    return;
  }
  stream_t *s = malloc(sizeof *s + len - 4);
  if (s == NULL) {
    dfnet_call_reply(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return;
  }
  s->call = call;
  s->left =
      (uint32_t)req[0] | (uint32_t)req[1] << 8 | (uint32_t)req[2] << 16 | (uint32_t)req[3] << 24;
  s->len = len - 4;
  memcpy(s->data, req + 4, len - 4);
  s->prev = NULL;
  s->next = e->streams;
  if (e->streams != NULL)
    e->streams->prev = s;
  e->streams = s;
  stream_continue(e->driver, e, s);
}

static void echo_describe(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  (void)req;
  (void)len;
  size_t nprops = 0;
  dfnet_driver_properties(e->driver, &nprops);
  char buf[2048];
  int n = snprintf(buf, sizeof buf, "moniker=%s;name=%s;props=%zu;program=%s",
                   dfnet_driver_node_moniker(e->driver), dfnet_driver_node_name(e->driver), nprops,
                   dfnet_driver_program_json(e->driver));
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)buf,
                   n < 0                    ? 0
                   : (size_t)n < sizeof buf ? (size_t)n
                                            : sizeof buf - 1);
}

static void child_added(dfnet_driver_t *driver, void *ctx, const char *name, dfnet_status_t status,
                        void *arg) {
  (void)driver;
  (void)ctx;
  (void)name;
  dfnet_call_reply(arg, status, "child add verdict", NULL, 0);
}

static void echo_add_child(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  char name[129];
  snprintf(name, sizeof name, "%.*s", (int)(len < 128 ? len : 128), (const char *)req);
  dfnet_node_property_t props[] = {
      {.int_key = 1, .type = DFNET_PROPERTY_UINT, .value_uint = 42},
      {.str_key = "dfnet.test.KIND", .type = DFNET_PROPERTY_STRING, .value_str = "child"},
  };
  const char *offers[] = {"dfnet.test.Echo"};
  dfnet_child_args_t args = {.name = name,
                             .properties = props,
                             .property_count = 2,
                             .offers = offers,
                             .offer_count = 1,
                             .class_name = "echo",
                             .owned = true};
  dfnet_status_t st = dfnet_driver_add_child(e->driver, &args, child_added, call);
  if (st != DFNET_STATUS_OK)
    dfnet_call_reply(call, st, "add_child refused", NULL, 0);
}

static void echo_remove_child(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  char name[129];
  snprintf(name, sizeof name, "%.*s", (int)(len < 128 ? len : 128), (const char *)req);
  dfnet_call_reply(call, dfnet_driver_remove_child(e->driver, name), NULL, NULL, 0);
}

static void hold_ended(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  echo_t *e = ctx;
  (void)arg;
  e->cancelled += why == DFNET_STATUS_CANCELLED;
  e->deadline += why == DFNET_STATUS_DEADLINE_EXCEEDED;
  e->unavailable += why == DFNET_STATUS_UNAVAILABLE;
  dfnet_call_reply(call, why, "held until it ended", NULL, 0); /* dropped: it has ended */
}

static void echo_hold(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  (void)req;
  (void)len;
  e->held++;
  if (dfnet_call_on_cancel(call, hold_ended, NULL) != DFNET_STATUS_OK)
    dfnet_call_reply(call, DFNET_STATUS_INTERNAL, "cannot watch the call", NULL, 0);
}

static void reply_text(dfnet_call_t *call, const char *text) {
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)text, strlen(text));
}

static void echo_who_calls(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  (void)req;
  (void)len;
  e->whocalls++;
  snprintf(e->last_caller, sizeof e->last_caller, "%s", dfnet_call_caller(call));
  snprintf(e->last_url, sizeof e->last_url, "%s", dfnet_call_caller_driver_url(call));
  char buf[1024];
  snprintf(buf, sizeof buf, "caller=%s;url=%s", e->last_caller, e->last_url);
  reply_text(call, buf);
}

static void echo_stats(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  echo_t *e = ctx;
  (void)req;
  (void)len;
  char buf[1024];
  snprintf(buf, sizeof buf,
           "held=%d cancelled=%d deadline=%d unavailable=%d whocalls=%d last=%s;%s", e->held,
           e->cancelled, e->deadline, e->unavailable, e->whocalls, e->last_caller, e->last_url);
  reply_text(call, buf);
}

static const dfnet_method_t echo_methods[] = {
    {"Echo", echo_echo, false},
    {"Stream", echo_stream, true},
    {"Describe", echo_describe, false},
    {"AddChild", echo_add_child, false},
    {"RemoveChild", echo_remove_child, false},
    {"Hold", echo_hold, false},
    {"WhoCalls", echo_who_calls, false},
    {"Stats", echo_stats, false},
};

static void class_child_added(dfnet_driver_t *driver, void *ctx, const char *name,
                              dfnet_status_t status, void *arg) {
  (void)ctx;
  (void)arg;
  dfnet_driver_log(driver,
                   status == DFNET_STATUS_OK ? DFNET_DRIVER_LOG_INFO : DFNET_DRIVER_LOG_WARN,
                   "class child %s: %s", name, status == DFNET_STATUS_OK ? "added" : "refused");
}

/* A manifest "config": {"child_class": "C"} makes the driver publish an owned child "out" of
 * class C when it starts, as a real driver publishes its class entry (virtio-rng's "rng"). */
static dfnet_status_t publish_class_child(echo_t *e) {
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(e->driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const cJSON *cls = cJSON_GetObjectItemCaseSensitive(config, "child_class");
  dfnet_status_t st = DFNET_STATUS_OK;
  if (cJSON_IsString(cls)) {
    dfnet_child_args_t args = {.name = "out", .class_name = cls->valuestring, .owned = true};
    st = dfnet_driver_add_child(e->driver, &args, class_child_added, NULL);
  }
  cJSON_Delete(program);
  return st;
}

#ifdef ECHO_PARENT
static void offer_child_added(dfnet_driver_t *driver, void *ctx, const char *name,
                              dfnet_status_t status, void *arg) {
  (void)ctx;
  (void)arg;
  dfnet_driver_log(driver,
                   status == DFNET_STATUS_OK ? DFNET_DRIVER_LOG_INFO : DFNET_DRIVER_LOG_WARN,
                   "child %s offered dfnet.test.Echo: %s", name, dfnet_status_str(status));
}

/* The parent's child: bound by the manager, offered the Echo service this driver serves. */
static dfnet_status_t add_offered_child(echo_t *e) {
  const dfnet_node_property_t *p = dfnet_driver_property_find(e->driver, 0, "dfnet.test.CHILD");
  const char *offers[] = {"dfnet.test.Echo"};
  dfnet_child_args_t args = {.name = p != NULL && p->type == DFNET_PROPERTY_STRING ? p->value_str
                                                                                   : "child",
                             .offers = offers,
                             .offer_count = 1};
  return dfnet_driver_add_child(e->driver, &args, offer_child_added, NULL);
}
#endif

static dfnet_status_t echo_start(dfnet_driver_t *driver, void *ctx) {
  echo_t *e = ctx;
  e->driver = driver;
  const dfnet_node_property_t *t = dfnet_driver_property_find(driver, 0, "dfnet.test.TRACE");
  if (t != NULL && t->type == DFNET_PROPERTY_STRING)
    e->trace = t->value_str;
  trace(e, "start");
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_DEBUG, "echo starting");
  dfnet_status_t st = dfnet_driver_serve(driver, "dfnet.test.Echo", echo_methods,
                                         sizeof echo_methods / sizeof echo_methods[0]);
  if (st == DFNET_STATUS_OK)
    st = publish_class_child(e);
#ifdef ECHO_PARENT
  if (st == DFNET_STATUS_OK)
    st = add_offered_child(e);
#endif
  return st;
}

static void echo_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  trace(ctx, "prepare_stop");
}

static void echo_stop(dfnet_driver_t *driver, void *ctx) {
  echo_t *e = ctx;
  (void)driver;
  char line[64];
  snprintf(line, sizeof line, "stop streams=%d", count_streams(e));
  trace(e, line);
  /* Retries still waiting were dropped with the dispatcher: free their state. The driver
   * host releases the call handles. */
  while (e->streams != NULL)
    stream_free(e, e->streams);
}

static const dfnet_driver_ops_t echo_ops = {
    .api_version = DFNET_DRIVER_API_VERSION,
#ifdef ECHO_PARENT
    .name = "parent",
#else
    .name = "echo",
#endif
    .ctx_size = sizeof(echo_t),
    .start = echo_start,
    .prepare_stop = echo_prepare_stop,
    .stop = echo_stop,
};
DFNET_DRIVER_EXPORT(echo_ops);
