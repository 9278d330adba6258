/* dfnet_driver_artifact_open(_partial): a driver reads a file of the host's artifact cache
 * (include/dfnet/driver.h; docs/architecture.md "Artifacts"). The agent names the cache's
 * directory with --artifact-dir when it starts this driver host; complete artifacts are
 * "<dir>/<sha256 hex>", published by rename once verified and never written again; an
 * upload under way is "<dir>/<sha256 hex>.part". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

static char g_artifact_dir[4096];

void dh__artifact_dir_set(const char *dir) {
  snprintf(g_artifact_dir, sizeof g_artifact_dir, "%s", dir != NULL ? dir : "");
}

/* Open "<dir>/<hex><suffix>" read-only into *fd. */
static dfnet_status_t artifact_file_open(const dfnet_driver_t *driver, const uint8_t sha256[32],
                                         const char *suffix, int *fd) {
  if (driver == NULL || sha256 == NULL || fd == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  *fd = -1;
  if (g_artifact_dir[0] == '\0')
    return DFNET_STATUS_UNAVAILABLE;
  char hex[65], path[4200];
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", sha256[i]);
  snprintf(path, sizeof path, "%s/%s%s", g_artifact_dir, hex, suffix);
  int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (f >= 0) {
    *fd = f;
    return DFNET_STATUS_OK;
  }
  if (errno == ENOENT)
    return DFNET_STATUS_NOT_FOUND;
  DFNET_LOGW("driver-host", dfnet_driver_node_moniker(driver), "artifact %s: %s", path,
             strerror(errno));
  return DFNET_STATUS_INTERNAL;
}

dfnet_status_t dfnet_driver_artifact_open(const dfnet_driver_t *driver, const uint8_t sha256[32],
                                          int *fd) {
  return artifact_file_open(driver, sha256, "", fd);
}

dfnet_status_t dfnet_driver_artifact_open_partial(const dfnet_driver_t *driver,
                                                  const uint8_t sha256[32], int *fd) {
  return artifact_file_open(driver, sha256, ".part", fd);
}
