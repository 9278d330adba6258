/* dfnet transport: envelopes over mutual-TLS websockets on libwebsockets 4.1 + mbedTLS
 * (lib/transport.h; docs/design.md "The wire", "Security"; issue 3).
 *
 * Locking: one mutex (t->mu) guards what other threads touch: the session table, each
 * session's send queue and pending-request list, the inbox of work for the service thread
 * and the id counters. Everything else (lws, timers, receive state) belongs to the service
 * thread. Only the service thread unlinks a pending request or frees a session, so the
 * service thread may use those pointers between two lock sections. No callback of ours is
 * ever called with the mutex held.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "lib/log.h"
#include "lib/log_limit.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"
#define MAX_ENDPOINTS 16
#define CLOSE_FLUSH_SECS 5
#define PT_SERV_BUF (32u * 1024u)
/* Small messages queued together go out as one write (one TLS record): up to this many
 * bytes of websocket frames per write. 16 KiB is the payload of one TLS record. */
#define BATCH_BYTES (16u * 1024u)
/* A websocket frame header: 2, 4 or 10 bytes, +4 for the client's masking key. */
#define WS_HDR_MAX 14
/* Envelopes up to this size are encoded into a per-thread scratch buffer first. */
#define ENCODE_SCRATCH 4096u
/* Messages queued on the service thread are held back until the end of the service turn,
 * to go out together, but no more than limits.batch_messages of them (or that many KiB):
 * a bound on the delay batching adds, and it lets the peer work on the first ones while
 * we make the rest. */

/* ---- Types ------------------------------------------------------------------------- */

typedef struct outmsg {
  struct outmsg *next;
  size_t len;
  uint8_t buf[]; /* LWS_PRE bytes, then len bytes of envelope */
} outmsg_t;

/* What a queued message costs in memory, as the send queue counts it against its high-water
 * mark: the envelope, the header and lws's headroom, and malloc's own (about 16 bytes).
 * Counting only the envelope let 80,000 small final statuses hold twice the mark. */
static size_t outmsg_cost(const outmsg_t *m) { return sizeof *m + LWS_PRE + m->len + 16; }

typedef struct pending {
  struct pending *next, *prev;
  uint64_t id;
  uint64_t deadline_ms; /* monotonic; 0 = none */
  bool streaming;
  dfnet_reply_is_last_fn is_last;
  dfnet_reply_fn on_reply;
  void *user;
} pending_t;

typedef struct endpoint endpoint_t;

typedef struct session {
  dfnet_transport_t *t;
  endpoint_t *ep;
  dfnet_session_id_t id;
  struct lws *wsi;
  bool open; /* on_session_open was called */

  /* t->mu */
  outmsg_t *q_head, *q_tail;
  size_t q_bytes;
  pending_t *p_head, *p_tail;
  uint32_t p_count;
  uint64_t next_id;
  bool kick;            /* needs lws_callback_on_writable from the service thread */
  bool close_requested; /* by dfnet_transport_session_close */
  dfnet_status_t close_reason;
  char close_msg[124];
  dfnet_session_stats_t stats;

  /* service thread */
  struct session *flush_next; /* on t->flush_head */
  bool flush_linked;
  uint32_t unflushed; /* messages queued since the last write, and their bytes */
  size_t unflushed_bytes;
  size_t cur_off; /* bytes of q_head already written */
  bool closing;   /* close frame about to go */
  bool kill_reason_set;
  bool peer_closed_cleanly; /* the peer sent a close frame with 1000 or 1001 */
  bool peer_status_given;   /* ... or 1008 with "<STATUS>: why" (kill_reason) */
  dfnet_status_t kill_reason;
  char kill_msg[124];
  uint8_t *rx_buf;
  size_t rx_len, rx_cap;
  bool rx_in_message;
  bool rx_oversize;
  size_t rx_total;
  uint8_t rx_prefix[16];
  size_t rx_prefix_len;
  uint64_t last_rx_ms;
  bool ping_due;
  lws_sorted_usec_list_t ka_sul;
  bool rx_paused;                    /* not reading: our send queue to it is full */
  lws_sorted_usec_list_t expiry_sul; /* the peer's certificate runs out */
  time_t not_after;
  dfnet_log_limit_t log_limit; /* lines this peer can cause */

  /* info */
  dfnet_v1_Role role;
  char peer_name[TRANSPORT__NAME_MAX + 1];
  char role_name[TRANSPORT__NAME_MAX + 1];
  char subprotocol[32];
  char peer_address[64];
  bool tls_resumed; /* the TLS handshake resumed an earlier session */
} session_t;

struct endpoint {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t id;
  bool is_client;
  struct lws_vhost *vhost;
  char vhost_name[32]; /* lws keeps the pointer given at vhost creation: it lives here */
  struct lws_protocols protocols[4];
  dfnet_transport_limits_t limits;
  dfnet_transport_callbacks_t cb;
  void *user;

  /* client */
  char *url, *host, *path, *subprotocol, *server_name, *server_role;
  char *cert_file, *key_file, *ca_file;
  int port;
  uint32_t backoff_initial_ms, backoff_max_ms, backoff_jitter_pct;
  double backoff_multiplier;
  double backoff_next_ms;
  struct lws *wsi;
  bool retry_scheduled;
  lws_sorted_usec_list_t retry_sul;
  dfnet_session_id_t session; /* t->mu */
  uint32_t attempts;
  dfnet_status_t refusal_code; /* our own refusal of the server, for the connect error */
  char refusal[400];
};

typedef struct ttimer {
  lws_sorted_usec_list_t sul;
  struct ttimer *next, *prev; /* t->timers (service thread) or the inbox (t->mu) */
  dfnet_transport_t *t;
  dfnet_timer_id_t id;
  uint64_t due_ms;
  dfnet_work_fn fn;
  void *user;
} ttimer_t;

/* A file descriptor watched from the service thread (dfnet_transport_watch_fd): lws polls
 * a dup of it as a raw file; the wsi's opaque user data points here. */
typedef struct fd_watch {
  dfnet_transport_t *t;
  int fd; /* the dup lws owns and closes */
  dfnet_work_fn fn;
  void *user;
} fd_watch_t;

typedef enum work_kind {
  WORK_TIMER_CANCEL,
  WORK_REQUEST_CANCEL,
} work_kind_t;

typedef struct work {
  struct work *next;
  work_kind_t kind;
  dfnet_timer_id_t timer_id;
  dfnet_session_id_t session;
  uint64_t request_id;
  bool notify_peer;
  char reason[128];
} work_t;

struct dfnet_transport {
  struct lws_context *ctx;
  struct lws_vhost *base_vhost;
  struct lws_protocols base_protocols[3];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  bool thread_started;
  pthread_t service_tid;
  atomic_bool serviced;
  atomic_bool stop;
  bool destroying;
  atomic_uint_least64_t shutdown_by; /* dfnet_transport_shutdown: stop by this time, 0 = no */
  bool shutting_down;                /* service thread: sessions told to close */
  lws_sorted_usec_list_t shutdown_sul;

  endpoint_t *endpoints[MAX_ENDPOINTS];
  size_t n_endpoints;

  /* t->mu */
  session_t **sessions;
  size_t n_sessions, cap_sessions;
  dfnet_session_id_t next_session_id;
  dfnet_timer_id_t next_timer_id;
  ttimer_t *inbox_timers;
  work_t *inbox_head, *inbox_tail;
  bool kicks;
  bool deadlines_dirty;

  atomic_bool wake_pending;  /* lws_cancel_service() called, inbox not drained yet */
  dfnet_work_fn turn_end_fn; /* dfnet_transport_set_turn_end */
  void *turn_end_user;

  /* service thread */
  session_t *flush_head; /* sessions with queued messages to write at the end of this
                            service turn (batched: one write for many small messages) */
  lws_sorted_usec_list_t flush_sul;
  bool flush_sul_armed;
  uint8_t *batch;         /* LWS_PRE + BATCH_BYTES: frames of several messages */
  uint8_t mask_pool[256]; /* random bytes for the client's masking keys */
  size_t mask_left;
  ttimer_t *timers;
  lws_sorted_usec_list_t deadline_sul;
  uint64_t deadline_at; /* 0 = not scheduled */
  dfnet_envelope_t rx_env;
};

struct pss {
  session_t *s;
  transport__peer_t peer; /* server side: from the upgrade check */
  bool checked;
};

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
static int base_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);
static void session_kill(session_t *s, dfnet_status_t reason, const char *msg);
static void client_schedule_retry(endpoint_t *ep);
static void flush_mark(session_t *s, size_t len);
static void flush_all(dfnet_transport_t *t);
static void flush_unlink(session_t *s);
static void peer_warn_flush_one(void *user, const char *kind, uint32_t count);

/* ---- Small helpers ------------------------------------------------------------------- */

uint64_t dfnet_transport_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool dfnet_transport_on_service_thread(const dfnet_transport_t *t) {
  return atomic_load(&((dfnet_transport_t *)t)->serviced) &&
         pthread_equal(pthread_self(), t->service_tid);
}

static void lws_log_emit(int level, const char *line) {
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    n--;
  DFNET_LOGD("lws", NULL, "%c %.*s",
             level == LLL_ERR    ? 'E'
             : level == LLL_WARN ? 'W'
                                 : 'N',
             (int)n, line);
}

static void lws_log_init(void) { lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit); }

/* The most lws may hand TLS in one go for an endpoint: a whole fragment or batch (lws
 * otherwise cuts a write at its rx buffer size and copies the rest aside). */
static size_t tx_packet_size(const dfnet_transport_limits_t *l) {
  size_t n = l->fragment_bytes > BATCH_BYTES ? l->fragment_bytes : BATCH_BYTES;
  return n + WS_HDR_MAX + 64;
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
  if (out->batch_messages > BATCH_BYTES / 1024u)
    out->batch_messages = BATCH_BYTES / 1024u;
}

/* t->mu held. */
static session_t *session_find_locked(dfnet_transport_t *t, dfnet_session_id_t id) {
  for (size_t i = 0; i < t->n_sessions; i++)
    if (t->sessions[i]->id == id)
      return t->sessions[i];
  return NULL;
}

static void wake(dfnet_transport_t *t) { lws_cancel_service(t->ctx); }

/* Wake the service thread unless a wake-up is already on its way (the work was put in
 * place under t->mu before this: the drain that clears the flag looks after it). */
static void wake_once(dfnet_transport_t *t) {
  if (!atomic_exchange(&t->wake_pending, true))
    lws_cancel_service(t->ctx);
}

/* ---- Lifecycle ----------------------------------------------------------------------- */

