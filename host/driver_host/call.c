/* Calls to a driver's served methods (docs/design.md "Calls"; proto/dfnet/v1/call.proto):
 * unary and server-streaming, deadlines, cancellation and the credit window.
 *
 * Invariant: every Call gets exactly one final Reply (end_of_stream = true). A call ends
 * either by the driver's dfnet_call_reply() or by the runtime (deadline, Cancel, driver
 * stopping); whichever takes call->mu first and finds `ended` false sends the final Reply,
 * the other is dropped (a late driver reply is logged at debug level).
 *
 * References on a call: the id table (until it ends), the queued handler task (passed to
 * the driver when its handler runs, released by dfnet_call_reply() or after `stop`), a
 * queued cancel callback, short-lived lookups by the link thread, and for a call another
 * driver of this process made (`local`), the caller's record (client.c).
 *
 * Every reply leaves through call_emit(), under the call's mu: on the link for a call from
 * the agent; to the caller's record (`sink`) for a local call, so that the serving driver
 * cannot tell the two apart but by dfnet_call_caller() and dfnet_call_caller_driver_url().
 * A local call's handler runs inline on the calling thread when the serving dispatcher is
 * idle (dh__call_start_local; dispatcher.c), with the same deadline, credit and
 * cancellation: only the thread differs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

#define CALL_SUBSYS "driver-host"
#define CALL_QUEUE_MAX 64u
#define CALL_DEFAULT_CREDIT 16u

/* ---- the id table (host->calls_mu) ----------------------------------------------------- */

static bool table_insert(dh_host_t *host, struct dfnet_call *call) {
  pthread_mutex_lock(&host->calls_mu);
  bool fresh = dh_call_table_find_locked(&host->calls, call->id) == NULL;
  if (fresh)
    dh_call_table_link_locked(&host->calls, call);
  pthread_mutex_unlock(&host->calls_mu);
  return fresh;
}

static struct dfnet_call *table_find_ref(dh_host_t *host, uint64_t id) {
  return dh_call_table_find_ref(&host->calls, &host->calls_mu, id);
}

/* Remove the call from the table (idempotent) and drop the table's reference. */
static void table_remove(struct dfnet_call *call) {
  dh_host_t *host = call->driver->host;
  if (dh_call_table_remove(&host->calls, &host->calls_mu, call))
    dh__call_unref(call);
}

/* ---- replies ----------------------------------------------------------------------------- */

