/* dfnet-manager restarts without a storm (issue 23 item 5): the real manager process, a host
 * session on the real transport with a certificate issued from the manager's state directory.
 *   test_host_resumes_across_restart: the manager writes <state>/tls-ticket.keys (0600); the
 *     host's first session is a full handshake; the manager is stopped (SIGTERM) and started
 *     again on the same port and state directory: the host's reconnect resumes from its
 *     ticket (its session info and the manager's "session open" line say resumed), the key
 *     file is the same; started with --no-tls-tickets, the host's reconnect is a full
 *     handshake.
 * The manager is stopped in the teardown (after a failed assertion too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/transport.h"
#include "testhost/testhost.h"

typedef struct fixture {
  char root[256], drivers[300], state[300];
  th_manager_t mgr;
  dfnet_transport_t *t;
  atomic_uint opened, resumed;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-mgr-tickets-%d", (int)getpid());
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  if (th_fresh_dir(f->drivers) != 0 ||
      th_manager_start(&f->mgr, f->state, f->drivers, "--log-level", "info", NULL) != 0) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  dfnet_transport_destroy(f->t);
  int rc = f->mgr.pid > 0 ? th_manager_stop(&f->mgr) : 0;
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", f->root, f->state);
  if (getenv("DFNET_KEEP") == NULL && system(cmd) != 0)
    rc = -1;
  free(f);
  return rc == 0 ? 0 : -1;
}

static void on_open(void *user, const dfnet_session_info_t *info) {
  fixture_t *f = user;
  f->resumed += info->tls_resumed;
  f->opened++;
}

static bool wait_until(atomic_uint *v, unsigned n) {
  for (int i = 0; i < 1000 && *v < n; i++)
    usleep(10000);
  return *v >= n;
}

/* Restart the manager on its port and state directory, with extra (NULL or an option). */
static void restart(fixture_t *f, const char *extra) {
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)f->mgr.port);
  assert_int_equal(th_manager_stop(&f->mgr), 0);
  assert_int_equal(th_manager_start(&f->mgr, f->state, f->drivers, "--log-level", "info",
                                    "--listen", listen, extra, NULL),
                   0);
}

/* How many lines of the manager's log contain `what`. */
static int log_count(const fixture_t *f, const char *what) {
  FILE *lf = fopen(f->mgr.log_path, "r");
  char line[1024];
  int n = 0;
  while (lf != NULL && fgets(line, sizeof line, lf) != NULL)
    n += strstr(line, what) != NULL;
  if (lf != NULL)
    fclose(lf);
  return n;
}

static void test_host_resumes_across_restart(void **state) {
  fixture_t *f = *state;
  char keys[400], dir[700], url[64], crt[800], key[800], ca[800];
  snprintf(keys, sizeof keys, "%s/tls-ticket.keys", f->state);
  struct stat st;
  assert_int_equal(stat(keys, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  time_t keys_mtime = st.st_mtime;

  assert_int_equal(th_issue(&f->mgr, "lab-t", "host", dir, sizeof dir), 0);
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)f->mgr.port);
  snprintf(crt, sizeof crt, "%s/lab-t.crt", dir);
  snprintf(key, sizeof key, "%s/lab-t.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  dfnet_client_config_t cc = {.url = url,
                              .subprotocol = DFNET_SUBPROTOCOL_HOST,
                              .cert_file = crt,
                              .key_file = key,
                              .ca_file = ca,
                              .backoff_initial_ms = 50,
                              .backoff_max_ms = 200,
                              .callbacks = {.on_session_open = on_open},
                              .user = f};
  assert_int_equal(dfnet_transport_create(&f->t), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_connect(f->t, &cc, NULL), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(f->t), DFNET_STATUS_OK);
  assert_true(wait_until(&f->opened, 1));
  assert_int_equal(f->resumed, 0);

  restart(f, NULL);
  assert_true(wait_until(&f->opened, 2));
  assert_int_equal(f->resumed, 1);
  /* one log for the three managers: each one's first session is its "session 1" */
  for (int i = 0; i < 200 && log_count(f, "lab-t: session 1 open") < 2; i++)
    usleep(10000);
  assert_int_equal(log_count(f, "lab-t: session 1 open"), 2);
  assert_int_equal(log_count(f, "(TLS session resumed)"), 1);
  assert_int_equal(stat(keys, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_mtime, keys_mtime); /* loaded, not made again */

  restart(f, "--no-tls-tickets");
  assert_true(wait_until(&f->opened, 3));
  assert_int_equal(f->resumed, 1); /* a full handshake this time */
  for (int i = 0; i < 200 && log_count(f, "lab-t: session 1 open") < 3; i++)
    usleep(10000);
  assert_int_equal(log_count(f, "lab-t: session 1 open"), 3);
  assert_int_equal(log_count(f, "(TLS session resumed)"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_host_resumes_across_restart, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
