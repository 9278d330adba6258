/* dfnet CLI: the node listings — `node list`, `node show` and `node dump`. Text as `ffx
 * driver list-devices` prints it (docs/spec/dfv2.md), JSON documented in clients/cli/JSON.md.
 * (The verbs that change a node are cmd_node.c's.) */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"

/* ---- nodes ---------------------------------------------------------------------------- */

static cJSON *node_json(const dfnet_client_node_t *n, bool verbose) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "moniker", n->moniker);
  cJSON_AddStringToObject(o, "name", n->name);
  cJSON_AddStringToObject(o, "host", n->host);
  cJSON_AddItemToObject(o, "driver", cli__json_string_or_null(n->driver_url));
  cJSON_AddStringToObject(o, "state", dfnet_client_node_state_str(n->state));
  cJSON_AddBoolToObject(o, "offline", n->offline);
  cJSON_AddItemToObject(o, "class_name", cli__json_string_or_null(n->class_name));
  cJSON_AddItemToObject(o, "class_path", cli__json_string_or_null(n->class_path));
  cJSON_AddNumberToObject(o, "driver_host_id", (double)n->driver_host_id);
  cJSON_AddNumberToObject(o, "driver_host_pid", n->driver_host_pid);
  cJSON_AddBoolToObject(o, "suspended", n->suspended);
  cJSON_AddBoolToObject(o, "test", n->test);
  if (n->lease_id != 0) { /* the lease covering it */
    cJSON *l = cJSON_AddObjectToObject(o, "lease");
    cJSON_AddNumberToObject(l, "id", (double)n->lease_id);
    cJSON_AddStringToObject(l, "holder", n->lease_holder);
    if (n->lease_expires_ms != 0)
      cJSON_AddNumberToObject(l, "expires_ms", (double)n->lease_expires_ms);
    else
      cJSON_AddNullToObject(l, "expires_ms");
  } else {
    cJSON_AddNullToObject(o, "lease");
  }
  if (n->unbound_code != DFNET_STATUS_OK || n->unbound_message[0] != '\0') {
    cJSON *r = cJSON_AddObjectToObject(o, "unbound_reason");
    cJSON_AddStringToObject(r, "code", dfnet_status_str(n->unbound_code));
    cJSON_AddStringToObject(r, "message", n->unbound_message);
  } else {
    cJSON_AddNullToObject(o, "unbound_reason");
  }
  cJSON_AddItemToObject(o, "parents", cli__json_strings(n->parents, n->parent_count));
  if (verbose) {
    cJSON *props = cJSON_AddArrayToObject(o, "properties");
    for (size_t i = 0; i < n->property_count; i++)
      cJSON_AddItemToArray(props, cli__property_json(&n->properties[i]));
    cJSON_AddItemToObject(o, "offers", cli__json_strings(n->offers, n->offer_count));
    cJSON *offered = cJSON_AddArrayToObject(o, "offered");
    for (size_t i = 0; i < n->offered_count; i++) {
      cJSON *e = cJSON_CreateObject();
      cJSON_AddStringToObject(e, "service", n->offered[i].service);
      cJSON_AddStringToObject(e, "instance", n->offered[i].instance);
      cJSON_AddStringToObject(e, "source", n->offered[i].source);
      cJSON_AddItemToArray(offered, e);
    }
  }
  return o;
}

/* What a node's state does not say: " (suspended)", " (test node)" or "". */
static const char *node_marks(const dfnet_client_node_t *n) {
  if (n->suspended)
    return " (suspended)";
  return n->test ? " (test node)" : "";
}

/* A node's name as ffx prints it: the moniker's last component. */
static const char *short_name(const char *moniker) {
  const char *dot = strrchr(moniker, '.');
  return dot ? dot + 1 : moniker;
}

/* Do offered[i] and offered[j] name one offer (the same service from the same node)? */
static bool same_offer(const dfnet_client_offer_t *a, const dfnet_client_offer_t *b) {
  return strcmp(a->service, b->service) == 0 && strcmp(a->source, b->source) == 0;
}

