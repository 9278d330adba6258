/* docs/protocol.md's example client, run as its reader would run it: python3
 * docs/examples/list_nodes.py against the real dfnet-manager, with the Python modules protoc
 * makes from proto/dfnet/v1 (built beside this test) and a viewer certificate from the
 * manager's CA. A test host adds nodes first (one of them bound by a boot driver), so that
 * the listing has states to show.
 *
 * The example must list every node, in order, with its state, exit 0 and close the session
 * with a websocket close frame (the manager logs "peer closed (1000)", not "connection
 * lost"); it must refuse a manager whose certificate is not from the CA it was given, and a
 * server of the right CA whose certificate does not carry the role manager. The doc must
 * show the example's code as it is. The cases that run Python are skipped only when no
 * python3 with google.protobuf is found ($DFNET_PYTHON3, python3 on PATH, /usr/bin/python3:
 * Debian's python3-protobuf is for Debian's python3).
 */
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
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "testhost/testhost.h"

#define WAIT_MS 10000
#define SCRIPT_TIMEOUT_MS 60000
#define VIEWER "py-viewer"

/* A python3 that imports google.protobuf, as a path, or "" (the Python cases skip). */
static char python[512];

typedef struct fixture {
  char root[256];
  char drivers[300];
  char state[300];
  char certs[300]; /* the viewer's certificate, key and CA */
  th_manager_t mgr;
} fixture_t;

/* ---- helpers -------------------------------------------------------------------------- */

/* Wait for child `pid` up to timeout_ms (killed after). Returns its exit code, or -1 when it
 * did not exit by itself. */
static int wait_child(pid_t pid, uint32_t timeout_ms) {
  int status = 0;
  for (uint32_t waited = 0;; waited += 10) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFSIGNALED(status))
        fprintf(stderr, "child %d killed by signal %d\n", (int)pid, WTERMSIG(status));
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (r < 0 || waited >= timeout_ms) {
      fprintf(stderr, "child %d: %s\n", (int)pid,
              r < 0 ? strerror(errno) : "did not exit in time, killed");
      break;
    }
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

/* `name` as an executable's path: as it is when it has a '/', else found on PATH. */
static bool find_exe(const char *name, char *out, size_t cap) {
  if (strchr(name, '/') != NULL) {
    snprintf(out, cap, "%s", name);
    return access(out, X_OK) == 0;
  }
  const char *path = getenv("PATH");
  for (const char *p = path ? path : "/usr/bin:/bin"; *p != '\0';) {
    const char *end = strchrnul(p, ':');
    snprintf(out, cap, "%.*s/%s", (int)(end - p), p, name);
    if (end > p && access(out, X_OK) == 0)
      return true;
    p = *end ? end + 1 : end;
  }
  return false;
}

/* Start exe with argv and envp, stdin from /dev/null, stdout and stderr into out_path and
 * err_path (NULL: /dev/null). The test program has threads (transports), so the child
 * calls only async-signal-safe functions between fork and exec: everything it needs is
 * made here first. Returns the child's pid (asserted). */
static pid_t spawn(const char *exe, char *const argv[], char *const envp[], const char *out_path,
                   const char *err_path) {
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0)
      _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execve(exe, argv, envp);
    _exit(127);
  }
  return pid;
}

/* Does `py -c "import google.protobuf"` work? */
static bool python_has_protobuf(const char *py) {
  char *argv[] = {(char *)py, "-c", "import google.protobuf", NULL};
  return wait_child(spawn(py, argv, environ, NULL, NULL), SCRIPT_TIMEOUT_MS) == 0;
}

static int group_setup(void **state) {
  (void)state;
  const char *candidates[] = {getenv("DFNET_PYTHON3"), "python3", "/usr/bin/python3"};
  char exe[sizeof python];
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && python[0] == '\0'; i++)
    if (candidates[i] != NULL && candidates[i][0] != '\0' &&
        find_exe(candidates[i], exe, sizeof exe) && python_has_protobuf(exe))
      snprintf(python, sizeof python, "%s", exe);
  if (python[0] == '\0')
    fprintf(stderr,
            "no python3 with google.protobuf (Debian: python3-protobuf): Python cases "
            "skipped\n");
  else
    fprintf(stderr, "python3 with google.protobuf: %s\n", python);
  return 0;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2) {
      char *grown = realloc(buf, cap * 2);
      if (grown == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf != NULL)
    buf[len] = '\0';
  return buf;
}

static fixture_t *fixture_new(const char *name) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-protocol-%s-%d", name, (int)getpid());
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  snprintf(f->certs, sizeof f->certs, "%s/" VIEWER, f->root);
  assert_int_equal(th_fresh_dir(f->drivers), 0);
  return f;
}

/* Start the manager and issue the viewer's certificate from its CA. */
static void fixture_start(fixture_t *f) {
  assert_int_equal(th_manager_start(&f->mgr, f->state, f->drivers, NULL), 0);
  assert_int_equal(
      dfnet_pki_issue_to_dir(f->state, DFNET_PKI_ROLE_VIEWER, VIEWER, f->certs, NULL, 0, 30),
      DFNET_STATUS_OK);
}

