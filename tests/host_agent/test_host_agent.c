/* dfnet-host against a scripted manager-side peer (peer.h: the real transport server, real
 * certificates made with lib/pki.h), with the real dfnet-driver-host and the test drivers
 * echo and crasher packed with lib/package.h. Real processes, real TLS on loopback.
 *
 * test_bad_usage        a table of bad command lines and files: exit 2, one line.
 * test_session          Hello and the fixture's NodeAdds (parents first, full monikers,
 *                       key properties); DriverStart with a package cache miss; a call
 *                       through and back; calls to nodes without a driver; colocation;
 *                       a crash (DriverHostExit with SIGSEGV, calls then UNAVAILABLE);
 *                       cache hit; corrupt unpacked .so and corrupt archive (fetched
 *                       again); a child node added by a driver; the manager restarted
 *                       (reconnect, re-announce with driver_url / driver_host_id, the
 *                       driver hosts not restarted); kill -9 of a driver host while
 *                       disconnected (DriverHostExit after the next Welcome, before the
 *                       nodes) and while connected (colocated: both nodes named; its
 *                       driver's child gone; started again); SIGTERM (exit 0, no driver
 *                       host left).
 * test_driver_calls     drivers calling drivers (issue 18) with the parent, child and
 *                       forger test drivers: a child in another driver host than its
 *                       parent (unary, caller fields set by the agent, streaming with
 *                       credit, deadline, cancel; nothing through the manager); colocated
 *                       (in the process); a forged caller refused; a source on another host
 *                       (up to the manager, answered there; cancel); the parent stopped
 *                       mid-stream and its driver host killed mid-stream (UNAVAILABLE, the
 *                       client UNAVAILABLE); a calling driver host killed (its call
 *                       cancelled at the parent).
 * test_usb_umockdev     the agent under umockdev-run with a recorded USB tree: the USB
 *                       nodes reach the manager with full monikers, parents first.
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
#include <pthread.h>

#include <cmocka.h>

#include "agent_proc.h"
#include "child.h"
#include "driver_user.h"
#include "dfnet/bind_keys.h"
#include "lib/package.h"
#include "lib/pki.h"
#include "peer.h"

static char g_dir[256];
static char g_state[300], g_certs[300], g_cache[300], g_board[300], g_log[300];
static char g_host_crt[400], g_host_key[400], g_ca[400], g_viewer_crt[400], g_viewer_key[400];
static peer_t g_peer;

typedef struct pkg {
  uint8_t *data;
  size_t size;
  uint8_t digest[32];
  char hex[65];
  char url[256];
} pkg_t;
static pkg_t g_echo, g_crasher, g_parent, g_child, g_forger;

/* ---- helpers ------------------------------------------------------------------------- */

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
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
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  return fclose(out);
}

static int mkdirs(const char *path) {
  char tmp[600];
  int len = snprintf(tmp, sizeof tmp, "%s", path);
  if (len < 0 || (size_t)len >= sizeof tmp)
    return -1;
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      mkdir(tmp, 0755);
      *p = '/';
    }
  }
  return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Lay out a package <g_dir>/pkg/<name>/ with the test driver's .so and pack it. */
static int make_pkg(const char *name, const char *so_path, pkg_t *out) {
  char dir[600], path[700];
  snprintf(dir, sizeof dir, "%s/pkg/%s", g_dir, name);
  snprintf(path, sizeof path, "%s/meta", dir);
  if (mkdirs(path) != 0)
    return -1;
  snprintf(path, sizeof path, "%s/driver", dir);
  if (mkdirs(path) != 0)
    return -1;
  char json[512];
  snprintf(json, sizeof json,
           "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/%s.so\", "
           "\"bind\": \"meta/bind/%s.bindbc\", \"colocate\": \"false\"}}\n",
           name, name);
  snprintf(path, sizeof path, "%s/meta/%s.json", dir, name);
  if (write_text(path, json) != 0)
    return -1;
  snprintf(path, sizeof path, "%s/driver/%s.so", dir, name);
  if (copy_file(so_path, path) != 0)
    return -1;
  dfnet_package_buf_t buf = {0};
  char err[256];
  if (dfnet_package_pack_dir(dir, &buf, err, sizeof err) != DFNET_STATUS_OK) {
    fprintf(stderr, "pack %s: %s\n", dir, err);
    return -1;
  }
  out->data = buf.data;
  out->size = buf.size;
  dfnet_package_digest(out->data, out->size, out->digest);
  dfnet_package_digest_hex(out->digest, out->hex);
  return dfnet_package_url(name, out->digest, out->url, sizeof out->url) == DFNET_STATUS_OK ? 0
                                                                                            : -1;
}

/* Every agent spawned, so that a failed assertion does not leave one running (reconnecting
 * forever) after the test: at exit, the ones still running (not yet reaped) are killed. */

static pid_t spawn_agent_v(const char *const *args, size_t n, const char *stderr_path) {
  const char *argv[64];
  size_t k = 0;
  argv[k++] = DFNET_HOST_BIN;
  for (size_t i = 0; i < n && k < 63; i++)
    argv[k++] = args[i];
  argv[k] = NULL;
  return agent_proc_spawn(argv, stderr_path);
}

/* The agent against the peer, with the fixture, the board and the cache. */
static pid_t spawn_agent(void) {
  char url[64];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)g_peer.port);
  static char sysfs[600];
  snprintf(sysfs, sizeof sysfs, "%s", DFNET_FIXTURES_DIR "/sysfs-virtio-vm");
  const char *args[] = {"--manager",
                        url,
                        "--cert",
                        g_host_crt,
                        "--key",
                        g_host_key,
                        "--ca",
                        g_ca,
                        "--label",
                        "rack=b2",
                        "--sysfs-root",
                        sysfs,
                        "--no-usb",
                        "--board",
                        g_board,
                        "--cache-dir",
                        g_cache,
                        "--driver-host",
                        DFNET_DRIVER_HOST_BIN,
                        "--log-level",
                        "debug",
                        "--stop-grace-ms",
                        "3000"};
  return spawn_agent_v(args, sizeof args / sizeof args[0], g_log);
}

static bool process_alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

static bool wait_gone(pid_t pid, unsigned timeout_ms) {
  for (unsigned waited = 0; waited <= timeout_ms; waited += 20) {
    if (!process_alive(pid))
      return true;
    /* A zombie child of the agent counts as gone once the agent reaped it; check state. */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = '\0';
      char *rp = strrchr(buf, ')');
      if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z')
        return true;
    }
    agent_proc_sleep_ms(20);
  }
  return false;
}

static dfnet_envelope_t *env_new(void) {
  dfnet_envelope_t *e = calloc(1, sizeof *e);
  assert_non_null(e);
  dfnet_envelope_init(e);
  return e;
}

/* Send a request to the agent and wait for its reply. */
static dfnet_status_t request(dfnet_envelope_t *req, dfnet_envelope_t *reply, void **bulk) {
  dfnet_session_id_t s = peer_wait_session(&g_peer, 0, 10000);
  if (s == 0)
    return DFNET_STATUS_UNAVAILABLE;
  return dfnet_transport_request_sync(g_peer.t, s, req, 30000, reply, bulk);
}

/* DriverStart; returns OK with *dh and *pid on DriverStatus RUNNING, else the Status code. */
/* What a DriverStart carries besides the node, the package and colocation. */
typedef struct start_extra {
  const char *source;              /* offered dfnet.test.Echo (default) from this node */
  const char *prop_key, *prop_val; /* one string property */
} start_extra_t;

