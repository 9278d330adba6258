/* The driver runtime inside dfnet-driver-host: the link to the host agent, the drivers it
 * holds, their dispatchers and their calls (docs/spec/dfv2.md "Driver hosts and lifecycle").
 * Internal to host/driver_host; drivers see include/dfnet/driver.h only.
 *
 * Threads:
 *   - the link thread (main): reads the socketpair, handles DriverStart/DriverStop/
 *     DriverSuspend/DriverResume/Call/Cancel/StreamCredit/Status, expires deadlines (calls'
 *     and starts' start_timeout_ms), reaps stopped drivers. It owns the
 *     driver table (dh_host.drivers): only the holder of the link role (role_mu) adds and
 *     removes entries. When one read brought work for one idle dispatcher, it runs that
 *     dispatcher's tasks itself (link.c run_inline), giving up the role meanwhile.
 *   - the rescuer: takes the link role when such a run lasts DH_RESCUE_AFTER_MS, until the
 *     run ends (a handler that blocks where it must not still stalls nobody else).
 *   - one dispatcher thread per driver: runs that driver's hooks and handlers in order,
 *     unless another thread borrowed the idle dispatcher (one of them at a time): the link
 *     thread, or inline the thread of another dispatcher whose task called, answered or
 *     cancelled a call of that driver (dispatcher.c; a dispatcher with allow_sync_calls
 *     is never borrowed).
 *   - the driver's own threads: may call the API functions marked "any thread".
 * Writes to the link come from any thread, serialized by dh_host.write_mu.
 *
 * Calls between drivers (client.c; include/dfnet/driver.h "Calling another driver"). A
 * driver's client call to a driver of this same process is a dh_call of the serving driver
 * like one from the link, marked `local`: its replies go to the calling side's record
 * (dh_outcall, `sink`) instead of the link, which posts them to the calling driver's
 * dispatcher. Called from a dispatcher's task, an idle serving dispatcher runs the
 * handler inline before dfnet_driver_client_call returns, and the replies reach an idle
 * calling dispatcher inline when the serving task returns; otherwise each side's thread is
 * woken. Any other client call is a request of this driver host on the link.
 *
 * Ids. The agent's supervisor numbers the requests it sends here 1, 2, 3 ... (never 2^63
 * or more); every request this driver host sends (NodeAdd, NodeRemove, Call) has an id
 * with bit 63 set (DH_OWN_ID_BASE), so the two directions' ids never meet. Replies to our
 * Calls, and our Cancel / StreamCredit for them, carry our id. A call between two drivers
 * of this process takes an id of ours too (it is in dh_host.calls, never on the link).
 *
 * Lock order: dh_call.mu -> dh_outcall.mu -> a dispatcher's mu; dh_call.mu ->
 * dh_host.write_mu; dh_driver.mu -> dh_host.calls_mu and dh_driver.mu -> a dispatcher's mu
 * (a call handed to a driver of this process is posted under its mu, so that its
 * dispatcher cannot be reaped meanwhile); dh_host.drivers_mu -> dh_driver.mu. Otherwise
 * dh_driver.mu, dh_host.calls_mu and dh_client.mu are held while taking no other lock.
 */
#ifndef DFNET_HOST_DRIVER_HOST_RUNTIME_H
#define DFNET_HOST_DRIVER_HOST_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "host/driver_host/id_table.h"
#include "lib/envelope.h"
#include "lib/resource.h"

/* ---- dispatcher ------------------------------------------------------------------- */

typedef struct dh_task {
  struct dh_task *next;
  uint64_t due_ns;         /* delayed tasks: CLOCK_MONOTONIC time to run */
  void (*run)(void *arg);  /* runs on the dispatcher thread */
  void (*drop)(void *arg); /* frees arg when the task is discarded unrun (may be NULL) */
  void *arg;
} dh_task_t;

