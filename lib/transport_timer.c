/* Timers and posted work on the service thread (dfnet_transport_timer_start, _cancel,
 * dfnet_transport_post). A timer started on the service thread is armed at once (an lws
 * sul); one started on another thread waits in t->inbox_timers until the service thread's
 * next inbox drain arms it. Every armed timer is on t->timers until it fires or is
 * cancelled, and is freed then.
 */
#include <pthread.h>
#include <stdlib.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/transport.h"
#include "lib/transport_internal.h"

static void timer_fire(lws_sorted_usec_list_t *sul) {
  transport__timer_t *tm = lws_container_of(sul, transport__timer_t, sul);
  dfnet_transport_t *t = tm->t;
  DL_DELETE(t->timers, tm);
  dfnet_work_fn fn = tm->fn;
  void *user = tm->user;
  free(tm);
  fn(user);
}

/* Service thread. */
static void timer_schedule(dfnet_transport_t *t, transport__timer_t *tm) {
  DL_PREPEND(t->timers, tm);
  uint64_t now = dfnet_transport_now_ms();
  uint64_t delay_ms = tm->due_ms > now ? tm->due_ms - now : 0;
  lws_sul_schedule(t->ctx, 0, &tm->sul, timer_fire, (lws_usec_t)delay_ms * 1000 + 1);
}

void transport__timer_arm_all(dfnet_transport_t *t, transport__timer_t *list) {
  transport__timer_t *tm, *n;
  DL_FOREACH_SAFE(list, tm, n) {
    timer_schedule(t, tm);
  }
}

dfnet_status_t dfnet_transport_timer_start(dfnet_transport_t *t, uint32_t delay_ms,
                                           dfnet_work_fn fn, void *user, dfnet_timer_id_t *id_out) {
  if (t == NULL || fn == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  transport__timer_t *tm = malloc(sizeof(*tm));
  if (tm == NULL)
    return DFNET_STATUS_INTERNAL;
  *tm = (transport__timer_t){
      .t = t, .fn = fn, .user = user, .due_ms = dfnet_transport_now_ms() + delay_ms};
  pthread_mutex_lock(&t->mu);
  tm->id = t->next_timer_id++;
  if (!dfnet_transport_on_service_thread(t))
    DL_PREPEND(t->inbox_timers, tm);
  pthread_mutex_unlock(&t->mu);
  if (id_out)
    *id_out = tm->id;
  if (dfnet_transport_on_service_thread(t))
    timer_schedule(t, tm);
  else
    transport__wake_once(t);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_transport_post(dfnet_transport_t *t, dfnet_work_fn fn, void *user) {
  return dfnet_transport_timer_start(t, 0, fn, user, NULL);
}

bool transport__timer_cancel_here(dfnet_transport_t *t, dfnet_timer_id_t id) {
  transport__timer_t *tm;
  DL_SEARCH_SCALAR(t->timers, tm, id, id);
  if (tm == NULL)
    return false;
  lws_sul_cancel(&tm->sul);
  DL_DELETE(t->timers, tm);
  free(tm);
  return true;
}

bool dfnet_transport_timer_cancel(dfnet_transport_t *t, dfnet_timer_id_t id) {
  if (t == NULL || id == 0)
    return false;
  /* still in the inbox: take it out, from any thread */
  pthread_mutex_lock(&t->mu);
  transport__timer_t *tm;
  DL_SEARCH_SCALAR(t->inbox_timers, tm, id, id);
  if (tm != NULL)
    DL_DELETE(t->inbox_timers, tm);
  pthread_mutex_unlock(&t->mu);
  if (tm != NULL) {
    free(tm);
    return true;
  }
  if (dfnet_transport_on_service_thread(t))
    return transport__timer_cancel_here(t, id);
  transport__work_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return false;
  w->kind = TRANSPORT__WORK_TIMER_CANCEL;
  w->timer_id = id;
  transport__inbox_push(t, w);
  return true;
}

void transport__timers_free(dfnet_transport_t *t) {
  transport__timer_t *tm, *n;
  DL_FOREACH_SAFE(t->timers, tm, n) {
    free(tm);
  }
  DL_FOREACH_SAFE(t->inbox_timers, tm, n) {
    free(tm);
  }
  t->timers = t->inbox_timers = NULL;
}
