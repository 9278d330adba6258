/* drvkit: the few things every dfnet hardware driver in drivers/ does the same way,
 * linked statically into each driver .so (nothing here is exported from a driver).
 *
 *  - decode a method's request with nanopb and reply with an encoded message
 *    (docs/design.md "Calls": the payload is the method's protobuf message);
 *  - end a call with a status and a message that is also logged once;
 *  - read the node's properties (include/dfnet/driver.h) and the driver's settings
 *    (manifest program block, else an environment variable, else a default);
 *  - find the node's resources, the descriptors the host agent handed (a driver opens
 *    nothing by path: include/dfnet/driver.h "Resources");
 *  - read sysfs attributes and links relative to a handed directory, also in captured trees
 *    that saved links as files holding the link text (tests/fixtures/sysfs-virtio-vm);
 *  - publish the driver's devfs-style class as an owned child node (docs/spec/dfv2.md
 *    "devfs": class/<class>/<NNN>).
 *
 * Every function runs on any thread unless written otherwise and allocates nothing that
 * outlives it unless written otherwise.
 */
#ifndef DFNET_DRIVERS_DRVKIT_H
#define DFNET_DRIVERS_DRVKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pb.h>

#include "dfnet/driver.h"

/* Decode `request` (len bytes) as message `fields` into *msg (zeroed first). On failure
 * the call is completed with INVALID_ARGUMENT and nanopb's reason, and false returned:
 * the handler must not touch `call` again. */
bool drvkit__decode(dfnet_call_t *call, const pb_msgdesc_t *fields, void *msg,
                    const uint8_t *request, size_t len) __attribute__((warn_unused_result));

/* Encode *msg as `fields` and complete the call with OK and those bytes. An encoding
 * failure (a bug: a field over its bound) completes it with INTERNAL instead. The
 * message is only read. */
void drvkit__reply(dfnet_call_t *call, const pb_msgdesc_t *fields, const void *msg);

/* Start a call on `client` (dfnet_driver_client_call) whose request is *msg encoded as
 * `fields`: *args as given but for its request and len, which are the encoding's (the
 * payload is copied by the call; msg is only read). *id (may be NULL) names the call.
 * Returns what dfnet_driver_client_call returns (on_done then runs, or not, as it says), or
 * INTERNAL when the message cannot be encoded or there is no memory for it (nothing was
 * started). Any thread; never blocks. */
dfnet_status_t drvkit__call_encoded(dfnet_driver_client_t *client,
                                    const dfnet_driver_client_call_args_t *args,
                                    const pb_msgdesc_t *fields, const void *msg,
                                    dfnet_driver_call_id_t *id) __attribute__((warn_unused_result));

/* Complete the call with `status` (not OK) and the formatted message, logged once on
 * the driver's log (info for the caller's mistakes: INVALID_ARGUMENT, OUT_OF_RANGE,
 * NOT_FOUND; warn otherwise). */
void drvkit__fail(dfnet_call_t *call, dfnet_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* calloc(1, size) for the work of `call` (the caller frees it). When there is no memory,
 * NULL once the call is completed with RESOURCE_EXHAUSTED "out of memory" (drvkit__fail):
 * the handler must not touch `call` again. */
void *drvkit__calloc(dfnet_call_t *call, size_t size) __attribute__((warn_unused_result));

/* The status for an errno from opening or using a device file: ENOENT/ENODEV/ENXIO ->
 * UNAVAILABLE (absent or unplugged), EACCES/EPERM -> PERMISSION_DENIED, EAGAIN/EBUSY ->
 * UNAVAILABLE, EINVAL -> INVALID_ARGUMENT, others INTERNAL. */
dfnet_status_t drvkit__status_from_errno(int err);

/* The node's string property `key` ("dfnet.pci.SYSFS_PATH"), or NULL when absent or not
 * a string. Owned by the driver host, valid until `stop` returns. */
const char *drvkit__prop_string(const dfnet_driver_t *driver, const char *key);

/* The node's uint property (an integer key, or a string key when str_key != NULL) into
 * *out. Returns false when absent or not a uint. */
bool drvkit__prop_uint(const dfnet_driver_t *driver, uint32_t int_key, const char *str_key,
                       uint32_t *out);

/* A driver setting: the string `key` of the manifest's program.config object if present, else
 * the environment variable `env` (may be NULL) if set and non-empty, else `dflt`.
 * Copied into buf[cap]. Returns OK; INVALID_ARGUMENT (the program block has `key` but
 * not as a string); OUT_OF_RANGE (longer than cap - 1). */
dfnet_status_t drvkit__setting(const dfnet_driver_t *driver, const char *key, const char *env,
                               const char *dflt, char *buf, size_t cap)
    __attribute__((warn_unused_result));

/* The descriptor of the node's resource `name` (dfnet_driver_resource_fd: owned by the
 * driver host, valid until `stop` returns; never close it), or -1, logged at error with
 * where it comes from: "the node has no resource \"tty\" (dfnet-host hands it for
 * \"dfnet.platform.TTY\")". `source` names that origin (a property key, or "the manifest's
 * resources"). */
int drvkit__resource(const dfnet_driver_t *driver, const char *name, const char *source);

/* The target of the sysfs link `path` (relative to the directory `dirfd`, a handed O_PATH
 * directory such as "sysfs"), in buf[cap] (readlinkat(2), or the one line of a link saved
 * as a regular file). Returns OK; NOT_FOUND (no such entry); INVALID_ARGUMENT (neither a
 * link nor a file holding a path); OUT_OF_RANGE (does not fit). */
dfnet_status_t drvkit__read_link_at(int dirfd, const char *path, char *buf, size_t cap)
    __attribute__((warn_unused_result));

/* The last path component of `path` (borrowed from it). */
const char *drvkit__basename(const char *path);

/* Read the small text file `path` (relative to the directory `dirfd`) into buf[cap] without
 * trailing whitespace. Returns OK, NOT_FOUND, PERMISSION_DENIED, OUT_OF_RANGE (does not
 * fit), INTERNAL (and the other statuses of drvkit__status_from_errno). */
dfnet_status_t drvkit__read_text_at(int dirfd, const char *path, char *buf, size_t cap)
    __attribute__((warn_unused_result));

/* Publish the driver's class: add an owned child node named `class_name` with that class
 * name, so the node appears as class/<class_name>/<NNN>. The manager's verdict is logged
 * (a failure leaves the driver running, reachable by its node's moniker). Returns what
 * dfnet_driver_add_child returns. */
dfnet_status_t drvkit__publish_class(dfnet_driver_t *driver, const char *class_name);

/* The property a child added by drvkit__offer_child carries: the moniker of the device node
 * whose driver offers the service (bind library dfnet.lab, PART), so that a composite node
 * spec — a lab board's (`dfnet board add`) — can take that very device as a parent. */
#define DRVKIT_PROP_PART "dfnet.lab.PART"

/* Offer `service` to a child node named `name` that the manager binds (DFv2: a driver
 * offers its service to the nodes it adds; a composite whose parent that child becomes, a
 * lab board, then calls the service through the offer). The child carries DRVKIT_PROP_PART
 * = this node's moniker, and the offer-derived property "<service>" =
 * "<service>.DriverTransport" the manager adds. The manager's verdict is logged. Returns
 * what dfnet_driver_add_child returns. Any thread (normally `start`). */
dfnet_status_t drvkit__offer_child(dfnet_driver_t *driver, const char *name, const char *service);

/* CLOCK_MONOTONIC in ms. */
uint64_t drvkit__now_ms(void);

#endif /* DFNET_DRIVERS_DRVKIT_H */
