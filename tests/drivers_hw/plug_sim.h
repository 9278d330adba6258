/* plug_sim: a networked power plug on loopback for the power driver's tests — an HTTP/1.1
 * server on 127.0.0.1 (an ephemeral port) that answers the local APIs of Tasmota
 * (/cm?cmnd=Power<N>[%20On|%20Off]), Shelly Gen1 (/relay/<N>[?turn=on|off]) and Shelly Gen2
 * (/rpc/Switch.Set?id=<N>&on=true|false, /rpc/Switch.GetStatus?id=<N>) over one set of
 * relays (0..7), and records every request target in order. A mode makes it misbehave the
 * ways real plugs do. One thread serves one connection at a time; every function below
 * may be called from any thread.
 */
#ifndef DFNET_TESTS_DRIVERS_HW_PLUG_SIM_H
#define DFNET_TESTS_DRIVERS_HW_PLUG_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum plug_mode {
  PLUG_NORMAL,    /* as the real APIs */
  PLUG_SILENT,    /* accepts and reads the request, never answers */
  PLUG_ERROR_500, /* answers HTTP 500 */
  PLUG_GARBAGE,   /* answers 200 with a body that is not JSON */
  PLUG_STUCK,     /* accepts switches but the relays do not move */
} plug_mode_t;

typedef struct plug_sim plug_sim_t;

/* Called (on the plug's thread) when relay `relay` changes to `on`. */
typedef void (*plug_change_fn)(void *arg, unsigned relay, bool on);

/* Start a plug on 127.0.0.1; NULL when it cannot listen. on_change may be NULL. */
plug_sim_t *plug_sim_start(plug_change_fn on_change, void *arg);
/* The same on IPv4 address `addr` (a veth's, for agents in network namespaces). */
plug_sim_t *plug_sim_start_at(const char *addr, plug_change_fn on_change, void *arg);
/* Its port on 127.0.0.1. */
uint16_t plug_sim_port(const plug_sim_t *p);
void plug_sim_set_mode(plug_sim_t *p, plug_mode_t mode);
bool plug_sim_relay(plug_sim_t *p, unsigned relay);
void plug_sim_set_relay(plug_sim_t *p, unsigned relay, bool on);
/* The request targets received so far ("/cm?cmnd=Power1%20On"), joined with '\n', in a
 * malloc'd string; the log is emptied. */
char *plug_sim_take_log(plug_sim_t *p);
/* Stop the thread and free the plug. */
void plug_sim_stop(plug_sim_t *p);

#endif /* DFNET_TESTS_DRIVERS_HW_PLUG_SIM_H */
