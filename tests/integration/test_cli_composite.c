/* `dfnet composite add` and `dfnet composite list -v` end to end: the real `dfnet` CLI (a
 * child process) against a real dfnet-manager with a real dfnet-host and its driver hosts.
 * The host's board file has three platform devices (vid 0xd0f): light0 (did 7, bound to
 * the echo test driver, so a driver host runs), i2c0 (did 41) and gpio0 (did 42), which no
 * driver takes. A composite driver, "sensor", wants a primary node with
 * fuchsia.BIND_PROTOCOL 60 and a node with 61: properties only a composite node spec's
 * parents carry.
 *
 * Checked: a spec file whose parents' bind rules pick i2c0 and gpio0, and whose properties
 * say 60 and 61, is added by an admin; the composite node is assembled under i2c0 and the
 * composite driver chosen for it; `composite list -v --json` shows the spec with its driver, its
 * node, its parents' nodes and every bind rule and property as the file gave them, and the text
 * prints them as ffx does; adding it again is ALREADY_EXISTS. A file with a typo (not
 * JSON, an unknown field, a wrong type, a value out of range) fails with exit 2, a message
 * naming the file and the field, and adds nothing. A viewer is refused PERMISSION_DENIED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "fabric.h"
#include "testhost/testhost.h"

#define HOST "lab-k"
#define I2C "dev.lab-k.platform.i2c0"
#define GPIO "dev.lab-k.platform.gpio0"
#define COMPOSITE "dev.lab-k.platform.i2c0.sensor-hub"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *admin;
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* The spec file of the tests: both kinds of key (a string, an integer), both forms of
 * value (bare, typed with a hex string). */
static const char spec_json[] =
    "{\n"
    "  \"name\": \"sensor-hub\",\n"
    "  \"parents\": [\n"
    "    {\"bind_rules\": [\n"
    "       {\"key\": \"fuchsia.BIND_PLATFORM_DEV_VID\", \"condition\": \"accept\", \"values\": "
    "[3343]},\n"
    "       {\"key\": \"fuchsia.BIND_PLATFORM_DEV_DID\", \"condition\": \"accept\",\n"
    "        \"values\": [{\"type\": \"uint\", \"value\": \"0x29\"}]}],\n"
    "     \"properties\": [{\"key\": 1, \"value\": 60}]},\n"
    "    {\"bind_rules\": [\n"
    "       {\"key\": \"fuchsia.BIND_PLATFORM_DEV_DID\", \"condition\": \"accept\", \"values\": "
    "[42]},\n"
    "       {\"key\": \"fuchsia.BIND_PLATFORM_DEV_DID\", \"condition\": \"reject\", \"values\": "
    "[7, 41]}],\n"
    "     \"properties\": [{\"key\": \"fuchsia.BIND_PROTOCOL\", \"value\": {\"type\": \"uint\", "
    "\"value\": 61}},\n"
    "                    {\"key\": \"vendor.role\", \"value\": \"gpio\"}]}\n"
    "  ]\n"
    "}\n";