static dfnet_status_t driver_start_with(const char *node, const pkg_t *pkg, const char *name,
                                        uint64_t colocate, const start_extra_t *extra, uint64_t *dh,
                                        uint32_t *pid) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &req->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", node);
  snprintf(m->url, sizeof m->url, "%s", pkg->url);
  memcpy(m->package_digest, pkg->digest, 32);
  snprintf(m->binary, sizeof m->binary, "driver/%s.so", name);
  m->driver_host_id = colocate;
  if (extra != NULL && extra->source != NULL) {
    m->offered_count = 1;
    snprintf(m->offered[0].service, sizeof m->offered[0].service, "dfnet.test.Echo");
    snprintf(m->offered[0].instance, sizeof m->offered[0].instance, "default");
    snprintf(m->offered[0].source, sizeof m->offered[0].source, "%s", extra->source);
  }
  if (extra != NULL && extra->prop_key != NULL) {
    dfnet_v1_NodeProperty *p = &m->properties[m->properties_count++];
    p->which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(p->key.str_key, sizeof p->key.str_key, "%s", extra->prop_key);
    p->which_value = dfnet_v1_NodeProperty_str_value_tag;
    snprintf(p->value.str_value, sizeof p->value.str_value, "%s", extra->prop_val);
  }
  static const char program[] = "{\"runner\": \"driver\", \"colocate\": \"false\"}";
  req->bulk.data = (const uint8_t *)program;
  req->bulk.size = sizeof program - 1;
  void *bulk = NULL;
  dfnet_status_t st = request(req, rep, &bulk);
  if (st == DFNET_STATUS_OK) {
    if (rep->pb.which_msg == dfnet_v1_Envelope_driver_status_tag &&
        rep->pb.msg.driver_status.state == dfnet_v1_DriverState_RUNNING) {
      assert_string_equal(rep->pb.msg.driver_status.node, node);
      assert_string_equal(rep->pb.msg.driver_status.url, pkg->url);
      if (dh)
        *dh = rep->pb.msg.driver_status.driver_host_id;
      if (pid)
        *pid = rep->pb.msg.driver_status.pid;
    } else if (rep->pb.which_msg == dfnet_v1_Envelope_status_tag) {
      st = (dfnet_status_t)rep->pb.msg.status.code;
      assert_int_not_equal(st, DFNET_STATUS_OK);
    } else {
      st = DFNET_STATUS_INTERNAL;
    }
  }
  free(bulk);
  free(req);
  free(rep);
  return st;
}

static dfnet_status_t driver_start(const char *node, const pkg_t *pkg, const char *name,
                                   uint64_t colocate, uint64_t *dh, uint32_t *pid) {
  return driver_start_with(node, pkg, name, colocate, NULL, dh, pid);
}

/* A DriverStart sent without waiting; its answer lands here. */
typedef struct async_start {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  pb_size_t which;
  dfnet_status_t code;
} async_start_t;

static void on_async_start(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                           bool last) {
  async_start_t *as = user;
  if (!last)
    return;
  pthread_mutex_lock(&as->mu);
  as->done = true;
  as->code = status;
  as->which = reply ? reply->pb.which_msg : 0;
  if (reply != NULL && reply->pb.which_msg == dfnet_v1_Envelope_status_tag)
    as->code = (dfnet_status_t)reply->pb.msg.status.code;
  pthread_cond_broadcast(&as->cv);
  pthread_mutex_unlock(&as->mu);
}

static dfnet_status_t driver_start_async(const char *node, const pkg_t *pkg, const char *name,
                                         async_start_t *as) {
  dfnet_envelope_t *req = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &req->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", node);
  snprintf(m->url, sizeof m->url, "%s", pkg->url);
  memcpy(m->package_digest, pkg->digest, 32);
  snprintf(m->binary, sizeof m->binary, "driver/%s.so", name);
  dfnet_request_opts_t opts = {.deadline_ms = 30000, .on_reply = on_async_start, .user = as};
  dfnet_status_t st =
      dfnet_transport_request(g_peer.t, peer_wait_session(&g_peer, 0, 10000), req, &opts, 0, NULL);
  free(req);
  return st;
}

static dfnet_status_t driver_stop(const char *node, const pkg_t *pkg, uint64_t dh) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
  snprintf(req->pb.msg.driver_stop.node, sizeof req->pb.msg.driver_stop.node, "%s", node);
  snprintf(req->pb.msg.driver_stop.url, sizeof req->pb.msg.driver_stop.url, "%s", pkg->url);
  req->pb.msg.driver_stop.driver_host_id = dh;
  void *bulk = NULL;
  dfnet_status_t st = request(req, rep, &bulk);
  if (st == DFNET_STATUS_OK)
    st = rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? (dfnet_status_t)rep->pb.msg.status.code
                                                           : DFNET_STATUS_INTERNAL;
  free(bulk);
  free(req);
  free(rep);
  return st;
}

/* A unary call; returns the Reply's code; the reply bytes go to out (NUL-terminated). */
static dfnet_status_t call(const char *target, const char *method, const char *payload, char *out,
                           size_t out_size) {
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(req->pb.msg.call.target, sizeof req->pb.msg.call.target, "%s", target);
  snprintf(req->pb.msg.call.method, sizeof req->pb.msg.call.method, "%s", method);
  req->pb.msg.call.deadline_ms = 10000;
  req->bulk.data = (const uint8_t *)payload;
  req->bulk.size = strlen(payload);
  void *bulk = NULL;
  dfnet_status_t st = request(req, rep, &bulk);
  if (out != NULL && out_size > 0)
    out[0] = '\0';
  if (st == DFNET_STATUS_OK) {
    if (rep->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
      assert_true(rep->pb.msg.reply.end_of_stream);
      st = (dfnet_status_t)rep->pb.msg.reply.code;
      if (out != NULL && out_size > 0) {
        size_t n = rep->bulk.size < out_size - 1 ? rep->bulk.size : out_size - 1;
        if (n > 0)
          memcpy(out, rep->bulk.data, n);
        out[n] = '\0';
      }
    } else {
      st = DFNET_STATUS_INTERNAL;
    }
  }
  free(bulk);
  free(req);
  free(rep);
  return st;
}

static const dfnet_v1_NodeProperty *prop_int(const dfnet_v1_NodeAdd *n, uint32_t key) {
  for (pb_size_t i = 0; i < n->properties_count; i++)
    if (n->properties[i].which_key == dfnet_v1_NodeProperty_int_key_tag &&
        n->properties[i].key.int_key == key)
      return &n->properties[i];
  return NULL;
}

static void read_log_tail(void) {
  FILE *f = fopen(g_log, "r");
  if (f == NULL)
    return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size > 6000 ? size - 6000 : 0, SEEK_SET);
  char buf[6001];
  size_t n = fread(buf, 1, 6000, f);
  buf[n] = '\0';
  fclose(f);
  fprintf(stderr, "---- agent log (tail) ----\n%s\n----\n", buf);
}

