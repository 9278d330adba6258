/* libdfnet-client: the manager's client API (proto/dfnet/v1/query.proto): list requests
 * answered by a stream of items closed by a Status, and unary control requests. Items are
 * copied from the borrowed envelope into the result's arena on the client thread. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clients/lib/client_internal.h"
#include "lib/package.h"
#include "lib/property.h"

#define DEFAULT_QUERY_DEADLINE_MS 30000u
#define UPLOAD_CHUNK (256u * 1024u)

/* ---- one query --------------------------------------------------------------------- */

typedef struct query_wait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  dfnet_status_t status;
  char message[512];
  dfnet_status_t item_status; /* first failure of on_item */
  client_item_fn on_item;
  void *ctx;
  bool streaming;
} query_wait_t;

static void query_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *env, bool last) {
  query_wait_t *q = user;
  dfnet_status_t final = DFNET_STATUS_OK;
  char msg[512] = "";
  if (status != DFNET_STATUS_OK) {
    final = status;
    snprintf(msg, sizeof msg, "%s",
             status == DFNET_STATUS_DEADLINE_EXCEEDED ? "deadline exceeded"
             : status == DFNET_STATUS_UNAVAILABLE     ? "connection to the manager lost"
                                                      : dfnet_status_str(status));
  } else if (env->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    final = (dfnet_status_t)env->pb.msg.status.code;
    snprintf(msg, sizeof msg, "%s", env->pb.msg.status.message);
  } else if (q->item_status == DFNET_STATUS_OK) {
    q->item_status = q->on_item ? q->on_item(q->ctx, env) : DFNET_STATUS_OK;
  }
  if (!last)
    return;
  pthread_mutex_lock(&q->mu);
  q->status = final;
  snprintf(q->message, sizeof q->message, "%s", msg);
  q->done = true;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

dfnet_status_t client__query(dfnet_client_t *c, dfnet_envelope_t *req, bool streaming,
                             uint32_t deadline_ms, client_item_fn on_item, void *ctx,
                             dfnet_client_error_t *err) {
  if (deadline_ms == 0)
    deadline_ms = DEFAULT_QUERY_DEADLINE_MS;
  query_wait_t q = {.on_item = on_item, .ctx = ctx, .streaming = streaming};
  dfnet_request_opts_t ro = {
      .deadline_ms = deadline_ms, .streaming = streaming, .on_reply = query_reply, .user = &q};
  dfnet_status_t st = DFNET_STATUS_OK;
  for (int attempt = 0; attempt < 2; attempt++) {
    dfnet_session_id_t sid;
    st = client__session(c, deadline_ms, &sid, err);
    if (st != DFNET_STATUS_OK)
      return st;
    st = dfnet_transport_request(c->t, sid, req, &ro, DFNET_SEND_WAIT, NULL);
    if (st != DFNET_STATUS_NOT_FOUND)
      break;
    client__session_gone(c, sid); /* closed a moment ago: wait for the next one */
  }
  if (st != DFNET_STATUS_OK)
    return client__fail(err, st == DFNET_STATUS_NOT_FOUND ? DFNET_STATUS_UNAVAILABLE : st,
                        "%s not sent: %s", dfnet_envelope_msg_name(req->pb.which_msg),
                        st == DFNET_STATUS_NOT_FOUND ? "the session just closed"
                                                     : dfnet_status_str(st));
  pthread_mutex_init(&q.mu, NULL);
  pthread_cond_init(&q.cv, NULL);
  pthread_mutex_lock(&q.mu);
  while (!q.done)
    pthread_cond_wait(&q.cv, &q.mu);
  pthread_mutex_unlock(&q.mu);
  if (q.status != DFNET_STATUS_OK)
    st = client__fail(err, q.status, "%s", q.message);
  else if (q.item_status != DFNET_STATUS_OK)
    st = client__fail(err, q.item_status, "%s",
                      q.item_status == DFNET_STATUS_RESOURCE_EXHAUSTED
                          ? "out of memory for the answer"
                          : "unexpected answer from the manager");
  else if (err != NULL) { /* OK: the manager's closing message, if it said one */
    err->code = DFNET_STATUS_OK;
    snprintf(err->message, sizeof err->message, "%s", q.message);
  }
  pthread_cond_destroy(&q.cv);
  pthread_mutex_destroy(&q.mu);
  return st;
}

static dfnet_envelope_t *new_env(pb_size_t which, dfnet_client_error_t *err) {
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL) {
    client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  dfnet_envelope_init(env);
  env->pb.which_msg = which;
  return env;
}

static uint32_t qdeadline(const dfnet_client_query_options_t *q) { return q ? q->deadline_ms : 0; }

/* A growing array of items in an arena-backed list. */
typedef struct list_ctx {
  client_arena_t arena;
  void *items; /* malloc'd, grown by doubling */
  size_t count, cap, item_size;
  pb_size_t want; /* the envelope member of an item */
} list_ctx_t;

static void *list_push(list_ctx_t *l) {
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    void *p = realloc(l->items, cap * l->item_size);
    if (p == NULL)
      return NULL;
    l->items = p;
    l->cap = cap;
  }
  void *item = (char *)l->items + l->count * l->item_size;
  memset(item, 0, l->item_size);
  l->count++;
  return item;
}

