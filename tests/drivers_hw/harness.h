/* A test bench for the hardware drivers: a real dfnet-driver-host spawned through
 * host/supervisor (as the host agent does), a driver package from the build tree started
 * in it with DriverStart (manifest program block as the bulk, dispatcher options from the
 * manifest, realistic node properties), and calls made with Call envelopes. The bench
 * answers the driver's NodeAdd / NodeRemove like the agent would (OK) and keeps them for
 * the test to inspect.
 *
 * The driver host is sandboxed as dfnet-host's are by default (docs/architecture.md
 * "Confinement"): as the driver user (tests/driver_user.h) when the test runs as root,
 * reading its drivers through the build tree's drivers/ and tests/drivers/, confined by the
 * rights of the first driver started in it.
 *
 * Every wait is bounded (HW_WAIT_MS); a test that would hang fails instead.
 */
#ifndef DFNET_TESTS_DRIVERS_HW_HARNESS_H
#define DFNET_TESTS_DRIVERS_HW_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "dfnet/v1/node.pb.h"
#include "host/supervisor/supervisor.h"

#define HW_WAIT_MS 10000

/* A property for hw_start: int_key != 0 for a deprecated integer key, else str_key. */
typedef struct hw_prop {
  uint32_t int_key;
  const char *str_key;
  bool is_string;
  uint32_t uint_value;
  const char *str_value;
} hw_prop_t;

#define HW_PROP_INT(k, v) \
  { .int_key = (k), .uint_value = (v) }
#define HW_PROP_STRKEY_INT(k, v) \
  { .str_key = (k), .uint_value = (v) }
#define HW_PROP_STR(k, v) \
  { .str_key = (k), .is_string = true, .str_value = (v) }

/* An offer the node of a driver started with hw_start_driver received (DFv2 Offer): the
 * service, its instance (NULL: "default") and the node whose driver serves it. */
typedef struct hw_offer {
  const char *service;
  const char *instance;
  const char *source;
} hw_offer_t;

/* A driver to start with hw_start_driver. */
typedef struct hw_driver {
  const char *name;        /* the package: meta/<name>.json in package_dir */
  const char *package_dir; /* NULL: the build tree's, hw_package_dir(name) */
  const char *moniker;     /* the node */
  const hw_prop_t *props;  /* its properties */
  size_t prop_count;
  const hw_offer_t *offers; /* the offers it received (DriverStart.offered) */
  size_t offer_count;
  const char *program_extra; /* as hw_start's */
  /* Open no resource from the properties (as the agent treats a node a driver added): only
   * the manifest's are handed. */
  bool untrusted;
} hw_driver_t;

/* A reply received for a call. */
typedef struct hw_reply {
  dfnet_status_t code; /* the Reply's code */
  char message[512];
  bool end_of_stream;
  uint8_t *data; /* payload (malloc'd, NUL-terminated beyond size), NULL when empty */
  size_t size;
} hw_reply_t;

typedef struct hw_bench hw_bench_t;

/* Spawn a driver host, sandboxed (hw_bench_new) or not. NULL when it cannot. */
hw_bench_t *hw_bench_new(void);
hw_bench_t *hw_bench_new_sandbox(bool sandboxed);

/* Stop the driver host (its drivers stop) and free everything. */
void hw_bench_free(hw_bench_t *b);

/* Start package `name` (from $DFNET_BUILD_DIR/drivers/<name>) on node `moniker` with
 * these properties. `program_extra` (may be NULL) is a JSON object whose keys are merged
 * into the manifest's program block. The node's resources are opened as dfnet-host opens
 * them (host/supervisor/resources.h: the properties' files, and the manifest's
 * "resources", every one allowed) and handed with the DriverStart; one that cannot be
 * opened fails the start here, as at the agent, with its status and the reason
 * ("cannot open resource tty ...") in msg. Returns the driver host's status for
 * DriverStart (or that failure's); its message is copied to msg[cap] when msg != NULL. */
