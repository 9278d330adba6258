/* A whole dfnet fabric for integration tests (fabric.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fabric.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "testhost/testhost.h"
#include "child.h"
#include "driver_user.h"

uint64_t fabric_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fabric_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int fabric_sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start argv[] followed by extra[] (NULL-terminated, may be NULL) with stdout and stderr
 * appended to `log`; returns the pid. */
static pid_t spawn(char *const argv[], const char *const *extra, const char *log) {
  char *all[96];
  size_t n = 0;
  for (; argv[n] != NULL && n < 64; n++)
    all[n] = argv[n];
  for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 95; i++)
    all[n++] = (char *)extra[i];
  all[n] = NULL;
  argv = all;
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  return pid;
}

int fabric_stop_process(pid_t *pid, int sig) {
  if (*pid <= 0)
    return -1;
  int status = -1;
  kill(*pid, sig);
  for (int i = 0; i < 100; i++) {
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = 0;
      return status;
    }
    fabric_sleep_ms(50);
  }
  kill(*pid, SIGKILL);
  waitpid(*pid, &status, 0);
  *pid = 0;
  return -1;
}

#define FABRIC_RULES                                                  \
  "using fuchsia.platform;\n"                                         \
  "fuchsia.BIND_PROTOCOL == fuchsia.platform.BIND_PROTOCOL.DEVICE;\n" \
  "fuchsia.BIND_PLATFORM_DEV_VID == 0xd0f;\n"                         \
  "fuchsia.BIND_PLATFORM_DEV_DID == %d;\n"

static const char *manager_path(fabric_t *f, char *buf, size_t size) {
  snprintf(buf, size, "%s/manager/dfnet-manager", f->build);
  return buf;
}

int fabric_init(fabric_t *f, const char *name, const char *const *sans,
                const fabric_package_t *packages) {
  memset(f, 0, sizeof *f);
  const char *build = getenv("DFNET_BUILD_DIR");
  snprintf(f->build, sizeof f->build, "%s", build ? build : ".");
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-%s-%d", name, (int)getpid());
  snprintf(f->manager_log, sizeof f->manager_log, "%s/manager.log", f->root);
  char drivers[320], mgr[600], san_args[512] = "";
  snprintf(drivers, sizeof drivers, "%s/drivers", f->root);
  if (th_fresh_dir(f->root) != 0 || th_fresh_dir(drivers) != 0)
    return -1;
  for (size_t i = 0; sans && sans[i]; i++) {
    size_t len = strlen(san_args);
    snprintf(san_args + len, sizeof san_args - len, " --san %s", sans[i]);
  }
  if (fabric_sh("'%s' init --state-dir '%s/state'%s >/dev/null", manager_path(f, mgr, sizeof mgr),
                f->root, san_args) != 0)
    return -1;
  for (size_t i = 0; packages && packages[i].name; i++) {
    const fabric_package_t *p = &packages[i];
    char src[512];
    snprintf(src, sizeof src, FABRIC_RULES, p->did);
    if (th_write_driver(drivers, p->name, src, p->extra) != 0)
      return -1;
    /* th_write_driver leaves a placeholder .so: put the real test driver there. */
    if (fabric_sh("cp '%s/tests/drivers/%s' '%s/%s/driver/%s.so'", f->build, p->so, drivers,
                  p->name, p->name) != 0)
      return -1;
  }
  return 0;
}

int fabric_issue(fabric_t *f, const char *role, const char *name) {
  char mgr[600];
  return fabric_sh(
             "'%s' issue --state-dir '%s/state' --role %s --name %s --out '%s/certs' "
             ">/dev/null",
             manager_path(f, mgr, sizeof mgr), f->root, role, name, f->root) == 0
             ? 0
             : -1;
}

void fabric_write_board(fabric_t *f, const char *const *devices) {
  char path[300];
  snprintf(path, sizeof path, "%s/board.json", f->root);
  FILE *out = fopen(path, "w");
  assert_non_null(out);
  fputs("{\"devices\": [\n", out);
  for (size_t i = 0; devices[i]; i++) {
    char name[64];
    int did = 0;
    assert_int_equal(sscanf(devices[i], "%63[^:]:%d", name, &did), 2);
    fprintf(out, "%s {\"name\": \"%s\", \"vid\": 3343, \"pid\": 1, \"did\": %d}\n", i ? "," : "",
            name, did);
  }
  fputs("]}\n", out);
  fclose(out);
}

