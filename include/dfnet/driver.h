/* The dfnet driver API: what a driver `.so` is written against.
 *
 * Sources: docs/spec/dfv2.md "Driver hosts and lifecycle" (DFv2's DriverBase: Start,
 * PrepareStop, Stop; synchronized dispatchers and allow_sync_calls), Fuchsia's DDK
 * `device.h` (a versioned ops table whose hooks document their thread), libusb's
 * `struct usbi_os_backend` (ctx_size: the core allocates the private data), gRPC's status
 * codes and server-streaming calls with a credit window (docs/design.md "Calls").
 *
 * A driver is a shared object that exports one const ops table, defined with DFNET_DRIVER
 * (or written out and exported with DFNET_DRIVER_EXPORT):
 *
 *     static dfnet_status_t echo_start(dfnet_driver_t *driver, void *ctx) { ... }
 *     DFNET_DRIVER("echo", struct echo, .start = echo_start);
 *
 * The driver host (dfnet-driver-host) dlopen()s the .so, checks api_version (a mismatch is
 * refused with FAILED_PRECONDITION), allocates a zeroed context of ctx_size bytes, creates
 * the driver's default dispatcher and calls `start` on it. One driver host process may hold
 * several drivers (colocation); each has its own dispatcher and context.
 *
 * Threads. Every hook and every method handler runs on the driver's DEFAULT DISPATCHER: a
 * synchronized dispatcher, i.e. its callbacks are serialised: one at a time (never two at
 * once, whatever the threads), never reentrant (never one nested inside another of the
 * same driver), in the order they were queued. A driver therefore needs no lock for state
 * touched only from its hooks and handlers. As in Fuchsia's driver runtime, the dispatcher
 * is that serialisation, not one fixed thread. Each driver has a dispatcher thread of its
 * own, but while its dispatcher is idle (no callback running or queued) its callbacks may
 * run on another thread of the driver host, which saves a thread wake-up:
 *   - the link thread, for the calls one read of the link brought;
 *   - inline, the thread of another driver of the process whose callback calls it
 *     (dfnet_driver_client_call: the handler runs before that function returns), cancels
 *     a call it serves (its cancel callback), or answers a call it made (on_item / on_done,
 *     once the answering callback has returned).
 * A driver's own callbacks never run inside one of its calls of this API (but for
 * dfnet_driver_client_close in `stop`, see there): on_item and on_done of a call come after
 * the callback that made it has returned. A driver with allow_sync_calls always runs on
 * its own thread, so when it blocks it stalls its own later calls, which queue behind it,
 * and no other driver. One without it must not block: it would stall the driver whose
 * thread it runs on (on the link thread, the others wait about 2 ms before another thread
 * reads their calls). Do not hold, while calling into another driver, a lock that its
 * callbacks may take (two instances of one .so sharing a global lock): they may run on
 * your thread. Use dfnet_driver_on_dispatcher(), not a thread id, to know where you are.
 *
 * allow_sync_calls. With `"default_dispatcher_opts": ["allow_sync_calls"]` in the manifest
 * the driver may block on its dispatcher in the functions below that can block
 * (dfnet_call_wait_cancelled, dfnet_call_send with a full window). Without it, those
 * functions never block when called on the dispatcher: they return FAILED_PRECONDITION or
 * RESOURCE_EXHAUSTED instead (like Fuchsia's ZX_ERR_BAD_STATE for a sync call on such a
 * dispatcher). On the driver's own threads they may always block.
 *
 * Ownership in one sentence: the driver host owns everything it hands out (context,
 * properties, strings, request bytes, call handles) and frees it at the point written on
 * each function; everything a driver passes in is copied before the function returns,
 * unless written otherwise.
 */
#ifndef DFNET_DRIVER_H
#define DFNET_DRIVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this API. Bumped on any change of the ops table or of a function's
 * contract. A driver host runs drivers built against DFNET_DRIVER_API_VERSION_MIN ..
 * DFNET_DRIVER_API_VERSION and refuses others (FAILED_PRECONDITION). Version 2 appended
 * `suspend` and `resume` to the ops table: a version-1 table ends before them and the
 * driver host never reads them there. */
#define DFNET_DRIVER_API_VERSION 2u
#define DFNET_DRIVER_API_VERSION_MIN 1u

/* The symbol DFNET_DRIVER_EXPORT defines; the driver host looks it up with dlsym(). */
#define DFNET_DRIVER_SYMBOL "dfnet_driver_registration"

/* The largest request, streamed item or reply payload a call carries, bytes (a frame of
 * the wire is at most 4 MiB; the rest is room for the reply's header). */
#define DFNET_CALL_PAYLOAD_MAX (4u * 1024u * 1024u - 16u * 1024u)

/* Opaque handles. A dfnet_driver_t is valid from before `start` until `stop` returns;
 * a dfnet_call_t from its handler until dfnet_call_reply() (or until `stop` returns). */
