/* `dfnet cert renew` (issue 23 item 3; clients/cli/trust.h): renew the CLI's own certificate
 * by hand. A new key is made here, its CSR (the same name) goes to the manager in a CertRenew
 * over the session the current certificate opened, and the new certificate and key replace
 * the files the CLI uses (--cert / --key, the environment or the config file), each
 * atomically, the key first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/trust.h"
#include "clients/lib/client_internal.h"
#include "lib/enroll.h"
#include "lib/pki.h"

typedef struct cert_renew {
  dfnet_v1_CertRenewResult result;
  char name[DFNET_PKI_NAME_MAX + 1];
} cert_renew_t;

/* The CN of the CLI's certificate into out. */
static bool own_name(char *out, size_t cap) {
  dfnet_pki_cert_t *c = NULL;
  dfnet_pki_cert_info_t info;
  bool ok = dfnet_pki_cert_load(cli_globals.cert, &c) == DFNET_STATUS_OK &&
            dfnet_pki_cert_info(c, &info) == DFNET_STATUS_OK;
  if (ok)
    snprintf(out, cap, "%s", info.cn);
  dfnet_pki_cert_free(c);
  return ok;
}

/* Write the new key and certificate over the CLI's files. */
static int write_renewed(const cert_renew_t *s, const dfnet_pki_key_t *key) {
  char why[600];
  dfnet_status_t st;
  if (strcmp(cli_globals.cert, cli_globals.key) == 0) { /* one PEM holding both */
    dfnet_pki_cert_t *c = NULL;
    st = dfnet_pki_cert_parse((const uint8_t *)s->result.certificate_pem,
                              strlen(s->result.certificate_pem), &c);
    if (st == DFNET_STATUS_OK)
      st = dfnet_pki_pem_write(c, key, cli_globals.cert);
    dfnet_pki_cert_free(c);
    snprintf(why, sizeof why, "cannot write %s", cli_globals.cert);
  } else {
    st = dfnet_enroll_write(key, s->result.certificate_pem, NULL, cli_globals.key, cli_globals.cert,
                            NULL, why, sizeof why);
  }
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet: renewed (certificate %s), but %s: %s\n", s->result.serial, why,
            dfnet_status_str(st));
    return CLI_EXIT_FAILED;
  }
  return CLI_EXIT_OK;
}

static int cert_renew_request(cli_run_t *run) {
  cert_renew_t *s = run->ctx;
  dfnet_client_error_t err;
  if (!own_name(s->name, sizeof s->name)) {
    fprintf(stderr, "dfnet: cannot read the certificate %s\n", cli_globals.cert);
    return CLI_EXIT_FAILED;
  }
  cli_answer_t answer = {dfnet_v1_Envelope_cert_renew_result_tag, sizeof s->result, &s->result};
  dfnet_pki_key_t *key = NULL;
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_cert_renew_tag, &err);
  dfnet_status_t st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  if (req != NULL &&
      (st = dfnet_renew_csr(s->name, &key, &req->pb.msg.cert_renew)) != DFNET_STATUS_OK)
    err = (dfnet_client_error_t){.code = st, .message = "cannot make a key and its CSR"};
  if (st == DFNET_STATUS_OK)
    st = client__query(run->client, req, false, 0, cli__keep_answer, &answer, &err);
  free(req);
  int rc = st == DFNET_STATUS_OK ? write_renewed(s, key) : cli__status(st, &err);
  dfnet_pki_key_free(key);
  return rc;
}

static int cert_renew_print(cli_run_t *run) {
  const cert_renew_t *s = run->ctx;
  char until[40] = "?";
  time_t na = (time_t)(s->result.not_after_ms / 1000u);
  struct tm tm;
  if (gmtime_r(&na, &tm) != NULL)
    strftime(until, sizeof until, "%Y-%m-%d %H:%M:%S UTC", &tm);
  printf("Renewed %s: certificate %s, valid until %s, written to %s (new key: %s).\n", s->name,
         s->result.serial, until, cli_globals.cert, cli_globals.key);
  return CLI_EXIT_OK;
}

int cmd_cert_renew(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, cert_renew_request, NULL, cert_renew_print, NULL};
  static const cli_syntax_t syn = {
      .usage = "cert renew",
      .about =
          "Renew this CLI's own certificate: a new key made here, a certificate of the same "
          "name and role from the manager, both written over the files the CLI uses. A "
          "revoked certificate cannot renew (UNAUTHENTICATED).",
      .options = NULL};
  cert_renew_t s;
  memset(&s, 0, sizeof s);
  return cli__run(argc, argv, &syn, &ops, &s);
}
