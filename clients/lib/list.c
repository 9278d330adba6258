/* libdfnet-client: the lists of the manager's client API. One list request (client__list:
 * a table entry says what asks, what answers, how an item is copied) serves them all: the
 * six lists here — hosts, nodes, drivers, composites, bind traces, driver hosts
 * (proto/dfnet/v1/query.proto) — and lease.c's. Items are copied from the borrowed
 * envelope into the result's arena on the client thread. */
#include <stdlib.h>
#include <string.h>

#include "clients/lib/client_internal.h"
#include "lib/property.h"

/* ---- one list request --------------------------------------------------------------- */

/* A list being received: an arena and a growing array of items. */
typedef struct list_ctx {
  const client_list_kind_t *kind;
  dfnet_arena_t arena;
  void *items; /* malloc'd, grown by doubling */
  size_t count, cap;
} list_ctx_t;

/* A result: the public list struct at its head, the arena and items behind it. */
typedef struct list_holder {
  union {
    dfnet_client_host_list_t hosts;
    dfnet_client_node_list_t nodes;
    dfnet_client_driver_list_t drivers;
    dfnet_client_composite_list_t composites;
    dfnet_client_bind_trace_list_t traces;
    dfnet_client_driver_host_list_t driver_hosts;
    dfnet_client_lease_list_t leases;
    dfnet_client_lease_audit_list_t audit;
  } pub;
  dfnet_arena_t arena;
  void *items;
} list_holder_t;

