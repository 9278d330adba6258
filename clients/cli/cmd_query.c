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

static cJSON *str_or_null(const char *s) {
  return s != NULL && s[0] != '\0' ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *strv_json(const char **v, size_t n) {
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a != NULL && i < n; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
  return a;
}

/* ---- host list ------------------------------------------------------------------------ */

int cmd_host_list(int argc, char **argv) {
  bool json = false;
  const cli_option_t opts[] = {
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"host list [--json]",
                            "List the fleet's hosts: name, address, architecture, state, node "
                            "and driver-host counts, since when connected, the version of its "
                            "dfnet-host, labels.",
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
  dfnet_client_host_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_hosts(c, NULL, &l, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto listed;
  }
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *hosts = cJSON_AddArrayToObject(doc, "hosts");
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_host_t *h = &l->items[i];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", h->name);
      cJSON_AddStringToObject(o, "address", h->address);
      cJSON_AddStringToObject(o, "arch", h->arch);
      cJSON_AddBoolToObject(o, "online", h->online);
      cJSON_AddNumberToObject(o, "connected_since_ms", (double)h->connected_since_ms);
      cJSON_AddNumberToObject(o, "node_count", h->node_count);
      cJSON_AddNumberToObject(o, "driver_host_count", h->driver_host_count);
      cJSON_AddItemToObject(o, "software_version", str_or_null(h->software_version));
      cJSON *labels = cJSON_AddObjectToObject(o, "labels");
      for (size_t k = 0; k < h->label_count; k++)
        cJSON_AddStringToObject(labels, h->label_keys[k], h->label_values[k]);
      cJSON_AddItemToArray(hosts, o);
    }
    rc = cli__json_print(doc);
  } else if (l->count == 0) {
    printf("No hosts found.\n");
  } else {
    printf("%-20s %-22s %-8s %-7s %6s %6s  %-24s %-20s %s\n", "NAME", "ADDRESS", "ARCH", "STATE",
           "NODES", "HOSTS", "CONNECTED SINCE", "VERSION", "LABELS");
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_host_t *h = &l->items[i];
      char since[40];
      cli__time_str(h->connected_since_ms, since, sizeof since);
      /* "dfnet 0.1.0+bbcd979": the column says the version, the product goes without saying */
      const char *version = nonempty(h->software_version, "-");
      if (strncmp(version, "dfnet ", 6) == 0)
        version += 6;
      printf("%-20s %-22s %-8s %-7s %6u %6u  %-24s %-20s ", h->name, nonempty(h->address, "-"),
             nonempty(h->arch, "-"), h->online ? "online" : "offline", h->node_count,
             h->driver_host_count, since, version);
      for (size_t k = 0; k < h->label_count; k++)
        printf("%s%s=%s", k ? "," : "", h->label_keys[k], h->label_values[k]);
      printf("%s\n", h->label_count ? "" : "-");
    }
  }
listed:
  dfnet_client_host_list_free(l);
  dfnet_client_close(c);
  return rc;
}

/* ---- nodes ---------------------------------------------------------------------------- */

static cJSON *node_json(const dfnet_client_node_t *n, bool verbose) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "moniker", n->moniker);
  cJSON_AddStringToObject(o, "name", n->name);
  cJSON_AddStringToObject(o, "host", n->host);
  cJSON_AddItemToObject(o, "driver", str_or_null(n->driver_url));
  cJSON_AddStringToObject(o, "state", dfnet_client_node_state_str(n->state));
  cJSON_AddBoolToObject(o, "offline", n->offline);
  cJSON_AddItemToObject(o, "class_name", str_or_null(n->class_name));
  cJSON_AddItemToObject(o, "class_path", str_or_null(n->class_path));
  cJSON_AddNumberToObject(o, "driver_host_id", (double)n->driver_host_id);
  if (n->unbound_code != DFNET_STATUS_OK || n->unbound_message[0] != '\0') {
    cJSON *r = cJSON_AddObjectToObject(o, "unbound_reason");
    cJSON_AddStringToObject(r, "code", dfnet_status_str(n->unbound_code));
    cJSON_AddStringToObject(r, "message", n->unbound_message);
  } else {
    cJSON_AddNullToObject(o, "unbound_reason");
  }
  cJSON_AddItemToObject(o, "parents", strv_json(n->parents, n->parent_count));
  if (verbose) {
    cJSON *props = cJSON_AddArrayToObject(o, "properties");
    for (size_t i = 0; i < n->property_count; i++)
      cJSON_AddItemToArray(props, cli__property_json(&n->properties[i]));
    cJSON_AddItemToObject(o, "offers", strv_json(n->offers, n->offer_count));
  }
  return o;
}

/* A node's name as ffx prints it: the moniker's last component. */
static const char *short_name(const char *moniker) {
  const char *dot = strrchr(moniker, '.');
  return dot ? dot + 1 : moniker;
}

