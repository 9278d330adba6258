/* dfnet-manager: revocation and live sessions (issue 23 item 4), the real manager process and
 * test sessions on the real transport (tests/testhost):
 *   test_pending_call_ends_unauthenticated: an operator's call waits at a host's driver (the
 *     test host leaves it unanswered); root revokes the operator: CertRevokeResult names its
 *     serial with one session closed, and the call ends UNAUTHENTICATED at once (the close
 *     carries the status); the host is told to cancel the call; the operator cannot open a
 *     session again (UNAVAILABLE: the handshake is refused); the host carries on.
 *   test_name_with_several: two certificates named "dup" (an operator's and a viewer's), both
 *     connected: revoking "dup" revokes both and closes both sessions; CertList shows them
 *     revoked with who and why; revoking "dup" again is FAILED_PRECONDITION; a name nobody
 *     has is NOT_FOUND suggesting the near one; no reason is INVALID_ARGUMENT.
 *   test_roles: a viewer's CertList is answered, its CertRevoke, TokenCreate, TokenList and
 *     TokenRevoke are PERMISSION_DENIED; an operator's CertRevoke too.
 * Each test starts its own manager (ephemeral port, fresh state directory) and stops it with
 * SIGTERM, asserting a clean exit, in its teardown (after a failed assertion too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testhost/testhost.h"

#define WAIT_MS 10000

typedef struct fixture {
  char root[256], drivers[300], state[300];
  th_manager_t mgr;
  testhost_t *h[4];
} fixture_t;

static int setup(void **state) {
  static int n;
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-cert-sessions-%d-%d", (int)getpid(), n++);
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  if (th_fresh_dir(f->drivers) != 0 ||
      th_write_driver(f->drivers, "echo", "fuchsia.BIND_PROTOCOL == 31;", NULL) != 0 ||
      th_manager_start(&f->mgr, f->state, f->drivers, NULL) != 0) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  for (size_t i = 0; i < 4; i++)
    th_close(f->h[i]);
  int rc = th_manager_stop(&f->mgr);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", f->root, f->state);
  if (getenv("DFNET_KEEP") == NULL && system(cmd) != 0)
    rc = -1;
  free(f);
  return rc == 0 ? 0 : -1;
}

/* CertRevoke{target, reason} as h: the reply in *out. */
static void cert_revoke(testhost_t *h, const char *target, const char *reason,
                        dfnet_envelope_t *out) {
  dfnet_envelope_t req;
  dfnet_envelope_init(&req);
  req.pb.which_msg = dfnet_v1_Envelope_cert_revoke_tag;
  snprintf(req.pb.msg.cert_revoke.target, sizeof req.pb.msg.cert_revoke.target, "%s", target);
  snprintf(req.pb.msg.cert_revoke.reason, sizeof req.pb.msg.cert_revoke.reason, "%s", reason);
  assert_int_equal(th_request(h, &req, out, WAIT_MS), DFNET_STATUS_OK);
}

static void expect_status(const dfnet_envelope_t *env, dfnet_status_t code, const char *says) {
  assert_int_equal(env->pb.which_msg, dfnet_v1_Envelope_status_tag);
  assert_int_equal((int)env->pb.msg.status.code, (int)code);
  if (says != NULL && strstr(env->pb.msg.status.message, says) == NULL)
    fail_msg("wanted \"%s\" in \"%s\"", says, env->pb.msg.status.message);
}

/* CertList as h: every CertInfo into items (up to cap); returns how many. */
static dfnet_v1_CertInfo g_items[16];
static size_t g_count;
static void keep(void *user, const dfnet_envelope_t *item) {
  (void)user;
  if (item->pb.which_msg == dfnet_v1_Envelope_cert_info_tag && g_count < 16)
    g_items[g_count++] = item->pb.msg.cert_info;
}
static size_t cert_list(testhost_t *h) {
  dfnet_envelope_t req;
  dfnet_envelope_init(&req);
  req.pb.which_msg = dfnet_v1_Envelope_cert_list_tag;
  g_count = 0;
  assert_int_equal(th_list(h, &req, keep, NULL, NULL), DFNET_STATUS_OK);
  return g_count;
}

