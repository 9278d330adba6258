/* dfnet CLI: the driver index — driver list [-v] [--loaded], register, disable, enable,
 * restart, unregister (`ffx driver list`, `ffx driver restart`; docs/spec/dfv2.md), each
 * change printed with its outcome per node. A
 * driver is named by its URL or by its name when no other driver has that name (the
 * manager resolves it and says when the name is ambiguous). */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#ifdef DFNET_CLI_HAVE_BIND
#include "dfnet/bind.h"
#endif

#define DRIVER_ARG_HELP \
  "  DRIVER   the driver's URL, or its name (pci-config) when no other driver has that name\n"

static const char *source_str(dfnet_client_driver_source_t s) {
  return s == DFNET_CLIENT_DRIVER_SOURCE_BOOT         ? "boot"
         : s == DFNET_CLIENT_DRIVER_SOURCE_REGISTERED ? "registered"
                                                      : "unspecified";
}

/* The bind rules as `ffx driver list -v` dumps them; hex when the dumper is not built in or
 * the bytecode does not load. Returns a malloc'd string. */
static char *bind_dump(const dfnet_client_driver_t *d) {
  if (d->bind_bytecode == NULL)
    return NULL;
#ifdef DFNET_CLI_HAVE_BIND
  dfnet_bind_program_t *prog = NULL;
  char why[256];
  if (dfnet_bind_program_load(d->bind_bytecode, d->bind_bytecode_len, &prog, why, sizeof why) ==
      DFNET_STATUS_OK) {
    char *text = dfnet_bind_program_dump(prog);
    dfnet_bind_program_destroy(prog);
    if (text != NULL)
      return text;
  }
#endif
  char *hex = cli__hex(d->bind_bytecode, d->bind_bytecode_len);
  if (hex == NULL)
    return NULL;
  size_t n = strlen(hex) + 64;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "\n  (%zu bytes) %s", d->bind_bytecode_len, hex);
  free(hex);
  return s;
}

static cJSON *driver_json(const dfnet_client_driver_t *d, bool verbose) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", d->name);
  cJSON_AddStringToObject(o, "url", d->url);
  cJSON_AddStringToObject(o, "source", source_str(d->source));
  if (d->has_digest) {
    char *hex = cli__hex(d->package_digest, sizeof d->package_digest);
    cJSON_AddStringToObject(o, "package_digest", hex ? hex : "");
    free(hex);
  } else {
    cJSON_AddNullToObject(o, "package_digest");
  }
  cJSON_AddBoolToObject(o, "fallback", d->fallback);
  cJSON_AddBoolToObject(o, "colocate", d->colocate);
  cJSON_AddBoolToObject(o, "host_restart_on_crash", d->host_restart_on_crash);
  cJSON_AddBoolToObject(o, "disabled", d->disabled);
  cJSON_AddItemToObject(o, "composite_name", cli__json_string_or_null(d->composite_name));
  cJSON *cats = cJSON_AddArrayToObject(o, "device_categories");
  for (size_t i = 0; i < d->category_count; i++) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "category", d->categories[i]);
    cJSON_AddStringToObject(c, "subcategory", d->subcategories[i]);
    cJSON_AddItemToArray(cats, c);
  }
  cJSON_AddNumberToObject(o, "device_count", d->device_count);
  cJSON_AddItemToObject(o, "devices", cli__json_strings(d->devices, d->device_list_count));
  cJSON_AddBoolToObject(o, "disable_autobind", d->disable_autobind);
  cJSON_AddNumberToObject(o, "start_timeout_ms", d->start_timeout_ms);
  cJSON_AddItemToObject(o, "dispatcher_opts",
                        cli__json_strings(d->dispatcher_opts, d->dispatcher_opt_count));
  cJSON_AddItemToObject(o, "resources", cli__json_strings(d->resources, d->resource_count));
  cJSON_AddItemToObject(o, "rights", cli__json_strings(d->rights, d->right_count));
  cJSON *limits = cJSON_AddObjectToObject(o, "limits");
  cJSON_AddNumberToObject(limits, "memory_mb", d->memory_mb);
  cJSON_AddNumberToObject(limits, "open_files", d->open_files);
  if (verbose && d->bind_bytecode != NULL) {
    char *hex = cli__hex(d->bind_bytecode, d->bind_bytecode_len);
    cJSON_AddStringToObject(o, "bind_bytecode_hex", hex ? hex : "");
    free(hex);
  }
  return o;
}

