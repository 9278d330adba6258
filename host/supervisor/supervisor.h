/* The driver-host supervisor: how the host agent spawns dfnet-driver-host processes, talks
 * to them and learns of their death (docs/design.md "The picture"; docs/spec/dfv2.md "Driver hosts
 * and lifecycle"; issue 6 "dfnet-driver-host and the runtime").
 *
 * Each driver host is a child process (fork + exec of dfnet-driver-host) holding one end
 * of a socketpair as its fd 3; the other end (SOCK_CLOEXEC, non-blocking) stays here. Both
 * sides speak length-prefixed dfnet.v1 Envelopes (lib/frame.h).
 *
 * Threads. The supervisor has no thread of its own: it is driven by the agent's loop.
 * dfnet_supervisor_fd() is an epoll descriptor that becomes readable when a driver host
 * sent something, exited, or a stop grace period ran out; the agent then calls
 * dfnet_supervisor_dispatch() on its thread (with libwebsockets: adopt the fd as a raw
 * file and dispatch on LWS_CALLBACK_RAW_RX_FILE). Every callback runs inside
 * dfnet_supervisor_dispatch(), in the order received, with no lock held: callbacks may
 * call any dfnet_supervisor_* function but dispatch itself. dispatch must be called from
 * one thread at a time; the other functions are thread-safe.
 *
 * Ids. Requests the agent sends (Call, DriverStart, DriverStop, DriverSuspend,
 * DriverResume) are renumbered on the link (1, 2, 3 ..., never 2^63 or more), so the agent
 * may use any id it likes (e.g. the manager's): the replies (Reply, Status) come back with
 * the agent's own id. Cancel and StreamCredit name the Call by the agent's id too. Requests
 * from the driver host (NodeAdd, NodeRemove, and a driver's Call to another driver with its
 * Cancel and StreamCredit) keep the driver host's id, which has bit 63 set: answer them with
 * a Status or Replies carrying that id (passed through as they are).
 *
 * Exactly once. Each Call sent gets exactly one final Reply (end_of_stream = true) through
 * on_envelope, and each DriverStart / DriverStop / DriverSuspend / DriverResume exactly one
 * Status: the driver host's, or, when the process dies first, one made here with
 * UNAVAILABLE and the reason ("driver host 2 (pid 4242) exited: killed by SIGSEGV"; a
 * sandboxed one's report instead when it made one: "... exited: killed by seccomp:
 * execve", see "Confinement"). Late
 * frames for requests already answered are dropped. Then on_exit reports the process's end
 * with the nodes whose drivers died.
 *
 * Descriptors. A frame may carry descriptors (dfnet_supervisor_send_fds: a DriverStart and
 * the resources its driver is handed); the driver host reads them with the frame
 * (host/driver_host/link.c). Nothing the driver hosts send carries any: read(2) closes
 * what a driver host would attach.
 *
 * Confinement (docs/architecture.md "Confinement"; issue 22 items 2 and 3). With
 * config.sandbox.enabled, each driver host is started unprivileged and confines itself
 * further at its first DriverStart. Between fork and exec (async-signal-safe calls only)
 * the child gets the link as fd 3, the read-only directories as fds 4, 5, ... and the write
 * end of a report pipe after them; it drops the whole capability bounding set, and, when
 * the agent runs as root, its supplementary groups, then takes the driver user's gid and
 * uid; it sets no_new_privs; it runs dfnet-driver-host with `--sandbox --report-fd N
 * --read-only FD:PATH ...` beside the usual arguments. The driver host writes there one
 * line saying why it dies when it cannot go on (a system call its seccomp filter forbids:
 * "killed by seccomp: execve"; a confinement it cannot apply); the supervisor reads it
 * when it reaps the process and reports it as the exit's reason instead of "killed by
 * SIGSYS" or "exited with code 1" (a child that cannot set itself up before exec says why
 * there too, and exits 127).
 *
 * The agent must not set SIGCHLD to SIG_IGN (the kernel would reap the children itself).
 * A driver host's crash never reaches the agent: its writes use MSG_NOSIGNAL.
 */
#ifndef DFNET_HOST_SUPERVISOR_H
#define DFNET_HOST_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dfnet/status.h"
#include "lib/envelope.h"

typedef struct dfnet_supervisor dfnet_supervisor_t;

/* How a driver host ended. Strings and arrays are owned by the supervisor and valid during
 * the on_exit callback only. */
typedef struct dfnet_driver_host_exit {
  uint64_t host_id;
  pid_t pid;
  int exit_code;            /* when it exited, else -1 */
  int signal;               /* the signal that killed it, else 0 */
  const char *reason;       /* "exited with code 0", "killed by SIGSEGV", or what a sandboxed
                               driver host reported before it died: "killed by seccomp:
                               execve" (at most DFNET_SANDBOX_REPORT_MAX bytes) */
  const char *const *nodes; /* monikers of the drivers that ran (or were starting) in it */
  size_t node_count;
} dfnet_driver_host_exit_t;

