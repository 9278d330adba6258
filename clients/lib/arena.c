/* libdfnet-client: the arena a list result lives in (list.c, lease.c), and the growing
 * array of its items. Blocks of at least 16 KiB,
 * allocations zeroed and aligned for any type, all freed at once. Not thread-safe: one
 * query fills it on the client thread, then the caller owns it. */
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "clients/lib/client_internal.h"

#define BLOCK_MIN 16384u

void *client__arena_alloc(client_arena_t *a, size_t size) {
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  if (size == 0)
    size = sizeof(max_align_t);
  client_arena_block_t *b = a->head;
  if (b == NULL || b->cap - b->used < size) {
    size_t cap = size > BLOCK_MIN ? size : BLOCK_MIN;
    b = malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

const char *client__arena_strdup(client_arena_t *a, const char *s) {
  if (s == NULL)
    s = "";
  size_t n = strlen(s);
  char *p = client__arena_alloc(a, n + 1);
  if (p != NULL)
    memcpy(p, s, n + 1);
  return p;
}

const char **client__arena_strv(client_arena_t *a, const char *first, size_t stride, size_t n,
                                bool *ok) {
  if (n == 0)
    return NULL;
  const char **v = client__arena_alloc(a, n * sizeof *v);
  if (v == NULL) {
    *ok = false;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if ((v[i] = client__arena_strdup(a, first + i * stride)) == NULL)
      *ok = false;
  return v;
}

const uint8_t *client__arena_memdup(client_arena_t *a, const uint8_t *p, size_t n) {
  uint8_t *q = client__arena_alloc(a, n);
  if (q != NULL && n > 0)
    memcpy(q, p, n);
  return q;
}

void client__arena_free(client_arena_t *a) {
  client_arena_block_t *b = a->head;
  while (b != NULL) {
    client_arena_block_t *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
}

void *client__items_push(void **items, size_t *count, size_t *cap, size_t size) {
  void *p = dfnet_array_grow(*items, *count, cap, size, 16);
  if (p == NULL)
    return NULL;
  *items = p;
  void *item = (char *)*items + *count * size;
  memset(item, 0, size);
  (*count)++;
  return item;
}

dfnet_status_t client__keep_item(void *ctx, const dfnet_envelope_t *env) {
  client_kept_t *k = ctx;
  if (env->pb.which_msg != k->tag)
    return DFNET_STATUS_INTERNAL;
  void *item = client__items_push(&k->items, &k->count, &k->cap, k->item_size);
  if (item == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  memcpy(item, &env->pb.msg, k->item_size); /* every member of the union starts there */
  return DFNET_STATUS_OK;
}
