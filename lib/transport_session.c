/* Sessions (lib/transport.h "Sessions"): one authenticated websocket each, named by id.
 * Opening one (after the peer's checks), its keepalive and the end of its peer's
 * certificate, closing it (asked, killed, or lost) and what ends with it: its pending
 * requests, its send queue, on_session_closed. The lines a peer can cause are rate-limited
 * per session here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/log.h"
#include "lib/log_limit.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

dfnet_session_id_t dfnet_transport_client_session(dfnet_transport_t *t,
                                                  dfnet_endpoint_id_t endpoint) {
  if (t == NULL || endpoint == 0 || endpoint > t->n_endpoints)
    return 0;
  transport__endpoint_t *ep = t->endpoints[endpoint - 1];
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
  transport__endpoint_t *ep = t->endpoints[endpoint - 1];
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

/* t->mu held: dfnet_transport_session_info's copy of s. */
static dfnet_status_t info_copy_locked(const transport__session_t *s, dfnet_session_info_t *out,
                                       char *buf, size_t cap) {
  dfnet_status_t st = DFNET_STATUS_OK;
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
  out->serial_hex = s->serial_hex; /* lives as long as the session, like the others */
  out->not_after = (int64_t)s->not_after;
  return st;
}

dfnet_status_t dfnet_transport_session_info(dfnet_transport_t *t, dfnet_session_id_t session,
                                            dfnet_session_info_t *out, char *buf, size_t cap) {
  if (t == NULL || out == NULL || buf == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s = transport__session_find_locked(t, session);
  dfnet_status_t st = s ? info_copy_locked(s, out, buf, cap) : DFNET_STATUS_NOT_FOUND;
  pthread_mutex_unlock(&t->mu);
  return st;
}

dfnet_status_t dfnet_transport_session_stats(dfnet_transport_t *t, dfnet_session_id_t session,
                                             dfnet_session_stats_t *out) {
  if (t == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s = transport__session_find_locked(t, session);
  if (s != NULL) {
    *out = s->stats;
    out->queued_bytes = s->q_bytes;
    out->pending_requests = s->p_count;
  }
  pthread_mutex_unlock(&t->mu);
  return s != NULL ? DFNET_STATUS_OK : DFNET_STATUS_NOT_FOUND;
}

dfnet_status_t dfnet_transport_session_close(dfnet_transport_t *t, dfnet_session_id_t session,
                                             dfnet_status_t reason, const char *message) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  bool on_service = dfnet_transport_on_service_thread(t);
  struct lws *wsi = NULL;
  pthread_mutex_lock(&t->mu);
  transport__session_t *s = transport__session_find_locked(t, session);
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
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, TRANSPORT__CLOSE_FLUSH_SECS);
    lws_callback_on_writable(wsi);
  } else {
    transport__wake_once(t);
  }
  return DFNET_STATUS_OK;
}

/* Service thread: the keepalive tick of a session. */
static void keepalive_cb(lws_sorted_usec_list_t *sul) {
  transport__session_t *s = lws_container_of(sul, transport__session_t, ka_sul);
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
    transport__session_kill(s, DFNET_STATUS_UNAVAILABLE, msg);
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
  transport__session_t *s = lws_container_of(sul, transport__session_t, expiry_sul);
  char msg[160];
  struct tm tm;
  gmtime_r(&s->not_after, &tm);
  snprintf(msg, sizeof msg, "the certificate of %s expired at %04d-%02d-%02dT%02d:%02d:%02dZ",
           s->peer_name, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec);
  DFNET_LOGW(SUB, s->peer_name, "closing session %llu: %s", (unsigned long long)s->id, msg);
  (void)dfnet_transport_session_close(s->t, s->id, DFNET_STATUS_UNAUTHENTICATED, msg);
}

