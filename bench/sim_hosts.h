/* Simulated dfnet hosts inside a benchmark's process (manager_scale, metrics_scrape,
 * reconnect_storm): a fleet of client endpoints, 16 per transport, each with its own host
 * certificate issued by the manager's CA, speaking the host subprotocol to a real
 * dfnet-manager started by testhost (th_manager_start). Each host answers with the
 * benchmark's callbacks or as a host agent does (sim_agent_callbacks); the fleet publishes
 * nodes; beside it the run's directories and the PCI drivers those nodes bind to. Measures
 * nothing by itself. */
#ifndef DFNET_BENCH_SIM_HOSTS_H
#define DFNET_BENCH_SIM_HOSTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/transport.h"
#include "testhost/testhost.h"

/* Client endpoints per transport: lib/transport_internal.h. */
#define SIM_PER_TRANSPORT 16

struct sim_fleet;

/* One simulated host. The fleet passes it as `user` to the callbacks. */
typedef struct sim_host {
  dfnet_transport_t *t;    /* the transport its endpoint lives on (shared by 16) */
  dfnet_endpoint_id_t ep;  /* its client endpoint */
  char name[32];           /* "<prefix><index, 4 digits>": its certificate's CN */
  struct sim_fleet *fleet; /* the fleet it belongs to */
} sim_host_t;

/* n hosts and the transports that carry them. */
typedef struct sim_fleet {
  int n;
  sim_host_t *hosts;      /* n, owned */
  dfnet_transport_t **ts; /* n / SIM_PER_TRANSPORT + 1, owned */
  /* Counted by the hosts of sim_agent_callbacks and by sim_fleet_publish (zeroed by
   * sim_fleet_connect): Welcomes received, NodeAdds acknowledged OK, DriverStarts
   * answered. */
  atomic_long welcomed, acked, started;
} sim_fleet_t;

/* How sim_fleet_connect builds and starts the fleet. */
typedef struct sim_fleet_opts {
  const char *prefix;                    /* host names: prefix%04d */
  dfnet_transport_callbacks_t callbacks; /* each host's; user = its sim_host_t */
  uint32_t backoff_initial_ms;           /* dfnet_client_config_t's reconnect backoff */
  double backoff_multiplier;
  uint32_t backoff_max_ms;
  /* Start the transports in waves of SIM_PER_TRANSPORT sessions: after each, wait up to
   * wave_timeout_s seconds until *wave_counter reaches wave_base + the sessions started so
   * far (a thousand full TLS handshakes at once outlast the clients' handshake timeout on
   * the manager's one thread). NULL: start every transport at once. */
  atomic_long *wave_counter;
  long wave_base;
  double wave_timeout_s;
} sim_fleet_opts_t;

/* Create n hosts connecting to m's wss://127.0.0.1:<port>/ with certificates in
 * "<state_dir>-certs/<name>" (issued by m's CA unless that directory exists already, so a
 * state directory's earlier run is reused), and start them. Returns 0, or -1 when a
 * transport cannot be created or started, a certificate cannot be issued, an endpoint cannot
 * be added or memory runs out; *f is then partly built: sim_fleet_destroy it. Main thread;
 * the callbacks run on the transports' threads. */
int sim_fleet_connect(sim_fleet_t *f, const th_manager_t *m, int n, const sim_fleet_opts_t *o);

/* Stop and free the fleet's transports and hosts (a zeroed fleet is fine). */
void sim_fleet_destroy(sim_fleet_t *f);

/* The callbacks of hosts that behave as a host agent does, for sim_fleet_opts_t: at every
 * session open, Hello (deadline 60 s), its Welcome counted in the fleet's `welcomed`; every
 * DriverStart answered DriverStatus RUNNING with a new driver_host_id (1, 2, ... in the
 * fleet), counted in `started`; other envelopes ignored. */
dfnet_transport_callbacks_t sim_agent_callbacks(void);

/* Send host h's Hello (role HOST, its name) on session sid; on_reply gets the Welcome with
 * `user`. Any thread. */
void sim_host_hello(sim_host_t *h, dfnet_session_id_t sid, uint32_t deadline_ms,
                    dfnet_reply_fn on_reply, void *user);

/* Answer a DriverStart `start` on session sid with DriverStatus RUNNING, as a host agent
 * does, with driver_host_id. The transport's thread (the envelope is thread-local). */
void sim_host_driver_running(sim_host_t *h, dfnet_session_id_t sid, const dfnet_envelope_t *start,
                             uint64_t driver_host_id);

/* Fills the NodeAdd of node k of a host: its properties and class (parent and name are
 * set already). */
typedef void (*sim_node_fill_fn)(dfnet_v1_NodeAdd *a, uint64_t k);

/* Publish per_host nodes from each host of f, round-robin over the hosts: NodeAdd of
 * "dev.<host>" / "pci-%05llu" (k), filled by fill, each a request (deadline 120 s, sent with
 * DFNET_SEND_WAIT) whose OK answer is counted in f->acked. Main thread. */
void sim_fleet_publish(sim_fleet_t *f, uint64_t per_host, sim_node_fill_fn fill);

/* The directories of a fleet benchmark's run: root "/tmp/dfnet-bench-<name>-<pid>", the
 * manager's drivers "<root>/drivers" (made fresh and empty) and its state directory
 * "<root>/state" (the manager's log beside it, the hosts' certificates in
 * "<root>/state-certs"). */
typedef struct sim_dirs {
  char root[128], drivers[200], state[200];
} sim_dirs_t;

/* Fill *d for the benchmark `name` ("manager") and make d->drivers fresh. */
void sim_dirs_make(sim_dirs_t *d, const char *name);

/* Write n drivers drv000, drv001 ... into dir, driver i bound to the PCI functions of
 * vendor 0x1af4 and device 0x1000 + i (the nodes a fill_node gives such a VID and DID), the
 * bind rules extra_rules (NULL or "rule;\n" lines) appended. Returns 0, or -1 when one
 * cannot be written (th_write_driver). */
int sim_write_pci_drivers(const char *dir, int n, const char *extra_rules);

/* Wait (polling every millisecond) up to timeout_s seconds (none when <= 0) until
 * *c >= want. Returns whether it got there. */
bool sim_wait_count(atomic_long *c, long want, double timeout_s);

#endif
