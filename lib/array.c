/* A growable array's one growth step (lib/array.h). */
#include "lib/array.h"

#include <stdint.h>
#include <stdlib.h>

void *dfnet_array_grow(void *items, size_t count, size_t *cap, size_t size, size_t first) {
  if (count < *cap)
    return items;
  size_t want = *cap > 0 ? *cap : first;
  if (*cap > 0 && want > SIZE_MAX / 2)
    return NULL;
  if (*cap > 0)
    want *= 2;
  if (size == 0 || want > SIZE_MAX / size)
    return NULL;
  void *p = realloc(items, want * size);
  if (p != NULL)
    *cap = want;
  return p;
}
