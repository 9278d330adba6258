/* The real `dfnet` CLI run as a child process of an integration test (test_child_fork):
 * its exit status, stdout and stderr, with the manager and certificate of a fabric. */
#ifndef DFNET_TESTS_INTEGRATION_CLI_RUN_H
#define DFNET_TESTS_INTEGRATION_CLI_RUN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "fabric.h"

typedef struct cli_run {
  int status; /* exit code; -1 when killed by a signal or not started */
  char out[1 << 20];
  size_t out_len;
  char err[16384];
  size_t err_len;
} cli_run_t;

/* Point the CLI (through DFNET_MANAGER, DFNET_CERT, DFNET_KEY, DFNET_CA, inherited by the
 * children) at f's manager with the certificate issued to `name`. */
void cli_use(const fabric_t *f, const char *name);

/* Run `<build>/clients/dfnet args...` (NULL-terminated), stdin /dev/null, and wait for it
 * (at most 120 s, then it is killed). Fills *r (out and err NUL-terminated). Returns the
 * exit code. With DFNET_TEST_VERBOSE set, a failed run prints its output. */
int cli_run(cli_run_t *r, const fabric_t *f, const char *first, ...);

/* stdout parsed as JSON (the caller deletes it); fails the test when it is not JSON. */
cJSON *cli_json(const cli_run_t *r);

#endif