/* The Offers as `ffx driver list-devices -v` prints them: one per service and source, its
 * instances on one line (a composite's primary parent's offers: "default" and the parent's
 * name). A manager that sends no `offered` gives the names only. */
static void print_offers(const dfnet_client_node_t *n) {
  if (n->offered_count == 0) {
    printf("%zu Offers\n", n->offer_count);
    for (size_t i = 0; i < n->offer_count; i++)
      printf("Service: %s\n", n->offers[i]);
    return;
  }
  size_t groups = 0;
  for (size_t i = 0; i < n->offered_count; i++)
    groups += i == 0 || !same_offer(&n->offered[i - 1], &n->offered[i]);
  printf("%zu Offers\n", groups);
  for (size_t i = 0; i < n->offered_count;) {
    const dfnet_client_offer_t *o = &n->offered[i];
    printf("Service: %s\n  Source: %s\n  Instances:", o->service, o->source);
    for (; i < n->offered_count && same_offer(o, &n->offered[i]); i++)
      printf(" %s", n->offered[i].instance);
    printf("\n");
  }
}

/* `ffx driver list-devices -v`, plus dfnet's State, Host, Class, Lease and Reason lines. */
static void node_print_verbose(const dfnet_client_node_t *n) {
  printf("%-9s: %s\n", "Name", short_name(n->moniker));
  printf("%-9s: %s\n", "Moniker", n->moniker);
  printf("%-9s: %s\n", "Driver", cli__nonempty(n->driver_url, "None"));
  printf("%-9s: %s%s%s\n", "State", dfnet_client_node_state_str(n->state), node_marks(n),
         n->offline ? " (host offline)" : "");
  if (n->driver_host_id != 0 && n->driver_host_pid != 0)
    printf("%-9s: %s (driver host %llu, pid %u)\n", "Host", n->host,
           (unsigned long long)n->driver_host_id, n->driver_host_pid);
  else if (n->driver_host_id != 0)
    printf("%-9s: %s (driver host %llu)\n", "Host", n->host, (unsigned long long)n->driver_host_id);
  else
    printf("%-9s: %s\n", "Host", n->host);
  if (n->class_path[0] != '\0')
    printf("%-9s: %s\n", "Class", n->class_path);
  if (n->lease_id != 0) { /* "42 by alice until 2026-12-07T10:00:00.000Z" */
    char until[40] = "(no expiry)";
    if (n->lease_expires_ms != 0) {
      memcpy(until, "until ", 6);
      cli__time_str(n->lease_expires_ms, until + 6, sizeof until - 6);
    }
    printf("%-9s: %llu by %s %s\n", "Lease", (unsigned long long)n->lease_id, n->lease_holder,
           until);
  }
  if (n->unbound_code != DFNET_STATUS_OK || n->unbound_message[0] != '\0')
    printf("%-9s: %s: %s\n", "Reason", dfnet_status_str(n->unbound_code), n->unbound_message);
  for (size_t i = 0; i < n->parent_count; i++)
    printf("%-9s: %s\n", "Parent", n->parents[i]);
  printf("%zu Properties\n", n->property_count);
  for (size_t i = 0; i < n->property_count; i++) {
    char key[160], value[300];
    cli__property_key(&n->properties[i], key, sizeof key);
    cli__property_value(&n->properties[i], value, sizeof value);
    printf("[%2zu/ %2zu] : Key %-30s Value %s\n", i + 1, n->property_count, key, value);
  }
  print_offers(n);
  printf("\n");
}

typedef struct node_listing {
  dfnet_client_node_list_t *list; /* first: cli__release_nodes frees it */
  bool json, verbose, exact;
  bool show; /* node show: one node, in full */
} node_listing_t;

static int node_listing_prepare(cli_run_t *run) {
  node_listing_t *s = run->ctx;
  if (s->show) {
    s->verbose = true;
    s->exact = true;
  }
  if (s->exact && run->args[0] == NULL)
    return cli__usage("--exact needs a FILTER");
  return CLI_EXIT_OK;
}

