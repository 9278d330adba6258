/* Simulated dfnet hosts inside a benchmark's process (sim_hosts.h). */
#include "sim_hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "lib/pki.h"

bool sim_wait_count(atomic_long *c, long want, double timeout_s) {
  double end = (double)bench_now_ns() / 1e9 + timeout_s; /* timeout_s may be <= 0 */
  while (atomic_load(c) < want && (double)bench_now_ns() / 1e9 < end)
    usleep(1000);
  return atomic_load(c) >= want;
}

/* Host h's certificate, key and CA file paths, issuing them first unless an earlier run of
 * the same state directory did. Returns 0 or -1. */
static int host_files(const th_manager_t *m, const char *name, char *crt, char *key, char *ca,
                      size_t cap) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s-certs/%s", m->state_dir, name);
  if (access(dir, F_OK) != 0 && dfnet_pki_issue_to_dir(m->state_dir, DFNET_PKI_ROLE_HOST, name, dir,
                                                       NULL, 0, 30) != DFNET_STATUS_OK)
    return -1;
  snprintf(crt, cap, "%s/%s.crt", dir, name);
  snprintf(key, cap, "%s/%s.key", dir, name);
  snprintf(ca, cap, "%s/ca.crt", dir);
  return 0;
}

int sim_fleet_connect(sim_fleet_t *f, const th_manager_t *m, int n, const sim_fleet_opts_t *o) {
  f->n = 0;
  atomic_store(&f->welcomed, 0);
  atomic_store(&f->acked, 0);
  atomic_store(&f->started, 0);
  f->ts = calloc((size_t)n / SIM_PER_TRANSPORT + 1, sizeof *f->ts);
  f->hosts = calloc((size_t)n, sizeof *f->hosts);
  if (f->ts == NULL || f->hosts == NULL)
    return -1;
  f->n = n;
  char url[64], parent[600];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)m->port);
  snprintf(parent, sizeof parent, "%s-certs", m->state_dir);
  mkdir(parent, 0700);
  for (int i = 0; i < n; i++) {
    sim_host_t *h = &f->hosts[i];
    if (i % SIM_PER_TRANSPORT == 0 &&
        dfnet_transport_create(&f->ts[i / SIM_PER_TRANSPORT]) != DFNET_STATUS_OK)
      return -1;
    h->t = f->ts[i / SIM_PER_TRANSPORT];
    h->fleet = f;
    snprintf(h->name, sizeof h->name, "%s%04d", o->prefix, i);
    char crt[800], key[800], ca[800];
    if (host_files(m, h->name, crt, key, ca, sizeof crt) != 0)
      return -1;
    dfnet_client_config_t cc = {.url = url,
                                .subprotocol = DFNET_SUBPROTOCOL_HOST,
                                .cert_file = crt,
                                .key_file = key,
                                .ca_file = ca,
                                .backoff_initial_ms = o->backoff_initial_ms,
                                .backoff_multiplier = o->backoff_multiplier,
                                .backoff_max_ms = o->backoff_max_ms,
                                .callbacks = o->callbacks,
                                .user = h};
    if (dfnet_transport_connect(h->t, &cc, &h->ep) != DFNET_STATUS_OK)
      return -1;
  }
  for (int i = 0; i < n; i += SIM_PER_TRANSPORT) {
    if (dfnet_transport_start(f->ts[i / SIM_PER_TRANSPORT]) != DFNET_STATUS_OK)
      return -1;
    if (o->wave_counter != NULL)
      sim_wait_count(o->wave_counter,
                     o->wave_base + (i + SIM_PER_TRANSPORT < n ? i + SIM_PER_TRANSPORT : n),
                     o->wave_timeout_s);
  }
  return 0;
}

void sim_fleet_destroy(sim_fleet_t *f) {
  for (int i = 0; f->ts != NULL && i < f->n; i += SIM_PER_TRANSPORT)
    if (f->ts[i / SIM_PER_TRANSPORT] != NULL)
      dfnet_transport_destroy(f->ts[i / SIM_PER_TRANSPORT]);
  free(f->ts);
  free(f->hosts);
  f->ts = NULL;
  f->hosts = NULL;
  f->n = 0;
}

void sim_host_hello(sim_host_t *h, dfnet_session_id_t sid, uint32_t deadline_ms,
                    dfnet_reply_fn on_reply, void *user) {
  static _Thread_local dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.which_msg = dfnet_v1_Envelope_hello_tag;
  env.pb.msg.hello.protocol_version = DFNET_PROTOCOL_VERSION;
  env.pb.msg.hello.role = dfnet_v1_Role_HOST;
  snprintf(env.pb.msg.hello.name, sizeof env.pb.msg.hello.name, "%s", h->name);
  dfnet_request_opts_t o = {.deadline_ms = deadline_ms, .on_reply = on_reply, .user = user};
  dfnet_transport_request(h->t, sid, &env, &o, 0, NULL);
}

