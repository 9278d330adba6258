/* The driver host's link to the host agent: length-prefixed Envelopes on a socketpair
 * (docs/design.md "The wire"; lib/frame.h). Writes come from any thread under write_mu
 * (link_write.c); reads happen on the link thread (dh__link_run), which also expires
 * deadlines and reaps stopped drivers.
 *
 * Deferred writes (link_write.c, see its top): the link thread writes frames deferred for
 * DH_DEFER_MAX_MS itself (flush_overdue), and sets link_asleep before it sleeps in poll()
 * with no timeout (link_timeout).
 *
 * Descriptors. The agent sends a DriverStart with the descriptors of its driver's resources
 * as SCM_RIGHTS (host/supervisor/supervisor.h dfnet_supervisor_send_fds), in a sendmsg that
 * begins with the frame. The kernel hands them to the recvmsg that reads that first byte
 * (and ends that read there), so they arrive no later than the frame, in the order the
 * frames were sent: each read's descriptors join a FIFO, and a DriverStart takes as many
 * as its `resources` names from its head when it is handled. A read whose control buffer
 * was too small (MSG_CTRUNC: a sender that is not the agent's supervisor) is logged and
 * the descriptors that came are closed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <utlist.h>

#include "lib/array.h"
#include "host/driver_host/runtime.h"
#include "lib/frame.h"
#include "lib/log.h"

#define LINK_SUBSYS "driver-host"
#define LINK_READ_CHUNK (64u * 1024u)
/* How long the link thread runs a dispatcher's tasks before the rescuer reads the link. */
#define DH_RESCUE_AFTER_MS 2
/* Descriptors one read of the link takes at most (the agent sends at most
 * DFNET_RESOURCES_MAX with a frame). */
#define DH_READ_FDS_MAX 32

void dh__strlcpy(char *dst, const char *src, size_t cap) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

dfnet_status_t dh__host_init(dh_host_t *host, int fd) {
  memset(host, 0, sizeof *host);
  host->fd = fd;
  host->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (host->wake_fd < 0) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd: %s", strerror(errno));
    return DFNET_STATUS_INTERNAL;
  }
  host->rescue_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  host->release_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  host->wenv = malloc(sizeof *host->wenv);
  if (host->rescue_fd < 0 || host->release_fd < 0 || host->wenv == NULL) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "cannot set up the link: %s", strerror(errno));
    free(host->wenv);
    if (host->rescue_fd >= 0)
      close(host->rescue_fd);
    if (host->release_fd >= 0)
      close(host->release_fd);
    close(host->wake_fd);
    return DFNET_STATUS_INTERNAL;
  }
  pthread_mutex_init(&host->role_mu, NULL);
  atomic_store(&host->inline_running, false);
  atomic_store(&host->rescuer_active, false);
  atomic_store(&host->rescuer_quit, false);
  pthread_mutex_init(&host->write_mu, NULL);
  pthread_mutex_init(&host->calls_mu, NULL);
  pthread_mutex_init(&host->drivers_mu, NULL);
  atomic_store(&host->link_closed, false);
  atomic_store(&host->starts_pending, 0);
  atomic_store(&host->next_id, DH_OWN_ID_BASE);
  atomic_store(&host->write_failed, false);
  atomic_store(&host->deferred_since_ns, 0);
  atomic_store(&host->link_asleep, false);
  return DFNET_STATUS_OK;
}

void dh__host_fini(dh_host_t *host) {
  free(host->wenv);
  free(host->out);
  close(host->wake_fd);
  close(host->rescue_fd);
  close(host->release_fd);
  pthread_mutex_destroy(&host->role_mu);
  pthread_mutex_destroy(&host->write_mu);
  pthread_mutex_destroy(&host->calls_mu);
  pthread_mutex_destroy(&host->drivers_mu);
}

