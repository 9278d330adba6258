/* dfnet-manager integration: the real manager process, test host sessions and clients on
 * the real transport (tests/testhost). Each test starts its own manager on an ephemeral
 * port with a fresh state dir and a --drivers dir of packages built from real bind rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testhost/testhost.h"

#define WAIT_MS 10000

typedef struct fixture {
  char root[256];
  char drivers[300];
  char state[300];
  th_manager_t mgr;
} fixture_t;

static fixture_t *fixture_new(const char *name) {
  fixture_t *f = calloc(1, sizeof *f);
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-mgr-%s-%d", name, (int)getpid());
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  assert_int_equal(th_fresh_dir(f->drivers), 0);
  return f;
}

static void fixture_start(fixture_t *f, const char *grace) {
  assert_int_equal(
      th_manager_start(&f->mgr, f->state, f->drivers, "--host-grace", grace ? grace : "30", NULL),
      0);
}

static void fixture_free(fixture_t *f) {
  /* SIGTERM: a clean exit 0 is part of every test. */
  assert_int_equal(th_manager_stop(&f->mgr), 0);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", f->root, f->state);
  if (getenv("DFNET_KEEP") == NULL)
    assert_int_equal(system(cmd), 0);
  free(f);
}

static bool is_bound(const dfnet_v1_NodeInfo *i) { return i->state == dfnet_v1_NodeState_BOUND; }
static bool is_unbound_with_reason(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_UNBOUND && i->has_unbound_reason;
}
static bool is_offline(const dfnet_v1_NodeInfo *i) { return i->offline; }
static bool is_quarantined(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_QUARANTINED;
}
static bool is_owned_by_composite(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE;
}

/* ---- binding, fallback, ambiguity ------------------------------------------------------ */

