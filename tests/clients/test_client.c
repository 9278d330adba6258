/* libdfnet-client against the scripted manager peer (scripted_server.h): the real
 * transport both sides, real certificates. Calls (unary, streaming with credit, pull
 * streams), deadline, cancel, role errors, lists with many items, watch, lost sessions;
 * driver lifecycle: the new node and driver fields, driver hosts, driver actions' outcomes
 * per node, node control and test nodes as they reach the manager. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dfnet/client.h"
#include "scripted_server.h"

static char cert_dir[256];
static scripted_server_t *server;
static uint16_t port;

static int group_setup(void **state) {
  (void)state;
  snprintf(cert_dir, sizeof cert_dir, "/tmp/dfnet-test-client-%d", (int)getpid());
  if (ss_make_certs(cert_dir) != 0)
    return -1;
  server = ss_start(cert_dir, &port);
  return server ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  ss_stop(server);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static dfnet_client_t *connect_as(const char *role, const char *name) {
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/%s/%s.crt", cert_dir, role, name);
  snprintf(key, sizeof key, "%s/%s/%s.key", cert_dir, role, name);
  snprintf(ca, sizeof ca, "%s/%s/ca.crt", cert_dir, role);
  dfnet_client_options_t o = {
      .url = url, .cert_file = crt, .key_file = key, .ca_file = ca, .connect_timeout_ms = 5000};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_connect(&o, &c, &err);
  if (st != DFNET_STATUS_OK)
    fprintf(stderr, "connect: %s: %s\n", dfnet_status_str(st), err.message);
  return c;
}

static void test_connect_info(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  dfnet_client_info_t info;
  assert_int_equal(dfnet_client_info(c, &info), DFNET_STATUS_OK);
  assert_string_equal(info.role, "operator");
  assert_string_equal(info.server_name, "scripted");
  dfnet_client_close(c);
}

/* A log callback's record of the library's lines, per level. */
typedef struct log_rec {
  int at[5];
  char last[1024];
} log_rec_t;

static void log_rec(void *user, dfnet_client_log_level_t level, const char *line) {
  log_rec_t *r = user;
  if ((unsigned)level < 5)
    r->at[level]++;
  snprintf(r->last, sizeof r->last, "%s", line);
}

/* The library's lines go to the log callback, up to the level asked (warnings by default). */
static void test_log_callback_and_level(void **state) {
  (void)state;
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/operator/bob.crt", cert_dir);
  snprintf(key, sizeof key, "%s/operator/bob.key", cert_dir);
  snprintf(ca, sizeof ca, "%s/operator/ca.crt", cert_dir);
  unsetenv("DFNET_LOG_LEVEL");
  log_rec_t quiet = {0}, chatty = {0};
  dfnet_client_options_t o = {.url = url,
                              .cert_file = crt,
                              .key_file = key,
                              .ca_file = ca,
                              .log_fn = log_rec,
                              .log_user = &quiet};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_connect(&o, &c, &err), DFNET_STATUS_OK);
  dfnet_client_close(c);
  assert_int_equal(quiet.at[DFNET_CLIENT_LOG_INFO] + quiet.at[DFNET_CLIENT_LOG_DEBUG], 0);
  o.log_level = DFNET_CLIENT_LOG_DEBUG;
  o.log_user = &chatty;
  assert_int_equal(dfnet_client_connect(&o, &c, &err), DFNET_STATUS_OK);
  dfnet_client_close(c);
  assert_true(chatty.at[DFNET_CLIENT_LOG_INFO] >= 1); /* "session 1 open ..." */
  o.log_fn = NULL;                                    /* back to stderr, warnings */
  o.log_level = DFNET_CLIENT_LOG_DEFAULT;
  assert_int_equal(dfnet_client_connect(&o, &c, &err), DFNET_STATUS_OK);
  dfnet_client_close(c);
}

