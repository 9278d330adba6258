/* pci-config: the fallback driver of every PCI function; serves the function's
 * configuration space as dfnet.hw.pci.Config (proto/dfnet/hw/pci.proto).
 *
 * The kernel exposes configuration space as the sysfs attribute <function>/config
 * (Documentation/ABI/testing/sysfs-bus-pci): 256 bytes for conventional PCI, 4096 for
 * PCI Express; its size is the file's size. Reads go through the kernel's config
 * accessors, so they are safe while a kernel driver owns the function; a reader without
 * CAP_SYS_ADMIN gets only the first 64 bytes (the standard header), which the driver
 * reports as PERMISSION_DENIED rather than returning short data.
 *
 *   start   takes <dfnet.pci.SYSFS_PATH>/config, which dfnet-host opened and handed as the
 *           resource "config" (include/dfnet/driver.h "Resources"; the driver opens
 *           nothing), checks its size, publishes class "pci", serves Config. A node without
 *           that resource fails start with the reason (dfnet-host fails it first when the
 *           file cannot be opened).
 *   Read    bounds-checks offset/length against the file size and preads. A pread never
 *           blocks for long (the kernel reads the hardware registers), so the handler
 *           runs on the dispatcher directly.
 *
 * Node properties read: "dfnet.pci.SYSFS_PATH" (host/enum/pci.c), for messages. Resources:
 * "config" (the driver host's descriptor: never closed here).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dfnet/driver.h"
#include "dfnet/hw/pci.pb.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/start.h"

#define PCI_READ_MAX 4096u /* Config.Read's bound on length (pci.options) */

typedef struct pci_config {
  char path[4096]; /* <function>/config */
  int fd;          /* the resource "config" */
  uint32_t size;   /* bytes of configuration space the kernel exposes */
} pci_config_t;

/* /dfnet.hw.pci.Config/Read */
static void config_read(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  pci_config_t *pci = ctx;
  dfnet_hw_pci_ReadRequest req = dfnet_hw_pci_ReadRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_pci_ReadRequest_fields, &req, request, len))
    return;
  if (req.length == 0 || req.length > PCI_READ_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "length %u: must be 1..%u bytes", req.length,
                 PCI_READ_MAX);
    return;
  }
  if (req.offset >= pci->size || req.length > pci->size - req.offset) {
    drvkit__fail(call, DFNET_STATUS_OUT_OF_RANGE,
                 "bytes %u..%llu are outside the %u bytes of configuration space", req.offset,
                 (unsigned long long)req.offset + req.length - 1, pci->size);
    return;
  }
  dfnet_hw_pci_ReadReply reply = dfnet_hw_pci_ReadReply_init_zero;
  ssize_t n;
  do
    n = pread(pci->fd, reply.data.bytes, req.length, req.offset);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    dfnet_status_t st = drvkit__status_from_errno(err);
    drvkit__fail(call, st == DFNET_STATUS_INVALID_ARGUMENT ? DFNET_STATUS_UNAVAILABLE : st,
                 "reading %s: %s", pci->path, strerror(err));
    return;
  }
  if ((size_t)n < req.length) {
    /* The kernel cut the read: only the first 64 bytes without CAP_SYS_ADMIN. */
    drvkit__fail(call, DFNET_STATUS_PERMISSION_DENIED,
                 "%s gave %zd of %u bytes at offset %u: configuration space past the "
                 "standard header needs CAP_SYS_ADMIN",
                 pci->path, n, req.length, req.offset);
    return;
  }
  reply.data.size = (pb_size_t)n;
  reply.size = pci->size;
  drvkit__reply(call, dfnet_hw_pci_ReadReply_fields, &reply);
}

static dfnet_status_t pci_config_start(dfnet_driver_t *driver, void *ctx) {
  pci_config_t *pci = ctx;
  pci->fd = -1;
  const char *sysfs_path = drvkit__pci_sysfs_path(driver);
  if (sysfs_path == NULL)
    return DFNET_STATUS_FAILED_PRECONDITION;
  if ((size_t)snprintf(pci->path, sizeof pci->path, "%s/config", sysfs_path) >= sizeof pci->path) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "dfnet.pci.SYSFS_PATH is too long");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  pci->fd = drvkit__resource(driver, "config", "a PCI function's \"dfnet.pci.SYSFS_PATH\"");
  if (pci->fd < 0)
    return DFNET_STATUS_FAILED_PRECONDITION;
  struct stat sb;
  if (fstat(pci->fd, &sb) != 0) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s: fstat: %s", pci->path, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (sb.st_size < 64 || sb.st_size > 4096) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "%s is %lld bytes: not a PCI configuration space (64..4096)", pci->path,
                     (long long)sb.st_size);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  pci->size = (uint32_t)sb.st_size;
  static const dfnet_method_t methods[] = {{.name = "Read", .handler = config_read}};
  if (drvkit__serve(driver, "dfnet.hw.pci.Config", methods, 1, "pci") != DFNET_STATUS_OK)
    return DFNET_STATUS_FAILED_PRECONDITION;
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving %u bytes of %s", pci->size, pci->path);
  return DFNET_STATUS_OK;
}

DFNET_DRIVER("pci-config", pci_config_t, .start = pci_config_start);
