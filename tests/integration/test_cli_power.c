/* `dfnet power on|off|cycle|get` end to end: the real `dfnet` CLI (a child process) against a
 * real dfnet-manager, a real dfnet-host and the power driver in its driver host. The host's
 * board file describes two switches: dut-power, relay 2 of a Tasmota plug emulated on
 * loopback (tests/drivers_hw/plug_sim.c), and rack-power, an external-command switch whose
 * commands (bash and its /dev/tcp) drive relay 3 of a second emulated plug through its Shelly
 * Gen1 API, the way a lab's power command reaches a networked switch. The agent runs its
 * driver hosts sandboxed, allowing the power driver's rights exec and inet.
 *
 * Checked: the board file's "power" resource becomes a bound node with class power; on,
 * off, cycle and get through both, text and --json, and what the plug was asked; a plug
 * that does not answer ends `power get` UNAVAILABLE naming its address, exit 1, while the
 * other switch goes on working; a lease on dut-power held by alice refuses bob's
 * `power on` naming alice, and her own works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "drivers_hw/plug_sim.h"
#include "fabric.h"

#define HOST "lab-p"
#define DUT "dev.lab-p.platform.dut-power"
#define RACK "dev.lab-p.platform.rack-power"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  plug_sim_t *plug; /* dut-power's */
  plug_sim_t *rack; /* rack-power's, driven by its commands */
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* sandboxed (dfnet-host's default): the power driver asks for the rights inet (its plug
 * backends) and exec (its command backend), which the agent allows; its commands can write no
 * file (docs/architecture.md "Confinement"), so they keep no state of their own: the rack plug
 * holds it. */
static const char *const agent_extra[] = {"--allow-right", "exec", "--allow-right", "inet", NULL};

#define RACK_RELAY 3

/* A command (bash: its /dev/tcp) asking the rack plug's Shelly Gen1 API for `query` on relay
 * $DFNET_POWER_INDEX (the board file's index), its answer through `then` (a redirection or a
 * pipeline), as tests/drivers_hw/test_power.c's. */
static void rack_command(char *out, size_t cap, const char *query, const char *then) {
  snprintf(out, cap,
           "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%u;printf \"GET /relay/$DFNET_POWER_INDEX%s "
           "HTTP/1.0\\r\\n\\r\\n\">&3;cat<&3%s'",
           plug_sim_port(F.rack), query, then);
}

/* s as a JSON string's contents (its quotes and backslashes escaped) into out[cap]. */
static void json_escape(char *out, size_t cap, const char *s) {
  size_t n = 0;
  for (; *s != '\0' && n + 2 < cap; s++) {
    if (*s == '"' || *s == '\\')
      out[n++] = '\\';
    out[n++] = *s;
  }
  out[n] = '\0';
}

static int setup(void **state) {
  (void)state;
  F.agent.name = HOST;
  F.agent.extra = agent_extra;
  const fabric_package_t none[] = {{NULL, NULL, NULL, 0}};
  if ((F.plug = plug_sim_start(NULL, NULL)) == NULL ||
      (F.rack = plug_sim_start(NULL, NULL)) == NULL ||
      fabric_init(&F.fab, "cli-power", NULL, none) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "operator", "alice") != 0 ||
      fabric_issue(&F.fab, "operator", "bob") != 0)
    return -1;
  /* the real power package, as a boot driver */
  if (fabric_sh("cp -a '%s/drivers/power' '%s/drivers/'", F.fab.build, F.fab.root) != 0)
    return -1;
  char cmd[300], on[400], off[400], get[400], path[300];
  rack_command(cmd, sizeof cmd, "?turn=on", ">/dev/null");
  json_escape(on, sizeof on, cmd);
  rack_command(cmd, sizeof cmd, "?turn=off", ">/dev/null");
  json_escape(off, sizeof off, cmd);
  rack_command(cmd, sizeof cmd, "", "|grep -o \"ison\\\":[a-z]*\"|cut -d: -f2");
  json_escape(get, sizeof get, cmd);
  snprintf(path, sizeof path, "%s/board.json", F.fab.root);
  FILE *b = fopen(path, "w");
  if (b == NULL)
    return -1;
  fprintf(
      b,
      "{\"board\": \"lab-p\", \"devices\": [\n"
      " {\"name\": \"dut-power\", \"vid\": 0, \"pid\": 0, \"did\": 5, \"resources\": {\"power\":"
      "  {\"backend\": \"tasmota\", \"address\": \"http://127.0.0.1:%u\", \"index\": 2}}},\n"
      " {\"name\": \"rack-power\", \"vid\": 0, \"pid\": 0, \"did\": 6, \"resources\": {\"power\":"
      "  {\"backend\": \"command\", \"on\": \"%s\", \"off\": \"%s\", \"get\": \"%s\","
      "   \"index\": %d}}}]}\n",
      plug_sim_port(F.plug), on, off, get, RACK_RELAY);
  fclose(b);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  dfnet_client_t *c = fabric_connect(&F.fab, "alice");
  fabric_node_t n;
  bool up = c != NULL && fabric_wait_node(c, DUT, fabric_is_bound, NULL, WAIT_MS, &n) &&
            fabric_wait_node(c, RACK, fabric_is_bound, NULL, WAIT_MS, &n);
  dfnet_client_close(c);
  return up ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fabric_cleanup(&F.fab, &F.agent, 1);
  plug_sim_stop(F.plug);
  plug_sim_stop(F.rack);
  return 0;
}

