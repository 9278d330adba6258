/* bench/manager_scale: the real dfnet-manager under fleet-sized load (issue 5 "Benchmark").
 * Prints, from one run:
 *   1. 1,000 idle host sessions held: manager RSS and CPU while idle;
 *   2. 100,000 nodes published by 100 host sessions against an index of 200 drivers: time
 *      until all are bound after the last publish, manager RSS per node;
 *   3. list-nodes latency at 100,000 nodes (whole list, and one exact moniker).
 * Targets: all bound < 10 s; < 2 KiB per node; 1,000 sessions < 150 MB.
 * Usage: manager_scale [NODES_PER_HOST (1000)] [IDLE_SESSIONS (1000)]
 * Runs against DFNET_BUILD_DIR/manager/dfnet-manager (default: the build tree). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "lib/transport.h"
#include "sim_hosts.h"
#include "testhost/testhost.h"

#define HOSTS 100
#define DRIVERS 200

static uint64_t g_nodes_per_host = 1000;

static double now_s(void) { return (double)bench_now_ns() / 1e9; }

/* n hosts named prefix%04d; more than 100 are started in waves of 16 sessions: 1,000 TLS
 * handshakes at once would outlast the clients' handshake timeout on the manager's one
 * thread (about 5 ms of ECDHE + ECDSA each). */
static int connect_hosts(sim_fleet_t *f, th_manager_t *m, int n, const char *prefix) {
  sim_fleet_opts_t o = {
      .prefix = prefix,
      .callbacks = sim_agent_callbacks(),
      .backoff_initial_ms = 1000,
      .backoff_max_ms = 60000,
      .wave_counter = n > 100 ? &f->welcomed : NULL,
      .wave_timeout_s = 5,
  };
  return sim_fleet_connect(f, m, n, &o);
}

/* ~10 properties, like a PCI function; driver k % 200 matches it. */
static void fill_node(dfnet_v1_NodeAdd *a, uint64_t k) {
  uint32_t keys[8] = {0x0100, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0001, 0x0107};
  uint32_t vals[8] = {0x1af4,     0x1000 + (uint32_t)(k % DRIVERS), 0x02, 0x00, 0x00, 0x01, 0x1f,
                      (uint32_t)k};
  for (int p = 0; p < 8; p++) {
    a->properties[p].which_key = dfnet_v1_NodeProperty_int_key_tag;
    a->properties[p].key.int_key = keys[p];
    a->properties[p].which_value = dfnet_v1_NodeProperty_int_value_tag;
    a->properties[p].value.int_value = vals[p];
  }
  a->properties[8].which_key = dfnet_v1_NodeProperty_str_key_tag;
  snprintf(a->properties[8].key.str_key, sizeof a->properties[8].key.str_key,
           "fuchsia.hardware.pci.Service");
  a->properties[8].which_value = dfnet_v1_NodeProperty_enum_value_tag;
  snprintf(a->properties[8].value.enum_value, sizeof a->properties[8].value.enum_value,
           "fuchsia.hardware.pci.Service.ZirconTransport");
  a->properties_count = 9;
  snprintf(a->class_name, sizeof a->class_name, "pci");
}

typedef struct count_ctx {
  long nodes, bound;
} count_ctx_t;

static void sum_devices(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_driver_info_tag)
    *(long *)user += item->pb.msg.driver_info.device_count;
}

static void count_item(void *user, const dfnet_envelope_t *item) {
  count_ctx_t *c = user;
  if (item->pb.which_msg != dfnet_v1_Envelope_node_info_tag)
    return;
  c->nodes++;
  c->bound += item->pb.msg.node_info.state == dfnet_v1_NodeState_BOUND;
}

