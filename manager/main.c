/* dfnet-manager: the driver manager and driver index of a dfnet fleet (issue 5).
 *
 *   dfnet-manager [OPTIONS]                 run the manager
 *   dfnet-manager init [OPTIONS]            create the state directory and the CA
 *   dfnet-manager issue --role R --name N --out DIR [OPTIONS]   issue a certificate
 *   dfnet-manager [COMMAND] --help | --version
 *
 * Every option, with its help text and range, is in its command's table below; the help
 * is printed from those tables (and the man page made from the help). An unknown command
 * or option is answered with the nearest known one; errors are one line on stderr,
 * "dfnet-manager: <message>", exit 2 for bad usage, 1 for a failure.
 *
 * Defaults: --listen 127.0.0.1:7443 (port 0 = any free port; the bound address is printed
 * as "dfnet-manager: listening on ADDR:PORT"), --host-grace 30. The state directory is
 * --state-dir, else $DFNET_STATE_DIR, else $XDG_STATE_HOME/dfnet, else
 * $HOME/.local/state/dfnet, else ./dfnet-state; it is created (0700) with the CA and the
 * manager's certificate on the first start (what `init` does). The durable store
 * <state-dir>/dfnet.db (leases, the lease queue, driver flags, composite node specs) is
 * opened and loaded before listening; one that cannot be is an error (exit 1) naming the
 * file and the cause. SIGINT/SIGTERM: stop accepting, stop every driver first if
 * --stop-drivers-on-exit, exit 0.
 *
 * Settings also come from a configuration file (issue 24 item 3; docs/configuration.md):
 * --config FILE, else manager.conf in $DFNET_CONFIG_DIR or /etc/dfnet, its keys the run
 * options' names without "--", the command line winning (read_config). Logs: lib/log.h
 * (journald priorities under systemd), --log-format json (lib/log_format.h).
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
#include "lib/config_file.h"
#include "lib/log.h"
#include "lib/log_format.h"
#include "lib/pki.h"
#include "lib/service_notify.h"
#include "lib/suggest.h"
#include "lib/version.h"
#include "manager/cert.h"
#include "manager/lease.h"
#include "manager/manager.h"

uint64_t mgr__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

dfnet_envelope_t *mgr__env(mgr_t *m) {
  dfnet_envelope_init(m->scratch);
  return m->scratch;
}

/* ---- command line (table-driven, docs/style.md 12) ------------------------------------- */

#define PROGRAM "dfnet-manager"
/* The default configuration file, as the help says it (lib/config_file.h). */
#define DFNET_MANAGER_CONF_HELP \
  "$DFNET_CONFIG_DIR/manager.conf, else " DFNET_CONFIG_DIR_DEFAULT "/manager.conf"

typedef struct str_list {
  const char *items[16];
  size_t count;
} str_list_t;

/* Every command's options in one struct (g_args, with the defaults), as the dfnet CLI keeps
 * its global options; each command's table names those it takes. */
typedef struct mgr_args {
  const char *listen, *state_dir, *drivers, *log_level; /* run (state_dir: all) */
  const char *metrics_listen; /* run: plain HTTP GET /metrics (issue 24 item 4) */
  /* config: every command's (docs/configuration.md); log_format: run */
  const char *config, *log_format;
  long host_grace, keepalive_ms, hello_timeout_ms, max_calls, default_deadline_ms;
  bool stop_drivers, require_lease, no_tls_tickets;
  const char *role, *name, *out; /* issue */
  long days;
  str_list_t sans; /* init, issue */
} mgr_args_t;

/* OPT_LOG_LEVEL and OPT_LOG_FORMAT are strings checked when given (a level, a log format). */
typedef enum opt_kind {
  OPT_FLAG,
  OPT_STRING,
  OPT_LONG,
  OPT_LIST,
  OPT_LOG_LEVEL,
  OPT_LOG_FORMAT
} opt_kind_t;

