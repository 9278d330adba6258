/* `dfnet image upload|write` end to end: the real `dfnet` CLI (a child process) against a
 * real dfnet-manager and dfnet-host (the agent answers dfnet.lab.ArtifactCache itself,
 * host/agent/artifacts.c) and, for `image write`, the block driver (drivers/block) on a loop
 * device (a sparse file under `losetup`; a regular file the board file names when losetup
 * cannot be used, with a note).
 *
 * Checked, with 64 MiB files of random bytes:
 *   - upload to a node with no driver: the agent's cache holds <sha256 hex> with the same
 *     bytes; the same upload again says the host already has it and sends nothing;
 *   - resume: the CLI killed (SIGKILL) once the .part holds a few MiB; run again, its first
 *     progress line starts past 0 and the artifact verifies;
 *   - a dropped connection: the manager killed and started again (same port and state) while
 *     an upload runs: the same CLI run goes on by itself and completes;
 *   - `image write` to the loop device with the manager restarted during the upload: the
 *     device's first 64 MiB hash to the file's digest;
 *   - bad input: an unknown TARGET (NOT_FOUND naming it), a FILE that does not exist (usage
 *     error naming it, exit 2), an empty FILE (INVALID_ARGUMENT);
 *   - the agent restarted, with a smaller --artifact-cache-mb, while an upload was cut off:
 *     the upload resumes (the agent hashes the .part it finds), the least recently used
 *     artifact is evicted to make room, and a file over the bound is RESOURCE_EXHAUSTED.
 * Every process the test starts, and the loop device it attached, go on every way out (group
 * teardown, atexit, and a handler for SIGTERM, SIGINT and SIGHUP); `losetup -d` of that one
 * device only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "child.h"
#include "cli_run.h"
#include "fabric.h"

#define HOST "lab-i"
#define SCRATCH "dev.lab-i.platform.scratch" /* a node no driver binds */
#define SD0 "dev.lab-i.platform.sd0"         /* the block device */
#define IMAGE_SIZE (64u << 20)
#define DEVICE_SIZE (128u << 20)
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  char artifacts[400]; /* the agent's artifact cache */
  char loop[64];       /* the loop device attached ("" = none) */
  char backing[400];   /* its backing file, or the regular file standing for the device */
  char device[400];    /* what the board file names: loop or backing */
  bool have_block;     /* the build has the block driver */
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* ---- helpers -------------------------------------------------------------------------------- */

static void loop_detach(void) {
  if (F.loop[0] != '\0') {
    if (fabric_sh("losetup -d '%s'", F.loop) != 0)
      print_message("cannot detach %s: detach it by hand\n", F.loop);
    F.loop[0] = '\0';
  }
}

/* SIGTERM, SIGINT, SIGHUP (ctest's timeout, Ctrl-C): the children go (tests/child.h; its own
 * handler is not installed once this one is), then the loop device, then the default action.
 * fork, exec and waitpid only: async-signal-safe. */
