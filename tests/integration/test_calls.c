/* Calls end to end (issue 7): a client's call goes through the real dfnet-manager, the real
 * dfnet-host agent and a real dfnet-driver-host to a test driver (tests/drivers/), and
 * back. Unary and server-streaming calls with flow control, a deadline passing at the
 * driver, a cancellation reaching the driver, calls to a node that was removed, a driver
 * crashing in the middle of a stream, and role checks. Every call ends with exactly one
 * final status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fabric.h"

#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;     /* operator */
  dfnet_client_t *viewer; /* viewer */
} F;

static const fabric_package_t packages[] = {
    {"echo", "echo.so", NULL, 1},
    {"blocker", "blocker.so", NULL, 2},
    /* restarted after it is killed mid-stream, so the node stays usable */
    {"echo-crash", "echo.so", "\"host_restart_on_crash\": \"true\"", 3},
    {NULL, NULL, NULL, 0},
};

static int calls_setup(void **state) {
  (void)state;
  F.agent.name = "lab-c";
  if (fabric_init(&F.fab, "calls", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", "lab-c") != 0 || fabric_issue(&F.fab, "operator", "op") != 0 ||
      fabric_issue(&F.fab, "viewer", "view") != 0)
    return -1;
  const char *board[] = {"echo0:1", "block0:2", "echoc:3", NULL};
  fabric_write_board(&F.fab, board);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.op = fabric_connect(&F.fab, "op");
  F.viewer = fabric_connect(&F.fab, "view");
  if (F.op == NULL || F.viewer == NULL)
    return -1;
  const char *nodes[] = {"dev.lab-c.platform.echo0", "dev.lab-c.platform.block0",
                         "dev.lab-c.platform.echoc"};
  for (int i = 0; i < 3; i++)
    if (!fabric_wait_node(F.op, nodes[i], fabric_is_bound, NULL, WAIT_MS, NULL))
      return -1;
  return 0;
}

static int calls_teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  dfnet_client_close(F.viewer);
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

/* ---- a callback call's record ------------------------------------------------------- */

typedef struct rec {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int messages;
  size_t bytes;
  int done; /* final callbacks seen: must end at exactly 1 */
  dfnet_status_t status;
  char message[256];
} rec_t;

static void rec_init(rec_t *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
}

static void rec_destroy(rec_t *r) {
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->cond);
}

static void on_message(void *user, dfnet_client_call_id_t call, const uint8_t *data, size_t len) {
  (void)call;
  (void)data;
  rec_t *r = user;
  pthread_mutex_lock(&r->lock);
  r->messages++;
  r->bytes += len;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

static void on_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                    const char *message) {
  (void)call;
  rec_t *r = user;
  pthread_mutex_lock(&r->lock);
  r->done++;
  r->status = status;
  snprintf(r->message, sizeof r->message, "%s", message ? message : "");
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

/* Wait until the call ended (or at least `messages` arrived when messages > 0). */
static bool rec_wait(rec_t *r, int messages, uint32_t ms) {
  uint64_t end = fabric_now_ms() + ms;
  pthread_mutex_lock(&r->lock);
  while (r->done == 0 && (messages == 0 || r->messages < messages) && fabric_now_ms() < end) {
    pthread_mutex_unlock(&r->lock);
    fabric_sleep_ms(10);
    pthread_mutex_lock(&r->lock);
  }
  bool ok = r->done > 0 || (messages > 0 && r->messages >= messages);
  pthread_mutex_unlock(&r->lock);
  return ok;
}

/* The blocker driver's "cancels=C late=L". */
static int blocker_cancels(void) {
  char reply[64];
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.block0", "/dfnet.test.Blocker/Stats", "",
                               0, 5000, reply, sizeof reply),
                   DFNET_STATUS_OK);
  int cancels = -1, late = -1;
  assert_int_equal(sscanf(reply, "cancels=%d late=%d", &cancels, &late), 2);
  return cancels;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_unary(void **state) {
  (void)state;
  char reply[64];
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.echo0", "/dfnet.test.Echo/Echo", "hello",
                               5, 5000, reply, sizeof reply),
                   DFNET_STATUS_OK);
  assert_string_equal(reply, "hello");
  /* A method the driver does not serve, a node that does not exist. */
  assert_int_equal(
      fabric_call(F.op, "dev.lab-c.platform.echo0", "/dfnet.test.Echo/Nope", "", 0, 5000, NULL, 0),
      DFNET_STATUS_UNIMPLEMENTED);
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.nothing", "/dfnet.test.Echo/Echo", "", 0,
                               5000, NULL, 0),
                   DFNET_STATUS_NOT_FOUND);
  /* A node with no driver (the platform bus node is kept by the agent). */
  assert_int_equal(
      fabric_call(F.op, "dev.lab-c.pci.00_05_0", "/dfnet.test.Echo/Echo", "", 0, 5000, NULL, 0),
      DFNET_STATUS_FAILED_PRECONDITION);
}

