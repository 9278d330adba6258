/* Internals shared by lib/transport*.c (not a public header). */
#ifndef DFNET_LIB_TRANSPORT_INTERNAL_H
#define DFNET_LIB_TRANSPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libwebsockets.h>

#include "dfnet/status.h"
#include "dfnet/v1/session.pb.h"

#define TRANSPORT__NAME_MAX 64

/* What a peer's certificate says, once verified. */
typedef struct transport__peer {
  char cn[TRANSPORT__NAME_MAX + 1];
  char ou[TRANSPORT__NAME_MAX + 1];
  dfnet_v1_Role role;
  time_t not_after; /* the end of the certificate's validity (UTC seconds) */
} transport__peer_t;

/* Check the peer certificate of an lws connection: present, verified against our CA,
 * within its validity. On success fills *peer (CN, OU, role) and returns true; otherwise
 * writes the reason (one line) into why[0..why_cap) and returns false. */
bool transport__peer_verify(struct lws *wsi, transport__peer_t *peer, char *why, size_t why_cap)
    __attribute__((warn_unused_result));

/* May a certificate with role OU `ou` use `subprotocol` on our server? NULL why on
 * success; otherwise a static reason. */
const char *transport__role_refusal(const char *ou, const char *subprotocol);

/* Does the peer certificate of `wsi` name `host`: an IP literal matches an iPAddress SAN;
 * a DNS name matches a dNSName SAN (case-insensitive, "*." wildcard on the leftmost
 * label); without any SAN, the CN. */
bool transport__peer_matches_host(struct lws *wsi, const char *host);

/* mbedTLS error text for logs ("SSL - ..."), into buf. */
const char *transport__mbedtls_strerror(int code, char *buf, size_t cap);

#endif /* DFNET_LIB_TRANSPORT_INTERNAL_H */
