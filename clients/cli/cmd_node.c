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

/* The node control commands: one request on one node each (add-test: PARENT NAME). */
typedef enum node_action {
  NODE_BIND,
  NODE_UNBIND,
  NODE_SUSPEND,
  NODE_RESUME,
  NODE_ADD_TEST,
  NODE_REMOVE_TEST,
} node_action_t;

/* What differs between them besides the request: their syntax, and what print says was done
 * ("Unbound NODE"; suspend's names its reason). By node_action_t. */
static const struct {
  const char *usage, *about;
  size_t args; /* positional arguments, all required */
  const char *args_help;
  const char *done;
} node_actions[] = {
    [NODE_BIND] = {"node bind [--driver DRIVER] [--force] NODE",
                   "Bind a node now (role admin; DFv2 RequestBind, `ffx driver` manual binding): "
                   "it is matched against the index with fuchsia.BIND_AUTOBIND 0, so drivers "
                   "that disable autobind bind here only. It also binds a node that `node "
                   "unbind` left unbound and clears a quarantine.",
                   1, NODE_ARG_HELP, "Bind requested for"},
    [NODE_UNBIND] = {"node unbind NODE",
                     "Unbind a node (role admin): stop its driver, the drivers below it first. "
                     "It stays unbound (\"unbound by <you>\") until `dfnet node bind`.",
                     1, NODE_ARG_HELP, "Unbound"},
    [NODE_SUSPEND] = {"node suspend [--reason REASON] NODE",
                      "Suspend the drivers of a node and of every node below it, children first "
                      "(role admin); returns once every driver has answered. Calls to a "
                      "suspended node end UNAVAILABLE \"suspended\" until `dfnet node resume`.",
                      1, NODE_ARG_HELP, "Suspended"},
    [NODE_RESUME] = {"node resume NODE",
                     "Resume a suspended node's drivers, parents first (role admin).", 1,
                     NODE_ARG_HELP, "Resumed"},
    [NODE_ADD_TEST] = {"node add-test PARENT NAME [--property KEY=VALUE]...",
                       "Add a test node PARENT.NAME (role admin; `ffx driver test-node add`): "
                       "only the manager has it; it is matched against the index like any node "
                       "but never started, and its reason (`node show`, `bind why`) says which "
                       "driver would bind it. KEY is a fuchsia.BIND_* name (an integer key), a "
                       "number, or a string key; VALUE is a number (decimal or 0x hex), true or "
                       "false, an enum value lib.KEY.VALUE, or a string (\"quoted\" to keep it "
                       "one). A mistake exits 2 naming it.",
                       2,
                       "  PARENT   the parent node's moniker (any node)\n"
                       "  NAME     the test node's name (no '.')\n",
                       "Added test node"},
    [NODE_REMOVE_TEST] = {"node remove-test NODE",
                          "Remove a test node (role admin; `ffx driver test-node remove`); any "
                          "other node is refused.",
                          1, "  NODE     the test node's moniker\n", "Removed test node"},
};

/* One node control command's state. */
typedef struct node_control {
  node_action_t action;
  const char *driver;     /* bind --driver */
  bool force;             /* bind --force */
  const char *reason;     /* suspend --reason */
  uint32_t flags;         /* suspend: DFNET_SUSPEND_FLAG_* */
  cli_strings_t property; /* add-test --property */
  cli_property_arg_t *props;
  char message[512]; /* the manager's answer on success */
  char moniker[700]; /* add-test: PARENT.NAME */
} node_control_t;

/* ---- node suspend: --reason ----------------------------------------------------------- */

static const struct {
  const char *name;
  uint32_t flags;
} suspend_reasons[] = {
    {"suspend-ram", DFNET_SUSPEND_FLAG_SUSPEND_RAM},
    {"reboot", DFNET_SUSPEND_FLAG_REBOOT},
    {"poweroff", DFNET_SUSPEND_FLAG_POWEROFF},
    {"mexec", DFNET_SUSPEND_FLAG_MEXEC},
};

