/* libdfnet-client's leases against the scripted manager peer (scripted_server.h "The lease
 * script"): the real transport both sides, real certificates. What each request puts on
 * the wire and how each answer is read; the queue (positions, a wait that ends, a cancel,
 * a session lost while waiting); renewals at a third of the TTL observed over several
 * short periods, and their end (refused, no answer) reported once; the lease token every
 * call carries (DFNET_LEASE, the setter, the lease acquired); the node and host fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dfnet/client.h"
#include "scripted_server.h"

static char cert_dir[256];
static scripted_server_t *server;
static uint16_t port;

static int group_setup(void **state) {
  (void)state;
  unsetenv("DFNET_LEASE");
  snprintf(cert_dir, sizeof cert_dir, "/tmp/dfnet-test-client-lease-%d", (int)getpid());
  if (ss_make_certs(cert_dir) != 0)
    return -1;
  server = ss_start(cert_dir, &port);
  return server ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  ss_stop(server);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A log callback's record: warnings and the last line. */
typedef struct log_rec {
  pthread_mutex_t mu;
  int lost, failed; /* "... is no longer renewed", "... renewal failed ..." */
  char last[1024];
} log_rec_t;

static void log_rec(void *user, dfnet_client_log_level_t level, const char *line) {
  log_rec_t *r = user;
  pthread_mutex_lock(&r->mu);
  if (level == DFNET_CLIENT_LOG_WARN && strstr(line, "lease") != NULL) {
    r->lost += strstr(line, "is no longer renewed") != NULL;
    r->failed += strstr(line, "renewal failed") != NULL;
    snprintf(r->last, sizeof r->last, "%s", line);
  }
  pthread_mutex_unlock(&r->mu);
}

static dfnet_client_t *connect_logged(const char *role, const char *name, log_rec_t *logs) {
  char url[64], crt[400], key[400], ca[400];
  snprintf(url, sizeof url, "wss://127.0.0.1:%u", (unsigned)port);
  snprintf(crt, sizeof crt, "%s/%s/%s.crt", cert_dir, role, name);
  snprintf(key, sizeof key, "%s/%s/%s.key", cert_dir, role, name);
  snprintf(ca, sizeof ca, "%s/%s/ca.crt", cert_dir, role);
  dfnet_client_options_t o = {.url = url,
                              .cert_file = crt,
                              .key_file = key,
                              .ca_file = ca,
                              .connect_timeout_ms = 5000,
                              .log_fn = logs ? log_rec : NULL,
                              .log_user = logs};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_connect(&o, &c, &err);
  if (st != DFNET_STATUS_OK)
    fprintf(stderr, "connect: %s: %s\n", dfnet_status_str(st), err.message);
  return c;
}