typedef struct dh_dispatcher {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  dh_task_t *head, *tail; /* ready, FIFO */
  dh_task_t *delayed;     /* sorted by due_ns */
  bool closed;            /* no more posts; the final task is queued */
  bool exit;              /* the thread leaves after the current task */
  bool allow_sync_calls;
  atomic_uint ready;          /* tasks in head..tail (changed under mu, read without it) */
  atomic_bool running;        /* a task is running now */
  atomic_int posters;         /* posts between unlocking mu and signalling cv, and posts that left
                                 it asleep for the posting thread to run (until it settles them) */
  bool borrowed;              /* another thread runs its tasks now, or claimed them to run at once:
                                 the link thread (dh__dispatcher_run_here), or inline (dispatcher.c) */
  void (*on_idle)(void *arg); /* run on the thread, no lock held, when it runs dry */
  void *idle_arg;
  const char *subject; /* node moniker for logs (owned by the driver) */
} dh_dispatcher_t;

/* Start the dispatcher's thread. `on_idle(idle_arg)` (may be NULL) runs on that thread
 * each time its ready queue runs dry, before it waits: the driver host flushes the
 * replies its tasks deferred there. Returns OK or INTERNAL (thread creation failed). */
dfnet_status_t dh__dispatcher_start(dh_dispatcher_t *d, bool allow_sync_calls, const char *subject,
                                    void (*on_idle)(void *), void *idle_arg);

/* The calling thread is a dispatcher with more tasks ready to run after the current one
 * (they are its to run, so the answer cannot go stale while its task runs). */
bool dh__dispatcher_more_ready(void);

/* A task is running on d, or one is ready to. Any thread; a snapshot. */
bool dh__dispatcher_busy(const dh_dispatcher_t *d);

/* Queue a task (copied). delay_ms 0: behind the ready tasks. Returns OK, or
 * FAILED_PRECONDITION when closed (drop is NOT called then; the caller keeps arg), or
 * RESOURCE_EXHAUSTED. `final` bypasses and sets `closed`, dropping delayed tasks.
 * Any thread, any lock held. Posted from a dispatcher's task (one without allow_sync_calls)
 * to an idle dispatcher without allow_sync_calls, the task runs inline: d's thread is not
 * woken, and d's ready tasks run on the calling thread when its task has returned (unless
 * d is no longer idle then: d's thread is woken). Never runs anything itself. */
dfnet_status_t dh__dispatcher_post(dh_dispatcher_t *d, uint32_t delay_ms, void (*run)(void *),
                                   void (*drop)(void *), void *arg, bool final);

/* Queue a task to run inline at once: as dh__dispatcher_post (delay 0), but from the task
 * of any dispatcher (with allow_sync_calls too), and an idle d is claimed (borrowed) at
 * once, so that its own thread does not take the task: the caller must then call
 * dh__dispatcher_settle(d) as soon as it holds no lock. A driver's call to another driver
 * of this process (call.c dh__call_start_local). Any thread. */
dfnet_status_t dh__dispatcher_post_inline(dh_dispatcher_t *d, void (*run)(void *),
                                          void (*drop)(void *), void *arg);

/* Run d's ready tasks here now if a post of this thread's task left d asleep for it and d
 * is claimed or still idle, else wake d's thread (nothing when no post left d asleep). No
 * lock held: d's handlers run inside. Any thread. */
void dh__dispatcher_settle(dh_dispatcher_t *d);

/* Between these two calls, posts from the calling thread wake no dispatcher; release
 * wakes each one posted to, once: the link thread queues a whole read's calls before a
 * dispatcher starts on them (and can then batch its replies). Only a thread that also
 * joins the dispatchers (the link thread) may hold: a held dispatcher must not go away. */
void dh__dispatcher_hold_signals(void);
/* Returns NULL, or with want_one, the dispatcher when exactly one was posted to: it is
 * then not woken, and the caller runs it (dh__dispatcher_run_here) or wakes it. */
dh_dispatcher_t *dh__dispatcher_release_signals(bool want_one);
void dh__dispatcher_wake(dh_dispatcher_t *d);

/* Run d's ready tasks on the calling thread, as d (a synchronized dispatcher guarantees
 * one task at a time and order, not a thread): only when d's thread is idle and d does
 * not allow sync calls (its handlers must not block). Returns false, having run nothing,
 * otherwise. Tasks posted meanwhile and d's exit are left to d's thread, woken after.
 * The link thread's (link.c run_inline). */
