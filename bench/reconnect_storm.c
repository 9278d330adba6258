/* bench/reconnect_storm: a fleet comes back after a restart of the manager (issue 23 item 5
 * "Restarts without a storm", its "Benchmark").
 *
 * N simulated hosts (one process; 16 client endpoints per transport, each endpoint with its
 * own host certificate, its own TLS session store and the agent's reconnect backoff: base
 * 250 ms, x1.6, cap 5 s, full jitter) connect to a real dfnet-manager process; each sends
 * Hello and, once welcomed, announces one node (NodeAdd), at every session open, as the
 * agent re-announces its state. The manager is then restarted (SIGTERM, the same state
 * directory and port) twice, in one run:
 *   1. with TLS session tickets (the default): the hosts hold tickets from before, whose
 *      key the new manager reads from its state directory: abbreviated handshakes;
 *   2. with --no-tls-tickets: what a restart cost before tickets (full mutual ECDSA P-256
 *      handshakes, the hosts' tickets ignored).
 * Prints, for each, the time from the stop until every host has a session again and until
 * every host's node is acknowledged by the manager (reconciled), how many sessions resumed,
 * and the manager's CPU time over the storm; beside them the floor: the time from the stop
 * until the new manager listens (no host can be back sooner). Target: with tickets <= 5 s
 * for N = 1,000 on a 2-CPU machine. The simulated hosts' half of each handshake runs on the
 * same 2 CPUs as the manager (on a real fleet it runs on the boards).
 *
 * Usage: reconnect_storm [N (1000)]; DFNET_BUILD_DIR names the build tree whose
 * manager/dfnet-manager runs (default: this one). RLIMIT_NOFILE is raised to its hard limit
 * (N sockets here and N in the manager, which inherits it). Asserts nothing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_util.h"
#include "lib/log.h"
#include "lib/transport.h"
#include "sim_hosts.h"
#include "testhost/testhost.h"

#define PHASE_S 60.0 /* the longest a storm is watched */

static atomic_long opened, resumed, welcomed, reconciled;

static double now_s(void) { return (double)bench_now_ns() / 1e9; }

static void on_node_ack(void *user, dfnet_status_t st, const dfnet_envelope_t *r, bool last) {
  (void)user;
  if (last && st == DFNET_STATUS_OK && r->pb.which_msg == dfnet_v1_Envelope_status_tag &&
      ((int)r->pb.msg.status.code == (int)DFNET_STATUS_OK ||
       (int)r->pb.msg.status.code == (int)DFNET_STATUS_ALREADY_EXISTS))
    atomic_fetch_add(&reconciled, 1);
}

/* Welcomed: announce the host's one node, as the agent does after its Hello. */
static void on_welcome(void *user, dfnet_status_t st, const dfnet_envelope_t *r, bool last) {
  sim_host_t *h = user;
  if (!last || st != DFNET_STATUS_OK || r->pb.which_msg != dfnet_v1_Envelope_welcome_tag)
    return;
  atomic_fetch_add(&welcomed, 1);
  static _Thread_local dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.which_msg = dfnet_v1_Envelope_node_add_tag;
  dfnet_v1_NodeAdd *a = &env.pb.msg.node_add;
  snprintf(a->parent, sizeof a->parent, "dev.%s", h->name);
  snprintf(a->name, sizeof a->name, "storm0");
  a->properties[0].which_key = dfnet_v1_NodeProperty_int_key_tag;
  a->properties[0].key.int_key = 0x0100;
  a->properties[0].which_value = dfnet_v1_NodeProperty_int_value_tag;
  a->properties[0].value.int_value = 0x1af4;
  a->properties_count = 1;
  dfnet_request_opts_t o = {.deadline_ms = 120000, .on_reply = on_node_ack, .user = h};
  dfnet_transport_request(h->t, dfnet_transport_client_session(h->t, h->ep), &env, &o, 0, NULL);
}

static void on_open(void *user, const dfnet_session_info_t *info) {
  atomic_fetch_add(&opened, 1);
  if (info->tls_resumed)
    atomic_fetch_add(&resumed, 1);
  sim_host_hello(user, info->id, 120000, on_welcome, user);
}

/* N hosts with the agent's reconnect backoff, connected in waves of SIM_PER_TRANSPORT (the
 * first connection of each is a full handshake; a thousand at once would queue past their
 * handshake timeout), until every host's node is reconciled. */
static int connect_hosts(sim_fleet_t *f, const th_manager_t *m, int n) {
  sim_fleet_opts_t o = {.prefix = "storm",
                        .callbacks = {.on_session_open = on_open},
                        .backoff_initial_ms = 250, /* host/agent/main.c's */
                        .backoff_multiplier = 1.6,
                        .backoff_max_ms = 5000,
                        .wave_counter = &reconciled,
                        .wave_base = 0,
                        .wave_timeout_s = 20};
  if (sim_fleet_connect(f, m, n, &o) != 0)
    return -1;
  return sim_wait_count(&reconciled, n, 60) ? 0 : -1;
}

