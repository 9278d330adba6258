/* libdfnet-client: pull streams (dfnet_client_stream_*): a call whose replies queue up until
 * the caller takes them, credit granted back as it reads, so that a slow reader slows the
 * driver down instead of growing the queue without bound. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "clients/lib/client_internal.h"

typedef struct stream_msg {
  struct stream_msg *next, *prev; /* utlist DL: dfnet_client_stream.head */
  size_t len;
  uint8_t data[];
} stream_msg_t;

struct dfnet_client_stream {
  dfnet_client_t *c;
  dfnet_client_call_id_t call;
  client_op_t *op;    /* a reference of ours until close; NULL when the call ended first */
  client_waiter_t w;  /* the call's end; w.mu also guards the queue and refs */
  stream_msg_t *head; /* the queue, oldest first (utlist DL) */
  int refs;           /* the reader's + the call's (dropped in stream_done) */
};

static void stream_unref(dfnet_client_stream_t *s) {
  pthread_mutex_lock(&s->w.mu);
  bool last = --s->refs == 0;
  pthread_mutex_unlock(&s->w.mu);
  if (!last)
    return;
  stream_msg_t *m, *next;
  DL_FOREACH_SAFE(s->head, m, next) {
    free(m);
  }
  client__waiter_destroy(&s->w);
  free(s);
}

/* Client thread: queue one reply. */
static void stream_message(void *user, dfnet_client_call_id_t call, const uint8_t *data,
                           size_t len) {
  dfnet_client_stream_t *s = user;
  (void)call;
  stream_msg_t *m = malloc(sizeof *m + len);
  pthread_mutex_lock(&s->w.mu);
  if (m == NULL) {
    s->w.oom = true;
  } else {
    m->len = len;
    if (len > 0)
      memcpy(m->data, data, len);
    DL_APPEND(s->head, m);
  }
  pthread_cond_signal(&s->w.cv);
  pthread_mutex_unlock(&s->w.mu);
}

static void stream_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                        const char *message) {
  dfnet_client_stream_t *s = user;
  (void)call;
  client__waiter_done(&s->w, status, message);
  stream_unref(s);
}

dfnet_status_t dfnet_client_stream_open(dfnet_client_t *c, const char *target, const char *method,
                                        const void *request, size_t len,
                                        const dfnet_client_call_options_t *opts,
                                        dfnet_client_stream_t **out, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client and out are required");
  *out = NULL;
  dfnet_client_stream_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  s->c = c;
  s->refs = 2;
  client__waiter_init(&s->w);
  dfnet_status_t st = client__call_start(c, target, method, request, len, opts, false,
                                         stream_message, stream_done, s, &s->call, err);
  if (st != DFNET_STATUS_OK) {
    s->refs = 1;
    stream_unref(s);
    return st;
  }
  /* Keep a reference on the op so that credit can be granted while we read. */
  s->op = client__op_get(c, s->call, CLIENT_OP_CALL);
  *out = s;
  return DFNET_STATUS_OK;
}

/* w.mu held: wait for a message, the end or out of memory (timeout_ms 0: no timeout).
 * DEADLINE_EXCEEDED when the timeout passed first. */
static dfnet_status_t wait_message_locked(dfnet_client_stream_t *s, uint32_t timeout_ms) {
  struct timespec until;
  if (timeout_ms)
    client__deadline(&until, timeout_ms);
  while (s->head == NULL && !s->w.done && !s->w.oom) {
    if (timeout_ms == 0)
      pthread_cond_wait(&s->w.cv, &s->w.mu);
    else if (pthread_cond_timedwait(&s->w.cv, &s->w.mu, &until) == ETIMEDOUT && s->head == NULL &&
             !s->w.done)
      return DFNET_STATUS_DEADLINE_EXCEEDED;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_stream_next(dfnet_client_stream_t *s, uint32_t timeout_ms,
                                        uint8_t **data, size_t *len, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (s == NULL || data == NULL || len == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "stream, data and len are required");
  *data = NULL;
  *len = 0;
  if (dfnet_transport_on_service_thread(s->c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "dfnet_client_stream_next called from a callback");
  pthread_mutex_lock(&s->w.mu);
  if (wait_message_locked(s, timeout_ms) != DFNET_STATUS_OK) {
    pthread_mutex_unlock(&s->w.mu);
    return client__fail(err, DFNET_STATUS_DEADLINE_EXCEEDED, "no message within %u ms", timeout_ms);
  }
  if (s->w.oom) {
    pthread_mutex_unlock(&s->w.mu);
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for a message");
  }
  stream_msg_t *m = s->head;
  if (m == NULL) {
    dfnet_status_t st = s->w.status;
    pthread_mutex_unlock(&s->w.mu);
    if (st == DFNET_STATUS_OK)
      return client__fail(err, DFNET_STATUS_ABORTED, "end of stream");
    return client__fail(err, st, "%s", s->w.message);
  }
  DL_DELETE(s->head, m);
  bool done = s->w.done;
  pthread_mutex_unlock(&s->w.mu);
  if (!done && s->op != NULL)
    client__op_consumed(s->op);
  size_t n = m->len;
  if (n > 0) {
    memmove(m, m->data, n); /* hand the bytes over in the same block */
    *data = (uint8_t *)m;
    *len = n;
  } else {
    free(m);
  }
  return DFNET_STATUS_OK;
}

void dfnet_client_stream_close(dfnet_client_stream_t *s) {
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->w.mu);
  bool done = s->w.done;
  pthread_mutex_unlock(&s->w.mu);
  if (!done)
    (void)client__op_cancel(s->c, s->call, CLIENT_OP_CALL);
  if (s->op != NULL)
    client__op_unref(s->op);
  stream_unref(s);
}
