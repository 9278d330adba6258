/* dfnet-manager: SuspendNode from an admin client: the drivers on the node and below it are
 * suspended, deepest first, with the request's flags (0: DFNET_SUSPEND_FLAG_SUSPEND_RAM);
 * answered with a Status once every driver answered, or with the first error (suspend.c). */
#include "manager/manager.h"

void handle__suspend_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_SuspendNode *r = &env->pb.msg.suspend_node;
  suspend__walk(m, s, env->pb.id, r->node, r->flags, false);
}
