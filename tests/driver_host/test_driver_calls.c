/* Drivers that call drivers, in dfnet-driver-host (issue 18 "Drivers that talk to drivers";
 * include/dfnet/driver.h "Calling another driver"): the parent test driver (tests/drivers/
 * echo.c built as "parent": dfnet.test.Echo, and a child node offered it) and the child
 * test driver (tests/drivers/child.c: it connects to that offer and calls it when the test
 * calls its dfnet.test.Child/Run). The harness plays the host agent: it crafts DriverStart
 * with `offered`, and answers the calls the driver host sends up the link itself.
 *
 *   colocated   parent and child in one driver host: the call is handed to the parent's
 *               dispatcher (nothing on the link); unary, caller fields, streaming with
 *               credit, deadline, cancel, the parent stopped mid-stream, the child stopped
 *               with a call in flight;
 *   remote      the offer's source is elsewhere: the driver host's own Call on the link
 *               (its id space, the caller named), Replies, StreamCredit, the deadline at
 *               this hop, Cancel, a Reply UNAVAILABLE versus the agent's Status UNAVAILABLE;
 *   connect     no offer, or none for the instance asked: the child's start fails NOT_FOUND.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dfnet/driver.h"
#include "harness.h"

#define PARENT "dev.t.parent"
#define CHILD "dev.t.parent.child"
#define ELSEWHERE "dev.t.elsewhere"
#define CHILD_URL "dfnet-test://child.so"
#define OWN_ID_BIT (1ull << 63)

static int setup(void **state) {
  *state = h_new();
  return 0;
}

static int teardown(void **state) {
  h_free(*state);
  return 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The parent on PARENT in parent_host (it adds CHILD, which the harness accepts), the child
 * on CHILD in child_host, offered dfnet.test.Echo from `source`. */
static void start_pair(harness_t *h, uint64_t parent_host, uint64_t child_host,
                       const char *source) {
  h->answer_node_add = true;
  h->node_add_code = DFNET_STATUS_OK;
  if (parent_host != 0) {
    assert_int_equal(h_start(h, parent_host, PARENT, h_driver("parent"), NULL, NULL, NULL),
                     DFNET_STATUS_OK);
    rec_t *add = h_wait_msg(h, dfnet_v1_Envelope_node_add_tag, 0);
    assert_non_null(add);
    assert_string_equal(add->name, "child");
    assert_true((add->id & OWN_ID_BIT) != 0); /* the driver host's own id space */
  }
  const char *const offered[][3] = {{"dfnet.test.Echo", "default", source}};
  assert_int_equal(h_start_offered(h, child_host, CHILD, h_driver("child"), NULL, offered, 1, NULL),
                   DFNET_STATUS_OK);
}

/* A unary call of `node`'s `method`; its reply's bytes as a string (static buffer). */
static const char *ask(harness_t *h, uint64_t host, const char *node, const char *method,
                       const char *text) {
  static char out[4096];
  uint64_t id = h_call(h, host, node, method, text, strlen(text), 0, 0);
  assert_true(id != 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  snprintf(out, sizeof out, "%.*s", (int)r->bulk_len, (const char *)r->bulk);
  return out;
}

static const char *run(harness_t *h, uint64_t host, const char *text) {
  return ask(h, host, CHILD, "/dfnet.test.Child/Run", text);
}

static const char *parent_stats(harness_t *h, uint64_t host) {
  return ask(h, host, PARENT, "/dfnet.test.Echo/Stats", "");
}

/* Does `text` hold `part`? (The failure message shows both.) */
static void has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("\"%s\" does not hold \"%s\"", text, part);
}

static size_t count_which(harness_t *h, pb_size_t which) {
  size_t n = 0;
  for (size_t i = 0; i < h->nrecs; i++)
    n += h->recs[i].which == which;
  return n;
}

/* ---- colocated ------------------------------------------------------------------------ */

