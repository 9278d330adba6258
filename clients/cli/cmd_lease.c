/* dfnet CLI: leases (issue 20; docs/architecture.md "Leases") — exclusive use of nodes for a
 * time: `lease acquire` (prints the token and `export DFNET_LEASE=...`), `lease list`,
 * `lease show`, `lease renew`, `lease release` and `lease history` (the audit log). `lease
 * run` is lease_run.c. The manager decides who may do what (role operator to acquire, admin
 * to force a release); JSON shapes in clients/cli/JSON.md. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/lease.h"
#include "lib/cmdline.h"

#define HISTORY_PAGE 1000u
#define LEASE_TARGET_HELP                                                                  \
  "  TARGET   a node moniker (it covers the node's subtree; a composite node covers its\n" \
  "           parents too) or class/<class>/<NNN>; at most 16, taken all or nothing\n"
#define LEASE_ID_HELP "  ID       the lease's number (default: the lease of DFNET_LEASE)\n"

/* ---- the acquire options (lease acquire, lease run) ------------------------------------ */

#define ASK_OPTIONS 7 /* entries ask_options writes, the end included */

/* The acquire options' table into t (ASK_OPTIONS entries, the end included): --match, --ttl,
 * --wait, --priority, --reason and, with json, --json. */
static void ask_options(cli_lease_ask_t *a, bool json, cli_option_t *t) {
  const cli_option_t opts[ASK_OPTIONS] = {
      {"match", 0, CLI_OPT_LIST, &a->match, 0, 8, "K=V",
       "also a node by host=, class=, host label or property (all hold)"},
      {"ttl", 0, CLI_OPT_STRING, &a->ttl, 0, 0, "DURATION",
       "lifetime unless renewed: 90s, 30m, 1h (default 30m; 0: never, admin)"},
      {"wait", 0, CLI_OPT_STRING, &a->wait, 0, 0, "[TIMEOUT]",
       "queue while a target is leased, up to TIMEOUT (default: no limit)"},
      {"priority", 0, CLI_OPT_STRING, &a->priority, 0, 0, "P",
       "the queue's band: low, normal (default), high (role admin)"},
      {"reason", 0, CLI_OPT_STRING, &a->reason, 0, 0, "TEXT", "why, kept in the audit log"},
      CLI_OPT_JSON(&a->json),
      CLI_OPT_END};
  memcpy(t, opts, sizeof opts);
  if (!json)
    t[5] = t[6];
}

void cli__lease_wait_argv(int argc, char **argv, char **out) {
  static char bare[] = "--wait=";
  bool args_only = false;
  for (int i = 0; i < argc; i++) {
    out[i] = argv[i];
    if (args_only || strcmp(argv[i], "--") == 0) {
      args_only = true;
      continue;
    }
    uint64_t ms;
    if (strcmp(argv[i], "--wait") == 0 &&
        (i + 1 >= argc || !cli__duration_parse(argv[i + 1], UINT64_MAX, &ms)))
      out[i] = bare;
  }
  out[argc] = NULL;
}

