/* dfnet CLI: the driver index — driver list [-v] [--loaded], register, disable, enable,
 * restart, unregister (`ffx driver list`, `ffx driver restart`; docs/spec/dfv2.md). A
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
  if (d->composite_name[0])
    cJSON_AddStringToObject(o, "composite_name", d->composite_name);
  else
    cJSON_AddNullToObject(o, "composite_name");
  cJSON *cats = cJSON_AddArrayToObject(o, "device_categories");
  for (size_t i = 0; i < d->category_count; i++) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "category", d->categories[i]);
    cJSON_AddStringToObject(c, "subcategory", d->subcategories[i]);
    cJSON_AddItemToArray(cats, c);
  }
  cJSON_AddNumberToObject(o, "device_count", d->device_count);
  cJSON *devs = cJSON_AddArrayToObject(o, "devices");
  for (size_t i = 0; i < d->device_list_count; i++)
    cJSON_AddItemToArray(devs, cJSON_CreateString(d->devices[i]));
  cJSON *dops = cJSON_AddArrayToObject(o, "dispatcher_opts");
  for (size_t i = 0; i < d->dispatcher_opt_count; i++)
    cJSON_AddItemToArray(dops, cJSON_CreateString(d->dispatcher_opts[i]));
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
  bool json, verbose, loaded;
  dfnet_client_driver_list_t *list;
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

static void driver_list_release(cli_run_t *run) {
  driver_list_t *s = run->ctx;
  dfnet_client_driver_list_free(s->list);
}

int cmd_driver_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, driver_list_request, driver_list_json,
                                        driver_list_print, driver_list_release};
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

/* ---- driver disable / enable ---------------------------------------------------------- */

static int driver_toggle_request(cli_run_t *run) {
  const bool *enable = run->ctx;
  dfnet_client_error_t err;
  dfnet_status_t st = *enable ? dfnet_client_driver_enable(run->client, run->args[0], &err)
                              : dfnet_client_driver_disable(run->client, run->args[0], &err);
  return cli__status(st, &err);
}

static int driver_toggle_print(cli_run_t *run) {
  const bool *enable = run->ctx;
  printf("%s %s\n", *enable ? "Enabled" : "Disabled", run->args[0]);
  return CLI_EXIT_OK;
}

static int driver_toggle(int argc, char **argv, bool enable) {
  static const cli_command_ops_t ops = {NULL, driver_toggle_request, NULL, driver_toggle_print,
                                        NULL};
  const cli_syntax_t syn = {
      .usage = enable ? "driver enable DRIVER" : "driver disable DRIVER",
      .about = enable ? "Enable a disabled driver (role admin): unbound nodes are matched "
                        "against it again."
                      : "Disable a driver (role admin): it matches no new node; running "
                        "instances keep running.",
      .min_args = 1,
      .max_args = 1,
      .args_help = DRIVER_ARG_HELP};
  return cli__run(argc, argv, &syn, &ops, &enable);
}

int cmd_driver_disable(int argc, char **argv) { return driver_toggle(argc, argv, false); }
int cmd_driver_enable(int argc, char **argv) { return driver_toggle(argc, argv, true); }

/* ---- driver restart / unregister ------------------------------------------------------ */

/* What restart and unregister say about a driver. */
typedef struct driver_change {
  uint32_t count; /* driver hosts restarted; nodes the driver was stopped on */
  char url[256];
} driver_change_t;

/* restart and unregister: one DRIVER, --json. */
static int driver_change(int argc, char **argv, const cli_command_ops_t *ops, const char *usage,
                         const char *about) {
  const cli_syntax_t syn = {.usage = usage,
                            .about = about,
                            .options = cli_json_options,
                            .min_args = 1,
                            .max_args = 1,
                            .args_help = DRIVER_ARG_HELP};
  driver_change_t s = {0};
  return cli__run(argc, argv, &syn, ops, &s);
}

static int driver_restart_request(cli_run_t *run) {
  driver_change_t *s = run->ctx;
  if (!run->json) {
    printf("Restarting driver hosts containing %s\n", run->args[0]);
    fflush(stdout);
  }
  dfnet_client_error_t err;
  return cli__status(dfnet_client_driver_restart(run->client, run->args[0], &s->count, &err), &err);
}

static cJSON *driver_restart_json(cli_run_t *run) {
  const driver_change_t *s = run->ctx;
  return driver_change_json(run->args[0], "restarted_driver_hosts", cJSON_CreateNumber(s->count));
}

static int driver_restart_print(cli_run_t *run) {
  const driver_change_t *s = run->ctx;
  printf("Restarted %u driver host(s).\n", s->count);
  return CLI_EXIT_OK;
}

int cmd_driver_restart(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, driver_restart_request, driver_restart_json,
                                        driver_restart_print, NULL};
  return driver_change(argc, argv, &ops, "driver restart [--json] DRIVER",
                       "Restart every driver host running the driver (role admin).");
}

static int driver_unregister_request(cli_run_t *run) {
  driver_change_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_driver_unregister(run->client, run->args[0], &s->count, s->url,
                                                    sizeof s->url, &err),
                     &err);
}

static cJSON *driver_unregister_json(cli_run_t *run) {
  const driver_change_t *s = run->ctx;
  return driver_change_json(s->url, "stopped_nodes", cJSON_CreateNumber(s->count));
}

static int driver_unregister_print(cli_run_t *run) {
  const driver_change_t *s = run->ctx;
  printf("Unregistered %s: stopped on %u node(s), which are matched again.\n", s->url, s->count);
  return CLI_EXIT_OK;
}

int cmd_driver_unregister(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, driver_unregister_request, driver_unregister_json,
                                        driver_unregister_print, NULL};
  return driver_change(
      argc, argv, &ops, "driver unregister [--json] DRIVER",
      "Unregister a registered driver (role admin): it is stopped on every node it was bound to, "
      "those nodes are matched again (another driver or a fallback binds them, or they stay "
      "unbound with the reason), and its package leaves the manager's state directory, so it "
      "does not come back after a restart. A boot driver (--drivers DIR) cannot be "
      "unregistered: disable it.");
}
