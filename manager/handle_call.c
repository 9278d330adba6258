/* dfnet-manager: routing a Call to the driver that serves it (issue 7, docs/design.md
 * "Calls"; docs/architecture.md "Calls", "Host session protocol" step 9).
 *
 * client --Call(id C)--> manager --Call(id H, target = moniker)--> host agent --> driver
 *        <--Reply(id C)--         <--Reply(id H)--
 *
 * The caller is a client session, or a host session calling for one of its drivers a
 * service whose source node is on another board (a composite's parent; issue "Drivers
 * that talk to drivers"): host A --Call(id A, caller = the driver's node)--> manager -->
 * host B, replies back to A under A's id. The manager vouches for what it forwards as
 * Call.caller: a client's certificate name, or, for a host, the node it names, which must
 * be that host's, run a driver (whose URL goes on as caller_driver_url, and must be the
 * one the host named, if any) and have been offered the method's service by the target
 * (offers.c); else PERMISSION_DENIED. Everything else is the same for both.
 *
 * The target is a node moniker or a class path ("class/<class>/<NNN>"). A node its
 * parent's driver keeps (OWNED_BY_PARENT, e.g. the "rng" child that publishes class/rng/000)
 * is served by that driver, as a devfs entry is served by the driver that published it:
 * the call goes to the nearest ancestor with a bound driver. A node that does not exist
 * is NOT_FOUND; one with no driver FAILED_PRECONDITION; one whose driver is starting or
 * suspended (SuspendNode; "<node> is suspended"), one added while its parent's driver
 * starts, or one whose host is offline, UNAVAILABLE (transient: the caller may retry).
 * dfnet.lab.ArtifactCache calls (proto/dfnet/lab/artifact.proto) are the host agent's: they go
 * to the node's host whatever runs on the node (only an offline host is UNAVAILABLE). The call
 * goes on to the host as a streaming transport request with the time left (deadline_ms) as its
 * deadline, so this hop enforces it too; every reply is relayed under the caller's id, and the
 * transport's own completions (DEADLINE_EXCEEDED, UNAVAILABLE when the host drops, CANCELLED)
 * become a final Reply. Cancel and StreamCredit from the caller travel on to the host with the id
 * of the forwarded call; a caller that disconnects cancels its calls, so the driver learns of it.
 * Each call gets exactly one final Reply (the transport's exactly-once completion carries that
 * guarantee).
 *
 * A route is found by (caller's session, caller's call id): uthash with a two-u64 key. Routes
 * live from the forwarded request's start to its last completion.
 *
 * Leases (lease.h, lease_fence.c): a client's call to a node a lease covers must carry that
 * lease's token from a session of its holder, else FAILED_PRECONDITION naming the holder
 * (with --require-lease, a call to a node no lease covers too); checked once the target is
 * resolved, before anything else is told. The token is never forwarded. A call that carried
 * it ends CANCELLED ("lease 42 expired") when the lease ends, cancelled through to the
 * driver. Driver-to-driver calls are not fenced.
 *
 * Bounds (issue "The manager holds under abuse"): a session (client or host) has at most
 * cfg.max_calls_per_session calls in flight (256; the next is RESOURCE_EXHAUSTED with the
 * limit in its message), so a route table, its hash entries and the host requests behind
 * them stay bounded per caller; a call without a deadline gets cfg.default_call_deadline_ms
 * (30 s), so none waits forever at any hop.
 *
 * Metrics (metrics.c, docs/metrics.md): every call's end is counted with its method and final
 * code, a refusal here included, and its time from arrival; payload bytes both ways.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/lease.h"
#include "manager/manager.h"

/* dfnet.lab.ArtifactCache: answered by the agent of the node's host, not by a driver. */
#define ARTIFACT_PREFIX "/dfnet.lab.ArtifactCache/"

typedef struct call_key {
  uint64_t session; /* the caller's session (a client's, or a host's for its driver) */
  uint64_t id;      /* the caller's call id */
} call_key_t;

struct mgr_call {
  UT_hash_handle hh;
  call_key_t key;
  mgr_t *m;
  dfnet_session_id_t host_session;
  uint64_t host_request; /* the forwarded call's id on the host session */
  bool registered;
  uint64_t lease_id;    /* the lease whose token it carried (0: none): its end cancels it */
  char end_reason[128]; /* why the manager cancelled it ("lease 42 expired"), "" = not */
  uint64_t started_ms;  /* dfnet_transport_now_ms() at its arrival (metrics) */
  char method[pb_membersize(dfnet_v1_Call, method)]; /* metrics: its label */
};

/* The method of the call handle__call is routing (metrics: a call answered there, refused,
 * counts with its code), NULL outside handle__call. */
static const char *g_routing_method;

