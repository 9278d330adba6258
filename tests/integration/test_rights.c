/* Driver rights end to end (issue 22 items 2 and 4; docs/architecture.md "Driver rights on a
 * host" and "Confinement"): the real dfnet-manager, two real dfnet-host agents on loopback
 * and their driver hosts, the real `dfnet` CLI. Agent lab-s runs sandboxed (the default; as
 * root, its driver hosts run as the driver user dfnet-driver) with --allow-right exec; agent
 * lab-u runs with --no-sandbox. Both publish the PCI fixture, bound by the real pci-config
 * driver, and a board of three platform devices (vid 0xd0f) bound by the echo test driver:
 * e1 (did 61, "echo": no rights), e2 (did 62, "echo-inet": "rights": ["inet"]), e3 (did 63,
 * "echo-exec": "rights": ["exec"] and its own "limits").
 *
 * test_sandboxed_driver  pci-config on lab-s reads its configuration space through the fabric;
 *                        its driver host's /proc/<pid>/status says NoNewPrivs 1, Seccomp 2,
 *                        CapEff 0 and the driver user's uid; the echo drivers answer.
 * test_right_refused     e2 on lab-s stays unbound, PERMISSION_DENIED "driver <url> needs the
 *                        right inet, which this host does not allow (dfnet-host --allow-right
 *                        inet)", logged once by the agent, while e1 and e3 answer; on lab-u
 *                        (nothing checked) e2 runs.
 * test_driver_host_list  `dfnet driver host list`: lab-s's driver hosts with the driver
 *                        user's uid, "sandboxed", their rights and the handed resources;
 *                        lab-u's "UNSANDBOXED" with uid 0 (text and --json).
 * test_host_list         `dfnet host list`: lab-u's row ends with SANDBOX OFF, lab-s's not;
 *                        --json "sandboxed".
 * test_driver_list       `dfnet driver list -v` (and --json): each driver's rights and limits.
 * test_bad_rights        `driver register` of a package with "rights": ["inetz"] is refused
 *                        with the suggestion; `dfnet-host --allow-right inetz` is a usage
 *                        error with the suggestion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "driver_user.h"
#include "fabric.h"
#include "testhost/testhost.h"

#define SANDBOXED "lab-s"
#define UNCONFINED "lab-u"
#define PCI(host) "dev." host ".pci.00_05_0"
#define E(host, n) "dev." host ".platform.e" #n
#define ECHO_INET_URL "dfnet-boot:///echo-inet#meta/echo-inet.json"
#define PCI_READ "/dfnet.hw.pci.Config/Read"
#define ECHO "/dfnet.test.Echo/Echo"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agents[2]; /* lab-s, lab-u */
  dfnet_client_t *op;
  const char *args_s[3], *args_u[2];
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

static int setup(void **state) {
  (void)state;
  test_driver_user_ensure();
  const fabric_package_t packages[] = {
      {"echo", "echo.so", NULL, 61},
      {"echo-inet", "echo.so", "\"rights\": [\"inet\"]", 62},
      {"echo-exec", "echo.so",
       "\"rights\": [\"exec\"], \"limits\": {\"memory_mb\": 64, \"open_files\": 128}", 63},
      {NULL, NULL, NULL, 0},
  };
  if (fabric_init(&F.fab, "rights", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", SANDBOXED) != 0 ||
      fabric_issue(&F.fab, "host", UNCONFINED) != 0 ||
      fabric_issue(&F.fab, "operator", "op") != 0 || fabric_issue(&F.fab, "admin", "root") != 0)
    return -1;
  /* the real pci-config driver for the PCI fixture */
  if (fabric_sh("cp -r '%s/drivers/pci-config' '%s/drivers/pci-config'", F.fab.build, F.fab.root) !=
      0)
    return -1;
  const char *board[] = {"e1:61", "e2:62", "e3:63", NULL};
  fabric_write_board(&F.fab, board);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  F.agents[0].name = SANDBOXED;
  F.args_s[0] = "--allow-right";
  F.args_s[1] = "exec";
  F.agents[0].extra = F.args_s;
  F.agents[1].name = UNCONFINED;
  F.args_u[0] = "--no-sandbox";
  F.agents[1].extra = F.args_u;
  fabric_start_agent(&F.fab, &F.agents[0]);
  fabric_start_agent(&F.fab, &F.agents[1]);
  if ((F.op = fabric_connect(&F.fab, "op")) == NULL)
    return -1;
  cli_use(&F.fab, "op");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, F.agents, 2);
  return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

static uid_t driver_uid(void) {
  struct passwd *pw = getpwnam("dfnet-driver");
  assert_non_null(pw);
  return pw->pw_uid;
}

/* The pid of the driver host running node's driver (0: none). */
static uint32_t driver_host_pid(const char *moniker) {
  dfnet_client_node_list_t *list = NULL;
  dfnet_client_error_t err;
  uint32_t pid = 0;
  if (dfnet_client_list_nodes(F.op, moniker, true, false, NULL, &list, &err) != DFNET_STATUS_OK)
    return 0;
  for (size_t i = 0; i < list->count; i++)
    if (strcmp(list->items[i].moniker, moniker) == 0)
      pid = list->items[i].driver_host_pid;
  dfnet_client_node_list_free(list);
  return pid;
}

/* The first word after `field` in /proc/<pid>/status into out[cap]. */
static void proc_status(uint32_t pid, const char *field, char *out, size_t cap) {
  char path[64], text[8192];
  snprintf(path, sizeof path, "/proc/%u/status", pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  const char *at = strstr(text, field);
  if (at == NULL)
    fail_msg("%s has no %s", path, field);
  at += strlen(field);
  at += strspn(at, " \t");
  size_t len = strcspn(at, " \t\n");
  snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), at);
}

