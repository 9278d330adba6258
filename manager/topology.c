/* dfnet-manager: the node topology (topology.h). */
#include "lib/array.h"
#include "manager/topology.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind_keys.h"
#include "lib/property.h"

/* The transport dfnet's offers are carried by: DFv2 names a driver-runtime service
 * "<service>.DriverTransport" ("ZirconTransport" is a kernel channel, which dfnet has
 * none of). */
#define DERIVED_SUFFIX ".DriverTransport"

/* A node's properties go back to the wire whole: its own came from it, and a derived one
 * is an offer (its key) and the offer with DERIVED_SUFFIX (its value). */
#define OFFER_SIZE pb_membersize(dfnet_v1_NodeAdd, offers[0])
_Static_assert(OFFER_SIZE == pb_membersize(dfnet_v1_NodeUpdate, offers[0]), "offers");
_Static_assert(OFFER_SIZE <= pb_membersize(dfnet_v1_NodeProperty, key.str_key), "derived key");
_Static_assert(OFFER_SIZE - 1 + sizeof DERIVED_SUFFIX <=
                   pb_membersize(dfnet_v1_NodeProperty, value.str_value),
               "derived value");
_Static_assert(TOPOLOGY_PROPS_MAX + TOPOLOGY_OFFERS_MAX <= UINT8_MAX, "prop_count");

void topology__fmt(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

void topology__init(topology_t *t) {
  memset(t, 0, sizeof *t);
  t->next_id = 1;
}

/* Free a node; its class number is free again (the moniker keeps its reservation). */
static void node_free(topology_t *t, topology_node_t *n) {
  if (n->class_name != NULL)
    class_paths__release(t->classes, n->class_name, (uint32_t)n->class_index);
  free(n->moniker);
  free(n->children);
  free(n->props);
  free(n->offers);
  free(n->class_name);
  free(n->unbound_msg);
  free(n);
}

void topology__destroy(topology_t *t) {
  topology_node_t *n, *tmp;
  HASH_ITER(hh, t->by_moniker, n, tmp) {
    HASH_DEL(t->by_moniker, n);
    node_free(t, n);
  }
  class_paths__destroy(&t->classes);
  t->count = 0;
}

topology_node_t *topology__find(const topology_t *t, const char *moniker) {
  topology_node_t *n = NULL;
  if (moniker != NULL)
    HASH_FIND_STR(t->by_moniker, moniker, n);
  return n;
}

bool topology__name_valid(const char *name, const char **why) {
  if (name == NULL || name[0] == '\0') {
    *why = "node name missing";
    return false;
  }
  size_t len = strlen(name);
  if (len > TOPOLOGY_NAME_MAX) {
    *why = "node name longer than 128 bytes";
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c == '.') {
      *why = "node name contains '.'";
      return false;
    }
    if (c < 0x20 || c == 0x7f) {
      *why = "node name contains a control character";
      return false;
    }
  }
  return true;
}

/* The key of a wire property as a string for comparison: int keys by deprecated name. */
static const char *wire_key_text(const dfnet_v1_NodeProperty *p, char *buf, size_t size) {
  if (p->which_key == dfnet_v1_NodeProperty_str_key_tag)
    return p->key.str_key;
  const char *name = dfnet_bind_key_name(p->key.int_key);
  if (name != NULL)
    return name;
  snprintf(buf, size, "#%u", (unsigned)p->key.int_key);
  return buf;
}