static mgr_call_t *call_find(mgr_t *m, dfnet_session_id_t session, uint64_t id) {
  call_key_t key = {session, id};
  mgr_call_t *c = NULL;
  HASH_FIND(hh, m->calls, &key, sizeof key, c);
  return c;
}

/* Answer the caller's call with a final Reply carrying `code` (no payload). */
static void reply_final(mgr_t *m, dfnet_session_id_t session, uint64_t id, dfnet_status_t code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void reply_final(mgr_t *m, dfnet_session_id_t session, uint64_t id, dfnet_status_t code,
                        const char *fmt, ...) {
  dfnet_envelope_t *w = dfnet_envelope_reuse(m->scratch, id, dfnet_v1_Envelope_reply_tag);
  w->pb.msg.reply = (dfnet_v1_Reply){.code = (dfnet_v1_Code)code, .end_of_stream = true};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->pb.msg.reply.message, sizeof w->pb.msg.reply.message, fmt, ap);
  va_end(ap);
  if (g_routing_method != NULL) /* refused before it was forwarded */
    metrics__call_end(m, g_routing_method, code, 0);
  /* a call always ends: its small final status passes a full send queue */
  (void)dfnet_transport_send(m->transport, session, w, DFNET_SEND_PAST_HWM);
}

/* A reply (or the end) of a forwarded call, on the service thread. */
static void on_host_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  mgr_call_t *c = user;
  mgr_t *m = c->m;
  bool client_open = sessions__find(m, c->key.session) != NULL;
  if (client_open) {
    if (status != DFNET_STATUS_OK) {
      reply_final(m, c->key.session, c->key.id, status, "%s",
                  c->end_reason[0] != '\0'             ? c->end_reason
                  : status == DFNET_STATUS_UNAVAILABLE ? "the host agent is gone"
                  : status == DFNET_STATUS_DEADLINE_EXCEEDED
                      ? "deadline exceeded on the way to the driver"
                      : dfnet_status_description(status));
    } else if (reply->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
      dfnet_envelope_t *w =
          dfnet_envelope_reuse(m->scratch, c->key.id, dfnet_v1_Envelope_reply_tag);
      w->pb.msg.reply = reply->pb.msg.reply;
      w->bulk = reply->bulk;
      metrics__relayed(m, true, reply->bulk.size);
      dfnet_status_t st = dfnet_transport_send(m->transport, c->key.session, w, 0);
      if (st == DFNET_STATUS_RESOURCE_EXHAUSTED && last) {
        /* The last reply does not fit the caller's send queue: end the call all the same. */
        DFNET_LOGW("calls", NULL, "session %llu: final reply of call %llu dropped: %s",
                   (unsigned long long)c->key.session, (unsigned long long)c->key.id,
                   dfnet_status_str(st));
        reply_final(m, c->key.session, c->key.id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                    "the reply did not fit the caller's send queue (the caller reads too "
                    "slowly)");
      } else if (st != DFNET_STATUS_OK && !last) {
        /* The caller cannot take more (send queue over its mark): end the call rather
         * than let memory grow; the driver learns of it through Cancel. */
        DFNET_LOGW("calls", NULL, "session %llu: %s; cancelling call %llu",
                   (unsigned long long)c->key.session, dfnet_status_str(st),
                   (unsigned long long)c->key.id);
        (void)dfnet_transport_request_cancel(m->transport, c->host_session, c->host_request, true,
                                             "the caller cannot keep up");
        return; /* the cancel completes the call (last == true) */
      }
    } else if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
      reply_final(m, c->key.session, c->key.id, (dfnet_status_t)reply->pb.msg.status.code, "%s",
                  reply->pb.msg.status.message);
    } else {
      reply_final(m, c->key.session, c->key.id, DFNET_STATUS_INTERNAL,
                  "the host answered a call with %s", dfnet_envelope_msg_name(reply->pb.which_msg));
    }
  }
  if (!last) {
    if (!client_open)
      (void)dfnet_transport_request_cancel(m->transport, c->host_session, c->host_request, true,
                                           "the caller went away");
    return;
  }
  metrics__call_end(m, c->method,
                    status != DFNET_STATUS_OK ? status
                    : reply->pb.which_msg == dfnet_v1_Envelope_reply_tag
                        ? (dfnet_status_t)reply->pb.msg.reply.code
                    : reply->pb.which_msg == dfnet_v1_Envelope_status_tag
                        ? (dfnet_status_t)reply->pb.msg.status.code
                        : DFNET_STATUS_INTERNAL,
                    c->started_ms);
  if (c->registered) {
    HASH_DEL(m->calls, c);
    mgr_session_t *caller = sessions__find(m, c->key.session);
    if (caller != NULL && caller->calls > 0)
      caller->calls--;
  }
  free(c);
}

