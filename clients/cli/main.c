/* dfnet: the command line of dfnet, modelled on `ffx driver` (issue 7; docs/design.md "Command
 * line"). `dfnet [GLOBAL OPTIONS] VERB [SUB] [ARGS]`, the commands in commands.c. Help at
 * every level: `dfnet --help`, `dfnet VERB --help` (its commands), `dfnet VERB SUB --help`
 * (its arguments and options); `dfnet --version`. A mistyped command or option is answered
 * with the nearest known one. Exit 0 on success, 1 on a failed call or status, 2 on bad
 * usage. Errors go to stderr as `dfnet: <STATUS>: message`. JSON output: clients/cli/JSON.md. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/cmdline.h"
#include "lib/log.h"
#include "lib/suggest.h"
#include "lib/version.h"

static bool is_help(const char *a) { return dfnet_cmdline_is_help(a) || strcmp(a, "help") == 0; }

/* An unknown global option: the nearest global one, --help or --version. */
static int unknown_global(const char *given) {
  dfnet_suggest_t s;
  char names[16][40];
  size_t n = 0;
  dfnet_suggest_init(&s, given);
  for (const cli_option_t *t = cli_global_options; t->name && n < 16; t++, n++) {
    snprintf(names[n], sizeof names[n], "--%s", t->name);
    dfnet_suggest_offer(&s, names[n]);
  }
  dfnet_suggest_offer(&s, "--help");
  dfnet_suggest_offer(&s, "--version");
  char msg[1024];
  dfnet_cmdline_unknown(msg, sizeof msg, "option", given, dfnet_suggest_best(&s),
                        "dfnet --help lists the options");
  return cli__usage("%s", msg);
}

/* Global options given before the verb: consumed here (the same table every command
 * accepts after it). Returns the index of the verb (or of --help / --version), or -1 after
 * printing an error. */
static int leading_globals(int argc, char **argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-') {
    if (is_help(argv[i]) || strcmp(argv[i], "--version") == 0)
      return i;
    const char *name = argv[i] + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option_t *o = NULL;
    for (const cli_option_t *t = cli_global_options; argv[i][1] == '-' && t->name; t++)
      if (strlen(t->name) == n && strncmp(t->name, name, n) == 0)
        o = t;
    if (o == NULL) {
      char given[64];
      snprintf(given, sizeof given, "%.*s", (int)(n + 2 < 60 ? n + 2 : 60), argv[i]);
      unknown_global(given);
      return -1;
    }
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    if (value == NULL) {
      cli__usage("--%s needs a value", o->name);
      return -1;
    }
    /* reuse the table parser for its range checks */
    char *sub[2] = {argv[i], eq ? NULL : argv[i + 1]};
    const cli_syntax_t syn = {.usage = "[GLOBAL OPTIONS] COMMAND", .about = ""};
    const char *args[1];
    size_t nargs;
    if (cli__parse(eq ? 1 : 2, sub, &syn, args, &nargs) != CLI_EXIT_OK)
      return -1;
    i += eq ? 1 : 2;
  }
  return i;
}

/* The command at argv[v] (and argv[v + 1]); NULL after printing why not (the verb's help
 * for `dfnet VERB --help`: *rc says how to exit). */
static const cli_command_t *find_command(int argc, char **argv, int v, int *rc) {
  const char *verb = argv[v];
  const char *sub = v + 1 < argc ? argv[v + 1] : NULL;
  const cli_command_t *c = cli__command_find(verb, sub);
  if (c != NULL)
    return c;
  *rc = CLI_EXIT_USAGE;
  if (!cli__verb_known(verb)) {
    char msg[1024];
    dfnet_cmdline_unknown(msg, sizeof msg, "command", verb, cli__suggest_command(NULL, verb),
                          "dfnet --help lists the commands");
    cli__usage("%s", msg);
    return NULL;
  }
  if (sub != NULL && is_help(sub)) {
    cli__help_verb(stdout, verb);
    *rc = CLI_EXIT_OK;
    return NULL;
  }
  char subs[200];
  cli__verb_subs(verb, subs, sizeof subs);
  const char *best = sub ? cli__suggest_command(verb, sub) : NULL;
  if (sub == NULL)
    cli__usage("'%s' wants one of its commands: %s (dfnet %s --help)", verb, subs, verb);
  else if (best != NULL)
    cli__usage("'%s' has no command '%s' (did you mean '%s'?); its commands: %s", verb, sub, best,
               subs);
  else
    cli__usage("'%s' has no command '%s'; its commands: %s", verb, sub, subs);
  return NULL;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int v = leading_globals(argc, argv);
  if (v < 0)
    return CLI_EXIT_USAGE;
  if (v >= argc) {
    cli__help_main(stderr);
    return CLI_EXIT_USAGE;
  }
  if (is_help(argv[v])) {
    cli__help_main(stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(argv[v], "--version") == 0) {
    dfnet_version_print("dfnet");
    return CLI_EXIT_OK;
  }
  int rc = CLI_EXIT_USAGE;
  const cli_command_t *found = find_command(argc, argv, v, &rc);
  if (found == NULL)
    return rc;
  int first = v + (found->sub ? 2 : 1);
  /* The log level must be known before anything logs: scan for --log-level. */
  dfnet_log_level_t level = DFNET_LOG_WARN;
  if (getenv("DFNET_LOG_LEVEL") != NULL)
    dfnet_log_level_parse(getenv("DFNET_LOG_LEVEL"), &level);
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--log-level") == 0 && dfnet_log_level_parse(argv[i + 1], &level) != 0)
      return cli__usage("--log-level wants error, warn, info or debug, not '%s'", argv[i + 1]);
  dfnet_log_set_level(level);
  return found->fn(argc - first, argv + first);
}
