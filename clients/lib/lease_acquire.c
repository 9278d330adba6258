/* libdfnet-client: acquiring a lease (docs/architecture.md "Leases";
 * proto/dfnet/v1/lease.proto; include/dfnet/client.h "Leases"): dfnet_client_lease_acquire
 * (blocking, waiting in the manager's queue) and dfnet_client_lease_acquire_cancel. The
 * lease's copy and its release are lease.c's, its renewals lease_renewal.c's.
 *
 * A LeaseAcquire that waits may be answered first with LeaseInfo messages that give its
 * place in the queue (queue_position > 0), then with the lease (queue_position 0) or a
 * Status. The caller's thread waits for the end; at its deadline, or on
 * dfnet_client_lease_acquire_cancel, it cancels the request (a Cancel goes to the manager,
 * which takes it out of the queue). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "clients/lib/client_internal.h"
#include "lib/log.h"

#define SUB "client"
#define ACQUIRE_ANSWER_MS 30000u /* the answer to a request that does not wait */
#define ACQUIRE_SLACK_MS 5000u   /* past wait_ms: the manager ends a wait first */

struct client_acquire {
  client_acquire_t *next; /* utlist LL: on c->acquiring (c->mu), newest first */
  client_waiter_t w;      /* the end; under w.mu also what follows */
  bool cancel;            /* dfnet_client_lease_acquire_cancel (set under c->mu and w.mu) */
  uint64_t queue_id;      /* the queue entry's id, from the manager's LeaseInfo */
  uint32_t position;
  client_lease_holder_t *granted; /* the lease, once granted */
  dfnet_client_lease_queue_fn on_queued;
  void *user;
};

/* The LeaseAcquire of o into m. INVALID_ARGUMENT with err set. */
static dfnet_status_t acquire_fill(dfnet_v1_LeaseAcquire *m, const dfnet_client_lease_options_t *o,
                                   dfnet_client_error_t *err) {
  const size_t max_targets = sizeof m->targets / sizeof m->targets[0];
  const size_t max_match = sizeof m->match / sizeof m->match[0];
  if (o->target_count == 0 && o->match_count == 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a target or a selector is required");
  if (o->target_count > max_targets || o->match_count > max_match)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%zu targets and %zu selectors: at most %zu and %zu", o->target_count,
                        o->match_count, max_targets, max_match);
  if ((o->target_count > 0 && o->targets == NULL) || (o->match_count > 0 && o->match == NULL))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "targets or match is NULL");
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t i = 0; st == DFNET_STATUS_OK && i < o->target_count; i++) {
    if (o->targets[i] == NULL || o->targets[i][0] == '\0')
      return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "target %zu is empty", i + 1);
    st = client__copy_field(m->targets[i], sizeof m->targets[i], o->targets[i], "a target", err);
  }
  for (size_t i = 0; st == DFNET_STATUS_OK && i < o->match_count; i++) {
    const char *eq = o->match[i] != NULL ? strchr(o->match[i], '=') : NULL;
    if (eq == NULL || eq == o->match[i])
      return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "selector '%s' is not KEY=VALUE",
                          o->match[i] != NULL ? o->match[i] : "(null)");
    st = client__copy_field(m->match[i], sizeof m->match[i], o->match[i], "a selector", err);
  }
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(m->reason, sizeof m->reason, o->reason, "the reason", err);
  if (st != DFNET_STATUS_OK)
    return st;
  if ((unsigned)o->priority > DFNET_CLIENT_LEASE_HIGH)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "unknown priority %d",
                        (int)o->priority);
  m->targets_count = (pb_size_t)o->target_count;
  m->match_count = (pb_size_t)o->match_count;
  m->ttl_ms = o->ttl_ms;
  m->no_expiry = o->no_expiry;
  m->wait = o->wait;
  m->wait_ms = o->wait ? o->wait_ms : 0;
  m->priority = (dfnet_v1_LeasePriority)o->priority;
  return DFNET_STATUS_OK;
}

/* Streaming: a LeaseInfo with a queue position is not the end. */
static bool acquire_is_last(void *user, const dfnet_envelope_t *env) {
  (void)user;
  return env->pb.which_msg != dfnet_v1_Envelope_lease_info_tag ||
         env->pb.msg.lease_info.queue_position == 0;
}

