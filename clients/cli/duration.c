/* dfnet CLI: durations and moments on the command line, parsed and printed in one place —
 * a lease's --ttl and --wait, --since of the audit log, "in 29m59s" after an expiry.
 *
 * A duration is one or more <whole number><unit> groups, units ms, s, m, h, d ("90s",
 * "1h30m", "2d", "500ms"), or a whole number of seconds alone ("300"); "0" is zero. A moment
 * is a duration ago ("1d", "2h") or an ISO 8601 date and time, UTC unless it says otherwise
 * ("2026-12-07", "2026-12-07T10:00Z", "2026-12-07 10:00:00.5+01:00"). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"

static const struct {
  const char *name;
  uint64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

/* The unit at *p (the longest name that matches: "ms" before "m"); advances *p. 0: none. */
static uint64_t unit_at(const char **p) {
  uint64_t best = 0;
  size_t best_len = 0;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    size_t n = strlen(units[i].name);
    if (n > best_len && strncmp(*p, units[i].name, n) == 0) {
      best = units[i].ms;
      best_len = n;
    }
  }
  *p += best_len;
  return best;
}

/* Digits at *p into *v (no sign, no blank); advances *p. false: none, or too large. */
static bool digits_at(const char **p, uint64_t *v) {
  const char *s = *p;
  *v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (*v > (UINT64_MAX - 9) / 10)
      return false;
    *v = *v * 10 + (uint64_t)(*s - '0');
  }
  if (s == *p)
    return false;
  *p = s;
  return true;
}

bool cli__duration_parse(const char *text, uint64_t max_ms, uint64_t *ms) {
  const char *p = text;
  uint64_t total = 0, v;
  if (text == NULL || !digits_at(&p, &v))
    return false;
  if (*p == '\0') { /* seconds alone */
    if (v > max_ms / 1000)
      return false;
    *ms = v * 1000;
    return true;
  }
  for (;;) {
    uint64_t unit = unit_at(&p);
    if (unit == 0 || v > (UINT64_MAX - total) / unit)
      return false;
    total += v * unit;
    if (*p == '\0')
      break;
    if (!digits_at(&p, &v))
      return false;
  }
  if (total > max_ms)
    return false;
  *ms = total;
  return true;
}

/* ms in days, hours, minutes, seconds: at most `most` of them, from the largest. */
static void duration_units(uint64_t ms, int most, char *buf, size_t cap) {
  if (ms < 1000) {
    snprintf(buf, cap, "%ums", (unsigned)ms);
    return;
  }
  uint64_t s = ms / 1000;
  const uint64_t parts[4] = {s / 86400, s / 3600 % 24, s / 60 % 60, s % 60};
  const char *names = "dhms";
  size_t used = 0;
  int shown = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < 4 && used < cap && shown < most; i++) {
    if (parts[i] == 0 && shown == 0)
      continue;
    if (parts[i] != 0)
      used += (size_t)snprintf(buf + used, cap - used, "%llu%c", (unsigned long long)parts[i],
                               names[i]);
    shown++;
  }
}

void cli__duration_str(uint64_t ms, char *buf, size_t cap) { duration_units(ms, 4, buf, cap); }

/* n digits at *p as a number in [lo, hi]; advances *p. */
static bool field(const char **p, size_t n, int lo, int hi, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = (*p)[i];
    if (ch < '0' || ch > '9')
      return false;
    v = v * 10 + (ch - '0');
  }
  if (v < lo || v > hi)
    return false;
  *p += n;
  *out = v;
  return true;
}

/* "Z", "+HH:MM", "+HHMM", "-HH" (or nothing: UTC) at p, the whole rest: seconds east. */
static bool zone(const char *p, long *east) {
  *east = 0;
  if (*p == '\0' || strcmp(p, "Z") == 0 || strcmp(p, "z") == 0)
    return true;
  if (*p != '+' && *p != '-')
    return false;
  int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;
  p++;
  if (!field(&p, 2, 0, 23, &hh))
    return false;
  if (*p == ':')
    p++;
  if (*p != '\0' && !field(&p, 2, 0, 59, &mm))
    return false;
  *east = sign * (hh * 3600L + mm * 60L);
  return *p == '\0';
}

/* ISO 8601 (see the top) into *epoch_ms. */
static bool iso8601(const char *p, uint64_t *epoch_ms) {
  struct tm tm = {0};
  int v, ms = 0;
  if (!field(&p, 4, 1970, 9999, &v) || *p++ != '-')
    return false;
  tm.tm_year = v - 1900;
  if (!field(&p, 2, 1, 12, &v) || *p++ != '-')
    return false;
  tm.tm_mon = v - 1;
  if (!field(&p, 2, 1, 31, &tm.tm_mday))
    return false;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (!field(&p, 2, 0, 23, &tm.tm_hour) || *p++ != ':' || !field(&p, 2, 0, 59, &tm.tm_min))
      return false;
    if (*p == ':') {
      p++;
      if (!field(&p, 2, 0, 60, &tm.tm_sec))
        return false;
    }
    if (*p == '.' || *p == ',') {
      p++;
      int scale = 100;
      if (*p < '0' || *p > '9')
        return false;
      for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
        ms += scale * (*p - '0');
    }
  }
  long east;
  if (!zone(p, &east))
    return false;
  const struct tm asked = tm;
  time_t t = timegm(&tm); /* normalises: 2026-02-31 would become March 3 */
  if (t == (time_t)-1 || tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon ||
      (long long)t - east < 0)
    return false;
  *epoch_ms = (uint64_t)((long long)t - east) * 1000u + (uint64_t)ms;
  return true;
}

bool cli__time_parse(const char *text, uint64_t now_ms, uint64_t *epoch_ms) {
  if (text == NULL)
    return false;
  if (strlen(text) >= 10 && text[4] == '-')
    return iso8601(text, epoch_ms);
  uint64_t ago;
  if (!cli__duration_parse(text, now_ms, &ago))
    return false;
  *epoch_ms = now_ms - ago;
  return true;
}

uint64_t cli__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cli__expiry_str(uint64_t expires_ms, uint64_t now_ms, char *buf, size_t cap) {
  if (expires_ms == 0) {
    snprintf(buf, cap, "never");
    return;
  }
  char at[40], left[40];
  cli__time_str(expires_ms, at, sizeof at);
  duration_units(expires_ms > now_ms ? expires_ms - now_ms : now_ms - expires_ms, 2, left,
                 sizeof left); /* "39d14h", "29m59s" */
  snprintf(buf, cap, "%s (%s%s%s)", at, expires_ms > now_ms ? "in " : "expired ", left,
           expires_ms > now_ms ? "" : " ago");
}
