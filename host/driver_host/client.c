/* Calls a driver makes to another driver (include/dfnet/driver.h "Calling another driver";
 * docs/architecture.md "Calls"; issue 18 "Drivers that talk to drivers").
 *
 * dfnet_driver_connect() finds the offer among those the node received (DriverStart.offered)
 * and, when the node that serves it has its driver in this process, binds the client to that
 * driver (a reference on its record). Each call is then:
 *   local   a dfnet_call of the serving driver (call.c dh__call_start_local) whose replies
 *           come back here through dh__client_deliver: no socket; deadline, credit and
 *           cancellation are the serving call's own, so the serving driver sees a call
 *           like any other but for dfnet_call_caller() / dfnet_call_caller_driver_url();
 *   remote  our Call on the link (target: the offer's source; caller: the calling node's
 *           moniker, which the agent checks against its own records and sets again, with the
 *           driver URL), answered by Replies with our id, or by a Status when the agent ends
 *           it without the serving driver. Our Cancel and StreamCredit follow with that id;
 *           this hop enforces the deadline too (dh__client_expire on the link thread).
 * Either way the end is decided once (dh_outcall.ended) and on_done runs once, on the
 * calling driver's dispatcher, after the call's items: they are posted in order under the
 * record's mu, and nothing is posted once it has ended. A local call made from a
 * dispatcher runs its handler inline when the serving dispatcher is idle (call.c, then
 * dispatcher.c); the replies it gives there queue to the calling dispatcher, on the stack;
 * those a serving task gives later run inline when that task returns, if the calling
 * dispatcher is idle then.
 *
 * The client's status: UNAVAILABLE once its serving driver in this process is stopping (read
 * from that driver's record), or once the agent ended one of its calls with a Status
 * UNAVAILABLE (the serving driver or its driver host is gone). It stays UNAVAILABLE: later
 * calls fail at once; a driver that wants to try again connects again.
 *
 * Stopping. dfnet_driver_client_close() ends what is left of its calls CANCELLED. In `stop`
 * the dispatcher takes no task any more, so close runs those on_done callbacks itself before
 * it returns. Clients a driver left open are closed after `stop` without callbacks (its
 * context is about to be freed); their calls are cancelled at the serving side all the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

#define CLIENT_SUBSYS "driver-host"
#define CLIENT_CALLS_MAX 256u /* calls in flight per client */

/* The final answer of a call, on its way to on_done. */
typedef struct dh_done {
  dh_outcall_t *out;
  dfnet_status_t status;
  const char *message; /* into storage */
  size_t len;
  uint8_t storage[]; /* data, then the message */
} dh_done_t;

/* One streamed item, on its way to on_item (copied: it needs nothing else). */
typedef struct dh_item_task {
  dfnet_driver_t *driver;
  dfnet_driver_client_item_fn fn;
  void *arg;
  uint64_t id;
  size_t len;
  uint8_t data[];
} dh_item_task_t;

/* ---- lifetime ----------------------------------------------------------------------- */