/* Client thread: one answer to the LeaseAcquire. */
static void acquire_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *env,
                          bool last) {
  client_acquire_t *a = user;
  const dfnet_v1_LeaseInfo *info =
      status == DFNET_STATUS_OK && env->pb.which_msg == dfnet_v1_Envelope_lease_info_tag
          ? &env->pb.msg.lease_info
          : NULL;
  if (!last) { /* its place in the queue */
    if (info == NULL)
      return;
    pthread_mutex_lock(&a->w.mu);
    a->queue_id = info->id;
    a->position = info->queue_position;
    pthread_mutex_unlock(&a->w.mu);
    if (a->on_queued != NULL)
      a->on_queued(a->user, info->id, info->queue_position);
    return;
  }
  if (info != NULL) {
    client_lease_holder_t *h = client__lease_holder_new(info);
    pthread_mutex_lock(&a->w.mu);
    a->granted = h;
    a->w.oom = h == NULL;
    pthread_mutex_unlock(&a->w.mu);
    client__waiter_done(&a->w, DFNET_STATUS_OK, NULL);
  } else if (status != DFNET_STATUS_OK) {
    client__waiter_done(&a->w, status,
                        status == DFNET_STATUS_UNAVAILABLE ? "connection to the manager lost"
                                                           : dfnet_status_str(status));
  } else if (env->pb.which_msg == dfnet_v1_Envelope_status_tag &&
             env->pb.msg.status.code != dfnet_v1_Code_OK) {
    client__waiter_done(&a->w, (dfnet_status_t)env->pb.msg.status.code, env->pb.msg.status.message);
  } else {
    client__waiter_done(&a->w, DFNET_STATUS_INTERNAL,
                        "the manager's answer to LeaseAcquire has no lease");
  }
}

/* Send the LeaseAcquire on the current session (waiting up to session_ms for one); a
 * session that closed a moment ago: the next one, once. */
static dfnet_status_t acquire_send(dfnet_client_t *c, client_acquire_t *a, dfnet_envelope_t *env,
                                   uint32_t session_ms, dfnet_session_id_t *sid, uint64_t *rid,
                                   dfnet_client_error_t *err) {
  dfnet_request_opts_t ro = {
      .streaming = true, .is_last = acquire_is_last, .on_reply = acquire_reply, .user = a};
  dfnet_status_t st = DFNET_STATUS_OK;
  for (int attempt = 0; attempt < 2; attempt++) {
    st = client__session(c, session_ms, sid, err);
    if (st != DFNET_STATUS_OK)
      return st;
    st = dfnet_transport_request(c->t, *sid, env, &ro, DFNET_SEND_WAIT, rid);
    if (st != DFNET_STATUS_NOT_FOUND)
      break;
    client__session_gone(c, *sid);
  }
  if (st != DFNET_STATUS_OK)
    return client__fail(err, st == DFNET_STATUS_NOT_FOUND ? DFNET_STATUS_UNAVAILABLE : st,
                        "LeaseAcquire not sent: %s",
                        st == DFNET_STATUS_NOT_FOUND ? "the session just closed"
                                                     : dfnet_status_str(st));
  return DFNET_STATUS_OK;
}

typedef enum acquire_end { END_ANSWERED = 0, END_DEADLINE = 1, END_CANCELLED = 2 } acquire_end_t;

/* Wait for a's end. At `until` (NULL: none) or on a cancel, cancel the request: a Cancel
 * goes to the manager and the transport ends it CANCELLED (unless its answer came first).
 * Returns why it ended. */
static acquire_end_t acquire_wait(dfnet_client_t *c, client_acquire_t *a, dfnet_session_id_t sid,
                                  uint64_t rid, const struct timespec *until) {
  acquire_end_t why = END_ANSWERED;
  bool timed_out = false;
  pthread_mutex_lock(&a->w.mu);
  while (!a->w.done) {
    if (why == END_ANSWERED && (a->cancel || timed_out)) {
      why = a->cancel ? END_CANCELLED : END_DEADLINE;
      pthread_mutex_unlock(&a->w.mu);
      dfnet_transport_request_cancel(c->t, sid, rid, true,
                                     why == END_CANCELLED ? "cancelled by the client"
                                                          : "deadline exceeded");
      pthread_mutex_lock(&a->w.mu);
      continue;
    }
    if (until != NULL && why == END_ANSWERED)
      timed_out = pthread_cond_timedwait(&a->w.cv, &a->w.mu, until) == ETIMEDOUT;
    else
      pthread_cond_wait(&a->w.cv, &a->w.mu);
  }
  pthread_mutex_unlock(&a->w.mu);
  return why;
}

/* How an acquire that was answered (or cancelled: why; a cancel that came with the answer:
 * cancelled) ends for its caller. */
