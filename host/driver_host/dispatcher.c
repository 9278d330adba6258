/* Synchronized dispatchers (docs/spec/dfv2.md "Driver hosts and lifecycle": a synchronized
 * dispatcher runs one callback at a time and is never reentrant). One thread per
 * dispatcher runs its tasks in order; delayed tasks wait in a list sorted by due time.
 *
 * A dispatcher is that serialisation, not its thread (as in Fuchsia's driver runtime,
 * "Driver dispatcher performance"): while it is idle another thread may run its tasks, in
 * order and one at a time, `borrowed` keeping its own thread off them meanwhile:
 *   - the link thread, the calls one read brought (dh__dispatcher_run_here);
 *   - inline, a thread that runs another dispatcher's task and posts to it: a driver's
 *     call to another driver of the process runs at once (dh__dispatcher_post_inline, then
 *     dh__dispatcher_settle once the poster's locks are released); any other post of a
 *     task (the replies to such a call, a cancel callback) leaves the dispatcher's thread
 *     asleep and runs when the posting task has returned, when no lock of the runtime is
 *     held (run_next_locked: settle_deferred).
 * Fuchsia's rules decide: only a thread running a dispatcher's task inlines (a driver's own
 * threads post and wake); never into a dispatcher with allow_sync_calls (its handlers may
 * block: they keep their own thread), and after its task only from a dispatcher without
 * it (a task that may block must not owe a run); never into a dispatcher that is not idle
 * (a task running or ready, borrowed) or closed, hence never into one already on this
 * thread's stack (no reentrancy); at most INLINE_DEPTH_MAX deep. A post to a dispatcher
 * on this thread's stack wakes nobody: this thread takes the task when it gets back to it.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

/* The dispatchers whose tasks this thread runs now, outermost first: a dispatcher thread's
 * own, one the link thread borrowed, then those run inline. The last is the current one. */
#define INLINE_DEPTH_MAX 8
static _Thread_local dh_dispatcher_t *tls_stack[INLINE_DEPTH_MAX];
static _Thread_local size_t tls_depth;

/* Dispatchers this thread's task posted to and left asleep, to run (or wake) when it
 * returns, or at once (dh__dispatcher_settle); each keeps a `posters` count, so that
 * dh__dispatcher_join waits for that. `claimed`: borrowed at the post already (a call, run
 * at once: its own thread must not take the task meanwhile). */
#define DEFERRED_MAX 16
typedef struct deferred {
  dh_dispatcher_t *d;
  bool claimed;
} deferred_t;
static _Thread_local deferred_t tls_deferred[DEFERRED_MAX];
static _Thread_local size_t tls_deferred_n;

/* Signals held back by dh__dispatcher_hold_signals() on this thread. */
#define HELD_MAX 16
static _Thread_local bool tls_holding;
static _Thread_local dh_dispatcher_t *tls_held[HELD_MAX];
static _Thread_local size_t tls_held_n;

/* How run_borrowed takes d: for the link thread (dh__dispatcher_run_here), inline if it is
 * idle, or inline as claimed at the post. */
typedef enum run_mode { RUN_LINK, RUN_INLINE, RUN_CLAIMED } run_mode_t;
static bool run_borrowed(dh_dispatcher_t *d, run_mode_t mode);

uint64_t dh__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

dh_dispatcher_t *dh__dispatcher_current(void) {
  return tls_depth > 0 ? tls_stack[tls_depth - 1] : NULL;
}

static bool on_this_stack(const dh_dispatcher_t *d) {
  for (size_t i = 0; i < tls_depth; i++)
    if (tls_stack[i] == d)
      return true;
  return false;
}

static deferred_t *deferred_here(const dh_dispatcher_t *d) {
  for (size_t i = 0; i < tls_deferred_n; i++)
    if (tls_deferred[i].d == d)
      return &tls_deferred[i];
  return NULL;
}

/* May this thread run d's tasks inline? `now`: at once (a call), not after its task. */
static bool may_inline(const dh_dispatcher_t *d, bool now) {
  const dh_dispatcher_t *cur = dh__dispatcher_current();
  return cur != NULL && tls_depth < INLINE_DEPTH_MAX && !d->allow_sync_calls &&
         (now || !cur->allow_sync_calls);
}