static dfnet_client_t *connect_as(const char *role, const char *name) {
  return connect_logged(role, name, NULL);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The lease token the scripted server's last call carried. */
static const char *last_call_token(dfnet_client_t *c) {
  static ss_stats_t st;
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  assert_int_equal(
      dfnet_client_call(c, "dev.x", "/test.Echo/Unary", "hi", 2, NULL, &reply, &len, &err),
      DFNET_STATUS_OK);
  free(reply);
  ss_stats(server, &st);
  return st.last_lease_token;
}

static ss_lease_stats_t lease_stats(void) {
  ss_lease_stats_t st;
  ss_lease_stats(server, &st);
  return st;
}

/* ---- acquire ---- */

/* Everything the options say reaches the wire; the answer is read whole; the lease's token
 * becomes the client's (it had none) and every call carries it until the release. */
static void test_acquire_on_the_wire(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  const char *targets[] = {"dev.lab-a.pci.00_06_0", "class/serial/000"};
  const char *match[] = {"soc=imx8mp", "class=serial"};
  dfnet_client_lease_options_t o = {.targets = targets,
                                    .target_count = 2,
                                    .match = match,
                                    .match_count = 2,
                                    .ttl_ms = 90000,
                                    .priority = DFNET_CLIENT_LEASE_LOW,
                                    .reason = "ci run 7",
                                    .no_renew = true};
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  uint64_t before = wall_ms();
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_OK);
  ss_lease_stats_t st = lease_stats();
  assert_string_equal(st.acq_targets, "dev.lab-a.pci.00_06_0,class/serial/000");
  assert_string_equal(st.acq_match, "soc=imx8mp,class=serial");
  assert_int_equal(st.acq_ttl_ms, 90000);
  assert_false(st.acq_wait);
  assert_false(st.acq_no_expiry);
  assert_int_equal(st.acq_priority, 1);
  assert_string_equal(st.acq_reason, "ci run 7");
  assert_int_equal(st.acq_resume_id, 0);
  assert_true(l->id >= 42);
  assert_string_equal(l->holder, "bob");
  assert_int_equal(l->target_count, 3); /* the selectors picked a node */
  assert_string_equal(l->targets[2], "dev.lab-a.pci.00_05_0");
  assert_int_equal(l->node_list_count, 3);
  assert_int_equal(l->node_count, 3);
  assert_int_equal(l->ttl_ms, 90000);
  assert_true(l->expires_ms >= before + 90000 && l->expires_ms <= wall_ms() + 90000);
  assert_int_equal(l->priority, DFNET_CLIENT_LEASE_LOW);
  assert_string_equal(dfnet_client_lease_priority_str(l->priority), "low");
  assert_int_equal(l->queue_position, 0);
  assert_string_equal(l->reason, "ci run 7");
  char prefix[32];
  snprintf(prefix, sizeof prefix, "%llu.", (unsigned long long)l->id);
  assert_true(strncmp(l->token, prefix, strlen(prefix)) == 0);
  assert_int_equal(strlen(l->token), strlen(prefix) + 64);
  char token[96];
  assert_int_equal(dfnet_client_lease_token(c, token, sizeof token), DFNET_STATUS_OK);
  assert_string_equal(token, l->token);
  assert_string_equal(last_call_token(c), l->token);
  /* no_renew: known, not renewed */
  dfnet_client_lease_state_t s;
  assert_int_equal(dfnet_client_lease_state(c, l->id, &s), DFNET_STATUS_OK);
  assert_false(s.renewing);
  assert_int_equal(s.status, DFNET_STATUS_OK);
  /* released through the client: its token is forgotten */
  assert_int_equal(dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err), DFNET_STATUS_OK);
  st = lease_stats();
  assert_int_equal(st.release_id, l->id);
  assert_string_equal(st.release_token, l->token);
  assert_false(st.release_force);
  assert_string_equal(last_call_token(c), "");
  assert_int_equal(dfnet_client_lease_state(c, l->id, &s), DFNET_STATUS_NOT_FOUND);
  assert_int_equal(dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err),
                   DFNET_STATUS_NOT_FOUND);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
}

static void test_acquire_refused(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  assert_non_null(c);
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  dfnet_client_lease_options_t o = {0};
  /* refused here, before the wire */
  unsigned before = lease_stats().acquires;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "a target or a selector"));
  const char *bad_match[] = {"imx8mp"};
  o = (dfnet_client_lease_options_t){.match = bad_match, .match_count = 1};
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "'imx8mp' is not KEY=VALUE"));
  const char *many[17];
  for (size_t i = 0; i < 17; i++)
    many[i] = "dev.x";
  o = (dfnet_client_lease_options_t){.targets = many, .target_count = 17};
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_INVALID_ARGUMENT);
  char huge[600];
  memset(huge, 'a', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  const char *long_target[] = {huge};
  o = (dfnet_client_lease_options_t){.targets = long_target, .target_count = 1};
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(lease_stats().acquires, before);
  assert_null(l);
  /* the manager's refusals */
  const char *none[] = {"dev.none"}, *busy[] = {"dev.lab-a.busy"}, *free1[] = {"dev.lab-a.f1"};
  o = (dfnet_client_lease_options_t){.targets = none, .target_count = 1};
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_NOT_FOUND);
  o.targets = busy;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(err.message, "is leased by alice until"));
  o.targets = free1;
  o.priority = DFNET_CLIENT_LEASE_HIGH;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_PERMISSION_DENIED);
  o.priority = DFNET_CLIENT_LEASE_NORMAL;
  o.no_expiry = true;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_PERMISSION_DENIED);
  assert_null(l);
  dfnet_client_close(c);
  /* a viewer may not; an admin may have one that never expires (not renewed) */
  c = connect_as("viewer", "carol");
  o.no_expiry = false;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_PERMISSION_DENIED);
  dfnet_client_close(c);
  c = connect_as("admin", "alice");
  o.no_expiry = true;
  o.priority = DFNET_CLIENT_LEASE_HIGH;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_OK);
  assert_true(lease_stats().acq_no_expiry);
  assert_int_equal(lease_stats().acq_priority, 2);
  assert_int_equal(l->expires_ms, 0);
  assert_int_equal(l->ttl_ms, 0);
  dfnet_client_lease_state_t s;
  assert_int_equal(dfnet_client_lease_state(c, l->id, &s), DFNET_STATUS_OK);
  assert_false(s.renewing);
  assert_int_equal(dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err), DFNET_STATUS_OK);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
}

