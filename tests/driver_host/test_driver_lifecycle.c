/* The driver lifecycle in dfnet-driver-host (issue 19 "Driver lifecycle and control as the
 * seeds describe it"; include/dfnet/driver.h "Asynchronous start", `suspend`, `resume`), end
 * to end through the supervisor: real driver host processes, real socketpairs, the
 * lifecycle test driver (tests/drivers/lifecycle.c: its trace file shows which hooks ran, in
 * order) and late_start (tests/driver_host/late_start.c: the API's misuses).
 *
 *   async_start        the DriverStart's Status comes when the start completes, not when
 *                      `start` returns; meanwhile calls end UNAVAILABLE and the child added
 *                      during the start reaches the agent; then calls are served.
 *   start_fails        an asynchronous start completed with an error: the driver is stopped
 *                      (prepare_stop, stop) before the error is answered; a synchronous
 *                      start's error runs no other hook.
 *   start_timeout      start_timeout_ms: DEADLINE_EXCEEDED "start did not complete within N
 *                      ms", the driver stopped; a late start_complete (and the other
 *                      misuses) FAILED_PRECONDITION / INVALID_ARGUMENT; a DriverStop during
 *                      an asynchronous start answers the start CANCELLED.
 *   suspend_resume     the hooks run with the flags; calls to a suspended driver end
 *                      UNAVAILABLE "suspended"; suspending twice, resuming a running driver,
 *                      a starting driver or an unknown node: FAILED_PRECONDITION; a hook's
 *                      error is answered and leaves the driver running; a suspended driver
 *                      stops as usual.
 *   suspended_local    a driver's in-process call to a suspended driver ends UNAVAILABLE (and
 *                      leaves its client OK); served again once resumed.
 *   v1_driver          a driver built against API version 1 loads, runs, and suspends and
 *                      resumes as NULL hooks (its hooks behind the v1 table are never read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dfnet/driver.h"
#include "harness.h"

#define NODE "dev.t.lc"
#define NODE2 "dev.t.lc2"

/* The fixture's files, which the drivers write through descriptors they are handed (a
 * sandboxed driver host opens nothing by path: tests/drivers/test_file.h). */
static const char *g_trace, *g_result;

typedef struct fixture {
  harness_t *h;
  char trace[64];
  char result[64];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->h = h_new();
  snprintf(f->trace, sizeof f->trace, "/tmp/dfnet-lc-trace-XXXXXX");
  snprintf(f->result, sizeof f->result, "/tmp/dfnet-lc-result-XXXXXX");
  int a = mkstemp(f->trace), b = mkstemp(f->result);
  if (a < 0 || b < 0)
    return -1;
  close(a);
  close(b);
  g_trace = f->trace;
  g_result = f->result;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  h_free(f->h); /* every driver host is stopped (SIGKILL after its grace) */
  unlink(f->trace);
  unlink(f->result);
  free(f);
  return 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The whole file (static buffer; "" when missing). */
static const char *slurp(const char *path) {
  static char buf[8192];
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return buf;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* The lifecycle driver's program JSON with `config` (an object's members, without braces),
 * the trace file among its resources. */
static const char *program(const char *config) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"runner\":\"driver\",\"config\":{%s},"
           "\"resources\":[{\"path\":\"%s\",\"access\":\"rw\"}]}",
           config, g_trace);
  return buf;
}

/* late_start's program: the result file among its resources. */
static const char *late_program(void) {
  static char buf[256];
  snprintf(buf, sizeof buf, "{\"resources\":[{\"path\":\"%s\",\"access\":\"rw\"}]}", g_result);
  return buf;
}

