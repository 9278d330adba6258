/* bench/manager_scale: the real dfnet-manager under fleet-sized load (issue 5 "Benchmark").
 * Prints, from one run:
 *   1. 1,000 idle host sessions held: manager RSS and CPU while idle;
 *   2. 100,000 nodes published by 100 host sessions against an index of 200 drivers: time
 *      until all are bound after the last publish, manager RSS per node;
 *   3. list-nodes latency at 100,000 nodes (whole list, and one exact moniker).
 * Targets: all bound < 10 s; < 2 KiB per node; 1,000 sessions < 150 MB.
 * Usage: manager_scale [NODES_PER_HOST (1000)] [IDLE_SESSIONS (1000)]
 * Runs against DFNET_BUILD_DIR/manager/dfnet-manager (default: the build tree). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/pki.h"
#include "lib/transport.h"
#include "testhost/testhost.h"

#define HOSTS 100
#define DRIVERS 200

static atomic_long welcomed, acked, started;
static uint64_t g_nodes_per_host = 1000;

typedef struct bhost {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t ep;
  char name[32];
} bhost_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kib;
}

static double cpu_s(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  unsigned long ut = 0, st = 0;
  if (f) {
    int r = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    (void)r;
    fclose(f);
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void on_hello_reply(void *user, dfnet_status_t st, const dfnet_envelope_t *r, bool last) {
  (void)user;
  if (last && st == DFNET_STATUS_OK && r->pb.which_msg == dfnet_v1_Envelope_welcome_tag)
    atomic_fetch_add(&welcomed, 1);
}

static void on_open(void *user, const dfnet_session_info_t *info) {
  bhost_t *h = user;
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_hello_tag;
  env->pb.msg.hello.protocol_version = DFNET_PROTOCOL_VERSION;
  env->pb.msg.hello.role = dfnet_v1_Role_HOST;
  snprintf(env->pb.msg.hello.name, sizeof env->pb.msg.hello.name, "%s", h->name);
  dfnet_request_opts_t o = {.deadline_ms = 60000, .on_reply = on_hello_reply};
  dfnet_transport_request(h->t, info->id, env, &o, 0, NULL);
  free(env);
}

/* DriverStart -> DriverStatus RUNNING, as a host agent answers. */
static void on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  bhost_t *h = user;
  if (env->pb.which_msg != dfnet_v1_Envelope_driver_start_tag)
    return;
  static _Thread_local dfnet_envelope_t out;
  dfnet_envelope_init(&out);
  out.pb.id = env->pb.id;
  out.pb.which_msg = dfnet_v1_Envelope_driver_status_tag;
  snprintf(out.pb.msg.driver_status.node, sizeof out.pb.msg.driver_status.node, "%s",
           env->pb.msg.driver_start.node);
  snprintf(out.pb.msg.driver_status.url, sizeof out.pb.msg.driver_status.url, "%s",
           env->pb.msg.driver_start.url);
  out.pb.msg.driver_status.state = dfnet_v1_DriverState_RUNNING;
  out.pb.msg.driver_status.driver_host_id = (uint64_t)atomic_fetch_add(&started, 1) + 1;
  dfnet_transport_send(h->t, sid, &out, 0);
}

static void on_ack(void *user, dfnet_status_t st, const dfnet_envelope_t *r, bool last) {
  (void)user;
  (void)r;
  if (last && st == DFNET_STATUS_OK)
    atomic_fetch_add(&acked, 1);
}

#define PER_TRANSPORT 16 /* endpoints per transport: lib/transport_internal.h */

static void wait_count(atomic_long *c, long want, double timeout_s);

