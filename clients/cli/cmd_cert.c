/* `dfnet cert list` and `dfnet cert revoke` (clients/cli/trust.h; issue 23 item 4): the
 * manager's certificate records (CertList, role viewer) and revocation (CertRevoke, role
 * admin: the certificate's live sessions are closed at once and it is refused from then on). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/trust.h"
#include "clients/lib/client_internal.h"

/* ---- cert list ------------------------------------------------------------------------- */

dfnet_status_t cli__cert_list_fetch(dfnet_client_t *c, cli_cert_list_t *out,
                                    dfnet_client_error_t *err) {
  client_kept_t kept = {dfnet_v1_Envelope_cert_info_tag, sizeof *out->items, out->items, out->count,
                        out->cap};
  dfnet_status_t st = cli__trust_list(c, dfnet_v1_Envelope_cert_list_tag, &kept, err);
  out->items = kept.items;
  out->count = kept.count;
  out->cap = kept.cap;
  return st;
}

void cli__cert_list_free(cli_cert_list_t *l) {
  free(l->items);
  l->items = NULL;
  l->count = l->cap = 0;
}

static int cert_list_request(cli_run_t *run) {
  dfnet_client_error_t err;
  return cli__status(cli__cert_list_fetch(run->client, run->ctx, &err), &err);
}

cJSON *cli__certs_json(const cli_cert_list_t *l) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(doc, "certificates");
  for (size_t k = 0; k < l->count; k++) {
    const dfnet_v1_CertInfo *i = &l->items[k];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "serial", i->serial);
    cJSON_AddStringToObject(o, "name", i->name);
    cJSON_AddStringToObject(o, "role", i->role);
    cJSON_AddItemToObject(o, "not_after", cli__json_time(i->not_after_ms));
    cJSON_AddNumberToObject(o, "not_after_ms", (double)i->not_after_ms);
    cJSON_AddBoolToObject(o, "issued", i->issued);
    cJSON_AddItemToObject(o, "first_seen", cli__json_time(i->first_seen_ms));
    cJSON_AddItemToObject(o, "last_seen", cli__json_time(i->last_seen_ms));
    cJSON_AddItemToObject(o, "last_address", cli__json_string_or_null(i->last_address));
    cJSON_AddBoolToObject(o, "online", i->online);
    if (i->revoked_ms == 0) {
      cJSON_AddNullToObject(o, "revoked");
    } else {
      cJSON *r = cJSON_AddObjectToObject(o, "revoked");
      cJSON_AddItemToObject(r, "at", cli__json_time(i->revoked_ms));
      cJSON_AddStringToObject(r, "by", i->revoked_by);
      cJSON_AddStringToObject(r, "reason", i->revoke_reason);
    }
    cJSON_AddItemToArray(arr, o);
  }
  return doc;
}

static cJSON *cert_list_json(cli_run_t *run) { return cli__certs_json(run->ctx); }

static int cert_list_print(cli_run_t *run) {
  const cli_cert_list_t *l = run->ctx;
  if (l->count == 0) {
    printf("No certificates recorded.\n");
    return CLI_EXIT_OK;
  }
  printf("%-16s %-8s %-32s %-24s %-24s %s\n", "NAME", "ROLE", "SERIAL", "NOT AFTER", "LAST SEEN",
         "REVOKED");
  for (size_t k = 0; k < l->count; k++) {
    const dfnet_v1_CertInfo *i = &l->items[k];
    char na[64], seen[96], rev[400];
    cli__time_str(i->not_after_ms, na, sizeof na);
    if (i->online)
      snprintf(seen, sizeof seen, "online");
    else if (i->last_seen_ms != 0)
      cli__time_str(i->last_seen_ms, seen, sizeof seen);
    else
      snprintf(seen, sizeof seen, "never%s", i->issued ? " (issued)" : "");
    if (i->revoked_ms != 0) {
      char at[64];
      cli__time_str(i->revoked_ms, at, sizeof at);
      snprintf(rev, sizeof rev, "%s by %s: %s", at, i->revoked_by, i->revoke_reason);
    } else {
      snprintf(rev, sizeof rev, "-");
    }
    printf("%-16s %-8s %-32s %-24s %-24s %s\n", i->name, i->role, i->serial, na, seen, rev);
  }
  return CLI_EXIT_OK;
}

