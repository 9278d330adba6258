/* bench/metrics_scrape: GET /metrics of a real dfnet-manager holding 100,000 nodes (issue 24
 * item 4 "scraping a manager with 100,000 nodes takes <= 50 ms").
 *
 * 100 simulated hosts in this process (real transport, real TLS; as bench/manager_scale)
 * publish 1,000 nodes each against an index of 20 drivers and answer every DriverStart
 * RUNNING, so that the manager holds 100,000 bound nodes. Then, from one run:
 *   1. the floor: GET /nothing (404) on --metrics-listen, N times: a TCP connection and an
 *      HTTP exchange with nothing rendered;
 *   2. GET /metrics on --metrics-listen, N times: the same plus recounting the state (every
 *      node) and rendering: p50 and p99 ms per scrape, the manager's CPU per scrape, the
 *      size of the body;
 *   3. GET /metrics on the TLS listener with a viewer certificate through curl (as the
 *      acceptance does), 20 times: p50 ms, including curl's start and a full TLS handshake.
 * Target: 2's p99 <= 50 ms. Prints figures; asserts nothing.
 * Usage: metrics_scrape [NODES_PER_HOST (1000)] [SCRAPES (200)]
 * Runs against DFNET_BUILD_DIR/manager/dfnet-manager (default: the build tree). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "sim_hosts.h"
#include "testhost/testhost.h"

#define HOSTS 100
#define DRIVERS 20
static uint64_t g_nodes_per_host = 1000;

/* Node k of a host: 4 properties; driver k % DRIVERS matches it. */
static void fill_node(dfnet_v1_NodeAdd *a, uint64_t k) {
  uint32_t keys[4] = {0x0100, 0x0101, 0x0102, 0x0107};
  uint32_t vals[4] = {0x1af4, 0x1000 + (uint32_t)(k % DRIVERS), 0x02, (uint32_t)k};
  for (int p = 0; p < 4; p++) {
    a->properties[p].which_key = dfnet_v1_NodeProperty_int_key_tag;
    a->properties[p].key.int_key = keys[p];
    a->properties[p].which_value = dfnet_v1_NodeProperty_int_value_tag;
    a->properties[p].value.int_value = vals[p];
  }
  a->properties_count = 4;
}

/* A free TCP port of 127.0.0.1 now (bound and closed: the manager takes it next). */
static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    bench_die("no free port");
  close(fd);
  return ntohs(a.sin_port);
}

/* One plain HTTP/1.1 GET of `path` with Connection: close, read to the end. Returns the
 * response's size; *status gets the status code (0 when the answer is not HTTP). */
