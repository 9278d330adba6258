/* dfnet-manager: enrollment's certificate (manager/cert.h cert__enroll; issue 23 item 2 and
 * its "Tests"), the manager's own code on a real state directory (CA made by
 * dfnet_pki_init_state_dir) and a real SQLite store, no network:
 *   - a CSR made by dfnet_pki_csr_create and a host token for lab-c: a certificate of role
 *     host named lab-c for the CSR's key (the requester's key matches it; the CA verifies
 *     it), 30 days, recorded as issued with an audit row, the token's labels granted; the
 *     token is then used up;
 *   - a CSR with a bad signature: UNAUTHENTICATED, the token's use not taken;
 *   - a CSR naming another name than the token's: PERMISSION_DENIED, nothing taken; a prefix
 *     token takes names with its prefix only;
 *   - a name already enrolled under another key (a live certificate): ALREADY_EXISTS; once
 *     that certificate is revoked, the name enrols again;
 *   - an expired token, a wrong secret: refused as token__redeem says.
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

#include "lib/pki.h"
#include "manager/cert.h"
#include "manager/store.h"

#define OK DFNET_STATUS_OK

/* main.c's, which this test does not link. */
uint64_t mgr__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static mgr_t M;
static char g_err[1024];

static int setup(void **state) {
  (void)state;
  memset(&M, 0, sizeof M);
  snprintf(M.cfg.state_dir, sizeof M.cfg.state_dir, "/tmp/dfnet-test-enroll-XXXXXX");
  if (mkdtemp(M.cfg.state_dir) == NULL ||
      dfnet_pki_init_state_dir(M.cfg.state_dir, "mgr", NULL, 0, NULL) != OK ||
      store__open(M.cfg.state_dir, &M.store, g_err, sizeof g_err) != OK ||
      cert__init(&M, g_err, sizeof g_err) != OK)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cert__destroy(&M);
  store__close(M.store);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", M.cfg.state_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A token for spec; its text into token. */
static void token_for(const token_spec_t *spec, char token[TOKEN_TEXT_SIZE]) {
  if (token__create(cert__tokens(&M), spec, "root", mgr__wall_ms(), token, NULL, g_err,
                    sizeof g_err) != OK)
    fail_msg("token: %s", g_err);
}

typedef struct csr {
  dfnet_pki_key_t *key;
  uint8_t *der;
  size_t len;
} csr_t;

static csr_t csr_for(const char *name) {
  csr_t c = {0};
  assert_int_equal(dfnet_pki_csr_create(name, &c.key, &c.der, &c.len), OK);
  return c;
}

static void csr_free(csr_t *c) {
  dfnet_pki_key_free(c->key);
  free(c->der);
}

static dfnet_status_t enroll(const char *token, const csr_t *c, cert_enrolled_t *e) {
  return cert__enroll(&M, token, c->der, c->len, "192.0.2.50:40000", 0, e, g_err, sizeof g_err);
}

static size_t g_rows;
static dfnet_status_t count_row(void *arg, const store_audit_row_t *row) {
  (void)arg;
  assert_string_equal(store__audit_action_str(row->action), "enroll");
  g_rows++;
  return OK;
}

static void test_enroll_host(void **state) {
  (void)state;
  store_label_t labels[] = {{"rack", "3"}};
  token_spec_t spec = {
      .role = dfnet_v1_Role_HOST, .name = "lab-c", .labels = labels, .label_count = 1};
  char token[TOKEN_TEXT_SIZE];
  token_for(&spec, token);
  csr_t c = csr_for("lab-c");
  cert_enrolled_t e;
  if (enroll(token, &c, &e) != OK)
    fail_msg("enroll: %s", g_err);
  /* the certificate is the requester's: its key pairs with it; our CA signed it */
  assert_int_equal(dfnet_pki_key_check_pair(e.cert, c.key), OK);
  char ca_path[1200];
  snprintf(ca_path, sizeof ca_path, "%s/ca.crt", M.cfg.state_dir);
  dfnet_pki_cert_t *ca = NULL;
  assert_int_equal(dfnet_pki_cert_load(ca_path, &ca), OK);
  assert_int_equal(dfnet_pki_cert_verify(ca, e.cert, NULL), OK);
  dfnet_pki_cert_free(ca);
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(e.cert, &info), OK);
  assert_string_equal(info.cn, "lab-c");
  assert_int_equal(info.role, DFNET_PKI_ROLE_HOST);
  assert_string_equal(info.serial_hex, e.serial);
  time_t days = (info.not_after - time(NULL) + 3600) / 86400;
  assert_int_equal(days, 30);
  assert_int_equal(e.grant.label_count, 1);
  assert_string_equal(e.grant.labels[0].key, "rack");
  dfnet_pki_cert_free(e.cert);
  /* recorded: issued, with its audit row */
  char serial[STORE_SERIAL_MAX + 1];
  uint64_t until;
  assert_true(cert__live_of_name(&M, "lab-c", mgr__wall_ms(), serial, &until));
  assert_string_equal(serial, e.serial);
  char target[64];
  snprintf(target, sizeof target, "cert:%s", e.serial);
  store_audit_query_t q = {.target = target, .exact = true, .limit = 10};
  g_rows = 0;
  assert_int_equal(store__audit_query(M.store, &q, count_row, NULL, NULL, g_err, sizeof g_err), OK);
  assert_int_equal(g_rows, 1);
  /* single use: a second requester is refused */
  csr_t c2 = csr_for("lab-c");
  assert_int_equal(enroll(token, &c2, &e), DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_null(e.cert);
  csr_free(&c2);
  csr_free(&c);
}

static void test_bad_signature_takes_nothing(void **state) {
  (void)state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .name = "lab-d"};
  char token[TOKEN_TEXT_SIZE];
  token_for(&spec, token);
  csr_t c = csr_for("lab-d");
  c.der[c.len - 5] ^= 0x01; /* in the signature, at the end of the DER */
  cert_enrolled_t e;
  assert_int_equal(enroll(token, &c, &e), DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(g_err, "signature"));
  c.der[c.len - 5] ^= 0x01;
  assert_int_equal(enroll(token, &c, &e), OK); /* the token's one use was still there */
  dfnet_pki_cert_free(e.cert);
  uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
  csr_t bad = {.der = junk, .len = sizeof junk};
  assert_int_equal(enroll(token, &bad, &e), DFNET_STATUS_INVALID_ARGUMENT);
  csr_free(&c);
}

