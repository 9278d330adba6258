/* usb-device: the fallback driver of every USB device (but hubs), the way Fuchsia's
 * usb-composite sits under vendor drivers: through libusb-1.0 it is the one process that
 * opens the device's usbfs file, serves the whole device to remote clients as
 * dfnet.hw.usb.Device (device.c) and each interface to the driver of that interface's child
 * node as dfnet.hw.usb.Interface (interface.c, stream.c); proto/dfnet/hw/usb.proto.
 *
 *   start  finds the device libusb sees at the node's bus and address ("dfnet.usb.BUS",
 *          "dfnet.usb.ADDRESS", checked against "dfnet.usb.PORT_PATH"), serves Device and
 *          Interface, publishes class "usb-device", and adds a child "ifc-NNN" per interface
 *          of the active configuration, offered dfnet.hw.usb.Interface, for a class or
 *          vendor driver to bind (properties: fuchsia.BIND_PROTOCOL INTERFACE, the device's
 *          VID/PID, the interface's class/subclass/protocol of setting 0, its number, and
 *          where it is: "dfnet.usb.BUS", "ADDRESS", "PORT_PATH", "CONFIGURATION" and the
 *          kernel's name "SYSFS_NAME" = "<port path>:<configuration>.<interface>"). The
 *          device is opened on the first request that needs it (strings, transfers), so a
 *          device the driver host may not open still serves its descriptors; the open's
 *          error goes to that request and names the device file ("dfnet.usb.DEVICE_FILE").
 *   prepare_stop  ends the ReadStream calls and joins their readers. (The manager stops
 *          the children's drivers before this one: DFv2 removal is bottom-up.)
 *   stop   releases what the children held (kernel drivers re-attached) and closes the
 *          device.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind/dfnet_usb.h"
#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/start.h"
#include "drivers/usb-device/usb_device.h"

/* ---- the interface children ---------------------------------------------------------------- */

static void child_added(dfnet_driver_t *driver, void *ctx, const char *name, dfnet_status_t status,
                        void *arg) {
  usb_dev_t *u = ctx;
  uint8_t x = (uint8_t)(uintptr_t)arg;
  if (status == DFNET_STATUS_OK)
    return;
  u->ifc[x].child = false;
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "interface child %s not added: %s", name,
                   dfnet_status_str(status));
}

/* Add the child of interface setting 0 `alt` (its number checked and recorded). */
static void add_child(usb_dev_t *u, const struct libusb_interface_descriptor *alt) {
  uint8_t x = alt->bInterfaceNumber;
  char name[16], sysfs_name[96];
  snprintf(name, sizeof name, "ifc-%03u", x);
  snprintf(sysfs_name, sizeof sysfs_name, "%s:%u.%u", u->port_path, u->config_value, x);
  const dfnet_node_property_t props[] = {
      {.int_key = DFNET_BIND_PROTOCOL, .value_uint = BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE},
      {.int_key = DFNET_BIND_USB_VID, .value_uint = u->vendor_id},
      {.int_key = DFNET_BIND_USB_PID, .value_uint = u->product_id},
      {.int_key = DFNET_BIND_USB_CLASS, .value_uint = alt->bInterfaceClass},
      {.int_key = DFNET_BIND_USB_SUBCLASS, .value_uint = alt->bInterfaceSubClass},
      {.int_key = DFNET_BIND_USB_PROTOCOL, .value_uint = alt->bInterfaceProtocol},
      {.int_key = DFNET_BIND_USB_INTERFACE_NUMBER, .value_uint = x},
      {.str_key = BIND_DFNET_USB_BUS, .value_uint = u->bus},
      {.str_key = BIND_DFNET_USB_ADDRESS, .value_uint = u->address},
      {.str_key = BIND_DFNET_USB_PORT_PATH,
       .type = DFNET_PROPERTY_STRING,
       .value_str = u->port_path},
      {.str_key = BIND_DFNET_USB_CONFIGURATION, .value_uint = u->config_value},
      {.str_key = BIND_DFNET_USB_SYSFS_NAME,
       .type = DFNET_PROPERTY_STRING,
       .value_str = sysfs_name},
  };
  const char *const offers[] = {USBDEV_INTERFACE_SERVICE};
  const dfnet_child_args_t args = {
      .name = name,
      .properties = props,
      .property_count = sizeof props / sizeof props[0],
      .offers = offers,
      .offer_count = 1,
  };
  dfnet_status_t st = dfnet_driver_add_child(u->driver, &args, child_added, (void *)(uintptr_t)x);
  u->ifc[x].child = st == DFNET_STATUS_OK;
  if (st != DFNET_STATUS_OK)
    dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_WARN, "interface child %s not added: %s", name,
                     dfnet_status_str(st));
}

