/* Log line formats (log_format.h). */
#include "lib/log_format.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static dfnet_log_format_t g_format = DFNET_LOG_FORMAT_TEXT;

int dfnet_log_format_parse(const char *text, dfnet_log_format_t *out) {
  if (text == NULL)
    return -1;
  if (strcasecmp(text, "text") == 0)
    *out = DFNET_LOG_FORMAT_TEXT;
  else if (strcasecmp(text, "json") == 0)
    *out = DFNET_LOG_FORMAT_JSON;
  else
    return -1;
  return 0;
}

const char *dfnet_log_format_name(dfnet_log_format_t format) {
  return format == DFNET_LOG_FORMAT_JSON ? "json" : "text";
}

void dfnet_log_format_set(dfnet_log_format_t format) {
  g_format = format;
  dfnet_log_set_formatter(format == DFNET_LOG_FORMAT_JSON ? dfnet_log_format_json : NULL);
}

dfnet_log_format_t dfnet_log_format_get(void) { return g_format; }

int dfnet_log_format_configure(const char *given) {
  dfnet_log_format_t format = DFNET_LOG_FORMAT_TEXT;
  const char *env = getenv("DFNET_LOG_FORMAT");
  if (given == NULL && env != NULL && env[0] != '\0')
    given = env;
  if (given != NULL && dfnet_log_format_parse(given, &format) != 0)
    return -1;
  dfnet_log_format_set(format);
  return 0;
}

int dfnet_log_format_json(char *buf, size_t cap, const dfnet_log_record_t *r) {
  struct tm tm;
  time_t t = (time_t)r->time_s;
  gmtime_r(&t, &tm);
  char stamp[80];
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, r->time_ms);
  cJSON *o = cJSON_CreateObject();
  bool ok = o != NULL && cJSON_AddStringToObject(o, "time", stamp) != NULL &&
            cJSON_AddStringToObject(o, "level", dfnet_log_level_name(r->level)) != NULL &&
            cJSON_AddStringToObject(o, "subsystem", r->subsystem) != NULL &&
            (r->subject != NULL ? cJSON_AddStringToObject(o, "subject", r->subject)
                                : cJSON_AddNullToObject(o, "subject")) != NULL &&
            cJSON_AddStringToObject(o, "message", r->message) != NULL;
  /* printed straight into buf: no allocation for the text; false when it does not fit */
  ok = ok && cap > 5 && cJSON_PrintPreallocated(o, buf, (int)(cap - 5), false);
  cJSON_Delete(o);
  return ok ? (int)strlen(buf) : -1;
}
