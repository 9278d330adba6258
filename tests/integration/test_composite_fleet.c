/* A composite across two boards with the real manager and two real host agents (on
 * loopback), the agent's side of issue 18 ("Drivers that talk to drivers"):
 *
 * test_composite_across_agents
 *   - a composite node spec whose parents are platform devices of two agents assembles on
 *     the primary parent's agent, which starts the composite driver (the echo test driver)
 *     on a node it never announced: it records it, and the driver answers calls;
 *   - the primary's agent silenced past the manager's keepalive and resumed: it re-announces
 *     the composite node with its running driver, and the manager reconciles it (nothing
 *     restarted);
 *   - the other agent gone past its grace: the composite goes; its agent stops the driver
 *     and forgets the node (told by the manager).
 *
 * test_composite_calls_both_parents: the composite's driver calls its parents on two
 * boards (include/dfnet/driver.h "Calling another driver", every process real):
 *   - on each agent (lab-a, lab-b) a platform device is bound by the `parent` test driver
 *     (tests/drivers/echo.c built with ECHO_PARENT), which adds a child offered
 *     dfnet.test.Echo; a composite node spec takes the two children as parents, lab-a's
 *     the primary (it comes first: the children look alike), and its driver is the `child`
 *     test driver (tests/drivers/child.c), driven through its dfnet.test.Child/Run: it calls
 *     the offer named by the Run (instance "default" and "0": lab-a's parent, on the same
 *     board through lab-a's agent; "1": lab-b's parent, across boards through the manager)
 *     and answers with the call's end ("status=..;client=..;data=..");
 *   - unary calls to both parents succeed, and each parent sees the composite's node and
 *     driver URL as its caller;
 *   - lab-b's agent killed (SIGKILL) with a held call and a stalled stream of the composite
 *     in flight to lab-b's parent: both end UNAVAILABLE while the composite still runs (a
 *     call that hung would end only at its deadline, or with the composite's driver past the
 *     grace: either fails the test), and so does a call made afterwards; lab-b is only
 *     offline (it could come back within its grace and reconcile with its drivers running),
 *     so these are transient ends and the client of that offer stays OK
 *     (dfnet_driver_client_status; docs/architecture.md "Calls between drivers");
 *   - calls to lab-a's parent keep working until the composite goes past lab-b's grace: its
 *     driver is stopped on lab-a, lab-a's parent stays bound and its child waits for the
 *     spec again.
 * No timing is asserted: every wait is bounded only so that a failure ends the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"
#include "testhost/testhost.h"

#define WAIT_MS 30000
#define PAIR "dev.lab-a.platform.pa.pair"

/* test_composite_calls_both_parents */
#define DUET "dev.lab-a.platform.qa.child.duet"
#define DUET_URL "dfnet-boot:///duet#meta/duet.json"
#define PARENT_A "dev.lab-a.platform.qa"
#define PARENT_B "dev.lab-b.platform.qb"
#define CALLS_GRACE_S 10        /* lab-b's grace: room for the checks made while it is offline */
#define INNER_DEADLINE_MS 20000 /* the composite's calls to lab-b held over the kill */
#define RUN_DEADLINE_MS 30000   /* the test's Run calls to the composite's driver */

static const char *const manager_extra[] = {"--keepalive-ms", "100", NULL};

/* A Run call to the composite's driver left in flight (dfnet_client_call_start). */
typedef struct pending_run {
  atomic_bool done;
  dfnet_status_t status;
  char reply[2048];
} pending_run_t;

static struct {
  fabric_t fab;
  fabric_agent_t agents[2];
  char board_b[320];
  const char *agent_b_extra[3];
  dfnet_client_t *admin;
  pending_run_t held, stream; /* static: a call may end after a failed test */
} F;

/* How many lines of the file contain `needle`. */
static int count_lines(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (strstr(line, needle) != NULL)
      n++;
  fclose(f);
  return n;
}

/* Wait until the file has a line containing `needle`. */
static bool wait_line(const char *path, const char *needle) {
  uint64_t end = fabric_now_ms() + WAIT_MS;
  while (count_lines(path, needle) < 1 && fabric_now_ms() < end)
    fabric_sleep_ms(100);
  return count_lines(path, needle) >= 1;
}

/* A fresh fabric `name` with the host and admin certificates and the packages, and the
 * composite driver `composite` (its rules `rules`, its binary tests/drivers/<so>). */
