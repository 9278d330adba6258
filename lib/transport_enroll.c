/* Enrollment on the wire (issue 23 item 2; lib/transport.h "Enrollment"): the transport's part
 * of subprotocol dfnet.enroll.v1, which a peer opens without a client certificate.
 *
 * The server presents its CA certificate after its own in the TLS chain (every listener,
 * every subprotocol: a peer that trusts the CA already ignores it), so that a peer that knows
 * only the CA's pin (the SHA-256 of its SubjectPublicKeyInfo DER) can find it in the chain,
 * check the pin, and verify the server's certificate against it before it sends anything
 * of its own. The client's check runs when the server answered the websocket upgrade,
 * before the session opens: the token and the CSR go out only in the session.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "lib/log.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

/* lws's mbedTLS wrapper (lib/tls/mbedtls/wrapper/platform/ssl_pm.c; exported by the static
 * library): the certificate chain an SSL_CTX presents. */
extern mbedtls_x509_crt *ssl_ctx_get_mbedtls_x509_crt(void *ssl_ctx);

int transport__server_chain_ca(transport__endpoint_t *ep, void *ssl_ctx) {
  if (ep == NULL || ep->is_client || ep->ca_file == NULL || ssl_ctx == NULL)
    return 0;
  mbedtls_x509_crt *own = ssl_ctx_get_mbedtls_x509_crt(ssl_ctx);
  if (own == NULL) {
    DFNET_LOGE(SUB, ep->ca_file, "the server's certificate chain is not loaded: cannot add the CA");
    return -1;
  }
  /* mbedtls_x509_crt_parse_file appends every certificate of the file to the chain */
  int rc = mbedtls_x509_crt_parse_file(own, ep->ca_file);
  if (rc != 0) {
    char e[200];
    DFNET_LOGE(SUB, ep->ca_file, "cannot add the CA to the server's chain: %s",
               transport__mbedtls_strerror(rc, e, sizeof e));
    return -1;
  }
  return 0;
}

/* The certificate of `chain` (after the first) whose SubjectPublicKeyInfo hashes to pin. */
static const mbedtls_x509_crt *find_pinned(const mbedtls_x509_crt *chain, const uint8_t pin[32]) {
  for (const mbedtls_x509_crt *c = chain ? chain->next : NULL; c != NULL; c = c->next) {
    uint8_t h[32];
    if (c->pk_raw.p != NULL && mbedtls_sha256_ret(c->pk_raw.p, c->pk_raw.len, h, 0) == 0 &&
        memcmp(h, pin, sizeof h) == 0)
      return c;
  }
  return NULL;
}

/* Verify leaf against ca alone (a copy: the chain's certificates are linked). 0: verified. */
static uint32_t verify_against(const mbedtls_x509_crt *leaf, const mbedtls_x509_crt *ca) {
  mbedtls_x509_crt anchor, one;
  mbedtls_x509_crt_init(&anchor);
  mbedtls_x509_crt_init(&one);
  uint32_t flags = (uint32_t)-1;
  if (mbedtls_x509_crt_parse_der(&anchor, ca->raw.p, ca->raw.len) == 0 &&
      mbedtls_x509_crt_parse_der(&one, leaf->raw.p, leaf->raw.len) == 0 &&
      mbedtls_x509_crt_verify(&one, &anchor, NULL, NULL, &flags, NULL, NULL) == 0)
    flags = 0;
  mbedtls_x509_crt_free(&one);
  mbedtls_x509_crt_free(&anchor);
  return flags;
}

/* The pinned CA: in the server's chain (then kept in ep->pinned_ca), or the one kept from an
 * earlier connection of this endpoint (a resumed TLS session carries only the server's own
 * certificate, from the full handshake that passed this check). NULL when neither. */
static const mbedtls_x509_crt *pinned_ca(transport__endpoint_t *ep, const mbedtls_x509_crt *chain) {
  const mbedtls_x509_crt *ca = find_pinned(chain, ep->ca_pin);
  if (ca != NULL && ep->pinned_ca.raw.p == NULL)
    (void)mbedtls_x509_crt_parse_der(&ep->pinned_ca, ca->raw.p, ca->raw.len);
  if (ca == NULL && ep->pinned_ca.raw.p != NULL)
    ca = &ep->pinned_ca;
  return ca;
}

bool transport__enroll_check_server(struct lws *wsi, transport__endpoint_t *ep,
                                    transport__peer_t *peer, char *why, size_t cap) {
  const mbedtls_x509_crt *chain = lws_tls_peer_mbedtls_crt(wsi, NULL);
  char pin[DFNET_PKI_PIN_TEXT_SIZE];
  dfnet_pki_pin_format(ep->ca_pin, pin);
  memset(peer, 0, sizeof *peer);
  if (chain == NULL) {
    snprintf(why, cap, "the manager presented no certificate");
    return false;
  }
  const mbedtls_x509_crt *ca = pinned_ca(ep, chain);
  uint32_t flags = ca != NULL ? verify_against(chain, ca) : (uint32_t)-1;
  if (ca == NULL || flags != 0) {
    snprintf(why, cap,
             "the manager's CA does not match --ca-pin %s%s: nothing was sent (the pin is "
             "the one `dfnet token create` printed)",
             pin, ca == NULL ? "" : " (its certificate does not verify against that CA)");
    return false;
  }
  char role[TRANSPORT__NAME_MAX + 1] = "";
  for (const mbedtls_x509_name *n = &chain->subject; n != NULL; n = n->next)
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_ORG_UNIT, &n->oid) == 0 && n->val.len < sizeof role) {
      memcpy(role, n->val.p, n->val.len);
      role[n->val.len] = '\0';
    }
  if (strcmp(role, "manager") != 0) {
    snprintf(why, cap, "the server's certificate has role %s, not manager", role[0] ? role : "?");
    return false;
  }
  if (!dfnet_pki_x509_matches_host(chain, ep->server_name)) {
    snprintf(why, cap,
             "the manager's certificate does not name %s (its SANs must include the name or "
             "address in the URL: dfnet-manager init --san)",
             ep->server_name);
    return false;
  }
  snprintf(peer->ou, sizeof peer->ou, "manager");
  snprintf(peer->cn, sizeof peer->cn, "dfnet-manager");
  peer->not_after = transport__crt_not_after(chain);
  return true;
}

void transport__enroll_anonymous_peer(transport__peer_t *peer) {
  memset(peer, 0, sizeof *peer);
  peer->role = dfnet_v1_Role_ROLE_UNSPECIFIED;
  /* no certificate to run out: the session lives at most this long */
  peer->not_after = time(NULL) + TRANSPORT__ENROLL_SESSION_S;
}
