/* libdfnet-client: the strings a list result copies into its arena (lib/arena.h; list.c,
 * lease.c, control.c), and the growing array of its items. Not thread-safe: one query
 * fills a result on the client thread, then the caller owns it. */
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "clients/lib/client_internal.h"

const char *client__arena_strdup(dfnet_arena_t *a, const char *s) {
  if (s == NULL)
    s = "";
  return dfnet_arena_strndup(a, s, strlen(s));
}

const char **client__arena_strv(dfnet_arena_t *a, const char *first, size_t stride, size_t n,
                                bool *ok) {
  if (n == 0)
    return NULL;
  const char **v = dfnet_arena_alloc(a, n * sizeof *v);
  if (v == NULL) {
    *ok = false;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if ((v[i] = client__arena_strdup(a, first + i * stride)) == NULL)
      *ok = false;
  return v;
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
