/* dfnet-manager: DriverStatus event from a host agent (a driver's state changed). */
#include "manager/manager.h"

void handle__driver_status(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  mgr_host_t *h = hosts__get(m, s->host_id);
  if (h != NULL)
    binder__driver_status(m, h, &env->pb.msg.driver_status);
}