static void test_other_name_refused(void **state) {
  (void)state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .name = "lab-e"};
  char token[TOKEN_TEXT_SIZE];
  token_for(&spec, token);
  csr_t c = csr_for("lab-x");
  cert_enrolled_t e;
  assert_int_equal(enroll(token, &c, &e), DFNET_STATUS_PERMISSION_DENIED);
  assert_non_null(strstr(g_err, "the token enrols lab-e, the CSR names lab-x"));
  csr_free(&c);
  token_spec_t pre = {.role = dfnet_v1_Role_VIEWER, .name_prefix = "intern-", .uses = 2};
  token_for(&pre, token);
  c = csr_for("alice");
  assert_int_equal(enroll(token, &c, &e), DFNET_STATUS_PERMISSION_DENIED);
  csr_free(&c);
  c = csr_for("intern-alice");
  assert_int_equal(enroll(token, &c, &e), OK);
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(e.cert, &info), OK);
  assert_int_equal(info.role, DFNET_PKI_ROLE_VIEWER);
  dfnet_pki_cert_free(e.cert);
  csr_free(&c);
}

static void test_name_enrolled_under_another_key(void **state) {
  (void)state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .name = "lab-f", .uses = 3};
  char token[TOKEN_TEXT_SIZE];
  token_for(&spec, token);
  csr_t first = csr_for("lab-f"), second = csr_for("lab-f");
  cert_enrolled_t e, e2;
  assert_int_equal(enroll(token, &first, &e), OK);
  assert_int_equal(enroll(token, &second, &e2), DFNET_STATUS_ALREADY_EXISTS);
  assert_non_null(strstr(g_err, "enrolled already"));
  assert_non_null(strstr(g_err, e.serial));
  /* revoked: the name is free again (the token had uses left: none was taken) */
  cert_revoke_result_t r;
  assert_int_equal(cert__revoke(&M, "lab-f", "board replaced", "root", &r, g_err, sizeof g_err),
                   OK);
  assert_int_equal(enroll(token, &second, &e2), OK);
  assert_int_equal(e2.grant.uses_left, 1);
  dfnet_pki_cert_free(e.cert);
  dfnet_pki_cert_free(e2.cert);
  csr_free(&first);
  csr_free(&second);
}

static void test_token_refusals(void **state) {
  (void)state;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .ttl_ms = 50};
  char token[TOKEN_TEXT_SIZE];
  token_for(&spec, token);
  csr_t c = csr_for("lab-g");
  cert_enrolled_t e;
  usleep(100 * 1000);
  assert_int_equal(enroll(token, &c, &e), DFNET_STATUS_DEADLINE_EXCEEDED);
  token[TOKEN_TEXT_SIZE - 2] = token[TOKEN_TEXT_SIZE - 2] == '0' ? '1' : '0';
  assert_int_equal(enroll(token, &c, &e), DFNET_STATUS_UNAUTHENTICATED);
  assert_int_equal(enroll("garbage", &c, &e), DFNET_STATUS_INVALID_ARGUMENT);
  csr_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_enroll_host, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_signature_takes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_name_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_enrolled_under_another_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_token_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
