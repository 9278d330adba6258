/* A scripted test host-session and client helper for integration tests, built on the real
 * transport (lib/transport.h) and the real dfnet-manager process: no mock of our own code.
 *
 *   th_manager_t mgr;                         // start dfnet-manager on an ephemeral port
 *   th_manager_start(&mgr, "/tmp/x/state", "/tmp/x/drivers", "--host-grace", "2", NULL);
 *   th_write_driver("/tmp/x/drivers", "rng", "fuchsia.BIND_PROTOCOL == 31;", NULL);
 *   testhost_t *h = th_connect(&mgr, "lab-a", "host");  // certificate issued, Hello sent
 *   th_node_add(h, "dev.lab-a", "rng0", props, n, ...); // NodeAdd, returns the Status code
 *   th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.rng0", 5000, &ev);
 *   th_close(h); th_manager_stop(&mgr);
 *
 * A host session answers the manager's DriverStart with DriverStatus RUNNING (driver host
 * ids 1, 2, ... per session; the requested id when colocating), or with a Status when the
 * URL was marked failing (th_fail_url), or later (th_hold_starts); DriverStop with Status OK
 * (or later: th_hold_stops); DriverSuspend and DriverResume with Status OK (th_fail_suspend);
 * ListDriverHosts not at all unless told what to answer (th_set_driver_hosts).
 * Calls it leaves unanswered unless told to answer them (th_answer_calls). Every envelope
 * the manager sends is recorded in order (th_wait_event, th_events), each DriverStart in
 * full too (th_driver_start), once it was answered or held: a DriverStart or DriverStop a test
 * has seen while holding is held. It may call as a host for its drivers (th_call).
 *
 * Every function reports failure by return value and never aborts; tests assert on it.
 */
#ifndef DFNET_TESTS_TESTHOST_H
#define DFNET_TESTS_TESTHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dfnet/status.h"
#include "lib/envelope.h"
#include "lib/transport.h"

/* A dfnet-manager child process. */
typedef struct th_manager {
  pid_t pid;
  uint16_t port;
  char state_dir[512];
  char log_path[600];
} th_manager_t;

/* Start build/manager/dfnet-manager (DFNET_BUILD_DIR) with --listen 127.0.0.1:0,
 * --state-dir state_dir, --drivers drivers_dir (NULL: none) and the extra arguments
 * (NULL-terminated). Waits up to 10 s for "listening on". stderr goes to
 * <state_dir>.log. Returns 0 or -1. */
int th_manager_start(th_manager_t *m, const char *state_dir, const char *drivers_dir, ...);

/* SIGTERM, wait (10 s, then SIGKILL). Returns the exit status (0..255), or -1 when it did
 * not exit by itself or died by a signal. */
int th_manager_stop(th_manager_t *m);

/* Is the process still running? */
bool th_manager_alive(th_manager_t *m);

/* Write a driver package directory <dir>/<name>/ with meta/<name>.json (program block:
 * runner, binary, bind + `extra` JSON members, e.g. "\"fallback\": \"true\"", may be NULL),
 * meta/bind/<name>.bindbc compiled from `bind_source` (dfnet_bind_compile, the code
 * dfnet-bindc runs), driver/<name>.so (a placeholder: the manager never loads it).
 * Returns 0, or -1 (a compile error is printed). */
int th_write_driver(const char *dir, const char *name, const char *bind_source, const char *extra);

/* Pack a package directory and compute its digest (lib/package.h). Caller frees *data. */
int th_pack(const char *pkg_dir, uint8_t **data, size_t *size, uint8_t digest[32]);

/* `rm -rf` + mkdir -p of a fresh directory. */
int th_fresh_dir(const char *path);

typedef struct testhost testhost_t;

/* One envelope the manager sent to a session. */
typedef struct th_event {
  pb_size_t which;
  uint64_t id;
  char node[512]; /* DriverStart/DriverStop node, NodeRemove moniker, WatchEvent subject, Call
                     target */
  char url[256];  /* DriverStart/DriverStop url, WatchEvent detail, Call method */
  uint64_t driver_host_id; /* DriverStart: requested (0 = new) */
  int kind;                /* WatchEvent kind */
  size_t seq;              /* position in the session's record */
  char caller[512];        /* Call: caller */
  char caller_url[256];    /* Call: caller_driver_url */
  uint32_t flags;          /* DriverSuspend: flags */
  char lease_token[96];    /* Call: lease_token (the manager never forwards one) */
} th_event_t;

/* Connect to the manager: issue a certificate for `name` with `role` ("host", "admin",
 * "operator", "viewer") from the manager's state dir, open the host subprotocol for
 * "host" (else the client one), send Hello and wait for the answer.
 * Returns the session, or NULL; *status (may be NULL) gets OK for Welcome, else the
 * Status code of the refusal (UNAVAILABLE when no session could be opened). */
