/* Driver lifecycle and control end to end (issue 19, docs/architecture.md "Node control"):
 * the real `dfnet` CLI (a child process) against a real dfnet-manager with a real dfnet-host
 * and its dfnet-driver-host processes, over real TLS websockets on loopback.
 *
 * Every driver is the lifecycle test driver (tests/drivers/lifecycle.c), configured by its
 * manifest; the board file of host lab-l has platform devices (vid 0xd0f) for each scenario,
 * and a driver's "kid" child (fuchsia.BIND_PROTOCOL 70..73) is bound by a second driver:
 *
 *   rs0 (did 20)  rparent: an owned child "out" of class lcr (class/lcr/<NNN>) and a child
 *                 "kid" bound by rkid (whose stop takes 600 ms); host_restart_on_crash
 *   mb0 (did 21)  manual and manual2: disable_autobind (bind only on `dfnet node bind`)
 *   qz0 (did 22)  crashy: host_restart_on_crash, crashed into quarantine
 *   as0 (did 23)  slow: starts asynchronously, completing once the test opens its gate (a
 *                 file) and 2 s after it began at the earliest; its kid bound by slowkid
 *   af0 (did 24)  slowfail: its asynchronous start fails (INTERNAL) after 300 ms
 *   at0 (did 25)  slowpoke: start_timeout_ms 500, never completes in time
 *   sp0 (did 26)  sparent, its kid bound by skid (whose stop takes 200 ms): suspend, resume
 * The agent runs with --shutdown-reason reboot, the manager with --keepalive-ms 250.
 *
 * Checked, one cmocka test each:
 *   - restart: `driver restart` stops the children bottom-up and the driver before it starts
 *     again (the drivers' trace), reports the node running, and a call through the same class
 *     path works right after it returns; the bound child is bound again and answers;
 *   - disable then enable: disable stops the driver (children first) and leaves the node
 *     unbound (no other driver matches it), its children gone; enable binds it again, is
 *     answered once it runs (the outcome per node), and the class path works at once;
 *   - crash restart: a call that makes the driver abort; the crash policy restarts it in a
 *     new driver host only once its bound child's driver has stopped (the slow stop shows
 *     in the trace before the new start), its children come back, and calls work;
 *   - manual binding: disable_autobind drivers do not bind by themselves and `driver list -v`
 *     (and --json) says so; `node bind` with two candidates fails naming both, `--driver`
 *     picks one; `node unbind` leaves the node unbound across a rematch; a viewer may not;
 *   - quarantine: a driver crashed five times is quarantined; `node bind` clears it;
 *   - asynchronous start: the node is `starting`, its child neither listed (`node list`,
 *     `dump`, watch events) nor bound, until the start completes; then both are;
 *   - a start under way can be unbound at once (its driver stopped, not left to run until
 *     its start timeout), and a restart is answered once the new start completed;
 *   - a start failing asynchronously leaves the node unbound with that status and its child
 *     gone; a start past start_timeout_ms is stopped and the node shows DEADLINE_EXCEEDED;
 *   - suspend and resume: children first and parents first (the drivers' trace), with the
 *     reason's flags; calls end UNAVAILABLE "suspended" meanwhile; `node list` and `dump`
 *     show it; a restart ends it;
 *   - a suspend outlives a link outage (the agent silenced past the keepalive): the manager
 *     shows the reconciled drivers suspended again, and `node resume` resumes them;
 *   - `driver host list` (and --json): each driver host's id, a live pid, RSS, driver URLs
 *     and nodes (a driver still starting included); `dump` prints the same pid=N;
 *   - test nodes: `node add-test` says which driver would bind the node (the live index, as
 *     drivers are disabled and enabled), `node list --json` marks it, `node remove-test`
 *     removes it and refuses other nodes;
 *   - last, the board shuts down (SIGTERM): the drivers are suspended with REBOOT children
 *     first, then stopped children first (the slow stop of the kid before its parent's).
 * No timing is asserted: every wait is bounded only so that a failure ends the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "fabric.h"
#include "testhost/testhost.h"

#define HOST "lab-l"
#define PLATFORM "dev.lab-l.platform"
#define RS0 PLATFORM ".rs0"
#define RS0_KID RS0 ".kid"
#define RS0_OUT RS0 ".out"
#define MB0 PLATFORM ".mb0"
#define QZ0 PLATFORM ".qz0"
#define AS0 PLATFORM ".as0"
#define AS0_KID AS0 ".kid"
#define AF0 PLATFORM ".af0"
#define AT0 PLATFORM ".at0"
#define SP0 PLATFORM ".sp0"
#define SP0_KID SP0 ".kid"
#define BOOT_URL(name) "dfnet-boot:///" name "#meta/" name ".json"
#define PING "/dfnet.test.Lifecycle/Ping"
#define CRASH "/dfnet.test.Lifecycle/Crash"
#define WAIT_MS 30000
#define CALL_MS 10000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *admin;
  /* the drivers' traces, one per scenario */
  char restart_trace[320], async_trace[320], fail_trace[320], timeout_trace[320],
      suspend_trace[320];
  char gate[320];  /* slow's start completes once this file exists */
  char allow[330]; /* --allow-resource: every trace of the fabric's root */
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* ---- the fabric ----------------------------------------------------------------------- */

#define PLATFORM_RULES(did)                                           \
  "using fuchsia.platform;\n"                                         \
  "fuchsia.BIND_PROTOCOL == fuchsia.platform.BIND_PROTOCOL.DEVICE;\n" \
  "fuchsia.BIND_PLATFORM_DEV_VID == 0xd0f;\n"                         \
  "fuchsia.BIND_PLATFORM_DEV_DID == " #did ";\n"
#define KID_RULES(protocol) "fuchsia.BIND_PROTOCOL == " #protocol ";\n"

/* A boot driver package <root>/drivers/<name> of the lifecycle test driver: these bind rules
 * (compiled with disable_autobind when `manual`), and these program members (`extra`, may be
 * NULL; "config" is the driver's). */
static int lifecycle_package(const char *name, const char *rules, bool manual, const char *extra) {
  char drivers[320];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  int rc = manual ? th_write_driver_manual(drivers, name, rules, extra)
                  : th_write_driver(drivers, name, rules, extra);
  if (rc != 0)
    return -1;
  return fabric_sh("cp '%s/tests/drivers/lifecycle.so' '%s/%s/driver/%s.so'", F.fab.build, drivers,
                   name, name) == 0
             ? 0
             : -1;
}

/* "config": {<members>, "trace": trace} as a program member, and the trace as a manifest
 * resource: the agent (--allow-resource) opens it and hands it to the sandboxed driver host,
 * which writes through that descriptor (tests/drivers/test_file.h). */
static const char *config(char *buf, size_t size, const char *members, const char *trace) {
  snprintf(buf, size,
           "\"config\": {%s%s\"trace\": \"%s\"}, "
           "\"resources\": [{\"path\": \"%s\", \"access\": \"rw\"}]",
           members, members[0] ? ", " : "", trace, trace);
  return buf;
}

