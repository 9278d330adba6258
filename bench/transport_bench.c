/* transport_bench: figures of the dfnet transport on loopback (issue 3, "Benchmark").
 *
 *   rtt64        p50/p99 round trip of a 64 B envelope over one secure websocket, driven
 *                from the client's service thread (the way the manager and agents use it)
 *   raw-tls      the same exchange of 64 B over a raw mbedTLS TLS 1.2 socket: the floor
 *                (same suite and curve as the transport), measured in slices taken in
 *                turns with rtt64's so that both see the same machine load; also the
 *                raw handshake time (the floor of "handshake")
 *                ... and again in a child process confined to one CPU ("one CPU:" lines):
 *                no cross-CPU wake-ups, so the ratio shows the code's own overhead
 *   inflight16   request/replies per second with 16 requests in flight
 *   mbps64k      MB/s of 64 KiB envelopes echoed (payload bytes sent per second, 4 in flight),
 *                beside the same over raw mbedTLS (in turns)
 *   handshake    connect to first reply (TCP + TLS + websocket upgrade + one echo): a
 *                new client, so a full TLS handshake (mutual ECDSA P-256, ECDHE P-256)
 *   reconnect    the server drops a session; the same client connects again, resuming its
 *                TLS session (abbreviated handshake), and has its first reply
 *
 * Usage: transport_bench [SECONDS_PER_FIGURE [FIGURES]]   (default 2, all figures)
 *   FIGURES: a comma-separated subset of hs,rtt,inflight,mbps (for profiling one part;
 *   rtt includes the raw-TLS floor)
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "echo_server.h"
#include "lib/log.h"
#include "lib/transport.h"
#include "tls_fixture.h"
#include "one_cpu.h"

static const char *dir;
static double seconds = 2.0;
static const char *figures = "hs,rtt,inflight,mbps";

static bool want(const char *fig) {
  size_t n = strlen(fig);
  for (const char *f = figures; (f = strstr(f, fig)) != NULL; f += n)
    if ((f == figures || f[-1] == ',') && (f[n] == ',' || f[n] == '\0'))
      return true;
  return false;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static char *p(const char *name) {
  static char bufs[8][512];
  static int i;
  return (char *)fixture_path(bufs[i++ % 8], 512, dir, name);
}

/* ---- driving requests from the client's service thread -------------------------------- */

typedef struct run {
  dfnet_transport_t *t;
  dfnet_session_id_t s;
  size_t size;
  uint8_t *payload;
  unsigned inflight;
  uint64_t deadline_ns;
  uint64_t done, bytes;
  uint64_t *rtts;
  size_t nrtt, caprtt;
  unsigned active;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool finished;
  bool inited;
} run_t;

typedef struct slot {
  run_t *r;
  uint64_t sent_ns;
} slot_t;

static void issue(run_t *r, slot_t *sl);

static void on_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply, bool last) {
  slot_t *sl = user;
  run_t *r = sl->r;
  (void)reply;
  (void)last;
  uint64_t t = now_ns();
  if (status != DFNET_STATUS_OK) {
    fprintf(stderr, "bench: request failed: %s\n", dfnet_status_str(status));
    exit(1);
  }
  r->done++;
  r->bytes += r->size;
  if (r->rtts && r->nrtt < r->caprtt)
    r->rtts[r->nrtt++] = t - sl->sent_ns;
  if (t < r->deadline_ns) {
    issue(r, sl);
    return;
  }
  free(sl);
  if (--r->active == 0) {
    pthread_mutex_lock(&r->mu);
    r->finished = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
}

static void issue(run_t *r, slot_t *sl) {
  static dfnet_envelope_t env; /* 34 KiB: set up once, not per request */
  if (env.pb.which_msg == 0) {
    dfnet_envelope_init(&env);
    env.pb.which_msg = dfnet_v1_Envelope_call_tag;
    strcpy(env.pb.msg.call.method, "/echo");
  }
  env.bulk.data = r->payload;
  env.bulk.size = r->size;
  dfnet_request_opts_t o = {.deadline_ms = 10000, .on_reply = on_reply, .user = sl};
  sl->sent_ns = now_ns();
  dfnet_status_t st = dfnet_transport_request(r->t, r->s, &env, &o, 0, NULL);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "bench: request: %s\n", dfnet_status_str(st));
    exit(1);
  }
}

