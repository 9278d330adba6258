/* An arena: blocks of at least block_min bytes, bump-allocated, freed at once (arena.h). */
#include "lib/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

struct dfnet_arena_block {
  dfnet_arena_block_t *next; /* utlist LL: a->head, newest first */
  size_t used, cap;
  max_align_t data[]; /* cap bytes */
};

void *dfnet_arena_alloc(dfnet_arena_t *a, size_t size) {
  const size_t align = _Alignof(max_align_t);
  if (size > SIZE_MAX - align - sizeof(dfnet_arena_block_t))
    return NULL;
  size = size == 0 ? align : (size + align - 1) / align * align;
  dfnet_arena_block_t *b = a->head;
  if (b == NULL || b->cap - b->used < size) {
    size_t min = a->block_min != 0 ? a->block_min : DFNET_ARENA_BLOCK_DEFAULT;
    size_t cap = size > min ? size : min;
    b = malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->cap = cap;
    b->used = 0;
    LL_PREPEND(a->head, b);
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

void *dfnet_arena_memdup(dfnet_arena_t *a, const void *p, size_t n) {
  void *q = dfnet_arena_alloc(a, n);
  if (q != NULL && n > 0)
    memcpy(q, p, n);
  return q;
}

char *dfnet_arena_strndup(dfnet_arena_t *a, const char *s, size_t n) {
  if (n == SIZE_MAX)
    return NULL;
  char *p = dfnet_arena_alloc(a, n + 1); /* zeroed: p[n] is the NUL */
  if (p != NULL && n > 0)
    memcpy(p, s, n);
  return p;
}

void dfnet_arena_free(dfnet_arena_t *a) {
  dfnet_arena_block_t *b, *next;
  LL_FOREACH_SAFE(a->head, b, next) {
    free(b);
  }
  a->head = NULL;
}
