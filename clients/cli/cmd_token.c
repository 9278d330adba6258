/* `dfnet token create|list|revoke` (clients/cli/trust.h; issue 23 item 1): join tokens, role
 * admin. `create` prints the token once (the manager keeps only its hash) and the command
 * line that enrols with it, the CA pinned by the SHA-256 of its SubjectPublicKeyInfo. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/trust.h"
#include "clients/lib/client_internal.h"

static const char *role_str(dfnet_v1_Role r) {
  return r == dfnet_v1_Role_HOST       ? "host"
         : r == dfnet_v1_Role_OPERATOR ? "operator"
         : r == dfnet_v1_Role_VIEWER   ? "viewer"
         : r == dfnet_v1_Role_ADMIN    ? "admin"
                                       : "?";
}

static cJSON *token_json(const dfnet_v1_TokenInfo *t) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", t->id);
  cJSON_AddStringToObject(o, "role", role_str(t->role));
  cJSON_AddItemToObject(o, "name", cli__json_string_or_null(t->name));
  cJSON_AddItemToObject(o, "name_prefix", cli__json_string_or_null(t->name_prefix));
  cJSON *labels = cJSON_AddObjectToObject(o, "labels");
  for (pb_size_t i = 0; i < t->labels_count; i++)
    cJSON_AddStringToObject(labels, t->labels[i].key, t->labels[i].value);
  cJSON_AddItemToObject(o, "created", cli__json_time(t->created_ms));
  cJSON_AddStringToObject(o, "created_by", t->created_by);
  cJSON_AddItemToObject(o, "expires", cli__json_time(t->expires_ms));
  cJSON_AddNumberToObject(o, "expires_ms", (double)t->expires_ms);
  cJSON_AddNumberToObject(o, "uses_left", t->uses_left);
  cJSON_AddItemToObject(o, "revoked", cli__json_time(t->revoked_ms));
  return o;
}

/* ---- token create ----------------------------------------------------------------------- */

typedef struct token_create {
  const char *role, *name, *prefix, *ttl;
  uint64_t uses;
  cli_strings_t labels;
  dfnet_envelope_t *req;
  dfnet_v1_TokenInfo info;
} token_create_t;

/* --label K=V into the request's labels. */
static int add_labels(token_create_t *s, dfnet_v1_TokenCreate *q) {
  for (size_t i = 0; i < s->labels.n; i++) {
    const char *eq = strchr(s->labels.v[i], '=');
    dfnet_v1_Label *l = &q->labels[q->labels_count];
    if (eq == NULL || eq == s->labels.v[i] || (size_t)(eq - s->labels.v[i]) >= sizeof l->key ||
        strlen(eq + 1) >= sizeof l->value)
      return cli__usage("--label wants KEY=VALUE (key up to %zu bytes, value up to %zu), not '%s'",
                        sizeof l->key - 1, sizeof l->value - 1, s->labels.v[i]);
    snprintf(l->key, sizeof l->key, "%.*s", (int)(eq - s->labels.v[i]), s->labels.v[i]);
    snprintf(l->value, sizeof l->value, "%s", eq + 1);
    q->labels_count++;
  }
  return CLI_EXIT_OK;
}