typedef struct dfnet_driver dfnet_driver_t;
typedef struct dfnet_call dfnet_call_t;

/* ---------------------------------------------------------------------------------------
 * The ops table
 * ------------------------------------------------------------------------------------- */

typedef struct dfnet_driver_ops {
  /* DFNET_DRIVER_API_VERSION of the header the driver was built with. First field, so a
   * driver host of any version can read it. */
  uint32_t api_version;

  /* Short name of the driver ("echo", "virtio-rng"): used in logs. A static string. */
  const char *name;

  /* Size of the driver's context in bytes (0: none). The driver host allocates it zeroed
   * before `start` and frees it after `stop` returns; hooks and handlers receive it as
   * `ctx`. At most 64 MiB. */
  size_t ctx_size;

  /* start: the driver was bound to its node. REQUIRED.
   * Thread: the default dispatcher, first callback to run on it.
   * May block: briefly (opening a device file, reading sysfs); it delays the start reply.
   * Does: reads the node's properties, checks the hardware, serves its service
   *   (dfnet_driver_serve), adds children.
   * Returns DFNET_STATUS_OK, or an error (with dfnet_driver_log explaining why) that the
   *   manager shows on the node, e.g. FAILED_PRECONDITION when the hardware is not as the
   *   driver expects. On error no other hook is called: `start` must release what it
   *   acquired; the driver host removes what it registered (services, children), shuts
   *   the dispatcher down and frees the context.
   * Lengthy initialisation: call dfnet_driver_start_async() in `start` and return OK; the
   *   start completes when the driver calls dfnet_driver_start_complete() (see there). */
  dfnet_status_t (*start)(dfnet_driver_t *driver, void *ctx);

  /* prepare_stop: the driver is about to be stopped (DriverStop, or the driver host is
   * shutting down). OPTIONAL (NULL: nothing to prepare).
   * Thread: the default dispatcher. May block: briefly.
   * When it runs, the driver receives no new calls, and its calls still in flight have
   *   been ended with UNAVAILABLE (their cancellation callbacks are queued behind it).
   * Does: stops its own threads and timers so that nothing touches the context later.
   * Returns nothing. */
  void (*prepare_stop)(dfnet_driver_t *driver, void *ctx);

  /* stop: last hook. OPTIONAL (NULL: nothing to release).
   * Thread: the default dispatcher's thread, after the dispatcher has been drained (every
   *   callback already queued has run) and shut down (dfnet_driver_post refuses new work).
   * May block: briefly.
   * Does: releases the resources referenced by the context; after it returns the driver
   *   host frees the context, every call handle the driver still holds, and unloads the
   *   .so when no other driver uses it.
   * Returns nothing. */
  void (*stop)(dfnet_driver_t *driver, void *ctx);

  /* ---- API version 2 ---- */

  /* suspend: the seeds' suspend(flags) callout: the board reboots, powers off or suspends
   *   to RAM (flags: one DFNET_SUSPEND_FLAG_*), or an admin ran `dfnet node suspend`.
   *   OPTIONAL (NULL: nothing to do; the driver counts as suspended).
   * Thread: the default dispatcher. May block: briefly (quiesce the hardware).
   * Runs after the drivers below the node have suspended. While the driver is suspended
   *   it receives no calls (they end UNAVAILABLE "suspended" before reaching it); its own
   *   threads and timers are its business.
   * Returns OK, or an error: the driver then counts as running, and the suspend of the
   *   node and of the nodes above it fails with that status. */
  dfnet_status_t (*suspend)(dfnet_driver_t *driver, void *ctx, uint32_t flags);

  /* resume: the seeds' resume(): back from a suspend. OPTIONAL (NULL: nothing to do).
   * Thread: the default dispatcher. May block: briefly. Runs before the drivers below the
   *   node resume.
   * Returns OK (calls are delivered again), or an error: the driver stays suspended and the
   *   manager shows the error on the node. */
  dfnet_status_t (*resume)(dfnet_driver_t *driver, void *ctx);
} dfnet_driver_ops_t;

/* The suspend reasons of `suspend` (the seeds' DEVICE_SUSPEND_FLAG_* values). */
#define DFNET_SUSPEND_FLAG_REBOOT 0xdcdc0100u      /* the board reboots or shuts down */
#define DFNET_SUSPEND_FLAG_POWEROFF 0xdcdc0200u    /* the board powers off */
#define DFNET_SUSPEND_FLAG_MEXEC 0xdcdc0300u       /* a new kernel is about to be executed */
#define DFNET_SUSPEND_FLAG_SUSPEND_RAM 0xdcdc0400u /* suspend to RAM; resume follows */

/* What DFNET_DRIVER_EXPORT defines: the version again (readable without knowing the ops
 * table's layout) and the table. */
typedef struct dfnet_driver_registration {
  uint32_t api_version;
  const dfnet_driver_ops_t *ops;
} dfnet_driver_registration_t;

