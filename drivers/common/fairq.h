/* fairq: a queue of a driver's pending work served round-robin by caller, so that one
 * caller's backlog delays another's request by at most one request (docs/design.md
 * "Calls": fairness between callers). A driver that keeps calls waiting for its device
 * (virtio-rng's reads) queues them here, keyed by dfnet_call_caller(), instead of in one
 * FIFO: with caller A's ten reads queued, caller B's read is served right after the one of
 * A's in progress. Each caller's own requests keep their order.
 *
 * Items are the driver's own structs, linked through a `void *` field at next_offset
 * (intrusive: nothing is allocated per item). Lanes (callers with items waiting) are
 * allocated as needed; a caller's lane is freed when it empties. Callers' names are
 * copied (cut at 64 bytes). Not thread-safe: use it on the driver's dispatcher.
 */
#ifndef DFNET_DRIVERS_FAIRQ_H
#define DFNET_DRIVERS_FAIRQ_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fairq_lane fairq_lane_t;

typedef struct fairq {
  size_t next_offset;  /* offsetof(item type, its `void *next` field) */
  fairq_lane_t *lanes; /* a ring: `lanes` is the one served next */
  size_t count;        /* items queued */
} fairq_t;

/* An empty queue of items linked through the `void *` at next_offset. */
void fairq__init(fairq_t *q, size_t next_offset);

/* Queue item at the end of caller's lane (NULL or "" = an anonymous lane). Returns false
 * only when out of memory (the item is not queued). */
bool fairq__push(fairq_t *q, const char *caller, void *item) __attribute__((warn_unused_result));

/* The item served next (the head of the current lane), or NULL when empty. Peeking again
 * gives the same item until fairq__pop. */
void *fairq__peek(const fairq_t *q);

/* Remove the item fairq__peek gives and move on to the next caller's lane. Returns it, or
 * NULL when empty. */
void *fairq__pop(fairq_t *q);

/* Items queued. */
static inline size_t fairq__count(const fairq_t *q) { return q->count; }

/* Free the lanes (not the items: pop them first). */
void fairq__destroy(fairq_t *q);

#endif