/* A unary call's final code; its reply bytes (or message) into out. */
static int call_text(harness_t *h, uint64_t host, const char *node, const char *method,
                     const char *req, char *out, size_t cap) {
  uint64_t id = h_call(h, host, node, method, req, req != NULL ? strlen(req) : 0, 5000, 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  if (r->bulk_len > 0)
    snprintf(out, cap, "%.*s", (int)r->bulk_len, (const char *)r->bulk);
  else
    snprintf(out, cap, "%s", r->message);
  return r->code;
}

static int ping(harness_t *h, uint64_t host, const char *node, char *out, size_t cap) {
  return call_text(h, host, node, "/dfnet.test.Lifecycle/Ping", NULL, out, cap);
}

/* A synchronous lifecycle start on node with the trace (and extra config members). */
static void start_sync(fixture_t *f, uint64_t host, const char *node, const char *so,
                       const char *extra) {
  char config[700];
  snprintf(config, sizeof config, "\"trace\":\"%s\"%s%s", f->trace, extra ? "," : "",
           extra ? extra : "");
  uint64_t id = h_start_send(f->h, host, node, so, NULL, program(config), 0);
  assert_true(id != 0);
  rec_t *r = h_final(f->h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
}

/* ---- the asynchronous start ------------------------------------------------------------ */

static void test_async_start(void **state) {
  fixture_t *f = *state;
  harness_t *h = f->h;
  h->answer_node_add = true;
  h->node_add_code = DFNET_STATUS_OK;
  uint64_t host = h_spawn(h);
  char config[600], out[512];
  snprintf(config, sizeof config, "\"start_delay_ms\":400,\"child\":\"kid\",\"trace\":\"%s\"",
           f->trace);
  long long t0 = now_ms();
  uint64_t id = h_start_send(h, host, NODE, h_driver("lifecycle"), NULL, program(config), 10000);
  assert_true(id != 0);
  /* `start` has returned (it traced) but the start is not complete: no Status yet, calls
   * end UNAVAILABLE, the child it added reached the agent. */
  rec_t *add = h_wait_msg(h, dfnet_v1_Envelope_node_add_tag, 0);
  assert_non_null(add);
  assert_string_equal(add->parent, NODE);
  assert_string_equal(add->name, "kid");
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(out, "starting"));
  assert_string_equal(slurp(f->trace), "start " NODE "\n");
  assert_true(now_ms() - t0 < 400);
  assert_int_equal(h_count_finals(h, id), 0);

  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  assert_true(now_ms() - t0 >= 400);
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "pong");

  assert_int_equal(h_stop(h, host, NODE), DFNET_STATUS_OK);
  assert_string_equal(slurp(f->trace), "start " NODE "\nprepare_stop " NODE "\nstop " NODE "\n");
  h_close_clean(h, host);
  assert_int_equal(dfnet_supervisor_late_frames(h->sup), 0);
}

static void test_start_fails(void **state) {
  fixture_t *f = *state;
  harness_t *h = f->h;
  uint64_t host = h_spawn(h);
  char config[600], out[512];

  /* Asynchronous, completed NOT_FOUND: stopped first (prepare_stop, stop), then answered. */
  snprintf(config, sizeof config,
           "\"start_delay_ms\":100,\"start_status\":\"NOT_FOUND\",\"trace\":\"%s\"", f->trace);
  uint64_t id = h_start_send(h, host, NODE, h_driver("lifecycle"), NULL, program(config), 10000);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(r->message, "failed to start on " NODE));
  assert_string_equal(slurp(f->trace), "start " NODE "\nprepare_stop " NODE "\nstop " NODE "\n");
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_NOT_FOUND);

  /* Synchronous, returned FAILED_PRECONDITION: no other hook runs. The node is free. */
  assert_int_equal(truncate(f->trace, 0), 0);
  snprintf(config, sizeof config, "\"start_status\":\"FAILED_PRECONDITION\",\"trace\":\"%s\"",
           f->trace);
  id = h_start_send(h, host, NODE, h_driver("lifecycle"), NULL, program(config), 10000);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_FAILED_PRECONDITION);
  h_pump(h, 100);
  assert_string_equal(slurp(f->trace), "start " NODE "\n");

  /* The driver host is unharmed and the node free again. */
  start_sync(f, host, NODE, h_driver("lifecycle"), NULL);
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_OK);
  h_close_clean(h, host);
}

