/* dfnet's transport: envelopes over mutually authenticated TLS websockets
 * (docs/design.md "The wire" and "Security"; issue 3). libwebsockets 4.1 on mbedTLS 2.28.
 *
 * Model
 *   A dfnet_transport_t is one lws context and the one thread that services it (the
 *   "service thread": the thread inside dfnet_transport_run(), or the one started by
 *   dfnet_transport_start()). It holds endpoints: servers (dfnet_transport_listen) and
 *   clients that keep one connection up and reconnect with backoff
 *   (dfnet_transport_connect). Each established, authenticated connection is a session,
 *   named by a dfnet_session_id_t (never 0, never reused within a transport) — never by a
 *   pointer (docs/style.md 7). One dfnet.v1.Envelope per websocket binary message.
 *
 * Threads
 *   Every callback runs on the service thread, never under a lock of ours, and may call
 *   any function of this header (including closing the session it is told about).
 *   Functions marked "any thread" may be called from any thread at any time between
 *   create and destroy; they hand their work to the service thread through a queue and
 *   lws_cancel_service() (the one lws call that is thread-safe in 4.1). Functions marked
 *   "service thread" must be called from a callback (or before the service thread starts).
 *
 * Trust (enforced here, not left to lws: see scripts/patches/libwebsockets/)
 *   TLS 1.2 only; ECDHE-ECDSA with ChaCha20-Poly1305 (preferred: about twice as fast as
 *   mbedTLS 2.28's AES-GCM) or AES-GCM; P-256 first. Mutual TLS
 *   always but on DFNET_SUBPROTOCOL_ENROLL (below): a server refuses a peer with no
 *   certificate, one not signed by its CA, expired
 *   or not yet valid, a certificate whose role (subject OU) does not fit the subprotocol
 *   (DFNET_SUBPROTOCOL_HOST: "host" only; DFNET_SUBPROTOCOL_CLIENT: "admin", "operator",
 *   "viewer"), a certificate its owner revoked (dfnet_server_config_t.is_revoked, asked at
 *   every handshake, full or resumed), plaintext HTTP/ws on the TLS port and anything that
 *   is not a websocket upgrade. A client refuses a server certificate not signed by its
 *   CA, whose name does not match (DNS or IP SAN, or CN) or whose role is not the expected
 *   one ("manager" by default). Every refusal is logged once (subsystem "transport",
 *   subject = peer address or name) with its reason.
 *
 * Envelope ids
 *   dfnet_transport_request() assigns ids: odd on the connecting side's requests, even on
 *   the accepting side's, so that the two directions' id spaces never meet. An incoming
 *   envelope whose id names a pending request of ours is that request's reply; every
 *   other envelope goes to on_envelope (a peer's request, its reply to a request of ours
 *   that already completed is dropped with a debug log). Replies to a peer's request
 *   carry the peer's id (the caller sets pb.id and uses dfnet_transport_send()).
 *
 * Bounds
 *   Receive: a message over max_message_bytes is discarded as it arrives and answered with
 *   Status RESOURCE_EXHAUSTED carrying its id (read from its first bytes); the session
 *   carries on. Send: each session has a send queue bounded by send_hwm_bytes; a send over
 *   it is refused with RESOURCE_EXHAUSTED (or waits, with DFNET_SEND_WAIT, on threads
 *   other than the service thread). Sends on the service thread are written at the end
 *   of its current turn (or once 4 messages or 4 KiB are waiting), and small messages
 *   queued together go out in one write (still one websocket message each, in order);
 *   sends from other threads wake the service thread once per batch of work, not once
 *   per message. Large messages go out in fragments of at most
 *   fragment_bytes, one lws_write per writable callback, interleaved with nothing else
 *   (websocket fragments of one message cannot interleave with another message).
 *   Keepalive: a ping every keepalive_ms of silence; a peer silent for 3 intervals is
 *   closed (UNAVAILABLE). TCP_NODELAY on every socket.
 *   An envelope of a kind this build does not know (decode UNIMPLEMENTED) is answered with
 *   Status UNIMPLEMENTED carrying its id; a malformed one is dropped with a logged reason.
 *   Neither reaches on_envelope; the session carries on.
 */
#ifndef DFNET_LIB_TRANSPORT_H
#define DFNET_LIB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "dfnet/v1/session.pb.h"
#include "lib/envelope.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DFNET_SUBPROTOCOL_HOST "dfnet.host.v1"
#define DFNET_SUBPROTOCOL_CLIENT "dfnet.client.v1"
/* Enrollment (issue 23 item 2; lib/transport_enroll.c): the one subprotocol a peer may open
 * without a client certificate (server-only TLS: the server asks for a certificate, does not
 * require one on this subprotocol, and every other one still refuses a peer without a valid
 * certificate). Its sessions have no peer name and role ROLE_UNSPECIFIED; the server's
 * owner allows them one Enroll. The client holds no certificate and no CA file: it pins the
 * CA (dfnet_client_config_t.ca_pin). The server therefore presents its CA after its own
 * certificate in every TLS chain; the client finds the CA of its pin there and verifies the
 * server's certificate against it (and its role, manager, and name) when the server
 * answered the upgrade, before the session opens, so nothing of the client's own goes to a
 * server that fails the pin. */
