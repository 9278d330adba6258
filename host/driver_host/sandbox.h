/* A driver host's confinement (docs/architecture.md "Confinement"; issue 22 items 2 and 3,
 * "Driver rights"). Internal to host/driver_host.
 *
 * Started with --sandbox (host/supervisor/supervisor.h "Confinement": already without
 * capabilities in its bounding set, as the driver user, with no_new_privs), the driver host
 * confines itself at its FIRST DriverStart, once the descriptors of that start have come
 * (link.c) and before its driver is loaded (driver.c): only then are the driver's rights
 * and limits (its manifest's program block, lib/driver_rights.h) and the node's handed
 * directories known. In this order, on the link thread while it is the only thread (the
 * rescuer is started after, link.c):
 *   1. what glibc reads lazily is read now (tzset, the local time zone);
 *   2. the limits: RLIMIT_DATA = memory_mb MiB, RLIMIT_NOFILE = open_files (never above
 *      the hard limits it has);
 *   3. Landlock (landlock.c): reads beneath the --read-only directories, the handed
 *      directories and the system's libraries; what the rights add; no TCP without "inet";
 *   4. seccomp (seccomp.c): a SIGSYS handler that reports the system call on --report-fd,
 *      then a filter that kills on the dangerous calls and refuses non-local sockets;
 *   5. every capability dropped (capset), no_new_privs checked.
 * A confinement that cannot be applied refuses that DriverStart FAILED_PRECONDITION with
 * the cause, writes the cause on the report pipe, and the driver host exits 1
 * (dh_host.fatal). A later DriverStart (colocation) is not confined again: its rights must
 * be a subset of the first's (INTERNAL otherwise: the agent checks this first), and its
 * handed directories cannot be added to the Landlock domain (a warning names them).
 *
 * Threads: everything here runs on the link thread, but the SIGSYS handler (any thread).
 */
#ifndef DFNET_HOST_DRIVER_HOST_SANDBOX_H
#define DFNET_HOST_DRIVER_HOST_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/driver_host/runtime.h"
#include "lib/driver_rights.h"

/* --read-only directories, at most (host/supervisor DFNET_SANDBOX_READ_ONLY_MAX). */
#define DH_SANDBOX_READ_ONLY_MAX 8u
/* A line on the report pipe, at most, bytes (host/supervisor DFNET_SANDBOX_REPORT_MAX). */
#define DH_REPORT_LINE_MAX 200u

/* Built with AddressSanitizer (GCC's macro, clang's feature): RLIMIT_DATA is not applied
 * (sandbox.c) and ptrace is not trapped (seccomp.c). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DH_UNDER_ASAN 1
#endif
#endif
#if !defined(DH_UNDER_ASAN) && defined(__SANITIZE_ADDRESS__)
#define DH_UNDER_ASAN 1
#endif
#ifndef DH_UNDER_ASAN
#define DH_UNDER_ASAN 0
#endif

/* One --read-only FD:PATH: a directory of driver code, opened O_PATH by the agent. */
typedef struct dh_read_only {
  int fd;
  char path[4096]; /* absolute, no trailing '/' */
} dh_read_only_t;

/* The confinement's state (main.c owns it; dh_host.sandbox points at it). */
typedef struct dh_sandbox {
  int report_fd; /* --report-fd: the pipe the supervisor reads when this process ends; -1 */
  dh_read_only_t read_only[DH_SANDBOX_READ_ONLY_MAX];
  size_t read_only_count;
  bool confined;                 /* the first DriverStart confined the process */
  dfnet_driver_rights_t granted; /* that start's rights and limits */
} dh_sandbox_t;

/* Add one --read-only FD:PATH (main.c). Returns OK; INVALID_ARGUMENT with why[cap] (more
 * than DH_SANDBOX_READ_ONLY_MAX, no ':', a bad descriptor number, a PATH that is not
 * absolute, a descriptor that is no open directory). The descriptor gets FD_CLOEXEC. */
dfnet_status_t dh__sandbox_add_read_only(dh_sandbox_t *sb, const char *arg, char *why, size_t cap)
    __attribute__((warn_unused_result));

/* Admit DriverStart m (its program block `program`, its handed descriptors fds[0 .. nfds))
 * into this sandboxed driver host: at the first, confine the process (see the top); at a
 * later one, check its rights against the first's. Link thread, before the driver is loaded.
 * Returns OK; INVALID_ARGUMENT (the program's "rights" or "limits" malformed); INTERNAL
 * (rights beyond the first driver's); FAILED_PRECONDITION (the confinement cannot be
 * applied: host->fatal is set, the driver host exits once the refusal is sent); each with
 * one line into why[cap], which the caller sends and logs. */
dfnet_status_t dh__sandbox_admit(dh_host_t *host, const dfnet_v1_DriverStart *m,
                                 dfnet_bytes_t program, const int *fds, size_t nfds, char *why,
                                 size_t cap) __attribute__((warn_unused_result));

/* The path to dlopen for the driver binary `path`: beneath a --read-only PATH, the same file
 * through its descriptor, "/proc/self/fd/FD/<rest>" (the driver user may lack the right to
 * pass the directories above PATH); else path itself. Written to buf[cap]; returns buf.
 * sb may be NULL (not sandboxed). */
const char *dh__sandbox_driver_path(const dh_sandbox_t *sb, const char *path, char *buf,
                                    size_t cap);

/* ---- the mechanisms (landlock.c, seccomp.c) --------------------------------------------- */

/* Restrict the file system and TCP as the top says (3.) for a driver with `rights`, the
 * handed descriptors fds[0 .. nfds) adding their directories. On success *abi (may be NULL)
 * is the Landlock ABI used. Returns OK; FAILED_PRECONDITION ("Landlock is not available:
 * ...", or a step refused) with why[cap]. */
dfnet_status_t dh__landlock_apply(const dh_sandbox_t *sb, uint32_t rights, const int *fds,
                                  size_t nfds, int *abi, char *why, size_t cap)
    __attribute__((warn_unused_result));

/* Install the SIGSYS handler (it writes "killed by seccomp: <name>" on report_fd, -1: none)
 * and load the seccomp filter for a driver with `rights` on every thread. Returns OK;
 * FAILED_PRECONDITION with why[cap]. */
dfnet_status_t dh__seccomp_apply(int report_fd, uint32_t rights, char *why, size_t cap)
    __attribute__((warn_unused_result));

#endif /* DFNET_HOST_DRIVER_HOST_SANDBOX_H */
