/* A libumockdev testbed holding one recorded USB tree of tests/fixtures/usb/, for the
 * usb-device tests (run under umockdev-wrapper: the driver host they spawn inherits the
 * testbed through UMOCKDEV_DIR and LD_PRELOAD). */
#ifndef DFNET_TESTS_DRIVERS_HW_USB_TESTBED_H
#define DFNET_TESTS_DRIVERS_HW_USB_TESTBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <umockdev.h>

/* A testbed with fixtures/usb/<recording> and, when `ioctl_devnode` is not NULL, the
 * usbdevfs ioctls of fixtures/usb/<ioctl_file> replayed on that device node. NULL (with
 * the reason on stderr) when not under umockdev-wrapper or a file cannot be loaded. Create
 * it before spawning driver hosts; g_object_unref() it. */
UMockdevTestbed *usb_testbed_new(const char *recording, const char *ioctl_devnode,
                                 const char *ioctl_file);

/* Let the driver user into the testbed (a sandboxed driver host runs as that user:
 * tests/driver_user.h): its directories become readable, writable and passable by all (the
 * preload makes sockets there), its files and sockets readable and writable. usb_testbed_new does
 * it; call it again after adding to the testbed. Returns false (the reason on stderr) when a chmod
 * fails. */
bool usb_testbed_share(UMockdevTestbed *tb);

/* umockdev_testbed_add_from_string(tb, text) for the driver user: the add sends the devices'
 * "add" uevents itself, so a driver may open their files before a usb_testbed_share after it
 * could come; the files are therefore made under umask 0 (the caller's other threads must make
 * no file meanwhile), then the testbed is shared. Returns false (the reason on stderr) when
 * the add or a chmod fails. */
bool usb_testbed_add_shared(UMockdevTestbed *tb, const char *text);

/* Decode hex digits into out (at most cap bytes); returns the byte count. */
size_t usb_testbed_unhex(const char *hex, uint8_t *out, size_t cap);

#endif