#define DFNET_SUBPROTOCOL_ENROLL "dfnet.enroll.v1"

/* Defaults of dfnet_transport_limits_t (0 in a field means the default). */
#define DFNET_TRANSPORT_MAX_MESSAGE_DEFAULT DFNET_FRAME_MAX_DEFAULT /* 4 MiB */
#define DFNET_TRANSPORT_SEND_HWM_DEFAULT (8u * 1024u * 1024u)       /* 8 MiB */
/* 128 KiB: a 64 KiB payload with its envelope goes out in one write, not two */
#define DFNET_TRANSPORT_FRAGMENT_DEFAULT (128u * 1024u) /* 128 KiB */
#define DFNET_TRANSPORT_KEEPALIVE_MS_DEFAULT 10000u     /* 10 s */
#define DFNET_TRANSPORT_CLOSE_GRACE_MS 500u             /* destroy: wait for clean closes */
#define DFNET_TRANSPORT_BATCH_MESSAGES_DEFAULT 4u
/* dfnet_server_config_t.ticket_rotate_secs: the session ticket key's period (24 h) */
#define DFNET_TRANSPORT_TICKET_ROTATE_SECS_DEFAULT 86400u
/* dfnet_client_config_t's reconnect backoff (full jitter): base, growth, cap */
#define DFNET_TRANSPORT_BACKOFF_BASE_MS_DEFAULT 500u
#define DFNET_TRANSPORT_BACKOFF_MULTIPLIER_DEFAULT 2.0
#define DFNET_TRANSPORT_BACKOFF_CAP_MS_DEFAULT 30000u
/* ... but within this long after a session ended, while the server's address refuses
 * connections (nothing listens: the server is restarting), the window stops growing at
 * DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS: a refused connect costs the server nothing, and
 * the fleet is back within that window of the server listening again. */
#define DFNET_TRANSPORT_BACKOFF_RESTART_PERIOD_MS 60000u
#define DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS 1000u

/* A session: one authenticated connection. 0 is "no session". Never reused. */
typedef uint64_t dfnet_session_id_t;
/* An endpoint (a server or a client) of a transport. 0 is "none". */
typedef uint32_t dfnet_endpoint_id_t;
/* A timer of dfnet_transport_timer_start(). 0 is "none". Never reused. */
typedef uint64_t dfnet_timer_id_t;

typedef struct dfnet_transport dfnet_transport_t;

/* What the transport knows about a session's peer. Strings are owned by the transport and
 * valid until the on_session_closed callback of that session returns (copy to keep). */
typedef struct dfnet_session_info {
  dfnet_session_id_t id;
  dfnet_endpoint_id_t endpoint;
  bool outgoing;            /* we connected (client endpoint) */
  const char *peer_name;    /* verified certificate CN */
  const char *role_name;    /* certificate OU: "host", "admin", "operator", "viewer",
                               "manager" */
  dfnet_v1_Role role;       /* role_name as the wire enum (ROLE_UNSPECIFIED for "manager") */
  const char *subprotocol;  /* DFNET_SUBPROTOCOL_HOST, _CLIENT or _ENROLL (peer_name and
                               role_name "" on an enrollment session's server side) */
  const char *peer_address; /* "192.0.2.7:50312" / "[::1]:50312" */
  bool tls_resumed;         /* the TLS handshake resumed an earlier session of this peer
                               (RFC 5246 7.3: no certificates exchanged again; the peer
                               was checked as usual, from the session's certificate) */
  const char *serial_hex;   /* the peer certificate's serial number, lower-case hex of its
                               DER content octets (as dfnet_pki_cert_info() writes it) */
  int64_t not_after;        /* the peer certificate's notAfter (UTC seconds) */
} dfnet_session_info_t;

/* Longest certificate serial a peer may present, in octets (RFC 5280 §4.1.2.2: 20). */
#define DFNET_TRANSPORT_SERIAL_MAX 20

/* A server's revocation check (issue 23 "Revocation"; docs/architecture.md "Transport and
 * trust"). Called on the service thread for every peer whose certificate passed every other
 * check (our CA, validity, role on the subprotocol), at every handshake, full or resumed (a
 * resumed TLS session carries the certificate of the handshake that made it: the same
 * check runs on it), before its session opens. serial: the certificate's serial number,
 * its DER content octets (len bytes, 1..DFNET_TRANSPORT_SERIAL_MAX; borrowed for the call);
 * cn: its subject CN. Return true to refuse the peer: the upgrade is answered HTTP 403 with
 * "UNAUTHENTICATED: <why>" (the client's on_connect_error gets UNAUTHENTICATED and that
 * reason; its reconnect loop keeps its backoff) and the refusal is logged once. The owner
 * writes why[0..why_cap) (NUL-terminated; "" gives "certificate <serial> of <cn> is
 * revoked"). Must not block: it runs on the loop of every session. */
