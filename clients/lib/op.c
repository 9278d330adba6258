/* libdfnet-client: calls and watches in flight ("ops", client_internal.h): starting one on
 * the current session, its replies delivered to the caller's callbacks, credit granted back
 * for streaming calls, cancelling, and the watch events the manager sends to every watch of
 * a session. proto/dfnet/v1/call.proto is the wire.
 *
 * Locking: c->mu guards the client's op list and every op's fields but its callbacks'; it
 * is never held while a callback runs or a message is sent (docs/style.md 8). */
#include <stdio.h>
#include <stdlib.h>
#include <utlist.h>

#include "clients/lib/client_internal.h"
#include "lib/log.h"

#define SUB "client"
#define BROADCAST_MAX 32 /* watches of one session an unsolicited event reaches */

void client__op_unref(client_op_t *op) {
  dfnet_client_t *c = op->c;
  pthread_mutex_lock(&c->mu);
  bool last = --op->refs == 0;
  pthread_mutex_unlock(&c->mu);
  if (last)
    free(op);
}

/* c->mu held: op `id` of the given kind in the client's list, or NULL. */
static client_op_t *op_find_locked(dfnet_client_t *c, uint64_t id, client_op_kind_t kind) {
  client_op_t *op;
  LL_FOREACH(c->ops, op) {
    if (op->id == id && op->kind == kind)
      break;
  }
  return op;
}

/* c->mu held: unlink op (on the list) from the client's list. */
static void op_unlink_locked(dfnet_client_t *c, client_op_t *op) {
  LL_DELETE(c->ops, op);
  op->next = NULL;
}

client_op_t *client__op_get(dfnet_client_t *c, uint64_t id, client_op_kind_t kind) {
  pthread_mutex_lock(&c->mu);
  client_op_t *op = op_find_locked(c, id, kind);
  if (op != NULL)
    op->refs++;
  pthread_mutex_unlock(&c->mu);
  return op;
}

/* A StreamCredit (credit) or a Cancel (reason) for request id; not sent when out of memory
 * or the session is gone (logged otherwise). */
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

void client__op_consumed(client_op_t *op) {
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

/* One reply that does not end op: a watch's event, or a call's message. */
static void op_deliver(client_op_t *op, const dfnet_envelope_t *env) {
  if (op->kind == CLIENT_OP_WATCH) {
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
    client__op_consumed(op);
}

/* The status and message op ends with (buf: room for a message of ours). */
static dfnet_status_t op_final(client_op_t *op, dfnet_status_t status, const dfnet_envelope_t *env,
                               const char **message, char *buf, size_t cap) {
  if (status != DFNET_STATUS_OK) {
    snprintf(buf, cap, "%s",
             status == DFNET_STATUS_DEADLINE_EXCEEDED ? "deadline exceeded"
             : status == DFNET_STATUS_CANCELLED       ? "cancelled"
             : status == DFNET_STATUS_UNAVAILABLE     ? "connection to the manager lost"
                                                      : dfnet_status_str(status));
    *message = buf;
    return status;
  }
  if (env->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
    dfnet_status_t final = (dfnet_status_t)env->pb.msg.reply.code;
    *message = env->pb.msg.reply.message;
    if (final == DFNET_STATUS_OK && env->bulk.size > 0)
      op_deliver(op, env);
    return final;
  }
  if (env->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    *message = env->pb.msg.status.message;
    return (dfnet_status_t)env->pb.msg.status.code;
  }
  snprintf(buf, cap, "unexpected %s in answer", dfnet_envelope_msg_name(env->pb.which_msg));
  *message = buf;
  return DFNET_STATUS_INTERNAL;
}

/* The transport's callback for a call or watch (client thread, or the thread destroying
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
  const char *message = "";
  char buf[128];
  dfnet_status_t final = op_final(op, status, env, &message, buf, sizeof buf);
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
  client__op_unref(op);
}

/* Send env for op on the current session; a session that just closed may still be our
 * current one for a moment: then wait for the next one once (not on the client thread). */
static dfnet_status_t op_send(dfnet_client_t *c, client_op_t *op, dfnet_envelope_t *env,
                              uint32_t deadline_ms, dfnet_session_id_t *sid, uint64_t *rid,
                              dfnet_client_error_t *err) {
  bool on_service = dfnet_transport_on_service_thread(c->t);
  dfnet_request_opts_t ro = {
      .deadline_ms = deadline_ms, .streaming = true, .on_reply = op_reply, .user = op};
  dfnet_status_t st = DFNET_STATUS_OK;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (on_service) {
      pthread_mutex_lock(&c->mu);
      *sid = c->session;
      pthread_mutex_unlock(&c->mu);
      st = *sid ? DFNET_STATUS_OK
                : client__fail(err, DFNET_STATUS_UNAVAILABLE, "not connected to the manager");
    } else {
      st = client__session(c, deadline_ms, sid, err);
    }
    if (st != DFNET_STATUS_OK)
      break;
    pthread_mutex_lock(&c->mu);
    op->session = *sid;
    pthread_mutex_unlock(&c->mu);
    st = dfnet_transport_request(c->t, *sid, env, &ro, on_service ? 0 : DFNET_SEND_WAIT, rid);
    if (st != DFNET_STATUS_NOT_FOUND)
      break;
    client__session_gone(c, *sid);
    st = client__fail(err, DFNET_STATUS_UNAVAILABLE, "request not sent: the session closed");
    if (on_service)
      break;
  }
  return st;
}

dfnet_status_t client__op_start(dfnet_client_t *c, client_op_t *op, dfnet_envelope_t *env,
                                uint32_t deadline_ms, uint64_t *id_out, dfnet_client_error_t *err) {
  op->c = c;
  op->refs = 2; /* the transport's and ours until started */
  pthread_mutex_lock(&c->mu);
  if (c->closing) {
    pthread_mutex_unlock(&c->mu);
    free(op);
    free(env);
    return client__fail(err, DFNET_STATUS_CANCELLED, "the client is closing");
  }
  op->id = ++c->next_op_id;
  LL_PREPEND(c->ops, op);
  pthread_mutex_unlock(&c->mu);

  dfnet_session_id_t sid = 0;
  uint64_t rid = 0;
  dfnet_status_t st = op_send(c, op, env, deadline_ms, &sid, &rid, err);
  free(env);
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
  if (id_out != NULL)
    *id_out = op->id;
  client__op_unref(op);
  return DFNET_STATUS_OK;
}

dfnet_status_t client__op_cancel(dfnet_client_t *c, uint64_t id, client_op_kind_t kind) {
  if (c == NULL || id == 0)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  client_op_t *op = op_find_locked(c, id, kind);
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
void client__op_unsolicited(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  dfnet_client_t *c = user;
  if (env->pb.which_msg != dfnet_v1_Envelope_watch_event_tag) {
    DFNET_LOGD(SUB, NULL, "unsolicited %s ignored", dfnet_envelope_msg_name(env->pb.which_msg));
    return;
  }
  client_op_t *list[BROADCAST_MAX];
  size_t n = 0;
  pthread_mutex_lock(&c->mu);
  client_op_t *op;
  LL_FOREACH(c->ops, op) {
    if (n == BROADCAST_MAX)
      break;
    if (op->kind == CLIENT_OP_WATCH && op->session == sid && !op->cancelled) {
      op->refs++;
      list[n++] = op;
    }
  }
  pthread_mutex_unlock(&c->mu);
  for (size_t i = 0; i < n; i++) {
    op_deliver(list[i], env);
    client__op_unref(list[i]);
  }
}
