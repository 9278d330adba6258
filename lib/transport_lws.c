/* The lws callback of every endpoint (transport__lws_cb): one function per reason. On the
 * server, the checks of a websocket upgrade (the peer's certificate, its role on the
 * subprotocol; a refusal answered with HTTP 403 and its reason); on the client, the checks
 * of the server's certificate; on both, a session's life: established, data, pongs,
 * writable, the peer's close, closed.
 */
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "lib/log.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"
/* The handlers of a connection's events (not of its messages) stay out of line: the
 * callback's per-message cases (data, writable, pong) are then a jump and a tail call,
 * without the stack frame the others need. */
#define CONNECTION_HANDLER __attribute__((noinline))

static void refuse_log(struct lws *wsi, const char *who, const char *why) {
  char addr[64];
  transport__peer_address(wsi, addr, sizeof(addr));
  DFNET_LOGW(SUB, addr, "refused%s%s: %s", who && who[0] ? " " : "", who ? who : "", why);
}

/* Answer a refused upgrade with HTTP 403 and the reason in an x-dfnet-refused header
 * ("<STATUS>: <why>"), so the client can tell its user (our lws patch 0004 hands it to the
 * client's connection-error callback). Returns 1 (response written: lws ends the
 * transaction and closes), or -1 when it could not be written (lws just closes). */
static int refuse_upgrade(struct lws *wsi, dfnet_status_t code, const char *why) {
  uint8_t buf[LWS_PRE + 640];
  uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
  char value[300];
  int n = snprintf(value, sizeof value, "%s: %s", dfnet_status_str(code), why);
  size_t vlen = n < 0 ? 0 : (size_t)n < sizeof value ? (size_t)n : sizeof value - 1;
  for (size_t i = 0; i < vlen; i++) /* one header line: no control characters */
    if ((unsigned char)value[i] < 0x20)
      value[i] = ' ';
  if (lws_add_http_header_status(wsi, HTTP_STATUS_FORBIDDEN, &p, end) ||
      lws_add_http_header_by_name(wsi, (const unsigned char *)"x-dfnet-refused:",
                                  (const unsigned char *)value, (int)vlen, &p, end) ||
      lws_add_http_header_content_length(wsi, 0, &p, end) || lws_finalize_http_header(wsi, &p, end))
    return -1;
  if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < 0)
    return -1;
  return 1;
}

/* The endpoint of wsi's vhost (a server's: a client's connection names its endpoint in
 * its opaque user data), or NULL. */
static transport__endpoint_t *vhost_endpoint(struct lws *wsi) {
  struct lws_vhost *vh = lws_get_vhost(wsi);
  return vh ? lws_vhost_user(vh) : NULL;
}

/* Has the owner of wsi's server endpoint revoked the peer's certificate (is_revoked)? On
 * true, why says so. A resumed TLS session is asked about too: its peer is the one of the
 * session's certificate. */
static bool revoked(struct lws *wsi, const transport__peer_t *peer, char *why, size_t cap) {
  transport__endpoint_t *ep = vhost_endpoint(wsi);
  if (ep == NULL || ep->is_client || ep->is_revoked == NULL)
    return false;
  why[0] = '\0';
  if (!ep->is_revoked(ep->user, peer->serial, peer->serial_len, peer->cn, why, cap))
    return false;
  if (why[0] == '\0')
    snprintf(why, cap, "certificate %s of %s is revoked", peer->serial_hex, peer->cn);
  return true;
}

/* An enrollment peer (DFNET_SUBPROTOCOL_ENROLL): anonymous, whatever certificate it has. */
static int enroll_accept(transport__pss_t *pss) {
  if (pss) {
    transport__enroll_anonymous_peer(&pss->peer);
    pss->checked = true;
  }
  return 0;
}

/* The upgrade's checks (the peer's certificate, its role on this subprotocol). Returns 0
 * when the peer may open a session; else logs the refusal once and, when respond, answers
 * it (refuse_upgrade) and returns its result; else -1. */
