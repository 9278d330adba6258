/* Levelled logger (lib/log.h). */
#include "lib/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not yet read from the environment */
static dfnet_log_sink_fn log_sink;
static void *log_sink_user;
static dfnet_log_formatter_fn log_formatter; /* NULL: the text line */
static atomic_int log_journal = -1; /* stderr is the journal: 1, 0, or -1 not examined yet */

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

int dfnet_log_priority(dfnet_log_level_t level) {
  static const int priorities[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
  return priorities[(unsigned)level < 4 ? level : 3];
}

const char *dfnet_log_level_name(dfnet_log_level_t level) {
  static const char *const names[] = {"error", "warning", "info", "debug"};
  return names[(unsigned)level < 4 ? level : 3];
}

void dfnet_log_set_formatter(dfnet_log_formatter_fn fn) { log_formatter = fn; }

bool dfnet_log_journal_detect(void) {
  bool journal = false;
  const char *e = getenv("JOURNAL_STREAM");
  unsigned long long dev = 0, ino = 0;
  int end = 0;
  struct stat st;
  if (e != NULL && sscanf(e, "%llu:%llu%n", &dev, &ino, &end) == 2 && e[end] == '\0' &&
      fstat(STDERR_FILENO, &st) == 0)
    journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
  atomic_store(&log_journal, journal ? 1 : 0);
  return journal;
}

static bool journal_active(void) {
  int j = atomic_load_explicit(&log_journal, memory_order_relaxed);
  return j < 0 ? dfnet_log_journal_detect() : j == 1;
}

/* The text line (lib/log.h); without the time when journald stamps it. */
static int text_line(char *buf, size_t cap, const dfnet_log_record_t *r, bool journal) {
  char stamp[80] = "";
  if (!journal) {
    struct tm tm;
    time_t t = (time_t)r->time_s;
    gmtime_r(&t, &tm);
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, r->time_ms);
  }
  int n = snprintf(buf, cap, "%s%c %s%s%s: %s", stamp, level_letter[r->level], r->subsystem,
                   r->subject ? " " : "", r->subject ? r->subject : "", r->message);
  if (n < 0)
    return -1;
  return (size_t)n < cap ? n : (int)cap - 1;
}

void dfnet_log(dfnet_log_level_t level, const char *subsystem, const char *subject, const char *fmt,
               ...) {
  if (!dfnet_log_enabled(level))
    return;
  if ((unsigned)level > DFNET_LOG_DEBUG)
    level = DFNET_LOG_DEBUG;
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  if (m < 0)
    message[0] = '\0';
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const dfnet_log_record_t r = {.time_s = (long long)now.tv_sec,
                                .time_ms = now.tv_nsec / 1000000L,
                                .level = level,
                                .subsystem = subsystem ? subsystem : "-",
                                .subject = subject,
                                .message = message};
  /* the priority only where journald reads it: stderr, not a sink */
  dfnet_log_sink_fn sink = log_sink;
  bool journal = sink == NULL && journal_active();
  char line[8192]; /* a JSON line's escapes may make the message six times longer */
  size_t len = 0;
  if (journal)
    len = (size_t)snprintf(line, sizeof line, "<%d>", dfnet_log_priority(level));
  dfnet_log_formatter_fn formatter = log_formatter;
  int n = formatter != NULL ? formatter(line + len, sizeof line - len - 1, &r) : -1;
  if (n < 0)
    n = text_line(line + len, sizeof line - len - 1, &r, journal);
  if (n < 0)
    return;
  len += (size_t)n;
  if (sink != NULL) {
    line[len] = '\0';
    sink(log_sink_user, level, line);
    return;
  }
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
