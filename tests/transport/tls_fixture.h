/* Test fixtures for the transport: certificates made with mbedTLS at test time, and a raw
 * mbedTLS TLS client (to speak TLS 1.0/1.1, or present no certificate, which our own
 * client never does). */
#ifndef DFNET_TESTS_TLS_FIXTURE_H
#define DFNET_TESTS_TLS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A directory of PEM files:
 *   ca.crt ca.key                 the CA
 *   manager.crt manager.key       CN=manager OU=manager, SAN DNS:localhost IP:127.0.0.1
 *   host.crt host.key             CN=lab-a   OU=host
 *   viewer.crt viewer.key         CN=alice   OU=viewer
 *   operator.crt operator.key     CN=bob     OU=operator
 *   expired.crt expired.key       CN=old     OU=host, expired a day ago
 *   other-ca.crt other-ca.key     another CA
 *   stranger.crt stranger.key     CN=eve OU=host, issued by the other CA
 * Returns 0, or -1 (message on stderr). dir must exist. */
int fixture_make_certs(const char *dir);

/* Make a fresh temp directory with the certificates; returns its path (static buffer). */
const char *fixture_cert_dir(void);

/* path = dir/name into buf. */
const char *fixture_path(char *buf, size_t cap, const char *dir, const char *name);

/* Raw TLS connection with mbedTLS to 127.0.0.1:port. cert/key may be NULL (no client
 * certificate). tls_minor: 1 (TLS 1.0), 2 (1.1), 3 (1.2). Returns a handle, or NULL when
 * the TCP connection or the handshake failed (*hs_err gets the mbedTLS error, 0 if TCP). */
typedef struct fixture_tls fixture_tls_t;
fixture_tls_t *fixture_tls_connect(uint16_t port, const char *ca, const char *cert, const char *key,
                                   int tls_minor, int *hs_err);
/* All of buf: 0; -1 on error; -2 when the peer did not read for the timeout (below). */
int fixture_tls_write(fixture_tls_t *c, const void *buf, size_t len);
int fixture_tls_read(fixture_tls_t *c, void *buf, size_t cap); /* >0, 0 eof, -1, -2 timeout */
/* Reads and writes wait at most ms from now on (0 = forever). Returns 0. */
int fixture_tls_set_timeout(fixture_tls_t *c, unsigned ms);

/* A leaf certificate base.crt/base.key in dir, signed by dir's test CA (ca.key), valid from
 * an hour ago until not_after (e.g. a few seconds from now). Returns 0 or -1. */
int fixture_make_leaf(const char *dir, const char *base, const char *subject, time_t not_after);
void fixture_tls_close(fixture_tls_t *c);

/* Read whole file into a malloc'd NUL-terminated string (NULL on error). */
char *fixture_read_file(const char *path);

#endif