bool dh__dispatcher_run_here(dh_dispatcher_t *d);

/* Ask the thread to leave after the running task (called from the final task). */
void dh__dispatcher_exit(dh_dispatcher_t *d);

/* Join the thread and free what is left (dropping tasks). Not from the thread itself. */
void dh__dispatcher_join(dh_dispatcher_t *d);

/* The dispatcher whose task the calling thread runs (the innermost, when it runs another
 * dispatcher's tasks inline), or a dispatcher thread's own between tasks; else NULL. */
dh_dispatcher_t *dh__dispatcher_current(void);

/* ---- drivers ---------------------------------------------------------------------- */

typedef enum dh_driver_state {
  DH_DRIVER_STARTING = 0,
  DH_DRIVER_RUNNING,
  DH_DRIVER_STOPPING,
  DH_DRIVER_STOPPED,
} dh_driver_state_t;

typedef struct dh_method {
  char path[256];
  dfnet_method_handler_t handler;
  bool server_streaming;
} dh_method_t;

typedef struct dh_child {
  struct dh_child *next;
  char name[129];
} dh_child_t;

/* A request answered once the driver has stopped: a DriverStop (OK), or the DriverStart of
 * a start that failed (`start` returned an error; or, after it returned OK, an asynchronous
 * start completed with an error, the start timeout, a stop before it completed), answered
 * with that status. */
typedef struct dh_waiter {
  struct dh_waiter *next;
  uint64_t id;
  dfnet_status_t code;
  char message[1024]; /* as long as a failed start's reason (driver.c) */
} dh_waiter_t;

struct dfnet_call;
struct dh_outcall;

/* One offer of the node (DriverStart.offered), with its strings (dfnet_driver_offer). */
typedef struct dh_offer {
  dfnet_offer_t view; /* points into the strings below */
  char service[128];
  char instance[130];
  char source[512];
} dh_offer_t;

/* A resource the driver was handed: a name of DriverStart.resources and the descriptor
 * that came with the frame in that place (link.c; dfnet_driver_resource_fd). */
typedef struct dh_resource {
  char name[DFNET_RESOURCE_NAME_MAX];
  int fd; /* owned: closed once `stop` has returned, or when the start is refused */
} dh_resource_t;

struct dfnet_driver {
  struct dfnet_driver *next; /* dh_host.drivers (added and removed by the link thread under
                                drivers_mu; read by it without) */
  struct dh_host *host;
  atomic_int refs; /* the driver table's, and each client bound to it in this process
                      (dh_client.local): the record is freed at the last (after reaping) */
  char moniker[512];
  const char *node_name; /* into moniker */
  char url[256];
  char *program_json; /* owned, NUL-terminated */
  void *dl;           /* dlopen handle */
  const dfnet_driver_ops_t *ops;
  const char *name; /* ops->name or "driver" */
  void *ctx;        /* owned, ctx_size bytes */
  dfnet_node_property_t *props;
  dfnet_v1_NodeProperty *pb_props; /* string storage of props */
  size_t prop_count;
  char (*offer_store)[128];
  const char **offers;
  size_t offer_count;
  dh_offer_t *offered; /* DriverStart.offered */
  size_t offered_count;
  dh_resource_t *resources; /* DriverStart.resources with their descriptors */
  size_t resource_count;
  dh_dispatcher_t dispatcher;

  uint32_t api_version; /* of its ops table: suspend / resume are read from version 2 on */

