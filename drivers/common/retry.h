/* drvkit retry: a timer that runs a driver's function again after a delay, armed at most
 * once at a time: how a driver polls a device that is not ready without blocking its
 * dispatcher (drivers/README.md: virtio-rng reads, serial writes and stream flushes).
 *
 * The timer lives in the driver's context, which it names as the task's argument: the
 * context outlives every task (the driver host frees it after `stop`, and a task still
 * waiting when the dispatcher shuts down is dropped, include/dfnet/driver.h). A dropped
 * run is the driver's to make up for in `stop` (end the calls that waited).
 */
#ifndef DFNET_DRIVERS_RETRY_H
#define DFNET_DRIVERS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "dfnet/driver.h"

typedef struct drvkit_retry {
  void (*run)(void *ctx); /* on the default dispatcher; ctx: the driver's context */
  uint32_t delay_ms;
  bool armed; /* a run is queued (dispatcher only) */
} drvkit_retry_t;

/* Queue r->run(ctx) on the driver's default dispatcher r->delay_ms from now, unless a run
 * is queued already (it clears `armed` before calling run, which may arm again). When the
 * dispatcher is shutting down nothing is queued. Dispatcher only. */
void drvkit__retry_arm(dfnet_driver_t *driver, drvkit_retry_t *r);

#endif /* DFNET_DRIVERS_RETRY_H */
