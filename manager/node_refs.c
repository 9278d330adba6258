/* dfnet-manager: node references (manager.h "node references"): the nodes a request keeps
 * across loop turns, by moniker + id, looked up again when it runs. */
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"

bool node_refs__add(mgr_node_refs_t *l, const topology_node_t *n) {
  mgr_node_ref_t *items = dfnet_array_grow(l->items, l->count, &l->cap, sizeof *items, 16);
  if (items == NULL)
    return false;
  l->items = items;
  if ((items[l->count].moniker = strdup(n->moniker)) == NULL)
    return false;
  items[l->count++].id = n->id;
  return true;
}

topology_node_t *node_refs__node(mgr_t *m, const mgr_node_ref_t *r) {
  topology_node_t *n = topology__find(&m->topo, r->moniker);
  return n != NULL && n->id == r->id ? n : NULL;
}

void node_refs__clear(mgr_node_refs_t *l) {
  for (size_t i = 0; i < l->count; i++)
    free(l->items[i].moniker);
  free(l->items);
  *l = (mgr_node_refs_t){0};
}