static int node_listing_request(cli_run_t *run) {
  node_listing_t *s = run->ctx;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(run->client, run->args[0], s->exact, s->verbose || s->json, NULL,
                              &s->list, &err) != DFNET_STATUS_OK)
    return cli__fail_err(&err);
  if (s->show && s->list->count == 0)
    return cli__fail(DFNET_STATUS_NOT_FOUND, "no node '%s'", run->args[0]);
  return CLI_EXIT_OK;
}

cJSON *cli__nodes_json(const dfnet_client_node_list_t *list) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *nodes = cJSON_AddArrayToObject(doc, "nodes");
  for (size_t i = 0; i < list->count; i++)
    cJSON_AddItemToArray(nodes, node_json(&list->items[i], true));
  return doc;
}

static cJSON *node_listing_json(cli_run_t *run) {
  const node_listing_t *s = run->ctx;
  if (!s->show)
    return cli__nodes_json(s->list);
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddItemToObject(doc, "node", node_json(&s->list->items[0], true));
  return doc;
}

static int node_listing_print(cli_run_t *run) {
  const node_listing_t *s = run->ctx;
  if (s->list->count == 0)
    printf("No devices found.\n");
  for (size_t i = 0; i < s->list->count; i++) {
    if (s->verbose)
      node_print_verbose(&s->list->items[i]);
    else
      printf("%s\n", s->list->items[i].moniker);
  }
  return CLI_EXIT_OK;
}

static int node_listing(int argc, char **argv, bool show) {
  static const cli_command_ops_t ops = {node_listing_prepare, node_listing_request,
                                        node_listing_json, node_listing_print, cli__release_nodes};
  node_listing_t s = {.show = show};
  const cli_option_t list_opts[] = {
      {"verbose", 'v', CLI_OPT_FLAG, &s.verbose, 0, 0, NULL,
       "name, moniker, driver, state, host, class, numbered properties, offers"},
      {"exact", 0, CLI_OPT_FLAG, &s.exact, 0, 0, NULL, "FILTER is a whole moniker"},
      CLI_OPT_JSON(&s.json),
      CLI_OPT_END};
  const cli_syntax_t list_syn = {
      .usage = "node list [-v] [--exact] [--json] [FILTER]",
      .about =
          "List nodes (one moniker per line), or with -v as `ffx driver list-devices -v` "
          "does.",
      .options = list_opts,
      .max_args = 1,
      .args_help = "  FILTER   a substring of the moniker (with --exact: the moniker)\n"};
  const cli_syntax_t show_syn = {.usage = "node show [--json] NODE",
                                 .about = "Show one node in full (node list -v --exact NODE).",
                                 .options = list_opts + 2,
                                 .min_args = 1,
                                 .max_args = 1,
                                 .args_help = "  NODE     the node's moniker\n"};
  return cli__run(argc, argv, show ? &show_syn : &list_syn, &ops, &s);
}

int cmd_node_list(int argc, char **argv) { return node_listing(argc, argv, false); }
int cmd_node_show(int argc, char **argv) { return node_listing(argc, argv, true); }

/* Monikers in tree order: '.' sorts before every other character, so a node's subtree
 * comes right after it. */
static int moniker_cmp(const void *a, const void *b) {
  const char *x = ((const dfnet_client_node_t *)a)->moniker;
  const char *y = ((const dfnet_client_node_t *)b)->moniker;
  for (;; x++, y++) {
    unsigned cx = *x == '.' ? 1u : (unsigned char)*x;
    unsigned cy = *y == '.' ? 1u : (unsigned char)*y;
    if (cx != cy || cx == 0)
      return (int)cx - (int)cy;
  }
}

static size_t depth_of(const char *moniker) {
  size_t d = 0;
  for (const char *p = moniker; *p; p++)
    d += *p == '.';
  return d;
}

static const char *parent_of(const char *moniker, char *buf, size_t cap) {
  const char *dot = strrchr(moniker, '.');
  if (dot == NULL)
    return NULL;
  snprintf(buf, cap, "%.*s", (int)(dot - moniker), moniker);
  return buf;
}