/* Export the driver's ops table `table` (a const dfnet_driver_ops_t object, not a pointer).
 * Use once per .so, at file scope. */
#define DFNET_DRIVER_EXPORT(table)                                                                \
  __attribute__((                                                                                 \
      visibility("default"))) extern const dfnet_driver_registration_t dfnet_driver_registration; \
  const dfnet_driver_registration_t dfnet_driver_registration = {                                 \
      .api_version = DFNET_DRIVER_API_VERSION, .ops = &(table)}

/* Define the driver's ops table and export it, once per .so at file scope: NAME is the
 * driver's name (a string literal), CTX the type of its context (the driver host allocates
 * sizeof(CTX) zeroed bytes for it), then the hooks as designated initializers
 * (.start = ..., .prepare_stop = ..., .stop = ...). api_version is this header's. */
#define DFNET_DRIVER(NAME, CTX, ...)                                                           \
  static const dfnet_driver_ops_t dfnet_driver_ops = {.api_version = DFNET_DRIVER_API_VERSION, \
                                                      .name = (NAME),                          \
                                                      .ctx_size = sizeof(CTX),                 \
                                                      __VA_ARGS__};                            \
  DFNET_DRIVER_EXPORT(dfnet_driver_ops)

/* ---------------------------------------------------------------------------------------
 * The node
 * ------------------------------------------------------------------------------------- */

/* The type of a property's value (DFv2 NodePropertyValue). */
typedef enum dfnet_property_type {
  DFNET_PROPERTY_UINT = 0,
  DFNET_PROPERTY_STRING = 1,
  DFNET_PROPERTY_BOOL = 2,
  DFNET_PROPERTY_ENUM = 3, /* value_str is the fully qualified value, "a.b.C" */
} dfnet_property_type_t;

/* One node property (DFv2 NodeProperty). The key is a deprecated integer key (str_key ==
 * NULL; e.g. 1 = fuchsia.BIND_PROTOCOL) or a string key ("fuchsia.BIND_PCI_VID" style,
 * int_key == 0). Strings are NUL-terminated. */
typedef struct dfnet_node_property {
  uint32_t int_key;
  const char *str_key;
  dfnet_property_type_t type;
  uint32_t value_uint;   /* DFNET_PROPERTY_UINT */
  bool value_bool;       /* DFNET_PROPERTY_BOOL */
  const char *value_str; /* DFNET_PROPERTY_STRING and DFNET_PROPERTY_ENUM, else NULL */
} dfnet_node_property_t;

/* The node's properties as the manager gave them, in order. *count receives the number
 * (0..64). The array and its strings are owned by the driver host, constant, and valid
 * until `stop` returns. Never NULL (an empty array when there are none). Any thread. */
const dfnet_node_property_t *dfnet_driver_properties(const dfnet_driver_t *driver, size_t *count);

/* The first property with this key: an integer key (str_key NULL) or a string key
 * (int_key ignored). Returns a pointer into dfnet_driver_properties()' array, or NULL when
 * the node has no such property. Any thread. */
const dfnet_node_property_t *dfnet_driver_property_find(const dfnet_driver_t *driver,
                                                        uint32_t int_key, const char *str_key);

/* The node's moniker ("dev.lab-a.pci.00_05_0"), the node's name (its last segment,
 * "00_05_0"), the driver's URL, and the manifest's "program" block as JSON text ("{}" when
 * none was given). NUL-terminated strings owned by the driver host, valid until `stop`
 * returns. Never NULL. Any thread. */
const char *dfnet_driver_node_moniker(const dfnet_driver_t *driver);
const char *dfnet_driver_node_name(const dfnet_driver_t *driver);
const char *dfnet_driver_url(const dfnet_driver_t *driver);
const char *dfnet_driver_program_json(const dfnet_driver_t *driver);

