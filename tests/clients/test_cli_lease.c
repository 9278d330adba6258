/* `dfnet lease ...` run as a real process against the scripted manager peer
 * (scripted_server.h "The lease script"), as tests/clients/test_cli.c runs the other
 * commands: every verb's --help, usage errors (exit 2, naming the option), durations as they
 * reach the wire, text and --json shapes, node/host listings with their lease, and `lease
 * run`: DFNET_LEASE in the command's environment, its exit status returned, SIGTERM
 * forwarded and the lease released, a crashing command's 128 + signal, Ctrl-C while
 * waiting in the queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "scripted_server.h"

static char dir[256];
static char cli[512];
static scripted_server_t *server;
static uint16_t port;

typedef struct run {
  int status; /* exit code, or -1 when killed */
  char out[256 * 1024];
  size_t out_len;
  char err[16384];
} run_t;

static run_t R;

/* Run `dfnet args...` (NULL-terminated) with the current environment, stdin /dev/null.
 * Fills R. */
static int run_v(const char *const *args) {
  const char *argv[64];
  int n = 0;
  argv[n++] = cli;
  for (const char *const *a = args; *a != NULL && n < 63; a++)
    argv[n++] = *a;
  argv[n] = NULL;
  int out[2], err[2];
  if (pipe(out) || pipe(err))
    return -1;
  pid_t pid = test_child_fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  memset(&R, 0, sizeof R);
  size_t elen = 0;
  struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(p, 2, 60000) <= 0)
      break;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
        continue;
      char *buf = i == 0 ? R.out + R.out_len : R.err + elen;
      size_t cap = i == 0 ? sizeof R.out - 1 - R.out_len : sizeof R.err - 1 - elen;
      ssize_t r = read(p[i].fd, buf, cap ? cap : 1);
      if (r <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        open_fds--;
      } else if (cap) {
        if (i == 0)
          R.out_len += (size_t)r;
        else
          elen += (size_t)r;
      }
    }
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  R.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  if (R.status != 0 && getenv("DFNET_TEST_VERBOSE"))
    fprintf(stderr, "dfnet %s -> %d\nstdout: %s\nstderr: %s\n", args[0], R.status, R.out, R.err);
  return R.status;
}

#define run(...) run_v((const char *const[]){__VA_ARGS__, NULL})

/* Start `dfnet args...` in the background, stdout and stderr into <dir>/bg.out and
 * <dir>/bg.err. Returns its pid. */
static pid_t spawn_v(const char *const *args) {
  const char *argv[64];
  int n = 0;
  argv[n++] = cli;
  for (const char *const *a = args; *a != NULL && n < 63; a++)
    argv[n++] = *a;
  argv[n] = NULL;
  char out[400], err[400];
  snprintf(out, sizeof out, "%s/bg.out", dir);
  snprintf(err, sizeof err, "%s/bg.err", dir);
  pid_t pid = test_child_fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || o < 0 || e < 0)
      _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  assert_true(pid > 0);
  return pid;
}

#define spawn(...) spawn_v((const char *const[]){__VA_ARGS__, NULL})

