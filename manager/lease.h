/* dfnet-manager: leases (issue 20; docs/architecture.md "Leases"; proto/dfnet/v1/lease.proto).
 *
 * A lease gives one principal (a certificate's CN) exclusive use of nodes for a time. What
 * the manager keeps of it, and where:
 *   lease.c           the held leases by id, the claims index (which moniker a lease claims)
 *                     with its prefix counts, holding a lease, loading;
 *   lease_coverage.c  coverage and conflicts;
 *   lease_expiry.c    the expiry heap and the one timer;
 *   lease_grant.c     granting, renewing and ending a lease through the store;
 *   lease_internal.h  what those four share;
 *   lease_target.c    a request's targets resolved against the topology (a plan): monikers,
 *                     class paths, selectors over host labels and node properties;
 *   lease_queue.c     the wait queue: priority band then arrival, no overtaking, wait_ms,
 *                     cancel, a dropped session's grace and resume_id;
 *   lease_token.c     fencing tokens "<id>.<64 hex>" (256 random bits, getrandom(2));
 *   lease_fence.c     the check of a client's Call (handle_call.c);
 *   lease_info.c      what listings show (LeaseInfo, NodeInfo and HostInfo fields, messages);
 *   handle_lease_*.c, handle_list_leases.c   the wire requests;
 *   persist.c         the store opened at start-up, and the manager's other durable state
 *                     (driver flags, composite node specs).
 *
 * Coverage. A lease's nodes are its roots, one per target in target order (each covers its
 * subtree: every node below it, composite children included, through any of their parents),
 * then the parents of the roots that are composite nodes (each covers itself only). The
 * store keeps them in that order (store_lease_t.nodes), so a restarted manager knows which
 * is which before any host is back. Two leases conflict when a node one covers is covered
 * by the other; no two held leases conflict, so a moniker is claimed by one lease at most.
 *
 * Durability. Every change goes through the store (manager/store.h) before it is applied in
 * memory and answered; an expiry the store cannot record still ends the lease in memory
 * (the store's copy is expired too, and ends at the next start-up).
 *
 * Thread: the manager's service thread only, as everything of the manager (manager.h).
 * Records are found by id across loop turns, never kept by pointer.
 */
#ifndef DFNET_MANAGER_LEASE_H
#define DFNET_MANAGER_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager/manager.h"
#include "manager/store.h"

#define LEASE_TTL_DEFAULT_MS (30u * 60u * 1000u)        /* a request's ttl_ms 0 */
#define LEASE_TTL_OPERATOR_MAX_MS (24u * 3600u * 1000u) /* role operator's maximum */
#define LEASE_TOKEN_RANDOM_BYTES 32u                    /* 256 random bits */
#define LEASE_TOKEN_SIZE 96u /* "<id>.<64 hex>" and its NUL fit (Call.lease_token's bound) */
#define LEASE_ACTOR_MANAGER "dfnet-manager" /* the audit actor of an expiry */
#define LEASE_HISTORY_LIMIT_DEFAULT 1000u   /* LeaseHistory.limit 0 */
#define LEASE_HISTORY_LIMIT_MAX 10000u
#define LEASE_TIMER_MAX_MS 3600000u       /* the timer looks at the wall clock at least hourly */
#define LEASE_QUEUE_RETRY_MS 1000u        /* a queue with waiting requests is tried this often */
#define LEASE_WAITERS_PER_SESSION_MAX 64u /* waiting requests one session may have */

/* A held lease. Strings and arrays are owned by the record. */
typedef struct mgr_lease {
  UT_hash_handle hh; /* leases by id */
  uint64_t id;
  char holder[STORE_PRINCIPAL_MAX + 1];
  dfnet_v1_Role role; /* the holder's when it acquired */
  store_priority_t priority;
  size_t target_count; /* 1..STORE_TARGETS_MAX */
  store_target_kind_t kinds[STORE_TARGETS_MAX];
  char *targets[STORE_TARGETS_MAX]; /* as asked; a selector group: the node it picked */
  size_t node_count;                /* roots, then composite parents */
  size_t root_count;                /* nodes[0, root_count) cover their subtrees */
  char **nodes;                     /* [node_count], each owned */
  uint64_t ttl_ms;                  /* 0: no expiry */
  uint64_t acquired_ms, expires_ms; /* wall clock, Unix epoch ms; expires 0: never */
  uint8_t token_digest[STORE_DIGEST_SIZE];
  uint64_t generation;
  char reason[pb_membersize(dfnet_v1_LeaseInfo, reason)]; /* this run's memory only */
  size_t expiry_slot; /* its place in mgr_leases.expiries; SIZE_MAX: none (no expiry) */
  /* The last token a call carried that matched token_digest (lease_fence.c): a call with it
   * again is compared with it, not hashed. Memory only (never the store); zeroed when the
   * record goes. verified_len 0: none yet. */
  char verified[LEASE_TOKEN_SIZE];
  size_t verified_len;
} mgr_lease_t;