static dfnet_status_t acquire_result(dfnet_client_t *c, client_acquire_t *a, acquire_end_t why,
                                     bool cancelled, const dfnet_client_lease_options_t *o,
                                     dfnet_client_lease_t **out, dfnet_client_error_t *err) {
  client_lease_holder_t *h = a->granted;
  a->granted = NULL;
  if (h != NULL && (why == END_CANCELLED || cancelled)) { /* granted as we cancelled */
    dfnet_client_error_t rerr;
    dfnet_status_t rst =
        client__lease_release_request(c, h->pub.id, h->pub.token, false, NULL, &rerr);
    dfnet_client_error_t copy = rerr;
    client__fail(err, DFNET_STATUS_CANCELLED,
                 "cancelled; lease %" PRIu64 ", granted meanwhile, %s%s%s", h->pub.id,
                 rst == DFNET_STATUS_OK ? "was released" : "could not be released: ",
                 rst == DFNET_STATUS_OK ? "" : dfnet_status_str(rst),
                 rst == DFNET_STATUS_OK ? "" : copy.message);
    dfnet_client_lease_free(&h->pub);
    return DFNET_STATUS_CANCELLED;
  }
  if (h != NULL) {
    client__lease_record_start(c, &h->pub, o);
    *out = &h->pub;
    return DFNET_STATUS_OK;
  }
  if (a->w.status == DFNET_STATUS_OK && a->w.oom)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for the lease");
  if (why == END_CANCELLED)
    return a->position > 0
               ? client__fail(err, DFNET_STATUS_CANCELLED,
                              "cancelled while waiting in the queue (position %u)", a->position)
               : client__fail(err, DFNET_STATUS_CANCELLED, "cancelled");
  if (why == END_DEADLINE)
    return o->wait && a->position > 0
               ? client__fail(err, DFNET_STATUS_DEADLINE_EXCEEDED,
                              "still waiting in the queue (position %u) after %u ms", a->position,
                              o->wait_ms)
               : client__fail(err, DFNET_STATUS_DEADLINE_EXCEEDED,
                              "no answer from the manager in time");
  return client__fail(err, a->w.status, "%s", a->w.message);
}

dfnet_status_t dfnet_client_lease_acquire(dfnet_client_t *c, const dfnet_client_lease_options_t *o,
                                          dfnet_client_lease_t **out, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (out != NULL)
    *out = NULL;
  if (c == NULL || o == NULL || out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client, opts and out are required");
  if (dfnet_transport_on_service_thread(c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "dfnet_client_lease_acquire called from a callback");
  dfnet_envelope_t *env = client__envelope_new(dfnet_v1_Envelope_lease_acquire_tag, err);
  if (env == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_status_t st = acquire_fill(&env->pb.msg.lease_acquire, o, err);
  if (st != DFNET_STATUS_OK) {
    free(env);
    return st;
  }
  client_acquire_t a = {.on_queued = o->on_queued, .user = o->user};
  client__waiter_init(&a.w);
  pthread_mutex_lock(&c->mu);
  LL_PREPEND(c->acquiring, &a);
  pthread_mutex_unlock(&c->mu);
  /* How long it may take: an answer at once, or the wait and a little more. */
  uint32_t limit = !o->wait                                     ? ACQUIRE_ANSWER_MS
                   : o->wait_ms == 0                            ? 0
                   : o->wait_ms > UINT32_MAX - ACQUIRE_SLACK_MS ? UINT32_MAX
                                                                : o->wait_ms + ACQUIRE_SLACK_MS;
  struct timespec until;
  client__deadline(&until, limit);
  acquire_end_t why = END_ANSWERED;
  for (;;) {
    dfnet_session_id_t sid = 0;
    uint64_t rid = 0;
    st = acquire_send(c, &a, env, 0, &sid, &rid, err);
    if (st != DFNET_STATUS_OK)
      break;
    why = acquire_wait(c, &a, sid, rid, limit ? &until : NULL);
    pthread_mutex_lock(&a.w.mu);
    /* A session lost while waiting in the queue: take the same place again. */
    bool cancelled = a.cancel;
    bool resume = why == END_ANSWERED && a.w.status == DFNET_STATUS_UNAVAILABLE && o->wait &&
                  a.queue_id != 0 && !cancelled;
    if (resume) {
      env->pb.msg.lease_acquire.resume_id = a.queue_id;
      a.w.done = false;
      a.w.status = DFNET_STATUS_OK;
      DFNET_LOGI(SUB, NULL,
                 "session lost while waiting in the queue: asking again for entry %" PRIu64,
                 a.queue_id);
    }
    pthread_mutex_unlock(&a.w.mu);
    if (!resume) {
      st = acquire_result(c, &a, why, cancelled, o, out, err);
      break;
    }
  }
  pthread_mutex_lock(&c->mu);
  LL_DELETE(c->acquiring, &a);
  pthread_mutex_unlock(&c->mu);
  if (a.granted != NULL)
    dfnet_client_lease_free(&a.granted->pub);
  client__waiter_destroy(&a.w);
  free(env);
  return st;
}

dfnet_status_t dfnet_client_lease_acquire_cancel(dfnet_client_t *c) {
  if (c == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  size_t n = 0;
  pthread_mutex_lock(&c->mu);
  client_acquire_t *a;
  LL_FOREACH(c->acquiring, a) {
    pthread_mutex_lock(&a->w.mu);
    n += !a->cancel;
    a->cancel = true;
    pthread_cond_signal(&a->w.cv);
    pthread_mutex_unlock(&a->w.mu);
  }
  pthread_mutex_unlock(&c->mu);
  return n > 0 ? DFNET_STATUS_OK : DFNET_STATUS_NOT_FOUND;
}