static int token_create_prepare(cli_run_t *run) {
  token_create_t *s = run->ctx;
  dfnet_client_error_t err;
  if (s->role == NULL)
    return cli__usage("token create needs --role host|operator|viewer");
  if (s->name != NULL && s->prefix != NULL)
    return cli__usage("give --name or --name-prefix, not both");
  if ((s->req = client__envelope_new(dfnet_v1_Envelope_token_create_tag, &err)) == NULL)
    return cli__fail_err(&err);
  dfnet_v1_TokenCreate *q = &s->req->pb.msg.token_create;
  q->role = strcmp(s->role, "host") == 0       ? dfnet_v1_Role_HOST
            : strcmp(s->role, "operator") == 0 ? dfnet_v1_Role_OPERATOR
            : strcmp(s->role, "viewer") == 0   ? dfnet_v1_Role_VIEWER
                                               : dfnet_v1_Role_ROLE_UNSPECIFIED;
  if (q->role == dfnet_v1_Role_ROLE_UNSPECIFIED)
    return cli__usage("--role '%s': host, operator or viewer", s->role);
  if (client__copy_field(q->name, sizeof q->name, s->name, "--name", &err) != DFNET_STATUS_OK ||
      client__copy_field(q->name_prefix, sizeof q->name_prefix, s->prefix, "--name-prefix", &err) !=
          DFNET_STATUS_OK)
    return cli__usage("%s", err.message);
  if (s->ttl != NULL && !cli__duration_parse(s->ttl, 30ull * 24 * 3600 * 1000, &q->ttl_ms))
    return cli__usage("--ttl wants a duration up to 30 days (30m, 1h, 7d), not '%s'", s->ttl);
  if (s->ttl != NULL && q->ttl_ms == 0)
    return cli__usage("--ttl 0: a token must expire");
  q->uses = (uint32_t)s->uses;
  return add_labels(s, q);
}

static int token_create_request(cli_run_t *run) {
  token_create_t *s = run->ctx;
  dfnet_client_error_t err;
  cli_answer_t answer = {dfnet_v1_Envelope_token_info_tag, sizeof s->info, &s->info};
  return cli__status(client__query(run->client, s->req, false, 0, cli__keep_answer, &answer, &err),
                     &err);
}

static cJSON *token_create_json(cli_run_t *run) {
  const token_create_t *s = run->ctx;
  cJSON *o = token_json(&s->info);
  char cmd[512];
  cJSON_AddStringToObject(o, "token", s->info.token);
  cJSON_AddStringToObject(o, "ca_pin", s->info.ca_pin);
  snprintf(cmd, sizeof cmd, "dfnet-host join %s --token %s --ca-pin %s", cli_globals.manager,
           s->info.token, s->info.ca_pin);
  cJSON_AddStringToObject(o, "join_command", cmd);
  return o;
}

static int token_create_print(cli_run_t *run) {
  const token_create_t *s = run->ctx;
  const dfnet_v1_TokenInfo *t = &s->info;
  char exp[64];
  cli__time_str(t->expires_ms, exp, sizeof exp);
  printf("Token %s: role %s, %s%s, %u use%s, expires %s.\n", t->id, role_str(t->role),
         t->name[0]          ? "name "
         : t->name_prefix[0] ? "name prefix "
                             : "any name",
         t->name[0] ? t->name : t->name_prefix, t->uses_left, t->uses_left == 1 ? "" : "s", exp);
  printf("It is shown once (the manager keeps only its hash):\n\n  %s\n\n", t->token);
  printf("Enrol with:\n\n  dfnet-host join %s --token %s --ca-pin %s\n", cli_globals.manager,
         t->token, t->ca_pin);
  return CLI_EXIT_OK;
}

static void token_create_release(cli_run_t *run) {
  token_create_t *s = run->ctx;
  free(s->req);
}

