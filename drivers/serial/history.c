/* serial_history: see history.h. */
#include "drivers/serial/history.h"

#include <stdlib.h>
#include <string.h>

#define HISTORY_CAP_MIN 1024u
#define HISTORY_CAP_MAX (256u * 1024 * 1024)
#define HISTORY_MARK_MS 100u /* a steady flow gets a mark this often */

dfnet_status_t serial_history_init(serial_history_t *h, size_t cap) {
  memset(h, 0, sizeof *h);
  if (cap < HISTORY_CAP_MIN || cap > HISTORY_CAP_MAX)
    return DFNET_STATUS_INVALID_ARGUMENT;
  h->cap = cap;
  /* A mark per 64 bytes at the most is plenty: one per delivery of a chatty console. */
  h->mark_cap = cap / 64 > 64 ? cap / 64 : 64;
  h->buf = malloc(cap);
  h->marks = malloc(h->mark_cap * sizeof *h->marks);
  if (h->buf == NULL || h->marks == NULL) {
    serial_history_free(h);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  return DFNET_STATUS_OK;
}

void serial_history_free(serial_history_t *h) {
  free(h->buf);
  free(h->marks);
  memset(h, 0, sizeof *h);
}

static const serial_mark_t *mark_at(const serial_history_t *h, size_t i) {
  return &h->marks[(h->mark_head + i) % h->mark_cap];
}

/* Drop the marks of bytes no longer kept, keeping the one the oldest byte falls under. */
static void marks_trim(serial_history_t *h) {
  while (h->mark_len > 1 && mark_at(h, 1)->offset <= h->start) {
    h->mark_head = (h->mark_head + 1) % h->mark_cap;
    h->mark_len--;
  }
}

void serial_history_append(serial_history_t *h, const uint8_t *data, size_t n, uint64_t unix_ms) {
  if (n == 0)
    return;
  if (n > h->cap) { /* only the last cap bytes can be kept */
    h->end += n - h->cap;
    data += n - h->cap;
    n = h->cap;
  }
  const serial_mark_t *last = h->mark_len > 0 ? mark_at(h, h->mark_len - 1) : NULL;
  if (last == NULL || unix_ms >= last->unix_ms + HISTORY_MARK_MS || last->offset < h->start ||
      last->unix_ms > unix_ms) {
    if (h->mark_len == h->mark_cap) { /* full: the oldest goes */
      h->mark_head = (h->mark_head + 1) % h->mark_cap;
      h->mark_len--;
    }
    h->marks[(h->mark_head + h->mark_len) % h->mark_cap] =
        (serial_mark_t){.offset = h->end, .unix_ms = unix_ms};
    h->mark_len++;
  }
  size_t at = (size_t)(h->end % h->cap);
  size_t first = n < h->cap - at ? n : h->cap - at;
  memcpy(h->buf + at, data, first);
  memcpy(h->buf, data + first, n - first);
  h->end += n;
  if (h->end - h->start > h->cap)
    h->start = h->end - h->cap;
  marks_trim(h);
}

uint64_t serial_history_since(const serial_history_t *h, uint64_t unix_ms) {
  /* the first mark at or after unix_ms (marks are in time order) */
  size_t lo = 0, hi = h->mark_len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (mark_at(h, mid)->unix_ms < unix_ms)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == h->mark_len)
    return h->end;
  uint64_t o = mark_at(h, lo)->offset;
  return o < h->start ? h->start : o;
}

uint64_t serial_history_last_lines(const serial_history_t *h, uint32_t lines) {
  if (lines == 0 || h->end == h->start)
    return h->end;
  uint64_t o = h->end - 1; /* a '\n' that ends the output ends the last line */
  uint32_t seen = 0;
  while (o > h->start) {
    if (h->buf[(o - 1) % h->cap] == '\n' && ++seen == lines)
      return o;
    o--;
  }
  return h->start;
}

size_t serial_history_copy(const serial_history_t *h, uint64_t from, uint8_t *out, size_t max,
                           uint64_t *unix_ms) {
  *unix_ms = 0;
  if (from < h->start || from >= h->end)
    return 0;
  size_t n = h->end - from < max ? (size_t)(h->end - from) : max;
  size_t at = (size_t)(from % h->cap);
  size_t first = n < h->cap - at ? n : h->cap - at;
  memcpy(out, h->buf + at, first);
  memcpy(out + first, h->buf, n - first);
  /* the last mark at or before `from` */
  size_t lo = 0, hi = h->mark_len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (mark_at(h, mid)->offset <= from)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo > 0)
    *unix_ms = mark_at(h, lo - 1)->unix_ms;
  return n;
}
