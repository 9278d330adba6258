/* dfnet-manager: the driver manager and driver index of a dfnet fleet (issue 5): running the
 * manager (the command without a command word), and main(). The command line is options.c's
 * (options.h), the state directory and the init and issue commands init_issue.c's.
 *
 * Defaults: --listen 127.0.0.1:7443 (port 0 = any free port; the bound address is printed
 * as "dfnet-manager: listening on ADDR:PORT"), --host-grace 30. The state directory
 * (mgr__state_dir) is created (0700) with the CA and the manager's certificate on the first
 * start (what `init` does). The durable store
 * <state-dir>/dfnet.db (leases, the lease queue, driver flags, composite node specs) is
 * opened and loaded before listening; one that cannot be is an error (exit 1) naming the
 * file and the cause. SIGINT/SIGTERM: stop accepting, stop every driver first if
 * --stop-drivers-on-exit, exit 0.
 *
 * Settings also come from a configuration file (issue 24 item 3; docs/configuration.md;
 * options.c). Logs: lib/log.h (journald priorities under systemd), --log-format json
 * (lib/log_format.h).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cmdline.h"
#include "lib/log.h"
#include "lib/log_format.h"
#include "lib/pki.h"
#include "lib/service_notify.h"
#include "manager/cert.h"
#include "manager/lease.h"
#include "manager/manager.h"
#include "manager/options.h"

uint64_t mgr__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

dfnet_envelope_t *mgr__env(mgr_t *m) {
  dfnet_envelope_init(m->scratch);
  return m->scratch;
}

/* ---- run ---------------------------------------------------------------------------- */

/* Close every session cleanly (hosts and clients see a websocket close, not a lost
 * connection), then leave the loop. */
static void stop_now(void *user) {
  mgr_t *m = user;
  dfnet_transport_shutdown(m->transport, 1000);
}

/* On the service thread: refuse new work, optionally stop every driver (deepest first). */
static void begin_shutdown(void *user) {
  mgr_t *m = user;
  if (m->stopping)
    return;
  m->stopping = 1;
  DFNET_LOGI("manager", NULL, "shutting down%s",
             m->cfg.stop_drivers_on_exit ? ": stopping drivers" : "");
  uint32_t delay = 0;
  if (m->cfg.stop_drivers_on_exit) {
    for (int depth = 64; depth >= 0; depth--) {
      topology_node_t *n, *tmp;
      HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
        int d = 0;
        for (const char *p = n->moniker; *p; p++)
          d += *p == '.';
        if (d == depth && n->state == dfnet_v1_NodeState_BOUND) {
          binder__stop_driver(m, n);
          delay = 1000;
        }
      }
    }
  }
  dfnet_transport_timer_start(m->transport, delay, stop_now, m, NULL);
}

typedef struct sig_ctx {
  mgr_t *m;
  sigset_t set;
} sig_ctx_t;

static void *signal_thread(void *arg) {
  sig_ctx_t *c = arg;
  int sig = 0;
  sigwait(&c->set, &sig);
  DFNET_LOGI("manager", NULL, "signal %d", sig);
  dfnet_service_notify_stopping("stopping (signal %d)", sig);
  dfnet_transport_post(c->m->transport, begin_shutdown, c->m);
  return NULL;
}

static int parse_listen(const char *text, char *addr, size_t size, uint16_t *port) {
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text)
    return -1;
  const char *a = text, *aend = colon;
  if (*a == '[' && aend[-1] == ']') {
    a++;
    aend--;
  }
  if ((size_t)(aend - a) >= size)
    return -1;
  memcpy(addr, a, (size_t)(aend - a));
  addr[aend - a] = '\0';
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
    return -1;
  *port = (uint16_t)p;
  return 0;
}

/* An environment variable set to "0", "no", "off" or "false". */
static bool env_says_no(const char *name) {
  const char *v = getenv(name);
  return v != NULL && (strcmp(v, "0") == 0 || strcasecmp(v, "no") == 0 ||
                       strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0);
}