/* ---------------------------------------------------------------------------------------
 * Resources: the device files of the node, handed, not opened (docs/architecture.md
 * "Resources")
 *
 * A driver opens nothing by path (the seeds: "Drivers are not allowed to access the
 * filesystem ... Bus drivers such as PCI and platform only return the resources associated
 * to the child device"). When the host agent starts a driver it opens the files the node's
 * properties name (a node its enumerators published: never one a driver added) and those
 * the driver's manifest declares, and hands the descriptors to the driver host with the
 * DriverStart (a start fails when one cannot be opened, before the driver is loaded). The
 * names, with the property they come from (the property still names the file, for
 * messages; the driver never opens it):
 *
 *   "tty"     dfnet.platform.TTY        a board file's serial port, O_RDWR | O_NOCTTY
 *   "gpio"    dfnet.platform.GPIO_CHIP  the GPIO chip's character device, O_RDWR
 *   "i2c"     dfnet.platform.I2C_BUS    the I2C bus's device file, O_RDWR
 *   "spi"     dfnet.platform.SPI        the spidev device file, O_RDWR
 *   "path"    dfnet.platform.PATH       any other device file, O_RDWR
 *   "block"   dfnet.platform.BLOCK      the block device (or regular file) images go to,
 *                                       O_RDWR (O_RDONLY when write-protected); a block
 *                                       device is held O_EXCL while the driver runs
 *   "sysfs"   dfnet.pci.SYSFS_PATH      the PCI function's sysfs directory, O_PATH |
 *                                       O_DIRECTORY: read what is in it with openat(2),
 *                                       readlinkat(2) (fdopendir needs openat(fd, ".",
 *                                       O_RDONLY | O_DIRECTORY) first)
 *   "config"  dfnet.pci.SYSFS_PATH      <that directory>/config, the configuration space,
 *                                       O_RDWR (O_RDONLY when refused)
 *   <path>    the manifest              each entry of the program block's "resources"
 *                                       (["/dev/hwrng"]; lib/resource.h), named by its path,
 *                                       O_RDONLY (O_RDWR with "access": "rw"), when the host
 *                                       allows it (dfnet-host --allow-resource)
 *
 * Every descriptor is O_CLOEXEC and, but for "sysfs", O_NONBLOCK: clear it with fcntl(2)
 * F_SETFL for blocking I/O. The remaining exception is the USB device file, which the
 * usb-device driver still opens through libusb (drivers/README.md).
 * ------------------------------------------------------------------------------------- */

/* The descriptor of the node's resource `name` ("tty", "config", "/dev/hwrng"), or -1 when
 * the driver was handed none of that name (or driver or name is NULL). The descriptor is
 * owned by the driver host: use it, never close it (dup(2) a copy to close); it is valid
 * until `stop` returns, then closed. Any thread; never blocks. */
int dfnet_driver_resource_fd(const dfnet_driver_t *driver, const char *name);

/* How many resources the driver was handed, and the name of the index-th (0 .. count - 1;
 * NULL past the end), in the order they came. Strings owned by the driver host, valid until
 * `stop` returns. Any thread. */
size_t dfnet_driver_resource_count(const dfnet_driver_t *driver);
const char *dfnet_driver_resource_name(const dfnet_driver_t *driver, size_t index);

/* Open a complete artifact of the host's cache for reading: a file uploaded to this host
 * through dfnet.lab.ArtifactCache (proto/dfnet/lab/artifact.proto; docs/architecture.md
 * "Artifacts"), named by its SHA-256 (32 bytes). The driver host opens nothing by path: it
 * asks the host agent (ArtifactOpen, proto/dfnet/v1/driver.proto), which answers with the
 * file's descriptor. On OK *fd is a read-only descriptor the caller owns and closes. The
 * agent published the file only after its digest verified, and never changes it afterwards.
 * Errors: INVALID_ARGUMENT (a NULL argument); NOT_FOUND (the cache holds no complete
 * artifact with that digest); UNAVAILABLE (the agent did not answer within 10 s: the link
 * is gone); INTERNAL (the agent could not open it: its log says why). Any thread; blocks
 * until the agent answers (a round trip on the link): from the driver's own threads, or a
 * dispatcher with allow_sync_calls. */
dfnet_status_t dfnet_driver_artifact_open(const dfnet_driver_t *driver, const uint8_t sha256[32],
                                          int *fd);

/* Open the upload under way of an artifact for reading: the leading bytes of it the host
 * holds so far (its "<sha256 hex>.part" in the cache), a file that grows as the upload goes
 * on, may be cut back to a checkpoint when the agent restarts, and is renamed to the
 * complete artifact once its digest verified (dfnet_driver_artifact_open finds it then) or
 * deleted when it did not. What it holds is unverified: a driver that uses it checks the
 * result against the digest. On OK *fd is a read-only descriptor the caller closes.
 * Errors: as dfnet_driver_artifact_open; NOT_FOUND when no upload of it is under way.
 * Any thread; may block (opens a file). */
dfnet_status_t dfnet_driver_artifact_open_partial(const dfnet_driver_t *driver,
                                                  const uint8_t sha256[32], int *fd);

/* The offers (service names) the node received from its parent. *count receives the
 * number. Owned by the driver host, valid until `stop` returns. Any thread. */
const char *const *dfnet_driver_offers(const dfnet_driver_t *driver, size_t *count);

/* One offer the node received (DFv2 Offer, docs/spec/dfv2.md "Nodes"): a service another
 * driver serves, under an instance name ("default"; for a composite node, a non-primary
 * parent's name, the primary parent's offers under "default" too), and the moniker of the
 * node whose driver serves it. Strings owned by the driver host, valid until `stop`. */
typedef struct dfnet_offer {
  const char *service;  /* "dfnet.hw.usb.Interface" */
  const char *instance; /* "default" */
  const char *source;   /* "dev.lab-a.usb.001_005" */
} dfnet_offer_t;

