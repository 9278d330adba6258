/* dfnet CLI: how things are printed (docs/spec/dfv2.md "What ffx driver prints") and small I/O
 * helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "dfnet/bind_keys.h"
#include "lib/hex.h"

/* Integer keys by their deprecated name (Fuchsia prints an unknown one as {:#08}), string
 * keys quoted. */
void cli__property_key(const dfnet_client_property_t *p, char *buf, size_t cap) {
  if (p->str_key != NULL) {
    snprintf(buf, cap, "\"%s\"", p->str_key);
    return;
  }
  const char *name = dfnet_bind_key_name(p->int_key);
  if (name != NULL)
    snprintf(buf, cap, "%s", name);
  else
    snprintf(buf, cap, "%08u", p->int_key);
}

/* uint values 0x%06x, strings quoted, bools bare, enums Enum(a.b.C). */
void cli__property_value(const dfnet_client_property_t *p, char *buf, size_t cap) {
  switch (p->type) {
  case DFNET_CLIENT_VALUE_INT:
    snprintf(buf, cap, "0x%06x", p->int_value);
    break;
  case DFNET_CLIENT_VALUE_STRING:
    snprintf(buf, cap, "\"%s\"", p->str_value);
    break;
  case DFNET_CLIENT_VALUE_BOOL:
    snprintf(buf, cap, "%s", p->bool_value ? "true" : "false");
    break;
  case DFNET_CLIENT_VALUE_ENUM:
    snprintf(buf, cap, "Enum(%s)", p->str_value);
    break;
  default:
    snprintf(buf, cap, "None");
    break;
  }
}

/* "key" (and "key_name" for an integer key) of a property or bind rule. */
static void key_json(cJSON *o, const char *str_key, uint32_t int_key) {
  if (str_key != NULL) {
    cJSON_AddStringToObject(o, "key", str_key);
    return;
  }
  cJSON_AddNumberToObject(o, "key", int_key);
  const char *name = dfnet_bind_key_name(int_key);
  if (name != NULL)
    cJSON_AddStringToObject(o, "key_name", name);
  else
    cJSON_AddNullToObject(o, "key_name");
}

/* A value's "type" in JSON, by its type (any other: "none"). */
static const char *const value_types[] = {
    [DFNET_CLIENT_VALUE_NONE] = "none",     [DFNET_CLIENT_VALUE_INT] = "uint",
    [DFNET_CLIENT_VALUE_STRING] = "string", [DFNET_CLIENT_VALUE_BOOL] = "bool",
    [DFNET_CLIENT_VALUE_ENUM] = "enum",
};

/* "type" and "value" of a property or bind rule value. */
static void value_json(cJSON *o, const dfnet_client_property_t *p) {
  size_t t = (size_t)p->type;
  bool known = t < sizeof value_types / sizeof value_types[0];
  cJSON_AddStringToObject(o, "type", known ? value_types[t] : "none");
  switch (p->type) {
  case DFNET_CLIENT_VALUE_INT:
    cJSON_AddNumberToObject(o, "value", p->int_value);
    break;
  case DFNET_CLIENT_VALUE_STRING:
  case DFNET_CLIENT_VALUE_ENUM:
    cJSON_AddStringToObject(o, "value", p->str_value);
    break;
  case DFNET_CLIENT_VALUE_BOOL:
    cJSON_AddBoolToObject(o, "value", p->bool_value);
    break;
  default:
    cJSON_AddNullToObject(o, "value");
    break;
  }
}

cJSON *cli__property_json(const dfnet_client_property_t *p) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  key_json(o, p->str_key, p->int_key);
  value_json(o, p);
  return o;
}

void cli__bind_rule_text(const dfnet_client_bind_rule_t *r, char *buf, size_t cap) {
  char key[160];
  const dfnet_client_property_t k = {.str_key = r->str_key, .int_key = r->int_key};
  cli__property_key(&k, key, sizeof key);
  int n =
      snprintf(buf, cap, "%s %s {", r->condition == DFNET_CLIENT_REJECT ? "Reject" : "Accept", key);
  for (size_t i = 0; i < r->value_count && n >= 0 && (size_t)n < cap; i++) {
    char value[300];
    cli__property_value(&r->values[i], value, sizeof value);
    n += snprintf(buf + n, cap - (size_t)n, "%s %s", i ? "," : "", value);
  }
  if (n >= 0 && (size_t)n < cap)
    snprintf(buf + n, cap - (size_t)n, " }");
}

