/* dfnet CLI: `driver host list [HOST]` (`ffx driver list-hosts`): the fleet's driver-host
 * processes per board — each one's id, pid, resident memory, confinement (the uid it runs
 * as, sandboxed or not, its rights), the drivers and nodes it runs and the descriptors they
 * were handed — as each host's agent reports them through the manager. The command table has one
 * entry, `driver host`, whose first argument is the command (`list`, its only one). */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/suggest.h"

typedef struct driver_host_list {
  dfnet_client_driver_host_list_t *list;
} driver_host_list_t;

/* `driver host` wants `list`: as main.c answers a verb without its command. */
static int driver_host_prepare(cli_run_t *run) {
  const char *sub = run->args[0];
  if (sub == NULL)
    return cli__usage("'driver host' wants one of its commands: list (dfnet driver host --help)");
  if (strcmp(sub, "list") == 0)
    return CLI_EXIT_OK;
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, sub);
  dfnet_suggest_offer(&s, "list");
  const char *best = dfnet_suggest_best(&s);
  return cli__usage("'driver host' has no command '%s'%s; its commands: list", sub,
                    best != NULL ? " (did you mean 'list'?)" : "");
}

static int driver_host_request(cli_run_t *run) {
  driver_host_list_t *s = run->ctx;
  dfnet_client_error_t err;
  if (dfnet_client_list_driver_hosts(run->client, run->args[1], NULL, &s->list, &err) !=
      DFNET_STATUS_OK)
    return cli__fail_err(&err);
  return CLI_EXIT_OK;
}

/* By board, then by driver host id. */
static int driver_host_cmp(const void *a, const void *b) {
  const dfnet_client_driver_host_t *x = a, *y = b;
  int c = strcmp(x->host, y->host);
  if (c != 0)
    return c;
  return x->id < y->id ? -1 : x->id > y->id;
}

static cJSON *driver_host_json(cli_run_t *run) {
  driver_host_list_t *s = run->ctx;
  qsort(s->list->items, s->list->count, sizeof s->list->items[0], driver_host_cmp);
  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(doc, "driver_hosts");
  for (size_t i = 0; arr != NULL && i < s->list->count; i++) {
    const dfnet_client_driver_host_t *h = &s->list->items[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "host", h->host);
    cJSON_AddNumberToObject(o, "id", (double)h->id);
    cJSON_AddNumberToObject(o, "pid", h->pid);
    cJSON_AddNumberToObject(o, "rss_bytes", (double)h->rss_bytes);
    cJSON_AddItemToObject(o, "drivers", cli__json_strings(h->driver_urls, h->driver_count));
    cJSON_AddItemToObject(o, "nodes", cli__json_strings(h->nodes, h->node_count));
    cJSON_AddItemToObject(o, "resources", cli__json_strings(h->resources, h->resource_count));
    /* its confinement is the agent's word: not known (null) while the board is offline */
    if (h->pid != 0) {
      cJSON_AddNumberToObject(o, "uid", h->uid);
      cJSON_AddBoolToObject(o, "sandboxed", h->sandboxed);
    } else {
      cJSON_AddNullToObject(o, "uid");
      cJSON_AddNullToObject(o, "sandboxed");
    }
    cJSON_AddItemToObject(o, "rights", cli__json_strings(h->rights, h->right_count));
    cJSON_AddItemToArray(arr, o);
  }
  return doc;
}

/* One driver host: "  Driver Host 7: pid 4242, RSS 2.1 MiB, uid 998, sandboxed" (its
 * confinement only while its board answers: "unsandboxed" loudly when its agent runs with
 * --no-sandbox), its rights, then its drivers, nodes and the descriptors they were handed
 * ("<node> <name> <path>"). */
static void driver_host_print(const dfnet_client_driver_host_t *h) {
  char pid[24] = "?", rss[32] = "?", jail[48] = "";
  if (h->pid != 0) {
    snprintf(pid, sizeof pid, "%u", h->pid);
    snprintf(jail, sizeof jail, ", uid %u, %s", h->uid,
             h->sandboxed ? "sandboxed" : "UNSANDBOXED (dfnet-host --no-sandbox)");
  }
  if (h->rss_bytes != 0)
    cli__size_str(h->rss_bytes, rss, sizeof rss);
  printf("  Driver Host %llu: pid %s, RSS %s%s\n", (unsigned long long)h->id, pid, rss, jail);
  if (h->pid != 0) {
    printf("    Rights : ");
    for (size_t k = 0; k < h->right_count; k++)
      printf("%s%s", k ? ", " : "", h->rights[k]);
    printf("%s\n", h->right_count == 0 ? "none" : "");
  }
  for (size_t k = 0; k < h->driver_count; k++)
    printf("    Driver : %s\n", h->driver_urls[k]);
  for (size_t k = 0; k < h->node_count; k++)
    printf("    Node   : %s\n", h->nodes[k]);
  for (size_t k = 0; k < h->resource_count; k++)
    printf("    Handed : %s\n", h->resources[k]);
}

static int driver_host_list_print(cli_run_t *run) {
  driver_host_list_t *s = run->ctx;
  if (s->list->count == 0) {
    printf("No driver hosts found.\n");
    return CLI_EXIT_OK;
  }
  qsort(s->list->items, s->list->count, sizeof s->list->items[0], driver_host_cmp);
  for (size_t i = 0; i < s->list->count; i++) {
    const dfnet_client_driver_host_t *h = &s->list->items[i];
    if (i == 0 || strcmp(h->host, s->list->items[i - 1].host) != 0)
      printf("%s[%s]\n", i ? "\n" : "", h->host);
    driver_host_print(h);
  }
  return CLI_EXIT_OK;
}

int cmd_driver_host(int argc, char **argv) {
  static const cli_command_ops_t ops = {driver_host_prepare, driver_host_request, driver_host_json,
                                        driver_host_list_print, cli__release_driver_hosts};
  static const cli_syntax_t syn = {
      .usage = "driver host list [--json] [HOST]",
      .about =
          "List the driver hosts (`ffx driver list-hosts`) of every board, or of HOST: "
          "per board, each driver host's id, process id and resident memory (RSS, as its "
          "agent measured it now; `?` while the board is offline), the uid it runs as, "
          "whether it is sandboxed (UNSANDBOXED: its agent runs with --no-sandbox) and its "
          "rights, the drivers and nodes it runs and the descriptors they were handed.",
      .options = cli_json_options,
      .max_args = 2,
      .args_help =
          "  list     the command (the only one)\n"
          "  HOST     a board's name (default: every board)\n"};
  driver_host_list_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}
