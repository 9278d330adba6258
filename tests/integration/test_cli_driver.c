/* Drivers by name, idempotent registration and unregistration, end to end: the real `dfnet`
 * CLI (a child process) against a real dfnet-manager with a real dfnet-host and its driver
 * hosts. The host's board file has two platform devices (vid 0xd0f): light0 (did 7) and
 * lamp0 (did 8). Boot drivers: "light" (the echo test driver, did 7) and "anyplat", a
 * fallback for any platform device of vid 0xd0f. Two packages are registered at run time:
 * "lamp" (did 8; registered before the host connects, so lamp0 binds to it rather than to
 * the fallback) and a second "light" (did 9: no device), whose name is then ambiguous.
 *
 * Checked, in order:
 *   - registering the same package twice exits 0 both times, the second "Already
 *     registered" (--json: already_registered), and the index holds it once;
 *   - `host list` shows the agent's software version (VERSION, --json software_version);
 *   - restart, disable, enable and `bind why NODE DRIVER` take a driver's name;
 *     an unknown name is NOT_FOUND;
 *   - a registered package named as a boot driver makes the name ambiguous: refused
 *     FAILED_PRECONDITION listing both URLs; the URLs still work (unregister by URL);
 *   - a boot driver cannot be unregistered (FAILED_PRECONDITION saying so);
 *   - a viewer may not unregister (PERMISSION_DENIED), and nothing changes;
 *   - unregister by name: DRIVER_UNREGISTERED is watched, lamp0 is stopped and bound again
 *     to the fallback, the package and its record leave the state directory, and after a
 *     manager restart the driver is not back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "fabric.h"
#include "testhost/testhost.h"

#define HOST "lab-d"
#define LIGHT "dev.lab-d.platform.light0"
#define LAMP "dev.lab-d.platform.lamp0"
#define LIGHT_URL "dfnet-boot:///light#meta/light.json"
#define ANYPLAT_URL "dfnet-boot:///anyplat#meta/anyplat.json"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *admin;
  char pkgs[400]; /* packages registered at run time: <root>/pkgs/<name> */
  char lamp_url[256];
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* A package from the echo test driver in <dir>/<name> with these bind rules. */
static int echo_package(const char *dir, const char *name, const char *rules, const char *extra) {
  if (th_write_driver(dir, name, rules, extra) != 0)
    return -1;
  return fabric_sh("cp '%s/tests/drivers/echo.so' '%s/%s/driver/%s.so'", F.fab.build, dir, name,
                   name) == 0
             ? 0
             : -1;
}

#define PLATFORM_RULES(did)                                           \
  "using fuchsia.platform;\n"                                         \
  "fuchsia.BIND_PROTOCOL == fuchsia.platform.BIND_PROTOCOL.DEVICE;\n" \
  "fuchsia.BIND_PLATFORM_DEV_VID == 0xd0f;\n"                         \
  "fuchsia.BIND_PLATFORM_DEV_DID == " #did ";\n"

static int setup(void **state) {
  (void)state;
  F.agent.name = HOST;
  const fabric_package_t packages[] = {{"light", "echo.so", NULL, 7}, {NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "cli-driver", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "admin", "root") != 0 ||
      fabric_issue(&F.fab, "viewer", "watcher") != 0)
    return -1;
  char drivers[400];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  snprintf(F.pkgs, sizeof F.pkgs, "%s/pkgs", F.fab.root);
  if (echo_package(drivers, "anyplat",
                   "using fuchsia.platform;\n"
                   "fuchsia.BIND_PROTOCOL == fuchsia.platform.BIND_PROTOCOL.DEVICE;\n"
                   "fuchsia.BIND_PLATFORM_DEV_VID == 0xd0f;\n",
                   "\"fallback\": \"true\"") != 0 ||
      th_fresh_dir(F.pkgs) != 0 || echo_package(F.pkgs, "lamp", PLATFORM_RULES(8), NULL) != 0)
    return -1;
  char second[450];
  snprintf(second, sizeof second, "%s/second", F.pkgs); /* a registered "light" */
  if (th_fresh_dir(second) != 0 || echo_package(second, "light", PLATFORM_RULES(9), NULL) != 0)
    return -1;
  const char *devices[] = {"light0:7", "lamp0:8", NULL};
  fabric_write_board(&F.fab, devices);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  F.admin = fabric_connect(&F.fab, "root");
  return F.admin != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

/* The driver URL a node is bound to now ("" when none or not found). */
static void node_driver(const char *moniker, char *url, size_t cap) {
  url[0] = '\0';
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(F.admin, moniker, true, false, NULL, &l, &err) != DFNET_STATUS_OK)
    return;
  if (l->count == 1 && l->items[0].state == DFNET_CLIENT_NODE_BOUND)
    snprintf(url, cap, "%s", l->items[0].driver_url);
  dfnet_client_node_list_free(l);
}

