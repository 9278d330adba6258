/* A growable array's growth step, for the arrays and buffers kept as `T *items; size_t count,
 * cap;` (the manager's index, topology, token book and lists, the host's enumerators, the
 * metrics text, the bind compiler's bytecode). */
#ifndef DFNET_LIB_ARRAY_H
#define DFNET_LIB_ARRAY_H

#include <stddef.h>

/* Room for `need` elements of `size` bytes in `items` (*cap allocated): returns items itself
 * while need <= *cap; else the array realloc'd to *cap doubled (from `first` when *cap is 0)
 * until it holds need, *cap updated. NULL when out of memory or the size would overflow:
 * items is then still valid and *cap unchanged. Any thread (no shared state); the caller
 * owns the array and stores the pointer returned. */
void *dfnet_array_reserve(void *items, size_t need, size_t *cap, size_t size, size_t first);

/* Room for one more element after `count`: dfnet_array_reserve(items, count + 1, ...). */
static inline void *dfnet_array_grow(void *items, size_t count, size_t *cap, size_t size,
                                     size_t first) {
  return dfnet_array_reserve(items, count + 1, cap, size, first);
}

#endif