static int write_packages(void) {
  char c[2048], extra[2200], gated[600];
  snprintf(gated, sizeof gated,
           "\"start_delay_ms\": 2000, \"start_gate\": \"%s\", \"child\": \"kid\", "
           "\"child_protocol\": 71",
           F.gate);
  snprintf(extra, sizeof extra, "\"host_restart_on_crash\": \"true\", %s",
           config(c, sizeof c,
                  "\"child\": \"kid\", \"child_protocol\": 70, \"owned_child\": \"out\", "
                  "\"owned_class\": \"lcr\"",
                  F.restart_trace));
  if (lifecycle_package("rparent", PLATFORM_RULES(20), false, extra) != 0 ||
      lifecycle_package("rkid", KID_RULES(70), false,
                        config(c, sizeof c, "\"stop_delay_ms\": 600", F.restart_trace)) != 0 ||
      lifecycle_package("manual", PLATFORM_RULES(21), true, NULL) != 0 ||
      lifecycle_package("manual2", PLATFORM_RULES(21), true, NULL) != 0 ||
      lifecycle_package("crashy", PLATFORM_RULES(22), false,
                        "\"host_restart_on_crash\": \"true\"") != 0)
    return -1;
  /* a start that only the test ends: its timeout (120 s) never is what stops it */
  snprintf(extra, sizeof extra, "\"start_timeout_ms\": 120000, %s",
           config(c, sizeof c, gated, F.async_trace));
  if (lifecycle_package("slow", PLATFORM_RULES(23), false, extra) != 0 ||
      lifecycle_package("slowkid", KID_RULES(71), false, config(c, sizeof c, "", F.async_trace)) !=
          0)
    return -1;
  if (lifecycle_package("slowfail", PLATFORM_RULES(24), false,
                        config(c, sizeof c,
                               "\"start_delay_ms\": 300, \"start_status\": \"INTERNAL\", "
                               "\"child\": \"kid\", \"child_protocol\": 72",
                               F.fail_trace)) != 0 ||
      lifecycle_package("failkid", KID_RULES(72), false, config(c, sizeof c, "", F.fail_trace)) !=
          0)
    return -1;
  snprintf(extra, sizeof extra, "\"start_timeout_ms\": 500, %s",
           config(c, sizeof c,
                  "\"start_delay_ms\": 60000, \"child\": \"kid\", \"child_protocol\": 72",
                  F.timeout_trace));
  if (lifecycle_package("slowpoke", PLATFORM_RULES(25), false, extra) != 0)
    return -1;
  if (lifecycle_package("sparent", PLATFORM_RULES(26), false,
                        config(c, sizeof c, "\"child\": \"kid\", \"child_protocol\": 73",
                               F.suspend_trace)) != 0 ||
      lifecycle_package("skid", KID_RULES(73), false,
                        config(c, sizeof c, "\"stop_delay_ms\": 200", F.suspend_trace)) != 0)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.admin);
  F.admin = NULL;
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

/* sandboxed (dfnet-host's default): the traces are the drivers' manifest resources, which
 * --allow-resource lets the agent open (F.allow: a glob of every trace) */
static const char *agent_extra[] = {"--shutdown-reason", "reboot", "--allow-resource", NULL, NULL};
/* a silenced agent is dropped within a second (test_suspend_survives_reconnect) */
static const char *const manager_extra[] = {"--keepalive-ms", "250", NULL};

static int start(void) {
  F.agent.name = HOST;
  agent_extra[3] = F.allow;
  F.agent.extra = agent_extra;
  if (fabric_init(&F.fab, "cli-lifecycle", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "admin", "root") != 0 ||
      fabric_issue(&F.fab, "viewer", "watcher") != 0)
    return -1;
  snprintf(F.restart_trace, sizeof F.restart_trace, "%s/restart.trace", F.fab.root);
  snprintf(F.async_trace, sizeof F.async_trace, "%s/async.trace", F.fab.root);
  snprintf(F.fail_trace, sizeof F.fail_trace, "%s/fail.trace", F.fab.root);
  snprintf(F.timeout_trace, sizeof F.timeout_trace, "%s/timeout.trace", F.fab.root);
  snprintf(F.suspend_trace, sizeof F.suspend_trace, "%s/suspend.trace", F.fab.root);
  snprintf(F.gate, sizeof F.gate, "%s/slow.gate", F.fab.root);
  snprintf(F.allow, sizeof F.allow, "%s/*.trace", F.fab.root);
  if (write_packages() != 0 ||
      fabric_sh("touch '%s' '%s' '%s' '%s' '%s'", F.restart_trace, F.async_trace, F.fail_trace,
                F.timeout_trace, F.suspend_trace) != 0)
    return -1;
  const char *devices[] = {"rs0:20", "mb0:21", "qz0:22", "as0:23",
                           "af0:24", "at0:25", "sp0:26", NULL};
  fabric_write_board(&F.fab, devices);
  F.fab.manager_extra = manager_extra;
  if (fabric_sh("touch '%s'", F.gate) != 0 || fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.admin = fabric_connect(&F.fab, "root");
  if (F.admin == NULL)
    return -1;
  const char *bound[] = {RS0, RS0_KID, QZ0, AS0, AS0_KID, SP0, SP0_KID};
  for (size_t i = 0; i < sizeof bound / sizeof bound[0]; i++) {
    if (!fabric_wait_node(F.admin, bound[i], fabric_is_bound, NULL, WAIT_MS, NULL)) {
      print_message("%s was not bound\n", bound[i]);
      return -1;
    }
  }
  return 0;
}

static int setup(void **state) {
  if (start() == 0)
    return 0;
  teardown(state); /* cmocka runs no teardown after a failed set-up */
  return -1;
}

/* ---- views ---------------------------------------------------------------------------- */

/* A node as the manager shows it now (a verbose listing). */
typedef struct view {
  bool found, suspended, test;
  dfnet_client_node_state_t state;
  char url[256];
  dfnet_status_t code;
  char message[512];
  uint64_t driver_host_id;
  uint32_t pid;
  char class_path[64];
} view_t;

static view_t view(const char *moniker) {
  view_t v = {0};
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(F.admin, moniker, true, true, NULL, &l, &err) != DFNET_STATUS_OK)
    return v;
  for (size_t i = 0; i < l->count; i++) {
    const dfnet_client_node_t *n = &l->items[i];
    if (strcmp(n->moniker, moniker) != 0)
      continue;
    v.found = true;
    v.suspended = n->suspended;
    v.test = n->test;
    v.state = n->state;
    snprintf(v.url, sizeof v.url, "%s", n->driver_url);
    v.code = n->unbound_code;
    snprintf(v.message, sizeof v.message, "%s", n->unbound_message);
    v.driver_host_id = n->driver_host_id;
    v.pid = n->driver_host_pid;
    snprintf(v.class_path, sizeof v.class_path, "%s", n->class_path);
  }
  dfnet_client_node_list_free(l);
  return v;
}

typedef bool (*view_pred_t)(const view_t *v, const void *arg);

/* Poll until pred holds (bounded); the last view in *out (may be NULL). */
static bool wait_view(const char *moniker, view_pred_t pred, const void *arg, view_t *out) {
  view_t v;
  uint64_t end = fabric_now_ms() + WAIT_MS;
  do {
    v = view(moniker);
    if (pred(&v, arg))
      break;
    fabric_sleep_ms(50);
  } while (fabric_now_ms() < end);
  if (out != NULL)
    *out = v;
  if (!pred(&v, arg))
    print_message("%s: found=%d state=%s driver='%s' reason=%s: %s\n", moniker, v.found,
                  dfnet_client_node_state_str(v.state), v.url, dfnet_status_str(v.code), v.message);
  return pred(&v, arg);
}

/* Bound to the driver URL arg (NULL: any). */
static bool bound_to(const view_t *v, const void *arg) {
  return v->found && v->state == DFNET_CLIENT_NODE_BOUND &&
         (arg == NULL || strcmp(v->url, arg) == 0);
}