static void fixture_free(fixture_t *f) {
  assert_int_equal(th_manager_stop(&f->mgr), 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", f->root, f->state);
  if (getenv("DFNET_KEEP") == NULL)
    assert_int_equal(system(cmd), 0);
  free(f);
}

typedef struct run {
  int code; /* exit code, -1 when it did not exit by itself */
  char out[16384];
  char err[16384];
} run_t;

/* A file's first cap - 1 bytes, as a string ("" when it cannot be read). */
static void read_into(const char *path, char *buf, size_t cap) {
  char *text = read_file(path);
  snprintf(buf, cap, "%s", text ? text : "");
  free(text);
}

/* python3 docs/examples/list_nodes.py URL CERT KEY CA, with PYTHONPATH = the generated
 * modules; the result in *r. */
static void run_example(const fixture_t *f, const char *url, const char *ca, run_t *r) {
  const char *src = getenv("DFNET_SOURCE_DIR");
  char script[600], cert[600], key[600], out_path[400], err_path[400];
  snprintf(script, sizeof script, "%s/docs/examples/list_nodes.py", src ? src : ".");
  snprintf(cert, sizeof cert, "%s/" VIEWER ".crt", f->certs);
  snprintf(key, sizeof key, "%s/" VIEWER ".key", f->certs);
  snprintf(out_path, sizeof out_path, "%s/example.out", f->root);
  snprintf(err_path, sizeof err_path, "%s/example.err", f->root);
  /* the environment, with PYTHONPATH and PYTHONDONTWRITEBYTECODE (nothing is written
   * beside the script) set */
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **envp = calloc(n + 3, sizeof *envp);
  assert_non_null(envp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "PYTHONPATH=", 11) != 0 &&
        strncmp(environ[i], "PYTHONDONTWRITEBYTECODE=", 24) != 0)
      envp[k++] = environ[i];
  envp[k++] = "PYTHONPATH=" DFNET_PROTO_PYTHON_DIR;
  envp[k++] = "PYTHONDONTWRITEBYTECODE=1";
  char *argv[] = {python, script, (char *)url, cert, key, (char *)ca, NULL};
  pid_t pid = spawn(python, argv, envp, out_path, err_path);
  free(envp);
  r->code = wait_child(pid, SCRIPT_TIMEOUT_MS);
  read_into(out_path, r->out, sizeof r->out);
  read_into(err_path, r->err, sizeof r->err);
  fprintf(stderr, "list_nodes.py %s (CA %s): exit %d\n--- stdout\n%s--- stderr\n%s---\n", url, ca,
          r->code, r->out, r->err);
}

/* The manager's log line about the viewer's session closing (copied into line), waiting for
 * it up to WAIT_MS. */
static bool wait_close_line(const fixture_t *f, char *line, size_t cap) {
  const char *needle = " transport " VIEWER ": session ";
  for (int waited = 0; waited < WAIT_MS; waited += 20) {
    char *log = read_file(f->mgr.log_path);
    for (char *p = log ? strstr(log, needle) : NULL; p != NULL; p = strstr(p + 1, needle)) {
      char *eol = strchr(p, '\n');
      size_t n = eol ? (size_t)(eol - p) : strlen(p);
      if (memmem(p, n, " closed: ", 9) == NULL)
        continue;
      snprintf(line, cap, "%.*s", (int)n, p);
      free(log);
      return true;
    }
    free(log);
    usleep(20000);
  }
  return false;
}

static bool is_bound(const dfnet_v1_NodeInfo *i) { return i->state == dfnet_v1_NodeState_BOUND; }

/* ---- cases ------------------------------------------------------------------------------ */

/* The example lists what a host added, in moniker order, each with its state, and closes
 * its session with a close frame. */
