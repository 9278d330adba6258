/* Drivers in a driver host: loading (dlopen + API version check) and the lifecycle
 * (start; prepare_stop -> dispatcher drained and shut down -> stop -> context freed)
 * (docs/spec/dfv2.md "Driver hosts and lifecycle"). The driver-facing functions of
 * include/dfnet/driver.h about the node, resources, the dispatcher, services and logging are
 * driver_api.c's.
 *
 * The hooks are called only through the wrappers below (docs/style.md 5): hook_start,
 * hook_prepare_stop, hook_stop, and dh__driver_hook_suspend / dh__driver_hook_resume (which
 * lifecycle.c runs); optional hooks that are NULL do nothing there, and suspend / resume
 * are read from a version-2 ops table only (a version-1 table ends before them).
 *
 * The start's answer. A start is decided once (dfnet_driver.start_done, lifecycle.c): by
 * `start` returning (an error, or OK without dfnet_driver_start_async), by
 * dfnet_driver_start_complete, by the start timeout, or by a stop before an asynchronous
 * start completed (CANCELLED). A start that fails once `start` has returned OK is answered
 * when the driver has stopped (a stop waiter with the start's id), so that the agent never
 * sees a node free while its driver still runs.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "host/driver_host/sandbox.h"
#include "lib/log.h"
#include "lib/property.h"

#define DRV_SUBSYS "driver-host"
#define DRV_CTX_MAX (64u * 1024u * 1024u)

/* ---- the one place the ops table is called ----------------------------------------- */

static dfnet_status_t hook_start(dfnet_driver_t *drv) { return drv->ops->start(drv, drv->ctx); }

static void hook_prepare_stop(dfnet_driver_t *drv) {
  if (drv->ops->prepare_stop != NULL)
    drv->ops->prepare_stop(drv, drv->ctx);
}

static void hook_stop(dfnet_driver_t *drv) {
  if (drv->ops->stop != NULL)
    drv->ops->stop(drv, drv->ctx);
}

dfnet_status_t dh__driver_hook_suspend(dfnet_driver_t *drv, uint32_t flags) {
  if (drv->api_version < 2 || drv->ops->suspend == NULL)
    return DFNET_STATUS_OK;
  dfnet_status_t st = drv->ops->suspend(drv, drv->ctx, flags);
  return (unsigned)st < DFNET_STATUS_COUNT ? st : DFNET_STATUS_UNKNOWN;
}

dfnet_status_t dh__driver_hook_resume(dfnet_driver_t *drv) {
  if (drv->api_version < 2 || drv->ops->resume == NULL)
    return DFNET_STATUS_OK;
  dfnet_status_t st = drv->ops->resume(drv, drv->ctx);
  return (unsigned)st < DFNET_STATUS_COUNT ? st : DFNET_STATUS_UNKNOWN;
}

static bool api_version_ok(uint32_t v) {
  return v >= DFNET_DRIVER_API_VERSION_MIN && v <= DFNET_DRIVER_API_VERSION;
}

/* ---- loading ----------------------------------------------------------------------- */

/* dlopen the driver binary `path` (opened as `open_path`: sandbox.h
 * dh__sandbox_driver_path) and check its registration (API versions
 * DFNET_DRIVER_API_VERSION_MIN .. DFNET_DRIVER_API_VERSION; *out_version gets the ops
 * table's). On error, *msg holds the reason. */
