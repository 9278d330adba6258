/* dfnet_driver_artifact_open(_partial): a driver reads a file of the host's artifact cache
 * (include/dfnet/driver.h; docs/architecture.md "Artifacts"). The driver host opens nothing
 * by path: it asks the agent (ArtifactOpen, proto/dfnet/v1/driver.proto), which answers with
 * a Status carrying the request's id and, when OK, the read-only descriptor attached to the
 * frame (link.c takes it from the descriptors read with the frames and hands it here).
 *
 * The asking thread waits (ARTIFACT_WAIT_MS at most) for that answer; the link thread
 * completes the wait (dh__artifact_answer), or ends every wait when the link goes
 * (dh__artifact_link_down). The waits of the process are one list under one lock.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utlist.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

#define ARTIFACT_WAIT_MS 10000u /* the agent answers at once: a longer wait is a lost link */

/* One ArtifactOpen waiting for its answer. */
typedef struct artifact_wait {
  uint64_t id;
  bool done;
  dfnet_status_t code;
  int fd; /* OK: the descriptor; else -1 */
  struct artifact_wait *next;
} artifact_wait_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static artifact_wait_t *g_waits;

typedef struct open_args {
  const uint8_t *sha256;
  bool partial;
} open_args_t;

static void fill_open(dfnet_envelope_t *env, void *arg) {
  const open_args_t *o = arg;
  env->pb.which_msg = dfnet_v1_Envelope_artifact_open_tag;
  dfnet_v1_ArtifactOpen *m = &env->pb.msg.artifact_open;
  memcpy(m->sha256.bytes, o->sha256, 32);
  m->sha256.size = 32;
  m->partial = o->partial;
}

static dfnet_status_t artifact_request(const dfnet_driver_t *driver, const uint8_t sha256[32],
                                       bool partial, int *fd) {
  if (driver == NULL || sha256 == NULL || fd == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  *fd = -1;
  dh_host_t *host = driver->host;
  artifact_wait_t w = {.id = atomic_fetch_add(&host->next_id, 1), .fd = -1};
  pthread_mutex_lock(&g_mu);
  LL_PREPEND(g_waits, &w);
  pthread_mutex_unlock(&g_mu);
  open_args_t o = {sha256, partial};
  dfnet_status_t st = dh__link_send(host, w.id, fill_open, &o, NULL, 0);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ARTIFACT_WAIT_MS / 1000u;
  pthread_mutex_lock(&g_mu);
  while (st == DFNET_STATUS_OK && !w.done)
    if (pthread_cond_timedwait(&g_cv, &g_mu, &until) != 0 && !w.done)
      st = DFNET_STATUS_UNAVAILABLE; /* no answer: the link is as good as gone */
  LL_DELETE(g_waits, &w);
  pthread_mutex_unlock(&g_mu);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW("driver-host", dfnet_driver_node_moniker(driver),
               "no answer from the host agent to an ArtifactOpen: %s", dfnet_status_str(st));
    return DFNET_STATUS_UNAVAILABLE;
  }
  if (w.code == DFNET_STATUS_OK && w.fd < 0)
    return DFNET_STATUS_INTERNAL; /* logged by link.c */
  *fd = w.fd;
  return w.code;
}

bool dh__artifact_waiting(uint64_t id) {
  pthread_mutex_lock(&g_mu);
  artifact_wait_t *w;
  LL_SEARCH_SCALAR(g_waits, w, id, id);
  bool found = w != NULL && !w->done;
  pthread_mutex_unlock(&g_mu);
  return found;
}

void dh__artifact_answer(uint64_t id, dfnet_status_t code, int fd) {
  pthread_mutex_lock(&g_mu);
  artifact_wait_t *w;
  LL_SEARCH_SCALAR(g_waits, w, id, id);
  if (w != NULL && !w->done) {
    w->done = true;
    w->code = code;
    w->fd = fd;
    fd = -1;
    pthread_cond_broadcast(&g_cv);
  }
  pthread_mutex_unlock(&g_mu);
  if (fd >= 0) /* its asker gave up meanwhile */
    close(fd);
}

void dh__artifact_link_down(void) {
  pthread_mutex_lock(&g_mu);
  artifact_wait_t *w;
  LL_FOREACH(g_waits, w) {
    if (!w->done) {
      w->done = true;
      w->code = DFNET_STATUS_UNAVAILABLE;
    }
  }
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

dfnet_status_t dfnet_driver_artifact_open(const dfnet_driver_t *driver, const uint8_t sha256[32],
                                          int *fd) {
  return artifact_request(driver, sha256, false, fd);
}

dfnet_status_t dfnet_driver_artifact_open_partial(const dfnet_driver_t *driver,
                                                  const uint8_t sha256[32], int *fd) {
  return artifact_request(driver, sha256, true, fd);
}
