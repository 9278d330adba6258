/* Transport tests: real TLS websockets on loopback, real child processes (issue 3, "Tests").
 * No mocks. Timings are never asserted, except that waits are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "echo_server.h"
#include "raw_ws.h"
#include "lib/transport.h"
#include "tls_fixture.h"

static const char *dir;

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static char *path(const char *name) {
  static char bufs[8][512];
  static int i;
  char *b = bufs[i++ % 8];
  return (char *)fixture_path(b, 512, dir, name);
}

/* ---- client side helpers ------------------------------------------------------------ */

typedef struct client {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t ep;
  atomic_uint opened, closed, resumed;
  atomic_int last_close;
  char last_close_msg[128];
} client_t;

static void c_open(void *user, const dfnet_session_info_t *info) {
  client_t *c = user;
  if (info->tls_resumed)
    c->resumed++;
  c->opened++;
}

static void c_closed(void *user, dfnet_session_id_t s, dfnet_status_t reason, const char *msg) {
  client_t *c = user;
  (void)s;
  c->last_close = (int)reason;
  snprintf(c->last_close_msg, sizeof(c->last_close_msg), "%s", msg);
  c->closed++;
}

/* client_add with the first reconnect delay (ms) and its jitter (percent; 0 = 20 %). */
static dfnet_endpoint_id_t client_add_backoff(client_t *c, uint16_t port, const char *subprotocol,
                                              const char *who,
                                              const dfnet_transport_limits_t *limits,
                                              uint32_t backoff_ms, uint32_t jitter_pct) {
  char url[64], crt[64], key[64];
  snprintf(url, sizeof(url), "wss://127.0.0.1:%u/", port);
  snprintf(crt, sizeof(crt), "%s.crt", who);
  snprintf(key, sizeof(key), "%s.key", who);
  dfnet_client_config_t cfg = {
      .url = url,
      .subprotocol = subprotocol,
      .cert_file = path(crt),
      .key_file = path(key),
      .ca_file = path("ca.crt"),
      .backoff_initial_ms = backoff_ms,
      .backoff_max_ms = 400,
      .backoff_jitter_pct = jitter_pct,
      .callbacks = {.on_session_open = c_open, .on_session_closed = c_closed},
      .user = c,
  };
  if (limits)
    cfg.limits = *limits;
  dfnet_endpoint_id_t ep = 0;
  assert_int_equal(dfnet_transport_connect(c->t, &cfg, &ep), DFNET_STATUS_OK);
  return ep;
}

static dfnet_endpoint_id_t client_add(client_t *c, uint16_t port, const char *subprotocol,
                                      const char *who, const dfnet_transport_limits_t *limits) {
  return client_add_backoff(c, port, subprotocol, who, limits, 100, 0);
}

static void client_init(client_t *c, uint16_t port, const char *subprotocol, const char *who,
                        const dfnet_transport_limits_t *limits) {
  memset(c, 0, sizeof(*c));
  assert_int_equal(dfnet_transport_create(&c->t), DFNET_STATUS_OK);
  c->ep = client_add(c, port, subprotocol, who, limits);
  assert_int_equal(dfnet_transport_start(c->t), DFNET_STATUS_OK);
}

static dfnet_envelope_t *call_env(const char *method, const uint8_t *bulk, size_t n, uint32_t seq) {
  static _Thread_local dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(env.pb.msg.call.method, sizeof(env.pb.msg.call.method), "%s", method);
  snprintf(env.pb.msg.call.target, sizeof(env.pb.msg.call.target), "dev.test");
  env.pb.msg.call.credit = seq;
  env.bulk.data = bulk;
  env.bulk.size = n;
  return &env;
}

/* ---- completion recorder ------------------------------------------------------------ */

typedef struct rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned calls, lasts;
  dfnet_status_t status;
  pb_size_t which;
  int code;
} rec_t;

#define REC_INIT \
  { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0 }

static void rec_cb(void *user, dfnet_status_t status, const dfnet_envelope_t *reply, bool last) {
  rec_t *r = user;
  pthread_mutex_lock(&r->mu);
  r->calls++;
  if (last)
    r->lasts++;
  r->status = status;
  if (reply) {
    r->which = reply->pb.which_msg;
    if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag)
      r->code = reply->pb.msg.status.code;
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static bool rec_wait_lasts(rec_t *r, unsigned n, unsigned ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->mu);
  while (r->lasts < n)
    if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
      break;
  bool ok = r->lasts >= n;
  pthread_mutex_unlock(&r->mu);
  return ok;
}

/* ---- echo over one and several connections ------------------------------------------ */

typedef struct flow {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned inflight, done, bad, out_of_order;
  uint32_t next_seq;
} flow_t;

typedef struct req_ctx {
  flow_t *f;
  uint32_t seq;
  size_t size;
} req_ctx_t;

static size_t size_of(uint32_t seq) {
  if (seq == 0)
    return 0;
  if (seq % 500 == 7)
    return 1024u * 1024u; /* 1 MiB */
  if (seq % 50 == 3)
    return 64u * 1024u + seq;
  return seq % 2048;
}

static void fill(uint8_t *buf, size_t n, uint32_t seq) {
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)(seq + i * 7);
}

static void flow_cb(void *user, dfnet_status_t status, const dfnet_envelope_t *reply, bool last) {
  req_ctx_t *rc = user;
  flow_t *f = rc->f;
  bool ok = status == DFNET_STATUS_OK && last && reply &&
            reply->pb.which_msg == dfnet_v1_Envelope_call_tag &&
            reply->pb.msg.call.credit == rc->seq && reply->bulk.size == rc->size;
  if (ok)
    for (size_t i = 0; i < rc->size; i++)
      if (reply->bulk.data[i] != (uint8_t)(rc->seq + i * 7)) {
        ok = false;
        break;
      }
  pthread_mutex_lock(&f->mu);
  if (!ok)
    f->bad++;
  if (rc->seq != f->next_seq)
    f->out_of_order++;
  f->next_seq = rc->seq + 1;
  f->done++;
  f->inflight--;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
  free(rc);
}

typedef struct pump_args {
  dfnet_transport_t *t;
  dfnet_session_id_t session;
  flow_t f;
  uint32_t count;
} pump_args_t;

static void *pump(void *arg) {
  pump_args_t *a = arg;
  uint8_t *buf = malloc(1024u * 1024u + 1);
  for (uint32_t seq = 0; seq < a->count; seq++) {
    pthread_mutex_lock(&a->f.mu);
    while (a->f.inflight >= 32)
      pthread_cond_wait(&a->f.cv, &a->f.mu);
    a->f.inflight++;
    pthread_mutex_unlock(&a->f.mu);
    size_t n = size_of(seq);
    fill(buf, n, seq);
    req_ctx_t *rc = malloc(sizeof(*rc));
    *rc = (req_ctx_t){&a->f, seq, n};
    dfnet_request_opts_t o = {.deadline_ms = 60000, .on_reply = flow_cb, .user = rc};
    dfnet_status_t st = dfnet_transport_request(a->t, a->session, call_env("/echo", buf, n, seq),
                                                &o, DFNET_SEND_WAIT, NULL);
    if (st != DFNET_STATUS_OK) {
      free(rc);
      pthread_mutex_lock(&a->f.mu);
      a->f.bad++;
      a->f.inflight--;
      a->f.done++;
      pthread_mutex_unlock(&a->f.mu);
    }
  }
  pthread_mutex_lock(&a->f.mu);
  while (a->f.done < a->count)
    pthread_cond_wait(&a->f.cv, &a->f.mu);
  pthread_mutex_unlock(&a->f.mu);
  free(buf);
  return NULL;
}

