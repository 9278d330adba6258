/* crasher: a test driver that dies on request (issue 8 "Test-only drivers").
 *   /dfnet.test.Crasher/Crash  request "segv" | "abort" | "exit": dies that way.
 *   /dfnet.test.Crasher/Ping   replies "pong".
 * With the bool property "dfnet.test.CRASH_IN_START" true it dies (SIGSEGV) in start.
 * SIGSEGV is raised with the default action restored, so that a sanitizer's handler does
 * not turn it into an exit.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dfnet/driver.h"

static void die_segv(void) {
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
  _exit(99);
}

static void crasher_crash(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  if (len == 4 && memcmp(req, "segv", 4) == 0)
    die_segv();
  if (len == 5 && memcmp(req, "abort", 5) == 0)
    abort();
  if (len == 4 && memcmp(req, "exit", 4) == 0)
    _exit(3);
  dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, "want segv, abort or exit", NULL, 0);
}

static void crasher_ping(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  (void)req;
  (void)len;
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)"pong", 4);
}

static const dfnet_method_t crasher_methods[] = {
    {"/dfnet.test.Crasher/Crash", crasher_crash, false},
    {"/dfnet.test.Crasher/Ping", crasher_ping, false},
};

static dfnet_status_t crasher_start(dfnet_driver_t *driver, void *ctx) {
  (void)ctx;
  const dfnet_node_property_t *p =
      dfnet_driver_property_find(driver, 0, "dfnet.test.CRASH_IN_START");
  if (p != NULL && p->type == DFNET_PROPERTY_BOOL && p->value_bool)
    die_segv();
  return dfnet_driver_serve(driver, NULL, crasher_methods, 2);
}

static const dfnet_driver_ops_t crasher_ops = {
    .api_version = DFNET_DRIVER_API_VERSION,
    .name = "crasher",
    .start = crasher_start,
};
DFNET_DRIVER_EXPORT(crasher_ops);
