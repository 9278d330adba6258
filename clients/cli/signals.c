/* dfnet CLI: long-running commands — stopped by a signal, waiting for a stream's end
 * (cli.h "stopping on a signal", "waiting for a stream"). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

void cli__stop_default(void) {
  stop_wake = -1;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
}

int cli__stop_signal(void) { return stop_signal; }

int cli__stream_wait_open(cli_stream_wait_t *w) {
  w->pipe[0] = w->pipe[1] = -1;
  w->status = DFNET_STATUS_OK;
  w->message[0] = '\0';
  w->ended = false;
  if (pipe(w->pipe) != 0)
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  return CLI_EXIT_OK;
}

void cli__stream_wait_end(cli_stream_wait_t *w, dfnet_status_t st, const char *msg) {
  w->status = st;
  snprintf(w->message, sizeof w->message, "%s", msg != NULL ? msg : "");
  w->ended = true;
  char b = 'e';
  ssize_t n = write(w->pipe[1], &b, 1);
  (void)n;
}

void cli__stream_wait_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st,
                           const char *msg) {
  (void)id;
  cli__stream_wait_end(user, st, msg);
}

bool cli__stream_wait(cli_stream_wait_t *w, dfnet_client_t *c, dfnet_client_call_id_t id) {
  cli__stop_on_signals(w->pipe[1]);
  struct pollfd p = {.fd = w->pipe[0], .events = POLLIN};
  while (poll(&p, 1, -1) < 0 && errno == EINTR)
    ;
  if (cli__stop_signal() == 0)
    return false;
  dfnet_client_call_cancel(c, id);
  w->status = DFNET_STATUS_OK; /* stopped by the user: not a failure */
  return true;
}

dfnet_status_t cli__stream_run(cli_stream_wait_t *w, dfnet_client_t *c, const char *target,
                               const char *method, const void *req, size_t len,
                               dfnet_client_message_fn on_item) {
  dfnet_client_call_options_t co = {.credit = 32};
  dfnet_client_call_id_t id;
  dfnet_status_t st = dfnet_client_call_start(c, target, method, req, len, &co, on_item,
                                              cli__stream_wait_done, w, &id);
  if (st == DFNET_STATUS_OK)
    (void)cli__stream_wait(w, c, id);
  return st;
}

void cli__stream_wait_close(cli_stream_wait_t *w) {
  cli__stop_wake_off();
  for (int i = 0; i < 2; i++)
    if (w->pipe[i] >= 0)
      close(w->pipe[i]);
  w->pipe[0] = w->pipe[1] = -1;
}
