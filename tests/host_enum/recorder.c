/* See recorder.h. */
#include "recorder.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static void record(recorder_t *r, rec_event_t ev) {
  pthread_mutex_lock(&r->lock);
  if (!pthread_equal(pthread_self(), r->creator)) {
    r->from_other_thread = true;
  }
  if (r->count == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 32;
    rec_event_t *grown = realloc(r->events, cap * sizeof(*grown));
    assert_non_null(grown);
    r->events = grown;
    r->cap = cap;
  }
  r->events[r->count++] = ev;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

static void on_added(void *ctx, const dfnet_v1_NodeAdd *node) {
  rec_event_t ev = {.kind = REC_ADDED};
  ev.node = malloc(sizeof(*node));
  assert_non_null(ev.node);
  memcpy(ev.node, node, sizeof(*node));
  if (node->parent[0] == '\0') {
    snprintf(ev.moniker, sizeof(ev.moniker), "%s", node->name);
  } else {
    snprintf(ev.moniker, sizeof(ev.moniker), "%.300s.%s", node->parent, node->name);
  }
  record(ctx, ev);
}

static void on_removed(void *ctx, const char *moniker) {
  rec_event_t ev = {.kind = REC_REMOVED};
  snprintf(ev.moniker, sizeof(ev.moniker), "%s", moniker);
  record(ctx, ev);
}

static void on_updated(void *ctx, const dfnet_v1_NodeUpdate *update) {
  rec_event_t ev = {.kind = REC_UPDATED};
  snprintf(ev.moniker, sizeof(ev.moniker), "%s", update->moniker);
  record(ctx, ev);
}

void recorder_init(recorder_t *r) {
  memset(r, 0, sizeof(*r));
  pthread_mutex_init(&r->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cond, &attr);
  pthread_condattr_destroy(&attr);
  r->creator = pthread_self();
}

void recorder_free(recorder_t *r) {
  for (size_t i = 0; i < r->count; i++) {
    free(r->events[i].node);
  }
  free(r->events);
  pthread_cond_destroy(&r->cond);
  pthread_mutex_destroy(&r->lock);
  memset(r, 0, sizeof(*r));
}

dfnet_enum_sink_t recorder_sink(recorder_t *r) {
  return (dfnet_enum_sink_t){
      .node_added = on_added, .node_removed = on_removed, .node_updated = on_updated, .ctx = r};
}

bool recorder_wait(recorder_t *r, size_t count, int timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->lock);
  while (r->count < count) {
    if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != 0) {
      break;
    }
  }
  bool ok = r->count >= count;
  pthread_mutex_unlock(&r->lock);
  return ok;
}

size_t recorder_count(recorder_t *r) {
  pthread_mutex_lock(&r->lock);
  size_t n = r->count;
  pthread_mutex_unlock(&r->lock);
  return n;
}

const dfnet_v1_NodeAdd *recorder_added(recorder_t *r, const char *moniker) {
  const dfnet_v1_NodeAdd *found = NULL;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->count; i++) {
    if (r->events[i].kind == REC_ADDED && strcmp(r->events[i].moniker, moniker) == 0) {
      found = r->events[i].node;
    }
  }
  pthread_mutex_unlock(&r->lock);
  return found;
}

size_t recorder_count_of(recorder_t *r, rec_kind_t kind, const char *moniker) {
  size_t n = 0;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->count; i++) {
    if (r->events[i].kind == kind && strcmp(r->events[i].moniker, moniker) == 0) {
      n++;
    }
  }
  pthread_mutex_unlock(&r->lock);
  return n;
}

static const dfnet_v1_NodeProperty *must_find(const dfnet_v1_NodeAdd *node, uint32_t int_key,
                                              const char *str_key) {
  assert_non_null(node);
  const dfnet_v1_NodeProperty *p = dfnet_enum_prop_find(node, int_key, str_key);
  if (p == NULL) {
    fail_msg("node %s.%s: no property %s (0x%x)", node->parent, node->name, str_key ? str_key : "",
             int_key);
  }
  return p;
}

void check_prop_int(const dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                    uint32_t value) {
  const dfnet_v1_NodeProperty *p = must_find(node, int_key, str_key);
  if (p->which_value != dfnet_v1_NodeProperty_int_value_tag || p->value.int_value != value) {
    fail_msg("node %s.%s: property %s (0x%x): want int 0x%x, got which=%u int=0x%x", node->parent,
             node->name, str_key ? str_key : "", int_key, value, (unsigned)p->which_value,
             p->value.int_value);
  }
}

void check_prop_str(const dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                    const char *value) {
  const dfnet_v1_NodeProperty *p = must_find(node, int_key, str_key);
  if (p->which_value != dfnet_v1_NodeProperty_str_value_tag ||
      strcmp(p->value.str_value, value) != 0) {
    fail_msg("node %s.%s: property %s: want string \"%s\", got which=%u \"%s\"", node->parent,
             node->name, str_key ? str_key : "", value, (unsigned)p->which_value,
             p->value.str_value);
  }
}

void check_prop_bool(const dfnet_v1_NodeAdd *node, const char *str_key, bool value) {
  const dfnet_v1_NodeProperty *p = must_find(node, 0, str_key);
  assert_int_equal(p->which_value, dfnet_v1_NodeProperty_bool_value_tag);
  assert_int_equal(p->value.bool_value, value);
}

void check_prop_enum(const dfnet_v1_NodeAdd *node, const char *str_key, const char *value) {
  const dfnet_v1_NodeProperty *p = must_find(node, 0, str_key);
  assert_int_equal(p->which_value, dfnet_v1_NodeProperty_enum_value_tag);
  assert_string_equal(p->value.enum_value, value);
}

void check_prop_absent(const dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key) {
  assert_non_null(node);
  if (dfnet_enum_prop_find(node, int_key, str_key) != NULL) {
    fail_msg("node %s.%s: property %s (0x%x) should be absent", node->parent, node->name,
             str_key ? str_key : "", int_key);
  }
}
