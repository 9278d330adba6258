/* The `dfnet` command line run as a real process: against the scripted manager peer
 * (calls, rng, every listing's text and JSON) and against the real dfnet-manager with a
 * scripted host session publishing nodes (testhost.h). JSON is parsed with cJSON; exit
 * codes, bad usage, environment defaults and the config file are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "lib/pki.h"
#include "scripted_server.h"
#include "testhost/testhost.h"

static char dir[256];
static char cli[512];
static scripted_server_t *server;
static uint16_t port;

typedef struct run {
  int status; /* exit code, or -1 when killed */
  char out[8 << 20];
  size_t out_len;
  char err[16384];
} run_t;

static run_t R; /* 8 MiB: static storage */

/* Run `dfnet args...` (NULL-terminated) with the current environment; stdin from
 * /dev/null or `input`. Fills R. */
static int run_input(const char *input, const char *first, ...) {
  const char *argv[64];
  int n = 0;
  argv[n++] = cli;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL && n < 63; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  int out[2], err[2], in[2];
  if (pipe(out) || pipe(err) || pipe(in))
    return -1;
  pid_t pid = test_child_fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    close(in[1]);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(in[0]);
  if (input != NULL && write(in[1], input, strlen(input)) < 0)
    perror("write");
  close(in[1]);
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
    fprintf(stderr, "dfnet %s -> %d\nstdout: %s\nstderr: %s\n", first, R.status, R.out, R.err);
  return R.status;
}

#define run(...) run_input(NULL, __VA_ARGS__, NULL)

static void use_scripted(const char *role, const char *name) {
  char v[512];
  unsetenv("DFNET_CONFIG");
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
  snprintf(dir, sizeof dir, "/tmp/dfnet-test-cli-%d", (int)getpid());
  if (ss_make_certs(dir) != 0)
    return -1;
  server = ss_start(dir, &port);
  /* no stray config file from the user running the tests */
  char xdg[300];
  snprintf(xdg, sizeof xdg, "%s/xdg", dir);
  setenv("XDG_CONFIG_HOME", xdg, 1);
  unsetenv("DFNET_CONFIG");
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

/* ---- against the scripted peer ---- */

static void test_usage_errors(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("frobnicate"), 2);
  assert_non_null(strstr(R.err, "dfnet: INVALID_ARGUMENT: unknown command 'frobnicate'"));
  assert_int_equal(run("node", "list", "--bogus"), 2);
  assert_non_null(strstr(R.err, "unknown option '--bogus'"));
  assert_int_equal(run("node", "list", "a", "b"), 2);
  assert_int_equal(run("node", "show"), 2);
  assert_int_equal(run("node"), 2);
  assert_int_equal(run("rng", "read", "class/rng/000", "0"), 2);
  assert_int_equal(run("rng", "read", "class/rng/000", "65537"), 2);
  assert_int_equal(run("rng", "read", "class/rng/000", "12x"), 2);
  assert_int_equal(run("call", "t", "/a.B/C", "--timeout", "-5"), 2);
  assert_int_equal(run("call", "t", "/a.B/C", "--data-hex", "abc"), 2);
  assert_int_equal(run("watch", "--count"), 2);
  assert_int_equal(run("--help"), 0);
  assert_non_null(strstr(R.out, "node list"));
  assert_int_equal(run("node", "list", "--help"), 0);
  assert_non_null(strstr(R.out, "--exact"));
  assert_int_equal(run(NULL), 2);
}

static void test_settings(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  unsetenv("DFNET_MANAGER");
  assert_int_equal(run("node", "list"), 2);
  assert_non_null(strstr(R.err, "--manager"));
  /* the command line wins */
  char url[64];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  assert_int_equal(run("--manager", url, "node", "list"), 0);
  assert_int_equal(run("node", "list", "--manager", url), 0);
  /* a config file with relative paths */
  char path[600];
  snprintf(path, sizeof path, "%s/viewer/config", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "# dfnet settings\n\nmanager = %s\ncert = carol.crt\n  key=carol.key  \nca = ca.crt\n",
          url);
  fclose(f);
  unsetenv("DFNET_CERT");
  unsetenv("DFNET_KEY");
  unsetenv("DFNET_CA");
  setenv("DFNET_CONFIG", path, 1);
  assert_int_equal(run("node", "list"), 0);
  assert_non_null(strstr(R.out, "dev.lab-a.pci.00_05_0\n"));
  /* strict: unknown keys, repeats and junk are errors naming the line */
  f = fopen(path, "a");
  fprintf(f, "colour = blue\n");
  fclose(f);
  assert_int_equal(run("node", "list"), 2);
  assert_non_null(strstr(R.err, ":7: unknown key 'colour'"));
  f = fopen(path, "w");
  fprintf(f, "manager = %s\nmanager = %s\n", url, url);
  fclose(f);
  assert_int_equal(run("node", "list"), 2);
  assert_non_null(strstr(R.err, "given twice"));
  setenv("DFNET_CONFIG", "/nonexistent/dfnet.conf", 1);
  assert_int_equal(run("node", "list"), 2);
  unsetenv("DFNET_CONFIG");
  /* the default file under XDG_CONFIG_HOME */
  char xdg[400];
  snprintf(xdg, sizeof xdg, "%s/xdg/dfnet", dir);
  char cmd[500];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", xdg);
  assert_int_equal(system(cmd), 0);
  snprintf(path, sizeof path, "%s/config", xdg);
  f = fopen(path, "w");
  fprintf(f,
          "manager = %s\ncert = %s/viewer/carol.crt\nkey = %s/viewer/carol.key\nca = "
          "%s/viewer/ca.crt\n",
          url, dir, dir, dir);
  fclose(f);
  assert_int_equal(run("host", "list"), 0);
  unlink(path);
  /* nothing reachable: exit 1 with the status name */
  use_scripted("viewer", "carol");
  assert_int_equal(
      run("--manager", "wss://127.0.0.1:1", "--connect-timeout", "300", "host", "list"), 1);
  assert_non_null(strstr(R.err, "dfnet: UNAVAILABLE:"));
}