static size_t http_get(uint16_t port, const char *path, unsigned *status) {
  static char buf[1 << 20];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    bench_die("cannot connect to 127.0.0.1:%u", (unsigned)port);
  char req[256];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  if (write(fd, req, (size_t)n) != n)
    bench_die("write failed");
  size_t total = 0;
  ssize_t got;
  *status = 0;
  while ((got = read(fd, buf, sizeof buf - 1)) > 0) {
    if (total == 0 && got > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
      *status = (unsigned)strtoul(buf + 9, NULL, 10); /* the status line: the first read's */
    total += (size_t)got;
  }
  close(fd);
  return total;
}

/* N GETs of `path`: latencies into t (ns), the manager's CPU per GET into *cpu_us. Returns
 * the last response's size. */
static size_t scrape_n(uint16_t port, const char *path, unsigned want, int n, uint64_t *t,
                       const bench_procs_t *procs, double *cpu_us) {
  bench_cpu_t before;
  bench_cpu_snapshot(procs, &before);
  size_t size = 0;
  for (int i = 0; i < n; i++) {
    unsigned status = 0;
    uint64_t t0 = bench_now_ns();
    size = http_get(port, path, &status);
    t[i] = bench_now_ns() - t0;
    if (status != want)
      bench_die("GET %s answered %u, not %u", path, status, want);
  }
  double per[BENCH_PROCS_MAX];
  bench_cpu_per(procs, &before, n, per);
  *cpu_us = per[0];
  return size;
}

int main(int argc, char **argv) {
  bench_set_name("metrics_scrape");
  if (argc > 1)
    g_nodes_per_host = strtoull(argv[1], NULL, 10);
  int scrapes = argc > 2 ? atoi(argv[2]) : 200;
  if (scrapes < 1 || scrapes > 100000)
    bench_die("SCRAPES: 1..100000");
  sim_dirs_t d;
  sim_dirs_make(&d, "metrics");
  if (sim_write_pci_drivers(d.drivers, DRIVERS, NULL) != 0)
    bench_die("th_write_driver");
  char metrics_listen[32];
  uint16_t mport = free_port();
  snprintf(metrics_listen, sizeof metrics_listen, "127.0.0.1:%u", (unsigned)mport);
  th_manager_t m;
  if (th_manager_start(&m, d.state, d.drivers, "--log-level", "warn", "--metrics-listen",
                       metrics_listen, NULL) != 0)
    bench_die("the manager did not start (log: %s.log)", d.state);
  bench_procs_t procs = {0};
  bench_procs_add(&procs, "dfnet-manager", m.pid);

  sim_fleet_t lab = {0};
  sim_fleet_opts_t o = {
      .prefix = "lab",
      .callbacks = sim_agent_callbacks(),
      .backoff_initial_ms = 1000,
      .backoff_max_ms = 60000,
  };
  if (sim_fleet_connect(&lab, &m, HOSTS, &o) != 0)
    bench_die("cannot connect %d simulated hosts", HOSTS);
  sim_wait_count(&lab.welcomed, HOSTS, 120);
  long total = (long)(HOSTS * g_nodes_per_host);
  uint64_t p0 = bench_now_ns();
  sim_fleet_publish(&lab, g_nodes_per_host, fill_node);
  sim_wait_count(&lab.acked, total, 300);
  sim_wait_count(&lab.started, total, 300);
  printf(
      "metrics_scrape: %ld nodes published by %d hosts (%ld acknowledged, %ld drivers "
      "started) in %.1f s\n",
      total, HOSTS, atomic_load(&lab.acked), atomic_load(&lab.started),
      (double)(bench_now_ns() - p0) / 1e9);
  usleep(500000); /* the last DriverStatus handled */

  uint64_t *t = calloc((size_t)scrapes, sizeof *t);
  if (t == NULL)
    bench_die("out of memory");
  double cpu_floor, cpu_scrape;
  scrape_n(mport, "/nothing", 404, scrapes, t, &procs, &cpu_floor);
  bench_latency_t floor = bench_percentiles(t, (size_t)scrapes);
  size_t size = scrape_n(mport, "/metrics", 200, scrapes, t, &procs, &cpu_scrape);
  bench_latency_t lat = bench_percentiles(t, (size_t)scrapes);
  printf(
      "floor  GET /nothing (404), --metrics-listen, %d times: p50 %.2f ms, p99 %.2f ms; "
      "manager CPU %.0f us per request\n",
      scrapes, floor.p50_us / 1000, floor.p99_us / 1000, cpu_floor);
  printf(
      "scrape GET /metrics (200, %zu bytes), --metrics-listen, %d times: p50 %.2f ms, p99 "
      "%.2f ms; manager CPU %.0f us per scrape\n",
      size, scrapes, lat.p50_us / 1000, lat.p99_us / 1000, cpu_scrape);
  printf("target: a scrape at %ld nodes <= 50 ms (p99): %s\n", total,
         bench_met(lat.p99_us <= 50000));

  /* 3. the TLS listener with a viewer certificate, through curl */
  char certs[600], cmd[2400];
  snprintf(certs, sizeof certs, "%s-certs/bench-viewer", d.state);
  if (dfnet_pki_issue_to_dir(d.state, DFNET_PKI_ROLE_VIEWER, "bench-viewer", certs, NULL, 0, 30) !=
      DFNET_STATUS_OK)
    bench_die("cannot issue the viewer's certificate");
  snprintf(cmd, sizeof cmd,
           "curl -sS --max-time 20 -o /dev/null -w '%%{http_code}' --cert %s/bench-viewer.crt "
           "--key %s/bench-viewer.key --cacert %s/ca.crt https://127.0.0.1:%u/metrics",
           certs, certs, certs, (unsigned)m.port);
  uint64_t tls[20];
  for (int i = 0; i < 20; i++) {
    uint64_t t0 = bench_now_ns();
    FILE *p = popen(cmd, "r");
    char code[16] = "";
    if (p == NULL || fgets(code, sizeof code, p) == NULL || pclose(p) != 0 ||
        strcmp(code, "200") != 0)
      bench_die("curl over TLS failed (%s)", code);
    tls[i] = bench_now_ns() - t0;
  }
  bench_latency_t tl = bench_percentiles(tls, 20);
  printf(
      "TLS    GET /metrics with a viewer certificate (curl: its start and a full TLS "
      "handshake included), 20 times: p50 %.2f ms, p99 %.2f ms\n",
      tl.p50_us / 1000, tl.p99_us / 1000);

  free(t);
  sim_fleet_destroy(&lab);
  int rc = th_manager_stop(&m);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log' '%s-certs'", d.root, d.state, d.state);
  if (getenv("DFNET_KEEP") == NULL && system(cmd) != 0)
    return 1;
  return rc == 0 ? 0 : 1;
}