/* Bound in another driver host than *arg (a driver host id). */
static bool bound_elsewhere(const view_t *v, const void *arg) {
  return bound_to(v, NULL) && v->driver_host_id != *(const uint64_t *)arg;
}

/* Unbound (not starting), with the reason code *arg. */
static bool unbound_with(const view_t *v, const void *arg) {
  return v->found && v->state == DFNET_CLIENT_NODE_UNBOUND &&
         v->code == *(const dfnet_status_t *)arg;
}

static bool in_state(const view_t *v, const void *arg) {
  return v->found && v->state == *(const dfnet_client_node_state_t *)arg;
}

static bool gone(const view_t *v, const void *arg) {
  (void)arg;
  return !v->found;
}

/* A Ping through `target` answers "pong". */
static void assert_ping(const char *target) {
  char reply[64] = "";
  assert_int_equal(fabric_call(F.admin, target, PING, NULL, 0, CALL_MS, reply, sizeof reply),
                   DFNET_STATUS_OK);
  assert_string_equal(reply, "pong");
}

/* A Ping through `target` ends with `want`; its message into msg. */
static void assert_ping_fails(const char *target, dfnet_status_t want, char *msg, size_t size) {
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  dfnet_client_call_options_t o = {.deadline_ms = CALL_MS};
  dfnet_status_t st = dfnet_client_call(F.admin, target, PING, NULL, 0, &o, &reply, &len, &err);
  free(reply);
  if (st != want)
    print_message("%s: %s: %s (wanted %s)\n", target, dfnet_status_str(st), err.message,
                  dfnet_status_str(want));
  assert_int_equal(st, want);
  if (msg != NULL)
    snprintf(msg, size, "%s", err.message);
}

/* ---- traces ----------------------------------------------------------------------------- */

typedef struct trace {
  size_t count;
  char lines[256][160];
} trace_t;

static trace_t T; /* static storage */

static void trace_clear(const char *path) { assert_int_equal(truncate(path, 0), 0); }

static void trace_read(const char *path) {
  memset(&T, 0, sizeof T);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  while (T.count < 256 && fgets(T.lines[T.count], sizeof T.lines[0], f) != NULL) {
    T.lines[T.count][strcspn(T.lines[T.count], "\n")] = '\0';
    T.count++;
  }
  fclose(f);
}

/* The index of the first line "<what> <moniker>" (with or without more) at or after `from`;
 * -1 when there is none. */
static int trace_find(const char *what, const char *moniker, int from) {
  char want[160];
  int n = snprintf(want, sizeof want, "%s %s", what, moniker);
  for (size_t i = from < 0 ? 0 : (size_t)from; i < T.count; i++)
    if (strncmp(T.lines[i], want, (size_t)n) == 0 &&
        (T.lines[i][n] == '\0' || T.lines[i][n] == ' '))
      return (int)i;
  return -1;
}

static void trace_print(const char *path) {
  print_message("%s:\n", path);
  for (size_t i = 0; i < T.count; i++)
    print_message("  %s\n", T.lines[i]);
}

/* Lines i and j exist and i comes first. */
static void assert_before(int i, int j, const char *path) {
  if (i < 0 || j < 0 || i >= j)
    trace_print(path);
  assert_true(i >= 0);
  assert_true(j >= 0);
  assert_true(i < j);
}

/* Wait until the trace has a line "<what> <moniker>". */
static bool trace_wait(const char *path, const char *what, const char *moniker) {
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(50)) {
    trace_read(path);
    if (trace_find(what, moniker, 0) >= 0)
      return true;
  }
  trace_print(path);
  return false;
}

/* How many lines of the manager's and the agent's logs contain both `needle` and `about`
 * (the other nodes' failures, af0's and at0's, do not count). */
static int logs_count(const char *needle, const char *about) {
  const char *logs[] = {F.fab.manager_log, F.agent.log};
  int n = 0;
  for (size_t i = 0; i < 2; i++) {
    FILE *f = fopen(logs[i], "r");
    if (f == NULL)
      return -1;
    char line[2048];
    while (fgets(line, sizeof line, f) != NULL)
      n += strstr(line, needle) != NULL && strstr(line, about) != NULL;
    fclose(f);
  }
  return n;
}

/* ---- restart, disable/enable, crash restart --------------------------------------------- */

/* The stop order of rs0's subtree from line `from` on: kid's driver stopped, then rs0's
 * prepared and stopped; then rs0 started again, then its kid. */
static void assert_restart_order(int from) {
  trace_read(F.restart_trace);
  int kid_stop = trace_find("stop", RS0_KID, from);
  int prepare = trace_find("prepare_stop", RS0, from);
  int stop = trace_find("stop", RS0, from);
  int start = trace_find("start", RS0, stop);
  int kid_start = trace_find("start", RS0_KID, start);
  assert_before(kid_stop, prepare, F.restart_trace);
  assert_before(prepare, stop, F.restart_trace);
  assert_before(stop, start, F.restart_trace);
  assert_before(start, kid_start, F.restart_trace);
}

static void test_restart(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  view_t before = view(RS0), out = view(RS0_OUT);
  assert_true(bound_to(&before, BOOT_URL("rparent")));
  assert_true(out.found);
  assert_string_equal(out.class_path, "class/lcr/000");
  assert_ping(out.class_path);
  int refused = logs_count("ALREADY_EXISTS", RS0) + logs_count("failed to start", RS0) +
                logs_count("is stopping", RS0);
  trace_clear(F.restart_trace);

  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "rparent", NULL), 0);
  assert_non_null(strstr(R.out, "Restarting driver hosts containing rparent\n"));
  assert_non_null(strstr(R.out, "Restarted 1 driver host(s).\n"));
  assert_non_null(strstr(R.out, RS0 ": running " BOOT_URL("rparent") "\n"));
  /* answered once rs0 runs again: its owned child is back, at the same class path */
  assert_ping("class/lcr/000");
  view_t after = view(RS0);
  assert_true(bound_to(&after, BOOT_URL("rparent")));
  assert_int_not_equal(after.driver_host_id, before.driver_host_id);
  assert_int_not_equal(after.pid, before.pid);
  assert_string_equal(view(RS0_OUT).class_path, "class/lcr/000");
  /* the bound child: its driver stopped before its parent's, and bound again */
  assert_true(wait_view(RS0_KID, bound_to, BOOT_URL("rkid"), NULL));
  assert_ping(RS0_KID);
  assert_true(trace_wait(F.restart_trace, "start", RS0_KID));
  assert_restart_order(0);
  /* nothing was refused on the way (the re-added children, the new start) */
  assert_int_equal(logs_count("ALREADY_EXISTS", RS0) + logs_count("failed to start", RS0) +
                       logs_count("is stopping", RS0),
                   refused);

  /* the same with --json: the outcome per node */
  trace_clear(F.restart_trace);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "--json", BOOT_URL("rparent"), NULL),
                   0);
  cJSON *doc = cli_json(&R);
  assert_int_equal(cJSON_GetObjectItem(doc, "restarted_driver_hosts")->valueint, 1);
  cJSON *outcomes = cJSON_GetObjectItem(doc, "outcomes");
  assert_int_equal(cJSON_GetArraySize(outcomes), 1);
  cJSON *o = cJSON_GetArrayItem(outcomes, 0);
  assert_string_equal(cJSON_GetObjectItem(o, "node")->valuestring, RS0);
  assert_string_equal(cJSON_GetObjectItem(o, "code")->valuestring, "OK");
  assert_string_equal(cJSON_GetObjectItem(o, "driver")->valuestring, BOOT_URL("rparent"));
  cJSON_Delete(doc);
  assert_ping("class/lcr/000");
  assert_true(wait_view(RS0_KID, bound_to, BOOT_URL("rkid"), NULL));
  assert_ping(RS0_KID);
  assert_true(trace_wait(F.restart_trace, "start", RS0_KID));
  assert_restart_order(0);
}