/* ---- setup --------------------------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  /* the agent's driver hosts run sandboxed, as the driver user (dfnet-host's default) */
  if (!test_driver_user_ensure())
    return -1;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-host-agent-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return -1;
  snprintf(g_state, sizeof g_state, "%s/state", g_dir);
  snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
  snprintf(g_cache, sizeof g_cache, "%s/cache", g_dir);
  snprintf(g_board, sizeof g_board, "%s/board.json", g_dir);
  snprintf(g_log, sizeof g_log, "%s/agent.log", g_dir);
  if (dfnet_pki_init_state_dir(g_state, "manager", NULL, 0, NULL) != DFNET_STATUS_OK ||
      dfnet_pki_issue_to_dir(g_state, DFNET_PKI_ROLE_HOST, "lab-a", g_certs, NULL, 0, 30) !=
          DFNET_STATUS_OK ||
      dfnet_pki_issue_to_dir(g_state, DFNET_PKI_ROLE_VIEWER, "alice", g_certs, NULL, 0, 30) !=
          DFNET_STATUS_OK)
    return -1;
  snprintf(g_host_crt, sizeof g_host_crt, "%s/lab-a.crt", g_certs);
  snprintf(g_host_key, sizeof g_host_key, "%s/lab-a.key", g_certs);
  snprintf(g_ca, sizeof g_ca, "%s/ca.crt", g_certs);
  snprintf(g_viewer_crt, sizeof g_viewer_crt, "%s/alice.crt", g_certs);
  snprintf(g_viewer_key, sizeof g_viewer_key, "%s/alice.key", g_certs);
  if (write_text(g_board,
                 "{\"board\": \"test-board\", \"devices\": [\n"
                 " {\"name\": \"uart0\", \"vid\": 0, \"pid\": 0, \"did\": 28,\n"
                 "  \"resources\": {\"tty\": \"/dev/ttyS0\"}},\n"
                 " {\"name\": \"led\", \"vid\": 1, \"pid\": 2, \"did\": 3}\n"
                 "]}\n") != 0)
    return -1;
  if (make_pkg("echo", DFNET_ECHO_SO, &g_echo) != 0 ||
      make_pkg("crasher", DFNET_CRASHER_SO, &g_crasher) != 0 ||
      make_pkg("parent", DFNET_PARENT_SO, &g_parent) != 0 ||
      make_pkg("child", DFNET_CHILD_SO, &g_child) != 0 ||
      make_pkg("forger", DFNET_FORGER_SO, &g_forger) != 0)
    return -1;
  char mcrt[400], mkey[400], ca[400];
  snprintf(mcrt, sizeof mcrt, "%s/manager.crt", g_state);
  snprintf(mkey, sizeof mkey, "%s/manager.key", g_state);
  snprintf(ca, sizeof ca, "%s/ca.crt", g_state);
  peer_init(&g_peer, mcrt, mkey, ca);
  peer_add_package(&g_peer, g_echo.digest, g_echo.data, g_echo.size);
  peer_add_package(&g_peer, g_crasher.digest, g_crasher.data, g_crasher.size);
  peer_add_package(&g_peer, g_parent.digest, g_parent.data, g_parent.size);
  peer_add_package(&g_peer, g_child.digest, g_child.data, g_child.size);
  peer_add_package(&g_peer, g_forger.digest, g_forger.data, g_forger.size);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  if (g_peer.t != NULL)
    peer_stop(&g_peer);
  peer_free(&g_peer);
  free(g_echo.data);
  free(g_crasher.data);
  free(g_parent.data);
  free(g_child.data);
  free(g_forger.data);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (getenv("DFNET_KEEP_TMP") == NULL && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
  return 0;
}

/* ---- bad usage ------------------------------------------------------------------------- */

typedef struct usage_case {
  const char *name;
  const char *args[16];
  const char *expect; /* a fragment the one line must hold */
} usage_case_t;

#define CERTS "--cert", g_host_crt, "--key", g_host_key, "--ca", g_ca

static void test_bad_usage(void **state) {
  (void)state;
  char junk[400], missing[400];
  snprintf(junk, sizeof junk, "%s/junk.pem", g_dir);
  snprintf(missing, sizeof missing, "%s/no-such.pem", g_dir);
  assert_int_equal(write_text(junk, "this is not a certificate\n"), 0);
  const char *url = "wss://127.0.0.1:9";
  usage_case_t cases[] = {
      {"unknown flag", {"--bogus"}, "unknown option '--bogus' (dfnet-host --help"},
      {"mistyped flag",
       {"--managr", url, CERTS},
       "unknown option '--managr' (did you mean "
       "'--manager'?"},
      {"missing manager", {CERTS}, "--manager is required"},
      {"missing value", {"--manager"}, "--manager needs a value"},
      {"http url", {"--manager", "http://127.0.0.1:7443", CERTS}, "malformed manager URL"},
      {"no port", {"--manager", "wss://127.0.0.1", CERTS}, "malformed manager URL"},
      {"port range", {"--manager", "wss://127.0.0.1:70000", CERTS}, "port must be 1..65535"},
      {"bad host", {"--manager", "wss://a b:1", CERTS}, "malformed manager URL"},
      {"cert missing",
       {"--manager", url, "--cert", missing, "--key", g_host_key, "--ca", g_ca},
       "--cert"},
      {"key missing",
       {"--manager", url, "--cert", g_host_crt, "--key", missing, "--ca", g_ca},
       "--key"},
      {"ca missing",
       {"--manager", url, "--cert", g_host_crt, "--key", g_host_key, "--ca", missing},
       "--ca"},
      {"ca junk",
       {"--manager", url, "--cert", g_host_crt, "--key", g_host_key, "--ca", junk},
       "junk.pem"},
      {"key of another cert",
       {"--manager", url, "--cert", g_host_crt, "--key", g_viewer_key, "--ca", g_ca},
       "pki"},
      {"viewer role",
       {"--manager", url, "--cert", g_viewer_crt, "--key", g_viewer_key, "--ca", g_ca},
       "needs \"host\""},
      {"name mismatch", {"--manager", url, CERTS, "--name", "lab-b"}, "issued to \"lab-a\""},
      {"label", {"--manager", url, CERTS, "--label", "novalue"}, "KEY=VALUE"},
      {"grace range", {"--manager", url, CERTS, "--stop-grace-ms", "5"}, "100..600000"},
      {"log level", {"--manager", url, CERTS, "--log-level", "loud"}, "--log-level"},
      {"board missing", {"--manager", url, CERTS, "--board", missing}, "--board"},
      {"sysfs missing", {"--manager", url, CERTS, "--sysfs-root", missing}, "--sysfs-root"},
      {"driver host missing", {"--manager", url, CERTS, "--driver-host", missing}, "--driver-host"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const usage_case_t *c = &cases[i];
    size_t n = 0;
    while (n < 16 && c->args[n] != NULL)
      n++;
    char out[400];
    snprintf(out, sizeof out, "%s/usage-%zu.txt", g_dir, i);
    unlink(out);
    pid_t pid = spawn_agent_v(c->args, n, out);
    assert_true(pid > 0);
    int status = agent_proc_wait_exit(pid, 20000);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    size_t lines = 0;
    for (size_t k = 0; k < len; k++)
      lines += text[k] == '\n';
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 2 || lines != 1 ||
        strstr(text, c->expect) == NULL) {
      fprintf(stderr, "case \"%s\": status %d, %zu lines:\n%s", c->name,
              status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, lines, text);
      if (status == -1)
        kill(pid, SIGKILL);
      fail_msg("bad usage case \"%s\" did not exit 2 with one line holding \"%s\"", c->name,
               c->expect);
    }
  }
}

/* ---- the session ------------------------------------------------------------------------ */