static int server_check_upgrade(struct lws *wsi, transport__pss_t *pss, bool respond) {
  char why[256];
  char proto[64] = "";
  if (lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) < 0)
    proto[0] = '\0';
  transport__peer_t peer;
  if (strcmp(proto, DFNET_SUBPROTOCOL_ENROLL) == 0) /* no certificate needed: one Enroll */
    return enroll_accept(pss);
  if (!transport__peer_verify(wsi, &peer, why, sizeof(why))) {
    refuse_log(wsi, NULL, why);
    return respond ? refuse_upgrade(wsi, DFNET_STATUS_UNAUTHENTICATED, why) : -1;
  }
  /* one subprotocol, exactly ours */
  const char *refusal = transport__role_refusal(peer.ou, proto);
  if (refusal == NULL && revoked(wsi, &peer, why, sizeof why)) {
    refuse_log(wsi, NULL, why);
    return respond ? refuse_upgrade(wsi, DFNET_STATUS_UNAUTHENTICATED, why) : -1;
  }
  if (refusal) {
    char who[240];
    snprintf(who, sizeof(who), "%s (role %s, subprotocol \"%s\")", peer.cn, peer.ou, proto);
    refuse_log(wsi, who, refusal);
    if (!respond)
      return -1;
    snprintf(why, sizeof why, "the certificate of %s has role %s: %s", peer.cn, peer.ou, refusal);
    return refuse_upgrade(wsi, DFNET_STATUS_PERMISSION_DENIED, why);
  }
  if (pss) {
    pss->peer = peer;
    pss->checked = true;
  }
  return 0;
}

static const char *close_text(const void *in, size_t len, char *buf, size_t cap) {
  /* LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: 2-byte code then text */
  if (in == NULL || len < 2) {
    snprintf(buf, cap, "peer closed");
    return buf;
  }
  const uint8_t *p = in;
  snprintf(buf, cap, "peer closed (%u%s%.*s)", (unsigned)(p[0] << 8 | p[1]), len > 2 ? ": " : "",
           (int)(len - 2 > 100 ? 100 : len - 2), (const char *)p + 2);
  return buf;
}

/* ---- Server ------------------------------------------------------------------------- */

/* Server: how a TLS handshake went; a failed one is logged as a refusal. */
CONNECTION_HANDLER static int on_ssl_info(struct lws *wsi, const struct lws_ssl_info *si) {
  if (si && si->where == LWS_SSL_INFO_DFNET_HANDSHAKE_FAILED) {
    char why[256], e[200];
    snprintf(why, sizeof(why), "TLS handshake failed: %s",
             transport__mbedtls_strerror(si->ret, e, sizeof(e)));
    refuse_log(wsi, NULL, why);
  }
  return 0;
}

/* Server: a plain HTTP request, not a websocket upgrade. An endpoint without on_http answers
 * it 403 and closes; otherwise it goes to the owner (transport_http.c) with the client
 * certificate the peer presented, if that one passes every check a websocket peer's does
 * (one that does not is logged, and the request goes on without it). */
CONNECTION_HANDLER static int on_http(struct lws *wsi, transport__endpoint_t *ep,
                                      transport__pss_t *pss) {
  if (ep == NULL || ep->is_client || ep->on_http == NULL) {
    refuse_log(wsi, NULL, "plain HTTP request, not a websocket upgrade");
    lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
    return -1;
  }
  if (ep->plain_http)
    return transport__http_request(wsi, ep, pss, NULL);
  transport__peer_t peer;
  char why[256];
  bool ok = transport__peer_verify(wsi, &peer, why, sizeof why);
  if (!ok && strncmp(why, "no certificate", 14) != 0)
    refuse_log(wsi, "the certificate of an HTTP request", why);
  if (ok && revoked(wsi, &peer, why, sizeof why)) {
    refuse_log(wsi, "the certificate of an HTTP request", why);
    ok = false;
  }
  return transport__http_request(wsi, ep, pss, ok ? &peer : NULL);
}

/* Server: the websocket upgrade request of a TLS connection. 0 = accept. */
CONNECTION_HANDLER static int on_confirm_upgrade(struct lws *wsi, const char *upgrade) {
  if (upgrade == NULL || strcmp(upgrade, "websocket") != 0) {
    refuse_log(wsi, NULL, "upgrade to something other than websocket");
    return -1;
  }
  return server_check_upgrade(wsi, NULL, true);
}

/* Server: lws bound the connection to one of our protocols. 0 = accept. */
CONNECTION_HANDLER static int on_filter_protocol(struct lws *wsi, transport__endpoint_t *ep,
                                                 transport__pss_t *pss) {
  const struct lws_protocols *pr = lws_get_protocol(wsi);
  if (ep == NULL || ep->is_client || pr == NULL || pr == &ep->protocols[0]) {
    refuse_log(wsi, NULL, "no dfnet subprotocol requested");
    return -1;
  }
  if (ep->t->shutting_down)
    return -1; /* closing down: no new sessions */
  /* second line of defence: the same checks as at CONFIRM_UPGRADE, on the bound pss */
  return server_check_upgrade(wsi, pss, false) ? -1 : 0;
}

