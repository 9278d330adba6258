/* dfnet-manager: Watch from a client: a stream of WatchEvent envelopes carrying the Watch's
 * id until the client sends Cancel with that id (answered CANCELLED) or the session ends.
 * One watch per session. Events that do not fit the session's send queue are dropped
 * (a watcher that reads too slowly misses events; it can list again). */
#include "manager/manager.h"

void handle__watch(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_Watch *w = &env->pb.msg.watch;
  if (s->watch_id != 0) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_ALREADY_EXISTS,
                           "this session already has a watch (id %llu)",
                           (unsigned long long)s->watch_id);
    return;
  }
  bool all = !w->nodes && !w->drivers && !w->hosts;
  s->watch_nodes = all || w->nodes;
  s->watch_drivers = all || w->drivers;
  s->watch_hosts = all || w->hosts;
  s->watch_id = env->pb.id;
  m->watchers++;
}
