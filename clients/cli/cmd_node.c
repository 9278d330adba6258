/* dfnet CLI: node control (role admin; issue 19, docs/architecture.md "Node control"), the
 * `ffx driver` verbs that change a node: bind (DFv2 RequestBind: a manual bind, which also
 * clears a quarantine and an unbind), unbind, suspend, resume, and test nodes (`ffx driver
 * test-node add|remove`). Each is one request the manager answers with a Status; what it
 * says on success is printed after the node. */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "dfnet/driver.h"

#define NODE_ARG_HELP "  NODE     the node's moniker\n"

/* One node control command's state. */
typedef struct node_control {
  const char *driver;     /* bind --driver */
  bool force;             /* bind --force */
  const char *reason;     /* suspend --reason */
  uint32_t flags;         /* suspend: DFNET_SUSPEND_FLAG_* */
  cli_strings_t property; /* add-test --property */
  cli_property_arg_t *props;
  char message[512]; /* the manager's answer on success */
  char moniker[700]; /* add-test: PARENT.NAME */
} node_control_t;

/* What the command did, then the manager's words when it said some. */
static void print_done(const char *what, const char *node, const char *message) {
  printf("%s %s%s%s\n", what, node, message[0] ? ": " : "", message);
}

/* The library call's outcome: on OK the manager's message is kept for print. */
static int keep(node_control_t *s, dfnet_status_t st, const dfnet_client_error_t *err) {
  if (st == DFNET_STATUS_OK)
    snprintf(s->message, sizeof s->message, "%s", err->message);
  return cli__status(st, err);
}

/* ---- node bind ------------------------------------------------------------------------ */

static int node_bind_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  dfnet_client_error_t err;
  return keep(s, dfnet_client_request_bind(run->client, run->args[0], s->force, s->driver, &err),
              &err);
}

static int node_bind_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  print_done("Bind requested for", run->args[0], s->message);
  return CLI_EXIT_OK;
}

int cmd_node_bind(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, node_bind_request, NULL, node_bind_print, NULL};
  node_control_t s = {0};
  const cli_option_t opts[] = {{"driver", 0, CLI_OPT_STRING, &s.driver, 0, 0, "DRIVER",
                                "only this driver: its URL (or the end of it) or its name"},
                               {"force", 0, CLI_OPT_FLAG, &s.force, 0, 0, NULL,
                                "a bound node: stop its driver and bind it again"},
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "node bind [--driver DRIVER] [--force] NODE",
      .about =
          "Bind a node now (role admin; DFv2 RequestBind, `ffx driver` manual binding): it "
          "is matched against the index with fuchsia.BIND_AUTOBIND 0, so drivers that "
          "disable autobind bind here only. It also binds a node that `node unbind` left "
          "unbound and clears a quarantine.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = NODE_ARG_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- node unbind ---------------------------------------------------------------------- */

static int node_unbind_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  dfnet_client_error_t err;
  return keep(s, dfnet_client_node_unbind(run->client, run->args[0], &err), &err);
}

static int node_unbind_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  print_done("Unbound", run->args[0], s->message);
  return CLI_EXIT_OK;
}

int cmd_node_unbind(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, node_unbind_request, NULL, node_unbind_print, NULL};
  static const cli_syntax_t syn = {
      .usage = "node unbind NODE",
      .about =
          "Unbind a node (role admin): stop its driver, the drivers below it first. It stays "
          "unbound (\"unbound by <you>\") until `dfnet node bind`.",
      .min_args = 1,
      .max_args = 1,
      .args_help = NODE_ARG_HELP};
  node_control_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- node suspend / resume ------------------------------------------------------------ */

static const struct {
  const char *name;
  uint32_t flags;
} suspend_reasons[] = {
    {"suspend-ram", DFNET_SUSPEND_FLAG_SUSPEND_RAM},
    {"reboot", DFNET_SUSPEND_FLAG_REBOOT},
    {"poweroff", DFNET_SUSPEND_FLAG_POWEROFF},
    {"mexec", DFNET_SUSPEND_FLAG_MEXEC},
};

static int node_suspend_prepare(cli_run_t *run) {
  node_control_t *s = run->ctx;
  if (s->reason == NULL)
    s->reason = "suspend-ram";
  for (size_t i = 0; i < sizeof suspend_reasons / sizeof suspend_reasons[0]; i++) {
    if (strcmp(s->reason, suspend_reasons[i].name) == 0) {
      s->flags = suspend_reasons[i].flags;
      return CLI_EXIT_OK;
    }
  }
  return cli__usage("--reason wants reboot, poweroff, mexec or suspend-ram, not '%s'", s->reason);
}

static int node_suspend_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  dfnet_client_error_t err;
  return keep(s, dfnet_client_node_suspend(run->client, run->args[0], s->flags, &err), &err);
}

static int node_suspend_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  char what[64];
  snprintf(what, sizeof what, "Suspended (%s)", s->reason);
  print_done(what, run->args[0], s->message);
  return CLI_EXIT_OK;
}

