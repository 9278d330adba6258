/* dfnet CLI: the command table — every command `dfnet` knows, the table main() dispatches
 * with, `dfnet --help` and `dfnet VERB --help` list, and `dfnet completion` and the man
 * page are generated from — and the help it gives at the top and verb levels. */
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/trust.h"
#include "lib/suggest.h"

const cli_command_t cli_commands[] = {
    {"host", "list", cmd_host_list, "list the fleet's hosts"},
    {"node", "list", cmd_node_list, "list nodes: [-v] [--exact] [FILTER]"},
    {"node", "show", cmd_node_show, "show one node in full"},
    {"node", "dump", cmd_node_dump, "the node tree [--graph]"},
    {"node", "bind", cmd_node_bind, "bind a node now (manual bind) [--driver D] [--force]"},
    {"node", "unbind", cmd_node_unbind, "stop a node's driver and leave it unbound"},
    {"node", "suspend", cmd_node_suspend, "suspend a node's drivers [--reason R]"},
    {"node", "resume", cmd_node_resume, "resume a suspended node's drivers"},
    {"node", "add-test", cmd_node_add_test, "add a test node: PARENT NAME --property K=V..."},
    {"node", "remove-test", cmd_node_remove_test, "remove a test node"},
    {"driver", "list", cmd_driver_list, "list the driver index [-v] [--loaded]"},
    {"driver", "register", cmd_driver_register, "upload and register a driver package"},
    {"driver", "disable", cmd_driver_disable, "disable a driver"},
    {"driver", "enable", cmd_driver_enable, "enable a driver"},
    {"driver", "restart", cmd_driver_restart, "restart the driver hosts running a driver"},
    {"driver", "unregister", cmd_driver_unregister, "unregister a registered driver"},
    {"driver", "host", cmd_driver_host, "driver hosts: `driver host list [HOST]`"},
    {"composite", "list", cmd_composite_list, "list composites [-v]"},
    {"composite", "add", cmd_composite_add, "add a composite node spec from a JSON file"},
    {"bind", "why", cmd_bind_why, "why a node did or did not bind"},
    {"watch", NULL, cmd_watch, "print the fleet's events as they happen"},
    {"ui", NULL, cmd_ui, "a web page of the fleet, live: [--listen 127.0.0.1:8080]"},
    {"call", NULL, cmd_call, "call a driver's method"},
    {"rng", "read", cmd_rng_read, "read entropy from a hardware RNG"},
    {"power", "on", cmd_power_on, "switch a board's power on"},
    {"power", "off", cmd_power_off, "switch a board's power off"},
    {"power", "cycle", cmd_power_cycle, "switch it off, wait, switch it on [--off MS]"},
    {"power", "get", cmd_power_get, "a board's power state and since when"},
    {"board", "add", cmd_board_add, "define a lab board: its power switch and console"},
    {"board", "list", cmd_board_list, "the lab boards that are up"},
    {"board", "show", cmd_board_show, "a board's power state and console's last line"},
    {"board", "cycle", cmd_board_cycle, "power-cycle a board until its console says TEXT"},
    {"board", "console", cmd_board_console, "a board's console [--read-only]"},
    {"image", "upload", cmd_image_upload, "put a file into the artifact cache of a node's host"},
    {"image", "write", cmd_image_write, "upload an image and write it to a block device"},
    {"serial", "console", cmd_serial_console, "connect the terminal to a serial port"},
    {"serial", "write", cmd_serial_write, "send bytes to a serial port"},
    {"serial", "read", cmd_serial_read, "read what a serial port received"},
    {"serial", "log", cmd_serial_log, "a port's history: [--since T | --lines N] [--follow]"},
    {"serial", "configure", cmd_serial_configure, "set a serial port's line settings"},
    {"usb", "descriptors", cmd_usb_descriptors, "a USB device's descriptors, as lsusb -v"},
    {"usb", "control", cmd_usb_control, "a control transfer on endpoint 0"},
    {"usb", "bulk-in", cmd_usb_bulk_in, "read from a bulk IN endpoint"},
    {"usb", "bulk-out", cmd_usb_bulk_out, "write to a bulk OUT endpoint"},
    {"usb", "interrupt-in", cmd_usb_interrupt_in, "read from an interrupt IN endpoint"},
    {"usb", "interrupt-out", cmd_usb_interrupt_out, "write to an interrupt OUT endpoint"},
    {"lease", "acquire", cmd_lease_acquire, "take nodes for exclusive use: TARGET... [--wait]"},
    {"lease", "list", cmd_lease_list, "who holds which nodes, until when; who waits"},
    {"lease", "show", cmd_lease_show, "one lease in full"},
    {"lease", "renew", cmd_lease_renew, "renew a lease (default: DFNET_LEASE's) [--ttl D]"},
    {"lease", "release", cmd_lease_release, "release a lease [--force --reason R]"},
    {"lease", "history", cmd_lease_history, "the leases' audit log [--target T] [--since 1d]"},
    {"lease", "run", cmd_lease_run, "run a command holding a lease: TARGET... -- CMD ARGS"},
    {"cert", "list", cmd_cert_list, "the certificates the manager has seen or issued [--json]"},
    {"cert", "revoke", cmd_cert_revoke, "revoke a certificate: NAME|SERIAL --reason R"},
    {"cert", "renew", cmd_cert_renew, "renew this CLI's own certificate (a new key)"},
    {"login", NULL, cmd_login, "enrol with a join token: URL --token T --ca-pin P"},
    {"token", "create", cmd_token_create, "create a join token: --role R [--name N] [--ttl D]"},
    {"token", "list", cmd_token_list, "the join tokens (never their secrets) [--json]"},
    {"token", "revoke", cmd_token_revoke, "revoke a join token: ID"},
    {"completion", NULL, cmd_completion, "print the bash or zsh completion script"},
};
const size_t cli_command_count = sizeof cli_commands / sizeof cli_commands[0];