/* Record the interfaces of the active configuration and add a child per interface. */
static void add_children(usb_dev_t *u) {
  struct libusb_config_descriptor *c = NULL;
  int rc = libusb_get_active_config_descriptor(u->dev, &c);
  if (rc != 0) {
    /* An unconfigured device has no interfaces (USB 2.0 9.1.1.5). */
    dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_INFO,
                     "no active configuration (%s): no interface children", libusb_strerror(rc));
    return;
  }
  u->config_value = c->bConfigurationValue;
  for (int i = 0; i < c->bNumInterfaces; i++) {
    if (c->interface[i].num_altsetting < 1)
      continue;
    const struct libusb_interface_descriptor *alt = &c->interface[i].altsetting[0];
    uint8_t x = alt->bInterfaceNumber;
    if (x >= USBDEV_IFC_MAX || u->ifc[x].present) {
      dfnet_driver_log(u->driver, DFNET_DRIVER_LOG_WARN,
                       "configuration %u: interface %u %s; no child for it", u->config_value, x,
                       x >= USBDEV_IFC_MAX ? "is numbered over 31 (usbfs claims 0..31)"
                                           : "is listed twice");
      continue;
    }
    u->ifc[x] = (usbdev_ifc_t){.present = true, .owner = x};
    add_child(u, alt);
  }
  libusb_free_config_descriptor(c);
}

static void task_add_children(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  (void)arg;
  add_children(ctx);
}

/* ---- finding the device ---------------------------------------------------------------------- */

/* "<bus>-<port>.<port>..." of a device ("1-0" for a root hub), as host/enum/usb.c. */
static void port_path_of(libusb_device *dev, char *out, size_t cap) {
  uint8_t ports[8];
  int n = libusb_get_port_numbers(dev, ports, 8);
  int o = snprintf(out, cap, "%u-", libusb_get_bus_number(dev));
  if (n <= 0)
    snprintf(out + o, cap - (size_t)o, "0");
  for (int i = 0; i < n && (size_t)o < cap; i++)
    o += snprintf(out + o, cap - (size_t)o, i == 0 ? "%u" : ".%u", ports[i]);
}

