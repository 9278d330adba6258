/* dfnet-manager: the client API's replies (issue 5 "Client API"; proto/dfnet/v1/query.proto):
 * list requests are answered with a stream of items carrying the request's id, closed by
 * a Status. ListNodes snapshots the matching monikers, sorted, and sends them paced: when
 * the session's send queue is full it continues on a timer, looking each node up again
 * (a node removed meanwhile is skipped). Watch events go to every watching session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "lib/log.h"
#include "manager/lease.h"
#include "manager/manager.h"

enum { PENDING_STREAM = 20 };
#define STREAM_RETRY_MS 2u

/* ---- watch events ------------------------------------------------------------------- */

static bool event_wanted(const mgr_session_t *s, dfnet_v1_WatchEvent_Kind kind) {
  if (s->watch_id == 0)
    return false;
  switch (kind) {
  case dfnet_v1_WatchEvent_Kind_NODE_ADDED:
  case dfnet_v1_WatchEvent_Kind_NODE_REMOVED:
  case dfnet_v1_WatchEvent_Kind_NODE_UPDATED:
  case dfnet_v1_WatchEvent_Kind_NODE_BOUND:
  case dfnet_v1_WatchEvent_Kind_NODE_UNBOUND:
  case dfnet_v1_WatchEvent_Kind_NODE_SUSPENDED:
  case dfnet_v1_WatchEvent_Kind_NODE_RESUMED:
  case dfnet_v1_WatchEvent_Kind_LEASE_ACQUIRED: /* leases are about nodes */
  case dfnet_v1_WatchEvent_Kind_LEASE_RELEASED:
  case dfnet_v1_WatchEvent_Kind_LEASE_EXPIRED:
  case dfnet_v1_WatchEvent_Kind_LEASE_QUEUED:
    return s->watch_nodes;
  case dfnet_v1_WatchEvent_Kind_HOST_CONNECTED:
  case dfnet_v1_WatchEvent_Kind_HOST_DISCONNECTED:
  case dfnet_v1_WatchEvent_Kind_HOST_REMOVED:
    return s->watch_hosts;
  default: /* DRIVER_*: registered, disabled, enabled, host exited, unregistered */
    return s->watch_drivers;
  }
}

void streams__event(mgr_t *m, dfnet_v1_WatchEvent_Kind kind, const char *subject,
                    const char *detail, dfnet_status_t code) {
  if (m->watchers == 0)
    return;
  dfnet_envelope_t *env = m->event_env;
  mgr_session_t *s, *tmp;
  HASH_ITER(hh, m->sessions, s, tmp) {
    if (!event_wanted(s, kind))
      continue;
    dfnet_envelope_init(env);
    env->pb.id = s->watch_id;
    env->pb.which_msg = dfnet_v1_Envelope_watch_event_tag;
    dfnet_v1_WatchEvent *e = &env->pb.msg.watch_event;
    e->kind = kind;
    topology__fmt(e->subject, sizeof e->subject, "%s", subject ? subject : "");
    topology__fmt(e->detail, sizeof e->detail, "%s", detail ? detail : "");
    e->has_status = true;
    e->status.code = (dfnet_v1_Code)code;
    e->time_ms = mgr__wall_ms();
    dfnet_status_t st = dfnet_transport_send(m->transport, s->id, env, 0);
    if (st != DFNET_STATUS_OK)
      DFNET_LOGD("streams", s->name, "watch event dropped: %s", dfnet_status_str(st));
  }
}

/* ---- nodes -------------------------------------------------------------------------- */

_Static_assert(TOPOLOGY_PARENTS_MAX <= pb_arraysize(dfnet_v1_NodeInfo, parents),
               "a listing names every parent of a composite");
_Static_assert(TOPOLOGY_OFFERS_MAX <= pb_arraysize(dfnet_v1_NodeInfo, offers), "offers");
_Static_assert(sizeof(dfnet_v1_NodeInfo) < 65536, "a message struct stays under 64 KiB");

