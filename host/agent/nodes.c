/* The agent's node table: every node it publishes, in announce order (parents before
 * children; docs/spec/dfv2.md "Nodes"), each kept as its encoded NodeAdd (a few hundred bytes
 * instead of the 29 KiB nanopb struct), with the driver bound to it.
 *
 * Monikers are full ("dev.<host>.pci.00_05_0"). A node's subtree is every node whose
 * moniker starts with its moniker followed by '.'. Besides the enumerators' nodes
 * (origin_host 0) and the drivers' children (origin_host: their driver host), the table
 * holds the composite nodes the manager put on this host (drivers.c, composite_node): under
 * their primary parent's moniker, they go with the "driver-added" nodes below an ancestor
 * whose driver stops, and on the manager's NodeRemove, as a driver's child does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>
#include <utlist.h>

#include "host/agent/agent.h"
#include "lib/log.h"

size_t agent__strlcpy(char *dst, const char *src, size_t size) {
  size_t len = strlen(src);
  if (size > 0) {
    size_t n = len < size - 1 ? len : size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
  }
  return len;
}

dfnet_status_t agent__node_add_encode(const dfnet_v1_NodeAdd *add, uint8_t **out, size_t *len) {
  size_t size = 0;
  if (!pb_get_encoded_size(&size, dfnet_v1_NodeAdd_fields, add))
    return DFNET_STATUS_INVALID_ARGUMENT;
  uint8_t *buf = malloc(size > 0 ? size : 1);
  if (buf == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  pb_ostream_t os = pb_ostream_from_buffer(buf, size);
  if (!pb_encode(&os, dfnet_v1_NodeAdd_fields, add)) {
    free(buf);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out = buf;
  *len = os.bytes_written;
  return DFNET_STATUS_OK;
}

dfnet_status_t agent__node_add_decode(const uint8_t *buf, size_t len, dfnet_v1_NodeAdd *out) {
  pb_istream_t is = pb_istream_from_buffer(buf, len);
  memset(out, 0, sizeof *out);
  if (!pb_decode(&is, dfnet_v1_NodeAdd_fields, out))
    return DFNET_STATUS_INVALID_ARGUMENT;
  return DFNET_STATUS_OK;
}

bool agent__moniker_within(const char *moniker, const char *ancestor) {
  size_t n = strlen(ancestor);
  return strncmp(moniker, ancestor, n) == 0 && (moniker[n] == '\0' || moniker[n] == '.');
}

agent_node_t *agent__node_find(agent_t *a, const char *moniker) {
  agent_node_t *n;
  DL_FOREACH(a->nodes_head, n) {
    if (strcmp(n->moniker, moniker) == 0)
      break;
  }
  return n;
}

agent_node_t *agent__node_find_uid(agent_t *a, uint64_t uid) {
  agent_node_t *n;
  DL_SEARCH_SCALAR(a->nodes_head, n, uid, uid);
  return n;
}

dfnet_status_t agent__node_insert(agent_t *a, const dfnet_v1_NodeAdd *add, uint64_t origin_host,
                                  agent_node_t **out) {
  if (add->name[0] == '\0' || strchr(add->name, '.') != NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (strcmp(add->parent, a->root) != 0 && agent__node_find(a, add->parent) == NULL)
    return DFNET_STATUS_NOT_FOUND;
  size_t mlen = strlen(add->parent) + 1 + strlen(add->name);
  if (mlen >= AGENT_MONIKER_MAX)
    return DFNET_STATUS_INVALID_ARGUMENT;
  char moniker[sizeof add->parent + sizeof add->name + 1];
  snprintf(moniker, sizeof moniker, "%s.%s", add->parent, add->name);
  if (agent__node_find(a, moniker) != NULL)
    return DFNET_STATUS_ALREADY_EXISTS;

  agent_node_t *n = calloc(1, sizeof *n);
  if (n == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  n->moniker = strdup(moniker);
  if (n->moniker == NULL)
    goto no_memory;
  dfnet_status_t st = agent__node_add_encode(add, &n->add, &n->add_len);
  if (st != DFNET_STATUS_OK) {
    free(n->moniker);
    free(n);
    return st;
  }
  n->uid = ++a->next_uid;
  n->origin_host = origin_host;
  DL_APPEND(a->nodes_head, n);
  a->node_count++;
  if (out != NULL)
    *out = n;
  return DFNET_STATUS_OK;

no_memory:
  free(n);
  return DFNET_STATUS_RESOURCE_EXHAUSTED;
}

static void node_unlink_free(agent_t *a, agent_node_t *n) {
  DL_DELETE(a->nodes_head, n);
  a->node_count--;
  free(n->moniker);
  free(n->add);
  free(n->driver_url);
  agent__offered_clear(n);
  agent__pending_start_free(n->pending_start);
  free(n);
}

/* Drop, deepest first (children were inserted after their parents, so walk backwards),
 * every node below `ancestor` (and `ancestor` itself when include_self) for which
 * `pick` holds. A live driver on a dropped node is stopped first. */
static void drop_where(agent_t *a, const char *ancestor, bool include_self,
                       bool only_driver_added) {
  char *anc = strdup(ancestor); /* the ancestor's record may be freed on the way */
  if (anc == NULL) {
    DFNET_LOGE(AGENT_SUBSYS, ancestor, "out of memory dropping a subtree");
    return;
  }
  agent_node_t *n = a->nodes_head != NULL ? a->nodes_head->prev : NULL; /* the tail */
  while (n != NULL) {
    agent_node_t *prev = n != a->nodes_head ? n->prev : NULL;
    bool self = strcmp(n->moniker, anc) == 0;
    if (agent__moniker_within(n->moniker, anc) && (include_self || !self) &&
        (!only_driver_added || n->origin_host != 0)) {
      if (n->driver == AGENT_DRIVER_RUNNING || n->driver == AGENT_DRIVER_STARTING ||
          n->driver == AGENT_DRIVER_FETCHING)
        agent__driver_stop_local(a, n);
      if (n->req_session != 0)
        agent__reply_status(a, n->req_session, n->req_id, DFNET_STATUS_NOT_FOUND,
                            "node %s was removed", n->moniker);
      DFNET_LOGD(AGENT_SUBSYS, n->moniker, "node dropped");
      node_unlink_free(a, n);
    }
    n = prev;
  }
  free(anc);
}

void agent__node_drop_subtree(agent_t *a, agent_node_t *node) {
  drop_where(a, node->moniker, true, false);
}

void agent__node_drop_driver_children(agent_t *a, agent_node_t *node) {
  drop_where(a, node->moniker, false, true);
}

void agent__nodes_free(agent_t *a) {
  while (a->nodes_head != NULL)
    node_unlink_free(a, a->nodes_head);
}
