/* Drivers on this host (docs/architecture.md "Host session protocol", steps 4-6;
 * docs/spec/dfv2.md "Driver hosts and lifecycle"): DriverStart (package from the cache or the
 * manager, then a new driver host or the one to colocate in), DriverStop, and what the
 * driver hosts say back through the supervisor (host/supervisor/supervisor.h).
 *
 * A node's driver goes NONE -> FETCHING -> STARTING -> RUNNING -> STOPPING -> NONE, or
 * RUNNING -> DEAD when its driver host dies (calls then fail UNAVAILABLE until the manager
 * starts the driver again or stops it). A driver host with no driver left is closed. The
 * exit of a driver host we did not close is a crash: DriverHostExit to the manager (kept
 * for after the reconnect when disconnected), the nodes its drivers added are dropped
 * (the manager applies the crash policy to their subtree), and the agent carries on.
 *
 * A composite node is the manager's: it puts one on this host when the composite's primary
 * parent is one of our nodes (its other parents may be anywhere in the fleet). The first
 * DriverStart for it records it in the node table (composite_node), so that its driver
 * starts, stops and is re-announced with the others after a reconnect; the manager's
 * NodeRemove, or its primary parent going, drops it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "host/agent/agent.h"
#include "lib/log.h"

#define DRV_SUBSYS "host"

void agent__pending_start_free(agent_pending_start_t *ps) {
  if (ps == NULL)
    return;
  free(ps->program);
  free(ps);
}

agent_dh_t *agent__dh_find(agent_t *a, uint64_t id) {
  agent_dh_t *d;
  LL_SEARCH_SCALAR(a->dhs, d, id, id);
  return d;
}

static void dh_remove(agent_t *a, uint64_t id) {
  agent_dh_t *d = agent__dh_find(a, id);
  if (d != NULL) {
    LL_DELETE(a->dhs, d);
    free(d);
  }
}

/* Close a driver host that has no driver left. */
static void dh_release(agent_t *a, agent_dh_t *dh) {
  if (dh == NULL || dh->drivers > 0 || dh->closing)
    return;
  dh->closing = true;
  DFNET_LOGI(DRV_SUBSYS, a->host_name, "driver host %llu (pid %ld) has no driver left: closing",
             (unsigned long long)dh->id, (long)dh->pid);
  dfnet_supervisor_close(a->sup, dh->id);
}

static bool digest_empty(const uint8_t *d) {
  for (size_t i = 0; i < DFNET_PACKAGE_DIGEST_SIZE; i++)
    if (d[i] != 0)
      return false;
  return true;
}

static void set_url(agent_node_t *n, const char *url) {
  free(n->driver_url);
  n->driver_url = strdup(url);
}

static void clear_driver(agent_node_t *n) {
  n->driver = AGENT_DRIVER_NONE;
  n->suspended = false;
  n->stop_after_start = false;
  n->driver_host_id = 0;
  n->op_local_id = 0;
  free(n->driver_url);
  n->driver_url = NULL;
  agent__offered_clear(n);
  free(n->resources);
  n->resources = NULL;
  agent__pending_start_free(n->pending_start);
  n->pending_start = NULL;
}

/* The start of n's driver failed: answer whoever asked, forget it. Logged once, here, with
 * the node (agent__reply_status would log the answer a second time). */
static void fail_start(agent_t *a, agent_node_t *n, dfnet_status_t code, const char *message) {
  DFNET_LOGW(DRV_SUBSYS, n->moniker, "driver %s not started: %s: %s",
             n->driver_url ? n->driver_url : "?", dfnet_status_str(code), message);
  dfnet_session_id_t s = n->req_session;
  uint64_t id = n->req_id;
  n->req_session = 0;
  clear_driver(n);
  if (s == 0 || s != a->session)
    return; /* that session is gone: its requests died with it */
  dfnet_status_t st = dfnet_transport_send_status(a->t, s, id, code, message);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(DRV_SUBSYS, n->moniker, "cannot answer DriverStart: %s", dfnet_status_str(st));
}