static void on_fatal_signal(int sig) {
  test_child_kill_all();
  if (F.loop[0] != '\0') {
    pid_t pid = fork();
    if (pid == 0) {
      execlp("losetup", "losetup", "-d", F.loop, (char *)NULL);
      _exit(127);
    }
    if (pid > 0)
      waitpid(pid, NULL, 0);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

/* A file of `size` random bytes at <root>/<name>; its path into out. */
static void random_file(const char *name, size_t size, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", F.fab.root, name);
  assert_int_equal(fabric_sh("head -c %zu /dev/urandom > '%s'", size, out), 0);
}

/* SHA-256 of the first `size` bytes of path (all of it when size is 0), as hex. */
static void file_sha256(const char *path, uint64_t size, char hex[65]) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  mbedtls_sha256_context ctx;
  mbedtls_sha256_init(&ctx);
  mbedtls_sha256_starts_ret(&ctx, 0);
  static uint8_t buf[1 << 20];
  uint64_t left = size ? size : UINT64_MAX;
  while (left > 0) {
    ssize_t n = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
    assert_true(n >= 0);
    if (n == 0)
      break;
    mbedtls_sha256_update_ret(&ctx, buf, (size_t)n);
    left -= (uint64_t)n;
  }
  assert_true(size == 0 || left == 0);
  uint8_t d[32];
  mbedtls_sha256_finish_ret(&ctx, d);
  mbedtls_sha256_free(&ctx);
  close(fd);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static long long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The cache's files for digest hex. */
static void cache_path(const char *hex, bool part, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s%s", F.artifacts, hex, part ? ".part" : "");
}

/* `dfnet args...` in the background, stdout and stderr to <root>/<tag>.out / .err. */
static pid_t cli_spawn(const char *tag, const char *const *args) {
  char cli[600], out[400], err[400];
  snprintf(cli, sizeof cli, "%s/clients/dfnet", F.fab.build);
  snprintf(out, sizeof out, "%s/%s.out", F.fab.root, tag);
  snprintf(err, sizeof err, "%s/%s.err", F.fab.root, tag);
  const char *argv[16] = {cli};
  for (int i = 0; args[i] != NULL && i < 14; i++)
    argv[i + 1] = args[i];
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* Wait for pid's exit (at most ms); its exit code, or -1 (killed, or it did not end). */
static int cli_wait(pid_t pid, uint32_t ms) {
  int ws = 0;
  uint64_t end = fabric_now_ms() + ms;
  pid_t done;
  while ((done = waitpid(pid, &ws, WNOHANG)) == 0 && fabric_now_ms() < end)
    fabric_sleep_ms(20);
  if (done != pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
    return -1;
  }
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Read <root>/<tag>.<ext> into buf (NUL-terminated). */
static void read_output(const char *tag, const char *ext, char *buf, size_t cap) {
  char path[400];
  snprintf(path, sizeof path, "%s/%s.%s", F.fab.root, tag, ext);
  test_child_read_output(path, buf, cap);
}

/* Line `index` of text (0 first; -1 the last) parsed as JSON; fails the test otherwise. */
static cJSON *json_line(const char *text, int index) {
  const char *lines[4096];
  int n = 0;
  for (const char *p = text; *p != '\0' && n < 4096;) {
    lines[n++] = p;
    const char *nl = strchr(p, '\n');
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  if (index < 0)
    index = n + index;
  assert_true(index >= 0 && index < n);
  const char *nl = strchr(lines[index], '\n');
  size_t len = nl ? (size_t)(nl - lines[index]) : strlen(lines[index]);
  cJSON *doc = cJSON_ParseWithLength(lines[index], len);
  if (doc == NULL)
    fail_msg("not a JSON line: %.*s", (int)len, lines[index]);
  return doc;
}

static double num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItem(o, key);
  if (!cJSON_IsNumber(v))
    fail_msg("no number \"%s\"", key);
  return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItem(o, key);
  if (!cJSON_IsString(v))
    fail_msg("no string \"%s\"", key);
  return v->valuestring;
}

/* Wait until the .part of hex holds at least `bytes` (polling every 2 ms); false when the
 * upload ended first or nothing came within ms. */
static bool wait_part(const char *hex, long long bytes, uint32_t ms) {
  char part[500], done[500];
  cache_path(hex, true, part, sizeof part);
  cache_path(hex, false, done, sizeof done);
  uint64_t end = fabric_now_ms() + ms;
  while (fabric_now_ms() < end) {
    if (file_size(part) >= bytes)
      return true;
    if (file_size(done) >= 0)
      return false;
    usleep(2000);
  }
  return false;
}

/* Kill the manager and start it again on the same port and state directory. */
static void restart_manager(void) {
  uint16_t port = F.fab.port;
  assert_true(fabric_stop_process(&F.fab.manager, SIGKILL) != -1);
  assert_int_equal(fabric_restart_manager(&F.fab, "127.0.0.1", 30), 0);
  assert_int_equal(F.fab.port, port);
}

/* The artifact of hex in the agent's cache is the file's bytes. */
static void assert_cached(const char *hex, const char *file) {
  char done[500], part[500], got[65];
  cache_path(hex, false, done, sizeof done);
  cache_path(hex, true, part, sizeof part);
  assert_int_equal(file_size(done), file_size(file));
  assert_int_equal(file_size(part), -1);
  file_sha256(done, 0, got);
  assert_string_equal(got, hex);
  assert_int_equal(fabric_sh("cmp -s '%s' '%s'", done, file), 0);
}

/* ---- set-up ---------------------------------------------------------------------------------- */

/* The device the block driver writes: a loop device on a sparse file, else the file. */
static void make_device(void) {
  snprintf(F.backing, sizeof F.backing, "%s/sd0.img", F.fab.root);
  assert_int_equal(fabric_sh("truncate -s %u '%s'", DEVICE_SIZE, F.backing), 0);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "losetup -f --show '%s' 2>/dev/null", F.backing);
  FILE *p = popen(cmd, "r");
  char line[64] = "";
  if (p != NULL) {
    if (fgets(line, sizeof line, p) == NULL)
      line[0] = '\0';
    pclose(p);
  }
  line[strcspn(line, "\n")] = '\0';
  if (strncmp(line, "/dev/loop", 9) == 0) {
    snprintf(F.loop, sizeof F.loop, "%s", line);
    snprintf(F.device, sizeof F.device, "%s", F.loop);
  } else {
    print_message(
        "note: losetup cannot attach a loop device here: the block driver writes the "
        "regular file %s instead\n",
        F.backing);
    snprintf(F.device, sizeof F.device, "%s", F.backing);
  }
}

static int setup(void **state) {
  (void)state;
  atexit(loop_detach);
  const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], on_fatal_signal);
  F.agent.name = HOST;
  const fabric_package_t none[] = {{NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "cli-image", NULL, none) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "operator", "op") != 0)
    return -1;
  snprintf(F.artifacts, sizeof F.artifacts, "%s/cache-%s/artifacts", F.fab.root, HOST);
  F.have_block = fabric_sh("test -d '%s/drivers/block'", F.fab.build) == 0;
  if (F.have_block &&
      fabric_sh("cp -a '%s/drivers/block' '%s/drivers/'", F.fab.build, F.fab.root) != 0)
    return -1;
  make_device();
  char path[300];
  snprintf(path, sizeof path, "%s/board.json", F.fab.root);
  FILE *b = fopen(path, "w");
  if (b == NULL)
    return -1;
  fprintf(b,
          "{\"board\": \"lab-i\", \"devices\": [\n"
          " {\"name\": \"scratch\", \"vid\": 0, \"pid\": 0, \"did\": \"0x77\"},\n"
          " {\"name\": \"sd0\", \"vid\": 0, \"pid\": 0, \"did\": \"0x0\",\n"
          "  \"resources\": {\"block\": \"%s\"}}]}\n",
          F.device);
  fclose(b);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  dfnet_client_t *c = fabric_connect(&F.fab, "op");
  bool up = c != NULL && fabric_wait_node(c, SCRATCH, fabric_is_found, NULL, WAIT_MS, NULL);
  if (up && F.have_block && !fabric_wait_node(c, SD0, fabric_is_bound, NULL, WAIT_MS, NULL)) {
    print_message("%s was not bound by the block driver (see %s)\n", SD0, F.agent.log);
    up = false;
  }
  dfnet_client_close(c);
  return up ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fabric_cleanup(&F.fab, &F.agent, 1);
  loop_detach();
  return 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_upload_then_already_held(void **state) {
  (void)state;
  char file[400], hex[65];
  random_file("a.img", IMAGE_SIZE, file, sizeof file);
  file_sha256(file, 0, hex);
  cli_use(&F.fab, "op");
  assert_int_equal(cli_run(&R, &F.fab, "image", "upload", SCRATCH, file, NULL), 0);
  assert_non_null(strstr(R.out, hex));
  assert_non_null(strstr(R.out, "upload "));
  assert_cached(hex, file);

  /* again: the host has it, nothing is sent */
  assert_int_equal(cli_run(&R, &F.fab, "image", "upload", SCRATCH, file, NULL), 0);
  assert_non_null(strstr(R.out, "already has it"));
  assert_non_null(strstr(R.out, hex));
  assert_int_equal(cli_run(&R, &F.fab, "image", "upload", SCRATCH, file, "--json", NULL), 0);
  cJSON *end = json_line(R.out, -1);
  assert_string_equal(str(end, "status"), "OK");
  assert_string_equal(str(end, "sha256"), hex);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(end, "already_held")));
  assert_true(num(end, "sent_bytes") == 0);
  assert_true(num(end, "total_bytes") == IMAGE_SIZE);
  cJSON_Delete(end);
  cJSON *first = json_line(R.out, 0);
  assert_string_equal(str(first, "phase"), "upload");
  assert_true(num(first, "done_bytes") == IMAGE_SIZE);
  cJSON_Delete(first);
}