/* The exit code of a background run (-1: killed by a signal). */
static int reap(pid_t pid) {
  int ws = 0;
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  if (WIFSIGNALED(ws))
    fprintf(stderr, "dfnet died of signal %d\n", WTERMSIG(ws));
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Wait (up to 15 s) until path holds a whole line; its text into buf. */
static bool wait_line(const char *path, char *buf, size_t cap) {
  for (int i = 0; i < 1500; i++) {
    test_child_read_output(path, buf, cap);
    char *nl = strchr(buf, '\n');
    if (nl != NULL) {
      *nl = '\0';
      return true;
    }
    sleep_ms(10);
  }
  return false;
}

static void use_scripted(const char *role, const char *name) {
  char v[512];
  unsetenv("DFNET_CONFIG");
  unsetenv("DFNET_LEASE");
  snprintf(v, sizeof v, "wss://127.0.0.1:%u", (unsigned)port);
  setenv("DFNET_MANAGER", v, 1);
  snprintf(v, sizeof v, "%s/%s/%s.crt", dir, role, name);
  setenv("DFNET_CERT", v, 1);
  snprintf(v, sizeof v, "%s/%s/%s.key", dir, role, name);
  setenv("DFNET_KEY", v, 1);
  snprintf(v, sizeof v, "%s/%s/ca.crt", dir, role);
  setenv("DFNET_CA", v, 1);
}

static int group_setup(void **state) {
  (void)state;
  const char *build = getenv("DFNET_BUILD_DIR");
  snprintf(cli, sizeof cli, "%s/clients/dfnet", build ? build : ".");
  snprintf(dir, sizeof dir, "/tmp/dfnet-test-cli-lease-%d", (int)getpid());
  if (ss_make_certs(dir) != 0)
    return -1;
  server = ss_start(dir, &port);
  char xdg[300];
  snprintf(xdg, sizeof xdg, "%s/xdg", dir);
  setenv("XDG_CONFIG_HOME", xdg, 1);
  unsetenv("DFNET_CONFIG");
  unsetenv("DFNET_LOG_LEVEL");
  return server ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  ss_stop(server);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static cJSON *parse_out(void) {
  R.out[R.out_len] = '\0';
  cJSON *doc = cJSON_Parse(R.out);
  if (doc == NULL)
    fprintf(stderr, "not JSON: %s\n", R.out);
  return doc;
}

static ss_lease_stats_t stats(void) {
  ss_lease_stats_t st;
  ss_lease_stats(server, &st);
  return st;
}

/* The token of the `export DFNET_LEASE=` line of R.out into buf; its lease id. */
static unsigned long long exported(char *buf, size_t cap) {
  R.out[R.out_len] = '\0';
  const char *e = strstr(R.out, "export DFNET_LEASE=");
  assert_non_null(e);
  snprintf(buf, cap, "%.*s", (int)strcspn(e + 19, "\n"), e + 19);
  return strtoull(buf, NULL, 10);
}

/* ---- help and usage ---- */

static void test_help_of_every_verb(void **state) {
  (void)state;
  static const char *const verbs[] = {"acquire", "list",    "show", "renew",
                                      "release", "history", "run"};
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    assert_int_equal(run("lease", verbs[i], "--help"), 0);
    char usage[64];
    snprintf(usage, sizeof usage, "Usage: dfnet lease %s", verbs[i]);
    assert_non_null(strstr(R.out, usage));
  }
  assert_int_equal(run("lease", "--help"), 0);
  assert_non_null(strstr(R.out, "lease history"));
  assert_int_equal(run("lease", "run", "--help"), 0);
  assert_non_null(strstr(R.out, "-- CMD [ARGS...]"));
  assert_int_equal(run("lease", "acquire", "--help"), 0);
  assert_non_null(strstr(R.out, "--wait [TIMEOUT]"));
  assert_non_null(strstr(R.out, "export DFNET_LEASE"));
  assert_int_equal(run("lease"), 2);
  assert_int_equal(run("lease", "aquire"), 2);
  assert_non_null(strstr(R.err, "did you mean 'acquire'"));
  /* completion knows the verbs and their options */
  assert_int_equal(run("completion", "bash"), 0);
  assert_non_null(strstr(R.out, "lease) echo \"acquire list show renew release history run\""));
  assert_non_null(strstr(R.out, "\"lease run\") "));
  assert_non_null(strstr(R.out, "--priority"));
}

/* Bad usage: exit 2, the option named, nothing sent. */
static void test_usage_errors(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  unsigned acquires = stats().acquires;
  static const struct {
    const char *args[8];
    const char *says;
  } cases[] = {
      {{"lease", "acquire"}, "give a TARGET or --match"},
      {{"lease", "acquire", "--ttl", "5x", "dev.a"}, "--ttl wants a duration"},
      {{"lease", "acquire", "--ttl", "1h30", "dev.a"}, "--ttl"},
      {{"lease", "acquire", "--ttl", "99999h", "dev.a"}, "--ttl"},
      {{"lease", "acquire", "--wait", "0", "dev.a"}, "--wait takes a timeout"},
      {{"lease", "acquire", "--priority", "urgent", "dev.a"}, "--priority wants low, normal"},
      {{"lease", "acquire", "--match", "soc", "dev.a"}, "--match wants KEY=VALUE"},
      {{"lease", "acquire", "--bogus", "dev.a"}, "unknown option '--bogus'"},
      {{"lease", "run", "dev.a"}, "needs -- CMD"},
      {{"lease", "run", "dev.a", "--"}, "needs -- CMD"},
      {{"lease", "run", "--", "true"}, "give a TARGET"},
      {{"lease", "show"}, "missing argument"},
      {{"lease", "show", "x"}, "ID wants a lease number"},
      {{"lease", "show", "0"}, "ID wants a lease number"},
      {{"lease", "renew", "--ttl", "0", "3"}, "--ttl wants a duration over 0"},
      {{"lease", "renew"}, "DFNET_LEASE"},
      {{"lease", "release"}, "DFNET_LEASE"},
      {{"lease", "release", "--force", "3"}, "--force needs --reason"},
      {{"lease", "release", "--force", "--reason", "x"}, "--force needs the lease's ID"},
      {{"lease", "history", "--since", "yesterday"}, "--since wants"},
      {{"lease", "history", "--since", "2026-02-31"}, "--since wants"},
      {{"lease", "history", "-n", "0"}, "--count wants a number"},
      {{"lease", "list", "a", "b"}, "unexpected argument 'b'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (run_v(cases[i].args) != 2 || strstr(R.err, cases[i].says) == NULL)
      fail_msg("dfnet %s %s %s: exit %d, stderr: %s (wanted exit 2 and \"%s\")", cases[i].args[0],
               cases[i].args[1], cases[i].args[2] ? cases[i].args[2] : "", R.status, R.err,
               cases[i].says);
    assert_non_null(strstr(R.err, "dfnet: INVALID_ARGUMENT: "));
  }
  assert_int_equal(stats().acquires, acquires);
}

/* Durations as they reach the wire. */
static void test_durations(void **state) {
  (void)state;
  use_scripted("admin", "alice");
  static const struct {
    const char *ttl;
    uint32_t ms;
  } ttls[] = {{"90s", 90000},    {"30m", 1800000}, {"1h30m", 5400000},
              {"2d", 172800000}, {"500ms", 500},   {"300", 300000}};
  char token[128];
  for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
    assert_int_equal(run("lease", "acquire", "--ttl", ttls[i].ttl, "dev.lab-a.d"), 0);
    assert_int_equal(stats().acq_ttl_ms, ttls[i].ms);
    assert_false(stats().acq_no_expiry);
    exported(token, sizeof token);
    setenv("DFNET_LEASE", token, 1);
    assert_int_equal(run("lease", "release"), 0);
    unsetenv("DFNET_LEASE");
  }
  assert_int_equal(run("lease", "acquire", "--ttl", "0", "dev.lab-a.d"), 0);
  assert_true(stats().acq_no_expiry);
  assert_non_null(strstr(R.out, "Expires  : never\n"));
  assert_non_null(strstr(R.out, "TTL      : none (no expiry)\n"));
  /* --wait TIMEOUT, and --wait alone before a target */
  assert_int_equal(run("lease", "acquire", "--wait", "5m", "dev.lab-a.d"), 0);
  assert_true(stats().acq_wait);
  assert_int_equal(stats().acq_wait_ms, 300000);
  assert_int_equal(run("lease", "acquire", "--wait", "dev.lab-a.d"), 0);
  assert_true(stats().acq_wait);
  assert_int_equal(stats().acq_wait_ms, 0);
  assert_string_equal(stats().acq_targets, "dev.lab-a.d");
  assert_int_equal(run("lease", "acquire", "dev.lab-a.d", "--wait"), 0);
  assert_true(stats().acq_wait);
  assert_int_equal(run("lease", "acquire", "--wait=90s", "dev.lab-a.d"), 0);
  assert_int_equal(stats().acq_wait_ms, 90000);
}

/* ---- acquire, list, show, renew, release, history ---- */

static void test_acquire_text_and_json(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  assert_int_equal(run("lease", "acquire", "--ttl", "90s", "--reason", "ci run 9", "--priority",
                       "low", "--match", "soc=imx8mp", "--match", "class=serial",
                       "dev.lab-a.pci.00_07_0"),
                   0);
  ss_lease_stats_t st = stats();
  assert_string_equal(st.acq_targets, "dev.lab-a.pci.00_07_0");
  assert_string_equal(st.acq_match, "soc=imx8mp,class=serial");
  assert_string_equal(st.acq_reason, "ci run 9");
  assert_int_equal(st.acq_priority, 1);
  char token[128];
  unsigned long long id = exported(token, sizeof token);
  assert_true(id >= 42);
  assert_int_equal(strlen(strchr(token, '.') + 1), 64);
  char line[400];
  snprintf(line, sizeof line, "Lease    : %llu\n", id);
  assert_non_null(strstr(R.out, line));
  assert_non_null(strstr(R.out, "Holder   : bob\n"));
  assert_non_null(strstr(R.out, "Targets  : dev.lab-a.pci.00_07_0, dev.lab-a.pci.00_05_0\n"));
  assert_non_null(strstr(R.out, "TTL      : 1m30s\n"));
  assert_non_null(strstr(R.out, "Priority : low\n"));
  assert_non_null(strstr(R.out, "Reason   : ci run 9\n"));
  assert_non_null(strstr(R.out, "(in 1m"));
  snprintf(line, sizeof line, "Token    : %s\nexport DFNET_LEASE=%s\n", token, token);
  assert_non_null(strstr(R.out, line));
  /* the export line is the last */
  assert_string_equal(R.out + R.out_len - strlen(token) - 20, strstr(R.out, "export "));
  /* --json: one document, the token in it */
  assert_int_equal(run("lease", "acquire", "--json", "--ttl", "90s", "dev.lab-a.pci.00_07_0"), 0);
  cJSON *doc = parse_out();
  assert_non_null(doc);
  cJSON *l = cJSON_GetObjectItem(doc, "lease");
  assert_true(cJSON_GetObjectItem(l, "id")->valuedouble >= 42);
  assert_string_equal(cJSON_GetObjectItem(l, "holder")->valuestring, "bob");
  assert_non_null(strchr(cJSON_GetObjectItem(l, "token")->valuestring, '.'));
  assert_true(cJSON_IsNumber(cJSON_GetObjectItem(l, "expires_ms")));
  assert_int_equal(cJSON_GetObjectItem(l, "ttl_ms")->valueint, 90000);
  assert_string_equal(cJSON_GetObjectItem(l, "priority")->valuestring, "normal");
  assert_int_equal(cJSON_GetObjectItem(l, "queue_position")->valueint, 0);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(l, "reason")));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(l, "targets")), 1);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(l, "nodes")), 1);
  cJSON_Delete(doc);
  /* refusals: exit 1 with the manager's words */
  assert_int_equal(run("lease", "acquire", "dev.lab-a.busy"), 1);
  assert_non_null(
      strstr(R.err, "dfnet: FAILED_PRECONDITION: dev.lab-a.busy is leased by alice until"));
  assert_int_equal(run("lease", "acquire", "dev.none"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND:"));
  assert_int_equal(run("lease", "acquire", "--ttl", "0", "dev.lab-a.d"), 1);
  assert_non_null(strstr(R.err, "dfnet: PERMISSION_DENIED:"));
  use_scripted("viewer", "carol");
  assert_int_equal(run("lease", "acquire", "dev.lab-a.d"), 1);
  assert_non_null(strstr(R.err, "PERMISSION_DENIED"));
}

static void test_acquire_waits_in_the_queue(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  assert_int_equal(run("lease", "acquire", "--wait", "1s", "dev.lab-a.busy"), 1);
  assert_non_null(strstr(R.err, "[dfnet: waiting in the queue: position 2"));
  assert_non_null(strstr(R.err, "[dfnet: waiting in the queue: position 1"));
  assert_non_null(strstr(R.err, "dfnet: DEADLINE_EXCEEDED: waited 1000 ms"));
  assert_int_equal(run("lease", "acquire", "--wait", "dev.lab-a.queue"), 0);
  assert_non_null(strstr(R.err, "position 1"));
  assert_non_null(strstr(R.out, "export DFNET_LEASE="));
}

static void test_list_and_show(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("lease", "list"), 0);
  const char *head = "ID     HOLDER           EXPIRES";
  assert_true(strncmp(R.out, head, strlen(head)) == 0);
  assert_non_null(strstr(R.out, "\n7      alice            2027-01-15T08:00:00.000Z (in "));
  assert_non_null(strstr(R.out, "      3  dev.lab-a.busy\n"));
  assert_non_null(strstr(R.out, "\nQueue:\nPOS  ID     WHO"));
  assert_non_null(strstr(R.out, "\n   1 9      bob              normal   "));
  assert_int_equal(run("lease", "list", "dev.lab-a.busy", "--json"), 0);
  assert_string_equal(stats().list_target, "dev.lab-a.busy");
  cJSON *doc = parse_out();
  cJSON *held = cJSON_GetObjectItem(doc, "leases");
  cJSON *queue = cJSON_GetObjectItem(doc, "queue");
  assert_int_equal(cJSON_GetArraySize(held), 1);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(held, 0), "id")->valueint, 7);
  assert_int_equal(cJSON_GetArraySize(queue), 1);
  cJSON *w = cJSON_GetArrayItem(queue, 0);
  assert_int_equal(cJSON_GetObjectItem(w, "queue_position")->valueint, 1);
  assert_string_equal(cJSON_GetObjectItem(w, "reason")->valuestring, "nightly");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(w, "token")));
  cJSON_Delete(doc);
  assert_int_equal(run("lease", "list", "dev.lab-z"), 0);
  assert_string_equal(R.out, "No leases.\n");
  assert_int_equal(run("lease", "show", "7"), 0);
  assert_int_equal(stats().list_id, 7);
  const char *want =
      "Lease    : 7\nHolder   : alice\nTargets  : dev.lab-a.busy\n"
      "Nodes    : dev.lab-a.busy (3 nodes in all)\n"
      "Acquired : 2027-01-15T07:30:00.000Z\n"
      "Expires  : 2027-01-15T08:00:00.000Z (in ";
  assert_true(strncmp(R.out, want, strlen(want)) == 0);
  assert_non_null(strstr(R.out, "TTL      : 30m\nPriority : normal\nReason   : ci run 12\n"));
  assert_null(strstr(R.out, "Token"));
  assert_int_equal(run("lease", "show", "9"), 0);
  assert_non_null(strstr(R.out, "Waiting  : position 1 in the queue, since "));
  assert_int_equal(run("lease", "show", "--json", "7"), 0);
  doc = parse_out();
  cJSON *l = cJSON_GetObjectItem(doc, "lease");
  assert_int_equal(cJSON_GetObjectItem(l, "node_count")->valueint, 3);
  assert_true(cJSON_GetObjectItem(l, "expires_ms")->valuedouble == 1800000000000.0);
  cJSON_Delete(doc);
  assert_int_equal(run("lease", "show", "999"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND: "));
}

static void test_renew_and_release(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  assert_int_equal(run("lease", "acquire", "dev.lab-a.pci.00_07_0"), 0);
  char token[128];
  unsigned long long id = exported(token, sizeof token);
  setenv("DFNET_LEASE", token, 1);
  assert_int_equal(run("lease", "renew", "--ttl", "2h"), 0);
  ss_lease_stats_t st = stats();
  assert_int_equal(st.renew_id, id);
  assert_string_equal(st.renew_token, token);
  assert_int_equal(st.renew_ttl_ms, 7200000);
  char line[100];
  snprintf(line, sizeof line, "Renewed lease %llu: expires ", id);
  assert_non_null(strstr(R.out, line));
  assert_true(strstr(R.out, "(in 1h59m") != NULL || strstr(R.out, "(in 2h)") != NULL);
  char idarg[32];
  snprintf(idarg, sizeof idarg, "%llu", id);
  assert_int_equal(run("lease", "renew", "--json", idarg), 0);
  assert_string_equal(stats().renew_token, token); /* DFNET_LEASE is this lease's */
  cJSON *doc = parse_out();
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "lease"), "id")->valuedouble, id);
  cJSON_Delete(doc);
  assert_int_equal(run("lease", "release"), 0);
  st = stats();
  assert_int_equal(st.release_id, id);
  assert_string_equal(st.release_token, token);
  snprintf(line, sizeof line, "Released lease %llu\n", id);
  assert_string_equal(R.out, line);
  assert_int_equal(run("lease", "release"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND: "));
  unsetenv("DFNET_LEASE");
  /* a forced release: role admin, with a reason */
  assert_int_equal(run("lease", "acquire", "dev.lab-a.pci.00_07_0"), 0);
  id = exported(token, sizeof token);
  snprintf(idarg, sizeof idarg, "%llu", id);
  assert_int_equal(run("lease", "release", "--force", "--reason", "mine now", idarg), 1);
  assert_non_null(strstr(R.err, "PERMISSION_DENIED"));
  use_scripted("admin", "alice");
  assert_int_equal(run("lease", "release", "--force", "--reason", "board needed", idarg), 0);
  st = stats();
  assert_true(st.release_force);
  assert_string_equal(st.release_reason, "board needed");
}

static void test_history(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("lease", "history"), 0);
  const char *head = "TIME                      ACTOR            ACTION          LEASE  TARGETS";
  assert_true(strncmp(R.out, head, strlen(head)) == 0);
  assert_non_null(strstr(R.out,
                         "\n2027-01-15T07:30:00.000Z  alice            acquire             "
                         "7  dev.lab-a.busy           ci run 12\n"));
  assert_non_null(strstr(R.out, "dfnet-manager    expire"));
  assert_int_equal(stats().hist_since_ms, 0);
  assert_int_equal(run("lease", "history", "--since", "2027-01-15T07:33:20Z"), 0);
  assert_int_equal(stats().hist_since_ms, 1800000000000ull - 1600000);
  assert_null(strstr(R.out, " acquire "));
  assert_non_null(strstr(R.out, " renew "));
  assert_int_equal(run("lease", "history", "--since", "2027-01-15T08:33:20+01:00"), 0);
  assert_int_equal(stats().hist_since_ms, 1800000000000ull - 1600000);
  assert_int_equal(run("lease", "history", "--since", "1d"), 0);
  uint64_t now = (uint64_t)time(NULL) * 1000u;
  assert_true(stats().hist_since_ms + 86400000u <= now + 1000 &&
              stats().hist_since_ms + 86400000u + 10000 >= now);
  assert_int_equal(run("lease", "history", "--target", "dev.lab-a.busy", "--json"), 0);
  assert_string_equal(stats().hist_target, "dev.lab-a.busy");
  cJSON *doc = parse_out();
  cJSON *e = cJSON_GetObjectItem(doc, "entries");
  assert_int_equal(cJSON_GetArraySize(e), 3);
  cJSON *e0 = cJSON_GetArrayItem(e, 0);
  assert_int_equal(cJSON_GetObjectItem(e0, "seq")->valueint, 1);
  assert_string_equal(cJSON_GetObjectItem(e0, "actor")->valuestring, "alice");
  assert_string_equal(cJSON_GetObjectItem(e0, "action")->valuestring, "acquire");
  assert_int_equal(cJSON_GetObjectItem(e0, "lease_id")->valueint, 7);
  assert_string_equal(cJSON_GetObjectItem(e0, "targets")->valuestring, "dev.lab-a.busy");
  assert_string_equal(cJSON_GetObjectItem(e0, "detail")->valuestring, "ci run 12");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(e, 1), "detail")));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(doc, "more")));
  cJSON_Delete(doc);
  assert_int_equal(run("lease", "history", "-n", "2", "--json"), 0);
  assert_int_equal(stats().hist_limit, 2);
  doc = parse_out();
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "entries")), 2);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "more")));
  cJSON_Delete(doc);
  assert_int_equal(run("lease", "history", "--since", "2030-01-01"), 0);
  assert_string_equal(R.out, "No entries.\n");
}

