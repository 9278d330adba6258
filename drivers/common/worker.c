/* drvkit worker: one thread that runs a driver's blocking calls in order (worker.h). */
#include "drivers/common/worker.h"

#include <stdlib.h>

#include <utlist.h>

static void *worker_main(void *arg) {
  drvkit_worker_t *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->queue == NULL && !atomic_load(&w->stopping))
      pthread_cond_wait(&w->cv, &w->mu);
    if (atomic_load(&w->stopping))
      break;
    drvkit_job_t *job = w->queue;
    LL_DELETE(w->queue, job);
    w->queued--;
    pthread_mutex_unlock(&w->mu);
    w->run(w->ctx, job);
    free(job);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

dfnet_status_t drvkit__worker_start(drvkit_worker_t *w, size_t max, drvkit_run_fn run, void *ctx) {
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->ready = true;
  w->max = max;
  w->run = run;
  w->ctx = ctx;
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
    drvkit__worker_fini(w);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  w->running = true;
  return DFNET_STATUS_OK;
}

bool drvkit__worker_post(drvkit_worker_t *w, drvkit_job_t *job) {
  pthread_mutex_lock(&w->mu);
  bool taken = w->queued < w->max && !atomic_load(&w->stopping);
  if (taken) {
    LL_APPEND(w->queue, job);
    w->queued++;
    pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return taken;
}

size_t drvkit__worker_pending(drvkit_worker_t *w) {
  pthread_mutex_lock(&w->mu);
  size_t n = w->queued;
  pthread_mutex_unlock(&w->mu);
  return n;
}

void drvkit__worker_stop(drvkit_worker_t *w) {
  if (!w->running)
    return;
  pthread_mutex_lock(&w->mu);
  atomic_store(&w->stopping, true);
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  w->running = false;
  drvkit_job_t *job, *tmp;
  LL_FOREACH_SAFE(w->queue, job, tmp) {
    LL_DELETE(w->queue, job);
    (void)dfnet_call_reply(job->call, DFNET_STATUS_UNAVAILABLE, "the driver stopped", NULL, 0);
    free(job);
  }
  w->queued = 0;
}

void drvkit__worker_fini(drvkit_worker_t *w) {
  drvkit__worker_stop(w);
  if (w->ready) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    w->ready = false;
  }
}