/* A request as the resolver and the queue see it: a LeaseAcquire, or a waiting request.
 * Borrowed strings. Targets: monikers and class paths, then the selectors (kind
 * STORE_TARGET_SELECTOR, "KEY=VALUE"), all of which pick one node together. */
typedef struct lease_ask {
  const char *principal;
  dfnet_v1_Role role;
  store_priority_t priority;
  size_t target_count; /* 1..STORE_TARGETS_MAX */
  store_target_t targets[STORE_TARGETS_MAX];
  uint64_t ttl_ms; /* what the lease gets: 0 = no expiry */
  const char *reason;
} lease_ask_t;

/* A request resolved against the topology: what a lease granted now would hold. Monikers
 * are borrowed from the topology or from the request's targets: valid in this loop turn.
 * Roots first (one per lease target, covering subtrees), then composite parents. */
typedef struct lease_plan {
  size_t target_count;
  store_target_t targets[STORE_TARGETS_MAX]; /* the lease's targets (selectors resolved) */
  size_t root_count;
  size_t node_count;
  const char *nodes[STORE_NODES_MAX];
} lease_plan_t;

/* The manager's lease state (mgr_t.leases), lease.c and lease_queue.c's. */
typedef struct lease_waiter lease_waiter_t;
typedef struct lease_claim lease_claim_t;
typedef struct lease_prefix lease_prefix_t;
typedef struct mgr_leases {
  mgr_lease_t *by_id;       /* uthash by id */
  lease_claim_t *claims;    /* uthash by moniker */
  lease_prefix_t *prefixes; /* uthash by text: claims at or below each moniker prefix */
  uint64_t claim_seq;       /* the last claim's place in the claims' order */
  mgr_lease_t **expiries;   /* a min-heap by expires_ms of the leases that expire */
  size_t expiry_count, expiry_cap;
  lease_waiter_t *queue; /* waiting requests in queue order */
  size_t queue_len;
  dfnet_timer_id_t timer; /* the one timer: expiries, wait deadlines, graces, retries */
} mgr_leases_t;

/* ---- lease.c, lease_coverage.c, lease_expiry.c, lease_grant.c: the held leases ------- */

/* Allocate m->leases (empty). Errors: RESOURCE_EXHAUSTED. Before the loop runs. */
dfnet_status_t lease__init(mgr_t *m) __attribute__((warn_unused_result));

/* Load the held leases and the wait queue from m->store (store__lease_load,
 * store__queue_load): a lease past its expiry ends at once (audited "expire", actor
 * LEASE_ACTOR_MANAGER); waiting requests wait for their principal's resume_id for the
 * session grace (cfg.host_grace_ms) from now. Arms the timer. Before the loop runs.
 * Errors: the store's (DATA_LOSS for a damaged row; err names the file and row);
 * RESOURCE_EXHAUSTED. */
