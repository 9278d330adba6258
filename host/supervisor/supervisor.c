/* The driver-host supervisor (host/supervisor/supervisor.h).
 *
 * One thread (io_main) polls every driver host's socket and pidfd plus a wake eventfd;
 * what it reads is queued as events, whose bookkeeping and callbacks run in
 * dfnet_supervisor_dispatch() on the agent's thread. sup->mu guards the host list, each
 * host's out queue, pending requests and nodes, and the event queue. A host record is
 * freed by dispatch() after its exit event, which the io thread queues as its last touch
 * of the record (io_done).
 */
#include "host/supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/frame.h"
#include "lib/log.h"

#define SV_SUBSYS "supervisor"
#define SV_CHILD_FD 3
#define SV_READ_CHUNK (64u * 1024u)
#define SV_DEFAULT_GRACE_MS 5000u

typedef enum pend_kind { PEND_CALL, PEND_START, PEND_STOP } pend_kind_t;

typedef struct pend {
  uint64_t link_id;
  uint64_t tag; /* the agent's id */
  pend_kind_t kind;
  char *node;   /* DriverStart/DriverStop: the node */
} pend_t;

typedef struct out_buf {
  struct out_buf *next;
  size_t len, off;
  uint8_t data[];
} out_buf_t;

typedef struct sv_host {
  struct sv_host *next;
  uint64_t id;
  pid_t pid;
  int fd;
  int pidfd;
  bool eof;          /* io thread: the socket said EOF */
  bool io_done;      /* io thread: exit queued, fds closed */
  bool exited;       /* the exit was seen: sends are refused */
  bool closing;
  bool killed;
  uint64_t kill_at_ns;
  dfnet_frame_reader_t reader; /* io thread only */
  out_buf_t *out_head, *out_tail;
  pend_t *pend;
  size_t npend, cap_pend;
  char **nodes;
  size_t nnodes;
  uint64_t next_link_id;
} sv_host_t;

typedef enum ev_kind { EV_FRAME, EV_EXIT } ev_kind_t;

typedef struct sv_event {
  struct sv_event *next;
  ev_kind_t kind;
  sv_host_t *host;
  int exit_code;
  int signal;
  size_t len;
  uint8_t data[];
} sv_event_t;

struct dfnet_supervisor {
  dfnet_supervisor_config_t cfg;
  char *path;
  char **extra;
  size_t nextra;
  pthread_t thread;
  pthread_mutex_t mu;
  int io_wake;      /* eventfd: wakes the io thread */
  int ready_fd;     /* eventfd: events queued for dispatch */
  bool stopping;
  sv_host_t *hosts;
  sv_event_t *ev_head, *ev_tail;
  uint64_t next_host_id;
  dfnet_envelope_t *denv; /* dispatch only */
  uint64_t late_frames;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void poke(int efd) {
  uint64_t one = 1;
  if (write(efd, &one, sizeof one) < 0 && errno != EAGAIN)
    DFNET_LOGE(SV_SUBSYS, NULL, "eventfd write: %s", strerror(errno));
}

static void drain_efd(int efd) {
  uint64_t v;
  if (read(efd, &v, sizeof v) < 0 && errno != EAGAIN)
    DFNET_LOGE(SV_SUBSYS, NULL, "eventfd read: %s", strerror(errno));
}

static sv_host_t *find_host(dfnet_supervisor_t *sup, uint64_t id) {
  for (sv_host_t *h = sup->hosts; h != NULL; h = h->next)
    if (h->id == id)
      return h;
  return NULL;
}

/* ---- io thread ------------------------------------------------------------------------- */

/* Queue an event. sup->mu held. */
static void queue_event_locked(dfnet_supervisor_t *sup, sv_event_t *ev) {
  ev->next = NULL;
  if (sup->ev_tail != NULL)
    sup->ev_tail->next = ev;
  else
    sup->ev_head = ev;
  sup->ev_tail = ev;
}

static void notify(dfnet_supervisor_t *sup) {
  poke(sup->ready_fd);
  if (sup->cfg.wake != NULL)
    sup->cfg.wake(sup->cfg.arg);
}

/* Read what the socket has. Returns true when something was queued. */
static bool read_host(dfnet_supervisor_t *sup, sv_host_t *h, uint8_t *chunk) {
  bool queued = false;
  while (!h->eof) {
    ssize_t got = read(h->fd, chunk, SV_READ_CHUNK);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0 && errno == EAGAIN)
      break;
    if (got <= 0) {
      h->eof = true;
      break;
    }
    size_t off = 0;
    while (off < (size_t)got) {
      size_t used = 0, flen = 0;
      const uint8_t *frame = NULL;
      dfnet_status_t st = dfnet_frame_reader_feed(&h->reader, chunk + off, (size_t)got - off,
                                                  &used, &frame, &flen);
      off += used;
      if (st != DFNET_STATUS_OK)
        DFNET_LOGW(SV_SUBSYS, NULL, "driver host %llu: frame skipped: %s",
                   (unsigned long long)h->id, dfnet_status_str(st));
      if (frame == NULL)
        continue;
      sv_event_t *ev = malloc(sizeof *ev + flen);
      if (ev == NULL) {
        DFNET_LOGE(SV_SUBSYS, NULL, "out of memory: frame of driver host %llu dropped",
                   (unsigned long long)h->id);
        continue;
      }
      ev->kind = EV_FRAME;
      ev->host = h;
      ev->len = flen;
      memcpy(ev->data, frame, flen);
      pthread_mutex_lock(&sup->mu);
      queue_event_locked(sup, ev);
      pthread_mutex_unlock(&sup->mu);
      queued = true;
    }
  }
  return queued;
}

