/* manager/token: join tokens (issue 23 item 1) on a real SQLite store in a temporary
 * directory, the book the manager keeps (manager/token.h), no mock:
 *   create: "<12 hex>.<32 hex>", kept with its digest only (the secret is nowhere in the
 *     file), an audit row; bad specs refused INVALID_ARGUMENT naming the field;
 *   redeem: single use (the second is RESOURCE_EXHAUSTED), several uses counted down and
 *     kept across a reopen; expired (a TTL of 50 ms, waited for); a wrong secret and an
 *     unknown id both UNAUTHENTICATED; revoked PERMISSION_DENIED; not a token
 *     INVALID_ARGUMENT; the rate limit: 10 failures from one address in a minute and even
 *     the right token is refused from there (not from another address), and again allowed
 *     a minute later;
 *   revoke: NOT_FOUND, FAILED_PRECONDITION the second time, kept across a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "manager/store.h"
#include "manager/token.h"

#define OK DFNET_STATUS_OK

typedef struct fixture {
  char dir[256];
  store_t *s;
  token_book_t *b;
  char err[1024];
} fixture_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void open_book(fixture_t *f) {
  assert_int_equal(store__open(f->dir, &f->s, f->err, sizeof f->err), OK);
  assert_int_equal(token__book_open(f->s, &f->b, f->err, sizeof f->err), OK);
}

static void close_book(fixture_t *f) {
  token__book_free(f->b);
  f->b = NULL;
  store__close(f->s);
  f->s = NULL;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/dfnet-test-token-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  open_book(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  close_book(f);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  int rc = system(cmd);
  free(f);
  return rc == 0 ? 0 : -1;
}

static void create(fixture_t *f, const token_spec_t *spec, char token[TOKEN_TEXT_SIZE]) {
  const store_token_t *info = NULL;
  dfnet_status_t st =
      token__create(f->b, spec, "root", now_ms(), token, &info, f->err, sizeof f->err);
  if (st != OK)
    fail_msg("create: %s: %s", dfnet_status_str(st), f->err);
  assert_non_null(info);
  assert_int_equal(strlen(token), TOKEN_TEXT_SIZE - 1);
}

static dfnet_status_t redeem(fixture_t *f, const char *token, const char *from, uint64_t at,
                             token_grant_t *g) {
  token_grant_t scratch;
  return token__redeem(f->b, token, from, at, NULL, NULL, g ? g : &scratch, f->err, sizeof f->err);
}

/* Does the file hold `needle` anywhere (the secret must not be there)? */
static bool file_has(const fixture_t *f, const char *needle) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "cat '%s'/dfnet.db* | grep -q -a '%s'", f->dir, needle);
  return system(cmd) == 0;
}

static void test_create_and_redeem_once(void **state) {
  fixture_t *f = *state;
  store_label_t labels[] = {{"rack", "3"}, {"soc", "imx8mp"}};
  token_spec_t spec = {
      .role = dfnet_v1_Role_HOST, .name = "lab-c", .labels = labels, .label_count = 2};
  char token[TOKEN_TEXT_SIZE];
  create(f, &spec, token);
  assert_int_equal(token[TOKEN_ID_HEX], '.');
  assert_false(file_has(f, token + TOKEN_ID_HEX + 1)); /* only its digest is kept */
  token_grant_t g;
  assert_int_equal(redeem(f, token, "192.0.2.7:50312", now_ms(), &g), OK);
  assert_int_equal(g.role, dfnet_v1_Role_HOST);
  assert_string_equal(g.name, "lab-c");
  assert_int_equal(g.label_count, 2);
  assert_string_equal(g.labels[1].key, "soc");
  assert_string_equal(g.labels[1].value, "imx8mp");
  assert_int_equal(g.uses_left, 0);
  assert_int_equal(redeem(f, token, "192.0.2.7:50313", now_ms(), NULL),
                   DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(f->err, "no uses left"));
}

static size_t g_rows;
static dfnet_status_t count_row(void *arg, const store_audit_row_t *row) {
  (void)arg;
  assert_string_equal(row->actor, "root");
  g_rows++;
  return OK;
}

static void test_uses_survive_reopen(void **state) {
  fixture_t *f = *state;
  token_spec_t spec = {.role = dfnet_v1_Role_VIEWER, .name_prefix = "intern-", .uses = 3};
  char token[TOKEN_TEXT_SIZE];
  create(f, &spec, token);
  assert_int_equal(redeem(f, token, "[::1]:4000", now_ms(), NULL), OK);
  close_book(f);
  open_book(f);
  token_grant_t g;
  assert_int_equal(redeem(f, token, "[::1]:4001", now_ms(), &g), OK);
  assert_int_equal(g.uses_left, 1);
  assert_string_equal(g.name_prefix, "intern-");
  assert_int_equal(redeem(f, token, "[::1]:4002", now_ms(), NULL), OK);
  assert_int_equal(redeem(f, token, "[::1]:4003", now_ms(), NULL), DFNET_STATUS_RESOURCE_EXHAUSTED);
  store_audit_query_t q = {.target = "token:", .limit = 10};
  g_rows = 0;
  assert_int_equal(store__audit_query(f->s, &q, count_row, NULL, NULL, f->err, sizeof f->err), OK);
  assert_int_equal(g_rows, 1); /* token_create */
}

static void test_expired(void **state) {
  fixture_t *f = *state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .ttl_ms = 50};
  char token[TOKEN_TEXT_SIZE];
  create(f, &spec, token);
  usleep(100 * 1000);
  assert_int_equal(redeem(f, token, "10.0.0.1:1", now_ms(), NULL), DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_non_null(strstr(f->err, "expired"));
}

