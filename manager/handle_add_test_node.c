/* dfnet-manager: AddTestNode from an admin client (ffx driver test-node add): a node that
 * only the manager has, under any listed node, matched against the index like any node
 * (fuchsia.BIND_AUTOBIND = 1) but never started. It is listed with `test` set, state
 * UNBOUND and the reason "test node: would bind URL" (OK) or why nothing would; `bind why`
 * works on it. Nothing is sent to a host: a host's announcements never touch it (its
 * parent's removal removes it), and a registered or enabled driver matches it again.
 * Answered with Status: OK (the message says what would bind), NOT_FOUND (parent),
 * ALREADY_EXISTS, INVALID_ARGUMENT (name, properties), RESOURCE_EXHAUSTED. */
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

void handle__add_test_node(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_AddTestNode *a = &env->pb.msg.add_test_node;
  uint64_t id = env->pb.id;
  topology_node_t *parent = topology__find_named(&m->topo, a->parent);
  if (parent == NULL || parent->hidden) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_NOT_FOUND, "parent %s not found", a->parent);
    return;
  }
  topology_add_args_t args = {
      .name = a->name,
      .props = a->properties,
      .prop_count = a->properties_count,
      .host_id = parent->host_id,
  };
  topology_node_t *n = NULL;
  char err[300];
  dfnet_status_t st = topology__add(&m->topo, parent, &args, &n, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, id, st, "%s.%s: %s", parent->moniker, a->name, err);
    return;
  }
  n->test = true;
  DFNET_LOGI("binder", n->moniker, "test node added by %s", s->name);
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_ADDED, n->moniker, "test node", DFNET_STATUS_OK);
  binder__bind_node(m, n, NULL); /* records what would bind it */
  /* what would bind it, without the "test node: " the listing's reason starts with */
  const char *why = n->unbound_msg ? n->unbound_msg : "";
  if (strncmp(why, "test node: ", 11) == 0)
    why += 11;
  sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%s", why);
}
