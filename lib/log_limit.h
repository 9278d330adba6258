/* Rate limits for log lines a peer can cause (docs/design.md "Conventions"): a peer that
 * sends 10,000 bad frames must not write 10,000 lines.
 *
 * A limiter holds a few kinds of line (a static string each, e.g. "malformed envelope"):
 * the first line of a kind in a window of DFNET_LOG_LIMIT_WINDOW_MS is written, the others
 * are counted; the next line written of that kind, or dfnet_log_limit_flush(), says how many
 * were not ("... (9,998 more like this in the last 10 s)"). One limiter per peer (a
 * session), so that one peer's flood does not hide another's first line. Not thread-safe:
 * one owner thread (the transport's service thread).
 */
#ifndef DFNET_LIB_LOG_LIMIT_H
#define DFNET_LIB_LOG_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define DFNET_LOG_LIMIT_WINDOW_MS 10000u
#define DFNET_LOG_LIMIT_KINDS 4

typedef struct dfnet_log_limit {
  struct {
    const char *kind;    /* static string; NULL = free slot */
    uint64_t window_ms;  /* start of the current window */
    uint32_t suppressed; /* lines not written in it */
  } slot[DFNET_LOG_LIMIT_KINDS];
} dfnet_log_limit_t;

/* Should a line of `kind` (a static string, compared by pointer) be written now? true for
 * the first line of a window: *suppressed then gets how many lines of this kind were not
 * written since the last one was (0 usually; say so in the line when not). false: counted.
 * Kinds past DFNET_LOG_LIMIT_KINDS share the last slot. now_ms: a monotonic clock. */
bool dfnet_log_limit_allow(dfnet_log_limit_t *l, const char *kind, uint64_t now_ms,
                           uint32_t *suppressed);

/* For each kind with lines not written: fn(user, kind, count), then forget them (the peer
 * goes). fn may be NULL (just forget). */
void dfnet_log_limit_flush(dfnet_log_limit_t *l,
                           void (*fn)(void *user, const char *kind, uint32_t count), void *user);

#endif /* DFNET_LIB_LOG_LIMIT_H */