static int prepare_fabric(const char *name, const fabric_package_t *packages, const char *composite,
                          const char *rules, const char *so) {
  memset(&F, 0, sizeof F);
  if (fabric_init(&F.fab, name, NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", "lab-a") != 0 || fabric_issue(&F.fab, "host", "lab-b") != 0 ||
      fabric_issue(&F.fab, "admin", "root") != 0)
    return -1;
  char drivers[300];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  if (th_write_driver(drivers, composite, rules, NULL) != 0 ||
      fabric_sh("cp '%s/tests/drivers/%s' '%s/%s/driver/%s.so'", F.fab.build, so, drivers,
                composite, composite) != 0)
    return -1;
  return 0;
}

/* One board file per agent: <root>/board.json (lab-a's) and <root>/board-b.json. */
static int write_boards(const char *const *board_a, const char *const *board_b) {
  fabric_write_board(&F.fab, board_b);
  snprintf(F.board_b, sizeof F.board_b, "%s/board-b.json", F.fab.root);
  if (fabric_sh("mv '%s/board.json' '%s'", F.fab.root, F.board_b) != 0)
    return -1;
  fabric_write_board(&F.fab, board_a);
  F.agents[0].name = "lab-a";
  F.agents[1].name = "lab-b";
  F.agent_b_extra[0] = "--board"; /* the last --board counts */
  F.agent_b_extra[1] = F.board_b;
  F.agents[1].extra = F.agent_b_extra;
  return 0;
}

static int fleet_start(void) {
  /* the composite driver: the echo test driver with composite bind rules */
  if (prepare_fabric("compfleet", NULL, "duo",
                     "composite duo;\n"
                     "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                     "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                     "echo.so") != 0)
    return -1;
  /* one platform device per board: pa (did 10) on lab-a, pb (did 11) on lab-b */
  const char *board_b[] = {"pb:11", NULL}, *board_a[] = {"pa:10", NULL};
  if (write_boards(board_a, board_b) != 0)
    return -1;
  F.fab.manager_extra = manager_extra;
  if (fabric_start_manager(&F.fab, "127.0.0.1", 3) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agents[0]);
  fabric_start_agent(&F.fab, &F.agents[1]);
  F.admin = fabric_connect(&F.fab, "root");
  return F.admin == NULL ? -1 : 0;
}

/* After each test, and after a set-up that failed (cmocka then runs no teardown). */
static int fleet_teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin); /* ends the calls still in flight */
  F.admin = NULL;
  fabric_cleanup(&F.fab, F.agents, 2);
  return 0;
}

static int fleet_setup(void **state) {
  if (fleet_start() == 0)
    return 0;
  fleet_teardown(state);
  return -1;
}

static bool is_owned(fabric_node_t n, const void *arg) {
  (void)arg;
  return n.found && n.state == DFNET_CLIENT_NODE_OWNED_BY_COMPOSITE;
}