/* A result: the public list struct at its head, the arena and items behind it. */
typedef struct list_holder {
  union {
    dfnet_client_host_list_t hosts;
    dfnet_client_node_list_t nodes;
    dfnet_client_driver_list_t drivers;
    dfnet_client_composite_list_t composites;
    dfnet_client_bind_trace_list_t traces;
  } pub;
  client_arena_t arena;
  void *items;
} list_holder_t;

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

static void holder_free(void *pub) {
  if (pub == NULL)
    return;
  list_holder_t *h = pub; /* pub is the first member */
  client__arena_free(&h->arena);
  free(h->items);
  free(h);
}

void dfnet_client_host_list_free(dfnet_client_host_list_t *l) { holder_free(l); }
void dfnet_client_node_list_free(dfnet_client_node_list_t *l) { holder_free(l); }
void dfnet_client_driver_list_free(dfnet_client_driver_list_t *l) { holder_free(l); }
void dfnet_client_composite_list_free(dfnet_client_composite_list_t *l) { holder_free(l); }
void dfnet_client_bind_trace_list_free(dfnet_client_bind_trace_list_t *l) { holder_free(l); }

static const char **strv(client_arena_t *a, size_t n) {
  return n ? client__arena_alloc(a, n * sizeof(const char *)) : NULL;
}

/* A property converted from the wire (strings borrowed) keeps its strings in the arena.
 * false = out of memory. */
static bool property_keep(client_arena_t *a, const dfnet_bind_property_t *b,
                          dfnet_client_property_t *p) {
  dfnet_property_to_client(b, p);
  if (p->str_key != NULL && (p->str_key = client__arena_strdup(a, p->str_key)) == NULL)
    return false;
  return p->str_value == NULL || (p->str_value = client__arena_strdup(a, p->str_value)) != NULL;
}

/* Copy a wire property into the arena. false = out of memory. */
static bool property_copy(client_arena_t *a, const dfnet_v1_NodeProperty *w,
                          dfnet_client_property_t *p) {
  dfnet_bind_property_t b;
  dfnet_property_from_wire(w, &b);
  return property_keep(a, &b, p);
}

#define ARENA_STR(dst, src)                         \
  do {                                              \
    (dst) = client__arena_strdup(&l->arena, (src)); \
    if ((dst) == NULL)                              \
      ok = false;                                   \
  } while (0)

/* ---- hosts ---------------------------------------------------------------------------- */

