/* The external-command backend (power_switch.h), as labgrid's ExternalPowerDriver: for any
 * switch dfnet has no API for (a relay board's CLI, a PDU's SNMP tool, `ssh pdu ...`), the
 * board file gives shell commands:
 *   "on"  (required)  switches on:  exit status 0 = done;
 *   "off" (required)  switches off: exit status 0 = done;
 *   "get" (optional)  prints the state, the first word of its output: on/off, 1/0,
 *                     true/false (any case); without it the state is STATE_UNKNOWN.
 * Each runs as `/bin/sh -c CMD` in a process group of its own, stdin /dev/null, with
 * DFNET_POWER_INDEX set to the relay index; one that outlives its time is killed (the whole
 * group, SIGKILL) and the call ends UNAVAILABLE. A failure's message carries the exit status
 * and the head of what the command printed (stdout and stderr together).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drivers/power/power_switch.h"

#define COMMAND_OUTPUT_MAX 1024
#define COMMAND_TICK_MS 50

extern char **environ;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Start `/bin/sh -c cmd` with stdout and stderr into a pipe whose read end is *out_fd.
 * Returns its pid, or -1 with errno set. */
static pid_t spawn_shell(const char *cmd, uint32_t index, int *out_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  /* the environment plus DFNET_POWER_INDEX (no setenv: other threads may read it) */
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **envp = calloc(n + 2, sizeof *envp);
  char index_var[40];
  snprintf(index_var, sizeof index_var, "DFNET_POWER_INDEX=%u", index);
  size_t k = 0;
  for (size_t i = 0; envp != NULL && i < n; i++)
    if (strncmp(environ[i], "DFNET_POWER_INDEX=", 18) != 0)
      envp[k++] = environ[i];
  if (envp != NULL)
    envp[k] = index_var;
  char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
  pid_t pid;
  int rc = envp == NULL ? ENOMEM : posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
  free(envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    errno = rc;
    return -1;
  }
  *out_fd = fds[0];
  return pid;
}

/* Run cmd for at most timeout_ms; its output (NUL-terminated, cut at out_size - 1) into
 * out. OK when it exited 0; else UNAVAILABLE with the reason in why. */
static dfnet_status_t run(const power_switch_t *sw, const char *what, const char *cmd,
                          uint32_t timeout_ms, char *out, size_t out_size, char *why,
                          size_t why_size) {
  int fd = -1;
  pid_t pid = spawn_shell(cmd, sw->index, &fd);
  if (pid < 0) {
    snprintf(why, why_size, "%s: cannot run the \"%s\" command: %s", sw->address, what,
             strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
  }
  size_t len = 0;
  out[0] = '\0';
  uint64_t deadline = now_ms() + timeout_ms;
  bool open_pipe = true, late = false, aborted = false;
  while (open_pipe) {
    if ((aborted = atomic_load(sw->abort)) || (late = now_ms() >= deadline))
      break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, COMMAND_TICK_MS) <= 0)
      continue;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      open_pipe = false;
      continue;
    }
    size_t take = (size_t)n < out_size - 1 - len ? (size_t)n : out_size - 1 - len;
    memcpy(out + len, buf, take);
    len += take;
    out[len] = '\0';
  }
  close(fd);
  if (late || aborted)
    kill(-pid, SIGKILL);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
    ;
  if (late || aborted) {
    snprintf(why, why_size, "%s: the \"%s\" command %s", sw->address, what,
             aborted ? "was killed: the driver is stopping"
                     : "did not finish in time and was killed");
    return DFNET_STATUS_UNAVAILABLE;
  }
  while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
    out[--len] = '\0'; /* for messages */
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
    return DFNET_STATUS_OK;
  char status[40];
  if (WIFEXITED(ws))
    snprintf(status, sizeof status, "exit status %d", WEXITSTATUS(ws));
  else
    snprintf(status, sizeof status, "signal %d", WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
  snprintf(why, why_size, "%s: the \"%s\" command failed (%s): %.160s", sw->address, what, status,
           out);
  return DFNET_STATUS_UNAVAILABLE;
}

static dfnet_status_t command_set(const power_switch_t *sw, bool on, uint32_t timeout_ms, char *why,
                                  size_t why_size) {
  char out[COMMAND_OUTPUT_MAX];
  return run(sw, on ? "on" : "off", on ? sw->cmd_on : sw->cmd_off, timeout_ms, out, sizeof out, why,
             why_size);
}

static dfnet_status_t command_get(const power_switch_t *sw, power_state_t *state,
                                  uint32_t timeout_ms, char *why, size_t why_size) {
  if (sw->cmd_get == NULL) {
    *state = POWER_UNKNOWN;
    return DFNET_STATUS_OK;
  }
  char out[COMMAND_OUTPUT_MAX];
  dfnet_status_t st = run(sw, "get", sw->cmd_get, timeout_ms, out, sizeof out, why, why_size);
  if (st != DFNET_STATUS_OK)
    return st;
  const char *w = out;
  while (isspace((unsigned char)*w))
    w++;
  size_t n = strcspn(w, " \t\r\n");
  static const struct {
    const char *word;
    power_state_t state;
  } words[] = {{"on", POWER_ON},   {"1", POWER_ON},  {"true", POWER_ON},
               {"off", POWER_OFF}, {"0", POWER_OFF}, {"false", POWER_OFF}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (n == strlen(words[i].word) && strncasecmp(w, words[i].word, n) == 0) {
      *state = words[i].state;
      return DFNET_STATUS_OK;
    }
  snprintf(why, why_size,
           "%s: the \"get\" command printed \"%.60s\", not on/off, 1/0 or true/false", sw->address,
           out);
  return DFNET_STATUS_UNAVAILABLE;
}

const power_backend_t power_backend_command = {"command", 0, false, command_set, command_get, NULL};
