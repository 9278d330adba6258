/* TLS session tickets (RFC 5077) across a restart of the server (issue 23 item 5;
 * lib/transport_tickets.c, lws patch 0006), on real TLS websockets on loopback with
 * certificates made at test time (tls_fixture.c). The server is a transport with a listener,
 * as the manager's; "restart" destroys it and makes a new one on the same port with the same
 * key file, so that it remembers no session: only a ticket can resume.
 *   - a client resumes with its ticket after the restart (both sides say resumed);
 *   - the key file is made 0600, survives the restart unchanged;
 *   - a rotated key still opens the tickets of the previous one (after a restart too);
 *   - a revoked certificate is refused on a ticket resumption (the same ticket that resumed
 *     before), and so is an expired one;
 *   - without a key file (tickets off), the reconnect after a restart is a full handshake.
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
#include <sys/stat.h>
#include <time.h>

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

/* ---- the server ------------------------------------------------------------------------ */

typedef struct server {
  dfnet_transport_t *t;
  uint16_t port;
  const char *tickets; /* key file, or NULL */
  uint32_t rotate_secs;
  atomic_bool revoke_all;
  atomic_uint opened, resumed, refused;
  atomic_ullong last_session;
} server_t;

static bool s_is_revoked(void *user, const uint8_t *serial, size_t len, const char *cn, char *why,
                         size_t why_cap) {
  server_t *s = user;
  (void)serial;
  (void)len;
  if (!s->revoke_all)
    return false;
  s->refused++;
  snprintf(why, why_cap, "certificate of %s was revoked: test", cn);
  return true;
}

static void s_open(void *user, const dfnet_session_info_t *info) {
  server_t *s = user;
  s->resumed += info->tls_resumed;
  s->last_session = info->id;
  s->opened++;
}

/* (Re)start s on s->port (0 the first time: any free port). Counters start over. */
static void server_start(server_t *s) {
  s->opened = s->resumed = s->refused = 0;
  assert_int_equal(dfnet_transport_create(&s->t), DFNET_STATUS_OK);
  dfnet_server_config_t cfg = {.bind_address = "127.0.0.1",
                               .port = s->port,
                               .cert_file = path("manager.crt"),
                               .key_file = path("manager.key"),
                               .ca_file = path("ca.crt"),
                               .callbacks = {.on_session_open = s_open},
                               .is_revoked = s_is_revoked,
                               .user = s,
                               .ticket_key_file = s->tickets,
                               .ticket_rotate_secs = s->rotate_secs};
  assert_int_equal(dfnet_transport_listen(s->t, &cfg, NULL, &s->port), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(s->t), DFNET_STATUS_OK);
}

static void server_stop(server_t *s) {
  dfnet_transport_destroy(s->t);
  s->t = NULL;
}

static void server_restart(server_t *s) {
  server_stop(s);
  server_start(s);
}

/* ---- the client ------------------------------------------------------------------------ */

typedef struct client {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t ep;
  pthread_mutex_t mu;
  atomic_uint opened, resumed, errors;
  dfnet_status_t last_code;
  char last_error[512];
} client_t;

