/* libdfnet-client: the session (Hello/Welcome over lib/transport.h), calls with credit,
 * pull streams and watches (include/dfnet/client.h; proto/dfnet/v1/call.proto).
 *
 * Calls and watches are "ops": records in the client's list, found by their public id,
 * refcounted (one reference held by the transport request until its last reply, one by
 * whoever is starting it or reading it) so that no thread frees one another still uses
 * (docs/style.md 7). Callbacks run on the transport's service thread without our lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/lib/client_internal.h"
#include "lib/log.h"
#include "lib/role.h"
#include "lib/version.h"

#define SUB "client"
#define DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define DEFAULT_CREDIT 16u

typedef enum op_kind { OP_CALL = 1, OP_WATCH = 2 } op_kind_t;

struct client_op {
  client_op_t *next;
  dfnet_client_t *c;
  uint64_t id; /* public call / watch id */
  op_kind_t kind;
  dfnet_session_id_t session;
  uint64_t req_id;     /* transport request id; 0 until known */
  bool cancel_pending; /* cancel asked before req_id was known */
  bool cancelled;
  bool auto_credit; /* grant credit when on_message returns (callback calls) */
  uint32_t window;
  uint32_t consumed; /* messages consumed since the last StreamCredit */
  int refs;
  dfnet_client_message_fn on_message;
  dfnet_client_event_fn on_event;
  dfnet_client_done_fn on_done;
  void *user;
};

/* ---- errors, arena --------------------------------------------------------------- */

