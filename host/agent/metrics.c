/* dfnet-host: its metrics on --metrics-listen (issue 24 item 4; docs/metrics.md).
 *
 * Threads: every hook runs on the transport's service thread, as everything of agent.h
 * (session callbacks, the supervisor's events, which the transport's watched fd delivers
 * there, and the HTTP request), so the registry (lib/metrics.h) needs no lock. The
 * enumerators' threads touch no metric: their events reach the node table through the
 * queue, on the service thread. What is state (connected, nodes published, driver hosts,
 * this host's certificate expiry) is read at scrape time from the agent's own records.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "host/agent/agent.h"
#include "lib/cmdline.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/metrics_http.h"
#include "lib/pki.h"
#include "lib/version.h"

struct agent_metrics {
  dfnet_metrics_t *reg;
  dfnet_metric_t *connected, *nodes, *driver_hosts, *cert_expiry; /* state */
  dfnet_metric_t *handshakes, *reconnects, *driver_starts, *crashes, *calls, *bytes, *scrapes;
  /* the per-call series, looked up once (a call costs no label lookup: rpc_bench showed the
   * lookups as +12% of the agent's CPU per call) */
  dfnet_metric_series_t *calls_total, *bytes_request, *bytes_reply;
};

static bool add_all(struct agent_metrics *x) {
  dfnet_metrics_t *r = x->reg;
  bool ok =
      dfnet_metrics_add_process(r, "the host agent", dfnet_version()) &&
      DFNET_METRICS_ADD(r, x->connected, GAUGE, "dfnet_agent_manager_connected",
                        "1 while the session to the manager is up and welcomed, else 0", NULL) &&
      DFNET_METRICS_ADD(r, x->handshakes, COUNTER, "dfnet_agent_tls_handshakes_total",
                        "sessions to the manager opened, by TLS handshake kind (full or resumed)",
                        "kind") &&
      DFNET_METRICS_ADD(r, x->reconnects, COUNTER, "dfnet_agent_reconnects_total",
                        "sessions to the manager opened after the first one", NULL) &&
      DFNET_METRICS_ADD(r, x->nodes, GAUGE, "dfnet_agent_nodes_published",
                        "nodes this host publishes (enumerated and added by drivers)", NULL) &&
      DFNET_METRICS_ADD(r, x->driver_hosts, GAUGE, "dfnet_agent_driver_hosts_running",
                        "driver host processes running", NULL) &&
      DFNET_METRICS_ADD(r, x->driver_starts, COUNTER, "dfnet_agent_driver_starts_total",
                        "driver starts that completed, by status code (OK: running)", "code") &&
      DFNET_METRICS_ADD(r, x->crashes, COUNTER, "dfnet_agent_driver_host_crashes_total",
                        "driver hosts that exited without being asked to", NULL) &&
      DFNET_METRICS_ADD(r, x->calls, COUNTER, "dfnet_agent_calls_relayed_total",
                        "calls from the manager relayed to a driver host", NULL) &&
      DFNET_METRICS_ADD(r, x->bytes, COUNTER, "dfnet_agent_relayed_bytes_total",
                        "call payload bytes relayed: request (manager to driver) and reply",
                        "direction") &&
      DFNET_METRICS_ADD(r, x->cert_expiry, GAUGE, "dfnet_agent_cert_expiry_timestamp_seconds",
                        "notAfter of this host's certificate (--cert), Unix time in seconds",
                        NULL) &&
      DFNET_METRICS_ADD(r, x->scrapes, COUNTER, "dfnet_metrics_scrapes_total",
                        "GET /metrics answered", NULL);
  if (!ok)
    return false;
  /* series that exist from the start (0), so that rate() sees their first increment */
  dfnet_metric_add(x->handshakes, (const char *[]){"full"}, 0);
  dfnet_metric_add(x->handshakes, (const char *[]){"resumed"}, 0);
  dfnet_metric_add(x->reconnects, NULL, 0);
  dfnet_metric_add(x->crashes, NULL, 0);
  x->calls_total = dfnet_metric_series(x->calls, NULL);
  x->bytes_request = dfnet_metric_series(x->bytes, (const char *[]){"request"});
  x->bytes_reply = dfnet_metric_series(x->bytes, (const char *[]){"reply"});
  return x->calls_total != NULL && x->bytes_request != NULL && x->bytes_reply != NULL;
}

