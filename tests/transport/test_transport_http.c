/* Plain HTTP requests on the transport's endpoints (lib/transport.h "HTTP requests"; issue 24
 * items 4 and 5), on loopback with real sockets and real TLS (certificates made at test
 * time, tls_fixture.c):
 *   - a plain endpoint: GET answered at once (status, type, extra headers, Content-Length,
 *     the path and the decoded query as the owner saw them), HEAD (headers, no body), a body
 *     larger than one write, keep-alive (two requests on one connection), POST with its
 *     body, a body declared over DFNET_HTTP_BODY_MAX (413, unread), a POST without
 *     Content-Length (411) or with 0, a method not served (405);
 *   - an answer from another thread (on_http returned false), a stream of Server-Sent
 *     Events written from another thread and ended, a stream whose reader goes away
 *     (on_http_gone once, at the next write; later writes NOT_FOUND), a held request whose
 *     reader left (the answer goes nowhere, harmlessly), an id that is not waiting
 *     (NOT_FOUND), a status that is not one (INVALID_ARGUMENT);
 *   - a TLS server endpoint: the peer's certificate reaches the owner as name and role; no
 *     certificate, one of another CA, or a revoked one reach it as nobody;
 *   - a TLS endpoint without on_http still answers 403.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/transport.h"
#include "tls_fixture.h"

static const char *dir;

static char *path(const char *name) {
  static char bufs[8][512];
  static int i;
  char *b = bufs[i++ % 8];
  return (char *)fixture_path(b, 512, dir, name);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- the owner ------------------------------------------------------------------------- */

typedef struct owner {
  dfnet_transport_t *t;
  pthread_mutex_t mu;
  char last_path[256], last_query[256], last_method[8], last_name[64], last_host[128];
  dfnet_v1_Role last_role;
  bool last_had_name;
  size_t last_body_len;
  char last_body[128];
  atomic_ullong held_id; /* the last request answered later */
  atomic_uint gone;      /* on_http_gone calls */
  atomic_ullong gone_id;
} owner_t;

static owner_t owner;

static char *dup_text(const char *s) { return strdup(s); }

static bool on_http(void *user, const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  owner_t *o = user;
  pthread_mutex_lock(&o->mu);
  snprintf(o->last_path, sizeof o->last_path, "%s", req->path);
  snprintf(o->last_query, sizeof o->last_query, "%s", req->query);
  snprintf(o->last_method, sizeof o->last_method, "%s", req->method);
  snprintf(o->last_host, sizeof o->last_host, "%s", req->host);
  o->last_had_name = req->peer_name != NULL;
  snprintf(o->last_name, sizeof o->last_name, "%s", req->peer_name ? req->peer_name : "");
  o->last_role = req->role;
  o->last_body_len = req->body_len;
  snprintf(o->last_body, sizeof o->last_body, "%.*s",
           (int)(req->body_len < 100 ? req->body_len : 100),
           req->body ? (const char *)req->body : "");
  pthread_mutex_unlock(&o->mu);
  if (strcmp(req->path, "/hello") == 0) {
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    resp->headers = "Cache-Control: no-store\r\nX-Test: yes\r\n";
    resp->body = dup_text("hello world\n");
    resp->body_len = 12;
    return true;
  }
  if (strcmp(req->path, "/big") == 0) {
    size_t n = 200000;
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
      b[i] = (char)('a' + i % 26);
    *resp = (dfnet_http_response_t){.status = 200, .body = b, .body_len = n};
    return true;
  }
  if (strcmp(req->path, "/later") == 0 || strcmp(req->path, "/events") == 0) {
    o->held_id = req->id;
    return false;
  }
  if (strcmp(req->path, "/stream-now") == 0) {
    o->held_id = req->id;
    *resp = (dfnet_http_response_t){.status = 200,
                                    .content_type = "text/event-stream",
                                    .stream = true,
                                    .body = dup_text(": hi\n\n"),
                                    .body_len = 6};
    return true;
  }
  if (strcmp(req->path, "/echo") == 0) {
    char *b = malloc(req->body_len + 1);
    memcpy(b, req->body ? (const char *)req->body : "", req->body_len);
    *resp = (dfnet_http_response_t){.status = 201, .body = b, .body_len = req->body_len};
    return true;
  }
  *resp =
      (dfnet_http_response_t){.status = 404, .body = dup_text("no such page\n"), .body_len = 13};
  return true;
}

