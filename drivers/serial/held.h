/* serial: the encoded item a stream of the Serial service (Subscribe's Data, serial.c; Log's
 * and Attach's LogData, log.c) holds while its caller's credit window has no room, and the
 * loop that sends a stream's items while the window has room (dfnet_call_send), keeping the
 * one refused for the next flush.
 *
 * Threads: a stream's held item and its flushes are the dispatcher's.
 */
#ifndef DFNET_DRIVERS_SERIAL_HELD_H
#define DFNET_DRIVERS_SERIAL_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pb.h>

#include "dfnet/driver.h"

/* An encoded item not sent yet. Zeroed: nothing held. */
typedef struct serial_held {
  uint8_t *buf; /* malloc'd (owned); NULL: nothing held */
  size_t len;   /* bytes of buf that are the item (0: an empty message) */
} serial_held_t;

/* The items a kind of stream sends. */
typedef struct serial_item_kind {
  const pb_msgdesc_t *fields; /* their message */
  size_t size;                /* sizeof that message's struct */
  /* Fill the zeroed message *item with the stream's next item (ctx and stream: as given to
   * serial_held_send). Returns false when there is nothing to send now. */
  bool (*fill)(void *ctx, void *stream, void *item);
} serial_item_kind_t;

/* Drop what *h holds (nothing: a no-op). */
void serial_held_clear(serial_held_t *h);

/* Send on `call` what *h holds, then each next item of the stream (kind->fill, encoded as
 * kind->fields), while the caller's window has room. Returns true once there is nothing
 * more to send now (an item that cannot be encoded, or no memory for one, counts as
 * nothing); false when it stopped before: the window is full (*window_full set; *h keeps the
 * item for the next flush) or the call has ended (its cancel callback ends the stream).
 * Dispatcher. */
bool serial_held_send(serial_held_t *h, dfnet_call_t *call, const serial_item_kind_t *kind,
                      void *ctx, void *stream, bool *window_full);

#endif /* DFNET_DRIVERS_SERIAL_HELD_H */