/* Start the manager listening on address:port (0: a port the system chooses) and wait for
 * it to say where it listens. 0 with f->port set, or -1 (the manager may have exited). */
static int start_manager(fabric_t *f, const char *address, int grace_s, uint16_t port) {
  char mgr[600], state[300], drivers[300], listen[64], grace[16];
  snprintf(state, sizeof state, "%s/state", f->root);
  snprintf(drivers, sizeof drivers, "%s/drivers", f->root);
  snprintf(listen, sizeof listen, "%s:%u", address, (unsigned)port);
  snprintf(grace, sizeof grace, "%d", grace_s);
  char *argv[] = {(char *)manager_path(f, mgr, sizeof mgr),
                  "--listen",
                  listen,
                  "--state-dir",
                  state,
                  "--drivers",
                  drivers,
                  "--host-grace",
                  grace,
                  NULL};
  f->port = 0;
  /* a restart appends to the same log: only what this manager writes counts */
  struct stat before;
  long from = stat(f->manager_log, &before) == 0 ? (long)before.st_size : 0;
  f->manager = spawn(argv, f->manager_extra, f->manager_log);
  uint64_t end = fabric_now_ms() + 10000;
  while (f->port == 0 && fabric_now_ms() < end) {
    char line[512];
    FILE *log = fopen(f->manager_log, "r");
    if (log != NULL && fseek(log, from, SEEK_SET) != 0) {
      fclose(log);
      log = NULL;
    }
    while (log && fgets(line, sizeof line, log)) {
      char *at = strstr(line, "listening on ");
      char *colon = at ? strrchr(at, ':') : NULL;
      if (colon)
        f->port = (uint16_t)strtoul(colon + 1, NULL, 10);
    }
    if (log)
      fclose(log);
    if (f->port == 0 && waitpid(f->manager, NULL, WNOHANG) == f->manager) {
      f->manager = 0; /* it exited (say, its port was not free) */
      break;
    }
    fabric_sleep_ms(50);
  }
  return f->port ? 0 : -1;
}

int fabric_start_manager(fabric_t *f, const char *address, int grace_s) {
  return start_manager(f, address, grace_s, 0);
}

int fabric_restart_manager(fabric_t *f, const char *address, int grace_s) {
  uint16_t port = f->port;
  uint64_t end = fabric_now_ms() + 20000;
  for (;;) {
    if (start_manager(f, address, grace_s, port) == 0)
      return 0;
    /* the port not free again yet (the manager then exits): try again */
    fabric_stop_process(&f->manager, SIGKILL);
    if (fabric_now_ms() >= end)
      return -1;
    fabric_sleep_ms(200);
  }
}

void fabric_start_agent(fabric_t *f, fabric_agent_t *a) {
  /* its driver hosts run sandboxed, as the driver user (dfnet-host's default) */
  assert_true(test_driver_user_ensure());
  char url[128], cert[600], key[600], ca[600], board[600], cache[600], sysfs[600], agent[600];
  snprintf(url, sizeof url, "wss://%s:%u", a->addr_root[0] ? a->addr_root : "localhost", f->port);
  snprintf(cert, sizeof cert, "%s/certs/%s.crt", f->root, a->name);
  snprintf(key, sizeof key, "%s/certs/%s.key", f->root, a->name);
  snprintf(ca, sizeof ca, "%s/certs/ca.crt", f->root);
  snprintf(board, sizeof board, "%s/board.json", f->root);
  snprintf(cache, sizeof cache, "%s/cache-%s", f->root, a->name);
  snprintf(sysfs, sizeof sysfs, "%s", DFNET_FIXTURES_DIR "/sysfs-virtio-vm");
  snprintf(agent, sizeof agent, "%s/host/agent/dfnet-host", f->build);
  snprintf(a->log, sizeof a->log, "%s/%s.log", f->root, a->name);
  char *argv[] = {"ip",
                  "netns",
                  "exec",
                  a->ns,
                  agent,
                  "--manager",
                  url,
                  "--cert",
                  cert,
                  "--key",
                  key,
                  "--ca",
                  ca,
                  "--name",
                  (char *)a->name,
                  "--sysfs-root",
                  sysfs,
                  "--board",
                  board,
                  "--cache-dir",
                  cache,
                  "--no-usb",
                  NULL};
  if (a->usb)
    argv[sizeof argv / sizeof argv[0] - 2] = NULL; /* drop --no-usb */
  a->pid = spawn(a->ns[0] ? argv : argv + 4, a->extra, a->log);
}

