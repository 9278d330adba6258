/* The fixture of the configuration-file tests of the real binaries (config_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

static char g_dir[64];
static char g_out[128], g_err[128];

int config_fixture_setup(const char *tmpl) {
  snprintf(g_dir, sizeof g_dir, "%s", tmpl);
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

int config_fixture_teardown(void **state) {
  (void)state;
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

const char *config_fixture_dir(void) { return g_dir; }

void config_fixture_write(const char *name, const char *text) {
  char path[192];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

pid_t config_fixture_start(const char *bin, char **argv, int keep_fd) {
  unlink(g_out); /* no output of the run before is read as this one's */
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
  return pid;
}

const char *config_fixture_out_path(void) { return g_out; }

void config_fixture_wait(pid_t pid, int timeout_ms, config_run_t *r) {
  int status = 0;
  r->rc = -1;
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    usleep(10000);
  }
  if (r->rc < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  test_child_read_output(g_out, r->out, sizeof r->out);
  test_child_read_output(g_err, r->err, sizeof r->err);
}

int config_fixture_run(const char *bin, char **argv, int keep_fd, int close_fd, config_run_t *r) {
  pid_t pid = config_fixture_start(bin, argv, keep_fd);
  if (close_fd >= 0)
    close(close_fd);
  config_fixture_wait(pid, 30000, r);
  return r->rc;
}

void config_fixture_expect_refusals(const char *bin, const char *prog, const char *file,
                                    const config_refusal_t *cases, size_t n, config_run_t *r) {
  for (size_t i = 0; i < n; i++) {
    config_fixture_write(file, cases[i].conf);
    char *argv[] = {NULL, NULL};
    assert_int_equal(config_fixture_run(bin, argv, -1, -1, r), 2);
    char want[512];
    snprintf(want, sizeof want, "%s: %s/%s%s\n", prog, g_dir, file, cases[i].message);
    if (strcmp(r->err, want) != 0)
      fail_msg("case %zu: '%s', want '%s'", i, r->err, want);
  }
}

void config_fixture_expect_missing_config(const char *bin, config_run_t *r) {
  char missing[128];
  snprintf(missing, sizeof missing, "%s/none.conf", g_dir);
  char *argv[] = {NULL, "--config", missing, NULL};
  assert_int_equal(config_fixture_run(bin, argv, -1, -1, r), 2);
  assert_non_null(strstr(r->err, missing));
  assert_non_null(strstr(r->err, "No such file or directory"));
}

/* Every option bin's --help output `help` lists (but those in skip) has its commented-out
 * line in ex's text. Returns how many were checked. */
static size_t check_options(const config_example_t *ex, const char *help, const char *const *skip) {
  size_t options = 0;
  for (const char *l = strstr(help, "\nOptions:\n"); l != NULL; l = strchr(l + 1, '\n')) {
    char name[64];
    if (sscanf(l, "\n  --%63[a-z0-9-]", name) != 1)
      continue;
    bool skipped = false;
    for (size_t i = 0; skip[i] != NULL && !skipped; i++)
      skipped = strcmp(name, skip[i]) == 0;
    if (skipped)
      continue;
    char want[80];
    snprintf(want, sizeof want, "\n#%s = ", name);
    if (strstr(ex->text, want) == NULL)
      fail_msg("%s has no line '#%s = ...'", ex->path, name);
    options++;
  }
  return options;
}

/* Write ex->uncommented: ex's text with every "#key = value" line uncommented. */
static void write_uncommented(config_example_t *ex) {
  char *copy = strdup(ex->text);
  assert_non_null(copy);
  snprintf(ex->uncommented, sizeof ex->uncommented, "%s/uncommented.conf", g_dir);
  FILE *f = fopen(ex->uncommented, "w");
  assert_non_null(f);
  for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    char key[64];
    bool setting = sscanf(l, "#%63[a-z0-9-] = ", key) == 1 && strstr(l, " = ") != NULL;
    fprintf(f, "%s\n", setting ? l + 1 : l);
  }
  assert_int_equal(fclose(f), 0);
  free(copy);
}

size_t config_fixture_load_example(const char *bin, const char *name, const char *const *skip,
                                   config_example_t *ex, config_run_t *r) {
  const char *src = getenv("DFNET_SOURCE_DIR");
  assert_non_null(src);
  snprintf(ex->path, sizeof ex->path, "%s/packaging/etc/%s", src, name);
  test_child_read_output(ex->path, ex->text, sizeof ex->text);
  assert_true(strlen(ex->text) > 100);
  char *help[] = {NULL, "--help", NULL};
  assert_int_equal(config_fixture_run(bin, help, -1, -1, r), 0);
  size_t options = check_options(ex, r->out, skip);
  write_uncommented(ex);
  return options;
}