static void test_node_list_text(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("node", "list"), 0);
  assert_string_equal(R.out,
                      "dev.lab-a\ndev.lab-a.pci\ndev.lab-a.pci.00_05_0\ndev.lab-a.pci.00_06_0\n");
  assert_int_equal(run("node", "list", "nothing-like-this"), 0);
  assert_string_equal(R.out, "No devices found.\n");
  assert_int_equal(run("node", "list", "-v", "00_05_0"), 0);
  const char *want =
      "Name     : 00_05_0\n"
      "Moniker  : dev.lab-a.pci.00_05_0\n"
      "Driver   : dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"
      "State    : bound\n"
      "Host     : lab-a (driver host 7, pid 4242)\n"
      "Class    : class/rng/000\n"
      "4 Properties\n"
      "[ 1/  4] : Key fuchsia.BIND_PCI_VID           Value 0x001af4\n"
      "[ 2/  4] : Key \"fuchsia.hardware.pci.Device\"  Value true\n"
      "[ 3/  4] : Key \"vendor.name\"                  Value \"Red Hat\"\n"
      "[ 4/  4] : Key \"fuchsia.hardware.pci.Service\" Value "
      "Enum(fuchsia.hardware.pci.Service.ZirconTransport)\n"
      "1 Offers\n"
      "Service: fuchsia.hardware.pci.Service\n"
      "\n";
  assert_string_equal(R.out, want);
  assert_int_equal(run("node", "show", "dev.lab-a.pci.00_06_0"), 0);
  assert_non_null(strstr(R.out, "State    : unbound\n"));
  assert_non_null(strstr(R.out, "Reason   : NOT_FOUND: no driver matched\n"));
  assert_int_equal(run("node", "show", "dev.lab-a.pci.00_07_0"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND:"));
}

static void test_node_list_json(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("node", "list", "--json"), 0);
  cJSON *doc = parse_out();
  assert_non_null(doc);
  cJSON *nodes = cJSON_GetObjectItem(doc, "nodes");
  assert_int_equal(cJSON_GetArraySize(nodes), 4);
  cJSON *n = cJSON_GetArrayItem(nodes, 2);
  assert_string_equal(cJSON_GetObjectItem(n, "moniker")->valuestring, "dev.lab-a.pci.00_05_0");
  assert_string_equal(cJSON_GetObjectItem(n, "state")->valuestring, "bound");
  assert_string_equal(cJSON_GetObjectItem(n, "class_path")->valuestring, "class/rng/000");
  cJSON *props = cJSON_GetObjectItem(n, "properties");
  assert_int_equal(cJSON_GetArraySize(props), 4);
  cJSON *p0 = cJSON_GetArrayItem(props, 0);
  assert_int_equal(cJSON_GetObjectItem(p0, "key")->valueint, 0x100);
  assert_string_equal(cJSON_GetObjectItem(p0, "key_name")->valuestring, "fuchsia.BIND_PCI_VID");
  assert_string_equal(cJSON_GetObjectItem(p0, "type")->valuestring, "uint");
  assert_int_equal(cJSON_GetObjectItem(p0, "value")->valueint, 0x1af4);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(props, 1), "value")));
  cJSON *n3 = cJSON_GetArrayItem(nodes, 3);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(n3, "driver")));
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(n3, "unbound_reason"), "code")->valuestring,
      "NOT_FOUND");
  cJSON_Delete(doc);
  /* many nodes */
  assert_int_equal(run("node", "list", "--json", "many"), 0);
  doc = parse_out();
  assert_non_null(doc);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "nodes")), 5000);
  cJSON_Delete(doc);
}