typedef struct opt {
  const char *name; /* "--listen" */
  opt_kind_t kind;
  void *dest;      /* in g_args: bool, const char *, long or str_list_t */
  long min, max;   /* OPT_LONG range */
  const char *arg; /* the value's name in the help ("ADDR:PORT"); NULL for a flag */
  const char *help;
} opt_t;

#define OPT_END \
  { NULL, 0, NULL, 0, 0, NULL, NULL }

/* The commands: running the manager (no command word), init, issue (table at the end). */
typedef struct command {
  const char *name; /* NULL: the manager itself */
  int (*fn)(const mgr_args_t *a);
  const opt_t *options;
  const char *usage; /* after "dfnet-manager " */
  const char *summary;
  const char *about;
} command_t;

static const command_t commands[3];

static mgr_args_t g_args = {.listen = "127.0.0.1:7443",
                            .host_grace = 30,
                            .keepalive_ms = DFNET_TRANSPORT_KEEPALIVE_MS_DEFAULT,
                            .hello_timeout_ms = 10000,
                            .max_calls = 256,
                            .default_deadline_ms = 30000,
                            .days = 365};

static void print_options(const opt_t *table) {
  static const dfnet_cmdline_layout_t layout = {.width = 26, .gap = "  "};
  static const dfnet_cmdline_help_t help_and_version[] = {
      {'h', "--help", NULL, "this text", false, 0, 0},
      {0, "--version", NULL, "print dfnet-manager's version", false, 0, 0}};
  char line[512];
  for (const opt_t *t = table; t->name; t++) {
    const dfnet_cmdline_help_t o = {
        0, t->name, t->arg, t->help, t->kind == OPT_LONG, (uint64_t)t->min, (uint64_t)t->max};
    dfnet_cmdline_help_line(line, sizeof line, &layout, &o);
    fputs(line, stdout);
  }
  for (size_t i = 0; i < 2; i++) {
    dfnet_cmdline_help_line(line, sizeof line, &layout, &help_and_version[i]);
    fputs(line, stdout);
  }
}

/* A command's help; the manager's own (no command word) lists the commands too. */
static void print_help(const command_t *c) {
  if (c->name == NULL) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
      printf("%s dfnet-manager %s\n", i ? "      " : "Usage:", commands[i].usage);
    printf("       dfnet-manager COMMAND --help\n\n%s\n\nCommands:\n", c->about);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
      if (commands[i].name != NULL)
        printf("  %-26s  %s\n", commands[i].name, commands[i].summary);
  } else {
    printf("Usage: dfnet-manager %s\n\n%s\n", c->usage, c->about);
  }
  printf("\nOptions:\n");
  print_options(c->options);
}

/* An unknown option: the nearest one of the table ("did you mean"). */
static int unknown_option(const command_t *c, const char *given) {
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, given);
  for (const opt_t *t = c->options; t->name; t++)
    dfnet_suggest_offer(&s, t->name);
  dfnet_suggest_offer(&s, "--help");
  dfnet_suggest_offer(&s, "--version");
  char where[96], msg[1024];
  snprintf(where, sizeof where, "dfnet-manager%s%s --help lists the options", c->name ? " " : "",
           c->name ? c->name : "");
  dfnet_cmdline_unknown(msg, sizeof msg, "option", given, dfnet_suggest_best(&s), where);
  return dfnet_cmdline_usage(PROGRAM, "%s", msg);
}

/* The value of option o, from the command line (where "") or from the configuration file
 * (where "FILE:LINE: ", the option named as its key; a flag's value true or false). The
 * value is kept (not copied). Returns -1, or DFNET_CMDLINE_EXIT_USAGE (printed). */
