/* The driver runtime inside dfnet-driver-host: the link to the host agent, the drivers it
 * holds, their dispatchers and their calls (docs/spec/dfv2.md "Driver hosts and lifecycle").
 * Internal to host/driver_host; drivers see include/dfnet/driver.h only.
 *
 * Threads:
 *   - the link thread (main): reads the socketpair, handles DriverStart/DriverStop/Call/
 *     Cancel/StreamCredit/Status, expires deadlines, reaps stopped drivers. It owns the
 *     driver table (dh_host.drivers): only the holder of the link role (role_mu) adds and
 *     removes entries. When one read brought work for one idle dispatcher, it runs that
 *     dispatcher's tasks itself (link.c run_inline), giving up the role meanwhile.
 *   - the rescuer: takes the link role when such a run lasts DH_RESCUE_AFTER_MS, until the
 *     run ends (a handler that blocks where it must not still stalls nobody else).
 *   - one dispatcher thread per driver: runs that driver's hooks and handlers in order
 *     (unless the link thread borrowed the dispatcher: one of the two at a time).
 *   - the driver's own threads: may call the API functions marked "any thread".
 * Writes to the link come from any thread, serialized by dh_host.write_mu.
 * Lock order: dh_call.mu -> dh_host.write_mu; dh_driver.mu and dh_host.calls_mu are
 * never held while taking another lock, except dispatcher.mu under nothing.
 */
#ifndef DFNET_HOST_DRIVER_HOST_RUNTIME_H
#define DFNET_HOST_DRIVER_HOST_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "lib/envelope.h"

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
  atomic_int posters;         /* posts between unlocking mu and signalling cv */
  bool borrowed;              /* another thread runs the tasks now (dh__dispatcher_run_here) */
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
 * RESOURCE_EXHAUSTED. `final` bypasses and sets `closed`, dropping delayed tasks. */
dfnet_status_t dh__dispatcher_post(dh_dispatcher_t *d, uint32_t delay_ms, void (*run)(void *),
                                   void (*drop)(void *), void *arg, bool final);

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
 * otherwise. Tasks posted meanwhile and d's exit are left to d's thread, woken after. */
bool dh__dispatcher_run_here(dh_dispatcher_t *d);

/* Ask the thread to leave after the running task (called from the final task). */
void dh__dispatcher_exit(dh_dispatcher_t *d);

/* Join the thread and free what is left (dropping tasks). Not from the thread itself. */
void dh__dispatcher_join(dh_dispatcher_t *d);

/* The dispatcher the calling thread runs, or NULL. */
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

typedef struct dh_waiter {
  struct dh_waiter *next;
  uint64_t id;
} dh_waiter_t;

struct dfnet_call;

struct dfnet_driver {
  struct dfnet_driver *next; /* dh_host.drivers (link thread only) */
  struct dh_host *host;
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
  dh_dispatcher_t dispatcher;

  pthread_mutex_t mu; /* state, methods, children, calls list, stop_waiters */
  dh_driver_state_t state;
  bool started;          /* start returned OK */
  bool in_start;         /* start is running (dispatcher thread only) */
  char start_error[256]; /* the last warning or error start logged: the failure's reason */
  dh_method_t *methods;
  size_t method_count;
  dh_child_t *children;
  struct dfnet_call *calls; /* every call of this driver not yet freed */
  dh_waiter_t *stop_waiters;
  uint64_t start_id; /* envelope id of the DriverStart to answer */
};

/* Load, check and start a driver for a DriverStart (link thread). Replies itself. */
void dh__driver_handle_start(struct dh_host *host, uint64_t id, const dfnet_v1_DriverStart *m,
                             dfnet_bytes_t program_json);

/* Begin the stop sequence of a driver (link thread). reply_id 0: nobody to answer. */
void dh__driver_begin_stop(dfnet_driver_t *drv, uint64_t reply_id);

/* Join a stopped driver's thread, unload it, free it (link thread). */
void dh__driver_reap(dfnet_driver_t *drv);

/* The driver on node `moniker` that has not stopped yet, or NULL: a stopped driver waits
 * in the list until the link thread reaps it, and counts as gone. *state (may be NULL) gets
 * its state (starting, running or stopping). Link thread. */
dfnet_driver_t *dh__driver_find_live(struct dh_host *host, const char *moniker,
                                     dh_driver_state_t *state);

/* Route a Status reply to a NodeAdd the driver sent (link thread). */
void dh__driver_child_status(struct dh_host *host, uint64_t id, dfnet_status_t code,
                             const char *message);

/* ---- calls ------------------------------------------------------------------------ */