static void write_file(const char *name, const char *text, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", F.fab.root, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  F.agent.name = HOST;
  const fabric_package_t packages[] = {{"light", "echo.so", NULL, 7}, {NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "cli-composite", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "admin", "root") != 0 ||
      fabric_issue(&F.fab, "viewer", "watcher") != 0)
    return -1;
  /* the composite driver: the echo test driver with composite bind rules */
  char drivers[400];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  if (th_write_driver(drivers, "sensor",
                      "composite sensor;\n"
                      "primary node \"i2c\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                      "node \"gpio\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                      NULL) != 0 ||
      fabric_sh("cp '%s/tests/drivers/echo.so' '%s/sensor/driver/sensor.so'", F.fab.build,
                drivers) != 0)
    return -1;
  const char *devices[] = {"light0:7", "i2c0:41", "gpio0:42", NULL};
  fabric_write_board(&F.fab, devices);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.admin = fabric_connect(&F.fab, "root");
  if (F.admin == NULL ||
      !fabric_wait_node(F.admin, "dev.lab-k.platform.light0", fabric_is_bound, NULL, WAIT_MS,
                        NULL) ||
      !fabric_wait_node(F.admin, GPIO, fabric_is_found, NULL, WAIT_MS, NULL) ||
      !fabric_wait_node(F.admin, I2C, fabric_is_found, NULL, WAIT_MS, NULL))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

/* The composite named `name` in a `composite list -v --json` document, or NULL. */
static cJSON *find_composite(cJSON *doc, const char *name) {
  cJSON *k;
  cJSON_ArrayForEach(k, cJSON_GetObjectItem(doc, "composites")) {
    if (strcmp(cJSON_GetObjectItem(k, "name")->valuestring, name) == 0)
      return k;
  }
  return NULL;
}

static void check_value(cJSON *v, const char *type, double value) {
  assert_string_equal(cJSON_GetObjectItem(v, "type")->valuestring, type);
  assert_true(cJSON_GetObjectItem(v, "value")->valuedouble == value);
}

/* `line` is a whole line of out. */
static void expect_line(const char *out, const char *line) {
  size_t n = strlen(line);
  for (const char *at = strstr(out, line); at != NULL; at = strstr(at + 1, line))
    if ((at == out || at[-1] == '\n') && at[n] == '\n')
      return;
  fail_msg("no line \"%s\" in:\n%s", line, out);
}

static void test_add_and_list(void **state) {
  (void)state;
  char spec[400];
  write_file("spec.json", spec_json, spec, sizeof spec);
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "composite", "add", spec, NULL), 0);
  assert_string_equal(R.out, "Added composite node spec sensor-hub (2 parents).\n");
  /* assembled under the primary parent, its parents owned by the composite. (Its driver
   * is chosen, as the listing shows; whether the agent can start it is not this test's
   * business.) */
  assert_true(fabric_wait_node(F.admin, COMPOSITE, fabric_is_found, NULL, WAIT_MS, NULL));
  assert_int_equal(fabric_node(F.admin, I2C).state, DFNET_CLIENT_NODE_OWNED_BY_COMPOSITE);
  assert_int_equal(fabric_node(F.admin, GPIO).state, DFNET_CLIENT_NODE_OWNED_BY_COMPOSITE);

  assert_int_equal(cli_run(&R, &F.fab, "composite", "list", "-v", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *k = find_composite(doc, "sensor-hub");
  assert_non_null(k);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(k, "from_spec")));
  assert_string_equal(cJSON_GetObjectItem(k, "driver")->valuestring,
                      "dfnet-boot:///sensor#meta/sensor.json");
  assert_string_equal(cJSON_GetObjectItem(k, "moniker")->valuestring, COMPOSITE);
  cJSON *parents = cJSON_GetObjectItem(k, "parents");
  assert_int_equal(cJSON_GetArraySize(parents), 2);
  cJSON *p0 = cJSON_GetArrayItem(parents, 0), *p1 = cJSON_GetArrayItem(parents, 1);
  assert_string_equal(cJSON_GetObjectItem(p0, "moniker")->valuestring, I2C);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p0, "primary")));
  assert_string_equal(cJSON_GetObjectItem(p1, "moniker")->valuestring, GPIO);
  /* parent 0: two ACCEPT rules, the second written as a typed hex string */
  cJSON *rules = cJSON_GetObjectItem(p0, "bind_rules");
  assert_int_equal(cJSON_GetArraySize(rules), 2);
  cJSON *r0 = cJSON_GetArrayItem(rules, 0), *r1 = cJSON_GetArrayItem(rules, 1);
  assert_string_equal(cJSON_GetObjectItem(r0, "key")->valuestring, "fuchsia.BIND_PLATFORM_DEV_VID");
  assert_string_equal(cJSON_GetObjectItem(r0, "condition")->valuestring, "accept");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r0, "values")), 1);
  check_value(cJSON_GetArrayItem(cJSON_GetObjectItem(r0, "values"), 0), "uint", 3343);
  assert_string_equal(cJSON_GetObjectItem(r1, "key")->valuestring, "fuchsia.BIND_PLATFORM_DEV_DID");
  check_value(cJSON_GetArrayItem(cJSON_GetObjectItem(r1, "values"), 0), "uint", 41);
  cJSON *props = cJSON_GetObjectItem(p0, "properties");
  assert_int_equal(cJSON_GetArraySize(props), 1);
  cJSON *prop = cJSON_GetArrayItem(props, 0);
  assert_int_equal(cJSON_GetObjectItem(prop, "key")->valueint, 1);
  assert_string_equal(cJSON_GetObjectItem(prop, "key_name")->valuestring, "fuchsia.BIND_PROTOCOL");
  check_value(prop, "uint", 60);
  /* parent 1: an ACCEPT and a REJECT rule of two values; a string property */
  rules = cJSON_GetObjectItem(p1, "bind_rules");
  assert_int_equal(cJSON_GetArraySize(rules), 2);
  r1 = cJSON_GetArrayItem(rules, 1);
  assert_string_equal(cJSON_GetObjectItem(r1, "condition")->valuestring, "reject");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r1, "values")), 2);
  check_value(cJSON_GetArrayItem(cJSON_GetObjectItem(r1, "values"), 1), "uint", 41);
  props = cJSON_GetObjectItem(p1, "properties");
  assert_int_equal(cJSON_GetArraySize(props), 2);
  prop = cJSON_GetArrayItem(props, 1);
  assert_string_equal(cJSON_GetObjectItem(prop, "key")->valuestring, "vendor.role");
  assert_string_equal(cJSON_GetObjectItem(prop, "type")->valuestring, "string");
  assert_string_equal(cJSON_GetObjectItem(prop, "value")->valuestring, "gpio");
  cJSON_Delete(doc);

  /* the text, as ffx driver list-composite-node-specs -v prints a spec's parents */
  assert_int_equal(cli_run(&R, &F.fab, "composite", "list", "-v", NULL), 0);
  char *at = strstr(R.out, "Name      : sensor-hub (composite node spec)\n");
  assert_non_null(at);
  expect_line(at, "Driver    : dfnet-boot:///sensor#meta/sensor.json");
  expect_line(at, "Device    : " COMPOSITE);
  expect_line(at, "Parent 0  : 0 (Primary)");
  expect_line(at, "   Device : " I2C);
  expect_line(at, "   2 Bind Rules");
  expect_line(at, "   [ 1/ 2] : Accept \"fuchsia.BIND_PLATFORM_DEV_VID\" { 0x000d0f }");
  expect_line(at, "   [ 2/ 2] : Accept \"fuchsia.BIND_PLATFORM_DEV_DID\" { 0x000029 }");
  expect_line(at, "   1 Property");
  expect_line(at, "   [ 1/ 1] : Key fuchsia.BIND_PROTOCOL          Value 0x00003c");
  expect_line(at, "   [ 2/ 2] : Reject \"fuchsia.BIND_PLATFORM_DEV_DID\" { 0x000007, 0x000029 }");
  expect_line(at, "   [ 2/ 2] : Key \"vendor.role\"                  Value \"gpio\"");
  /* the plain listing names it */
  assert_int_equal(cli_run(&R, &F.fab, "composite", "list", NULL), 0);
  expect_line(R.out, "sensor-hub");

  /* the same spec again */
  assert_int_equal(cli_run(&R, &F.fab, "composite", "add", spec, NULL), 1);
  assert_non_null(strstr(R.err,
                         "dfnet: ALREADY_EXISTS: composite node spec sensor-hub already "
                         "exists"));
}

