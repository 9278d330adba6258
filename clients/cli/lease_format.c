/* dfnet CLI: a lease as text and JSON, as the lease commands print it (`lease acquire`,
 * `lease show`, `lease renew --json`, `lease list --json`) and `dfnet ui` answers it; JSON
 * shapes in clients/cli/JSON.md. Declared in lease.h (cli__leases_json in cli.h). */
#include <inttypes.h>
#include <stdio.h>

#include "clients/cli/lease.h"

static void print_list(const char *label, const char **v, size_t n, const char *more) {
  printf("%-9s: ", label);
  for (size_t i = 0; i < n; i++)
    printf("%s%s", i ? ", " : "", v[i]);
  printf("%s%s\n", n == 0 ? "-" : "", more);
}

void cli__lease_print(const dfnet_client_lease_t *l, uint64_t now_ms) {
  char buf[120];
  printf("%-9s: %" PRIu64 "\n", "Lease", l->id);
  printf("%-9s: %s\n", "Holder", l->holder);
  print_list("Targets", l->targets, l->target_count, "");
  char more[40] = "";
  if (l->node_count > l->node_list_count)
    snprintf(more, sizeof more, " (%u nodes in all)", l->node_count);
  print_list("Nodes", l->nodes, l->node_list_count, more);
  cli__time_str(l->acquired_ms, buf, sizeof buf);
  if (l->queue_position > 0) {
    printf("%-9s: position %u in the queue, since %s\n", "Waiting", l->queue_position, buf);
  } else {
    printf("%-9s: %s\n", "Acquired", buf);
    cli__expiry_str(l->expires_ms, now_ms, buf, sizeof buf);
    printf("%-9s: %s\n", "Expires", buf);
  }
  cli__duration_str(l->ttl_ms, buf, sizeof buf);
  printf("%-9s: %s\n", "TTL", l->ttl_ms ? buf : "none (no expiry)");
  printf("%-9s: %s\n", "Priority", dfnet_client_lease_priority_str(l->priority));
  if (l->reason[0] != '\0')
    printf("%-9s: %s\n", "Reason", l->reason);
  if (l->token[0] != '\0')
    printf("%-9s: %s\n", "Token", l->token);
}

cJSON *cli__lease_json(const dfnet_client_lease_t *l) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  cJSON_AddNumberToObject(o, "id", (double)l->id);
  cJSON_AddStringToObject(o, "holder", l->holder);
  cJSON_AddItemToObject(o, "targets", cli__json_strings(l->targets, l->target_count));
  cJSON_AddItemToObject(o, "nodes", cli__json_strings(l->nodes, l->node_list_count));
  cJSON_AddNumberToObject(o, "node_count", l->node_count);
  cJSON_AddNumberToObject(o, "acquired_ms", (double)l->acquired_ms);
  if (l->expires_ms != 0)
    cJSON_AddNumberToObject(o, "expires_ms", (double)l->expires_ms);
  else
    cJSON_AddNullToObject(o, "expires_ms");
  cJSON_AddNumberToObject(o, "ttl_ms", l->ttl_ms);
  cJSON_AddStringToObject(o, "priority", dfnet_client_lease_priority_str(l->priority));
  cJSON_AddNumberToObject(o, "queue_position", l->queue_position);
  cJSON_AddItemToObject(o, "reason", cli__json_string_or_null(l->reason));
  cJSON_AddItemToObject(o, "token", cli__json_string_or_null(l->token));
  return o;
}

cJSON *cli__lease_doc(const dfnet_client_lease_t *l) {
  cJSON *doc = cJSON_CreateObject();
  if (doc != NULL)
    cJSON_AddItemToObject(doc, "lease", cli__lease_json(l));
  return doc;
}

cJSON *cli__leases_json(const dfnet_client_lease_list_t *list) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *held = cJSON_AddArrayToObject(doc, "leases");
  cJSON *queue = cJSON_AddArrayToObject(doc, "queue");
  for (size_t i = 0; i < list->count; i++) {
    const dfnet_client_lease_t *l = &list->items[i];
    cJSON_AddItemToArray(l->queue_position ? queue : held, cli__lease_json(l));
  }
  return doc;
}
