/* Calls through the agent (docs/architecture.md "Host session protocol", step 9, and
 * "Calls") and the table of requests in flight to driver hosts.
 *
 * Every request to a driver host (Call, DriverStart, DriverStop) is an op with an id of
 * ours (local ids never repeat, so calls from a dropped session and from the next one
 * never meet). A Call's op also remembers the manager's session and envelope id: its
 * Replies go back under that id, and the manager's Cancel / StreamCredit (which carry the
 * Call's id) find it through calls_by_peer. When the session goes, its calls are
 * cancelled at their driver hosts; their final Replies are then dropped here.
 *
 * A Call of dfnet.lab.ArtifactCache to any node of this host (or its root) is answered by
 * the agent itself (artifacts.c), whatever runs on the node.
 *
 * A driver's call to another driver (issue 18) comes from its driver host with the driver
 * host's id (bit 63 set, host/driver_host/runtime.h "Ids") and Call.caller naming the
 * calling node. The agent believes only its own records: the node must be one whose driver
 * runs in that driver host (else PERMISSION_DENIED), and it sets Call.caller (the node's
 * moniker) and Call.caller_driver_url (its driver URL) itself. The call then goes
 *   - to the driver host running the target node's driver when that node is on this host
 *     (never through the manager): an op like the manager's calls, whose caller is the
 *     driver host (caller_dh, caller_id; calls_by_peer key AGENT_DH_KEY(caller_dh)), with
 *     a timer for the deadline at this hop;
 *   - else up to the manager, as a streaming request on the host session with the call's
 *     deadline (the manager routes it to the node's host).
 * Replies travel back to the calling driver host with its id; its Cancel and StreamCredit
 * travel on. The final answer is a Reply, or a Status when the call ends without the
 * serving driver: PERMISSION_DENIED as above, UNAVAILABLE when the serving driver is gone
 * (no driver on the node, the node gone, its driver stopping, its driver host dead), which
 * turns the calling driver's client UNAVAILABLE. A transient failure (the manager link
 * down, a driver still being fetched) is a Reply. When a calling driver host dies, the
 * calls its drivers made are cancelled where they went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/agent/agent.h"
#include "lib/log.h"

#define CALL_SUBSYS "host"

/* Relay to a driver host at the end of this loop turn, with the rest of the turn's batch
 * (main.c turn_end uncorks). Service thread. */
static dfnet_status_t sup_send_batched(agent_t *a, uint64_t host_id, dfnet_envelope_t *env) {
  if (!a->sup_corked) {
    dfnet_supervisor_cork(a->sup);
    a->sup_corked = true;
  }
  return dfnet_supervisor_send(a->sup, host_id, env);
}

agent_op_t *agent__op_new(agent_t *a, agent_op_kind_t kind, uint64_t host_id) {
  agent_op_t *op = calloc(1, sizeof *op);
  if (op == NULL)
    return NULL;
  op->local_id = ++a->next_local_id;
  op->kind = kind;
  op->host_id = host_id;
  HASH_ADD(hh_local, a->ops_by_local, local_id, sizeof op->local_id, op);
  return op;
}

agent_op_t *agent__op_find(agent_t *a, uint64_t local_id) {
  agent_op_t *op = NULL;
  if (local_id != 0)
    HASH_FIND(hh_local, a->ops_by_local, &local_id, sizeof local_id, op);
  return op;
}

/* The call op of (peer, id) in flight: peer a manager session, or AGENT_DH_KEY of a driver
 * host; NULL when none. */
static agent_op_t *peer_find(agent_t *a, uint64_t peer, uint64_t id) {
  agent_op_t *op = NULL;
  struct {
    uint64_t session, id;
  } key = {peer, id};
  HASH_FIND(hh_peer, a->calls_by_peer, &key, sizeof key, op);
  return op;
}

/* op is call (peer, id) in flight, found by peer_find until peer_forget. */
static void peer_add(agent_t *a, agent_op_t *op, uint64_t peer, uint64_t id) {
  op->peer_key.session = peer;
  op->peer_key.id = id;
  HASH_ADD(hh_peer, a->calls_by_peer, peer_key, sizeof op->peer_key, op);
  op->in_peer_table = true;
}

