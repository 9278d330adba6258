/* Shared consoles with history, end to end (issue "The lab's daily work", Console): the
 * board's UART is a pty whose slave a board file gives to the real serial driver, the test
 * plays the board on the master; a real manager, agent and driver host; the real `dfnet`
 * CLI as child processes (stdin and stdout pipes) for three operators.
 *
 * Checked: alice holds the port's lease (2 s, not renewed) and types on her console while
 * bob and carol watch with --read-only; bob cannot attach as a writer (the lease); all
 * three see what the board prints; alice's lease expires and her console ends, exit 1,
 * saying so, while the viewers go on; `serial log --since` and `--lines` return what
 * arrived while nobody watched; a console whose manager is killed and restarted resumes
 * from its last byte and prints what the board said meanwhile. */
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
#include "cli_run.h"
#include "fabric.h"

#define NODE "dev.lab-s.platform.uart0"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  int board;       /* the board side of the UART: pty master */
  int board_slave; /* kept open so the pty stays up */
} F;

static cli_run_t R;

/* A `dfnet serial console` child: its stdin (we type), stdout and stderr (we read). */
typedef struct console {
  pid_t pid;
  int in, out, err;
  char seen[65536];
  size_t len;
} console_t;

static console_t alice, bob, carol;

static int setup(void **state) {
  (void)state;
  F.agent.name = "lab-s";
  if (fabric_init(&F.fab, "console-shared", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", "lab-s") != 0 ||
      fabric_issue(&F.fab, "operator", "alice") != 0 ||
      fabric_issue(&F.fab, "operator", "bob") != 0 ||
      fabric_issue(&F.fab, "operator", "carol") != 0)
    return -1;
  if (fabric_pty_board(&F.fab, "uart0", &F.board, &F.board_slave) != 0)
    return -1;
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  dfnet_client_t *c = fabric_connect(&F.fab, "carol");
  bool up = c != NULL && fabric_wait_node(c, NODE, fabric_is_bound, NULL, WAIT_MS, NULL);
  dfnet_client_close(c);
  return up ? 0 : -1;
}

static void console_stop(console_t *k) {
  if (k->pid > 0) {
    kill(k->pid, SIGKILL);
    waitpid(k->pid, NULL, 0);
    k->pid = 0;
  }
  for (int *fd = &k->in; fd <= &k->err; fd++)
    if (*fd > 0) {
      close(*fd);
      *fd = -1;
    }
}

static int teardown(void **state) {
  (void)state;
  console_stop(&alice);
  console_stop(&bob);
  console_stop(&carol);
  fabric_cleanup(&F.fab, &F.agent, 1);
  close(F.board);
  close(F.board_slave);
  return 0;
}

static void console_start(console_t *k, const char *who, const char *token, bool read_only) {
  memset(k, 0, sizeof *k);
  int in[2], out[2], err[2];
  assert_int_equal(pipe(in), 0);
  assert_int_equal(pipe(out), 0);
  assert_int_equal(pipe(err), 0);
  cli_use(&F.fab, who);
  k->pid = test_child_fork();
  assert_true(k->pid >= 0);
  if (k->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (token != NULL)
      setenv("DFNET_LEASE", token, 1);
    else
      unsetenv("DFNET_LEASE");
    char cli[600];
    snprintf(cli, sizeof cli, "%s/clients/dfnet", F.fab.build);
    execl(cli, cli, "serial", "console", NODE, read_only ? "--read-only" : NULL, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  k->in = in[1];
  k->out = out[0];
  k->err = err[0];
  fcntl(k->out, F_SETFL, fcntl(k->out, F_GETFL) | O_NONBLOCK);
}

/* Read what the console printed so far (without waiting). */
static void console_read(console_t *k) {
  ssize_t n;
  while (k->len + 1 < sizeof k->seen &&
         (n = read(k->out, k->seen + k->len, sizeof k->seen - 1 - k->len)) > 0) {
    k->len += (size_t)n;
    k->seen[k->len] = '\0';
  }
}

static bool console_saw(console_t *k, const char *want) {
  console_read(k);
  return strstr(k->seen, want) != NULL;
}

/* The board prints `text` until each console of the NULL-terminated list shows `want`
 * (consoles start from "now": a ping lets the test know they are in place). */
static void board_until_seen(const char *text, const char *want, console_t *const *ks) {
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(200)) {
    assert_int_equal(write(F.board, text, strlen(text)), (ssize_t)strlen(text));
    bool all = true;
    for (console_t *const *k = ks; *k != NULL; k++)
      all = console_saw(*k, want) && all;
    if (all)
      return;
  }
  for (console_t *const *k = ks; *k != NULL; k++)
    print_message("console saw: \"%s\"\n", (*k)->seen);
  fail_msg("not every console saw \"%s\"", want);
}

static bool wait_saw(console_t *k, const char *want) {
  for (uint64_t end = fabric_now_ms() + 2 * WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(50))
    if (console_saw(k, want))
      return true;
  print_message("console saw: \"%s\"\n", k->seen);
  return false;
}

/* Wait for the console to exit; its exit code, its stderr into err. */
static int console_exit(console_t *k, char *err, size_t cap) {
  int ws = 0;
  pid_t done = 0;
  for (uint64_t end = fabric_now_ms() + WAIT_MS; done == 0 && fabric_now_ms() < end;
       fabric_sleep_ms(50))
    done = waitpid(k->pid, &ws, WNOHANG);
  if (done != k->pid)
    return -1;
  k->pid = 0;
  ssize_t n = read(k->err, err, cap - 1);
  err[n > 0 ? n : 0] = '\0';
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static bool board_got(const char *want) {
  static char got[8192];
  static size_t len;
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(50)) {
    ssize_t n = read(F.board, got + len, sizeof got - 1 - len);
    if (n > 0) {
      len += (size_t)n;
      got[len] = '\0';
    }
    if (strstr(got, want) != NULL)
      return true;
  }
  return false;
}

static void test_one_writer_two_viewers_and_a_lease(void **state) {
  (void)state;
  cli_use(&F.fab, "alice");
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", NODE, "--ttl", "3s", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  const cJSON *token = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "lease"), "token");
  assert_true(cJSON_IsString(token));
  console_start(&alice, "alice", token->valuestring, false);
  cJSON_Delete(doc);
  console_start(&bob, "bob", NULL, true);
  console_start(&carol, "carol", NULL, true);
  console_t *const all[] = {&alice, &bob, &carol, NULL};
  board_until_seen("ping\n", "ping", all);

  /* bob cannot type on a port alice leased */
  console_t intruder;
  console_start(&intruder, "bob", NULL, false);
  char err[4096];
  assert_int_equal(console_exit(&intruder, err, sizeof err), 1);
  assert_non_null(strstr(err, "leased by alice"));
  console_stop(&intruder);

  /* alice types; everyone sees the board's answer */
  assert_int_equal(write(alice.in, "help\n", 5), 5);
  assert_true(board_got("help\n"));
  board_until_seen("U-Boot commands: ...\n", "U-Boot commands", all);

  /* her lease expires: her console ends, saying so; the viewers go on */
  assert_int_equal(console_exit(&alice, err, sizeof err), 1);
  assert_non_null(strstr(err, "expired"));
  console_t *const viewers[] = {&bob, &carol, NULL};
  board_until_seen("still here\n", "still here", viewers);
  console_stop(&alice);
  console_stop(&bob);
  console_stop(&carol);

  /* nobody watches; the log has it */
  const char *quiet = "printed while nobody watched\n";
  assert_int_equal(write(F.board, quiet, strlen(quiet)), (ssize_t)strlen(quiet));
  cli_use(&F.fab, "carol");
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(100)) {
    assert_int_equal(cli_run(&R, &F.fab, "serial", "log", NODE, "--since", "10s", NULL), 0);
    if (strstr(R.out, "printed while nobody watched") != NULL)
      break;
  }
  assert_non_null(strstr(R.out, "printed while nobody watched"));
  assert_int_equal(cli_run(&R, &F.fab, "serial", "log", NODE, "--lines", "1", NULL), 0);
  assert_string_equal(R.out, quiet);
  assert_int_equal(cli_run(&R, &F.fab, "serial", "log", NODE, "--lines", "1", "--json", NULL), 0);
  assert_non_null(strstr(R.out, "\"data\":\"printed while nobody watched\\n\""));
}

static void test_console_resumes_across_a_manager_restart(void **state) {
  (void)state;
  console_start(&carol, "carol", NULL, true);
  console_t *const one[] = {&carol, NULL};
  board_until_seen("before\n", "before", one);
  assert_true(fabric_stop_process(&F.fab.manager, SIGKILL) != -1);
  fabric_sleep_ms(300);
  const char *meanwhile = "printed while the manager was down\n";
  assert_int_equal(write(F.board, meanwhile, strlen(meanwhile)), (ssize_t)strlen(meanwhile));
  assert_int_equal(fabric_restart_manager(&F.fab, "127.0.0.1", 30), 0);
  if (!wait_saw(&carol, "printed while the manager was down")) {
    char err[4096];
    int rc = console_exit(&carol, err, sizeof err);
    fail_msg("the console did not resume (exit %d): %s", rc, err);
  }
  board_until_seen("after\n", "after", one);
  console_stop(&carol);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_writer_two_viewers_and_a_lease),
      cmocka_unit_test(test_console_resumes_across_a_manager_restart),
  };
  return cmocka_run_group_tests_name("console_shared", tests, setup, teardown);
}
