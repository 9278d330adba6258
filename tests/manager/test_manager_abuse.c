/* The real dfnet-manager against peers that break the rules, with a raw websocket client
 * (tests/transport/raw_ws.h): a Hello of another protocol version, a peer that never says
 * Hello, a client with more calls in flight than the limit, a client that floods calls and
 * never reads the answers while another client works as usual. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raw_ws.h"
#include "testhost/testhost.h"

static char g_dir[64];

static int group_setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-abuse-XXXXXX");
  return mkdtemp(g_dir) == NULL ? -1 : 0;
}

static int group_teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A raw client session as `name` with `role` on the client subprotocol. */
static raw_ws_t *raw_client(th_manager_t *m, const char *name, const char *role) {
  char dir[700], crt[800], key[800], ca[800];
  assert_int_equal(th_issue(m, name, role, dir, sizeof dir), 0);
  snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
  snprintf(key, sizeof key, "%s/%s.key", dir, name);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  int http = 0;
  raw_ws_t *w = raw_ws_open(m->port, ca, crt, key, DFNET_SUBPROTOCOL_CLIENT, 10000, &http);
  if (w == NULL)
    fail_msg("raw client %s: HTTP %d", name, http);
  return w;
}

static void send_hello(raw_ws_t *w, uint64_t id, uint32_t version) {
  dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.id = id;
  env.pb.which_msg = dfnet_v1_Envelope_hello_tag;
  env.pb.msg.hello.protocol_version = version;
  assert_int_equal(raw_ws_send_env(w, &env), 0);
}

/* Hello then Welcome. */
static void hello(raw_ws_t *w) {
  send_hello(w, 1, DFNET_PROTOCOL_VERSION);
  dfnet_envelope_t env;
  assert_int_equal(raw_ws_read_env(w, &env, NULL), 0);
  assert_int_equal(env.pb.which_msg, dfnet_v1_Envelope_welcome_tag);
}

static void start_manager(th_manager_t *m, const char *name, ...) {
  char state[128];
  snprintf(state, sizeof state, "%s/%s", g_dir, name);
  va_list ap;
  va_start(ap, name);
  const char *a[8] = {0};
  for (int i = 0; i < 7 && (a[i] = va_arg(ap, const char *)) != NULL; i++) {
  }
  va_end(ap);
  assert_int_equal(th_manager_start(m, state, NULL, a[0], a[1], a[2], a[3], a[4], a[5], NULL), 0);
}

/* Versions 0, 2 and 99999 are refused with FAILED_PRECONDITION naming both versions, and
 * the session is closed; version 1 is welcomed. */
static void test_protocol_version_checked(void **state) {
  (void)state;
  th_manager_t m;
  start_manager(&m, "version", NULL);
  const uint32_t bad[] = {0, 2, 99999};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    raw_ws_t *w = raw_client(&m, "v", "viewer");
    send_hello(w, 1, bad[i]);
    dfnet_envelope_t env;
    assert_int_equal(raw_ws_read_env(w, &env, NULL), 0);
    assert_int_equal(env.pb.which_msg, dfnet_v1_Envelope_status_tag);
    assert_int_equal(env.pb.id, 1);
    assert_int_equal((int)env.pb.msg.status.code, (int)DFNET_STATUS_FAILED_PRECONDITION);
    char want[96];
    snprintf(want, sizeof want,
             "protocol version %u is not spoken here: this manager speaks "
             "version %u",
             bad[i], (unsigned)DFNET_PROTOCOL_VERSION);
    assert_string_equal(env.pb.msg.status.message, want);
    int code = 0;
    assert_int_equal(raw_ws_read_env(w, &env, &code), -1); /* closed */
    assert_int_equal(code, 1008);
    raw_ws_close(w);
  }
  raw_ws_t *w = raw_client(&m, "v", "viewer");
  hello(w);
  raw_ws_close(w);
  assert_int_equal(th_manager_stop(&m), 0);
}

/* A peer that never sends Hello is closed after --hello-timeout-ms, even while it answers
 * the rest; one that says Hello in time stays. */
