/* Drivers that talk to drivers, the manager's side (issue 18), against the real
 * dfnet-manager with scripted hosts and clients (tests/testhost):
 *   - offers land on the child a driver adds (its derived properties, DriverStart.offered
 *     with the parent as source), never on the grandchildren; `dfnet node show` and --json
 *     list them as ffx does;
 *   - a composite node spec across two hosts assembles on the primary parent's host, its
 *     driver colocated with the primary parent's creator, with every parent's offers
 *     renamed; a host calls a node of another host for its driver (routed, caller and
 *     caller_driver_url passed on, replies back) and is refused PERMISSION_DENIED for a
 *     node not its own or a service not offered; the other host dropping makes its calls
 *     UNAVAILABLE, and past its grace the composite goes (its host told to forget it);
 *   - a composite node spec of 16 parents on two hosts;
 *   - the drivers below a node stop before its own, each DriverStop sent once the ones below
 *     are answered (restart, removal), and a driver's children go with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "testhost/testhost.h"

#define WAIT_MS 10000
#define DUO_URL "dfnet-boot:///duo#meta/duo.json"

typedef struct fixture {
  char root[256];
  char drivers[300];
  char state[300];
  th_manager_t mgr;
} fixture_t;

static fixture_t *fixture_new(const char *name) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-offers-%s-%d", name, (int)getpid());
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  assert_int_equal(th_fresh_dir(f->drivers), 0);
  return f;
}

static void fixture_start(fixture_t *f, const char *grace) {
  assert_int_equal(th_manager_start(&f->mgr, f->state, f->drivers, "--host-grace", grace, NULL), 0);
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
static bool is_offline(const dfnet_v1_NodeInfo *i) { return i->offline; }
static bool has_reason(const dfnet_v1_NodeInfo *i) { return i->has_unbound_reason; }

static void assert_offer(const dfnet_v1_Offer *o, const char *service, const char *instance,
                         const char *source) {
  assert_string_equal(o->service, service);
  assert_string_equal(o->instance, instance);
  assert_string_equal(o->source, source);
}

/* Wait until `moniker` is gone (NOT_FOUND). */
static bool wait_gone(testhost_t *c, const char *moniker) {
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; i++) {
    gone = th_node_info(c, moniker, info) == DFNET_STATUS_NOT_FOUND;
    if (!gone)
      usleep(50000);
  }
  free(info);
  return gone;
}

/* ---- the dfnet CLI as a child process ------------------------------------------------- */

/* `text` contains `part`, or the test fails showing both. */
static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted\n%s\nin\n%s", part, text);
}

/* Run `dfnet args...` as the viewer `name` of f's manager; stdout (and stderr) into out.
 * Returns the exit status. */
static int run_cli(fixture_t *f, const char *name, char *out, size_t size,
                   const char *const *args) {
  char dir[700], v[900];
  assert_int_equal(th_issue(&f->mgr, name, "viewer", dir, sizeof dir), 0);
  snprintf(v, sizeof v, "wss://127.0.0.1:%u", (unsigned)f->mgr.port);
  setenv("DFNET_MANAGER", v, 1);
  snprintf(v, sizeof v, "%s/%s.crt", dir, name);
  setenv("DFNET_CERT", v, 1);
  snprintf(v, sizeof v, "%s/%s.key", dir, name);
  setenv("DFNET_KEY", v, 1);
  snprintf(v, sizeof v, "%s/ca.crt", dir);
  setenv("DFNET_CA", v, 1);
  unsetenv("DFNET_CONFIG");
  const char *build = getenv("DFNET_BUILD_DIR");
  char exe[600];
  snprintf(exe, sizeof exe, "%s/clients/dfnet", build ? build : ".");
  const char *argv[16] = {exe};
  for (size_t i = 0; args[i] != NULL && i < 14; i++)
    argv[i + 1] = args[i];
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], out + len, size - 1 - len)) > 0 || (n < 0 && errno == EINTR))
    len += n > 0 ? (size_t)n : 0;
  out[len] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- offers on the child ---------------------------------------------------------------- */

