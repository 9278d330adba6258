/* hostile: a test driver that, in its `start`, tries one thing a confined driver host must
 * not let a driver do (docs/architecture.md "Confinement"), chosen by its manifest program's
 * config: {"config": {"try": WHAT, "path": P, "port": N}}.
 *
 *   "shadow"   open /etc/shadow for reading
 *   "sysfs"    read "vendor" in the PCI function directory it was handed as "sysfs" (this
 *              must work), then open P: another function's "config"
 *   "devmem"   open /dev/mem for reading
 *   "device"   open P for reading (a device file it was not handed: /dev/kmsg)
 *   "exec"     execve /bin/sh
 *   "inet"     socket(AF_INET, SOCK_STREAM) and connect to 127.0.0.1:N
 *   "ptrace"   ptrace(PTRACE_ATTACH) its parent (the host agent)
 *   "package"  create a file in the directory its own .so was loaded from
 *
 * Refused, the start fails FAILED_PRECONDITION with "<what>: <strerror> (errno N)" as its
 * reason; a system call the seccomp filter forbids kills the driver host instead. Let
 * through (an unconfined driver host), the start succeeds and logs "<what>: allowed" ("exec"
 * then runs /bin/sh -c 'exit 0' in its place: only ever try it confined). It serves nothing.
 */
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dfnet/driver.h"

typedef struct hostile {
  char what[32];
  char path[512];
  int port;
} hostile_t;

/* The config of the program block into *h. */
static void read_config(dfnet_driver_t *driver, hostile_t *h) {
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const char *what = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "try"));
  const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "path"));
  const cJSON *port = cJSON_GetObjectItemCaseSensitive(config, "port");
  snprintf(h->what, sizeof h->what, "%s", what != NULL ? what : "");
  snprintf(h->path, sizeof h->path, "%s", path != NULL ? path : "");
  h->port = cJSON_IsNumber(port) ? port->valueint : 0;
  cJSON_Delete(program);
}

/* An attempt's outcome: refused (the start fails with why) or let through. */
static dfnet_status_t outcome(dfnet_driver_t *driver, const char *what, int rc, int err) {
  if (rc < 0) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s: %s (errno %d)", what, strerror(err), err);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "%s: allowed", what);
  return DFNET_STATUS_OK;
}

static dfnet_status_t try_open(dfnet_driver_t *driver, const char *what, const char *path,
                               int flags) {
  int fd = open(path, flags | O_CLOEXEC, 0644);
  int err = errno;
  if (fd >= 0)
    close(fd);
  return outcome(driver, what, fd, err);
}

static dfnet_status_t try_sysfs(dfnet_driver_t *driver, const hostile_t *h) {
  int dir = dfnet_driver_resource_fd(driver, "sysfs");
  int own = dir >= 0 ? openat(dir, "vendor", O_RDONLY | O_CLOEXEC) : -1;
  if (own < 0)
    return outcome(driver, "its own sysfs vendor", -1, dir < 0 ? EBADF : errno);
  close(own);
  return try_open(driver, h->path, h->path, O_RDONLY);
}

static dfnet_status_t try_inet(dfnet_driver_t *driver, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return outcome(driver, "socket AF_INET", -1, errno);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, (const struct sockaddr *)&to, sizeof to);
  int err = errno;
  close(fd);
  return outcome(driver, "connect 127.0.0.1", rc, err);
}

/* The directory this .so was loaded from: "<dir>/hostile-was-here". */
static dfnet_status_t try_package(dfnet_driver_t *driver) {
  Dl_info info;
  if (dladdr((const void *)try_package, &info) == 0 || info.dli_fname == NULL)
    return outcome(driver, "dladdr", -1, ENOENT);
  char path[600];
  snprintf(path, sizeof path, "%s", info.dli_fname);
  char *slash = strrchr(path, '/');
  snprintf(slash != NULL ? slash + 1 : path, sizeof path - (size_t)(slash + 1 - path),
           "hostile-was-here");
  dfnet_status_t st = try_open(driver, path, path, O_WRONLY | O_CREAT | O_TRUNC);
  if (st == DFNET_STATUS_OK)
    unlink(path);
  return st;
}

static dfnet_status_t hostile_start(dfnet_driver_t *driver, void *ctx) {
  hostile_t *h = ctx;
  read_config(driver, h);
  if (strcmp(h->what, "shadow") == 0)
    return try_open(driver, "/etc/shadow", "/etc/shadow", O_RDONLY);
  if (strcmp(h->what, "sysfs") == 0)
    return try_sysfs(driver, h);
  if (strcmp(h->what, "devmem") == 0)
    return try_open(driver, "/dev/mem", "/dev/mem", O_RDONLY);
  if (strcmp(h->what, "device") == 0)
    return try_open(driver, h->path, h->path, O_RDONLY);
  if (strcmp(h->what, "exec") == 0) {
    char *const argv[] = {"sh", "-c", "exit 0", NULL};
    execv("/bin/sh", argv);
    return outcome(driver, "execve /bin/sh", -1, errno);
  }
  if (strcmp(h->what, "inet") == 0)
    return try_inet(driver, h->port);
  if (strcmp(h->what, "ptrace") == 0) {
    long rc = ptrace(PTRACE_ATTACH, getppid(), NULL, NULL);
    int err = errno;
    if (rc == 0)
      ptrace(PTRACE_DETACH, getppid(), NULL, NULL);
    return outcome(driver, "ptrace PTRACE_ATTACH", rc == 0 ? 0 : -1, err);
  }
  if (strcmp(h->what, "package") == 0)
    return try_package(driver);
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "config.try \"%s\": nothing to try", h->what);
  return DFNET_STATUS_INVALID_ARGUMENT;
}

DFNET_DRIVER("hostile", hostile_t, .start = hostile_start);
