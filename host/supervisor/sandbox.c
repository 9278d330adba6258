/* The supervisor's part of confining a driver host (host/supervisor/sandbox.h). */
#include "host/supervisor/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/log.h"

#define SB_SUBSYS "supervisor"
/* Capabilities the child tries to drop from its bounding set: every number a kernel may
 * know (PR_CAPBSET_DROP says EINVAL past the last). */
#define SB_CAP_NUMBERS 64

void sv__sandbox_close(sv_sandbox_t *sb) {
  for (size_t i = 0; i < sb->nro; i++)
    if (sb->ro_fds[i] >= 0)
      close(sb->ro_fds[i]);
  sb->nro = 0;
  if (sb->exe_fd >= 0)
    close(sb->exe_fd);
  sb->exe_fd = -1;
  for (size_t i = 0; i < sb->nargs; i++)
    free(sb->args[i]);
  free(sb->args);
  sb->args = NULL;
  sb->nargs = 0;
}

/* Append a copy of `arg` to sb->args (room was made). */
static bool add_arg(sv_sandbox_t *sb, const char *arg) {
  sb->args[sb->nargs] = strdup(arg);
  return sb->args[sb->nargs++] != NULL;
}

/* Open read-only directory i (`path`) into sb->ro_fds[i] and its "--read-only FD:PATH". */
static dfnet_status_t open_read_only(sv_sandbox_t *sb, const char *path) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/')
    len--;
  if (path[0] != '/' || len >= 4096) {
    DFNET_LOGE(SB_SUBSYS, NULL, "sandbox read-only directory \"%.200s\": not an absolute path",
               path);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    DFNET_LOGE(SB_SUBSYS, NULL, "sandbox read-only directory %s: %s", path, strerror(err));
    return err == EACCES || err == EPERM ? DFNET_STATUS_PERMISSION_DENIED : DFNET_STATUS_NOT_FOUND;
  }
  size_t i = sb->nro++;
  sb->ro_fds[i] = fd;
  char arg[4200];
  snprintf(arg, sizeof arg, "%u:%.*s", (unsigned)(SV_CHILD_FD + 1 + i), (int)len, path);
  if (!add_arg(sb, "--read-only") || !add_arg(sb, arg))
    return DFNET_STATUS_INTERNAL;
  return DFNET_STATUS_OK;
}

dfnet_status_t sv__sandbox_open(const dfnet_sandbox_config_t *cfg, const char *exe,
                                sv_sandbox_t *sb) {
  memset(sb, 0, sizeof *sb);
  sb->exe_fd = -1;
  if (!cfg->enabled)
    return DFNET_STATUS_OK;
  size_t n = 0;
  for (const char *const *d = cfg->read_only; d != NULL && *d != NULL; d++)
    n++;
  if (n > DFNET_SANDBOX_READ_ONLY_MAX) {
    DFNET_LOGE(SB_SUBSYS, NULL, "sandbox: %zu read-only directories, at most %u", n,
               DFNET_SANDBOX_READ_ONLY_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  sb->enabled = true;
  sb->as_root = geteuid() == 0;
  sb->uid = cfg->uid;
  sb->gid = cfg->gid;
  sb->args = calloc(3 + 2 * n + 1, sizeof *sb->args);
  char report[16];
  snprintf(report, sizeof report, "%u", (unsigned)(SV_CHILD_FD + 1 + n));
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  if (sb->args == NULL || !add_arg(sb, "--sandbox") || !add_arg(sb, "--report-fd") ||
      !add_arg(sb, report))
    goto failed;
  for (size_t i = 0; i < n; i++) {
    st = open_read_only(sb, cfg->read_only[i]);
    if (st != DFNET_STATUS_OK)
      goto failed;
  }
  sb->exe_fd = open(exe, O_PATH | O_CLOEXEC);
  if (sb->exe_fd < 0) {
    st = dfnet_errno_status(errno);
    DFNET_LOGE(SB_SUBSYS, exe, "driver host executable: %s", strerror(errno));
    goto failed;
  }
  if (!sb->as_root && cfg->uid != getuid())
    DFNET_LOGW(SB_SUBSYS, NULL,
               "not running as root: sandboxed driver hosts keep this process's uid %u, not "
               "the driver user's %u",
               (unsigned)getuid(), (unsigned)cfg->uid);
  return DFNET_STATUS_OK;

failed:
  if (st == DFNET_STATUS_INTERNAL)
    DFNET_LOGE(SB_SUBSYS, NULL, "sandbox: out of memory");
  sv__sandbox_close(sb);
  return st;
}

/* ---- the child, between fork and exec: async-signal-safe calls only ---------------- */

/* Append s to buf[*len .. cap). */
static void put(char *buf, size_t *len, size_t cap, const char *s) {
  while (*s != '\0' && *len + 1 < cap)
    buf[(*len)++] = *s++;
}

/* Append the decimal digits of v. */
static void put_uint(char *buf, size_t *len, size_t cap, unsigned long v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && *len + 1 < cap)
    buf[(*len)++] = digits[--n];
}

/* Write "cannot start the driver host: <what> failed: errno <err>" to fd. */
static void child_report(int fd, const char *what, const char *detail, int err) {
  char line[DFNET_SANDBOX_REPORT_MAX];
  size_t len = 0;
  put(line, &len, sizeof line, "cannot start the driver host: ");
  put(line, &len, sizeof line, what);
  put(line, &len, sizeof line, detail);
  put(line, &len, sizeof line, " failed: errno ");
  put_uint(line, &len, sizeof line, (unsigned long)err);
  line[len++] = '\n';
  ssize_t ignored = write(fd, line, len);
  (void)ignored;
}

/* Move src[0 .. n) to the descriptors first, first + 1, ... (without their FD_CLOEXEC)
 * and close every other one from first on. Returns 0 or -1 (errno set). */
static int move_fds(const int *src, size_t n, int first) {
  int high[DFNET_SANDBOX_READ_ONLY_MAX + 2];
  int base = first + (int)n; /* above every target: no copy lands on one */
  for (size_t i = 0; i < n; i++)
    if ((high[i] = fcntl(src[i], F_DUPFD, base)) < 0)
      return -1;
  for (size_t i = 0; i < n; i++)
    if (dup2(high[i], first + (int)i) < 0)
      return -1;
  return close_range((unsigned)base, ~0u, 0);
}

/* Drop what the driver host must never have: the capability bounding set (as root; an
 * agent that is not has none to drop and may not: EPERM), the agent's groups and ids (as
 * root), then set no_new_privs. Raw system calls: they change this one thread, the only
 * one of the child. */
static int drop_privileges(const sv_sandbox_t *sb, int report) {
  for (unsigned long cap = 0; cap < SB_CAP_NUMBERS; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL &&
        (sb->as_root || errno != EPERM)) {
      child_report(report, "PR_CAPBSET_DROP", "", errno);
      return -1;
    }
  }
  if (sb->as_root) {
    if (syscall(SYS_setgroups, 0, NULL) != 0) {
      child_report(report, "setgroups", "", errno);
      return -1;
    }
    if (syscall(SYS_setresgid, sb->gid, sb->gid, sb->gid) != 0) {
      child_report(report, "setresgid to the driver user's group", "", errno);
      return -1;
    }
    if (syscall(SYS_setresuid, sb->uid, sb->uid, sb->uid) != 0) {
      child_report(report, "setresuid to the driver user", "", errno);
      return -1;
    }
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    child_report(report, "PR_SET_NO_NEW_PRIVS", "", errno);
    return -1;
  }
  return 0;
}