/* The node's unbound status and reason, once the manager has one (within WAIT_MS). */
static dfnet_status_t unbound_reason(const char *moniker, char *reason, size_t cap) {
  uint64_t end = fabric_now_ms() + WAIT_MS;
  for (;;) {
    dfnet_client_node_list_t *list = NULL;
    dfnet_client_error_t err;
    dfnet_status_t code = DFNET_STATUS_OK;
    if (dfnet_client_list_nodes(F.op, moniker, true, false, NULL, &list, &err) == DFNET_STATUS_OK) {
      for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i].moniker, moniker) == 0 &&
            list->items[i].unbound_code != DFNET_STATUS_OK) {
          code = list->items[i].unbound_code;
          snprintf(reason, cap, "%s", list->items[i].unbound_message);
        }
      }
      dfnet_client_node_list_free(list);
    }
    if (code != DFNET_STATUS_OK || fabric_now_ms() > end)
      return code;
    fabric_sleep_ms(100);
  }
}

/* How many lines of an agent's log hold `needle`. */
static int log_lines(const fabric_agent_t *a, const char *needle) {
  FILE *f = fopen(a->log, "r");
  assert_non_null(f);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

/* The line of `text` that starts with `head`, into line[cap] (fails when none). */
static void line_of(const char *text, const char *head, char *line, size_t cap) {
  for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, head, strlen(head)) == 0) {
      size_t n = strcspn(p, "\n");
      snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
      return;
    }
  }
  fail_msg("no line starting with \"%s\" in:\n%s", head, text);
}

