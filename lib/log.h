/* dfnet's levelled logger: one line per event on stderr.
 *
 * Line format (docs/design.md "Conventions"):
 *   2026-11-21T04:40:00.123Z W transport host=lab-a: peer closed: ...
 *   <UTC time, ms>            <level> <subsystem> <subject>: <message>
 * The subject (a node moniker, host or peer name) may be NULL. Each line is written with
 * one write(2), so lines from different threads never interleave. Thread-safe.
 */
#ifndef DFNET_LIB_LOG_H
#define DFNET_LIB_LOG_H

#include <stdbool.h>

typedef enum dfnet_log_level {
  DFNET_LOG_ERROR = 0,
  DFNET_LOG_WARN = 1,
  DFNET_LOG_INFO = 2,
  DFNET_LOG_DEBUG = 3,
} dfnet_log_level_t;

/* Set the most verbose level that is written (default DFNET_LOG_INFO, or the value of the
 * environment variable DFNET_LOG_LEVEL read on first use). Thread-safe. */
void dfnet_log_set_level(dfnet_log_level_t level);

/* The current level. */
dfnet_log_level_t dfnet_log_get_level(void);

/* Parse "error", "warn", "info" or "debug" (case-insensitive) into *out.
 * Returns 0, or -1 for anything else (out untouched). */
int dfnet_log_level_parse(const char *text, dfnet_log_level_t *out);

/* Where lines go instead of stderr: fn(user, level, line) with the whole line (no newline;
 * borrowed for the call), from whatever thread logs. NULL: stderr again. Set it before
 * the threads that log start (it is read without a lock). */
typedef void (*dfnet_log_sink_fn)(void *user, dfnet_log_level_t level, const char *line);
void dfnet_log_set_sink(dfnet_log_sink_fn fn, void *user);

/* Would a line at this level be written? (Skip expensive formatting when not.) */
bool dfnet_log_enabled(dfnet_log_level_t level);

/* Write one line. subsystem: short static name ("transport", "bind", ...); subject: the
 * node/host/peer it concerns, or NULL. The message is cut at 1 KiB. */
void dfnet_log(dfnet_log_level_t level, const char *subsystem, const char *subject, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

#define DFNET_LOGE(sub, subj, ...) dfnet_log(DFNET_LOG_ERROR, sub, subj, __VA_ARGS__)
#define DFNET_LOGW(sub, subj, ...) dfnet_log(DFNET_LOG_WARN, sub, subj, __VA_ARGS__)
#define DFNET_LOGI(sub, subj, ...) dfnet_log(DFNET_LOG_INFO, sub, subj, __VA_ARGS__)
#define DFNET_LOGD(sub, subj, ...)                        \
  do {                                                    \
    if (dfnet_log_enabled(DFNET_LOG_DEBUG))               \
      dfnet_log(DFNET_LOG_DEBUG, sub, subj, __VA_ARGS__); \
  } while (0)

#endif /* DFNET_LIB_LOG_H */
