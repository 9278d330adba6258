/* dfnet-host and the driver lifecycle (issue 19 "Driver lifecycle and control as the seeds
 * describe it"), against the scripted manager-side peer (peer.h: the real transport server,
 * real certificates), with the real dfnet-driver-host and the lifecycle test driver
 * (tests/drivers/lifecycle.c) packed as a driver package: its trace file, shared by every
 * driver of a test, shows which hooks ran and in which order across processes. The driver
 * hosts run sandboxed (dfnet-host's default): the trace is each start's manifest resource,
 * allowed by --allow-resource, opened by the agent and written through the handed
 * descriptor.
 *
 * test_shutdown_reason_usage  --shutdown-reason takes reboot, poweroff or none only (exit 2,
 *                             one line) and --help lists it.
 * test_control_and_list       DriverSuspend / DriverResume relayed to the driver host and
 *                             answered with its Status (the hook ran with the flags; a call
 *                             then ends UNAVAILABLE; twice: FAILED_PRECONDITION from the
 *                             driver host); a node without a driver FAILED_PRECONDITION, an
 *                             unknown node NOT_FOUND, a dead driver host UNAVAILABLE;
 *                             ListDriverHosts answered with one DriverHostInfo per driver
 *                             host (its pid, a non-zero RSS, its drivers' URL and nodes, the
 *                             resources the agent handed them: each PCI function's "sysfs" and
 *                             "config"), then Status OK; SIGTERM without --shutdown-reason
 *                             suspends nothing.
 * test_shutdown_reboot        SIGTERM with --shutdown-reason reboot: a child's driver (in
 *                             another driver host) is suspended before its parent's, both
 *                             before any driver stops, with DFNET_SUSPEND_FLAG_REBOOT (a
 *                             ListDriverHosts meanwhile is answered UNAVAILABLE); then
 *                             the child's driver (a slow stop) has stopped before its
 *                             parent's begins to.
 * test_shutdown_child_fails   --shutdown-reason poweroff and a child whose suspend fails: the
 *                             parent is not suspended (it waited for the child's answer), and
 *                             both are stopped all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "agent_proc.h"
#include "child.h"
#include "driver_user.h"
#include "dfnet/driver.h"
#include "lib/package.h"
#include "lib/pki.h"
#include "peer.h"

#define PARENT "dev.lab-a.pci.00_05_0"
#define KID PARENT ".kid"
#define OTHER "dev.lab-a.pci.00_04_0"
#define COLO "dev.lab-a.pci.00_03_0"
#define NO_DRIVER "dev.lab-a.pci.00_01_0"

static char g_dir[256], g_state[300], g_certs[300], g_cache[300], g_log[300], g_trace[300];
static char g_host_crt[400], g_host_key[400], g_ca[400];
static peer_t g_peer;
static struct {
  uint8_t *data;
  size_t size;
  uint8_t digest[32];
  char url[256];
} g_pkg;

/* ---- helpers ------------------------------------------------------------------------- */

static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  size_t n = fwrite(data, 1, len, f);
  return fclose(f) == 0 && n == len ? 0 : -1;
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (in == NULL)
    return -1;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, in);
  bool whole = feof(in);
  fclose(in);
  return whole ? write_file(to, buf, n) : -1;
}

/* The lifecycle driver as a package: <g_dir>/pkg/lifecycle/{meta/lifecycle.json, driver/}. */
static int make_pkg(void) {
  char path[700];
  const char *dirs[] = {"pkg", "pkg/lifecycle", "pkg/lifecycle/meta", "pkg/lifecycle/driver"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", g_dir, dirs[i]);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return -1;
  }
  static const char manifest[] =
      "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/lifecycle.so\", "
      "\"bind\": \"meta/bind/lifecycle.bindbc\", \"colocate\": \"false\"}}\n";
  snprintf(path, sizeof path, "%s/pkg/lifecycle/meta/lifecycle.json", g_dir);
  if (write_file(path, manifest, sizeof manifest - 1) != 0)
    return -1;
  snprintf(path, sizeof path, "%s/pkg/lifecycle/driver/lifecycle.so", g_dir);
  if (copy_file(DFNET_LIFECYCLE_SO, path) != 0)
    return -1;
  snprintf(path, sizeof path, "%s/pkg/lifecycle", g_dir);
  dfnet_package_buf_t buf = {0};
  char err[256];
  if (dfnet_package_pack_dir(path, &buf, err, sizeof err) != DFNET_STATUS_OK)
    return -1;
  g_pkg.data = buf.data;
  g_pkg.size = buf.size;
  dfnet_package_digest(g_pkg.data, g_pkg.size, g_pkg.digest);
  return dfnet_package_url("lifecycle", g_pkg.digest, g_pkg.url, sizeof g_pkg.url) ==
                 DFNET_STATUS_OK
             ? 0
             : -1;
}

