/* Internals shared by lib/transport*.c (not a public header).
 *
 * The transport (lib/transport.h), one concept per file:
 *   transport_loop.c      the service thread: create, run, shutdown, destroy; the inbox of
 *                         work from other threads, watched fds, the turn-end hook
 *   transport_timer.c     timers and posted work (dfnet_transport_timer_*, post)
 *   transport_endpoint.c  endpoints: listen, connect (URL, backoff), why a connection failed
 *   transport_session.c   sessions: open, close, finalize, keepalive, certificate expiry
 *   transport_request.c   pending requests: ids, replies, deadlines, cancel, blocking calls
 *   transport_send.c      the send queue: encoding, its mark and the reading pauses it
 *                         causes, batching, RFC 6455 framing and masking, writing, the
 *                         flush at the end of a turn (one file: the per-message path)
 *   transport_receive.c   reassembling websocket messages, the receive bound, dispatch
 *   transport_lws.c       the lws callback, one function per reason; the upgrade checks
 *   transport_peer.c      who the peer is: its certificate, role and name
 *   transport_tickets.c   a server's RFC 5077 session tickets, their keys kept in a file
 *   transport_http.c      plain HTTP requests of an endpoint: the owner's answers, streams
 *
 * Locking: one mutex (t->mu) guards what other threads touch: the session table, each
 * session's send queue and pending-request list, the inbox of work for the service thread
 * and the id counters. Everything else (lws, timers, receive state) belongs to the service
 * thread. Only the service thread unlinks a pending request or frees a session, so the
 * service thread may use those pointers between two lock sections. No callback of ours is
 * ever called with the mutex held.
 *
 * The functions below never block (t->mu at most, taken and released inside), borrow
 * their arguments and never call a user callback, unless they say otherwise.
 *
 * Lists: FIFOs and the flush list are <sys/queue.h> (STAILQ, SLIST: no back link per
 * message); lists unlinked from the middle are utlist DL lists (the head's prev is the
 * tail).
 */
#ifndef DFNET_LIB_TRANSPORT_INTERNAL_H
#define DFNET_LIB_TRANSPORT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <libwebsockets.h>

#include "dfnet/status.h"
#include "dfnet/v1/session.pb.h"
#include "lib/log_limit.h"
#include "lib/transport.h"

#define TRANSPORT__NAME_MAX 64
#define TRANSPORT__MAX_ENDPOINTS 16
#define TRANSPORT__CLOSE_FLUSH_SECS 5
/* lws's timeout of a connection's steps (the TLS handshake, the upgrade): its default, 5 s,
 * is shorter than a manager needs for 1,000 full handshakes at once (about 6 s of one CPU):
 * every one of them timed out, was retried and timed out again (bench/reconnect_storm
 * without tickets: 0 of 1,000 back after 60 s). */
#define TRANSPORT__HANDSHAKE_TIMEOUT_S 20
#define TRANSPORT__PT_SERV_BUF (32u * 1024u)
/* Small messages queued together go out as one write (one TLS record): up to this many
 * bytes of websocket frames per write. 16 KiB is the payload of one TLS record. */
#define TRANSPORT__BATCH_BYTES (16u * 1024u)
/* A websocket frame header: 2, 4 or 10 bytes, +4 for the client's masking key. */
#define TRANSPORT__WS_HDR_MAX 14

/* What a peer's certificate says, once verified. */
typedef struct transport__peer {
  char cn[TRANSPORT__NAME_MAX + 1];
  char ou[TRANSPORT__NAME_MAX + 1];
  dfnet_v1_Role role;
  time_t not_after; /* the end of the certificate's validity (UTC seconds) */
  uint8_t serial[DFNET_TRANSPORT_SERIAL_MAX]; /* serial number: DER content octets */
  size_t serial_len;
  char serial_hex[2 * DFNET_TRANSPORT_SERIAL_MAX + 1];
} transport__peer_t;

/* Check the peer certificate of an lws connection: present, verified against our CA,
 * within its validity. On success fills *peer (CN, OU, role) and returns true; otherwise
 * writes the reason (one line) into why[0..why_cap) and returns false. */
bool transport__peer_verify(struct lws *wsi, transport__peer_t *peer, char *why, size_t why_cap)
    __attribute__((warn_unused_result));