static int set_option(const opt_t *o, const char *v, const char *where) {
  const char *name = where[0] != '\0' ? o->name + 2 : o->name;
  dfnet_log_level_t level;
  dfnet_log_format_t format;
  bool flag;
  if (o->kind == OPT_STRING) {
    *(const char **)o->dest = v;
  } else if (o->kind == OPT_FLAG) {
    if (!dfnet_config_bool(v, &flag))
      return dfnet_cmdline_usage(PROGRAM, "%s%s: '%s' is not true or false (yes/no, 1/0)", where,
                                 name, v);
    *(bool *)o->dest = flag;
  } else if (o->kind == OPT_LOG_LEVEL || o->kind == OPT_LOG_FORMAT) {
    if (o->kind == OPT_LOG_LEVEL ? dfnet_log_level_parse(v, &level) != 0
                                 : dfnet_log_format_parse(v, &format) != 0)
      return dfnet_cmdline_usage(PROGRAM, "%s%s: '%s' is not %s", where, name, v,
                                 o->kind == OPT_LOG_LEVEL ? "error, warn, info or debug"
                                                          : "text or json");
    *(const char **)o->dest = v;
  } else if (o->kind == OPT_LIST) {
    str_list_t *l = o->dest;
    if (l->count == 16)
      return dfnet_cmdline_usage(PROGRAM, "%s%s given more than 16 times", where, name);
    l->items[l->count++] = v;
  } else {
    char *end;
    errno = 0;
    long num = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || num < o->min || num > o->max)
      return dfnet_cmdline_usage(PROGRAM, "%s%s: '%s' is not a number in %ld..%ld", where, name, v,
                                 o->min, o->max);
    *(long *)o->dest = num;
  }
  return -1;
}

/* The options the command line gave (by their index in the command's table): the file's
 * settings of those are not used (docs/configuration.md: the command line wins). */
static bool g_given[64];

/* Parse argv[first..argc) against the command's table: "--name value" or
 * "--name=value". Returns -1 to run the command, 0 when --help or --version was answered,
 * or DFNET_CMDLINE_EXIT_USAGE (message printed). */
static int parse_options(const command_t *c, int argc, char **argv, int first) {
  for (int i = first; i < argc; i++) {
    if (dfnet_cmdline_is_help(argv[i])) {
      print_help(c);
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
      dfnet_version_print(PROGRAM);
      return 0;
    }
    const char *eq = strncmp(argv[i], "--", 2) == 0 ? strchr(argv[i], '=') : NULL;
    size_t n = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
    const opt_t *o = NULL;
    for (const opt_t *t = c->options; t->name && !o; t++)
      if (strlen(t->name) == n && strncmp(argv[i], t->name, n) == 0)
        o = t;
    if (o == NULL) {
      char given[64];
      snprintf(given, sizeof given, "%.*s", (int)(n < 60 ? n : 60), argv[i]);
      if (argv[i][0] != '-')
        return dfnet_cmdline_usage(PROGRAM, "unexpected argument '%s' (dfnet-manager%s%s --help)",
                                   given, c->name ? " " : "", c->name ? c->name : "");
      return unknown_option(c, given);
    }
    if ((size_t)(o - c->options) < sizeof g_given / sizeof g_given[0])
      g_given[o - c->options] = true;
    if (o->kind == OPT_FLAG) {
      if (eq != NULL)
        return dfnet_cmdline_usage(PROGRAM, "%s takes no value", o->name);
      *(bool *)o->dest = true;
      continue;
    }
    if (eq == NULL && i + 1 >= argc)
      return dfnet_cmdline_usage(PROGRAM, "%s needs a value (%s)", o->name, o->arg);
    int rc = set_option(o, eq ? eq + 1 : argv[++i], "");
    if (rc >= 0)
      return rc;
  }
  return -1;
}

static char g_config_read[1024]; /* the configuration file read (logged by run), or "" */

/* The configuration file (docs/configuration.md; issue 24 item 3): --config FILE (it must
 * exist), else manager.conf in $DFNET_CONFIG_DIR or /etc/dfnet (a missing one is fine). Its
 * keys are the run options' names without "--"; it is checked whole against them, whatever
 * the command, and each setting of an option the command has and the command line did not
 * give goes through set_option, as a flag's value would. So `init` and `issue` take
 * state-dir from it: they make and use the CA where the manager run with that file looks.
 * Returns -1, or DFNET_CMDLINE_EXIT_USAGE (printed: "FILE:LINE: ..."). */
