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

int cmd_driver_list(int argc, char **argv) {
  bool json = false, verbose = false, loaded = false;
  const cli_option_t opts[] = {
      {"verbose", 'v', CLI_OPT_FLAG, &verbose, 0, 0, NULL,
       "categories, devices and the bind rules dump"},
      {"loaded", 0, CLI_OPT_FLAG, &loaded, 0, 0, NULL, "only drivers bound to a node"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"driver list [-v] [--loaded] [--json]",
                            "List the driver index: `name: url` per driver, or with -v as "
                            "`ffx driver list -v` does.",
                            opts,
                            0,
                            0,
                            NULL};
  const char *args[1];
  size_t nargs;
  dfnet_client_t *c;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  dfnet_client_driver_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_drivers(c, loaded, verbose, NULL, &l, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto listed;
  }
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "drivers");
    for (size_t i = 0; i < l->count; i++)
      cJSON_AddItemToArray(arr, driver_json(&l->items[i], verbose));
    rc = cli__json_print(doc);
  } else {
    for (size_t i = 0; i < l->count; i++) {
      if (verbose)
        driver_print_verbose(&l->items[i]);
      else
        printf("%-20s: %s\n", l->items[i].name, l->items[i].url);
    }
  }
listed:
  dfnet_client_driver_list_free(l);
  dfnet_client_close(c);
  return rc;
}

int cmd_driver_register(int argc, char **argv) {
  bool json = false;
  const cli_option_t opts[] = {
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "driver register [--json] PKGDIR",
      "Pack a driver package directory (meta/<name>.json, meta/bind/<name>.bindbc, "
      "driver/<name>.so) and register it with the manager (role admin). Registering the "
      "very same package again (the same SHA-256) changes nothing and exits 0 (\"Already "
      "registered\").",
      opts,
      1,
      1,
      "  PKGDIR   the package directory\n"};
  const char *args[1];
  size_t nargs;
  dfnet_client_t *c;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  char url[256];
  dfnet_client_error_t err;
  if (dfnet_client_driver_register(c, args[0], url, sizeof url, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
  } else {
    /* the very same package (SHA-256) registered before: nothing changed (exit 0) */
    bool already = strncmp(err.message, "already registered", 18) == 0;
    if (json) {
      cJSON *doc = cJSON_CreateObject();
      cJSON_AddStringToObject(doc, "url", url);
      cJSON_AddBoolToObject(doc, "already_registered", already);
      rc = cli__json_print(doc);
    } else {
      printf("%s %s\n", already ? "Already registered" : "Registered", url);
    }
  }
  dfnet_client_close(c);
  return rc;
}

static int driver_toggle(int argc, char **argv, bool enable) {
  const cli_syntax_t syn = {enable ? "driver enable DRIVER" : "driver disable DRIVER",
                            enable ? "Enable a disabled driver (role admin): unbound nodes are "
                                     "matched against it again."
                                   : "Disable a driver (role admin): it matches no new node; "
                                     "running instances keep running.",
                            NULL,
                            1,
                            1,
                            DRIVER_ARG_HELP};
  const char *args[1];
  size_t nargs;
  dfnet_client_t *c;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  dfnet_client_error_t err;
  dfnet_status_t st = enable ? dfnet_client_driver_enable(c, args[0], &err)
                             : dfnet_client_driver_disable(c, args[0], &err);
  if (st != DFNET_STATUS_OK)
    rc = cli__fail_err(&err);
  else
    printf("%s %s\n", enable ? "Enabled" : "Disabled", args[0]);
  dfnet_client_close(c);
  return rc;
}

int cmd_driver_disable(int argc, char **argv) { return driver_toggle(argc, argv, false); }
int cmd_driver_enable(int argc, char **argv) { return driver_toggle(argc, argv, true); }

int cmd_driver_restart(int argc, char **argv) {
  bool json = false;
  const cli_option_t opts[] = {
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"driver restart [--json] DRIVER",
                            "Restart every driver host running the driver (role admin).",
                            opts,
                            1,
                            1,
                            DRIVER_ARG_HELP};
  const char *args[1];
  size_t nargs;
  dfnet_client_t *c;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (!json) {
    printf("Restarting driver hosts containing %s\n", args[0]);
    fflush(stdout);
  }
  uint32_t n = 0;
  dfnet_client_error_t err;
  if (dfnet_client_driver_restart(c, args[0], &n, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
  } else if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "url", args[0]);
    cJSON_AddNumberToObject(doc, "restarted_driver_hosts", n);
    rc = cli__json_print(doc);
  } else {
    printf("Restarted %u driver host(s).\n", n);
  }
  dfnet_client_close(c);
  return rc;
}

int cmd_driver_unregister(int argc, char **argv) {
  bool json = false;
  const cli_option_t opts[] = {
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "driver unregister [--json] DRIVER",
      "Unregister a registered driver (role admin): it is stopped on every node it was bound "
      "to, those nodes are matched again (another driver or a fallback binds them, or they "
      "stay unbound with the reason), and its package leaves the manager's state directory, "
      "so it does not come back after a restart. A boot driver (--drivers DIR) cannot be "
      "unregistered: disable it.",
      opts,
      1,
      1,
      DRIVER_ARG_HELP};
  const char *args[1];
  size_t nargs;
  dfnet_client_t *c;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  uint32_t nodes = 0;
  char url[256];
  dfnet_client_error_t err;
  if (dfnet_client_driver_unregister(c, args[0], &nodes, url, sizeof url, &err) !=
      DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
  } else if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "url", url);
    cJSON_AddNumberToObject(doc, "stopped_nodes", nodes);
    rc = cli__json_print(doc);
  } else {
    printf("Unregistered %s: stopped on %u node(s), which are matched again.\n", url, nodes);
  }
  dfnet_client_close(c);
  return rc;
}
