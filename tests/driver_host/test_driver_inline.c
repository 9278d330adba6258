/* Calls between two drivers of one driver host run inline (include/dfnet/driver.h "Threads";
 * host/driver_host/dispatcher.c; Fuchsia's driver runtime, "Driver dispatcher performance"):
 * the inline_peer test driver (tests/driver_host/inline_peer.c) on two nodes, each offered
 * the other's dfnet.test.Peer, in one real dfnet-driver-host. Every callback of inline_peer
 * counts those that began while another callback of the same driver ran (nested or on
 * another thread) or off its dispatcher: every test ends with both at 0.
 *
 *   inline      an idle callee's handler runs on the caller's thread, before the call
 *               returns; its reply comes after the calling callback returned;
 *   busy        a callee running a callback is not entered: the call queues, completes after
 *               it, and its reply reaches the idle caller on the callee's thread;
 *   callback    A -> B -> A -> ...: no deadlock, never a reentered dispatcher;
 *   stream      credit window kept, inline and from the callee's own thread;
 *   deadline / cancel   as for a queued call; the cancel callback runs on the cancelling
 *               thread;
 *   sync        a callee with allow_sync_calls keeps its own thread; a caller with it
 *               still calls an idle callee inline.
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

#include "harness.h"

#define A "dev.t.a"
#define B "dev.t.b"

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

/* Start inline_peer on `node`, offered dfnet.test.Peer from `other` (allow_sync_calls when
 * `sync`), and wait for its Status. */
static void start_peer(harness_t *h, uint64_t host, const char *node, const char *other,
                       bool sync) {
  static const char program[] = "{\"runner\":\"driver\",\"colocate\":\"false\"}";
  const char *so = DFNET_PEER_SO;
  dfnet_envelope_t *e = h->env;
  uint64_t id = h->next_id++;
  dfnet_envelope_init(e);
  e->pb.id = id;
  e->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &e->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", node);
  snprintf(m->url, sizeof m->url, "dfnet-test://%s", strrchr(so, '/') + 1);
  snprintf(m->binary, sizeof m->binary, "%s", strrchr(so, '/') + 1);
  snprintf(m->local_path, sizeof m->local_path, "%.*s", (int)(strrchr(so, '/') - so), so);
  if (sync) {
    m->dispatcher_opts_count = 1;
    snprintf(m->dispatcher_opts[0], sizeof m->dispatcher_opts[0], "allow_sync_calls");
  }
  m->offered_count = 1;
  snprintf(m->offered[0].service, sizeof m->offered[0].service, "dfnet.test.Peer");
  snprintf(m->offered[0].instance, sizeof m->offered[0].instance, "default");
  snprintf(m->offered[0].source, sizeof m->offered[0].source, "%s", other);
  e->bulk.data = (const uint8_t *)program;
  e->bulk.size = sizeof program - 1;
  assert_int_equal(dfnet_supervisor_send(h->sup, host, e), DFNET_STATUS_OK);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
}

/* The text of the final reply (OK) of call id (static buffer). */
static const char *answer(harness_t *h, uint64_t id) {
  static char out[2048];
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  snprintf(out, sizeof out, "%.*s", (int)r->bulk_len, (const char *)r->bulk);
  return out;
}

/* A unary call of `node`'s `method` with `text`; its answer. */
static const char *ask(harness_t *h, uint64_t host, const char *node, const char *method,
                       const char *text) {
  uint64_t id = h_call(h, host, node, method, text, strlen(text), 0, 0);
  assert_true(id != 0);
  return answer(h, id);
}

/* A's Run: A calls B as `text` says. */
static const char *run(harness_t *h, uint64_t host, const char *text) {
  return ask(h, host, A, "/dfnet.test.Peer/Run", text);
}

static void has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("\"%s\" does not hold \"%s\"", text, part);
}

/* The number after "key=" in text (-1: none). */
static long num(const char *text, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = text; (p = strstr(p, key)) != NULL; p += klen)
    if ((p == text || p[-1] == ';' || p[-1] == '=') && p[klen] == '=')
      return strtol(p + klen + 1, NULL, 10);
  return -1;
}

/* A driver host with A and B, each offered the other's service. With `settle` (B without
 * allow_sync_calls), A calls B until one call ran inline: a task of B's own thread (its
 * start, say) may still be running after B answered, and a dispatcher that runs a task is
 * not entered; once a call ran inline, B has nothing left to run. */
static uint64_t start_pair(harness_t *h, bool a_sync, bool b_sync, bool settle) {
  uint64_t host = h_spawn(h);
  start_peer(h, host, A, B, a_sync);
  start_peer(h, host, B, A, b_sync);
  bool inlined = !settle;
  for (int i = 0; i < 100 && !inlined; i++) {
    const char *r = run(h, host, "method=Where");
    has(r, "status=OK;");
    inlined = num(r, "tid") == num(r, "call_tid");
    if (!inlined)
      h_pump(h, 10);
  }
  assert_true(inlined);
  return host;
}

/* Neither driver ever ran a callback nested in or beside another of its own, or off its
 * dispatcher. */