void agent__metrics_free(agent_t *a) {
  if (a->metrics == NULL)
    return;
  dfnet_metrics_destroy(a->metrics->reg);
  free(a->metrics);
  a->metrics = NULL;
}

void agent__metrics_session_open(agent_t *a, const dfnet_session_info_t *info) {
  struct agent_metrics *x = a->metrics;
  if (x == NULL)
    return;
  dfnet_metric_add(x->handshakes, (const char *[]){info->tls_resumed ? "resumed" : "full"}, 1);
  if (a->session_opens > 1)
    dfnet_metric_add(x->reconnects, NULL, 1);
}

void agent__metrics_driver_start(agent_t *a, dfnet_status_t code) {
  if (a->metrics != NULL)
    dfnet_metric_add(a->metrics->driver_starts, (const char *[]){dfnet_status_str(code)}, 1);
}

void agent__metrics_driver_host_crash(agent_t *a) {
  if (a->metrics != NULL)
    dfnet_metric_add(a->metrics->crashes, NULL, 1);
}

void agent__metrics_call(agent_t *a, bool reply, size_t bytes) {
  struct agent_metrics *x = a->metrics;
  if (x == NULL)
    return;
  if (!reply)
    dfnet_metric_series_add(x->calls_total, 1);
  dfnet_metric_series_add(reply ? x->bytes_reply : x->bytes_request, (double)bytes);
}

/* The state, read now. */
static void count_state(agent_t *a, struct agent_metrics *x) {
  dfnet_metric_set(x->connected, NULL, a->session != 0 && a->welcomed ? 1 : 0);
  dfnet_metric_set(x->nodes, NULL, (double)a->node_count);
  size_t dhs = 0;
  for (const agent_dh_t *dh = a->dhs; dh != NULL; dh = dh->next)
    dhs++;
  dfnet_metric_set(x->driver_hosts, NULL, (double)dhs);
  /* the file, not a copy: a renewal (renew.c) replaces it */
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_cert_info_t info;
  if (a->opt.cert_file != NULL && dfnet_pki_cert_load(a->opt.cert_file, &cert) == DFNET_STATUS_OK &&
      dfnet_pki_cert_info(cert, &info) == DFNET_STATUS_OK)
    dfnet_metric_set(x->cert_expiry, NULL, (double)info.not_after);
  else
    dfnet_metric_clear(x->cert_expiry);
  dfnet_pki_cert_free(cert);
}

/* refresh of dfnet_metrics_http_answer: a scrape, the state read now. */
static void refresh(void *arg) {
  agent_t *a = arg;
  dfnet_metric_add(a->metrics->scrapes, NULL, 1);
  count_state(a, a->metrics);
}

/* on_http of --metrics-listen: GET/HEAD /metrics. Service thread. */
static bool on_http(void *user, const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  agent_t *a = user;
  return dfnet_metrics_http_answer(a->metrics ? a->metrics->reg : NULL, refresh, a, req, resp);
}

int agent__metrics_start(agent_t *a) {
  struct agent_metrics *x = calloc(1, sizeof *x);
  if (x == NULL || dfnet_metrics_create(&x->reg) != DFNET_STATUS_OK || !add_all(x)) {
    if (x != NULL)
      dfnet_metrics_destroy(x->reg);
    free(x);
    fprintf(stderr, "dfnet-host: metrics: out of memory\n");
    return 1;
  }
  a->metrics = x;
  if (a->opt.metrics_listen == NULL)
    return 0;
  char addr[128];
  uint16_t port = 0;
  if (!dfnet_metrics_listen_parse(a->opt.metrics_listen, addr, sizeof addr, &port)) {
    return dfnet_cmdline_usage("dfnet-host", "--metrics-listen: '%s' is not ADDR:PORT",
                               a->opt.metrics_listen);
  }
  dfnet_http_server_config_t hc = {
      .bind_address = addr, .port = port, .on_http = on_http, .user = a};
  dfnet_status_t st = dfnet_transport_listen_http(a->t, &hc, NULL, &port);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-host: cannot listen on %s for metrics: %s\n", a->opt.metrics_listen,
            dfnet_status_str(st));
    return 1;
  }
  printf("dfnet-host: metrics on %s:%u\n", addr, (unsigned)port);
  fflush(stdout);
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "metrics on http://%s:%u/metrics", addr, (unsigned)port);
  return 0;
}
