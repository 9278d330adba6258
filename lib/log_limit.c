/* Rate limits for log lines a peer can cause (log_limit.h). */
#include "lib/log_limit.h"

#include <stddef.h>

bool dfnet_log_limit_allow(dfnet_log_limit_t *l, const char *kind, uint64_t now_ms,
                           uint32_t *suppressed) {
  size_t i = 0;
  while (i < DFNET_LOG_LIMIT_KINDS - 1 && l->slot[i].kind != NULL && l->slot[i].kind != kind)
    i++;
  if (l->slot[i].kind != kind) { /* a new kind (or the shared last slot changes hands) */
    l->slot[i].kind = kind;
    l->slot[i].window_ms = now_ms;
    *suppressed = l->slot[i].suppressed;
    l->slot[i].suppressed = 0;
    return true;
  }
  if (now_ms - l->slot[i].window_ms < DFNET_LOG_LIMIT_WINDOW_MS) {
    l->slot[i].suppressed++;
    return false;
  }
  l->slot[i].window_ms = now_ms;
  *suppressed = l->slot[i].suppressed;
  l->slot[i].suppressed = 0;
  return true;
}

void dfnet_log_limit_flush(dfnet_log_limit_t *l,
                           void (*fn)(void *user, const char *kind, uint32_t count), void *user) {
  for (size_t i = 0; i < DFNET_LOG_LIMIT_KINDS; i++) {
    if (l->slot[i].kind != NULL && l->slot[i].suppressed > 0 && fn != NULL)
      fn(user, l->slot[i].kind, l->slot[i].suppressed);
    l->slot[i].kind = NULL;
    l->slot[i].suppressed = 0;
  }
}
