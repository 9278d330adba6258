/* dfnet CLI: leases (issue 20; docs/architecture.md "Leases") — exclusive use of nodes for a
 * time: `lease acquire` (prints the token and `export DFNET_LEASE=...`), `lease list`,
 * `lease show`, `lease renew`, `lease release` and `lease history` (the audit log). `lease
 * run` is lease_run.c; the acquire options both take are lease_ask.c's, a lease as text and
 * JSON lease_format.c's. The manager decides who may do what (role operator to acquire, admin
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
    rc = cli__json_print(cli__lease_doc(l));
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
  return cli__lease_doc(s->lease);
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