/* Write the out queue without blocking. sup->mu held. */
static void flush_locked(sv_host_t *h) {
  while (h->out_head != NULL && !h->exited) {
    out_buf_t *b = h->out_head;
    ssize_t n = send(h->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      if (errno != EAGAIN) {
        /* The peer is going away; its exit will answer what is pending. */
        DFNET_LOGD(SV_SUBSYS, NULL, "driver host %llu: write: %s", (unsigned long long)h->id,
                   strerror(errno));
        while (h->out_head != NULL) {
          out_buf_t *next = h->out_head->next;
          free(h->out_head);
          h->out_head = next;
        }
        h->out_tail = NULL;
      }
      return;
    }
    b->off += (size_t)n;
    if (b->off < b->len)
      return;
    h->out_head = b->next;
    if (h->out_head == NULL)
      h->out_tail = NULL;
    free(b);
  }
}

/* The process ended: collect its status, read its last frames, queue the exit. */
static void reap_host(dfnet_supervisor_t *sup, sv_host_t *h, uint8_t *chunk) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  while (waitid(P_PIDFD, (id_t)h->pidfd, &info, WEXITED) != 0 && errno == EINTR)
    ;
  read_host(sup, h, chunk);
  sv_event_t *ev = calloc(1, sizeof *ev);
  pthread_mutex_lock(&sup->mu);
  h->exited = true;
  h->io_done = true;
  close(h->fd);
  close(h->pidfd);
  h->fd = h->pidfd = -1;
  while (h->out_head != NULL) {
    out_buf_t *next = h->out_head->next;
    free(h->out_head);
    h->out_head = next;
  }
  h->out_tail = NULL;
  if (ev != NULL) {
    ev->kind = EV_EXIT;
    ev->host = h;
    ev->exit_code = info.si_code == CLD_EXITED ? info.si_status : -1;
    ev->signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
    queue_event_locked(sup, ev);
  }
  pthread_mutex_unlock(&sup->mu);
  dfnet_frame_reader_free(&h->reader);
  if (ev == NULL)
    DFNET_LOGE(SV_SUBSYS, NULL, "out of memory: exit of driver host %llu not reported",
               (unsigned long long)h->id);
}

