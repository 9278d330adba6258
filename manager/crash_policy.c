/* dfnet-manager: what follows a driver host's exit (docs/spec/dfv2.md "Driver hosts and
 * lifecycle"), and removing a subtree.
 *
 * A node whose driver asks for it (host_restart_on_crash) is restarted after a backoff
 * (MGR_RESTART_BACKOFF_MS, doubled per crash, at most MGR_RESTART_BACKOFF_MAX_MS) and
 * quarantined at the MGR_CRASH_LIMIT-th crash within MGR_CRASH_WINDOW_MS; any other
 * node goes with its subtree, the drivers below it stopped first, and its host is told.
 * The children a crashed driver had go first either way (DFv2: a driver's children go with
 * it), their drivers stopped bottom-up; a restart's backoff begins only once those stops
 * are answered (a barrier record, mgr_pending_t.then), so that the driver started again,
 * which adds its children again, never meets the drivers of their previous instances.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

/* Pending records of this file (the numbers of binder.c's kinds are not reused). */
enum { PENDING_RESTART = 2 };

_Static_assert(pb_arraysize(topology_node_t, crash_ms) >= MGR_CRASH_LIMIT,
               "a node keeps the crashes of a window");

static unsigned backoff_ms(unsigned crashes) {
  uint32_t delay = MGR_RESTART_BACKOFF_MS << (crashes > 0 ? crashes - 1 : 0);
  return delay > MGR_RESTART_BACKOFF_MAX_MS ? MGR_RESTART_BACKOFF_MAX_MS : delay;
}

static void on_restart_timer(void *user) {
  mgr_pending_t *p = user;
  mgr_t *m = p->mgr;
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  driver_t *d = driver_index__get(&m->index, p->driver_id);
  if (n != NULL && n->id == p->node_id && d != NULL && !d->disabled &&
      n->state == dfnet_v1_NodeState_UNBOUND && !n->starting && !n->offline) {
    DFNET_LOGI("binder", n->moniker, "restarting %s after a driver host crash", d->url);
    binder__start(m, n, d);
  }
  pending__free(p);
}

/* Record a crash now; returns the crashes within the window. */
static unsigned record_crash(topology_node_t *n, uint64_t now) {
  unsigned kept = 0;
  uint64_t keep[MGR_CRASH_LIMIT];
  for (unsigned i = 0; i < n->crash_count; i++)
    if (now - n->crash_ms[i] < MGR_CRASH_WINDOW_MS)
      keep[kept++] = n->crash_ms[i];
  if (kept == MGR_CRASH_LIMIT) {
    memmove(keep, keep + 1, (MGR_CRASH_LIMIT - 1) * sizeof *keep);
    kept--;
  }
  keep[kept++] = now;
  memcpy(n->crash_ms, keep, kept * sizeof *keep);
  n->crash_count = (uint8_t)kept;
  return kept;
}

/* The barrier of a crash restart: the stops of the crashed driver's children are answered;
 * the backoff begins (p becomes its timer's record). */
static void restart_after_children(mgr_t *m, mgr_pending_t *p) {
  p->then = NULL;
  topology_node_t *n = topology__find(&m->topo, p->moniker);
  if (n == NULL || n->id != p->node_id || m->stopping) {
    pending__free(p); /* gone meanwhile */
    return;
  }
  n->stopping = false; /* its driver's stop (the crash, then its children's) is over */
  unsigned delay = backoff_ms(n->crash_count);
  DFNET_LOGD("binder", n->moniker, "its children's drivers have stopped: restart in %u ms", delay);
  if (pending__timer(p, delay, on_restart_timer) != DFNET_STATUS_OK)
    pending__free(p);
}

/* n's driver crashed `crashes` times within the window: quarantine it, or start it again
 * after the backoff, which begins once the stops under barrier `p` (its children's drivers)
 * are answered. `why` is the reason n is unbound meanwhile. Returns the barrier (the
 * caller removes the children under it, then releases it), or NULL (quarantined, or no
 * memory: no restart). */
static mgr_pending_t *quarantine_or_restart(mgr_t *m, topology_node_t *n, driver_t *d,
                                            unsigned crashes, char *why, size_t why_size) {
  if (crashes >= MGR_CRASH_LIMIT) {
    n->state = dfnet_v1_NodeState_QUARANTINED;
    topology__fmt(why, why_size, "quarantined: driver %s crashed %u times within %u s", d->url,
                  crashes, MGR_CRASH_WINDOW_MS / 1000);
    topology__set_unbound(n, DFNET_STATUS_FAILED_PRECONDITION, why);
    DFNET_LOGW("binder", n->moniker, "%s", why);
    metrics__driver_crash(m, d->url, true);
    return NULL;
  }
  mgr_pending_t *p = pending__new(m, PENDING_RESTART);
  if (p == NULL)
    return NULL;
  p->node_id = n->id;
  p->driver_id = d->id;
  topology__fmt(p->moniker, sizeof p->moniker, "%s", n->moniker);
  p->waiting = 1; /* the builder's count */
  p->then = restart_after_children;
  DFNET_LOGW("binder", n->moniker, "%s; restarting %s in %u ms (crash %u)", why, d->url,
             backoff_ms(crashes), crashes);
  return p;
}

/* n and its subtree go (descendants' drivers stopped first, child before parent); its
 * host is told. */