static void test_silent_hello_closed(void **state) {
  (void)state;
  th_manager_t m;
  start_manager(&m, "hello", "--hello-timeout-ms", "300", NULL);
  raw_ws_t *mute = raw_client(&m, "mute", "viewer");
  raw_ws_t *polite = raw_client(&m, "polite", "viewer");
  hello(polite);
  dfnet_envelope_t env;
  int code = 0;
  assert_int_equal(raw_ws_read_env(mute, &env, &code), -1); /* closed */
  assert_int_equal(code, 1008);
  /* the polite one is still served after the same time */
  usleep(400 * 1000);
  dfnet_envelope_init(&env);
  env.pb.id = 3;
  env.pb.which_msg = dfnet_v1_Envelope_list_hosts_tag;
  assert_int_equal(raw_ws_send_env(polite, &env), 0);
  assert_int_equal(raw_ws_read_env(polite, &env, NULL), 0);
  assert_int_equal(env.pb.id, 3);
  raw_ws_close(mute);
  raw_ws_close(polite);
  assert_int_equal(th_manager_stop(&m), 0);
}

static void send_call(raw_ws_t *w, uint64_t id, const char *target, uint32_t deadline_ms) {
  dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.id = id;
  env.pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(env.pb.msg.call.target, sizeof env.pb.msg.call.target, "%s", target);
  snprintf(env.pb.msg.call.method, sizeof env.pb.msg.call.method, "/dfnet.test.Echo/Echo");
  env.pb.msg.call.deadline_ms = deadline_ms;
  assert_int_equal(raw_ws_send_env(w, &env), 0);
}

/* A client may have 256 calls in flight: the 257th is RESOURCE_EXHAUSTED with the limit in
 * its message; another client is not affected. A call without a deadline gets the default
 * one (here 2 s) and ends DEADLINE_EXCEEDED instead of waiting forever. */
