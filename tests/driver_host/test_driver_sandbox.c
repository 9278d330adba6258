/* Driver hosts confined (docs/architecture.md "Confinement"; issue 22 items 2 and 3): real
 * driver hosts spawned sandboxed through the supervisor, as dfnet-host spawns them.
 *
 * Checked: a confined driver host's /proc status (no_new_privs, a seccomp filter, no
 * effective capability, the driver user) and its limits, against an unsandboxed one; the
 * hostile test driver's attempts, one per driver host: each is refused (its start fails with
 * the errno) or kills its driver host with the system call named as the exit's reason,
 * while pci-config in another driver host keeps serving calls; the colocation rule (a later
 * driver's rights within the first's) and a malformed "rights".
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/landlock.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "dfnet/status.h"
#include "harness.h"

#define ECHO_NODE "dev.t.echo"
#define HOSTILE_NODE "dev.t.hostile"
#define PCI_NODE "dev.t.pci.00_05_0"
#define FIXTURE_PCI DFNET_FIXTURES_DIR "/sysfs-virtio-vm/devices/pci0000:00/"

/* ptrace is not trapped, RLIMIT_DATA not set under AddressSanitizer (host/driver_host) */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#if !defined(ASAN) && defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#endif
#ifndef ASAN
#define ASAN 0
#endif

static int setup(void **state) {
  signal(SIGPIPE, SIG_IGN);
  *state = h_new();
  return 0;
}

static int setup_unsandboxed(void **state) {
  *state = h_new_sandbox(false);
  return 0;
}

static int teardown(void **state) {
  h_free(*state); /* every driver host is stopped (SIGKILL after its grace) */
  return 0;
}

/* The line of /proc/<pid>/<file> that starts with `key`, its value (static buffer). */
static const char *proc_value(pid_t pid, const char *file, const char *key) {
  static char value[256];
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  value[0] = '\0';
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, strlen(key)) != 0)
      continue;
    const char *v = line + strlen(key);
    v += strspn(v, " \t:");
    snprintf(value, sizeof value, "%.*s", (int)strcspn(v, "\n"), v);
    break;
  }
  fclose(f);
  return value;
}

/* Spawn a driver host and start the echo test driver in it with `program`. */
static uint64_t start_echo(harness_t *h, const char *program) {
  uint64_t host = h_spawn(h);
  rec_t *r = h_final(h, h_start_send(h, host, ECHO_NODE, h_driver("echo"), NULL, program, 0));
  assert_non_null(r);
  if (r->code != DFNET_STATUS_OK)
    fail_msg("echo did not start: %s", r->message);
  return host;
}

static void test_status_sandboxed(void **state) {
  harness_t *h = *state;
  uint64_t host = start_echo(h, "{}");
  pid_t pid = dfnet_supervisor_pid(h->sup, host);
  assert_true(pid > 0);
  assert_string_equal(proc_value(pid, "status", "NoNewPrivs"), "1");
  assert_string_equal(proc_value(pid, "status", "Seccomp:"), "2");
  assert_string_equal(proc_value(pid, "status", "CapEff"), "0000000000000000");
  assert_string_equal(proc_value(pid, "status", "CapPrm"), "0000000000000000");
  assert_string_equal(proc_value(pid, "status", "CapBnd"), "0000000000000000");
  assert_true(strtoul(proc_value(pid, "status", "Uid"), NULL, 10) != 0);
  assert_int_equal(strtoul(proc_value(pid, "status", "Uid"), NULL, 10),
                   dfnet_supervisor_driver_uid(h->sup));
  assert_true(dfnet_supervisor_sandboxed(h->sup));
  /* the default limits */
  assert_non_null(strstr(proc_value(pid, "limits", "Max open files"), "1024"));
  h_close_clean(h, host);
}

/* Regression: a tree built under a directory only root may pass (a 0700 home, mktemp -d):
 * the driver user could not exec dfnet-driver-host by its path (EACCES, every start failed).
 * The supervisor execs it by a descriptor it opened first. */