/* A certificate's notAfter in UTC seconds (transport_peer.c). */
time_t transport__crt_not_after(const mbedtls_x509_crt *crt);

/* May a certificate with role OU `ou` use `subprotocol` on our server? NULL why on
 * success; otherwise a static reason. */
const char *transport__role_refusal(const char *ou, const char *subprotocol);

/* Does the peer certificate of `wsi` name `host`: an IP literal matches an iPAddress SAN;
 * a DNS name matches a dNSName SAN (case-insensitive, "*." wildcard on the leftmost
 * label); without any SAN, the CN. */
bool transport__peer_matches_host(struct lws *wsi, const char *host);

struct transport__endpoint;
struct lws_vhost;

/* A name lws keeps a pointer to (a client vhost's after a reload of its identity). */
typedef struct transport__name {
  struct transport__name *next; /* utlist LL: transport__endpoint_t.vhost_names */
  char text[40];
} transport__name_t;

/* A client endpoint's lws vhost (its protocols, certificate, key and CA from ep's files; none
 * for enrollment) named `name` (kept by lws: must live as long as the vhost). NULL on
 * failure (lws logs why). Service thread, or before it runs. */
struct lws_vhost *transport__client_vhost_create(struct transport__endpoint *ep, const char *name);
/* Enrollment (transport_enroll.c). Server: append the CA of ep->ca_file to the chain the
 * vhost's SSL_CTX presents (at LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS), so that
 * a peer holding only the CA's pin can check it. 0 on success, -1 (logged) otherwise. */
int transport__server_chain_ca(struct transport__endpoint *ep, void *ssl_ctx);

/* Client of DFNET_SUBPROTOCOL_ENROLL: the server's chain holds a CA whose SubjectPublicKeyInfo
 * hashes to ep->ca_pin, its certificate verifies against that CA alone, has role manager and
 * names ep->server_name. On true *peer is the manager; else why says what failed. */
bool transport__enroll_check_server(struct lws *wsi, struct transport__endpoint *ep,
                                    transport__peer_t *peer, char *why, size_t cap);

/* Server: the peer of a DFNET_SUBPROTOCOL_ENROLL session: no certificate, no name, no role;
 * its session is closed TRANSPORT__ENROLL_SESSION_S after it opens, as a session whose
 * certificate ran out. */
#define TRANSPORT__ENROLL_SESSION_S 60
void transport__enroll_anonymous_peer(transport__peer_t *peer);

/* mbedTLS error text for logs ("SSL - ..."), into buf. */
const char *transport__mbedtls_strerror(int code, char *buf, size_t cap);

/* Everything below is internal to libdfnet-transport: hidden, so that calls between its
 * files are direct and no symbol leaves a shared library that carries it. */
#pragma GCC visibility push(hidden)

/* ---- Types ------------------------------------------------------------------------- */

/* A message in a session's send queue. */
typedef struct transport__outmsg {
  STAILQ_ENTRY(transport__outmsg) link;
  size_t len;
  uint8_t buf[]; /* LWS_PRE bytes, then len bytes of envelope */
} transport__outmsg_t;

/* A request of ours waiting for its (last) reply. */
typedef struct transport__pending {
  struct transport__pending *next, *prev; /* utlist DL: its session's pending list */
  uint64_t id;
  uint64_t deadline_ms; /* monotonic; 0 = none */
  bool streaming;
  dfnet_reply_is_last_fn is_last;
  dfnet_reply_fn on_reply;
  void *user;
} transport__pending_t;

typedef struct transport__endpoint transport__endpoint_t;
/* An HTTP request being answered (transport_http.c). */
typedef struct transport__http transport__http_t;
/* A server endpoint's RFC 5077 session tickets and their persisted keys (transport_tickets.c) */
typedef struct transport__tickets transport__tickets_t;

