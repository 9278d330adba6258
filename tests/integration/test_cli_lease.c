/* Leases end to end (issue 20 "Tests"): the real `dfnet` CLI (child processes, several of
 * them at once) and libdfnet-client against a real dfnet-manager with two real dfnet-host
 * agents (lab-a, lab-b) and their driver hosts. Certificates: the operators alice, bob and
 * carol, the admin root and the viewer watcher. Every platform device of did 7 is bound to
 * the echo test driver ("light"); pa (lab-a, did 10) and pb (lab-b, did 11) become the
 * parents of a composite node ("pair", driver "duo": the echo test driver again) once the
 * composite test adds its spec. Each test has nodes of its own; after each, every
 * background CLI is killed and every lease left is released by force.
 *
 *   test_fence: alice's `lease acquire` (text and --json) takes a node; bob's call to it is
 *     refused FAILED_PRECONDITION naming alice, the lease and its expiry, as is alice's
 *     call without the token and bob's with alice's token; alice's call with DFNET_LEASE
 *     passes; bob's acquire is refused the same way; `lease release` (the lease of
 *     DFNET_LEASE), then bob's call passes and the old token renews nothing; renewed by hand,
 *     the refusals name the new expiry; an operator's TTL over 24 h, no expiry or high
 *     priority, and a viewer's acquire are refused; selectors (`--match host=lab-b --match
 *     <property>`) pick the node they describe.
 *   test_stream_ends_at_expiry: a lease the library does not renew, a stream under it, the
 *     lease renewed to a short TTL: at its expiry the stream ends CANCELLED "lease N
 *     expired" and the audit log says "expire"; a lease the library renews (TTL/3) outlives
 *     its TTL several times, others stay refused meanwhile; an admin's forced release ends
 *     its stream CANCELLED saying by whom and why and ends the renewals, and a lease
 *     acquired again through the same client is the one its calls carry.
 *   test_queue_priorities: bob and carol wait (`--wait`), then root with `--priority high`:
 *     each CLI is told its place, and again when it changes; `lease list` (JSON and text)
 *     shows root 1, bob 2, carol 3; a fourth stopped by SIGTERM while it waits leaves the
 *     queue at once (exit 143), a fifth that waits 1 s leaves then, DEADLINE_EXCEEDED
 *     naming the holder; each release hands the node to the next in that order, the others
 *     still waiting; the audit log has the grants after waiting.
 *   test_lease_run: `lease run` runs the command with DFNET_LEASE, whose calls pass while
 *     others are refused; SIGTERM to the CLI is sent on to the command, the lease released,
 *     and dfnet exits 143; a command that crashes (SIGSEGV) releases it too, exit 139; the
 *     command's exit status is dfnet's; afterwards another principal acquires the node; a
 *     node another holds: the command never runs, unless --wait: then once it is released;
 *     Ctrl-C typed on its terminal: released, exit 130.
 *   test_composite_lease: a lease on a composite node across both agents covers its parents:
 *     bob's calls to the composite and to each parent are refused naming the parent, and
 *     so is his acquire of a parent; alice's call with the token passes; others' nodes stay
 *     open.
 *   test_shown_and_history: `node show` (text, --json), `node list -v`, `host list` (text,
 *     --json) show who holds what, and nothing once released; a CLI acquire with --ttl 1s
 *     (not renewed) expires; `lease history --json --target` lists acquire, release,
 *     acquire, expire in that order.
 *   test_manager_killed: `kill -9` of the manager right after `lease acquire` returned,
 *     with bob waiting in the queue; restarted on the same state directory and port: the
 *     lease is listed with its expiry, the agent is back, alice's token works and bob is
 *     still refused; bob's waiting CLI takes its place in the queue again by itself (the
 *     library's resume) and gets the lease when alice releases it.
 *   test_require_lease: the manager restarted with --require-lease: a call to a node nobody
 *     leased is refused, saying how to lease it; with a lease it passes.
 * No timing is asserted: every wait is a poll bounded only so that a failure ends the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
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
#include "testhost/testhost.h"

#define WAIT_MS 30000
#define ECHO "/dfnet.test.Echo/Echo"
#define NODE(host, name) "dev." host ".platform." name
#define N_FENCE NODE("lab-a", "fence")
#define N_STREAM NODE("lab-a", "stream")
#define N_QUEUE NODE("lab-a", "queue")
#define N_RUN NODE("lab-a", "run")
#define N_SHOWN NODE("lab-a", "shown")
#define N_KEEP NODE("lab-a", "keep")
#define N_OPEN NODE("lab-b", "open") /* open to all, but where a test leases it */
#define PA NODE("lab-a", "pa")
#define PB NODE("lab-b", "pb")
#define PAIR PA ".pair"
#define BG_MAX 8

static const char *const bound_nodes[] = {N_FENCE, N_STREAM, N_QUEUE, N_RUN,
                                          N_SHOWN, N_KEEP,   N_OPEN,  NULL};

/* A CLI left running (the queue, `lease run`), its output in files. */
typedef struct bg {
  pid_t pid;
  int status; /* exit code (128 + the signal that ended it); -1 while running */
  char out[320], err[320];
} bg_t;

static struct {
  fabric_t fab;
  fabric_agent_t agents[2];
  const char *agent_b_extra[3];
  char board_b[320];
  dfnet_client_t *admin;
  dfnet_client_t *alice; /* test_stream_ends_at_expiry's */
  bg_t bg[BG_MAX];
  int bg_count; /* files made so far: each run has its own */
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* A lease as `lease acquire --json` prints it. */
typedef struct lease {
  uint64_t id, expires_ms;
  char holder[64], token[100];
} lease_t;

/* ---- helpers ---------------------------------------------------------------------------- */

/* `text` contains `part`, or the test fails showing both. */
static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted \"%s\" in \"%s\"", part, text);
}

static int count_str(const char *text, const char *part) {
  int n = 0;
  for (const char *p = strstr(text, part); p != NULL; p = strstr(p + 1, part))
    n++;
  return n;
}

/* The CLI as `who` from now on, with DFNET_LEASE = token (NULL: none). */
static void as(const char *who, const char *token) {
  cli_use(&F.fab, who);
  if (token != NULL)
    setenv("DFNET_LEASE", token, 1);
  else
    unsetenv("DFNET_LEASE");
}

/* A library client of `who` without a lease token of the environment's. */
static dfnet_client_t *connect_as(const char *who) {
  unsetenv("DFNET_LEASE");
  return fabric_connect(&F.fab, who);
}

/* `dfnet call NODE Echo "hi"` as who with token (NULL: none): its exit code; R has the
 * output ("6869\n" when it passed). */
static int echo(const char *who, const char *token, const char *node) {
  as(who, token);
  return cli_run(&R, &F.fab, "call", node, ECHO, "--data-hex", "6869", NULL);
}