static void test_driver_host_in_private_dir(void **state) {
  (void)state;
  char dir[] = "/tmp/dfnet-private-XXXXXX", exe[64], cmd[256];
  assert_non_null(mkdtemp(dir)); /* 0700, root's */
  snprintf(exe, sizeof exe, "%s/dfnet-driver-host", dir);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 0755 '%s'", DFNET_DRIVER_HOST_BUILD_PATH, exe,
           exe);
  assert_int_equal(system(cmd), 0);
  harness_t *h = h_new_at(exe);
  uint64_t host = h_spawn(h);
  rec_t *r = h_final(h, h_start_send(h, host, ECHO_NODE, h_driver("echo"), NULL, "{}", 0));
  bool ok = r != NULL && r->code == DFNET_STATUS_OK;
  pid_t pid = dfnet_supervisor_pid(h->sup, host);
  char seccomp[16] = "";
  if (ok && pid > 0)
    snprintf(seccomp, sizeof seccomp, "%s", proc_value(pid, "status", "Seccomp:"));
  if (ok)
    h_close_clean(h, host);
  h_free(h);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  if (!ok)
    fail_msg("echo did not start from a driver host in a 0700 directory: %s",
             r != NULL ? r->message : "no answer");
  assert_string_equal(seccomp, "2");
}

static void test_status_unsandboxed(void **state) {
  harness_t *h = *state;
  uint64_t host = start_echo(h, "{}");
  pid_t pid = dfnet_supervisor_pid(h->sup, host);
  assert_string_equal(proc_value(pid, "status", "Seccomp:"), "0");
  assert_string_equal(proc_value(pid, "status", "NoNewPrivs"), "0");
  assert_int_equal(strtoul(proc_value(pid, "status", "Uid"), NULL, 10), getuid());
  assert_false(dfnet_supervisor_sandboxed(h->sup));
  assert_int_equal(dfnet_supervisor_driver_uid(h->sup), getuid());
  h_close_clean(h, host);
}

static void test_limits(void **state) {
  harness_t *h = *state;
  uint64_t host = start_echo(h, "{\"limits\": {\"memory_mb\": 64, \"open_files\": 128}}");
  pid_t pid = dfnet_supervisor_pid(h->sup, host);
  const char *files = proc_value(pid, "limits", "Max open files");
  assert_int_equal(strtoul(files, NULL, 10), 128);
  if (!ASAN) /* RLIMIT_DATA is left alone under AddressSanitizer (sandbox.c) */
    assert_int_equal(strtoull(proc_value(pid, "limits", "Max data size"), NULL, 10),
                     64ull * 1024 * 1024);
  /* still serving */
  rec_t *r = h_final(h, h_call(h, host, ECHO_NODE, "/dfnet.test.Echo/Echo", "hi", 2, 5000, 0));
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  h_close_clean(h, host);
}

/* ---- the hostile driver, with pci-config serving in another driver host ----------------- */

/* Start pci-config on the fixture's 00:05.0 in its own driver host, handed "sysfs" and
 * "config" as dfnet-host hands them. */
static uint64_t start_bystander(harness_t *h) {
  char so[1024];
  snprintf(so, sizeof so, "%s/drivers/pci-config/driver/pci-config.so", getenv("DFNET_BUILD_DIR"));
  int fds[2] = {open(FIXTURE_PCI "0000:00:05.0", O_PATH | O_DIRECTORY | O_CLOEXEC),
                open(FIXTURE_PCI "0000:00:05.0/config", O_RDONLY | O_CLOEXEC)};
  assert_true(fds[0] >= 0 && fds[1] >= 0);
  const char *names[] = {"sysfs", "config"};
  const char *props[] = {"dfnet.pci.SYSFS_PATH", FIXTURE_PCI "0000:00:05.0", NULL};
  uint64_t host = h_spawn(h);
  rec_t *r =
      h_final(h, h_start_send_props_fds(h, host, PCI_NODE, so, props, "{}", names, 2, fds, 2));
  close(fds[0]);
  close(fds[1]);
  assert_non_null(r);
  if (r->code != DFNET_STATUS_OK)
    fail_msg("pci-config did not start: %s", r->message);
  return host;
}

/* A Read of the bystander's first 4 configuration bytes (ReadRequest{offset 0, length 4}):
 * the fixture's 1af4:1044. */
