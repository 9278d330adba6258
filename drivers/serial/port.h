/* The serial driver's tty side (the tty backend, tty.c): the kernel's tty of a node (the
 * descriptor dfnet-host hands as resource "tty", named by the node's "dfnet.platform.TTY"),
 * raw mode, and line settings through termios(3) (POSIX "General Terminal Interface"; Linux
 * termios(3), tty_ioctl(4)).
 */
#ifndef DFNET_DRIVERS_SERIAL_PORT_H
#define DFNET_DRIVERS_SERIAL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "dfnet/hw/serial.pb.h"

/* The node's tty: its device file's path in out[cap] (the "dfnet.platform.TTY" property of a
 * board-file device, an absolute path: for messages) and *fd, the descriptor dfnet-host
 * handed as resource "tty" (read/write, non-blocking, not a controlling terminal; owned by
 * the driver host: never close it).
 * Returns OK; FAILED_PRECONDITION with the reason in why[why_cap] (no such property, not an
 * absolute path, no "tty" resource). */
dfnet_status_t serial__find_tty(const dfnet_driver_t *driver, char *out, size_t cap, int *fd,
                                char *why, size_t why_cap) __attribute__((warn_unused_result));

/* Put the tty `fd` (its device file `tty`, for messages) in raw mode (no echo, no line
 * editing, no translation, CLOCAL | CREAD, VMIN 1) keeping its speed, character size,
 * parity, stop bits and flow control. Returns OK, or FAILED_PRECONDITION with the reason
 * (not a terminal, termios refused) in why[cap]. */
dfnet_status_t serial__make_raw(int fd, const char *tty, char *why, size_t cap)
    __attribute__((warn_unused_result));

/* Apply *want (zero fields: the defaults 115200 8N1, no flow control) to fd and read back
 * what the kernel keeps into *got. Returns OK; INVALID_ARGUMENT (a value termios does not
 * have; reason in why); UNAVAILABLE (tcgetattr/tcsetattr failed: errno in why). */
dfnet_status_t serial__configure(int fd, const dfnet_hw_serial_Config *want,
                                 dfnet_hw_serial_Config *got, char *why, size_t cap)
    __attribute__((warn_unused_result));

#endif /* DFNET_DRIVERS_SERIAL_PORT_H */