/* a's options and targets into a->opts. CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int ask_prepare(cli_lease_ask_t *a, const char *command) {
  dfnet_client_lease_options_t *o = &a->opts;
  uint64_t ms;
  if (a->target_count == 0 && a->match.n == 0)
    return cli__usage("give a TARGET or --match K=V (dfnet %s --help)", command);
  for (size_t i = 0; i < a->match.n; i++) {
    const char *eq = strchr(a->match.v[i], '=');
    if (eq == NULL || eq == a->match.v[i])
      return cli__usage("--match wants KEY=VALUE, not '%s'", a->match.v[i]);
  }
  if (a->ttl != NULL && !cli__duration_parse(a->ttl, UINT32_MAX, &ms))
    return cli__usage("--ttl wants a duration (90s, 30m, 1h; 0: no expiry), not '%s'", a->ttl);
  if (a->ttl != NULL) {
    o->no_expiry = ms == 0;
    o->ttl_ms = (uint32_t)ms;
  }
  if (a->wait != NULL && a->wait[0] != '\0' &&
      (!cli__duration_parse(a->wait, UINT32_MAX, &ms) || ms == 0))
    return cli__usage("--wait takes a timeout (90s, 5m, 1h) or nothing, not '%s'", a->wait);
  o->wait = a->wait != NULL;
  o->wait_ms = a->wait != NULL && a->wait[0] != '\0' ? (uint32_t)ms : 0;
  if (a->priority == NULL || strcmp(a->priority, "normal") == 0)
    o->priority = DFNET_CLIENT_LEASE_NORMAL;
  else if (strcmp(a->priority, "low") == 0)
    o->priority = DFNET_CLIENT_LEASE_LOW;
  else if (strcmp(a->priority, "high") == 0)
    o->priority = DFNET_CLIENT_LEASE_HIGH;
  else
    return cli__usage("--priority wants low, normal or high, not '%s'", a->priority);
  o->targets = a->targets;
  o->target_count = a->target_count;
  o->match = a->match.v;
  o->match_count = a->match.n;
  o->reason = a->reason;
  return CLI_EXIT_OK;
}

int cli__lease_ask_parse(int argc, char **argv, const cli_syntax_t *syntax, bool json,
                         cli_lease_ask_t *a) {
  cli_option_t opts[ASK_OPTIONS];
  ask_options(a, json, opts);
  cli_syntax_t syn = *syntax;
  syn.options = opts;
  char **v = malloc(((size_t)argc + 1) * sizeof *v);
  if (v == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  cli__lease_wait_argv(argc, argv, v);
  int rc = cli__parse(argc, v, &syn, a->targets, &a->target_count);
  free(v);
  if (rc != CLI_EXIT_OK)
    return rc;
  char verb[16] = "", sub[16] = "", command[40]; /* "lease acquire" */
  if (sscanf(syntax->usage, "%15s %15s", verb, sub) < 1)
    return cli__fail(DFNET_STATUS_INTERNAL, "no usage");
  snprintf(command, sizeof command, "%s %s", verb, sub);
  return ask_prepare(a, command);
}

static void print_queued(void *user, uint64_t entry, uint32_t position) {
  (void)user;
  fprintf(stderr, "[dfnet: waiting in the queue: position %u (request %" PRIu64 ")]\n", position,
          entry);
}

int cli__lease_acquire(cli_lease_ask_t *a, cli_lease_signals_t *w, bool renew, dfnet_client_t **c,
                       dfnet_client_lease_t **out) {
  int rc = cli__lease_signals_start(w);
  if (rc == CLI_EXIT_OK)
    rc = cli__connect(c);
  if (rc != CLI_EXIT_OK)
    return rc;
  a->opts.no_renew = !renew;
  a->opts.on_queued = print_queued;
  dfnet_client_error_t err;
  cli__lease_signals_target(w, *c, 0);
  int sig = cli__lease_signals_first(w);
  dfnet_status_t st =
      sig != 0 ? DFNET_STATUS_CANCELLED : dfnet_client_lease_acquire(*c, &a->opts, out, &err);
  cli__lease_signals_target(w, NULL, 0);
  if (st == DFNET_STATUS_OK)
    return CLI_EXIT_OK;
  sig = cli__lease_signals_first(w);
  if (st == DFNET_STATUS_CANCELLED && sig != 0) {
    cli__fail(st, "interrupted by signal %d (%s)%s", sig, strsignal(sig),
              a->opts.wait ? ": the request left the queue" : "");
    return 128 + sig;
  }
  return cli__fail_err(&err);
}

/* ---- a lease as text and JSON ----------------------------------------------------------- */

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

/* {"lease": LEASE} */
static cJSON *lease_doc(const dfnet_client_lease_t *l) {
  cJSON *doc = cJSON_CreateObject();
  if (doc != NULL)
    cJSON_AddItemToObject(doc, "lease", cli__lease_json(l));
  return doc;
}

/* ---- lease acquire ---------------------------------------------------------------------- */

