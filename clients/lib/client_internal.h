/* libdfnet-client internals (not installed), shared by the library's files:
 *   client.c      the client: connect, close, info, the session (Hello/Welcome)
 *   log_config.c  the library's log level and sink
 *   error.c       dfnet_client_error_t filling, wire-field copies
 *   arena.c       the arena every list result lives in, and its growing array of items
 *   wait.c        waiting on the client thread: monotonic condition variables, deadlines,
 *                 the end of a request as a blocked caller waits for it
 *   op.c          calls and watches in flight ("ops"): start, cancel, replies, credit
 *   call.c        calls: callback and blocking
 *   stream.c      pull streams
 *   watch.c       watches
 *   query.c       one query of the client API (a list or a unary request)
 *   list.c        one list request (client__list) and the six lists of query.proto
 *                 (hosts, nodes, drivers, composites, bind traces, driver hosts)
 *   control.c     the unary control requests (driver control, node control: bind, unbind,
 *                 suspend, resume; test nodes, composite node spec, driver register)
 *   lease.c       leases: a lease's copy, renew, release, list, show, history; the
 *                 client's lease token
 *   lease_acquire.c  acquiring a lease (waiting in the queue, cancellable)
 *   lease_renewal.c  renewing the leases acquired through a client
 * "Client thread" is the transport's service thread (include/dfnet/client.h "Threads"). */
#ifndef DFNET_CLIENTS_LIB_CLIENT_INTERNAL_H
#define DFNET_CLIENTS_LIB_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dfnet/client.h"
#include "lib/arena.h"
#include "lib/envelope.h"
#include "lib/transport.h"

/* ---- errors (error.c) ---- */

/* Fill err (may be NULL) with code and the formatted message; returns code. */
dfnet_status_t client__fail(dfnet_client_error_t *err, dfnet_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset err (may be NULL) to OK with an empty message: every public function that takes an
 * err starts with it. */
void client__error_ok(dfnet_client_error_t *err);

/* Copy the string src (NULL = "") into a fixed wire field of cap bytes. INVALID_ARGUMENT
 * ("<what> is N bytes, at most M", err set) when it does not fit; dst is then untouched. */
dfnet_status_t client__copy_field(char *dst, size_t cap, const char *src, const char *what,
                                  dfnet_client_error_t *err);

/* ---- arena (arena.c): every list result is one arena (lib/arena.h), freed at once ---- */
const char *client__arena_strdup(dfnet_arena_t *a, const char *s); /* NULL s -> ""; NULL = OOM */
/* n strings of the wire, `stride` bytes apart from first (a repeated string field), copied
 * into the arena: the array, NULL when n is 0. Out of memory: *ok = false (else untouched),
 * and the array or some of its strings NULL. */
const char **client__arena_strv(dfnet_arena_t *a, const char *first, size_t stride, size_t n,
                                bool *ok);

/* One more item of size bytes at the end of the malloc'd array *items (*count used, *cap
 * allocated; doubled when full, 16 at first): zeroed, *count incremented. NULL when out of
 * memory (*items, *count and *cap unchanged, still the caller's). Client thread. */
void *client__items_push(void **items, size_t *count, size_t *cap, size_t size);

/* Copies of one kind of streamed message (a listing's items: CertInfo, TokenInfo): the
 * message of Envelope member `tag` is copied whole (item_size bytes: the member's nanopb
 * struct) into items[count++]. The caller frees items. */
typedef struct client_kept {
  pb_size_t tag;    /* dfnet_v1_Envelope_<member>_tag */
  size_t item_size; /* sizeof the member's struct */
  void *items;
  size_t count, cap;
} client_kept_t;

/* A client__query on_item for a client_kept_t (ctx): keep env's message. INTERNAL for a
 * message of another kind, RESOURCE_EXHAUSTED when out of memory. Client thread. */
dfnet_status_t client__keep_item(void *ctx, const dfnet_envelope_t *env);

/* ---- waiting (wait.c) ---- */

/* Initialise cv on CLOCK_MONOTONIC, the clock client__deadline reads. */
void client__cond_init(pthread_cond_t *cv);

/* *ts = now on CLOCK_MONOTONIC + ms, for pthread_cond_timedwait on a client__cond_init cv. */
void client__deadline(struct timespec *ts, uint32_t ms);

/* The end of a request as the thread blocked on it sees it. The request's callbacks (client
 * thread) write it under mu and signal cv; the waiter reads it under mu. A user may guard
 * more of its own state with mu (a stream's queue). */
typedef struct client_waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC */
  bool done;         /* the request ended: status and message are final */
  bool oom;          /* a reply could not be kept: out of memory */
  dfnet_status_t status;
  char message[512];
} client_waiter_t;