/* A host's call for its driver (Call.caller): the node must be this host's, run a driver
 * (the one the host names, if it names one) and have been offered the method's service by
 * `target`. Returns that driver's URL, or NULL when the call has been answered
 * PERMISSION_DENIED. */
static const char *driver_caller(mgr_t *m, const mgr_session_t *s, uint64_t id,
                                 const dfnet_v1_Call *call, const topology_node_t *target) {
  const topology_node_t *caller = topology__find(&m->topo, call->caller);
  if (caller == NULL || caller->host_id != s->host_id) {
    reply_final(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED,
                "caller '%s' is not a node of host %s", call->caller, s->name);
    return NULL;
  }
  const driver_t *d = driver_index__get(&m->index, caller->driver_id);
  if (d == NULL || (caller->state != dfnet_v1_NodeState_BOUND && !caller->starting)) {
    reply_final(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED, "no driver runs on caller %s",
                caller->moniker);
    return NULL;
  }
  if (call->caller_driver_url[0] != '\0' && strcmp(call->caller_driver_url, d->url) != 0) {
    reply_final(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED, "%s runs %s, not %s", caller->moniker,
                d->url, call->caller_driver_url);
    return NULL;
  }
  char why[TOPOLOGY_MONIKER_MAX * 2 + 300];
  if (!offers__permit(m, caller, target->moniker, call->method, why, sizeof why)) {
    reply_final(m, s->id, id, DFNET_STATUS_PERMISSION_DENIED, "%s", why);
    return NULL;
  }
  return d->url;
}

/* Forward a checked call to the host of the node n that serves it, on behalf of session s
 * (lease_id: the caller's lease on it, 0 for none; driver_url: the calling driver's, NULL
 * for a client). Answers the call itself when it cannot be forwarded. */