/* Send one reply of the call to its caller. call->mu held. */
static dfnet_status_t call_emit(struct dfnet_call *call, dfnet_status_t code, const char *message,
                                bool eos, const uint8_t *data, size_t len) {
  if (!call->local)
    return dh__link_send_reply(call->driver->host, call->id, code, message, eos, data, len);
  if (call->sink != NULL)
    dh__client_deliver(call->sink, code, message, eos, data, len);
  return DFNET_STATUS_OK;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void drop_queue(struct dfnet_call *call) {
  dh_item_t *it, *tmp;
  LL_FOREACH_SAFE(call->q_head, it, tmp) {
    LL_DELETE(call->q_head, it);
    free(it);
  }
  call->q_tail = NULL;
  call->q_len = 0;
}

static void drop_final(struct dfnet_call *call) {
  free(call->final_message);
  free(call->final_data);
  call->final_message = NULL;
  call->final_data = NULL;
  call->final_pending = false;
}

void dh__call_unref(struct dfnet_call *call) {
  if (atomic_fetch_sub(&call->refs, 1) != 1)
    return;
  dfnet_driver_t *drv = call->driver;
  pthread_mutex_lock(&drv->mu);
  DL_DELETE2(drv->calls, call, dprev, dnext);
  pthread_mutex_unlock(&drv->mu);
  drop_queue(call);
  drop_final(call);
  pthread_cond_destroy(&call->cv);
  pthread_mutex_destroy(&call->mu);
  free(call);
}

static void unref_arg(void *arg) { dh__call_unref(arg); }

/* ---- ending a call ------------------------------------------------------------------------ */

typedef struct cancel_task {
  struct dfnet_call *call;
  dfnet_call_cancel_fn fn;
  void *arg;
  dfnet_status_t why;
} cancel_task_t;

static void task_cancel(void *arg) {
  cancel_task_t *t = arg;
  t->fn(t->call->driver->ctx, t->call, t->why, t->arg);
  dh__call_unref(t->call);
  free(t);
}

static void drop_cancel(void *arg) {
  cancel_task_t *t = arg;
  dh__call_unref(t->call);
  free(t);
}

static void post_cancel(struct dfnet_call *call, dfnet_call_cancel_fn fn, void *arg,
                        dfnet_status_t why) {
  cancel_task_t *t = malloc(sizeof *t);
  if (t == NULL) {
    DFNET_LOGE(CALL_SUBSYS, call->driver->moniker, "out of memory: cancel callback lost");
    return;
  }
  atomic_fetch_add(&call->refs, 1);
  *t = (cancel_task_t){call, fn, arg, why};
  if (dh__dispatcher_post(&call->driver->dispatcher, 0, task_cancel, drop_cancel, t, false) !=
      DFNET_STATUS_OK)
    drop_cancel(t);
}

void dh__call_end(struct dfnet_call *call, dfnet_status_t status, const char *message) {
  dfnet_call_cancel_fn fn = NULL;
  void *fn_arg = NULL;
  pthread_mutex_lock(&call->mu);
  if (call->ended) {
    pthread_mutex_unlock(&call->mu);
    return;
  }
  call->ended = true;
  call->end_status = status;
  drop_queue(call);
  drop_final(call);
  call_emit(call, status, message, true, NULL, 0);
  pthread_cond_broadcast(&call->cv);
  if (!call->replied && call->cancel_fn != NULL && !call->cancel_done) {
    call->cancel_done = true;
    fn = call->cancel_fn;
    fn_arg = call->cancel_arg;
  }
  pthread_mutex_unlock(&call->mu);
  DFNET_LOGD(CALL_SUBSYS, call->driver->moniker, "call %llu %s ended: %s: %s",
             (unsigned long long)call->id, call->method, dfnet_status_str(status),
             message ? message : "");
  if (fn != NULL)
    post_cancel(call, fn, fn_arg, status);
  table_remove(call);
}

/* Take a reference on every call of drv into a malloc'd array. */
static struct dfnet_call **collect_calls(dfnet_driver_t *drv, size_t *n) {
  struct dfnet_call **all = NULL;
  *n = 0;
  pthread_mutex_lock(&drv->mu);
  size_t count;
  struct dfnet_call *c;
  DL_COUNT2(drv->calls, c, count, dnext);
  if (count > 0 && (all = malloc(count * sizeof *all)) != NULL) {
    DL_FOREACH2(drv->calls, c, dnext) {
      atomic_fetch_add(&c->refs, 1);
      all[(*n)++] = c;
    }
  }
  pthread_mutex_unlock(&drv->mu);
  if (count > 0 && all == NULL)
    DFNET_LOGE(CALL_SUBSYS, drv->moniker, "out of memory collecting calls");
  return all;
}

void dh__call_end_all(dfnet_driver_t *drv, dfnet_status_t status, const char *message) {
  size_t n;
  struct dfnet_call **all = collect_calls(drv, &n);
  for (size_t i = 0; i < n; i++) {
    dh__call_end(all[i], status, message);
    dh__call_unref(all[i]);
  }
  free(all);
}

void dh__call_release_driver_refs(dfnet_driver_t *drv) {
  size_t n;
  struct dfnet_call **all = collect_calls(drv, &n);
  for (size_t i = 0; i < n; i++) {
    struct dfnet_call *c = all[i];
    pthread_mutex_lock(&c->mu);
    bool release = c->driver_holds && !c->replied;
    c->driver_holds = false;
    c->replied = true;
    pthread_mutex_unlock(&c->mu);
    if (release) {
      DFNET_LOGW(CALL_SUBSYS, drv->moniker, "driver never completed call %llu (%s)",
                 (unsigned long long)c->id, c->method);
      dh__call_unref(c);
    }
    dh__call_unref(c);
  }
  free(all);
}

int dh__call_expire(dh_host_t *host) {
  enum { BATCH = 64 };
  struct dfnet_call *expired[BATCH];
  size_t n;
  uint64_t next = 0;
  bool outcalls = false;
  do {
    uint64_t now = dh__now_ns();
    n = 0;
    next = 0;
    pthread_mutex_lock(&host->calls_mu);
    /* 0 until stored below: a deadline added meanwhile wakes the link thread */
    host->next_expiry_ns = 0;
    outcalls = host->outcalls.live > 0;
    for (unsigned b = 0; host->calls.live > 0 && b < DH_ID_TABLE_BUCKETS; b++) {
      struct dfnet_call *c;
      LL_FOREACH2(host->calls.buckets[b], c, hnext) {
        if (c->deadline_ns == 0)
          continue;
        if (c->deadline_ns <= now && n < BATCH) {
          atomic_fetch_add(&c->refs, 1);
          expired[n++] = c;
        } else if (next == 0 || c->deadline_ns < next) {
          next = c->deadline_ns;
        }
      }
    }
    pthread_mutex_unlock(&host->calls_mu);
    for (size_t i = 0; i < n; i++) {
      dh__call_end(expired[i], DFNET_STATUS_DEADLINE_EXCEEDED,
                   "deadline exceeded at the driver host");
      dh__call_unref(expired[i]);
    }
  } while (n == BATCH);
  if (outcalls) {
    uint64_t out_next = dh__client_expire(host, dh__now_ns());
    if (out_next != 0 && (next == 0 || out_next < next))
      next = out_next;
  }
  if (next != 0 || outcalls) {
    pthread_mutex_lock(&host->calls_mu);
    host->next_expiry_ns = next;
    pthread_mutex_unlock(&host->calls_mu);
  }
  if (next == 0)
    return -1;
  uint64_t now = dh__now_ns();
  return next <= now ? 0 : (int)((next - now + 999999u) / 1000000u);
}

/* ---- the link thread's side ------------------------------------------------------------- */

static void task_call(void *arg) {
  struct dfnet_call *call = arg;
  dfnet_driver_t *drv = call->driver;
  dfnet_method_handler_t handler = NULL;
  bool streaming = false;
  pthread_mutex_lock(&drv->mu);
  for (size_t i = 0; i < drv->method_count; i++) {
    if (strcmp(drv->methods[i].path, call->method) == 0) {
      handler = drv->methods[i].handler;
      streaming = drv->methods[i].server_streaming;
      break;
    }
  }
  bool started = drv->started;
  bool starting = drv->state == DH_DRIVER_STARTING;
  pthread_mutex_unlock(&drv->mu);
  if (handler != NULL && (starting || atomic_load(&drv->suspended))) {
    /* An asynchronous start not completed, or suspended (include/dfnet/driver.h): the
     * manager refuses such calls first; this holds for the agent's and for drivers of this
     * process alike. */
    char msg[700];
    if (starting)
      snprintf(msg, sizeof msg, "the driver on %s is starting", drv->moniker);
    dh__call_end(call, DFNET_STATUS_UNAVAILABLE, starting ? msg : "suspended");
    dh__call_unref(call);
    return;
  }
  if (handler == NULL) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s is not served by driver %s on %s", call->method, drv->name,
             drv->moniker);
    dh__call_end(call, started ? DFNET_STATUS_UNIMPLEMENTED : DFNET_STATUS_UNAVAILABLE, msg);
    dh__call_unref(call);
    return;
  }
  pthread_mutex_lock(&call->mu);
  if (call->ended) {
    pthread_mutex_unlock(&call->mu);
    dh__call_unref(call);
    return;
  }
  call->streaming = streaming;
  if (streaming && call->credit == 0 && !call->credit_seen)
    call->credit = CALL_DEFAULT_CREDIT;
  call->driver_holds = true;
  pthread_mutex_unlock(&call->mu);
  /* The task's reference now belongs to the driver, until dfnet_call_reply(). */
  handler(drv->ctx, call, call->request, call->request_len);
}