/* `ffx driver list-devices -v`, plus dfnet's State, Host, Class and Reason lines. */
static void node_print_verbose(const dfnet_client_node_t *n) {
  printf("%-9s: %s\n", "Name", short_name(n->moniker));
  printf("%-9s: %s\n", "Moniker", n->moniker);
  printf("%-9s: %s\n", "Driver", nonempty(n->driver_url, "None"));
  printf("%-9s: %s%s\n", "State", dfnet_client_node_state_str(n->state),
         n->offline ? " (host offline)" : "");
  if (n->driver_host_id != 0)
    printf("%-9s: %s (driver host %llu)\n", "Host", n->host, (unsigned long long)n->driver_host_id);
  else
    printf("%-9s: %s\n", "Host", n->host);
  if (n->class_path[0] != '\0')
    printf("%-9s: %s\n", "Class", n->class_path);
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
  printf("%zu Offers\n", n->offer_count);
  for (size_t i = 0; i < n->offer_count; i++)
    printf("Service: %s\n", n->offers[i]);
  printf("\n");
}

static int node_listing(int argc, char **argv, bool show) {
  bool json = false, verbose = false, exact = false;
  const cli_option_t list_opts[] = {
      {"verbose", 'v', CLI_OPT_FLAG, &verbose, 0, 0, NULL,
       "name, moniker, driver, state, host, class, numbered properties, offers"},
      {"exact", 0, CLI_OPT_FLAG, &exact, 0, 0, NULL, "FILTER is a whole moniker"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t list_syn = {
      "node list [-v] [--exact] [--json] [FILTER]",
      "List nodes (one moniker per line), or with -v as `ffx driver list-devices -v` does.",
      list_opts,
      0,
      1,
      "  FILTER   a substring of the moniker (with --exact: the moniker)\n"};
  const cli_syntax_t show_syn = {"node show [--json] NODE",
                                 "Show one node in full (node list -v --exact NODE).",
                                 list_opts + 2,
                                 1,
                                 1,
                                 "  NODE     the node's moniker\n"};
  const char *args[1] = {NULL};
  size_t nargs;
  int rc = cli__parse(argc, argv, show ? &show_syn : &list_syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (show) {
    verbose = true;
    exact = true;
  }
  if (exact && args[0] == NULL)
    return cli__usage("--exact needs a FILTER");
  dfnet_client_t *c;
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    return rc;
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(c, args[0], exact, verbose || json, NULL, &l, &err) !=
      DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto listed;
  }
  if (show && l->count == 0) {
    rc = cli__fail(DFNET_STATUS_NOT_FOUND, "no node '%s'", args[0]);
    goto listed;
  }
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    if (show) {
      cJSON_AddItemToObject(doc, "node", node_json(&l->items[0], true));
    } else {
      cJSON *nodes = cJSON_AddArrayToObject(doc, "nodes");
      for (size_t i = 0; i < l->count; i++)
        cJSON_AddItemToArray(nodes, node_json(&l->items[i], true));
    }
    rc = cli__json_print(doc);
  } else if (l->count == 0) {
    printf("No devices found.\n");
  } else {
    for (size_t i = 0; i < l->count; i++) {
      if (verbose)
        node_print_verbose(&l->items[i]);
      else
        printf("%s\n", l->items[i].moniker);
    }
  }
listed:
  dfnet_client_node_list_free(l);
  dfnet_client_close(c);
  return rc;
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

int cmd_node_dump(int argc, char **argv) {
  bool graph = false, json = false;
  const cli_option_t opts[] = {
      {"graph", 0, CLI_OPT_FLAG, &graph, 0, 0, NULL, "print a Graphviz digraph"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "node dump [--graph] [--json]",
      "Print the node topology as a tree: `[name] driver_host=N url`, two spaces per level; "
      "--graph emits Graphviz (digraph { \"id\" [label=\"name\"] \"parent\" -> \"child\" }).",
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
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(c, NULL, false, false, NULL, &l, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto listed;
  }
  qsort(l->items, l->count, sizeof l->items[0], moniker_cmp);
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *nodes = cJSON_AddArrayToObject(doc, "nodes");
    char pbuf[600];
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_node_t *n = &l->items[i];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "moniker", n->moniker);
      cJSON_AddStringToObject(o, "name", n->name);
      cJSON_AddItemToObject(o, "parent", str_or_null(parent_of(n->moniker, pbuf, sizeof pbuf)));
      cJSON_AddItemToObject(o, "parents", strv_json(n->parents, n->parent_count));
      cJSON_AddItemToObject(o, "driver", str_or_null(n->driver_url));
      cJSON_AddNumberToObject(o, "driver_host_id", (double)n->driver_host_id);
      cJSON_AddItemToArray(nodes, o);
    }
    rc = cli__json_print(doc);
  } else if (graph) {
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
  } else {
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_node_t *n = &l->items[i];
      size_t d = depth_of(n->moniker);
      printf("%*s[%s]", (int)(d > 0 ? (d - 1) * 2 : 0), "", short_name(n->moniker));
      if (n->driver_url[0] != '\0')
        printf(" driver_host=%llu %s", (unsigned long long)n->driver_host_id, n->driver_url);
      printf("\n");
    }
  }
listed:
  dfnet_client_node_list_free(l);
  dfnet_client_close(c);
  return rc;
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

int cmd_composite_list(int argc, char **argv) {
  bool json = false, verbose = false;
  const cli_option_t opts[] = {
      {"verbose", 'v', CLI_OPT_FLAG, &verbose, 0, 0, NULL,
       "driver, device and every parent (a spec's: with its bind rules and properties)"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"composite list [-v] [--json]",
                            "List composites: instances of composite bind rules and composite "
                            "node specs, with their parents.",
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
  dfnet_client_composite_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_composites(c, verbose || json, NULL, &l, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto listed;
  }
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "composites");
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_composite_t *k = &l->items[i];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", k->name);
      cJSON_AddItemToObject(o, "driver", str_or_null(k->driver_url));
      cJSON_AddItemToObject(o, "moniker", str_or_null(k->moniker));
      cJSON_AddBoolToObject(o, "from_spec", k->from_spec);
      cJSON *ps = cJSON_AddArrayToObject(o, "parents");
      for (size_t p = 0; p < k->parent_count; p++) {
        cJSON *po = cJSON_CreateObject();
        cJSON_AddStringToObject(po, "name", k->parents[p].name);
        cJSON_AddItemToObject(po, "moniker", str_or_null(k->parents[p].moniker));
        cJSON_AddBoolToObject(po, "primary", k->parents[p].primary);
        cJSON_AddBoolToObject(po, "optional", k->parents[p].optional);
        cJSON *rules = cJSON_AddArrayToObject(po, "bind_rules");
        for (size_t r = 0; r < k->parents[p].rule_count; r++)
          cJSON_AddItemToArray(rules, cli__bind_rule_json(&k->parents[p].rules[r]));
        cJSON *props = cJSON_AddArrayToObject(po, "properties");
        for (size_t r = 0; r < k->parents[p].property_count; r++)
          cJSON_AddItemToArray(props, cli__property_json(&k->parents[p].properties[r]));
        cJSON_AddItemToArray(ps, po);
      }
      cJSON_AddItemToArray(arr, o);
    }
    rc = cli__json_print(doc);
  } else {
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_composite_t *k = &l->items[i];
      if (!verbose) {
        printf("%s\n", k->name);
        continue;
      }
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
  }
listed:
  dfnet_client_composite_list_free(l);
  dfnet_client_close(c);
  return rc;
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

int cmd_bind_why(int argc, char **argv) {
  bool json = false;
  const cli_option_t opts[] = {
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "bind why [--json] NODE [DRIVER]",
      "Why did (or didn't) NODE bind: the matcher's trace per driver — the result and the "
      "instruction that decided it, with the property values it compared.",
      opts,
      1,
      2,
      "  NODE     the node's moniker\n"
      "  DRIVER   a driver's URL, or its name when no other driver has it (default: every "
      "driver)\n"};
  const char *args[2] = {NULL, NULL};
  size_t nargs;
  dfnet_client_t *c;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  dfnet_client_bind_trace_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_bind_why(c, args[0], args[1], NULL, &l, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto listed;
  }
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "node", args[0]);
    cJSON *arr = cJSON_AddArrayToObject(doc, "traces");
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_bind_trace_t *t = &l->items[i];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "driver", t->driver_url);
      cJSON_AddStringToObject(o, "result", bind_result_str(t->result));
      cJSON_AddNumberToObject(o, "offset", t->offset);
      cJSON_AddStringToObject(o, "instruction", t->instruction);
      cJSON_AddStringToObject(o, "reason", t->reason);
      cJSON_AddItemToObject(o, "composite_node", str_or_null(t->composite_node));
      cJSON_AddItemToArray(arr, o);
    }
    rc = cli__json_print(doc);
  } else if (l->count == 0) {
    printf("No driver was considered for %s.\n", args[0]);
  } else {
    for (size_t i = 0; i < l->count; i++) {
      const dfnet_client_bind_trace_t *t = &l->items[i];
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
  }
listed:
  dfnet_client_bind_trace_list_free(l);
  dfnet_client_close(c);
  return rc;
}

