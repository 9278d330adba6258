#include "tls_fixture.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static int rng_ready;

static int rng_init(void) {
  if (rng_ready)
    return 0;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                            (const unsigned char *)"dfnet-test", 10) != 0)
    return -1;
  rng_ready = 1;
  return 0;
}

const char *fixture_path(char *buf, size_t cap, const char *dir, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  return buf;
}

static int write_text(const char *dir, const char *name, const unsigned char *text) {
  char path[512];
  FILE *f = fopen(fixture_path(path, sizeof(path), dir, name), "w");
  if (f == NULL)
    return -1;
  fputs((const char *)text, f);
  fclose(f);
  chmod(path, 0600);
  return 0;
}

static void ts(char out[15], time_t t) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}

/* Make key + certificate; issuer NULL = self-signed CA. */
static int make(const char *dir, const char *base, const char *subject, mbedtls_pk_context *key,
                const char *issuer_name, mbedtls_pk_context *issuer_key, bool ca, time_t from,
                time_t to, bool san) {
  mbedtls_x509write_cert crt;
  mbedtls_mpi serial;
  unsigned char buf[4096];
  char a[15], b[15], name[128];
  static unsigned serial_no = 1;
  int rc = -1;

  mbedtls_pk_init(key);
  if (mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
      mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key), mbedtls_ctr_drbg_random,
                          &drbg) != 0)
    return -1;
  mbedtls_x509write_crt_init(&crt);
  mbedtls_mpi_init(&serial);
  mbedtls_mpi_lset(&serial, (mbedtls_mpi_sint)serial_no++);
  ts(a, from);
  ts(b, to);
  mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_serial(&crt, &serial);
  mbedtls_x509write_crt_set_validity(&crt, a, b);
  mbedtls_x509write_crt_set_subject_name(&crt, subject);
  mbedtls_x509write_crt_set_issuer_name(&crt, issuer_name ? issuer_name : subject);
  mbedtls_x509write_crt_set_subject_key(&crt, key);
  mbedtls_x509write_crt_set_issuer_key(&crt, issuer_key ? issuer_key : key);
  mbedtls_x509write_crt_set_basic_constraints(&crt, ca, ca ? 0 : -1);
  if (san) {
    /* SEQUENCE { [2] "localhost", [7] 127.0.0.1 } */
    static const unsigned char der[] = {0x30, 0x11, 0x82, 0x09, 'l',  'o',  'c',  'a',  'l', 'h',
                                        'o',  's',  't',  0x87, 0x04, 0x7f, 0x00, 0x00, 0x01};
    mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                        MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, der,
                                        sizeof(der));
  }
  if (mbedtls_x509write_crt_pem(&crt, buf, sizeof(buf), mbedtls_ctr_drbg_random, &drbg) != 0)
    goto out;
  snprintf(name, sizeof(name), "%s.crt", base);
  if (write_text(dir, name, buf) != 0)
    goto out;
  if (mbedtls_pk_write_key_pem(key, buf, sizeof(buf)) != 0)
    goto out;
  snprintf(name, sizeof(name), "%s.key", base);
  if (write_text(dir, name, buf) != 0)
    goto out;
  rc = 0;
out:
  mbedtls_x509write_crt_free(&crt);
  mbedtls_mpi_free(&serial);
  return rc;
}

int fixture_make_certs(const char *dir) {
  if (rng_init() != 0)
    return -1;
  time_t now = time(NULL);
  time_t from = now - 3600, to = now + 30 * 86400;
  mbedtls_pk_context ca, other, k;
  int rc = 0;
  rc |= make(dir, "ca", "CN=dfnet test CA,O=dfnet", &ca, NULL, NULL, true, from, to, false);
  rc |= make(dir, "other-ca", "CN=other CA,O=elsewhere", &other, NULL, NULL, true, from, to, false);
  struct {
    const char *base, *subject;
    bool other;
    time_t from, to;
    bool san;
  } leaves[] = {
      {"manager", "CN=manager,OU=manager,O=dfnet", false, from, to, true},
      {"host", "CN=lab-a,OU=host,O=dfnet", false, from, to, false},
      {"host2", "CN=lab-b,OU=host,O=dfnet", false, from, to, false},
      {"viewer", "CN=alice,OU=viewer,O=dfnet", false, from, to, false},
      {"operator", "CN=bob,OU=operator,O=dfnet", false, from, to, false},
      {"expired", "CN=old,OU=host,O=dfnet", false, now - 10 * 86400, now - 86400, false},
      {"stranger", "CN=eve,OU=host,O=elsewhere", true, from, to, false},
  };
  for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
    rc |= make(dir, leaves[i].base, leaves[i].subject, &k,
               leaves[i].other ? "CN=other CA,O=elsewhere" : "CN=dfnet test CA,O=dfnet",
               leaves[i].other ? &other : &ca, false, leaves[i].from, leaves[i].to, leaves[i].san);
    mbedtls_pk_free(&k);
  }
  mbedtls_pk_free(&ca);
  mbedtls_pk_free(&other);
  if (rc)
    fprintf(stderr, "fixture: cannot make certificates in %s\n", dir);
  return rc ? -1 : 0;
}

