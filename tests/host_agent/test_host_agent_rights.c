/* dfnet-host and driver rights (issue 22 items 2 and 4; docs/architecture.md "Driver rights
 * on a host" and "Confinement"), against the scripted manager-side peer (peer.h: the real
 * transport server, real certificates), with the real dfnet-driver-host and the echo test
 * driver packed as a package. The DriverStarts carry the program blocks the manager would
 * send, each with its own "rights".
 *
 * test_rights_usage      --allow-right with a typo (the nearest right suggested), a driver
 *                        user that does not exist (the three ways out), uid 0 as driver
 *                        user, a driver host executable the driver user cannot run: exit 2
 *                        and one line each; --help lists the options.
 * test_rights_sandboxed  the default: Hello.sandboxed; a driver asking for a right the host
 *                        does not allow is refused PERMISSION_DENIED before anything is
 *                        spawned, logged once, while another driver keeps answering; a
 *                        driver colocated into a driver host with fewer rights is refused
 *                        FAILED_PRECONDITION, one with a subset starts; ListDriverHosts
 *                        gives each driver host's uid (the driver user as root), sandboxed
 *                        and its rights; /proc/<pid>/status of a driver host shows it
 *                        confined (NoNewPrivs 1, Seccomp 2, no capability, the driver
 *                        user's uid); the cache is 0711, an unpacked package 0755 / 0644.
 * test_rights_no_sandbox --no-sandbox: a loud warning, Hello.sandboxed false, no right
 *                        checked (a driver asking for inet and usb starts), ListDriverHosts
 *                        says unsandboxed with the agent's own uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
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
#include "lib/package.h"
#include "lib/pki.h"
#include "peer.h"

#define NODE(n) "dev.lab-a.pci.00_0" #n "_0"
#define ECHO "/dfnet.test.Echo/Echo"

static char g_dir[256], g_state[300], g_certs[300], g_cache[300], g_log[300];
static size_t g_from; /* the peer's record when the test began */
static char g_host_crt[400], g_host_key[400], g_ca[400];
static peer_t g_peer;
static struct {
  uint8_t *data;
  size_t size;
  uint8_t digest[32];
  char hex[65];
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
  FILE *out = fopen(to, "wb");
  if (out == NULL) {
    fclose(in);
    return -1;
  }
  static char buf[1 << 16];
  size_t n;
  bool ok = true;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    ok = ok && fwrite(buf, 1, n, out) == n;
  ok = ok && !ferror(in);
  fclose(in);
  return fclose(out) == 0 && ok ? 0 : -1;
}

/* The echo driver as a package: <g_dir>/pkg/echo/{meta/echo.json, driver/echo.so}. */
static int make_pkg(void) {
  char path[700];
  const char *dirs[] = {"pkg", "pkg/echo", "pkg/echo/meta", "pkg/echo/driver"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", g_dir, dirs[i]);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return -1;
  }
  static const char manifest[] =
      "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/echo.so\", "
      "\"bind\": \"meta/bind/echo.bindbc\", \"colocate\": \"false\"}}\n";
  snprintf(path, sizeof path, "%s/pkg/echo/meta/echo.json", g_dir);
  if (write_file(path, manifest, sizeof manifest - 1) != 0)
    return -1;
  snprintf(path, sizeof path, "%s/pkg/echo/driver/echo.so", g_dir);
  if (copy_file(DFNET_ECHO_SO, path) != 0)
    return -1;
  snprintf(path, sizeof path, "%s/pkg/echo", g_dir);
  dfnet_package_buf_t buf = {0};
  char err[256];
  if (dfnet_package_pack_dir(path, &buf, err, sizeof err) != DFNET_STATUS_OK)
    return -1;
  g_pkg.data = buf.data;
  g_pkg.size = buf.size;
  dfnet_package_digest(g_pkg.data, g_pkg.size, g_pkg.digest);
  dfnet_package_digest_hex(g_pkg.digest, g_pkg.hex);
  return dfnet_package_url("echo", g_pkg.digest, g_pkg.url, sizeof g_pkg.url) == DFNET_STATUS_OK
             ? 0
             : -1;
}

