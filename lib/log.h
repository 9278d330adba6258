/* dfnet's levelled logger: one line per event on stderr.
 *
 * Line format (docs/design.md "Conventions"):
 *   2026-11-21T04:40:00.123Z W transport host=lab-a: peer closed: ...
 *   <UTC time, ms>            <level> <subsystem> <subject>: <message>
 * The subject (a node moniker, host or peer name) may be NULL. Each line is written with
 * one write(2), so lines from different threads never interleave. Thread-safe.
 *
 * Under systemd (issue 24 item 3; docs/configuration.md "Logs"): when stderr is the
 * journal's stream -- $JOURNAL_STREAM's "DEV:INODE" is fd 2's, as sd_journal_stream_fd(3)
 * says to check -- each line starts with its syslog priority, "<3>" error, "<4>" warning,
 * "<6>" info, "<7>" debug (sd-daemon.h's SD_ERR ...), which journald takes off and keeps as
 * the entry's PRIORITY (journalctl -p warning), and the text line has no time (journald
 * stamps every line):
 *   <4>W transport lab-a: peer closed: ...
 * Another format (one JSON object a line, lib/log_format.h) is a formatter set with
 * dfnet_log_set_formatter(); the priority prefix goes before whatever it writes.
 */
#ifndef DFNET_LIB_LOG_H
#define DFNET_LIB_LOG_H

#include <stdbool.h>
#include <stddef.h>

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

/* One event, as a formatter sees it (all borrowed for the call). */
typedef struct dfnet_log_record {
  long long time_s; /* CLOCK_REALTIME: seconds since the epoch */
  long time_ms;     /* and milliseconds */
  dfnet_log_level_t level;
  const char *subsystem; /* "-" when the caller gave none */
  const char *subject;   /* NULL when none */
  const char *message;   /* formatted, cut at 1 KiB */
} dfnet_log_record_t;

/* Writes r as one line (no newline) into buf[0..cap), NUL-terminated, and returns its
 * length (at most cap - 1), or -1 to have the text line written instead. Called on
 * whatever thread logs; must not log. */
typedef int (*dfnet_log_formatter_fn)(char *buf, size_t cap, const dfnet_log_record_t *r);

/* Format lines with fn from now on; NULL: the text line again. Set it before the threads
 * that log start (read without a lock, as the sink). The sink, when set, gets the lines fn
 * writes. */
void dfnet_log_set_formatter(dfnet_log_formatter_fn fn);

/* Is stderr the journal? Examines $JOURNAL_STREAM against fstat(2) of fd 2 again and
 * remembers the answer for the lines that follow (the first line logged examines it once
 * by itself; call this after replacing fd 2). Thread-safe. */
bool dfnet_log_journal_detect(void);

/* The syslog priority of a level: 3 (error), 4 (warning), 6 (info), 7 (debug). */
int dfnet_log_priority(dfnet_log_level_t level);

/* The name of a level as journald and JSON lines say it: "error", "warning", "info",
 * "debug" (static). */
const char *dfnet_log_level_name(dfnet_log_level_t level);

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
