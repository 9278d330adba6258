/* Revocation and join tokens end to end (issue 23 "Tests"; docs/architecture.md "Transport
 * and trust"): the real `dfnet` CLI (child processes) and libdfnet-client against a real
 * dfnet-manager with two real dfnet-host agents (lab-a, lab-b). Certificates (issued by
 * `dfnet-manager issue`, so recorded as issued): the hosts, the admin root, the viewer
 * watcher.
 *
 *   test_cert_list: `cert list --json` (viewer) parses and shows each certificate's name,
 *     role, not-after, issued, last seen and online (the agents and the admin are online,
 *     the watcher never seen before it asked); the text form has the columns.
 *   test_revoke_host: a viewer's revoke is PERMISSION_DENIED, a revoke without --reason a
 *     usage error, an unknown name NOT_FOUND suggesting the near one; root revokes lab-a:
 *     its agent's session is gone within a second (the host is offline), its reconnects are
 *     refused (the manager logs the refusal with the reason, more than once: the agent keeps
 *     trying with its backoff, and says "was revoked"), lab-b carries on (online, same
 *     session); `cert list` shows the revocation (when, by whom, why); the audit log has a
 *     cert_revoke row for its serial; a second revoke is FAILED_PRECONDITION.
 *   test_revoked_after_restart: the manager stopped and started again on the same state
 *     directory and port: lab-b comes back, lab-a stays refused, `cert list` still shows it
 *     revoked.
 *   test_tokens: `token create` (text and --json) prints a token "<12 hex>.<32 hex>" and the
 *     join command with the CA pin (equal to the SHA-256 of the CA's public key DER, as
 *     openssl computes it); `token list --json` has no secret; `token revoke`, then the list
 *     says revoked; a second revoke FAILED_PRECONDITION, an unknown id NOT_FOUND; a viewer's
 *     token commands PERMISSION_DENIED; the audit log has token_create and token_revoke.
 * Every process is stopped on every way out (the group teardown runs after a failed
 * assertion too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_run.h"
#include "fabric.h"

#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agents[2];
  dfnet_client_t *admin;
  char lab_a_serial[64];
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted \"%s\" in \"%s\"", part, text);
}

static int count_str(const char *text, const char *part) {
  int n = 0;
  for (const char *p = strstr(text, part); p != NULL; p = strstr(p + 1, part))
    n++;
  return n;
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

static int log_count(const char *path, const char *part) {
  char *text = slurp(path);
  int n = count_str(text, part);
  free(text);
  return n;
}

/* Is host `name` online as the manager says, and since when (0: unknown)? */
static bool host_online(const char *name, uint64_t *since) {
  dfnet_client_host_list_t *list = NULL;
  dfnet_client_error_t err;
  bool online = false;
  if (dfnet_client_list_hosts(F.admin, NULL, &list, &err) != DFNET_STATUS_OK)
    return false;
  for (size_t i = 0; i < list->count; i++) {
    if (strcmp(list->items[i].name, name) == 0) {
      online = list->items[i].online;
      if (since != NULL)
        *since = list->items[i].connected_since_ms;
    }
  }
  dfnet_client_host_list_free(list);
  return online;
}

static bool wait_online(const char *name, bool want, uint32_t ms) {
  uint64_t end = fabric_now_ms() + ms;
  do {
    if (host_online(name, NULL) == want)
      return true;
    fabric_sleep_ms(20);
  } while (fabric_now_ms() < end);
  return false;
}

/* The certificate of `name` in a `cert list --json` document (NULL: none). */
static const cJSON *cert_of(const cJSON *doc, const char *name) {
  const cJSON *c;
  cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "certificates")) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
      return c;
  }
  return NULL;
}

static const char *str_of(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  F.admin = NULL;
  fabric_cleanup(&F.fab, F.agents, 2);
  return 0;
}

static int start(void) {
  const fabric_package_t packages[] = {{NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "cert-revoke", NULL, packages) != 0)
    return -1;
  const char *const certs[][2] = {
      {"host", "lab-a"}, {"host", "lab-b"}, {"admin", "root"}, {"viewer", "watcher"}};
  for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
    if (fabric_issue(&F.fab, certs[i][0], certs[i][1]) != 0)
      return -1;
  const char *board[] = {"n0:7", NULL};
  fabric_write_board(&F.fab, board);
  /* no drivers run here: no driver user needed */
  static const char *const agent_extra[] = {"--no-sandbox", NULL};
  F.agents[0].name = "lab-a";
  F.agents[1].name = "lab-b";
  F.agents[0].extra = F.agents[1].extra = agent_extra;
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agents[0]);
  fabric_start_agent(&F.fab, &F.agents[1]);
  if ((F.admin = fabric_connect(&F.fab, "root")) == NULL)
    return -1;
  return wait_online("lab-a", true, WAIT_MS) && wait_online("lab-b", true, WAIT_MS) ? 0 : -1;
}

