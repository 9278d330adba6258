/* bench/join_first_node: how soon a new board shows at the manager after `dfnet-host join`
 * (issue 23 "Benchmark": "join -> first node visible at the manager, p50").
 *
 * A real dfnet-manager, then ROUNDS times: `dfnet token create --role host` (not timed), then
 * the timed part: `dfnet-host join` (a P-256 key made locally, the enrollment handshake
 * checked against the CA pin, the CSR signed), then `dfnet-host --state-dir` started from
 * what join wrote (the test sysfs capture, no USB, unsandboxed), until the manager shows the
 * host's root node (polled every 2 ms by an admin client). Each round a new name, token and
 * state directory; the agent is stopped after it.
 * Beside it, the floor measured in the same run: the same agent started from a certificate
 * the manager issued beforehand (`dfnet-manager issue`; no join), until its root node shows.
 * Prints p50 and max of: join alone, agent start -> first node, join -> first node; and the
 * floor. Usage: join_first_node [ROUNDS (10)]. Asserts nothing. Needs the build's binaries
 * (DFNET_BUILD_DIR, default this build).
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

#include <cjson/cJSON.h>

#include "integration/cli_run.h"
#include "integration/fabric.h"

#define MAX_ROUNDS 50

static fabric_t fab;
static cli_run_t R;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double p50(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static double max_of(const double *v, int n) {
  double m = 0;
  for (int i = 0; i < n; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

/* Start dfnet-host with these arguments (NULL-terminated), its output into log. */
static pid_t start_agent(const char *log, const char *const *args) {
  char agent[600], cache[600];
  snprintf(agent, sizeof agent, "%s/host/agent/dfnet-host", fab.build);
  snprintf(cache, sizeof cache, "%s/cache", fab.root);
  const char *argv[24] = {agent};
  int n = 1;
  for (; args[n - 1] != NULL && n < 16; n++)
    argv[n] = args[n - 1];
  const char *common[] = {"--sysfs-root",
                          DFNET_FIXTURES_DIR "/sysfs-virtio-vm",
                          "--no-usb",
                          "--no-sandbox",
                          "--cache-dir",
                          cache,
                          NULL};
  for (int i = 0; common[i] != NULL; i++)
    argv[n++] = common[i];
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(agent, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* Wait (2 ms polls, up to 20 s) until the manager shows dev.<name>. */
static bool wait_root_node(dfnet_client_t *admin, const char *name) {
  char moniker[96];
  snprintf(moniker, sizeof moniker, "dev.%s", name);
  double end = now_ms() + 20000;
  while (now_ms() < end) {
    if (fabric_node(admin, moniker).found)
      return true;
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  return false;
}

/* A token for one host: "<id>.<secret>"; the CA pin into pin. */
static bool token_create(const char *name, char *token, size_t cap, char *pin, size_t pin_cap) {
  if (cli_run(&R, &fab, "token", "create", "--json", "--role", "host", "--name", name, NULL) != 0)
    return false;
  cJSON *doc = cli_json(&R);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "token");
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "ca_pin");
  bool ok = cJSON_IsString(t) && cJSON_IsString(p);
  if (ok) {
    snprintf(token, cap, "%s", t->valuestring);
    snprintf(pin, pin_cap, "%s", p->valuestring);
  }
  cJSON_Delete(doc);
  return ok;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 10;
  if (rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: join_first_node [ROUNDS (1..%d, default 10)]\n", MAX_ROUNDS);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (fabric_init(&fab, "bench-join", NULL, NULL) != 0 ||
      fabric_issue(&fab, "admin", "root") != 0 || fabric_start_manager(&fab, "127.0.0.1", 1) != 0)
    return 1;
  dfnet_client_t *admin = fabric_connect(&fab, "root");
  if (admin == NULL)
    return 1;
  cli_use(&fab, "root");
  char url[64];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)fab.port);
  double join_ms[MAX_ROUNDS], start_ms[MAX_ROUNDS], total_ms[MAX_ROUNDS], floor_ms[MAX_ROUNDS];
  int done = 0;
  for (int i = 0; i < rounds; i++) {
    char name[32], token[128], pin[128], state[600], log[600];
    /* the floor: an agent with a certificate issued beforehand */
    snprintf(name, sizeof name, "issued-%d", i);
    if (fabric_issue(&fab, "host", name) != 0)
      break;
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof cert, "%s/certs/%s.crt", fab.root, name);
    snprintf(key, sizeof key, "%s/certs/%s.key", fab.root, name);
    snprintf(ca, sizeof ca, "%s/certs/ca.crt", fab.root);
    snprintf(log, sizeof log, "%s/agent-%s.log", fab.root, name);
    const char *issued_args[] = {"--manager", url, "--cert", cert, "--key", key,
                                 "--ca",      ca,  "--name", name, NULL};
    double t0 = now_ms();
    pid_t pid = start_agent(log, issued_args);
    bool ok = wait_root_node(admin, name);
    floor_ms[i] = now_ms() - t0;
    fabric_stop_process(&pid, SIGTERM);
    if (!ok) {
      fprintf(stderr, "join_first_node: %s never showed (log %s)\n", name, log);
      break;
    }

    /* join, then the agent from what join wrote */
    snprintf(name, sizeof name, "joined-%d", i);
    if (!token_create(name, token, sizeof token, pin, sizeof pin))
      break;
    snprintf(state, sizeof state, "%s/state-%s", fab.root, name);
    snprintf(log, sizeof log, "%s/agent-%s.log", fab.root, name);
    t0 = now_ms();
    int rc = fabric_sh(
        "'%s/host/agent/dfnet-host' join %s --token %s --ca-pin %s --name %s "
        "--state-dir '%s' >>'%s' 2>&1",
        fab.build, url, token, pin, name, state, log);
    double t1 = now_ms();
    if (rc != 0) {
      fprintf(stderr, "join_first_node: join failed (log %s)\n", log);
      break;
    }
    const char *joined_args[] = {"--state-dir", state, NULL};
    pid = start_agent(log, joined_args);
    ok = wait_root_node(admin, name);
    double t2 = now_ms();
    fabric_stop_process(&pid, SIGTERM);
    if (!ok) {
      fprintf(stderr, "join_first_node: %s never showed (log %s)\n", name, log);
      break;
    }
    join_ms[i] = t1 - t0;
    start_ms[i] = t2 - t1;
    total_ms[i] = t2 - t0;
    done++;
  }
  if (done > 0) {
    printf("join_first_node: %d rounds, a real dfnet-manager and dfnet-host on loopback\n", done);
    printf("                                   p50 ms    max ms\n");
    printf("  join (key, enrollment, CSR)     %7.1f   %7.1f\n", p50(join_ms, done),
           max_of(join_ms, done));
    printf("  agent start -> first node       %7.1f   %7.1f\n", p50(start_ms, done),
           max_of(start_ms, done));
    printf("  join -> first node              %7.1f   %7.1f\n", p50(total_ms, done),
           max_of(total_ms, done));
    printf("  floor: issued cert -> node      %7.1f   %7.1f\n", p50(floor_ms, done),
           max_of(floor_ms, done));
  }
  dfnet_client_close(admin);
  fabric_cleanup(&fab, NULL, 0);
  return done == rounds ? 0 : 1;
}
