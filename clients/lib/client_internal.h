/* libdfnet-client internals shared by client.c (session, calls, streams, watch) and
 * query.c (the manager's list and control queries). Not installed. */
#ifndef DFNET_CLIENTS_LIB_CLIENT_INTERNAL_H
#define DFNET_CLIENTS_LIB_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/client.h"
#include "lib/envelope.h"
#include "lib/transport.h"

/* ---- arena: every list result is one arena (freed at once) ---- */
typedef struct client_arena_block {
  struct client_arena_block *next;
  size_t used, cap;
  max_align_t data[]; /* cap bytes */
} client_arena_block_t;

typedef struct client_arena {
  client_arena_block_t *head;
} client_arena_t;

void *client__arena_alloc(client_arena_t *a, size_t size);          /* zeroed; NULL = OOM */
const char *client__arena_strdup(client_arena_t *a, const char *s); /* NULL s -> "" */
const uint8_t *client__arena_memdup(client_arena_t *a, const uint8_t *p, size_t n);
void client__arena_free(client_arena_t *a);

/* ---- errors ---- */
dfnet_status_t client__fail(dfnet_client_error_t *err, dfnet_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the client ---- */
typedef struct client_op client_op_t;

struct dfnet_client {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t endpoint;
  uint32_t connect_timeout_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  dfnet_session_id_t session; /* welcomed session; 0 = none */
  dfnet_client_info_t info;
  dfnet_status_t hello_status; /* last Hello refusal (OK = none) */
  char hello_message[512];
  char url[256];                 /* the manager's URL, for messages */
  dfnet_status_t connect_status; /* last failed connection attempt (OK = none since open) */
  bool connect_retry_helps;
  char connect_message[512];
  client_op_t *ops; /* calls and watches in flight */
  uint64_t next_op_id;
  bool closing;
};

/* Wait (up to timeout_ms; 0 = the connect timeout) for a welcomed session. Not on the
 * client thread. OK + *sid; the status of a connection attempt that a retry cannot fix
 * (UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE for a name that does not resolve) at
 * once, with its reason; UNAVAILABLE after the timeout, with the last attempt's reason;
 * the Hello's refusal; CANCELLED when closing; FAILED_PRECONDITION on the client thread. */
dfnet_status_t client__session(dfnet_client_t *c, uint32_t timeout_ms, dfnet_session_id_t *sid,
                               dfnet_client_error_t *err);

/* The transport says session `sid` is gone (a request found it closed): forget it, so the
 * next request waits for the reconnect. */
void client__session_gone(dfnet_client_t *c, dfnet_session_id_t sid);

/* One request of the client API answered by a stream of items closed by a Status
 * (streaming = true) or by exactly one reply (streaming = false). on_item runs on the client
 * thread for each reply that is not a Status (the last one too, when unary) and returns OK
 * or a status that ends the query with it (RESOURCE_EXHAUSTED when out of memory). */
typedef dfnet_status_t (*client_item_fn)(void *ctx, const dfnet_envelope_t *env);

/* On OK, err (may be NULL) gets code OK and the message of the closing Status ("" when
 * the answer had none): e.g. "already registered URL" for a PackageUpload. */

dfnet_status_t client__query(dfnet_client_t *c, dfnet_envelope_t *req, bool streaming,
                             uint32_t deadline_ms, client_item_fn on_item, void *ctx,
                             dfnet_client_error_t *err);

/* Copy a (possibly not NUL-terminated-safe) string into a fixed wire field. INVALID_ARGUMENT
 * when it does not fit. */
dfnet_status_t client__copy_field(char *dst, size_t cap, const char *src, const char *what,
                                  dfnet_client_error_t *err);

#endif /* DFNET_CLIENTS_LIB_CLIENT_INTERNAL_H */