/* Wait until `moniker` is bound to `want` (a whole URL). */
static bool wait_bound_to(const char *moniker, const char *want) {
  char url[256];
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(100)) {
    node_driver(moniker, url, sizeof url);
    if (strcmp(url, want) == 0)
      return true;
  }
  print_message("%s: bound to '%s', wanted '%s'\n", moniker, url, want);
  return false;
}

/* The `driver list --json` entry whose url is `url`, in doc; NULL when absent. */
static cJSON *listed(cJSON *doc, const char *url) {
  cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "drivers")) {
    if (strcmp(cJSON_GetObjectItem(d, "url")->valuestring, url) == 0)
      return d;
  }
  return NULL;
}

static size_t count_named(cJSON *doc, const char *name) {
  size_t n = 0;
  cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "drivers")) {
    n += strcmp(cJSON_GetObjectItem(d, "name")->valuestring, name) == 0;
  }
  return n;
}

static void test_register_twice(void **state) {
  (void)state;
  char lamp[450];
  snprintf(lamp, sizeof lamp, "%s/lamp", F.pkgs);
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "driver", "register", lamp, NULL), 0);
  assert_true(strncmp(R.out, "Registered dfnet-pkg://", 23) == 0);
  assert_int_equal(sscanf(R.out, "Registered %255s", F.lamp_url), 1);
  assert_non_null(strstr(F.lamp_url, "/lamp#meta/lamp.json"));
  /* again: exit 0, nothing changes (a provisioning script may run twice) */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "register", lamp, NULL), 0);
  char want[400];
  snprintf(want, sizeof want, "Already registered %s\n", F.lamp_url);
  assert_string_equal(R.out, want);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "register", "--json", lamp, NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "already_registered")));
  assert_string_equal(cJSON_GetObjectItem(doc, "url")->valuestring, F.lamp_url);
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  assert_int_equal(count_named(doc, "lamp"), 1);
  cJSON_Delete(doc);
  /* now the host: lamp0 binds to the registered driver, not to the fallback */
  fabric_start_agent(&F.fab, &F.agent);
  assert_true(wait_bound_to(LIGHT, LIGHT_URL));
  assert_true(wait_bound_to(LAMP, F.lamp_url));
}

/* The agent's Hello.software_version reaches `host list`: the VERSION column and --json's
 * software_version, the string the binaries print with --version. */
static void test_host_list_shows_version(void **state) {
  (void)state;
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "--version", NULL), 0);
  char software[128];
  snprintf(software, sizeof software, "%.*s", (int)strcspn(R.out, "\n"), R.out);
  assert_true(strncmp(software, "dfnet ", 6) == 0);
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "hosts"), 0);
  assert_string_equal(cJSON_GetObjectItem(h, "name")->valuestring, HOST);
  cJSON *sv = cJSON_GetObjectItem(h, "software_version");
  assert_true(cJSON_IsString(sv)); /* null when the manager does not pass it on */
  assert_string_equal(sv->valuestring, software);
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", NULL), 0);
  assert_non_null(strstr(R.out, " VERSION "));
  char cell[140];
  snprintf(cell, sizeof cell, " %s ", software + 6); /* the column drops "dfnet " */
  assert_non_null(strstr(R.out, cell));
}

