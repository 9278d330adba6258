/* What the five binaries' command lines share (cmdline.h). */
#include "lib/cmdline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

void dfnet_cmdline_vreport(const char *prefix, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  /* an error to journald's eyes too (lib/log.h; journalctl -p err) */
  fprintf(stderr, "%s%s: %s\n", dfnet_log_journal_detect() ? "<3>" : "", prefix, msg);
}

int dfnet_cmdline_usage(const char *prefix, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dfnet_cmdline_vreport(prefix, fmt, ap);
  va_end(ap);
  return DFNET_CMDLINE_EXIT_USAGE;
}

void dfnet_cmdline_unknown(char *buf, size_t cap, const char *what, const char *given,
                           const char *best, const char *where) {
  if (best != NULL && where != NULL)
    snprintf(buf, cap, "unknown %s '%s' (did you mean '%s'?; %s)", what, given, best, where);
  else if (best != NULL)
    snprintf(buf, cap, "unknown %s '%s' (did you mean '%s'?)", what, given, best);
  else if (where != NULL)
    snprintf(buf, cap, "unknown %s '%s' (%s)", what, given, where);
  else
    snprintf(buf, cap, "unknown %s '%s'", what, given);
}

bool dfnet_cmdline_is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

bool dfnet_cmdline_uint(const char *text, int base, uint64_t min, uint64_t max, uint64_t *out) {
  if (text[0] == '-' || text[0] == '\0')
    return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, base);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
    return false;
  *out = v;
  return true;
}

int dfnet_cmdline_help_line(char *buf, size_t cap, const dfnet_cmdline_layout_t *layout,
                            const dfnet_cmdline_help_t *o) {
  char lead[8] = "", left[64], range[48] = "";
  if (o->short_name != 0)
    snprintf(lead, sizeof lead, "-%c, ", o->short_name);
  else if (layout->short_column)
    snprintf(lead, sizeof lead, "    ");
  snprintf(left, sizeof left, "%s%s%s%s", lead, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
  if (o->ranged)
    snprintf(range, sizeof range, " (%" PRIu64 "..%" PRIu64 ")", o->min, o->max);
  return snprintf(buf, cap, "  %-*s%s%s%s\n", layout->width, left, layout->gap, o->help, range);
}