/* node show's Lease line, host list's LEASES column, and their JSON. */
static void test_node_and_host_listings(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("node", "show", "dev.lab-a.pci.00_0a_0"), 0);
  assert_non_null(strstr(R.out,
                         "Class    : class/rng/000\n"
                         "Lease    : 7 by alice until 2027-01-15T08:00:00.000Z\n"));
  assert_int_equal(run("node", "show", "dev.lab-a.pci.00_05_0"), 0);
  assert_null(strstr(R.out, "Lease"));
  assert_int_equal(run("node", "show", "--json", "dev.lab-a.pci.00_0a_0"), 0);
  cJSON *doc = parse_out();
  cJSON *l = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "node"), "lease");
  assert_int_equal(cJSON_GetObjectItem(l, "id")->valueint, 7);
  assert_string_equal(cJSON_GetObjectItem(l, "holder")->valuestring, "alice");
  assert_true(cJSON_GetObjectItem(l, "expires_ms")->valuedouble == 1800000000000.0);
  cJSON_Delete(doc);
  assert_int_equal(run("node", "list", "--json"), 0);
  doc = parse_out();
  assert_true(cJSON_IsNull(
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "nodes"), 0), "lease")));
  cJSON_Delete(doc);
  assert_int_equal(run("host", "list"), 0);
  assert_non_null(strstr(R.out, " VERSION              LEASES           LABELS\n"));
  assert_non_null(strstr(R.out, " alice            rack=r0\n"));
  assert_non_null(strstr(R.out, " -                rack=r1  SANDBOX OFF\n"));
  assert_int_equal(run("host", "list", "--json"), 0);
  doc = parse_out();
  cJSON *hosts = cJSON_GetObjectItem(doc, "hosts");
  cJSON *a = cJSON_GetArrayItem(hosts, 0);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "lease_holders"), 0)->valuestring,
                      "alice");
  assert_int_equal(cJSON_GetObjectItem(a, "leased_nodes")->valueint, 1);
  assert_int_equal(
      cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(hosts, 1), "lease_holders")), 0);
  /* lab-b's agent runs with --no-sandbox: said in its row and its JSON */
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "sandboxed")));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(hosts, 1), "sandboxed")));
  cJSON_Delete(doc);
}