/* The index-th offer the node received (0 .. count-1), into *out. Any thread.
 * Returns OK, or OUT_OF_RANGE (no such index; *count_out, if not NULL, always gets the
 * number of offers). */
dfnet_status_t dfnet_driver_offer(const dfnet_driver_t *driver, size_t index, dfnet_offer_t *out,
                                  size_t *count_out);

/* ---------------------------------------------------------------------------------------
 * Children
 * ------------------------------------------------------------------------------------- */

/* A child node to add under the driver's node (DFv2 NodeAddArgs). */
typedef struct dfnet_child_args {
  const char *name;                        /* required; 1..128 bytes, no '.' */
  const dfnet_node_property_t *properties; /* may be NULL when property_count == 0 */
  size_t property_count;                   /* at most 64 */
  const char *const *offers;               /* service names offered to the child's driver */
  size_t offer_count;                      /* at most 16, each < 128 bytes */
  const char *class_name;                  /* devfs-style class ("serial"), or NULL */
  bool owned; /* true: the driver keeps the node (OWNED_BY_PARENT), the manager never binds
                 it; false: the manager binds a driver to it */
} dfnet_child_args_t;

/* Called once with the manager's verdict on an added child: OK, or e.g. ALREADY_EXISTS /
 * INVALID_ARGUMENT / UNAVAILABLE (host disconnected). Runs on the default dispatcher. */
typedef void (*dfnet_child_added_fn)(dfnet_driver_t *driver, void *ctx, const char *name,
                                     dfnet_status_t status, void *arg);

/* Add a child node (moniker = this node's moniker + "." + name). Everything in *args is
 * copied. The request goes to the host agent, which forwards it to the manager; `done`
 * (may be NULL) is called once with the outcome, on the default dispatcher, unless the
 * driver stops first.
 * Any thread. Never blocks.
 * Returns OK (request sent; `done` will be called); INVALID_ARGUMENT (bad name, too many
 * properties/offers, a string over its bound); ALREADY_EXISTS (this driver already added
 * a child of that name); FAILED_PRECONDITION (the driver is stopping); UNAVAILABLE (the
 * link to the host agent is gone). On any error `done` is never called. */
dfnet_status_t dfnet_driver_add_child(dfnet_driver_t *driver, const dfnet_child_args_t *args,
                                      dfnet_child_added_fn done, void *arg);

/* Remove a child this driver added (and its subtree, at the manager). `name` is copied.
 * Idempotent from the driver's point of view: removing a name that is not (or no longer)
 * a child returns NOT_FOUND and changes nothing. Any thread. Never blocks.
 * Returns OK, NOT_FOUND, UNAVAILABLE (link gone). */
dfnet_status_t dfnet_driver_remove_child(dfnet_driver_t *driver, const char *name);

/* ---------------------------------------------------------------------------------------
 * Serving a protobuf service (gRPC-like calls, docs/design.md "Calls")
 * ------------------------------------------------------------------------------------- */

/* A method handler. Thread: the default dispatcher. `request` (len bytes, the method's
 * encoded protobuf request) is owned by the call and valid until dfnet_call_reply().
 * The handler must eventually complete `call` with dfnet_call_reply() exactly once - now,
 * or later from any thread - even when the call was cancelled meanwhile (the reply is then
 * dropped); that releases the handle. May block only with allow_sync_calls. */
typedef void (*dfnet_method_handler_t)(void *ctx, dfnet_call_t *call, const uint8_t *request,
                                       size_t len);

/* One method of a method table. */
typedef struct dfnet_method {
  /* "Read" when a service name is given to dfnet_driver_serve(), else the full path
   * "/dfnet.hw.rng.Rng/Read". */
  const char *name;
  dfnet_method_handler_t handler;
  /* true: server-streaming (items with dfnet_call_send, then dfnet_call_reply). */
  bool server_streaming;
} dfnet_method_t;

/* Serve `count` methods. `service` is the protobuf service's full name
 * ("dfnet.hw.rng.Rng"; methods named "Read" become "/dfnet.hw.rng.Rng/Read"), or NULL when
 * every method's name is already a full path. The table and the strings are copied.
 * Calls to the node for a path the driver does not serve are answered UNIMPLEMENTED.
 * Any thread (normally `start`).
 * Returns OK; INVALID_ARGUMENT (NULL handler, malformed path, path over 255 bytes, more
 * than 64 methods in all); ALREADY_EXISTS (a path is already served; nothing of this table
 * is registered); FAILED_PRECONDITION (the driver is stopping). */
dfnet_status_t dfnet_driver_serve(dfnet_driver_t *driver, const char *service,
                                  const dfnet_method_t *methods, size_t count);

/* The method path of the call ("/dfnet.test.Echo/Echo"); the caller's verified name as the
 * manager set it ("" when unknown). Owned by the call, valid until dfnet_call_reply(). */
