/* dfnet-host's configuration file (issue 24 item 3; docs/configuration.md), with the real
 * binary: host.conf in $DFNET_CONFIG_DIR is used (its state-dir shows in the "not joined"
 * error), a flag wins over it, a typo or a bad value is a usage error (exit 2) naming the
 * file, the line and the key, --config FILE must exist; and dfnet-driver-host logs JSON
 * lines with --log-format json (what the agent passes its driver hosts). Every run is a
 * child of the test (tests/child.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "config_fixture.h"

static const char *g_dir; /* the fixture's: host.conf, outputs */
static config_run_t R;    /* the last run's code and outputs */

static void write_conf(const char *text) { config_fixture_write("host.conf", text); }

static int run_host(char **argv) { return config_fixture_run(DFNET_HOST_BIN, argv, -1, -1, &R); }

static int setup(void **state) {
  (void)state;
  if (config_fixture_setup("/tmp/dfnet-host-conf-XXXXXX") != 0)
    return -1;
  g_dir = config_fixture_dir();
  return 0;
}

/* The file's state-dir is used (the "join first" error names it); --state-dir wins. */
static void test_file_used_flag_wins(void **state) {
  (void)state;
  char conf[256], want[256];
  snprintf(conf, sizeof conf, "# a host\nstate-dir = %s/from-file\nno-usb = yes\nlabel = a=1\n",
           g_dir);
  write_conf(conf);
  char *plain[] = {NULL, NULL};
  assert_int_equal(run_host(plain), 2);
  snprintf(want, sizeof want, "(state directory %s/from-file)", g_dir);
  if (strstr(R.err, want) == NULL)
    fail_msg("'%s' has no '%s'", R.err, want);

  char flag_dir[128];
  snprintf(flag_dir, sizeof flag_dir, "%s/from-flag", g_dir);
  char *flag[] = {NULL, "--state-dir", flag_dir, NULL};
  assert_int_equal(run_host(flag), 2);
  snprintf(want, sizeof want, "(state directory %s)", flag_dir);
  assert_non_null(strstr(R.err, want));

  /* a bad value the command line replaces is not used */
  write_conf("keepalive-ms = 5\n");
  char *keepalive[] = {NULL, "--keepalive-ms", "100", "--state-dir", flag_dir, NULL};
  assert_int_equal(run_host(keepalive), 2);
  assert_null(strstr(R.err, "host.conf"));
  assert_non_null(strstr(R.err, want));
}

static void test_typo_and_bad_values(void **state) {
  (void)state;
  static const config_refusal_t cases[] = {
      {"no-usb = yes\nmanagr = wss://m:7443\n",
       ":2: unknown key 'managr' (did you mean 'manager'?)"},
      {"keepalive-ms = 5\n", ":1: keepalive-ms 5: want a number in 50..600000"},
      {"no-usb = maybe\n", ":1: no-usb: 'maybe' is not true or false (yes/no, 1/0)"},
      {"manager = http://m:1\n",
       ":1: manager http://m:1: malformed manager URL: must start with "
       "wss://"},
      {"allow-resource = /dev/a\nallow-resource = dev/b\n",
       ":2: allow-resource dev/b: want an absolute path or glob (at most 32 of them)"},
      {"log-format = xml\n", ":1: log-format xml: want text or json"},
      {"name = a\nname = b\n", ":2: 'name' given twice (first on line 1)"},
      {"help = yes\n", ":1: unknown key 'help'"},
  };
  config_fixture_expect_refusals(DFNET_HOST_BIN, "dfnet-host", "host.conf", cases,
                                 sizeof cases / sizeof cases[0], &R);
}

/* `dfnet-host join` takes host.conf's state-dir, so it writes where the agent will read:
 * it reads the file as the agent does, and a typo there stops it the same way. */
static void test_join_reads_host_conf(void **state) {
  (void)state;
  write_conf("state-dir = /tmp/nowhere\nmanagr = wss://m:7443\n");
  char *argv[] = {NULL,  "join",     "wss://127.0.0.1:1", "--token",
                  "a.b", "--ca-pin", "sha256:0",          NULL};
  assert_int_equal(run_host(argv), 2);
  char want[512];
  snprintf(want, sizeof want,
           "dfnet-host join: %s/host.conf:2: unknown key 'managr' (did you mean 'manager'?)\n",
           g_dir);
  if (strcmp(R.err, want) != 0)
    fail_msg("'%s', want '%s'", R.err, want);
}

static void test_config_flag(void **state) {
  (void)state;
  config_fixture_expect_missing_config(DFNET_HOST_BIN, &R);
}

/* What the agent passes its driver hosts: their lines in the agent's format. */
static void test_driver_host_json(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  char *argv[] = {NULL, "--fd", "3", "--log-level", "debug", "--log-format", "json", NULL};
  assert_int_equal(config_fixture_run(DFNET_DRIVER_HOST_BIN, argv, sv[1], sv[0], &R), 0);
  close(sv[1]);
  assert_true(R.err[0] != '\0');
  size_t lines = 0;
  for (char *save = NULL, *l = strtok_r(R.err, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save), lines++) {
    cJSON *o = cJSON_Parse(l);
    if (o == NULL)
      fail_msg("not a JSON line: %s", l);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "level")));
    cJSON_Delete(o);
  }
  assert_true(lines >= 1);
  char *bad[] = {NULL, "--fd", "3", "--log-format", "xml", NULL};
  assert_int_equal(config_fixture_run(DFNET_DRIVER_HOST_BIN, bad, -1, -1, &R), 2);
  assert_non_null(strstr(R.err, "--log-format wants text or json"));
}

/* The shipped /etc/dfnet/host.conf (packaging/etc/): every option of --help is in it,
 * commented out, and the file with every such line uncommented passes the option checks
 * (the agent stops later, at this test's missing credentials, not at the file). */
static void test_example_file(void **state) {
  (void)state;
  static config_example_t ex;
  static const char *const skip[] = {"config", "version", "help", NULL};
  assert_true(config_fixture_load_example(DFNET_HOST_BIN, "host.conf", skip, &ex, &R) >= 20);
  char *all[] = {NULL, "--config", ex.uncommented, NULL};
  int rc = run_host(all);
  if (strstr(R.err, "uncommented.conf") != NULL)
    fail_msg("the example refused: %s", R.err);
  assert_int_not_equal(rc, 0); /* no such certificate here */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_used_flag_wins),  cmocka_unit_test(test_typo_and_bad_values),
      cmocka_unit_test(test_config_flag),          cmocka_unit_test(test_driver_host_json),
      cmocka_unit_test(test_join_reads_host_conf), cmocka_unit_test(test_example_file),
  };
  return cmocka_run_group_tests(tests, setup, config_fixture_teardown);
}