static void wait_bound(const char *moniker) {
  if (!fabric_wait_node(F.op, moniker, fabric_is_bound, NULL, WAIT_MS, NULL))
    fail_msg("%s was not bound within %u ms", moniker, WAIT_MS);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_sandboxed_driver(void **state) {
  (void)state;
  wait_bound(PCI(SANDBOXED));
  /* dfnet.hw.pci.ReadRequest{offset: 0, length: 16}: read through the handed "config" */
  static const uint8_t read16[] = {0x08, 0x00, 0x10, 0x10};
  char out[256];
  assert_int_equal(
      fabric_call(F.op, PCI(SANDBOXED), PCI_READ, read16, sizeof read16, 5000, out, sizeof out),
      DFNET_STATUS_OK);
  uint32_t pid = driver_host_pid(PCI(SANDBOXED));
  assert_true(pid != 0);
  char v[64], uid[32];
  proc_status(pid, "NoNewPrivs:", v, sizeof v);
  assert_string_equal(v, "1");
  proc_status(pid, "Seccomp:", v, sizeof v);
  assert_string_equal(v, "2");
  proc_status(pid, "CapEff:", v, sizeof v);
  assert_string_equal(v, "0000000000000000");
  proc_status(pid, "Uid:", v, sizeof v);
  snprintf(uid, sizeof uid, "%u", (unsigned)driver_uid());
  assert_string_equal(v, uid);
  wait_bound(E(SANDBOXED, 1));
  wait_bound(E(SANDBOXED, 3));
  assert_int_equal(fabric_call(F.op, E(SANDBOXED, 1), ECHO, "hi", 2, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "hi");
  assert_int_equal(fabric_call(F.op, E(SANDBOXED, 3), ECHO, "hi", 2, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  /* unconfined: the agent's own user, no filter */
  wait_bound(PCI(UNCONFINED));
  pid = driver_host_pid(PCI(UNCONFINED));
  assert_true(pid != 0);
  proc_status(pid, "Seccomp:", v, sizeof v);
  assert_string_equal(v, "0");
  proc_status(pid, "Uid:", v, sizeof v);
  snprintf(uid, sizeof uid, "%u", (unsigned)geteuid());
  assert_string_equal(v, uid);
}

static void test_right_refused(void **state) {
  (void)state;
  char reason[512];
  assert_int_equal(unbound_reason(E(SANDBOXED, 2), reason, sizeof reason),
                   DFNET_STATUS_PERMISSION_DENIED);
  static const char want[] = "driver " ECHO_INET_URL
                             " needs the right inet, which this host "
                             "does not allow (dfnet-host --allow-right inet)";
  if (strstr(reason, want) == NULL)
    fail_msg("reason \"%s\" lacks \"%s\"", reason, want);
  assert_int_equal(log_lines(&F.agents[0], want), 1); /* logged once */
  /* the others carry on */
  char out[64];
  assert_int_equal(fabric_call(F.op, E(SANDBOXED, 1), ECHO, "on", 2, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_int_equal(fabric_call(F.op, E(SANDBOXED, 3), ECHO, "on", 2, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  /* --no-sandbox checks nothing */
  wait_bound(E(UNCONFINED, 2));
  assert_int_equal(fabric_call(F.op, E(UNCONFINED, 2), ECHO, "on", 2, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
}

static void test_driver_host_list(void **state) {
  (void)state;
  wait_bound(PCI(SANDBOXED));
  wait_bound(E(SANDBOXED, 3));
  wait_bound(PCI(UNCONFINED));
  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", SANDBOXED, NULL), 0);
  char want[128];
  snprintf(want, sizeof want, ", uid %u, sandboxed\n", (unsigned)driver_uid());
  if (strstr(R.out, want) == NULL || strstr(R.out, "UNSANDBOXED") != NULL)
    fail_msg("driver host list lacks \"%s\":\n%s", want, R.out);
  assert_non_null(strstr(R.out, "    Rights : exec\n"));
  assert_non_null(strstr(R.out, "    Rights : none\n"));
  assert_non_null(strstr(R.out, "Handed : " PCI(SANDBOXED) " config "));
  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", "--json", SANDBOXED, NULL), 0);
  cJSON *doc = cli_json(&R), *h;
  bool saw_exec = false;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(doc, "driver_hosts")) {
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(h, "sandboxed")));
    assert_int_equal(cJSON_GetObjectItem(h, "uid")->valueint, (int)driver_uid());
    cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(h, "rights"), 0);
    saw_exec = saw_exec || (r != NULL && strcmp(r->valuestring, "exec") == 0);
  }
  cJSON_Delete(doc);
  assert_true(saw_exec);

  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", UNCONFINED, NULL), 0);
  snprintf(want, sizeof want, ", uid %u, UNSANDBOXED (dfnet-host --no-sandbox)\n",
           (unsigned)geteuid());
  if (strstr(R.out, want) == NULL)
    fail_msg("driver host list lacks \"%s\":\n%s", want, R.out);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "host", "list", "--json", UNCONFINED, NULL), 0);
  doc = cli_json(&R);
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(doc, "driver_hosts")) {
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(h, "sandboxed")));
  }
  cJSON_Delete(doc);
}

static void test_host_list(void **state) {
  (void)state;
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", NULL), 0);
  char line[1024];
  line_of(R.out, UNCONFINED " ", line, sizeof line);
  if (strstr(line, "SANDBOX OFF") == NULL)
    fail_msg("%s's row lacks SANDBOX OFF: %s", UNCONFINED, line);
  line_of(R.out, SANDBOXED " ", line, sizeof line);
  assert_null(strstr(line, "SANDBOX OFF"));
  assert_int_equal(cli_run(&R, &F.fab, "host", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R), *h;
  int seen = 0;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(doc, "hosts")) {
    const char *name = cJSON_GetObjectItem(h, "name")->valuestring;
    bool sandboxed = cJSON_IsTrue(cJSON_GetObjectItem(h, "sandboxed"));
    if (strcmp(name, SANDBOXED) == 0 && sandboxed)
      seen++;
    if (strcmp(name, UNCONFINED) == 0 && cJSON_IsFalse(cJSON_GetObjectItem(h, "sandboxed")))
      seen++;
  }
  cJSON_Delete(doc);
  assert_int_equal(seen, 2);
  assert_int_equal(log_lines(&F.agents[1], "SANDBOX OFF (--no-sandbox)"), 1);
}

static void test_driver_list(void **state) {
  (void)state;
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "-v", NULL), 0);
  const char *exec_at = strstr(R.out, "Name      : echo-exec\n");
  const char *inet_at = strstr(R.out, "Name      : echo-inet\n");
  assert_non_null(exec_at);
  assert_non_null(inet_at);
  assert_non_null(strstr(exec_at, "Rights    : exec\nLimits    : memory 64 MiB, 128 open files\n"));
  assert_non_null(
      strstr(inet_at, "Rights    : inet\nLimits    : memory 512 MiB, 1024 open files\n"));
  assert_non_null(strstr(R.out, "Rights    : none\n"));
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", "--json", NULL), 0);
  cJSON *doc = cli_json(&R), *d;
  bool seen = false;
  cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "drivers")) {
    if (strcmp(cJSON_GetObjectItem(d, "name")->valuestring, "echo-exec") != 0)
      continue;
    seen = true;
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "rights"), 0)->valuestring,
                        "exec");
    cJSON *lim = cJSON_GetObjectItem(d, "limits");
    assert_int_equal(cJSON_GetObjectItem(lim, "memory_mb")->valueint, 64);
    assert_int_equal(cJSON_GetObjectItem(lim, "open_files")->valueint, 128);
  }
  cJSON_Delete(doc);
  assert_true(seen);
}