void sim_host_driver_running(sim_host_t *h, dfnet_session_id_t sid, const dfnet_envelope_t *start,
                             uint64_t driver_host_id) {
  static _Thread_local dfnet_envelope_t out;
  dfnet_envelope_init(&out);
  out.pb.id = start->pb.id;
  out.pb.which_msg = dfnet_v1_Envelope_driver_status_tag;
  snprintf(out.pb.msg.driver_status.node, sizeof out.pb.msg.driver_status.node, "%s",
           start->pb.msg.driver_start.node);
  snprintf(out.pb.msg.driver_status.url, sizeof out.pb.msg.driver_status.url, "%s",
           start->pb.msg.driver_start.url);
  out.pb.msg.driver_status.state = dfnet_v1_DriverState_RUNNING;
  out.pb.msg.driver_status.driver_host_id = driver_host_id;
  dfnet_transport_send(h->t, sid, &out, 0);
}

static void agent_on_welcome(void *user, dfnet_status_t st, const dfnet_envelope_t *r, bool last) {
  sim_fleet_t *f = user;
  if (last && st == DFNET_STATUS_OK && r->pb.which_msg == dfnet_v1_Envelope_welcome_tag)
    atomic_fetch_add(&f->welcomed, 1);
}

static void agent_on_open(void *user, const dfnet_session_info_t *info) {
  sim_host_t *h = user;
  sim_host_hello(h, info->id, 60000, agent_on_welcome, h->fleet);
}

static void agent_on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  sim_host_t *h = user;
  if (env->pb.which_msg == dfnet_v1_Envelope_driver_start_tag)
    sim_host_driver_running(h, sid, env, (uint64_t)atomic_fetch_add(&h->fleet->started, 1) + 1);
}

dfnet_transport_callbacks_t sim_agent_callbacks(void) {
  return (dfnet_transport_callbacks_t){.on_session_open = agent_on_open,
                                       .on_envelope = agent_on_envelope};
}

static void on_ack(void *user, dfnet_status_t st, const dfnet_envelope_t *r, bool last) {
  sim_fleet_t *f = user;
  (void)r;
  if (last && st == DFNET_STATUS_OK)
    atomic_fetch_add(&f->acked, 1);
}

void sim_fleet_publish(sim_fleet_t *f, uint64_t per_host, sim_node_fill_fn fill) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  if (env == NULL)
    bench_die("out of memory");
  dfnet_request_opts_t o = {.deadline_ms = 120000, .on_reply = on_ack, .user = f};
  for (uint64_t k = 0; k < per_host; k++) {
    for (int i = 0; i < f->n; i++) {
      sim_host_t *h = &f->hosts[i];
      dfnet_envelope_init(env);
      env->pb.which_msg = dfnet_v1_Envelope_node_add_tag;
      dfnet_v1_NodeAdd *a = &env->pb.msg.node_add;
      snprintf(a->parent, sizeof a->parent, "dev.%s", h->name);
      snprintf(a->name, sizeof a->name, "pci-%05llu", (unsigned long long)k);
      fill(a, k);
      dfnet_session_id_t sid = dfnet_transport_client_session(h->t, h->ep);
      dfnet_transport_request(h->t, sid, env, &o, DFNET_SEND_WAIT, NULL);
    }
  }
  free(env);
}

void sim_dirs_make(sim_dirs_t *d, const char *name) {
  snprintf(d->root, sizeof d->root, "/tmp/dfnet-bench-%s-%d", name, (int)getpid());
  snprintf(d->drivers, sizeof d->drivers, "%s/drivers", d->root);
  snprintf(d->state, sizeof d->state, "%s/state", d->root);
  th_fresh_dir(d->drivers);
}

int sim_write_pci_drivers(const char *dir, int n, const char *extra_rules) {
  for (int i = 0; i < n; i++) {
    char name[32], rules[256];
    snprintf(name, sizeof name, "drv%03d", i);
    snprintf(rules, sizeof rules,
             "fuchsia.BIND_PCI_VID == 0x1af4;\nfuchsia.BIND_PCI_DID == %u;\n%s", 0x1000 + i,
             extra_rules != NULL ? extra_rules : "");
    if (th_write_driver(dir, name, rules, NULL) != 0)
      return -1;
  }
  return 0;
}
