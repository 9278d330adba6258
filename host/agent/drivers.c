/* Drivers on this host (docs/architecture.md "Host session protocol", steps 4-6;
 * docs/spec/dfv2.md "Driver hosts and lifecycle"): DriverStart (package from the cache or the
 * manager, then a new driver host or the one to colocate in), and what the driver hosts say
 * back through the supervisor (host/supervisor/supervisor.h). Stopping drivers (DriverStop,
 * the stop order) is driver_stop.c's.
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
void agent__dh_release(agent_t *a, agent_dh_t *dh) {
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

void agent__driver_clear(agent_node_t *n) {
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
  agent__driver_clear(n);
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
    agent__dh_release(a, dh);
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
    agent__dh_release(a, dh);
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
  agent__driver_clear(n);
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
    if (agent__driver_send_stop(a, host_id, n->moniker, n->driver_url, n->uid, &stop_op) ==
        DFNET_STATUS_OK) {
      n->driver = AGENT_DRIVER_STOPPING;
      n->op_local_id = stop_op;
      n->req_session = stop_s;
      n->req_id = stop_id;
    } else {
      if (dh != NULL && dh->drivers > 0)
        dh->drivers--;
      agent__driver_clear(n);
      if (stop_s != 0)
        agent__reply_status(a, stop_s, stop_id, DFNET_STATUS_OK, "driver host gone");
      agent__dh_release(a, dh);
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
      if (agent__driver_send_stop(a, host_id, op->moniker ? op->moniker : "", NULL, 0, NULL) !=
              DFNET_STATUS_OK &&
          dh != NULL) {
        if (dh->drivers > 0)
          dh->drivers--;
        agent__dh_release(a, dh);
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
  agent__dh_release(a, dh);
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
    agent__driver_clear(n);
    agent__node_drop_driver_children(a, n);
    /* A driver host that died while stopping it has stopped it too; one that has no such
     * driver (its start failed as the stop went, a stop after a start still under way) has
     * none running. */
    if (code == DFNET_STATUS_UNAVAILABLE || code == DFNET_STATUS_NOT_FOUND)
      code = DFNET_STATUS_OK;
    if (s != 0)
      agent__reply_status(a, s, id, code, "%s", code == DFNET_STATUS_OK ? "" : message);
  }
  agent__dh_release(a, dh);
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
  agent__stop_waits_progress(a);
  agent__stop_answers_progress(a);
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
      agent__driver_clear(n);
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
  agent__stop_waits_forget_host(a, ex->host_id);
  agent__stop_waits_progress(a);
  agent__stop_answers_progress(a);
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
