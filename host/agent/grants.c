/* What this host grants a driver it starts (docs/architecture.md "Resources" and
 * "Confinement"): the rights its driver host is started with, checked against
 * dfnet-host --allow-right and against the driver host it is colocated in, and the
 * descriptors opened for it (host/supervisor/resources.h), handed over with its DriverStart.
 *
 * A driver host is confined at its first DriverStart with that driver's rights and limits
 * (host/driver_host/); a driver colocated in it later gets no more than that, so its rights
 * must be a subset of the first driver's. With --no-sandbox nothing is confined and no right
 * is checked (the rights are still read and kept, for the listing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/agent/agent.h"
#include "lib/driver_rights.h"
#include "lib/log.h"

/* ---- rights ---------------------------------------------------------------------------- */

size_t agent__rights_names(uint32_t rights, char (*out)[16], size_t cap) {
  size_t n = 0;
  for (uint32_t bit = 1; bit != 0 && n < cap; bit <<= 1) {
    const char *name = (rights & bit) ? dfnet_right_name((dfnet_right_t)bit) : NULL;
    if (name != NULL)
      agent__strlcpy(out[n++], name, sizeof out[0]);
  }
  return n;
}

/* "inet" or "inet,exec" of `rights`, and the flags that would allow them on this host:
 * "--allow-right inet --allow-right exec". */
static void rights_text(uint32_t rights, char *names, size_t names_cap, char *flags,
                        size_t flags_cap) {
  (void)dfnet_rights_format(rights, names, names_cap);
  size_t used = 0;
  flags[0] = '\0';
  for (uint32_t bit = 1; bit != 0 && used < flags_cap; bit <<= 1) {
    const char *name = (rights & bit) ? dfnet_right_name((dfnet_right_t)bit) : NULL;
    if (name != NULL)
      used += (size_t)snprintf(flags + used, flags_cap - used, "%s--allow-right %s",
                               used ? " " : "", name);
  }
}

dfnet_status_t agent__rights_check(agent_t *a, const agent_pending_start_t *ps, uint32_t *rights,
                                   char *why, size_t cap) {
  const char *url = ps->msg.url;
  dfnet_driver_rights_t want;
  char parse_why[256];
  if (dfnet_driver_rights_parse((const char *)ps->program, ps->program_len, &want, parse_why,
                                sizeof parse_why) != DFNET_STATUS_OK) {
    snprintf(why, cap, "driver %s: %s", url, parse_why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *rights = want.rights;
  if (a->opt.no_sandbox)
    return DFNET_STATUS_OK; /* nothing is confined: nothing to check */
  char names[64], flags[128];
  uint32_t refused = want.rights & ~a->opt.allow_rights;
  if (refused != 0) {
    rights_text(refused, names, sizeof names, flags, sizeof flags);
    snprintf(why, cap,
             "driver %s needs the right%s %s, which this host does not allow (dfnet-host %s)", url,
             (refused & (refused - 1)) ? "s" : "", names, flags);
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  uint64_t host_id = ps->msg.driver_host_id;
  agent_dh_t *dh = host_id != 0 ? agent__dh_find(a, host_id) : NULL;
  uint32_t beyond = dh != NULL ? want.rights & ~dh->rights : 0;
  if (beyond != 0) {
    char has[64];
    rights_text(beyond, names, sizeof names, flags, sizeof flags);
    (void)dfnet_rights_format(dh->rights, has, sizeof has);
    snprintf(why, cap,
             "driver %s needs the right%s %s, which driver host %llu it is colocated in was not "
             "started with (it has: %s): a colocated driver gets its driver host's rights",
             url, (beyond & (beyond - 1)) ? "s" : "", names, (unsigned long long)host_id, has);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

/* ---- resources ------------------------------------------------------------------------- */

char *agent__resources_text(const dfnet_resource_set_t *res) {
  size_t len = 1;
  for (size_t i = 0; i < res->count; i++)
    len += strlen(res->items[i].name) + strlen(res->items[i].path) + 2;
  char *text = res->count > 0 ? malloc(len) : NULL;
  for (size_t i = 0, used = 0; text != NULL && i < res->count; i++)
    used += (size_t)snprintf(text + used, len - used, "%s %s\n", res->items[i].name,
                             res->items[i].path);
  return text;
}

dfnet_status_t agent__resources_open(agent_t *a, const agent_node_t *n,
                                     const agent_pending_start_t *ps, dfnet_resource_set_t *set,
                                     char *why, size_t cap) {
  dfnet_resource_source_t src = {
      .program_json = (const char *)ps->program,
      .program_len = ps->program_len,
      .allow = a->opt.allow_resources,
      .allow_count = a->opt.allow_resource_count,
  };
  dfnet_v1_NodeAdd *add = NULL;
  if (n->origin_host == 0) {
    add = malloc(sizeof *add); /* ~28 KiB: not on the stack */
    if (add == NULL) {
      snprintf(why, cap, "out of memory reading the node's resources");
      return DFNET_STATUS_RESOURCE_EXHAUSTED;
    }
    if (agent__node_add_decode(n->add, n->add_len, add) != DFNET_STATUS_OK) {
      free(add);
      snprintf(why, cap, "the node's record does not decode: its resources are unknown");
      return DFNET_STATUS_INTERNAL;
    }
    src.properties = add->properties;
    src.property_count = add->properties_count;
  }
  set->count = 0;
  dfnet_status_t st = dfnet_resources_open(&src, set, why, cap);
  free(add);
  return st;
}
