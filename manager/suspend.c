/* dfnet-manager: suspending and resuming the drivers of a subtree (the seeds' suspend(flags)
 * and resume() callouts; docs/architecture.md "Node control"; SuspendNode, ResumeNode).
 *
 * A walk lists the subtree's nodes when it begins (by moniker and id): for a suspend, every
 * node running a driver that is not suspended, deepest first (a node after everything
 * below it); for a resume, every suspended node, parents first. It sends one DriverSuspend
 * (DriverResume) at a time to the node's host and the next once the answer is OK, so a
 * node's suspend is sent only when the drivers below it have suspended. The first error
 * ends the walk: the request is answered with it, naming the node; the drivers that did
 * suspend stay suspended. A node that is gone, or no longer runs that driver, when its turn
 * comes is skipped. Calls to a suspended node end UNAVAILABLE at the manager (handle_call.c);
 * a DriverStop, a restart or the host's loss ends the suspend (binder.c, hosts.c); an agent
 * that reconnects with a driver still suspended says so after its NodeAdd (DriverStatus
 * SUSPENDED, binder__driver_status), and the node is suspended again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/driver.h"
#include "lib/log.h"
#include "manager/manager.h"

typedef struct walk {
  mgr_t *m;
  dfnet_session_id_t session;
  uint64_t request_id;
  bool resume;
  uint32_t flags;
  char root[TOPOLOGY_MONIKER_MAX + 1];
  mgr_node_refs_t nodes;
  size_t pos, done;
  bool oom;
} walk_t;

static void walk_free(walk_t *w) {
  node_refs__clear(&w->nodes);
  free(w);
}

/* May n take this walk's step: a running driver to suspend, a suspended one to resume? */
static bool eligible(const topology_node_t *n, bool resume) {
  if (n->state != dfnet_v1_NodeState_BOUND || n->driver_id == 0 || n->starting || n->stopping)
    return false;
  return resume ? n->suspended : !n->suspended;
}

static void walk_add(walk_t *w, const topology_node_t *n) {
  for (size_t i = 0; i < w->nodes.count; i++)
    if (w->nodes.items[i].id == n->id)
      return; /* a composite node, reached through each of its parents */
  if (!node_refs__add(&w->nodes, n))
    w->oom = true;
}

/* The subtree of n in the walk's order: children first for a suspend, parents first for a
 * resume. `depth` bounds the recursion as monikers bound the tree. */
static void collect(walk_t *w, const topology_node_t *n, unsigned depth) {
  if (depth > TOPOLOGY_MONIKER_MAX / 2)
    return;
  if (w->resume && eligible(n, true))
    walk_add(w, n);
  for (uint32_t i = 0; i < n->child_count; i++)
    collect(w, n->children[i], depth + 1);
  if (!w->resume && eligible(n, false))
    walk_add(w, n);
}

static void walk_finish(walk_t *w, dfnet_status_t code, const char *msg) {
  sessions__reply_status(w->m, w->session, w->request_id, code, "%s", msg);
  walk_free(w);
}

static void walk_next(walk_t *w);

/* The answer to the step of w->nodes.items[w->pos]. */
static void on_step_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  walk_t *w = user;
  if (!last)
    return;
  mgr_t *m = w->m;
  const mgr_node_ref_t *wn = &w->nodes.items[w->pos];
  dfnet_status_t code = status;
  const char *why = dfnet_status_description(status);
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    code = (dfnet_status_t)reply->pb.msg.status.code;
    why = reply->pb.msg.status.message;
  } else if (status == DFNET_STATUS_OK) {
    code = DFNET_STATUS_INTERNAL;
    why = "unexpected answer";
  }
  if (m->stopping) {
    walk_free(w);
    return;
  }
  if (code != DFNET_STATUS_OK) {
    char msg[600];
    topology__fmt(msg, sizeof msg, "%s: %s %s: %s", wn->moniker,
                  w->resume ? "resume failed" : "suspend failed", dfnet_status_str(code), why);
    DFNET_LOGW("suspend", wn->moniker, "%s", msg);
    walk_finish(w, code, msg);
    return;
  }
  topology_node_t *n = node_refs__node(m, wn);
  if (n != NULL && n->state == dfnet_v1_NodeState_BOUND && !n->stopping) {
    n->suspended = !w->resume;
    char flags[16];
    topology__fmt(flags, sizeof flags, "0x%08x", (unsigned)w->flags);
    streams__event(m,
                   w->resume ? dfnet_v1_WatchEvent_Kind_NODE_RESUMED
                             : dfnet_v1_WatchEvent_Kind_NODE_SUSPENDED,
                   n->moniker, w->resume ? NULL : flags, DFNET_STATUS_OK);
    w->done++;
  }
  w->pos++;
  walk_next(w);
}

