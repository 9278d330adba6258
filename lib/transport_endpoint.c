/* Endpoints (lib/transport.h "Model"): servers (dfnet_transport_listen: the certificate and
 * key checked before lws, an address that cannot be bound explained) and clients
 * (dfnet_transport_connect: the URL, the lws client connection, reconnecting with backoff,
 * and why an attempt failed, in the user's terms).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/log.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

/* The most lws may hand TLS in one go for an endpoint: a whole fragment or batch (lws
 * otherwise cuts a write at its rx buffer size and copies the rest aside). */
static size_t tx_packet_size(const dfnet_transport_limits_t *l) {
  size_t n =
      l->fragment_bytes > TRANSPORT__BATCH_BYTES ? l->fragment_bytes : TRANSPORT__BATCH_BYTES;
  return n + TRANSPORT__WS_HDR_MAX + 64;
}

/* One of an endpoint's lws protocols: our callback, our per-connection data, buffers
 * sized for its limits. */
static struct lws_protocols endpoint_protocol(const char *name,
                                              const dfnet_transport_limits_t *limits) {
  return (struct lws_protocols){.name = name,
                                .callback = transport__lws_cb,
                                .per_session_data_size = sizeof(transport__pss_t),
                                .rx_buffer_size = TRANSPORT__PT_SERV_BUF,
                                .tx_packet_size = tx_packet_size(limits)};
}

static void limits_resolve(const dfnet_transport_limits_t *in, dfnet_transport_limits_t *out) {
  *out = *in;
  if (!out->max_message_bytes)
    out->max_message_bytes = DFNET_TRANSPORT_MAX_MESSAGE_DEFAULT;
  if (!out->send_hwm_bytes)
    out->send_hwm_bytes = DFNET_TRANSPORT_SEND_HWM_DEFAULT;
  if (!out->fragment_bytes)
    out->fragment_bytes = DFNET_TRANSPORT_FRAGMENT_DEFAULT;
  if (!out->keepalive_ms)
    out->keepalive_ms = DFNET_TRANSPORT_KEEPALIVE_MS_DEFAULT;
  if (!out->batch_messages)
    out->batch_messages = DFNET_TRANSPORT_BATCH_MESSAGES_DEFAULT;
  if (out->batch_messages > TRANSPORT__BATCH_BYTES / 1024u)
    out->batch_messages = TRANSPORT__BATCH_BYTES / 1024u;
}

static dfnet_status_t check_file(const char *what, const char *path) {
  if (path == NULL || path[0] == '\0') {
    DFNET_LOGE(SUB, NULL, "%s: no file name given", what);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    DFNET_LOGE(SUB, path, "%s: cannot open: %s", what, strerror(errno));
    return errno == ENOENT ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_PERMISSION_DENIED;
  }
  fclose(f);
  return DFNET_STATUS_OK;
}

/* The server's certificate and key load and belong together. Logs what does not, once. */
static dfnet_status_t check_server_identity(const dfnet_server_config_t *cfg) {
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_key_t *key = NULL;
  dfnet_status_t st = dfnet_pki_cert_load(cfg->cert_file, &cert);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE(SUB, cfg->cert_file, "the server certificate does not load: %s",
               dfnet_status_str(st));
  } else if ((st = dfnet_pki_key_load(cfg->key_file, &key)) != DFNET_STATUS_OK) {
    DFNET_LOGE(SUB, cfg->key_file, "the server key does not load: %s", dfnet_status_str(st));
  } else if ((st = dfnet_pki_key_check_pair(cert, key)) != DFNET_STATUS_OK) {
    DFNET_LOGE(SUB, cfg->key_file, "the server key does not belong to certificate %s",
               cfg->cert_file);
  }
  dfnet_pki_key_free(key);
  dfnet_pki_cert_free(cert);
  return st == DFNET_STATUS_OK ? st : DFNET_STATUS_INVALID_ARGUMENT;
}

/* Why the listening socket cannot be made: bind a probe socket the way lws would and
 * return its errno (0 when the probe binds: the failure lies elsewhere). */
static int probe_bind(const char *address, uint16_t port) {
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (address == NULL || address[0] == '\0') {
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(port);
    len = sizeof *in6;
  } else if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    len = sizeof *in6;
  } else {
    return EADDRNOTAVAIL; /* not an address (lws takes interface names: not ours to use) */
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int err = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : errno;
  close(fd);
  return err;
}

