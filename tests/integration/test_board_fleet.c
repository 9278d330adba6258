/* A lab board across two hosts, end to end (issue "The lab's daily work", Acceptance): the
 * power outlet, a Tasmota plug emulated by this test (tests/drivers_hw/plug_sim.c), is a
 * board-file device of host lab-a; the board's UART, a pty whose other side this test plays,
 * is a board-file device of host lab-b; each host in a network namespace of its own when the
 * machine allows it (else both on loopback, and the test says so). A real manager, two real
 * agents, the power, serial and board drivers, and the real `dfnet` CLI.
 *
 * Checked: `dfnet board add` (role admin) defines the board; the composite assembles across
 * the two hosts and the board driver binds it; `board list` shows it with both parents;
 * `dfnet board cycle NAME --expect login:` switches the plug off and on and prints the boot
 * banner the emulated board prints on its UART when the plug comes on, exit 0; a pattern that
 * never comes ends DEADLINE_EXCEEDED, exit 1; `board show` gives the power state and the
 * console's last line; `board console NAME` finds the board's serial port; a lease on the board
 * covers its parents (bob's `power on` of the outlet's device is refused naming alice). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli_run.h"
#include "drivers_hw/plug_sim.h"
#include "fabric.h"

#define POWER_NODE "dev.lab-a.platform.dut-power"
#define UART_NODE "dev.lab-b.platform.uart0"
#define BOARD "rpi4-01"
#define WAIT_MS 30000
#define BANNER "U-Boot 2026.10 (board fleet test)\r\nStarting kernel ...\r\nrpi4-01 login: "

static struct {
  fabric_t fab;
  fabric_agent_t agents[2];
  const char *extra_a[7], *extra_b[7];
  char board_a[300], board_b[300];
  bool netns;
  char why[256];
  plug_sim_t *plug;
  int uart, uart_slave; /* the board's UART: the pty's master (ours) and slave (lab-b's) */
  bool silent_boot;     /* the emulated board prints nothing when powered */
} F = {.uart = -1, .uart_slave = -1};

static cli_run_t R;

/* The plug switched: when it comes on, the emulated board boots and prints its banner. */
static void on_plug(void *arg, unsigned relay, bool on) {
  (void)arg;
  if (relay == 1 && on && !F.silent_boot) {
    ssize_t w = write(F.uart, BANNER, strlen(BANNER));
    (void)w;
  }
}

static int setup(void **state) {
  (void)state;
  F.agents[0].name = "lab-a";
  F.agents[1].name = "lab-b";
  F.netns = fabric_netns_usable(F.why, sizeof F.why);
  if (!F.netns)
    print_message("board fleet: network namespaces unavailable (%s): both hosts on loopback\n",
                  F.why);
  for (int i = 0; i < 2 && F.netns; i++)
    fabric_netns_create(&F.agents[i], i);
  const char *sans[] = {F.agents[0].addr_root, F.agents[1].addr_root, NULL};
  if (fabric_init(&F.fab, "board-fleet", F.netns ? sans : NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", "lab-a") != 0 || fabric_issue(&F.fab, "host", "lab-b") != 0 ||
      fabric_issue(&F.fab, "admin", "root") != 0 ||
      fabric_issue(&F.fab, "operator", "alice") != 0 ||
      fabric_issue(&F.fab, "operator", "bob") != 0)
    return -1;
  /* lab-b: the UART (the serial package comes with the pty board's file) */
  if (fabric_pty_board(&F.fab, "uart0", &F.uart, &F.uart_slave) != 0 ||
      fabric_sh("mv '%s/board.json' '%s/board-b.json' && cp -r '%s/drivers/power' "
                "'%s/drivers/board' '%s/drivers/'",
                F.fab.root, F.fab.root, F.fab.build, F.fab.build, F.fab.root) != 0)
    return -1;
  /* lab-a: the outlet, relay 1 of a plug the agent reaches at its side of the veth */
  F.plug = plug_sim_start_at(F.netns ? F.agents[0].addr_root : "127.0.0.1", on_plug, NULL);
  if (F.plug == NULL)
    return -1;
  snprintf(F.board_a, sizeof F.board_a, "%s/board-a.json", F.fab.root);
  snprintf(F.board_b, sizeof F.board_b, "%s/board-b.json", F.fab.root);
  FILE *b = fopen(F.board_a, "w");
  if (b == NULL)
    return -1;
  fprintf(b,
          "{\"devices\": [{\"name\": \"dut-power\", \"vid\": 0, \"pid\": 0, \"did\": 5, "
          "\"resources\": {\"power\": {\"backend\": \"tasmota\", \"address\": "
          "\"http://%s:%u\", \"index\": 1}}}]}\n",
          F.netns ? F.agents[0].addr_root : "127.0.0.1", plug_sim_port(F.plug));
  fclose(b);
  F.extra_a[0] = F.extra_b[0] = "--board";
  F.extra_a[1] = F.board_a;
  F.extra_b[1] = F.board_b;
  /* the power driver asks for the rights inet (the plug's HTTP) and exec (its command
   * backend): sandboxed, its hosts must allow both */
  F.extra_a[2] = F.extra_b[2] = "--allow-right";
  F.extra_a[3] = F.extra_b[3] = "inet";
  F.extra_a[4] = F.extra_b[4] = "--allow-right";
  F.extra_a[5] = F.extra_b[5] = "exec";
  F.agents[0].extra = F.extra_a;
  F.agents[1].extra = F.extra_b;
  if (fabric_start_manager(&F.fab, F.netns ? "0.0.0.0" : "127.0.0.1", 30) != 0)
    return -1;
  for (int i = 0; i < 2; i++)
    fabric_start_agent(&F.fab, &F.agents[i]);
  dfnet_client_t *c = fabric_connect(&F.fab, "root");
  fabric_node_t n;
  bool up = c != NULL && fabric_wait_node(c, POWER_NODE, fabric_is_bound, NULL, WAIT_MS, &n) &&
            fabric_wait_node(c, UART_NODE, fabric_is_bound, NULL, WAIT_MS, &n);
  dfnet_client_close(c);
  return up ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fabric_cleanup(&F.fab, F.agents, 2);
  for (int i = 0; i < 2 && F.netns; i++)
    fabric_netns_destroy(&F.agents[i]);
  plug_sim_stop(F.plug);
  close(F.uart);
  close(F.uart_slave);
  return 0;
}

/* Wait until `dfnet board list --json` shows the board. */
static bool board_up(void) {
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(200)) {
    if (cli_run(&R, &F.fab, "board", "list", "--json", NULL) == 0 &&
        strstr(R.out, "\"" BOARD "\"") != NULL)
      return true;
  }
  print_message("board list: %s\n%s\n", R.out, R.err);
  return false;
}