static void flow_init(pump_args_t *a, dfnet_transport_t *t, dfnet_session_id_t s, uint32_t n) {
  memset(a, 0, sizeof(*a));
  pthread_mutex_init(&a->f.mu, NULL);
  pthread_cond_init(&a->f.cv, NULL);
  a->t = t;
  a->session = s;
  a->count = n;
}

static void test_echo_10000_one_connection(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "operator", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  /* the server saw the client's certificate: name and role (its open callback may run
   * just after ours) */
  for (int i = 0; i < 250 && es.sessions_opened == 0; i++)
    sleep_ms(20);
  assert_string_equal(es.last_peer, "bob");
  assert_string_equal(es.last_role, "operator");
  dfnet_session_info_t info;
  char buf[512];
  assert_int_equal(dfnet_transport_session_info(c.t, s, &info, buf, sizeof(buf)), DFNET_STATUS_OK);
  assert_string_equal(info.peer_name, "manager");
  assert_string_equal(info.role_name, "manager");

  pump_args_t a;
  flow_init(&a, c.t, s, 10000);
  pump(&a);
  assert_int_equal(a.f.done, 10000);
  assert_int_equal(a.f.bad, 0);
  assert_int_equal(a.f.out_of_order, 0);
  dfnet_transport_destroy(c.t);
  assert_int_equal(c.closed, 1);
  assert_int_equal(c.last_close, DFNET_STATUS_CANCELLED);
  echo_server_stop(&es);
}

static void test_echo_several_connections(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  memset(&c, 0, sizeof(c));
  assert_int_equal(dfnet_transport_create(&c.t), DFNET_STATUS_OK);
  enum { N = 4 };
  dfnet_endpoint_id_t eps[N];
  const char *who[N] = {"operator", "viewer", "host", "host2"};
  for (int i = 0; i < N; i++)
    eps[i] = client_add(&c, es.port, i < 2 ? DFNET_SUBPROTOCOL_CLIENT : DFNET_SUBPROTOCOL_HOST,
                        who[i], NULL);
  assert_int_equal(dfnet_transport_start(c.t), DFNET_STATUS_OK);
  pump_args_t a[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    dfnet_session_id_t s;
    assert_int_equal(dfnet_transport_wait_session(c.t, eps[i], 10000, &s), DFNET_STATUS_OK);
    flow_init(&a[i], c.t, s, 1500);
  }
  for (int i = 0; i < N; i++)
    pthread_create(&th[i], NULL, pump, &a[i]);
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(a[i].f.done, 1500);
    assert_int_equal(a[i].f.bad, 0);
    assert_int_equal(a[i].f.out_of_order, 0);
  }
  assert_int_equal(es.sessions_opened, N);
  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

/* ---- batching: many envelopes queued in one service turn ------------------------------- */

typedef struct burst {
  pump_args_t a; /* its flow: order and content checks of flow_cb */
  uint32_t count;
  dfnet_status_t first_error;
} burst_t;

/* Sizes of the burst: mostly small (batched several to a write), some larger than a
 * batch (16 KiB), one larger than a fragment (128 KiB) in the middle. */
static size_t burst_size(uint32_t seq) {
  if (seq == 1000)
    return 300u * 1024u;
  if (seq % 97 == 5)
    return 20u * 1024u + seq;
  return seq % 200;
}

/* On the client's service thread: queue the whole burst in this one callback, so that
 * the transport writes it out batched. */
static void burst_issue(void *user) {
  burst_t *b = user;
  uint8_t *buf = malloc(300u * 1024u);
  assert_non_null(buf);
  for (uint32_t seq = 0; seq < b->count; seq++) {
    size_t n = burst_size(seq);
    fill(buf, n, seq);
    req_ctx_t *rc = malloc(sizeof(*rc));
    *rc = (req_ctx_t){&b->a.f, seq, n};
    dfnet_request_opts_t o = {.deadline_ms = 60000, .on_reply = flow_cb, .user = rc};
    pthread_mutex_lock(&b->a.f.mu);
    b->a.f.inflight++;
    pthread_mutex_unlock(&b->a.f.mu);
    dfnet_status_t st =
        dfnet_transport_request(b->a.t, b->a.session, call_env("/echo", buf, n, seq), &o, 0, NULL);
    if (st != DFNET_STATUS_OK) {
      free(rc);
      pthread_mutex_lock(&b->a.f.mu);
      if (b->first_error == DFNET_STATUS_OK)
        b->first_error = st;
      b->a.f.bad++;
      b->a.f.inflight--;
      b->a.f.done++;
      pthread_cond_broadcast(&b->a.f.cv);
      pthread_mutex_unlock(&b->a.f.mu);
    }
  }
  free(buf);
}

/* Small envelopes queued together go out several to a write, and still arrive as
 * separate websocket messages (one envelope each), whole and in order, both ways (the
 * echo server's replies to a burst are batched too). */
static void test_batched_small_envelopes(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "operator", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  for (int i = 0; i < 250 && es.last_session == 0; i++)
    sleep_ms(20);
  dfnet_session_id_t server_s = es.last_session;
  assert_true(server_s != 0);

  static burst_t b;
  memset(&b, 0, sizeof(b));
  flow_init(&b.a, c.t, s, 3000);
  b.count = 3000;
  assert_int_equal(dfnet_transport_post(c.t, burst_issue, &b), DFNET_STATUS_OK);
  pthread_mutex_lock(&b.a.f.mu);
  while (b.a.f.done < b.count)
    pthread_cond_wait(&b.a.f.cv, &b.a.f.mu);
  pthread_mutex_unlock(&b.a.f.mu);
  assert_int_equal(b.first_error, DFNET_STATUS_OK);
  assert_int_equal(b.a.f.done, 3000);
  assert_int_equal(b.a.f.bad, 0);
  assert_int_equal(b.a.f.out_of_order, 0);
  /* the server decoded exactly one envelope per message sent */
  assert_int_equal(es.envelopes, 3000);

  dfnet_session_stats_t cst, sst;
  assert_int_equal(dfnet_transport_session_stats(c.t, s, &cst), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_session_stats(es.t, server_s, &sst), DFNET_STATUS_OK);
  assert_int_equal(cst.sent_messages, 3000);
  assert_int_equal(cst.received_messages, 3000);
  assert_int_equal(sst.received_messages, 3000);
  assert_int_equal(sst.sent_messages, 3000);
  /* and they really were batched: far fewer writes than messages, each way */
  assert_true(cst.writes > 0 && cst.writes * 2 < cst.sent_messages);
  assert_true(sst.writes > 0 && sst.writes * 2 < sst.sent_messages);
  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

/* limits.batch_messages: 16 small messages sent in one turn of the service thread go out
 * in writes of that many (the default 4: four writes; a relay's 16: one). */
typedef struct turn_burst {
  dfnet_transport_t *t;
  dfnet_session_id_t s;
  atomic_bool done;
} turn_burst_t;

static void turn_burst_send(void *user) {
  turn_burst_t *b = user;
  for (uint32_t i = 0; i < 16; i++)
    assert_int_equal(dfnet_transport_send(b->t, b->s, call_env("/silent", NULL, 0, i), 0),
                     DFNET_STATUS_OK);
  atomic_store(&b->done, true);
}

static uint64_t writes_for_burst(uint16_t port, uint32_t batch_messages) {
  client_t c;
  dfnet_transport_limits_t lim = {.batch_messages = batch_messages};
  client_init(&c, port, DFNET_SUBPROTOCOL_CLIENT, "operator", &lim);
  turn_burst_t b = {.t = c.t};
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &b.s), DFNET_STATUS_OK);
  dfnet_session_stats_t before, after;
  sleep_ms(100); /* the session's own first messages are out */
  assert_int_equal(dfnet_transport_session_stats(c.t, b.s, &before), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_post(c.t, turn_burst_send, &b), DFNET_STATUS_OK);
  for (int i = 0; i < 500; i++) {
    assert_int_equal(dfnet_transport_session_stats(c.t, b.s, &after), DFNET_STATUS_OK);
    if (atomic_load(&b.done) && after.sent_messages == before.sent_messages + 16)
      break;
    sleep_ms(2);
  }
  assert_int_equal(after.sent_messages, before.sent_messages + 16);
  dfnet_transport_destroy(c.t);
  return after.writes - before.writes;
}