/* What the manager says of a call to `node` covered by lease l of `holder`. */
static void held_msg(char *buf, size_t cap, const char *node, const char *holder,
                     const lease_t *l) {
  char when[40];
  time_t t = (time_t)(l->expires_ms / 1000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(buf, cap, "dfnet: FAILED_PRECONDITION: %s is leased by %s until %s (lease %" PRIu64 ")",
           node, holder, when, l->id);
}

/* Bob's (or anyone's) call to node refused: the manager names l's holder and expiry. */
static void assert_refused(const char *who, const char *token, const char *node, const char *named,
                           const char *holder, const lease_t *l) {
  char want[600];
  held_msg(want, sizeof want, named, holder, l);
  assert_int_equal(echo(who, token, node), 1);
  assert_has(R.err, want);
}

static void assert_passes(const char *who, const char *token, const char *node) {
  int rc = echo(who, token, node);
  if (rc != 0)
    fail_msg("%s's call to %s: exit %d: %s", who, node, rc, R.err);
  assert_string_equal(R.out, "6869\n");
}

/* {"lease": {...}} of a `--json` document. */
static lease_t lease_of_json(const char *text) {
  lease_t l = {0};
  cJSON *doc = cJSON_Parse(text);
  if (doc == NULL)
    fail_msg("not JSON: %s", text);
  cJSON *o = cJSON_GetObjectItem(doc, "lease");
  assert_non_null(o);
  l.id = (uint64_t)cJSON_GetObjectItem(o, "id")->valuedouble;
  cJSON *e = cJSON_GetObjectItem(o, "expires_ms");
  l.expires_ms = cJSON_IsNumber(e) ? (uint64_t)e->valuedouble : 0;
  snprintf(l.holder, sizeof l.holder, "%s", cJSON_GetObjectItem(o, "holder")->valuestring);
  cJSON *t = cJSON_GetObjectItem(o, "token");
  if (cJSON_IsString(t))
    snprintf(l.token, sizeof l.token, "%s", t->valuestring);
  cJSON_Delete(doc);
  return l;
}

/* `dfnet lease acquire --json NODE [--ttl ttl]` as who: the lease, or the test fails. */
static lease_t acquire(const char *who, const char *node, const char *ttl) {
  as(who, NULL);
  int rc = cli_run(&R, &F.fab, "lease", "acquire", "--json", node, ttl ? "--ttl" : NULL, ttl, NULL);
  if (rc != 0)
    fail_msg("%s: lease acquire %s: exit %d: %s", who, node, rc, R.err);
  lease_t l = lease_of_json(R.out);
  assert_string_equal(l.holder, who);
  return l;
}

static void release(const char *who, const lease_t *l) {
  as(who, l->token);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "release", NULL), 0);
  char want[64];
  snprintf(want, sizeof want, "Released lease %" PRIu64 "\n", l->id);
  assert_string_equal(R.out, want);
}

/* `lease list --json [node]` as the viewer (the caller deletes it). */
static cJSON *lease_list(const char *node) {
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "list", "--json", node, NULL), 0);
  return cli_json(&R);
}

/* Poll until `lease list node` shows `want` waiting requests. */
static bool wait_queue(const char *node, int want) {
  int n = -1;
  for (uint64_t end = fabric_now_ms() + WAIT_MS; n != want && fabric_now_ms() < end;) {
    cJSON *doc = lease_list(node);
    n = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "queue"));
    cJSON_Delete(doc);
    if (n != want)
      fabric_sleep_ms(100);
  }
  return n == want;
}

/* ---- background CLI runs ---------------------------------------------------------------- */

/* Start `dfnet args...` (NULL-terminated) with the environment as it is (as()), stdout and
 * stderr to files of its own. */
static bg_t *bg_start(const char *first, ...) {
  bg_t *b = NULL;
  for (int i = 0; i < BG_MAX && b == NULL; i++)
    if (F.bg[i].pid == 0)
      b = &F.bg[i];
  assert_non_null(b);
  char cli[600];
  snprintf(cli, sizeof cli, "%s/clients/dfnet", F.fab.build);
  const char *argv[32];
  int argc = 0;
  argv[argc++] = cli;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  int n = F.bg_count++;
  snprintf(b->out, sizeof b->out, "%s/bg-%d.out", F.fab.root, n);
  snprintf(b->err, sizeof b->err, "%s/bg-%d.err", F.fab.root, n);
  b->status = -1;
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(b->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(b->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0)
      _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  b->pid = pid;
  return b;
}

/* Has b ended (waiting up to ms)? Then b->status is set. */
static bool bg_done(bg_t *b, uint32_t ms) {
  uint64_t end = fabric_now_ms() + ms;
  while (b->pid > 0) {
    int ws = 0;
    if (waitpid(b->pid, &ws, WNOHANG) == b->pid) {
      b->pid = 0;
      b->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      break;
    }
    if (fabric_now_ms() >= end)
      return false;
    fabric_sleep_ms(50);
  }
  return true;
}

/* A file's text (static; "" when it cannot be read). */
static const char *file_text(const char *path) {
  static char buf[65536];
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return buf;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Poll until the file has `part` at least `times` times. */
static bool wait_text(const char *path, const char *part, int times) {
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(50))
    if (count_str(file_text(path), part) >= times)
      return true;
  print_message("wanted \"%s\" %d times in %s: \"%s\"\n", part, times, path, file_text(path));
  return false;
}

/* The lease a granted `lease acquire` (text) printed into file `path`. */
static lease_t lease_of_text(const char *path) {
  lease_t l = {0};
  const char *text = file_text(path);
  const char *id = strstr(text, "Lease    : ");
  const char *holder = strstr(text, "Holder   : ");
  const char *token = strstr(text, "export DFNET_LEASE=");
  if (id == NULL || holder == NULL || token == NULL)
    fail_msg("no lease in \"%s\"", text);
  l.id = strtoull(id + 11, NULL, 10);
  sscanf(holder + 11, "%63s", l.holder);
  sscanf(token + 19, "%99s", l.token);
  return l;
}

/* The queue entry a waiting CLI was told: "[dfnet: waiting in the queue: position P (request
 * Q)]"; 0 when none. */
static uint64_t told_request(const bg_t *b) {
  const char *p = strstr(file_text(b->err), "(request ");
  return p != NULL ? strtoull(p + 9, NULL, 10) : 0;
}

static void told_text(char *buf, size_t cap, uint32_t position, uint64_t request) {
  snprintf(buf, cap, "[dfnet: waiting in the queue: position %u (request %" PRIu64 ")]", position,
           request);
}

/* ---- set-up ----------------------------------------------------------------------------- */

static void release_all(void) {
  dfnet_client_lease_list_t *list = NULL;
  dfnet_client_error_t err;
  if (F.admin == NULL ||
      dfnet_client_list_leases(F.admin, NULL, NULL, &list, &err) != DFNET_STATUS_OK)
    return;
  for (size_t i = 0; i < list->count; i++)
    if (list->items[i].queue_position == 0)
      (void)dfnet_client_lease_release(F.admin, list->items[i].id, "", true, "test clean-up", &err);
  dfnet_client_lease_list_free(list);
}

/* After each test, whatever its end: no CLI left running, no lease left held. */
static int after_each(void **state) {
  (void)state;
  for (int i = 0; i < BG_MAX; i++) {
    if (F.bg[i].pid > 0) {
      kill(-F.bg[i].pid, SIGKILL); /* its process group: the command of a `lease run` too */
      fabric_stop_process(&F.bg[i].pid, SIGKILL);
    }
  }
  dfnet_client_close(F.alice);
  F.alice = NULL;
  unsetenv("DFNET_LEASE");
  release_all();
  return 0;
}

static int teardown(void **state) {
  after_each(state);
  dfnet_client_close(F.admin);
  F.admin = NULL;
  fabric_cleanup(&F.fab, F.agents, 2);
  return 0;
}

static int start(void) {
  unsetenv("DFNET_LEASE");
  const fabric_package_t packages[] = {{"light", "echo.so", NULL, 7}, {NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "cli-lease", NULL, packages) != 0)
    return -1;
  const char *const certs[][2] = {
      {"host", "lab-a"},     {"host", "lab-b"}, {"operator", "alice"}, {"operator", "bob"},
      {"operator", "carol"}, {"admin", "root"}, {"viewer", "watcher"}};
  for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
    if (fabric_issue(&F.fab, certs[i][0], certs[i][1]) != 0)
      return -1;
  /* the composite driver: the echo test driver with composite bind rules */
  char drivers[320];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  if (th_write_driver(drivers, "duo",
                      "composite duo;\n"
                      "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                      "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                      NULL) != 0 ||
      fabric_sh("cp '%s/tests/drivers/echo.so' '%s/duo/driver/duo.so'", F.fab.build, drivers) != 0)
    return -1;
  /* one board file per agent: <root>/board.json (lab-a's) and <root>/board-b.json */
  const char *board_b[] = {"open:7", "pb:11", NULL};
  const char *board_a[] = {"fence:7", "stream:7", "queue:7", "run:7",
                           "shown:7", "keep:7",   "pa:10",   NULL};
  fabric_write_board(&F.fab, board_b);
  snprintf(F.board_b, sizeof F.board_b, "%s/board-b.json", F.fab.root);
  if (fabric_sh("mv '%s/board.json' '%s'", F.fab.root, F.board_b) != 0)
    return -1;
  fabric_write_board(&F.fab, board_a);
  F.agents[0].name = "lab-a";
  F.agents[1].name = "lab-b";
  F.agent_b_extra[0] = "--board"; /* the last --board counts */
  F.agent_b_extra[1] = F.board_b;
  F.agents[1].extra = F.agent_b_extra;
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agents[0]);
  fabric_start_agent(&F.fab, &F.agents[1]);
  F.admin = connect_as("root");
  if (F.admin == NULL)
    return -1;
  for (size_t i = 0; bound_nodes[i] != NULL; i++)
    if (!fabric_wait_node(F.admin, bound_nodes[i], fabric_is_bound, NULL, WAIT_MS, NULL))
      return -1;
  if (!fabric_wait_node(F.admin, PA, fabric_is_found, NULL, WAIT_MS, NULL) ||
      !fabric_wait_node(F.admin, PB, fabric_is_found, NULL, WAIT_MS, NULL))
    return -1;
  return 0;
}

