/* USB devices through libusb-1.0, with hot-plug (issue 6 "Enumerators"; libusb's hotplug
 * API, libusb/hotplug.c; USB 2.0 spec ch. 9 for the descriptors).
 *
 * Nodes, for every device libusb reports (root hubs included), one per device as
 * Fuchsia's USB bus publishes them (its interfaces are the business of the driver bound to
 * the device: usb-device adds a child per interface, drivers/usb-device):
 *
 *   usb                          the bus node (owned)
 *   usb.<BBB>_<DDD>              bus number, device address (3 decimal digits each)
 *     fuchsia.BIND_PROTOCOL      = fuchsia.usb.BIND_PROTOCOL.DEVICE
 *     fuchsia.BIND_USB_VID/PID   = idVendor / idProduct
 *     fuchsia.BIND_USB_CLASS/SUBCLASS/PROTOCOL = bDeviceClass/SubClass/Protocol
 *     "dfnet.usb.BUS", "dfnet.usb.ADDRESS" (uint)
 *     "dfnet.usb.PORT_PATH"      = "<bus>-<port>.<port>..." ("1-1.2"; a root hub "1-0")
 *     "dfnet.usb.SYSFS_NAME"     = the kernel's name of the device ("1-1.2"; root hub "usb1")
 *     "dfnet.usb.DEVICE_FILE"    = its usbfs device file, "/dev/bus/usb/<BBB>/<DDD>" (the
 *                                  file libusb opens for the driver; the enumerator reads
 *                                  sysfs only and opens no device)
 * A device that leaves is reported removed as "usb.<BBB>_<DDD>": the manager removes the
 * node's subtree with it, bottom-up (the interface children's drivers stop before the
 * device's).
 *
 * Threads. start() creates a libusb context, registers a hot-plug callback with
 * LIBUSB_HOTPLUG_ENUMERATE (libusb calls it at once for every present device) and reports
 * those devices on the caller's thread; then it starts the event thread, which runs
 * libusb_handle_events_timeout_completed() in a loop and reports arrivals and departures
 * from there. libusb's Linux backend learns of hot-plug from the udev monitor (or netlink)
 * on its own thread and wakes the event handler at once, so a plug or unplug reaches the
 * sink within a few milliseconds. The hot-plug callback only queues the device (with a
 * reference); descriptors are read after libusb returns, outside the callback (libusb
 * documents which calls are allowed inside one). stop() wakes the event thread with
 * libusb_interrupt_event_handler(), joins it, deregisters and frees everything.
 */
#include <inttypes.h>
#include <libusb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "lib/array.h"
#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "host/enum/enum.h"
#include "lib/log.h"

#define USB_LOG "enum.usb"

/* How long one libusb_handle_events call waits when nothing happens (also bounds how
 * late stop() would notice the quit flag if the interrupt were lost). */
#define USB_EVENT_WAIT_MS 250

/* A hot-plug event waiting to be reported (queued by the callback). */
typedef struct usb_pending {
  libusb_device *dev; /* one reference held */
  libusb_hotplug_event event;
  struct usb_pending *next, *prev;
} usb_pending_t;

/* A device reported to the sink and not yet removed. */
typedef struct usb_published {
  libusb_device *dev; /* one reference held */
  uint8_t bus, address;
} usb_published_t;

typedef struct usb_priv {
  libusb_context *ctx;
  libusb_hotplug_callback_handle callback;
  bool callback_registered;
  pthread_t thread;
  bool thread_started;
  atomic_bool quit;
  pthread_mutex_t lock; /* guards the pending queue */
  bool lock_ready;
  usb_pending_t *pending; /* utlist DL, oldest first */
  bool queue_failed;      /* an allocation failed in the callback; logged once per drain */
  /* Touched only by drain(), which runs on one thread at a time (start's, then the
   * event thread's). */
  usb_published_t *published;
  size_t published_count, published_cap;
  dfnet_v1_NodeAdd node; /* scratch for building nodes (large; kept off the stack) */
} usb_priv_t;