static void test_resume_after_kill(void **state) {
  (void)state;
  char file[400], hex[65], part[500];
  random_file("b.img", IMAGE_SIZE, file, sizeof file);
  file_sha256(file, 0, hex);
  cache_path(hex, true, part, sizeof part);
  cli_use(&F.fab, "op");
  const char *args[] = {"image", "upload", SCRATCH, file, "--json", NULL};
  pid_t pid = cli_spawn("resume-1", args);
  bool caught = wait_part(hex, 4 << 20, 60000);
  kill(pid, SIGKILL);
  assert_int_equal(cli_wait(pid, 5000), -1);
  assert_true(caught);  /* else the upload ended before it could be cut off */
  fabric_sleep_ms(300); /* the Puts already sent land */
  long long held = file_size(part);
  assert_true(held >= 4 << 20 && held < IMAGE_SIZE);

  static char out[1 << 20];
  pid = cli_spawn("resume-2", args);
  assert_int_equal(cli_wait(pid, 120000), 0);
  read_output("resume-2", "out", out, sizeof out);
  cJSON *first = json_line(out, 0);
  assert_string_equal(str(first, "phase"), "upload");
  assert_true(num(first, "done_bytes") > 0);
  assert_true(num(first, "done_bytes") == (double)held);
  cJSON_Delete(first);
  cJSON *end = json_line(out, -1);
  assert_string_equal(str(end, "status"), "OK");
  assert_string_equal(str(end, "sha256"), hex);
  assert_true(num(end, "resumed_at") == (double)held);
  assert_true(num(end, "sent_bytes") == (double)(IMAGE_SIZE - held));
  cJSON_Delete(end);
  assert_cached(hex, file);
}