/* client__query's on_item for every list. */
static dfnet_status_t list_item(void *ctx, const dfnet_envelope_t *env) {
  list_ctx_t *l = ctx;
  if (env->pb.which_msg != l->kind->answer)
    return DFNET_STATUS_INTERNAL;
  void *item = client__items_push(&l->items, &l->count, &l->cap, l->kind->item_size);
  if (item == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  return l->kind->copy(&l->arena, env, item) ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

/* The holder taking over l's arena and items, or NULL (out of memory; l keeps them). */
static list_holder_t *holder_make(list_ctx_t *l) {
  list_holder_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  h->arena = l->arena;
  h->items = l->items;
  l->arena.head = NULL;
  l->items = NULL;
  /* every public list starts with {size_t count; T *items;} */
  h->pub.hosts.count = l->count;
  h->pub.hosts.items = (dfnet_client_host_t *)h->items;
  return h;
}

void client__list_free(void *pub) {
  if (pub == NULL)
    return;
  list_holder_t *h = pub; /* pub is the first member */
  dfnet_arena_free(&h->arena);
  free(h->items);
  free(h);
}

void dfnet_client_host_list_free(dfnet_client_host_list_t *l) { client__list_free(l); }
void dfnet_client_node_list_free(dfnet_client_node_list_t *l) { client__list_free(l); }
void dfnet_client_driver_list_free(dfnet_client_driver_list_t *l) { client__list_free(l); }
void dfnet_client_composite_list_free(dfnet_client_composite_list_t *l) { client__list_free(l); }
void dfnet_client_bind_trace_list_free(dfnet_client_bind_trace_list_t *l) { client__list_free(l); }
void dfnet_client_driver_host_list_free(dfnet_client_driver_host_list_t *l) {
  client__list_free(l);
}

/* The query of client__list, its err in e (never NULL: end reads the closing message). */
static dfnet_status_t list_query(dfnet_client_t *c, const client_list_kind_t *kind,
                                 const void *args, const dfnet_client_query_options_t *q,
                                 void **out, dfnet_client_error_t *e) {
  dfnet_envelope_t *req = client__envelope_new(kind->ask, e);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_status_t st = kind->fill != NULL ? kind->fill(req, args, e) : DFNET_STATUS_OK;
  list_ctx_t l = {.kind = kind};
  if (st == DFNET_STATUS_OK)
    st = client__query(c, req, true, q ? q->deadline_ms : 0, list_item, &l, e);
  free(req);
  if (st == DFNET_STATUS_OK) {
    list_holder_t *h = holder_make(&l);
    if (h == NULL) {
      st = client__fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    } else {
      if (kind->end != NULL)
        kind->end(&h->pub, e->message);
      *out = h;
    }
  }
  dfnet_arena_free(&l.arena);
  free(l.items);
  return st;
}

dfnet_status_t client__list(dfnet_client_t *c, const client_list_kind_t *kind, const void *args,
                            const dfnet_client_query_options_t *q, void **out,
                            dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client and out are required");
  *out = NULL;
  dfnet_client_error_t e = {.code = DFNET_STATUS_OK};
  dfnet_status_t st = list_query(c, kind, args, q, out, &e);
  if (err != NULL)
    *err = e;
  return st;
}

/* ---- copying items ------------------------------------------------------------------ */

static const char **strv(dfnet_arena_t *a, size_t n) {
  return n ? dfnet_arena_alloc(a, n * sizeof(const char *)) : NULL;
}

/* A property converted from the wire (strings borrowed) keeps its strings in the arena.
 * false = out of memory. */
static bool property_keep(dfnet_arena_t *a, const dfnet_bind_property_t *b,
                          dfnet_client_property_t *p) {
  dfnet_property_to_client(b, p);
  if (p->str_key != NULL && (p->str_key = client__arena_strdup(a, p->str_key)) == NULL)
    return false;
  return p->str_value == NULL || (p->str_value = client__arena_strdup(a, p->str_value)) != NULL;
}

/* Copy a wire property into the arena. false = out of memory. */
static bool property_copy(dfnet_arena_t *a, const dfnet_v1_NodeProperty *w,
                          dfnet_client_property_t *p) {
  dfnet_bind_property_t b;
  dfnet_property_from_wire(w, &b);
  return property_keep(a, &b, p);
}

/* In the copy functions: dst = a copy of src in their `arena`; their `ok` = false when out
 * of memory. */
#define ARENA_STR(dst, src)                     \
  do {                                          \
    (dst) = client__arena_strdup(arena, (src)); \
    if ((dst) == NULL)                          \
      ok = false;                               \
  } while (0)

/* In the copy functions: dst (count strings: count) = a copy of the repeated string field
 * `field` of the wire in their `arena`; their `ok` = false when out of memory. */
#define ARENA_STRV(dst, count, field)                                                           \
  do {                                                                                          \
    (count) = field##_count;                                                                    \
    (dst) =                                                                                     \
        client__arena_strv(arena, (const char *)(field), sizeof(field)[0], field##_count, &ok); \
  } while (0)

/* The arguments of the six public list functions; each list's fill reads its own. */
typedef struct list_ask {
  const char *filter; /* nodes */
  bool exact;         /* nodes */
  bool verbose;       /* nodes, drivers, composites */
  bool loaded;        /* drivers */
  const char *node;   /* bind why */
  const char *url;    /* bind why: the driver, NULL = every driver */
  const char *host;   /* driver hosts: one host, NULL = every host */
} list_ask_t;

/* ---- hosts -------------------------------------------------------------------------- */

static bool host_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_HostInfo *w = &env->pb.msg.host_info;
  dfnet_client_host_t *h = item;
  bool ok = true;
  ARENA_STR(h->name, w->name);
  ARENA_STR(h->address, w->address);
  ARENA_STR(h->arch, w->arch);
  h->label_count = w->labels_count;
  h->label_keys = strv(arena, w->labels_count);
  h->label_values = strv(arena, w->labels_count);
  if (w->labels_count && (h->label_keys == NULL || h->label_values == NULL))
    return false;
  for (pb_size_t i = 0; i < w->labels_count; i++) {
    ARENA_STR(h->label_keys[i], w->labels[i].key);
    ARENA_STR(h->label_values[i], w->labels[i].value);
  }
  h->connected_since_ms = w->connected_since_ms;
  h->online = w->online;
  h->node_count = w->node_count;
  h->driver_host_count = w->driver_host_count;
  ARENA_STR(h->software_version, w->software_version);
  ARENA_STRV(h->lease_holders, h->lease_holder_count, w->lease_holders);
  h->leased_nodes = w->leased_nodes;
  h->sandboxed = w->sandboxed;
  return ok;
}

static const client_list_kind_t host_list = {
    .ask = dfnet_v1_Envelope_list_hosts_tag,
    .answer = dfnet_v1_Envelope_host_info_tag,
    .item_size = sizeof(dfnet_client_host_t),
    .copy = host_copy,
};

dfnet_status_t dfnet_client_list_hosts(dfnet_client_t *c, const dfnet_client_query_options_t *q,
                                       dfnet_client_host_list_t **out, dfnet_client_error_t *err) {
  return client__list(c, &host_list, NULL, q, (void **)out, err);
}

/* ---- nodes -------------------------------------------------------------------------- */

const char *dfnet_client_node_state_str(dfnet_client_node_state_t state) {
  switch (state) {
  case DFNET_CLIENT_NODE_UNBOUND:
    return "unbound";
  case DFNET_CLIENT_NODE_BOUND:
    return "bound";
  case DFNET_CLIENT_NODE_OWNED_BY_PARENT:
    return "owned by parent";
  case DFNET_CLIENT_NODE_OWNED_BY_COMPOSITE:
    return "owned by composite(s)";
  case DFNET_CLIENT_NODE_QUARANTINED:
    return "quarantined";
  case DFNET_CLIENT_NODE_STARTING:
    return "starting";
  default:
    return "unspecified";
  }
}

static dfnet_status_t node_fill(dfnet_envelope_t *req, const void *args,
                                dfnet_client_error_t *err) {
  const list_ask_t *a = args;
  dfnet_v1_ListNodes *m = &req->pb.msg.list_nodes;
  m->exact = a->exact;
  m->verbose = a->verbose;
  return client__copy_field(m->filter, sizeof m->filter, a->filter, "filter", err);
}

/* NodeInfo.offered into n->offered (in the arena). */
static bool offered_copy(dfnet_arena_t *arena, const dfnet_v1_NodeInfo *w, dfnet_client_node_t *n) {
  n->offered_count = w->offered_count;
  if (w->offered_count == 0)
    return true;
  dfnet_client_offer_t *o = dfnet_arena_alloc(arena, w->offered_count * sizeof *o);
  if (o == NULL)
    return false;
  bool ok = true;
  for (pb_size_t i = 0; i < w->offered_count; i++) {
    ARENA_STR(o[i].service, w->offered[i].service);
    ARENA_STR(o[i].instance, w->offered[i].instance);
    ARENA_STR(o[i].source, w->offered[i].source);
  }
  n->offered = o;
  return ok;
}

static bool node_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_NodeInfo *w = &env->pb.msg.node_info;
  dfnet_client_node_t *n = item;
  bool ok = true;
  ARENA_STR(n->moniker, w->moniker);
  ARENA_STR(n->name, w->name);
  ARENA_STR(n->host, w->host);
  ARENA_STR(n->class_name, w->class_name);
  ARENA_STR(n->class_path, w->class_path);
  ARENA_STR(n->driver_url, w->driver_url);
  n->state = (dfnet_client_node_state_t)w->state;
  n->driver_host_id = w->driver_host_id;
  n->unbound_code =
      w->has_unbound_reason ? (dfnet_status_t)w->unbound_reason.code : DFNET_STATUS_OK;
  ARENA_STR(n->unbound_message, w->has_unbound_reason ? w->unbound_reason.message : "");
  n->offline = w->offline;
  n->driver_host_pid = w->driver_host_pid;
  n->suspended = w->suspended;
  n->test = w->test;
  n->lease_id = w->lease_id;
  ARENA_STR(n->lease_holder, w->lease_holder);
  n->lease_expires_ms = w->lease_expires_ms;
  n->property_count = w->properties_count;
  if (w->properties_count) {
    n->properties = dfnet_arena_alloc(arena, w->properties_count * sizeof(dfnet_client_property_t));
    if (n->properties == NULL)
      return false;
    for (pb_size_t i = 0; i < w->properties_count; i++)
      ok = ok && property_copy(arena, &w->properties[i], &n->properties[i]);
  }
  ARENA_STRV(n->offers, n->offer_count, w->offers);
  ARENA_STRV(n->parents, n->parent_count, w->parents);
  return ok && offered_copy(arena, w, n);
}

static const client_list_kind_t node_list = {
    .ask = dfnet_v1_Envelope_list_nodes_tag,
    .fill = node_fill,
    .answer = dfnet_v1_Envelope_node_info_tag,
    .item_size = sizeof(dfnet_client_node_t),
    .copy = node_copy,
};

dfnet_status_t dfnet_client_list_nodes(dfnet_client_t *c, const char *filter, bool exact,
                                       bool verbose, const dfnet_client_query_options_t *q,
                                       dfnet_client_node_list_t **out, dfnet_client_error_t *err) {
  list_ask_t a = {.filter = filter, .exact = exact, .verbose = verbose};
  return client__list(c, &node_list, &a, q, (void **)out, err);
}

/* ---- drivers ------------------------------------------------------------------------ */

static dfnet_status_t driver_fill(dfnet_envelope_t *req, const void *args,
                                  dfnet_client_error_t *err) {
  const list_ask_t *a = args;
  (void)err;
  req->pb.msg.list_drivers.loaded = a->loaded;
  req->pb.msg.list_drivers.verbose = a->verbose;
  return DFNET_STATUS_OK;
}

static bool driver_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_DriverInfo *w = &env->pb.msg.driver_info;
  dfnet_client_driver_t *d = item;
  bool ok = true;
  ARENA_STR(d->url, w->url);
  ARENA_STR(d->name, w->name);
  memcpy(d->package_digest, w->package_digest, sizeof d->package_digest);
  for (size_t i = 0; i < sizeof d->package_digest; i++)
    d->has_digest = d->has_digest || d->package_digest[i] != 0;
  d->source = (dfnet_client_driver_source_t)w->source;
  d->fallback = w->fallback;
  d->colocate = w->colocate;
  d->host_restart_on_crash = w->host_restart_on_crash;
  d->disabled = w->disabled;
  d->category_count = w->device_categories_count;
  d->categories = strv(arena, w->device_categories_count);
  d->subcategories = strv(arena, w->device_categories_count);
  if (d->category_count && (d->categories == NULL || d->subcategories == NULL))
    return false;
  ARENA_STRV(d->devices, d->device_list_count, w->devices);
  ARENA_STRV(d->dispatcher_opts, d->dispatcher_opt_count, w->dispatcher_opts);
  ARENA_STRV(d->resources, d->resource_count, w->resources);
  ARENA_STRV(d->rights, d->right_count, w->rights);
  for (pb_size_t i = 0; i < w->device_categories_count; i++) {
    ARENA_STR(d->categories[i], w->device_categories[i].category);
    ARENA_STR(d->subcategories[i], w->device_categories[i].subcategory);
  }
  ARENA_STR(d->composite_name, w->composite_name);
  d->device_count = w->device_count;
  d->disable_autobind = w->disable_autobind;
  d->start_timeout_ms = w->start_timeout_ms;
  d->memory_mb = w->memory_mb;
  d->open_files = w->open_files;
  if (env->bulk.size > 0) {
    d->bind_bytecode = dfnet_arena_memdup(arena, env->bulk.data, env->bulk.size);
    if (d->bind_bytecode == NULL)
      return false;
    d->bind_bytecode_len = env->bulk.size;
  }
  return ok;
}