/* cmocka runs no group teardown after a set-up that failed: clean up here then. */
static int setup(void **state) {
  if (start() == 0)
    return 0;
  teardown(state);
  return -1;
}

/* ---- 1. fencing ------------------------------------------------------------------------- */

static void test_fence(void **state) {
  (void)state;
  /* text: the lease, its token, and the export line last */
  as("alice", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", "--reason", "bring-up", N_FENCE, NULL),
                   0);
  assert_has(R.out, "Holder   : alice\n");
  assert_has(R.out, "Targets  : " N_FENCE "\n");
  assert_has(R.out, "Reason   : bring-up\n");
  lease_t l = {0};
  assert_int_equal(sscanf(R.out, "Lease    : %" SCNu64, &l.id), 1);
  const char *export = strstr(R.out, "export DFNET_LEASE=");
  assert_non_null(export);
  assert_int_equal(sscanf(export, "export DFNET_LEASE=%99s", l.token), 1);
  assert_string_equal(export + strlen("export DFNET_LEASE=") + strlen(l.token), "\n");
  char prefix[32];
  snprintf(prefix, sizeof prefix, "%" PRIu64 ".", l.id);
  assert_true(strncmp(l.token, prefix, strlen(prefix)) == 0);
  assert_int_equal(strlen(l.token), strlen(prefix) + 64);
  /* as the others see it: the expiry the refusals name; no token */
  char id[24];
  snprintf(id, sizeof id, "%" PRIu64, l.id);
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "show", "--json", id, NULL), 0);
  lease_t shown = lease_of_json(R.out);
  assert_int_equal(shown.id, l.id);
  assert_string_equal(shown.holder, "alice");
  assert_string_equal(shown.token, "");
  assert_true(shown.expires_ms != 0);
  l.expires_ms = shown.expires_ms;

  /* bob refused, with or without alice's token; alice refused without it */
  assert_refused("bob", NULL, N_FENCE, N_FENCE, "alice", &l);
  assert_refused("bob", l.token, N_FENCE, N_FENCE, "alice", &l);
  assert_refused("alice", NULL, N_FENCE, N_FENCE, "alice", &l);
  /* alice with DFNET_LEASE passes; bob's calls elsewhere pass */
  assert_passes("alice", l.token, N_FENCE);
  assert_passes("bob", NULL, N_OPEN);
  /* bob cannot take it */
  as("bob", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", N_FENCE, NULL), 1);
  char want[600];
  held_msg(want, sizeof want, N_FENCE, "alice", &l);
  assert_has(R.err, want);
  /* renewed by hand for 2 h: the refusals name the new expiry */
  as("alice", l.token);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "renew", "--ttl", "2h", "--json", NULL), 0);
  lease_t renewed = lease_of_json(R.out);
  assert_int_equal(renewed.id, l.id);
  assert_true(renewed.expires_ms > l.expires_ms);
  l.expires_ms = renewed.expires_ms;
  assert_refused("bob", NULL, N_FENCE, N_FENCE, "alice", &l);
  /* what an operator may not ask, and a viewer not at all */
  as("bob", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", "--ttl", "25h", N_OPEN, NULL), 1);
  assert_has(R.err, "dfnet: INVALID_ARGUMENT: ");
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", "--ttl", "0", N_OPEN, NULL), 1);
  assert_has(R.err, "dfnet: PERMISSION_DENIED: ");
  assert_int_equal(
      cli_run(&R, &F.fab, "lease", "acquire", "--priority", "high", "--wait", N_OPEN, NULL), 1);
  assert_has(R.err, "dfnet: PERMISSION_DENIED: ");
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", N_OPEN, NULL), 1);
  assert_has(R.err, "dfnet: PERMISSION_DENIED: ");
  assert_passes("bob", NULL, N_OPEN);

  /* released (the lease of DFNET_LEASE): bob's call passes; the old token renews nothing */
  release("alice", &l);
  assert_passes("bob", NULL, N_FENCE);
  as("alice", l.token);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "renew", NULL), 1);
  assert_has(R.err, "dfnet: NOT_FOUND: ");

  /* --json: the whole lease with its token */
  as("alice", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", "--json", N_FENCE, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *o = cJSON_GetObjectItem(doc, "lease");
  assert_string_equal(cJSON_GetObjectItem(o, "holder")->valuestring, "alice");
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "targets"), 0)->valuestring,
                      N_FENCE);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "nodes"), 0)->valuestring, N_FENCE);
  assert_int_equal(cJSON_GetObjectItem(o, "node_count")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(o, "queue_position")->valueint, 0);
  assert_true(cJSON_GetObjectItem(o, "ttl_ms")->valuedouble == 1800000.0); /* the default */
  cJSON_Delete(doc);
  lease_t j = lease_of_json(R.out);
  assert_true(j.id > l.id);
  assert_refused("bob", NULL, N_FENCE, N_FENCE, "alice", &j);
  assert_passes("alice", j.token, N_FENCE);
  release("alice", &j);
  assert_passes("bob", NULL, N_FENCE);

  /* selectors pick a node: online, bound, on lab-b, of did 7 */
  as("alice", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", "--json", "--match", "host=lab-b",
                           "--match", "fuchsia.BIND_PLATFORM_DEV_DID=7", NULL),
                   0);
  doc = cli_json(&R);
  o = cJSON_GetObjectItem(doc, "lease");
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "targets"), 0)->valuestring,
                      N_OPEN);
  cJSON_Delete(doc);
  lease_t m = lease_of_json(R.out);
  assert_refused("bob", NULL, N_OPEN, N_OPEN, "alice", &m);
  release("alice", &m);
}

