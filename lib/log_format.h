/* The format of the log lines of dfnet-manager, dfnet-host and dfnet-driver-host (issue 24
 * item 3; docs/configuration.md "Logs"): text (lib/log.h's line) or json, one JSON object
 * a line for log shippers:
 *   {"time":"2026-11-21T04:40:00.123Z","level":"warning","subsystem":"transport",
 *    "subject":"lab-a","message":"peer closed: ..."}
 * level is "error", "warning", "info" or "debug"; subject is null when there is none. The
 * object is built and escaped by cJSON (quotes, backslashes, control characters such as a
 * newline in a message). Under systemd the line starts with its priority ("<4>{...}") as
 * the text line does (lib/log.h).
 *
 * Kept out of libdfnet-common, which links no JSON library (libdfnet-client uses that):
 * only the three daemons link this. Thread-safety: as lib/log.h's setters (call
 * dfnet_log_format_set before the threads that log start).
 */
#ifndef DFNET_LIB_LOG_FORMAT_H
#define DFNET_LIB_LOG_FORMAT_H

#include <stddef.h>

#include "lib/log.h"

typedef enum dfnet_log_format {
  DFNET_LOG_FORMAT_TEXT = 0,
  DFNET_LOG_FORMAT_JSON = 1,
} dfnet_log_format_t;

/* "text" or "json" (case-insensitive) into *out. Returns 0, or -1 (out untouched). */
int dfnet_log_format_parse(const char *text, dfnet_log_format_t *out);

/* The format's name: "text" or "json" (static). */
const char *dfnet_log_format_name(dfnet_log_format_t format);

/* Use the format for every line from now on (lib/log.h dfnet_log_set_formatter). */
void dfnet_log_format_set(dfnet_log_format_t format);

/* The format in use (text until set). */
dfnet_log_format_t dfnet_log_format_get(void);

/* The format a daemon starts with: `given` (its --log-format or log-format key, already
 * checked with dfnet_log_format_parse) when not NULL, else $DFNET_LOG_FORMAT when set and
 * not empty, else text; set with dfnet_log_format_set. Returns 0, or -1 when
 * $DFNET_LOG_FORMAT is neither text nor json (nothing set; the caller reports it as a
 * usage error). */
int dfnet_log_format_configure(const char *given);

/* The JSON line of r into buf[0..cap) (a dfnet_log_formatter_fn): its length, or -1 when
 * cJSON is out of memory or the line does not fit (lib/log.h then writes the text line). */
int dfnet_log_format_json(char *buf, size_t cap, const dfnet_log_record_t *r);

#endif /* DFNET_LIB_LOG_FORMAT_H */
