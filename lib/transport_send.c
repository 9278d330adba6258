/* The send path (lib/transport.h "Sending", "Bounds"): envelopes encoded into a session's
 * send queue under its high-water mark (and the reading pause of a peer whose queue
 * reached it), batched until the end of the service turn, framed (RFC 6455: our own frames
 * when several small messages share one write; masked on the client side) and written:
 * small messages together, large ones in fragments. One file because this is the path of
 * every message: its small functions stay static and inlined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/log.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"
/* Envelopes up to this size are encoded into a per-thread scratch buffer first. */
#define ENCODE_SCRATCH 4096u
/* Messages queued on the service thread are held back until the end of the service turn,
 * to go out together, but no more than limits.batch_messages of them (or that many KiB):
 * a bound on the delay batching adds, and it lets the peer work on the first ones while
 * we make the rest. */

/* What a queued message costs in memory, as the send queue counts it against its high-water
 * mark: the envelope, the header and lws's headroom, and malloc's own (about 16 bytes).
 * Counting only the envelope let 80,000 small final statuses hold twice the mark. */
static size_t outmsg_cost(const transport__outmsg_t *m) {
  return sizeof *m + LWS_PRE + m->len + 16;
}

dfnet_status_t transport__encode_out(dfnet_envelope_t *env, uint32_t max,
                                     transport__outmsg_t **out) {
  size_t len;
  const char *err = NULL;
  dfnet_status_t st;
  /* Small envelopes (the common case) are encoded once, into a scratch buffer, and copied:
   * nanopb's sizing pass costs as much as the encoding itself. */
  static _Thread_local uint8_t scratch[ENCODE_SCRATCH];
  if (env->bulk.size < sizeof(scratch)) {
    st = dfnet_envelope_encode(env, scratch, sizeof(scratch), &len, &err);
    if (st == DFNET_STATUS_OK && len <= max) {
      transport__outmsg_t *m = malloc(sizeof(*m) + LWS_PRE + len);
      if (m == NULL)
        return DFNET_STATUS_INTERNAL;
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
  transport__outmsg_t *m = malloc(sizeof(*m) + LWS_PRE + len);
  if (m == NULL)
    return DFNET_STATUS_INTERNAL;
  m->len = len;
  st = dfnet_envelope_encode(env, m->buf + LWS_PRE, len, &m->len, &err);
  if (st != DFNET_STATUS_OK) {
    free(m);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out = m;
  return DFNET_STATUS_OK;
}

dfnet_status_t transport__enqueue(dfnet_transport_t *t, dfnet_session_id_t id,
                                  transport__outmsg_t *m, transport__pending_t *p, unsigned flags) {
  bool on_service = dfnet_transport_on_service_thread(t);
  bool may_wait = (flags & DFNET_SEND_WAIT) && !on_service;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s;
  for (;;) {
    s = transport__session_find_locked(t, id);
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
    DL_APPEND(s->pending, p);
    s->p_count++;
    if (p->deadline_ms && !on_service)
      t->deadlines_dirty = true;
  }
  STAILQ_INSERT_TAIL(&s->queue, m, link);
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
      transport__deadline_rearm(t);
    /* Written at the end of this service turn, together with whatever else is queued on
     * the session by then (see transport__flush_all). */
    transport__flush_mark(s, m->len);
  } else {
    transport__wake_once(t);
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_send(dfnet_transport_t *t, dfnet_session_id_t session,
                                    dfnet_envelope_t *env, unsigned flags) {
  if (t == NULL || env == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  uint32_t max = DFNET_TRANSPORT_MAX_MESSAGE_DEFAULT;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s = transport__session_find_locked(t, session);
  if (s)
    max = s->ep->limits.max_message_bytes;
  pthread_mutex_unlock(&t->mu);
  if (s == NULL)
    return DFNET_STATUS_NOT_FOUND;
  transport__outmsg_t *m;
  dfnet_status_t st = transport__encode_out(env, max, &m);
  if (st != DFNET_STATUS_OK)
    return st;
  st = transport__enqueue(t, session, m, NULL, flags);
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
 * room for TRANSPORT__WS_HDR_MAX + len. */
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
static void rx_flow_update(transport__session_t *s) {
  pthread_mutex_lock(&s->t->mu);
  size_t queued = s->q_bytes;
  pthread_mutex_unlock(&s->t->mu);
  size_t hwm = s->ep->limits.send_hwm_bytes;
  if (!s->rx_paused && queued >= hwm) {
    s->rx_paused = true;
    s->stats.reading_pauses++;
    lws_rx_flow_control(s->wsi, 0);
    transport__peer_warn(s, "reading pauses",
                         "not reading from the peer: %zu bytes wait for it to read", queued);
  } else if (s->rx_paused && queued <= hwm / 2) {
    s->rx_paused = false;
    lws_rx_flow_control(s->wsi, 1);
  }
}

/* Service thread: take the n whole messages at the head of s's queue off it (they were
 * handed to lws, in `writes` writes). */
static void dequeue_sent(transport__session_t *s, size_t n, uint64_t writes) {
  dfnet_transport_t *t = s->t;
  pthread_mutex_lock(&t->mu);
  s->stats.writes += writes;
  /* the messages taken off stay linked to each other: freed below, outside the lock */
  transport__outmsg_t *done = STAILQ_FIRST(&s->queue);
  size_t k = 0;
  for (; k < n && !STAILQ_EMPTY(&s->queue); k++) {
    transport__outmsg_t *m = STAILQ_FIRST(&s->queue);
    STAILQ_REMOVE_HEAD(&s->queue, link);
    s->q_bytes -= outmsg_cost(m);
    s->stats.sent_messages++;
  }
  if (n > 0)
    pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  for (transport__outmsg_t *m = done, *nx; k > 0; k--, m = nx) {
    nx = STAILQ_NEXT(m, link);
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
static int write_queue(transport__session_t *s, struct lws *wsi, size_t budget) {
  dfnet_transport_t *t = s->t;
  size_t frag = s->ep->limits.fragment_bytes;
  bool client = s->ep->is_client;
  for (;;) {
    pthread_mutex_lock(&t->mu);
    transport__outmsg_t *m = STAILQ_FIRST(&s->queue);
    /* how many whole small messages fit in one batch? (the list past its head is only
     * appended to by other threads: its links we read stay valid) */
    size_t nb = 0, bytes = 0;
    if (m != NULL && s->cur_off == 0)
      for (transport__outmsg_t *x = m;
           x && bytes + x->len + TRANSPORT__WS_HDR_MAX <= TRANSPORT__BATCH_BYTES;
           x = STAILQ_NEXT(x, link)) {
        bytes += x->len + TRANSPORT__WS_HDR_MAX;
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
      if (t->batch == NULL && (t->batch = malloc(LWS_PRE + TRANSPORT__BATCH_BYTES)) == NULL)
        nb = 1;
    }
    if (nb >= 2) {
      uint8_t *out = t->batch + LWS_PRE;
      size_t off = 0;
      bool ok = true;
      transport__outmsg_t *x = m;
      for (size_t i = 0; i < nb && ok; i++, x = STAILQ_NEXT(x, link))
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
    bool more = !STAILQ_EMPTY(&s->queue);
    pthread_mutex_unlock(&t->mu);
    return more ? 1 : 0;
  }
}

int transport__on_writable(transport__session_t *s, struct lws *wsi) {
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
  bool close_now = s->close_requested && STAILQ_EMPTY(&s->queue);
  pthread_mutex_unlock(&t->mu);
  if (close_now) {
    /* 1000 for an ordinary close, 1001 (going away) when a server's transport shuts down (a
     * restarting manager: its hosts then retry within the backoff's restart cap); 1008 with
     * "<STATUS>: why" when the session ends for a reason the peer must hear (its
     * certificate ran out, it sent no Hello...): the peer's transport ends its requests
     * with that status */
    char text[124];
    bool ordinary = s->close_reason == DFNET_STATUS_OK || s->close_reason == DFNET_STATUS_CANCELLED;
    int n = ordinary ? snprintf(text, sizeof text, "%s", s->close_msg)
                     : snprintf(text, sizeof text, "%s: %s", dfnet_status_str(s->close_reason),
                                s->close_msg);
    enum lws_close_status code = !ordinary ? LWS_CLOSE_STATUS_POLICY_VIOLATION
                                 : t->shutting_down && !s->ep->is_client
                                     ? LWS_CLOSE_STATUS_GOINGAWAY
                                     : LWS_CLOSE_STATUS_NORMAL;
    lws_close_reason(wsi, code, (unsigned char *)text, n < 0 ? 0 : strlen(text));
    return -1;
  }
  if (more)
    lws_callback_on_writable(wsi);
  return 0;
}

/* Service thread: write what s has queued now, outside a writable callback: only when
 * lws holds nothing back for the socket and no large message is half sent; otherwise (or
 * for what does not fit) ask for a writable callback. */
static void flush_session(transport__session_t *s) {
  struct lws *wsi = s->wsi;
  rx_flow_update(s);
  if (s->closing || s->kill_reason_set || s->close_requested || s->cur_off != 0 ||
      lws_partial_buffered(wsi)) {
    lws_callback_on_writable(wsi);
    return;
  }
  int more = write_queue(s, wsi, s->ep->limits.fragment_bytes);
  if (more < 0) {
    transport__session_kill(s, DFNET_STATUS_UNAVAILABLE, "write failed");
    return;
  }
  if (more || lws_partial_buffered(wsi))
    lws_callback_on_writable(wsi);
}

/* Service thread: write every session marked by transport__flush_mark. Called at the end of each
 * service turn (dfnet_transport_run) and from flush_sul when work was queued by a timer
 * before lws polls. */
void transport__flush_all(dfnet_transport_t *t) {
  if (t->flush_sul_armed) {
    t->flush_sul_armed = false;
    lws_sul_cancel(&t->flush_sul);
  }
  transport__session_t *s;
  while ((s = SLIST_FIRST(&t->flush_list)) != NULL) {
    SLIST_REMOVE_HEAD(&t->flush_list, flush_link);
    s->flush_linked = false;
    s->unflushed = 0;
    s->unflushed_bytes = 0;
    flush_session(s);
  }
}

static void flush_sul_cb(lws_sorted_usec_list_t *sul) {
  dfnet_transport_t *t = lws_container_of(sul, dfnet_transport_t, flush_sul);
  t->flush_sul_armed = false;
  transport__flush_all(t);
}

/* Service thread: s has queued messages to write by the end of this service turn. The
 * sul makes sure lws does not sleep in poll() first when we are called from a timer (lws
 * runs timers before it polls). */
void transport__flush_mark(transport__session_t *s, size_t len) {
  dfnet_transport_t *t = s->t;
  s->unflushed++;
  s->unflushed_bytes += len;
  uint32_t batch = s->ep->limits.batch_messages;
  if (s->unflushed >= batch || s->unflushed_bytes >= (size_t)batch * 1024u) {
    /* enough held back: write now, so that the peer can start on these while we go on
     * (two sides working at once beat one batch per turn that leaves the peer idle) */
    transport__flush_unlink(s);
    s->unflushed = 0;
    s->unflushed_bytes = 0;
    flush_session(s);
    return;
  }
  if (!s->flush_linked) {
    s->flush_linked = true;
    SLIST_INSERT_HEAD(&t->flush_list, s, flush_link);
  }
  if (!t->flush_sul_armed && !t->destroying) {
    t->flush_sul_armed = true;
    lws_sul_schedule(t->ctx, 0, &t->flush_sul, flush_sul_cb, 1);
  }
}

/* Service thread: s is going away: not to be flushed. */
void transport__flush_unlink(transport__session_t *s) {
  if (!s->flush_linked)
    return;
  SLIST_REMOVE(&s->t->flush_list, s, transport__session, flush_link);
  s->flush_linked = false;
}