  pthread_mutex_t mu; /* state, methods, children, calls list, stop_waiters, start_* */
  dh_driver_state_t state;
  bool started;          /* start returned OK (prepare_stop and stop will run) */
  bool in_start;         /* start is running (dispatcher thread only) */
  bool start_async;      /* start called dfnet_driver_start_async() */
  bool start_done;       /* the start's outcome is decided (its Status sent or waiting) */
  char start_error[256]; /* the last warning or error start logged: the failure's reason */
  dh_method_t *methods;
  size_t method_count;
  dh_child_t *children;
  struct dfnet_call *calls;            /* every call of this driver not yet freed */
  struct dfnet_driver_client *clients; /* its clients not closed (client.c) */
  dh_waiter_t *stop_waiters;
  uint64_t start_id;          /* envelope id of the DriverStart to answer */
  uint32_t start_timeout_ms;  /* DriverStart.start_timeout_ms, 0 made 30000 */
  uint64_t start_deadline_ns; /* when the start must have completed (link thread) */
  atomic_bool suspended;      /* its suspend hook returned OK, no resume since */
};

/* Load, check and start a driver for a DriverStart (link thread). Replies itself.
 * fds[0 .. nfds) are the descriptors that came with the frame (link.c), taken in every case:
 * the driver's resources, in the order of m->resources, or closed when the start is
 * refused. Fewer descriptors than m->resources names refuse the start INTERNAL. */
void dh__driver_handle_start(struct dh_host *host, uint64_t id, const dfnet_v1_DriverStart *m,
                             dfnet_bytes_t program_json, int *fds, size_t nfds);

/* Begin the stop sequence of a driver. reply_id 0: nobody to answer. Any thread (the link
 * thread for a DriverStop; any thread for an asynchronous start that failed). A pending
 * asynchronous start (`start` returned OK, not completed) is decided CANCELLED first. */
void dh__driver_begin_stop(dfnet_driver_t *drv, uint64_t reply_id);

/* ---- the start's outcome, suspend and resume (lifecycle.c) ------------------------ */

/* The default of DriverStart.start_timeout_ms (0), ms. */
#define DH_START_TIMEOUT_DEFAULT_MS 30000u

/* A stop waiter for request `id`, answered `code` with `message` (NULL: none; cut to fit)
 * when the driver has stopped. NULL when out of memory. */
dh_waiter_t *dh__driver_waiter_new(uint64_t id, dfnet_status_t code, const char *message);

/* Decide the start's outcome once: OK makes a starting driver RUNNING. drv->mu held.
 * Returns false when it was decided before (the caller then sends nothing). */
bool dh__driver_start_decide_locked(dfnet_driver_t *drv, dfnet_status_t code);

/* Decide the start's outcome `code` (dh__driver_start_decide_locked), its answer kept until
 * the driver has stopped: w (the DriverStart's waiter from dh__driver_waiter_new; NULL when
 * out of memory) joins the stop waiters. drv->mu held. Returns false when the outcome was
 * decided before: w stays the caller's (to free). True: w is the driver's; when w is NULL
 * the caller answers the DriverStart itself once unlocked, rather than never. */
bool dh__driver_start_decide_deferred_locked(dfnet_driver_t *drv, dfnet_status_t code,
                                             dh_waiter_t *w);

/* The start failed after `start` returned OK (or while it runs): decide it `code`, stop the
 * driver (prepare_stop, drain, stop) and answer the DriverStart with code and message once
 * it has stopped. Any thread. Returns false when the start was decided before. */
bool dh__driver_start_fail(dfnet_driver_t *drv, dfnet_status_t code, const char *message);

/* Starts past their start_timeout_ms: failed DEADLINE_EXCEEDED ("start did not complete
 * within N ms"). Returns ms until the next start deadline (-1: none). Link thread. */
int dh__driver_expire_starts(struct dh_host *host);

/* DriverSuspend / DriverResume (link thread): the hook runs on the driver's dispatcher and
 * the request is answered with its status; FAILED_PRECONDITION when the driver is not
 * running (no driver, starting, stopping; suspend: already suspended; resume: not
 * suspended). Reply themselves. */
void dh__driver_handle_suspend(struct dh_host *host, uint64_t id, const dfnet_v1_DriverSuspend *m);
void dh__driver_handle_resume(struct dh_host *host, uint64_t id, const dfnet_v1_DriverResume *m);

/* The suspend and resume hooks, the one place they are called (docs/style.md 5): read from
 * a version-2 table only; NULL (or a version-1 driver) is OK. Dispatcher thread. */