static const char *const k_pci[] = {"dev.lab-a.pci.00_00_0", "dev.lab-a.pci.00_01_0",
                                    "dev.lab-a.pci.00_02_0", "dev.lab-a.pci.00_03_0",
                                    "dev.lab-a.pci.00_04_0", "dev.lab-a.pci.00_05_0"};

/* Check one session's announcement starting at record *from: Hello, then every fixture
 * node, parents first. Returns the index of the NodeAdd of `want_node` (or -1). */
static long check_announce(size_t *from, const char *want_node) {
  long hi = peer_wait(&g_peer, dfnet_v1_Envelope_hello_tag, NULL, NULL, from, 15000);
  assert_true(hi >= 0);
  peer_rec_t *r = calloc(1, sizeof *r);
  assert_non_null(r);
  assert_true(peer_get(&g_peer, (size_t)hi, r));
  assert_string_equal(r->m.hello.name, "lab-a");
  assert_int_equal(r->m.hello.role, dfnet_v1_Role_HOST);
  assert_int_equal(r->m.hello.protocol_version, DFNET_PROTOCOL_VERSION);
  assert_int_equal(r->m.hello.labels_count, 1);
  assert_string_equal(r->m.hello.labels[0].key, "rack");
  assert_string_equal(r->m.hello.labels[0].value, "b2");
  size_t session_index = r->session_index;

  const char *want[] = {"dev.lab-a.pci", "dev.lab-a.platform", "dev.lab-a.platform.uart0",
                        "dev.lab-a.platform.led"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    size_t at = *from;
    assert_true(
        peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, want[i], &at, 10000) >= 0);
  }
  long want_at = -1;
  for (size_t i = 0; i < sizeof k_pci / sizeof k_pci[0]; i++) {
    size_t at = *from;
    long idx =
        peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, k_pci[i], &at, 10000);
    assert_true(idx >= 0);
    if (want_node != NULL && strcmp(k_pci[i], want_node) == 0)
      want_at = idx;
  }
  /* Parents first, full monikers, all within this session. */
  char seen[64][700];
  size_t nseen = 0;
  size_t end = peer_count(&g_peer);
  for (size_t i = (size_t)hi + 1; i < end; i++) {
    assert_true(peer_get(&g_peer, i, r));
    if (r->which != dfnet_v1_Envelope_node_add_tag || r->session_index != session_index)
      continue;
    const dfnet_v1_NodeAdd *n = &r->m.node_add;
    bool parent_known = strcmp(n->parent, "dev.lab-a") == 0;
    for (size_t k = 0; k < nseen && !parent_known; k++)
      parent_known = strcmp(seen[k], n->parent) == 0;
    if (!parent_known)
      fail_msg("NodeAdd %s.%s before its parent", n->parent, n->name);
    if (nseen < 64)
      snprintf(seen[nseen++], sizeof seen[0], "%s.%s", n->parent, n->name);
  }
  free(r);
  return want_at;
}

static void check_rng_props(void) {
  size_t from = 0;
  long i = peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, "dev.lab-a.pci.00_05_0",
                     &from, 1000);
  assert_true(i >= 0);
  peer_rec_t *r = calloc(1, sizeof *r);
  assert_true(peer_get(&g_peer, (size_t)i, r));
  const dfnet_v1_NodeAdd *n = &r->m.node_add;
  assert_string_equal(n->parent, "dev.lab-a.pci");
  const dfnet_v1_NodeProperty *p = prop_int(n, DFNET_BIND_PCI_VID);
  assert_non_null(p);
  assert_int_equal(p->value.int_value, 0x1af4);
  p = prop_int(n, DFNET_BIND_PCI_DID);
  assert_non_null(p);
  assert_int_equal(p->value.int_value, 0x1044);
  assert_non_null(prop_int(n, DFNET_BIND_PROTOCOL));
  assert_int_equal(n->driver_url[0], '\0');
  assert_int_equal(n->driver_host_id, 0);
  /* the PCI bus node is owned by the host */
  from = 0;
  i = peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, "dev.lab-a.pci", &from,
                1000);
  assert_true(i >= 0);
  assert_true(peer_get(&g_peer, (size_t)i, r));
  assert_true(r->m.node_add.owned);
  free(r);
}

static bool is_exit_of(const peer_rec_t *r, const void *dh) {
  return r->which == dfnet_v1_Envelope_driver_host_exit_tag &&
         r->m.driver_host_exit.driver_host_id == *(const uint64_t *)dh;
}

static bool exit_names(const peer_rec_t *r, const char *node) {
  for (pb_size_t i = 0; i < r->m.driver_host_exit.nodes_count; i++)
    if (strcmp(r->m.driver_host_exit.nodes[i], node) == 0)
      return true;
  return false;
}

static void corrupt_file(const char *path) {
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, "XXXXXXXX", 8, 200), 8);
  close(fd);
}