void streams__fill_node_info(mgr_t *m, const topology_node_t *n, bool verbose,
                             dfnet_v1_NodeInfo *out) {
  topology__fmt(out->moniker, sizeof out->moniker, "%s", n->moniker);
  topology__fmt(out->name, sizeof out->name, "%s", topology__name(n));
  mgr_host_t *h = hosts__get(m, n->host_id);
  topology__fmt(out->host, sizeof out->host, "%s", h ? h->name : "");
  if (verbose) {
    out->properties_count = (pb_size_t)topology__props_to_wire(
        n, out->properties, sizeof out->properties / sizeof out->properties[0]);
    const size_t offers_cap = pb_arraysize(dfnet_v1_NodeInfo, offers);
    for (size_t i = 0; i < n->offer_count && i < offers_cap; i++)
      topology__fmt(out->offers[i], sizeof out->offers[i], "%s", n->offers[i]);
    out->offers_count = (pb_size_t)(n->offer_count < offers_cap ? n->offer_count : offers_cap);
    const size_t offered_cap = pb_arraysize(dfnet_v1_NodeInfo, offered);
    size_t offered = offers__list(m, n, out->offered, offered_cap);
    out->offered_count = (pb_size_t)(offered < offered_cap ? offered : offered_cap);
  }
  topology__fmt(out->class_name, sizeof out->class_name, "%s", n->class_name ? n->class_name : "");
  topology__class_path(n, out->class_path, sizeof out->class_path);
  /* a start not answered yet (asynchronous or not) shows as such */
  out->state = n->starting ? dfnet_v1_NodeState_NODE_STARTING : (dfnet_v1_NodeState)n->state;
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  if (d != NULL)
    topology__fmt(out->driver_url, sizeof out->driver_url, "%s", d->url);
  out->driver_host_id = n->driver_host_id;
  out->driver_host_pid = n->driver_host_pid;
  out->suspended = n->suspended;
  out->test = n->test;
  if (n->unbound_code != DFNET_STATUS_OK || n->unbound_msg != NULL) {
    out->has_unbound_reason = true;
    out->unbound_reason.code = (dfnet_v1_Code)n->unbound_code;
    topology__fmt(out->unbound_reason.message, sizeof out->unbound_reason.message, "%s",
                  n->unbound_msg ? n->unbound_msg : "");
  }
  out->offline = n->offline;
  if (n->composite) {
    for (uint8_t i = 0; i < n->parent_count && i < pb_arraysize(dfnet_v1_NodeInfo, parents); i++)
      if (n->parents[i] != NULL)
        topology__fmt(out->parents[out->parents_count++], sizeof out->parents[0], "%s",
                      n->parents[i]->moniker);
  }
  lease__fill_node_info(m, n, out);
}

typedef struct node_stream {
  dfnet_session_id_t session;
  uint64_t id;
  bool verbose;
  char **monikers; /* owned snapshot */
  uint64_t *ids;
  size_t count, pos;
} node_stream_t;

static void node_stream_free(node_stream_t *ns) {
  for (size_t i = 0; i < ns->count; i++)
    free(ns->monikers[i]);
  free(ns->monikers);
  free(ns->ids);
  free(ns);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void node_stream_pump(void *user);

/* Send what fits; true when finished (freed), false when rescheduled. */
static bool node_stream_send(mgr_t *m, node_stream_t *ns) {
  while (ns->pos < ns->count) {
    topology_node_t *n = topology__find(&m->topo, ns->monikers[ns->pos]);
    if (n == NULL) {
      ns->pos++;
      continue;
    }
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.id = ns->id;
    env->pb.which_msg = dfnet_v1_Envelope_node_info_tag;
    streams__fill_node_info(m, n, ns->verbose, &env->pb.msg.node_info);
    dfnet_status_t st = dfnet_transport_send(m->transport, ns->session, env, 0);
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED) {
      mgr_pending_t *p = pending__new(m, PENDING_STREAM);
      if (p != NULL) {
        p->stream = ns;
        if (pending__timer(p, STREAM_RETRY_MS, node_stream_pump) == DFNET_STATUS_OK)
          return false;
        pending__free(p);
      }
      sessions__reply_status(m, ns->session, ns->id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                             "list interrupted");
      node_stream_free(ns);
      return true;
    }
    if (st != DFNET_STATUS_OK) { /* session gone */
      node_stream_free(ns);
      return true;
    }
    ns->pos++;
  }
  sessions__reply_status(m, ns->session, ns->id, DFNET_STATUS_OK, "%zu nodes", ns->count);
  node_stream_free(ns);
  return true;
}

static void node_stream_pump(void *user) {
  mgr_pending_t *p = user;
  mgr_t *m = p->mgr;
  node_stream_t *ns = p->stream;
  pending__free(p);
  if (m->stopping) {
    node_stream_free(ns);
    return;
  }
  node_stream_send(m, ns);
}

