/* libdfnet-client: how a caller's thread waits for the client thread — condition variables
 * on CLOCK_MONOTONIC (a wall-clock step neither shortens nor stretches a timeout), deadlines
 * on that clock, and the end of a request as the blocked caller sees it (client_waiter_t:
 * blocking calls, pull streams, queries). */
#include <stdio.h>

#include "clients/lib/client_internal.h"

void client__cond_init(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

void client__deadline(struct timespec *ts, uint32_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000u;
  ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

void client__waiter_init(client_waiter_t *w) {
  *w = (client_waiter_t){.status = DFNET_STATUS_OK};
  pthread_mutex_init(&w->mu, NULL);
  client__cond_init(&w->cv);
}

void client__waiter_destroy(client_waiter_t *w) {
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
}

void client__waiter_done(client_waiter_t *w, dfnet_status_t status, const char *message) {
  pthread_mutex_lock(&w->mu);
  w->status = status;
  snprintf(w->message, sizeof w->message, "%s", message ? message : "");
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

void client__waiter_wait(client_waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}
