/* The driver-facing functions of include/dfnet/driver.h about the driver itself: its node
 * (properties, moniker, offers), its resources, its dispatcher, the services it serves, and
 * logging (docs/spec/dfv2.md "Driver hosts and lifecycle"). Loading and the lifecycle are
 * driver.c's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

#define DRV_METHODS_MAX 64u

/* ---- node ---------------------------------------------------------------------------- */

const dfnet_node_property_t *dfnet_driver_properties(const dfnet_driver_t *driver, size_t *count) {
  *count = driver->prop_count;
  return driver->props;
}

const dfnet_node_property_t *dfnet_driver_property_find(const dfnet_driver_t *driver,
                                                        uint32_t int_key, const char *str_key) {
  for (size_t i = 0; i < driver->prop_count; i++) {
    const dfnet_node_property_t *p = &driver->props[i];
    if (str_key != NULL ? (p->str_key != NULL && strcmp(p->str_key, str_key) == 0)
                        : (p->str_key == NULL && p->int_key == int_key))
      return p;
  }
  return NULL;
}

const char *dfnet_driver_node_moniker(const dfnet_driver_t *driver) { return driver->moniker; }
const char *dfnet_driver_node_name(const dfnet_driver_t *driver) { return driver->node_name; }
const char *dfnet_driver_url(const dfnet_driver_t *driver) { return driver->url; }
const char *dfnet_driver_program_json(const dfnet_driver_t *driver) { return driver->program_json; }

const char *const *dfnet_driver_offers(const dfnet_driver_t *driver, size_t *count) {
  *count = driver->offer_count;
  return driver->offers;
}

dfnet_status_t dfnet_driver_offer(const dfnet_driver_t *driver, size_t index, dfnet_offer_t *out,
                                  size_t *count_out) {
  if (count_out != NULL)
    *count_out = driver->offered_count;
  if (index >= driver->offered_count)
    return DFNET_STATUS_OUT_OF_RANGE;
  if (out != NULL)
    *out = driver->offered[index].view;
  return DFNET_STATUS_OK;
}

/* ---- resources ----------------------------------------------------------------------- */

int dfnet_driver_resource_fd(const dfnet_driver_t *driver, const char *name) {
  if (driver == NULL || name == NULL)
    return -1;
  for (size_t i = 0; i < driver->resource_count; i++)
    if (strcmp(driver->resources[i].name, name) == 0)
      return driver->resources[i].fd;
  return -1;
}

size_t dfnet_driver_resource_count(const dfnet_driver_t *driver) {
  return driver != NULL ? driver->resource_count : 0;
}

const char *dfnet_driver_resource_name(const dfnet_driver_t *driver, size_t index) {
  return driver != NULL && index < driver->resource_count ? driver->resources[index].name : NULL;
}

/* ---- dispatcher ---------------------------------------------------------------------- */

typedef struct post_args {
  dfnet_driver_t *driver;
  dfnet_task_fn fn;
  void *arg;
} post_args_t;

static void task_post(void *arg) {
  post_args_t *p = arg;
  p->fn(p->driver, p->driver->ctx, p->arg);
  free(p);
}

