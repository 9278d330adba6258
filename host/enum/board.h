/* The board enumerator's state and what its two files share (board.c: the enumerator, the
 * file and its problems; board_device.c: one device of the file into its node). The file
 * format is written at the top of board.c. Private to host/enum.
 */
#ifndef DFNET_HOST_ENUM_BOARD_H
#define DFNET_HOST_ENUM_BOARD_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "host/enum/enum.h"

#define BOARD_PATH_MAX 160 /* JSON path text, e.g. "$.devices[12].properties[3].value" */

typedef struct board_priv {
  char *file;
  char **errors;
  size_t error_count, error_cap;
  dfnet_v1_NodeAdd node; /* scratch (large) */
} board_priv_t;

/* Record and log (at ERROR) one problem of priv's file: "<file>: <json_path>: <problem>",
 * kept for dfnet_enum_board_error (not kept without memory: logged only). */
void board__error(board_priv_t *priv, const char *json_path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What item is, for messages: "a string", "a number", "a boolean", "null", "an array",
 * "an object" or "an invalid value". Static string. */
const char *board__json_type_name(const cJSON *item);

/* Build the node of devices[index] into priv->node; reports (board__error) and returns false
 * when the device is malformed. */
bool board__parse_device(board_priv_t *priv, const cJSON *dev, size_t index);

#endif /* DFNET_HOST_ENUM_BOARD_H */