/* The agent against the peer on the captured sysfs with `extra` arguments (NULL-terminated),
 * logging to `log`. */
static pid_t spawn_agent(const char *const *extra, const char *log) {
  char url[64];
  /* no peer (a usage test): a well-formed URL all the same */
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", g_peer.port != 0 ? (unsigned)g_peer.port : 9u);
  const char *argv[40] = {DFNET_HOST_BIN,
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
                          "--driver-host",
                          DFNET_DRIVER_HOST_BIN,
                          "--log-level",
                          "debug",
                          "--stop-grace-ms",
                          "3000"};
  size_t k = 18;
  bool cache_given = false;
  for (size_t i = 0; extra != NULL && extra[i] != NULL && k < 37; i++) {
    cache_given = cache_given || strcmp(extra[i], "--cache-dir") == 0;
    argv[k++] = extra[i];
  }
  if (!cache_given) {
    argv[k++] = "--cache-dir";
    argv[k++] = g_cache;
  }
  argv[k] = NULL;
  return agent_proc_spawn(argv, log);
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

/* DriverStart of echo on node with `rights` (the program's "rights" JSON array, NULL: none
 * given), colocated in driver host `colocate` (0: a new one). OK with *dh and *pid on
 * DriverStatus RUNNING, else the Status code with its message in msg[cap]. */
static dfnet_status_t start_echo(const char *node, const char *rights, uint64_t colocate,
                                 uint64_t *dh, uint32_t *pid, char *msg, size_t cap) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &req->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", node);
  snprintf(m->url, sizeof m->url, "%s", g_pkg.url);
  memcpy(m->package_digest, g_pkg.digest, 32);
  snprintf(m->binary, sizeof m->binary, "driver/echo.so");
  m->driver_host_id = colocate;
  char program[512];
  snprintf(program, sizeof program, "{\"runner\": \"driver\", \"colocate\": \"%s\"%s%s}",
           colocate != 0 ? "true" : "false", rights != NULL ? ", \"rights\": " : "",
           rights != NULL ? rights : "");
  req->bulk.data = (const uint8_t *)program;
  req->bulk.size = strlen(program);
  msg[0] = '\0';
  dfnet_status_t st = request(req, rep);
  if (st == DFNET_STATUS_OK) {
    if (rep->pb.which_msg == dfnet_v1_Envelope_driver_status_tag &&
        rep->pb.msg.driver_status.state == dfnet_v1_DriverState_RUNNING) {
      *dh = rep->pb.msg.driver_status.driver_host_id;
      *pid = rep->pb.msg.driver_status.pid;
    } else if (rep->pb.which_msg == dfnet_v1_Envelope_status_tag) {
      st = (dfnet_status_t)rep->pb.msg.status.code;
      snprintf(msg, cap, "%s", rep->pb.msg.status.message);
    } else {
      st = DFNET_STATUS_INTERNAL;
    }
  }
  free(req);
  free(rep);
  return st;
}

/* An Echo call to node's driver: the Reply's code. */
static dfnet_status_t echo(const char *node) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(req->pb.msg.call.target, sizeof req->pb.msg.call.target, "%s", node);
  snprintf(req->pb.msg.call.method, sizeof req->pb.msg.call.method, ECHO);
  req->pb.msg.call.deadline_ms = 10000;
  req->bulk.data = (const uint8_t *)"hi";
  req->bulk.size = 2;
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
  dfnet_v1_DriverHostInfo items[4];
  size_t count;
} list_t;

static void on_list_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  list_t *l = user;
  pthread_mutex_lock(&l->mu);
  if (reply != NULL && reply->pb.which_msg == dfnet_v1_Envelope_driver_host_info_tag &&
      l->count < 4)
    l->items[l->count++] = reply->pb.msg.driver_host_info;
  else if (reply != NULL && reply->pb.which_msg == dfnet_v1_Envelope_status_tag)
    status = (dfnet_status_t)reply->pb.msg.status.code;
  if (last) {
    l->done = true;
    l->status = status;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
}