static bool node_selected(const topology_node_t *n, const dfnet_v1_ListNodes *q) {
  if (n->hidden) /* its parent's driver has not started yet */
    return false;
  if (q->filter[0] == '\0')
    return true;
  return q->exact ? strcmp(n->moniker, q->filter) == 0 : strstr(n->moniker, q->filter) != NULL;
}

void streams__list_nodes(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req) {
  uint64_t id = req->pb.id;
  const dfnet_v1_ListNodes *q = &req->pb.msg.list_nodes;
  node_stream_t *ns = calloc(1, sizeof *ns);
  size_t cap = q->exact ? 1 : m->topo.count;
  if (ns == NULL || (cap > 0 && (ns->monikers = malloc(cap * sizeof(char *))) == NULL)) {
    free(ns);
    sessions__reply_status(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ns->session = s->id;
  ns->id = id;
  ns->verbose = q->verbose;
  if (q->exact) {
    topology_node_t *n = topology__find_named(&m->topo, q->filter);
    if (n != NULL && !n->hidden && (ns->monikers[0] = strdup(n->moniker)) != NULL)
      ns->count = 1;
  } else {
    topology_node_t *n, *tmp;
    HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
      if (ns->count < cap && node_selected(n, q) &&
          (ns->monikers[ns->count] = strdup(n->moniker)) != NULL)
        ns->count++;
    }
    if (ns->count > 1) /* qsort(NULL, 0, ...) is undefined: no nodes yet */
      qsort(ns->monikers, ns->count, sizeof *ns->monikers, cmp_str);
  }
  node_stream_send(m, ns);
}

/* ---- hosts -------------------------------------------------------------------------- */

void streams__list_hosts(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req) {
  uint64_t id = req->pb.id;
  topology_driver_host_t *pairs = malloc((m->topo.count + 1) * sizeof *pairs);
  size_t np = 0;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (pairs != NULL && n->state == dfnet_v1_NodeState_BOUND && n->driver_host_id != 0)
      pairs[np++] = (topology_driver_host_t){n->host_id, n->driver_host_id};
  }
  if (pairs != NULL)
    topology__sort_driver_hosts(pairs, np);
  mgr_host_t *h, *htmp;
  size_t sent = 0;
  HASH_ITER(hh, m->hosts, h, htmp) {
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.id = id;
    env->pb.which_msg = dfnet_v1_Envelope_host_info_tag;
    dfnet_v1_HostInfo *hi = &env->pb.msg.host_info;
    topology__fmt(hi->name, sizeof hi->name, "%s", h->name);
    topology__fmt(hi->address, sizeof hi->address, "%s", h->address);
    topology__fmt(hi->arch, sizeof hi->arch, "%s", h->arch);
    memcpy(hi->labels, h->labels, sizeof hi->labels);
    hi->labels_count = h->label_count;
    hi->connected_since_ms = h->connected_since_ms;
    hi->online = h->session != 0;
    hi->node_count = h->node_count;
    hi->driver_host_count = pairs ? topology__count_driver_hosts(pairs, np, h->id) : 0;
    topology__fmt(hi->software_version, sizeof hi->software_version, "%s", h->software_version);
    hi->sandboxed = h->sandboxed;
    lease__fill_host_info(m, h, hi);
    if (dfnet_transport_send(m->transport, s->id, env, 0) != DFNET_STATUS_OK)
      break;
    sent++;
  }
  free(pairs);
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%zu hosts", sent);
}

/* ---- drivers ------------------------------------------------------------------------ */