int cmd_lease_acquire(int argc, char **argv) {
  cli_lease_ask_t a = {0};
  static const cli_syntax_t syn = {
      .usage =
          "lease acquire [--match K=V]... [--ttl DURATION] [--wait [TIMEOUT]] "
          "[--priority P] [--reason TEXT] [--json] TARGET...",
      .about =
          "Take nodes for exclusive use (role operator), all or nothing: the lease's calls "
          "must carry its token, everyone else's are refused until it is released or expires. "
          "Prints the lease, its token and `export DFNET_LEASE=<token>` (last, so that "
          "`eval \"$(dfnet lease acquire ... | tail -n 1)\"` sets it); dfnet and "
          "libdfnet-client put DFNET_LEASE in every call. It is not renewed: `dfnet lease "
          "renew` before it expires, or use `dfnet lease run`. A TIMEOUT right after --wait "
          "is --wait's; Ctrl-C while waiting leaves the queue.",
      .max_args = CLI_LEASE_TARGETS_MAX,
      .args_help = LEASE_TARGET_HELP};
  int rc = cli__lease_ask_parse(argc, argv, &syn, true, &a);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  cli_lease_signals_t w;
  dfnet_client_t *c = NULL;
  dfnet_client_lease_t *l = NULL;
  rc = cli__lease_acquire(&a, &w, false, &c, &l);
  dfnet_client_close(c);
  if (rc == CLI_EXIT_OK && a.json) {
    rc = cli__json_print(lease_doc(l));
  } else if (rc == CLI_EXIT_OK) {
    cli__lease_print(l, cli__now_ms());
    printf("export DFNET_LEASE=%s\n", l->token);
  }
  fflush(stdout);
  dfnet_client_lease_free(l);
  cli__lease_signals_stop(&w);
  return rc;
}

/* ---- lease list ------------------------------------------------------------------------- */

typedef struct lease_list {
  dfnet_client_lease_list_t *list;
} lease_list_t;

static int lease_list_request(cli_run_t *run) {
  lease_list_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_list_leases(run->client, run->args[0], NULL, &s->list, &err),
                     &err);
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

static cJSON *lease_list_json(cli_run_t *run) {
  const lease_list_t *s = run->ctx;
  return cli__leases_json(s->list);
}

static void targets_text(const dfnet_client_lease_t *l, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < l->target_count && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? "," : "", l->targets[i]);
}

static int lease_list_print(cli_run_t *run) {
  const lease_list_t *s = run->ctx;
  uint64_t now = cli__now_ms();
  size_t held = 0, waiting = 0;
  char targets[1024], when[80];
  for (size_t i = 0; i < s->list->count; i++) {
    const dfnet_client_lease_t *l = &s->list->items[i];
    if (l->queue_position > 0)
      continue;
    if (held++ == 0)
      printf("%-6s %-16s %-44s %5s  %s\n", "ID", "HOLDER", "EXPIRES", "NODES", "TARGETS");
    cli__expiry_str(l->expires_ms, now, when, sizeof when);
    targets_text(l, targets, sizeof targets);
    printf("%-6" PRIu64 " %-16s %-44s %5u  %s\n", l->id, l->holder, when, l->node_count, targets);
  }
  if (held == 0)
    printf("No leases.\n");
  for (size_t i = 0; i < s->list->count; i++) {
    const dfnet_client_lease_t *l = &s->list->items[i];
    if (l->queue_position == 0)
      continue;
    if (waiting++ == 0)
      printf("\nQueue:\n%-4s %-6s %-16s %-8s %-24s  %s\n", "POS", "ID", "WHO", "PRIORITY",
             "WAITING SINCE", "TARGETS");
    cli__time_str(l->acquired_ms, when, sizeof when);
    targets_text(l, targets, sizeof targets);
    printf("%4u %-6" PRIu64 " %-16s %-8s %-24s  %s\n", l->queue_position, l->id, l->holder,
           dfnet_client_lease_priority_str(l->priority), when, targets);
  }
  return CLI_EXIT_OK;
}