static void on_http_gone(void *user, dfnet_http_id_t id) {
  owner_t *o = user;
  o->gone_id = id;
  o->gone++;
}

static bool revoke_alice;
static bool is_revoked(void *user, const uint8_t *serial, size_t len, const char *cn, char *why,
                       size_t why_cap) {
  (void)user, (void)serial, (void)len, (void)why, (void)why_cap;
  return revoke_alice && strcmp(cn, "alice") == 0;
}

static uint16_t plain_port, tls_port, tls_plain_port; /* tls_plain: TLS without on_http */

static int setup(void **state) {
  (void)state;
  dir = fixture_cert_dir();
  if (dir == NULL)
    return -1;
  pthread_mutex_init(&owner.mu, NULL);
  if (dfnet_transport_create(&owner.t) != DFNET_STATUS_OK)
    return -1;
  dfnet_http_server_config_t hc = {.bind_address = "127.0.0.1",
                                   .on_http = on_http,
                                   .on_http_gone = on_http_gone,
                                   .user = &owner};
  if (dfnet_transport_listen_http(owner.t, &hc, NULL, &plain_port) != DFNET_STATUS_OK)
    return -1;
  dfnet_server_config_t sc = {.bind_address = "127.0.0.1",
                              .cert_file = path("manager.crt"),
                              .key_file = path("manager.key"),
                              .ca_file = path("ca.crt"),
                              .is_revoked = is_revoked,
                              .on_http = on_http,
                              .on_http_gone = on_http_gone,
                              .user = &owner};
  if (dfnet_transport_listen(owner.t, &sc, NULL, &tls_port) != DFNET_STATUS_OK)
    return -1;
  sc.on_http = NULL;
  sc.on_http_gone = NULL;
  if (dfnet_transport_listen(owner.t, &sc, NULL, &tls_plain_port) != DFNET_STATUS_OK)
    return -1;
  return dfnet_transport_start(owner.t) == DFNET_STATUS_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  dfnet_transport_destroy(owner.t);
  return 0;
}

/* ---- clients: a plain socket, a raw TLS connection ----------------------------------- */

static int plain_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Read one response (headers, then Content-Length bytes, or until EOF without one) into
 * buf. Returns its length, or -1. */
static int read_response(int fd, fixture_tls_t *tls, char *buf, size_t cap) {
  size_t len = 0;
  long want = -1;
  for (;;) {
    char *eoh = strstr(buf, "\r\n\r\n");
    if (eoh != NULL && want < 0) {
      const char *cl = strcasestr(buf, "content-length:");
      want = cl && cl < eoh ? (long)(eoh + 4 - buf) + strtol(cl + 15, NULL, 10) : 0;
      if (cl == NULL || cl > eoh)
        want = 0; /* until EOF */
    }
    if (want > 0 && (long)len >= want)
      return (int)len;
    if (len + 1 >= cap)
      return (int)len;
    int n = tls ? fixture_tls_read(tls, buf + len, cap - 1 - len)
                : (int)read(fd, buf + len, cap - 1 - len);
    if (n <= 0)
      return len > 0 ? (int)len : -1;
    len += (size_t)n;
    buf[len] = '\0';
  }
}

static int plain_exchange(const char *request, char *buf, size_t cap) {
  int fd = plain_connect(plain_port);
  if (fd < 0)
    return -1;
  buf[0] = '\0';
  if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
    close(fd);
    return -1;
  }
  int n = read_response(fd, NULL, buf, cap);
  close(fd);
  return n;
}

