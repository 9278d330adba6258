/* bench/handshake_cost: where a TLS handshake's time goes on the manager, measured with the
 * mbedTLS 2.28 calls the handshake makes (issue 23 item 5 "Keep the handshake honest";
 * docs/architecture.md "Transport and trust").
 *
 * The manager's share of a full mutual ECDHE-ECDSA P-256 handshake (TLS 1.2) is: an ECDHE
 * key pair (a multiplication of the base point G), the ECDSA signature of ServerKeyExchange
 * (one G multiplication), the ECDH shared secret (a multiplication of the client's point),
 * parsing the client's certificate and two ECDSA verifications (the CA's signature on it and
 * the client's CertificateVerify: each a G and a point multiplication), and hashing/PRF.
 * The server's own key and the CA's are loaded once (their groups keep G's comb table); the
 * ECDHE group and the client's key are new at every handshake.
 * A resumption from an RFC 5077 ticket instead opens the ticket (AES-256-GCM of the serialized
 * session, which parses the peer certificate kept in it again) and runs the PRF: no ECC.
 *
 * Also shown: whether G multiplications use a precomputed table that is not rebuilt per
 * handshake (mbedTLS makes a fresh ECP group per ECDHE: with MBEDTLS_ECP_FIXED_POINT_OPTIM
 * and 2.28's static comb tables, a fresh group is as fast as a warm one).
 *
 * Usage: handshake_cost [ITERATIONS (300)]. Single-threaded; prints microseconds per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "tls_fixture.h"

static mbedtls_ctr_drbg_context drbg;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "handshake_cost: %s: -0x%04x\n", what, (unsigned)-rc);
    exit(1);
  }
}

static void row(const char *what, double us, const char *note) {
  printf("  %-44s %8.0f us  %s\n", what, us, note);
}

typedef struct ecc_cost {
  double keygen, keygen_fresh, ecdh, sign, verify, verify_fresh;
} ecc_cost_t;

/* ECDHE key pairs (a warm group, and a fresh group each time as the handshake does), ECDH. */
static void measure_ecdhe(int n, ecc_cost_t *c) {
  mbedtls_ecp_group grp;
  mbedtls_mpi d, z;
  mbedtls_ecp_point q, peer_q;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&d);
  mbedtls_mpi_init(&z);
  mbedtls_ecp_point_init(&q);
  mbedtls_ecp_point_init(&peer_q);
  check(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1), "group");
  mbedtls_mpi peer_d;
  mbedtls_mpi_init(&peer_d);
  check(mbedtls_ecdh_gen_public(&grp, &peer_d, &peer_q, mbedtls_ctr_drbg_random, &drbg), "peer");
  double t0 = now_us();
  for (int i = 0; i < n; i++)
    check(mbedtls_ecdh_gen_public(&grp, &d, &q, mbedtls_ctr_drbg_random, &drbg), "keygen");
  c->keygen = (now_us() - t0) / n;
  t0 = now_us();
  for (int i = 0; i < n; i++) {
    mbedtls_ecp_group fresh;
    mbedtls_ecp_group_init(&fresh);
    check(mbedtls_ecp_group_load(&fresh, MBEDTLS_ECP_DP_SECP256R1), "group");
    check(mbedtls_ecdh_gen_public(&fresh, &d, &q, mbedtls_ctr_drbg_random, &drbg), "keygen");
    mbedtls_ecp_group_free(&fresh);
  }
  c->keygen_fresh = (now_us() - t0) / n;
  t0 = now_us();
  for (int i = 0; i < n; i++)
    check(mbedtls_ecdh_compute_shared(&grp, &z, &peer_q, &d, mbedtls_ctr_drbg_random, &drbg),
          "ecdh");
  c->ecdh = (now_us() - t0) / n;
  mbedtls_mpi_free(&peer_d);
  mbedtls_mpi_free(&d);
  mbedtls_mpi_free(&z);
  mbedtls_ecp_point_free(&q);
  mbedtls_ecp_point_free(&peer_q);
  mbedtls_ecp_group_free(&grp);
}

/* ECDSA P-256 with SHA-256, as ServerKeyExchange and CertificateVerify use it. */
static void measure_ecdsa(int n, ecc_cost_t *c) {
  mbedtls_ecdsa_context key;
  mbedtls_ecdsa_init(&key);
  check(mbedtls_ecdsa_genkey(&key, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &drbg),
        "genkey");
  unsigned char hash[32], sig[MBEDTLS_ECDSA_MAX_LEN];
  size_t sig_len = 0;
  memset(hash, 0x5a, sizeof hash);
  double t0 = now_us();
  for (int i = 0; i < n; i++) {
    hash[0] = (unsigned char)i;
    check(mbedtls_ecdsa_write_signature(&key, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &sig_len,
                                        mbedtls_ctr_drbg_random, &drbg),
          "sign");
  }
  c->sign = (now_us() - t0) / n;
  t0 = now_us();
  for (int i = 0; i < n; i++)
    check(mbedtls_ecdsa_read_signature(&key, hash, sizeof hash, sig, sig_len), "verify");
  c->verify = (now_us() - t0) / n;
  /* the key of a certificate parsed during the handshake (the client's): a fresh group */
  t0 = now_us();
  for (int i = 0; i < n; i++) {
    mbedtls_ecdsa_context fresh;
    mbedtls_ecdsa_init(&fresh);
    check(mbedtls_ecp_group_load(&fresh.grp, MBEDTLS_ECP_DP_SECP256R1), "group");
    check(mbedtls_ecp_copy(&fresh.Q, &key.Q), "copy");
    check(mbedtls_ecdsa_read_signature(&fresh, hash, sizeof hash, sig, sig_len), "verify");
    mbedtls_ecdsa_free(&fresh);
  }
  c->verify_fresh = (now_us() - t0) / n;
  mbedtls_ecdsa_free(&key);
}

