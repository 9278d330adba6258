/* dfnet CLI: listings of the fleet — host list, node list/show/dump, composite list,
 * bind why — and watch. Text as `ffx driver` prints it (docs/spec/dfv2.md), JSON documented in
 * clients/cli/JSON.md. */
#include <signal.h>
#include <sys/select.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"

static const char *nonempty(const char *s, const char *dflt) {
  return s != NULL && s[0] != '\0' ? s : dflt;
}

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
  const char *version = nonempty(h->software_version, "-");
  if (strncmp(version, "dfnet ", 6) == 0)
    version += 6;
  char holders[80] = "-"; /* who holds leases on its nodes */
  for (size_t k = 0, used = 0; k < h->lease_holder_count && used < sizeof holders; k++)
    used += (size_t)snprintf(holders + used, sizeof holders - used, "%s%s", k ? "," : "",
                             h->lease_holders[k]);
  printf("%-20s %-22s %-8s %-7s %6u %6u  %-24s %-20s %-16s ", h->name, nonempty(h->address, "-"),
         nonempty(h->arch, "-"), h->online ? "online" : "offline", h->node_count,
         h->driver_host_count, since, version, holders);
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
  printf("%-9s: %s\n", "Driver", nonempty(n->driver_url, "None"));
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
  printf("%-10s: %s\n", "Driver", nonempty(k->driver_url, "None"));
  printf("%-10s: %s\n", "Device", nonempty(k->moniker, "None"));
  printf("%-10s: %zu\n", "Parents", k->parent_count);
  for (size_t p = 0; p < k->parent_count; p++) {
    const dfnet_client_composite_parent_t *pp = &k->parents[p];
    printf("Parent %zu  : %s%s%s\n", p, pp->name, pp->primary ? " (Primary)" : "",
           pp->optional ? " (Optional)" : "");
    printf("   Device : %s\n", nonempty(pp->moniker, "Unbound"));
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

/* ---- watch ---------------------------------------------------------------------------- */

typedef struct watch_state {
  /* its pipe: written when the watch should end (count reached, its end, a signal) */
  cli_stream_wait_t wait;
  bool json, nodes, drivers, hosts;
  uint64_t want, seen; /* --count (0: no end), events printed */
  uint64_t timeout;    /* --timeout MS (0: none) */
  bool ended;          /* the wait woke for the watch's end (not the count, a signal) */
  bool timed_out;
} watch_state_t;

static volatile sig_atomic_t watch_interrupted;
static int watch_sigfd = -1;

static void watch_on_signal(int sig) {
  (void)sig;
  watch_interrupted = 1;
  if (watch_sigfd >= 0) {
    char b = 's';
    ssize_t w = write(watch_sigfd, &b, 1);
    (void)w;
  }
}

cJSON *cli__event_json(const dfnet_client_event_t *ev) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "kind", dfnet_client_event_kind_str(ev->kind));
  cJSON_AddStringToObject(o, "subject", ev->subject);
  cJSON_AddItemToObject(o, "detail", cli__json_string_or_null(ev->detail));
  cJSON_AddStringToObject(o, "code", dfnet_status_str(ev->code));
  cJSON_AddItemToObject(o, "message", cli__json_string_or_null(ev->message));
  cJSON_AddNumberToObject(o, "time_ms", (double)ev->time_ms);
  return o;
}

static void watch_event(void *user, dfnet_client_watch_id_t w, const dfnet_client_event_t *ev) {
  watch_state_t *s = user;
  (void)w;
  if (s->want != 0 && s->seen >= s->want)
    return;
  char when[40];
  cli__time_str(ev->time_ms, when, sizeof when);
  if (s->json) {
    cli__json_line(cli__event_json(ev));
  } else {
    printf("%s %-18s %s", when, dfnet_client_event_kind_str(ev->kind), ev->subject);
    if (ev->detail[0] != '\0')
      printf(" %s", ev->detail);
    if (ev->code != DFNET_STATUS_OK || ev->message[0] != '\0')
      printf(" (%s: %s)", dfnet_status_str(ev->code), ev->message);
    printf("\n");
  }
  fflush(stdout);
  s->seen++;
  if (s->want != 0 && s->seen >= s->want) {
    char b = 'c';
    ssize_t wr = write(s->wait.pipe[1], &b, 1);
    (void)wr;
  }
}

