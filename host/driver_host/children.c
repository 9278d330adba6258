/* Child nodes a driver adds and removes (DFv2 Node.AddChild; docs/spec/dfv2.md "Nodes"):
 * NodeAdd / NodeRemove to the host agent, which forwards them to the manager and answers
 * with a Status carrying the request's id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"
#include "lib/property.h"

#define CHILD_SUBSYS "driver-host"

typedef struct node_add_args {
  const dfnet_driver_t *driver;
  const dfnet_child_args_t *child;
} node_add_args_t;

static bool fits(const char *s, size_t cap) { return s != NULL && strnlen(s, cap) < cap; }

/* Check a child's arguments against the wire's bounds (node.options). */
static bool child_args_valid(const dfnet_child_args_t *a, const char **why) {
  dfnet_v1_NodeAdd *probe = NULL;
  *why = NULL;
  if (!fits(a->name, sizeof probe->name) || a->name[0] == '\0' || strchr(a->name, '.'))
    *why = "name must be 1..128 bytes without '.'";
  else if (a->property_count > 64 || (a->property_count > 0 && a->properties == NULL))
    *why = "at most 64 properties";
  else if (a->offer_count > 16 || (a->offer_count > 0 && a->offers == NULL))
    *why = "at most 16 offers";
  else if (a->class_name != NULL && !fits(a->class_name, sizeof probe->class_name))
    *why = "class name over 31 bytes";
  for (size_t i = 0; *why == NULL && i < a->offer_count; i++)
    if (!fits(a->offers[i], sizeof probe->offers[0]))
      *why = "an offer is NULL or over 127 bytes";
  for (size_t i = 0; *why == NULL && i < a->property_count; i++) {
    const dfnet_node_property_t *p = &a->properties[i];
    dfnet_v1_NodeProperty *pp = NULL;
    if (p->str_key != NULL && !fits(p->str_key, sizeof pp->key.str_key))
      *why = "a property key is over 127 bytes";
    else if ((p->type == DFNET_PROPERTY_STRING || p->type == DFNET_PROPERTY_ENUM) &&
             !fits(p->value_str, sizeof pp->value.str_value))
      *why = "a property string value is NULL or over 255 bytes";
    else if (p->type > DFNET_PROPERTY_ENUM)
      *why = "a property has an unknown type";
  }
  return *why == NULL;
}

static void fill_node_add(dfnet_envelope_t *env, void *arg) {
  node_add_args_t *a = arg;
  const dfnet_child_args_t *c = a->child;
  dfnet_v1_NodeAdd *m = &env->pb.msg.node_add;
  env->pb.which_msg = dfnet_v1_Envelope_node_add_tag;
  dh__strlcpy(m->parent, a->driver->moniker, sizeof m->parent);
  dh__strlcpy(m->name, c->name, sizeof m->name);
  dh__strlcpy(m->class_name, c->class_name ? c->class_name : "", sizeof m->class_name);
  m->owned = c->owned;
  m->properties_count = (pb_size_t)c->property_count;
  for (size_t i = 0; i < c->property_count; i++) {
    dfnet_bind_property_t p;
    dfnet_property_from_driver(&c->properties[i], &p);
    /* child_args_valid() checked the types and the wire's bounds: nothing is cut */
    (void)dfnet_property_to_wire(&p, &m->properties[i]);
  }
  m->offers_count = (pb_size_t)c->offer_count;
  for (size_t i = 0; i < c->offer_count; i++)
    dh__strlcpy(m->offers[i], c->offers[i], sizeof m->offers[i]);
}

/* The child of that name, or NULL. drv->mu held. */
static dh_child_t *find_child(dfnet_driver_t *drv, const char *name) {
  dh_child_t *c;
  LL_FOREACH(drv->children, c) {
    if (strcmp(c->name, name) == 0)
      break;
  }
  return c;
}

/* Forget a child name. Returns true if it was there. */
static bool forget_child(dfnet_driver_t *drv, const char *name) {
  pthread_mutex_lock(&drv->mu);
  dh_child_t *c = find_child(drv, name);
  if (c != NULL)
    LL_DELETE(drv->children, c);
  pthread_mutex_unlock(&drv->mu);
  bool found = c != NULL;
  free(c);
  return found;
}

static dh_pending_child_t *take_pending(dh_host_t *host, uint64_t id) {
  dh_pending_child_t *found;
  pthread_mutex_lock(&host->calls_mu);
  DL_SEARCH_SCALAR(host->pending_children, found, id, id);
  if (found != NULL)
    DL_DELETE(host->pending_children, found);
  pthread_mutex_unlock(&host->calls_mu);
  return found;
}