static void kick(void *user) {
  run_t *r = user;
  r->active = r->inflight;
  for (unsigned i = 0; i < r->inflight; i++) {
    slot_t *sl = malloc(sizeof(*sl));
    sl->r = r;
    issue(r, sl);
  }
}

/* Run r for secs seconds (may be called again on the same r: figures accumulate). */
static void run_for(run_t *r, double secs) {
  if (!r->inited) {
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->inited = true;
  }
  r->finished = false;
  r->deadline_ns = now_ns() + (uint64_t)(secs * 1e9);
  dfnet_transport_post(r->t, kick, r);
  pthread_mutex_lock(&r->mu);
  while (!r->finished)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

static dfnet_transport_t *client_backoff(uint16_t port, dfnet_endpoint_id_t *ep,
                                         uint32_t backoff_ms) {
  dfnet_transport_t *t;
  char url[64];
  snprintf(url, sizeof(url), "wss://127.0.0.1:%u/", port);
  dfnet_client_config_t cfg = {.url = url,
                               .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
                               .cert_file = p("operator.crt"),
                               .key_file = p("operator.key"),
                               .ca_file = p("ca.crt"),
                               .backoff_initial_ms = backoff_ms,
                               .backoff_jitter_pct = 1};
  if (dfnet_transport_create(&t) != DFNET_STATUS_OK ||
      dfnet_transport_connect(t, &cfg, ep) != DFNET_STATUS_OK)
    exit(1);
  return t;
}

static dfnet_transport_t *client(uint16_t port, dfnet_endpoint_id_t *ep) {
  return client_backoff(port, ep, 50);
}

/* One echo of an empty Call on session s; exits on failure. */
static void echo_once(dfnet_transport_t *t, dfnet_session_id_t s) {
  dfnet_envelope_t req, reply;
  void *bulk;
  dfnet_envelope_init(&req);
  req.pb.which_msg = dfnet_v1_Envelope_call_tag;
  dfnet_status_t st = dfnet_transport_request_sync(t, s, &req, 5000, &reply, &bulk);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "transport_bench: echo: %s\n", dfnet_status_str(st));
    exit(1);
  }
  free(bulk);
}

/* ---- raw mbedTLS floor ------------------------------------------------------------------ */

typedef struct raw_server {
  int lfd;
  uint16_t port;
} raw_server_t;

static mbedtls_entropy_context ent;
static mbedtls_ctr_drbg_context drbg;

typedef struct raw_tls {
  mbedtls_ssl_config conf;
  mbedtls_x509_crt crt, ca;
  mbedtls_pk_context key;
} raw_tls_t;

static void raw_tls_init(raw_tls_t *r, int endpoint, const char *crt, const char *key) {
  mbedtls_ssl_config_init(&r->conf);
  mbedtls_x509_crt_init(&r->crt);
  mbedtls_x509_crt_init(&r->ca);
  mbedtls_pk_init(&r->key);
  mbedtls_x509_crt_parse_file(&r->crt, p(crt));
  mbedtls_x509_crt_parse_file(&r->ca, p("ca.crt"));
  mbedtls_pk_parse_keyfile(&r->key, p(key), NULL);
  mbedtls_ssl_config_defaults(&r->conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                              MBEDTLS_SSL_PRESET_DEFAULT);
  mbedtls_ssl_conf_min_version(&r->conf, 3, 3);
  mbedtls_ssl_conf_rng(&r->conf, mbedtls_ctr_drbg_random, &drbg);
  mbedtls_ssl_conf_ca_chain(&r->conf, &r->ca, NULL);
  mbedtls_ssl_conf_own_cert(&r->conf, &r->crt, &r->key);
  mbedtls_ssl_conf_authmode(&r->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  /* the curve and suite the transport negotiates, so that the floors compare like with
   * like (mbedTLS's default preference is P-521 first) */
  static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0};
  static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
  mbedtls_ssl_conf_ciphersuites(&r->conf, suites);
  mbedtls_ssl_conf_curves(&r->conf, curves);
}

static void raw_tls_free(raw_tls_t *r) {
  mbedtls_ssl_config_free(&r->conf);
  mbedtls_x509_crt_free(&r->crt);
  mbedtls_x509_crt_free(&r->ca);
  mbedtls_pk_free(&r->key);
}

static raw_tls_t raw_server_tls;

