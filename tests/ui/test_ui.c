/* `dfnet ui` against a live fabric (issue 24 item 5): the quickstart's fleet — a manager, a
 * host agent (on the captured sysfs of a virtio VM) and the real virtio-rng driver bound to
 * its RNG — and the real `dfnet ui --listen 127.0.0.1:0` as a child.
 *   - no token, a wrong one, a token of the wrong length: 401 with no data, for the page
 *     and for /api; the token as a header serves /api with the CLI's JSON documents;
 *   - a second `dfnet ui` on the same port fails (exit 1) without printing a URL;
 *   - Debian's chromium, driven by tests/ui/page_test.mjs (puppeteer-core): the host row,
 *     the node tree with the RNG bound to virtio-rng, the feed's backlog (`dfnet ui` starts
 *     before the agent), a lease on the RNG, a bind-why answer, then a test node
 *     added here after the page said READY, seen in the event feed and the tree without a
 *     reload; the screenshot goes to <build>/tests/ui/ui-fleet.png;
 *   - the manager restarted under an open feed: `event: watch-ended`, then the watch runs
 *     again by itself and a node added reaches the same feed;
 *   - SIGTERM ends `dfnet ui` with exit 0.
 * Skipped (77) when node, chromium or puppeteer-core (scripts/deps.sh) is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "integration/cli_run.h"
#include "integration/fabric.h"

#define HOST "lab-ui"
#define RNG "dev." HOST ".pci.00_05_0"     /* virtio-rng binds it (the fixture's 00:05.0) */
#define UNBOUND "dev." HOST ".pci.00_03_0" /* virtio_net: no driver of the index */
#define PROBE_NAME "ui-probe"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  const char *agent_args[5];
  dfnet_client_t *admin;
  pid_t ui;
  int ui_out;
  uint16_t port;
  char token[80], url[200];
} F = {.ui = -1, .ui_out = -1};

/* Read a line from fd into buf (without the newline), waiting up to ms. */
static bool read_line(int fd, char *buf, size_t cap, unsigned ms) {
  size_t len = 0;
  uint64_t until = fabric_now_ms() + ms;
  while (len + 1 < cap && fabric_now_ms() < until) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
      continue;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n <= 0)
      return false;
    if (c == '\n') {
      buf[len] = '\0';
      return true;
    }
    buf[len++] = c;
  }
  return false;
}

