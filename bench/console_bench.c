/* console_bench: the console's echo latency through the fabric (issue "The lab's daily
 * work", Benchmark): a board whose UART is a pty echoes every byte it receives, as a shell
 * at a prompt does; the client holds an Attach stream on the port (as `dfnet serial
 * console` does), sends one byte with Write and waits until the echo comes back on the
 * stream: keypress to character on the screen. Beside it, in the same run, the floor: the
 * Write's own round trip (a unary call to the same driver, through the same manager, agent
 * and driver host), and the CPU the client, manager, agent and driver host spent per echo.
 *
 * A real fabric (tests/integration/fabric.h): dfnet-manager, dfnet-host, the serial driver
 * in its driver host, the board file giving it the pty's slave. $CONSOLE_BENCH_ECHOES
 * (default 1000) echoes, after 50 not counted. DFNET_BENCH_ONE_CPU=1 runs it all on CPU 0.
 * Prints figures only and never asserts on them; a failure ends the run with exit 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "dfnet/client.h"
#include "integration/fabric.h"
#include "lib/log.h"
#include "bench_util.h"
#include "one_cpu.h"

#define NODE "dev.lab-c.platform.uart0"
#define M_WRITE "/dfnet.hw.serial.Serial/Write"
#define M_ATTACH "/dfnet.hw.serial.Serial/Attach"
#define WARMUP 50

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  bool up;
  int board, board_slave;
  pthread_t echo;
  volatile bool stop;
  /* the stream: each echo's arrival */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t received; /* bytes the stream delivered */
  bool ended;
} E = {.board = -1, .board_slave = -1};

static void fabric_down(void) {
  E.stop = true;
  if (E.up) {
    E.up = false;
    fabric_cleanup(&E.fab, &E.agent, 1);
  }
}

/* The board: echo every byte back, as a shell at its prompt. */
static void *echo_main(void *arg) {
  (void)arg;
  uint8_t buf[256];
  while (!E.stop) {
    struct pollfd p = {.fd = E.board, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    ssize_t n = read(E.board, buf, sizeof buf);
    if (n > 0 && write(E.board, buf, (size_t)n) != n)
      break;
  }
  return NULL;
}

static void fabric_up(void) {
  E.agent.name = "lab-c";
  E.up = true;
  if (fabric_init(&E.fab, "console-bench", NULL, NULL) != 0 ||
      fabric_issue(&E.fab, "host", "lab-c") != 0 || fabric_issue(&E.fab, "operator", "op") != 0)
    bench_die("cannot make the fabric's directory and certificates");
  if (fabric_pty_board(&E.fab, "uart0", &E.board, &E.board_slave) != 0)
    bench_die("cannot make the pty board");
  if (fabric_start_manager(&E.fab, "127.0.0.1", 30) != 0)
    bench_die("dfnet-manager did not start (see %s)", E.fab.manager_log);
  fabric_start_agent(&E.fab, &E.agent);
  dfnet_client_t *c = fabric_connect(&E.fab, "op");
  if (c == NULL || !fabric_wait_node(c, NODE, fabric_is_bound, NULL, 30000, NULL))
    bench_die("%s was not bound in 30 s (see %s)", NODE, E.agent.log);
  dfnet_client_close(c);
  if (pthread_create(&E.echo, NULL, echo_main, NULL) != 0)
    bench_die("cannot start the board's echo thread");
}

/* LogData.data's length (field 1) in an encoded item; 0 when absent. */
static size_t item_bytes(const uint8_t *m, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint64_t key = 0;
    for (int s = 0; i < n; s += 7) {
      key |= (uint64_t)(m[i] & 0x7f) << s;
      if (!(m[i++] & 0x80))
        break;
    }
    uint64_t v = 0;
    for (int s = 0; i < n; s += 7) {
      v |= (uint64_t)(m[i] & 0x7f) << s;
      if (!(m[i++] & 0x80))
        break;
    }
    if ((key & 7) == 2) {
      if (key >> 3 == 1)
        return (size_t)v;
      i += (size_t)v;
    }
  }
  return 0;
}

static void on_item(void *user, dfnet_client_call_id_t id, const uint8_t *m, size_t n) {
  (void)user;
  (void)id;
  pthread_mutex_lock(&E.mu);
  E.received += item_bytes(m, n);
  pthread_cond_broadcast(&E.cv);
  pthread_mutex_unlock(&E.mu);
}