testhost_t *th_connect(th_manager_t *m, const char *name, const char *role, dfnet_status_t *status);

/* Issue (once) a certificate for `name` with `role` from the manager's state directory
 * into dir (size bytes): <dir>/<name>.crt, <name>.key, ca.crt. Returns 0 or -1. */
int th_issue(th_manager_t *m, const char *name, const char *role, char *dir, size_t size);

/* Close the session and free it (NULL is fine). */
void th_close(testhost_t *h);

/* Answer DriverStart for URLs containing `url_part` with Status `code` (OK clears). */
void th_fail_url(testhost_t *h, const char *url_part, dfnet_status_t code);

/* Send a request and wait for its one reply (copied into *reply; bulk dropped).
 * Returns OK or the transport's error. */
dfnet_status_t th_request(testhost_t *h, dfnet_envelope_t *req, dfnet_envelope_t *reply,
                          uint32_t timeout_ms);

/* A request whose answer comes later (a DriverControl answered once its nodes settled):
 * th_request on a thread of its own. th_request_start copies req; NULL without memory. */
typedef struct th_pending_request th_pending_request_t;
th_pending_request_t *th_request_start(testhost_t *h, const dfnet_envelope_t *req,
                                       uint32_t timeout_ms);
/* Wait for it and free it; its reply into *reply (may be NULL). Returns th_request's. */
dfnet_status_t th_request_join(th_pending_request_t *p, dfnet_envelope_t *reply);

/* A request whose one answer is waited for later, with its id known at once (a Call left in
 * flight, a LeaseAcquire that waits in the queue and is cancelled by id): th_async_start
 * sends req (encoded during the call: req may be reused) and returns the record, or NULL
 * when it could not be sent; th_async_id is its envelope id; th_async_wait waits up to
 * timeout_ms for the answer, copies it into *reply (may be NULL; bulk dropped) and frees the
 * record, returning OK, the transport's completion (DEADLINE_EXCEEDED at timeout_ms from the
 * start, CANCELLED, UNAVAILABLE), or DEADLINE_EXCEEDED when the wait itself ran out (the
 * record is freed all the same: a late answer is dropped). th_async_done says whether the
 * answer is in (without waiting). A LeaseInfo with a queue_position is a waiting
 * LeaseAcquire's interim answer, not its answer: th_async_position gives the last place it
 * was told (0: none yet). */
typedef struct th_async th_async_t;
th_async_t *th_async_start(testhost_t *h, dfnet_envelope_t *req, uint32_t timeout_ms);
uint64_t th_async_id(const th_async_t *a);
uint32_t th_async_position(th_async_t *a);
bool th_async_done(th_async_t *a);
dfnet_status_t th_async_wait(th_async_t *a, uint32_t timeout_ms, dfnet_envelope_t *reply);

/* Send without waiting (an event, id as set). */
dfnet_status_t th_send(testhost_t *h, dfnet_envelope_t *env);

/* A property for th_node_add: "KEY=u:NUM", "KEY=s:TEXT", "KEY=b:true", "KEY=e:ENUM";
 * KEY "#N" is the integer key N. */
typedef const char *th_prop_t;

/* NodeAdd{parent, name, props, offers (NULL-terminated or NULL), class_name (may be NULL)}.
 * Returns the Status code of the answer (or the transport error); *message (may be NULL,
 * 512 bytes) gets its text. */
dfnet_status_t th_node_add(testhost_t *h, const char *parent, const char *name,
                           const th_prop_t *props, size_t nprops, const char *const *offers,
                           const char *class_name, char *message);

/* NodeAdd for reconcile: like th_node_add with driver_url and driver_host_id. */
dfnet_status_t th_node_add_running(testhost_t *h, const char *parent, const char *name,
                                   const th_prop_t *props, size_t nprops, const char *driver_url,
                                   uint64_t driver_host_id);

/* NodeAdd of a node its parent's driver keeps (owned: a class entry), with no properties.
 * Returns as th_node_add. */
dfnet_status_t th_node_add_owned(testhost_t *h, const char *parent, const char *name,
                                 const char *class_name);

/* Client: Watch (every kind); the WatchEvents are recorded as the session's envelopes are
 * (th_wait_event with dfnet_v1_Envelope_watch_event_tag; th_event_t.kind). */
dfnet_status_t th_watch(testhost_t *h);

/* NodeRemove{moniker} (answered with Status). */
dfnet_status_t th_node_remove(testhost_t *h, const char *moniker);

