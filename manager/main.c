/* dfnet-manager: the driver manager and driver index of a dfnet fleet (issue 5).
 *
 *   dfnet-manager [--listen ADDR:PORT] [--state-dir DIR] [--drivers DIR]
 *                 [--host-grace SECONDS] [--log-level L] [--stop-drivers-on-exit]
 *   dfnet-manager init [--state-dir DIR] [--san DNS|IP]...
 *   dfnet-manager issue --role host|admin|operator|viewer --name NAME --out DIR
 *                 [--san DNS|IP]... [--days N] [--state-dir DIR]
 *
 * Defaults: --listen 127.0.0.1:7443 (port 0 = any free port; the bound address is printed
 * as "dfnet-manager: listening on ADDR:PORT"), --host-grace 30. The state directory is
 * --state-dir, else $DFNET_STATE_DIR, else $XDG_STATE_HOME/dfnet, else
 * $HOME/.local/state/dfnet, else ./dfnet-state; it is created (0700) with the CA and the
 * manager's certificate on the first start (what `init` does). SIGINT/SIGTERM: stop
 * accepting, stop every driver first if --stop-drivers-on-exit, exit 0.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/pki.h"
#include "manager/manager.h"

#define EXIT_USAGE 2

uint64_t mgr__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

dfnet_envelope_t *mgr__env(mgr_t *m) {
  dfnet_envelope_init(m->scratch);
  return m->scratch;
}

/* ---- options (table-driven, docs/style.md 12) -------------------------------------------- */

typedef enum opt_kind { OPT_FLAG, OPT_STRING, OPT_LONG, OPT_LIST } opt_kind_t;

typedef struct opt {
  const char *name;
  opt_kind_t kind;
  void *dest;    /* bool*, const char**, long*, or struct str_list* */
  long min, max; /* OPT_LONG range */
} opt_t;

typedef struct str_list {
  const char *items[16];
  size_t count;
} str_list_t;

static int parse_options(const opt_t *table, int argc, char **argv, int first) {
  for (int i = first; i < argc; i++) {
    const opt_t *o = NULL;
    for (const opt_t *t = table; t->name && !o; t++)
      if (strcmp(argv[i], t->name) == 0)
        o = t;
    if (o == NULL) {
      fprintf(stderr, "dfnet-manager: unknown option '%s'\n", argv[i]);
      return -1;
    }
    if (o->kind == OPT_FLAG) {
      *(bool *)o->dest = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dfnet-manager: %s needs a value\n", o->name);
      return -1;
    }
    const char *v = argv[++i];
    if (o->kind == OPT_STRING) {
      *(const char **)o->dest = v;
    } else if (o->kind == OPT_LIST) {
      str_list_t *l = o->dest;
      if (l->count == 16) {
        fprintf(stderr, "dfnet-manager: %s given more than 16 times\n", o->name);
        return -1;
      }
      l->items[l->count++] = v;
    } else {
      char *end;
      errno = 0;
      long n = strtol(v, &end, 10);
      if (errno != 0 || end == v || *end != '\0' || n < o->min || n > o->max) {
        fprintf(stderr, "dfnet-manager: %s: '%s' is not a number in %ld..%ld\n", o->name, v, o->min,
                o->max);
        return -1;
      }
      *(long *)o->dest = n;
    }
  }
  return 0;
}

static void default_state_dir(char *out, size_t size) {
  const char *e = getenv("DFNET_STATE_DIR");
  if (e && *e) {
    snprintf(out, size, "%s", e);
  } else if ((e = getenv("XDG_STATE_HOME")) && *e) {
    snprintf(out, size, "%s/dfnet", e);
  } else if ((e = getenv("HOME")) && *e) {
    snprintf(out, size, "%s/.local/state/dfnet", e);
  } else {
    snprintf(out, size, "./dfnet-state");
  }
}

