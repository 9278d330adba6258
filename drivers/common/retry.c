/* drvkit retry: a driver's one-at-a-time retry timer (see retry.h). */
#include "drivers/common/retry.h"

static void retry_task(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  drvkit_retry_t *r = arg;
  r->armed = false;
  r->run(ctx);
}

void drvkit__retry_arm(dfnet_driver_t *driver, drvkit_retry_t *r) {
  if (!r->armed && dfnet_driver_post(driver, r->delay_ms, retry_task, r) == DFNET_STATUS_OK)
    r->armed = true;
}