typedef bool (*dfnet_is_revoked_fn)(void *user, const uint8_t *serial, size_t len, const char *cn,
                                    char *why, size_t why_cap);

/* An endpoint's callbacks. All run on the service thread; all are optional (NULL). */
typedef struct dfnet_transport_callbacks {
  /* A session is established (TLS verified, role checked, websocket open). For a client
   * endpoint this is the (re)connect callback: re-announce your state here. */
  void (*on_session_open)(void *user, const dfnet_session_info_t *info);
  /* An envelope arrived that is not a reply to a pending request of ours. `env` and
   * env->bulk are borrowed: valid during the call only (copy what you keep). */
  void (*on_envelope)(void *user, dfnet_session_id_t session, const dfnet_envelope_t *env);
  /* The session is gone. reason: UNAVAILABLE (peer closed, connection lost, keepalive
   * expired), CANCELLED (closed by dfnet_transport_session_close or destroy), or the
   * status given to dfnet_transport_session_close. Every pending request of the session
   * has completed (UNAVAILABLE/CANCELLED) before this is called. Called exactly once per
   * session whose on_session_open was called, and never for others. */
  void (*on_session_closed)(void *user, dfnet_session_id_t session, dfnet_status_t reason,
                            const char *message);
  /* Client endpoints: an attempt to connect failed (the transport tries again with its
   * backoff all the same). code and message say why in the user's terms: UNAUTHENTICATED
   * (the server's certificate is not from our CA, expired, of the wrong role or name; or
   * the server refused ours), PERMISSION_DENIED (the server refused our role on this
   * subprotocol), UNAVAILABLE (refused, unreachable, unresolvable, timed out, TLS failed).
   * retry_helps is false when only a change of files or configuration can fix it (a
   * program with a user waiting should stop and say so). message is borrowed for the
   * call. Optional. */
  void (*on_connect_error)(void *user, dfnet_status_t code, const char *message, bool retry_helps);
} dfnet_transport_callbacks_t;

/* ---- HTTP requests (issue 24 items 4 and 5; lib/transport_http.c) --------------------
 *
 * Besides websocket upgrades, an endpoint may answer plain HTTP/1.1 requests: a server
 * endpoint (dfnet_server_config_t.on_http: over its TLS, with the client certificate the
 * peer presented, if any: /metrics for Prometheus) and a plain one without TLS
 * (dfnet_transport_listen_http: --metrics-listen, `dfnet ui`). An endpoint without on_http
 * answers every plain HTTP request 403, as before. The transport reads the request line,
 * the headers and a body of at most DFNET_HTTP_BODY_MAX bytes (413 beyond), answers methods
 * other than GET, HEAD and POST 405 itself, then calls on_http once on the service thread.
 * The owner answers at once (fills *resp, returns true) or later from any thread
 * (dfnet_transport_http_respond); a response may also stay open and stream pieces
 * (resp->stream: Server-Sent Events for a browser's live feed). HTTP/1.1 keep-alive works
 * as lws does it; one request is answered at a time per connection. */

/* Names one HTTP request of a transport; 0 is none; never reused. */
typedef uint64_t dfnet_http_id_t;

/* The largest request body the transport reads (64 KiB). */
#define DFNET_HTTP_BODY_MAX (64u * 1024u)
/* The most a streaming response may have queued and unwritten (1 MiB): past it
 * dfnet_transport_http_stream_write answers RESOURCE_EXHAUSTED. */
#define DFNET_HTTP_STREAM_HWM (1024u * 1024u)

/* One request. Every string and the body are owned by the transport and valid during the
 * on_http call only (copy what you keep). */
typedef struct dfnet_http_request {
  dfnet_http_id_t id;
  dfnet_endpoint_id_t endpoint;
  const char *method;       /* "GET", "HEAD" or "POST" (HEAD: the body given is not sent) */
  const char *path;         /* "/metrics": the URI before '?' (%XX decoded by lws) */
  const char *query;        /* the arguments after '?', each %XX-decoded by lws, joined with
                               '&' ("a=1&b=2"); "" when none */
  const char *peer_address; /* "127.0.0.1:50312" */
  /* TLS endpoints: the client certificate the peer presented, verified against the CA,
   * validity and revocation (dfnet_server_config_t.is_revoked) as a websocket peer's is:
   * its CN and its role (OU). A peer that presented none, or one that failed a check (the
   * reason is logged once), has peer_name NULL and role ROLE_UNSPECIFIED: the owner decides
   * (/metrics answers it 401). Plain endpoints: always NULL / ROLE_UNSPECIFIED. */
  const char *peer_name;
  dfnet_v1_Role role;        /* HOST, ADMIN, OPERATOR or VIEWER (the OU), else UNSPECIFIED */
  const char *host;          /* the Host header, "" when none (a proxy on loopback checks it
                                against DNS rebinding) */
  const char *accept;        /* the Accept header, "" when none */
  const char *cookie;        /* the Cookie header, "" when none */
  const char *authorization; /* the Authorization header, "" when none */
  const uint8_t *body;       /* POST body, body_len bytes (NULL when none) */
  size_t body_len;
} dfnet_http_request_t;

