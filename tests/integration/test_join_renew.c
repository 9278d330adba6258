/* Enrollment and renewal end to end (issue 23 items 2 and 3, "Tests"; docs/architecture.md
 * "Transport and trust"): the real dfnet-manager (its enrolled and renewed certificates live
 * DFNET_CERT_LIFETIME_S = 8 seconds, the test setting), `dfnet-host join` and dfnet-host
 * started from the state directory join wrote, the real `dfnet` CLI (admin root, issued by
 * `dfnet-manager issue`) for tokens and listings.
 *
 *   test_join: a host token (prefix lab-, label rack=r3, one use); join lab-a: exit 0, the
 *     output names the state directory and the next command; host.key is 0600 and its text
 *     is in no file of the manager's state directory; dfnet-host started with only
 *     --state-dir comes online as lab-a with the label rack=r3.
 *   test_single_use: the same token again (lab-b): RESOURCE_EXHAUSTED, nothing written.
 *   test_wrong_pin: a fresh token and a pin of zeros: "the manager's CA does not match
 *     --ca-pin", UNAUTHENTICATED, and the token still has its use (nothing was sent: the
 *     manager logged no redemption).
 *   test_expired: a token of 1 s, used 2 s later: DEADLINE_EXCEEDED.
 *   test_name_enrolled: a token naming lab-a, which is enrolled and live: ALREADY_EXISTS.
 *   test_renewal: lab-a's agent renews its 8-second certificate again and again (at least 3
 *     times in 24 s: "certificate renewed" in its log, cert_renew rows in the audit log),
 *     stays online and keeps its nodes; the key file is still 0600. Meanwhile `dfnet login`
 *     enrols alice (an operator token: key, certificate, CA and config written), and a
 *     libdfnet-client with her files and dfnet_client_renew_enable renews her certificate
 *     (a new serial in her file) and still lists hosts.
 *   test_revoked_no_renewal: lab-a revoked by name: its session is closed, its reconnects
 *     are refused, and no renewal happens after it (nothing new in `cert list`).
 *   test_plain_peer: a TLS client without a certificate is refused on dfnet.host.v1 and
 *     dfnet.client.v1 (HTTP 403), and gets its upgrade on dfnet.enroll.v1.
 * Every process is stopped on every way out (the group teardown runs after a failed
 * assertion too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_run.h"
#include "fabric.h"
#include "lib/pki.h"
#include "transport/tls_fixture.h"

#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agents[1];
  dfnet_client_t *admin;
  char pin[80];
  char url[80];
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted \"%s\" in \"%s\"", part, text);
}

/* The whole of a file (malloc'd, NUL-terminated; "" when it cannot be read). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf = calloc(1, 1 << 22);
  assert_non_null(buf);
  if (f != NULL) {
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  return buf;
}

static int count_in_file(const char *path, const char *part) {
  char *text = slurp(path);
  int n = 0;
  for (const char *p = strstr(text, part); p != NULL; p = strstr(p + 1, part))
    n++;
  free(text);
  return n;
}

/* `dfnet token create --role host ARGS...`: the token into out, F.pin set. */
static void token_create(char *out, size_t cap, const char *a1, const char *a2, const char *a3,
                         const char *a4) {
  assert_int_equal(
      cli_run(&R, &F.fab, "token", "create", "--json", "--role", "host", a1, a2, a3, a4, NULL), 0);
  cJSON *doc = cli_json(&R);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "token");
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "ca_pin");
  assert_true(cJSON_IsString(t) && cJSON_IsString(p));
  snprintf(out, cap, "%s", t->valuestring);
  snprintf(F.pin, sizeof F.pin, "%s", p->valuestring);
  cJSON_Delete(doc);
}

/* Run dfnet-host join; its exit code, its output in *text (the caller frees it). */
static int join(const char *token, const char *pin, const char *name, const char *state,
                char **text) {
  char out[600];
  snprintf(out, sizeof out, "%s/join-%s.out", F.fab.root, name);
  int rc = fabric_sh(
      "'%s/host/agent/dfnet-host' join %s --token %s --ca-pin %s --name %s "
      "--state-dir '%s' >'%s' 2>&1",
      F.fab.build, F.url, token, pin, name, state, out);
  *text = slurp(out);
  return rc;
}

