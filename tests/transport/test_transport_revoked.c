/* The transport's revocation hook (lib/transport.h dfnet_is_revoked_fn; issue 23 item 4), on
 * real TLS websockets on loopback with certificates made at test time (tls_fixture.c):
 *   - a session's info carries the peer certificate's serial, as dfnet_pki_cert_info reads it
 *     from the file, and its not-after;
 *   - a revoked certificate is refused at the handshake: the hook is asked with the serial
 *     and the CN, no session opens on either side, the client's on_connect_error gets
 *     UNAUTHENTICATED with the owner's reason, and the server logs the refusal; a resumed
 *     TLS session is asked the same (the client reconnects with its cached session: the
 *     first reconnect after a full handshake is a resumption, and it is refused too);
 *   - the client keeps trying with its backoff, and is back as soon as the certificate is
 *     no longer revoked (its session then resumed);
 *   - a certificate that is not revoked is not held up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/pki.h"
#include "lib/transport.h"
#include "tls_fixture.h"

static const char *dir;

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static char *path(const char *name) {
  static char bufs[8][512];
  static int i;
  char *b = bufs[i++ % 8];
  return (char *)fixture_path(b, 512, dir, name);
}

/* ---- the server: its hook revokes `revoked_cn` while set -------------------------------- */

typedef struct server {
  dfnet_transport_t *t;
  uint16_t port;
  pthread_mutex_t mu;
  char revoked_cn[64]; /* "" = nothing revoked */
  atomic_uint asked, refused, opened, resumed;
  char serial_hex[64], asked_serial[64]; /* the last session's, the last asked */
  int64_t not_after;
  atomic_ullong last_session;
} server_t;

static bool s_is_revoked(void *user, const uint8_t *serial, size_t len, const char *cn, char *why,
                         size_t why_cap) {
  server_t *s = user;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < len && 2 * i + 2 < sizeof s->asked_serial; i++)
    snprintf(s->asked_serial + 2 * i, 3, "%02x", serial[i]);
  bool revoked = s->revoked_cn[0] != '\0' && strcmp(cn, s->revoked_cn) == 0;
  pthread_mutex_unlock(&s->mu);
  s->asked++;
  if (revoked) {
    s->refused++;
    snprintf(why, why_cap, "certificate %s of %s was revoked: test", s->asked_serial, cn);
  }
  return revoked;
}

static void s_open(void *user, const dfnet_session_info_t *info) {
  server_t *s = user;
  pthread_mutex_lock(&s->mu);
  snprintf(s->serial_hex, sizeof s->serial_hex, "%s", info->serial_hex);
  s->not_after = info->not_after;
  pthread_mutex_unlock(&s->mu);
  s->resumed += info->tls_resumed;
  s->last_session = info->id;
  s->opened++;
}

static void server_start(server_t *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  assert_int_equal(dfnet_transport_create(&s->t), DFNET_STATUS_OK);
  dfnet_server_config_t cfg = {.bind_address = "127.0.0.1",
                               .cert_file = path("manager.crt"),
                               .key_file = path("manager.key"),
                               .ca_file = path("ca.crt"),
                               .callbacks = {.on_session_open = s_open},
                               .is_revoked = s_is_revoked,
                               .user = s};
  assert_int_equal(dfnet_transport_listen(s->t, &cfg, NULL, &s->port), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(s->t), DFNET_STATUS_OK);
}

static void server_revoke(server_t *s, const char *cn) {
  pthread_mutex_lock(&s->mu);
  snprintf(s->revoked_cn, sizeof s->revoked_cn, "%s", cn);
  pthread_mutex_unlock(&s->mu);
}

static void server_stop(server_t *s) {
  dfnet_transport_destroy(s->t);
  pthread_mutex_destroy(&s->mu);
}

/* ---- the client ------------------------------------------------------------------------ */

typedef struct client {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t ep;
  pthread_mutex_t mu;
  atomic_uint opened, errors;
  dfnet_status_t last_code;
  char last_error[512];
} client_t;

static void c_open(void *user, const dfnet_session_info_t *info) {
  client_t *c = user;
  (void)info;
  c->opened++;
}

static void c_error(void *user, dfnet_status_t code, const char *message, bool retry_helps) {
  client_t *c = user;
  (void)retry_helps;
  pthread_mutex_lock(&c->mu);
  c->last_code = code;
  snprintf(c->last_error, sizeof c->last_error, "%s", message);
  pthread_mutex_unlock(&c->mu);
  c->errors++;
}

