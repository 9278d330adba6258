/* dfnet-driver-host and the driver runtime, end to end through the supervisor library:
 * real child processes, real socketpairs, real driver .so files (tests/drivers/).
 * Issue 6 "dfnet-driver-host and the runtime"; docs/spec/dfv2.md "Driver hosts and lifecycle".
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dfnet/driver.h"
#include "harness.h"

#define ECHO_NODE "dev.t.pci.00_01_0"

static int setup(void **state) {
  *state = h_new();
  return 0;
}

static int teardown(void **state) {
  h_free(*state);
  return 0;
}

static uint8_t *u32_prefixed(uint32_t n, const char *payload, size_t *len) {
  size_t pl = strlen(payload);
  uint8_t *b = malloc(4 + pl);
  b[0] = (uint8_t)n;
  b[1] = (uint8_t)(n >> 8);
  b[2] = (uint8_t)(n >> 16);
  b[3] = (uint8_t)(n >> 24);
  memcpy(b + 4, payload, pl);
  *len = 4 + pl;
  return b;
}

static const uint8_t *u32le(uint32_t v, uint8_t out[4]) {
  out[0] = (uint8_t)v;
  out[1] = (uint8_t)(v >> 8);
  out[2] = (uint8_t)(v >> 16);
  out[3] = (uint8_t)(v >> 24);
  return out;
}

static void test_echo_unary(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);

  uint64_t id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Echo", "hello", 5, 0, 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  assert_int_equal(r->bulk_len, 5);
  assert_memory_equal(r->bulk, "hello", 5);

  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Describe", NULL, 0, 5000, 0);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  char text[2048];
  snprintf(text, sizeof text, "%.*s", (int)r->bulk_len, (const char *)r->bulk);
  assert_string_equal(text, "moniker=" ECHO_NODE
                            ";name=00_01_0;props=1;program="
                            "{\"runner\":\"driver\",\"colocate\":\"false\"}");

  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Nope", NULL, 0, 0, 0);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_UNIMPLEMENTED);
  assert_non_null(strstr(r->message, "/dfnet.test.Echo/Nope"));

  id = h_call(h, host, "dev.t.nothing", "/dfnet.test.Echo/Echo", NULL, 0, 0, 0);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_NOT_FOUND);

  /* Cancel/StreamCredit for a call not in flight are refused at once. */
  assert_int_equal(h_cancel(h, host, 424242), DFNET_STATUS_NOT_FOUND);
  h_close_clean(h, host);
  assert_int_equal(dfnet_supervisor_late_frames(h->sup), 0);
}

/* dfnet_supervisor_cork: while corked nothing reaches the driver host, so no call can be
 * answered; uncork writes the whole batch and every call is answered, in order. */
static void test_cork_batches_sends(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  enum { N = 100 };
  uint64_t ids[N];
  dfnet_supervisor_cork(h->sup);
  dfnet_supervisor_cork(h->sup); /* twice is once */
  for (int i = 0; i < N; i++) {
    char text[16];
    int n = snprintf(text, sizeof text, "call %d", i);
    ids[i] = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Echo", text, (size_t)n, 0, 0);
  }
  h_pump(h, 200);
  for (int i = 0; i < N; i++)
    assert_int_equal(h_count_finals(h, ids[i]), 0);
  dfnet_supervisor_uncork(h->sup);
  dfnet_supervisor_uncork(h->sup); /* a no-op */
  for (int i = 0; i < N; i++) {
    rec_t *r = h_final(h, ids[i]);
    assert_non_null(r);
    assert_int_equal(r->code, DFNET_STATUS_OK);
    char text[16];
    int n = snprintf(text, sizeof text, "call %d", i);
    assert_int_equal(r->bulk_len, (size_t)n);
    assert_memory_equal(r->bulk, text, (size_t)n);
    if (i > 0)
      assert_true(h_final_index(h, ids[i - 1]) < h_final_index(h, ids[i]));
  }
}