int cmd_lease_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, lease_list_request, lease_list_json, lease_list_print,
                                        cli__release_leases};
  static const cli_syntax_t syn = {
      .usage = "lease list [--json] [TARGET]",
      .about =
          "List the leases: id, holder, expiry, nodes covered and targets; then the "
          "queue: the requests waiting, in order, with their place.",
      .options = cli_json_options,
      .max_args = 1,
      .args_help = "  TARGET   only the leases covering this node (moniker or class path)\n"};
  lease_list_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- lease show, renew, release: one lease by its id ----------------------------------- */

typedef struct lease_one {
  dfnet_client_lease_t *lease; /* first: cli__release_lease frees it */
  const char *ttl;             /* renew --ttl */
  bool force;                  /* release --force */
  const char *reason;
  uint64_t id;     /* 0: DFNET_LEASE's */
  uint32_t ttl_ms; /* --ttl */
} lease_one_t;

/* The lease a token names ("<id>.<hex>"), 0 when none. */
static uint64_t token_lease_id(const char *token) {
  uint64_t id = 0;
  const char *dot = token != NULL ? strchr(token, '.') : NULL;
  char digits[24];
  if (dot == NULL || dot == token || (size_t)(dot - token) >= sizeof digits)
    return 0;
  snprintf(digits, sizeof digits, "%.*s", (int)(dot - token), token);
  return dfnet_cmdline_uint(digits, 10, 1, UINT64_MAX, &id) ? id : 0;
}

/* ID, or the lease of DFNET_LEASE when ID is not given (optional). */
static int lease_one_id(cli_run_t *run, bool optional) {
  lease_one_t *s = run->ctx;
  if (run->args[0] != NULL && !dfnet_cmdline_uint(run->args[0], 10, 1, UINT64_MAX, &s->id))
    return cli__usage("ID wants a lease number, not '%s'", run->args[0]);
  if (run->args[0] == NULL && optional) {
    s->id = token_lease_id(getenv("DFNET_LEASE"));
    if (s->id == 0)
      return cli__usage("no ID given, and DFNET_LEASE holds no lease token");
  }
  return CLI_EXIT_OK;
}

static int lease_show_prepare(cli_run_t *run) { return lease_one_id(run, false); }

static int lease_show_request(cli_run_t *run) {
  lease_one_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_lease_show(run->client, s->id, NULL, &s->lease, &err), &err);
}

static cJSON *lease_one_json(cli_run_t *run) {
  const lease_one_t *s = run->ctx;
  return lease_doc(s->lease);
}

static int lease_show_print(cli_run_t *run) {
  const lease_one_t *s = run->ctx;
  cli__lease_print(s->lease, cli__now_ms());
  return CLI_EXIT_OK;
}

int cmd_lease_show(int argc, char **argv) {
  static const cli_command_ops_t ops = {lease_show_prepare, lease_show_request, lease_one_json,
                                        lease_show_print, cli__release_lease};
  static const cli_syntax_t syn = {
      .usage = "lease show [--json] ID",
      .about =
          "Show one lease in full (or a request waiting in the queue): holder, targets, "
          "the nodes it covers, when it was acquired and expires, TTL, priority, reason.",
      .options = cli_json_options,
      .min_args = 1,
      .max_args = 1,
      .args_help = "  ID       the lease's number\n"};
  lease_one_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}

static int lease_renew_prepare(cli_run_t *run) {
  lease_one_t *s = run->ctx;
  uint64_t ms = 0;
  if (s->ttl != NULL && (!cli__duration_parse(s->ttl, UINT32_MAX, &ms) || ms == 0))
    return cli__usage("--ttl wants a duration over 0 (90s, 30m, 1h), not '%s'", s->ttl);
  s->ttl_ms = (uint32_t)ms;
  return lease_one_id(run, true);
}

static int lease_renew_request(cli_run_t *run) {
  lease_one_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_lease_renew(run->client, s->id, NULL, s->ttl_ms, &s->lease, &err),
                     &err);
}