/* ---- lease run ---- */

/* CMD gets DFNET_LEASE (the lease's token), its exit status is dfnet's, and the lease is
 * released after it. */
static void test_run_env_and_status(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  char path[400], script[600], token[200];
  snprintf(path, sizeof path, "%s/run.token", dir);
  unlink(path);
  snprintf(script, sizeof script, "echo \"$DFNET_LEASE\" > %s; exit 7", path);
  unsigned releases = stats().releases;
  assert_int_equal(
      run("lease", "run", "--ttl", "10m", "dev.lab-a.pci.00_07_0", "--", "sh", "-c", script), 7);
  test_child_read_output(path, token, sizeof token);
  token[strcspn(token, "\n")] = '\0';
  unsigned long long id = strtoull(token, NULL, 10);
  assert_true(id >= 42);
  assert_int_equal(strlen(strchr(token, '.') + 1), 64);
  ss_lease_stats_t st = stats();
  assert_int_equal(st.acq_ttl_ms, 600000);
  assert_int_equal(st.releases, releases + 1);
  assert_int_equal(st.release_id, id);
  assert_string_equal(st.release_token, token);
  char says[100];
  snprintf(says, sizeof says, "[dfnet: lease %llu acquired, expires ", id);
  assert_non_null(strstr(R.err, says));
  snprintf(says, sizeof says, "[dfnet: lease %llu released]", id);
  assert_non_null(strstr(R.err, says));
  /* the command's output is its own; an outer DFNET_LEASE is replaced */
  setenv("DFNET_LEASE", "1.outer", 1);
  assert_int_equal(run("lease", "run", "dev.lab-a.pci.00_07_0", "--", "sh", "-c",
                       "echo \"$DFNET_LEASE\"; env | grep -c '^DFNET_LEASE='"),
                   0);
  unsetenv("DFNET_LEASE");
  assert_null(strstr(R.out, "outer"));
  assert_non_null(strstr(R.out, "\n1\n")); /* one DFNET_LEASE, the lease's */
  /* a command that is not there: 127, released all the same */
  releases = stats().releases;
  assert_int_equal(run("lease", "run", "dev.lab-a.pci.00_07_0", "--", "/nonexistent/cmd"), 127);
  assert_non_null(strstr(R.err, "cannot run '/nonexistent/cmd'"));
  assert_int_equal(stats().releases, releases + 1);
  /* refused: CMD never runs, exit 1 */
  unlink(path);
  snprintf(script, sizeof script, "touch %s", path);
  assert_int_equal(run("lease", "run", "dev.lab-a.busy", "--", "sh", "-c", script), 1);
  assert_int_equal(access(path, F_OK), -1);
}

