/* The transport's service thread (lib/transport.h "Model", "Threads"): the lws context,
 * dfnet_transport_run's loop and what it does at the end of each turn, shutdown and
 * destroy, and the inbox through which other threads hand it work (woken by
 * lws_cancel_service(), the one lws call that is thread-safe in 4.1). Also the owner's own
 * event sources on that thread: watched file descriptors and the turn-end hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "lib/log.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

/* A file descriptor watched from the service thread (dfnet_transport_watch_fd): lws polls
 * a dup of it as a raw file; the wsi's opaque user data points here. */
typedef struct fd_watch {
  dfnet_transport_t *t;
  int fd; /* the dup lws owns and closes */
  dfnet_work_fn fn;
  void *user;
} fd_watch_t;

static int base_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);

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
  STAILQ_INIT(&t->inbox);

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
  info.user = t;
  info.pt_serv_buf_size = TRANSPORT__PT_SERV_BUF;
  info.timeout_secs = TRANSPORT__HANDSHAKE_TIMEOUT_S;
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

/* Service thread: the grace of dfnet_transport_shutdown ran out. */
static void shutdown_expired(lws_sorted_usec_list_t *sul) {
  dfnet_transport_t *t = lws_container_of(sul, dfnet_transport_t, shutdown_sul);
  atomic_store(&t->stop, true);
}

/* Service thread: close every open session (CANCELLED, "transport shutting down"). */
static void shutdown_sessions(dfnet_transport_t *t) {
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
}

/* Service thread, after each turn once a shutdown was asked: the first time, tell every
 * session to close and every client endpoint to stop; stop when no session is left. */
static void shutdown_step(dfnet_transport_t *t) {
  if (!t->shutting_down) {
    t->shutting_down = true;
    transport__clients_stop(t);
    shutdown_sessions(t);
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
    transport__wake(t);
}

dfnet_status_t dfnet_transport_run(dfnet_transport_t *t) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  bool expected = false;
  t->service_tid = pthread_self();
  if (!atomic_compare_exchange_strong(&t->serviced, &expected, true))
    return DFNET_STATUS_FAILED_PRECONDITION;
  transport__wake(t); /* pick up work queued before we ran */
  while (!atomic_load(&t->stop)) {
    if (lws_service(t->ctx, 0) < 0)
      break;
    if (t->turn_end_fn != NULL)
      t->turn_end_fn(t->turn_end_user);
    /* what the callbacks of this turn queued, batched per session */
    transport__flush_all(t);
    if (atomic_load(&t->shutdown_by) != 0)
      shutdown_step(t);
    /* Each connection costs ~85 KiB of TLS state even when it never became a session (a
     * port scan, a raw TCP flood); glibc keeps what they freed, so give it back once a
     * batch of them is gone (300 raw connections left the manager 26 MiB bigger). */
    if (t->connections_gone >= 32) {
      t->connections_gone = 0;
      malloc_trim(0);
    }
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
  transport__wake(t);
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
  /* Closing every connection runs the lws callback (CLOSED...) for each session: its
   * pending requests complete CANCELLED and on_session_closed(CANCELLED) runs, on this
   * thread. */
  lws_context_destroy(t->ctx);
  t->ctx = NULL;

  transport__sessions_free(t); /* sessions lws did not tell us about (none expected) */
  free(t->sessions);
  free(t->batch);
  transport__timers_free(t);
  transport__work_t *w;
  while ((w = STAILQ_FIRST(&t->inbox)) != NULL) {
    STAILQ_REMOVE_HEAD(&t->inbox, link);
    free(w);
  }
  for (size_t i = 0; i < t->n_endpoints; i++)
    transport__endpoint_free(t->endpoints[i]);
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* ---- The service thread's inbox ------------------------------------------------------ */

void transport__inbox_push(dfnet_transport_t *t, transport__work_t *w) {
  pthread_mutex_lock(&t->mu);
  STAILQ_INSERT_TAIL(&t->inbox, w, link);
  pthread_mutex_unlock(&t->mu);
  transport__wake_once(t);
}

/* t->mu held: take up to cap sessions that other threads queued to (or closed) into
 * kick[]; returns how many. t->kicks stays set when some are left for the next turn. */
static size_t take_kicks_locked(dfnet_transport_t *t, transport__session_t **kick, size_t cap) {
  size_t nkick = 0;
  bool kicks_left = false;
  if (!t->kicks)
    return 0;
  for (size_t i = 0; i < t->n_sessions; i++) {
    transport__session_t *s = t->sessions[i];
    if (!s->kick)
      continue;
    if (nkick == cap) {
      kicks_left = true;
      break;
    }
    s->kick = false;
    if (s->close_requested)
      lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, TRANSPORT__CLOSE_FLUSH_SECS);
    kick[nkick++] = s;
  }
  t->kicks = kicks_left;
  return nkick;
}

/* Service thread: run one piece of work of the inbox and free it. */
static void run_work(dfnet_transport_t *t, transport__work_t *w) {
  switch (w->kind) {
  case TRANSPORT__WORK_TIMER_CANCEL:
    (void)transport__timer_cancel_here(t, w->timer_id);
    break;
  case TRANSPORT__WORK_REQUEST_CANCEL:
    (void)transport__request_cancel_here(t, w->session, w->request_id, w->notify_peer, w->reason);
    break;
  case TRANSPORT__WORK_HTTP_KICK:
    transport__http_kick(t, w->request_id);
    break;
  }
  free(w);
}

static void drain_inbox(dfnet_transport_t *t) {
  atomic_store(&t->wake_pending, false); /* before looking: see transport__wake_once */
  STAILQ_HEAD(, transport__work) work = STAILQ_HEAD_INITIALIZER(work);
  pthread_mutex_lock(&t->mu);
  transport__timer_t *timers = t->inbox_timers;
  t->inbox_timers = NULL;
  STAILQ_CONCAT(&work, &t->inbox);
  bool dirty = t->deadlines_dirty;
  transport__session_t *kick[64]; /* only this thread frees sessions */
  size_t nkick = take_kicks_locked(t, kick, sizeof(kick) / sizeof(kick[0]));
  bool kicks_left = t->kicks;
  pthread_mutex_unlock(&t->mu);
  /* written at the end of this service turn (a closing session waits for writable) */
  for (size_t i = 0; i < nkick; i++)
    transport__flush_mark(kick[i], 0);
  if (kicks_left)
    transport__wake(t);
  transport__timer_arm_all(t, timers);
  transport__work_t *w;
  while ((w = STAILQ_FIRST(&work)) != NULL) {
    STAILQ_REMOVE_HEAD(&work, link);
    run_work(t, w);
  }
  if (dirty)
    transport__deadline_rearm(t);
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

/* ---- The owner's own work on the service thread ---------------------------------------- */

/* May the owner's hooks be set now: on the service thread, or before it runs. */
static bool hooks_settable(const dfnet_transport_t *t) {
  return dfnet_transport_on_service_thread(t) ||
         (!t->thread_started && !atomic_load(&((dfnet_transport_t *)t)->serviced));
}

dfnet_status_t dfnet_transport_set_turn_end(dfnet_transport_t *t, dfnet_work_fn fn, void *user) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (!hooks_settable(t))
    return DFNET_STATUS_FAILED_PRECONDITION;
  t->turn_end_fn = fn;
  t->turn_end_user = user;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_watch_fd(dfnet_transport_t *t, int fd, dfnet_work_fn fn,
                                        void *user) {
  if (t == NULL || fd < 0 || fn == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (!hooks_settable(t))
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
