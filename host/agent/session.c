/* The agent's side of the host session (docs/architecture.md "Host session protocol
 * (dfnet.host.v1)", steps 1-3 and 6-7): Hello -> Welcome on every (re)connect, then every
 * node again, parents first, with the driver still running on it; NodeAdd / NodeRemove
 * as they happen; DriverHostExit; and the dispatch of the manager's requests.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "host/agent/agent.h"
#include "lib/log.h"
#include "lib/version.h"

dfnet_envelope_t *agent__envelope_new(void) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  if (env != NULL)
    dfnet_envelope_init(env);
  return env;
}

static dfnet_envelope_t *scratch(agent_t *a) {
  dfnet_envelope_init(a->scratch);
  return a->scratch;
}

void agent__reply_status(agent_t *a, dfnet_session_id_t session, uint64_t id, dfnet_status_t code,
                         const char *fmt, ...) {
  char msg[256] = "";
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  if (code != DFNET_STATUS_OK)
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "request %llu answered %s: %s", (unsigned long long)id,
               dfnet_status_str(code), msg);
  if (session == 0 || session != a->session)
    return; /* that session is gone: its requests died with it */
  dfnet_status_t st = dfnet_transport_send_status(a->t, session, id, code, msg);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "cannot answer request %llu: %s", (unsigned long long)id,
               dfnet_status_str(st));
}

/* ---- requests to the manager ---------------------------------------------------------- */

/* Context of a NodeAdd / NodeRemove we sent. */
typedef struct node_req {
  agent_t *a;
  uint64_t node_uid;   /* NodeAdd: the node (0 for removals) */
  uint64_t dh_id;      /* forwarded for a driver host: its id, else 0 */
  uint64_t dh_request; /* ... and its request id, answered with the manager's Status */
  char moniker[AGENT_MONIKER_MAX];
  bool removal;
} node_req_t;

void agent__dh_answer_status(agent_t *a, uint64_t dh_id, uint64_t request_id, dfnet_status_t code,
                             const char *message) {
  dfnet_envelope_t *env = scratch(a);
  env->pb.id = request_id;
  env->pb.which_msg = dfnet_v1_Envelope_status_tag;
  env->pb.msg.status.code = (dfnet_v1_Code)code;
  agent__strlcpy(env->pb.msg.status.message, message ? message : "",
                 sizeof env->pb.msg.status.message);
  dfnet_status_t st = dfnet_supervisor_send(a->sup, dh_id, env);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGD(AGENT_SUBSYS, a->host_name, "driver host %llu gone before its answer: %s",
               (unsigned long long)dh_id, dfnet_status_str(st));
}

static void on_node_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  node_req_t *r = user;
  agent_t *a = r->a;
  dfnet_status_t code = status;
  const char *message = dfnet_status_str(status);
  if (status == DFNET_STATUS_OK && reply != NULL) {
    if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
      code = (dfnet_status_t)reply->pb.msg.status.code;
      message = reply->pb.msg.status.message;
    } else {
      code = DFNET_STATUS_INTERNAL;
      message = "unexpected answer";
    }
  }
  bool lost = status == DFNET_STATUS_UNAVAILABLE || status == DFNET_STATUS_CANCELLED;
  if (code != DFNET_STATUS_OK && !lost)
    DFNET_LOGW(AGENT_SUBSYS, r->moniker, "manager refused %s: %s: %s",
               r->removal ? "NodeRemove" : "NodeAdd", dfnet_status_str(code), message);
  if (r->dh_id != 0) {
    /* A driver's child: the manager's answer goes back to the driver. When the session
     * dropped, the node stays in the table and is announced after the reconnect. */
    if (lost) {
      code = DFNET_STATUS_OK;
      message = "";
    }
    if (!r->removal && code != DFNET_STATUS_OK) {
      agent_node_t *n = agent__node_find_uid(a, r->node_uid);
      if (n != NULL)
        agent__node_drop_subtree(a, n);
    }
    agent__dh_answer_status(a, r->dh_id, r->dh_request, code, message);
  }
  if (last)
    free(r);
}

