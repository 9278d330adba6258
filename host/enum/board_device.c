/* One device of a board file into its platform node (issue 6 "Enumerators": the "board
 * driver" of Fuchsia's "Drivers" document, docs/design.md "The picture"; the node's
 * properties as Fuchsia's platform bus publishes them, fuchsia.platform bind library): its
 * name and ids, its "properties" and its "resources" (a table of the resource kinds), each
 * problem reported at its JSON path. The file format is written at the top of board.c.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/fuchsia_platform.h"
#include "dfnet/bind_keys.h"
#include "host/enum/board.h"
#include "host/enum/enum.h"
#include "lib/bind_key_name.h"

/* base followed by the formatted suffix, in buf[cap], cut to fit (a JSON path is only
 * used in messages). Returns buf. */
__attribute__((format(printf, 4, 5))) static const char *
subpath(char *buf, size_t cap, const char *base, const char *fmt, ...) {
  size_t len = strlen(base);
  if (len >= cap) {
    len = cap - 1;
  }
  memmove(buf, base, len);
  buf[len] = '\0';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, cap - len, fmt, ap);
  va_end(ap);
  return buf;
}

const char *board__json_type_name(const cJSON *item) {
  static const struct {
    cJSON_bool (*is)(const cJSON *item);
    const char *name;
  } types[] = {
      {cJSON_IsString, "a string"}, {cJSON_IsNumber, "a number"}, {cJSON_IsBool, "a boolean"},
      {cJSON_IsNull, "null"},       {cJSON_IsArray, "an array"},  {cJSON_IsObject, "an object"},
  };
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    if (types[i].is(item)) {
      return types[i].name;
    }
  }
  return "an invalid value";
}

/* A uint32 from a JSON integer or a strtoul string ("0x1c"). Reports and returns false
 * when it is not one. */
static bool get_uint(board_priv_t *priv, const cJSON *item, const char *path, uint32_t max,
                     uint32_t *out) {
  if (cJSON_IsNumber(item)) {
    double v = item->valuedouble;
    if (v >= 0 && v <= (double)max && floor(v) == v) {
      *out = (uint32_t)v;
      return true;
    }
    board__error(priv, path, "expected an integer 0..%" PRIu32 ", got %g", max, v);
    return false;
  }
  if (cJSON_IsString(item)) {
    const char *s = item->valuestring;
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 0) : 0;
    if (end != NULL && end != s && *end == '\0' && errno == 0 && v <= max) {
      *out = (uint32_t)v;
      return true;
    }
    board__error(priv, path, "expected an integer 0..%" PRIu32 ", got the string \"%.64s\"", max,
                 s);
    return false;
  }
  board__error(priv, path, "expected an integer 0..%" PRIu32 ", got %s", max,
               board__json_type_name(item));
  return false;
}

static bool get_string(board_priv_t *priv, const cJSON *item, const char *path, const char **out) {
  if (!cJSON_IsString(item)) {
    board__error(priv, path, "expected a string, got %s", board__json_type_name(item));
    return false;
  }
  *out = item->valuestring;
  return true;
}

/* An absolute device path that fits a string property. */
static bool get_device_path(board_priv_t *priv, const cJSON *item, const char *path,
                            const char **out) {
  if (!get_string(priv, item, path, out)) {
    return false;
  }
  if ((*out)[0] != '/' || strlen(*out) > 255) {
    board__error(priv, path, "expected an absolute path of at most 255 bytes, got \"%.64s\"", *out);
    return false;
  }
  return true;
}

/* Report the first member of obj that is not one of allowed[0..n), at its JSON path:
 * "unknown key (<known>)". Returns false when there is one. */
static bool only_members(board_priv_t *priv, const cJSON *obj, const char *path,
                         const char *const *allowed, size_t n, const char *known) {
  const cJSON *field;
  cJSON_ArrayForEach(field, obj) {
    size_t k = 0;
    while (k < n && strcmp(allowed[k], field->string) != 0) {
      k++;
    }
    if (k == n) {
      char sub[BOARD_PATH_MAX];
      subpath(sub, sizeof(sub), path, ".%.40s", field->string);
      board__error(priv, sub, "unknown key (%s)", known);
      return false;
    }
  }
  return true;
}

/* The member `name` of obj, its JSON path in sub[BOARD_PATH_MAX]. When it is absent,
 * reports "missing \"<name>\"<hint>" at path and returns NULL. */
