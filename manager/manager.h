/* dfnet-manager: the state of the manager and what its files share (not public).
 *
 * One process, one event loop: every function here runs on the transport's service
 * thread (lib/transport.h), so nothing is locked (docs/style.md 7). Anything kept across loop
 * turns — a request in flight, a timer, a paced list stream — names nodes by moniker + id
 * and hosts by id, and looks them up again when it runs.
 *
 * Files: topology.c (nodes), driver_index.c (drivers, policy), binder.c (matching,
 * starting and stopping drivers), composite_node_spec.c (composites and their bind
 * parents), offers.c (what a node was offered, who serves it), crash_policy.c (driver
 * host exits, restarts, quarantine, removal), node_control.c (restart, disable, unregister
 * and unbind of nodes, answered once they settled), suspend.c (suspend and resume walks),
 * node_refs.c (nodes kept by moniker + id), hosts.c
 * (host sessions, grace period, reconcile), sessions.c (Hello/Welcome, roles, dispatch),
 * handle_<message>.c (one wire message each), streams.c (paced list replies, watch events),
 * package_store.c (content-addressed packages), main.c (command line); leases and the
 * durable store: lease.h (lease*.c, handle_lease_*.c, persist.c), store.h (store*.c).
 */
#ifndef DFNET_MANAGER_MANAGER_H
#define DFNET_MANAGER_MANAGER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <uthash.h>

#include "dfnet/status.h"
#include "dfnet/v1/envelope.pb.h"
#include "lib/array.h"
#include "lib/envelope.h"
#include "lib/package.h"
#include "lib/transport.h"
#include "manager/driver_index.h"
#include "manager/topology.h"

#define MGR_START_MARGIN_MS 5000u      /* a DriverStart unanswered start_timeout_ms + this failed */
#define MGR_STOP_DEADLINE_MS 30000u    /* a DriverStop unanswered by then is over */
#define MGR_SUSPEND_DEADLINE_MS 30000u /* a DriverSuspend or DriverResume unanswered: failed */
#define MGR_CRASH_WINDOW_MS 60000u     /* quarantine after ... */
#define MGR_CRASH_LIMIT 5              /* ... this many crashes within the window */
#define MGR_RESTART_BACKOFF_MS 250u    /* first restart delay; doubled per crash, capped */
#define MGR_RESTART_BACKOFF_MAX_MS 8000u
#define MGR_UPLOAD_MAX DFNET_PACKAGE_SIZE_MAX
#define MGR_CHUNK_MAX (256u * 1024u) /* bytes of one PackageChunk we send */
/* The state directory's file of the TLS session ticket keys (0600; lib/transport_tickets.c) */
#define MANAGER_TICKET_KEY_FILE "tls-ticket.keys"

/* A host agent known to the manager (online, or offline within its grace period). */
typedef struct mgr_host {
  UT_hash_handle hh;    /* by name */
  UT_hash_handle hh_id; /* by id */
  uint32_t id;
  char name[64];
  char address[64];
  char arch[32];
  char software_version[64]; /* its Hello's, "dfnet 0.1.0+<git>" ("" when it sent none) */
  bool sandboxed;            /* its Hello's: its driver hosts run confined (false: dfnet-host
                                --no-sandbox, or an older agent) */
  dfnet_v1_Label labels[16];
  pb_size_t label_count;
  uint64_t connected_since_ms; /* Unix epoch ms */
  dfnet_session_id_t session;  /* 0 = offline */
  dfnet_timer_id_t grace_timer;
  uint32_t node_count;
} mgr_host_t;

/* SESSION_ENROLL: a peer without a certificate on dfnet.enroll.v1 (handle_enroll.c): one
 * Enroll, then closed; never welcomed, never a host or a client. */
typedef enum mgr_session_kind {
  SESSION_HOST = 1,
  SESSION_CLIENT = 2,
  SESSION_ENROLL = 3
} mgr_session_kind_t;

/* An upload in progress on a client session (PackageUpload chunks). */
typedef struct mgr_upload {
  bool active;
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  char name[64];
  uint64_t total;
  uint8_t *data;
  size_t size;
} mgr_upload_t;

/* One open session (host or client). */
/* The argument of a session's Hello timer (sessions.c). */
typedef struct mgr_hello_wait {
  struct mgr *m;
  dfnet_session_id_t sid;
} mgr_hello_wait_t;