static void test_colocated_unary_and_caller(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, host, host, PARENT);
  const char *r = run(h, host, "method=Echo;payload=hello");
  has(r, "status=OK;");
  has(r, "data=hello");
  /* The serving driver sees the calling driver: its node and URL. */
  r = run(h, host, "method=WhoCalls");
  has(r, "status=OK;");
  has(r, "data=caller=" CHILD ";url=" CHILD_URL);
  has(parent_stats(h, host), "whocalls=1 last=" CHILD ";" CHILD_URL);
  /* ... and a remote client's call (the agent's caller, no driver URL) apart from it. */
  uint64_t id = h_call(h, host, PARENT, "/dfnet.test.Echo/WhoCalls", NULL, 0, 0, 0);
  rec_t *w = h_final(h, id);
  assert_non_null(w);
  assert_int_equal(w->bulk_len, strlen("caller=;url="));
  /* The offer as the child sees it, and a method the parent does not serve. */
  assert_string_equal(ask(h, host, CHILD, "/dfnet.test.Child/Offer", ""),
                      "n=1;0=dfnet.test.Echo,default," PARENT);
  has(run(h, host, "method=Nope"), "status=UNIMPLEMENTED;");
  /* All of it in the process: no Call went up the link. */
  assert_int_equal(count_which(h, dfnet_v1_Envelope_call_tag), 0);
  h_close_clean(h, host);
}

static void test_colocated_stream_credit(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, host, host, PARENT);
  /* Credit given as the window fills: every item, none beyond the credit given. */
  const char *r = run(h, host, "method=Stream;count=100;credit=4;grant=1;payload=ab");
  has(r, "status=OK;items=100;violations=0;");
  /* No more credit: the parent waits after the window (3 items) until the deadline. */
  r = run(h, host, "method=Stream;count=10;credit=3;deadline=300;payload=x");
  has(r, "status=DEADLINE_EXCEEDED;items=3;violations=0;");
  /* The default window is 16. */
  r = run(h, host, "method=Stream;count=40;deadline=300;payload=x");
  has(r, "status=DEADLINE_EXCEEDED;items=16;");
  assert_int_equal(count_which(h, dfnet_v1_Envelope_call_tag), 0);
  h_close_clean(h, host);
}

static void test_colocated_deadline_and_cancel(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, host, host, PARENT);
  /* The deadline ends the parent's call on time: made while the link thread ran the child
   * (it looks at the deadlines next), and made from the child's dispatcher thread later
   * while the link thread sleeps (it is woken for the new deadline). */
  long long t0 = now_ms();
  const char *r = run(h, host, "method=Hold;deadline=150");
  long long took = now_ms() - t0;
  has(r, "status=DEADLINE_EXCEEDED;");
  assert_true(took >= 140 && took < 1500);
  t0 = now_ms();
  r = run(h, host, "method=Hold;deadline=150;delay=100");
  took = now_ms() - t0;
  has(r, "status=DEADLINE_EXCEEDED;");
  assert_true(took >= 240 && took < 1500);
  /* The child cancels: CANCELLED for the child, and the parent learns of it. */
  r = run(h, host, "method=Hold;cancel_ms=100");
  has(r, "status=CANCELLED;");
  r = run(h, host, "method=Stream;count=50;credit=2;cancel_after=2;payload=y");
  has(r, "status=CANCELLED;items=2;");
  h_pump(h, 100);
  has(parent_stats(h, host), "held=3 cancelled=1 deadline=2 unavailable=0");
  has(run(h, host, "method=Echo;payload=still"), "status=OK;");
  h_close_clean(h, host);
}

static void test_colocated_parent_stopped_mid_stream(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, host, host, PARENT);
  assert_string_equal(ask(h, host, CHILD, "/dfnet.test.Child/Status", ""), "client=OK");
  const char *stream = "method=Stream;count=100;credit=2;payload=z";
  uint64_t id = h_call(h, host, CHILD, "/dfnet.test.Child/Run", stream, strlen(stream), 0, 0);
  h_pump(h, 200);
  assert_int_equal(h_count_finals(h, id), 0); /* stalled after 2 items, waiting for credit */
  assert_int_equal(h_stop(h, host, PARENT), DFNET_STATUS_OK);
  rec_t *f = h_final(h, id);
  assert_non_null(f);
  char text[512];
  snprintf(text, sizeof text, "%.*s", (int)f->bulk_len, (const char *)f->bulk);
  has(text, "status=UNAVAILABLE;items=2;violations=0;client=UNAVAILABLE;");
  assert_string_equal(ask(h, host, CHILD, "/dfnet.test.Child/Status", ""), "client=UNAVAILABLE");
  /* Calls now fail at once. */
  assert_string_equal(run(h, host, "method=Echo;payload=x"),
                      "start=UNAVAILABLE;client=UNAVAILABLE");
  h_close_clean(h, host);
}

