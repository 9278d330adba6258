/* Calls through the agent (docs/architecture.md "Host session protocol", step 8) and the
 * table of requests in flight to driver hosts.
 *
 * Every request to a driver host (Call, DriverStart, DriverStop) is an op with an id of
 * ours (local ids never repeat, so calls from a dropped session and from the next one
 * never meet). A Call's op also remembers the manager's session and envelope id: its
 * Replies go back under that id, and the manager's Cancel / StreamCredit (which carry the
 * Call's id) find it through calls_by_peer. When the session goes, its calls are
 * cancelled at their driver hosts; their final Replies are then dropped here.
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

static void peer_forget(agent_t *a, agent_op_t *op) {
  if (op->in_peer_table) {
    HASH_DELETE(hh_peer, a->calls_by_peer, op);
    op->in_peer_table = false;
  }
}

void agent__op_free(agent_t *a, agent_op_t *op) {
  HASH_DELETE(hh_local, a->ops_by_local, op);
  peer_forget(a, op);
  free(op->moniker);
  free(op);
}

void agent__ops_free(agent_t *a) {
  agent_op_t *op, *tmp;
  HASH_ITER(hh_local, a->ops_by_local, op, tmp) { agent__op_free(a, op); }
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
  agent_op_t *dup = NULL;
  struct {
    uint64_t session, id;
  } key = {session, id};
  HASH_FIND(hh_peer, a->calls_by_peer, &key, sizeof key, dup);
  if (dup != NULL) {
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
  op->peer_key.session = session;
  op->peer_key.id = id;
  HASH_ADD(hh_peer, a->calls_by_peer, peer_key, sizeof op->peer_key, op);
  op->in_peer_table = true;

  dfnet_envelope_t *fwd =
      dfnet_envelope_reuse(a->scratch, op->local_id, dfnet_v1_Envelope_call_tag);
  fwd->pb.msg.call = *m;
  fwd->bulk = env->bulk;
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
  agent_op_t *op = NULL;
  struct {
    uint64_t session, id;
  } key = {session, env->pb.id};
  HASH_FIND(hh_peer, a->calls_by_peer, &key, sizeof key, op);
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

void agent__call_answer(agent_t *a, agent_op_t *op, const dfnet_envelope_t *env) {
  bool last = true;
  if (env->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
    last = env->pb.msg.reply.end_of_stream;
    if (op->session != 0 && op->session == a->session) {
      dfnet_envelope_t *out =
          dfnet_envelope_reuse(a->scratch, op->manager_id, dfnet_v1_Envelope_reply_tag);
      out->pb.msg.reply = env->pb.msg.reply;
      out->bulk = env->bulk;
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