dfnet_status_t dfnet_driver_add_child(dfnet_driver_t *driver, const dfnet_child_args_t *args,
                                      dfnet_child_added_fn done, void *arg) {
  const char *why = NULL;
  if (args == NULL || !child_args_valid(args, &why)) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "add child: %s", why ? why : "no arguments");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dh_child_t *child = calloc(1, sizeof *child);
  dh_pending_child_t *pending = calloc(1, sizeof *pending);
  dfnet_status_t st = DFNET_STATUS_OK;
  if (child == NULL || pending == NULL) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto free_records;
  }
  dh__strlcpy(child->name, args->name, sizeof child->name);
  pthread_mutex_lock(&driver->mu);
  if (driver->state >= DH_DRIVER_STOPPING)
    st = DFNET_STATUS_FAILED_PRECONDITION;
  if (st == DFNET_STATUS_OK && find_child(driver, child->name) != NULL)
    st = DFNET_STATUS_ALREADY_EXISTS;
  if (st == DFNET_STATUS_OK) {
    LL_PREPEND(driver->children, child);
    child = NULL;
  }
  pthread_mutex_unlock(&driver->mu);
  if (st != DFNET_STATUS_OK)
    goto free_records;

  dh_host_t *host = driver->host;
  pending->id = atomic_fetch_add(&host->next_id, 1);
  pending->driver = driver;
  dh__strlcpy(pending->name, args->name, sizeof pending->name);
  pending->done = done;
  pending->arg = arg;
  uint64_t id = pending->id;
  pthread_mutex_lock(&host->calls_mu);
  DL_PREPEND(host->pending_children, pending);
  pthread_mutex_unlock(&host->calls_mu);
  node_add_args_t na = {driver, args};
  st = dh__link_send(host, id, fill_node_add, &na, NULL, 0);
  if (st != DFNET_STATUS_OK) {
    free(take_pending(host, id));
    forget_child(driver, args->name);
    st = DFNET_STATUS_UNAVAILABLE;
  }
  if (st == DFNET_STATUS_OK)
    DFNET_LOGD(CHILD_SUBSYS, driver->moniker, "adding child %s (request %llu)", args->name,
               (unsigned long long)id);
  return st;

free_records:
  free(child);
  free(pending);
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "add child %s: %s", args->name,
                   dfnet_status_str(st));
  return st;
}

typedef struct child_done {
  dfnet_driver_t *driver;
  dfnet_child_added_fn done;
  void *arg;
  dfnet_status_t status;
  char name[129];
} child_done_t;

static void task_child_done(void *arg) {
  child_done_t *c = arg;
  c->done(c->driver, c->driver->ctx, c->name, c->status, c->arg);
  free(c);
}

bool dh__driver_child_status(dh_host_t *host, uint64_t id, dfnet_status_t code,
                             const char *message) {
  dh_pending_child_t *p = take_pending(host, id);
  if (p == NULL)
    return false;
  if ((unsigned)code >= DFNET_STATUS_COUNT)
    code = DFNET_STATUS_UNKNOWN;
  if (code != DFNET_STATUS_OK) {
    DFNET_LOGW(CHILD_SUBSYS, p->driver->moniker, "child %s refused: %s: %s", p->name,
               dfnet_status_str(code), message);
    forget_child(p->driver, p->name);
  }
  child_done_t *c = p->done != NULL ? malloc(sizeof *c) : NULL;
  if (c != NULL) {
    c->driver = p->driver;
    c->done = p->done;
    c->arg = p->arg;
    c->status = code;
    dh__strlcpy(c->name, p->name, sizeof c->name);
    if (dh__dispatcher_post(&p->driver->dispatcher, 0, task_child_done, free, c, false) !=
        DFNET_STATUS_OK)
      free(c);
  }
  free(p);
  return true;
}

static void fill_node_remove(dfnet_envelope_t *env, void *arg) {
  env->pb.which_msg = dfnet_v1_Envelope_node_remove_tag;
  dh__strlcpy(env->pb.msg.node_remove.moniker, arg, sizeof env->pb.msg.node_remove.moniker);
}

dfnet_status_t dfnet_driver_remove_child(dfnet_driver_t *driver, const char *name) {
  if (name == NULL || !forget_child(driver, name))
    return DFNET_STATUS_NOT_FOUND;
  char moniker[700];
  snprintf(moniker, sizeof moniker, "%s.%s", driver->moniker, name);
  dh_host_t *host = driver->host;
  uint64_t id = atomic_fetch_add(&host->next_id, 1);
  if (dh__link_send(host, id, fill_node_remove, moniker, NULL, 0) != DFNET_STATUS_OK)
    return DFNET_STATUS_UNAVAILABLE;
  DFNET_LOGD(CHILD_SUBSYS, driver->moniker, "removed child %s", name);
  return DFNET_STATUS_OK;
}
