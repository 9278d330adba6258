/* A driver host's confinement: the options, the admission of a DriverStart, the order of
 * the steps, the limits and the capabilities (host/driver_host/sandbox.h; Landlock in
 * landlock.c, seccomp in seccomp.c).
 */
#include "host/driver_host/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define SB_SUBSYS "driver-host"

/* ---- options ----------------------------------------------------------------------------- */

dfnet_status_t dh__sandbox_add_read_only(dh_sandbox_t *sb, const char *arg, char *why, size_t cap) {
  const char *colon = strchr(arg, ':');
  char *end = NULL;
  errno = 0;
  long fd = colon != NULL ? strtol(arg, &end, 10) : -1;
  if (sb->read_only_count == DH_SANDBOX_READ_ONLY_MAX) {
    snprintf(why, cap, "--read-only: at most %u directories", DH_SANDBOX_READ_ONLY_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (colon == NULL || errno != 0 || end != colon || end == arg || fd < 0 || fd > 65535) {
    snprintf(why, cap, "--read-only wants FD:PATH (a descriptor number, ':', a directory)");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  const char *path = colon + 1;
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/')
    len--;
  dh_read_only_t *ro = &sb->read_only[sb->read_only_count];
  if (path[0] != '/' || len >= sizeof ro->path) {
    snprintf(why, cap, "--read-only %.100s: the path must be absolute (and shorter than %zu)", arg,
             sizeof ro->path);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  struct stat sb_dir;
  if (fstat((int)fd, &sb_dir) != 0 || !S_ISDIR(sb_dir.st_mode) ||
      fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
    snprintf(why, cap, "--read-only %.100s: descriptor %ld is no open directory", arg, fd);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  ro->fd = (int)fd;
  memcpy(ro->path, path, len);
  ro->path[len] = '\0';
  sb->read_only_count++;
  return DFNET_STATUS_OK;
}

const char *dh__sandbox_driver_path(const dh_sandbox_t *sb, const char *path, char *buf,
                                    size_t cap) {
  for (size_t i = 0; sb != NULL && i < sb->read_only_count; i++) {
    const dh_read_only_t *ro = &sb->read_only[i];
    size_t len = strlen(ro->path);
    if (strncmp(path, ro->path, len) == 0 && path[len] == '/') {
      snprintf(buf, cap, "/proc/self/fd/%d%s", ro->fd, path + len);
      return buf;
    }
  }
  snprintf(buf, cap, "%s", path);
  return buf;
}

/* ---- the steps ------------------------------------------------------------------------------ */

/* 1. What glibc would read lazily from files the confinement hides. */
static void read_lazy_state(void) {
  tzset();
  time_t now = time(NULL);
  struct tm tm;
  (void)localtime_r(&now, &tm);
}

/* Lower the soft and hard limit `resource` to `value` (never above the hard limit). */
static dfnet_status_t lower_limit(int resource, const char *name, rlim_t value, char *why,
                                  size_t cap) {
  struct rlimit lim;
  if (getrlimit(resource, &lim) != 0) {
    snprintf(why, cap, "getrlimit %s: %s", name, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < value)
    value = lim.rlim_max;
  lim.rlim_cur = lim.rlim_max = value;
  if (setrlimit(resource, &lim) != 0) {
    snprintf(why, cap, "setrlimit %s %llu: %s", name, (unsigned long long)value, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

/* 2. The limits. Under AddressSanitizer RLIMIT_DATA is left alone: its shadow memory is
 * terabytes of private mappings already, and every later mapping would fail. */
static dfnet_status_t apply_limits(const dfnet_driver_rights_t *r, char *why, size_t cap) {
  dfnet_status_t st = DFNET_STATUS_OK;
#if DH_UNDER_ASAN
  DFNET_LOGD(SB_SUBSYS, NULL, "RLIMIT_DATA not applied under AddressSanitizer");
#else
  st = lower_limit(RLIMIT_DATA, "RLIMIT_DATA", (rlim_t)r->memory_mb * 1024u * 1024u, why, cap);
#endif
  if (st == DFNET_STATUS_OK)
    st = lower_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", r->open_files, why, cap);
  return st;
}

/* 5. No capability left in any set of this thread (the only one: the threads started later
 * inherit it), and no_new_privs (set before exec by the supervisor) still on. */
static dfnet_status_t drop_capabilities(char *why, size_t cap) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) != 0) {
    snprintf(why, cap, "capset: %s", strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    snprintf(why, cap, "clearing the ambient capabilities: %s", strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
    snprintf(why, cap, "no_new_privs is not set (dfnet-driver-host is started by dfnet-host)");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

/* Every step, in order (sandbox.h). */
static dfnet_status_t confine(dh_sandbox_t *sb, const dfnet_driver_rights_t *r, const int *fds,
                              size_t nfds, char *why, size_t cap) {
  char problem[512] = "";
  int abi = 0;
  read_lazy_state();
  dfnet_status_t st = apply_limits(r, problem, sizeof problem);
  if (st == DFNET_STATUS_OK)
    st = dh__landlock_apply(sb, r->rights, fds, nfds, &abi, problem, sizeof problem);
  if (st == DFNET_STATUS_OK)
    st = dh__seccomp_apply(sb->report_fd, r->rights, problem, sizeof problem);
  if (st == DFNET_STATUS_OK)
    st = drop_capabilities(problem, sizeof problem);
  if (st != DFNET_STATUS_OK) {
    snprintf(why, cap,
             "cannot confine the driver host: %s (dfnet-host --no-sandbox runs drivers "
             "unconfined)",
             problem);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  char rights[64];
  dfnet_rights_format(r->rights, rights, sizeof rights);
  DFNET_LOGI(SB_SUBSYS, NULL,
             "confined: uid %u, rights %s, memory %u MiB, %u open files, Landlock ABI %d, "
             "seccomp",
             (unsigned)getuid(), rights, r->memory_mb, r->open_files, abi);
  return DFNET_STATUS_OK;
}

/* ---- admission --------------------------------------------------------------------------- */

/* A later DriverStart: rights within the first's; its directories cannot join Landlock. */
static dfnet_status_t admit_later(const dh_sandbox_t *sb, const dfnet_v1_DriverStart *m,
                                  const dfnet_driver_rights_t *r, const int *fds, size_t nfds,
                                  char *why, size_t cap) {
  if ((r->rights & ~sb->granted.rights) != 0) {
    char have[64], want[64];
    dfnet_rights_format(sb->granted.rights, have, sizeof have);
    dfnet_rights_format(r->rights, want, sizeof want);
    snprintf(why, cap,
             "this driver host is confined for the rights of its first driver (%s); the "
             "driver of %s needs %s (the agent colocates only drivers whose rights are a "
             "subset of the first's)",
             have, m->node, want);
    return DFNET_STATUS_INTERNAL;
  }
  for (size_t i = 0; i < nfds && i < m->resources_count; i++) {
    struct stat st;
    if (fstat(fds[i], &st) == 0 && S_ISDIR(st.st_mode))
      DFNET_LOGW(SB_SUBSYS, m->node,
                 "resource %s is a directory, handed after this driver host was confined: "
                 "reads beneath it are refused (Landlock rules cannot be added to a running "
                 "domain)",
                 m->resources[i]);
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dh__sandbox_admit(dh_host_t *host, const dfnet_v1_DriverStart *m,
                                 dfnet_bytes_t program, const int *fds, size_t nfds, char *why,
                                 size_t cap) {
  dh_sandbox_t *sb = host->sandbox;
  dfnet_driver_rights_t r;
  char problem[400];
  if (dfnet_driver_rights_parse((const char *)program.data, program.size, &r, problem,
                                sizeof problem) != DFNET_STATUS_OK) {
    snprintf(why, cap, "the driver's manifest: %s", problem);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (sb->confined)
    return admit_later(sb, m, &r, fds, nfds, why, cap);
  dfnet_status_t st = confine(sb, &r, fds, nfds, why, cap);
  if (st == DFNET_STATUS_OK) {
    sb->confined = true;
    sb->granted = r;
    st = dh__link_start_rescuer(host); /* a thread of the confined process, now */
    if (st != DFNET_STATUS_OK)
      snprintf(why, cap, "cannot create the driver host's rescuer thread");
  }
  if (st != DFNET_STATUS_OK) {
    host->fatal = true;
    if (sb->report_fd >= 0) {
      char line[DH_REPORT_LINE_MAX];
      int n = snprintf(line, sizeof line - 1, "%s", why);
      size_t len = n < 0 ? 0 : (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
      line[len++] = '\n';
      if (write(sb->report_fd, line, len) < 0)
        DFNET_LOGD(SB_SUBSYS, NULL, "report pipe: %s", strerror(errno));
    }
  }
  return st;
}