void dh__link_deadline_added_locked(dh_host_t *host, uint64_t deadline_ns) {
  /* 0: no deadline is awaited, or the link thread is computing the next one right now */
  if (host->next_expiry_ns != 0 && host->next_expiry_ns <= deadline_ns)
    return;
  host->next_expiry_ns = deadline_ns;
  uint64_t one = 1;
  if (write(host->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd write: %s", strerror(errno));
}

void dh__host_queue_reap(dh_host_t *host, dfnet_driver_t *drv) {
  dh_reap_t *r = malloc(sizeof *r);
  uint64_t one = 1;
  pthread_mutex_lock(&host->calls_mu);
  if (r != NULL) {
    r->driver = drv;
    LL_PREPEND(host->reap, r);
  }
  pthread_mutex_unlock(&host->calls_mu);
  if (r == NULL)
    DFNET_LOGE(LINK_SUBSYS, drv->moniker, "out of memory queueing the driver's reaping");
  if (write(host->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd write: %s", strerror(errno));
}

static void reap_stopped(dh_host_t *host) {
  uint64_t v;
  if (read(host->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd read: %s", strerror(errno));
  pthread_mutex_lock(&host->calls_mu);
  dh_reap_t *list = host->reap, *r, *tmp;
  host->reap = NULL;
  pthread_mutex_unlock(&host->calls_mu);
  LL_FOREACH_SAFE(list, r, tmp) {
    pthread_mutex_lock(&host->drivers_mu);
    LL_DELETE(host->drivers, r->driver); /* there since its start (driver.c) */
    pthread_mutex_unlock(&host->drivers_mu);
    dh__driver_reap(r->driver);
    free(r);
  }
}

static void handle_driver_stop(dh_host_t *host, uint64_t id, const dfnet_v1_DriverStop *m) {
  /* A driver that has stopped but is not reaped yet is gone too: NOT_FOUND, as after. */
  dfnet_driver_t *drv = dh__driver_find_live(host, m->node, NULL);
  if (drv == NULL) {
    char msg[600];
    snprintf(msg, sizeof msg, "no driver on node %s in this driver host", m->node);
    DFNET_LOGW(LINK_SUBSYS, m->node, "DriverStop: %s", msg);
    dh__link_send_status(host, id, DFNET_STATUS_NOT_FOUND, msg);
    return;
  }
  dh__driver_begin_stop(drv, id);
}

/* ---- descriptors that came with the frames ---------------------------------------- */

/* The descriptors read and not yet taken by a DriverStart, oldest first. */
typedef struct fd_fifo {
  int *fds;
  size_t head, count, cap;
} fd_fifo_t;

static void fifo_push(fd_fifo_t *q, int fd) {
  if (q->head > 0 && q->head + q->count == q->cap) {
    memmove(q->fds, q->fds + q->head, q->count * sizeof *q->fds);
    q->head = 0;
  }
  int *grown =
      dfnet_array_grow(q->fds, q->head + q->count, &q->cap, sizeof *grown, DH_READ_FDS_MAX);
  if (grown == NULL) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "out of memory keeping a descriptor of the link: closed");
    close(fd);
    return;
  }
  q->fds = grown;
  q->fds[q->head + q->count++] = fd;
}

/* Take up to n descriptors (malloc'd into *out; NULL for none) from the head; returns how
 * many. Closes them when there is no memory for the array. */
static size_t fifo_take(fd_fifo_t *q, size_t n, int **out) {
  *out = NULL;
  if (n > q->count)
    n = q->count;
  if (n == 0)
    return 0;
  int *fds = malloc(n * sizeof *fds);
  for (size_t i = 0; i < n; i++) {
    int fd = q->fds[q->head + i];
    if (fds != NULL)
      fds[i] = fd;
    else
      close(fd);
  }
  q->head += n;
  q->count -= n;
  if (q->count == 0)
    q->head = 0;
  *out = fds;
  return fds != NULL ? n : 0;
}

static void fifo_free(fd_fifo_t *q) {
  for (size_t i = 0; i < q->count; i++)
    close(q->fds[q->head + i]);
  free(q->fds);
  memset(q, 0, sizeof *q);
}

/* The reader's state of the link (role_mu). */
struct dh_link_state {
  dfnet_frame_reader_t reader;
  dfnet_envelope_t *env;
  uint8_t *chunk;
  bool watched_for_nothing;
  fd_fifo_t fds; /* descriptors read, not yet taken by their DriverStart */
};

static void handle_frame(dh_host_t *host, dfnet_envelope_t *env, const uint8_t *frame, size_t len) {
  const char *err = NULL;
  dfnet_status_t st = dfnet_envelope_decode(frame, len, DFNET_FRAME_MAX_DEFAULT, env, &err);
  if (st == DFNET_STATUS_UNIMPLEMENTED) {
    DFNET_LOGW(LINK_SUBSYS, NULL, "envelope id %llu with no known member: UNIMPLEMENTED",
               (unsigned long long)env->pb.id);
    dh__link_send_status(host, env->pb.id, st, "message not understood by dfnet-driver-host");
    return;
  }
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(LINK_SUBSYS, NULL, "dropping a malformed frame (%zu bytes): %s: %s", len,
               dfnet_status_str(st), err ? err : "?");
    return;
  }
  uint64_t id = env->pb.id;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_driver_start_tag: {
    int *fds = NULL;
    size_t nfds = fifo_take(&host->ls->fds, env->pb.msg.driver_start.resources_count, &fds);
    if (host->link_down) {
      for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
      free(fds);
      return;
    }
    dh__driver_handle_start(host, id, &env->pb.msg.driver_start, env->bulk, fds, nfds);
    break;
  }
  case dfnet_v1_Envelope_driver_stop_tag:
    handle_driver_stop(host, id, &env->pb.msg.driver_stop);
    break;
  case dfnet_v1_Envelope_driver_suspend_tag:
    dh__driver_handle_suspend(host, id, &env->pb.msg.driver_suspend);
    break;
  case dfnet_v1_Envelope_driver_resume_tag:
    dh__driver_handle_resume(host, id, &env->pb.msg.driver_resume);
    break;
  case dfnet_v1_Envelope_call_tag:
    dh__call_handle(host, id, &env->pb.msg.call, env->bulk);
    break;
  case dfnet_v1_Envelope_cancel_tag:
    dh__call_handle_cancel(host, id);
    break;
  case dfnet_v1_Envelope_stream_credit_tag:
    dh__call_handle_credit(host, id, env->pb.msg.stream_credit.credit);
    break;
  case dfnet_v1_Envelope_status_tag: {
    dfnet_status_t code = (dfnet_status_t)env->pb.msg.status.code;
    const char *message = env->pb.msg.status.message;
    if (dh__artifact_waiting(id)) { /* an ArtifactOpen's answer: OK brings one descriptor */
      int *fds = NULL;
      int fd = code == DFNET_STATUS_OK && fifo_take(&host->ls->fds, 1, &fds) == 1 ? fds[0] : -1;
      free(fds);
      if (code == DFNET_STATUS_OK && fd < 0)
        DFNET_LOGE(LINK_SUBSYS, NULL, "ArtifactOpen %llu answered OK without a descriptor",
                   (unsigned long long)id);
      dh__artifact_answer(id, code, fd);
      break;
    }
    if (!dh__driver_child_status(host, id, code, message) &&
        !dh__client_handle_status(host, id, code, message) && code != DFNET_STATUS_OK)
      DFNET_LOGW(LINK_SUBSYS, NULL, "status %s for request %llu, not in flight: %s",
                 dfnet_status_str(code), (unsigned long long)id, message);
    break;
  }
  case dfnet_v1_Envelope_reply_tag:
    if (dh__client_handle_reply(host, id, &env->pb.msg.reply, env->bulk))
      break;
    DFNET_LOGW(LINK_SUBSYS, NULL, "Reply for %llu, no call of this driver host: dropped",
               (unsigned long long)id);
    break;
  default:
    DFNET_LOGW(LINK_SUBSYS, NULL, "unexpected %s (id %llu): UNIMPLEMENTED",
               dfnet_envelope_msg_name(env->pb.which_msg), (unsigned long long)id);
    dh__link_send_status(host, id, DFNET_STATUS_UNIMPLEMENTED,
                         "dfnet-driver-host does not handle this message");
    break;
  }
}

/* The link is gone: stop every driver (no one to answer). */
static void link_down(dh_host_t *host) {
  if (host->link_down)
    return;
  host->link_down = true;
  atomic_store(&host->link_closed, true);
  if (host->fatal)
    DFNET_LOGE(LINK_SUBSYS, NULL, "the confinement failed: stopping every driver and exiting");
  else
    DFNET_LOGI(LINK_SUBSYS, NULL, "link to the host agent closed: stopping every driver");
  dh__client_link_down(host); /* no answer will come: the drivers' own calls end now */
  dh__artifact_link_down();
  dfnet_driver_t *d;
  LL_FOREACH(host->drivers, d) {
    dh__driver_begin_stop(d, 0);
  }
}

/* The poll() timeout (ms, -1: none) for the link thread, given `timeout` for deadlines:
 *   - frames are deferred: wake when the oldest is DH_DEFER_MAX_MS old;
 *   - none, but a dispatcher is busy (it may defer while we sleep) and the last wait was
 *     not such a watch that timed out for nothing: wake within DH_DEFER_MAX_MS to look;
 *   - otherwise sleep with link_asleep set (*asleep): dispatchers then defer nothing.
 * The middle case keeps replies batched while calls stream in; its "once" ends the
 * watching when a task runs long with nothing deferred. */
static int link_timeout(dh_host_t *host, int timeout, bool watched_for_nothing, bool *asleep,
                        bool *watching) {
  *asleep = false;
  *watching = false;
  uint64_t since = atomic_load(&host->deferred_since_ns);
  if (since == 0 && !watched_for_nothing) {
    dfnet_driver_t *d;
    LL_FOREACH(host->drivers, d) {
      if (dh__dispatcher_busy(&d->dispatcher)) {
        *watching = true;
        return timeout >= 0 && timeout < DH_DEFER_MAX_MS ? timeout : DH_DEFER_MAX_MS;
      }
    }
  }
  if (since == 0) {
    atomic_store(&host->link_asleep, true);
    since = atomic_load(&host->deferred_since_ns);
    if (since == 0) {
      *asleep = true;
      return timeout;
    }
    atomic_store(&host->link_asleep, false);
  }
  uint64_t due = since + (uint64_t)DH_DEFER_MAX_MS * 1000000u, now = dh__now_ns();
  int ms = due <= now ? 0 : (int)((due - now + 999999u) / 1000000u);
  return timeout >= 0 && timeout < ms ? timeout : ms;
}

/* Write deferred frames that waited DH_DEFER_MAX_MS (their dispatcher is stuck in a task). */
static void flush_overdue(dh_host_t *host) {
  uint64_t since = atomic_load(&host->deferred_since_ns);
  if (since != 0 && dh__now_ns() - since >= (uint64_t)DH_DEFER_MAX_MS * 1000000u)
    dh__link_flush_deferred(host);
}

/* ---- the link turn: whoever holds role_mu reads the link ----------------------------- */

/* A frame of the link, or one skipped (dfnet_frame_fn; user: the host). Link thread. */
static void link_frame(void *user, dfnet_status_t st, const uint8_t *frame, size_t len) {
  dh_host_t *host = user;
  if (frame == NULL)
    DFNET_LOGW(LINK_SUBSYS, NULL, "frame skipped: %s", dfnet_status_str(st));
  else
    handle_frame(host, host->ls->env, frame, len);
}

/* Read what the link has into ls->chunk: recvmsg(2) with room for DH_READ_FDS_MAX
 * descriptors, which join ls->fds (read(2) when the link is no socket). Returns what read
 * returns. */
static ssize_t link_read(dh_host_t *host, struct dh_link_state *ls) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * DH_READ_FDS_MAX)];
  } ctl;
  struct iovec iov = {.iov_base = ls->chunk, .iov_len = LINK_READ_CHUNK};
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t got = recvmsg(host->fd, &msg, MSG_CMSG_CLOEXEC);
  if (got < 0 && errno == ENOTSOCK)
    return read(host->fd, ls->chunk, LINK_READ_CHUNK);
  if (got < 0)
    return got;
  bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  size_t closed = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
      if (truncated) {
        close(fd);
        closed++;
      } else {
        fifo_push(&ls->fds, fd);
      }
    }
  }
  if (truncated)
    DFNET_LOGE(LINK_SUBSYS, NULL,
               "a read of the link brought more than %d descriptors (MSG_CTRUNC): the %zu "
               "that came are closed; a DriverStart that needed them will fail",
               DH_READ_FDS_MAX, closed);
  return got;
}