static void cert_list_release(cli_run_t *run) { cli__cert_list_free(run->ctx); }

int cmd_cert_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, cert_list_request, cert_list_json, cert_list_print,
                                        cert_list_release};
  static const cli_syntax_t syn = {
      .usage = "cert list [--json]",
      .about =
          "List the certificates the manager has seen at a session's open or issued: "
          "name, role, serial, not-after, when last seen (or online), and whether, "
          "when, by whom and why it was revoked. Role viewer.",
      .options = cli_json_options};
  cli_cert_list_t l = {0};
  return cli__run(argc, argv, &syn, &ops, &l);
}

/* ---- cert revoke ------------------------------------------------------------------------ */

typedef struct cert_revoke {
  const char *reason;
  dfnet_v1_CertRevokeResult result;
} cert_revoke_t;

static int cert_revoke_prepare(cli_run_t *run) {
  const cert_revoke_t *s = run->ctx;
  if (s->reason == NULL || s->reason[0] == '\0')
    return cli__usage(
        "cert revoke needs --reason TEXT: it goes to the audit log and to the "
        "closed sessions");
  if (strlen(s->reason) >= sizeof((dfnet_v1_CertRevoke *)0)->reason)
    return cli__usage("--reason: at most %zu bytes", sizeof((dfnet_v1_CertRevoke *)0)->reason - 1);
  return CLI_EXIT_OK;
}

static int cert_revoke_request(cli_run_t *run) {
  cert_revoke_t *s = run->ctx;
  dfnet_client_error_t err;
  cli_answer_t answer = {dfnet_v1_Envelope_cert_revoke_result_tag, sizeof s->result, &s->result};
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_cert_revoke_tag, &err);
  dfnet_status_t st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  if (req != NULL &&
      (st =
           client__copy_field(req->pb.msg.cert_revoke.target, sizeof req->pb.msg.cert_revoke.target,
                              run->args[0], "NAME|SERIAL", &err)) == DFNET_STATUS_OK &&
      (st =
           client__copy_field(req->pb.msg.cert_revoke.reason, sizeof req->pb.msg.cert_revoke.reason,
                              s->reason, "--reason", &err)) == DFNET_STATUS_OK)
    st = client__query(run->client, req, false, 0, cli__keep_answer, &answer, &err);
  free(req);
  return cli__status(st, &err);
}

static int cert_revoke_print(cli_run_t *run) {
  const cert_revoke_t *s = run->ctx;
  const dfnet_v1_CertRevokeResult *r = &s->result;
  if (r->serials_count == 1)
    printf("Revoked certificate %s of %s", r->serials[0], r->name);
  else
    printf("Revoked %u certificates of %s", (unsigned)r->serials_count, r->name);
  if (r->already_revoked)
    printf(" (%u revoked before)", r->already_revoked);
  printf("; %u session%s closed.\n", r->sessions_closed, r->sessions_closed == 1 ? "" : "s");
  for (pb_size_t i = 0; r->serials_count > 1 && i < r->serials_count; i++)
    printf("  %s\n", r->serials[i]);
  return CLI_EXIT_OK;
}

int cmd_cert_revoke(int argc, char **argv) {
  static const cli_command_ops_t ops = {cert_revoke_prepare, cert_revoke_request, NULL,
                                        cert_revoke_print, NULL};
  cert_revoke_t s = {0};
  const cli_option_t opts[] = {{"reason", 0, CLI_OPT_STRING, &s.reason, 0, 0, "TEXT",
                                "why (required): the audit log and the closed sessions say it"},
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "cert revoke NAME|SERIAL --reason TEXT",
      .about =
          "Revoke a certificate by serial, or every certificate of a name: the manager "
          "closes their sessions at once (UNAUTHENTICATED) and refuses them at every "
          "handshake from then on, across restarts. Role admin.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = "  NAME|SERIAL  a certificate's name (CN) or serial (dfnet cert list)\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}
