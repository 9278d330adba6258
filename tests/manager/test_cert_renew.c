/* dfnet-manager: renewal's certificate (manager/cert.h cert__renew; issue 23 item 3 and its
 * "Tests"), the manager's own code on a real state directory and a real SQLite store, no
 * network: a host enrolled with a token (cert__enroll) and a session presenting its
 * certificate (sessions and cert records as sessions.c makes them):
 *   - a new key's CSR of the same name: a certificate of role host and that name for the new
 *     key, verified by the CA, recorded as issued with an audit row cert_renew;
 *   - a CSR naming another name: PERMISSION_DENIED; a CSR with a bad signature:
 *     UNAUTHENTICATED;
 *   - once the certificate is revoked: UNAUTHENTICATED ("was revoked"), nothing issued.
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
static mgr_session_t S;
static char g_err[1024];
static cert_enrolled_t g_enrolled;

/* A state directory, a store, lab-r enrolled, and a session presenting its certificate. */
static int setup(void **state) {
  (void)state;
  memset(&M, 0, sizeof M);
  memset(&S, 0, sizeof S);
  snprintf(M.cfg.state_dir, sizeof M.cfg.state_dir, "/tmp/dfnet-test-renew-XXXXXX");
  if (mkdtemp(M.cfg.state_dir) == NULL ||
      dfnet_pki_init_state_dir(M.cfg.state_dir, "mgr", NULL, 0, NULL) != OK ||
      store__open(M.cfg.state_dir, &M.store, g_err, sizeof g_err) != OK ||
      cert__init(&M, g_err, sizeof g_err) != OK)
    return -1;
  token_spec_t spec = {.role = dfnet_v1_Role_HOST, .name = "lab-r"};
  char token[TOKEN_TEXT_SIZE];
  dfnet_pki_key_t *key = NULL;
  uint8_t *der = NULL;
  size_t len = 0;
  if (token__create(cert__tokens(&M), &spec, "root", mgr__wall_ms(), token, NULL, g_err,
                    sizeof g_err) != OK ||
      dfnet_pki_csr_create("lab-r", &key, &der, &len) != OK ||
      cert__enroll(&M, token, der, len, "192.0.2.9:1000", 0, &g_enrolled, g_err, sizeof g_err) !=
          OK)
    return -1;
  dfnet_pki_key_free(key);
  free(der);
  S.id = 7;
  S.kind = SESSION_HOST;
  S.role = dfnet_v1_Role_HOST;
  snprintf(S.name, sizeof S.name, "lab-r");
  snprintf(S.address, sizeof S.address, "192.0.2.9:1001");
  mgr_session_t *s = &S;
  HASH_ADD(hh, M.sessions, id, sizeof s->id, s);
  dfnet_session_info_t info = {.id = S.id,
                               .peer_name = "lab-r",
                               .role_name = "host",
                               .role = dfnet_v1_Role_HOST,
                               .subprotocol = DFNET_SUBPROTOCOL_HOST,
                               .peer_address = S.address,
                               .serial_hex = g_enrolled.serial,
                               .not_after = (int64_t)time(NULL) + 3600};
  cert__session_open(&M, &info);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  HASH_CLEAR(hh, M.sessions);
  cert__destroy(&M);
  store__close(M.store);
  dfnet_pki_cert_free(g_enrolled.cert);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", M.cfg.state_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* cert__renew of a new key's CSR naming `name`; the key into *key_out (may be NULL). */
static dfnet_status_t renew(const char *name, dfnet_pki_cert_t **out, char *serial,
                            dfnet_pki_key_t **key_out) {
  dfnet_pki_key_t *key = NULL;
  uint8_t *der = NULL;
  size_t len = 0;
  assert_int_equal(dfnet_pki_csr_create(name, &key, &der, &len), OK);
  dfnet_status_t st = cert__renew(&M, &S, der, len, out, serial, g_err, sizeof g_err);
  free(der);
  if (key_out != NULL)
    *key_out = key;
  else
    dfnet_pki_key_free(key);
  return st;
}

static size_t g_renews;
static dfnet_status_t count_renew(void *arg, const store_audit_row_t *row) {
  (void)arg;
  if (strcmp(store__audit_action_str(row->action), "cert_renew") == 0)
    g_renews++;
  return OK;
}

static void test_renew(void **state) {
  (void)state;
  dfnet_pki_cert_t *cert = NULL, *ca = NULL;
  dfnet_pki_key_t *key = NULL;
  char serial[STORE_SERIAL_MAX + 1];
  assert_int_equal(renew("lab-r", &cert, serial, &key), OK);
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(cert, &info), OK);
  assert_string_equal(info.cn, "lab-r");
  assert_int_equal(info.role, DFNET_PKI_ROLE_HOST);
  assert_string_equal(info.serial_hex, serial);
  assert_string_not_equal(serial, g_enrolled.serial);
  assert_int_equal(dfnet_pki_key_check_pair(cert, key), OK);
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", M.cfg.state_dir, DFNET_PKI_CA_CERT_FILE);
  assert_int_equal(dfnet_pki_cert_load(path, &ca), OK);
  assert_int_equal(dfnet_pki_cert_verify(ca, cert, NULL), OK);
  store_audit_query_t q = {.limit = 100};
  g_renews = 0;
  assert_int_equal(store__audit_query(M.store, &q, count_renew, NULL, NULL, g_err, sizeof g_err),
                   OK);
  assert_int_equal(g_renews, 1);
  dfnet_pki_cert_free(ca);
  dfnet_pki_cert_free(cert);
  dfnet_pki_key_free(key);
}

static void test_renew_refusals(void **state) {
  (void)state;
  dfnet_pki_cert_t *cert = NULL;
  char serial[STORE_SERIAL_MAX + 1];
  assert_int_equal(renew("lab-x", &cert, serial, NULL), DFNET_STATUS_PERMISSION_DENIED);
  assert_null(cert);
  uint8_t junk[64];
  memset(junk, 0x30, sizeof junk);
  assert_int_not_equal(cert__renew(&M, &S, junk, sizeof junk, &cert, serial, g_err, sizeof g_err),
                       OK);
  cert_revoke_result_t r;
  assert_int_equal(cert__revoke(&M, "lab-r", "stolen", "root", &r, g_err, sizeof g_err), OK);
  assert_int_equal(renew("lab-r", &cert, serial, NULL), DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(g_err, "was revoked"));
  assert_null(cert);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_renew, setup, teardown),
      cmocka_unit_test_setup_teardown(test_renew_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