static int listen_and_run(mgr_t *m) {
  char cert[1200], key[1200], ca[1200], tickets[1200];
  /* RFC 5077 session tickets whose keys survive a restart: hosts resume (issue 23 item 5) */
  snprintf(tickets, sizeof tickets, "%s/%s", m->cfg.state_dir, MANAGER_TICKET_KEY_FILE);
  snprintf(cert, sizeof cert, "%s/%s", m->cfg.state_dir, DFNET_PKI_MANAGER_CERT_FILE);
  snprintf(key, sizeof key, "%s/%s", m->cfg.state_dir, DFNET_PKI_MANAGER_KEY_FILE);
  snprintf(ca, sizeof ca, "%s/%s", m->cfg.state_dir, DFNET_PKI_CA_CERT_FILE);
  dfnet_server_config_t sc = {
      .bind_address = m->cfg.listen_address,
      .port = m->cfg.port,
      .cert_file = cert,
      .key_file = key,
      .ca_file = ca,
      /* a relay: a turn's calls and replies go out in one write per session */
      .limits = {.batch_messages = 16, .keepalive_ms = m->cfg.keepalive_ms},
      .callbacks = {.on_session_open = sessions__on_open,
                    .on_envelope = sessions__on_envelope,
                    .on_session_closed = sessions__on_closed},
      .is_revoked = cert__is_revoked, /* revoked certificates refused at every handshake */
      .user = m,
      .ticket_key_file = m->cfg.tls_tickets ? tickets : NULL,
      .on_http = metrics__on_http, /* GET /metrics for viewer certificates (issue 24) */
  };
  if (metrics__init(m) != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: metrics: out of memory\n");
    return 1;
  }
  dfnet_status_t st = dfnet_transport_listen(m->transport, &sc, NULL, &m->port);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: cannot listen on %s:%u: %s\n", m->cfg.listen_address,
            (unsigned)m->cfg.port, dfnet_status_str(st));
    return 1;
  }
  if (metrics__listen(m) != 0)
    return 1;
  printf("dfnet-manager: listening on %s:%u\n", m->cfg.listen_address, (unsigned)m->port);
  fflush(stdout);
  DFNET_LOGI("manager", NULL, "listening on %s:%u, state %s, %zu drivers", m->cfg.listen_address,
             (unsigned)m->port, m->cfg.state_dir, m->index.count);
  dfnet_service_notify_ready("listening on %s:%u", m->cfg.listen_address, (unsigned)m->port);
  st = dfnet_transport_run(m->transport);
  return st == DFNET_STATUS_OK ? 0 : 1;
}

/* The store (<state-dir>/dfnet.db): opened, driver flags and composite node specs applied,
 * leases and the wait queue loaded. A store that cannot be opened or read is a fatal
 * start-up error naming the file and the cause. Returns 0, or 1 (printed). */
static int load_durable(mgr_t *m) {
  char err[1400] = "";
  dfnet_status_t st = persist__open(m, err, sizeof err);
  if (st == DFNET_STATUS_OK)
    st = persist__load(m, err, sizeof err);
  if (st == DFNET_STATUS_OK && (st = lease__init(m)) != DFNET_STATUS_OK)
    topology__fmt(err, sizeof err, "out of memory");
  if (st == DFNET_STATUS_OK)
    st = lease__load(m, err, sizeof err);
  if (st == DFNET_STATUS_OK)
    st = cert__init(m, err, sizeof err); /* certificate records, revocations, join tokens */
  if (st == DFNET_STATUS_OK)
    return 0;
  fprintf(stderr, "dfnet-manager: %s: %s\n", dfnet_status_str(st), err);
  return 1;
}

static void mgr_destroy(mgr_t *m) {
  pending__cancel_all(m);
  control__destroy_all(m);
  lease__destroy(m);
  m->stopping = 1;
  dfnet_transport_destroy(m->transport);
  m->transport = NULL;
  metrics__destroy(m);
  sessions__destroy_all(m);
  cert__destroy(m);
  binder__destroy_composites(m);
  topology__destroy(&m->topo);
  hosts__destroy_all(m);
  driver_index__destroy(&m->index);
  store__close(m->store);
  m->store = NULL;
  free(m->scratch);
  free(m->event_env);
}