static void assert_log(plug_sim_t *plug, const char *want) {
  char *log = plug_sim_take_log(plug);
  if (strcmp(log, want) != 0)
    fail_msg("the plug got:\n%swanted:\n%s", log, want);
  free(log);
}

static void assert_plug_log(const char *want) { assert_log(F.plug, want); }

static void test_power_verbs(void **state) {
  (void)state;
  cli_use(&F.fab, "alice");
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", DUT, "--json", NULL), 0);
  assert_non_null(strstr(R.out, "\"dfnet-boot:///power#meta/power.json\""));
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", DUT ".power", "--json", NULL), 0);
  assert_non_null(strstr(R.out, "\"class/power/"));

  assert_int_equal(cli_run(&R, &F.fab, "power", "get", DUT, NULL), 0);
  assert_non_null(strstr(R.out, DUT ": off (tasmota http://127.0.0.1:"));
  assert_int_equal(cli_run(&R, &F.fab, "power", "on", DUT, NULL), 0);
  assert_non_null(strstr(R.out, DUT ": on since 20"));
  assert_true(plug_sim_relay(F.plug, 2));
  assert_plug_log("/cm?cmnd=Power2\n/cm?cmnd=Power2%20On\n/cm?cmnd=Power2\n");

  assert_int_equal(cli_run(&R, &F.fab, "power", "cycle", DUT, "--off", "100", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_string_equal(cJSON_GetObjectItem(doc, "state")->valuestring, "on");
  assert_string_equal(cJSON_GetObjectItem(doc, "backend")->valuestring, "tasmota");
  assert_true(cJSON_IsString(cJSON_GetObjectItem(doc, "changed")));
  cJSON_Delete(doc);
  assert_plug_log(
      "/cm?cmnd=Power2%20Off\n/cm?cmnd=Power2\n/cm?cmnd=Power2%20On\n/cm?cmnd=Power2\n");
  assert_int_equal(cli_run(&R, &F.fab, "power", "off", DUT, NULL), 0);
  assert_false(plug_sim_relay(F.plug, 2));

  /* the command switch */
  assert_int_equal(cli_run(&R, &F.fab, "power", "on", RACK, "--json", NULL), 0);
  doc = cli_json(&R);
  assert_string_equal(cJSON_GetObjectItem(doc, "state")->valuestring, "on");
  assert_string_equal(cJSON_GetObjectItem(doc, "backend")->valuestring, "command");
  cJSON_Delete(doc);
  assert_true(plug_sim_relay(F.rack, RACK_RELAY));
  assert_log(F.rack, "/relay/3?turn=on\n/relay/3\n"); /* switched, then read back by "get" */
  assert_int_equal(cli_run(&R, &F.fab, "power", "get", RACK, NULL), 0);
  assert_non_null(strstr(R.out, RACK ": on"));
  assert_log(F.rack, "/relay/3\n");

  /* a usage error is the CLI's: exit 2 */
  assert_int_equal(cli_run(&R, &F.fab, "power", "cycle", DUT, "--off", "0", NULL), 2);
}

static void test_plug_that_does_not_answer(void **state) {
  (void)state;
  cli_use(&F.fab, "alice");
  plug_sim_set_mode(F.plug, PLUG_SILENT);
  assert_int_equal(cli_run(&R, &F.fab, "power", "get", DUT, "--timeout", "2000", NULL), 1);
  assert_non_null(strstr(R.err, "UNAVAILABLE"));
  assert_non_null(strstr(R.err, "127.0.0.1:"));
  assert_non_null(strstr(R.err, "no answer within"));
  plug_sim_set_mode(F.plug, PLUG_NORMAL);
  /* the other switch, and the plug once it answers again */
  assert_int_equal(cli_run(&R, &F.fab, "power", "off", RACK, NULL), 0);
  assert_false(plug_sim_relay(F.rack, RACK_RELAY));
  assert_log(F.rack, "/relay/3?turn=off\n/relay/3\n");
  assert_int_equal(cli_run(&R, &F.fab, "power", "get", DUT, NULL), 0);
  free(plug_sim_take_log(F.plug));
}

static void test_lease_covers_power(void **state) {
  (void)state;
  cli_use(&F.fab, "alice");
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", DUT, "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  const cJSON *lease = cJSON_GetObjectItem(doc, "lease");
  assert_true(cJSON_IsString(cJSON_GetObjectItem(lease, "token")));
  char token[128], id[32];
  snprintf(token, sizeof token, "%s", cJSON_GetObjectItem(lease, "token")->valuestring);
  snprintf(id, sizeof id, "%.0f", cJSON_GetObjectItem(lease, "id")->valuedouble);
  cJSON_Delete(doc);

  cli_use(&F.fab, "bob");
  assert_int_equal(cli_run(&R, &F.fab, "power", "on", DUT, NULL), 1);
  assert_non_null(strstr(R.err, "FAILED_PRECONDITION"));
  assert_non_null(strstr(R.err, "leased by alice"));
  assert_false(plug_sim_relay(F.plug, 2));

  cli_use(&F.fab, "alice");
  setenv("DFNET_LEASE", token, 1);
  assert_int_equal(cli_run(&R, &F.fab, "power", "on", DUT, NULL), 0);
  assert_true(plug_sim_relay(F.plug, 2));
  assert_int_equal(cli_run(&R, &F.fab, "lease", "release", id, NULL), 0);
  unsetenv("DFNET_LEASE");
  free(plug_sim_take_log(F.plug));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_power_verbs),
      cmocka_unit_test(test_plug_that_does_not_answer),
      cmocka_unit_test(test_lease_covers_power),
  };
  return cmocka_run_group_tests_name("cli_power", tests, setup, teardown);
}