static void driver_print_verbose(const dfnet_client_driver_t *d) {
  printf("%-10s: %s\n", "Name", d->name);
  printf("%-10s: %s\n", "URL", d->url);
  printf("%-10s: %s\n", "DF Version", "2");
  printf("%-10s: %s%s%s%s\n", "Source", source_str(d->source), d->fallback ? ", fallback" : "",
         d->colocate ? ", colocate" : "", d->disabled ? ", disabled" : "");
  printf("Device Categories: [");
  for (size_t i = 0; i < d->category_count; i++)
    printf("%s%s%s%s", i ? ", " : "", d->categories[i], d->subcategories[i][0] ? "::" : "",
           d->subcategories[i]);
  printf("]\n");
  printf("%-10s: %s\n", "Autobind",
         d->disable_autobind ? "disabled (binds on `dfnet node bind` only)" : "enabled");
  if (d->start_timeout_ms != 0)
    printf("%-10s: %u ms\n", "Start Timeout", d->start_timeout_ms);
  else
    printf("%-10s: 30000 ms (default)\n", "Start Timeout");
  for (size_t i = 0; i < d->resource_count; i++)
    printf("%-10s: %s\n", i == 0 ? "Resources" : "", d->resources[i]);
  printf("%-10s: ", "Rights");
  for (size_t i = 0; i < d->right_count; i++)
    printf("%s%s", i ? ", " : "", d->rights[i]);
  printf("%s\n", d->right_count == 0 ? "none" : "");
  if (d->memory_mb != 0) /* 0: a manager that predates limits */
    printf("%-10s: memory %u MiB, %u open files\n", "Limits", d->memory_mb, d->open_files);
  printf("%-10s: %u\n", "Devices", d->device_count);
  for (size_t i = 0; i < d->device_list_count; i++)
    printf("    %s\n", d->devices[i]);
  char *dump = bind_dump(d);
  if (dump != NULL) {
    printf("Bind rules bytecode:%s\n", dump);
    free(dump);
  }
  printf("\n");
}

/* ---- driver list ---------------------------------------------------------------------- */

typedef struct driver_list {
  dfnet_client_driver_list_t *list; /* first: cli__release_drivers frees it */
  bool json, verbose, loaded;
} driver_list_t;

static int driver_list_request(cli_run_t *run) {
  driver_list_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(
      dfnet_client_list_drivers(run->client, s->loaded, s->verbose, NULL, &s->list, &err), &err);
}

static cJSON *driver_list_json(cli_run_t *run) {
  const driver_list_t *s = run->ctx;
  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(doc, "drivers");
  for (size_t i = 0; i < s->list->count; i++)
    cJSON_AddItemToArray(arr, driver_json(&s->list->items[i], s->verbose));
  return doc;
}

static int driver_list_print(cli_run_t *run) {
  const driver_list_t *s = run->ctx;
  for (size_t i = 0; i < s->list->count; i++) {
    if (s->verbose)
      driver_print_verbose(&s->list->items[i]);
    else
      printf("%-20s: %s\n", s->list->items[i].name, s->list->items[i].url);
  }
  return CLI_EXIT_OK;
}