void client__waiter_init(client_waiter_t *w);    /* zeroed, not done */
void client__waiter_destroy(client_waiter_t *w); /* nobody waits or signals any more */
/* The request ended with status and message (NULL = ""): under mu, kept, done set, cv
 * signalled. */
void client__waiter_done(client_waiter_t *w, dfnet_status_t status, const char *message);
/* Block until done (no timeout: the transport ends every request exactly once). */
void client__waiter_wait(client_waiter_t *w);

/* ---- the client (client.c) ---- */
typedef struct client_op client_op_t;
typedef struct client_lease client_lease_t;
typedef struct client_acquire client_acquire_t;

struct dfnet_client {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t endpoint;
  uint32_t connect_timeout_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;          /* CLOCK_MONOTONIC; session, Hello and connect changes */
  dfnet_session_id_t session; /* welcomed session; 0 = none */
  dfnet_client_info_t info;
  dfnet_status_t hello_status; /* last Hello refusal (OK = none) */
  char hello_message[512];
  char url[256];                 /* the manager's URL, for messages */
  dfnet_status_t connect_status; /* last failed connection attempt (OK = none since open) */
  bool connect_retry_helps;
  char connect_message[512];
  client_op_t *ops; /* calls and watches in flight */
  uint64_t next_op_id;
  bool closing;
  char lease_token[96];          /* every call's Call.lease_token ("" = none) */
  client_lease_t *leases;        /* leases acquired through this client (lease.c) */
  client_acquire_t *acquiring;   /* dfnet_client_lease_acquire calls waiting (lease_acquire.c) */
  char *cert_file, *key_file;    /* the connect options' (cert_renewal.c renews them) */
  struct dfnet_renewer *renewer; /* dfnet_client_renew_enable's (c->mu); NULL: none */
};

/* Wait (up to timeout_ms; 0 = the connect timeout) for a welcomed session. Not on the
 * client thread. OK + *sid; the status of a connection attempt that a retry cannot fix
 * (UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE for a name that does not resolve) at
 * once, with its reason; UNAVAILABLE after the timeout, with the last attempt's reason;
 * the Hello's refusal; CANCELLED when closing; FAILED_PRECONDITION on the client thread. */
dfnet_status_t client__session(dfnet_client_t *c, uint32_t timeout_ms, dfnet_session_id_t *sid,
                               dfnet_client_error_t *err);

/* Session `sid` is gone (it closed, or a request found it closed): forget it, so the next
 * request waits for the reconnect, and wake the threads waiting in client__session. Any
 * thread. */
void client__session_gone(dfnet_client_t *c, dfnet_session_id_t sid);

/* ---- the library's log (log_config.c) ---- */

/* Apply opts' log level (else DFNET_LOG_LEVEL, else warnings) and sink (NULL: stderr) to
 * the process's one log. The last connect wins (include/dfnet/client.h). */
void client__log_configure(const dfnet_client_options_t *opts);

/* ---- leases (lease.c; lease_acquire.c acquires them) ---- */

/* At connect, before the client thread runs: the lease token from DFNET_LEASE.
 * INVALID_ARGUMENT (err set) when it is over the bound. */
dfnet_status_t client__lease_init(dfnet_client_t *c, dfnet_client_error_t *err);

/* The lease a token "<id>.<64 hex>" names, or 0. Any thread. */
uint64_t client__lease_token_id(const char *token);

/* One lease as the library gives it (dfnet_client_lease_t): the public struct first, its
 * strings in the arena; dfnet_client_lease_free(&h->pub) frees the whole. */
typedef struct client_lease_holder {
  dfnet_client_lease_t pub;
  dfnet_arena_t arena;
} client_lease_holder_t;

/* A new holder of a copy of the manager's LeaseInfo w (the caller frees it with
 * dfnet_client_lease_free(&h->pub)), or NULL (out of memory). Any thread. */