typedef struct dh_item {
  struct dh_item *next;
  size_t len;
  uint8_t data[];
} dh_item_t;

struct dfnet_call {
  struct dfnet_call *hnext;         /* dh_host.calls hash chain (calls_mu) */
  struct dfnet_call *dnext, *dprev; /* driver->calls (driver->mu) */
  bool in_table;
  uint64_t id; /* link id of the Call envelope */
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
  bool cancel_done; /* the cancel callback was queued */

  char method[256];
  char caller[64];
  uint8_t *request;
  size_t request_len;
};

/* Handle a Call for a driver (link thread). Replies itself on any error. */
void dh__call_handle(struct dh_host *host, uint64_t id, const dfnet_v1_Call *m,
                     dfnet_bytes_t payload);

/* Cancel and StreamCredit (link thread). Unknown ids are ignored (logged at debug). */
void dh__call_handle_cancel(struct dh_host *host, uint64_t id);
void dh__call_handle_credit(struct dh_host *host, uint64_t id, uint32_t credit);

/* End a live call with `status` (not OK) unless it already ended: sends the final Reply,
 * queues its cancel callback, wakes waiters. Any thread, no lock held. */
void dh__call_end(struct dfnet_call *call, dfnet_status_t status, const char *message);

/* End every live call of drv (driver stopping / start failed). */
void dh__call_end_all(dfnet_driver_t *drv, dfnet_status_t status, const char *message);

/* End expired calls; return ms until the next deadline (-1: none). Link thread. */
int dh__call_expire(struct dh_host *host);

/* Drop the driver's references to calls it never completed (after stop). */
void dh__call_release_driver_refs(dfnet_driver_t *drv);

void dh__call_unref(struct dfnet_call *call);

/* ---- the host and its link -------------------------------------------------------- */

#define DH_CALL_BUCKETS 256u

typedef struct dh_pending_child {
  struct dh_pending_child *next;
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

typedef struct dh_host {
  int fd;      /* the socketpair end */
  int wake_fd; /* eventfd: reap queue has entries */
  /* The link role (reading fd, and everything "link thread" below) belongs to whoever
   * holds role_mu: the link thread, or the rescuer while the link thread runs a
   * dispatcher's tasks longer than DH_RESCUE_AFTER_MS (link.c run_inline). */
  pthread_mutex_t role_mu;
  struct dh_link_state *ls; /* reader state of the link (role_mu) */
  pthread_t rescuer;
  int rescue_fd;  /* timerfd armed while the link thread runs tasks */
  int release_fd; /* eventfd: the link thread wants the role back */
  atomic_bool inline_running, rescuer_active, rescuer_quit;
  dfnet_driver_t *drivers; /* link thread only */
  bool link_down;          /* EOF or write error: stop everything and exit */

  pthread_mutex_t write_mu; /* wenv, out, writes to fd */
  dfnet_envelope_t *wenv;
  uint8_t *out; /* frames encoded and not yet written (see link.c) */
  size_t out_len, out_cap;
  atomic_bool write_failed;
  _Atomic uint64_t deferred_since_ns; /* out holds deferred frames since then; 0: none */
  atomic_bool link_asleep;            /* the link thread waits in poll() with no timeout for them */

  pthread_mutex_t calls_mu; /* calls, deadline_count, pending children, reap */
  struct dfnet_call *calls[DH_CALL_BUCKETS];
  size_t live_calls;
  dh_pending_child_t *pending_children;
  dh_reap_t *reap;
  _Atomic uint64_t next_id; /* ids of requests this side sends (NodeAdd/NodeRemove) */
} dh_host_t;

/* Set up the host on the link fd. Returns OK or INTERNAL. */
dfnet_status_t dh__host_init(dh_host_t *host, int fd);
void dh__host_fini(dh_host_t *host);

/* Run the link thread until the link is closed and every driver stopped. Returns the
 * process exit code. */
int dh__link_run(dh_host_t *host);

/* Monotonic clock, ns. */
uint64_t dh__now_ns(void);

/* Write the frames dispatchers deferred (dispatcher on_idle hook; arg is the host). */
void dh__link_flush_deferred(void *host);

/* Fill and send one envelope: `fill` sets the member of env (already initialised with id).
 * Any thread. On a dispatcher with more tasks ready the frame may be deferred (link.c):
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

/* Queue a stopped driver for reaping by the link thread. Any thread. */
void dh__host_queue_reap(dh_host_t *host, dfnet_driver_t *drv);

/* Copy src into dst[cap] with truncation, always NUL-terminated. */
void dh__strlcpy(char *dst, const char *src, size_t cap);

#endif /* DFNET_HOST_DRIVER_HOST_RUNTIME_H */