int cmd_driver_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, driver_list_request, driver_list_json,
                                        driver_list_print, cli__release_drivers};
  driver_list_t s = {0};
  const cli_option_t opts[] = {
      {"verbose", 'v', CLI_OPT_FLAG, &s.verbose, 0, 0, NULL,
       "categories, devices and the bind rules dump"},
      {"loaded", 0, CLI_OPT_FLAG, &s.loaded, 0, 0, NULL, "only drivers bound to a node"},
      CLI_OPT_JSON(&s.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {.usage = "driver list [-v] [--loaded] [--json]",
                            .about =
                                "List the driver index: `name: url` per driver, or with -v "
                                "as `ffx driver list -v` does.",
                            .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- driver register ------------------------------------------------------------------ */

/* What register, restart and unregister say with --json: {"url": url, <key>: value}. */
static cJSON *driver_change_json(const char *url, const char *key, cJSON *value) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "url", url);
  cJSON_AddItemToObject(doc, key, value);
  return doc;
}

typedef struct driver_register {
  bool already; /* the very same package (SHA-256) registered before: nothing changed */
  char url[256];
} driver_register_t;

static int driver_register_request(cli_run_t *run) {
  driver_register_t *s = run->ctx;
  dfnet_client_error_t err;
  dfnet_status_t st =
      dfnet_client_driver_register(run->client, run->args[0], s->url, sizeof s->url, &err);
  s->already = st == DFNET_STATUS_OK && strncmp(err.message, "already registered", 18) == 0;
  return cli__status(st, &err);
}

static cJSON *driver_register_json(cli_run_t *run) {
  const driver_register_t *s = run->ctx;
  return driver_change_json(s->url, "already_registered", cJSON_CreateBool(s->already));
}

static int driver_register_print(cli_run_t *run) {
  const driver_register_t *s = run->ctx;
  printf("%s %s\n", s->already ? "Already registered" : "Registered", s->url);
  return CLI_EXIT_OK;
}

int cmd_driver_register(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, driver_register_request, driver_register_json,
                                        driver_register_print, NULL};
  static const cli_syntax_t syn = {
      .usage = "driver register [--json] PKGDIR",
      .about =
          "Pack a driver package directory (meta/<name>.json, meta/bind/<name>.bindbc, "
          "driver/<name>.so) and register it with the manager (role admin). Registering "
          "the very same package again (the same SHA-256) changes nothing and exits 0 "
          "(\"Already registered\").",
      .options = cli_json_options,
      .min_args = 1,
      .max_args = 1,
      .args_help = "  PKGDIR   the package directory\n"};
  driver_register_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- driver disable / enable / restart / unregister ------------------------------------ */

/* What an action did on each node, as `<node>: running <url>` or `<node>: <STATUS>: why`. */
static void outcome_print(const dfnet_client_node_outcome_t *o) {
  if (o->code != DFNET_STATUS_OK)
    printf("%s: %s: %s\n", o->node, dfnet_status_str(o->code), o->message);
  else if (o->driver_url[0] != '\0')
    printf("%s: running %s\n", o->node, o->driver_url);
  else
    printf("%s: %s\n", o->node, o->message[0] ? o->message : "unbound");
}

/* Did the action fail on this node? A node that disable, enable or unregister left without
 * a driver because none matched it any more (NOT_FOUND) got what the action does. */
static bool outcome_failed(dfnet_client_driver_action_t action,
                           const dfnet_client_node_outcome_t *o) {
  if (o->code == DFNET_STATUS_OK)
    return false;
  return action == DFNET_CLIENT_DRIVER_RESTART || o->code != DFNET_STATUS_NOT_FOUND;
}

static cJSON *outcomes_json(const dfnet_client_driver_control_result_t *r) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr != NULL && i < r->outcome_count; i++) {
    const dfnet_client_node_outcome_t *o = &r->outcomes[i];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "node", o->node);
    cJSON_AddStringToObject(e, "code", dfnet_status_str(o->code));
    cJSON_AddItemToObject(e, "message", cli__json_string_or_null(o->message));
    cJSON_AddItemToObject(e, "driver", cli__json_string_or_null(o->driver_url));
    cJSON_AddItemToArray(arr, e);
  }
  return arr;
}

/* One driver action: its result with the outcome per node. */
typedef struct driver_action {
  dfnet_client_driver_control_result_t *r; /* first: cli__release_driver_control frees it */
  dfnet_client_driver_action_t action;
} driver_action_t;

static const char *action_name(dfnet_client_driver_action_t a) {
  return a == DFNET_CLIENT_DRIVER_DISABLE   ? "disable"
         : a == DFNET_CLIENT_DRIVER_ENABLE  ? "enable"
         : a == DFNET_CLIENT_DRIVER_RESTART ? "restart"
                                            : "unregister";
}

static int driver_action_request(cli_run_t *run) {
  driver_action_t *s = run->ctx;
  if (s->action == DFNET_CLIENT_DRIVER_RESTART && !run->json) {
    printf("Restarting driver hosts containing %s\n", run->args[0]);
    fflush(stdout);
  }
  dfnet_client_error_t err;
  dfnet_status_t st =
      dfnet_client_driver_control(run->client, s->action, run->args[0], &s->r, &err);
  if (st != DFNET_STATUS_OK)
    return cli__fail_err(&err);
  size_t failed = 0;
  for (size_t i = 0; i < s->r->outcome_count; i++) {
    if (outcome_failed(s->action, &s->r->outcomes[i]) && failed++ == 0)
      run->failed_code = s->r->outcomes[i].code;
  }
  if (failed > 0)
    snprintf(run->failed, sizeof run->failed, "%s %s: %zu of %zu node(s) failed",
             action_name(s->action), run->args[0], failed, s->r->outcome_count);
  return CLI_EXIT_OK;
}