/* A spec file with one mistake: exit 2, the message names the file and the field. */
typedef struct bad_spec {
  const char *what, *text, *message;
} bad_spec_t;

static const bad_spec_t bad_specs[] = {
    {"not JSON", "{\"name\": \"typo\",\n \"parents\": [}\n", "bad.json:2:14: not valid JSON"},
    {"unknown field",
     "{\"name\": \"typo\", \"parents\": [{\"bind_rules\": [{\"key\": \"k\", \"condtion\": "
     "\"accept\", \"values\": [1]}]}]}",
     "bad.json: parents[0].bind_rules[0].condtion: unknown field (a bind rule has: key, "
     "condition, values)"},
    {"wrong type",
     "{\"name\": \"typo\", \"parents\": [{\"bind_rules\": [{\"key\": \"k\", \"condition\": "
     "\"accept\", \"values\": [[1]]}]}]}",
     "bad.json: parents[0].bind_rules[0].values[0]: an array; a value is a number, a string, "
     "true/false or {\"type\": ..., \"value\": ...}"},
    {"wrong condition",
     "{\"name\": \"typo\", \"parents\": [{\"bind_rules\": [{\"key\": \"k\", \"condition\": "
     "\"equals\", \"values\": [1]}]}]}",
     "bad.json: parents[0].bind_rules[0].condition: \"equals\"; wants \"accept\" or \"reject\""},
    {"out of range",
     "{\"name\": \"typo\", \"parents\": [{\"bind_rules\": [{\"key\": \"k\", \"condition\": "
     "\"accept\", \"values\": [1]}], \"properties\": [{\"key\": 1, \"value\": -3}]}]}",
     "bad.json: parents[0].properties[0].value: -3: a uint value is a whole number in "
     "0..4294967295"},
    {"missing field", "{\"name\": \"typo\", \"parents\": [{\"properties\": []}]}",
     "bad.json: parents[0].bind_rules: missing (1..4 wanted)"},
    {"too many values",
     "{\"name\": \"typo\", \"parents\": [{\"bind_rules\": [{\"key\": \"k\", \"condition\": "
     "\"accept\", \"values\": [1, 2, 3, 4, 5]}]}]}",
     "bad.json: parents[0].bind_rules[0].values: 5 items, wants 1..3"},
    {"name type", "{\"name\": 12, \"parents\": []}",
     "bad.json: name: a number; wants the spec's name, a string"},
};