static void test_streaming_with_flow_control(void **state) {
  (void)state;
  /* 500 items of 1 KiB through a window of 4: only completes if credit flows back through
   * every hop. */
  uint8_t req[4 + 1024];
  uint32_t n = 500;
  memcpy(req, &n, 4);
  memset(req + 4, 'z', 1024);
  rec_t r;
  rec_init(&r);
  dfnet_client_call_options_t o = {.deadline_ms = 20000, .credit = 4};
  assert_int_equal(dfnet_client_call_start(F.op, "dev.lab-c.platform.echo0",
                                           "/dfnet.test.Echo/Stream", req, sizeof req, &o,
                                           on_message, on_done, &r, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait(&r, 0, 25000));
  fabric_sleep_ms(100);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.status, DFNET_STATUS_OK);
  assert_int_equal(r.messages, 500);
  assert_int_equal(r.bytes, 500 * 1024);
  rec_destroy(&r);
}

static void test_deadline_exceeded_at_the_driver(void **state) {
  (void)state;
  int before = blocker_cancels();
  uint32_t ms = 10000; /* the driver would block 10 s; the deadline is 300 ms */
  uint64_t t0 = fabric_now_ms();
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.block0", "/dfnet.test.Blocker/Block", &ms,
                               4, 300, NULL, 0),
                   DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_true(fabric_now_ms() - t0 < 5000);
  /* The driver saw its call end while it was blocked. */
  uint64_t end = fabric_now_ms() + 5000;
  while (blocker_cancels() == before && fabric_now_ms() < end)
    fabric_sleep_ms(50);
  assert_true(blocker_cancels() > before);
}

static void test_cancel_reaches_the_driver(void **state) {
  (void)state;
  int before = blocker_cancels();
  uint32_t ms = 20000;
  rec_t r;
  rec_init(&r);
  dfnet_client_call_id_t id = 0;
  dfnet_client_call_options_t o = {.deadline_ms = 0};
  assert_int_equal(dfnet_client_call_start(F.op, "dev.lab-c.platform.block0",
                                           "/dfnet.test.Blocker/Block", &ms, 4, &o, NULL, on_done,
                                           &r, &id),
                   DFNET_STATUS_OK);
  fabric_sleep_ms(300);
  assert_int_equal(dfnet_client_call_cancel(F.op, id), DFNET_STATUS_OK);
  assert_true(rec_wait(&r, 0, 5000));
  assert_int_equal(r.status, DFNET_STATUS_CANCELLED);
  uint64_t end = fabric_now_ms() + 5000;
  while (blocker_cancels() == before && fabric_now_ms() < end)
    fabric_sleep_ms(50);
  assert_true(blocker_cancels() > before);
  fabric_sleep_ms(100);
  assert_int_equal(r.done, 1);
  rec_destroy(&r);
}

static void test_calls_to_a_removed_node(void **state) {
  (void)state;
  char reply[128];
  /* The echo driver adds a child it keeps: calls to it go to the echo driver. */
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.echo0", "/dfnet.test.Echo/AddChild", "kid",
                               3, 5000, reply, sizeof reply),
                   DFNET_STATUS_OK);
  assert_true(
      fabric_wait_node(F.op, "dev.lab-c.platform.echo0.kid", fabric_is_found, NULL, 5000, NULL));
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.echo0.kid", "/dfnet.test.Echo/Echo",
                               "via kid", 7, 5000, reply, sizeof reply),
                   DFNET_STATUS_OK);
  assert_string_equal(reply, "via kid");
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.echo0", "/dfnet.test.Echo/RemoveChild",
                               "kid", 3, 5000, NULL, 0),
                   DFNET_STATUS_OK);
  assert_true(
      fabric_wait_node(F.op, "dev.lab-c.platform.echo0.kid", fabric_is_gone, NULL, 5000, NULL));
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.echo0.kid", "/dfnet.test.Echo/Echo", "x",
                               1, 5000, NULL, 0),
                   DFNET_STATUS_NOT_FOUND);
}

