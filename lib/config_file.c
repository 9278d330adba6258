/* The configuration file reader (config_file.h). */
#include "lib/config_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cmdline.h"
#include "lib/fileio.h"
#include "lib/suggest.h"

static const char *key_name(const dfnet_config_key_t *k) {
  const char *n = k->name;
  while (*n == '-')
    n++;
  return n;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* The key written on a line: its index in keys, or key_count after writing the "unknown
 * key" message (with the nearest known one) into err. */
static size_t find_key(const char *path, unsigned line, const char *name,
                       const dfnet_config_key_t *keys, size_t key_count, char *err,
                       size_t err_size) {
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, name);
  for (size_t i = 0; i < key_count; i++) {
    if (strcmp(key_name(&keys[i]), name) == 0)
      return i;
    dfnet_suggest_offer(&s, key_name(&keys[i]));
  }
  char msg[512];
  dfnet_cmdline_unknown(msg, sizeof msg, "key", name, dfnet_suggest_best(&s), NULL);
  snprintf(err, err_size, "%s:%u: %s", path, line, msg);
  return key_count;
}

/* One line (NUL-terminated, no newline) into out->entries[out->count]; blank and comment
 * lines add nothing. Returns OK or INVALID_ARGUMENT (err written). */
static dfnet_status_t parse_line(const char *path, unsigned line, char *text,
                                 const dfnet_config_key_t *keys, size_t key_count,
                                 dfnet_config_file_t *out, char *err, size_t err_size) {
  char *s = trim(text);
  if (s[0] == '\0' || s[0] == '#')
    return DFNET_STATUS_OK;
  char *eq = strchr(s, '=');
  if (eq == NULL || eq == s) {
    snprintf(err, err_size, "%s:%u: expected 'key = value'", path, line);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *eq = '\0';
  const char *name = trim(s), *value = trim(eq + 1);
  if (name[0] == '\0') {
    snprintf(err, err_size, "%s:%u: expected 'key = value'", path, line);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  size_t k = find_key(path, line, name, keys, key_count, err, err_size);
  if (k == key_count)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (value[0] == '\0') {
    snprintf(err, err_size, "%s:%u: '%s' has an empty value", path, line, name);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < out->count && !keys[k].repeatable; i++) {
    if (out->entries[i].key == k) {
      snprintf(err, err_size, "%s:%u: '%s' given twice (first on line %u)", path, line, name,
               out->entries[i].line);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
  }
  out->entries[out->count++] =
      (dfnet_config_entry_t){.key = k, .name = name, .value = value, .line = line};
  return DFNET_STATUS_OK;
}

/* Cut the text into lines and parse each. */
static dfnet_status_t parse_text(const char *path, size_t size, const dfnet_config_key_t *keys,
                                 size_t key_count, dfnet_config_file_t *out, char *err,
                                 size_t err_size) {
  char *p = out->text, *end = out->text + size;
  for (unsigned line = 1; p < end; line++) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *stop = nl != NULL ? nl : end;
    if ((size_t)(stop - p) > DFNET_CONFIG_LINE_MAX) {
      snprintf(err, err_size, "%s:%u: line longer than %u bytes", path, line,
               DFNET_CONFIG_LINE_MAX);
      return DFNET_STATUS_OUT_OF_RANGE;
    }
    if (memchr(p, '\0', (size_t)(stop - p)) != NULL) {
      snprintf(err, err_size, "%s:%u: a NUL byte", path, line);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    *stop = '\0';
    dfnet_status_t st = parse_line(path, line, p, keys, key_count, out, err, err_size);
    if (st != DFNET_STATUS_OK)
      return st;
    p = stop + 1;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_config_file_read(const char *path, bool must_exist,
                                      const dfnet_config_key_t *keys, size_t key_count,
                                      dfnet_config_file_t *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  if (strcmp(path, "/dev/null") == 0) { /* "no configuration": an empty file */
    out->found = true;
    return DFNET_STATUS_OK;
  }
  dfnet_file_t file;
  char why[256] = "";
  dfnet_status_t st = dfnet_file_read(path, DFNET_CONFIG_FILE_MAX, 0, &file, why, sizeof why);
  if (st == DFNET_STATUS_NOT_FOUND && !must_exist)
    return DFNET_STATUS_OK;
  if (st != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s: %s", path, why);
    return st;
  }
  out->found = true;
  out->text = (char *)file.data; /* size bytes and a NUL */
  size_t lines = 1;
  for (size_t i = 0; i < file.size; i++)
    lines += file.data[i] == '\n';
  out->entries = calloc(lines, sizeof *out->entries);
  if (out->entries == NULL) {
    snprintf(err, err_size, "%s: out of memory", path);
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  } else {
    st = parse_text(path, file.size, keys, key_count, out, err, err_size);
  }
  if (st != DFNET_STATUS_OK)
    dfnet_config_file_free(out);
  return st;
}

void dfnet_config_file_free(dfnet_config_file_t *f) {
  free(f->text);
  free(f->entries);
  memset(f, 0, sizeof *f);
}

bool dfnet_config_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
      *out = strcasecmp(text, yes[i]) == 0;
      return true;
    }
  }
  return false;
}

void dfnet_config_path(char *out, size_t cap, const char *name) {
  const char *dir = getenv("DFNET_CONFIG_DIR");
  if (dir == NULL || dir[0] == '\0')
    dir = DFNET_CONFIG_DIR_DEFAULT;
  snprintf(out, cap, "%s/%s", dir, name);
}