/* `dfnet ui --listen 127.0.0.1:0`, its stdout on a pipe; its URL and token from the line. */
static int start_ui(void) {
  char cli[600], log[600];
  snprintf(cli, sizeof cli, "%s/clients/dfnet", F.fab.build);
  snprintf(log, sizeof log, "%s/ui.log", F.fab.root);
  int out[2];
  if (pipe(out) != 0)
    return -1;
  F.ui = test_child_fork();
  if (F.ui == 0) {
    dup2(out[1], 1);
    FILE *e = freopen(log, "w", stderr);
    (void)e;
    close(out[0]);
    setenv("DFNET_UI_PING_MS", "200", 1); /* test_closed_feeds_free_their_slots */
    execl(cli, cli, "ui", "--listen", "127.0.0.1:0", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  F.ui_out = out[0];
  char line[400];
  if (F.ui < 0 || !read_line(F.ui_out, line, sizeof line, 20000)) {
    fprintf(stderr, "dfnet ui printed no URL (log: %s)\n", log);
    return -1;
  }
  unsigned port = 0;
  if (sscanf(line, "dfnet ui: http://127.0.0.1:%u/?token=%79s", &port, F.token) != 2 ||
      strlen(F.token) < 32 || strspn(F.token, "0123456789abcdef") != strlen(F.token)) {
    fprintf(stderr, "unexpected first line: %s\n", line);
    return -1;
  }
  F.port = (uint16_t)port;
  snprintf(F.url, sizeof F.url, "http://127.0.0.1:%u/?token=%s", port, F.token);
  return 0;
}

static int setup(void **state) {
  (void)state;
  const fabric_package_t none[] = {{NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "ui", NULL, none) != 0 || fabric_issue(&F.fab, "host", HOST) != 0 ||
      fabric_issue(&F.fab, "admin", "ui-admin") != 0)
    return -1;
  /* the quickstart's driver: the real virtio-rng package of the build */
  if (fabric_sh("cp -r '%s/drivers/virtio-rng' '%s/drivers/virtio-rng'", F.fab.build, F.fab.root) !=
      0)
    return -1;
  const char *board[] = {NULL};
  fabric_write_board(&F.fab, board);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  /* the page's server first, as the quickstart's watch: its feed has the fleet coming up */
  cli_use(&F.fab, "ui-admin");
  if (start_ui() != 0)
    return -1;
  F.agent.name = HOST;
  F.agent_args[0] = "--label";
  F.agent_args[1] = "rack=r1";
  F.agent_args[2] = "--label";
  F.agent_args[3] = "room=lab-2";
  F.agent.extra = F.agent_args;
  fabric_start_agent(&F.fab, &F.agent);
  if ((F.admin = fabric_connect(&F.fab, "ui-admin")) == NULL)
    return -1;
  if (!fabric_wait_node(F.admin, RNG, fabric_is_bound, NULL, WAIT_MS, NULL) ||
      !fabric_wait_node(F.admin, RNG ".rng", fabric_is_found, NULL, WAIT_MS, NULL)) {
    fprintf(stderr, "%s did not bind (agent log: %s)\n", RNG, F.agent.log);
    return -1;
  }
  /* a lease on the RNG, for the leases table */
  const char *targets[] = {RNG};
  dfnet_client_lease_options_t lo = {
      .targets = targets, .target_count = 1, .reason = "ui test: reading entropy"};
  dfnet_client_lease_t *lease = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_lease_acquire(F.admin, &lo, &lease, &err) != DFNET_STATUS_OK) {
    fprintf(stderr, "lease on %s: %s\n", RNG, err.message);
    return -1;
  }
  dfnet_client_lease_free(lease);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (F.ui > 0)
    fabric_stop_process(&F.ui, SIGKILL);
  if (F.ui_out >= 0)
    close(F.ui_out);
  dfnet_client_close(F.admin);
  fabric_cleanup(&F.fab, &F.agent, 1);
  return 0;
}

/* ---- plain HTTP against the page's endpoint -------------------------------------------- */

typedef struct http_answer {
  int status;
  char text[1 << 16]; /* headers and body */
  const char *body;
} http_answer_t;

#define UI_STREAMS 17 /* more than dfnet ui's UI_STREAMS_MAX (16) */

static http_answer_t A;         /* 64 KiB: static storage */
static const char *host_header; /* NULL: "127.0.0.1:<port>" */

/* `method path` with more header lines (each ending in CRLF, or ""), the answer in A. */
static void http_ask(const char *method, const char *path, const char *headers) {
  memset(&A, 0, sizeof A);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(F.port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  char req[1024], host[80];
  snprintf(host, sizeof host, "127.0.0.1:%u", (unsigned)F.port);
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                   "Content-Length: 0\r\n%s\r\n",
                   method, path, host_header ? host_header : host, headers);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t len = 0;
  uint64_t until = fabric_now_ms() + 10000;
  while (len + 1 < sizeof A.text && fabric_now_ms() < until) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
      continue;
    ssize_t r = read(fd, A.text + len, sizeof A.text - 1 - len);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  A.text[len] = '\0';
  assert_int_equal(sscanf(A.text, "HTTP/1.%*d %d", &A.status), 1);
  const char *b = strstr(A.text, "\r\n\r\n");
  A.body = b != NULL ? b + 4 : "";
}

static void http_get(const char *path, const char *headers) { http_ask("GET", path, headers); }

static void test_token_required(void **state) {
  (void)state;
  char path[200], hdr[200];
  /* nothing, a wrong token, a cut one, a cookie of another name: 401, no data */
  const char *paths[] = {"/", "/app.js", "/api/nodes", "/api/hosts", "/api/events"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    http_get(paths[i], "");
    assert_int_equal(A.status, 401);
    assert_null(strstr(A.body, HOST));
  }
  http_get("/?token=00000000000000000000000000000000", "");
  assert_int_equal(A.status, 401);
  snprintf(path, sizeof path, "/api/nodes?token=%.31s", F.token);
  http_get(path, "");
  assert_int_equal(A.status, 401);
  snprintf(hdr, sizeof hdr, "Cookie: other=%s\r\n", F.token);
  http_get("/api/nodes", hdr);
  assert_int_equal(A.status, 401);
  assert_null(strstr(A.body, "00_05_0"));
  /* the right token under another site's name (DNS rebinding), or another port: 401 */
  char other[80];
  snprintf(path, sizeof path, "/api/nodes?token=%s", F.token);
  snprintf(other, sizeof other, "rebound.example:%u", (unsigned)F.port);
  const char *hosts[] = {other, "127.0.0.1:1"};
  for (size_t i = 0; i < 2; i++) {
    host_header = hosts[i];
    http_get(path, "");
    host_header = NULL;
    assert_int_equal(A.status, 401);
    assert_null(strstr(A.body, "00_05_0"));
  }
  snprintf(other, sizeof other, "localhost:%u", (unsigned)F.port);
  host_header = other; /* the loopback names of the page's own address are fine */
  http_get(path, "");
  host_header = NULL;
  assert_int_equal(A.status, 200);

  /* the page with the token: 200 and the cookie for what follows */
  snprintf(path, sizeof path, "/?token=%s", F.token);
  http_get(path, "");
  assert_int_equal(A.status, 200);
  snprintf(hdr, sizeof hdr, "dfnet_ui=%s; Path=/; HttpOnly; SameSite=Strict", F.token);
  assert_non_null(strstr(A.text, hdr));
  assert_non_null(strstr(A.body, "<title>dfnet fleet</title>"));
  /* the cookie serves the API: `node list --json`'s document */
  snprintf(hdr, sizeof hdr, "Cookie: a=b; dfnet_ui=%s\r\n", F.token);
  http_get("/api/nodes", hdr);
  assert_int_equal(A.status, 200);
  cJSON *doc = cJSON_Parse(A.body);
  assert_non_null(doc);
  bool bound = false;
  cJSON *n;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(doc, "nodes")) {
    if (strcmp(cJSON_GetObjectItem(n, "moniker")->valuestring, RNG) == 0)
      bound = strcmp(cJSON_GetObjectItem(n, "state")->valuestring, "bound") == 0;
  }
  cJSON_Delete(doc);
  assert_true(bound);
  /* the header serves it too; bind why of a node with a bad argument is a 400 */
  snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", F.token);
  http_get("/api/hosts", hdr);
  assert_int_equal(A.status, 200);
  assert_non_null(strstr(A.body, "\"name\":\"" HOST "\""));
  http_get("/api/bind-why", hdr);
  assert_int_equal(A.status, 400);
  http_ask("POST", "/api/nodes", hdr); /* the page changes nothing */
  assert_int_equal(A.status, 405);
  http_get("/api/nowhere", hdr);
  assert_int_equal(A.status, 404);
  http_get("/api/bind-why?node=" UNBOUND, hdr);
  assert_int_equal(A.status, 200);
  assert_non_null(strstr(A.body, "\"traces\""));
  http_get("/api/bind-why?node=dev.nowhere", hdr);
  assert_int_equal(A.status, 404);
  assert_non_null(strstr(A.body, "\"NOT_FOUND\""));
  /* the refusals on its stderr: the first said, the flood after it counted, not written */
  char log[600], text[8192] = "";
  snprintf(log, sizeof log, "%s/ui.log", F.fab.root);
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  text[fread(text, 1, sizeof text - 1, f)] = '\0';
  fclose(f);
  const char *first = strstr(text, "dfnet ui: refused GET / from 127.0.0.1:");
  if (first == NULL || strstr(first, ": no valid token (401)\n") == NULL)
    fail_msg("%s: %s", log, text);
  /* one more kind: the right token under another Host (said once for the two) */
  const char *second = strstr(first + 1, "dfnet ui: refused");
  assert_non_null(second);
  assert_non_null(strstr(second, "a Host header that is not this page's address (401)"));
  assert_null(strstr(second + 1, "dfnet ui: refused"));
}