static void test_board_across_two_hosts(void **state) {
  (void)state;
  char spec[300];
  snprintf(spec, sizeof spec, "%s/rpi4-01.json", F.fab.root);
  FILE *f = fopen(spec, "w");
  assert_non_null(f);
  fprintf(f, "{\"name\": \"%s\", \"power\": \"%s\", \"console\": \"%s\"}\n", BOARD, POWER_NODE,
          UART_NODE);
  fclose(f);
  cli_use(&F.fab, "alice"); /* an operator may not define boards */
  assert_int_equal(cli_run(&R, &F.fab, "board", "add", spec, NULL), 1);
  assert_non_null(strstr(R.err, "PERMISSION_DENIED"));
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "board", "add", spec, NULL), 0);
  assert_true(board_up());
  cJSON *doc = cli_json(&R);
  const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "boards"), 0);
  const cJSON *parents = cJSON_GetObjectItem(b, "parents");
  assert_int_equal(cJSON_GetArraySize(parents), 2);
  assert_non_null(strstr(cJSON_GetArrayItem(parents, 0)->valuestring, POWER_NODE));
  assert_non_null(strstr(cJSON_GetArrayItem(parents, 1)->valuestring, UART_NODE));
  cJSON_Delete(doc);

  /* the acceptance: a cycle sees the banner the board prints when the plug comes on */
  cli_use(&F.fab, "alice");
  free(plug_sim_take_log(F.plug));
  assert_int_equal(cli_run(&R, &F.fab, "board", "cycle", BOARD, "--expect", "login:", "--off",
                           "100", "--timeout", "20s", NULL),
                   0);
  assert_non_null(strstr(R.out, "Starting kernel ..."));
  assert_non_null(strstr(R.out, "rpi4-01 login:"));
  char *log = plug_sim_take_log(F.plug);
  assert_non_null(strstr(log, "/cm?cmnd=Power1%20Off"));
  assert_non_null(strstr(log, "/cm?cmnd=Power1%20On"));
  free(log);
  assert_true(plug_sim_relay(F.plug, 1));

  assert_int_equal(cli_run(&R, &F.fab, "board", "show", BOARD, NULL), 0);
  assert_non_null(strstr(R.out, "power:   on"));
  assert_non_null(strstr(R.out, "rpi4-01 login:"));

  /* its console, by the board's name (stdin at its end: it watches half a second, exit 0) */
  assert_int_equal(cli_run(&R, &F.fab, "board", "console", BOARD, "--read-only", NULL), 0);
  assert_int_equal(cli_run(&R, &F.fab, "board", "console", "no-such-board", NULL), 1);
  assert_non_null(strstr(R.err, "NOT_FOUND: no board no-such-board is up"));

  /* a board that does not boot: DEADLINE_EXCEEDED, exit 1 */
  F.silent_boot = true;
  assert_int_equal(
      cli_run(&R, &F.fab, "board", "cycle", BOARD, "--off", "100", "--timeout", "1s", NULL), 1);
  assert_non_null(strstr(R.err, "DEADLINE_EXCEEDED"));
  F.silent_boot = false;

  /* a lease on the board covers its parents */
  doc = NULL;
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "--json", NULL), 0);
  char board_moniker[300] = "";
  const char *at = strstr(R.out, ".outlet." BOARD "\"");
  assert_non_null(at);
  const char *start = at;
  while (start > R.out && start[-1] != '"')
    start--;
  snprintf(board_moniker, sizeof board_moniker, "%.*s",
           (int)(at - start + strlen(".outlet." BOARD)), start);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", board_moniker, NULL), 0);
  cli_use(&F.fab, "bob");
  assert_int_equal(cli_run(&R, &F.fab, "power", "on", POWER_NODE, NULL), 1);
  assert_non_null(strstr(R.err, "leased by alice"));
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_board_across_two_hosts),
  };
  return cmocka_run_group_tests_name("board_fleet", tests, setup, teardown);
}