/* ---- 2. a stream ended by the lease's expiry; renewals ---------------------------------- */

/* A stream that goes on as long as it is read (a count of 2^32 - 1) on N_STREAM through c,
 * its first message read. */
static dfnet_client_stream_t *endless_stream(dfnet_client_t *c) {
  uint8_t req[5] = {0xff, 0xff, 0xff, 0xff, 'x'};
  dfnet_client_stream_t *s = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_stream_open(c, N_STREAM, "/dfnet.test.Echo/Stream", req, sizeof req,
                                            NULL, &s, &err),
                   DFNET_STATUS_OK);
  uint8_t *data = NULL;
  size_t len = 0;
  dfnet_status_t st = dfnet_client_stream_next(s, WAIT_MS, &data, &len, &err);
  if (st != DFNET_STATUS_OK)
    fail_msg("the stream under the lease: %s: %s", dfnet_status_str(st), err.message);
  free(data);
  return s;
}

/* Read s on until it ends (bounded), close it: it ended `code` with `message`. */
static void assert_stream_ends(dfnet_client_stream_t *s, dfnet_status_t code, const char *message) {
  dfnet_client_error_t err = {0};
  dfnet_status_t st;
  uint64_t end = fabric_now_ms() + 2 * WAIT_MS;
  do {
    uint8_t *data = NULL;
    size_t len = 0;
    st = dfnet_client_stream_next(s, 1000, &data, &len, &err);
    free(data);
  } while ((st == DFNET_STATUS_OK || st == DFNET_STATUS_DEADLINE_EXCEEDED) &&
           fabric_now_ms() < end);
  dfnet_client_stream_close(s);
  if (st != code || strcmp(err.message, message) != 0)
    fail_msg("the stream ended %s \"%s\", wanted %s \"%s\"", dfnet_status_str(st), err.message,
             dfnet_status_str(code), message);
}

/* Has `node`'s audit log a row `action` of lease id by `actor` (with `detail` unless NULL)? */
static bool audited(const char *node, uint64_t id, const char *action, const char *actor,
                    const char *detail) {
  dfnet_client_lease_history_query_t hq = {.target = node};
  dfnet_client_lease_audit_list_t *h = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_lease_history(F.admin, &hq, NULL, &h, &err), DFNET_STATUS_OK);
  bool found = false;
  for (size_t i = 0; i < h->count; i++)
    found |= h->items[i].lease_id == id && strcmp(h->items[i].action, action) == 0 &&
             strcmp(h->items[i].actor, actor) == 0 &&
             (detail == NULL || strcmp(h->items[i].detail, detail) == 0);
  dfnet_client_lease_audit_list_free(h);
  return found;
}

/* Poll lease id's state (acquired through F.alice) until `done` renewals, or until the
 * library stops renewing it (renewals 0: only that). */
static dfnet_client_lease_state_t renewal_state(uint64_t id, uint32_t done) {
  dfnet_client_lease_state_t ls;
  uint64_t end = fabric_now_ms() + 2 * WAIT_MS;
  do {
    fabric_sleep_ms(100);
    assert_int_equal(dfnet_client_lease_state(F.alice, id, &ls), DFNET_STATUS_OK);
  } while ((done == 0 || ls.renewals < done) && ls.status == DFNET_STATUS_OK &&
           fabric_now_ms() < end);
  return ls;
}

