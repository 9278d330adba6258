/* Device resources: the descriptors the host agent opens for a driver and hands to its
 * driver host with the DriverStart, so that a driver opens nothing by path
 * (docs/architecture.md "Resources"; the seeds: "Drivers are not allowed to access the
 * filesystem ... Bus drivers such as PCI and platform only return the resources associated
 * to the child device"). This header holds what every side shares: the bounds of
 * DriverStart.resources (proto/dfnet/v1/driver.options) and the manifest's "resources",
 * the extra files a driver says it needs, which the manager checks when it loads a package
 * and the agent reads when it starts the driver.
 *
 * A manifest's program block may hold
 *
 *   "resources": ["/dev/hwrng", {"path": "/dev/watchdog1", "access": "rw"}]
 *
 * at most DFNET_MANIFEST_RESOURCES_MAX entries, each an absolute path (a string: read-only)
 * or an object {"path": PATH, "access": "r" | "rw", "optional": true | false} ("r" and
 * false when absent). A path is 2..127 bytes, has no empty, "." or ".." component and no
 * trailing '/', and is given once. The driver finds each under its path as the name
 * (dfnet_driver_resource_fd(driver, "/dev/hwrng")). Whether a host lets a driver have it is
 * the host's business (dfnet-host --allow-resource), not the manifest's. An optional
 * resource that the host does not allow, or whose file does not exist (ENOENT, ENOTDIR), is
 * simply not handed: the start goes on, and the driver, finding no descriptor under that
 * name, does without (virtio-rng's "/sys/class/misc/hw_random/rng_current"); any other
 * failure to open it fails the start as for any resource.
 *
 * Threads: no shared state; any thread.
 */
#ifndef DFNET_LIB_RESOURCE_H
#define DFNET_LIB_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "dfnet/status.h"

/* Descriptors one DriverStart carries, at most (DriverStart.resources max_count). */
#define DFNET_RESOURCES_MAX 16u
/* A resource's name with its NUL, at most (DriverStart.resources max_size): "tty", or a
 * manifest resource's path. */
#define DFNET_RESOURCE_NAME_MAX 128u
/* Entries of a manifest's "resources", at most. */
#define DFNET_MANIFEST_RESOURCES_MAX 8u

/* One entry of a manifest's "resources". */
typedef struct dfnet_manifest_resource {
  char path[DFNET_RESOURCE_NAME_MAX]; /* absolute; also the name the driver finds it by */
  bool writable;                      /* "access": "rw": opened O_RDWR, else O_RDONLY */
  bool optional;                      /* "optional": true: not handed when missing or not allowed */
} dfnet_manifest_resource_t;

/* Read the "resources" of a manifest's program block, given as JSON text (program_json,
 * len bytes: the "program" object itself, as DriverStart's bulk carries it), into
 * out[0 .. *count); out has room for DFNET_MANIFEST_RESOURCES_MAX entries. An absent
 * "resources" is no entry.
 * Returns OK; INVALID_ARGUMENT (the text is not a JSON object, cJSON had no memory to parse
 * it, or "resources" is not as the top of this header says), with one line into
 * why[why_size] naming the field: "program.resources[1].access: must be \"r\" or \"rw\"". */
dfnet_status_t dfnet_manifest_resources_parse(const char *program_json, size_t len,
                                              dfnet_manifest_resource_t *out, size_t *count,
                                              char *why, size_t why_size)
    __attribute__((warn_unused_result));

#endif /* DFNET_LIB_RESOURCE_H */