static void test_upload_survives_manager_restart(void **state) {
  (void)state;
  char file[400], hex[65];
  random_file("c.img", IMAGE_SIZE, file, sizeof file);
  file_sha256(file, 0, hex);
  cli_use(&F.fab, "op");
  const char *args[] = {"image", "upload", SCRATCH, file, "--json", NULL};
  pid_t pid = cli_spawn("drop", args);
  bool caught = wait_part(hex, 4 << 20, 60000);
  restart_manager();
  int rc = cli_wait(pid, 120000);
  static char out[1 << 20], err[16384];
  read_output("drop", "out", out, sizeof out);
  read_output("drop", "err", err, sizeof err);
  if (rc != 0)
    fail_msg("dfnet image upload -> %d\nstdout: %s\nstderr: %s", rc, out, err);
  assert_true(caught);
  cJSON *end = json_line(out, -1);
  assert_string_equal(str(end, "status"), "OK");
  assert_string_equal(str(end, "sha256"), hex);
  assert_true(num(end, "retries") >= 1); /* it went on after the drop by itself */
  cJSON_Delete(end);
  assert_cached(hex, file);
}

static void test_write_to_block_device(void **state) {
  (void)state;
  if (!F.have_block) {
    print_message("no drivers/block in this build: image write not tested\n");
    skip();
  }
  char file[400], hex[65], got[65];
  random_file("d.img", IMAGE_SIZE, file, sizeof file);
  file_sha256(file, 0, hex);
  cli_use(&F.fab, "op");
  const char *args[] = {"image", "write", SD0, file, "--json", NULL};
  pid_t pid = cli_spawn("write", args);
  bool caught = wait_part(hex, 4 << 20, 60000);
  restart_manager(); /* during the upload phase */
  int rc = cli_wait(pid, 180000);
  static char out[1 << 20], err[16384];
  read_output("write", "out", out, sizeof out);
  read_output("write", "err", err, sizeof err);
  if (rc != 0)
    fail_msg("dfnet image write -> %d\nstdout: %s\nstderr: %s", rc, out, err);
  assert_true(caught);
  cJSON *end = json_line(out, -1);
  assert_string_equal(str(end, "status"), "OK");
  assert_non_null(strstr(str(end, "message"), "read-back SHA-256 matches"));
  cJSON_Delete(end);
  /* every phase ended */
  assert_non_null(strstr(out, "{\"phase\":\"upload\""));
  assert_non_null(strstr(out, "{\"phase\":\"write\""));
  assert_non_null(strstr(out, "{\"phase\":\"verify\""));
  file_sha256(F.device, IMAGE_SIZE, got);
  assert_string_equal(got, hex);
  /* the driver wrote while the upload went on (WriteImage{follow_upload_size}) */
  assert_int_equal(fabric_sh("grep -q 'WriteImage %s (%u bytes) to .*, following its upload' '%s'",
                             hex, IMAGE_SIZE, F.agent.log),
                   0);
}

