/* dfnet-manager: class paths, stable per node moniker (class_paths.h). */
#include "manager/class_paths.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

/* A moniker's number in one class. */
typedef struct reservation {
  UT_hash_handle hh; /* class_t.by_moniker */
  char *moniker;     /* owned */
  uint32_t number;
  uint64_t seq; /* when it was made or last used: the oldest is forgotten first */
} reservation_t;

typedef struct class_entry {
  UT_hash_handle hh; /* class_paths.classes */
  char *name;        /* owned */
  reservation_t *by_moniker;
  size_t reserved;
  /* Indexed by number, cap entries each: the live node holding it and the reservation
   * that claims it (either may be NULL). */
  struct topology_node **holder;
  reservation_t **claim;
  uint32_t cap;
} class_t;

struct class_paths {
  class_t *classes;
  uint64_t seq;
};

static class_t *class_find(const class_paths_t *cp, const char *name, size_t len) {
  class_t *c = NULL;
  if (cp != NULL)
    HASH_FIND(hh, cp->classes, name, len, c);
  return c;
}

static class_t *class_get(class_paths_t *cp, const char *name) {
  class_t *c = class_find(cp, name, strlen(name));
  if (c != NULL)
    return c;
  c = calloc(1, sizeof *c);
  if (c == NULL || (c->name = strdup(name)) == NULL) {
    free(c);
    return NULL;
  }
  HASH_ADD_KEYPTR(hh, cp->classes, c->name, strlen(c->name), c);
  return c;
}

/* Make numbers 0..number valid indexes of the class's arrays. */
static bool class_grow(class_t *c, uint32_t number) {
  if (number < c->cap)
    return true;
  uint32_t cap = c->cap ? c->cap : 8;
  while (cap <= number)
    cap *= 2;
  struct topology_node **holder = realloc(c->holder, cap * sizeof *holder);
  if (holder == NULL)
    return false;
  c->holder = holder;
  reservation_t **claim = realloc(c->claim, cap * sizeof *claim);
  if (claim == NULL)
    return false;
  c->claim = claim;
  memset(c->holder + c->cap, 0, (cap - c->cap) * sizeof *holder);
  memset(c->claim + c->cap, 0, (cap - c->cap) * sizeof *claim);
  c->cap = cap;
  return true;
}

static void reservation_drop(class_t *c, reservation_t *r) {
  c->claim[r->number] = NULL;
  HASH_DEL(c->by_moniker, r);
  c->reserved--;
  free(r->moniker);
  free(r);
}

/* Past the bound: forget the oldest reservation whose number no live node holds. */
static void reservations_trim(class_t *c) {
  if (c->reserved < CLASS_PATHS_RESERVED_MAX)
    return;
  reservation_t *oldest = NULL, *r, *tmp;
  HASH_ITER(hh, c->by_moniker, r, tmp) {
    if (c->holder[r->number] == NULL && (oldest == NULL || r->seq < oldest->seq))
      oldest = r;
  }
  if (oldest != NULL)
    reservation_drop(c, oldest);
}

/* The lowest number neither held nor claimed; CLASS_PATHS_NUMBER_MAX + 1 when none. */
static uint32_t lowest_free(const class_t *c) {
  uint32_t n = 0;
  while (n < c->cap && (c->holder[n] != NULL || c->claim[n] != NULL))
    n++;
  return n;
}

dfnet_status_t class_paths__assign(class_paths_t **cp, const char *class_name, const char *moniker,
                                   struct topology_node *node, uint32_t *number) {
  if (*cp == NULL && (*cp = calloc(1, sizeof **cp)) == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  class_t *c = class_get(*cp, class_name);
  if (c == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  reservation_t *r = NULL;
  HASH_FIND_STR(c->by_moniker, moniker, r);
  if (r != NULL) {
    if (c->holder[r->number] != NULL && c->holder[r->number] != node)
      return DFNET_STATUS_ALREADY_EXISTS;
    r->seq = ++(*cp)->seq;
    c->holder[r->number] = node;
    *number = r->number;
    return DFNET_STATUS_OK;
  }
  reservations_trim(c);
  uint32_t n = lowest_free(c);
  if (n > CLASS_PATHS_NUMBER_MAX || !class_grow(c, n))
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  r = calloc(1, sizeof *r);
  if (r == NULL || (r->moniker = strdup(moniker)) == NULL) {
    free(r);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  r->number = n;
  r->seq = ++(*cp)->seq;
  HASH_ADD_KEYPTR(hh, c->by_moniker, r->moniker, strlen(r->moniker), r);
  c->reserved++;
  c->claim[n] = r;
  c->holder[n] = node;
  *number = n;
  return DFNET_STATUS_OK;
}

void class_paths__release(class_paths_t *cp, const char *class_name, uint32_t number) {
  class_t *c = class_find(cp, class_name, strlen(class_name));
  if (c != NULL && number < c->cap)
    c->holder[number] = NULL;
}

struct topology_node *class_paths__find(const class_paths_t *cp, const char *class_name,
                                        size_t class_len, uint32_t number) {
  const class_t *c = class_find(cp, class_name, class_len);
  return c != NULL && number < c->cap ? c->holder[number] : NULL;
}

void class_paths__destroy(class_paths_t **cp) {
  if (*cp == NULL)
    return;
  class_t *c, *ctmp;
  HASH_ITER(hh, (*cp)->classes, c, ctmp) {
    reservation_t *r, *rtmp;
    HASH_ITER(hh, c->by_moniker, r, rtmp) {
      HASH_DEL(c->by_moniker, r);
      free(r->moniker);
      free(r);
    }
    HASH_DEL((*cp)->classes, c);
    free(c->holder);
    free(c->claim);
    free(c->name);
    free(c);
  }
  free(*cp);
  *cp = NULL;
}