static void test_stream_ends_at_expiry(void **state) {
  (void)state;
  F.alice = connect_as("alice");
  assert_non_null(F.alice);
  const char *targets[] = {N_STREAM};
  dfnet_client_lease_options_t o = {
      .targets = targets, .target_count = 1, .ttl_ms = 600000, .no_renew = true};
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_lease_acquire(F.alice, &o, &l, &err), DFNET_STATUS_OK);
  uint64_t id = l->id;
  dfnet_client_lease_free(l);
  dfnet_client_lease_state_t ls;
  assert_int_equal(dfnet_client_lease_state(F.alice, id, &ls), DFNET_STATUS_OK);
  assert_false(ls.renewing);
  dfnet_client_stream_t *s = endless_stream(F.alice);
  assert_int_equal(echo("bob", NULL, N_STREAM), 1);
  /* a short TTL from now (renewing to it, so that the stream surely started before) */
  dfnet_client_lease_t *renewed = NULL;
  assert_int_equal(dfnet_client_lease_renew(F.alice, id, NULL, 1000, &renewed, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(renewed->ttl_ms, 1000);
  dfnet_client_lease_free(renewed);
  /* at the expiry the stream ends CANCELLED */
  char want[160];
  snprintf(want, sizeof want, "lease %" PRIu64 " expired", id);
  assert_stream_ends(s, DFNET_STATUS_CANCELLED, want);
  /* gone, audited "expire" by the manager; the node is open again */
  assert_int_equal(dfnet_client_lease_show(F.admin, id, NULL, &l, &err), DFNET_STATUS_NOT_FOUND);
  assert_true(audited(N_STREAM, id, "expire", "dfnet-manager", NULL));
  assert_passes("bob", NULL, N_STREAM);

  /* the library renews a lease at a third of its TTL: it outlives the TTL, still fencing
   * (a client of its own: this one's lease token is the expired lease's) */
  dfnet_client_close(F.alice);
  F.alice = connect_as("alice");
  assert_non_null(F.alice);
  o = (dfnet_client_lease_options_t){.targets = targets, .target_count = 1, .ttl_ms = 4500};
  assert_int_equal(dfnet_client_lease_acquire(F.alice, &o, &l, &err), DFNET_STATUS_OK);
  id = l->id;
  uint64_t first_expiry = l->expires_ms;
  dfnet_client_lease_free(l);
  ls = renewal_state(id, 4);
  if (ls.renewals < 4)
    fail_msg("%u renewals, status %s: %s", ls.renewals, dfnet_status_str(ls.status), ls.message);
  assert_true(ls.renewing);
  assert_int_equal(dfnet_client_lease_show(F.admin, id, NULL, &l, &err), DFNET_STATUS_OK);
  assert_true(l->expires_ms > first_expiry);
  dfnet_client_lease_free(l);
  assert_int_equal(echo("bob", NULL, N_STREAM), 1);
  assert_has(R.err, "is leased by alice");

  /* an admin's forced release: the stream ends saying by whom and why; the renewals end */
  s = endless_stream(F.alice);
  char id_text[24];
  snprintf(id_text, sizeof id_text, "%" PRIu64, id);
  as("root", NULL);
  assert_int_equal(
      cli_run(&R, &F.fab, "lease", "release", "--force", "--reason", "board needed", id_text, NULL),
      0);
  snprintf(want, sizeof want, "lease %" PRIu64 " released by force (root: board needed)", id);
  assert_stream_ends(s, DFNET_STATUS_CANCELLED, want);
  assert_true(audited(N_STREAM, id, "force_release", "root", "board needed"));
  ls = renewal_state(id, 0);
  assert_int_equal(ls.status, DFNET_STATUS_NOT_FOUND);
  assert_false(ls.renewing);
  /* acquired again through the same client: its calls carry the new lease's token */
  assert_int_equal(dfnet_client_lease_acquire(F.alice, &o, &l, &err), DFNET_STATUS_OK);
  id = l->id;
  dfnet_client_lease_free(l);
  char reply[16];
  assert_int_equal(fabric_call(F.alice, N_STREAM, ECHO, "hi", 2, WAIT_MS, reply, sizeof reply),
                   DFNET_STATUS_OK);
  assert_string_equal(reply, "hi");
  assert_int_equal(dfnet_client_lease_release(F.alice, id, NULL, false, NULL, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(dfnet_client_lease_state(F.alice, id, &ls), DFNET_STATUS_NOT_FOUND);
  assert_passes("bob", NULL, N_STREAM);
}

/* ---- 3. the queue: priority band, then arrival ------------------------------------------ */

/* The queue of `lease list --json N_QUEUE`: holder of each place into who[] (up to 4). */
static int queue_of(char who[4][16], uint64_t ids[4]) {
  cJSON *doc = lease_list(N_QUEUE);
  cJSON *q = cJSON_GetObjectItem(doc, "queue");
  int n = cJSON_GetArraySize(q);
  for (int i = 0; i < n && i < 4; i++) {
    cJSON *e = cJSON_GetArrayItem(q, i);
    assert_int_equal(cJSON_GetObjectItem(e, "queue_position")->valueint, i + 1);
    snprintf(who[i], 16, "%s", cJSON_GetObjectItem(e, "holder")->valuestring);
    ids[i] = (uint64_t)cJSON_GetObjectItem(e, "id")->valuedouble;
  }
  cJSON_Delete(doc);
  return n;
}

static void test_queue_priorities(void **state) {
  (void)state;
  lease_t la = acquire("alice", N_QUEUE, NULL);
  /* bob, then carol, wait; each is told its place */
  as("bob", NULL);
  bg_t *bob = bg_start("lease", "acquire", "--wait", N_QUEUE, NULL);
  assert_true(wait_queue(N_QUEUE, 1));
  as("carol", NULL);
  bg_t *carol = bg_start("lease", "acquire", "--wait", N_QUEUE, NULL);
  assert_true(wait_queue(N_QUEUE, 2));
  char line[128];
  assert_true(wait_text(bob->err, "position 1 (request", 1));
  assert_true(wait_text(carol->err, "position 2 (request", 1));
  uint64_t qb = told_request(bob), qc = told_request(carol);
  /* root comes last, with priority high: first in the queue */
  as("root", NULL);
  bg_t *root =
      bg_start("lease", "acquire", "--json", "--wait", "--priority", "high", N_QUEUE, NULL);
  assert_true(wait_queue(N_QUEUE, 3));
  char who[4][16];
  uint64_t ids[4];
  assert_int_equal(queue_of(who, ids), 3);
  assert_string_equal(who[0], "root");
  assert_string_equal(who[1], "bob");
  assert_string_equal(who[2], "carol");
  assert_int_equal(ids[1], qb);
  assert_int_equal(ids[2], qc);
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "list", N_QUEUE, NULL), 0);
  assert_has(R.out, "\nQueue:\n");
  snprintf(line, sizeof line, "%4u %-6" PRIu64 " %-16s %-8s ", 1u, ids[0], "root", "high");
  assert_has(R.out, line);
  snprintf(line, sizeof line, "%4u %-6" PRIu64 " %-16s %-8s ", 2u, qb, "bob", "normal");
  assert_has(R.out, line);
  snprintf(line, sizeof line, "%4u %-6" PRIu64 " %-16s %-8s ", 3u, qc, "carol", "normal");
  assert_has(R.out, line);
  /* told again: their places moved */
  told_text(line, sizeof line, 1, ids[0]);
  assert_true(wait_text(root->err, line, 1));
  told_text(line, sizeof line, 2, qb);
  assert_true(wait_text(bob->err, line, 1));
  told_text(line, sizeof line, 3, qc);
  assert_true(wait_text(carol->err, line, 1));
  /* one more waits, and is stopped (SIGTERM) while it waits: it leaves the queue at once */
  as("carol", NULL);
  bg_t *gone = bg_start("lease", "acquire", "--wait", N_QUEUE, NULL);
  assert_true(wait_text(gone->err, "position 4 (request", 1));
  uint64_t qg = told_request(gone);
  assert_int_equal(kill(gone->pid, SIGTERM), 0);
  assert_true(bg_done(gone, WAIT_MS));
  assert_int_equal(gone->status, 143);
  assert_has(file_text(gone->err), "the request left the queue");
  assert_true(wait_queue(N_QUEUE, 3));
  char left[64];
  snprintf(left, sizeof left, "request %" PRIu64 " cancelled by its client", qg);
  assert_true(audited(N_QUEUE, 0, "dequeue", "carol", left));
  /* one that waits at most 1 s leaves then, DEADLINE_EXCEEDED naming the holder */
  as("carol", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", "--wait", "1s", N_QUEUE, NULL), 1);
  assert_has(R.err, "[dfnet: waiting in the queue: position 4 (request ");
  char held[600];
  held_msg(held, sizeof held, N_QUEUE, "alice", &la);
  assert_has(R.err, "dfnet: DEADLINE_EXCEEDED: waited 1000 ms for lease request ");
  assert_has(R.err, held + strlen("dfnet: FAILED_PRECONDITION: "));
  assert_true(wait_queue(N_QUEUE, 3));

  /* each release hands the node on: root, then bob, then carol */
  release("alice", &la);
  assert_true(bg_done(root, WAIT_MS));
  assert_int_equal(root->status, 0);
  lease_t lr = lease_of_json(file_text(root->out));
  assert_string_equal(lr.holder, "root");
  assert_false(bg_done(bob, 0));
  assert_false(bg_done(carol, 0));
  told_text(line, sizeof line, 1, qb);
  assert_true(wait_text(bob->err, line, 2));
  assert_passes("root", lr.token, N_QUEUE);
  release("root", &lr);
  assert_true(bg_done(bob, WAIT_MS));
  assert_int_equal(bob->status, 0);
  lease_t lb = lease_of_text(bob->out);
  assert_string_equal(lb.holder, "bob");
  assert_false(bg_done(carol, 0));
  assert_passes("bob", lb.token, N_QUEUE);
  release("bob", &lb);
  assert_true(bg_done(carol, WAIT_MS));
  assert_int_equal(carol->status, 0);
  lease_t lc = lease_of_text(carol->out);
  assert_string_equal(lc.holder, "carol");
  release("carol", &lc);
  assert_true(wait_queue(N_QUEUE, 0));

  /* the audit log: five waited; three were granted, in that order */
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "history", "--json", "--target", N_QUEUE, NULL), 0);
  cJSON *doc = cli_json(&R);
  const char *granted[3] = {0};
  int n = 0, queued = 0;
  cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "entries")) {
    const char *action = cJSON_GetObjectItem(e, "action")->valuestring;
    cJSON *detail = cJSON_GetObjectItem(e, "detail");
    queued += strcmp(action, "queue") == 0;
    if (strcmp(action, "acquire") == 0 && cJSON_IsString(detail) &&
        strstr(detail->valuestring, "granted after waiting") != NULL && n < 3)
      granted[n++] = cJSON_GetObjectItem(e, "actor")->valuestring;
  }
  assert_int_equal(queued, 5); /* the one stopped and the one timed out too */
  assert_int_equal(n, 3);
  assert_string_equal(granted[0], "root");
  assert_string_equal(granted[1], "bob");
  assert_string_equal(granted[2], "carol");
  cJSON_Delete(doc);
}