/* What an on_queued callback saw. */
typedef struct queue_rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint32_t positions[8];
  size_t n;
  uint64_t entry;
} queue_rec_t;

static void on_queued(void *user, uint64_t entry, uint32_t position) {
  queue_rec_t *q = user;
  pthread_mutex_lock(&q->mu);
  if (q->n < 8)
    q->positions[q->n++] = position;
  q->entry = entry;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static void queue_rec_init(queue_rec_t *q) {
  memset(q, 0, sizeof *q);
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
}

static void test_queue_then_granted(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  queue_rec_t q;
  queue_rec_init(&q);
  const char *t[] = {"dev.lab-a.queue"};
  dfnet_client_lease_options_t o = {.targets = t,
                                    .target_count = 1,
                                    .wait = true,
                                    .wait_ms = 60000,
                                    .no_renew = true,
                                    .on_queued = on_queued,
                                    .user = &q};
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_OK);
  assert_true(lease_stats().acq_wait);
  assert_int_equal(lease_stats().acq_wait_ms, 60000);
  assert_int_equal(q.n, 1);
  assert_int_equal(q.positions[0], 1);
  assert_int_equal(l->queue_position, 0);
  assert_non_null(strchr(l->token, '.'));
  assert_int_equal(dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err), DFNET_STATUS_OK);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
}

/* The manager ends a wait at wait_ms. */
static void test_queue_wait_ends(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  queue_rec_t q;
  queue_rec_init(&q);
  const char *t[] = {"dev.lab-a.busy"};
  dfnet_client_lease_options_t o = {.targets = t,
                                    .target_count = 1,
                                    .wait = true,
                                    .wait_ms = 300,
                                    .on_queued = on_queued,
                                    .user = &q};
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_non_null(strstr(err.message, "waited 300 ms"));
  assert_int_equal(q.n, 2);
  assert_int_equal(q.positions[0], 2);
  assert_int_equal(q.positions[1], 1);
  assert_null(l);
  dfnet_client_close(c);
}

typedef struct acquirer {
  dfnet_client_t *c;
  dfnet_client_lease_options_t o;
  dfnet_status_t st;
  dfnet_client_error_t err;
  dfnet_client_lease_t *l;
} acquirer_t;

static void *acquire_thread(void *p) {
  acquirer_t *a = p;
  a->st = dfnet_client_lease_acquire(a->c, &a->o, &a->l, &a->err);
  return NULL;
}