typedef struct transport__session {
  dfnet_transport_t *t;
  transport__endpoint_t *ep;
  dfnet_session_id_t id;
  struct lws *wsi;
  bool open; /* on_session_open was called */

  /* t->mu */
  STAILQ_HEAD(, transport__outmsg) queue; /* the send queue, oldest first */
  size_t q_bytes;
  transport__pending_t *pending; /* utlist DL, oldest first */
  uint32_t p_count;
  uint64_t next_id;
  bool kick;            /* needs lws_callback_on_writable from the service thread */
  bool close_requested; /* by dfnet_transport_session_close */
  dfnet_status_t close_reason;
  char close_msg[124];
  dfnet_session_stats_t stats;

  /* service thread */
  SLIST_ENTRY(transport__session) flush_link; /* on t->flush_list */
  bool flush_linked;
  uint32_t unflushed; /* messages queued since the last write, and their bytes */
  size_t unflushed_bytes;
  size_t cur_off; /* bytes of the queue's first message already written */
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
  char serial_hex[2 * DFNET_TRANSPORT_SERIAL_MAX + 1];
} transport__session_t;

struct transport__endpoint {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t id;
  bool is_client;
  struct lws_vhost *vhost;
  char vhost_name[32]; /* lws keeps the pointer given at vhost creation: it lives here */
  struct lws_protocols protocols[5];
  dfnet_transport_limits_t limits;
  dfnet_transport_callbacks_t cb;
  dfnet_is_revoked_fn is_revoked; /* server: dfnet_server_config_t.is_revoked */
  void *user;
  transport__tickets_t *tickets; /* server: RFC 5077 session tickets, or NULL */
  dfnet_http_fn on_http;         /* server: plain HTTP requests (NULL: refused 403) */
  dfnet_http_gone_fn on_http_gone;
  bool plain_http; /* dfnet_transport_listen_http: no TLS, no websockets */

  /* client */
  char *url, *host, *path, *subprotocol, *server_name, *server_role;
  char *cert_file, *key_file, *ca_file;
  int port;
  uint32_t backoff_initial_ms, backoff_max_ms, backoff_jitter_pct;
  double backoff_multiplier;
  double backoff_next_ms;
  uint64_t backoff_rng; /* xorshift64* state of the full jitter, never 0 */
  uint64_t lost_ms;     /* monotonic ms when its last session ended (0: none yet) */
  bool last_refused;    /* the last attempt found nothing listening (connection refused) */
  struct lws *wsi;
  bool retry_scheduled;
  lws_sorted_usec_list_t retry_sul;
  dfnet_session_id_t session; /* t->mu */
  uint32_t attempts;
  dfnet_status_t refusal_code; /* our own refusal of the server, for the connect error */
  /* client of DFNET_SUBPROTOCOL_ENROLL: no certificate of ours; the server's CA is the one
   * of its chain whose SubjectPublicKeyInfo hashes to ca_pin (transport_enroll.c) */
  bool enroll;
  uint8_t ca_pin[32];
  mbedtls_x509_crt pinned_ca; /* the CA of ca_pin once a server's chain showed it (or empty) */
  /* dfnet_transport_client_reload_identity: the names of the vhosts made since (lws keeps
   * the pointer; the vhosts live until the context goes) */
  struct transport__name *vhost_names;
  uint32_t identity_generation;
  char refusal[400];
};

/* A timer of dfnet_transport_timer_start. */
typedef struct transport__timer {
  lws_sorted_usec_list_t sul;
  struct transport__timer *next, *prev; /* utlist DL: t->timers (service thread) or
                                           t->inbox_timers (t->mu) */
  dfnet_transport_t *t;
  dfnet_timer_id_t id;
  uint64_t due_ms;
  dfnet_work_fn fn;
  void *user;
} transport__timer_t;

/* Work another thread hands to the service thread through the inbox. */
typedef enum transport__work_kind {
  TRANSPORT__WORK_TIMER_CANCEL,
  TRANSPORT__WORK_REQUEST_CANCEL,
  TRANSPORT__WORK_HTTP_KICK, /* request_id: an HTTP request with something to write */
} transport__work_kind_t;