const char *dfnet_call_method(const dfnet_call_t *call);
const char *dfnet_call_caller(const dfnet_call_t *call);

/* The driver that serves the call. Any thread, until dfnet_call_reply(). */
dfnet_driver_t *dfnet_call_driver(const dfnet_call_t *call);

/* Complete the call: the final status (gRPC's trailer) with a message (NULL: none) and,
 * typically for a unary OK, the reply payload (data may be NULL when len == 0). data and
 * message are copied. For a streaming call, items still queued for credit are sent first.
 * Any thread; exactly once per call; the handle is invalid afterwards.
 * Returns OK (sent, or queued behind streamed items); DEADLINE_EXCEEDED / CANCELLED /
 * UNAVAILABLE when the call had already ended that way (the caller got that status; this
 * reply is dropped and logged at debug level); RESOURCE_EXHAUSTED when len exceeds
 * DFNET_CALL_PAYLOAD_MAX (the caller gets INTERNAL instead). */
dfnet_status_t dfnet_call_reply(dfnet_call_t *call, dfnet_status_t status, const char *message,
                                const uint8_t *data, size_t len);

/* Send one item of a server-streaming call. data is copied. Each item uses one credit of
 * the caller's window (Call.credit, then StreamCredit); without credit the item waits in
 * a queue of at most 64 items per call. When that queue is full: on the driver's own
 * threads, and on its dispatcher with allow_sync_calls, the function blocks until there
 * is room or the call ends; on a dispatcher without allow_sync_calls it returns
 * RESOURCE_EXHAUSTED at once (try again later, e.g. from a task dfnet_driver_post() runs
 * after a delay).
 * Any thread.
 * Returns OK; RESOURCE_EXHAUSTED (see above, or len > DFNET_CALL_PAYLOAD_MAX);
 * FAILED_PRECONDITION (not a streaming method); CANCELLED / DEADLINE_EXCEEDED /
 * UNAVAILABLE when the call has ended (stop sending and call dfnet_call_reply). */
dfnet_status_t dfnet_call_send(dfnet_call_t *call, const uint8_t *data, size_t len);

/* Has the call ended without the driver's reply? Returns OK while the caller still waits;
 * CANCELLED (caller cancelled or disconnected), DEADLINE_EXCEEDED, or UNAVAILABLE (driver
 * stopping) once it ended. Any thread; never blocks. */
dfnet_status_t dfnet_call_status(const dfnet_call_t *call);

/* Wait up to timeout_ms (UINT32_MAX: no limit) for the call to end without the driver's
 * reply. Returns what dfnet_call_status() would, so OK means "timed out, still waiting".
 * Blocks: on the driver's threads, and on its dispatcher with allow_sync_calls; on a
 * dispatcher without allow_sync_calls it returns FAILED_PRECONDITION at once. */
dfnet_status_t dfnet_call_wait_cancelled(dfnet_call_t *call, uint32_t timeout_ms);

/* Milliseconds left before the call's deadline: UINT32_MAX when it has none, 0 when it
 * has passed. Any thread. */
uint32_t dfnet_call_deadline_left_ms(const dfnet_call_t *call);

/* Called once when the call ends without the driver's reply (cancelled, deadline passed,
 * driver stopping), with that status. Runs on the default dispatcher (so, for a handler
 * that blocks on the dispatcher, only after it returns: use dfnet_call_wait_cancelled or
 * dfnet_call_status there). Never called once the driver has replied.
 * Registering when the call has already ended queues it at once. At most one per call
 * (a second registration replaces the first if it has not run). Any thread.
 * Returns OK, or FAILED_PRECONDITION if the handler's reply was already given. */
typedef void (*dfnet_call_cancel_fn)(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg);
dfnet_status_t dfnet_call_on_cancel(dfnet_call_t *call, dfnet_call_cancel_fn fn, void *arg);

/* The calling driver's driver URL for a call made by another driver
 * (dfnet_driver_client_call), "" for a remote client's call (dfnet_call_caller() is then the
 * client's certificate name; for a driver, its node's moniker). Set by the host agent or
 * the manager, never taken from the caller. Owned by the call, valid until
 * dfnet_call_reply(). */
const char *dfnet_call_caller_driver_url(const dfnet_call_t *call);

