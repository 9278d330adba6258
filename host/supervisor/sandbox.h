/* The supervisor's part of confining a driver host (supervisor.h "Confinement";
 * docs/architecture.md "Confinement"; issue 22 items 2 and 3): the directories of driver
 * code it opens once, the arguments and descriptors a sandboxed driver host gets, what its
 * child does between fork and exec, and the report pipe a driver host says its end on.
 * Internal to host/supervisor (sv__ names).
 *
 * Threads: sv__sandbox_open / _close on the thread creating / freeing the supervisor;
 * sv__sandbox_child in the forked child only (async-signal-safe calls only);
 * sv__sandbox_report on the dispatching thread. The set is not changed after it is open.
 */
#ifndef DFNET_HOST_SUPERVISOR_SANDBOX_H
#define DFNET_HOST_SUPERVISOR_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "host/supervisor/supervisor.h"

/* The descriptor a driver host's link is in the child (supervisor.c). */
#define SV_CHILD_FD 3

/* The confinement every driver host of a supervisor gets. */
typedef struct sv_sandbox {
  bool enabled;
  bool as_root; /* the agent runs as root: the child takes uid/gid */
  uid_t uid;
  gid_t gid;
  int ro_fds[DFNET_SANDBOX_READ_ONLY_MAX]; /* O_PATH directories (ours) */
  size_t nro;
  /* The driver host executable, O_PATH, opened while we may still reach it: the child
   * execs it by this descriptor (execveat AT_EMPTY_PATH), so the driver user needs the
   * right to execute the file only, not to pass the directories above it (a tree built in
   * a 0700 home or mktemp directory). -1: not open. */
  int exe_fd;
  /* The driver host's extra arguments: "--sandbox", "--report-fd", "N", then
   * "--read-only", "FD:PATH" per directory; NULL-terminated; owned. */
  char **args;
  size_t nargs;
} sv_sandbox_t;

/* Open what `cfg` names, and the driver host executable `exe`, into *sb (zeroed first;
 * disabled: nothing to open). Logs once why it cannot.
 * Returns OK; INVALID_ARGUMENT (more than DFNET_SANDBOX_READ_ONLY_MAX directories, a
 * relative one); NOT_FOUND (a directory missing, or not a directory); PERMISSION_DENIED
 * (one the agent may not open); INTERNAL (memory). On error nothing stays open. */
dfnet_status_t sv__sandbox_open(const dfnet_sandbox_config_t *cfg, const char *exe,
                                sv_sandbox_t *sb) __attribute__((warn_unused_result));

/* Close and free what sv__sandbox_open made. Idempotent. */
void sv__sandbox_close(sv_sandbox_t *sb);

/* In the forked child, before exec: move the link (link_fd) to SV_CHILD_FD, the read-only
 * directories to 4, 5, ..., the report pipe's write end (report_fd) after them and the
 * executable's descriptor last (close-on-exec), close every other descriptor; sandboxed, drop the
 * capability bounding set, and as root the supplementary groups, gid and uid; set no_new_privs.
 * Async-signal-safe calls only. Returns 0, or -1 having written why to the report pipe (the caller
 * then _exits 127). */
int sv__sandbox_child(const sv_sandbox_t *sb, int link_fd, int report_fd);

/* Exec the driver host with argv (argv[0] its path) and this process's environment:
 * sandboxed, by the executable's descriptor (execveat(2) AT_EMPTY_PATH), else by path.
 * Returns only when exec failed (errno set). Async-signal-safe. */
void sv__sandbox_exec(const sv_sandbox_t *sb, const char *const *argv);

/* Sandboxed child only: exec failed with `err`; say so on the report pipe (fd
 * SV_CHILD_FD + 1 + nro). Async-signal-safe. */
void sv__sandbox_child_exec_failed(const sv_sandbox_t *sb, const char *path, int err);

/* What a driver host wrote on its report pipe (read end report_fd, non-blocking): its
 * first line, at most DFNET_SANDBOX_REPORT_MAX bytes, without control characters, into
 * out[cap]. Returns false (out untouched) when it wrote nothing. */
bool sv__sandbox_report(int report_fd, char *out, size_t cap);

#endif /* DFNET_HOST_SUPERVISOR_SANDBOX_H */
