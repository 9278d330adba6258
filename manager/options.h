/* dfnet-manager's command line (options.c), private to the executable's files (main.c,
 * options.c, init_issue.c): every command's options in one struct, the option and command
 * tables' shapes, and the commands. Not part of dfnet_manager_lib.
 */
#ifndef DFNET_MANAGER_OPTIONS_H
#define DFNET_MANAGER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "dfnet/status.h"

#define PROGRAM "dfnet-manager"

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

/* The options given (the command line's, then the configuration file's; with the defaults),
 * kept until exit (options.c). */
extern mgr_args_t g_args;

/* The configuration file read (logged by mgr__cmd_run), or "" (options.c). */
extern char g_config_read[1024];

/* ---- options.c ------------------------------------------------------------------------ */

/* The command named by argv[1] (none: running the manager); NULL after an unknown one
 * (printed). */
const command_t *mgr__find_command(int argc, char **argv);

/* Parse argv[first..argc) against c's table into g_args. Returns -1 to run the command, 0
 * when --help or --version was answered, or DFNET_CMDLINE_EXIT_USAGE (message printed). */
int mgr__parse_options(const command_t *c, int argc, char **argv, int first);

/* The configuration file's settings of c's options the command line did not give, into
 * g_args. Returns -1, or DFNET_CMDLINE_EXIT_USAGE (printed: "FILE:LINE: ..."). */
int mgr__read_config(const command_t *c);

/* ---- the commands: each returns the exit code ------------------------------------------ */

int mgr__cmd_run(const mgr_args_t *a);   /* main.c: run the manager */
int mgr__cmd_init(const mgr_args_t *a);  /* init_issue.c */
int mgr__cmd_issue(const mgr_args_t *a); /* init_issue.c */

/* ---- init_issue.c: the state directory ------------------------------------------------- */

/* The state directory into out[size]: `given` (--state-dir; may be NULL), else
 * $DFNET_STATE_DIR, else $XDG_STATE_HOME/dfnet, else $HOME/.local/state/dfnet, else
 * ./dfnet-state. */
void mgr__state_dir(const char *given, char *out, size_t size);

/* Create the CA and the manager's certificate in `dir` unless they exist, the certificate
 * naming this host, localhost, 127.0.0.1, ::1 and `extra` (NULL = none). Errors: the PKI's
 * (lib/pki.h dfnet_pki_init_state_dir). */
dfnet_status_t mgr__init_state(const char *dir, const str_list_t *extra);

#endif