static const cJSON *get_member(board_priv_t *priv, const cJSON *obj, const char *path,
                               const char *name, const char *hint, char *sub) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
  subpath(sub, BOARD_PATH_MAX, path, ".%s", name);
  if (item == NULL) {
    board__error(priv, path, "missing \"%s\"%s", name, hint);
  }
  return item;
}

/* Add a property built by the caller; report a failure at path. */
static bool check_added(board_priv_t *priv, dfnet_status_t s, const char *path, const char *key) {
  switch (s) {
  case DFNET_STATUS_OK:
    return true;
  case DFNET_STATUS_ALREADY_EXISTS:
    board__error(priv, path, "the key %s is already set on this device (one key, one value)", key);
    return false;
  case DFNET_STATUS_RESOURCE_EXHAUSTED:
    board__error(priv, path, "too many properties (a node has at most 64)");
    return false;
  default:
    board__error(priv, path, "key or value too long for %s", key);
    return false;
  }
}

static const char *const property_members[] = {"key", "type", "value"};

static bool parse_property(board_priv_t *priv, const cJSON *prop, const char *path,
                           dfnet_v1_NodeAdd *node) {
  char type_path[BOARD_PATH_MAX], key_path[BOARD_PATH_MAX], value_path[BOARD_PATH_MAX];
  if (!cJSON_IsObject(prop)) {
    board__error(priv, path, "expected an object {\"key\", \"type\", \"value\"}, got %s",
                 board__json_type_name(prop));
    return false;
  }
  if (!only_members(priv, prop, path, property_members, 3,
                    "a property has \"key\", \"type\", \"value\"")) {
    return false;
  }
  const char *key, *type;
  const cJSON *key_item = get_member(priv, prop, path, "key", "", key_path);
  if (key_item == NULL || !get_string(priv, key_item, key_path, &key)) {
    return false;
  }
  if (key[0] == '\0' || strlen(key) > 127 || strpbrk(key, " \t\r\n") != NULL) {
    board__error(priv, key_path, "a key is 1..127 characters without spaces, got \"%.64s\"", key);
    return false;
  }
  uint32_t int_key = 0;
  char why[256];
  if (!dfnet_bind_key_name_resolve(key, &int_key, why, sizeof why)) {
    board__error(priv, key_path, "%s", why);
    return false;
  }
  const cJSON *type_item =
      get_member(priv, prop, path, "type", " (int, string, bool or enum)", type_path);
  if (type_item == NULL || !get_string(priv, type_item, type_path, &type)) {
    return false;
  }
  const cJSON *value = get_member(priv, prop, path, "value", "", value_path);
  if (value == NULL) {
    return false;
  }
  if (int_key != 0 && strcmp(type, "int") != 0) {
    board__error(priv, type_path, "%s is an integer key: its type is \"int\", not \"%.32s\"", key,
                 type);
    return false;
  }
  const char *str_key = int_key != 0 ? NULL : key;
  if (strcmp(type, "int") == 0) {
    uint32_t v;
    return get_uint(priv, value, value_path, UINT32_MAX, &v) &&
           check_added(priv, enum__prop_int(node, int_key, str_key, v), path, key);
  }
  if (strcmp(type, "bool") == 0) {
    if (!cJSON_IsBool(value)) {
      board__error(priv, value_path, "expected true or false, got %s",
                   board__json_type_name(value));
      return false;
    }
    return check_added(priv, enum__prop_bool(node, 0, key, cJSON_IsTrue(value)), path, key);
  }
  const char *text;
  if (strcmp(type, "string") == 0) {
    return get_string(priv, value, value_path, &text) &&
           check_added(priv, enum__prop_str(node, 0, key, text), path, key);
  }
  if (strcmp(type, "enum") == 0) {
    if (!get_string(priv, value, value_path, &text)) {
      return false;
    }
    const char *dot = strchr(text, '.');
    if (dot == NULL || dot == text || strrchr(text, '.')[1] == '\0') {
      board__error(priv, value_path,
                   "an enum value is fully qualified (\"fuchsia.serial.CLASS."
                   "CONSOLE\"), got \"%.64s\"",
                   text);
      return false;
    }
    return check_added(priv, enum__prop_enum(node, 0, key, text), path, key);
  }
  board__error(priv, type_path, "unknown type \"%.32s\" (int, string, bool or enum)", type);
  return false;
}

