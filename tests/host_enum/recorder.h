/* A thread-safe enumerator sink for the tests: records every event (copied) and lets
 * the test wait for them. */
#ifndef DFNET_TESTS_HOST_ENUM_RECORDER_H
#define DFNET_TESTS_HOST_ENUM_RECORDER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/enum/enum.h"

typedef enum rec_kind { REC_ADDED, REC_REMOVED, REC_UPDATED } rec_kind_t;

typedef struct rec_event {
  rec_kind_t kind;
  dfnet_v1_NodeAdd *node; /* REC_ADDED: a copy */
  char moniker[512];      /* relative: parent.name for REC_ADDED, as given otherwise */
} rec_event_t;

typedef struct recorder {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  rec_event_t *events;
  size_t count, cap;
  bool from_other_thread; /* some event arrived on a thread other than the creator's */
  pthread_t creator;
} recorder_t;

void recorder_init(recorder_t *r);
void recorder_free(recorder_t *r);
dfnet_enum_sink_t recorder_sink(recorder_t *r);

/* Wait until at least `count` events are recorded or timeout_ms passed (a hang guard,
 * not a timing assertion). Returns whether they are there. */
bool recorder_wait(recorder_t *r, size_t count, int timeout_ms);

/* Number of recorded events (locked read). */
size_t recorder_count(recorder_t *r);

/* The last NodeAdd recorded for the relative moniker, or NULL. */
const dfnet_v1_NodeAdd *recorder_added(recorder_t *r, const char *moniker);

/* How many events of `kind` name the moniker. */
size_t recorder_count_of(recorder_t *r, rec_kind_t kind, const char *moniker);

/* Property checks (cmocka assertions, naming the node and key on failure). */
void check_prop_int(const dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                    uint32_t value);
void check_prop_str(const dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                    const char *value);
void check_prop_bool(const dfnet_v1_NodeAdd *node, const char *str_key, bool value);
void check_prop_enum(const dfnet_v1_NodeAdd *node, const char *str_key, const char *value);
void check_prop_absent(const dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key);

#endif