/* A new call of drv (not yet in any list), with one allocation for the call, its request
 * and the caller's strings; refs 2 (the table and the handler task). NULL: out of memory. */
static struct dfnet_call *call_new(dfnet_driver_t *drv, uint64_t id, const char *method,
                                   const char *caller, const char *caller_url,
                                   const uint8_t *request, size_t len, uint32_t credit,
                                   uint32_t deadline_ms) {
  size_t caller_len = strlen(caller), url_len = strlen(caller_url);
  struct dfnet_call *call = malloc(sizeof *call + len + caller_len + url_len + 2);
  if (call == NULL)
    return NULL;
  memset(call, 0, sizeof *call);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&call->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&call->mu, NULL);
  call->id = id;
  call->driver = drv;
  atomic_store(&call->refs, 2); /* the table and the handler task */
  call->request = (uint8_t *)call->storage;
  if (len > 0)
    memcpy(call->request, request, len);
  call->request_len = len;
  char *strings = call->storage + len;
  memcpy(strings, caller, caller_len + 1);
  call->caller = strings;
  memcpy(strings + caller_len + 1, caller_url, url_len + 1);
  call->caller_driver_url = strings + caller_len + 1;
  dh__strlcpy(call->method, method, sizeof call->method);
  call->credit = credit;
  if (deadline_ms > 0)
    call->deadline_ns = dh__now_ns() + (uint64_t)deadline_ms * 1000000u;
  return call;
}