static void list_driver_hosts(list_t *l) {
  memset(l, 0, sizeof *l);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  dfnet_envelope_t *req = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_list_driver_hosts_tag;
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
  assert_int_equal(l->status, DFNET_STATUS_OK);
}

static const dfnet_v1_DriverHostInfo *list_find(const list_t *l, uint64_t dh) {
  for (size_t i = 0; i < l->count; i++)
    if (l->items[i].id == dh)
      return &l->items[i];
  fail_msg("driver host %llu not listed", (unsigned long long)dh);
  return NULL;
}

/* The value of `field` ("Seccomp:") in /proc/<pid>/status, first word, into out[cap]. */
static void proc_status(pid_t pid, const char *field, char *out, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  const char *text = agent_proc_slurp(path);
  const char *at = strstr(text, field);
  if (at == NULL)
    fail_msg("%s has no %s", path, field);
  at += strlen(field);
  at += strspn(at, " \t");
  size_t n = strcspn(at, " \t\n");
  snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), at);
}

/* Hello.sandboxed of this test's agent, once it has announced its nodes (welcomed: it
 * takes DriverStarts). */
static bool hello_sandboxed(void) {
  size_t from = g_from;
  long hi = peer_wait(&g_peer, dfnet_v1_Envelope_hello_tag, NULL, NULL, &from, 15000);
  assert_true(hi >= 0);
  peer_rec_t *r = calloc(1, sizeof *r);
  assert_non_null(r);
  assert_true(peer_get(&g_peer, (size_t)hi, r));
  bool sandboxed = r->m.hello.sandboxed;
  free(r);
  assert_true(
      peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, NODE(5), &from, 15000) >= 0);
  return sandboxed;
}

/* The uid driver hosts run as: the driver user's when the test runs as root. */
static uid_t driver_uid(void) {
  if (geteuid() != 0)
    return geteuid();
  struct passwd *pw = getpwnam("dfnet-driver");
  assert_non_null(pw);
  return pw->pw_uid;
}

/* ---- setup --------------------------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  if (geteuid() == 0)
    test_driver_user_ensure();
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-host-rights-XXXXXX");
  /* the driver user passes through to the cache inside */
  if (mkdtemp(g_dir) == NULL || chmod(g_dir, 0755) != 0)
    return -1;
  snprintf(g_state, sizeof g_state, "%s/state", g_dir);
  snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
  snprintf(g_cache, sizeof g_cache, "%s/cache", g_dir);
  snprintf(g_log, sizeof g_log, "%s/agent.log", g_dir);
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

/* Each test against a fresh peer and an empty cache; the agent killed if it failed. */
static int test_setup(void **state) {
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_cache);
  if (system(cmd) != 0)
    return -1;
  static int n;
  snprintf(g_log, sizeof g_log, "%s/agent-%d.log", g_dir, ++n); /* kept per test */
  g_from = peer_count(&g_peer);
  return peer_start(&g_peer, 0);
}

static int test_teardown(void **state) {
  (void)state;
  test_child_kill_all();
  if (g_peer.t != NULL)
    peer_stop(&g_peer);
  return 0;
}

/* ---- usage ------------------------------------------------------------------------------ */

/* Run the agent with `extra`; it must exit 2 with one line holding `expect`. */
static void expect_usage(const char *name, const char *const *extra, const char *expect) {
  char out[400];
  snprintf(out, sizeof out, "%s/usage.txt", g_dir);
  unlink(out);
  pid_t pid = spawn_agent(extra, out);
  assert_true(pid > 0);
  int status = agent_proc_wait_exit(pid, 20000);
  const char *text = agent_proc_slurp(out);
  size_t lines = 0;
  for (const char *p = text; *p != '\0'; p++)
    lines += *p == '\n';
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 2 || lines != 1 ||
      strstr(text, expect) == NULL) {
    if (status == -1)
      kill(pid, SIGKILL);
    fail_msg("case \"%s\": status %d, %zu lines:\n%s\nwanted exit 2 and one line holding \"%s\"",
             name, status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, lines, text,
             expect);
  }
}