static void bystander_serves(harness_t *h, uint64_t host) {
  static const uint8_t req[] = {0x08, 0x00, 0x10, 0x04};
  rec_t *r =
      h_final(h, h_call(h, host, PCI_NODE, "/dfnet.hw.pci.Config/Read", req, sizeof req, 5000, 0));
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  assert_true(r->bulk_len >= 6);
  static const uint8_t ids[] = {0xf4, 0x1a, 0x44, 0x10};
  assert_memory_equal(r->bulk + 2, ids, 4); /* field 1, 4 bytes */
}

typedef struct attempt {
  const char *what;
  const char *path;    /* config.path (NULL: another PCI function's config) */
  const char *refused; /* the start's message has this; NULL: the driver host is killed */
  const char *killed;  /* ... with this exit reason */
} attempt_t;

/* /dev/kmsg is readable by every user here: refused, it is Landlock that refuses it. A
 * machine without /dev/mem (a microVM) says so instead (the lookup fails before Landlock). */
static const attempt_t k_attempts[] = {
    {"shadow", NULL, "/etc/shadow: Permission denied (errno 13)", NULL},
    {"sysfs", NULL, "0000:00:03.0/config: Permission denied (errno 13)", NULL},
    {"devmem", NULL, "/dev/mem: Permission denied (errno 13)", NULL},
    {"device", "/dev/kmsg", "/dev/kmsg: Permission denied (errno 13)", NULL},
    {"inet", NULL, "socket AF_INET: Permission denied (errno 13)", NULL},
    {"package", NULL, "hostile-was-here: Permission denied (errno 13)", NULL},
    {"exec", NULL, NULL, "killed by seccomp: execve"},
    {"ptrace", NULL, ASAN ? "PTRACE_ATTACH: Operation not permitted (errno 1)" : NULL,
     "killed by seccomp: ptrace"},
};

/* One attempt in a driver host of its own; the sysfs it is handed is 00:05.0's. */
static void attempt(harness_t *h, attempt_t a, int port) {
  if (strcmp(a.what, "devmem") == 0 && access("/dev/mem", F_OK) != 0)
    a.refused = "/dev/mem: No such file or directory (errno 2)";
  if (a.path != NULL && access(a.path, F_OK) != 0) {
    fprintf(stderr, "attempt %s skipped: no %s here\n", a.what, a.path);
    return;
  }
  char program[512];
  snprintf(program, sizeof program,
           "{\"config\": {\"try\": \"%s\", \"path\": \"%s\", \"port\": %d}}", a.what,
           a.path != NULL ? a.path : FIXTURE_PCI "0000:00:03.0/config", port);
  int sysfs = open(FIXTURE_PCI "0000:00:05.0", O_PATH | O_DIRECTORY | O_CLOEXEC);
  assert_true(sysfs >= 0);
  const char *names[] = {"sysfs"};
  uint64_t host = h_spawn(h);
  rec_t *r = h_final(h, h_start_send_fds(h, host, HOSTILE_NODE, h_driver("hostile"), program, names,
                                         1, &sysfs, 1));
  close(sysfs);
  assert_non_null(r);
  if (a.refused != NULL) {
    if (r->code != DFNET_STATUS_FAILED_PRECONDITION || strstr(r->message, a.refused) == NULL)
      fail_msg("%s: %s \"%s\", want FAILED_PRECONDITION \"...%s\"", a.what,
               dfnet_status_str((dfnet_status_t)r->code), r->message, a.refused);
    h_close_clean(h, host);
    return;
  }
  /* killed: the start is answered UNAVAILABLE, and the exit's reason names the call */
  assert_int_equal(r->code, DFNET_STATUS_UNAVAILABLE);
  if (strstr(r->message, a.killed) == NULL)
    fail_msg("%s: start answered \"%s\", want \"...%s\"", a.what, r->message, a.killed);
  exit_rec_t *x = h_wait_exit(h, host);
  assert_non_null(x);
  assert_string_equal(x->reason, a.killed);
  assert_int_equal(x->signal, SIGSYS);
  assert_non_null(strstr(x->nodes, HOSTILE_NODE));
}