static void test_binding_fallback_ambiguity(void **state) {
  (void)state;
  fixture_t *f = fixture_new("bind");
  assert_int_equal(th_write_driver(f->drivers, "rng", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "generic", "fuchsia.BIND_PROTOCOL == 40;",
                                   "\"fallback\": \"true\""),
                   0);
  assert_int_equal(th_write_driver(f->drivers, "dup-a", "fuchsia.BIND_PROTOCOL == 50;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "dup-b", "fuchsia.BIND_PROTOCOL == 50;", NULL), 0);
  fixture_start(f, NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-a", "host", NULL);
  testhost_t *v = th_connect(&f->mgr, "alice", "viewer", NULL);
  assert_non_null(h);
  assert_non_null(v);

  th_prop_t p31[] = {"#1=u:31"}, p40[] = {"#1=u:40"}, p50[] = {"#1=u:50"}, p99[] = {"#1=u:99"};
  assert_int_equal(th_node_add(h, "dev.lab-a", "rng0", p31, 1, NULL, "rng", NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a", "fb0", p40, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a", "amb0", p50, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a", "none0", p99, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  /* AddChild errors (docs/spec/dfv2.md "Nodes"). */
  assert_int_equal(th_node_add(h, "dev.lab-a", "rng0", p31, 1, NULL, NULL, NULL),
                   DFNET_STATUS_ALREADY_EXISTS);
  assert_int_equal(th_node_add(h, "dev.lab-a", "a.b", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(th_node_add(h, "dev.nowhere", "x", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_NOT_FOUND);
  th_prop_t dup[] = {"#1=u:1", "#1=u:2"};
  assert_int_equal(th_node_add(h, "dev.lab-a", "dupkey", dup, 2, NULL, NULL, NULL),
                   DFNET_STATUS_INVALID_ARGUMENT);

  th_event_t ev;
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.rng0", WAIT_MS, NULL, &ev));
  assert_string_equal(ev.url, "dfnet-boot:///rng#meta/rng.json");
  assert_int_equal(ev.driver_host_id, 0);
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.fb0", WAIT_MS, NULL, &ev));
  assert_string_equal(ev.url, "dfnet-boot:///generic#meta/generic.json");

  dfnet_v1_NodeInfo info;
  assert_true(th_wait_node(v, "dev.lab-a.rng0", is_bound, WAIT_MS, &info));
  assert_string_equal(info.driver_url, "dfnet-boot:///rng#meta/rng.json");
  assert_string_equal(info.class_path, "class/rng/000");
  assert_int_not_equal(info.driver_host_id, 0);
  /* The class path finds the node too. */
  assert_int_equal(th_node_info(v, "class/rng/000", &info), DFNET_STATUS_OK);
  assert_string_equal(info.moniker, "dev.lab-a.rng0");
  /* Ambiguity is an error recorded on the node, never a silent pick. */
  assert_true(th_wait_node(v, "dev.lab-a.amb0", is_unbound_with_reason, WAIT_MS, &info));
  assert_int_equal(info.unbound_reason.code, DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(info.unbound_reason.message, "multiple non-fallback drivers matched"));
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.amb0"), 0);
  assert_true(th_wait_node(v, "dev.lab-a.none0", is_unbound_with_reason, WAIT_MS, &info));
  assert_int_equal(info.unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  th_close(v);
  th_close(h);
  fixture_free(f);
}

/* ---- start failure, registered driver retries unbound nodes, roles --------------------- */

static void test_start_failure_registration_roles(void **state) {
  (void)state;
  fixture_t *f = fixture_new("reg");
  assert_int_equal(th_write_driver(f->drivers, "flaky", "fuchsia.BIND_PROTOCOL == 7;", NULL), 0);
  fixture_start(f, NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-b", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "root", "admin", NULL);
  testhost_t *viewer = th_connect(&f->mgr, "eve", "viewer", NULL);
  testhost_t *op = th_connect(&f->mgr, "olga", "operator", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  assert_non_null(viewer);
  assert_non_null(op);
  th_fail_url(h, "flaky", DFNET_STATUS_NOT_FOUND);
  th_prop_t p7[] = {"#1=u:7"}, p8[] = {"#1=u:8"};
  assert_int_equal(th_node_add(h, "dev.lab-b", "f0", p7, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-b", "n0", p8, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo info;
  /* Start failure: unbound with the host's status as the reason. */
  assert_true(th_wait_node(viewer, "dev.lab-b.f0", is_unbound_with_reason, WAIT_MS, &info));
  assert_int_equal(info.unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(info.unbound_reason.message, "failed to start"));

  /* A registered driver: a viewer and an operator may not upload; an admin may. */
  char pkgdir[400];
  snprintf(pkgdir, sizeof pkgdir, "%s/up", f->root);
  assert_int_equal(th_write_driver(f->root, "up", "fuchsia.BIND_PROTOCOL == 8;", NULL), 0);
  uint8_t *pkg;
  size_t size;
  uint8_t digest[32];
  assert_int_equal(th_pack(pkgdir, &pkg, &size, digest), 0);
  char msg[512];
  assert_int_equal(th_upload(viewer, "up", pkg, size, digest, 300, msg),
                   DFNET_STATUS_PERMISSION_DENIED);
  assert_int_equal(th_upload(op, "up", pkg, size, digest, 300, msg),
                   DFNET_STATUS_PERMISSION_DENIED);
  /* Wrong digest: DATA_LOSS, nothing registered. */
  uint8_t bad[32];
  memcpy(bad, digest, 32);
  bad[0] ^= 1;
  assert_int_equal(th_upload(admin, "up", pkg, size, bad, 300, msg), DFNET_STATUS_DATA_LOSS);
  assert_int_equal(th_upload(admin, "up", pkg, size, digest, 300, msg), DFNET_STATUS_OK);
  assert_non_null(strstr(msg, "dfnet-pkg://"));
  /* The very same package again (same SHA-256): OK, "already registered", nothing
   * changes (registering is idempotent: provisioning scripts re-run). */
  assert_int_equal(th_upload(admin, "up", pkg, size, digest, 300, msg), DFNET_STATUS_OK);
  assert_non_null(strstr(msg, "already registered dfnet-pkg://"));
  free(pkg);
  /* Every unbound node is retried against it. */
  assert_true(th_wait_node(viewer, "dev.lab-b.n0", is_bound, WAIT_MS, &info));
  assert_non_null(strstr(info.driver_url, "dfnet-pkg://"));
  assert_non_null(strstr(info.driver_url, "/up#meta/up.json"));

  /* The host fetches the package by digest. */
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_package_fetch_tag;
  memcpy(req->pb.msg.package_fetch.digest, digest, 32);
  req->pb.msg.package_fetch.max_bytes = 100000;
  assert_int_equal(th_request(h, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_package_chunk_tag);
  assert_int_equal(rep->pb.msg.package_chunk.total_size, size);
  assert_true(rep->pb.msg.package_chunk.last);
  req->pb.msg.package_fetch.digest[0] ^= 1;
  assert_int_equal(th_request(h, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_status_tag);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_NOT_FOUND);

  /* Roles: a viewer may not change drivers; a host may not query; a client may not
   * publish nodes. */
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_driver_control_tag;
  snprintf(req->pb.msg.driver_control.url, sizeof req->pb.msg.driver_control.url,
           "dfnet-boot:///flaky#meta/flaky.json");
  req->pb.msg.driver_control.action = dfnet_v1_DriverControl_Action_DISABLE;
  assert_int_equal(th_request(viewer, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_status_tag);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_PERMISSION_DENIED);
  assert_string_equal(rep->pb.msg.status.message, "driver_control needs role admin");
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_driver_control_result_tag);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_list_hosts_tag;
  assert_int_equal(th_request(h, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_PERMISSION_DENIED);
  assert_string_equal(rep->pb.msg.status.message, "list_hosts is not a host message");
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_node_add_tag; /* from a client */
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_PERMISSION_DENIED);
  assert_string_equal(rep->pb.msg.status.message, "node_add is not a client message");
  assert_int_equal(th_node_add(admin, "dev.lab-b", "x", NULL, 0, NULL, NULL, NULL),
                   DFNET_STATUS_PERMISSION_DENIED);
  free(req);
  free(rep);
  th_close(op);
  th_close(viewer);
  th_close(admin);
  th_close(h);

  /* Registered drivers survive a restart of the manager. */
  assert_int_equal(th_manager_stop(&f->mgr), 0);
  fixture_start(f, NULL);
  h = th_connect(&f->mgr, "lab-b", "host", NULL);
  assert_non_null(h);
  assert_int_equal(th_node_add(h, "dev.lab-b", "n1", p8, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  th_event_t ev;
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-b.n1", WAIT_MS, NULL, &ev));
  assert_non_null(strstr(ev.url, "/up#meta/up.json"));
  th_close(h);
  fixture_free(f);
}

/* ---- removal order and crash policy ---------------------------------------------------- */

static void test_removal_and_crash_policy(void **state) {
  (void)state;
  fixture_t *f = fixture_new("crash");
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(
      th_write_driver(f->drivers, "leaf", "fuchsia.BIND_PROTOCOL == 2;", "\"colocate\": \"true\""),
      0);
  assert_int_equal(th_write_driver(f->drivers, "phoenix", "fuchsia.BIND_PROTOCOL == 3;",
                                   "\"host_restart_on_crash\": \"true\""),
                   0);
  fixture_start(f, NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-c", "host", NULL);
  testhost_t *v = th_connect(&f->mgr, "vic", "viewer", NULL);
  assert_non_null(h);
  assert_non_null(v);
  th_prop_t p1[] = {"#1=u:1"}, p2[] = {"#1=u:2"}, p3[] = {"#1=u:3"};
  dfnet_v1_NodeInfo info, parent_info;
  assert_int_equal(th_node_add(h, "dev.lab-c", "bus", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(th_wait_node(v, "dev.lab-c.bus", is_bound, WAIT_MS, &parent_info));
  assert_int_equal(th_node_add(h, "dev.lab-c.bus", "a", p2, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-c.bus.a", "b", p2, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(th_wait_node(v, "dev.lab-c.bus.a.b", is_bound, WAIT_MS, &info));
  /* colocate: the child's driver goes into its parent's driver host. */
  th_event_t ev;
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-c.bus.a", WAIT_MS, NULL, &ev));
  assert_int_equal(ev.driver_host_id, parent_info.driver_host_id);

  /* Hot-unplug of bus: drivers stopped bottom-up (b, a, bus), then the nodes go. */
  size_t from = 0;
  assert_int_equal(th_node_remove(h, "dev.lab-c.bus"), DFNET_STATUS_OK);
  th_event_t s1, s2, s3;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, NULL, WAIT_MS, &from, &s1));
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, NULL, WAIT_MS, &from, &s2));
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, NULL, WAIT_MS, &from, &s3));
  assert_string_equal(s1.node, "dev.lab-c.bus.a.b");
  assert_string_equal(s2.node, "dev.lab-c.bus.a");
  assert_string_equal(s3.node, "dev.lab-c.bus");
  assert_int_equal(th_node_info(v, "dev.lab-c.bus.a", &info), DFNET_STATUS_NOT_FOUND);
  /* Removing twice is harmless. */
  assert_int_equal(th_node_remove(h, "dev.lab-c.bus"), DFNET_STATUS_OK);

  /* Crash without host_restart_on_crash: the node and its subtree go, the child's driver
   * stopped first. */
  assert_int_equal(th_node_add(h, "dev.lab-c", "bus2", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_true(th_wait_node(v, "dev.lab-c.bus2", is_bound, WAIT_MS, &parent_info));
  assert_int_equal(th_node_add(h, "dev.lab-c.bus2", "kid", p3, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(th_wait_node(v, "dev.lab-c.bus2.kid", is_bound, WAIT_MS, &info));
  from = 0;
  const char *dead[] = {"dev.lab-c.bus2", NULL};
  assert_int_equal(th_driver_host_exit(h, parent_info.driver_host_id, dead), DFNET_STATUS_OK);
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_node_remove_tag, "dev.lab-c.bus2", WAIT_MS, NULL, &ev));
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, "dev.lab-c.bus2.kid", WAIT_MS,
                            NULL, &ev));
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_stop_tag, "dev.lab-c.bus2"), 0);
  assert_int_equal(th_node_info(v, "dev.lab-c.bus2", &info), DFNET_STATUS_NOT_FOUND);

  /* host_restart_on_crash: restarted with backoff; quarantined after 5 crashes. */
  assert_int_equal(th_node_add(h, "dev.lab-c", "ph", p3, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  for (int crash = 1; crash <= 5; crash++) {
    assert_true(th_wait_node(v, "dev.lab-c.ph", is_bound, WAIT_MS, &info));
    const char *nodes[] = {"dev.lab-c.ph", NULL};
    assert_int_equal(th_driver_host_exit(h, info.driver_host_id, nodes), DFNET_STATUS_OK);
    if (crash < 5) { /* restarted: a new DriverStart for the node */
      size_t starts = (size_t)crash + 1;
      for (int i = 0; i < 200 && th_count_events(h, dfnet_v1_Envelope_driver_start_tag,
                                                 "dev.lab-c.ph") < starts;
           i++)
        usleep(50000);
      assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-c.ph"),
                       starts);
    }
  }
  assert_true(th_wait_node(v, "dev.lab-c.ph", is_quarantined, WAIT_MS, &info));
  assert_non_null(strstr(info.unbound_reason.message, "quarantined"));
  th_close(v);
  th_close(h);
  fixture_free(f);
}

/* ---- sessions: duplicate name, grace period, reconcile --------------------------------- */

static void test_sessions_grace_reconcile(void **state) {
  (void)state;
  fixture_t *f = fixture_new("grace");
  assert_int_equal(th_write_driver(f->drivers, "rng", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  fixture_start(f, "2");
  testhost_t *v = th_connect(&f->mgr, "vera", "viewer", NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-d", "host", NULL);
  assert_non_null(v);
  assert_non_null(h);
  /* A second live session with the same host name is refused. */
  dfnet_status_t st;
  testhost_t *dup = th_connect(&f->mgr, "lab-d", "host", &st);
  assert_null(dup);
  assert_int_equal(st, DFNET_STATUS_ALREADY_EXISTS);

  th_prop_t p31[] = {"#1=u:31"};
  assert_int_equal(th_node_add(h, "dev.lab-d", "rng0", p31, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-d", "gone", NULL, 0, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo info;
  assert_true(th_wait_node(v, "dev.lab-d.rng0", is_bound, WAIT_MS, &info));
  uint64_t dh = info.driver_host_id;

  /* Drop: offline at once; reconnect within the grace period with the driver running. */
  th_close(h);
  assert_true(th_wait_node(v, "dev.lab-d.rng0", is_offline, WAIT_MS, &info));
  assert_int_equal(info.state, dfnet_v1_NodeState_BOUND);
  h = th_connect(&f->mgr, "lab-d", "host", &st);
  assert_non_null(h);
  assert_int_equal(
      th_node_add_running(h, "dev.lab-d", "rng0", p31, 1, "dfnet-boot:///rng#meta/rng.json", dh),
      DFNET_STATUS_OK);
  assert_int_equal(th_node_info(v, "dev.lab-d.rng0", &info), DFNET_STATUS_OK);
  assert_false(info.offline);
  assert_int_equal(info.state, dfnet_v1_NodeState_BOUND);
  assert_int_equal(info.driver_host_id, dh);
  /* Nothing restarted: this session never saw a DriverStart. */
  usleep(300000);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, NULL), 0);
  /* "gone" was not re-announced: removed at the end of the grace period. */
  for (int i = 0; i < 100 && th_node_info(v, "dev.lab-d.gone", &info) == DFNET_STATUS_OK; i++)
    usleep(100000);
  assert_int_equal(th_node_info(v, "dev.lab-d.gone", &info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(v, "dev.lab-d.rng0", &info), DFNET_STATUS_OK);

  /* Drop for good: everything removed after the grace period, root included. */
  th_close(h);
  for (int i = 0; i < 100 && th_node_info(v, "dev.lab-d", &info) == DFNET_STATUS_OK; i++)
    usleep(100000);
  assert_int_equal(th_node_info(v, "dev.lab-d", &info), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_node_info(v, "dev.lab-d.rng0", &info), DFNET_STATUS_NOT_FOUND);
  th_close(v);
  fixture_free(f);
}

/* ---- composites ------------------------------------------------------------------------ */

static bool composite_seen;
static void find_composite(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_composite_info_tag &&
      strcmp(item->pb.msg.composite_info.name, (const char *)user) == 0 &&
      item->pb.msg.composite_info.moniker[0] != '\0')
    composite_seen = true;
}

static void test_composites(void **state) {
  (void)state;
  fixture_t *f = fixture_new("comp");
  assert_int_equal(th_write_driver(f->drivers, "combo",
                                   "composite combo;\n"
                                   "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                                   "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                                   NULL),
                   0);
  fixture_start(f, NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-e", "host", NULL);
  testhost_t *h2 = th_connect(&f->mgr, "lab-f", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  assert_non_null(h);
  assert_non_null(h2);
  assert_non_null(admin);
  th_prop_t l[] = {"#1=u:60"}, r[] = {"#1=u:61"};
  assert_int_equal(th_node_add(h, "dev.lab-e", "l", l, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo info;
  assert_true(th_wait_node(admin, "dev.lab-e.l", is_owned_by_composite, WAIT_MS, &info));
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_driver_start_tag, NULL), 0);
  assert_int_equal(th_node_add(h, "dev.lab-e", "r", r, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  /* Assembled: a child of each parent, the composite driver started on the primary's host. */
  th_event_t ev;
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-e.l.combo", WAIT_MS,
                            NULL, &ev));
  assert_string_equal(ev.url, "dfnet-boot:///combo#meta/combo.json");
  assert_true(th_wait_node(admin, "dev.lab-e.l.combo", is_bound, WAIT_MS, &info));
  assert_int_equal(info.parents_count, 2);
  assert_string_equal(info.parents[1], "dev.lab-e.r");
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_list_composites_tag;
  composite_seen = false;
  assert_int_equal(th_list(admin, req, find_composite, "combo", NULL), DFNET_STATUS_OK);
  assert_true(composite_seen);

  /* Removing a parent removes the composite node (stopping its driver first). */
  assert_int_equal(th_node_remove(h, "dev.lab-e.r"), DFNET_STATUS_OK);
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, "dev.lab-e.l.combo", WAIT_MS, NULL, &ev));
  assert_int_equal(th_node_info(admin, "dev.lab-e.l.combo", &info), DFNET_STATUS_NOT_FOUND);

  /* Composite node spec: its parents may be on two hosts (the composite node is the
   * primary parent's host's). */
  th_prop_t sa[] = {"spec.kind=s:a"}, sb[] = {"spec.kind=s:b"};
  assert_int_equal(th_node_add(h, "dev.lab-e", "sa", sa, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h2, "dev.lab-f", "sb", sb, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_add_composite_node_spec_tag;
  dfnet_v1_AddCompositeNodeSpec *a = &req->pb.msg.add_composite_node_spec;
  a->has_spec = true;
  snprintf(a->spec.name, sizeof a->spec.name, "pair");
  a->spec.parents_count = 2;
  const char *kinds[2] = {"a", "b"};
  for (int i = 0; i < 2; i++) {
    dfnet_v1_BindRule *br = &a->spec.parents[i].bind_rules[0];
    a->spec.parents[i].bind_rules_count = 1;
    br->which_key = dfnet_v1_BindRule_str_key_tag;
    snprintf(br->key.str_key, sizeof br->key.str_key, "spec.kind");
    br->condition = dfnet_v1_Condition_ACCEPT;
    br->values_count = 1;
    br->values[0].which_value = dfnet_v1_PropertyValue_str_value_tag;
    snprintf(br->values[0].value.str_value, sizeof br->values[0].value.str_value, "%s", kinds[i]);
  }
  /* Missing name: INVALID_ARGUMENT (DFv2 MISSING_ARGS). */
  a->spec.name[0] = '\0';
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_INVALID_ARGUMENT);
  snprintf(a->spec.name, sizeof a->spec.name, "pair");
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_OK);
  /* It assembles; the parents are owned by the composite. */
  assert_true(th_wait_node(admin, "dev.lab-e.sa", is_owned_by_composite, WAIT_MS, &info));
  assert_true(th_wait_node(admin, "dev.lab-f.sb", is_owned_by_composite, WAIT_MS, &info));
  assert_int_equal(th_node_info(admin, "dev.lab-e.sa.pair", &info), DFNET_STATUS_OK);
  assert_string_equal(info.host, "lab-e");
  assert_int_equal(info.parents_count, 2);
  assert_string_equal(info.parents[1], "dev.lab-f.sb");
  /* No composite driver matches the spec's parents yet: unbound with the reason. */
  assert_int_equal(info.unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_ALREADY_EXISTS);
  free(req);
  free(rep);
  th_close(admin);
  th_close(h2);
  th_close(h);
  fixture_free(f);
}

/* ---- unregistering a registered composite driver ---------------------------------------- */

static bool is_unbound(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_UNBOUND;
}

/* A registered driver with composite bind rules, assembled on two nodes, unregistered by
 * its name: its composite node is removed (its driver stopped first), the parents are
 * free and matched again (nothing takes them: unbound with the reason), the composite
 * leaves the listing, and the name resolves no more. */
static void test_unregister_composite_driver(void **state) {
  (void)state;
  fixture_t *f = fixture_new("unreg");
  fixture_start(f, NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-u", "host", NULL);
  testhost_t *admin = th_connect(&f->mgr, "ada", "admin", NULL);
  assert_non_null(h);
  assert_non_null(admin);
  char pkgdir[400], msg[512];
  snprintf(pkgdir, sizeof pkgdir, "%s/duo", f->root);
  assert_int_equal(th_write_driver(f->root, "duo",
                                   "composite duo;\n"
                                   "primary node \"a\" { fuchsia.BIND_PROTOCOL == 70; }\n"
                                   "node \"b\" { fuchsia.BIND_PROTOCOL == 71; }\n",
                                   NULL),
                   0);
  uint8_t *pkg, digest[32];
  size_t size;
  assert_int_equal(th_pack(pkgdir, &pkg, &size, digest), 0);
  assert_int_equal(th_upload(admin, "duo", pkg, size, digest, 300, msg), DFNET_STATUS_OK);
  free(pkg);
  th_prop_t pa[] = {"#1=u:70"}, pb[] = {"#1=u:71"};
  assert_int_equal(th_node_add(h, "dev.lab-u", "a", pa, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-u", "b", pb, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo info;
  assert_true(th_wait_node(admin, "dev.lab-u.a.duo", is_bound, WAIT_MS, &info));

  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_driver_control_tag;
  snprintf(req->pb.msg.driver_control.url, sizeof req->pb.msg.driver_control.url, "duo");
  req->pb.msg.driver_control.action = dfnet_v1_DriverControl_Action_UNREGISTER;
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_driver_control_result_tag);
  assert_int_equal(rep->pb.msg.driver_control_result.nodes, 1);
  assert_non_null(strstr(rep->pb.msg.driver_control_result.url, "/duo#meta/duo.json"));
  th_event_t ev;
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_stop_tag, "dev.lab-u.a.duo", WAIT_MS, NULL, &ev));
  assert_int_equal(th_node_info(admin, "dev.lab-u.a.duo", &info), DFNET_STATUS_NOT_FOUND);
  assert_true(th_wait_node(admin, "dev.lab-u.a", is_unbound, WAIT_MS, &info));
  assert_int_equal(info.unbound_reason.code, DFNET_STATUS_NOT_FOUND);
  assert_true(th_wait_node(admin, "dev.lab-u.b", is_unbound, WAIT_MS, &info));
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_list_composites_tag;
  composite_seen = false;
  assert_int_equal(th_list(admin, req, find_composite, "duo", NULL), DFNET_STATUS_OK);
  assert_false(composite_seen);
  /* gone: the name (and the URL) resolve no more */
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_driver_control_tag;
  snprintf(req->pb.msg.driver_control.url, sizeof req->pb.msg.driver_control.url, "duo");
  req->pb.msg.driver_control.action = dfnet_v1_DriverControl_Action_UNREGISTER;
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_status_tag);
  assert_int_equal(rep->pb.msg.status.code, dfnet_v1_Code_NOT_FOUND);
  free(req);
  free(rep);
  th_close(admin);
  th_close(h);
  fixture_free(f);
}

/* ---- a bad boot package does not stop the others; bind why ------------------------------- */

static void count_traces(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_bind_trace_tag)
    (*(int *)user)++;
}

static void test_bad_boot_package_and_bind_why(void **state) {
  (void)state;
  fixture_t *f = fixture_new("badpkg");
  assert_int_equal(th_write_driver(f->drivers, "good", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "bad", "fuchsia.BIND_PROTOCOL == 31;",
                                   "\"colocate\": \"true\", \"host_restart_on_crash\": \"true\""),
                   0);
  fixture_start(f, NULL);
  testhost_t *v = th_connect(&f->mgr, "val", "viewer", NULL);
  testhost_t *h = th_connect(&f->mgr, "lab-g", "host", NULL);
  assert_non_null(v);
  assert_non_null(h);
  th_prop_t p31[] = {"#1=u:31"};
  assert_int_equal(th_node_add(h, "dev.lab-g", "n", p31, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo info;
  /* Only "good" loaded, so the node is not ambiguous. */
  assert_true(th_wait_node(v, "dev.lab-g.n", is_bound, WAIT_MS, &info));
  assert_string_equal(info.driver_url, "dfnet-boot:///good#meta/good.json");
  /* The refusal names the file and the field. */
  char cmd[800];
  snprintf(cmd, sizeof cmd, "grep -q 'bad/meta/bad.json: program.host_restart_on_crash' '%s'",
           f->mgr.log_path);
  assert_int_equal(system(cmd), 0);
  dfnet_envelope_t *req = calloc(1, sizeof *req);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_bind_why_tag;
  snprintf(req->pb.msg.bind_why.node, sizeof req->pb.msg.bind_why.node, "dev.lab-g.n");
  int traces = 0;
  char msg[512];
  assert_int_equal(th_list(v, req, count_traces, &traces, msg), DFNET_STATUS_OK);
  assert_int_equal(traces, 1);
  assert_non_null(strstr(msg, "bound to dfnet-boot:///good"));
  free(req);
  th_close(h);
  th_close(v);
  fixture_free(f);
}

/* Regression: listing nodes before any node exists called qsort(NULL, 0, ...), undefined
 * behaviour that made the sanitizer build of the manager abort (found by test_fleet). */
static void count_item(void *user, const dfnet_envelope_t *item) {
  (void)item;
  (*(int *)user)++;
}

static void test_list_nodes_before_any_node(void **state) {
  (void)state;
  fixture_t *f = fixture_new("empty");
  fixture_start(f, NULL);
  testhost_t *c = th_connect(&f->mgr, "viewer-1", "viewer", NULL);
  assert_non_null(c);
  dfnet_envelope_t *req = calloc(1, sizeof *req);
  req->pb.which_msg = dfnet_v1_Envelope_list_nodes_tag;
  snprintf(req->pb.msg.list_nodes.filter, sizeof req->pb.msg.list_nodes.filter, "dev.none");
  int items = 0;
  assert_int_equal(th_list(c, req, count_item, &items, NULL), DFNET_STATUS_OK);
  assert_int_equal(items, 0);
  assert_true(th_manager_alive(&f->mgr));
  free(req);
  th_close(c);
  fixture_free(f);
}

/* Regression: with IPv6 on, lws bound an IPv4 --listen address to every address, so the
 * default 127.0.0.1:7443 was reachable from the network. Listening on 127.0.0.2, the
 * manager must not answer on 127.0.0.3 (the same loopback interface). */
static int tcp_connect(const char *ip, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &sa.sin_addr);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  close(fd);
  return rc;
}

static void test_listen_address_is_honoured(void **state) {
  (void)state;
  fixture_t *f = fixture_new("listen");
  assert_int_equal(th_manager_start(&f->mgr, f->state, f->drivers, "--listen", "127.0.0.2:0", NULL),
                   0);
  assert_int_equal(tcp_connect("127.0.0.2", f->mgr.port), 0);
  assert_int_not_equal(tcp_connect("127.0.0.3", f->mgr.port), 0);
  fixture_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_binding_fallback_ambiguity),
      cmocka_unit_test(test_start_failure_registration_roles),
      cmocka_unit_test(test_removal_and_crash_policy),
      cmocka_unit_test(test_sessions_grace_reconcile),
      cmocka_unit_test(test_composites),
      cmocka_unit_test(test_unregister_composite_driver),
      cmocka_unit_test(test_bad_boot_package_and_bind_why),
      cmocka_unit_test(test_list_nodes_before_any_node),
      cmocka_unit_test(test_listen_address_is_honoured),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