static int tls_exchange(uint16_t port, const char *cert, const char *key, const char *request,
                        char *buf, size_t cap) {
  int err = 0;
  fixture_tls_t *c = fixture_tls_connect(port, path("ca.crt"), cert ? path(cert) : NULL,
                                         key ? path(key) : NULL, 3, &err);
  if (c == NULL)
    return -1;
  fixture_tls_set_timeout(c, 5000);
  buf[0] = '\0';
  int n = -1;
  if (fixture_tls_write(c, request, strlen(request)) == 0)
    n = read_response(-1, c, buf, cap);
  fixture_tls_close(c);
  return n;
}

static const char *body_of(const char *resp) {
  const char *e = strstr(resp, "\r\n\r\n");
  return e ? e + 4 : "";
}

/* ---- plain endpoint ---------------------------------------------------------------------- */

static void test_get_answered_at_once(void **state) {
  (void)state;
  char buf[4096];
  assert_true(plain_exchange("GET /hello?a=1&b=x%20y HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n", buf,
                             sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_non_null(strcasestr(buf, "content-type: text/plain; version=0.0.4"));
  assert_non_null(strcasestr(buf, "cache-control: no-store"));
  assert_non_null(strcasestr(buf, "x-test: yes"));
  assert_non_null(strcasestr(buf, "content-length: 12"));
  assert_string_equal(body_of(buf), "hello world\n");
  assert_string_equal(owner.last_method, "GET");
  assert_string_equal(owner.last_path, "/hello");
  assert_string_equal(owner.last_query, "a=1&b=x y");
  assert_string_equal(owner.last_host, "127.0.0.1:9");
  assert_false(owner.last_had_name); /* plain: nobody */
  assert_int_equal(owner.last_role, dfnet_v1_Role_ROLE_UNSPECIFIED);

  assert_true(plain_exchange("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 404"));
  assert_string_equal(body_of(buf), "no such page\n");
}

static void test_head_has_no_body(void **state) {
  (void)state;
  char buf[4096];
  int fd = plain_connect(plain_port);
  assert_true(fd >= 0);
  const char *req = "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  sleep_ms(300);
  ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  close(fd);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_string_equal(body_of(buf), "");
  assert_string_equal(owner.last_method, "HEAD");
}

static void test_big_body_and_keep_alive(void **state) {
  (void)state;
  static char buf[300000];
  int fd = plain_connect(plain_port);
  assert_true(fd >= 0);
  for (int round = 0; round < 2; round++) { /* two requests, one connection */
    const char *req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    buf[0] = '\0';
    int n = read_response(fd, NULL, buf, sizeof buf);
    assert_true(n > 200000);
    const char *b = body_of(buf);
    assert_int_equal(strlen(b), 200000);
    for (size_t i = 0; i < 200000; i += 9973)
      assert_int_equal(b[i], 'a' + i % 26);
  }
  close(fd);
}

static void test_post_body(void **state) {
  (void)state;
  char buf[4096];
  assert_true(
      plain_exchange("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello there", buf,
                     sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 201"));
  assert_string_equal(body_of(buf), "hello there");
  assert_string_equal(owner.last_method, "POST");
  assert_int_equal(owner.last_body_len, 11);
}

static void test_post_too_large(void **state) {
  (void)state;
  /* declared over DFNET_HTTP_BODY_MAX: refused before the body is read */
  char req[200], buf[4096] = "";
  snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
           DFNET_HTTP_BODY_MAX + 100);
  int fd = plain_connect(plain_port);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  assert_true(read_response(fd, NULL, buf, sizeof buf) > 0);
  close(fd);
  assert_non_null(strstr(buf, "HTTP/1.1 413"));
  assert_non_null(strstr(body_of(buf), "larger than 65536 bytes"));
}

/* Regression: a POST without Content-Length (no body, RFC 7230 3.3.3) was never answered:
 * lws waited for a body. Now 411, and a POST with an explicit 0 goes to the owner. */
static void test_post_without_length(void **state) {
  (void)state;
  char buf[4096];
  assert_true(plain_exchange("POST /echo HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 411"));
  assert_true(plain_exchange("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", buf,
                             sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 201"));
  assert_int_equal(owner.last_body_len, 0);
}

static void test_method_not_served(void **state) {
  (void)state;
  char buf[4096];
  assert_true(plain_exchange("PUT /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", buf,
                             sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 405"));
}

/* ---- answers later, streams --------------------------------------------------------------- */

static void *answer_later(void *arg) {
  (void)arg;
  while (owner.held_id == 0)
    sleep_ms(5);
  sleep_ms(100);
  dfnet_http_response_t r = {.status = 200,
                             .content_type = "application/json",
                             .body = dup_text("{\"late\":true}"),
                             .body_len = 13};
  assert_int_equal(dfnet_transport_http_respond(owner.t, owner.held_id, &r), DFNET_STATUS_OK);
  /* answered: a second answer finds nothing waiting */
  r.body = dup_text("x");
  r.body_len = 1;
  assert_int_equal(dfnet_transport_http_respond(owner.t, owner.held_id, &r),
                   DFNET_STATUS_NOT_FOUND);
  return NULL;
}

static void test_answer_from_another_thread(void **state) {
  (void)state;
  owner.held_id = 0;
  pthread_t th;
  pthread_create(&th, NULL, answer_later, NULL);
  char buf[4096];
  int n = plain_exchange("GET /later HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf);
  pthread_join(th, NULL);
  assert_true(n > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_non_null(strcasestr(buf, "content-type: application/json"));
  assert_string_equal(body_of(buf), "{\"late\":true}");
  unsigned gone = owner.gone;
  sleep_ms(100);
  assert_int_equal(owner.gone, gone); /* answered: never "gone" */
}

static void *stream_events(void *arg) {
  (void)arg;
  while (owner.held_id == 0)
    sleep_ms(5);
  dfnet_http_id_t id = owner.held_id;
  for (int i = 0; i < 5; i++) {
    char *ev;
    int n = asprintf(&ev, "data: event %d\n\n", i);
    assert_int_equal(dfnet_transport_http_stream_write(owner.t, id, ev, (size_t)n),
                     DFNET_STATUS_OK);
    sleep_ms(20);
  }
  assert_int_equal(dfnet_transport_http_end(owner.t, id), DFNET_STATUS_OK);
  return NULL;
}

static void test_stream_written_then_ended(void **state) {
  (void)state;
  owner.held_id = 0;
  pthread_t th;
  pthread_create(&th, NULL, stream_events, NULL);
  char buf[8192];
  int n = plain_exchange("GET /stream-now HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf);
  pthread_join(th, NULL);
  assert_true(n > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_non_null(strcasestr(buf, "content-type: text/event-stream"));
  assert_null(strcasestr(buf, "content-length"));
  assert_string_equal(body_of(buf),
                      ": hi\n\ndata: event 0\n\ndata: event 1\n\ndata: event 2\n\n"
                      "data: event 3\n\ndata: event 4\n\n");
}

/* lws does not read a connection while it answers on it: the reader's going is seen at the
 * next write (lib/transport.h on_http_gone) */
static void test_stream_reader_gone(void **state) {
  (void)state;
  owner.held_id = 0;
  unsigned gone = owner.gone;
  int fd = plain_connect(plain_port);
  assert_true(fd >= 0);
  const char *req = "GET /stream-now HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  char buf[1024];
  assert_true(read(fd, buf, sizeof buf) > 0); /* the headers and ": hi" */
  dfnet_http_id_t id = owner.held_id;
  assert_true(id != 0);
  close(fd);
  dfnet_status_t st = DFNET_STATUS_OK;
  for (int i = 0; i < 200 && (owner.gone == gone || st == DFNET_STATUS_OK); i++) {
    st = dfnet_transport_http_stream_write(owner.t, id, dup_text(": ping\n\n"), 8);
    sleep_ms(10);
  }
  assert_int_equal(owner.gone, gone + 1);
  assert_int_equal(owner.gone_id, id);
  assert_int_equal(st, DFNET_STATUS_NOT_FOUND);
  assert_int_equal(dfnet_transport_http_end(owner.t, id), DFNET_STATUS_NOT_FOUND);
  sleep_ms(100);
  assert_int_equal(owner.gone, gone + 1); /* once */
}

/* A held request whose reader left: the answer goes nowhere, harmlessly; bad calls. */
static void test_held_request_reader_left(void **state) {
  (void)state;
  owner.held_id = 0;
  unsigned gone = owner.gone;
  int fd = plain_connect(plain_port);
  const char *req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  for (int i = 0; i < 200 && owner.held_id == 0; i++)
    sleep_ms(10);
  dfnet_http_id_t id = owner.held_id;
  assert_true(id != 0);
  close(fd);
  sleep_ms(50);
  dfnet_http_response_t r = {.status = 200, .body = dup_text("x"), .body_len = 1};
  assert_int_equal(dfnet_transport_http_respond(owner.t, id, &r), DFNET_STATUS_OK);
  sleep_ms(100);
  assert_int_equal(owner.gone, gone); /* answered: nothing for the owner to stop */
  r.body = dup_text("y");
  assert_int_equal(dfnet_transport_http_respond(owner.t, id, &r), DFNET_STATUS_NOT_FOUND);
  r.body = NULL;
  r.body_len = 0;
  assert_int_equal(dfnet_transport_http_respond(owner.t, 999999, &r), DFNET_STATUS_NOT_FOUND);
  r.status = 42;
  assert_int_equal(dfnet_transport_http_respond(owner.t, id, &r), DFNET_STATUS_INVALID_ARGUMENT);
  /* the connection still works for the next one */
  char buf2[4096];
  assert_true(plain_exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", buf2, sizeof buf2) > 0);
  assert_non_null(strstr(buf2, "HTTP/1.1 200"));
}

/* ---- TLS endpoint ------------------------------------------------------------------------ */

static void test_tls_peer_certificate(void **state) {
  (void)state;
  char buf[4096];
  const char *req = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
  assert_true(tls_exchange(tls_port, "viewer.crt", "viewer.key", req, buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_string_equal(body_of(buf), "hello world\n");
  assert_true(owner.last_had_name);
  assert_string_equal(owner.last_name, "alice");
  assert_int_equal(owner.last_role, dfnet_v1_Role_VIEWER);

  assert_true(tls_exchange(tls_port, "host.crt", "host.key", req, buf, sizeof buf) > 0);
  assert_string_equal(owner.last_name, "lab-a");
  assert_int_equal(owner.last_role, dfnet_v1_Role_HOST);

  /* none, another CA's, a revoked one: nobody */
  const char *who[][2] = {
      {NULL, NULL}, {"stranger.crt", "stranger.key"}, {"viewer.crt", "viewer.key"}};
  for (size_t i = 0; i < 3; i++) {
    revoke_alice = i == 2;
    owner.last_had_name = true;
    int n = tls_exchange(tls_port, who[i][0], who[i][1], req, buf, sizeof buf);
    if (n < 0 && i == 1)
      continue; /* a TLS library may refuse the handshake of another CA's certificate */
    assert_true(n > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_false(owner.last_had_name);
    assert_int_equal(owner.last_role, dfnet_v1_Role_ROLE_UNSPECIFIED);
  }
  revoke_alice = false;
}

static void test_tls_without_on_http_refuses(void **state) {
  (void)state;
  char buf[4096];
  int n = tls_exchange(tls_plain_port, "viewer.crt", "viewer.key",
                       "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n", buf, sizeof buf);
  assert_true(n > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 403"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_answered_at_once),
      cmocka_unit_test(test_head_has_no_body),
      cmocka_unit_test(test_big_body_and_keep_alive),
      cmocka_unit_test(test_post_body),
      cmocka_unit_test(test_post_too_large),
      cmocka_unit_test(test_post_without_length),
      cmocka_unit_test(test_method_not_served),
      cmocka_unit_test(test_answer_from_another_thread),
      cmocka_unit_test(test_stream_written_then_ended),
      cmocka_unit_test(test_stream_reader_gone),
      cmocka_unit_test(test_held_request_reader_left),
      cmocka_unit_test(test_tls_peer_certificate),
      cmocka_unit_test(test_tls_without_on_http_refuses),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