/* ---------------------------------------------------------------------------------------
 * Calling another driver (DFv2: connecting to a service offered to the node)
 *
 * A driver calls a service offered to its node with the semantics remote clients have:
 * unary and server-streaming calls, deadlines, cancellation, a credit window, the 17
 * status codes. The call takes the shortest way to the serving driver: within the same
 * driver host it is handed to that driver's dispatcher (no socket; when that dispatcher is
 * idle its handler runs inline, see "Threads" at the top); in another driver host of the
 * same board it goes through the host agent; on another board (a composite's parent)
 * through the manager. The serving driver sees the caller's node moniker
 * (dfnet_call_caller) and driver URL (dfnet_call_caller_driver_url). When the serving
 * driver stops, the client's calls end UNAVAILABLE and dfnet_driver_client_status() says
 * so; the manager stops a child's driver before its parent's (DFv2 removal order).
 *
 * Implementation notes (host/driver_host/client.c; docs/architecture.md "Calls between
 * drivers"). Whether the serving driver runs in this driver host is decided by
 * dfnet_driver_connect(). A call within the process is a call of the serving driver whose
 * replies are posted to the calling dispatcher (Fuchsia's inlining rules: made from a
 * dispatcher, it runs on the calling thread when the serving dispatcher is idle and has
 * no allow_sync_calls, and its replies reach an idle calling dispatcher the same way when
 * the serving callback returns; else each side's thread is woken); any other is the
 * driver host's own Call on its link (an id with bit 63 set), which the host agent checks
 * (the calling node must be one whose driver runs in that driver host) and routes. The
 * client turns UNAVAILABLE when its serving driver in this process begins to stop, or
 * when the host agent ends one of its calls with Status UNAVAILABLE (the serving driver or
 * its driver host is gone); a Reply UNAVAILABLE (the serving driver's own answer, or a
 * transient failure on the way) leaves it OK. Across driver hosts a client with no call in
 * flight learns it on its next call.
 * ------------------------------------------------------------------------------------- */

typedef struct dfnet_driver_client dfnet_driver_client_t;
typedef uint64_t dfnet_driver_call_id_t; /* 0 is "none" */

/* Connect to the offer (service, instance) of this driver's node (instance NULL =
 * "default"). Nothing is sent yet. On OK *out is a new client, closed with
 * dfnet_driver_client_close() (at the latest in `stop`, which closes what is left).
 * Any thread. Never blocks.
 * Returns OK; NOT_FOUND (no such offer: the message is logged with the offers the node
 * has); FAILED_PRECONDITION (the driver is stopping); RESOURCE_EXHAUSTED (memory). */
dfnet_status_t dfnet_driver_connect(dfnet_driver_t *driver, const char *service,
                                    const char *instance, dfnet_driver_client_t **out);

/* A streamed item of a server-streaming call: data (len bytes) borrowed for the call.
 * Runs on the calling driver's default dispatcher. */
typedef void (*dfnet_driver_client_item_fn)(dfnet_driver_t *driver, void *ctx,
                                            dfnet_driver_call_id_t call, const uint8_t *data,
                                            size_t len, void *arg);
/* The call's end, exactly once per started call: its status and message, and for a unary
 * OK the reply payload (borrowed for the call; data may be NULL when len == 0). Runs on the
 * calling driver's default dispatcher, after every item. */
typedef void (*dfnet_driver_client_done_fn)(dfnet_driver_t *driver, void *ctx,
                                            dfnet_driver_call_id_t call, dfnet_status_t status,
                                            const char *message, const uint8_t *data, size_t len,
                                            void *arg);

/* A call to make: the method (a name of the client's service, "Echo", or a full path
 * "/dfnet.test.Echo/Echo"), the request (copied), the deadline (0: none), for a streaming
 * method the credit window (items accepted before dfnet_driver_client_credit; 0 = 16) and
 * the item callback, and the done callback. */
typedef struct dfnet_driver_client_call_args {
  const char *method;
  const uint8_t *request;
  size_t len;
  uint32_t deadline_ms;
  uint32_t credit;
  dfnet_driver_client_item_fn on_item; /* NULL: a unary call */
  dfnet_driver_client_done_fn on_done; /* required */
  void *arg;
} dfnet_driver_client_call_args_t;

/* Start a call. *id (may be NULL) names it. Any thread; never blocks. On the calling
 * driver's dispatcher, the handler of a serving driver of this process whose dispatcher is
 * idle (and has no allow_sync_calls) runs inside this call; the caller's on_item and on_done
 * never do (*id is set before they run).
 * Returns OK (on_done will run exactly once); INVALID_ARGUMENT (no method or on_done,
 * request over DFNET_CALL_PAYLOAD_MAX); UNAVAILABLE (the serving driver has stopped, or
 * the link to the agent is gone); FAILED_PRECONDITION (the calling driver is stopping);
 * RESOURCE_EXHAUSTED (memory, or too many calls in flight). On error on_done never runs.
 * (Implementation: at most 256 calls of one client in flight; a method without '/' is
 * "/<the offer's service>/<method>"; the deadline is enforced by this driver host too.) */
dfnet_status_t dfnet_driver_client_call(dfnet_driver_client_t *client,
                                        const dfnet_driver_client_call_args_t *args,
                                        dfnet_driver_call_id_t *id);

/* Accept `credit` more items of streaming call `id`. Any thread. Returns OK, or NOT_FOUND
 * (the call has ended). */
dfnet_status_t dfnet_driver_client_credit(dfnet_driver_client_t *client, dfnet_driver_call_id_t id,
                                          uint32_t credit);

