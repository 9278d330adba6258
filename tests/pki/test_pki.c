/* lib/pki*.c: CA and leaf certificates written to real files in a temporary directory,
 * read back, verified, and cross-checked with the openssl CLI (the reference). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/pki.h"

static char tmpdir[256];

/* ---- helpers ---------------------------------------------------------------------- */

static const char *path_in(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static mode_t file_mode(const char *path) {
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  return sb.st_mode & 07777;
}

/* Run a shell command; its stdout (up to size-1 bytes) into out. Returns the exit code. */
static int run(const char *cmd, char *out, size_t size) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = 0;
  if (out != NULL) {
    n = fread(out, 1, size - 1, p);
    out[n] = '\0';
  } else {
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
  }
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Capture what the code under test logs on stderr. */
static int saved_stderr = -1;
static char capture_path[PATH_MAX];

static void capture_begin(void) {
  snprintf(capture_path, sizeof capture_path, "%s/stderr.log", tmpdir);
  fflush(stderr);
  saved_stderr = dup(STDERR_FILENO);
  int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  dup2(fd, STDERR_FILENO);
  close(fd);
}

static void capture_end(char *out, size_t size) {
  fflush(stderr);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  FILE *f = fopen(capture_path, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, size - 1, f);
  out[n] = '\0';
  fclose(f);
  unlink(capture_path);
  fputs(out, stderr); /* keep it visible in the test output */
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* A CA kept for the whole run (key generation is cheap, but one is enough). */
static dfnet_pki_cert_t *ca;
static dfnet_pki_key_t *ca_key;

static void issue(const char *name, dfnet_pki_role_t role, const char *const *sans, size_t nsans,
                  dfnet_pki_cert_t **cert, dfnet_pki_key_t **key) {
  dfnet_pki_leaf_params_t p = {
      .name = name, .role = role, .sans = sans, .san_count = nsans, .days = 30};
  assert_int_equal(dfnet_pki_leaf_issue(ca, ca_key, &p, cert, key), DFNET_STATUS_OK);
  assert_non_null(*cert);
  assert_non_null(*key);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int group_setup(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/dfnet-pki-test-XXXXXX", base);
  if (mkdtemp(tmpdir) == NULL)
    return -1;
  if (dfnet_pki_ca_create("dfnet CA test", &ca, &ca_key) != DFNET_STATUS_OK)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  dfnet_pki_cert_free(ca);
  dfnet_pki_key_free(ca_key);
  return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_role_names(void **state) {
  (void)state;
  static const struct {
    const char *text;
    dfnet_pki_role_t role;
  } good[] = {{"host", DFNET_PKI_ROLE_HOST},
              {"admin", DFNET_PKI_ROLE_ADMIN},
              {"operator", DFNET_PKI_ROLE_OPERATOR},
              {"viewer", DFNET_PKI_ROLE_VIEWER},
              {"manager", DFNET_PKI_ROLE_MANAGER}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    dfnet_pki_role_t r = DFNET_PKI_ROLE_NONE;
    assert_int_equal(dfnet_pki_role_parse(good[i].text, &r), DFNET_STATUS_OK);
    assert_int_equal(r, good[i].role);
    assert_string_equal(dfnet_pki_role_str(r), good[i].text);
  }
  static const char *const bad[] = {"", "Host", "none", "root", "viewer ", "hostx"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    dfnet_pki_role_t r = DFNET_PKI_ROLE_VIEWER;
    assert_int_equal(dfnet_pki_role_parse(bad[i], &r), DFNET_STATUS_INVALID_ARGUMENT);
    assert_int_equal(r, DFNET_PKI_ROLE_VIEWER); /* untouched */
  }
  dfnet_pki_role_t r;
  assert_int_equal(dfnet_pki_role_parse(NULL, &r), DFNET_STATUS_INVALID_ARGUMENT);
  assert_string_equal(dfnet_pki_role_str(DFNET_PKI_ROLE_NONE), "none");
  assert_string_equal(dfnet_pki_role_str((dfnet_pki_role_t)99), "none");

  assert_true(dfnet_pki_name_valid("lab-a"));
  assert_true(dfnet_pki_name_valid("board_7.lab"));
  assert_false(dfnet_pki_name_valid(""));
  assert_false(dfnet_pki_name_valid("-x"));
  assert_false(dfnet_pki_name_valid(".hidden"));
  assert_false(dfnet_pki_name_valid("a/b"));
  assert_false(dfnet_pki_name_valid("a,OU=admin"));
  char longest[DFNET_PKI_NAME_MAX + 2];
  memset(longest, 'n', sizeof longest - 1);
  longest[DFNET_PKI_NAME_MAX + 1] = '\0';
  assert_false(dfnet_pki_name_valid(longest)); /* 65 characters */
  longest[DFNET_PKI_NAME_MAX] = '\0';
  assert_true(dfnet_pki_name_valid(longest)); /* 64 */
  assert_false(dfnet_pki_name_valid(NULL));
}

/* CA + leaf, written and read back: the chain verifies, the subject and SANs read back. */
static void test_ca_and_leaf_roundtrip(void **state) {
  (void)state;
  const char *sans[] = {"lab-a.local", "10.0.0.2", "::1", "fe80::1:2"};
  dfnet_pki_cert_t *leaf = NULL;
  dfnet_pki_key_t *key = NULL;
  time_t before = time(NULL);
  issue("lab-a", DFNET_PKI_ROLE_HOST, sans, 4, &leaf, &key);
  time_t after = time(NULL);

  assert_int_equal(dfnet_pki_cert_write(ca, path_in("rt-ca.crt")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_write(leaf, path_in("rt.crt")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_write(key, path_in("rt.key")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_pem_write(leaf, key, path_in("rt.pem")), DFNET_STATUS_OK);
  assert_int_equal(file_mode(path_in("rt.key")), 0600);
  assert_int_equal(file_mode(path_in("rt.pem")), 0600);
  assert_int_equal(file_mode(path_in("rt.crt")), 0644);

  dfnet_pki_cert_t *ca2 = NULL, *leaf2 = NULL, *leaf3 = NULL;
  dfnet_pki_key_t *key2 = NULL, *key3 = NULL;
  assert_int_equal(dfnet_pki_cert_load(path_in("rt-ca.crt"), &ca2), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_load(path_in("rt.crt"), &leaf2), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_load(path_in("rt.key"), &key2), DFNET_STATUS_OK);
  /* The combined PEM gives both back. */
  assert_int_equal(dfnet_pki_cert_load(path_in("rt.pem"), &leaf3), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_load(path_in("rt.pem"), &key3), DFNET_STATUS_OK);

  uint32_t reasons = 99;
  assert_int_equal(dfnet_pki_cert_verify(ca2, leaf2, &reasons), DFNET_STATUS_OK);
  assert_int_equal(reasons, 0);
  assert_int_equal(dfnet_pki_cert_verify(ca2, ca2, NULL), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_check_pair(leaf2, key2), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_check_pair(leaf3, key3), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_check_pair(leaf2, key3), DFNET_STATUS_OK);

  size_t l1, l2;
  const uint8_t *d1 = dfnet_pki_cert_der(leaf, &l1);
  const uint8_t *d2 = dfnet_pki_cert_der(leaf3, &l2);
  assert_int_equal(l1, l2);
  assert_memory_equal(d1, d2, l1);

  dfnet_pki_cert_info_t *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_int_equal(dfnet_pki_cert_info(leaf2, info), DFNET_STATUS_OK);
  assert_string_equal(info->cn, "lab-a");
  assert_string_equal(info->ou, "host");
  assert_int_equal(info->role, DFNET_PKI_ROLE_HOST);
  assert_string_equal(info->issuer_cn, "dfnet CA test");
  assert_false(info->is_ca);
  assert_int_equal(strlen(info->serial_hex), 32); /* 16 octets, positive, top nibble 4..7 */
  assert_true(info->serial_hex[0] >= '4' && info->serial_hex[0] <= '7');
  assert_true(info->not_before >= before - 300 && info->not_before <= after - 300);
  assert_true(info->not_after >= before + 30 * 86400 && info->not_after <= after + 30 * 86400);
  assert_int_equal(info->san_count, 4);
  assert_false(info->sans_truncated);
  assert_int_equal(info->sans[0].type, DFNET_PKI_SAN_DNS);
  assert_string_equal(info->sans[0].text, "lab-a.local");
  assert_int_equal(info->sans[1].type, DFNET_PKI_SAN_IP);
  assert_string_equal(info->sans[1].text, "10.0.0.2");
  assert_int_equal(info->sans[2].type, DFNET_PKI_SAN_IP);
  assert_string_equal(info->sans[2].text, "::1");
  assert_string_equal(info->sans[3].text, "fe80::1:2");

  assert_int_equal(dfnet_pki_cert_info(ca2, info), DFNET_STATUS_OK);
  assert_string_equal(info->cn, "dfnet CA test");
  assert_string_equal(info->ou, "");
  assert_int_equal(info->role, DFNET_PKI_ROLE_NONE);
  assert_true(info->is_ca);
  assert_int_equal(info->san_count, 0);
  assert_true(info->not_after - info->not_before >= (time_t)DFNET_PKI_CA_DAYS * 86400);

  /* Host matching: IPs against iPAddress, names against dNSName, never the CN here. */
  assert_true(dfnet_pki_cert_matches_host(leaf2, "10.0.0.2"));
  assert_true(dfnet_pki_cert_matches_host(leaf2, "::1"));
  assert_true(dfnet_pki_cert_matches_host(leaf2, "0:0::1"));
  assert_true(dfnet_pki_cert_matches_host(leaf2, "LAB-A.local"));
  assert_false(dfnet_pki_cert_matches_host(leaf2, "10.0.0.3"));
  assert_false(dfnet_pki_cert_matches_host(leaf2, "127.0.0.1"));
  assert_false(dfnet_pki_cert_matches_host(leaf2, "lab-a")); /* CN only counts without SANs */
  assert_false(dfnet_pki_cert_matches_host(leaf2, "x.lab-a.local"));
  assert_false(dfnet_pki_cert_matches_host(leaf2, NULL));

  free(info);
  dfnet_pki_cert_free(leaf);
  dfnet_pki_cert_free(leaf2);
  dfnet_pki_cert_free(leaf3);
  dfnet_pki_cert_free(ca2);
  dfnet_pki_key_free(key);
  dfnet_pki_key_free(key2);
  dfnet_pki_key_free(key3);
}

static void test_wildcard_and_cn_match(void **state) {
  (void)state;
  const char *sans[] = {"*.lab.example"};
  dfnet_pki_cert_t *c = NULL, *bare = NULL;
  dfnet_pki_key_t *k = NULL, *kb = NULL;
  issue("wild", DFNET_PKI_ROLE_VIEWER, sans, 1, &c, &k);
  assert_true(dfnet_pki_cert_matches_host(c, "a.lab.example"));
  assert_false(dfnet_pki_cert_matches_host(c, "a.b.lab.example"));
  assert_false(dfnet_pki_cert_matches_host(c, "lab.example"));
  issue("bare-name", DFNET_PKI_ROLE_VIEWER, NULL, 0, &bare, &kb);
  assert_true(dfnet_pki_cert_matches_host(bare, "bare-name"));
  assert_false(dfnet_pki_cert_matches_host(bare, "127.0.0.1"));
  dfnet_pki_cert_free(c);
  dfnet_pki_cert_free(bare);
  dfnet_pki_key_free(k);
  dfnet_pki_key_free(kb);
}

/* What we wrote, as openssl reads it: SANs (IPs too), extensions, subject, chain. */
static void test_openssl_reads_what_we_wrote(void **state) {
  (void)state;
  const char *sans[] = {"board.lab", "192.168.7.9", "2001:db8::42"};
  dfnet_pki_cert_t *leaf = NULL;
  dfnet_pki_key_t *key = NULL;
  issue("board-7", DFNET_PKI_ROLE_OPERATOR, sans, 3, &leaf, &key);
  assert_int_equal(dfnet_pki_cert_write(ca, path_in("ossl-ca.crt")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_write(leaf, path_in("ossl.crt")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_write(key, path_in("ossl.key")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_pem_write(leaf, key, path_in("ossl.pem")), DFNET_STATUS_OK);

  char *out = malloc(65536);
  assert_non_null(out);
  char cmd[PATH_MAX * 3];
  snprintf(cmd, sizeof cmd, DFNET_OPENSSL " x509 -in '%s' -text -noout", path_in("ossl.crt"));
  assert_int_equal(run(cmd, out, 65536), 0);
  static const char *const leaf_expect[] = {
      "Version: 3 (0x2)",
      "Signature Algorithm: ecdsa-with-SHA256",
      "Issuer: CN = dfnet CA test, O = dfnet",
      "Subject: CN = board-7, OU = operator, O = dfnet",
      "ASN1 OID: prime256v1",
      "X509v3 Basic Constraints: \n                CA:FALSE",
      "X509v3 Key Usage: critical\n                Digital Signature\n",
      "X509v3 Extended Key Usage: \n                TLS Web Server Authentication, TLS Web "
      "Client Authentication\n",
      "X509v3 Subject Alternative Name: \n                DNS:board.lab, IP "
      "Address:192.168.7.9, IP Address:2001:DB8:0:0:0:0:0:42\n",
      "X509v3 Subject Key Identifier",
      "X509v3 Authority Key Identifier",
  };
  for (size_t i = 0; i < sizeof leaf_expect / sizeof leaf_expect[0]; i++) {
    if (strstr(out, leaf_expect[i]) == NULL)
      fail_msg("openssl x509 -text lacks \"%s\" in:\n%s", leaf_expect[i], out);
  }

  snprintf(cmd, sizeof cmd, DFNET_OPENSSL " x509 -in '%s' -text -noout", path_in("ossl-ca.crt"));
  assert_int_equal(run(cmd, out, 65536), 0);
  static const char *const ca_expect[] = {
      "Subject: CN = dfnet CA test, O = dfnet",
      "Issuer: CN = dfnet CA test, O = dfnet",
      "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0\n",
      "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign\n",
      "X509v3 Subject Key Identifier",
      "ASN1 OID: prime256v1",
  };
  for (size_t i = 0; i < sizeof ca_expect / sizeof ca_expect[0]; i++) {
    if (strstr(out, ca_expect[i]) == NULL)
      fail_msg("openssl x509 -text (CA) lacks \"%s\" in:\n%s", ca_expect[i], out);
  }

  /* The serial is positive and 16 octets: openssl prints 16 hex pairs. */
  snprintf(cmd, sizeof cmd, DFNET_OPENSSL " x509 -in '%s' -noout -serial", path_in("ossl.crt"));
  assert_int_equal(run(cmd, out, 65536), 0);
  assert_int_equal(strlen(out), strlen("serial=") + 32 + 1);

  /* The leaf's AKI is the CA's SKI. */
  char ski[256], aki[256];
  snprintf(cmd, sizeof cmd,
           DFNET_OPENSSL " x509 -in '%s' -noout -ext subjectKeyIdentifier | tail -n 1",
           path_in("ossl-ca.crt"));
  assert_int_equal(run(cmd, ski, sizeof ski), 0);
  snprintf(cmd, sizeof cmd,
           DFNET_OPENSSL " x509 -in '%s' -noout -ext authorityKeyIdentifier | tail -n 1",
           path_in("ossl.crt"));
  assert_int_equal(run(cmd, aki, sizeof aki), 0);
  char *ski_hex = ski + strspn(ski, " ");
  assert_non_null(strstr(aki, ski_hex));

  /* openssl's own chain check, for TLS client and server use. */
  snprintf(cmd, sizeof cmd,
           DFNET_OPENSSL " verify -purpose sslserver -CAfile '%s' '%s' && " DFNET_OPENSSL
                         " verify -purpose sslclient -CAfile '%s' '%s'",
           path_in("ossl-ca.crt"), path_in("ossl.crt"), path_in("ossl-ca.crt"),
           path_in("ossl.crt"));
  assert_int_equal(run(cmd, out, 65536), 0);
  /* ... and the key file is a valid P-256 key matching the certificate. */
  snprintf(cmd, sizeof cmd,
           DFNET_OPENSSL " pkey -in '%s' -pubout | cmp - <(" DFNET_OPENSSL
                         " x509 -in '%s' -noout -pubkey)",
           path_in("ossl.key"), path_in("ossl.pem"));
  char bash_cmd[PATH_MAX * 4];
  snprintf(bash_cmd, sizeof bash_cmd, "bash -c \"%s\"", cmd);
  assert_int_equal(run(bash_cmd, NULL, 0), 0);

  free(out);
  dfnet_pki_cert_free(leaf);
  dfnet_pki_key_free(key);
}

/* Keys are 0600 from their first byte: even with umask 0, and replacing a 0644 file. */
static void test_key_mode_and_atomic_replace(void **state) {
  (void)state;
  mode_t old = umask(0);
  write_text(path_in("replace.key"), "old contents\n");
  chmod(path_in("replace.key"), 0644);
  assert_int_equal(dfnet_pki_key_write(ca_key, path_in("replace.key")), DFNET_STATUS_OK);
  assert_int_equal(file_mode(path_in("replace.key")), 0600);
  assert_int_equal(dfnet_pki_cert_write(ca, path_in("replace.crt")), DFNET_STATUS_OK);
  assert_int_equal(file_mode(path_in("replace.crt")), 0644);
  umask(old);

  dfnet_pki_key_t *k = NULL;
  assert_int_equal(dfnet_pki_key_load(path_in("replace.key"), &k), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_check_pair(ca, k), DFNET_STATUS_OK);
  dfnet_pki_key_free(k);

  /* No temporary file is left behind. */
  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    assert_null(strstr(e->d_name, ".tmp."));
  closedir(d);

  /* Writing into a directory that does not exist: NOT_FOUND, nothing created. */
  assert_int_equal(dfnet_pki_key_write(ca_key, path_in("no-such-dir/x.key")),
                   DFNET_STATUS_NOT_FOUND);
  /* A group-readable key still loads, with a warning. */
  chmod(path_in("replace.key"), 0640);
  char log[4096];
  capture_begin();
  assert_int_equal(dfnet_pki_key_load(path_in("replace.key"), &k), DFNET_STATUS_OK);
  capture_end(log, sizeof log);
  assert_non_null(strstr(log, "readable by others"));
  dfnet_pki_key_free(k);
}

static void test_key_mismatch(void **state) {
  (void)state;
  dfnet_pki_cert_t *a = NULL, *b = NULL;
  dfnet_pki_key_t *ka = NULL, *kb = NULL;
  issue("mm-a", DFNET_PKI_ROLE_ADMIN, NULL, 0, &a, &ka);
  issue("mm-b", DFNET_PKI_ROLE_ADMIN, NULL, 0, &b, &kb);
  assert_int_equal(dfnet_pki_key_check_pair(a, ka), DFNET_STATUS_OK);
  char log[4096];
  capture_begin();
  assert_int_equal(dfnet_pki_key_check_pair(a, kb), DFNET_STATUS_FAILED_PRECONDITION);
  capture_end(log, sizeof log);
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "mm-a"));
  assert_non_null(strstr(log, "does not match"));
  assert_non_null(strstr(log, "mbedTLS -0x"));
  assert_int_equal(dfnet_pki_key_check_pair(b, ka), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(dfnet_pki_key_check_pair(NULL, ka), DFNET_STATUS_INVALID_ARGUMENT);

  /* A CA key that does not belong to the CA certificate cannot issue. */
  dfnet_pki_leaf_params_t p = {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = 1};
  dfnet_pki_cert_t *c = (dfnet_pki_cert_t *)1;
  dfnet_pki_key_t *k = (dfnet_pki_key_t *)1;
  assert_int_equal(dfnet_pki_leaf_issue(ca, ka, &p, &c, &k), DFNET_STATUS_FAILED_PRECONDITION);
  assert_null(c);
  assert_null(k);
  /* Nor can a leaf act as a CA. */
  assert_int_equal(dfnet_pki_leaf_issue(a, ka, &p, &c, &k), DFNET_STATUS_FAILED_PRECONDITION);
  assert_null(c);

  dfnet_pki_cert_free(a);
  dfnet_pki_cert_free(b);
  dfnet_pki_key_free(ka);
  dfnet_pki_key_free(kb);
}

static void test_missing_file(void **state) {
  (void)state;
  dfnet_pki_cert_t *c = (dfnet_pki_cert_t *)1;
  dfnet_pki_key_t *k = (dfnet_pki_key_t *)1;
  char log[4096];
  capture_begin();
  assert_int_equal(dfnet_pki_cert_load(path_in("absent.crt"), &c), DFNET_STATUS_NOT_FOUND);
  capture_end(log, sizeof log);
  assert_null(c);
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, path_in("absent.crt")));
  assert_non_null(strstr(log, "NOT_FOUND"));
  assert_int_equal(dfnet_pki_key_load(path_in("absent.key"), &k), DFNET_STATUS_NOT_FOUND);
  assert_null(k);
  assert_int_equal(dfnet_pki_cert_load(path_in("absent-dir/x.crt"), &c), DFNET_STATUS_NOT_FOUND);
  /* A directory is not a certificate. */
  assert_int_equal(dfnet_pki_cert_load(tmpdir, &c), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_pki_cert_load(NULL, &c), DFNET_STATUS_INVALID_ARGUMENT);
}

/* Garbage, truncated, encrypted and foreign files: INVALID_ARGUMENT with mbedTLS's text. */
static void test_bad_files(void **state) {
  (void)state;
  write_text(path_in("garbage.crt"), "this is not a certificate\n");
  write_text(path_in("badpem.crt"),
             "-----BEGIN CERTIFICATE-----\nnot*base64!!\n-----END CERTIFICATE-----\n");
  write_text(path_in("empty.crt"), "");
  dfnet_pki_cert_t *c = NULL;
  dfnet_pki_key_t *k = NULL;
  char log[4096];
  assert_int_equal(dfnet_pki_cert_load(path_in("garbage.crt"), &c), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_pki_cert_load(path_in("empty.crt"), &c), DFNET_STATUS_INVALID_ARGUMENT);
  capture_begin();
  assert_int_equal(dfnet_pki_cert_load(path_in("badpem.crt"), &c), DFNET_STATUS_INVALID_ARGUMENT);
  capture_end(log, sizeof log);
  assert_null(c);
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "PEM")); /* mbedTLS's text: "PEM - ..." */
  assert_non_null(strstr(log, "mbedTLS -0x"));

  assert_int_equal(dfnet_pki_key_load(path_in("garbage.crt"), &k), DFNET_STATUS_INVALID_ARGUMENT);
  assert_null(k);
  /* A certificate file is not a key. */
  assert_int_equal(dfnet_pki_cert_write(ca, path_in("bf-ca.crt")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_load(path_in("bf-ca.crt"), &k), DFNET_STATUS_INVALID_ARGUMENT);
  /* A key file is not a certificate. */
  assert_int_equal(dfnet_pki_key_write(ca_key, path_in("bf-ca.key")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_load(path_in("bf-ca.key"), &c), DFNET_STATUS_INVALID_ARGUMENT);

  /* A passphrase-protected key (made by openssl from ours). */
  char cmd[PATH_MAX * 3];
  snprintf(cmd, sizeof cmd,
           DFNET_OPENSSL " ec -in '%s' -aes256 -passout pass:secret -out '%s' 2>/dev/null",
           path_in("bf-ca.key"), path_in("encrypted.key"));
  assert_int_equal(run(cmd, NULL, 0), 0);
  capture_begin();
  assert_int_equal(dfnet_pki_key_load(path_in("encrypted.key"), &k), DFNET_STATUS_INVALID_ARGUMENT);
  capture_end(log, sizeof log);
  assert_null(k);
  assert_non_null(strstr(log, "passphrase"));
  /* Also as encrypted PKCS#8. */
  snprintf(cmd, sizeof cmd,
           DFNET_OPENSSL " pkcs8 -topk8 -in '%s' -passout pass:secret -out '%s' 2>/dev/null",
           path_in("bf-ca.key"), path_in("encrypted8.key"));
  assert_int_equal(run(cmd, NULL, 0), 0);
  assert_int_equal(dfnet_pki_key_load(path_in("encrypted8.key"), &k),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* Unencrypted PKCS#8 of the same key is fine. */
  snprintf(cmd, sizeof cmd, DFNET_OPENSSL " pkcs8 -topk8 -nocrypt -in '%s' -out '%s'",
           path_in("bf-ca.key"), path_in("plain8.key"));
  assert_int_equal(run(cmd, NULL, 0), 0);
  assert_int_equal(dfnet_pki_key_load(path_in("plain8.key"), &k), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_check_pair(ca, k), DFNET_STATUS_OK);
  dfnet_pki_key_free(k);
  k = NULL;
  /* A P-384 key is not a dfnet key. */
  snprintf(cmd, sizeof cmd, DFNET_OPENSSL " ecparam -genkey -name secp384r1 -noout -out '%s'",
           path_in("p384.key"));
  assert_int_equal(run(cmd, NULL, 0), 0);
  capture_begin();
  assert_int_equal(dfnet_pki_key_load(path_in("p384.key"), &k), DFNET_STATUS_INVALID_ARGUMENT);
  capture_end(log, sizeof log);
  assert_non_null(strstr(log, "P-256"));
  assert_null(k);
}

/* Certificates from memory: DER (as lws hands the peer's over) and PEM. */
static void test_parse_from_memory(void **state) {
  (void)state;
  const char *sans[] = {"10.1.2.3"};
  dfnet_pki_cert_t *leaf = NULL, *back = NULL;
  dfnet_pki_key_t *key = NULL;
  issue("mem", DFNET_PKI_ROLE_VIEWER, sans, 1, &leaf, &key);
  size_t len;
  const uint8_t *der = dfnet_pki_cert_der(leaf, &len);
  assert_int_equal(dfnet_pki_cert_parse(der, len, &back), DFNET_STATUS_OK);
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(back, &info), DFNET_STATUS_OK);
  assert_string_equal(info.cn, "mem");
  assert_int_equal(info.role, DFNET_PKI_ROLE_VIEWER);
  assert_string_equal(info.sans[0].text, "10.1.2.3");
  assert_int_equal(dfnet_pki_cert_verify(ca, back, NULL), DFNET_STATUS_OK);
  dfnet_pki_cert_free(back);
  back = NULL;

  /* PEM text without its NUL. */
  assert_int_equal(dfnet_pki_cert_write(leaf, path_in("mem.crt")), DFNET_STATUS_OK);
  FILE *f = fopen(path_in("mem.crt"), "r");
  assert_non_null(f);
  char pem[4096];
  size_t n = fread(pem, 1, sizeof pem, f);
  fclose(f);
  assert_int_equal(dfnet_pki_cert_parse((const uint8_t *)pem, n, &back), DFNET_STATUS_OK);
  dfnet_pki_cert_free(back);
  back = NULL;

  /* Truncated DER, and noise. */
  assert_int_equal(dfnet_pki_cert_parse(der, len - 1, &back), DFNET_STATUS_INVALID_ARGUMENT);
  assert_null(back);
  static const uint8_t noise[] = {0x30, 0x82, 0xff, 0xff, 0x00};
  assert_int_equal(dfnet_pki_cert_parse(noise, sizeof noise, &back), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_pki_cert_parse(der, 0, &back), DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_pki_cert_free(leaf);
  dfnet_pki_key_free(key);
}

static void issue_window(const char *name, time_t nb, time_t na, dfnet_pki_cert_t **c) {
  dfnet_pki_key_t *k = NULL;
  dfnet_pki_leaf_params_t p = {
      .name = name, .role = DFNET_PKI_ROLE_HOST, .not_before = nb, .not_after = na};
  assert_int_equal(dfnet_pki_leaf_issue(ca, ca_key, &p, c, &k), DFNET_STATUS_OK);
  dfnet_pki_key_free(k);
}

static void test_expired_and_not_yet_valid(void **state) {
  (void)state;
  time_t now = time(NULL);
  dfnet_pki_cert_t *expired = NULL, *future = NULL, *ok = NULL;
  issue_window("old", now - 10 * 86400, now - 86400, &expired);
  issue_window("new", now + 86400, now + 10 * 86400, &future);
  issue_window("now", now - 60, now + 3600, &ok);

  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(expired, &info), DFNET_STATUS_OK);
  assert_int_equal(info.not_before, now - 10 * 86400);
  assert_int_equal(info.not_after, now - 86400);

  uint32_t reasons = 0;
  char log[4096];
  capture_begin();
  assert_int_equal(dfnet_pki_cert_verify(ca, expired, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  capture_end(log, sizeof log);
  assert_int_equal(reasons, DFNET_PKI_VERIFY_EXPIRED);
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "old"));
  assert_non_null(strstr(log, "expired"));

  assert_int_equal(dfnet_pki_cert_verify(ca, future, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  assert_int_equal(reasons, DFNET_PKI_VERIFY_NOT_YET_VALID);
  assert_int_equal(dfnet_pki_cert_verify(ca, ok, &reasons), DFNET_STATUS_OK);
  assert_int_equal(reasons, 0);

  /* Written and read back, they stay expired / not yet valid. */
  assert_int_equal(dfnet_pki_cert_write(expired, path_in("expired.crt")), DFNET_STATUS_OK);
  dfnet_pki_cert_t *back = NULL;
  assert_int_equal(dfnet_pki_cert_load(path_in("expired.crt"), &back), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_verify(ca, back, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  assert_true(reasons & DFNET_PKI_VERIFY_EXPIRED);
  dfnet_pki_cert_free(back);

  /* A window the wrong way round is refused. */
  dfnet_pki_key_t *k = NULL;
  dfnet_pki_cert_t *c = NULL;
  dfnet_pki_leaf_params_t p = {
      .name = "bad", .role = DFNET_PKI_ROLE_HOST, .not_before = now, .not_after = now - 1};
  assert_int_equal(dfnet_pki_leaf_issue(ca, ca_key, &p, &c, &k), DFNET_STATUS_INVALID_ARGUMENT);

  dfnet_pki_cert_free(expired);
  dfnet_pki_cert_free(future);
  dfnet_pki_cert_free(ok);
}

static void test_other_ca_refused(void **state) {
  (void)state;
  dfnet_pki_cert_t *other = NULL, *stranger = NULL, *ours = NULL;
  dfnet_pki_key_t *other_key = NULL, *sk = NULL, *ok = NULL;
  assert_int_equal(dfnet_pki_ca_create("dfnet CA other", &other, &other_key), DFNET_STATUS_OK);
  dfnet_pki_leaf_params_t p = {.name = "stranger", .role = DFNET_PKI_ROLE_ADMIN, .days = 5};
  assert_int_equal(dfnet_pki_leaf_issue(other, other_key, &p, &stranger, &sk), DFNET_STATUS_OK);
  issue("ours", DFNET_PKI_ROLE_ADMIN, NULL, 0, &ours, &ok);

  uint32_t reasons = 0;
  assert_int_equal(dfnet_pki_cert_verify(ca, stranger, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  assert_true(reasons & DFNET_PKI_VERIFY_UNTRUSTED);
  assert_int_equal(dfnet_pki_cert_verify(other, ours, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  assert_true(reasons & DFNET_PKI_VERIFY_UNTRUSTED);
  assert_int_equal(dfnet_pki_cert_verify(other, stranger, &reasons), DFNET_STATUS_OK);
  /* The other CA itself is not trusted by ours. */
  assert_int_equal(dfnet_pki_cert_verify(ca, other, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  assert_true(reasons & DFNET_PKI_VERIFY_UNTRUSTED);

  /* A CA with the same name but another key: still refused (signature, not name). */
  dfnet_pki_cert_t *twin = NULL;
  dfnet_pki_key_t *twin_key = NULL;
  assert_int_equal(dfnet_pki_ca_create("dfnet CA test", &twin, &twin_key), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_verify(twin, ours, &reasons), DFNET_STATUS_UNAUTHENTICATED);
  assert_true(reasons & DFNET_PKI_VERIFY_UNTRUSTED);

  /* openssl agrees. */
  assert_int_equal(dfnet_pki_cert_write(twin, path_in("twin.crt")), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_write(ours, path_in("ours.crt")), DFNET_STATUS_OK);
  char cmd[PATH_MAX * 3];
  snprintf(cmd, sizeof cmd, DFNET_OPENSSL " verify -CAfile '%s' '%s' 2>&1", path_in("twin.crt"),
           path_in("ours.crt"));
  assert_int_not_equal(run(cmd, NULL, 0), 0);

  dfnet_pki_cert_free(twin);
  dfnet_pki_key_free(twin_key);
  dfnet_pki_cert_free(other);
  dfnet_pki_cert_free(stranger);
  dfnet_pki_cert_free(ours);
  dfnet_pki_key_free(other_key);
  dfnet_pki_key_free(sk);
  dfnet_pki_key_free(ok);
}

/* Every bad parameter: INVALID_ARGUMENT, outputs NULL. */
static void test_bad_leaf_params(void **state) {
  (void)state;
  const char *one_bad_san[] = {"ok.example", "bad name"};
  const char *null_san[] = {NULL};
  const char *many[DFNET_PKI_MAX_SANS + 1];
  for (size_t i = 0; i < DFNET_PKI_MAX_SANS + 1; i++)
    many[i] = "a.example";
  const char *long_label[] = {"a..b"};
  const struct {
    const char *why;
    dfnet_pki_leaf_params_t p;
  } cases[] = {
      {"NULL name", {.name = NULL, .role = DFNET_PKI_ROLE_HOST, .days = 1}},
      {"name with comma", {.name = "a,OU=admin", .role = DFNET_PKI_ROLE_HOST, .days = 1}},
      {"name with slash", {.name = "../x", .role = DFNET_PKI_ROLE_HOST, .days = 1}},
      {"role none", {.name = "x", .role = DFNET_PKI_ROLE_NONE, .days = 1}},
      {"role out of range", {.name = "x", .role = (dfnet_pki_role_t)42, .days = 1}},
      {"zero days", {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = 0}},
      {"too many days", {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = DFNET_PKI_MAX_DAYS + 1}},
      {"bad SAN",
       {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = 1, .sans = one_bad_san, .san_count = 2}},
      {"NULL SAN",
       {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = 1, .sans = null_san, .san_count = 1}},
      {"NULL SAN list", {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = 1, .san_count = 1}},
      {"too many SANs",
       {.name = "x",
        .role = DFNET_PKI_ROLE_HOST,
        .days = 1,
        .sans = many,
        .san_count = DFNET_PKI_MAX_SANS + 1}},
      {"empty label",
       {.name = "x", .role = DFNET_PKI_ROLE_HOST, .days = 1, .sans = long_label, .san_count = 1}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dfnet_pki_cert_t *c = (dfnet_pki_cert_t *)1;
    dfnet_pki_key_t *k = (dfnet_pki_key_t *)1;
    dfnet_status_t st = dfnet_pki_leaf_issue(ca, ca_key, &cases[i].p, &c, &k);
    if (st != DFNET_STATUS_INVALID_ARGUMENT)
      fail_msg("%s: got %s", cases[i].why, dfnet_status_str(st));
    assert_null(c);
    assert_null(k);
  }
  /* Exactly DFNET_PKI_MAX_SANS is fine. */
  dfnet_pki_cert_t *c = NULL;
  dfnet_pki_key_t *k = NULL;
  dfnet_pki_leaf_params_t full = {.name = "full",
                                  .role = DFNET_PKI_ROLE_HOST,
                                  .days = 1,
                                  .sans = many,
                                  .san_count = DFNET_PKI_MAX_SANS};
  assert_int_equal(dfnet_pki_leaf_issue(ca, ca_key, &full, &c, &k), DFNET_STATUS_OK);
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(c, &info), DFNET_STATUS_OK);
  assert_int_equal(info.san_count, DFNET_PKI_MAX_SANS);
  assert_false(info.sans_truncated);
  dfnet_pki_cert_free(c);
  dfnet_pki_key_free(k);
  /* A leaf never outlives its CA. */
  dfnet_pki_leaf_params_t longer = {
      .name = "long", .role = DFNET_PKI_ROLE_HOST, .days = DFNET_PKI_MAX_DAYS};
  assert_int_equal(dfnet_pki_leaf_issue(ca, ca_key, &longer, &c, &k), DFNET_STATUS_OK);
  dfnet_pki_cert_info_t ca_info;
  assert_int_equal(dfnet_pki_cert_info(c, &info), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_info(ca, &ca_info), DFNET_STATUS_OK);
  assert_int_equal(info.not_after, ca_info.not_after);
  dfnet_pki_cert_free(c);
  dfnet_pki_key_free(k);

  static const char *const bad_ca_cn[] = {"",      "a,b",         "x=y",
                                          " lead", "back\\slash", "CN with\nnewline"};
  for (size_t i = 0; i < sizeof bad_ca_cn / sizeof bad_ca_cn[0]; i++) {
    dfnet_pki_cert_t *cc = (dfnet_pki_cert_t *)1;
    dfnet_pki_key_t *ck = (dfnet_pki_key_t *)1;
    assert_int_equal(dfnet_pki_ca_create(bad_ca_cn[i], &cc, &ck), DFNET_STATUS_INVALID_ARGUMENT);
    assert_null(cc);
    assert_null(ck);
  }
}

static void read_file(const char *path, char *buf, size_t size, size_t *len) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  *len = fread(buf, 1, size, f);
  fclose(f);
}

static const char *const state_files[] = {"ca.crt", "ca.key", "manager.crt", "manager.key",
                                          "manager.pem"};

static void test_init_state_dir_idempotent(void **state) {
  (void)state;
  const char *dir = path_in("state");
  const char *extra[] = {"manager.lab", "10.9.8.7"};
  bool created = false;
  assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-1", extra, 2, &created), DFNET_STATUS_OK);
  assert_true(created);
  assert_int_equal(file_mode(dir), 0700);

  static const mode_t modes[] = {0644, 0600, 0644, 0600, 0600};
  char saved[5][4096];
  size_t saved_len[5];
  struct stat saved_st[5];
  for (int i = 0; i < 5; i++) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, state_files[i]);
    assert_int_equal(file_mode(p), modes[i]);
    read_file(p, saved[i], sizeof saved[i], &saved_len[i]);
    assert_int_equal(stat(p, &saved_st[i]), 0);
  }

  /* The manager certificate: CN, OU manager, SANs, chained to the CA. */
  char p[PATH_MAX];
  dfnet_pki_cert_t *sca = NULL, *mgr = NULL;
  dfnet_pki_key_t *mkey = NULL;
  snprintf(p, sizeof p, "%s/ca.crt", dir);
  assert_int_equal(dfnet_pki_cert_load(p, &sca), DFNET_STATUS_OK);
  snprintf(p, sizeof p, "%s/manager.pem", dir);
  assert_int_equal(dfnet_pki_cert_load(p, &mgr), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_load(p, &mkey), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_key_check_pair(mgr, mkey), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_verify(sca, mgr, NULL), DFNET_STATUS_OK);
  dfnet_pki_cert_info_t info;
  assert_int_equal(dfnet_pki_cert_info(mgr, &info), DFNET_STATUS_OK);
  assert_string_equal(info.cn, "mgr-1");
  assert_int_equal(info.role, DFNET_PKI_ROLE_MANAGER);
  assert_string_equal(info.issuer_cn, "dfnet CA mgr-1");
  assert_int_equal(info.san_count, 5);
  assert_string_equal(info.sans[0].text, "localhost");
  assert_string_equal(info.sans[1].text, "127.0.0.1");
  assert_string_equal(info.sans[2].text, "::1");
  assert_string_equal(info.sans[3].text, "manager.lab");
  assert_string_equal(info.sans[4].text, "10.9.8.7");
  assert_true(dfnet_pki_cert_matches_host(mgr, "127.0.0.1"));
  assert_true(dfnet_pki_cert_matches_host(mgr, "localhost"));

  /* Second and third runs: nothing written, every file byte-identical and the same inode. */
  for (int run_no = 0; run_no < 2; run_no++) {
    created = true;
    assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-1", NULL, 0, &created), DFNET_STATUS_OK);
    assert_false(created);
  }
  for (int i = 0; i < 5; i++) {
    char q[PATH_MAX], now[4096];
    size_t len;
    struct stat sb;
    snprintf(q, sizeof q, "%s/%s", dir, state_files[i]);
    read_file(q, now, sizeof now, &len);
    assert_int_equal(len, saved_len[i]);
    assert_memory_equal(now, saved[i], len);
    assert_int_equal(stat(q, &sb), 0);
    assert_int_equal(sb.st_ino, saved_st[i].st_ino);
    assert_int_equal(sb.st_mtime, saved_st[i].st_mtime);
  }

  /* issue: files in out_dir, a copy of ca.crt, the right role; never overwrites. */
  const char *out = path_in("issued");
  const char *sans[] = {"board-3.lab", "10.0.0.3"};
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_HOST, "board-3", out, sans, 2, 90),
                   DFNET_STATUS_OK);
  dfnet_pki_cert_t *b3 = NULL, *ca_copy = NULL;
  snprintf(p, sizeof p, "%s/board-3.crt", out);
  assert_int_equal(file_mode(p), 0644);
  assert_int_equal(dfnet_pki_cert_load(p, &b3), DFNET_STATUS_OK);
  snprintf(p, sizeof p, "%s/board-3.key", out);
  assert_int_equal(file_mode(p), 0600);
  snprintf(p, sizeof p, "%s/board-3.pem", out);
  assert_int_equal(file_mode(p), 0600);
  snprintf(p, sizeof p, "%s/ca.crt", out);
  assert_int_equal(dfnet_pki_cert_load(p, &ca_copy), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_verify(ca_copy, b3, NULL), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_cert_info(b3, &info), DFNET_STATUS_OK);
  assert_string_equal(info.cn, "board-3");
  assert_int_equal(info.role, DFNET_PKI_ROLE_HOST);
  assert_true(info.not_after - info.not_before >= 90 * 86400);
  /* A second certificate into the same directory shares ca.crt. */
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_VIEWER, "alice", out, NULL, 0, 30),
                   DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_HOST, "board-3", out, NULL, 0, 1),
                   DFNET_STATUS_ALREADY_EXISTS);
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_MANAGER, "m2", out, NULL, 0, 1),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_HOST, "bad/name", out, NULL, 0, 1),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_HOST, "z", out, NULL, 0, 0),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* An out_dir trusting another CA is not silently switched. */
  assert_int_equal(dfnet_pki_cert_write(ca, p), DFNET_STATUS_OK); /* p = <out>/ca.crt */
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_HOST, "carol", out, NULL, 0, 1),
                   DFNET_STATUS_ALREADY_EXISTS);
  snprintf(p, sizeof p, "%s/carol.crt", out);
  assert_int_equal(access(p, F_OK), -1);
  /* Missing parents of out_dir are created, 0700 each. */
  char deep[700];
  snprintf(deep, sizeof deep, "%s/a/b/c", path_in("nested"));
  assert_int_equal(dfnet_pki_issue_to_dir(dir, DFNET_PKI_ROLE_VIEWER, "dan", deep, NULL, 0, 1),
                   DFNET_STATUS_OK);
  snprintf(p, sizeof p, "%s/dan.crt", deep);
  assert_int_equal(access(p, F_OK), 0);
  snprintf(p, sizeof p, "%s/a/b", path_in("nested"));
  assert_int_equal(file_mode(p), 0700);
  /* No CA in a state directory: NOT_FOUND. */
  assert_int_equal(
      dfnet_pki_issue_to_dir(path_in("nostate"), DFNET_PKI_ROLE_HOST, "d", out, NULL, 0, 1),
      DFNET_STATUS_NOT_FOUND);

  dfnet_pki_cert_free(b3);
  dfnet_pki_cert_free(ca_copy);
  dfnet_pki_cert_free(sca);
  dfnet_pki_cert_free(mgr);
  dfnet_pki_key_free(mkey);
}

/* Partial or inconsistent sets are refused, and nothing on disk is touched. */
static void test_init_state_dir_refuses_partial(void **state) {
  (void)state;
  const char *dir = path_in("state2");
  char p[PATH_MAX], q[PATH_MAX];
  assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-2", NULL, 0, NULL), DFNET_STATUS_OK);

  /* ca.key gone: FAILED_PRECONDITION naming it, ca.crt kept. */
  snprintf(p, sizeof p, "%s/ca.key", dir);
  snprintf(q, sizeof q, "%s/ca.key.saved", dir);
  assert_int_equal(rename(p, q), 0);
  char log[4096];
  capture_begin();
  assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-2", NULL, 0, NULL),
                   DFNET_STATUS_FAILED_PRECONDITION);
  capture_end(log, sizeof log);
  assert_non_null(strstr(log, p));
  assert_int_equal(access(p, F_OK), -1);
  assert_int_equal(rename(q, p), 0);

  /* manager.pem gone: refused too. */
  snprintf(p, sizeof p, "%s/manager.pem", dir);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-2", NULL, 0, NULL),
                   DFNET_STATUS_FAILED_PRECONDITION);
  /* All three manager files gone: made again by the same CA. */
  snprintf(p, sizeof p, "%s/manager.crt", dir);
  assert_int_equal(unlink(p), 0);
  snprintf(p, sizeof p, "%s/manager.key", dir);
  assert_int_equal(unlink(p), 0);
  bool created = false;
  assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-2", NULL, 0, &created), DFNET_STATUS_OK);
  assert_true(created);

  /* A ca.key of another key: FAILED_PRECONDITION (key does not match). */
  snprintf(p, sizeof p, "%s/ca.key", dir);
  assert_int_equal(dfnet_pki_key_write(ca_key, p), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_init_state_dir(dir, "mgr-2", NULL, 0, NULL),
                   DFNET_STATUS_FAILED_PRECONDITION);

  /* A manager certificate from another CA: FAILED_PRECONDITION. */
  const char *dir3 = path_in("state3");
  assert_int_equal(dfnet_pki_init_state_dir(dir3, "mgr-3", NULL, 0, NULL), DFNET_STATUS_OK);
  dfnet_pki_cert_t *c = NULL;
  dfnet_pki_key_t *k = NULL;
  issue("mgr-3", DFNET_PKI_ROLE_MANAGER, NULL, 0, &c, &k);
  snprintf(p, sizeof p, "%s/manager.crt", dir3);
  assert_int_equal(dfnet_pki_cert_write(c, p), DFNET_STATUS_OK);
  snprintf(p, sizeof p, "%s/manager.key", dir3);
  assert_int_equal(dfnet_pki_key_write(k, p), DFNET_STATUS_OK);
  assert_int_equal(dfnet_pki_init_state_dir(dir3, "mgr-3", NULL, 0, NULL),
                   DFNET_STATUS_FAILED_PRECONDITION);
  dfnet_pki_cert_free(c);
  dfnet_pki_key_free(k);

  /* Bad arguments: nothing created. */
  assert_int_equal(dfnet_pki_init_state_dir(path_in("state4"), "bad name", NULL, 0, NULL),
                   DFNET_STATUS_INVALID_ARGUMENT);
  const char *bad[] = {"not a host"};
  assert_int_equal(dfnet_pki_init_state_dir(path_in("state4"), "m", bad, 1, NULL),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(access(path_in("state4"), F_OK), -1);
  assert_int_equal(dfnet_pki_init_state_dir(NULL, "m", NULL, 0, NULL),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* Parents missing: created (0700), as `dfnet-manager init` needs for ~/.local/state. */
  assert_int_equal(dfnet_pki_init_state_dir(path_in("nope/state"), "m", NULL, 0, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(file_mode(path_in("nope")), 0700);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_role_names),
      cmocka_unit_test(test_ca_and_leaf_roundtrip),
      cmocka_unit_test(test_wildcard_and_cn_match),
      cmocka_unit_test(test_openssl_reads_what_we_wrote),
      cmocka_unit_test(test_key_mode_and_atomic_replace),
      cmocka_unit_test(test_key_mismatch),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_parse_from_memory),
      cmocka_unit_test(test_expired_and_not_yet_valid),
      cmocka_unit_test(test_other_ca_refused),
      cmocka_unit_test(test_bad_leaf_params),
      cmocka_unit_test(test_init_state_dir_idempotent),
      cmocka_unit_test(test_init_state_dir_refuses_partial),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
