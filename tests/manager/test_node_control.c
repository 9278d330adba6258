/* Node control (issue 19), the manager's side, against the real dfnet-manager with scripted
 * hosts and clients (tests/testhost), the timing held in the scripted host's hands:
 *   - DriverControl RESTART: the bound child's DriverStop before its parent's, the parent's
 *     DriverStart only once its stop was answered, the answer once the nodes run again (a
 *     NodeOutcome per node); DISABLE rematches (a fallback takes the node), ENABLE takes
 *     it back and matches unbound nodes, UNREGISTER, a start failing after a restart;
 *   - UnbindNode: held unbound ("unbound by <client>") through registrations and enables
 *     until a RequestBind; its errors;
 *   - fuchsia.BIND_AUTOBIND: a disable_autobind driver binds only on RequestBind; a
 *     quarantined node is given another chance;
 *   - asynchronous start: the children a starting driver adds are hidden (not listed, not
 *     bound, no watch event) until the start completes, removed when it fails; manual
 *     control meanwhile;
 *   - SuspendNode / ResumeNode: deepest first / parents first, the first error ends the
 *     walk, calls to a suspended node UNAVAILABLE, watch events, a restart ends a suspend;
 *   - ListDriverHosts: the agents' pids and RSS joined with the topology, a silent agent
 *     bounded by the deadline;
 *   - AddTestNode / RemoveTestNode.
 * The tests assert what happens and in which order, never how long it takes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dfnet/driver.h"
#include "testhost/testhost.h"

#define WAIT_MS 10000
#define QUIET_US 300000 /* how long "nothing more arrives" is watched for */

#define BUS_URL "dfnet-boot:///bus#meta/bus.json"
#define LEAF_URL "dfnet-boot:///leaf#meta/leaf.json"
#define GENERIC_URL "dfnet-boot:///generic#meta/generic.json"

typedef struct fixture {
  char root[256];
  char drivers[300];
  char state[300];
  th_manager_t mgr;
} fixture_t;

static fixture_t *fixture_new(const char *name) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-nctl-%s-%d", name, (int)getpid());
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  assert_int_equal(th_fresh_dir(f->drivers), 0);
  return f;
}

static void fixture_start(fixture_t *f) {
  assert_int_equal(th_manager_start(&f->mgr, f->state, f->drivers, "--host-grace", "30", NULL), 0);
}

static void fixture_free(fixture_t *f) {
  assert_int_equal(th_manager_stop(&f->mgr), 0); /* a clean exit is part of every test */
  char cmd[400]; /* the state directory, its log and certificates are in root */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
  if (getenv("DFNET_KEEP") == NULL)
    assert_int_equal(system(cmd), 0);
  free(f);
}

static bool is_bound(const dfnet_v1_NodeInfo *i) { return i->state == dfnet_v1_NodeState_BOUND; }
static bool is_starting(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_NODE_STARTING;
}
static bool is_unbound(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_UNBOUND && i->has_unbound_reason;
}
static bool is_offline(const dfnet_v1_NodeInfo *i) { return i->offline; }
static bool is_quarantined(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_QUARANTINED;
}

/* `text` contains `part`, or the test fails showing both. */
static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted \"%s\" in \"%s\"", part, text);
}

/* Wait until `moniker` is bound to `url`; its NodeInfo into *info. */
static void wait_bound_to(testhost_t *c, const char *moniker, const char *url,
                          dfnet_v1_NodeInfo *info) {
  if (!th_wait_node(c, moniker, is_bound, WAIT_MS, info))
    fail_msg("%s did not bind", moniker);
  assert_string_equal(info->driver_url, url);
}

/* ---- recorded envelopes ---------------------------------------------------------------- */

/* The position after everything the session has received so far. */
static size_t mark(testhost_t *h) {
  th_event_t *all = NULL;
  size_t n = th_events(h, &all);
  free(all);
  return n;
}

/* The next envelope of kind `which` (any node) after *from must be for `node`. */
static th_event_t next_of(testhost_t *h, pb_size_t which, size_t *from, const char *node) {
  th_event_t ev;
  if (!th_wait_event(h, which, NULL, WAIT_MS, from, &ev))
    fail_msg("no %s for %s", dfnet_envelope_msg_name(which), node);
  assert_string_equal(ev.node, node);
  return ev;
}

/* Nothing of kind `which` for `node` (NULL: any) after `from`, watched for a while. */
static void assert_quiet(testhost_t *h, pb_size_t which, const char *node, size_t from) {
  usleep(QUIET_US);
  th_event_t ev;
  if (th_wait_event(h, which, node, 0, &from, &ev))
    fail_msg("unexpected %s for %s", dfnet_envelope_msg_name(which), ev.node);
}

/* Has the watcher seen an event of `kind` about `subject` after `from`? */
static bool watched(testhost_t *w, int kind, const char *subject, size_t from) {
  th_event_t ev;
  while (th_wait_event(w, dfnet_v1_Envelope_watch_event_tag, subject, 0, &from, &ev))
    if (ev.kind == kind)
      return true;
  return false;
}

/* Wait for a watch event of `kind` about `subject` after *from; *from moves past it. */
static th_event_t wait_watched(testhost_t *w, int kind, const char *subject, size_t *from) {
  th_event_t ev;
  for (;;) {
    if (!th_wait_event(w, dfnet_v1_Envelope_watch_event_tag, subject, WAIT_MS, from, &ev))
      fail_msg("no watch event %d for %s", kind, subject);
    if (ev.kind == kind)
      return ev;
  }
}

/* Watch every kind on client session w, and wait until the manager has it (a request on the
 * same session answered after it). */
static void watch(testhost_t *w) {
  assert_int_equal(th_watch(w), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_int_equal(th_node_info(w, "dev.none", info), DFNET_STATUS_NOT_FOUND);
  free(info);
}

/* ---- requests ---------------------------------------------------------------------------- */

static dfnet_envelope_t *new_env(pb_size_t which) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  assert_non_null(env);
  dfnet_envelope_init(env);
  env->pb.which_msg = which;
  return env;
}

/* The Status answering `rep`: its code, its message into msg (512 bytes, may be NULL). */
static dfnet_status_t status_of(dfnet_status_t st, const dfnet_envelope_t *rep, char *msg) {
  if (msg != NULL)
    msg[0] = '\0';
  if (st != DFNET_STATUS_OK)
    return st;
  if (rep->pb.which_msg != dfnet_v1_Envelope_status_tag)
    fail_msg("a Status was wanted, not %s", dfnet_envelope_msg_name(rep->pb.which_msg));
  if (msg != NULL)
    snprintf(msg, 512, "%s", rep->pb.msg.status.message);
  return (dfnet_status_t)rep->pb.msg.status.code;
}

/* Send req (freed) and return the code of its Status answer. */
static dfnet_status_t ask(testhost_t *c, dfnet_envelope_t *req, char *msg) {
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  dfnet_status_t st = status_of(th_request(c, req, rep, 3 * WAIT_MS), rep, msg);
  free(rep);
  free(req);
  return st;
}

/* A request answered later (once nodes settled): started now, req freed. */
static th_pending_request_t *ask_start(testhost_t *c, dfnet_envelope_t *req) {
  th_pending_request_t *p = th_request_start(c, req, 3 * WAIT_MS);
  assert_non_null(p);
  free(req);
  return p;
}

static dfnet_status_t ask_join(th_pending_request_t *p, char *msg) {
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  dfnet_status_t st = status_of(th_request_join(p, rep), rep, msg);
  free(rep);
  return st;
}

static dfnet_envelope_t *control_req(const char *url, dfnet_v1_DriverControl_Action action) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_driver_control_tag);
  snprintf(req->pb.msg.driver_control.url, sizeof req->pb.msg.driver_control.url, "%s", url);
  req->pb.msg.driver_control.action = action;
  return req;
}