int mgr__cmd_run(const mgr_args_t *a) {
  static mgr_t mgr;
  mgr_t *m = &mgr;
  dfnet_log_level_t lv;
  if (dfnet_log_format_configure(a->log_format) != 0)
    return dfnet_cmdline_usage(PROGRAM, "DFNET_LOG_FORMAT '%s': want text or json",
                               getenv("DFNET_LOG_FORMAT"));
  if (a->log_level != NULL) {
    if (dfnet_log_level_parse(a->log_level, &lv) != 0)
      return dfnet_cmdline_usage(PROGRAM, "--log-level '%s': error, warn, info or debug",
                                 a->log_level);
    dfnet_log_set_level(lv);
  }
  if (g_config_read[0] != '\0')
    DFNET_LOGI("manager", g_config_read, "configuration file read");
  char addr[128];
  if (parse_listen(a->listen, addr, sizeof addr, &m->cfg.port) != 0)
    return dfnet_cmdline_usage(PROGRAM, "--listen: '%s' is not ADDR:PORT", a->listen);
  m->cfg.listen_address = addr;
  char metrics_addr[128];
  if (a->metrics_listen != NULL &&
      parse_listen(a->metrics_listen, metrics_addr, sizeof metrics_addr, &m->cfg.metrics_port) != 0)
    return dfnet_cmdline_usage(PROGRAM, "--metrics-listen: '%s' is not ADDR:PORT",
                               a->metrics_listen);
  m->cfg.metrics_address = a->metrics_listen != NULL ? metrics_addr : NULL;
  mgr__state_dir(a->state_dir, m->cfg.state_dir, sizeof m->cfg.state_dir);
  m->cfg.drivers_dir = a->drivers;
  m->cfg.host_grace_ms = (uint32_t)a->host_grace * 1000u;
  m->cfg.keepalive_ms = (uint32_t)a->keepalive_ms;
  m->cfg.hello_timeout_ms = (uint32_t)a->hello_timeout_ms;
  m->cfg.max_calls_per_session = (uint32_t)a->max_calls;
  m->cfg.default_call_deadline_ms = (uint32_t)a->default_deadline_ms;
  m->cfg.stop_drivers_on_exit = a->stop_drivers;
  m->cfg.require_lease = a->require_lease;
  m->cfg.tls_tickets = !a->no_tls_tickets && !env_says_no("DFNET_TLS_TICKETS");

  if (mgr__init_state(m->cfg.state_dir, NULL) != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: state directory %s unusable\n", m->cfg.state_dir);
    return 1;
  }
  /* Signals go to one thread that hands them to the loop (the loop is never interrupted). */
  sig_ctx_t sig = {.m = m};
  sigemptyset(&sig.set);
  sigaddset(&sig.set, SIGINT);
  sigaddset(&sig.set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN); /* a closed terminal or a reload request must not stop the fleet */

  topology__init(&m->topo);
  driver_index__init(&m->index);
  m->scratch = malloc(sizeof *m->scratch);
  m->event_env = malloc(sizeof *m->event_env);
  int rc = 1;
  if (m->scratch == NULL || m->event_env == NULL ||
      dfnet_transport_create(&m->transport) != DFNET_STATUS_OK ||
      package_store__init(m) != DFNET_STATUS_OK)
    goto destroy;
  package_store__load_boot(m);
  package_store__load_registered(m);
  if (load_durable(m) != 0)
    goto destroy;
  pthread_t th;
  if (pthread_create(&th, NULL, signal_thread, &sig) != 0)
    goto destroy;
  pthread_detach(th);
  rc = listen_and_run(m);
destroy:
  mgr_destroy(m);
  return rc;
}

int main(int argc, char **argv) {
  const command_t *c = mgr__find_command(argc, argv);
  if (c == NULL)
    return DFNET_CMDLINE_EXIT_USAGE;
  int rc = mgr__parse_options(c, argc, argv, c->name != NULL ? 2 : 1);
  if (rc < 0)
    rc = mgr__read_config(c);
  return rc >= 0 ? rc : c->fn(&g_args);
}
