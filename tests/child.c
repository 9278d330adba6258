/* Child processes of a test program, which never outlive it (child.h). */
#include "child.h"

#include <errno.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHILD_MAX = 256 };

typedef struct child {
  pid_t pid;
  int pidfd; /* tells a child not reaped yet from a number the kernel gave to another */
} child_t;

static child_t g_children[CHILD_MAX];
static size_t g_count;
static pid_t g_owner; /* the process that registered them */

/* Async-signal-safe: the signal handler runs it too. */
void test_child_kill_all(void) {
  if (g_owner != getpid())
    return;
  for (size_t i = 0; i < g_count; i++) {
    child_t *c = &g_children[i];
    if (c->pid <= 0)
      continue;
    /* Signal 0 succeeds while the child runs or is a zombie, so its number still names
     * its process group; after the test reaped it, it fails with ESRCH. */
    if (pidfd_send_signal(c->pidfd, 0, NULL, 0) == 0) {
      kill(-c->pid, SIGKILL);
      kill(c->pid, SIGKILL);
      waitpid(c->pid, NULL, 0);
    }
    close(c->pidfd);
    c->pid = 0;
  }
  g_count = 0;
}

static void on_signal(int sig) {
  test_child_kill_all();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_once(void) {
  static bool installed;
  if (installed)
    return;
  installed = true;
  g_owner = getpid();
  atexit(test_child_kill_all);
  const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
      signal(sigs[i], on_signal);
  }
}

/* In the child, before anything else: die with the parent. */
static void child_setup(pid_t parent, bool own_group) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) /* the parent died before prctl */
    _exit(127);
  if (own_group)
    setpgid(0, 0);
}

static pid_t registered(pid_t pid, bool own_group) {
  if (own_group)
    setpgid(pid, pid); /* also here, so the group exists whichever side runs first */
  int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) {
    int saved = errno;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    errno = saved;
    return -1;
  }
  g_children[g_count].pid = pid;
  g_children[g_count].pidfd = pidfd;
  g_count++;
  return pid;
}

/* Reuse the slots of children the test has reaped, so long runs do not fill the table. */
static bool make_room(void) {
  if (g_count < CHILD_MAX)
    return true;
  size_t kept = 0;
  for (size_t i = 0; i < g_count; i++) {
    if (pidfd_send_signal(g_children[i].pidfd, 0, NULL, 0) == 0) {
      g_children[kept++] = g_children[i];
    } else {
      close(g_children[i].pidfd);
    }
  }
  g_count = kept;
  return g_count < CHILD_MAX;
}

pid_t test_child_fork(void) {
  install_once();
  if (!make_room()) {
    errno = EMFILE;
    return -1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    child_setup(parent, true);
    return 0;
  }
  return registered(pid, true);
}

pid_t test_child_forkpty(int *master) {
  install_once();
  if (!make_room()) {
    errno = EMFILE;
    return -1;
  }
  pid_t parent = getpid();
  pid_t pid = forkpty(master, NULL, NULL, NULL);
  if (pid < 0)
    return -1;
  if (pid == 0) {
    child_setup(parent, false); /* forkpty made it a session (and group) leader */
    return 0;
  }
  return registered(pid, false);
}

void test_child_read_output(const char *path, char *buf, size_t cap) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}