/* The agent against the peer, on the captured sysfs, logging to `log`. */
static pid_t spawn_agent(const char *reason, const char *log) {
  char url[64];
  /* no peer (a usage test): a well-formed URL all the same */
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", g_peer.port != 0 ? (unsigned)g_peer.port : 9u);
  /* sandboxed (the default, as the driver user): the trace file is every start's manifest
   * resource (start_lifecycle), which the agent opens and hands over */
  const char *argv[32] = {DFNET_HOST_BIN,
                          "--manager",
                          url,
                          "--cert",
                          g_host_crt,
                          "--key",
                          g_host_key,
                          "--ca",
                          g_ca,
                          "--sysfs-root",
                          DFNET_FIXTURES_DIR "/sysfs-virtio-vm",
                          "--no-usb",
                          "--cache-dir",
                          g_cache,
                          "--driver-host",
                          DFNET_DRIVER_HOST_BIN,
                          "--log-level",
                          "debug",
                          "--stop-grace-ms",
                          "3000",
                          "--allow-resource",
                          g_trace};
  size_t k = 22;
  if (reason != NULL) {
    argv[k++] = "--shutdown-reason";
    argv[k++] = reason;
  }
  argv[k] = NULL;
  return agent_proc_spawn(argv, log);
}

/* The offset of `line` (a whole line) in text, or -1. */
static long line_at(const char *text, const char *line) {
  size_t len = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && p[len] == '\n')
      return p - text;
  return -1;
}

static dfnet_envelope_t *env_new(void) {
  dfnet_envelope_t *e = calloc(1, sizeof *e);
  assert_non_null(e);
  dfnet_envelope_init(e);
  return e;
}

/* Send a request to the agent and wait for its (single) reply. */
static dfnet_status_t request(dfnet_envelope_t *req, dfnet_envelope_t *reply) {
  dfnet_session_id_t s = peer_wait_session(&g_peer, 0, 10000);
  if (s == 0)
    return DFNET_STATUS_UNAVAILABLE;
  void *bulk = NULL;
  dfnet_status_t st = dfnet_transport_request_sync(g_peer.t, s, req, 30000, reply, &bulk);
  free(bulk);
  return st;
}

/* DriverStart of the lifecycle driver with config `config` (an object's members); OK with
 * *dh and *pid on DriverStatus RUNNING, else the Status code. */
static dfnet_status_t start_lifecycle(const char *node, uint64_t colocate, const char *config,
                                      uint64_t *dh, uint32_t *pid) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &req->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", node);
  snprintf(m->url, sizeof m->url, "%s", g_pkg.url);
  memcpy(m->package_digest, g_pkg.digest, 32);
  snprintf(m->binary, sizeof m->binary, "driver/lifecycle.so");
  m->driver_host_id = colocate;
  /* the trace, written through the descriptor the agent hands (tests/drivers/test_file.h) */
  char program[1024];
  snprintf(program, sizeof program,
           "{\"runner\": \"driver\", \"config\": {%s}, "
           "\"resources\": [{\"path\": \"%s\", \"access\": \"rw\"}]}",
           config, g_trace);
  req->bulk.data = (const uint8_t *)program;
  req->bulk.size = strlen(program);
  dfnet_status_t st = request(req, rep);
  if (st == DFNET_STATUS_OK) {
    if (rep->pb.which_msg == dfnet_v1_Envelope_driver_status_tag &&
        rep->pb.msg.driver_status.state == dfnet_v1_DriverState_RUNNING) {
      *dh = rep->pb.msg.driver_status.driver_host_id;
      *pid = rep->pb.msg.driver_status.pid;
    } else {
      st = rep->pb.which_msg == dfnet_v1_Envelope_status_tag
               ? (dfnet_status_t)rep->pb.msg.status.code
               : DFNET_STATUS_INTERNAL;
    }
  }
  free(req);
  free(rep);
  return st;
}