static void test_composite_across_agents(void **state) {
  (void)state;
  assert_true(
      fabric_wait_node(F.admin, "dev.lab-a.platform.pa", fabric_is_found, NULL, WAIT_MS, NULL));
  assert_true(
      fabric_wait_node(F.admin, "dev.lab-b.platform.pb", fabric_is_found, NULL, WAIT_MS, NULL));
  /* parent i: the platform device of did 10 + i, shown to the driver as protocol 60 + i */
  dfnet_client_property_t values[2] = {
      {.str_key = "fuchsia.BIND_PLATFORM_DEV_DID", .type = DFNET_CLIENT_VALUE_INT, .int_value = 10},
      {.str_key = "fuchsia.BIND_PLATFORM_DEV_DID",
       .type = DFNET_CLIENT_VALUE_INT,
       .int_value = 11}};
  dfnet_client_property_t props[2] = {
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 60},
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 61}};
  dfnet_client_bind_rule_t rules[2];
  dfnet_client_parent_spec_t parents[2];
  for (int i = 0; i < 2; i++) {
    rules[i] = (dfnet_client_bind_rule_t){.str_key = "fuchsia.BIND_PLATFORM_DEV_DID",
                                          .condition = DFNET_CLIENT_ACCEPT,
                                          .value_count = 1,
                                          .values = &values[i]};
    parents[i] = (dfnet_client_parent_spec_t){
        .rule_count = 1, .rules = &rules[i], .property_count = 1, .properties = &props[i]};
  }
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_add_composite_node_spec(F.admin, "pair", parents, 2, &err),
                   DFNET_STATUS_OK);
  /* lab-a's agent starts the composite's driver on a node it never announced */
  fabric_node_t n;
  assert_true(fabric_wait_node(F.admin, PAIR, fabric_is_bound, NULL, WAIT_MS, &n));
  assert_true(fabric_wait_node(F.admin, "dev.lab-b.platform.pb", is_owned, NULL, WAIT_MS, NULL));
  assert_true(count_lines(F.agents[0].log, "composite node recorded") >= 1);
  assert_int_equal(count_lines(F.agents[1].log, "DriverStart"), 0);
  char reply[64];
  assert_int_equal(
      fabric_call(F.admin, PAIR, "/dfnet.test.Echo/Echo", "hi", 2, 5000, reply, sizeof reply),
      DFNET_STATUS_OK);
  assert_string_equal(reply, "hi");
  uint64_t driver_host = n.driver_host_id;
  assert_int_not_equal(driver_host, 0);

  /* lab-a silenced past the manager's keepalive, then back: it announces the composite
   * node again with its running driver, and the manager keeps it (no new start) */
  int starts = count_lines(F.agents[0].log, "DriverStart dfnet-boot:///duo");
  assert_int_equal(kill(F.agents[0].pid, SIGSTOP), 0);
  bool offline = fabric_wait_node(F.admin, PAIR, fabric_is_offline, NULL, WAIT_MS, NULL);
  assert_int_equal(kill(F.agents[0].pid, SIGCONT), 0);
  assert_true(offline);
  assert_true(fabric_wait_node(F.admin, PAIR, fabric_is_bound, NULL, WAIT_MS, &n));
  assert_int_equal(n.driver_host_id, driver_host);
  assert_true(wait_line(F.fab.manager_log, PAIR ": reconciled"));
  assert_int_equal(count_lines(F.agents[0].log, "DriverStart dfnet-boot:///duo"), starts);
  assert_int_equal(
      fabric_call(F.admin, PAIR, "/dfnet.test.Echo/Echo", "again", 5, 5000, reply, sizeof reply),
      DFNET_STATUS_OK);

  /* lab-b gone for good: past its grace (3 s) the composite goes with its parent there;
   * lab-a's agent stops the driver and forgets the node */
  assert_true(fabric_stop_process(&F.agents[1].pid, SIGKILL) >= 0);
  assert_true(fabric_wait_node(F.admin, PAIR, fabric_is_gone, NULL, WAIT_MS, NULL));
  assert_true(wait_line(F.agents[0].log, PAIR ": the manager removed this node"));
  assert_true(wait_line(F.agents[0].log, "DriverStop dfnet-boot:///duo"));
  assert_true(fabric_wait_node(F.admin, "dev.lab-a.platform.pa", is_owned, NULL, WAIT_MS, NULL));
  assert_true(fabric_call(F.admin, PAIR, "/dfnet.test.Echo/Echo", "x", 1, 5000, NULL, 0) ==
              DFNET_STATUS_NOT_FOUND);
}

/* ---- the composite's driver calls both parents -------------------------------------- */

/* `text` contains `part`, or the test fails showing both. */
static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted \"%s\" in \"%s\"", part, text);
}

/* A blocking unary call of `method` on `target`: OK or the test fails; its reply (static). */
static const char *ask(const char *target, const char *method, const char *req) {
  static char reply[2048];
  reply[0] = '\0';
  assert_int_equal(
      fabric_call(F.admin, target, method, req, strlen(req), RUN_DEADLINE_MS, reply, sizeof reply),
      DFNET_STATUS_OK);
  return reply;
}

/* The composite's driver makes the call `req` names (tests/drivers/child.c "Run") and
 * answers with its end. */
static const char *run(const char *req) { return ask(DUET, "/dfnet.test.Child/Run", req); }

static void pending_message(void *user, dfnet_client_call_id_t call, const uint8_t *data,
                            size_t len) {
  pending_run_t *p = user;
  (void)call;
  size_t n = len < sizeof p->reply - 1 ? len : sizeof p->reply - 1;
  if (n > 0)
    memcpy(p->reply, data, n);
  p->reply[n] = '\0';
}

static void pending_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                         const char *message) {
  pending_run_t *p = user;
  (void)call;
  p->status = status;
  if (status != DFNET_STATUS_OK)
    snprintf(p->reply, sizeof p->reply, "%s", message);
  atomic_store(&p->done, true);
}

/* Start a Run and leave it in flight. */
static void run_start(pending_run_t *p, const char *req) {
  atomic_store(&p->done, false);
  p->reply[0] = '\0';
  dfnet_client_call_options_t o = {.deadline_ms = RUN_DEADLINE_MS};
  assert_int_equal(dfnet_client_call_start(F.admin, DUET, "/dfnet.test.Child/Run", req, strlen(req),
                                           &o, pending_message, pending_done, p, NULL),
                   DFNET_STATUS_OK);
}

