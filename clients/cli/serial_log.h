/* dfnet CLI: what `serial log` and `serial console` share — one LogData item of
 * Serial.Log / Serial.Attach (proto/dfnet/hw/serial.proto), decoded. */
#ifndef DFNET_CLIENTS_CLI_SERIAL_LOG_H
#define DFNET_CLIENTS_CLI_SERIAL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_log_item {
  const uint8_t *data; /* into the message */
  size_t len;
  uint64_t offset;  /* of data's first byte in the port's output */
  uint64_t unix_ms; /* when it arrived, about; 0: not given */
  uint64_t dropped; /* bytes skipped just before it */
} cli_log_item_t;

/* Decode a LogData of len bytes into *out (pointing into msg). False when malformed. */
bool cli__serial_log_item(const uint8_t *msg, size_t len, cli_log_item_t *out);

#endif /* DFNET_CLIENTS_CLI_SERIAL_LOG_H */