static void test_batch_messages_limit(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  assert_int_equal(writes_for_burst(es.port, 0), 4);
  assert_int_equal(writes_for_burst(es.port, 16), 1);
  echo_server_stop(&es);
}

/* Several threads sending on one session at once, without waiting for each other: the
 * service thread's wake-ups are shared between them (one per batch of work), and no
 * send is left waiting for a wake-up that never comes. */
typedef struct sender {
  pump_args_t a;
  pthread_t th;
} sender_t;

static void *send_many(void *arg) {
  sender_t *sd = arg;
  pump_args_t *a = &sd->a;
  uint8_t buf[64];
  for (uint32_t seq = 0; seq < a->count; seq++) {
    pthread_mutex_lock(&a->f.mu);
    while (a->f.inflight >= 64)
      pthread_cond_wait(&a->f.cv, &a->f.mu);
    a->f.inflight++;
    pthread_mutex_unlock(&a->f.mu);
    size_t n = seq % sizeof(buf);
    fill(buf, n, seq);
    req_ctx_t *rc = malloc(sizeof(*rc));
    *rc = (req_ctx_t){&a->f, seq, n};
    dfnet_request_opts_t o = {.deadline_ms = 60000, .on_reply = flow_cb, .user = rc};
    if (dfnet_transport_request(a->t, a->session, call_env("/echo", buf, n, seq), &o,
                                DFNET_SEND_WAIT, NULL) != DFNET_STATUS_OK) {
      free(rc);
      pthread_mutex_lock(&a->f.mu);
      a->f.bad++;
      a->f.inflight--;
      a->f.done++;
      pthread_mutex_unlock(&a->f.mu);
    }
  }
  pthread_mutex_lock(&a->f.mu);
  while (a->f.done < a->count)
    pthread_cond_wait(&a->f.cv, &a->f.mu);
  pthread_mutex_unlock(&a->f.mu);
  return NULL;
}

static void test_threads_share_one_session(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "operator", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  enum { N = 4, COUNT = 2000 };
  static sender_t sd[N];
  for (int i = 0; i < N; i++)
    flow_init(&sd[i].a, c.t, s, COUNT);
  for (int i = 0; i < N; i++)
    assert_int_equal(pthread_create(&sd[i].th, NULL, send_many, &sd[i]), 0);
  for (int i = 0; i < N; i++) {
    pthread_join(sd[i].th, NULL);
    assert_int_equal(sd[i].a.f.done, COUNT);
    assert_int_equal(sd[i].a.f.bad, 0);
    /* each thread's requests keep their order through the queue, the wire and back */
    assert_int_equal(sd[i].a.f.out_of_order, 0);
  }
  assert_int_equal(es.envelopes, N * COUNT);
  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

/* ---- the server speaks first; a timer's send goes out without other traffic ------------ */

typedef struct talker {
  dfnet_transport_t *t;
  dfnet_session_id_t session;
  atomic_uint got; /* envelopes the client received */
  atomic_uint bad; /* ... not as expected */
} talker_t;

static void talker_timer(void *user) {
  talker_t *tk = user;
  static dfnet_envelope_t env;
  dfnet_envelope_init(&env);
  env.pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(env.pb.msg.call.method, sizeof(env.pb.msg.call.method), "/from-timer");
  env.pb.msg.call.credit = 3;
  assert_int_equal(dfnet_transport_send(tk->t, tk->session, &env, 0), DFNET_STATUS_OK);
}

/* Server: at session open, send three envelopes at once (they leave right behind the
 * upgrade response, and may reach the client in the same read), then one more from a
 * timer 200 ms later. */
static void talker_open(void *user, const dfnet_session_info_t *info) {
  talker_t *tk = user;
  tk->session = info->id;
  static uint8_t big[20000];
  static dfnet_envelope_t env;
  for (uint32_t i = 0; i < 3; i++) {
    dfnet_envelope_init(&env);
    env.pb.which_msg = dfnet_v1_Envelope_call_tag;
    snprintf(env.pb.msg.call.method, sizeof(env.pb.msg.call.method), "/hello");
    env.pb.msg.call.credit = i;
    env.bulk.data = big;
    env.bulk.size = i == 1 ? sizeof(big) : i;
    assert_int_equal(dfnet_transport_send(tk->t, info->id, &env, 0), DFNET_STATUS_OK);
  }
  assert_int_equal(dfnet_transport_timer_start(tk->t, 200, talker_timer, tk, NULL),
                   DFNET_STATUS_OK);
}

static void listener_envelope(void *user, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  talker_t *tk = user;
  (void)session;
  unsigned n = tk->got;
  bool ok = env->pb.which_msg == dfnet_v1_Envelope_call_tag && env->pb.msg.call.credit == n &&
            env->bulk.size == (n == 1   ? 20000u
                               : n == 3 ? 0u
                                        : n);
  if (!ok)
    tk->bad++;
  tk->got++;
}

static void test_server_speaks_first(void **state) {
  (void)state;
  talker_t server = {0}, client = {0};
  assert_int_equal(dfnet_transport_create(&server.t), DFNET_STATUS_OK);
  dfnet_server_config_t scfg = {
      .bind_address = "127.0.0.1",
      .cert_file = path("manager.crt"),
      .key_file = path("manager.key"),
      .ca_file = path("ca.crt"),
      .callbacks = {.on_session_open = talker_open},
      .user = &server,
  };
  uint16_t port;
  assert_int_equal(dfnet_transport_listen(server.t, &scfg, NULL, &port), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(server.t), DFNET_STATUS_OK);

  char url[64];
  snprintf(url, sizeof(url), "wss://127.0.0.1:%u/", port);
  assert_int_equal(dfnet_transport_create(&client.t), DFNET_STATUS_OK);
  dfnet_client_config_t ccfg = {
      .url = url,
      .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
      .cert_file = path("operator.crt"),
      .key_file = path("operator.key"),
      .ca_file = path("ca.crt"),
      .callbacks = {.on_envelope = listener_envelope},
      .user = &client,
  };
  assert_int_equal(dfnet_transport_connect(client.t, &ccfg, NULL), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(client.t), DFNET_STATUS_OK);
  /* no other traffic: keepalive is 10 s, so each of these arrives on its own or not at
   * all within the wait */
  for (int i = 0; i < 150 && client.got < 4; i++)
    sleep_ms(20);
  assert_int_equal(client.got, 4);
  assert_int_equal(client.bad, 0);
  dfnet_transport_destroy(client.t);
  dfnet_transport_destroy(server.t);
}

/* ---- oversized, deadline, stream, cancel, sync ---------------------------------------- */

static void test_oversized_then_carries_on(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 64 * 1024, 0), 0);
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "operator", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  static uint8_t big[200 * 1024];
  rec_t r = REC_INIT;
  dfnet_request_opts_t o = {.deadline_ms = 10000, .on_reply = rec_cb, .user = &r};
  assert_int_equal(
      dfnet_transport_request(c.t, s, call_env("/echo", big, sizeof(big), 1), &o, 0, NULL),
      DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&r, 1, 10000));
  assert_int_equal(r.status, DFNET_STATUS_OK);
  assert_int_equal(r.which, dfnet_v1_Envelope_status_tag);
  assert_int_equal(r.code, DFNET_STATUS_RESOURCE_EXHAUSTED);
  /* the same connection carries on */
  dfnet_envelope_t reply;
  void *bulk = NULL;
  uint8_t small[100] = {1, 2, 3};
  assert_int_equal(dfnet_transport_request_sync(c.t, s, call_env("/echo", small, sizeof(small), 2),
                                                10000, &reply, &bulk),
                   DFNET_STATUS_OK);
  assert_int_equal(reply.pb.which_msg, dfnet_v1_Envelope_call_tag);
  assert_int_equal(reply.bulk.size, sizeof(small));
  assert_memory_equal(reply.bulk.data, small, sizeof(small));
  free(bulk);
  assert_int_equal(dfnet_transport_client_session(c.t, c.ep), s);
  assert_int_equal(c.opened, 1);
  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

