/* dfnet-manager: RemoveTestNode from an admin client (ffx driver test-node remove): a test
 * node goes, with the test nodes below it. Answered with Status: OK, NOT_FOUND,
 * FAILED_PRECONDITION (not a test node: nodes of hosts and drivers are theirs to remove). */
#include "lib/log.h"
#include "manager/manager.h"

void handle__remove_test_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_RemoveTestNode *r = &env->pb.msg.remove_test_node;
  uint64_t id = env->pb.id;
  topology_node_t *n = sessions__node_or_reply(m, s->id, id, r->moniker, true);
  if (n == NULL)
    return;
  if (!n->test) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_FAILED_PRECONDITION, "%s is not a test node",
                           n->moniker);
    return;
  }
  char why[200];
  topology__fmt(why, sizeof why, "test node removed by %s", s->name);
  DFNET_LOGI("binder", n->moniker, "%s", why);
  binder__remove_subtree(m, n, true, why);
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%s", ""); /* the CLI names it */
}