static void test_control_by_name(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  fabric_node_t before = fabric_node(F.admin, LAMP);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "lamp", NULL), 0);
  assert_non_null(strstr(R.out, "Restarted 1 driver host(s).\n"));
  /* bound again, in a new driver host */
  fabric_node_t after = {0};
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(100)) {
    after = fabric_node(F.admin, LAMP);
    if (after.state == DFNET_CLIENT_NODE_BOUND && after.driver_host_id != before.driver_host_id)
      break;
  }
  assert_int_equal(after.state, DFNET_CLIENT_NODE_BOUND);
  assert_int_not_equal(after.driver_host_id, before.driver_host_id);

  /* disable stops it and matches its node again: the fallback takes it (ffx: "Disables the
   * given driver, and restart its nodes with rematching") */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "disable", "lamp", NULL), 0);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(listed(doc, F.lamp_url), "disabled")));
  cJSON_Delete(doc);
  assert_true(wait_bound_to(LAMP, ANYPLAT_URL));
  /* enable matches it again: the node the fallback took comes back to it, and the answer
   * waits until it runs there */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "enable", "lamp", NULL), 0);
  char want[400];
  snprintf(want, sizeof want, "%s: running %s\n", LAMP, F.lamp_url);
  assert_non_null(strstr(R.out, want));
  char url[256];
  node_driver(LAMP, url, sizeof url);
  assert_string_equal(url, F.lamp_url);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(listed(doc, F.lamp_url), "disabled")));
  cJSON_Delete(doc);

  /* bind why with a driver's name: that driver's trace only */
  assert_int_equal(cli_run(&R, &F.fab, "bind", "why", "--json", LAMP, "lamp", NULL), 0);
  doc = cli_json(&R);
  cJSON *traces = cJSON_GetObjectItem(doc, "traces");
  assert_int_equal(cJSON_GetArraySize(traces), 1);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(traces, 0), "driver")->valuestring,
                      F.lamp_url);
  cJSON_Delete(doc);

  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "lmap", NULL), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND: no driver with URL or name 'lmap'"));
}

static void test_ambiguous_name(void **state) {
  (void)state;
  char second[450];
  snprintf(second, sizeof second, "%s/second/light", F.pkgs);
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "driver", "register", second, NULL), 0);
  char url[256];
  assert_int_equal(sscanf(R.out, "Registered %255s", url), 1);
  const char *verbs[] = {"restart", "disable", "unregister"};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(cli_run(&R, &F.fab, "driver", verbs[i], "light", NULL), 1);
    assert_true(strncmp(R.err, "dfnet: FAILED_PRECONDITION: 2 drivers are named 'light'", 55) == 0);
    assert_non_null(strstr(R.err, LIGHT_URL));
    assert_non_null(strstr(R.err, url));
  }
  /* nothing was disabled; the boot driver's URL still works */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", LIGHT_URL, NULL), 0);
  assert_true(wait_bound_to(LIGHT, LIGHT_URL));
  /* the registered one goes by its URL; then the name is unique again */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "unregister", url, NULL), 0);
  char want[400];
  snprintf(want, sizeof want, "Unregistered %s: stopped on 0 node(s), which are matched again.\n",
           url);
  assert_string_equal(R.out, want);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "disable", "light", NULL), 0);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "enable", "light", NULL), 0);
}

static void test_boot_driver_not_unregistered(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "driver", "unregister", "anyplat", NULL), 1);
  assert_non_null(strstr(R.err, "dfnet: FAILED_PRECONDITION: " ANYPLAT_URL
                                " is a boot driver (from --drivers) and cannot be unregistered"));
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_non_null(listed(doc, ANYPLAT_URL));
  cJSON_Delete(doc);
}

static void test_viewer_refused(void **state) {
  (void)state;
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "driver", "unregister", "lamp", NULL), 1);
  assert_true(strncmp(R.err, "dfnet: PERMISSION_DENIED: ", 26) == 0);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_non_null(listed(doc, F.lamp_url));
  cJSON_Delete(doc);
  char url[256];
  node_driver(LAMP, url, sizeof url);
  assert_string_equal(url, F.lamp_url);
}