static void test_dump_and_others(void **state) {
  (void)state;
  use_scripted("admin", "alice");
  assert_int_equal(run("node", "dump"), 0);
  assert_string_equal(R.out,
                      "[lab-a]\n  [pci]\n    [00_05_0] pid=4242 "
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json\n    [00_06_0]\n");
  assert_int_equal(run("node", "dump", "--json"), 0);
  cJSON *dump = parse_out();
  cJSON *d2 = cJSON_GetArrayItem(cJSON_GetObjectItem(dump, "nodes"), 2);
  assert_int_equal(cJSON_GetObjectItem(d2, "driver_host_pid")->valueint, 4242);
  assert_int_equal(cJSON_GetObjectItem(d2, "driver_host_id")->valueint, 7);
  cJSON_Delete(dump);
  assert_int_equal(run("node", "dump", "--graph"), 0);
  assert_true(strncmp(R.out, "digraph {\n", 10) == 0);
  assert_non_null(strstr(R.out, "  \"dev.lab-a.pci\" -> \"dev.lab-a.pci.00_05_0\"\n"));
  assert_non_null(strstr(R.out, "  \"dev.lab-a.pci.00_05_0\" [label=\"00_05_0\"]\n"));
  assert_int_equal(run("host", "list", "--json"), 0);
  cJSON *doc = parse_out();
  cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "hosts"), 0);
  assert_string_equal(cJSON_GetObjectItem(h, "name")->valuestring, "lab-a");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "labels"), "rack")->valuestring,
                      "r0");
  cJSON_Delete(doc);
  assert_int_equal(run("host", "list"), 0);
  assert_non_null(strstr(R.out, "lab-b"));
  assert_int_equal(run("driver", "list"), 0);
  assert_string_equal(R.out,
                      "virtio-rng          : dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"
                      "pci-config          : dfnet-boot:///pci-config#meta/pci-config.json\n");
  assert_int_equal(run("driver", "list", "-v", "--loaded"), 0);
  assert_non_null(strstr(R.out, "Name      : virtio-rng\n"));
  assert_non_null(strstr(R.out, "Device Categories: [misc::rng]\n"));
  assert_non_null(strstr(R.out, "Bind rules bytecode:"));
  assert_null(strstr(R.out, "pci-config"));
  assert_int_equal(run("driver", "list", "--json", "-v"), 0);
  doc = parse_out();
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "drivers")), 2);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "drivers"), 0),
                          "bind_bytecode_hex")
          ->valuestring,
      "42494e4402000000");
  cJSON_Delete(doc);
  assert_int_equal(run("driver", "restart", "dfnet-boot:///virtio-rng#meta/virtio-rng.json"), 0);
  assert_string_equal(R.out,
                      "Restarting driver hosts containing "
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"
                      "Restarted 2 driver host(s).\n"
                      "dev.lab-a.pci.00_05_0: running "
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json\n");
  assert_int_equal(run("driver", "disable", "missing"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND: no driver with that URL"));
  assert_int_equal(run("composite", "list", "-v"), 0);
  assert_non_null(strstr(R.out, "Parent 0  : i2c (Primary)\n   Device : dev.lab-a.i2c\n"));
  assert_non_null(strstr(R.out, "Parent 1  : gpio\n   Device : Unbound\n"));
  assert_int_equal(run("composite", "list", "--json"), 0);
  doc = parse_out();
  assert_non_null(doc);
  cJSON_Delete(doc);
  assert_int_equal(run("bind", "why", "dev.lab-a.pci.00_06_0"), 0);
  assert_non_null(strstr(R.out, "Result      : NO_MATCH\n"));
  assert_non_null(strstr(R.out, "Instruction : [18] fuchsia.BIND_PCI_DID == 0x1044\n"));
  assert_int_equal(run("bind", "why", "--json", "dev.lab-a.pci.00_06_0"), 0);
  doc = parse_out();
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "traces"), 0), "result")
          ->valuestring,
      "NO_MATCH");
  cJSON_Delete(doc);
  assert_int_equal(run("bind", "why", "dev.none"), 1);
  /* watch: three events, one JSON object per line */
  assert_int_equal(run("watch", "-n", "3", "--json", "--timeout", "10000"), 0);
  char *line = strtok(R.out, "\n");
  int lines = 0;
  while (line != NULL) {
    cJSON *ev = cJSON_Parse(line);
    assert_non_null(ev);
    assert_non_null(cJSON_GetObjectItem(ev, "kind"));
    cJSON_Delete(ev);
    lines++;
    line = strtok(NULL, "\n");
  }
  assert_int_equal(lines, 3);
  assert_int_equal(run("watch", "-n", "2"), 0);
  assert_non_null(strstr(R.out, "NODE_ADDED"));
}

