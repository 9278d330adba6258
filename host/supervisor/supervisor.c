/* The driver-host supervisor (host/supervisor/supervisor.h).
 *
 * No thread: an epoll instance holds every driver host's socket and pidfd plus a timerfd
 * for stop grace periods; dfnet_supervisor_dispatch() (the agent's thread) reads, reaps and
 * runs the callbacks. sup->mu guards the host list and each host's out queue, pending
 * requests and nodes, because dfnet_supervisor_send/close/kill may come from other
 * threads. Host records are freed only by dispatch, after their exit was delivered.
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
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utlist.h>

#include "host/supervisor/sandbox.h"
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/resource.h"

#define SV_SUBSYS "supervisor"
#define SV_READ_CHUNK (64u * 1024u)
#define SV_DEFAULT_GRACE_MS 5000u
/* Queued frames written by one sendmsg(2) at most (the rest on the next round). */
#define SV_IOV_MAX 64

/* A request in flight: a Call, a DriverStart or DriverStop (their node is tracked), or a
 * DriverSuspend / DriverResume (PEND_CONTROL: answered by a Status, nothing tracked). */
typedef enum pend_kind { PEND_CALL, PEND_START, PEND_STOP, PEND_CONTROL } pend_kind_t;

typedef struct pend {
  uint64_t link_id;
  uint64_t tag; /* the agent's id */
  pend_kind_t kind;
  char *node; /* DriverStart/DriverStop: the node */
} pend_t;

typedef struct out_buf {
  struct out_buf *next;
  size_t len, off;
  int *fds; /* descriptors to send with the frame's first byte (ours: closed once sent) */
  size_t nfds;
  uint8_t data[];
} out_buf_t;

typedef struct sv_host {
  struct sv_host *next;
  uint64_t id;
  pid_t pid;
  int fd;
  int pidfd;
  int report_fd; /* sandboxed: the report pipe's read end (sandbox.h), else -1 */
  bool eof;      /* the socket said EOF */
  bool exited;   /* reaped: sends are refused, fds closed */
  bool pollout;  /* EPOLLOUT is registered */
  bool closing;
  bool killed;
  uint64_t kill_at_ns;
  dfnet_frame_reader_t reader; /* dispatch only */
  out_buf_t *out_head, *out_tail;
  pend_t *pend;
  size_t npend, cap_pend;
  char **nodes;
  size_t nnodes;
  uint64_t next_link_id;
} sv_host_t;

struct dfnet_supervisor {
  dfnet_supervisor_config_t cfg;
  char *path;
  char **extra;
  size_t nextra;
  sv_sandbox_t sandbox; /* what every driver host's confinement needs (sandbox.h) */
  pthread_mutex_t mu;
  int epfd;     /* sockets, pidfds, timer */
  int timer_fd; /* next stop grace deadline */
  bool freeing; /* no callbacks any more */
  sv_host_t *hosts;
  uint64_t next_host_id;
  dfnet_envelope_t *denv; /* dispatch only */
  uint8_t *chunk;         /* dispatch only */
  uint64_t late_frames;
  bool corked; /* dfnet_supervisor_cork: sends queue, uncork writes them */
};

/* epoll data: host id << 2 | what */
enum { EP_SOCK = 0, EP_PIDFD = 1, EP_TIMER = 2 };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static sv_host_t *find_host(dfnet_supervisor_t *sup, uint64_t id) {
  sv_host_t *h;
  LL_SEARCH_SCALAR(sup->hosts, h, id, id);
  return h;
}

/* Register or change the socket's epoll interest (EPOLLOUT while the out queue has data).
 * sup->mu held. */
static void update_pollout_locked(dfnet_supervisor_t *sup, sv_host_t *h) {
  bool want = h->out_head != NULL && !h->exited && !h->eof;
  if (want == h->pollout || h->exited)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                           .data.u64 = h->id << 2 | EP_SOCK};
  if (epoll_ctl(sup->epfd, EPOLL_CTL_MOD, h->fd, &ev) == 0)
    h->pollout = want;
}

/* Close the descriptors a frame still holds. */
static void out_buf_close_fds(out_buf_t *b) {
  for (size_t i = 0; i < b->nfds; i++)
    close(b->fds[i]);
  free(b->fds);
  b->fds = NULL;
  b->nfds = 0;
}