/* node dump: the whole topology in tree order. */
typedef struct node_dump {
  dfnet_client_node_list_t *list; /* first: cli__release_nodes frees it */
  bool graph, json;
} node_dump_t;

static int node_dump_request(cli_run_t *run) {
  node_dump_t *s = run->ctx;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(run->client, NULL, false, false, NULL, &s->list, &err) !=
      DFNET_STATUS_OK)
    return cli__fail_err(&err);
  qsort(s->list->items, s->list->count, sizeof s->list->items[0], moniker_cmp);
  return CLI_EXIT_OK;
}

static cJSON *node_dump_json(cli_run_t *run) {
  const node_dump_t *s = run->ctx;
  cJSON *doc = cJSON_CreateObject();
  cJSON *nodes = cJSON_AddArrayToObject(doc, "nodes");
  char pbuf[600];
  for (size_t i = 0; i < s->list->count; i++) {
    const dfnet_client_node_t *n = &s->list->items[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "moniker", n->moniker);
    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddItemToObject(o, "parent",
                          cli__json_string_or_null(parent_of(n->moniker, pbuf, sizeof pbuf)));
    cJSON_AddItemToObject(o, "parents", cli__json_strings(n->parents, n->parent_count));
    cJSON_AddItemToObject(o, "driver", cli__json_string_or_null(n->driver_url));
    cJSON_AddNumberToObject(o, "driver_host_id", (double)n->driver_host_id);
    cJSON_AddNumberToObject(o, "driver_host_pid", n->driver_host_pid);
    cJSON_AddItemToArray(nodes, o);
  }
  return doc;
}

/* --graph: Graphviz. */
static void node_dump_graph(const dfnet_client_node_list_t *l) {
  printf("digraph {\n");
  for (size_t i = 0; i < l->count; i++)
    printf("  \"%s\" [label=\"%s\"]\n", l->items[i].moniker, short_name(l->items[i].moniker));
  char pbuf[600];
  for (size_t i = 0; i < l->count; i++) {
    const dfnet_client_node_t *n = &l->items[i];
    if (n->parent_count > 0) {
      for (size_t k = 0; k < n->parent_count; k++)
        printf("  \"%s\" -> \"%s\"\n", n->parents[k], n->moniker);
    } else if (parent_of(n->moniker, pbuf, sizeof pbuf) != NULL && depth_of(n->moniker) > 1) {
      printf("  \"%s\" -> \"%s\"\n", pbuf, n->moniker);
    }
  }
  printf("}\n");
}

static int node_dump_print(cli_run_t *run) {
  const node_dump_t *s = run->ctx;
  if (s->graph) {
    node_dump_graph(s->list);
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < s->list->count; i++) {
    const dfnet_client_node_t *n = &s->list->items[i];
    size_t d = depth_of(n->moniker);
    printf("%*s[%s]", (int)(d > 0 ? (d - 1) * 2 : 0), "", short_name(n->moniker));
    if (n->driver_url[0] != '\0' && n->driver_host_pid != 0)
      printf(" pid=%u %s", n->driver_host_pid, n->driver_url);
    else if (n->driver_url[0] != '\0')
      printf(" pid=? %s", n->driver_url); /* not known: its host is offline */
    printf("%s\n", node_marks(n));
  }
  return CLI_EXIT_OK;
}

int cmd_node_dump(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, node_dump_request, node_dump_json, node_dump_print,
                                        cli__release_nodes};
  node_dump_t s = {0};
  const cli_option_t opts[] = {
      {"graph", 0, CLI_OPT_FLAG, &s.graph, 0, 0, NULL, "print a Graphviz digraph"},
      CLI_OPT_JSON(&s.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "node dump [--graph] [--json]",
      .about =
          "Print the node topology as a tree: `[name] pid=N url` (N: its driver host's "
          "process id, ? when not known), two spaces per level; --graph emits Graphviz (digraph { "
          "\"id\" [label=\"name\"] \"parent\" -> "
          "\"child\" }).",
      .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}