static void run_inline(dh_host_t *host, dh_dispatcher_t *d);

/* One turn of reading the link: expire calls' deadlines and starts' timeouts, wait (bounded
 * by the next of them and as link_timeout says), reap, read, handle
 * the frames read. The caller holds role_mu. The rescuer (is_rescuer) also wakes on
 * release_fd, and wakes every dispatcher it posted to; the link thread runs the tasks of a
 * sole idle one itself (run_inline). Returns -1 on a fatal poll error, else 0. */
static int link_turn(dh_host_t *host, bool is_rescuer) {
  struct dh_link_state *ls = host->ls;
  bool asleep, watching;
  int calls = dh__call_expire(host), starts = dh__driver_expire_starts(host);
  int due = calls < 0 ? starts : starts < 0 || calls < starts ? calls : starts;
  int timeout = link_timeout(host, due, ls->watched_for_nothing, &asleep, &watching);
  struct pollfd pfd[3] = {{.fd = host->wake_fd, .events = POLLIN},
                          {.fd = host->link_down ? -1 : host->fd, .events = POLLIN},
                          {.fd = is_rescuer ? host->release_fd : -1, .events = POLLIN}};
  int n = poll(pfd, 3, timeout);
  if (asleep)
    atomic_store(&host->link_asleep, false);
  flush_overdue(host);
  ls->watched_for_nothing = watching && n == 0 && atomic_load(&host->deferred_since_ns) == 0;
  if (n < 0) {
    if (errno == EINTR)
      return 0;
    DFNET_LOGE(LINK_SUBSYS, NULL, "poll: %s", strerror(errno));
    return -1;
  }
  if (pfd[0].revents & POLLIN)
    reap_stopped(host);
  if (host->link_down || pfd[1].revents == 0)
    return 0;
  ssize_t got = link_read(host, ls);
  if (got < 0 && (errno == EINTR || errno == EAGAIN))
    return 0;
  if (got <= 0) {
    link_down(host);
    return 0;
  }
  dh__dispatcher_hold_signals();
  dfnet_frame_reader_feed_all(&ls->reader, ls->chunk, (size_t)got, link_frame, host);
  dh_dispatcher_t *one = dh__dispatcher_release_signals(!is_rescuer);
  if (one != NULL)
    run_inline(host, one);
  if (atomic_load(&host->write_failed) || host->fatal)
    link_down(host);
  return 0;
}