static void out_buf_free(out_buf_t *b) {
  out_buf_close_fds(b);
  free(b);
}

static void drop_out_queue(sv_host_t *h) {
  out_buf_t *b, *tmp;
  LL_FOREACH_SAFE(h->out_head, b, tmp) {
    LL_DELETE(h->out_head, b);
    out_buf_free(b);
  }
  h->out_tail = NULL;
}

/* The control message of a sendmsg(2) carrying b's descriptors (SCM_RIGHTS, unix(7)). */
typedef union sv_cmsg {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * DFNET_RESOURCES_MAX)];
} sv_cmsg_t;

/* Point msg's control message at ctl, holding b's descriptors. */
static void attach_fds(struct msghdr *msg, sv_cmsg_t *ctl, const out_buf_t *b) {
  memset(ctl, 0, sizeof *ctl);
  msg->msg_control = ctl->buf;
  msg->msg_controllen = CMSG_SPACE(sizeof(int) * b->nfds);
  struct cmsghdr *c = CMSG_FIRSTHDR(msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * b->nfds);
  memcpy(CMSG_DATA(c), b->fds, sizeof(int) * b->nfds);
}

/* Write the out queue without blocking, several frames per sendmsg(2). A frame with
 * descriptors begins a sendmsg of its own, which carries them (SCM_RIGHTS): the kernel
 * hands them to the reader with that sendmsg's first byte, the frame's. sup->mu held. */
static void flush_locked(dfnet_supervisor_t *sup, sv_host_t *h) {
  while (h->out_head != NULL && !h->exited) {
    struct iovec iov[SV_IOV_MAX];
    int n_iov = 0;
    out_buf_t *first = h->out_head, *b;
    LL_FOREACH(first, b) {
      if (n_iov == SV_IOV_MAX || (b != first && b->nfds > 0))
        break;
      iov[n_iov++] = (struct iovec){.iov_base = b->data + b->off, .iov_len = b->len - b->off};
    }
    bool more = b != NULL; /* frames left for the next round */
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    sv_cmsg_t ctl;
    if (first->nfds > 0)
      attach_fds(&msg, &ctl, first);
    ssize_t n = sendmsg(h->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      if (errno != EAGAIN) {
        /* The peer is going away; its exit will answer what is pending. */
        DFNET_LOGD(SV_SUBSYS, NULL, "driver host %llu: write: %s", (unsigned long long)h->id,
                   strerror(errno));
        drop_out_queue(h);
      }
      break;
    }
    out_buf_close_fds(first); /* they went with the first byte: the driver host has its own */
    size_t left = (size_t)n;
    int taken = 0;
    while (h->out_head != NULL && taken < n_iov && left >= h->out_head->len - h->out_head->off) {
      out_buf_t *done = h->out_head;
      left -= done->len - done->off;
      LL_DELETE(h->out_head, done);
      out_buf_free(done);
      taken++;
    }
    if (h->out_head == NULL) {
      h->out_tail = NULL;
    } else if (taken == n_iov && more) {
      continue; /* all taken: the next round */
    } else {
      h->out_head->off += left;
      break; /* the socket is full */
    }
  }
  update_pollout_locked(sup, h);
}