static void test_calls_in_flight_bounded(void **state) {
  (void)state;
  th_manager_t m;
  char drivers[128];
  snprintf(drivers, sizeof drivers, "%s/calls-drivers", g_dir);
  assert_int_equal(th_fresh_dir(drivers), 0);
  assert_int_equal(th_write_driver(drivers, "echo", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  char state_dir[128];
  snprintf(state_dir, sizeof state_dir, "%s/calls", g_dir);
  assert_int_equal(th_manager_start(&m, state_dir, drivers, "--default-deadline-ms", "2000", NULL),
                   0);
  /* a host whose driver takes calls and never answers them (the test host records them) */
  testhost_t *h = th_connect(&m, "lab-a", "host", NULL);
  assert_non_null(h);
  const th_prop_t props[] = {"#1=u:31"};
  assert_int_equal(th_node_add(h, "dev.lab-a", "dev0", props, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(
      th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.dev0", 10000, NULL, NULL));
  raw_ws_t *hog = raw_client(&m, "hog", "operator");
  hello(hog);
  for (uint64_t i = 0; i < 256; i++)
    send_call(hog, 101 + 2 * i, "dev.lab-a.dev0", 60000);
  send_call(hog, 9001, "dev.lab-a.dev0", 60000);
  dfnet_envelope_t env;
  assert_int_equal(raw_ws_read_env(hog, &env, NULL), 0);
  assert_int_equal(env.pb.id, 9001);
  assert_int_equal(env.pb.which_msg, dfnet_v1_Envelope_reply_tag);
  assert_int_equal((int)env.pb.msg.reply.code, (int)DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(env.pb.msg.reply.message, "256 calls are in flight"));
  /* the host saw the 256, not the 257th */
  for (int i = 0; i < 100 && th_count_events(h, dfnet_v1_Envelope_call_tag, NULL) < 256; i++)
    usleep(20 * 1000);
  assert_int_equal(th_count_events(h, dfnet_v1_Envelope_call_tag, NULL), 256);
  /* another client's call without a deadline: forwarded with the default one */
  raw_ws_t *other = raw_client(&m, "other", "operator");
  hello(other);
  send_call(other, 7, "dev.lab-a.dev0", 0);
  assert_int_equal(raw_ws_read_env(other, &env, NULL), 0);
  assert_int_equal(env.pb.id, 7);
  assert_int_equal((int)env.pb.msg.reply.code, (int)DFNET_STATUS_DEADLINE_EXCEEDED);
  raw_ws_close(other);
  raw_ws_close(hog);
  th_close(h);
  assert_int_equal(th_manager_stop(&m), 0);
}

/* The manager's resident memory, in KiB. */
static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kb;
}

/* A client that sends calls as fast as it can (to a class path with no node: each is
 * answered NOT_FOUND at once) and never reads the answers: the manager stops reading it
 * once its queue is full, so its memory stays within 16 MiB of where it began, while
 * another client's calls are answered as usual; after the flood ends the memory comes
 * back down. */
static void test_non_reading_client_bounded(void **state) {
  (void)state;
  th_manager_t m;
  start_manager(&m, "flood", "--keepalive-ms", "60000", NULL); /* the probe waits, unread */
  raw_ws_t *probe = raw_client(&m, "probe", "viewer");
  hello(probe);
  long before = rss_kb(m.pid);
  raw_ws_t *hog = raw_client(&m, "flooder", "operator");
  hello(hog);
  size_t sent = 0;
  for (uint64_t i = 0; i < 2000000; i++) {
    dfnet_envelope_t env;
    dfnet_envelope_init(&env);
    env.pb.id = 11 + 2 * i;
    env.pb.which_msg = dfnet_v1_Envelope_call_tag;
    snprintf(env.pb.msg.call.target, sizeof env.pb.msg.call.target, "class/none/%03u",
             (unsigned)(i % 1000));
    snprintf(env.pb.msg.call.method, sizeof env.pb.msg.call.method, "/x.Y/Z");
    int rc = raw_ws_send_env(hog, &env);
    if (rc == -2)
      break; /* the manager no longer reads us */
    assert_int_equal(rc, 0);
    sent++;
  }
  long during = rss_kb(m.pid);
  fprintf(stderr, "# %zu calls sent before the manager stopped reading; RSS %ld -> %ld KiB\n", sent,
          before, during);
  assert_true(sent > 10000);
#if !defined(__SANITIZE_ADDRESS__) /* ASan's quarantine and shadow memory are not the code's */
  assert_true(during - before < 16 * 1024);
#endif
  /* another client is served meanwhile */
  dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.id = 5;
  env.pb.which_msg = dfnet_v1_Envelope_list_hosts_tag;
  assert_int_equal(raw_ws_send_env(probe, &env), 0);
  assert_int_equal(raw_ws_read_env(probe, &env, NULL), 0);
  assert_int_equal(env.pb.id, 5);
  raw_ws_close(hog);
  usleep(500 * 1000);
  long after = rss_kb(m.pid);
  fprintf(stderr, "# after the flooder left: RSS %ld KiB\n", after);
#if !defined(__SANITIZE_ADDRESS__)
  assert_true(after - before < 4 * 1024);
#endif
  raw_ws_close(probe);
  assert_int_equal(th_manager_stop(&m), 0);
}

/* 300 raw TCP connections that never start TLS cost the manager their TLS state while they
 * are open; once they are gone the memory goes back to the system. */
static void test_raw_connections_give_memory_back(void **state) {
  (void)state;
  th_manager_t m;
  start_manager(&m, "raw", NULL);
  long before = rss_kb(m.pid);
  int fds[300];
  for (int i = 0; i < 300; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(m.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fds[i] >= 0);
    assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
  }
  usleep(1000 * 1000);
  long open_kb = rss_kb(m.pid);
  for (int i = 0; i < 300; i++)
    close(fds[i]);
  usleep(1500 * 1000);
  long after = rss_kb(m.pid);
  fprintf(stderr, "# 300 raw TCP connections: RSS %ld -> %ld -> %ld KiB\n", before, open_kb, after);
#if !defined(__SANITIZE_ADDRESS__)
  assert_true(after - before < 2 * 1024);
#endif
  assert_int_equal(th_manager_stop(&m), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protocol_version_checked),
      cmocka_unit_test(test_silent_hello_closed),
      cmocka_unit_test(test_calls_in_flight_bounded),
      cmocka_unit_test(test_non_reading_client_bounded),
      cmocka_unit_test(test_raw_connections_give_memory_back),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
