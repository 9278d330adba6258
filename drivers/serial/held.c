/* serial: a stream's item held for its caller's window, and sending a stream's items
 * (held.h). */
#include "drivers/serial/held.h"

#include <stdlib.h>
#include <string.h>

#include <pb_encode.h>

void serial_held_clear(serial_held_t *h) {
  free(h->buf);
  h->buf = NULL;
  h->len = 0;
}

/* Encode *item as `fields` into *h, which holds nothing. False, h still holding nothing, when
 * it cannot be encoded or there is no memory for it. */
static bool held_encode(serial_held_t *h, const pb_msgdesc_t *fields, const void *item) {
  size_t size = 0;
  if (!pb_get_encoded_size(&size, fields, item) || (h->buf = malloc(size > 0 ? size : 1)) == NULL)
    return false;
  pb_ostream_t out = pb_ostream_from_buffer(h->buf, size);
  if (!pb_encode(&out, fields, item)) {
    serial_held_clear(h);
    return false;
  }
  h->len = out.bytes_written;
  return true;
}

/* Put the stream's next item into *h (empty). False when there is none now. */
static bool held_take(serial_held_t *h, const serial_item_kind_t *kind, void *ctx, void *stream) {
  void *item = calloc(1, kind->size);
  bool held = item != NULL && kind->fill(ctx, stream, item) && held_encode(h, kind->fields, item);
  free(item);
  return held;
}

bool serial_held_send(serial_held_t *h, dfnet_call_t *call, const serial_item_kind_t *kind,
                      void *ctx, void *stream, bool *window_full) {
  while (h->buf != NULL || held_take(h, kind, ctx, stream)) {
    dfnet_status_t rc = dfnet_call_send(call, h->buf, h->len);
    if (rc == DFNET_STATUS_RESOURCE_EXHAUSTED) {
      *window_full = true;
      return false;
    }
    serial_held_clear(h);
    if (rc != DFNET_STATUS_OK)
      return false; /* the call ended (cancelled, deadline, stopping) */
  }
  return true;
}
