/* Resources handed, not opened, end to end ("Driver rights"; docs/architecture.md
 * "Resources"): the real dfnet-manager and dfnet-host, the host's board file naming a tty (a
 * pseudo-terminal) and a block file, and the resource test driver (tests/drivers/resource.c)
 * reading through the descriptors the agent handed its driver host.
 *
 * Checked: the board's tty and block arrive under their names and are read through (bytes
 * the board side writes come out of "tty"); a board device whose tty does not exist stays
 * unbound with the agent's reason ("cannot open resource tty ...: No such file or
 * directory", NOT_FOUND), logged once, while the other nodes carry on; a manifest resource
 * no --allow-resource glob matches is refused PERMISSION_DENIED with the reason; manifest
 * resources the globs match arrive, read-only or ("access": "rw") writable; a child a driver
 * added whose properties name the tty gets nothing from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli_run.h"
#include "fabric.h"

#define HOST "lab-r"
#define CONSOLE "dev." HOST ".platform.console"
#define MISSING "dev." HOST ".platform.missing"
#define DENIED "dev." HOST ".platform.denied"
#define ALLOWED "dev." HOST ".platform.allowed"
#define PARENT "dev." HOST ".platform.parent"
#define KID PARENT ".kid"
#define LIST "/dfnet.test.Resource/List"
#define READ "/dfnet.test.Resource/Read"
#define WRITE "/dfnet.test.Resource/Write"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;
  int board_side; /* the pty's master: the board's end of the console */
  int tty;        /* its slave, held open */
  char tty_path[128];
  char files[160];   /* /tmp/dfnet-res-<pid>: the manifest resources live here */
  char allow[200];   /* --allow-resource <files>/allowed* */
  char missing[160]; /* a tty that does not exist */
  char ext_denied[300], ext_allowed[600], ext_parent[300];
  const char *agent_args[3];
} F = {.board_side = -1, .tty = -1};

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
  (void)state;
  snprintf(F.files, sizeof F.files, "/tmp/dfnet-res-%d", (int)getpid());
  snprintf(F.allow, sizeof F.allow, "%s/allowed*", F.files);
  snprintf(F.missing, sizeof F.missing, "/dev/dfnet-no-such-tty-%d", (int)getpid());
  snprintf(F.ext_denied, sizeof F.ext_denied, "\"resources\": [\"%s/secret\"]", F.files);
  struct termios t;
  if (openpty(&F.board_side, &F.tty, F.tty_path, NULL, NULL) != 0 || tcgetattr(F.tty, &t) != 0)
    return -1;
  snprintf(F.ext_parent, sizeof F.ext_parent, "\"config\": {\"kid_did\": 44, \"kid_tty\": \"%s\"}",
           F.tty_path);
  snprintf(F.ext_allowed, sizeof F.ext_allowed,
           "\"resources\": [\"%s/allowed-ro\", {\"path\": \"%s/allowed-rw\", \"access\": \"rw\"}]",
           F.files, F.files);
  const fabric_package_t packages[] = {
      {"res", "resource.so", NULL, 41},
      {"res-denied", "resource.so", F.ext_denied, 42},
      {"res-allowed", "resource.so", F.ext_allowed, 43},
      /* a parent that adds a child naming the tty in its properties, and the child's driver */
      {"res-parent", "resource.so", F.ext_parent, 45},
      {"res-kid", "resource.so", NULL, 44},
      {NULL, NULL, NULL, 0},
  };
  F.agent.name = HOST;
  F.agent_args[0] = "--allow-resource";
  F.agent_args[1] = F.allow;
  F.agent.extra = F.agent_args;
  if (fabric_init(&F.fab, "resources", NULL, packages) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "operator", "op") != 0 ||
      fabric_sh("mkdir -p '%s'", F.files) != 0)
    return -1;
  char path[400];
  snprintf(path, sizeof path, "%s/secret", F.files);
  write_text(path, "not for drivers");
  snprintf(path, sizeof path, "%s/allowed-ro", F.files);
  write_text(path, "read me");
  snprintf(path, sizeof path, "%s/allowed-rw", F.files);
  write_text(path, "overwrite me");
  snprintf(path, sizeof path, "%s/disk.img", F.fab.root);
  write_text(path, "disk image bytes");

  cfmakeraw(&t);
  /* not inherited by the agent: what it holds of the tty is what it opened */
  if (tcsetattr(F.tty, TCSANOW, &t) != 0 || fcntl(F.tty, F_SETFD, FD_CLOEXEC) != 0 ||
      fcntl(F.board_side, F_SETFD, FD_CLOEXEC) != 0)
    return -1;
  char board[400];
  snprintf(board, sizeof board, "%s/board.json", F.fab.root);
  FILE *b = fopen(board, "w");
  if (b == NULL)
    return -1;
  fprintf(b,
          "{\"devices\": [\n"
          " {\"name\": \"console\", \"vid\": 3343, \"pid\": 1, \"did\": 41,\n"
          "  \"resources\": {\"tty\": \"%s\", \"block\": \"%s/disk.img\"}},\n"
          " {\"name\": \"missing\", \"vid\": 3343, \"pid\": 1, \"did\": 41,\n"
          "  \"resources\": {\"tty\": \"%s\"}},\n"
          " {\"name\": \"denied\", \"vid\": 3343, \"pid\": 1, \"did\": 42},\n"
          " {\"name\": \"allowed\", \"vid\": 3343, \"pid\": 1, \"did\": 43},\n"
          " {\"name\": \"parent\", \"vid\": 3343, \"pid\": 1, \"did\": 45}]}\n",
          F.tty_path, F.fab.root, F.missing);
  fclose(b);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  if ((F.op = fabric_connect(&F.fab, "op")) == NULL)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, &F.agent, 1);
  if (F.board_side >= 0)
    close(F.board_side);
  if (F.tty >= 0)
    close(F.tty);
  if (fabric_sh("rm -rf '%s'", F.files) != 0)
    print_message("cannot remove %s\n", F.files);
  return 0;
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