int fixture_make_leaf(const char *dir, const char *base, const char *subject, time_t not_after) {
  if (rng_init() != 0)
    return -1;
  char path[512];
  mbedtls_pk_context ca, k;
  mbedtls_pk_init(&ca);
  if (mbedtls_pk_parse_keyfile(&ca, fixture_path(path, sizeof path, dir, "ca.key"), NULL) != 0)
    return -1;
  time_t now = time(NULL);
  int rc = make(dir, base, subject, &k, "CN=dfnet test CA,O=dfnet", &ca, false, now - 3600,
                not_after, false);
  mbedtls_pk_free(&k);
  mbedtls_pk_free(&ca);
  return rc;
}

static char cert_dir[256];
static pid_t cert_dir_owner;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* At exit of the process that made it (not of a forked child): the directory goes. */
static void cert_dir_remove(void) {
  if (cert_dir[0] != '\0' && getpid() == cert_dir_owner)
    nftw(cert_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fixture_cert_dir(void) {
  if (cert_dir[0])
    return cert_dir;
  snprintf(cert_dir, sizeof(cert_dir), "/tmp/dfnet-transport-XXXXXX");
  if (mkdtemp(cert_dir) == NULL) {
    cert_dir[0] = '\0';
    return NULL;
  }
  cert_dir_owner = getpid();
  atexit(cert_dir_remove);
  if (fixture_make_certs(cert_dir) != 0)
    return NULL; /* removed at exit */
  return cert_dir;
}

char *fixture_read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s)
    s[n] = '\0';
  fclose(f);
  return s;
}

struct fixture_tls {
  mbedtls_net_context net;
  mbedtls_ssl_context ssl;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt ca, crt;
  mbedtls_pk_context key;
  bool timeouts; /* fixture_tls_set_timeout: writes give up too */
};

void fixture_tls_close(fixture_tls_t *c) {
  if (c == NULL)
    return;
  mbedtls_ssl_close_notify(&c->ssl);
  mbedtls_net_free(&c->net);
  mbedtls_ssl_free(&c->ssl);
  mbedtls_ssl_config_free(&c->conf);
  mbedtls_x509_crt_free(&c->ca);
  mbedtls_x509_crt_free(&c->crt);
  mbedtls_pk_free(&c->key);
  free(c);
}

fixture_tls_t *fixture_tls_connect(uint16_t port, const char *ca, const char *cert, const char *key,
                                   int tls_minor, int *hs_err) {
  if (rng_init() != 0)
    return NULL;
  fixture_tls_t *c = calloc(1, sizeof(*c));
  char portstr[8];
  int rc;
  *hs_err = 0;
  mbedtls_net_init(&c->net);
  mbedtls_ssl_init(&c->ssl);
  mbedtls_ssl_config_init(&c->conf);
  mbedtls_x509_crt_init(&c->ca);
  mbedtls_x509_crt_init(&c->crt);
  mbedtls_pk_init(&c->key);
  snprintf(portstr, sizeof(portstr), "%u", port);
  if (mbedtls_net_connect(&c->net, "127.0.0.1", portstr, MBEDTLS_NET_PROTO_TCP) != 0)
    goto fail;
  mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                              MBEDTLS_SSL_PRESET_DEFAULT);
  mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, tls_minor);
  mbedtls_ssl_conf_max_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, tls_minor);
  mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &drbg);
  mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
  if (ca && mbedtls_x509_crt_parse_file(&c->ca, ca) == 0)
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
  if (cert && key) {
    if (mbedtls_x509_crt_parse_file(&c->crt, cert) != 0 ||
        mbedtls_pk_parse_keyfile(&c->key, key, NULL) != 0 ||
        mbedtls_ssl_conf_own_cert(&c->conf, &c->crt, &c->key) != 0)
      goto fail;
  }
  if (mbedtls_ssl_setup(&c->ssl, &c->conf) != 0)
    goto fail;
  mbedtls_ssl_set_hostname(&c->ssl, "manager");
  mbedtls_ssl_set_bio(&c->ssl, &c->net, mbedtls_net_send, mbedtls_net_recv, NULL);
  while ((rc = mbedtls_ssl_handshake(&c->ssl)) != 0) {
    if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
      *hs_err = rc;
      goto fail;
    }
  }
  return c;
fail:
  fixture_tls_close(c);
  return NULL;
}

int fixture_tls_write(fixture_tls_t *c, const void *buf, size_t len) {
  const unsigned char *p = buf;
  while (len > 0) {
    int n = mbedtls_ssl_write(&c->ssl, p, len);
    if (c->timeouts &&
        (n == MBEDTLS_ERR_SSL_WANT_WRITE ||
         (n == MBEDTLS_ERR_NET_SEND_FAILED && (errno == EAGAIN || errno == EWOULDBLOCK))))
      return -2; /* the peer has not read for the whole timeout (SO_SNDTIMEO) */
    if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int fixture_tls_set_timeout(fixture_tls_t *c, unsigned ms) {
  mbedtls_ssl_conf_read_timeout(&c->conf, ms);
  mbedtls_ssl_set_bio(&c->ssl, &c->net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
  setsockopt(c->net.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  c->timeouts = ms != 0;
  return 0;
}

int fixture_tls_read(fixture_tls_t *c, void *buf, size_t cap) {
  for (;;) {
    int n = mbedtls_ssl_read(&c->ssl, buf, cap);
    if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
      continue;
    if (n == MBEDTLS_ERR_SSL_TIMEOUT)
      return -2;
    if (n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == 0)
      return 0;
    return n < 0 ? -1 : n;
  }
}