static const client_list_kind_t driver_list = {
    .ask = dfnet_v1_Envelope_list_drivers_tag,
    .fill = driver_fill,
    .answer = dfnet_v1_Envelope_driver_info_tag,
    .item_size = sizeof(dfnet_client_driver_t),
    .copy = driver_copy,
};

dfnet_status_t dfnet_client_list_drivers(dfnet_client_t *c, bool loaded, bool verbose,
                                         const dfnet_client_query_options_t *q,
                                         dfnet_client_driver_list_t **out,
                                         dfnet_client_error_t *err) {
  list_ask_t a = {.loaded = loaded, .verbose = verbose};
  return client__list(c, &driver_list, &a, q, (void **)out, err);
}

/* ---- composites --------------------------------------------------------------------- */

/* Copy a wire bind rule value into the arena (its key fields stay unset). */
static bool rule_value_copy(dfnet_arena_t *a, const dfnet_v1_PropertyValue *w,
                            dfnet_client_property_t *p) {
  dfnet_bind_property_t b;
  dfnet_property_value_from_wire(w, &b);
  return property_keep(a, &b, p);
}

/* A spec parent's bind rules and properties into the arena. false = out of memory. */
static bool spec_parent_copy(dfnet_arena_t *a, const dfnet_v1_ParentSpec *w,
                             dfnet_client_composite_parent_t *p) {
  dfnet_client_bind_rule_t *rules =
      w->bind_rules_count ? dfnet_arena_alloc(a, w->bind_rules_count * sizeof *rules) : NULL;
  dfnet_client_property_t *props =
      w->properties_count ? dfnet_arena_alloc(a, w->properties_count * sizeof *props) : NULL;
  if ((w->bind_rules_count && rules == NULL) || (w->properties_count && props == NULL))
    return false;
  for (pb_size_t r = 0; r < w->bind_rules_count; r++) {
    const dfnet_v1_BindRule *wr = &w->bind_rules[r];
    dfnet_client_bind_rule_t *cr = &rules[r];
    if (wr->which_key == dfnet_v1_BindRule_str_key_tag) {
      if ((cr->str_key = client__arena_strdup(a, wr->key.str_key)) == NULL)
        return false;
    } else {
      cr->int_key = wr->key.int_key;
    }
    cr->condition =
        wr->condition == dfnet_v1_Condition_REJECT ? DFNET_CLIENT_REJECT : DFNET_CLIENT_ACCEPT;
    dfnet_client_property_t *values =
        wr->values_count ? dfnet_arena_alloc(a, wr->values_count * sizeof *values) : NULL;
    if (wr->values_count && values == NULL)
      return false;
    for (pb_size_t v = 0; v < wr->values_count; v++)
      if (!rule_value_copy(a, &wr->values[v], &values[v]))
        return false;
    cr->value_count = wr->values_count;
    cr->values = values;
  }
  for (pb_size_t k = 0; k < w->properties_count; k++)
    if (!property_copy(a, &w->properties[k], &props[k]))
      return false;
  p->rule_count = w->bind_rules_count;
  p->rules = rules;
  p->property_count = w->properties_count;
  p->properties = props;
  return true;
}