static void test_deadline_stream_cancel(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "viewer", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);

  /* deadline exceeded fires once */
  rec_t dl = REC_INIT;
  dfnet_request_opts_t o = {.deadline_ms = 150, .on_reply = rec_cb, .user = &dl};
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/silent", NULL, 0, 1), &o, 0, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&dl, 1, 5000));
  sleep_ms(400);
  assert_int_equal(dl.calls, 1);
  assert_int_equal(dl.status, DFNET_STATUS_DEADLINE_EXCEEDED);

  /* streamed replies: five, then the last */
  rec_t st = REC_INIT;
  dfnet_request_opts_t so = {
      .deadline_ms = 5000, .streaming = true, .on_reply = rec_cb, .user = &st};
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/stream", NULL, 0, 2), &so, 0, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&st, 1, 5000));
  sleep_ms(100);
  assert_int_equal(st.calls, 6);
  assert_int_equal(st.lasts, 1);
  assert_int_equal(st.status, DFNET_STATUS_OK);

  /* cancel: CANCELLED once; a second cancel finds nothing */
  rec_t cr = REC_INIT;
  dfnet_request_opts_t co = {.on_reply = rec_cb, .user = &cr};
  uint64_t id = 0;
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/silent", NULL, 0, 3), &co, 0, &id),
                   DFNET_STATUS_OK);
  assert_true(id % 2 == 1); /* the connecting side's ids are odd */
  assert_int_equal(dfnet_transport_request_cancel(c.t, s, id, true, "test"), DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&cr, 1, 5000));
  sleep_ms(100);
  assert_int_equal(dfnet_transport_request_cancel(c.t, s, id, true, "again"),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(cr.calls, 1);
  assert_int_equal(cr.status, DFNET_STATUS_CANCELLED);

  /* a request that fails at once never calls back */
  rec_t bad = REC_INIT;
  dfnet_request_opts_t bo = {.on_reply = rec_cb, .user = &bad};
  assert_int_equal(
      dfnet_transport_request(c.t, s + 100, call_env("/echo", NULL, 0, 4), &bo, 0, NULL),
      DFNET_STATUS_NOT_FOUND);
  sleep_ms(50);
  assert_int_equal(bad.calls, 0);

  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

/* ---- a server in another process ---------------------------------------------------- */

typedef struct child {
  pid_t pid;
  uint16_t port;
} child_t;

static child_t spawn_server(uint16_t port, uint32_t keepalive_ms) {
  int fds[2];
  child_t ch = {0, 0};
  assert_int_equal(pipe(fds), 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char p[16], ka[16];
    snprintf(p, sizeof(p), "%u", port);
    snprintf(ka, sizeof(ka), "%u", keepalive_ms);
    dup2(fds[1], 1);
    close(fds[0]);
    execl(DFNET_ECHO_SERVER, DFNET_ECHO_SERVER, dir, p, "0", ka, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char line[64] = "";
  FILE *f = fdopen(fds[0], "r");
  if (fgets(line, sizeof(line), f) != NULL) {
    unsigned v = 0;
    if (sscanf(line, "PORT %u", &v) == 1)
      ch.port = (uint16_t)v;
  }
  fclose(f);
  ch.pid = pid;
  assert_true(ch.port != 0);
  return ch;
}

static void reap(child_t *ch) {
  kill(ch->pid, SIGKILL);
  waitpid(ch->pid, NULL, 0);
}

static void test_server_killed_then_back(void **state) {
  (void)state;
  child_t ch = spawn_server(0, 0);
  client_t c;
  client_init(&c, ch.port, DFNET_SUBPROTOCOL_HOST, "host", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  enum { CALLS = 5 };
  rec_t r[CALLS];
  for (int i = 0; i < CALLS; i++) {
    r[i] = (rec_t)REC_INIT;
    dfnet_request_opts_t o = {.on_reply = rec_cb, .user = &r[i]};
    assert_int_equal(
        dfnet_transport_request(c.t, s, call_env("/silent", NULL, 0, (uint32_t)i), &o, 0, NULL),
        DFNET_STATUS_OK);
  }
  sleep_ms(100);
  reap(&ch);
  for (int i = 0; i < CALLS; i++) {
    assert_true(rec_wait_lasts(&r[i], 1, 5000));
  }
  sleep_ms(100);
  for (int i = 0; i < CALLS; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].status, DFNET_STATUS_UNAVAILABLE);
  }
  assert_int_equal(c.closed, 1);
  assert_int_equal(c.last_close, DFNET_STATUS_UNAVAILABLE);

  /* the server comes back on the same port: the client reconnects within the backoff bound
   * (400 ms cap + 20 % jitter), plus slack for the child's start */
  sleep_ms(500);
  child_t back = spawn_server(ch.port, 0);
  uint64_t t0 = dfnet_transport_now_ms();
  dfnet_session_id_t s2;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 480 + 3000, &s2), DFNET_STATUS_OK);
  fprintf(stderr, "# reconnected %llu ms after the server came back\n",
          (unsigned long long)(dfnet_transport_now_ms() - t0));
  assert_true(s2 != s);
  assert_int_equal(c.opened, 2);
  dfnet_transport_destroy(c.t);
  reap(&back);
}

static void test_keepalive_closes_silent_peer(void **state) {
  (void)state;
  child_t ch = spawn_server(0, 60000);
  client_t c;
  dfnet_transport_limits_t lim = {.keepalive_ms = 200};
  client_init(&c, ch.port, DFNET_SUBPROTOCOL_HOST, "host", &lim);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  rec_t r = REC_INIT;
  dfnet_request_opts_t o = {.on_reply = rec_cb, .user = &r};
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/silent", NULL, 0, 1), &o, 0, NULL),
                   DFNET_STATUS_OK);
  sleep_ms(600); /* pings answered: still open */
  assert_int_equal(c.closed, 0);
  kill(ch.pid, SIGSTOP);
  assert_true(rec_wait_lasts(&r, 1, 10000));
  assert_int_equal(r.status, DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(r.calls, 1);
  for (int i = 0; i < 100 && c.closed == 0; i++)
    sleep_ms(20);
  assert_int_equal(c.closed, 1);
  assert_int_equal(c.last_close, DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(c.last_close_msg, "keepalive"));
  dfnet_transport_destroy(c.t);
  reap(&ch);
}