static void test_disable_enable(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_true(wait_view(RS0_KID, bound_to, BOOT_URL("rkid"), NULL));
  trace_clear(F.restart_trace);

  /* disable: stopped (children first) and matched again: nothing else matches rs0 */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "disable", "rparent", NULL), 0);
  assert_non_null(strstr(R.out, "Disabled " BOOT_URL("rparent") "\n"));
  assert_non_null(strstr(R.out, RS0 ": NOT_FOUND: "));
  view_t v = view(RS0);
  assert_true(v.found);
  assert_int_equal(v.state, DFNET_CLIENT_NODE_UNBOUND);
  assert_false(view(RS0_KID).found);
  assert_false(view(RS0_OUT).found);
  assert_ping_fails("class/lcr/000", DFNET_STATUS_NOT_FOUND, NULL, 0);
  trace_read(F.restart_trace);
  assert_before(trace_find("stop", RS0_KID, 0), trace_find("prepare_stop", RS0, 0),
                F.restart_trace);
  assert_before(trace_find("prepare_stop", RS0, 0), trace_find("stop", RS0, 0), F.restart_trace);
  assert_int_equal(trace_find("start", RS0, 0), -1);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *d;
  bool disabled = false;
  cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "drivers")) {
    if (strcmp(cJSON_GetObjectItem(d, "name")->valuestring, "rparent") == 0)
      disabled = cJSON_IsTrue(cJSON_GetObjectItem(d, "disabled"));
  }
  cJSON_Delete(doc);
  assert_true(disabled);

  /* enable: rs0 is matched again; answered once it runs, so the class path works at once */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "enable", "rparent", NULL), 0);
  assert_non_null(strstr(R.out, "Enabled " BOOT_URL("rparent") "\n"));
  assert_non_null(strstr(R.out, RS0 ": running " BOOT_URL("rparent") "\n"));
  v = view(RS0);
  assert_true(bound_to(&v, BOOT_URL("rparent")));
  assert_ping("class/lcr/000");
  assert_true(wait_view(RS0_KID, bound_to, BOOT_URL("rkid"), NULL));
  assert_ping(RS0_KID);
  assert_true(trace_wait(F.restart_trace, "start", RS0_KID));
  assert_restart_order(0);
}

static void test_crash_restart(void **state) {
  (void)state;
  assert_true(wait_view(RS0_KID, bound_to, BOOT_URL("rkid"), NULL));
  view_t before = view(RS0);
  trace_clear(F.restart_trace);
  /* the driver aborts: its call ends UNAVAILABLE, the crash policy restarts it */
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  dfnet_client_call_options_t o = {.deadline_ms = CALL_MS};
  assert_int_equal(dfnet_client_call(F.admin, RS0, CRASH, NULL, 0, &o, &reply, &len, &err),
                   DFNET_STATUS_UNAVAILABLE);
  free(reply);
  view_t after;
  assert_true(wait_view(RS0, bound_elsewhere, &before.driver_host_id, &after));
  assert_int_not_equal(after.pid, before.pid);
  assert_true(wait_view(RS0_OUT, in_state,
                        &(dfnet_client_node_state_t){DFNET_CLIENT_NODE_OWNED_BY_PARENT}, NULL));
  assert_ping("class/lcr/000");
  assert_true(wait_view(RS0_KID, bound_to, BOOT_URL("rkid"), NULL));
  assert_ping(RS0_KID);
  /* the kid's driver was stopped (its parent's children go) and started again after its
   * parent (which died without a stop) */
  assert_true(trace_wait(F.restart_trace, "start", RS0_KID));
  trace_read(F.restart_trace);
  assert_before(trace_find("stop", RS0_KID, 0), trace_find("start", RS0, 0), F.restart_trace);
  assert_before(trace_find("start", RS0, 0), trace_find("start", RS0_KID, 0), F.restart_trace);
  assert_int_equal(trace_find("stop", RS0, 0), -1);
}

/* ---- manual binding, quarantine ---------------------------------------------------------- */

/* The `driver list --json` entry named `name`'s member `key` (the doc owns it). */
static cJSON *driver_member(cJSON *doc, const char *name, const char *key) {
  cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "drivers")) {
    if (strcmp(cJSON_GetObjectItem(d, "name")->valuestring, name) == 0)
      return cJSON_GetObjectItem(d, key);
  }
  return NULL;
}

static void test_manual_bind(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  /* the index says so */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_true(cJSON_IsTrue(driver_member(doc, "manual", "disable_autobind")));
  assert_true(cJSON_IsTrue(driver_member(doc, "manual2", "disable_autobind")));
  assert_true(cJSON_IsFalse(driver_member(doc, "rparent", "disable_autobind")));
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "-v", NULL), 0);
  const char *entry = strstr(R.out, "URL       : " BOOT_URL("manual") "\n");
  assert_non_null(entry);
  const char *autobind = strstr(entry, "Autobind  : ");
  assert_non_null(autobind);
  assert_true(strncmp(autobind, "Autobind  : disabled", 20) == 0);
  entry = strstr(R.out, "URL       : " BOOT_URL("rparent") "\n");
  assert_non_null(entry);
  assert_true(strncmp(strstr(entry, "Autobind  : "), "Autobind  : enabled\n", 20) == 0);

  /* nothing bound mb0 by itself (the agent announced it with the others, all bound now) */
  view_t v = view(MB0);
  assert_true(v.found);
  assert_int_equal(v.state, DFNET_CLIENT_NODE_UNBOUND);
  assert_string_equal(v.url, "");

  /* a viewer may not bind */
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", MB0, NULL), 1);
  assert_true(strncmp(R.err, "dfnet: PERMISSION_DENIED: ", 26) == 0);
  cli_use(&F.fab, "root");

  /* a manual bind: both match at the same level, so neither binds; --driver picks one */
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", MB0, NULL), 1);
  assert_non_null(strstr(R.err, BOOT_URL("manual")));
  assert_non_null(strstr(R.err, BOOT_URL("manual2")));
  assert_int_equal(view(MB0).state, DFNET_CLIENT_NODE_UNBOUND);
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", "--driver", "manual2", MB0, NULL), 0);
  assert_non_null(strstr(R.out, "Bind requested for " MB0));
  assert_true(wait_view(MB0, bound_to, BOOT_URL("manual2"), NULL));
  assert_ping(MB0);
  /* bound: another bind is refused unless forced */
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", "--driver", "manual", MB0, NULL), 1);
  assert_non_null(strstr(R.err, "FAILED_PRECONDITION"));

  /* unbind: it stays unbound, also when the unbound nodes are matched again */
  assert_int_equal(cli_run(&R, &F.fab, "node", "unbind", MB0, NULL), 0);
  assert_non_null(strstr(R.out, "Unbound " MB0));
  v = view(MB0);
  assert_int_equal(v.state, DFNET_CLIENT_NODE_UNBOUND);
  assert_non_null(strstr(v.message, "unbound by root"));
  assert_ping_fails(MB0, DFNET_STATUS_FAILED_PRECONDITION, NULL, 0);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "enable", "manual2", NULL), 0); /* a rematch */
  fabric_sleep_ms(300);
  v = view(MB0);
  assert_int_equal(v.state, DFNET_CLIENT_NODE_UNBOUND);
  assert_non_null(strstr(v.message, "unbound by root"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "unbind", MB0, NULL), 1); /* nothing to stop */
  assert_non_null(strstr(R.err, "FAILED_PRECONDITION"));

  /* bound again by hand, to the other one */
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", "--driver", BOOT_URL("manual"), MB0, NULL),
                   0);
  assert_true(wait_view(MB0, bound_to, BOOT_URL("manual"), NULL));
  assert_ping(MB0);
}

