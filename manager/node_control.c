/* dfnet-manager: node control, the admin actions that stop drivers on nodes and answer once
 * those nodes have settled (docs/architecture.md "Node control"; issue 19).
 *
 * RESTART (ffx driver restart): on every node running the driver, its children go (their
 * drivers stopped bottom-up), then its DriverStop, and its DriverStart only once the host
 * answered that stop (binder__stop_then_start). DISABLE and UNREGISTER: the same stops,
 * then each node is matched again (binder__stop_then_bind), the driver out of matching.
 * UnbindNode (handle_unbind_node.c): the same stops, nothing follows. ENABLE stops nothing:
 * the nodes its rematch started the driver on are the ones it waits for.
 *
 * A request's record (mgr_control_t) keeps the nodes it touched by moniker + id; a timer
 * looks at them every CONTROL_TICK_MS while any record waits, and the request is answered
 * once every node has settled (neither starting nor stopping, or gone) or its deadline
 * passed: DriverControlResult with a NodeOutcome per node (at most 32; `nodes` counts them
 * all), or UnbindNode's Status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "lib/log.h"
#include "manager/manager.h"

#define CONTROL_TICK_MS 10u

struct mgr_control {
  mgr_control_t *next, *prev; /* utlist DL: m->controls, newest first */
  mgr_control_kind_t kind;
  dfnet_session_id_t session;
  uint64_t request_id;
  char subject[DFNET_PACKAGE_URL_MAX]; /* the driver's URL, or the node (UnbindNode) */
  uint32_t driver_hosts, nodes;
  uint64_t deadline; /* monotonic ms */
  mgr_node_refs_t touched;
  bool oom; /* a node could not be recorded: its outcome is missing */
};

_Static_assert(sizeof(dfnet_v1_DriverControlResult) < 65536, "a message struct stays under 64 KiB");

/* ---- records ------------------------------------------------------------------------ */

mgr_control_t *control__new(mgr_t *m, dfnet_session_id_t session, uint64_t request_id,
                            mgr_control_kind_t kind, const char *subject) {
  mgr_control_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->kind = kind;
  c->session = session;
  c->request_id = request_id;
  topology__fmt(c->subject, sizeof c->subject, "%s", subject);
  /* a stop, then the slowest start there may be, then its margin */
  uint32_t start = 0;
  for (size_t i = 0; i < m->index.count; i++)
    if (m->index.drivers[i] != NULL && driver_index__start_timeout_ms(m->index.drivers[i]) > start)
      start = driver_index__start_timeout_ms(m->index.drivers[i]);
  c->deadline = dfnet_transport_now_ms() + MGR_STOP_DEADLINE_MS +
                (kind == CONTROL_UNBIND ? 1000u : start + MGR_START_MARGIN_MS);
  return c;
}

static void control_free(mgr_control_t *c) {
  node_refs__clear(&c->touched);
  free(c);
}

void control__discard(mgr_control_t *c) {
  if (c != NULL)
    control_free(c);
}

void control__touch(mgr_control_t *c, const topology_node_t *n) {
  if (!node_refs__add(&c->touched, n))
    c->oom = true;
}

void control__set_counts(mgr_control_t *c, uint32_t driver_hosts, uint32_t nodes) {
  c->driver_hosts = driver_hosts;
  c->nodes = nodes;
}

/* ---- settling ----------------------------------------------------------------------- */

static bool settled(const topology_node_t *n) {
  return n == NULL || (!n->starting && !n->stopping);
}