bool fabric_netns_usable(char *why, size_t size) {
  if (geteuid() != 0) {
    snprintf(why, size, "not running as root");
    return false;
  }
  if (fabric_sh("ip netns add dfnet-probe-%d >/dev/null 2>&1", (int)getpid()) != 0) {
    snprintf(why, size, "'ip netns add' failed (no iproute2 or no namespace support)");
    return false;
  }
  fabric_sh("ip netns del dfnet-probe-%d >/dev/null 2>&1", (int)getpid());
  return true;
}

void fabric_netns_create(fabric_agent_t *a, int index) {
  int net = 100 + (int)(getpid() % 60) * 2 + index; /* 10.231.<net>.0/30 */
  snprintf(a->ns, sizeof a->ns, "dfnet-%d-%c", (int)getpid(), 'a' + index);
  snprintf(a->veth_root, sizeof a->veth_root, "dfr%d%c", (int)(getpid() % 100000), 'a' + index);
  snprintf(a->addr_root, sizeof a->addr_root, "10.231.%d.1", net);
  assert_int_equal(fabric_sh("ip netns add %s", a->ns), 0);
  assert_int_equal(
      fabric_sh("ip link add %s type veth peer name dfh0 netns %s", a->veth_root, a->ns), 0);
  assert_int_equal(fabric_sh("ip addr add %s/30 dev %s && ip link set %s up", a->addr_root,
                             a->veth_root, a->veth_root),
                   0);
  assert_int_equal(fabric_sh("ip netns exec %s sh -c 'ip addr add 10.231.%d.2/30 dev dfh0 && "
                             "ip link set dfh0 up && ip link set lo up'",
                             a->ns, net),
                   0);
}

void fabric_netns_destroy(fabric_agent_t *a) {
  if (a->ns[0] == '\0')
    return;
  fabric_sh("ip link del %s >/dev/null 2>&1", a->veth_root);
  fabric_sh("ip netns del %s >/dev/null 2>&1", a->ns);
  a->ns[0] = '\0';
}

dfnet_client_t *fabric_connect(fabric_t *f, const char *name) {
  char url[64], cert[600], key[600], ca[600];
  snprintf(url, sizeof url, "wss://localhost:%u", f->port);
  snprintf(cert, sizeof cert, "%s/certs/%s.crt", f->root, name);
  snprintf(key, sizeof key, "%s/certs/%s.key", f->root, name);
  snprintf(ca, sizeof ca, "%s/certs/ca.crt", f->root);
  dfnet_client_options_t o = {.url = url, .cert_file = cert, .key_file = key, .ca_file = ca};
  dfnet_client_error_t err;
  dfnet_client_t *c = NULL;
  if (dfnet_client_connect(&o, &c, &err) != DFNET_STATUS_OK) {
    print_message("connect as %s: %s\n", name, err.message);
    return NULL;
  }
  return c;
}

void fabric_cleanup(fabric_t *f, fabric_agent_t *agents, int n) {
  for (int i = 0; i < n; i++)
    fabric_stop_process(&agents[i].pid, SIGTERM);
  fabric_stop_process(&f->manager, SIGTERM);
  for (int i = 0; i < n; i++)
    fabric_netns_destroy(&agents[i]);
  if (getenv("DFNET_KEEP") == NULL)
    fabric_sh("rm -rf '%s'", f->root);
  else
    print_message("kept %s\n", f->root);
}