static void test_quarantine_cleared(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  /* crash it until the crash policy gives up (5 crashes within a minute) */
  view_t v = view(QZ0);
  assert_true(bound_to(&v, BOOT_URL("crashy")));
  const dfnet_client_node_state_t quarantined = DFNET_CLIENT_NODE_QUARANTINED;
  for (int i = 0; i < 5; i++) {
    uint64_t dh = v.driver_host_id;
    uint8_t *reply = NULL;
    size_t len = 0;
    dfnet_client_error_t err;
    dfnet_client_call_options_t o = {.deadline_ms = CALL_MS};
    assert_int_equal(dfnet_client_call(F.admin, QZ0, CRASH, NULL, 0, &o, &reply, &len, &err),
                     DFNET_STATUS_UNAVAILABLE);
    free(reply);
    if (i < 4)
      assert_true(wait_view(QZ0, bound_elsewhere, &dh, &v));
  }
  assert_true(wait_view(QZ0, in_state, &quarantined, &v));
  assert_non_null(strstr(v.message, "quarantined"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "--json", QZ0, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *n = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "nodes"), 0);
  assert_string_equal(cJSON_GetObjectItem(n, "state")->valuestring, "quarantined");
  cJSON_Delete(doc);
  /* it stays so until an admin asks */
  fabric_sleep_ms(500);
  assert_int_equal(view(QZ0).state, DFNET_CLIENT_NODE_QUARANTINED);
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", QZ0, NULL), 0);
  assert_non_null(strstr(R.out, "Bind requested for " QZ0));
  assert_true(wait_view(QZ0, bound_to, BOOT_URL("crashy"), NULL));
  assert_ping(QZ0);
}

/* ---- asynchronous start ------------------------------------------------------------------- */

/* Node events a watch saw, in order: "<kind> <moniker>" (NODE_ADDED, NODE_BOUND only). */
static struct {
  pthread_mutex_t mu;
  size_t count;
  char lines[256][160];
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_event(void *user, dfnet_client_watch_id_t watch, const dfnet_client_event_t *e) {
  (void)user;
  (void)watch;
  if (e->kind != DFNET_CLIENT_EVENT_NODE_ADDED && e->kind != DFNET_CLIENT_EVENT_NODE_BOUND)
    return;
  pthread_mutex_lock(&W.mu);
  if (W.count < 256)
    snprintf(W.lines[W.count++], sizeof W.lines[0], "%s %s",
             e->kind == DFNET_CLIENT_EVENT_NODE_ADDED ? "added" : "bound", e->subject);
  pthread_mutex_unlock(&W.mu);
}

static void on_end(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  (void)user;
  (void)id;
  (void)st;
  (void)msg;
}

/* The index of the event line `line` the watch saw; -1 when none. */
static int watched(const char *line) {
  int at = -1;
  pthread_mutex_lock(&W.mu);
  for (size_t i = 0; i < W.count && at < 0; i++)
    if (strcmp(W.lines[i], line) == 0)
      at = (int)i;
  pthread_mutex_unlock(&W.mu);
  return at;
}

/* Does `node dump --json` list the moniker? */
static bool dumped(const char *moniker) {
  assert_int_equal(cli_run(&R, &F.fab, "node", "dump", "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  bool found = false;
  cJSON *n;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(doc, "nodes")) {
    found |= strcmp(cJSON_GetObjectItem(n, "moniker")->valuestring, moniker) == 0;
  }
  cJSON_Delete(doc);
  return found;
}

static void test_async_start(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));
  assert_int_equal(cli_run(&R, &F.fab, "node", "unbind", AS0, NULL), 0);
  assert_false(view(AS0_KID).found);
  trace_clear(F.async_trace);
  dfnet_client_watch_id_t watch = 0;
  dfnet_client_error_t err;
  assert_int_equal(
      dfnet_client_watch(F.admin, DFNET_CLIENT_WATCH_NODES, on_event, on_end, NULL, &watch, &err),
      DFNET_STATUS_OK);

  /* bound again: the driver completes its start once the test opens the gate, and 2 s
   * after it began at the earliest */
  assert_int_equal(unlink(F.gate), 0);
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", AS0, NULL), 0);
  assert_non_null(strstr(R.out, "starting " BOOT_URL("slow")));
  assert_true(trace_wait(F.async_trace, "start", AS0)); /* the kid was added by now */
  /* until then: starting, the kid neither listed nor bound, calls UNAVAILABLE */
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "--json", AS0, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *nodes = cJSON_GetObjectItem(doc, "nodes");
  assert_int_equal(cJSON_GetArraySize(nodes), 1);
  cJSON *n = cJSON_GetArrayItem(nodes, 0);
  assert_string_equal(cJSON_GetObjectItem(n, "moniker")->valuestring, AS0);
  assert_string_equal(cJSON_GetObjectItem(n, "state")->valuestring, "starting");
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", AS0, NULL), 0);
  assert_string_equal(R.out, AS0 "\n");
  assert_false(dumped(AS0_KID));
  assert_true(dumped(AS0));
  char msg[512];
  assert_ping_fails(AS0, DFNET_STATUS_UNAVAILABLE, NULL, 0);
  assert_ping_fails(AS0_KID, DFNET_STATUS_UNAVAILABLE, msg, sizeof msg); /* not ready */
  assert_non_null(strstr(msg, "its parent's driver is starting"));
  trace_read(F.async_trace);
  assert_int_equal(trace_find("start", AS0_KID, 0), -1);
  /* so it stays for 2 s */
  for (uint64_t end = fabric_now_ms() + 2000; fabric_now_ms() < end; fabric_sleep_ms(100)) {
    assert_int_equal(view(AS0).state, DFNET_CLIENT_NODE_STARTING);
    assert_false(view(AS0_KID).found);
  }
  trace_read(F.async_trace);
  assert_int_equal(trace_find("start", AS0_KID, 0), -1);

  /* then: bound, the kid listed and bound by its driver */
  assert_int_equal(fabric_sh("touch '%s'", F.gate), 0);
  assert_true(wait_view(AS0, bound_to, BOOT_URL("slow"), NULL));
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", AS0, NULL), 0);
  assert_string_equal(R.out, AS0 "\n" AS0_KID "\n");
  assert_true(dumped(AS0_KID));
  assert_ping(AS0);
  assert_ping(AS0_KID);
  assert_true(trace_wait(F.async_trace, "start", AS0_KID));
  /* watchers learnt of the kid only once its parent's start had completed */
  int added = watched("added " AS0_KID), bound = watched("bound " AS0);
  dfnet_client_watch_cancel(F.admin, watch);
  assert_true(bound >= 0);
  assert_true(added > bound);
  assert_true(watched("bound " AS0_KID) > added);
}