static void client_unref(dfnet_driver_client_t *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  if (c->local != NULL)
    dh__driver_unref(c->local);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void outcall_unref(dh_outcall_t *out) {
  if (atomic_fetch_sub(&out->refs, 1) != 1)
    return;
  if (out->local != NULL) {
    dh__call_detach(out->local); /* the serving call no longer reaches this record */
    dh__call_unref(out->local);
  }
  free(out->pending_done);
  pthread_mutex_destroy(&out->mu);
  client_unref(out->client);
  free(out);
}

/* The call's on_done ran (or never will): it leaves its client. */
static void outcall_finish(dh_outcall_t *out) {
  dfnet_driver_client_t *c = out->client;
  pthread_mutex_lock(&c->mu);
  DL_DELETE2(c->calls, out, cprev, cnext);
  c->call_count--;
  pthread_mutex_unlock(&c->mu);
  outcall_unref(out);
}

/* ---- the id table of remote calls (host->calls_mu) ----------------------------------- */

static void table_insert(dh_host_t *host, dh_outcall_t *out) {
  atomic_fetch_add(&out->refs, 1);
  pthread_mutex_lock(&host->calls_mu);
  dh_outcall_table_link_locked(&host->outcalls, out);
  if (out->deadline_ns != 0)
    dh__link_deadline_added_locked(host, out->deadline_ns);
  pthread_mutex_unlock(&host->calls_mu);
}

static dh_outcall_t *table_find_ref(dh_host_t *host, uint64_t id) {
  return dh_outcall_table_find_ref(&host->outcalls, &host->calls_mu, id);
}

/* Remove from the table (idempotent) and drop the table's reference. */
static void table_remove(dh_host_t *host, dh_outcall_t *out) {
  if (dh_outcall_table_remove(&host->outcalls, &host->calls_mu, out))
    outcall_unref(out);
}

/* ---- to the calling driver's dispatcher ---------------------------------------------- */

static void task_item(void *arg) {
  dh_item_task_t *t = arg;
  t->fn(t->driver, t->driver->ctx, t->id, t->data, t->len, t->arg);
  free(t);
}

static void task_done(void *arg) {
  dh_done_t *d = arg;
  dh_outcall_t *out = d->out;
  dfnet_driver_t *drv = out->client->driver;
  out->on_done(drv, drv->ctx, out->id, d->status, d->message, d->len > 0 ? d->storage : NULL,
               d->len, out->arg);
  free(d);
  outcall_finish(out);
}

static void drop_done(void *arg) {
  dh_done_t *d = arg;
  dh_outcall_t *out = d->out;
  free(d);
  outcall_finish(out);
}

/* Queue the call's on_done; when the dispatcher refuses (it is shut down: the driver is in
 * `stop`), keep it for dfnet_driver_client_close. out->mu held. */
static void post_done_locked(dh_outcall_t *out, dfnet_status_t status, const char *message,
                             const uint8_t *data, size_t len) {
  size_t mlen = message != NULL ? strlen(message) : 0;
  dh_done_t *d = malloc(sizeof *d + len + mlen + 1);
  if (d == NULL) {
    /* the callback cannot be made, and the record stays with its client until close */
    DFNET_LOGE(CLIENT_SUBSYS, out->client->driver->moniker,
               "out of memory: on_done of call %llu lost", (unsigned long long)out->id);
    return;
  }
  d->out = out;
  d->status = status;
  d->len = len;
  if (len > 0)
    memcpy(d->storage, data, len);
  char *msg = (char *)d->storage + len;
  if (mlen > 0)
    memcpy(msg, message, mlen);
  msg[mlen] = '\0';
  d->message = msg;
  dfnet_driver_t *drv = out->client->driver;
  if (dh__dispatcher_post(&drv->dispatcher, 0, task_done, drop_done, d, false) != DFNET_STATUS_OK)
    out->pending_done = d;
}

/* Decide the call's end, once. Returns false when it had already ended. */
static bool end_outcall(dh_outcall_t *out, dfnet_status_t status, const char *message,
                        const uint8_t *data, size_t len) {
  pthread_mutex_lock(&out->mu);
  bool was = out->ended;
  if (!was) {
    out->ended = true;
    post_done_locked(out, status, message, data, len);
  }
  pthread_mutex_unlock(&out->mu);
  return !was;
}

void dh__client_deliver(dh_outcall_t *out, dfnet_status_t code, const char *message, bool eos,
                        const uint8_t *data, size_t len) {
  if ((unsigned)code >= DFNET_STATUS_COUNT)
    code = DFNET_STATUS_UNKNOWN;
  if (eos) {
    end_outcall(out, code, message, data, len);
    return;
  }
  pthread_mutex_lock(&out->mu);
  if (!out->ended && out->on_item != NULL) {
    dfnet_driver_t *drv = out->client->driver;
    dh_item_task_t *t = malloc(sizeof *t + len);
    if (t != NULL) {
      *t = (dh_item_task_t){drv, out->on_item, out->arg, out->id, len};
      if (len > 0)
        memcpy(t->data, data, len);
      if (dh__dispatcher_post(&drv->dispatcher, 0, task_item, free, t, false) != DFNET_STATUS_OK)
        free(t); /* the calling driver is stopping: its items no longer matter */
    } else {
      DFNET_LOGE(CLIENT_SUBSYS, drv->moniker, "out of memory: an item of call %llu lost",
                 (unsigned long long)out->id);
    }
  }
  pthread_mutex_unlock(&out->mu);
}

/* The caller gave up on the call (cancel, deadline, close): tell the serving side. */
static void abandon(dh_outcall_t *out, dfnet_status_t why, const char *reason) {
  if (out->local != NULL) {
    dh__call_end(out->local, why, reason);
    return;
  }
  dh_host_t *host = out->client->driver->host;
  table_remove(host, out);
  if (!atomic_load(&host->link_closed))
    (void)dh__link_send_cancel(host, out->id, reason);
}

/* Run (or, without callbacks or off the dispatcher, drop) an on_done the dispatcher
 * refused. */
static void flush_pending_done(dh_outcall_t *out, bool callbacks) {
  pthread_mutex_lock(&out->mu);
  dh_done_t *d = out->pending_done;
  out->pending_done = NULL;
  pthread_mutex_unlock(&out->mu);
  if (d == NULL)
    return;
  if (callbacks && dfnet_driver_on_dispatcher(out->client->driver))
    task_done(d);
  else
    drop_done(d);
}

/* ---- connecting -------------------------------------------------------------------- */

static const dh_offer_t *find_offer(const dfnet_driver_t *drv, const char *service,
                                    const char *instance) {
  for (size_t i = 0; i < drv->offered_count; i++) {
    const dh_offer_t *o = &drv->offered[i];
    if (strcmp(o->service, service) == 0 && strcmp(o->instance, instance) == 0)
      return o;
  }
  return NULL;
}

static void log_no_offer(dfnet_driver_t *drv, const char *service, const char *instance) {
  char list[1024];
  size_t used = 0;
  list[0] = '\0';
  for (size_t i = 0; i < drv->offered_count && used < sizeof list; i++) {
    int n = snprintf(list + used, sizeof list - used, "%s%s (%s) from %s", i > 0 ? ", " : "",
                     drv->offered[i].service, drv->offered[i].instance, drv->offered[i].source);
    if (n < 0)
      break;
    used += (size_t)n;
  }
  dfnet_driver_log(drv, DFNET_DRIVER_LOG_WARN, "connect: no offer %s (%s); the node has %s",
                   service, instance, drv->offered_count > 0 ? list : "none");
}

dfnet_status_t dfnet_driver_connect(dfnet_driver_t *driver, const char *service,
                                    const char *instance, dfnet_driver_client_t **out) {
  if (out != NULL)
    *out = NULL;
  if (driver == NULL || service == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (instance == NULL)
    instance = "default";
  const dh_offer_t *o = find_offer(driver, service, instance);
  if (o == NULL) {
    log_no_offer(driver, service, instance);
    return DFNET_STATUS_NOT_FOUND;
  }
  dfnet_driver_client_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  pthread_mutex_init(&c->mu, NULL);
  atomic_store(&c->refs, 1);
  atomic_store(&c->unavailable, false);
  c->driver = driver;
  dh__strlcpy(c->service, o->service, sizeof c->service);
  dh__strlcpy(c->instance, o->instance, sizeof c->instance);
  dh__strlcpy(c->source, o->source, sizeof c->source);
  c->local = dh__driver_find_ref(driver->host, o->source);
  pthread_mutex_lock(&driver->mu);
  bool stopping = driver->state >= DH_DRIVER_STOPPING;
  if (!stopping)
    LL_PREPEND(driver->clients, c);
  pthread_mutex_unlock(&driver->mu);
  if (stopping) {
    client_unref(c);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  DFNET_LOGD(CLIENT_SUBSYS, driver->moniker, "connected to %s (%s) of %s, %s", c->service,
             c->instance, c->source,
             c->local != NULL ? "in this driver host" : "through the host agent");
  *out = c;
  return DFNET_STATUS_OK;
}

/* ---- calls ------------------------------------------------------------------------- */

/* The method's full path: "Echo" of the client's service, or a path as given. */
static bool method_path(const dfnet_driver_client_t *c, const char *method, char path[256]) {
  int n = method[0] == '/' ? snprintf(path, 256, "%s", method)
                           : snprintf(path, 256, "/%s/%s", c->service, method);
  return n > 1 && n < 256;
}

static dfnet_status_t start_remote(dfnet_driver_client_t *c, dh_outcall_t *out, const char *path,
                                   const dfnet_driver_client_call_args_t *args) {
  dh_host_t *host = c->driver->host;
  if (atomic_load(&host->link_closed))
    return DFNET_STATUS_UNAVAILABLE;
  if (args->deadline_ms > 0)
    out->deadline_ns = dh__now_ns() + (uint64_t)args->deadline_ms * 1000000u;
  table_insert(host, out); /* before the Call: its reply may come back at once */
  dfnet_v1_Call m = {.deadline_ms = args->deadline_ms, .credit = args->credit};
  dh__strlcpy(m.target, c->source, sizeof m.target);
  dh__strlcpy(m.method, path, sizeof m.method);
  dh__strlcpy(m.caller, c->driver->moniker, sizeof m.caller); /* the agent checks it */
  dfnet_status_t st = dh__link_send_call(host, out->id, &m, args->request, args->len);
  if (st != DFNET_STATUS_OK) {
    table_remove(host, out);
    return st == DFNET_STATUS_RESOURCE_EXHAUSTED ? st : DFNET_STATUS_UNAVAILABLE;
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t start_local(dfnet_driver_client_t *c, dh_outcall_t *out, const char *path,
                                  const dfnet_driver_client_call_args_t *args) {
  dh_local_call_t lc = {.method = path,
                        .request = args->request,
                        .len = args->len,
                        .deadline_ms = args->deadline_ms,
                        .credit = args->credit,
                        .caller = c->driver->moniker,
                        .caller_driver_url = c->driver->url};
  dfnet_status_t st = dh__call_start_local(c->local, out->id, &lc, out, &out->local);
  if (st == DFNET_STATUS_UNAVAILABLE)
    atomic_store(&c->unavailable, true);
  return st;
}

/* Link a new call into its client. Returns OK, FAILED_PRECONDITION (closed) or
 * RESOURCE_EXHAUSTED (too many in flight). */
static dfnet_status_t client_add(dfnet_driver_client_t *c, dh_outcall_t *out) {
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&c->mu);
  if (c->closed)
    st = DFNET_STATUS_FAILED_PRECONDITION;
  else if (c->call_count >= CLIENT_CALLS_MAX)
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  if (st == DFNET_STATUS_OK) {
    DL_PREPEND2(c->calls, out, cprev, cnext);
    c->call_count++;
  }
  pthread_mutex_unlock(&c->mu);
  return st;
}

static dfnet_status_t check_call(dfnet_driver_client_t *c,
                                 const dfnet_driver_client_call_args_t *args, char path[256]) {
  if (c == NULL || args == NULL || args->method == NULL || args->on_done == NULL ||
      args->len > DFNET_CALL_PAYLOAD_MAX || (args->len > 0 && args->request == NULL) ||
      !method_path(c, args->method, path))
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->driver->mu);
  bool stopping = c->driver->state >= DH_DRIVER_STOPPING;
  pthread_mutex_unlock(&c->driver->mu);
  if (stopping)
    return DFNET_STATUS_FAILED_PRECONDITION;
  return dfnet_driver_client_status(c);
}

dfnet_status_t dfnet_driver_client_call(dfnet_driver_client_t *client,
                                        const dfnet_driver_client_call_args_t *args,
                                        dfnet_driver_call_id_t *id) {
  char path[256];
  if (id != NULL)
    *id = 0;
  dfnet_status_t st = check_call(client, args, path);
  if (st != DFNET_STATUS_OK)
    return st;
  dh_outcall_t *out = calloc(1, sizeof *out);
  if (out == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  pthread_mutex_init(&out->mu, NULL);
  atomic_store(&out->refs, 1); /* its life: until finished */
  out->id = atomic_fetch_add(&client->driver->host->next_id, 1);
  out->client = client;
  atomic_fetch_add(&client->refs, 1);
  out->streaming = args->on_item != NULL;
  out->on_item = args->on_item;
  out->on_done = args->on_done;
  out->arg = args->arg;
  st = client_add(client, out);
  if (st != DFNET_STATUS_OK) {
    outcall_unref(out);
    return st;
  }
  uint64_t call_id = out->id; /* out may be finished by the time this returns */
  st = client->local != NULL ? start_local(client, out, path, args)
                             : start_remote(client, out, path, args);
  if (st != DFNET_STATUS_OK) {
    out->ended = true; /* nothing was started: no callback */
    outcall_finish(out);
    return st;
  }
  DFNET_LOGD(CLIENT_SUBSYS, client->driver->moniker, "call %llu %s to %s (%s)",
             (unsigned long long)call_id, path, client->source,
             client->local != NULL ? "in process" : "on the link");
  if (id != NULL)
    *id = call_id;
  return DFNET_STATUS_OK;
}

/* The client's call `id`, with a reference, or NULL. */
static dh_outcall_t *client_find_ref(dfnet_driver_client_t *c, dfnet_driver_call_id_t id) {
  dh_outcall_t *found;
  pthread_mutex_lock(&c->mu);
  DL_SEARCH_SCALAR2(c->calls, found, id, id, cnext);
  if (found != NULL)
    atomic_fetch_add(&found->refs, 1);
  pthread_mutex_unlock(&c->mu);
  return found;
}

dfnet_status_t dfnet_driver_client_credit(dfnet_driver_client_t *client, dfnet_driver_call_id_t id,
                                          uint32_t credit) {
  dh_outcall_t *out = client != NULL ? client_find_ref(client, id) : NULL;
  if (out == NULL)
    return DFNET_STATUS_NOT_FOUND;
  pthread_mutex_lock(&out->mu);
  bool ended = out->ended;
  pthread_mutex_unlock(&out->mu);
  if (!ended && credit > 0) {
    if (out->local != NULL)
      dh__call_add_credit(out->local, credit);
    else
      (void)dh__link_send_credit(client->driver->host, out->id, credit);
  }
  outcall_unref(out);
  return ended ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_OK;
}

dfnet_status_t dfnet_driver_client_cancel(dfnet_driver_client_t *client,
                                          dfnet_driver_call_id_t id) {
  dh_outcall_t *out = client != NULL ? client_find_ref(client, id) : NULL;
  if (out == NULL)
    return DFNET_STATUS_NOT_FOUND;
  bool now = end_outcall(out, DFNET_STATUS_CANCELLED, "cancelled by the calling driver", NULL, 0);
  if (now)
    abandon(out, DFNET_STATUS_CANCELLED, "cancelled by the calling driver");
  outcall_unref(out);
  return now ? DFNET_STATUS_OK : DFNET_STATUS_NOT_FOUND;
}

dfnet_status_t dfnet_driver_client_status(const dfnet_driver_client_t *client) {
  dfnet_driver_client_t *c = (dfnet_driver_client_t *)client; /* a cache of what it learns */
  if (c == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (atomic_load(&c->unavailable))
    return DFNET_STATUS_UNAVAILABLE;
  if (c->local != NULL) {
    pthread_mutex_lock(&c->local->mu);
    bool gone = c->local->state >= DH_DRIVER_STOPPING;
    pthread_mutex_unlock(&c->local->mu);
    if (gone) {
      atomic_store(&c->unavailable, true);
      return DFNET_STATUS_UNAVAILABLE;
    }
  }
  return DFNET_STATUS_OK;
}

/* Close: end every call CANCELLED, tell the serving side, drop the handle. */
static void client_close(dfnet_driver_client_t *c, bool callbacks) {
  pthread_mutex_lock(&c->mu);
  if (c->closed) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  c->closed = true;
  size_t n = 0, count = c->call_count;
  dh_outcall_t **all = count > 0 ? malloc(count * sizeof *all) : NULL;
  dh_outcall_t *o;
  if (all != NULL) {
    DL_FOREACH2(c->calls, o, cnext) {
      atomic_fetch_add(&o->refs, 1);
      all[n++] = o;
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (count > 0 && all == NULL)
    DFNET_LOGE(CLIENT_SUBSYS, c->driver->moniker, "out of memory closing a client");
  dfnet_driver_t *drv = c->driver;
  pthread_mutex_lock(&drv->mu);
  /* LL_DELETE needs a list; c is off it already when dh__client_release_driver took it */
  if (drv->clients != NULL)
    LL_DELETE(drv->clients, c);
  pthread_mutex_unlock(&drv->mu);
  for (size_t i = 0; i < n; i++) {
    if (end_outcall(all[i], DFNET_STATUS_CANCELLED, "the client was closed", NULL, 0))
      abandon(all[i], DFNET_STATUS_CANCELLED, "the calling driver closed its client");
    flush_pending_done(all[i], callbacks);
    outcall_unref(all[i]);
  }
  free(all);
  client_unref(c);
}

void dfnet_driver_client_close(dfnet_driver_client_t *client) {
  if (client != NULL)
    client_close(client, true);
}

void dh__client_release_driver(dfnet_driver_t *drv) {
  for (;;) {
    pthread_mutex_lock(&drv->mu);
    dfnet_driver_client_t *c = drv->clients;
    if (c != NULL) {
      LL_DELETE(drv->clients, c);
      atomic_fetch_add(&c->refs, 1);
    }
    pthread_mutex_unlock(&drv->mu);
    if (c == NULL)
      return;
    DFNET_LOGD(CLIENT_SUBSYS, drv->moniker, "a client of %s (%s) left open: closed after stop",
               c->service, c->source);
    client_close(c, false);
    client_unref(c);
  }
}

/* ---- the link thread's side -------------------------------------------------------- */

static bool our_id(uint64_t id) { return (id & DH_OWN_ID_BIT) != 0; }

bool dh__client_handle_reply(dh_host_t *host, uint64_t id, const dfnet_v1_Reply *reply,
                             dfnet_bytes_t payload) {
  if (!our_id(id))
    return false;
  dh_outcall_t *out = table_find_ref(host, id);
  if (out == NULL) {
    DFNET_LOGD(CLIENT_SUBSYS, NULL, "Reply for call %llu, which has ended: dropped",
               (unsigned long long)id);
    return true;
  }
  dh__client_deliver(out, (dfnet_status_t)reply->code, reply->message, reply->end_of_stream,
                     payload.data, payload.size);
  if (reply->end_of_stream)
    table_remove(host, out);
  outcall_unref(out);
  return true;
}

bool dh__client_handle_status(dh_host_t *host, uint64_t id, dfnet_status_t code,
                              const char *message) {
  dh_outcall_t *out = our_id(id) ? table_find_ref(host, id) : NULL;
  if (out == NULL)
    return false;
  if (code == DFNET_STATUS_UNAVAILABLE && !atomic_exchange(&out->client->unavailable, true))
    DFNET_LOGI(CLIENT_SUBSYS, out->client->driver->moniker, "%s (%s) of %s is gone: %s",
               out->client->service, out->client->instance, out->client->source, message);
  dh__client_deliver(out, code, message, true, NULL, 0);
  table_remove(host, out);
  outcall_unref(out);
  return true;
}

/* Take a reference on every remote call that `pick` selects (calls_mu held by the walk). */
typedef bool (*pick_fn)(const dh_outcall_t *o, uint64_t now, uint64_t *next);

static size_t collect(dh_host_t *host, pick_fn pick, uint64_t now, uint64_t *next,
                      dh_outcall_t **got, size_t cap) {
  size_t n = 0;
  pthread_mutex_lock(&host->calls_mu);
  for (unsigned b = 0; host->outcalls.live > 0 && b < DH_ID_TABLE_BUCKETS; b++) {
    dh_outcall_t *o;
    LL_FOREACH2(host->outcalls.buckets[b], o, hnext) {
      if (n < cap && pick(o, now, next)) {
        atomic_fetch_add(&o->refs, 1);
        got[n++] = o;
      }
    }
  }
  pthread_mutex_unlock(&host->calls_mu);
  return n;
}

static bool pick_expired(const dh_outcall_t *o, uint64_t now, uint64_t *next) {
  if (o->deadline_ns == 0)
    return false;
  if (o->deadline_ns <= now)
    return true;
  if (*next == 0 || o->deadline_ns < *next)
    *next = o->deadline_ns;
  return false;
}

static bool pick_all(const dh_outcall_t *o, uint64_t now, uint64_t *next) {
  (void)o;
  (void)now;
  (void)next;
  return true;
}

uint64_t dh__client_expire(dh_host_t *host, uint64_t now) {
  enum { BATCH = 64 };
  dh_outcall_t *got[BATCH];
  uint64_t next;
  size_t n;
  do {
    next = 0;
    n = collect(host, pick_expired, now, &next, got, BATCH);
    for (size_t i = 0; i < n; i++) {
      if (end_outcall(got[i], DFNET_STATUS_DEADLINE_EXCEEDED,
                      "deadline exceeded at the calling driver host", NULL, 0))
        abandon(got[i], DFNET_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
      table_remove(host, got[i]);
      outcall_unref(got[i]);
    }
  } while (n == BATCH);
  return next;
}

void dh__client_link_down(dh_host_t *host) {
  enum { BATCH = 64 };
  dh_outcall_t *got[BATCH];
  size_t n;
  do {
    uint64_t next = 0;
    n = collect(host, pick_all, 0, &next, got, BATCH);
    for (size_t i = 0; i < n; i++) {
      end_outcall(got[i], DFNET_STATUS_UNAVAILABLE, "the link to the host agent is gone", NULL, 0);
      table_remove(host, got[i]);
      outcall_unref(got[i]);
    }
  } while (n == BATCH);
}