static void test_rights_usage(void **state) {
  (void)state;
  const char *typo[] = {"--allow-right", "inet", "--allow-right", "inetz", NULL};
  expect_usage("typo", typo,
               "--allow-right inetz: unknown right \"inetz\" (did you mean \"inet\"?)");
  const char *empty[] = {"--allow-right", "", NULL};
  expect_usage("empty right", empty, "--allow-right");
  if (geteuid() == 0) {
    const char *nobody[] = {"--driver-user", "dfnet-no-such-user", NULL};
    expect_usage("missing user", nobody,
                 "driver user dfnet-no-such-user does not exist: create it (useradd --system "
                 "--no-create-home --shell /usr/sbin/nologin dfnet-no-such-user), name another "
                 "with --driver-user, or run drivers unconfined with --no-sandbox");
    const char *root[] = {"--driver-user", "root", NULL};
    expect_usage("root as driver user", root, "--driver-user root: uid 0");
    /* a driver host only its owner may execute: the driver user cannot run it (a
     * directory above it that only root may pass does not matter: the supervisor execs it
     * by a descriptor, test_driver_sandbox) */
    char private_dir[400], exe[450];
    snprintf(private_dir, sizeof private_dir, "%s/private", g_dir);
    snprintf(exe, sizeof exe, "%s/dfnet-driver-host", private_dir);
    assert_true(mkdir(private_dir, 0700) == 0 || errno == EEXIST);
    assert_int_equal(chmod(private_dir, 0700), 0);
    assert_int_equal(copy_file(DFNET_DRIVER_HOST_BIN, exe), 0);
    assert_int_equal(chmod(exe, 0700), 0);
    const char *hidden[] = {"--driver-host", exe, NULL};
    expect_usage("driver host not executable", hidden, "cannot run it: it is mode 0700");
  }
  char out[400];
  snprintf(out, sizeof out, "%s/help.txt", g_dir);
  unlink(out);
  const char *help[] = {"--help", NULL};
  pid_t pid = spawn_agent(help, out);
  int status = agent_proc_wait_exit(pid, 10000);
  assert_true(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const char *text = agent_proc_slurp(out);
  assert_non_null(strstr(text, "--allow-right RIGHT"));
  assert_non_null(strstr(text, "--driver-user NAME"));
  assert_non_null(strstr(text, "--no-sandbox"));
  /* the default --allow-resource globs: the RNG and hw_random's current source */
  assert_non_null(strstr(text, "/dev/hwrng"));
  assert_non_null(strstr(text, "/sys/class/misc/hw_random/rng_current"));
}

/* ---- sandboxed (the default) ------------------------------------------------------------ */

/* What a confined driver host's /proc/<pid>/status says (docs/architecture.md
 * "Confinement"). */
static void check_confined(pid_t pid) {
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
}

/* The cache's modes: the directory 0711, an unpacked package 0755 with 0644 files. */
static void check_cache_modes(void) {
  struct stat sb;
  char path[700];
  assert_int_equal(stat(g_cache, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0711);
  snprintf(path, sizeof path, "%s/%s", g_cache, g_pkg.hex);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0755);
  snprintf(path, sizeof path, "%s/%s/meta/echo.json", g_cache, g_pkg.hex);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0644);
}

