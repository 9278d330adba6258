/* dfnet: the command line of dfnet, modelled on `ffx driver` (issue 7; docs/design.md "Command
 * line"). `dfnet [GLOBAL OPTIONS] VERB [SUBVERB] [ARGS]`; every command's --help lists its
 * options. Exit 0 on success, 1 on a failed call or status, 2 on bad usage. Errors go to
 * stderr as `dfnet: <STATUS>: message`. JSON output: clients/cli/JSON.md. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/log.h"

typedef struct command {
  const char *verb;
  const char *sub; /* NULL: the verb alone */
  cli_command_fn fn;
  const char *summary;
} command_t;

static const command_t commands[] = {
    {"host", "list", cmd_host_list, "list the fleet's hosts"},
    {"node", "list", cmd_node_list, "list nodes: [-v] [--exact] [FILTER]"},
    {"node", "show", cmd_node_show, "show one node in full"},
    {"node", "dump", cmd_node_dump, "the node tree [--graph]"},
    {"driver", "list", cmd_driver_list, "list the driver index [-v] [--loaded]"},
    {"driver", "register", cmd_driver_register, "upload and register a driver package"},
    {"driver", "disable", cmd_driver_disable, "disable a driver"},
    {"driver", "enable", cmd_driver_enable, "enable a driver"},
    {"driver", "restart", cmd_driver_restart, "restart the driver hosts running a driver"},
    {"composite", "list", cmd_composite_list, "list composites [-v]"},
    {"composite", "add", cmd_composite_add, "add a composite node spec from a JSON file"},
    {"bind", "why", cmd_bind_why, "why a node did or did not bind"},
    {"watch", NULL, cmd_watch, "print the fleet's events as they happen"},
    {"call", NULL, cmd_call, "call a driver's method"},
    {"rng", "read", cmd_rng_read, "read entropy from a hardware RNG"},
    {"serial", "console", cmd_serial_console, "connect the terminal to a serial port"},
    {"serial", "write", cmd_serial_write, "send bytes to a serial port"},
    {"serial", "read", cmd_serial_read, "read what a serial port received"},
    {"serial", "configure", cmd_serial_configure, "set a serial port's line settings"},
    {"usb", "descriptors", cmd_usb_descriptors, "a USB device's descriptors, as lsusb -v"},
    {"usb", "control", cmd_usb_control, "a control transfer on endpoint 0"},
    {"usb", "bulk-in", cmd_usb_bulk_in, "read from a bulk IN endpoint"},
    {"usb", "bulk-out", cmd_usb_bulk_out, "write to a bulk OUT endpoint"},
    {"usb", "interrupt-in", cmd_usb_interrupt_in, "read from an interrupt IN endpoint"},
    {"usb", "interrupt-out", cmd_usb_interrupt_out, "write to an interrupt OUT endpoint"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f,
          "Usage: dfnet [--manager URL] [--cert FILE] [--key FILE] [--ca FILE] COMMAND ...\n\n"
          "Commands:\n");
  for (size_t i = 0; i < COMMAND_COUNT; i++) {
    char name[40];
    snprintf(name, sizeof name, "%s%s%s", commands[i].verb, commands[i].sub ? " " : "",
             commands[i].sub ? commands[i].sub : "");
    fprintf(f, "  %-20s %s\n", name, commands[i].summary);
  }
  fprintf(f,
          "\nSettings: --manager/--cert/--key/--ca, else DFNET_MANAGER, DFNET_CERT, DFNET_KEY,\n"
          "DFNET_CA, else the config file (DFNET_CONFIG, or ~/.config/dfnet/config) with lines\n"
          "`manager = wss://host:port`, `cert = FILE`, `key = FILE`, `ca = FILE`.\n"
          "Every listing takes --json (clients/cli/JSON.md). `dfnet COMMAND --help` for more.\n"
          "Exit status: 0 success, 1 a failed call or status, 2 bad usage.\n");
}

/* Global options given before the verb: consumed here (the same table every command
 * accepts after it). Returns the index of the verb, or -1 after printing an error. */
static int leading_globals(int argc, char **argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-') {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return i;
    const char *name = argv[i] + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option_t *o = NULL;
    for (const cli_option_t *t = cli_global_options; argv[i][1] == '-' && t->name; t++)
      if (strlen(t->name) == n && strncmp(t->name, name, n) == 0)
        o = t;
    if (o == NULL) {
      cli__usage("unknown global option '%s'", argv[i]);
      return -1;
    }
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    if (value == NULL) {
      cli__usage("--%s needs a value", o->name);
      return -1;
    }
    /* reuse the table parser for its range checks */
    char *sub[2] = {argv[i], eq ? NULL : argv[i + 1]};
    const cli_syntax_t syn = {"[GLOBAL OPTIONS] COMMAND", "", NULL, 0, 0, NULL};
    const char *args[1];
    size_t nargs;
    if (cli__parse(eq ? 1 : 2, sub, &syn, args, &nargs) != CLI_EXIT_OK)
      return -1;
    i += eq ? 1 : 2;
  }
  return i;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int v = leading_globals(argc, argv);
  if (v < 0)
    return CLI_EXIT_USAGE;
  if (v >= argc) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (strcmp(argv[v], "--help") == 0 || strcmp(argv[v], "-h") == 0 ||
      strcmp(argv[v], "help") == 0) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  const char *verb = argv[v];
  const char *sub = v + 1 < argc ? argv[v + 1] : NULL;
  const command_t *found = NULL;
  bool verb_known = false;
  for (size_t i = 0; i < COMMAND_COUNT && found == NULL; i++) {
    if (strcmp(commands[i].verb, verb) != 0)
      continue;
    verb_known = true;
    if (commands[i].sub == NULL || (sub != NULL && strcmp(commands[i].sub, sub) == 0))
      found = &commands[i];
  }
  if (found == NULL) {
    if (verb_known)
      cli__usage("'%s' wants one of its subcommands, not '%s' (dfnet --help)", verb,
                 sub ? sub : "nothing");
    else
      cli__usage("unknown command '%s' (dfnet --help)", verb);
    return CLI_EXIT_USAGE;
  }
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