static int LIBUSB_CALL on_hotplug(libusb_context *ctx, libusb_device *dev,
                                  libusb_hotplug_event event, void *user_data) {
  (void)ctx;
  usb_priv_t *priv = user_data;
  usb_pending_t *p = malloc(sizeof(*p));
  pthread_mutex_lock(&priv->lock);
  if (p == NULL) {
    priv->queue_failed = true;
  } else {
    p->dev = libusb_ref_device(dev);
    p->event = event;
    DL_APPEND(priv->pending, p);
  }
  pthread_mutex_unlock(&priv->lock);
  return 0; /* keep the callback registered */
}

/* "1-1.2" (or "1-0" for a root hub) in buf; returns the number of ports. */
static int port_path(libusb_device *dev, char *buf, size_t cap) {
  uint8_t ports[8];
  int n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
  size_t len = (size_t)snprintf(buf, cap, "%u-", libusb_get_bus_number(dev));
  if (n <= 0) {
    snprintf(buf + len, cap - len, "0");
    return 0;
  }
  for (int i = 0; i < n && len < cap; i++) {
    len += (size_t)snprintf(buf + len, cap - len, i == 0 ? "%u" : ".%u", ports[i]);
  }
  return n;
}

/* Where the device is: bus, address, port path, the kernel's name, the device file. */
static dfnet_status_t add_location(dfnet_v1_NodeAdd *node, uint8_t bus, uint8_t address,
                                   const char *path, const char *sysfs_name) {
  char device_file[32];
  snprintf(device_file, sizeof(device_file), "/dev/bus/usb/%03u/%03u", bus, address);
  dfnet_status_t s = enum__prop_int(node, 0, DFNET_ENUM_KEY_USB_BUS, bus);
  if (s == DFNET_STATUS_OK) {
    s = enum__prop_int(node, 0, DFNET_ENUM_KEY_USB_ADDRESS, address);
  }
  if (s == DFNET_STATUS_OK) {
    s = enum__prop_str(node, 0, DFNET_ENUM_KEY_USB_PORT_PATH, path);
  }
  if (s == DFNET_STATUS_OK) {
    s = enum__prop_str(node, 0, DFNET_ENUM_KEY_USB_SYSFS_NAME, sysfs_name);
  }
  if (s == DFNET_STATUS_OK) {
    s = enum__prop_str(node, 0, DFNET_ENUM_KEY_USB_DEVICE_FILE, device_file);
  }
  return s;
}

static dfnet_status_t add_ints(dfnet_v1_NodeAdd *node, const uint32_t (*kv)[2], size_t n) {
  dfnet_status_t s = DFNET_STATUS_OK;
  for (size_t i = 0; s == DFNET_STATUS_OK && i < n; i++) {
    s = enum__prop_int(node, kv[i][0], NULL, kv[i][1]);
  }
  return s;
}

static ssize_t find_published(const usb_priv_t *priv, libusb_device *dev) {
  for (size_t i = 0; i < priv->published_count; i++) {
    if (priv->published[i].dev == dev) {
      return (ssize_t)i;
    }
  }
  return -1;
}