static void test_child_stop_cancels_its_calls(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, host, host, PARENT);
  uint64_t id = h_call(h, host, CHILD, "/dfnet.test.Child/Run", "method=Hold", 11, 0, 0);
  assert_true(id != 0);
  for (int i = 0; i < 100 && strstr(parent_stats(h, host), "held=1") == NULL; i++)
    h_pump(h, 10);
  has(parent_stats(h, host), "held=1 cancelled=0");
  /* The child closes its client in `stop`: the parent's call is cancelled. */
  assert_int_equal(h_stop(h, host, CHILD), DFNET_STATUS_OK);
  rec_t *f = h_final(h, id);
  assert_non_null(f);
  assert_int_equal(f->code, DFNET_STATUS_UNAVAILABLE); /* the test's call: the child stopped */
  h_pump(h, 50);
  has(parent_stats(h, host), "held=1 cancelled=1 deadline=0 unavailable=0");
  h_close_clean(h, host);
}

/* ---- remote: through the link ----------------------------------------------------------- */

/* Start a Run and wait for the driver host's Call it makes (returned). */
static rec_t *run_up(harness_t *h, uint64_t host, const char *text, uint64_t *run_id,
                     size_t calls_before) {
  *run_id = h_call(h, host, CHILD, "/dfnet.test.Child/Run", text, strlen(text), 0, 0);
  assert_true(*run_id != 0);
  rec_t *c = h_wait_msg(h, dfnet_v1_Envelope_call_tag, calls_before);
  assert_non_null(c);
  return c;
}

static const char *run_result(harness_t *h, uint64_t run_id) {
  static char out[2048];
  rec_t *f = h_final(h, run_id);
  assert_non_null(f);
  assert_int_equal(f->code, DFNET_STATUS_OK);
  snprintf(out, sizeof out, "%.*s", (int)f->bulk_len, (const char *)f->bulk);
  return out;
}

static void test_remote_unary_and_stream(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, 0, host, ELSEWHERE);
  uint64_t run_id;
  rec_t *c = run_up(h, host, "method=Echo;deadline=5000;payload=hi", &run_id, 0);
  uint64_t cid = c->id;
  assert_true((cid & OWN_ID_BIT) != 0);
  assert_string_equal(c->target, ELSEWHERE);
  assert_string_equal(c->method, "/dfnet.test.Echo/Echo");
  assert_string_equal(c->caller, CHILD); /* named; the agent checks it and sets it again */
  assert_string_equal(c->caller_driver_url, "");
  assert_true(c->deadline_ms > 4000 && c->deadline_ms <= 5000);
  assert_int_equal(c->bulk_len, 2);
  assert_memory_equal(c->bulk, "hi", 2);
  assert_int_equal(h_reply(h, host, cid, DFNET_STATUS_OK, NULL, true, "pong", 4), DFNET_STATUS_OK);
  const char *r = run_result(h, run_id);
  has(r, "status=OK;");
  has(r, "data=pong");

  /* Streaming: the window goes up in the Call, the credit comes back as StreamCredit. */
  c = run_up(h, host, "method=Stream;count=3;credit=2;grant=1;payload=q", &run_id, 1);
  cid = c->id;
  assert_int_equal(c->credit, 2);
  h_reply(h, host, cid, DFNET_STATUS_OK, NULL, false, "q1", 2);
  h_reply(h, host, cid, DFNET_STATUS_OK, NULL, false, "q2", 2);
  rec_t *credit = h_wait_id(h, dfnet_v1_Envelope_stream_credit_tag, cid, 0, 5000);
  assert_non_null(credit);
  assert_int_equal(credit->credit, 2);
  h_reply(h, host, cid, DFNET_STATUS_OK, NULL, false, "q3", 2);
  h_reply(h, host, cid, DFNET_STATUS_OK, "done", true, NULL, 0);
  has(run_result(h, run_id), "status=OK;items=3;violations=0;client=OK;msg=done;");
  /* A late answer for a call that ended is dropped; the next call works. */
  h_reply(h, host, cid, DFNET_STATUS_OK, NULL, true, NULL, 0);
  c = run_up(h, host, "method=Echo;payload=again", &run_id, 2);
  h_reply(h, host, c->id, DFNET_STATUS_OK, NULL, true, "again", 5);
  has(run_result(h, run_id), "status=OK;items=0;violations=0;client=OK;msg=;data=again");
  h_close_clean(h, host);
}

