/* The fixture of the configuration-file tests of the real binaries (test_host_agent_config,
 * test_manager_config): a fresh directory named by $DFNET_CONFIG_DIR, files written in it,
 * runs of a binary as a child of the test (tests/child.h) with stdout and stderr captured,
 * and the checks of a shipped example file (packaging/etc/) against the binary's --help.
 * cmocka tests only: failures are cmocka assertions. One fixture per process (its directory
 * and output files are process-wide); the test's thread. */
#ifndef DFNET_TESTS_CONFIG_FIXTURE_H
#define DFNET_TESTS_CONFIG_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

/* What one run of a binary left: its exit code and its outputs (truncated to the buffers,
 * NUL-terminated). */
typedef struct config_run {
  int rc; /* the exit code, 128 + the signal that ended it, or -1: killed at the timeout */
  char out[16384], err[16384];
} config_run_t;

/* Make the fixture's directory from tmpl (a mkdtemp template, "/tmp/dfnet-x-XXXXXX", at most
 * 63 characters), point $DFNET_CONFIG_DIR at it and unset DFNET_LOG_LEVEL, DFNET_LOG_FORMAT
 * and JOURNAL_STREAM (the runs' logs are the binaries' defaults). Returns 0, or -1 when the
 * directory cannot be made. A cmocka group setup. */
int config_fixture_setup(const char *tmpl);

/* Remove the fixture's directory and all in it. Returns 0, or -1 when that fails. A cmocka
 * group teardown (state unused). */
int config_fixture_teardown(void **state);

/* The fixture's directory (valid after config_fixture_setup, for the process's life). */
const char *config_fixture_dir(void);

/* Write text as the file `name` of the fixture's directory (replacing it). Asserts. */
void config_fixture_write(const char *name, const char *text);

/* Start bin with argv (argv[0] is set to bin here; NULL-terminated) as a child of the test,
 * its stdout and stderr to files of the fixture's directory (those of an earlier run removed
 * first); keep_fd (or -1) stays open in the child as its fd 3. Returns the child's pid.
 * Asserts that it forked. */
pid_t config_fixture_start(const char *bin, char **argv, int keep_fd);

/* The file a started child's stdout goes to (to watch it while it runs). */
const char *config_fixture_out_path(void);

/* Wait up to timeout_ms for child pid to exit (SIGKILL after it); *r gets its exit code and
 * its outputs. */
void config_fixture_wait(pid_t pid, int timeout_ms, config_run_t *r);

/* config_fixture_start, then close close_fd (or -1) in the test (the child's end of a link
 * it watches), then config_fixture_wait up to 30 s. Returns r->rc. */
int config_fixture_run(const char *bin, char **argv, int keep_fd, int close_fd, config_run_t *r);

/* A configuration file the binary refuses, and the message that follows "<prog>:
 * <dir>/<file>" in its refusal. */
typedef struct config_refusal {
  const char *conf, *message;
} config_refusal_t;

/* For each of the n cases: write its text as `file` of the fixture's directory, run bin
 * without arguments (config_fixture_run into *r) and check that it exits 2 with exactly
 * "<prog>: <dir>/<file><message>\n" on stderr; fails the test naming the first case that
 * does not. */
void config_fixture_expect_refusals(const char *bin, const char *prog, const char *file,
                                    const config_refusal_t *cases, size_t n, config_run_t *r);

/* Run bin with --config naming a file that does not exist: it must exit 2 with the file's
 * path and "No such file or directory" on stderr (*r gets the run). */
void config_fixture_expect_missing_config(const char *bin, config_run_t *r);

/* A shipped example configuration file (packaging/etc/). */
typedef struct config_example {
  char path[512];        /* $DFNET_SOURCE_DIR/packaging/etc/<name> */
  char text[16384];      /* its text */
  char uncommented[192]; /* "<fixture's directory>/uncommented.conf": the text with every
                          * commented-out setting ("#key = value") uncommented */
} config_example_t;

/* Read the example `name` ("host.conf") into *ex (asserts that $DFNET_SOURCE_DIR is set and
 * the file holds more than 100 bytes); run bin --help (into *r; asserts exit 0) and check
 * that every option it lists under "Options:" as "  --name", except the names in skip
 * (NULL-terminated), has a commented-out line "#name = ..." in the file (fails the test
 * naming the first one missing); write ex->uncommented (asserts). Returns how many options
 * were checked. */
size_t config_fixture_load_example(const char *bin, const char *name, const char *const *skip,
                                   config_example_t *ex, config_run_t *r);

#endif