static void test_malformed_spec(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++) {
    const bad_spec_t *b = &bad_specs[i];
    char path[400];
    write_file("bad.json", b->text, path, sizeof path);
    int rc = cli_run(&R, &F.fab, "composite", "add", path, NULL);
    char want[700];
    snprintf(want, sizeof want, "dfnet: INVALID_ARGUMENT: %s/%s", F.fab.root, b->message);
    if (rc != 2 || strstr(R.err, want) == NULL)
      fail_msg("%s: exit %d, stderr \"%s\", wanted exit 2 and \"%s\"", b->what, rc, R.err, want);
    assert_string_equal(R.out, "");
  }
  /* nothing was added */
  assert_int_equal(cli_run(&R, &F.fab, "composite", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_null(find_composite(doc, "typo"));
  cJSON_Delete(doc);
  /* a file that is not there */
  assert_int_equal(cli_run(&R, &F.fab, "composite", "add", "/nonexistent/spec.json", NULL), 2);
  assert_non_null(strstr(R.err, "/nonexistent/spec.json: No such file or directory"));
}

static void test_viewer_refused(void **state) {
  (void)state;
  char spec[400];
  write_file("viewer.json",
             "{\"name\": \"viewers-spec\", \"parents\": [{\"bind_rules\": [{\"key\": "
             "\"fuchsia.BIND_PLATFORM_DEV_DID\", \"condition\": \"accept\", \"values\": [99]}]}]}",
             spec, sizeof spec);
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "composite", "add", spec, NULL), 1);
  assert_true(strncmp(R.err, "dfnet: PERMISSION_DENIED: ", 26) == 0);
  /* the viewer may list, and sees no such spec */
  assert_int_equal(cli_run(&R, &F.fab, "composite", "list", "-v", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_null(find_composite(doc, "viewers-spec"));
  assert_non_null(find_composite(doc, "sensor-hub"));
  cJSON_Delete(doc);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_and_list),
      cmocka_unit_test(test_malformed_spec),
      cmocka_unit_test(test_viewer_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