typedef struct mgr_session {
  UT_hash_handle hh; /* by id */
  dfnet_session_id_t id;
  mgr_session_kind_t kind;
  dfnet_v1_Role role; /* from the certificate */
  char name[65];      /* certificate CN */
  char address[64];
  bool welcomed;    /* Hello answered with Welcome */
  uint32_t host_id; /* SESSION_HOST after Welcome */
  mgr_upload_t upload;
  uint64_t watch_id; /* request id of the Watch, 0 = none */
  uint32_t calls;    /* its calls in flight (handle_call.c), at most cfg.max_calls_per_session */
  dfnet_timer_id_t hello_timer; /* closes it unless Hello comes first; 0 after Hello */
  mgr_hello_wait_t hello_wait;  /* the timer's argument: cancelled before the session goes */
  bool watch_nodes, watch_drivers, watch_hosts;
} mgr_session_t;

/* Parents a composite keeps: as many as a listing of it carries (CompositeInfo.parents). */
#define MGR_COMPOSITE_PARENTS_MAX pb_arraysize(dfnet_v1_CompositeInfo, parents)

/* A parent of a composite: a node of its composite bind rules or a parent of its spec, and
 * the node taken as that parent (its bind parent). */
typedef struct mgr_composite_parent {
  /* the composite bind rules' node name, or the spec parent's index ("0", "1", ...) */
  char name[pb_membersize(dfnet_v1_CompositeParent, name)];
  bool primary, optional;
  char *moniker; /* the bind parent (owned), NULL = none */
  uint64_t node_id;
} mgr_composite_parent_t;

/* A composite: an instance of a composite driver on one host, or a composite node spec. */
typedef struct mgr_composite {
  struct mgr_composite *next, *prev; /* utlist DL: mgr_t.composites, in the order made */
  uint32_t id;
  bool from_spec;
  char name[pb_membersize(dfnet_v1_CompositeInfo, name)]; /* its composite node's name */
  uint32_t driver_id; /* the composite driver (0: a spec with no driver yet) */
  uint32_t host_id;   /* composite-driver instances: the host they assemble on */
  size_t parent_count;
  mgr_composite_parent_t parents[MGR_COMPOSITE_PARENTS_MAX];
  dfnet_v1_CompositeNodeSpec *spec; /* from_spec: a copy of the spec (owned) */
  char *node_moniker;               /* the assembled composite node (owned), NULL = not yet */
  uint64_t node_id;
  dfnet_status_t status; /* why it cannot assemble or bind (OK = fine so far) */
  char message[256];
} mgr_composite_t;

/* A timer or request record that outlives a loop turn: refers to things by id. */
typedef struct mgr_pending {
  struct mgr_pending *next, *prev; /* utlist DL: mgr_t.pending, from pending__timer on */
  struct mgr *mgr;
  dfnet_timer_id_t timer;
  uint64_t node_id;
  char moniker[TOPOLOGY_MONIKER_MAX + 1];
  uint32_t driver_id;
  uint32_t host_id;
  dfnet_session_id_t session;
  uint64_t request_id;
  void *stream; /* streams.c: a paced list */
  int kind;
  char url_suffix[DFNET_PACKAGE_URL_MAX]; /* binder.c: a bind to run once a driver stopped */
  /* binder.c: a DriverStop that waits for the stops of the drivers below its node (DFv2:
   * child before parent). It is sent when `waiting` drops to 0: each stop below holds one
   * count until the host answered it, and the one who builds the record holds one until
   * everything below has been asked to stop. `up` is the stop waiting for this one (it
   * holds a count of it, so it outlives this record). */
  uint32_t waiting;
  struct mgr_pending *up;
  char stop_url[DFNET_PACKAGE_URL_MAX]; /* the DriverStop's url and driver host */
  uint64_t driver_host_id;
  bool forget; /* then tell the host to forget the node (NodeRemove): a composite node */
  /* Set: no DriverStop of its own (a barrier): when `waiting` drops to 0 (the stops below
   * answered), then(m, p) runs instead, and owns p. crash_policy.c: a crash restart. */
  void (*then)(struct mgr *m, struct mgr_pending *p);
  bool manual; /* binder.c: the match after the stop is a RequestBind's (BIND_AUTOBIND 0) */
} mgr_pending_t;