static dfnet_status_t composite_fill(dfnet_envelope_t *req, const void *args,
                                     dfnet_client_error_t *err) {
  const list_ask_t *a = args;
  (void)err;
  req->pb.msg.list_composites.verbose = a->verbose;
  return DFNET_STATUS_OK;
}

static bool composite_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_CompositeInfo *w = &env->pb.msg.composite_info;
  dfnet_client_composite_t *k = item;
  bool ok = true;
  ARENA_STR(k->name, w->name);
  ARENA_STR(k->driver_url, w->driver_url);
  ARENA_STR(k->moniker, w->moniker);
  k->from_spec = w->from_spec;
  k->parent_count = w->parents_count;
  if (w->parents_count) {
    k->parents =
        dfnet_arena_alloc(arena, w->parents_count * sizeof(dfnet_client_composite_parent_t));
    if (k->parents == NULL)
      return false;
  }
  for (pb_size_t i = 0; i < w->parents_count; i++) {
    ARENA_STR(k->parents[i].name, w->parents[i].name);
    ARENA_STR(k->parents[i].moniker, w->parents[i].moniker);
    k->parents[i].primary = w->parents[i].primary;
    k->parents[i].optional = w->parents[i].optional;
    if (i < w->spec_parents_count && !spec_parent_copy(arena, &w->spec_parents[i], &k->parents[i]))
      return false;
  }
  return ok;
}

