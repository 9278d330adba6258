/* libdfnet-client: calls to a driver's method through the manager (proto/dfnet/v1/call.proto)
 * — with callbacks (dfnet_client_call_start), and blocking for the last reply
 * (dfnet_client_call). The pull stream (stream.c) starts its call here too. */
#include <stdlib.h>
#include <string.h>

#include "clients/lib/client_internal.h"

#define DEFAULT_CREDIT 16u

/* The Call envelope (malloc'd; the caller frees it) for the arguments, or an error:
 * INVALID_ARGUMENT (missing or over-long target or method, method not /pkg.Service/Method),
 * RESOURCE_EXHAUSTED. The request bytes are borrowed. */
static dfnet_status_t call_envelope(dfnet_envelope_t **out, const char *target, const char *method,
                                    const void *request, size_t len,
                                    const dfnet_client_call_options_t *opts,
                                    dfnet_client_error_t *err) {
  if (target == NULL || method == NULL || (request == NULL && len > 0))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "target and method are required");
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  DFNET_ENVELOPE_INIT_MEMBER(env, dfnet_v1_Envelope_call_tag, call);
  dfnet_v1_Call *call = &env->pb.msg.call;
  dfnet_status_t st = client__copy_field(call->target, sizeof call->target, target, "target", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(call->method, sizeof call->method, method, "method", err);
  if (st == DFNET_STATUS_OK && method[0] != '/')
    st = client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                      "method '%s' is not /<package>.<Service>/<Method>", method);
  if (st != DFNET_STATUS_OK) {
    free(env);
    return st;
  }
  call->deadline_ms = opts ? opts->deadline_ms : 0;
  call->credit = opts && opts->credit ? opts->credit : DEFAULT_CREDIT;
  env->bulk.data = request;
  env->bulk.size = len;
  *out = env;
  return DFNET_STATUS_OK;
}

dfnet_status_t client__call_start(dfnet_client_t *c, const char *target, const char *method,
                                  const void *request, size_t len,
                                  const dfnet_client_call_options_t *opts, bool auto_credit,
                                  dfnet_client_message_fn on_message, dfnet_client_done_fn on_done,
                                  void *user, dfnet_client_call_id_t *call_out,
                                  dfnet_client_error_t *err) {
  if (c == NULL || on_done == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client and on_done are required");
  dfnet_envelope_t *env = NULL;
  dfnet_status_t st = call_envelope(&env, target, method, request, len, opts, err);
  if (st != DFNET_STATUS_OK)
    return st;
  client_op_t *op = calloc(1, sizeof *op);
  if (op == NULL) {
    free(env);
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  pthread_mutex_lock(&c->mu); /* the client's lease token (lease.c), "" = none */
  memcpy(env->pb.msg.call.lease_token, c->lease_token, sizeof c->lease_token);
  pthread_mutex_unlock(&c->mu);
  op->kind = CLIENT_OP_CALL;
  op->window = env->pb.msg.call.credit;
  op->auto_credit = auto_credit;
  op->on_message = on_message;
  op->on_done = on_done;
  op->user = user;
  return client__op_start(c, op, env, opts ? opts->deadline_ms : 0, call_out, err);
}

dfnet_status_t dfnet_client_call_start(dfnet_client_t *c, const char *target, const char *method,
                                       const void *request, size_t len,
                                       const dfnet_client_call_options_t *opts,
                                       dfnet_client_message_fn on_message,
                                       dfnet_client_done_fn on_done, void *user,
                                       dfnet_client_call_id_t *call_out) {
  return client__call_start(c, target, method, request, len, opts, true, on_message, on_done, user,
                            call_out, NULL);
}

dfnet_status_t dfnet_client_call_cancel(dfnet_client_t *c, dfnet_client_call_id_t call) {
  return client__op_cancel(c, call, CLIENT_OP_CALL);
}

/* ---- the blocking call -------------------------------------------------------------- */

/* What dfnet_client_call waits on: the end, and the last reply (under w.mu). */
typedef struct sync_call {
  client_waiter_t w;
  uint8_t *data; /* malloc'd copy of the last reply; NULL when empty */
  size_t len;
} sync_call_t;

static void sync_message(void *user, dfnet_client_call_id_t call, const uint8_t *data, size_t len) {
  sync_call_t *s = user;
  (void)call;
  uint8_t *copy = len > 0 ? malloc(len) : NULL;
  if (copy != NULL)
    memcpy(copy, data, len);
  pthread_mutex_lock(&s->w.mu);
  if (len > 0 && copy == NULL) {
    s->w.oom = true;
  } else {
    free(s->data);
    s->data = copy;
    s->len = len;
  }
  pthread_mutex_unlock(&s->w.mu);
}

static void sync_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                      const char *message) {
  sync_call_t *s = user;
  (void)call;
  client__waiter_done(&s->w, status, message);
}

dfnet_status_t dfnet_client_call(dfnet_client_t *c, const char *target, const char *method,
                                 const void *request, size_t len,
                                 const dfnet_client_call_options_t *opts, uint8_t **reply,
                                 size_t *reply_len, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (reply == NULL || reply_len == NULL || c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "reply and reply_len are required");
  *reply = NULL;
  *reply_len = 0;
  if (dfnet_transport_on_service_thread(c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "dfnet_client_call called from a callback");
  sync_call_t s = {.data = NULL};
  client__waiter_init(&s.w);
  dfnet_status_t st = client__call_start(c, target, method, request, len, opts, true, sync_message,
                                         sync_done, &s, NULL, err);
  if (st == DFNET_STATUS_OK) {
    client__waiter_wait(&s.w);
    st = s.w.status;
    if (st == DFNET_STATUS_OK && s.w.oom)
      st = client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for the reply");
    else if (st != DFNET_STATUS_OK)
      client__fail(err, st, "%s", s.w.message);
    if (st == DFNET_STATUS_OK) {
      *reply = s.data;
      *reply_len = s.len;
      s.data = NULL;
    }
  }
  free(s.data);
  client__waiter_destroy(&s.w);
  return st;
}