dfnet_status_t dh__driver_hook_suspend(dfnet_driver_t *drv, uint32_t flags);
dfnet_status_t dh__driver_hook_resume(dfnet_driver_t *drv);

/* Join a stopped driver's thread, unload it, free it (link thread). */
void dh__driver_reap(dfnet_driver_t *drv);

/* The driver on node `moniker` that has not stopped yet, or NULL: a stopped driver waits
 * in the list until the link thread reaps it, and counts as gone. *state (may be NULL) gets
 * its state (starting, running or stopping). Link thread. */
dfnet_driver_t *dh__driver_find_live(struct dh_host *host, const char *moniker,
                                     dh_driver_state_t *state);

/* The same from any thread, with a reference the caller drops with dh__driver_unref(). */
dfnet_driver_t *dh__driver_find_ref(struct dh_host *host, const char *moniker);

/* Drop a reference to a driver record; the last frees it (after it was reaped). */
void dh__driver_unref(dfnet_driver_t *drv);

/* Route a Status reply to a NodeAdd a driver sent (link thread). Returns false when `id`
 * is no NodeAdd in flight. */
bool dh__driver_child_status(struct dh_host *host, uint64_t id, dfnet_status_t code,
                             const char *message);

/* ---- calls ------------------------------------------------------------------------ */

typedef struct dh_item {
  struct dh_item *next;
  size_t len;
  uint8_t data[];
} dh_item_t;

struct dfnet_call {
  struct dfnet_call *hnext;         /* dh_host.calls hash chain (calls_mu) */
  struct dfnet_call *dnext, *dprev; /* driver->calls, a utlist DL (driver->mu) */
  bool in_table;
  bool local;  /* made by a driver of this process: replies go to `sink`, never the link */
  uint64_t id; /* link id of the Call envelope (an id of ours when local) */
  dfnet_driver_t *driver;
  atomic_int refs;

  pthread_mutex_t mu; /* everything below */
  pthread_cond_t cv;
  bool ended;                /* the final status was sent or decided */
  dfnet_status_t end_status; /* why, when the runtime ended it */
  bool replied;              /* the driver called dfnet_call_reply */
  bool driver_holds;         /* the driver holds a reference */
  bool streaming;
  bool credit_seen; /* a StreamCredit arrived */
  uint32_t credit;
  dh_item_t *q_head, *q_tail;
  size_t q_len;
  bool final_pending; /* the driver's final reply waits behind q */
  dfnet_status_t final_status;
  char *final_message;
  uint8_t *final_data;
  size_t final_len;
  uint64_t deadline_ns; /* 0: none */
  dfnet_call_cancel_fn cancel_fn;
  void *cancel_arg;
  bool cancel_done;        /* the cancel callback was queued */
  struct dh_outcall *sink; /* local: the caller's record, until it lets go (client.c) */

  char method[256];
  const char *caller;            /* into storage: Call.caller */
  const char *caller_driver_url; /* into storage: Call.caller_driver_url */
  uint8_t *request;              /* into storage */
  size_t request_len;
  char storage[]; /* the request bytes, then the two strings (one allocation per call) */
};

/* Handle a Call for a driver (link thread). Replies itself on any error. */
void dh__call_handle(struct dh_host *host, uint64_t id, const dfnet_v1_Call *m,
                     dfnet_bytes_t payload);

/* What a driver of this process asks of `serving` (client.c): method (a full path),
 * request, deadline and credit as on the wire, and who calls. */
typedef struct dh_local_call {
  const char *method;
  const uint8_t *request;
  size_t len;
  uint32_t deadline_ms;
  uint32_t credit;
  const char *caller;
  const char *caller_driver_url;
} dh_local_call_t;

/* Hand a call to `serving`, a driver of this process, with id `id` (an id of ours): its
 * replies go to `sink`. On OK *out is the call with a reference for the caller (dropped
 * with dh__call_unref once the sink let go: dh__call_detach). Any thread, no lock held:
 * from a dispatcher's task, when the serving dispatcher is idle and allows no sync calls,
 * the handler runs inline, on the calling thread before this returns (the replies it
 * gives are then queued to the calling dispatcher, which is on this thread's stack).
 * Returns OK; UNAVAILABLE (the serving driver is stopping or stopped: nothing was
 * queued); RESOURCE_EXHAUSTED (memory). */
