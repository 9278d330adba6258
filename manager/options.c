/* dfnet-manager's command line (issue 5), one table per command (docs/style.md 12), as
 * host/agent/options.c has dfnet-host's:
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
 * Settings also come from a configuration file (issue 24 item 3; docs/configuration.md):
 * --config FILE, else manager.conf in $DFNET_CONFIG_DIR or /etc/dfnet, its keys the run
 * options' names without "--", the command line winning (mgr__read_config).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cmdline.h"
#include "lib/config_file.h"
#include "lib/log.h"
#include "lib/log_format.h"
#include "lib/pki.h"
#include "lib/suggest.h"
#include "lib/transport.h"
#include "lib/version.h"
#include "manager/options.h"

/* ---- command line (table-driven, docs/style.md 12) ------------------------------------- */

/* The default configuration file, as the help says it (lib/config_file.h). */
#define DFNET_MANAGER_CONF_HELP \
  "$DFNET_CONFIG_DIR/manager.conf, else " DFNET_CONFIG_DIR_DEFAULT "/manager.conf"

static const command_t commands[3];

mgr_args_t g_args = {.listen = "127.0.0.1:7443",
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
int mgr__parse_options(const command_t *c, int argc, char **argv, int first) {
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

char g_config_read[1024]; /* the configuration file read (logged by run), or "" */

/* The configuration file (docs/configuration.md; issue 24 item 3): --config FILE (it must
 * exist), else manager.conf in $DFNET_CONFIG_DIR or /etc/dfnet (a missing one is fine). Its
 * keys are the run options' names without "--"; it is checked whole against them, whatever
 * the command, and each setting of an option the command has and the command line did not
 * give goes through set_option, as a flag's value would. So `init` and `issue` take
 * state-dir from it: they make and use the CA where the manager run with that file looks.
 * Returns -1, or DFNET_CMDLINE_EXIT_USAGE (printed: "FILE:LINE: ..."). */
int mgr__read_config(const command_t *c) {
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

/* ---- the commands' tables ------------------------------------------------------------ */

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

static const opt_t init_options[] = {
    {"--state-dir", OPT_STRING, &g_args.state_dir, 0, 0, "DIR",
     "the state directory (default as the manager's; state-dir of manager.conf)"},
    {"--san", OPT_LIST, &g_args.sans, 0, 0, "DNS|IP",
     "a name or address hosts and clients reach the manager at (repeatable)"},
    {"--config", OPT_STRING, &g_args.config, 0, 0, "FILE",
     "the configuration file whose state-dir is used (default " DFNET_MANAGER_CONF_HELP ")"},
    OPT_END};

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

static const command_t commands[3] = {
    {NULL, mgr__cmd_run, run_options,
     "[--listen ADDR:PORT] [--state-dir DIR] [--drivers DIR] [OPTIONS]", "run the manager",
     "The manager of a dfnet fleet: the node topology, the driver index and the binder of\n"
     "every host, the fleet's CA, and the router of clients' calls to drivers. The state\n"
     "directory is created (0700) with the CA and the manager's certificate on the first\n"
     "start, as init does. SIGINT/SIGTERM stop it cleanly."},
    {"init", mgr__cmd_init, init_options, "init [--state-dir DIR] [--san DNS|IP]...",
     "create the state directory, the fleet's CA and the manager's certificate",
     "Create the state directory, the fleet's CA (ECDSA P-256, 10 years) and the manager's\n"
     "certificate, naming this host, localhost, 127.0.0.1, ::1 and every --san. Existing\n"
     "files are kept."},
    {"issue", mgr__cmd_issue, issue_options, "issue --role ROLE --name NAME --out DIR [OPTIONS]",
     "issue a certificate for a host or a client",
     "Issue a certificate signed by the fleet's CA: its CN is NAME and its OU the role\n"
     "(host for a dfnet-host; admin, operator or viewer for a client). Writes\n"
     "DIR/NAME.crt, NAME.key (0600), NAME.pem (both) and ca.crt."},
};

/* The command named by argv[1] (none: running the manager); NULL after an unknown one. */
const command_t *mgr__find_command(int argc, char **argv) {
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