static void set_rescue_timer(dh_host_t *host, long ns) {
  struct itimerspec its = {.it_value = {.tv_sec = 0, .tv_nsec = ns}};
  if (timerfd_settime(host->rescue_fd, 0, &its, NULL) != 0)
    DFNET_LOGE(LINK_SUBSYS, NULL, "timerfd_settime: %s", strerror(errno));
}

/* The link thread runs d's ready tasks itself, saving the wake-up of d's thread (the
 * usual case: one read brought calls for one idle driver). A handler that does not
 * return within DH_RESCUE_AFTER_MS must not keep the link unread (other drivers' calls,
 * Cancel, deadlines), so the link role is given up for the run: the rescuer thread
 * takes it if the run outlasts its timer, and gives it back when told (release_fd). The
 * atomics: the rescuer sets rescuer_active then reads inline_running; the link thread
 * clears inline_running then reads rescuer_active (one of them sees the other). */
static void run_inline(dh_host_t *host, dh_dispatcher_t *d) {
  if (d->allow_sync_calls || atomic_load(&d->running)) {
    dh__dispatcher_wake(d); /* may block / busy: its own thread, as always */
    return;
  }
  atomic_store(&host->inline_running, true);
  set_rescue_timer(host, DH_RESCUE_AFTER_MS * 1000000L);
  pthread_mutex_unlock(&host->role_mu);
  bool ran = dh__dispatcher_run_here(d);
  atomic_store(&host->inline_running, false);
  if (atomic_load(&host->rescuer_active)) {
    uint64_t one = 1;
    if (write(host->release_fd, &one, sizeof one) < 0 && errno != EAGAIN)
      DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd write: %s", strerror(errno));
  }
  set_rescue_timer(host, 0);
  if (!ran)
    dh__dispatcher_wake(d);
  pthread_mutex_lock(&host->role_mu);
}