cJSON *cli__bind_rule_json(const dfnet_client_bind_rule_t *r) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  key_json(o, r->str_key, r->int_key);
  cJSON_AddStringToObject(o, "condition",
                          r->condition == DFNET_CLIENT_REJECT ? "reject" : "accept");
  cJSON *values = cJSON_AddArrayToObject(o, "values");
  for (size_t i = 0; values != NULL && i < r->value_count; i++) {
    cJSON *v = cJSON_CreateObject();
    if (v != NULL)
      value_json(v, &r->values[i]);
    cJSON_AddItemToArray(values, v);
  }
  return o;
}

int cli__json_print(cJSON *doc) {
  char *text = doc ? cJSON_Print(doc) : NULL;
  cJSON_Delete(doc);
  if (text == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory building JSON");
  fputs(text, stdout);
  fputc('\n', stdout);
  free(text);
  return CLI_EXIT_OK;
}

const char *cli__nonempty(const char *s, const char *dflt) {
  return s != NULL && s[0] != '\0' ? s : dflt;
}

cJSON *cli__json_string_or_null(const char *s) {
  return s != NULL && s[0] != '\0' ? cJSON_CreateString(s) : cJSON_CreateNull();
}

cJSON *cli__json_time(uint64_t epoch_ms) {
  char t[40];
  if (epoch_ms == 0)
    return cJSON_CreateNull();
  cli__time_str(epoch_ms, t, sizeof t);
  return cJSON_CreateString(t);
}

cJSON *cli__json_strings(const char *const *v, size_t n) {
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a != NULL && i < n; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
  return a;
}

void cli__json_line(cJSON *o) {
  char *line = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
  if (line != NULL)
    printf("%s\n", line);
  fflush(stdout);
  cJSON_free(line);
  cJSON_Delete(o);
}

char *cli__hex(const uint8_t *data, size_t len) {
  char *s = malloc(len * 2 + 1);
  if (s != NULL)
    dfnet_hex_encode(data, len, s);
  return s;
}

int cli__unhex(const char *text, uint8_t **out, size_t *len) {
  size_t n = strlen(text);
  uint8_t *b = malloc(n / 2 + 1);
  if (b == NULL)
    return -1;
  size_t k = 0;
  int hi = -1;
  for (size_t i = 0; i < n; i++) {
    if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == ':')
      continue;
    int v = dfnet_hex_digit(text[i]);
    if (v < 0) {
      free(b);
      return -1;
    }
    if (hi < 0) {
      hi = v;
    } else {
      b[k++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  if (hi >= 0) {
    free(b);
    return -1;
  }
  *out = b;
  *len = k;
  return 0;
}

int cli__read_file(const char *path, size_t max, uint8_t **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t cap = 4096, n = 0;
  uint8_t *b = malloc(cap);
  int rc = -1;
  while (b != NULL) {
    if (n == cap) {
      if (cap >= max + 1) {
        errno = EFBIG;
        break;
      }
      cap *= 2;
      uint8_t *nb = realloc(b, cap);
      if (nb == NULL)
        break;
      b = nb;
    }
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (r == 0) {
      rc = 0;
      break;
    }
    n += (size_t)r;
    if (n > max) {
      errno = EFBIG;
      break;
    }
  }
  close(fd);
  if (rc != 0) {
    free(b);
    return -1;
  }
  *out = b;
  *len = n;
  return 0;
}

int cli__write_all(int fd, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

void cli__time_str(uint64_t epoch_ms, char *buf, size_t cap) {
  time_t s = (time_t)(epoch_ms / 1000u);
  struct tm tm;
  gmtime_r(&s, &tm);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, cap, "%s.%03uZ", date, (unsigned)(epoch_ms % 1000u));
}

void cli__size_str(uint64_t bytes, char *buf, size_t cap) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) {
    snprintf(buf, cap, "%u B", (unsigned)bytes);
    return;
  }
  double v = (double)bytes / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, cap, "%.1f %s", v, units[u]);
}
