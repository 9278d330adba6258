/* `dfnet cert` and `dfnet token` (issue 23; docs/architecture.md "Transport and trust"):
 * certificate records and revocation (cmd_cert.c), join tokens (cmd_token.c). They speak
 * trust.proto through libdfnet-client's query path (client__query). */
#ifndef DFNET_CLIENTS_CLI_TRUST_H
#define DFNET_CLIENTS_CLI_TRUST_H

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
