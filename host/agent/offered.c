/* The services a node's driver was offered (DriverStart.offered), kept by the agent so that
 * it can refuse a driver's call to a service its node was not offered, within the board as
 * the manager does across boards (manager/offers.c offers__permit; docs/architecture.md
 * "Calls between drivers"; issue 18). The driver host checks the offer when its driver
 * connects; the agent does not believe the driver host, which runs the driver's code. */
#include <stdlib.h>
#include <string.h>

#include "host/agent/agent.h"

/* One offer: "<service>\0<source>\0", packed one after another in n->offered. */
bool agent__offered_set(agent_node_t *n, const dfnet_v1_DriverStart *m) {
  agent__offered_clear(n);
  size_t len = 0;
  for (pb_size_t i = 0; i < m->offered_count; i++)
    len += strlen(m->offered[i].service) + strlen(m->offered[i].source) + 2;
  if (len == 0)
    return true;
  char *p = malloc(len);
  if (p == NULL)
    return false;
  n->offered = p;
  n->offered_len = len;
  for (pb_size_t i = 0; i < m->offered_count; i++) {
    size_t s = strlen(m->offered[i].service) + 1, o = strlen(m->offered[i].source) + 1;
    memcpy(p, m->offered[i].service, s);
    memcpy(p + s, m->offered[i].source, o);
    p += s + o;
  }
  return true;
}

void agent__offered_clear(agent_node_t *n) {
  free(n->offered);
  n->offered = NULL;
  n->offered_len = 0;
}

bool agent__offered_permits(const agent_node_t *n, const char *source, const char *method) {
  /* "/<package>.<Service>/<Method>": the service is between the first and the last '/' */
  const char *last = strrchr(method, '/');
  if (method[0] != '/' || last == NULL || last == method)
    return false;
  size_t service_len = (size_t)(last - method - 1);
  for (const char *p = n->offered; p != NULL && p < n->offered + n->offered_len;) {
    const char *src = p + strlen(p) + 1;
    if (strlen(p) == service_len && memcmp(p, method + 1, service_len) == 0 &&
        strcmp(src, source) == 0)
      return true;
    p = src + strlen(src) + 1;
  }
  return false;
}
