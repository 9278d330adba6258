/* The driver user sandboxed driver hosts run as in the tests (docs/architecture.md
 * "Confinement"): "dfnet-driver", as dfnet-host's default --driver-user. Shared by the
 * driver host, hardware driver and host agent tests.
 *
 * Created when missing (the tests run as root in CI and on the lab machines):
 *   useradd --system --no-create-home --shell /usr/sbin/nologin dfnet-driver
 * Tests running in parallel may race to create it: useradd's failure is retried while the
 * user does not appear.
 */
#ifndef DFNET_TESTS_DRIVER_USER_H
#define DFNET_TESTS_DRIVER_USER_H

#include <stdbool.h>
#include <sys/types.h>

#define TEST_DRIVER_USER "dfnet-driver"

/* The driver user's uid and gid into *uid, *gid, creating it when missing and running as
 * root. Not root: this process's own ids (a sandboxed driver host keeps them) and true.
 * Returns false, the reason on stderr, when it neither exists nor can be created. */
bool test_driver_user(uid_t *uid, gid_t *gid);

/* Make sure the driver user exists (as root: create it when missing; not root: nothing to
 * do). Returns what test_driver_user() returns. */
bool test_driver_user_ensure(void);

#endif /* DFNET_TESTS_DRIVER_USER_H */