/* A cancel ends a wait at once; the manager hears of it (the request leaves the queue). */
static void test_queue_cancel(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  queue_rec_t q;
  queue_rec_init(&q);
  const char *t[] = {"dev.lab-a.busy"};
  acquirer_t a = {
      .c = c,
      .o = {.targets = t, .target_count = 1, .wait = true, .on_queued = on_queued, .user = &q}};
  assert_int_equal(dfnet_client_lease_acquire_cancel(c), DFNET_STATUS_NOT_FOUND);
  unsigned cancels = lease_stats().cancels;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, acquire_thread, &a), 0);
  pthread_mutex_lock(&q.mu);
  while (q.n < 2)
    pthread_cond_wait(&q.cv, &q.mu);
  pthread_mutex_unlock(&q.mu);
  assert_int_equal(dfnet_client_lease_acquire_cancel(c), DFNET_STATUS_OK);
  pthread_join(th, NULL);
  assert_int_equal(a.st, DFNET_STATUS_CANCELLED);
  assert_non_null(strstr(a.err.message, "position 1"));
  assert_null(a.l);
  for (int i = 0; i < 100 && lease_stats().cancels == cancels; i++)
    sleep_ms(10);
  assert_int_equal(lease_stats().cancels, cancels + 1);
  assert_int_equal(dfnet_client_lease_acquire_cancel(c), DFNET_STATUS_NOT_FOUND);
  dfnet_client_close(c);
}

/* A session lost while waiting: the library asks again for its place (resume_id). */
static void test_queue_resumed_after_a_drop(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  queue_rec_t q;
  queue_rec_init(&q);
  const char *t[] = {"dev.lab-a.drop"};
  dfnet_client_lease_options_t o = {.targets = t,
                                    .target_count = 1,
                                    .wait = true,
                                    .no_renew = true,
                                    .on_queued = on_queued,
                                    .user = &q};
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  unsigned before = lease_stats().acquires;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_OK);
  assert_int_equal(lease_stats().acquires, before + 2);
  assert_int_equal(lease_stats().acq_resume_id, 77);
  assert_int_equal(q.entry, 77);
  assert_int_equal(dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err), DFNET_STATUS_OK);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
}

/* ---- renewals ---- */

typedef struct renew_rec {
  pthread_mutex_t mu;
  unsigned ok, ended;
  dfnet_status_t end;
  char message[256];
} renew_rec_t;

static void on_renew(void *user, uint64_t id, dfnet_status_t st, uint64_t expires,
                     const char *message) {
  renew_rec_t *r = user;
  (void)id;
  (void)expires;
  pthread_mutex_lock(&r->mu);
  if (st == DFNET_STATUS_OK) {
    r->ok++;
  } else {
    r->ended++;
    r->end = st;
    snprintf(r->message, sizeof r->message, "%s", message);
  }
  pthread_mutex_unlock(&r->mu);
}

static dfnet_client_lease_t *acquire_short(dfnet_client_t *c, const char *target, uint32_t ttl,
                                           renew_rec_t *r) {
  const char *t[] = {target};
  dfnet_client_lease_options_t o = {
      .targets = t, .target_count = 1, .ttl_ms = ttl, .on_renew = on_renew, .user = r};
  dfnet_client_lease_t *l = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_lease_acquire(c, &o, &l, &err), DFNET_STATUS_OK);
  return l;
}

/* A 600 ms lease is renewed every 200 ms (TTL/3) while the client lives, over several
 * periods: never sooner than a third of the TTL (timers do not fire early), always before
 * the lease would lapse; after its release nothing more. */
