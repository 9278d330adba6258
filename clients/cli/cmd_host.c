/* dfnet CLI: `host list` — the fleet's hosts, one row each: name, address, architecture,
 * state, counts, since when connected, version, lease holders, labels. JSON documented in
 * clients/cli/JSON.md "host list". */
#include <string.h>

#include "clients/cli/cli.h"

/* ---- host list ------------------------------------------------------------------------ */

typedef struct host_list {
  dfnet_client_host_list_t *list;
} host_list_t;

static int host_list_request(cli_run_t *run) {
  host_list_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_list_hosts(run->client, NULL, &s->list, &err), &err);
}

static cJSON *host_json(const dfnet_client_host_t *h) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", h->name);
  cJSON_AddStringToObject(o, "address", h->address);
  cJSON_AddStringToObject(o, "arch", h->arch);
  cJSON_AddBoolToObject(o, "online", h->online);
  cJSON_AddNumberToObject(o, "connected_since_ms", (double)h->connected_since_ms);
  cJSON_AddNumberToObject(o, "node_count", h->node_count);
  cJSON_AddNumberToObject(o, "driver_host_count", h->driver_host_count);
  cJSON_AddItemToObject(o, "software_version", cli__json_string_or_null(h->software_version));
  cJSON_AddItemToObject(o, "lease_holders",
                        cli__json_strings(h->lease_holders, h->lease_holder_count));
  cJSON_AddNumberToObject(o, "leased_nodes", h->leased_nodes);
  cJSON_AddBoolToObject(o, "sandboxed", h->sandboxed);
  cJSON *labels = cJSON_AddObjectToObject(o, "labels");
  for (size_t k = 0; k < h->label_count; k++)
    cJSON_AddStringToObject(labels, h->label_keys[k], h->label_values[k]);
  return o;
}

cJSON *cli__hosts_json(const dfnet_client_host_list_t *list) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *hosts = cJSON_AddArrayToObject(doc, "hosts");
  for (size_t i = 0; i < list->count; i++)
    cJSON_AddItemToArray(hosts, host_json(&list->items[i]));
  return doc;
}

static cJSON *host_list_json(cli_run_t *run) {
  const host_list_t *s = run->ctx;
  return cli__hosts_json(s->list);
}

static void host_print(const dfnet_client_host_t *h) {
  char since[40];
  cli__time_str(h->connected_since_ms, since, sizeof since);
  /* "dfnet 0.1.0+bbcd979": the column says the version, the product goes without saying */
  const char *version = cli__nonempty(h->software_version, "-");
  if (strncmp(version, "dfnet ", 6) == 0)
    version += 6;
  char holders[80] = "-"; /* who holds leases on its nodes */
  for (size_t k = 0, used = 0; k < h->lease_holder_count && used < sizeof holders; k++)
    used += (size_t)snprintf(holders + used, sizeof holders - used, "%s%s", k ? "," : "",
                             h->lease_holders[k]);
  printf("%-20s %-22s %-8s %-7s %6u %6u  %-24s %-20s %-16s ", h->name,
         cli__nonempty(h->address, "-"), cli__nonempty(h->arch, "-"),
         h->online ? "online" : "offline", h->node_count, h->driver_host_count, since, version,
         holders);
  for (size_t k = 0; k < h->label_count; k++)
    printf("%s%s=%s", k ? "," : "", h->label_keys[k], h->label_values[k]);
  printf("%s", h->label_count ? "" : "-");
  /* said loudly: its agent runs drivers unconfined, as itself (dfnet-host --no-sandbox) */
  printf("%s\n", h->sandboxed ? "" : "  SANDBOX OFF");
}

static int host_list_print(cli_run_t *run) {
  const host_list_t *s = run->ctx;
  if (s->list->count == 0) {
    printf("No hosts found.\n");
    return CLI_EXIT_OK;
  }
  printf("%-20s %-22s %-8s %-7s %6s %6s  %-24s %-20s %-16s %s\n", "NAME", "ADDRESS", "ARCH",
         "STATE", "NODES", "HOSTS", "CONNECTED SINCE", "VERSION", "LEASES", "LABELS");
  for (size_t i = 0; i < s->list->count; i++)
    host_print(&s->list->items[i]);
  return CLI_EXIT_OK;
}

int cmd_host_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, host_list_request, host_list_json, host_list_print,
                                        cli__release_hosts};
  static const cli_syntax_t syn = {
      .usage = "host list [--json]",
      .about =
          "List the fleet's hosts: name, address, architecture, state, "
          "node and driver-host counts, since when connected, the "
          "version of its dfnet-host, labels; SANDBOX OFF ends the row of a host whose "
          "dfnet-host runs its drivers unconfined (--no-sandbox).",
      .options = cli_json_options};
  host_list_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}