static bool is_bound(const dfnet_v1_NodeInfo *i) { return i->state == dfnet_v1_NodeState_BOUND; }

static void test_pending_call_ends_unauthenticated(void **state) {
  fixture_t *f = *state;
  testhost_t *host = f->h[0] = th_connect(&f->mgr, "lab-a", "host", NULL);
  testhost_t *eve = f->h[1] = th_connect(&f->mgr, "eve", "operator", NULL);
  testhost_t *root = f->h[2] = th_connect(&f->mgr, "root", "admin", NULL);
  assert_non_null(host);
  assert_non_null(eve);
  assert_non_null(root);
  const th_prop_t props[] = {"#1=u:31"};
  assert_int_equal(th_node_add(host, "dev.lab-a", "dev0", props, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(th_wait_event(host, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.dev0", WAIT_MS,
                            NULL, NULL));
  /* the manager routes calls once it has the start's answer: a call before that is
   * UNAVAILABLE (the driver is starting) */
  dfnet_v1_NodeInfo info;
  assert_true(th_wait_node(eve, "dev.lab-a.dev0", is_bound, WAIT_MS, &info));
  dfnet_envelope_t call;
  dfnet_envelope_init(&call);
  call.pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(call.pb.msg.call.target, sizeof call.pb.msg.call.target, "dev.lab-a.dev0");
  snprintf(call.pb.msg.call.method, sizeof call.pb.msg.call.method, "/dfnet.test.Echo/Echo");
  call.pb.msg.call.deadline_ms = 60000;
  th_async_t *pending = th_async_start(eve, &call, 60000);
  assert_non_null(pending);
  assert_true(th_wait_event(host, dfnet_v1_Envelope_call_tag, NULL, WAIT_MS, NULL, NULL));
  assert_false(th_async_done(pending));

  dfnet_envelope_t r;
  cert_revoke(root, "eve", "left the team", &r);
  assert_int_equal(r.pb.which_msg, dfnet_v1_Envelope_cert_revoke_result_tag);
  assert_int_equal(r.pb.msg.cert_revoke_result.serials_count, 1);
  assert_int_equal(r.pb.msg.cert_revoke_result.sessions_closed, 1);
  assert_string_equal(r.pb.msg.cert_revoke_result.name, "eve");
  /* the call ends UNAUTHENTICATED, at once */
  assert_int_equal(th_async_wait(pending, 1000, NULL), DFNET_STATUS_UNAUTHENTICATED);
  /* the driver's side is told */
  assert_true(th_wait_event(host, dfnet_v1_Envelope_cancel_tag, NULL, WAIT_MS, NULL, NULL));
  /* eve cannot come back */
  dfnet_status_t st = DFNET_STATUS_OK;
  testhost_t *again = th_connect(&f->mgr, "eve", "operator", &st);
  assert_null(again);
  assert_int_not_equal(st, DFNET_STATUS_OK);
  /* the host carries on: it is asked for nothing new, and answers a list */
  assert_int_equal(cert_list(root), 3);
}

static void test_name_with_several(void **state) {
  fixture_t *f = *state;
  testhost_t *root = f->h[0] = th_connect(&f->mgr, "root", "admin", NULL);
  f->h[1] = th_connect(&f->mgr, "dup", "operator", NULL);
  f->h[2] = th_connect(&f->mgr, "dup", "viewer", NULL);
  assert_non_null(root);
  assert_non_null(f->h[1]);
  assert_non_null(f->h[2]);
  dfnet_envelope_t r;
  cert_revoke(root, "dup", "", &r);
  expect_status(&r, DFNET_STATUS_INVALID_ARGUMENT, "reason");
  cert_revoke(root, "dupe", "x", &r);
  expect_status(&r, DFNET_STATUS_NOT_FOUND, "did you mean dup?");
  cert_revoke(root, "dup", "shared account", &r);
  assert_int_equal(r.pb.which_msg, dfnet_v1_Envelope_cert_revoke_result_tag);
  assert_int_equal(r.pb.msg.cert_revoke_result.serials_count, 2);
  assert_int_equal(r.pb.msg.cert_revoke_result.sessions_closed, 2);
  cert_revoke(root, "dup", "x", &r);
  expect_status(&r, DFNET_STATUS_FAILED_PRECONDITION, "revoked already");
  /* both sessions are gone within a second (a close is sent once what is queued is) */
  size_t revoked = 0, online = 2;
  for (int round = 0; round < 50 && online > 0; round++) {
    usleep(20 * 1000);
    assert_int_equal(cert_list(root), 3);
    revoked = online = 0;
    for (size_t i = 0; i < g_count; i++) {
      if (strcmp(g_items[i].name, "dup") != 0)
        continue;
      revoked++;
      online += g_items[i].online;
      assert_true(g_items[i].revoked_ms != 0);
      assert_string_equal(g_items[i].revoked_by, "root");
      assert_string_equal(g_items[i].revoke_reason, "shared account");
    }
  }
  assert_int_equal(revoked, 2);
  assert_int_equal(online, 0);
  /* a serial in upper case with colons names one certificate */
  testhost_t *x = f->h[3] = th_connect(&f->mgr, "xavier", "viewer", NULL);
  assert_non_null(x);
  assert_int_equal(cert_list(root), 4);
  char serial[64] = "", colons[128] = "";
  for (size_t i = 0; i < g_count; i++)
    if (strcmp(g_items[i].name, "xavier") == 0)
      snprintf(serial, sizeof serial, "%s", g_items[i].serial);
  assert_int_equal(strlen(serial), 32);
  for (size_t i = 0, n = 0; serial[i]; i++) {
    colons[n++] = (char)(serial[i] >= 'a' ? serial[i] - 32 : serial[i]);
    if (i % 2 == 1 && serial[i + 1])
      colons[n++] = ':';
  }
  cert_revoke(root, colons, "by serial", &r);
  assert_int_equal(r.pb.which_msg, dfnet_v1_Envelope_cert_revoke_result_tag);
  assert_string_equal(r.pb.msg.cert_revoke_result.serials[0], serial);
}

static void test_roles(void **state) {
  fixture_t *f = *state;
  testhost_t *v = f->h[0] = th_connect(&f->mgr, "vera", "viewer", NULL);
  testhost_t *o = f->h[1] = th_connect(&f->mgr, "otto", "operator", NULL);
  assert_non_null(v);
  assert_non_null(o);
  assert_int_equal(cert_list(v), 2);
  dfnet_envelope_t r;
  cert_revoke(v, "otto", "x", &r);
  expect_status(&r, DFNET_STATUS_PERMISSION_DENIED, "needs role admin");
  cert_revoke(o, "vera", "x", &r);
  expect_status(&r, DFNET_STATUS_PERMISSION_DENIED, "needs role admin");
  static const pb_size_t admin_only[] = {dfnet_v1_Envelope_token_create_tag,
                                         dfnet_v1_Envelope_token_list_tag,
                                         dfnet_v1_Envelope_token_revoke_tag};
  for (size_t i = 0; i < 3; i++) {
    dfnet_envelope_t req;
    dfnet_envelope_init(&req);
    req.pb.which_msg = admin_only[i];
    assert_int_equal(th_request(v, &req, &r, WAIT_MS), DFNET_STATUS_OK);
    expect_status(&r, DFNET_STATUS_PERMISSION_DENIED, "needs role admin");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pending_call_ends_unauthenticated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_with_several, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