static int lease_renew_print(cli_run_t *run) {
  const lease_one_t *s = run->ctx;
  char when[80];
  cli__expiry_str(s->lease->expires_ms, cli__now_ms(), when, sizeof when);
  printf("Renewed lease %" PRIu64 ": expires %s\n", s->lease->id, when);
  return CLI_EXIT_OK;
}

int cmd_lease_renew(int argc, char **argv) {
  static const cli_command_ops_t ops = {lease_renew_prepare, lease_renew_request, lease_one_json,
                                        lease_renew_print, cli__release_lease};
  lease_one_t s = {0};
  bool json = false;
  const cli_option_t opts[] = {{"ttl", 0, CLI_OPT_STRING, &s.ttl, 0, 0, "DURATION",
                                "expire this long from now: 90s, 30m, 1h (default: its TTL)"},
                               CLI_OPT_JSON(&json),
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "lease renew [--ttl DURATION] [--json] [ID]",
      .about =
          "Renew a lease: it expires a TTL from now. With its token (DFNET_LEASE, when it "
          "is this lease's), or as role admin.",
      .options = opts,
      .max_args = 1,
      .args_help = LEASE_ID_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}

static int lease_release_prepare(cli_run_t *run) {
  lease_one_t *s = run->ctx;
  if (s->force && (s->reason == NULL || s->reason[0] == '\0'))
    return cli__usage("--force needs --reason TEXT (it goes to the audit log)");
  if (s->force && run->args[0] == NULL)
    return cli__usage("--force needs the lease's ID");
  return lease_one_id(run, true);
}

static int lease_release_request(cli_run_t *run) {
  lease_one_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(
      dfnet_client_lease_release(run->client, s->id, NULL, s->force, s->reason, &err), &err);
}

static int lease_release_print(cli_run_t *run) {
  const lease_one_t *s = run->ctx;
  printf("Released lease %" PRIu64 "\n", s->id);
  return CLI_EXIT_OK;
}

int cmd_lease_release(int argc, char **argv) {
  static const cli_command_ops_t ops = {lease_release_prepare, lease_release_request, NULL,
                                        lease_release_print, NULL};
  lease_one_t s = {0};
  const cli_option_t opts[] = {
      {"force", 0, CLI_OPT_FLAG, &s.force, 0, 0, NULL,
       "release another's lease (role admin; with --reason)"},
      {"reason", 0, CLI_OPT_STRING, &s.reason, 0, 0, "TEXT", "why, kept in the audit log"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "lease release [--force --reason TEXT] [ID]",
      .about =
          "Release a lease: the holder's calls on its nodes end, the queue's next request "
          "gets them. With its token (DFNET_LEASE, when it is this lease's); role admin "
          "releases anyone's with --force and a reason.",
      .options = opts,
      .max_args = 1,
      .args_help = LEASE_ID_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- lease history ---------------------------------------------------------------------- */

typedef struct lease_history {
  const char *target, *since;
  uint64_t count; /* -n: at most this many entries; 0 = all */
  bool json;
  dfnet_client_lease_history_query_t q;
  dfnet_client_lease_audit_list_t **pages; /* malloc'd */
  size_t page_count;
  bool more; /* --count cut it */
} lease_history_t;

static int lease_history_prepare(cli_run_t *run) {
  lease_history_t *s = run->ctx;
  if (s->since != NULL && !cli__time_parse(s->since, cli__now_ms(), &s->q.since_ms))
    return cli__usage(
        "--since wants a duration ago (1d, 2h) or an ISO 8601 time "
        "(2026-12-07T10:00Z), not '%s'",
        s->since);
  s->q.target = s->target;
  return CLI_EXIT_OK;
}

/* Every page, until the log or --count ends. */
static int lease_history_request(cli_run_t *run) {
  lease_history_t *s = run->ctx;
  uint64_t got = 0;
  for (;;) {
    uint64_t left = s->count ? s->count - got : HISTORY_PAGE;
    s->q.limit = (uint32_t)(left < HISTORY_PAGE ? left : HISTORY_PAGE);
    void *p = realloc(s->pages, (s->page_count + 1) * sizeof *s->pages);
    if (p == NULL)
      return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    s->pages = p;
    dfnet_client_lease_audit_list_t *page = NULL;
    dfnet_client_error_t err;
    dfnet_status_t st = dfnet_client_lease_history(run->client, &s->q, NULL, &page, &err);
    if (st != DFNET_STATUS_OK)
      return cli__fail_err(&err);
    s->pages[s->page_count++] = page;
    got += page->count;
    if (!page->more || page->count == 0 || (s->count && got >= s->count)) {
      s->more = page->more;
      return CLI_EXIT_OK;
    }
    s->q.after_seq = page->items[page->count - 1].seq;
  }
}

static cJSON *lease_history_json(cli_run_t *run) {
  const lease_history_t *s = run->ctx;
  cJSON *doc = cJSON_CreateObject();
  cJSON *entries = cJSON_AddArrayToObject(doc, "entries");
  for (size_t p = 0; p < s->page_count; p++) {
    for (size_t i = 0; i < s->pages[p]->count; i++) {
      const dfnet_client_lease_audit_t *e = &s->pages[p]->items[i];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddNumberToObject(o, "seq", (double)e->seq);
      cJSON_AddNumberToObject(o, "time_ms", (double)e->time_ms);
      cJSON_AddStringToObject(o, "actor", e->actor);
      cJSON_AddStringToObject(o, "action", e->action);
      cJSON_AddNumberToObject(o, "lease_id", (double)e->lease_id);
      cJSON_AddStringToObject(o, "targets", e->targets);
      cJSON_AddItemToObject(o, "detail", cli__json_string_or_null(e->detail));
      cJSON_AddItemToArray(entries, o);
    }
  }
  cJSON_AddBoolToObject(doc, "more", s->more);
  return doc;
}

static int lease_history_print(cli_run_t *run) {
  const lease_history_t *s = run->ctx;
  size_t n = 0;
  for (size_t p = 0; p < s->page_count; p++) {
    for (size_t i = 0; i < s->pages[p]->count; i++, n++) {
      const dfnet_client_lease_audit_t *e = &s->pages[p]->items[i];
      char when[40];
      cli__time_str(e->time_ms, when, sizeof when);
      if (n == 0)
        printf("%-24s  %-16s %-14s %6s  %-24s %s\n", "TIME", "ACTOR", "ACTION", "LEASE", "TARGETS",
               "DETAIL");
      printf("%-24s  %-16s %-14s %6" PRIu64 "  %-24s %s\n", when, e->actor, e->action, e->lease_id,
             e->targets, e->detail);
    }
  }
  if (n == 0)
    printf("No entries.\n");
  else if (s->more)
    printf("(more: -n %llu stopped here)\n", (unsigned long long)s->count);
  return CLI_EXIT_OK;
}

static void lease_history_release(cli_run_t *run) {
  lease_history_t *s = run->ctx;
  for (size_t p = 0; p < s->page_count; p++)
    dfnet_client_lease_audit_list_free(s->pages[p]);
  free(s->pages);
}

int cmd_lease_history(int argc, char **argv) {
  static const cli_command_ops_t ops = {lease_history_prepare, lease_history_request,
                                        lease_history_json, lease_history_print,
                                        lease_history_release};
  lease_history_t s = {0};
  const cli_option_t opts[] = {
      {"target", 0, CLI_OPT_STRING, &s.target, 0, 0, "T",
       "only leases on T (a moniker, or a target as asked)"},
      {"since", 0, CLI_OPT_STRING, &s.since, 0, 0, "WHEN",
       "only since WHEN: 1d, 2h ago, or ISO 8601 (2026-12-07T10:00Z)"},
      {"count", 'n', CLI_OPT_UINT, &s.count, 1, 1000000, "N", "at most N entries (default: all)"},
      CLI_OPT_JSON(&s.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "lease history [--target T] [--since WHEN] [-n N] [--json]",
      .about =
          "The leases' audit log, oldest first: every acquire, renewal, release, expiry, "
          "forced release and queue change, with who, when and why.",
      .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}
