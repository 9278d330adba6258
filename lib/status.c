/* Status strings, generated from DFNET_STATUS_MAP (include/dfnet/status.h). */
#include "dfnet/status.h"

#include <stddef.h>
#include <string.h>

static const char *const status_names[] = {
#define DFNET_STATUS_NAME_(name, value, desc) [value] = #name,
    DFNET_STATUS_MAP(DFNET_STATUS_NAME_)
#undef DFNET_STATUS_NAME_
};

static const char *const status_descriptions[] = {
#define DFNET_STATUS_DESC_(name, value, desc) [value] = desc,
    DFNET_STATUS_MAP(DFNET_STATUS_DESC_)
#undef DFNET_STATUS_DESC_
};

_Static_assert(sizeof status_names / sizeof status_names[0] == DFNET_STATUS_COUNT,
               "DFNET_STATUS_COUNT does not match DFNET_STATUS_MAP");

const char *dfnet_status_str(dfnet_status_t status) {
  if ((unsigned)status >= DFNET_STATUS_COUNT)
    return "UNKNOWN_STATUS";
  return status_names[status];
}

const char *dfnet_status_description(dfnet_status_t status) {
  if ((unsigned)status >= DFNET_STATUS_COUNT)
    return "not a dfnet status code";
  return status_descriptions[status];
}

dfnet_status_t dfnet_status_from_str(const char *name, dfnet_status_t *out) {
  if (name == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  for (unsigned i = 0; i < DFNET_STATUS_COUNT; i++) {
    if (strcmp(name, status_names[i]) == 0) {
      *out = (dfnet_status_t)i;
      return DFNET_STATUS_OK;
    }
  }
  return DFNET_STATUS_INVALID_ARGUMENT;
}