typedef struct transport__work {
  STAILQ_ENTRY(transport__work) link; /* t->inbox */
  transport__work_kind_t kind;
  dfnet_timer_id_t timer_id;
  dfnet_session_id_t session;
  uint64_t request_id;
  bool notify_peer;
  char reason[128];
} transport__work_t;

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
  uint32_t connections_gone;         /* service thread: connections ended since the last trim */
  lws_sorted_usec_list_t shutdown_sul;

  transport__endpoint_t *endpoints[TRANSPORT__MAX_ENDPOINTS];
  size_t n_endpoints;

  /* t->mu */
  transport__session_t **sessions;
  size_t n_sessions, cap_sessions;
  dfnet_session_id_t next_session_id;
  dfnet_timer_id_t next_timer_id;
  transport__timer_t *inbox_timers;     /* utlist DL, newest first */
  STAILQ_HEAD(, transport__work) inbox; /* oldest first */
  bool kicks;
  bool deadlines_dirty;

  transport__http_t *http; /* utlist DL: HTTP requests being answered (transport_http.c) */
  dfnet_http_id_t next_http_id;

  atomic_bool wake_pending;  /* lws_cancel_service() called, inbox not drained yet */
  dfnet_work_fn turn_end_fn; /* dfnet_transport_set_turn_end */
  void *turn_end_user;

  /* service thread */
  SLIST_HEAD(, transport__session)
  flush_list; /* sessions with queued messages to write at
                 the end of this service turn (batched:
                 one write for many small messages) */
  lws_sorted_usec_list_t flush_sul;
  bool flush_sul_armed;
  uint8_t *batch;         /* LWS_PRE + TRANSPORT__BATCH_BYTES: frames of several messages */
  uint8_t mask_pool[256]; /* random bytes for the client's masking keys */
  size_t mask_left;
  transport__timer_t *timers; /* utlist DL, newest first */
  lws_sorted_usec_list_t deadline_sul;
  uint64_t deadline_at; /* 0 = not scheduled */
  dfnet_envelope_t rx_env;
};

/* lws's per-connection data of our protocols. */
typedef struct transport__pss {
  transport__session_t *s;
  transport__peer_t peer; /* server side: from the upgrade check (or an HTTP request's) */
  bool checked;
  transport__http_t *h; /* the HTTP request of this connection being answered, or NULL */
  bool http_peer_ok;    /* h's peer presented a certificate that passed (peer) */
} transport__pss_t;

/* ---- Small helpers (every file) --------------------------------------------------------- */

/* t->mu held: the session with that id, or NULL. */
static inline transport__session_t *transport__session_find_locked(dfnet_transport_t *t,
                                                                   dfnet_session_id_t id) {
  for (size_t i = 0; i < t->n_sessions; i++)
    if (t->sessions[i]->id == id)
      return t->sessions[i];
  return NULL;
}

/* Any thread: wake the service thread (lws_cancel_service). */
static inline void transport__wake(dfnet_transport_t *t) { lws_cancel_service(t->ctx); }

/* Wake the service thread unless a wake-up is already on its way (the work was put in
 * place under t->mu before this: the drain that clears the flag looks after it). */
static inline void transport__wake_once(dfnet_transport_t *t) {
  if (!atomic_exchange(&t->wake_pending, true))
    lws_cancel_service(t->ctx);
}

/* ---- transport_loop.c ------------------------------------------------------------------ */

/* Any thread: hand w to the service thread, which runs it in the inbox drain of its next
 * turn and frees it (takes ownership). Takes t->mu; wakes the service thread once. */
void transport__inbox_push(dfnet_transport_t *t, transport__work_t *w);

/* ---- transport_timer.c ----------------------------------------------------------------- */

/* Service thread: arm every timer of `list` (taken from t->inbox_timers; takes ownership:
 * each is freed when it fires or is cancelled). */
void transport__timer_arm_all(dfnet_transport_t *t, transport__timer_t *list);

/* Service thread: cancel armed timer `id` (it never fires). Returns whether it was armed. */
bool transport__timer_cancel_here(dfnet_transport_t *t, dfnet_timer_id_t id);

/* dfnet_transport_destroy, the service thread gone: free every timer, armed or still in the
 * inbox, without calling it. */
void transport__timers_free(dfnet_transport_t *t);

/* ---- transport_endpoint.c -------------------------------------------------------------- */

/* Free ep and the strings it owns. NULL is a no-op. */
void transport__endpoint_free(transport__endpoint_t *ep);

/* Service thread: an attempt of a client endpoint failed. Logs it (a warning for the first
 * attempt after a session or start, debug for the retries) and tells the endpoint's user
 * (on_connect_error, during the call).
 * lws_text: lws's description of the failure, or NULL when lws could not start one. */
void transport__client_connect_error(transport__endpoint_t *ep, const char *lws_text);

/* Service thread: connect ep again after its backoff delay (not when a retry is already
 * scheduled or the transport shuts down or is destroyed). */
void transport__client_schedule_retry(transport__endpoint_t *ep);