/* Where the child keeps the executable's descriptor: after the report pipe's. */
static int child_exe_fd(const sv_sandbox_t *sb) { return SV_CHILD_FD + 2 + (int)sb->nro; }

int sv__sandbox_child(const sv_sandbox_t *sb, int link_fd, int report_fd) {
  int src[DFNET_SANDBOX_READ_ONLY_MAX + 3];
  size_t n = 0;
  src[n++] = link_fd;
  if (sb->enabled) {
    for (size_t i = 0; i < sb->nro; i++)
      src[n++] = sb->ro_fds[i];
    src[n++] = report_fd;
    src[n++] = sb->exe_fd;
  }
  if (move_fds(src, n, SV_CHILD_FD) != 0 ||
      (sb->enabled && fcntl(child_exe_fd(sb), F_SETFD, FD_CLOEXEC) != 0)) {
    if (sb->enabled && report_fd >= 0)
      child_report(report_fd, "moving its descriptors", "", errno);
    return -1;
  }
  if (!sb->enabled)
    return 0;
  return drop_privileges(sb, SV_CHILD_FD + 1 + (int)sb->nro);
}

void sv__sandbox_exec(const sv_sandbox_t *sb, const char *const *argv) {
  extern char **environ;
  if (!sb->enabled)
    execv(argv[0], (char *const *)argv);
  else
    syscall(SYS_execveat, child_exe_fd(sb), "", (char *const *)argv, environ, AT_EMPTY_PATH);
}

void sv__sandbox_child_exec_failed(const sv_sandbox_t *sb, const char *path, int err) {
  if (sb->enabled)
    child_report(SV_CHILD_FD + 1 + (int)sb->nro, "exec of ", path, err);
}

/* ---- the report, read when the driver host is reaped ------------------------------- */

bool sv__sandbox_report(int report_fd, char *out, size_t cap) {
  if (report_fd < 0 || cap == 0)
    return false;
  char line[DFNET_SANDBOX_REPORT_MAX + 1];
  ssize_t got;
  do
    got = read(report_fd, line, DFNET_SANDBOX_REPORT_MAX);
  while (got < 0 && errno == EINTR);
  if (got <= 0)
    return false;
  line[got] = '\0';
  size_t len = strcspn(line, "\n");
  line[len] = '\0';
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
      line[i] = '?';
  if (len == 0)
    return false;
  snprintf(out, cap, "%s", line);
  return true;
}