/* DriverSuspend{flags} or DriverResume of node; the Status code (message into msg). */
static dfnet_status_t control(const char *node, bool resume, uint32_t flags, char *msg,
                              size_t cap) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  if (resume) {
    req->pb.which_msg = dfnet_v1_Envelope_driver_resume_tag;
    snprintf(req->pb.msg.driver_resume.node, sizeof req->pb.msg.driver_resume.node, "%s", node);
  } else {
    req->pb.which_msg = dfnet_v1_Envelope_driver_suspend_tag;
    snprintf(req->pb.msg.driver_suspend.node, sizeof req->pb.msg.driver_suspend.node, "%s", node);
    req->pb.msg.driver_suspend.flags = flags;
  }
  dfnet_status_t st = request(req, rep);
  if (st == DFNET_STATUS_OK)
    st = rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? (dfnet_status_t)rep->pb.msg.status.code
                                                           : DFNET_STATUS_INTERNAL;
  if (msg != NULL) {
    const char *text =
        rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? rep->pb.msg.status.message : "";
    size_t n = strnlen(text, cap - 1);
    memcpy(msg, text, n);
    msg[n] = '\0';
  }
  free(req);
  free(rep);
  return st;
}

/* A Ping of the lifecycle driver on node: the Reply's code. */
static dfnet_status_t ping(const char *node) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(req->pb.msg.call.target, sizeof req->pb.msg.call.target, "%s", node);
  snprintf(req->pb.msg.call.method, sizeof req->pb.msg.call.method, "/dfnet.test.Lifecycle/Ping");
  req->pb.msg.call.deadline_ms = 10000;
  dfnet_status_t st = request(req, rep);
  if (st == DFNET_STATUS_OK)
    st = rep->pb.which_msg == dfnet_v1_Envelope_reply_tag ? (dfnet_status_t)rep->pb.msg.reply.code
                                                          : DFNET_STATUS_INTERNAL;
  free(req);
  free(rep);
  return st;
}

/* ListDriverHosts: the items and the closing Status. */
typedef struct list {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  dfnet_status_t status;
  dfnet_v1_DriverHostInfo items[8];
  size_t count;
  size_t other; /* envelopes that were neither */
} list_t;

static void on_list_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  list_t *l = user;
  pthread_mutex_lock(&l->mu);
  if (reply != NULL && reply->pb.which_msg == dfnet_v1_Envelope_driver_host_info_tag) {
    if (l->count < 8)
      l->items[l->count++] = reply->pb.msg.driver_host_info;
  } else if (reply != NULL && reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    status = (dfnet_status_t)reply->pb.msg.status.code;
  } else if (reply != NULL) {
    l->other++;
  }
  if (last) {
    l->done = true;
    l->status = status;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
}

static void list_driver_hosts(const char *host, list_t *l) {
  memset(l, 0, sizeof *l);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  dfnet_envelope_t *req = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_list_driver_hosts_tag;
  snprintf(req->pb.msg.list_driver_hosts.host, sizeof req->pb.msg.list_driver_hosts.host, "%s",
           host);
  dfnet_request_opts_t opts = {
      .deadline_ms = 10000, .streaming = true, .on_reply = on_list_reply, .user = l};
  assert_int_equal(
      dfnet_transport_request(g_peer.t, peer_wait_session(&g_peer, 0, 10000), req, &opts, 0, NULL),
      DFNET_STATUS_OK);
  free(req);
  pthread_mutex_lock(&l->mu);
  while (!l->done)
    pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
}

