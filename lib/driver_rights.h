/* A driver's rights and limits: what its manifest's program block lets the driver host it
 * runs in do beyond the confinement every driver host gets (docs/architecture.md
 * "Confinement"; issue 22 items 2 and 3, "Driver rights").
 *
 * A manifest's program block may hold
 *
 *   "rights": ["inet", "exec", "usb"],
 *   "limits": {"memory_mb": 1024, "open_files": 256}
 *
 * "rights" is an array of distinct right names (absent: none):
 *   "inet"  IPv4 and IPv6 sockets (TCP connect and bind included);
 *   "exec"  running programs (execve) with read and execute access to /usr, /bin, /sbin and
 *           /etc;
 *   "usb"   USB devices by path through libusb: read access to /sys and /run/udev,
 *           read-write access to /dev/bus/usb.
 * "limits" is an object of bounds, each an integer from DFNET_DRIVER_LIMIT_MIN to
 * DFNET_DRIVER_LIMIT_MAX (absent: the defaults below):
 *   "memory_mb"   the driver host's data segment (RLIMIT_DATA), MiB;
 *   "open_files"  its descriptors (RLIMIT_NOFILE).
 * The manager checks both when it loads a package; the agent colocates a driver only with
 * drivers whose rights include its own; the driver host applies them when it confines
 * itself, at its first DriverStart.
 *
 * Threads: no shared state; any thread.
 */
#ifndef DFNET_LIB_DRIVER_RIGHTS_H
#define DFNET_LIB_DRIVER_RIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

/* One right, a bit of dfnet_driver_rights_t.rights. */
typedef enum {
  DFNET_RIGHT_INET = 1u << 0,
  DFNET_RIGHT_EXEC = 1u << 1,
  DFNET_RIGHT_USB = 1u << 2
} dfnet_right_t;
#define DFNET_RIGHTS_ALL 0x7u

/* The limits when the manifest gives none. */
#define DFNET_DRIVER_MEMORY_MB_DEFAULT 512u
#define DFNET_DRIVER_OPEN_FILES_DEFAULT 1024u
/* The range of every limit. */
#define DFNET_DRIVER_LIMIT_MIN 16u
#define DFNET_DRIVER_LIMIT_MAX 65536u

/* What a manifest's program block grants its driver. */
typedef struct dfnet_driver_rights {
  uint32_t rights;     /* dfnet_right_t bits */
  uint32_t memory_mb;  /* RLIMIT_DATA, MiB */
  uint32_t open_files; /* RLIMIT_NOFILE */
} dfnet_driver_rights_t;

/* Read "rights" and "limits" from a manifest's program block, given as JSON text
 * (program_json, len bytes: the "program" object itself, as DriverStart's bulk carries it)
 * into *out. NULL or len 0: no rights and the default limits. Absent keys: the same.
 * Returns OK; INVALID_ARGUMENT with one line into why[cap] (may be NULL) naming the key and
 * the value: the text is not a JSON object (or cJSON had no memory to parse it), "rights"
 * is not an array of strings, names an unknown right ("program.rights[0]: unknown right
 * \"inte\" (did you mean \"inet\"?)") or one twice, "limits" is not an object, holds an
 * unknown key (with "did you mean" too), or a value that is not an integer or lies outside
 * DFNET_DRIVER_LIMIT_MIN..DFNET_DRIVER_LIMIT_MAX. *out is filled with the defaults first
 * and holds them on error. Source: issue 22 items 2 and 3. */
dfnet_status_t dfnet_driver_rights_parse(const char *program_json, size_t len,
                                         dfnet_driver_rights_t *out, char *why, size_t cap)
    __attribute__((warn_unused_result));

/* The name of one right: "inet", "exec", "usb"; NULL for anything else (0, several bits,
 * an unknown bit). A static string. */
const char *dfnet_right_name(dfnet_right_t right);

/* The right named `name` into *out. Returns OK; INVALID_ARGUMENT (name NULL or unknown),
 * with why[cap] (may be NULL) saying so and suggesting the nearest name (lib/suggest.h):
 * "unknown right \"inte\" (did you mean \"inet\"?)". */
dfnet_status_t dfnet_right_parse(const char *name, dfnet_right_t *out, char *why, size_t cap)
    __attribute__((warn_unused_result));

/* Write `rights` as the names of its bits in the order of dfnet_right_t, joined with ','
 * ("inet,usb"), or "none" when it has no known bit, into buf[cap] (NUL-terminated when
 * cap > 0, cut to fit). Bits that name no right are left out. Returns the length snprintf
 * would return: the full text's, without the NUL. */
size_t dfnet_rights_format(uint32_t rights, char *buf, size_t cap);

#endif /* DFNET_LIB_DRIVER_RIGHTS_H */
