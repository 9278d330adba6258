/* A fleet left alone: the real manager and agent with a 100 ms keepalive (so 10 intervals
 * take a second), two echo drivers that each publish a class entry (class/echo/NNN).
 *
 *   - idle for 30 keepalive intervals: no session is lost, nothing reconnects; SIGHUP
 *     stops neither the manager nor the agent;
 *   - the agent silenced (SIGSTOP): the manager notices within a few intervals, the nodes
 *     go offline; resumed (SIGCONT): the agent reconnects and the class entries come back,
 *     the same numbers on the same nodes;
 *   - the agent restarted: its drivers start again and each class entry keeps its number.
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
#include <sys/wait.h>

#include "fabric.h"

#define WAIT_MS 30000

static const char *const manager_extra[] = {"--keepalive-ms", "100", "--log-level", "debug", NULL};
static const char *const agent_extra[] = {"--keepalive-ms", "100", NULL};

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;
} F;

static const fabric_package_t packages[] = {
    {"echo", "echo.so", "\"config\": {\"child_class\": \"echo\"}", 1},
    {NULL, NULL, NULL, 0},
};

static const char *const nodes[] = {"dev.idle.platform.e0", "dev.idle.platform.e1"};

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

/* The class path of moniker's owned child "out", "" when it has none (yet). */
static void class_path_of(const char *moniker, char *out, size_t size) {
  char child[256];
  snprintf(child, sizeof child, "%s.out", moniker);
  out[0] = '\0';
  dfnet_client_node_list_t *list = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(F.op, child, true, false, NULL, &list, &err) != DFNET_STATUS_OK)
    return;
  if (list->count == 1 && !list->items[0].offline)
    snprintf(out, size, "%s", list->items[0].class_path);
  dfnet_client_node_list_free(list);
}

/* Wait until both nodes are bound and online with their class entries; their class paths
 * in paths[2]. */
static bool fleet_ready(char paths[2][64]) {
  uint64_t end = fabric_now_ms() + WAIT_MS;
  for (int i = 0; i < 2; i++) {
    if (!fabric_wait_node(F.op, nodes[i], fabric_is_bound, NULL, WAIT_MS, NULL))
      return false;
    do {
      class_path_of(nodes[i], paths[i], sizeof paths[i]);
      if (paths[i][0] == '\0')
        fabric_sleep_ms(50);
    } while (paths[i][0] == '\0' && fabric_now_ms() < end);
    if (paths[i][0] == '\0')
      return false;
  }
  return true;
}

static int idle_setup(void **state) {
  (void)state;
  F.agent.name = "idle";
  F.agent.extra = agent_extra;
  if (fabric_init(&F.fab, "idle", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", "idle") != 0 || fabric_issue(&F.fab, "operator", "op") != 0)
    return -1;
  F.fab.manager_extra = manager_extra;
  const char *board[] = {"e0:1", "e1:1", NULL};
  fabric_write_board(&F.fab, board);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.op = fabric_connect(&F.fab, "op");
  return F.op == NULL ? -1 : 0;
}

static int idle_teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

static void test_idle_host_stays_connected(void **state) {
  (void)state;
  char paths[2][64];
  assert_true(fleet_ready(paths));
  assert_string_not_equal(paths[0], paths[1]);
  int opened = count_lines(F.fab.manager_log, " open: dfnet.host.v1");
  assert_int_equal(opened, 1);
  fabric_sleep_ms(3000); /* 30 keepalive intervals with nothing to say */
  assert_int_equal(count_lines(F.fab.manager_log, "keepalive"), 0);
  assert_int_equal(count_lines(F.fab.manager_log, " open: dfnet.host.v1"), opened);
  assert_int_equal(count_lines(F.fab.manager_log, "session lost"), 0);
  assert_int_equal(count_lines(F.agent.log, "keepalive"), 0);
  for (int i = 0; i < 2; i++) {
    fabric_node_t n = fabric_node(F.op, nodes[i]);
    assert_true(fabric_is_bound(n, NULL));
  }
  /* SIGHUP (a closed terminal, a reload request) stops neither */
  assert_int_equal(kill(F.fab.manager, SIGHUP), 0);
  assert_int_equal(kill(F.agent.pid, SIGHUP), 0);
  fabric_sleep_ms(300);
  assert_int_equal(waitpid(F.fab.manager, NULL, WNOHANG), 0);
  assert_int_equal(waitpid(F.agent.pid, NULL, WNOHANG), 0);
  assert_true(fabric_is_bound(fabric_node(F.op, nodes[0]), NULL));
}

static void test_silenced_host_detected_and_back(void **state) {
  (void)state;
  char before[2][64], after[2][64];
  assert_true(fleet_ready(before));
  assert_int_equal(kill(F.agent.pid, SIGSTOP), 0);
  /* detected by the manager's keepalive (3 intervals); the wait is only a hang guard */
  bool offline = fabric_wait_node(F.op, nodes[0], fabric_is_offline, NULL, WAIT_MS, NULL);
  assert_int_equal(kill(F.agent.pid, SIGCONT), 0);
  assert_true(offline);
  assert_true(count_lines(F.fab.manager_log, "keepalive: peer silent") >= 1);
  /* the agent reconnects and re-announces: the same class entries on the same nodes */
  assert_true(fleet_ready(after));
  assert_string_equal(after[0], before[0]);
  assert_string_equal(after[1], before[1]);
}

static void test_agent_restart_keeps_class_paths(void **state) {
  (void)state;
  char before[2][64], after[2][64];
  assert_true(fleet_ready(before));
  assert_true(fabric_stop_process(&F.agent.pid, SIGTERM) >= 0);
  assert_true(fabric_wait_node(F.op, nodes[0], fabric_is_offline, NULL, WAIT_MS, NULL));
  fabric_start_agent(&F.fab, &F.agent);
  assert_true(fleet_ready(after));
  assert_string_equal(after[0], before[0]);
  assert_string_equal(after[1], before[1]);
  char reply[64];
  assert_int_equal(
      fabric_call(F.op, after[0], "/dfnet.test.Echo/Echo", "hi", 2, 5000, reply, sizeof reply),
      DFNET_STATUS_OK);
  assert_string_equal(reply, "hi");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_host_stays_connected),
      cmocka_unit_test(test_silenced_host_detected_and_back),
      cmocka_unit_test(test_agent_restart_keeps_class_paths),
  };
  return cmocka_run_group_tests(tests, idle_setup, idle_teardown);
}