static dfnet_status_t send_node_request(agent_t *a, dfnet_envelope_t *env, node_req_t *r) {
  dfnet_request_opts_t opts = {
      .deadline_ms = AGENT_REQUEST_DEADLINE_MS, .on_reply = on_node_reply, .user = r};
  dfnet_status_t st = dfnet_transport_request(a->t, a->session, env, &opts, 0, NULL);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(AGENT_SUBSYS, r->moniker, "cannot send %s: %s",
               r->removal ? "NodeRemove" : "NodeAdd", dfnet_status_str(st));
  return st;
}

static void node_add_fill(agent_t *a, agent_node_t *n, dfnet_envelope_t *env) {
  env->pb.which_msg = dfnet_v1_Envelope_node_add_tag;
  dfnet_v1_NodeAdd *m = &env->pb.msg.node_add;
  if (agent__node_add_decode(n->add, n->add_len, m) != DFNET_STATUS_OK) {
    DFNET_LOGE(AGENT_SUBSYS, n->moniker, "stored NodeAdd does not decode");
    return;
  }
  if ((n->driver == AGENT_DRIVER_RUNNING || n->driver == AGENT_DRIVER_STOPPING) &&
      n->driver_url != NULL) {
    agent__strlcpy(m->driver_url, n->driver_url, sizeof m->driver_url);
    m->driver_host_id = n->driver_host_id;
  }
  (void)a;
}

/* Send NodeAdd for n; dh_id/dh_request: the driver host request it answers (or 0). */
static void send_node_add(agent_t *a, agent_node_t *n, uint64_t dh_id, uint64_t dh_request) {
  node_req_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    DFNET_LOGE(AGENT_SUBSYS, n->moniker, "out of memory sending NodeAdd");
    return;
  }
  r->a = a;
  r->node_uid = n->uid;
  r->dh_id = dh_id;
  r->dh_request = dh_request;
  agent__strlcpy(r->moniker, n->moniker, sizeof r->moniker);
  dfnet_envelope_t *env = scratch(a);
  node_add_fill(a, n, env);
  if (send_node_request(a, env, r) != DFNET_STATUS_OK) {
    if (dh_id != 0)
      agent__dh_answer_status(a, dh_id, dh_request, DFNET_STATUS_OK, "");
    free(r);
  }
}

void agent__send_node_add(agent_t *a, agent_node_t *node) {
  if (a->welcomed)
    send_node_add(a, node, 0, 0);
}

static void send_node_remove(agent_t *a, const char *moniker, uint64_t dh_id, uint64_t dh_request) {
  node_req_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    DFNET_LOGE(AGENT_SUBSYS, moniker, "out of memory sending NodeRemove");
    return;
  }
  r->a = a;
  r->removal = true;
  r->dh_id = dh_id;
  r->dh_request = dh_request;
  agent__strlcpy(r->moniker, moniker, sizeof r->moniker);
  dfnet_envelope_t *env = scratch(a);
  env->pb.which_msg = dfnet_v1_Envelope_node_remove_tag;
  agent__strlcpy(env->pb.msg.node_remove.moniker, moniker, sizeof env->pb.msg.node_remove.moniker);
  if (send_node_request(a, env, r) != DFNET_STATUS_OK) {
    if (dh_id != 0)
      agent__dh_answer_status(a, dh_id, dh_request, DFNET_STATUS_OK, "");
    free(r);
  }
}

void agent__send_node_remove(agent_t *a, const char *moniker) {
  if (a->welcomed)
    send_node_remove(a, moniker, 0, 0);
}

static void send_exit_now(agent_t *a, const dfnet_v1_DriverHostExit *ex) {
  dfnet_envelope_t *env = scratch(a);
  env->pb.which_msg = dfnet_v1_Envelope_driver_host_exit_tag;
  env->pb.msg.driver_host_exit = *ex;
  dfnet_status_t st = dfnet_transport_send(a->t, a->session, env, 0);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "cannot send DriverHostExit of driver host %llu: %s",
               (unsigned long long)ex->driver_host_id, dfnet_status_str(st));
}

void agent__send_driver_host_exit(agent_t *a, const dfnet_v1_DriverHostExit *ex) {
  if (a->welcomed) {
    send_exit_now(a, ex);
    return;
  }
  dfnet_v1_DriverHostExit *grown =
      realloc(a->pending_exits, (a->pending_exit_count + 1) * sizeof *grown);
  if (grown == NULL) {
    DFNET_LOGE(AGENT_SUBSYS, a->host_name, "out of memory keeping a DriverHostExit");
    return;
  }
  a->pending_exits = grown;
  a->pending_exits[a->pending_exit_count++] = *ex;
}