/* Cancel call `id`: the serving driver learns of it; on_done runs with CANCELLED unless the
 * call ended first. Any thread; idempotent. Returns OK, or NOT_FOUND (ended). */
dfnet_status_t dfnet_driver_client_cancel(dfnet_driver_client_t *client, dfnet_driver_call_id_t id);

/* OK while the serving driver runs (as far as this driver host knows); UNAVAILABLE once it
 * has stopped or its node is gone (calls started then fail at once). Any thread. */
dfnet_status_t dfnet_driver_client_status(const dfnet_driver_client_t *client);

/* Cancel the client's calls (each on_done runs with CANCELLED) and free it. NULL is a
 * no-op. Any thread but from within one of this client's callbacks.
 * (Implementation: in `stop`, where the dispatcher takes no task any more, the on_done
 * callbacks of what is left run inside this call, on the dispatcher's thread. Clients still
 * open when `stop` returns are closed by the driver host without callbacks: their calls are
 * cancelled at the serving side all the same.) */
void dfnet_driver_client_close(dfnet_driver_client_t *client);

/* ---------------------------------------------------------------------------------------
 * Asynchronous start (the seeds' init() hook and device_init_reply(); DFv2's asynchronous
 * Start)
 * ------------------------------------------------------------------------------------- */

/* Make this driver's start asynchronous. Call it in `start`, then return OK: the start is
 * complete only once dfnet_driver_start_complete() is called. Until then the node shows
 * state "starting", calls to it end UNAVAILABLE, and the children the driver adds are
 * neither listed to clients nor bound; they are once the start completes OK, and they are
 * removed if it fails. The manifest's "start_timeout_ms" (default 30000, at most 600000)
 * bounds the whole start: past it the driver host stops the driver (prepare_stop, stop)
 * and the node shows DEADLINE_EXCEEDED.
 * Thread: the default dispatcher, inside `start` only.
 * Returns OK; FAILED_PRECONDITION (not inside `start`, or called twice). */
dfnet_status_t dfnet_driver_start_async(dfnet_driver_t *driver);

/* Complete an asynchronous start with `status`: OK (the node is ready: its children are
 * listed and bound), or an error that the manager shows on the node; the driver host then
 * stops the driver as for a DriverStop (prepare_stop, drain, stop), so release what the
 * driver holds there. Any thread, once; `status` must be one of the 17 codes.
 * Returns OK; FAILED_PRECONDITION (the start was not asynchronous, is already complete, or
 * timed out: the driver is being stopped); INVALID_ARGUMENT (not a status code). */
dfnet_status_t dfnet_driver_start_complete(dfnet_driver_t *driver, dfnet_status_t status);

/* Is the driver suspended (its suspend hook returned OK and no resume ran since)? Any
 * thread. */
bool dfnet_driver_suspended(const dfnet_driver_t *driver);

/* ---------------------------------------------------------------------------------------
 * The dispatcher
 * ------------------------------------------------------------------------------------- */

typedef void (*dfnet_task_fn)(dfnet_driver_t *driver, void *ctx, void *arg);

/* Queue fn(driver, ctx, arg) on the driver's default dispatcher, after delay_ms (0: behind
 * what is already queued). Any thread (typically the driver's own threads, to get back to
 * the dispatcher). A task still waiting for its delay when the dispatcher shuts down is
 * dropped (never run); free its arg in prepare_stop/stop if it owns memory.
 * Returns OK; FAILED_PRECONDITION when the dispatcher is shut down or shutting down (fn
 * will never run); RESOURCE_EXHAUSTED (out of memory). */
dfnet_status_t dfnet_driver_post(dfnet_driver_t *driver, uint32_t delay_ms, dfnet_task_fn fn,
                                 void *arg);

/* Is the calling thread the driver's default dispatcher? */
bool dfnet_driver_on_dispatcher(const dfnet_driver_t *driver);

/* ---------------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------------- */

typedef enum dfnet_driver_log_level {
  DFNET_DRIVER_LOG_ERROR = 0,
  DFNET_DRIVER_LOG_WARN = 1,
  DFNET_DRIVER_LOG_INFO = 2,
  DFNET_DRIVER_LOG_DEBUG = 3,
} dfnet_driver_log_level_t;

/* Write one log line to the driver host's stderr (which the host agent keeps):
 * "<time> <L> <driver name> <node moniker>: <message>". Lines above the driver host's
 * level (DFNET_LOG_LEVEL, default info) are skipped. Messages are cut at 1 KiB. Any
 * thread; never blocks on anything but stderr. */
void dfnet_driver_log(const dfnet_driver_t *driver, dfnet_driver_log_level_t level, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));
void dfnet_driver_vlog(const dfnet_driver_t *driver, dfnet_driver_log_level_t level,
                       const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

#ifdef __cplusplus
}
#endif
#endif /* DFNET_DRIVER_H */