dfnet_status_t topology__check_props(const dfnet_v1_NodeProperty *props, size_t count, char *err,
                                     size_t err_size) {
  if (count > TOPOLOGY_PROPS_MAX) {
    snprintf(err, err_size, "%zu properties, at most %d", count, TOPOLOGY_PROPS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < count; i++) {
    const dfnet_v1_NodeProperty *p = &props[i];
    if (p->which_key == 0 ||
        (p->which_key == dfnet_v1_NodeProperty_str_key_tag && p->key.str_key[0] == '\0')) {
      snprintf(err, err_size, "property %zu has no key", i + 1);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    char ka[160], kb[160];
    const char *key = wire_key_text(p, ka, sizeof ka);
    if (p->which_value == 0) {
      snprintf(err, err_size, "property %s has no value", key);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(key, wire_key_text(&props[j], kb, sizeof kb)) == 0) {
        snprintf(err, err_size, "property key %s given twice", key);
        return DFNET_STATUS_INVALID_ARGUMENT;
      }
    }
  }
  return DFNET_STATUS_OK;
}

/* Is there a string key `key` among the wire properties? */
static bool has_str_key(const dfnet_v1_NodeProperty *props, size_t count, const char *key) {
  for (size_t j = 0; j < count; j++)
    if (props[j].which_key == dfnet_v1_NodeProperty_str_key_tag &&
        strcmp(props[j].key.str_key, key) == 0)
      return true;
  return false;
}

static size_t text_size(const char *s) { return s != NULL ? strlen(s) + 1 : 0; }

/* Copy a string into the block at *s and move past it (NULL stays NULL). */
static const char *keep(char **s, const char *text) {
  if (text == NULL)
    return NULL;
  const char *kept = strcpy(*s, text);
  *s += strlen(kept) + 1;
  return kept;
}

/* Build the property block: own properties (checked by topology__check_props), then a
 * derived one for each of n's offers (n->offers, built first) whose key is not already
 * present. */
static dfnet_status_t build_props(topology_node_t *n, const dfnet_v1_NodeProperty *props,
                                  size_t count) {
  size_t derived = 0, bytes = 0;
  for (size_t i = 0; i < count; i++) {
    topology_prop_t p;
    dfnet_property_from_wire(&props[i], &p);
    bytes += text_size(p.str_key) + text_size(p.str_value);
  }
  for (size_t i = 0; i < n->offer_count; i++) {
    if (!has_str_key(props, count, n->offers[i])) {
      derived++;
      bytes += 2 * strlen(n->offers[i]) + sizeof DERIVED_SUFFIX + 1;
    }
  }
  size_t total = count + derived;
  if (total == 0) {
    free(n->props);
    n->props = NULL;
    n->prop_count = n->derived_count = 0;
    return DFNET_STATUS_OK;
  }
  topology_prop_t *block = malloc(total * sizeof *block + bytes);
  if (block == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  char *s = (char *)(block + total);
  for (size_t i = 0; i < count; i++) {
    topology_prop_t *q = &block[i];
    dfnet_property_from_wire(&props[i], q); /* strings borrowed: kept in the block next */
    q->str_key = keep(&s, q->str_key);
    q->str_value = keep(&s, q->str_value);
  }
  size_t k = count;
  for (size_t i = 0; i < n->offer_count; i++) {
    if (has_str_key(props, count, n->offers[i]))
      continue;
    topology_prop_t *q = &block[k++];
    memset(q, 0, sizeof *q);
    q->str_key = keep(&s, n->offers[i]);
    q->type = DFNET_BIND_VALUE_STRING;
    q->str_value = s;
    s += sprintf(s, "%s%s", n->offers[i], DERIVED_SUFFIX) + 1;
  }
  free(n->props);
  n->props = block;
  n->prop_count = (uint8_t)total;
  n->derived_count = (uint8_t)derived;
  return DFNET_STATUS_OK;
}

/* Is offers[i] empty ("" = none on the wire) or one given before it? */
static bool offer_skipped(const char (*offers)[128], size_t i) {
  if (offers[i][0] == '\0')
    return true;
  for (size_t j = 0; j < i; j++)
    if (strncmp(offers[j], offers[i], 127) == 0)
      return true;
  return false;
}

/* The node's offers, each service once. */
static dfnet_status_t build_offers(topology_node_t *n, const char (*offers)[128], size_t count) {
  size_t bytes = 0, kept = 0;
  for (size_t i = 0; i < count; i++) {
    if (!offer_skipped(offers, i)) {
      bytes += strnlen(offers[i], 127) + 1;
      kept++;
    }
  }
  if (kept == 0) {
    free(n->offers);
    n->offers = NULL;
    n->offer_count = 0;
    return DFNET_STATUS_OK;
  }
  char **block = malloc(kept * sizeof(char *) + bytes);
  if (block == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  char *s = (char *)(block + kept);
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    if (offer_skipped(offers, i))
      continue;
    size_t len = strnlen(offers[i], 127);
    memcpy(s, offers[i], len);
    s[len] = '\0';
    block[k++] = s;
    s += len + 1;
  }
  free(n->offers);
  n->offers = block;
  n->offer_count = (uint8_t)kept;
  return DFNET_STATUS_OK;
}

static dfnet_status_t add_child(topology_node_t *parent, topology_node_t *child) {
  topology_node_t **p =
      dfnet_array_grow(parent->children, parent->child_count, &parent->child_cap, sizeof *p, 2);
  if (p == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  parent->children = p;
  parent->children[parent->child_count++] = child;
  return DFNET_STATUS_OK;
}

static void remove_child(topology_node_t *parent, const topology_node_t *child) {
  for (uint32_t i = 0; i < parent->child_count; i++) {
    if (parent->children[i] == child) {
      memmove(&parent->children[i], &parent->children[i + 1],
              (parent->child_count - i - 1) * sizeof *parent->children);
      parent->child_count--;
      return;
    }
  }
}

static dfnet_status_t assign_class(topology_t *t, topology_node_t *n, const char *class_name,
                                   char *err, size_t err_size) {
  if (class_name == NULL || class_name[0] == '\0')
    return DFNET_STATUS_OK;
  size_t len = strlen(class_name);
  for (size_t i = 0; i < len; i++) {
    char c = class_name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_') ||
        len > TOPOLOGY_CLASS_MAX) {
      snprintf(err, err_size, "class name '%s' is not 1..31 of [A-Za-z0-9_-]", class_name);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
  }
  char *name = strdup(class_name);
  if (name == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  uint32_t number;
  dfnet_status_t st = class_paths__assign(&t->classes, name, n->moniker, n, &number);
  if (st != DFNET_STATUS_OK) {
    free(name);
    snprintf(err, err_size, "no class path for %s in class %s: %s", n->moniker, class_name,
             dfnet_status_str(st));
    return st;
  }
  n->class_name = name;
  n->class_index = (int32_t)number;
  return DFNET_STATUS_OK;
}

static topology_node_t *node_new(topology_t *t, const char *parent_moniker, const char *name,
                                 char *err, size_t err_size, dfnet_status_t *st) {
  size_t plen = parent_moniker ? strlen(parent_moniker) + 1 : 0;
  size_t len = plen + strlen(name);
  if (len > TOPOLOGY_MONIKER_MAX) {
    snprintf(err, err_size, "moniker longer than %d bytes", TOPOLOGY_MONIKER_MAX);
    *st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    return NULL;
  }
  topology_node_t *n = calloc(1, sizeof *n);
  char *m = malloc(len + 1);
  if (n == NULL || m == NULL) {
    free(n);
    free(m);
    *st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    return NULL;
  }
  if (parent_moniker) {
    memcpy(m, parent_moniker, plen - 1);
    m[plen - 1] = '.';
  }
  memcpy(m + plen, name, len - plen + 1);
  if (topology__find(t, m) != NULL) {
    snprintf(err, err_size, "node %s already exists", m);
    free(m);
    free(n);
    *st = DFNET_STATUS_ALREADY_EXISTS;
    return NULL;
  }
  n->moniker = m;
  n->name_off = (uint16_t)plen;
  n->id = t->next_id++;
  n->class_index = -1;
  n->state = dfnet_v1_NodeState_UNBOUND;
  *st = DFNET_STATUS_OK;
  return n;
}

dfnet_status_t topology__add(topology_t *t, topology_node_t *parent,
                             const topology_add_args_t *args, topology_node_t **out, char *err,
                             size_t err_size) {
  const char *why;
  if (parent != NULL && !topology__name_valid(args->name, &why)) {
    snprintf(err, err_size, "%s", why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (args->offer_count > TOPOLOGY_OFFERS_MAX) {
    snprintf(err, err_size, "more than %d offers", TOPOLOGY_OFFERS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = topology__check_props(args->props, args->prop_count, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  topology_node_t *n = node_new(t, parent ? parent->moniker : NULL, args->name, err, err_size, &st);
  if (n == NULL)
    return st;
  n->owned = args->owned;
  n->host_id = args->host_id;
  if (args->owned)
    n->state = dfnet_v1_NodeState_OWNED_BY_PARENT;
  st = build_offers(n, args->offers, args->offer_count);
  if (st == DFNET_STATUS_OK)
    st = build_props(n, args->props, args->prop_count);
  if (st == DFNET_STATUS_OK)
    st = assign_class(t, n, args->class_name, err, err_size);
  if (st == DFNET_STATUS_OK && parent != NULL) {
    st = add_child(parent, n);
    n->parents[0] = parent;
    n->parent_count = 1;
  }
  if (st != DFNET_STATUS_OK) {
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED)
      snprintf(err, err_size, "out of memory");
    node_free(t, n);
    return st;
  }
  HASH_ADD_KEYPTR(hh, t->by_moniker, n->moniker, strlen(n->moniker), n);
  t->count++;
  *out = n;
  return DFNET_STATUS_OK;
}

dfnet_status_t topology__add_composite(topology_t *t, topology_node_t *const *parents,
                                       size_t parent_count, const char *name, uint32_t host_id,
                                       topology_node_t **out, char *err, size_t err_size) {
  const char *why;
  if (!topology__name_valid(name, &why)) {
    snprintf(err, err_size, "%s", why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (parent_count == 0 || parent_count > TOPOLOGY_PARENTS_MAX) {
    snprintf(err, err_size, "a composite has 1..%d parents", TOPOLOGY_PARENTS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st;
  topology_node_t *n = node_new(t, parents[0]->moniker, name, err, err_size, &st);
  if (n == NULL)
    return st;
  n->composite = true;
  n->host_id = host_id;
  size_t added = 0;
  for (; added < parent_count; added++) {
    if (add_child(parents[added], n) != DFNET_STATUS_OK)
      break;
    n->parents[added] = parents[added];
  }
  if (added < parent_count) {
    for (size_t i = 0; i < added; i++)
      remove_child(parents[i], n);
    node_free(t, n);
    snprintf(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  n->parent_count = (uint8_t)parent_count;
  HASH_ADD_KEYPTR(hh, t->by_moniker, n->moniker, strlen(n->moniker), n);
  t->count++;
  *out = n;
  return DFNET_STATUS_OK;
}

dfnet_status_t topology__update(topology_t *t, topology_node_t *n,
                                const dfnet_v1_NodeProperty *props, size_t prop_count,
                                const char (*offers)[128], size_t offer_count, char *err,
                                size_t err_size) {
  (void)t;
  if (offer_count > TOPOLOGY_OFFERS_MAX) {
    snprintf(err, err_size, "more than %d offers", TOPOLOGY_OFFERS_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = topology__check_props(props, prop_count, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  st = build_offers(n, offers, offer_count);
  if (st == DFNET_STATUS_OK)
    st = build_props(n, props, prop_count);
  if (st != DFNET_STATUS_OK)
    snprintf(err, err_size, "out of memory");
  return st;
}

void topology__remove(topology_t *t, topology_node_t *n) {
  for (uint8_t i = 0; i < n->parent_count; i++)
    remove_child(n->parents[i], n);
  /* Children left (a caller's bug) lose their link to n rather than dangle. */
  for (uint32_t i = 0; i < n->child_count; i++) {
    topology_node_t *c = n->children[i];
    for (uint8_t j = 0; j < c->parent_count; j++)
      if (c->parents[j] == n)
        c->parents[j] = NULL;
  }
  HASH_DEL(t->by_moniker, n);
  t->count--;
  node_free(t, n);
}

void topology__set_unbound(topology_node_t *n, dfnet_status_t code, const char *msg) {
  free(n->unbound_msg);
  n->unbound_msg = NULL;
  n->unbound_code = code;
  if (msg != NULL)
    n->unbound_msg = strdup(msg);
}

void topology__class_path(const topology_node_t *n, char *out, size_t out_size) {
  if (n->class_name == NULL) {
    if (out_size > 0)
      out[0] = '\0';
    return;
  }
  snprintf(out, out_size, "class/%s/%03d", n->class_name, (int)n->class_index);
}

topology_node_t *topology__find_class_path(const topology_t *t, const char *path) {
  if (path == NULL || strncmp(path, "class/", 6) != 0)
    return NULL;
  const char *cls = path + 6;
  const char *slash = strchr(cls, '/');
  if (slash == NULL)
    return NULL;
  char *end;
  long idx = strtol(slash + 1, &end, 10);
  if (end == slash + 1 || *end != '\0' || idx < 0 || idx > CLASS_PATHS_NUMBER_MAX)
    return NULL;
  return class_paths__find(t->classes, cls, (size_t)(slash - cls), (uint32_t)idx);
}

static int driver_host_cmp(const void *a, const void *b) {
  const topology_driver_host_t *x = a, *y = b;
  if (x->host != y->host)
    return x->host < y->host ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

void topology__sort_driver_hosts(topology_driver_host_t *dh, size_t count) {
  if (count > 1) /* qsort(NULL, 0, ...) is undefined */
    qsort(dh, count, sizeof *dh, driver_host_cmp);
}

uint32_t topology__count_driver_hosts(const topology_driver_host_t *dh, size_t count,
                                      uint32_t host) {
  uint32_t n = 0;
  for (size_t i = 0; i < count; i++)
    if ((host == 0 || dh[i].host == host) &&
        (i == 0 || dh[i].id == 0 || driver_host_cmp(&dh[i - 1], &dh[i]) != 0))
      n++;
  return n;
}

const char *topology__prop_key_name(const topology_prop_t *p, char *buf, size_t buf_size) {
  if (p->str_key != NULL)
    return p->str_key;
  const char *name = dfnet_bind_key_name(p->int_key);
  if (name != NULL)
    return name;
  snprintf(buf, buf_size, "0x%04x", (unsigned)p->int_key);
  return buf;
}

size_t topology__props_to_wire(const topology_node_t *n, dfnet_v1_NodeProperty *out, size_t max) {
  size_t count = n->prop_count < max ? n->prop_count : max;
  for (size_t i = 0; i < count; i++)
    dfnet_property_to_wire(&n->props[i], &out[i]); /* they fit: see the asserts above */
  return count;
}