static void on_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  (void)user;
  (void)id;
  pthread_mutex_lock(&E.mu);
  E.ended = true;
  pthread_cond_broadcast(&E.cv);
  pthread_mutex_unlock(&E.mu);
  if (st != DFNET_STATUS_OK && st != DFNET_STATUS_CANCELLED)
    fprintf(stderr, "console_bench: the stream ended: %s: %s\n", dfnet_status_str(st), msg);
}

/* Write one byte; its round trip in ns (the floor). */
static uint64_t write_byte(dfnet_client_t *c) {
  static const uint8_t req[] = {0x0a, 0x01, 'x'}; /* WriteRequest{data: "x"} */
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  uint64_t t0 = bench_now_ns();
  dfnet_status_t st =
      dfnet_client_call(c, NODE, M_WRITE, req, sizeof req, NULL, &reply, &len, &err);
  uint64_t dt = bench_now_ns() - t0;
  free(reply);
  if (st != DFNET_STATUS_OK)
    bench_die("Write: %s: %s", dfnet_status_str(st), err.message);
  return dt;
}

/* Wait until the stream delivered `want` bytes in all. */
static void wait_received(uint64_t want) {
  pthread_mutex_lock(&E.mu);
  while (E.received < want && !E.ended)
    pthread_cond_wait(&E.cv, &E.mu);
  bool ended = E.ended;
  pthread_mutex_unlock(&E.mu);
  if (ended)
    bench_die("the console's stream ended");
}

int main(void) {
  bench_set_name("console_bench");
  bench_one_cpu_if_asked("console_bench");
  dfnet_log_set_level(DFNET_LOG_WARN);
  signal(SIGPIPE, SIG_IGN);
  setenv("DFNET_SOURCE_DIR", CONSOLE_BENCH_SOURCE_DIR, 0);
  setenv("DFNET_BUILD_DIR", CONSOLE_BENCH_BUILD_DIR, 0);
  const char *env = getenv("CONSOLE_BENCH_ECHOES");
  int n = env != NULL ? atoi(env) : 1000;
  if (n < 10 || n > 100000)
    n = 1000;
  pthread_mutex_init(&E.mu, NULL);
  pthread_cond_init(&E.cv, NULL);
  atexit(fabric_down);
  fabric_up();

  dfnet_client_t *c = fabric_connect(&E.fab, "op");
  if (c == NULL)
    bench_die("cannot connect");
  static const uint8_t now[] = {0x20, 0x01}; /* LogRequest{now: true} */
  dfnet_client_call_options_t co = {.credit = 64};
  dfnet_client_call_id_t id;
  if (dfnet_client_call_start(c, NODE, M_ATTACH, now, sizeof now, &co, on_item, on_done, NULL,
                              &id) != DFNET_STATUS_OK)
    bench_die("cannot attach to %s", NODE);
  bench_procs_t procs = {0};
  bench_procs_add(&procs, "client", getpid());
  bench_procs_add(&procs, "manager", E.fab.manager);
  bench_procs_add(&procs, "agent", E.agent.pid);
  bench_procs_add(&procs, "driver host", bench_first_child(E.agent.pid));

  uint64_t *echo = calloc((size_t)n, sizeof *echo), *floor = calloc((size_t)n, sizeof *floor);
  uint64_t sent = 0;
  bench_cpu_t cpu0;
  for (int i = -WARMUP; i < n; i++) {
    if (i == 0)
      bench_cpu_snapshot(&procs, &cpu0);
    uint64_t t0 = bench_now_ns();
    uint64_t w = write_byte(c);
    wait_received(++sent);
    uint64_t dt = bench_now_ns() - t0;
    if (i >= 0) {
      echo[i] = dt;
      floor[i] = w;
    }
  }
  double cpu[BENCH_PROCS_MAX];
  bench_cpu_per(&procs, &cpu0, n, cpu);
  bench_latency_t e = bench_percentiles(echo, (size_t)n), f = bench_percentiles(floor, (size_t)n);
  printf("console_bench (loopback; %d echoes through manager, agent, driver host and a pty)\n", n);
  printf("Write round trip (floor):          p50 %8.1f us  p99 %8.1f us\n", f.p50_us, f.p99_us);
  printf("keypress to echo on the console:   p50 %8.1f us  p99 %8.1f us   = %.2fx floor\n",
         e.p50_us, e.p99_us, e.p50_us / f.p50_us);
  bench_cpu_print(&procs, cpu, "echo");
  bench_print_loadavg(NULL);
  dfnet_client_call_cancel(c, id);
  dfnet_client_close(c);
  free(echo);
  free(floor);
  E.stop = true;
  pthread_join(E.echo, NULL);
  fabric_down();
  return 0;
}
