/* late_start: a test driver for the misuses of the asynchronous start API
 * (include/dfnet/driver.h "Asynchronous start"), for test_driver_lifecycle.c. Its `start`
 * makes the start asynchronous and never completes it on its own: a thread waits until
 * prepare_stop wakes it (the start timed out or the driver was stopped), then calls
 * dfnet_driver_start_complete(OK) late. What each call returned is written, as one line
 * "async_again=S;bad_status=S;outside=S;late=S\n", to the file named by the string property
 * "dfnet.test.RESULT":
 *   async_again  dfnet_driver_start_async called a second time in `start`
 *   bad_status   dfnet_driver_start_complete with a status that is no code (99)
 *   outside      dfnet_driver_start_async from the thread (not inside `start`)
 *   late         dfnet_driver_start_complete(OK) once the start was decided
 * With the bool property "dfnet.test.SYNC" the start is synchronous instead, and the line is
 * "sync_complete=S\n": dfnet_driver_start_complete called in a `start` that is not
 * asynchronous.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dfnet/driver.h"
#include "../drivers/test_file.h"

typedef struct late {
  dfnet_driver_t *driver;
  const char *result; /* property string, owned by the driver host */
  dfnet_status_t async_again, bad_status;
  pthread_t thread;
  bool running;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool wake;
} late_t;

static void write_result(const late_t *l, const char *line) {
  if (l->result != NULL)
    (void)test_file_write(l->driver, l->result, line, false);
}

static void *late_thread(void *arg) {
  late_t *l = arg;
  dfnet_status_t outside = dfnet_driver_start_async(l->driver);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&l->mu);
  int rc = 0;
  while (!l->wake && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&l->cv, &l->mu, &until);
  pthread_mutex_unlock(&l->mu);
  dfnet_status_t late = dfnet_driver_start_complete(l->driver, DFNET_STATUS_OK);
  char line[256];
  snprintf(line, sizeof line, "async_again=%s;bad_status=%s;outside=%s;late=%s\n",
           dfnet_status_str(l->async_again), dfnet_status_str(l->bad_status),
           dfnet_status_str(outside), dfnet_status_str(late));
  write_result(l, line);
  return NULL;
}

static dfnet_status_t late_start(dfnet_driver_t *driver, void *ctx) {
  late_t *l = ctx;
  l->driver = driver;
  const dfnet_node_property_t *p = dfnet_driver_property_find(driver, 0, "dfnet.test.RESULT");
  if (p != NULL && p->type == DFNET_PROPERTY_STRING)
    l->result = p->value_str;
  if (dfnet_driver_property_find(driver, 0, "dfnet.test.SYNC") != NULL) {
    char line[128];
    snprintf(line, sizeof line, "sync_complete=%s\n",
             dfnet_status_str(dfnet_driver_start_complete(driver, DFNET_STATUS_OK)));
    write_result(l, line);
    return DFNET_STATUS_OK;
  }
  dfnet_status_t st = dfnet_driver_start_async(driver);
  if (st != DFNET_STATUS_OK)
    return st;
  l->async_again = dfnet_driver_start_async(driver);
  l->bad_status = dfnet_driver_start_complete(driver, (dfnet_status_t)99);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  if (pthread_create(&l->thread, NULL, late_thread, l) != 0)
    return DFNET_STATUS_INTERNAL;
  l->running = true;
  return DFNET_STATUS_OK;
}

static void late_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  late_t *l = ctx;
  if (!l->running)
    return;
  pthread_mutex_lock(&l->mu);
  l->wake = true;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->thread, NULL);
  l->running = false;
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
}

DFNET_DRIVER("late-start", late_t, .start = late_start, .prepare_stop = late_prepare_stop);
