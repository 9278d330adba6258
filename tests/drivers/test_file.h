/* The files test drivers write for their tests (a trace of hooks, a result line).
 *
 * A sandboxed driver host opens nothing by path (docs/architecture.md "Confinement"): the
 * test names the file in the driver's manifest "resources" ({"path": P, "access": "rw"}),
 * the harness opens it as dfnet-host would, and the driver writes through the descriptor it
 * is handed under that name. Without one (an unsandboxed driver host, a test that lists no
 * resource) the driver opens the path itself, as before.
 *
 * Header-only: each test driver is a .so of its own.
 */
#ifndef DFNET_TESTS_DRIVERS_TEST_FILE_H
#define DFNET_TESTS_DRIVERS_TEST_FILE_H

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "dfnet/driver.h"

/* Write `text` into the test's file `path`, appended (one write(2): lines of several
 * drivers never mix) or replacing what it held. Any thread. Returns 0, or -1 with errno
 * set. */
static inline int test_file_write(const dfnet_driver_t *driver, const char *path, const char *text,
                                  bool append) {
  size_t len = strlen(text);
  int fd = dfnet_driver_resource_fd(driver, path);
  if (fd >= 0) { /* handed: the driver host's descriptor, never closed here */
    if (append) {
      int flags = fcntl(fd, F_GETFL);
      if (flags < 0 || ((flags & O_APPEND) == 0 && fcntl(fd, F_SETFL, flags | O_APPEND) != 0))
        return -1;
      return write(fd, text, len) == (ssize_t)len ? 0 : -1;
    }
    if (ftruncate(fd, 0) != 0)
      return -1;
    return pwrite(fd, text, len, 0) == (ssize_t)len ? 0 : -1;
  }
  fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
  if (fd < 0)
    return -1;
  ssize_t n = write(fd, text, len);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}

#endif /* DFNET_TESTS_DRIVERS_TEST_FILE_H */