static void *rescuer_main(void *arg) {
  dh_host_t *host = arg;
  for (;;) {
    struct pollfd p = {.fd = host->rescue_fd, .events = POLLIN};
    if (poll(&p, 1, -1) < 0 && errno != EINTR)
      break;
    uint64_t ticks;
    if (read(host->rescue_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
      break;
    if (atomic_load(&host->rescuer_quit))
      break;
    atomic_store(&host->rescuer_active, true);
    if (atomic_load(&host->inline_running)) {
      pthread_mutex_lock(&host->role_mu);
      if (atomic_load(&host->inline_running))
        DFNET_LOGD(LINK_SUBSYS, NULL,
                   "a task ran %d ms on the link thread: reading the link meanwhile",
                   DH_RESCUE_AFTER_MS);
      while (atomic_load(&host->inline_running))
        if (link_turn(host, true) < 0)
          break;
      pthread_mutex_unlock(&host->role_mu);
    }
    atomic_store(&host->rescuer_active, false);
    uint64_t v;
    if (read(host->release_fd, &v, sizeof v) < 0 && errno != EAGAIN)
      DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd read: %s", strerror(errno));
  }
  return NULL;
}

dfnet_status_t dh__link_start_rescuer(dh_host_t *host) {
  if (host->rescuer_started)
    return DFNET_STATUS_OK;
  if (pthread_create(&host->rescuer, NULL, rescuer_main, host) != 0) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "cannot create the rescuer thread");
    return DFNET_STATUS_INTERNAL;
  }
  host->rescuer_started = true;
  return DFNET_STATUS_OK;
}