static void test_call_and_rng(void **state) {
  (void)state;
  use_scripted("operator", "bob");
  assert_int_equal(
      run("call", "dev.x", "/test.Echo/Unary", "--data-hex", "00ff10", "--timeout", "5000"), 0);
  assert_string_equal(R.out, "00ff10\n");
  assert_int_equal(run("call", "dev.x", "/test.Echo/Unary", "--data-hex", "414243", "--raw"), 0);
  assert_string_equal(R.out, "ABC");
  char file[400];
  snprintf(file, sizeof file, "%s/req.bin", dir);
  FILE *f = fopen(file, "w");
  fputs("hello", f);
  fclose(f);
  assert_int_equal(run("call", "dev.x", "/test.Echo/Unary", "--data-file", file, "--json"), 0);
  cJSON *doc = parse_out();
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "messages"), 0)->valuestring,
                      "68656c6c6f");
  cJSON_Delete(doc);
  /* streaming: one line per message */
  assert_int_equal(
      run("call", "dev.x", "/test.Echo/Stream", "--data-hex", "0500000002000000", "--credit", "2"),
      0);
  assert_string_equal(R.out, "0000\n0101\n0202\n0303\n0404\n");
  assert_int_equal(run("call", "dev.x", "/test.Echo/Fail"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND: no node 'x'"));
  assert_int_equal(run("call", "dev.x", "/test.Echo/Block", "--timeout", "200"), 1);
  assert_non_null(strstr(R.err, "dfnet: DEADLINE_EXCEEDED:"));
  assert_int_equal(run("rng", "read", "class/rng/000", "8", "--hex"), 0);
  assert_string_equal(R.out, "0001020304050607\n");
  assert_int_equal(run("rng", "read", "class/rng/000", "4"), 0); /* not a tty: raw */
  assert_int_equal(R.out_len, 4);
  assert_memory_equal(R.out, "\x00\x01\x02\x03", 4);
  snprintf(file, sizeof file, "%s/rng.bin", dir);
  assert_int_equal(run("rng", "read", "class/rng/000", "300", "--out", file), 0);
  struct stat sb;
  assert_int_equal(stat(file, &sb), 0);
  assert_int_equal(sb.st_size, 300);
  assert_int_equal(run("rng", "read", "class/rng/000", "3", "--json"), 0);
  doc = parse_out();
  assert_string_equal(cJSON_GetObjectItem(doc, "hex")->valuestring, "000102");
  cJSON_Delete(doc);
  /* role checks surface with their status */
  use_scripted("viewer", "carol");
  assert_int_equal(run("rng", "read", "class/rng/000", "8", "--hex"), 1);
  assert_non_null(strstr(R.err, "dfnet: PERMISSION_DENIED: Call needs role operator"));
  assert_int_equal(run("driver", "restart", "x"), 1);
  assert_non_null(strstr(R.err, "PERMISSION_DENIED"));
}

/* ---- driver lifecycle (issue 19), against the scripted peer ---- */

/* node show / node list --json / node dump of a starting, a suspended and a test node; the
 * driver index's autobind and start timeout. */
static void test_lifecycle_listings(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("node", "show", "dev.lab-a.pci.00_08_0"), 0);
  assert_non_null(strstr(R.out, "State    : starting\n"));
  assert_int_equal(run("node", "show", "dev.lab-a.pci.00_09_0"), 0);
  assert_non_null(strstr(R.out, "State    : bound (suspended)\n"));
  assert_non_null(strstr(R.out, "Host     : lab-a (driver host 7, pid 4343)\n"));
  assert_int_equal(run("node", "show", "dev.lab-a.pci.t0"), 0);
  assert_non_null(strstr(R.out, "State    : unbound (test node)\n"));
  assert_non_null(strstr(
      R.out,
      "Reason   : OK: test node: would bind dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"));
  const struct {
    const char *moniker, *state;
    int pid;
    bool suspended, test;
  } want[] = {{"dev.lab-a.pci.00_08_0", "starting", 4242, false, false},
              {"dev.lab-a.pci.00_09_0", "bound", 4343, true, false},
              {"dev.lab-a.pci.t0", "unbound", 0, false, true}};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(run("node", "show", "--json", want[i].moniker), 0);
    cJSON *doc = parse_out();
    cJSON *n = cJSON_GetObjectItem(doc, "node");
    assert_string_equal(cJSON_GetObjectItem(n, "state")->valuestring, want[i].state);
    assert_int_equal(cJSON_GetObjectItem(n, "driver_host_pid")->valueint, want[i].pid);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(n, "suspended")), want[i].suspended);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(n, "test")), want[i].test);
    cJSON_Delete(doc);
  }
  assert_int_equal(run("driver", "list", "-v"), 0);
  assert_non_null(strstr(R.out, "Autobind  : enabled\nStart Timeout: 2000 ms\n"));
  /* rights and limits (docs/architecture.md "Confinement") */
  assert_non_null(strstr(R.out,
                         "Start Timeout: 2000 ms\n"
                         "Rights    : none\n"
                         "Limits    : memory 512 MiB, 1024 open files\n"));
  assert_non_null(strstr(R.out,
                         "Rights    : inet, exec\n"
                         "Limits    : memory 64 MiB, 256 open files\n"));
  assert_non_null(strstr(R.out,
                         "Autobind  : disabled (binds on `dfnet node bind` only)\n"
                         "Start Timeout: 30000 ms (default)\n"));
  assert_int_equal(run("driver", "list", "--json"), 0);
  cJSON *doc = parse_out();
  cJSON *d1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "drivers"), 1);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d1, "disable_autobind")));
  assert_int_equal(cJSON_GetObjectItem(d1, "start_timeout_ms")->valueint, 0);
  cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "drivers"), 0);
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(d0, "disable_autobind")));
  assert_int_equal(cJSON_GetObjectItem(d0, "start_timeout_ms")->valueint, 2000);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d0, "rights")), 0);
  cJSON *lim = cJSON_GetObjectItem(d1, "limits");
  assert_int_equal(cJSON_GetObjectItem(lim, "memory_mb")->valueint, 64);
  assert_int_equal(cJSON_GetObjectItem(lim, "open_files")->valueint, 256);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(d1, "rights"), 1)->valuestring,
                      "exec");
  cJSON_Delete(doc);
}