static int setup(void **state) {
  if (start() == 0)
    return 0;
  teardown(state);
  return -1;
}

/* ---- 1. cert list ----------------------------------------------------------------------- */

static void test_cert_list(void **state) {
  (void)state;
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  const cJSON *a = cert_of(doc, "lab-a"), *w = cert_of(doc, "watcher");
  assert_non_null(a);
  assert_non_null(w);
  assert_string_equal(str_of(a, "role"), "host");
  assert_non_null(str_of(a, "not_after"));
  assert_non_null(str_of(a, "last_seen"));
  assert_non_null(str_of(a, "last_address"));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "issued")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "online")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(a, "revoked")));
  assert_int_equal(strlen(str_of(a, "serial")), 32);
  snprintf(F.lab_a_serial, sizeof F.lab_a_serial, "%s", str_of(a, "serial"));
  assert_string_equal(str_of(w, "role"), "viewer");
  assert_non_null(cert_of(doc, "root"));
  assert_non_null(cert_of(doc, "lab-b"));
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "cert", "list", NULL), 0);
  assert_has(R.out, "NAME");
  assert_has(R.out, "NOT AFTER");
  assert_has(R.out, "LAST SEEN");
  assert_has(R.out, "REVOKED");
  assert_has(R.out, F.lab_a_serial);
}

/* ---- 2. revoking a connected host ------------------------------------------------------- */

static void test_revoke_host(void **state) {
  (void)state;
  uint64_t b_since = 0;
  assert_true(host_online("lab-b", &b_since));
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "revoke", "lab-a", "--reason", "x", NULL), 1);
  assert_has(R.err, "PERMISSION_DENIED");
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "revoke", "lab-a", NULL), 2);
  assert_has(R.err, "--reason");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "revoke", "lab-aa", "--reason", "x", NULL), 1);
  assert_has(R.err, "NOT_FOUND");
  assert_has(R.err, "did you mean lab-a?");
  assert_true(host_online("lab-a", NULL));

  assert_int_equal(cli_run(&R, &F.fab, "cert", "revoke", "lab-a", "--reason", "board stolen", NULL),
                   0);
  uint64_t done = fabric_now_ms();
  char want[160];
  snprintf(want, sizeof want, "Revoked certificate %s of lab-a; 1 session closed.", F.lab_a_serial);
  assert_has(R.out, want);
  /* its session is gone within a second */
  assert_true(wait_online("lab-a", false, 1000));
  assert_true(fabric_now_ms() - done < 1000);
  /* its reconnects are refused, with the reason, while it keeps trying */
  snprintf(want, sizeof want, "certificate %s of lab-a was revoked: board stolen", F.lab_a_serial);
  uint64_t end = fabric_now_ms() + WAIT_MS;
  while (log_count(F.fab.manager_log, want) < 2 && fabric_now_ms() < end)
    fabric_sleep_ms(100);
  assert_true(log_count(F.fab.manager_log, want) >= 2);
  assert_true(log_count(F.agents[0].log, "was revoked") >= 1);
  assert_false(host_online("lab-a", NULL));
  /* lab-b carries on, on the same session */
  uint64_t b_now = 0;
  assert_true(host_online("lab-b", &b_now));
  assert_int_equal(b_now, b_since);

  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  const cJSON *rev = cJSON_GetObjectItemCaseSensitive(cert_of(doc, "lab-a"), "revoked");
  assert_true(cJSON_IsObject(rev));
  assert_string_equal(str_of(rev, "by"), "root");
  assert_string_equal(str_of(rev, "reason"), "board stolen");
  assert_non_null(str_of(rev, "at"));
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cert_of(doc, "lab-b"), "revoked")));
  cJSON_Delete(doc);

  cli_use(&F.fab, "root");
  char target[80];
  snprintf(target, sizeof target, "cert:%s", F.lab_a_serial);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "history", "--json", "--target", target, NULL), 0);
  assert_has(R.out, "cert_revoke");
  assert_has(R.out, "board stolen");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "revoke", F.lab_a_serial, "--reason", "x", NULL), 1);
  assert_has(R.err, "FAILED_PRECONDITION");
}

/* ---- 3. across a restart ---------------------------------------------------------------- */