/* Service thread: ep's connection is up: its backoff starts over. */
void transport__client_connected(transport__endpoint_t *ep);

/* Service thread, or before it starts: have the server endpoint ep (its vhost made) issue
 * and accept TLS session tickets (RFC 5077) whose keys live in the file `path` (loaded, or
 * made and written 0600 when missing), rotated every rotate_secs (0 = the default), the
 * previous key still accepted. ep->tickets is set even on error (freed with ep). Errors
 * (logged): INVALID_ARGUMENT (the file is not a ticket key file), the errno map of the
 * file's read or write, INTERNAL (mbedTLS or lws refused). transport_tickets.c */
dfnet_status_t transport__tickets_enable(transport__endpoint_t *ep, const char *path,
                                         uint32_t rotate_secs);

/* Client endpoints' reconnect backoff, full jitter (transport_backoff.c; issue 23 item 5).
 * init: cfg's base, multiplier and cap (0 = the defaults of lib/transport.h), a generator
 * seeded from getrandom(2). next_delay_ms: the wait before the next attempt, uniform in
 * [0, min(cap, base x multiplier^n)) for the n-th since the last reset, in milliseconds.
 * reset: a session opened, the next wait starts from base again. Service thread. */
void transport__backoff_init(transport__endpoint_t *ep, const dfnet_client_config_t *cfg);
double transport__backoff_next_delay_ms(transport__endpoint_t *ep);
void transport__backoff_reset(transport__endpoint_t *ep);

/* Free tk (NULL: nothing), wiping its keys. After the lws context is gone. */
void transport__tickets_free(transport__tickets_t *tk);

/* Service thread (shutdown): no client endpoint of t connects again. */
void transport__clients_stop(dfnet_transport_t *t);

/* ---- transport_session.c --------------------------------------------------------------- */

/* Service thread: a websocket is up and its peer checked (peer, subprotocol: copied): make
 * it a session, start its keepalive and certificate-expiry timers and call
 * on_session_open (during the call). Returns the session (owned by t; freed by
 * transport__session_finalize), or NULL when out of memory (the caller closes the connection). */
transport__session_t *transport__session_open(transport__endpoint_t *ep, struct lws *wsi,
                                              const transport__peer_t *peer,
                                              const char *subprotocol);

/* Service thread: the connection of s is gone. Completes everything during the call (its
 * pending requests' on_reply, then on_session_closed) and frees s. lws_reason: what lws
 * said, used when no reason of ours or the peer's is known. */
void transport__session_finalize(transport__session_t *s, const char *lws_reason);

/* Service thread: drop the connection now; on_session_closed gets reason (msg is copied). */
void transport__session_kill(transport__session_t *s, dfnet_status_t reason, const char *msg);

/* dfnet_transport_destroy, after lws is gone: free sessions lws did not report closed
 * (none expected), completing their pending requests CANCELLED. */
void transport__sessions_free(dfnet_transport_t *t);

/* The peer address of wsi's socket, "192.0.2.7:50312" or "[::1]:50312" ("?" when unknown),
 * into out[0..cap). */
void transport__peer_address(struct lws *wsi, char *out, size_t cap);

/* Service thread: a warning about something the peer did, rate-limited per kind (a static
 * string; log_limit.h): a flood of bad frames writes a line per 10 s, not one per frame. */
