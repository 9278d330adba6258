/* An arena: allocations that live and die together, freed at once — a list result of
 * libdfnet-client (clients/lib/arena.c) and one run of the bind compiler (bind/util.c).
 * Blocks of at least block_min bytes (0: DFNET_ARENA_BLOCK_DEFAULT) are malloc'd as needed;
 * every allocation is zeroed and aligned for any type (max_align_t). Not thread-safe: one
 * thread fills an arena at a time; the arena owns every block until dfnet_arena_free. */
#ifndef DFNET_LIB_ARENA_H
#define DFNET_LIB_ARENA_H

#include <stddef.h>

#define DFNET_ARENA_BLOCK_DEFAULT 16384u /* bytes */

typedef struct dfnet_arena_block dfnet_arena_block_t;

typedef struct dfnet_arena {
  dfnet_arena_block_t *head; /* NULL: empty */
  size_t block_min;          /* bytes; 0: DFNET_ARENA_BLOCK_DEFAULT */
} dfnet_arena_t;

/* size bytes (0 counts as 1), zeroed, valid until dfnet_arena_free. NULL when out of memory
 * (the arena is unchanged). */
void *dfnet_arena_alloc(dfnet_arena_t *a, size_t size);

/* A copy of n bytes of p (p may be NULL when n is 0). NULL when out of memory. */
void *dfnet_arena_memdup(dfnet_arena_t *a, const void *p, size_t n);

/* The first n bytes of s as a NUL-terminated string. NULL when out of memory. */
char *dfnet_arena_strndup(dfnet_arena_t *a, const char *s, size_t n);

/* Free every block: the arena is empty again (block_min kept) and all it gave is invalid.
 * Idempotent. */
void dfnet_arena_free(dfnet_arena_t *a);

#endif /* DFNET_LIB_ARENA_H */
