/* dfnet's roles: one table for who a certificate speaks for (docs/design.md "Security";
 * docs/style.md 16).
 *
 * A role is the subject OU of a peer's certificate. It has two enums: the public
 * dfnet_pki_role_t (lib/pki.h: what certificates say) and the wire's dfnet_v1_Role
 * (proto/dfnet/v1/session.proto: what Hello and Welcome say). Neither is renumbered; this
 * table ties them together, with _Static_asserts in lib/role.c, and says what each role
 * may do:
 *   - the websocket subprotocol it may use on the manager (lib/transport.h names them);
 *   - its rank for client messages: a client message that needs rank r is allowed to a
 *     role of rank r or more (viewer 1: queries and watches; operator 2: + calls to
 *     drivers; admin 3: + drivers, composite specs, bind requests, uploads); rank 0: no
 *     client message at all.
 * The manager's own role has no wire value (its peers learn it from its certificate) and
 * no subprotocol (a transport refuses it as a client).
 *
 * Everything here is constant data: any thread, nothing allocated, nothing logged.
 */
#ifndef DFNET_LIB_ROLE_H
#define DFNET_LIB_ROLE_H

#include <stdbool.h>

#include "dfnet/v1/session.pb.h"
#include "lib/pki.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(id, name, wire, subprotocol, client_rank), in the order of dfnet_pki_role_t:
 *   id           DFNET_PKI_ROLE_<id>
 *   name         the OU as written, and every spelling a user sees
 *   wire         dfnet_v1_Role_<wire>; ROLE_UNSPECIFIED: none
 *   subprotocol  DFNET_SUBPROTOCOL_<subprotocol> of lib/transport.h; NONE: none
 *   client_rank  see above
 * Expanded in lib/role.c only. */
#define DFNET_ROLE_TABLE(X)                    \
  X(HOST, "host", HOST, HOST, 0)               \
  X(ADMIN, "admin", ADMIN, CLIENT, 3)          \
  X(OPERATOR, "operator", OPERATOR, CLIENT, 2) \
  X(VIEWER, "viewer", VIEWER, CLIENT, 1)       \
  X(MANAGER, "manager", ROLE_UNSPECIFIED, NONE, 0)

/* One row of the table. */
typedef struct dfnet_role {
  dfnet_pki_role_t pki;    /* DFNET_PKI_ROLE_HOST ... DFNET_PKI_ROLE_MANAGER */
  const char *name;        /* "host", "admin", "operator", "viewer", "manager" */
  dfnet_v1_Role wire;      /* dfnet_v1_Role_ROLE_UNSPECIFIED for "manager" */
  const char *subprotocol; /* DFNET_SUBPROTOCOL_HOST / _CLIENT; NULL for "manager" */
  unsigned client_rank;    /* 0 (host, manager), viewer 1, operator 2, admin 3 */
} dfnet_role_t;

/* The row of a role; NULL for DFNET_PKI_ROLE_NONE and anything out of range. The row is
 * static. */
const dfnet_role_t *dfnet_role_by_pki(dfnet_pki_role_t role);

/* The row whose name is `name` (exact, lower case); NULL for anything else and NULL. */
const dfnet_role_t *dfnet_role_by_name(const char *name);

/* The row whose wire value is `wire`; NULL for ROLE_UNSPECIFIED and unknown values (the
 * manager's row is never found by its wire value). */
const dfnet_role_t *dfnet_role_by_wire(dfnet_v1_Role wire);

/* May a session of wire role `have` send a client message that needs wire role `need`
 * (rank of have >= rank of need > 0)? false for unknown values, host and manager. */
bool dfnet_role_allows(dfnet_v1_Role have, dfnet_v1_Role need);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_ROLE_H */