static void test_connect_errors(void **state) {
  (void)state;
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  dfnet_client_options_t o = {
      .url = "http://127.0.0.1:1", .cert_file = "a", .key_file = "b", .ca_file = "c"};
  assert_int_equal(dfnet_client_connect(&o, &c, &err), DFNET_STATUS_INVALID_ARGUMENT);
  assert_null(c);
  assert_non_null(strstr(err.message, "wss://"));
  char url[64], crt[400], key[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/admin/alice.crt", cert_dir);
  snprintf(key, sizeof key, "%s/admin/alice.key", cert_dir);
  o = (dfnet_client_options_t){.url = url,
                               .cert_file = crt,
                               .key_file = key,
                               .ca_file = "/nonexistent/ca.crt",
                               .connect_timeout_ms = 500};
  assert_int_equal(dfnet_client_connect(&o, &c, &err), DFNET_STATUS_NOT_FOUND);
  /* a CA that did not sign the server: refused at once (not after the 5 s timeout), the
   * reason in the error and one warning through the log callback */
  char other[300];
  snprintf(other, sizeof other, "%s-other", cert_dir);
  assert_int_equal(ss_make_certs(other), 0);
  char ca2[400];
  snprintf(ca2, sizeof ca2, "%s/state/ca.crt", other);
  o.ca_file = ca2;
  o.connect_timeout_ms = 60000; /* a hang guard: the refusal must not wait for it */
  log_rec_t logs = {0};
  o.log_fn = log_rec;
  o.log_user = &logs;
  assert_int_equal(dfnet_client_connect(&o, &c, &err), DFNET_STATUS_UNAUTHENTICATED);
  assert_null(c);
  assert_non_null(strstr(err.message, "certificate is not signed by the CA in"));
  assert_non_null(strstr(err.message, "-other/state/ca.crt"));
  assert_int_equal(logs.at[DFNET_CLIENT_LOG_WARN], 1);
  assert_non_null(strstr(logs.last, " W transport "));
  assert_int_equal(logs.at[DFNET_CLIENT_LOG_INFO] + logs.at[DFNET_CLIENT_LOG_DEBUG], 0);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", other);
  assert_int_equal(system(cmd), 0);
}

static void test_unary(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  uint8_t req[64];
  for (int i = 0; i < 64; i++)
    req[i] = (uint8_t)(i * 3);
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  dfnet_client_call_options_t co = {.deadline_ms = 5000};
  assert_int_equal(dfnet_client_call(c, "dev.lab-a.pci.00_05_0", "/test.Echo/Unary", req,
                                     sizeof req, &co, &reply, &len, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(len, sizeof req);
  assert_memory_equal(reply, req, sizeof req);
  free(reply);
  ss_stats_t st;
  ss_stats(server, &st);
  assert_true(st.last_deadline_ms > 0 && st.last_deadline_ms <= 5000);
  /* an error status with its message */
  assert_int_equal(dfnet_client_call(c, "x", "/test.Echo/Fail", NULL, 0, NULL, &reply, &len, &err),
                   DFNET_STATUS_NOT_FOUND);
  assert_null(reply);
  assert_string_equal(err.message, "no node 'x'");
  assert_int_equal(dfnet_client_call(c, "x", "/test.Echo/Nope", NULL, 0, NULL, &reply, &len, &err),
                   DFNET_STATUS_UNIMPLEMENTED);
  /* bad arguments never reach the wire */
  assert_int_equal(dfnet_client_call(c, "x", "no-slash", NULL, 0, NULL, &reply, &len, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  char big[600];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(dfnet_client_call(c, big, "/a.B/C", NULL, 0, NULL, &reply, &len, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_client_close(c);
}

static void test_role_denied(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("viewer", "carol");
  assert_non_null(c);
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_call(c, "x", "/test.Echo/Unary", "a", 1, NULL, &reply, &len, &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  assert_non_null(strstr(err.message, "operator"));
  assert_int_equal(dfnet_client_driver_disable(c, "dfnet-boot:///x#meta/x.json", &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  dfnet_client_close(c);
}

/* ---- streaming with callbacks ---- */

typedef struct cb_state {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned messages;
  bool bad_payload;
  bool done;
  int done_calls;
  dfnet_status_t status;
  char message[256];
} cb_state_t;

static void cb_init(cb_state_t *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
}

static void cb_message(void *user, dfnet_client_call_id_t id, const uint8_t *d, size_t n) {
  cb_state_t *s = user;
  (void)id;
  pthread_mutex_lock(&s->mu);
  if (n != 100 || d[0] != (uint8_t)(s->messages & 0xff) || d[99] != d[0])
    s->bad_payload = true;
  s->messages++;
  pthread_mutex_unlock(&s->mu);
}

static void cb_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  cb_state_t *s = user;
  (void)id;
  pthread_mutex_lock(&s->mu);
  s->done = true;
  s->done_calls++;
  s->status = st;
  snprintf(s->message, sizeof s->message, "%s", msg);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void cb_wait(cb_state_t *s) {
  pthread_mutex_lock(&s->mu);
  while (!s->done)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static void stream_request(uint8_t req[8], uint32_t count, uint32_t size) {
  for (int i = 0; i < 4; i++) {
    req[i] = (uint8_t)(count >> (8 * i));
    req[4 + i] = (uint8_t)(size >> (8 * i));
  }
}

static void test_stream_callbacks_credit(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  ss_stats_t before, after;
  ss_stats(server, &before);
  cb_state_t s;
  cb_init(&s);
  uint8_t req[8];
  stream_request(req, 1000, 100); /* far more than the window of 8 */
  dfnet_client_call_options_t co = {.credit = 8};
  dfnet_client_call_id_t id = 0;
  assert_int_equal(dfnet_client_call_start(c, "n", "/test.Echo/Stream", req, 8, &co, cb_message,
                                           cb_done, &s, &id),
                   DFNET_STATUS_OK);
  assert_true(id != 0);
  cb_wait(&s);
  assert_int_equal(s.status, DFNET_STATUS_OK);
  assert_int_equal(s.messages, 1000);
  assert_false(s.bad_payload);
  assert_int_equal(s.done_calls, 1);
  ss_stats(server, &after);
  assert_int_equal(after.last_credit, 8);
  /* the server only sends within credit: 1000 replies need >= 992 granted back */
  assert_true(after.credit_total - before.credit_total >= 992);
  /* cancelling a finished call is harmless */
  assert_int_equal(dfnet_client_call_cancel(c, id), DFNET_STATUS_NOT_FOUND);
  dfnet_client_close(c);
}

static void test_pull_stream(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  uint8_t req[8];
  stream_request(req, 300, 100);
  dfnet_client_stream_t *st = NULL;
  dfnet_client_error_t err;
  dfnet_client_call_options_t co = {.credit = 4, .deadline_ms = 20000};
  assert_int_equal(dfnet_client_stream_open(c, "n", "/test.Echo/Stream", req, 8, &co, &st, &err),
                   DFNET_STATUS_OK);
  unsigned n = 0;
  for (;;) {
    uint8_t *data = NULL;
    size_t len = 0;
    dfnet_status_t s = dfnet_client_stream_next(st, 5000, &data, &len, &err);
    if (s == DFNET_STATUS_ABORTED)
      break;
    assert_int_equal(s, DFNET_STATUS_OK);
    assert_int_equal(len, 100);
    assert_int_equal(data[0], (uint8_t)(n & 0xff));
    free(data);
    n++;
  }
  assert_int_equal(n, 300);
  dfnet_client_stream_close(st);
  /* a stream closed early is cancelled */
  stream_request(req, 1000000, 10);
  assert_int_equal(dfnet_client_stream_open(c, "n", "/test.Echo/Stream", req, 8, &co, &st, &err),
                   DFNET_STATUS_OK);
  uint8_t *data = NULL;
  size_t len = 0;
  assert_int_equal(dfnet_client_stream_next(st, 5000, &data, &len, &err), DFNET_STATUS_OK);
  free(data);
  dfnet_client_stream_close(st);
  dfnet_client_close(c);
}

static void test_deadline(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  ss_stats_t before, after;
  ss_stats(server, &before);
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  dfnet_client_call_options_t co = {.deadline_ms = 200};
  assert_int_equal(dfnet_client_call(c, "n", "/test.Echo/Block", NULL, 0, &co, &reply, &len, &err),
                   DFNET_STATUS_DEADLINE_EXCEEDED);
  /* the manager is told, so that the driver stops working on it */
  for (int i = 0; i < 200; i++) {
    ss_stats(server, &after);
    if (after.cancels > before.cancels)
      break;
    usleep(10000);
  }
  assert_true(after.cancels > before.cancels);
  assert_int_equal(after.last_deadline_ms, 200);
  dfnet_client_close(c);
}

static void test_cancel(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  ss_stats_t before, after;
  ss_stats(server, &before);
  cb_state_t s;
  cb_init(&s);
  dfnet_client_call_id_t id;
  assert_int_equal(dfnet_client_call_start(c, "n", "/test.Echo/Block", NULL, 0, NULL, cb_message,
                                           cb_done, &s, &id),
                   DFNET_STATUS_OK);
  assert_int_equal(dfnet_client_call_cancel(c, id), DFNET_STATUS_OK);
  assert_int_equal(dfnet_client_call_cancel(c, id), DFNET_STATUS_NOT_FOUND); /* twice: harmless */
  cb_wait(&s);
  assert_int_equal(s.status, DFNET_STATUS_CANCELLED);
  for (int i = 0; i < 200; i++) {
    ss_stats(server, &after);
    if (after.cancels > before.cancels)
      break;
    usleep(10000);
  }
  assert_true(after.cancels > before.cancels);
  assert_int_equal(s.done_calls, 1);
  /* close with a call in flight: its final callback runs with CANCELLED */
  cb_state_t s2;
  cb_init(&s2);
  assert_int_equal(
      dfnet_client_call_start(c, "n", "/test.Echo/Block", NULL, 0, NULL, NULL, cb_done, &s2, NULL),
      DFNET_STATUS_OK);
  dfnet_client_close(c);
  assert_true(s2.done);
  assert_int_equal(s2.status, DFNET_STATUS_CANCELLED);
  assert_int_equal(s2.done_calls, 1);
}

static void test_session_lost(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  cb_state_t s;
  cb_init(&s);
  assert_int_equal(
      dfnet_client_call_start(c, "n", "/test.Echo/Block", NULL, 0, NULL, NULL, cb_done, &s, NULL),
      DFNET_STATUS_OK);
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_call(c, "n", "/test.Echo/Drop", NULL, 0, NULL, &reply, &len, &err),
                   DFNET_STATUS_UNAVAILABLE);
  cb_wait(&s);
  assert_int_equal(s.status, DFNET_STATUS_UNAVAILABLE);
  /* the library reconnects by itself */
  dfnet_client_call_options_t co = {.deadline_ms = 10000};
  assert_int_equal(dfnet_client_call(c, "n", "/test.Echo/Unary", "hi", 2, &co, &reply, &len, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(len, 2);
  free(reply);
  dfnet_client_close(c);
}

static void test_list_many_nodes(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("viewer", "carol");
  assert_non_null(c);
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_list_nodes(c, "many", false, true, NULL, &l, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(l->count, 5000);
  assert_string_equal(l->items[4999].moniker, "dev.lab-a.many.n4999");
  assert_int_equal(l->items[10].property_count, 4);
  assert_null(l->items[10].properties[0].str_key);
  assert_int_equal(l->items[10].properties[0].int_key, 0x0100);
  assert_int_equal(l->items[10].properties[0].int_value, 0x1af4);
  assert_int_equal(l->items[10].properties[1].type, DFNET_CLIENT_VALUE_BOOL);
  assert_string_equal(l->items[10].properties[3].str_value,
                      "fuchsia.hardware.pci.Service.ZirconTransport");
  assert_int_equal(l->items[10].unbound_code, DFNET_STATUS_NOT_FOUND);
  assert_string_equal(l->items[10].unbound_message, "no driver matched");
  dfnet_client_node_list_free(l);
  /* exact filter */
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci", true, false, NULL, &l, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(l->count, 1);
  assert_int_equal(l->items[0].property_count, 0);
  dfnet_client_node_list_free(l);
  dfnet_client_close(c);
}

static void test_other_lists(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("admin", "alice");
  assert_non_null(c);
  dfnet_client_error_t err;
  dfnet_client_host_list_t *h = NULL;
  assert_int_equal(dfnet_client_list_hosts(c, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 2);
  assert_string_equal(h->items[1].label_values[0], "r1");
  dfnet_client_host_list_free(h);
  dfnet_client_driver_list_t *d = NULL;
  assert_int_equal(dfnet_client_list_drivers(c, false, true, NULL, &d, &err), DFNET_STATUS_OK);
  assert_int_equal(d->count, 2);
  assert_int_equal(d->items[0].bind_bytecode_len, 8);
  assert_memory_equal(d->items[0].bind_bytecode, "BIND", 4);
  assert_string_equal(d->items[0].subcategories[0], "rng");
  dfnet_client_driver_list_free(d);
  dfnet_client_composite_list_t *k = NULL;
  assert_int_equal(dfnet_client_list_composites(c, true, NULL, &k, &err), DFNET_STATUS_OK);
  assert_int_equal(k->count, 1);
  assert_true(k->items[0].parents[0].primary);
  dfnet_client_composite_list_free(k);
  dfnet_client_bind_trace_list_t *t = NULL;
  assert_int_equal(dfnet_client_bind_why(c, "dev.lab-a.pci.00_06_0", NULL, NULL, &t, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(t->count, 1);
  assert_int_equal(t->items[0].result, DFNET_CLIENT_BIND_NO_MATCH);
  dfnet_client_bind_trace_list_free(t);
  assert_int_equal(dfnet_client_bind_why(c, "dev.none", NULL, NULL, &t, &err),
                   DFNET_STATUS_NOT_FOUND);
  assert_null(t);
  uint32_t n = 0;
  assert_int_equal(dfnet_client_driver_restart(c, "dfnet-boot:///x#meta/x.json", &n, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(n, 2);
  assert_int_equal(dfnet_client_driver_enable(c, "missing", &err), DFNET_STATUS_NOT_FOUND);
  dfnet_client_close(c);
}

/* Driver lifecycle (issue 19): the new NodeInfo and DriverInfo fields, the node state and
 * event kind names, driver hosts, a driver action's outcome per node, node control. */
static void test_lifecycle_conversions(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("admin", "alice");
  assert_non_null(c);
  dfnet_client_error_t err;
  dfnet_client_node_list_t *l = NULL;
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci.00_05_0", true, false, NULL, &l, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(l->count, 1);
  assert_int_equal(l->items[0].driver_host_pid, 4242);
  assert_false(l->items[0].suspended);
  assert_false(l->items[0].test);
  dfnet_client_node_list_free(l);
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci.00_08_0", true, false, NULL, &l, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(l->items[0].state, DFNET_CLIENT_NODE_STARTING);
  assert_string_equal(dfnet_client_node_state_str(l->items[0].state), "starting");
  dfnet_client_node_list_free(l);
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci.00_09_0", true, false, NULL, &l, &err),
                   DFNET_STATUS_OK);
  assert_true(l->items[0].suspended);
  assert_int_equal(l->items[0].driver_host_pid, 4343);
  dfnet_client_node_list_free(l);
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci.t0", true, false, NULL, &l, &err),
                   DFNET_STATUS_OK);
  assert_true(l->items[0].test);
  assert_int_equal(l->items[0].unbound_code, DFNET_STATUS_OK);
  assert_non_null(strstr(l->items[0].unbound_message, "test node: would bind"));
  dfnet_client_node_list_free(l);
  dfnet_client_driver_list_t *d = NULL;
  assert_int_equal(dfnet_client_list_drivers(c, false, false, NULL, &d, &err), DFNET_STATUS_OK);
  assert_false(d->items[0].disable_autobind);
  assert_int_equal(d->items[0].start_timeout_ms, 2000);
  assert_true(d->items[1].disable_autobind);
  assert_int_equal(d->items[1].start_timeout_ms, 0);
  dfnet_client_driver_list_free(d);
  assert_string_equal(dfnet_client_event_kind_str(DFNET_CLIENT_EVENT_NODE_SUSPENDED),
                      "NODE_SUSPENDED");
  assert_string_equal(dfnet_client_event_kind_str(DFNET_CLIENT_EVENT_NODE_RESUMED), "NODE_RESUMED");
  assert_string_equal(dfnet_client_event_kind_str((dfnet_client_event_kind_t)20), "UNSPECIFIED");
  dfnet_client_close(c);
}

static void test_driver_hosts(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("viewer", "carol");
  assert_non_null(c);
  dfnet_client_error_t err;
  dfnet_client_driver_host_list_t *h = NULL;
  assert_int_equal(dfnet_client_list_driver_hosts(c, NULL, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 3);
  assert_string_equal(h->items[0].host, "lab-b");
  assert_int_equal(h->items[0].pid, 0);
  assert_int_equal(h->items[1].id, 7);
  assert_int_equal(h->items[1].pid, 4242);
  assert_int_equal(h->items[1].rss_bytes, 2202010);
  assert_int_equal(h->items[1].driver_count, 1);
  assert_string_equal(h->items[1].driver_urls[0], "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  assert_int_equal(h->items[1].node_count, 1);
  assert_string_equal(h->items[1].nodes[0], "dev.lab-a.pci.00_05_0");
  dfnet_client_driver_host_list_free(h);
  assert_int_equal(dfnet_client_list_driver_hosts(c, "lab-a", NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 2);
  dfnet_client_driver_host_list_free(h);
  h = NULL;
  assert_int_equal(dfnet_client_list_driver_hosts(c, "lab-z", NULL, &h, &err),
                   DFNET_STATUS_NOT_FOUND);
  assert_null(h);
  char host[100];
  memset(host, 'h', sizeof host - 1);
  host[sizeof host - 1] = '\0';
  assert_int_equal(dfnet_client_list_driver_hosts(c, host, NULL, &h, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_client_driver_host_list_free(NULL);
  dfnet_client_close(c);
}

static void test_driver_control_outcomes(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("admin", "alice");
  assert_non_null(c);
  dfnet_client_error_t err;
  dfnet_client_driver_control_result_t *r = NULL;
  assert_int_equal(
      dfnet_client_driver_control(c, DFNET_CLIENT_DRIVER_RESTART, "virtio-rng", &r, &err),
      DFNET_STATUS_OK);
  assert_int_equal(r->driver_hosts, 2);
  assert_string_equal(r->url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  assert_int_equal(r->outcome_count, 1);
  assert_string_equal(r->outcomes[0].node, "dev.lab-a.pci.00_05_0");
  assert_int_equal(r->outcomes[0].code, DFNET_STATUS_OK);
  assert_string_equal(r->outcomes[0].message, "");
  assert_string_equal(r->outcomes[0].driver_url, r->url);
  dfnet_client_driver_control_result_free(r);
  assert_int_equal(dfnet_client_driver_control(c, DFNET_CLIENT_DRIVER_DISABLE, "partial", &r, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(r->nodes, 3);
  assert_int_equal(r->outcome_count, 2);
  assert_int_equal(r->outcomes[1].code, DFNET_STATUS_FAILED_PRECONDITION);
  assert_string_equal(r->outcomes[1].message, "start failed: no device");
  assert_string_equal(r->outcomes[1].driver_url, "");
  dfnet_client_driver_control_result_free(r);
  /* a Status alone (no result): the URL as given, no outcome */
  assert_int_equal(dfnet_client_driver_control(c, DFNET_CLIENT_DRIVER_ENABLE, "x", &r, &err),
                   DFNET_STATUS_OK);
  assert_string_equal(r->url, "x");
  assert_int_equal(r->outcome_count, 0);
  assert_null(r->outcomes);
  dfnet_client_driver_control_result_free(r);
  r = NULL;
  assert_int_equal(dfnet_client_driver_control(c, DFNET_CLIENT_DRIVER_RESTART, "missing", &r, &err),
                   DFNET_STATUS_NOT_FOUND);
  assert_null(r);
  assert_int_equal(dfnet_client_driver_control(c, (dfnet_client_driver_action_t)9, "x", &r, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_client_driver_control(c, DFNET_CLIENT_DRIVER_RESTART, "", &r, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* the old functions on top of it */
  uint32_t n = 0;
  char url[256];
  assert_int_equal(dfnet_client_driver_unregister(c, "partial", &n, url, sizeof url, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(n, 3);
  assert_string_equal(url, "dfnet-boot:///partial#meta/partial.json");
  dfnet_client_driver_control_result_free(NULL);
  dfnet_client_close(c);
}

static void test_node_control(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("admin", "alice");
  assert_non_null(c);
  dfnet_client_error_t err;
  ss_stats_t st;
  assert_int_equal(dfnet_client_request_bind(c, "dev.lab-a.x", true, "virtio-rng", &err),
                   DFNET_STATUS_OK);
  assert_string_equal(err.message, "starting dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  ss_stats(server, &st);
  assert_string_equal(st.last_node, "dev.lab-a.x");
  assert_int_equal(st.last_flags, 1);
  assert_string_equal(st.last_driver, "virtio-rng");
  assert_int_equal(dfnet_client_node_unbind(c, "dev.lab-a.x", &err), DFNET_STATUS_OK);
  assert_string_equal(err.message, "stopped 1 driver");
  assert_int_equal(dfnet_client_node_suspend(c, "dev.lab-a.y", 0xdcdc0100u, &err), DFNET_STATUS_OK);
  ss_stats(server, &st);
  assert_string_equal(st.last_node, "dev.lab-a.y");
  assert_int_equal(st.last_flags, 0xdcdc0100u);
  assert_int_equal(dfnet_client_node_resume(c, "dev.lab-a.y", &err), DFNET_STATUS_OK);
  assert_string_equal(err.message, "");
  assert_int_equal(dfnet_client_node_resume(c, "dev.none", &err), DFNET_STATUS_NOT_FOUND);
  assert_string_equal(err.message, "no node 'dev.none'");
  const dfnet_client_property_t props[] = {
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 85},
      {.str_key = "vendor.ok", .type = DFNET_CLIENT_VALUE_BOOL, .bool_value = true},
      {.str_key = "vendor.name", .type = DFNET_CLIENT_VALUE_STRING, .str_value = "Red Hat"},
      {.str_key = "fuchsia.usb.Svc", .type = DFNET_CLIENT_VALUE_ENUM, .str_value = "a.b.C"},
  };
  assert_int_equal(dfnet_client_test_node_add(c, "dev.lab-a", "t0", props, 4, &err),
                   DFNET_STATUS_OK);
  ss_stats(server, &st);
  assert_string_equal(st.last_node, "dev.lab-a.t0");
  assert_string_equal(st.last_props,
                      "#1=u:85;vendor.ok=b:true;vendor.name=s:Red Hat;fuchsia.usb.Svc=e:a.b.C;");
  assert_int_equal(dfnet_client_test_node_remove(c, "dev.lab-a.t0", &err), DFNET_STATUS_OK);
  ss_stats(server, &st);
  assert_string_equal(st.last_node, "dev.lab-a.t0");
  /* refused before anything is sent */
  assert_int_equal(dfnet_client_test_node_add(c, "dev.lab-a", "", props, 1, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_client_test_node_add(c, "dev.lab-a", "t", NULL, 1, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_client_test_node_add(c, "dev.lab-a", "t", props, 65, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  const dfnet_client_property_t none = {.str_key = "k", .type = DFNET_CLIENT_VALUE_NONE};
  assert_int_equal(dfnet_client_test_node_add(c, "dev.lab-a", "t", &none, 1, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_client_node_unbind(c, "", &err), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_client_node_suspend(NULL, "x", 0, &err), DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_client_close(c);
  /* role: refused by the manager */
  c = connect_as("viewer", "carol");
  assert_non_null(c);
  assert_int_equal(dfnet_client_node_unbind(c, "dev.lab-a.x", &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  dfnet_client_close(c);
}

typedef struct watch_state {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int events, ends;
  dfnet_status_t status;
  char last_subject[64];
} watch_state_t;

static void w_event(void *user, dfnet_client_watch_id_t id, const dfnet_client_event_t *ev) {
  watch_state_t *w = user;
  (void)id;
  pthread_mutex_lock(&w->mu);
  w->events++;
  snprintf(w->last_subject, sizeof w->last_subject, "%s", ev->subject);
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void w_end(void *user, dfnet_client_watch_id_t id, dfnet_status_t st, const char *msg) {
  watch_state_t *w = user;
  (void)id;
  (void)msg;
  pthread_mutex_lock(&w->mu);
  w->ends++;
  w->status = st;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void test_watch(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("viewer", "carol");
  assert_non_null(c);
  watch_state_t w = {.status = DFNET_STATUS_OK};
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  dfnet_client_watch_id_t id;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_watch(c, 0, w_event, w_end, &w, &id, &err), DFNET_STATUS_OK);
  pthread_mutex_lock(&w.mu);
  while (w.events < 3)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  assert_string_equal(w.last_subject, "dev.lab-a.n2");
  assert_int_equal(dfnet_client_watch_cancel(c, id), DFNET_STATUS_OK);
  assert_int_equal(dfnet_client_watch_cancel(c, id), DFNET_STATUS_NOT_FOUND);
  pthread_mutex_lock(&w.mu);
  while (w.ends < 1)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  assert_int_equal(w.status, DFNET_STATUS_CANCELLED);
  assert_int_equal(dfnet_client_watch(c, 0x80, w_event, w_end, &w, &id, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_client_close(c);
  assert_int_equal(w.ends, 1);
}

/* Several threads calling at once on one client. */
typedef struct thread_arg {
  dfnet_client_t *c;
  int failures;
} thread_arg_t;

static void *caller(void *p) {
  thread_arg_t *a = p;
  for (int i = 0; i < 200; i++) {
    uint8_t req[64];
    memset(req, i, sizeof req);
    uint8_t *reply = NULL;
    size_t len = 0;
    dfnet_client_error_t err;
    if (dfnet_client_call(a->c, "n", "/test.Echo/Unary", req, sizeof req, NULL, &reply, &len,
                          &err) != DFNET_STATUS_OK ||
        len != sizeof req || memcmp(reply, req, len) != 0)
      a->failures++;
    free(reply);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  pthread_t th[4];
  thread_arg_t a[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (thread_arg_t){.c = c};
    assert_int_equal(pthread_create(&th[i], NULL, caller, &a[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(a[i].failures, 0);
  }
  dfnet_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_info),
      cmocka_unit_test(test_connect_errors),
      cmocka_unit_test(test_log_callback_and_level),
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_role_denied),
      cmocka_unit_test(test_stream_callbacks_credit),
      cmocka_unit_test(test_pull_stream),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_session_lost),
      cmocka_unit_test(test_list_many_nodes),
      cmocka_unit_test(test_other_lists),
      cmocka_unit_test(test_lifecycle_conversions),
      cmocka_unit_test(test_driver_hosts),
      cmocka_unit_test(test_driver_control_outcomes),
      cmocka_unit_test(test_node_control),
      cmocka_unit_test(test_watch),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