/* Wait for a Run started with run_start to end (bounded past its deadline, so that a hang
 * fails the test rather than ctest's timeout); its reply. */
static const char *run_wait(pending_run_t *p) {
  uint64_t end = fabric_now_ms() + RUN_DEADLINE_MS + WAIT_MS;
  while (!atomic_load(&p->done) && fabric_now_ms() < end)
    fabric_sleep_ms(50);
  if (!atomic_load(&p->done))
    fail_msg("a Run of the composite's driver never ended");
  if (p->status != DFNET_STATUS_OK)
    fail_msg("the Run itself ended %s (%s): the composite's call did not end before it",
             dfnet_status_str(p->status), p->reply);
  return p->reply;
}

/* A parent's dfnet.test.Echo/Stats has `part`, polled until it has (bounded). */
static bool wait_stats(const char *parent, const char *part) {
  uint64_t end = fabric_now_ms() + WAIT_MS;
  do {
    if (strstr(ask(parent, "/dfnet.test.Echo/Stats", ""), part) != NULL)
      return true;
    fabric_sleep_ms(50);
  } while (fabric_now_ms() < end);
  return false;
}

static const fabric_package_t calls_packages[] = {
    {.name = "parent", .so = "parent.so", .did = 20},
    {.name = NULL},
};

static int calls_start(void) {
  /* the composite driver: the child test driver with composite bind rules */
  if (prepare_fabric("compcalls", calls_packages, "duet",
                     "composite duet;\n"
                     "primary node \"left\" { fuchsia.BIND_PROTOCOL == 70; }\n"
                     "node \"right\" { fuchsia.BIND_PROTOCOL == 71; }\n",
                     "child.so") != 0)
    return -1;
  /* one platform device per board, each bound by the parent driver (did 20) */
  const char *board_b[] = {"qb:20", NULL}, *board_a[] = {"qa:20", NULL};
  if (write_boards(board_a, board_b) != 0 ||
      fabric_start_manager(&F.fab, "127.0.0.1", CALLS_GRACE_S) != 0)
    return -1;
  F.admin = fabric_connect(&F.fab, "root");
  return F.admin == NULL ? -1 : 0;
}

static int calls_setup(void **state) {
  if (calls_start() == 0)
    return 0;
  fleet_teardown(state);
  return -1;
}

/* The spec: two parents offered dfnet.test.Echo (the parent driver's children), shown to
 * the composite driver as protocol 70 (primary) and 71. */
static void add_duet_spec(void) {
  dfnet_client_property_t offered = {.type = DFNET_CLIENT_VALUE_STRING,
                                     .str_value = "dfnet.test.Echo.DriverTransport"};
  dfnet_client_bind_rule_t rule = {.str_key = "dfnet.test.Echo",
                                   .condition = DFNET_CLIENT_ACCEPT,
                                   .value_count = 1,
                                   .values = &offered};
  dfnet_client_property_t props[2] = {
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 70},
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 71}};
  dfnet_client_parent_spec_t parents[2];
  for (int i = 0; i < 2; i++)
    parents[i] = (dfnet_client_parent_spec_t){
        .rule_count = 1, .rules = &rule, .property_count = 1, .properties = &props[i]};
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_add_composite_node_spec(F.admin, "duet", parents, 2, &err),
                   DFNET_STATUS_OK);
}