/* Regression: an idle session stays up. Both ends ping after 100 ms of silence and close
 * after 300 ms; 25 intervals with no traffic but pings and pongs (lws answers a ping with
 * an empty pong) must close nothing and reconnect nothing. */
static void test_keepalive_idle_session_stays_up(void **state) {
  (void)state;
  child_t ch = spawn_server(0, 100);
  client_t c;
  dfnet_transport_limits_t lim = {.keepalive_ms = 100};
  client_init(&c, ch.port, DFNET_SUBPROTOCOL_HOST, "host", &lim);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  sleep_ms(2500);
  assert_int_equal(c.closed, 0);
  assert_int_equal(c.opened, 1);
  /* and the server kept it too: a request still goes through on the same session */
  rec_t r = REC_INIT;
  dfnet_request_opts_t o = {.on_reply = rec_cb, .user = &r, .deadline_ms = 5000};
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/echo", NULL, 0, 1), &o, 0, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&r, 1, 10000));
  assert_int_equal(r.status, DFNET_STATUS_OK);
  assert_int_equal(c.closed, 0);
  dfnet_transport_destroy(c.t);
  reap(&ch);
}

static void test_slow_reader_bounded(void **state) {
  (void)state;
  child_t ch = spawn_server(0, 60000);
  client_t c;
  const uint32_t hwm = 1024 * 1024;
  dfnet_transport_limits_t lim = {.send_hwm_bytes = hwm, .keepalive_ms = 60000};
  client_init(&c, ch.port, DFNET_SUBPROTOCOL_HOST, "host", &lim);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  kill(ch.pid, SIGSTOP);
  static uint8_t chunk[64 * 1024];
  bool exhausted = false;
  unsigned sent = 0;
  for (int i = 0; i < 20000 && !exhausted; i++) {
    dfnet_envelope_t *e = call_env("/silent", chunk, sizeof(chunk), (uint32_t)i);
    dfnet_status_t st = dfnet_transport_send(c.t, s, e, 0);
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED)
      exhausted = true;
    else
      assert_int_equal(st, DFNET_STATUS_OK);
    sent++;
    if (i % 64 == 0)
      sleep_ms(5);
  }
  assert_true(exhausted);
  dfnet_session_stats_t stats;
  assert_int_equal(dfnet_transport_session_stats(c.t, s, &stats), DFNET_STATUS_OK);
  fprintf(stderr, "# slow reader: %u sends, peak queue %llu bytes (bound %u)\n", sent,
          (unsigned long long)stats.queued_bytes_peak, hwm);
  assert_true(stats.queued_bytes_peak <= hwm);
  assert_true(stats.queued_bytes > 0);
  /* a call's small final status still gets in line (DFNET_SEND_PAST_HWM); a large message
   * does not, with the flag or without */
  dfnet_envelope_t *fin = call_env("/silent", chunk, 3000, 1); /* < DFNET_SEND_PAST_HWM_MAX */
  dfnet_status_t st = DFNET_STATUS_OK;
  for (int i = 0; i < 1000000 && st == DFNET_STATUS_OK; i++)
    st = dfnet_transport_send(c.t, s, fin, 0); /* up to the mark */
  assert_int_equal(st, DFNET_STATUS_RESOURCE_EXHAUSTED);
  for (int i = 0; i < 100; i++) /* over the mark, or under it if the socket took some */
    assert_int_equal(dfnet_transport_send(c.t, s, fin, DFNET_SEND_PAST_HWM), DFNET_STATUS_OK);
  /* larger messages are refused again as soon as the queue is over the mark (whatever the
   * kernel still takes meanwhile: 10,000 of them are far more than its buffers) */
  dfnet_envelope_t *big = call_env("/silent", chunk, DFNET_SEND_PAST_HWM_MAX + 1, 2);
  st = DFNET_STATUS_OK;
  for (int i = 0; i < 10000 && st == DFNET_STATUS_OK; i++)
    st = dfnet_transport_send(c.t, s, big, DFNET_SEND_PAST_HWM);
  assert_int_equal(st, DFNET_STATUS_RESOURCE_EXHAUSTED);
  kill(ch.pid, SIGCONT);
  dfnet_transport_destroy(c.t);
  reap(&ch);
}

/* ---- refusals ------------------------------------------------------------------------ */

static int saved_stderr = -1;
static char log_file[64];

static void log_capture_start(void) {
  snprintf(log_file, sizeof(log_file), "/tmp/dfnet-tlog-XXXXXX");
  int fd = mkstemp(log_file);
  assert_true(fd >= 0);
  fflush(stderr);
  saved_stderr = dup(2);
  dup2(fd, 2);
  close(fd);
}

static void log_capture_stop(void) {
  if (saved_stderr < 0)
    return;
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  saved_stderr = -1;
  char *text = fixture_read_file(log_file);
  if (text) {
    fprintf(stderr, "%s", text); /* keep the server's lines in the test output */
    free(text);
  }
  unlink(log_file);
}

static unsigned log_count(const char *needle) {
  char *text = fixture_read_file(log_file);
  unsigned n = 0;
  for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
    n++;
  free(text);
  return n;
}

static bool log_wait(const char *needle, unsigned count, unsigned ms) {
  for (unsigned waited = 0; waited < ms; waited += 20) {
    if (log_count(needle) >= count)
      return true;
    sleep_ms(20);
  }
  return log_count(needle) >= count;
}