/* One response. */
typedef struct dfnet_http_response {
  unsigned status;          /* 200, 400, 401, 403, 404, 500, 503, ... */
  const char *content_type; /* copied; NULL = "text/plain; charset=utf-8" */
  const char *headers;      /* more header lines, copied: "Cache-Control: no-store\r\n..."
                               (each ending in CRLF), or NULL */
  char *body;               /* malloc(3)ed; the transport owns it from the call on (frees it
                               after writing it, or at once on an error): the caller never
                               frees it. NULL with body_len 0 for none */
  size_t body_len;
  bool stream; /* keep the response open: the headers go out now without a
                  Content-Length (the connection closes at the end), body (if
                  any) is the first piece, then dfnet_transport_http_stream_write
                  pieces until dfnet_transport_http_end */
} dfnet_http_response_t;

/* on_http: answer a request. Return true when *resp is filled (the answer goes out now);
 * false to answer later with dfnet_transport_http_respond(req->id). Service thread. Must
 * not block. */
typedef bool (*dfnet_http_fn)(void *user, const dfnet_http_request_t *req,
                              dfnet_http_response_t *resp);
/* A request the owner has not answered yet, or a stream not ended, is gone (its connection
 * closed, the answer's timeout of 120 s ran out, the transport is being destroyed): stop
 * writing to it (later calls with its id answer NOT_FOUND). Called once per such request,
 * never for one answered at once without stream. lws does not read a connection while it
 * answers a request on it, so a peer that went away is seen when the next piece is written:
 * an owner whose stream is quiet should write an SSE comment line (": ping\n\n") every few
 * seconds. Service thread. Optional. */
typedef void (*dfnet_http_gone_fn)(void *user, dfnet_http_id_t id);

/* Per-session bounds (0 in a field = its default). */
typedef struct dfnet_transport_limits {
  uint32_t max_message_bytes; /* receive and send bound of one envelope (4 MiB) */
  uint32_t send_hwm_bytes;    /* send queue bound per session (8 MiB), counting each
                                 message's memory (envelope, header, allocation); a
                                 message larger than the bound is accepted only into an
                                 empty queue; a peer whose queue reaches it is not read
                                 until the queue is down to half */
  uint32_t fragment_bytes;    /* largest websocket fragment written at once (128 KiB) */
  uint32_t keepalive_ms;      /* ping after this much silence; closed after 3x (10 s) */
  uint32_t batch_messages;    /* messages sent on the service thread during one turn of
                                 its loop go out together at its end, but once this many
                                 (or that many KiB) wait, those are written at once so
                                 that the peer can start on them (4). A relay that
                                 forwards whole batches (the manager, the agent) spends
                                 fewer writes per message with more (16). */
} dfnet_transport_limits_t;

/* A server endpoint: listens on one address:port, both subprotocols. */
typedef struct dfnet_server_config {
  const char *bind_address; /* "127.0.0.1", "0.0.0.0", "::"; NULL = all interfaces */
  uint16_t port;            /* 0 = an ephemeral port (read it from *port_out) */
  const char *cert_file;    /* PEM: our certificate (ECDSA P-256, role "manager") */
  const char *key_file;     /* PEM: its private key */
  const char *ca_file;      /* PEM: the CA that signed every peer we accept */
  dfnet_transport_limits_t limits;
  dfnet_transport_callbacks_t callbacks;
  dfnet_is_revoked_fn is_revoked; /* NULL: no certificate of our CA is revoked */
  void *user;                     /* passed to every callback and to is_revoked */
  /* TLS session tickets (RFC 5077; issue 23 item 5): the file holding their two keys (made,
   * mode 0600, when missing; replaced atomically at each rotation), so that peers resume
   * across a restart of this process. NULL = no tickets (session IDs only, forgotten at a
   * restart). A ticket is accepted for ticket_rotate_secs after its session's full
   * handshake; the active key is replaced every ticket_rotate_secs and the previous one
   * still opens tickets (0 = DFNET_TRANSPORT_TICKET_ROTATE_SECS_DEFAULT). A file that
   * cannot be read or written is logged and the endpoint listens without tickets. */
  const char *ticket_key_file;
  uint32_t ticket_rotate_secs;
  /* Plain HTTP requests over this endpoint's TLS (see "HTTP requests" above): NULL = every
   * one is answered 403 (not a websocket upgrade). on_http_gone is optional. */
  dfnet_http_fn on_http;
  dfnet_http_gone_fn on_http_gone;
} dfnet_server_config_t;

