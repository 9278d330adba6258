/* GET /metrics end to end (issue 24 item 4; docs/metrics.md): the real dfnet-manager (with
 * --metrics-listen) and dfnet-host (with --metrics-listen) running the echo test driver, a
 * call made through `dfnet call`, and the metrics scraped by curl as Prometheus does:
 *   - the manager's TLS listener answers 401 without a client certificate, 403 to a host
 *     certificate, 404 for another path, 200 to a viewer one;
 *   - the values reflect the fabric: one host online, a node bound, the call counted with
 *     its method and OK status and timed in the histogram, its payload bytes relayed, the
 *     host's TLS handshake and certificate expiry;
 *   - the agent's own metrics: connected, nodes published, a driver host running, the call
 *     relayed;
 *   - a lease held: counted, with its holder per target;
 *   - `promtool check metrics` (Debian's prometheus package, installed by scripts/deps.sh)
 *     exits 0 and prints nothing on the output of all three listeners.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "cli_run.h"
#include "fabric.h"

#define WAIT_MS 30000
#define NODE "dev.lab-m.platform.echo0"
#define ECHO "/dfnet.test.Echo/Echo"

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  uint16_t manager_metrics, agent_metrics; /* --metrics-listen ports */
} F;

static cli_run_t R;

static const fabric_package_t packages[] = {
    {"echo", "echo.so", NULL, 1},
    {NULL, NULL, NULL, 0},
};

/* The port of "<prefix>metrics on 127.0.0.1:PORT" in log `path`, waiting up to 10 s; 0 if
 * none. */
static uint16_t metrics_port(const char *path, const char *prefix) {
  char want[64];
  snprintf(want, sizeof want, "%smetrics on 127.0.0.1:", prefix);
  for (uint64_t end = fabric_now_ms() + 10000; fabric_now_ms() < end; fabric_sleep_ms(50)) {
    FILE *log = fopen(path, "r");
    char line[512];
    unsigned long port = 0;
    while (log != NULL && fgets(line, sizeof line, log) != NULL) {
      const char *at = strstr(line, want);
      if (at != NULL)
        port = strtoul(at + strlen(want), NULL, 10);
    }
    if (log != NULL)
      fclose(log);
    if (port > 0 && port < 65536)
      return (uint16_t)port;
  }
  return 0;
}