int main(int argc, char **argv) {
  if (argc > 1)
    g_nodes_per_host = strtoull(argv[1], NULL, 10);
  int idle = argc > 2 ? atoi(argv[2]) : 1000;
  sim_dirs_t d;
  sim_dirs_make(&d, "manager");
  if (sim_write_pci_drivers(d.drivers, DRIVERS, "fuchsia.BIND_PCI_CLASS == 2;\n") != 0)
    return 1;
  th_manager_t m;
  if (th_manager_start(&m, d.state, d.drivers, "--log-level", "warn", "--host-grace", "1", NULL) !=
      0) {
    fprintf(stderr, "manager did not start\n");
    return 1;
  }
  long rss0 = bench_proc_rss_kib(m.pid);
  printf("manager_scale: %d drivers, manager RSS at start %.1f MiB\n", DRIVERS, rss0 / 1024.0);

  /* 1. idle sessions */
  if (idle > 0) {
    sim_fleet_t idlers = {0};
    double t0 = now_s();
    if (connect_hosts(&idlers, &m, idle, "idle") != 0)
      return 1;
    sim_wait_count(&idlers.welcomed, idle, 300);
    double t1 = now_s();
    sleep(1);
    double c0 = bench_proc_cpu_s(m.pid);
    sleep(5);
    double c1 = bench_proc_cpu_s(m.pid);
    long rss1 = bench_proc_rss_kib(m.pid);
    printf(
        "idle sessions: %ld of %d welcomed in %.1f s; manager RSS %.1f MiB (+%.1f MiB, "
        "%.1f KiB per session); CPU while idle %.2f%%\n",
        atomic_load(&idlers.welcomed), idle, t1 - t0, rss1 / 1024.0, (rss1 - rss0) / 1024.0,
        (double)(rss1 - rss0) / idle, 100.0 * (c1 - c0) / 5.0);
    sim_fleet_destroy(&idlers);
    /* A fresh manager for the node phase, so that freed session memory does not hide the
     * nodes' cost. */
    if (th_manager_stop(&m) != 0 || th_manager_start(&m, d.state, d.drivers, "--log-level", "warn",
                                                     "--host-grace", "1", NULL) != 0)
      return 1;
  }

  /* 2. publish and bind */
  sim_fleet_t lab = {0};
  if (connect_hosts(&lab, &m, HOSTS, "lab") != 0)
    return 1;
  sim_wait_count(&lab.welcomed, HOSTS, 120);
  testhost_t *v = th_connect(&m, "bench-viewer", "viewer", NULL);
  long rss2 = bench_proc_rss_kib(m.pid);
  long total = (long)(HOSTS * g_nodes_per_host);
  double p0 = now_s();
  sim_fleet_publish(&lab, g_nodes_per_host, fill_node);
  double p1 = now_s();
  sim_wait_count(&lab.acked, total, 300);
  double p2 = now_s();
  sim_wait_count(&lab.started, total, 300);
  double p3 = now_s();
  printf("publish: %ld NodeAdd sent in %.2f s, all acknowledged after %.2f s\n", total, p1 - p0,
         p2 - p0);
  printf(
      "bind: %ld of %ld DriverStart answered %.2f s after the last publish (%.2f s after the "
      "last acknowledgement)\n",
      atomic_load(&lab.started), total, p3 - p1, p3 - p2);

  /* Bound, as the manager sees it: the drivers' device counts add up (200 items, cheap). */
  dfnet_envelope_t *req = calloc(1, sizeof *req);
  long devices = 0;
  double b0 = now_s();
  while (v != NULL && devices < total && now_s() - b0 < 60) {
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_list_drivers_tag;
    devices = 0;
    th_list(v, req, sum_devices, &devices, NULL);
  }
  double p4 = now_s();
  printf("bind: manager reports %ld of %ld nodes bound %.2f s after the last publish\n", devices,
         total, p4 - p1);

  /* 3. list latency */
  count_ctx_t c = {0};
  double l0 = now_s(), l1 = l0;
  for (int tries = 0; v != NULL && tries < 100; tries++) {
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_list_nodes_tag;
    memset(&c, 0, sizeof c);
    l0 = now_s();
    th_list(v, req, count_item, &c, NULL);
    l1 = now_s();
    if (c.bound >= total)
      break;
    usleep(100000);
  }
  long rss3 = bench_proc_rss_kib(m.pid);
  printf("ListNodes: %ld of %ld nodes BOUND\n", c.bound, c.nodes);
  printf("memory: manager RSS %.1f MiB with %ld nodes: %.0f bytes per node\n", rss3 / 1024.0,
         c.nodes, (double)(rss3 - rss2) * 1024.0 / (double)total);
  printf("list-nodes: %ld nodes streamed in %.0f ms\n", c.nodes, (l1 - l0) * 1000);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_list_nodes_tag;
  snprintf(req->pb.msg.list_nodes.filter, sizeof req->pb.msg.list_nodes.filter,
           "dev.lab0042.pci-00420");
  req->pb.msg.list_nodes.exact = true;
  req->pb.msg.list_nodes.verbose = true;
  double e0 = now_s();
  for (int i = 0; v != NULL && i < 100; i++)
    th_list(v, req, NULL, NULL, NULL);
  double e1 = now_s();
  printf("list-nodes exact moniker (verbose): %.0f us per request\n", (e1 - e0) * 1e4);
  free(req);
  th_close(v);
  sim_fleet_destroy(&lab);
  int rc = th_manager_stop(&m);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log' '%s-certs'", d.root, d.state, d.state);
  if (getenv("DFNET_KEEP") == NULL && system(cmd) != 0)
    return 1;
  return rc == 0 ? 0 : 1;
}