/* ---- watch ---------------------------------------------------------------------------- */

typedef struct watch_state {
  bool json;
  uint64_t want, seen;
  int wake[2]; /* written when the watch should end (count reached, on_end) */
  dfnet_status_t status;
  char message[512];
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

static void watch_event(void *user, dfnet_client_watch_id_t w, const dfnet_client_event_t *ev) {
  watch_state_t *s = user;
  (void)w;
  if (s->want != 0 && s->seen >= s->want)
    return;
  char when[40];
  cli__time_str(ev->time_ms, when, sizeof when);
  if (s->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", dfnet_client_event_kind_str(ev->kind));
    cJSON_AddStringToObject(o, "subject", ev->subject);
    cJSON_AddItemToObject(o, "detail", str_or_null(ev->detail));
    cJSON_AddStringToObject(o, "code", dfnet_status_str(ev->code));
    cJSON_AddItemToObject(o, "message", str_or_null(ev->message));
    cJSON_AddNumberToObject(o, "time_ms", (double)ev->time_ms);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text != NULL) {
      printf("%s\n", text);
      free(text);
    }
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
    ssize_t wr = write(s->wake[1], &b, 1);
    (void)wr;
  }
}

static void watch_end(void *user, dfnet_client_watch_id_t w, dfnet_status_t status,
                      const char *message) {
  watch_state_t *s = user;
  (void)w;
  s->status = status;
  snprintf(s->message, sizeof s->message, "%s", message);
  char b = 'e';
  ssize_t wr = write(s->wake[1], &b, 1);
  (void)wr;
}

