/* The real `dfnet` CLI as a child process (cli_run.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

void cli_use(const fabric_t *f, const char *name) {
  char v[700];
  unsetenv("DFNET_CONFIG");
  snprintf(v, sizeof v, "wss://127.0.0.1:%u", (unsigned)f->port);
  setenv("DFNET_MANAGER", v, 1);
  snprintf(v, sizeof v, "%s/certs/%s.crt", f->root, name);
  setenv("DFNET_CERT", v, 1);
  snprintf(v, sizeof v, "%s/certs/%s.key", f->root, name);
  setenv("DFNET_KEY", v, 1);
  snprintf(v, sizeof v, "%s/certs/ca.crt", f->root);
  setenv("DFNET_CA", v, 1);
}

/* Read both pipes to their end (or the deadline). */
static void collect(cli_run_t *r, int out, int err, uint64_t until) {
  struct pollfd p[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
  int open_fds = 2;
  while (open_fds > 0 && fabric_now_ms() < until) {
    if (poll(p, 2, 1000) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char *buf = i == 0 ? r->out + r->out_len : r->err + r->err_len;
      size_t cap = i == 0 ? sizeof r->out - 1 - r->out_len : sizeof r->err - 1 - r->err_len;
      char sink[4096];
      ssize_t n = read(p[i].fd, cap ? buf : sink, cap ? cap : sizeof sink);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        open_fds--;
      } else if (cap) {
        if (i == 0)
          r->out_len += (size_t)n;
        else
          r->err_len += (size_t)n;
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (p[i].fd >= 0)
      close(p[i].fd);
}

int cli_run(cli_run_t *r, const fabric_t *f, const char *first, ...) {
  char cli[600];
  snprintf(cli, sizeof cli, "%s/clients/dfnet", f->build);
  const char *argv[64];
  int argc = 0;
  argv[argc++] = cli;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL && argc < 63; a = va_arg(ap, const char *))
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  memset(r, 0, sizeof *r);
  r->status = -1;
  int out[2], err[2];
  assert_int_equal(pipe(out), 0);
  assert_int_equal(pipe(err), 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  collect(r, out[0], err[0], fabric_now_ms() + 120000);
  int ws = 0;
  pid_t done = waitpid(pid, &ws, WNOHANG);
  for (int i = 0; i < 100 && done == 0; i++) {
    fabric_sleep_ms(50);
    done = waitpid(pid, &ws, WNOHANG);
  }
  if (done != pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
    print_message("dfnet %s: killed, it did not end\n", first);
    return r->status;
  }
  r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  if (r->status != 0 && getenv("DFNET_TEST_VERBOSE"))
    print_message("dfnet %s -> %d\nstdout: %s\nstderr: %s\n", first, r->status, r->out, r->err);
  return r->status;
}

cJSON *cli_json(const cli_run_t *r) {
  cJSON *doc = cJSON_Parse(r->out);
  if (doc == NULL)
    fail_msg("not JSON: %s (stderr: %s)", r->out, r->err);
  return doc;
}
