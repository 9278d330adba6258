/* dfnet-manager's configuration file (issue 24 item 3; docs/configuration.md), with the real
 * binary: manager.conf in $DFNET_CONFIG_DIR is used (listen 127.0.0.1:0 and log-level from
 * it), a flag wins over it, a typo, a bad value or a bad flag value is a usage error (exit
 * 2) naming the file, the line and the key, --config FILE must exist, `init` takes
 * state-dir from it, and log-format = json gives JSON lines. Every run is a child of the
 * test (tests/child.h), stopped on every way out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "config_fixture.h"

static const char *g_dir; /* the fixture's: manager.conf, state, outputs */
static config_run_t R;    /* the last run's code and outputs */

static void write_conf(const char *text) { config_fixture_write("manager.conf", text); }

/* Run to its end (a usage error, init). */
static int run(char **argv) { return config_fixture_run(DFNET_MANAGER_BIN, argv, -1, -1, &R); }

/* Run until it says it listens, then SIGTERM it; R.out has the "listening on" line. */
static void run_until_listening(char **argv) {
  pid_t pid = config_fixture_start(DFNET_MANAGER_BIN, argv, -1);
  bool listening = false;
  for (int waited = 0; waited < 30000 && !listening; waited += 20) {
    test_child_read_output(config_fixture_out_path(), R.out, sizeof R.out);
    listening = strstr(R.out, "dfnet-manager: listening on ") != NULL;
    if (!listening)
      usleep(20000);
  }
  kill(pid, SIGTERM);
  config_fixture_wait(pid, 30000, &R);
  if (!listening)
    fail_msg("the manager did not listen: %s", R.err);
  assert_int_equal(R.rc, 0);
}

static int setup(void **state) {
  (void)state;
  if (config_fixture_setup("/tmp/dfnet-mgr-conf-XXXXXX") != 0)
    return -1;
  g_dir = config_fixture_dir();
  char state_dir[128];
  snprintf(state_dir, sizeof state_dir, "%s/state", g_dir);
  setenv("DFNET_STATE_DIR", state_dir, 1);
  return 0;
}

/* listen and log-level come from the file; flags replace them. */
static void test_file_used_flag_wins(void **state) {
  (void)state;
  write_conf("# the test's manager\nlisten = 127.0.0.1:0\nlog-level = warn\n");
  char *plain[] = {NULL, NULL};
  run_until_listening(plain);
  /* port 0 from the file: not the default 7443 */
  assert_non_null(strstr(R.out, "dfnet-manager: listening on 127.0.0.1:"));
  assert_null(strstr(R.out, "127.0.0.1:7443"));
  /* warn from the file: no info line */
  assert_null(strstr(R.err, " I manager: listening on"));

  char *level[] = {NULL, "--log-level", "info", NULL};
  run_until_listening(level);
  assert_non_null(strstr(R.err, " I manager: listening on 127.0.0.1:"));

  /* a value in the file the command line replaces is not used */
  write_conf("listen = 127.0.0.1:1\nlisten-x = 1\n");
  char *listen[] = {NULL, "--listen=127.0.0.1:0", NULL};
  assert_int_equal(run(listen), 2); /* the file is still checked whole */
  write_conf("listen = 127.0.0.1:1\nhost-grace = 5\n");
  run_until_listening(listen);
  assert_null(strstr(R.out, "127.0.0.1:1\n"));
}

static void test_typo_is_a_usage_error(void **state) {
  (void)state;
  write_conf("listen = 127.0.0.1:0\n\nlsiten = 127.0.0.1:0\n");
  char *argv[] = {NULL, NULL};
  assert_int_equal(run(argv), 2);
  char want[256];
  snprintf(want, sizeof want,
           "dfnet-manager: %s/manager.conf:3: unknown key 'lsiten' (did you mean 'listen'?)\n",
           g_dir);
  assert_string_equal(R.err, want);
  assert_string_equal(R.out, "");
}

static void test_bad_values(void **state) {
  (void)state;
  static const config_refusal_t cases[] = {
      {"host-grace = 86401\n", ":1: host-grace: '86401' is not a number in 0..86400"},
      {"# x\nrequire-lease = maybe\n",
       ":2: require-lease: 'maybe' is not true or false (yes/no, 1/0)"},
      {"log-level = loud\n", ":1: log-level: 'loud' is not error, warn, info or debug"},
      {"log-format = xml\n", ":1: log-format: 'xml' is not text or json"},
      {"listen = a\nlisten = b\n", ":2: 'listen' given twice (first on line 1)"},
      {"state-dir =\n", ":1: 'state-dir' has an empty value"},
      {"listen 127.0.0.1:0\n", ":1: expected 'key = value'"},
      {"config = /etc/x.conf\n", ":1: unknown key 'config'"},
  };
  config_fixture_expect_refusals(DFNET_MANAGER_BIN, "dfnet-manager", "manager.conf", cases,
                                 sizeof cases / sizeof cases[0], &R);
}