static void test_rights_sandboxed(void **state) {
  (void)state;
  const char *args[] = {"--allow-right", "exec", NULL};
  pid_t agent = spawn_agent(args, g_log);
  assert_true(agent > 0);
  assert_true(hello_sandboxed());
  char msg[512], want[700];
  uint64_t dh1 = 0, dh2 = 0, dh = 0;
  uint32_t pid1 = 0, pid2 = 0, pid = 0;

  /* a right this host does not allow: refused before anything is spawned, logged once */
  assert_int_equal(start_echo(NODE(0), "[\"inet\"]", 0, &dh, &pid, msg, sizeof msg),
                   DFNET_STATUS_PERMISSION_DENIED);
  snprintf(want, sizeof want,
           "driver %s needs the right inet, which this host does not allow (dfnet-host "
           "--allow-right inet)",
           g_pkg.url);
  assert_string_equal(msg, want);
  assert_int_equal(agent_proc_log_count(g_log, want), 1);
  assert_int_equal(agent_proc_log_count(g_log, "spawned"), 0);

  /* another driver starts and answers */
  assert_int_equal(start_echo(NODE(1), NULL, 0, &dh1, &pid1, msg, sizeof msg), DFNET_STATUS_OK);
  assert_int_equal(echo(NODE(1)), DFNET_STATUS_OK);
  check_cache_modes();

  /* colocated into a driver host started without exec: refused, the host carries on */
  assert_int_equal(start_echo(NODE(2), "[\"exec\"]", dh1, &dh, &pid, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  snprintf(want, sizeof want, "driver %s needs the right exec, which driver host %llu", g_pkg.url,
           (unsigned long long)dh1);
  if (strstr(msg, want) == NULL || strstr(msg, "(it has: none)") == NULL)
    fail_msg("colocation refused with \"%s\"", msg);
  assert_int_equal(echo(NODE(1)), DFNET_STATUS_OK);

  /* exec is allowed: a driver host with it; a driver without rights may join it */
  assert_int_equal(start_echo(NODE(3), "[\"exec\"]", 0, &dh2, &pid2, msg, sizeof msg),
                   DFNET_STATUS_OK);
  assert_int_equal(start_echo(NODE(4), "[]", dh2, &dh, &pid, msg, sizeof msg), DFNET_STATUS_OK);
  assert_int_equal(dh, dh2);
  assert_int_equal(echo(NODE(4)), DFNET_STATUS_OK);

  list_t *l = calloc(1, sizeof *l);
  assert_non_null(l);
  list_driver_hosts(l);
  assert_int_equal(l->count, 2);
  const dfnet_v1_DriverHostInfo *a = list_find(l, dh1), *b = list_find(l, dh2);
  assert_true(a->sandboxed && b->sandboxed);
  assert_int_equal(a->uid, driver_uid());
  assert_int_equal(b->uid, driver_uid());
  assert_int_equal(a->rights_count, 0);
  assert_int_equal(b->rights_count, 1);
  assert_string_equal(b->rights[0], "exec");
  free(l);

  check_confined((pid_t)pid1);
  check_confined((pid_t)pid2);
  agent_proc_terminate(agent, g_log);
}

/* ---- --no-sandbox ------------------------------------------------------------------------ */

static void test_rights_no_sandbox(void **state) {
  (void)state;
  /* the driver user is not looked up: a missing one changes nothing */
  const char *args[] = {"--no-sandbox", "--driver-user", "dfnet-no-such-user", NULL};
  pid_t agent = spawn_agent(args, g_log);
  assert_true(agent > 0);
  assert_false(hello_sandboxed());
  assert_int_equal(
      agent_proc_log_count(g_log, "SANDBOX OFF (--no-sandbox): driver hosts run UNCONFINED"), 1);
  char msg[512];
  uint64_t dh = 0;
  uint32_t pid = 0;
  /* nothing is confined: no right is checked */
  assert_int_equal(start_echo(NODE(0), "[\"inet\", \"usb\"]", 0, &dh, &pid, msg, sizeof msg),
                   DFNET_STATUS_OK);
  assert_int_equal(echo(NODE(0)), DFNET_STATUS_OK);
  list_t *l = calloc(1, sizeof *l);
  assert_non_null(l);
  list_driver_hosts(l);
  assert_int_equal(l->count, 1);
  assert_false(l->items[0].sandboxed);
  assert_int_equal(l->items[0].uid, geteuid());
  assert_int_equal(l->items[0].rights_count, 2);
  assert_string_equal(l->items[0].rights[0], "inet");
  assert_string_equal(l->items[0].rights[1], "usb");
  free(l);
  char v[64], uid[32];
  proc_status((pid_t)pid, "Seccomp:", v, sizeof v);
  assert_string_equal(v, "0");
  proc_status((pid_t)pid, "Uid:", v, sizeof v);
  snprintf(uid, sizeof uid, "%u", (unsigned)geteuid());
  assert_string_equal(v, uid);
  agent_proc_terminate(agent, g_log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rights_usage),
      cmocka_unit_test_setup_teardown(test_rights_sandboxed, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_rights_no_sandbox, test_setup, test_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