/* Parsing a leaf certificate (the client's, at a full handshake; the ticket's, at a
 * resumption); a ticket of a session holding it made and opened (ssl_ticket.c). */
static void measure_ticket(int n, const char *cert_path, double *parse_us, double *write_us,
                           double *open_us, size_t *ticket_len) {
  char *pem = fixture_read_file(cert_path);
  if (pem == NULL)
    check(-1, "reading the certificate");
  double t0 = now_us();
  for (int i = 0; i < n; i++) {
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    check(mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, strlen(pem) + 1), "parse");
    mbedtls_x509_crt_free(&crt);
  }
  *parse_us = (now_us() - t0) / n;
  mbedtls_ssl_session session;
  mbedtls_ssl_session_init(&session);
  session.peer_cert = calloc(1, sizeof *session.peer_cert);
  mbedtls_x509_crt_init(session.peer_cert);
  check(mbedtls_x509_crt_parse(session.peer_cert, (const unsigned char *)pem, strlen(pem) + 1),
        "parse");
  session.ciphersuite = MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256;
  session.start = time(NULL);
  mbedtls_ssl_ticket_context tc;
  mbedtls_ssl_ticket_init(&tc);
  check(mbedtls_ssl_ticket_setup(&tc, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                 86400),
        "ticket setup");
  unsigned char ticket[4096];
  size_t tlen = 0;
  uint32_t life;
  t0 = now_us();
  for (int i = 0; i < n; i++)
    check(mbedtls_ssl_ticket_write(&tc, &session, ticket, ticket + sizeof ticket, &tlen, &life),
          "ticket write");
  *write_us = (now_us() - t0) / n;
  *ticket_len = tlen;
  t0 = now_us();
  for (int i = 0; i < n; i++) {
    unsigned char copy[4096];
    mbedtls_ssl_session out;
    memcpy(copy, ticket, tlen);
    mbedtls_ssl_session_init(&out);
    check(mbedtls_ssl_ticket_parse(&tc, &out, copy, tlen), "ticket parse");
    mbedtls_ssl_session_free(&out);
  }
  *open_us = (now_us() - t0) / n;
  mbedtls_ssl_ticket_free(&tc);
  mbedtls_ssl_session_free(&session);
  free(pem);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 300;
  if (n < 1)
    n = 300;
  mbedtls_entropy_context entropy;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  check(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0), "seed");
  const char *dir = fixture_cert_dir();
  if (dir == NULL)
    return 1;
  char cert[512];
  fixture_path(cert, sizeof cert, dir, "host.crt");

  ecc_cost_t c;
  measure_ecdhe(n, &c);
  measure_ecdsa(n, &c);
  double parse, write, open;
  size_t tlen;
  measure_ticket(n, cert, &parse, &write, &open, &tlen);

  printf("handshake_cost: mbedTLS %s, P-256, %d iterations each, one thread\n",
         MBEDTLS_VERSION_STRING, n);
  printf("  config: MBEDTLS_ECP_WINDOW_SIZE %d, MBEDTLS_ECP_FIXED_POINT_OPTIM %d, NIST_OPTIM %s\n",
         MBEDTLS_ECP_WINDOW_SIZE, MBEDTLS_ECP_FIXED_POINT_OPTIM,
#if defined(MBEDTLS_ECP_NIST_OPTIM)
         "on"
#else
         "off"
#endif
  );
  row("ECDHE key pair (k*G), warm group", c.keygen, "");
  row("ECDHE key pair, fresh group (as per handshake)", c.keygen_fresh,
      c.keygen_fresh < 1.25 * c.keygen ? "(G's table is not rebuilt: static comb)"
                                       : "(G's table rebuilt per group)");
  row("ECDH shared secret (k*P)", c.ecdh, "");
  row("ECDSA sign, SHA-256 (ServerKeyExchange)", c.sign, "");
  row("ECDSA verify, CA's key (the client's chain)", c.verify, "(a loaded key: warm group)");
  row("ECDSA verify, client's key (CertificateVerify)", c.verify_fresh,
      "(a key parsed now: fresh group)");
  row("X.509 parse of the peer's certificate", parse, "");
  double full = c.keygen_fresh + c.ecdh + c.sign + c.verify + c.verify_fresh + parse;
  row("= a full handshake's public-key work", full, "(manager side; + hashing, PRF, I/O)");
  row("ticket write (AES-256-GCM, session + cert)", write, "");
  row("ticket open (decrypt, parse the cert again)", open, "");
  printf("  ticket: %zu octets (the peer certificate is in it)\n", tlen);
  printf("  a resumption from a ticket skips %.0f us of ECC; it costs the open, %.0f us\n",
         full - parse, open);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return 0;
}