/* An image larger than the block device: the WriteImage that runs beside the upload fails
 * OUT_OF_RANGE at once, and that stops the upload: the host never gets the whole file. */
static void test_write_too_large_stops_upload(void **state) {
  (void)state;
  if (!F.have_block || F.loop[0] == '\0') {
    print_message("no block driver or no loop device: a regular file grows, nothing to refuse\n");
    skip();
  }
  char file[400], hex[65], done[500];
  random_file("huge.img", DEVICE_SIZE + (32u << 20), file, sizeof file);
  file_sha256(file, 0, hex);
  cli_use(&F.fab, "op");
  assert_int_equal(cli_run(&R, &F.fab, "image", "write", SD0, file, NULL), 1);
  assert_non_null(strstr(R.err, "OUT_OF_RANGE"));
  assert_non_null(strstr(R.err, "more than"));
  cache_path(hex, false, done, sizeof done);
  assert_int_equal(file_size(done), -1); /* the upload stopped before its end */
}

static void test_bad_input(void **state) {
  (void)state;
  char file[400], empty[400];
  random_file("e.img", 4096, file, sizeof file);
  random_file("empty.img", 0, empty, sizeof empty);
  cli_use(&F.fab, "op");
  assert_int_equal(cli_run(&R, &F.fab, "image", "upload", "dev.lab-i.platform.nope", file, NULL),
                   1);
  assert_non_null(strstr(R.err, "NOT_FOUND"));
  assert_non_null(strstr(R.err, "dev.lab-i.platform.nope"));

  char missing[450];
  snprintf(missing, sizeof missing, "%s/missing.img", F.fab.root);
  assert_int_equal(cli_run(&R, &F.fab, "image", "upload", SCRATCH, missing, NULL), 2);
  assert_non_null(strstr(R.err, missing));
  assert_non_null(strstr(R.err, "No such file"));

  assert_int_equal(cli_run(&R, &F.fab, "image", "write", SCRATCH, empty, NULL), 1);
  assert_non_null(strstr(R.err, "INVALID_ARGUMENT"));
  assert_non_null(strstr(R.err, "empty"));
}

/* `image upload SCRATCH file --json` (runs named name-1, name-2): the first killed
 * (SIGKILL) once the cache's .part of hex holds `bytes`; then the agent restarted with `extra`
 * arguments (NULL: none); check(hex) between the two (may be NULL); then the upload run again
 * to its end, OK. Returns its last JSON line (the caller deletes it). */
static cJSON *upload_across_agent_restart(const char *name, const char *file, const char *hex,
                                          long long bytes, const char *const *extra,
                                          void (*check)(const char *hex)) {
  char run[64];
  cli_use(&F.fab, "op");
  const char *args[] = {"image", "upload", SCRATCH, file, "--json", NULL};
  snprintf(run, sizeof run, "%s-1", name);
  pid_t pid = cli_spawn(run, args);
  bool caught = wait_part(hex, bytes, 60000);
  kill(pid, SIGKILL);
  assert_int_equal(cli_wait(pid, 5000), -1);
  assert_true(caught);
  if (check != NULL)
    check(hex);
  assert_true(fabric_stop_process(&F.agent.pid, SIGTERM) != -1);
  F.agent.extra = extra;
  fabric_start_agent(&F.fab, &F.agent);
  dfnet_client_t *c = fabric_connect(&F.fab, "op");
  assert_non_null(c);
  fabric_node_t n;
  assert_true(fabric_wait_node(c, SCRATCH, fabric_is_found, NULL, WAIT_MS, &n));
  dfnet_client_close(c);

  static char out[1 << 20];
  snprintf(run, sizeof run, "%s-2", name);
  pid = cli_spawn(run, args);
  assert_int_equal(cli_wait(pid, 120000), 0);
  read_output(run, "out", out, sizeof out);
  cJSON *end = json_line(out, -1);
  assert_string_equal(str(end, "status"), "OK");
  assert_true(num(end, "resumed_at") > 0);
  return end;
}