static void test_echo_stream_credit(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  size_t len;
  uint8_t *req = u32_prefixed(100, "item", &len);
  uint64_t id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Stream", req, len, 0, 4);
  free(req);
  /* The window is 4: four items, then nothing until credit is given. */
  h_pump(h, 300);
  assert_int_equal(h_count_items(h, id), 4);
  assert_int_equal(h_count_finals(h, id), 0);
  size_t granted = 4;
  for (int round = 0; round < 200 && h_count_finals(h, id) == 0; round++) {
    if (h_count_items(h, id) == granted) {
      assert_int_equal(h_credit(h, host, id, 10), DFNET_STATUS_OK);
      granted += 10;
    }
    h_pump(h, 50);
    assert_true(h_count_items(h, id) <= granted);
  }
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  assert_int_equal(h_count_items(h, id), 100);
  for (size_t i = 0; i < h->nrecs; i++)
    if (h->recs[i].id == id && !h->recs[i].eos)
      assert_memory_equal(h->recs[i].bulk, "item", 4);
  h_pump(h, 50);
  assert_int_equal(h_count_finals(h, id), 1);
  h_close_clean(h, host);
}

static void test_stop_order(void **state) {
  harness_t *h = *state;
  char trace[] = "/tmp/dfnet-dh-trace-XXXXXX";
  int fd = mkstemp(trace);
  assert_true(fd >= 0);
  close(fd);
  const char *props[] = {"dfnet.test.TRACE", trace, NULL};
  /* the trace is handed to the driver (a sandboxed driver host opens nothing by path) */
  char program[256];
  snprintf(program, sizeof program,
           "{\"runner\":\"driver\",\"resources\":[{\"path\":\"%s\",\"access\":\"rw\"}]}", trace);
  uint64_t host = h_spawn(h);
  rec_t *started =
      h_final(h, h_start_send(h, host, ECHO_NODE, h_driver("echo"), props, program, 0));
  assert_non_null(started);
  assert_int_equal(started->code, DFNET_STATUS_OK);
  /* A stream waiting for credit while the driver stops: it ends UNAVAILABLE, once. */
  size_t len;
  uint8_t *req = u32_prefixed(50, "x", &len);
  uint64_t sid = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Stream", req, len, 0, 1);
  free(req);
  h_pump(h, 100);
  assert_int_equal(h_count_items(h, sid), 1);

  assert_int_equal(h_stop(h, host, ECHO_NODE), DFNET_STATUS_OK);
  rec_t *r = h_final(h, sid);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_UNAVAILABLE);

  FILE *f = fopen(trace, "r");
  assert_non_null(f);
  char buf[256] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  unlink(trace);
  buf[n] = '\0';
  assert_int_equal(strncmp(buf, "start\nprepare_stop\nstop streams=", 32), 0);

  /* Gone: a call is NOT_FOUND, a second stop NOT_FOUND, and it can be started again. */
  uint64_t id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Echo", "a", 1, 0, 0);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_NOT_FOUND);
  assert_int_equal(h_stop(h, host, ECHO_NODE), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  h_pump(h, 50);
  assert_int_equal(h_count_finals(h, sid), 1);
  h_close_clean(h, host);
}