static void test_remote_deadline_cancel_unavailable(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  start_pair(h, 0, host, ELSEWHERE);
  /* Nobody answers: this hop ends the call at its deadline and cancels it upstream; also
   * when the call is made while the link thread sleeps (delay). */
  const char *holds[] = {"method=Hold;deadline=200", "method=Hold;deadline=200;delay=100"};
  long long least[] = {190, 290};
  uint64_t run_id;
  for (size_t i = 0; i < 2; i++) {
    long long t0 = now_ms();
    rec_t *c = run_up(h, host, holds[i], &run_id, i);
    uint64_t cid = c->id;
    has(run_result(h, run_id), "status=DEADLINE_EXCEEDED;");
    long long took = now_ms() - t0;
    assert_true(took >= least[i] && took < 2000);
    rec_t *cancel = h_wait_id(h, dfnet_v1_Envelope_cancel_tag, cid, 0, 5000);
    assert_non_null(cancel);
  }
  /* The child cancels: Cancel with the call's id goes up. */
  rec_t *c = run_up(h, host, "method=Hold;cancel_ms=50", &run_id, 2);
  uint64_t cid = c->id;
  has(run_result(h, run_id), "status=CANCELLED;");
  assert_non_null(h_wait_id(h, dfnet_v1_Envelope_cancel_tag, cid, 0, 5000));
  /* A Reply UNAVAILABLE is the serving driver's answer: the client stays OK. */
  c = run_up(h, host, "method=Echo;payload=a", &run_id, 3);
  h_reply(h, host, c->id, DFNET_STATUS_UNAVAILABLE, "device busy", true, NULL, 0);
  has(run_result(h, run_id), "status=UNAVAILABLE;items=0;violations=0;client=OK;msg=device busy");
  /* The agent's Status UNAVAILABLE: the serving driver is gone, the client too. */
  c = run_up(h, host, "method=Echo;payload=b", &run_id, 4);
  h_status(h, host, c->id, DFNET_STATUS_UNAVAILABLE, "no driver runs on " ELSEWHERE);
  has(run_result(h, run_id), "status=UNAVAILABLE;items=0;violations=0;client=UNAVAILABLE;");
  assert_string_equal(run(h, host, "method=Echo;payload=c"),
                      "start=UNAVAILABLE;client=UNAVAILABLE");
  h_pump(h, 50);
  assert_int_equal(count_which(h, dfnet_v1_Envelope_call_tag), 5); /* none for the last */
  h_close_clean(h, host);
}

/* ---- connect -------------------------------------------------------------------------- */

static void test_connect_needs_the_offer(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  rec_t *st = NULL;
  assert_int_equal(h_start(h, host, PARENT ".a", h_driver("child"), NULL, NULL, &st),
                   DFNET_STATUS_NOT_FOUND);
  has(st->message, "no dfnet.test.Echo offered: NOT_FOUND");
  /* An offer of another instance is not the one asked for ... */
  const char *const other[][3] = {{"dfnet.test.Echo", "other", PARENT}};
  assert_int_equal(h_start_offered(h, host, PARENT ".b", h_driver("child"), NULL, other, 1, &st),
                   DFNET_STATUS_NOT_FOUND);
  /* ... until the child asks for that instance. */
  const char *props[] = {"dfnet.test.INSTANCE", "other", NULL};
  assert_int_equal(h_start_offered(h, host, CHILD, h_driver("child"), props, other, 1, NULL),
                   DFNET_STATUS_OK);
  assert_string_equal(ask(h, host, CHILD, "/dfnet.test.Child/Offer", ""),
                      "n=1;0=dfnet.test.Echo,other," PARENT);
  h_close_clean(h, host);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_colocated_unary_and_caller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_colocated_stream_credit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_colocated_deadline_and_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_colocated_parent_stopped_mid_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_child_stop_cancels_its_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remote_unary_and_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remote_deadline_cancel_unavailable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connect_needs_the_offer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