static void test_offers_reach_the_child_only(void **state) {
  (void)state;
  fixture_t *f = fixture_new("child");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  /* binds what was offered dfnet.hardware.rng.Service (its derived property) */
  assert_int_equal(th_write_driver(f->drivers, "rngc",
                                   "using dfnet.hardware.rng;\n"
                                   "dfnet.hardware.rng.Service == "
                                   "dfnet.hardware.rng.Service.DriverTransport;\n",
                                   NULL),
                   0);
  fixture_start(f, "30");
  testhost_t *h = th_connect(&f->mgr, "lab-o", "host", NULL);
  testhost_t *v = th_connect(&f->mgr, "vic", "viewer", NULL);
  assert_non_null(h);
  assert_non_null(v);
  th_prop_t p1[] = {"#1=u:1"};
  assert_int_equal(th_node_add(h, "dev.lab-o", "bus0", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_true(th_wait_node(v, "dev.lab-o.bus0", is_bound, WAIT_MS, info));
  /* the bus driver adds a child offering two services it serves */
  const char *offers[] = {"dfnet.hardware.rng.Service", "dfnet.test.Echo", NULL};
  assert_int_equal(th_node_add(h, "dev.lab-o.bus0", "kid", NULL, 0, offers, NULL, NULL),
                   DFNET_STATUS_OK);
  th_event_t ev;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-o.bus0.kid", WAIT_MS,
                            NULL, &ev));
  assert_string_equal(ev.url, "dfnet-boot:///rngc#meta/rngc.json");
  dfnet_v1_DriverStart *ds = calloc(1, sizeof *ds);
  assert_true(th_driver_start(h, "dev.lab-o.bus0.kid", ds));
  assert_int_equal(ds->offered_count, 2);
  assert_offer(&ds->offered[0], "dfnet.hardware.rng.Service", "default", "dev.lab-o.bus0");
  assert_offer(&ds->offered[1], "dfnet.test.Echo", "default", "dev.lab-o.bus0");
  assert_int_equal(ds->offers_count, 2);
  assert_string_equal(ds->offers[0], "dfnet.hardware.rng.Service");
  assert_string_equal(ds->offers[1], "dfnet.test.Echo");
  assert_int_equal(ds->properties_count, 2);
  assert_string_equal(ds->properties[0].key.str_key, "dfnet.hardware.rng.Service");
  assert_string_equal(ds->properties[0].value.str_value,
                      "dfnet.hardware.rng.Service.DriverTransport");
  /* the bus's driver was offered nothing */
  assert_true(th_driver_start(h, "dev.lab-o.bus0", ds));
  assert_int_equal(ds->offered_count, 0);
  assert_int_equal(ds->offers_count, 0);

  /* the child's child gets neither the properties nor the offers */
  assert_int_equal(th_node_add(h, "dev.lab-o.bus0.kid", "leaf", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(th_wait_node(v, "dev.lab-o.bus0.kid.leaf", has_reason, WAIT_MS, info));
  assert_int_equal(info->unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  assert_int_equal(info->properties_count, 0);
  assert_int_equal(info->offered_count, 0);
  assert_int_equal(
      th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-o.bus0.kid.leaf"), 0);
  assert_true(th_wait_node(v, "dev.lab-o.bus0.kid", is_bound, WAIT_MS, info));
  assert_int_equal(info->offered_count, 2);
  assert_offer(&info->offered[1], "dfnet.test.Echo", "default", "dev.lab-o.bus0");
  assert_int_equal(info->offers_count, 2);

  /* `node show` lists them as `ffx driver list-devices -v` does, --json too */
  char *out = malloc(1 << 16);
  const char *show[] = {"node", "show", "dev.lab-o.bus0.kid", NULL};
  assert_int_equal(run_cli(f, "vic", out, 1 << 16, show), 0);
  assert_has((out), ("Key \"dfnet.hardware.rng.Service\"   Value "
                     "\"dfnet.hardware.rng.Service.DriverTransport\"\n"));
  assert_has((out), ("2 Offers\n"
                     "Service: dfnet.hardware.rng.Service\n"
                     "  Source: dev.lab-o.bus0\n"
                     "  Instances: default\n"
                     "Service: dfnet.test.Echo\n"
                     "  Source: dev.lab-o.bus0\n"
                     "  Instances: default\n"));
  const char *json[] = {"node", "show", "--json", "dev.lab-o.bus0.kid", NULL};
  assert_int_equal(run_cli(f, "vic", out, 1 << 16, json), 0);
  assert_has((out), ("\"offered\":"));
  assert_has((out), ("\"service\":\t\"dfnet.test.Echo\""));
  assert_has((out), ("\"instance\":\t\"default\""));
  assert_has((out), ("\"source\":\t\"dev.lab-o.bus0\""));
  const char *leaf[] = {"node", "show", "dev.lab-o.bus0.kid.leaf", NULL};
  assert_int_equal(run_cli(f, "vic", out, 1 << 16, leaf), 0);
  assert_has((out), ("0 Properties\n0 Offers\n"));
  free(out);
  free(ds);
  free(info);
  th_close(v);
  th_close(h);
  fixture_free(f);
}

/* ---- composites across hosts -------------------------------------------------------- */

/* AddCompositeNodeSpec `name` of `count` parents: parent i is the node whose property
 * spec.kind is kinds[i], and shows the composite driver fuchsia.BIND_PROTOCOL protos[i].
 * Returns the answer's code. */
static dfnet_status_t add_spec(testhost_t *admin, const char *name, size_t count,
                               const char *const *kinds, const uint32_t *protos) {
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  assert_non_null(req);
  assert_non_null(rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_add_composite_node_spec_tag;
  dfnet_v1_AddCompositeNodeSpec *a = &req->pb.msg.add_composite_node_spec;
  a->has_spec = true;
  snprintf(a->spec.name, sizeof a->spec.name, "%s", name);
  a->spec.parents_count = (pb_size_t)count;
  for (size_t i = 0; i < count; i++) {
    dfnet_v1_ParentSpec *ps = &a->spec.parents[i];
    dfnet_v1_BindRule *br = &ps->bind_rules[0];
    ps->bind_rules_count = 1;
    br->which_key = dfnet_v1_BindRule_str_key_tag;
    snprintf(br->key.str_key, sizeof br->key.str_key, "spec.kind");
    br->condition = dfnet_v1_Condition_ACCEPT;
    br->values_count = 1;
    br->values[0].which_value = dfnet_v1_PropertyValue_str_value_tag;
    snprintf(br->values[0].value.str_value, sizeof br->values[0].value.str_value, "%s", kinds[i]);
    ps->properties_count = 1;
    ps->properties[0].which_key = dfnet_v1_NodeProperty_int_key_tag;
    ps->properties[0].key.int_key = 1; /* fuchsia.BIND_PROTOCOL */
    ps->properties[0].which_value = dfnet_v1_NodeProperty_int_value_tag;
    ps->properties[0].value.int_value = protos[i];
  }
  dfnet_status_t st = th_request(admin, req, rep, WAIT_MS);
  if (st == DFNET_STATUS_OK)
    st = rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? (dfnet_status_t)rep->pb.msg.status.code
                                                           : DFNET_STATUS_UNKNOWN;
  free(req);
  free(rep);
  return st;
}

#define PAIR "dev.lab-a.busa.x.pair"

/* A host's call for its driver, which must end with `want`. */
static void driver_call(testhost_t *h, const char *target, const char *method, const char *caller,
                        const char *caller_url, dfnet_status_t want, char *reply, size_t size) {
  dfnet_status_t code = DFNET_STATUS_UNKNOWN;
  char message[512] = "";
  assert_int_equal(
      th_call(h, target, method, caller, caller_url, "hi", &code, message, reply, size),
      DFNET_STATUS_OK);
  if (code != want)
    fail_msg("call %s %s as %s: %s (%s), wanted %s", target, method, caller, dfnet_status_str(code),
             message, dfnet_status_str(want));
}

static void test_composite_across_hosts(void **state) {
  (void)state;
  fixture_t *f = fixture_new("across");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "duo",
                                   "composite duo;\n"
                                   "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                                   "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                                   "\"colocate\": \"true\""),
                   0);
  fixture_start(f, "1");
  testhost_t *a = th_connect(&f->mgr, "lab-a", "host", NULL);
  testhost_t *b = th_connect(&f->mgr, "lab-b", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  testhost_t *op = th_connect(&f->mgr, "olga", "operator", NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(admin);
  assert_non_null(op);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info), *busa = calloc(1, sizeof *busa);
  th_prop_t p1[] = {"#1=u:1"}, ka[] = {"spec.kind=s:a"}, kb[] = {"spec.kind=s:b"};
  /* On each host a bus driver adds a child offering a service it serves. */
  assert_int_equal(th_node_add(a, "dev.lab-a", "busa", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(b, "dev.lab-b", "busb", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(th_wait_node(admin, "dev.lab-a.busa", is_bound, WAIT_MS, busa));
  assert_true(th_wait_node(admin, "dev.lab-b.busb", is_bound, WAIT_MS, info));
  const char *left[] = {"dfnet.test.Left", NULL}, *echo[] = {"dfnet.test.Echo", NULL};
  assert_int_equal(th_node_add(a, "dev.lab-a.busa", "x", ka, 1, left, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(b, "dev.lab-b.busb", "y", kb, 1, echo, NULL, NULL), DFNET_STATUS_OK);

  /* A spec whose parents are on two hosts assembles on the primary's. */
  const char *kinds[] = {"a", "b"};
  const uint32_t protos[] = {60, 61};
  assert_int_equal(add_spec(admin, "pair", 2, kinds, protos), DFNET_STATUS_OK);
  assert_true(th_wait_node(admin, PAIR, is_bound, WAIT_MS, info));
  assert_string_equal(info->host, "lab-a");
  assert_string_equal(info->driver_url, DUO_URL);
  assert_int_equal(info->parents_count, 2);
  assert_string_equal(info->parents[1], "dev.lab-b.busb.y");
  th_event_t ev;
  assert_true(th_wait_event(a, dfnet_v1_Envelope_driver_start_tag, PAIR, WAIT_MS, NULL, &ev));
  /* colocate: in the driver host of the driver that added the primary parent */
  assert_int_not_equal(busa->driver_host_id, 0);
  assert_int_equal(ev.driver_host_id, busa->driver_host_id);
  assert_int_equal(th_count_events(b, dfnet_v1_Envelope_driver_start_tag, PAIR), 0);
  /* Every parent's offers, renamed to the parent's name, the primary's "default" too; each
   * keeps its source. */
  dfnet_v1_DriverStart *ds = calloc(1, sizeof *ds);
  assert_true(th_driver_start(a, PAIR, ds));
  assert_int_equal(ds->offered_count, 3);
  assert_offer(&ds->offered[0], "dfnet.test.Left", "default", "dev.lab-a.busa");
  assert_offer(&ds->offered[1], "dfnet.test.Left", "0", "dev.lab-a.busa");
  assert_offer(&ds->offered[2], "dfnet.test.Echo", "1", "dev.lab-b.busb");
  assert_int_equal(ds->offers_count, 2);
  assert_string_equal(ds->offers[1], "dfnet.test.Echo");
  assert_int_equal(info->offered_count, 3);
  assert_offer(&info->offered[2], "dfnet.test.Echo", "1", "dev.lab-b.busb");
  char *out = malloc(1 << 16);
  const char *show[] = {"node", "show", PAIR, NULL};
  assert_int_equal(run_cli(f, "vic", out, 1 << 16, show), 0);
  assert_has((out), ("Parent   : dev.lab-b.busb.y\n"));
  assert_has((out), ("2 Offers\n"
                     "Service: dfnet.test.Left\n"
                     "  Source: dev.lab-a.busa\n"
                     "  Instances: default 0\n"
                     "Service: dfnet.test.Echo\n"
                     "  Source: dev.lab-b.busb\n"
                     "  Instances: 1\n"));
  free(out);

  /* The composite's driver calls the other host's parent's offer through the manager. */
  th_answer_calls(b, true);
  char reply[1024];
  driver_call(a, "dev.lab-b.busb", "/dfnet.test.Echo/Echo", PAIR, DUO_URL, DFNET_STATUS_OK, reply,
              sizeof reply);
  assert_string_equal(reply, PAIR "|" DUO_URL "|hi");
  assert_true(th_wait_event(b, dfnet_v1_Envelope_call_tag, "dev.lab-b.busb", WAIT_MS, NULL, &ev));
  assert_string_equal(ev.url, "/dfnet.test.Echo/Echo");
  assert_string_equal(ev.caller, PAIR);
  assert_string_equal(ev.caller_url, DUO_URL);
  /* no driver URL given: the manager names the one it knows */
  driver_call(a, "dev.lab-b.busb", "/dfnet.test.Echo/Echo", PAIR, NULL, DFNET_STATUS_OK, reply,
              sizeof reply);
  assert_string_equal(reply, PAIR "|" DUO_URL "|hi");
  /* Refused: a caller of another host, a wrong driver URL, a node without a driver, a
   * service or a source that was not offered. None reaches host b. */
  const struct {
    const char *target, *method, *caller, *url;
  } denied[] = {
      {"dev.lab-b.busb", "/dfnet.test.Echo/Echo", "dev.lab-b.busb", NULL},
      {"dev.lab-b.busb", "/dfnet.test.Echo/Echo", "dev.lab-b.busb.y", NULL},
      {"dev.lab-b.busb", "/dfnet.test.Echo/Echo", "dev.nowhere.n", NULL},
      {"dev.lab-b.busb", "/dfnet.test.Echo/Echo", "", NULL},
      {"dev.lab-b.busb", "/dfnet.test.Echo/Echo", PAIR, "dfnet-boot:///bus#meta/bus.json"},
      {"dev.lab-b.busb", "/dfnet.test.Echo/Echo", "dev.lab-a.busa.x", NULL},
      {"dev.lab-b.busb", "/dfnet.test.Other/Echo", PAIR, DUO_URL},
      {"dev.lab-a.busa", "/dfnet.test.Echo/Echo", PAIR, DUO_URL},
      {"dev.lab-b.busb", "Echo", PAIR, DUO_URL},
  };
  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
    driver_call(a, denied[i].target, denied[i].method, denied[i].caller, denied[i].url,
                DFNET_STATUS_PERMISSION_DENIED, NULL, 0);
  assert_int_equal(th_count_events(b, dfnet_v1_Envelope_call_tag, NULL), 2);
  /* A client's call still goes with the client's name and no driver URL. */
  driver_call(op, "dev.lab-b.busb", "/dfnet.test.Echo/Echo", "ignored", "ignored", DFNET_STATUS_OK,
              reply, sizeof reply);
  assert_string_equal(reply, "olga||hi");

  /* The other host drops: calls to it end UNAVAILABLE, the composite stays meanwhile. */
  size_t from = 0;
  th_event_t seen;
  while (th_wait_event(a, 0, NULL, 0, &from, &seen)) {
  }
  th_close(b);
  assert_true(th_wait_node(admin, "dev.lab-b.busb", is_offline, WAIT_MS, info));
  driver_call(a, "dev.lab-b.busb", "/dfnet.test.Echo/Echo", PAIR, DUO_URL, DFNET_STATUS_UNAVAILABLE,
              NULL, 0);
  assert_int_equal(th_node_info(admin, PAIR, info), DFNET_STATUS_OK);
  /* Past its grace (1 s) its nodes go, and the composite with them: its driver stopped on
   * its host, then the host told to forget the node. */
  assert_true(wait_gone(admin, PAIR));
  th_event_t stop, forget;
  size_t at = from;
  assert_true(th_wait_event(a, dfnet_v1_Envelope_driver_stop_tag, PAIR, WAIT_MS, &at, &stop));
  assert_true(th_wait_event(a, dfnet_v1_Envelope_node_remove_tag, PAIR, WAIT_MS, &at, &forget));
  assert_true(stop.seq < forget.seq);
  assert_int_equal(th_node_info(admin, "dev.lab-a.busa.x", info), DFNET_STATUS_OK);
  assert_int_equal(info->state, dfnet_v1_NodeState_OWNED_BY_COMPOSITE);
  free(ds);
  free(busa);
  free(info);
  th_close(op);
  th_close(admin);
  th_close(a);
  fixture_free(f);
}

/* A composite node re-announced by a host after its composite went (the host was away) is
 * refused, and the host told to forget it. */
static void test_stale_composite_forgotten(void **state) {
  (void)state;
  fixture_t *f = fixture_new("stale");
  assert_int_equal(th_write_driver(f->drivers, "duo",
                                   "composite duo;\n"
                                   "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                                   "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                                   NULL),
                   0);
  fixture_start(f, "30");
  testhost_t *a = th_connect(&f->mgr, "lab-s", "host", NULL);
  assert_non_null(a);
  th_prop_t l[] = {"#1=u:60"};
  assert_int_equal(th_node_add(a, "dev.lab-s", "l", l, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  char msg[512];
  assert_int_equal(th_node_add_running(a, "dev.lab-s.l", "duo", NULL, 0, DUO_URL, 3),
                   DFNET_STATUS_FAILED_PRECONDITION);
  th_event_t ev;
  assert_true(
      th_wait_event(a, dfnet_v1_Envelope_node_remove_tag, "dev.lab-s.l.duo", WAIT_MS, NULL, &ev));
  /* a node that is no composite's is added as ever */
  assert_int_equal(th_node_add(a, "dev.lab-s.l", "kid", NULL, 0, NULL, NULL, msg), DFNET_STATUS_OK);
  th_close(a);
  fixture_free(f);
}

/* ---- 16 parents ------------------------------------------------------------------------- */

static void copy_sixteen(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_composite_info_tag &&
      strcmp(item->pb.msg.composite_info.name, "sixteen") == 0)
    *(dfnet_v1_CompositeInfo *)user = item->pb.msg.composite_info;
}

static void test_sixteen_parents(void **state) {
  (void)state;
  fixture_t *f = fixture_new("sixteen");
  char rules[2048] = "composite hex;\n";
  for (int i = 0; i < 16; i++) {
    size_t len = strlen(rules);
    snprintf(rules + len, sizeof rules - len, "%snode \"p%d\" { fuchsia.BIND_PROTOCOL == %d; }\n",
             i == 0 ? "primary " : "", i, 100 + i);
  }
  assert_int_equal(th_write_driver(f->drivers, "hex", rules, NULL), 0);
  fixture_start(f, "30");
  testhost_t *h[2] = {th_connect(&f->mgr, "lab-a", "host", NULL),
                      th_connect(&f->mgr, "lab-b", "host", NULL)};
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  assert_non_null(h[0]);
  assert_non_null(h[1]);
  assert_non_null(admin);
  char kinds_buf[16][8];
  const char *kinds[16];
  uint32_t protos[16];
  for (int i = 0; i < 16; i++) {
    snprintf(kinds_buf[i], sizeof kinds_buf[i], "k%d", i);
    kinds[i] = kinds_buf[i];
    protos[i] = 100 + (uint32_t)i;
    char prop[32], offer[32], parent[32];
    snprintf(prop, sizeof prop, "spec.kind=s:k%d", i);
    snprintf(offer, sizeof offer, "dfnet.test.S%d", i);
    snprintf(parent, sizeof parent, "dev.lab-%c", i < 8 ? 'a' : 'b');
    th_prop_t props[] = {prop};
    const char *offers[] = {offer, NULL};
    assert_int_equal(th_node_add(h[i >= 8], parent, kinds[i], props, 1, offers, NULL, NULL),
                     DFNET_STATUS_OK);
  }
  assert_int_equal(add_spec(admin, "sixteen", 16, kinds, protos), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_true(th_wait_node(admin, "dev.lab-a.k0.sixteen", is_bound, WAIT_MS, info));
  assert_int_equal(info->parents_count, 16);
  assert_string_equal(info->parents[15], "dev.lab-b.k15");
  dfnet_v1_DriverStart *ds = calloc(1, sizeof *ds);
  assert_true(th_driver_start(h[0], "dev.lab-a.k0.sixteen", ds));
  assert_int_equal(ds->offered_count, 17);
  assert_offer(&ds->offered[0], "dfnet.test.S0", "default", "dev.lab-a");
  assert_offer(&ds->offered[1], "dfnet.test.S0", "0", "dev.lab-a");
  assert_offer(&ds->offered[16], "dfnet.test.S15", "15", "dev.lab-b");
  assert_int_equal(ds->offers_count, 16);
  /* the verbose listing carries the spec whole */
  dfnet_envelope_t *req = calloc(1, sizeof *req);
  dfnet_v1_CompositeInfo *ci = calloc(1, sizeof *ci);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_list_composites_tag;
  req->pb.msg.list_composites.verbose = true;
  assert_int_equal(th_list(admin, req, copy_sixteen, ci, NULL), DFNET_STATUS_OK);
  assert_string_equal(ci->name, "sixteen");
  assert_string_equal(ci->moniker, "dev.lab-a.k0.sixteen");
  assert_int_equal(ci->parents_count, 16);
  assert_string_equal(ci->parents[15].moniker, "dev.lab-b.k15");
  assert_int_equal(ci->spec_parents_count, 16);
  assert_string_equal(ci->spec_parents[15].bind_rules[0].values[0].value.str_value, "k15");
  free(ci);
  free(req);
  free(ds);
  free(info);
  th_close(admin);
  th_close(h[1]);
  th_close(h[0]);
  fixture_free(f);
}

/* ---- removal order ------------------------------------------------------------------------ */

/* Wait for the next DriverStop (any node) after *from; its node. */
static void next_stop(testhost_t *h, size_t *from, const char *want) {
  th_event_t ev;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, NULL, WAIT_MS, from, &ev));
  assert_string_equal(ev.node, want);
  /* and no other stop while that one is not answered */
  usleep(300000);
  size_t later = *from;
  if (th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, NULL, 0, &later, &ev))
    fail_msg("DriverStop for %s sent before the one for %s was answered", ev.node, want);
}

static void test_children_stop_before_parent(void **state) {
  (void)state;
  fixture_t *f = fixture_new("order");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", NULL), 0);
  fixture_start(f, "30");
  testhost_t *h = th_connect(&f->mgr, "lab-r", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  th_prop_t p1[] = {"#1=u:1"}, p2[] = {"#1=u:2"};
  for (int round = 0; round < 2; round++) {
    assert_int_equal(th_node_add(h, "dev.lab-r", "top", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
    assert_true(th_wait_node(admin, "dev.lab-r.top", is_bound, WAIT_MS, info));
    assert_int_equal(th_node_add(h, "dev.lab-r.top", "mid", p2, 1, NULL, NULL, NULL),
                     DFNET_STATUS_OK);
    assert_int_equal(th_node_add(h, "dev.lab-r.top.mid", "low", p2, 1, NULL, NULL, NULL),
                     DFNET_STATUS_OK);
    assert_true(th_wait_node(admin, "dev.lab-r.top.mid", is_bound, WAIT_MS, info));
    assert_true(th_wait_node(admin, "dev.lab-r.top.mid.low", is_bound, WAIT_MS, info));
    size_t from = 0;
    th_event_t ev;
    while (th_wait_event(h, 0, NULL, 0, &from, &ev)) {
    }
    th_hold_stops(h, true);
    th_pending_request_t *restart = NULL;
    if (round == 0) {
      /* restart the bus driver: its children go first, bottom-up; the answer comes once
       * the node runs again */
      dfnet_envelope_t *req = calloc(1, sizeof *req);
      dfnet_envelope_init(req);
      req->pb.which_msg = dfnet_v1_Envelope_driver_control_tag;
      snprintf(req->pb.msg.driver_control.url, sizeof req->pb.msg.driver_control.url, "bus");
      req->pb.msg.driver_control.action = dfnet_v1_DriverControl_Action_RESTART;
      restart = th_request_start(admin, req, 3 * WAIT_MS);
      assert_non_null(restart);
      free(req);
    } else {
      /* hot-unplug: the same order */
      assert_int_equal(th_node_remove(h, "dev.lab-r.top"), DFNET_STATUS_OK);
    }
    next_stop(h, &from, "dev.lab-r.top.mid.low");
    if (round == 0) /* a driver stopping adds no child */
      assert_int_equal(th_node_add(h, "dev.lab-r.top", "late", NULL, 0, NULL, NULL, NULL),
                       DFNET_STATUS_UNAVAILABLE);
    assert_int_equal(th_release_stops(h), 1);
    next_stop(h, &from, "dev.lab-r.top.mid");
    assert_int_equal(th_release_stops(h), 1);
    next_stop(h, &from, "dev.lab-r.top");
    th_hold_stops(h, false);
    assert_int_equal(th_release_stops(h), 1);
    /* the children went with the driver */
    assert_int_equal(th_node_info(admin, "dev.lab-r.top.mid", info), DFNET_STATUS_NOT_FOUND);
    assert_int_equal(th_node_info(admin, "dev.lab-r.top.mid.low", info), DFNET_STATUS_NOT_FOUND);
    if (round == 0) {
      /* restarted once stopped; it adds its child again */
      assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-r.top", WAIT_MS,
                                &from, &ev));
      assert_true(th_wait_node(admin, "dev.lab-r.top", is_bound, WAIT_MS, info));
      dfnet_envelope_t *rep = calloc(1, sizeof *rep);
      assert_int_equal(th_request_join(restart, rep), DFNET_STATUS_OK);
      assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_driver_control_result_tag);
      assert_int_equal(rep->pb.msg.driver_control_result.outcomes_count, 1);
      assert_string_equal(rep->pb.msg.driver_control_result.outcomes[0].node, "dev.lab-r.top");
      assert_int_equal(rep->pb.msg.driver_control_result.outcomes[0].status.code, dfnet_v1_Code_OK);
      free(rep);
      assert_int_equal(th_node_add(h, "dev.lab-r.top", "mid", p2, 1, NULL, NULL, NULL),
                       DFNET_STATUS_OK);
      assert_true(th_wait_node(admin, "dev.lab-r.top.mid", is_bound, WAIT_MS, info));
      assert_int_equal(th_node_remove(h, "dev.lab-r.top"), DFNET_STATUS_OK);
      assert_true(wait_gone(admin, "dev.lab-r.top"));
    } else {
      assert_int_equal(th_node_info(admin, "dev.lab-r.top", info), DFNET_STATUS_NOT_FOUND);
    }
  }
  free(info);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offers_reach_the_child_only),
      cmocka_unit_test(test_composite_across_hosts),
      cmocka_unit_test(test_stale_composite_forgotten),
      cmocka_unit_test(test_sixteen_parents),
      cmocka_unit_test(test_children_stop_before_parent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