dfnet_status_t lease__load(mgr_t *m, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Cancel the timer and free every record (shutdown; nothing is answered). NULL-safe. */
void lease__destroy(mgr_t *m);

/* Lease `id`, or NULL. */
mgr_lease_t *lease__get(mgr_t *m, uint64_t id);

/* The lease covering the node `moniker` (it is a root or below one, or a composite parent a
 * lease claims), or NULL. The node need not exist: then its moniker's prefixes (its
 * primary ancestors) are looked at. O(depth) hash lookups; O(1) when no lease is held. */
mgr_lease_t *lease__covering(mgr_t *m, const char *moniker);

/* lease__covering of node n, which is in the topology (no lookup of it by moniker). */
mgr_lease_t *lease__covering_node(mgr_t *m, const topology_node_t *n);

/* lease__covering of node n for a walk down the topology through primary parents: *through
 * is the lease that covers n's primary parent through a subtree (NULL: none, or n has no
 * parent), and gets the one that covers n so, for n's primary children. One hash lookup for
 * a node of one parent, where lease__covering walks up. */
mgr_lease_t *lease__covering_down(mgr_t *m, const topology_node_t *n, mgr_lease_t **through);

/* Is `moniker` the node `root` or below it (through primary monikers, or any parent of a
 * composite node on its way up)? Both need not exist. */
bool lease__descends(mgr_t *m, const char *root, const char *moniker);

/* How many claims (lease nodes) are `moniker` or below it by moniker ("<moniker>.*"), from
 * the claims' prefix counts: O(1). */
size_t lease__claims_below(mgr_t *m, const char *moniker);

/* Call fn for each composite node in the subtree of node `root` (it included), depth first,
 * until fn returns true; then true. False when none did (or root is not in the topology;
 * nothing is walked when the manager has no composite). O(subtree). */
bool lease__composite_below(mgr_t *m, const char *root,
                            bool (*fn)(void *arg, const topology_node_t *composite), void *arg);

/* The held lease that conflicts with plan p, or NULL: one covering a node of p, one whose
 * claim is below a root of p, or one covering a composite node below a root of p through
 * that composite's other parents (two subtrees meet at a composite). *node (may be NULL)
 * gets the moniker where they meet (borrowed: the plan's, the lease's or the topology's). */
mgr_lease_t *lease__conflict(mgr_t *m, const lease_plan_t *p, const char **node);

/* Does a held lease conflict with plan p (lease__conflict(m, p, NULL) != NULL)? Cheaper when
 * the lease need not be named: a claim below a root of p by moniker is found by the claims'
 * prefix counts, not by walking every claim. */
bool lease__conflicts(mgr_t *m, const lease_plan_t *p);

/* Grant plan p of request a: a fresh id, generation and token; one store transaction with
 * the lease, its "acquire" audit row and, when queue_id is not 0, that waiting request's
 * removal and "dequeue" row; then the lease is held in memory, the timer re-armed and
 * LEASE_ACQUIRED sent to watchers. The caller has checked that p conflicts with nothing.
 * token (LEASE_TOKEN_SIZE bytes) gets the token, the one copy there is: the answer carries
 * it. Errors (nothing changed; err says why): the store's; UNAVAILABLE (no random bytes);
 * RESOURCE_EXHAUSTED. */
dfnet_status_t lease__grant(mgr_t *m, const lease_ask_t *a, const lease_plan_t *p,
                            uint64_t queue_id, mgr_lease_t **out, char *token, char *err,
                            size_t err_size) __attribute__((warn_unused_result));

/* End lease l: how is STORE_AUDIT_RELEASE, _FORCE_RELEASE or _EXPIRE, by `actor` with
 * `detail` (may be NULL). The store deletes it with its audit row (one transaction); then
 * the calls in flight that carried its token end CANCELLED with `why` ("lease 42
 * released"), cancelled through to the drivers; LEASE_RELEASED or LEASE_EXPIRED goes to
 * watchers; l is freed and the timer re-armed. The queue is not tried: the caller does it
 * (lease_queue__try) once it has answered. Errors: the store's for a release (l stays
 * held, err says why); an expiry always ends (a store failure is logged). */
dfnet_status_t lease__end(mgr_t *m, mgr_lease_t *l, store_audit_action_t how, const char *actor,
                          const char *detail, const char *why, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* A renewal of l: expires_ms = now + ttl_ms (ttl_ms 0: no expiry), written with its
 * "renew" audit row by `actor` in one transaction, then in memory; the timer re-armed.
 * Errors: the store's (l unchanged). */
dfnet_status_t lease__renew(mgr_t *m, mgr_lease_t *l, uint64_t ttl_ms, const char *actor, char *err,
                            size_t err_size) __attribute__((warn_unused_result));

/* Append one audit row (its own transaction, or the caller's open one). targets and nodes
 * may be NULL with count 0. Errors: the store's. */
dfnet_status_t lease__audit(mgr_t *m, store_audit_action_t action, const char *actor,
                            uint64_t lease_id, const store_target_t *targets, size_t target_count,
                            const char *const *nodes, size_t node_count, const char *detail,
                            char *err, size_t err_size) __attribute__((warn_unused_result));

/* Re-arm the one timer for the next thing due: a lease's expiry, a waiting request's
 * deadline or grace, the queue's retry. Cheap: call after every change. */
void lease__arm_timer(mgr_t *m);

/* Every held lease in id order into *out (caller frees the array; the records stay
 * owned). Returns how many; 0 with *out NULL when none or without memory. */
size_t lease__sorted(mgr_t *m, mgr_lease_t ***out);

/* ---- lease_target.c: resolving a request ---------------------------------------------- */

/* Resolve request a into *p against the topology: a moniker as given (a node kept by its
 * parent's driver, a class entry, stands for the driver's node that serves it, as a call to
 * it does); a class path to its node, then the same; the selectors to the first node in
 * moniker order that is online, bound and satisfies all of them, preferring one no lease
 * covers and the plan's other roots do not overlap; then each composite root's parents. With
 * best_effort (a waiting request's wanted nodes), a target that does not resolve is kept by
 * its text (a moniker) or left out, and overlaps are allowed; nothing fails.
 * Errors (err says which target): NOT_FOUND (no such node or class entry; no online, bound
 * node matches the selectors); INVALID_ARGUMENT (a selector is not KEY=VALUE; two targets
 * overlap). */
dfnet_status_t lease__resolve(mgr_t *m, const lease_ask_t *a, bool best_effort, lease_plan_t *p,
                              char *err, size_t err_size) __attribute__((warn_unused_result));

/* Do plans a and b want a node in common? *node (may be NULL) gets one (borrowed). */
bool lease__plans_overlap(mgr_t *m, const lease_plan_t *a, const lease_plan_t *b,
                          const char **node);

/* Is text a selector, "KEY=VALUE" with KEY 1..255 bytes (VALUE may be empty), without
 * control characters? */
bool lease__selector_valid(const char *text);

/* ---- lease_token.c ------------------------------------------------------------------ */

/* A fresh token for lease `id` into out (LEASE_TOKEN_SIZE bytes): "<id>.<64 lowercase hex
 * digits>" of LEASE_TOKEN_RANDOM_BYTES from dfnet_pki_random (lib/pki.h "Secrets").
 * Errors: INTERNAL (no random bytes; logged). Any thread. */
dfnet_status_t lease__token_new(uint64_t id, char *out) __attribute__((warn_unused_result));

/* The lease id a token names ("<id>." prefix), or 0 when it is not a token's shape. */
uint64_t lease__token_id(const char *token);

/* ---- lease_fence.c ------------------------------------------------------------------ */

/* May client session s make `call` to the node `named` (as the target names it) served by
 * `serving` (named, or the ancestor whose driver keeps it)? OK when no lease covers named
 * (and cfg.require_lease is off), or when the covering lease is s's principal's and
 * call->lease_token is its token: *lease_id gets that lease's id (0 when none), whose end
 * cancels the call. Else FAILED_PRECONDITION with why "<node> is leased by alice until
 * 2026-12-07T10:00:00Z (lease 42)" (or "... (lease 42, no expiry)"), or, with
 * require_lease, "dfnet-manager requires a lease: dfnet lease acquire <target>". A token of
 * an ended lease is no token. A method the driver bound to `serving` declares read-only
 * (its manifest's read_only_methods) passes first, lease or not, require_lease or not, with
 * *lease_id 0. Driver-to-driver calls are not checked (the caller does not call this for a
 * host session). */
dfnet_status_t lease__fence_call(mgr_t *m, const mgr_session_t *s, const dfnet_v1_Call *call,
                                 const topology_node_t *named, const topology_node_t *serving,
                                 uint64_t *lease_id, char *why, size_t why_size);

/* ---- lease_info.c: what the manager shows of leases --------------------------------------- */

/* "<node> is leased by <holder> until <ISO 8601 UTC> (lease <id>)", or "... by <holder>
 * (lease <id>, no expiry)", into buf. */
void lease__fmt_held(char *buf, size_t size, const char *node, const mgr_lease_t *l);

/* Wall-clock ms as "2026-12-07T10:00:00Z" into buf (at least 24 bytes). */
void lease__fmt_time(char *buf, size_t size, uint64_t wall_ms);

/* src into dst (size bytes, cut), each control byte (< 0x20, 0x7f) replaced by a space: a
 * client's reason as the audit log keeps it. */
void lease__clean_text(char *dst, size_t size, const char *src);
/* l as a LeaseInfo into *out (cleared first; no token, queue_position 0). */
void lease__fill_info(const mgr_lease_t *l, dfnet_v1_LeaseInfo *out);

/* Send l as a LeaseInfo answer to request `id` of session `sid`, with `token` (NULL: none).
 * Errors: the transport's (NOT_FOUND: the session is gone). */
dfnet_status_t lease__send_info(mgr_t *m, dfnet_session_id_t sid, uint64_t id, const mgr_lease_t *l,
                                const char *token);

/* NodeInfo.lease_id, lease_holder, lease_expires_ms of node n. */
void lease__fill_node_info(mgr_t *m, const topology_node_t *n, dfnet_v1_NodeInfo *out);

/* HostInfo.lease_holders (at most 4, each once, in the order of the topology's nodes) and
 * leased_nodes of host h's nodes. O(h's nodes) when a lease claims one of them (or there are
 * composites); O(1) otherwise. */
void lease__fill_host_info(mgr_t *m, const mgr_host_t *h, dfnet_v1_HostInfo *out);

/* ---- lease_queue.c: the wait queue ---------------------------------------------------- */

/* Queue request a (a LeaseAcquire with wait) of session s, request `id`, waiting at most
 * wait_ms (0: while its session lives): a fresh queue id and arrival seq, written with its
 * "queue" audit row; LEASE_QUEUED goes to watchers; the timer re-armed. Its request is told
 * its place at once and whenever it changes (interim LeaseInfo answers with the queue entry's
 * id and queue_position), and answered when granted (lease_queue__try: the LeaseInfo with the
 * token, queue_position 0), at its deadline (DEADLINE_EXCEEDED), or when cancelled.
 * Errors (nothing queued): RESOURCE_EXHAUSTED (LEASE_WAITERS_PER_SESSION_MAX, memory); the
 * store's. */
dfnet_status_t lease_queue__enqueue(mgr_t *m, const mgr_session_t *s, uint64_t id,
                                    const lease_ask_t *a, uint32_t wait_ms, char *err,
                                    size_t err_size) __attribute__((warn_unused_result));

/* The first waiting request that comes before a new request of priority `priority` (a
 * higher band, or the same band: it arrived first) and wants a node plan p wants, or NULL;
 * *node (may be NULL) gets the node. No overtaking: such a request is served first.
 * *waiter_id and *principal (may be NULL; principal borrowed) describe it. */
bool lease_queue__blocker(mgr_t *m, store_priority_t priority, const lease_plan_t *p,
                          uint64_t *waiter_id, const char **principal, const char **node);

/* Try every waiting request in queue order: one whose session is attached, whose targets
 * resolve and are free, and that no request before it that still waits wants a node of, is
 * granted and answered with its LeaseInfo and token. Call after anything that may free
 * nodes. */
void lease_queue__try(mgr_t *m);

/* Cancel of request `id` of session s: when it is a waiting LeaseAcquire it leaves the
 * queue (audited "dequeue"), is answered CANCELLED, and true is returned. */
bool lease_queue__cancel(mgr_t *m, const mgr_session_t *s, uint64_t id);

/* Session `sid` ended: its waiting requests keep their places, detached, for the session
 * grace (cfg.host_grace_ms), for a LeaseAcquire with resume_id from their principal. */
void lease_queue__session_closed(mgr_t *m, dfnet_session_id_t sid);

/* LeaseAcquire{resume_id} from session s, request `id`: waiting request `queue_id` of the
 * same principal is attached to this request (a request still waiting for it on another
 * session is answered CANCELLED "resumed"), the queue is tried, and, still waiting, it is
 * told its place (an interim LeaseInfo, as lease_queue__enqueue's). Errors (not answered:
 * the caller answers): NOT_FOUND (no such waiting request: granted, timed out or its grace
 * ran out); PERMISSION_DENIED (another principal's). */
dfnet_status_t lease_queue__resume(mgr_t *m, const mgr_session_t *s, uint64_t id, uint64_t queue_id,
                                   char *err, size_t err_size);

/* Wall-clock ms when the queue next needs the timer (a deadline, a grace, a retry), or
 * UINT64_MAX. */
uint64_t lease_queue__next_due(mgr_t *m, uint64_t now);

/* The timer: waiting requests past their wait_ms end DEADLINE_EXCEEDED, detached ones past
 * their grace leave (audited "dequeue"). The caller tries the queue afterwards. */
void lease_queue__expire(mgr_t *m, uint64_t now);

/* Load the queue from the store (lease__load): every entry detached with a grace from now.
 * Errors: the store's; RESOURCE_EXHAUSTED. */
dfnet_status_t lease_queue__load(mgr_t *m, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Free every waiting request, unanswered (shutdown). */
void lease_queue__destroy(mgr_t *m);

/* Call fn for each waiting request in queue order, as a LeaseInfo (queue_position 1, 2, ...;
 * expires_ms: when it stops waiting, 0 = while its session lives) that matches `id` (0:
 * any) and `node` (NULL: any; else a request one of whose targets resolves to a node that
 * descends from it or is it). Stops when fn returns false. Returns how many fn was given. */
size_t lease_queue__each(mgr_t *m, uint64_t id, const char *node,
                         bool (*fn)(void *arg, const dfnet_v1_LeaseInfo *info), void *arg);

/* ---- persist.c: the manager's other durable state in the store ------------------------- */

/* Open <state-dir>/dfnet.db into m->store. Errors: store__open's, err naming the file and
 * the cause. Before the loop runs. */
dfnet_status_t persist__open(mgr_t *m, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Apply the stored driver flags to the index (a URL the index lacks keeps its row for a
 * driver registered again) and add the stored composite node specs (binder__add_spec; one
 * that no longer decodes or validates is logged and left out). After the index loaded.
 * Errors: the store's (DATA_LOSS: a damaged row). */
dfnet_status_t persist__load(mgr_t *m, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Write driver d's flag `disabled` through (before it is applied and answered). Errors:
 * the store's. */
dfnet_status_t persist__driver_flags(mgr_t *m, const driver_t *d, bool disabled, char *err,
                                     size_t err_size) __attribute__((warn_unused_result));

/* Driver d leaves the index (UNREGISTER): forget its flags (none kept is fine). Errors: the
 * store's. */
dfnet_status_t persist__driver_forget(mgr_t *m, const driver_t *d, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* AddCompositeNodeSpec: validate (binder__spec_admissible), write the spec through, then
 * add it (binder__add_spec); the store's row is removed again if the add fails. Errors:
 * binder__add_spec's (INVALID_ARGUMENT, ALREADY_EXISTS); the store's; RESOURCE_EXHAUSTED. */
dfnet_status_t persist__spec_add(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                 size_t err_size) __attribute__((warn_unused_result));

/* ---- handle_lease_*.c, handle_list_leases.c: the wire requests (sessions.c dispatches) ---- */
/* Each answers request env->pb.id of client session s (role checked by sessions.c) as its
 * file's comment and docs/protocol.md "Leases" say; env is borrowed for the call. */

/* LeaseAcquire: a LeaseInfo with the token (at once, or once the queue grants it), or a
 * Status (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION,
 * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, CANCELLED, the store's). */
void handle__lease_acquire(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* LeaseRenew: the LeaseInfo without token, or a Status (NOT_FOUND, PERMISSION_DENIED,
 * INVALID_ARGUMENT, the store's). */
void handle__lease_renew(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* LeaseRelease: Status OK once ended (then the queue is tried), or NOT_FOUND,
 * PERMISSION_DENIED, INVALID_ARGUMENT, the store's. */
void handle__lease_release(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* ListLeases: LeaseInfo items (held by id, then waiting in queue order), then Status OK "N
 * leases, M waiting" (RESOURCE_EXHAUSTED "list interrupted" when the session cannot take
 * more). */
void handle__list_leases(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);
/* LeaseHistory: LeaseAuditEntry items from the store, then Status OK "N entries[, more]", or
 * INVALID_ARGUMENT (limit), RESOURCE_EXHAUSTED, the store's. */
void handle__lease_history(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

#endif /* DFNET_MANAGER_LEASE_H */