/* A client endpoint: keeps one session to a server, reconnecting with backoff. */
typedef struct dfnet_client_config {
  const char *url;         /* "wss://host:port[/path]" (only wss) */
  const char *subprotocol; /* DFNET_SUBPROTOCOL_HOST, _CLIENT or _ENROLL */
  const char *cert_file;   /* PEM: our certificate (NULL with DFNET_SUBPROTOCOL_ENROLL) */
  const char *key_file;    /* PEM: its private key (may be cert_file if it holds both) */
  const char *ca_file;     /* PEM: the CA that signed the server's certificate (NULL with
                              DFNET_SUBPROTOCOL_ENROLL) */
  const uint8_t *ca_pin;   /* DFNET_SUBPROTOCOL_ENROLL only, required: 32 bytes, the SHA-256
                              of the server CA's SubjectPublicKeyInfo DER (copied) */
  const char *server_name; /* name the server certificate must carry (DNS/IP SAN or CN);
                              NULL = the URL's host */
  const char *server_role; /* OU the server certificate must carry; NULL = "manager",
                              "" = any role */
  /* Reconnect backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff
   * and Jitter", 2015; issue 23 item 5): retry n (0 for the first after a loss or a failed
   * attempt) waits a uniform random time in [0, min(backoff_max_ms, backoff_initial_ms x
   * backoff_multiplier^n)], drawn from a generator seeded per endpoint by getrandom(2), so
   * that a fleet dropped at once comes back spread over the whole window instead of in
   * waves. Reset after a session opens. 0 = defaults: base 500 ms, x2, cap 30000 ms.
   * Within DFNET_TRANSPORT_BACKOFF_RESTART_PERIOD_MS of losing a session, an attempt
   * refused at the TCP level (nothing listens) caps the window at
   * DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS.
   * backoff_jitter_pct is no longer used (full jitter has no width to set); kept so that
   * callers that set it still build. */
  uint32_t backoff_initial_ms;
  double backoff_multiplier;
  uint32_t backoff_max_ms;
  uint32_t backoff_jitter_pct;
  dfnet_transport_limits_t limits;
  dfnet_transport_callbacks_t callbacks;
  void *user;
} dfnet_client_config_t;

/* Reload a client endpoint's certificate and key from its files (cert_file, key_file of its
 * dfnet_client_config_t), which the owner replaced (renewal, issue 23 item 3): the next
 * connection presents them and resumes no TLS session of the old ones; the session open
 * now carries on. Errors: INVALID_ARGUMENT (the files do not load or do not belong
 * together: logged; the old identity stays), NOT_FOUND (no such client endpoint, or one of
 * DFNET_SUBPROTOCOL_ENROLL), FAILED_PRECONDITION (another thread while the service thread
 * runs), INTERNAL. Service thread, or before it runs. */
dfnet_status_t dfnet_transport_client_reload_identity(dfnet_transport_t *t,
                                                      dfnet_endpoint_id_t endpoint);

/* ---- Lifecycle ------------------------------------------------------------------- */

/* Create a transport (an lws context without endpoints). Not yet serviced: add endpoints,
 * then dfnet_transport_run() or dfnet_transport_start().
 * On OK *out is a new transport the caller frees with dfnet_transport_destroy().
 * Errors: INVALID_ARGUMENT (out NULL), INTERNAL (lws context or memory). Any thread. */
dfnet_status_t dfnet_transport_create(dfnet_transport_t **out);

/* Add a server endpoint. Strings are copied/read during the call. On OK, *endpoint_out
 * (may be NULL) names it and *port_out (may be NULL) is the port it listens on (useful
 * with port 0). Errors: INVALID_ARGUMENT (missing file name, bad limits, a certificate or
 * key that does not load or a key that is not the certificate's: logged, naming the file),
 * NOT_FOUND (a file missing), UNAVAILABLE (the address cannot be bound: "address in use"
 * or the errno text is logged), INTERNAL. Service thread, or before the service thread
 * starts. */
dfnet_status_t dfnet_transport_listen(dfnet_transport_t *t, const dfnet_server_config_t *cfg,
                                      dfnet_endpoint_id_t *endpoint_out, uint16_t *port_out);

/* Add a client endpoint: it connects at once (once serviced) and after every loss of its
 * session, with backoff. Strings are copied. Failures to connect are logged (once per
 * attempt) and retried; they never end the endpoint. Errors: INVALID_ARGUMENT (bad URL,
 * not wss, bad subprotocol, missing file name), NOT_FOUND (a file missing), INTERNAL.
 * Service thread, or before the service thread starts. */
dfnet_status_t dfnet_transport_connect(dfnet_transport_t *t, const dfnet_client_config_t *cfg,
                                       dfnet_endpoint_id_t *endpoint_out);

/* Service the transport on the calling thread until dfnet_transport_stop(). The calling
 * thread becomes the service thread. Returns OK after stop, FAILED_PRECONDITION when
 * already serviced. */
dfnet_status_t dfnet_transport_run(dfnet_transport_t *t);

/* Start a thread that runs dfnet_transport_run(). Errors: FAILED_PRECONDITION (already
 * serviced), INTERNAL (pthread_create). Any thread (not the service thread). */
dfnet_status_t dfnet_transport_start(dfnet_transport_t *t);

/* Ask the service thread to leave dfnet_transport_run() (after the current callback).
 * Sessions stay open until destroy. Any thread; idempotent. */
void dfnet_transport_stop(dfnet_transport_t *t);