/* Name the hosts (at most 5) without a session: a stuck reconnect shows here. */
static void print_missing(const sim_host_t *hs, int n) {
  int shown = 0, missing = 0;
  for (int i = 0; i < n; i++) {
    if (dfnet_transport_client_session(hs[i].t, hs[i].ep) != 0)
      continue;
    if (shown++ < 5)
      printf("    no session: %s\n", hs[i].name);
    missing++;
  }
  if (missing > 5)
    printf("    ... %d in all\n", missing);
}

typedef struct storm {
  double floor_s, sessions_s, nodes_s, cpu_s;
  long sessions, resumed, nodes;
} storm_t;

/* Restart the manager (same state directory and port), extra_arg (NULL or
 * "--no-tls-tickets") given to the new one; measure the fleet's return. */
static int restart(th_manager_t *m, const char *drivers, const char *extra_arg, int n,
                   storm_t *out) {
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)m->port);
  char state[512];
  snprintf(state, sizeof state, "%s", m->state_dir);
  atomic_store(&opened, 0);
  atomic_store(&resumed, 0);
  atomic_store(&welcomed, 0);
  atomic_store(&reconciled, 0);
  double t0 = now_s();
  th_manager_stop(m);
  if (th_manager_start(m, state, drivers, "--log-level", "info", "--listen", listen, "--host-grace",
                       "60", extra_arg, NULL) != 0)
    return -1;
  double c0 = bench_proc_cpu_s(m->pid);
  out->floor_s = now_s() - t0;
  /* a phase that has not converged after PHASE_S is reported as such */
  sim_wait_count(&opened, n, PHASE_S - (now_s() - t0));
  out->sessions_s = now_s() - t0;
  sim_wait_count(&reconciled, n, PHASE_S - (now_s() - t0));
  out->nodes_s = now_s() - t0;
  out->cpu_s = bench_proc_cpu_s(m->pid) - c0;
  out->sessions = atomic_load(&opened);
  out->resumed = atomic_load(&resumed);
  out->nodes = atomic_load(&reconciled);
  return 0;
}

static void raise_nofile(int n) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    fprintf(stderr, "reconnect_storm: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
  printf("RLIMIT_NOFILE raised from %llu to %llu (%d sockets here, as many in the manager)\n",
         (unsigned long long)was, (unsigned long long)rl.rlim_cur, n);
}

static void print_storm(const char *what, const storm_t *s, int n) {
  printf("  %-22s %7.2f s %9.2f s %8.2f s %8.2f s %8ld/%d %9.2f s", what, s->sessions_s, s->nodes_s,
         s->floor_s, s->nodes_s - s->floor_s, s->resumed, n, s->cpu_s);
  if (s->sessions < n || s->nodes < n)
    printf("   (after %.0f s: only %ld sessions, %ld nodes)", PHASE_S, s->sessions, s->nodes);
  printf("\n");
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  if (n < 1 || n > 20000) {
    fprintf(stderr, "usage: reconnect_storm [N (1..20000, default 1000)]\n");
    return 2;
  }
#ifdef RECONNECT_STORM_BUILD_DIR
  setenv("DFNET_BUILD_DIR", RECONNECT_STORM_BUILD_DIR, 0);
#endif
  dfnet_log_set_level(DFNET_LOG_WARN); /* 2 N session lines otherwise */
  raise_nofile(n);
  sim_dirs_t d;
  sim_dirs_make(&d, "storm");
  th_manager_t m;
  if (th_manager_start(&m, d.state, d.drivers, "--log-level", "info", "--host-grace", "60", NULL) !=
      0) {
    fprintf(stderr, "reconnect_storm: the manager did not start\n");
    return 1;
  }
  sim_fleet_t fleet = {0};
  double c0 = now_s();
  if (connect_hosts(&fleet, &m, n) != 0) {
    fprintf(stderr, "reconnect_storm: %ld of %d hosts connected\n", atomic_load(&reconciled), n);
    th_manager_stop(&m);
    return 1;
  }
  printf("reconnect_storm: %d hosts connected and their nodes announced in %.1f s\n", n,
         now_s() - c0);
  storm_t with = {0}, without = {0};
  int rc = restart(&m, d.drivers, NULL, n, &with);
  if (with.sessions < n)
    print_missing(fleet.hosts, n);
  if (rc == 0)
    rc = restart(&m, d.drivers, "--no-tls-tickets", n, &without);
  printf("manager restarted with %d hosts (from its stop; floor: stop -> listening again):\n", n);
  printf("  %-22s %9s %11s %10s %11s %10s %11s\n", "", "sessions", "nodes", "floor", "listen->all",
         "resumed", "mgr CPU");
  print_storm("with tickets", &with, n);
  print_storm("without (full TLS)", &without, n);
  printf("  target with tickets <= 5 s: %s\n",
         with.sessions == n && with.nodes == n && with.nodes_s <= 5.0 ? "met" : "NOT met");
  printf("  (the manager's log: %s; kept with DFNET_KEEP=1)\n", m.log_path);
  sim_fleet_destroy(&fleet);
  th_manager_stop(&m);
  char cmd[300]; /* the state, 1,000 certificates and the log, unless DFNET_KEEP is set */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.root);
  if (getenv("DFNET_KEEP") == NULL && system(cmd) != 0)
    fprintf(stderr, "reconnect_storm: could not remove %s\n", d.root);
  return rc == 0 ? 0 : 1;
}
