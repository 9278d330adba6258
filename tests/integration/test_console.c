/* `dfnet serial console` end to end, with pseudo-terminals at both ends. The board's UART
 * is a pty: a board file gives its slave to the real serial driver (drivers/serial) as the
 * port of platform device uart0, and the test plays the board on the master. The
 * engineer's terminal is another pty, on which the real `dfnet` CLI runs (forkpty).
 * Between them: a real manager, a real agent and a driver host. Checked: what the board
 * prints reaches the terminal; what is typed reaches the board, byte for byte; the
 * terminal is raw while the console runs (Ctrl-C goes to the board) and gets its settings
 * back when `~.` ends the console, which exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "fabric.h"

#define NODE "dev.lab-s.platform.uart0"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;
  int board;       /* the board side of the UART: pty master */
  int board_slave; /* kept open so the pty stays up while the driver reopens it */
} F;

static int console_setup(void **state) {
  (void)state;
  F.agent.name = "lab-s";
  if (fabric_init(&F.fab, "console", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", "lab-s") != 0 || fabric_issue(&F.fab, "operator", "op") != 0)
    return -1;
  /* the real serial driver package, as the build made it, on a pty board */
  if (fabric_pty_board(&F.fab, "uart0", &F.board, &F.board_slave) != 0)
    return -1;
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.op = fabric_connect(&F.fab, "op");
  if (F.op == NULL || !fabric_wait_node(F.op, NODE, fabric_is_bound, NULL, WAIT_MS, NULL))
    return -1;
  return 0;
}

static int console_teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, &F.agent, 1);
  close(F.board);
  close(F.board_slave);
  return 0;
}

/* Read fd into buf (appending at *len) until `want` appears or ms pass. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *want, unsigned ms) {
  uint64_t until = fabric_now_ms() + ms;
  while (strstr(buf, want) == NULL) {
    uint64_t now = fabric_now_ms();
    if (now >= until || *len + 1 >= cap)
      return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(until - now)) <= 0)
      continue;
    ssize_t n = read(fd, buf + *len, cap - 1 - *len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      return false;
    *len += (size_t)n;
    buf[*len] = '\0';
  }
  return true;
}

static void write_all(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    assert_true(w > 0);
    s += w;
    n -= (size_t)w;
  }
}

static void test_console_on_a_terminal(void **state) {
  (void)state;
  char cli[600], url[64], cert[400], key[400], ca[400];
  snprintf(cli, sizeof cli, "%s/clients/dfnet", F.fab.build);
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)F.fab.port);
  snprintf(cert, sizeof cert, "%s/certs/op.crt", F.fab.root);
  snprintf(key, sizeof key, "%s/certs/op.key", F.fab.root);
  snprintf(ca, sizeof ca, "%s/certs/ca.crt", F.fab.root);

  int term = -1;
  pid_t pid = test_child_forkpty(&term);
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv("DFNET_MANAGER", url, 1);
    setenv("DFNET_CERT", cert, 1);
    setenv("DFNET_KEY", key, 1);
    setenv("DFNET_CA", ca, 1);
    unsetenv("DFNET_CONFIG");
    execl(cli, cli, "serial", "console", NODE, (char *)NULL);
    _exit(127);
  }
  static char seen[65536];
  size_t seen_len = 0;
  seen[0] = '\0';
  /* the console says it is connected once the subscription runs and the terminal is raw */
  assert_true(read_until(term, seen, sizeof seen, &seen_len, "~. to quit]", WAIT_MS));
  struct termios t;
  assert_int_equal(tcgetattr(term, &t), 0);
  assert_int_equal(t.c_lflag & (ICANON | ECHO | ISIG), 0);

  /* the board prints at once: the terminal shows it (the console said "connected" only
   * once the port's stream was in place; regression: what the board printed in the first
   * moments after the banner was lost) */
  write_all(F.board, "U-Boot 2026.10 (console test)\r\n=> ");
  if (!read_until(term, seen, sizeof seen, &seen_len, "=> ", 10000))
    fail_msg("the terminal shows: \"%s\"", seen);
  assert_non_null(strstr(seen, "U-Boot 2026.10 (console test)"));

  /* the engineer types: the board gets every byte, Ctrl-C and "~~" (one '~') included */
  static char board_got[4096];
  size_t board_len = 0;
  board_got[0] = '\0';
  write_all(term, "printenv\r");
  assert_true(read_until(F.board, board_got, sizeof board_got, &board_len, "printenv\r", 10000));
  write_all(term, "\x03");
  assert_true(read_until(F.board, board_got, sizeof board_got, &board_len, "\x03", 10000));
  write_all(term, "\r~~home\r");
  assert_true(read_until(F.board, board_got, sizeof board_got, &board_len, "\r~home\r", 10000));

  /* "~." at the start of a line ends the console; nothing of it reaches the board */
  write_all(term, "~.");
  int ws = 0;
  for (int i = 0; i < 200 && waitpid(pid, &ws, WNOHANG) == 0; i++) {
    char drain[1024];
    struct pollfd p = {.fd = term, .events = POLLIN};
    if (poll(&p, 1, 50) > 0 && read(term, drain, sizeof drain) <= 0)
      fabric_sleep_ms(10);
  }
  if (waitpid(pid, &ws, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
    fail_msg("dfnet serial console did not end on ~.");
  }
  assert_true(WIFEXITED(ws));
  assert_int_equal(WEXITSTATUS(ws), 0);
  /* the terminal's settings are back (the pty keeps them while its master is open) */
  assert_int_equal(tcgetattr(term, &t), 0);
  assert_int_equal(t.c_lflag & (ICANON | ECHO | ISIG), ICANON | ECHO | ISIG);
  fabric_sleep_ms(200);
  char rest[256];
  ssize_t n;
  while ((n = read(F.board, rest, sizeof rest)) > 0)
    assert_null(memchr(rest, '.', (size_t)n));
  close(term);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_console_on_a_terminal),
  };
  return cmocka_run_group_tests(tests, console_setup, console_teardown);
}