/* Arm the timer for the earliest stop grace deadline; SIGKILL the overdue. sup->mu held. */
static void kill_timers_locked(dfnet_supervisor_t *sup) {
  uint64_t now = now_ns(), next = 0;
  sv_host_t *h;
  LL_FOREACH(sup->hosts, h) {
    if (!h->closing || h->killed || h->exited)
      continue;
    if (now >= h->kill_at_ns) {
      DFNET_LOGW(SV_SUBSYS, NULL, "driver host %llu (pid %ld) did not stop in time: SIGKILL",
                 (unsigned long long)h->id, (long)h->pid);
      pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
      h->killed = true;
    } else if (next == 0 || h->kill_at_ns < next) {
      next = h->kill_at_ns;
    }
  }
  struct itimerspec its = {0};
  if (next != 0) {
    its.it_value.tv_sec = (time_t)(next / 1000000000u);
    its.it_value.tv_nsec = (long)(next % 1000000000u);
  }
  timerfd_settime(sup->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
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
  drop_out_queue(h);
  dfnet_frame_reader_free(&h->reader);
  if (h->fd >= 0)
    close(h->fd);
  if (h->pidfd >= 0)
    close(h->pidfd);
  if (h->report_fd >= 0)
    close(h->report_fd);
  free(h);
}

static void free_config_copies(dfnet_supervisor_t *sup) {
  free(sup->path);
  for (size_t i = 0; i < sup->nextra; i++)
    free(sup->extra[i]);
  free(sup->extra);
  free(sup->denv);
  free(sup->chunk);
  sv__sandbox_close(&sup->sandbox);
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
  sup->chunk = malloc(SV_READ_CHUNK);
  sup->epfd = sup->timer_fd = -1;
  if (!copied || sup->denv == NULL || sup->chunk == NULL)
    goto copies_failed;
  sup->cfg.driver_host_path = NULL;
  sup->cfg.extra_args = NULL;
  sup->cfg.sandbox.read_only = NULL;
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  if (access(sup->path, X_OK) != 0)
    DFNET_LOGE(SV_SUBSYS, NULL, "driver host executable %s: %s", sup->path, strerror(errno));
  else
    st = sv__sandbox_open(&config->sandbox, sup->path, &sup->sandbox);
  if (st != DFNET_STATUS_OK) {
    free_config_copies(sup);
    free(sup);
    return st;
  }
  sup->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sup->epfd < 0)
    goto epoll_failed;
  sup->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EP_TIMER};
  if (sup->timer_fd < 0 || epoll_ctl(sup->epfd, EPOLL_CTL_ADD, sup->timer_fd, &ev) != 0)
    goto timer_failed;
  pthread_mutex_init(&sup->mu, NULL);
  sup->next_host_id = 1;
  *out = sup;
  return DFNET_STATUS_OK;

timer_failed:
  if (sup->timer_fd >= 0)
    close(sup->timer_fd);
  close(sup->epfd);
epoll_failed:
  DFNET_LOGE(SV_SUBSYS, NULL, "cannot create the supervisor: %s", strerror(errno));
copies_failed:
  free_config_copies(sup);
  free(sup);
  return DFNET_STATUS_INTERNAL;
}

static void process_events(dfnet_supervisor_t *sup, size_t *delivered);

void dfnet_supervisor_free(dfnet_supervisor_t *sup) {
  if (sup == NULL)
    return;
  pthread_mutex_lock(&sup->mu);
  sup->freeing = true;
  uint64_t now = now_ns();
  sv_host_t *h;
  LL_FOREACH(sup->hosts, h) {
    if (!h->closing && !h->exited) {
      h->closing = true;
      h->kill_at_ns = now + (uint64_t)sup->cfg.stop_grace_ms * 1000000u;
      shutdown(h->fd, SHUT_WR);
    }
  }
  kill_timers_locked(sup);
  pthread_mutex_unlock(&sup->mu);
  for (;;) {
    pthread_mutex_lock(&sup->mu);
    bool any = sup->hosts != NULL;
    pthread_mutex_unlock(&sup->mu);
    if (!any)
      break;
    struct pollfd p = {.fd = sup->epfd, .events = POLLIN};
    poll(&p, 1, 1000);
    size_t delivered = 0;
    process_events(sup, &delivered);
  }
  close(sup->timer_fd);
  close(sup->epfd);
  pthread_mutex_destroy(&sup->mu);
  free_config_copies(sup);
  free(sup);
}

int dfnet_supervisor_fd(const dfnet_supervisor_t *sup) { return sup->epfd; }

/* ---- spawn, close, kill ---------------------------------------------------------------------- */

/* The driver host's command line: the path, --fd, the sandbox's arguments, the extra ones.
 * The strings are borrowed from sup and fd_arg. NULL when out of memory. */
static const char **spawn_argv(const dfnet_supervisor_t *sup, const char *fd_arg) {
  const char **argv = calloc(sup->nextra + sup->sandbox.nargs + 4, sizeof *argv);
  if (argv == NULL)
    return NULL;
  size_t n = 0;
  argv[n++] = sup->path;
  argv[n++] = "--fd";
  argv[n++] = fd_arg;
  for (size_t i = 0; i < sup->sandbox.nargs; i++)
    argv[n++] = sup->sandbox.args[i];
  for (size_t i = 0; i < sup->nextra; i++)
    argv[n++] = sup->extra[i];
  return argv;
}