/* The spec first, then lab-a (its parent's child takes the spec's primary), then lab-b. */
static void assemble_duet(void) {
  add_duet_spec();
  fabric_start_agent(&F.fab, &F.agents[0]);
  assert_true(fabric_wait_node(F.admin, PARENT_A, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_true(fabric_wait_node(F.admin, PARENT_A ".child", is_owned, NULL, WAIT_MS, NULL));
  fabric_start_agent(&F.fab, &F.agents[1]);
  assert_true(fabric_wait_node(F.admin, PARENT_B, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_true(fabric_wait_node(F.admin, PARENT_B ".child", is_owned, NULL, WAIT_MS, NULL));
  assert_true(fabric_wait_node(F.admin, DUET, fabric_is_bound, NULL, WAIT_MS, NULL));
  /* the offers the composite's driver received: lab-a's parent under "default" and "0",
   * lab-b's under "1" */
  const char *offers = ask(DUET, "/dfnet.test.Child/Offer", "");
  assert_has(offers, "n=3;");
  assert_has(offers, "=dfnet.test.Echo,default," PARENT_A ";");
  assert_has(offers, "=dfnet.test.Echo,0," PARENT_A ";");
  assert_has(offers, "=dfnet.test.Echo,1," PARENT_B);
}

/* Unary calls to both parents: the same board's and the other board's. */
static void call_both_parents(void) {
  const char *r = run("method=Echo;payload=to-a");
  assert_has(r, "status=OK;");
  assert_has(r, "client=OK;");
  assert_has(r, "data=to-a");
  r = run("instance=1;method=Echo;payload=to-b");
  assert_has(r, "status=OK;");
  assert_has(r, "client=OK;");
  assert_has(r, "data=to-b");
  /* each parent sees the composite's node and driver as its caller */
  const char *who = "data=caller=" DUET ";url=" DUET_URL;
  assert_has(run("instance=0;method=WhoCalls"), who);
  assert_has(run("instance=1;method=WhoCalls"), who);
  assert_has(ask(PARENT_A, "/dfnet.test.Echo/Stats", ""), "whocalls=1 last=" DUET ";" DUET_URL);
  assert_has(ask(PARENT_B, "/dfnet.test.Echo/Stats", ""), "whocalls=1 last=" DUET ";" DUET_URL);
}

/* lab-b's agent killed with calls of the composite in flight to lab-b's parent. */
static void kill_lab_b_mid_call(void) {
  char req[256];
  /* a stream stalled on its credit (2 items of a million, no more credit given), then a
   * held call: the same path carries both in order, so the held one at lab-b's parent
   * means both are in flight there */
  snprintf(req, sizeof req, "instance=1;method=Stream;count=1000000;credit=2;deadline=%d;payload=s",
           INNER_DEADLINE_MS);
  run_start(&F.stream, req);
  snprintf(req, sizeof req, "instance=1;method=Hold;deadline=%d", INNER_DEADLINE_MS);
  run_start(&F.held, req);
  assert_true(wait_stats(PARENT_B, "held=1 "));
  assert_true(fabric_stop_process(&F.agents[1].pid, SIGKILL) >= 0);
  /* both end UNAVAILABLE, not at their deadline; the host is only offline (transient), so
   * the client stays OK. The stream's 2 items came first (they left lab-b before the held
   * call got there). */
  const char *r = run_wait(&F.stream);
  assert_has(r, "status=UNAVAILABLE;items=2;violations=0;client=OK;");
  r = run_wait(&F.held);
  assert_has(r, "status=UNAVAILABLE;");
  assert_has(r, "client=OK;");
  assert_true(fabric_wait_node(F.admin, PARENT_B, fabric_is_offline, NULL, WAIT_MS, NULL));
  /* a call made now ends the same way: started (not refused at once), then UNAVAILABLE */
  r = run("instance=1;method=Echo;payload=late");
  assert_has(r, "status=UNAVAILABLE;");
  assert_has(r, "client=OK;");
  assert_string_equal(ask(DUET, "/dfnet.test.Child/Status", "instance=1"), "client=OK");
  /* lab-a's parent still answers the composite, through both of its offers */
  r = run("method=Echo;payload=still");
  assert_has(r, "status=OK;");
  assert_has(r, "data=still");
  assert_has(run("instance=0;method=Echo;payload=zero"), "data=zero");
}

static void test_composite_calls_both_parents(void **state) {
  (void)state;
  assemble_duet();
  call_both_parents();
  kill_lab_b_mid_call();
  /* past lab-b's grace the composite goes: its driver stopped on lab-a, whose parent stays
   * bound and answers; its child waits for the spec again */
  assert_true(fabric_wait_node(F.admin, DUET, fabric_is_gone, NULL, WAIT_MS, NULL));
  assert_true(wait_line(F.agents[0].log, "DriverStop dfnet-boot:///duet"));
  assert_true(fabric_call(F.admin, DUET, "/dfnet.test.Child/Run", "x", 1, 5000, NULL, 0) ==
              DFNET_STATUS_NOT_FOUND);
  assert_true(fabric_wait_node(F.admin, PARENT_A ".child", is_owned, NULL, WAIT_MS, NULL));
  assert_true(fabric_wait_node(F.admin, PARENT_A, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_string_equal(ask(PARENT_A, "/dfnet.test.Echo/Echo", "after"), "after");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_composite_across_agents, fleet_setup, fleet_teardown),
      cmocka_unit_test_setup_teardown(test_composite_calls_both_parents, calls_setup,
                                      fleet_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