/* ---- enumerator events (from the queue) ---------------------------------------------- */

static bool full_moniker(const agent_t *a, const char *rel, char *out, size_t size) {
  int n = rel[0] == '\0' ? snprintf(out, size, "%s", a->root)
                         : snprintf(out, size, "%s.%s", a->root, rel);
  return n > 0 && (size_t)n < size;
}

void agent__enum_node_added(agent_t *a, const dfnet_v1_NodeAdd *rel) {
  dfnet_envelope_t *env = scratch(a);
  dfnet_v1_NodeAdd *m = &env->pb.msg.node_add;
  *m = *rel;
  if (!full_moniker(a, rel->parent, m->parent, sizeof m->parent)) {
    DFNET_LOGW(AGENT_SUBSYS, rel->name, "parent moniker %s too long: node skipped", rel->parent);
    return;
  }
  m->driver_url[0] = '\0';
  m->driver_host_id = 0;
  agent_node_t *n = NULL;
  dfnet_status_t st = agent__node_insert(a, m, 0, &n);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(AGENT_SUBSYS, m->parent, "node %s not published: %s", m->name, dfnet_status_str(st));
    return;
  }
  DFNET_LOGD(AGENT_SUBSYS, n->moniker, "node found (%u properties)", (unsigned)m->properties_count);
  agent__send_node_add(a, n);
}

void agent__enum_node_removed(agent_t *a, const char *rel_moniker) {
  char moniker[AGENT_MONIKER_MAX];
  if (!full_moniker(a, rel_moniker, moniker, sizeof moniker))
    return;
  agent_node_t *n = agent__node_find(a, moniker);
  if (n == NULL) {
    DFNET_LOGD(AGENT_SUBSYS, moniker, "removal of an unknown node ignored");
    return;
  }
  DFNET_LOGI(AGENT_SUBSYS, moniker, "node gone");
  agent__node_drop_subtree(a, n);
  agent__send_node_remove(a, moniker);
}

/* ---- driver host requests: children of drivers (step 7) ------------------------------ */

/* A NodeAdd from driver host dh_id: its parent must be a node whose driver runs there (or
 * a node a driver of that host added). */
