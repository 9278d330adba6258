/* Levelled logger (lib/log.h). */
#include "lib/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not yet read from the environment */
static dfnet_log_sink_fn log_sink;
static void *log_sink_user;

void dfnet_log_set_sink(dfnet_log_sink_fn fn, void *user) {
  log_sink_user = user;
  log_sink = fn;
}

static const char level_letter[] = {'E', 'W', 'I', 'D'};

int dfnet_log_level_parse(const char *text, dfnet_log_level_t *out) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  if (text == NULL)
    return -1;
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(text, names[i]) == 0) {
      *out = (dfnet_log_level_t)i;
      return 0;
    }
  }
  return -1;
}

dfnet_log_level_t dfnet_log_get_level(void) {
  int level = atomic_load_explicit(&log_level, memory_order_relaxed);
  if (level < 0) {
    dfnet_log_level_t parsed = DFNET_LOG_INFO;
    (void)dfnet_log_level_parse(getenv("DFNET_LOG_LEVEL"), &parsed);
    int expected = -1;
    atomic_compare_exchange_strong(&log_level, &expected, (int)parsed);
    level = atomic_load(&log_level);
  }
  return (dfnet_log_level_t)level;
}

void dfnet_log_set_level(dfnet_log_level_t level) { atomic_store(&log_level, (int)level); }

bool dfnet_log_enabled(dfnet_log_level_t level) { return level <= dfnet_log_get_level(); }

void dfnet_log(dfnet_log_level_t level, const char *subsystem, const char *subject, const char *fmt,
               ...) {
  if (!dfnet_log_enabled(level))
    return;
  char line[1280];
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  int n = snprintf(line, sizeof line,
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %s%s%s: ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   now.tv_nsec / 1000000L, level_letter[(unsigned)level < 4 ? level : 3],
                   subsystem ? subsystem : "-", subject ? " " : "", subject ? subject : "");
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + len, sizeof line - len - 1, fmt, ap);
  va_end(ap);
  if (m > 0)
    len += (size_t)m < sizeof line - len - 1 ? (size_t)m : sizeof line - len - 2;
  if (log_sink != NULL) {
    line[len] = '\0';
    log_sink(log_sink_user, level, line);
    return;
  }
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