dfnet_status_t client__fail(dfnet_client_error_t *err, dfnet_status_t code, const char *fmt, ...) {
  if (err != NULL) {
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

static void error_ok(dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
}

dfnet_status_t client__copy_field(char *dst, size_t cap, const char *src, const char *what,
                                  dfnet_client_error_t *err) {
  if (src == NULL)
    src = "";
  size_t n = strlen(src);
  if (n >= cap)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "%s is %zu bytes, at most %zu", what, n,
                        cap - 1);
  memcpy(dst, src, n + 1);
  return DFNET_STATUS_OK;
}

void *client__arena_alloc(client_arena_t *a, size_t size) {
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  if (size == 0)
    size = sizeof(max_align_t);
  client_arena_block_t *b = a->head;
  if (b == NULL || b->cap - b->used < size) {
    size_t cap = size > 16384 ? size : 16384;
    b = malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

const char *client__arena_strdup(client_arena_t *a, const char *s) {
  if (s == NULL)
    s = "";
  size_t n = strlen(s);
  char *p = client__arena_alloc(a, n + 1);
  if (p != NULL)
    memcpy(p, s, n + 1);
  return p;
}

const uint8_t *client__arena_memdup(client_arena_t *a, const uint8_t *p, size_t n) {
  uint8_t *q = client__arena_alloc(a, n);
  if (q != NULL && n > 0)
    memcpy(q, p, n);
  return q;
}

void client__arena_free(client_arena_t *a) {
  client_arena_block_t *b = a->head;
  while (b != NULL) {
    client_arena_block_t *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
}

/* ---- strings of the public enums -------------------------------------------------- */

const char *dfnet_client_node_state_str(dfnet_client_node_state_t state) {
  switch (state) {
  case DFNET_CLIENT_NODE_UNBOUND:
    return "unbound";
  case DFNET_CLIENT_NODE_BOUND:
    return "bound";
  case DFNET_CLIENT_NODE_OWNED_BY_PARENT:
    return "owned by parent";
  case DFNET_CLIENT_NODE_OWNED_BY_COMPOSITE:
    return "owned by composite(s)";
  case DFNET_CLIENT_NODE_QUARANTINED:
    return "quarantined";
  default:
    return "unspecified";
  }
}

const char *dfnet_client_event_kind_str(dfnet_client_event_kind_t kind) {
  static const char *const names[] = {
      "UNSPECIFIED",    "NODE_ADDED",         "NODE_REMOVED",      "NODE_UPDATED",
      "NODE_BOUND",     "NODE_UNBOUND",       "DRIVER_REGISTERED", "DRIVER_DISABLED",
      "DRIVER_ENABLED", "DRIVER_HOST_EXITED", "HOST_CONNECTED",    "HOST_DISCONNECTED",
      "HOST_REMOVED",   "DRIVER_UNREGISTERED"};
  if ((unsigned)kind < sizeof names / sizeof names[0])
    return names[kind];
  return "UNSPECIFIED";
}

/* ---- session ------------------------------------------------------------------------ */

static void hello_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                        bool last);

static void on_session_open(void *user, const dfnet_session_info_t *info) {
  dfnet_client_t *c = user;
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL) {
    dfnet_transport_session_close(c->t, info->id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_hello_tag;
  env->pb.msg.hello.protocol_version = DFNET_PROTOCOL_VERSION;
  env->pb.msg.hello.role = dfnet_v1_Role_ROLE_UNSPECIFIED; /* the certificate says */
  snprintf(env->pb.msg.hello.software_version, sizeof env->pb.msg.hello.software_version, "%s",
           dfnet_version_software());
  dfnet_request_opts_t opts = {
      .deadline_ms = c->connect_timeout_ms, .on_reply = hello_reply, .user = c};
  pthread_mutex_lock(&c->mu);
  c->hello_status = DFNET_STATUS_OK;
  c->hello_message[0] = '\0';
  c->connect_status = DFNET_STATUS_OK;
  pthread_mutex_unlock(&c->mu);
  dfnet_status_t st = dfnet_transport_request(c->t, info->id, env, &opts, 0, NULL);
  free(env);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(SUB, info->peer_name, "Hello not sent: %s", dfnet_status_str(st));
}

static void hello_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                        bool last) {
  dfnet_client_t *c = user;
  (void)last;
  pthread_mutex_lock(&c->mu);
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_welcome_tag) {
    const dfnet_v1_Welcome *w = &reply->pb.msg.welcome;
    const dfnet_role_t *role = dfnet_role_by_wire(w->role); /* a client role, or "none" */
    snprintf(c->info.role, sizeof c->info.role, "%s",
             role != NULL && role->client_rank > 0 ? role->name : "none");
    snprintf(c->info.name, sizeof c->info.name, "%s", w->name);
    snprintf(c->info.server_name, sizeof c->info.server_name, "%s", w->server_name);
    c->info.session_id = w->session_id;
    /* The session the Welcome came on is the one the transport has now. */
    c->session = dfnet_transport_client_session(c->t, c->endpoint);
    c->hello_status = DFNET_STATUS_OK;
  } else if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    c->hello_status = (dfnet_status_t)reply->pb.msg.status.code;
    if (c->hello_status == DFNET_STATUS_OK)
      c->hello_status = DFNET_STATUS_UNKNOWN;
    snprintf(c->hello_message, sizeof c->hello_message, "%s", reply->pb.msg.status.message);
  } else {
    c->hello_status = status == DFNET_STATUS_OK ? DFNET_STATUS_INTERNAL : status;
    snprintf(c->hello_message, sizeof c->hello_message, "no Welcome from the manager (%s)",
             status == DFNET_STATUS_OK ? dfnet_envelope_msg_name(reply->pb.which_msg)
                                       : dfnet_status_str(status));
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void on_session_closed(void *user, dfnet_session_id_t sid, dfnet_status_t reason,
                              const char *message) {
  dfnet_client_t *c = user;
  pthread_mutex_lock(&c->mu);
  if (c->session == sid)
    c->session = 0;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  DFNET_LOGD(SUB, NULL, "session %llu closed: %s %s", (unsigned long long)sid,
             dfnet_status_str(reason), message ? message : "");
}

static void on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env);

/* ---- the library's log --------------------------------------------------------------- */

static dfnet_client_log_fn g_log_fn;
static void *g_log_user;

static void log_forward(void *user, dfnet_log_level_t level, const char *line) {
  (void)user;
  g_log_fn(g_log_user, (dfnet_client_log_level_t)(level + 1), line);
}

/* The options' level (else DFNET_LOG_LEVEL, else warnings) and sink. */
static void log_configure(const dfnet_client_options_t *opts) {
  dfnet_log_level_t level = DFNET_LOG_WARN;
  if (opts->log_level >= DFNET_CLIENT_LOG_ERROR && opts->log_level <= DFNET_CLIENT_LOG_DEBUG)
    level = (dfnet_log_level_t)(opts->log_level - 1);
  else
    (void)dfnet_log_level_parse(getenv("DFNET_LOG_LEVEL"), &level);
  dfnet_log_set_level(level);
  g_log_fn = opts->log_fn;
  g_log_user = opts->log_user;
  dfnet_log_set_sink(opts->log_fn != NULL ? log_forward : NULL, NULL);
}

/* The transport's service thread: an attempt to connect failed; remember why for the
 * callers waiting for a session (client__session). */
static void on_connect_error(void *user, dfnet_status_t code, const char *message,
                             bool retry_helps) {
  dfnet_client_t *c = user;
  pthread_mutex_lock(&c->mu);
  c->connect_status = code;
  c->connect_retry_helps = retry_helps;
  snprintf(c->connect_message, sizeof c->connect_message, "%s", message);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void deadline_from_now(struct timespec *ts, uint32_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000u;
  ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

void client__session_gone(dfnet_client_t *c, dfnet_session_id_t sid) {
  pthread_mutex_lock(&c->mu);
  if (c->session == sid)
    c->session = 0;
  pthread_mutex_unlock(&c->mu);
}

dfnet_status_t client__session(dfnet_client_t *c, uint32_t timeout_ms, dfnet_session_id_t *sid,
                               dfnet_client_error_t *err) {
  if (dfnet_transport_on_service_thread(c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "a blocking dfnet_client function was called from a callback");
  struct timespec until;
  deadline_from_now(&until, timeout_ms ? timeout_ms : c->connect_timeout_ms);
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&c->mu);
  while (c->session == 0) {
    if (c->closing) {
      st = client__fail(err, DFNET_STATUS_CANCELLED, "the client is closing");
      break;
    }
    if (c->hello_status != DFNET_STATUS_OK) {
      st = client__fail(err, c->hello_status, "the manager refused the session: %s",
                        c->hello_message);
      break;
    }
    if (c->connect_status != DFNET_STATUS_OK && !c->connect_retry_helps) {
      st = client__fail(err, c->connect_status, "cannot connect to %s: %s", c->url,
                        c->connect_message);
      break;
    }
    if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT && c->session == 0) {
      unsigned ms = timeout_ms ? timeout_ms : c->connect_timeout_ms;
      if (c->connect_status != DFNET_STATUS_OK)
        st = client__fail(err, DFNET_STATUS_UNAVAILABLE,
                          "cannot connect to %s: %s (still failing after %u ms)", c->url,
                          c->connect_message, ms);
      else
        st = client__fail(err, DFNET_STATUS_UNAVAILABLE,
                          "not connected to %s (no session within %u ms)", c->url, ms);
      break;
    }
  }
  *sid = c->session;
  pthread_mutex_unlock(&c->mu);
  return st;
}

dfnet_status_t dfnet_client_connect(const dfnet_client_options_t *opts, dfnet_client_t **out,
                                    dfnet_client_error_t *err) {
  error_ok(err);
  if (out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (opts == NULL || opts->url == NULL || opts->cert_file == NULL || opts->key_file == NULL ||
      opts->ca_file == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "url, cert_file, key_file and ca_file are required");
  if (strncmp(opts->url, "wss://", 6) != 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "manager URL '%s' is not wss://host:port", opts->url);
  dfnet_client_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  c->connect_timeout_ms =
      opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
  log_configure(opts);
  snprintf(c->url, sizeof c->url, "%s", opts->url);
  dfnet_status_t st = dfnet_transport_create(&c->t);
  if (st != DFNET_STATUS_OK) {
    client__fail(err, st, "cannot create the transport");
    goto transport_failed;
  }
  dfnet_client_config_t cfg = {
      .url = opts->url,
      .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
      .cert_file = opts->cert_file,
      .key_file = opts->key_file,
      .ca_file = opts->ca_file,
      .server_name = opts->server_name,
      .callbacks = {.on_session_open = on_session_open,
                    .on_envelope = on_envelope,
                    .on_session_closed = on_session_closed,
                    .on_connect_error = on_connect_error},
      .user = c,
      /* The peer is the manager, a relay, and three more hops follow: the calls a turn
       * starts (callbacks starting the next ones) go out in halves of 16, not quarters
       * (rpc_bench, 16 in flight: +6% calls/s, -15% client CPU per call). */
      .limits = {.batch_messages = 8},
  };
  st = dfnet_transport_connect(c->t, &cfg, &c->endpoint);
  if (st != DFNET_STATUS_OK) {
    client__fail(err, st, "cannot connect to %s with cert %s, key %s, CA %s: %s", opts->url,
                 opts->cert_file, opts->key_file, opts->ca_file,
                 st == DFNET_STATUS_NOT_FOUND ? "a file is missing" : "bad URL or options");
    goto endpoint_failed;
  }
  st = dfnet_transport_start(c->t);
  if (st != DFNET_STATUS_OK) {
    client__fail(err, st, "cannot start the client thread");
    goto endpoint_failed;
  }
  dfnet_session_id_t sid;
  st = client__session(c, 0, &sid, err);
  if (st != DFNET_STATUS_OK)
    goto endpoint_failed;
  *out = c;
  return DFNET_STATUS_OK;

endpoint_failed:
  pthread_mutex_lock(&c->mu);
  c->closing = true;
  pthread_mutex_unlock(&c->mu);
  dfnet_transport_destroy(c->t);
transport_failed:
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
  return st;
}

void dfnet_client_close(dfnet_client_t *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  c->closing = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  /* Fails every request in flight with CANCELLED: each op's final callback runs. */
  dfnet_transport_destroy(c->t);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

dfnet_status_t dfnet_client_info(dfnet_client_t *c, dfnet_client_info_t *out) {
  if (c == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  dfnet_status_t st = c->session ? DFNET_STATUS_OK : DFNET_STATUS_UNAVAILABLE;
  if (st == DFNET_STATUS_OK)
    *out = c->info;
  pthread_mutex_unlock(&c->mu);
  return st;
}

/* ---- ops ------------------------------------------------------------------------------ */

static void op_unref(client_op_t *op) {
  dfnet_client_t *c = op->c;
  pthread_mutex_lock(&c->mu);
  bool last = --op->refs == 0;
  pthread_mutex_unlock(&c->mu);
  if (last)
    free(op);
}

/* Unlink op from the client's list (under c->mu). */
static void op_unlink_locked(dfnet_client_t *c, client_op_t *op) {
  for (client_op_t **pp = &c->ops; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == op) {
      *pp = op->next;
      op->next = NULL;
      return;
    }
  }
}

static void send_small(dfnet_client_t *c, dfnet_session_id_t sid, uint64_t id, pb_size_t which,
                       uint32_t credit, const char *reason) {
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL)
    return;
  if (which == dfnet_v1_Envelope_stream_credit_tag)
    DFNET_ENVELOPE_INIT_MEMBER(env, which, stream_credit);
  else
    DFNET_ENVELOPE_INIT_MEMBER(env, which, cancel);
  env->pb.id = id;
  if (which == dfnet_v1_Envelope_stream_credit_tag)
    env->pb.msg.stream_credit.credit = credit;
  else
    snprintf(env->pb.msg.cancel.reason, sizeof env->pb.msg.cancel.reason, "%s", reason);
  dfnet_status_t st = dfnet_transport_send(c->t, sid, env, 0);
  if (st != DFNET_STATUS_OK && st != DFNET_STATUS_NOT_FOUND)
    DFNET_LOGD(SUB, NULL, "%s for request %llu not sent: %s", dfnet_envelope_msg_name(which),
               (unsigned long long)id, dfnet_status_str(st));
  free(env);
}

/* Count one consumed message of a streaming call; grant credit back every half window. */
static void op_consumed(client_op_t *op) {
  dfnet_client_t *c = op->c;
  uint32_t grant = 0;
  dfnet_session_id_t sid;
  uint64_t rid;
  pthread_mutex_lock(&c->mu);
  op->consumed++;
  if (op->consumed >= (op->window + 1) / 2 && op->req_id != 0) {
    grant = op->consumed;
    op->consumed = 0;
  }
  sid = op->session;
  rid = op->req_id;
  pthread_mutex_unlock(&c->mu);
  if (grant > 0 && sid != 0)
    send_small(c, sid, rid, dfnet_v1_Envelope_stream_credit_tag, grant, NULL);
}

static void event_from_wire(const dfnet_v1_WatchEvent *w, dfnet_client_event_t *ev) {
  ev->kind = (dfnet_client_event_kind_t)w->kind;
  ev->subject = w->subject;
  ev->detail = w->detail;
  ev->code = w->has_status ? (dfnet_status_t)w->status.code : DFNET_STATUS_OK;
  ev->message = w->has_status ? w->status.message : "";
  ev->time_ms = w->time_ms;
}

static void op_deliver(client_op_t *op, const dfnet_envelope_t *env) {
  if (op->kind == OP_WATCH) {
    if (env->pb.which_msg == dfnet_v1_Envelope_watch_event_tag && op->on_event != NULL) {
      dfnet_client_event_t ev;
      event_from_wire(&env->pb.msg.watch_event, &ev);
      op->on_event(op->user, op->id, &ev);
    }
    return;
  }
  if (env->pb.which_msg != dfnet_v1_Envelope_reply_tag)
    return;
  if (op->on_message != NULL)
    op->on_message(op->user, op->id, env->bulk.data, env->bulk.size);
  if (op->auto_credit && !env->pb.msg.reply.end_of_stream)
    op_consumed(op);
}

/* The transport's callback for a call or watch (service thread, or the thread destroying
 * the transport). */
static void op_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *env, bool last) {
  client_op_t *op = user;
  dfnet_client_t *c = op->c;
  if (status == DFNET_STATUS_OK && env != NULL) {
    pthread_mutex_lock(&c->mu);
    if (op->req_id == 0)
      op->req_id = env->pb.id;
    pthread_mutex_unlock(&c->mu);
  }
  if (!last) {
    op_deliver(op, env);
    return;
  }
  dfnet_status_t final = status;
  const char *message = "";
  char buf[128];
  if (status == DFNET_STATUS_OK) {
    if (env->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
      final = (dfnet_status_t)env->pb.msg.reply.code;
      message = env->pb.msg.reply.message;
      if (final == DFNET_STATUS_OK && env->bulk.size > 0)
        op_deliver(op, env);
    } else if (env->pb.which_msg == dfnet_v1_Envelope_status_tag) {
      final = (dfnet_status_t)env->pb.msg.status.code;
      message = env->pb.msg.status.message;
    } else {
      final = DFNET_STATUS_INTERNAL;
      snprintf(buf, sizeof buf, "unexpected %s in answer",
               dfnet_envelope_msg_name(env->pb.which_msg));
      message = buf;
    }
  } else {
    snprintf(buf, sizeof buf, "%s",
             status == DFNET_STATUS_DEADLINE_EXCEEDED ? "deadline exceeded"
             : status == DFNET_STATUS_CANCELLED       ? "cancelled"
             : status == DFNET_STATUS_UNAVAILABLE     ? "connection to the manager lost"
                                                      : dfnet_status_str(status));
    message = buf;
  }
  pthread_mutex_lock(&c->mu);
  op_unlink_locked(c, op);
  dfnet_session_id_t sid = op->session;
  uint64_t rid = op->req_id;
  bool closing = c->closing;
  pthread_mutex_unlock(&c->mu);
  /* Our own deadline passed first: tell the manager so the driver stops working. */
  if (status == DFNET_STATUS_DEADLINE_EXCEEDED && sid != 0 && rid != 0 && !closing)
    send_small(c, sid, rid, dfnet_v1_Envelope_cancel_tag, 0, "deadline exceeded");
  op->on_done(op->user, op->id, final, message);
  op_unref(op);
}

/* Hand an op to the transport: env is sent as a streaming request. On OK the op is in
 * flight (the transport holds a reference); on error it is unlinked and freed. */
static dfnet_status_t op_start(dfnet_client_t *c, client_op_t *op, dfnet_envelope_t *env,
                               uint32_t deadline_ms, dfnet_client_error_t *err) {
  dfnet_session_id_t sid = 0;
  dfnet_status_t st;
  bool on_service = dfnet_transport_on_service_thread(c->t);
  op->c = c;
  op->refs = 2; /* the transport's and ours until started */
  pthread_mutex_lock(&c->mu);
  if (c->closing) {
    pthread_mutex_unlock(&c->mu);
    free(op);
    return client__fail(err, DFNET_STATUS_CANCELLED, "the client is closing");
  }
  op->id = ++c->next_op_id;
  op->next = c->ops;
  c->ops = op;
  pthread_mutex_unlock(&c->mu);

  dfnet_request_opts_t ro = {
      .deadline_ms = deadline_ms, .streaming = true, .on_reply = op_reply, .user = op};
  uint64_t rid = 0;
  /* A session that just closed may still be our current one for a moment: then wait for
   * the next one once. */
  for (int attempt = 0; attempt < 2; attempt++) {
    if (on_service) {
      pthread_mutex_lock(&c->mu);
      sid = c->session;
      pthread_mutex_unlock(&c->mu);
      st = sid ? DFNET_STATUS_OK
               : client__fail(err, DFNET_STATUS_UNAVAILABLE, "not connected to the manager");
    } else {
      st = client__session(c, deadline_ms, &sid, err);
    }
    if (st != DFNET_STATUS_OK)
      break;
    pthread_mutex_lock(&c->mu);
    op->session = sid;
    pthread_mutex_unlock(&c->mu);
    st = dfnet_transport_request(c->t, sid, env, &ro, on_service ? 0 : DFNET_SEND_WAIT, &rid);
    if (st != DFNET_STATUS_NOT_FOUND)
      break;
    client__session_gone(c, sid);
    st = client__fail(err, DFNET_STATUS_UNAVAILABLE, "request not sent: the session closed");
    if (on_service)
      break;
  }
  if (st != DFNET_STATUS_OK) {
    pthread_mutex_lock(&c->mu);
    op_unlink_locked(c, op);
    pthread_mutex_unlock(&c->mu);
    free(op);
    if (err != NULL && err->code == DFNET_STATUS_OK)
      client__fail(err, st, "request not sent: %s", dfnet_status_str(st));
    return st;
  }
  pthread_mutex_lock(&c->mu);
  op->req_id = rid;
  bool cancel = op->cancel_pending;
  pthread_mutex_unlock(&c->mu);
  if (cancel)
    dfnet_transport_request_cancel(c->t, sid, rid, true, "cancelled by the client");
  return DFNET_STATUS_OK;
}

/* Cancel op `id` of the given kind. */
static dfnet_status_t op_cancel(dfnet_client_t *c, uint64_t id, op_kind_t kind) {
  if (c == NULL || id == 0)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  client_op_t *op = c->ops;
  while (op != NULL && !(op->id == id && op->kind == kind))
    op = op->next;
  if (op == NULL || op->cancelled) {
    pthread_mutex_unlock(&c->mu);
    return DFNET_STATUS_NOT_FOUND;
  }
  op->cancelled = true;
  dfnet_session_id_t sid = op->session;
  uint64_t rid = op->req_id;
  if (rid == 0)
    op->cancel_pending = true;
  pthread_mutex_unlock(&c->mu);
  if (rid != 0)
    dfnet_transport_request_cancel(c->t, sid, rid, true, "cancelled by the client");
  return DFNET_STATUS_OK;
}

/* Events sent with id 0 (not tied to our Watch's id): every watch of the session gets them. */
static void on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  dfnet_client_t *c = user;
  if (env->pb.which_msg != dfnet_v1_Envelope_watch_event_tag) {
    DFNET_LOGD(SUB, NULL, "unsolicited %s ignored", dfnet_envelope_msg_name(env->pb.which_msg));
    return;
  }
  client_op_t *list[32];
  size_t n = 0;
  pthread_mutex_lock(&c->mu);
  for (client_op_t *op = c->ops; op != NULL && n < 32; op = op->next) {
    if (op->kind == OP_WATCH && op->session == sid && !op->cancelled) {
      op->refs++;
      list[n++] = op;
    }
  }
  pthread_mutex_unlock(&c->mu);
  for (size_t i = 0; i < n; i++) {
    op_deliver(list[i], env);
    op_unref(list[i]);
  }
}

/* ---- calls ----------------------------------------------------------------------------- */

static dfnet_status_t call_envelope(dfnet_envelope_t **out, const char *target, const char *method,
                                    const void *request, size_t len,
                                    const dfnet_client_call_options_t *opts,
                                    dfnet_client_error_t *err) {
  if (target == NULL || method == NULL || (request == NULL && len > 0))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "target and method are required");
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  DFNET_ENVELOPE_INIT_MEMBER(env, dfnet_v1_Envelope_call_tag, call);
  dfnet_v1_Call *call = &env->pb.msg.call;
  dfnet_status_t st = client__copy_field(call->target, sizeof call->target, target, "target", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(call->method, sizeof call->method, method, "method", err);
  if (st == DFNET_STATUS_OK && method[0] != '/')
    st = client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                      "method '%s' is not /<package>.<Service>/<Method>", method);
  if (st != DFNET_STATUS_OK) {
    free(env);
    return st;
  }
  call->deadline_ms = opts ? opts->deadline_ms : 0;
  call->credit = opts && opts->credit ? opts->credit : DEFAULT_CREDIT;
  env->bulk.data = request;
  env->bulk.size = len;
  *out = env;
  return DFNET_STATUS_OK;
}

static dfnet_status_t call_start(dfnet_client_t *c, const char *target, const char *method,
                                 const void *request, size_t len,
                                 const dfnet_client_call_options_t *opts, bool auto_credit,
                                 dfnet_client_message_fn on_message, dfnet_client_done_fn on_done,
                                 void *user, dfnet_client_call_id_t *call_out,
                                 dfnet_client_error_t *err) {
  if (c == NULL || on_done == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client and on_done are required");
  dfnet_envelope_t *env = NULL;
  dfnet_status_t st = call_envelope(&env, target, method, request, len, opts, err);
  if (st != DFNET_STATUS_OK)
    return st;
  client_op_t *op = calloc(1, sizeof *op);
  if (op == NULL) {
    free(env);
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  op->kind = OP_CALL;
  op->window = env->pb.msg.call.credit;
  op->auto_credit = auto_credit;
  op->on_message = on_message;
  op->on_done = on_done;
  op->user = user;
  st = op_start(c, op, env, opts ? opts->deadline_ms : 0, err);
  free(env);
  if (st != DFNET_STATUS_OK)
    return st;
  if (call_out)
    *call_out = op->id;
  op_unref(op);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_call_start(dfnet_client_t *c, const char *target, const char *method,
                                       const void *request, size_t len,
                                       const dfnet_client_call_options_t *opts,
                                       dfnet_client_message_fn on_message,
                                       dfnet_client_done_fn on_done, void *user,
                                       dfnet_client_call_id_t *call_out) {
  return call_start(c, target, method, request, len, opts, true, on_message, on_done, user,
                    call_out, NULL);
}

dfnet_status_t dfnet_client_call_cancel(dfnet_client_t *c, dfnet_client_call_id_t call) {
  return op_cancel(c, call, OP_CALL);
}

/* A blocking call waits on this. */
typedef struct sync_call {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  dfnet_status_t status;
  char message[512];
  uint8_t *data;
  size_t len;
  bool oom;
} sync_call_t;

static void sync_message(void *user, dfnet_client_call_id_t call, const uint8_t *data, size_t len) {
  sync_call_t *s = user;
  (void)call;
  uint8_t *copy = NULL;
  if (len > 0) {
    copy = malloc(len);
    if (copy == NULL) {
      s->oom = true;
      return;
    }
    memcpy(copy, data, len);
  }
  pthread_mutex_lock(&s->mu);
  free(s->data);
  s->data = copy;
  s->len = len;
  pthread_mutex_unlock(&s->mu);
}

static void sync_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                      const char *message) {
  sync_call_t *s = user;
  (void)call;
  pthread_mutex_lock(&s->mu);
  s->status = status;
  snprintf(s->message, sizeof s->message, "%s", message ? message : "");
  s->done = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

dfnet_status_t dfnet_client_call(dfnet_client_t *c, const char *target, const char *method,
                                 const void *request, size_t len,
                                 const dfnet_client_call_options_t *opts, uint8_t **reply,
                                 size_t *reply_len, dfnet_client_error_t *err) {
  error_ok(err);
  if (reply == NULL || reply_len == NULL || c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "reply and reply_len are required");
  *reply = NULL;
  *reply_len = 0;
  if (dfnet_transport_on_service_thread(c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "dfnet_client_call called from a callback");
  sync_call_t s = {.status = DFNET_STATUS_OK};
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  dfnet_status_t st = call_start(c, target, method, request, len, opts, true, sync_message,
                                 sync_done, &s, NULL, err);
  if (st == DFNET_STATUS_OK) {
    pthread_mutex_lock(&s.mu);
    while (!s.done)
      pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    st = s.status;
    if (st == DFNET_STATUS_OK && s.oom)
      st = client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for the reply");
    else if (st != DFNET_STATUS_OK)
      client__fail(err, st, "%s", s.message);
    if (st == DFNET_STATUS_OK) {
      *reply = s.data;
      *reply_len = s.len;
      s.data = NULL;
    }
  }
  free(s.data);
  pthread_cond_destroy(&s.cv);
  pthread_mutex_destroy(&s.mu);
  return st;
}

/* ---- pull streams --------------------------------------------------------------------- */

typedef struct stream_msg {
  struct stream_msg *next;
  size_t len;
  uint8_t data[];
} stream_msg_t;

struct dfnet_client_stream {
  dfnet_client_t *c;
  dfnet_client_call_id_t call;
  client_op_t *op; /* a reference of ours until close */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  stream_msg_t *head, *tail;
  bool done;
  bool oom;
  dfnet_status_t status;
  char message[512];
  int refs; /* the reader's + the call's (dropped in stream_done) */
};

static void stream_unref(dfnet_client_stream_t *s) {
  pthread_mutex_lock(&s->mu);
  bool last = --s->refs == 0;
  pthread_mutex_unlock(&s->mu);
  if (!last)
    return;
  for (stream_msg_t *m = s->head; m != NULL;) {
    stream_msg_t *next = m->next;
    free(m);
    m = next;
  }
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static void stream_message(void *user, dfnet_client_call_id_t call, const uint8_t *data,
                           size_t len) {
  dfnet_client_stream_t *s = user;
  (void)call;
  stream_msg_t *m = malloc(sizeof *m + len);
  pthread_mutex_lock(&s->mu);
  if (m == NULL) {
    s->oom = true;
  } else {
    m->next = NULL;
    m->len = len;
    if (len > 0)
      memcpy(m->data, data, len);
    if (s->tail)
      s->tail->next = m;
    else
      s->head = m;
    s->tail = m;
  }
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void stream_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                        const char *message) {
  dfnet_client_stream_t *s = user;
  (void)call;
  pthread_mutex_lock(&s->mu);
  s->done = true;
  s->status = status;
  snprintf(s->message, sizeof s->message, "%s", message ? message : "");
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  stream_unref(s);
}

dfnet_status_t dfnet_client_stream_open(dfnet_client_t *c, const char *target, const char *method,
                                        const void *request, size_t len,
                                        const dfnet_client_call_options_t *opts,
                                        dfnet_client_stream_t **out, dfnet_client_error_t *err) {
  error_ok(err);
  if (c == NULL || out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client and out are required");
  *out = NULL;
  dfnet_client_stream_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  s->c = c;
  s->refs = 2;
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  dfnet_status_t st = call_start(c, target, method, request, len, opts, false, stream_message,
                                 stream_done, s, &s->call, err);
  if (st != DFNET_STATUS_OK) {
    s->refs = 1;
    stream_unref(s);
    return st;
  }
  /* Keep a reference on the op so that credit can be granted while we read. */
  pthread_mutex_lock(&c->mu);
  for (client_op_t *op = c->ops; op != NULL; op = op->next) {
    if (op->id == s->call) {
      op->refs++;
      s->op = op;
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  *out = s;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_stream_next(dfnet_client_stream_t *s, uint32_t timeout_ms,
                                        uint8_t **data, size_t *len, dfnet_client_error_t *err) {
  error_ok(err);
  if (s == NULL || data == NULL || len == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "stream, data and len are required");
  *data = NULL;
  *len = 0;
  if (dfnet_transport_on_service_thread(s->c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "dfnet_client_stream_next called from a callback");
  struct timespec until;
  if (timeout_ms)
    deadline_from_now(&until, timeout_ms);
  pthread_mutex_lock(&s->mu);
  while (s->head == NULL && !s->done && !s->oom) {
    if (timeout_ms == 0) {
      pthread_cond_wait(&s->cv, &s->mu);
    } else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && s->head == NULL &&
               !s->done) {
      pthread_mutex_unlock(&s->mu);
      return client__fail(err, DFNET_STATUS_DEADLINE_EXCEEDED, "no message within %u ms",
                          timeout_ms);
    }
  }
  if (s->oom) {
    pthread_mutex_unlock(&s->mu);
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for a message");
  }
  stream_msg_t *m = s->head;
  if (m == NULL) {
    dfnet_status_t st = s->status;
    pthread_mutex_unlock(&s->mu);
    if (st == DFNET_STATUS_OK)
      return client__fail(err, DFNET_STATUS_ABORTED, "end of stream");
    return client__fail(err, st, "%s", s->message);
  }
  s->head = m->next;
  if (s->head == NULL)
    s->tail = NULL;
  bool done = s->done;
  pthread_mutex_unlock(&s->mu);
  if (!done && s->op != NULL)
    op_consumed(s->op);
  size_t n = m->len;
  if (n > 0) {
    memmove(m, m->data, n); /* hand the bytes over in the same block */
    *data = (uint8_t *)m;
    *len = n;
  } else {
    free(m);
  }
  return DFNET_STATUS_OK;
}

void dfnet_client_stream_close(dfnet_client_stream_t *s) {
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->mu);
  bool done = s->done;
  pthread_mutex_unlock(&s->mu);
  if (!done)
    (void)op_cancel(s->c, s->call, OP_CALL);
  if (s->op != NULL)
    op_unref(s->op);
  stream_unref(s);
}

/* ---- watch ---------------------------------------------------------------------------- */

dfnet_status_t dfnet_client_watch(dfnet_client_t *c, unsigned what, dfnet_client_event_fn on_event,
                                  dfnet_client_done_fn on_end, void *user,
                                  dfnet_client_watch_id_t *watch_out, dfnet_client_error_t *err) {
  error_ok(err);
  if (c == NULL || on_event == NULL || on_end == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "on_event and on_end are required");
  if (what == 0)
    what = DFNET_CLIENT_WATCH_ALL;
  if (what & ~(unsigned)DFNET_CLIENT_WATCH_ALL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "unknown watch bits 0x%x", what);
  dfnet_envelope_t *env = malloc(sizeof *env);
  client_op_t *op = calloc(1, sizeof *op);
  if (env == NULL || op == NULL) {
    free(env);
    free(op);
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_watch_tag;
  env->pb.msg.watch.nodes = (what & DFNET_CLIENT_WATCH_NODES) != 0;
  env->pb.msg.watch.drivers = (what & DFNET_CLIENT_WATCH_DRIVERS) != 0;
  env->pb.msg.watch.hosts = (what & DFNET_CLIENT_WATCH_HOSTS) != 0;
  op->kind = OP_WATCH;
  op->on_event = on_event;
  op->on_done = on_end;
  op->user = user;
  dfnet_status_t st = op_start(c, op, env, 0, err);
  free(env);
  if (st != DFNET_STATUS_OK)
    return st;
  if (watch_out)
    *watch_out = op->id;
  op_unref(op);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_watch_cancel(dfnet_client_t *c, dfnet_client_watch_id_t watch) {
  return op_cancel(c, watch, OP_WATCH);
}