static void device_arrived(dfnet_enum_t *e, usb_priv_t *priv, libusb_device *dev) {
  uint8_t bus = libusb_get_bus_number(dev);
  uint8_t address = libusb_get_device_address(dev);
  char dev_name[16], path[64], sysfs_name[64];
  snprintf(dev_name, sizeof(dev_name), "%03u_%03u", bus, address);
  if (find_published(priv, dev) >= 0) {
    return; /* ENUMERATE and a racing arrival can both report it */
  }
  for (size_t i = 0; i < priv->published_count; i++) {
    if (priv->published[i].bus == bus && priv->published[i].address == address) {
      /* The same address for a new device: the old one left without an event. */
      DFNET_LOGW(USB_LOG, dev_name, "replaces a device whose departure was not seen");
      char old[32];
      snprintf(old, sizeof(old), "usb.%s", dev_name);
      enum__node_removed(e, old);
      libusb_unref_device(priv->published[i].dev);
      priv->published[i] = priv->published[--priv->published_count];
      break;
    }
  }
  struct libusb_device_descriptor desc;
  int r = libusb_get_device_descriptor(dev, &desc);
  if (r != LIBUSB_SUCCESS) {
    DFNET_LOGW(USB_LOG, dev_name, "no device descriptor (%s); not published", libusb_error_name(r));
    return;
  }
  usb_published_t *grown = dfnet_array_grow(priv->published, priv->published_count,
                                            &priv->published_cap, sizeof *grown, 16);
  if (grown == NULL) {
    DFNET_LOGE(USB_LOG, dev_name, "out of memory; device not published");
    return;
  }
  priv->published = grown;
  int ports = port_path(dev, path, sizeof(path));
  if (ports == 0) {
    snprintf(sysfs_name, sizeof(sysfs_name), "usb%u", bus);
  } else {
    snprintf(sysfs_name, sizeof(sysfs_name), "%s", path);
  }
  dfnet_v1_NodeAdd *node = &priv->node;
  const uint32_t ints[][2] = {
      {DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_DEVICE},
      {DFNET_BIND_USB_VID, desc.idVendor},
      {DFNET_BIND_USB_PID, desc.idProduct},
      {DFNET_BIND_USB_CLASS, desc.bDeviceClass},
      {DFNET_BIND_USB_SUBCLASS, desc.bDeviceSubClass},
      {DFNET_BIND_USB_PROTOCOL, desc.bDeviceProtocol},
  };
  dfnet_status_t s = enum__node_init(node, "usb", dev_name);
  if (s == DFNET_STATUS_OK) {
    s = add_ints(node, ints, sizeof(ints) / sizeof(ints[0]));
  }
  if (s == DFNET_STATUS_OK) {
    s = add_location(node, bus, address, path, sysfs_name);
  }
  if (s != DFNET_STATUS_OK) {
    DFNET_LOGW(USB_LOG, dev_name, "cannot describe the device (%s); not published",
               dfnet_status_str(s));
    return;
  }
  DFNET_LOGI(USB_LOG, dev_name, "arrived: %04x:%04x at %s", desc.idVendor, desc.idProduct, path);
  enum__node_added(e, node);
  priv->published[priv->published_count++] =
      (usb_published_t){.dev = libusb_ref_device(dev), .bus = bus, .address = address};
}

static void device_left(dfnet_enum_t *e, usb_priv_t *priv, libusb_device *dev) {
  ssize_t i = find_published(priv, dev);
  if (i < 0) {
    return; /* never published (e.g. its descriptor could not be read) */
  }
  usb_published_t gone = priv->published[i];
  priv->published[i] = priv->published[--priv->published_count];
  char moniker[32];
  snprintf(moniker, sizeof(moniker), "usb.%03u_%03u", gone.bus, gone.address);
  DFNET_LOGI(USB_LOG, moniker + 4, "left");
  enum__node_removed(e, moniker);
  libusb_unref_device(gone.dev);
}

/* Report every queued event (report == false: just drop them). */
static void drain(dfnet_enum_t *e, usb_priv_t *priv, bool report) {
  for (;;) {
    pthread_mutex_lock(&priv->lock);
    usb_pending_t *p = priv->pending;
    bool failed = priv->queue_failed;
    priv->queue_failed = false;
    if (p != NULL) {
      DL_DELETE(priv->pending, p);
    }
    pthread_mutex_unlock(&priv->lock);
    if (failed) {
      DFNET_LOGE(USB_LOG, NULL, "out of memory queueing a hot-plug event; one was lost");
    }
    if (p == NULL) {
      return;
    }
    if (report) {
      if (p->event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED) {
        device_arrived(e, priv, p->dev);
      } else {
        device_left(e, priv, p->dev);
      }
    }
    libusb_unref_device(p->dev);
    free(p);
  }
}

static void *event_thread(void *arg) {
  dfnet_enum_t *e = arg;
  usb_priv_t *priv = enum__priv(e);
  while (!atomic_load(&priv->quit)) {
    struct timeval tv = {.tv_sec = 0, .tv_usec = USB_EVENT_WAIT_MS * 1000};
    int r = libusb_handle_events_timeout_completed(priv->ctx, &tv, NULL);
    if (r != LIBUSB_SUCCESS && r != LIBUSB_ERROR_INTERRUPTED) {
      DFNET_LOGW(USB_LOG, NULL, "libusb event handling: %s", libusb_error_name(r));
    }
    if (!atomic_load(&priv->quit)) {
      drain(e, priv, true);
    }
  }
  return NULL;
}