static transport__endpoint_t *endpoint_new(dfnet_transport_t *t, bool is_client,
                                           const dfnet_transport_limits_t *limits,
                                           const dfnet_transport_callbacks_t *cb, void *user) {
  if (t->n_endpoints >= TRANSPORT__MAX_ENDPOINTS) {
    DFNET_LOGE(SUB, NULL, "too many endpoints (at most %d)", TRANSPORT__MAX_ENDPOINTS);
    return NULL;
  }
  transport__endpoint_t *ep = calloc(1, sizeof(*ep));
  if (ep == NULL)
    return NULL;
  ep->t = t;
  ep->id = (dfnet_endpoint_id_t)t->n_endpoints + 1;
  ep->is_client = is_client;
  limits_resolve(limits, &ep->limits);
  ep->cb = *cb;
  ep->user = user;
  return ep;
}

void transport__endpoint_free(transport__endpoint_t *ep) {
  if (ep == NULL)
    return;
  free(ep->url);
  free(ep->host);
  free(ep->path);
  free(ep->subprotocol);
  free(ep->server_name);
  free(ep->server_role);
  free(ep->cert_file);
  free(ep->key_file);
  free(ep->ca_file);
  mbedtls_x509_crt_free(&ep->pinned_ca); /* enrollment clients (transport_enroll.c) */
  transport__name_t *n, *next;           /* reloaded identities' (transport_identity.c) */
  LL_FOREACH_SAFE(ep->vhost_names, n, next) {
    free(n);
  }
  transport__tickets_free(ep->tickets);
  free(ep);
}

/* The listening vhost of cfg could not be made: log why, once. The certificate and key
 * loaded before, so it is the address (or lws's TLS set-up). */
static void listen_failed(const dfnet_server_config_t *cfg) {
  int err = probe_bind(cfg->bind_address, cfg->port);
  const char *addr = cfg->bind_address ? cfg->bind_address : "*";
  if (err == EADDRINUSE)
    DFNET_LOGE(SUB, NULL,
               "cannot listen on %s:%u: address in use (another process listens "
               "there)",
               addr, (unsigned)cfg->port);
  else if (err != 0)
    DFNET_LOGE(SUB, NULL, "cannot listen on %s:%u: %s", addr, (unsigned)cfg->port, strerror(err));
  else
    DFNET_LOGE(SUB, NULL,
               "cannot listen on %s:%u: the TLS set-up with certificate %s, key %s "
               "and CA %s failed (see the lines above)",
               addr, (unsigned)cfg->port, cfg->cert_file, cfg->key_file, cfg->ca_file);
}

/* The listener's RFC 5077 session tickets, when cfg names a key file: one that cannot be
 * used is logged and the listener goes on without tickets (full handshakes still work). */
static void listen_tickets(transport__endpoint_t *ep, const dfnet_server_config_t *cfg) {
  if (cfg->ticket_key_file == NULL || cfg->ticket_key_file[0] == '\0')
    return;
  if (transport__tickets_enable(ep, cfg->ticket_key_file, cfg->ticket_rotate_secs) ==
      DFNET_STATUS_OK)
    return;
  lws_tls_vhost_session_tickets(ep->vhost, NULL, NULL, NULL);
  transport__tickets_free(ep->tickets);
  ep->tickets = NULL;
  DFNET_LOGE(SUB, cfg->ticket_key_file, "listening without TLS session tickets");
}

/* A listening vhost's creation info: its name ("dfnet-<kind>-<id>", kept in ep), address,
 * port, ep's protocols, ep as its user. */
static void listen_info(transport__endpoint_t *ep, const char *kind, const char *bind_address,
                        uint16_t port, struct lws_context_creation_info *info) {
  memset(info, 0, sizeof *info);
  snprintf(ep->vhost_name, sizeof ep->vhost_name, "dfnet-%s-%u", kind, (unsigned)ep->id);
  info->vhost_name = ep->vhost_name;
  info->port = port;
  info->iface = bind_address;
  info->protocols = ep->protocols;
  info->user = ep;
  /* An IPv4 address must be bound as such: with IPv6 on, lws 4.1 makes an IPv6 socket,
   * cannot map the IPv4 literal and binds it to every address ("127.0.0.1" was reachable
   * from the network). */
  struct in_addr v4;
  if (bind_address != NULL && inet_pton(AF_INET, bind_address, &v4) == 1)
    info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
}