typedef struct mgr_config {
  const char *listen_address; /* "127.0.0.1" */
  uint16_t port;
  char state_dir[1024];
  const char *drivers_dir; /* NULL = no boot drivers */
  uint32_t host_grace_ms;
  uint32_t keepalive_ms;     /* --keepalive-ms: ping a silent peer, drop it after 3 intervals */
  uint32_t hello_timeout_ms; /* --hello-timeout-ms: a session without Hello is closed */
  uint32_t max_calls_per_session;    /* --max-calls-in-flight: calls a session may have open */
  uint32_t default_call_deadline_ms; /* --default-deadline-ms: a call that gives none */
  bool stop_drivers_on_exit;
  bool require_lease; /* --require-lease: every client Call needs a lease's token (lease.h) */
  bool tls_tickets;   /* RFC 5077 tickets, keys in MANAGER_TICKET_KEY_FILE (off:
                         --no-tls-tickets or DFNET_TLS_TICKETS=0; issue 23 item 5) */
  const char *metrics_address; /* --metrics-listen: plain GET /metrics; NULL = none */
  uint16_t metrics_port;       /* its port (0: any free one) */
} mgr_config_t;

typedef struct mgr_call mgr_call_t; /* handle_call.c: a client's or a driver's call in flight */
typedef struct mgr_control mgr_control_t; /* node_control.c: an admin request being settled */

typedef struct mgr {
  mgr_config_t cfg;
  dfnet_transport_t *transport;
  uint16_t port; /* bound port */
  topology_t topo;
  driver_index_t index;
  mgr_host_t *hosts;       /* by name */
  mgr_host_t *hosts_by_id; /* by id */
  uint32_t next_host_id;
  mgr_session_t *sessions;
  mgr_composite_t *composites;
  uint32_t next_composite_id;
  mgr_pending_t *pending;         /* timers in flight, newest first (utlist DL) */
  dfnet_envelope_t *scratch;      /* one envelope being built (heap: ~34 KiB) */
  dfnet_envelope_t *event_env;    /* for watch events, built while scratch may be in use */
  uint32_t watchers;              /* sessions with a Watch open */
  mgr_call_t *calls;              /* calls in flight, by (caller's session, call id) */
  mgr_control_t *controls;        /* admin requests waiting for their nodes to settle */
  dfnet_timer_id_t control_timer; /* node_control.c: looks at them while there are some */
  volatile int stopping;
  struct store *store;       /* <state-dir>/dfnet.db (store.h), open while running */
  struct mgr_leases *leases; /* lease.h: held leases, claims, the wait queue */
  struct mgr_trust *trust;   /* cert.h: certificate records, revocations, join tokens */
  /* metrics.c: counters and histograms (NULL: none kept) */
  struct mgr_metrics *metrics;
} mgr_t;

/* The scratch envelope, reset (binder, handlers, streams: built and sent in one go).
 * handle_call.c, which relays one envelope per streamed message, resets it with
 * dfnet_envelope_reuse() instead: it fills the member completely. */
dfnet_envelope_t *mgr__env(mgr_t *m);

/* ---- manager-wide (main.c) ---- */
uint64_t mgr__wall_ms(void);

/* ---- node references (node_refs.c) ----
 * A node kept across loop turns, named by moniker + id (the rule at the top of this file)
 * and looked up again when used. */
typedef struct mgr_node_ref {
  char *moniker; /* malloc'd */
  uint64_t id;
} mgr_node_ref_t;

/* A growing list of them; zeroed: empty. */
typedef struct mgr_node_refs {
  mgr_node_ref_t *items;
  size_t count, cap;
} mgr_node_refs_t;

/* Append a reference to n (its moniker copied). False when out of memory: l holds what it
 * held. */
bool node_refs__add(mgr_node_refs_t *l, const topology_node_t *n);

/* The node r names, if it is still there and the same node (its id), else NULL. Borrowed
 * from the topology. */
topology_node_t *node_refs__node(mgr_t *m, const mgr_node_ref_t *r);

/* Free the monikers and the array; l is empty again. */
void node_refs__clear(mgr_node_refs_t *l);

/* ---- sessions.c ---- */
void sessions__on_open(void *user, const dfnet_session_info_t *info);
void sessions__on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env);
void sessions__on_closed(void *user, dfnet_session_id_t sid, dfnet_status_t reason,
                         const char *message);