/* The pid of the driver host running `moniker`'s driver, from the agent's log line
 * "<moniker>: driver host N spawned (pid P)" (the last one). */
static pid_t driver_host_pid(const char *moniker) {
  FILE *f = fopen(F.agent.log, "r");
  assert_non_null(f);
  char line[1024], needle[300];
  snprintf(needle, sizeof needle, " %s: driver host ", moniker);
  long pid = 0;
  while (fgets(line, sizeof line, f)) {
    char *at = strstr(line, needle);
    char *p = at ? strstr(at, "spawned (pid ") : NULL;
    if (p)
      pid = strtol(p + strlen("spawned (pid "), NULL, 10);
  }
  fclose(f);
  return (pid_t)pid;
}

static void test_driver_crash_mid_stream(void **state) {
  (void)state;
  fabric_node_t before;
  assert_true(
      fabric_wait_node(F.op, "dev.lab-c.platform.echoc", fabric_is_bound, NULL, WAIT_MS, &before));
  pid_t pid = driver_host_pid("dev.lab-c.platform.echoc");
  assert_true(pid > 0);
  uint8_t req[4 + 64];
  uint32_t n = 1000000; /* far more than will flow before the crash */
  memcpy(req, &n, 4);
  memset(req + 4, 'c', 64);
  rec_t r;
  rec_init(&r);
  dfnet_client_call_options_t o = {.deadline_ms = 30000, .credit = 8};
  assert_int_equal(dfnet_client_call_start(F.op, "dev.lab-c.platform.echoc",
                                           "/dfnet.test.Echo/Stream", req, sizeof req, &o,
                                           on_message, on_done, &r, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait(&r, 20, 10000)); /* the stream is flowing */
  assert_int_equal(r.done, 0);
  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_true(rec_wait(&r, 0, 10000));
  fabric_sleep_ms(200);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.status, DFNET_STATUS_UNAVAILABLE);
  print_message("calls: stream ended UNAVAILABLE after %d messages: %s\n", r.messages, r.message);
  rec_destroy(&r);
  /* host_restart_on_crash: the driver comes back and answers again. */
  char reply[16];
  uint64_t end = fabric_now_ms() + WAIT_MS;
  dfnet_status_t st;
  do {
    fabric_sleep_ms(200);
    st = fabric_call(F.op, "dev.lab-c.platform.echoc", "/dfnet.test.Echo/Echo", "up", 2, 2000,
                     reply, sizeof reply);
  } while (st != DFNET_STATUS_OK && fabric_now_ms() < end);
  assert_int_equal(st, DFNET_STATUS_OK);
}

static void test_roles(void **state) {
  (void)state;
  /* A viewer may look, not call; an operator may call, not change drivers. */
  assert_int_equal(fabric_call(F.viewer, "dev.lab-c.platform.echo0", "/dfnet.test.Echo/Echo", "v",
                               1, 5000, NULL, 0),
                   DFNET_STATUS_PERMISSION_DENIED);
  assert_true(fabric_node(F.viewer, "dev.lab-c.platform.echo0").found);
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_driver_disable(F.op, "dfnet-boot:///echo#meta/echo.json", &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  char reply[8];
  assert_int_equal(fabric_call(F.op, "dev.lab-c.platform.echo0", "/dfnet.test.Echo/Echo", "o", 1,
                               5000, reply, sizeof reply),
                   DFNET_STATUS_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_streaming_with_flow_control),
      cmocka_unit_test(test_deadline_exceeded_at_the_driver),
      cmocka_unit_test(test_cancel_reaches_the_driver),
      cmocka_unit_test(test_calls_to_a_removed_node),
      cmocka_unit_test(test_driver_crash_mid_stream),
      cmocka_unit_test(test_roles),
  };
  return cmocka_run_group_tests(tests, calls_setup, calls_teardown);
}