/* Fork and exec a driver host holding link_fd (and, sandboxed, report_fd: the write end of
 * its report pipe), set up as sandbox.h says. Returns its pid, or -1 (errno logged). */
static pid_t fork_driver_host(const dfnet_supervisor_t *sup, const char **argv, int link_fd,
                              int report_fd) {
  pid_t child = fork();
  if (child < 0) {
    DFNET_LOGE(SV_SUBSYS, NULL, "fork: %s", strerror(errno));
    return -1;
  }
  if (child == 0) {
    /* Only async-signal-safe calls until exec (sandbox.h). */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (sv__sandbox_child(&sup->sandbox, link_fd, report_fd) != 0)
      _exit(127);
    sv__sandbox_exec(&sup->sandbox, argv);
    sv__sandbox_child_exec_failed(&sup->sandbox, argv[0], errno);
    _exit(127);
  }
  return child;
}

dfnet_status_t dfnet_supervisor_spawn(dfnet_supervisor_t *sup, uint64_t *host_id, pid_t *pid) {
  int sv[2] = {-1, -1}, report[2] = {-1, -1};
  char fd_arg[16];
  snprintf(fd_arg, sizeof fd_arg, "%d", SV_CHILD_FD);
  const char **argv = spawn_argv(sup, fd_arg);
  sv_host_t *h = calloc(1, sizeof *h);
  pid_t child = -1;
  if (argv == NULL || h == NULL) {
    free(argv);
    free(h);
    return DFNET_STATUS_INTERNAL;
  }
  if (sup->sandbox.enabled && pipe2(report, O_CLOEXEC) != 0)
    DFNET_LOGE(SV_SUBSYS, NULL, "pipe: %s", strerror(errno));
  else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    DFNET_LOGE(SV_SUBSYS, NULL, "socketpair: %s", strerror(errno));
  else
    child = fork_driver_host(sup, argv, sv[1], report[1]);
  free(argv);
  for (int i = 1; i >= 0; i--) { /* the child's ends; ours too when there is no child */
    if (sv[i] >= 0 && (i == 1 || child < 0))
      close(sv[i]);
    if (report[i] >= 0 && (i == 1 || child < 0))
      close(report[i]);
  }
  if (child < 0) {
    free(h);
    return DFNET_STATUS_UNAVAILABLE;
  }
  if (report[0] >= 0)
    fcntl(report[0], F_SETFL, O_NONBLOCK);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  h->pid = child;
  h->fd = sv[0];
  h->report_fd = report[0];
  h->pidfd = pidfd_open(child, 0); /* O_CLOEXEC by itself */
  h->next_link_id = 1;
  dfnet_frame_reader_init(&h->reader, DFNET_FRAME_MAX_DEFAULT);
  pthread_mutex_lock(&sup->mu);
  h->id = sup->next_host_id++;
  struct epoll_event es = {.events = EPOLLIN, .data.u64 = h->id << 2 | EP_SOCK};
  struct epoll_event ep = {.events = EPOLLIN, .data.u64 = h->id << 2 | EP_PIDFD};
  if (h->pidfd < 0 || epoll_ctl(sup->epfd, EPOLL_CTL_ADD, h->fd, &es) != 0 ||
      epoll_ctl(sup->epfd, EPOLL_CTL_ADD, h->pidfd, &ep) != 0) {
    pthread_mutex_unlock(&sup->mu);
    DFNET_LOGE(SV_SUBSYS, NULL, "%s: %s", h->pidfd < 0 ? "pidfd_open" : "epoll_ctl",
               strerror(errno));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    free_host(h);
    return DFNET_STATUS_UNAVAILABLE;
  }
  LL_PREPEND(sup->hosts, h);
  pthread_mutex_unlock(&sup->mu);
  DFNET_LOGD(SV_SUBSYS, NULL, "driver host %llu: pid %ld", (unsigned long long)h->id, (long)child);
  *host_id = h->id;
  if (pid != NULL)
    *pid = child;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_supervisor_close(dfnet_supervisor_t *sup, uint64_t host_id) {
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  if (h == NULL) {
    pthread_mutex_unlock(&sup->mu);
    return DFNET_STATUS_NOT_FOUND;
  }
  if (!h->closing && !h->exited) {
    h->closing = true;
    h->kill_at_ns = now_ns() + (uint64_t)sup->cfg.stop_grace_ms * 1000000u;
    flush_locked(sup, h);
    shutdown(h->fd, SHUT_WR);
    kill_timers_locked(sup);
  }
  pthread_mutex_unlock(&sup->mu);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_supervisor_kill(dfnet_supervisor_t *sup, uint64_t host_id, int sig) {
  if (sig <= 0 || sig >= NSIG)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  if (h == NULL || h->exited || pidfd_send_signal(h->pidfd, sig, NULL, 0) != 0)
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
  pid_t pid = h != NULL && !h->exited ? h->pid : -1;
  pthread_mutex_unlock(&sup->mu);
  return pid;
}

bool dfnet_supervisor_sandboxed(const dfnet_supervisor_t *sup) { return sup->sandbox.enabled; }

uid_t dfnet_supervisor_driver_uid(const dfnet_supervisor_t *sup) {
  return sup->sandbox.enabled && sup->sandbox.as_root ? sup->sandbox.uid : getuid();
}

/* ---- sending ----------------------------------------------------------------------------------
 */

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
    DFNET_LOGE(SV_SUBSYS, NULL, "cannot encode %s: %s", dfnet_envelope_msg_name(env->pb.which_msg),
               err ? err : "?");
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
  b->fds = NULL;
  b->nfds = 0;
  *out = b;
  return DFNET_STATUS_OK;
}

/* Duplicate fds[0 .. n) into *out (malloc'd; NULL for none). */
static dfnet_status_t dup_fds(const int *fds, size_t n, int **out) {
  *out = NULL;
  if (n == 0)
    return DFNET_STATUS_OK;
  if (n > DFNET_RESOURCES_MAX || fds == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  int *copy = malloc(n * sizeof *copy);
  if (copy == NULL)
    return DFNET_STATUS_INTERNAL;
  for (size_t i = 0; i < n; i++) {
    copy[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 0) : -1;
    if (copy[i] < 0) {
      int err = errno;
      DFNET_LOGE(SV_SUBSYS, NULL, "cannot duplicate descriptor %d to send: %s", fds[i],
                 fds[i] >= 0 ? strerror(err) : "not a descriptor");
      for (size_t k = 0; k < i; k++)
        close(copy[k]);
      free(copy);
      return fds[i] < 0 ? DFNET_STATUS_INVALID_ARGUMENT : DFNET_STATUS_RESOURCE_EXHAUSTED;
    }
  }
  *out = copy;
  return DFNET_STATUS_OK;
}

static dfnet_status_t send_frame(dfnet_supervisor_t *sup, uint64_t host_id, dfnet_envelope_t *env,
                                 int *fds, size_t nfds);

dfnet_status_t dfnet_supervisor_send(dfnet_supervisor_t *sup, uint64_t host_id,
                                     dfnet_envelope_t *env) {
  return send_frame(sup, host_id, env, NULL, 0);
}

dfnet_status_t dfnet_supervisor_send_fds(dfnet_supervisor_t *sup, uint64_t host_id,
                                         dfnet_envelope_t *env, const int *fds, size_t n) {
  int *copy = NULL;
  dfnet_status_t st = dup_fds(fds, n, &copy);
  if (st != DFNET_STATUS_OK)
    return st;
  return send_frame(sup, host_id, env, copy, n);
}

/* Queue (and, uncorked, write) env with the descriptors `fds` (ours, malloc'd; taken in
 * every case: attached to the frame, or closed and freed when it is not queued). */
static dfnet_status_t send_frame(dfnet_supervisor_t *sup, uint64_t host_id, dfnet_envelope_t *env,
                                 int *fds, size_t nfds) {
  uint64_t tag = env->pb.id;
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&sup->mu);
  sv_host_t *h = find_host(sup, host_id);
  if (h == NULL) {
    st = DFNET_STATUS_NOT_FOUND;
    goto unlock;
  }
  if (h->exited || h->closing || h->eof) {
    st = DFNET_STATUS_UNAVAILABLE;
    goto unlock;
  }
  bool tracked = false;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_call_tag:
  case dfnet_v1_Envelope_driver_start_tag:
  case dfnet_v1_Envelope_driver_stop_tag:
  case dfnet_v1_Envelope_driver_suspend_tag:
  case dfnet_v1_Envelope_driver_resume_tag: {
    pend_kind_t kind = env->pb.which_msg == dfnet_v1_Envelope_call_tag           ? PEND_CALL
                       : env->pb.which_msg == dfnet_v1_Envelope_driver_start_tag ? PEND_START
                       : env->pb.which_msg == dfnet_v1_Envelope_driver_stop_tag  ? PEND_STOP
                                                                                 : PEND_CONTROL;
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
  b->fds = fds;
  b->nfds = nfds;
  fds = NULL;
  nfds = 0;
  bool was_empty = h->out_head == NULL;
  LL_APPEND_ELEM(h->out_head, h->out_tail, b); /* after the tail: no walk */
  h->out_tail = b;
  if (was_empty && !sup->corked)
    flush_locked(sup, h);
unlock:
  pthread_mutex_unlock(&sup->mu);
  env->pb.id = tag;
  for (size_t i = 0; i < nfds; i++) /* not queued: nobody sends them */
    close(fds[i]);
  free(fds);
  return st;
}

/* ---- dispatch ---------------------------------------------------------------------------------
 */

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

/* What read_host hands its frames to. */
typedef struct sv_reading {
  dfnet_supervisor_t *sup;
  sv_host_t *h;
  size_t *delivered; /* counts the frames delivered */
} sv_reading_t;

/* Decode one frame, map its id, deliver it (dfnet_frame_fn; user: an sv_reading_t); or log
 * a frame skipped. */
static void read_frame(void *user, dfnet_status_t st, const uint8_t *frame, size_t len) {
  const sv_reading_t *r = user;
  dfnet_supervisor_t *sup = r->sup;
  sv_host_t *h = r->h;
  if (frame == NULL) {
    DFNET_LOGW(SV_SUBSYS, NULL, "driver host %llu: frame skipped: %s", (unsigned long long)h->id,
               dfnet_status_str(st));
    return;
  }
  const char *err = NULL;
  st = dfnet_envelope_decode(frame, len, DFNET_FRAME_MAX_DEFAULT, sup->denv, &err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(SV_SUBSYS, NULL, "driver host %llu sent a frame that does not decode: %s: %s",
               (unsigned long long)h->id, dfnet_status_str(st), err ? err : "?");
    return;
  }
  pthread_mutex_lock(&sup->mu);
  bool deliver = account_frame(sup, h, sup->denv) && !sup->freeing;
  pthread_mutex_unlock(&sup->mu);
  if (deliver) {
    sup->cfg.on_envelope(sup->cfg.arg, h->id, sup->denv);
    (*r->delivered)++;
  }
}

/* Read and deliver what the socket has: until a read returns less than asked for (the
 * socket was drained then; what came after makes the fd readable again, and epoll is
 * level-triggered), EAGAIN or EOF. */
static void read_host(dfnet_supervisor_t *sup, sv_host_t *h, size_t *delivered) {
  bool drained = false;
  while (!h->eof && !drained) {
    ssize_t got = read(h->fd, sup->chunk, SV_READ_CHUNK);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0 && errno == EAGAIN)
      break;
    if (got <= 0) {
      /* EOF: the process is ending; its pidfd tells when. */
      pthread_mutex_lock(&sup->mu);
      h->eof = true;
      drop_out_queue(h);
      epoll_ctl(sup->epfd, EPOLL_CTL_DEL, h->fd, NULL);
      pthread_mutex_unlock(&sup->mu);
      break;
    }
    drained = (size_t)got < SV_READ_CHUNK;
    sv_reading_t reading = {sup, h, delivered};
    dfnet_frame_reader_feed_all(&h->reader, sup->chunk, (size_t)got, read_frame, &reading);
  }
}

/* The process ended: read its last frames, answer what was in flight, report, free. */
static void reap_host(dfnet_supervisor_t *sup, sv_host_t *h, size_t *delivered) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  while (waitid(P_PIDFD, (id_t)h->pidfd, &info, WEXITED) != 0 && errno == EINTR)
    ;
  read_host(sup, h, delivered);
  int code = info.si_code == CLD_EXITED ? info.si_status : -1;
  int sig = info.si_code == CLD_EXITED ? 0 : info.si_status;
  char reason[DFNET_SANDBOX_REPORT_MAX + 1];
  char message[DFNET_SANDBOX_REPORT_MAX + 64];
  if (!sv__sandbox_report(h->report_fd, reason, sizeof reason)) /* "killed by seccomp: ..." */
    exit_reason(reason, sizeof reason, code, sig);
  snprintf(message, sizeof message, "driver host %llu (pid %ld) exited: %s",
           (unsigned long long)h->id, (long)h->pid, reason);
  DFNET_LOGI(SV_SUBSYS, NULL, "%s", message);

  pthread_mutex_lock(&sup->mu);
  h->exited = true;
  epoll_ctl(sup->epfd, EPOLL_CTL_DEL, h->pidfd, NULL);
  if (!h->eof)
    epoll_ctl(sup->epfd, EPOLL_CTL_DEL, h->fd, NULL);
  drop_out_queue(h);
  pend_t *pend = h->pend;
  size_t npend = h->npend;
  h->pend = NULL;
  h->npend = h->cap_pend = 0;
  for (size_t i = 0; i < npend; i++)
    if (pend[i].kind == PEND_START)
      add_node(h, pend[i].node);
  LL_DELETE(sup->hosts, h); /* there: found by dispatch, which alone removes hosts */
  bool quiet = sup->freeing;
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
    if (!quiet) {
      sup->cfg.on_envelope(sup->cfg.arg, h->id, env);
      (*delivered)++;
    }
    free(pend[i].node);
  }
  free(pend);
  dfnet_driver_host_exit_t x = {
      .host_id = h->id,
      .pid = h->pid,
      .exit_code = code,
      .signal = sig,
      .reason = reason,
      .nodes = (const char *const *)h->nodes,
      .node_count = h->nnodes,
  };
  if (!quiet) {
    sup->cfg.on_exit(sup->cfg.arg, &x);
    (*delivered)++;
  }
  free_host(h);
}