mgr_session_t *sessions__find(mgr_t *m, dfnet_session_id_t sid);
void sessions__destroy_all(mgr_t *m);
/* Reply Status{code, msg} to request `id` of `sid` (logs a send failure). */
void sessions__reply_status(mgr_t *m, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same with the message's arguments as a va_list (list_stream__end's summary). */
void sessions__reply_vstatus(mgr_t *m, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                             const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
/* The node a client names for request `id` of `sid`: by moniker only (moniker_only:
 * topology__find), else as topology__find_named resolves it. NULL after replying Status
 * NOT_FOUND "node <name> not found". Borrowed from the topology. */
topology_node_t *sessions__node_or_reply(mgr_t *m, dfnet_session_id_t sid, uint64_t id,
                                         const char *name, bool moniker_only);

/* ---- hosts.c ---- */
mgr_host_t *hosts__find(mgr_t *m, const char *name);
mgr_host_t *hosts__get(mgr_t *m, uint32_t id);
/* Hello from a host session: register (or resume) the host; replies Welcome or Status. */
void hosts__hello(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void hosts__session_closed(mgr_t *m, mgr_session_t *s);
void hosts__destroy_all(mgr_t *m);

/* ---- binding: binder.c, composite_node_spec.c, crash_policy.c ---- */

/* binder.c: matching, starting and stopping drivers. */

/* A node's properties as the matcher sees them (binder__match_node_init): its own and the
 * offer-derived ones, and fuchsia.BIND_AUTOBIND (integer key 0x0002; never stored or
 * listed). The bind node borrows `props`. */
typedef struct binder_match_node {
  topology_prop_t props[DFNET_BIND_NODE_MAX_PROPERTIES];
  dfnet_bind_node_t bn;
} binder_match_node_t;
/* Prepare n for matching into *out (caller's storage, ~4 KiB): BIND_AUTOBIND = 1 for an
 * automatic attempt (autobind), 0 for a RequestBind; a property of n's own with that key
 * is replaced. A node with more properties than the matcher takes (64) matches as one
 * without any, as before; one with exactly 64 gets no BIND_AUTOBIND. */
void binder__match_node_init(const topology_node_t *n, bool autobind, binder_match_node_t *out);
/* Match a node automatically (BIND_AUTOBIND 1) and act: composite specs, composite drivers,
 * then the index; start the driver on its host, or record why it stays unbound. A node
 * unbound by an admin (held), hidden, owned, offline, starting, stopping, bound or
 * quarantined is left alone; a test node only records what would bind it. url_suffix may be
 * NULL. */
void binder__bind_node(mgr_t *m, topology_node_t *n, const char *url_suffix);
/* RequestBind's match (BIND_AUTOBIND 0: disable_autobind drivers bind here only): as
 * binder__bind_node, and n is no longer held. */
void binder__bind_node_manual(mgr_t *m, topology_node_t *n, const char *url_suffix);
/* Retry every unbound node (a driver was registered or enabled). */
void binder__bind_all_unbound(mgr_t *m);
/* Start driver d on node n (DriverStart to the owning host, with d's start_timeout_ms; the
 * manager's deadline is that plus MGR_START_MARGIN_MS). Nothing for a test node. */
void binder__start(mgr_t *m, topology_node_t *n, driver_t *d);
/* The owning host reported a driver state change. */
void binder__driver_status(mgr_t *m, mgr_host_t *h, const dfnet_v1_DriverStatus *st);
/* Send DriverStop for the driver on n to its host (if online); the reply is logged. The
 * node is `stopping` until the host answers (it answers once the driver has stopped): no
 * driver is started on it meanwhile. n's children are not looked at (shutdown stops the
 * deepest first itself). */
void binder__stop_driver(mgr_t *m, topology_node_t *n);
/* Stop n's driver, its children going first (their subtree removed, the drivers below
 * stopped bottom-up; test nodes stay): n's DriverStop is sent once those stops are answered.
 * Nothing follows (UnbindNode, a start the manager gave up on). The caller unbinds n. */
void binder__stop_subtree(mgr_t *m, topology_node_t *n);
/* As binder__stop_subtree, then n is matched again (url_suffix NULL = any driver; manual:
 * as a RequestBind) once its host answered the DriverStop (or at once when the stop cannot
 * be sent). The caller unbinds n right after this call. */
void binder__stop_then_bind(mgr_t *m, topology_node_t *n, const char *url_suffix, bool manual);
/* As binder__stop_subtree, then n's driver is started again once its host answered the
 * DriverStop (a restart; another match if the driver is gone or disabled meanwhile). The
 * caller unbinds n right after this call. */
void binder__stop_then_start(mgr_t *m, topology_node_t *n);
/* Remove n's children that are not test nodes, each with its subtree (binder__remove_tree,
 * their stops waiting under `up`, may be NULL): n's driver stops or crashed. */
void binder__remove_children(mgr_t *m, topology_node_t *n, mgr_pending_t *up, const char *why);
/* A node that was bound is no longer (stop, crash, failure): counters and state. */
void binder__unbind(mgr_t *m, topology_node_t *n, dfnet_status_t code, const char *msg);

/* composite_node_spec.c: composite node specs, composite bind rules' instances. */
/* Present n (bn: its properties prepared) to every composite as a bind parent: composite
 * node specs first, then composite drivers. True when n became a parent of one. */
bool binder__bind_parent(mgr_t *m, topology_node_t *n, const dfnet_bind_node_t *bn);
/* Bind composite node n to its composite's driver (a spec's: the one composite driver that
 * matches it), or record why not. */
void binder__bind_composite_node(mgr_t *m, topology_node_t *n);
/* Would binder__add_spec take spec (valid, its name not taken)? OK, or INVALID_ARGUMENT /
 * ALREADY_EXISTS with err set. Nothing changes. */
dfnet_status_t binder__spec_admissible(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                       size_t err_size);
/* Composite node spec from an admin: validate, record, match existing nodes. */
dfnet_status_t binder__add_spec(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                size_t err_size);
/* Composite driver d leaves the index: a composite node spec keeps its parents (its node is
 * matched again later); an instance of d's composite bind rules goes, with its composite
 * node (drivers below it stopped), and its parents are free to bind again unless another
 * composite holds them. Returns how many composite nodes had d bound or starting. */
uint32_t binder__composites_forget_driver(mgr_t *m, const driver_t *d, const char *reason);
/* n is being removed: no composite refers to it afterwards. */
void binder__node_removed_from_composites(mgr_t *m, topology_node_t *n);
/* The composite record `id` (a composite node's composite_id), or NULL. */
mgr_composite_t *binder__composite_get(mgr_t *m, uint32_t id);
void binder__destroy_composites(mgr_t *m);

/* crash_policy.c: driver host exits (restart with backoff, quarantine), removal. */
/* The owning host reported a driver host exit. */
void binder__driver_host_exit(mgr_t *m, mgr_host_t *h, const dfnet_v1_DriverHostExit *e);
/* Remove n and its subtree bottom-up. The drivers bound in it are stopped child before
 * parent: a node's DriverStop is sent once the stops of the drivers below it are answered
 * (binder.c). stop_drivers false (its host is gone): the drivers of offline nodes are not
 * asked to stop, those of online nodes still are (a composite node on another host). A
 * composite node removed while its host is online is forgotten there too (NodeRemove
 * after its driver stopped): the host recorded it for the manager (its primary parent is
 * the host's). */
void binder__remove_subtree(mgr_t *m, topology_node_t *n, bool stop_drivers, const char *reason);

/* binder.c: stops in DFv2's order, child before parent. */
/* A stop of the driver on n (nothing follows it) that waits for the stops below it
 * (mgr_pending_t.waiting), or NULL when n has no driver to stop or no online host (nothing
 * to wait for). `up` (may be NULL) is the stop that waits for this one. The caller passes
 * the record as `up` for everything below n, then calls binder__stop_release() on it once.
 * n is `stopping` from now on (no driver is started on it). */
mgr_pending_t *binder__stop_begin(mgr_t *m, topology_node_t *n, mgr_pending_t *up);
/* Drop one count of stop p (NULL is a no-op): at 0 its DriverStop is sent (or, when it
 * cannot be, it completes at once, releasing its `up`); a barrier (p->then set) runs its
 * `then` instead. */
void binder__stop_release(mgr_t *m, mgr_pending_t *p);
/* Tell n's host (when online) to forget n (NodeRemove) once stop p has completed, or now
 * when p is NULL: a composite node the manager removes, which its host recorded. */
void binder__forget_after(mgr_t *m, const topology_node_t *n, mgr_pending_t *p);
/* NodeRemove{moniker, why} to host `host_id` now, when it is online (an event: nothing is
 * answered): the host drops the node (and stops its driver) if it is one it recorded for
 * the manager or one a driver added; it keeps a hardware node. */
void binder__forget(mgr_t *m, uint32_t host_id, const char *moniker, const char *why);
/* crash_policy.c: remove n's subtree as binder__remove_subtree does, the stops in it
 * waiting under `up` (may be NULL). */
void binder__remove_tree(mgr_t *m, topology_node_t *n, mgr_pending_t *up, bool stop_drivers,
                         const char *reason);

/* offers.c: what a node was offered (docs/spec/dfv2.md "Nodes", "Composites"). */
/* The offers n received into out[0..max): a plain node's own ({service, "default", its
 * parent}), a composite's from every parent it has (under the parent's name, the primary's
 * under "default" too, each keeping its source). Returns how many n has (only max are
 * written when that is more). */
size_t offers__list(mgr_t *m, const topology_node_t *n, dfnet_v1_Offer *out, size_t max);
/* May the driver on `caller` call `method` ("/<service>/<Method>") on node `target` (its
 * moniker)? True when caller received that service from that node; else false with the
 * reason in why. */
bool offers__permit(mgr_t *m, const topology_node_t *caller, const char *target, const char *method,
                    char *why, size_t why_size);

/* ---- node_control.c: admin actions answered once their nodes settled ---- */

typedef enum mgr_control_kind {
  CONTROL_DRIVER = 1, /* DriverControl: answered with DriverControlResult and outcomes */
  CONTROL_UNBIND = 2, /* UnbindNode: answered with Status once the node's driver stopped */
} mgr_control_kind_t;

/* A record of request `request_id` of `session` about `subject` (a driver's URL, or the
 * node for UnbindNode), or NULL without memory. Its deadline is set now: a DriverStop's
 * (MGR_STOP_DEADLINE_MS) and, for CONTROL_DRIVER, the slowest start of the index and its
 * margin. Owned by the caller until control__commit(). */
mgr_control_t *control__new(mgr_t *m, dfnet_session_id_t session, uint64_t request_id,
                            mgr_control_kind_t kind, const char *subject);
/* Record n (by moniker and id) as touched: its outcome is reported once it settled. */
void control__touch(mgr_control_t *c, const topology_node_t *n);
/* DriverControlResult.driver_hosts and .nodes. */
void control__set_counts(mgr_control_t *c, uint32_t driver_hosts, uint32_t nodes);
/* Hand c to the manager: the request is answered once every touched node has settled
 * (neither starting nor stopping, or gone) or c's deadline passed (at once when nothing
 * moves), then c is freed. */
void control__commit(mgr_t *m, mgr_control_t *c);
/* Free c unanswered (the request failed before it touched anything; NULL is a no-op). */
void control__discard(mgr_control_t *c);
/* Shutdown: free every record unanswered (the sessions are going). */
void control__destroy_all(mgr_t *m);
/* RESTART of driver d: on every node bound to it, its children go, then its DriverStop, and
 * its DriverStart once the host answered (binder__stop_then_start). Touched nodes recorded
 * in c (may be NULL). Returns how many driver hosts ran it. */
uint32_t control__restart_driver(mgr_t *m, driver_t *d, mgr_control_t *c);
/* Driver d leaves matching (DISABLE, d->disabled set first) or the index (UNREGISTER): stop
 * it on every node bound to it or starting it (their children first) and leave those nodes
 * unbound with `reason`, each matched again once its host answered the DriverStop; drop the
 * composites of its composite bind rules (their composite nodes removed, drivers below them
 * stopped first; their parents free again, matched again by the caller's
 * binder__bind_all_unbound). Touched nodes recorded in c (may be NULL). Returns how many
 * nodes had d (composite nodes removed included). */
uint32_t control__release_driver(mgr_t *m, driver_t *d, const char *reason, mgr_control_t *c);
/* Driver d was enabled or registered (`reason` says which, for the log and the nodes'
 * unbound reason while they move): every node bound to a fallback driver that d now matches
 * (the index would pick d: a non-fallback match wins) has its fallback stopped (children
 * first) and is matched again once stopped, so that d takes it, as it would have had it
 * been there first. Nodes owned, composite, test, offline, starting, stopping or suspended
 * are left alone. Touched nodes recorded in c (may be NULL). Returns how many. Without
 * memory nothing moves. (Fuchsia rebinds only unbound nodes; dfnet's fallbacks, such as
 * usb-device on every USB device, would otherwise keep a device from the driver written
 * for it until a forced `node bind`.) */
uint32_t control__reclaim_from_fallbacks(mgr_t *m, const driver_t *d, const char *reason,
                                         mgr_control_t *c);
/* ENABLE of driver d, once the unbound nodes were matched again: record in c every node
 * now starting d (the nodes the enable bound), so that the request is answered once they
 * run (or failed), each with its outcome. Returns how many. */
uint32_t control__touch_starting(mgr_t *m, const driver_t *d, mgr_control_t *c);

/* ---- suspend.c: SuspendNode and ResumeNode walks ---- */
/* Suspend (resume: false) or resume the drivers on `node` and below for request `id` of
 * session s: DriverSuspend{flags} to each running driver of the subtree, one at a time,
 * deepest first (resume: DriverResume to each suspended one, parents first). The request is
 * answered with a Status once every driver answered, or at the first error (which names the
 * node; those done stay so): NOT_FOUND, FAILED_PRECONDITION (no running driver there;
 * resume: nothing suspended), the driver's or the transport's error. */
void suspend__walk(mgr_t *m, mgr_session_t *s, uint64_t id, const char *node, uint32_t flags,
                   bool resume);

/* ---- pending.c: timers that refer to records by id ---- */
mgr_pending_t *pending__new(mgr_t *m, int kind);
void pending__free(mgr_pending_t *p);
void pending__cancel_all(mgr_t *m);
dfnet_status_t pending__timer(mgr_pending_t *p, uint32_t delay_ms, dfnet_work_fn fn);

/* ---- package_store.c ---- */
dfnet_status_t package_store__init(mgr_t *m);
/* Keep a package (bytes verified by the caller) under its digest. */
dfnet_status_t package_store__put(mgr_t *m, const uint8_t *data, size_t size,
                                  const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]);
/* Read [offset, offset+max) of a stored package. *total is its size. */
dfnet_status_t package_store__read(mgr_t *m, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                   uint64_t offset, uint8_t *buf, size_t max, size_t *got,
                                   uint64_t *total);
/* Load boot drivers from cfg.drivers_dir and registered ones from the state dir. */
void package_store__load_boot(mgr_t *m);
void package_store__load_registered(mgr_t *m);
/* Record a registered package (name + digest) so it is reloaded at start. */
dfnet_status_t package_store__remember(mgr_t *m, const char *name,
                                       const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]);