dfnet_status_t dfnet_driver_post(dfnet_driver_t *driver, uint32_t delay_ms, dfnet_task_fn fn,
                                 void *arg) {
  if (fn == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  post_args_t *p = malloc(sizeof *p);
  if (p == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  p->driver = driver;
  p->fn = fn;
  p->arg = arg;
  dfnet_status_t st = dh__dispatcher_post(&driver->dispatcher, delay_ms, task_post, free, p, false);
  if (st != DFNET_STATUS_OK)
    free(p);
  return st;
}

bool dfnet_driver_on_dispatcher(const dfnet_driver_t *driver) {
  return dh__dispatcher_current() == &driver->dispatcher;
}

/* ---- services ------------------------------------------------------------------------ */

static bool valid_path(const char *path) {
  /* "/<package>.<Service>/<Method>" */
  if (path[0] != '/')
    return false;
  const char *slash = strchr(path + 1, '/');
  return slash != NULL && slash > path + 1 && slash[1] != '\0' && strchr(slash + 1, '/') == NULL;
}

dfnet_status_t dfnet_driver_serve(dfnet_driver_t *driver, const char *service,
                                  const dfnet_method_t *methods, size_t count) {
  if (count == 0 || methods == NULL || count > DRV_METHODS_MAX) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "serve: %zu methods (1..%u)", count,
                     DRV_METHODS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dh_method_t *add = calloc(count, sizeof *add);
  if (add == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t i = 0; i < count; i++) {
    int n = -1;
    if (methods[i].name != NULL && methods[i].handler != NULL) {
      n = service != NULL
              ? snprintf(add[i].path, sizeof add[i].path, "/%s/%s", service, methods[i].name)
              : snprintf(add[i].path, sizeof add[i].path, "%s", methods[i].name);
    }
    if (n < 0 || (size_t)n >= sizeof add[i].path || !valid_path(add[i].path)) {
      dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                       "serve: method %zu (%s) has no handler or a malformed path", i,
                       methods[i].name ? methods[i].name : "NULL");
      free(add);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    add[i].handler = methods[i].handler;
    add[i].server_streaming = methods[i].server_streaming;
  }
  pthread_mutex_lock(&driver->mu);
  if (driver->state >= DH_DRIVER_STOPPING) {
    st = DFNET_STATUS_FAILED_PRECONDITION;
    goto unlock;
  }
  if (driver->method_count + count > DRV_METHODS_MAX) {
    st = DFNET_STATUS_INVALID_ARGUMENT;
    goto unlock;
  }
  for (size_t i = 0; i < count; i++) {
    for (size_t j = 0; j < driver->method_count; j++)
      if (strcmp(driver->methods[j].path, add[i].path) == 0)
        st = DFNET_STATUS_ALREADY_EXISTS;
    for (size_t j = 0; j < i; j++)
      if (strcmp(add[j].path, add[i].path) == 0)
        st = DFNET_STATUS_ALREADY_EXISTS;
  }
  if (st != DFNET_STATUS_OK)
    goto unlock;
  dh_method_t *grown = realloc(driver->methods, (driver->method_count + count) * sizeof *grown);
  if (grown == NULL) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto unlock;
  }
  memcpy(grown + driver->method_count, add, count * sizeof *add);
  driver->methods = grown;
  driver->method_count += count;
unlock:
  pthread_mutex_unlock(&driver->mu);
  free(add);
  if (st != DFNET_STATUS_OK)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "serve %s: %s", service ? service : "",
                     dfnet_status_str(st));
  return st;
}

/* ---- logging ------------------------------------------------------------------------- */

void dfnet_driver_vlog(const dfnet_driver_t *driver, dfnet_driver_log_level_t level,
                       const char *fmt, va_list ap) {
  dfnet_log_level_t l = (dfnet_log_level_t)level;
  if (level > DFNET_DRIVER_LOG_DEBUG)
    l = DFNET_LOG_DEBUG;
  /* A warning or error start logs on its dispatcher becomes the reason of a failed start
   * (runtime bookkeeping, hence the cast: the driver's view of itself stays const). */
  bool reason =
      driver->in_start && level <= DFNET_DRIVER_LOG_WARN && dfnet_driver_on_dispatcher(driver);
  if (!dfnet_log_enabled(l) && !reason)
    return;
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  if (reason) { /* cut to fit: a reason, not the whole log line */
    char *dst = ((dfnet_driver_t *)driver)->start_error;
    size_t n = strnlen(buf, sizeof driver->start_error - 1);
    memcpy(dst, buf, n);
    dst[n] = '\0';
  }
  if (dfnet_log_enabled(l))
    dfnet_log(l, driver->name, driver->moniker, "%s", buf);
}

void dfnet_driver_log(const dfnet_driver_t *driver, dfnet_driver_log_level_t level, const char *fmt,
                      ...) {
  va_list ap;
  va_start(ap, fmt);
  dfnet_driver_vlog(driver, level, fmt, ap);
  va_end(ap);
}