/* Close cleanly, then stop: every open session gets a websocket close (RFC 6455 §7, status
 * 1000) once its queued messages are written, and its pending requests end CANCELLED
 * (on_session_closed: CANCELLED, "transport shutting down"); client endpoints stop
 * reconnecting and listeners refuse new connections. The loop stops (run() returns, the
 * thread of start() ends) when no session is left or after grace_ms, whichever is first.
 * The peer sees a clean close, not a lost connection. Any thread; a second call, or one
 * after dfnet_transport_stop(), does nothing. */
void dfnet_transport_shutdown(dfnet_transport_t *t, uint32_t grace_ms);

/* Stop servicing and free everything. When the thread of dfnet_transport_start() still
 * runs, closes cleanly first (dfnet_transport_shutdown with DFNET_TRANSPORT_CLOSE_GRACE_MS)
 * and joins it. Then fails every pending request with CANCELLED, calls
 * on_session_closed(CANCELLED) for every session still open, closes every socket. NULL is a
 * no-op. Call it from a thread that is not the service thread, after run() has returned
 * (or from the thread that called start()). */
void dfnet_transport_destroy(dfnet_transport_t *t);

/* Is the calling thread the service thread? Any thread. */
bool dfnet_transport_on_service_thread(const dfnet_transport_t *t);

/* ---- Sessions ---------------------------------------------------------------------- */

/* The current session of a client endpoint, or 0 when it is not connected. Any thread
 * (the answer may be stale by the time it is used: sends to a closed session fail
 * UNAVAILABLE). */
dfnet_session_id_t dfnet_transport_client_session(dfnet_transport_t *t,
                                                  dfnet_endpoint_id_t endpoint);

/* Wait up to timeout_ms for a client endpoint to have a session; *out gets its id.
 * Errors: DEADLINE_EXCEEDED, NOT_FOUND (no such client endpoint), FAILED_PRECONDITION
 * (called on the service thread). Any thread but the service thread. */
dfnet_status_t dfnet_transport_wait_session(dfnet_transport_t *t, dfnet_endpoint_id_t endpoint,
                                            uint32_t timeout_ms, dfnet_session_id_t *out);

/* Copy of a session's info: strings are copied into `buf` (cap bytes); *out's pointers
 * point into buf. Errors: NOT_FOUND (no open session with that id), RESOURCE_EXHAUSTED
 * (buf too small; 512 bytes always suffice). Any thread. */
dfnet_status_t dfnet_transport_session_info(dfnet_transport_t *t, dfnet_session_id_t session,
                                            dfnet_session_info_t *out, char *buf, size_t cap);

/* Close a session: what is already queued is sent, then the websocket is closed with a
 * close frame, then on_session_closed(reason, message) runs. Pending requests complete
 * with CANCELLED. Errors: NOT_FOUND (no such open session: closing twice is harmless).
 * message is copied (cut at 123 bytes for the close frame). Any thread. */
dfnet_status_t dfnet_transport_session_close(dfnet_transport_t *t, dfnet_session_id_t session,
                                             dfnet_status_t reason, const char *message);

/* Counters of one session (for monitoring and tests). */
typedef struct dfnet_session_stats {
  uint64_t queued_bytes;      /* memory the send queue holds now (messages and their
                                 headers: what send_hwm_bytes bounds) */
  uint64_t queued_bytes_peak; /* the most it ever held */
  uint64_t sent_messages;     /* envelopes fully handed to TLS */
  uint64_t received_messages; /* envelopes received (oversized ones included) */
  uint32_t pending_requests;  /* requests waiting for their (last) reply */
  uint32_t reading_pauses;    /* times we stopped reading the peer: our send queue to it
                                 reached send_hwm_bytes (it does not read) */
  uint64_t writes;            /* writes handed to TLS (one TLS record up to 16 KiB each):
                                 small messages queued together share one write, as
                                 consecutive websocket messages, so this can be fewer
                                 than sent_messages */
} dfnet_session_stats_t;

/* Fill *out. Errors: NOT_FOUND (no open session). Any thread. */
dfnet_status_t dfnet_transport_session_stats(dfnet_transport_t *t, dfnet_session_id_t session,
                                             dfnet_session_stats_t *out);

/* ---- Sending ------------------------------------------------------------------------ */

enum {
  /* Wait (block) while the session's send queue is over its high-water mark instead of
   * failing RESOURCE_EXHAUSTED. Ignored (never waits) on the service thread. */
  DFNET_SEND_WAIT = 1u << 0,
  /* Queue even when the session's send queue is over its high-water mark: for the small
   * message that ends a call (its final status), which must reach the caller however slow
   * it reads. Only messages of up to DFNET_SEND_PAST_HWM_MAX bytes may pass; a larger one
   * is refused RESOURCE_EXHAUSTED as usual. The queue then grows by at most that much per
   * call the peer has in flight, all of which it sent itself. */
  DFNET_SEND_PAST_HWM = 1u << 1,
};

/* The largest encoded message DFNET_SEND_PAST_HWM lets past the high-water mark. */
#define DFNET_SEND_PAST_HWM_MAX 4096u

