/* libdfnet-client: one query of the manager's client API (proto/dfnet/v1/query.proto): a
 * request answered by a stream of items closed by a Status (the lists, list.c) or by one
 * reply (the control requests, control.c), waited for by the caller's thread. */
#include <stdio.h>
#include <stdlib.h>

#include "clients/lib/client_internal.h"

#define DEFAULT_QUERY_DEADLINE_MS 30000u

/* A query's state: its end (w) and what its items said. */
typedef struct query_wait {
  client_waiter_t w;
  dfnet_status_t item_status; /* first failure of on_item (client thread only) */
  client_item_fn on_item;
  void *ctx;
} query_wait_t;

/* Client thread: one reply of the query (the last one ends it). */
static void query_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *env, bool last) {
  query_wait_t *q = user;
  dfnet_status_t final = DFNET_STATUS_OK;
  char msg[512] = "";
  if (status != DFNET_STATUS_OK) {
    final = status;
    snprintf(msg, sizeof msg, "%s",
             status == DFNET_STATUS_DEADLINE_EXCEEDED ? "deadline exceeded"
             : status == DFNET_STATUS_UNAVAILABLE     ? "connection to the manager lost"
                                                      : dfnet_status_str(status));
  } else if (env->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    final = (dfnet_status_t)env->pb.msg.status.code;
    snprintf(msg, sizeof msg, "%s", env->pb.msg.status.message);
  } else if (q->item_status == DFNET_STATUS_OK) {
    q->item_status = q->on_item ? q->on_item(q->ctx, env) : DFNET_STATUS_OK;
  }
  if (last)
    client__waiter_done(&q->w, final, msg);
}

/* Send req on the current session; one that closed a moment ago: wait for the next once. */
static dfnet_status_t query_send(dfnet_client_t *c, dfnet_envelope_t *req,
                                 const dfnet_request_opts_t *ro, dfnet_client_error_t *err) {
  dfnet_status_t st = DFNET_STATUS_OK;
  for (int attempt = 0; attempt < 2; attempt++) {
    dfnet_session_id_t sid;
    st = client__session(c, ro->deadline_ms, &sid, err);
    if (st != DFNET_STATUS_OK)
      return st;
    st = dfnet_transport_request(c->t, sid, req, ro, DFNET_SEND_WAIT, NULL);
    if (st != DFNET_STATUS_NOT_FOUND)
      break;
    client__session_gone(c, sid);
  }
  if (st != DFNET_STATUS_OK)
    return client__fail(err, st == DFNET_STATUS_NOT_FOUND ? DFNET_STATUS_UNAVAILABLE : st,
                        "%s not sent: %s", dfnet_envelope_msg_name(req->pb.which_msg),
                        st == DFNET_STATUS_NOT_FOUND ? "the session just closed"
                                                     : dfnet_status_str(st));
  return DFNET_STATUS_OK;
}

dfnet_status_t client__query(dfnet_client_t *c, dfnet_envelope_t *req, bool streaming,
                             uint32_t deadline_ms, client_item_fn on_item, void *ctx,
                             dfnet_client_error_t *err) {
  query_wait_t q = {.on_item = on_item, .ctx = ctx};
  client__waiter_init(&q.w);
  dfnet_request_opts_t ro = {.deadline_ms = deadline_ms ? deadline_ms : DEFAULT_QUERY_DEADLINE_MS,
                             .streaming = streaming,
                             .on_reply = query_reply,
                             .user = &q};
  dfnet_status_t st = query_send(c, req, &ro, err);
  if (st == DFNET_STATUS_OK) {
    client__waiter_wait(&q.w);
    if (q.w.status != DFNET_STATUS_OK)
      st = client__fail(err, q.w.status, "%s", q.w.message);
    else if (q.item_status != DFNET_STATUS_OK)
      st = client__fail(err, q.item_status, "%s",
                        q.item_status == DFNET_STATUS_RESOURCE_EXHAUSTED
                            ? "out of memory for the answer"
                            : "unexpected answer from the manager");
    else if (err != NULL) /* OK: the manager's closing message, if it said one */
      client__fail(err, DFNET_STATUS_OK, "%s", q.w.message);
  }
  client__waiter_destroy(&q.w);
  return st;
}

dfnet_status_t client__no_item(void *ctx, const dfnet_envelope_t *env) {
  (void)ctx;
  (void)env;
  return DFNET_STATUS_INTERNAL; /* anything but the Status */
}

dfnet_envelope_t *client__envelope_new(pb_size_t which, dfnet_client_error_t *err) {
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL) {
    client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  dfnet_envelope_init(env);
  env->pb.which_msg = which;
  return env;
}