/* Handle what epoll reports now. Another pass only when the event array came back full:
 * what arrives meanwhile leaves the (level-triggered) epoll fd readable for the caller's
 * next poll. */
static void process_events(dfnet_supervisor_t *sup, size_t *delivered) {
  struct epoll_event evs[32];
  for (;;) {
    int n = epoll_wait(sup->epfd, evs, 32, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    for (int i = 0; i < n; i++) {
      uint64_t what = evs[i].data.u64 & 3u, id = evs[i].data.u64 >> 2;
      if (what == EP_TIMER) {
        uint64_t ticks;
        if (read(sup->timer_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
          DFNET_LOGE(SV_SUBSYS, NULL, "timerfd read: %s", strerror(errno));
        pthread_mutex_lock(&sup->mu);
        kill_timers_locked(sup);
        pthread_mutex_unlock(&sup->mu);
        continue;
      }
      /* Only dispatch frees hosts, so h stays valid after the lookup. */
      pthread_mutex_lock(&sup->mu);
      sv_host_t *h = find_host(sup, id);
      if (h != NULL && what == EP_SOCK && (evs[i].events & EPOLLOUT))
        flush_locked(sup, h);
      pthread_mutex_unlock(&sup->mu);
      if (h == NULL)
        continue;
      if (what == EP_SOCK && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        read_host(sup, h, delivered);
      else if (what == EP_PIDFD)
        reap_host(sup, h, delivered);
    }
    if (n < (int)(sizeof evs / sizeof evs[0]))
      return;
  }
}

void dfnet_supervisor_cork(dfnet_supervisor_t *sup) {
  pthread_mutex_lock(&sup->mu);
  sup->corked = true;
  pthread_mutex_unlock(&sup->mu);
}

void dfnet_supervisor_uncork(dfnet_supervisor_t *sup) {
  pthread_mutex_lock(&sup->mu);
  if (sup->corked) {
    sup->corked = false;
    sv_host_t *h;
    LL_FOREACH(sup->hosts, h) {
      if (h->out_head != NULL && !h->pollout)
        flush_locked(sup, h);
    }
  }
  pthread_mutex_unlock(&sup->mu);
}

size_t dfnet_supervisor_dispatch(dfnet_supervisor_t *sup) {
  size_t delivered = 0;
  process_events(sup, &delivered);
  return delivered;
}