static void *io_main(void *arg) {
  dfnet_supervisor_t *sup = arg;
  uint8_t *chunk = malloc(SV_READ_CHUNK);
  struct pollfd *pfd = NULL;
  sv_host_t **who = NULL;
  size_t cap = 0;
  if (chunk == NULL) {
    DFNET_LOGE(SV_SUBSYS, NULL, "out of memory: supervisor thread not running");
    return NULL;
  }
  for (;;) {
    size_t n = 1;
    int timeout = -1;
    uint64_t now = now_ns();
    pthread_mutex_lock(&sup->mu);
    size_t live = 0;
    for (sv_host_t *h = sup->hosts; h != NULL; h = h->next)
      live += !h->io_done;
    if (sup->stopping && live == 0) {
      pthread_mutex_unlock(&sup->mu);
      break;
    }
    if (2 * live + 1 > cap) {
      size_t ncap = 2 * live + 8;
      struct pollfd *np = realloc(pfd, ncap * sizeof *np);
      sv_host_t **nw = np ? realloc(who, ncap * sizeof *nw) : NULL;
      if (np != NULL)
        pfd = np;
      if (nw == NULL) {
        pthread_mutex_unlock(&sup->mu);
        DFNET_LOGE(SV_SUBSYS, NULL, "out of memory in the supervisor thread");
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        continue;
      }
      who = nw;
      cap = ncap;
    }
    pfd[0] = (struct pollfd){.fd = sup->io_wake, .events = POLLIN};
    who[0] = NULL;
    for (sv_host_t *h = sup->hosts; h != NULL; h = h->next) {
      if (h->io_done)
        continue;
      if (h->closing && !h->killed) {
        if (now >= h->kill_at_ns) {
          DFNET_LOGW(SV_SUBSYS, NULL, "driver host %llu (pid %ld) did not stop in time: SIGKILL",
                     (unsigned long long)h->id, (long)h->pid);
          pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
          h->killed = true;
        } else {
          int ms = (int)((h->kill_at_ns - now) / 1000000u) + 1;
          if (timeout < 0 || ms < timeout)
            timeout = ms;
        }
      }
      pfd[n] = (struct pollfd){.fd = h->pidfd, .events = POLLIN};
      who[n++] = h;
      pfd[n] = (struct pollfd){.fd = h->eof ? -1 : h->fd,
                               .events = (short)(POLLIN | (h->out_head ? POLLOUT : 0))};
      who[n++] = h;
    }
    pthread_mutex_unlock(&sup->mu);

    if (poll(pfd, n, timeout) < 0) {
      if (errno != EINTR)
        DFNET_LOGE(SV_SUBSYS, NULL, "poll: %s", strerror(errno));
      continue;
    }
    if (pfd[0].revents & POLLIN)
      drain_efd(sup->io_wake);
    bool queued = false;
    for (size_t i = 1; i < n; i += 2) {
      sv_host_t *h = who[i];
      short sock_ev = pfd[i + 1].revents;
      if (sock_ev & POLLOUT) {
        pthread_mutex_lock(&sup->mu);
        flush_locked(h);
        pthread_mutex_unlock(&sup->mu);
      }
      if (sock_ev & (POLLIN | POLLHUP | POLLERR))
        queued |= read_host(sup, h, chunk);
      if (pfd[i].revents & POLLIN) {
        reap_host(sup, h, chunk);
        queued = true;
      }
    }
    if (queued)
      notify(sup);
  }
  free(pfd);
  free(who);
  free(chunk);
  return NULL;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static char *default_path(void) {
  const char *env = getenv("DFNET_DRIVER_HOST");
  if (env != NULL && env[0] != '\0')
    return strdup(env);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return strdup("dfnet-driver-host");
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash != NULL)
    *slash = '\0';
  size_t len = strlen(self) + sizeof "/dfnet-driver-host";
  char *path = malloc(len);
  if (path != NULL)
    snprintf(path, len, "%s/dfnet-driver-host", self);
  return path;
}