/* Release everything start() acquired, in reverse order. Reports nothing. */
static void usb_release(dfnet_enum_t *e) {
  usb_priv_t *priv = enum__priv(e);
  if (priv->thread_started) {
    atomic_store(&priv->quit, true);
    libusb_interrupt_event_handler(priv->ctx);
    pthread_join(priv->thread, NULL);
    priv->thread_started = false;
  }
  if (priv->callback_registered) {
    libusb_hotplug_deregister_callback(priv->ctx, priv->callback);
    priv->callback_registered = false;
  }
  if (priv->lock_ready) {
    drain(e, priv, false);
  }
  for (size_t i = 0; i < priv->published_count; i++) {
    libusb_unref_device(priv->published[i].dev);
  }
  free(priv->published);
  priv->published = NULL;
  priv->published_count = priv->published_cap = 0;
  if (priv->ctx != NULL) {
    libusb_exit(priv->ctx);
    priv->ctx = NULL;
  }
  if (priv->lock_ready) {
    pthread_mutex_destroy(&priv->lock);
    priv->lock_ready = false;
  }
}

static dfnet_status_t usb_start(dfnet_enum_t *e) {
  usb_priv_t *priv = enum__priv(e);
  int r = libusb_init(&priv->ctx);
  if (r != LIBUSB_SUCCESS) {
    priv->ctx = NULL;
    DFNET_LOGW(USB_LOG, NULL,
               "USB enumeration off: libusb_init: %s (no USB on this "
               "machine?); nothing published",
               libusb_error_name(r));
    return DFNET_STATUS_OK;
  }
  if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
    DFNET_LOGW(USB_LOG, NULL,
               "USB enumeration off: this libusb has no hot-plug support; "
               "nothing published");
    libusb_exit(priv->ctx);
    priv->ctx = NULL;
    return DFNET_STATUS_OK;
  }
  if (pthread_mutex_init(&priv->lock, NULL) != 0) {
    DFNET_LOGE(USB_LOG, NULL, "cannot create a mutex");
    libusb_exit(priv->ctx);
    priv->ctx = NULL;
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  priv->lock_ready = true;
  dfnet_status_t status = enum__publish_bus(e, "usb");
  if (status != DFNET_STATUS_OK) {
    goto release;
  }
  r = libusb_hotplug_register_callback(
      priv->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
      LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
      LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, priv, &priv->callback);
  if (r != LIBUSB_SUCCESS) {
    DFNET_LOGE(USB_LOG, NULL, "libusb_hotplug_register_callback: %s", libusb_error_name(r));
    status = DFNET_STATUS_INTERNAL;
    goto release;
  }
  priv->callback_registered = true;
  drain(e, priv, true); /* the devices present now, on the caller's thread */
  DFNET_LOGI(USB_LOG, NULL, "%zu USB devices at start; watching for hot-plug",
             priv->published_count);
  atomic_store(&priv->quit, false);
  r = pthread_create(&priv->thread, NULL, event_thread, e);
  if (r != 0) {
    DFNET_LOGE(USB_LOG, NULL, "cannot start the USB event thread: %s", strerror(r));
    status = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto release;
  }
  priv->thread_started = true;
  return DFNET_STATUS_OK;

release:
  usb_release(e);
  return status;
}

static void usb_stop(dfnet_enum_t *e) { usb_release(e); }

static const dfnet_enum_ops_t usb_ops = {
    .name = "usb",
    .priv_size = sizeof(usb_priv_t),
    .start = usb_start,
    .stop = usb_stop,
    .destroy = NULL, /* stop (always run by destroy after a start) frees everything */
};

dfnet_status_t dfnet_enum_usb_new(dfnet_enum_t **out) {
  dfnet_enum_t *e = enum__new(&usb_ops);
  if (e == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *out = e;
  return DFNET_STATUS_OK;
}