static void test_start_timeout(void **state) {
  fixture_t *f = *state;
  harness_t *h = f->h;
  uint64_t host = h_spawn(h);
  char config[600], out[512];

  snprintf(config, sizeof config, "\"start_delay_ms\":5000,\"trace\":\"%s\"", f->trace);
  long long t0 = now_ms();
  uint64_t id = h_start_send(h, host, NODE, h_driver("lifecycle"), NULL, program(config), 200);
  rec_t *r = h_final(h, id);
  long long took = now_ms() - t0;
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_string_equal(r->message, "start did not complete within 200 ms");
  assert_true(took >= 200 && took < 3000);
  assert_string_equal(slurp(f->trace), "start " NODE "\nprepare_stop " NODE "\nstop " NODE "\n");
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_NOT_FOUND);

  /* The API's misuses, and a start_complete after the timeout. */
  const char *props[] = {"dfnet.test.RESULT", f->result, NULL};
  id = h_start_send(h, host, NODE2, DFNET_LATE_SO, props, late_program(), 150);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_string_equal(slurp(f->result),
                      "async_again=FAILED_PRECONDITION;bad_status="
                      "INVALID_ARGUMENT;outside=FAILED_PRECONDITION;"
                      "late=FAILED_PRECONDITION\n");
  const char *sync_props[] = {"dfnet.test.RESULT", f->result, "dfnet.test.SYNC", "true", NULL};
  id = h_start_send(h, host, NODE2, DFNET_LATE_SO, sync_props, late_program(), 0);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  assert_string_equal(slurp(f->result), "sync_complete=FAILED_PRECONDITION\n");

  /* A DriverStop while an asynchronous start runs: the start is answered CANCELLED. */
  assert_int_equal(truncate(f->trace, 0), 0);
  id = h_start_send(h, host, NODE, h_driver("lifecycle"), NULL, program(config), 10000);
  h_pump(h, 100);
  assert_int_equal(h_count_finals(h, id), 0);
  assert_int_equal(h_stop(h, host, NODE), DFNET_STATUS_OK);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_CANCELLED);
  assert_string_equal(slurp(f->trace), "start " NODE "\nprepare_stop " NODE "\nstop " NODE "\n");
  h_close_clean(h, host);
  assert_int_equal(dfnet_supervisor_late_frames(h->sup), 0);
}

/* ---- suspend and resume ------------------------------------------------------------------ */

static void test_suspend_resume(void **state) {
  fixture_t *f = *state;
  harness_t *h = f->h;
  uint64_t host = h_spawn(h);
  char out[512];
  rec_t *r = NULL;
  start_sync(f, host, NODE, h_driver("lifecycle"), NULL);

  assert_int_equal(h_control(h, host, NODE, false, DFNET_SUSPEND_FLAG_REBOOT, NULL),
                   DFNET_STATUS_OK);
  assert_string_equal(slurp(f->trace), "start " NODE "\nsuspend " NODE " 0xdcdc0100\n");
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_UNAVAILABLE);
  assert_string_equal(out, "suspended");
  assert_int_equal(h_control(h, host, NODE, false, DFNET_SUSPEND_FLAG_REBOOT, &r),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r->message, "suspended already"));

  assert_int_equal(h_control(h, host, NODE, true, 0, NULL), DFNET_STATUS_OK);
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "pong");
  assert_int_equal(h_control(h, host, NODE, true, 0, &r), DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r->message, "not suspended"));
  assert_int_equal(h_control(h, host, "dev.t.none", false, 0, NULL),
                   DFNET_STATUS_FAILED_PRECONDITION);

  /* A suspended driver stops as usual. */
  assert_int_equal(h_control(h, host, NODE, false, DFNET_SUSPEND_FLAG_SUSPEND_RAM, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(h_stop(h, host, NODE), DFNET_STATUS_OK);
  assert_string_equal(slurp(f->trace),
                      "start " NODE "\nsuspend " NODE " 0xdcdc0100\nresume " NODE "\nsuspend " NODE
                      " 0xdcdc0400\nprepare_stop " NODE "\nstop " NODE "\n");

  /* A suspend hook's error is answered; the driver keeps running. */
  assert_int_equal(truncate(f->trace, 0), 0);
  start_sync(f, host, NODE2, h_driver("lifecycle"), "\"suspend_status\":\"INTERNAL\"");
  assert_int_equal(h_control(h, host, NODE2, false, DFNET_SUSPEND_FLAG_POWEROFF, &r),
                   DFNET_STATUS_INTERNAL);
  assert_non_null(strstr(r->message, "suspend hook"));
  assert_string_equal(slurp(f->trace), "start " NODE2 "\nsuspend " NODE2 " 0xdcdc0200\n");
  assert_int_equal(ping(h, host, NODE2, out, sizeof out), DFNET_STATUS_OK);

  /* A driver whose start has not completed cannot be suspended. */
  char config[600];
  snprintf(config, sizeof config, "\"start_delay_ms\":5000");
  uint64_t id = h_start_send(h, host, NODE, h_driver("lifecycle"), NULL, program(config), 10000);
  h_pump(h, 100);
  assert_int_equal(h_control(h, host, NODE, false, 0, &r), DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r->message, "start has not completed"));
  assert_int_equal(h_count_finals(h, id), 0);
  h_close_clean(h, host);
}