dfnet_status_t hw_start(hw_bench_t *b, const char *name, const char *moniker,
                        const hw_prop_t *props, size_t prop_count, const char *program_extra,
                        char *msg, size_t cap);

/* Start the driver *d (in the bench's one driver host: drivers started one after the
 * other share it, as colocated drivers do). Returns as hw_start. */
dfnet_status_t hw_start_driver(hw_bench_t *b, const hw_driver_t *d, char *msg, size_t cap);

/* Stop the driver on `moniker` (DriverStop); returns its status. */
dfnet_status_t hw_stop(hw_bench_t *b, const char *moniker);

/* The class name of the node the driver added under `moniker`, or NULL when none. */
const char *hw_child_class(hw_bench_t *b, const char *child_moniker);

/* The NodeAdd a driver sent for child `child_moniker` (waiting up to 1 s for it), or NULL.
 * Owned by the bench, valid until hw_bench_free. */
const dfnet_v1_NodeAdd *hw_child_node(hw_bench_t *b, const char *child_moniker);

/* How many NodeRemove the drivers sent for `moniker` so far. */
size_t hw_child_removed(hw_bench_t *b, const char *moniker);

/* A unary call: waits for the final reply into *out (free with hw_reply_free).
 * deadline_ms 0: none. Returns out->code. */
dfnet_status_t hw_call(hw_bench_t *b, const char *target, const char *method, const void *request,
                       size_t len, uint32_t deadline_ms, hw_reply_t *out);

/* Start a server-streaming call with `credit`; returns its id (0 on failure). */
uint64_t hw_call_start(hw_bench_t *b, const char *target, const char *method, const void *request,
                       size_t len, uint32_t credit);
/* The same, as made by `caller` (Call.caller, as the manager sets it). */
uint64_t hw_call_start_as(hw_bench_t *b, const char *caller, const char *target, const char *method,
                          const void *request, size_t len, uint32_t credit);

/* Who makes a call, as the hop that vouches for it sets it: Call.caller and
 * Call.caller_driver_url (a driver's call: its node's moniker and its URL; a client's: its
 * name and ""). */
typedef struct hw_caller {
  const char *name;
  const char *driver_url;
} hw_caller_t;

/* hw_call and hw_call_start as made by *who. */
dfnet_status_t hw_call_by(hw_bench_t *b, const hw_caller_t *who, const char *target,
                          const char *method, const void *request, size_t len, uint32_t deadline_ms,
                          hw_reply_t *out);
uint64_t hw_call_start_by(hw_bench_t *b, const hw_caller_t *who, const char *target,
                          const char *method, const void *request, size_t len, uint32_t credit);
/* The next reply of call `id` within timeout_ms: true and *out, or false on timeout. */
bool hw_next_reply(hw_bench_t *b, uint64_t id, uint32_t timeout_ms, hw_reply_t *out);
/* Give call `id` more credit / cancel it. */
void hw_credit(hw_bench_t *b, uint64_t id, uint32_t credit);
void hw_cancel(hw_bench_t *b, uint64_t id);

void hw_reply_free(hw_reply_t *r);

/* Everything the driver host wrote to stderr so far (its log and the drivers'), as a
 * malloc'd string. The log is also copied to the test's stderr by hw_bench_free. */
char *hw_bench_log(hw_bench_t *b);

/* Path of package `name`'s directory in the build tree (static buffer). */
const char *hw_package_dir(const char *name);

/* Make a package of test driver `so` (a file of $DFNET_BUILD_DIR/tests/drivers/, linked)
 * named `name` in a fresh directory beneath that one (mode 0755, a directory the sandboxed
 * driver host may read whatever the modes of the directories above the build), written
 * to dir[cap], its program.config object's members `config` (JSON text, "" for none). False
 * (the reason on stderr) when it cannot. Remove it with hw_test_package_remove. */
bool hw_test_package(char *dir, size_t cap, const char *name, const char *so, const char *config);
void hw_test_package_remove(const char *dir);

#endif /* DFNET_TESTS_DRIVERS_HW_HARNESS_H */