static void remove_crashed(mgr_t *m, mgr_host_t *h, topology_node_t *n, const char *why) {
  DFNET_LOGW("binder", n->moniker, "%s; removing the node and its subtree", why);
  binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, why);
  char moniker[TOPOLOGY_MONIKER_MAX + 1];
  topology__fmt(moniker, sizeof moniker, "%s", n->moniker);
  binder__remove_subtree(m, n, true, why);
  binder__forget(m, h->id, moniker, why);
}

static void crash_one(mgr_t *m, mgr_host_t *h, topology_node_t *n, const char *reason) {
  driver_t *d = driver_index__get(&m->index, n->driver_id);
  char why[300];
  topology__fmt(why, sizeof why, "driver host exited: %s", reason);
  streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_HOST_EXITED, n->moniker, reason,
                 DFNET_STATUS_UNAVAILABLE);
  metrics__driver_crash(m, d ? d->url : NULL, false);
  if (d == NULL || !d->m.host_restart_on_crash) {
    remove_crashed(m, h, n, why);
    return;
  }
  unsigned crashes = record_crash(n, dfnet_transport_now_ms());
  binder__unbind(m, n, DFNET_STATUS_UNAVAILABLE, why);
  mgr_pending_t *restart = quarantine_or_restart(m, n, d, crashes, why, sizeof why);
  /* Its children were its driver's (DFv2): they go, the drivers below stopped bottom-up,
   * and the driver adds them again when it is back, once those stops are answered; until
   * then n is `stopping`, as for any stop (no driver starts on it, no NodeAdd under it). */
  if (restart != NULL)
    n->stopping = true;
  char gone[TOPOLOGY_MONIKER_MAX + 64];
  topology__fmt(gone, sizeof gone, "the driver of %s crashed", n->moniker);
  binder__remove_children(m, n, restart, gone);
  binder__stop_release(m, restart);
}

void binder__driver_host_exit(mgr_t *m, mgr_host_t *h, const dfnet_v1_DriverHostExit *e) {
  /* Collect first (monikers + ids): handling one may remove others. As many as the exit
   * names to start with; more when its driver host ran more. */
  size_t cap = pb_arraysize(dfnet_v1_DriverHostExit, nodes), count = 0;
  struct victim {
    char moniker[TOPOLOGY_MONIKER_MAX + 1];
    uint64_t id;
  } *v = malloc(cap * sizeof *v);
  if (v == NULL)
    return;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    bool listed = false;
    for (pb_size_t i = 0; i < e->nodes_count && !listed; i++)
      listed = strcmp(e->nodes[i], n->moniker) == 0;
    if (n->host_id != h->id || (n->state != dfnet_v1_NodeState_BOUND && !n->starting))
      continue;
    if (!listed && (e->driver_host_id == 0 || n->driver_host_id != e->driver_host_id))
      continue;
    if (count == cap) {
      struct victim *p = realloc(v, 2 * cap * sizeof *v);
      if (p == NULL)
        break;
      v = p;
      cap *= 2;
    }
    topology__fmt(v[count].moniker, sizeof v[count].moniker, "%s", n->moniker);
    v[count++].id = n->id;
  }
  char reason[200];
  topology__fmt(reason, sizeof reason, "driver host %llu (pid %u) %s",
                (unsigned long long)e->driver_host_id, (unsigned)e->pid,
                e->reason[0] ? e->reason : "exited");
  for (size_t i = 0; i < count; i++) {
    n = topology__find(&m->topo, v[i].moniker);
    if (n != NULL && n->id == v[i].id && (n->state == dfnet_v1_NodeState_BOUND || n->starting))
      crash_one(m, h, n, reason);
  }
  free(v);
}

void binder__remove_tree(mgr_t *m, topology_node_t *n, mgr_pending_t *up, bool stop_drivers,
                         const char *reason) {
  /* n's stop (if it has a driver to stop) waits for the stops below it; without one, the
   * stops below are waited for by the stop above n. */
  mgr_pending_t *p = stop_drivers || !n->offline ? binder__stop_begin(m, n, up) : NULL;
  while (n->child_count > 0)
    binder__remove_tree(m, n->children[n->child_count - 1], p != NULL ? p : up, stop_drivers,
                        reason);
  if (n->composite && !n->offline)
    binder__forget_after(m, n, p);
  binder__stop_release(m, p);
  if (n->state == dfnet_v1_NodeState_BOUND) {
    driver_t *d = driver_index__get(&m->index, n->driver_id);
    if (d != NULL && d->device_count > 0)
      d->device_count--;
  }
  binder__node_removed_from_composites(m, n);
  mgr_host_t *h = hosts__get(m, n->host_id);
  if (h != NULL && h->node_count > 0 && !n->test)
    h->node_count--;
  DFNET_LOGD("binder", n->moniker, "removed (%s)", reason ? reason : "");
  if (!n->hidden) /* a hidden node was never announced to watchers */
    streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_REMOVED, n->moniker, reason, DFNET_STATUS_OK);
  topology__remove(&m->topo, n);
}

void binder__remove_subtree(mgr_t *m, topology_node_t *n, bool stop_drivers, const char *reason) {
  binder__remove_tree(m, n, NULL, stop_drivers, reason);
}