static dfnet_status_t host_item(void *ctx, const dfnet_envelope_t *env) {
  list_ctx_t *l = ctx;
  if (env->pb.which_msg != l->want)
    return DFNET_STATUS_INTERNAL;
  const dfnet_v1_HostInfo *w = &env->pb.msg.host_info;
  dfnet_client_host_t *h = list_push(l);
  if (h == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  bool ok = true;
  ARENA_STR(h->name, w->name);
  ARENA_STR(h->address, w->address);
  ARENA_STR(h->arch, w->arch);
  h->label_count = w->labels_count;
  h->label_keys = strv(&l->arena, w->labels_count);
  h->label_values = strv(&l->arena, w->labels_count);
  if (w->labels_count && (h->label_keys == NULL || h->label_values == NULL))
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  for (pb_size_t i = 0; i < w->labels_count; i++) {
    ARENA_STR(h->label_keys[i], w->labels[i].key);
    ARENA_STR(h->label_values[i], w->labels[i].value);
  }
  h->connected_since_ms = w->connected_since_ms;
  h->online = w->online;
  h->node_count = w->node_count;
  h->driver_host_count = w->driver_host_count;
  ARENA_STR(h->software_version, w->software_version);
  return ok ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

/* Run a list query and hand back its holder. */
static dfnet_status_t run_list(dfnet_client_t *c, dfnet_envelope_t *req, uint32_t deadline,
                               pb_size_t want, size_t item_size, client_item_fn fn, void **out,
                               dfnet_client_error_t *err) {
  list_ctx_t l = {.item_size = item_size, .want = want};
  dfnet_status_t st = client__query(c, req, true, deadline, fn, &l, err);
  free(req);
  if (st == DFNET_STATUS_OK) {
    list_holder_t *h = holder_make(&l);
    if (h == NULL)
      st = client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    else
      *out = h;
  }
  client__arena_free(&l.arena);
  free(l.items);
  return st;
}

static dfnet_status_t check_common(dfnet_client_t *c, void *out, dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
  if (c == NULL || out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client and out are required");
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_list_hosts(dfnet_client_t *c, const dfnet_client_query_options_t *q,
                                       dfnet_client_host_list_t **out, dfnet_client_error_t *err) {
  dfnet_status_t st = check_common(c, out, err);
  if (st != DFNET_STATUS_OK)
    return st;
  *out = NULL;
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_hosts_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  return run_list(c, req, qdeadline(q), dfnet_v1_Envelope_host_info_tag,
                  sizeof(dfnet_client_host_t), host_item, (void **)out, err);
}

/* ---- nodes ---------------------------------------------------------------------------- */

static dfnet_status_t node_item(void *ctx, const dfnet_envelope_t *env) {
  list_ctx_t *l = ctx;
  if (env->pb.which_msg != l->want)
    return DFNET_STATUS_INTERNAL;
  const dfnet_v1_NodeInfo *w = &env->pb.msg.node_info;
  dfnet_client_node_t *n = list_push(l);
  if (n == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
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
  n->property_count = w->properties_count;
  if (w->properties_count) {
    n->properties =
        client__arena_alloc(&l->arena, w->properties_count * sizeof(dfnet_client_property_t));
    if (n->properties == NULL)
      return DFNET_STATUS_RESOURCE_EXHAUSTED;
    for (pb_size_t i = 0; i < w->properties_count; i++)
      ok = ok && property_copy(&l->arena, &w->properties[i], &n->properties[i]);
  }
  n->offer_count = w->offers_count;
  n->offers = strv(&l->arena, w->offers_count);
  n->parent_count = w->parents_count;
  n->parents = strv(&l->arena, w->parents_count);
  if ((w->offers_count && n->offers == NULL) || (w->parents_count && n->parents == NULL))
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  for (pb_size_t i = 0; i < w->offers_count; i++)
    ARENA_STR(n->offers[i], w->offers[i]);
  for (pb_size_t i = 0; i < w->parents_count; i++)
    ARENA_STR(n->parents[i], w->parents[i]);
  return ok ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t dfnet_client_list_nodes(dfnet_client_t *c, const char *filter, bool exact,
                                       bool verbose, const dfnet_client_query_options_t *q,
                                       dfnet_client_node_list_t **out, dfnet_client_error_t *err) {
  dfnet_status_t st = check_common(c, out, err);
  if (st != DFNET_STATUS_OK)
    return st;
  *out = NULL;
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_nodes_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_ListNodes *m = &req->pb.msg.list_nodes;
  st = client__copy_field(m->filter, sizeof m->filter, filter, "filter", err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  m->exact = exact;
  m->verbose = verbose;
  return run_list(c, req, qdeadline(q), dfnet_v1_Envelope_node_info_tag,
                  sizeof(dfnet_client_node_t), node_item, (void **)out, err);
}

/* ---- drivers -------------------------------------------------------------------------- */

static dfnet_status_t driver_item(void *ctx, const dfnet_envelope_t *env) {
  list_ctx_t *l = ctx;
  if (env->pb.which_msg != l->want)
    return DFNET_STATUS_INTERNAL;
  const dfnet_v1_DriverInfo *w = &env->pb.msg.driver_info;
  dfnet_client_driver_t *d = list_push(l);
  if (d == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
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
  d->categories = strv(&l->arena, w->device_categories_count);
  d->subcategories = strv(&l->arena, w->device_categories_count);
  d->device_list_count = w->devices_count;
  d->devices = strv(&l->arena, w->devices_count);
  d->dispatcher_opt_count = w->dispatcher_opts_count;
  d->dispatcher_opts = strv(&l->arena, w->dispatcher_opts_count);
  if ((d->category_count && (d->categories == NULL || d->subcategories == NULL)) ||
      (d->device_list_count && d->devices == NULL) ||
      (d->dispatcher_opt_count && d->dispatcher_opts == NULL))
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  for (pb_size_t i = 0; i < w->device_categories_count; i++) {
    ARENA_STR(d->categories[i], w->device_categories[i].category);
    ARENA_STR(d->subcategories[i], w->device_categories[i].subcategory);
  }
  for (pb_size_t i = 0; i < w->devices_count; i++)
    ARENA_STR(d->devices[i], w->devices[i]);
  for (pb_size_t i = 0; i < w->dispatcher_opts_count; i++)
    ARENA_STR(d->dispatcher_opts[i], w->dispatcher_opts[i]);
  ARENA_STR(d->composite_name, w->composite_name);
  d->device_count = w->device_count;
  if (env->bulk.size > 0) {
    d->bind_bytecode = client__arena_memdup(&l->arena, env->bulk.data, env->bulk.size);
    if (d->bind_bytecode == NULL)
      return DFNET_STATUS_RESOURCE_EXHAUSTED;
    d->bind_bytecode_len = env->bulk.size;
  }
  return ok ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t dfnet_client_list_drivers(dfnet_client_t *c, bool loaded, bool verbose,
                                         const dfnet_client_query_options_t *q,
                                         dfnet_client_driver_list_t **out,
                                         dfnet_client_error_t *err) {
  dfnet_status_t st = check_common(c, out, err);
  if (st != DFNET_STATUS_OK)
    return st;
  *out = NULL;
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_drivers_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  req->pb.msg.list_drivers.loaded = loaded;
  req->pb.msg.list_drivers.verbose = verbose;
  return run_list(c, req, qdeadline(q), dfnet_v1_Envelope_driver_info_tag,
                  sizeof(dfnet_client_driver_t), driver_item, (void **)out, err);
}

/* ---- composites ----------------------------------------------------------------------- */

/* Copy a wire bind rule value into the arena (its key fields stay unset). */
static bool rule_value_copy(client_arena_t *a, const dfnet_v1_PropertyValue *w,
                            dfnet_client_property_t *p) {
  dfnet_bind_property_t b;
  dfnet_property_value_from_wire(w, &b);
  return property_keep(a, &b, p);
}

/* A spec parent's bind rules and properties into the arena. false = out of memory. */
static bool spec_parent_copy(client_arena_t *a, const dfnet_v1_ParentSpec *w,
                             dfnet_client_composite_parent_t *p) {
  dfnet_client_bind_rule_t *rules =
      w->bind_rules_count ? client__arena_alloc(a, w->bind_rules_count * sizeof *rules) : NULL;
  dfnet_client_property_t *props =
      w->properties_count ? client__arena_alloc(a, w->properties_count * sizeof *props) : NULL;
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
        wr->values_count ? client__arena_alloc(a, wr->values_count * sizeof *values) : NULL;
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

static dfnet_status_t composite_item(void *ctx, const dfnet_envelope_t *env) {
  list_ctx_t *l = ctx;
  if (env->pb.which_msg != l->want)
    return DFNET_STATUS_INTERNAL;
  const dfnet_v1_CompositeInfo *w = &env->pb.msg.composite_info;
  dfnet_client_composite_t *k = list_push(l);
  if (k == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  bool ok = true;
  ARENA_STR(k->name, w->name);
  ARENA_STR(k->driver_url, w->driver_url);
  ARENA_STR(k->moniker, w->moniker);
  k->from_spec = w->from_spec;
  k->parent_count = w->parents_count;
  if (w->parents_count) {
    k->parents =
        client__arena_alloc(&l->arena, w->parents_count * sizeof(dfnet_client_composite_parent_t));
    if (k->parents == NULL)
      return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  for (pb_size_t i = 0; i < w->parents_count; i++) {
    ARENA_STR(k->parents[i].name, w->parents[i].name);
    ARENA_STR(k->parents[i].moniker, w->parents[i].moniker);
    k->parents[i].primary = w->parents[i].primary;
    k->parents[i].optional = w->parents[i].optional;
    if (i < w->spec_parents_count &&
        !spec_parent_copy(&l->arena, &w->spec_parents[i], &k->parents[i]))
      return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  return ok ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t dfnet_client_list_composites(dfnet_client_t *c, bool verbose,
                                            const dfnet_client_query_options_t *q,
                                            dfnet_client_composite_list_t **out,
                                            dfnet_client_error_t *err) {
  dfnet_status_t st = check_common(c, out, err);
  if (st != DFNET_STATUS_OK)
    return st;
  *out = NULL;
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_composites_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  req->pb.msg.list_composites.verbose = verbose;
  return run_list(c, req, qdeadline(q), dfnet_v1_Envelope_composite_info_tag,
                  sizeof(dfnet_client_composite_t), composite_item, (void **)out, err);
}

/* ---- bind why ------------------------------------------------------------------------- */

static dfnet_status_t trace_item(void *ctx, const dfnet_envelope_t *env) {
  list_ctx_t *l = ctx;
  if (env->pb.which_msg != l->want)
    return DFNET_STATUS_INTERNAL;
  const dfnet_v1_BindTrace *w = &env->pb.msg.bind_trace;
  dfnet_client_bind_trace_t *t = list_push(l);
  if (t == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  bool ok = true;
  ARENA_STR(t->driver_url, w->driver_url);
  t->result = (dfnet_client_bind_result_t)w->result;
  t->offset = w->offset;
  ARENA_STR(t->instruction, w->instruction);
  ARENA_STR(t->reason, w->reason);
  ARENA_STR(t->composite_node, w->composite_node);
  return ok ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t dfnet_client_bind_why(dfnet_client_t *c, const char *node, const char *driver_url,
                                     const dfnet_client_query_options_t *q,
                                     dfnet_client_bind_trace_list_t **out,
                                     dfnet_client_error_t *err) {
  dfnet_status_t st = check_common(c, out, err);
  if (st != DFNET_STATUS_OK)
    return st;
  *out = NULL;
  if (node == NULL || node[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a node moniker is required");
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_bind_why_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_BindWhy *m = &req->pb.msg.bind_why;
  st = client__copy_field(m->node, sizeof m->node, node, "node", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(m->driver_url, sizeof m->driver_url, driver_url, "driver URL", err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  return run_list(c, req, qdeadline(q), dfnet_v1_Envelope_bind_trace_tag,
                  sizeof(dfnet_client_bind_trace_t), trace_item, (void **)out, err);
}

/* ---- unary control requests --------------------------------------------------------- */

/* A unary request whose answer is a Status, or (want != 0) that member. */
typedef struct unary_ctx {
  pb_size_t want;
  uint32_t driver_hosts, nodes; /* DriverControlResult */
  char url[256];
  bool got;
} unary_ctx_t;

static dfnet_status_t unary_item(void *ctx, const dfnet_envelope_t *env) {
  unary_ctx_t *u = ctx;
  if (u->want == 0 || env->pb.which_msg != u->want)
    return DFNET_STATUS_INTERNAL;
  if (env->pb.which_msg == dfnet_v1_Envelope_driver_control_result_tag) {
    u->driver_hosts = env->pb.msg.driver_control_result.driver_hosts;
    u->nodes = env->pb.msg.driver_control_result.nodes;
    snprintf(u->url, sizeof u->url, "%s", env->pb.msg.driver_control_result.url);
  }
  u->got = true;
  return DFNET_STATUS_OK;
}

static dfnet_status_t unary(dfnet_client_t *c, dfnet_envelope_t *req, unary_ctx_t *u,
                            dfnet_client_error_t *err) {
  dfnet_status_t st = client__query(c, req, false, 0, unary_item, u, err);
  free(req);
  return st;
}

/* DriverControl on the driver `url` (a URL or a unique name). On OK, *count (may be NULL)
 * gets the result's driver_hosts (RESTART) or nodes (UNREGISTER), url_out (may be NULL)
 * the driver's URL. */
static dfnet_status_t driver_control(dfnet_client_t *c, const char *url,
                                     dfnet_v1_DriverControl_Action action, uint32_t *count,
                                     char *url_out, size_t url_cap, dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
  if (count != NULL)
    *count = 0;
  if (url_out != NULL && url_cap > 0)
    url_out[0] = '\0';
  if (c == NULL || url == NULL || url[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a driver URL or name is required");
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_driver_control_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_DriverControl *m = &req->pb.msg.driver_control;
  dfnet_status_t st = client__copy_field(m->url, sizeof m->url, url, "driver URL", err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  m->action = action;
  unary_ctx_t u = {.want = dfnet_v1_Envelope_driver_control_result_tag};
  st = unary(c, req, &u, err);
  if (st == DFNET_STATUS_OK && count != NULL)
    *count = action == dfnet_v1_DriverControl_Action_UNREGISTER ? u.nodes : u.driver_hosts;
  if (st == DFNET_STATUS_OK && url_out != NULL && url_cap > 0)
    snprintf(url_out, url_cap, "%s", u.url);
  return st;
}

dfnet_status_t dfnet_client_driver_disable(dfnet_client_t *c, const char *url,
                                           dfnet_client_error_t *err) {
  return driver_control(c, url, dfnet_v1_DriverControl_Action_DISABLE, NULL, NULL, 0, err);
}

dfnet_status_t dfnet_client_driver_enable(dfnet_client_t *c, const char *url,
                                          dfnet_client_error_t *err) {
  return driver_control(c, url, dfnet_v1_DriverControl_Action_ENABLE, NULL, NULL, 0, err);
}

dfnet_status_t dfnet_client_driver_restart(dfnet_client_t *c, const char *url, uint32_t *restarted,
                                           dfnet_client_error_t *err) {
  return driver_control(c, url, dfnet_v1_DriverControl_Action_RESTART, restarted, NULL, 0, err);
}

dfnet_status_t dfnet_client_driver_unregister(dfnet_client_t *c, const char *url, uint32_t *nodes,
                                              char *url_out, size_t url_cap,
                                              dfnet_client_error_t *err) {
  return driver_control(c, url, dfnet_v1_DriverControl_Action_UNREGISTER, nodes, url_out, url_cap,
                        err);
}

dfnet_status_t dfnet_client_request_bind(dfnet_client_t *c, const char *node, bool force_rebind,
                                         const char *driver_url_suffix, dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
  if (c == NULL || node == NULL || node[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a node moniker is required");
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_request_bind_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_RequestBind *m = &req->pb.msg.request_bind;
  dfnet_status_t st = client__copy_field(m->node, sizeof m->node, node, "node", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(m->driver_url_suffix, sizeof m->driver_url_suffix, driver_url_suffix,
                            "driver URL suffix", err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  m->force_rebind = force_rebind;
  unary_ctx_t u = {0};
  return unary(c, req, &u, err);
}

/* ---- composite node specs ------------------------------------------------------------ */

static dfnet_status_t value_to_wire(const dfnet_client_property_t *p, dfnet_v1_PropertyValue *v,
                                    dfnet_client_error_t *err) {
  dfnet_bind_property_t b;
  dfnet_property_from_client(p, &b);
  switch (dfnet_property_value_to_wire(&b, v)) {
  case DFNET_PROPERTY_WIRE_OK:
    return DFNET_STATUS_OK;
  case DFNET_PROPERTY_WIRE_NO_VALUE:
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a value without a type");
  default: /* client__copy_field says what did not fit */
    return client__copy_field(v->value.str_value, sizeof v->value.str_value, b.str_value,
                              "bind rule value", err);
  }
}

static dfnet_status_t property_to_wire(const dfnet_client_property_t *p, dfnet_v1_NodeProperty *w,
                                       dfnet_client_error_t *err) {
  dfnet_bind_property_t b;
  dfnet_property_from_client(p, &b);
  switch (dfnet_property_to_wire(&b, w)) {
  case DFNET_PROPERTY_WIRE_OK:
    return DFNET_STATUS_OK;
  case DFNET_PROPERTY_WIRE_KEY_CUT: /* client__copy_field says what did not fit */
    return client__copy_field(w->key.str_key, sizeof w->key.str_key, b.str_key, "property key",
                              err);
  case DFNET_PROPERTY_WIRE_VALUE_CUT:
    return client__copy_field(w->value.str_value, sizeof w->value.str_value, b.str_value,
                              "property value", err);
  default:
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a property without a value");
  }
}

static dfnet_status_t spec_to_wire(const char *name, const dfnet_client_parent_spec_t *parents,
                                   size_t parent_count, dfnet_v1_CompositeNodeSpec *spec,
                                   dfnet_client_error_t *err) {
  if (name == NULL || name[0] == '\0' || parents == NULL || parent_count == 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "a composite node spec needs a name and parents");
  if (parent_count > sizeof spec->parents / sizeof spec->parents[0])
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "%zu parents, at most %zu",
                        parent_count, sizeof spec->parents / sizeof spec->parents[0]);
  dfnet_status_t st = client__copy_field(spec->name, sizeof spec->name, name, "spec name", err);
  spec->parents_count = (pb_size_t)parent_count;
  for (size_t i = 0; st == DFNET_STATUS_OK && i < parent_count; i++) {
    const dfnet_client_parent_spec_t *p = &parents[i];
    dfnet_v1_ParentSpec *w = &spec->parents[i];
    size_t max_rules = sizeof w->bind_rules / sizeof w->bind_rules[0];
    size_t max_props = sizeof w->properties / sizeof w->properties[0];
    if (p->rule_count == 0 || p->rule_count > max_rules || p->property_count > max_props)
      return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                          "parent %zu: %zu bind rules (1..%zu), %zu properties (0..%zu)", i,
                          p->rule_count, max_rules, p->property_count, max_props);
    w->bind_rules_count = (pb_size_t)p->rule_count;
    for (size_t r = 0; st == DFNET_STATUS_OK && r < p->rule_count; r++) {
      const dfnet_client_bind_rule_t *rule = &p->rules[r];
      dfnet_v1_BindRule *wr = &w->bind_rules[r];
      size_t max_values = sizeof wr->values / sizeof wr->values[0];
      if (rule->value_count == 0 || rule->value_count > max_values ||
          (rule->condition != DFNET_CLIENT_ACCEPT && rule->condition != DFNET_CLIENT_REJECT))
        return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                            "parent %zu rule %zu: needs ACCEPT or REJECT and 1..%zu values", i, r,
                            max_values);
      if (rule->str_key != NULL) {
        wr->which_key = dfnet_v1_BindRule_str_key_tag;
        st = client__copy_field(wr->key.str_key, sizeof wr->key.str_key, rule->str_key,
                                "bind rule key", err);
      } else {
        wr->which_key = dfnet_v1_BindRule_int_key_tag;
        wr->key.int_key = rule->int_key;
      }
      wr->condition = rule->condition == DFNET_CLIENT_ACCEPT ? dfnet_v1_Condition_ACCEPT
                                                             : dfnet_v1_Condition_REJECT;
      wr->values_count = (pb_size_t)rule->value_count;
      for (size_t v = 0; st == DFNET_STATUS_OK && v < rule->value_count; v++)
        st = value_to_wire(&rule->values[v], &wr->values[v], err);
    }
    w->properties_count = (pb_size_t)p->property_count;
    for (size_t k = 0; st == DFNET_STATUS_OK && k < p->property_count; k++)
      st = property_to_wire(&p->properties[k], &w->properties[k], err);
  }
  return st;
}

dfnet_status_t dfnet_client_add_composite_node_spec(dfnet_client_t *c, const char *name,
                                                    const dfnet_client_parent_spec_t *parents,
                                                    size_t parent_count,
                                                    dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client is NULL");
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_add_composite_node_spec_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  req->pb.msg.add_composite_node_spec.has_spec = true;
  dfnet_status_t st =
      spec_to_wire(name, parents, parent_count, &req->pb.msg.add_composite_node_spec.spec, err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  unary_ctx_t u = {0};
  return unary(c, req, &u, err);
}

/* ---- driver register ------------------------------------------------------------------ */

/* The package's name: the one meta/<name>.json of the directory. */
static dfnet_status_t package_name(const char *dir, char *name, size_t cap,
                                   dfnet_client_error_t *err) {
  char meta[4096];
  snprintf(meta, sizeof meta, "%s/meta", dir);
  DIR *d = opendir(meta);
  if (d == NULL) {
    struct stat sb;
    if (stat(dir, &sb) != 0)
      return client__fail(err, DFNET_STATUS_NOT_FOUND, "%s: no such package directory", dir);
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%s is not a driver package: no meta/ directory", dir);
  }
  size_t found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
      if (found == 0 && n - 5 < cap) {
        memcpy(name, e->d_name, n - 5);
        name[n - 5] = '\0';
      }
      found++;
    }
  }
  closedir(d);
  if (found != 1)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%s: expected exactly one meta/<name>.json, found %zu", dir, found);
  if (!dfnet_package_name_valid(name))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%s: '%s' is not a valid driver name ([A-Za-z0-9_-], at most %u)", dir,
                        name, DFNET_PACKAGE_NAME_MAX);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_driver_register(dfnet_client_t *c, const char *pkg_dir, char *url_out,
                                            size_t url_cap, dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
  if (c == NULL || pkg_dir == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a package directory is required");
  char name[DFNET_PACKAGE_NAME_MAX + 1];
  dfnet_status_t st = package_name(pkg_dir, name, sizeof name, err);
  if (st != DFNET_STATUS_OK)
    return st;
  dfnet_package_buf_t pkg = {0};
  char why[512];
  st = dfnet_package_pack_dir(pkg_dir, &pkg, why, sizeof why);
  if (st != DFNET_STATUS_OK)
    return client__fail(err, st, "%s: %s", pkg_dir, why);
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  dfnet_package_digest(pkg.data, pkg.size, digest);
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_package_upload_tag, err);
  if (req == NULL) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto packed;
  }
  size_t off = 0;
  do {
    size_t n = pkg.size - off < UPLOAD_CHUNK ? pkg.size - off : UPLOAD_CHUNK;
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_package_upload_tag;
    dfnet_v1_PackageUpload *m = &req->pb.msg.package_upload;
    memcpy(m->digest, digest, sizeof digest);
    m->offset = off;
    m->total_size = pkg.size;
    snprintf(m->name, sizeof m->name, "%s", name);
    req->bulk.data = pkg.data + off;
    req->bulk.size = n;
    unary_ctx_t u = {0};
    st = client__query(c, req, false, 0, unary_item, &u, err);
    off += n;
  } while (st == DFNET_STATUS_OK && off < pkg.size);
  free(req);
  if (st == DFNET_STATUS_OK && url_out != NULL && url_cap > 0) {
    st = dfnet_package_url(name, digest, url_out, url_cap);
    if (st != DFNET_STATUS_OK)
      client__fail(err, st, "URL buffer of %zu bytes too small", url_cap);
  }
packed:
  dfnet_package_buf_free(&pkg);
  return st;
}
