/* libdfnet-client: watches of the fleet's events (dfnet_client_watch; a Watch request the
 * manager answers with WatchEvents until cancelled), and the names of the event kinds. */
#include <stdlib.h>

#include "clients/lib/client_internal.h"

const char *dfnet_client_event_kind_str(dfnet_client_event_kind_t kind) {
  static const char *const names[] = {
      "UNSPECIFIED",    "NODE_ADDED",          "NODE_REMOVED",      "NODE_UPDATED",
      "NODE_BOUND",     "NODE_UNBOUND",        "DRIVER_REGISTERED", "DRIVER_DISABLED",
      "DRIVER_ENABLED", "DRIVER_HOST_EXITED",  "HOST_CONNECTED",    "HOST_DISCONNECTED",
      "HOST_REMOVED",   "DRIVER_UNREGISTERED", "NODE_SUSPENDED",    "NODE_RESUMED",
      "LEASE_ACQUIRED", "LEASE_RELEASED",      "LEASE_EXPIRED",     "LEASE_QUEUED"};
  if ((unsigned)kind < sizeof names / sizeof names[0])
    return names[kind];
  return "UNSPECIFIED";
}

dfnet_status_t dfnet_client_watch(dfnet_client_t *c, unsigned what, dfnet_client_event_fn on_event,
                                  dfnet_client_done_fn on_end, void *user,
                                  dfnet_client_watch_id_t *watch_out, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || on_event == NULL || on_end == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "on_event and on_end are required");
  if (what == 0)
    what = DFNET_CLIENT_WATCH_ALL;
  if (what & ~(unsigned)DFNET_CLIENT_WATCH_ALL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "unknown watch bits 0x%x", what);
  dfnet_envelope_t *env = malloc(sizeof *env);
  client_op_t *op = calloc(1, sizeof *op);
  if (env == NULL || op == NULL) {
    free(env);
    free(op);
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_watch_tag;
  env->pb.msg.watch.nodes = (what & DFNET_CLIENT_WATCH_NODES) != 0;
  env->pb.msg.watch.drivers = (what & DFNET_CLIENT_WATCH_DRIVERS) != 0;
  env->pb.msg.watch.hosts = (what & DFNET_CLIENT_WATCH_HOSTS) != 0;
  op->kind = CLIENT_OP_WATCH;
  op->on_event = on_event;
  op->on_done = on_end;
  op->user = user;
  return client__op_start(c, op, env, 0, watch_out, err);
}

dfnet_status_t dfnet_client_watch_cancel(dfnet_client_t *c, dfnet_client_watch_id_t watch) {
  return client__op_cancel(c, watch, CLIENT_OP_WATCH);
}