static void c_open(void *user, const dfnet_session_info_t *info) {
  client_t *c = user;
  c->resumed += info->tls_resumed;
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

static void client_start(client_t *c, uint16_t port, const char *crt, const char *key) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  char url[64];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", port);
  dfnet_client_config_t cfg = {
      .url = url,
      .subprotocol = DFNET_SUBPROTOCOL_HOST,
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

/* Wait up to ms for *v to reach n. */
static bool wait_until_ms(atomic_uint *v, unsigned n, unsigned ms) {
  for (unsigned i = 0; i < ms / 10 && *v < n; i++)
    sleep_ms(10);
  return *v >= n;
}

static bool wait_until(atomic_uint *v, unsigned n) { return wait_until_ms(v, n, 5000); }

/* The key file's bytes (at most cap), their count; -1 when it cannot be read. */
static long file_bytes(const char *p, uint8_t *buf, size_t cap) {
  FILE *f = fopen(p, "rb");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return (long)n;
}

/* A fresh key file name for each test (kept: path()'s buffers are reused). */
static const char *new_key_file(const char *name) {
  static char names[8][512];
  static int i;
  char *p = names[i++ % 8];
  fixture_path(p, 512, dir, name);
  remove(p);
  return p;
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_resume_after_restart_and_key_file(void **state) {
  (void)state;
  server_t s = {.tickets = new_key_file("tickets-a.keys")};
  client_t c;
  server_start(&s);
  struct stat st;
  assert_int_equal(stat(s.tickets, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  uint8_t before[128], after[128];
  long n = file_bytes(s.tickets, before, sizeof before);
  assert_int_equal(n, 97);

  client_start(&c, s.port, "host.crt", "host.key");
  assert_true(wait_until(&c.opened, 1));
  assert_int_equal(c.resumed, 0); /* a full handshake: the ticket comes with it */
  server_restart(&s);             /* no session is remembered: only the ticket can resume */
  assert_true(wait_until(&c.opened, 2));
  assert_true(wait_until(&s.opened, 1));
  assert_int_equal(c.resumed, 1);
  assert_int_equal(s.resumed, 1);
  dfnet_session_info_t info;
  char buf[512];
  assert_int_equal(dfnet_transport_session_info(s.t, s.last_session, &info, buf, sizeof buf),
                   DFNET_STATUS_OK);
  assert_true(info.tls_resumed);
  assert_string_equal(info.peer_name, "lab-a"); /* checked from the ticket's certificate */
  assert_string_equal(info.role_name, "host");

  /* the file survived the restart as it was, still 0600 */
  assert_int_equal(file_bytes(s.tickets, after, sizeof after), n);
  assert_memory_equal(before, after, (size_t)n);
  assert_int_equal(stat(s.tickets, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  client_stop(&c);
  server_stop(&s);
}

static void test_rotated_key_accepts_previous(void **state) {
  (void)state;
  server_t s = {.tickets = new_key_file("tickets-b.keys"), .rotate_secs = 4};
  client_t a, b;
  server_start(&s); /* the keys are made now: the active one is due at +4 s */
  uint64_t t0 = dfnet_transport_now_ms();
  uint8_t before[128], after[128];
  long n = file_bytes(s.tickets, before, sizeof before);
  sleep_ms(1200);
  client_start(&a, s.port, "host.crt", "host.key"); /* its ticket: the first key's */
  assert_true(wait_until(&a.opened, 1));
  uint64_t now = dfnet_transport_now_ms();
  sleep_ms((unsigned)(t0 + 4300 > now ? t0 + 4300 - now : 0));
  /* a new peer's full handshake makes a ticket: the key is due, rotated first */
  client_start(&b, s.port, "viewer.crt", "viewer.key");
  /* viewer may not use the host subprotocol: no session, but the TLS handshake completed */
  assert_true(wait_until(&b.errors, 1));
  client_stop(&b);
  assert_int_equal(file_bytes(s.tickets, after, sizeof after), n);
  assert_memory_not_equal(before, after, (size_t)n); /* rotated: a new key is written */
  assert_int_not_equal(before[8], after[8]);         /* and the other slot is active */
  /* the slot that was active is kept as the previous key */
  unsigned old = before[8];
  assert_memory_equal(before + 9 + 44 * old, after + 9 + 44 * old, 44);

  server_restart(&s); /* loads the rotated file: the first key is the previous one now */
  assert_true(wait_until(&a.opened, 2));
  assert_int_equal(a.resumed, 1);
  assert_int_equal(s.resumed, 1);
  client_stop(&a);
  server_stop(&s);
}

static void test_revoked_refused_on_ticket_resumption(void **state) {
  (void)state;
  server_t s = {.tickets = new_key_file("tickets-c.keys")};
  client_t c;
  server_start(&s);
  client_start(&c, s.port, "host.crt", "host.key");
  assert_true(wait_until(&c.opened, 1));
  server_restart(&s);
  assert_true(wait_until(&c.opened, 2));
  assert_int_equal(c.resumed, 1); /* the ticket works */
  /* revoked: the next restart's resumption with that very ticket is refused */
  s.revoke_all = true;
  server_stop(&s);
  unsigned errors = c.errors;
  server_start(&s); /* revoke_all stays set */
  assert_true(wait_until(&c.errors, errors + 2));
  assert_int_equal(s.opened, 0);
  assert_true(s.refused >= 1);
  pthread_mutex_lock(&c.mu);
  assert_int_equal(c.last_code, DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(c.last_error, "was revoked: test"));
  pthread_mutex_unlock(&c.mu);
  client_stop(&c);
  server_stop(&s);
}

static void test_expired_refused_on_ticket_resumption(void **state) {
  (void)state;
  server_t s = {.tickets = new_key_file("tickets-d.keys")};
  client_t c;
  assert_int_equal(fixture_make_leaf(dir, "short", "CN=brief,OU=host,O=dfnet", time(NULL) + 3), 0);
  server_start(&s);
  client_start(&c, s.port, "short.crt", "short.key");
  assert_true(wait_until(&c.opened, 1));
  server_restart(&s);
  assert_true(wait_until(&c.opened, 2));
  assert_int_equal(c.resumed, 1);
  /* the certificate runs out: the session is closed and the ticket does not bring it back */
  unsigned errors = c.errors;
  assert_true(wait_until_ms(&c.errors, errors + 2, 12000));
  assert_int_equal(c.opened, 2);
  pthread_mutex_lock(&c.mu);
  assert_int_equal(c.last_code, DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(c.last_error, "expired"));
  pthread_mutex_unlock(&c.mu);
  client_stop(&c);
  server_stop(&s);
}

static void test_tickets_off_full_handshake(void **state) {
  (void)state;
  server_t s = {.tickets = NULL};
  client_t c;
  server_start(&s);
  client_start(&c, s.port, "host.crt", "host.key");
  assert_true(wait_until(&c.opened, 1));
  server_restart(&s);
  assert_true(wait_until(&c.opened, 2));
  assert_int_equal(c.resumed, 0);
  assert_int_equal(s.resumed, 0);
  /* a client holding a ticket (one it resumed with, too) meets a server that takes none: a
   * full handshake */
  s.tickets = new_key_file("tickets-e.keys");
  server_restart(&s);
  assert_true(wait_until(&c.opened, 3));
  server_restart(&s);
  assert_true(wait_until(&c.opened, 4));
  assert_int_equal(c.resumed, 1);
  s.tickets = NULL;
  server_restart(&s);
  assert_true(wait_until(&c.opened, 5));
  assert_int_equal(c.resumed, 1);
  assert_int_equal(s.resumed, 0);
  client_stop(&c);
  server_stop(&s);
}

int main(void) {
  dir = fixture_cert_dir();
  if (dir == NULL)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resume_after_restart_and_key_file),
      cmocka_unit_test(test_rotated_key_accepts_previous),
      cmocka_unit_test(test_revoked_refused_on_ticket_resumption),
      cmocka_unit_test(test_expired_refused_on_ticket_resumption),
      cmocka_unit_test(test_tickets_off_full_handshake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
