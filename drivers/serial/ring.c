/* serial: the byte rings (serial_ring_t, serial.h): the Read buffer and each Subscribe
 * stream's, SERIAL_BUF_SIZE bytes each, the oldest bytes dropped (and counted) to make room.
 * Not thread-safe: serial.c calls them under its mutex. */
#include <stddef.h>
#include <stdint.h>

#include "drivers/serial/serial.h"

/* Append data; returns how many old bytes were dropped to make room. */
size_t serial_ring_push(serial_ring_t *r, const uint8_t *data, size_t n) {
  size_t dropped = 0;
  if (n > SERIAL_BUF_SIZE) {
    dropped += n - SERIAL_BUF_SIZE;
    data += n - SERIAL_BUF_SIZE;
    n = SERIAL_BUF_SIZE;
  }
  if (r->len + n > SERIAL_BUF_SIZE) {
    size_t drop = r->len + n - SERIAL_BUF_SIZE;
    r->head = (r->head + drop) % SERIAL_BUF_SIZE;
    r->len -= drop;
    dropped += drop;
  }
  for (size_t i = 0; i < n; i++)
    r->buf[(r->head + r->len + i) % SERIAL_BUF_SIZE] = data[i];
  r->len += n;
  return dropped;
}

/* Take up to max bytes into out; returns how many. */
size_t serial_ring_pop(serial_ring_t *r, uint8_t *out, size_t max) {
  size_t n = r->len < max ? r->len : max;
  for (size_t i = 0; i < n; i++)
    out[i] = r->buf[(r->head + i) % SERIAL_BUF_SIZE];
  r->head = (r->head + n) % SERIAL_BUF_SIZE;
  r->len -= n;
  return n;
}
