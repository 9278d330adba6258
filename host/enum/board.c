/* Platform devices from a board file (issue 6 "Enumerators": the "board driver" of Fuchsia's
 * "Drivers" document, docs/design.md "The picture"; Fuchsia's platform bus publishes a node
 * per platform device with fuchsia.BIND_PLATFORM_DEV_VID/PID/DID, fuchsia.platform bind
 * library).
 *
 * Board file format (JSON, UTF-8, at most 1 MiB):
 *
 *   {
 *     "board": "lab-a-rpi4",                  optional string, informational
 *     "devices": [                            required array; one object per device
 *       {
 *         "name": "uart0",                    required; 1..128 chars of [A-Za-z0-9_-];
 *                                             unique; the node is "platform.<name>"
 *         "vid": 0, "pid": 0, "did": "0x1c",  required; uint32 as a JSON integer or a
 *                                             string strtoul reads ("0x1c", "28")
 *         "properties": [                     optional; extra node properties
 *           {"key": "fuchsia.BIND_PLATFORM_DEV_INSTANCE_ID", "type": "int", "value": 0},
 *           {"key": "dfnet.board.LABEL", "type": "string", "value": "console"},
 *           {"key": "dfnet.board.CONSOLE", "type": "bool", "value": true},
 *           {"key": "fuchsia.serial.CLASS", "type": "enum",
 *            "value": "fuchsia.serial.CLASS.CONSOLE"}
 *         ],
 *         "resources": {                      optional; device files the driver uses
 *           "tty": "/dev/ttyS0",                            -> "dfnet.platform.TTY"
 *           "gpio": {"chip": "/dev/gpiochip0", "line": 17}, -> "dfnet.platform.GPIO_CHIP",
 *                                                              "dfnet.platform.GPIO_LINE"
 *           "i2c": {"bus": "/dev/i2c-1", "address": 80},    -> "dfnet.platform.I2C_BUS",
 *                                                              "dfnet.platform.I2C_ADDRESS"
 *           "spi": "/dev/spidev0.0",                        -> "dfnet.platform.SPI"
 *           "path": "/dev/watchdog0",                       -> "dfnet.platform.PATH"
 *           "power": {"backend": "tasmota",                  -> "dfnet.platform.POWER_BACKEND"
 *                     "address": "http://10.0.0.5",             "dfnet.platform.POWER_ADDRESS"
 *                     "index": 1}                               "dfnet.platform.POWER_INDEX"
 *             backends tasmota, shelly-gen1, shelly-gen2 (address, index), or command:
 *             {"backend": "command", "on": CMD, "off": CMD,  -> "dfnet.platform.POWER_ON",
 *              "get": CMD (optional), "index": N}               "_OFF", "_GET" (drivers/power)
 *           "block": "/dev/sda"                             -> "dfnet.platform.BLOCK",
 *                                                              "dfnet.platform.HAS_BLOCK"
 *             a block device a lab writes disk images to (a USB stick, an SD mux), or a
 *             regular file standing for one (drivers/block); HAS_BLOCK (bool, true) is
 *             for bind rules, which cannot ask whether a key exists
 *         },
 *         "comment": "free text"              optional, ignored
 *       }
 *     ]
 *   }
 *
 * Property keys: "fuchsia.BIND_<X>" names a deprecated integer key of
 * include/dfnet/bind_keys.h (published as that integer key; type "int" only); any other
 * key (up to 127 characters, no spaces) is a string key. Types: "int" (uint32, written as
 * for vid), "string" (up to 255 bytes), "bool", "enum" (a fully qualified value name,
 * "<library>.<KEY>.<VALUE>"). One key, one value: a key given twice, or one the
 * enumerator publishes itself, is an error. Resource paths are absolute.
 *
 * Every node gets fuchsia.BIND_PROTOCOL = fuchsia.platform.BIND_PROTOCOL.DEVICE,
 * fuchsia.BIND_PLATFORM_DEV_VID/PID/DID and "dfnet.platform.NAME" = the device's name.
 *
 * Errors: a file that cannot be read, is not JSON, or has no "devices" array fails start.
 * Anything wrong inside a device (an unknown key included: a typo must not publish a
 * wrong node) skips that device with one error "<file>: <JSON path>: <problem>", e.g.
 * "board.json: $.devices[2].resources.gpio.line: expected an unsigned 32-bit integer,
 * got a string"; the other devices are published. An unknown top-level key is reported
 * the same way and otherwise ignored.
 *
 * This file: the enumerator (reading and checking the file, publishing its devices, the
 * problems found). One device into its node is board_device.c's.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "host/enum/board.h"
#include "host/enum/enum.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define BOARD_LOG "enum.board"
#define BOARD_FILE_MAX (1024 * 1024)

/* Record and log one problem: "<file>: <json path>: <problem>". */
__attribute__((format(printf, 3, 4))) void board__error(board_priv_t *priv, const char *json_path,
                                                        const char *fmt, ...) {
  char problem[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(problem, sizeof(problem), fmt, ap);
  va_end(ap);
  size_t len = strlen(priv->file) + strlen(json_path) + strlen(problem) + 5;
  char *line = malloc(len);
  if (line == NULL) {
    DFNET_LOGE(BOARD_LOG, priv->file, "%s: %s", json_path, problem);
    return;
  }
  snprintf(line, len, "%s: %s: %s", priv->file, json_path, problem);
  DFNET_LOGE(BOARD_LOG, NULL, "%s", line);
  char **grown =
      dfnet_array_grow(priv->errors, priv->error_count, &priv->error_cap, sizeof *grown, 8);
  if (grown == NULL) {
    free(line);
    return;
  }
  priv->errors = grown;
  priv->errors[priv->error_count++] = line;
}

static void clear_errors(board_priv_t *priv) {
  for (size_t i = 0; i < priv->error_count; i++) {
    free(priv->errors[i]);
  }
  free(priv->errors);
  priv->errors = NULL;
  priv->error_count = priv->error_cap = 0;
}

/* ---- the file ---------------------------------------------------------------------- */

/* Read the whole file (at most BOARD_FILE_MAX bytes) into a NUL-terminated buffer
 * (lib/fileio.h: the bounded read and the errno map). The caller frees *out. */
static dfnet_status_t read_file(board_priv_t *priv, char **out) {
  dfnet_file_t file;
  char why[256];
  dfnet_status_t status = dfnet_file_read(priv->file, BOARD_FILE_MAX, 0, &file, why, sizeof why);
  if (status == DFNET_STATUS_OUT_OF_RANGE) {
    board__error(priv, "$", "larger than %d bytes", BOARD_FILE_MAX);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  if (status != DFNET_STATUS_OK) {
    /* not a regular file (a directory): it opened but cannot be read as a board file */
    board__error(priv, "$", "%s: %s",
                 status == DFNET_STATUS_INVALID_ARGUMENT ? "cannot read" : "cannot open", why);
    return status;
  }
  if (strlen((const char *)file.data) != file.size) {
    board__error(priv, "$", "holds a NUL byte: not a JSON text");
    dfnet_file_free(&file);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out = (char *)file.data; /* malloc'd, NUL-terminated: the caller frees it */
  return DFNET_STATUS_OK;
}

/* Parse the text; on a syntax error report line and column of where it stopped. */
static cJSON *parse_json(board_priv_t *priv, const char *text) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
  if (root != NULL) {
    return root;
  }
  if (end == NULL || end < text) {
    end = text;
  }
  unsigned line = 1, col = 1;
  for (const char *c = text; c < end && *c != '\0'; c++) {
    if (*c == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  char where[64];
  snprintf(where, sizeof(where), "$ (line %u, column %u)", line, col);
  int near = 0; /* the rest of the line, at most 20 bytes */
  while (near < 20 && end[near] != '\0' && end[near] != '\n' && end[near] != '\r') {
    near++;
  }
  if (*end == '\0') {
    board__error(priv, where, "not valid JSON: the text ends too early");
  } else {
    board__error(priv, where, "not valid JSON: syntax error near \"%.*s\"", near, end);
  }
  return NULL;
}

/* Was `name` already used by an earlier, published device? */
static bool name_seen(char **names, size_t count, const char *name) {
  for (size_t i = 0; i < count; i++) {
    if (strcmp(names[i], name) == 0) {
      return true;
    }
  }
  return false;
}

static void publish_devices(dfnet_enum_t *e, board_priv_t *priv, const cJSON *devices) {
  size_t total = (size_t)cJSON_GetArraySize(devices);
  char **names = calloc(total ? total : 1, sizeof(*names));
  size_t published = 0, index = 0;
  if (names == NULL) {
    board__error(priv, "$.devices", "out of memory");
    return;
  }
  const cJSON *dev;
  cJSON_ArrayForEach(dev, devices) {
    size_t i = index++;
    if (!board__parse_device(priv, dev, i)) {
      continue;
    }
    const char *name = priv->node.name;
    if (name_seen(names, published, name)) {
      char path[BOARD_PATH_MAX];
      snprintf(path, sizeof(path), "$.devices[%zu].name", i);
      board__error(priv, path, "duplicate device name \"%s\"", name);
      continue;
    }
    names[published++] = (char *)cJSON_GetObjectItemCaseSensitive(dev, "name")->valuestring;
    enum__node_added(e, &priv->node);
  }
  DFNET_LOGI(BOARD_LOG, priv->file, "%zu of %zu platform devices published", published, total);
  free(names);
}

/* The "devices" array of the file's root; NULL, reported, when the root is not an object
 * with one. Unknown top-level keys are reported and otherwise ignored. */
static const cJSON *root_devices(board_priv_t *priv, const cJSON *root) {
  if (!cJSON_IsObject(root)) {
    board__error(priv, "$", "expected an object {\"devices\": [...]}, got %s",
                 board__json_type_name(root));
    return NULL;
  }
  const cJSON *devices = cJSON_GetObjectItemCaseSensitive(root, "devices");
  if (devices == NULL) {
    board__error(priv, "$", "missing \"devices\" (an array of devices)");
    return NULL;
  }
  if (!cJSON_IsArray(devices)) {
    board__error(priv, "$.devices", "expected an array, got %s", board__json_type_name(devices));
    return NULL;
  }
  const cJSON *field;
  cJSON_ArrayForEach(field, root) {
    char path[BOARD_PATH_MAX];
    snprintf(path, sizeof(path), "$.%.100s", field->string);
    if (strcmp(field->string, "board") == 0) {
      if (!cJSON_IsString(field)) {
        board__error(priv, path, "expected a string, got %s; ignored",
                     board__json_type_name(field));
      }
    } else if (strcmp(field->string, "devices") != 0) {
      board__error(priv, path, "unknown key (board, devices); ignored");
    }
  }
  return devices;
}

static dfnet_status_t board_start(dfnet_enum_t *e) {
  board_priv_t *priv = enum__priv(e);
  clear_errors(priv);
  char *text = NULL;
  dfnet_status_t status = read_file(priv, &text);
  if (status != DFNET_STATUS_OK) {
    return status;
  }
  cJSON *root = parse_json(priv, text);
  const cJSON *devices = root != NULL ? root_devices(priv, root) : NULL;
  if (devices == NULL) {
    status = DFNET_STATUS_INVALID_ARGUMENT;
  } else {
    status = enum__publish_bus(e, "platform");
  }
  if (status == DFNET_STATUS_OK) {
    publish_devices(e, priv, devices);
  }
  cJSON_Delete(root);
  free(text);
  return status;
}

static void board_destroy(dfnet_enum_t *e) {
  board_priv_t *priv = enum__priv(e);
  clear_errors(priv);
  free(priv->file);
}

static const dfnet_enum_ops_t board_ops = {
    .name = "board",
    .priv_size = sizeof(board_priv_t),
    .start = board_start,
    .stop = NULL,
    .destroy = board_destroy,
};

dfnet_status_t dfnet_enum_board_new(const char *path, dfnet_enum_t **out) {
  if (path == NULL || path[0] == '\0') {
    DFNET_LOGE(BOARD_LOG, NULL, "board file: no path given");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_enum_t *e = enum__new(&board_ops);
  if (e == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  board_priv_t *priv = enum__priv(e);
  priv->file = strdup(path);
  if (priv->file == NULL) {
    DFNET_LOGE(BOARD_LOG, NULL, "out of memory");
    dfnet_enum_destroy(e);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *out = e;
  return DFNET_STATUS_OK;
}

size_t dfnet_enum_board_error_count(const dfnet_enum_t *e) {
  if (e == NULL || strcmp(dfnet_enum_name(e), "board") != 0) {
    return 0;
  }
  const board_priv_t *priv = enum__priv_const(e);
  return priv->error_count;
}

const char *dfnet_enum_board_error(const dfnet_enum_t *e, size_t index) {
  if (index >= dfnet_enum_board_error_count(e)) {
    return NULL;
  }
  const board_priv_t *priv = enum__priv_const(e);
  return priv->errors[index];
}
