/* A driver's resources: the files the host agent opens for a driver it starts and hands to
 * its driver host with the DriverStart (dfnet_supervisor_send_fds), so that the driver opens
 * nothing by path (docs/architecture.md "Resources"; the seeds: "Drivers are not allowed to
 * access the filesystem ... Bus drivers such as PCI and platform only return the resources
 * associated to the child device"; lib/resource.h for the manifest's part).
 *
 * What is opened, by the name the driver finds it under (dfnet_driver_resource_fd), for
 * the node properties host/enum/board_device.c and pci.c publish:
 *
 *   node property                              name      open(2) flags
 *   "dfnet.platform.TTY"                       "tty"     O_RDWR | O_NOCTTY
 *   "dfnet.platform.GPIO_CHIP"                 "gpio"    O_RDWR
 *   "dfnet.platform.I2C_BUS"                   "i2c"     O_RDWR
 *   "dfnet.platform.SPI"                       "spi"     O_RDWR
 *   "dfnet.platform.PATH"                      "path"    O_RDWR
 *   "dfnet.platform.BLOCK"                     "block"   O_RDWR, O_RDONLY when that is refused
 *                                                        (EACCES, EPERM, EROFS: a write-
 *                                                        protected card); a block device
 *                                                        also O_EXCL (below)
 *   "dfnet.pci.SYSFS_PATH"                     "sysfs"   O_PATH | O_DIRECTORY
 *                                              "config"  <that directory>/config, O_RDWR, or
 *                                                        O_RDONLY when that is refused
 *   the manifest's "resources"                 its path  O_RDONLY, or O_RDWR for "access":
 *                                                        "rw"; only paths an allow-list
 *                                                        glob matches (fnmatch(3) with
 *                                                        FNM_PATHNAME: '*' stops at '/');
 *                                                        an "optional" one not allowed or
 *                                                        missing (ENOENT, ENOTDIR) is left
 *                                                        out, logged at debug
 *
 * Every descriptor is O_CLOEXEC, and but for "sysfs" O_NONBLOCK, so that the agent never
 * waits on a device (a FIFO without a writer, a tty's carrier, a card reader without a
 * card); a driver that wants blocking I/O clears it (fcntl F_SETFL: it is the driver's
 * descriptor, the agent closes its copy once sent). A block device is opened O_EXCL: while
 * the driver runs nobody can mount it, and a mounted one (or one another program holds
 * exclusively) fails the start UNAVAILABLE ("Device or resource busy") instead of being
 * overwritten under its file system. A "path" is opened whatever the driver does with it:
 * opening a watchdog's device file arms the watchdog, so name one only for the driver that
 * serves it.
 *
 * Whose properties count is the caller's decision: the agent gives the properties of the
 * nodes its enumerators published and none for the nodes drivers added (a driver could
 * name any path in a child's properties) or composite nodes; the manifest's resources are
 * for any node, within the allow-list.
 *
 * Threads: no shared state; any thread. Opening may block briefly (open(2) of a device).
 */
#ifndef DFNET_HOST_SUPERVISOR_RESOURCES_H
#define DFNET_HOST_SUPERVISOR_RESOURCES_H

#include <stddef.h>

#include "dfnet/status.h"
#include "dfnet/v1/node.pb.h"
#include "lib/resource.h"

/* One resource opened for a driver. */
typedef struct dfnet_resource {
  char name[DFNET_RESOURCE_NAME_MAX]; /* "tty", "config", "/dev/hwrng" */
  char path[256];                     /* the file opened */
  int fd;                             /* owned by the set */
} dfnet_resource_t;

/* The resources of one DriverStart, in the order they travel. */
typedef struct dfnet_resource_set {
  dfnet_resource_t items[DFNET_RESOURCES_MAX];
  size_t count;
} dfnet_resource_set_t;

/* Where the resources come from. Everything is borrowed for the call. */
typedef struct dfnet_resource_source {
  /* The node's properties (NodeAdd.properties) when they may name files; NULL (and 0) for
   * a node whose properties the caller does not trust. */
  const dfnet_v1_NodeProperty *properties;
  size_t property_count;
  /* The manifest's program block as JSON (DriverStart's bulk); NULL or len 0: none. */
  const char *program_json;
  size_t program_len;
  /* The globs a manifest resource must match one of (dfnet-host --allow-resource). */
  const char *const *allow;
  size_t allow_count;
} dfnet_resource_source_t;

/* Open the resources of *src into *out (emptied first), in the table's order, the
 * manifest's last in its order. On failure nothing stays open and why[why_size] holds one
 * line naming the resource, the file and the cause:
 * "cannot open resource tty /dev/ttyS0: No such file or directory".
 * Returns OK; NOT_FOUND (ENOENT, ENOTDIR), PERMISSION_DENIED (EACCES, EPERM, EROFS; or a
 * manifest resource no allow-list glob matches: "resource /dev/x is not allowed on this
 * host (dfnet-host --allow-resource)"), RESOURCE_EXHAUSTED (out of descriptors or memory;
 * more than DFNET_RESOURCES_MAX resources), UNAVAILABLE (any other errno: EBUSY, ENXIO,
 * EIO ...), INVALID_ARGUMENT (a property that names no absolute path; the manifest's
 * "resources" malformed: lib/resource.h). */
dfnet_status_t dfnet_resources_open(const dfnet_resource_source_t *src, dfnet_resource_set_t *out,
                                    char *why, size_t why_size) __attribute__((warn_unused_result));

/* Close every descriptor of the set (those not yet closed) and empty it. Idempotent. */
void dfnet_resources_close(dfnet_resource_set_t *set);

#endif /* DFNET_HOST_SUPERVISOR_RESOURCES_H */