static int connect_hosts(dfnet_transport_t **ts, th_manager_t *m, bhost_t *hs, int n,
                         const char *prefix) {
  long base = atomic_load(&welcomed);
  char url[64], parent[600];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)m->port);
  snprintf(parent, sizeof parent, "%s-certs", m->state_dir);
  mkdir(parent, 0700);
  for (int i = 0; i < n; i++) {
    bhost_t *h = &hs[i];
    if (i % PER_TRANSPORT == 0 && dfnet_transport_create(&ts[i / PER_TRANSPORT]) != DFNET_STATUS_OK)
      return -1;
    dfnet_transport_t *t = ts[i / PER_TRANSPORT];
    h->t = t;
    snprintf(h->name, sizeof h->name, "%s%04d", prefix, i);
    char dir[700], crt[800], key[800], ca[800];
    snprintf(dir, sizeof dir, "%s-certs/%s", m->state_dir, h->name);
    if (access(dir, F_OK) != 0 && dfnet_pki_issue_to_dir(m->state_dir, DFNET_PKI_ROLE_HOST, h->name,
                                                         dir, NULL, 0, 30) != DFNET_STATUS_OK)
      return -1;
    snprintf(crt, sizeof crt, "%s/%s.crt", dir, h->name);
    snprintf(key, sizeof key, "%s/%s.key", dir, h->name);
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    dfnet_client_config_t cc = {
        .url = url,
        .subprotocol = DFNET_SUBPROTOCOL_HOST,
        .cert_file = crt,
        .key_file = key,
        .ca_file = ca,
        .backoff_initial_ms = 1000,
        .backoff_max_ms = 60000,
        .callbacks = {.on_session_open = on_open, .on_envelope = on_envelope},
        .user = h};
    if (dfnet_transport_connect(t, &cc, &h->ep) != DFNET_STATUS_OK)
      return -1;
  }
  /* In waves of 16 sessions: 1,000 TLS handshakes at once would outlast the clients'
   * handshake timeout on the manager's one thread (about 5 ms of ECDHE + ECDSA each). */
  for (int i = 0; i < n; i += PER_TRANSPORT) {
    if (dfnet_transport_start(ts[i / PER_TRANSPORT]) != DFNET_STATUS_OK)
      return -1;
    if (n > 100)
      wait_count(&welcomed, (long)(i + PER_TRANSPORT < n ? i + PER_TRANSPORT : n) + base, 5);
  }
  return 0;
}

static void destroy_all(dfnet_transport_t **ts, int n) {
  for (int i = 0; i < n; i += PER_TRANSPORT)
    dfnet_transport_destroy(ts[i / PER_TRANSPORT]);
  free(ts);
}

static void wait_count(atomic_long *c, long want, double timeout_s) {
  double end = now_s() + timeout_s;
  while (atomic_load(c) < want && now_s() < end)
    usleep(2000);
}

