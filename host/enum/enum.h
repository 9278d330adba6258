/* dfnet host enumerators: the hardware a host agent sees, as DFv2 nodes.
 *
 * Source: issue 6 "Enumerators"; docs/design.md (monikers); docs/spec/dfv2.md "Nodes"; Fuchsia's
 * bind libraries fuchsia.pci, fuchsia.usb, fuchsia.platform for the property values.
 * Modelled on libusb's `struct usbi_os_backend` (one backend per file behind one const ops
 * table; docs/style.md 13).
 *
 * An enumerator (PCI from sysfs, USB through libusb with hot-plug, the board file's
 * platform devices) reports node events to a sink:
 *   - node added:   a dfnet_v1_NodeAdd, the wire struct, so the agent forwards it as is.
 *                   Its `parent` is RELATIVE to the host root: "" is the host root itself
 *                   (the bus nodes "pci", "usb", "platform" have parent ""), "pci" is the
 *                   PCI bus node, "usb.001_002" a USB device. The agent prefixes
 *                   "dev.<host>" ("" -> "dev.<host>", "pci" -> "dev.<host>.pci").
 *   - node removed: the relative moniker ("usb.001_002"). Removal covers the subtree
 *                   (docs/spec/dfv2.md: removal is bottom-up, done by the manager), so an
 *                   enumerator reports only the topmost node that went away.
 *   - node updated: optional, the relative moniker in NodeUpdate.moniker with the node's
 *                   full new property set. (No enumerator sends one yet.)
 * Parents are always reported before their children, a node is reported removed at most
 * once per add, and nothing is reported after dfnet_enum_stop() returns.
 *
 * Each enumerator first publishes its bus node as a child of the host root, with no
 * properties and `owned` = true (the host agent keeps it: the manager never binds a
 * driver to it).
 *
 * Threading. An enumerator is driven from one thread (the agent's service thread):
 * new, start, stop and destroy must not be called concurrently on the same enumerator.
 *   - PCI and board: everything is reported synchronously from inside start(), on the
 *     caller's thread. They watch nothing afterwards.
 *   - USB: start() reports the devices present at start synchronously, on the caller's
 *     thread, then starts its own event thread (libusb event handling); hot-plug events
 *     are reported from that thread. The sink must therefore be thread-safe (the agent
 *     queues the events and wakes its service thread). stop() joins the thread.
 * Sink callbacks must not call back into the enumerator (no stop/destroy from a sink).
 */
#ifndef DFNET_HOST_ENUM_ENUM_H
#define DFNET_HOST_ENUM_ENUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "bind/dfnet_pci.h"
#include "bind/dfnet_platform.h"
#include "bind/dfnet_usb.h"
#include "dfnet/v1/node.pb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* String property keys published by the enumerators (DFv2 string keys). They are declared
 * in the bind libraries bind/lib/dfnet.{pci,usb,platform}.bind (so bind rules can use
 * them) and reach C through the headers dfnet-bindc generates from those libraries. The
 * integer keys come from include/dfnet/bind_keys.h and the values of fuchsia.BIND_PROTOCOL
 * from the generated headers of Fuchsia's libraries (bind/fuchsia_*.h). */