static th_pending_request_t *control_start(testhost_t *admin, const char *url,
                                           dfnet_v1_DriverControl_Action action) {
  return ask_start(admin, control_req(url, action));
}

/* The DriverControlResult of p (the caller frees the envelope). */
static dfnet_envelope_t *control_join(th_pending_request_t *p) {
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  assert_int_equal(th_request_join(p, rep), DFNET_STATUS_OK);
  if (rep->pb.which_msg != dfnet_v1_Envelope_driver_control_result_tag)
    fail_msg("DriverControl answered %s (%s)", dfnet_envelope_msg_name(rep->pb.which_msg),
             rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? rep->pb.msg.status.message : "");
  return rep;
}

static dfnet_envelope_t *control(testhost_t *admin, const char *url,
                                 dfnet_v1_DriverControl_Action action) {
  return control_join(control_start(admin, url, action));
}

/* A DriverControl refused with a Status: its code. */
static dfnet_status_t control_refused(testhost_t *admin, const char *url,
                                      dfnet_v1_DriverControl_Action action, char *msg) {
  return ask(admin, control_req(url, action), msg);
}

/* The outcome for `node` in r (the test fails when there is none). */
static const dfnet_v1_NodeOutcome *outcome_of(const dfnet_v1_DriverControlResult *r,
                                              const char *node) {
  for (pb_size_t i = 0; i < r->outcomes_count; i++)
    if (strcmp(r->outcomes[i].node, node) == 0)
      return &r->outcomes[i];
  fail_msg("no outcome for %s", node);
  return NULL;
}

static void assert_outcome(const dfnet_v1_DriverControlResult *r, const char *node,
                           dfnet_status_t code, const char *driver_url) {
  const dfnet_v1_NodeOutcome *o = outcome_of(r, node);
  assert_true(o->has_status);
  if ((dfnet_status_t)o->status.code != code)
    fail_msg("outcome of %s: %s (%s), wanted %s", node,
             dfnet_status_str((dfnet_status_t)o->status.code), o->status.message,
             dfnet_status_str(code));
  assert_string_equal(o->driver_url, driver_url);
}

static dfnet_envelope_t *request_bind_req(const char *node, bool force, const char *suffix) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_request_bind_tag);
  dfnet_v1_RequestBind *r = &req->pb.msg.request_bind;
  snprintf(r->node, sizeof r->node, "%s", node);
  r->force_rebind = force;
  snprintf(r->driver_url_suffix, sizeof r->driver_url_suffix, "%s", suffix ? suffix : "");
  return req;
}

static dfnet_status_t request_bind(testhost_t *admin, const char *node, bool force,
                                   const char *suffix, char *msg) {
  return ask(admin, request_bind_req(node, force, suffix), msg);
}

static dfnet_envelope_t *unbind_req(const char *node) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_unbind_node_tag);
  snprintf(req->pb.msg.unbind_node.node, sizeof req->pb.msg.unbind_node.node, "%s", node);
  return req;
}

static dfnet_status_t unbind(testhost_t *admin, const char *node, char *msg) {
  return ask(admin, unbind_req(node), msg);
}

static dfnet_status_t suspend(testhost_t *admin, const char *node, uint32_t flags, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_suspend_node_tag);
  snprintf(req->pb.msg.suspend_node.node, sizeof req->pb.msg.suspend_node.node, "%s", node);
  req->pb.msg.suspend_node.flags = flags;
  return ask(admin, req, msg);
}

static dfnet_status_t resume(testhost_t *admin, const char *node, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_resume_node_tag);
  snprintf(req->pb.msg.resume_node.node, sizeof req->pb.msg.resume_node.node, "%s", node);
  return ask(admin, req, msg);
}

/* AddTestNode{parent, name, fuchsia.BIND_PROTOCOL = protocol}. */
static dfnet_status_t add_test_node(testhost_t *admin, const char *parent, const char *name,
                                    uint32_t protocol, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_add_test_node_tag);
  dfnet_v1_AddTestNode *a = &req->pb.msg.add_test_node;
  snprintf(a->parent, sizeof a->parent, "%s", parent);
  snprintf(a->name, sizeof a->name, "%s", name);
  a->properties_count = 1;
  a->properties[0].which_key = dfnet_v1_NodeProperty_int_key_tag;
  a->properties[0].key.int_key = 1; /* fuchsia.BIND_PROTOCOL */
  a->properties[0].which_value = dfnet_v1_NodeProperty_int_value_tag;
  a->properties[0].value.int_value = protocol;
  return ask(admin, req, msg);
}

static dfnet_status_t remove_test_node(testhost_t *admin, const char *moniker, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_remove_test_node_tag);
  snprintf(req->pb.msg.remove_test_node.moniker, sizeof req->pb.msg.remove_test_node.moniker, "%s",
           moniker);
  return ask(admin, req, msg);
}

/* A client's call to `target`: its code, its message into msg (512 bytes). */
static dfnet_status_t call(testhost_t *c, const char *target, char *msg) {
  dfnet_status_t code = DFNET_STATUS_UNKNOWN;
  assert_int_equal(
      th_call(c, target, "/dfnet.test.Echo/Echo", NULL, NULL, "hi", &code, msg, NULL, 0),
      DFNET_STATUS_OK);
  return code;
}

/* Register the package of driver `name` (bind rules `rules`) as admin; its URL into url. */
static void register_driver(fixture_t *f, testhost_t *admin, const char *name, const char *rules,
                            char *url, size_t size) {
  char dir[400], msg[512];
  snprintf(dir, sizeof dir, "%s/pkgs", f->root);
  assert_int_equal(th_write_driver(dir, name, rules, NULL), 0);
  snprintf(dir, sizeof dir, "%s/pkgs/%s", f->root, name);
  uint8_t *pkg, digest[32];
  size_t len;
  assert_int_equal(th_pack(dir, &pkg, &len, digest), 0);
  assert_int_equal(th_upload(admin, name, pkg, len, digest, 64 * 1024, msg), DFNET_STATUS_OK);
  free(pkg);
  const char *u = strstr(msg, "dfnet-pkg://");
  assert_non_null(u);
  snprintf(url, size, "%s", u);
}

/* ---- RESTART, DISABLE, ENABLE, UNREGISTER --------------------------------------------- */

#define TOP "dev.lab-n.top"
#define TOP2 "dev.lab-n.top2"
#define KID "dev.lab-n.top.kid"
#define CTL "dev.lab-n.top.ctl"

