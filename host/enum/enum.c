/* The enumerator core: the wrappers around the backends' ops (the only place that calls
 * them; docs/style.md 5) and the NodeAdd property helpers. See enum.h. */
#include "host/enum/enum.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

struct dfnet_enum {
  const dfnet_enum_ops_t *ops;
  dfnet_enum_sink_t sink;
  bool started; /* start() was called (successfully or not) */
  bool running; /* start() succeeded and stop() has not run */
  /* backend state follows, aligned */
  max_align_t priv[];
};

dfnet_enum_t *enum__new(const dfnet_enum_ops_t *ops) {
  dfnet_enum_t *e = calloc(1, sizeof(*e) + ops->priv_size);
  if (e == NULL) {
    DFNET_LOGE(ops->name, NULL, "out of memory creating the enumerator");
    return NULL;
  }
  e->ops = ops;
  return e;
}

void *enum__priv(dfnet_enum_t *e) { return e->priv; }

const void *enum__priv_const(const dfnet_enum_t *e) { return e->priv; }

const char *dfnet_enum_name(const dfnet_enum_t *e) { return e->ops->name; }

dfnet_status_t dfnet_enum_start(dfnet_enum_t *e, const dfnet_enum_sink_t *sink) {
  if (sink == NULL || sink->node_added == NULL || sink->node_removed == NULL) {
    DFNET_LOGE(e->ops->name, NULL, "start: the sink needs node_added and node_removed");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (e->started) {
    DFNET_LOGE(e->ops->name, NULL, "start: already started (an enumerator starts once)");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  e->started = true;
  e->sink = *sink;
  e->running = true; /* backends may report from start() */
  dfnet_status_t status = e->ops->start(e);
  if (status != DFNET_STATUS_OK) {
    e->running = false;
  }
  return status;
}

void dfnet_enum_stop(dfnet_enum_t *e) {
  if (e == NULL || !e->running) {
    return;
  }
  if (e->ops->stop != NULL) {
    e->ops->stop(e);
  }
  e->running = false;
}

void dfnet_enum_destroy(dfnet_enum_t *e) {
  if (e == NULL) {
    return;
  }
  dfnet_enum_stop(e);
  if (e->ops->destroy != NULL) {
    e->ops->destroy(e);
  }
  free(e);
}

void enum__node_added(dfnet_enum_t *e, const dfnet_v1_NodeAdd *node) {
  if (e->running) {
    e->sink.node_added(e->sink.ctx, node);
  }
}

void enum__node_removed(dfnet_enum_t *e, const char *moniker) {
  if (e->running) {
    e->sink.node_removed(e->sink.ctx, moniker);
  }
}

void enum__node_updated(dfnet_enum_t *e, const dfnet_v1_NodeUpdate *update) {
  if (e->running && e->sink.node_updated != NULL) {
    e->sink.node_updated(e->sink.ctx, update);
  }
}

dfnet_status_t enum__publish_bus(dfnet_enum_t *e, const char *name) {
  dfnet_v1_NodeAdd *node = malloc(sizeof(*node));
  if (node == NULL) {
    DFNET_LOGE(e->ops->name, name, "out of memory publishing the bus node");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  dfnet_status_t status = enum__node_init(node, "", name);
  if (status == DFNET_STATUS_OK) {
    node->owned = true;
    enum__node_added(e, node);
  }
  free(node);
  return status;
}

/* Copy src into dst[cap] when it fits (with its NUL). */
static bool copy_bounded(char *dst, size_t cap, const char *src) {
  size_t len = strlen(src);
  if (len >= cap) {
    return false;
  }
  memcpy(dst, src, len + 1);
  return true;
}

dfnet_status_t enum__node_init(dfnet_v1_NodeAdd *node, const char *parent, const char *name) {
  memset(node, 0, sizeof(*node));
  if (!copy_bounded(node->parent, sizeof(node->parent), parent) ||
      !copy_bounded(node->name, sizeof(node->name), name) || name[0] == '\0' ||
      strchr(name, '.') != NULL) {
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  return DFNET_STATUS_OK;
}

const dfnet_v1_NodeProperty *dfnet_enum_prop_find(const dfnet_v1_NodeAdd *node, uint32_t int_key,
                                                  const char *str_key) {
  for (pb_size_t i = 0; i < node->properties_count; i++) {
    const dfnet_v1_NodeProperty *p = &node->properties[i];
    if (int_key != 0) {
      if (p->which_key == dfnet_v1_NodeProperty_int_key_tag && p->key.int_key == int_key) {
        return p;
      }
    } else if (str_key != NULL && p->which_key == dfnet_v1_NodeProperty_str_key_tag &&
               strcmp(p->key.str_key, str_key) == 0) {
      return p;
    }
  }
  return NULL;
}

/* The next free property with its key set, or an error status in *status. */
static dfnet_v1_NodeProperty *prop_append(dfnet_v1_NodeAdd *node, uint32_t int_key,
                                          const char *str_key, dfnet_status_t *status) {
  if (int_key == 0 && (str_key == NULL || str_key[0] == '\0')) {
    *status = DFNET_STATUS_INVALID_ARGUMENT;
    return NULL;
  }
  if (dfnet_enum_prop_find(node, int_key, str_key) != NULL) {
    *status = DFNET_STATUS_ALREADY_EXISTS;
    return NULL;
  }
  if (node->properties_count >= sizeof(node->properties) / sizeof(node->properties[0])) {
    *status = DFNET_STATUS_RESOURCE_EXHAUSTED;
    return NULL;
  }
  dfnet_v1_NodeProperty *p = &node->properties[node->properties_count];
  memset(p, 0, sizeof(*p));
  if (int_key != 0) {
    p->which_key = dfnet_v1_NodeProperty_int_key_tag;
    p->key.int_key = int_key;
  } else {
    if (!copy_bounded(p->key.str_key, sizeof(p->key.str_key), str_key)) {
      *status = DFNET_STATUS_INVALID_ARGUMENT;
      return NULL;
    }
    p->which_key = dfnet_v1_NodeProperty_str_key_tag;
  }
  *status = DFNET_STATUS_OK;
  return p;
}

/* Append a property with its key and a value of type `tag`: `number` for an int or bool,
 * `text` for a string or enum (string and enum values share the union's storage size). */
static dfnet_status_t prop_add(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                               pb_size_t tag, uint32_t number, const char *text) {
  bool is_text =
      tag == dfnet_v1_NodeProperty_str_value_tag || tag == dfnet_v1_NodeProperty_enum_value_tag;
  if (is_text && text == NULL) {
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t status;
  dfnet_v1_NodeProperty *p = prop_append(node, int_key, str_key, &status);
  if (p == NULL) {
    return status;
  }
  if (tag == dfnet_v1_NodeProperty_int_value_tag) {
    p->value.int_value = number;
  } else if (tag == dfnet_v1_NodeProperty_bool_value_tag) {
    p->value.bool_value = number != 0;
  } else {
    char *dst =
        tag == dfnet_v1_NodeProperty_str_value_tag ? p->value.str_value : p->value.enum_value;
    if (!copy_bounded(dst, sizeof(p->value.str_value), text)) {
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
  }
  p->which_value = tag;
  node->properties_count++;
  return DFNET_STATUS_OK;
}

dfnet_status_t enum__prop_int(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                              uint32_t value) {
  return prop_add(node, int_key, str_key, dfnet_v1_NodeProperty_int_value_tag, value, NULL);
}

dfnet_status_t enum__prop_bool(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                               bool value) {
  return prop_add(node, int_key, str_key, dfnet_v1_NodeProperty_bool_value_tag, value ? 1u : 0u,
                  NULL);
}

dfnet_status_t enum__prop_str(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                              const char *value) {
  return prop_add(node, int_key, str_key, dfnet_v1_NodeProperty_str_value_tag, 0, value);
}

dfnet_status_t enum__prop_enum(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                               const char *value) {
  return prop_add(node, int_key, str_key, dfnet_v1_NodeProperty_enum_value_tag, 0, value);
}