int dh__link_run(dh_host_t *host) {
  struct dh_link_state ls = {.watched_for_nothing = false};
  ls.env = malloc(sizeof *ls.env);
  ls.chunk = malloc(LINK_READ_CHUNK);
  int rc = 0;
  if (ls.env == NULL || ls.chunk == NULL) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "out of memory");
    rc = 1;
    goto alloc_failed;
  }
  dfnet_frame_reader_init(&ls.reader, DFNET_FRAME_MAX_DEFAULT);
  host->ls = &ls;
  pthread_mutex_lock(&host->role_mu);
  /* Sandboxed, the rescuer starts once the process is confined (sandbox.c). */
  if (host->sandbox == NULL && dh__link_start_rescuer(host) != DFNET_STATUS_OK)
    rc = 1;
  while (rc == 0 && (!host->link_down || host->drivers != NULL)) {
    if (link_turn(host, false) < 0) {
      rc = 1;
      break;
    }
  }
  if (host->fatal)
    rc = 1;
  pthread_mutex_unlock(&host->role_mu);
  if (host->rescuer_started) {
    atomic_store(&host->rescuer_quit, true);
    set_rescue_timer(host, 1);
    pthread_join(host->rescuer, NULL);
  }
  host->ls = NULL;
  dfnet_frame_reader_free(&ls.reader);
  fifo_free(&ls.fds);
alloc_failed:
  free(ls.chunk);
  free(ls.env);
  return rc;
}