/* What the bus driver on top does when it runs: an owned child and a child to bind. */
static void add_top_children(testhost_t *h, testhost_t *admin, dfnet_v1_NodeInfo *info) {
  th_prop_t p2[] = {"#1=u:2"};
  assert_int_equal(th_node_add_owned(h, TOP, "ctl", "ctl"), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, TOP, "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, KID, LEAF_URL, info);
}

static void test_restart_disable_enable_unregister(void **state) {
  (void)state;
  fixture_t *f = fixture_new("restart");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "generic", "fuchsia.BIND_PROTOCOL == 1;",
                                   "\"fallback\": \"true\""),
                   0);
  fixture_start(f);
  testhost_t *h = th_connect(&f->mgr, "lab-n", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  th_prop_t p1[] = {"#1=u:1"}, p7[] = {"#1=u:7"};
  assert_int_equal(th_node_add(h, "dev.lab-n", "top", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-n", "top2", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, TOP, BUS_URL, info);
  wait_bound_to(admin, TOP2, BUS_URL, info);
  add_top_children(h, admin, info);

  /* RESTART bus, its stops held: top's children go first, the bound child's stop first. */
  size_t from = mark(h);
  th_hold_stops(h, true);
  th_pending_request_t *p = control_start(admin, "bus", dfnet_v1_DriverControl_Action_RESTART);
  size_t at = from;
  th_event_t kid_stop = next_of(h, dfnet_v1_Envelope_driver_stop_tag, &at, KID);
  at = from;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, TOP2, WAIT_MS, &at, NULL));
  /* top's own stop waits for its child's answer; nothing starts */
  assert_quiet(h, dfnet_v1_Envelope_driver_stop_tag, TOP, from);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, TOP), 1);
  /* the children went with the driver, the owned one too */
  assert_int_equal(th_node_info(admin, KID, info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(admin, CTL, info), DFNET_STATUS_NOT_FOUND);
  th_hold_starts(h, true);
  assert_int_equal(th_release_stops(h), 2); /* kid's and top2's */
  th_event_t top_stop;
  at = from;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, TOP, WAIT_MS, &at, &top_stop));
  assert_true(kid_stop.seq < top_stop.seq);
  /* its stop not answered yet: no DriverStart for it */
  assert_quiet(h, dfnet_v1_Envelope_driver_start_tag, TOP, from);
  assert_int_equal(th_node_add(h, TOP, "late", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_UNAVAILABLE);
  th_hold_stops(h, false);
  assert_int_equal(th_release_stops(h), 1);
  /* answered: started again (held: the start is still running) */
  th_event_t top_start;
  at = top_stop.seq;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, TOP, WAIT_MS, &at, &top_start));
  assert_string_equal(top_start.url, BUS_URL);
  assert_true(th_wait_node(admin, TOP, is_starting, WAIT_MS, info));
  assert_string_equal(info->driver_url, BUS_URL);
  at = from;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, TOP2, WAIT_MS, &at, NULL));
  usleep(QUIET_US); /* the answer would come now if it did not wait for the starts */
  th_hold_starts(h, false);
  assert_int_equal(th_release_starts(h, DFNET_STATUS_OK), 2);
  /* answered once both run again: an OK outcome per node, with what runs there */
  dfnet_envelope_t *rep = control_join(p);
  const dfnet_v1_DriverControlResult *r = &rep->pb.msg.driver_control_result;
  assert_string_equal(r->url, BUS_URL);
  assert_int_equal(r->driver_hosts, 2);
  assert_int_equal(r->nodes, 2);
  assert_int_equal(r->outcomes_count, 2);
  assert_outcome(r, TOP, DFNET_STATUS_OK, BUS_URL);
  assert_outcome(r, TOP2, DFNET_STATUS_OK, BUS_URL);
  free(rep);
  wait_bound_to(admin, TOP, BUS_URL, info);
  /* the driver adds its children again: they bind as before */
  add_top_children(h, admin, info);

  /* DISABLE bus: stopped (the child first) and matched again: the fallback takes both. */
  from = mark(h);
  rep = control(admin, BUS_URL, dfnet_v1_DriverControl_Action_DISABLE);
  r = &rep->pb.msg.driver_control_result;
  assert_int_equal(r->nodes, 2);
  assert_int_equal(r->outcomes_count, 2);
  assert_outcome(r, TOP, DFNET_STATUS_OK, GENERIC_URL);
  assert_outcome(r, TOP2, DFNET_STATUS_OK, GENERIC_URL);
  free(rep);
  at = from;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, KID, WAIT_MS, &at, &kid_stop));
  at = from;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, TOP, WAIT_MS, &at, &top_stop));
  assert_true(kid_stop.seq < top_stop.seq);
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, TOP, WAIT_MS, &at, &top_start));
  assert_string_equal(top_start.url, GENERIC_URL);
  wait_bound_to(admin, TOP, GENERIC_URL, info);
  /* ENABLE: it takes its nodes back from the fallback, answered once it runs there */
  from = mark(h);
  rep = control(admin, "bus", dfnet_v1_DriverControl_Action_ENABLE);
  r = &rep->pb.msg.driver_control_result;
  assert_string_equal(r->url, BUS_URL);
  assert_outcome(r, TOP, DFNET_STATUS_OK, BUS_URL);
  assert_outcome(r, TOP2, DFNET_STATUS_OK, BUS_URL);
  free(rep);
  wait_bound_to(admin, TOP, BUS_URL, info);
  at = from;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, TOP, WAIT_MS, &at, &top_stop));
  assert_string_equal(top_stop.url, GENERIC_URL);
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, TOP, WAIT_MS, &at, &top_start));
  assert_string_equal(top_start.url, BUS_URL);

  /* DISABLE leaf: nothing else matches the kid, which stays unbound; ENABLE binds it. */
  add_top_children(h, admin, info);
  rep = control(admin, "leaf", dfnet_v1_DriverControl_Action_DISABLE);
  r = &rep->pb.msg.driver_control_result;
  assert_int_equal(r->nodes, 1);
  assert_outcome(r, KID, DFNET_STATUS_NOT_FOUND, "");
  free(rep);
  assert_int_equal(th_node_info(admin, KID, info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  size_t kid_starts = th_count_events(h, dfnet_v1_Envelope_driver_start_tag, KID);
  rep = control(admin, "leaf", dfnet_v1_DriverControl_Action_ENABLE);
  assert_outcome(&rep->pb.msg.driver_control_result, KID, DFNET_STATUS_OK, LEAF_URL);
  free(rep);
  wait_bound_to(admin, KID, LEAF_URL, info);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, KID), kid_starts + 1);

  /* A start failing after a restart: the outcome carries the host's status. */
  th_fail_url(h, "leaf", DFNET_STATUS_DATA_LOSS);
  rep = control(admin, "leaf", dfnet_v1_DriverControl_Action_RESTART);
  r = &rep->pb.msg.driver_control_result;
  assert_int_equal(r->nodes, 1);
  assert_outcome(r, KID, DFNET_STATUS_DATA_LOSS, "");
  free(rep);
  assert_int_equal(th_node_info(admin, KID, info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_int_equal(info->unbound_reason.code, DFNET_STATUS_DATA_LOSS);
  th_fail_url(h, "leaf", DFNET_STATUS_OK);
  /* ... and one failing while the answer waits for it (the start held, then refused) */
  assert_int_equal(request_bind(admin, KID, false, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, KID, LEAF_URL, info);
  th_hold_starts(h, true);
  at = mark(h);
  p = control_start(admin, "leaf", dfnet_v1_DriverControl_Action_RESTART);
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, KID, WAIT_MS, &at, NULL));
  assert_true(th_wait_node(admin, KID, is_starting, WAIT_MS, info));
  th_hold_starts(h, false);
  assert_int_equal(th_release_starts(h, DFNET_STATUS_RESOURCE_EXHAUSTED), 1);
  rep = control_join(p);
  assert_outcome(&rep->pb.msg.driver_control_result, KID, DFNET_STATUS_RESOURCE_EXHAUSTED, "");
  free(rep);

  /* UNREGISTER a registered driver: stopped, matched again (nothing else matches). */
  char url[256], msg[512];
  register_driver(f, admin, "reg", "fuchsia.BIND_PROTOCOL == 7;", url, sizeof url);
  assert_int_equal(th_node_add(h, "dev.lab-n", "r0", p7, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, "dev.lab-n.r0", url, info);
  from = mark(h);
  rep = control(admin, "reg", dfnet_v1_DriverControl_Action_UNREGISTER);
  r = &rep->pb.msg.driver_control_result;
  assert_string_equal(r->url, url);
  assert_int_equal(r->nodes, 1);
  assert_int_equal(r->outcomes_count, 1);
  assert_outcome(r, "dev.lab-n.r0", DFNET_STATUS_NOT_FOUND, "");
  free(rep);
  at = from;
  next_of(h, dfnet_v1_Envelope_driver_stop_tag, &at, "dev.lab-n.r0");
  assert_int_equal(th_node_info(admin, "dev.lab-n.r0", info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_int_equal(info->driver_url[0], '\0');
  /* refused: gone, a boot driver, no such driver, no such action */
  assert_int_equal(control_refused(admin, url, dfnet_v1_DriverControl_Action_RESTART, msg),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(control_refused(admin, "bus", dfnet_v1_DriverControl_Action_UNREGISTER, msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_has(msg, "boot driver");
  assert_int_equal(control_refused(admin, "nope", dfnet_v1_DriverControl_Action_RESTART, msg),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(control_refused(admin, "bus", (dfnet_v1_DriverControl_Action)99, msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  free(info);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

/* ---- UnbindNode ------------------------------------------------------------------------ */

#define U0 "dev.lab-u.u0"
#define UNI_URL "dfnet-boot:///uni#meta/uni.json"

static void test_unbind_node(void **state) {
  (void)state;
  fixture_t *f = fixture_new("unbind");
  assert_int_equal(th_write_driver(f->drivers, "uni", "fuchsia.BIND_PROTOCOL == 4;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", NULL), 0);
  fixture_start(f);
  testhost_t *h = th_connect(&f->mgr, "lab-u", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  testhost_t *op = th_connect(&f->mgr, "olga", "operator", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  assert_non_null(op);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  char msg[512];
  th_prop_t p4[] = {"#1=u:4"}, p2[] = {"#1=u:2"};
  assert_int_equal(th_node_add(h, "dev.lab-u", "u0", p4, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, U0, UNI_URL, info);
  assert_int_equal(th_node_add_owned(h, U0, "own", "ctl"), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, U0, "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, U0 ".kid", LEAF_URL, info);

  /* refused: no such node, a node its parent's driver keeps, an operator */
  assert_int_equal(unbind(admin, "dev.lab-u.nope", msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(unbind(admin, U0 ".own", msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(unbind(op, U0, msg), DFNET_STATUS_PERMISSION_DENIED);

  /* unbind, the stops held: the child's first; a second unbind meanwhile is UNAVAILABLE */
  size_t from = mark(h), at = from;
  th_hold_stops(h, true);
  th_pending_request_t *p = ask_start(admin, unbind_req(U0));
  next_of(h, dfnet_v1_Envelope_driver_stop_tag, &at, U0 ".kid");
  assert_int_equal(unbind(admin, U0, msg), DFNET_STATUS_UNAVAILABLE);
  assert_has(msg, "already stopping");
  assert_int_equal(th_release_stops(h), 1);
  next_of(h, dfnet_v1_Envelope_driver_stop_tag, &at, U0);
  th_hold_stops(h, false);
  assert_int_equal(th_release_stops(h), 1);
  assert_int_equal(ask_join(p, msg), DFNET_STATUS_OK);
  /* it stays unbound, and says who did it; its children went */
  assert_int_equal(th_node_info(admin, U0, info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_true(info->has_unbound_reason);
  assert_int_equal(info->unbound_reason.code, DFNET_STATUS_FAILED_PRECONDITION);
  assert_has(info->unbound_reason.message, "unbound by ada");
  assert_int_equal(th_node_info(admin, U0 ".kid", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(admin, U0 ".own", info), DFNET_STATUS_NOT_FOUND);
  /* nothing to unbind now */
  assert_int_equal(unbind(admin, U0, msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(call(op, U0, msg), DFNET_STATUS_FAILED_PRECONDITION);

  /* no automatic rebind: not when another driver that matches it is registered, nor when
   * its driver is enabled again */
  dfnet_envelope_t *rep = control(admin, "uni", dfnet_v1_DriverControl_Action_DISABLE);
  assert_int_equal(rep->pb.msg.driver_control_result.nodes, 0);
  free(rep);
  char reg_url[256];
  register_driver(f, admin, "uni-r", "fuchsia.BIND_PROTOCOL == 4;", reg_url, sizeof reg_url);
  rep = control(admin, "uni", dfnet_v1_DriverControl_Action_ENABLE);
  free(rep);
  assert_int_equal(th_node_info(admin, U0, info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_has(info->unbound_reason.message, "unbound by ada");
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, U0), 1);

  /* RequestBind binds it again: ambiguous without a driver named, then the one named */
  assert_int_equal(request_bind(admin, U0, false, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_has(msg, "multiple");
  assert_int_equal(request_bind(admin, U0, false, reg_url, msg), DFNET_STATUS_OK);
  assert_has(msg, reg_url);
  wait_bound_to(admin, U0, reg_url, info);
  assert_false(info->has_unbound_reason);
  /* bound: ALREADY_BOUND unless forced; forced, moved to the driver named */
  assert_int_equal(request_bind(admin, U0, false, "uni", msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_has(msg, "ALREADY_BOUND");
  from = mark(h);
  assert_int_equal(request_bind(admin, U0, true, "uni", msg), DFNET_STATUS_OK);
  at = from;
  next_of(h, dfnet_v1_Envelope_driver_stop_tag, &at, U0);
  th_event_t ev;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, U0, WAIT_MS, &at, &ev));
  assert_string_equal(ev.url, UNI_URL);
  wait_bound_to(admin, U0, UNI_URL, info);
  assert_int_equal(request_bind(admin, "dev.lab-u.nope", false, NULL, msg), DFNET_STATUS_NOT_FOUND);

  /* unbound again, then RequestBind without a driver named once only one matches */
  assert_int_equal(unbind(admin, U0, msg), DFNET_STATUS_OK);
  rep = control(admin, reg_url, dfnet_v1_DriverControl_Action_DISABLE);
  free(rep);
  assert_int_equal(request_bind(admin, U0, false, NULL, msg), DFNET_STATUS_OK);
  wait_bound_to(admin, U0, UNI_URL, info);
  free(info);
  th_close(op);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

/* ---- fuchsia.BIND_AUTOBIND ------------------------------------------------------------- */

#define MAN_URL "dfnet-boot:///man#meta/man.json"
#define PH_URL "dfnet-boot:///ph#meta/ph.json"

static void find_man_trace(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_bind_trace_tag &&
      strcmp(item->pb.msg.bind_trace.driver_url, MAN_URL) == 0)
    *(dfnet_v1_BindTrace *)user = item->pb.msg.bind_trace;
}

static void test_autobind(void **state) {
  (void)state;
  fixture_t *f = fixture_new("autobind");
  assert_int_equal(th_write_driver_manual(f->drivers, "man", "fuchsia.BIND_PROTOCOL == 6;", NULL),
                   0);
  assert_int_equal(th_write_driver(f->drivers, "ph", "fuchsia.BIND_PROTOCOL == 3;",
                                   "\"host_restart_on_crash\": \"true\""),
                   0);
  fixture_start(f);
  testhost_t *h = th_connect(&f->mgr, "lab-m", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  char msg[512];
  th_prop_t p6[] = {"#1=u:6"}, p3[] = {"#1=u:3"};
  const char *const names[] = {"m0", "m1", "m2"};
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(th_node_add(h, "dev.lab-m", names[i], p6, 1, NULL, NULL, NULL),
                     DFNET_STATUS_OK);
  /* matched automatically (BIND_AUTOBIND 1): the manual driver does not take them */
  assert_true(th_wait_node(admin, "dev.lab-m.m0", is_unbound, WAIT_MS, info));
  assert_int_equal(info->unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  /* nor when a driver is registered or the driver enabled again (every unbound node is
   * matched again then) */
  char url[256];
  register_driver(f, admin, "other", "fuchsia.BIND_PROTOCOL == 8;", url, sizeof url);
  dfnet_envelope_t *rep = control(admin, "man", dfnet_v1_DriverControl_Action_DISABLE);
  free(rep);
  rep = control(admin, "man", dfnet_v1_DriverControl_Action_ENABLE);
  free(rep);
  assert_int_equal(th_node_info(admin, "dev.lab-m.m0", info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, NULL), 0);
  /* `bind why` shows it as an automatic attempt sees it: the manual driver refuses */
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_bind_why_tag);
  snprintf(req->pb.msg.bind_why.node, sizeof req->pb.msg.bind_why.node, "dev.lab-m.m0");
  dfnet_v1_BindTrace *trace = calloc(1, sizeof *trace);
  assert_non_null(trace);
  assert_int_equal(th_list(admin, req, find_man_trace, trace, msg), DFNET_STATUS_OK);
  free(req);
  assert_string_equal(trace->driver_url, MAN_URL);
  assert_int_equal(trace->result, dfnet_v1_BindResult_NO_MATCH);
  free(trace);

  /* RequestBind (BIND_AUTOBIND 0) binds it: with no driver named, with a URL suffix, and
   * with a driver named that does not match (NOT_FOUND) */
  assert_int_equal(request_bind(admin, "dev.lab-m.m0", false, NULL, msg), DFNET_STATUS_OK);
  assert_has(msg, MAN_URL);
  wait_bound_to(admin, "dev.lab-m.m0", MAN_URL, info);
  assert_int_equal(request_bind(admin, "dev.lab-m.m1", false, "man#meta/man.json", msg),
                   DFNET_STATUS_OK);
  wait_bound_to(admin, "dev.lab-m.m1", MAN_URL, info);
  assert_int_equal(request_bind(admin, "dev.lab-m.m2", false, "ph", msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(admin, "dev.lab-m.m2", info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-m.m2"), 0);

  /* A node quarantined after 5 crashes: RequestBind gives it another chance. */
  assert_int_equal(th_node_add(h, "dev.lab-m", "q0", p3, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  for (size_t crash = 1; crash <= 5; crash++) {
    wait_bound_to(admin, "dev.lab-m.q0", PH_URL, info);
    const char *nodes[] = {"dev.lab-m.q0", NULL};
    assert_int_equal(th_driver_host_exit(h, info->driver_host_id, nodes), DFNET_STATUS_OK);
    if (crash < 5) { /* restarted after the backoff */
      for (int i = 0; i < 400 && th_count_events(h, dfnet_v1_Envelope_driver_start_tag,
                                                 "dev.lab-m.q0") < crash + 1;
           i++)
        usleep(50000);
      assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-m.q0"),
                       crash + 1);
    }
  }
  assert_true(th_wait_node(admin, "dev.lab-m.q0", is_quarantined, WAIT_MS, info));
  assert_has(info->unbound_reason.message, "quarantined");
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-m.q0"), 5);
  assert_int_equal(request_bind(admin, "dev.lab-m.q0", false, NULL, msg), DFNET_STATUS_OK);
  assert_has(msg, PH_URL);
  wait_bound_to(admin, "dev.lab-m.q0", PH_URL, info);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-m.q0"), 6);
  /* its crash count starts over: the next crash restarts it */
  const char *nodes[] = {"dev.lab-m.q0", NULL};
  assert_int_equal(th_driver_host_exit(h, info->driver_host_id, nodes), DFNET_STATUS_OK);
  th_event_t ev;
  size_t at = 0;
  for (int i = 0; i < 7; i++)
    assert_true(
        th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-m.q0", WAIT_MS, &at, &ev));
  wait_bound_to(admin, "dev.lab-m.q0", PH_URL, info);
  free(info);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

/* ---- asynchronous start ------------------------------------------------------------------ */

#define SLOW_URL "dfnet-boot:///slow#meta/slow.json"

static void count_node(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_node_info_tag)
    (*(size_t *)user)++;
}

/* How many nodes a listing with `filter` (a substring) shows. */
static size_t listed(testhost_t *c, const char *filter) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_nodes_tag);
  snprintf(req->pb.msg.list_nodes.filter, sizeof req->pb.msg.list_nodes.filter, "%s", filter);
  size_t n = 0;
  assert_int_equal(th_list(c, req, count_node, &n, NULL), DFNET_STATUS_OK);
  free(req);
  return n;
}

static void test_async_start(void **state) {
  (void)state;
  fixture_t *f = fixture_new("async");
  assert_int_equal(th_write_driver(f->drivers, "slow", "fuchsia.BIND_PROTOCOL == 10;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", NULL), 0);
  fixture_start(f);
  testhost_t *h = th_connect(&f->mgr, "lab-s", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  testhost_t *w = th_connect(&f->mgr, "wes", "viewer", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  assert_non_null(w);
  watch(w);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  char msg[512];
  th_prop_t p10[] = {"#1=u:10"}, p2[] = {"#1=u:2"};

  /* A start that takes its time: the node is STARTING. */
  th_hold_starts(h, true);
  size_t wfrom = mark(w);
  assert_int_equal(th_node_add(h, "dev.lab-s", "s0", p10, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  th_event_t ev;
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-s.s0", WAIT_MS, NULL, &ev));
  assert_true(th_wait_node(admin, "dev.lab-s.s0", is_starting, WAIT_MS, info));
  assert_string_equal(info->driver_url, SLOW_URL);
  wait_watched(w, dfnet_v1_WatchEvent_Kind_NODE_ADDED, "dev.lab-s.s0", &wfrom);
  /* children its driver adds meanwhile are accepted and hidden: not listed, not bound, not
   * watched, not called, not bound on request */
  assert_int_equal(th_node_add(h, "dev.lab-s.s0", "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-s.s0.kid", "grand", p2, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(th_node_info(admin, "dev.lab-s.s0.kid", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(admin, "dev.lab-s.s0.kid.grand", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(listed(admin, "dev.lab-s.s0"), 1);
  assert_int_equal(call(admin, "dev.lab-s.s0.kid", msg), DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(call(admin, "dev.lab-s.s0", msg), DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(request_bind(admin, "dev.lab-s.s0", false, NULL, msg),
                   DFNET_STATUS_ALREADY_EXISTS);
  assert_int_equal(request_bind(admin, "dev.lab-s.s0.kid", false, NULL, msg),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(unbind(admin, "dev.lab-s.s0.kid", msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(suspend(admin, "dev.lab-s.s0.kid", 0, msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(add_test_node(admin, "dev.lab-s.s0.kid", "t", 2, msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, NULL), 1);
  assert_quiet(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-s.s0.kid", 0);
  /* (a listing on the watcher's session comes after any event the manager sent it before) */
  assert_int_equal(th_node_info(w, "dev.lab-s.s0.kid", info), DFNET_STATUS_NOT_FOUND);
  assert_false(watched(w, dfnet_v1_WatchEvent_Kind_NODE_ADDED, "dev.lab-s.s0.kid", 0));
  assert_int_equal(th_count_events(w, dfnet_v1_Envelope_watch_event_tag, "dev.lab-s.s0.kid"), 0);

  /* the start completes: they are listed (watched) and bound, parents first */
  th_hold_starts(h, false);
  assert_int_equal(th_release_starts(h, DFNET_STATUS_OK), 1);
  wait_bound_to(admin, "dev.lab-s.s0", SLOW_URL, info);
  wait_bound_to(admin, "dev.lab-s.s0.kid", LEAF_URL, info);
  wait_bound_to(admin, "dev.lab-s.s0.kid.grand", LEAF_URL, info);
  th_event_t added =
      wait_watched(w, dfnet_v1_WatchEvent_Kind_NODE_ADDED, "dev.lab-s.s0.kid", &wfrom);
  size_t gfrom = added.seq;
  wait_watched(w, dfnet_v1_WatchEvent_Kind_NODE_ADDED, "dev.lab-s.s0.kid.grand", &gfrom);
  assert_int_equal(listed(admin, "dev.lab-s.s0"), 3);

  /* A start that fails: the hidden children go, never listed nor watched. */
  th_hold_starts(h, true);
  assert_int_equal(th_node_add(h, "dev.lab-s", "s1", p10, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-s.s1", WAIT_MS, NULL, NULL));
  assert_true(th_wait_node(admin, "dev.lab-s.s1", is_starting, WAIT_MS, info));
  assert_int_equal(th_node_add(h, "dev.lab-s.s1", "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  th_hold_starts(h, false);
  assert_int_equal(th_release_starts(h, DFNET_STATUS_DEADLINE_EXCEEDED), 1);
  assert_true(th_wait_node(admin, "dev.lab-s.s1", is_unbound, WAIT_MS, info));
  assert_int_equal(info->unbound_reason.code, DFNET_STATUS_DEADLINE_EXCEEDED);
  /* it went without a word to watchers */
  assert_int_equal(th_node_info(w, "dev.lab-s.s1.kid", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_count_events(w, dfnet_v1_Envelope_watch_event_tag, "dev.lab-s.s1.kid"), 0);
  /* and it is gone, not merely hidden: that name is free again */
  assert_int_equal(th_node_add(h, "dev.lab-s.s1", "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, "dev.lab-s.s1.kid", LEAF_URL, info);

  /* Manual control while a start runs. */
  th_hold_starts(h, true);
  assert_int_equal(th_node_add(h, "dev.lab-s", "s2", p10, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-s.s2", WAIT_MS, NULL, NULL));
  assert_true(th_wait_node(admin, "dev.lab-s.s2", is_starting, WAIT_MS, info));
  assert_int_equal(th_node_add(h, "dev.lab-s.s2", "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  th_hold_starts(h, false);
  /* RESTART restarts where it runs (s0) and leaves the start in flight alone */
  dfnet_envelope_t *rep = control(admin, "slow", dfnet_v1_DriverControl_Action_RESTART);
  const dfnet_v1_DriverControlResult *r = &rep->pb.msg.driver_control_result;
  assert_int_equal(r->nodes, 1);
  assert_outcome(r, "dev.lab-s.s0", DFNET_STATUS_OK, SLOW_URL);
  free(rep);
  assert_true(th_wait_node(admin, "dev.lab-s.s2", is_starting, WAIT_MS, info));
  /* UnbindNode stops it (its hidden child goes) and it stays unbound */
  size_t from = mark(h), at = from;
  assert_int_equal(unbind(admin, "dev.lab-s.s2", msg), DFNET_STATUS_OK);
  next_of(h, dfnet_v1_Envelope_driver_stop_tag, &at, "dev.lab-s.s2");
  assert_int_equal(th_node_info(admin, "dev.lab-s.s2", info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_has(info->unbound_reason.message, "unbound by ada");
  assert_int_equal(th_node_info(admin, "dev.lab-s.s2.kid", info), DFNET_STATUS_NOT_FOUND);
  /* the late answer to the start it gave up changes nothing */
  assert_int_equal(th_release_starts(h, DFNET_STATUS_OK), 1);
  assert_int_equal(th_node_add(h, "dev.lab-s", "sync", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_OK); /* a turn of the loop after that answer */
  assert_int_equal(th_node_info(admin, "dev.lab-s.s2", info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  /* (nor is it starting: a child added now is not hidden) */
  assert_int_equal(th_node_add(h, "dev.lab-s.s2", "kid2", p2, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  wait_bound_to(admin, "dev.lab-s.s2.kid2", LEAF_URL, info);
  /* RequestBind starts it again */
  assert_int_equal(request_bind(admin, "dev.lab-s.s2", false, NULL, msg), DFNET_STATUS_OK);
  wait_bound_to(admin, "dev.lab-s.s2", SLOW_URL, info);
  assert_true(th_manager_alive(&f->mgr));
  free(info);
  th_close(w);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

/* ---- SuspendNode / ResumeNode ---------------------------------------------------------- */

#define S_TOP "dev.lab-p.top"
#define S_MID "dev.lab-p.top.mid"
#define S_LOW "dev.lab-p.top.mid.low"

static bool is_suspended(const dfnet_v1_NodeInfo *i) { return i->suspended; }

static void test_suspend_resume(void **state) {
  (void)state;
  fixture_t *f = fixture_new("suspend");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", NULL), 0);
  fixture_start(f);
  testhost_t *h = th_connect(&f->mgr, "lab-p", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  testhost_t *op = th_connect(&f->mgr, "olga", "operator", NULL);
  testhost_t *w = th_connect(&f->mgr, "wes", "viewer", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  assert_non_null(op);
  assert_non_null(w);
  watch(w);
  th_answer_calls(h, true);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  char msg[512];
  th_prop_t p1[] = {"#1=u:1"}, p2[] = {"#1=u:2"}, p99[] = {"#1=u:99"};
  assert_int_equal(th_node_add(h, "dev.lab-p", "top", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, S_TOP, BUS_URL, info);
  assert_int_equal(th_node_add_owned(h, S_TOP, "ctl", "ctl"), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, S_TOP, "mid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, S_MID, LEAF_URL, info);
  assert_int_equal(th_node_add(h, S_MID, "low", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(admin, S_LOW, LEAF_URL, info);
  assert_int_equal(th_node_add(h, "dev.lab-p", "none", p99, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(th_wait_node(admin, "dev.lab-p.none", is_unbound, WAIT_MS, info));

  /* refused: unknown, nothing to suspend or resume, an operator */
  assert_int_equal(suspend(admin, "dev.lab-p.nope", 0, msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(suspend(admin, "dev.lab-p.none", 0, msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(resume(admin, S_TOP, msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(suspend(op, S_TOP, 0, msg), DFNET_STATUS_PERMISSION_DENIED);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_suspend_tag, NULL), 0);

  /* suspend: deepest first, each with the flags */
  size_t from = mark(h), at = from, wfrom = mark(w);
  assert_int_equal(suspend(admin, S_TOP, DFNET_SUSPEND_FLAG_REBOOT, msg), DFNET_STATUS_OK);
  const char *const order[] = {S_LOW, S_MID, S_TOP};
  for (size_t i = 0; i < 3; i++) {
    th_event_t ev = next_of(h, dfnet_v1_Envelope_driver_suspend_tag, &at, order[i]);
    assert_int_equal(ev.flags, DFNET_SUSPEND_FLAG_REBOOT);
    assert_int_not_equal(ev.driver_host_id, 0);
  }
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(th_node_info(admin, order[i], info), DFNET_STATUS_OK);
    assert_true(info->suspended);
    assert_int_equal(info->state, dfnet_v1_NodeState_BOUND);
    th_event_t ev = wait_watched(w, dfnet_v1_WatchEvent_Kind_NODE_SUSPENDED, order[i], &wfrom);
    (void)ev;
  }
  /* calls to a suspended node end UNAVAILABLE "suspended" and never reach the host */
  assert_int_equal(call(op, S_MID, msg), DFNET_STATUS_UNAVAILABLE);
  assert_has(msg, "suspended");
  assert_int_equal(call(op, S_TOP ".ctl", msg), DFNET_STATUS_UNAVAILABLE); /* its driver's */
  assert_has(msg, "suspended");
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_call_tag, NULL), 0);
  /* everything is suspended already */
  assert_int_equal(suspend(admin, S_TOP, 0, msg), DFNET_STATUS_FAILED_PRECONDITION);

  /* resume: parents first */
  from = mark(h);
  at = from;
  assert_int_equal(resume(admin, S_TOP, msg), DFNET_STATUS_OK);
  for (size_t i = 3; i > 0; i--)
    next_of(h, dfnet_v1_Envelope_driver_resume_tag, &at, order[i - 1]);
  for (size_t i = 3; i > 0; i--) {
    assert_int_equal(th_node_info(admin, order[i - 1], info), DFNET_STATUS_OK);
    assert_false(info->suspended);
    wait_watched(w, dfnet_v1_WatchEvent_Kind_NODE_RESUMED, order[i - 1], &wfrom);
  }
  assert_int_equal(call(op, S_MID, msg), DFNET_STATUS_OK);

  /* a driver in the middle refuses: the walk ends there, naming it; the parent is not
   * asked, the child stays suspended */
  th_fail_suspend(h, S_MID, DFNET_STATUS_ABORTED);
  from = mark(h);
  at = from;
  assert_int_equal(suspend(admin, S_TOP, 0, msg), DFNET_STATUS_ABORTED);
  assert_has(msg, S_MID);
  th_event_t ev = next_of(h, dfnet_v1_Envelope_driver_suspend_tag, &at, S_LOW);
  assert_int_equal(ev.flags, DFNET_SUSPEND_FLAG_SUSPEND_RAM); /* 0: suspend to RAM */
  next_of(h, dfnet_v1_Envelope_driver_suspend_tag, &at, S_MID);
  assert_quiet(h, dfnet_v1_Envelope_driver_suspend_tag, NULL, at);
  assert_true(th_wait_node(admin, S_LOW, is_suspended, WAIT_MS, info));
  assert_int_equal(th_node_info(admin, S_MID, info), DFNET_STATUS_OK);
  assert_false(info->suspended);
  assert_int_equal(th_node_info(admin, S_TOP, info), DFNET_STATUS_OK);
  assert_false(info->suspended);
  th_fail_suspend(h, NULL, DFNET_STATUS_OK);
  /* resuming the subtree resumes the one that suspended */
  from = mark(h);
  at = from;
  assert_int_equal(resume(admin, S_TOP, msg), DFNET_STATUS_OK);
  next_of(h, dfnet_v1_Envelope_driver_resume_tag, &at, S_LOW);
  assert_quiet(h, dfnet_v1_Envelope_driver_resume_tag, NULL, at);
  assert_int_equal(th_node_info(admin, S_LOW, info), DFNET_STATUS_OK);
  assert_false(info->suspended);

  /* a restart ends the suspend */
  assert_int_equal(suspend(admin, S_TOP, 0, msg), DFNET_STATUS_OK);
  assert_true(th_wait_node(admin, S_TOP, is_suspended, WAIT_MS, info));
  dfnet_envelope_t *rep = control(admin, "bus", dfnet_v1_DriverControl_Action_RESTART);
  assert_outcome(&rep->pb.msg.driver_control_result, S_TOP, DFNET_STATUS_OK, BUS_URL);
  free(rep);
  assert_int_equal(th_node_info(admin, S_TOP, info), DFNET_STATUS_OK);
  assert_false(info->suspended);
  assert_int_equal(th_node_info(admin, S_MID, info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(call(op, S_TOP, msg), DFNET_STATUS_OK);
  assert_int_equal(resume(admin, S_TOP, msg), DFNET_STATUS_FAILED_PRECONDITION);
  free(info);
  th_close(w);
  th_close(op);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

/* ---- ListDriverHosts --------------------------------------------------------------------- */

typedef struct dh_list {
  dfnet_v1_DriverHostInfo items[8];
  size_t count;
} dh_list_t;

static void collect_dh(void *user, const dfnet_envelope_t *item) {
  dh_list_t *l = user;
  if (item->pb.which_msg == dfnet_v1_Envelope_driver_host_info_tag && l->count < 8)
    l->items[l->count++] = item->pb.msg.driver_host_info;
}

/* ListDriverHosts{host} into *l; the closing Status's code (message into msg). */
static dfnet_status_t list_driver_hosts(testhost_t *c, const char *host, dh_list_t *l, char *msg) {
  memset(l, 0, sizeof *l);
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_driver_hosts_tag);
  snprintf(req->pb.msg.list_driver_hosts.host, sizeof req->pb.msg.list_driver_hosts.host, "%s",
           host);
  dfnet_status_t st = th_list(c, req, collect_dh, l, msg);
  free(req);
  return st;
}

static const dfnet_v1_DriverHostInfo *dh_of(const dh_list_t *l, const char *host, uint64_t id) {
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->items[i].host, host) == 0 && l->items[i].id == id)
      return &l->items[i];
  fail_msg("no driver host %s/%llu listed", host, (unsigned long long)id);
  return NULL;
}

static bool has_string(const char (*list)[512], pb_size_t count, const char *s) {
  for (pb_size_t i = 0; i < count; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

static bool has_url(const char (*list)[256], pb_size_t count, const char *s) {
  for (pb_size_t i = 0; i < count; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

static void test_list_driver_hosts(void **state) {
  (void)state;
  fixture_t *f = fixture_new("dhosts");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(
      th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", "\"colocate\": \"true\""),
      0);
  fixture_start(f);
  testhost_t *a = th_connect(&f->mgr, "lab-a", "host", NULL);
  testhost_t *b = th_connect(&f->mgr, "lab-b", "host", NULL);
  testhost_t *v = th_connect(&f->mgr, "vic", "viewer", NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(v);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  dh_list_t *l = calloc(1, sizeof *l);
  assert_non_null(info);
  assert_non_null(l);
  char msg[512];
  th_prop_t p1[] = {"#1=u:1"}, p2[] = {"#1=u:2"};
  /* lab-a: bus on a0 with leaf colocated on its child (driver host 1), bus on a1 (2) */
  assert_int_equal(th_node_add(a, "dev.lab-a", "a0", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(v, "dev.lab-a.a0", BUS_URL, info);
  assert_int_equal(info->driver_host_id, 1);
  assert_int_equal(info->driver_host_pid, 1001); /* DriverStatus.pid */
  assert_int_equal(th_node_add(a, "dev.lab-a.a0", "kid", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(v, "dev.lab-a.a0.kid", LEAF_URL, info);
  assert_int_equal(info->driver_host_id, 1);
  assert_int_equal(th_node_add(a, "dev.lab-a", "a1", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(v, "dev.lab-a.a1", BUS_URL, info);
  assert_int_equal(info->driver_host_id, 2);
  /* lab-b: bus on b0 (driver host 1); its agent never answers */
  assert_int_equal(th_node_add(b, "dev.lab-b", "b0", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  wait_bound_to(v, "dev.lab-b.b0", BUS_URL, info);
  /* lab-a's agent reports its two, and one the manager has no node in */
  const th_driver_host_t dhs[] = {
      {.id = 1, .pid = 4242, .rss_bytes = 1 << 20},
      {.id = 2, .pid = 4343, .rss_bytes = 2 << 20},
      {.id = 9, .pid = 4949, .rss_bytes = 9 << 20},
  };
  th_set_driver_hosts(a, dhs, 3, true);
  th_set_driver_hosts(b, NULL, 0, false);

  /* every host: answered although lab-b stays silent (its deadline) */
  assert_int_equal(list_driver_hosts(v, "", l, msg), DFNET_STATUS_OK);
  assert_has(msg, "4 driver hosts");
  assert_int_equal(l->count, 4);
  const dfnet_v1_DriverHostInfo *di = dh_of(l, "lab-a", 1);
  assert_int_equal(di->pid, 4242);
  assert_int_equal(di->rss_bytes, 1 << 20);
  assert_int_equal(di->nodes_count, 2);
  assert_true(has_string(di->nodes, di->nodes_count, "dev.lab-a.a0"));
  assert_true(has_string(di->nodes, di->nodes_count, "dev.lab-a.a0.kid"));
  assert_int_equal(di->driver_urls_count, 2);
  assert_true(has_url(di->driver_urls, di->driver_urls_count, BUS_URL));
  assert_true(has_url(di->driver_urls, di->driver_urls_count, LEAF_URL));
  di = dh_of(l, "lab-a", 2);
  assert_int_equal(di->pid, 4343);
  assert_int_equal(di->rss_bytes, 2 << 20);
  assert_int_equal(di->nodes_count, 1);
  assert_string_equal(di->nodes[0], "dev.lab-a.a1");
  assert_int_equal(di->driver_urls_count, 1);
  assert_string_equal(di->driver_urls[0], BUS_URL);
  di = dh_of(l, "lab-a", 9);
  assert_int_equal(di->pid, 4949);
  assert_int_equal(di->nodes_count, 0);
  di = dh_of(l, "lab-b", 1);
  assert_int_equal(di->pid, 1001); /* what its DriverStatus said */
  assert_int_equal(di->rss_bytes, 0);
  assert_int_equal(di->nodes_count, 1);
  assert_string_equal(di->nodes[0], "dev.lab-b.b0");
  /* the agent's pids are kept on the nodes */
  assert_int_equal(th_node_info(v, "dev.lab-a.a0", info), DFNET_STATUS_OK);
  assert_int_equal(info->driver_host_pid, 4242);
  assert_int_equal(th_node_info(v, "dev.lab-a.a0.kid", info), DFNET_STATUS_OK);
  assert_int_equal(info->driver_host_pid, 4242);
  assert_int_equal(th_node_info(v, "dev.lab-b.b0", info), DFNET_STATUS_OK);
  assert_int_equal(info->driver_host_pid, 1001);

  /* one host */
  assert_int_equal(list_driver_hosts(v, "lab-b", l, msg), DFNET_STATUS_OK);
  assert_int_equal(l->count, 1);
  assert_string_equal(l->items[0].host, "lab-b");
  assert_int_equal(list_driver_hosts(v, "lab-a", l, msg), DFNET_STATUS_OK);
  assert_int_equal(l->count, 3);
  assert_int_equal(list_driver_hosts(v, "lab-x", l, msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(l->count, 0);
  /* an offline host's driver hosts are listed from the topology, without a pid */
  th_close(b);
  assert_true(th_wait_node(v, "dev.lab-b.b0", is_offline, WAIT_MS, info));
  assert_int_equal(list_driver_hosts(v, "lab-b", l, msg), DFNET_STATUS_OK);
  assert_int_equal(l->count, 1);
  assert_string_equal(l->items[0].nodes[0], "dev.lab-b.b0");
  assert_int_equal(l->items[0].pid, 0); /* not known while its host is away */
  free(l);
  free(info);
  th_close(v);
  th_close(a);
  fixture_free(f);
}

/* ---- AddTestNode / RemoveTestNode -------------------------------------------------------- */

static void count_match(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_bind_trace_tag &&
      item->pb.msg.bind_trace.result == dfnet_v1_BindResult_MATCH &&
      strcmp(item->pb.msg.bind_trace.driver_url, BUS_URL) == 0)
    (*(int *)user)++;
}

static void test_test_nodes(void **state) {
  (void)state;
  fixture_t *f = fixture_new("testnode");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(th_write_driver_manual(f->drivers, "man", "fuchsia.BIND_PROTOCOL == 6;", NULL),
                   0);
  fixture_start(f);
  testhost_t *h = th_connect(&f->mgr, "lab-t", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  testhost_t *v = th_connect(&f->mgr, "vic", "viewer", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  assert_non_null(v);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  char msg[512];
  th_prop_t p99[] = {"#1=u:99"};
  assert_int_equal(th_node_add(h, "dev.lab-t", "p0", p99, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(th_wait_node(v, "dev.lab-t.p0", is_unbound, WAIT_MS, info));

  /* matched, never started */
  assert_int_equal(add_test_node(admin, "dev.lab-t.p0", "t", 1, msg), DFNET_STATUS_OK);
  assert_has(msg, "would bind " BUS_URL);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0.t", info), DFNET_STATUS_OK);
  assert_true(info->test);
  assert_int_equal(info->state, dfnet_v1_NodeState_UNBOUND);
  assert_true(info->has_unbound_reason);
  assert_has(info->unbound_reason.message, "would bind " BUS_URL);
  assert_string_equal(info->host, "lab-t");
  /* what would bind with BIND_AUTOBIND 1: not a manual driver */
  assert_int_equal(add_test_node(admin, "dev.lab-t.p0", "tm", 6, msg), DFNET_STATUS_OK);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0.tm", info), DFNET_STATUS_OK);
  assert_int_equal(info->unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  /* `bind why` works on it */
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_bind_why_tag);
  snprintf(req->pb.msg.bind_why.node, sizeof req->pb.msg.bind_why.node, "dev.lab-t.p0.t");
  int matches = 0;
  assert_int_equal(th_list(v, req, count_match, &matches, msg), DFNET_STATUS_OK);
  free(req);
  assert_int_equal(matches, 1);
  assert_has(msg, "would bind");
  /* nothing was sent to the host for it; the host cannot add under it nor unbind it */
  assert_quiet(h, dfnet_v1_Envelope_driver_start_tag, NULL, 0);
  assert_int_equal(th_node_add(h, "dev.lab-t.p0.t", "x", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(unbind(admin, "dev.lab-t.p0.t", msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(suspend(admin, "dev.lab-t.p0.t", 0, msg), DFNET_STATUS_FAILED_PRECONDITION);

  /* refused: no parent, twice the same, a bad name, not a test node, a viewer */
  assert_int_equal(add_test_node(admin, "dev.lab-t.nope", "t", 1, msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(add_test_node(admin, "dev.lab-t.p0", "t", 1, msg), DFNET_STATUS_ALREADY_EXISTS);
  assert_int_equal(add_test_node(admin, "dev.lab-t.p0", "a.b", 1, msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(add_test_node(v, "dev.lab-t.p0", "tv", 1, msg), DFNET_STATUS_PERMISSION_DENIED);
  assert_int_equal(remove_test_node(admin, "dev.lab-t.p0", msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(remove_test_node(admin, "dev.lab-t.nope", msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0", info), DFNET_STATUS_OK);

  /* removed */
  assert_int_equal(remove_test_node(admin, "dev.lab-t.p0.t", msg), DFNET_STATUS_OK);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0.t", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(remove_test_node(admin, "dev.lab-t.p0.t", msg), DFNET_STATUS_NOT_FOUND);
  /* a test node under a test node goes with it */
  assert_int_equal(add_test_node(admin, "dev.lab-t.p0.tm", "deep", 1, msg), DFNET_STATUS_OK);
  assert_int_equal(remove_test_node(admin, "dev.lab-t.p0.tm", msg), DFNET_STATUS_OK);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0.tm.deep", info), DFNET_STATUS_NOT_FOUND);
  /* and one goes with its parent when the host removes it */
  assert_int_equal(add_test_node(admin, "dev.lab-t.p0", "t2", 1, msg), DFNET_STATUS_OK);
  assert_int_equal(th_node_remove(h, "dev.lab-t.p0"), DFNET_STATUS_OK);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0.t2", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(v, "dev.lab-t.p0", info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, NULL), 0);
  free(info);
  th_close(v);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_restart_disable_enable_unregister),
      cmocka_unit_test(test_unbind_node),
      cmocka_unit_test(test_autobind),
      cmocka_unit_test(test_async_start),
      cmocka_unit_test(test_suspend_resume),
      cmocka_unit_test(test_list_driver_hosts),
      cmocka_unit_test(test_test_nodes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