dfnet_status_t dfnet_transport_create(dfnet_transport_t **out) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  if (out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  *out = NULL;
  pthread_once(&once, lws_log_init);

  dfnet_transport_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return DFNET_STATUS_INTERNAL;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  t->next_session_id = 1;
  t->next_timer_id = 1;

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
  info.user = t;
  info.pt_serv_buf_size = PT_SERV_BUF;
  info.port = CONTEXT_PORT_NO_LISTEN;
  t->ctx = lws_create_context(&info);
  if (t->ctx == NULL) {
    DFNET_LOGE(SUB, NULL, "cannot create the libwebsockets context");
    goto free_transport;
  }

  /* The base vhost carries the protocol that receives lws_cancel_service() wake-ups. */
  t->base_protocols[0] = (struct lws_protocols){.name = "dfnet-internal", .callback = base_cb};
  /* ... and the one of the file descriptors owners watch (dfnet_transport_watch_fd). */
  t->base_protocols[1] = (struct lws_protocols){.name = "dfnet-fd", .callback = base_cb};
  memset(&info, 0, sizeof(info));
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.vhost_name = "dfnet-base";
  info.protocols = t->base_protocols;
  info.user = t;
  t->base_vhost = lws_create_vhost(t->ctx, &info);
  if (t->base_vhost == NULL) {
    DFNET_LOGE(SUB, NULL, "cannot create the base vhost");
    goto destroy_context;
  }
  *out = t;
  return DFNET_STATUS_OK;

destroy_context:
  lws_context_destroy(t->ctx);
free_transport:
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  free(t);
  return DFNET_STATUS_INTERNAL;
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

static endpoint_t *endpoint_new(dfnet_transport_t *t, bool is_client,
                                const dfnet_transport_limits_t *limits,
                                const dfnet_transport_callbacks_t *cb, void *user) {
  if (t->n_endpoints >= MAX_ENDPOINTS) {
    DFNET_LOGE(SUB, NULL, "too many endpoints (at most %d)", MAX_ENDPOINTS);
    return NULL;
  }
  endpoint_t *ep = calloc(1, sizeof(*ep));
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

static void endpoint_free(endpoint_t *ep) {
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
  free(ep);
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
  endpoint_t *ep = endpoint_new(t, false, &cfg->limits, &cfg->callbacks, cfg->user);
  if (ep == NULL)
    return DFNET_STATUS_INTERNAL;

  size_t rx = PT_SERV_BUF, tx = tx_packet_size(&ep->limits);
  ep->protocols[0] = (struct lws_protocols){.name = "dfnet-http",
                                            .callback = lws_cb,
                                            .per_session_data_size = sizeof(struct pss),
                                            .rx_buffer_size = rx,
                                            .tx_packet_size = tx};
  ep->protocols[1] = (struct lws_protocols){.name = DFNET_SUBPROTOCOL_HOST,
                                            .callback = lws_cb,
                                            .per_session_data_size = sizeof(struct pss),
                                            .rx_buffer_size = rx,
                                            .tx_packet_size = tx};
  ep->protocols[2] = (struct lws_protocols){.name = DFNET_SUBPROTOCOL_CLIENT,
                                            .callback = lws_cb,
                                            .per_session_data_size = sizeof(struct pss),
                                            .rx_buffer_size = rx,
                                            .tx_packet_size = tx};

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  snprintf(ep->vhost_name, sizeof ep->vhost_name, "dfnet-server-%u", (unsigned)ep->id);
  info.vhost_name = ep->vhost_name;
  info.port = cfg->port;
  info.iface = cfg->bind_address;
  info.protocols = ep->protocols;
  info.user = ep;
  info.ssl_cert_filepath = cfg->cert_file;
  info.ssl_private_key_filepath = cfg->key_file;
  info.ssl_ca_filepath = cfg->ca_file;
  /* asks the client for its certificate; lws+mbedTLS then only *records* the verdict,
   * which lws_cb enforces at the websocket upgrade */
  info.options =
      LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
  /* An IPv4 address must be bound as such: with IPv6 on, lws 4.1 makes an IPv6 socket,
   * cannot map the IPv4 literal and binds it to every address ("127.0.0.1" was reachable
   * from the network). */
  struct in_addr v4;
  if (cfg->bind_address != NULL && inet_pton(AF_INET, cfg->bind_address, &v4) == 1)
    info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  ep->vhost = lws_create_vhost(t->ctx, &info);
  if (ep->vhost == NULL) {
    /* The certificate and key loaded above, so it is the address (or lws's TLS set-up). */
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
    endpoint_free(ep);
    return DFNET_STATUS_UNAVAILABLE;
  }
  t->endpoints[t->n_endpoints++] = ep;
  int port = lws_get_vhost_listen_port(ep->vhost);
  DFNET_LOGI(SUB, NULL, "listening on %s:%d", cfg->bind_address ? cfg->bind_address : "*", port);
  if (endpoint_out)
    *endpoint_out = ep->id;
  if (port_out)
    *port_out = (uint16_t)port;
  return DFNET_STATUS_OK;
}

/* "wss://host[:port][/path]", host may be "[v6]". */
static dfnet_status_t parse_url(endpoint_t *ep, const char *url) {
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

static void client_connect_now(endpoint_t *ep);

static void client_retry_cb(lws_sorted_usec_list_t *sul) {
  endpoint_t *ep = lws_container_of(sul, endpoint_t, retry_sul);
  ep->retry_scheduled = false;
  client_connect_now(ep);
}

static void client_schedule_retry(endpoint_t *ep) {
  if (ep->retry_scheduled || ep->t->destroying || ep->t->shutting_down)
    return;
  double base = ep->backoff_next_ms;
  double jitter = base * (double)ep->backoff_jitter_pct / 100.0;
  double delay = base - jitter + (jitter * 2.0) * ((double)(rand() & 0xffff) / 65535.0);
  if (delay < 1)
    delay = 1;
  ep->backoff_next_ms = base * ep->backoff_multiplier;
  if (ep->backoff_next_ms > ep->backoff_max_ms)
    ep->backoff_next_ms = ep->backoff_max_ms;
  ep->retry_scheduled = true;
  DFNET_LOGD(SUB, ep->url, "reconnecting in %.0f ms", delay);
  lws_sul_schedule(ep->t->ctx, 0, &ep->retry_sul, client_retry_cb, (lws_usec_t)(delay * 1000.0));
}

/* What lws's text for a failed connection means for the endpoint's user. */
static dfnet_status_t explain_connect_error(endpoint_t *ep, const char *lws_text, char *msg,
                                            size_t cap, bool *retry_helps) {
  const char *peer = ep->server_role[0] ? ep->server_role : "server";
  *retry_helps = false;
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
  if (strstr(lws_text, "Unable to connect") != NULL || strstr(lws_text, "connect failed") != NULL)
    snprintf(msg, cap, "nothing answers at %s:%d (connection refused, or the host is unreachable)",
             ep->host, ep->port);
  else
    snprintf(msg, cap, "%s", lws_text);
  return DFNET_STATUS_UNAVAILABLE;
}

/* Service thread: an attempt of a client endpoint failed. Logs it (a warning for the first
 * attempt after a session or start, debug for the retries) and tells the endpoint's user. */
static void connect_error(endpoint_t *ep, const char *lws_text) {
  char msg[512];
  bool retry_helps;
  dfnet_status_t code = explain_connect_error(ep, lws_text, msg, sizeof msg, &retry_helps);
  dfnet_log(ep->attempts <= 1 ? DFNET_LOG_WARN : DFNET_LOG_DEBUG, SUB, ep->url,
            "cannot connect (attempt %u): %s: %s", (unsigned)ep->attempts, dfnet_status_str(code),
            msg);
  if (ep->cb.on_connect_error != NULL)
    ep->cb.on_connect_error(ep->user, code, msg, retry_helps);
}

static void client_connect_now(endpoint_t *ep) {
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
  i.protocol = ep->subprotocol;
  i.local_protocol_name = ep->subprotocol;
  i.opaque_user_data = ep;
  i.pwsi = &ep->wsi;
  ep->attempts++;
  if (lws_client_connect_via_info(&i) == NULL) {
    ep->wsi = NULL;
    connect_error(ep, NULL);
    client_schedule_retry(ep);
  }
}

dfnet_status_t dfnet_transport_connect(dfnet_transport_t *t, const dfnet_client_config_t *cfg,
                                       dfnet_endpoint_id_t *endpoint_out) {
  if (t == NULL || cfg == NULL || cfg->url == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (cfg->subprotocol == NULL || (strcmp(cfg->subprotocol, DFNET_SUBPROTOCOL_HOST) != 0 &&
                                   strcmp(cfg->subprotocol, DFNET_SUBPROTOCOL_CLIENT) != 0)) {
    DFNET_LOGE(SUB, cfg->url, "unknown subprotocol %s",
               cfg->subprotocol ? cfg->subprotocol : "(none)");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st;
  const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
  if ((st = check_file("client certificate", cfg->cert_file)) != DFNET_STATUS_OK ||
      (st = check_file("client key", key)) != DFNET_STATUS_OK ||
      (st = check_file("CA certificate", cfg->ca_file)) != DFNET_STATUS_OK)
    return st;
  endpoint_t *ep = endpoint_new(t, true, &cfg->limits, &cfg->callbacks, cfg->user);
  if (ep == NULL)
    return DFNET_STATUS_INTERNAL;
  if ((st = parse_url(ep, cfg->url)) != DFNET_STATUS_OK)
    goto free_endpoint;
  ep->url = strdup(cfg->url);
  ep->subprotocol = strdup(cfg->subprotocol);
  ep->server_name = strdup(cfg->server_name ? cfg->server_name : ep->host);
  ep->server_role = strdup(cfg->server_role ? cfg->server_role : "manager");
  ep->cert_file = strdup(cfg->cert_file);
  ep->key_file = strdup(key);
  ep->ca_file = strdup(cfg->ca_file);
  if (!ep->url || !ep->subprotocol || !ep->server_name || !ep->server_role || !ep->cert_file ||
      !ep->key_file || !ep->ca_file) {
    st = DFNET_STATUS_INTERNAL;
    goto free_endpoint;
  }
  ep->backoff_initial_ms = cfg->backoff_initial_ms ? cfg->backoff_initial_ms : 500;
  ep->backoff_multiplier = cfg->backoff_multiplier >= 1.0 ? cfg->backoff_multiplier : 1.6;
  ep->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 30000;
  ep->backoff_jitter_pct = cfg->backoff_jitter_pct ? cfg->backoff_jitter_pct : 20;
  if (ep->backoff_jitter_pct > 100)
    ep->backoff_jitter_pct = 100;
  if (ep->backoff_max_ms < ep->backoff_initial_ms)
    ep->backoff_max_ms = ep->backoff_initial_ms;
  ep->backoff_next_ms = ep->backoff_initial_ms;

  ep->protocols[0] = (struct lws_protocols){.name = ep->subprotocol,
                                            .callback = lws_cb,
                                            .per_session_data_size = sizeof(struct pss),
                                            .rx_buffer_size = PT_SERV_BUF,
                                            .tx_packet_size = tx_packet_size(&ep->limits)};
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  snprintf(ep->vhost_name, sizeof ep->vhost_name, "dfnet-client-%u", (unsigned)ep->id);
  info.vhost_name = ep->vhost_name;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = ep->protocols;
  info.user = ep;
  info.client_ssl_cert_filepath = ep->cert_file;
  info.client_ssl_private_key_filepath = ep->key_file; /* read by our lws patch */
  info.client_ssl_ca_filepath = ep->ca_file;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
  ep->vhost = lws_create_vhost(t->ctx, &info);
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
  endpoint_free(ep);
  return st;
}

/* Service thread: the grace of dfnet_transport_shutdown ran out. */
static void shutdown_expired(lws_sorted_usec_list_t *sul) {
  dfnet_transport_t *t = lws_container_of(sul, dfnet_transport_t, shutdown_sul);
  atomic_store(&t->stop, true);
}

/* Service thread, after each turn once a shutdown was asked: the first time, tell every
 * session to close and every client endpoint to stop; stop when no session is left. */
static void shutdown_step(dfnet_transport_t *t) {
  if (!t->shutting_down) {
    t->shutting_down = true;
    for (size_t i = 0; i < t->n_endpoints; i++) {
      endpoint_t *ep = t->endpoints[i];
      if (ep->is_client && ep->retry_scheduled) {
        lws_sul_cancel(&ep->retry_sul);
        ep->retry_scheduled = false;
      }
    }
    pthread_mutex_lock(&t->mu);
    size_t n = t->n_sessions;
    dfnet_session_id_t *ids = n ? calloc(n, sizeof *ids) : NULL;
    for (size_t i = 0; ids != NULL && i < n; i++)
      ids[i] = t->sessions[i]->id;
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; ids != NULL && i < n; i++)
      (void)dfnet_transport_session_close(t, ids[i], DFNET_STATUS_CANCELLED,
                                          "transport shutting down");
    free(ids);
    uint64_t by = atomic_load(&t->shutdown_by), now = dfnet_transport_now_ms();
    lws_sul_schedule(t->ctx, 0, &t->shutdown_sul, shutdown_expired,
                     (lws_usec_t)(by > now ? by - now : 1) * 1000);
  }
  pthread_mutex_lock(&t->mu);
  bool none_left = t->n_sessions == 0;
  pthread_mutex_unlock(&t->mu);
  if (none_left)
    atomic_store(&t->stop, true);
}

void dfnet_transport_shutdown(dfnet_transport_t *t, uint32_t grace_ms) {
  if (t == NULL || atomic_load(&t->stop))
    return;
  uint64_t expected = 0;
  uint64_t by = dfnet_transport_now_ms() + (grace_ms ? grace_ms : 1);
  if (atomic_compare_exchange_strong(&t->shutdown_by, &expected, by))
    wake(t);
}

dfnet_status_t dfnet_transport_run(dfnet_transport_t *t) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  bool expected = false;
  t->service_tid = pthread_self();
  if (!atomic_compare_exchange_strong(&t->serviced, &expected, true))
    return DFNET_STATUS_FAILED_PRECONDITION;
  wake(t); /* pick up work queued before we ran */
  while (!atomic_load(&t->stop)) {
    if (lws_service(t->ctx, 0) < 0)
      break;
    if (t->turn_end_fn != NULL)
      t->turn_end_fn(t->turn_end_user);
    /* what the callbacks of this turn queued, batched per session */
    flush_all(t);
    if (atomic_load(&t->shutdown_by) != 0)
      shutdown_step(t);
  }
  atomic_store(&t->serviced, false);
  return DFNET_STATUS_OK;
}

static void *service_main(void *arg) {
  (void)dfnet_transport_run(arg);
  return NULL;
}

dfnet_status_t dfnet_transport_start(dfnet_transport_t *t) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (t->thread_started || atomic_load(&t->serviced))
    return DFNET_STATUS_FAILED_PRECONDITION;
  if (pthread_create(&t->thread, NULL, service_main, t) != 0)
    return DFNET_STATUS_INTERNAL;
  t->thread_started = true;
  return DFNET_STATUS_OK;
}

void dfnet_transport_stop(dfnet_transport_t *t) {
  if (t == NULL)
    return;
  atomic_store(&t->stop, true);
  wake(t);
}

static void pending_complete(pending_t *p, dfnet_status_t status) {
  p->on_reply(p->user, status, NULL, true);
  free(p);
}

void dfnet_transport_destroy(dfnet_transport_t *t) {
  if (t == NULL)
    return;
  if (t->thread_started)
    dfnet_transport_shutdown(t, DFNET_TRANSPORT_CLOSE_GRACE_MS);
  else
    dfnet_transport_stop(t);
  if (t->thread_started) {
    pthread_join(t->thread, NULL);
    t->thread_started = false;
  }
  t->destroying = true;
  /* Closing every connection runs lws_cb(CLOSED...) for each session: its pending
   * requests complete CANCELLED and on_session_closed(CANCELLED) runs, on this thread. */
  lws_context_destroy(t->ctx);
  t->ctx = NULL;

  /* Sessions lws did not tell us about (none expected). */
  while (t->n_sessions > 0) {
    session_t *s = t->sessions[--t->n_sessions];
    for (pending_t *p = s->p_head, *n; p; p = n) {
      n = p->next;
      pending_complete(p, DFNET_STATUS_CANCELLED);
    }
    for (outmsg_t *m = s->q_head, *n; m; m = n) {
      n = m->next;
      free(m);
    }
    free(s->rx_buf);
    free(s);
  }
  free(t->sessions);
  free(t->batch);
  for (ttimer_t *tm = t->timers, *n; tm; tm = n) {
    n = tm->next;
    free(tm);
  }
  for (ttimer_t *tm = t->inbox_timers, *n; tm; tm = n) {
    n = tm->next;
    free(tm);
  }
  for (work_t *w = t->inbox_head, *n; w; w = n) {
    n = w->next;
    free(w);
  }
  for (size_t i = 0; i < t->n_endpoints; i++)
    endpoint_free(t->endpoints[i]);
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* ---- Timers and work ---------------------------------------------------------------- */

static void timer_fire(lws_sorted_usec_list_t *sul) {
  ttimer_t *tm = lws_container_of(sul, ttimer_t, sul);
  dfnet_transport_t *t = tm->t;
  if (tm->prev)
    tm->prev->next = tm->next;
  else
    t->timers = tm->next;
  if (tm->next)
    tm->next->prev = tm->prev;
  dfnet_work_fn fn = tm->fn;
  void *user = tm->user;
  free(tm);
  fn(user);
}

/* Service thread. */
static void timer_schedule(dfnet_transport_t *t, ttimer_t *tm) {
  tm->prev = NULL;
  tm->next = t->timers;
  if (t->timers)
    t->timers->prev = tm;
  t->timers = tm;
  uint64_t now = dfnet_transport_now_ms();
  uint64_t delay_ms = tm->due_ms > now ? tm->due_ms - now : 0;
  lws_sul_schedule(t->ctx, 0, &tm->sul, timer_fire, (lws_usec_t)delay_ms * 1000 + 1);
}

dfnet_status_t dfnet_transport_timer_start(dfnet_transport_t *t, uint32_t delay_ms,
                                           dfnet_work_fn fn, void *user, dfnet_timer_id_t *id_out) {
  if (t == NULL || fn == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  ttimer_t *tm = calloc(1, sizeof(*tm));
  if (tm == NULL)
    return DFNET_STATUS_INTERNAL;
  tm->t = t;
  tm->fn = fn;
  tm->user = user;
  tm->due_ms = dfnet_transport_now_ms() + delay_ms;
  pthread_mutex_lock(&t->mu);
  tm->id = t->next_timer_id++;
  if (!dfnet_transport_on_service_thread(t)) {
    tm->next = t->inbox_timers;
    tm->prev = NULL;
    if (t->inbox_timers)
      t->inbox_timers->prev = tm;
    t->inbox_timers = tm;
  }
  pthread_mutex_unlock(&t->mu);
  if (id_out)
    *id_out = tm->id;
  if (dfnet_transport_on_service_thread(t))
    timer_schedule(t, tm);
  else
    wake_once(t);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_post(dfnet_transport_t *t, dfnet_work_fn fn, void *user) {
  return dfnet_transport_timer_start(t, 0, fn, user, NULL);
}

static bool timer_cancel_here(dfnet_transport_t *t, dfnet_timer_id_t id) {
  for (ttimer_t *tm = t->timers; tm; tm = tm->next) {
    if (tm->id != id)
      continue;
    lws_sul_cancel(&tm->sul);
    if (tm->prev)
      tm->prev->next = tm->next;
    else
      t->timers = tm->next;
    if (tm->next)
      tm->next->prev = tm->prev;
    free(tm);
    return true;
  }
  return false;
}

static void inbox_push(dfnet_transport_t *t, work_t *w) {
  pthread_mutex_lock(&t->mu);
  if (t->inbox_tail)
    t->inbox_tail->next = w;
  else
    t->inbox_head = w;
  t->inbox_tail = w;
  pthread_mutex_unlock(&t->mu);
  wake_once(t);
}

bool dfnet_transport_timer_cancel(dfnet_transport_t *t, dfnet_timer_id_t id) {
  if (t == NULL || id == 0)
    return false;
  /* still in the inbox: take it out, from any thread */
  pthread_mutex_lock(&t->mu);
  for (ttimer_t *tm = t->inbox_timers; tm; tm = tm->next) {
    if (tm->id != id)
      continue;
    if (tm->prev)
      tm->prev->next = tm->next;
    else
      t->inbox_timers = tm->next;
    if (tm->next)
      tm->next->prev = tm->prev;
    pthread_mutex_unlock(&t->mu);
    free(tm);
    return true;
  }
  pthread_mutex_unlock(&t->mu);
  if (dfnet_transport_on_service_thread(t))
    return timer_cancel_here(t, id);
  work_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return false;
  w->kind = WORK_TIMER_CANCEL;
  w->timer_id = id;
  inbox_push(t, w);
  return true;
}

/* ---- Requests: deadlines ------------------------------------------------------------- */

static void deadline_fire(lws_sorted_usec_list_t *sul);

/* Service thread: (re)arm the deadline timer for the earliest deadline. */
static void deadline_rearm(dfnet_transport_t *t) {
  uint64_t earliest = 0;
  pthread_mutex_lock(&t->mu);
  t->deadlines_dirty = false;
  for (size_t i = 0; i < t->n_sessions; i++)
    for (pending_t *p = t->sessions[i]->p_head; p; p = p->next)
      if (p->deadline_ms && (earliest == 0 || p->deadline_ms < earliest))
        earliest = p->deadline_ms;
  pthread_mutex_unlock(&t->mu);
  if (earliest == 0) {
    if (t->deadline_at)
      lws_sul_cancel(&t->deadline_sul);
    t->deadline_at = 0;
    return;
  }
  if (t->deadline_at == earliest)
    return;
  t->deadline_at = earliest;
  uint64_t now = dfnet_transport_now_ms();
  lws_sul_schedule(t->ctx, 0, &t->deadline_sul, deadline_fire,
                   (lws_usec_t)(earliest > now ? earliest - now : 0) * 1000 + 1);
}

/* Take p out of its session's list of pending requests (t->mu held). */
static void pending_unlink(session_t *s, pending_t *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    s->p_head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    s->p_tail = p->prev;
  s->p_count--;
}

static void deadline_fire(lws_sorted_usec_list_t *sul) {
  dfnet_transport_t *t = lws_container_of(sul, dfnet_transport_t, deadline_sul);
  t->deadline_at = 0;
  uint64_t now = dfnet_transport_now_ms();
  pending_t *expired = NULL;
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->n_sessions; i++) {
    session_t *s = t->sessions[i];
    for (pending_t *p = s->p_head, *n; p; p = n) {
      n = p->next;
      if (!p->deadline_ms || p->deadline_ms > now)
        continue;
      pending_unlink(s, p);
      p->next = expired;
      expired = p;
    }
  }
  pthread_mutex_unlock(&t->mu);
  for (pending_t *p = expired, *n; p; p = n) {
    n = p->next;
    pending_complete(p, DFNET_STATUS_DEADLINE_EXCEEDED);
  }
  deadline_rearm(t);
}

/* ---- Sending ------------------------------------------------------------------------ */

/* Encode env into a new outmsg. */
static dfnet_status_t encode_out(dfnet_envelope_t *env, uint32_t max, outmsg_t **out) {
  size_t len;
  const char *err = NULL;
  dfnet_status_t st;
  /* Small envelopes (the common case) are encoded once, into a scratch buffer, and copied:
   * nanopb's sizing pass costs as much as the encoding itself. */
  static _Thread_local uint8_t scratch[ENCODE_SCRATCH];
  if (env->bulk.size < sizeof(scratch)) {
    st = dfnet_envelope_encode(env, scratch, sizeof(scratch), &len, &err);
    if (st == DFNET_STATUS_OK && len <= max) {
      outmsg_t *m = malloc(sizeof(*m) + LWS_PRE + len);
      if (m == NULL)
        return DFNET_STATUS_INTERNAL;
      m->next = NULL;
      m->len = len;
      memcpy(m->buf + LWS_PRE, scratch, len);
      *out = m;
      return DFNET_STATUS_OK;
    }
    /* larger than the scratch, over the bound, or not encodable: the long way, which
     * logs why */
  }
  st = dfnet_envelope_encoded_size(env, &len, &err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(SUB, NULL, "cannot encode a %s envelope: %s",
               dfnet_envelope_msg_name(env->pb.which_msg), err ? err : "?");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (len > max) {
    DFNET_LOGW(SUB, NULL, "refusing to send a %zu-byte %s envelope (bound %u bytes)", len,
               dfnet_envelope_msg_name(env->pb.which_msg), (unsigned)max);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  outmsg_t *m = malloc(sizeof(*m) + LWS_PRE + len);
  if (m == NULL)
    return DFNET_STATUS_INTERNAL;
  m->next = NULL;
  m->len = len;
  st = dfnet_envelope_encode(env, m->buf + LWS_PRE, len, &m->len, &err);
  if (st != DFNET_STATUS_OK) {
    free(m);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out = m;
  return DFNET_STATUS_OK;
}

/* Queue m (and register p, its id set, when not NULL) on session `id`. Takes ownership
 * of m and p on OK; on error the caller still owns both. */
static dfnet_status_t enqueue(dfnet_transport_t *t, dfnet_session_id_t id, outmsg_t *m,
                              pending_t *p, unsigned flags) {
  bool on_service = dfnet_transport_on_service_thread(t);
  bool may_wait = (flags & DFNET_SEND_WAIT) && !on_service;
  pthread_mutex_lock(&t->mu);
  session_t *s;
  for (;;) {
    s = session_find_locked(t, id);
    if (s == NULL || s->close_requested || s->closing) {
      pthread_mutex_unlock(&t->mu);
      return DFNET_STATUS_NOT_FOUND;
    }
    if (s->q_bytes == 0 || s->q_bytes + outmsg_cost(m) <= s->ep->limits.send_hwm_bytes)
      break;
    if ((flags & DFNET_SEND_PAST_HWM) && m->len <= DFNET_SEND_PAST_HWM_MAX)
      break;
    if (!may_wait) {
      pthread_mutex_unlock(&t->mu);
      return DFNET_STATUS_RESOURCE_EXHAUSTED;
    }
    pthread_cond_wait(&t->cv, &t->mu);
  }
  if (p != NULL) {
    p->prev = s->p_tail;
    p->next = NULL;
    if (s->p_tail)
      s->p_tail->next = p;
    else
      s->p_head = p;
    s->p_tail = p;
    s->p_count++;
    if (p->deadline_ms && !on_service)
      t->deadlines_dirty = true;
  }
  if (s->q_tail)
    s->q_tail->next = m;
  else
    s->q_head = m;
  s->q_tail = m;
  s->q_bytes += outmsg_cost(m);
  if (s->q_bytes > s->stats.queued_bytes_peak)
    s->stats.queued_bytes_peak = s->q_bytes;
  if (!on_service && !s->kick) {
    s->kick = true;
    t->kicks = true;
  }
  pthread_mutex_unlock(&t->mu);
  if (on_service) {
    if (p != NULL && p->deadline_ms && (t->deadline_at == 0 || p->deadline_ms < t->deadline_at))
      deadline_rearm(t);
    /* Written at the end of this service turn, together with whatever else is queued on
     * the session by then (see flush_all). */
    flush_mark(s, m->len);
  } else {
    wake_once(t);
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_send(dfnet_transport_t *t, dfnet_session_id_t session,
                                    dfnet_envelope_t *env, unsigned flags) {
  if (t == NULL || env == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  uint32_t max = DFNET_TRANSPORT_MAX_MESSAGE_DEFAULT;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, session);
  if (s)
    max = s->ep->limits.max_message_bytes;
  pthread_mutex_unlock(&t->mu);
  if (s == NULL)
    return DFNET_STATUS_NOT_FOUND;
  outmsg_t *m;
  dfnet_status_t st = encode_out(env, max, &m);
  if (st != DFNET_STATUS_OK)
    return st;
  st = enqueue(t, session, m, NULL, flags);
  if (st != DFNET_STATUS_OK)
    free(m);
  return st;
}

dfnet_status_t dfnet_transport_send_status(dfnet_transport_t *t, dfnet_session_id_t session,
                                           uint64_t id, dfnet_status_t code, const char *message) {
  dfnet_envelope_t *env = malloc(sizeof(*env));
  if (env == NULL)
    return DFNET_STATUS_INTERNAL;
  DFNET_ENVELOPE_INIT_MEMBER(env, dfnet_v1_Envelope_status_tag, status);
  env->pb.id = id;
  env->pb.msg.status.code = (dfnet_v1_Code)code;
  if (message)
    snprintf(env->pb.msg.status.message, sizeof(env->pb.msg.status.message), "%s", message);
  dfnet_status_t st = dfnet_transport_send(t, session, env, 0);
  free(env);
  return st;
}

/* ---- Requests ------------------------------------------------------------------------ */

dfnet_status_t dfnet_transport_request(dfnet_transport_t *t, dfnet_session_id_t session,
                                       dfnet_envelope_t *env, const dfnet_request_opts_t *opts,
                                       unsigned flags, uint64_t *id_out) {
  if (t == NULL || env == NULL || opts == NULL || opts->on_reply == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  /* Reserve the id first (so it can be encoded), then queue. The id counter only moves
   * forward: an id reserved by a request that then fails is simply never used. */
  uint32_t max;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, session);
  if (s == NULL || s->close_requested || s->closing) {
    pthread_mutex_unlock(&t->mu);
    return DFNET_STATUS_NOT_FOUND;
  }
  max = s->ep->limits.max_message_bytes;
  uint64_t id = s->next_id;
  s->next_id += 2;
  pthread_mutex_unlock(&t->mu);

  pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return DFNET_STATUS_INTERNAL;
  p->deadline_ms = opts->deadline_ms ? dfnet_transport_now_ms() + opts->deadline_ms : 0;
  p->streaming = opts->streaming;
  p->is_last = opts->is_last;
  p->on_reply = opts->on_reply;
  p->user = opts->user;

  env->pb.id = id;
  outmsg_t *m;
  dfnet_status_t st = encode_out(env, max, &m);
  if (st != DFNET_STATUS_OK) {
    free(p);
    return st;
  }
  p->id = id;
  st = enqueue(t, session, m, p, flags);
  if (st != DFNET_STATUS_OK) {
    free(m);
    free(p);
    return st;
  }
  if (id_out)
    *id_out = id;
  return DFNET_STATUS_OK;
}

/* Service thread: unlink pending `id` of session `sid`; NULL if none. */
static pending_t *pending_take(dfnet_transport_t *t, dfnet_session_id_t sid, uint64_t id,
                               session_t **s_out) {
  pending_t *found = NULL;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, sid);
  if (s) {
    for (pending_t *p = s->p_head; p; p = p->next) {
      if (p->id != id)
        continue;
      pending_unlink(s, p);
      found = p;
      break;
    }
  }
  pthread_mutex_unlock(&t->mu);
  if (s_out)
    *s_out = s;
  return found;
}

static void send_cancel(dfnet_transport_t *t, dfnet_session_id_t sid, uint64_t id,
                        const char *reason) {
  dfnet_envelope_t *env = malloc(sizeof(*env));
  if (env == NULL)
    return;
  DFNET_ENVELOPE_INIT_MEMBER(env, dfnet_v1_Envelope_cancel_tag, cancel);
  env->pb.id = id;
  if (reason)
    snprintf(env->pb.msg.cancel.reason, sizeof(env->pb.msg.cancel.reason), "%s", reason);
  (void)dfnet_transport_send(t, sid, env, 0);
  free(env);
}

static dfnet_status_t cancel_here(dfnet_transport_t *t, dfnet_session_id_t sid, uint64_t id,
                                  bool notify_peer, const char *reason) {
  pending_t *p = pending_take(t, sid, id, NULL);
  if (p == NULL)
    return DFNET_STATUS_NOT_FOUND;
  if (notify_peer)
    send_cancel(t, sid, id, reason);
  pending_complete(p, DFNET_STATUS_CANCELLED);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_request_cancel(dfnet_transport_t *t, dfnet_session_id_t session,
                                              uint64_t id, bool notify_peer, const char *reason) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (dfnet_transport_on_service_thread(t))
    return cancel_here(t, session, id, notify_peer, reason);
  bool known = false;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, session);
  if (s)
    for (pending_t *p = s->p_head; p && !known; p = p->next)
      known = p->id == id;
  pthread_mutex_unlock(&t->mu);
  if (!known)
    return DFNET_STATUS_NOT_FOUND;
  work_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return DFNET_STATUS_INTERNAL;
  w->kind = WORK_REQUEST_CANCEL;
  w->session = session;
  w->request_id = id;
  w->notify_peer = notify_peer;
  if (reason)
    snprintf(w->reason, sizeof(w->reason), "%s", reason);
  inbox_push(t, w);
  return DFNET_STATUS_OK;
}

typedef struct sync_call {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  dfnet_status_t status;
  dfnet_envelope_t *reply;
  void *bulk;
} sync_call_t;

static void sync_on_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  sync_call_t *c = user;
  if (!last)
    return;
  void *bulk = NULL;
  if (status == DFNET_STATUS_OK && reply) {
    *c->reply = *reply;
    if (reply->bulk.size > 0) {
      bulk = malloc(reply->bulk.size);
      if (bulk == NULL) {
        status = DFNET_STATUS_INTERNAL;
      } else {
        memcpy(bulk, reply->bulk.data, reply->bulk.size);
        c->reply->bulk.data = bulk;
      }
    }
  }
  pthread_mutex_lock(&c->mu);
  c->status = status;
  c->bulk = bulk;
  c->done = true;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

dfnet_status_t dfnet_transport_request_sync(dfnet_transport_t *t, dfnet_session_id_t session,
                                            dfnet_envelope_t *req, uint32_t deadline_ms,
                                            dfnet_envelope_t *reply, void **bulk_storage) {
  if (t == NULL || req == NULL || reply == NULL || bulk_storage == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  *bulk_storage = NULL;
  if (dfnet_transport_on_service_thread(t))
    return DFNET_STATUS_FAILED_PRECONDITION;
  sync_call_t c = {.done = false, .reply = reply};
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  dfnet_request_opts_t opts = {.deadline_ms = deadline_ms, .on_reply = sync_on_reply, .user = &c};
  dfnet_status_t st = dfnet_transport_request(t, session, req, &opts, DFNET_SEND_WAIT, NULL);
  if (st == DFNET_STATUS_OK) {
    /* the transport completes every request exactly once (deadline, close, destroy) */
    pthread_mutex_lock(&c.mu);
    while (!c.done)
      pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    st = c.status;
    if (st == DFNET_STATUS_OK)
      *bulk_storage = c.bulk;
    else
      free(c.bulk);
  }
  pthread_cond_destroy(&c.cv);
  pthread_mutex_destroy(&c.mu);
  return st;
}

/* ---- Sessions ------------------------------------------------------------------------ */

dfnet_session_id_t dfnet_transport_client_session(dfnet_transport_t *t,
                                                  dfnet_endpoint_id_t endpoint) {
  if (t == NULL || endpoint == 0 || endpoint > t->n_endpoints)
    return 0;
  endpoint_t *ep = t->endpoints[endpoint - 1];
  pthread_mutex_lock(&t->mu);
  dfnet_session_id_t id = ep->session;
  pthread_mutex_unlock(&t->mu);
  return id;
}

dfnet_status_t dfnet_transport_wait_session(dfnet_transport_t *t, dfnet_endpoint_id_t endpoint,
                                            uint32_t timeout_ms, dfnet_session_id_t *out) {
  if (t == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (endpoint == 0 || endpoint > t->n_endpoints || !t->endpoints[endpoint - 1]->is_client)
    return DFNET_STATUS_NOT_FOUND;
  if (dfnet_transport_on_service_thread(t))
    return DFNET_STATUS_FAILED_PRECONDITION;
  endpoint_t *ep = t->endpoints[endpoint - 1];
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&t->mu);
  while (ep->session == 0) {
    if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT && ep->session == 0) {
      st = DFNET_STATUS_DEADLINE_EXCEEDED;
      break;
    }
  }
  *out = ep->session;
  pthread_mutex_unlock(&t->mu);
  return st;
}

dfnet_status_t dfnet_transport_session_info(dfnet_transport_t *t, dfnet_session_id_t session,
                                            dfnet_session_info_t *out, char *buf, size_t cap) {
  if (t == NULL || out == NULL || buf == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, session);
  if (s == NULL) {
    st = DFNET_STATUS_NOT_FOUND;
  } else {
    const char *parts[4] = {s->peer_name, s->role_name, s->subprotocol, s->peer_address};
    const char **dst[4] = {&out->peer_name, &out->role_name, &out->subprotocol, &out->peer_address};
    size_t off = 0;
    for (int i = 0; i < 4 && st == DFNET_STATUS_OK; i++) {
      size_t n = strlen(parts[i]) + 1;
      if (off + n > cap) {
        st = DFNET_STATUS_RESOURCE_EXHAUSTED;
        break;
      }
      memcpy(buf + off, parts[i], n);
      *dst[i] = buf + off;
      off += n;
    }
    out->id = s->id;
    out->endpoint = s->ep->id;
    out->outgoing = s->ep->is_client;
    out->role = s->role;
    out->tls_resumed = s->tls_resumed;
  }
  pthread_mutex_unlock(&t->mu);
  return st;
}

dfnet_status_t dfnet_transport_session_stats(dfnet_transport_t *t, dfnet_session_id_t session,
                                             dfnet_session_stats_t *out) {
  if (t == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, session);
  if (s == NULL) {
    st = DFNET_STATUS_NOT_FOUND;
  } else {
    *out = s->stats;
    out->queued_bytes = s->q_bytes;
    out->pending_requests = s->p_count;
  }
  pthread_mutex_unlock(&t->mu);
  return st;
}

dfnet_status_t dfnet_transport_session_close(dfnet_transport_t *t, dfnet_session_id_t session,
                                             dfnet_status_t reason, const char *message) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  bool on_service = dfnet_transport_on_service_thread(t);
  struct lws *wsi = NULL;
  pthread_mutex_lock(&t->mu);
  session_t *s = session_find_locked(t, session);
  if (s == NULL || s->close_requested) {
    pthread_mutex_unlock(&t->mu);
    return DFNET_STATUS_NOT_FOUND;
  }
  s->close_requested = true;
  s->close_reason = reason;
  snprintf(s->close_msg, sizeof(s->close_msg), "%s", message ? message : "");
  if (on_service) {
    wsi = s->wsi;
  } else if (!s->kick) {
    s->kick = true;
    t->kicks = true;
  }
  pthread_mutex_unlock(&t->mu);
  if (on_service) {
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_FLUSH_SECS);
    lws_callback_on_writable(wsi);
  } else {
    wake_once(t);
  }
  return DFNET_STATUS_OK;
}

/* Service thread: the keepalive tick of a session. */
static void keepalive_cb(lws_sorted_usec_list_t *sul) {
  session_t *s = lws_container_of(sul, session_t, ka_sul);
  uint32_t interval = s->ep->limits.keepalive_ms;
  uint64_t silent = dfnet_transport_now_ms() - s->last_rx_ms;
  if (silent >= 3ull * interval) {
    char msg[96];
    if (s->rx_paused) /* we stopped reading it: it has not read what we sent for that long */
      snprintf(msg, sizeof(msg), "the peer has not read for %llu ms (its send queue is full)",
               (unsigned long long)silent);
    else
      snprintf(msg, sizeof(msg), "keepalive: peer silent for %llu ms", (unsigned long long)silent);
    DFNET_LOGW(SUB, s->peer_name, "closing session %llu: %s", (unsigned long long)s->id, msg);
    session_kill(s, DFNET_STATUS_UNAVAILABLE, msg);
    return;
  }
  if (silent >= interval) {
    s->ping_due = true;
    lws_callback_on_writable(s->wsi);
  }
  lws_sul_schedule(s->t->ctx, 0, &s->ka_sul, keepalive_cb, (lws_usec_t)interval * 1000);
}

/* Service thread: the peer's certificate ran out: close the session; its requests and
 * ours end UNAUTHENTICATED (1008 close frame). */
static void expiry_cb(lws_sorted_usec_list_t *sul) {
  session_t *s = lws_container_of(sul, session_t, expiry_sul);
  char msg[160];
  struct tm tm;
  gmtime_r(&s->not_after, &tm);
  snprintf(msg, sizeof msg, "the certificate of %s expired at %04d-%02d-%02dT%02d:%02d:%02dZ",
           s->peer_name, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec);
  DFNET_LOGW(SUB, s->peer_name, "closing session %llu: %s", (unsigned long long)s->id, msg);
  (void)dfnet_transport_session_close(s->t, s->id, DFNET_STATUS_UNAUTHENTICATED, msg);
}

/* Service thread: drop the connection now; on_session_closed gets reason. */
static void session_kill(session_t *s, dfnet_status_t reason, const char *msg) {
  s->kill_reason_set = true;
  s->kill_reason = reason;
  snprintf(s->kill_msg, sizeof(s->kill_msg), "%s", msg);
  lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void peer_address(struct lws *wsi, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = lws_get_socket_fd(wsi);
  out[0] = '\0';
  if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
    snprintf(out, cap, "?");
    return;
  }
  char host[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(in->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    if (strncmp(host, "::ffff:", 7) == 0 && strchr(host, '.'))
      snprintf(out, cap, "%s:%u", host + 7, (unsigned)ntohs(in6->sin6_port));
    else
      snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
  } else {
    snprintf(out, cap, "?");
  }
}

/* Service thread: a websocket is up and its peer checked: make it a session. */
static session_t *session_open(endpoint_t *ep, struct lws *wsi, const transport__peer_t *peer,
                               const char *subprotocol) {
  dfnet_transport_t *t = ep->t;
  session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->t = t;
  s->ep = ep;
  s->wsi = wsi;
  s->next_id = ep->is_client ? 1 : 2;
  s->role = peer->role;
  snprintf(s->peer_name, sizeof(s->peer_name), "%s", peer->cn);
  snprintf(s->role_name, sizeof(s->role_name), "%s", peer->ou);
  snprintf(s->subprotocol, sizeof(s->subprotocol), "%s", subprotocol);
  if (ep->is_client)
    snprintf(s->peer_address, sizeof(s->peer_address), "%s%s%s:%d",
             strchr(ep->host, ':') ? "[" : "", ep->host, strchr(ep->host, ':') ? "]" : "",
             ep->port);
  else
    peer_address(wsi, s->peer_address, sizeof(s->peer_address));
  s->last_rx_ms = dfnet_transport_now_ms();
  s->tls_resumed = lws_tls_session_resumed(wsi) != 0;

  int one = 1, fd = lws_get_socket_fd(wsi);
  if (fd >= 0)
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  pthread_mutex_lock(&t->mu);
  if (t->n_sessions == t->cap_sessions) {
    size_t cap = t->cap_sessions ? t->cap_sessions * 2 : 8;
    session_t **n = realloc(t->sessions, cap * sizeof(*n));
    if (n == NULL) {
      pthread_mutex_unlock(&t->mu);
      free(s);
      return NULL;
    }
    t->sessions = n;
    t->cap_sessions = cap;
  }
  s->id = t->next_session_id++;
  t->sessions[t->n_sessions++] = s;
  pthread_mutex_unlock(&t->mu);

  lws_sul_schedule(t->ctx, 0, &s->ka_sul, keepalive_cb, (lws_usec_t)ep->limits.keepalive_ms * 1000);
  /* The session ends with the peer's certificate: RFC 5280's notAfter is the last second it
   * is valid, so the session is closed when the next one begins (and the handshake of a
   * reconnect refuses it from then on). */
  s->not_after = peer->not_after;
  time_t now = time(NULL);
  lws_sul_schedule(t->ctx, 0, &s->expiry_sul, expiry_cb,
                   (lws_usec_t)(s->not_after >= now ? s->not_after + 1 - now : 0) * LWS_US_PER_SEC);
  s->open = true;
  DFNET_LOGI(SUB, s->peer_name, "session %llu open: %s role=%s from %s%s",
             (unsigned long long)s->id, s->subprotocol, s->role_name, s->peer_address,
             s->tls_resumed ? " (TLS session resumed)" : "");
  if (ep->cb.on_session_open) {
    dfnet_session_info_t info = {.id = s->id,
                                 .endpoint = ep->id,
                                 .outgoing = ep->is_client,
                                 .peer_name = s->peer_name,
                                 .role_name = s->role_name,
                                 .role = s->role,
                                 .subprotocol = s->subprotocol,
                                 .peer_address = s->peer_address,
                                 .tls_resumed = s->tls_resumed};
    ep->cb.on_session_open(ep->user, &info);
  }
  /* other threads see a client's session once its owner has re-announced its state */
  if (ep->is_client) {
    pthread_mutex_lock(&t->mu);
    ep->session = s->id;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
  }
  return s;
}

/* Service thread: the connection of s is gone. Completes everything and frees s. */
static void session_finalize(session_t *s, const char *lws_reason) {
  dfnet_transport_t *t = s->t;
  endpoint_t *ep = s->ep;
  lws_sul_cancel(&s->ka_sul);
  flush_unlink(s);
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->n_sessions; i++) {
    if (t->sessions[i] == s) {
      t->sessions[i] = t->sessions[--t->n_sessions];
      break;
    }
  }
  if (ep->is_client && ep->session == s->id)
    ep->session = 0;
  pending_t *pend = s->p_head;
  s->p_head = s->p_tail = NULL;
  outmsg_t *q = s->q_head;
  s->q_head = s->q_tail = NULL;
  size_t freed = s->q_bytes + s->rx_cap;
  s->q_bytes = 0;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);

  dfnet_status_t reason, call_status;
  const char *msg;
  if (s->close_requested) {
    reason = s->close_reason;
    msg = s->close_msg;
    /* our requests end CANCELLED, or with the reason we closed for (UNAUTHENTICATED when
     * the peer's certificate ran out) */
    call_status = reason == DFNET_STATUS_OK ? DFNET_STATUS_CANCELLED : reason;
  } else if (t->destroying) {
    reason = DFNET_STATUS_CANCELLED;
    msg = "transport destroyed";
    call_status = DFNET_STATUS_CANCELLED;
  } else if (s->kill_reason_set) {
    reason = s->kill_reason;
    msg = s->kill_msg;
    /* a status the peer gave in its close frame stands for our requests too */
    call_status = reason == DFNET_STATUS_CANCELLED || s->peer_status_given
                      ? reason
                      : DFNET_STATUS_UNAVAILABLE;
  } else {
    reason = DFNET_STATUS_UNAVAILABLE;
    msg = lws_reason ? lws_reason : "connection closed";
    call_status = DFNET_STATUS_UNAVAILABLE;
  }
  for (pending_t *p = pend, *n; p; p = n) {
    n = p->next;
    pending_complete(p, call_status);
  }
  for (outmsg_t *m = q, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  dfnet_log_limit_flush(&s->log_limit, peer_warn_flush_one, s);
  lws_sul_cancel(&s->expiry_sul);
  /* A clean close by the peer is routine (a CLI run ends): debug; anything else: info. */
  dfnet_log_level_t level = s->peer_closed_cleanly ? DFNET_LOG_DEBUG : DFNET_LOG_INFO;
  dfnet_log(level, SUB, s->peer_name, "session %llu closed: %s%s%s", (unsigned long long)s->id,
            dfnet_status_str(reason), msg[0] ? ": " : "", msg);
  if (s->open && ep->cb.on_session_closed)
    ep->cb.on_session_closed(ep->user, s->id, reason, msg);
  free(s->rx_buf);
  free(s);
  /* A peer that made us queue megabytes is gone: give the memory back to the system
   * (glibc keeps freed heap otherwise, and the process stays at its peak). */
  if (freed >= 1024u * 1024u)
    malloc_trim(0);
}

/* ---- Receiving ------------------------------------------------------------------------ */

/* The id of an envelope from its first bytes (field 1, varint), or 0. */
static uint64_t prefix_id(const uint8_t *p, size_t n) {
  if (n < 2 || p[0] != 0x08)
    return 0;
  uint64_t v = 0;
  for (size_t i = 1, shift = 0; i < n && shift < 64; i++, shift += 7) {
    v |= (uint64_t)(p[i] & 0x7f) << shift;
    if (!(p[i] & 0x80))
      return v;
  }
  return 0;
}

static bool default_is_last(const dfnet_envelope_t *env) {
  if (env->pb.which_msg == dfnet_v1_Envelope_status_tag)
    return true;
  if (env->pb.which_msg == dfnet_v1_Envelope_reply_tag)
    return env->pb.msg.reply.end_of_stream;
  return false;
}

static bool is_our_id(const session_t *s, uint64_t id) {
  return id != 0 && (id & 1u) == (s->ep->is_client ? 1u : 0u);
}

/* Service thread: a warning about something the peer did, rate-limited per kind (a static
 * string; log_limit.h): a flood of bad frames writes a line per 10 s, not one per frame. */
__attribute__((format(printf, 3, 4))) static void peer_warn(session_t *s, const char *kind,
                                                            const char *fmt, ...) {
  uint32_t suppressed;
  if (!dfnet_log_limit_allow(&s->log_limit, kind, dfnet_transport_now_ms(), &suppressed))
    return;
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (suppressed > 0)
    DFNET_LOGW(SUB, s->peer_name, "%s (%u more like this in the last %u s)", msg, suppressed,
               DFNET_LOG_LIMIT_WINDOW_MS / 1000u);
  else
    DFNET_LOGW(SUB, s->peer_name, "%s", msg);
}

static void peer_warn_flush_one(void *user, const char *kind, uint32_t count) {
  session_t *s = user;
  DFNET_LOGW(SUB, s->peer_name, "%u more %s not logged before the session closed", count, kind);
}

/* Service thread: a message that did not decode. When its id can be read, it still gets an
 * answer: a request of the peer's gets the decoder's status with that id, a reply to one
 * of ours ends our request with it. Nobody waits out a deadline for a frame we dropped. */
static void dispatch_malformed(session_t *s, const uint8_t *buf, size_t len, dfnet_status_t st,
                               const char *err) {
  dfnet_transport_t *t = s->t;
  uint64_t id = prefix_id(buf, len);
  peer_warn(s, "malformed envelopes", "malformed %zu-byte envelope (id %llu): %s: %s", len,
            (unsigned long long)id, dfnet_status_str(st), err ? err : "?");
  if (id == 0)
    return;
  dfnet_status_t answer =
      st == DFNET_STATUS_RESOURCE_EXHAUSTED ? st : DFNET_STATUS_INVALID_ARGUMENT;
  if (is_our_id(s, id)) {
    pending_t *p = pending_take(t, s->id, id, NULL);
    if (p != NULL)
      pending_complete(p, answer);
    return;
  }
  char msg[300];
  snprintf(msg, sizeof msg, "malformed envelope: %s", err ? err : dfnet_status_str(st));
  (void)dfnet_transport_send_status(t, s->id, id, answer, msg);
}

/* Service thread: one whole message arrived. */
static void dispatch(session_t *s, const uint8_t *buf, size_t len) {
  dfnet_transport_t *t = s->t;
  dfnet_envelope_t *env = &t->rx_env;
  const char *err = NULL;
  dfnet_session_id_t sid = s->id;
  s->stats.received_messages++;
  dfnet_status_t st = dfnet_envelope_decode(buf, len, s->ep->limits.max_message_bytes, env, &err);
  if (st != DFNET_STATUS_OK && st != DFNET_STATUS_UNIMPLEMENTED) {
    dispatch_malformed(s, buf, len, st, err);
    return;
  }
  uint64_t id = env->pb.id;
  if (is_our_id(s, id)) {
    pthread_mutex_lock(&t->mu);
    pending_t *p = s->p_head;
    while (p && p->id != id)
      p = p->next;
    pthread_mutex_unlock(&t->mu);
    if (p != NULL) {
      /* only this thread unlinks pending requests: p stays valid until we call out */
      bool last = st != DFNET_STATUS_OK || !p->streaming ||
                  (p->is_last ? p->is_last(p->user, env) : default_is_last(env));
      if (!last) {
        p->on_reply(p->user, DFNET_STATUS_OK, env, false);
        return;
      }
      p = pending_take(t, sid, id, NULL);
      if (p == NULL)
        return;
      if (st == DFNET_STATUS_UNIMPLEMENTED) {
        peer_warn(s, "unknown replies", "reply %llu is of a kind this build does not know",
                  (unsigned long long)id);
        pending_complete(p, DFNET_STATUS_UNIMPLEMENTED);
        return;
      }
      p->on_reply(p->user, DFNET_STATUS_OK, env, true);
      free(p);
      return;
    }
  }
  if (st == DFNET_STATUS_UNIMPLEMENTED) {
    peer_warn(s, "unknown envelopes", "envelope %llu of an unknown kind: answering UNIMPLEMENTED",
              (unsigned long long)id);
    (void)dfnet_transport_send_status(t, sid, id, DFNET_STATUS_UNIMPLEMENTED,
                                      "unknown envelope member");
    return;
  }
  if (s->ep->cb.on_envelope)
    s->ep->cb.on_envelope(s->ep->user, sid, env);
}

static void rx_reset(session_t *s) {
  s->rx_in_message = false;
  s->rx_oversize = false;
  s->rx_len = 0;
  s->rx_total = 0;
  s->rx_prefix_len = 0;
  if (s->rx_cap > 1024u * 1024u) { /* do not keep a large buffer for an idle session */
    free(s->rx_buf);
    s->rx_buf = NULL;
    s->rx_cap = 0;
  }
}

/* Service thread: a piece of a websocket message. Returns -1 to close. */
static int on_receive(session_t *s, struct lws *wsi, const uint8_t *in, size_t len) {
  bool final = lws_is_final_fragment(wsi);
  s->last_rx_ms = dfnet_transport_now_ms();
  if (!s->rx_in_message) {
    s->rx_in_message = true;
    if (!lws_frame_is_binary(wsi)) {
      DFNET_LOGW(SUB, s->peer_name, "closing: a text websocket message (dfnet speaks binary)");
      session_kill(s, DFNET_STATUS_UNAVAILABLE, "text message received");
      return 0;
    }
    if (final) { /* the whole message in one piece: decode in place */
      dispatch(s, in, len);
      rx_reset(s);
      return 0;
    }
  }
  size_t max = s->ep->limits.max_message_bytes;
  if (s->rx_prefix_len < sizeof(s->rx_prefix)) {
    size_t n = sizeof(s->rx_prefix) - s->rx_prefix_len;
    if (n > len)
      n = len;
    memcpy(s->rx_prefix + s->rx_prefix_len, in, n);
    s->rx_prefix_len += n;
  }
  s->rx_total += len;
  if (!s->rx_oversize && s->rx_total > max) {
    s->rx_oversize = true;
    free(s->rx_buf);
    s->rx_buf = NULL;
    s->rx_cap = 0;
    s->rx_len = 0;
  }
  if (!s->rx_oversize) {
    if (s->rx_len + len > s->rx_cap) {
      size_t want = s->rx_len + len + lws_remaining_packet_payload(wsi);
      size_t cap = s->rx_cap ? s->rx_cap : 64u * 1024u;
      while (cap < want)
        cap *= 2;
      if (cap > max)
        cap = max;
      uint8_t *n = realloc(s->rx_buf, cap);
      if (n == NULL) {
        DFNET_LOGE(SUB, s->peer_name, "out of memory receiving a %zu-byte message", want);
        session_kill(s, DFNET_STATUS_UNAVAILABLE, "out of memory");
        return 0;
      }
      s->rx_buf = n;
      s->rx_cap = cap;
    }
    memcpy(s->rx_buf + s->rx_len, in, len);
    s->rx_len += len;
  }
  if (!final)
    return 0;
  if (s->rx_oversize) {
    uint64_t id = prefix_id(s->rx_prefix, s->rx_prefix_len);
    char msg[128];
    snprintf(msg, sizeof(msg), "message of %zu bytes exceeds the %zu-byte bound", s->rx_total, max);
    peer_warn(s, "oversized envelopes", "envelope %llu refused: %s", (unsigned long long)id, msg);
    s->stats.received_messages++;
    (void)dfnet_transport_send_status(s->t, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, msg);
  } else {
    dispatch(s, s->rx_buf, s->rx_len);
  }
  rx_reset(s);
  return 0;
}

/* ---- Writing -------------------------------------------------------------------------- */

/* Service thread: the next 4 random bytes for a client frame's masking key (RFC 6455
 * 5.3: unpredictable per frame), drawn from a pool refilled 256 bytes at a time. */
static bool mask_key(dfnet_transport_t *t, uint8_t key[4]) {
  if (t->mask_left < 4) {
    size_t got = 0;
    while (got < sizeof(t->mask_pool)) {
      ssize_t n = getrandom(t->mask_pool + got, sizeof(t->mask_pool) - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      got += (size_t)n;
    }
    t->mask_left = sizeof(t->mask_pool);
  }
  t->mask_left -= 4;
  memcpy(key, t->mask_pool + t->mask_left, 4);
  return true;
}

/* Frame one message (a final binary frame) into out: header, masking key when we are the
 * client, payload (masked when we are the client). Returns the bytes written; out has
 * room for WS_HDR_MAX + len. */
static size_t frame_into(dfnet_transport_t *t, bool client, uint8_t *out, const uint8_t *payload,
                         size_t len, bool *ok) {
  size_t h = 0;
  uint8_t mbit = client ? 0x80 : 0;
  out[h++] = 0x82; /* FIN, binary */
  if (len < 126) {
    out[h++] = (uint8_t)(mbit | len);
  } else if (len < 65536) {
    out[h++] = (uint8_t)(mbit | 126);
    out[h++] = (uint8_t)(len >> 8);
    out[h++] = (uint8_t)len;
  } else {
    out[h++] = (uint8_t)(mbit | 127);
    for (int i = 7; i >= 0; i--)
      out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (!client) {
    memcpy(out + h, payload, len);
    return h + len;
  }
  uint8_t key[8];
  if (!mask_key(t, key)) {
    *ok = false;
    return 0;
  }
  memcpy(out + h, key, 4);
  h += 4;
  memcpy(key + 4, key, 4);
  uint64_t k64, w;
  memcpy(&k64, key, 8);
  uint8_t *d = out + h;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    memcpy(&w, payload + i, 8);
    w ^= k64;
    memcpy(d + i, &w, 8);
  }
  for (; i < len; i++)
    d[i] = payload[i] ^ key[i & 3];
  return h + len;
}

/* Service thread: stop reading a peer whose send queue reached the high-water mark (it does
 * not read what we send it, so whatever else it asks for has nowhere to go: with reading
 * stopped, its requests wait in its own socket and the memory we hold for it stays under
 * the mark plus one turn's replies), and read it again once the queue is down to half.
 * Keepalive drops a peer that stays like this for 3 intervals. */
static void rx_flow_update(session_t *s) {
  pthread_mutex_lock(&s->t->mu);
  size_t queued = s->q_bytes;
  pthread_mutex_unlock(&s->t->mu);
  size_t hwm = s->ep->limits.send_hwm_bytes;
  if (!s->rx_paused && queued >= hwm) {
    s->rx_paused = true;
    s->stats.reading_pauses++;
    lws_rx_flow_control(s->wsi, 0);
    peer_warn(s, "reading pauses", "not reading from the peer: %zu bytes wait for it to read",
              queued);
  } else if (s->rx_paused && queued <= hwm / 2) {
    s->rx_paused = false;
    lws_rx_flow_control(s->wsi, 1);
  }
}

/* Service thread: take the n whole messages at the head of s's queue off it (they were
 * handed to lws, in `writes` writes). */
static void dequeue_sent(session_t *s, size_t n, uint64_t writes) {
  dfnet_transport_t *t = s->t;
  outmsg_t *done = NULL;
  pthread_mutex_lock(&t->mu);
  s->stats.writes += writes;
  for (size_t i = 0; i < n && s->q_head; i++) {
    outmsg_t *m = s->q_head;
    s->q_head = m->next;
    if (s->q_head == NULL)
      s->q_tail = NULL;
    s->q_bytes -= outmsg_cost(m);
    s->stats.sent_messages++;
    m->next = done;
    done = m;
  }
  if (n > 0)
    pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  for (outmsg_t *m = done, *nx; m; m = nx) {
    nx = m->next;
    free(m);
  }
  if (s->rx_paused)
    rx_flow_update(s);
}

/* Service thread: write what is queued on s, up to about `budget` bytes: whole messages
 * (several small ones framed into one write, one websocket message each), or the next
 * fragment of a large one (and nothing else in this call). Returns 1 when more is queued
 * (the caller asks for a writable callback), 0 when the queue is empty, -1 on a write
 * error. */
static int write_queue(session_t *s, struct lws *wsi, size_t budget) {
  dfnet_transport_t *t = s->t;
  size_t frag = s->ep->limits.fragment_bytes;
  bool client = s->ep->is_client;
  for (;;) {
    pthread_mutex_lock(&t->mu);
    outmsg_t *m = s->q_head;
    /* how many whole small messages fit in one batch? (the list past q_head is only
     * appended to by other threads: its links we read stay valid) */
    size_t nb = 0, bytes = 0;
    if (m != NULL && s->cur_off == 0)
      for (outmsg_t *x = m; x && bytes + x->len + WS_HDR_MAX <= BATCH_BYTES; x = x->next) {
        bytes += x->len + WS_HDR_MAX;
        nb++;
      }
    pthread_mutex_unlock(&t->mu);
    if (m == NULL)
      return 0;
    /* out of budget, or the socket is full and lws holds bytes back (it asked for a
     * writable callback itself): the rest later */
    if (budget == 0 || lws_partial_buffered(wsi))
      return 1;
    if (nb >= 2) {
      /* several messages, one write: our own frames through LWS_WRITE_RAW */
      if (t->batch == NULL && (t->batch = malloc(LWS_PRE + BATCH_BYTES)) == NULL)
        nb = 1;
    }
    if (nb >= 2) {
      uint8_t *out = t->batch + LWS_PRE;
      size_t off = 0;
      bool ok = true;
      outmsg_t *x = m;
      for (size_t i = 0; i < nb && ok; i++, x = x->next)
        off += frame_into(t, client, out + off, x->buf + LWS_PRE, x->len, &ok);
      if (!ok) {
        DFNET_LOGE(SUB, s->peer_name, "no random bytes for websocket masking keys");
        return -1;
      }
      if (lws_write(wsi, out, off, LWS_WRITE_RAW) < (int)off)
        return -1;
      dequeue_sent(s, nb, 1);
      budget = budget > off ? budget - off : 0;
      continue;
    }
    size_t left = m->len - s->cur_off;
    if (s->cur_off == 0 && left <= frag) {
      /* one whole message, unfragmented, from its own buffer */
      if (lws_write(wsi, m->buf + LWS_PRE, left, LWS_WRITE_BINARY) < (int)left)
        return -1;
      dequeue_sent(s, 1, 1);
      budget = budget > left ? budget - left : 0;
      continue;
    }
    /* one fragment of a large message per call */
    size_t n = left < frag ? left : frag;
    int flags = (s->cur_off == 0 ? LWS_WRITE_BINARY : LWS_WRITE_CONTINUATION);
    if (n < left)
      flags |= LWS_WRITE_NO_FIN;
    if (lws_write(wsi, m->buf + LWS_PRE + s->cur_off, n, (enum lws_write_protocol)flags) < (int)n)
      return -1;
    s->cur_off += n;
    if (s->cur_off < m->len) {
      dequeue_sent(s, 0, 1);
      return 1;
    }
    s->cur_off = 0;
    dequeue_sent(s, 1, 1);
    pthread_mutex_lock(&t->mu);
    bool more = s->q_head != NULL;
    pthread_mutex_unlock(&t->mu);
    return more ? 1 : 0;
  }
}

/* Service thread: the socket can take more. Returns -1 to close the connection. */
static int on_writable(session_t *s, struct lws *wsi) {
  dfnet_transport_t *t = s->t;

  if (s->ping_due && s->cur_off == 0) {
    /* A ping carries 8 bytes (the send time): lws 4.1's server drops an empty pong before
     * the callback (roles/ws/ops-ws.c), so a peer answering an empty ping, as RFC 6455
     * §5.5.3 says, would look silent and be closed after 3 intervals. The pong echoes them. */
    uint8_t ping[LWS_PRE + 8];
    uint64_t now = dfnet_transport_now_ms();
    memcpy(ping + LWS_PRE, &now, sizeof now);
    s->ping_due = false;
    if (lws_write(wsi, ping + LWS_PRE, sizeof now, LWS_WRITE_PING) < 0)
      return -1;
  }
  int more = write_queue(s, wsi, s->ep->limits.fragment_bytes);
  if (more < 0)
    return -1;
  pthread_mutex_lock(&t->mu);
  bool close_now = s->close_requested && s->q_head == NULL;
  pthread_mutex_unlock(&t->mu);
  if (close_now) {
    /* 1000 for an ordinary close; 1008 with "<STATUS>: why" when the session ends for a
     * reason the peer must hear (its certificate ran out, it sent no Hello...): the peer's
     * transport ends its requests with that status */
    char text[124];
    bool ordinary = s->close_reason == DFNET_STATUS_OK || s->close_reason == DFNET_STATUS_CANCELLED;
    int n = ordinary ? snprintf(text, sizeof text, "%s", s->close_msg)
                     : snprintf(text, sizeof text, "%s: %s", dfnet_status_str(s->close_reason),
                                s->close_msg);
    lws_close_reason(wsi, ordinary ? LWS_CLOSE_STATUS_NORMAL : LWS_CLOSE_STATUS_POLICY_VIOLATION,
                     (unsigned char *)text, n < 0 ? 0 : strlen(text));
    return -1;
  }
  if (more)
    lws_callback_on_writable(wsi);
  return 0;
}

/* Service thread: write what s has queued now, outside a writable callback: only when
 * lws holds nothing back for the socket and no large message is half sent; otherwise (or
 * for what does not fit) ask for a writable callback. */
static void flush_session(session_t *s) {
  struct lws *wsi = s->wsi;
  rx_flow_update(s);
  if (s->closing || s->kill_reason_set || s->close_requested || s->cur_off != 0 ||
      lws_partial_buffered(wsi)) {
    lws_callback_on_writable(wsi);
    return;
  }
  int more = write_queue(s, wsi, s->ep->limits.fragment_bytes);
  if (more < 0) {
    session_kill(s, DFNET_STATUS_UNAVAILABLE, "write failed");
    return;
  }
  if (more || lws_partial_buffered(wsi))
    lws_callback_on_writable(wsi);
}

/* Service thread: write every session marked by flush_mark. Called at the end of each
 * service turn (dfnet_transport_run) and from flush_sul when work was queued by a timer
 * before lws polls. */
static void flush_all(dfnet_transport_t *t) {
  if (t->flush_sul_armed) {
    t->flush_sul_armed = false;
    lws_sul_cancel(&t->flush_sul);
  }
  while (t->flush_head) {
    session_t *s = t->flush_head;
    t->flush_head = s->flush_next;
    s->flush_next = NULL;
    s->flush_linked = false;
    s->unflushed = 0;
    s->unflushed_bytes = 0;
    flush_session(s);
  }
}

static void flush_sul_cb(lws_sorted_usec_list_t *sul) {
  dfnet_transport_t *t = lws_container_of(sul, dfnet_transport_t, flush_sul);
  t->flush_sul_armed = false;
  flush_all(t);
}

/* Service thread: s has queued messages to write by the end of this service turn. The
 * sul makes sure lws does not sleep in poll() first when we are called from a timer (lws
 * runs timers before it polls). */
static void flush_mark(session_t *s, size_t len) {
  dfnet_transport_t *t = s->t;
  s->unflushed++;
  s->unflushed_bytes += len;
  uint32_t batch = s->ep->limits.batch_messages;
  if (s->unflushed >= batch || s->unflushed_bytes >= (size_t)batch * 1024u) {
    /* enough held back: write now, so that the peer can start on these while we go on
     * (two sides working at once beat one batch per turn that leaves the peer idle) */
    flush_unlink(s);
    s->unflushed = 0;
    s->unflushed_bytes = 0;
    flush_session(s);
    return;
  }
  if (!s->flush_linked) {
    s->flush_linked = true;
    s->flush_next = t->flush_head;
    t->flush_head = s;
  }
  if (!t->flush_sul_armed && !t->destroying) {
    t->flush_sul_armed = true;
    lws_sul_schedule(t->ctx, 0, &t->flush_sul, flush_sul_cb, 1);
  }
}

/* Service thread: s is going away: not to be flushed. */
static void flush_unlink(session_t *s) {
  if (!s->flush_linked)
    return;
  for (session_t **pp = &s->t->flush_head; *pp; pp = &(*pp)->flush_next) {
    if (*pp == s) {
      *pp = s->flush_next;
      break;
    }
  }
  s->flush_linked = false;
  s->flush_next = NULL;
}

/* ---- The service thread's inbox ------------------------------------------------------ */

static void drain_inbox(dfnet_transport_t *t) {
  atomic_store(&t->wake_pending, false); /* before looking: see wake_once */
  pthread_mutex_lock(&t->mu);
  ttimer_t *timers = t->inbox_timers;
  t->inbox_timers = NULL;
  work_t *work = t->inbox_head;
  t->inbox_head = t->inbox_tail = NULL;
  bool dirty = t->deadlines_dirty;
  session_t *kick[64]; /* only this thread frees sessions */
  size_t nkick = 0;
  bool kicks_left = false;
  if (t->kicks) {
    for (size_t i = 0; i < t->n_sessions; i++) {
      session_t *s = t->sessions[i];
      if (!s->kick)
        continue;
      if (nkick == sizeof(kick) / sizeof(kick[0])) {
        kicks_left = true;
        break;
      }
      s->kick = false;
      if (s->close_requested)
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_FLUSH_SECS);
      kick[nkick++] = s;
    }
    t->kicks = kicks_left;
  }
  pthread_mutex_unlock(&t->mu);
  /* written at the end of this service turn (a closing session waits for writable) */
  for (size_t i = 0; i < nkick; i++)
    flush_mark(kick[i], 0);
  if (kicks_left)
    wake(t);
  for (ttimer_t *tm = timers, *n; tm; tm = n) {
    n = tm->next;
    timer_schedule(t, tm);
  }
  for (work_t *w = work, *n; w; w = n) {
    n = w->next;
    switch (w->kind) {
    case WORK_TIMER_CANCEL:
      (void)timer_cancel_here(t, w->timer_id);
      break;
    case WORK_REQUEST_CANCEL:
      (void)cancel_here(t, w->session, w->request_id, w->notify_peer, w->reason);
      break;
    }
    free(w);
  }
  if (dirty)
    deadline_rearm(t);
}

static int base_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len) {
  (void)user;
  (void)in;
  (void)len;
  fd_watch_t *w;
  switch (reason) {
  case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
    dfnet_transport_t *t = lws_context_user(lws_get_context(wsi));
    if (t && !t->destroying)
      drain_inbox(t);
    break;
  }
  case LWS_CALLBACK_RAW_RX_FILE:
    w = lws_get_opaque_user_data(wsi);
    if (w != NULL && !w->t->destroying)
      w->fn(w->user);
    break;
  case LWS_CALLBACK_RAW_CLOSE_FILE:
    w = lws_get_opaque_user_data(wsi);
    if (w == NULL)
      break;
    if (!w->t->destroying)
      DFNET_LOGW(SUB, NULL, "watched file descriptor %d hung up: no longer watched", w->fd);
    lws_set_opaque_user_data(wsi, NULL);
    free(w);
    break;
  default:
    break;
  }
  return 0;
}

dfnet_status_t dfnet_transport_set_turn_end(dfnet_transport_t *t, dfnet_work_fn fn, void *user) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (!dfnet_transport_on_service_thread(t) && (t->thread_started || atomic_load(&t->serviced)))
    return DFNET_STATUS_FAILED_PRECONDITION;
  t->turn_end_fn = fn;
  t->turn_end_user = user;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_watch_fd(dfnet_transport_t *t, int fd, dfnet_work_fn fn,
                                        void *user) {
  if (t == NULL || fd < 0 || fn == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (!dfnet_transport_on_service_thread(t) && (t->thread_started || atomic_load(&t->serviced)))
    return DFNET_STATUS_FAILED_PRECONDITION;
  fd_watch_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return DFNET_STATUS_INTERNAL;
  *w = (fd_watch_t){.t = t, .fn = fn, .user = user};
  w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (w->fd < 0) {
    DFNET_LOGE(SUB, NULL, "cannot watch file descriptor %d: %s", fd, strerror(errno));
    free(w);
    return DFNET_STATUS_INTERNAL;
  }
  lws_adopt_desc_t ad = {.vh = t->base_vhost,
                         .type = LWS_ADOPT_RAW_FILE_DESC,
                         .fd = {.filefd = w->fd},
                         .vh_prot_name = "dfnet-fd",
                         .opaque = w};
  if (lws_adopt_descriptor_vhost_via_info(&ad) == NULL) {
    /* lws may or may not have closed the dup by now: leave it rather than risk closing a
     * descriptor number another thread has since been given. */
    DFNET_LOGE(SUB, NULL, "cannot watch file descriptor %d: libwebsockets refused it", fd);
    free(w);
    return DFNET_STATUS_INTERNAL;
  }
  return DFNET_STATUS_OK;
}

/* ---- The lws callback -------------------------------------------------------------- */

static void refuse_log(struct lws *wsi, const char *who, const char *why) {
  char addr[64];
  peer_address(wsi, addr, sizeof(addr));
  DFNET_LOGW(SUB, addr, "refused%s%s: %s", who && who[0] ? " " : "", who ? who : "", why);
}

/* Server: the websocket upgrade request of a TLS connection. 0 = accept. */
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

/* The upgrade's checks (the peer's certificate, its role on this subprotocol). Returns 0
 * when the peer may open a session; else logs the refusal once and, when respond, answers
 * it (refuse_upgrade) and returns its result; else -1. */
static int server_check_upgrade(struct lws *wsi, struct pss *pss, bool respond) {
  char why[256];
  char proto[64] = "";
  if (lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) < 0)
    proto[0] = '\0';
  transport__peer_t peer;
  if (!transport__peer_verify(wsi, &peer, why, sizeof(why))) {
    refuse_log(wsi, NULL, why);
    return respond ? refuse_upgrade(wsi, DFNET_STATUS_UNAUTHENTICATED, why) : -1;
  }
  /* one subprotocol, exactly ours */
  const char *refusal = transport__role_refusal(peer.ou, proto);
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

static const char *close_text(void *in, size_t len, char *buf, size_t cap) {
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

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
  struct pss *pss = user;
  struct lws_vhost *vh = lws_get_vhost(wsi);
  endpoint_t *ep = vh ? lws_vhost_user(vh) : NULL;
  char why[256];

  switch (reason) {
  /* -- server -- */
  case LWS_CALLBACK_SSL_INFO: {
    const struct lws_ssl_info *si = in;
    if (si && si->where == LWS_SSL_INFO_DFNET_HANDSHAKE_FAILED) {
      char e[200];
      snprintf(why, sizeof(why), "TLS handshake failed: %s",
               transport__mbedtls_strerror(si->ret, e, sizeof(e)));
      refuse_log(wsi, NULL, why);
    }
    return 0;
  }
  case LWS_CALLBACK_HTTP:
    refuse_log(wsi, NULL, "plain HTTP request, not a websocket upgrade");
    lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
    return -1;
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    if (in == NULL || strcmp(in, "websocket") != 0) {
      refuse_log(wsi, NULL, "upgrade to something other than websocket");
      return -1;
    }
    return server_check_upgrade(wsi, NULL, true);
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
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
  case LWS_CALLBACK_ESTABLISHED: {
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    if (ep == NULL || pss == NULL || !pss->checked || pr == NULL)
      return -1;
    pss->s = session_open(ep, wsi, &pss->peer, pr->name);
    return pss->s ? 0 : -1;
  }

  /* -- client -- */
  case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH: {
    ep = lws_get_opaque_user_data(wsi);
    if (ep == NULL || pss == NULL)
      return -1;
    transport__peer_t peer;
    if (!transport__peer_verify(wsi, &peer, why, sizeof(why))) {
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
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    ep = lws_get_opaque_user_data(wsi);
    if (ep == NULL || pss == NULL || !pss->checked)
      return -1;
    ep->backoff_next_ms = ep->backoff_initial_ms;
    ep->attempts = 0;
    pss->s = session_open(ep, wsi, &pss->peer, ep->subprotocol);
    return pss->s ? 0 : -1;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    ep = lws_get_opaque_user_data(wsi);
    if (ep == NULL)
      return 0;
    connect_error(ep, in ? (const char *)in : NULL);
    ep->wsi = NULL;
    if (pss && pss->s) {
      session_finalize(pss->s, "connection error");
      pss->s = NULL;
    }
    client_schedule_retry(ep);
    return 0;

  /* -- both -- */
  case LWS_CALLBACK_RECEIVE:
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (pss == NULL || pss->s == NULL)
      return -1;
    return on_receive(pss->s, wsi, in, len);
  case LWS_CALLBACK_RECEIVE_PONG:
  case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
    if (pss && pss->s)
      pss->s->last_rx_ms = dfnet_transport_now_ms();
    return 0;
  case LWS_CALLBACK_SERVER_WRITEABLE:
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (pss == NULL || pss->s == NULL)
      return 0;
    return on_writable(pss->s, wsi);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if (pss && pss->s && !pss->s->kill_reason_set) {
      /* 1000 (normal) or 1001 (going away): the peer is done, nothing went wrong (logged at
       * debug level); our requests still waiting on it end UNAVAILABLE all the same */
      unsigned code =
          in != NULL && len >= 2 ? (unsigned)(((uint8_t *)in)[0] << 8 | ((uint8_t *)in)[1]) : 0;
      pss->s->peer_closed_cleanly =
          code == LWS_CLOSE_STATUS_NORMAL || code == LWS_CLOSE_STATUS_GOINGAWAY;
      pss->s->kill_reason_set = true;
      pss->s->kill_reason = DFNET_STATUS_UNAVAILABLE;
      close_text(in, len, pss->s->kill_msg, sizeof(pss->s->kill_msg));
      /* 1008 "<STATUS>: why" (our close_status): the peer says what ended the session */
      char text[128], name[24];
      dfnet_status_t given;
      snprintf(text, sizeof text, "%.*s", len > 2 ? (int)(len - 2 < 127 ? len - 2 : 127) : 0,
               len > 2 ? (const char *)in + 2 : "");
      if (code == LWS_CLOSE_STATUS_POLICY_VIOLATION && sscanf(text, "%23[A-Z_]:", name) == 1 &&
          dfnet_status_from_str(name, &given) == DFNET_STATUS_OK && given != DFNET_STATUS_OK) {
        pss->s->kill_reason = given;
        pss->s->peer_status_given = true;
      }
    }
    return 0;
  case LWS_CALLBACK_CLOSED:
  case LWS_CALLBACK_CLIENT_CLOSED:
    if (pss && pss->s) {
      session_finalize(pss->s, "connection lost");
      pss->s = NULL;
    }
    if (reason == LWS_CALLBACK_CLIENT_CLOSED) {
      ep = lws_get_opaque_user_data(wsi);
      if (ep) {
        ep->wsi = NULL;
        client_schedule_retry(ep);
      }
    }
    return 0;
  case LWS_CALLBACK_WSI_DESTROY:
    if (pss && pss->s) { /* closed without CLOSED (should not happen) */
      session_finalize(pss->s, "connection lost");
      pss->s = NULL;
    }
    return 0;
  default:
    return 0;
  }
}