/* A start still in progress can be unbound (its driver stopped, its kid never shown) and
 * restarted (answered once the new start completed). */
static void test_async_start_interrupted(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));
  assert_int_equal(cli_run(&R, &F.fab, "node", "unbind", AS0, NULL), 0);
  trace_clear(F.async_trace);
  assert_int_equal(unlink(F.gate), 0); /* it would never complete */
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", AS0, NULL), 0);
  assert_true(trace_wait(F.async_trace, "start", AS0));
  assert_int_equal(view(AS0).state, DFNET_CLIENT_NODE_STARTING);
  assert_int_equal(cli_run(&R, &F.fab, "node", "unbind", AS0, NULL), 0);
  view_t v = view(AS0);
  assert_int_equal(v.state, DFNET_CLIENT_NODE_UNBOUND);
  assert_non_null(strstr(v.message, "unbound by root"));
  assert_false(view(AS0_KID).found);
  trace_read(F.async_trace);
  assert_before(trace_find("start", AS0, 0), trace_find("prepare_stop", AS0, 0), F.async_trace);
  assert_before(trace_find("prepare_stop", AS0, 0), trace_find("stop", AS0, 0), F.async_trace);
  /* the start it gave up never completes later: the node stays unbound, the kid unseen */
  assert_int_equal(fabric_sh("touch '%s'", F.gate), 0);
  fabric_sleep_ms(500);
  v = view(AS0);
  assert_int_equal(v.state, DFNET_CLIENT_NODE_UNBOUND);
  assert_false(view(AS0_KID).found);
  trace_read(F.async_trace);
  assert_int_equal(trace_find("start", AS0_KID, 0), -1);

  /* bound again, then restarted: answered once the new start completed */
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", AS0, NULL), 0);
  assert_true(wait_view(AS0, bound_to, BOOT_URL("slow"), NULL));
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));
  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "slow", NULL), 0);
  assert_non_null(strstr(R.out, AS0 ": running " BOOT_URL("slow") "\n"));
  assert_int_equal(view(AS0).state, DFNET_CLIENT_NODE_BOUND);
  assert_ping(AS0);
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));
  assert_ping(AS0_KID);
}

static void test_async_start_fails(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  /* at the agent's start: failed after 300 ms with INTERNAL, its kid gone with it */
  const dfnet_status_t internal = DFNET_STATUS_INTERNAL;
  view_t v;
  assert_true(wait_view(AF0, unbound_with, &internal, &v));
  assert_false(view(AF0 ".kid").found);
  assert_true(trace_wait(F.fail_trace, "stop", AF0));
  trace_read(F.fail_trace);
  assert_before(trace_find("start", AF0, 0), trace_find("prepare_stop", AF0, 0), F.fail_trace);
  assert_int_equal(trace_find("start", AF0 ".kid", 0), -1);

  /* once more by hand, watched: the kid never shows */
  trace_clear(F.fail_trace);
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", AF0, NULL), 0);
  bool kid_seen = false;
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(20)) {
    kid_seen |= view(AF0 ".kid").found;
    v = view(AF0);
    if (unbound_with(&v, &internal))
      break;
  }
  assert_true(unbound_with(&v, &internal));
  assert_false(kid_seen);
  assert_false(view(AF0 ".kid").found);
  assert_true(trace_wait(F.fail_trace, "stop", AF0));
  trace_read(F.fail_trace);
  assert_int_equal(trace_find("start", AF0 ".kid", 0), -1);
  assert_ping_fails(AF0, DFNET_STATUS_FAILED_PRECONDITION, NULL, 0);
}

static void test_start_timeout(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  const dfnet_status_t deadline = DFNET_STATUS_DEADLINE_EXCEEDED;
  view_t v;
  assert_true(wait_view(AT0, unbound_with, &deadline, &v));
  assert_false(view(AT0 ".kid").found);
  /* the driver host stopped the driver it gave up on */
  assert_true(trace_wait(F.timeout_trace, "stop", AT0));
  trace_read(F.timeout_trace);
  assert_before(trace_find("start", AT0, 0), trace_find("prepare_stop", AT0, 0), F.timeout_trace);
  assert_before(trace_find("prepare_stop", AT0, 0), trace_find("stop", AT0, 0), F.timeout_trace);
  assert_int_equal(trace_find("start", AT0 ".kid", 0), -1);
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", "--json", AT0, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *reason = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "node"), "unbound_reason");
  assert_string_equal(cJSON_GetObjectItem(reason, "code")->valuestring, "DEADLINE_EXCEEDED");
  cJSON_Delete(doc);
}

/* ---- suspend and resume -------------------------------------------------------------------- */

static void test_suspend_resume(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_true(wait_view(SP0_KID, bound_to, BOOT_URL("skid"), NULL));
  trace_clear(F.suspend_trace);

  assert_int_equal(cli_run(&R, &F.fab, "node", "suspend", SP0, NULL), 0);
  assert_non_null(strstr(R.out, "Suspended (suspend-ram) " SP0));
  trace_read(F.suspend_trace);
  int kid = trace_find("suspend", SP0_KID, 0), parent = trace_find("suspend", SP0, 0);
  assert_before(kid, parent, F.suspend_trace); /* children first */
  assert_string_equal(T.lines[kid], "suspend " SP0_KID " 0xdcdc0400");
  assert_string_equal(T.lines[parent], "suspend " SP0 " 0xdcdc0400");
  assert_true(view(SP0).suspended);
  assert_true(view(SP0_KID).suspended);
  char msg[512];
  assert_ping_fails(SP0, DFNET_STATUS_UNAVAILABLE, msg, sizeof msg);
  assert_non_null(strstr(msg, "suspended"));
  assert_ping_fails(SP0_KID, DFNET_STATUS_UNAVAILABLE, msg, sizeof msg);
  assert_non_null(strstr(msg, "suspended"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "--json", SP0, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *n;
  int suspended = 0;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(doc, "nodes")) {
    suspended += cJSON_IsTrue(cJSON_GetObjectItem(n, "suspended"));
  }
  cJSON_Delete(doc);
  assert_int_equal(suspended, 2);
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "-v", SP0_KID, NULL), 0);
  assert_non_null(strstr(R.out, "State    : bound (suspended)\n"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "dump", NULL), 0);
  assert_non_null(strstr(R.out, BOOT_URL("sparent") " (suspended)\n"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "resume", SP0, NULL), 0);
  assert_non_null(strstr(R.out, "Resumed " SP0));
  trace_read(F.suspend_trace);
  int rparent = trace_find("resume", SP0, 0), rkid = trace_find("resume", SP0_KID, 0);
  assert_before(parent, rparent, F.suspend_trace);
  assert_before(rparent, rkid, F.suspend_trace); /* parents first */
  assert_false(view(SP0).suspended);
  assert_false(view(SP0_KID).suspended);
  assert_ping(SP0);
  assert_ping(SP0_KID);

  /* the child alone, for a reboot: its parent keeps running */
  trace_clear(F.suspend_trace);
  assert_int_equal(cli_run(&R, &F.fab, "node", "suspend", "--reason", "reboot", SP0_KID, NULL), 0);
  trace_read(F.suspend_trace);
  assert_int_equal(T.count, 1);
  assert_string_equal(T.lines[0], "suspend " SP0_KID " 0xdcdc0100");
  assert_ping(SP0);
  assert_ping_fails(SP0_KID, DFNET_STATUS_UNAVAILABLE, NULL, 0);
  assert_int_equal(cli_run(&R, &F.fab, "node", "resume", SP0_KID, NULL), 0);
  assert_ping(SP0_KID);
  /* not suspended: resume is refused */
  assert_int_equal(cli_run(&R, &F.fab, "node", "resume", SP0_KID, NULL), 1);
  assert_non_null(strstr(R.err, "FAILED_PRECONDITION"));

  /* a restart ends a suspend: the suspended drivers are stopped (children first) and start
   * afresh */
  assert_int_equal(cli_run(&R, &F.fab, "node", "suspend", SP0, NULL), 0);
  trace_clear(F.suspend_trace);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "restart", "sparent", NULL), 0);
  assert_non_null(strstr(R.out, SP0 ": running " BOOT_URL("sparent") "\n"));
  assert_false(view(SP0).suspended);
  assert_ping(SP0);
  assert_true(wait_view(SP0_KID, bound_to, BOOT_URL("skid"), NULL));
  assert_false(view(SP0_KID).suspended);
  assert_ping(SP0_KID);
  assert_true(trace_wait(F.suspend_trace, "start", SP0_KID));
  trace_read(F.suspend_trace);
  assert_before(trace_find("stop", SP0_KID, 0), trace_find("prepare_stop", SP0, 0),
                F.suspend_trace);
  assert_before(trace_find("stop", SP0, 0), trace_find("start", SP0, 0), F.suspend_trace);
  assert_int_equal(trace_find("resume", SP0, 0), -1);
}