/* Server: the websocket is up: the checked peer's session opens. */
CONNECTION_HANDLER static int on_established(struct lws *wsi, transport__endpoint_t *ep,
                                             transport__pss_t *pss) {
  const struct lws_protocols *pr = lws_get_protocol(wsi);
  if (ep == NULL || pss == NULL || !pss->checked || pr == NULL)
    return -1;
  pss->s = transport__session_open(ep, wsi, &pss->peer, pr->name);
  return pss->s ? 0 : -1;
}

/* ---- Client ------------------------------------------------------------------------- */

/* Client: the server's answer to our upgrade, before the websocket is up: check its
 * certificate (our CA, the expected role, the URL's name). A refusal is kept in
 * ep->refusal for the connection error that follows. 0 = accept. */
CONNECTION_HANDLER static int on_client_filter_pre_establish(struct lws *wsi,
                                                             transport__pss_t *pss) {
  char why[256];
  transport__endpoint_t *ep = lws_get_opaque_user_data(wsi);
  if (ep == NULL || pss == NULL)
    return -1;
  transport__peer_t peer;
  if (ep->enroll) {
    if (!transport__enroll_check_server(wsi, ep, &peer, why, sizeof why))
      snprintf(ep->refusal, sizeof ep->refusal, "%s", why);
  } else if (!transport__peer_verify(wsi, &peer, why, sizeof(why))) {
    snprintf(ep->refusal, sizeof ep->refusal, "the server's certificate was refused: %s", why);
  } else if (ep->server_role[0] && strcmp(peer.ou, ep->server_role) != 0) {
    snprintf(ep->refusal, sizeof ep->refusal,
             "the server's certificate (%s) has role %s, not %s: it is not the %s", peer.cn,
             peer.ou, ep->server_role, ep->server_role);
  } else if (!transport__peer_matches_host(wsi, ep->server_name)) {
    snprintf(ep->refusal, sizeof ep->refusal,
             "the %s's certificate (%s) does not name %s (its SANs must include the name or "
             "address in the URL: dfnet-manager init --san)",
             ep->server_role[0] ? ep->server_role : "server", peer.cn, ep->server_name);
  }
  if (ep->refusal[0] != '\0') {
    ep->refusal_code = DFNET_STATUS_UNAUTHENTICATED;
    return -1;
  }
  pss->peer = peer;
  pss->checked = true;
  return 0;
}

/* Client: the websocket is up: the endpoint's backoff starts over, its session opens. */
CONNECTION_HANDLER static int on_client_established(struct lws *wsi, transport__pss_t *pss) {
  transport__endpoint_t *ep = lws_get_opaque_user_data(wsi);
  if (ep == NULL || pss == NULL || !pss->checked)
    return -1;
  transport__client_connected(ep);
  pss->s = transport__session_open(ep, wsi, &pss->peer, ep->subprotocol);
  return pss->s ? 0 : -1;
}

/* Client: the attempt failed (in: lws's text, or NULL): say why, try again later. */
CONNECTION_HANDLER static int on_client_connection_error(struct lws *wsi, transport__pss_t *pss,
                                                         const char *in) {
  transport__endpoint_t *ep = lws_get_opaque_user_data(wsi);
  if (ep == NULL)
    return 0;
  transport__client_connect_error(ep, in);
  ep->wsi = NULL;
  if (pss && pss->s) {
    transport__session_finalize(pss->s, "connection error");
    pss->s = NULL;
  }
  transport__client_schedule_retry(ep);
  return 0;
}

/* ---- Both --------------------------------------------------------------------------- */

/* The peer sent a close frame (in: its 2-byte code, then text). Unless we are killing the
 * session already, its reason becomes the session's. */
CONNECTION_HANDLER static int on_peer_close(transport__pss_t *pss, const uint8_t *in, size_t len) {
  if (pss == NULL || pss->s == NULL || pss->s->kill_reason_set)
    return 0;
  transport__session_t *s = pss->s;
  /* 1000 (normal) or 1001 (going away): the peer is done, nothing went wrong (logged at
   * debug level); our requests still waiting on it end UNAVAILABLE all the same */
  unsigned code = in != NULL && len >= 2 ? (unsigned)(in[0] << 8 | in[1]) : 0;
  s->peer_closed_cleanly = code == LWS_CLOSE_STATUS_NORMAL || code == LWS_CLOSE_STATUS_GOINGAWAY;
  s->kill_reason_set = true;
  s->kill_reason = DFNET_STATUS_UNAVAILABLE;
  close_text(in, len, s->kill_msg, sizeof(s->kill_msg));
  /* 1008 "<STATUS>: why" (our close_status): the peer says what ended the session */
  char text[128], name[24];
  dfnet_status_t given;
  snprintf(text, sizeof text, "%.*s", len > 2 ? (int)(len - 2 < 127 ? len - 2 : 127) : 0,
           len > 2 ? (const char *)in + 2 : "");
  if (code == LWS_CLOSE_STATUS_POLICY_VIOLATION && sscanf(text, "%23[A-Z_]:", name) == 1 &&
      dfnet_status_from_str(name, &given) == DFNET_STATUS_OK && given != DFNET_STATUS_OK) {
    s->kill_reason = given;
    s->peer_status_given = true;
  }
  return 0;
}