/* Create the CA and the manager's certificate in `dir` unless they exist. The certificate
 * names this host, localhost, 127.0.0.1 and ::1, plus `extra` SANs (NULL = none): the DNS
 * names or addresses hosts and clients use to reach the manager. An existing certificate
 * is kept as it is (to change its names: remove manager.crt/.key/.pem, init again). */
static dfnet_status_t init_state(const char *dir, const str_list_t *extra) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const char *name = dfnet_pki_name_valid(host) ? host : "dfnet-manager";
  const char *sans[17] = {name};
  size_t nsans = 1;
  for (size_t i = 0; extra != NULL && i < extra->count && nsans < 17; i++)
    sans[nsans++] = extra->items[i];
  bool created = false;
  dfnet_status_t st = dfnet_pki_init_state_dir(dir, name, sans, nsans, &created);
  if (st == DFNET_STATUS_OK && created)
    DFNET_LOGI("manager", dir, "state directory initialised (CA and manager certificate)");
  return st;
}

/* ---- init / issue ------------------------------------------------------------------- */

static int cmd_init(int argc, char **argv) {
  const char *state_dir = NULL;
  str_list_t sans = {0};
  const opt_t table[] = {{"--state-dir", OPT_STRING, &state_dir, 0, 0},
                         {"--san", OPT_LIST, &sans, 0, 0},
                         {NULL, 0, NULL, 0, 0}};
  if (parse_options(table, argc, argv, 2) != 0)
    return EXIT_USAGE;
  char dir[1024];
  if (state_dir)
    snprintf(dir, sizeof dir, "%s", state_dir);
  else
    default_state_dir(dir, sizeof dir);
  dfnet_status_t st = init_state(dir, &sans);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: init %s failed: %s\n", dir, dfnet_status_str(st));
    return 1;
  }
  printf("state directory: %s\n", dir);
  return 0;
}

static int cmd_issue(int argc, char **argv) {
  const char *state_dir = NULL, *role = NULL, *name = NULL, *out = NULL;
  long days = 365;
  str_list_t sans = {0};
  const opt_t table[] = {
      {"--state-dir", OPT_STRING, &state_dir, 0, 0},
      {"--role", OPT_STRING, &role, 0, 0},
      {"--name", OPT_STRING, &name, 0, 0},
      {"--out", OPT_STRING, &out, 0, 0},
      {"--san", OPT_LIST, &sans, 0, 0},
      {"--days", OPT_LONG, &days, 1, DFNET_PKI_MAX_DAYS},
      {NULL, 0, NULL, 0, 0},
  };
  if (parse_options(table, argc, argv, 2) != 0)
    return EXIT_USAGE;
  dfnet_pki_role_t r;
  if (role == NULL || name == NULL || out == NULL ||
      dfnet_pki_role_parse(role, &r) != DFNET_STATUS_OK) {
    fprintf(stderr,
            "usage: dfnet-manager issue --role host|admin|operator|viewer --name NAME "
            "--out DIR [--san DNS|IP]... [--days N] [--state-dir DIR]\n");
    return EXIT_USAGE;
  }
  char dir[1024];
  if (state_dir)
    snprintf(dir, sizeof dir, "%s", state_dir);
  else
    default_state_dir(dir, sizeof dir);
  if (init_state(dir, NULL) != DFNET_STATUS_OK)
    return 1;
  dfnet_status_t st =
      dfnet_pki_issue_to_dir(dir, r, name, out, sans.items, sans.count, (unsigned)days);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: issue failed: %s\n", dfnet_status_str(st));
    return 1;
  }
  printf("%s/%s.crt, %s.key, %s.pem and ca.crt written (role %s)\n", out, name, name, name, role);
  return 0;
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

static int listen_and_run(mgr_t *m) {
  char cert[1200], key[1200], ca[1200];
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
      .user = m,
  };
  dfnet_status_t st = dfnet_transport_listen(m->transport, &sc, NULL, &m->port);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: cannot listen on %s:%u: %s\n", m->cfg.listen_address,
            (unsigned)m->cfg.port, dfnet_status_str(st));
    return 1;
  }
  printf("dfnet-manager: listening on %s:%u\n", m->cfg.listen_address, (unsigned)m->port);
  fflush(stdout);
  DFNET_LOGI("manager", NULL, "listening on %s:%u, state %s, %zu drivers", m->cfg.listen_address,
             (unsigned)m->port, m->cfg.state_dir, m->index.count);
  st = dfnet_transport_run(m->transport);
  return st == DFNET_STATUS_OK ? 0 : 1;
}