/* How many lines of the agent's log hold `needle`. */
static int agent_log_lines(const char *needle) {
  FILE *f = fopen(F.agent.log, "r");
  assert_non_null(f);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

/* Does process pid hold a descriptor of `path`? */
static bool holds(pid_t pid, const char *path) {
  char dir[64], link[400], target[512];
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(dir);
  assert_non_null(d);
  bool found = false;
  struct dirent *e;
  while (!found && (e = readdir(d)) != NULL) {
    snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      found = strcmp(target, path) == 0;
    }
  }
  closedir(d);
  return found;
}

static void test_board_resources(void **state) {
  (void)state;
  assert_true(fabric_wait_node(F.op, CONSOLE, fabric_is_bound, NULL, WAIT_MS, NULL));
  char out[512];
  assert_int_equal(fabric_call(F.op, CONSOLE, LIST, NULL, 0, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "tty=chr,block=file");
  assert_int_equal(fabric_call(F.op, CONSOLE, READ, "block", 5, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "disk image bytes");
  /* what the board sends comes out of the tty the agent handed */
  assert_int_equal(write(F.board_side, "boot log", 8), 8);
  fabric_sleep_ms(100);
  assert_int_equal(fabric_call(F.op, CONSOLE, READ, "tty", 3, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "boot log");
  /* the agent closed its copies once they were sent: only the driver host holds them */
  char disk[400];
  snprintf(disk, sizeof disk, "%s/disk.img", F.fab.root);
  assert_false(holds(F.agent.pid, disk));
  assert_false(holds(F.agent.pid, F.tty_path));
  /* the driver was handed no manifest resource: a name it lacks is -1 */
  assert_int_equal(fabric_call(F.op, CONSOLE, READ, "sysfs", 5, 5000, out, sizeof out),
                   DFNET_STATUS_NOT_FOUND);
}

/* What `dfnet` shows: each driver host's handed descriptors ("<node> <name> <path>",
 * `driver host list`), and each driver's manifest resources (`driver list -v`). */
static void test_cli_shows_resources(void **state) {
  (void)state;
  assert_true(fabric_wait_node(F.op, CONSOLE, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_true(fabric_wait_node(F.op, ALLOWED, fabric_is_bound, NULL, WAIT_MS, NULL));
  static cli_run_t r;
  cli_use(&F.fab, "op");
  assert_int_equal(cli_run(&r, &F.fab, "driver", "host", "list", "--json", NULL), 0);
  char tty[300], block[500];
  snprintf(tty, sizeof tty, CONSOLE " tty %s", F.tty_path);
  snprintf(block, sizeof block, CONSOLE " block %s/disk.img", F.fab.root);
  bool saw_tty = false, saw_block = false;
  cJSON *doc = cli_json(&r), *h, *res;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(doc, "driver_hosts")) {
    cJSON_ArrayForEach(res, cJSON_GetObjectItem(h, "resources")) {
      saw_tty = saw_tty || strcmp(res->valuestring, tty) == 0;
      saw_block = saw_block || strcmp(res->valuestring, block) == 0;
    }
  }
  cJSON_Delete(doc);
  if (!saw_tty || !saw_block)
    fail_msg("driver host list lacks \"%s\" or \"%s\":\n%s", tty, block, r.out);
  assert_int_equal(cli_run(&r, &F.fab, "driver", "host", "list", NULL), 0);
  assert_non_null(strstr(r.out, "Handed : " CONSOLE " tty "));

  char ro[300], rw[300];
  snprintf(ro, sizeof ro, "Resources : %s/allowed-ro", F.files);
  snprintf(rw, sizeof rw, "%s/allowed-rw (rw)", F.files);
  assert_int_equal(cli_run(&r, &F.fab, "driver", "list", "-v", NULL), 0);
  if (strstr(r.out, ro) == NULL || strstr(r.out, rw) == NULL)
    fail_msg("driver list -v lacks \"%s\" or \"%s\":\n%s", ro, rw, r.out);
}

static void test_missing_file(void **state) {
  (void)state;
  char reason[512], want[300];
  assert_int_equal(unbound_reason(MISSING, reason, sizeof reason), DFNET_STATUS_NOT_FOUND);
  snprintf(want, sizeof want, "cannot open resource tty %s: No such file or directory", F.missing);
  if (strstr(reason, want) == NULL)
    fail_msg("reason \"%s\" lacks \"%s\"", reason, want);
  assert_int_equal(agent_log_lines(want), 1); /* logged once */
  /* the others carry on */
  assert_true(fabric_wait_node(F.op, CONSOLE, fabric_is_bound, NULL, WAIT_MS, NULL));
  assert_true(fabric_wait_node(F.op, ALLOWED, fabric_is_bound, NULL, WAIT_MS, NULL));
}

static void test_manifest_resources(void **state) {
  (void)state;
  char reason[512], want[400];
  assert_int_equal(unbound_reason(DENIED, reason, sizeof reason), DFNET_STATUS_PERMISSION_DENIED);
  snprintf(want, sizeof want,
           "resource %s/secret is not allowed on this host (dfnet-host --allow-resource)", F.files);
  if (strstr(reason, want) == NULL)
    fail_msg("reason \"%s\" lacks \"%s\"", reason, want);

  assert_true(fabric_wait_node(F.op, ALLOWED, fabric_is_bound, NULL, WAIT_MS, NULL));
  char out[512], name[300], expect[600];
  snprintf(expect, sizeof expect, "%s/allowed-ro=file,%s/allowed-rw=file", F.files, F.files);
  assert_int_equal(fabric_call(F.op, ALLOWED, LIST, NULL, 0, 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, expect);
  snprintf(name, sizeof name, "%s/allowed-ro", F.files);
  assert_int_equal(fabric_call(F.op, ALLOWED, READ, name, strlen(name), 5000, out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "read me");
  /* read-only: a write through it fails; the "rw" one takes it */
  char req[400];
  int n = snprintf(req, sizeof req, "%s=changed", name);
  assert_int_equal(fabric_call(F.op, ALLOWED, WRITE, req, (size_t)n, 5000, NULL, 0),
                   DFNET_STATUS_UNAVAILABLE);
  n = snprintf(req, sizeof req, "%s/allowed-rw=changed", F.files);
  assert_int_equal(fabric_call(F.op, ALLOWED, WRITE, req, (size_t)n, 5000, NULL, 0),
                   DFNET_STATUS_OK);
  snprintf(name, sizeof name, "%s/allowed-rw", F.files);
  FILE *f = fopen(name, "r");
  assert_non_null(f);
  assert_non_null(fgets(out, sizeof out, f));
  fclose(f);
  assert_string_equal(out, "changedte me"); /* "overwrite me", its first 7 bytes written */
}

/* A node a driver added may name any file in its properties: its driver gets nothing from
 * them (only the nodes the agent's enumerators published count). */
static void test_child_gets_nothing(void **state) {
  (void)state;
  assert_true(fabric_wait_node(F.op, KID, fabric_is_bound, NULL, WAIT_MS, NULL));
  char out[512];
  assert_int_equal(fabric_call(F.op, KID, LIST, NULL, 0, 5000, out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "");
  assert_int_equal(fabric_call(F.op, KID, READ, "tty", 3, 5000, out, sizeof out),
                   DFNET_STATUS_NOT_FOUND);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_board_resources),    cmocka_unit_test(test_cli_shows_resources),
      cmocka_unit_test(test_missing_file),       cmocka_unit_test(test_manifest_resources),
      cmocka_unit_test(test_child_gets_nothing),
  };
  return cmocka_run_group_tests_name("resources", tests, setup, teardown);
}