int cmd_watch(int argc, char **argv) {
  bool json = false, nodes = false, drivers = false, hosts = false;
  uint64_t count = 0, timeout = 0;
  const cli_option_t opts[] = {
      {"nodes", 0, CLI_OPT_FLAG, &nodes, 0, 0, NULL, "node events"},
      {"drivers", 0, CLI_OPT_FLAG, &drivers, 0, 0, NULL, "driver events"},
      {"hosts", 0, CLI_OPT_FLAG, &hosts, 0, 0, NULL, "host events (default: all three)"},
      {"count", 'n', CLI_OPT_UINT, &count, 1, 1000000000, "N", "stop after N events"},
      {"timeout", 0, CLI_OPT_UINT, &timeout, 1, 86400000, "MS",
       "stop after MS milliseconds (exit 1, DEADLINE_EXCEEDED, unless --count was reached)"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "one JSON object per line per event"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"watch [--nodes] [--drivers] [--hosts] [-n N] [--timeout MS] [--json]",
                            "Print the fleet's events as they happen, one per line, until "
                            "Ctrl-C (exit 0), N events, or the timeout.",
                            opts,
                            0,
                            0,
                            NULL};
  const char *args[1];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  watch_state_t s = {.json = json, .want = count, .status = DFNET_STATUS_OK};
  if (pipe(s.wake) != 0)
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe failed");
  dfnet_client_t *c;
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    goto piped;
  unsigned what = (nodes ? DFNET_CLIENT_WATCH_NODES : 0) |
                  (drivers ? DFNET_CLIENT_WATCH_DRIVERS : 0) |
                  (hosts ? DFNET_CLIENT_WATCH_HOSTS : 0);
  watch_sigfd = s.wake[1];
  struct sigaction sa = {.sa_handler = watch_on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  dfnet_client_watch_id_t id;
  dfnet_client_error_t err;
  if (dfnet_client_watch(c, what, watch_event, watch_end, &s, &id, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto connected;
  }
  /* Wait for: count reached, the end, a signal or the timeout. */
  bool ended = false, timed_out = false;
  for (;;) {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(s.wake[0], &rd);
    struct timeval tv = {.tv_sec = (time_t)(timeout / 1000),
                         .tv_usec = (long)(timeout % 1000) * 1000};
    int n = select(s.wake[0] + 1, &rd, NULL, NULL, timeout ? &tv : NULL);
    if (n == 0) {
      timed_out = true;
      break;
    }
    if (n < 0)
      continue; /* EINTR: the handler wrote to the pipe */
    char b;
    if (read(s.wake[0], &b, 1) == 1) {
      ended = b == 'e';
      break;
    }
  }
  if (!ended)
    dfnet_client_watch_cancel(c, id);
  dfnet_client_close(c); /* on_end has run when this returns */
  c = NULL;
  if (timed_out && !(count != 0 && s.seen >= count))
    rc = cli__fail(DFNET_STATUS_DEADLINE_EXCEEDED, "%llu event(s) in %llu ms",
                   (unsigned long long)s.seen, (unsigned long long)timeout);
  else if (ended && s.status != DFNET_STATUS_OK && s.status != DFNET_STATUS_CANCELLED)
    rc = cli__fail(s.status, "watch ended: %s", s.message);
  else
    rc = CLI_EXIT_OK;
connected:
  watch_sigfd = -1;
  dfnet_client_close(c);
piped:
  close(s.wake[0]);
  close(s.wake[1]);
  return rc;
}