/* A command that crashes: released, and 128 + its signal (139 for SIGSEGV). */
static void test_run_command_crashes(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  unsigned releases = stats().releases;
  assert_int_equal(run("lease", "run", "dev.lab-a.pci.00_07_0", "--", "sh", "-c", "kill -SEGV $$"),
                   139);
  assert_int_equal(stats().releases, releases + 1);
  assert_non_null(strstr(R.err, "released]"));
}

/* SIGTERM to dfnet (a CI runner cancelling the job): sent on to CMD, which ends; the lease
 * is released; dfnet exits with CMD's status (143). Renewed meanwhile (TTL/3). */
static void test_run_sigterm_forwarded(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  char path[400], script[600], line[300];
  snprintf(path, sizeof path, "%s/run.pid", dir);
  unlink(path);
  snprintf(script, sizeof script, "echo \"$$ $DFNET_LEASE\" > %s; exec sleep 30", path);
  unsigned releases = stats().releases, renews = stats().renews;
  pid_t pid =
      spawn("lease", "run", "--ttl", "900ms", "dev.lab-a.pci.00_07_0", "--", "sh", "-c", script);
  assert_true(wait_line(path, line, sizeof line));
  pid_t cmd = (pid_t)strtol(line, NULL, 10);
  unsigned long long id = strtoull(strchr(line, ' ') + 1, NULL, 10);
  for (int i = 0; i < 1000 && stats().renews < renews + 2; i++)
    sleep_ms(10); /* renewed every 300 ms */
  assert_true(stats().renews >= renews + 2);
  assert_int_equal(kill(pid, SIGTERM), 0);
  assert_int_equal(reap(pid), 143);
  assert_int_equal(kill(cmd, 0), -1); /* CMD ended (and was reaped by dfnet) */
  ss_lease_stats_t st = stats();
  assert_int_equal(st.releases, releases + 1);
  assert_int_equal(st.release_id, id);
  char err[4096];
  snprintf(path, sizeof path, "%s/bg.err", dir);
  test_child_read_output(path, err, sizeof err);
  assert_non_null(strstr(err, "released]"));
}