static void fill_driver_info(mgr_t *m, const driver_t *d, bool verbose, dfnet_v1_DriverInfo *di) {
  topology__fmt(di->url, sizeof di->url, "%s", d->url);
  topology__fmt(di->name, sizeof di->name, "%s", d->name);
  memcpy(di->package_digest, d->digest, sizeof di->package_digest);
  di->source =
      d->source == DRIVER_BOOT ? dfnet_v1_DriverSource_BOOT : dfnet_v1_DriverSource_REGISTERED;
  di->fallback = d->m.fallback;
  di->colocate = d->m.colocate;
  di->host_restart_on_crash = d->m.host_restart_on_crash;
  di->disabled = d->disabled;
  di->disable_autobind = d->disable_autobind;
  di->start_timeout_ms = d->m.start_timeout_ms;
  for (size_t i = 0; i < d->m.category_count && i < 8; i++) {
    topology__fmt(di->device_categories[i].category, sizeof di->device_categories[i].category, "%s",
                  d->m.categories[i][0]);
    topology__fmt(di->device_categories[i].subcategory, sizeof di->device_categories[i].subcategory,
                  "%s", d->m.categories[i][1]);
    di->device_categories_count++;
  }
  if (d->composite)
    topology__fmt(di->composite_name, sizeof di->composite_name, "%s",
                  dfnet_bind_program_composite_name(d->program)
                      ? dfnet_bind_program_composite_name(d->program)
                      : "");
  di->device_count = d->device_count;
  for (size_t i = 0; i < d->m.dispatcher_opt_count && i < 4; i++)
    topology__fmt(di->dispatcher_opts[di->dispatcher_opts_count++], sizeof di->dispatcher_opts[0],
                  "%s", d->m.dispatcher_opts[i]);
  for (size_t i = 0; i < d->m.resource_count && i < 8; i++)
    topology__fmt(di->resources[di->resources_count++], sizeof di->resources[0], "%s%s",
                  d->m.resources[i].path, d->m.resources[i].writable ? " (rw)" : "");
  for (uint32_t bit = 1; bit != 0 && di->rights_count < pb_arraysize(dfnet_v1_DriverInfo, rights);
       bit <<= 1) {
    const char *name = (d->m.rights.rights & bit) ? dfnet_right_name((dfnet_right_t)bit) : NULL;
    if (name != NULL)
      topology__fmt(di->rights[di->rights_count++], sizeof di->rights[0], "%s", name);
  }
  di->memory_mb = d->m.rights.memory_mb;
  di->open_files = d->m.rights.open_files;
  if (verbose && d->device_count > 0) {
    topology_node_t *n, *tmp;
    HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
      if (di->devices_count >= 8)
        break;
      if (n->driver_id == d->id && n->state == dfnet_v1_NodeState_BOUND)
        topology__fmt(di->devices[di->devices_count++], sizeof di->devices[0], "%s", n->moniker);
    }
  }
}

void streams__list_drivers(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req) {
  uint64_t id = req->pb.id;
  const dfnet_v1_ListDrivers *q = &req->pb.msg.list_drivers;
  size_t sent = 0;
  for (size_t i = 0; i < m->index.count; i++) {
    const driver_t *d = m->index.drivers[i];
    if (d == NULL || (q->loaded && d->device_count == 0))
      continue;
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.id = id;
    env->pb.which_msg = dfnet_v1_Envelope_driver_info_tag;
    fill_driver_info(m, d, q->verbose, &env->pb.msg.driver_info);
    if (q->verbose)
      env->bulk.data = dfnet_bind_program_bytes(d->program, &env->bulk.size);
    dfnet_status_t st = dfnet_transport_send(m->transport, s->id, env, DFNET_SEND_WAIT);
    if (st != DFNET_STATUS_OK) {
      sessions__reply_status(m, s->id, id, st, "list interrupted");
      return;
    }
    sent++;
  }
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%zu drivers", sent);
}

/* ---- composites --------------------------------------------------------------------- */

void streams__list_composites(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req) {
  uint64_t id = req->pb.id;
  const dfnet_v1_ListComposites *q = &req->pb.msg.list_composites;
  size_t sent = 0;
  const mgr_composite_t *c;
  DL_FOREACH(m->composites, c) {
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.id = id;
    env->pb.which_msg = dfnet_v1_Envelope_composite_info_tag;
    dfnet_v1_CompositeInfo *ci = &env->pb.msg.composite_info;
    topology__fmt(ci->name, sizeof ci->name, "%s", c->name);
    driver_t *d = driver_index__get(&m->index, c->driver_id);
    topology__fmt(ci->driver_url, sizeof ci->driver_url, "%s", d ? d->url : "");
    topology__fmt(ci->moniker, sizeof ci->moniker, "%s", c->node_moniker ? c->node_moniker : "");
    ci->from_spec = c->from_spec;
    for (size_t i = 0; i < c->parent_count; i++) { /* fits: MGR_COMPOSITE_PARENTS_MAX */
      dfnet_v1_CompositeParent *p = &ci->parents[ci->parents_count++];
      topology__fmt(p->name, sizeof p->name, "%s", c->parents[i].name);
      topology__fmt(p->moniker, sizeof p->moniker, "%s",
                    c->parents[i].moniker ? c->parents[i].moniker : "");
      p->primary = c->parents[i].primary;
      p->optional = c->parents[i].optional;
    }
    /* verbose: a spec's parents with their bind rules and properties, as added */
    if (q->verbose && c->from_spec && c->spec != NULL) {
      size_t cap = sizeof ci->spec_parents / sizeof ci->spec_parents[0];
      for (pb_size_t i = 0; i < c->spec->parents_count && i < cap; i++)
        ci->spec_parents[ci->spec_parents_count++] = c->spec->parents[i];
    }
    if (dfnet_transport_send(m->transport, s->id, env, 0) != DFNET_STATUS_OK)
      break;
    sent++;
  }
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%zu composites", sent);
}