int cmd_token_create(int argc, char **argv) {
  static const cli_command_ops_t ops = {token_create_prepare, token_create_request,
                                        token_create_json, token_create_print,
                                        token_create_release};
  token_create_t s = {0};
  bool json = false;
  const cli_option_t opts[] = {
      {"role", 0, CLI_OPT_STRING, &s.role, 0, 0, "ROLE", "host, operator or viewer (required)"},
      {"name", 0, CLI_OPT_STRING, &s.name, 0, 0, "NAME", "the enrolled certificate's name"},
      {"name-prefix", 0, CLI_OPT_STRING, &s.prefix, 0, 0, "PREFIX",
       "or: the start of its name, the enrolling peer completes it"},
      {"ttl", 0, CLI_OPT_STRING, &s.ttl, 0, 0, "DURATION", "valid for this long (default 1h)"},
      {"uses", 0, CLI_OPT_UINT, &s.uses, 1, 10000, "N", "enrolments it allows (default 1)"},
      {"label", 0, CLI_OPT_LIST, &s.labels, 0, 16, "K=V", "a label of the enrolled host"},
      CLI_OPT_JSON(&json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage =
          "token create --role ROLE [--name NAME | --name-prefix PREFIX] [--ttl 1h] "
          "[--uses 1] [--label K=V]...",
      .about =
          "Create a join token: a host or person enrols with it once (or --uses times) "
          "before it expires. The token is printed once, with the command that enrols; "
          "the manager keeps only a hash of its secret. Role admin.",
      .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- token list ------------------------------------------------------------------------- */

static int token_list_request(cli_run_t *run) {
  dfnet_client_error_t err;
  return cli__status(cli__trust_list(run->client, dfnet_v1_Envelope_token_list_tag, run->ctx, &err),
                     &err);
}

static cJSON *token_list_json(cli_run_t *run) {
  const client_kept_t *k = run->ctx;
  const dfnet_v1_TokenInfo *items = k->items;
  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(doc, "tokens");
  for (size_t i = 0; i < k->count; i++)
    cJSON_AddItemToArray(arr, token_json(&items[i]));
  return doc;
}

static int token_list_print(cli_run_t *run) {
  const client_kept_t *k = run->ctx;
  const dfnet_v1_TokenInfo *items = k->items;
  uint64_t now = cli__now_ms();
  if (k->count == 0) {
    printf("No join tokens.\n");
    return CLI_EXIT_OK;
  }
  printf("%-12s %-8s %-24s %4s  %-24s %-16s %s\n", "ID", "ROLE", "NAME", "USES", "EXPIRES",
         "CREATED BY", "STATE");
  for (size_t i = 0; i < k->count; i++) {
    const dfnet_v1_TokenInfo *t = &items[i];
    char name[80], exp[64];
    snprintf(name, sizeof name, "%s%s", t->name[0] ? t->name : t->name_prefix,
             t->name[0]          ? ""
             : t->name_prefix[0] ? "*"
                                 : "(any)");
    cli__time_str(t->expires_ms, exp, sizeof exp);
    const char *state = t->revoked_ms          ? "revoked"
                        : now >= t->expires_ms ? "expired"
                        : t->uses_left == 0    ? "used"
                                               : "valid";
    printf("%-12s %-8s %-24s %4u  %-24s %-16s %s\n", t->id, role_str(t->role), name, t->uses_left,
           exp, t->created_by, state);
  }
  return CLI_EXIT_OK;
}

static void token_list_release(cli_run_t *run) {
  client_kept_t *k = run->ctx;
  free(k->items);
}

int cmd_token_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, token_list_request, token_list_json, token_list_print,
                                        token_list_release};
  static const cli_syntax_t syn = {
      .usage = "token list [--json]",
      .about =
          "List the join tokens: id, role, name or prefix, uses left, expiry, who made "
          "them and whether they are still valid. Never a secret. Role admin.",
      .options = cli_json_options};
  client_kept_t kept = {.tag = dfnet_v1_Envelope_token_info_tag,
                        .item_size = sizeof(dfnet_v1_TokenInfo)};
  return cli__run(argc, argv, &syn, &ops, &kept);
}

/* ---- token revoke ----------------------------------------------------------------------- */

static int token_revoke_request(cli_run_t *run) {
  dfnet_client_error_t err;
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_token_revoke_tag, &err);
  dfnet_status_t st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  if (req != NULL &&
      (st = client__copy_field(req->pb.msg.token_revoke.id, sizeof req->pb.msg.token_revoke.id,
                               run->args[0], "ID", &err)) == DFNET_STATUS_OK)
    st = client__query(run->client, req, false, 0, NULL, NULL, &err);
  free(req);
  return cli__status(st, &err);
}

static int token_revoke_print(cli_run_t *run) {
  printf("Revoked join token %s\n", run->args[0]);
  return CLI_EXIT_OK;
}

int cmd_token_revoke(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, token_revoke_request, NULL, token_revoke_print, NULL};
  static const cli_syntax_t syn = {
      .usage = "token revoke ID",
      .about = "Revoke a join token: nobody enrols with it any more. Role admin.",
      .min_args = 1,
      .max_args = 1,
      .args_help = "  ID   the token's id, its part before the dot (dfnet token list)\n"};
  return cli__run(argc, argv, &syn, &ops, NULL);
}