/* The connection is gone (client: CLIENT_CLOSED, then connect again after the backoff). */
CONNECTION_HANDLER static int on_closed(struct lws *wsi, transport__pss_t *pss, bool client) {
  if (pss && pss->s) {
    transport__session_finalize(pss->s, "connection lost");
    pss->s = NULL;
  }
  if (client) {
    transport__endpoint_t *ep = lws_get_opaque_user_data(wsi);
    if (ep) {
      ep->lost_ms = dfnet_transport_now_ms(); /* the backoff's restart period */
      ep->wsi = NULL;
      transport__client_schedule_retry(ep);
    }
  }
  return 0;
}

/* Client: the endpoint's current connection is destroyed and neither CONNECTION_ERROR nor
 * CLIENT_CLOSED said so (they clear ep->wsi first): seen once in bench/reconnect_storm with
 * 1,000 hosts, two endpoints kept a dangling wsi and never connected again. Try again with
 * the backoff as after any failed attempt. */
static void client_attempt_gone(struct lws *wsi) {
  transport__endpoint_t *ep = lws_get_opaque_user_data(wsi);
  if (ep == NULL || !ep->is_client || ep->wsi != wsi)
    return;
  ep->wsi = NULL;
  transport__client_schedule_retry(ep);
}

int transport__lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len) {
  transport__pss_t *pss = user;
  switch (reason) {
  /* -- server -- */
  case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: /* user: the SSL_CTX, in: vhost */
    return in ? transport__server_chain_ca(lws_vhost_user(in), user) : 0;
  case LWS_CALLBACK_SSL_INFO:
    return on_ssl_info(wsi, in);
  case LWS_CALLBACK_HTTP:
    return on_http(wsi, vhost_endpoint(wsi), pss);
  case LWS_CALLBACK_HTTP_BODY:
    return transport__http_body(pss, in, len);
  case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    return transport__http_body_done(pss);
  case LWS_CALLBACK_HTTP_WRITEABLE:
    return transport__http_writable(pss);
  case LWS_CALLBACK_CLOSED_HTTP:
    transport__http_closed(pss);
    return 0;
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    return on_confirm_upgrade(wsi, in);
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    return on_filter_protocol(wsi, vhost_endpoint(wsi), pss);
  case LWS_CALLBACK_ESTABLISHED:
    return on_established(wsi, vhost_endpoint(wsi), pss);

  /* -- client -- */
  case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
    return on_client_filter_pre_establish(wsi, pss);
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    return on_client_established(wsi, pss);
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    return on_client_connection_error(wsi, pss, in);

  /* -- both -- */
  case LWS_CALLBACK_RECEIVE:
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (pss == NULL || pss->s == NULL)
      return -1;
    return transport__on_receive(pss->s, wsi, in, len);
  case LWS_CALLBACK_RECEIVE_PONG:
  case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
    if (pss && pss->s)
      pss->s->last_rx_ms = dfnet_transport_now_ms();
    return 0;
  case LWS_CALLBACK_SERVER_WRITEABLE:
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (pss == NULL || pss->s == NULL)
      return 0;
    return transport__on_writable(pss->s, wsi);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    return on_peer_close(pss, in, len);
  case LWS_CALLBACK_CLOSED:
  case LWS_CALLBACK_CLIENT_CLOSED:
    return on_closed(wsi, pss, reason == LWS_CALLBACK_CLIENT_CLOSED);
  case LWS_CALLBACK_WSI_DESTROY:
    if (vhost_endpoint(wsi) != NULL) /* every connection, sessions or not (see the loop) */
      vhost_endpoint(wsi)->t->connections_gone++;
    transport__http_closed(pss);
    if (pss && pss->s) { /* closed without CLOSED (should not happen) */
      transport__session_finalize(pss->s, "connection lost");
      pss->s = NULL;
    }
    client_attempt_gone(wsi);
    return 0;
  default:
    return 0;
  }
}