/* ---- resources, by table ----------------------------------------------------------- */

typedef bool (*resource_parse_fn)(board_priv_t *priv, const cJSON *item, const char *path,
                                  dfnet_v1_NodeAdd *node);

static bool resource_path_prop(board_priv_t *priv, const cJSON *item, const char *path,
                               dfnet_v1_NodeAdd *node, const char *key) {
  const char *dev;
  return get_device_path(priv, item, path, &dev) &&
         check_added(priv, enum__prop_str(node, 0, key, dev), path, key);
}

static bool resource_tty(board_priv_t *priv, const cJSON *item, const char *path,
                         dfnet_v1_NodeAdd *node) {
  return resource_path_prop(priv, item, path, node, DFNET_ENUM_KEY_PLATFORM_TTY);
}

static bool resource_spi(board_priv_t *priv, const cJSON *item, const char *path,
                         dfnet_v1_NodeAdd *node) {
  return resource_path_prop(priv, item, path, node, DFNET_ENUM_KEY_PLATFORM_SPI);
}

static bool resource_path(board_priv_t *priv, const cJSON *item, const char *path,
                          dfnet_v1_NodeAdd *node) {
  return resource_path_prop(priv, item, path, node, DFNET_ENUM_KEY_PLATFORM_PATH);
}

static bool resource_block(board_priv_t *priv, const cJSON *item, const char *path,
                           dfnet_v1_NodeAdd *node) {
  return resource_path_prop(priv, item, path, node, DFNET_ENUM_KEY_PLATFORM_BLOCK) &&
         check_added(priv, enum__prop_bool(node, 0, DFNET_ENUM_KEY_PLATFORM_HAS_BLOCK, true), path,
                     DFNET_ENUM_KEY_PLATFORM_HAS_BLOCK);
}

/* {"<file member>": "/dev/...", "<number member>": N}: two properties. */
static bool resource_pair(board_priv_t *priv, const cJSON *item, const char *path,
                          dfnet_v1_NodeAdd *node, const char *file_member, const char *file_key,
                          const char *num_member, const char *num_key, uint32_t num_max) {
  char file_path[BOARD_PATH_MAX], num_path[BOARD_PATH_MAX], known[96];
  if (!cJSON_IsObject(item)) {
    board__error(priv, path, "expected an object {\"%s\", \"%s\"}, got %s", file_member, num_member,
                 board__json_type_name(item));
    return false;
  }
  const char *const members[] = {file_member, num_member};
  snprintf(known, sizeof(known), "expected \"%s\" and \"%s\"", file_member, num_member);
  if (!only_members(priv, item, path, members, 2, known)) {
    return false;
  }
  const cJSON *file = get_member(priv, item, path, file_member, "", file_path);
  const cJSON *num = file != NULL ? get_member(priv, item, path, num_member, "", num_path) : NULL;
  const char *dev;
  uint32_t n;
  if (num == NULL || !get_device_path(priv, file, file_path, &dev)) {
    return false;
  }
  return get_uint(priv, num, num_path, num_max, &n) &&
         check_added(priv, enum__prop_str(node, 0, file_key, dev), path, file_key) &&
         check_added(priv, enum__prop_int(node, 0, num_key, n), path, num_key);
}

static bool resource_gpio(board_priv_t *priv, const cJSON *item, const char *path,
                          dfnet_v1_NodeAdd *node) {
  return resource_pair(priv, item, path, node, "chip", DFNET_ENUM_KEY_PLATFORM_GPIO_CHIP, "line",
                       DFNET_ENUM_KEY_PLATFORM_GPIO_LINE, UINT32_MAX);
}

static bool resource_i2c(board_priv_t *priv, const cJSON *item, const char *path,
                         dfnet_v1_NodeAdd *node) {
  /* 7-bit and 10-bit addresses (the kernel's I2C_TENBIT range). */
  return resource_pair(priv, item, path, node, "bus", DFNET_ENUM_KEY_PLATFORM_I2C_BUS, "address",
                       DFNET_ENUM_KEY_PLATFORM_I2C_ADDRESS, 0x3ff);
}