dfnet_status_t dh__call_start_local(dfnet_driver_t *serving, uint64_t id,
                                    const dh_local_call_t *args, struct dh_outcall *sink,
                                    struct dfnet_call **out);

/* The caller of a local call grants credit / lets go of it (its sink is cleared under the
 * call's mu: no reply reaches the caller's record afterwards). Any thread. */
void dh__call_add_credit(struct dfnet_call *call, uint32_t credit);
void dh__call_detach(struct dfnet_call *call);

/* Cancel and StreamCredit (link thread). Unknown ids are ignored (logged at debug). */
void dh__call_handle_cancel(struct dh_host *host, uint64_t id);
void dh__call_handle_credit(struct dh_host *host, uint64_t id, uint32_t credit);

/* End a live call with `status` (not OK) unless it already ended: sends the final Reply,
 * queues its cancel callback, wakes waiters. Any thread, no lock held. */
void dh__call_end(struct dfnet_call *call, dfnet_status_t status, const char *message);

/* End every live call of drv (driver stopping / start failed). */
void dh__call_end_all(dfnet_driver_t *drv, dfnet_status_t status, const char *message);

/* End expired calls (served ones and those this host's drivers made on the link); return
 * ms until the next deadline (-1: none). Link thread. */
int dh__call_expire(struct dh_host *host);

/* Drop the driver's references to calls it never completed (after stop). */
void dh__call_release_driver_refs(dfnet_driver_t *drv);

void dh__call_unref(struct dfnet_call *call);

/* ---- clients: calls a driver makes to another driver (client.c) ------------------ */

/* One call a driver made (dfnet_driver_client_call). Its end is decided once (`ended`,
 * under mu): by the serving side's final reply, a Cancel, the deadline or the client's
 * close; the on_done task then finishes it. References: the client's list (until
 * finished), the id table (remote, until ended), short-lived lookups. */
typedef struct dh_outcall {
  struct dh_outcall *hnext;         /* dh_host.outcalls hash chain (calls_mu): remote only */
  struct dh_outcall *cnext, *cprev; /* client->calls, a utlist DL (client->mu) */
  uint64_t id;                      /* an id of ours (DH_OWN_ID_BASE) */
  struct dfnet_driver_client *client;
  atomic_int refs;
  bool in_table;
  bool streaming;
  uint64_t deadline_ns;     /* remote: this hop's deadline (0: none) */
  struct dfnet_call *local; /* the serving driver's call when local (a reference), else NULL */
  dfnet_driver_client_item_fn on_item;
  dfnet_driver_client_done_fn on_done;
  void *arg;

  pthread_mutex_t mu;           /* below */
  bool ended;                   /* the final status is decided; later replies are dropped */
  struct dh_done *pending_done; /* its on_done, when the caller's dispatcher refused it */
} dh_outcall_t;

/* The id tables of dh_host (id_table.h): calls served for the link, calls made on it. */
DH_ID_TABLE(dh_call_table, struct dfnet_call)
DH_ID_TABLE(dh_outcall_table, dh_outcall_t)

struct dfnet_driver_client {
  struct dfnet_driver_client *next; /* driver->clients (driver->mu) */
  dfnet_driver_t *driver;           /* the calling driver */
  dfnet_driver_t *local;            /* the serving driver when in this process (a ref) */
  atomic_int refs;                  /* the handle (until closed) + one per call */
  atomic_bool unavailable;          /* the serving driver is gone (sticky) */
  pthread_mutex_t mu;               /* calls, call_count, closed */
  dh_outcall_t *calls;
  size_t call_count;
  bool closed;
  char service[128];
  char instance[130];
  char source[512];
};