static void test_hostile(void **state) {
  harness_t *h = *state;
  /* a listener for the "inet" attempt to reach, were it let through */
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof at;
  assert_int_equal(bind(listener, (struct sockaddr *)&at, sizeof at), 0);
  assert_int_equal(listen(listener, 4), 0);
  assert_int_equal(getsockname(listener, (struct sockaddr *)&at, &len), 0);
  uint64_t pci = start_bystander(h);
  bystander_serves(h, pci);
  for (size_t i = 0; i < sizeof k_attempts / sizeof k_attempts[0]; i++) {
    attempt(h, k_attempts[i], ntohs(at.sin_port));
    bystander_serves(h, pci);
  }
  close(listener);
  h_close_clean(h, pci);
}

/* Unconfined, the same driver does what it tries: the refusals above are the sandbox's. */
static void test_hostile_unsandboxed(void **state) {
  harness_t *h = *state;
  int sysfs = open(FIXTURE_PCI "0000:00:05.0", O_PATH | O_DIRECTORY | O_CLOEXEC);
  const char *names[] = {"sysfs"};
  uint64_t host = h_spawn(h);
  char program[512];
  snprintf(program, sizeof program, "{\"config\": {\"try\": \"sysfs\", \"path\": \"%s\"}}",
           FIXTURE_PCI "0000:00:03.0/config");
  rec_t *r = h_final(h, h_start_send_fds(h, host, HOSTILE_NODE, h_driver("hostile"), program, names,
                                         1, &sysfs, 1));
  close(sysfs);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  h_close_clean(h, host);
}

/* ---- colocation ------------------------------------------------------------------------- */

static int start_code(harness_t *h, uint64_t host, const char *node, const char *program,
                      char *message, size_t cap) {
  rec_t *r = h_final(h, h_start_send(h, host, node, h_driver("echo"), NULL, program, 0));
  assert_non_null(r);
  snprintf(message, cap, "%s", r->message);
  return r->code;
}