/* A second `dfnet ui` on the same port says so and exits 1. */
static void test_port_in_use(void **state) {
  (void)state;
  static cli_run_t r; /* 1 MiB of output: static storage */
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)F.port);
  assert_int_equal(cli_run(&r, &F.fab, "ui", "--listen", listen, NULL), 1);
  if (strstr(r.err, "cannot listen on 127.0.0.1:") == NULL)
    fail_msg("stderr: %s", r.err);
  assert_int_equal(r.out_len, 0); /* no URL */
}

/* ---- the page in chromium -------------------------------------------------------------- */

static bool have_browser(char *why, size_t cap, const char *node_dir) {
  char path[700];
  snprintf(path, sizeof path, "%s/node_modules/puppeteer-core/package.json", node_dir);
  if (access(path, R_OK) != 0)
    snprintf(why, cap, "no puppeteer-core in %s (scripts/deps.sh)", node_dir);
  else if (access("/usr/bin/chromium", X_OK) != 0 && getenv("CHROMIUM") == NULL)
    snprintf(why, cap, "no /usr/bin/chromium (scripts/deps.sh)");
  else if (fabric_sh("command -v node >/dev/null") != 0)
    snprintf(why, cap, "no node (scripts/deps.sh)");
  else
    return true;
  return false;
}