static bool has_string(const char (*list)[512], pb_size_t n, const char *s) {
  for (pb_size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

/* Is there a resource "<node> <name> <path>" in info with this node and name, its path
 * ending with `tail`? */
static bool has_resource(const dfnet_v1_DriverHostInfo *info, const char *node, const char *name,
                         const char *tail) {
  char head[600];
  snprintf(head, sizeof head, "%s %s /", node, name);
  for (pb_size_t i = 0; i < info->resources_count; i++) {
    const char *r = info->resources[i];
    size_t len = strlen(r);
    if (strncmp(r, head, strlen(head)) == 0 && len >= strlen(tail) &&
        strcmp(r + len - strlen(tail), tail) == 0)
      return true;
  }
  return false;
}

/* Start the peer and the agent; wait until the agent announced PARENT. */
static pid_t begin(const char *reason, size_t *from) {
  assert_int_equal(peer_start(&g_peer, 0), 0);
  *from = peer_count(&g_peer);
  pid_t agent = spawn_agent(reason, g_log);
  assert_true(agent > 0);
  size_t at = *from;
  assert_true(
      peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, PARENT, &at, 15000) >= 0);
  return agent;
}

static bool is_exit_of(const peer_rec_t *r, const void *dh) {
  return r->m.driver_host_exit.driver_host_id == *(const uint64_t *)dh;
}

/* ---- setup ------------------------------------------------------------------------------ */

static int group_setup(void **state) {
  (void)state;
  /* the agent's driver hosts run sandboxed, as the driver user (dfnet-host's default) */
  if (!test_driver_user_ensure())
    return -1;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-host-lifecycle-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return -1;
  snprintf(g_state, sizeof g_state, "%s/state", g_dir);
  snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
  snprintf(g_cache, sizeof g_cache, "%s/cache", g_dir);
  snprintf(g_log, sizeof g_log, "%s/agent.log", g_dir);
  snprintf(g_trace, sizeof g_trace, "%s/trace", g_dir);
  if (dfnet_pki_init_state_dir(g_state, "manager", NULL, 0, NULL) != DFNET_STATUS_OK ||
      dfnet_pki_issue_to_dir(g_state, DFNET_PKI_ROLE_HOST, "lab-a", g_certs, NULL, 0, 30) !=
          DFNET_STATUS_OK)
    return -1;
  snprintf(g_host_crt, sizeof g_host_crt, "%s/lab-a.crt", g_certs);
  snprintf(g_host_key, sizeof g_host_key, "%s/lab-a.key", g_certs);
  snprintf(g_ca, sizeof g_ca, "%s/ca.crt", g_certs);
  if (make_pkg() != 0)
    return -1;
  char mcrt[400], mkey[400], ca[400];
  snprintf(mcrt, sizeof mcrt, "%s/manager.crt", g_state);
  snprintf(mkey, sizeof mkey, "%s/manager.key", g_state);
  snprintf(ca, sizeof ca, "%s/ca.crt", g_state);
  peer_init(&g_peer, mcrt, mkey, ca);
  peer_add_package(&g_peer, g_pkg.digest, g_pkg.data, g_pkg.size);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  test_child_kill_all();
  if (g_peer.t != NULL)
    peer_stop(&g_peer);
  peer_free(&g_peer);
  free(g_pkg.data);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (getenv("DFNET_KEEP_TMP") == NULL && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
  return 0;
}

/* Each test: a fresh, empty trace (the agent opens it, it creates nothing); the agent and
 * its driver hosts killed if it failed. */
static int test_setup(void **state) {
  (void)state;
  return write_file(g_trace, "", 0);
}

static int test_teardown(void **state) {
  (void)state;
  test_child_kill_all();
  if (g_peer.t != NULL)
    peer_stop(&g_peer);
  return 0;
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_shutdown_reason_usage(void **state) {
  (void)state;
  char out[400];
  snprintf(out, sizeof out, "%s/usage.txt", g_dir);
  pid_t pid = spawn_agent("sleep", out);
  int status = agent_proc_wait_exit(pid, 20000);
  assert_true(status != -1 && WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 2);
  const char *text = agent_proc_slurp(out);
  assert_non_null(strstr(text, "--shutdown-reason sleep: want reboot, poweroff or none"));
  assert_non_null(strchr(text, '\n'));
  assert_null(strchr(strchr(text, '\n') + 1, '\n')); /* one line */

  snprintf(out, sizeof out, "%s/help.txt", g_dir);
  pid = test_child_fork();
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    execl(DFNET_HOST_BIN, DFNET_HOST_BIN, "--help", (char *)NULL);
    _exit(127);
  }
  status = agent_proc_wait_exit(pid, 20000);
  assert_true(status != -1 && WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_non_null(strstr(agent_proc_slurp(out), "--shutdown-reason"));
}

static void check_list(uint64_t dh1, uint32_t pid1, uint64_t dh2, uint32_t pid2) {
  list_t *l = calloc(1, sizeof *l);
  assert_non_null(l);
  list_driver_hosts("", l);
  assert_int_equal(l->status, DFNET_STATUS_OK);
  assert_int_equal(l->other, 0);
  assert_int_equal(l->count, 2);
  const dfnet_v1_DriverHostInfo *a = &l->items[0], *b = &l->items[1];
  assert_int_equal(a->id, dh1);
  assert_int_equal(a->pid, pid1);
  assert_string_equal(a->host, "lab-a");
  assert_true(a->rss_bytes > 0);
  assert_int_equal(a->nodes_count, 2);
  assert_true(has_string(a->nodes, a->nodes_count, PARENT));
  assert_true(has_string(a->nodes, a->nodes_count, COLO));
  assert_int_equal(a->driver_urls_count, 1);
  assert_string_equal(a->driver_urls[0], g_pkg.url);
  /* the agent handed each PCI function's directory and configuration space, and the trace
   * (each start's manifest resource) */
  assert_int_equal(a->resources_count, 6);
  assert_true(has_resource(a, PARENT, g_trace, g_trace));
  assert_true(has_resource(a, COLO, g_trace, g_trace));
  assert_true(has_resource(a, PARENT, "sysfs", "/0000:00:05.0"));
  assert_true(has_resource(a, PARENT, "config", "/0000:00:05.0/config"));
  assert_true(has_resource(a, COLO, "sysfs", "/0000:00:03.0"));
  assert_true(has_resource(a, COLO, "config", "/0000:00:03.0/config"));
  assert_int_equal(b->id, dh2);
  assert_int_equal(b->pid, pid2);
  assert_true(b->rss_bytes > 0);
  assert_int_equal(b->nodes_count, 1);
  assert_string_equal(b->nodes[0], OTHER);
  assert_int_equal(b->resources_count, 3);
  /* confined, as the driver user */
  assert_true(a->sandboxed && b->sandboxed);
  assert_true(has_resource(b, OTHER, "config", "/0000:00:04.0/config"));
  /* another host's driver hosts: none here */
  list_driver_hosts("lab-b", l);
  assert_int_equal(l->status, DFNET_STATUS_OK);
  assert_int_equal(l->count, 0);
  free(l);
}

static void test_control_and_list(void **state) {
  (void)state;
  size_t from;
  pid_t agent = begin(NULL, &from);
  char config[600], msg[256];
  snprintf(config, sizeof config, "\"trace\": \"%s\"", g_trace);
  uint64_t dh1 = 0, dh2 = 0, dh_colo = 0;
  uint32_t pid1 = 0, pid2 = 0, pid_colo = 0;
  assert_int_equal(start_lifecycle(PARENT, 0, config, &dh1, &pid1), DFNET_STATUS_OK);
  assert_int_equal(start_lifecycle(COLO, dh1, config, &dh_colo, &pid_colo), DFNET_STATUS_OK);
  assert_int_equal(dh_colo, dh1);
  assert_int_equal(start_lifecycle(OTHER, 0, config, &dh2, &pid2), DFNET_STATUS_OK);
  assert_true(dh2 > dh1);

  /* Suspend: relayed, the hook runs with the flags, calls then end UNAVAILABLE. */
  assert_int_equal(control(PARENT, false, DFNET_SUSPEND_FLAG_REBOOT, msg, sizeof msg),
                   DFNET_STATUS_OK);
  assert_true(line_at(agent_proc_slurp(g_trace), "suspend " PARENT " 0xdcdc0100") >= 0);
  assert_int_equal(ping(PARENT), DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(ping(COLO), DFNET_STATUS_OK);
  assert_int_equal(control(PARENT, false, DFNET_SUSPEND_FLAG_REBOOT, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(msg, "suspended already")); /* the driver host's answer */
  assert_int_equal(control(PARENT, true, 0, msg, sizeof msg), DFNET_STATUS_OK);
  assert_true(line_at(agent_proc_slurp(g_trace), "resume " PARENT) >= 0);
  assert_int_equal(ping(PARENT), DFNET_STATUS_OK);
  assert_int_equal(control(PARENT, true, 0, msg, sizeof msg), DFNET_STATUS_FAILED_PRECONDITION);

  /* Answered by the agent itself. */
  assert_int_equal(control(NO_DRIVER, false, 0, msg, sizeof msg), DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(control("dev.lab-a.nothing", false, 0, msg, sizeof msg), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(control(NO_DRIVER, true, 0, msg, sizeof msg), DFNET_STATUS_FAILED_PRECONDITION);

  check_list(dh1, pid1, dh2, pid2);

  /* A dead driver host: UNAVAILABLE. */
  assert_int_equal(kill((pid_t)pid2, SIGKILL), 0);
  size_t at = from;
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_driver_host_exit_tag, is_exit_of, &dh2, &at,
                        10000) >= 0);
  assert_int_equal(control(OTHER, false, DFNET_SUSPEND_FLAG_REBOOT, msg, sizeof msg),
                   DFNET_STATUS_UNAVAILABLE);

  /* SIGTERM without --shutdown-reason: the drivers stop, none is suspended. */
  size_t suspends = 0;
  for (const char *p = agent_proc_slurp(g_trace); (p = strstr(p, "suspend ")) != NULL; p++)
    suspends++;
  agent_proc_terminate(agent, g_log);
  const char *trace = agent_proc_slurp(g_trace);
  assert_true(line_at(trace, "stop " PARENT) >= 0);
  assert_true(line_at(trace, "stop " COLO) >= 0);
  size_t after = 0;
  for (const char *p = trace; (p = strstr(p, "suspend ")) != NULL; p++)
    after++;
  assert_int_equal(after, suspends);
  peer_stop(&g_peer);
}

/* The parent (it adds KID while starting) and KID's driver in another driver host. */
static void start_pair(size_t from, const char *kid_extra) {
  char config[600];
  uint64_t dh = 0, dh_kid = 0;
  uint32_t pid = 0, pid_kid = 0;
  snprintf(config, sizeof config, "\"child\": \"kid\", \"trace\": \"%s\"", g_trace);
  assert_int_equal(start_lifecycle(PARENT, 0, config, &dh, &pid), DFNET_STATUS_OK);
  size_t at = from;
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, KID, &at, 10000) >=
              0);
  snprintf(config, sizeof config, "\"trace\": \"%s\"%s", g_trace, kid_extra);
  /* the agent learns the child once the peer's Status reached it: retry briefly */
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  for (int i = 0; i < 50 && st == DFNET_STATUS_NOT_FOUND; i++) {
    st = start_lifecycle(KID, 0, config, &dh_kid, &pid_kid);
    if (st == DFNET_STATUS_NOT_FOUND)
      agent_proc_sleep_ms(20);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
  assert_true(dh_kid != dh);
}

static void test_shutdown_reboot(void **state) {
  (void)state;
  size_t from;
  pid_t agent = begin("reboot", &from);
  start_pair(from, ", \"stop_delay_ms\": 300"); /* its stop takes a while */
  /* While the agent stops, what the manager asks (but Cancel and StreamCredit) is answered
   * UNAVAILABLE (host/agent/dispatch.c): asked once the child's suspend shows it stopping. */
  assert_int_equal(kill(agent, SIGTERM), 0);
  for (int i = 0; i < 1000 && line_at(agent_proc_slurp(g_trace), "suspend " KID " 0xdcdc0100") < 0;
       i++)
    agent_proc_sleep_ms(10);
  list_t stopping;
  list_driver_hosts("", &stopping);
  assert_int_equal(stopping.status, DFNET_STATUS_UNAVAILABLE);
  agent_proc_terminate(agent, g_log); /* a second SIGTERM changes nothing; waits for the exit */
  const char *trace = agent_proc_slurp(g_trace);
  long kid = line_at(trace, "suspend " KID " 0xdcdc0100");
  long parent = line_at(trace, "suspend " PARENT " 0xdcdc0100");
  long first_stop = -1;
  const char *stops[] = {"prepare_stop " KID, "stop " KID, "prepare_stop " PARENT, "stop " PARENT};
  for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
    long at = line_at(trace, stops[i]);
    if (at < 0)
      fail_msg("no \"%s\" in the trace:\n%s", stops[i], trace);
    if (first_stop < 0 || at < first_stop)
      first_stop = at;
  }
  if (kid < 0 || parent < 0 || !(kid < parent) || !(parent < first_stop))
    fail_msg("want the child suspended, then the parent, then the stops:\n%s", trace);
  /* the stops keep the stop order: the child's driver has stopped before its parent's
   * prepare_stop (the driver hosts were not all closed at once) */
  if (!(line_at(trace, "stop " KID) < line_at(trace, "prepare_stop " PARENT)))
    fail_msg("want the child stopped before its parent's stop begins:\n%s", trace);
  peer_stop(&g_peer);
}

static void test_shutdown_child_fails(void **state) {
  (void)state;
  size_t from;
  pid_t agent = begin("poweroff", &from);
  start_pair(from, ", \"suspend_status\": \"INTERNAL\"");
  agent_proc_terminate(agent, g_log);
  const char *trace = agent_proc_slurp(g_trace);
  if (line_at(trace, "suspend " KID " 0xdcdc0200") < 0 || strstr(trace, "suspend " PARENT " ") ||
      line_at(trace, "stop " KID) < 0 || line_at(trace, "stop " PARENT) < 0)
    fail_msg("want the child's suspend (failing), no parent suspend, both stopped:\n%s", trace);
  peer_stop(&g_peer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_shutdown_reason_usage, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_control_and_list, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_reboot, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_child_fails, test_setup, test_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