static void publish(bhost_t *hs) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_request_opts_t o = {.deadline_ms = 120000, .on_reply = on_ack};
  for (uint64_t k = 0; k < g_nodes_per_host; k++) {
    for (int i = 0; i < HOSTS; i++) {
      bhost_t *h = &hs[i];
      dfnet_envelope_init(env);
      env->pb.which_msg = dfnet_v1_Envelope_node_add_tag;
      dfnet_v1_NodeAdd *a = &env->pb.msg.node_add;
      snprintf(a->parent, sizeof a->parent, "dev.%s", h->name);
      snprintf(a->name, sizeof a->name, "pci-%05llu", (unsigned long long)k);
      /* ~10 properties, like a PCI function; driver k % 200 matches it. */
      uint32_t keys[8] = {0x0100, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0001, 0x0107};
      uint32_t vals[8] = {
          0x1af4, 0x1000 + (uint32_t)(k % DRIVERS), 0x02, 0x00, 0x00, 0x01, 0x1f, (uint32_t)k};
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
      dfnet_session_id_t sid = dfnet_transport_client_session(h->t, h->ep);
      dfnet_transport_request(h->t, sid, env, &o, DFNET_SEND_WAIT, NULL);
    }
  }
  free(env);
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
  char root[128], drivers[200], state[200];
  snprintf(root, sizeof root, "/tmp/dfnet-bench-manager-%d", (int)getpid());
  snprintf(drivers, sizeof drivers, "%s/drivers", root);
  snprintf(state, sizeof state, "%s/state", root);
  th_fresh_dir(drivers);
  for (int i = 0; i < DRIVERS; i++) {
    char name[32], rules[256];
    snprintf(name, sizeof name, "drv%03d", i);
    snprintf(rules, sizeof rules,
             "fuchsia.BIND_PCI_VID == 0x1af4;\nfuchsia.BIND_PCI_DID == %u;\n"
             "fuchsia.BIND_PCI_CLASS == 2;\n",
             0x1000 + i);
    if (th_write_driver(drivers, name, rules, NULL) != 0)
      return 1;
  }
  th_manager_t m;
  if (th_manager_start(&m, state, drivers, "--log-level", "warn", "--host-grace", "1", NULL) != 0) {
    fprintf(stderr, "manager did not start\n");
    return 1;
  }
  long rss0 = rss_kib(m.pid);
  printf("manager_scale: %d drivers, manager RSS at start %.1f MiB\n", DRIVERS, rss0 / 1024.0);

  /* 1. idle sessions */
  if (idle > 0) {
    dfnet_transport_t **ts = calloc((size_t)idle / PER_TRANSPORT + 1, sizeof *ts);
    bhost_t *hs = calloc((size_t)idle, sizeof *hs);
    double t0 = now_s();
    if (connect_hosts(ts, &m, hs, idle, "idle") != 0)
      return 1;
    wait_count(&welcomed, idle, 300);
    double t1 = now_s();
    sleep(1);
    double c0 = cpu_s(m.pid);
    sleep(5);
    double c1 = cpu_s(m.pid);
    long rss1 = rss_kib(m.pid);
    printf(
        "idle sessions: %ld of %d welcomed in %.1f s; manager RSS %.1f MiB (+%.1f MiB, "
        "%.1f KiB per session); CPU while idle %.2f%%\n",
        atomic_load(&welcomed), idle, t1 - t0, rss1 / 1024.0, (rss1 - rss0) / 1024.0,
        (double)(rss1 - rss0) / idle, 100.0 * (c1 - c0) / 5.0);
    destroy_all(ts, idle);
    free(hs);
    /* A fresh manager for the node phase, so that freed session memory does not hide the
     * nodes' cost. */
    if (th_manager_stop(&m) != 0 ||
        th_manager_start(&m, state, drivers, "--log-level", "warn", "--host-grace", "1", NULL) != 0)
      return 1;
  }

  /* 2. publish and bind */
  atomic_store(&welcomed, 0);
  dfnet_transport_t **ts = calloc(HOSTS / PER_TRANSPORT + 1, sizeof *ts);
  bhost_t *hs = calloc(HOSTS, sizeof *hs);
  if (connect_hosts(ts, &m, hs, HOSTS, "lab") != 0)
    return 1;
  wait_count(&welcomed, HOSTS, 120);
  testhost_t *v = th_connect(&m, "bench-viewer", "viewer", NULL);
  long rss2 = rss_kib(m.pid);
  long total = (long)(HOSTS * g_nodes_per_host);
  double p0 = now_s();
  publish(hs);
  double p1 = now_s();
  wait_count(&acked, total, 300);
  double p2 = now_s();
  wait_count(&started, total, 300);
  double p3 = now_s();
  printf("publish: %ld NodeAdd sent in %.2f s, all acknowledged after %.2f s\n", total, p1 - p0,
         p2 - p0);
  printf(
      "bind: %ld of %ld DriverStart answered %.2f s after the last publish (%.2f s after the "
      "last acknowledgement)\n",
      atomic_load(&started), total, p3 - p1, p3 - p2);

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
  long rss3 = rss_kib(m.pid);
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
  destroy_all(ts, HOSTS);
  free(hs);
  int rc = th_manager_stop(&m);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log' '%s-certs'", root, state, state);
  if (getenv("DFNET_KEEP") == NULL && system(cmd) != 0)
    return 1;
  return rc == 0 ? 0 : 1;
}