static void mgr_destroy(mgr_t *m) {
  pending__cancel_all(m);
  m->stopping = 1;
  dfnet_transport_destroy(m->transport);
  m->transport = NULL;
  sessions__destroy_all(m);
  binder__destroy_composites(m);
  topology__destroy(&m->topo);
  hosts__destroy_all(m);
  driver_index__destroy(&m->index);
  free(m->scratch);
  free(m->event_env);
}

static int cmd_run(int argc, char **argv) {
  static mgr_t mgr;
  mgr_t *m = &mgr;
  const char *listen = "127.0.0.1:7443", *state_dir = NULL, *drivers = NULL, *level = NULL;
  long grace = 30, keepalive = DFNET_TRANSPORT_KEEPALIVE_MS_DEFAULT;
  bool stop_drivers = false;
  const opt_t table[] = {
      {"--listen", OPT_STRING, &listen, 0, 0},
      {"--state-dir", OPT_STRING, &state_dir, 0, 0},
      {"--drivers", OPT_STRING, &drivers, 0, 0},
      {"--host-grace", OPT_LONG, &grace, 0, 86400},
      {"--keepalive-ms", OPT_LONG, &keepalive, 50, 600000},
      {"--log-level", OPT_STRING, &level, 0, 0},
      {"--stop-drivers-on-exit", OPT_FLAG, &stop_drivers, 0, 0},
      {NULL, 0, NULL, 0, 0},
  };
  if (parse_options(table, argc, argv, 1) != 0)
    return EXIT_USAGE;
  dfnet_log_level_t lv;
  if (level != NULL) {
    if (dfnet_log_level_parse(level, &lv) != 0) {
      fprintf(stderr, "dfnet-manager: --log-level: error|warn|info|debug\n");
      return EXIT_USAGE;
    }
    dfnet_log_set_level(lv);
  }
  char addr[128];
  if (parse_listen(listen, addr, sizeof addr, &m->cfg.port) != 0) {
    fprintf(stderr, "dfnet-manager: --listen: '%s' is not ADDR:PORT\n", listen);
    return EXIT_USAGE;
  }
  m->cfg.listen_address = addr;
  if (state_dir)
    snprintf(m->cfg.state_dir, sizeof m->cfg.state_dir, "%s", state_dir);
  else
    default_state_dir(m->cfg.state_dir, sizeof m->cfg.state_dir);
  m->cfg.drivers_dir = drivers;
  m->cfg.host_grace_ms = (uint32_t)grace * 1000u;
  m->cfg.keepalive_ms = (uint32_t)keepalive;
  m->cfg.stop_drivers_on_exit = stop_drivers;

  if (init_state(m->cfg.state_dir, NULL) != DFNET_STATUS_OK) {
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
  if (argc > 1 && strcmp(argv[1], "init") == 0)
    return cmd_init(argc, argv);
  if (argc > 1 && strcmp(argv[1], "issue") == 0)
    return cmd_issue(argc, argv);
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf(
        "usage: dfnet-manager [--listen ADDR:PORT] [--state-dir DIR] [--drivers DIR]\n"
        "                     [--host-grace SECONDS] [--keepalive-ms MS] [--log-level L]\n"
        "                     [--stop-drivers-on-exit]\n"
        "       dfnet-manager init [--state-dir DIR] [--san DNS|IP]...\n"
        "       dfnet-manager issue --role host|admin|operator|viewer --name NAME --out DIR\n"
        "                     [--san DNS|IP]... [--days N] [--state-dir DIR]\n");
    return 0;
  }
  return cmd_run(argc, argv);
}