/* Find the node's device among libusb's; a reference is taken. */
static dfnet_status_t find_device(usb_dev_t *u, const char *want_port, char *why, size_t cap) {
  libusb_device **list = NULL;
  ssize_t n = libusb_get_device_list(u->usb, &list);
  if (n < 0) {
    snprintf(why, cap, "cannot list USB devices: %s", libusb_strerror((int)n));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  for (ssize_t i = 0; i < n && u->dev == NULL; i++) {
    if (libusb_get_bus_number(list[i]) == u->bus &&
        libusb_get_device_address(list[i]) == u->address)
      u->dev = libusb_ref_device(list[i]);
  }
  libusb_free_device_list(list, 1);
  if (u->dev == NULL) {
    snprintf(why, cap, "no USB device at bus %u address %u (unplugged?)", u->bus, u->address);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  port_path_of(u->dev, u->port_path, sizeof u->port_path);
  struct libusb_device_descriptor d;
  if (want_port != NULL && strcmp(want_port, u->port_path) != 0) {
    snprintf(why, cap,
             "the device at bus %u address %u is at port %s, not %.32s: the node "
             "is stale (re-plugged?)",
             u->bus, u->address, u->port_path, want_port);
  } else if (libusb_get_device_descriptor(u->dev, &d) != 0) {
    snprintf(why, cap, "the device at bus %u address %u has no device descriptor", u->bus,
             u->address);
  } else {
    u->vendor_id = d.idVendor;
    u->product_id = d.idProduct;
    return DFNET_STATUS_OK;
  }
  libusb_unref_device(u->dev);
  u->dev = NULL;
  return DFNET_STATUS_FAILED_PRECONDITION;
}

/* The node's location properties into *u. False (logged) when it is not a USB device node
 * published by dfnet-host. */
static bool read_node(dfnet_driver_t *driver, usb_dev_t *u) {
  if (!drvkit__prop_uint(driver, 0, BIND_DFNET_USB_BUS, &u->bus) ||
      !drvkit__prop_uint(driver, 0, BIND_DFNET_USB_ADDRESS, &u->address)) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "the node lacks \"dfnet.usb.BUS\" / \"dfnet.usb.ADDRESS\": not a USB "
                     "device published by dfnet-host");
    return false;
  }
  const char *sysfs_name = drvkit__prop_string(driver, BIND_DFNET_USB_SYSFS_NAME);
  if (sysfs_name != NULL && strchr(sysfs_name, '/') == NULL)
    snprintf(u->sysfs_name, sizeof u->sysfs_name, "%s", sysfs_name);
  const char *file = drvkit__prop_string(driver, BIND_DFNET_USB_DEVICE_FILE);
  if (file != NULL)
    snprintf(u->device_file, sizeof u->device_file, "%s", file);
  else
    snprintf(u->device_file, sizeof u->device_file, "/dev/bus/usb/%03u/%03u", u->bus, u->address);
  u->moniker = dfnet_driver_node_moniker(driver);
  return true;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static dfnet_status_t usb_device_start(dfnet_driver_t *driver, void *ctx) {
  usb_dev_t *u = ctx;
  char why[400];
  u->driver = driver;
  if (!read_node(driver, u))
    return DFNET_STATUS_FAILED_PRECONDITION;
  int rc = libusb_init(&u->usb);
  if (rc != 0) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "libusb_init: %s", libusb_strerror(rc));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  dfnet_status_t st =
      find_device(u, drvkit__prop_string(driver, BIND_DFNET_USB_PORT_PATH), why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    goto exit_libusb;
  }
  st = drvkit__serve(driver, "dfnet.hw.usb.Device", usbdev__device_methods,
                     usbdev__device_method_count, "usb-device");
  if (st != DFNET_STATUS_OK)
    goto unref_device;
  st = dfnet_driver_serve(driver, USBDEV_INTERFACE_SERVICE, usbdev__interface_methods,
                          usbdev__interface_method_count);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "cannot serve %s: %s",
                     USBDEV_INTERFACE_SERVICE, dfnet_status_str(st));
    goto unref_device;
  }
  if (access(u->device_file, R_OK | W_OK) != 0)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN,
                     "%s is not readable and writable by this process: descriptors are served, "
                     "transfers will fail PERMISSION_DENIED",
                     u->device_file);
  /* The children come once the manager knows this driver runs (the start reply travels
   * first), so that their drivers can join this driver host (colocate). */
  if (dfnet_driver_post(driver, 0, task_add_children, NULL) != DFNET_STATUS_OK)
    add_children(u);
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO,
                   "serving USB device %04x:%04x at %s (bus %u address %u, %s)", u->vendor_id,
                   u->product_id, u->port_path, u->bus, u->address, u->device_file);
  return DFNET_STATUS_OK;

unref_device:
  libusb_unref_device(u->dev);
exit_libusb:
  libusb_exit(u->usb);
  return st;
}

static void usb_device_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  usb_dev_t *u = ctx;
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "stopping: USB device %s (bus %u address %u)",
                   u->port_path, u->bus, u->address);
  usbdev__streams_join(u);
}

static void usb_device_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  usb_dev_t *u = ctx;
  usbdev__release_all(u);
  if (u->h != NULL)
    libusb_close(u->h);
  libusb_unref_device(u->dev);
  libusb_exit(u->usb);
}

DFNET_DRIVER("usb-device", usb_dev_t, .start = usb_device_start,
             .prepare_stop = usb_device_prepare_stop, .stop = usb_device_stop);