static void watch_end(void *user, dfnet_client_watch_id_t w, dfnet_status_t status,
                      const char *message) {
  watch_state_t *s = user;
  (void)w;
  cli__stream_wait_end(&s->wait, status, message);
}

/* Wait for: count reached, the end, a signal or the timeout. */
static void watch_wait(watch_state_t *s) {
  for (;;) {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(s->wait.pipe[0], &rd);
    struct timeval tv = {.tv_sec = (time_t)(s->timeout / 1000),
                         .tv_usec = (long)(s->timeout % 1000) * 1000};
    int n = select(s->wait.pipe[0] + 1, &rd, NULL, NULL, s->timeout ? &tv : NULL);
    if (n == 0) {
      s->timed_out = true;
      return;
    }
    if (n < 0)
      continue; /* EINTR: the handler wrote to the pipe */
    char b;
    if (read(s->wait.pipe[0], &b, 1) == 1) {
      s->ended = b == 'e';
      return;
    }
  }
}

static int watch_prepare(cli_run_t *run) {
  watch_state_t *s = run->ctx;
  if (pipe(s->wait.pipe) != 0) {
    s->wait.pipe[0] = s->wait.pipe[1] = -1;
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe failed");
  }
  return CLI_EXIT_OK;
}

static int watch_request(cli_run_t *run) {
  watch_state_t *s = run->ctx;
  unsigned what = (s->nodes ? DFNET_CLIENT_WATCH_NODES : 0) |
                  (s->drivers ? DFNET_CLIENT_WATCH_DRIVERS : 0) |
                  (s->hosts ? DFNET_CLIENT_WATCH_HOSTS : 0);
  watch_sigfd = s->wait.pipe[1];
  struct sigaction sa = {.sa_handler = watch_on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  dfnet_client_watch_id_t id;
  dfnet_client_error_t err;
  if (dfnet_client_watch(run->client, what, watch_event, watch_end, s, &id, &err) !=
      DFNET_STATUS_OK)
    return cli__fail_err(&err);
  watch_wait(s);
  if (!s->ended)
    dfnet_client_watch_cancel(run->client, id);
  return CLI_EXIT_OK; /* closing the client runs watch_end */
}

/* How the watch ended (the client closed: watch_end has run). */
static int watch_print(cli_run_t *run) {
  const watch_state_t *s = run->ctx;
  if (s->timed_out && !(s->want != 0 && s->seen >= s->want))
    return cli__fail(DFNET_STATUS_DEADLINE_EXCEEDED, "%llu event(s) in %llu ms",
                     (unsigned long long)s->seen, (unsigned long long)s->timeout);
  if (s->ended && s->wait.status != DFNET_STATUS_OK && s->wait.status != DFNET_STATUS_CANCELLED)
    return cli__fail(s->wait.status, "watch ended: %s", s->wait.message);
  return CLI_EXIT_OK;
}

static void watch_release(cli_run_t *run) {
  watch_state_t *s = run->ctx;
  watch_sigfd = -1;
  cli__stream_wait_close(&s->wait);
}

int cmd_watch(int argc, char **argv) {
  static const cli_command_ops_t ops = {watch_prepare, watch_request, NULL, watch_print,
                                        watch_release};
  watch_state_t s = {.wait = {.status = DFNET_STATUS_OK, .pipe = {-1, -1}}};
  const cli_option_t opts[] = {
      {"nodes", 0, CLI_OPT_FLAG, &s.nodes, 0, 0, NULL, "node events"},
      {"drivers", 0, CLI_OPT_FLAG, &s.drivers, 0, 0, NULL, "driver events"},
      {"hosts", 0, CLI_OPT_FLAG, &s.hosts, 0, 0, NULL, "host events (default: all three)"},
      {"count", 'n', CLI_OPT_UINT, &s.want, 1, 1000000000, "N", "stop after N events"},
      {"timeout", 0, CLI_OPT_UINT, &s.timeout, 1, 86400000, "MS",
       "stop after MS milliseconds (exit 1, DEADLINE_EXCEEDED, unless --count was reached)"},
      {"json", 0, CLI_OPT_FLAG, &s.json, 0, 0, NULL, "one JSON object per line per event"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "watch [--nodes] [--drivers] [--hosts] [-n N] [--timeout MS] [--json]",
      .about =
          "Print the fleet's events as they happen, one per line, until Ctrl-C (exit 0), N "
          "events, or the timeout.",
      .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}
