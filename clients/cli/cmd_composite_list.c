/* dfnet CLI: `composite list` — composites (instances of composite bind rules and composite
 * node specs) with their parents. Text as `ffx driver` prints it (docs/spec/dfv2.md), JSON
 * documented in clients/cli/JSON.md "composite list". (`composite add` is cmd_composite.c.) */
#include "clients/cli/cli.h"

/* ---- composites ----------------------------------------------------------------------- */

/* A spec parent's bind rules and properties, as `ffx driver list-composite-node-specs -v`
 * prints them, under the parent's Device line. */
static void spec_parent_print(const dfnet_client_composite_parent_t *pp) {
  printf("   %zu %s\n", pp->rule_count, pp->rule_count == 1 ? "Bind Rule" : "Bind Rules");
  for (size_t r = 0; r < pp->rule_count; r++) {
    char rule[1600];
    cli__bind_rule_text(&pp->rules[r], rule, sizeof rule);
    printf("   [%2zu/%2zu] : %s\n", r + 1, pp->rule_count, rule);
  }
  printf("   %zu %s\n", pp->property_count, pp->property_count == 1 ? "Property" : "Properties");
  for (size_t r = 0; r < pp->property_count; r++) {
    char key[160], value[300];
    cli__property_key(&pp->properties[r], key, sizeof key);
    cli__property_value(&pp->properties[r], value, sizeof value);
    printf("   [%2zu/%2zu] : Key %-30s Value %s\n", r + 1, pp->property_count, key, value);
  }
}

typedef struct composite_list {
  dfnet_client_composite_list_t *list; /* first: cli__release_composites frees it */
  bool json, verbose;
} composite_list_t;

static int composite_list_request(cli_run_t *run) {
  composite_list_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(
      dfnet_client_list_composites(run->client, s->verbose || s->json, NULL, &s->list, &err), &err);
}

static cJSON *composite_parent_json(const dfnet_client_composite_parent_t *pp) {
  cJSON *po = cJSON_CreateObject();
  cJSON_AddStringToObject(po, "name", pp->name);
  cJSON_AddItemToObject(po, "moniker", cli__json_string_or_null(pp->moniker));
  cJSON_AddBoolToObject(po, "primary", pp->primary);
  cJSON_AddBoolToObject(po, "optional", pp->optional);
  cJSON *rules = cJSON_AddArrayToObject(po, "bind_rules");
  for (size_t r = 0; r < pp->rule_count; r++)
    cJSON_AddItemToArray(rules, cli__bind_rule_json(&pp->rules[r]));
  cJSON *props = cJSON_AddArrayToObject(po, "properties");
  for (size_t r = 0; r < pp->property_count; r++)
    cJSON_AddItemToArray(props, cli__property_json(&pp->properties[r]));
  return po;
}

static cJSON *composite_list_json(cli_run_t *run) {
  const composite_list_t *s = run->ctx;
  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(doc, "composites");
  for (size_t i = 0; i < s->list->count; i++) {
    const dfnet_client_composite_t *k = &s->list->items[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddItemToObject(o, "driver", cli__json_string_or_null(k->driver_url));
    cJSON_AddItemToObject(o, "moniker", cli__json_string_or_null(k->moniker));
    cJSON_AddBoolToObject(o, "from_spec", k->from_spec);
    cJSON *ps = cJSON_AddArrayToObject(o, "parents");
    for (size_t p = 0; p < k->parent_count; p++)
      cJSON_AddItemToArray(ps, composite_parent_json(&k->parents[p]));
    cJSON_AddItemToArray(arr, o);
  }
  return doc;
}

/* One composite with -v: its driver, device and parents. */
static void composite_print_verbose(const dfnet_client_composite_t *k) {
  printf("%-10s: %s%s\n", "Name", k->name, k->from_spec ? " (composite node spec)" : "");
  printf("%-10s: %s\n", "Driver", cli__nonempty(k->driver_url, "None"));
  printf("%-10s: %s\n", "Device", cli__nonempty(k->moniker, "None"));
  printf("%-10s: %zu\n", "Parents", k->parent_count);
  for (size_t p = 0; p < k->parent_count; p++) {
    const dfnet_client_composite_parent_t *pp = &k->parents[p];
    printf("Parent %zu  : %s%s%s\n", p, pp->name, pp->primary ? " (Primary)" : "",
           pp->optional ? " (Optional)" : "");
    printf("   Device : %s\n", cli__nonempty(pp->moniker, "Unbound"));
    if (k->from_spec)
      spec_parent_print(pp);
  }
  printf("\n");
}

static int composite_list_print(cli_run_t *run) {
  const composite_list_t *s = run->ctx;
  for (size_t i = 0; i < s->list->count; i++) {
    if (s->verbose)
      composite_print_verbose(&s->list->items[i]);
    else
      printf("%s\n", s->list->items[i].name);
  }
  return CLI_EXIT_OK;
}

int cmd_composite_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, composite_list_request, composite_list_json,
                                        composite_list_print, cli__release_composites};
  composite_list_t s = {0};
  const cli_option_t opts[] = {
      {"verbose", 'v', CLI_OPT_FLAG, &s.verbose, 0, 0, NULL,
       "driver, device and every parent (a spec's: with its bind rules and properties)"},
      CLI_OPT_JSON(&s.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {.usage = "composite list [-v] [--json]",
                            .about =
                                "List composites: instances of composite bind rules and "
                                "composite node specs, with their parents.",
                            .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}