/* ---- 4. lease run ----------------------------------------------------------------------- */

/* The shell command of `lease run`: writes its DFNET_LEASE to <root>/<tag>.token, calls the
 * node (its output in <tag>.call, the exit code in <tag>.done), then `then`. */
static const char *run_script(const char *tag, const char *then) {
  static char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "ulimit -c 0; printf %%s \"$DFNET_LEASE\" > '%s/%s.token'; "
           "'%s/clients/dfnet' call " N_RUN " " ECHO
           " --data-hex 6869 > '%s/%s.call' 2>&1; "
           "echo $? > '%s/%s.done'; %s",
           F.fab.root, tag, F.fab.build, F.fab.root, tag, F.fab.root, tag, then);
  return cmd;
}

static const char *tag_file(const char *tag, const char *suffix) {
  static char path[400];
  snprintf(path, sizeof path, "%s/%s.%s", F.fab.root, tag, suffix);
  return path;
}

/* What the command of `lease run` saw: the lease's token, and its call passed. */
static void assert_command_ran(const char *tag, uint64_t id) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "%" PRIu64 ".", id);
  char token[128];
  snprintf(token, sizeof token, "%s", file_text(tag_file(tag, "token")));
  if (strncmp(token, prefix, strlen(prefix)) != 0)
    fail_msg("the command's DFNET_LEASE is \"%s\", wanted lease %" PRIu64 "'s", token, id);
  assert_string_equal(file_text(tag_file(tag, "done")), "0\n");
  assert_string_equal(file_text(tag_file(tag, "call")), "6869\n");
}

/* The lease held on N_RUN now (0: none). */
static uint64_t run_lease(char *holder) {
  cJSON *doc = lease_list(N_RUN);
  cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "leases"), 0);
  uint64_t id = l != NULL ? (uint64_t)cJSON_GetObjectItem(l, "id")->valuedouble : 0;
  if (l != NULL && holder != NULL)
    snprintf(holder, 16, "%s", cJSON_GetObjectItem(l, "holder")->valuestring);
  cJSON_Delete(doc);
  return id;
}

/* The lease `lease run` says it acquired ("[dfnet: lease N acquired, ...]") in text. */
static uint64_t lease_id_in(const char *text) {
  const char *at = strstr(text, "[dfnet: lease ");
  uint64_t id = 0;
  if (at == NULL || sscanf(at, "[dfnet: lease %" SCNu64, &id) != 1)
    fail_msg("no lease acquired in \"%s\"", text);
  return id;
}

/* `lease run N_RUN -- sh -c <script tag>` as alice on a terminal of its own (a pty), Ctrl-C
 * typed once the command made its call: dfnet's exit code; *id the lease it held. */
static int ctrl_c_run(const char *tag, uint64_t *id) {
  char cli[600];
  snprintf(cli, sizeof cli, "%s/clients/dfnet", F.fab.build);
  const char *script = run_script(tag, "exec sleep 600");
  const char *argv[] = {cli, "lease", "run", N_RUN, "--", "sh", "-c", script, NULL};
  as("alice", NULL);
  int master = -1;
  pid_t pid = test_child_forkpty(&master);
  assert_true(pid >= 0);
  if (pid == 0) {
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  static char out[16384];
  size_t len = 0;
  bool typed = false;
  int ws = 0;
  pid_t done = 0;
  for (uint64_t end = fabric_now_ms() + 2 * WAIT_MS; done == 0 && fabric_now_ms() < end;) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    if (poll(&p, 1, 50) > 0) {
      ssize_t n = read(master, out + len, sizeof out - 1 - len);
      if (n > 0)
        len += (size_t)n;
    }
    if (!typed && strstr(file_text(tag_file(tag, "done")), "\n") != NULL)
      typed = write(master, "\x03", 1) == 1;
    done = waitpid(pid, &ws, WNOHANG);
  }
  out[len] = '\0';
  close(master);
  if (done != pid) {
    kill(-pid, SIGKILL); /* the session's process group: the command too */
    waitpid(pid, &ws, 0);
    fail_msg("lease run on a terminal did not end (Ctrl-C typed: %d): %s", typed, out);
  }
  *id = lease_id_in(out);
  if (strstr(out, "released]") == NULL)
    fail_msg("lease %" PRIu64 " not released in \"%s\"", *id, out);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void test_lease_run(void **state) {
  (void)state;
  /* SIGTERM to dfnet (a CI runner's): sent on to the command; released; exit 143 */
  as("alice", NULL);
  bg_t *b = bg_start("lease", "run", "--reason", "ci job", N_RUN, "--", "sh", "-c",
                     run_script("term", "exec sleep 600"), NULL);
  assert_true(wait_text(tag_file("term", "done"), "\n", 1));
  char holder[16];
  uint64_t id = run_lease(holder);
  assert_int_not_equal(id, 0);
  assert_string_equal(holder, "alice");
  assert_command_ran("term", id);
  assert_int_equal(echo("bob", NULL, N_RUN), 1);
  assert_has(R.err, "is leased by alice");
  assert_false(bg_done(b, 0));
  assert_int_equal(kill(b->pid, SIGTERM), 0);
  assert_true(bg_done(b, WAIT_MS));
  assert_int_equal(b->status, 143);
  char line[96];
  snprintf(line, sizeof line, "[dfnet: lease %" PRIu64 " released]", id);
  assert_has(file_text(b->err), line);
  assert_int_equal(run_lease(NULL), 0);
  lease_t lb = acquire("bob", N_RUN, NULL);
  release("bob", &lb);

  /* the command crashes: released all the same; exit 139 (128 + SIGSEGV) */
  as("alice", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "run", N_RUN, "--", "sh", "-c",
                           run_script("crash", "kill -SEGV $$"), NULL),
                   139);
  assert_has(R.err, "released]");
  id = lease_id_in(R.err);
  assert_command_ran("crash", id);
  assert_int_equal(run_lease(NULL), 0);
  as("watcher", NULL);
  char lease_id[24];
  snprintf(lease_id, sizeof lease_id, "%" PRIu64, id);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "show", lease_id, NULL), 1);
  assert_has(R.err, "dfnet: NOT_FOUND: ");
  lb = acquire("bob", N_RUN, NULL);
  release("bob", &lb);

  /* the command's exit status is dfnet's */
  as("alice", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "run", N_RUN, "--", "sh", "-c", "exit 3", NULL), 3);
  assert_int_equal(run_lease(NULL), 0);

  /* a node bob holds: the command never runs */
  lb = acquire("bob", N_RUN, NULL);
  as("alice", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "run", N_RUN, "--", "sh", "-c",
                           run_script("never", "true"), NULL),
                   1);
  assert_has(R.err, "dfnet: FAILED_PRECONDITION: " N_RUN " is leased by bob");
  assert_string_equal(file_text(tag_file("never", "done")), "");
  /* ... unless it waits: then it runs once bob releases */
  as("alice", NULL);
  b = bg_start("lease", "run", "--wait", N_RUN, "--", "sh", "-c", run_script("queued", "true"),
               NULL);
  assert_true(wait_text(b->err, "position 1 (request", 1));
  assert_string_equal(file_text(tag_file("queued", "done")), "");
  release("bob", &lb);
  assert_true(bg_done(b, WAIT_MS));
  assert_int_equal(b->status, 0);
  id = lease_id_in(file_text(b->err));
  assert_command_ran("queued", id);
  assert_int_equal(run_lease(NULL), 0);

  /* Ctrl-C on a terminal reaches the command (its process group's): released, exit 130 */
  assert_int_equal(ctrl_c_run("ctrlc", &id), 130);
  assert_command_ran("ctrlc", id);
  assert_int_equal(run_lease(NULL), 0);
}