/* A Reply or a Status from the agent for a call of ours (link thread). Returns false when
 * `id` is no call of ours (a Status then goes on to the children's requests). A Status is
 * the agent's final answer without the serving driver; Status UNAVAILABLE says that the
 * serving driver is gone: the client turns UNAVAILABLE. */
bool dh__client_handle_reply(struct dh_host *host, uint64_t id, const dfnet_v1_Reply *reply,
                             dfnet_bytes_t payload);
bool dh__client_handle_status(struct dh_host *host, uint64_t id, dfnet_status_t code,
                              const char *message);

/* A local call's reply reached the serving side's end (under the serving call's mu): post
 * it to the caller (an item, or the final with its status). Never drops a reference. */
void dh__client_deliver(dh_outcall_t *out, dfnet_status_t code, const char *message, bool eos,
                        const uint8_t *data, size_t len);

/* Remote calls past their deadline: end them, Cancel on the link. Called by
 * dh__call_expire with calls_mu NOT held; returns the next deadline (ns, 0: none). */
uint64_t dh__client_expire(struct dh_host *host, uint64_t now);

/* The link is gone: end every remote call UNAVAILABLE (link thread). */
void dh__client_link_down(struct dh_host *host);

/* After `stop` returned: close the clients the driver left open, without callbacks. */
void dh__client_release_driver(dfnet_driver_t *drv);

/* ---- the host and its link -------------------------------------------------------- */

/* The ids of the requests this driver host sends have this bit (see "Ids" above). */
#define DH_OWN_ID_BIT (1ull << 63)
#define DH_OWN_ID_BASE (DH_OWN_ID_BIT | 1u)

typedef struct dh_pending_child {
  struct dh_pending_child *next, *prev; /* dh_host.pending_children (utlist DL) */
  uint64_t id;
  dfnet_driver_t *driver;
  char name[129];
  dfnet_child_added_fn done;
  void *arg;
} dh_pending_child_t;

typedef struct dh_reap {
  struct dh_reap *next;
  dfnet_driver_t *driver;
} dh_reap_t;

struct dh_link_state;
struct dh_sandbox;

typedef struct dh_host {
  int fd;      /* the socketpair end */
  int wake_fd; /* eventfd: reap queue has entries */
  /* The link role (reading fd, and everything "link thread" below) belongs to whoever
   * holds role_mu: the link thread, or the rescuer while the link thread runs a
   * dispatcher's tasks longer than DH_RESCUE_AFTER_MS (link.c run_inline). */
  pthread_mutex_t role_mu;
  struct dh_link_state *ls; /* reader state of the link (role_mu) */
  pthread_t rescuer;
  bool rescuer_started; /* sandboxed: only once confined (sandbox.h), link thread */
  int rescue_fd;        /* timerfd armed while the link thread runs tasks */
  int release_fd;       /* eventfd: the link thread wants the role back */
  atomic_bool inline_running, rescuer_active, rescuer_quit;
  dfnet_driver_t *drivers;    /* changed by the link thread only, under drivers_mu */
  atomic_uint starts_pending; /* drivers whose start is not decided (lifecycle.c) */
  pthread_mutex_t drivers_mu;
  bool link_down;          /* EOF or write error: stop everything and exit */
  atomic_bool link_closed; /* link_down, readable from any thread */
  /* --sandbox: the confinement (sandbox.h), else NULL. fatal: it could not be applied;
   * once the refusal is sent the link thread stops everything and the process exits 1. */
  struct dh_sandbox *sandbox;
  bool fatal;

  pthread_mutex_t write_mu; /* wenv, out, writes to fd */
  dfnet_envelope_t *wenv;
  uint8_t *out; /* frames encoded and not yet written (see link_write.c) */
  size_t out_len, out_cap;
  atomic_bool write_failed;
  _Atomic uint64_t deferred_since_ns; /* out holds deferred frames since then; 0: none */
  atomic_bool link_asleep;            /* the link thread waits in poll() with no timeout for them */

  pthread_mutex_t calls_mu;    /* calls, outcalls, next_expiry_ns, pending children, reap */
  dh_call_table_t calls;       /* the calls served for the link, by id */
  dh_outcall_table_t outcalls; /* our calls on the link, by id */
  uint64_t next_expiry_ns;     /* the deadline the link thread wakes for (0: none) */
  dh_pending_child_t *pending_children;
  dh_reap_t *reap;
  _Atomic uint64_t next_id; /* ids of requests this side sends (DH_OWN_ID_BASE ...) */
} dh_host_t;