static void crash_case(harness_t *h, const char *how, int expect_signal, int expect_code) {
  uint64_t victim = h_spawn(h);
  uint64_t bystander = h_spawn(h);
  assert_int_equal(h_start(h, victim, "dev.t.crasher", h_driver("crasher"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(h_start(h, bystander, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  uint64_t crash =
      h_call(h, victim, "dev.t.crasher", "/dfnet.test.Crasher/Crash", how, strlen(how), 0, 0);
  uint64_t queued = h_call(h, victim, "dev.t.crasher", "/dfnet.test.Crasher/Ping", NULL, 0, 0, 0);
  exit_rec_t *x = h_wait_exit(h, victim);
  assert_non_null(x);
  assert_int_equal(x->signal, expect_signal);
  assert_int_equal(x->exit_code, expect_code);
  assert_string_equal(x->nodes, "dev.t.crasher,");
  if (expect_signal == SIGSEGV)
    assert_string_equal(x->reason, "killed by SIGSEGV");
  /* Both calls in flight: exactly one UNAVAILABLE each, before the exit was reported. */
  rec_t *r = h_final(h, crash);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(r->message, "exited"));
  r = h_final(h, queued);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_UNAVAILABLE);
  /* The dead host refuses sends; the other one still answers. */
  assert_int_equal(h_call(h, victim, "dev.t.crasher", "/dfnet.test.Crasher/Ping", NULL, 0, 0, 0),
                   0);
  uint64_t id = h_call(h, bystander, ECHO_NODE, "/dfnet.test.Echo/Echo", "ok", 2, 0, 0);
  r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  h_pump(h, 50);
  assert_int_equal(h_count_finals(h, crash), 1);
  assert_int_equal(h_count_finals(h, queued), 1);
  h_close_clean(h, bystander);
}

static void test_crash_segv(void **state) { crash_case(*state, "segv", SIGSEGV, -1); }
static void test_crash_abort(void **state) { crash_case(*state, "abort", SIGABRT, -1); }
static void test_crash_exit(void **state) { crash_case(*state, "exit", 0, 3); }

static void test_crash_in_start(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  const char *props[] = {"dfnet.test.CRASH_IN_START", "true", NULL};
  rec_t *st = NULL;
  assert_int_equal(h_start(h, host, "dev.t.crasher", h_driver("crasher"), NULL, props, &st),
                   DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(st->message, "SIGSEGV"));
  exit_rec_t *x = h_wait_exit(h, host);
  assert_non_null(x);
  assert_int_equal(x->signal, SIGSEGV);
  assert_string_equal(x->nodes, "dev.t.crasher,");
}

static void test_wrong_api_version(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  rec_t *st = NULL;
  assert_int_equal(h_start(h, host, "dev.t.wrong", h_driver("wrong_api"), NULL, NULL, &st),
                   DFNET_STATUS_FAILED_PRECONDITION);
  char expect[160];
  snprintf(expect, sizeof expect, "built against driver API %u, this driver host speaks %u",
           DFNET_DRIVER_API_VERSION + 1, DFNET_DRIVER_API_VERSION);
  assert_non_null(strstr(st->message, expect));
  assert_non_null(strstr(st->message, "wrong_api"));
  /* The driver host is unharmed. */
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  h_close_clean(h, host);
}

static void test_bad_binaries(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  rec_t *st = NULL;
  assert_int_equal(h_start(h, host, "dev.t.a", h_driver("no_such_driver"), NULL, NULL, &st),
                   DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(st->message, "no_such_driver.so"));
  /* A file that is not a shared object: dlopen's reason. It lies where the sandboxed driver
   * host may read drivers (the build's tests/drivers), so that the open succeeds and dlopen
   * is what refuses it, whatever the modes above the build. */
  char path[600];
  snprintf(path, sizeof path, "%s/not_a_driver_%ld.so", DFNET_TEST_DRIVER_DIR, (long)getpid());
  FILE *text = fopen(path, "w");
  assert_non_null(text);
  fputs("/* not a shared object */\n", text);
  assert_int_equal(fclose(text), 0);
  assert_int_equal(chmod(path, 0644), 0);
  rec_t *st2 = NULL;
  int code = h_start(h, host, "dev.t.b", path, NULL, NULL, &st2);
  unlink(path);
  assert_int_equal(code, DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(st2->message, "cannot load driver"));
  /* A shared object without the registration symbol. */
  snprintf(path, sizeof path, "%s/tests/drivers", getenv("DFNET_SOURCE_DIR"));
  rec_t *st3 = NULL;
  code = h_start(h, host, "dev.t.c", "/lib/x86_64-linux-gnu/libm.so.6", NULL, NULL, &st3);
  assert_int_equal(code, DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(st3->message, DFNET_DRIVER_SYMBOL));
  h_close_clean(h, host);
}

/* A blocking driver must not stall another driver of the same process; calls to it queue
 * behind the blocked one. */
static void blocking_case(harness_t *h, const char *opt, const char *expect_word) {
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.blocker", h_driver("blocker"), opt, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  uint8_t ms[4];
  uint64_t block =
      h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Block", u32le(1500, ms), 4, 0, 0);
  uint64_t ping = h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Ping", NULL, 0, 0, 0);
  uint64_t echo[5];
  for (int i = 0; i < 5; i++)
    echo[i] = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Echo", "e", 1, 0, 0);
  for (int i = 0; i < 5; i++) {
    rec_t *r = h_final(h, echo[i]);
    assert_non_null(r);
    assert_int_equal(r->code, DFNET_STATUS_OK);
  }
  /* Every echo answered while the blocker still blocked. */
  assert_int_equal(h_count_finals(h, block), 0);
  rec_t *r = h_final(h, block);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  assert_int_equal(r->bulk_len, strlen(expect_word));
  assert_memory_equal(r->bulk, expect_word, r->bulk_len);
  assert_non_null(h_final(h, ping));
  assert_true(h_final_index(h, ping) > h_final_index(h, block));
  for (int i = 0; i < 5; i++)
    assert_true(h_final_index(h, echo[i]) < h_final_index(h, block));
  h_close_clean(h, host);
}

/* Every call in ids[n] is answered OK (h_final waits 10 s) while `block`, a 60 s Block,
 * still has no answer; then Cancel ends it with CANCELLED. */
static void answered_while_blocked(harness_t *h, uint64_t host, const uint64_t *ids, int n,
                                   uint64_t block) {
  for (int i = 0; i < n; i++) {
    rec_t *r = h_final(h, ids[i]);
    assert_non_null(r);
    assert_int_equal(r->code, DFNET_STATUS_OK);
  }
  assert_int_equal(h_count_finals(h, block), 0);
  assert_int_equal(h_cancel(h, host, block), DFNET_STATUS_OK);
  rec_t *r = h_final(h, block);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_CANCELLED);
}

/* A call for one idle driver runs on the link thread (link.c run_inline). When its
 * handler blocks anyway (no allow_sync_calls), the rescuer thread reads the link: other
 * drivers' calls are answered and a Cancel reaches the blocked call. */
static void test_blocking_on_link_thread_rescued(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.blocker", h_driver("blocker"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  uint8_t ms[4];
  uint64_t block =
      h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Block", u32le(60000, ms), 4, 0, 0);
  h_pump(h, 100); /* read alone, so run on the link thread, and blocking there now */
  uint64_t echo[5];
  for (int i = 0; i < 5; i++)
    echo[i] = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Echo", "e", 1, 0, 0);
  answered_while_blocked(h, host, echo, 5, block);
  /* the dispatcher's own thread takes over after the run: the driver still answers */
  uint64_t ping = h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Ping", NULL, 0, 0, 0);
  rec_t *r = h_final(h, ping);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  h_close_clean(h, host);
}

static void test_blocking_without_sync_calls(void **state) { blocking_case(*state, NULL, "slept"); }

static void test_blocking_with_sync_calls(void **state) {
  blocking_case(*state, "allow_sync_calls", "waited");
}

/* Replies a dispatcher defers while it has more tasks ready (host/driver_host/link_write.c) are
 * not held back by a task after them that blocks. Each batch is one write, so the driver
 * host reads it whole: the pings' replies are deferred behind the Block that follows.
 *   lead_ms > 0: a Block of lead_ms first, so the link thread has gone to sleep by the
 *                time the pings run (the dispatcher then writes at once);
 *   lead_ms 0:   the link thread is awake watching the busy dispatcher, and writes what
 *                waits past its bound. */
static void deferred_case(harness_t *h, uint32_t lead_ms) {
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.blocker", h_driver("blocker"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  enum { PINGS = 8 };
  uint8_t ms[4];
  uint64_t lead = 0, ping[PINGS];
  dfnet_supervisor_cork(h->sup);
  if (lead_ms > 0)
    lead =
        h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Block", u32le(lead_ms, ms), 4, 0, 0);
  for (int i = 0; i < PINGS; i++)
    ping[i] = h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Ping", NULL, 0, 0, 0);
  uint64_t block =
      h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Block", u32le(60000, ms), 4, 0, 0);
  dfnet_supervisor_uncork(h->sup);
  if (lead_ms > 0)
    assert_non_null(h_final(h, lead));
  answered_while_blocked(h, host, ping, PINGS, block);
  h_close_clean(h, host);
}

static void test_deferred_replies_not_held_by_blocking_task(void **state) {
  deferred_case(*state, 0);
  deferred_case(*state, 300);
}

static void stats_equal(harness_t *h, uint64_t host, const char *expect) {
  uint64_t id = h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Stats", NULL, 0, 0, 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  char text[64];
  snprintf(text, sizeof text, "%.*s", (int)r->bulk_len, (const char *)r->bulk);
  assert_string_equal(text, expect);
}

static void deadline_case(harness_t *h, const char *opt) {
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.blocker", h_driver("blocker"), opt, NULL, NULL),
                   DFNET_STATUS_OK);
  uint8_t ms[4];
  /* Deadline passes while the handler runs: DEADLINE_EXCEEDED, the driver's reply late. */
  uint64_t block =
      h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Block", u32le(3000, ms), 4, 200, 0);
  /* Deadline passes while queued behind it: the handler never runs. */
  uint64_t queued = h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Ping", NULL, 0, 50, 0);
  rec_t *r = h_final(h, queued);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_DEADLINE_EXCEEDED);
  r = h_final(h, block);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_DEADLINE_EXCEEDED);
  /* The driver saw its call end, replied anyway; the reply was dropped. */
  stats_equal(h, host, "cancels=1 late=1");
  h_pump(h, 100);
  assert_int_equal(h_count_finals(h, block), 1);
  assert_int_equal(h_count_finals(h, queued), 1);
  assert_int_equal(dfnet_supervisor_late_frames(h->sup), 0);
  h_close_clean(h, host);
}