/* DriverHostExit event for driver host `dh` with the given nodes (NULL-terminated). */
dfnet_status_t th_driver_host_exit(testhost_t *h, uint64_t dh, const char *const *nodes);

/* Wait until the session has received an envelope of kind `which` (0 = any) whose node
 * equals `node` (NULL = any), at or after position *from (NULL = 0). On success *out is
 * filled and *from (if given) moves past it. Returns true, or false after timeout_ms. */
bool th_wait_event(testhost_t *h, pb_size_t which, const char *node, uint32_t timeout_ms,
                   size_t *from, th_event_t *out);

/* The last DriverStart the session received for `node`, into *out. false when none. */
bool th_driver_start(testhost_t *h, const char *node, dfnet_v1_DriverStart *out);

/* Answer every Call from now on (on: true) with one Reply OK whose payload is
 * "<caller>|<caller_driver_url>|" and the request's payload; off: leave them unanswered. */
void th_answer_calls(testhost_t *h, bool on);

/* Hold the answers to DriverStop (on: true) until th_release_stops(); off answers at once
 * again (what is held stays held). */
void th_hold_stops(testhost_t *h, bool on);
/* Answer every held DriverStop with Status OK, in the order they came. Returns how many. */
size_t th_release_stops(testhost_t *h);

/* Hold the answers to DriverStart (on: true) until th_release_starts() (an asynchronous
 * start still running); off answers at once again (what is held stays held). */
void th_hold_starts(testhost_t *h, bool on);
/* Answer every held DriverStart in the order they came: DriverStatus RUNNING for OK, else a
 * Status `code`. Returns how many. */
size_t th_release_starts(testhost_t *h, dfnet_status_t code);

/* DriverSuspend and DriverResume are answered OK (the node's events are recorded), except
 * for `node`, answered with `code` (OK clears; NULL node: every node). */
void th_fail_suspend(testhost_t *h, const char *node, dfnet_status_t code);

/* A driver host as the agent reports it to ListDriverHosts. */
typedef struct th_driver_host {
  uint64_t id;
  uint32_t pid;
  uint64_t rss_bytes;
} th_driver_host_t;
/* Answer the manager's ListDriverHosts with these (at most 16, copied) and a Status OK;
 * answer false: leave it unanswered (a silent agent, the default). */
void th_set_driver_hosts(testhost_t *h, const th_driver_host_t *items, size_t count, bool answer);

/* th_write_driver, the rules compiled as `dfnet-bindc compile --disable-autobind` does
 * (fuchsia.BIND_AUTOBIND == 0 first): a driver that binds only on a RequestBind. */
int th_write_driver_manual(const char *dir, const char *name, const char *bind_source,
                           const char *extra);

/* As a host, a unary Call for one of its drivers: Call{target, method, caller,
 * caller_driver_url, deadline 10 s} with `req` as payload. Returns the transport's status;
 * on OK *code gets the Reply's code, message (may be NULL, 512 bytes) its message, and
 * reply (may be NULL, reply_size bytes, NUL-terminated) its payload. */
dfnet_status_t th_call(testhost_t *h, const char *target, const char *method, const char *caller,
                       const char *caller_url, const char *req, dfnet_status_t *code, char *message,
                       char *reply, size_t reply_size);

/* Count the recorded envelopes of kind `which` for `node` (NULL = any). */
size_t th_count_events(testhost_t *h, pb_size_t which, const char *node);

/* Copy of the recorded envelopes (caller frees *out). */
size_t th_events(testhost_t *h, th_event_t **out);

/* Client: a list request; every item before the closing Status is passed to `each`
 * (borrowed envelope). Returns the closing Status code (message in *message if given). */
dfnet_status_t th_list(testhost_t *h, dfnet_envelope_t *req,
                       void (*each)(void *user, const dfnet_envelope_t *item), void *user,
                       char *message);

/* Client: NodeInfo of one moniker (exact ListNodes, verbose). OK or NOT_FOUND. */
dfnet_status_t th_node_info(testhost_t *h, const char *moniker, dfnet_v1_NodeInfo *out);

/* Poll th_node_info until pred(info) holds or timeout_ms passes. */
bool th_wait_node(testhost_t *h, const char *moniker, bool (*pred)(const dfnet_v1_NodeInfo *),
                  uint32_t timeout_ms, dfnet_v1_NodeInfo *out);

/* Client: upload a package in chunks of `chunk` bytes; returns the last Status code. */
dfnet_status_t th_upload(testhost_t *h, const char *name, const uint8_t *data, size_t size,
                         const uint8_t digest[32], size_t chunk, char *message);

/* The session's id and transport (for tests that need more). */
dfnet_session_id_t th_session(testhost_t *h);

#endif /* DFNET_TESTS_TESTHOST_H */