static void test_wrong_secret_and_unknown(void **state) {
  fixture_t *f = *state;
  token_spec_t spec = {.role = dfnet_v1_Role_OPERATOR};
  char token[TOKEN_TEXT_SIZE], wrong[TOKEN_TEXT_SIZE], why_wrong[sizeof f->err];
  create(f, &spec, token);
  memcpy(wrong, token, sizeof wrong);
  wrong[TOKEN_TEXT_SIZE - 2] = wrong[TOKEN_TEXT_SIZE - 2] == '0' ? '1' : '0';
  assert_int_equal(redeem(f, wrong, "10.0.0.2:1", now_ms(), NULL), DFNET_STATUS_UNAUTHENTICATED);
  snprintf(why_wrong, sizeof why_wrong, "%s", f->err);
  memcpy(wrong, "000000000000", TOKEN_ID_HEX); /* an id nobody has */
  assert_int_equal(redeem(f, wrong, "10.0.0.2:1", now_ms(), NULL), DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(f->err, "no such token, or a wrong secret"));
  assert_non_null(strstr(why_wrong, "no such token, or a wrong secret"));
  assert_int_equal(redeem(f, "nonsense", "10.0.0.2:1", now_ms(), NULL),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(redeem(f, NULL, "10.0.0.2:1", now_ms(), NULL), DFNET_STATUS_INVALID_ARGUMENT);
  /* the right one still works: nothing was used up */
  assert_int_equal(redeem(f, token, "10.0.0.3:1", now_ms(), NULL), OK);
}

static void test_revoked(void **state) {
  fixture_t *f = *state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .uses = 5};
  char token[TOKEN_TEXT_SIZE], id[TOKEN_ID_HEX + 1];
  create(f, &spec, token);
  snprintf(id, sizeof id, "%.*s", (int)TOKEN_ID_HEX, token);
  assert_int_equal(token__revoke(f->b, "ffffffffffff", "root", now_ms(), f->err, sizeof f->err),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(token__revoke(f->b, id, "root", now_ms(), f->err, sizeof f->err), OK);
  assert_int_equal(token__revoke(f->b, id, "root", now_ms(), f->err, sizeof f->err),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(redeem(f, token, "10.0.0.4:1", now_ms(), NULL), DFNET_STATUS_PERMISSION_DENIED);
  close_book(f);
  open_book(f);
  assert_int_equal(redeem(f, token, "10.0.0.4:2", now_ms(), NULL), DFNET_STATUS_PERMISSION_DENIED);
  store_audit_query_t q = {.target = "token:", .limit = 10};
  g_rows = 0;
  assert_int_equal(store__audit_query(f->s, &q, count_row, NULL, NULL, f->err, sizeof f->err), OK);
  assert_int_equal(g_rows, 2); /* token_create, token_revoke */
}

static void test_rate_limit(void **state) {
  fixture_t *f = *state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .uses = 3};
  char token[TOKEN_TEXT_SIZE], wrong[TOKEN_TEXT_SIZE];
  create(f, &spec, token);
  memcpy(wrong, token, sizeof wrong);
  wrong[TOKEN_TEXT_SIZE - 2] = wrong[TOKEN_TEXT_SIZE - 2] == '0' ? '1' : '0';
  uint64_t t0 = now_ms();
  for (unsigned i = 0; i < TOKEN_FAILURES_PER_MINUTE; i++)
    assert_int_equal(redeem(f, wrong, "198.51.100.9:4000", t0 + i, NULL),
                     DFNET_STATUS_UNAUTHENTICATED);
  /* the 11th attempt from there is refused before its token is looked at, even the right one
   * and from another port */
  assert_int_equal(redeem(f, token, "198.51.100.9:4001", t0 + 20, NULL),
                   DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(f->err, "try again later"));
  /* another address is not held up */
  assert_int_equal(redeem(f, token, "198.51.100.10:4000", t0 + 30, NULL), OK);
  /* a minute later the address may try again */
  assert_int_equal(redeem(f, token, "198.51.100.9:4002", t0 + 60000 + 10, NULL), OK);
}

static void test_bad_specs(void **state) {
  fixture_t *f = *state;
  char token[TOKEN_TEXT_SIZE];
  static const struct {
    const char *what;
    token_spec_t spec;
    const char *says;
  } cases[] = {
      {"admin", {.role = dfnet_v1_Role_ADMIN}, "host, operator or viewer"},
      {"both", {.role = dfnet_v1_Role_HOST, .name = "a", .name_prefix = "b"}, "not both"},
      {"bad name", {.role = dfnet_v1_Role_HOST, .name = "-x"}, "not a dfnet name"},
      {"bad prefix", {.role = dfnet_v1_Role_HOST, .name_prefix = "a b"}, "name prefix"},
      {"ttl", {.role = dfnet_v1_Role_HOST, .ttl_ms = TOKEN_TTL_MAX_MS + 1}, "ttl"},
      {"uses", {.role = dfnet_v1_Role_HOST, .uses = TOKEN_USES_MAX + 1}, "uses"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(
        token__create(f->b, &cases[i].spec, "root", now_ms(), token, NULL, f->err, sizeof f->err),
        DFNET_STATUS_INVALID_ARGUMENT);
    if (strstr(f->err, cases[i].says) == NULL)
      fail_msg("%s: wanted \"%s\" in \"%s\"", cases[i].what, cases[i].says, f->err);
  }
  store_label_t bad = {"a key", "v"};
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .labels = &bad, .label_count = 1};
  assert_int_equal(token__create(f->b, &spec, "root", now_ms(), token, NULL, f->err, sizeof f->err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(f->err, "label 1"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_and_redeem_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_uses_survive_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_secret_and_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