static void free_host(sv_host_t *h) {
  for (size_t i = 0; i < h->npend; i++)
    free(h->pend[i].node);
  free(h->pend);
  for (size_t i = 0; i < h->nnodes; i++)
    free(h->nodes[i]);
  free(h->nodes);
  while (h->out_head != NULL) {
    out_buf_t *next = h->out_head->next;
    free(h->out_head);
    h->out_head = next;
  }
  dfnet_frame_reader_free(&h->reader);
  if (h->fd >= 0)
    close(h->fd);
  if (h->pidfd >= 0)
    close(h->pidfd);
  free(h);
}

static void free_config_copies(dfnet_supervisor_t *sup) {
  free(sup->path);
  for (size_t i = 0; i < sup->nextra; i++)
    free(sup->extra[i]);
  free(sup->extra);
}

dfnet_status_t dfnet_supervisor_new(const dfnet_supervisor_config_t *config,
                                    dfnet_supervisor_t **out) {
  *out = NULL;
  if (config == NULL || config->on_envelope == NULL || config->on_exit == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_supervisor_t *sup = calloc(1, sizeof *sup);
  if (sup == NULL)
    return DFNET_STATUS_INTERNAL;
  sup->cfg = *config;
  if (sup->cfg.stop_grace_ms == 0)
    sup->cfg.stop_grace_ms = SV_DEFAULT_GRACE_MS;
  sup->path = config->driver_host_path ? strdup(config->driver_host_path) : default_path();
  for (const char *const *a = config->extra_args; a != NULL && *a != NULL; a++)
    sup->nextra++;
  sup->extra = calloc(sup->nextra + 1, sizeof *sup->extra);
  bool copied = sup->path != NULL && sup->extra != NULL;
  for (size_t i = 0; copied && i < sup->nextra; i++)
    copied = (sup->extra[i] = strdup(config->extra_args[i])) != NULL;
  sup->denv = malloc(sizeof *sup->denv);
  if (!copied || sup->denv == NULL)
    goto copies_failed;
  sup->cfg.driver_host_path = NULL;
  sup->cfg.extra_args = NULL;
  if (access(sup->path, X_OK) != 0) {
    DFNET_LOGE(SV_SUBSYS, NULL, "driver host executable %s: %s", sup->path, strerror(errno));
    free_config_copies(sup);
    free(sup->denv);
    free(sup);
    return DFNET_STATUS_NOT_FOUND;
  }
  sup->io_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sup->io_wake < 0)
    goto io_wake_failed;
  sup->ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sup->ready_fd < 0)
    goto ready_fd_failed;
  pthread_mutex_init(&sup->mu, NULL);
  sup->next_host_id = 1;
  if (pthread_create(&sup->thread, NULL, io_main, sup) != 0)
    goto thread_failed;
  *out = sup;
  return DFNET_STATUS_OK;

thread_failed:
  pthread_mutex_destroy(&sup->mu);
  close(sup->ready_fd);
ready_fd_failed:
  close(sup->io_wake);
io_wake_failed:
  DFNET_LOGE(SV_SUBSYS, NULL, "cannot start the supervisor: %s", strerror(errno));
copies_failed:
  free_config_copies(sup);
  free(sup->denv);
  free(sup);
  return DFNET_STATUS_INTERNAL;
}

void dfnet_supervisor_free(dfnet_supervisor_t *sup) {
  if (sup == NULL)
    return;
  pthread_mutex_lock(&sup->mu);
  sup->stopping = true;
  uint64_t ids[64];
  size_t n = 0;
  for (sv_host_t *h = sup->hosts; h != NULL && n < 64; h = h->next)
    ids[n++] = h->id;
  pthread_mutex_unlock(&sup->mu);
  for (size_t i = 0; i < n; i++)
    dfnet_supervisor_close(sup, ids[i]);
  pthread_mutex_lock(&sup->mu);
  for (sv_host_t *h = sup->hosts; h != NULL; h = h->next)
    if (!h->closing && !h->io_done) { /* beyond the first 64 */
      h->closing = true;
      h->kill_at_ns = now_ns();
    }
  pthread_mutex_unlock(&sup->mu);
  poke(sup->io_wake);
  pthread_join(sup->thread, NULL);
  while (sup->ev_head != NULL) {
    sv_event_t *next = sup->ev_head->next;
    free(sup->ev_head);
    sup->ev_head = next;
  }
  while (sup->hosts != NULL) {
    sv_host_t *next = sup->hosts->next;
    free_host(sup->hosts);
    sup->hosts = next;
  }
  close(sup->io_wake);
  close(sup->ready_fd);
  pthread_mutex_destroy(&sup->mu);
  free_config_copies(sup);
  free(sup->denv);
  free(sup);
}