static void peer_forget(agent_t *a, agent_op_t *op) {
  if (op->in_peer_table) {
    HASH_DELETE(hh_peer, a->calls_by_peer, op);
    op->in_peer_table = false;
  }
}

void agent__op_free(agent_t *a, agent_op_t *op) {
  HASH_DELETE(hh_local, a->ops_by_local, op);
  peer_forget(a, op);
  /* A timer cancelled on the service thread never fires; with the transport gone (the
   * agent's teardown) none will: either way its context is ours to free. */
  if (op->timer != 0 && (a->t == NULL || dfnet_transport_timer_cancel(a->t, op->timer)))
    free(op->timer_ctx);
  free(op->moniker);
  free(op);
}

void agent__ops_free(agent_t *a) {
  agent_op_t *op, *tmp;
  HASH_ITER(hh_local, a->ops_by_local, op, tmp) {
    agent__op_free(a, op);
  }
}

void agent__reply_call_status(agent_t *a, dfnet_session_id_t session, uint64_t id,
                              dfnet_status_t code, const char *message) {
  if (session == 0 || session != a->session)
    return;
  dfnet_envelope_t *env = dfnet_envelope_reuse(a->scratch, id, dfnet_v1_Envelope_reply_tag);
  env->pb.msg.reply = (dfnet_v1_Reply){.code = (dfnet_v1_Code)code, .end_of_stream = true};
  agent__strlcpy(env->pb.msg.reply.message, message ? message : "",
                 sizeof env->pb.msg.reply.message);
  /* a call always ends: its small final status passes a full send queue */
  dfnet_status_t st = dfnet_transport_send(a->t, session, env, DFNET_SEND_PAST_HWM);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(CALL_SUBSYS, a->host_name, "cannot answer call %llu: %s", (unsigned long long)id,
               dfnet_status_str(st));
}