static dfnet_status_t load_so(const char *path, const char *open_path, const char *url,
                              void **out_dl, const dfnet_driver_ops_t **out_ops,
                              uint32_t *out_version, char *msg, size_t cap) {
  struct stat sb;
  if (stat(open_path, &sb) != 0) {
    snprintf(msg, cap, "driver binary %s: %s", path, strerror(errno));
    return errno == ENOENT ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_INVALID_ARGUMENT;
  }
  dlerror();
  void *dl = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    const char *e = dlerror();
    snprintf(msg, cap, "cannot load driver %s: %s", path, e ? e : "dlopen failed");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dlerror();
  const dfnet_driver_registration_t *reg = dlsym(dl, DFNET_DRIVER_SYMBOL);
  if (reg == NULL) {
    const char *e = dlerror();
    snprintf(msg, cap, "driver %s exports no %s (built without DFNET_DRIVER_EXPORT?): %s", path,
             DFNET_DRIVER_SYMBOL, e ? e : "symbol is NULL");
    goto refused;
  }
  const char *who = url[0] != '\0' ? url : path;
  if (!api_version_ok(reg->api_version) ||
      (reg->ops != NULL && !api_version_ok(reg->ops->api_version))) {
    uint32_t v = !api_version_ok(reg->api_version) ? reg->api_version : reg->ops->api_version;
    snprintf(msg, cap,
             "driver %s built against driver API %u, this driver host speaks %u (it runs "
             "drivers of versions %u..%u)",
             who, v, DFNET_DRIVER_API_VERSION, DFNET_DRIVER_API_VERSION_MIN,
             DFNET_DRIVER_API_VERSION);
    dlclose(dl);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (reg->ops == NULL || reg->ops->start == NULL) {
    snprintf(msg, cap, "driver %s has no %s", who, reg->ops == NULL ? "ops table" : "start hook");
    goto invalid;
  }
  if (reg->ops->ctx_size > DRV_CTX_MAX) {
    snprintf(msg, cap, "driver %s asks for a context of %zu bytes (at most %u)", who,
             reg->ops->ctx_size, DRV_CTX_MAX);
    goto invalid;
  }
  *out_dl = dl;
  *out_ops = reg->ops;
  *out_version = reg->ops->api_version;
  return DFNET_STATUS_OK;

refused:
  dlclose(dl);
  return DFNET_STATUS_NOT_FOUND;
invalid:
  dlclose(dl);
  return DFNET_STATUS_INVALID_ARGUMENT;
}

/* Fill drv's node data from the DriverStart. Returns false when out of memory. */
static bool copy_node(dfnet_driver_t *drv, const dfnet_v1_DriverStart *m,
                      dfnet_bytes_t program_json) {
  dh__strlcpy(drv->moniker, m->node, sizeof drv->moniker);
  const char *dot = strrchr(drv->moniker, '.');
  drv->node_name = dot != NULL ? dot + 1 : drv->moniker;
  dh__strlcpy(drv->url, m->url, sizeof drv->url);
  size_t jlen = program_json.size;
  drv->program_json = malloc(jlen > 0 ? jlen + 1 : 3);
  drv->prop_count = m->properties_count;
  drv->pb_props = calloc(drv->prop_count + 1, sizeof *drv->pb_props);
  drv->props = calloc(drv->prop_count + 1, sizeof *drv->props);
  drv->offer_count = m->offers_count;
  drv->offer_store = calloc(drv->offer_count + 1, sizeof *drv->offer_store);
  drv->offers = calloc(drv->offer_count + 1, sizeof *drv->offers);
  drv->offered_count = m->offered_count;
  drv->offered = calloc(drv->offered_count + 1, sizeof *drv->offered);
  if (!drv->program_json || !drv->pb_props || !drv->props || !drv->offer_store || !drv->offers ||
      !drv->offered)
    return false;
  if (jlen > 0) {
    memcpy(drv->program_json, program_json.data, jlen);
    drv->program_json[jlen] = '\0';
  } else {
    memcpy(drv->program_json, "{}", 3);
  }
  for (size_t i = 0; i < drv->prop_count; i++) {
    dfnet_v1_NodeProperty *pb = &drv->pb_props[i];
    dfnet_node_property_t *p = &drv->props[i];
    *pb = m->properties[i];
    dfnet_bind_property_t b;
    dfnet_property_from_wire(pb, &b); /* strings borrowed from pb_props */
    dfnet_property_to_driver(&b, p);
  }
  for (size_t i = 0; i < drv->offer_count; i++) {
    dh__strlcpy(drv->offer_store[i], m->offers[i], sizeof drv->offer_store[i]);
    drv->offers[i] = drv->offer_store[i];
  }
  for (size_t i = 0; i < drv->offered_count; i++) {
    dh_offer_t *o = &drv->offered[i];
    const dfnet_v1_Offer *w = &m->offered[i];
    dh__strlcpy(o->service, w->service, sizeof o->service);
    /* no instance: the parent's own offer, DFv2's "default" */
    dh__strlcpy(o->instance, w->instance[0] != '\0' ? w->instance : "default", sizeof o->instance);
    dh__strlcpy(o->source, w->source, sizeof o->source);
    o->view = (dfnet_offer_t){o->service, o->instance, o->source};
  }
  return true;
}

/* Close the descriptors of the driver's resources (once `stop` has returned, or when its
 * start is refused); the names stay for the logs. */
static void close_resources(dfnet_driver_t *drv) {
  for (size_t i = 0; i < drv->resource_count; i++) {
    if (drv->resources[i].fd >= 0)
      close(drv->resources[i].fd);
    drv->resources[i].fd = -1;
  }
}

/* Why a DriverStart with fewer descriptors than it names resources is refused, in msg. */
static void missing_resources(const dfnet_v1_DriverStart *m, size_t nfds, char *msg, size_t cap) {
  int n = snprintf(msg, cap,
                   "DriverStart for %s names %u resources but %zu descriptors came with it "
                   "(SCM_RIGHTS on the link); missing:",
                   m->node, (unsigned)m->resources_count, nfds);
  for (size_t i = nfds; i < m->resources_count && n > 0 && (size_t)n < cap; i++)
    n += snprintf(msg + n, cap - (size_t)n, " %s", m->resources[i]);
}

/* The driver's resources: the names m->resources gives and the descriptors fds[0 .. nfds)
 * (taken; nfds >= m->resources_count: the extra ones are closed). Returns false when out
 * of memory (every descriptor is closed then). */
static bool take_resources(dfnet_driver_t *drv, const dfnet_v1_DriverStart *m, int *fds,
                           size_t nfds) {
  size_t want = m->resources_count;
  bool ok = want == 0 || (drv->resources = calloc(want, sizeof *drv->resources)) != NULL;
  for (size_t i = 0; i < nfds; i++) {
    if (ok && i < want) {
      dh__strlcpy(drv->resources[i].name, m->resources[i], sizeof drv->resources[i].name);
      drv->resources[i].fd = fds[i];
    } else {
      close(fds[i]);
    }
  }
  if (ok)
    drv->resource_count = want;
  free(fds);
  return ok;
}

static void free_driver(dfnet_driver_t *drv) {
  dh_child_t *c, *ctmp;
  LL_FOREACH_SAFE(drv->children, c, ctmp) {
    LL_DELETE(drv->children, c);
    free(c);
  }
  dh_waiter_t *w, *wtmp;
  LL_FOREACH_SAFE(drv->stop_waiters, w, wtmp) {
    LL_DELETE(drv->stop_waiters, w);
    free(w);
  }
  free(drv->methods);
  free(drv->program_json);
  free(drv->pb_props);
  free(drv->props);
  free(drv->offer_store);
  free(drv->offers);
  free(drv->offered);
  close_resources(drv);
  free(drv->resources);
  free(drv->ctx);
  pthread_mutex_destroy(&drv->mu);
  free(drv);
}

/* ---- lifecycle tasks (dispatcher thread) ------------------------------------------- */

static void task_final(void *arg);

/* `start` returned an error: no other hook runs; the DriverStart is answered once the
 * driver has stopped (a stop waiter, answered by task_final), so that a DriverStart for the
 * same node right after the answer does not find it still stopping (ALREADY_EXISTS). When
 * the start timed out meanwhile, that answer already waits for task_final. */
static void start_returned_error(dfnet_driver_t *drv, dfnet_status_t st) {
  /* The reason is what the driver said last while starting (spec: the node keeps why it is
   * unbound), e.g. "0000:00:03.0 is bound to virtio_net, not virtio_rng". */
  char msg[1024];
  snprintf(msg, sizeof msg, "driver %s failed to start on %s: %s%s%s", drv->name, drv->moniker,
           dfnet_status_str(st), drv->start_error[0] ? ": " : "", drv->start_error);
  DFNET_LOGW(DRV_SUBSYS, drv->moniker, "%s", msg);
  dh_waiter_t *w = dh__driver_waiter_new(drv->start_id, st, msg);
  pthread_mutex_lock(&drv->mu);
  bool decided = dh__driver_start_decide_deferred_locked(drv, st, w);
  drv->state = DH_DRIVER_STOPPING;
  pthread_mutex_unlock(&drv->mu);
  if (!decided)
    free(w);
  dh__call_end_all(drv, DFNET_STATUS_UNAVAILABLE, "driver failed to start");
  if (decided && w == NULL) /* no memory for the waiter: answered now rather than never */
    dh__link_send_status(drv->host, drv->start_id, st, msg);
  dh__dispatcher_post(&drv->dispatcher, 0, task_final, NULL, drv, true);
}

static void task_start(void *arg) {
  dfnet_driver_t *drv = arg;
  drv->start_error[0] = '\0';
  drv->in_start = true;
  dfnet_status_t st = hook_start(drv);
  drv->in_start = false;
  if (st != DFNET_STATUS_OK) {
    start_returned_error(drv, (unsigned)st < DFNET_STATUS_COUNT ? st : DFNET_STATUS_UNKNOWN);
    return;
  }
  pthread_mutex_lock(&drv->mu);
  drv->started = true;
  bool async = drv->start_async;
  bool decided = !async && dh__driver_start_decide_locked(drv, DFNET_STATUS_OK);
  bool stopping = drv->state >= DH_DRIVER_STOPPING;
  pthread_mutex_unlock(&drv->mu);
  if (decided) {
    DFNET_LOGI(DRV_SUBSYS, drv->moniker, "driver %s started", drv->name);
    dh__link_send_status(drv->host, drv->start_id, DFNET_STATUS_OK, NULL);
  } else if (async && stopping) {
    /* stopped while `start` ran: its DriverStart is answered once it has stopped */
    (void)dh__driver_start_fail(drv, DFNET_STATUS_CANCELLED,
                                "the driver was stopped before its start completed");
  } else if (async) {
    DFNET_LOGD(DRV_SUBSYS, drv->moniker, "driver %s starts asynchronously (%u ms at most)",
               drv->name, drv->start_timeout_ms);
  }
}

static void task_prepare_stop(void *arg) {
  dfnet_driver_t *drv = arg;
  if (drv->started)
    hook_prepare_stop(drv);
  /* Queued behind everything already posted: the dispatcher is drained, then stop. */
  dh__dispatcher_post(&drv->dispatcher, 0, task_final, NULL, drv, true);
}

static void remove_pending_children(dfnet_driver_t *drv) {
  dh_host_t *host = drv->host;
  dh_pending_child_t *gone = NULL, *p, *tmp;
  pthread_mutex_lock(&host->calls_mu);
  DL_FOREACH_SAFE(host->pending_children, p, tmp) {
    if (p->driver == drv) {
      DL_DELETE(host->pending_children, p);
      DL_PREPEND(gone, p);
    }
  }
  pthread_mutex_unlock(&host->calls_mu);
  DL_FOREACH_SAFE(gone, p, tmp) {
    free(p);
  }
}

static void task_final(void *arg) {
  dfnet_driver_t *drv = arg;
  if (drv->started)
    hook_stop(drv);
  dh__client_release_driver(drv); /* what `stop` left open; its context goes next */
  dh__call_end_all(drv, DFNET_STATUS_UNAVAILABLE, "driver stopped");
  dh__call_release_driver_refs(drv);
  free(drv->ctx);
  drv->ctx = NULL;
  /* before the stop is answered: a block device held O_EXCL is free for the next driver */
  close_resources(drv);
  remove_pending_children(drv);
  pthread_mutex_lock(&drv->mu);
  drv->state = DH_DRIVER_STOPPED;
  dh_waiter_t *waiters = drv->stop_waiters;
  drv->stop_waiters = NULL;
  pthread_mutex_unlock(&drv->mu);
  if (drv->started)
    DFNET_LOGI(DRV_SUBSYS, drv->moniker, "driver %s stopped", drv->name);
  dh_waiter_t *w, *tmp;
  LL_FOREACH_SAFE(waiters, w, tmp) {
    dh__link_send_status(drv->host, w->id, w->code, w->message[0] != '\0' ? w->message : NULL);
    free(w);
  }
  dh__dispatcher_exit(&drv->dispatcher);
  dh__host_queue_reap(drv->host, drv);
}

/* ---- link-thread side ---------------------------------------------------------------- */

/* Check DriverStart m before its driver is loaded (resources come, node and binary given,
 * the node free, sandboxed: admitted, sandbox.h), and load it: *dl, *ops, *api_version.
 * Returns OK, or the refusal's status with its reason in msg[cap]. */
static dfnet_status_t admit_and_load(dh_host_t *host, const dfnet_v1_DriverStart *m,
                                     dfnet_bytes_t program_json, const int *fds, size_t nfds,
                                     void **dl, const dfnet_driver_ops_t **ops,
                                     uint32_t *api_version, char *msg, size_t cap) {
  if (nfds < m->resources_count) {
    missing_resources(m, nfds, msg, cap);
    return DFNET_STATUS_INTERNAL;
  }
  if (m->node[0] == '\0' || m->binary[0] == '\0') {
    snprintf(msg, cap, "DriverStart needs a node and a binary");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (dh__driver_find_live(host, m->node, NULL) != NULL) {
    snprintf(msg, cap, "node %s already has a driver in this driver host", m->node);
    return DFNET_STATUS_ALREADY_EXISTS;
  }
  /* sandboxed: confined at the first start, before any driver is loaded (sandbox.h) */
  dfnet_status_t st = DFNET_STATUS_OK;
  if (host->sandbox != NULL)
    st = dh__sandbox_admit(host, m, program_json, fds, nfds, msg, cap);
  if (st != DFNET_STATUS_OK)
    return st;
  char path[400];
  if (m->local_path[0] != '\0' && m->binary[0] != '/')
    snprintf(path, sizeof path, "%s/%s", m->local_path, m->binary);
  else
    snprintf(path, sizeof path, "%s", m->binary);
  char open_path[sizeof path + 32];
  dh__sandbox_driver_path(host->sandbox, path, open_path, sizeof open_path);
  st = load_so(path, open_path, m->url, dl, ops, api_version, msg, cap);
  if (st == DFNET_STATUS_OK)
    DFNET_LOGD(DRV_SUBSYS, m->node, "loaded %s", path);
  return st;
}

void dh__driver_handle_start(dh_host_t *host, uint64_t id, const dfnet_v1_DriverStart *m,
                             dfnet_bytes_t program_json, int *fds, size_t nfds) {
  char msg[700];
  void *dl = NULL;
  const dfnet_driver_ops_t *ops = NULL;
  dfnet_driver_t *drv = NULL;
  uint32_t api_version = 0;
  dfnet_status_t st =
      admit_and_load(host, m, program_json, fds, nfds, &dl, &ops, &api_version, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    goto refused;

  drv = calloc(1, sizeof *drv);
  if (drv == NULL)
    goto out_of_memory;
  pthread_mutex_init(&drv->mu, NULL);
  atomic_store(&drv->refs, 1); /* the driver table's */
  drv->host = host;
  drv->dl = dl;
  drv->ops = ops;
  drv->name = ops->name != NULL ? ops->name : "driver";
  drv->api_version = api_version;
  drv->start_id = id;
  drv->start_timeout_ms =
      m->start_timeout_ms != 0 ? m->start_timeout_ms : DH_START_TIMEOUT_DEFAULT_MS;
  drv->start_deadline_ns = dh__now_ns() + (uint64_t)drv->start_timeout_ms * 1000000u;
  atomic_store(&drv->suspended, false);
  drv->state = DH_DRIVER_STARTING;
  if (ops->ctx_size > 0 && (drv->ctx = calloc(1, ops->ctx_size)) == NULL)
    goto out_of_memory;
  bool taken = take_resources(drv, m, fds, nfds);
  fds = NULL;
  nfds = 0;
  if (!taken || !copy_node(drv, m, program_json))
    goto out_of_memory;
  bool allow_sync = false;
  for (pb_size_t i = 0; i < m->dispatcher_opts_count; i++) {
    if (strcmp(m->dispatcher_opts[i], "allow_sync_calls") == 0)
      allow_sync = true;
    else
      DFNET_LOGW(DRV_SUBSYS, drv->moniker, "unknown default_dispatcher_opts entry \"%s\" ignored",
                 m->dispatcher_opts[i]);
  }
  st = dh__dispatcher_start(&drv->dispatcher, allow_sync, drv->moniker, dh__link_flush_deferred,
                            host);
  if (st != DFNET_STATUS_OK) {
    snprintf(msg, sizeof msg, "cannot create the dispatcher of %s", drv->moniker);
    goto dispatcher_failed;
  }
  pthread_mutex_lock(&host->drivers_mu);
  LL_PREPEND(host->drivers, drv);
  pthread_mutex_unlock(&host->drivers_mu);
  atomic_fetch_add(&host->starts_pending, 1); /* until dh__driver_start_decide_locked */
  DFNET_LOGD(DRV_SUBSYS, drv->moniker, "driver %s%s", drv->name,
             allow_sync ? " with allow_sync_calls" : "");
  /* The dispatcher was just created: this post cannot fail but for memory. */
  if (dh__dispatcher_post(&drv->dispatcher, 0, task_start, NULL, drv, false) != DFNET_STATUS_OK) {
    pthread_mutex_lock(&drv->mu);
    (void)dh__driver_start_decide_locked(drv, DFNET_STATUS_RESOURCE_EXHAUSTED);
    drv->state = DH_DRIVER_STOPPING;
    pthread_mutex_unlock(&drv->mu);
    dh__link_send_status(host, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    dh__dispatcher_post(&drv->dispatcher, 0, task_final, NULL, drv, true);
  }
  return;

out_of_memory:
  st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  snprintf(msg, sizeof msg, "out of memory loading the driver of %s", m->node);
dispatcher_failed:
  if (drv != NULL) {
    drv->dl = NULL;
    free_driver(drv);
  }
  dlclose(dl);
refused:
  for (size_t i = 0; i < nfds; i++) /* not the driver's: it was never made */
    close(fds[i]);
  free(fds);
  DFNET_LOGW(DRV_SUBSYS, m->node, "DriverStart refused: %s: %s", dfnet_status_str(st), msg);
  dh__link_send_status(host, id, st, msg);
}

void dh__driver_begin_stop(dfnet_driver_t *drv, uint64_t reply_id) {
  dh_waiter_t *w = reply_id != 0 ? dh__driver_waiter_new(reply_id, DFNET_STATUS_OK, NULL) : NULL;
  /* An asynchronous start not completed yet ends CANCELLED, answered once stopped. */
  dh_waiter_t *start_w = dh__driver_waiter_new(drv->start_id, DFNET_STATUS_CANCELLED,
                                               "the driver was stopped before its start completed");
  pthread_mutex_lock(&drv->mu);
  dh_driver_state_t was = drv->state;
  if (was == DH_DRIVER_STOPPED) {
    pthread_mutex_unlock(&drv->mu);
    free(w);
    free(start_w);
    if (reply_id != 0)
      dh__link_send_status(drv->host, reply_id, DFNET_STATUS_OK, "already stopped");
    return;
  }
  if (w != NULL)
    LL_PREPEND(drv->stop_waiters, w);
  bool cancelled = drv->started && drv->start_async &&
                   dh__driver_start_decide_deferred_locked(drv, DFNET_STATUS_CANCELLED, start_w);
  drv->state = DH_DRIVER_STOPPING;
  pthread_mutex_unlock(&drv->mu);
  if (!cancelled)
    free(start_w);
  if (cancelled && start_w == NULL) /* no memory for the waiter: answered now rather than never */
    dh__link_send_status(drv->host, drv->start_id, DFNET_STATUS_CANCELLED,
                         "the driver was stopped before its start completed");
  if (was == DH_DRIVER_STOPPING)
    return; /* already under way; the waiter is answered with the others */
  DFNET_LOGI(DRV_SUBSYS, drv->moniker, "stopping driver %s", drv->name);
  /* Fails only when start failed and the final task is already queued. */
  (void)dh__dispatcher_post(&drv->dispatcher, 0, task_prepare_stop, NULL, drv, false);
  dh__call_end_all(drv, DFNET_STATUS_UNAVAILABLE, "driver stopping");
}

dfnet_driver_t *dh__driver_find_live(dh_host_t *host, const char *moniker,
                                     dh_driver_state_t *state) {
  dfnet_driver_t *d;
  LL_FOREACH(host->drivers, d) {
    if (strcmp(d->moniker, moniker) != 0)
      continue;
    pthread_mutex_lock(&d->mu);
    dh_driver_state_t s = d->state;
    pthread_mutex_unlock(&d->mu);
    if (s != DH_DRIVER_STOPPED) {
      if (state != NULL)
        *state = s;
      return d;
    }
  }
  return NULL;
}

dfnet_driver_t *dh__driver_find_ref(dh_host_t *host, const char *moniker) {
  dfnet_driver_t *found = NULL;
  pthread_mutex_lock(&host->drivers_mu);
  dfnet_driver_t *d;
  LL_FOREACH(host->drivers, d) {
    if (strcmp(d->moniker, moniker) != 0)
      continue;
    pthread_mutex_lock(&d->mu);
    if (d->state != DH_DRIVER_STOPPED) {
      atomic_fetch_add(&d->refs, 1);
      found = d;
    }
    pthread_mutex_unlock(&d->mu);
    if (found != NULL)
      break;
  }
  pthread_mutex_unlock(&host->drivers_mu);
  return found;
}

void dh__driver_unref(dfnet_driver_t *drv) {
  if (atomic_fetch_sub(&drv->refs, 1) == 1)
    free_driver(drv);
}

void dh__driver_reap(dfnet_driver_t *drv) {
  dh__dispatcher_join(&drv->dispatcher);
  if (drv->dl != NULL)
    dlclose(drv->dl);
  drv->dl = NULL;
  drv->ops = NULL;
  drv->name = "driver"; /* ops->name was in the unloaded .so */
  dh__driver_unref(drv);
}