static void test_renewed_at_a_third_of_the_ttl(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("operator", "bob");
  renew_rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  unsigned first = lease_stats().renews;
  dfnet_client_lease_t *l = acquire_short(c, "dev.lab-a.pci.00_07_0", 600, &r);
  for (int i = 0; i < 1000 && lease_stats().renews < first + 5; i++)
    sleep_ms(10);
  ss_lease_stats_t st = lease_stats();
  assert_true(st.renews >= first + 5);
  for (unsigned i = first + 1; i < st.renews && i < 32; i++) {
    uint64_t gap = st.renew_ms[i] - st.renew_ms[i - 1];
    if (gap < 190 || gap >= 600)
      fail_msg("renewal %u came %llu ms after the one before: not a third of the 600 ms TTL",
               i - first, (unsigned long long)gap);
  }
  assert_int_equal(st.renew_id, l->id);
  assert_string_equal(st.renew_token, l->token);
  assert_int_equal(st.renew_ttl_ms, 0); /* its own TTL */
  /* the answer to the 5th may still be on its way to the client (state, then callback) */
  dfnet_client_lease_state_t s = {0};
  unsigned told = 0;
  for (int i = 0; i < 1000 && (s.renewals < 5 || told < 5); i++) {
    assert_int_equal(dfnet_client_lease_state(c, l->id, &s), DFNET_STATUS_OK);
    pthread_mutex_lock(&r.mu);
    told = r.ok;
    pthread_mutex_unlock(&r.mu);
    if (s.renewals < 5 || told < 5)
      sleep_ms(10);
  }
  assert_true(s.renewing);
  assert_true(s.renewals >= 5);
  assert_int_equal(s.failures, 0);
  assert_int_equal(s.status, DFNET_STATUS_OK);
  assert_true(s.expires_ms > wall_ms());
  pthread_mutex_lock(&r.mu);
  assert_true(r.ok >= 5);
  assert_int_equal(r.ended, 0);
  pthread_mutex_unlock(&r.mu);
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err), DFNET_STATUS_OK);
  unsigned after = lease_stats().renews;
  sleep_ms(500);
  assert_true(lease_stats().renews <= after + 1); /* one may have been on its way */
  dfnet_client_lease_free(l);
  /* closing the client ends the renewals too (the lease itself stays) */
  l = acquire_short(c, "dev.lab-a.pci.00_07_0", 300, &r);
  dfnet_client_close(c);
  after = lease_stats().renews;
  sleep_ms(300);
  assert_int_equal(lease_stats().renews, after);
  dfnet_client_lease_free(l);
}

/* The manager refuses a renewal (the lease is gone): the end is logged once, told to the
 * callback once, and the state says it; the client's lease token, which was that lease's,
 * is cleared. */
static void test_renewal_refused(void **state) {
  (void)state;
  log_rec_t logs = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dfnet_client_t *c = connect_logged("operator", "bob", &logs);
  renew_rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dfnet_client_lease_t *l = acquire_short(c, "dev.lab-a.revoked", 300, &r);
  dfnet_client_lease_state_t s = {.renewing = true};
  for (int i = 0; i < 1000 && s.renewing; i++) {
    sleep_ms(10);
    assert_int_equal(dfnet_client_lease_state(c, l->id, &s), DFNET_STATUS_OK);
  }
  assert_false(s.renewing);
  assert_int_equal(s.renewals, 2);
  assert_int_equal(s.status, DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(s.message, "expired"));
  char token[96];
  assert_int_equal(dfnet_client_lease_token(c, token, sizeof token), DFNET_STATUS_OK);
  assert_string_equal(token, "");
  pthread_mutex_lock(&r.mu);
  assert_int_equal(r.ok, 2);
  assert_int_equal(r.ended, 1);
  assert_int_equal(r.end, DFNET_STATUS_NOT_FOUND);
  pthread_mutex_unlock(&r.mu);
  pthread_mutex_lock(&logs.mu);
  assert_int_equal(logs.lost, 1);
  assert_int_equal(logs.failed, 0);
  assert_non_null(strstr(logs.last, "is no longer renewed"));
  pthread_mutex_unlock(&logs.mu);
  unsigned renews = lease_stats().renews;
  sleep_ms(300);
  assert_int_equal(lease_stats().renews, renews);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
}

/* No answer to the renewals: tried again until the lease would expire, then it is lost
 * (DEADLINE_EXCEEDED); one warning for the failures, one for the end. */