void agent__dh_node_add(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *req) {
  const dfnet_v1_NodeAdd *m = &req->pb.msg.node_add;
  agent_node_t *parent = agent__node_find(a, m->parent);
  bool allowed =
      parent != NULL && ((parent->driver_host_id == dh_id && parent->driver != AGENT_DRIVER_NONE &&
                          parent->driver != AGENT_DRIVER_DEAD) ||
                         parent->origin_host == dh_id);
  if (!allowed) {
    DFNET_LOGW(AGENT_SUBSYS, m->parent, "driver host %llu may not add %s here",
               (unsigned long long)dh_id, m->name);
    agent__dh_answer_status(a, dh_id, req->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                            "the parent is not a node of a driver in this driver host");
    return;
  }
  dfnet_v1_NodeAdd *copy = malloc(sizeof *copy);
  if (copy == NULL) {
    agent__dh_answer_status(a, dh_id, req->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  *copy = *m;
  copy->driver_url[0] = '\0';
  copy->driver_host_id = 0;
  agent_node_t *n = NULL;
  dfnet_status_t st = agent__node_insert(a, copy, dh_id, &n);
  free(copy);
  if (st != DFNET_STATUS_OK) {
    agent__dh_answer_status(a, dh_id, req->pb.id, st, "node not added");
    return;
  }
  DFNET_LOGI(AGENT_SUBSYS, n->moniker, "child node added by driver host %llu",
             (unsigned long long)dh_id);
  if (!a->welcomed) {
    agent__dh_answer_status(a, dh_id, req->pb.id, DFNET_STATUS_OK, "");
    return;
  }
  send_node_add(a, n, dh_id, req->pb.id);
}

void agent__dh_node_remove(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *req) {
  const char *moniker = req->pb.msg.node_remove.moniker;
  agent_node_t *n = agent__node_find(a, moniker);
  if (n == NULL || n->origin_host != dh_id) {
    agent__dh_answer_status(a, dh_id, req->pb.id, DFNET_STATUS_NOT_FOUND,
                            "no such child node of this driver host");
    return;
  }
  char copy[AGENT_MONIKER_MAX];
  agent__strlcpy(copy, moniker, sizeof copy);
  DFNET_LOGI(AGENT_SUBSYS, copy, "child node removed by its driver");
  agent__node_drop_subtree(a, n);
  if (!a->welcomed) {
    agent__dh_answer_status(a, dh_id, req->pb.id, DFNET_STATUS_OK, "");
    return;
  }
  send_node_remove(a, copy, dh_id, req->pb.id);
}

/* ---- session set-up ---------------------------------------------------------------- */

/* A DriverStatus SUSPENDED event for n, whose running driver is suspended: after a
 * reconnect the manager, which ended the suspend when the session dropped, learns that the
 * driver host kept it (its calls still end "suspended" there; `dfnet node resume` then
 * finds it suspended). Sent right behind n's NodeAdd, which has reconciled the binding. */
static void send_suspended(agent_t *a, const agent_node_t *n) {
  dfnet_envelope_t *env = scratch(a);
  env->pb.which_msg = dfnet_v1_Envelope_driver_status_tag;
  dfnet_v1_DriverStatus *m = &env->pb.msg.driver_status;
  agent__strlcpy(m->node, n->moniker, sizeof m->node);
  agent__strlcpy(m->url, n->driver_url != NULL ? n->driver_url : "", sizeof m->url);
  m->driver_host_id = n->driver_host_id;
  m->state = dfnet_v1_DriverState_SUSPENDED;
  pid_t pid = dfnet_supervisor_pid(a->sup, n->driver_host_id);
  m->pid = pid > 0 ? (uint32_t)pid : 0;
  dfnet_status_t st = dfnet_transport_send(a->t, a->session, env, 0);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(AGENT_SUBSYS, n->moniker, "cannot say that its driver is suspended: %s",
               dfnet_status_str(st));
}

static void announce(agent_t *a) {
  for (size_t i = 0; i < a->pending_exit_count; i++)
    send_exit_now(a, &a->pending_exits[i]);
  free(a->pending_exits);
  a->pending_exits = NULL;
  a->pending_exit_count = 0;
  size_t count = 0, with_driver = 0;
  for (agent_node_t *n = a->nodes_head; n != NULL; n = n->next) {
    send_node_add(a, n, 0, 0);
    if (n->driver == AGENT_DRIVER_RUNNING && n->suspended && n->driver_url != NULL)
      send_suspended(a, n);
    count++;
    if (n->driver == AGENT_DRIVER_RUNNING || n->driver == AGENT_DRIVER_STOPPING)
      with_driver++;
  }
  a->announces++;
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "announced %zu nodes (%zu with a running driver)", count,
             with_driver);
}

static void on_hello_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                           bool last) {
  agent_t *a = user;
  (void)last;
  if (status != DFNET_STATUS_OK) {
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "Hello not answered: %s", dfnet_status_str(status));
    return;
  }
  dfnet_session_id_t session = a->session;
  if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    DFNET_LOGE(AGENT_SUBSYS, a->host_name, "manager refused this host: %s: %s",
               dfnet_status_str((dfnet_status_t)reply->pb.msg.status.code),
               reply->pb.msg.status.message);
    dfnet_transport_session_close(a->t, session, DFNET_STATUS_FAILED_PRECONDITION,
                                  "refused by the manager");
    return;
  }
  if (reply->pb.which_msg != dfnet_v1_Envelope_welcome_tag) {
    DFNET_LOGE(AGENT_SUBSYS, a->host_name, "manager answered Hello with %s",
               dfnet_envelope_msg_name(reply->pb.which_msg));
    dfnet_transport_session_close(a->t, session, DFNET_STATUS_INTERNAL, "bad Welcome");
    return;
  }
  const dfnet_v1_Welcome *w = &reply->pb.msg.welcome;
  if (strcmp(w->name, a->host_name) != 0)
    DFNET_LOGE(AGENT_SUBSYS, a->host_name,
               "the manager names this host \"%s\": its nodes will not be under dev.%s", w->name,
               w->name);
  a->welcomed = true;
  a->host_grace_ms = w->host_grace_ms;
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "welcomed by %s (session %llu, grace %u ms)",
             w->server_name, (unsigned long long)w->session_id, w->host_grace_ms);
  announce(a);
  agent__renew_schedule(a); /* this certificate's renewal (renew.c) */
}