/* Directories of driver code a sandboxed driver host may read, at most. */
#define DFNET_SANDBOX_READ_ONLY_MAX 8u
/* The longest line a sandboxed driver host reports as the reason of its end, bytes. */
#define DFNET_SANDBOX_REPORT_MAX 200u

/* How the driver hosts are confined (see "Confinement" above). */
typedef struct dfnet_sandbox_config {
  bool enabled; /* false: driver hosts run as the agent, unconfined (dfnet-host --no-sandbox) */
  uid_t uid;    /* the driver user's uid/gid; used only when the agent runs as root */
  gid_t gid;
  const char *const *read_only; /* NULL-terminated directories that hold driver code (the agent's
                                   package cache), or NULL; copied */
} dfnet_sandbox_config_t;

typedef struct dfnet_supervisor_config {
  /* Path of the dfnet-driver-host executable. NULL: $DFNET_DRIVER_HOST, else
   * "dfnet-driver-host" beside the running executable (/proc/self/exe). Copied. */
  const char *driver_host_path;
  /* Extra arguments for every driver host (e.g. {"--log-level", "debug"}), NULL-terminated
   * or NULL. Copied. */
  const char *const *extra_args;
  /* After dfnet_supervisor_close() (or _free), how long a driver host may take to stop its
   * drivers before it gets SIGKILL, ms. 0: 5000. */
  uint32_t stop_grace_ms;
  /* Confinement of every driver host (see "Confinement" above); all zero: none. The
   * read_only list (absolute paths, at most DFNET_SANDBOX_READ_ONLY_MAX) is opened by
   * dfnet_supervisor_new (O_PATH) and handed to each driver host, which reads its drivers
   * through them (dlopen of /proc/self/fd/N/...): the driver user needs no right on the
   * directories above them. */
  dfnet_sandbox_config_t sandbox;

  /* An envelope from driver host `host_id`: Reply / Status (with the agent's id),
   * NodeAdd / NodeRemove (the driver host's id), or anything else it sent. `env` and its
   * bulk bytes are valid during the call only. Required. */
  void (*on_envelope)(void *arg, uint64_t host_id, const dfnet_envelope_t *env);
  /* A driver host ended; its id is invalid afterwards. Required. */
  void (*on_exit)(void *arg, const dfnet_driver_host_exit_t *exit);
  void *arg;
} dfnet_supervisor_config_t;

/* Create a supervisor. The config is copied. With config->sandbox.enabled, each read_only
 * directory is opened O_PATH | O_DIRECTORY | O_CLOEXEC and kept until
 * dfnet_supervisor_free; when the agent does not run as root and sandbox.uid is not its
 * uid, a warning says once that driver hosts keep the agent's uid. Any thread.
 * Returns OK and *out; INVALID_ARGUMENT (a required callback missing; more than
 * DFNET_SANDBOX_READ_ONLY_MAX read_only directories, or one that is not an absolute path);
 * NOT_FOUND (no executable at the driver host path; a read_only directory that does not
 * exist or is no directory); PERMISSION_DENIED (a read_only directory the agent may not
 * open); INTERNAL (epoll, timerfd or memory). Every error is logged once with its cause.
 * Source: issue 6; issue 22 items 2 and 3 for the sandbox. */
dfnet_status_t dfnet_supervisor_new(const dfnet_supervisor_config_t *config,
                                    dfnet_supervisor_t **out);

/* Stop every driver host (close the link, SIGKILL after the grace period), wait for them
 * and free everything. No callback runs from here on. NULL is a no-op. Not from a
 * callback. */
void dfnet_supervisor_free(dfnet_supervisor_t *sup);

/* An epoll descriptor that is readable while dfnet_supervisor_dispatch() has work. Owned
 * by the supervisor (do not close it). */
int dfnet_supervisor_fd(const dfnet_supervisor_t *sup);

/* Read what the driver hosts sent, reap the ones that exited, send what waits for room,
 * enforce stop grace periods; run the callbacks on the calling thread; never blocks.
 * Handles what is ready when called: what arrives meanwhile leaves dfnet_supervisor_fd()
 * readable, so call it again each time that fd polls readable.
 * Returns how many envelopes and exits were delivered. Not reentrant: never call it from a
 * callback. */
size_t dfnet_supervisor_dispatch(dfnet_supervisor_t *sup);

/* Spawn a driver host. *host_id receives its id (1, 2, ... never reused); *pid (may be
 * NULL) its process id. Sandboxed, the child is set up as "Confinement" above says.
 * Returns OK; UNAVAILABLE (fork/socketpair/pipe failed: errno logged); INTERNAL (memory).
 * An exec failure, or a sandboxed child that cannot drop its privileges, shows up as an
 * exit with code 127 (sandboxed, with the cause as its reason). Any thread. */