int cmd_node_suspend(int argc, char **argv) {
  static const cli_command_ops_t ops = {node_suspend_prepare, node_suspend_request, NULL,
                                        node_suspend_print, NULL};
  node_control_t s = {0};
  const cli_option_t opts[] = {
      {"reason", 0, CLI_OPT_STRING, &s.reason, 0, 0, "REASON",
       "reboot, poweroff, mexec or suspend-ram (default), the driver's suspend flags"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "node suspend [--reason REASON] NODE",
      .about =
          "Suspend the drivers of a node and of every node below it, children first (role "
          "admin); returns once every driver has answered. Calls to a suspended node end "
          "UNAVAILABLE \"suspended\" until `dfnet node resume`.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = NODE_ARG_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}

static int node_resume_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  dfnet_client_error_t err;
  return keep(s, dfnet_client_node_resume(run->client, run->args[0], &err), &err);
}

static int node_resume_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  print_done("Resumed", run->args[0], s->message);
  return CLI_EXIT_OK;
}

int cmd_node_resume(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, node_resume_request, NULL, node_resume_print, NULL};
  static const cli_syntax_t syn = {
      .usage = "node resume NODE",
      .about = "Resume a suspended node's drivers, parents first (role admin).",
      .min_args = 1,
      .max_args = 1,
      .args_help = NODE_ARG_HELP};
  node_control_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- node add-test / remove-test ------------------------------------------------------ */

/* Every --property parsed before anything is sent; a mistake exits 2 naming it. */
static int node_add_test_prepare(cli_run_t *run) {
  node_control_t *s = run->ctx;
  const char *name = run->args[1];
  if (name[0] == '\0' || strchr(name, '.') != NULL)
    return cli__usage("'%s': a node name, not empty and without '.'", name);
  snprintf(s->moniker, sizeof s->moniker, "%s.%s", run->args[0], name);
  if (s->property.n > 0 && (s->props = calloc(s->property.n, sizeof *s->props)) == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  for (size_t i = 0; i < s->property.n; i++) {
    char why[400];
    if (!cli__property_parse(s->property.v[i], &s->props[i], why, sizeof why))
      return cli__usage("--property %s: %s", s->property.v[i], why);
  }
  return CLI_EXIT_OK;
}

static int node_add_test_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  dfnet_client_property_t props[CLI_STRINGS_MAX];
  for (size_t i = 0; i < s->property.n; i++)
    props[i] = s->props[i].prop;
  dfnet_client_error_t err;
  return keep(s,
              dfnet_client_test_node_add(run->client, run->args[0], run->args[1], props,
                                         s->property.n, &err),
              &err);
}

static int node_add_test_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  print_done("Added test node", s->moniker, s->message);
  return CLI_EXIT_OK;
}

static void node_add_test_release(cli_run_t *run) {
  node_control_t *s = run->ctx;
  free(s->props);
}

int cmd_node_add_test(int argc, char **argv) {
  static const cli_command_ops_t ops = {node_add_test_prepare, node_add_test_request, NULL,
                                        node_add_test_print, node_add_test_release};
  node_control_t s = {0};
  const cli_option_t opts[] = {{"property", 0, CLI_OPT_LIST, &s.property, 0, CLI_STRINGS_MAX,
                                "KEY=VALUE", "a property of the node (repeat it: at most 64)"},
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "node add-test PARENT NAME [--property KEY=VALUE]...",
      .about =
          "Add a test node PARENT.NAME (role admin; `ffx driver test-node add`): only the "
          "manager has it; it is matched against the index like any node but never started, "
          "and its reason (`node show`, `bind why`) says which driver would bind it. KEY is "
          "a fuchsia.BIND_* name (an integer key), a number, or a string key; VALUE is a "
          "number (decimal or 0x hex), true or false, an enum value lib.KEY.VALUE, or a "
          "string (\"quoted\" to keep it one). A mistake exits 2 naming it.",
      .options = opts,
      .min_args = 2,
      .max_args = 2,
      .args_help =
          "  PARENT   the parent node's moniker (any node)\n"
          "  NAME     the test node's name (no '.')\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}

static int node_remove_test_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  dfnet_client_error_t err;
  return keep(s, dfnet_client_test_node_remove(run->client, run->args[0], &err), &err);
}

static int node_remove_test_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  print_done("Removed test node", run->args[0], s->message);
  return CLI_EXIT_OK;
}

int cmd_node_remove_test(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, node_remove_test_request, NULL,
                                        node_remove_test_print, NULL};
  static const cli_syntax_t syn = {
      .usage = "node remove-test NODE",
      .about =
          "Remove a test node (role admin; `ffx driver test-node remove`); any other "
          "node is refused.",
      .min_args = 1,
      .max_args = 1,
      .args_help = "  NODE     the test node's moniker\n"};
  node_control_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}