/* register, restart and unregister: {"url": url, <key>: value}; every action: "outcomes". */
static cJSON *driver_action_json(cli_run_t *run) {
  const driver_action_t *s = run->ctx;
  cJSON *doc = NULL;
  if (s->action == DFNET_CLIENT_DRIVER_RESTART)
    doc = driver_change_json(run->args[0], "restarted_driver_hosts",
                             cJSON_CreateNumber(s->r->driver_hosts));
  else if (s->action == DFNET_CLIENT_DRIVER_UNREGISTER)
    doc = driver_change_json(s->r->url, "stopped_nodes", cJSON_CreateNumber(s->r->nodes));
  else
    doc = driver_change_json(s->r->url, "enabled",
                             cJSON_CreateBool(s->action == DFNET_CLIENT_DRIVER_ENABLE));
  cJSON_AddItemToObject(doc, "outcomes", outcomes_json(s->r));
  return doc;
}

static int driver_action_print(cli_run_t *run) {
  const driver_action_t *s = run->ctx;
  const dfnet_client_driver_control_result_t *r = s->r;
  switch (s->action) {
  case DFNET_CLIENT_DRIVER_RESTART:
    printf("Restarted %u driver host(s).\n", r->driver_hosts);
    break;
  case DFNET_CLIENT_DRIVER_UNREGISTER:
    printf("Unregistered %s: stopped on %u node(s), which are matched again.\n", r->url, r->nodes);
    break;
  default:
    printf("%s %s\n", s->action == DFNET_CLIENT_DRIVER_ENABLE ? "Enabled" : "Disabled", r->url);
    break;
  }
  for (size_t i = 0; i < r->outcome_count; i++)
    outcome_print(&r->outcomes[i]);
  if (r->nodes > r->outcome_count)
    printf("... and %zu more node(s)\n", (size_t)r->nodes - r->outcome_count);
  return CLI_EXIT_OK;
}

#define OUTCOMES_HELP                                                                      \
  " Then the outcome per node it touched, once they settled: `NODE: running URL` (what "   \
  "runs there now) or `NODE: STATUS: why`; exit 1 when one failed (a node left without a " \
  "driver because none matches it, NOT_FOUND, is what disable and unregister do)."

/* The driver actions' syntax (they differ only in it), by action. */
static const struct {
  dfnet_client_driver_action_t action;
  const char *usage, *about;
} driver_actions[] = {
    {DFNET_CLIENT_DRIVER_DISABLE, "driver disable [--json] DRIVER",
     "Disable a driver (role admin): it matches no node any more; the nodes "
     "it runs on are stopped and matched again (another driver or a fallback "
     "binds them, or they stay unbound with the reason)." OUTCOMES_HELP},
    {DFNET_CLIENT_DRIVER_ENABLE, "driver enable [--json] DRIVER",
     "Enable a disabled driver (role admin): the unbound nodes are matched "
     "again and those it wins are bound to it, and the nodes a fallback driver took "
     "that it wins are moved to it (another driver keeps what it took: `dfnet node "
     "bind --force --driver` moves it)." OUTCOMES_HELP},
    {DFNET_CLIENT_DRIVER_RESTART, "driver restart [--json] DRIVER",
     "Restart every driver host running the driver (role admin), and wait "
     "until its nodes run again." OUTCOMES_HELP},
    {DFNET_CLIENT_DRIVER_UNREGISTER, "driver unregister [--json] DRIVER",
     "Unregister a registered driver (role admin): it is stopped on every node it was bound to, "
     "those nodes are matched again (another driver or a fallback binds them, or they stay "
     "unbound with the reason), and its package leaves the manager's state directory, so it "
     "does not come back after a restart. A boot driver (--drivers DIR) cannot be "
     "unregistered: disable it." OUTCOMES_HELP},
};

static int driver_action(int argc, char **argv, dfnet_client_driver_action_t action) {
  static const cli_command_ops_t ops = {NULL, driver_action_request, driver_action_json,
                                        driver_action_print, cli__release_driver_control};
  size_t i = 0;
  while (driver_actions[i].action != action)
    i++;
  const cli_syntax_t syn = {.usage = driver_actions[i].usage,
                            .about = driver_actions[i].about,
                            .options = cli_json_options,
                            .min_args = 1,
                            .max_args = 1,
                            .args_help = DRIVER_ARG_HELP};
  driver_action_t s = {.action = action};
  return cli__run(argc, argv, &syn, &ops, &s);
}

int cmd_driver_disable(int argc, char **argv) {
  return driver_action(argc, argv, DFNET_CLIENT_DRIVER_DISABLE);
}

int cmd_driver_enable(int argc, char **argv) {
  return driver_action(argc, argv, DFNET_CLIENT_DRIVER_ENABLE);
}

int cmd_driver_restart(int argc, char **argv) {
  return driver_action(argc, argv, DFNET_CLIENT_DRIVER_RESTART);
}

int cmd_driver_unregister(int argc, char **argv) {
  return driver_action(argc, argv, DFNET_CLIENT_DRIVER_UNREGISTER);
}