/* One connection of the raw server: handshake, then echo of 64-byte blocks. */
static void *raw_conn_main(void *arg) {
  int fd = (int)(intptr_t)arg;
  {
    mbedtls_ssl_context ssl;
    mbedtls_net_context cl;
    mbedtls_ssl_init(&ssl);
    mbedtls_net_init(&cl);
    mbedtls_ssl_setup(&ssl, &raw_server_tls.conf); /* shared, read-only */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    cl.fd = fd;
    mbedtls_ssl_set_bio(&ssl, &cl, mbedtls_net_send, mbedtls_net_recv, NULL);
    if (mbedtls_ssl_handshake(&ssl) == 0) {
      static _Thread_local unsigned char buf[16384];
      for (;;) { /* echo what comes */
        int n = mbedtls_ssl_read(&ssl, buf, sizeof(buf));
        if (n <= 0)
          break;
        for (int off = 0; off < n;) {
          int w = mbedtls_ssl_write(&ssl, buf + off, (size_t)(n - off));
          if (w <= 0)
            goto done;
          off += w;
        }
      }
    }
  done:
    mbedtls_ssl_free(&ssl);
    mbedtls_net_free(&cl);
  }
  return NULL;
}

/* Accepts connections until the listening socket is shut down, each served by its own
 * thread (the persistent echo connection and the handshake series overlap). */
static atomic_int raw_conns; /* connection threads running */

static void *raw_conn_thread(void *arg) {
  raw_conn_main(arg);
  atomic_fetch_sub(&raw_conns, 1);
  return NULL;
}