/* A string member of at most 255 bytes (a string property's bound) into a property. */
static bool power_string(board_priv_t *priv, const cJSON *obj, const char *path, const char *name,
                         bool required, dfnet_v1_NodeAdd *node, const char *key) {
  char sub[BOARD_PATH_MAX];
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (item == NULL && !required)
    return true;
  const char *text;
  if ((item = get_member(priv, obj, path, name, "", sub)) == NULL ||
      !get_string(priv, item, sub, &text))
    return false;
  if (text[0] == '\0' || strlen(text) > 255) {
    board__error(priv, sub, "expected 1..255 bytes, got %zu", strlen(text));
    return false;
  }
  return check_added(priv, enum__prop_str(node, 0, key, text), sub, key);
}

/* {"backend": "tasmota" | "shelly-gen1" | "shelly-gen2", "address": URL, "index": N} or
 * {"backend": "command", "on": CMD, "off": CMD, "get": CMD, "index": N}: drivers/power. */
static bool resource_power(board_priv_t *priv, const cJSON *item, const char *path,
                           dfnet_v1_NodeAdd *node) {
  static const char *const http_members[] = {"backend", "address", "index"};
  static const char *const command_members[] = {"backend", "on", "off", "get", "index"};
  static const char *const backends[] = {"tasmota", "shelly-gen1", "shelly-gen2", "command"};
  char sub[BOARD_PATH_MAX];
  if (!cJSON_IsObject(item)) {
    board__error(priv, path, "expected an object {\"backend\", ...}, got %s",
                 board__json_type_name(item));
    return false;
  }
  const cJSON *b = get_member(priv, item, path, "backend",
                              " (tasmota, shelly-gen1, shelly-gen2 "
                              "or command)",
                              sub);
  const char *backend;
  if (b == NULL || !get_string(priv, b, sub, &backend))
    return false;
  size_t k = 0;
  while (k < 4 && strcmp(backend, backends[k]) != 0)
    k++;
  if (k == 4) {
    board__error(priv, sub,
                 "unknown backend \"%.40s\" (tasmota, shelly-gen1, shelly-gen2 or "
                 "command)",
                 backend);
    return false;
  }
  bool command = k == 3;
  if (!only_members(priv, item, path, command ? command_members : http_members, command ? 5 : 3,
                    command ? "backend command takes on, off, get and index"
                            : "an HTTP backend takes address and index"))
    return false;
  const cJSON *index = cJSON_GetObjectItemCaseSensitive(item, "index");
  uint32_t n;
  subpath(sub, sizeof sub, path, ".index");
  if (index != NULL &&
      (!get_uint(priv, index, sub, 255, &n) ||
       !check_added(priv, enum__prop_int(node, 0, BIND_DFNET_PLATFORM_POWER_INDEX, n), sub,
                    BIND_DFNET_PLATFORM_POWER_INDEX)))
    return false;
  if (!check_added(priv, enum__prop_str(node, 0, BIND_DFNET_PLATFORM_POWER_BACKEND, backend), path,
                   BIND_DFNET_PLATFORM_POWER_BACKEND))
    return false;
  if (!command)
    return power_string(priv, item, path, "address", true, node, BIND_DFNET_PLATFORM_POWER_ADDRESS);
  return power_string(priv, item, path, "on", true, node, BIND_DFNET_PLATFORM_POWER_ON) &&
         power_string(priv, item, path, "off", true, node, BIND_DFNET_PLATFORM_POWER_OFF) &&
         power_string(priv, item, path, "get", false, node, BIND_DFNET_PLATFORM_POWER_GET);
}

static const struct {
  const char *name;
  resource_parse_fn parse;
} resource_kinds[] = {
    {"tty", resource_tty},     {"gpio", resource_gpio}, {"i2c", resource_i2c},
    {"spi", resource_spi},     {"path", resource_path}, {"power", resource_power},
    {"block", resource_block},
};

static bool parse_resources(board_priv_t *priv, const cJSON *resources, const char *path,
                            dfnet_v1_NodeAdd *node) {
  if (!cJSON_IsObject(resources)) {
    board__error(priv, path, "expected an object, got %s", board__json_type_name(resources));
    return false;
  }
  const cJSON *res;
  cJSON_ArrayForEach(res, resources) {
    char sub[BOARD_PATH_MAX];
    subpath(sub, sizeof(sub), path, ".%.40s", res->string);
    size_t k = 0;
    size_t kinds = sizeof(resource_kinds) / sizeof(resource_kinds[0]);
    while (k < kinds && strcmp(resource_kinds[k].name, res->string) != 0) {
      k++;
    }
    if (k == kinds) {
      board__error(priv, sub, "unknown resource (tty, gpio, i2c, spi, path, power or block)");
      return false;
    }
    if (!resource_kinds[k].parse(priv, res, sub, node)) {
      return false;
    }
  }
  return true;
}