/* driver host list: per board, sorted, RSS for people, `?` for an offline board. */
static void test_driver_host_list(void **state) {
  (void)state;
  use_scripted("viewer", "carol");
  assert_int_equal(run("driver", "host", "list"), 0);
  assert_string_equal(R.out,
                      "[lab-a]\n"
                      "  Driver Host 2: pid 4100, RSS 500.0 KiB, uid 998, sandboxed\n"
                      "    Rights : inet\n"
                      "    Driver : dfnet-boot:///pci-config#meta/pci-config.json\n"
                      "    Node   : dev.lab-a.pci.00_06_0\n"
                      "  Driver Host 7: pid 4242, RSS 2.1 MiB, uid 998, sandboxed\n"
                      "    Rights : none\n"
                      "    Driver : dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"
                      "    Node   : dev.lab-a.pci.00_05_0\n"
                      "\n"
                      "[lab-b]\n"
                      "  Driver Host 1: pid ?, RSS ?\n"
                      "    Driver : dfnet-boot:///pci-config#meta/pci-config.json\n"
                      "    Node   : dev.lab-b.pci.00_01_0\n");
  assert_int_equal(run("driver", "host", "list", "lab-a", "--json"), 0);
  cJSON *doc = parse_out();
  cJSON *hosts = cJSON_GetObjectItem(doc, "driver_hosts");
  assert_int_equal(cJSON_GetArraySize(hosts), 2);
  cJSON *h = cJSON_GetArrayItem(hosts, 1);
  assert_string_equal(cJSON_GetObjectItem(h, "host")->valuestring, "lab-a");
  assert_int_equal(cJSON_GetObjectItem(h, "id")->valueint, 7);
  assert_int_equal(cJSON_GetObjectItem(h, "pid")->valueint, 4242);
  assert_int_equal(cJSON_GetObjectItem(h, "rss_bytes")->valueint, 2202010);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(h, "drivers"), 0)->valuestring,
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(h, "nodes"), 0)->valuestring,
                      "dev.lab-a.pci.00_05_0");
  assert_int_equal(cJSON_GetObjectItem(h, "uid")->valueint, 998);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(h, "sandboxed")));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h, "rights")), 0);
  h = cJSON_GetArrayItem(hosts, 0);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(h, "rights"), 0)->valuestring, "inet");
  cJSON_Delete(doc);
  /* an offline board's driver hosts: their confinement is not known */
  assert_int_equal(run("driver", "host", "list", "lab-b", "--json"), 0);
  doc = parse_out();
  h = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "driver_hosts"), 0);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(h, "uid")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(h, "sandboxed")));
  cJSON_Delete(doc);
  assert_int_equal(run("driver", "host", "list", "lab-z"), 1);
  assert_string_equal(R.err, "dfnet: NOT_FOUND: no host 'x'\n");
  assert_int_equal(run("driver", "host", "list", "a", "b"), 2);
  assert_int_equal(run("driver", "host", "lab-a"), 2);
  assert_non_null(strstr(R.err, "'driver host' has no command 'lab-a'; its commands: list"));
}

/* The outcome per node of a driver action; one failed: exit 1, said on stderr after it. */
static void test_driver_outcomes(void **state) {
  (void)state;
  use_scripted("admin", "alice");
  assert_int_equal(run("driver", "disable", "partial"), 1);
  assert_string_equal(R.out,
                      "Disabled dfnet-boot:///partial#meta/partial.json\n"
                      "dev.lab-a.pci.00_05_0: running "
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"
                      "dev.lab-a.pci.00_06_0: FAILED_PRECONDITION: start failed: no "
                      "device\n"
                      "... and 1 more node(s)\n");
  assert_string_equal(R.err,
                      "dfnet: FAILED_PRECONDITION: disable partial: 1 of 2 node(s) failed\n");
  assert_int_equal(run("driver", "restart", "--json", "partial"), 1);
  cJSON *doc = parse_out();
  assert_string_equal(cJSON_GetObjectItem(doc, "url")->valuestring, "partial");
  assert_int_equal(cJSON_GetObjectItem(doc, "restarted_driver_hosts")->valueint, 2);
  cJSON *o = cJSON_GetObjectItem(doc, "outcomes");
  assert_int_equal(cJSON_GetArraySize(o), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "code")->valuestring, "OK");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "message")));
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "code")->valuestring,
                      "FAILED_PRECONDITION");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "driver")));
  cJSON_Delete(doc);
  assert_non_null(strstr(R.err, "dfnet: FAILED_PRECONDITION: restart partial: 1 of 2"));
  /* a manager that answers a Status alone: the driver as given, no outcome */
  assert_int_equal(run("driver", "enable", "x"), 0);
  assert_string_equal(R.out, "Enabled x\n");
  assert_int_equal(run("driver", "enable", "--json", "x"), 0);
  doc = parse_out();
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "enabled")));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "outcomes")), 0);
  cJSON_Delete(doc);
  assert_int_equal(run("driver", "unregister", "partial"), 1);
  assert_true(strncmp(R.out,
                      "Unregistered dfnet-boot:///partial#meta/partial.json: stopped on 3 "
                      "node(s), which are matched again.\n",
                      100) == 0);
}

/* The node verbs: what reaches the manager, what they print, mistakes (exit 2, nothing
 * sent). */
