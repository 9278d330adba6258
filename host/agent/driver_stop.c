/* Stopping drivers on this host (docs/architecture.md "Host session protocol", steps 4-6;
 * docs/spec/dfv2.md "Driver hosts and lifecycle"): the manager's DriverStop, the stop order
 * (a driver stops only after every driver below it has), the DriverStops answered once a
 * driver stopped on our own has stopped, and the stop of every driver at shutdown. The
 * starts and what the driver hosts say back are drivers.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "host/agent/agent.h"
#include "lib/log.h"

#define DRV_SUBSYS "host"

/* Send DriverStop for a node's driver to its host; node_uid 0: nobody to tell. */
dfnet_status_t agent__driver_send_stop(agent_t *a, uint64_t host_id, const char *moniker,
                                       const char *url, uint64_t node_uid, uint64_t *op_id) {
  agent_op_t *op = agent__op_new(a, AGENT_OP_STOP, host_id);
  if (op == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  op->node_uid = node_uid;
  op->moniker = strdup(moniker); /* NULL on no memory: the stop then orders nothing */
  dfnet_envelope_t *env = a->scratch;
  dfnet_envelope_init(env);
  env->pb.id = op->local_id;
  env->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
  agent__strlcpy(env->pb.msg.driver_stop.node, moniker, sizeof env->pb.msg.driver_stop.node);
  agent__strlcpy(env->pb.msg.driver_stop.url, url ? url : "", sizeof env->pb.msg.driver_stop.url);
  env->pb.msg.driver_stop.driver_host_id = host_id;
  dfnet_status_t st = dfnet_supervisor_send(a->sup, host_id, env);
  if (st != DFNET_STATUS_OK) {
    agent__op_free(a, op);
    return st;
  }
  if (op_id != NULL)
    *op_id = op->local_id;
  return DFNET_STATUS_OK;
}

/* Stop n's driver while its start is under way in its driver host (n STARTING), without
 * waiting for the start's answer: an asynchronous start may take start_timeout_ms (30 s by
 * default) to end by itself. The driver host stops it at once (a `start` still running: right
 * behind it) and answers the DriverStart CANCELLED, which then changes nothing here: the
 * start's op is marked `stopping`, and the stop's answer ends the driver (stop_answered).
 * node_uid 0: an orphaned driver, nobody to tell. Returns OK (*op_id, may be NULL, gets the
 * stop's op), NOT_FOUND (no start op: the driver host has not been asked to start it), or
 * agent__driver_send_stop's error; nothing changed then. */
static dfnet_status_t stop_starting(agent_t *a, agent_node_t *n, uint64_t node_uid,
                                    uint64_t *op_id) {
  agent_op_t *start = agent__op_find(a, n->op_local_id);
  if (start == NULL || start->kind != AGENT_OP_START)
    return DFNET_STATUS_NOT_FOUND;
  dfnet_status_t st =
      agent__driver_send_stop(a, n->driver_host_id, n->moniker, n->driver_url, node_uid, op_id);
  if (st == DFNET_STATUS_OK) {
    start->node_uid = 0;
    start->stopping = true;
  }
  return st;
}

/* ---- DriverStop ----------------------------------------------------------------------- */

static bool stop_answer_defer(agent_t *a, dfnet_session_id_t session, uint64_t id,
                              const char *moniker);

void agent__handle_driver_stop(agent_t *a, dfnet_session_id_t session,
                               const dfnet_envelope_t *env) {
  const dfnet_v1_DriverStop *m = &env->pb.msg.driver_stop;
  uint64_t id = env->pb.id;
  agent_node_t *n = agent__node_find(a, m->node);
  if (n == NULL) {
    /* Dropped here already (its parent's driver stopped or crashed): answered once the
     * driver it had has stopped, so that nothing starts there before. */
    if (!stop_answer_defer(a, session, id, m->node))
      agent__reply_status(a, session, id, DFNET_STATUS_OK, "no node %s: nothing runs there",
                          m->node);
    return;
  }
  switch (n->driver) {
  case AGENT_DRIVER_NONE:
  case AGENT_DRIVER_DEAD:
    agent__driver_clear(n);
    if (!stop_answer_defer(a, session, id, n->moniker))
      agent__reply_status(a, session, id, DFNET_STATUS_OK, "no driver runs on %s", n->moniker);
    return;
  case AGENT_DRIVER_FETCHING: {
    dfnet_session_id_t s = n->req_session;
    uint64_t sid = n->req_id;
    n->req_session = 0;
    agent__driver_clear(n);
    if (s != 0)
      agent__reply_status(a, s, sid, DFNET_STATUS_CANCELLED, "stopped before it started");
    agent__reply_status(a, session, id, DFNET_STATUS_OK, NULL);
    return;
  }
  case AGENT_DRIVER_STARTING: {
    /* Stopped now, its start answered CANCELLED; the stop once the driver host stopped it. */
    uint64_t op_id = 0;
    if (stop_starting(a, n, n->uid, &op_id) == DFNET_STATUS_OK) {
      DFNET_LOGI(DRV_SUBSYS, n->moniker, "DriverStop %s (its start is under way)",
                 n->driver_url ? n->driver_url : "");
      dfnet_session_id_t s = n->req_session;
      uint64_t sid = n->req_id;
      if (s != 0)
        agent__reply_status(a, s, sid, DFNET_STATUS_CANCELLED, "stopped while starting");
      n->driver = AGENT_DRIVER_STOPPING;
      n->op_local_id = op_id;
      n->req_session = session;
      n->req_id = id;
      return;
    }
    /* Without a stop sent: stopped as soon as the driver host has started it
     * (start_answered). */
    n->stop_after_start = true;
    n->stop_session = session;
    n->stop_id = id;
    return;
  }
  case AGENT_DRIVER_STOPPING:
    n->req_session = session;
    n->req_id = id;
    return;
  case AGENT_DRIVER_RUNNING:
    break;
  }
  if (m->driver_host_id != 0 && m->driver_host_id != n->driver_host_id)
    DFNET_LOGW(DRV_SUBSYS, n->moniker, "DriverStop names driver host %llu, it runs in %llu",
               (unsigned long long)m->driver_host_id, (unsigned long long)n->driver_host_id);
  uint64_t op_id = 0;
  dfnet_status_t st =
      agent__driver_send_stop(a, n->driver_host_id, n->moniker, n->driver_url, n->uid, &op_id);
  if (st != DFNET_STATUS_OK) {
    /* The driver host is going or gone: its exit will be reported. */
    agent__reply_status(a, session, id, DFNET_STATUS_OK, "driver host already gone");
    return;
  }
  DFNET_LOGI(DRV_SUBSYS, n->moniker, "DriverStop %s", n->driver_url ? n->driver_url : "");
  n->driver = AGENT_DRIVER_STOPPING;
  n->op_local_id = op_id;
  n->req_session = session;
  n->req_id = id;
}

/* ---- stop order: children first -------------------------------------------------------
 *
 * A driver is stopped only after every driver below it has stopped (docs/spec/dfv2.md
 * "Driver hosts and lifecycle": a child's driver may use its parent's offers until its
 * stop hook has returned). The manager orders its DriverStops so; when the agent stops
 * drivers on its own (hardware unplugged, a node removed) it keeps the same order: a
 * driver with a start or a stop still outstanding below it waits here. */

struct agent_stop_wait {
  uint64_t host_id;
  char *moniker;
  char *url;
  struct agent_stop_wait *next;
};

/* True while a driver strictly below `moniker` is starting or stopping, or waits to stop. */
static bool stop_blocked(agent_t *a, const char *moniker) {
  for (agent_op_t *op = a->ops_by_local; op != NULL; op = op->hh_local.next)
    if ((op->kind == AGENT_OP_START || op->kind == AGENT_OP_STOP) && op->moniker != NULL &&
        agent__moniker_within(op->moniker, moniker) && strcmp(op->moniker, moniker) != 0)
      return true;
  for (struct agent_stop_wait *w = a->stop_waits; w != NULL; w = w->next)
    if (agent__moniker_within(w->moniker, moniker) && strcmp(w->moniker, moniker) != 0)
      return true;
  return false;
}

/* Send the stop of a driver whose node is gone; when its driver host is gone too, the
 * driver went with it. */
static void stop_orphan(agent_t *a, uint64_t host_id, const char *moniker, const char *url) {
  if (agent__driver_send_stop(a, host_id, moniker, url, 0, NULL) == DFNET_STATUS_OK)
    return;
  agent_dh_t *dh = agent__dh_find(a, host_id);
  if (dh != NULL && dh->drivers > 0)
    dh->drivers--;
  agent__dh_release(a, dh);
}

static void stop_wait_free(struct agent_stop_wait *w) {
  free(w->moniker);
  free(w->url);
  free(w);
}

/* Send every waiting stop that nothing below blocks any more. One pass does: a stop sent
 * here leaves an op with the same moniker, so whatever it blocked stays blocked. */
void agent__stop_waits_progress(agent_t *a) {
  struct agent_stop_wait *w, *tmp;
  LL_FOREACH_SAFE(a->stop_waits, w, tmp) {
    if (stop_blocked(a, w->moniker))
      continue;
    LL_DELETE(a->stop_waits, w);
    DFNET_LOGI(DRV_SUBSYS, w->moniker, "the drivers below have stopped: stopping its driver");
    stop_orphan(a, w->host_id, w->moniker, w->url);
    stop_wait_free(w);
  }
}

/* Forget the waiting stops of a driver host that has gone (its drivers went with it). */
void agent__stop_waits_forget_host(agent_t *a, uint64_t host_id) {
  struct agent_stop_wait *w, *tmp;
  LL_FOREACH_SAFE(a->stop_waits, w, tmp) {
    if (w->host_id == host_id) {
      LL_DELETE(a->stop_waits, w);
      stop_wait_free(w);
    }
  }
}

/* ---- DriverStops for drivers stopped on our own ---------------------------------------
 *
 * When a driver's parent stops or crashes, or its node goes, the agent drops the node and
 * stops its driver on its own (orphaned: an op without node, or a stop waiting above). The
 * manager asks for that stop too (it removes the children bottom-up before what follows: a
 * restart, a crash restart); its DriverStop then finds no node, and is answered only once
 * the orphaned stop is done, so that the manager never starts the node's driver again while
 * the previous one still runs. */

struct agent_stop_answer {
  char *moniker;
  dfnet_session_id_t session;
  uint64_t id;
  struct agent_stop_answer *next;
};

/* Is a driver of node `moniker` still stopping (or to be stopped once started) without its
 * node record? */
static bool orphan_stopping(agent_t *a, const char *moniker) {
  for (agent_op_t *op = a->ops_by_local; op != NULL; op = op->hh_local.next)
    if ((op->kind == AGENT_OP_STOP || op->kind == AGENT_OP_START) && op->node_uid == 0 &&
        op->moniker != NULL && strcmp(op->moniker, moniker) == 0)
      return true;
  for (struct agent_stop_wait *w = a->stop_waits; w != NULL; w = w->next)
    if (strcmp(w->moniker, moniker) == 0)
      return true;
  return false;
}

/* Keep the DriverStop (session, id) of `moniker` for when its orphaned driver has stopped;
 * false when none is stopping (answer now) or without memory (answered now, as before). */
static bool stop_answer_defer(agent_t *a, dfnet_session_id_t session, uint64_t id,
                              const char *moniker) {
  if (!orphan_stopping(a, moniker))
    return false;
  struct agent_stop_answer *w = calloc(1, sizeof *w);
  if (w == NULL || (w->moniker = strdup(moniker)) == NULL) {
    free(w);
    return false;
  }
  w->session = session;
  w->id = id;
  LL_PREPEND(a->stop_answers, w);
  DFNET_LOGI(DRV_SUBSYS, moniker,
             "DriverStop: its driver is stopping already; answered once it "
             "has stopped");
  return true;
}

static void stop_answer_free(struct agent_stop_answer *w) {
  free(w->moniker);
  free(w);
}

/* Answer the DriverStops whose orphaned driver has stopped. */
void agent__stop_answers_progress(agent_t *a) {
  struct agent_stop_answer *w, *tmp;
  LL_FOREACH_SAFE(a->stop_answers, w, tmp) {
    if (orphan_stopping(a, w->moniker))
      continue;
    LL_DELETE(a->stop_answers, w);
    agent__reply_status(a, w->session, w->id, DFNET_STATUS_OK, "its driver has stopped");
    stop_answer_free(w);
  }
}

/* Stop the running driver of node n, whose node is going: now, or once the drivers below
 * it have stopped. */
static void stop_in_order(agent_t *a, agent_node_t *n) {
  if (!stop_blocked(a, n->moniker)) {
    DFNET_LOGI(DRV_SUBSYS, n->moniker, "node gone: stopping its driver");
    stop_orphan(a, n->driver_host_id, n->moniker, n->driver_url);
    return;
  }
  struct agent_stop_wait *w = calloc(1, sizeof *w);
  if (w != NULL) {
    w->host_id = n->driver_host_id;
    w->moniker = strdup(n->moniker);
    w->url = n->driver_url != NULL ? strdup(n->driver_url) : NULL;
  }
  if (w == NULL || w->moniker == NULL || (n->driver_url != NULL && w->url == NULL)) {
    if (w != NULL)
      stop_wait_free(w);
    DFNET_LOGE(DRV_SUBSYS, n->moniker, "out of memory ordering stops: stopping its driver now");
    stop_orphan(a, n->driver_host_id, n->moniker, n->driver_url);
    return;
  }
  DFNET_LOGI(DRV_SUBSYS, n->moniker, "node gone: its driver stops once the drivers below have");
  LL_PREPEND(a->stop_waits, w);
}

void agent__driver_stop_local(agent_t *a, agent_node_t *n) {
  switch (n->driver) {
  case AGENT_DRIVER_FETCHING:
  case AGENT_DRIVER_DEAD:
  case AGENT_DRIVER_NONE:
    agent__driver_clear(n);
    return;
  case AGENT_DRIVER_STARTING: {
    /* orphaned: stopped now, or else as soon as it has started */
    if (stop_starting(a, n, 0, NULL) != DFNET_STATUS_OK) {
      agent_op_t *op = agent__op_find(a, n->op_local_id);
      if (op != NULL)
        op->node_uid = 0;
    }
    if (n->stop_after_start && n->stop_session != 0)
      agent__reply_status(a, n->stop_session, n->stop_id, DFNET_STATUS_OK,
                          "node removed: its driver is stopped");
    agent__driver_clear(n);
    return;
  }
  case AGENT_DRIVER_STOPPING: {
    agent_op_t *op = agent__op_find(a, n->op_local_id);
    if (op != NULL)
      op->node_uid = 0;
    agent__driver_clear(n);
    return;
  }
  case AGENT_DRIVER_RUNNING:
    break;
  }
  stop_in_order(a, n);
  agent__driver_clear(n);
}

/* The number of '.' in a moniker: its depth in the tree. */
static size_t moniker_depth(const char *moniker) {
  size_t d = 0;
  for (; *moniker != '\0'; moniker++)
    d += *moniker == '.';
  return d;
}

static int node_deeper_first(const void *x, const void *y) {
  size_t dx = moniker_depth((*(agent_node_t *const *)x)->moniker);
  size_t dy = moniker_depth((*(agent_node_t *const *)y)->moniker);
  return dx > dy ? -1 : dx < dy;
}

bool agent__drivers_close_all(agent_t *a) {
  /* Every driver stops in the order of the stop order above, the deepest first: a parent's
   * DriverStop waits for those below it (a child's stop may still use its parent's offers).
   * Closing every driver host at once would stop a parent while its children still run. */
  size_t count = 0;
  for (agent_node_t *n = a->nodes_head; n != NULL; n = n->next)
    count += n->driver != AGENT_DRIVER_NONE;
  agent_node_t **order = count > 0 ? malloc(count * sizeof *order) : NULL;
  if (order != NULL) {
    size_t k = 0;
    for (agent_node_t *n = a->nodes_head; n != NULL && k < count; n = n->next)
      if (n->driver != AGENT_DRIVER_NONE)
        order[k++] = n;
    qsort(order, k, sizeof *order, node_deeper_first);
    for (size_t i = 0; i < k; i++)
      agent__driver_stop_local(a, order[i]); /* a driver host left without driver closes */
    free(order);
  } else if (count > 0) {
    DFNET_LOGE(DRV_SUBSYS, a->host_name,
               "out of memory ordering the stops: closing every "
               "driver host at once");
  }
  /* What has no driver (left) to stop closes now; without memory, everything does (each
   * driver host stops its drivers itself). */
  for (agent_dh_t *d = a->dhs; d != NULL; d = d->next) {
    if (!d->closing && (d->drivers == 0 || (order == NULL && count > 0))) {
      d->closing = true;
      dfnet_supervisor_close(a->sup, d->id);
    }
  }
  return a->dhs == NULL;
}

void agent__drivers_free(agent_t *a) {
  struct agent_stop_answer *answer, *answer_tmp;
  LL_FOREACH_SAFE(a->stop_answers, answer, answer_tmp)
    stop_answer_free(answer);
  a->stop_answers = NULL;
  struct agent_stop_wait *wait, *wait_tmp;
  LL_FOREACH_SAFE(a->stop_waits, wait, wait_tmp)
    stop_wait_free(wait);
  a->stop_waits = NULL;
  agent_dh_t *d, *d_tmp;
  LL_FOREACH_SAFE(a->dhs, d, d_tmp)
    free(d);
  a->dhs = NULL;
}