static void forward_to_host(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env,
                            const topology_node_t *n, const mgr_host_t *h, uint64_t lease_id,
                            const char *driver_url) {
  const dfnet_v1_Call *call = &env->pb.msg.call;
  uint64_t id = env->pb.id;
  mgr_call_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    reply_final(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  c->m = m;
  c->key.session = s->id;
  c->key.id = id;
  c->host_session = h->session;
  c->lease_id = lease_id;
  c->started_ms = dfnet_transport_now_ms();
  memcpy(c->method, call->method, sizeof c->method);

  dfnet_envelope_t *w = dfnet_envelope_reuse(m->scratch, 0, dfnet_v1_Envelope_call_tag);
  dfnet_v1_Call *fwd = &w->pb.msg.call;
  topology__fmt(fwd->target, sizeof fwd->target, "%s", n->moniker);
  memcpy(fwd->method, call->method, sizeof fwd->method);
  uint32_t deadline = call->deadline_ms ? call->deadline_ms : m->cfg.default_call_deadline_ms;
  fwd->deadline_ms = deadline;
  fwd->credit = call->credit;
  fwd->lease_token[0] = '\0'; /* checked here, never forwarded */
  if (driver_url == NULL) {
    topology__fmt(fwd->caller, sizeof fwd->caller, "%s", s->name);
    fwd->caller_driver_url[0] = '\0';
  } else {
    memcpy(fwd->caller, call->caller, sizeof fwd->caller); /* checked: a node's moniker */
    topology__fmt(fwd->caller_driver_url, sizeof fwd->caller_driver_url, "%s", driver_url);
  }
  w->bulk = env->bulk;
  dfnet_request_opts_t opts = {
      .deadline_ms = deadline, .streaming = true, .on_reply = on_host_reply, .user = c};
  dfnet_status_t st =
      dfnet_transport_request(m->transport, h->session, w, &opts, 0, &c->host_request);
  if (st != DFNET_STATUS_OK) {
    free(c);
    reply_final(m, s->id, id, st, "cannot forward the call to host %s: %s", h->name,
                dfnet_status_str(st));
    return;
  }
  HASH_ADD(hh, m->calls, key, sizeof c->key, c);
  c->registered = true;
  s->calls++;
  metrics__relayed(m, false, env->bulk.size);
}

static void route_call(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

void handle__call(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  g_routing_method = env->pb.msg.call.method; /* metrics: a refusal counts under it */
  route_call(m, s, env);
  g_routing_method = NULL;
}

static void route_call(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_Call *call = &env->pb.msg.call;
  uint64_t id = env->pb.id;
  if (call_find(m, s->id, id) != NULL) {
    reply_final(m, s->id, id, DFNET_STATUS_ALREADY_EXISTS, "call id %llu is in use",
                (unsigned long long)id);
    return;
  }
  if (s->calls >= m->cfg.max_calls_per_session) {
    reply_final(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                "%u calls are in flight on this session: the limit (wait for one to end)",
                m->cfg.max_calls_per_session);
    return;
  }
  topology_node_t *n = topology__find_named(&m->topo, call->target);
  if (n == NULL) {
    reply_final(m, s->id, id, DFNET_STATUS_NOT_FOUND, "no node or class entry '%s'", call->target);
    return;
  }
  const char *driver_url = NULL; /* a driver's call: the calling driver */
  if (s->kind == SESSION_HOST && (driver_url = driver_caller(m, s, id, call, n)) == NULL)
    return;
  const topology_node_t *named = n;
  const char *addressed = n->moniker;
  while (n->state == dfnet_v1_NodeState_OWNED_BY_PARENT && n->parent_count > 0)
    n = n->parents[0];
  uint64_t lease_id = 0;
  if (s->kind == SESSION_CLIENT) {
    char why[TOPOLOGY_MONIKER_MAX + 200];
    dfnet_status_t fenced = lease__fence_call(m, s, call, named, n, &lease_id, why, sizeof why);
    if (fenced != DFNET_STATUS_OK) {
      reply_final(m, s->id, id, fenced, "%s", why);
      return;
    }
  }
  bool artifact = strncmp(call->method, ARTIFACT_PREFIX, sizeof ARTIFACT_PREFIX - 1) == 0;
  if (artifact) {
    /* The host's artifact cache: its agent answers for any of its nodes, driver or not. */
    if (n->offline) {
      reply_final(m, s->id, id, DFNET_STATUS_UNAVAILABLE, "%s: its host is offline", n->moniker);
      return;
    }
  } else if (n->starting || n->offline) {
    /* Transient (gRPC UNAVAILABLE: retry): the driver is being started, or the host is
     * reconnecting within its grace period. */
    reply_final(m, s->id, id, DFNET_STATUS_UNAVAILABLE, "%s: %s", n->moniker,
                n->offline ? "its host is offline" : "its driver is starting");
    return;
  }
  if (!artifact && (n->suspended || n->hidden)) {
    /* Transient too: resumed by an admin (SuspendNode, ResumeNode), or listed once its
     * parent's driver has started (asynchronous start). */
    reply_final(m, s->id, id, DFNET_STATUS_UNAVAILABLE, "%s is %s", n->moniker,
                n->suspended ? "suspended" : "not ready: its parent's driver is starting");
    return;
  }
  if (!artifact && (n->state != dfnet_v1_NodeState_BOUND || n->driver_id == 0)) {
    if (n->moniker != addressed) {
      reply_final(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION,
                  "%s is kept by %s, which has no running driver", addressed, n->moniker);
      return;
    }
    reply_final(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION, "node %s has no running driver%s%s",
                n->moniker, n->unbound_msg ? ": " : "", n->unbound_msg ? n->unbound_msg : "");
    return;
  }
  mgr_host_t *h = hosts__get(m, n->host_id);
  if (h == NULL || h->session == 0) {
    reply_final(m, s->id, id, DFNET_STATUS_UNAVAILABLE, "the host of %s is offline", n->moniker);
    return;
  }
  forward_to_host(m, s, env, n, h, lease_id, driver_url);
}

bool handle__call_cancel(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  mgr_call_t *c = call_find(m, s->id, env->pb.id);
  if (c == NULL)
    return false;
  /* Completes the call (CANCELLED) during this call: c is freed. */
  (void)dfnet_transport_request_cancel(m->transport, c->host_session, c->host_request, true,
                                       env->pb.msg.cancel.reason[0] ? env->pb.msg.cancel.reason
                                                                    : "cancelled by the caller");
  return true;
}

void handle__stream_credit(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  mgr_call_t *c = call_find(m, s->id, env->pb.id);
  if (c == NULL)
    return; /* the call already ended: nothing to credit */
  dfnet_envelope_t *w =
      dfnet_envelope_reuse(m->scratch, c->host_request, dfnet_v1_Envelope_stream_credit_tag);
  w->pb.msg.stream_credit = env->pb.msg.stream_credit;
  (void)dfnet_transport_send(m->transport, c->host_session, w, 0);
}

void calls__lease_ended(mgr_t *m, uint64_t lease_id, const char *why) {
  mgr_call_t *c, *tmp;
  HASH_ITER(hh, m->calls, c, tmp) {
    if (c->lease_id != lease_id)
      continue;
    topology__fmt(c->end_reason, sizeof c->end_reason, "%s", why);
    /* completes the call (CANCELLED, with end_reason) during this call: c is freed */
    (void)dfnet_transport_request_cancel(m->transport, c->host_session, c->host_request, true, why);
  }
}

void calls__session_closed(mgr_t *m, dfnet_session_id_t session) {
  if (m->calls == NULL)
    return;
  mgr_call_t *c, *tmp;
  HASH_ITER(hh, m->calls, c, tmp) {
    if (c->key.session == session)
      (void)dfnet_transport_request_cancel(m->transport, c->host_session, c->host_request, true,
                                           "the caller disconnected");
  }
}