/* Watch events of the admin's session, kept for the test's thread. */
static struct {
  pthread_mutex_t mu;
  char unregistered[256]; /* subject of a DRIVER_UNREGISTERED event */
  char by[128];
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_event(void *user, dfnet_client_watch_id_t watch, const dfnet_client_event_t *e) {
  (void)user;
  (void)watch;
  if (e->kind != DFNET_CLIENT_EVENT_DRIVER_UNREGISTERED)
    return;
  pthread_mutex_lock(&W.mu);
  snprintf(W.unregistered, sizeof W.unregistered, "%s", e->subject);
  snprintf(W.by, sizeof W.by, "%s", e->detail);
  pthread_mutex_unlock(&W.mu);
}

static void on_end(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  (void)user;
  (void)id;
  (void)st;
  (void)msg;
}

static bool state_file(const char *sub, const char *hex, const char *suffix) {
  char path[700];
  snprintf(path, sizeof path, "%s/state/%s/%s%s", F.fab.root, sub, hex, suffix);
  return access(path, F_OK) == 0;
}

static void test_unregister_by_name(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  char hex[80];
  snprintf(hex, sizeof hex, "%s",
           cJSON_GetObjectItem(listed(doc, F.lamp_url), "package_digest")->valuestring);
  cJSON_Delete(doc);
  assert_int_equal(strlen(hex), 64);
  assert_true(state_file("packages", hex, ".pkg"));
  assert_true(state_file("registered", hex, ""));

  dfnet_client_watch_id_t watch = 0;
  dfnet_client_error_t err;
  assert_int_equal(
      dfnet_client_watch(F.admin, DFNET_CLIENT_WATCH_DRIVERS, on_event, on_end, NULL, &watch, &err),
      DFNET_STATUS_OK);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "unregister", "lamp", NULL), 0);
  char want[400];
  snprintf(want, sizeof want,
           "Unregistered %s: stopped on 1 node(s), which are matched again.\n"
           "%s: running %s\n",
           F.lamp_url, LAMP, ANYPLAT_URL);
  assert_string_equal(R.out, want);
  /* the node it had is stopped and bound again, to the fallback */
  assert_true(wait_bound_to(LAMP, ANYPLAT_URL));
  bool seen = false;
  for (uint64_t end = fabric_now_ms() + WAIT_MS; !seen && fabric_now_ms() < end;
       fabric_sleep_ms(50)) {
    pthread_mutex_lock(&W.mu);
    seen = strcmp(W.unregistered, F.lamp_url) == 0 && strcmp(W.by, "root") == 0;
    pthread_mutex_unlock(&W.mu);
  }
  assert_true(seen);
  dfnet_client_watch_cancel(F.admin, watch);
  /* gone from the index, the name resolves no more, the state directory forgot it */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  assert_null(listed(doc, F.lamp_url));
  assert_int_equal(count_named(doc, "lamp"), 0);
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "lamp", NULL), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND: "));
  assert_false(state_file("packages", hex, ".pkg"));
  assert_false(state_file("registered", hex, ""));

  /* registered again while the fallback has its node: the node moves to it (a non-fallback
   * match wins, as if it had been there first); then unregistered again */
  char lamp[450];
  snprintf(lamp, sizeof lamp, "%s/lamp", F.pkgs);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "register", lamp, NULL), 0);
  assert_true(wait_bound_to(LAMP, F.lamp_url));
  assert_int_equal(cli_run(&R, &F.fab, "driver", "unregister", F.lamp_url, NULL), 0);
  assert_true(wait_bound_to(LAMP, ANYPLAT_URL));

  /* a manager restart does not bring it back */
  assert_true(fabric_stop_process(&F.fab.manager, SIGTERM) >= 0);
  assert_int_equal(fabric_start_manager(&F.fab, "127.0.0.1", 30), 0);
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  assert_null(listed(doc, F.lamp_url));
  assert_non_null(listed(doc, ANYPLAT_URL));
  assert_int_equal(count_named(doc, "lamp"), 0);
  cJSON_Delete(doc);
  assert_false(state_file("registered", hex, ""));
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_twice),
      cmocka_unit_test(test_host_list_shows_version),
      cmocka_unit_test(test_control_by_name),
      cmocka_unit_test(test_ambiguous_name),
      cmocka_unit_test(test_boot_driver_not_unregistered),
      cmocka_unit_test(test_viewer_refused),
      cmocka_unit_test(test_unregister_by_name),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