static void reply_running(agent_t *a, agent_node_t *n) {
  dfnet_session_id_t s = n->req_session;
  n->req_session = 0;
  if (s == 0 || s != a->session)
    return;
  dfnet_envelope_t *env = a->scratch;
  dfnet_envelope_init(env);
  env->pb.id = n->req_id;
  env->pb.which_msg = dfnet_v1_Envelope_driver_status_tag;
  dfnet_v1_DriverStatus *m = &env->pb.msg.driver_status;
  agent__strlcpy(m->node, n->moniker, sizeof m->node);
  agent__strlcpy(m->url, n->driver_url ? n->driver_url : "", sizeof m->url);
  m->driver_host_id = n->driver_host_id;
  m->state = dfnet_v1_DriverState_RUNNING;
  pid_t pid = dfnet_supervisor_pid(a->sup, n->driver_host_id);
  m->pid = pid > 0 ? (uint32_t)pid : 0;
  dfnet_status_t st = dfnet_transport_send(a->t, s, env, 0);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(DRV_SUBSYS, n->moniker, "cannot answer DriverStart: %s", dfnet_status_str(st));
}

/* Send DriverStop for a node's driver to its host; node_uid 0: nobody to tell. */
static dfnet_status_t send_stop(agent_t *a, uint64_t host_id, const char *moniker, const char *url,
                                uint64_t node_uid, uint64_t *op_id) {
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
 * send_stop's error; nothing changed then. */
static dfnet_status_t stop_starting(agent_t *a, agent_node_t *n, uint64_t node_uid,
                                    uint64_t *op_id) {
  agent_op_t *start = agent__op_find(a, n->op_local_id);
  if (start == NULL || start->kind != AGENT_OP_START)
    return DFNET_STATUS_NOT_FOUND;
  dfnet_status_t st = send_stop(a, n->driver_host_id, n->moniker, n->driver_url, node_uid, op_id);
  if (st == DFNET_STATUS_OK) {
    start->node_uid = 0;
    start->stopping = true;
  }
  return st;
}

/* origin_host of a composite node's record: no driver host's id (they count up from 1).
 * Like a driver's child it is dropped with the driver children of an ancestor (its
 * primary parent going) and on the manager's NodeRemove; no driver host may remove it. */
#define COMPOSITE_ORIGIN UINT64_MAX

/* The composite node `moniker` that the manager starts a driver on: recorded when its
 * parent (the composite's primary parent, whose moniker it extends) is one of our nodes.
 * NULL when it is not (or there is no memory: logged). */
static agent_node_t *composite_node(agent_t *a, const char *moniker) {
  const char *dot = strrchr(moniker, '.');
  char parent[AGENT_MONIKER_MAX];
  if (dot == NULL || (size_t)(dot - moniker) >= sizeof parent)
    return NULL;
  memcpy(parent, moniker, (size_t)(dot - moniker));
  parent[dot - moniker] = '\0';
  if (agent__node_find(a, parent) == NULL)
    return NULL;
  dfnet_v1_NodeAdd *add = calloc(1, sizeof *add); /* ~28 KiB: not on the stack */
  if (add == NULL) {
    DFNET_LOGE(DRV_SUBSYS, moniker, "out of memory recording a composite node");
    return NULL;
  }
  agent__strlcpy(add->parent, parent, sizeof add->parent);
  agent__strlcpy(add->name, dot + 1, sizeof add->name);
  agent_node_t *n = NULL;
  dfnet_status_t st = agent__node_insert(a, add, COMPOSITE_ORIGIN, &n);
  free(add);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(DRV_SUBSYS, moniker, "composite node not recorded: %s", dfnet_status_str(st));
    return NULL;
  }
  DFNET_LOGI(DRV_SUBSYS, moniker, "composite node recorded (its primary parent %s is ours)",
             parent);
  return n;
}

/* ---- DriverStart ---------------------------------------------------------------------- */

