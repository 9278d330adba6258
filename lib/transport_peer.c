/* Who is on the other end: the peer certificate checks of the transport (issue 3, "TLS and
 * who may connect"; docs/design.md "Security"). lws 4.1.6 with mbedTLS runs verification in
 * mbedTLS's *optional* mode and never looks at the result on the server side, so every
 * decision about a peer is taken here, from the certificate and verify flags that our lws
 * patch exposes (lws_tls_peer_mbedtls_crt).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "lib/hex.h"
#include "lib/pki.h"
#include "lib/role.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

const char *transport__mbedtls_strerror(int code, char *buf, size_t cap) {
  if (code == 0) {
    snprintf(buf, cap, "connection closed by the peer");
    return buf;
  }
  char text[160];
  mbedtls_strerror(code, text, sizeof(text));
  snprintf(buf, cap, "%s (-0x%04x)", text, (unsigned)-code);
  return buf;
}

time_t transport__crt_not_after(const mbedtls_x509_crt *crt) {
  struct tm end = {.tm_year = crt->valid_to.year - 1900,
                   .tm_mon = crt->valid_to.mon - 1,
                   .tm_mday = crt->valid_to.day,
                   .tm_hour = crt->valid_to.hour,
                   .tm_min = crt->valid_to.min,
                   .tm_sec = crt->valid_to.sec};
  return timegm(&end);
}

/* Copy the first attribute `oid` of a distinguished name into out (NUL-terminated). */
static bool name_attr(const mbedtls_x509_name *name, const char *oid, size_t oid_len, char *out,
                      size_t cap) {
  for (; name; name = name->next) {
    if (name->oid.len != oid_len || memcmp(name->oid.p, oid, oid_len) != 0)
      continue;
    if (name->val.len >= cap)
      return false;
    memcpy(out, name->val.p, name->val.len);
    out[name->val.len] = '\0';
    /* a name with an embedded NUL or control character is not one of ours */
    for (size_t i = 0; i < name->val.len; i++)
      if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
        return false;
    return true;
  }
  return false;
}

static void describe_flags(uint32_t flags, char *why, size_t cap, const char *cn) {
  const char *what;
  if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
    what = "certificate has expired";
  else if (flags & MBEDTLS_X509_BADCERT_FUTURE)
    what = "certificate is not yet valid";
  else if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
    what = "certificate is not signed by our CA";
  else if (flags & MBEDTLS_X509_BADCERT_REVOKED)
    what = "certificate is revoked";
  else if (flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE))
    what = "certificate's key usage does not allow TLS";
  else if (flags & (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
                    MBEDTLS_X509_BADCERT_BAD_KEY))
    what = "certificate uses an unacceptable algorithm or key";
  else
    what = "certificate verification failed";
  snprintf(why, cap, "%s (CN=%s, mbedTLS flags 0x%x)", what, cn[0] ? cn : "?", (unsigned)flags);
}

bool transport__peer_verify(struct lws *wsi, transport__peer_t *peer, char *why, size_t why_cap) {
  uint32_t flags = 0;
  const mbedtls_x509_crt *crt = lws_tls_peer_mbedtls_crt(wsi, &flags);
  memset(peer, 0, sizeof(*peer));
  if (crt == NULL) {
    snprintf(why, why_cap, "no certificate presented (mutual TLS is required)");
    return false;
  }
  if (!name_attr(&crt->subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), peer->cn,
                 sizeof(peer->cn)))
    peer->cn[0] = '\0';
  /* A resumed TLS session carries the verification result of the handshake that made it:
   * check the validity period again, for a certificate that expired since. */
  if (mbedtls_x509_time_is_past(&crt->valid_to))
    flags |= MBEDTLS_X509_BADCERT_EXPIRED;
  if (mbedtls_x509_time_is_future(&crt->valid_from))
    flags |= MBEDTLS_X509_BADCERT_FUTURE;
  if (flags != 0) {
    describe_flags(flags, why, why_cap, peer->cn);
    return false;
  }
  if (peer->cn[0] == '\0') {
    snprintf(why, why_cap, "certificate has no usable subject CN");
    return false;
  }
  if (!name_attr(&crt->subject, MBEDTLS_OID_AT_ORG_UNIT, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT),
                 peer->ou, sizeof(peer->ou))) {
    snprintf(why, why_cap, "certificate of %s carries no role (subject OU)", peer->cn);
    return false;
  }
  const dfnet_role_t *role = dfnet_role_by_name(peer->ou);
  peer->role = role != NULL ? role->wire : dfnet_v1_Role_ROLE_UNSPECIFIED;
  peer->not_after = transport__crt_not_after(crt);
  /* the serial number's content octets (RFC 5280 §4.1.2.2: at most 20), and its hex */
  if (crt->serial.len == 0 || crt->serial.len > DFNET_TRANSPORT_SERIAL_MAX) {
    snprintf(why, why_cap, "certificate of %s has a serial number of %zu octets (1..%d)", peer->cn,
             (size_t)crt->serial.len, DFNET_TRANSPORT_SERIAL_MAX);
    return false;
  }
  memcpy(peer->serial, crt->serial.p, crt->serial.len);
  peer->serial_len = crt->serial.len;
  dfnet_hex_encode(peer->serial, peer->serial_len, peer->serial_hex);
  return true;
}

const char *transport__role_refusal(const char *ou, const char *subprotocol) {
  if (subprotocol == NULL || subprotocol[0] == '\0')
    return "no websocket subprotocol requested";
  bool host = strcmp(subprotocol, DFNET_SUBPROTOCOL_HOST) == 0;
  if (!host && strcmp(subprotocol, DFNET_SUBPROTOCOL_CLIENT) != 0)
    return "unknown websocket subprotocol";
  const dfnet_role_t *role = dfnet_role_by_name(ou);
  if (role != NULL && role->subprotocol != NULL && strcmp(role->subprotocol, subprotocol) == 0)
    return NULL;
  return host ? "role may not use subprotocol " DFNET_SUBPROTOCOL_HOST
              : "role may not use subprotocol " DFNET_SUBPROTOCOL_CLIENT;
}

bool transport__peer_matches_host(struct lws *wsi, const char *host) {
  /* One hostname check for all of dfnet: lib/pki_verify.c (RFC 6125; IP literals only against
   * iPAddress SANs). */
  return dfnet_pki_x509_matches_host(lws_tls_peer_mbedtls_crt(wsi, NULL), host);
}
