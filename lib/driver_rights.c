/* A driver's rights and limits (lib/driver_rights.h). */
#include "lib/driver_rights.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/suggest.h"

/* The rights, in the order of their bits (dfnet_rights_format's order). */
static const struct {
  const char *name; /* first: did_you_mean reads it */
  dfnet_right_t bit;
} k_rights[] = {
    {"inet", DFNET_RIGHT_INET},
    {"exec", DFNET_RIGHT_EXEC},
    {"usb", DFNET_RIGHT_USB},
};
#define RIGHT_COUNT (sizeof k_rights / sizeof k_rights[0])

/* The limits: their key and where each goes. */
static const struct {
  const char *key; /* first: did_you_mean reads it */
  size_t offset;
} k_limits[] = {
    {"memory_mb", offsetof(dfnet_driver_rights_t, memory_mb)},
    {"open_files", offsetof(dfnet_driver_rights_t, open_files)},
};
#define LIMIT_COUNT (sizeof k_limits / sizeof k_limits[0])

const char *dfnet_right_name(dfnet_right_t right) {
  for (size_t i = 0; i < RIGHT_COUNT; i++)
    if (k_rights[i].bit == right)
      return k_rights[i].name;
  return NULL;
}

/* " (did you mean \"x\"?)" into buf[cap] when one of the names of table[0 .. count) is near
 * `word` (lib/suggest.h); else "". table: entries `stride` bytes apart, each beginning with
 * its name (a const char *). */
static const char *did_you_mean(const char *word, const void *table, size_t count, size_t stride,
                                char *buf, size_t cap) {
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, word);
  for (size_t i = 0; i < count; i++)
    dfnet_suggest_offer(&s, *(const char *const *)((const char *)table + i * stride));
  const char *best = dfnet_suggest_best(&s);
  if (best == NULL)
    return "";
  snprintf(buf, cap, " (did you mean \"%s\"?)", best);
  return buf;
}

dfnet_status_t dfnet_right_parse(const char *name, dfnet_right_t *out, char *why, size_t cap) {
  if (name != NULL) {
    for (size_t i = 0; i < RIGHT_COUNT; i++) {
      if (strcmp(name, k_rights[i].name) == 0) {
        *out = k_rights[i].bit;
        return DFNET_STATUS_OK;
      }
    }
  }
  char hint[64];
  dfnet_why_set(why, cap, "unknown right \"%.64s\"%s (rights: inet, exec, usb)",
                name != NULL ? name : "(null)",
                name != NULL ? did_you_mean(name, k_rights, RIGHT_COUNT, sizeof k_rights[0], hint,
                                            sizeof hint)
                             : "");
  return DFNET_STATUS_INVALID_ARGUMENT;
}

size_t dfnet_rights_format(uint32_t rights, char *buf, size_t cap) {
  char text[64] = "";
  size_t len = 0;
  for (size_t i = 0; i < RIGHT_COUNT; i++) {
    if ((rights & k_rights[i].bit) == 0)
      continue;
    len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", len > 0 ? "," : "",
                            k_rights[i].name);
  }
  if (len == 0)
    len = (size_t)snprintf(text, sizeof text, "none");
  if (cap > 0)
    snprintf(buf, cap, "%s", text);
  return len;
}