static void test_session(void **state) {
  (void)state;
  assert_int_equal(peer_start(&g_peer, 0), 0);
  pid_t agent = spawn_agent();
  assert_true(agent > 0);
  size_t from = 0;
  check_announce(&from, NULL);
  check_rng_props();

  /* DriverStart on the RNG function: cache miss, fetched in chunks, verified. */
  size_t fetches0 = peer_fetches(&g_peer);
  uint64_t dh_echo = 0;
  uint32_t pid_echo = 0;
  dfnet_status_t st =
      driver_start("dev.lab-a.pci.00_05_0", &g_echo, "echo", 0, &dh_echo, &pid_echo);
  if (st != DFNET_STATUS_OK)
    read_log_tail();
  assert_int_equal(st, DFNET_STATUS_OK);
  assert_true(dh_echo != 0);
  assert_true(pid_echo > 0);
  assert_true(process_alive((pid_t)pid_echo));
  size_t fetched = peer_fetches(&g_peer) - fetches0;
  assert_true(fetched >= 1);
  assert_int_equal(fetched, (g_echo.size + PEER_CHUNK - 1) / PEER_CHUNK);
  char path[700];
  snprintf(path, sizeof path, "%s/%s.tar", g_cache, g_echo.hex);
  assert_int_equal(access(path, R_OK), 0);
  snprintf(path, sizeof path, "%s/%s/driver/echo.so", g_cache, g_echo.hex);
  assert_int_equal(access(path, R_OK), 0);

  /* A call through the agent and back. */
  char out[256];
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/Echo", "hello", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "hello");
  assert_int_equal(call("dev.lab-a.pci.00_04_0", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(call("dev.lab-a.pci.99_00_0", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_NOT_FOUND);

  /* A message no host agent handles: UNIMPLEMENTED, naming it (host/agent/dispatch.c). */
  dfnet_envelope_t *req = env_new(), *rep = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_list_nodes_tag;
  void *bulk = NULL;
  assert_int_equal(request(req, rep, &bulk), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_status_tag);
  assert_int_equal(rep->pb.msg.status.code, DFNET_STATUS_UNIMPLEMENTED);
  assert_string_equal(rep->pb.msg.status.message, "a host agent does not handle list_nodes");
  free(bulk);
  free(req);
  free(rep);

  /* An unknown package: the manager's NOT_FOUND comes back as the start's status. */
  pkg_t unknown = g_echo;
  unknown.digest[0] ^= 0xff;
  assert_int_equal(driver_start("dev.lab-a.pci.00_04_0", &unknown, "echo", 0, NULL, NULL),
                   DFNET_STATUS_NOT_FOUND);
  /* Colocation into a driver host that does not exist. */
  assert_int_equal(driver_start("dev.lab-a.pci.00_04_0", &g_echo, "echo", 999, NULL, NULL),
                   DFNET_STATUS_FAILED_PRECONDITION);

  /* A crash: the crasher in its own driver host dies by SIGSEGV. */
  uint64_t dh_crash = 0;
  uint32_t pid_crash = 0;
  assert_int_equal(
      driver_start("dev.lab-a.pci.00_03_0", &g_crasher, "crasher", 0, &dh_crash, &pid_crash),
      DFNET_STATUS_OK);
  assert_true(dh_crash != 0 && dh_crash != dh_echo);
  assert_int_equal(call("dev.lab-a.pci.00_03_0", "/dfnet.test.Crasher/Ping", "", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "pong");
  size_t at = from;
  assert_int_equal(call("dev.lab-a.pci.00_03_0", "/dfnet.test.Crasher/Crash", "segv", NULL, 0),
                   DFNET_STATUS_UNAVAILABLE);
  long xi =
      peer_wait(&g_peer, dfnet_v1_Envelope_driver_host_exit_tag, is_exit_of, &dh_crash, &at, 10000);
  assert_true(xi >= 0);
  peer_rec_t *r = calloc(1, sizeof *r);
  assert_non_null(r);
  assert_true(peer_get(&g_peer, (size_t)xi, r));
  assert_int_equal(r->m.driver_host_exit.signal, SIGSEGV);
  assert_int_equal(r->m.driver_host_exit.pid, pid_crash);
  assert_true(exit_names(r, "dev.lab-a.pci.00_03_0"));
  assert_non_null(strstr(r->m.driver_host_exit.reason, "SIGSEGV"));
  assert_int_equal(call("dev.lab-a.pci.00_03_0", "/dfnet.test.Crasher/Ping", "", NULL, 0),
                   DFNET_STATUS_UNAVAILABLE);
  /* The echo driver did not notice. */
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/Echo", "still", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_true(process_alive(agent));
  /* The manager stops the dead driver: answered at once. */
  assert_int_equal(driver_stop("dev.lab-a.pci.00_03_0", &g_crasher, dh_crash), DFNET_STATUS_OK);

  /* Cache hit: stop and start echo again, no fetch. */
  assert_int_equal(driver_stop("dev.lab-a.pci.00_05_0", &g_echo, dh_echo), DFNET_STATUS_OK);
  assert_true(wait_gone((pid_t)pid_echo, 8000)); /* its driver host had nothing left */
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_FAILED_PRECONDITION);
  size_t fetches1 = peer_fetches(&g_peer);
  assert_int_equal(driver_start("dev.lab-a.pci.00_05_0", &g_echo, "echo", 0, &dh_echo, &pid_echo),
                   DFNET_STATUS_OK);
  assert_int_equal(peer_fetches(&g_peer), fetches1);

  /* Corrupt unpacked .so: dropped and fetched again; colocated in echo's driver host. */
  snprintf(path, sizeof path, "%s/%s/driver/echo.so", g_cache, g_echo.hex);
  corrupt_file(path);
  uint64_t dh_colo = 0;
  assert_int_equal(driver_start("dev.lab-a.pci.00_01_0", &g_echo, "echo", dh_echo, &dh_colo, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(dh_colo, dh_echo);
  assert_true(peer_fetches(&g_peer) > fetches1);
  assert_int_equal(call("dev.lab-a.pci.00_01_0", "/dfnet.test.Echo/Echo", "colo", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "colo");

  /* Corrupt archive: dropped and fetched again. */
  size_t fetches2 = peer_fetches(&g_peer);
  snprintf(path, sizeof path, "%s/%s.tar", g_cache, g_echo.hex);
  corrupt_file(path);
  uint64_t dh_blk = 0;
  uint32_t pid_blk = 0;
  assert_int_equal(driver_start("dev.lab-a.pci.00_02_0", &g_echo, "echo", 0, &dh_blk, &pid_blk),
                   DFNET_STATUS_OK);
  assert_true(peer_fetches(&g_peer) > fetches2);
  assert_true(dh_blk != dh_echo);

  /* DriverStop right behind DriverStart (the manager removed the node meanwhile): either
   * order of events ends with the stop answered OK and no driver left on the node. */
  async_start_t as = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  assert_int_equal(driver_start_async("dev.lab-a.pci.00_04_0", &g_echo, "echo", &as),
                   DFNET_STATUS_OK);
  assert_int_equal(driver_stop("dev.lab-a.pci.00_04_0", &g_echo, 0), DFNET_STATUS_OK);
  pthread_mutex_lock(&as.mu);
  while (!as.done)
    pthread_cond_wait(&as.cv, &as.mu);
  pthread_mutex_unlock(&as.mu);
  assert_true((as.which == dfnet_v1_Envelope_driver_status_tag && as.code == DFNET_STATUS_OK) ||
              (as.which == dfnet_v1_Envelope_status_tag && as.code == DFNET_STATUS_CANCELLED));
  assert_int_equal(call("dev.lab-a.pci.00_04_0", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_FAILED_PRECONDITION);

  /* A driver adds a child: the agent forwards its NodeAdd and hands the answer back. */
  at = peer_count(&g_peer);
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/AddChild", "kid", NULL, 0),
                   DFNET_STATUS_OK);
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node,
                        "dev.lab-a.pci.00_05_0.kid", &at, 5000) >= 0);

  /* The manager goes away and comes back: reconnect, re-announce with the running
   * drivers, no driver host restarted. */
  uint16_t port = g_peer.port;
  peer_stop(&g_peer);
  agent_proc_sleep_ms(700);
  assert_true(process_alive((pid_t)pid_echo));
  assert_true(process_alive((pid_t)pid_blk));
  assert_int_equal(peer_start(&g_peer, port), 0);
  from = peer_count(&g_peer);
  long rng = check_announce(&from, "dev.lab-a.pci.00_05_0");
  assert_true(rng >= 0);
  assert_true(peer_get(&g_peer, (size_t)rng, r));
  assert_string_equal(r->m.node_add.driver_url, g_echo.url);
  assert_int_equal(r->m.node_add.driver_host_id, dh_echo);
  at = from - 1;
  long blk = peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node,
                       "dev.lab-a.pci.00_02_0", &at, 5000);
  assert_true(blk >= 0);
  assert_true(peer_get(&g_peer, (size_t)blk, r));
  assert_int_equal(r->m.node_add.driver_host_id, dh_blk);
  size_t kid_from = from - 1;
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node,
                        "dev.lab-a.pci.00_05_0.kid", &kid_from, 5000) >= 0);
  /* the crashed node is announced without a driver */
  size_t crash_from = from - 1;
  long ci = peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node,
                      "dev.lab-a.pci.00_03_0", &crash_from, 5000);
  assert_true(ci >= 0);
  assert_true(peer_get(&g_peer, (size_t)ci, r));
  assert_int_equal(r->m.node_add.driver_url[0], '\0');
  assert_true(process_alive((pid_t)pid_echo));
  assert_true(process_alive((pid_t)pid_blk));
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/Echo", "again", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "again");

  /* kill -9 of a driver host while the manager is away: the DriverHostExit is sent after
   * the next Welcome, before the nodes, and its node comes without a driver. "Away" as the
   * agent knows it: the kill waits until the agent has seen the connection go (else the
   * exit may go out on the dying session, which the agent still believes in). */
  int gone_before = agent_proc_log_count(g_log, "disconnected from the manager");
  peer_stop(&g_peer);
  for (int i = 0;
       i < 500 && agent_proc_log_count(g_log, "disconnected from the manager") == gone_before; i++)
    agent_proc_sleep_ms(10);
  assert_true(agent_proc_log_count(g_log, "disconnected from the manager") > gone_before);
  assert_int_equal(kill((pid_t)pid_blk, SIGKILL), 0);
  assert_true(wait_gone((pid_t)pid_blk, 5000));
  agent_proc_sleep_ms(300);
  assert_int_equal(peer_start(&g_peer, port), 0);
  from = peer_count(&g_peer);
  size_t hello_at = from;
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_hello_tag, NULL, NULL, &hello_at, 15000) >= 0);
  at = hello_at;
  xi = peer_wait(&g_peer, dfnet_v1_Envelope_driver_host_exit_tag, is_exit_of, &dh_blk, &at, 10000);
  if (xi < 0)
    read_log_tail();
  assert_true(xi >= 0);
  assert_true(peer_get(&g_peer, (size_t)xi, r));
  assert_int_equal(r->m.driver_host_exit.signal, SIGKILL);
  assert_int_equal(r->m.driver_host_exit.pid, pid_blk);
  assert_true(exit_names(r, "dev.lab-a.pci.00_02_0"));
  at = hello_at;
  blk = peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, "dev.lab-a.pci.00_02_0",
                  &at, 10000);
  assert_true(blk > xi);
  assert_true(peer_get(&g_peer, (size_t)blk, r));
  assert_int_equal(r->m.node_add.driver_url[0], '\0');
  assert_int_equal(r->m.node_add.driver_host_id, 0);
  assert_int_equal(call("dev.lab-a.pci.00_02_0", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_UNAVAILABLE);
  assert_true(process_alive((pid_t)pid_echo));

  /* kill -9 of the colocated driver host while connected: one DriverHostExit naming both
   * of its nodes; calls fail UNAVAILABLE; the manager starts the driver again. */
  at = peer_count(&g_peer);
  assert_int_equal(kill((pid_t)pid_echo, SIGKILL), 0);
  xi = peer_wait(&g_peer, dfnet_v1_Envelope_driver_host_exit_tag, is_exit_of, &dh_echo, &at, 10000);
  assert_true(xi >= 0);
  assert_true(peer_get(&g_peer, (size_t)xi, r));
  assert_int_equal(r->m.driver_host_exit.signal, SIGKILL);
  assert_true(exit_names(r, "dev.lab-a.pci.00_05_0"));
  assert_true(exit_names(r, "dev.lab-a.pci.00_01_0"));
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(call("dev.lab-a.pci.00_05_0.kid", "/dfnet.test.Echo/Echo", "x", NULL, 0),
                   DFNET_STATUS_NOT_FOUND); /* the dead driver's child went with it */
  uint64_t dh_again = 0;
  uint32_t pid_again = 0;
  assert_int_equal(driver_start("dev.lab-a.pci.00_05_0", &g_echo, "echo", 0, &dh_again, &pid_again),
                   DFNET_STATUS_OK);
  assert_true(dh_again != dh_echo);
  assert_int_equal(call("dev.lab-a.pci.00_05_0", "/dfnet.test.Echo/Echo", "back", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "back");
  assert_true(process_alive(agent));
  free(r);

  /* SIGTERM: the drivers stop, the session closes, exit 0, no driver host left. */
  assert_int_equal(kill(agent, SIGTERM), 0);
  int status = agent_proc_wait_exit(agent, 15000);
  if (status == -1) {
    kill(agent, SIGKILL);
    waitpid(agent, &status, 0);
    read_log_tail();
    fail_msg("the agent did not exit after SIGTERM");
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_true(wait_gone((pid_t)pid_again, 5000));
  peer_stop(&g_peer);
}

/* ---- drivers calling drivers ------------------------------------------------------------ */

#define PARENT "dev.lab-a.pci.00_05_0"
#define CHILD PARENT ".child"
#define COLO "dev.lab-a.pci.00_03_0" /* a child colocated with the parent */
#define FORGER "dev.lab-a.platform.uart0"
#define UPWARD "dev.lab-a.platform.led" /* offered a source on another host */
#define REMOTE_SOURCE "dev.lab-b.pci.00_01_0"

/* A call sent without waiting (its caller does something meanwhile). */
typedef struct async_call {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  dfnet_status_t code;
  char text[2048];
} async_call_t;

static void on_async_call(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  async_call_t *ac = user;
  if (!last)
    return;
  pthread_mutex_lock(&ac->mu);
  ac->done = true;
  ac->code = status;
  if (reply != NULL && reply->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
    ac->code = (dfnet_status_t)reply->pb.msg.reply.code;
    size_t n = reply->bulk.size < sizeof ac->text - 1 ? reply->bulk.size : sizeof ac->text - 1;
    if (n > 0)
      memcpy(ac->text, reply->bulk.data, n);
    ac->text[n] = '\0';
  }
  pthread_cond_broadcast(&ac->cv);
  pthread_mutex_unlock(&ac->mu);
}

static void run_async(const char *node, const char *text, async_call_t *ac) {
  *ac = (async_call_t){.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  dfnet_envelope_t *req = env_new();
  req->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(req->pb.msg.call.target, sizeof req->pb.msg.call.target, "%s", node);
  snprintf(req->pb.msg.call.method, sizeof req->pb.msg.call.method, "/dfnet.test.Child/Run");
  req->pb.msg.call.deadline_ms = 20000;
  req->bulk.data = (const uint8_t *)text;
  req->bulk.size = strlen(text);
  dfnet_request_opts_t opts = {.deadline_ms = 20000, .on_reply = on_async_call, .user = ac};
  assert_int_equal(
      dfnet_transport_request(g_peer.t, peer_wait_session(&g_peer, 0, 10000), req, &opts, 0, NULL),
      DFNET_STATUS_OK);
  free(req);
}

static bool async_done(async_call_t *ac, unsigned ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&ac->mu);
  while (!ac->done && pthread_cond_timedwait(&ac->cv, &ac->mu, &until) == 0) {
  }
  bool done = ac->done;
  pthread_mutex_unlock(&ac->mu);
  return done;
}

/* A unary call that must succeed; its reply's text (static buffer). */
static const char *ask(const char *node, const char *method, const char *payload) {
  static char out[2048];
  dfnet_status_t st = call(node, method, payload, out, sizeof out);
  if (st != DFNET_STATUS_OK) {
    read_log_tail();
    fail_msg("%s %s(%s): %s", node, method, payload, dfnet_status_str(st));
  }
  return out;
}

static const char *run(const char *node, const char *text) {
  return ask(node, "/dfnet.test.Child/Run", text);
}

static const char *parent_stats(void) { return ask(PARENT, "/dfnet.test.Echo/Stats", ""); }

static void has(const char *text, const char *part) {
  if (strstr(text, part) == NULL) {
    read_log_tail();
    fail_msg("\"%s\" does not hold \"%s\"", text, part);
  }
}

/* Wait up to ms for the parent's Stats to hold `part`; returns them. */
static const char *parent_stats_until(const char *part, unsigned ms) {
  const char *stats = parent_stats();
  for (unsigned waited = 0; strstr(stats, part) == NULL && waited < ms; waited += 20) {
    agent_proc_sleep_ms(20);
    stats = parent_stats();
  }
  has(stats, part);
  return stats;
}

static bool is_call_to(const peer_rec_t *r, const void *target) {
  return strcmp(r->m.call.target, (const char *)target) == 0;
}

static bool is_cancel_of(const peer_rec_t *r, const void *id) {
  return r->id == *(const uint64_t *)id;
}

/* A child driver on `node`, offered the parent's Echo by `source`. */
static uint64_t start_child(const char *node, const char *source, uint64_t colocate,
                            uint32_t *pid) {
  start_extra_t extra = {.source = source};
  uint64_t dh = 0;
  dfnet_status_t st = driver_start_with(node, &g_child, "child", colocate, &extra, &dh, pid);
  if (st != DFNET_STATUS_OK)
    read_log_tail();
  assert_int_equal(st, DFNET_STATUS_OK);
  return dh;
}

/* The parent on PARENT; it adds CHILD, which the peer accepts. */
static uint64_t start_parent(uint32_t *pid) {
  size_t at = peer_count(&g_peer);
  uint64_t dh = 0;
  assert_int_equal(driver_start(PARENT, &g_parent, "parent", 0, &dh, pid), DFNET_STATUS_OK);
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, CHILD, &at, 10000) >=
              0);
  return dh;
}