/* The driver host n's driver starts in: a new one (ps->msg.driver_host_id 0), confined with
 * `rights` (its first driver's), or the running one to colocate in. On error it has failed
 * the start (fail_start) and returns NULL; *fresh says whether it was spawned for it. */
static agent_dh_t *dh_for_start(agent_t *a, agent_node_t *n, uint32_t rights, bool *fresh) {
  uint64_t host_id = n->pending_start->msg.driver_host_id;
  *fresh = false;
  if (host_id != 0) {
    agent_dh_t *dh = agent__dh_find(a, host_id);
    if (dh == NULL || dh->closing) {
      char msg[96];
      snprintf(msg, sizeof msg, "driver host %llu is not running", (unsigned long long)host_id);
      fail_start(a, n, DFNET_STATUS_FAILED_PRECONDITION, msg);
      return NULL;
    }
    return dh;
  }
  pid_t pid = -1;
  dfnet_status_t st = dfnet_supervisor_spawn(a->sup, &host_id, &pid);
  if (st != DFNET_STATUS_OK) {
    fail_start(a, n, st, "cannot spawn a driver host");
    return NULL;
  }
  agent_dh_t *dh = calloc(1, sizeof *dh);
  if (dh == NULL) {
    dfnet_supervisor_close(a->sup, host_id);
    fail_start(a, n, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  dh->id = host_id;
  dh->pid = pid;
  dh->rights = rights;
  LL_PREPEND(a->dhs, dh);
  *fresh = true;
  DFNET_LOGI(DRV_SUBSYS, n->moniker, "driver host %llu spawned (pid %ld)",
             (unsigned long long)host_id, (long)pid);
  return dh;
}

/* Start n's driver from the package unpacked in `dir`: its rights checked and its resources
 * opened (grants.c) before anything is spawned, then DriverStart to its driver host with the
 * descriptors. A failure is logged once and kept as the node's reason (fail_start). */
static void launch(agent_t *a, agent_node_t *n, const char *dir) {
  agent_pending_start_t *ps = n->pending_start;
  bool fresh = false;
  uint32_t rights = 0;
  dfnet_resource_set_t res;
  char why[600];
  dfnet_status_t st = agent__rights_check(a, ps, &rights, why, sizeof why);
  if (st == DFNET_STATUS_OK)
    st = agent__resources_open(a, n, ps, &res, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fail_start(a, n, st, why);
    return;
  }
  agent_dh_t *dh = dh_for_start(a, n, rights, &fresh);
  if (dh == NULL) {
    dfnet_resources_close(&res);
    return;
  }
  uint64_t host_id = dh->id;
  agent_op_t *op = agent__op_new(a, AGENT_OP_START, host_id);
  if (op == NULL) {
    dfnet_resources_close(&res);
    fail_start(a, n, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    dh_release(a, dh);
    return;
  }
  op->node_uid = n->uid;
  op->fresh_host = fresh;
  op->moniker = strdup(n->moniker);
  dfnet_envelope_t *env = a->scratch;
  dfnet_envelope_init(env);
  env->pb.id = op->local_id;
  env->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  env->pb.msg.driver_start = ps->msg;
  env->pb.msg.driver_start.driver_host_id = host_id;
  agent__strlcpy(env->pb.msg.driver_start.local_path, dir,
                 sizeof env->pb.msg.driver_start.local_path);
  env->bulk.data = ps->program;
  env->bulk.size = ps->program_len;
  /* the descriptors travel with the frame, named in its order */
  int fds[DFNET_RESOURCES_MAX];
  dfnet_v1_DriverStart *m = &env->pb.msg.driver_start;
  for (size_t i = 0; i < res.count; i++) {
    agent__strlcpy(m->resources[i], res.items[i].name, sizeof m->resources[i]);
    fds[i] = res.items[i].fd;
    DFNET_LOGD(DRV_SUBSYS, n->moniker, "resource %s: %s", res.items[i].name, res.items[i].path);
  }
  m->resources_count = (pb_size_t)res.count;
  char *handed = agent__resources_text(&res);
  st = dfnet_supervisor_send_fds(a->sup, host_id, env, fds, res.count);
  dfnet_resources_close(&res); /* the driver host gets its own */
  if (st != DFNET_STATUS_OK) {
    free(handed);
    agent__op_free(a, op);
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED)
      fail_start(a, n, st, "out of descriptors handing the driver its resources");
    else
      fail_start(a, n, DFNET_STATUS_UNAVAILABLE, "the driver host is gone");
    dh_release(a, dh);
    return;
  }
  dh->drivers++;
  if (!agent__offered_set(n, &ps->msg))
    DFNET_LOGW(DRV_SUBSYS, n->moniker,
               "out of memory keeping its offers: its calls to the "
               "board's drivers will be refused");
  n->driver = AGENT_DRIVER_STARTING;
  n->driver_host_id = host_id;
  n->op_local_id = op->local_id;
  n->resources = handed;
  agent__pending_start_free(n->pending_start);
  n->pending_start = NULL;
}

static void on_fetched(agent_t *a, uint64_t node_uid, dfnet_status_t st, const char *dir,
                       const char *message) {
  agent_node_t *n = agent__node_find_uid(a, node_uid);
  if (n == NULL || n->driver != AGENT_DRIVER_FETCHING || n->pending_start == NULL)
    return; /* removed or stopped meanwhile */
  if (st != DFNET_STATUS_OK) {
    fail_start(a, n, st, message);
    return;
  }
  launch(a, n, dir);
}

void agent__handle_driver_start(agent_t *a, dfnet_session_id_t session,
                                const dfnet_envelope_t *env) {
  const dfnet_v1_DriverStart *m = &env->pb.msg.driver_start;
  uint64_t id = env->pb.id;
  bool complete = !digest_empty(m->package_digest) && m->binary[0] != '\0' && m->url[0] != '\0';
  agent_node_t *n = agent__node_find(a, m->node);
  if (n == NULL && complete)
    n = composite_node(a, m->node);
  if (n == NULL) {
    agent__reply_status(a, session, id, DFNET_STATUS_NOT_FOUND, "no node %s on this host", m->node);
    return;
  }
  if (!complete) {
    agent__reply_status(a, session, id, DFNET_STATUS_INVALID_ARGUMENT,
                        "DriverStart needs url, package_digest and binary");
    return;
  }
  switch (n->driver) {
  case AGENT_DRIVER_RUNNING:
    if (n->driver_url != NULL && strcmp(n->driver_url, m->url) == 0) {
      n->req_session = session; /* idempotent: it runs already */
      n->req_id = id;
      reply_running(a, n);
    } else {
      agent__reply_status(a, session, id, DFNET_STATUS_ALREADY_EXISTS, "%s already runs %s",
                          n->moniker, n->driver_url);
    }
    return;
  case AGENT_DRIVER_FETCHING:
  case AGENT_DRIVER_STARTING:
    if (n->driver_url != NULL && strcmp(n->driver_url, m->url) == 0 &&
        (n->req_session != session)) {
      n->req_session = session; /* a new session asks again: it gets the answer */
      n->req_id = id;
    } else {
      agent__reply_status(a, session, id, DFNET_STATUS_ALREADY_EXISTS,
                          "a driver is already starting on %s", n->moniker);
    }
    return;
  case AGENT_DRIVER_STOPPING:
    agent__reply_status(a, session, id, DFNET_STATUS_FAILED_PRECONDITION,
                        "the driver of %s is stopping", n->moniker);
    return;
  case AGENT_DRIVER_NONE:
  case AGENT_DRIVER_DEAD:
    break;
  }
  agent_pending_start_t *ps = calloc(1, sizeof *ps);
  if (ps == NULL || (env->bulk.size > 0 && (ps->program = malloc(env->bulk.size)) == NULL)) {
    free(ps);
    agent__reply_status(a, session, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ps->msg = *m;
  ps->msg.local_path[0] = '\0';
  ps->msg.resources_count = 0; /* the agent's to fill: what it opens (launch) */
  if (env->bulk.size > 0)
    memcpy(ps->program, env->bulk.data, env->bulk.size);
  ps->program_len = env->bulk.size;
  clear_driver(n);
  n->pending_start = ps;
  n->driver = AGENT_DRIVER_FETCHING;
  set_url(n, m->url);
  n->req_session = session;
  n->req_id = id;
  DFNET_LOGI(DRV_SUBSYS, n->moniker, "DriverStart %s (driver host %llu)", m->url,
             (unsigned long long)m->driver_host_id);

  char dir[4200];
  if (agent__cache_lookup(a, m->package_digest, m->binary, dir, sizeof dir) == DFNET_STATUS_OK) {
    DFNET_LOGD(DRV_SUBSYS, n->moniker, "package cached in %s", dir);
    launch(a, n, dir);
    return;
  }
  agent__cache_fetch(a, m->package_digest, n->uid, on_fetched);
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
    clear_driver(n);
    if (!stop_answer_defer(a, session, id, n->moniker))
      agent__reply_status(a, session, id, DFNET_STATUS_OK, "no driver runs on %s", n->moniker);
    return;
  case AGENT_DRIVER_FETCHING: {
    dfnet_session_id_t s = n->req_session;
    uint64_t sid = n->req_id;
    n->req_session = 0;
    clear_driver(n);
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
  dfnet_status_t st = send_stop(a, n->driver_host_id, n->moniker, n->driver_url, n->uid, &op_id);
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
  if (send_stop(a, host_id, moniker, url, 0, NULL) == DFNET_STATUS_OK)
    return;
  agent_dh_t *dh = agent__dh_find(a, host_id);
  if (dh != NULL && dh->drivers > 0)
    dh->drivers--;
  dh_release(a, dh);
}

static void stop_wait_free(struct agent_stop_wait *w) {
  free(w->moniker);
  free(w->url);
  free(w);
}

/* Send every waiting stop that nothing below blocks any more. One pass does: a stop sent
 * here leaves an op with the same moniker, so whatever it blocked stays blocked. */
static void stop_waits_progress(agent_t *a) {
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
static void stop_waits_forget_host(agent_t *a, uint64_t host_id) {
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
static void stop_answers_progress(agent_t *a) {
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
    clear_driver(n);
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
    clear_driver(n);
    return;
  }
  case AGENT_DRIVER_STOPPING: {
    agent_op_t *op = agent__op_find(a, n->op_local_id);
    if (op != NULL)
      op->node_uid = 0;
    clear_driver(n);
    return;
  }
  case AGENT_DRIVER_RUNNING:
    break;
  }
  stop_in_order(a, n);
  clear_driver(n);
}

/* ---- what the driver hosts say ---------------------------------------------------------- */

static void start_answered(agent_t *a, agent_op_t *op, dfnet_status_t code, const char *message) {
  if (op->stopping) { /* a DriverStop went behind it: its answer ends the driver */
    DFNET_LOGD(DRV_SUBSYS, op->moniker ? op->moniker : "?",
               "start of a driver being stopped answered %s", dfnet_status_str(code));
    agent__op_free(a, op);
    return;
  }
  agent_dh_t *dh = agent__dh_find(a, op->host_id);
  agent_node_t *n = op->node_uid != 0 ? agent__node_find_uid(a, op->node_uid) : NULL;
  if (n != NULL && (n->driver != AGENT_DRIVER_STARTING || n->op_local_id != op->local_id))
    n = NULL;
  uint64_t host_id = op->host_id;
  if (code == DFNET_STATUS_OK && n != NULL && n->stop_after_start) {
    /* The manager stopped it while it was starting: the start is answered CANCELLED and
     * the stop once the driver host has stopped it. */
    dfnet_session_id_t ss = n->req_session, stop_s = n->stop_session;
    uint64_t sid = n->req_id, stop_id = n->stop_id;
    n->req_session = 0;
    n->stop_after_start = false;
    if (ss != 0)
      agent__reply_status(a, ss, sid, DFNET_STATUS_CANCELLED, "stopped while starting");
    uint64_t stop_op = 0;
    if (send_stop(a, host_id, n->moniker, n->driver_url, n->uid, &stop_op) == DFNET_STATUS_OK) {
      n->driver = AGENT_DRIVER_STOPPING;
      n->op_local_id = stop_op;
      n->req_session = stop_s;
      n->req_id = stop_id;
    } else {
      if (dh != NULL && dh->drivers > 0)
        dh->drivers--;
      clear_driver(n);
      if (stop_s != 0)
        agent__reply_status(a, stop_s, stop_id, DFNET_STATUS_OK, "driver host gone");
      dh_release(a, dh);
    }
    agent__op_free(a, op);
    return;
  }
  agent__metrics_driver_start(a, code);
  if (code == DFNET_STATUS_OK) {
    if (n != NULL) {
      n->driver = AGENT_DRIVER_RUNNING;
      n->op_local_id = 0;
      DFNET_LOGI(DRV_SUBSYS, n->moniker, "driver %s running in driver host %llu",
                 n->driver_url ? n->driver_url : "", (unsigned long long)host_id);
      reply_running(a, n);
    } else {
      /* Its node went away (or was stopped) while it started: stop it now. */
      DFNET_LOGI(DRV_SUBSYS, op->moniker ? op->moniker : "?",
                 "driver started after its node went away: stopping it");
      if (send_stop(a, host_id, op->moniker ? op->moniker : "", NULL, 0, NULL) != DFNET_STATUS_OK &&
          dh != NULL) {
        if (dh->drivers > 0)
          dh->drivers--;
        dh_release(a, dh);
      }
    }
    agent__op_free(a, op);
    return;
  }
  if (dh != NULL && dh->drivers > 0)
    dh->drivers--;
  if (n != NULL) {
    bool stop_waits = n->stop_after_start;
    dfnet_session_id_t stop_s = n->stop_session;
    uint64_t stop_id = n->stop_id;
    n->op_local_id = 0;
    fail_start(a, n, code, message);
    /* The children it added while starting (an asynchronous start) go with it. */
    agent__node_drop_driver_children(a, n);
    if (stop_waits && stop_s != 0)
      agent__reply_status(a, stop_s, stop_id, DFNET_STATUS_OK, "the driver never started");
  }
  agent__op_free(a, op);
  dh_release(a, dh);
}

static void stop_answered(agent_t *a, agent_op_t *op, dfnet_status_t code, const char *message) {
  agent_dh_t *dh = agent__dh_find(a, op->host_id);
  if (dh != NULL && dh->drivers > 0)
    dh->drivers--;
  agent_node_t *n = op->node_uid != 0 ? agent__node_find_uid(a, op->node_uid) : NULL;
  if (n != NULL && (n->driver != AGENT_DRIVER_STOPPING || n->op_local_id != op->local_id))
    n = NULL;
  agent__op_free(a, op);
  if (n != NULL) {
    dfnet_session_id_t s = n->req_session;
    uint64_t id = n->req_id;
    n->req_session = 0;
    DFNET_LOGI(DRV_SUBSYS, n->moniker, "driver %s stopped%s%s", n->driver_url ? n->driver_url : "",
               code == DFNET_STATUS_OK ? "" : ": ", code == DFNET_STATUS_OK ? "" : message);
    clear_driver(n);
    agent__node_drop_driver_children(a, n);
    /* A driver host that died while stopping it has stopped it too; one that has no such
     * driver (its start failed as the stop went, a stop after a start still under way) has
     * none running. */
    if (code == DFNET_STATUS_UNAVAILABLE || code == DFNET_STATUS_NOT_FOUND)
      code = DFNET_STATUS_OK;
    if (s != 0)
      agent__reply_status(a, s, id, code, "%s", code == DFNET_STATUS_OK ? "" : message);
  }
  dh_release(a, dh);
}

void agent__dh_answer(agent_t *a, uint64_t host_id, const dfnet_envelope_t *env) {
  agent_op_t *op = agent__op_find(a, env->pb.id);
  if (op == NULL || op->host_id != host_id) {
    DFNET_LOGD(DRV_SUBSYS, a->host_name, "driver host %llu: answer to unknown id %llu dropped",
               (unsigned long long)host_id, (unsigned long long)env->pb.id);
    return;
  }
  if (op->kind == AGENT_OP_CALL) {
    agent__call_answer(a, op, env);
    return;
  }
  dfnet_status_t code = DFNET_STATUS_INTERNAL;
  const char *message = "unexpected answer";
  if (env->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    code = (dfnet_status_t)env->pb.msg.status.code;
    message = env->pb.msg.status.message;
  }
  if (op->kind == AGENT_OP_SUSPEND || op->kind == AGENT_OP_RESUME) {
    agent__control_answered(a, op, code, message);
    return;
  }
  if (op->kind == AGENT_OP_START)
    start_answered(a, op, code, message);
  else
    stop_answered(a, op, code, message);
  stop_waits_progress(a);
  stop_answers_progress(a);
}

void agent__sup_on_exit(void *arg, const dfnet_driver_host_exit_t *ex) {
  agent_t *a = arg;
  agent_dh_t *dh = agent__dh_find(a, ex->host_id);
  bool expected = (dh != NULL && dh->closing) || a->shutting_down;
  if (expected)
    DFNET_LOGI(DRV_SUBSYS, a->host_name, "driver host %llu (pid %ld) ended: %s",
               (unsigned long long)ex->host_id, (long)ex->pid, ex->reason);
  else
    DFNET_LOGW(DRV_SUBSYS, a->host_name, "driver host %llu (pid %ld) died: %s (%zu nodes)",
               (unsigned long long)ex->host_id, (long)ex->pid, ex->reason, ex->node_count);
  if (!expected)
    agent__metrics_driver_host_crash(a);
  /* Its drivers are gone. Calls to them now fail UNAVAILABLE (DEAD) until the manager
   * starts them again or stops them; what they added goes with them. */
  for (agent_node_t *n = a->nodes_head; n != NULL; n = n->next) {
    if (n->driver_host_id != ex->host_id || n->driver == AGENT_DRIVER_NONE ||
        n->driver == AGENT_DRIVER_FETCHING)
      continue;
    n->op_local_id = 0;
    if (expected) {
      clear_driver(n);
    } else {
      n->driver = AGENT_DRIVER_DEAD;
      n->req_session = 0;
    }
    agent__node_drop_driver_children(a, n);
  }
  for (agent_node_t *n = a->nodes_head; n != NULL;) {
    agent_node_t *next = n->next;
    if (n->origin_host == ex->host_id) {
      agent__node_drop_subtree(a, n);
      next = a->nodes_head; /* the list changed: walk it again */
    }
    n = next;
  }
  dh_remove(a, ex->host_id);
  stop_waits_forget_host(a, ex->host_id);
  stop_waits_progress(a);
  stop_answers_progress(a);
  if (expected) {
    agent__shutdown_progress(a);
    return;
  }
  dfnet_v1_DriverHostExit msg;
  memset(&msg, 0, sizeof msg);
  msg.driver_host_id = ex->host_id;
  msg.pid = ex->pid > 0 ? (uint32_t)ex->pid : 0;
  msg.exit_code = ex->exit_code;
  msg.signal = ex->signal;
  size_t cap = sizeof msg.nodes / sizeof msg.nodes[0];
  for (size_t i = 0; i < ex->node_count && i < cap; i++)
    agent__strlcpy(msg.nodes[i], ex->nodes[i], sizeof msg.nodes[i]);
  msg.nodes_count = (pb_size_t)(ex->node_count < cap ? ex->node_count : cap);
  agent__strlcpy(msg.reason, ex->reason ? ex->reason : "", sizeof msg.reason);
  agent__send_driver_host_exit(a, &msg);
  agent__shutdown_progress(a);
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