/* ---- bind why ----------------------------------------------------------------------- */

static bool send_trace(mgr_t *m, mgr_session_t *s, uint64_t id, const driver_t *d,
                       dfnet_bind_result_t r, const dfnet_bind_trace_t *t, const char *node) {
  dfnet_envelope_t *env = mgr__env(m);
  env->pb.id = id;
  env->pb.which_msg = dfnet_v1_Envelope_bind_trace_tag;
  dfnet_v1_BindTrace *bt = &env->pb.msg.bind_trace;
  topology__fmt(bt->driver_url, sizeof bt->driver_url, "%s", d->url);
  bt->result = r == DFNET_BIND_MATCH      ? dfnet_v1_BindResult_MATCH
               : r == DFNET_BIND_NO_MATCH ? dfnet_v1_BindResult_NO_MATCH
                                          : dfnet_v1_BindResult_ERROR;
  bt->offset = t->offset;
  topology__fmt(bt->instruction, sizeof bt->instruction, "%s", t->instruction);
  topology__fmt(bt->reason, sizeof bt->reason, "%s%s%s", d->disabled ? "(driver disabled) " : "",
                d->m.fallback ? "(fallback) " : "", t->reason);
  if (node != NULL)
    topology__fmt(bt->composite_node, sizeof bt->composite_node, "%s", node);
  return dfnet_transport_send(m->transport, s->id, env, DFNET_SEND_WAIT) == DFNET_STATUS_OK;
}

static bool trace_driver(mgr_t *m, mgr_session_t *s, uint64_t id, const driver_t *d,
                         const dfnet_bind_node_t *bn) {
  dfnet_bind_trace_t t;
  if (!d->composite) {
    memset(&t, 0, sizeof t);
    dfnet_bind_result_t r = dfnet_bind_program_match(d->program, bn, &t);
    return send_trace(m, s, id, d, r, &t, NULL);
  }
  size_t nn = dfnet_bind_program_node_count(d->program);
  for (size_t j = 0; j < nn; j++) {
    const char *name = NULL;
    dfnet_bind_node_type_t type;
    dfnet_bind_program_node_info(d->program, j, &name, &type);
    memset(&t, 0, sizeof t);
    dfnet_bind_result_t r = dfnet_bind_program_match_composite_node(d->program, j, bn, &t);
    if (!send_trace(m, s, id, d, r, &t, name))
      return false;
  }
  return true;
}

void streams__bind_why(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *req) {
  uint64_t id = req->pb.id;
  const dfnet_v1_BindWhy *q = &req->pb.msg.bind_why;
  topology_node_t *n = sessions__node_or_reply(m, s->id, id, q->node, false);
  if (n == NULL)
    return;
  driver_t *only = NULL;
  char err[600];
  dfnet_status_t st = q->driver_url[0] == '\0'
                          ? DFNET_STATUS_OK
                          : driver_index__resolve(&m->index, q->driver_url, &only, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, id, st, "%s", err);
    return;
  }
  binder_match_node_t *mn = malloc(sizeof *mn);
  if (mn == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  binder__match_node_init(n, true, mn); /* as an automatic attempt sees it */
  bool ok = true;
  for (size_t i = 0; i < m->index.count && ok; i++) {
    const driver_t *d = m->index.drivers[i];
    if (d != NULL && (only == NULL || d == only))
      ok = trace_driver(m, s, id, d, &mn->bn);
  }
  free(mn);
  if (!ok)
    return;
  driver_t *bound = driver_index__get(&m->index, n->driver_id);
  if (n->state == dfnet_v1_NodeState_BOUND && bound != NULL)
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%s is bound to %s", n->moniker,
                           bound->url);
  else if (n->unbound_code != DFNET_STATUS_OK || n->unbound_msg != NULL)
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%s is unbound: %s: %s", n->moniker,
                           dfnet_status_str(n->unbound_code), n->unbound_msg ? n->unbound_msg : "");
  else
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%s state %d", n->moniker, (int)n->state);
}