/* The .sha checkpoint of the upload of hex: its path. */
static void checkpoint_path(const char *hex, char *out, size_t cap) {
  cache_path(hex, true, out, cap);
  strcpy(strrchr(out, '.'), ".sha");
}

static void has_checkpoint(const char *hex) {
  char sha[500];
  checkpoint_path(hex, sha, sizeof sha);
  assert_true(file_size(sha) > 0);
}

static void has_no_checkpoint(const char *hex) {
  char sha[500];
  checkpoint_path(hex, sha, sizeof sha);
  assert_int_equal(file_size(sha), -1);
}

/* The agent restarted under a smaller bound (--artifact-cache-mb 150) with an upload cut
 * off: the resumed upload hashes the .part the agent finds, the least recently used
 * artifacts go to make room for it, and a file over the bound is refused. */
static void test_agent_restart_and_eviction(void **state) {
  (void)state;
  char file[400], hex[65], big[400], a_hex[65], a_file[400], done[500];
  random_file("f.img", IMAGE_SIZE, file, sizeof file);
  file_sha256(file, 0, hex);
  snprintf(a_file, sizeof a_file, "%s/a.img", F.fab.root);
  file_sha256(a_file, 0, a_hex); /* the first upload: the least recently used */
  /* no hash checkpoint yet at 4 MiB (one is saved each 32 MiB): the .part is hashed again */
  static const char *const bound[] = {"--artifact-cache-mb", "150", NULL};
  cJSON *end = upload_across_agent_restart("evict", file, hex, 4 << 20, bound, has_no_checkpoint);
  cJSON_Delete(end);
  assert_cached(hex, file);
  assert_int_equal(
      fabric_sh("grep -q \"resumes at offset .* (the .part's bytes hashed\" '%s'", F.agent.log), 0);
  cache_path(a_hex, false, done, sizeof done);
  assert_int_equal(file_size(done), -1); /* evicted */
  assert_int_equal(fabric_sh("test $(du -sm --apparent-size '%s' | cut -f1) -le 150", F.artifacts),
                   0);

  /* larger than the cache may hold: refused before a byte is sent */
  snprintf(big, sizeof big, "%s/big.img", F.fab.root);
  assert_int_equal(fabric_sh("truncate -s 151M '%s'", big), 0);
  assert_int_equal(cli_run(&R, &F.fab, "image", "upload", SCRATCH, big, NULL), 1);
  assert_non_null(strstr(R.err, "RESOURCE_EXHAUSTED"));
  assert_non_null(strstr(R.err, "--artifact-cache-mb"));
}

/* The agent restarted with an upload cut off past a hash checkpoint (saved each 32 MiB):
 * the upload is taken up from the checkpoint, the .part cut back to it, nothing hashed
 * again, and the artifact verifies. */
static void test_agent_restart_resumes_from_checkpoint(void **state) {
  (void)state;
  char file[400], hex[65], sha[500];
  random_file("g.img", 2 * IMAGE_SIZE, file, sizeof file);
  file_sha256(file, 0, hex);
  cJSON *end = upload_across_agent_restart("ckpt", file, hex, 40 << 20, NULL, has_checkpoint);
  double at = num(end, "resumed_at");
  assert_true(at >= (32 << 20) && (uint64_t)at % (32u << 20) == 0);
  cJSON_Delete(end);
  assert_cached(hex, file);
  checkpoint_path(hex, sha, sizeof sha);
  assert_int_equal(file_size(sha), -1); /* gone with the upload */
  assert_int_equal(fabric_sh("grep -q \"resumes at offset %.0f (from its hash checkpoint)\" '%s'",
                             at, F.agent.log),
                   0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_upload_then_already_held),
      cmocka_unit_test(test_resume_after_kill),
      cmocka_unit_test(test_upload_survives_manager_restart),
      cmocka_unit_test(test_write_to_block_device),
      cmocka_unit_test(test_write_too_large_stops_upload),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_agent_restart_resumes_from_checkpoint),
      cmocka_unit_test(test_agent_restart_and_eviction),
  };
  return cmocka_run_group_tests_name("cli_image", tests, setup, teardown);
}