static void test_deadline_without_sync_calls(void **state) { deadline_case(*state, NULL); }
static void test_deadline_with_sync_calls(void **state) {
  deadline_case(*state, "allow_sync_calls");
}

static void test_cancellation_reaches_driver(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(
      h_start(h, host, "dev.t.blocker", h_driver("blocker"), "allow_sync_calls", NULL, NULL),
      DFNET_STATUS_OK);
  /* A call the driver keeps: the cancel callback runs on its dispatcher. */
  uint64_t watch = h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Watch", NULL, 0, 0, 0);
  stats_equal(h, host, "cancels=0 late=0"); /* Watch ran: queued before Stats */
  assert_int_equal(h_cancel(h, host, watch), DFNET_STATUS_OK);
  rec_t *r = h_final(h, watch);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_CANCELLED);
  stats_equal(h, host, "cancels=1 late=1");
  /* A handler blocked in dfnet_call_wait_cancelled wakes up on Cancel. */
  uint8_t ms[4];
  uint64_t block =
      h_call(h, host, "dev.t.blocker", "/dfnet.test.Blocker/Block", u32le(60000, ms), 4, 0, 0);
  h_pump(h, 100);
  assert_int_equal(h_cancel(h, host, block), DFNET_STATUS_OK);
  r = h_final(h, block);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_CANCELLED);
  stats_equal(h, host, "cancels=2 late=2");
  /* Cancel after the end is refused by the supervisor (not in flight). */
  assert_int_equal(h_cancel(h, host, block), DFNET_STATUS_NOT_FOUND);
  h_pump(h, 50);
  assert_int_equal(h_count_finals(h, watch), 1);
  assert_int_equal(h_count_finals(h, block), 1);
  h_close_clean(h, host);
}