dfnet_status_t dfnet_transport_listen(dfnet_transport_t *t, const dfnet_server_config_t *cfg,
                                      dfnet_endpoint_id_t *endpoint_out, uint16_t *port_out) {
  if (t == NULL || cfg == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st;
  if ((st = check_file("server certificate", cfg->cert_file)) != DFNET_STATUS_OK ||
      (st = check_file("server key", cfg->key_file)) != DFNET_STATUS_OK ||
      (st = check_file("CA certificate", cfg->ca_file)) != DFNET_STATUS_OK ||
      (st = check_server_identity(cfg)) != DFNET_STATUS_OK)
    return st;
  transport__endpoint_t *ep = endpoint_new(t, false, &cfg->limits, &cfg->callbacks, cfg->user);
  if (ep == NULL)
    return DFNET_STATUS_INTERNAL;
  ep->is_revoked = cfg->is_revoked;
  ep->on_http = cfg->on_http;
  ep->on_http_gone = cfg->on_http_gone;
  ep->ca_file = strdup(cfg->ca_file); /* presented after our certificate (transport_enroll.c) */
  if (ep->ca_file == NULL) {
    transport__endpoint_free(ep);
    return DFNET_STATUS_INTERNAL;
  }

  ep->protocols[0] = endpoint_protocol("dfnet-http", &ep->limits);
  ep->protocols[1] = endpoint_protocol(DFNET_SUBPROTOCOL_HOST, &ep->limits);
  ep->protocols[2] = endpoint_protocol(DFNET_SUBPROTOCOL_CLIENT, &ep->limits);
  ep->protocols[3] = endpoint_protocol(DFNET_SUBPROTOCOL_ENROLL, &ep->limits);

  struct lws_context_creation_info info;
  listen_info(ep, "server", cfg->bind_address, cfg->port, &info);
  info.ssl_cert_filepath = cfg->cert_file;
  info.ssl_private_key_filepath = cfg->key_file;
  info.ssl_ca_filepath = cfg->ca_file;
  /* asks the client for its certificate; lws+mbedTLS then only *records* the verdict,
   * which transport__lws_cb enforces at the websocket upgrade */
  info.options |=
      LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
  ep->vhost = lws_create_vhost(t->ctx, &info);
  if (ep->vhost == NULL) {
    listen_failed(cfg);
    transport__endpoint_free(ep);
    return DFNET_STATUS_UNAVAILABLE;
  }
  t->endpoints[t->n_endpoints++] = ep;
  listen_tickets(ep, cfg);
  int port = lws_get_vhost_listen_port(ep->vhost);
  DFNET_LOGI(SUB, NULL, "listening on %s:%d", cfg->bind_address ? cfg->bind_address : "*", port);
  if (endpoint_out)
    *endpoint_out = ep->id;
  if (port_out)
    *port_out = (uint16_t)port;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_listen_http(dfnet_transport_t *t,
                                           const dfnet_http_server_config_t *cfg,
                                           dfnet_endpoint_id_t *endpoint_out, uint16_t *port_out) {
  if (t == NULL || cfg == NULL || cfg->on_http == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  static const dfnet_transport_limits_t no_limits;
  static const dfnet_transport_callbacks_t no_callbacks;
  transport__endpoint_t *ep = endpoint_new(t, false, &no_limits, &no_callbacks, cfg->user);
  if (ep == NULL)
    return DFNET_STATUS_INTERNAL;
  ep->plain_http = true;
  ep->on_http = cfg->on_http;
  ep->on_http_gone = cfg->on_http_gone;
  ep->protocols[0] = endpoint_protocol("dfnet-http", &ep->limits);

  struct lws_context_creation_info info;
  listen_info(ep, "http", cfg->bind_address, cfg->port, &info);
  ep->vhost = lws_create_vhost(t->ctx, &info);
  if (ep->vhost == NULL) {
    int err = probe_bind(cfg->bind_address, cfg->port);
    DFNET_LOGE(SUB, NULL, "cannot listen for HTTP on %s:%u: %s",
               cfg->bind_address ? cfg->bind_address : "*", (unsigned)cfg->port,
               err == EADDRINUSE ? "address in use (another process listens there)"
               : err != 0        ? strerror(err)
                                 : "libwebsockets could not make the listener");
    transport__endpoint_free(ep);
    return DFNET_STATUS_UNAVAILABLE;
  }
  t->endpoints[t->n_endpoints++] = ep;
  int port = lws_get_vhost_listen_port(ep->vhost);
  DFNET_LOGI(SUB, NULL, "listening for HTTP on %s:%d", cfg->bind_address ? cfg->bind_address : "*",
             port);
  if (endpoint_out)
    *endpoint_out = ep->id;
  if (port_out)
    *port_out = (uint16_t)port;
  return DFNET_STATUS_OK;
}

/* "wss://host[:port][/path]", host may be "[v6]". */
static dfnet_status_t parse_url(transport__endpoint_t *ep, const char *url) {
  const char *p = url;
  if (strncmp(p, "wss://", 6) != 0) {
    DFNET_LOGE(SUB, url, "only wss:// URLs are accepted");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  p += 6;
  const char *host_end;
  const char *host_start = p;
  if (*p == '[') {
    host_start = p + 1;
    host_end = strchr(p, ']');
    if (host_end == NULL)
      goto bad;
    p = host_end + 1;
  } else {
    host_end = p + strcspn(p, ":/");
    p = host_end;
  }
  if (host_end == host_start)
    goto bad;
  ep->host = strndup(host_start, (size_t)(host_end - host_start));
  ep->port = 443;
  if (*p == ':') {
    char *end;
    long port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port < 1 || port > 65535 || (*end != '\0' && *end != '/'))
      goto bad;
    ep->port = (int)port;
    p = end;
  }
  ep->path = strdup(*p == '/' ? p : "/");
  if (ep->host == NULL || ep->path == NULL)
    return DFNET_STATUS_INTERNAL;
  return DFNET_STATUS_OK;
bad:
  DFNET_LOGE(SUB, url, "malformed URL (want wss://host:port/path)");
  return DFNET_STATUS_INVALID_ARGUMENT;
}

static void client_connect_now(transport__endpoint_t *ep);

static void client_retry_cb(lws_sorted_usec_list_t *sul) {
  transport__endpoint_t *ep = lws_container_of(sul, transport__endpoint_t, retry_sul);
  ep->retry_scheduled = false;
  client_connect_now(ep);
}

void transport__client_schedule_retry(transport__endpoint_t *ep) {
  if (ep->retry_scheduled || ep->t->destroying || ep->t->shutting_down)
    return;
  double delay = transport__backoff_next_delay_ms(ep); /* full jitter: transport_backoff.c */
  if (delay < 1)
    delay = 1;
  ep->retry_scheduled = true;
  DFNET_LOGD(SUB, ep->url, "reconnecting in %.0f ms", delay);
  lws_sul_schedule(ep->t->ctx, 0, &ep->retry_sul, client_retry_cb, (lws_usec_t)(delay * 1000.0));
}

/* What lws's text for a failed connection means for the endpoint's user. */
static dfnet_status_t explain_connect_error(transport__endpoint_t *ep, const char *lws_text,
                                            char *msg, size_t cap, bool *retry_helps) {
  const char *peer = ep->server_role[0] ? ep->server_role : "server";
  *retry_helps = false;
  ep->last_refused = false;
  if (ep->refusal[0] != '\0') { /* we refused the server (FILTER_PRE_ESTABLISH) */
    snprintf(msg, cap, "%s", ep->refusal);
    ep->refusal[0] = '\0';
    return ep->refusal_code;
  }
  unsigned http = 0;
  int off = 0;
  if (lws_text != NULL && sscanf(lws_text, "HS: ws upgrade refused: HTTP %u%n", &http, &off) == 1) {
    /* the server's x-dfnet-refused: "<STATUS>: <why>" (patch 0004) */
    const char *reason = lws_text[off] == ':' ? lws_text + off + 2 : "";
    char name[24] = "";
    dfnet_status_t code = DFNET_STATUS_UNAVAILABLE;
    if (sscanf(reason, "%23[A-Z_]: %n", name, &off) == 1 &&
        dfnet_status_from_str(name, &code) == DFNET_STATUS_OK)
      reason += off;
    else
      code = http == 403 ? DFNET_STATUS_PERMISSION_DENIED : DFNET_STATUS_UNAVAILABLE;
    if (reason[0] != '\0')
      snprintf(msg, cap, "the %s refused this client: %s", peer, reason);
    else
      snprintf(msg, cap, "the %s refused this client (HTTP %u)", peer, http);
    *retry_helps = code == DFNET_STATUS_UNAVAILABLE;
    return code;
  }
  const char *x509 = lws_text ? strstr(lws_text, "X509_V_ERR = ") : NULL;
  if (x509 != NULL) { /* our CA did not verify the server's chain (mbedTLS, in lws) */
    int v = atoi(x509 + 13);
    char ca[PATH_MAX];
    if (realpath(ep->ca_file, ca) == NULL)
      snprintf(ca, sizeof ca, "%s", ep->ca_file);
    if (v == 9 || v == 10)
      snprintf(msg, cap, "the %s's certificate %s", peer,
               v == 10 ? "has expired" : "is not valid yet (check the clocks)");
    else
      snprintf(msg, cap, "the %s's certificate is not signed by the CA in %.300s", peer, ca);
    return DFNET_STATUS_UNAUTHENTICATED;
  }
  *retry_helps = true;
  if (lws_text == NULL) { /* lws could not even start: most often the name does not resolve */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(ep->host, NULL, &hints, &res);
    if (res != NULL)
      freeaddrinfo(res);
    if (rc != 0) {
      snprintf(msg, cap, "cannot resolve %s: %s", ep->host, gai_strerror(rc));
      *retry_helps = rc == EAI_AGAIN;
      return DFNET_STATUS_UNAVAILABLE;
    }
    snprintf(msg, cap, "cannot start a connection to %s:%d", ep->host, ep->port);
    return DFNET_STATUS_UNAVAILABLE;
  }
  ep->last_refused =
      strstr(lws_text, "Unable to connect") != NULL || strstr(lws_text, "connect failed") != NULL;
  if (ep->last_refused)
    snprintf(msg, cap, "nothing answers at %s:%d (connection refused, or the host is unreachable)",
             ep->host, ep->port);
  else
    snprintf(msg, cap, "%s", lws_text);
  return DFNET_STATUS_UNAVAILABLE;
}

void transport__client_connect_error(transport__endpoint_t *ep, const char *lws_text) {
  char msg[512];
  bool retry_helps;
  dfnet_status_t code = explain_connect_error(ep, lws_text, msg, sizeof msg, &retry_helps);
  dfnet_log(ep->attempts <= 1 ? DFNET_LOG_WARN : DFNET_LOG_DEBUG, SUB, ep->url,
            "cannot connect (attempt %u): %s: %s", (unsigned)ep->attempts, dfnet_status_str(code),
            msg);
  if (ep->cb.on_connect_error != NULL)
    ep->cb.on_connect_error(ep->user, code, msg, retry_helps);
}

static void client_connect_now(transport__endpoint_t *ep) {
  if (ep->wsi != NULL || ep->t->destroying)
    return;
  struct lws_client_connect_info i;
  memset(&i, 0, sizeof(i));
  i.context = ep->t->ctx;
  i.vhost = ep->vhost;
  i.address = ep->host;
  i.port = ep->port;
  i.path = ep->path;
  i.host = ep->host;
  i.origin = ep->host;
  i.ssl_connection = LCCSCF_USE_SSL | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
  if (ep->enroll) /* no CA file: the pin is checked on the chain (transport_enroll.c) */
    i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED;
  i.protocol = ep->subprotocol;
  i.local_protocol_name = ep->subprotocol;
  i.opaque_user_data = ep;
  i.pwsi = &ep->wsi;
  ep->attempts++;
  if (lws_client_connect_via_info(&i) == NULL) {
    ep->wsi = NULL;
    transport__client_connect_error(ep, NULL);
    transport__client_schedule_retry(ep);
  }
}

/* A client configuration's subprotocol and files: a certificate, its key and a CA for the
 * host and client subprotocols; a CA pin and no files for enrollment. */
static dfnet_status_t client_config_check(const dfnet_client_config_t *cfg) {
  const char *sp = cfg->subprotocol;
  if (sp != NULL && strcmp(sp, DFNET_SUBPROTOCOL_ENROLL) == 0) {
    if (cfg->ca_pin != NULL)
      return DFNET_STATUS_OK;
    DFNET_LOGE(SUB, cfg->url, "enrollment needs the CA's pin");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (sp == NULL ||
      (strcmp(sp, DFNET_SUBPROTOCOL_HOST) != 0 && strcmp(sp, DFNET_SUBPROTOCOL_CLIENT) != 0)) {
    DFNET_LOGE(SUB, cfg->url, "unknown subprotocol %s", sp ? sp : "(none)");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st;
  const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
  if ((st = check_file("client certificate", cfg->cert_file)) != DFNET_STATUS_OK ||
      (st = check_file("client key", key)) != DFNET_STATUS_OK ||
      (st = check_file("CA certificate", cfg->ca_file)) != DFNET_STATUS_OK)
    return st;
  return DFNET_STATUS_OK;
}

struct lws_vhost *transport__client_vhost_create(transport__endpoint_t *ep, const char *name) {
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  info.vhost_name = name;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = ep->protocols;
  info.user = ep;
  info.client_ssl_cert_filepath = ep->enroll ? NULL : ep->cert_file;
  info.client_ssl_private_key_filepath = ep->enroll ? NULL : ep->key_file; /* our lws patch */
  info.client_ssl_ca_filepath = ep->enroll ? NULL : ep->ca_file;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
  return lws_create_vhost(ep->t->ctx, &info);
}

dfnet_status_t dfnet_transport_connect(dfnet_transport_t *t, const dfnet_client_config_t *cfg,
                                       dfnet_endpoint_id_t *endpoint_out) {
  if (t == NULL || cfg == NULL || cfg->url == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = client_config_check(cfg);
  if (st != DFNET_STATUS_OK)
    return st;
  bool enroll = strcmp(cfg->subprotocol, DFNET_SUBPROTOCOL_ENROLL) == 0;
  const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
  transport__endpoint_t *ep = endpoint_new(t, true, &cfg->limits, &cfg->callbacks, cfg->user);
  if (ep == NULL)
    return DFNET_STATUS_INTERNAL;
  if ((st = parse_url(ep, cfg->url)) != DFNET_STATUS_OK)
    goto free_endpoint;
  ep->enroll = enroll;
  if (enroll) { /* no files: empty names, the pin instead */
    memcpy(ep->ca_pin, cfg->ca_pin, sizeof ep->ca_pin);
    key = "";
  }
  ep->url = strdup(cfg->url);
  ep->subprotocol = strdup(cfg->subprotocol);
  ep->server_name = strdup(cfg->server_name ? cfg->server_name : ep->host);
  ep->server_role = strdup(cfg->server_role ? cfg->server_role : "manager");
  ep->cert_file = strdup(enroll ? "" : cfg->cert_file);
  ep->key_file = strdup(key);
  ep->ca_file = strdup(enroll ? "" : cfg->ca_file);
  if (!ep->url || !ep->subprotocol || !ep->server_name || !ep->server_role || !ep->cert_file ||
      !ep->key_file || !ep->ca_file) {
    st = DFNET_STATUS_INTERNAL;
    goto free_endpoint;
  }
  transport__backoff_init(ep, cfg);

  ep->protocols[0] = endpoint_protocol(ep->subprotocol, &ep->limits);
  snprintf(ep->vhost_name, sizeof ep->vhost_name, "dfnet-client-%u", (unsigned)ep->id);
  ep->vhost = transport__client_vhost_create(ep, ep->vhost_name);
  if (ep->vhost == NULL) {
    DFNET_LOGE(SUB, cfg->url, "cannot set up the client (certificate %s, key %s, CA %s)",
               cfg->cert_file, key, cfg->ca_file);
    st = DFNET_STATUS_INVALID_ARGUMENT;
    goto free_endpoint;
  }
  t->endpoints[t->n_endpoints++] = ep;
  if (endpoint_out)
    *endpoint_out = ep->id;
  /* connect on the service thread's first turn */
  lws_sul_schedule(t->ctx, 0, &ep->retry_sul, client_retry_cb, 1);
  ep->retry_scheduled = true;
  return DFNET_STATUS_OK;

free_endpoint:
  transport__endpoint_free(ep);
  return st;
}

void transport__client_connected(transport__endpoint_t *ep) {
  transport__backoff_reset(ep);
  ep->attempts = 0;
}

void transport__clients_stop(dfnet_transport_t *t) {
  for (size_t i = 0; i < t->n_endpoints; i++) {
    transport__endpoint_t *ep = t->endpoints[i];
    if (ep->is_client && ep->retry_scheduled) {
      lws_sul_cancel(&ep->retry_sul);
      ep->retry_scheduled = false;
    }
  }
}
