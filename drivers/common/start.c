/* drvkit start: steps the drivers' start hooks share (see start.h). */
#include "drivers/common/start.h"

#include "bind/dfnet_pci.h"
#include "drivers/common/drvkit.h"

const char *drvkit__pci_sysfs_path(dfnet_driver_t *driver) {
  const char *sysfs_path = drvkit__prop_string(driver, BIND_DFNET_PCI_SYSFS_PATH);
  if (sysfs_path == NULL)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "the node has no \"dfnet.pci.SYSFS_PATH\" property: not a PCI function "
                     "published by dfnet-host");
  return sysfs_path;
}

dfnet_status_t drvkit__serve(dfnet_driver_t *driver, const char *service,
                             const dfnet_method_t *methods, size_t count, const char *class_name) {
  dfnet_status_t st = dfnet_driver_serve(driver, service, methods, count);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "cannot serve %s: %s", service,
                     dfnet_status_str(st));
    return st;
  }
  (void)drvkit__publish_class(driver, class_name);
  return DFNET_STATUS_OK;
}