/* Forge a call from the forger's driver host naming `caller` (see tests/drivers/forger.c). */
static void forge(const char *caller_and_url) {
  assert_int_equal(call(FORGER, "/dfnet.test.Forger/Forge", caller_and_url, NULL, 0),
                   DFNET_STATUS_OK);
}

static void driver_calls_forged(void) {
  start_extra_t extra = {.source = PARENT, .prop_key = "dfnet.test.TARGET", .prop_val = PARENT};
  uint64_t dh = 0;
  assert_int_equal(driver_start_with(FORGER, &g_forger, "forger", 0, &extra, &dh, NULL),
                   DFNET_STATUS_OK);
  /* Its own node: let through, with the caller fields of the agent's records. */
  char last[700];
  snprintf(last, sizeof last, "whocalls=3 last=%s;%s", FORGER, g_forger.url);
  forge(FORGER "|dfnet-evil://not-me");
  parent_stats_until(last, 5000);
  /* A node whose driver runs in another driver host, one with no driver, none at all. */
  int refused = agent_proc_log_count(g_log, "a node whose driver it does not run: refused");
  forge(CHILD "|");
  forge("dev.lab-a.pci.00_01_0|");
  forge("|");
  for (int i = 0;
       i < 250 &&
       agent_proc_log_count(g_log, "a node whose driver it does not run: refused") < refused + 3;
       i++)
    agent_proc_sleep_ms(20);
  assert_int_equal(agent_proc_log_count(g_log, "a node whose driver it does not run: refused"),
                   refused + 3);
  agent_proc_sleep_ms(100);
  has(parent_stats(), last); /* none of them reached the parent */

  /* Its own node, but a service it was not offered: refused by the agent, which does not
   * believe the driver host's own check (the same driver started again without the offer) */
  assert_int_equal(driver_stop(FORGER, &g_forger, dh), DFNET_STATUS_OK);
  extra.source = NULL;
  assert_int_equal(driver_start_with(FORGER, &g_forger, "forger", 0, &extra, NULL, NULL),
                   DFNET_STATUS_OK);
  int not_offered = agent_proc_log_count(g_log, "a service it was not offered: refused");
  forge(FORGER "|");
  for (int i = 0; i < 250 && agent_proc_log_count(g_log, "a service it was not offered: refused") ==
                                 not_offered;
       i++)
    agent_proc_sleep_ms(20);
  assert_int_equal(agent_proc_log_count(g_log, "a service it was not offered: refused"),
                   not_offered + 1);
  agent_proc_sleep_ms(100);
  has(parent_stats(), last);
}