/* ---- devices ----------------------------------------------------------------------- */

static bool valid_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > 128) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

/* The device's "properties" array (the device at path). */
static bool parse_properties(board_priv_t *priv, const cJSON *props, const char *path,
                             dfnet_v1_NodeAdd *node) {
  char sub[BOARD_PATH_MAX];
  subpath(sub, sizeof(sub), path, ".properties");
  if (!cJSON_IsArray(props)) {
    board__error(priv, sub, "expected an array, got %s", board__json_type_name(props));
    return false;
  }
  size_t i = 0;
  const cJSON *prop;
  cJSON_ArrayForEach(prop, props) {
    subpath(sub, sizeof(sub), path, ".properties[%zu]", i++);
    if (!parse_property(priv, prop, sub, node)) {
      return false;
    }
  }
  return true;
}

static const char *const device_members[] = {"name",       "vid",       "pid",    "did",
                                             "properties", "resources", "comment"};

/* Build the node of devices[index] into priv->node; reports and returns false when the
 * device is malformed. */
bool board__parse_device(board_priv_t *priv, const cJSON *dev, size_t index) {
  char path[BOARD_PATH_MAX], sub[BOARD_PATH_MAX];
  snprintf(path, sizeof(path), "$.devices[%zu]", index);
  if (!cJSON_IsObject(dev)) {
    board__error(priv, path, "expected an object, got %s", board__json_type_name(dev));
    return false;
  }
  if (!only_members(priv, dev, path, device_members,
                    sizeof(device_members) / sizeof(device_members[0]),
                    "name, vid, pid, did, properties, resources, comment")) {
    return false;
  }
  const char *name;
  const cJSON *name_item = get_member(priv, dev, path, "name", "", sub);
  if (name_item == NULL || !get_string(priv, name_item, sub, &name)) {
    return false;
  }
  if (!valid_name(name)) {
    board__error(priv, sub,
                 "a device name is 1..128 characters of A-Z a-z 0-9 _ -, got "
                 "\"%.64s\"",
                 name);
    return false;
  }
  dfnet_v1_NodeAdd *node = &priv->node;
  if (enum__node_init(node, "platform", name) != DFNET_STATUS_OK) {
    board__error(priv, sub, "not a valid node name");
    return false;
  }
  static const struct {
    const char *member;
    uint32_t key;
  } ids[] = {{"vid", DFNET_BIND_PLATFORM_DEV_VID},
             {"pid", DFNET_BIND_PLATFORM_DEV_PID},
             {"did", DFNET_BIND_PLATFORM_DEV_DID}};
  if (!check_added(priv,
                   enum__prop_int(node, DFNET_BIND_PROTOCOL, NULL,
                                  BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
                   path, "fuchsia.BIND_PROTOCOL")) {
    return false;
  }
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
    const cJSON *item = get_member(priv, dev, path, ids[i].member, "", sub);
    uint32_t v;
    if (item == NULL || !get_uint(priv, item, sub, UINT32_MAX, &v) ||
        !check_added(priv, enum__prop_int(node, ids[i].key, NULL, v), sub, ids[i].member)) {
      return false;
    }
  }
  if (!check_added(priv, enum__prop_str(node, 0, DFNET_ENUM_KEY_PLATFORM_NAME, name), path,
                   DFNET_ENUM_KEY_PLATFORM_NAME)) {
    return false;
  }
  const cJSON *resources = cJSON_GetObjectItemCaseSensitive(dev, "resources");
  subpath(sub, sizeof(sub), path, ".resources");
  if (resources != NULL && !parse_resources(priv, resources, sub, node)) {
    return false;
  }
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(dev, "properties");
  if (props != NULL && !parse_properties(priv, props, path, node)) {
    return false;
  }
  const cJSON *comment = cJSON_GetObjectItemCaseSensitive(dev, "comment");
  subpath(sub, sizeof(sub), path, ".comment");
  const char *ignored;
  return comment == NULL || get_string(priv, comment, sub, &ignored);
}