static const client_list_kind_t composite_list = {
    .ask = dfnet_v1_Envelope_list_composites_tag,
    .fill = composite_fill,
    .answer = dfnet_v1_Envelope_composite_info_tag,
    .item_size = sizeof(dfnet_client_composite_t),
    .copy = composite_copy,
};

dfnet_status_t dfnet_client_list_composites(dfnet_client_t *c, bool verbose,
                                            const dfnet_client_query_options_t *q,
                                            dfnet_client_composite_list_t **out,
                                            dfnet_client_error_t *err) {
  list_ask_t a = {.verbose = verbose};
  return client__list(c, &composite_list, &a, q, (void **)out, err);
}

/* ---- bind why ----------------------------------------------------------------------- */

static dfnet_status_t trace_fill(dfnet_envelope_t *req, const void *args,
                                 dfnet_client_error_t *err) {
  const list_ask_t *a = args;
  if (a->node == NULL || a->node[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a node moniker is required");
  dfnet_v1_BindWhy *m = &req->pb.msg.bind_why;
  dfnet_status_t st = client__copy_field(m->node, sizeof m->node, a->node, "node", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(m->driver_url, sizeof m->driver_url, a->url, "driver URL", err);
  return st;
}

static bool trace_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_BindTrace *w = &env->pb.msg.bind_trace;
  dfnet_client_bind_trace_t *t = item;
  bool ok = true;
  ARENA_STR(t->driver_url, w->driver_url);
  t->result = (dfnet_client_bind_result_t)w->result;
  t->offset = w->offset;
  ARENA_STR(t->instruction, w->instruction);
  ARENA_STR(t->reason, w->reason);
  ARENA_STR(t->composite_node, w->composite_node);
  return ok;
}

static const client_list_kind_t trace_list = {
    .ask = dfnet_v1_Envelope_bind_why_tag,
    .fill = trace_fill,
    .answer = dfnet_v1_Envelope_bind_trace_tag,
    .item_size = sizeof(dfnet_client_bind_trace_t),
    .copy = trace_copy,
};

dfnet_status_t dfnet_client_bind_why(dfnet_client_t *c, const char *node, const char *driver_url,
                                     const dfnet_client_query_options_t *q,
                                     dfnet_client_bind_trace_list_t **out,
                                     dfnet_client_error_t *err) {
  list_ask_t a = {.node = node, .url = driver_url};
  return client__list(c, &trace_list, &a, q, (void **)out, err);
}

/* ---- driver hosts ------------------------------------------------------------------- */

static dfnet_status_t driver_host_fill(dfnet_envelope_t *req, const void *args,
                                       dfnet_client_error_t *err) {
  const list_ask_t *a = args;
  dfnet_v1_ListDriverHosts *m = &req->pb.msg.list_driver_hosts;
  return client__copy_field(m->host, sizeof m->host, a->host, "host", err);
}

static bool driver_host_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_DriverHostInfo *w = &env->pb.msg.driver_host_info;
  dfnet_client_driver_host_t *h = item;
  bool ok = true;
  ARENA_STR(h->host, w->host);
  h->id = w->id;
  h->pid = w->pid;
  h->rss_bytes = w->rss_bytes;
  h->uid = w->uid;
  h->sandboxed = w->sandboxed;
  ARENA_STRV(h->driver_urls, h->driver_count, w->driver_urls);
  ARENA_STRV(h->nodes, h->node_count, w->nodes);
  ARENA_STRV(h->resources, h->resource_count, w->resources);
  ARENA_STRV(h->rights, h->right_count, w->rights);
  return ok;
}

static const client_list_kind_t driver_host_list = {
    .ask = dfnet_v1_Envelope_list_driver_hosts_tag,
    .fill = driver_host_fill,
    .answer = dfnet_v1_Envelope_driver_host_info_tag,
    .item_size = sizeof(dfnet_client_driver_host_t),
    .copy = driver_host_copy,
};

dfnet_status_t dfnet_client_list_driver_hosts(dfnet_client_t *c, const char *host,
                                              const dfnet_client_query_options_t *q,
                                              dfnet_client_driver_host_list_t **out,
                                              dfnet_client_error_t *err) {
  list_ask_t a = {.host = host};
  return client__list(c, &driver_host_list, &a, q, (void **)out, err);
}
