/* libdfnet-client: the library's log — the process's one lib/log.h log, its level and sink
 * set by the options of the last dfnet_client_connect (include/dfnet/client.h). */
#include <stdlib.h>

#include "clients/lib/client_internal.h"
#include "lib/log.h"

/* The caller's sink: set by client__log_configure before the client's thread starts, read
 * by log_forward on whatever thread logs (lib/log.h: the sink is read without a lock). */
static dfnet_client_log_fn g_log_fn;
static void *g_log_user;

/* lib/log.h's levels are the public ones less one. */
_Static_assert(DFNET_CLIENT_LOG_ERROR == DFNET_LOG_ERROR + 1 &&
                   DFNET_CLIENT_LOG_WARN == DFNET_LOG_WARN + 1 &&
                   DFNET_CLIENT_LOG_INFO == DFNET_LOG_INFO + 1 &&
                   DFNET_CLIENT_LOG_DEBUG == DFNET_LOG_DEBUG + 1,
               "client log levels are lib/log.h's plus one");

static void log_forward(void *user, dfnet_log_level_t level, const char *line) {
  (void)user;
  g_log_fn(g_log_user, (dfnet_client_log_level_t)(level + 1), line);
}

void client__log_configure(const dfnet_client_options_t *opts) {
  dfnet_log_level_t level = DFNET_LOG_WARN;
  if (opts->log_level >= DFNET_CLIENT_LOG_ERROR && opts->log_level <= DFNET_CLIENT_LOG_DEBUG)
    level = (dfnet_log_level_t)(opts->log_level - 1);
  else
    (void)dfnet_log_level_parse(getenv("DFNET_LOG_LEVEL"), &level);
  dfnet_log_set_level(level);
  g_log_fn = opts->log_fn;
  g_log_user = opts->log_user;
  dfnet_log_set_sink(opts->log_fn != NULL ? log_forward : NULL, NULL);
}