static void test_node_verbs(void **state) {
  (void)state;
  use_scripted("admin", "alice");
  ss_stats_t st;
  assert_int_equal(run("node", "bind", "dev.lab-a.x", "--driver", "virtio-rng", "--force"), 0);
  assert_string_equal(R.out,
                      "Bind requested for dev.lab-a.x: starting "
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json\n");
  ss_stats(server, &st);
  assert_string_equal(st.last_node, "dev.lab-a.x");
  assert_int_equal(st.last_flags, 1);
  assert_string_equal(st.last_driver, "virtio-rng");
  assert_int_equal(run("node", "unbind", "dev.lab-a.x"), 0);
  assert_string_equal(R.out, "Unbound dev.lab-a.x: stopped 1 driver\n");
  static const struct {
    const char *reason;
    uint32_t flags;
  } reasons[] = {{NULL, 0xdcdc0400u},
                 {"reboot", 0xdcdc0100u},
                 {"poweroff", 0xdcdc0200u},
                 {"mexec", 0xdcdc0300u},
                 {"suspend-ram", 0xdcdc0400u}};
  for (size_t i = 0; i < 5; i++) {
    if (reasons[i].reason == NULL)
      assert_int_equal(run("node", "suspend", "dev.lab-a.y"), 0);
    else
      assert_int_equal(run("node", "suspend", "dev.lab-a.y", "--reason", reasons[i].reason), 0);
    ss_stats(server, &st);
    assert_int_equal(st.last_flags, reasons[i].flags);
  }
  assert_string_equal(R.out, "Suspended (suspend-ram) dev.lab-a.y: 2 drivers suspended\n");
  assert_int_equal(run("node", "resume", "dev.lab-a.y"), 0);
  assert_string_equal(R.out, "Resumed dev.lab-a.y\n");
  assert_int_equal(
      run("node", "add-test", "dev.lab-a", "t0", "--property", "fuchsia.BIND_PROTOCOL=85",
          "--property", "fuchsia.BIND_PLATFORM_DEV_VID=0xd0f", "--property", "vendor.ok=true",
          "--property", "vendor.name=\"Red Hat\"", "--property", "vendor.word=plain", "--property",
          "fuchsia.hardware.pci.Service=fuchsia.hardware.pci.Service.ZirconTransport"),
      0);
  assert_string_equal(R.out,
                      "Added test node dev.lab-a.t0: would bind "
                      "dfnet-boot:///virtio-rng#meta/virtio-rng.json\n");
  ss_stats(server, &st);
  assert_string_equal(st.last_node, "dev.lab-a.t0");
  assert_string_equal(st.last_props,
                      "#1=u:85;#768=u:3343;vendor.ok=b:true;vendor.name=s:Red Hat;"
                      "vendor.word=s:plain;fuchsia.hardware.pci.Service=e:"
                      "fuchsia.hardware.pci.Service.ZirconTransport;");
  assert_int_equal(run("node", "remove-test", "dev.lab-a.t0"), 0);
  assert_string_equal(R.out, "Removed test node dev.lab-a.t0\n");
  /* mistakes: exit 2 naming them, nothing sent */
  ss_stats(server, &st);
  int before = st.last_which;
  static const struct {
    const char *arg, *says;
  } bad[] = {
      {"fuchsia.BIND_PCI_VDI=1",
       "--property fuchsia.BIND_PCI_VDI=1: fuchsia.BIND_PCI_VDI is not a deprecated key of "
       "fuchsia (did you mean 'fuchsia.BIND_PCI_VID'?)"},
      {"novalue", "--property novalue: 'novalue' is not KEY=VALUE"},
      {"k=", "'k=' has no value"},
      {"k=12x", "value '12x' is not a number"},
      {"k=0x100000000", "value '0x100000000' is not a number"},
      {"fuchsia.BIND_PROTOCOL=true", "fuchsia.BIND_PROTOCOL is an integer key"},
      {"k=\"open", "a quoted string ends with '\"'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(
        run("node", "add-test", "dev.lab-a", "t1", "--property", "a=1", "--property", bad[i].arg),
        2);
    if (strstr(R.err, bad[i].says) == NULL)
      fail_msg("--property %s: stderr \"%s\", wanted \"%s\"", bad[i].arg, R.err, bad[i].says);
  }
  assert_int_equal(run("node", "add-test", "dev.lab-a", "t.1"), 2);
  assert_int_equal(run("node", "suspend", "dev.lab-a.y", "--reason", "nap"), 2);
  assert_non_null(strstr(R.err, "--reason wants reboot, poweroff, mexec or suspend-ram"));
  ss_stats(server, &st);
  assert_int_equal(st.last_which, before);
  /* the manager's refusals: exit 1 */
  assert_int_equal(run("node", "unbind", "dev.none"), 1);
  assert_string_equal(R.err, "dfnet: NOT_FOUND: no node 'dev.none'\n");
  use_scripted("viewer", "carol");
  assert_int_equal(run("node", "suspend", "dev.lab-a.y"), 1);
  assert_non_null(strstr(R.err, "dfnet: PERMISSION_DENIED:"));
}

/* ---- against the real manager ---- */

static void test_real_manager(void **state) {
  (void)state;
  char st[400], drivers[400], certs[400];
  snprintf(st, sizeof st, "%s/mgr-state", dir);
  snprintf(drivers, sizeof drivers, "%s/mgr-drivers", dir);
  snprintf(certs, sizeof certs, "%s/mgr-certs", dir);
  assert_int_equal(th_fresh_dir(drivers), 0);
  assert_int_equal(th_write_driver(drivers, "virtio-rng",
                                   "using fuchsia.pci;\nfuchsia.BIND_PCI_VID == 0x1af4;\n"
                                   "fuchsia.BIND_PCI_DID == 0x1044;\n",
                                   NULL),
                   0);
  th_manager_t m;
  assert_int_equal(th_manager_start(&m, st, drivers, NULL), 0);
  testhost_t *h = th_connect(&m, "lab-a", "host", NULL);
  assert_non_null(h);
  const th_prop_t rng_props[] = {"#256=u:0x1af4", "#257=u:0x1044",
                                 "fuchsia.hardware.pci.Device=b:true"};
  const th_prop_t other_props[] = {"#256=u:0x8086", "#257=u:0x100e"};
  assert_int_equal(th_node_add(h, "dev.lab-a", "pci", NULL, 0, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a.pci", "00_05_0", rng_props, 3, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a.pci", "00_06_0", other_props, 2, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(th_wait_event(h, dfnet_v1_Envelope_driver_start_tag, "dev.lab-a.pci.00_05_0", 10000,
                            NULL, NULL));
  assert_int_equal(ss_issue(st, "admin", "root", certs), 0);
  assert_int_equal(ss_issue(st, "viewer", "watcher", certs), 0);
  char v[500];
  snprintf(v, sizeof v, "wss://127.0.0.1:%u", (unsigned)m.port);
  setenv("DFNET_MANAGER", v, 1);
  snprintf(v, sizeof v, "%s/root.crt", certs);
  setenv("DFNET_CERT", v, 1);
  snprintf(v, sizeof v, "%s/root.key", certs);
  setenv("DFNET_KEY", v, 1);
  snprintf(v, sizeof v, "%s/ca.crt", certs);
  setenv("DFNET_CA", v, 1);

  /* the node binds (the host answers DriverStart with RUNNING): poll with the CLI */
  bool bound = false;
  for (int i = 0; i < 100 && !bound; i++) {
    assert_int_equal(run("node", "show", "dev.lab-a.pci.00_05_0"), 0);
    bound = strstr(R.out, "State    : bound") != NULL;
    if (!bound)
      usleep(50000);
  }
  assert_true(bound);
  assert_non_null(strstr(R.out, "Driver   : dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"));
  assert_non_null(strstr(R.out, "[ 1/  3] : Key fuchsia.BIND_PCI_VID           Value 0x001af4\n"));
  assert_non_null(strstr(R.out, "Key \"fuchsia.hardware.pci.Device\"  Value true\n"));
  assert_int_equal(run("node", "list", "--json"), 0);
  cJSON *doc = parse_out();
  assert_non_null(doc);
  int found = 0;
  cJSON *n;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(doc, "nodes")) {
    const char *mk = cJSON_GetObjectItem(n, "moniker")->valuestring;
    if (strcmp(mk, "dev.lab-a.pci.00_06_0") == 0) {
      found++;
      assert_string_equal(cJSON_GetObjectItem(n, "state")->valuestring, "unbound");
    }
  }
  assert_int_equal(found, 1);
  cJSON_Delete(doc);
  assert_int_equal(run("host", "list", "--json"), 0);
  doc = parse_out();
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "hosts"), 0), "name")
          ->valuestring,
      "lab-a");
  cJSON_Delete(doc);
  assert_int_equal(run("driver", "list", "--loaded", "-v"), 0);
  assert_non_null(strstr(R.out, "URL       : dfnet-boot:///virtio-rng#meta/virtio-rng.json\n"));
  assert_non_null(strstr(R.out, "Bind rules bytecode:"));
  assert_non_null(strstr(R.out, "dev.lab-a.pci.00_05_0"));
  assert_int_equal(run("node", "dump"), 0);
  assert_non_null(strstr(R.out, "[lab-a]\n  [pci]\n    [00_05_0] pid="));
  assert_int_equal(run("bind", "why", "dev.lab-a.pci.00_06_0"), 0);
  assert_non_null(strstr(R.out, "NO_MATCH"));

  /* register a driver (admin), then the viewer may not */
  assert_int_equal(th_write_driver(drivers, "e1000", "fuchsia.BIND_PCI_VID == 0x8086;\n", NULL), 0);
  char pkg[500];
  snprintf(pkg, sizeof pkg, "%s/e1000", drivers);
  assert_int_equal(run("driver", "register", pkg, "--json"), 0);
  doc = parse_out();
  const char *url = cJSON_GetObjectItem(doc, "url")->valuestring;
  assert_true(strncmp(url, "dfnet-pkg://", 12) == 0);
  assert_non_null(strstr(url, "/e1000#meta/e1000.json"));
  char url_copy[256];
  snprintf(url_copy, sizeof url_copy, "%s", url);
  cJSON_Delete(doc);
  assert_int_equal(run("driver", "list"), 0);
  assert_non_null(strstr(R.out, url_copy));
  /* 00_06_0 (8086:100e) is e1000's: disabled, nothing else matches it, which is what a
   * disable does (exit 0); enabled, it is e1000's again */
  assert_int_equal(run("driver", "disable", url_copy), 0);
  assert_non_null(strstr(R.out, "dev.lab-a.pci.00_06_0: NOT_FOUND: "));
  assert_int_equal(run("driver", "enable", url_copy), 0);
  assert_int_equal(run("driver", "register", "/nonexistent/pkg"), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND:"));
  snprintf(v, sizeof v, "%s/watcher.crt", certs);
  setenv("DFNET_CERT", v, 1);
  snprintf(v, sizeof v, "%s/watcher.key", certs);
  setenv("DFNET_KEY", v, 1);
  assert_int_equal(run("driver", "register", pkg), 1);
  assert_non_null(strstr(R.err, "dfnet: PERMISSION_DENIED:"));
  assert_int_equal(run("node", "list"), 0); /* the viewer reads */

  /* Every CLI run closed its websocket (1000): the manager saw no lost connection, and
   * logged each clean close at debug level only. */
  FILE *log = fopen(m.log_path, "r");
  assert_non_null(log);
  char line[1024];
  int clean = 0;
  while (fgets(line, sizeof line, log) != NULL) {
    if (strstr(line, "connection lost") != NULL)
      fail_msg("the manager lost a connection: %s", line);
    if (strstr(line, "closed: UNAVAILABLE: peer closed (1000") != NULL) {
      clean++;
      if (strstr(line, " D transport ") == NULL)
        fail_msg("a clean close logged above debug level: %s", line);
    }
  }
  fclose(log);
  assert_true(clean >= 10);

  th_close(h);
  assert_int_equal(th_manager_stop(&m), 0);
}