/* The host named `name` in a `host list --json` document. */
static cJSON *host_of(cJSON *doc, const char *name) {
  cJSON *h;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(doc, "hosts")) {
    if (strcmp(cJSON_GetObjectItem(h, "name")->valuestring, name) == 0)
      return h;
  }
  fail_msg("no host %s", name);
  return NULL;
}

/* ---- 6. a composite's lease covers its parents ------------------------------------------ */

static void test_composite_lease(void **state) {
  (void)state;
  /* parent i: the platform device of did 10 + i, shown to the driver as protocol 60 + i */
  dfnet_client_property_t values[2] = {
      {.str_key = "fuchsia.BIND_PLATFORM_DEV_DID", .type = DFNET_CLIENT_VALUE_INT, .int_value = 10},
      {.str_key = "fuchsia.BIND_PLATFORM_DEV_DID",
       .type = DFNET_CLIENT_VALUE_INT,
       .int_value = 11}};
  dfnet_client_property_t props[2] = {
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 60},
      {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 61}};
  dfnet_client_bind_rule_t rules[2];
  dfnet_client_parent_spec_t parents[2];
  for (int i = 0; i < 2; i++) {
    rules[i] = (dfnet_client_bind_rule_t){.str_key = "fuchsia.BIND_PLATFORM_DEV_DID",
                                          .condition = DFNET_CLIENT_ACCEPT,
                                          .value_count = 1,
                                          .values = &values[i]};
    parents[i] = (dfnet_client_parent_spec_t){
        .rule_count = 1, .rules = &rules[i], .property_count = 1, .properties = &props[i]};
  }
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_add_composite_node_spec(F.admin, "pair", parents, 2, &err),
                   DFNET_STATUS_OK);
  assert_true(fabric_wait_node(F.admin, PAIR, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_passes("bob", NULL, PAIR);

  /* alice's lease on the composite: the composite first, then its parents on both boards */
  lease_t l = acquire("alice", PAIR, NULL);
  cJSON *doc = lease_list(PAIR);
  cJSON *nodes =
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "leases"), 0), "nodes");
  assert_int_equal(cJSON_GetArraySize(nodes), 3);
  assert_string_equal(cJSON_GetArrayItem(nodes, 0)->valuestring, PAIR);
  assert_string_equal(cJSON_GetArrayItem(nodes, 1)->valuestring, PA);
  assert_string_equal(cJSON_GetArrayItem(nodes, 2)->valuestring, PB);
  cJSON_Delete(doc);
  /* bob's calls to the composite and to each parent are refused, naming the node */
  assert_refused("bob", NULL, PAIR, PAIR, "alice", &l);
  assert_refused("bob", NULL, PA, PA, "alice", &l);
  assert_refused("bob", NULL, PB, PB, "alice", &l);
  /* shown on both boards: lab-a has the composite and its parent there, lab-b the other */
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  const char *const hosts[] = {"lab-a", "lab-b"};
  const int leased[] = {2, 1};
  for (int i = 0; i < 2; i++) {
    cJSON *h = host_of(doc, hosts[i]);
    cJSON *holders = cJSON_GetObjectItem(h, "lease_holders");
    assert_int_equal(cJSON_GetArraySize(holders), 1);
    assert_string_equal(cJSON_GetArrayItem(holders, 0)->valuestring, "alice");
    assert_int_equal(cJSON_GetObjectItem(h, "leased_nodes")->valueint, leased[i]);
  }
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", "--json", PB, NULL), 0);
  doc = cli_json(&R);
  cJSON *lease = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "node"), "lease");
  assert_true(cJSON_GetObjectItem(lease, "id")->valuedouble == (double)l.id);
  cJSON_Delete(doc);
  /* and he cannot lease a parent */
  as("bob", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "acquire", PB, NULL), 1);
  char want[600];
  held_msg(want, sizeof want, PB, "alice", &l);
  assert_has(R.err, want);
  /* alice's token passes; the boards' other nodes stay open */
  assert_passes("alice", l.token, PAIR);
  assert_passes("bob", NULL, N_OPEN);
  assert_passes("bob", NULL, N_FENCE);
  release("alice", &l);
  assert_passes("bob", NULL, PAIR);
  /* a parent has no driver of its own: refused, but no longer for a lease */
  assert_int_equal(echo("bob", NULL, PB), 1);
  assert_null(strstr(R.err, "leased"));
}

/* ---- 7. who holds what; the audit log --------------------------------------------------- */

/* The line of `host list` that starts with `name`, into buf. */
static void host_line(const char *text, const char *name, char *buf, size_t cap) {
  buf[0] = '\0';
  for (const char *p = text; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == ' ') {
      snprintf(buf, cap, "%.*s", (int)strcspn(p, "\n"), p);
      return;
    }
  }
}