static void test_page(void **state) {
  (void)state;
  const char *src = getenv("DFNET_SOURCE_DIR");
  assert_non_null(src);
  char node_dir[600], script[600], shot[700], why[800];
  snprintf(node_dir, sizeof node_dir, "%s/.deps/node", src);
  snprintf(script, sizeof script, "%s/tests/ui/page_test.mjs", src);
  snprintf(shot, sizeof shot, "%s/tests/ui/ui-fleet.png", F.fab.build);
  if (!have_browser(why, sizeof why, node_dir)) /* deps.sh installs them: a failure, not a skip */
    fail_msg("the browser test cannot run: %s", why);
  setenv("DFNET_NODE_DIR", node_dir, 1);
  setenv("DFNET_UI_HOST", HOST " rack=r1", 1);
  setenv("DFNET_UI_BOUND", RNG " virtio-rng", 1);
  setenv("DFNET_UI_UNBOUND", UNBOUND, 1);
  setenv("DFNET_UI_PROBE", RNG ".rng." PROBE_NAME, 1);
  setenv("DFNET_UI_LEASE", "ui-admin " RNG, 1);
  int out[2];
  assert_int_equal(pipe(out), 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execlp("node", "node", script, F.url, shot, (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  /* its lines go on to our stdout; at READY the fabric changes under the open page */
  bool added = false;
  char line[2048];
  while (read_line(out[0], line, sizeof line, 120000)) {
    printf("  page: %s\n", line);
    if (strcmp(line, "READY") == 0) {
      dfnet_client_property_t p = {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 99};
      dfnet_client_error_t err;
      assert_int_equal(dfnet_client_test_node_add(F.admin, RNG ".rng", PROBE_NAME, &p, 1, &err),
                       DFNET_STATUS_OK);
      added = true;
    }
  }
  close(out[0]);
  int ws = fabric_stop_process(&pid, 0); /* it has ended (stdout closed): reaped */
  assert_true(added);
  assert_true(WIFEXITED(ws));
  assert_int_equal(WEXITSTATUS(ws), 0);
  assert_int_equal(access(shot, R_OK), 0);
  printf("screenshot: %s\n", shot);
}

/* ---- the feed across a restart of the manager ------------------------------------------ */

static char sse[1 << 16]; /* what the event stream said */
static size_t sse_len;

/* Read the stream until needle shows up past *from (then *from moves past it), up to ms. */
static bool sse_wait(int fd, const char *needle, size_t *from, unsigned ms) {
  uint64_t until = fabric_now_ms() + ms;
  for (;;) {
    const char *at = strstr(sse + *from, needle);
    if (at != NULL) {
      *from = (size_t)(at - sse) + strlen(needle);
      return true;
    }
    if (fabric_now_ms() >= until || sse_len + 1 >= sizeof sse)
      return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
      continue;
    ssize_t n = read(fd, sse + sse_len, sizeof sse - 1 - sse_len);
    if (n <= 0)
      return false;
    sse_len += (size_t)n;
    sse[sse_len] = '\0';
  }
}

/* Open /api/events on a new connection; its fd once the answer's first bytes are in (the
 * status line in *status), or -1. */
static int open_feed(unsigned *status) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(F.port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    return -1;
  char req[400], buf[4096];
  int n = snprintf(req, sizeof req,
                   "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAuthorization: Bearer "
                   "%s\r\n\r\n",
                   (unsigned)F.port, F.token);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (write(fd, req, (size_t)n) != n || poll(&p, 1, 5000) <= 0 ||
      (n = (int)read(fd, buf, sizeof buf - 1)) <= 0 || sscanf(buf, "HTTP/1.1 %u", status) != 1) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Regression: the transport sees a reader that left only when it writes, so the streams of
 * closed pages kept their slots on a quiet fleet and a page opened later got 503. `dfnet ui`
 * writes ": ping" to every stream (DFNET_UI_PING_MS, 200 ms here): the closed ones go. */
static void test_closed_feeds_free_their_slots(void **state) {
  (void)state;
  int fds[UI_STREAMS];
  size_t open = 0;
  unsigned status = 0;
  for (; open < UI_STREAMS; open++) { /* every slot (some may be the page's) */
    fds[open] = open_feed(&status);
    assert_true(fds[open] >= 0);
    if (status != 200) {
      close(fds[open]);
      break;
    }
  }
  assert_int_equal(status, 503);      /* full */
  for (size_t i = 0; i < open; i++) { /* as a browser leaves: all read, then FIN (no RST) */
    char buf[4096];
    struct pollfd p = {.fd = fds[i], .events = POLLIN};
    while (poll(&p, 1, 100) > 0 && read(fds[i], buf, sizeof buf) > 0)
      ;
    close(fds[i]);
  }
  fabric_sleep_ms(1500); /* several pings */
  int fd = open_feed(&status);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(status, 200);
}

/* The session to the manager is lost: the feed says so (watch-ended), and once the manager is
 * back the watch runs again by itself: a node added then reaches the same open feed. */
static void test_manager_restart(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(F.port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  char req[400];
  int n = snprintf(req, sizeof req,
                   "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAccept: text/event-stream\r\n"
                   "Authorization: Bearer %s\r\n\r\n",
                   (unsigned)F.port, F.token);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t at = 0;
  assert_true(sse_wait(fd, "text/event-stream", &at, 10000));
  assert_true(sse_wait(fd, "\"kind\":\"HOST_CONNECTED\"", &at, 10000)); /* the backlog */

  assert_true(fabric_stop_process(&F.fab.manager, SIGTERM) >= 0);
  assert_true(sse_wait(fd, "event: watch-ended\ndata: {\"code\":\"UNAVAILABLE\"", &at, 20000));
  assert_int_equal(fabric_restart_manager(&F.fab, "127.0.0.1", 30), 0);
  assert_true(fabric_wait_node(F.admin, RNG ".rng", fabric_is_found, NULL, WAIT_MS, NULL));
  /* the watch starts again within a second or so of the session: add nodes until one is
   * seen (one added before the watch is back is not an event of it) */
  bool seen = false;
  for (int k = 0; k < 15 && !seen; k++) {
    char name[32];
    snprintf(name, sizeof name, "after-restart-%d", k);
    dfnet_client_property_t p = {.int_key = 1, .type = DFNET_CLIENT_VALUE_INT, .int_value = 98};
    dfnet_client_error_t err;
    assert_int_equal(dfnet_client_test_node_add(F.admin, RNG ".rng", name, &p, 1, &err),
                     DFNET_STATUS_OK);
    size_t from = at;
    seen = sse_wait(fd, "\"subject\":\"" RNG ".rng.after-restart-", &from, 2000);
  }
  close(fd);
  assert_true(seen);
}

/* Last: SIGTERM ends it cleanly (the manager session closed, the streams ended). */
static void test_sigterm(void **state) {
  (void)state;
  int ws = fabric_stop_process(&F.ui, SIGTERM);
  assert_true(WIFEXITED(ws));
  assert_int_equal(WEXITSTATUS(ws), 0);
  F.ui = -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_required),
      cmocka_unit_test(test_port_in_use),
      cmocka_unit_test(test_closed_feeds_free_their_slots),
      cmocka_unit_test(test_page),
      cmocka_unit_test(test_manager_restart),
      cmocka_unit_test(test_sigterm),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
