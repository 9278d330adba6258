/* serial_history: everything a port received since the driver started, as far as a ring of
 * a fixed size holds it (the oldest bytes go first), with the time the bytes arrived —
 * what Serial.Log replays (proto/dfnet/hw/serial.proto; log.c).
 *
 * Bytes are named by their offset in the port's whole output: the first byte received is
 * offset 0, and offsets only grow, so a reader keeps its place across its own reconnects
 * and knows what the ring dropped (start > its offset). Times are kept as marks (offset,
 * Unix ms): one per delivery, or per HISTORY_MARK_MS of a steady flow, in a ring of their
 * own; marks of dropped bytes go with them.
 *
 * Not thread-safe: serial.c calls every function under its mutex.
 */
#ifndef DFNET_DRIVERS_SERIAL_HISTORY_H
#define DFNET_DRIVERS_SERIAL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

typedef struct serial_mark {
  uint64_t offset;
  uint64_t unix_ms;
} serial_mark_t;

typedef struct serial_history {
  uint8_t *buf; /* cap bytes: byte `o` (start <= o < end) is buf[o % cap] */
  size_t cap;
  uint64_t start, end;  /* the bytes kept: [start, end) */
  serial_mark_t *marks; /* mark_cap marks, the oldest at mark_head */
  size_t mark_cap, mark_head, mark_len;
} serial_history_t;

/* Make a history of cap bytes (1 KiB .. 256 MiB). OK; INVALID_ARGUMENT (cap out of range);
 * RESOURCE_EXHAUSTED (out of memory). */
dfnet_status_t serial_history_init(serial_history_t *h, size_t cap);
void serial_history_free(serial_history_t *h);

/* Append n bytes that arrived at unix_ms. */
void serial_history_append(serial_history_t *h, const uint8_t *data, size_t n, uint64_t unix_ms);

/* The offset of the first byte that arrived at or after unix_ms (h->end when none). */
uint64_t serial_history_since(const serial_history_t *h, uint64_t unix_ms);

/* The offset where the last `lines` lines begin: after the lines-th '\n' counted back from
 * the end, not counting a '\n' that is the very last byte (the line being written is one
 * of them); h->start when the ring holds fewer. 0 lines: h->end. */
uint64_t serial_history_last_lines(const serial_history_t *h, uint32_t lines);

/* Copy up to max bytes from offset `from` (start <= from <= end) into out; the time the
 * first of them arrived into *unix_ms. Returns how many. */
size_t serial_history_copy(const serial_history_t *h, uint64_t from, uint8_t *out, size_t max,
                           uint64_t *unix_ms);

#endif /* DFNET_DRIVERS_SERIAL_HISTORY_H */