/* Link a new call into its driver's list. drv->mu held. */
static void link_to_driver_locked(dfnet_driver_t *drv, struct dfnet_call *call) {
  DL_PREPEND2(drv->calls, call, dprev, dnext);
}

void dh__call_handle(dh_host_t *host, uint64_t id, const dfnet_v1_Call *m, dfnet_bytes_t payload) {
  char msg[700];
  dh_driver_state_t state = DH_DRIVER_STOPPED;
  dfnet_driver_t *drv = dh__driver_find_live(host, m->target, &state);
  if (drv == NULL || state == DH_DRIVER_STOPPING) {
    snprintf(msg, sizeof msg,
             drv == NULL ? "no driver on node %s in this driver host"
                         : "the driver on %s is stopping",
             m->target);
    dh__link_send_reply(host, id, drv == NULL ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_UNAVAILABLE,
                        msg, true, NULL, 0);
    return;
  }
  struct dfnet_call *call = call_new(drv, id, m->method, m->caller, m->caller_driver_url,
                                     payload.data, payload.size, m->credit, m->deadline_ms);
  if (call == NULL) {
    dh__link_send_reply(host, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory", true, NULL, 0);
    return;
  }
  pthread_mutex_lock(&drv->mu);
  link_to_driver_locked(drv, call);
  pthread_mutex_unlock(&drv->mu);
  if (!table_insert(host, call)) {
    DFNET_LOGW(CALL_SUBSYS, drv->moniker, "call id %llu is already in flight: refused",
               (unsigned long long)id);
    dh__link_send_reply(host, id, DFNET_STATUS_INVALID_ARGUMENT,
                        "a call with this id is already in flight", true, NULL, 0);
    pthread_mutex_lock(&call->mu);
    call->ended = true; /* its reply was just sent; never again */
    pthread_mutex_unlock(&call->mu);
    dh__call_unref(call);
    dh__call_unref(call);
    return;
  }
  DFNET_LOGD(CALL_SUBSYS, drv->moniker, "call %llu %s (%zu bytes, deadline %u ms)",
             (unsigned long long)id, call->method, payload.size, m->deadline_ms);
  if (dh__dispatcher_post(&drv->dispatcher, 0, task_call, unref_arg, call, false) !=
      DFNET_STATUS_OK) {
    dh__call_end(call, DFNET_STATUS_UNAVAILABLE, "the driver is stopping");
    dh__call_unref(call);
  }
}

dfnet_status_t dh__call_start_local(dfnet_driver_t *serving, uint64_t id,
                                    const dh_local_call_t *args, struct dh_outcall *sink,
                                    struct dfnet_call **out) {
  *out = NULL;
  struct dfnet_call *call =
      call_new(serving, id, args->method, args->caller, args->caller_driver_url, args->request,
               args->len, args->credit, args->deadline_ms);
  if (call == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  call->local = true;
  call->sink = sink;
  atomic_store(&call->refs, 3); /* the table, the handler task and the caller */
  *out = call;                  /* before the handler can run: the caller's record lets go of it */
  dh_host_t *host = serving->host;
  /* Under the serving driver's mu: it cannot reach STOPPED, and its dispatcher cannot be
   * reaped, before the handler task is queued. */
  pthread_mutex_lock(&serving->mu);
  if (serving->state >= DH_DRIVER_STOPPING) {
    pthread_mutex_unlock(&serving->mu);
    *out = NULL;
    pthread_cond_destroy(&call->cv);
    pthread_mutex_destroy(&call->mu);
    free(call);
    return DFNET_STATUS_UNAVAILABLE;
  }
  link_to_driver_locked(serving, call);
  pthread_mutex_lock(&host->calls_mu);
  dh_call_table_link_locked(&host->calls, call);
  if (call->deadline_ns != 0)
    dh__link_deadline_added_locked(host, call->deadline_ns);
  pthread_mutex_unlock(&host->calls_mu);
  dfnet_status_t st = dh__dispatcher_post_inline(&serving->dispatcher, task_call, unref_arg, call);
  pthread_mutex_unlock(&serving->mu);
  if (st != DFNET_STATUS_OK) {
    dh__call_end(call, DFNET_STATUS_UNAVAILABLE, "the driver is stopping");
    dh__call_unref(call); /* the handler task's */
    return DFNET_STATUS_OK;
  }
  /* The serving dispatcher idle: its handler runs here, now (inline; the post kept it from
   * being joined until this returns), else its thread is woken if it was left asleep. */
  dh__dispatcher_settle(&serving->dispatcher);
  return DFNET_STATUS_OK;
}

void dh__call_detach(struct dfnet_call *call) {
  pthread_mutex_lock(&call->mu);
  call->sink = NULL;
  pthread_mutex_unlock(&call->mu);
}

void dh__call_handle_cancel(dh_host_t *host, uint64_t id) {
  struct dfnet_call *call = table_find_ref(host, id);
  if (call == NULL) {
    DFNET_LOGD(CALL_SUBSYS, NULL, "Cancel for call %llu, which is not in flight",
               (unsigned long long)id);
    return;
  }
  dh__call_end(call, DFNET_STATUS_CANCELLED, "cancelled by the caller");
  dh__call_unref(call);
}

/* Send queued items while there is credit, then a pending final reply. call->mu held.
 * Returns true when the call ended (its final reply went out). */
static bool flush_locked(struct dfnet_call *call) {
  while (call->credit > 0 && call->q_head != NULL) {
    dh_item_t *it = call->q_head;
    LL_DELETE(call->q_head, it);
    if (call->q_head == NULL)
      call->q_tail = NULL;
    call->q_len--;
    call->credit--;
    call_emit(call, DFNET_STATUS_OK, NULL, false, it->data, it->len);
    free(it);
  }
  pthread_cond_broadcast(&call->cv);
  if (call->q_head != NULL || !call->final_pending)
    return false;
  call_emit(call, call->final_status, call->final_message, true, call->final_data, call->final_len);
  drop_final(call);
  call->ended = true;
  call->end_status = DFNET_STATUS_OK;
  return true;
}

void dh__call_handle_credit(dh_host_t *host, uint64_t id, uint32_t credit) {
  struct dfnet_call *call = table_find_ref(host, id);
  if (call == NULL) {
    DFNET_LOGD(CALL_SUBSYS, NULL, "StreamCredit for call %llu, which is not in flight",
               (unsigned long long)id);
    return;
  }
  dh__call_add_credit(call, credit);
  dh__call_unref(call);
}

void dh__call_add_credit(struct dfnet_call *call, uint32_t credit) {
  pthread_mutex_lock(&call->mu);
  bool ended_now = false;
  if (!call->ended) {
    call->credit = credit > UINT32_MAX - call->credit ? UINT32_MAX : call->credit + credit;
    call->credit_seen = true;
    ended_now = flush_locked(call);
  }
  pthread_mutex_unlock(&call->mu);
  if (ended_now)
    table_remove(call);
}

/* ---- the driver's side (include/dfnet/driver.h) -------------------------------------------- */

const char *dfnet_call_method(const dfnet_call_t *call) { return call->method; }
const char *dfnet_call_caller(const dfnet_call_t *call) { return call->caller; }
const char *dfnet_call_caller_driver_url(const dfnet_call_t *call) {
  return call->caller_driver_url;
}
dfnet_driver_t *dfnet_call_driver(const dfnet_call_t *call) { return call->driver; }

static bool may_block(const dfnet_call_t *call) {
  dh_dispatcher_t *cur = dh__dispatcher_current();
  return cur != &call->driver->dispatcher || cur->allow_sync_calls;
}

dfnet_status_t dfnet_call_reply(dfnet_call_t *call, dfnet_status_t status, const char *message,
                                const uint8_t *data, size_t len) {
  dfnet_driver_t *drv = call->driver;
  dfnet_status_t result = DFNET_STATUS_OK;
  bool ended_now = false;
  if ((unsigned)status >= DFNET_STATUS_COUNT)
    status = DFNET_STATUS_UNKNOWN;
  if (len > DFNET_CALL_PAYLOAD_MAX) {
    dfnet_driver_log(drv, DFNET_DRIVER_LOG_ERROR, "reply of %zu bytes to %s is over %u", len,
                     call->method, DFNET_CALL_PAYLOAD_MAX);
    status = DFNET_STATUS_INTERNAL;
    message = "the driver's reply was too large";
    data = NULL;
    len = 0;
    result = DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  pthread_mutex_lock(&call->mu);
  call->replied = true;
  call->driver_holds = false;
  if (call->ended) {
    dfnet_status_t why = call->end_status;
    pthread_mutex_unlock(&call->mu);
    DFNET_LOGD(CALL_SUBSYS, drv->moniker, "late reply to call %llu %s dropped (call ended: %s)",
               (unsigned long long)call->id, call->method, dfnet_status_str(why));
    dh__call_unref(call);
    return why;
  }
  if (call->q_head != NULL) {
    call->final_pending = true;
    call->final_status = status;
    call->final_message = message ? strdup(message) : NULL;
    call->final_len = len;
    call->final_data = len > 0 ? malloc(len) : NULL;
    if (len > 0 && call->final_data != NULL)
      memcpy(call->final_data, data, len);
    if ((message && !call->final_message) || (len > 0 && !call->final_data)) {
      drop_final(call);
      call->final_pending = true;
      call->final_status = DFNET_STATUS_INTERNAL;
      call->final_len = 0;
    }
  } else {
    call_emit(call, status, message, true, data, len);
    call->ended = true;
    call->end_status = DFNET_STATUS_OK;
    ended_now = true;
    pthread_cond_broadcast(&call->cv);
  }
  pthread_mutex_unlock(&call->mu);
  if (ended_now)
    table_remove(call);
  dh__call_unref(call);
  return result;
}

dfnet_status_t dfnet_call_send(dfnet_call_t *call, const uint8_t *data, size_t len) {
  if (len > DFNET_CALL_PAYLOAD_MAX)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  bool blocking = may_block(call);
  dfnet_status_t st;
  pthread_mutex_lock(&call->mu);
  for (;;) {
    if (call->ended) {
      st = call->end_status;
      break;
    }
    if (!call->streaming || call->replied) {
      st = DFNET_STATUS_FAILED_PRECONDITION;
      break;
    }
    if (call->q_head == NULL && call->credit > 0) {
      call->credit--;
      st = call_emit(call, DFNET_STATUS_OK, NULL, false, data, len);
      break;
    }
    if (call->q_len < CALL_QUEUE_MAX) {
      dh_item_t *it = malloc(sizeof *it + len);
      if (it == NULL) {
        st = DFNET_STATUS_RESOURCE_EXHAUSTED;
        break;
      }
      it->len = len;
      if (len > 0)
        memcpy(it->data, data, len);
      LL_APPEND_ELEM(call->q_head, call->q_tail, it); /* after the tail: no walk */
      call->q_tail = it;
      call->q_len++;
      st = DFNET_STATUS_OK;
      break;
    }
    if (!blocking) {
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      break;
    }
    /* the credit comes back for items sent: none of them may wait in a deferred write */
    dh__link_flush_deferred(call->driver->host);
    pthread_cond_wait(&call->cv, &call->mu);
  }
  pthread_mutex_unlock(&call->mu);
  return st;
}

dfnet_status_t dfnet_call_status(const dfnet_call_t *call) {
  dfnet_call_t *c = (dfnet_call_t *)call;
  pthread_mutex_lock(&c->mu);
  dfnet_status_t st = c->ended ? c->end_status : DFNET_STATUS_OK;
  pthread_mutex_unlock(&c->mu);
  return st;
}

dfnet_status_t dfnet_call_wait_cancelled(dfnet_call_t *call, uint32_t timeout_ms) {
  if (!may_block(call)) {
    dfnet_driver_log(call->driver, DFNET_DRIVER_LOG_WARN,
                     "dfnet_call_wait_cancelled on a dispatcher without allow_sync_calls");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t until =
      (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (uint64_t)timeout_ms * 1000000u;
  ts.tv_sec = (time_t)(until / 1000000000u);
  ts.tv_nsec = (long)(until % 1000000000u);
  dh__link_flush_deferred(call->driver->host); /* blocking: send what waits first */
  pthread_mutex_lock(&call->mu);
  int rc = 0;
  while (!call->ended && rc != ETIMEDOUT) {
    if (timeout_ms == UINT32_MAX)
      rc = pthread_cond_wait(&call->cv, &call->mu);
    else
      rc = pthread_cond_timedwait(&call->cv, &call->mu, &ts);
  }
  dfnet_status_t st = call->ended ? call->end_status : DFNET_STATUS_OK;
  pthread_mutex_unlock(&call->mu);
  return st;
}

uint32_t dfnet_call_deadline_left_ms(const dfnet_call_t *call) {
  if (call->deadline_ns == 0)
    return UINT32_MAX;
  uint64_t now = dh__now_ns();
  if (now >= call->deadline_ns)
    return 0;
  uint64_t left = (call->deadline_ns - now) / 1000000u;
  return left >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)left;
}

dfnet_status_t dfnet_call_on_cancel(dfnet_call_t *call, dfnet_call_cancel_fn fn, void *arg) {
  bool post_now = false;
  dfnet_status_t why = DFNET_STATUS_OK;
  pthread_mutex_lock(&call->mu);
  if (call->replied) {
    pthread_mutex_unlock(&call->mu);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  call->cancel_fn = fn;
  call->cancel_arg = arg;
  if (call->ended && !call->cancel_done && fn != NULL) {
    call->cancel_done = true;
    post_now = true;
    why = call->end_status;
  }
  pthread_mutex_unlock(&call->mu);
  if (post_now)
    post_cancel(call, fn, arg, why);
  return DFNET_STATUS_OK;
}