static void *raw_server_main(void *arg) {
  raw_server_t *rs = arg;
  raw_tls_init(&raw_server_tls, MBEDTLS_SSL_IS_SERVER, "manager.crt", "manager.key");
  for (;;) {
    int fd = accept(rs->lfd, NULL, NULL);
    if (fd < 0)
      break;
    pthread_t th;
    atomic_fetch_add(&raw_conns, 1);
    if (pthread_create(&th, NULL, raw_conn_thread, (void *)(intptr_t)fd) != 0) {
      atomic_fetch_sub(&raw_conns, 1);
      close(fd);
      continue;
    }
    pthread_detach(th);
  }
  while (atomic_load(&raw_conns) > 0) { /* their clients have closed: they are ending */
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  raw_tls_free(&raw_server_tls);
  return NULL;
}

/* One 64-byte echo over an established raw TLS connection. */
static void raw_echo(mbedtls_ssl_context *ssl, unsigned char *buf) {
  mbedtls_ssl_write(ssl, buf, 64);
  size_t got = 0;
  while (got < 64) {
    int r = mbedtls_ssl_read(ssl, buf + got, 64 - got);
    if (r <= 0)
      exit(1);
    got += (size_t)r;
  }
}

static void raw_connect(raw_tls_t *r, uint16_t port, mbedtls_ssl_context *ssl,
                        mbedtls_net_context *net) {
  char ports[8];
  mbedtls_ssl_init(ssl);
  mbedtls_net_init(net);
  mbedtls_ssl_setup(ssl, &r->conf);
  mbedtls_ssl_set_hostname(ssl, "localhost");
  snprintf(ports, sizeof(ports), "%u", port);
  if (mbedtls_net_connect(net, "127.0.0.1", ports, MBEDTLS_NET_PROTO_TCP) != 0)
    exit(1);
  int one = 1;
  setsockopt(net->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  mbedtls_ssl_set_bio(ssl, net, mbedtls_net_send, mbedtls_net_recv, NULL);
  int rc = mbedtls_ssl_handshake(ssl);
  if (rc != 0) {
    char text[128];
    mbedtls_strerror(rc, text, sizeof text);
    fprintf(stderr, "bench: raw TLS handshake failed: %s (-0x%04x)\n", text, (unsigned)-rc);
    exit(1);
  }
}

/* The raw mbedTLS floor: a server thread, a client connection, and the handshake series. */
typedef struct raw_floor {
  raw_server_t rs;
  pthread_t th;
  raw_tls_t r;
  mbedtls_ssl_context ssl;
  mbedtls_net_context net;
  unsigned char buf[64];
} raw_floor_t;

static void raw_floor_start(raw_floor_t *f) {
  memset(f, 0, sizeof(*f));
  f->rs.lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  bind(f->rs.lfd, (struct sockaddr *)&sa, sizeof(sa));
  listen(f->rs.lfd, 4);
  getsockname(f->rs.lfd, (struct sockaddr *)&sa, &sl);
  f->rs.port = ntohs(sa.sin_port);
  pthread_create(&f->th, NULL, raw_server_main, &f->rs);
  raw_tls_init(&f->r, MBEDTLS_SSL_IS_CLIENT, "operator.crt", "operator.key");
  raw_connect(&f->r, f->rs.port, &f->ssl, &f->net);
}

/* One raw connection: connect + handshake + one echo; returns its duration (ns). */
static uint64_t raw_floor_handshake(raw_floor_t *f) {
  mbedtls_ssl_context ssl;
  mbedtls_net_context net;
  unsigned char buf[64] = {0};
  uint64_t t0 = now_ns();
  raw_connect(&f->r, f->rs.port, &ssl, &net);
  raw_echo(&ssl, buf);
  uint64_t d = now_ns() - t0;
  mbedtls_ssl_close_notify(&ssl);
  mbedtls_net_free(&net);
  mbedtls_ssl_free(&ssl);
  return d;
}

/* 64-byte echoes for `ns` nanoseconds; round trips appended to rtts[*n..cap). */
static void raw_floor_slice(raw_floor_t *f, uint64_t ns, uint64_t *rtts, size_t *n, size_t cap) {
  uint64_t end = now_ns() + ns;
  while (*n < cap) {
    uint64_t t0 = now_ns();
    if (t0 > end)
      break;
    raw_echo(&f->ssl, f->buf);
    rtts[(*n)++] = now_ns() - t0;
  }
}

/* 64 KiB blocks echoed with 4 in flight for `ns` nanoseconds, as mbps64k does over the
 * transport; returns the payload bytes echoed. Non-blocking, so that writing ahead never
 * waits on a peer that waits on us. */
static uint64_t raw_floor_mbps_slice(raw_floor_t *f, uint64_t ns) {
  enum { BLOCK = 64 * 1024, INFLIGHT = 4 };
  static unsigned char out[BLOCK], in[16384];
  uint64_t sent = 0, recvd = 0, end = now_ns() + ns;
  size_t wpos = 0; /* of the block being written; 0 = none started */
  bool writing = false;
  mbedtls_net_set_nonblock(&f->net);
  for (;;) {
    bool more = now_ns() < end;
    if (!writing && more && sent - recvd < (uint64_t)INFLIGHT * BLOCK) {
      writing = true;
      wpos = 0;
    }
    if (!writing && sent == recvd)
      break;
    struct pollfd pfd = {.fd = f->net.fd, .events = POLLIN | (writing ? POLLOUT : 0)};
    if (mbedtls_ssl_get_bytes_avail(&f->ssl) == 0 && poll(&pfd, 1, 1000) < 0)
      exit(1);
    if (writing) {
      int w = mbedtls_ssl_write(&f->ssl, out + wpos, BLOCK - wpos);
      if (w > 0) {
        wpos += (size_t)w;
        if (wpos == BLOCK) {
          sent += BLOCK;
          writing = false;
        }
      } else if (w != MBEDTLS_ERR_SSL_WANT_WRITE && w != MBEDTLS_ERR_SSL_WANT_READ) {
        exit(1);
      }
    }
    for (;;) {
      int r = mbedtls_ssl_read(&f->ssl, in, sizeof(in));
      if (r > 0) {
        recvd += (uint64_t)r;
        continue;
      }
      if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
        exit(1);
      break;
    }
  }
  mbedtls_net_set_block(&f->net);
  return recvd;
}

static void raw_floor_stop(raw_floor_t *f) {
  mbedtls_ssl_close_notify(&f->ssl);
  mbedtls_net_free(&f->net);
  mbedtls_ssl_free(&f->ssl);
  shutdown(f->rs.lfd, SHUT_RDWR);
  pthread_join(f->th, NULL);
  close(f->rs.lfd);
  raw_tls_free(&f->r);
}

/* rtt64 again in a child process whose threads all run on CPU 0: the same exchange with
 * no wake-up crossing CPUs, so both sides' figures show the code's own cost rather than
 * where the scheduler placed four threads on this machine (cross-CPU wake-ups of a VM can
 * cost more than the whole exchange). */
static void rtt_on_one_cpu(void) {
  char cmd[4200], line[512];
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return;
  self[n] = '\0';
  snprintf(cmd, sizeof cmd, "DFNET_BENCH_ONE_CPU=1 '%s' %.3f rtt", self, seconds);
  FILE *f = popen(cmd, "r");
  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "  ", 2) == 0)
      printf("  one CPU:%s", line + 1);
  pclose(f);
  fflush(stdout);
}