/* The outcome of a settled node (or of one still moving when the deadline passed). */
static void fill_outcome(mgr_t *m, const mgr_node_ref_t *t, dfnet_v1_NodeOutcome *o) {
  topology_node_t *n = node_refs__node(m, t);
  topology__fmt(o->node, sizeof o->node, "%s", t->moniker);
  o->has_status = true;
  dfnet_v1_Status *st = &o->status;
  if (n == NULL) {
    st->code = dfnet_v1_Code_NOT_FOUND;
    topology__fmt(st->message, sizeof st->message, "removed");
    return;
  }
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  if (!settled(n)) {
    st->code = dfnet_v1_Code_DEADLINE_EXCEEDED;
    topology__fmt(st->message, sizeof st->message, "still %s",
                  n->stopping ? "stopping its driver" : "starting its driver");
  } else if (n->state == dfnet_v1_NodeState_BOUND && d != NULL) {
    st->code = dfnet_v1_Code_OK;
    topology__fmt(st->message, sizeof st->message, "bound to %s", d->url);
    topology__fmt(o->driver_url, sizeof o->driver_url, "%s", d->url);
  } else if (n->state == dfnet_v1_NodeState_OWNED_BY_COMPOSITE) {
    st->code = dfnet_v1_Code_OK;
    topology__fmt(st->message, sizeof st->message, "owned by composite(s)");
  } else {
    st->code = (dfnet_v1_Code)(n->unbound_code != DFNET_STATUS_OK ? n->unbound_code
                                                                  : DFNET_STATUS_NOT_FOUND);
    topology__fmt(st->message, sizeof st->message, "%s",
                  n->unbound_msg ? n->unbound_msg : "unbound");
  }
}

static void answer_driver_control(mgr_t *m, const mgr_control_t *c) {
  dfnet_envelope_t *out = mgr__env(m);
  out->pb.id = c->request_id;
  out->pb.which_msg = dfnet_v1_Envelope_driver_control_result_tag;
  dfnet_v1_DriverControlResult *r = &out->pb.msg.driver_control_result;
  topology__fmt(r->url, sizeof r->url, "%s", c->subject);
  r->driver_hosts = c->driver_hosts;
  r->nodes = c->nodes;
  const size_t cap = pb_arraysize(dfnet_v1_DriverControlResult, outcomes);
  for (size_t i = 0; i < c->touched.count && r->outcomes_count < cap; i++)
    fill_outcome(m, &c->touched.items[i], &r->outcomes[r->outcomes_count++]);
  dfnet_status_t st = dfnet_transport_send(m->transport, c->session, out, DFNET_SEND_PAST_HWM);
  if (st != DFNET_STATUS_OK && st != DFNET_STATUS_NOT_FOUND)
    DFNET_LOGW("control", c->subject, "DriverControlResult not sent: %s", dfnet_status_str(st));
}

static void answer_unbind(mgr_t *m, const mgr_control_t *c) {
  topology_node_t *n = c->touched.count > 0 ? node_refs__node(m, &c->touched.items[0]) : NULL;
  if (!settled(n))
    sessions__reply_status(m, c->session, c->request_id, DFNET_STATUS_DEADLINE_EXCEEDED,
                           "%s: its driver has not stopped within %u ms", c->subject,
                           MGR_STOP_DEADLINE_MS);
  else
    sessions__reply_status(m, c->session, c->request_id, DFNET_STATUS_OK, "%s",
                           ""); /* the CLI names it */
}

/* Answered (and to be freed) when every node has settled or the deadline passed. */
static bool control_done(mgr_t *m, const mgr_control_t *c, uint64_t now) {
  bool all = true;
  for (size_t i = 0; i < c->touched.count && all; i++)
    all = settled(node_refs__node(m, &c->touched.items[i]));
  if (!all && now < c->deadline)
    return false;
  if (c->kind == CONTROL_UNBIND)
    answer_unbind(m, c);
  else
    answer_driver_control(m, c);
  return true;
}

static void control_tick(void *user);

static void control_arm(mgr_t *m) {
  if (m->control_timer == 0 && m->controls != NULL &&
      dfnet_transport_timer_start(m->transport, CONTROL_TICK_MS, control_tick, m,
                                  &m->control_timer) != DFNET_STATUS_OK)
    m->control_timer = 0;
}

static void control_check_all(mgr_t *m) {
  uint64_t now = dfnet_transport_now_ms();
  mgr_control_t *c, *next;
  DL_FOREACH_SAFE(m->controls, c, next) {
    if (control_done(m, c, now)) {
      DL_DELETE(m->controls, c);
      control_free(c);
    }
  }
}

