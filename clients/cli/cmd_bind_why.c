/* dfnet CLI: `bind why NODE [DRIVER]` — the matcher's trace per driver: why NODE did or
 * did not bind. JSON documented in clients/cli/JSON.md "bind why". */
#include "clients/cli/cli.h"

/* ---- bind why ------------------------------------------------------------------------- */

static const char *bind_result_str(dfnet_client_bind_result_t r) {
  switch (r) {
  case DFNET_CLIENT_BIND_MATCH:
    return "MATCH";
  case DFNET_CLIENT_BIND_NO_MATCH:
    return "NO_MATCH";
  case DFNET_CLIENT_BIND_ERROR:
    return "ERROR";
  default:
    return "UNSPECIFIED";
  }
}

typedef struct bind_why {
  dfnet_client_bind_trace_list_t *list;
} bind_why_t;

static int bind_why_request(cli_run_t *run) {
  bind_why_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(
      dfnet_client_bind_why(run->client, run->args[0], run->args[1], NULL, &s->list, &err), &err);
}

cJSON *cli__bind_why_json(const char *node, const dfnet_client_bind_trace_list_t *list) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "node", node);
  cJSON *arr = cJSON_AddArrayToObject(doc, "traces");
  for (size_t i = 0; i < list->count; i++) {
    const dfnet_client_bind_trace_t *t = &list->items[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "driver", t->driver_url);
    cJSON_AddStringToObject(o, "result", bind_result_str(t->result));
    cJSON_AddNumberToObject(o, "offset", t->offset);
    cJSON_AddStringToObject(o, "instruction", t->instruction);
    cJSON_AddStringToObject(o, "reason", t->reason);
    cJSON_AddItemToObject(o, "composite_node", cli__json_string_or_null(t->composite_node));
    cJSON_AddItemToArray(arr, o);
  }
  return doc;
}

static cJSON *bind_why_json(cli_run_t *run) {
  const bind_why_t *s = run->ctx;
  return cli__bind_why_json(run->args[0], s->list);
}

static void bind_trace_print(const dfnet_client_bind_trace_t *t) {
  printf("%-12s: %s\n", "Driver", t->driver_url);
  if (t->composite_node[0] != '\0')
    printf("%-12s: %s\n", "Node", t->composite_node);
  printf("%-12s: %s\n", "Result", bind_result_str(t->result));
  if (t->instruction[0] != '\0')
    printf("%-12s: [%u] %s\n", "Instruction", t->offset, t->instruction);
  if (t->reason[0] != '\0')
    printf("%-12s: %s\n", "Reason", t->reason);
  printf("\n");
}

static int bind_why_print(cli_run_t *run) {
  const bind_why_t *s = run->ctx;
  if (s->list->count == 0)
    printf("No driver was considered for %s.\n", run->args[0]);
  for (size_t i = 0; i < s->list->count; i++)
    bind_trace_print(&s->list->items[i]);
  return CLI_EXIT_OK;
}

int cmd_bind_why(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, bind_why_request, bind_why_json, bind_why_print,
                                        cli__release_bind_traces};
  static const cli_syntax_t syn = {
      .usage = "bind why [--json] NODE [DRIVER]",
      .about =
          "Why did (or didn't) NODE bind: the matcher's trace per driver — the result and "
          "the instruction that decided it, with the property values it compared.",
      .options = cli_json_options,
      .min_args = 1,
      .max_args = 2,
      .args_help =
          "  NODE     the node's moniker\n"
          "  DRIVER   a driver's URL, or its name when no other driver has it (default: "
          "every driver)\n"};
  bind_why_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}
