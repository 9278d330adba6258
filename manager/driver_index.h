/* dfnet-manager: the driver index (docs/spec/dfv2.md "Driver index policy"; docs/design.md
 * "Driver packages").
 *
 * Drivers come from packages (lib/package.h): boot drivers from --drivers DIR and drivers
 * registered at run time by admin clients. Each package's manifest meta/<name>.json is
 * validated field by field and its bind bytecode verified at load; a bad package is
 * refused with a message naming the file and field, and nothing of it enters the index.
 *
 * Matching (driver_index__match) follows DFv2's driver index: disabled and composite
 * drivers are skipped; exactly one non-fallback match wins; else exactly one fallback match
 * wins (fallbacks only once the boot drivers are indexed); several at the deciding level is
 * FAILED_PRECONDITION ("multiple non-fallback drivers matched: ...": DFv2's NOT_SUPPORTED,
 * which gRPC has no code for), never a ranking; none is NOT_FOUND. Composite node specs and
 * composite drivers are handled by the binder before this is asked.
 *
 * A driver is named by its URL or, where no other driver has the same name, by its name
 * (driver_index__resolve: every request that names a driver goes through it).
 *
 * Lives on the manager's event-loop thread. Driver ids (1, 2, ...) are never reused: a
 * registered driver that is unregistered (driver_index__remove) leaves a hole, so an id
 * kept across loop turns either finds its own driver or NULL (driver_index__get). Code
 * that walks idx->drivers[0..count) skips the NULL holes.
 */
#ifndef DFNET_MANAGER_DRIVER_INDEX_H
#define DFNET_MANAGER_DRIVER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "dfnet/bind.h"
#include "dfnet/status.h"
#include "lib/driver_rights.h"
#include "lib/package.h"
#include "lib/resource.h"

#define DRIVER_OPTS_MAX 4
#define DRIVER_CATEGORIES_MAX 8
#define DRIVER_READ_ONLY_METHODS_MAX 32
#define DRIVER_METHOD_PATH_MAX 255 /* a full method path's bytes (Call.method holds 255) */

typedef enum driver_source {
  DRIVER_BOOT = 1,       /* dfnet_v1_DriverSource_BOOT */
  DRIVER_REGISTERED = 2, /* dfnet_v1_DriverSource_REGISTERED */
} driver_source_t;

/* A validated manifest (meta/<name>.json "program" block). Strings owned.
 *
 * "read_only_methods" (optional): a JSON array of at most DRIVER_READ_ONLY_METHODS_MAX full
 * method paths ("/dfnet.hw.serial.Serial/Subscribe"; each 2..DRIVER_METHOD_PATH_MAX bytes,
 * starting with '/' and with a second '/'), the methods that only observe the device and
 * never change it. A client that may call may call them on a node bound to this driver
 * without holding its lease, and without one under --require-lease (lease_fence.c; docs/
 * architecture.md "Leases"): watching a board's console while someone else holds it.
 *
 * "resources" (optional): the files the driver needs beyond its node's (lib/resource.h:
 * absolute paths, read-only or "access": "rw"); each host's agent opens them when it starts
 * the driver, if its --allow-resource lets it, and hands the descriptors over.
 *
 * "rights" and "limits" (optional; lib/driver_rights.h): what the driver's confined driver
 * host may do beyond computing on its descriptors ("inet", "exec", "usb"; none when absent)
 * and its bounds (memory_mb, open_files; the defaults when absent). The manager refuses a
 * package whose rights or limits do not parse; each agent refuses to start a driver whose
 * rights it does not allow (dfnet-host --allow-right). */
typedef struct driver_manifest {
  char *binary; /* "driver/<name>.so" */
  char *bind;   /* "meta/bind/<name>.bindbc" */
  bool colocate, fallback, host_restart_on_crash;
  char *dispatcher_opts[DRIVER_OPTS_MAX];
  size_t dispatcher_opt_count;
  char *categories[DRIVER_CATEGORIES_MAX][2]; /* category, subcategory */
  size_t category_count;
  char *read_only_methods[DRIVER_READ_ONLY_METHODS_MAX]; /* full method paths */
  size_t read_only_method_count;
  dfnet_manifest_resource_t resources[DFNET_MANIFEST_RESOURCES_MAX]; /* "resources" */
  size_t resource_count;
  dfnet_driver_rights_t rights; /* "rights" and "limits" (defaults filled in) */
  char *program_json;           /* the program block, compact JSON (sent with DriverStart) */
  uint32_t start_timeout_ms; /* "start_timeout_ms" (1..DRIVER_START_TIMEOUT_MAX_MS), 0 = absent */
} driver_manifest_t;