/* "rights": an array of distinct right names. */
static dfnet_status_t parse_rights(const cJSON *list, uint32_t *out, char *why, size_t cap) {
  if (!cJSON_IsArray(list)) {
    dfnet_why_set(why, cap, "program.rights: must be an array of strings (inet, exec, usb)");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  const cJSON *e;
  size_t i = 0;
  cJSON_ArrayForEach(e, list) {
    if (!cJSON_IsString(e)) {
      dfnet_why_set(why, cap, "program.rights[%zu]: must be a string (inet, exec, usb)", i);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    dfnet_right_t right;
    char problem[160];
    if (dfnet_right_parse(e->valuestring, &right, problem, sizeof problem) != DFNET_STATUS_OK) {
      dfnet_why_set(why, cap, "program.rights[%zu]: %s", i, problem);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    if ((*out & (uint32_t)right) != 0) {
      dfnet_why_set(why, cap, "program.rights[%zu]: \"%s\" is given twice", i, e->valuestring);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    *out |= (uint32_t)right;
    i++;
  }
  return DFNET_STATUS_OK;
}

/* One member of "limits" into *out. */
static dfnet_status_t parse_limit(const cJSON *e, dfnet_driver_rights_t *out, char *why,
                                  size_t cap) {
  for (size_t k = 0; k < LIMIT_COUNT; k++) {
    if (strcmp(e->string, k_limits[k].key) != 0)
      continue;
    if (!cJSON_IsNumber(e)) {
      char *text = cJSON_PrintUnformatted(e);
      dfnet_why_set(why, cap, "program.limits.%s: %.40s is not an integer (%u..%u)", e->string,
                    text != NULL ? text : "the value", DFNET_DRIVER_LIMIT_MIN,
                    DFNET_DRIVER_LIMIT_MAX);
      cJSON_free(text);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    double v = e->valuedouble;
    if (v < DFNET_DRIVER_LIMIT_MIN || v > DFNET_DRIVER_LIMIT_MAX) {
      dfnet_why_set(why, cap, "program.limits.%s: %g is out of range (%u..%u)", e->string, v,
                    DFNET_DRIVER_LIMIT_MIN, DFNET_DRIVER_LIMIT_MAX);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    if (v != (double)(uint32_t)v) {
      dfnet_why_set(why, cap, "program.limits.%s: %g is not an integer (%u..%u)", e->string, v,
                    DFNET_DRIVER_LIMIT_MIN, DFNET_DRIVER_LIMIT_MAX);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    *(uint32_t *)((char *)out + k_limits[k].offset) = (uint32_t)v;
    return DFNET_STATUS_OK;
  }
  char hint[64];
  dfnet_why_set(
      why, cap, "program.limits.%.64s: unknown limit%s (limits: memory_mb, open_files)", e->string,
      did_you_mean(e->string, k_limits, LIMIT_COUNT, sizeof k_limits[0], hint, sizeof hint));
  return DFNET_STATUS_INVALID_ARGUMENT;
}

dfnet_status_t dfnet_driver_rights_parse(const char *program_json, size_t len,
                                         dfnet_driver_rights_t *out, char *why, size_t cap) {
  *out = (dfnet_driver_rights_t){.rights = 0,
                                 .memory_mb = DFNET_DRIVER_MEMORY_MB_DEFAULT,
                                 .open_files = DFNET_DRIVER_OPEN_FILES_DEFAULT};
  if (program_json == NULL || len == 0)
    return DFNET_STATUS_OK;
  cJSON *program = cJSON_ParseWithLength(program_json, len);
  dfnet_driver_rights_t got = *out;
  dfnet_status_t st = DFNET_STATUS_INVALID_ARGUMENT;
  if (!cJSON_IsObject(program)) {
    dfnet_why_set(why, cap, "program: not a JSON object (or no memory to parse it)");
    goto free_program;
  }
  const cJSON *rights = cJSON_GetObjectItemCaseSensitive(program, "rights");
  if (rights != NULL && parse_rights(rights, &got.rights, why, cap) != DFNET_STATUS_OK)
    goto free_program;
  const cJSON *limits = cJSON_GetObjectItemCaseSensitive(program, "limits");
  if (limits != NULL && !cJSON_IsObject(limits)) {
    dfnet_why_set(why, cap,
                  "program.limits: must be an object ({\"memory_mb\": N, \"open_files\": N})");
    goto free_program;
  }
  const cJSON *e;
  cJSON_ArrayForEach(e, limits) {
    if (parse_limit(e, &got, why, cap) != DFNET_STATUS_OK)
      goto free_program;
  }
  *out = got;
  st = DFNET_STATUS_OK;
free_program:
  cJSON_Delete(program);
  return st;
}