static int read_config(const command_t *c) {
  static dfnet_config_file_t file; /* the values are kept in g_args until exit */
  const opt_t *by_key[64];
  dfnet_config_key_t keys[64];
  size_t n = 0;
  for (const opt_t *t = commands[0].options; t->name && n < 64; t++) {
    if (strcmp(t->name, "--config") != 0) {
      keys[n] = (dfnet_config_key_t){t->name, t->kind == OPT_LIST};
      by_key[n++] = t;
    }
  }
  char path[1024], err[1400];
  if (g_args.config != NULL)
    snprintf(path, sizeof path, "%s", g_args.config);
  else
    dfnet_config_path(path, sizeof path, "manager.conf");
  if (dfnet_config_file_read(path, g_args.config != NULL, keys, n, &file, err, sizeof err) !=
      DFNET_STATUS_OK)
    return dfnet_cmdline_usage(PROGRAM, "%s", err);
  for (size_t i = 0; i < file.count; i++) {
    const dfnet_config_entry_t *e = &file.entries[i];
    const opt_t *o = c->options;
    while (o->name != NULL && strcmp(o->name, by_key[e->key]->name) != 0)
      o++;
    size_t idx = (size_t)(o - c->options);
    if (o->name == NULL || (idx < sizeof g_given / sizeof g_given[0] && g_given[idx]))
      continue; /* not this command's, or the command line's value wins */
    char where[1100];
    snprintf(where, sizeof where, "%s:%u: ", path, e->line);
    int rc = set_option(o, e->value, where);
    if (rc >= 0)
      return rc;
  }
  if (file.found)
    snprintf(g_config_read, sizeof g_config_read, "%s", path); /* logged once logging is set */
  return -1;
}

/* The state directory: --state-dir, else $DFNET_STATE_DIR, else $XDG_STATE_HOME/dfnet, else
 * $HOME/.local/state/dfnet, else ./dfnet-state. */
