/* dfnet-host against the real dfnet-manager on loopback (issue 6 "everything against a
 * real manager on loopback"): the manager with one boot driver (the echo test driver, bound
 * to the fixture's virtio RNG function 1af4:1044), the agent on the captured sysfs; an
 * operator client's call to dev.lab-a.pci.00_05_0 goes manager -> agent -> driver host ->
 * echo and back. Then the manager is killed and restarted on the same state: the agent
 * reconnects by itself and the call works again. Then the agent is killed with SIGKILL:
 * its driver host goes with it, and a new agent's node is bound and answers again.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "driver_user.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "testhost/testhost.h"

static char g_dir[256];

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = NULL;
  if (in == NULL || (out = fopen(to, "wb")) == NULL) {
    if (in)
      fclose(in);
    return -1;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  return fclose(out);
}

static void dump(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size > 5000 ? size - 5000 : 0, SEEK_SET);
  char buf[5001];
  size_t n = fread(buf, 1, 5000, f);
  buf[n] = '\0';
  fclose(f);
  fprintf(stderr, "---- %s (tail) ----\n%s\n----\n", path, buf);
}

/* An operator client on the real transport: Hello, then calls. */
typedef struct client {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t ep;
} client_t;

static int client_open(client_t *c, uint16_t port, const char *certs) {
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/op.crt", certs);
  snprintf(key, sizeof key, "%s/op.key", certs);
  snprintf(ca, sizeof ca, "%s/ca.crt", certs);
  dfnet_client_config_t cc = {.url = url,
                              .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
                              .cert_file = crt,
                              .key_file = key,
                              .ca_file = ca,
                              .backoff_initial_ms = 100,
                              .backoff_max_ms = 500};
  if (dfnet_transport_create(&c->t) != DFNET_STATUS_OK ||
      dfnet_transport_connect(c->t, &cc, &c->ep) != DFNET_STATUS_OK ||
      dfnet_transport_start(c->t) != DFNET_STATUS_OK)
    return -1;
  return 0;
}

/* Wait for a session and say Hello (again after a reconnect). */
static dfnet_session_id_t client_session(client_t *c) {
  static dfnet_session_id_t hello_done;
  dfnet_session_id_t s = 0;
  if (dfnet_transport_wait_session(c->t, c->ep, 20000, &s) != DFNET_STATUS_OK)
    return 0;
  if (s == hello_done)
    return s;
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_hello_tag;
  req->pb.msg.hello.protocol_version = DFNET_PROTOCOL_VERSION;
  req->pb.msg.hello.role = dfnet_v1_Role_OPERATOR;
  void *bulk = NULL;
  dfnet_status_t st = dfnet_transport_request_sync(c->t, s, req, 10000, rep, &bulk);
  bool ok = st == DFNET_STATUS_OK && rep->pb.which_msg == dfnet_v1_Envelope_welcome_tag;
  free(bulk);
  free(req);
  free(rep);
  if (!ok)
    return 0;
  hello_done = s;
  return s;
}

/* Echo through the fabric; OK with the bytes back in out. */
static dfnet_status_t client_echo(client_t *c, const char *target, const char *text, char *out,
                                  size_t cap) {
  dfnet_session_id_t s = client_session(c);
  if (s == 0)
    return DFNET_STATUS_UNAVAILABLE;
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(req->pb.msg.call.target, sizeof req->pb.msg.call.target, "%s", target);
  snprintf(req->pb.msg.call.method, sizeof req->pb.msg.call.method, "/dfnet.test.Echo/Echo");
  req->pb.msg.call.deadline_ms = 5000;
  req->bulk.data = (const uint8_t *)text;
  req->bulk.size = strlen(text);
  void *bulk = NULL;
  dfnet_status_t st = dfnet_transport_request_sync(c->t, s, req, 10000, rep, &bulk);
  out[0] = '\0';
  if (st == DFNET_STATUS_OK) {
    if (rep->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
      st = (dfnet_status_t)rep->pb.msg.reply.code;
      size_t n = rep->bulk.size < cap - 1 ? rep->bulk.size : cap - 1;
      if (n > 0)
        memcpy(out, rep->bulk.data, n);
      out[n] = '\0';
    } else if (rep->pb.which_msg == dfnet_v1_Envelope_status_tag) {
      st = (dfnet_status_t)rep->pb.msg.status.code;
    } else {
      st = DFNET_STATUS_INTERNAL;
    }
  }
  free(bulk);
  free(req);
  free(rep);
  return st;
}

/* Retry the echo until it answers OK (binding settles), up to timeout_ms. */
static dfnet_status_t echo_when_bound(client_t *c, const char *target, const char *text, char *out,
                                      size_t cap, unsigned timeout_ms) {
  dfnet_status_t st = DFNET_STATUS_UNAVAILABLE;
  for (unsigned waited = 0; waited <= timeout_ms; waited += 200) {
    st = client_echo(c, target, text, out, cap);
    if (st == DFNET_STATUS_OK)
      return st;
    sleep_ms(200);
  }
  return st;
}

