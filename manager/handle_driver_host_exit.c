/* dfnet-manager: DriverHostExit event from a host agent: the crash policy of docs/spec/dfv2.md
 * "Driver hosts and lifecycle" (restart with backoff and quarantine, or remove the
 * subtree). */
#include "manager/manager.h"

void handle__driver_host_exit(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  mgr_host_t *h = hosts__get(m, s->host_id);
  if (h != NULL)
    binder__driver_host_exit(m, h, &env->pb.msg.driver_host_exit);
}