/* ---- driver hosts, test nodes -------------------------------------------------------------- */

/* The pid `node dump` prints for the node named `name` ("[name] pid=N url"); 0 when none. */
static unsigned dump_pid(const char *out, const char *name) {
  char want[64];
  snprintf(want, sizeof want, "[%s] pid=", name);
  const char *at = strstr(out, want);
  return at != NULL ? (unsigned)strtoul(at + strlen(want), NULL, 10) : 0;
}

/* Does the JSON array of strings hold s? */
static bool holds(const cJSON *arr, const char *s) {
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) {
    if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
      return true;
  }
  return false;
}

static void test_driver_host_list(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_true(wait_view(RS0_KID, bound_to, NULL, NULL));
  assert_true(wait_view(SP0_KID, bound_to, NULL, NULL));
  /* as0's driver starting (until the gate opens): its driver host lists it all the same */
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));
  assert_int_equal(cli_run(&R, &F.fab, "node", "unbind", AS0, NULL), 0);
  assert_int_equal(unlink(F.gate), 0);
  assert_int_equal(cli_run(&R, &F.fab, "node", "bind", AS0, NULL), 0);
  assert_true(trace_wait(F.async_trace, "start", AS0));
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "node", "dump", NULL), 0);
  static char dump[sizeof R.out];
  memcpy(dump, R.out, sizeof dump);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", "--json", HOST, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *hosts = cJSON_GetObjectItem(doc, "driver_hosts");
  assert_true(cJSON_GetArraySize(hosts) >= 6);
  cJSON *h;
  int rs0_seen = 0, as0_seen = 0;
  unsigned rs0_pid = 0;
  double rs0_id = 0;
  cJSON_ArrayForEach(h, hosts) {
    assert_string_equal(cJSON_GetObjectItem(h, "host")->valuestring, HOST);
    unsigned pid = (unsigned)cJSON_GetObjectItem(h, "pid")->valuedouble;
    assert_true(pid > 0);
    assert_true(cJSON_GetObjectItem(h, "rss_bytes")->valuedouble > 0);
    cJSON *nodes = cJSON_GetObjectItem(h, "nodes");
    cJSON *drivers = cJSON_GetObjectItem(h, "drivers");
    /* a live dfnet-driver-host (those of af0 and at0 come and go: their starts fail, and
     * are tried again whenever the unbound nodes are matched again) */
    if (holds(nodes, RS0) || holds(nodes, RS0_KID) || holds(nodes, SP0) || holds(nodes, AS0)) {
      assert_int_equal(kill((pid_t)pid, 0), 0);
      char path[64], cmd[256] = "";
      snprintf(path, sizeof path, "/proc/%u/cmdline", pid);
      FILE *f = fopen(path, "r");
      assert_non_null(f);
      size_t got = fread(cmd, 1, sizeof cmd - 1, f);
      fclose(f);
      cmd[got] = '\0';
      assert_non_null(strstr(cmd, "dfnet-driver-host"));
    }
    if (cJSON_GetArraySize(nodes) < 1 || cJSON_GetArraySize(drivers) < 1) {
      char *text = cJSON_Print(h);
      print_message("a driver host without nodes or drivers: %s\n", text);
      free(text);
    }
    assert_true(cJSON_GetArraySize(nodes) >= 1);
    assert_true(cJSON_GetArraySize(drivers) >= 1);
    /* each node's dump line names the same pid and one of the drivers */
    const cJSON *node;
    cJSON_ArrayForEach(node, nodes) {
      const char *name = strrchr(node->valuestring, '.') + 1;
      view_t v = view(node->valuestring);
      bool churning = strcmp(name, "af0") == 0 || strcmp(name, "at0") == 0;
      if (churning && v.state != DFNET_CLIENT_NODE_BOUND)
        continue; /* its start failed since (it was starting) */
      assert_true(holds(drivers, v.url));
      if (v.state == DFNET_CLIENT_NODE_STARTING) {
        as0_seen += strcmp(node->valuestring, AS0) == 0; /* its pid: once it has started */
        continue;
      }
      if (strcmp(name, "kid") != 0) /* several nodes are named kid */
        assert_int_equal(dump_pid(dump, name), pid);
      assert_int_equal(v.pid, pid);
    }
    if (holds(nodes, RS0)) {
      rs0_seen++;
      rs0_pid = pid;
      rs0_id = cJSON_GetObjectItem(h, "id")->valuedouble;
      assert_true(holds(drivers, BOOT_URL("rparent")));
      assert_false(holds(nodes, RS0_KID)); /* the kid's driver has a driver host of its own */
    }
  }
  cJSON_Delete(doc);
  assert_int_equal(rs0_seen, 1);
  assert_int_equal(as0_seen, 1);
  assert_int_equal(view(AS0).state, DFNET_CLIENT_NODE_STARTING); /* it was, while listed */
  assert_int_equal(view(RS0).driver_host_id, (uint64_t)rs0_id);
  assert_int_equal(fabric_sh("touch '%s'", F.gate), 0);
  assert_true(wait_view(AS0_KID, bound_to, BOOT_URL("slowkid"), NULL));

  /* the table: per board, then each driver host with its drivers and nodes */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", NULL), 0);
  assert_true(strncmp(R.out, "[" HOST "]\n", strlen(HOST) + 3) == 0);
  char line[128];
  snprintf(line, sizeof line, "  Driver Host %.0f: pid %u, RSS ", rs0_id, rs0_pid);
  const char *at = strstr(R.out, line);
  assert_non_null(at);
  const char *next = strstr(at + 1, "  Driver Host ");
  const char *drv = strstr(at, "    Driver : " BOOT_URL("rparent") "\n");
  const char *nod = strstr(at, "    Node   : " RS0 "\n");
  assert_non_null(drv);
  assert_non_null(nod);
  assert_true(next == NULL || (drv < next && nod < next));
  /* an unknown board */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", "lab-none", NULL), 1);
  assert_true(strncmp(R.err, "dfnet: NOT_FOUND: ", 18) == 0);
}