client_lease_holder_t *client__lease_holder_new(const dfnet_v1_LeaseInfo *w);

/* Send a LeaseRelease of lease id with token (not NULL; "" = none; force: role admin, with
 * reason, which may be NULL otherwise) and wait for its Status. Not on the client thread.
 * OK; INVALID_ARGUMENT (the reason over its bound), RESOURCE_EXHAUSTED, or client__query's
 * and the manager's status (NOT_FOUND: no such lease, PERMISSION_DENIED), err set. */
dfnet_status_t client__lease_release_request(dfnet_client_t *c, uint64_t id, const char *token,
                                             bool force, const char *reason,
                                             dfnet_client_error_t *err);

/* ---- lease renewals (lease_renewal.c) ---- */

/* A lease acquired through c (the caller's thread, after the acquire): its record,
 * renewed from now on at a third of its TTL unless o->no_renew, on the client thread; it
 * becomes the client's lease token when the client has none. Out of memory: logged, not
 * renewed. */
void client__lease_record_start(dfnet_client_t *c, const dfnet_client_lease_t *lease,
                                const dfnet_client_lease_options_t *o);

/* Lease id is gone through this client (released, or found gone): stop renewing it and
 * forget it as the client's lease token. Any thread. */
void client__lease_record_end(dfnet_client_t *c, uint64_t id);

/* c->mu held: copy lease id's token into out (the size of c->lease_token) when this client
 * keeps its record; false when it does not. */
bool client__lease_record_token_locked(dfnet_client_t *c, uint64_t id, char *out);

/* Lease id was renewed by hand (dfnet_client_lease_renew): its renewals go on from the new
 * expiry (ttl_ms 0: the old TTL). Any thread; nothing when there is no record. */
void client__lease_record_renewed(dfnet_client_t *c, uint64_t id, uint64_t expires_ms,
                                  uint32_t ttl_ms);

/* At close, once the transport is gone: free the leases' records. */
void client__leases_free(dfnet_client_t *c);

/* ---- ops (op.c): calls and watches in flight ----
 * An op is a record in the client's list, found by its public id and refcounted: one
 * reference held by the transport request until its last reply, one by whoever is
 * starting it or reading it, so that no thread frees one another still uses
 * (docs/style.md 7). Its callbacks run on the client thread without the client's lock. */
typedef enum client_op_kind { CLIENT_OP_CALL = 1, CLIENT_OP_WATCH = 2 } client_op_kind_t;

struct client_op {
  client_op_t *next; /* utlist LL: dfnet_client_t.ops, newest first */
  dfnet_client_t *c;
  uint64_t id; /* public call / watch id */
  client_op_kind_t kind;
  dfnet_session_id_t session;
  uint64_t req_id;     /* transport request id; 0 until known */
  bool cancel_pending; /* cancel asked before req_id was known */
  bool cancelled;
  bool auto_credit; /* grant credit when on_message returns (callback calls) */
  uint32_t window;
  uint32_t consumed; /* messages consumed since the last StreamCredit */
  int refs;
  dfnet_client_message_fn on_message; /* calls (may be NULL) */
  dfnet_client_event_fn on_event;     /* watches */
  dfnet_client_done_fn on_done;       /* both: exactly once, after OK from client__op_start */
  void *user;
};

/* Start op (calloc'd; kind, callbacks and credit set by the caller): env, which this frees,
 * is sent as a streaming request. On OK the op is in flight (the transport holds it until
 * its last reply), *id_out (may be NULL) gets its id. On error the op is freed, err says
 * why, and no callback runs: CANCELLED (closing), UNAVAILABLE (no session), the transport's
 * status. From the client thread too (then without waiting for a session). */
dfnet_status_t client__op_start(dfnet_client_t *c, client_op_t *op, dfnet_envelope_t *env,
                                uint32_t deadline_ms, uint64_t *id_out, dfnet_client_error_t *err);

/* Cancel op `id` of the given kind: its on_done runs with CANCELLED (or whatever ended it
 * first). INVALID_ARGUMENT (c NULL, id 0); NOT_FOUND (ended, or cancelled already). */
dfnet_status_t client__op_cancel(dfnet_client_t *c, uint64_t id, client_op_kind_t kind);