void agent__handle_call(agent_t *a, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  const dfnet_v1_Call *m = &env->pb.msg.call;
  uint64_t id = env->pb.id;
  agent_node_t *n = agent__node_find(a, m->target);
  char msg[600];
  if (agent__artifact_method(m->method) && (n != NULL || strcmp(m->target, a->root) == 0)) {
    /* the host's artifact cache: the node only names the host (a driver or not) */
    agent__artifact_call(a, session, id, m, env->bulk);
    return;
  }
  if (n == NULL) {
    snprintf(msg, sizeof msg, "no node %s on this host", m->target);
    agent__reply_call_status(a, session, id, DFNET_STATUS_NOT_FOUND, msg);
    return;
  }
  if (n->driver == AGENT_DRIVER_DEAD) {
    snprintf(msg, sizeof msg, "the driver host of %s died", m->target);
    agent__reply_call_status(a, session, id, DFNET_STATUS_UNAVAILABLE, msg);
    return;
  }
  if (n->driver != AGENT_DRIVER_RUNNING) {
    snprintf(msg, sizeof msg, "no driver runs on %s", m->target);
    agent__reply_call_status(a, session, id, DFNET_STATUS_FAILED_PRECONDITION, msg);
    return;
  }
  if (peer_find(a, session, id) != NULL) {
    DFNET_LOGW(CALL_SUBSYS, m->target, "call id %llu is already in flight: dropped",
               (unsigned long long)id);
    return;
  }
  agent_op_t *op = agent__op_new(a, AGENT_OP_CALL, n->driver_host_id);
  if (op == NULL) {
    agent__reply_call_status(a, session, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  op->session = session;
  op->manager_id = id;
  peer_add(a, op, session, id);

  dfnet_envelope_t *fwd =
      dfnet_envelope_reuse(a->scratch, op->local_id, dfnet_v1_Envelope_call_tag);
  fwd->pb.msg.call = *m;
  fwd->bulk = env->bulk;
  agent__metrics_call(a, false, env->bulk.size);
  dfnet_status_t st = sup_send_batched(a, op->host_id, fwd);
  if (st != DFNET_STATUS_OK) {
    agent__op_free(a, op);
    snprintf(msg, sizeof msg, "the driver host of %s is gone (%s)", m->target,
             dfnet_status_str(st));
    agent__reply_call_status(
        a, session, id, st == DFNET_STATUS_RESOURCE_EXHAUSTED ? st : DFNET_STATUS_UNAVAILABLE, msg);
  }
}

void agent__handle_call_control(agent_t *a, dfnet_session_id_t session,
                                const dfnet_envelope_t *env) {
  agent_op_t *op = peer_find(a, session, env->pb.id);
  if (op == NULL) {
    DFNET_LOGD(CALL_SUBSYS, a->host_name, "%s for call %llu not in flight: dropped",
               dfnet_envelope_msg_name(env->pb.which_msg), (unsigned long long)env->pb.id);
    return;
  }
  dfnet_envelope_t *fwd = dfnet_envelope_reuse(a->scratch, op->local_id, env->pb.which_msg);
  if (env->pb.which_msg == dfnet_v1_Envelope_cancel_tag)
    fwd->pb.msg.cancel = env->pb.msg.cancel;
  else
    fwd->pb.msg.stream_credit = env->pb.msg.stream_credit;
  dfnet_status_t st = sup_send_batched(a, op->host_id, fwd);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGD(CALL_SUBSYS, a->host_name, "%s for call %llu not delivered: %s",
               dfnet_envelope_msg_name(env->pb.which_msg), (unsigned long long)env->pb.id,
               dfnet_status_str(st));
}

static void answer_driver_call(agent_t *a, agent_op_t *op, const dfnet_envelope_t *env);

void agent__call_answer(agent_t *a, agent_op_t *op, const dfnet_envelope_t *env) {
  if (op->caller_dh != 0) {
    answer_driver_call(a, op, env);
    return;
  }
  bool last = true;
  if (env->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
    last = env->pb.msg.reply.end_of_stream;
    if (op->session != 0 && op->session == a->session) {
      dfnet_envelope_t *out =
          dfnet_envelope_reuse(a->scratch, op->manager_id, dfnet_v1_Envelope_reply_tag);
      out->pb.msg.reply = env->pb.msg.reply;
      out->bulk = env->bulk;
      agent__metrics_call(a, true, env->bulk.size);
      dfnet_status_t st = dfnet_transport_send(a->t, op->session, out, 0);
      if (st != DFNET_STATUS_OK) {
        DFNET_LOGW(CALL_SUBSYS, a->host_name, "reply to call %llu lost: %s",
                   (unsigned long long)op->manager_id, dfnet_status_str(st));
        if (last && st == DFNET_STATUS_RESOURCE_EXHAUSTED)
          agent__reply_call_status(a, op->session, op->manager_id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                                   "the reply did not fit the manager link's send queue");
        if (!last && st == DFNET_STATUS_RESOURCE_EXHAUSTED) {
          /* The manager cannot take more: end the call rather than drop replies silently. */
          dfnet_envelope_t *cancel =
              dfnet_envelope_reuse(a->scratch, op->local_id, dfnet_v1_Envelope_cancel_tag);
          agent__strlcpy(cancel->pb.msg.cancel.reason, "manager link congested",
                         sizeof cancel->pb.msg.cancel.reason);
          (void)dfnet_supervisor_send(a->sup, op->host_id, cancel);
        }
      }
    }
  } else {
    /* A Status for a call: the driver host refused it; a final answer all the same. */
    const dfnet_v1_Status *s = &env->pb.msg.status;
    agent__reply_call_status(a, op->session, op->manager_id, (dfnet_status_t)s->code, s->message);
  }
  if (last)
    agent__op_free(a, op);
}

void agent__calls_session_closed(agent_t *a, dfnet_session_id_t session) {
  agent_op_t *op, *tmp;
  HASH_ITER(hh_local, a->ops_by_local, op, tmp) {
    if (op->kind != AGENT_OP_CALL || op->session != session)
      continue;
    peer_forget(a, op);
    op->session = 0;
    dfnet_envelope_t *cancel =
        dfnet_envelope_reuse(a->scratch, op->local_id, dfnet_v1_Envelope_cancel_tag);
    agent__strlcpy(cancel->pb.msg.cancel.reason, "the manager session closed",
                   sizeof cancel->pb.msg.cancel.reason);
    (void)dfnet_supervisor_send(a->sup, op->host_id, cancel);
  }
}

/* ---- a driver's calls to other drivers ------------------------------------------------ */

/* Names an op across loop turns (a timer's or a request's user): never a pointer to it. */
struct agent_call_ctx {
  agent_t *a;
  uint64_t local_id;
};

static agent_call_ctx_t *call_ctx_new(agent_t *a, const agent_op_t *op) {
  agent_call_ctx_t *ctx = malloc(sizeof *ctx);
  if (ctx != NULL)
    *ctx = (agent_call_ctx_t){a, op->local_id};
  return ctx;
}

/* Send the calling driver host one Reply of its call. */
static void caller_reply(agent_t *a, agent_op_t *op, const dfnet_v1_Reply *r, dfnet_bytes_t bulk) {
  dfnet_envelope_t *env =
      dfnet_envelope_reuse(a->scratch, op->caller_id, dfnet_v1_Envelope_reply_tag);
  env->pb.msg.reply = *r;
  env->bulk = bulk;
  dfnet_status_t st = sup_send_batched(a, op->caller_dh, env);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGD(CALL_SUBSYS, a->host_name, "driver host %llu gone before the reply to its call %llu",
               (unsigned long long)op->caller_dh, (unsigned long long)op->caller_id);
}

/* End the calling driver host's call with a final Reply (transient) or a Status (the call
 * ends without the serving driver). */
static void caller_final(agent_t *a, agent_op_t *op, bool as_status, dfnet_status_t code,
                         const char *message) {
  if (!as_status) {
    dfnet_v1_Reply r = {.code = (dfnet_v1_Code)code, .end_of_stream = true};
    agent__strlcpy(r.message, message ? message : "", sizeof r.message);
    caller_reply(a, op, &r, (dfnet_bytes_t){NULL, 0});
    return;
  }
  dfnet_envelope_t *env =
      dfnet_envelope_reuse(a->scratch, op->caller_id, dfnet_v1_Envelope_status_tag);
  env->pb.msg.status.code = (dfnet_v1_Code)code;
  agent__strlcpy(env->pb.msg.status.message, message ? message : "",
                 sizeof env->pb.msg.status.message);
  (void)sup_send_batched(a, op->caller_dh, env);
}

/* Refuse a driver host's call before any op exists: a final Status (or Reply) with its id. */
static void refuse(agent_t *a, uint64_t dh_id, uint64_t id, bool as_status, dfnet_status_t code,
                   const char *message) {
  agent_op_t tmp = {.caller_dh = dh_id, .caller_id = id};
  caller_final(a, &tmp, as_status, code, message);
}

/* Is the driver that served op's call gone (so that its client turns UNAVAILABLE)? */
static bool serving_gone(agent_t *a, const agent_op_t *op) {
  agent_node_t *n = agent__node_find_uid(a, op->target_uid);
  return n == NULL || n->driver_host_id != op->host_id ||
         (n->driver != AGENT_DRIVER_RUNNING && n->driver != AGENT_DRIVER_STARTING) ||
         dfnet_supervisor_pid(a->sup, op->host_id) < 0;
}

/* A Reply or Status from the serving driver host for a driver's call. */
static void answer_driver_call(agent_t *a, agent_op_t *op, const dfnet_envelope_t *env) {
  bool status = env->pb.which_msg == dfnet_v1_Envelope_status_tag;
  bool last = status || env->pb.msg.reply.end_of_stream;
  if (!op->caller_answered) {
    if (status) {
      caller_final(a, op, true, (dfnet_status_t)env->pb.msg.status.code,
                   env->pb.msg.status.message);
    } else if (last && env->pb.msg.reply.code == dfnet_v1_Code_UNAVAILABLE && serving_gone(a, op)) {
      caller_final(a, op, true, DFNET_STATUS_UNAVAILABLE, env->pb.msg.reply.message);
    } else {
      caller_reply(a, op, &env->pb.msg.reply, env->bulk);
    }
  }
  if (last)
    agent__op_free(a, op);
}

/* The deadline passed at this hop (a call to another driver host of this host). */
static void on_call_deadline(void *user) {
  agent_call_ctx_t *ctx = user;
  agent_t *a = ctx->a;
  agent_op_t *op = agent__op_find(a, ctx->local_id);
  free(ctx);
  if (op == NULL)
    return;
  op->timer = 0;
  op->timer_ctx = NULL;
  if (op->caller_answered)
    return;
  op->caller_answered = true;
  peer_forget(a, op);
  caller_final(a, op, false, DFNET_STATUS_DEADLINE_EXCEEDED, "deadline exceeded at the host agent");
  dfnet_envelope_t *cancel =
      dfnet_envelope_reuse(a->scratch, op->local_id, dfnet_v1_Envelope_cancel_tag);
  agent__strlcpy(cancel->pb.msg.cancel.reason, "deadline exceeded",
                 sizeof cancel->pb.msg.cancel.reason);
  (void)sup_send_batched(a, op->host_id, cancel);
  /* the op goes when the serving driver host's final answer comes (or it dies) */
}

/* A driver's call op (caller fields and the peer key set); NULL when out of memory. */
static agent_op_t *driver_call_op(agent_t *a, uint64_t dh_id, uint64_t id, uint64_t host_id) {
  agent_op_t *op = agent__op_new(a, AGENT_OP_CALL, host_id);
  if (op == NULL)
    return NULL;
  op->caller_dh = dh_id;
  op->caller_id = id;
  peer_add(a, op, AGENT_DH_KEY(dh_id), id);
  return op;
}

/* The call as it goes on: the caller fields from our records, never the driver host's. */
static dfnet_envelope_t *fill_forward(agent_t *a, uint64_t id, const dfnet_envelope_t *env,
                                      const agent_node_t *caller) {
  dfnet_envelope_t *fwd = dfnet_envelope_reuse(a->scratch, id, dfnet_v1_Envelope_call_tag);
  fwd->pb.msg.call = env->pb.msg.call;
  agent__strlcpy(fwd->pb.msg.call.caller, caller->moniker, sizeof fwd->pb.msg.call.caller);
  agent__strlcpy(fwd->pb.msg.call.caller_driver_url, caller->driver_url ? caller->driver_url : "",
                 sizeof fwd->pb.msg.call.caller_driver_url);
  fwd->bulk = env->bulk;
  return fwd;
}

static void to_driver_host(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env,
                           const agent_node_t *caller, const agent_node_t *target) {
  const dfnet_v1_Call *m = &env->pb.msg.call;
  agent_op_t *op = driver_call_op(a, dh_id, env->pb.id, target->driver_host_id);
  if (op == NULL) {
    refuse(a, dh_id, env->pb.id, false, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  op->target_uid = target->uid;
  dfnet_status_t st = sup_send_batched(a, op->host_id, fill_forward(a, op->local_id, env, caller));
  if (st != DFNET_STATUS_OK) {
    uint64_t id = op->caller_id;
    agent__op_free(a, op);
    char msg[600];
    snprintf(msg, sizeof msg, "the driver host of %s is gone", m->target);
    refuse(a, dh_id, id, true, DFNET_STATUS_UNAVAILABLE, msg);
    return;
  }
  if (m->deadline_ms > 0 && (op->timer_ctx = call_ctx_new(a, op)) != NULL &&
      dfnet_transport_timer_start(a->t, m->deadline_ms, on_call_deadline, op->timer_ctx,
                                  &op->timer) != DFNET_STATUS_OK) {
    free(op->timer_ctx); /* the driver hosts still enforce it */
    op->timer_ctx = NULL;
    op->timer = 0;
  }
}

/* A reply (or the end) of a driver's call that went up to the manager. */
static void on_up_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                        bool last) {
  agent_call_ctx_t *ctx = user;
  agent_t *a = ctx->a;
  agent_op_t *op = agent__op_find(a, ctx->local_id);
  if (op != NULL && !op->caller_answered) {
    if (status != DFNET_STATUS_OK)
      caller_final(a, op, false, status,
                   status == DFNET_STATUS_UNAVAILABLE ? "the link to the manager is gone"
                   : status == DFNET_STATUS_DEADLINE_EXCEEDED
                       ? "deadline exceeded on the way to the manager"
                       : dfnet_status_description(status));
    else if (reply->pb.which_msg == dfnet_v1_Envelope_reply_tag)
      caller_reply(a, op, &reply->pb.msg.reply, reply->bulk);
    else if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag)
      caller_final(a, op, true, (dfnet_status_t)reply->pb.msg.status.code,
                   reply->pb.msg.status.message);
    else
      caller_final(a, op, false, DFNET_STATUS_INTERNAL, "the manager answered a call oddly");
  }
  if (!last)
    return;
  if (op != NULL)
    agent__op_free(a, op);
  free(ctx);
}

static void to_manager(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env,
                       const agent_node_t *caller) {
  uint64_t id = env->pb.id;
  if (!a->welcomed || a->session == 0) {
    refuse(a, dh_id, id, false, DFNET_STATUS_UNAVAILABLE, "the host agent is not connected");
    return;
  }
  agent_op_t *op = driver_call_op(a, dh_id, id, 0);
  agent_call_ctx_t *ctx = op != NULL ? call_ctx_new(a, op) : NULL;
  if (ctx == NULL) {
    if (op != NULL)
      agent__op_free(a, op);
    refuse(a, dh_id, id, false, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  dfnet_request_opts_t opts = {.deadline_ms = env->pb.msg.call.deadline_ms,
                               .streaming = true,
                               .on_reply = on_up_reply,
                               .user = ctx};
  dfnet_status_t st = dfnet_transport_request(a->t, a->session, fill_forward(a, 0, env, caller),
                                              &opts, 0, &op->up_request);
  if (st != DFNET_STATUS_OK) {
    agent__op_free(a, op);
    free(ctx);
    refuse(a, dh_id, id, false,
           st == DFNET_STATUS_RESOURCE_EXHAUSTED ? st : DFNET_STATUS_UNAVAILABLE,
           "cannot send the call to the manager");
    return;
  }
  op->up_session = a->session;
}

static bool driver_live(const agent_node_t *n) {
  return n->driver == AGENT_DRIVER_STARTING || n->driver == AGENT_DRIVER_RUNNING ||
         n->driver == AGENT_DRIVER_STOPPING;
}

void agent__dh_call(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env) {
  const dfnet_v1_Call *m = &env->pb.msg.call;
  uint64_t id = env->pb.id;
  char msg[700];
  if (a->shutting_down) {
    refuse(a, dh_id, id, true, DFNET_STATUS_UNAVAILABLE, "host agent stopping");
    return;
  }
  agent_node_t *caller = agent__node_find(a, m->caller);
  if (caller == NULL || caller->driver_host_id != dh_id || !driver_live(caller)) {
    DFNET_LOGW(CALL_SUBSYS, a->host_name,
               "driver host %llu calls %s as \"%s\", a node whose driver it does not run: refused",
               (unsigned long long)dh_id, m->target, m->caller);
    refuse(a, dh_id, id, true, DFNET_STATUS_PERMISSION_DENIED,
           "the caller is not a node whose driver runs in this driver host");
    return;
  }
  if (peer_find(a, AGENT_DH_KEY(dh_id), id) != NULL) {
    DFNET_LOGW(CALL_SUBSYS, caller->moniker, "call id %llu is already in flight: dropped",
               (unsigned long long)id);
    return;
  }
  agent_node_t *target = agent__node_find(a, m->target);
  if (target != NULL && !agent__offered_permits(caller, m->target, m->method)) {
    DFNET_LOGW(CALL_SUBSYS, caller->moniker,
               "calls %s on %s, a service it was not offered: refused", m->method, m->target);
    snprintf(msg, sizeof msg, "%s was offered no such service by %s", caller->moniker, m->target);
    refuse(a, dh_id, id, true, DFNET_STATUS_PERMISSION_DENIED, msg);
    return;
  }
  if (target != NULL && target->driver_host_id != 0 &&
      (target->driver == AGENT_DRIVER_RUNNING || target->driver == AGENT_DRIVER_STARTING)) {
    to_driver_host(a, dh_id, env, caller, target);
  } else if (target != NULL && target->driver == AGENT_DRIVER_FETCHING) {
    snprintf(msg, sizeof msg, "the driver of %s is starting", m->target);
    refuse(a, dh_id, id, false, DFNET_STATUS_UNAVAILABLE, msg); /* transient */
  } else if (target != NULL || agent__moniker_within(m->target, a->root)) {
    snprintf(msg, sizeof msg, target != NULL ? "no driver runs on %s" : "no node %s on this host",
             m->target);
    refuse(a, dh_id, id, true, DFNET_STATUS_UNAVAILABLE, msg);
  } else {
    to_manager(a, dh_id, env, caller);
  }
}

void agent__dh_call_control(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env) {
  agent_op_t *op = peer_find(a, AGENT_DH_KEY(dh_id), env->pb.id);
  bool cancel = env->pb.which_msg == dfnet_v1_Envelope_cancel_tag;
  if (op == NULL) {
    DFNET_LOGD(CALL_SUBSYS, a->host_name, "driver host %llu: %s for call %llu not in flight",
               (unsigned long long)dh_id, cancel ? "Cancel" : "StreamCredit",
               (unsigned long long)env->pb.id);
    return;
  }
  if (op->host_id == 0) { /* up to the manager */
    if (cancel) {
      /* completes the request (CANCELLED) during this call: op is freed */
      (void)dfnet_transport_request_cancel(a->t, op->up_session, op->up_request, true,
                                           env->pb.msg.cancel.reason[0]
                                               ? env->pb.msg.cancel.reason
                                               : "cancelled by the calling driver");
      return;
    }
    dfnet_envelope_t *w =
        dfnet_envelope_reuse(a->scratch, op->up_request, dfnet_v1_Envelope_stream_credit_tag);
    w->pb.msg.stream_credit = env->pb.msg.stream_credit;
    (void)dfnet_transport_send(a->t, op->up_session, w, 0);
    return;
  }
  dfnet_envelope_t *fwd = dfnet_envelope_reuse(a->scratch, op->local_id, env->pb.which_msg);
  if (cancel)
    fwd->pb.msg.cancel = env->pb.msg.cancel;
  else
    fwd->pb.msg.stream_credit = env->pb.msg.stream_credit;
  (void)sup_send_batched(a, op->host_id, fwd);
}

/* Driver host dh_id ended: the calls its drivers made are cancelled where they went. (The
 * calls it served were answered UNAVAILABLE by the supervisor before this.) */
static void driver_calls_host_ended(agent_t *a, uint64_t dh_id) {
  agent_op_t *op, *tmp;
  HASH_ITER(hh_local, a->ops_by_local, op, tmp) {
    if (op->kind != AGENT_OP_CALL || op->caller_dh != dh_id)
      continue;
    peer_forget(a, op);
    op->caller_answered = true;
    if (op->host_id == 0) {
      /* completes the request (CANCELLED) during this call: op is freed */
      (void)dfnet_transport_request_cancel(a->t, op->up_session, op->up_request, true,
                                           "the calling driver host ended");
      continue;
    }
    dfnet_envelope_t *cancel =
        dfnet_envelope_reuse(a->scratch, op->local_id, dfnet_v1_Envelope_cancel_tag);
    agent__strlcpy(cancel->pb.msg.cancel.reason, "the calling driver host ended",
                   sizeof cancel->pb.msg.cancel.reason);
    (void)sup_send_batched(a, op->host_id, cancel);
  }
}

void agent__dh_on_exit(void *arg, const dfnet_driver_host_exit_t *exit) {
  driver_calls_host_ended(arg, exit->host_id);
  agent__sup_on_exit(arg, exit);
}