static const char upgrade_req[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: "
    "dfnet.client.v1\r\n\r\n";

/* Send the upgrade over TLS; true if the server answered 101. */
static bool tls_upgrade(fixture_tls_t *tls) {
  char resp[512] = "";
  if (fixture_tls_write(tls, upgrade_req, strlen(upgrade_req)) != 0)
    return false;
  int n = fixture_tls_read(tls, resp, sizeof(resp) - 1);
  if (n <= 0)
    return false;
  resp[n] = '\0';
  return strstr(resp, " 101 ") != NULL;
}

static void refused_client(uint16_t port, const char *sub, const char *who) {
  client_t c;
  client_init(&c, port, sub, who, NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 700, &s),
                   DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(c.opened, 0);
  dfnet_transport_destroy(c.t);
}

static void test_refusals(void **state) {
  (void)state;
  log_capture_start();
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  int err = 0;

  /* control: a raw TLS 1.2 client with a valid certificate gets its upgrade */
  fixture_tls_t *ok =
      fixture_tls_connect(es.port, path("ca.crt"), path("viewer.crt"), path("viewer.key"), 3, &err);
  assert_non_null(ok);
  assert_true(tls_upgrade(ok));
  fixture_tls_close(ok);

  /* no client certificate: the TLS handshake completes (lws+mbedTLS), our check refuses */
  fixture_tls_t *anon = fixture_tls_connect(es.port, path("ca.crt"), NULL, NULL, 3, &err);
  assert_non_null(anon);
  assert_false(tls_upgrade(anon));
  fixture_tls_close(anon);
  assert_true(log_wait("no certificate presented", 1, 3000));

  /* TLS 1.0 and 1.1 handshakes are refused */
  assert_null(fixture_tls_connect(es.port, path("ca.crt"), path("viewer.crt"), path("viewer.key"),
                                  1, &err));
  assert_true(err != 0);
  assert_null(fixture_tls_connect(es.port, path("ca.crt"), path("viewer.crt"), path("viewer.key"),
                                  2, &err));
  assert_true(err != 0);
  assert_true(log_wait("TLS handshake failed", 2, 3000));

  /* plaintext websocket upgrade on the TLS port */
  unsigned before = log_count("TLS handshake failed");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons(es.port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(write(fd, upgrade_req, strlen(upgrade_req)), (ssize_t)strlen(upgrade_req));
  char resp[256] = "";
  ssize_t n = read(fd, resp, sizeof(resp) - 1);
  assert_true(n <= 0 || strstr(resp, "101") == NULL);
  close(fd);
  assert_true(log_wait("TLS handshake failed", before + 1, 3000));

  /* a certificate from another CA; an expired one; a viewer on the host subprotocol */
  refused_client(es.port, DFNET_SUBPROTOCOL_CLIENT, "stranger");
  assert_true(log_wait("not signed by our CA", 1, 3000));
  refused_client(es.port, DFNET_SUBPROTOCOL_HOST, "expired");
  assert_true(log_wait("certificate has expired", 1, 3000));
  refused_client(es.port, DFNET_SUBPROTOCOL_HOST, "viewer");
  assert_true(log_wait("may not use subprotocol dfnet.host.v1", 1, 3000));
  /* and a host on the client subprotocol */
  refused_client(es.port, DFNET_SUBPROTOCOL_CLIENT, "host");
  assert_true(log_wait("may not use subprotocol dfnet.client.v1", 1, 3000));

  assert_int_equal(es.sessions_opened, 1); /* the control connection only */
  echo_server_stop(&es);
}

/* A listener that cannot start says why, and the two causes read differently: a port
 * another process holds ("address in use"), and a key that is not the certificate's
 * (naming the file). */
static void test_listen_failures_say_why(void **state) {
  (void)state;
  log_capture_start();
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  dfnet_transport_t *t;
  assert_int_equal(dfnet_transport_create(&t), DFNET_STATUS_OK);
  dfnet_server_config_t cfg = {.bind_address = "127.0.0.1",
                               .port = es.port,
                               .cert_file = path("manager.crt"),
                               .key_file = path("manager.key"),
                               .ca_file = path("ca.crt")};
  assert_int_equal(dfnet_transport_listen(t, &cfg, NULL, NULL), DFNET_STATUS_UNAVAILABLE);
  assert_true(log_wait("address in use", 1, 1000));
  assert_int_equal(log_count("does not load"), 0);
  cfg.port = 0;
  cfg.key_file = path("viewer.key"); /* a good key, of another certificate */
  assert_int_equal(dfnet_transport_listen(t, &cfg, NULL, NULL), DFNET_STATUS_INVALID_ARGUMENT);
  assert_true(log_wait("the server key does not belong to certificate", 1, 1000));
  cfg.key_file = path("ca.crt"); /* no key at all */
  assert_int_equal(dfnet_transport_listen(t, &cfg, NULL, NULL), DFNET_STATUS_INVALID_ARGUMENT);
  assert_true(log_wait("the server key does not load", 1, 1000));
  assert_int_equal(log_count("address in use"), 1);
  dfnet_transport_destroy(t);
  echo_server_stop(&es);
}

/* ---- a peer that breaks the rules (raw websocket client) ------------------------------ */

static raw_ws_t *raw_open(uint16_t port, const char *who) {
  char crt[64], key[64];
  snprintf(crt, sizeof crt, "%s.crt", who);
  snprintf(key, sizeof key, "%s.key", who);
  char ca_p[512], crt_p[512], key_p[512];
  snprintf(ca_p, sizeof ca_p, "%s", path("ca.crt"));
  snprintf(crt_p, sizeof crt_p, "%s", path(crt));
  snprintf(key_p, sizeof key_p, "%s", path(key));
  int http = 0;
  raw_ws_t *w = raw_ws_open(port, ca_p, crt_p, key_p, DFNET_SUBPROTOCOL_CLIENT, 5000, &http);
  if (w == NULL)
    fail_msg("raw websocket to %u as %s: HTTP %d", port, who, http);
  return w;
}

/* RFC 6455 §5.1, §5.2: an unmasked client frame, or one with an RSV bit and no extension
 * negotiated, fails the connection (close 1002). A masked, plain frame does not. */
static void test_rfc6455_frames_refused(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  dfnet_envelope_t env;
  struct {
    bool masked;
    int rsv;
    bool refused;
  } cases[] = {{true, 0, false}, {false, 0, true}, {true, 4 /* RSV1 */, true}, {true, 1, true}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    raw_ws_t *w = raw_open(es.port, "viewer");
    dfnet_envelope_init(&env);
    env.pb.id = 7;
    env.pb.which_msg = dfnet_v1_Envelope_call_tag;
    snprintf(env.pb.msg.call.method, sizeof env.pb.msg.call.method, "/echo");
    size_t len = 0;
    uint8_t buf[256];
    assert_int_equal(dfnet_envelope_encode(&env, buf, sizeof buf, &len, NULL), DFNET_STATUS_OK);
    assert_int_equal(raw_ws_send_frame(w, 2, buf, len, cases[i].masked, cases[i].rsv), 0);
    int code = 0;
    int rc = raw_ws_read_env(w, &env, &code);
    if (cases[i].refused) {
      assert_int_equal(rc, -1);
      assert_true(code == 0 || code == 1002);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(env.pb.id, 7);
    }
    raw_ws_close(w);
  }
  echo_server_stop(&es);
}

/* A frame whose id can be read but whose member cannot is answered with that id (the
 * caller does not wait out its deadline), and a flood of them writes a bounded number of
 * log lines: the first, then one per 10 s saying how many more. */
static void test_malformed_frames_answered_and_logs_bounded(void **state) {
  (void)state;
  log_capture_start();
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  raw_ws_t *w = raw_open(es.port, "operator");
  /* id 9, then a Call (field 21, length-delimited) whose bytes are not a Call */
  const uint8_t bad[] = {0x08, 0x09, 0xaa, 0x01, 0x03, 0xff, 0xff, 0xff};
  assert_int_equal(raw_ws_send_frame(w, 2, bad, sizeof bad, true, 0), 0);
  dfnet_envelope_t env;
  assert_int_equal(raw_ws_read_env(w, &env, NULL), 0);
  assert_int_equal(env.pb.id, 9);
  assert_int_equal(env.pb.which_msg, dfnet_v1_Envelope_status_tag);
  assert_int_equal(env.pb.msg.status.code, DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(env.pb.msg.status.message, "malformed"));
  /* 2,000 more, each with its own id: each answered, a handful of log lines */
  enum { FLOOD = 2000 };
  uint8_t frame[sizeof bad];
  memcpy(frame, bad, sizeof bad);
  for (int i = 0; i < FLOOD; i++) {
    frame[1] = (uint8_t)(11 + 2 * (i % 50)); /* odd ids: the client's */
    assert_int_equal(raw_ws_send_frame(w, 2, frame, sizeof frame, true, 0), 0);
  }
  int answered = 0;
  while (answered < FLOOD && raw_ws_read_env(w, &env, NULL) == 0)
    if (env.pb.which_msg == dfnet_v1_Envelope_status_tag &&
        (int)env.pb.msg.status.code == (int)DFNET_STATUS_INVALID_ARGUMENT)
      answered++;
  assert_int_equal(answered, FLOOD);
  assert_true(log_count("malformed") <= 3);
  raw_ws_close(w);
  echo_server_stop(&es);
  /* the session's last word: how many lines it did not write */
  assert_true(log_wait("more malformed envelopes not logged", 1, 3000));
}

/* A caller that sends and never reads: once its send queue reaches the high-water mark the
 * server stops reading it, so what it holds for it stays near the mark, while another
 * caller is served as usual. */
static void test_non_reading_peer_is_not_read(void **state) {
  (void)state;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  raw_ws_t *w = raw_open(es.port, "operator");
  static uint8_t payload[3000];
  dfnet_envelope_t env;
  size_t sent = 0;
  for (int i = 0; i < 20000; i++) {
    dfnet_envelope_init(&env);
    env.pb.id = 1 + 2 * (uint64_t)i;
    env.pb.which_msg = dfnet_v1_Envelope_call_tag;
    snprintf(env.pb.msg.call.method, sizeof env.pb.msg.call.method, "/final");
    env.bulk.data = payload;
    env.bulk.size = sizeof payload;
    int rc = raw_ws_send_env(w, &env);
    if (rc == -2)
      break; /* the server stopped reading us: our socket is full */
    assert_int_equal(rc, 0);
    sent++;
  }
  assert_true(sent > 2000);                 /* well past the 8 MiB mark in echoes */
  dfnet_session_id_t hog = es.last_session; /* opened long ago: the only one */
  dfnet_session_stats_t st;
  assert_int_equal(dfnet_transport_session_stats(es.t, hog, &st), DFNET_STATUS_OK);
  assert_true(st.reading_pauses >= 1);
  assert_true(st.queued_bytes_peak <= DFNET_TRANSPORT_SEND_HWM_DEFAULT + 256u * 1024u);
  /* another caller is answered meanwhile */
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "viewer", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 10000, &s), DFNET_STATUS_OK);
  rec_t r = REC_INIT;
  dfnet_request_opts_t o = {.on_reply = rec_cb, .user = &r, .deadline_ms = 10000};
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/echo", NULL, 0, 1), &o, 0, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&r, 1, 10000));
  assert_int_equal(r.status, DFNET_STATUS_OK);
  dfnet_transport_destroy(c.t);
  raw_ws_close(w);
  echo_server_stop(&es);
}