fabric_node_t fabric_node(dfnet_client_t *c, const char *moniker) {
  fabric_node_t v = {0};
  dfnet_client_node_list_t *list = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(c, moniker, true, false, NULL, &list, &err) != DFNET_STATUS_OK)
    return v;
  for (size_t i = 0; i < list->count; i++) {
    if (strcmp(list->items[i].moniker, moniker) == 0) {
      v.found = true;
      v.offline = list->items[i].offline;
      v.state = list->items[i].state;
      v.driver_host_id = list->items[i].driver_host_id;
    }
  }
  dfnet_client_node_list_free(list);
  return v;
}

bool fabric_is_bound(fabric_node_t n, const void *arg) {
  (void)arg;
  return n.found && !n.offline && n.state == DFNET_CLIENT_NODE_BOUND;
}

bool fabric_is_offline(fabric_node_t n, const void *arg) {
  (void)arg;
  return n.found && n.offline;
}

bool fabric_is_gone(fabric_node_t n, const void *arg) {
  (void)arg;
  return !n.found;
}

bool fabric_is_found(fabric_node_t n, const void *arg) {
  (void)arg;
  return n.found;
}

bool fabric_wait_node(dfnet_client_t *c, const char *moniker, fabric_node_pred_t pred,
                      const void *arg, uint32_t ms, fabric_node_t *out) {
  uint64_t end = fabric_now_ms() + ms;
  do {
    fabric_node_t v = fabric_node(c, moniker);
    if (out)
      *out = v;
    if (pred(v, arg))
      return true;
    fabric_sleep_ms(100);
  } while (fabric_now_ms() < end);
  return false;
}

dfnet_status_t fabric_call(dfnet_client_t *c, const char *target, const char *method,
                           const void *req, size_t len, uint32_t deadline_ms, char *reply_out,
                           size_t reply_size) {
  uint8_t *reply = NULL;
  size_t reply_len = 0;
  dfnet_client_error_t err;
  dfnet_client_call_options_t o = {.deadline_ms = deadline_ms};
  dfnet_status_t st = dfnet_client_call(c, target, method, req, len, &o, &reply, &reply_len, &err);
  if (st == DFNET_STATUS_OK && reply_out != NULL && reply_size > 0) {
    size_t n = reply_len < reply_size - 1 ? reply_len : reply_size - 1;
    if (n > 0) /* an empty reply has no buffer */
      memcpy(reply_out, reply, n);
    reply_out[n] = '\0';
  }
  if (st != DFNET_STATUS_OK)
    print_message("call %s %s: %s: %s\n", target, method, dfnet_status_str(st), err.message);
  free(reply);
  return st;
}

int fabric_pty_board(fabric_t *f, const char *name, int *board, int *slave) {
  char tty[128];
  struct termios t;
  if (fabric_sh("cp -r '%s/drivers/serial' '%s/drivers/serial'", f->build, f->root) != 0 ||
      openpty(board, slave, tty, NULL, NULL) != 0) {
    print_message("fabric: no serial package or no pty\n");
    return -1;
  }
  if (tcgetattr(*slave, &t) != 0)
    return -1;
  cfmakeraw(&t); /* the board's bytes arrive unchanged */
  if (tcsetattr(*slave, TCSANOW, &t) != 0 ||
      fcntl(*board, F_SETFL, fcntl(*board, F_GETFL) | O_NONBLOCK) != 0)
    return -1;
  char path[300];
  snprintf(path, sizeof path, "%s/board.json", f->root);
  FILE *out = fopen(path, "w");
  if (out == NULL)
    return -1;
  fprintf(out,
          "{\"devices\": [{\"name\": \"%s\", \"vid\": 0, \"pid\": 0, \"did\": 0, "
          "\"properties\": [{\"key\": \"fuchsia.BIND_SERIAL_CLASS\", \"type\": \"int\", "
          "\"value\": 3}], \"resources\": {\"tty\": \"%s\"}}]}\n",
          name, tty);
  return fclose(out) == 0 ? 0 : -1;
}