static void test_test_node(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_int_equal(cli_run(&R, &F.fab, "node", "add-test", PLATFORM, "tn0", "--property",
                           "fuchsia.BIND_PROTOCOL=70", NULL),
                   0);
  assert_non_null(strstr(R.out, "Added test node " PLATFORM ".tn0"));
  assert_non_null(strstr(R.out, "would bind " BOOT_URL("rkid")));
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "--json", "--exact", PLATFORM ".tn0", NULL),
                   0);
  cJSON *doc = cli_json(&R);
  cJSON *n = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "nodes"), 0);
  assert_non_null(n);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(n, "test")));
  assert_string_equal(cJSON_GetObjectItem(n, "state")->valuestring, "unbound");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(n, "driver")));
  cJSON *reason = cJSON_GetObjectItem(n, "unbound_reason");
  assert_non_null(
      strstr(cJSON_GetObjectItem(reason, "message")->valuestring, "would bind " BOOT_URL("rkid")));
  cJSON_Delete(doc);
  /* the live index: with rkid disabled nothing would bind it; enabled, rkid would again
   * (and binds rs0's kid again, which the disable had left unbound) */
  assert_int_equal(cli_run(&R, &F.fab, "driver", "disable", "rkid", NULL), 0);
  view_t v = view(PLATFORM ".tn0");
  assert_true(v.test);
  assert_null(strstr(v.message, "would bind"));
  assert_int_equal(view(RS0_KID).state, DFNET_CLIENT_NODE_UNBOUND);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "enable", "rkid", NULL), 0);
  assert_non_null(strstr(R.out, RS0_KID ": running " BOOT_URL("rkid") "\n"));
  assert_null(strstr(R.out, ".tn0")); /* never started */
  assert_non_null(strstr(view(PLATFORM ".tn0").message, "would bind " BOOT_URL("rkid")));
  assert_ping(RS0_KID);
  /* properties no driver of the index matches: nothing would bind it */
  assert_int_equal(cli_run(&R, &F.fab, "node", "add-test", PLATFORM, "tn1", "--property",
                           "fuchsia.BIND_PROTOCOL=99", NULL),
                   0);
  assert_null(strstr(R.out, "would bind"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "add-test", PLATFORM, "tn0", "--property",
                           "fuchsia.BIND_PROTOCOL=70", NULL),
                   1);
  assert_true(strncmp(R.err, "dfnet: ALREADY_EXISTS: ", 23) == 0);
  /* only test nodes are removed */
  assert_int_equal(cli_run(&R, &F.fab, "node", "remove-test", RS0, NULL), 1);
  assert_true(strncmp(R.err, "dfnet: FAILED_PRECONDITION: ", 28) == 0);
  assert_true(view(RS0).found);
  assert_int_equal(cli_run(&R, &F.fab, "node", "remove-test", PLATFORM ".tn0", NULL), 0);
  assert_non_null(strstr(R.out, "Removed test node " PLATFORM ".tn0"));
  assert_false(view(PLATFORM ".tn0").found);
  assert_int_equal(cli_run(&R, &F.fab, "node", "remove-test", PLATFORM ".tn1", NULL), 0);
  assert_true(wait_view(PLATFORM ".tn1", gone, NULL, NULL));
  assert_int_equal(cli_run(&R, &F.fab, "node", "remove-test", PLATFORM ".tn1", NULL), 1);
  assert_true(strncmp(R.err, "dfnet: NOT_FOUND: ", 18) == 0);
}

/* A suspend outlives a link outage: the agent silenced past the manager's keepalive and
 * resumed re-announces its nodes with their running drivers, and says which are suspended
 * (the driver hosts kept them so): the manager shows them suspended again, its calls end
 * "suspended" there, and `node resume` resumes them. */
static void test_suspend_survives_reconnect(void **state) {
  (void)state;
  cli_use(&F.fab, "root");
  assert_true(wait_view(SP0_KID, bound_to, BOOT_URL("skid"), NULL));
  assert_int_equal(cli_run(&R, &F.fab, "node", "suspend", SP0, NULL), 0);
  uint64_t dh = view(SP0).driver_host_id;
  assert_int_equal(kill(F.agent.pid, SIGSTOP), 0);
  bool offline = fabric_wait_node(F.admin, SP0, fabric_is_offline, NULL, WAIT_MS, NULL);
  assert_int_equal(kill(F.agent.pid, SIGCONT), 0);
  assert_true(offline);
  assert_true(fabric_wait_node(F.admin, SP0_KID, fabric_is_bound, NULL, WAIT_MS, NULL));
  view_t v;
  assert_true(wait_view(SP0, bound_to, BOOT_URL("sparent"), &v));
  assert_int_equal(v.driver_host_id, dh); /* reconciled, not restarted */
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(50))
    if (view(SP0).suspended && view(SP0_KID).suspended)
      break;
  assert_true(view(SP0).suspended);
  assert_true(view(SP0_KID).suspended);
  char msg[512];
  assert_ping_fails(SP0, DFNET_STATUS_UNAVAILABLE, msg, sizeof msg);
  assert_non_null(strstr(msg, "suspended"));
  trace_clear(F.suspend_trace);
  assert_int_equal(cli_run(&R, &F.fab, "node", "resume", SP0, NULL), 0);
  trace_read(F.suspend_trace);
  assert_before(trace_find("resume", SP0, 0), trace_find("resume", SP0_KID, 0), F.suspend_trace);
  assert_ping(SP0);
  assert_ping(SP0_KID);
}

/* Last: the board shuts down (SIGTERM, --shutdown-reason reboot): every driver is suspended
 * with REBOOT, children first, before it is stopped. */
static void test_agent_shutdown(void **state) {
  (void)state;
  assert_true(wait_view(SP0_KID, bound_to, BOOT_URL("skid"), NULL));
  cli_use(&F.fab, "root");
  if (view(SP0).suspended || view(SP0_KID).suspended) /* a test before failed */
    cli_run(&R, &F.fab, "node", "resume", SP0, NULL);
  trace_clear(F.suspend_trace);
  assert_true(fabric_stop_process(&F.agent.pid, SIGTERM) >= 0);
  trace_read(F.suspend_trace);
  int kid = trace_find("suspend", SP0_KID, 0), parent = trace_find("suspend", SP0, 0);
  assert_before(kid, parent, F.suspend_trace);
  assert_string_equal(T.lines[kid], "suspend " SP0_KID " 0xdcdc0100");
  assert_string_equal(T.lines[parent], "suspend " SP0 " 0xdcdc0100");
  assert_before(parent, trace_find("stop", SP0_KID, 0), F.suspend_trace);
  assert_before(trace_find("stop", SP0_KID, 0), trace_find("stop", SP0, 0), F.suspend_trace);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_restart),
      cmocka_unit_test(test_disable_enable),
      cmocka_unit_test(test_crash_restart),
      cmocka_unit_test(test_manual_bind),
      cmocka_unit_test(test_quarantine_cleared),
      cmocka_unit_test(test_async_start),
      cmocka_unit_test(test_async_start_interrupted),
      cmocka_unit_test(test_async_start_fails),
      cmocka_unit_test(test_start_timeout),
      cmocka_unit_test(test_suspend_resume),
      cmocka_unit_test(test_suspend_survives_reconnect),
      cmocka_unit_test(test_driver_host_list),
      cmocka_unit_test(test_test_node),
      cmocka_unit_test(test_agent_shutdown),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
