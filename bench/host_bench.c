/* host_bench: figures of dfnet-host (issue 6 "Targets"), printed, never asserted.
 *
 * The real dfnet-host process against the scripted manager-side peer of
 * tests/host_agent/peer.h (real transport server, real TLS on loopback), on the captured
 * sysfs fixture with a board file and no USB:
 *   - start to every node announced (ms);
 *   - idle RSS of the agent after announcing (VmRSS and Pss from /proc; target < 8 MB),
 *     and again with one driver running;
 *   - DriverStart round trip with a package cache miss (fetch + verify + unpack + new
 *     driver host) and with a hit;
 *   - unary echo calls through the agent (manager peer -> agent -> driver host -> back):
 *     p50 / p99 / mean over N calls, one at a time.
 * Hot-plug to node visible at the manager needs a USB testbed inside the agent's process
 * (umockdev preloads into the process it runs): measured by the enumerator's own tests,
 * not here.
 *
 *   host_bench [calls]   (default 2000)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "lib/package.h"
#include "lib/pki.h"
#include "peer.h"

static char g_dir[256];

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
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

/* /proc/<pid>/status VmRSS and /proc/<pid>/smaps_rollup Pss, kB. */
static void memory_kb(pid_t pid, long *rss, long *pss) {
  char path[64], line[256];
  *rss = *pss = -1;
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      *rss = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", (long)pid);
  f = fopen(path, "r");
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Pss:", 4) == 0)
      *pss = strtol(line + 4, NULL, 10);
  if (f)
    fclose(f);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static dfnet_status_t start_echo(peer_t *p, dfnet_session_id_t s, const char *node,
                                 const uint8_t digest[32], const char *url) {
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  snprintf(req->pb.msg.driver_start.node, sizeof req->pb.msg.driver_start.node, "%s", node);
  snprintf(req->pb.msg.driver_start.url, sizeof req->pb.msg.driver_start.url, "%s", url);
  memcpy(req->pb.msg.driver_start.package_digest, digest, 32);
  snprintf(req->pb.msg.driver_start.binary, sizeof req->pb.msg.driver_start.binary,
           "driver/echo.so");
  void *bulk = NULL;
  dfnet_status_t st = dfnet_transport_request_sync(p->t, s, req, 20000, rep, &bulk);
  if (st == DFNET_STATUS_OK && rep->pb.which_msg != dfnet_v1_Envelope_driver_status_tag)
    st = rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? (dfnet_status_t)rep->pb.msg.status.code
                                                           : DFNET_STATUS_INTERNAL;
  free(bulk);
  free(req);
  free(rep);
  return st;
}

static dfnet_status_t stop_echo(peer_t *p, dfnet_session_id_t s, const char *node) {
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
  snprintf(req->pb.msg.driver_stop.node, sizeof req->pb.msg.driver_stop.node, "%s", node);
  void *bulk = NULL;
  dfnet_status_t st = dfnet_transport_request_sync(p->t, s, req, 20000, rep, &bulk);
  free(bulk);
  free(req);
  free(rep);
  return st;
}

int main(int argc, char **argv) {
  int calls = argc > 1 ? atoi(argv[1]) : 2000;
  if (calls < 10)
    calls = 10;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-host-bench-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return 1;
  char state[300], certs[300], path[1024], board[300], cache[300], log[300];
  snprintf(state, sizeof state, "%s/state", g_dir);
  snprintf(certs, sizeof certs, "%s/certs", g_dir);
  snprintf(board, sizeof board, "%s/board.json", g_dir);
  snprintf(cache, sizeof cache, "%s/cache", g_dir);
  snprintf(log, sizeof log, "%s/agent.log", g_dir);
  if (dfnet_pki_init_state_dir(state, "manager", NULL, 0, NULL) != DFNET_STATUS_OK ||
      dfnet_pki_issue_to_dir(state, DFNET_PKI_ROLE_HOST, "bench", certs, NULL, 0, 30) !=
          DFNET_STATUS_OK)
    return 1;
  write_text(board,
             "{\"devices\": [{\"name\": \"uart0\", \"vid\": 0, \"pid\": 0, \"did\": 28,"
             " \"resources\": {\"tty\": \"/dev/ttyS0\"}}]}\n");
  /* The echo test driver as a package. */
  char pkg[400];
  snprintf(pkg, sizeof pkg, "%s/pkg/echo", g_dir);
  snprintf(path, sizeof path, "mkdir -p '%s/meta' '%s/driver'", pkg, pkg);
  if (system(path) != 0)
    return 1;
  snprintf(path, sizeof path, "%s/meta/echo.json", pkg);
  write_text(path, "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/echo.so\"}}\n");
  snprintf(path, sizeof path, "%s/driver/echo.so", pkg);
  if (copy_file(DFNET_ECHO_SO, path) != 0)
    return 1;
  dfnet_package_buf_t ar = {0};
  char err[256], url[256];
  uint8_t digest[32];
  if (dfnet_package_pack_dir(pkg, &ar, err, sizeof err) != DFNET_STATUS_OK)
    return 1;
  dfnet_package_digest(ar.data, ar.size, digest);
  dfnet_package_url("echo", digest, url, sizeof url);

  peer_t peer;
  char mcrt[400], mkey[400], ca[400], hcrt[400], hkey[400];
  snprintf(mcrt, sizeof mcrt, "%s/manager.crt", state);
  snprintf(mkey, sizeof mkey, "%s/manager.key", state);
  snprintf(ca, sizeof ca, "%s/ca.crt", state);
  snprintf(hcrt, sizeof hcrt, "%s/bench.crt", certs);
  snprintf(hkey, sizeof hkey, "%s/bench.key", certs);
  peer_init(&peer, mcrt, mkey, ca);
  peer_add_package(&peer, digest, ar.data, ar.size);
  if (peer_start(&peer, 0) != 0)
    return 1;

  char manager[64], sysfs[400];
  snprintf(manager, sizeof manager, "wss://127.0.0.1:%u", (unsigned)peer.port);
  snprintf(sysfs, sizeof sysfs, "%s", DFNET_FIXTURES_DIR "/sysfs-virtio-vm");
  double t0 = now_ms();
  pid_t agent = test_child_fork();
  if (agent == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      close(fd);
    }
    execl(DFNET_HOST_BIN, DFNET_HOST_BIN, "--manager", manager, "--cert", hcrt, "--key", hkey,
          "--ca", ca, "--sysfs-root", sysfs, "--no-usb", "--board", board, "--cache-dir", cache,
          "--driver-host", DFNET_DRIVER_HOST_BIN, "--log-level", "warn", (char *)NULL);
    _exit(127);
  }
  /* 6 PCI functions + the pci bus node + the platform bus node + uart0 = 9 NodeAdds. */
  size_t from = 0;
  int seen = 0;
  while (seen < 9 &&
         peer_wait(&peer, dfnet_v1_Envelope_node_add_tag, NULL, NULL, &from, 10000) >= 0)
    seen++;
  double t_announced = now_ms() - t0;
  if (seen < 9) {
    fprintf(stderr, "host_bench: only %d nodes announced (see %s)\n", seen, log);
    kill(agent, SIGKILL);
    return 1;
  }
  sleep_ms(1000); /* idle */
  long rss, pss;
  memory_kb(agent, &rss, &pss);
  printf("host_bench: nodes announced           %d nodes in %.1f ms from exec\n", seen,
         t_announced);
  printf("host_bench: agent idle RSS            %ld kB (Pss %ld kB)  [target < 8192 kB]\n", rss,
         pss);

  dfnet_session_id_t s = peer_wait_session(&peer, 0, 5000);
  double a = now_ms();
  dfnet_status_t st = start_echo(&peer, s, "dev.bench.pci.00_05_0", digest, url);
  double t_miss = now_ms() - a;
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "host_bench: DriverStart failed: %s\n", dfnet_status_str(st));
    kill(agent, SIGKILL);
    return 1;
  }
  stop_echo(&peer, s, "dev.bench.pci.00_05_0");
  a = now_ms();
  st = start_echo(&peer, s, "dev.bench.pci.00_05_0", digest, url);
  double t_hit = now_ms() - a;
  printf(
      "host_bench: DriverStart, cache miss   %.2f ms (%zu-byte package: fetch, SHA-256, "
      "unpack, new driver host, start)\n",
      t_miss, ar.size);
  printf("host_bench: DriverStart, cache hit    %.2f ms (verify, new driver host, start)\n", t_hit);

  double *lat = calloc((size_t)calls, sizeof *lat);
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  static const char payload[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes */
  int ok = 0;
  double total0 = now_ms();
  for (int i = 0; i < calls; i++) {
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_call_tag;
    snprintf(req->pb.msg.call.target, sizeof req->pb.msg.call.target, "dev.bench.pci.00_05_0");
    snprintf(req->pb.msg.call.method, sizeof req->pb.msg.call.method, "/dfnet.test.Echo/Echo");
    req->pb.msg.call.deadline_ms = 5000;
    req->bulk.data = (const uint8_t *)payload;
    req->bulk.size = sizeof payload - 1;
    void *bulk = NULL;
    double c0 = now_ms();
    st = dfnet_transport_request_sync(peer.t, s, req, 10000, rep, &bulk);
    lat[i] = now_ms() - c0;
    if (st == DFNET_STATUS_OK && rep->pb.which_msg == dfnet_v1_Envelope_reply_tag &&
        rep->pb.msg.reply.code == dfnet_v1_Code_OK && rep->bulk.size == sizeof payload - 1)
      ok++;
    free(bulk);
  }
  double total = now_ms() - total0;
  qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
  printf(
      "host_bench: echo call via the agent   %d/%d OK, p50 %.3f ms, p99 %.3f ms, mean %.3f ms "
      "(%.0f calls/s, one at a time, 32 B)\n",
      ok, calls, lat[calls / 2], lat[(calls * 99) / 100], total / calls, calls * 1000.0 / total);
  memory_kb(agent, &rss, &pss);
  printf("host_bench: agent RSS, 1 driver, after calls %ld kB (Pss %ld kB)\n", rss, pss);
  free(lat);
  free(req);
  free(rep);

  kill(agent, SIGTERM);
  int status = 0;
  waitpid(agent, &status, 0);
  peer_stop(&peer);
  peer_free(&peer);
  dfnet_package_buf_free(&ar);
  snprintf(path, sizeof path, "rm -rf '%s'", g_dir);
  if (system(path) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