/* Start dfnet-host from a state directory alone (and the test's sysfs). */
static pid_t start_agent(const char *state, const char *log) {
  char agent[600], cache[600];
  snprintf(agent, sizeof agent, "%s/host/agent/dfnet-host", F.fab.build);
  snprintf(cache, sizeof cache, "%s/cache-joined", F.fab.root);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(agent, agent, "--state-dir", state, "--sysfs-root", DFNET_FIXTURES_DIR "/sysfs-virtio-vm",
          "--no-usb", "--no-sandbox", "--cache-dir", cache, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Is host `name` online, with label key=value? */
static bool host_online(const char *name, const char *key, const char *value) {
  dfnet_client_host_list_t *list = NULL;
  dfnet_client_error_t err;
  bool ok = false;
  if (dfnet_client_list_hosts(F.admin, NULL, &list, &err) != DFNET_STATUS_OK)
    return false;
  for (size_t i = 0; i < list->count; i++) {
    const dfnet_client_host_t *h = &list->items[i];
    if (strcmp(h->name, name) != 0 || !h->online)
      continue;
    ok = key == NULL;
    for (size_t k = 0; !ok && k < h->label_count; k++)
      ok = strcmp(h->label_keys[k], key) == 0 && strcmp(h->label_values[k], value) == 0;
  }
  dfnet_client_host_list_free(list);
  return ok;
}

static bool wait_online(const char *name, const char *key, const char *value, bool want,
                        uint32_t ms) {
  uint64_t end = fabric_now_ms() + ms;
  do {
    if (host_online(name, key, value) == want)
      return true;
    fabric_sleep_ms(50);
  } while (fabric_now_ms() < end);
  return false;
}

static int setup(void **state) {
  (void)state;
  setenv("DFNET_CERT_LIFETIME_S", "8", 1); /* the manager's enrolled certificates: 8 s */
  if (fabric_init(&F.fab, "enroll", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "admin", "root") != 0 ||
      fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  unsetenv("DFNET_CERT_LIFETIME_S");
  snprintf(F.url, sizeof F.url, "wss://localhost:%u", (unsigned)F.fab.port);
  F.admin = fabric_connect(&F.fab, "root");
  cli_use(&F.fab, "root");
  F.agents[0].name = "lab-a";
  return F.admin != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  F.admin = NULL;
  fabric_cleanup(&F.fab, F.agents, 1);
  return 0;
}

static char g_token_a[80];

static void test_join(void **state) {
  (void)state;
  char st[400], key[500], *text = NULL;
  token_create(g_token_a, sizeof g_token_a, "--name-prefix", "lab-", "--label", "rack=r3");
  snprintf(st, sizeof st, "%s/host-a", F.fab.root);
  int rc = join(g_token_a, F.pin, "lab-a", st, &text);
  if (rc != 0)
    fail_msg("join: %d: %s", rc, text);
  assert_has(text, "Enrolled lab-a");
  assert_has(text, st);
  assert_has(text, "dfnet-host --state-dir");
  free(text);
  snprintf(key, sizeof key, "%s/host.key", st);
  struct stat sb;
  assert_int_equal(stat(key, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  /* the key's text is nowhere in the manager's state directory */
  char *pem = slurp(key), *line = strchr(pem, '\n');
  assert_non_null(line);
  line[1 + strcspn(line + 1, "\n")] = '\0';
  assert_int_not_equal(fabric_sh("grep -rqF -- '%s' '%s/state'", line + 1, F.fab.root), 0);
  free(pem);
  snprintf(F.agents[0].log, sizeof F.agents[0].log, "%s/lab-a.log", F.fab.root);
  F.agents[0].pid = start_agent(st, F.agents[0].log);
  assert_true(wait_online("lab-a", "rack", "r3", true, WAIT_MS));
}

static void test_single_use(void **state) {
  (void)state;
  char st[400], *text = NULL;
  snprintf(st, sizeof st, "%s/host-b", F.fab.root);
  assert_int_equal(join(g_token_a, F.pin, "lab-b", st, &text), 1);
  assert_has(text, "RESOURCE_EXHAUSTED");
  free(text);
  assert_int_not_equal(access(st, F_OK), 0);
}

static void test_wrong_pin(void **state) {
  (void)state;
  char token[80], st[400], *text = NULL;
  token_create(token, sizeof token, "--name", "lab-p", NULL, NULL);
  snprintf(st, sizeof st, "%s/host-p", F.fab.root);
  int before = count_in_file(F.fab.manager_log, "join token");
  assert_int_equal(join(token,
                        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                        "lab-p", st, &text),
                   1);
  assert_has(text, "UNAUTHENTICATED");
  assert_has(text, "the manager's CA does not match --ca-pin");
  free(text);
  assert_int_equal(count_in_file(F.fab.manager_log, "join token"), before);
  assert_int_equal(cli_run(&R, &F.fab, "token", "list", "--json", NULL), 0);
  char id[16];
  snprintf(id, sizeof id, "%.12s", token);
  cJSON *doc = cli_json(&R);
  const cJSON *t;
  bool seen = false;
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(doc, "tokens")) {
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(t, "id");
    if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0) {
      seen = true;
      assert_int_equal(cJSON_GetObjectItemCaseSensitive(t, "uses_left")->valueint, 1);
    }
  }
  cJSON_Delete(doc);
  assert_true(seen);
  /* the right pin then works: the token was untouched */
  assert_int_equal(join(token, F.pin, "lab-p", st, &text), 0);
  free(text);
}

static void test_expired(void **state) {
  (void)state;
  char token[80], st[400], *text = NULL;
  token_create(token, sizeof token, "--ttl", "1s", NULL, NULL);
  fabric_sleep_ms(2100);
  snprintf(st, sizeof st, "%s/host-e", F.fab.root);
  assert_int_equal(join(token, F.pin, "lab-e", st, &text), 1);
  assert_has(text, "DEADLINE_EXCEEDED");
  free(text);
}

static void test_name_enrolled(void **state) {
  (void)state;
  char token[80], st[400], *text = NULL;
  token_create(token, sizeof token, "--name", "lab-a", NULL, NULL);
  snprintf(st, sizeof st, "%s/host-a2", F.fab.root);
  assert_int_equal(join(token, F.pin, "lab-a", st, &text), 1);
  assert_has(text, "ALREADY_EXISTS");
  free(text);
}

/* The serial of a certificate file ("" when it does not load). */
static void serial_of(const char *path, char *out, size_t cap) {
  dfnet_pki_cert_t *c = NULL;
  dfnet_pki_cert_info_t info;
  out[0] = '\0';
  if (dfnet_pki_cert_load(path, &c) == DFNET_STATUS_OK &&
      dfnet_pki_cert_info(c, &info) == DFNET_STATUS_OK)
    snprintf(out, cap, "%s", info.serial_hex);
  dfnet_pki_cert_free(c);
}

/* `dfnet login` alice (an operator token) into <root>/alice/config; then a libdfnet-client
 * with her files and dfnet_client_renew_enable. */
static dfnet_client_t *login_alice(char *crt, size_t cap) {
  char config[400], token[80];
  assert_int_equal(cli_run(&R, &F.fab, "token", "create", "--json", "--role", "operator", "--name",
                           "alice", NULL),
                   0);
  cJSON *doc = cli_json(&R);
  snprintf(token, sizeof token, "%s", cJSON_GetObjectItemCaseSensitive(doc, "token")->valuestring);
  cJSON_Delete(doc);
  snprintf(config, sizeof config, "%s/alice/config", F.fab.root);
  setenv("DFNET_CONFIG", config, 1);
  int rc = cli_run(&R, &F.fab, "login", F.url, "--token", token, "--ca-pin", F.pin, "--name",
                   "alice", NULL);
  unsetenv("DFNET_CONFIG");
  if (rc != 0)
    fail_msg("login: %d: %s %s", rc, R.out, R.err);
  assert_has(R.out, "Logged in as alice (role operator)");
  char key[400], ca[400];
  snprintf(crt, cap, "%s/alice/alice.crt", F.fab.root);
  snprintf(key, sizeof key, "%s/alice/alice.key", F.fab.root);
  snprintf(ca, sizeof ca, "%s/alice/ca.crt", F.fab.root);
  dfnet_client_options_t o = {.url = F.url, .cert_file = crt, .key_file = key, .ca_file = ca};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_connect(&o, &c, &err) != DFNET_STATUS_OK)
    fail_msg("alice: %s", err.message);
  assert_int_equal(dfnet_client_renew_enable(c, &err), DFNET_STATUS_OK);
  return c;
}

static void test_renewal(void **state) {
  (void)state;
  char crt[400], first[64], now[64];
  dfnet_client_t *alice = login_alice(crt, sizeof crt);
  serial_of(crt, first, sizeof first);
  assert_true(first[0] != '\0');
  uint64_t end = fabric_now_ms() + 24000;
  while (fabric_now_ms() < end && count_in_file(F.agents[0].log, "certificate renewed") < 3)
    fabric_sleep_ms(200);
  assert_true(count_in_file(F.agents[0].log, "certificate renewed") >= 3);
  assert_true(wait_online("lab-a", "rack", "r3", true, WAIT_MS));
  fabric_node_t n;
  assert_true(fabric_wait_node(F.admin, "dev.lab-a", fabric_is_found, NULL, WAIT_MS, &n));
  assert_int_equal(cli_run(&R, &F.fab, "lease", "history", "--json", NULL), 0);
  int renews = 0;
  for (const char *p = strstr(R.out, "cert_renew"); p != NULL; p = strstr(p + 1, "cert_renew"))
    renews++;
  assert_true(renews >= 3);
  char key[500];
  snprintf(key, sizeof key, "%s/host-a/host.key", F.fab.root);
  struct stat sb;
  assert_int_equal(stat(key, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  /* alice's long-lived client renewed her certificate too, and still works */
  serial_of(crt, now, sizeof now);
  assert_true(now[0] != '\0');
  assert_string_not_equal(now, first);
  dfnet_client_host_list_t *list = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_list_hosts(alice, NULL, &list, &err), DFNET_STATUS_OK);
  dfnet_client_host_list_free(list);
  dfnet_client_close(alice);
}

static void test_revoked_no_renewal(void **state) {
  (void)state;
  assert_int_equal(cli_run(&R, &F.fab, "cert", "revoke", "lab-a", "--reason", "stolen", NULL), 0);
  assert_true(wait_online("lab-a", NULL, NULL, false, WAIT_MS));
  int renewed = count_in_file(F.agents[0].log, "certificate renewed");
  fabric_sleep_ms(10000); /* more than a lifetime: a renewal would have come */
  assert_int_equal(count_in_file(F.agents[0].log, "certificate renewed"), renewed);
  assert_false(host_online("lab-a", NULL, NULL));
  assert_true(count_in_file(F.fab.manager_log, "was revoked") >= 1);
}

/* A TLS client without a certificate: HTTP 101 for the upgrade to `sub`? */
static bool anonymous_upgrade(const char *sub) {
  char ca[400], req[512], resp[512] = "";
  snprintf(ca, sizeof ca, "%s/certs/ca.crt", F.fab.root);
  int err = 0;
  fixture_tls_t *tls = fixture_tls_connect(F.fab.port, ca, NULL, NULL, 3, &err);
  assert_non_null(tls);
  int n = snprintf(req, sizeof req,
                   "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                   sub);
  bool ok = fixture_tls_write(tls, req, (size_t)n) == 0;
  int got = ok ? fixture_tls_read(tls, resp, sizeof resp - 1) : -1;
  fixture_tls_close(tls);
  resp[got > 0 ? got : 0] = '\0';
  return strstr(resp, " 101 ") != NULL;
}

static void test_plain_peer(void **state) {
  (void)state;
  assert_false(anonymous_upgrade("dfnet.host.v1"));
  assert_false(anonymous_upgrade("dfnet.client.v1"));
  assert_true(anonymous_upgrade("dfnet.enroll.v1"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_join),          cmocka_unit_test(test_single_use),
      cmocka_unit_test(test_wrong_pin),     cmocka_unit_test(test_expired),
      cmocka_unit_test(test_name_enrolled), cmocka_unit_test(test_plain_peer),
      cmocka_unit_test(test_renewal),       cmocka_unit_test(test_revoked_no_renewal),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
