/* Requests with replies (lib/transport.h "Requests with replies", "Envelope ids"): ids,
 * the list of a session's pending requests, matching replies to them, deadlines, cancel
 * (here or handed to the service thread), and the blocking request of other threads. A
 * request completes exactly once: its (last) reply, DEADLINE_EXCEEDED, CANCELLED, or the
 * status its session ended with.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/transport.h"
#include "lib/transport_internal.h"

void transport__pending_complete(transport__pending_t *p, dfnet_status_t status) {
  p->on_reply(p->user, status, NULL, true);
  free(p);
}

/* Take p out of its session's list of pending requests (t->mu held). */
static void pending_unlink(transport__session_t *s, transport__pending_t *p) {
  DL_DELETE(s->pending, p);
  s->p_count--;
}

/* ---- Deadlines ----------------------------------------------------------------------- */

static void deadline_fire(lws_sorted_usec_list_t *sul);

void transport__deadline_rearm(dfnet_transport_t *t) {
  uint64_t earliest = 0;
  pthread_mutex_lock(&t->mu);
  t->deadlines_dirty = false;
  transport__pending_t *p;
  for (size_t i = 0; i < t->n_sessions; i++)
    DL_FOREACH(t->sessions[i]->pending, p) {
      if (p->deadline_ms && (earliest == 0 || p->deadline_ms < earliest))
        earliest = p->deadline_ms;
    }
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

static void deadline_fire(lws_sorted_usec_list_t *sul) {
  dfnet_transport_t *t = lws_container_of(sul, dfnet_transport_t, deadline_sul);
  t->deadline_at = 0;
  uint64_t now = dfnet_transport_now_ms();
  transport__pending_t *expired = NULL, *p, *n;
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->n_sessions; i++) {
    transport__session_t *s = t->sessions[i];
    DL_FOREACH_SAFE(s->pending, p, n) {
      if (!p->deadline_ms || p->deadline_ms > now)
        continue;
      pending_unlink(s, p);
      DL_PREPEND(expired, p);
    }
  }
  pthread_mutex_unlock(&t->mu);
  DL_FOREACH_SAFE(expired, p, n) {
    transport__pending_complete(p, DFNET_STATUS_DEADLINE_EXCEEDED);
  }
  transport__deadline_rearm(t);
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
  transport__session_t *s = transport__session_find_locked(t, session);
  if (s == NULL || s->close_requested || s->closing) {
    pthread_mutex_unlock(&t->mu);
    return DFNET_STATUS_NOT_FOUND;
  }
  max = s->ep->limits.max_message_bytes;
  uint64_t id = s->next_id;
  s->next_id += 2;
  pthread_mutex_unlock(&t->mu);

  transport__pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return DFNET_STATUS_INTERNAL;
  p->deadline_ms = opts->deadline_ms ? dfnet_transport_now_ms() + opts->deadline_ms : 0;
  p->streaming = opts->streaming;
  p->is_last = opts->is_last;
  p->on_reply = opts->on_reply;
  p->user = opts->user;

  env->pb.id = id;
  transport__outmsg_t *m;
  dfnet_status_t st = transport__encode_out(env, max, &m);
  if (st != DFNET_STATUS_OK) {
    free(p);
    return st;
  }
  p->id = id;
  st = transport__enqueue(t, session, m, p, flags);
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
static transport__pending_t *pending_take(dfnet_transport_t *t, dfnet_session_id_t sid,
                                          uint64_t id) {
  transport__pending_t *found = NULL;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s = transport__session_find_locked(t, sid);
  if (s) {
    DL_SEARCH_SCALAR(s->pending, found, id, id);
    if (found != NULL)
      pending_unlink(s, found);
  }
  pthread_mutex_unlock(&t->mu);
  return found;
}

/* ---- Replies ------------------------------------------------------------------------- */

static bool default_is_last(const dfnet_envelope_t *env) {
  if (env->pb.which_msg == dfnet_v1_Envelope_status_tag)
    return true;
  if (env->pb.which_msg == dfnet_v1_Envelope_reply_tag)
    return env->pb.msg.reply.end_of_stream;
  return false;
}

bool transport__request_reply(transport__session_t *s, const dfnet_envelope_t *env,
                              dfnet_status_t st) {
  dfnet_transport_t *t = s->t;
  dfnet_session_id_t sid = s->id;
  uint64_t id = env->pb.id;
  transport__pending_t *p;
  pthread_mutex_lock(&t->mu);
  DL_SEARCH_SCALAR(s->pending, p, id, id);
  /* Whether this is the last reply is known here unless the request's own is_last says:
   * then the last one leaves the list in this lock section. */
  bool decided = p != NULL && (st != DFNET_STATUS_OK || !p->streaming || p->is_last == NULL);
  bool last = decided && (st != DFNET_STATUS_OK || !p->streaming || default_is_last(env));
  if (last)
    pending_unlink(s, p);
  pthread_mutex_unlock(&t->mu);
  if (p == NULL)
    return false;
  if (!decided) {
    /* only this thread unlinks pending requests: p stays valid until we call out (is_last
     * may cancel it: then it is no longer pending) */
    last = p->is_last(p->user, env);
    if (last && (p = pending_take(t, sid, id)) == NULL)
      return true;
  }
  if (!last) {
    p->on_reply(p->user, DFNET_STATUS_OK, env, false);
    return true;
  }
  if (st == DFNET_STATUS_UNIMPLEMENTED) {
    transport__peer_warn(s, "unknown replies", "reply %llu is of a kind this build does not know",
                         (unsigned long long)id);
    transport__pending_complete(p, DFNET_STATUS_UNIMPLEMENTED);
    return true;
  }
  p->on_reply(p->user, DFNET_STATUS_OK, env, true);
  free(p);
  return true;
}

void transport__request_end(transport__session_t *s, uint64_t id, dfnet_status_t status) {
  transport__pending_t *p = pending_take(s->t, s->id, id);
  if (p != NULL)
    transport__pending_complete(p, status);
}

/* ---- Cancel -------------------------------------------------------------------------- */

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

dfnet_status_t transport__request_cancel_here(dfnet_transport_t *t, dfnet_session_id_t sid,
                                              uint64_t id, bool notify_peer, const char *reason) {
  transport__pending_t *p = pending_take(t, sid, id);
  if (p == NULL)
    return DFNET_STATUS_NOT_FOUND;
  if (notify_peer)
    send_cancel(t, sid, id, reason);
  transport__pending_complete(p, DFNET_STATUS_CANCELLED);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_request_cancel(dfnet_transport_t *t, dfnet_session_id_t session,
                                              uint64_t id, bool notify_peer, const char *reason) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (dfnet_transport_on_service_thread(t))
    return transport__request_cancel_here(t, session, id, notify_peer, reason);
  bool known = false;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s = transport__session_find_locked(t, session);
  if (s) {
    transport__pending_t *p;
    DL_SEARCH_SCALAR(s->pending, p, id, id);
    known = p != NULL;
  }
  pthread_mutex_unlock(&t->mu);
  if (!known)
    return DFNET_STATUS_NOT_FOUND;
  transport__work_t *w = malloc(sizeof(*w));
  if (w == NULL)
    return DFNET_STATUS_INTERNAL;
  *w = (transport__work_t){.kind = TRANSPORT__WORK_REQUEST_CANCEL,
                           .session = session,
                           .request_id = id,
                           .notify_peer = notify_peer};
  if (reason)
    snprintf(w->reason, sizeof(w->reason), "%s", reason);
  transport__inbox_push(t, w);
  return DFNET_STATUS_OK;
}

/* ---- Blocking requests --------------------------------------------------------------- */

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
