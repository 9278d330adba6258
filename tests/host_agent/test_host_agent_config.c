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
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

static char g_dir[64];
static char g_out[128], g_err[128];
static char g_stderr_text[8192];

static void write_conf(const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/host.conf", g_dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

/* Run bin with argv (argv[0] set here) to its end, stdout and stderr to files; keep_fd
 * (or -1) stays open in the child as fd 3. Returns the exit code; g_stderr_text its stderr. */
static int run(const char *bin, char **argv, int keep_fd, int close_fd) {
  unlink(g_out);
  unlink(g_err);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int out = open(g_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
      _exit(127);
    if (keep_fd >= 0 && dup2(keep_fd, 3) < 0)
      _exit(127);
    argv[0] = (char *)bin;
    execv(bin, argv);
    _exit(127);
  }
  if (close_fd >= 0)
    close(close_fd); /* the driver host's link: closed, it exits */
  int status = 0, rc = -1;
  for (int waited = 0; waited < 30000; waited += 10) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    usleep(10000);
  }
  if (rc < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  g_stderr_text[0] = '\0';
  FILE *f = fopen(g_err, "r");
  if (f != NULL) {
    size_t n = fread(g_stderr_text, 1, sizeof g_stderr_text - 1, f);
    g_stderr_text[n] = '\0';
    fclose(f);
  }
  return rc;
}

static int run_host(char **argv) { return run(DFNET_HOST_BIN, argv, -1, -1); }

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-host-conf-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return -1;
  snprintf(g_out, sizeof g_out, "%s/out", g_dir);
  snprintf(g_err, sizeof g_err, "%s/err", g_dir);
  setenv("DFNET_CONFIG_DIR", g_dir, 1);
  unsetenv("DFNET_LOG_LEVEL");
  unsetenv("DFNET_LOG_FORMAT");
  unsetenv("JOURNAL_STREAM");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
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
  if (strstr(g_stderr_text, want) == NULL)
    fail_msg("'%s' has no '%s'", g_stderr_text, want);

  char flag_dir[128];
  snprintf(flag_dir, sizeof flag_dir, "%s/from-flag", g_dir);
  char *flag[] = {NULL, "--state-dir", flag_dir, NULL};
  assert_int_equal(run_host(flag), 2);
  snprintf(want, sizeof want, "(state directory %s)", flag_dir);
  assert_non_null(strstr(g_stderr_text, want));

  /* a bad value the command line replaces is not used */
  write_conf("keepalive-ms = 5\n");
  char *keepalive[] = {NULL, "--keepalive-ms", "100", "--state-dir", flag_dir, NULL};
  assert_int_equal(run_host(keepalive), 2);
  assert_null(strstr(g_stderr_text, "host.conf"));
  assert_non_null(strstr(g_stderr_text, want));
}

static void test_typo_and_bad_values(void **state) {
  (void)state;
  static const struct {
    const char *conf, *message; /* after "dfnet-host: DIR/host.conf" */
  } cases[] = {
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
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_conf(cases[i].conf);
    char *argv[] = {NULL, NULL};
    assert_int_equal(run_host(argv), 2);
    char want[512];
    snprintf(want, sizeof want, "dfnet-host: %s/host.conf%s\n", g_dir, cases[i].message);
    if (strcmp(g_stderr_text, want) != 0)
      fail_msg("case %zu: '%s', want '%s'", i, g_stderr_text, want);
  }
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
  if (strcmp(g_stderr_text, want) != 0)
    fail_msg("'%s', want '%s'", g_stderr_text, want);
}

static void test_config_flag(void **state) {
  (void)state;
  char missing[128];
  snprintf(missing, sizeof missing, "%s/none.conf", g_dir);
  char *argv[] = {NULL, "--config", missing, NULL};
  assert_int_equal(run_host(argv), 2);
  assert_non_null(strstr(g_stderr_text, missing));
  assert_non_null(strstr(g_stderr_text, "No such file or directory"));
}

/* What the agent passes its driver hosts: their lines in the agent's format. */
static void test_driver_host_json(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  char *argv[] = {NULL, "--fd", "3", "--log-level", "debug", "--log-format", "json", NULL};
  assert_int_equal(run(DFNET_DRIVER_HOST_BIN, argv, sv[1], sv[0]), 0);
  close(sv[1]);
  assert_true(g_stderr_text[0] != '\0');
  size_t lines = 0;
  for (char *save = NULL, *l = strtok_r(g_stderr_text, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save), lines++) {
    cJSON *o = cJSON_Parse(l);
    if (o == NULL)
      fail_msg("not a JSON line: %s", l);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "level")));
    cJSON_Delete(o);
  }
  assert_true(lines >= 1);
  char *bad[] = {NULL, "--fd", "3", "--log-format", "xml", NULL};
  assert_int_equal(run(DFNET_DRIVER_HOST_BIN, bad, -1, -1), 2);
  assert_non_null(strstr(g_stderr_text, "--log-format wants text or json"));
}

/* The shipped /etc/dfnet/host.conf (packaging/etc/): every option of --help is in it,
 * commented out, and the file with every such line uncommented passes the option checks
 * (the agent stops later, at this test's missing credentials, not at the file). */
static void test_example_file(void **state) {
  (void)state;
  const char *src = getenv("DFNET_SOURCE_DIR");
  assert_non_null(src);
  char example[512], text[16384], un[128];
  snprintf(example, sizeof example, "%s/packaging/etc/host.conf", src);
  FILE *f = fopen(example, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  char *help[] = {NULL, "--help", NULL};
  assert_int_equal(run_host(help), 0);
  char out[16384];
  f = fopen(g_out, "r");
  assert_non_null(f);
  n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  fclose(f);
  size_t options = 0;
  for (const char *l = strstr(out, "\nOptions:\n"); l != NULL; l = strchr(l + 1, '\n')) {
    char name[64];
    if (sscanf(l, "\n  --%63[a-z0-9-]", name) != 1 || strcmp(name, "config") == 0 ||
        strcmp(name, "version") == 0 || strcmp(name, "help") == 0)
      continue;
    char want[80];
    snprintf(want, sizeof want, "\n#%s = ", name);
    if (strstr(text, want) == NULL)
      fail_msg("%s has no line '#%s = ...'", example, name);
    options++;
  }
  assert_true(options >= 20);

  snprintf(un, sizeof un, "%s/uncommented.conf", g_dir);
  f = fopen(un, "w");
  assert_non_null(f);
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    char key[64];
    bool setting = sscanf(l, "#%63[a-z0-9-] = ", key) == 1 && strstr(l, " = ") != NULL;
    fprintf(f, "%s\n", setting ? l + 1 : l);
  }
  fclose(f);
  char *all[] = {NULL, "--config", un, NULL};
  int rc = run_host(all);
  if (strstr(g_stderr_text, "uncommented.conf") != NULL)
    fail_msg("the example refused: %s", g_stderr_text);
  assert_int_not_equal(rc, 0); /* no such certificate here */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_used_flag_wins),  cmocka_unit_test(test_typo_and_bad_values),
      cmocka_unit_test(test_config_flag),          cmocka_unit_test(test_driver_host_json),
      cmocka_unit_test(test_join_reads_host_conf), cmocka_unit_test(test_example_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
