/* Synchronized dispatchers (docs/spec/dfv2.md "Driver hosts and lifecycle": a synchronized
 * dispatcher runs one callback at a time and is never reentrant). One thread per
 * dispatcher runs its tasks in order; delayed tasks wait in a list sorted by due time.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

static _Thread_local dh_dispatcher_t *tls_current;

/* Signals held back by dh__dispatcher_hold_signals() on this thread. */
#define HELD_MAX 16
static _Thread_local bool tls_holding;
static _Thread_local dh_dispatcher_t *tls_held[HELD_MAX];
static _Thread_local size_t tls_held_n;

uint64_t dh__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

dh_dispatcher_t *dh__dispatcher_current(void) { return tls_current; }

static void drop_task(dh_task_t *t) {
  if (t->drop != NULL)
    t->drop(t->arg);
  free(t);
}

bool dh__dispatcher_more_ready(void) {
  return tls_current != NULL && atomic_load(&tls_current->ready) > 0;
}

bool dh__dispatcher_busy(const dh_dispatcher_t *d) {
  return atomic_load(&d->running) || atomic_load(&d->ready) > 0;
}

/* Append t to the ready queue. Called with d->mu held. */
static void push_ready(dh_dispatcher_t *d, dh_task_t *t) {
  t->next = NULL;
  if (d->tail != NULL)
    d->tail->next = t;
  else
    d->head = t;
  d->tail = t;
  atomic_fetch_add(&d->ready, 1);
}

/* Move due delayed tasks to the ready queue. Called with d->mu held. */
static void promote_due(dh_dispatcher_t *d, uint64_t now) {
  while (d->delayed != NULL && d->delayed->due_ns <= now) {
    dh_task_t *t = d->delayed;
    d->delayed = t->next;
    push_ready(d, t);
  }
}

/* Run the task at the head of the ready queue on the calling thread. Called with d->mu
 * held and a task ready; d->mu is held again on return (released while the task runs). */
static void run_next_locked(dh_dispatcher_t *d) {
  dh_task_t *t = d->head;
  d->head = t->next;
  if (d->head == NULL)
    d->tail = NULL;
  atomic_store(&d->running, true);
  atomic_fetch_sub(&d->ready, 1);
  pthread_mutex_unlock(&d->mu);
  t->run(t->arg);
  free(t);
  pthread_mutex_lock(&d->mu);
  atomic_store(&d->running, false);
}

static void *dispatcher_main(void *arg) {
  dh_dispatcher_t *d = arg;
  tls_current = d;
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
  tls_current = NULL;
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

dfnet_status_t dh__dispatcher_post(dh_dispatcher_t *d, uint32_t delay_ms, void (*run)(void *),
                                   void (*drop)(void *), void *arg, bool final) {
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
    dh_task_t **pp = &d->delayed;
    while (*pp != NULL && (*pp)->due_ns <= t->due_ns)
      pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
  }
  /* Signal after unlocking (a waiter woken under the lock would only block on it again);
   * `posters` keeps dh__dispatcher_join from destroying the condvar meanwhile. While this
   * thread holds signals, once per dispatcher at dh__dispatcher_release_signals(). */
  bool signal = true;
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
  }
  atomic_fetch_add(&d->posters, 1);
  pthread_mutex_unlock(&d->mu);
  if (signal)
    pthread_cond_signal(&d->cv);
  atomic_fetch_sub(&d->posters, 1);
  while (dropped != NULL) {
    dh_task_t *next = dropped->next;
    drop_task(dropped);
    dropped = next;
  }
  return DFNET_STATUS_OK;
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

bool dh__dispatcher_run_here(dh_dispatcher_t *d) {
  pthread_mutex_lock(&d->mu);
  if (d->running || d->borrowed || d->allow_sync_calls || d->exit || d->head == NULL) {
    pthread_mutex_unlock(&d->mu);
    return false;
  }
  d->borrowed = true;
  dh_dispatcher_t *saved = tls_current;
  tls_current = d;
  /* what is ready now, not what arrives meanwhile: this thread has its own work */
  for (unsigned n = atomic_load(&d->ready); n > 0 && d->head != NULL && !d->exit; n--)
    run_next_locked(d);
  tls_current = saved;
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
    while (lists[i] != NULL) {
      dh_task_t *next = lists[i]->next;
      drop_task(lists[i]);
      lists[i] = next;
    }
  }
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
}