static int suspend_prepare(node_control_t *s) {
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

/* ---- node add-test: PARENT NAME and --property ---------------------------------------- */

/* Every --property parsed before anything is sent; a mistake exits 2 naming it. */
static int add_test_prepare(node_control_t *s, const char *parent, const char *name) {
  if (name[0] == '\0' || strchr(name, '.') != NULL)
    return cli__usage("'%s': a node name, not empty and without '.'", name);
  snprintf(s->moniker, sizeof s->moniker, "%s.%s", parent, name);
  if (s->property.n > 0 && (s->props = calloc(s->property.n, sizeof *s->props)) == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  for (size_t i = 0; i < s->property.n; i++) {
    char why[400];
    if (!cli__property_parse(s->property.v[i], &s->props[i], why, sizeof why))
      return cli__usage("--property %s: %s", s->property.v[i], why);
  }
  return CLI_EXIT_OK;
}

static dfnet_status_t add_test_request(cli_run_t *run, const node_control_t *s,
                                       dfnet_client_error_t *err) {
  dfnet_client_property_t props[CLI_STRINGS_MAX];
  for (size_t i = 0; i < s->property.n; i++)
    props[i] = s->props[i].prop;
  return dfnet_client_test_node_add(run->client, run->args[0], run->args[1], props, s->property.n,
                                    err);
}

/* ---- the hooks every node control command runs ---------------------------------------- */

static int node_control_prepare(cli_run_t *run) {
  node_control_t *s = run->ctx;
  if (s->action == NODE_SUSPEND)
    return suspend_prepare(s);
  if (s->action == NODE_ADD_TEST)
    return add_test_prepare(s, run->args[0], run->args[1]);
  return CLI_EXIT_OK;
}

/* The request; on OK the manager's message is kept for print. */
static int node_control_request(cli_run_t *run) {
  node_control_t *s = run->ctx;
  const char *node = run->args[0];
  dfnet_client_error_t err;
  dfnet_status_t st;
  switch (s->action) {
  case NODE_BIND:
    st = dfnet_client_request_bind(run->client, node, s->force, s->driver, &err);
    break;
  case NODE_UNBIND:
    st = dfnet_client_node_unbind(run->client, node, &err);
    break;
  case NODE_SUSPEND:
    st = dfnet_client_node_suspend(run->client, node, s->flags, &err);
    break;
  case NODE_RESUME:
    st = dfnet_client_node_resume(run->client, node, &err);
    break;
  case NODE_ADD_TEST:
    st = add_test_request(run, s, &err);
    break;
  default:
    st = dfnet_client_test_node_remove(run->client, node, &err);
    break;
  }
  if (st == DFNET_STATUS_OK)
    snprintf(s->message, sizeof s->message, "%s", err.message);
  return cli__status(st, &err);
}

/* What the command did, then the manager's words when it said some. */
static int node_control_print(cli_run_t *run) {
  const node_control_t *s = run->ctx;
  char what[64];
  if (s->action == NODE_SUSPEND)
    snprintf(what, sizeof what, "%s (%s)", node_actions[s->action].done, s->reason);
  else
    snprintf(what, sizeof what, "%s", node_actions[s->action].done);
  const char *node = s->action == NODE_ADD_TEST ? s->moniker : run->args[0];
  printf("%s %s%s%s\n", what, node, s->message[0] ? ": " : "", s->message);
  return CLI_EXIT_OK;
}

static void node_control_release(cli_run_t *run) {
  node_control_t *s = run->ctx;
  free(s->props);
}

static int node_control(int argc, char **argv, node_action_t action) {
  static const cli_command_ops_t ops = {node_control_prepare, node_control_request, NULL,
                                        node_control_print, node_control_release};
  node_control_t s = {.action = action};
  const cli_option_t bind_opts[] = {{"driver", 0, CLI_OPT_STRING, &s.driver, 0, 0, "DRIVER",
                                     "only this driver: its URL (or the end of it) or its name"},
                                    {"force", 0, CLI_OPT_FLAG, &s.force, 0, 0, NULL,
                                     "a bound node: stop its driver and bind it again"},
                                    CLI_OPT_END};
  const cli_option_t suspend_opts[] = {
      {"reason", 0, CLI_OPT_STRING, &s.reason, 0, 0, "REASON",
       "reboot, poweroff, mexec or suspend-ram (default), the driver's suspend flags"},
      CLI_OPT_END};
  const cli_option_t add_test_opts[] = {{"property", 0, CLI_OPT_LIST, &s.property, 0,
                                         CLI_STRINGS_MAX, "KEY=VALUE",
                                         "a property of the node (repeat it: at most 64)"},
                                        CLI_OPT_END};
  const cli_syntax_t syn = {.usage = node_actions[action].usage,
                            .about = node_actions[action].about,
                            .options = action == NODE_BIND       ? bind_opts
                                       : action == NODE_SUSPEND  ? suspend_opts
                                       : action == NODE_ADD_TEST ? add_test_opts
                                                                 : NULL,
                            .min_args = node_actions[action].args,
                            .max_args = node_actions[action].args,
                            .args_help = node_actions[action].args_help};
  return cli__run(argc, argv, &syn, &ops, &s);
}

int cmd_node_bind(int argc, char **argv) { return node_control(argc, argv, NODE_BIND); }
int cmd_node_unbind(int argc, char **argv) { return node_control(argc, argv, NODE_UNBIND); }
int cmd_node_suspend(int argc, char **argv) { return node_control(argc, argv, NODE_SUSPEND); }
int cmd_node_resume(int argc, char **argv) { return node_control(argc, argv, NODE_RESUME); }
int cmd_node_add_test(int argc, char **argv) { return node_control(argc, argv, NODE_ADD_TEST); }
int cmd_node_remove_test(int argc, char **argv) {
  return node_control(argc, argv, NODE_REMOVE_TEST);
}
