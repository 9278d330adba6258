/* A node property written as text, KEY=VALUE (property_text.h): the value forms of
 * `composite add`'s file (clients/cli/JSON.md) written as text, checked against the wire's
 * bounds. A mistake is refused naming the part that is wrong. */
#include "lib/property_text.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/bind_key_name.h"
#include "lib/cmdline.h"

#define KEY_MAX 127   /* NodeProperty.str_key */
#define VALUE_MAX 255 /* NodeProperty.str_value, enum_value */

_Static_assert(DFNET_PROPERTY_TEXT_MAX == KEY_MAX + 1 + VALUE_MAX + 2,
               "KEY=\"VALUE\" at their bounds");

/* A number in C notation (decimal or 0x hex) that fits 32 bits. */
static bool text_uint32(const char *t, uint32_t *out) {
  uint64_t v = 0;
  if (!dfnet_cmdline_uint(t, 0, 0, 0xffffffffu, &v))
    return false;
  *out = (uint32_t)v;
  return true;
}

/* An identifier of the bind language: [A-Za-z_][A-Za-z0-9_]*, n bytes. */
static bool identifier(const char *s, size_t n) {
  if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
      return false;
  return true;
}

/* lib.KEY.VALUE: three or more dotted identifiers ("fuchsia.usb.BIND_PROTOCOL.DEVICE"). */
static bool enum_shaped(const char *v) {
  size_t parts = 0;
  for (const char *p = v;; parts++) {
    size_t n = strcspn(p, ".");
    if (!identifier(p, n))
      return false;
    if (p[n] == '\0')
      return parts + 1 >= 3;
    p += n + 1;
  }
}

/* The key: a deprecated fuchsia.BIND_* name or a number (an integer key), else a string
 * key. */
static bool parse_key(char *key, dfnet_bind_property_t *p, char *why, size_t cap) {
  if (!dfnet_bind_key_name_resolve(key, &p->int_key, why, cap))
    return false;
  if (p->int_key != 0)
    return true;
  if (isdigit((unsigned char)key[0])) {
    if (text_uint32(key, &p->int_key))
      return true;
    snprintf(why, cap, "key '%s' is not a number in 0..4294967295 (an integer key)", key);
    return false;
  }
  if (strlen(key) > KEY_MAX) {
    snprintf(why, cap, "the key is %zu bytes, at most %d", strlen(key), KEY_MAX);
    return false;
  }
  for (const char *c = key; *c; c++) {
    if (isspace((unsigned char)*c) || !isprint((unsigned char)*c)) {
      snprintf(why, cap, "key '%s' has a blank or control character", key);
      return false;
    }
  }
  p->str_key = key;
  return true;
}

/* The value, by its form; strings point into value (a quoted one loses its quotes). */
static bool parse_value(char *value, dfnet_bind_property_t *p, char *why, size_t cap) {
  size_t n = strlen(value);
  if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
    value[n - 1] = '\0';
    p->type = DFNET_BIND_VALUE_STRING;
    p->str_value = value + 1;
  } else if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
    p->type = DFNET_BIND_VALUE_BOOL;
    p->bool_value = value[0] == 't';
  } else if (isdigit((unsigned char)value[0])) {
    p->type = DFNET_BIND_VALUE_UINT;
    if (!text_uint32(value, &p->int_value)) {
      snprintf(why, cap,
               "value '%s' is not a number in 0..4294967295 (decimal or 0x hex; a string "
               "starting with a digit is quoted: \"%s\")",
               value, value);
      return false;
    }
  } else if (value[0] == '"') {
    snprintf(why, cap, "value %s: a quoted string ends with '\"'", value);
    return false;
  } else {
    p->type = enum_shaped(value) ? DFNET_BIND_VALUE_ENUM : DFNET_BIND_VALUE_STRING;
    p->str_value = value;
  }
  if (p->str_value != NULL && strlen(p->str_value) > VALUE_MAX) {
    snprintf(why, cap, "the value is %zu bytes, at most %d", strlen(p->str_value), VALUE_MAX);
    return false;
  }
  return true;
}

bool dfnet_property_text_parse(char *text, dfnet_bind_property_t *out, char *why, size_t cap) {
  memset(out, 0, sizeof *out);
  char *eq = strchr(text, '=');
  if (eq == NULL || eq == text) {
    snprintf(why, cap, "'%s' is not KEY=VALUE", text);
    return false;
  }
  if (eq[1] == '\0') {
    snprintf(why, cap, "'%s' has no value (an empty string is written \"\")", text);
    return false;
  }
  if (strlen(text) > DFNET_PROPERTY_TEXT_MAX) {
    snprintf(why, cap, "'%.40s...' is too long (a key of at most %d bytes, a value of %d)", text,
             KEY_MAX, VALUE_MAX);
    return false;
  }
  char *key = text;
  char *value = eq;
  *value++ = '\0';
  if (!parse_key(key, out, why, cap) || !parse_value(value, out, why, cap))
    return false;
  if (out->str_key == NULL && out->type != DFNET_BIND_VALUE_UINT) {
    snprintf(why, cap,
             "%s is an integer key: its value is a number, not '%s' (a name from a bind "
             "library is written as its number)",
             key, value);
    return false;
  }
  return true;
}