dfnet_status_t dfnet_supervisor_spawn(dfnet_supervisor_t *sup, uint64_t *host_id, pid_t *pid);

/* Send one envelope to driver host `host_id`. The envelope is encoded before this returns
 * (env and its bulk bytes are only borrowed; env->pb.id is restored). Never blocks: what
 * the socket does not take now is written by dfnet_supervisor_dispatch() when there is room.
 * Returns OK (a request then gets exactly one final answer through on_envelope);
 * NOT_FOUND (no such driver host, or a Cancel/StreamCredit for a call that is not in
 * flight); UNAVAILABLE (the driver host is exiting or gone: nothing will be answered);
 * INVALID_ARGUMENT (cannot encode); INTERNAL (memory). */
dfnet_status_t dfnet_supervisor_send(dfnet_supervisor_t *sup, uint64_t host_id,
                                     dfnet_envelope_t *env);

/* Send one envelope to driver host `host_id` with descriptors (docs/architecture.md
 * "Resources"): as dfnet_supervisor_send(), and fds[0 .. n) travel with the frame as
 * SCM_RIGHTS (unix(7)) in the sendmsg(2) that carries its first byte. A frame with
 * descriptors always begins a sendmsg of its own (the frames before it go in earlier ones),
 * so the driver host receives them no later than the frame's first byte, in the order the
 * frames were sent; a partial write has delivered them with that byte. The descriptors are
 * duplicated (F_DUPFD_CLOEXEC) before this returns: the caller keeps and closes its own.
 * The duplicates belong to the queued frame until it is written (then closed: the driver
 * host has its own), or until the driver host is gone, or the frame is not queued. The
 * agent sends a DriverStart this way, its `resources` naming the descriptors in order
 * (host/supervisor/resources.h). n == 0 is dfnet_supervisor_send(). Any thread.
 * Returns what dfnet_supervisor_send() returns; also INVALID_ARGUMENT (n over
 * DFNET_RESOURCES_MAX, fds NULL with n > 0, a negative descriptor) and RESOURCE_EXHAUSTED
 * (a descriptor cannot be duplicated: EMFILE, logged); nothing is sent then. */
dfnet_status_t dfnet_supervisor_send_fds(dfnet_supervisor_t *sup, uint64_t host_id,
                                         dfnet_envelope_t *env, const int *fds, size_t n);

/* Hold sends back: from now on dfnet_supervisor_send() only queues its frames, until
 * dfnet_supervisor_uncork() writes everything queued, several frames per sendmsg(2) (the
 * idea of TCP_CORK, tcp(7)). An owner that sends many envelopes in one turn of its loop
 * (the agent relaying a batch of Calls) corks at the first and uncorks at the end of the
 * turn: one write and one wake-up of each driver host instead of one per envelope.
 * dfnet_supervisor_close() still writes what is queued for that host first. Any thread;
 * corking twice is the same as once. */
void dfnet_supervisor_cork(dfnet_supervisor_t *sup);

/* Stop holding sends back and write what was queued (what the socket does not take now
 * is written by dfnet_supervisor_dispatch() when there is room). Any thread; a no-op when
 * not corked. */
void dfnet_supervisor_uncork(dfnet_supervisor_t *sup);

/* Ask a driver host to stop: its link is shut down for writing, it stops its drivers
 * (prepare_stop, stop) and exits; SIGKILL if it is still there after stop_grace_ms.
 * on_exit follows. Returns OK, NOT_FOUND. Idempotent. */
dfnet_status_t dfnet_supervisor_close(dfnet_supervisor_t *sup, uint64_t host_id);

/* Send signal `sig` to a driver host. Returns OK, NOT_FOUND (unknown or already exited),
 * INVALID_ARGUMENT (bad signal). */
dfnet_status_t dfnet_supervisor_kill(dfnet_supervisor_t *sup, uint64_t host_id, int sig);

/* How many Reply/Status frames the driver hosts sent for requests that were no longer in
 * flight (dropped, see "Exactly once"). A driver host that keeps its promise sends none. */
uint64_t dfnet_supervisor_late_frames(dfnet_supervisor_t *sup);

/* The process id of a running driver host, or -1. */
pid_t dfnet_supervisor_pid(dfnet_supervisor_t *sup, uint64_t host_id);

/* Are the driver hosts confined (config.sandbox.enabled)? Any thread. */
bool dfnet_supervisor_sandboxed(const dfnet_supervisor_t *sup);

/* The uid the driver hosts run as: the driver user's (config.sandbox.uid) when sandboxed
 * and the agent runs as root, else the agent's own (getuid()). Any thread. */
uid_t dfnet_supervisor_driver_uid(const dfnet_supervisor_t *sup);

#endif /* DFNET_HOST_SUPERVISOR_H */