static void test_bad_rights(void **state) {
  (void)state;
  char pkgs[400];
  snprintf(pkgs, sizeof pkgs, "%s/pkgs", F.fab.root);
  assert_int_equal(th_fresh_dir(pkgs), 0);
  assert_int_equal(
      th_write_driver(pkgs, "typo", "fuchsia.BIND_PROTOCOL == 99;\n", "\"rights\": [\"inetz\"]"),
      0);
  char dir[500];
  snprintf(dir, sizeof dir, "%s/typo", pkgs);
  cli_use(&F.fab, "root");
  int rc = cli_run(&R, &F.fab, "driver", "register", dir, NULL);
  cli_use(&F.fab, "op");
  assert_int_equal(rc, 1);
  if (strstr(R.err, "INVALID_ARGUMENT") == NULL ||
      strstr(R.err, "program.rights[0]: unknown right \"inetz\" (did you mean \"inet\"?)") == NULL)
    fail_msg("register refused with: %s", R.err);
  assert_int_equal(cli_run(&R, &F.fab, "driver", "list", NULL), 0);
  assert_null(strstr(R.out, "typo"));

  /* the agent: a usage error, exit 2, with the nearest right */
  char cmd[1200], out[400];
  snprintf(out, sizeof out, "%s/allow-right.txt", F.fab.root);
  snprintf(cmd, sizeof cmd, "'%s/host/agent/dfnet-host' --allow-right inetz >'%s' 2>&1",
           F.fab.build, out);
  assert_int_equal(fabric_sh("%s", cmd), 2);
  FILE *f = fopen(out, "r");
  assert_non_null(f);
  char text[1024] = "";
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  if (strstr(text, "--allow-right inetz: unknown right \"inetz\" (did you mean \"inet\"?)") == NULL)
    fail_msg("dfnet-host --allow-right inetz said: %s", text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sandboxed_driver), cmocka_unit_test(test_right_refused),
      cmocka_unit_test(test_driver_host_list), cmocka_unit_test(test_host_list),
      cmocka_unit_test(test_driver_list),      cmocka_unit_test(test_bad_rights),
  };
  return cmocka_run_group_tests_name("rights", tests, setup, teardown);
}
