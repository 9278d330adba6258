/* dfnet CLI: the skeleton every command fills in (cli_command_ops_t): parse the command's
 * arguments, prepare, connect, send the request, close, print the result as text or as
 * one JSON document (--json), say what the result reports failed (exit 1), release; and the
 * release hooks of the listings' results (CLI_RESULTS). The commands (cmd_*.c) keep only
 * their own logic: their option tables, checks, requests and what they print.
 */
#include <string.h>

#include "clients/cli/cli.h"

/* --json of the commands whose only option it is: one table, one flag. */
static bool json_option;
const cli_option_t cli_json_options[] = {CLI_OPT_JSON(&json_option), CLI_OPT_END};

/* Was the command's --json given? Read from its own option table (CLI_OPT_JSON). */
static bool json_given(const cli_syntax_t *syn) {
  for (const cli_option_t *o = syn->options; o != NULL && o->name != NULL; o++)
    if (o->type == CLI_OPT_FLAG && strcmp(o->name, "json") == 0)
      return *(const bool *)o->dest;
  return false;
}

/* Connect, run the request, close: the connection lives for the request alone. */
static int connected_request(const cli_command_ops_t *ops, cli_run_t *run) {
  int rc = cli__connect(&run->client);
  if (rc == CLI_EXIT_OK)
    rc = ops->request(run);
  dfnet_client_close(run->client); /* the client's callbacks have all run when it returns */
  run->client = NULL;
  return rc;
}

static int print_result(const cli_command_ops_t *ops, cli_run_t *run) {
  if (ops->json != NULL && run->json)
    return cli__json_print(ops->json(run));
  return ops->print != NULL ? ops->print(run) : CLI_EXIT_OK;
}

/* The listings' release hooks: each frees the result first in ctx (CLI_RESULTS). */
#define RESULT_RELEASE(name, type, free_fn) \
  void cli__release_##name(cli_run_t *run) { free_fn(*(type **)run->ctx); }
CLI_RESULTS(RESULT_RELEASE)
#undef RESULT_RELEASE

int cli__run(int argc, char **argv, const cli_syntax_t *syntax, const cli_command_ops_t *ops,
             void *ctx) {
  cli_run_t run = {.ctx = ctx};
  if (syntax->max_args > CLI_ARGS_MAX) /* a command's table wants more room in run.args */
    return cli__fail(DFNET_STATUS_INTERNAL, "%s: more than %d arguments", syntax->usage,
                     CLI_ARGS_MAX);
  json_option = false;
  int rc = cli__parse(argc, argv, syntax, run.args, &run.nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc; /* -1: --help answered, or describe mode */
  run.json = json_given(syntax);
  if (ops->prepare != NULL)
    rc = ops->prepare(&run);
  if (rc == CLI_EXIT_OK && ops->request != NULL)
    rc = connected_request(ops, &run);
  if (rc == CLI_EXIT_OK)
    rc = print_result(ops, &run);
  if (rc == CLI_EXIT_OK && run.failed[0] != '\0') {
    fflush(stdout); /* the result first, then what failed */
    rc = cli__fail(run.failed_code, "%s", run.failed);
  }
  if (ops->release != NULL)
    ops->release(&run);
  return rc;
}
