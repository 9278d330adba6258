/* Reading sysfs (Documentation/filesystems/sysfs.rst; ABI in Documentation/ABI/testing/
 * sysfs-bus-pci): attributes and links, shared by the enumerators.
 *
 * A link is read with readlink(2). A captured sysfs tree whose links were saved as plain
 * files holding the link text (as in tests/fixtures/sysfs-virtio-vm/) is read the same
 * way: a regular file of one line that looks like a path stands for a link to that path.
 * Every function is reentrant; nothing is allocated.
 */
#ifndef DFNET_HOST_ENUM_SYSFS_H
#define DFNET_HOST_ENUM_SYSFS_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

/* Read the attribute dir/name into buf[cap] as a string without trailing whitespace.
 * Returns OK; NOT_FOUND (no such file); PERMISSION_DENIED; OUT_OF_RANGE (longer than
 * cap - 1); INTERNAL (other read errors). errno is translated here. */
dfnet_status_t sysfs__read_attr(const char *dir, const char *name, char *buf, size_t cap)
    __attribute__((warn_unused_result));

/* Read dir/name as an unsigned number (strtoul with base 0: "0x1af4", "1", "0x060000")
 * no larger than max. Returns OK; the errors of sysfs__read_attr; INVALID_ARGUMENT when
 * the text is not a number in range. */
dfnet_status_t sysfs__read_uint(const char *dir, const char *name, uint32_t max, uint32_t *out)
    __attribute__((warn_unused_result));

/* The text of the link at `path` (readlink(2), or the one line of a link saved as a
 * file) in buf[cap]. Returns OK; NOT_FOUND (no such entry); INVALID_ARGUMENT (neither a
 * link nor a file holding a path); OUT_OF_RANGE (does not fit). */
dfnet_status_t sysfs__read_link(const char *path, char *buf, size_t cap)
    __attribute__((warn_unused_result));

/* Resolve the link at `path` to a path in buf[cap]: a relative target is taken from the
 * link's directory; the result is canonical (realpath(3)) when the target exists, else
 * lexically normalized ("." and ".." removed). Returns as sysfs__read_link. */
dfnet_status_t sysfs__resolve_link(const char *path, char *buf, size_t cap)
    __attribute__((warn_unused_result));

/* The last component of path ("virtio-pci" of ".../drivers/virtio-pci"); borrowed. */
const char *sysfs__basename(const char *path);

#endif /* DFNET_HOST_ENUM_SYSFS_H */