static void test_example_lists_nodes(void **state) {
  (void)state;
  if (python[0] == '\0')
    skip();
  fixture_t *f = fixture_new("list");
  assert_int_equal(th_write_driver(f->drivers, "rng", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  fixture_start(f);
  dfnet_status_t st;
  testhost_t *h = th_connect(&f->mgr, "lab-a", "host", &st);
  assert_non_null(h);
  th_prop_t rng[] = {"#1=u:31", "dfnet.test.SERIAL=s:A17"};
  th_prop_t uart[] = {"#1=u:40", "dfnet.test.PORT=s:ttyS0", "dfnet.test.CONSOLE=b:true"};
  th_prop_t sensor[] = {"dfnet.test.KIND=e:dfnet.test.KIND.TEMPERATURE"};
  assert_int_equal(th_node_add(h, "dev.lab-a", "rng0", rng, 2, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a", "uart0", uart, 3, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(th_node_add(h, "dev.lab-a", "sensor0", sensor, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  /* rng0 is bound once the test host has answered DriverStart RUNNING */
  testhost_t *v = th_connect(&f->mgr, "watcher", "viewer", NULL);
  assert_non_null(v);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_true(th_wait_node(v, "dev.lab-a.rng0", is_bound, WAIT_MS, info));
  free(info);
  th_close(v);

  char url[64], ca[600];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)f->mgr.port);
  snprintf(ca, sizeof ca, "%s/ca.crt", f->certs);
  run_t r;
  run_example(f, url, ca, &r);
  assert_int_equal(r.code, 0);
  /* every node, sorted by moniker, each once, nothing else */
  assert_string_equal(r.out,
                      "dev.lab-a OWNED_BY_PARENT\n"
                      "dev.lab-a.rng0 BOUND\n"
                      "dev.lab-a.sensor0 UNBOUND\n"
                      "dev.lab-a.uart0 UNBOUND\n");
  assert_string_equal(r.err, "");

  /* closed by the example's close frame (code 1000), not by a dropped connection */
  char line[512];
  assert_true(wait_close_line(f, line, sizeof line));
  assert_non_null(strstr(line, "closed: UNAVAILABLE: peer closed (1000)"));
  assert_null(strstr(line, "connection lost"));
  th_close(h);
  fixture_free(f);
}

/* Given another CA than the manager's, the example refuses the manager: the TLS handshake
 * fails on its side and no session is opened. */
static void test_example_refuses_another_ca(void **state) {
  (void)state;
  if (python[0] == '\0')
    skip();
  fixture_t *f = fixture_new("other-ca");
  fixture_start(f);
  char other[400], ca[600], url[64];
  snprintf(other, sizeof other, "%s/other-state", f->root);
  assert_int_equal(dfnet_pki_init_state_dir(other, "impostor", NULL, 0, NULL), DFNET_STATUS_OK);
  snprintf(ca, sizeof ca, "%s/ca.crt", other);
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)f->mgr.port);
  run_t r;
  run_example(f, url, ca, &r);
  assert_int_not_equal(r.code, 0);
  assert_true(r.code > 0); /* it exited by itself, with an error */
  assert_string_equal(r.out, "");
  assert_non_null(strstr(r.err, "certificate verify failed"));
  char *log = read_file(f->mgr.log_path);
  assert_non_null(log);
  bool opened = strstr(log, VIEWER ": session") != NULL;
  free(log);
  assert_false(opened);
  fixture_free(f);
}

/* A server with a certificate from the right CA, naming 127.0.0.1, but of role viewer, is
 * not the manager: the example stops before the websocket upgrade. */
static void test_example_refuses_a_server_without_role_manager(void **state) {
  (void)state;
  if (python[0] == '\0')
    skip();
  fixture_t *f = fixture_new("not-manager");
  fixture_start(f);
  char dir[400], cert[500], key[500], ca[500], url[64];
  snprintf(dir, sizeof dir, "%s/impostor", f->root);
  const char *sans[] = {"127.0.0.1"};
  assert_int_equal(
      dfnet_pki_issue_to_dir(f->state, DFNET_PKI_ROLE_VIEWER, "impostor", dir, sans, 1, 30),
      DFNET_STATUS_OK);
  snprintf(cert, sizeof cert, "%s/impostor.crt", dir);
  snprintf(key, sizeof key, "%s/impostor.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  dfnet_transport_t *t = NULL;
  assert_int_equal(dfnet_transport_create(&t), DFNET_STATUS_OK);
  dfnet_server_config_t sc = {
      .bind_address = "127.0.0.1", .cert_file = cert, .key_file = key, .ca_file = ca};
  uint16_t port = 0;
  assert_int_equal(dfnet_transport_listen(t, &sc, NULL, &port), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(t), DFNET_STATUS_OK);
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)port);
  run_t r;
  run_example(f, url, ca, &r);
  dfnet_transport_destroy(t);
  assert_true(r.code > 0);
  assert_string_equal(r.out, "");
  assert_non_null(strstr(r.err, "does not carry the role manager"));
  fixture_free(f);
}

/* docs/protocol.md shows docs/examples/list_nodes.py as it is. */
static void test_doc_shows_the_example(void **state) {
  (void)state;
  const char *src = getenv("DFNET_SOURCE_DIR");
  char doc_path[600], script_path[600];
  snprintf(doc_path, sizeof doc_path, "%s/docs/protocol.md", src ? src : ".");
  snprintf(script_path, sizeof script_path, "%s/docs/examples/list_nodes.py", src ? src : ".");
  char *doc = read_file(doc_path), *script = read_file(script_path);
  assert_non_null(doc);
  assert_non_null(script);
  char *block = malloc(strlen(script) + 32);
  assert_non_null(block);
  sprintf(block, "```python\n%s```\n", script);
  assert_non_null(strstr(doc, block));
  free(block);
  free(doc);
  free(script);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_doc_shows_the_example),
      cmocka_unit_test(test_example_lists_nodes),
      cmocka_unit_test(test_example_refuses_another_ca),
      cmocka_unit_test(test_example_refuses_a_server_without_role_manager),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
