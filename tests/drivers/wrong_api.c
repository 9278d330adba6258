/* wrong_api: a test driver built against another driver API version (issue 6 "Tests").
 * It spells out what DFNET_DRIVER_EXPORT would define, with the next version number, so
 * the driver host must refuse it with FAILED_PRECONDITION. */
#include "dfnet/driver.h"

static dfnet_status_t wrong_start(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  (void)ctx;
  return DFNET_STATUS_OK;
}

static const dfnet_driver_ops_t wrong_ops = {
    .api_version = DFNET_DRIVER_API_VERSION + 1,
    .name = "wrong-api",
    .start = wrong_start,
};

__attribute__((
    visibility("default"))) extern const dfnet_driver_registration_t dfnet_driver_registration;
const dfnet_driver_registration_t dfnet_driver_registration = {
    .api_version = DFNET_DRIVER_API_VERSION + 1, .ops = &wrong_ops};