static void driver_calls_up_to_the_manager(void) {
  start_child(UPWARD, REMOTE_SOURCE, 0, NULL);
  size_t at = peer_count(&g_peer);
  const char *r = run(UPWARD, "method=Echo;payload=up");
  has(r, "status=OK;");
  char want[700];
  snprintf(want, sizeof want, "data=manager:up;caller=%s;url=%s", UPWARD, g_child.url);
  has(r, want);
  long ci = peer_wait(&g_peer, dfnet_v1_Envelope_call_tag, is_call_to, REMOTE_SOURCE, &at, 5000);
  assert_true(ci >= 0);
  peer_rec_t *rec = calloc(1, sizeof *rec);
  assert_non_null(rec);
  assert_true(peer_get(&g_peer, (size_t)ci, rec));
  assert_string_equal(rec->m.call.method, "/dfnet.test.Echo/Echo");
  assert_string_equal(rec->m.call.caller, UPWARD);
  assert_string_equal(rec->m.call.caller_driver_url, g_child.url);
  /* A Cancel follows the call up. */
  at = peer_count(&g_peer);
  async_call_t ac;
  run_async(UPWARD, "method=Hold;cancel_ms=300", &ac);
  ci = peer_wait(&g_peer, dfnet_v1_Envelope_call_tag, is_call_to, REMOTE_SOURCE, &at, 5000);
  assert_true(ci >= 0);
  assert_true(peer_get(&g_peer, (size_t)ci, rec));
  uint64_t up_id = rec->id;
  assert_string_equal(rec->m.call.method, "/dfnet.test.Echo/Hold");
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_cancel_tag, is_cancel_of, &up_id, &at, 5000) >=
              0);
  assert_true(async_done(&ac, 5000));
  has(ac.text, "status=CANCELLED;");
  free(rec);
}

