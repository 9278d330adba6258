/* The role table (lib/role.h). */
#include "lib/role.h"

#include <stddef.h>
#include <string.h>

#include "lib/transport.h" /* DFNET_SUBPROTOCOL_HOST, DFNET_SUBPROTOCOL_CLIENT */

#define ROLE_SUBPROTOCOL_HOST DFNET_SUBPROTOCOL_HOST
#define ROLE_SUBPROTOCOL_CLIENT DFNET_SUBPROTOCOL_CLIENT
#define ROLE_SUBPROTOCOL_NONE NULL

/* Indexed by dfnet_pki_role_t; the NONE slot is empty (name NULL). */
static const dfnet_role_t roles[] = {
#define ROLE_ROW(id, name_, wire_, sub, rank)                     \
  [DFNET_PKI_ROLE_##id] = {.pki = DFNET_PKI_ROLE_##id,            \
                           .name = name_,                         \
                           .wire = dfnet_v1_Role_##wire_,         \
                           .subprotocol = ROLE_SUBPROTOCOL_##sub, \
                           .client_rank = rank},
    DFNET_ROLE_TABLE(ROLE_ROW)
#undef ROLE_ROW
};
#define ROLE_SLOTS (sizeof roles / sizeof roles[0])

/* The table covers dfnet_pki_role_t from HOST to MANAGER, its last value. */
_Static_assert(ROLE_SLOTS == DFNET_PKI_ROLE_MANAGER + 1,
               "lib/role.h: one row per dfnet_pki_role_t value after NONE");

/* Where both enums name a role, they give it the same number (neither is renumbered: the
 * public enum follows the wire's). */
#define ROLE_SAME_NUMBER(id, name_, wire_, sub, rank)                        \
  _Static_assert(dfnet_v1_Role_##wire_ == dfnet_v1_Role_ROLE_UNSPECIFIED ||  \
                     (int)dfnet_v1_Role_##wire_ == (int)DFNET_PKI_ROLE_##id, \
                 "lib/role.h: " name_ ": dfnet_v1_Role and dfnet_pki_role_t disagree");
DFNET_ROLE_TABLE(ROLE_SAME_NUMBER)
#undef ROLE_SAME_NUMBER

/* Every wire role has exactly one row. */
#define ROLE_HAS_WIRE(id, name_, wire_, sub, rank) \
  +(dfnet_v1_Role_##wire_ != dfnet_v1_Role_ROLE_UNSPECIFIED)
_Static_assert(0 DFNET_ROLE_TABLE(ROLE_HAS_WIRE) == _dfnet_v1_Role_MAX,
               "lib/role.h: a dfnet_v1_Role value without a row (session.proto)");
#undef ROLE_HAS_WIRE

const dfnet_role_t *dfnet_role_by_pki(dfnet_pki_role_t role) {
  if ((unsigned)role >= ROLE_SLOTS || roles[role].name == NULL)
    return NULL;
  return &roles[role];
}

const dfnet_role_t *dfnet_role_by_name(const char *name) {
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < ROLE_SLOTS; i++) {
    if (roles[i].name != NULL && strcmp(roles[i].name, name) == 0)
      return &roles[i];
  }
  return NULL;
}

const dfnet_role_t *dfnet_role_by_wire(dfnet_v1_Role wire) {
  if (wire == dfnet_v1_Role_ROLE_UNSPECIFIED)
    return NULL;
  for (size_t i = 0; i < ROLE_SLOTS; i++) {
    if (roles[i].name != NULL && roles[i].wire == wire)
      return &roles[i];
  }
  return NULL;
}

bool dfnet_role_allows(dfnet_v1_Role have, dfnet_v1_Role need) {
  const dfnet_role_t *h = dfnet_role_by_wire(have), *n = dfnet_role_by_wire(need);
  return h != NULL && n != NULL && n->client_rank > 0 && h->client_rank >= n->client_rank;
}