/* A signal while waiting in the queue: the request is cancelled (it leaves the queue),
 * nothing runs, dfnet exits 128 + the signal. */
static void test_signal_while_waiting(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  char path[400], script[600], err[4096] = "";
  snprintf(path, sizeof path, "%s/never", dir);
  unlink(path);
  snprintf(script, sizeof script, "touch %s", path);
  unsigned cancels = stats().cancels;
  pid_t pid = spawn("lease", "run", "--wait", "dev.lab-a.busy", "--", "sh", "-c", script);
  char errpath[400];
  snprintf(errpath, sizeof errpath, "%s/bg.err", dir);
  for (int i = 0; i < 1500 && strstr(err, "position 1") == NULL; i++) {
    sleep_ms(10);
    test_child_read_output(errpath, err, sizeof err);
  }
  assert_non_null(strstr(err, "position 1"));
  assert_int_equal(kill(pid, SIGINT), 0);
  assert_int_equal(reap(pid), 130);
  for (int i = 0; i < 200 && stats().cancels == cancels; i++)
    sleep_ms(10);
  assert_int_equal(stats().cancels, cancels + 1);
  assert_int_equal(access(path, F_OK), -1);
  test_child_read_output(errpath, err, sizeof err);
  assert_non_null(strstr(err, "dfnet: CANCELLED: interrupted by signal 2"));
  /* lease acquire --wait and SIGTERM alike */
  err[0] = '\0';
  pid = spawn("lease", "acquire", "--wait", "dev.lab-a.busy");
  for (int i = 0; i < 1500 && strstr(err, "position 1") == NULL; i++) {
    sleep_ms(10);
    test_child_read_output(errpath, err, sizeof err);
  }
  assert_int_equal(kill(pid, SIGTERM), 0);
  assert_int_equal(reap(pid), 143);
  for (int i = 0; i < 200 && stats().cancels == cancels + 1; i++)
    sleep_ms(10);
  assert_int_equal(stats().cancels, cancels + 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_of_every_verb),
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_acquire_text_and_json),
      cmocka_unit_test(test_acquire_waits_in_the_queue),
      cmocka_unit_test(test_list_and_show),
      cmocka_unit_test(test_renew_and_release),
      cmocka_unit_test(test_history),
      cmocka_unit_test(test_node_and_host_listings),
      cmocka_unit_test(test_run_env_and_status),
      cmocka_unit_test(test_run_command_crashes),
      cmocka_unit_test(test_run_sigterm_forwarded),
      cmocka_unit_test(test_signal_while_waiting),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