static void state_dir(const char *given, char *out, size_t size) {
  const char *e = getenv("DFNET_STATE_DIR");
  if (given != NULL) {
    snprintf(out, size, "%s", given);
  } else if (e && *e) {
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

static const opt_t init_options[] = {
    {"--state-dir", OPT_STRING, &g_args.state_dir, 0, 0, "DIR",
     "the state directory (default as the manager's; state-dir of manager.conf)"},
    {"--san", OPT_LIST, &g_args.sans, 0, 0, "DNS|IP",
     "a name or address hosts and clients reach the manager at (repeatable)"},
    {"--config", OPT_STRING, &g_args.config, 0, 0, "FILE",
     "the configuration file whose state-dir is used (default " DFNET_MANAGER_CONF_HELP ")"},
    OPT_END};

static int cmd_init(const mgr_args_t *a) {
  char dir[1024];
  state_dir(a->state_dir, dir, sizeof dir);
  dfnet_status_t st = init_state(dir, &a->sans);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: init %s failed: %s\n", dir, dfnet_status_str(st));
    return 1;
  }
  printf("state directory: %s\n", dir);
  return 0;
}

static const opt_t issue_options[] = {
    {"--role", OPT_STRING, &g_args.role, 0, 0, "ROLE",
     "host, admin, operator or viewer (required)"},
    {"--name", OPT_STRING, &g_args.name, 0, 0, "NAME",
     "the peer's name, the certificate's CN (required)"},
    {"--out", OPT_STRING, &g_args.out, 0, 0, "DIR",
     "where NAME.crt, .key, .pem and ca.crt go (created 0700; required)"},
    {"--san", OPT_LIST, &g_args.sans, 0, 0, "DNS|IP", "a subject alternative name (repeatable)"},
    {"--days", OPT_LONG, &g_args.days, 1, DFNET_PKI_MAX_DAYS, "N", "validity (default 365)"},
    {"--state-dir", OPT_STRING, &g_args.state_dir, 0, 0, "DIR",
     "the state directory holding the CA (default as the manager's)"},
    {"--config", OPT_STRING, &g_args.config, 0, 0, "FILE",
     "the configuration file whose state-dir is used (default " DFNET_MANAGER_CONF_HELP ")"},
    OPT_END};

static int cmd_issue(const mgr_args_t *a) {
  dfnet_pki_role_t r;
  if (a->role == NULL || a->name == NULL || a->out == NULL)
    return dfnet_cmdline_usage(
        PROGRAM, "issue: --role, --name and --out are required (dfnet-manager issue --help)");
  if (dfnet_pki_role_parse(a->role, &r) != DFNET_STATUS_OK)
    return dfnet_cmdline_usage(PROGRAM, "issue: --role '%s' is not host, admin, operator or viewer",
                               a->role);
  char dir[1024];
  state_dir(a->state_dir, dir, sizeof dir);
  if (init_state(dir, NULL) != DFNET_STATUS_OK)
    return 1;
  dfnet_status_t st = dfnet_pki_issue_to_dir(dir, r, a->name, a->out, a->sans.items, a->sans.count,
                                             (unsigned)a->days);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: issue failed: %s\n", dfnet_status_str(st));
    return 1;
  }
  printf("%s/%s.crt, %s.key, %s.pem and ca.crt written (role %s)\n", a->out, a->name, a->name,
         a->name, a->role);
  /* `dfnet cert list` shows it from now on (issue 23): a failure is said, the files stay */
  char crt[1200], err[1400] = "";
  snprintf(crt, sizeof crt, "%s/%s.crt", a->out, a->name);
  if (cert__record_issued(dir, crt, err, sizeof err) != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: issue: the certificate was not recorded: %s\n", err);
    return 1;
  }
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

static const opt_t run_options[] = {
    {"--listen", OPT_STRING, &g_args.listen, 0, 0, "ADDR:PORT",
     "where to listen (default 127.0.0.1:7443; port 0: any free port)"},
    {"--metrics-listen", OPT_STRING, &g_args.metrics_listen, 0, 0, "ADDR:PORT",
     "also serve GET /metrics as plain HTTP, without authentication, there (e.g. "
     "127.0.0.1:9464; the TLS listener serves it to viewer certificates)"},
    {"--state-dir", OPT_STRING, &g_args.state_dir, 0, 0, "DIR",
     "CA, certificates, registered packages (default $DFNET_STATE_DIR, else "
     "$XDG_STATE_HOME/dfnet, else ~/.local/state/dfnet)"},
    {"--drivers", OPT_STRING, &g_args.drivers, 0, 0, "DIR", "the boot drivers, one package each"},
    {"--host-grace", OPT_LONG, &g_args.host_grace, 0, 86400, "SECONDS",
     "how long a dropped host keeps its nodes, offline (default 30)"},
    {"--keepalive-ms", OPT_LONG, &g_args.keepalive_ms, 50, 600000, "MS",
     "ping a silent peer after this long, drop it after 3 (default 10000)"},
    {"--hello-timeout-ms", OPT_LONG, &g_args.hello_timeout_ms, 50, 600000, "MS",
     "close a session that sends no Hello within this long (default 10000)"},
    {"--max-calls-in-flight", OPT_LONG, &g_args.max_calls, 1, 1000000, "N",
     "calls one client may have open (default 256)"},
    {"--default-deadline-ms", OPT_LONG, &g_args.default_deadline_ms, 1, 86400000, "MS",
     "the deadline of a call that gives none (default 30000)"},
    {"--log-level", OPT_LOG_LEVEL, &g_args.log_level, 0, 0, "LEVEL",
     "error, warn, info or debug (default info; DFNET_LOG_LEVEL)"},
    {"--log-format", OPT_LOG_FORMAT, &g_args.log_format, 0, 0, "FORMAT",
     "text, or json: one JSON object a line (default text; DFNET_LOG_FORMAT)"},
    {"--config", OPT_STRING, &g_args.config, 0, 0, "FILE",
     "settings, one 'key = value' a line, the keys these options' names without '--'; the "
     "command line wins (default " DFNET_MANAGER_CONF_HELP ", if it exists; "
     "docs/configuration.md)"},
    {"--stop-drivers-on-exit", OPT_FLAG, &g_args.stop_drivers, 0, 0, NULL,
     "on SIGINT/SIGTERM, tell the hosts to stop their drivers first"},
    {"--no-tls-tickets", OPT_FLAG, &g_args.no_tls_tickets, 0, 0, NULL,
     "no TLS session tickets: hosts make full handshakes after a restart (benches; also "
     "DFNET_TLS_TICKETS=0)"},
    {"--require-lease", OPT_FLAG, &g_args.require_lease, 0, 0, NULL,
     "every client call needs a lease on its node (dfnet lease acquire)"},
    OPT_END};

static int cmd_run(const mgr_args_t *a) {
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
  state_dir(a->state_dir, m->cfg.state_dir, sizeof m->cfg.state_dir);
  m->cfg.drivers_dir = a->drivers;
  m->cfg.host_grace_ms = (uint32_t)a->host_grace * 1000u;
  m->cfg.keepalive_ms = (uint32_t)a->keepalive_ms;
  m->cfg.hello_timeout_ms = (uint32_t)a->hello_timeout_ms;
  m->cfg.max_calls_per_session = (uint32_t)a->max_calls;
  m->cfg.default_call_deadline_ms = (uint32_t)a->default_deadline_ms;
  m->cfg.stop_drivers_on_exit = a->stop_drivers;
  m->cfg.require_lease = a->require_lease;
  m->cfg.tls_tickets = !a->no_tls_tickets && !env_says_no("DFNET_TLS_TICKETS");

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

static const command_t commands[3] = {
    {NULL, cmd_run, run_options, "[--listen ADDR:PORT] [--state-dir DIR] [--drivers DIR] [OPTIONS]",
     "run the manager",
     "The manager of a dfnet fleet: the node topology, the driver index and the binder of\n"
     "every host, the fleet's CA, and the router of clients' calls to drivers. The state\n"
     "directory is created (0700) with the CA and the manager's certificate on the first\n"
     "start, as init does. SIGINT/SIGTERM stop it cleanly."},
    {"init", cmd_init, init_options, "init [--state-dir DIR] [--san DNS|IP]...",
     "create the state directory, the fleet's CA and the manager's certificate",
     "Create the state directory, the fleet's CA (ECDSA P-256, 10 years) and the manager's\n"
     "certificate, naming this host, localhost, 127.0.0.1, ::1 and every --san. Existing\n"
     "files are kept."},
    {"issue", cmd_issue, issue_options, "issue --role ROLE --name NAME --out DIR [OPTIONS]",
     "issue a certificate for a host or a client",
     "Issue a certificate signed by the fleet's CA: its CN is NAME and its OU the role\n"
     "(host for a dfnet-host; admin, operator or viewer for a client). Writes\n"
     "DIR/NAME.crt, NAME.key (0600), NAME.pem (both) and ca.crt."},
};

/* The command named by argv[1] (none: running the manager); NULL after an unknown one. */
static const command_t *find_command(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-')
    return &commands[0];
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, argv[1]);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (commands[i].name != NULL && strcmp(argv[1], commands[i].name) == 0)
      return &commands[i];
    dfnet_suggest_offer(&s, commands[i].name);
  }
  char msg[1024];
  dfnet_cmdline_unknown(msg, sizeof msg, "command", argv[1], dfnet_suggest_best(&s),
                        "dfnet-manager --help lists the commands");
  dfnet_cmdline_usage(PROGRAM, "%s", msg);
  return NULL;
}

int main(int argc, char **argv) {
  const command_t *c = find_command(argc, argv);
  if (c == NULL)
    return DFNET_CMDLINE_EXIT_USAGE;
  int rc = parse_options(c, argc, argv, c->name != NULL ? 2 : 1);
  if (rc < 0)
    rc = read_config(c);
  return rc >= 0 ? rc : c->fn(&g_args);
}