static int metrics_setup(void **state) {
  (void)state;
  static const char *const manager_extra[] = {"--metrics-listen", "127.0.0.1:0", NULL};
  static const char *const agent_extra[] = {"--metrics-listen", "127.0.0.1:0", NULL};
  F.agent.name = "lab-m";
  F.agent.extra = agent_extra;
  if (fabric_init(&F.fab, "metrics", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", "lab-m") != 0 || fabric_issue(&F.fab, "operator", "op") != 0 ||
      fabric_issue(&F.fab, "viewer", "view") != 0)
    return -1;
  const char *board[] = {"echo0:1", NULL};
  fabric_write_board(&F.fab, board);
  F.fab.manager_extra = manager_extra; /* after fabric_init, which clears F.fab */
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.manager_metrics = metrics_port(F.fab.manager_log, "dfnet-manager: ");
  F.agent_metrics = metrics_port(F.agent.log, "dfnet-host: ");
  if (F.manager_metrics == 0 || F.agent_metrics == 0)
    return -1;
  dfnet_client_t *c = fabric_connect(&F.fab, "op");
  if (c == NULL)
    return -1;
  bool bound = fabric_wait_node(c, NODE, fabric_is_bound, NULL, WAIT_MS, NULL);
  dfnet_client_close(c);
  return bound ? 0 : -1;
}

static int metrics_teardown(void **state) {
  (void)state;
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

/* Run argv (NULL-terminated) with stdin from `in` (NULL: /dev/null), stdout and stderr
 * into `out` (cap bytes, NUL-terminated); at most 30 s, then it is killed. Returns its exit
 * code, or -1. */
static int run(char *const argv[], const char *in, char *out, size_t cap) {
  char path[] = "/tmp/dfnet-test-metrics-out-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int input = open(in ? in : "/dev/null", O_RDONLY);
    if (input >= 0)
      dup2(input, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = -1;
  uint64_t end = fabric_now_ms() + 30000;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (fabric_now_ms() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    fabric_sleep_ms(10);
  }
  ssize_t n = pread(fd, out, cap - 1, 0);
  out[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(path);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* GET url with curl as `who` (a certificate of <root>/certs; NULL: none). The body goes
 * into body (cap bytes); returns the HTTP status (0 when curl failed). */
static unsigned scrape(const char *url, const char *who, char *body, size_t cap) {
  char cert[700], key[700], ca[700], out_file[700];
  snprintf(cert, sizeof cert, "%s/certs/%s.crt", F.fab.root, who ? who : "");
  snprintf(key, sizeof key, "%s/certs/%s.key", F.fab.root, who ? who : "");
  snprintf(ca, sizeof ca, "%s/certs/ca.crt", F.fab.root);
  snprintf(out_file, sizeof out_file, "%s/scrape.txt", F.fab.root);
  char *argv[] = {"curl",   "-sS", "--max-time",   "20",        "--cacert", ca,   "-o",
                  out_file, "-w",  "%{http_code}", (char *)url, "--cert",   cert, "--key",
                  key,      NULL};
  if (who == NULL)
    argv[11] = NULL;
  char code[256];
  int rc = run(argv, NULL, code, sizeof code);
  if (rc != 0) {
    print_message("curl %s: exit %d: %s\n", url, rc, code);
    return 0;
  }
  FILE *f = fopen(out_file, "r");
  assert_non_null(f);
  size_t n = fread(body, 1, cap - 1, f);
  body[n] = '\0';
  fclose(f);
  return (unsigned)strtoul(code, NULL, 10);
}

/* promtool check metrics on text: exit 0 and nothing printed. */
static void assert_promtool_clean(const char *what, const char *text) {
  char path[700];
  snprintf(path, sizeof path, "%s/promtool-in.txt", F.fab.root);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  char *argv[] = {DFNET_PROMTOOL, "check", "metrics", NULL};
  char out[8192];
  int rc = run(argv, path, out, sizeof out);
  if (rc != 0 || out[0] != '\0')
    fail_msg("promtool check metrics on the %s's metrics: exit %d, said:\n%s", what, rc, out);
}

/* `text` has the line `line` (a whole sample line, value included). */
static void assert_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = strstr(text, line); p != NULL; p = strstr(p + 1, line))
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
      return;
  fail_msg("wanted the line \"%s\" in:\n%s", line, text);
}

/* The value of the sample whose line starts with `prefix` (name and labels), or -1. */
static double sample(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *p = strstr(text, prefix); p != NULL; p = strstr(p + 1, prefix))
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

/* A counter's value: 0 when its series was not made yet. */
static double count(const char *text, const char *prefix) {
  double v = sample(text, prefix);
  return v < 0 ? 0 : v;
}

static char g_text[1 << 18];

static void test_tls_listener_auth(void **state) {
  (void)state;
  char url[128], other[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/metrics", F.fab.port);
  snprintf(other, sizeof other, "https://127.0.0.1:%u/other", F.fab.port);
  assert_int_equal(scrape(url, NULL, g_text, sizeof g_text), 401);
  assert_non_null(strstr(g_text, "viewer"));
  assert_int_equal(scrape(url, "lab-m", g_text, sizeof g_text), 403);
  assert_non_null(strstr(g_text, "host certificate"));
  assert_int_equal(scrape(other, "view", g_text, sizeof g_text), 404);
  assert_int_equal(scrape(url, "view", g_text, sizeof g_text), 200);
  assert_non_null(strstr(g_text, "# TYPE dfnet_nodes gauge\n"));
  assert_int_equal(scrape(url, "op", g_text, sizeof g_text), 200); /* operators too */
}

static void test_values_reflect_the_fabric(void **state) {
  (void)state;
  cli_use(&F.fab, "op");
  assert_int_equal(cli_run(&R, &F.fab, "call", NODE, ECHO, "--data-hex", "6869", NULL), 0);
  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/metrics", F.fab.port);
  assert_int_equal(scrape(url, "view", g_text, sizeof g_text), 200);
  assert_line(g_text, "dfnet_hosts{state=\"online\"} 1");
  assert_line(g_text, "dfnet_hosts{state=\"offline\"} 0");
  assert_true(sample(g_text, "dfnet_nodes{state=\"bound\"}") >= 1);
  assert_true(sample(g_text, "dfnet_binds_total") >= 1);
  assert_line(g_text, "dfnet_calls_total{method=\"" ECHO "\",code=\"OK\"} 1");
  assert_line(g_text, "dfnet_call_duration_seconds_count{method=\"" ECHO "\"} 1");
  assert_line(g_text, "dfnet_call_duration_seconds_bucket{method=\"" ECHO "\",le=\"+Inf\"} 1");
  assert_line(g_text, "dfnet_relayed_bytes_total{direction=\"request\"} 2");
  assert_true(sample(g_text, "dfnet_relayed_bytes_total{direction=\"reply\"}") >= 2);
  assert_line(g_text, "dfnet_sessions{kind=\"host\",role=\"host\"} 1");
  assert_true(
      count(g_text, "dfnet_tls_handshakes_total{subprotocol=\"host\",kind=\"full\"}") +
          count(g_text, "dfnet_tls_handshakes_total{subprotocol=\"host\",kind=\"resumed\"}") >=
      1);
  assert_true(sample(g_text, "dfnet_host_cert_expiry_timestamp_seconds{host=\"lab-m\"}") >
              (double)time(NULL));
  assert_line(g_text, "dfnet_calls_in_flight 0");
  assert_line(g_text, "dfnet_leases_held 0");
  assert_promtool_clean("manager (TLS listener)", g_text);
}

static void test_plain_listeners(void **state) {
  (void)state;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", F.manager_metrics);
  assert_int_equal(scrape(url, NULL, g_text, sizeof g_text), 200);
  assert_line(g_text, "dfnet_hosts{state=\"online\"} 1");
  assert_promtool_clean("manager (--metrics-listen)", g_text);

  snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", F.agent_metrics);
  assert_int_equal(scrape(url, NULL, g_text, sizeof g_text), 200);
  assert_line(g_text, "dfnet_agent_manager_connected 1");
  assert_true(sample(g_text, "dfnet_agent_nodes_published") >= 1);
  assert_line(g_text, "dfnet_agent_driver_hosts_running 1");
  assert_line(g_text, "dfnet_agent_driver_starts_total{code=\"OK\"} 1");
  assert_true(sample(g_text, "dfnet_agent_calls_relayed_total") >= 1);
  assert_true(sample(g_text, "dfnet_agent_cert_expiry_timestamp_seconds") > (double)time(NULL));
  assert_true(count(g_text, "dfnet_agent_tls_handshakes_total{kind=\"full\"}") +
                  count(g_text, "dfnet_agent_tls_handshakes_total{kind=\"resumed\"}") >=
              1);
  assert_promtool_clean("host agent (--metrics-listen)", g_text);

  snprintf(url, sizeof url, "http://127.0.0.1:%u/nothing", F.agent_metrics);
  assert_int_equal(scrape(url, NULL, g_text, sizeof g_text), 404);
}

/* A held lease: counted, and its holder per target (last: the node is leased from now on). */
static void test_lease_holder(void **state) {
  (void)state;
  cli_use(&F.fab, "op");
  int rc = cli_run(&R, &F.fab, "lease", "acquire", "--reason", "metrics", NODE, NULL);
  if (rc != 0)
    fail_msg("lease acquire %s: exit %d: %s", NODE, rc, R.err);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", F.manager_metrics);
  assert_int_equal(scrape(url, NULL, g_text, sizeof g_text), 200);
  assert_line(g_text, "dfnet_leases_held 1");
  assert_line(g_text, "dfnet_lease_requests_queued 0");
  assert_line(g_text, "dfnet_lease_holder{target=\"" NODE "\",holder=\"op\"} 1");
  assert_promtool_clean("manager (with a lease)", g_text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tls_listener_auth),
      cmocka_unit_test(test_values_reflect_the_fabric),
      cmocka_unit_test(test_plain_listeners),
      cmocka_unit_test(test_lease_holder),
  };
  return cmocka_run_group_tests(tests, metrics_setup, metrics_teardown);
}