#define DRIVER_START_TIMEOUT_DEFAULT_MS 30000u /* a manifest without start_timeout_ms */
#define DRIVER_START_TIMEOUT_MAX_MS 600000u

typedef struct driver {
  UT_hash_handle hh; /* by url */
  uint32_t id;
  char *name;
  char *url;
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  driver_source_t source;
  bool disabled;
  driver_manifest_t m;
  dfnet_bind_program_t *program;
  bool composite;        /* composite bind rules */
  bool disable_autobind; /* its bytecode starts with fuchsia.BIND_AUTOBIND == 0 (dfnet-bindc
                            --disable-autobind): it binds only on a RequestBind */
  uint32_t device_count; /* nodes bound to it */
} driver_t;

typedef struct driver_index {
  driver_t *by_url;   /* uthash */
  driver_t **drivers; /* by id - 1 */
  size_t count, cap;
  bool boot_indexed; /* boot drivers loaded: fallbacks may match */
} driver_index_t;

void driver_index__init(driver_index_t *idx);
void driver_index__destroy(driver_index_t *idx);

/* Parse and validate a manifest (JSON text of `len` bytes). `file` names it in messages:
 * "meta/x.json: program.colocate: must be \"true\" or \"false\"". On OK *out owns copies
 * (free with driver_index__manifest_free). Errors: INVALID_ARGUMENT with err set. */
dfnet_status_t driver_index__parse_manifest(const char *text, size_t len, const char *file,
                                            driver_manifest_t *out, char *err, size_t err_size);
void driver_index__manifest_free(driver_manifest_t *m);

/* Load the package `name` from its archive bytes: manifest meta/<name>.json validated,
 * binary present, bind bytecode verified. The URL follows lib/package.h (boot: no digest
 * in it). On OK *out is the new driver (owned by the index).
 * Errors: INVALID_ARGUMENT (bad name, manifest, missing entry, bad bytecode: err names the
 * file and field), ALREADY_EXISTS (a driver with that URL), RESOURCE_EXHAUSTED. */
dfnet_status_t driver_index__add_package(driver_index_t *idx, const char *name, const uint8_t *pkg,
                                         size_t pkg_size, driver_source_t source, driver_t **out,
                                         char *err, size_t err_size);

/* How long d's start may take (its manifest's start_timeout_ms, else the default). */
uint32_t driver_index__start_timeout_ms(const driver_t *d);

/* Is `method` (a full method path) one of d's manifest's read_only_methods? A linear scan
 * of at most DRIVER_READ_ONLY_METHODS_MAX strings (the fence asks on every leased call). */
bool driver_index__method_read_only(const driver_t *d, const char *method);

/* The driver with that exact URL, or NULL. */
driver_t *driver_index__find_url(const driver_index_t *idx, const char *url);
/* The driver with that id, or NULL (0, never used, or removed). */
driver_t *driver_index__get(const driver_index_t *idx, uint32_t id);

/* A driver named by a client: `what` is an exact URL first, else a driver's name
 * ("pci-config") that exactly one driver of the index has. On OK *out is that driver
 * (owned by the index). Errors, with err (err_size bytes) saying why:
 *   NOT_FOUND            no driver has that URL or name;
 *   FAILED_PRECONDITION  several drivers have that name: err lists their URLs (the first
 *                        8), so the client can give the one it means. */
dfnet_status_t driver_index__resolve(const driver_index_t *idx, const char *what, driver_t **out,
                                     char *err, size_t err_size);

/* A registered driver whose package has exactly this SHA-256, or NULL. */
driver_t *driver_index__find_registered(const driver_index_t *idx,
                                        const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]);

/* Take d out of the index and free it: its URL and name no longer resolve, its id stays
 * unused (driver_index__get answers NULL). The caller has unbound every node bound to it
 * first (nothing else may point at it). d must belong to idx. */
void driver_index__remove(driver_index_t *idx, driver_t *d);

/* The index's answer for one node. */
typedef struct driver_match {
  dfnet_status_t status; /* OK (driver set), NOT_FOUND, FAILED_PRECONDITION (ambiguous) */
  driver_t *driver;
  char reason[400]; /* why not: "no driver matched", "multiple ... matched: a, b" */
} driver_match_t;

/* Match a prepared node against every enabled non-composite driver (policy above). When
 * url_suffix is non-empty only drivers whose URL ends with it are considered (DFv2
 * RequestBind driver_url_suffix). */
void driver_index__match(const driver_index_t *idx, const dfnet_bind_node_t *node,
                         const char *url_suffix, driver_match_t *out);

#endif /* DFNET_MANAGER_DRIVER_INDEX_H */