void transport__peer_warn(transport__session_t *s, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- transport_http.c ------------------------------------------------------------------ */

/* Service thread, LWS_CALLBACK_HTTP on a server endpoint with on_http: a request's headers
 * are in. peer: its verified client certificate, or NULL (plain endpoint, none presented,
 * or refused: logged by the caller). A GET or HEAD goes to on_http now, a POST once its body
 * is in. Returns what the lws callback returns (0, or -1 to close). */
int transport__http_request(struct lws *wsi, transport__endpoint_t *ep, transport__pss_t *pss,
                            const transport__peer_t *peer);
/* LWS_CALLBACK_HTTP_BODY (a piece of the body) and _BODY_COMPLETION. */
int transport__http_body(transport__pss_t *pss, const void *in, size_t len);
int transport__http_body_done(transport__pss_t *pss);
/* LWS_CALLBACK_HTTP_WRITEABLE: write what the request's answer has ready. */
int transport__http_writable(transport__pss_t *pss);
/* The connection closed (CLOSED_HTTP, WSI_DESTROY): free its request, on_http_gone. */
void transport__http_closed(transport__pss_t *pss);
/* Service thread (inbox): the request with that id has something to write. */
void transport__http_kick(dfnet_transport_t *t, dfnet_http_id_t id);

/* ---- transport_request.c --------------------------------------------------------------- */

/* Service thread: p's last completion: calls on_reply(status, NULL, last), then frees p
 * (p is no longer on any list). */
void transport__pending_complete(transport__pending_t *p, dfnet_status_t status);

/* Service thread: (re)arm the deadline timer for the earliest deadline. Takes t->mu. */
void transport__deadline_rearm(dfnet_transport_t *t);

/* Service thread: env (decode status st: OK or UNIMPLEMENTED) carries an id of ours. When a
 * request of s is pending with that id, hands env to it and returns true: its is_last and
 * on_reply run during the call (not under t->mu), and it completes with its last reply
 * (UNIMPLEMENTED for a reply of an unknown kind). Else returns false and env is the
 * caller's to handle. */
bool transport__request_reply(transport__session_t *s, const dfnet_envelope_t *env,
                              dfnet_status_t st);

/* Service thread: end pending request `id` of s with status (its on_reply runs during the
 * call), if it is still pending. */
void transport__request_end(transport__session_t *s, uint64_t id, dfnet_status_t status);

/* Service thread: dfnet_transport_request_cancel's work (see there): the request's on_reply
 * runs CANCELLED during the call. NOT_FOUND when the request is no longer pending. */
dfnet_status_t transport__request_cancel_here(dfnet_transport_t *t, dfnet_session_id_t sid,
                                              uint64_t id, bool notify_peer, const char *reason);

/* ---- transport_send.c ------------------------------------------------------------------ */

/* Any thread: encode env into a new message for the send queue (*out: the caller's until
 * transport__enqueue takes it; free() it otherwise). Errors: INVALID_ARGUMENT (cannot be
 * encoded, or longer than max bytes: logged), INTERNAL (memory). */
dfnet_status_t transport__encode_out(dfnet_envelope_t *env, uint32_t max, transport__outmsg_t **out)
    __attribute__((warn_unused_result));

/* Any thread: queue m (and register p, its id set, when not NULL) on session `id`. Takes
 * ownership of m and p on OK; on error the caller still owns both. May block (flags
 * DFNET_SEND_WAIT, not on the service thread) while the queue is over its mark. Errors:
 * NOT_FOUND (no open session), RESOURCE_EXHAUSTED (over the mark). */
dfnet_status_t transport__enqueue(dfnet_transport_t *t, dfnet_session_id_t id,
                                  transport__outmsg_t *m, transport__pending_t *p, unsigned flags)
    __attribute__((warn_unused_result));

/* Service thread: s has queued messages (the last one len bytes) to write by the end of
 * this service turn, or during the call when enough are held back (limits.batch_messages);
 * a write that fails kills the session (transport__session_kill). */
void transport__flush_mark(transport__session_t *s, size_t len);

/* Service thread: write every session marked by transport__flush_mark. Called at the end
 * of each service turn (dfnet_transport_run). */
void transport__flush_all(dfnet_transport_t *t);

/* Service thread: s is going away: not to be flushed. */
void transport__flush_unlink(transport__session_t *s);

/* Service thread: the socket of s can take more: a keepalive ping when due, then what is
 * queued; the close frame once a requested close has nothing left to send. Returns -1 to
 * close the connection. */
int transport__on_writable(transport__session_t *s, struct lws *wsi);

/* ---- transport_receive.c --------------------------------------------------------------- */

/* Service thread: a piece (in[0..len), borrowed) of a websocket message of s. A whole
 * message is dispatched during the call (on_envelope, or its request's on_reply). Returns
 * -1 to close. */
int transport__on_receive(transport__session_t *s, struct lws *wsi, const uint8_t *in, size_t len);

/* ---- transport_lws.c ------------------------------------------------------------------- */

/* The callback of every endpoint's lws protocols (service thread; lws's contract: 0 to
 * go on, nonzero to close the connection or refuse it). */
int transport__lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#pragma GCC visibility pop

#endif /* DFNET_LIB_TRANSPORT_INTERNAL_H */