bool cli__verb_known(const char *verb) {
  for (size_t i = 0; i < cli_command_count; i++)
    if (strcmp(cli_commands[i].verb, verb) == 0)
      return true;
  return false;
}

const cli_command_t *cli__command_find(const char *verb, const char *sub) {
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command_t *c = &cli_commands[i];
    if (strcmp(c->verb, verb) != 0)
      continue;
    if (c->sub == NULL || (sub != NULL && strcmp(c->sub, sub) == 0))
      return c;
  }
  return NULL;
}

const char *cli__suggest_command(const char *verb, const char *word) {
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, word);
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command_t *c = &cli_commands[i];
    if (verb == NULL)
      dfnet_suggest_offer(&s, c->verb);
    else if (strcmp(c->verb, verb) == 0)
      dfnet_suggest_offer(&s, c->sub);
  }
  return dfnet_suggest_best(&s);
}

/* "list, show, dump": the subcommands of a verb. */
void cli__verb_subs(const char *verb, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < cli_command_count && used < cap; i++) {
    const cli_command_t *c = &cli_commands[i];
    if (strcmp(c->verb, verb) != 0 || c->sub == NULL)
      continue;
    int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", c->sub);
    if (w < 0)
      break;
    used += (size_t)w;
  }
}

static void list_commands(FILE *f, const char *verb) {
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command_t *c = &cli_commands[i];
    if (verb != NULL && strcmp(c->verb, verb) != 0)
      continue;
    char name[40];
    snprintf(name, sizeof name, "%s%s%s", c->verb, c->sub ? " " : "", c->sub ? c->sub : "");
    fprintf(f, "  %-20s  %s\n", name, c->summary);
  }
}

void cli__help_main(FILE *f) {
  fprintf(f,
          "Usage: dfnet [--manager URL] [--cert FILE] [--key FILE] [--ca FILE] COMMAND ...\n"
          "       dfnet COMMAND --help\n"
          "       dfnet --version\n\n"
          "The command line of dfnet, Fuchsia's driver framework (DFv2) across a network: the\n"
          "fleet's hosts, nodes and drivers, as ffx driver shows them, and calls to drivers.\n\n"
          "Commands:\n");
  list_commands(f, NULL);
  static const cli_option_t top[] = {
      {"help", 'h', CLI_OPT_FLAG, NULL, 0, 0, NULL,
       "this text (`dfnet COMMAND --help`: a command's)"},
      {"version", 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, "print dfnet's version"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  fprintf(f, "\nOptions:\n");
  cli__help_options(f, top);
  cli__help_options(f, cli_global_options);
  fprintf(f,
          "\nSettings:\n"
          "  --manager/--cert/--key/--ca, else DFNET_MANAGER, DFNET_CERT, DFNET_KEY, DFNET_CA,\n"
          "  else the config file (DFNET_CONFIG, or ~/.config/dfnet/config) with lines\n"
          "  `manager = wss://host:port`, `cert = FILE`, `key = FILE`, `ca = FILE`.\n"
          "  Every listing takes --json (clients/cli/JSON.md).\n\n"
          "Exit status:\n"
          "  0 success, 1 a failed call or status, 2 bad usage. Errors go to stderr as\n"
          "  `dfnet: <STATUS>: message`.\n");
}

void cli__help_verb(FILE *f, const char *verb) {
  fprintf(f, "Usage: dfnet %s COMMAND [OPTIONS] ...\n\nCommands:\n", verb);
  list_commands(f, verb);
  fprintf(f, "\n`dfnet %s COMMAND --help` for a command's arguments and options.\n", verb);
}
