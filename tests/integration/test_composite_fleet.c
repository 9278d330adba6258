/* A composite across two boards with the real manager and two real host agents (on
 * loopback), the agent's side of issue 18 ("Drivers that talk to drivers"):
 *
 *   - a composite node spec whose parents are platform devices of two agents assembles on
 *     the primary parent's agent, which starts the composite driver (the echo test driver)
 *     on a node it never announced: it records it, and the driver answers calls;
 *   - the primary's agent silenced past the manager's keepalive and resumed: it re-announces
 *     the composite node with its running driver, and the manager reconciles it (nothing
 *     restarted);
 *   - the other agent gone past its grace: the composite goes; its agent stops the driver
 *     and forgets the node (told by the manager).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"
#include "testhost/testhost.h"

#define WAIT_MS 30000
#define PAIR "dev.lab-a.platform.pa.pair"

static const char *const manager_extra[] = {"--keepalive-ms", "100", NULL};

static struct {
  fabric_t fab;
  fabric_agent_t agents[2];
  char board_b[320];
  const char *agent_b_extra[3];
  dfnet_client_t *admin;
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

static int fleet_setup(void **state) {
  (void)state;
  if (fabric_init(&F.fab, "compfleet", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", "lab-a") != 0 || fabric_issue(&F.fab, "host", "lab-b") != 0 ||
      fabric_issue(&F.fab, "admin", "root") != 0)
    return -1;
  /* the composite driver: the echo test driver with composite bind rules */
  char drivers[300];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  if (th_write_driver(drivers, "duo",
                      "composite duo;\n"
                      "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                      "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                      NULL) != 0 ||
      fabric_sh("cp '%s/tests/drivers/echo.so' '%s/duo/driver/duo.so'", F.fab.build, drivers) != 0)
    return -1;
  /* one platform device per board: pa (did 10) on lab-a, pb (did 11) on lab-b */
  const char *board_b[] = {"pb:11", NULL}, *board_a[] = {"pa:10", NULL};
  fabric_write_board(&F.fab, board_b);
  snprintf(F.board_b, sizeof F.board_b, "%s/board-b.json", F.fab.root);
  if (fabric_sh("mv '%s/board.json' '%s'", F.fab.root, F.board_b) != 0)
    return -1;
  fabric_write_board(&F.fab, board_a);
  F.fab.manager_extra = manager_extra;
  if (fabric_start_manager(&F.fab, "127.0.0.1", 3) != 0)
    return -1;
  F.agents[0].name = "lab-a";
  F.agents[1].name = "lab-b";
  F.agent_b_extra[0] = "--board"; /* the last --board counts */
  F.agent_b_extra[1] = F.board_b;
  F.agents[1].extra = F.agent_b_extra;
  fabric_start_agent(&F.fab, &F.agents[0]);
  fabric_start_agent(&F.fab, &F.agents[1]);
  F.admin = fabric_connect(&F.fab, "root");
  return F.admin == NULL ? -1 : 0;
}

static int fleet_teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  fabric_cleanup(&F.fab, F.agents, 2);
  return 0;
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_composite_across_agents),
  };
  return cmocka_run_group_tests(tests, fleet_setup, fleet_teardown);
}
