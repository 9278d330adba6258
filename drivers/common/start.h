/* drvkit start: the steps of a driver's `start` hook that several drivers here take the
 * same way (drivers/README.md "How these drivers are written"), linked statically into
 * each driver .so like the rest of drvkit.
 *
 * Both run on the default dispatcher, in `start`, and log what went wrong on the driver's
 * log themselves (the reason the manager then shows on the node).
 */
#ifndef DFNET_DRIVERS_START_H
#define DFNET_DRIVERS_START_H

#include <stddef.h>

#include "dfnet/driver.h"

/* The sysfs directory of the node's PCI function: its "dfnet.pci.SYSFS_PATH" property
 * (host/enum/pci.c). NULL, logged at error, when the node has none: it is not a PCI
 * function dfnet-host published. Owned by the driver host, valid until `stop` returns. */
const char *drvkit__pci_sysfs_path(dfnet_driver_t *driver);

/* Serve `count` methods of `service` (dfnet_driver_serve; the table is copied), then
 * publish the driver's class `class_name` (drvkit__publish_class). Returns OK, or what
 * dfnet_driver_serve returned, logged at error ("cannot serve <service>: <status>"); the
 * class is then not published. */
dfnet_status_t drvkit__serve(dfnet_driver_t *driver, const char *service,
                             const dfnet_method_t *methods, size_t count, const char *class_name)
    __attribute__((warn_unused_result));

#endif /* DFNET_DRIVERS_START_H */
