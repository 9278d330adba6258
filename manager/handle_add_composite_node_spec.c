/* dfnet-manager: AddCompositeNodeSpec from an admin client (docs/spec/dfv2.md "Composites").
 * The spec is written through to the store before it is added and answered (persist.c): it
 * comes back after a restart. Errors: INVALID_ARGUMENT (DFv2 MISSING_ARGS / EMPTY_NODES),
 * ALREADY_EXISTS, FAILED_PRECONDITION (parents on different hosts), the store's. */
#include <stdio.h>

#include "lib/log.h"
#include "manager/lease.h"
#include "manager/manager.h"

void handle__add_composite_node_spec(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_AddCompositeNodeSpec *a = &env->pb.msg.add_composite_node_spec;
  char err[400] = "";
  dfnet_status_t st =
      a->has_spec ? persist__spec_add(m, &a->spec, err, sizeof err) : DFNET_STATUS_INVALID_ARGUMENT;
  if (!a->has_spec)
    topology__fmt(err, sizeof err, "MISSING_ARGS: no spec");
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW("binder", s->name, "composite node spec refused: %s", err);
  sessions__reply_status(m, s->id, env->pb.id, st, "%s", st == DFNET_STATUS_OK ? "added" : err);
}