/* Connection errors say why, at once when trying again cannot help, in one line on stderr:
 * the manager's certificate from another CA (naming the CA file), our certificate from
 * another CA, our role on the wrong protocol; a name that does not resolve. */
static void test_connect_errors_say_why(void **state) {
  (void)state;
  char st[400], st2[400], certs[400], other[400], v[600];
  snprintf(st, sizeof st, "%s/why-state", dir);
  snprintf(st2, sizeof st2, "%s/why-other-state", dir);
  snprintf(certs, sizeof certs, "%s/why-certs", dir);
  snprintf(other, sizeof other, "%s/why-other", dir);
  th_manager_t m;
  assert_int_equal(th_manager_start(&m, st, NULL, NULL), 0);
  assert_int_equal(dfnet_pki_init_state_dir(st2, "elsewhere", NULL, 0, NULL), DFNET_STATUS_OK);
  assert_int_equal(ss_issue(st, "admin", "root", certs), 0);
  assert_int_equal(ss_issue(st, "host", "board", certs), 0);
  assert_int_equal(ss_issue(st2, "admin", "mallory", other), 0);
  snprintf(v, sizeof v, "wss://127.0.0.1:%u", (unsigned)m.port);
  setenv("DFNET_MANAGER", v, 1);
  unsetenv("DFNET_LOG_LEVEL");

  struct {
    const char *cert, *ca, *status, *says;
  } cases[] = {
      {"root", "other", "UNAUTHENTICATED", "the manager's certificate is not signed by the CA in"},
      {"mallory", "certs", "UNAUTHENTICATED",
       "the manager refused this client: certificate is "
       "not signed by our CA (CN=mallory"},
      {"board", "certs", "PERMISSION_DENIED",
       "the manager refused this client: the certificate of board has role host: role may not "
       "use subprotocol dfnet.client.v1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *cdir = strcmp(cases[i].cert, "mallory") == 0 ? other : certs;
    snprintf(v, sizeof v, "%s/%s.crt", cdir, cases[i].cert);
    setenv("DFNET_CERT", v, 1);
    snprintf(v, sizeof v, "%s/%s.key", cdir, cases[i].cert);
    setenv("DFNET_KEY", v, 1);
    snprintf(v, sizeof v, "%s/ca.crt", strcmp(cases[i].ca, "other") == 0 ? other : certs);
    setenv("DFNET_CA", v, 1);
    assert_int_equal(run("host", "list"), 1);
    char want[700];
    snprintf(want, sizeof want, "dfnet: %s: cannot connect to wss://127.0.0.1:%u: %s",
             cases[i].status, (unsigned)m.port, cases[i].says);
    if (strncmp(R.err, want, strlen(want)) != 0)
      fail_msg("case %zu: want \"%s...\", got \"%s\"", i, want, R.err);
    const char *nl = strchr(R.err, '\n'); /* one line */
    assert_true(nl != NULL && nl[1] == '\0');
  }
  /* the CA named is the file given, made absolute */
  snprintf(v, sizeof v, "%s/root.crt", certs);
  setenv("DFNET_CERT", v, 1);
  snprintf(v, sizeof v, "%s/root.key", certs);
  setenv("DFNET_KEY", v, 1);
  snprintf(v, sizeof v, "%s/ca.crt", other);
  setenv("DFNET_CA", v, 1);
  assert_int_equal(run("host", "list"), 1);
  char *real = realpath(v, NULL);
  assert_non_null(real);
  assert_non_null(strstr(R.err, real));
  free(real);
  /* a name that does not resolve: at once too */
  snprintf(v, sizeof v, "%s/ca.crt", certs);
  setenv("DFNET_CA", v, 1);
  setenv("DFNET_MANAGER", "wss://no-such-manager.invalid:7443", 1);
  assert_int_equal(run("host", "list"), 1);
  assert_non_null(strstr(R.err,
                         "dfnet: UNAVAILABLE: cannot connect to "
                         "wss://no-such-manager.invalid:7443: cannot resolve "
                         "no-such-manager.invalid"));
  assert_int_equal(th_manager_stop(&m), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_usage_errors),       cmocka_unit_test(test_settings),
      cmocka_unit_test(test_node_list_text),     cmocka_unit_test(test_node_list_json),
      cmocka_unit_test(test_dump_and_others),    cmocka_unit_test(test_call_and_rng),
      cmocka_unit_test(test_lifecycle_listings), cmocka_unit_test(test_driver_host_list),
      cmocka_unit_test(test_driver_outcomes),    cmocka_unit_test(test_node_verbs),
      cmocka_unit_test(test_real_manager),       cmocka_unit_test(test_connect_errors_say_why),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
