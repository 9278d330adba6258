/* dfnet-manager: its metrics and GET /metrics (issue 24 item 4; docs/metrics.md).
 *
 * Counters and histograms are counted where the event already is (an increment beside it:
 * sessions.c, binder.c, crash_policy.c, handle_call.c, lease_queue.c, hosts.c); what is state
 * (hosts, sessions, nodes by state, calls in flight, leases) is counted at scrape time from
 * the manager's own records, so that it can never drift from them. Everything runs on the
 * service thread (manager.h), so the registry (lib/metrics.h) needs no lock.
 *
 * Served on the manager's TLS listener (a viewer, operator or admin certificate: Prometheus
 * scrapes with a client certificate) and, with --metrics-listen, on a plain HTTP listener
 * without authentication (bind it to loopback).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/metrics_http.h"
#include "lib/role.h"
#include "lib/version.h"
#include "manager/lease.h"
#include "manager/manager.h"

struct mgr_metrics {
  dfnet_metrics_t *reg;
  /* state, counted at scrape time */
  dfnet_metric_t *hosts, *sessions, *nodes, *calls_in_flight, *watch_streams, *leases_held,
      *leases_queued, *lease_holder;
  /* events */
  dfnet_metric_t *binds, *bind_failures, *crashes, *quarantines, *calls, *call_seconds,
      *relayed_bytes, *lease_wait, *handshakes, *cert_expiry, *scrapes;
  dfnet_metric_series_t *binds_ok, *bytes_request, *bytes_reply;
};

/* Lease waits: 10 ms .. 1 h. */
static const double k_wait_buckets[] = {0.01, 0.1, 1, 5, 15, 60, 300, 900, 1800, 3600};

/* The families, in the order they render. */
static bool add_all(mgr_metrics_t *x) {
  dfnet_metrics_t *r = x->reg;
  bool ok =
      dfnet_metrics_add_process(r, "the manager", dfnet_version()) &&
      DFNET_METRICS_ADD(r, x->hosts, GAUGE, "dfnet_hosts",
                        "hosts known: online, or offline within their grace period", "state") &&
      DFNET_METRICS_ADD(r, x->sessions, GAUGE, "dfnet_sessions",
                        "open sessions by kind and certificate role", "kind", "role") &&
      DFNET_METRICS_ADD(r, x->nodes, GAUGE, "dfnet_nodes", "nodes of the topology by state",
                        "state") &&
      DFNET_METRICS_ADD(r, x->binds, COUNTER, "dfnet_binds_total",
                        "drivers started on a node (bound)", NULL) &&
      DFNET_METRICS_ADD(r, x->bind_failures, COUNTER, "dfnet_bind_failures_total",
                        "driver starts that failed, by status code", "code") &&
      DFNET_METRICS_ADD(r, x->crashes, COUNTER, "dfnet_driver_crashes_total",
                        "drivers whose driver host exited while they ran, by driver URL",
                        "driver") &&
      DFNET_METRICS_ADD(r, x->quarantines, COUNTER, "dfnet_driver_quarantines_total",
                        "nodes quarantined after too many crashes of their driver, by driver URL",
                        "driver") &&
      DFNET_METRICS_ADD(r, x->calls, COUNTER, "dfnet_calls_total",
                        "calls to drivers ended, by method and final status code", "method",
                        "code") &&
      (x->call_seconds = dfnet_metrics_add(
           r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_HISTOGRAM,
                                     .name = "dfnet_call_duration_seconds",
                                     .help = "time from a call's arrival to its final reply, "
                                             "by method",
                                     .labels = {"method"},
                                     .buckets = dfnet_metrics_latency_buckets,
                                     .bucket_count = DFNET_METRICS_LATENCY_BUCKET_COUNT})) !=
          NULL &&
      DFNET_METRICS_ADD(r, x->calls_in_flight, GAUGE, "dfnet_calls_in_flight",
                        "calls forwarded to a driver and not ended yet", NULL) &&
      DFNET_METRICS_ADD(r, x->watch_streams, GAUGE, "dfnet_watch_streams_open",
                        "sessions with a Watch open", NULL) &&
      DFNET_METRICS_ADD(r, x->relayed_bytes, COUNTER, "dfnet_relayed_bytes_total",
                        "call payload bytes relayed: request (caller to driver) and reply",
                        "direction") &&
      DFNET_METRICS_ADD(r, x->leases_held, GAUGE, "dfnet_leases_held", "leases held", NULL) &&
      DFNET_METRICS_ADD(r, x->leases_queued, GAUGE, "dfnet_lease_requests_queued",
                        "lease requests waiting in the queue", NULL) &&
      (x->lease_wait = dfnet_metrics_add(
           r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_HISTOGRAM,
                                     .name = "dfnet_lease_wait_seconds",
                                     .help = "how long a queued lease request waited until "
                                             "granted",
                                     .buckets = k_wait_buckets,
                                     .bucket_count = sizeof k_wait_buckets /
                                                     sizeof k_wait_buckets[0]})) != NULL &&
      DFNET_METRICS_ADD(r, x->lease_holder, GAUGE, "dfnet_lease_holder",
                        "1 for each target of a held lease, with its holder", "target", "holder") &&
      DFNET_METRICS_ADD(r, x->handshakes, COUNTER, "dfnet_tls_handshakes_total",
                        "sessions opened, by subprotocol and TLS handshake kind (full or resumed)",
                        "subprotocol", "kind") &&
      DFNET_METRICS_ADD(
          r, x->cert_expiry, GAUGE, "dfnet_host_cert_expiry_timestamp_seconds",
          "notAfter of the certificate each host last connected with, Unix time in seconds",
          "host") &&
      DFNET_METRICS_ADD(r, x->scrapes, COUNTER, "dfnet_metrics_scrapes_total",
                        "GET /metrics answered", NULL);
  if (!ok)
    return false;
  x->binds_ok = dfnet_metric_series(x->binds, NULL);
  x->bytes_request = dfnet_metric_series(x->relayed_bytes, (const char *[]){"request"});
  x->bytes_reply = dfnet_metric_series(x->relayed_bytes, (const char *[]){"reply"});
  return true;
}