/* Send one envelope on a session as it is: env->pb.id is not touched (a reply carries
 * the id of the request it answers; an event carries 0). The envelope is encoded during
 * the call (env and env->bulk are only borrowed). Errors: NOT_FOUND (no open session
 * with that id), INVALID_ARGUMENT (cannot be encoded, or larger than the session's
 * max_message_bytes), RESOURCE_EXHAUSTED (send queue over its high-water mark),
 * INTERNAL (memory). Any thread. */
dfnet_status_t dfnet_transport_send(dfnet_transport_t *t, dfnet_session_id_t session,
                                    dfnet_envelope_t *env, unsigned flags);

/* Send a Status{code, message} envelope with the given id (a reply to a peer's request).
 * Same errors as dfnet_transport_send. Any thread. */
dfnet_status_t dfnet_transport_send_status(dfnet_transport_t *t, dfnet_session_id_t session,
                                           uint64_t id, dfnet_status_t code, const char *message);

/* ---- Requests with replies --------------------------------------------------------- */

/* A request's completion. Called on the service thread.
 *   status OK, reply != NULL: a reply envelope (borrowed for the call, bulk included);
 *       `last` says whether it is the final one (a unary request's only reply is last).
 *   status != OK, reply == NULL, last == true: DEADLINE_EXCEEDED (deadline passed),
 *       CANCELLED (dfnet_transport_request_cancel, session closed by us, or transport
 *       destroyed), UNAVAILABLE (connection lost), UNIMPLEMENTED (the peer's reply was of
 *       a kind this build does not know).
 * The call with last == true happens exactly once per successfully started request, and
 * nothing happens after it. A Status reply from the peer is delivered as a reply (status
 * OK, reply->pb.which_msg == dfnet_v1_Envelope_status_tag): the peer's code is in it. */
typedef void (*dfnet_reply_fn)(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                               bool last);

/* Decides whether a reply of a streaming request is its last one. */
typedef bool (*dfnet_reply_is_last_fn)(void *user, const dfnet_envelope_t *reply);

typedef struct dfnet_request_opts {
  uint32_t deadline_ms;           /* from now until DEADLINE_EXCEEDED; 0 = no deadline */
  bool streaming;                 /* several replies: the last is a Status, a Reply with
                                     end_of_stream, or what is_last says */
  dfnet_reply_is_last_fn is_last; /* streaming only; NULL = the rule above; called on
                                     the service thread with `user` */
  dfnet_reply_fn on_reply;        /* required */
  void *user;
} dfnet_request_opts_t;

/* Send a request and track its replies. env->pb.id is set to a fresh id (see "Envelope
 * ids"); env is encoded during the call and only borrowed. On OK, *id_out (may be NULL)
 * is the id, and opts->on_reply will be called as described at dfnet_reply_fn — never
 * during this call, even on the service thread. On error the callback is never called.
 * Errors: NOT_FOUND (no open session), INVALID_ARGUMENT (no on_reply, env not encodable
 * or over max_message_bytes), RESOURCE_EXHAUSTED (send queue over its high-water mark, and
 * DFNET_SEND_WAIT not given or on the service thread), INTERNAL. Any thread. */
dfnet_status_t dfnet_transport_request(dfnet_transport_t *t, dfnet_session_id_t session,
                                       dfnet_envelope_t *env, const dfnet_request_opts_t *opts,
                                       unsigned flags, uint64_t *id_out);

/* Cancel a pending request: its callback fires CANCELLED (on the service thread, soon
 * after — during this call when called on the service thread) unless it already
 * completed. With notify_peer, a dfnet.v1.Cancel{reason} envelope with the request's id
 * is sent to the peer. Errors: NOT_FOUND (no such pending request: already completed;
 * cancelling twice is harmless). reason is copied. Any thread; from another thread the
 * request may still complete otherwise before the cancel is handled (exactly one
 * completion either way). */
dfnet_status_t dfnet_transport_request_cancel(dfnet_transport_t *t, dfnet_session_id_t session,
                                              uint64_t id, bool notify_peer, const char *reason);

/* Blocking unary request for threads other than the service thread: send `req`, wait for
 * its one reply (up to deadline_ms; 0 = wait forever). On OK, *reply holds the reply; its
 * bulk bytes (if any) are in a buffer *bulk_storage that the caller frees with free()
 * (NULL when there is no bulk). The reply may itself be a Status carrying the peer's
 * error: look at reply->pb.which_msg. Errors: those of dfnet_transport_request, plus
 * DEADLINE_EXCEEDED, UNAVAILABLE, CANCELLED, UNIMPLEMENTED as for dfnet_reply_fn, and
 * FAILED_PRECONDITION when called on the service thread. */
dfnet_status_t dfnet_transport_request_sync(dfnet_transport_t *t, dfnet_session_id_t session,
                                            dfnet_envelope_t *req, uint32_t deadline_ms,
                                            dfnet_envelope_t *reply, void **bulk_storage);

/* ---- HTTP endpoints and responses (types above: "HTTP requests") ---------------------- */

/* A plain HTTP endpoint (no TLS, no websocket): every request goes to on_http. */
typedef struct dfnet_http_server_config {
  const char *bind_address; /* "127.0.0.1"; NULL = all interfaces */
  uint16_t port;            /* 0 = an ephemeral port (read it from *port_out) */
  dfnet_http_fn on_http;    /* required */
  dfnet_http_gone_fn on_http_gone;
  void *user;
} dfnet_http_server_config_t;