static void test_shown_and_history(void **state) {
  (void)state;
  lease_t l = acquire("alice", N_SHOWN, NULL);
  char when[40], want[200];
  time_t t = (time_t)(l.expires_ms / 1000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(want, sizeof want, "Lease    : %" PRIu64 " by alice until %s.%03uZ\n", l.id, when,
           (unsigned)(l.expires_ms % 1000u));
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", N_SHOWN, NULL), 0);
  assert_has(R.out, want);
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "-v", "platform.shown", NULL), 0);
  assert_has(R.out, want);
  assert_int_equal(cli_run(&R, &F.fab, "node", "list", "-v", "--exact", N_OPEN, NULL), 0);
  assert_null(strstr(R.out, "Lease    :"));
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", "--json", N_SHOWN, NULL), 0);
  cJSON *doc = cli_json(&R);
  cJSON *lease = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "node"), "lease");
  assert_true(cJSON_GetObjectItem(lease, "id")->valuedouble == (double)l.id);
  assert_string_equal(cJSON_GetObjectItem(lease, "holder")->valuestring, "alice");
  assert_true(cJSON_GetObjectItem(lease, "expires_ms")->valuedouble == (double)l.expires_ms);
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", "--json", N_OPEN, NULL), 0);
  doc = cli_json(&R);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "node"), "lease")));
  cJSON_Delete(doc);
  /* host list: lab-a's LEASES column names alice; lab-b has none */
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  cJSON *a = host_of(doc, "lab-a"), *b = host_of(doc, "lab-b");
  cJSON *holders = cJSON_GetObjectItem(a, "lease_holders");
  assert_int_equal(cJSON_GetArraySize(holders), 1);
  assert_string_equal(cJSON_GetArrayItem(holders, 0)->valuestring, "alice");
  assert_int_equal(cJSON_GetObjectItem(a, "leased_nodes")->valueint, 1);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "lease_holders")), 0);
  assert_int_equal(cJSON_GetObjectItem(b, "leased_nodes")->valueint, 0);
  cJSON_Delete(doc);
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", NULL), 0);
  assert_has(R.out, " LEASES ");
  char line[512];
  host_line(R.out, "lab-a", line, sizeof line);
  assert_has(line, " alice ");
  host_line(R.out, "lab-b", line, sizeof line);
  assert_null(strstr(line, "alice"));
  release("alice", &l);
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "node", "show", N_SHOWN, NULL), 0);
  assert_null(strstr(R.out, "Lease    :"));
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", "--json", NULL), 0);
  doc = cli_json(&R);
  assert_int_equal(cJSON_GetObjectItem(host_of(doc, "lab-a"), "leased_nodes")->valueint, 0);
  cJSON_Delete(doc);

  /* `lease acquire` does not renew: with --ttl 1s it expires */
  lease_t brief = acquire("alice", N_SHOWN, "1s");
  char id[24];
  snprintf(id, sizeof id, "%" PRIu64, brief.id);
  as("watcher", NULL);
  for (uint64_t end = fabric_now_ms() + WAIT_MS; fabric_now_ms() < end; fabric_sleep_ms(100))
    if (cli_run(&R, &F.fab, "lease", "show", id, NULL) != 0)
      break;
  assert_has(R.err, "dfnet: NOT_FOUND: ");
  assert_passes("bob", NULL, N_SHOWN);

  /* the audit log of the node: acquire, release, acquire, expire, in order */
  as("watcher", NULL);
  assert_int_equal(cli_run(&R, &F.fab, "lease", "history", "--json", "--target", N_SHOWN, NULL), 0);
  doc = cli_json(&R);
  const struct {
    const char *action, *actor;
    uint64_t lease;
  } want_rows[] = {{"acquire", "alice", l.id},
                   {"release", "alice", l.id},
                   {"acquire", "alice", brief.id},
                   {"expire", "dfnet-manager", brief.id}};
  cJSON *entries = cJSON_GetObjectItem(doc, "entries");
  assert_int_equal(cJSON_GetArraySize(entries), 4);
  double seq = 0;
  for (int i = 0; i < 4; i++) {
    cJSON *e = cJSON_GetArrayItem(entries, i);
    assert_string_equal(cJSON_GetObjectItem(e, "action")->valuestring, want_rows[i].action);
    assert_string_equal(cJSON_GetObjectItem(e, "actor")->valuestring, want_rows[i].actor);
    assert_true(cJSON_GetObjectItem(e, "lease_id")->valuedouble == (double)want_rows[i].lease);
    assert_string_equal(cJSON_GetObjectItem(e, "targets")->valuestring, N_SHOWN);
    assert_true(cJSON_GetObjectItem(e, "seq")->valuedouble > seq);
    seq = cJSON_GetObjectItem(e, "seq")->valuedouble;
  }
  assert_false(cJSON_IsTrue(cJSON_GetObjectItem(doc, "more")));
  cJSON_Delete(doc);
}

/* ---- 5. kill -9 of the manager, restart --------------------------------------------------- */

static void test_manager_killed(void **state) {
  (void)state;
  lease_t l = acquire("alice", N_KEEP, NULL);
  /* bob waits behind her */
  as("bob", NULL);
  bg_t *bob = bg_start("lease", "acquire", "--wait", N_KEEP, NULL);
  assert_true(wait_text(bob->err, "position 1 (request", 1));
  uint64_t q = told_request(bob);
  char told[128];
  told_text(told, sizeof told, 1, q);
  assert_has(file_text(bob->err), told);
  assert_refused("bob", NULL, N_KEEP, N_KEEP, "alice", &l);

  /* kill -9, then the same state directory and port */
  assert_true(fabric_stop_process(&F.fab.manager, SIGKILL) >= 0);
  uint16_t port = F.fab.port;
  assert_int_equal(fabric_restart_manager(&F.fab, "127.0.0.1", 30), 0);
  assert_int_equal(F.fab.port, port);
  /* the lease, with the same expiry; bob's request in the queue */
  cJSON *doc = lease_list(N_KEEP);
  cJSON *held = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "leases"), 0);
  assert_non_null(held);
  assert_true(cJSON_GetObjectItem(held, "id")->valuedouble == (double)l.id);
  assert_string_equal(cJSON_GetObjectItem(held, "holder")->valuestring, "alice");
  assert_true(cJSON_GetObjectItem(held, "expires_ms")->valuedouble == (double)l.expires_ms);
  cJSON *waiting = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "queue"), 0);
  assert_non_null(waiting);
  assert_true(cJSON_GetObjectItem(waiting, "id")->valuedouble == (double)q);
  assert_string_equal(cJSON_GetObjectItem(waiting, "holder")->valuestring, "bob");
  cJSON_Delete(doc);
  /* the agent is back; alice's token still works, bob is still refused */
  assert_true(fabric_wait_node(F.admin, N_KEEP, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_passes("alice", l.token, N_KEEP);
  assert_refused("bob", NULL, N_KEEP, N_KEEP, "alice", &l);
  /* bob's CLI took its place again by itself (told it again), and gets the lease next */
  assert_true(wait_text(bob->err, told, 2));
  assert_false(bg_done(bob, 0));
  release("alice", &l);
  assert_true(bg_done(bob, WAIT_MS));
  if (bob->status != 0)
    fail_msg("bob's waiting acquire: exit %d: %s", bob->status, file_text(bob->err));
  lease_t lb = lease_of_text(bob->out);
  assert_string_equal(lb.holder, "bob");
  assert_passes("bob", lb.token, N_KEEP);
  release("bob", &lb);
}

/* ---- 8. --require-lease ------------------------------------------------------------------- */

static void test_require_lease(void **state) {
  (void)state;
  static const char *const require[] = {"--require-lease", NULL};
  assert_true(fabric_stop_process(&F.fab.manager, SIGTERM) >= 0);
  F.fab.manager_extra = require;
  assert_int_equal(fabric_restart_manager(&F.fab, "127.0.0.1", 30), 0);
  assert_true(fabric_wait_node(F.admin, N_OPEN, fabric_is_bound, NULL, WAIT_MS, NULL));
  /* a call to a node nobody leased is refused, saying how to lease it */
  assert_int_equal(echo("bob", NULL, N_OPEN), 1);
  assert_has(R.err,
             "dfnet: FAILED_PRECONDITION: dfnet-manager requires a lease: dfnet lease "
             "acquire " N_OPEN);
  lease_t l = acquire("bob", N_OPEN, NULL);
  assert_passes("bob", l.token, N_OPEN);
  assert_refused("alice", NULL, N_OPEN, N_OPEN, "bob", &l);
  release("bob", &l);
  assert_int_equal(echo("bob", NULL, N_OPEN), 1);
  assert_has(R.err, "requires a lease");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fence, after_each),
      cmocka_unit_test_teardown(test_stream_ends_at_expiry, after_each),
      cmocka_unit_test_teardown(test_queue_priorities, after_each),
      cmocka_unit_test_teardown(test_lease_run, after_each),
      cmocka_unit_test_teardown(test_composite_lease, after_each),
      cmocka_unit_test_teardown(test_shown_and_history, after_each),
      cmocka_unit_test_teardown(test_manager_killed, after_each),
      cmocka_unit_test_teardown(test_require_lease, after_each),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