static void test_driver_calls(void **state) {
  (void)state;
  g_peer.answer_calls = true;
  assert_int_equal(peer_start(&g_peer, 0), 0);
  size_t from = peer_count(&g_peer);
  pid_t agent = spawn_agent();
  assert_true(agent > 0);
  check_announce(&from, NULL);

  /* Parent and child in two driver hosts: through the agent, never the manager. */
  uint32_t pid_parent = 0;
  uint64_t dh_parent = start_parent(&pid_parent);
  size_t calls_at = peer_count(&g_peer);
  uint64_t dh_child = start_child(CHILD, PARENT, 0, NULL);
  assert_true(dh_child != dh_parent);
  const char *r = run(CHILD, "method=Echo;payload=hi");
  has(r, "status=OK;");
  has(r, "data=hi");
  char want[700];
  snprintf(want, sizeof want, "data=caller=%s;url=%s", CHILD, g_child.url);
  has(run(CHILD, "method=WhoCalls"), want); /* the agent set the URL: the driver host sent none */
  has(run(CHILD, "method=Stream;count=100;credit=4;grant=1;payload=ab"),
      "status=OK;items=100;violations=0;");
  has(run(CHILD, "method=Stream;count=10;credit=3;deadline=300;payload=x"),
      "status=DEADLINE_EXCEEDED;items=3;violations=0;");
  has(run(CHILD, "method=Hold;deadline=200"), "status=DEADLINE_EXCEEDED;");
  has(run(CHILD, "method=Hold;cancel_ms=100"), "status=CANCELLED;");
  const char *stats = parent_stats_until("held=2 ", 3000);
  has(stats, "unavailable=0");
  assert_null(strstr(stats, "cancelled=0 deadline=0")); /* both ended early at the parent */
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_call_tag, NULL, NULL, &calls_at, 0) < 0);

  /* Colocated with the parent: handed over in the process. */
  int in_process = agent_proc_log_count(g_log, "(in process)");
  assert_int_equal(start_child(COLO, PARENT, dh_parent, NULL), dh_parent);
  has(run(COLO, "method=Echo;payload=colo"), "data=colo");
  snprintf(want, sizeof want, "data=caller=%s;url=%s", COLO, g_child.url);
  has(run(COLO, "method=WhoCalls"), want);
  assert_true(agent_proc_log_count(g_log, "(in process)") >= in_process + 2);

  driver_calls_forged();
  driver_calls_up_to_the_manager();

  /* The parent stopped mid-stream (a client not under it, as a composite's would be). */
  start_child("dev.lab-a.pci.00_04_0", PARENT, 0, NULL);
  async_call_t ac;
  run_async("dev.lab-a.pci.00_04_0", "method=Stream;count=100;credit=2;payload=z", &ac);
  assert_false(async_done(&ac, 300));
  assert_int_equal(driver_stop(PARENT, &g_parent, dh_parent), DFNET_STATUS_OK);
  assert_true(async_done(&ac, 5000));
  has(ac.text, "status=UNAVAILABLE;items=2;violations=0;client=UNAVAILABLE;");
  assert_string_equal(ask("dev.lab-a.pci.00_04_0", "/dfnet.test.Child/Status", ""),
                      "client=UNAVAILABLE");
  assert_string_equal(run("dev.lab-a.pci.00_04_0", "method=Echo;payload=x"),
                      "start=UNAVAILABLE;client=UNAVAILABLE");
  assert_string_equal(run(COLO, "method=Echo;payload=x"), "start=UNAVAILABLE;client=UNAVAILABLE");

  /* The parent's driver host killed mid-stream. */
  dh_parent = start_parent(&pid_parent);
  start_child("dev.lab-a.pci.00_02_0", PARENT, 0, NULL);
  run_async("dev.lab-a.pci.00_02_0", "method=Stream;count=100;credit=2;payload=k", &ac);
  assert_false(async_done(&ac, 300));
  assert_int_equal(kill((pid_t)pid_parent, SIGKILL), 0);
  assert_true(async_done(&ac, 5000));
  has(ac.text, "status=UNAVAILABLE;items=2;violations=0;client=UNAVAILABLE;");

  /* A calling driver host killed: its call is cancelled at the parent. */
  dh_parent = start_parent(&pid_parent);
  uint32_t pid_caller = 0;
  start_child("dev.lab-a.pci.00_01_0", PARENT, 0, &pid_caller);
  run_async("dev.lab-a.pci.00_01_0", "method=Hold", &ac);
  parent_stats_until("held=1 cancelled=0", 5000);
  assert_int_equal(kill((pid_t)pid_caller, SIGKILL), 0);
  parent_stats_until("held=1 cancelled=1 deadline=0 unavailable=0", 5000);
  assert_true(async_done(&ac, 5000));
  assert_int_equal(ac.code, DFNET_STATUS_UNAVAILABLE);

  /* The agent stops with a call between driver hosts in flight (its deadline timer
   * pending): a clean exit 0, nothing left behind (under ASan: no leak). */
  start_child("dev.lab-a.pci.00_00_0", PARENT, 0, NULL);
  run_async("dev.lab-a.pci.00_00_0", "method=Hold;deadline=15000", &ac);
  parent_stats_until("held=2 ", 5000);
  assert_int_equal(kill(agent, SIGTERM), 0);
  int status = agent_proc_wait_exit(agent, 15000);
  if (status == -1) {
    kill(agent, SIGKILL);
    waitpid(agent, &status, 0);
    read_log_tail();
    fail_msg("the agent did not exit after SIGTERM");
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  peer_stop(&g_peer);
  g_peer.answer_calls = false;
}

/* ---- USB through the agent, under umockdev ----------------------------------------------- */

/* The first child of pid (umockdev-run runs the program as its child), or -1. */
static pid_t child_of(pid_t pid) {
  char path[96], buf[256];
  snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  long child = strtol(buf, NULL, 10);
  return child > 0 ? (pid_t)child : -1;
}

static void test_usb_umockdev(void **state) {
  (void)state;
  const char *runner = "/usr/bin/umockdev-run";
  if (access(runner, X_OK) != 0)
    skip();
  char device[600];
  snprintf(device, sizeof device, "%s", DFNET_FIXTURES_DIR "/usb/canon-powershot-sx200.umockdev");
  peer_free(&g_peer);
  assert_int_equal(peer_start(&g_peer, 0), 0);
  char url[64];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)g_peer.port);
  /* Under ASan the preload library comes before the ASan runtime (set before fork: the
   * child may not allocate). */
  const char *old_asan = getenv("ASAN_OPTIONS");
  char asan[700];
  snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old_asan ? old_asan : "",
           old_asan && old_asan[0] ? ":" : "");
  setenv("ASAN_OPTIONS", asan, 1);
  pid_t run = test_child_fork();
  if (run == 0) {
    int fd = open(g_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      dup2(fd, 1);
      close(fd);
    }
    execl(runner, runner, "-d", device, "--", DFNET_HOST_BIN, "--manager", url, "--cert",
          g_host_crt, "--key", g_host_key, "--ca", g_ca, "--sysfs-root", g_dir, "--cache-dir",
          g_cache, "--driver-host", DFNET_DRIVER_HOST_BIN, (char *)NULL);
    _exit(127);
  }
  assert_true(run > 0);
  size_t from = 0;
  /* device nodes only: a device's interfaces are its driver's children (usb-device) */
  const char *want[] = {"dev.lab-a.usb", "dev.lab-a.usb.001_005", "dev.lab-a.usb.001_011"};
  long idx[3];
  for (size_t i = 0; i < 3; i++) {
    size_t at = from;
    idx[i] = peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node, want[i], &at, 15000);
    if (idx[i] < 0)
      read_log_tail();
    assert_true(idx[i] >= 0);
  }
  assert_true(idx[0] < idx[1] && idx[0] < idx[2]); /* parents first */
  peer_rec_t *r = calloc(1, sizeof *r);
  assert_true(peer_get(&g_peer, (size_t)idx[2], r));
  const dfnet_v1_NodeProperty *vid = prop_int(&r->m.node_add, DFNET_BIND_USB_VID);
  assert_non_null(vid);
  assert_int_equal(vid->value.int_value, 0x04a9);
  assert_string_equal(r->m.node_add.parent, "dev.lab-a.usb");
  free(r);
  size_t at = from;
  assert_true(peer_wait(&g_peer, dfnet_v1_Envelope_node_add_tag, peer_is_node,
                        "dev.lab-a.usb.001_011.ifc-000", &at, 300) < 0);
  pid_t agent = -1;
  for (int i = 0; i < 100 && agent < 0; i++, agent_proc_sleep_ms(20))
    agent = child_of(run);
  assert_true(agent > 0);
  assert_int_equal(kill(agent, SIGTERM), 0);
  int status = agent_proc_wait_exit(run, 15000);
  if (status == -1) {
    kill(agent, SIGKILL);
    kill(run, SIGKILL);
    waitpid(run, &status, 0);
    fail_msg("the agent under umockdev did not exit after SIGTERM");
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  peer_stop(&g_peer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_usage),
      cmocka_unit_test(test_session),
      cmocka_unit_test(test_driver_calls),
      cmocka_unit_test(test_usb_umockdev),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