int dfnet_supervisor_fd(const dfnet_supervisor_t *sup) { return sup->ready_fd; }

/* ---- spawn, close, kill ---------------------------------------------------------------------- */

dfnet_status_t dfnet_supervisor_spawn(dfnet_supervisor_t *sup, uint64_t *host_id, pid_t *pid) {
  int sv[2];
  char fd_arg[16];
  snprintf(fd_arg, sizeof fd_arg, "%d", SV_CHILD_FD);
  const char **argv = calloc(sup->nextra + 4, sizeof *argv);
  sv_host_t *h = calloc(1, sizeof *h);
  if (argv == NULL || h == NULL) {
    free(argv);
    free(h);
    return DFNET_STATUS_INTERNAL;
  }
  argv[0] = sup->path;
  argv[1] = "--fd";
  argv[2] = fd_arg;
  for (size_t i = 0; i < sup->nextra; i++)
    argv[3 + i] = sup->extra[i];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    DFNET_LOGE(SV_SUBSYS, NULL, "socketpair: %s", strerror(errno));
    goto socketpair_failed;
  }
  pid_t child = fork();
  if (child < 0) {
    DFNET_LOGE(SV_SUBSYS, NULL, "fork: %s", strerror(errno));
    goto fork_failed;
  }
  if (child == 0) {
    /* Only async-signal-safe calls until exec. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (sv[1] == SV_CHILD_FD) {
      if (fcntl(SV_CHILD_FD, F_SETFD, 0) != 0)
        _exit(127);
    } else if (dup2(sv[1], SV_CHILD_FD) < 0) {
      _exit(127);
    }
    close_range(SV_CHILD_FD + 1, ~0u, 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(sv[1]);
  free(argv);
  argv = NULL;
  int pidfd = pidfd_open(child, 0);
  if (pidfd < 0) {
    DFNET_LOGE(SV_SUBSYS, NULL, "pidfd_open: %s", strerror(errno));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(sv[0]);
    free(h);
    return DFNET_STATUS_UNAVAILABLE;
  }
  fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  h->pid = child;
  h->fd = sv[0];
  h->pidfd = pidfd;
  h->next_link_id = 1;
  dfnet_frame_reader_init(&h->reader, DFNET_FRAME_MAX_DEFAULT);
  pthread_mutex_lock(&sup->mu);
  h->id = sup->next_host_id++;
  h->next = sup->hosts;
  sup->hosts = h;
  pthread_mutex_unlock(&sup->mu);
  poke(sup->io_wake);
  DFNET_LOGD(SV_SUBSYS, NULL, "driver host %llu: pid %ld", (unsigned long long)h->id,
             (long)child);
  *host_id = h->id;
  if (pid != NULL)
    *pid = child;
  return DFNET_STATUS_OK;

fork_failed:
  close(sv[0]);
  close(sv[1]);
socketpair_failed:
  free(argv);
  free(h);
  return DFNET_STATUS_UNAVAILABLE;
}

dfnet_status_t dfnet_supervisor_close(dfnet_supervisor_t *sup, uint64_t host_id) {
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  if (h == NULL) {
    pthread_mutex_unlock(&sup->mu);
    return DFNET_STATUS_NOT_FOUND;
  }
  if (!h->closing && !h->io_done) {
    h->closing = true;
    h->kill_at_ns = now_ns() + (uint64_t)sup->cfg.stop_grace_ms * 1000000u;
    flush_locked(h);
    shutdown(h->fd, SHUT_WR);
  }
  pthread_mutex_unlock(&sup->mu);
  poke(sup->io_wake);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_supervisor_kill(dfnet_supervisor_t *sup, uint64_t host_id, int sig) {
  if (sig <= 0 || sig >= NSIG)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  if (h == NULL || h->io_done || pidfd_send_signal(h->pidfd, sig, NULL, 0) != 0)
    st = DFNET_STATUS_NOT_FOUND;
  pthread_mutex_unlock(&sup->mu);
  return st;
}

uint64_t dfnet_supervisor_late_frames(dfnet_supervisor_t *sup) {
  pthread_mutex_lock(&sup->mu);
  uint64_t n = sup->late_frames;
  pthread_mutex_unlock(&sup->mu);
  return n;
}

pid_t dfnet_supervisor_pid(dfnet_supervisor_t *sup, uint64_t host_id) {
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  pid_t pid = h != NULL && !h->io_done ? h->pid : -1;
  pthread_mutex_unlock(&sup->mu);
  return pid;
}

/* ---- sending ---------------------------------------------------------------------------------- */

static pend_t *find_pend(sv_host_t *h, uint64_t link_id) {
  for (size_t i = 0; i < h->npend; i++)
    if (h->pend[i].link_id == link_id)
      return &h->pend[i];
  return NULL;
}

static pend_t *find_pend_by_tag(sv_host_t *h, uint64_t tag) {
  for (size_t i = 0; i < h->npend; i++)
    if (h->pend[i].kind == PEND_CALL && h->pend[i].tag == tag)
      return &h->pend[i];
  return NULL;
}

static void remove_pend(sv_host_t *h, pend_t *p) {
  free(p->node);
  *p = h->pend[--h->npend];
}

static bool add_pend(sv_host_t *h, uint64_t link_id, uint64_t tag, pend_kind_t kind,
                     const char *node) {
  if (h->npend == h->cap_pend) {
    size_t ncap = h->cap_pend ? 2 * h->cap_pend : 16;
    pend_t *np = realloc(h->pend, ncap * sizeof *np);
    if (np == NULL)
      return false;
    h->pend = np;
    h->cap_pend = ncap;
  }
  char *copy = node != NULL ? strdup(node) : NULL;
  if (node != NULL && copy == NULL)
    return false;
  h->pend[h->npend++] = (pend_t){link_id, tag, kind, copy};
  return true;
}

/* Encode env into a new out buffer (header + body). */
static dfnet_status_t encode_frame(dfnet_envelope_t *env, out_buf_t **out) {
  size_t len = 0;
  const char *err = NULL;
  dfnet_status_t st = dfnet_envelope_encoded_size(env, &len, &err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE(SV_SUBSYS, NULL, "cannot encode %s: %s",
               dfnet_envelope_msg_name(env->pb.which_msg), err ? err : "?");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  out_buf_t *b = malloc(sizeof *b + DFNET_FRAME_HEADER_SIZE + len);
  if (b == NULL)
    return DFNET_STATUS_INTERNAL;
  st = dfnet_envelope_encode(env, b->data + DFNET_FRAME_HEADER_SIZE, len, &len, &err);
  if (st != DFNET_STATUS_OK) {
    free(b);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_frame_put_header(b->data, (uint32_t)len);
  b->next = NULL;
  b->len = DFNET_FRAME_HEADER_SIZE + len;
  b->off = 0;
  *out = b;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_supervisor_send(dfnet_supervisor_t *sup, uint64_t host_id,
                                     dfnet_envelope_t *env) {
  uint64_t tag = env->pb.id;
  dfnet_status_t st = DFNET_STATUS_OK;
  bool wake = false;
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  if (h == NULL) {
    st = DFNET_STATUS_NOT_FOUND;
    goto unlock;
  }
  if (h->exited || h->closing) {
    st = DFNET_STATUS_UNAVAILABLE;
    goto unlock;
  }
  bool tracked = false;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_call_tag:
  case dfnet_v1_Envelope_driver_start_tag:
  case dfnet_v1_Envelope_driver_stop_tag: {
    pend_kind_t kind = env->pb.which_msg == dfnet_v1_Envelope_call_tag ? PEND_CALL
                       : env->pb.which_msg == dfnet_v1_Envelope_driver_start_tag ? PEND_START
                                                                                  : PEND_STOP;
    const char *node = kind == PEND_START  ? env->pb.msg.driver_start.node
                       : kind == PEND_STOP ? env->pb.msg.driver_stop.node
                                           : NULL;
    uint64_t link_id = h->next_link_id++;
    if (!add_pend(h, link_id, tag, kind, node)) {
      st = DFNET_STATUS_INTERNAL;
      goto unlock;
    }
    env->pb.id = link_id;
    tracked = true;
    break;
  }
  case dfnet_v1_Envelope_cancel_tag:
  case dfnet_v1_Envelope_stream_credit_tag: {
    pend_t *p = find_pend_by_tag(h, tag);
    if (p == NULL) {
      st = DFNET_STATUS_NOT_FOUND;
      goto unlock;
    }
    env->pb.id = p->link_id;
    break;
  }
  default:
    break;
  }
  out_buf_t *b = NULL;
  st = encode_frame(env, &b);
  if (st != DFNET_STATUS_OK) {
    if (tracked)
      remove_pend(h, find_pend(h, env->pb.id));
    goto unlock;
  }
  bool was_empty = h->out_head == NULL;
  if (h->out_tail != NULL)
    h->out_tail->next = b;
  else
    h->out_head = b;
  h->out_tail = b;
  if (was_empty)
    flush_locked(h);
  wake = h->out_head != NULL;
unlock:
  pthread_mutex_unlock(&sup->mu);
  env->pb.id = tag;
  if (wake)
    poke(sup->io_wake);
  return st;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

static void add_node(sv_host_t *h, const char *node) {
  for (size_t i = 0; i < h->nnodes; i++)
    if (strcmp(h->nodes[i], node) == 0)
      return;
  char **grown = realloc(h->nodes, (h->nnodes + 1) * sizeof *grown);
  char *copy = strdup(node);
  if (grown != NULL)
    h->nodes = grown;
  if (grown == NULL || copy == NULL) {
    free(copy);
    DFNET_LOGE(SV_SUBSYS, node, "out of memory tracking a running driver");
    return;
  }
  h->nodes[h->nnodes++] = copy;
}

static void remove_node(sv_host_t *h, const char *node) {
  for (size_t i = 0; i < h->nnodes; i++) {
    if (strcmp(h->nodes[i], node) == 0) {
      free(h->nodes[i]);
      h->nodes[i] = h->nodes[--h->nnodes];
      return;
    }
  }
}

/* Map a frame's reply to the agent's id. Returns false to drop it. sup->mu held. */
static bool account_frame(dfnet_supervisor_t *sup, sv_host_t *h, dfnet_envelope_t *env) {
  pb_size_t which = env->pb.which_msg;
  if (which != dfnet_v1_Envelope_reply_tag && which != dfnet_v1_Envelope_status_tag)
    return true;
  pend_t *p = find_pend(h, env->pb.id);
  if (p == NULL) {
    sup->late_frames++;
    DFNET_LOGD(SV_SUBSYS, NULL, "driver host %llu: %s for request %llu, not in flight: dropped",
               (unsigned long long)h->id, dfnet_envelope_msg_name(which),
               (unsigned long long)env->pb.id);
    return false;
  }
  env->pb.id = p->tag;
  if (which == dfnet_v1_Envelope_reply_tag) {
    if (env->pb.msg.reply.end_of_stream)
      remove_pend(h, p);
    return true;
  }
  bool ok = env->pb.msg.status.code == dfnet_v1_Code_OK;
  if (p->kind == PEND_START && ok)
    add_node(h, p->node);
  else if (p->kind == PEND_STOP && ok)
    remove_node(h, p->node);
  remove_pend(h, p);
  return true;
}

static void exit_reason(char *buf, size_t cap, int code, int sig) {
  if (sig != 0) {
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev != NULL)
      snprintf(buf, cap, "killed by SIG%s", abbrev);
    else
      snprintf(buf, cap, "killed by signal %d", sig);
  } else {
    snprintf(buf, cap, "exited with code %d", code);
  }
}

static void run_exit(dfnet_supervisor_t *sup, sv_event_t *ev) {
  sv_host_t *h = ev->host;
  char reason[96];
  char message[200];
  exit_reason(reason, sizeof reason, ev->exit_code, ev->signal);
  snprintf(message, sizeof message, "driver host %llu (pid %ld) exited: %s",
           (unsigned long long)h->id, (long)h->pid, reason);
  DFNET_LOGI(SV_SUBSYS, NULL, "%s", message);
  pthread_mutex_lock(&sup->mu);
  pend_t *pend = h->pend;
  size_t npend = h->npend;
  h->pend = NULL;
  h->npend = h->cap_pend = 0;
  for (size_t i = 0; i < npend; i++)
    if (pend[i].kind == PEND_START)
      add_node(h, pend[i].node);
  pthread_mutex_unlock(&sup->mu);
  /* Exactly one final answer for what was in flight. */
  for (size_t i = 0; i < npend; i++) {
    dfnet_envelope_t *env = sup->denv;
    dfnet_envelope_init(env);
    env->pb.id = pend[i].tag;
    if (pend[i].kind == PEND_CALL) {
      env->pb.which_msg = dfnet_v1_Envelope_reply_tag;
      env->pb.msg.reply.code = dfnet_v1_Code_UNAVAILABLE;
      env->pb.msg.reply.end_of_stream = true;
      snprintf(env->pb.msg.reply.message, sizeof env->pb.msg.reply.message, "%s", message);
    } else {
      env->pb.which_msg = dfnet_v1_Envelope_status_tag;
      env->pb.msg.status.code = dfnet_v1_Code_UNAVAILABLE;
      snprintf(env->pb.msg.status.message, sizeof env->pb.msg.status.message, "%s", message);
    }
    sup->cfg.on_envelope(sup->cfg.arg, h->id, env);
    free(pend[i].node);
  }
  free(pend);
  dfnet_driver_host_exit_t info = {
      .host_id = h->id,
      .pid = h->pid,
      .exit_code = ev->exit_code,
      .signal = ev->signal,
      .reason = reason,
      .nodes = (const char *const *)h->nodes,
      .node_count = h->nnodes,
  };
  sup->cfg.on_exit(sup->cfg.arg, &info);
  pthread_mutex_lock(&sup->mu);
  for (sv_host_t **pp = &sup->hosts; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      break;
    }
  }
  pthread_mutex_unlock(&sup->mu);
  free_host(h);
}

size_t dfnet_supervisor_dispatch(dfnet_supervisor_t *sup) {
  size_t ran = 0;
  drain_efd(sup->ready_fd);
  for (;;) {
    pthread_mutex_lock(&sup->mu);
    sv_event_t *ev = sup->ev_head;
    if (ev != NULL) {
      sup->ev_head = ev->next;
      if (sup->ev_head == NULL)
        sup->ev_tail = NULL;
    }
    pthread_mutex_unlock(&sup->mu);
    if (ev == NULL)
      break;
    ran++;
    if (ev->kind == EV_EXIT) {
      run_exit(sup, ev);
      free(ev);
      continue;
    }
    const char *err = NULL;
    dfnet_status_t st =
        dfnet_envelope_decode(ev->data, ev->len, DFNET_FRAME_MAX_DEFAULT, sup->denv, &err);
    if (st != DFNET_STATUS_OK) {
      DFNET_LOGW(SV_SUBSYS, NULL, "driver host %llu sent a frame that does not decode: %s: %s",
                 (unsigned long long)ev->host->id, dfnet_status_str(st), err ? err : "?");
      free(ev);
      continue;
    }
    pthread_mutex_lock(&sup->mu);
    bool deliver = account_frame(sup, ev->host, sup->denv);
    pthread_mutex_unlock(&sup->mu);
    if (deliver)
      sup->cfg.on_envelope(sup->cfg.arg, ev->host->id, sup->denv);
    free(ev);
  }
  return ran;
}