static void test_colocated_drivers(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.a", h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(h_start(h, host, "dev.t.b", h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(h_start(h, host, "dev.t.c", h_driver("blocker"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  rec_t *st = NULL;
  assert_int_equal(h_start(h, host, "dev.t.a", h_driver("echo"), NULL, NULL, &st),
                   DFNET_STATUS_ALREADY_EXISTS);
  const char *nodes[] = {"dev.t.a", "dev.t.b"};
  for (int i = 0; i < 2; i++) {
    uint64_t id = h_call(h, host, nodes[i], "/dfnet.test.Echo/Describe", NULL, 0, 0, 0);
    rec_t *r = h_final(h, id);
    assert_non_null(r);
    char want[64];
    snprintf(want, sizeof want, "moniker=%s;", nodes[i]);
    assert_int_equal(strncmp((const char *)r->bulk, want, strlen(want)), 0);
  }
  assert_int_equal(h_stop(h, host, "dev.t.a"), DFNET_STATUS_OK);
  uint64_t id = h_call(h, host, "dev.t.b", "/dfnet.test.Echo/Echo", "b", 1, 0, 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  /* Killing the process reports every driver that was in it. */
  assert_int_equal(dfnet_supervisor_kill(h->sup, host, SIGKILL), DFNET_STATUS_OK);
  exit_rec_t *x = h_wait_exit(h, host);
  assert_non_null(x);
  assert_int_equal(x->signal, SIGKILL);
  assert_true(strstr(x->nodes, "dev.t.b,") != NULL && strstr(x->nodes, "dev.t.c,") != NULL);
  assert_null(strstr(x->nodes, "dev.t.a,"));
}

static void test_children(void **state) {
  harness_t *h = *state;
  h->answer_node_add = true;
  h->node_add_code = DFNET_STATUS_OK;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, ECHO_NODE, h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  uint64_t id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/AddChild", "kid", 3, 0, 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  rec_t *add = h_wait_msg(h, dfnet_v1_Envelope_node_add_tag, 0);
  assert_non_null(add);
  assert_string_equal(add->parent, ECHO_NODE);
  assert_string_equal(add->name, "kid");
  assert_string_equal(add->class_name, "echo");
  assert_int_equal(add->nprops, 2);
  assert_true(add->owned);
  /* Same name again, a bad name: refused locally. */
  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/AddChild", "kid", 3, 0, 0);
  assert_int_equal(h_final(h, id)->code, DFNET_STATUS_ALREADY_EXISTS);
  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/AddChild", "a.b", 3, 0, 0);
  assert_int_equal(h_final(h, id)->code, DFNET_STATUS_INVALID_ARGUMENT);
  /* The manager refuses one: the driver hears it. */
  h->node_add_code = DFNET_STATUS_ALREADY_EXISTS;
  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/AddChild", "other", 5, 0, 0);
  assert_int_equal(h_final(h, id)->code, DFNET_STATUS_ALREADY_EXISTS);
  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/RemoveChild", "kid", 3, 0, 0);
  assert_int_equal(h_final(h, id)->code, DFNET_STATUS_OK);
  rec_t *rm = h_wait_msg(h, dfnet_v1_Envelope_node_remove_tag, 0);
  assert_non_null(rm);
  assert_string_equal(rm->moniker, ECHO_NODE ".kid");
  id = h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/RemoveChild", "kid", 3, 0, 0);
  assert_int_equal(h_final(h, id)->code, DFNET_STATUS_NOT_FOUND);
  h_close_clean(h, host);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_echo_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cork_batches_sends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_echo_stream_credit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_segv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_exit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_in_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_api_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_binaries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blocking_without_sync_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blocking_on_link_thread_rescued, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blocking_with_sync_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deferred_replies_not_held_by_blocking_task, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_deadline_without_sync_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_with_sync_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancellation_reaches_driver, setup, teardown),
      cmocka_unit_test_setup_teardown(test_colocated_drivers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_children, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