int main(int argc, char **argv) {
  bench_one_cpu_if_asked("transport_bench");
  if (argc > 1)
    seconds = atof(argv[1]);
  if (seconds <= 0)
    seconds = 2.0;
  if (argc > 2)
    figures = argv[2];
  dfnet_log_set_level(getenv("DFNET_BENCH_DEBUG") ? DFNET_LOG_DEBUG : DFNET_LOG_WARN);
  dir = fixture_cert_dir();
  if (dir == NULL)
    return 1;
  mbedtls_entropy_init(&ent);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, (const unsigned char *)"b", 1);

  echo_server_t es;
  if (echo_server_start(&es, dir, 0, 0, 0) != 0)
    return 1;

  printf("transport_bench (loopback, %.1f s per figure)\n", seconds);
  static raw_floor_t rf;
  bool use_raw = want("hs") || want("rtt") || want("mbps");
  if (use_raw)
    raw_floor_start(&rf);
  if (want("hs")) {
    /* handshake: connect to first reply; "open" is connect to the session being up. In
     * turns with a raw mbedTLS connect + handshake + first echo (its floor). */
    enum { HS = 21 };
    uint64_t hs[HS], op[HS], rawhs[HS];
    for (int i = 0; i < HS; i++) {
      rawhs[i] = raw_floor_handshake(&rf);
      dfnet_endpoint_id_t ep;
      dfnet_transport_t *t = client(es.port, &ep);
      uint64_t t0 = now_ns();
      dfnet_transport_start(t);
      dfnet_session_id_t s;
      if (dfnet_transport_wait_session(t, ep, 5000, &s) != DFNET_STATUS_OK)
        return 1;
      op[i] = now_ns() - t0;
      echo_once(t, s);
      hs[i] = now_ns() - t0;
      dfnet_transport_destroy(t);
    }
    /* reconnect: the server drops the session; the client (backoff 1 ms) connects again,
     * resuming its TLS session, and has its first reply. */
    uint64_t rc[HS];
    dfnet_endpoint_id_t rep;
    dfnet_transport_t *rt = client_backoff(es.port, &rep, 1);
    dfnet_transport_start(rt);
    dfnet_session_id_t rs;
    if (dfnet_transport_wait_session(rt, rep, 5000, &rs) != DFNET_STATUS_OK) {
      fprintf(stderr, "transport_bench: no session\n");
      return 1;
    }
    echo_once(rt, rs);
    unsigned resumed_before = es.sessions_resumed;
    for (int i = 0; i < HS; i++) {
      dfnet_session_id_t old = rs;
      uint64_t t0 = now_ns();
      dfnet_status_t st = dfnet_transport_session_close(
          es.t, es.last_session, DFNET_STATUS_UNAVAILABLE, "bench: reconnect");
      if (st != DFNET_STATUS_OK) {
        fprintf(stderr, "transport_bench: close: %s\n", dfnet_status_str(st));
        return 1;
      }
      for (;;) {
        if (dfnet_transport_wait_session(rt, rep, 5000, &rs) != DFNET_STATUS_OK) {
          fprintf(stderr, "transport_bench: no session after a reconnect\n");
          return 1;
        }
        if (rs != old)
          break;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
      }
      echo_once(rt, rs);
      rc[i] = now_ns() - t0;
    }
    unsigned resumed = es.sessions_resumed - resumed_before;
    dfnet_transport_destroy(rt);
    qsort(hs, HS, sizeof(hs[0]), cmp_u64);
    qsort(op, HS, sizeof(op[0]), cmp_u64);
    qsort(rawhs, HS, sizeof(rawhs[0]), cmp_u64);
    printf(
        "  handshake  p50 %.2f ms  min %.2f ms  max %.2f ms  (target < 7; session open "
        "p50 %.2f ms)\n",
        hs[HS / 2] / 1e6, hs[0] / 1e6, hs[HS - 1] / 1e6, op[HS / 2] / 1e6);
    printf(
        "  raw-hs     raw mbedTLS connect + handshake + first echo p50 %.2f ms  min %.2f ms "
        "(the floor; same suite and curve, in turns)\n",
        rawhs[HS / 2] / 1e6, rawhs[0] / 1e6);
    qsort(rc, HS, sizeof(rc[0]), cmp_u64);
    printf(
        "  reconnect  p50 %.2f ms  min %.2f ms  max %.2f ms  (server drops the session -> "
        "client back with its first reply; %u of %d TLS sessions resumed; includes the "
        "1 ms backoff)\n",
        rc[HS / 2] / 1e6, rc[0] / 1e6, rc[HS - 1] / 1e6, resumed, HS);
    fflush(stdout);
  }

  static uint8_t payload[64 * 1024];
  uint64_t ws50 = 0;
  if (want("rtt") || want("inflight") || want("mbps")) {
    dfnet_endpoint_id_t ep;
    dfnet_transport_t *t = client(es.port, &ep);
    dfnet_transport_start(t);
    dfnet_session_id_t s;
    if (dfnet_transport_wait_session(t, ep, 5000, &s) != DFNET_STATUS_OK)
      return 1;
    if (want("rtt")) {
      /* The transport's round trips and the raw floor's, in alternating slices, so that
       * both see the same load from whatever else runs on the machine. */
      enum { SLICES = 10 };
      size_t cap = 2000000, nraw = 0;
      uint64_t *raw = malloc(cap * sizeof(uint64_t));
      run_t r1 = {.t = t, .s = s, .size = 64, .payload = payload, .inflight = 1};
      r1.caprtt = 2000000;
      r1.rtts = malloc(r1.caprtt * sizeof(uint64_t));
      double slice_s = seconds / SLICES;
      for (int i = 0; i < SLICES; i++) {
        run_for(&r1, slice_s);
        raw_floor_slice(&rf, (uint64_t)(slice_s * 1e9), raw, &nraw, cap);
      }
      qsort(r1.rtts, r1.nrtt, sizeof(uint64_t), cmp_u64);
      qsort(raw, nraw, sizeof(uint64_t), cmp_u64);
      ws50 = r1.rtts[r1.nrtt / 2];
      uint64_t raw50 = raw[nraw / 2];
      printf("  rtt64      wss p50 %6.1f us  p99 %6.1f us   (%zu samples)\n", ws50 / 1e3,
             r1.rtts[r1.nrtt * 99 / 100] / 1e3, r1.nrtt);
      printf(
          "  raw-tls    tls p50 %6.1f us  p99 %6.1f us   (%zu samples; mbedTLS floor, "
          "same suite and curve, sampled in turns with rtt64)\n",
          raw50 / 1e3, raw[nraw * 99 / 100] / 1e3, nraw);
      printf("  ratio      p50 wss/raw %.2f  (target <= 1.30)\n", (double)ws50 / (double)raw50);
      fflush(stdout);
      free(r1.rtts);
      free(raw);
      if (getenv("DFNET_BENCH_ONE_CPU") == NULL && sysconf(_SC_NPROCESSORS_ONLN) > 1)
        rtt_on_one_cpu();
    }
    if (want("inflight")) {
      run_t r16 = {.t = t, .s = s, .size = 64, .payload = payload, .inflight = 16};
      uint64_t t0 = now_ns();
      run_for(&r16, seconds);
      double rps = (double)r16.done / ((double)(now_ns() - t0) / 1e9);
      printf("  inflight16 %.0f req/s  (target >= 100000)\n", rps);
      fflush(stdout);
    }
    if (want("mbps")) {
      /* In turns with the raw floor (4 x 64 KiB in flight over raw mbedTLS, same suite). */
      enum { SLICES = 10 };
      run_t rb = {.t = t, .s = s, .size = sizeof(payload), .payload = payload, .inflight = 4};
      uint64_t ws_ns = 0, raw_ns = 0, raw_bytes = 0;
      for (int i = 0; i < SLICES; i++) {
        uint64_t t0 = now_ns();
        run_for(&rb, seconds / SLICES);
        uint64_t t1 = now_ns();
        raw_bytes += raw_floor_mbps_slice(&rf, (uint64_t)(seconds / SLICES * 1e9));
        ws_ns += t1 - t0;
        raw_ns += now_ns() - t1;
      }
      double mbps = (double)rb.bytes / ((double)ws_ns / 1e9) / 1e6;
      double raw_mbps = (double)raw_bytes / ((double)raw_ns / 1e9) / 1e6;
      printf(
          "  mbps64k    %.1f MB/s  (target >= 80; raw mbedTLS floor, same suite, 4 x 64 KiB "
          "in flight, in turns: %.1f MB/s)\n",
          mbps, raw_mbps);
      fflush(stdout);
    }
    dfnet_transport_destroy(t);
  }
  echo_server_stop(&es);
  if (use_raw)
    raw_floor_stop(&rf);

  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    return 1;
  return 0;
}