static void test_colocation(void **state) {
  harness_t *h = *state;
  uint64_t host = start_echo(h, "{\"rights\": [\"inet\"]}");
  char msg[512];
  /* more rights than the first driver's: refused, the driver host carries on */
  assert_int_equal(
      start_code(h, host, "dev.t.two", "{\"rights\": [\"inet\", \"exec\"]}", msg, sizeof msg),
      DFNET_STATUS_INTERNAL);
  assert_non_null(strstr(msg, "confined for the rights of its first driver (inet)"));
  assert_non_null(strstr(msg, "needs inet,exec"));
  /* within them: started, not confined again */
  assert_int_equal(start_code(h, host, "dev.t.three", "{\"rights\": [\"inet\"]}", msg, sizeof msg),
                   DFNET_STATUS_OK);
  assert_int_equal(start_code(h, host, "dev.t.four", "{}", msg, sizeof msg), DFNET_STATUS_OK);
  /* a malformed "rights" */
  assert_int_equal(start_code(h, host, "dev.t.five", "{\"rights\": [\"inte\"]}", msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(
      strstr(msg, "program.rights[0]: unknown right \"inte\" (did you mean \"inet\"?)"));
  rec_t *r = h_final(h, h_call(h, host, "dev.t.three", "/dfnet.test.Echo/Echo", "x", 1, 5000, 0));
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  h_close_clean(h, host);
}

/* A malformed "rights" in the first start: refused before anything is confined; the next
 * start confines the driver host. */
static void test_bad_rights_first(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  char msg[512];
  assert_int_equal(
      start_code(h, host, ECHO_NODE, "{\"limits\": {\"open_files\": 8}}", msg, sizeof msg),
      DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "program.limits.open_files: 8 is out of range (16..65536)"));
  pid_t pid = dfnet_supervisor_pid(h->sup, host);
  assert_string_equal(proc_value(pid, "status", "Seccomp:"), "0");
  assert_int_equal(start_code(h, host, ECHO_NODE, "{}", msg, sizeof msg), DFNET_STATUS_OK);
  assert_string_equal(proc_value(pid, "status", "Seccomp:"), "2");
  h_close_clean(h, host);
}

/* ---- a confinement that cannot be applied ----------------------------------------------- */

/* Put this process (and so every driver host it spawns) 16 Landlock domains deep, the most
 * the kernel nests: each handles only EXECUTE and allows it everywhere, so nothing changes
 * but that a driver host can stack no domain of its own. For good: the last test. */
static bool fill_landlock_layers(void) {
  for (int i = 0; i < 16; i++) {
    struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    int root = open("/", O_PATH | O_CLOEXEC);
    struct landlock_path_beneath_attr rule = {.allowed_access = LANDLOCK_ACCESS_FS_EXECUTE,
                                              .parent_fd = root};
    bool ok = rs >= 0 && root >= 0 &&
              syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == 0 &&
              syscall(SYS_landlock_restrict_self, rs, 0) == 0;
    if (rs >= 0)
      close(rs);
    if (root >= 0)
      close(root);
    if (!ok)
      return false;
  }
  return true;
}

/* The driver host cannot confine itself: the start is refused FAILED_PRECONDITION with the
 * cause, which is also the exit's reason; the driver host exits 1. */
static void test_confinement_fails(void **state) {
  harness_t *h = *state;
  assert_true(fill_landlock_layers());
  uint64_t host = h_spawn(h);
  char msg[512];
  assert_int_equal(start_code(h, host, ECHO_NODE, "{}", msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  const char *want =
      "cannot confine the driver host: Landlock restrict_self: Argument list "
      "too long (dfnet-host --no-sandbox runs drivers unconfined)";
  assert_string_equal(msg, want);
  exit_rec_t *x = h_wait_exit(h, host);
  assert_non_null(x);
  assert_int_equal(x->exit_code, 1);
  assert_string_equal(x->reason, want);
}

/* ---- the supervisor's sandbox configuration -------------------------------------------- */

static void no_envelope(void *arg, uint64_t host, const dfnet_envelope_t *env) {
  (void)arg, (void)host, (void)env;
}
static void no_exit(void *arg, const dfnet_driver_host_exit_t *x) { (void)arg, (void)x; }

/* dfnet_supervisor_new with these read-only directories: its status. */
static dfnet_status_t new_with(const char *const *read_only) {
  dfnet_supervisor_config_t cfg = {.driver_host_path = DFNET_DRIVER_HOST_BUILD_PATH,
                                   .sandbox = {.enabled = true, .read_only = read_only},
                                   .on_envelope = no_envelope,
                                   .on_exit = no_exit};
  dfnet_supervisor_t *sup = NULL;
  dfnet_status_t st = dfnet_supervisor_new(&cfg, &sup);
  assert_true((st == DFNET_STATUS_OK) == (sup != NULL));
  dfnet_supervisor_free(sup);
  return st;
}

static void test_read_only_config(void **state) {
  (void)state;
  const char *const ok[] = {"/usr/lib/", "/tmp", NULL};
  assert_int_equal(new_with(ok), DFNET_STATUS_OK);
  assert_int_equal(new_with(NULL), DFNET_STATUS_OK);
  const char *const relative[] = {"usr/lib", NULL};
  assert_int_equal(new_with(relative), DFNET_STATUS_INVALID_ARGUMENT);
  const char *const missing[] = {"/nonexistent/cache", NULL};
  assert_int_equal(new_with(missing), DFNET_STATUS_NOT_FOUND);
  const char *const file[] = {"/etc/passwd", NULL};
  assert_int_equal(new_with(file), DFNET_STATUS_NOT_FOUND);
  const char *const nine[] = {"/", "/", "/", "/", "/", "/", "/", "/", "/", NULL};
  assert_int_equal(new_with(nine), DFNET_STATUS_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_status_sandboxed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_unsandboxed, setup_unsandboxed, teardown),
      cmocka_unit_test(test_driver_host_in_private_dir),
      cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_unsandboxed, setup_unsandboxed, teardown),
      cmocka_unit_test_setup_teardown(test_colocation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_rights_first, setup, teardown),
      cmocka_unit_test(test_read_only_config),
      cmocka_unit_test_setup_teardown(test_confinement_fails, setup, teardown), /* the last */
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
