/* `dfnet cert` and `dfnet token` (issue 23; docs/architecture.md "Transport and trust"):
 * certificate records and revocation (cmd_cert.c), join tokens (cmd_token.c). They speak
 * trust.proto through libdfnet-client's query path (client__query). */
#ifndef DFNET_CLIENTS_CLI_TRUST_H
#define DFNET_CLIENTS_CLI_TRUST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "clients/lib/client_internal.h"
#include "dfnet/client.h"

/* The manager's certificate records (CertList, role viewer), as CertInfo messages
 * (proto/dfnet/v1/trust.proto): `cert list` prints them, `dfnet ui` shows each host's
 * certificate expiry from them. */
typedef struct cli_cert_list {
  struct _dfnet_v1_CertInfo *items; /* count of them (malloc'd) */
  size_t count, cap;
} cli_cert_list_t;
/* Append every record to *out (zeroed, or from an earlier call). Errors: the common ones of
 * libdfnet-client (PERMISSION_DENIED below role viewer), RESOURCE_EXHAUSTED. Blocks; not on
 * the client thread. Free *out with cli__cert_list_free whatever the result. */
dfnet_status_t cli__cert_list_fetch(dfnet_client_t *c, cli_cert_list_t *out,
                                    dfnet_client_error_t *err);
void cli__cert_list_free(cli_cert_list_t *l);
/* `cert list --json`'s document, {"certificates": [...]}; NULL when out of memory. */
cJSON *cli__certs_json(const cli_cert_list_t *l);

/* ---- queries (trust_query.c) ---- */
/* A listing (CertList, TokenList: Envelope member request_tag, no fields) streamed whole into
 * k (its tag and item_size set; items appended). Errors: the common ones of libdfnet-client
 * (PERMISSION_DENIED below the role), INTERNAL (another kind of answer), RESOURCE_EXHAUSTED.
 * Blocks; not on the client thread. The caller frees k->items whatever the result. */
dfnet_status_t cli__trust_list(dfnet_client_t *c, pb_size_t request_tag, client_kept_t *k,
                               dfnet_client_error_t *err);
/* Where one answer goes: the message of Envelope member tag, copied whole (size bytes: the
 * member's nanopb struct) into dest. */
typedef struct cli_answer {
  pb_size_t tag;
  size_t size;
  void *dest;
} cli_answer_t;
/* A client__query on_item for a cli_answer_t (ctx): keep env's message; INTERNAL for a
 * message of another kind. Client thread. */
dfnet_status_t cli__keep_answer(void *ctx, const dfnet_envelope_t *env);

/* `dfnet cert list [--json]` (role viewer): every certificate the manager recorded. */
int cmd_cert_list(int argc, char **argv);
/* `dfnet cert revoke NAME|SERIAL --reason TEXT` (role admin). */
int cmd_cert_revoke(int argc, char **argv);
/* `dfnet cert renew`: a new key and a certificate of the same name for it (cmd_cert_renew.c). */
int cmd_cert_renew(int argc, char **argv);
/* `dfnet login URL --token T --ca-pin P [--name N]` (cmd_login.c): enrol a person. */
int cmd_login(int argc, char **argv);
/* `dfnet token create --role ROLE [--name N | --name-prefix P] [--ttl D] [--uses N]
 * [--label K=V]...` (role admin). */
int cmd_token_create(int argc, char **argv);
/* `dfnet token list [--json]` (role admin): no secrets. */
int cmd_token_list(int argc, char **argv);
/* `dfnet token revoke ID` (role admin). */
int cmd_token_revoke(int argc, char **argv);

#endif /* DFNET_CLIENTS_CLI_TRUST_H */
