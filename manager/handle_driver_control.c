/* dfnet-manager: DriverControl from an admin client: disable, enable (then every unbound
 * node is matched again) or restart the driver hosts running a driver. Answered with
 * DriverControlResult, or Status NOT_FOUND / INVALID_ARGUMENT. */
#include "lib/log.h"
#include "manager/manager.h"

void handle__driver_control(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_DriverControl *c = &env->pb.msg.driver_control;
  driver_t *d = driver_index__find_url(&m->index, c->url);
  if (d == NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_NOT_FOUND, "no driver with URL %s",
                           c->url);
    return;
  }
  uint32_t restarted = 0;
  switch (c->action) {
  case dfnet_v1_DriverControl_Action_DISABLE:
    d->disabled = true;
    DFNET_LOGI("index", d->url, "disabled by %s", s->name);
    streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_DISABLED, d->url, s->name, DFNET_STATUS_OK);
    break;
  case dfnet_v1_DriverControl_Action_ENABLE:
    d->disabled = false;
    DFNET_LOGI("index", d->url, "enabled by %s", s->name);
    streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_ENABLED, d->url, s->name, DFNET_STATUS_OK);
    break;
  case dfnet_v1_DriverControl_Action_RESTART:
    restarted = binder__restart_driver(m, d);
    DFNET_LOGI("index", d->url, "restarted %u driver host(s) for %s", restarted, s->name);
    break;
  default:
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INVALID_ARGUMENT, "unknown action %d",
                           (int)c->action);
    return;
  }
  dfnet_envelope_t *out = mgr__env(m);
  out->pb.id = env->pb.id;
  out->pb.which_msg = dfnet_v1_Envelope_driver_control_result_tag;
  out->pb.msg.driver_control_result.driver_hosts = restarted;
  dfnet_transport_send(m->transport, s->id, out, 0);
  if (c->action == dfnet_v1_DriverControl_Action_ENABLE)
    binder__bind_all_unbound(m);
}
