/* How this agent's driver hosts are confined (docs/architecture.md "Confinement";
 * host/supervisor/supervisor.h dfnet_sandbox_config_t): the driver user, the directory of
 * driver code they may read, and what the agent says about it at start.
 *
 * Sandboxed (the default), a driver host confines itself at its first DriverStart (Landlock,
 * seccomp, the limits and rights of its first driver); when the agent runs as root it runs
 * as the driver user (--driver-user, default dfnet-driver), which must exist: a missing one
 * is a usage error naming the three ways out. Not root, it runs as the agent's own user,
 * confined all the same. The driver user reads the package cache through a descriptor the
 * supervisor opens and hands over (cache.c "Modes": the cache itself is 0711), so the
 * directories above the cache do not matter; but it runs dfnet-driver-host by its path: an
 * executable it may not run (a directory on the way it cannot pass, no execute bit for it)
 * is a usage error here rather than a failed first start. With --no-sandbox nothing of this
 * applies and a warning says so at every start.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/agent/agent.h"
#include "lib/cmdline.h"
#include "lib/driver_rights.h"
#include "lib/log.h"

#define PROGRAM "dfnet-host"

/* May uid (group gid) pass through the directory (or execute the file) sb describes? The
 * owner's, group's or others' execute bit, as the kernel picks them (supplementary groups
 * not counted). */
static bool may_pass(const struct stat *sb, uid_t uid, gid_t gid) {
  if (uid == 0)
    return true;
  if (sb->st_uid == uid)
    return (sb->st_mode & S_IXUSR) != 0;
  if (sb->st_gid == gid)
    return (sb->st_mode & S_IXGRP) != 0;
  return (sb->st_mode & S_IXOTH) != 0;
}

/* May the driver user execute the file at `path`? The supervisor execs it by a descriptor
 * it opened as root (host/supervisor/sandbox.h), so the directories above it do not matter:
 * only the file's own execute bit for that user. On no: its mode in *mode. */
static bool runnable(const char *path, uid_t uid, gid_t gid, mode_t *mode) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return true; /* the supervisor says why it cannot open it */
  *mode = sb.st_mode & 07777;
  return may_pass(&sb, uid, gid);
}

/* As root: the driver user from --driver-user into a->driver_uid / driver_gid. */
static bool driver_user_lookup(agent_t *a) {
  const char *name = a->opt.driver_user;
  errno = 0;
  struct passwd *pw = getpwnam(name);
  if (pw == NULL) {
    if (errno != 0 && errno != ENOENT && errno != ESRCH)
      return dfnet_cmdline_usage(PROGRAM, "--driver-user %s: cannot look it up: %s", name,
                                 strerror(errno)),
             false;
    dfnet_cmdline_usage(PROGRAM,
                        "driver user %s does not exist: create it (useradd --system "
                        "--no-create-home --shell /usr/sbin/nologin %s), name another with "
                        "--driver-user, or run drivers unconfined with --no-sandbox",
                        name, name);
    return false;
  }
  if (pw->pw_uid == 0) {
    dfnet_cmdline_usage(PROGRAM,
                        "--driver-user %s: uid 0: driver hosts would run as root; name an "
                        "unprivileged user, or run drivers unconfined with --no-sandbox",
                        name);
    return false;
  }
  a->driver_uid = pw->pw_uid;
  a->driver_gid = pw->pw_gid;
  return true;
}

bool agent__sandbox_prepare(agent_t *a) {
  a->sandbox_read_only[0] = a->cache_dir;
  a->sandbox_read_only[1] = NULL;
  a->driver_uid = geteuid();
  a->driver_gid = getegid();
  if (a->opt.no_sandbox)
    return true;
  if (geteuid() != 0)
    return true; /* confined, as the agent's own user: no user to switch to */
  if (!driver_user_lookup(a))
    return false;
  mode_t mode = 0;
  if (!runnable(a->driver_host_path, a->driver_uid, a->driver_gid, &mode)) {
    dfnet_cmdline_usage(PROGRAM,
                        "--driver-host %s: the driver user %s (uid %u) cannot run it: it is "
                        "mode %04o; make it executable for that user (chmod 0755), or run "
                        "drivers unconfined with --no-sandbox",
                        a->driver_host_path, a->opt.driver_user, (unsigned)a->driver_uid,
                        (unsigned)mode);
    return false;
  }
  return true;
}

void agent__sandbox_config(const agent_t *a, dfnet_sandbox_config_t *out) {
  memset(out, 0, sizeof *out);
  out->enabled = !a->opt.no_sandbox;
  out->uid = a->driver_uid;
  out->gid = a->driver_gid;
  out->read_only = a->sandbox_read_only;
}

void agent__sandbox_announce(const agent_t *a) {
  char allowed[64];
  (void)dfnet_rights_format(a->opt.allow_rights, allowed, sizeof allowed);
  if (a->opt.no_sandbox) {
    DFNET_LOGW(AGENT_SUBSYS, a->host_name,
               "SANDBOX OFF (--no-sandbox): driver hosts run UNCONFINED as uid %u, with every "
               "right and no limit: any driver can do anything this agent can",
               (unsigned)geteuid());
    return;
  }
  DFNET_LOGI(AGENT_SUBSYS, a->host_name,
             "driver hosts run sandboxed as %s (uid %u), reading drivers from %s; rights "
             "allowed: %s",
             geteuid() == 0 ? a->opt.driver_user : "this agent's user", (unsigned)a->driver_uid,
             a->cache_dir, allowed);
}