/* Set up the host on the link fd. Returns OK or INTERNAL. */
dfnet_status_t dh__host_init(dh_host_t *host, int fd);
void dh__host_fini(dh_host_t *host);

/* Run the link thread until the link is closed and every driver stopped. Returns the
 * process exit code (1 after host->fatal). Unsandboxed, the rescuer starts with it. */
int dh__link_run(dh_host_t *host);

/* Start the rescuer thread (idempotent). Sandboxed, the confinement calls it once the
 * process is confined, so that the thread is confined too (sandbox.c). Link thread.
 * Returns OK or INTERNAL (logged). */
dfnet_status_t dh__link_start_rescuer(dh_host_t *host);

/* Monotonic clock, ns. */
uint64_t dh__now_ns(void);

/* How long the link thread lets deferred frames wait (link_write.c, link.c). */
#define DH_DEFER_MAX_MS 1

/* Write the frames dispatchers deferred (dispatcher on_idle hook; arg is the host). */
void dh__link_flush_deferred(void *host);

/* Fill and send one envelope: `fill` sets the member of env (already initialised with id).
 * Any thread. On a dispatcher with more tasks ready the frame may be deferred (link_write.c):
 * OK then means queued behind the frames before it. Returns OK or UNAVAILABLE (link
 * gone) or INVALID_ARGUMENT (encode failed) or RESOURCE_EXHAUSTED (out of memory). */
typedef void (*dh_fill_fn)(dfnet_envelope_t *env, void *arg);
dfnet_status_t dh__link_send(dh_host_t *host, uint64_t id, dh_fill_fn fill, void *arg,
                             const uint8_t *bulk, size_t bulk_len);

/* Send Status{code, message} with id. */
dfnet_status_t dh__link_send_status(dh_host_t *host, uint64_t id, dfnet_status_t code,
                                    const char *message);

/* Send Reply{code, message, end_of_stream} with payload. */
dfnet_status_t dh__link_send_reply(dh_host_t *host, uint64_t id, dfnet_status_t code,
                                   const char *message, bool end_of_stream, const uint8_t *data,
                                   size_t len);

/* Send our Call (every field of m set by the caller), Cancel{reason} or StreamCredit. */
dfnet_status_t dh__link_send_call(dh_host_t *host, uint64_t id, const dfnet_v1_Call *m,
                                  const uint8_t *data, size_t len);
dfnet_status_t dh__link_send_cancel(dh_host_t *host, uint64_t id, const char *reason);
dfnet_status_t dh__link_send_credit(dh_host_t *host, uint64_t id, uint32_t credit);

/* A call with a deadline at deadline_ns was added by a thread other than the link thread:
 * wake the link thread if it sleeps past it. calls_mu held. */
void dh__link_deadline_added_locked(dh_host_t *host, uint64_t deadline_ns);

/* Queue a stopped driver for reaping by the link thread. Any thread. */
void dh__host_queue_reap(dh_host_t *host, dfnet_driver_t *drv);

/* ArtifactOpen (artifact.c): is request `id` one of ours waiting for its answer? Link thread. */
bool dh__artifact_waiting(uint64_t id);
/* Its answer: the Status code and, when OK, the descriptor that came with it (-1: none;
 * taken in every case). Link thread. */
void dh__artifact_answer(uint64_t id, dfnet_status_t code, int fd);
/* The link is gone: every ArtifactOpen waiting ends UNAVAILABLE. Link thread. */
void dh__artifact_link_down(void);

/* Copy src into dst[cap] with truncation, always NUL-terminated. */
void dh__strlcpy(char *dst, const char *src, size_t cap);

#endif /* DFNET_HOST_DRIVER_HOST_RUNTIME_H */
