/* dfnet-manager: the offers a node received (DFv2 offers, docs/spec/dfv2.md "Nodes",
 * "Composites"), as its driver (DriverStart.offered) and a verbose listing
 * (NodeInfo.offered) see them, and the check that a driver calls only what was offered
 * to its node.
 *
 * A node's own offers are what its parent's driver offered it when it added the node
 * (NodeAdd.offers): each is {service, "default", source = the parent's moniker}. A
 * composite node has none of its own; it gets every parent's, renamed: under the
 * parent's name in the composite (the composite bind rules' node name, or the spec
 * parent's index), and the primary parent's under "default" as well (DFv2 renaming). A
 * forwarded offer keeps its source, the node whose driver serves it: for a parent on
 * another host, a node of that host, which the composite's driver reaches through the
 * manager (handle_call.c).
 */
#include <string.h>

#include "manager/manager.h"

#define DEFAULT_INSTANCE "default"

/* One offer: false stops the walk. */
typedef bool (*offer_fn)(void *arg, const char *service, const char *instance,
                         const topology_node_t *source);

/* x's own offers under `instance`; the primary parent's under "default" too. */
static bool each_own(const topology_node_t *x, const char *instance, bool also_default, offer_fn fn,
                     void *arg) {
  const topology_node_t *source = x->parent_count > 0 ? x->parents[0] : NULL;
  if (source == NULL)
    return true; /* a host's root: nobody offers it anything */
  for (uint8_t i = 0; i < x->offer_count; i++) {
    if (also_default && !fn(arg, x->offers[i], DEFAULT_INSTANCE, source))
      return false;
    if (!fn(arg, x->offers[i], instance, source))
      return false;
  }
  return true;
}

/* The parent of composite c that node x is, or NULL. */
static const mgr_composite_parent_t *composite_parent(const mgr_composite_t *c,
                                                      const topology_node_t *x) {
  for (size_t i = 0; i < c->parent_count; i++)
    if (c->parents[i].moniker != NULL && c->parents[i].node_id == x->id)
      return &c->parents[i];
  return NULL;
}

/* Every offer n received, in order (a composite: parent by parent). */
static void each_offer(mgr_t *m, const topology_node_t *n, offer_fn fn, void *arg) {
  if (!n->composite) {
    each_own(n, DEFAULT_INSTANCE, false, fn, arg);
    return;
  }
  const mgr_composite_t *c = binder__composite_get(m, n->composite_id);
  for (uint8_t k = 0; c != NULL && k < n->parent_count; k++) {
    const topology_node_t *x = n->parents[k];
    const mgr_composite_parent_t *p = x != NULL ? composite_parent(c, x) : NULL;
    if (p != NULL && !each_own(x, p->name, p->primary, fn, arg))
      return;
  }
}

/* ---- listing ------------------------------------------------------------------------ */

typedef struct list_ctx {
  dfnet_v1_Offer *out;
  size_t max, count;
} list_ctx_t;

static bool list_one(void *arg, const char *service, const char *instance,
                     const topology_node_t *source) {
  list_ctx_t *l = arg;
  if (l->count < l->max) {
    dfnet_v1_Offer *o = &l->out[l->count];
    topology__fmt(o->service, sizeof o->service, "%s", service);
    topology__fmt(o->instance, sizeof o->instance, "%s", instance);
    topology__fmt(o->source, sizeof o->source, "%s", source->moniker);
  }
  l->count++;
  return true;
}

/* A node's offer names, parents' names and monikers fit an Offer. */
_Static_assert(pb_membersize(dfnet_v1_Offer, service) >= pb_membersize(dfnet_v1_NodeAdd, offers[0]),
               "service");
_Static_assert(pb_membersize(dfnet_v1_Offer, instance) >= TOPOLOGY_NAME_MAX + 1, "instance");
_Static_assert(pb_membersize(dfnet_v1_Offer, source) >= TOPOLOGY_MONIKER_MAX + 1, "source");

size_t offers__list(mgr_t *m, const topology_node_t *n, dfnet_v1_Offer *out, size_t max) {
  list_ctx_t l = {.out = out, .max = max};
  each_offer(m, n, list_one, &l);
  return l.count;
}

/* ---- calls from drivers ------------------------------------------------------------- */

typedef struct permit_ctx {
  const char *target;
  const char *service; /* the method's service, not NUL-terminated */
  size_t service_len;
  bool found;
} permit_ctx_t;

static bool permit_one(void *arg, const char *service, const char *instance,
                       const topology_node_t *source) {
  (void)instance;
  permit_ctx_t *p = arg;
  p->found = strcmp(source->moniker, p->target) == 0 && strlen(service) == p->service_len &&
             memcmp(service, p->service, p->service_len) == 0;
  return !p->found;
}

bool offers__permit(mgr_t *m, const topology_node_t *caller, const char *target, const char *method,
                    char *why, size_t why_size) {
  /* "/<package>.<Service>/<Method>": the service is between the first and the last '/' */
  const char *last = strrchr(method, '/');
  if (method[0] != '/' || last == NULL || last == method) {
    topology__fmt(why, why_size, "method '%s' is not /<service>/<method>", method);
    return false;
  }
  permit_ctx_t p = {
      .target = target, .service = method + 1, .service_len = (size_t)(last - method - 1)};
  each_offer(m, caller, permit_one, &p);
  if (!p.found)
    topology__fmt(why, why_size, "%s was offered no %.*s by %s", caller->moniker,
                  (int)p.service_len, p.service, target);
  return p.found;
}