static void serialised(harness_t *h, uint64_t host) {
  has(ask(h, host, A, "/dfnet.test.Peer/Stats", ""), "nested=0;overlaps=0;off=0;");
  has(ask(h, host, B, "/dfnet.test.Peer/Stats", ""), "nested=0;overlaps=0;off=0;");
}

static void test_inline_call_on_callers_thread(void **state) {
  harness_t *h = *state;
  uint64_t host = start_pair(h, false, false, true);
  for (int i = 0; i < 3; i++) {
    const char *r = run(h, host, "method=Where");
    has(r, "status=OK;");
    /* B's handler ran on the thread that called dfnet_driver_client_call */
    assert_true(num(r, "call_tid") > 0);
    assert_int_equal(num(r, "tid"), num(r, "call_tid"));
  }
  serialised(h, host);
  h_close_clean(h, host);
}

static void test_busy_callee_queues(void **state) {
  harness_t *h = *state;
  uint64_t host = start_pair(h, false, false, true);
  uint64_t busy = h_call(h, host, B, "/dfnet.test.Peer/Busy", "300", 3, 0, 0);
  h_pump(h, 50);
  long long t0 = now_ms();
  uint64_t id = h_call(h, host, A, "/dfnet.test.Peer/Run", "method=Where", 12, 0, 0);
  const char *r = answer(h, id);
  has(r, "status=OK;");
  assert_true(now_ms() - t0 >= 200); /* behind Busy */
  assert_true(h_final_index(h, busy) < h_final_index(h, id));
  /* queued: B's own thread ran it, and its reply reached the idle A there, inline */
  assert_true(num(r, "tid") != num(r, "call_tid"));
  assert_int_equal(num(r, "done_tid"), num(r, "tid"));
  serialised(h, host);
  h_close_clean(h, host);
}

static void test_callback_into_caller(void **state) {
  harness_t *h = *state;
  uint64_t host = start_pair(h, false, false, true);
  /* A -> B -> A -> B ...: each Relay calls the other back from its handler */
  has(run(h, host, "method=Relay;arg=6"), "status=OK;items=0;violations=0;");
  has(run(h, host, "method=Relay;arg=6"), "data=6,5,4,3,2,1,0");
  has(ask(h, host, B, "/dfnet.test.Peer/Run", "method=Relay;arg=9"), "data=9,8,7,6,5,4,3,2,1,0");
  serialised(h, host);
  h_close_clean(h, host);
}

static void test_stream_credit(void **state) {
  harness_t *h = *state;
  uint64_t host = start_pair(h, false, false, true);
  /* B's first items come inline, the rest from its retries on its own thread: every item,
   * none beyond the credit given */
  has(run(h, host, "method=Stream;arg=100;credit=2;grant=1"), "status=OK;items=100;violations=0;");
  has(run(h, host, "method=Stream;arg=40;credit=4;grant=1"), "status=OK;items=40;violations=0;");
  /* no more credit: the window (3), then the deadline */
  has(run(h, host, "method=Stream;arg=10;credit=3;deadline=300"),
      "status=DEADLINE_EXCEEDED;items=3;violations=0;");
  serialised(h, host);
  h_close_clean(h, host);
}

static void test_deadline_and_cancel(void **state) {
  harness_t *h = *state;
  uint64_t host = start_pair(h, false, false, true);
  long long t0 = now_ms();
  has(run(h, host, "method=Hold;deadline=150"), "status=DEADLINE_EXCEEDED;");
  long long took = now_ms() - t0;
  assert_true(took >= 140 && took < 1500);
  const char *r = run(h, host, "method=Hold;cancel_ms=50");
  has(r, "status=CANCELLED;");
  long cancel_tid = num(r, "cancel_tid");
  assert_true(cancel_tid > 0);
  const char *s = ask(h, host, B, "/dfnet.test.Peer/Stats", "");
  has(s, "held=2;cancelled=1;deadline=1;");
  /* B's cancel callback ran inline, on the thread of A's task that cancelled */
  assert_int_equal(num(s, "cancel_cb_tid"), cancel_tid);
  has(run(h, host, "method=Where"), "status=OK;");
  serialised(h, host);
  h_close_clean(h, host);
}

static void test_sync_dispatchers(void **state) {
  harness_t *h = *state;
  /* B allows sync calls: its handlers keep its own thread */
  uint64_t host = start_pair(h, false, true, false);
  for (int i = 0; i < 3; i++) {
    const char *r = run(h, host, "method=Where");
    has(r, "status=OK;");
    assert_true(num(r, "tid") != num(r, "call_tid"));
  }
  has(run(h, host, "method=Relay;arg=4"), "data=4,3,2,1,0");
  serialised(h, host);
  h_close_clean(h, host);
  /* A allows sync calls, B does not: A calls B inline all the same (B cannot block) */
  host = start_pair(h, true, false, true);
  const char *r = run(h, host, "method=Where");
  has(r, "status=OK;");
  assert_int_equal(num(r, "tid"), num(r, "call_tid"));
  has(run(h, host, "method=Stream;arg=50;credit=2;grant=1"), "status=OK;items=50;violations=0;");
  serialised(h, host);
  h_close_clean(h, host);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_inline_call_on_callers_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy_callee_queues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_callback_into_caller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_credit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_and_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_dispatchers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