/* Take entry i off the list: run its dispatcher's tasks here if it is claimed or still
 * idle, else wake its thread; then let go of the `posters` count the entry kept. */
static void settle_at(size_t i) {
  deferred_t e = tls_deferred[i];
  tls_deferred_n--;
  memmove(tls_deferred + i, tls_deferred + i + 1, (tls_deferred_n - i) * sizeof *tls_deferred);
  if (!run_borrowed(e.d, e.claimed ? RUN_CLAIMED : RUN_INLINE))
    pthread_cond_signal(&e.d->cv);
  atomic_fetch_sub(&e.d->posters, 1);
}

/* The end of a task: run (or wake) the dispatchers it left asleep, first posted first.
 * The runs may defer more, settled here too. */
static void settle_deferred(void) {
  while (tls_deferred_n > 0)
    settle_at(0);
}

void dh__dispatcher_settle(dh_dispatcher_t *d) {
  for (size_t i = 0; i < tls_deferred_n; i++) {
    if (tls_deferred[i].d == d) {
      settle_at(i);
      return;
    }
  }
}

static void drop_task(dh_task_t *t) {
  if (t->drop != NULL)
    t->drop(t->arg);
  free(t);
}

bool dh__dispatcher_more_ready(void) {
  const dh_dispatcher_t *cur = dh__dispatcher_current();
  return cur != NULL && atomic_load(&cur->ready) > 0;
}

bool dh__dispatcher_busy(const dh_dispatcher_t *d) {
  return atomic_load(&d->running) || atomic_load(&d->ready) > 0;
}

/* The order of d->delayed for LL_INSERT_INORDER(list task a, task being inserted b): a
 * due at the same time as b sorts before it, so that b goes behind it (equal due_ns keep
 * the order they were posted in). */
static int due_order(const dh_task_t *a, const dh_task_t *b) {
  return a->due_ns <= b->due_ns ? -1 : 1;
}

/* Append t to the ready queue. Called with d->mu held. */
static void push_ready(dh_dispatcher_t *d, dh_task_t *t) {
  LL_APPEND_ELEM(d->head, d->tail, t); /* after the tail: no walk */
  d->tail = t;
  atomic_fetch_add(&d->ready, 1);
}

/* Move due delayed tasks to the ready queue. Called with d->mu held. */
static void promote_due(dh_dispatcher_t *d, uint64_t now) {
  while (d->delayed != NULL && d->delayed->due_ns <= now) {
    dh_task_t *t = d->delayed;
    LL_DELETE(d->delayed, t);
    push_ready(d, t);
  }
}

/* Run the task at the head of the ready queue on the calling thread, then what it left
 * asleep. Called with d->mu held and a task ready; d->mu is held again on return (released
 * while the task runs). */
static void run_next_locked(dh_dispatcher_t *d) {
  dh_task_t *t = d->head;
  LL_DELETE(d->head, t);
  if (d->head == NULL)
    d->tail = NULL;
  atomic_store(&d->running, true);
  atomic_fetch_sub(&d->ready, 1);
  pthread_mutex_unlock(&d->mu);
  t->run(t->arg);
  free(t);
  settle_deferred();
  pthread_mutex_lock(&d->mu);
  atomic_store(&d->running, false);
}

static void *dispatcher_main(void *arg) {
  dh_dispatcher_t *d = arg;
  tls_stack[0] = d;
  tls_depth = 1;
  pthread_mutex_lock(&d->mu);
  while (!d->exit) {
    if (d->delayed != NULL)
      promote_due(d, dh__now_ns());
    if (d->head == NULL || d->borrowed) {
      if (d->on_idle != NULL && !d->borrowed) {
        /* dry: send what the tasks deferred, then look again before sleeping */
        pthread_mutex_unlock(&d->mu);
        d->on_idle(d->idle_arg);
        pthread_mutex_lock(&d->mu);
        if ((d->head != NULL && !d->borrowed) || d->exit)
          continue;
      }
      if (d->delayed != NULL) {
        uint64_t due = d->delayed->due_ns;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
                              .tv_nsec = (long)(due % 1000000000u)};
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
      } else {
        pthread_cond_wait(&d->cv, &d->mu);
      }
      continue;
    }
    run_next_locked(d);
  }
  pthread_mutex_unlock(&d->mu);
  if (d->on_idle != NULL)
    d->on_idle(d->idle_arg);
  tls_depth = 0;
  return NULL;
}

