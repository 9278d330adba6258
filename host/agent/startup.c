/* dfnet-host's start-up checks (issue 6 "dfnet-host"; docs/architecture.md "Processes and
 * threads", dfnet-host): before the loop runs, the credentials (--cert, --key, --ca: loaded,
 * a host certificate issued by the CA, --name equal to its CN), the inputs (--sysfs-root,
 * --board), the driver host executable (--driver-host, DFNET_DRIVER_HOST, else beside this
 * executable), the cache directory (--cache-dir, else the XDG default; its artifacts/
 * directory made) and the sandbox (sandbox.c). Each failure prints one line, a usage line or
 * pki's own (main.c, which runs them, then exits 2).
 *
 * Main thread, before the transport exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/agent/agent.h"
#include "lib/cmdline.h"
#include "lib/pki.h"

#define PROGRAM "dfnet-host"

char agent__os_host_name[256];

/* Is the file there and readable? On no: one line naming the flag and why. */
static bool file_readable(const char *flag, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    dfnet_cmdline_usage(PROGRAM, "%s %s: %s", flag, path, strerror(errno));
    return false;
  }
  struct stat sb;
  bool ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
  close(fd);
  if (!ok)
    dfnet_cmdline_usage(PROGRAM, "%s %s: not a regular file", flag, path);
  return ok;
}

bool agent__check_credentials(agent_t *a) {
  const agent_options_t *o = &a->opt;
  if (!file_readable("--cert", o->cert_file) || !file_readable("--key", o->key_file) ||
      !file_readable("--ca", o->ca_file))
    return false;
  dfnet_pki_cert_t *cert = NULL, *ca = NULL;
  dfnet_pki_key_t *key = NULL;
  bool ok = false;
  if (dfnet_pki_cert_load(o->cert_file, &cert) != DFNET_STATUS_OK ||
      dfnet_pki_key_load(o->key_file, &key) != DFNET_STATUS_OK ||
      dfnet_pki_cert_load(o->ca_file, &ca) != DFNET_STATUS_OK ||
      dfnet_pki_key_check_pair(cert, key) != DFNET_STATUS_OK)
    goto free_creds; /* pki has logged the one line naming the file and the problem */
  dfnet_pki_cert_info_t info;
  if (dfnet_pki_cert_info(cert, &info) != DFNET_STATUS_OK)
    goto free_creds;
  if (info.role != DFNET_PKI_ROLE_HOST) {
    dfnet_cmdline_usage(PROGRAM,
                        "--cert %s: a certificate with role \"%s\", a host agent needs \"host\"",
                        o->cert_file, info.ou);
    goto free_creds;
  }
  if (dfnet_pki_cert_verify(ca, cert, NULL) != DFNET_STATUS_OK)
    goto free_creds; /* logged by pki */
  if (o->name != NULL && strcmp(o->name, info.cn) != 0) {
    dfnet_cmdline_usage(
        PROGRAM,
        "--name %s: the certificate %s is issued to \"%s\" (the manager names hosts "
        "by their certificate)",
        o->name, o->cert_file, info.cn);
    goto free_creds;
  }
  if (o->name == NULL) {
    gethostname(agent__os_host_name, sizeof agent__os_host_name - 1);
    if (strcmp(agent__os_host_name, info.cn) == 0)
      agent__os_host_name[0] = '\0'; /* nothing to say */
  }
  agent__strlcpy(a->host_name, info.cn, sizeof a->host_name);
  snprintf(a->root, sizeof a->root, "dev.%s", a->host_name);
  ok = true;
free_creds:
  dfnet_pki_cert_free(cert);
  dfnet_pki_cert_free(ca);
  dfnet_pki_key_free(key);
  return ok;
}

static bool find_driver_host(agent_t *a) {
  const char *given = a->opt.driver_host;
  if (given == NULL)
    given = getenv("DFNET_DRIVER_HOST");
  if (given != NULL && given[0] != '\0') {
    if (access(given, X_OK) != 0) {
      dfnet_cmdline_usage(PROGRAM, "--driver-host %s: %s", given, strerror(errno));
      return false;
    }
    agent__strlcpy(a->driver_host_path, given, sizeof a->driver_host_path);
    return true;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return dfnet_cmdline_usage(PROGRAM,
                               "cannot find this executable (/proc/self/exe): give --driver-host"),
           false;
  self[n] = '\0';
  char *dir = dirname(self);
  /* Installed: beside dfnet-host; build tree: host/driver_host/ next to host/agent/. */
  const char *candidates[] = {"dfnet-driver-host", "../driver_host/dfnet-driver-host"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, candidates[i]);
    if (access(path, X_OK) == 0) {
      agent__strlcpy(a->driver_host_path, path, sizeof a->driver_host_path);
      return true;
    }
  }
  dfnet_cmdline_usage(PROGRAM, "no dfnet-driver-host beside %s: give --driver-host PATH", dir);
  return false;
}

static bool pick_cache_dir(agent_t *a) {
  const char *dir = a->opt.cache_dir;
  char def[4096];
  if (dir == NULL) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/')
      snprintf(def, sizeof def, "%s/dfnet-host", xdg);
    else if (home != NULL && home[0] == '/')
      snprintf(def, sizeof def, "%s/.cache/dfnet-host", home);
    else
      snprintf(def, sizeof def, "/var/cache/dfnet-host");
    dir = def;
  }
  char err[600];
  if (agent__cache_init(dir, err, sizeof err) != DFNET_STATUS_OK) {
    dfnet_cmdline_usage(PROGRAM, "%s", err);
    return false;
  }
  /* absolute: DriverStart.local_path, and the directory of driver code the supervisor opens
   * for sandboxed driver hosts (sandbox.c) */
  char real[PATH_MAX];
  if (realpath(dir, real) != NULL)
    dir = real;
  agent__strlcpy(a->cache_dir, dir, sizeof a->cache_dir);
  /* the artifact cache (artifacts.c) lives beside the packages */
  snprintf(a->artifact_dir, sizeof a->artifact_dir, "%s/artifacts", dir);
  if (mkdir(a->artifact_dir, 0700) != 0 && errno != EEXIST) {
    dfnet_cmdline_usage(PROGRAM, "cannot create %s: %s", a->artifact_dir, strerror(errno));
    return false;
  }
  return true;
}

bool agent__check_inputs(agent_t *a) {
  struct stat sb;
  if (stat(a->opt.sysfs_root, &sb) != 0) {
    dfnet_cmdline_usage(PROGRAM, "--sysfs-root %s: %s", a->opt.sysfs_root, strerror(errno));
    return false;
  }
  if (!S_ISDIR(sb.st_mode)) {
    dfnet_cmdline_usage(PROGRAM, "--sysfs-root %s: not a directory", a->opt.sysfs_root);
    return false;
  }
  if (a->opt.board_file != NULL && !file_readable("--board", a->opt.board_file))
    return false;
  return find_driver_host(a) && pick_cache_dir(a) && agent__sandbox_prepare(a);
}
