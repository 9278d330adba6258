/* A scripted manager-side peer for the host agent's tests: the REAL transport server
 * (lib/transport.h) on loopback with real certificates, answering the host session
 * protocol (docs/architecture.md "Host session protocol (dfnet.host.v1)") the way the
 * manager does, and recording every envelope the agent sends.
 *
 *   Hello            -> Welcome{name: the certificate's CN}
 *   NodeAdd/Remove   -> Status OK (or peer->node_add_code)
 *   PackageFetch     -> PackageChunk of the packages given to peer_add_package, in chunks
 *                       of at most PEER_CHUNK bytes; unknown digest -> Status NOT_FOUND
 *   Call             -> with peer->answer_calls and a method ending in "/Echo" (a driver's
 *                       call the agent sends up, as the manager would route it): Reply OK
 *                       "manager:<payload>;caller=<caller>;url=<caller_driver_url>";
 *                       else recorded only
 *   anything else    -> recorded only
 *
 * The test thread waits on the record (peer_wait) and sends requests with
 * dfnet_transport_request_sync on peer->t.
 */
#ifndef DFNET_TESTS_HOST_AGENT_PEER_H
#define DFNET_TESTS_HOST_AGENT_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/v1/envelope.pb.h"
#include "lib/envelope.h"
#include "lib/transport.h"

#define PEER_CHUNK (16u * 1024u)

/* One envelope the agent sent. */
typedef struct peer_rec {
  pb_size_t which;
  uint64_t id;
  dfnet_session_id_t session;
  size_t session_index; /* 1 for the first session the peer saw, 2 for the next ... */
  union {
    dfnet_v1_Hello hello;
    dfnet_v1_NodeAdd node_add;
    dfnet_v1_NodeRemove node_remove;
    dfnet_v1_DriverHostExit driver_host_exit;
    dfnet_v1_PackageFetch package_fetch;
    dfnet_v1_Call call;
    dfnet_v1_Cancel cancel;
  } m;
  uint8_t bulk[256]; /* the first bytes of the bulk */
  size_t bulk_len;
} peer_rec_t;

typedef struct peer_pkg {
  uint8_t digest[32];
  uint8_t *data;
  size_t size;
} peer_pkg_t;

typedef struct peer {
  dfnet_transport_t *t;
  uint16_t port;
  char cert[512], key[512], ca[512];

  pthread_mutex_t mu;
  pthread_cond_t cv;
  peer_rec_t **recs;
  size_t rec_count, rec_cap;
  dfnet_session_id_t session; /* the open session, 0 when none */
  size_t sessions_opened, sessions_closed;
  size_t fetches; /* PackageFetch requests served or refused */
  dfnet_status_t node_add_code;
  bool answer_calls; /* answer the agent's Calls to .../Echo (see above) */
  peer_pkg_t pkgs[8];
  size_t pkg_count;
} peer_t;

/* Initialise (mutex, cv, certificate paths). */
void peer_init(peer_t *p, const char *cert, const char *key, const char *ca);

/* Listen on 127.0.0.1:port (0: ephemeral; p->port gets it) and start the service thread.
 * Returns 0 or -1. */
int peer_start(peer_t *p, uint16_t port);

/* Destroy the transport (closes every session). The record is kept. */
void peer_stop(peer_t *p);

/* Free the record and packages. */
void peer_free(peer_t *p);

/* Serve this package on PackageFetch (data copied). */
void peer_add_package(peer_t *p, const uint8_t digest[32], const uint8_t *data, size_t size);

/* Wait until a record of kind `which` at index >= *from satisfies pred (NULL: any);
 * returns its index and moves *from past it, or -1 after timeout_ms. */
typedef bool (*peer_pred_fn)(const peer_rec_t *r, const void *arg);
long peer_wait(peer_t *p, pb_size_t which, peer_pred_fn pred, const void *arg, size_t *from,
               uint32_t timeout_ms);

/* Wait until a session is open (returns it) or 0 after timeout_ms. With `after`, a session
 * other than `after`. */
dfnet_session_id_t peer_wait_session(peer_t *p, dfnet_session_id_t after, uint32_t timeout_ms);

/* A copy of record i (under the lock). false when out of range. */
bool peer_get(peer_t *p, size_t i, peer_rec_t *out);

size_t peer_count(peer_t *p);
size_t peer_fetches(peer_t *p);

/* Predicate: a NodeAdd whose moniker (parent.name) equals arg. */
bool peer_is_node(const peer_rec_t *r, const void *moniker);

#endif