dfnet_status_t dh__dispatcher_start(dh_dispatcher_t *d, bool allow_sync_calls, const char *subject,
                                    void (*on_idle)(void *), void *idle_arg) {
  pthread_condattr_t ca;
  pthread_mutex_init(&d->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&d->cv, &ca);
  pthread_condattr_destroy(&ca);
  d->head = d->tail = d->delayed = NULL;
  d->closed = false;
  d->exit = false;
  d->allow_sync_calls = allow_sync_calls;
  d->subject = subject;
  d->on_idle = on_idle;
  d->idle_arg = idle_arg;
  atomic_store(&d->ready, 0);
  atomic_store(&d->running, false);
  atomic_store(&d->posters, 0);
  d->borrowed = false;
  int rc = pthread_create(&d->thread, NULL, dispatcher_main, d);
  if (rc != 0) {
    DFNET_LOGE("driver-host", subject, "cannot create dispatcher thread: errno %d", rc);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    return DFNET_STATUS_INTERNAL;
  }
  return DFNET_STATUS_OK;
}

/* dh__dispatcher_post, and with `now` dh__dispatcher_post_inline. */
static dfnet_status_t post(dh_dispatcher_t *d, uint32_t delay_ms, void (*run)(void *),
                           void (*drop)(void *), void *arg, bool final, bool now) {
  dh_task_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  t->run = run;
  t->drop = drop;
  t->arg = arg;
  dh_task_t *dropped = NULL;
  pthread_mutex_lock(&d->mu);
  if (d->closed) {
    pthread_mutex_unlock(&d->mu);
    free(t);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  bool idle = d->head == NULL && !atomic_load(&d->running) && !d->borrowed && !d->exit;
  if (final) {
    d->closed = true;
    dropped = d->delayed;
    d->delayed = NULL;
    delay_ms = 0;
  }
  if (delay_ms == 0) {
    push_ready(d, t);
  } else {
    t->due_ns = dh__now_ns() + (uint64_t)delay_ms * 1000000u;
    LL_INSERT_INORDER(d->delayed, t, due_order);
  }
  /* Signal after unlocking (a waiter woken under the lock would only block on it again);
   * `posters` keeps dh__dispatcher_join from destroying the condvar meanwhile. While this
   * thread holds signals, once per dispatcher at dh__dispatcher_release_signals(). A ready
   * task for a dispatcher this thread runs, or has left asleep, needs no signal; one for an
   * idle dispatcher this thread may run inline is left for it (the file's head), keeping
   * its `posters` count until then. */
  bool signal = true, keep = false;
  deferred_t *e;
  if (tls_holding) {
    size_t i = 0;
    while (i < tls_held_n && tls_held[i] != d)
      i++;
    if (i < tls_held_n) {
      signal = false;
    } else if (tls_held_n < HELD_MAX) {
      tls_held[tls_held_n++] = d;
      signal = false;
    }
  } else if (delay_ms == 0 && on_this_stack(d)) {
    signal = false;
  } else if (delay_ms == 0 && (e = deferred_here(d)) != NULL) {
    signal = false;
    if (now && !e->claimed && !final && !d->borrowed && !atomic_load(&d->running) && !d->exit &&
        may_inline(d, true))
      e->claimed = d->borrowed = true;
  } else if (delay_ms == 0 && !final && idle && may_inline(d, now) &&
             tls_deferred_n < DEFERRED_MAX) {
    tls_deferred[tls_deferred_n++] = (deferred_t){d, now};
    d->borrowed = now; /* claimed for the run at once */
    signal = false;
    keep = true;
  }
  atomic_fetch_add(&d->posters, 1);
  pthread_mutex_unlock(&d->mu);
  if (signal)
    pthread_cond_signal(&d->cv);
  if (!keep)
    atomic_fetch_sub(&d->posters, 1);
  dh_task_t *gone, *tmp;
  LL_FOREACH_SAFE(dropped, gone, tmp) {
    drop_task(gone);
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dh__dispatcher_post(dh_dispatcher_t *d, uint32_t delay_ms, void (*run)(void *),
                                   void (*drop)(void *), void *arg, bool final) {
  return post(d, delay_ms, run, drop, arg, final, false);
}

dfnet_status_t dh__dispatcher_post_inline(dh_dispatcher_t *d, void (*run)(void *),
                                          void (*drop)(void *), void *arg) {
  return post(d, 0, run, drop, arg, false, true);
}

void dh__dispatcher_hold_signals(void) { tls_holding = true; }

dh_dispatcher_t *dh__dispatcher_release_signals(bool want_one) {
  tls_holding = false;
  dh_dispatcher_t *one = NULL;
  if (want_one && tls_held_n == 1)
    one = tls_held[0];
  else
    for (size_t i = 0; i < tls_held_n; i++)
      pthread_cond_signal(&tls_held[i]->cv);
  tls_held_n = 0;
  return one;
}

void dh__dispatcher_wake(dh_dispatcher_t *d) { pthread_cond_signal(&d->cv); }

/* Run d's ready tasks on the calling thread, as d, when d is idle and allows no sync calls
 * (RUN_INLINE: nor closed, its shutdown is its own thread's), or when this thread claimed
 * it (RUN_CLAIMED). Returns false, having run nothing (and let go of a claim), otherwise. */
static bool run_borrowed(dh_dispatcher_t *d, run_mode_t mode) {
  pthread_mutex_lock(&d->mu);
  bool refuse = tls_depth >= INLINE_DEPTH_MAX;
  if (mode != RUN_CLAIMED)
    refuse = refuse || atomic_load(&d->running) || d->borrowed || d->allow_sync_calls || d->exit ||
             d->head == NULL || (mode == RUN_INLINE && d->closed);
  if (refuse) {
    if (mode == RUN_CLAIMED)
      d->borrowed = false;
    pthread_mutex_unlock(&d->mu);
    return false;
  }
  d->borrowed = true;
  tls_stack[tls_depth++] = d;
  /* what is ready now, not what arrives meanwhile: this thread has its own work */
  for (unsigned n = atomic_load(&d->ready); n > 0 && d->head != NULL && !d->exit; n--)
    run_next_locked(d);
  tls_depth--;
  d->borrowed = false;
  /* the dispatcher's thread takes what is left, and leaves when the final task ran here */
  bool wake = d->head != NULL || d->exit || d->delayed != NULL;
  void (*on_idle)(void *) = d->on_idle;
  void *idle_arg = d->idle_arg;
  atomic_fetch_add(&d->posters, 1);
  pthread_mutex_unlock(&d->mu);
  if (on_idle != NULL)
    on_idle(idle_arg);
  if (wake)
    pthread_cond_signal(&d->cv);
  atomic_fetch_sub(&d->posters, 1);
  return true;
}

bool dh__dispatcher_run_here(dh_dispatcher_t *d) { return run_borrowed(d, RUN_LINK); }

void dh__dispatcher_exit(dh_dispatcher_t *d) {
  pthread_mutex_lock(&d->mu);
  d->exit = true;
  pthread_mutex_unlock(&d->mu);
}

void dh__dispatcher_join(dh_dispatcher_t *d) {
  pthread_join(d->thread, NULL);
  while (atomic_load(&d->posters) > 0)
    sched_yield();
  dh_task_t *lists[2] = {d->head, d->delayed};
  d->head = d->tail = d->delayed = NULL;
  for (int i = 0; i < 2; i++) {
    dh_task_t *t, *tmp;
    LL_FOREACH_SAFE(lists[i], t, tmp) {
      drop_task(t);
    }
  }
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
}