static void control_tick(void *user) {
  mgr_t *m = user;
  m->control_timer = 0;
  if (m->stopping)
    return;
  control_check_all(m);
  control_arm(m);
}

void control__commit(mgr_t *m, mgr_control_t *c) {
  if (c->oom)
    DFNET_LOGW("control", c->subject, "out of memory: some outcomes are missing");
  DL_PREPEND(m->controls, c);
  control_check_all(m); /* nothing to wait for: answered now */
  control_arm(m);
}

void control__destroy_all(mgr_t *m) {
  if (m->control_timer != 0 && m->transport != NULL)
    (void)dfnet_transport_timer_cancel(m->transport, m->control_timer);
  m->control_timer = 0;
  mgr_control_t *c, *next;
  DL_FOREACH_SAFE(m->controls, c, next) {
    control_free(c);
  }
  m->controls = NULL;
}

/* ---- driver control ----------------------------------------------------------------- */

/* A node to stop, and its depth in the tree. */
typedef struct node_ref {
  mgr_node_ref_t ref;
  size_t depth;
} node_ref_t;

static int node_ref_cmp(const void *a, const void *b) {
  const node_ref_t *x = a, *y = b;
  return x->depth < y->depth ? -1 : x->depth > y->depth;
}

/* Which nodes nodes_where picks. */
typedef bool (*node_pick_fn)(mgr_t *m, const topology_node_t *n, void *ctx);

/* The nodes `pick` picks, by moniker and id, shallowest first: stopping one removes its
 * children, so the list is taken before anything changes, and a node is looked up again
 * (node_refs__node: it may have gone with its parent's children). *out: malloc'd, freed
 * with refs_free. Without memory, fewer nodes (none). */
static size_t nodes_where(mgr_t *m, node_pick_fn pick, void *ctx, node_ref_t **out) {
  node_ref_t *refs = malloc((m->topo.count ? m->topo.count : 1) * sizeof *refs);
  size_t count = 0;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (refs == NULL || !pick(m, n, ctx))
      continue;
    size_t depth = 0;
    for (const char *c = n->moniker; *c; c++)
      depth += *c == '.';
    if ((refs[count].ref.moniker = strdup(n->moniker)) != NULL) {
      refs[count].ref.id = n->id;
      refs[count++].depth = depth;
    }
  }
  if (count > 1)
    qsort(refs, count, sizeof *refs, node_ref_cmp);
  *out = refs;
  return count;
}

static void refs_free(node_ref_t *refs, size_t count) {
  for (size_t i = 0; i < count; i++)
    free(refs[i].ref.moniker);
  free(refs);
}

/* The nodes a driver runs on (and, starting_too, those it starts on). */
typedef struct driver_nodes {
  const driver_t *d;
  bool starting_too;
} driver_nodes_t;

static bool runs_driver(mgr_t *m, const topology_node_t *n, void *ctx) {
  const driver_nodes_t *w = ctx;
  (void)m;
  return n->driver_id == w->d->id &&
         (n->state == dfnet_v1_NodeState_BOUND || (w->starting_too && n->starting));
}

static size_t nodes_of(mgr_t *m, const driver_t *d, bool starting_too, node_ref_t **out) {
  driver_nodes_t w = {.d = d, .starting_too = starting_too};
  return nodes_where(m, runs_driver, &w, out);
}