void agent__on_session_open(void *user, const dfnet_session_info_t *info) {
  agent_t *a = user;
  a->session = info->id;
  a->welcomed = false;
  a->session_opens++;
  agent__metrics_session_open(a, info);
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "connected to %s (%s)", info->peer_name,
             info->peer_address);
  if (a->shutting_down) {
    dfnet_transport_session_close(a->t, info->id, DFNET_STATUS_CANCELLED, "host agent stopping");
    return;
  }
  dfnet_envelope_t *env = scratch(a);
  env->pb.which_msg = dfnet_v1_Envelope_hello_tag;
  dfnet_v1_Hello *h = &env->pb.msg.hello;
  h->protocol_version = DFNET_PROTOCOL_VERSION;
  h->role = dfnet_v1_Role_HOST;
  agent__strlcpy(h->name, a->host_name, sizeof h->name);
  struct utsname u;
  if (uname(&u) == 0)
    agent__strlcpy(h->arch, u.machine, sizeof h->arch);
  for (size_t i = 0; i < a->opt.label_count; i++) {
    agent__strlcpy(h->labels[i].key, a->opt.labels[i].key, sizeof h->labels[i].key);
    agent__strlcpy(h->labels[i].value, a->opt.labels[i].value, sizeof h->labels[i].value);
  }
  h->labels_count = (pb_size_t)a->opt.label_count;
  agent__strlcpy(h->software_version, dfnet_version_software(), sizeof h->software_version);
  h->sandboxed = dfnet_supervisor_sandboxed(a->sup); /* false: `dfnet host list` says so */
  dfnet_request_opts_t opts = {
      .deadline_ms = AGENT_REQUEST_DEADLINE_MS, .on_reply = on_hello_reply, .user = a};
  dfnet_status_t st = dfnet_transport_request(a->t, info->id, env, &opts, 0, NULL);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE(AGENT_SUBSYS, a->host_name, "cannot send Hello: %s", dfnet_status_str(st));
    dfnet_transport_session_close(a->t, info->id, st, "cannot send Hello");
  }
}

void agent__on_session_closed(void *user, dfnet_session_id_t session, dfnet_status_t reason,
                              const char *message) {
  agent_t *a = user;
  if (session != a->session)
    return;
  DFNET_LOGW(AGENT_SUBSYS, a->host_name, "disconnected from the manager: %s%s%s",
             dfnet_status_str(reason), message && message[0] ? ": " : "", message ? message : "");
  a->session = 0;
  a->welcomed = false;
  agent__calls_session_closed(a, session);
  agent__cache_session_closed(a, session);
  for (agent_node_t *n = a->nodes_head; n != NULL; n = n->next)
    if (n->req_session == session)
      n->req_session = 0;
  if (a->shutting_down && !a->stopped) {
    a->stopped = true;
    dfnet_transport_stop(a->t);
  }
}

/* NodeRemove from the manager. Not a step of the host session protocol (the manager sends
 * it after a driver host crash without restart, having removed the node's subtree): nodes
 * that drivers added are dropped here too; a hardware node stays (it is still there, and is
 * announced again after the next reconnect). Answered OK when it carries an id. */
void agent__handle_node_remove(agent_t *a, dfnet_session_id_t session,
                               const dfnet_envelope_t *env) {
  const dfnet_v1_NodeRemove *m = &env->pb.msg.node_remove;
  agent_node_t *n = agent__node_find(a, m->moniker);
  DFNET_LOGI(AGENT_SUBSYS, m->moniker, "the manager removed this node%s%s",
             m->has_reason ? ": " : "", m->has_reason ? m->reason.message : "");
  if (n != NULL && n->origin_host != 0)
    agent__node_drop_subtree(a, n);
  if (env->pb.id != 0)
    agent__reply_status(a, session, env->pb.id, DFNET_STATUS_OK, NULL);
}