/* Send the step of node n; false when it could not be sent (the walk is answered). */
static bool send_step(walk_t *w, topology_node_t *n) {
  mgr_t *m = w->m;
  mgr_host_t *h = hosts__get(m, n->host_id);
  if (h == NULL || h->session == 0 || n->offline) {
    char msg[TOPOLOGY_MONIKER_MAX + 64];
    topology__fmt(msg, sizeof msg, "%s: its host is offline", n->moniker);
    walk_finish(w, DFNET_STATUS_UNAVAILABLE, msg);
    return false;
  }
  dfnet_envelope_t *env = mgr__env(m);
  if (w->resume) {
    env->pb.which_msg = dfnet_v1_Envelope_driver_resume_tag;
    topology__fmt(env->pb.msg.driver_resume.node, sizeof env->pb.msg.driver_resume.node, "%s",
                  n->moniker);
    env->pb.msg.driver_resume.driver_host_id = n->driver_host_id;
  } else {
    env->pb.which_msg = dfnet_v1_Envelope_driver_suspend_tag;
    dfnet_v1_DriverSuspend *ds = &env->pb.msg.driver_suspend;
    topology__fmt(ds->node, sizeof ds->node, "%s", n->moniker);
    ds->driver_host_id = n->driver_host_id;
    ds->flags = w->flags;
  }
  dfnet_request_opts_t opts = {
      .deadline_ms = MGR_SUSPEND_DEADLINE_MS, .on_reply = on_step_reply, .user = w};
  dfnet_status_t st = dfnet_transport_request(m->transport, h->session, env, &opts, 0, NULL);
  if (st != DFNET_STATUS_OK) {
    char msg[TOPOLOGY_MONIKER_MAX + 100];
    topology__fmt(msg, sizeof msg, "%s: %s could not be sent: %s", n->moniker,
                  w->resume ? "DriverResume" : "DriverSuspend", dfnet_status_str(st));
    walk_finish(w, st, msg);
    return false;
  }
  DFNET_LOGD("suspend", n->moniker, "%s sent", w->resume ? "DriverResume" : "DriverSuspend");
  return true;
}

static void walk_next(walk_t *w) {
  while (w->pos < w->nodes.count) {
    topology_node_t *n = node_refs__node(w->m, &w->nodes.items[w->pos]);
    if (n == NULL || !eligible(n, w->resume)) {
      w->pos++; /* gone, or its driver changed meanwhile */
      continue;
    }
    send_step(w, n);
    return;
  }
  char msg[TOPOLOGY_MONIKER_MAX + 100];
  topology__fmt(msg, sizeof msg, "%s %zu driver(s) on %s and below",
                w->resume ? "resumed" : "suspended", w->done, w->root);
  DFNET_LOGI("suspend", w->root, "%s", msg);
  walk_finish(w, DFNET_STATUS_OK, msg);
}

void suspend__walk(mgr_t *m, mgr_session_t *s, uint64_t id, const char *node, uint32_t flags,
                   bool resume) {
  topology_node_t *n = sessions__node_or_reply(m, s->id, id, node, false);
  if (n == NULL)
    return;
  walk_t *w = calloc(1, sizeof *w);
  if (w == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  *w = (walk_t){.m = m, .session = s->id, .request_id = id, .resume = resume};
  w->flags = flags != 0 ? flags : DFNET_SUSPEND_FLAG_SUSPEND_RAM;
  topology__fmt(w->root, sizeof w->root, "%s", n->moniker);
  collect(w, n, 0);
  if (w->oom) {
    walk_finish(w, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (w->nodes.count == 0) {
    char msg[TOPOLOGY_MONIKER_MAX + 100];
    topology__fmt(msg, sizeof msg,
                  resume ? "nothing is suspended on %s or below"
                         : "no running driver on %s or below to suspend",
                  n->moniker);
    walk_finish(w, DFNET_STATUS_FAILED_PRECONDITION, msg);
    return;
  }
  DFNET_LOGI("suspend", n->moniker, "%s %zu driver(s) for %s", resume ? "resuming" : "suspending",
             w->nodes.count, s->name);
  walk_next(w);
}