/* Add a plain HTTP endpoint. On OK *endpoint_out and *port_out (each may be NULL) name it
 * and the port it listens on. Errors: INVALID_ARGUMENT (on_http NULL), UNAVAILABLE (the
 * address cannot be bound: logged), INTERNAL. Service thread, or before it starts. */
dfnet_status_t dfnet_transport_listen_http(dfnet_transport_t *t,
                                           const dfnet_http_server_config_t *cfg,
                                           dfnet_endpoint_id_t *endpoint_out, uint16_t *port_out);

/* Answer a request on_http kept (returned false for). resp->body passes to the transport
 * whatever the result. Errors: NOT_FOUND (no such request waiting: answered, or gone),
 * INVALID_ARGUMENT (resp NULL or status outside 100..599), INTERNAL (memory). Any thread. */
dfnet_status_t dfnet_transport_http_respond(dfnet_transport_t *t, dfnet_http_id_t id,
                                            const dfnet_http_response_t *resp);

/* Queue a piece of an open streaming response (data: len bytes, malloc(3)ed; the
 * transport owns it from the call on, whatever the result). Errors: NOT_FOUND (no such
 * stream: ended, or gone), RESOURCE_EXHAUSTED (DFNET_HTTP_STREAM_HWM bytes already wait:
 * the piece is dropped; a slow reader), INTERNAL. Any thread. */
dfnet_status_t dfnet_transport_http_stream_write(dfnet_transport_t *t, dfnet_http_id_t id,
                                                 char *data, size_t len);

/* End a streaming response once what is queued is written (the connection then closes).
 * Errors: NOT_FOUND. Any thread. */
dfnet_status_t dfnet_transport_http_end(dfnet_transport_t *t, dfnet_http_id_t id);

/* ---- Work on the service thread ----------------------------------------------------- */

typedef void (*dfnet_work_fn)(void *user);

/* Run fn(user) on the service thread after delay_ms (0 = on the next loop turn, never
 * during this call). On OK *id_out (may be NULL) names the timer. Errors:
 * INVALID_ARGUMENT (fn NULL), INTERNAL (memory). Any thread. */
dfnet_status_t dfnet_transport_timer_start(dfnet_transport_t *t, uint32_t delay_ms,
                                           dfnet_work_fn fn, void *user, dfnet_timer_id_t *id_out);

/* Cancel a timer that has not fired. On the service thread it never fires after this
 * returns; from another thread it may fire before the cancel is handled. Returns true if
 * the timer was pending (when called on the service thread; from another thread, true if
 * the cancel was queued). Cancelling twice, or a fired timer, is harmless. Any thread. */
bool dfnet_transport_timer_cancel(dfnet_transport_t *t, dfnet_timer_id_t id);

/* Run fn(user) on the service thread soon (a timer of delay 0). Errors as
 * dfnet_transport_timer_start. Any thread. */
dfnet_status_t dfnet_transport_post(dfnet_transport_t *t, dfnet_work_fn fn, void *user);

/* Watch a file descriptor from the service thread, level-triggered: fn(user) runs on the
 * service thread on every loop turn that finds fd readable (or in error / hung up), until
 * the transport is destroyed. fn must consume what made fd readable, or it runs again on
 * the next turn. It lets an owner with a poll-driven source of its own (the host agent's
 * driver-host supervisor, an epoll fd) have that source's events on the service thread
 * without a thread and a post per event. The transport polls a dup(2) of fd and closes
 * the dup itself; the caller keeps fd and may close it after destroying the transport. A
 * dup that hangs up without being readable stops being watched (logged once); an epoll fd
 * never does. Call it on the service thread, or before dfnet_transport_run/start.
 * Errors: INVALID_ARGUMENT (t or fn NULL, fd < 0); FAILED_PRECONDITION (from another
 * thread while the service thread runs); INTERNAL (dup(2) failed, memory, or
 * libwebsockets refused the descriptor). fn is never called after an error. */
dfnet_status_t dfnet_transport_watch_fd(dfnet_transport_t *t, int fd, dfnet_work_fn fn, void *user);

/* Run fn(user) on the service thread at the end of every turn of its loop: after the
 * callbacks of the turn (transport callbacks, timers, watched fds), before the messages
 * they sent are written out. The place for an owner to write out what it held back
 * during the turn (the host agent uncorks its driver-host supervisor there). One per
 * transport; fn NULL removes it. Call it on the service thread, or before
 * dfnet_transport_run/start. Errors: INVALID_ARGUMENT (t NULL); FAILED_PRECONDITION
 * (from another thread while the service thread runs). */
dfnet_status_t dfnet_transport_set_turn_end(dfnet_transport_t *t, dfnet_work_fn fn, void *user);

/* Milliseconds of a monotonic clock (CLOCK_MONOTONIC), for owners' own bookkeeping. */
uint64_t dfnet_transport_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_TRANSPORT_H */