dfnet_status_t metrics__init(mgr_t *m) {
  mgr_metrics_t *x = calloc(1, sizeof *x);
  if (x == NULL || dfnet_metrics_create(&x->reg) != DFNET_STATUS_OK || !add_all(x)) {
    if (x != NULL)
      dfnet_metrics_destroy(x->reg);
    free(x);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  m->metrics = x;
  return DFNET_STATUS_OK;
}

void metrics__destroy(mgr_t *m) {
  if (m->metrics == NULL)
    return;
  dfnet_metrics_destroy(m->metrics->reg);
  free(m->metrics);
  m->metrics = NULL;
}

/* ---- events (each a no-op before metrics__init) --------------------------------------- */

void metrics__session_open(mgr_t *m, const dfnet_session_info_t *info) {
  mgr_metrics_t *x = m->metrics;
  if (x == NULL)
    return;
  const char *sub = strcmp(info->subprotocol, DFNET_SUBPROTOCOL_HOST) == 0     ? "host"
                    : strcmp(info->subprotocol, DFNET_SUBPROTOCOL_ENROLL) == 0 ? "enroll"
                                                                               : "client";
  dfnet_metric_add(x->handshakes, (const char *[]){sub, info->tls_resumed ? "resumed" : "full"}, 1);
  if (strcmp(sub, "host") == 0 && info->peer_name != NULL && info->not_after > 0)
    dfnet_metric_set(x->cert_expiry, (const char *[]){info->peer_name}, (double)info->not_after);
}

void metrics__host_gone(mgr_t *m, const char *host) {
  if (m->metrics != NULL)
    dfnet_metric_remove(m->metrics->cert_expiry, (const char *[]){host});
}

void metrics__bind(mgr_t *m, dfnet_status_t code) {
  mgr_metrics_t *x = m->metrics;
  if (x == NULL)
    return;
  if (code == DFNET_STATUS_OK)
    dfnet_metric_series_add(x->binds_ok, 1);
  else
    dfnet_metric_add(x->bind_failures, (const char *[]){dfnet_status_str(code)}, 1);
}

void metrics__driver_crash(mgr_t *m, const char *driver_url, bool quarantined) {
  mgr_metrics_t *x = m->metrics;
  if (x == NULL)
    return;
  const char *v[] = {driver_url ? driver_url : ""};
  dfnet_metric_add(quarantined ? x->quarantines : x->crashes, v, 1);
}

void metrics__call_end(mgr_t *m, const char *method, dfnet_status_t code, uint64_t started_ms) {
  mgr_metrics_t *x = m->metrics;
  if (x == NULL)
    return;
  dfnet_metric_add(x->calls, (const char *[]){method, dfnet_status_str(code)}, 1);
  uint64_t now = dfnet_transport_now_ms();
  double secs = started_ms != 0 && now >= started_ms ? (double)(now - started_ms) / 1000.0 : 0;
  dfnet_metric_observe(x->call_seconds, (const char *[]){method}, secs);
}

void metrics__relayed(mgr_t *m, bool reply, size_t bytes) {
  if (m->metrics != NULL)
    dfnet_metric_series_add(reply ? m->metrics->bytes_reply : m->metrics->bytes_request,
                            (double)bytes);
}

void metrics__lease_waited(mgr_t *m, uint64_t waited_ms) {
  if (m->metrics != NULL)
    dfnet_metric_observe(m->metrics->lease_wait, NULL, (double)waited_ms / 1000.0);
}

/* ---- scrape --------------------------------------------------------------------------- */

/* Nodes by state, in the order they render; node_state() gives the index. */
static const char *const k_node_states[] = {
    "unspecified",        "unbound",     "bound",   "owned_by_parent",
    "owned_by_composite", "quarantined", "starting"};
enum { NODE_STATES = sizeof k_node_states / sizeof k_node_states[0], NODE_STARTING = 6 };

static size_t node_state(const topology_node_t *n) {
  _Static_assert(dfnet_v1_NodeState_UNBOUND == 1 && dfnet_v1_NodeState_BOUND == 2 &&
                     dfnet_v1_NodeState_OWNED_BY_PARENT == 3 &&
                     dfnet_v1_NodeState_OWNED_BY_COMPOSITE == 4 &&
                     dfnet_v1_NodeState_QUARANTINED == 5 &&
                     (int)dfnet_v1_NodeState_NODE_STARTING == (int)NODE_STARTING,
                 "k_node_states follows dfnet.v1.NodeState");
  if (n->starting)
    return NODE_STARTING;
  return n->state < NODE_STATES ? n->state : 0;
}

/* Nodes by state: one pass over the topology into counters per state, then one series
 * each; every state is rendered, 0 or not. The pass is bound by memory latency (a node is
 * a cache miss away from the one before it in a list walk: 16 ms at 100,000 nodes), so it
 * walks the hash table's bucket chains instead, LANES of them interleaved, prefetching the
 * next node of each: the misses overlap (bench/metrics_scrape). */
static void count_nodes(mgr_t *m, mgr_metrics_t *x) {
  enum { LANES = 32 };
  uint64_t counts[NODE_STATES] = {0};
  const UT_hash_table *tbl = m->topo.by_moniker != NULL ? m->topo.by_moniker->hh.tbl : NULL;
  const UT_hash_handle *lane[LANES] = {0};
  unsigned bucket = 0;
  for (bool live = tbl != NULL; live;) {
    live = false;
    for (size_t l = 0; l < LANES; l++) {
      while (lane[l] == NULL && bucket < tbl->num_buckets)
        lane[l] = tbl->buckets[bucket++].hh_head;
      if (lane[l] == NULL)
        continue;
      live = true;
      const topology_node_t *n = ELMT_FROM_HH(tbl, lane[l]);
      counts[node_state(n)]++;
      lane[l] = lane[l]->hh_next;
      if (lane[l] != NULL) {
        const char *next = ELMT_FROM_HH(tbl, lane[l]);
        __builtin_prefetch(next);
        __builtin_prefetch(next + offsetof(topology_node_t, state));
      }
    }
  }
  for (size_t i = 0; i < NODE_STATES; i++)
    dfnet_metric_set(x->nodes, (const char *[]){k_node_states[i]}, (double)counts[i]);
}

static void count_state(mgr_t *m, mgr_metrics_t *x) {
  uint64_t online = 0, offline = 0;
  for (const mgr_host_t *h = m->hosts; h != NULL; h = h->hh.next)
    *(h->session != 0 ? &online : &offline) += 1;
  dfnet_metric_set(x->hosts, (const char *[]){"online"}, (double)online);
  dfnet_metric_set(x->hosts, (const char *[]){"offline"}, (double)offline);

  dfnet_metric_clear(x->sessions);
  uint64_t in_flight = 0;
  for (const mgr_session_t *s = m->sessions; s != NULL; s = s->hh.next) {
    const dfnet_role_t *role = dfnet_role_by_wire(s->role);
    const char *kind = s->kind == SESSION_HOST     ? "host"
                       : s->kind == SESSION_ENROLL ? "enroll"
                                                   : "client";
    dfnet_metric_add(x->sessions, (const char *[]){kind, role ? role->name : "none"}, 1);
    in_flight += s->calls;
  }
  dfnet_metric_set(x->calls_in_flight, NULL, (double)in_flight);
  dfnet_metric_set(x->watch_streams, NULL, (double)m->watchers);
  count_nodes(m, x);

  dfnet_metric_clear(x->lease_holder);
  uint64_t held = 0;
  if (m->leases != NULL) {
    for (const mgr_lease_t *l = m->leases->by_id; l != NULL; l = l->hh.next, held++)
      for (size_t i = 0; i < l->target_count; i++)
        dfnet_metric_set(x->lease_holder, (const char *[]){l->targets[i], l->holder}, 1);
    dfnet_metric_set(x->leases_queued, NULL, (double)m->leases->queue_len);
  }
  dfnet_metric_set(x->leases_held, NULL, (double)held);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static bool answer_text(dfnet_http_response_t *resp, unsigned status, const char *text) {
  *resp = (dfnet_http_response_t){.status = status, .body = strdup(text)};
  resp->body_len = resp->body ? strlen(resp->body) : 0;
  return true;
}

/* refresh of dfnet_metrics_http_answer: a scrape, the state counted now. */
static void refresh(void *arg) {
  mgr_t *m = arg;
  dfnet_metric_add(m->metrics->scrapes, NULL, 1);
  count_state(m, m->metrics);
}

/* GET or HEAD /metrics, with the caller's authority already checked. */
static bool answer_metrics(mgr_t *m, const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  return dfnet_metrics_http_answer(m->metrics ? m->metrics->reg : NULL, refresh, m, req, resp);
}

bool metrics__on_http(void *user, const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  mgr_t *m = user;
  if (req->peer_name == NULL || req->role == dfnet_v1_Role_ROLE_UNSPECIFIED)
    return answer_text(resp, 401,
                       "unauthenticated: no valid client certificate; /metrics needs a viewer, "
                       "operator or admin certificate of this fleet's CA\n");
  if (!dfnet_role_allows(req->role, dfnet_v1_Role_VIEWER))
    return answer_text(resp, 403,
                       "permission denied: a host certificate cannot read /metrics; use a "
                       "viewer, operator or admin certificate\n");
  return answer_metrics(m, req, resp);
}

bool metrics__on_http_plain(void *user, const dfnet_http_request_t *req,
                            dfnet_http_response_t *resp) {
  return answer_metrics(user, req, resp);
}

int metrics__listen(mgr_t *m) {
  if (m->cfg.metrics_address == NULL)
    return 0;
  dfnet_http_server_config_t hc = {.bind_address = m->cfg.metrics_address,
                                   .port = m->cfg.metrics_port,
                                   .on_http = metrics__on_http_plain,
                                   .user = m};
  uint16_t port = 0;
  dfnet_status_t st = dfnet_transport_listen_http(m->transport, &hc, NULL, &port);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: cannot listen on %s:%u for metrics: %s\n",
            m->cfg.metrics_address, (unsigned)m->cfg.metrics_port, dfnet_status_str(st));
    return 1;
  }
  printf("dfnet-manager: metrics on %s:%u\n", m->cfg.metrics_address, (unsigned)port);
  fflush(stdout);
  return 0;
}