void transport__session_kill(transport__session_t *s, dfnet_status_t reason, const char *msg) {
  s->kill_reason_set = true;
  s->kill_reason = reason;
  snprintf(s->kill_msg, sizeof(s->kill_msg), "%s", msg);
  lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void transport__peer_address(struct lws *wsi, char *out, size_t cap) {
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

void transport__peer_warn(transport__session_t *s, const char *kind, const char *fmt, ...) {
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
  transport__session_t *s = user;
  DFNET_LOGW(SUB, s->peer_name, "%u more %s not logged before the session closed", count, kind);
}

/* Give s its id and put it in t's session table (takes t->mu). False when out of memory. */
static bool session_table_add(dfnet_transport_t *t, transport__session_t *s) {
  pthread_mutex_lock(&t->mu);
  if (t->n_sessions == t->cap_sessions) {
    size_t cap = t->cap_sessions ? t->cap_sessions * 2 : 8;
    transport__session_t **n = realloc(t->sessions, cap * sizeof(*n));
    if (n == NULL) {
      pthread_mutex_unlock(&t->mu);
      return false;
    }
    t->sessions = n;
    t->cap_sessions = cap;
  }
  s->id = t->next_session_id++;
  t->sessions[t->n_sessions++] = s;
  pthread_mutex_unlock(&t->mu);
  return true;
}

transport__session_t *transport__session_open(transport__endpoint_t *ep, struct lws *wsi,
                                              const transport__peer_t *peer,
                                              const char *subprotocol) {
  dfnet_transport_t *t = ep->t;
  transport__session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->t = t;
  s->ep = ep;
  s->wsi = wsi;
  STAILQ_INIT(&s->queue);
  s->next_id = ep->is_client ? 1 : 2;
  s->role = peer->role;
  snprintf(s->peer_name, sizeof(s->peer_name), "%s", peer->cn);
  snprintf(s->role_name, sizeof(s->role_name), "%s", peer->ou);
  snprintf(s->serial_hex, sizeof(s->serial_hex), "%s", peer->serial_hex);
  snprintf(s->subprotocol, sizeof(s->subprotocol), "%s", subprotocol);
  if (ep->is_client)
    snprintf(s->peer_address, sizeof(s->peer_address), "%s%s%s:%d",
             strchr(ep->host, ':') ? "[" : "", ep->host, strchr(ep->host, ':') ? "]" : "",
             ep->port);
  else
    transport__peer_address(wsi, s->peer_address, sizeof(s->peer_address));
  s->last_rx_ms = dfnet_transport_now_ms();
  s->tls_resumed = lws_tls_session_resumed(wsi) != 0;

  int one = 1, fd = lws_get_socket_fd(wsi);
  if (fd >= 0)
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  if (!session_table_add(t, s)) {
    free(s);
    return NULL;
  }

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
                                 .tls_resumed = s->tls_resumed,
                                 .serial_hex = s->serial_hex,
                                 .not_after = (int64_t)s->not_after};
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

/* Why s ended (its on_session_closed reason and message) and how its pending requests end
 * (*call_status). */
static dfnet_status_t close_outcome(const transport__session_t *s, const char *lws_reason,
                                    const char **msg, dfnet_status_t *call_status) {
  dfnet_status_t reason;
  if (s->close_requested) {
    reason = s->close_reason;
    *msg = s->close_msg;
    /* our requests end CANCELLED, or with the reason we closed for (UNAUTHENTICATED when
     * the peer's certificate ran out) */
    *call_status = reason == DFNET_STATUS_OK ? DFNET_STATUS_CANCELLED : reason;
  } else if (s->t->destroying) {
    reason = DFNET_STATUS_CANCELLED;
    *msg = "transport destroyed";
    *call_status = DFNET_STATUS_CANCELLED;
  } else if (s->kill_reason_set) {
    reason = s->kill_reason;
    *msg = s->kill_msg;
    /* a status the peer gave in its close frame stands for our requests too */
    *call_status = reason == DFNET_STATUS_CANCELLED || s->peer_status_given
                       ? reason
                       : DFNET_STATUS_UNAVAILABLE;
  } else {
    reason = DFNET_STATUS_UNAVAILABLE;
    *msg = lws_reason ? lws_reason : "connection closed";
    *call_status = DFNET_STATUS_UNAVAILABLE;
  }
  return reason;
}

/* Complete every request of `pending` with status and free the messages of `queue`. */
static void discard(transport__pending_t *pending, transport__outmsg_t *queue,
                    dfnet_status_t status) {
  transport__pending_t *p, *pn;
  DL_FOREACH_SAFE(pending, p, pn) {
    transport__pending_complete(p, status);
  }
  for (transport__outmsg_t *m = queue, *mn; m; m = mn) {
    mn = STAILQ_NEXT(m, link);
    free(m);
  }
}

void transport__session_finalize(transport__session_t *s, const char *lws_reason) {
  dfnet_transport_t *t = s->t;
  transport__endpoint_t *ep = s->ep;
  lws_sul_cancel(&s->ka_sul);
  transport__flush_unlink(s);
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->n_sessions; i++) {
    if (t->sessions[i] == s) {
      t->sessions[i] = t->sessions[--t->n_sessions];
      break;
    }
  }
  if (ep->is_client && ep->session == s->id)
    ep->session = 0;
  transport__pending_t *pend = s->pending;
  s->pending = NULL;
  transport__outmsg_t *q = STAILQ_FIRST(&s->queue);
  STAILQ_INIT(&s->queue);
  size_t freed = s->q_bytes + s->rx_cap;
  s->q_bytes = 0;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);

  dfnet_status_t call_status;
  const char *msg;
  dfnet_status_t reason = close_outcome(s, lws_reason, &msg, &call_status);
  discard(pend, q, call_status);
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

void transport__sessions_free(dfnet_transport_t *t) {
  while (t->n_sessions > 0) {
    transport__session_t *s = t->sessions[--t->n_sessions];
    discard(s->pending, STAILQ_FIRST(&s->queue), DFNET_STATUS_CANCELLED);
    free(s->rx_buf);
    free(s);
  }
}