/* A new reference on op `id` of the given kind (drop it with client__op_unref), or NULL
 * when it has ended. */
client_op_t *client__op_get(dfnet_client_t *c, uint64_t id, client_op_kind_t kind);

/* Drop a reference; the last one frees the op. */
void client__op_unref(client_op_t *op);

/* One message of a streaming call consumed: grant credit back every half window. */
void client__op_consumed(client_op_t *op);

/* The transport's on_envelope (client thread): a WatchEvent sent with id 0 goes to every
 * watch of session sid; anything else unsolicited is logged and dropped. */
void client__op_unsolicited(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env);

/* ---- calls (call.c) ---- */

/* Start a call (dfnet_client_call_start's checks and envelope). auto_credit: grant credit
 * when on_message returns (callback calls); else the reader does (client__op_consumed).
 * Errors as client__op_start's, plus INVALID_ARGUMENT and RESOURCE_EXHAUSTED. */
dfnet_status_t client__call_start(dfnet_client_t *c, const char *target, const char *method,
                                  const void *request, size_t len,
                                  const dfnet_client_call_options_t *opts, bool auto_credit,
                                  dfnet_client_message_fn on_message, dfnet_client_done_fn on_done,
                                  void *user, dfnet_client_call_id_t *call_out,
                                  dfnet_client_error_t *err);

/* ---- one query of the client API (query.c) ---- */

/* A new envelope of member `which` (the caller frees it), or NULL with err set
 * (RESOURCE_EXHAUSTED). */
dfnet_envelope_t *client__envelope_new(pb_size_t which, dfnet_client_error_t *err);

/* One request of the client API answered by a stream of items closed by a Status
 * (streaming = true) or by exactly one reply (streaming = false). on_item runs on the client
 * thread for each reply that is not a Status (the last one too, when unary) and returns OK
 * or a status that ends the query with it (RESOURCE_EXHAUSTED when out of memory). */
typedef dfnet_status_t (*client_item_fn)(void *ctx, const dfnet_envelope_t *env);

/* Send req (not freed) and block until its answer has ended (deadline_ms 0: 30 s). Not on
 * the client thread. On OK, err (may be NULL) gets code OK and the message of the closing
 * Status ("" when the answer had none): e.g. "already registered URL" for a PackageUpload. */
dfnet_status_t client__query(dfnet_client_t *c, dfnet_envelope_t *req, bool streaming,
                             uint32_t deadline_ms, client_item_fn on_item, void *ctx,
                             dfnet_client_error_t *err);

/* A client__query on_item for a request answered by a Status only: any other reply is
 * INTERNAL (ctx unused). */
dfnet_status_t client__no_item(void *ctx, const dfnet_envelope_t *env);

/* ---- lists (list.c): a streamed answer kept whole in one public list ---- */

/* One list of the client API: the request's envelope member `ask`, filled from the public
 * function's arguments (fill: NULL when it has none; else OK, or INVALID_ARGUMENT with err
 * set), and the member `answer` of each item, copied into a zeroed public item of
 * item_size bytes (copy: its strings into the arena; false = out of memory). end (NULL:
 * none) sees the complete public list and the message of the Status that closed it. */
typedef struct client_list_kind {
  pb_size_t ask;
  dfnet_status_t (*fill)(dfnet_envelope_t *req, const void *args, dfnet_client_error_t *err);
  pb_size_t answer;
  size_t item_size;
  bool (*copy)(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item);
  void (*end)(void *list, const char *message);
} client_list_kind_t;

/* Ask for the list `kind` with args (its fill's); on OK *out is the public list (each
 * starts with {size_t count; T *items;}), which the caller frees with client__list_free
 * (what the list's public *_free calls). Not on the client thread. INVALID_ARGUMENT (c or
 * out NULL: "client and out are required"; what fill refuses), RESOURCE_EXHAUSTED,
 * client__query's; on OK, err (may be NULL) as client__query leaves it. */
dfnet_status_t client__list(dfnet_client_t *c, const client_list_kind_t *kind, const void *args,
                            const dfnet_client_query_options_t *q, void **out,
                            dfnet_client_error_t *err);

/* Free a public list client__list made: its items, their strings. NULL: nothing. */
void client__list_free(void *list);

#endif /* DFNET_CLIENTS_LIB_CLIENT_INTERNAL_H */
