/* The serial driver's tty side (the tty backend, tty.c): finding the kernel's tty of a
 * node, opening it in raw mode, and line settings through termios(3) (POSIX "General
 * Terminal Interface"; Linux termios(3), tty_ioctl(4)).
 */
#ifndef DFNET_DRIVERS_SERIAL_PORT_H
#define DFNET_DRIVERS_SERIAL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "dfnet/hw/serial.pb.h"

/* The device file of the node's tty in out[cap]: the "dfnet.platform.TTY" property of a
 * board-file device (an absolute path).
 * Returns OK; FAILED_PRECONDITION with the reason in why[why_cap] (no such property, not an
 * absolute path). */
dfnet_status_t serial__find_tty(const dfnet_driver_t *driver, char *out, size_t cap, char *why,
                                size_t why_cap) __attribute__((warn_unused_result));

/* Open the tty (read/write, non-blocking, not as controlling terminal) and put it in raw
 * mode (no echo, no line editing, no translation, CLOCAL | CREAD, VMIN 1) keeping its
 * speed, character size, parity, stop bits and flow control. Returns the fd, or -1 with
 * errno set and the reason in why. */
int serial__open_raw(const char *tty, char *why, size_t cap);

/* Apply *want (zero fields: the defaults 115200 8N1, no flow control) to fd and read back
 * what the kernel keeps into *got. Returns OK; INVALID_ARGUMENT (a value termios does not
 * have; reason in why); UNAVAILABLE (tcgetattr/tcsetattr failed: errno in why). */
dfnet_status_t serial__configure(int fd, const dfnet_hw_serial_Config *want,
                                 dfnet_hw_serial_Config *got, char *why, size_t cap)
    __attribute__((warn_unused_result));

#endif /* DFNET_DRIVERS_SERIAL_PORT_H */