static pid_t spawn_agent(uint16_t port, const char *certs, const char *log) {
  char url[64], crt[400], key[400], ca[400], cache[400], sysfs[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/lab-a.crt", certs);
  snprintf(key, sizeof key, "%s/lab-a.key", certs);
  snprintf(ca, sizeof ca, "%s/ca.crt", certs);
  snprintf(cache, sizeof cache, "%s/cache", g_dir);
  snprintf(sysfs, sizeof sysfs, "%s", DFNET_FIXTURES_DIR "/sysfs-virtio-vm");
  pid_t pid = test_child_fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      close(fd);
    }
    execl(DFNET_HOST_BIN, DFNET_HOST_BIN, "--manager", url, "--cert", crt, "--key", key, "--ca", ca,
          "--sysfs-root", sysfs, "--no-usb", "--cache-dir", cache, "--driver-host",
          DFNET_DRIVER_HOST_BIN, "--log-level", "debug", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int wait_exit(pid_t pid, unsigned timeout_ms) {
  for (unsigned waited = 0; waited <= timeout_ms; waited += 20) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return status;
    sleep_ms(20);
  }
  return -1;
}

static void test_real_manager(void **state) {
  (void)state;
  /* the agent's driver hosts run sandboxed, as the driver user (dfnet-host's default) */
  assert_true(test_driver_user_ensure());
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-host-mgr-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  char mstate[300], drivers[300], certs[300], log[300], so[600];
  snprintf(mstate, sizeof mstate, "%s/state", g_dir);
  snprintf(drivers, sizeof drivers, "%s/drivers", g_dir);
  snprintf(certs, sizeof certs, "%s/certs", g_dir);
  snprintf(log, sizeof log, "%s/agent.log", g_dir);
  assert_int_equal(th_fresh_dir(drivers), 0);
  /* A boot driver package: the echo test driver bound to the virtio RNG function. */
  assert_int_equal(th_write_driver(drivers, "echo",
                                   "fuchsia.BIND_PCI_VID == 0x1af4;\n"
                                   "fuchsia.BIND_PCI_DID == 0x1044;\n",
                                   NULL),
                   0);
  snprintf(so, sizeof so, "%s/echo/driver/echo.so", drivers);
  assert_int_equal(copy_file(DFNET_ECHO_SO, so), 0);

  th_manager_t mgr;
  if (th_manager_start(&mgr, mstate, drivers, "--host-grace", "10", NULL) != 0) {
    dump(mgr.log_path);
    fail_msg("dfnet-manager did not start");
  }
  assert_int_equal(dfnet_pki_issue_to_dir(mstate, DFNET_PKI_ROLE_HOST, "lab-a", certs, NULL, 0, 30),
                   DFNET_STATUS_OK);
  assert_int_equal(
      dfnet_pki_issue_to_dir(mstate, DFNET_PKI_ROLE_OPERATOR, "op", certs, NULL, 0, 30),
      DFNET_STATUS_OK);
  pid_t agent = spawn_agent(mgr.port, certs, log);
  client_t c;
  assert_int_equal(client_open(&c, mgr.port, certs), 0);
  char out[128];
  dfnet_status_t st =
      echo_when_bound(&c, "dev.lab-a.pci.00_05_0", "through the fabric", out, sizeof out, 20000);
  if (st != DFNET_STATUS_OK) {
    dump(log);
    dump(mgr.log_path);
    fail_msg("echo through the manager: %s", dfnet_status_str(st));
  }
  assert_string_equal(out, "through the fabric");

  /* The manager dies and comes back on the same state and port: the agent reconnects. */
  uint16_t port = mgr.port;
  kill(mgr.pid, SIGKILL);
  waitpid(mgr.pid, NULL, 0);
  char listen[32];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)port);
  th_manager_t mgr2;
  if (th_manager_start(&mgr2, mstate, drivers, "--host-grace", "10", "--listen", listen, NULL) !=
          0 ||
      mgr2.port != port) {
    dump(mgr2.log_path);
    fail_msg("dfnet-manager did not restart on port %u", (unsigned)port);
  }
  st = echo_when_bound(&c, "dev.lab-a.pci.00_05_0", "again", out, sizeof out, 30000);
  if (st != DFNET_STATUS_OK) {
    dump(log);
    dump(mgr2.log_path);
    fail_msg("echo after the manager's restart: %s", dfnet_status_str(st));
  }
  assert_string_equal(out, "again");

  /* kill -9 of the agent: its driver host goes too (its link closed), and a new agent
   * gets its node bound again. */
  pid_t dh = -1;
  {
    char path[96], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)agent, (long)agent);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = '\0';
      dh = (pid_t)strtol(buf, NULL, 10);
    }
  }
  assert_true(dh > 0);
  assert_int_equal(kill(agent, SIGKILL), 0);
  waitpid(agent, NULL, 0);
  bool gone = false;
  for (int i = 0; i < 500 && !gone; i++, sleep_ms(20)) {
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)dh);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      size_t n = fread(stat, 1, sizeof stat - 1, f);
      fclose(f);
      stat[n] = '\0';
    }
    const char *rp = strrchr(stat, ')');
    gone = f == NULL || (rp != NULL && rp[1] == ' ' && rp[2] == 'Z'); /* gone, or a zombie */
  }
  assert_true(gone);
  agent = spawn_agent(port, certs, log);
  st = echo_when_bound(&c, "dev.lab-a.pci.00_05_0", "new agent", out, sizeof out, 30000);
  if (st != DFNET_STATUS_OK) {
    dump(log);
    dump(mgr2.log_path);
    fail_msg("echo after the agent's restart: %s", dfnet_status_str(st));
  }
  assert_string_equal(out, "new agent");

  dfnet_transport_destroy(c.t);
  kill(agent, SIGTERM);
  int status = wait_exit(agent, 15000);
  if (status == -1) {
    kill(agent, SIGKILL);
    waitpid(agent, NULL, 0);
    fail_msg("agent did not exit on SIGTERM");
  }
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(th_manager_stop(&mgr2), 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", g_dir, mstate);
  if (getenv("DFNET_KEEP_TMP") == NULL && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_real_manager)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