/* Forget a registered package: its record (registered/<hex>) first, so it is not loaded
 * at the next start, then its bytes (packages/<hex>.pkg) unless a driver still in the
 * index has the same digest (a boot driver packed to the very same bytes). A file already
 * gone is fine. Errors: UNAVAILABLE when the record cannot be removed (err says which file
 * and why; nothing was changed). */
dfnet_status_t package_store__forget(mgr_t *m, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                     const driver_t *leaving, char *err, size_t err_size);

/* ---- streams.c ---- */
/* Emit a watch event to every session watching that kind. */
void streams__event(mgr_t *m, dfnet_v1_WatchEvent_Kind kind, const char *subject,
                    const char *detail, dfnet_status_t code);
/* ListNodes, ListHosts, ListDrivers, ListComposites, BindWhy from a client: answered by a
 * stream of items with the request's id, closed by a Status (docs/architecture.md "The
 * wire"). */
void streams__list_nodes(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req);
void streams__list_hosts(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req);
void streams__list_drivers(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req);
void streams__list_composites(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req);
void streams__bind_why(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req);
void streams__fill_node_info(mgr_t *m, const topology_node_t *n, bool verbose,
                             dfnet_v1_NodeInfo *out);

/* ---- list_stream.c ---- */
/* A list answered to request `id` of session `sid` as a stream of items (each a message with
 * that id, built in m->scratch), closed by a Status: OK with the caller's summary, or
 * RESOURCE_EXHAUSTED "list interrupted" once an item did not fit the session's send queue
 * (the items after it are not sent). Loop thread; never blocks. */