/* dfnet.test.Child/Run of the child test driver: its reply text. */
static void child_run(harness_t *h, uint64_t host, const char *node, const char *req, char *out,
                      size_t cap) {
  assert_int_equal(call_text(h, host, node, "/dfnet.test.Child/Run", req, out, cap),
                   DFNET_STATUS_OK);
}

static void test_suspended_local(void **state) {
  fixture_t *f = *state;
  harness_t *h = f->h;
  h->answer_node_add = true;
  h->node_add_code = DFNET_STATUS_OK;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.parent", h_driver("parent"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  const char *const offered[][3] = {{"dfnet.test.Echo", "default", "dev.t.parent"}};
  assert_int_equal(
      h_start_offered(h, host, "dev.t.parent.child", h_driver("child"), NULL, offered, 1, NULL),
      DFNET_STATUS_OK);
  char out[1024];
  child_run(h, host, "dev.t.parent.child", "method=Echo;payload=x", out, sizeof out);
  assert_non_null(strstr(out, "status=OK"));

  /* echo has no suspend hook: suspended all the same (a NULL hook is OK). */
  assert_int_equal(h_control(h, host, "dev.t.parent", false, DFNET_SUSPEND_FLAG_SUSPEND_RAM, NULL),
                   DFNET_STATUS_OK);
  child_run(h, host, "dev.t.parent.child", "method=Echo;payload=x", out, sizeof out);
  assert_non_null(strstr(out, "status=UNAVAILABLE"));
  assert_non_null(strstr(out, "client=OK")); /* suspended is not gone */
  assert_int_equal(h_control(h, host, "dev.t.parent", true, 0, NULL), DFNET_STATUS_OK);
  child_run(h, host, "dev.t.parent.child", "method=Echo;payload=y", out, sizeof out);
  assert_non_null(strstr(out, "status=OK"));
  assert_non_null(strstr(out, "data=y"));
  h_close_clean(h, host);
}

static void test_v1_driver(void **state) {
  fixture_t *f = *state;
  harness_t *h = f->h;
  uint64_t host = h_spawn(h);
  char out[512];
  start_sync(f, host, NODE, h_driver("lifecycle_v1"), NULL);
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_OK);
  assert_int_equal(h_control(h, host, NODE, false, DFNET_SUSPEND_FLAG_REBOOT, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(h_control(h, host, NODE, true, 0, NULL), DFNET_STATUS_OK);
  assert_int_equal(ping(h, host, NODE, out, sizeof out), DFNET_STATUS_OK);
  assert_int_equal(h_stop(h, host, NODE), DFNET_STATUS_OK);
  /* its suspend and resume (behind the version-1 table) never ran */
  assert_string_equal(slurp(f->trace), "start " NODE "\nprepare_stop " NODE "\nstop " NODE "\n");
  h_close_clean(h, host);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_async_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_suspend_resume, setup, teardown),
      cmocka_unit_test_setup_teardown(test_suspended_local, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_driver, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