static void client_start(client_t *c, uint16_t port, const char *who) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  char url[64], crt[64], key[64];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", port);
  snprintf(crt, sizeof crt, "%s.crt", who);
  snprintf(key, sizeof key, "%s.key", who);
  dfnet_client_config_t cfg = {
      .url = url,
      .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
      .cert_file = path(crt),
      .key_file = path(key),
      .ca_file = path("ca.crt"),
      .backoff_initial_ms = 20,
      .backoff_max_ms = 100,
      .callbacks = {.on_session_open = c_open, .on_connect_error = c_error},
      .user = c,
  };
  assert_int_equal(dfnet_transport_create(&c->t), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_connect(c->t, &cfg, &c->ep), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(c->t), DFNET_STATUS_OK);
}

static void client_stop(client_t *c) {
  dfnet_transport_destroy(c->t);
  pthread_mutex_destroy(&c->mu);
}

static bool wait_until(atomic_uint *v, unsigned n) {
  for (int i = 0; i < 500 && *v < n; i++)
    sleep_ms(10);
  return *v >= n;
}

/* The serial of a certificate file as lib/pki reads it. */
static void file_serial(const char *name, char *out, size_t cap, time_t *not_after) {
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_load(path(name), &cert), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_info(cert, &info), DFNET_STATUS_OK);
  snprintf(out, cap, "%s", info.serial_hex);
  *not_after = info.not_after;
  dfnet_pki_cert_free(cert);
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_session_info_has_serial(void **state) {
  (void)state;
  server_t s;
  client_t c;
  server_start(&s);
  client_start(&c, s.port, "operator");
  assert_true(wait_until(&s.opened, 1));
  char want[64];
  time_t not_after;
  file_serial("operator.crt", want, sizeof want, &not_after);
  pthread_mutex_lock(&s.mu);
  assert_string_equal(s.serial_hex, want);
  assert_string_equal(s.asked_serial, want);
  assert_int_equal(s.not_after, (int64_t)not_after);
  pthread_mutex_unlock(&s.mu);
  assert_int_equal(s.refused, 0);
  assert_int_equal(c.errors, 0);
  client_stop(&c);
  server_stop(&s);
}

static void test_revoked_refused_full_and_resumed(void **state) {
  (void)state;
  server_t s;
  client_t c, other;
  server_start(&s);
  client_start(&c, s.port, "operator");
  assert_true(wait_until(&s.opened, 1));
  /* a reconnect resumes the TLS session while nothing is revoked */
  assert_int_equal(
      dfnet_transport_session_close(s.t, s.last_session, DFNET_STATUS_UNAVAILABLE, "again"),
      DFNET_STATUS_OK);
  assert_true(wait_until(&s.opened, 2));
  assert_int_equal(s.resumed, 1);
  /* revoked: the next reconnect (a resumption) is refused, and every one after it */
  server_revoke(&s, "bob");
  unsigned opened = s.opened;
  assert_int_equal(
      dfnet_transport_session_close(s.t, s.last_session, DFNET_STATUS_UNAUTHENTICATED, "revoked"),
      DFNET_STATUS_OK);
  assert_true(wait_until(&c.errors, 3)); /* it keeps trying, with its backoff */
  assert_true(s.refused >= 3);
  assert_int_equal(s.opened, opened);
  pthread_mutex_lock(&c.mu);
  assert_int_equal(c.last_code, DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(c.last_error, "of bob was revoked: test"));
  pthread_mutex_unlock(&c.mu);
  /* another certificate is not held up */
  client_start(&other, s.port, "viewer");
  assert_true(wait_until(&other.opened, 1));
  assert_int_equal(other.errors, 0);
  /* no longer revoked: back at its next attempt */
  server_revoke(&s, "");
  assert_true(wait_until(&c.opened, 3));
  client_stop(&other);
  client_stop(&c);
  server_stop(&s);
}

static void test_refused_on_a_fresh_handshake(void **state) {
  (void)state;
  server_t s;
  client_t c;
  server_start(&s);
  server_revoke(&s, "alice");
  client_start(&c, s.port, "viewer");
  assert_true(wait_until(&c.errors, 1));
  assert_int_equal(c.opened, 0);
  assert_int_equal(s.opened, 0);
  pthread_mutex_lock(&c.mu);
  assert_int_equal(c.last_code, DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(c.last_error, "of alice was revoked: test"));
  pthread_mutex_unlock(&c.mu);
  client_stop(&c);
  server_stop(&s);
}

int main(void) {
  dir = fixture_cert_dir();
  if (dir == NULL)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_info_has_serial),
      cmocka_unit_test(test_revoked_refused_full_and_resumed),
      cmocka_unit_test(test_refused_on_a_fresh_handshake),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    rc = 1;
  return rc;
}
