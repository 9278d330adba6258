/* drvkit worker: a driver's own thread for calls whose work blocks (a network switch that
 * takes seconds, a device written for minutes), so that the driver's dispatcher never
 * does (include/dfnet/driver.h "Threads": without allow_sync_calls a handler must not block).
 *
 * The dispatcher's handler posts a job naming its call; the worker runs the jobs one at a
 * time in the order posted (one device does one thing at a time) and each run completes its
 * call itself (dfnet_call_reply and dfnet_call_send run on any thread). Stopping sets
 * `stopping` (a flag long runs poll between steps), joins the thread and ends every job
 * still queued UNAVAILABLE "the driver stopped".
 *
 * Threads: post, pending: the dispatcher; run: the worker; start, stop, fini: the driver's
 * hooks (start, prepare_stop and stop).
 */
#ifndef DFNET_DRIVERS_WORKER_H
#define DFNET_DRIVERS_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "dfnet/driver.h"

/* What a job is: a driver's job struct has this as its first member. */
typedef struct drvkit_job {
  dfnet_call_t *call; /* the call the job completes */
  struct drvkit_job *next;
} drvkit_job_t;

/* Run `job` on the worker and complete its call (exactly once). The worker frees the job
 * (free(3)) when this returns. */
typedef void (*drvkit_run_fn)(void *ctx, drvkit_job_t *job);

typedef struct drvkit_worker {
  atomic_bool stopping; /* set by drvkit__worker_stop: a long run stops at its next step */
  /* the rest is the worker's own */
  pthread_mutex_t mu; /* guards queue, queued and stopping's waits */
  pthread_cond_t cv;
  drvkit_job_t *queue;
  size_t queued, max;
  drvkit_run_fn run;
  void *ctx;
  pthread_t thread;
  bool running, ready;
} drvkit_worker_t;

/* Start w's thread (w zeroed, as in a driver's context), running `run(ctx, job)` for each
 * job posted, at most `max` of them waiting. OK; RESOURCE_EXHAUSTED when the thread cannot
 * be made (w is then finished already). */
dfnet_status_t drvkit__worker_start(drvkit_worker_t *w, size_t max, drvkit_run_fn run, void *ctx);

/* Queue `job` (malloc'd; the worker owns it from now on) for the worker. false when `max`
 * jobs wait already or the worker stops: the job stays the caller's, its call unanswered. */
bool drvkit__worker_post(drvkit_worker_t *w, drvkit_job_t *job) __attribute__((warn_unused_result));

/* How many jobs wait (not the one running). */
size_t drvkit__worker_pending(drvkit_worker_t *w);

/* Stop the worker: set `stopping`, wait for the job running to return, end every job still
 * queued UNAVAILABLE "the driver stopped". Idempotent. */
void drvkit__worker_stop(drvkit_worker_t *w);

/* Stop it (drvkit__worker_stop) and free what it holds. Idempotent; harmless on a zeroed w. */
void drvkit__worker_fini(drvkit_worker_t *w);

#endif /* DFNET_DRIVERS_WORKER_H */