uint32_t control__restart_driver(mgr_t *m, driver_t *d, mgr_control_t *c) {
  node_ref_t *refs;
  size_t count = nodes_of(m, d, false, &refs);
  /* without memory for the list, every node counts as a driver host of its own */
  topology_driver_host_t *dh = malloc((count ? count : 1) * sizeof *dh);
  size_t ndh = 0;
  uint32_t nodes = 0;
  for (size_t i = 0; i < count; i++) {
    topology_node_t *n = node_refs__node(m, &refs[i].ref);
    if (n == NULL || n->state != dfnet_v1_NodeState_BOUND || n->driver_id != d->id)
      continue;
    if (dh != NULL)
      dh[ndh++] = (topology_driver_host_t){.host = n->host_id, .id = n->driver_host_id};
    nodes++;
    if (c != NULL)
      control__touch(c, n);
    binder__stop_then_start(m, n); /* started again once its host answered the stop */
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, "restarting");
  }
  refs_free(refs, count);
  uint32_t driver_hosts = nodes;
  if (dh != NULL) {
    topology__sort_driver_hosts(dh, ndh);
    driver_hosts = topology__count_driver_hosts(dh, ndh, 0);
  }
  free(dh);
  if (c != NULL)
    control__set_counts(c, driver_hosts, nodes);
  return driver_hosts;
}

uint32_t control__release_driver(mgr_t *m, driver_t *d, const char *reason, mgr_control_t *c) {
  uint32_t released = binder__composites_forget_driver(m, d, reason);
  node_ref_t *refs;
  size_t count = nodes_of(m, d, true, &refs);
  for (size_t i = 0; i < count; i++) {
    topology_node_t *n = node_refs__node(m, &refs[i].ref);
    if (n == NULL || n->driver_id != d->id ||
        (n->state != dfnet_v1_NodeState_BOUND && !n->starting))
      continue;
    if (c != NULL)
      control__touch(c, n);
    binder__stop_then_bind(m, n, NULL, false); /* matched again once stopped */
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, reason);
    released++;
  }
  refs_free(refs, count);
  if (c != NULL)
    control__set_counts(c, 0, released);
  return released;
}

/* Would the index now pick d for n, a node bound to a fallback driver? */
static bool reclaimable(mgr_t *m, const topology_node_t *n, const driver_t *d,
                        binder_match_node_t *mn) {
  const driver_t *bound = driver_index__get(&m->index, n->driver_id);
  if (bound == NULL || !bound->m.fallback || n->state != dfnet_v1_NodeState_BOUND || n->owned ||
      n->composite || n->test || n->offline || n->starting || n->stopping || n->suspended)
    return false;
  binder__match_node_init(n, true, mn);
  driver_match_t r;
  driver_index__match(&m->index, &mn->bn, "", &r);
  return r.status == DFNET_STATUS_OK && r.driver == d; /* d wins outright */
}

/* The nodes bound to a fallback driver that d now wins (reclaimable). */
typedef struct reclaim {
  const driver_t *d;
  binder_match_node_t *mn; /* scratch */
} reclaim_t;

static bool reclaim_pick(mgr_t *m, const topology_node_t *n, void *ctx) {
  reclaim_t *r = ctx;
  return reclaimable(m, n, r->d, r->mn);
}

uint32_t control__reclaim_from_fallbacks(mgr_t *m, const driver_t *d, const char *reason,
                                         mgr_control_t *c) {
  if (d->m.fallback || d->disabled || d->composite)
    return 0;
  reclaim_t r = {.d = d, .mn = malloc(sizeof *r.mn)};
  node_ref_t *refs = NULL;
  size_t count = r.mn != NULL ? nodes_where(m, reclaim_pick, &r, &refs) : 0;
  free(r.mn);
  uint32_t nodes = 0;
  for (size_t i = 0; i < count; i++) { /* parents first: a child may go with its parent */
    topology_node_t *n = node_refs__node(m, &refs[i].ref);
    if (n == NULL || n->state != dfnet_v1_NodeState_BOUND)
      continue;
    DFNET_LOGI("binder", n->moniker, "%s: %s matches, its fallback driver is stopped", reason,
               d->url);
    if (c != NULL)
      control__touch(c, n);
    binder__stop_then_bind(m, n, NULL, false);
    binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, reason);
    nodes++;
  }
  refs_free(refs, count);
  return nodes;
}

uint32_t control__touch_starting(mgr_t *m, const driver_t *d, mgr_control_t *c) {
  uint32_t nodes = 0;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (!n->starting || n->driver_id != d->id)
      continue;
    control__touch(c, n);
    nodes++;
  }
  control__set_counts(c, 0, nodes);
  return nodes;
}