typedef struct list_stream {
  mgr_t *m;
  dfnet_session_id_t sid;
  uint64_t id;
  size_t sent; /* items sent */
  bool failed; /* an item did not fit: the list ends interrupted */
} list_stream_t;

/* The scratch envelope as item `which` of the list, its member not cleared: the caller fills
 * it completely. */
dfnet_envelope_t *list_stream__item(list_stream_t *ls, pb_size_t which);
/* Send `item` (list_stream__item's); false, sending nothing more, once one did not fit. */
bool list_stream__send(list_stream_t *ls, dfnet_envelope_t *item);
/* Close the list: Status OK with the summary fmt (printf; "3 tokens"), or RESOURCE_EXHAUSTED
 * "list interrupted". */
void list_stream__end(list_stream_t *ls, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- dispatch.c ---- */
/* Hand env, from welcomed session s (a host or a client), to its handler by the message
 * table, or answer PERMISSION_DENIED with the reason (a host's message not among the host
 * messages; a client's not among the client messages, or needing a higher role). Loop
 * thread; never blocks. */
void dispatch__envelope(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

/* ---- handle_<message>.c: one per wire message (dispatch.c dispatches) ---- */
void handle__node_add(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__node_remove(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__node_update(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* Replace n's own properties and offers with those its host sent (a NodeUpdate, or the
 * NodeAdd of a node the host had announced before), as topology__update. Returns true when
 * n was updated (nothing answered yet); false when they were refused, request `id` of the
 * host's session then answered with the reason (handle_node_update.c). */
bool handle__node_set_props(mgr_t *m, mgr_session_t *s, uint64_t id, topology_node_t *n,
                            const dfnet_v1_NodeProperty *props, size_t prop_count,
                            const char (*offers)[128], size_t offer_count);
void handle__driver_status(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__driver_host_exit(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__package_fetch(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__package_upload(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__add_composite_node_spec(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__driver_control(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__request_bind(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__watch(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__unbind_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__suspend_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__resume_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__add_test_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__remove_test_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* ListDriverHosts from a client: asks the hosts' agents, answers once they did (or ~2 s). */
void handle__list_driver_hosts(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

/* ---- handle_call.c: calls routed to drivers, from clients and from drivers ---- */
/* A Call from a client, or from a host for one of its drivers (Call.caller: the driver's
 * node, which must be that host's and must have been offered the service by the target). */
void handle__call(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* A caller's Cancel of a call in flight; false when it names no call of that session. */
bool handle__call_cancel(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
void handle__stream_credit(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* A session closed: cancel the calls it made (the drivers learn of it). */
void calls__session_closed(mgr_t *m, dfnet_session_id_t session);
/* Lease `lease_id` ended (lease.h, lease__end): every call in flight that carried its token
 * ends CANCELLED with `why` ("lease 42 expired"), cancelled through to its driver. */
void calls__lease_ended(mgr_t *m, uint64_t lease_id, const char *why);

/* ---- metrics.c: counters, state at scrape time, GET /metrics (docs/metrics.md) ----
 * Every hook is a no-op while m->metrics is NULL (before metrics__init, in tests that build
 * a manager without it). Service thread. */
typedef struct mgr_metrics mgr_metrics_t;
/* Make m->metrics. Errors: RESOURCE_EXHAUSTED (memory). */
dfnet_status_t metrics__init(mgr_t *m);
void metrics__destroy(mgr_t *m);
/* A session opened: its TLS handshake (full or resumed); a host's certificate expiry. */
void metrics__session_open(mgr_t *m, const dfnet_session_info_t *info);
/* Host `host` was removed (grace period over): its certificate expiry goes. */
void metrics__host_gone(mgr_t *m, const char *host);
/* A driver start ended: OK (bound) or the failure's code. */
void metrics__bind(mgr_t *m, dfnet_status_t code);
/* A driver's driver host exited under it (quarantined: the crash that quarantined it). */
void metrics__driver_crash(mgr_t *m, const char *driver_url, bool quarantined);
/* A call ended with final status `code`; started_ms: dfnet_transport_now_ms() at its
 * arrival (0: not timed, a call refused at once counts 0 s). */
void metrics__call_end(mgr_t *m, const char *method, dfnet_status_t code, uint64_t started_ms);
/* Call payload bytes relayed (reply: driver to caller, else caller to driver). */
void metrics__relayed(mgr_t *m, bool reply, size_t bytes);
/* A queued lease request was granted after waiting waited_ms. */
void metrics__lease_waited(mgr_t *m, uint64_t waited_ms);
/* on_http of the manager's TLS listener (dfnet_server_config_t.on_http; user: the mgr_t):
 * GET/HEAD /metrics for a viewer, operator or admin certificate (200, text format 0.0.4); 401
 * without a valid client certificate, 403 for a host certificate, 404 for another path, 405
 * for another method. Always answers at once. */
bool metrics__on_http(void *user, const dfnet_http_request_t *req, dfnet_http_response_t *resp);
/* Open --metrics-listen (cfg.metrics_address; nothing when NULL) and print
 * "dfnet-manager: metrics on ADDR:PORT". Returns 0, or 1 when it cannot listen (printed).
 * Before the loop runs. */
int metrics__listen(mgr_t *m);
/* on_http of --metrics-listen (plain HTTP, no authentication): as metrics__on_http without
 * the certificate checks. */
bool metrics__on_http_plain(void *user, const dfnet_http_request_t *req,
                            dfnet_http_response_t *resp);

#endif /* DFNET_MANAGER_MANAGER_H */
