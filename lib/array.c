/* A growable array's growth step (lib/array.h). */
#include "lib/array.h"

#include <stdint.h>
#include <stdlib.h>

void *dfnet_array_reserve(void *items, size_t need, size_t *cap, size_t size, size_t first) {
  if (need <= *cap)
    return items;
  size_t want = *cap > 0 ? *cap : (first > 0 ? first : 1);
  while (want < need) {
    if (want > SIZE_MAX / 2)
      return NULL;
    want *= 2;
  }
  if (size == 0 || want > SIZE_MAX / size)
    return NULL;
  void *p = realloc(items, want * size);
  if (p != NULL)
    *cap = want;
  return p;
}
