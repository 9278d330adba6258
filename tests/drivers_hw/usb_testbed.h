/* A libumockdev testbed holding one recorded USB tree of tests/fixtures/usb/, for the
 * usb-device tests (run under umockdev-wrapper: the driver host they spawn inherits the
 * testbed through UMOCKDEV_DIR and LD_PRELOAD). */
#ifndef DFNET_TESTS_DRIVERS_HW_USB_TESTBED_H
#define DFNET_TESTS_DRIVERS_HW_USB_TESTBED_H

#include <stddef.h>
#include <stdint.h>

#include <umockdev.h>

/* A testbed with fixtures/usb/<recording> and, when `ioctl_devnode` is not NULL, the
 * usbdevfs ioctls of fixtures/usb/<ioctl_file> replayed on that device node. NULL (with
 * the reason on stderr) when not under umockdev-wrapper or a file cannot be loaded. Create
 * it before spawning driver hosts; g_object_unref() it. */
UMockdevTestbed *usb_testbed_new(const char *recording, const char *ioctl_devnode,
                                 const char *ioctl_file);

/* Decode hex digits into out (at most cap bytes); returns the byte count. */
size_t usb_testbed_unhex(const char *hex, uint8_t *out, size_t cap);

#endif