/* A session lives no longer than its peer's certificate: when it runs out, the session is
 * closed and the requests on it end UNAUTHENTICATED on both sides. */
static void test_session_ends_with_certificate(void **state) {
  (void)state;
  assert_int_equal(fixture_make_leaf(dir, "brief", "CN=brief,OU=operator,O=dfnet", time(NULL) + 3),
                   0);
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  client_init(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "brief", NULL);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 5000, &s), DFNET_STATUS_OK);
  rec_t r = REC_INIT;
  dfnet_request_opts_t o = {.on_reply = rec_cb, .user = &r};
  assert_int_equal(dfnet_transport_request(c.t, s, call_env("/silent", NULL, 0, 1), &o, 0, NULL),
                   DFNET_STATUS_OK);
  assert_true(rec_wait_lasts(&r, 1, 15000)); /* a hang guard: expiry is ~3 s away */
  assert_int_equal(r.status, DFNET_STATUS_UNAUTHENTICATED);
  for (int i = 0; i < 100 && c.closed == 0; i++)
    sleep_ms(20);
  assert_int_equal(c.last_close, DFNET_STATUS_UNAUTHENTICATED);
  assert_non_null(strstr(c.last_close_msg, "expired"));
  /* and it cannot come back: the handshake refuses the expired certificate */
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 1500, &s),
                   DFNET_STATUS_DEADLINE_EXCEEDED);
  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

static int restore_stderr(void **state) {
  (void)state;
  log_capture_stop();
  return 0;
}

/* A client refuses a server whose certificate is not the manager's. */
static void test_client_refuses_wrong_server(void **state) {
  (void)state;
  client_t c;
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  memset(&c, 0, sizeof(c));
  assert_int_equal(dfnet_transport_create(&c.t), DFNET_STATUS_OK);
  char url[64];
  snprintf(url, sizeof(url), "wss://127.0.0.1:%u/", es.port);
  dfnet_client_config_t cfg = {
      .url = url,
      .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
      .cert_file = path("viewer.crt"),
      .key_file = path("viewer.key"),
      .ca_file = path("ca.crt"),
      .server_name = "elsewhere.example",
      .callbacks = {.on_session_open = c_open},
      .user = &c,
  };
  assert_int_equal(dfnet_transport_connect(c.t, &cfg, &c.ep), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(c.t), DFNET_STATUS_OK);
  dfnet_session_id_t s;
  assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 700, &s),
                   DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(c.opened, 0);
  dfnet_transport_destroy(c.t);
  echo_server_stop(&es);
}

