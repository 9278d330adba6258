/* power_switch: one power switch as the power driver reaches it — which backend speaks to
 * it, where it is, which of its relays — and the backends: networked plugs over HTTP
 * (Tasmota, Shelly Gen1, Shelly Gen2; backend_http.c) and external commands
 * (backend_command.c, as labgrid's ExternalPowerDriver).
 *
 * Every backend function blocks the calling thread (the driver's worker) for at most
 * timeout_ms, returns early when *sw->abort becomes true, and says what went wrong in
 * why[why_size], naming the switch's address.
 */
#ifndef DFNET_DRIVERS_POWER_SWITCH_H
#define DFNET_DRIVERS_POWER_SWITCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "dfnet/status.h"
#include "drivers/power/http_get.h"

/* The node properties a board file's "power" resource becomes (host/enum/board_device.c; the bind
 * library dfnet.platform). */
#define POWER_PROP_BACKEND "dfnet.platform.POWER_BACKEND" /* string: a backend's name */
#define POWER_PROP_ADDRESS "dfnet.platform.POWER_ADDRESS" /* string: HTTP backends' address */
#define POWER_PROP_INDEX "dfnet.platform.POWER_INDEX"     /* uint: the relay */
#define POWER_PROP_ON "dfnet.platform.POWER_ON"           /* string: command backend's commands */
#define POWER_PROP_OFF "dfnet.platform.POWER_OFF"
#define POWER_PROP_GET "dfnet.platform.POWER_GET"

/* The switch's state; the values of dfnet.hw.power.State (power.proto). */
typedef enum power_state { POWER_UNKNOWN = 0, POWER_ON = 1, POWER_OFF = 2 } power_state_t;

typedef struct power_backend power_backend_t;

/* One switch. Filled by the driver's start from the node's properties; read-only after. */
typedef struct power_switch {
  const power_backend_t *backend;
  char address[280];  /* for messages and PowerState.address */
  http_url_t url;     /* HTTP backends: the parsed "dfnet.platform.POWER_ADDRESS" */
  uint32_t index;     /* the relay ("dfnet.platform.POWER_INDEX", else the backend's default) */
  const char *cmd_on; /* command backend: the commands (node properties, valid until stop) */
  const char *cmd_off;
  const char *cmd_get;      /* NULL: the state is STATE_UNKNOWN */
  const atomic_bool *abort; /* the driver is stopping: end what runs */
} power_switch_t;

struct power_backend {
  const char *name;       /* as "dfnet.platform.POWER_BACKEND" names it */
  uint32_t default_index; /* the relay when the board file gives none */
  bool http;              /* an address is required (an HTTP API) */
  /* Switch on (on = true) or off. Returns OK; UNAVAILABLE (no answer in time, an error
   * answer, an answer it cannot read, a failed command). */
  dfnet_status_t (*set)(const power_switch_t *sw, bool on, uint32_t timeout_ms, char *why,
                        size_t why_size);
  /* Read the state into *state. Returns as set. */
  dfnet_status_t (*get)(const power_switch_t *sw, power_state_t *state, uint32_t timeout_ms,
                        char *why, size_t why_size);
  const void *impl; /* the backend's own description (backend_http.c: its API's paths) */
};

extern const power_backend_t power_backend_tasmota;
extern const power_backend_t power_backend_shelly_gen1;
extern const power_backend_t power_backend_shelly_gen2;
extern const power_backend_t power_backend_command;

/* The backend named `name`, or NULL. */
const power_backend_t *power_backend_find(const char *name);

/* "on", "off" or "unknown". */
const char *power_state_str(power_state_t state);

/* Fill *sw from the node's properties (the POWER_PROP_* above), with `abort` as its abort
 * flag. Strings *sw points to are the driver host's, valid until `stop`. Returns OK;
 * FAILED_PRECONDITION with the reason in why (no or an unknown backend, an HTTP backend
 * without a valid address, a command backend without its on and off commands). Any
 * thread. */
dfnet_status_t power_switch_from_node(const dfnet_driver_t *driver, const atomic_bool *abort,
                                      power_switch_t *sw, char *why, size_t why_size);

#endif /* DFNET_DRIVERS_POWER_SWITCH_H */