/* --config FILE must exist; the default file need not; a flag's value true works. */
static void test_config_flag(void **state) {
  (void)state;
  config_fixture_expect_missing_config(DFNET_MANAGER_BIN, &R);

  char other[128];

  snprintf(other, sizeof other, "%s/other.conf", g_dir);
  config_fixture_write("other.conf",
                       "listen = 127.0.0.1:0\nrequire-lease = true\nlog-format = json\n");
  write_conf("lsiten = broken\n"); /* not read: --config names another file */
  char *with_config[] = {NULL, "--config", other, NULL};
  run_until_listening(with_config);
  /* json from the file: every stderr line an object */
  assert_non_null(strstr(R.err, "\"subsystem\":\"manager\""));
  for (const char *l = R.err; *l != '\0'; l = strchr(l, '\n') + 1) {
    if (l[0] != '{' || strchr(l, '\n') == NULL)
      fail_msg("not a JSON line: %.80s", l);
  }

  char dir[128];
  snprintf(dir, sizeof dir, "%s/empty", g_dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  setenv("DFNET_CONFIG_DIR", dir, 1); /* no manager.conf there: fine */
  char *listen[] = {NULL, "--listen", "127.0.0.1:0", NULL};
  run_until_listening(listen);
  setenv("DFNET_CONFIG_DIR", g_dir, 1);
}

/* init takes state-dir from the file (where the manager run with it looks); --state-dir wins. */
static void test_init_state_dir(void **state) {
  (void)state;
  char from_file[128], from_flag[128], ca[160], want[200];
  snprintf(from_file, sizeof from_file, "%s/from-file", g_dir);
  snprintf(from_flag, sizeof from_flag, "%s/from-flag", g_dir);
  char conf[300];
  snprintf(conf, sizeof conf, "listen = 127.0.0.1:0\nstate-dir = %s\n", from_file);
  write_conf(conf);
  char *init[] = {NULL, "init", NULL};
  assert_int_equal(run(init), 0);
  snprintf(want, sizeof want, "state directory: %s\n", from_file);
  assert_string_equal(R.out, want);
  snprintf(ca, sizeof ca, "%s/ca.crt", from_file);
  assert_int_equal(access(ca, F_OK), 0);

  char *init_flag[] = {NULL, "init", "--state-dir", from_flag, NULL};
  assert_int_equal(run(init_flag), 0);
  snprintf(want, sizeof want, "state directory: %s\n", from_flag);
  assert_string_equal(R.out, want);

  write_conf("stat-dir = x\n"); /* the file is checked for init too */
  assert_int_equal(run(init), 2);
  assert_non_null(strstr(R.err,
                         "manager.conf:1: unknown key 'stat-dir' (did you mean "
                         "'state-dir'?)"));
}

/* The shipped /etc/dfnet/manager.conf (packaging/etc/): every option of --help is in it,
 * commented out with its default, and the file with every such line uncommented is a valid
 * configuration (the values the test cannot use replaced by flags). */
static void test_example_file(void **state) {
  (void)state;
  static config_example_t ex;
  static const char *const skip[] = {"config", "version", NULL};
  assert_true(config_fixture_load_example(DFNET_MANAGER_BIN, "manager.conf", skip, &ex, &R) >= 10);

  char *shipped[] = {NULL, "--config", ex.path, "--listen", "127.0.0.1:0", NULL};
  run_until_listening(shipped);
  char state_dir[128], drivers[128];
  snprintf(state_dir, sizeof state_dir, "%s/example-state", g_dir);
  snprintf(drivers, sizeof drivers, "%s/example-drivers", g_dir);
  assert_int_equal(mkdir(drivers, 0700), 0);
  /* uncommented: "#key = value" lines become settings */
  char *all[] = {NULL,          "--config",         ex.uncommented, "--listen",
                 "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",  "--state-dir",
                 state_dir,     "--drivers",        drivers,        NULL};
  run_until_listening(all);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_used_flag_wins), cmocka_unit_test(test_typo_is_a_usage_error),
      cmocka_unit_test(test_bad_values),          cmocka_unit_test(test_config_flag),
      cmocka_unit_test(test_init_state_dir),      cmocka_unit_test(test_example_file),
  };
  return cmocka_run_group_tests(tests, setup, config_fixture_teardown);
}
