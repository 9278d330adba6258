/* blocker: a test driver that blocks in a handler (issue 6 "Tests").
 *   /dfnet.test.Blocker/Block  request u32 LE ms: blocks up to ms or until the call ends
 *                              (cancel, deadline). With allow_sync_calls it waits with
 *                              dfnet_call_wait_cancelled ("waited"); without, that returns
 *                              FAILED_PRECONDITION and it sleeps in 5 ms slices, polling
 *                              dfnet_call_status ("slept"). Replies OK with that word.
 *   /dfnet.test.Blocker/Ping   replies "pong".
 *   /dfnet.test.Blocker/Stats  replies "cancels=C late=L": calls it saw end while blocked,
 *                              and replies of its that were dropped (call already ended).
 *   /dfnet.test.Blocker/Watch  never replies by itself; registers a cancel callback that
 *                              replies (counted in cancels and late).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dfnet/driver.h"

typedef struct blocker {
  int cancels;
  int late;
} blocker_t;

static void reply_counted(blocker_t *b, dfnet_call_t *call, const char *word) {
  if (dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)word, strlen(word)) !=
      DFNET_STATUS_OK)
    b->late++;
}

static void blocker_block(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  blocker_t *b = ctx;
  uint32_t ms = len >= 4 ? (uint32_t)req[0] | (uint32_t)req[1] << 8 | (uint32_t)req[2] << 16 |
                               (uint32_t)req[3] << 24
                         : 1000;
  dfnet_status_t st = dfnet_call_wait_cancelled(call, ms);
  const char *word = "waited";
  if (st == DFNET_STATUS_FAILED_PRECONDITION) {
    word = "slept";
    struct timespec slice = {0, 5000000};
    st = DFNET_STATUS_OK;
    for (uint32_t t = 0; t < ms && st == DFNET_STATUS_OK; t += 5) {
      nanosleep(&slice, NULL);
      st = dfnet_call_status(call);
    }
  }
  if (st != DFNET_STATUS_OK)
    b->cancels++;
  reply_counted(b, call, word);
}

static void blocker_ping(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  (void)req;
  (void)len;
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)"pong", 4);
}

static void blocker_stats(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  blocker_t *b = ctx;
  (void)req;
  (void)len;
  char buf[64];
  int n = snprintf(buf, sizeof buf, "cancels=%d late=%d", b->cancels, b->late);
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)buf, (size_t)n);
}

static void watch_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  blocker_t *b = ctx;
  (void)why;
  (void)arg;
  b->cancels++;
  reply_counted(b, call, "too late");
}

static void blocker_watch(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)req;
  (void)len;
  if (dfnet_call_on_cancel(call, watch_cancelled, NULL) != DFNET_STATUS_OK)
    reply_counted(ctx, call, "refused");
}

static const dfnet_method_t blocker_methods[] = {
    {"Block", blocker_block, false},
    {"Ping", blocker_ping, false},
    {"Stats", blocker_stats, false},
    {"Watch", blocker_watch, false},
};

static dfnet_status_t blocker_start(dfnet_driver_t *driver, void *ctx) {
  (void)ctx;
  return dfnet_driver_serve(driver, "dfnet.test.Blocker", blocker_methods, 4);
}

DFNET_DRIVER("blocker", blocker_t, .start = blocker_start);