#define DFNET_ENUM_KEY_PCI_SYSFS_PATH BIND_DFNET_PCI_SYSFS_PATH       /* resolved sysfs dir */
#define DFNET_ENUM_KEY_PCI_KERNEL_DRIVER BIND_DFNET_PCI_KERNEL_DRIVER /* absent if none */
#define DFNET_ENUM_KEY_PCI_SUBSYSTEM_VID BIND_DFNET_PCI_SUBSYSTEM_VID /* uint */
#define DFNET_ENUM_KEY_PCI_SUBSYSTEM_DID BIND_DFNET_PCI_SUBSYSTEM_DID /* uint */
#define DFNET_ENUM_KEY_USB_BUS BIND_DFNET_USB_BUS                     /* uint, bus number */
#define DFNET_ENUM_KEY_USB_ADDRESS BIND_DFNET_USB_ADDRESS             /* uint, device address */
#define DFNET_ENUM_KEY_USB_PORT_PATH BIND_DFNET_USB_PORT_PATH         /* "1-1.2"; root hub "1-0" */
#define DFNET_ENUM_KEY_USB_SYSFS_NAME BIND_DFNET_USB_SYSFS_NAME   /* "1-1.2", "usb1", "1-1.2:1.0" */
#define DFNET_ENUM_KEY_USB_DEVICE_FILE BIND_DFNET_USB_DEVICE_FILE /* "/dev/bus/usb/001/011" */
#define DFNET_ENUM_KEY_USB_CONFIGURATION BIND_DFNET_USB_CONFIGURATION       /* uint, interfaces */
#define DFNET_ENUM_KEY_PLATFORM_NAME BIND_DFNET_PLATFORM_NAME               /* board file name */
#define DFNET_ENUM_KEY_PLATFORM_TTY BIND_DFNET_PLATFORM_TTY                 /* resource "tty" */
#define DFNET_ENUM_KEY_PLATFORM_GPIO_CHIP BIND_DFNET_PLATFORM_GPIO_CHIP     /* resource "gpio" */
#define DFNET_ENUM_KEY_PLATFORM_GPIO_LINE BIND_DFNET_PLATFORM_GPIO_LINE     /* uint */
#define DFNET_ENUM_KEY_PLATFORM_I2C_BUS BIND_DFNET_PLATFORM_I2C_BUS         /* resource "i2c" */
#define DFNET_ENUM_KEY_PLATFORM_I2C_ADDRESS BIND_DFNET_PLATFORM_I2C_ADDRESS /* uint */
#define DFNET_ENUM_KEY_PLATFORM_SPI BIND_DFNET_PLATFORM_SPI                 /* resource "spi" */
#define DFNET_ENUM_KEY_PLATFORM_PATH BIND_DFNET_PLATFORM_PATH               /* resource "path" */
#define DFNET_ENUM_KEY_PLATFORM_BLOCK BIND_DFNET_PLATFORM_BLOCK             /* resource "block" */
#define DFNET_ENUM_KEY_PLATFORM_HAS_BLOCK BIND_DFNET_PLATFORM_HAS_BLOCK     /* bool, true */

/* Where an enumerator reports. Copied by dfnet_enum_start(); `ctx` is the caller's. */
typedef struct dfnet_enum_sink {
  /* A node appeared. `node` is borrowed for the call (copy what you keep). Required. */
  void (*node_added)(void *ctx, const dfnet_v1_NodeAdd *node);
  /* The node (and its subtree) went away. `moniker` is relative and borrowed. Required. */
  void (*node_removed)(void *ctx, const char *moniker);
  /* The node's properties changed (full new set). Borrowed. Optional (NULL: dropped). */
  void (*node_updated)(void *ctx, const dfnet_v1_NodeUpdate *update);
  void *ctx;
} dfnet_enum_sink_t;

typedef struct dfnet_enum dfnet_enum_t;

/* The backend table, one per file (pci.c, usb.c, board.c). Only enum.c calls these. */
typedef struct dfnet_enum_ops {
  /* Short static name: "pci", "usb", "board". Also the subsystem in log lines. */
  const char *name;
  /* Bytes of backend state allocated (zeroed) with the enumerator; see dfnet_enum_priv. */
  size_t priv_size;
  /* Report the nodes (see "Threading"); USB also starts its event thread. Called once,
   * on the caller's thread. Returns OK or an error status (already logged); on error
   * the backend has released what start acquired (nodes it reported before failing
   * stay reported: the agent keeps or drops them with the host). */
  dfnet_status_t (*start)(dfnet_enum_t *e);
  /* Stop watching; after it returns the backend calls the sink no more. Called only
   * after a successful start, at most once. Optional (NULL: nothing to stop). */
  void (*stop)(dfnet_enum_t *e);
  /* Free what the backend holds in its priv (never the priv itself). Optional. */
  void (*destroy)(dfnet_enum_t *e);
} dfnet_enum_ops_t;

/* ---- constructors, one per backend ------------------------------------------------- */

/* PCI functions from sysfs: walks <sysfs_root>/bus/pci/devices/ (each entry a link to
 * the device's directory; a capture whose links were saved as plain files holding the
 * link text is read the same way). Node per function: "pci.<BB>_<DD>_<F>" (hex bus and
 * device, function digit; a PCI domain other than 0000 is prefixed: "<DDDD>_<BB>_<DD>_<F>").
 * sysfs_root: e.g. "/sys" (copied). NULL means "/sys".
 * Returns OK with *out (free with dfnet_enum_destroy), INVALID_ARGUMENT for an empty or
 * overlong root, RESOURCE_EXHAUSTED when out of memory. The root is read only by start. */
dfnet_status_t dfnet_enum_pci_new(const char *sysfs_root, dfnet_enum_t **out);

/* USB devices through libusb-1.0, with hot-plug. One node per device "usb.<BBB>_<DDD>" (bus
 * number, device address, 3 decimal digits); its interfaces are children the driver bound
 * to the device adds (usb-device: "ifc-<NNN>"), not nodes of the enumerator. When libusb cannot
 * start (no USB on the machine, no hot-plug support), start() logs it once at WARN, publishes
 * nothing and returns OK. Returns OK with *out, or RESOURCE_EXHAUSTED. */
