/* dfnet-driver-host: the process drivers live in (docs/design.md "The picture"; docs/spec/dfv2.md
 * "Driver hosts and lifecycle").
 *
 *   dfnet-driver-host --fd N [--log-level error|warn|info|debug] [--log-format text|json]
 *                     [--sandbox [--report-fd N] [--read-only FD:PATH ...]]
 *   dfnet-driver-host --help | --version
 *
 * Started by the host agent (host/supervisor) with one end of a socketpair as fd N. With
 * --sandbox it confines itself at its first DriverStart (sandbox.h; docs/architecture.md
 * "Confinement"), says on the pipe --report-fd why it dies when it must, and reads its
 * drivers through the --read-only directories (at most 8). It
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
#include "host/driver_host/sandbox.h"
#include "lib/cmdline.h"
#include "lib/log.h"
#include "lib/log_format.h"
#include "lib/suggest.h"
#include "lib/version.h"

#define PROGRAM "dfnet-driver-host"
#define SEE_HELP " (dfnet-driver-host --help)" /* after every usage error */

/* The command line (one table, docs/style.md 12); help and "did you mean" come from it. */
static const dfnet_cmdline_help_t k_options[] = {
    {.name = "--fd", .arg = "N", .help = "the socketpair end to the host agent (required)"},
    {.name = "--log-level",
     .arg = "LEVEL",
     .help = "error, warn, info or debug (default info; DFNET_LOG_LEVEL)"},
    {.name = "--log-format",
     .arg = "FORMAT",
     .help = "text or json, as dfnet-host's (default text; DFNET_LOG_FORMAT)"},
    {.name = "--sandbox", .help = "confine this process at its first DriverStart"},
    {.name = "--report-fd",
     .arg = "N",
     .help = "with --sandbox: a pipe to say why this process dies (seccomp)"},
    {.name = "--read-only",
     .arg = "FD:PATH",
     .help = "with --sandbox: a directory of drivers, open as FD (repeatable, 8 at most)"},
    {.name = "--help", .help = "this text (also -h)"},
    {.name = "--version", .help = "print dfnet-driver-host's version"},
};
#define OPTION_COUNT (sizeof k_options / sizeof k_options[0])

static void help(void) {
  printf(
      "Usage: dfnet-driver-host --fd N [--log-level LEVEL] [--log-format FORMAT]\n"
      "                         [--sandbox [--report-fd N] [--read-only FD:PATH ...]]\n"
      "       dfnet-driver-host --help | --version\n\n"
      "The process dfnet's drivers live in, started by dfnet-host with one end of a\n"
      "socketpair as fd N; not run by hand. It loads each driver it is asked to start\n"
      "and runs it on its own dispatcher; when the agent closes the link it stops every\n"
      "driver and exits 0.\n\nOptions:\n");
  static const dfnet_cmdline_layout_t layout = {.width = 22, .gap = "  "};
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    char line[256];
    dfnet_cmdline_help_line(line, sizeof line, &layout, &k_options[i]);
    fputs(line, stdout);
  }
}

/* An unknown option: the nearest one of the table. */
static int unknown_option(const char *given) {
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, given);
  for (size_t i = 0; i < OPTION_COUNT; i++)
    dfnet_suggest_offer(&s, k_options[i].name);
  char msg[512];
  dfnet_cmdline_unknown(msg, sizeof msg, "option", given, dfnet_suggest_best(&s), NULL);
  return dfnet_cmdline_usage(PROGRAM, "%s" SEE_HELP, msg);
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

/* One option with its value (argv[*i + 1]) into the state below. Returns 0, or the
 * usage error's exit code. */
static int take_option(char **argv, int argc, int *i, int *fd, dh_sandbox_t *sb) {
  const char *a = argv[*i];
  if (*i + 1 >= argc)
    return dfnet_cmdline_usage(PROGRAM, "%s needs a value" SEE_HELP, a);
  const char *v = argv[++*i];
  if (strcmp(a, "--fd") == 0) {
    if ((*fd = parse_fd(v)) < 0)
      return dfnet_cmdline_usage(PROGRAM, "--fd wants a file descriptor number" SEE_HELP);
  } else if (strcmp(a, "--report-fd") == 0) {
    struct stat st;
    if ((sb->report_fd = parse_fd(v)) < 0 || fstat(sb->report_fd, &st) != 0 ||
        !S_ISFIFO(st.st_mode) || fcntl(sb->report_fd, F_SETFD, FD_CLOEXEC) != 0)
      return dfnet_cmdline_usage(PROGRAM, "--report-fd wants the descriptor of a pipe" SEE_HELP);
  } else if (strcmp(a, "--read-only") == 0) {
    char why[256];
    if (dh__sandbox_add_read_only(sb, v, why, sizeof why) != DFNET_STATUS_OK)
      return dfnet_cmdline_usage(PROGRAM, "%s" SEE_HELP, why);
  } else if (strcmp(a, "--log-format") == 0) {
    dfnet_log_format_t format;
    if (dfnet_log_format_parse(v, &format) != 0)
      return dfnet_cmdline_usage(PROGRAM, "--log-format wants text or json" SEE_HELP);
    dfnet_log_format_set(format);
  } else {
    dfnet_log_level_t level;
    if (dfnet_log_level_parse(v, &level) != 0)
      return dfnet_cmdline_usage(PROGRAM, "--log-level wants error, warn, info or debug" SEE_HELP);
    dfnet_log_set_level(level);
  }
  return 0;
}

static bool takes_value(const char *a) {
  return strcmp(a, "--fd") == 0 || strcmp(a, "--log-level") == 0 || strcmp(a, "--report-fd") == 0 ||
         strcmp(a, "--read-only") == 0 || strcmp(a, "--log-format") == 0;
}

int main(int argc, char **argv) {
  int fd = -1;
  bool sandboxed = false;
  static dh_sandbox_t sandbox = {.report_fd = -1};
  /* before any confinement: stderr is the agent's; $DFNET_LOG_FORMAT, --log-format wins */
  dfnet_log_journal_detect();
  if (dfnet_log_format_configure(NULL) != 0)
    return dfnet_cmdline_usage(PROGRAM, "DFNET_LOG_FORMAT wants text or json" SEE_HELP);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (dfnet_cmdline_is_help(a)) {
      help();
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      dfnet_version_print(PROGRAM);
      return 0;
    }
    if (strcmp(a, "--sandbox") == 0) {
      sandboxed = true;
      continue;
    }
    if (!takes_value(a))
      return unknown_option(a);
    int rc = take_option(argv, argc, &i, &fd, &sandbox);
    if (rc != 0)
      return rc;
  }
  if (fd < 0)
    return dfnet_cmdline_usage(PROGRAM, "--fd is required" SEE_HELP);
  if (!sandboxed && (sandbox.report_fd >= 0 || sandbox.read_only_count > 0))
    return dfnet_cmdline_usage(PROGRAM, "--report-fd and --read-only need --sandbox" SEE_HELP);
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
  host.sandbox = sandboxed ? &sandbox : NULL;
  DFNET_LOGD("driver-host", NULL, "pid %ld serving fd %d%s", (long)getpid(), fd,
             sandboxed ? ", sandboxed" : "");
  int rc = dh__link_run(&host);
  dh__host_fini(&host);
  return rc;
}