static void test_renewal_unanswered(void **state) {
  (void)state;
  log_rec_t logs = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dfnet_client_t *c = connect_logged("operator", "bob", &logs);
  renew_rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dfnet_client_lease_t *l = acquire_short(c, "dev.lab-a.mute", 600, &r);
  dfnet_client_lease_state_t s = {.renewing = true};
  for (int i = 0; i < 1000 && s.renewing; i++) {
    sleep_ms(10);
    assert_int_equal(dfnet_client_lease_state(c, l->id, &s), DFNET_STATUS_OK);
  }
  assert_false(s.renewing);
  assert_int_equal(s.status, DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_non_null(strstr(s.message, "expired before it could be renewed"));
  pthread_mutex_lock(&r.mu);
  assert_int_equal(r.ended, 1);
  assert_int_equal(r.end, DFNET_STATUS_DEADLINE_EXCEEDED);
  pthread_mutex_unlock(&r.mu);
  pthread_mutex_lock(&logs.mu);
  assert_int_equal(logs.lost, 1);
  assert_true(logs.failed <= 1); /* the failures before: once at most */
  pthread_mutex_unlock(&logs.mu);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
}

/* ---- the lease token, renew and release by hand ---- */

static void test_token_from_the_environment(void **state) {
  (void)state;
  /* `dfnet lease acquire` in one process ... */
  dfnet_client_t *c = connect_as("operator", "bob");
  renew_rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dfnet_client_lease_t *l = acquire_short(c, "dev.lab-a.pci.00_07_0", 60000, &r);
  dfnet_client_close(c);
  /* ... DFNET_LEASE in the next */
  setenv("DFNET_LEASE", l->token, 1);
  c = connect_as("operator", "bob");
  assert_non_null(c);
  char token[96];
  assert_int_equal(dfnet_client_lease_token(c, token, sizeof token), DFNET_STATUS_OK);
  assert_string_equal(token, l->token);
  assert_string_equal(last_call_token(c), l->token);
  assert_int_equal(dfnet_client_lease_token(c, token, 8), DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_string_equal(token, "");
  /* a lease acquired does not replace a token the client has */
  dfnet_client_lease_t *l2 = acquire_short(c, "dev.lab-a.pci.00_06_0", 60000, &r);
  assert_string_equal(last_call_token(c), l->token);
  /* renew with id 0: the lease of the client's token */
  dfnet_client_error_t err;
  dfnet_client_lease_t *renewed = NULL;
  assert_int_equal(dfnet_client_lease_renew(c, 0, NULL, 5000, &renewed, &err), DFNET_STATUS_OK);
  assert_int_equal(lease_stats().renew_id, l->id);
  assert_string_equal(lease_stats().renew_token, l->token);
  assert_int_equal(lease_stats().renew_ttl_ms, 5000);
  assert_int_equal(renewed->id, l->id);
  assert_string_equal(renewed->holder, "bob");
  assert_string_equal(renewed->token, "");
  assert_true(renewed->expires_ms <= wall_ms() + 5000);
  dfnet_client_lease_free(renewed);
  /* the setter */
  assert_int_equal(dfnet_client_set_lease_token(c, l2->token), DFNET_STATUS_OK);
  assert_string_equal(last_call_token(c), l2->token);
  assert_int_equal(dfnet_client_set_lease_token(c, ""), DFNET_STATUS_OK);
  assert_string_equal(last_call_token(c), "");
  char huge[200];
  memset(huge, '1', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  assert_int_equal(dfnet_client_set_lease_token(c, huge), DFNET_STATUS_INVALID_ARGUMENT);
  /* id 0 without a token */
  assert_int_equal(dfnet_client_lease_renew(c, 0, NULL, 0, NULL, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "DFNET_LEASE"));
  /* release id 0 with the token: the token's lease, and the token is forgotten */
  assert_int_equal(dfnet_client_set_lease_token(c, l->token), DFNET_STATUS_OK);
  assert_int_equal(dfnet_client_lease_release(c, 0, NULL, false, NULL, &err), DFNET_STATUS_OK);
  assert_int_equal(lease_stats().release_id, l->id);
  assert_string_equal(lease_stats().release_token, l->token);
  assert_string_equal(last_call_token(c), "");
  assert_int_equal(dfnet_client_lease_release(c, l2->id, NULL, false, NULL, &err), DFNET_STATUS_OK);
  dfnet_client_lease_free(l2);
  dfnet_client_lease_free(l);
  dfnet_client_close(c);
  /* a DFNET_LEASE over the bound: refused at connect */
  setenv("DFNET_LEASE", huge, 1);
  assert_null(connect_as("operator", "bob"));
  unsetenv("DFNET_LEASE");
}

static void test_renew_and_release_by_hand(void **state) {
  (void)state;
  dfnet_client_t *bob = connect_as("operator", "bob");
  dfnet_client_t *alice = connect_as("admin", "alice");
  renew_rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dfnet_client_lease_t *l = acquire_short(bob, "dev.lab-a.pci.00_07_0", 60000, &r);
  dfnet_client_error_t err;
  dfnet_client_lease_t *renewed = NULL;
  uint64_t before = wall_ms();
  assert_int_equal(dfnet_client_lease_renew(bob, l->id, NULL, 120000, &renewed, &err),
                   DFNET_STATUS_OK);
  assert_string_equal(lease_stats().renew_token, l->token);
  assert_true(renewed->expires_ms >= before + 120000);
  dfnet_client_lease_free(renewed);
  dfnet_client_lease_state_t s;
  assert_int_equal(dfnet_client_lease_state(bob, l->id, &s), DFNET_STATUS_OK);
  assert_true(s.expires_ms >= before + 120000);
  /* another's token: refused; a forced release needs a reason (checked here) and admin */
  assert_int_equal(dfnet_client_lease_release(alice, l->id, "1.abc", false, NULL, &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  unsigned releases = lease_stats().releases;
  assert_int_equal(dfnet_client_lease_release(alice, l->id, NULL, true, "", &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(lease_stats().releases, releases);
  assert_int_equal(dfnet_client_lease_release(bob, 7, NULL, true, "mine now", &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  assert_int_equal(dfnet_client_lease_release(alice, l->id, NULL, true, "board needed", &err),
                   DFNET_STATUS_OK);
  ss_lease_stats_t st = lease_stats();
  assert_true(st.release_force);
  assert_string_equal(st.release_reason, "board needed");
  assert_string_equal(st.release_token, ""); /* alice knows no token of bob's lease */
  /* bob's library finds out at its next renewal, or at its release */
  assert_int_equal(dfnet_client_lease_renew(bob, l->id, NULL, 0, NULL, &err),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(dfnet_client_lease_release(bob, l->id, NULL, false, NULL, &err),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(dfnet_client_lease_state(bob, l->id, &s), DFNET_STATUS_NOT_FOUND);
  dfnet_client_lease_free(l);
  dfnet_client_close(alice);
  dfnet_client_close(bob);
}

/* ---- list, show, history ---- */

static void test_list_show_history(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("viewer", "carol");
  dfnet_client_error_t err;
  dfnet_client_lease_list_t *list = NULL;
  assert_int_equal(dfnet_client_list_leases(c, NULL, NULL, &list, &err), DFNET_STATUS_OK);
  assert_non_null(strstr(err.message, "waiting"));
  assert_true(list->count >= 2);
  assert_int_equal(list->items[0].id, 7);
  assert_string_equal(list->items[0].holder, "alice");
  assert_int_equal(list->items[0].queue_position, 0);
  const dfnet_client_lease_t *w = &list->items[list->count - 1];
  assert_int_equal(w->id, 9);
  assert_int_equal(w->queue_position, 1);
  assert_string_equal(w->reason, "nightly");
  dfnet_client_lease_list_free(list);
  assert_int_equal(dfnet_client_list_leases(c, "dev.lab-a.busy.uart", NULL, &list, &err),
                   DFNET_STATUS_OK);
  assert_string_equal(lease_stats().list_target, "dev.lab-a.busy.uart");
  assert_int_equal(list->count, 1); /* under lease 7's node */
  dfnet_client_lease_list_free(list);
  dfnet_client_lease_t *l = NULL;
  assert_int_equal(dfnet_client_lease_show(c, 7, NULL, &l, &err), DFNET_STATUS_OK);
  assert_int_equal(lease_stats().list_id, 7);
  assert_int_equal(l->node_count, 3);
  assert_int_equal(l->node_list_count, 1);
  assert_string_equal(l->nodes[0], "dev.lab-a.busy");
  assert_int_equal(l->expires_ms, 1800000000000ull);
  assert_string_equal(l->reason, "ci run 12");
  dfnet_client_lease_free(l);
  assert_int_equal(dfnet_client_lease_show(c, 12345, NULL, &l, &err), DFNET_STATUS_NOT_FOUND);
  assert_null(l);
  /* history: everything, then pages of 2, since, target */
  dfnet_client_lease_audit_list_t *h = NULL;
  assert_int_equal(dfnet_client_lease_history(c, NULL, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 4);
  assert_false(h->more);
  assert_string_equal(h->items[0].action, "acquire");
  assert_string_equal(h->items[0].detail, "ci run 12");
  assert_string_equal(h->items[3].actor, "dfnet-manager");
  assert_int_equal(h->items[3].lease_id, 5);
  dfnet_client_lease_audit_list_free(h);
  dfnet_client_lease_history_query_t hq = {.limit = 2};
  assert_int_equal(dfnet_client_lease_history(c, &hq, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 2);
  assert_true(h->more);
  hq.after_seq = h->items[1].seq;
  dfnet_client_lease_audit_list_free(h);
  assert_int_equal(dfnet_client_lease_history(c, &hq, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 2);
  assert_int_equal(h->items[0].seq, 3);
  assert_false(h->more);
  assert_int_equal(lease_stats().hist_after_seq, 2);
  assert_int_equal(lease_stats().hist_limit, 2);
  dfnet_client_lease_audit_list_free(h);
  hq = (dfnet_client_lease_history_query_t){.target = "dev.lab-a.busy",
                                            .since_ms = 1800000000000ull - 1650000};
  assert_int_equal(dfnet_client_lease_history(c, &hq, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->count, 1);
  assert_string_equal(h->items[0].action, "renew");
  assert_string_equal(lease_stats().hist_target, "dev.lab-a.busy");
  dfnet_client_lease_audit_list_free(h);
  hq = (dfnet_client_lease_history_query_t){.limit = 10001};
  assert_int_equal(dfnet_client_lease_history(c, &hq, NULL, &h, &err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_null(h);
  dfnet_client_close(c);
}

/* Who holds what, in the node and host listings; the lease events' names. */
static void test_node_and_host_fields(void **state) {
  (void)state;
  dfnet_client_t *c = connect_as("viewer", "carol");
  dfnet_client_error_t err;
  dfnet_client_node_list_t *n = NULL;
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci.00_0a_0", true, false, NULL, &n, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(n->count, 1);
  assert_int_equal(n->items[0].lease_id, 7);
  assert_string_equal(n->items[0].lease_holder, "alice");
  assert_int_equal(n->items[0].lease_expires_ms, 1800000000000ull);
  dfnet_client_node_list_free(n);
  assert_int_equal(dfnet_client_list_nodes(c, "dev.lab-a.pci.00_05_0", true, false, NULL, &n, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(n->items[0].lease_id, 0);
  assert_string_equal(n->items[0].lease_holder, "");
  dfnet_client_node_list_free(n);
  dfnet_client_host_list_t *h = NULL;
  assert_int_equal(dfnet_client_list_hosts(c, NULL, &h, &err), DFNET_STATUS_OK);
  assert_int_equal(h->items[0].lease_holder_count, 1);
  assert_string_equal(h->items[0].lease_holders[0], "alice");
  assert_int_equal(h->items[0].leased_nodes, 1);
  assert_int_equal(h->items[1].lease_holder_count, 0);
  dfnet_client_host_list_free(h);
  assert_string_equal(dfnet_client_event_kind_str(DFNET_CLIENT_EVENT_LEASE_ACQUIRED),
                      "LEASE_ACQUIRED");
  assert_string_equal(dfnet_client_event_kind_str(DFNET_CLIENT_EVENT_LEASE_QUEUED), "LEASE_QUEUED");
  dfnet_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acquire_on_the_wire),
      cmocka_unit_test(test_acquire_refused),
      cmocka_unit_test(test_queue_then_granted),
      cmocka_unit_test(test_queue_wait_ends),
      cmocka_unit_test(test_queue_cancel),
      cmocka_unit_test(test_queue_resumed_after_a_drop),
      cmocka_unit_test(test_renewed_at_a_third_of_the_ttl),
      cmocka_unit_test(test_renewal_refused),
      cmocka_unit_test(test_renewal_unanswered),
      cmocka_unit_test(test_token_from_the_environment),
      cmocka_unit_test(test_renew_and_release_by_hand),
      cmocka_unit_test(test_list_show_history),
      cmocka_unit_test(test_node_and_host_fields),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
