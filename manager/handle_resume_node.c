/* dfnet-manager: ResumeNode from an admin client: the suspended drivers on the node and
 * below it are resumed, parents first; answered with a Status once every driver answered,
 * or with the first error (suspend.c). */
#include "manager/manager.h"

void handle__resume_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  suspend__walk(m, s, env->pb.id, env->pb.msg.resume_node.node, 0, true);
}