static void test_bad_config(void **state) {
  (void)state;
  dfnet_transport_t *t;
  assert_int_equal(dfnet_transport_create(&t), DFNET_STATUS_OK);
  dfnet_client_config_t cfg = {.url = "ws://127.0.0.1:1/",
                               .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
                               .cert_file = path("viewer.crt"),
                               .key_file = path("viewer.key"),
                               .ca_file = path("ca.crt")};
  assert_int_equal(dfnet_transport_connect(t, &cfg, NULL), DFNET_STATUS_INVALID_ARGUMENT);
  cfg.url = "wss://127.0.0.1:1/";
  cfg.cert_file = "/nonexistent/viewer.crt";
  assert_int_equal(dfnet_transport_connect(t, &cfg, NULL), DFNET_STATUS_NOT_FOUND);
  cfg.cert_file = path("viewer.crt");
  cfg.subprotocol = "chat";
  assert_int_equal(dfnet_transport_connect(t, &cfg, NULL), DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_transport_destroy(t);
}

static int timer_hits;
static void on_timer(void *user) {
  (void)user;
  timer_hits++;
}

static void test_timers(void **state) {
  (void)state;
  dfnet_transport_t *t;
  assert_int_equal(dfnet_transport_create(&t), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(t), DFNET_STATUS_OK);
  timer_hits = 0;
  dfnet_timer_id_t a, b;
  assert_int_equal(dfnet_transport_timer_start(t, 50, on_timer, NULL, &a), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_timer_start(t, 5000, on_timer, NULL, &b), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_post(t, on_timer, NULL), DFNET_STATUS_OK);
  assert_true(dfnet_transport_timer_cancel(t, b));
  for (int i = 0; i < 200 && timer_hits < 2; i++)
    sleep_ms(10);
  sleep_ms(100);
  assert_int_equal(timer_hits, 2);
  dfnet_transport_destroy(t);
}

static void wait_opened(client_t *c, unsigned n) {
  for (int i = 0; i < 500 && c->opened < n; i++)
    sleep_ms(10);
  assert_int_equal(c->opened, n);
}

/* A client that reconnects to the same server resumes its TLS session (no certificates,
 * no ECC), and both ends say so; the peer is still known by its certificate. A new
 * transport (a new process, say) starts with a full handshake. Many quick rounds: in a
 * resumed handshake the client's first request can arrive with its Finished, in the same
 * read (regression: lws left it in the TLS layer, unserviced, and the upgrade hung). */
static void test_reconnect_resumes_tls_session(void **state) {
  (void)state;
  enum { ROUNDS = 200 };
  echo_server_t es;
  assert_int_equal(echo_server_start(&es, dir, 0, 0, 0), 0);
  client_t c;
  memset(&c, 0, sizeof c);
  assert_int_equal(dfnet_transport_create(&c.t), DFNET_STATUS_OK);
  c.ep = client_add_backoff(&c, es.port, DFNET_SUBPROTOCOL_CLIENT, "operator", NULL, 1, 0);
  assert_int_equal(dfnet_transport_start(c.t), DFNET_STATUS_OK);
  wait_opened(&c, 1);
  assert_int_equal(c.resumed, 0);
  assert_int_equal(es.sessions_resumed, 0);
  for (unsigned round = 2; round <= ROUNDS + 1; round++) {
    dfnet_session_id_t s;
    /* the server drops the connection; the client reconnects (after its backoff) */
    assert_int_equal(
        dfnet_transport_session_close(es.t, es.last_session, DFNET_STATUS_UNAVAILABLE, "again"),
        DFNET_STATUS_OK);
    wait_opened(&c, round);
    assert_int_equal(c.resumed, round - 1);
    for (int i = 0; i < 200 && es.sessions_opened < round; i++)
      sleep_ms(10);
    assert_int_equal(es.sessions_resumed, round - 1);
    assert_string_equal(es.last_peer, "bob"); /* the CN of operator.crt */
    assert_string_equal(es.last_role, "operator");
    rec_t r = REC_INIT;
    dfnet_request_opts_t o = {.deadline_ms = 5000, .on_reply = rec_cb, .user = &r};
    assert_int_equal(dfnet_transport_wait_session(c.t, c.ep, 5000, &s), DFNET_STATUS_OK);
    assert_int_equal(dfnet_transport_request(c.t, s, call_env("/echo", NULL, 0, 1), &o, 0, NULL),
                     DFNET_STATUS_OK);
    assert_true(rec_wait_lasts(&r, 1, 5000));
    assert_int_equal(r.status, DFNET_STATUS_OK);
  }
  client_t fresh;
  client_init(&fresh, es.port, DFNET_SUBPROTOCOL_CLIENT, "operator", NULL);
  wait_opened(&fresh, 1);
  assert_int_equal(fresh.resumed, 0);
  dfnet_transport_destroy(fresh.t);
  dfnet_transport_destroy(c.t);
  assert_int_equal(es.sessions_resumed, ROUNDS);
  echo_server_stop(&es);
}

/* dfnet_transport_watch_fd and set_turn_end: each byte written to a pipe from this thread is read
 * by the watch function, on the service thread; the caller's fd stays open after destroy. */
typedef struct watch_probe {
  dfnet_transport_t *t;
  int fd;
  atomic_int bytes;
  atomic_bool off_thread;
  dfnet_status_t late_watch; /* dfnet_transport_watch_fd from the service thread */
  atomic_int turn_ends;      /* turns that ended after a byte was read */
  atomic_bool turn_end_off_thread;
} watch_probe_t;

static void on_turn_end(void *user) {
  watch_probe_t *w = user;
  if (!dfnet_transport_on_service_thread(w->t))
    atomic_store(&w->turn_end_off_thread, true);
  if (atomic_load(&w->bytes) > 0)
    atomic_fetch_add(&w->turn_ends, 1);
}

static void on_watched(void *user) {
  watch_probe_t *w = user;
  if (!dfnet_transport_on_service_thread(w->t))
    atomic_store(&w->off_thread, true);
  char buf[64];
  ssize_t n = read(w->fd, buf, sizeof buf);
  if (n > 0)
    atomic_fetch_add(&w->bytes, (int)n);
}

static void watch_from_service(void *user) {
  watch_probe_t *w = user;
  w->late_watch = dfnet_transport_watch_fd(w->t, -1, on_watched, w);
}

static void test_watch_fd(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  watch_probe_t w = {.fd = p[0], .late_watch = DFNET_STATUS_OK};
  assert_int_equal(dfnet_transport_create(&w.t), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_watch_fd(w.t, -1, on_watched, &w),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_transport_watch_fd(w.t, p[0], NULL, &w), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_transport_watch_fd(w.t, p[0], on_watched, &w), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_set_turn_end(NULL, on_turn_end, &w),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_transport_set_turn_end(w.t, on_turn_end, &w), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_start(w.t), DFNET_STATUS_OK);
  assert_int_equal(dfnet_transport_set_turn_end(w.t, NULL, NULL), DFNET_STATUS_FAILED_PRECONDITION);
  /* from another thread while the loop runs: refused */
  assert_int_equal(dfnet_transport_watch_fd(w.t, p[0], on_watched, &w),
                   DFNET_STATUS_FAILED_PRECONDITION);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(write(p[1], "x", 1), 1);
    for (int j = 0; j < 500 && atomic_load(&w.bytes) < i + 1; j++)
      sleep_ms(1);
    assert_int_equal(atomic_load(&w.bytes), i + 1);
  }
  assert_false(atomic_load(&w.off_thread));
  /* the turn that read a byte ended with the turn-end function, on the service thread */
  for (int j = 0; j < 500 && atomic_load(&w.turn_ends) == 0; j++)
    sleep_ms(1);
  assert_true(atomic_load(&w.turn_ends) > 0);
  assert_false(atomic_load(&w.turn_end_off_thread));
  assert_int_equal(dfnet_transport_post(w.t, watch_from_service, &w), DFNET_STATUS_OK);
  for (int j = 0; j < 500 && w.late_watch == DFNET_STATUS_OK; j++)
    sleep_ms(1);
  /* on the service thread the call is allowed: only its bad fd is refused */
  assert_int_equal(w.late_watch, DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_transport_destroy(w.t);
  /* the transport closed its dup, not the caller's descriptor */
  assert_int_equal(write(p[1], "y", 1), 1);
  char c;
  assert_int_equal(read(p[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  close(p[0]);
  close(p[1]);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  dir = fixture_cert_dir();
  if (dir == NULL)
    return 1;
  if (getenv("DFNET_TEST_FILTER") != NULL) /* run one test by hand: DFNET_TEST_FILTER=name */
    cmocka_set_test_filter(getenv("DFNET_TEST_FILTER"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_timers),
      cmocka_unit_test(test_watch_fd),
      cmocka_unit_test(test_reconnect_resumes_tls_session),
      cmocka_unit_test_teardown(test_refusals, restore_stderr),
      cmocka_unit_test_teardown(test_listen_failures_say_why, restore_stderr),
      cmocka_unit_test(test_rfc6455_frames_refused),
      cmocka_unit_test_teardown(test_malformed_frames_answered_and_logs_bounded, restore_stderr),
      cmocka_unit_test(test_non_reading_peer_is_not_read),
      cmocka_unit_test(test_session_ends_with_certificate),
      cmocka_unit_test(test_client_refuses_wrong_server),
      cmocka_unit_test(test_deadline_stream_cancel),
      cmocka_unit_test(test_oversized_then_carries_on),
      cmocka_unit_test(test_server_killed_then_back),
      cmocka_unit_test(test_keepalive_closes_silent_peer),
      cmocka_unit_test(test_keepalive_idle_session_stays_up),
      cmocka_unit_test(test_slow_reader_bounded),
      cmocka_unit_test(test_echo_10000_one_connection),
      cmocka_unit_test(test_echo_several_connections),
      cmocka_unit_test(test_batched_small_envelopes),
      cmocka_unit_test(test_batch_messages_limit),
      cmocka_unit_test(test_threads_share_one_session),
      cmocka_unit_test(test_server_speaks_first),
  };
  if (getenv("DFNET_TEST_FILTER"))
    cmocka_set_test_filter(getenv("DFNET_TEST_FILTER"));
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", dir);
  return rc;
}
