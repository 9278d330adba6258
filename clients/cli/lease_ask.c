/* dfnet CLI: asking for a lease, what `lease acquire` (cmd_lease.c) and `lease run`
 * (lease_run.c) share: the acquire options (--match, --ttl, --wait [TIMEOUT], --priority,
 * --reason and --json) parsed with the TARGETs into the library's lease options, and the
 * acquire itself, cancelled by the signal watcher's first signal (lease_run.c), its queue
 * positions on stderr. Declared in lease.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/lease.h"

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
