/* A growable array's one growth step, for the arrays the daemons keep as `T *items; size_t
 * count, cap;` (the manager's index, topology and token book, the host's enumerators). */
#ifndef DFNET_LIB_ARRAY_H
#define DFNET_LIB_ARRAY_H

#include <stddef.h>

/* Room for one more element in `items` (count used of *cap, each `size` bytes): returns items
 * itself while count < *cap; else the array realloc'd to twice *cap (to `first` when *cap is
 * 0), *cap updated. NULL when out of memory or the size would overflow: items is then still
 * valid and *cap unchanged. Any thread (no shared state); the caller owns the array and
 * stores the pointer returned. */
void *dfnet_array_grow(void *items, size_t count, size_t *cap, size_t size, size_t first);

#endif
