/* dfnet-driver-host: the process drivers live in (docs/design.md "The picture"; docs/spec/dfv2.md
 * "Driver hosts and lifecycle").
 *
 *   dfnet-driver-host --fd N [--log-level error|warn|info|debug]
 *
 * Started by the host agent (host/supervisor) with one end of a socketpair as fd N. It
 * speaks length-prefixed dfnet.v1 Envelopes on it: DriverStart / DriverStop / Call /
 * Cancel / StreamCredit in, Status / Reply / NodeAdd / NodeRemove out. When the agent
 * closes the link, it stops every driver (prepare_stop, drain, stop) and exits 0.
 * Exit codes: 0 clean, 1 runtime failure, 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/driver_host/runtime.h"
#include "lib/log.h"

static void usage(const char *why) {
  fprintf(stderr,
          "dfnet-driver-host: %s\nusage: dfnet-driver-host --fd N "
          "[--log-level error|warn|info|debug]\n",
          why);
}

/* Parse a file descriptor number: 0..65535, digits only. */
static int parse_fd(const char *text) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 65535)
    return -1;
  return (int)v;
}

int main(int argc, char **argv) {
  int fd = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
      fd = parse_fd(argv[++i]);
      if (fd < 0) {
        usage("--fd wants a file descriptor number");
        return 2;
      }
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
      dfnet_log_level_t level;
      if (dfnet_log_level_parse(argv[++i], &level) != 0) {
        usage("--log-level wants error, warn, info or debug");
        return 2;
      }
      dfnet_log_set_level(level);
    } else {
      usage("unknown or incomplete argument");
      return 2;
    }
  }
  if (fd < 0) {
    usage("--fd is required");
    return 2;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
    fprintf(stderr, "dfnet-driver-host: fd %d is not a socket\n", fd);
    return 2;
  }
  /* Drivers may spawn processes: they must not inherit the link. */
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "dfnet-driver-host: fcntl: %s\n", strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);

  dh_host_t host;
  if (dh__host_init(&host, fd) != DFNET_STATUS_OK)
    return 1;
  DFNET_LOGD("driver-host", NULL, "pid %ld serving fd %d", (long)getpid(), fd);
  int rc = dh__link_run(&host);
  dh__host_fini(&host);
  return rc;
}
