/* dfnet CLI: long-running commands stopped by a signal (cli.h "stopping on a signal"). */
#include <signal.h>
#include <unistd.h>

#include "clients/cli/cli.h"

static volatile sig_atomic_t stop_signal;
static volatile int stop_wake = -1;

static void on_signal(int sig) {
  stop_signal = sig;
  int fd = stop_wake;
  if (fd >= 0) {
    char b = 's';
    ssize_t w = write(fd, &b, 1);
    (void)w;
  }
}

void cli__stop_on_signals(int wake_fd) {
  stop_wake = wake_fd;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

void cli__stop_wake_off(void) { stop_wake = -1; }

int cli__stop_signal(void) { return stop_signal; }