static void test_revoked_after_restart(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  F.admin = NULL;
  assert_true(fabric_stop_process(&F.fab.manager, SIGTERM) >= 0);
  char want[160];
  snprintf(want, sizeof want, "certificate %s of lab-a was revoked: board stolen", F.lab_a_serial);
  int before = log_count(F.fab.manager_log, want);
  assert_int_equal(fabric_restart_manager(&F.fab, "127.0.0.1", 30), 0);
  F.admin = fabric_connect(&F.fab, "root");
  assert_non_null(F.admin);
  assert_true(wait_online("lab-b", true, WAIT_MS));
  uint64_t end = fabric_now_ms() + WAIT_MS;
  while (log_count(F.fab.manager_log, want) <= before && fabric_now_ms() < end)
    fabric_sleep_ms(100);
  assert_true(log_count(F.fab.manager_log, want) > before);
  assert_false(host_online("lab-a", NULL));
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "cert", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cert_of(doc, "lab-a"), "revoked")));
  cJSON_Delete(doc);
}

/* ---- 4. join tokens --------------------------------------------------------------------- */

/* The CA pin as openssl computes it: sha256 of the public key's DER. */
static void openssl_pin(char *out, size_t cap) {
  char cmd[800];
  snprintf(cmd, sizeof cmd,
           "openssl x509 -in '%s/state/ca.crt' -pubkey -noout | openssl pkey -pubin -outform der "
           "| sha256sum",
           F.fab.root);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char hex[80] = "";
  assert_int_equal(fscanf(p, "%64s", hex), 1);
  pclose(p);
  snprintf(out, cap, "sha256:%s", hex);
}

static void test_tokens(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "token", "create", "--role", "host", "--name", "lab-c",
                           "--ttl", "2h", "--uses", "2", "--label", "rack=3", NULL),
                   0);
  char token[80] = "", pin[100];
  const char *t = strstr(R.out, "\n\n  ");
  assert_non_null(t);
  assert_int_equal(sscanf(t, " %79s", token), 1);
  assert_int_equal(strlen(token), 45);
  assert_int_equal(token[12], '.');
  openssl_pin(pin, sizeof pin);
  char want[400];
  snprintf(want, sizeof want, "dfnet-host join wss://127.0.0.1:%u --token %s --ca-pin %s\n",
           (unsigned)F.fab.port, token, pin);
  assert_has(R.out, want);
  char id[16];
  snprintf(id, sizeof id, "%.12s", token);

  assert_int_equal(cli_run(&R, &F.fab, "token", "create", "--json", "--role", "viewer",
                           "--name-prefix", "intern-", NULL),
                   0);
  cJSON *doc = cli_json(&R);
  assert_string_equal(str_of(doc, "role"), "viewer");
  assert_string_equal(str_of(doc, "name_prefix"), "intern-");
  assert_string_equal(str_of(doc, "ca_pin"), pin);
  assert_int_equal(strlen(str_of(doc, "token")), 45);
  assert_has(str_of(doc, "join_command"), "--ca-pin sha256:");
  cJSON_Delete(doc);

  assert_int_equal(cli_run(&R, &F.fab, "token", "list", "--json", NULL), 0);
  assert_true(strstr(R.out, token + 13) == NULL); /* never the secret */
  doc = cli_json(&R);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "tokens")), 2);
  const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "tokens"), 0);
  assert_string_equal(str_of(first, "id"), id);
  assert_string_equal(str_of(first, "name"), "lab-c");
  assert_string_equal(str_of(first, "created_by"), "root");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(first, "uses_left")->valueint, 2);
  assert_string_equal(str_of(cJSON_GetObjectItemCaseSensitive(first, "labels"), "rack"), "3");
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "revoked")));
  cJSON_Delete(doc);

  assert_int_equal(cli_run(&R, &F.fab, "token", "revoke", id, NULL), 0);
  assert_int_equal(cli_run(&R, &F.fab, "token", "list", NULL), 0);
  assert_has(R.out, "revoked");
  assert_int_equal(cli_run(&R, &F.fab, "token", "revoke", id, NULL), 1);
  assert_has(R.err, "FAILED_PRECONDITION");
  assert_int_equal(cli_run(&R, &F.fab, "token", "revoke", "000000000000", NULL), 1);
  assert_has(R.err, "NOT_FOUND");
  assert_int_equal(cli_run(&R, &F.fab, "token", "create", "--role", "admin", NULL), 2);
  assert_int_equal(cli_run(&R, &F.fab, "token", "create", "--role", "host", "--name", "a",
                           "--name-prefix", "b", NULL),
                   2);
  char target[32];
  snprintf(target, sizeof target, "token:%s", id);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "history", "--target", target, NULL), 0);
  assert_has(R.out, "token_create");
  assert_has(R.out, "token_revoke");

  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "token", "list", NULL), 1);
  assert_has(R.err, "PERMISSION_DENIED");
  assert_int_equal(cli_run(&R, &F.fab, "token", "create", "--role", "host", NULL), 1);
  assert_has(R.err, "PERMISSION_DENIED");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cert_list),
      cmocka_unit_test(test_revoke_host),
      cmocka_unit_test(test_revoked_after_restart),
      cmocka_unit_test(test_tokens),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