dfnet_status_t dfnet_enum_usb_new(dfnet_enum_t **out);

/* Platform devices from a board file (JSON; the format is written at the top of
 * host/enum/board.c and an example is tests/host_enum/board-example.json). Node per device
 * "platform.<name>". The file is read by start(): an unreadable file or one that is not
 * a JSON object with a "devices" array fails start (NOT_FOUND / PERMISSION_DENIED /
 * INVALID_ARGUMENT, logged); a malformed device is logged with the file, its JSON path and
 * the problem, and skipped; the other devices still load and start returns OK.
 * path: copied. Returns OK with *out, INVALID_ARGUMENT for NULL/empty, RESOURCE_EXHAUSTED. */
dfnet_status_t dfnet_enum_board_new(const char *path, dfnet_enum_t **out);

/* The problems found in the board file by the last start(), one line each,
 * "<file>: <json path>: <problem>" (the text also logged). Board enumerators only
 * (0 / NULL for others). The strings belong to the enumerator, valid until destroy. */
size_t dfnet_enum_board_error_count(const dfnet_enum_t *e);
const char *dfnet_enum_board_error(const dfnet_enum_t *e, size_t index);

/* ---- the core wrappers (enum.c) ---------------------------------------------------- */

/* The backend's name ("pci", "usb", "board"); static string. */
const char *dfnet_enum_name(const dfnet_enum_t *e);

/* Start reporting to *sink (copied). See "Threading" for which thread calls it.
 * Returns OK; INVALID_ARGUMENT when sink lacks node_added or node_removed;
 * FAILED_PRECONDITION when already started (an enumerator starts once); or the backend's
 * error (logged). After an error, dfnet_enum_stop() is a no-op and the sink is not called
 * again. */
dfnet_status_t dfnet_enum_start(dfnet_enum_t *e, const dfnet_enum_sink_t *sink);

/* Stop: after it returns no sink callback runs or will run. Does not report removals
 * (the agent drops the host's nodes itself). Idempotent; safe on a never-started one. */
void dfnet_enum_stop(dfnet_enum_t *e);

/* Stop (if needed) and free. NULL is a no-op. */
void dfnet_enum_destroy(dfnet_enum_t *e);

/* ---- for backends (enum.c) --------------------------------------------------------- */

/* Backend state (priv_size bytes, zeroed at creation). */
void *enum__priv(dfnet_enum_t *e);
const void *enum__priv_const(const dfnet_enum_t *e);

/* Allocate a backend enumerator; NULL when out of memory. */
dfnet_enum_t *enum__new(const dfnet_enum_ops_t *ops);

/* Report to the sink (the only way backends call it). */
void enum__node_added(dfnet_enum_t *e, const dfnet_v1_NodeAdd *node);
void enum__node_removed(dfnet_enum_t *e, const char *moniker);
void enum__node_updated(dfnet_enum_t *e, const dfnet_v1_NodeUpdate *update);

/* Report the bus node `name` (child of the host root, owned, no properties).
 * Returns OK or RESOURCE_EXHAUSTED. */
dfnet_status_t enum__publish_bus(dfnet_enum_t *e, const char *name)
    __attribute__((warn_unused_result));

/* Reset *node to an empty NodeAdd with parent and name set.
 * Returns OK, or INVALID_ARGUMENT when either does not fit or name holds a '.'. */
dfnet_status_t enum__node_init(dfnet_v1_NodeAdd *node, const char *parent, const char *name)
    __attribute__((warn_unused_result));

/* Append one property to node. key_name: a deprecated integer key when int_key != 0,
 * else the string key (int_key == 0 and key_name != NULL). Returns OK, INVALID_ARGUMENT
 * when the key or value does not fit its bound, ALREADY_EXISTS when the key is already
 * there (one key, one value), RESOURCE_EXHAUSTED when the node has 64 properties. */
dfnet_status_t enum__prop_int(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                              uint32_t value) __attribute__((warn_unused_result));
dfnet_status_t enum__prop_str(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                              const char *value) __attribute__((warn_unused_result));
dfnet_status_t enum__prop_bool(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                               bool value) __attribute__((warn_unused_result));
dfnet_status_t enum__prop_enum(dfnet_v1_NodeAdd *node, uint32_t int_key, const char *str_key,
                               const char *value) __attribute__((warn_unused_result));

/* Find a property by key (int_key != 0: integer key; else str_key). NULL when absent.
 * Borrowed from node. Handy for tests and the agent. */
const dfnet_v1_NodeProperty *dfnet_enum_prop_find(const dfnet_v1_NodeAdd *node, uint32_t int_key,
                                                  const char *str_key);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_HOST_ENUM_ENUM_H */
