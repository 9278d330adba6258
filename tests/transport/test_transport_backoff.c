/* A client endpoint's reconnect backoff with full jitter (issue 23 item 5;
 * lib/transport_backoff.c): a client aimed at a loopback port where nothing listens fails
 * fast, many times, with a short base and cap. The times between its attempts (taken in its
 * on_connect_error) are spread (not all alike, some well under the window, some near it)
 * and stay under the cap plus the cost of an attempt. No interval is asserted precisely.
 * A server that shuts down closes its sessions as going away (1001): its client then retries
 * within DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS while nothing listens, though its own window
 * (base 500 ms, x2, cap 30 s) would have grown to seconds (regression: a fleet waited up to
 * 4 s after a restarted manager listened again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/transport.h"
#include "tls_fixture.h"

#define ATTEMPTS 60
#define BASE_MS 2
#define CAP_MS 40
#define SLACK_MS 200 /* an attempt's own cost on a loaded 2-CPU machine, generously */

static const char *dir;

typedef struct rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned n;
  double at_ms[ATTEMPTS];
} rec_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_error(void *user, dfnet_status_t code, const char *message, bool retry_helps) {
  rec_t *r = user;
  (void)code;
  (void)message;
  (void)retry_helps;
  pthread_mutex_lock(&r->mu);
  if (r->n < ATTEMPTS)
    r->at_ms[r->n++] = now_ms();
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* A loopback port nothing listens on (bound, never listened: connections are refused). */
static int reserve_port(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void test_full_jitter_spread_under_cap(void **state) {
  (void)state;
  char url[64], crt[512], key[512], ca[512];
  uint16_t port;
  int fd = reserve_port(&port);
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", port);
  rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  dfnet_client_config_t cfg = {.url = url,
                               .subprotocol = DFNET_SUBPROTOCOL_HOST,
                               .cert_file = fixture_path(crt, sizeof crt, dir, "host.crt"),
                               .key_file = fixture_path(key, sizeof key, dir, "host.key"),
                               .ca_file = fixture_path(ca, sizeof ca, dir, "ca.crt"),
                               .backoff_initial_ms = BASE_MS,
                               .backoff_max_ms = CAP_MS,
                               .callbacks = {.on_connect_error = on_error},
                               .user = &r};
  dfnet_transport_t *t;
  assert_int_equal(dfnet_transport_create(&t), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_connect(t, &cfg, NULL), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(t), DFNET_STATUS_OK);
  pthread_mutex_lock(&r.mu);
  double deadline = now_ms() + 30000;
  while (r.n < ATTEMPTS && now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r.cv, &r.mu, &ts);
  }
  unsigned n = r.n;
  pthread_mutex_unlock(&r.mu);
  dfnet_transport_destroy(t);
  close(fd);
  assert_int_equal(n, ATTEMPTS);

  /* From the 6th retry on, the window is the cap (2 ms x 2^5 = 64 > 40). */
  double lo = 1e9, hi = 0, sum = 0;
  unsigned distinct = 0, below_quarter = 0, above_half = 0, capped = 0;
  for (unsigned i = 1; i < n; i++) {
    double d = r.at_ms[i] - r.at_ms[i - 1];
    assert_true(d < CAP_MS + SLACK_MS); /* never past the cap (and an attempt's cost) */
    if (i > 1 && (int)(d * 10) != (int)((r.at_ms[i - 1] - r.at_ms[i - 2]) * 10))
      distinct++;
    if (i < 7)
      continue;
    capped++;
    sum += d;
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
    below_quarter += d < CAP_MS / 4.0;
    above_half += d > CAP_MS / 2.0;
  }
  fprintf(stderr, "# %u capped intervals: min %.1f ms, mean %.1f ms, max %.1f ms (cap %d)\n",
          capped, lo, sum / capped, hi, CAP_MS);
  assert_true(distinct > n / 2); /* not all alike */
  /* uniform over [0, cap): P(none of 53 under a quarter) = 0.75^53 < 1e-6 */
  assert_true(below_quarter > 0);
  assert_true(above_half > 0);
  assert_true(hi - lo > CAP_MS / 4.0);
}

static void on_open(void *user, const dfnet_session_info_t *info) {
  (void)info;
  rec_t *r = user;
  pthread_mutex_lock(&r->mu);
  r->n = 0; /* attempts are counted from the session on */
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void test_server_going_away_keeps_window_short(void **state) {
  (void)state;
  char url[64], crt[512], key[512], ca[512], mcrt[512], mkey[512];
  dfnet_transport_t *srv;
  uint16_t port;
  assert_int_equal(dfnet_transport_create(&srv), DFNET_STATUS_OK);
  dfnet_server_config_t sc = {.bind_address = "127.0.0.1",
                              .cert_file = fixture_path(mcrt, sizeof mcrt, dir, "manager.crt"),
                              .key_file = fixture_path(mkey, sizeof mkey, dir, "manager.key"),
                              .ca_file = fixture_path(ca, sizeof ca, dir, "ca.crt")};
  assert_int_equal(dfnet_transport_listen(srv, &sc, NULL, &port), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(srv), DFNET_STATUS_OK);
  snprintf(url, sizeof url, "wss://localhost:%u/", port);
  rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .n = 1000};
  dfnet_client_config_t cfg = {
      .url = url,
      .subprotocol = DFNET_SUBPROTOCOL_HOST,
      .cert_file = fixture_path(crt, sizeof crt, dir, "host.crt"),
      .key_file = fixture_path(key, sizeof key, dir, "host.key"),
      .ca_file = ca,
      .backoff_initial_ms = 500,
      .backoff_multiplier = 2.0,
      .backoff_max_ms = 30000,
      .callbacks = {.on_session_open = on_open, .on_connect_error = on_error},
      .user = &r};
  dfnet_transport_t *t;
  assert_int_equal(dfnet_transport_create(&t), DFNET_STATUS_OK);
  dfnet_endpoint_id_t ep;
  assert_int_equal(dfnet_transport_connect(t, &cfg, &ep), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(t), DFNET_STATUS_OK);
  dfnet_session_id_t sid;
  assert_int_equal(dfnet_transport_wait_session(t, ep, 10000, &sid), DFNET_STATUS_OK);
  double gone_at = now_ms();
  dfnet_transport_destroy(srv); /* closes its sessions cleanly: 1001, going away */
  enum { WANT = 8 };
  pthread_mutex_lock(&r.mu);
  double deadline = now_ms() + 30000;
  while (r.n < WANT && now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&r.cv, &r.mu, &ts);
  }
  unsigned n = r.n;
  pthread_mutex_unlock(&r.mu);
  dfnet_transport_destroy(t);
  assert_true(n >= WANT);
  /* 500 ms x 2^n would reach 8 s by the 5th retry; capped at 1 s they all come within it */
  double prev = gone_at, longest = 0;
  for (unsigned i = 0; i < WANT; i++) {
    double d = r.at_ms[i] - prev;
    longest = d > longest ? d : longest;
    prev = r.at_ms[i];
  }
  fprintf(stderr, "# %d retries after the server went away: the longest wait %.0f ms\n", WANT,
          longest);
  assert_true(longest < DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS + SLACK_MS);
}

int main(void) {
  dir = fixture_cert_dir();
  if (dir == NULL)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_jitter_spread_under_cap),
      cmocka_unit_test(test_server_going_away_keeps_window_short),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
