/* Leases, the manager's side (issue 20; docs/architecture.md "Leases", "Store"), against the
 * real dfnet-manager with scripted hosts and clients (tests/testhost):
 *   - acquire, and another principal refused with the holder's name; a lease covers its
 *     subtree (a class entry below, the bus above conflicts); several targets all or nothing;
 *     selectors; the role rules; NodeInfo, HostInfo and ListLeases show who holds what;
 *   - fencing: a call without the token, with a wrong one, with another's, from another
 *     principal is FAILED_PRECONDITION naming the holder and the expiry; the token is never
 *     forwarded; a released lease's token is no token; --require-lease; a method the
 *     driver's manifest declares read-only passes without the lease (and --require-lease);
 *   - expiry with short TTLs over many periods: a lease renewed every TTL/3 stays, one not
 *     renewed expires and a call in flight with its token ends CANCELLED, cancelled through
 *     to the host;
 *   - the queue: priority band then arrival, no overtaking, a request for other nodes not held
 *     up, wait_ms, cancel, a dropped session's place kept for the grace and resumed;
 *   - force release (admin only, with a reason), the audit history and its paging;
 *   - kill -9 of the manager right after an acquire answered: the lease is back with its
 *     expiry and token, the queue in its order; driver flags and composite node specs survive
 *     a restart; an unusable store stops the start-up;
 *   - a lease on a composite node refuses others' calls to its parents; driver-to-driver calls
 *     are not fenced.
 * Every test stops what it started on every way out (teardown); nothing asserts a duration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "testhost/testhost.h"

#define WAIT_MS 10000
#define PCI "dev.lab-a.pci"
#define N5 "dev.lab-a.pci.00_05_0"
#define N6 "dev.lab-a.pci.00_06_0"
#define N7 "dev.lab-a.pci.00_07_0"
#define RNG_CLASS "class/rng/000" /* N5's class entry, kept by N5's driver */
#define METHOD "/dfnet.test.Echo/Echo"

typedef struct fixture {
  char root[256], drivers[300], state[300];
  th_manager_t mgr;
  testhost_t *peers[32];
  size_t npeers;
  testhost_t *host; /* lab-a */
  testhost_t *vic;  /* a viewer */
} fixture_t;

static int setup(void **state) {
  static int n;
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->root, sizeof f->root, "/tmp/dfnet-leases-%d-%d", (int)getpid(), n++);
  snprintf(f->drivers, sizeof f->drivers, "%s/drivers", f->root);
  snprintf(f->state, sizeof f->state, "%s/state", f->root);
  if (th_fresh_dir(f->drivers) != 0) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static void drop_all(fixture_t *f) {
  for (size_t i = 0; i < f->npeers; i++)
    th_close(f->peers[i]);
  f->npeers = 0;
  f->host = f->vic = NULL;
}

/* Stop what the test started; a manager that does not exit cleanly (0) fails the test. */
static int teardown(void **state) {
  fixture_t *f = *state;
  drop_all(f);
  int rc = 0;
  if (f->mgr.pid > 0 && th_manager_stop(&f->mgr) != 0) {
    fprintf(stderr, "dfnet-manager did not exit cleanly: see %s\n", f->mgr.log_path);
    rc = -1;
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
  if (getenv("DFNET_KEEP") == NULL && rc == 0 && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", f->root);
  free(f);
  return rc;
}

/* A session, closed by teardown. */
static testhost_t *peer(fixture_t *f, const char *name, const char *role) {
  testhost_t *h = th_connect(&f->mgr, name, role, NULL);
  if (h == NULL)
    fail_msg("%s (%s) could not connect", name, role);
  assert_true(f->npeers < sizeof f->peers / sizeof f->peers[0]);
  f->peers[f->npeers++] = h;
  return h;
}

/* Close one session now (its session ends at the manager). */
static void drop(fixture_t *f, testhost_t *h) {
  for (size_t i = 0; i < f->npeers; i++) {
    if (f->peers[i] == h) {
      f->peers[i] = f->peers[--f->npeers];
      break;
    }
  }
  th_close(h);
}

/* The manager with --host-grace `grace` (seconds: a dropped client's waiting requests keep
 * their places that long too) and one more argument (may be NULL). */
static void start(fixture_t *f, const char *grace, const char *extra) {
  int rc = extra
               ? th_manager_start(&f->mgr, f->state, f->drivers, "--host-grace", grace, extra, NULL)
               : th_manager_start(&f->mgr, f->state, f->drivers, "--host-grace", grace, NULL);
  assert_int_equal(rc, 0);
}

/* kill -9 the manager (nothing it has not written survives). */
static void kill9(fixture_t *f) {
  drop_all(f);
  kill(f->mgr.pid, SIGKILL);
  waitpid(f->mgr.pid, NULL, 0);
  f->mgr.pid = 0;
}

static bool is_bound(const dfnet_v1_NodeInfo *i) { return i->state == dfnet_v1_NodeState_BOUND; }

/* Host lab-a: the bus dev.lab-a.pci (its agent's), three functions bound to `rng`, and N5's
 * class entry class/rng/000 (kept by N5's driver). The host answers calls. */
static void host_nodes(fixture_t *f) {
  f->host = peer(f, "lab-a", "host");
  if (f->vic == NULL)
    f->vic = peer(f, "vic", "viewer");
  th_prop_t p31[] = {"#1=u:31", "dfnet.test.slot=s:five"}, p31b[] = {"#1=u:31"};
  assert_int_equal(th_node_add_owned(f->host, "dev.lab-a", "pci", NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(f->host, PCI, "00_05_0", p31, 2, NULL, NULL, NULL), DFNET_STATUS_OK);
  assert_int_equal(th_node_add(f->host, PCI, "00_06_0", p31b, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(th_node_add(f->host, PCI, "00_07_0", p31b, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_true(th_wait_node(f->vic, N5, is_bound, WAIT_MS, info));
  assert_true(th_wait_node(f->vic, N6, is_bound, WAIT_MS, info));
  assert_true(th_wait_node(f->vic, N7, is_bound, WAIT_MS, info));
  free(info);
  assert_int_equal(th_node_add_owned(f->host, N5, "rng", "rng"), DFNET_STATUS_OK);
  th_answer_calls(f->host, true);
}

/* The driver `rng` (fuchsia.BIND_PROTOCOL 31), the manager (extra: one more argument, may be
 * NULL), host lab-a and the viewer vic. */
static void world(fixture_t *f, const char *extra) {
  assert_int_equal(th_write_driver(f->drivers, "rng", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  start(f, "3", extra);
  host_nodes(f);
}

/* ---- requests ------------------------------------------------------------------------- */

typedef struct acq {
  const char *targets[4];
  const char *match[4];
  uint32_t ttl_ms, wait_ms;
  bool wait, no_expiry;
  dfnet_v1_LeasePriority priority;
  uint64_t resume_id;
  const char *reason;
} acq_t;

static dfnet_envelope_t *new_env(pb_size_t which) {
  dfnet_envelope_t *e = calloc(1, sizeof *e);
  assert_non_null(e);
  dfnet_envelope_init(e);
  e->pb.which_msg = which;
  return e;
}

static dfnet_envelope_t *acquire_env(const acq_t *a) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_lease_acquire_tag);
  dfnet_v1_LeaseAcquire *q = &req->pb.msg.lease_acquire;
  for (size_t i = 0; i < 4 && a->targets[i]; i++)
    snprintf(q->targets[q->targets_count++], sizeof q->targets[0], "%s", a->targets[i]);
  for (size_t i = 0; i < 4 && a->match[i]; i++)
    snprintf(q->match[q->match_count++], sizeof q->match[0], "%s", a->match[i]);
  q->ttl_ms = a->ttl_ms;
  q->wait = a->wait;
  q->wait_ms = a->wait_ms;
  q->no_expiry = a->no_expiry;
  q->priority = a->priority;
  q->resume_id = a->resume_id;
  snprintf(q->reason, sizeof q->reason, "%s", a->reason ? a->reason : "");
  return req;
}

/* The answer of a lease request: OK with *info (may be NULL) for a LeaseInfo, else the
 * Status's code with its message in msg (may be NULL, 512 bytes). */
static dfnet_status_t answer_of(dfnet_status_t st, const dfnet_envelope_t *rep,
                                dfnet_v1_LeaseInfo *info, char *msg) {
  if (msg != NULL)
    msg[0] = '\0';
  if (st != DFNET_STATUS_OK)
    return st;
  if (rep->pb.which_msg == dfnet_v1_Envelope_lease_info_tag) {
    if (info != NULL)
      *info = rep->pb.msg.lease_info;
    return DFNET_STATUS_OK;
  }
  if (rep->pb.which_msg != dfnet_v1_Envelope_status_tag)
    return DFNET_STATUS_UNKNOWN;
  if (msg != NULL)
    snprintf(msg, 512, "%s", rep->pb.msg.status.message);
  return (dfnet_status_t)rep->pb.msg.status.code;
}

static dfnet_status_t request(testhost_t *c, dfnet_envelope_t *req, dfnet_v1_LeaseInfo *info,
                              char *msg) {
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  dfnet_status_t st = answer_of(th_request(c, req, rep, WAIT_MS), rep, info, msg);
  free(rep);
  free(req);
  return st;
}

static dfnet_status_t acquire(testhost_t *c, const acq_t *a, dfnet_v1_LeaseInfo *info, char *msg) {
  return request(c, acquire_env(a), info, msg);
}

/* A lease request left waiting: its answer comes with th_async_wait (wait_answer). */
static th_async_t *acquire_async(testhost_t *c, const acq_t *a) {
  dfnet_envelope_t *req = acquire_env(a);
  th_async_t *p = th_async_start(c, req, 60000);
  free(req);
  assert_non_null(p);
  return p;
}

static dfnet_status_t wait_answer(th_async_t *p, dfnet_v1_LeaseInfo *info, char *msg) {
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  dfnet_status_t st = answer_of(th_async_wait(p, WAIT_MS, rep), rep, info, msg);
  free(rep);
  return st;
}

static dfnet_status_t renew(testhost_t *c, uint64_t id, const char *token, uint32_t ttl_ms,
                            dfnet_v1_LeaseInfo *info, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_lease_renew_tag);
  req->pb.msg.lease_renew.id = id;
  snprintf(req->pb.msg.lease_renew.token, sizeof req->pb.msg.lease_renew.token, "%s",
           token ? token : "");
  req->pb.msg.lease_renew.ttl_ms = ttl_ms;
  return request(c, req, info, msg);
}

static dfnet_status_t release(testhost_t *c, uint64_t id, const char *token, bool force,
                              const char *reason, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_lease_release_tag);
  dfnet_v1_LeaseRelease *r = &req->pb.msg.lease_release;
  r->id = id;
  snprintf(r->token, sizeof r->token, "%s", token ? token : "");
  r->force = force;
  snprintf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
  return request(c, req, NULL, msg);
}

static dfnet_envelope_t *call_env_method(const char *target, const char *method,
                                         const char *token) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_call_tag);
  dfnet_v1_Call *call = &req->pb.msg.call;
  snprintf(call->target, sizeof call->target, "%s", target);
  snprintf(call->method, sizeof call->method, "%s", method);
  snprintf(call->lease_token, sizeof call->lease_token, "%s", token ? token : "");
  call->deadline_ms = 30000;
  return req;
}

static dfnet_envelope_t *call_env(const char *target, const char *token) {
  return call_env_method(target, METHOD, token);
}

/* The final code of a reply (a Reply's, or a Status's), its message into msg (512 bytes). */
static dfnet_status_t reply_code(dfnet_status_t st, const dfnet_envelope_t *rep, char *msg) {
  msg[0] = '\0';
  if (st != DFNET_STATUS_OK)
    return st;
  if (rep->pb.which_msg == dfnet_v1_Envelope_reply_tag) {
    snprintf(msg, 512, "%s", rep->pb.msg.reply.message);
    return (dfnet_status_t)rep->pb.msg.reply.code;
  }
  if (rep->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    snprintf(msg, 512, "%s", rep->pb.msg.status.message);
    return (dfnet_status_t)rep->pb.msg.status.code;
  }
  return DFNET_STATUS_UNKNOWN;
}

/* A client's unary call of `method` to `target` with `token` (NULL: none); msg (512 bytes)
 * gets the final message. */
static dfnet_status_t call_method(testhost_t *c, const char *target, const char *method,
                                  const char *token, char *msg) {
  dfnet_envelope_t *req = call_env_method(target, method, token), *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  dfnet_status_t st = reply_code(th_request(c, req, rep, WAIT_MS), rep, msg);
  free(req);
  free(rep);
  return st;
}

/* call_method of METHOD. */
static dfnet_status_t call(testhost_t *c, const char *target, const char *token, char *msg) {
  return call_method(c, target, METHOD, token, msg);
}

/* A call left in flight (the host does not answer it). */
static th_async_t *call_async(testhost_t *c, const char *target, const char *token) {
  dfnet_envelope_t *req = call_env(target, token);
  th_async_t *p = th_async_start(c, req, 60000);
  free(req);
  assert_non_null(p);
  return p;
}

static dfnet_status_t call_wait(th_async_t *p, char *msg) {
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  dfnet_status_t st = reply_code(th_async_wait(p, WAIT_MS, rep), rep, msg);
  free(rep);
  return st;
}

/* Cancel of request `id` (a waiting LeaseAcquire). */
static void send_cancel(testhost_t *c, uint64_t id) {
  dfnet_envelope_t *e = new_env(dfnet_v1_Envelope_cancel_tag);
  e->pb.id = id;
  snprintf(e->pb.msg.cancel.reason, sizeof e->pb.msg.cancel.reason, "changed my mind");
  assert_int_equal(th_send(c, e), DFNET_STATUS_OK);
  free(e);
}

typedef struct lease_list {
  dfnet_v1_LeaseInfo items[16];
  size_t count;
} lease_list_t;

static void collect_lease(void *user, const dfnet_envelope_t *item) {
  lease_list_t *l = user;
  if (item->pb.which_msg == dfnet_v1_Envelope_lease_info_tag && l->count < 16)
    l->items[l->count++] = item->pb.msg.lease_info;
}

/* ListLeases; the closing Status's message into msg (512 bytes). */
static dfnet_status_t list_leases(testhost_t *c, const char *target, uint64_t id, lease_list_t *out,
                                  char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_leases_tag);
  snprintf(req->pb.msg.list_leases.target, sizeof req->pb.msg.list_leases.target, "%s",
           target ? target : "");
  req->pb.msg.list_leases.id = id;
  memset(out, 0, sizeof *out);
  dfnet_status_t st = th_list(c, req, collect_lease, out, msg);
  free(req);
  return st;
}

/* How many requests wait (ListLeases), polled until it is `want` or the time is up. */
static bool wait_waiting(testhost_t *c, size_t want) {
  lease_list_t *l = calloc(1, sizeof *l);
  char msg[512];
  bool ok = false;
  for (int i = 0; i < 500 && !ok; i++) {
    size_t waiting = 0;
    assert_int_equal(list_leases(c, NULL, 0, l, msg), DFNET_STATUS_OK);
    for (size_t j = 0; j < l->count; j++)
      waiting += l->items[j].queue_position > 0;
    ok = waiting == want;
    if (!ok)
      usleep(20000);
  }
  free(l);
  return ok;
}

typedef struct audit {
  dfnet_v1_LeaseAuditEntry rows[64];
  size_t count;
} audit_t;

static void collect_audit(void *user, const dfnet_envelope_t *item) {
  audit_t *a = user;
  if (item->pb.which_msg == dfnet_v1_Envelope_lease_audit_entry_tag && a->count < 64)
    a->rows[a->count++] = item->pb.msg.lease_audit_entry;
}

static dfnet_status_t history(testhost_t *c, const char *target, uint32_t limit, uint64_t after,
                              audit_t *out, char *msg) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_lease_history_tag);
  dfnet_v1_LeaseHistory *q = &req->pb.msg.lease_history;
  snprintf(q->target, sizeof q->target, "%s", target ? target : "");
  q->limit = limit;
  q->after_seq = after;
  memset(out, 0, sizeof *out);
  dfnet_status_t st = th_list(c, req, collect_audit, out, msg);
  free(req);
  return st;
}

/* Is there an audit row of `action` by `actor` (NULL: anyone) for lease `id` (0: any)? */
static bool audited(const audit_t *a, const char *action, const char *actor, uint64_t id) {
  for (size_t i = 0; i < a->count; i++)
    if (strcmp(a->rows[i].action, action) == 0 &&
        (actor == NULL || strcmp(a->rows[i].actor, actor) == 0) &&
        (id == 0 || a->rows[i].lease_id == id))
      return true;
  return false;
}

static void iso(uint64_t ms, char *buf, size_t size) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The refusal a call to `node` gets while `l` holds it. */
static void held_msg(const char *node, const dfnet_v1_LeaseInfo *l, char *buf, size_t size) {
  char when[40];
  iso(l->expires_ms, when, sizeof when);
  if (l->expires_ms == 0)
    snprintf(buf, size, "%s is leased by %s (lease %" PRIu64 ", no expiry)", node, l->holder,
             l->id);
  else
    snprintf(buf, size, "%s is leased by %s until %s (lease %" PRIu64 ")", node, l->holder, when,
             l->id);
}

/* Watch every kind on c, in place once this returns (a request of c's answered after it). */
static void watch(testhost_t *c) {
  assert_int_equal(th_watch(c), DFNET_STATUS_OK);
  lease_list_t *l = calloc(1, sizeof *l);
  char msg[512];
  assert_non_null(l);
  assert_int_equal(list_leases(c, NULL, 0, l, msg), DFNET_STATUS_OK);
  free(l);
}

/* Wait for a watch event of `kind` about `subject` on watcher c. */
static bool wait_watch(testhost_t *c, const char *subject, int kind) {
  size_t from = 0;
  th_event_t ev;
  while (th_wait_event(c, dfnet_v1_Envelope_watch_event_tag, subject, WAIT_MS, &from, &ev))
    if (ev.kind == kind)
      return true;
  return false;
}

static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL)
    fail_msg("wanted '%s' in '%s'", part, text);
}

#define EXPECT(code, want, msg)                                                                \
  do {                                                                                         \
    dfnet_status_t got_ = (code);                                                              \
    if (got_ != (want))                                                                        \
      fail_msg("%s:%d: %s (%s), wanted %s", __FILE__, __LINE__, dfnet_status_str(got_), (msg), \
               dfnet_status_str(want));                                                        \
  } while (0)

/* ---- acquire, conflicts, fencing ---------------------------------------------------------- */

static void collect_host(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_host_info_tag &&
      strcmp(item->pb.msg.host_info.name, "lab-a") == 0)
    *(dfnet_v1_HostInfo *)user = item->pb.msg.host_info;
}

static void test_acquire_conflict_fencing(void **state) {
  fixture_t *f = *state;
  world(f, NULL);
  testhost_t *alice = peer(f, "alice", "operator"), *bob = peer(f, "bob", "operator");
  watch(f->vic);
  dfnet_v1_LeaseInfo la, lb, tmp;
  char msg[512], want[512];

  /* alice takes N5: an id, a token "<id>.<64 hex>", the default TTL */
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}, .reason = "flashing"}, &la, msg), DFNET_STATUS_OK,
         msg);
  assert_true(la.id > 0);
  assert_string_equal(la.holder, "alice");
  char prefix[32];
  snprintf(prefix, sizeof prefix, "%" PRIu64 ".", la.id);
  assert_int_equal(strncmp(la.token, prefix, strlen(prefix)), 0);
  assert_int_equal(strlen(la.token), strlen(prefix) + 64);
  assert_int_equal(strspn(la.token + strlen(prefix), "0123456789abcdef"), 64);
  assert_int_equal(la.ttl_ms, 30u * 60u * 1000u);
  assert_int_equal(la.expires_ms, la.acquired_ms + la.ttl_ms);
  assert_int_equal(la.nodes_count, 1);
  assert_string_equal(la.nodes[0], N5);
  assert_string_equal(la.reason, "flashing");
  th_event_t ev;
  char sid[32];
  snprintf(sid, sizeof sid, "%" PRIu64, la.id);
  assert_true(wait_watch(f->vic, sid, dfnet_v1_WatchEvent_Kind_LEASE_ACQUIRED));
  assert_true(th_wait_event(f->vic, dfnet_v1_Envelope_watch_event_tag, sid, WAIT_MS, NULL, &ev));
  assert_string_equal(ev.url, "alice: " N5);

  /* bob is refused with the holder's name: the node, its subtree (the class entry below it
   * stands for it), the bus above it */
  held_msg(N5, &la, want, sizeof want);
  EXPECT(acquire(bob, &(acq_t){.targets = {N5}}, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(acquire(bob, &(acq_t){.targets = {RNG_CLASS}}, NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "is leased by alice");
  EXPECT(acquire(bob, &(acq_t){.targets = {PCI}}, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION,
         msg);
  assert_string_equal(msg, want);
  /* all or nothing: N6 is free but N5 is not, so bob gets neither */
  EXPECT(acquire(bob, &(acq_t){.targets = {N6, N5}}, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION,
         msg);
  EXPECT(acquire(bob, &(acq_t){.targets = {N6}}, &lb, msg), DFNET_STATUS_OK, msg);
  /* overlapping targets, bad selectors, unknown nodes */
  EXPECT(acquire(bob, &(acq_t){.targets = {N7, N7}}, NULL, msg), DFNET_STATUS_INVALID_ARGUMENT,
         msg);
  EXPECT(acquire(bob, &(acq_t){.match = {"no-equals-sign"}}, NULL, msg),
         DFNET_STATUS_INVALID_ARGUMENT, msg);
  EXPECT(acquire(bob, &(acq_t){.targets = {"dev.lab-a.pci.ff_00_0"}}, NULL, msg),
         DFNET_STATUS_NOT_FOUND, msg);
  EXPECT(acquire(bob, &(acq_t){.match = {"host=lab-z"}}, NULL, msg), DFNET_STATUS_NOT_FOUND, msg);
  EXPECT(acquire(bob, &(acq_t){}, NULL, msg), DFNET_STATUS_INVALID_ARGUMENT, msg);
  /* the role rules: a viewer takes nothing; high priority, no expiry and a TTL over 24 h are
   * an admin's */
  EXPECT(acquire(f->vic, &(acq_t){.targets = {N7}}, NULL, msg), DFNET_STATUS_PERMISSION_DENIED,
         msg);
  EXPECT(acquire(bob,
                 &(acq_t){.targets = {N7}, .priority = dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH},
                 NULL, msg),
         DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(acquire(bob, &(acq_t){.targets = {N7}, .no_expiry = true}, NULL, msg),
         DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(acquire(bob, &(acq_t){.targets = {N7}, .ttl_ms = 25u * 3600u * 1000u}, NULL, msg),
         DFNET_STATUS_INVALID_ARGUMENT, msg);
  EXPECT(renew(f->vic, la.id, la.token, 0, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(release(f->vic, la.id, la.token, false, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);

  /* fencing: bob without a token, with alice's token (not his lease), alice without hers,
   * with a wrong one and with bob's: each refused naming alice and the expiry */
  EXPECT(call(bob, N5, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(call(bob, N5, la.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(call(alice, N5, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  char wrong[96];
  snprintf(wrong, sizeof wrong, "%s", la.token);
  wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == '0' ? '1' : '0';
  EXPECT(call(alice, N5, wrong, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  EXPECT(call(alice, N5, lb.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  /* the class entry below N5 is served by N5's driver: fenced the same way */
  EXPECT(call(bob, RNG_CLASS, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  assert_int_equal(th_count_events(f->host, dfnet_v1_Envelope_call_tag, NULL), 0);
  /* with her token alice's calls go through, and the token goes no further */
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(alice, RNG_CLASS, la.token, msg), DFNET_STATUS_OK, msg);
  /* her token seen (the manager keeps it to compare, lease_fence.c): others still refused */
  EXPECT(call(alice, N5, wrong, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  EXPECT(call(bob, N5, la.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_OK, msg);
  assert_true(th_wait_event(f->host, dfnet_v1_Envelope_call_tag, N5, WAIT_MS, NULL, &ev));
  assert_string_equal(ev.lease_token, "");
  assert_string_equal(ev.caller, "alice");
  /* a node nobody leased is open, with or without a token */
  EXPECT(call(alice, N7, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(bob, N7, la.token, msg), DFNET_STATUS_OK, msg);

  /* listings show who holds what */
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_int_equal(th_node_info(f->vic, N5, info), DFNET_STATUS_OK);
  assert_int_equal(info->lease_id, la.id);
  assert_string_equal(info->lease_holder, "alice");
  assert_int_equal(info->lease_expires_ms, la.expires_ms);
  assert_int_equal(th_node_info(f->vic, N5 ".rng", info), DFNET_STATUS_OK);
  assert_int_equal(info->lease_id, la.id);
  assert_int_equal(th_node_info(f->vic, N6, info), DFNET_STATUS_OK);
  assert_string_equal(info->lease_holder, "bob");
  assert_int_equal(th_node_info(f->vic, N7, info), DFNET_STATUS_OK);
  assert_int_equal(info->lease_id, 0);
  free(info);
  lease_list_t *list = calloc(1, sizeof *list);
  assert_non_null(list);
  EXPECT(list_leases(f->vic, NULL, 0, list, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(msg, "2 leases, 0 waiting");
  assert_int_equal(list->items[0].id, la.id);
  assert_string_equal(list->items[0].token, ""); /* a token is shown once, to its holder */
  assert_int_equal(list->items[1].id, lb.id);
  EXPECT(list_leases(f->vic, RNG_CLASS, 0, list, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(list->count, 1);
  assert_int_equal(list->items[0].id, la.id);
  EXPECT(list_leases(f->vic, NULL, lb.id, list, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(list->count, 1);
  assert_string_equal(list->items[0].holder, "bob");
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_hosts_tag);
  dfnet_v1_HostInfo *hi = calloc(1, sizeof *hi);
  assert_non_null(hi);
  assert_int_equal(th_list(f->vic, req, collect_host, hi, NULL), DFNET_STATUS_OK);
  assert_int_equal(hi->leased_nodes, 3); /* N5, its class entry, N6 */
  assert_int_equal(hi->lease_holders_count, 2);
  bool a0 = strcmp(hi->lease_holders[0], "alice") == 0;
  assert_string_equal(hi->lease_holders[a0 ? 1 : 0], "bob");
  assert_string_equal(hi->lease_holders[a0 ? 0 : 1], "alice");
  free(hi);
  free(req);

  /* the holder releases: another's token, no token, then hers */
  EXPECT(release(bob, la.id, lb.token, false, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(release(bob, la.id, NULL, false, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  assert_true(wait_watch(f->vic, sid, dfnet_v1_WatchEvent_Kind_LEASE_RELEASED));
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_NOT_FOUND, msg);
  /* free again: bob's call goes through; alice's old token is no token */
  EXPECT(call(bob, N5, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_OK, msg);
  /* on a node bob holds now, her old token is refused naming bob */
  EXPECT(acquire(bob, &(acq_t){.match = {"dfnet.test.slot=five", "host=lab-a"}}, &tmp, msg),
         DFNET_STATUS_OK, msg);
  assert_string_equal(tmp.nodes[0], N5); /* the selectors picked N5 */
  assert_string_equal(tmp.targets[0], N5);
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "is leased by bob");
  free(list);
}

static void test_require_lease(void **state) {
  fixture_t *f = *state;
  world(f, "--require-lease");
  testhost_t *alice = peer(f, "alice", "operator");
  dfnet_v1_LeaseInfo la;
  char msg[512];
  EXPECT(call(alice, N5, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, "dfnet-manager requires a lease: dfnet lease acquire " N5);
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}}, &la, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_OK, msg);
  /* the lease covers N5 only: N6 needs one of its own */
  EXPECT(call(alice, N6, la.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, "dfnet-manager requires a lease: dfnet lease acquire " N6);
  /* a released lease's token opens nothing */
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "requires a lease");
  assert_int_equal(th_count_events(f->host, dfnet_v1_Envelope_call_tag, NULL), 1);
}

/* ---- read-only methods ------------------------------------------------------------------- */

#define RO_METHOD "/dfnet.test.Echo/Watch" /* rng's manifest declares it read-only */
#define RO_EXTRA "\"read_only_methods\": [\"/dfnet.test.Other/Peek\", \"" RO_METHOD "\"]"
#define SERIAL "dev.lab-a.pci.00_09_0" /* bound to the registered driver `serial` */
#define SUBSCRIBE "/dfnet.hw.serial.Serial/Subscribe"

/* How many Calls of `method` to `node` the host has received. */
static size_t calls_of(testhost_t *h, const char *node, const char *method) {
  th_event_t *evs = NULL;
  size_t n = th_events(h, &evs), count = 0;
  for (size_t i = 0; i < n; i++)
    if (evs[i].which == dfnet_v1_Envelope_call_tag && strcmp(evs[i].node, node) == 0 &&
        strcmp(evs[i].url, method) == 0)
      count++;
  free(evs);
  return count;
}

/* world() with rng's manifest declaring RO_EXTRA's methods read-only. */
static void world_read_only(fixture_t *f, const char *extra) {
  assert_int_equal(th_write_driver(f->drivers, "rng", "fuchsia.BIND_PROTOCOL == 31;", RO_EXTRA), 0);
  start(f, "3", extra);
  host_nodes(f);
}

/* Register (upload, as admin) the driver `serial` (fuchsia.BIND_PROTOCOL 41, SUBSCRIBE
 * read-only) and bind SERIAL to it. */
static void serial_node(fixture_t *f) {
  testhost_t *root = peer(f, "root", "admin");
  char dir[400], msg[512];
  snprintf(dir, sizeof dir, "%s/pkgs", f->root);
  assert_int_equal(th_write_driver(dir, "serial", "fuchsia.BIND_PROTOCOL == 41;",
                                   "\"read_only_methods\": [\"" SUBSCRIBE "\"]"),
                   0);
  snprintf(dir, sizeof dir, "%s/pkgs/serial", f->root);
  uint8_t *pkg, digest[32];
  size_t len;
  assert_int_equal(th_pack(dir, &pkg, &len, digest), 0);
  EXPECT(th_upload(root, "serial", pkg, len, digest, 64 * 1024, msg), DFNET_STATUS_OK, msg);
  free(pkg);
  th_prop_t p41[] = {"#1=u:41"};
  assert_int_equal(th_node_add(f->host, PCI, "00_09_0", p41, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_true(th_wait_node(f->vic, SERIAL, is_bound, WAIT_MS, info));
  assert_non_null(strstr(info->driver_url, "dfnet-pkg://"));
  free(info);
}

/* A method the driver declares read-only passes a lease held by someone else (boot and
 * registered drivers alike); every other method is fenced as before; roles are unchanged. */
static void test_read_only_methods(void **state) {
  fixture_t *f = *state;
  world_read_only(f, NULL);
  serial_node(f);
  testhost_t *alice = peer(f, "alice", "operator"), *bob = peer(f, "bob", "operator");
  dfnet_v1_LeaseInfo la, ls;
  char msg[512], want[512];
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}}, &la, msg), DFNET_STATUS_OK, msg);
  held_msg(N5, &la, want, sizeof want);

  /* bob watches N5 (and its class entry, served by N5's driver) while alice holds it: the
   * calls reach the host, without a token */
  EXPECT(call_method(bob, N5, RO_METHOD, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call_method(bob, RNG_CLASS, RO_METHOD, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call_method(bob, N5, "/dfnet.test.Other/Peek", NULL, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(calls_of(f->host, N5, RO_METHOD), 2);
  th_event_t ev;
  assert_true(th_wait_event(f->host, dfnet_v1_Envelope_call_tag, N5, WAIT_MS, NULL, &ev));
  assert_string_equal(ev.url, RO_METHOD);
  assert_string_equal(ev.caller, "bob");
  /* anything else is refused naming alice, as before: another method, a near miss */
  EXPECT(call(bob, N5, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(call_method(bob, N5, RO_METHOD "s", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(call_method(bob, RNG_CLASS, "/dfnet.test.Echo", NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  assert_int_equal(th_count_events(f->host, dfnet_v1_Envelope_call_tag, NULL), 3);
  /* alice's own calls: the read-only one with or without her token, the other with it */
  EXPECT(call_method(alice, N5, RO_METHOD, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_OK, msg);
  /* roles are unchanged: a viewer may not call at all */
  EXPECT(call_method(f->vic, N5, RO_METHOD, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);

  /* a registered driver's manifest counts the same; the methods are per driver */
  EXPECT(acquire(alice, &(acq_t){.targets = {SERIAL}}, &ls, msg), DFNET_STATUS_OK, msg);
  EXPECT(call_method(bob, SERIAL, SUBSCRIBE, NULL, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(calls_of(f->host, SERIAL, SUBSCRIBE), 1);
  EXPECT(call_method(bob, SERIAL, "/dfnet.hw.serial.Serial/Write", NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, SERIAL " is leased by alice");
  EXPECT(call_method(bob, SERIAL, RO_METHOD, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "is leased by alice");
  EXPECT(call_method(bob, N5, SUBSCRIBE, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
}

/* Under --require-lease, a read-only method of a node nobody leased passes without a lease;
 * any other method needs one. */
static void test_read_only_require_lease(void **state) {
  fixture_t *f = *state;
  world_read_only(f, "--require-lease");
  testhost_t *bob = peer(f, "bob", "operator");
  char msg[512];
  EXPECT(call_method(bob, N5, RO_METHOD, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(call_method(bob, RNG_CLASS, RO_METHOD, NULL, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(calls_of(f->host, N5, RO_METHOD), 2);
  EXPECT(call(bob, N5, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, "dfnet-manager requires a lease: dfnet lease acquire " N5);
  EXPECT(call_method(bob, N6, "/dfnet.test.Echo/Watc", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION,
         msg);
  assert_string_equal(msg, "dfnet-manager requires a lease: dfnet lease acquire " N6);
  assert_int_equal(th_count_events(f->host, dfnet_v1_Envelope_call_tag, NULL), 2);
}

/* ---- expiry and renewal ------------------------------------------------------------------- */

#define SHORT_TTL_MS 1200u

static void test_expiry_and_renewal(void **state) {
  fixture_t *f = *state;
  world(f, NULL);
  th_answer_calls(f->host, false); /* calls stay in flight */
  testhost_t *alice = peer(f, "alice", "operator");
  watch(f->vic);
  dfnet_v1_LeaseInfo la, lb, tmp;
  char msg[512];
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}, .ttl_ms = SHORT_TTL_MS}, &la, msg),
         DFNET_STATUS_OK, msg);
  EXPECT(acquire(alice, &(acq_t){.targets = {N6}, .ttl_ms = SHORT_TTL_MS}, &lb, msg),
         DFNET_STATUS_OK, msg);
  assert_int_equal(lb.ttl_ms, SHORT_TTL_MS);
  /* a call in flight under B's token */
  th_async_t *inflight = call_async(alice, N6, lb.token);
  th_event_t ev;
  assert_true(th_wait_event(f->host, dfnet_v1_Envelope_call_tag, N6, WAIT_MS, NULL, &ev));
  /* A is renewed every TTL/3 for 10 periods: it stays; B is not */
  uint64_t last = la.expires_ms;
  for (int i = 0; i < 30; i++) {
    usleep(SHORT_TTL_MS * 1000u / 3u);
    EXPECT(renew(alice, la.id, la.token, 0, &tmp, msg), DFNET_STATUS_OK, msg);
    assert_int_equal(tmp.id, la.id);
    assert_int_equal(tmp.ttl_ms, SHORT_TTL_MS);
    assert_string_equal(tmp.token, "");
    assert_true(tmp.expires_ms >= last);
    last = tmp.expires_ms;
  }
  /* B expired long ago: its call ended CANCELLED, cancelled through to the host */
  char want[64];
  snprintf(want, sizeof want, "lease %" PRIu64 " expired", lb.id);
  EXPECT(call_wait(inflight, msg), DFNET_STATUS_CANCELLED, msg);
  assert_string_equal(msg, want);
  assert_true(th_wait_event(f->host, dfnet_v1_Envelope_cancel_tag, NULL, WAIT_MS, NULL, &ev));
  char sid[32];
  snprintf(sid, sizeof sid, "%" PRIu64, lb.id);
  assert_true(wait_watch(f->vic, sid, dfnet_v1_WatchEvent_Kind_LEASE_EXPIRED));
  EXPECT(renew(alice, lb.id, lb.token, 0, NULL, msg), DFNET_STATUS_NOT_FOUND, msg);
  lease_list_t *list = calloc(1, sizeof *list);
  assert_non_null(list);
  EXPECT(list_leases(f->vic, NULL, 0, list, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(msg, "1 leases, 0 waiting");
  assert_int_equal(list->items[0].id, la.id);
  free(list);
  audit_t *a = calloc(1, sizeof *a);
  assert_non_null(a);
  EXPECT(history(f->vic, N6, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  assert_true(audited(a, "expire", "dfnet-manager", lb.id));
  EXPECT(history(f->vic, N5, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  assert_true(audited(a, "renew", "alice", la.id));
  assert_false(audited(a, "expire", NULL, la.id));
  free(a);
  /* a renewal may set another TTL, within the role's maximum */
  EXPECT(renew(alice, la.id, la.token, 60000, &tmp, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(tmp.ttl_ms, 60000);
  EXPECT(renew(alice, la.id, la.token, 25u * 3600u * 1000u, NULL, msg),
         DFNET_STATUS_INVALID_ARGUMENT, msg);
  EXPECT(renew(alice, la.id, lb.token, 0, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);
}

/* ---- the queue -------------------------------------------------------------------------- */

/* The id of the waiting request at queue position `pos` (0 when none). */
static uint64_t waiter_at(testhost_t *c, uint32_t pos, char *holder) {
  lease_list_t *l = calloc(1, sizeof *l);
  char msg[512];
  uint64_t id = 0;
  assert_int_equal(list_leases(c, NULL, 0, l, msg), DFNET_STATUS_OK);
  for (size_t i = 0; i < l->count; i++) {
    if (l->items[i].queue_position == pos) {
      id = l->items[i].id;
      if (holder != NULL)
        snprintf(holder, 64, "%s", l->items[i].holder);
    }
  }
  free(l);
  return id;
}

/* Has waiting request p been told place `want` (its last interim LeaseInfo), polled? */
static bool told(th_async_t *p, uint32_t want) {
  for (int i = 0; i < 500 && th_async_position(p) != want; i++)
    usleep(20000);
  return th_async_position(p) == want;
}

static void test_queue_order(void **state) {
  fixture_t *f = *state;
  world(f, NULL);
  testhost_t *alice = peer(f, "alice", "operator"), *bob = peer(f, "bob", "operator");
  testhost_t *carol = peer(f, "carol", "operator"), *root = peer(f, "root", "admin");
  testhost_t *erin = peer(f, "erin", "operator");
  dfnet_v1_LeaseInfo la, l1, l2, l3;
  char msg[512], who[64], sid[32];
  watch(f->vic);
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}}, &la, msg), DFNET_STATUS_OK, msg);
  /* three wait, in this order of arrival: normal, low, high */
  th_async_t *pb = acquire_async(bob, &(acq_t){.targets = {N5}, .wait = true});
  assert_true(wait_waiting(f->vic, 1));
  snprintf(sid, sizeof sid, "%" PRIu64, waiter_at(f->vic, 1, NULL));
  assert_true(wait_watch(f->vic, sid, dfnet_v1_WatchEvent_Kind_LEASE_QUEUED));
  th_async_t *pc =
      acquire_async(carol, &(acq_t){.targets = {N5},
                                    .wait = true,
                                    .priority = dfnet_v1_LeasePriority_LEASE_PRIORITY_LOW});
  assert_true(wait_waiting(f->vic, 2));
  th_async_t *pr =
      acquire_async(root, &(acq_t){.targets = {N5},
                                   .wait = true,
                                   .priority = dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH});
  assert_true(wait_waiting(f->vic, 3));
  /* queue order: the band first, then arrival */
  assert_true(waiter_at(f->vic, 1, who) != 0);
  assert_string_equal(who, "root");
  assert_true(waiter_at(f->vic, 2, who) != 0);
  assert_string_equal(who, "bob");
  assert_true(waiter_at(f->vic, 3, who) != 0);
  assert_string_equal(who, "carol");
  /* each is told its place, and again when it changes (root came before bob and carol) */
  assert_true(told(pr, 1));
  assert_true(told(pb, 2));
  assert_true(told(pc, 3));
  /* each release hands N5 to the next, with a token of its own */
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pr, &l1, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(l1.holder, "root");
  assert_true(l1.token[0] != '\0');
  EXPECT(call(root, N5, l1.token, msg), DFNET_STATUS_OK, msg);
  assert_true(wait_waiting(f->vic, 2));
  assert_true(told(pb, 1));
  assert_true(told(pc, 2));
  assert_false(th_async_done(pb)); /* N5 is root's: bob cannot have it */
  EXPECT(release(root, l1.id, l1.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pb, &l2, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(l2.holder, "bob");
  assert_false(th_async_done(pc));
  EXPECT(release(bob, l2.id, l2.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pc, &l3, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(l3.holder, "carol");
  EXPECT(release(carol, l3.id, l3.token, false, NULL, msg), DFNET_STATUS_OK, msg);

  /* no overtaking: bob waits for N5 and N6; N6 is free but promised to him */
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}}, &la, msg), DFNET_STATUS_OK, msg);
  pb = acquire_async(bob, &(acq_t){.targets = {N5, N6}, .wait = true});
  assert_true(wait_waiting(f->vic, 1));
  EXPECT(acquire(erin, &(acq_t){.targets = {N6}}, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION,
         msg);
  assert_has(msg, N6 " is wanted by a request of bob");
  /* a request for other nodes is not held up */
  EXPECT(acquire(erin, &(acq_t){.targets = {N7}}, &l1, msg), DFNET_STATUS_OK, msg);
  EXPECT(release(erin, l1.id, l1.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  th_async_t *pe = acquire_async(erin, &(acq_t){.targets = {N6}, .wait = true});
  assert_true(wait_waiting(f->vic, 2));
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pb, &l2, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(l2.nodes_count, 2);
  assert_true(wait_waiting(f->vic, 1));
  assert_false(th_async_done(pe));
  EXPECT(release(bob, l2.id, l2.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pe, &l3, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(l3.nodes[0], N6);
}

static void test_wait_cancel_resume(void **state) {
  fixture_t *f = *state;
  world(f, NULL); /* a dropped session's requests keep their places for 3 s */
  testhost_t *alice = peer(f, "alice", "operator"), *bob = peer(f, "bob", "operator");
  testhost_t *carol = peer(f, "carol", "operator"), *dave = peer(f, "dave", "operator");
  testhost_t *eve = peer(f, "eve", "operator");
  dfnet_v1_LeaseInfo la, lc;
  char msg[512], who[64];
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}}, &la, msg), DFNET_STATUS_OK, msg);
  /* wait_ms: it leaves the queue DEADLINE_EXCEEDED, naming the holder */
  th_async_t *p = acquire_async(bob, &(acq_t){.targets = {N5}, .wait = true, .wait_ms = 300});
  EXPECT(wait_answer(p, NULL, msg), DFNET_STATUS_DEADLINE_EXCEEDED, msg);
  assert_has(msg, "is leased by alice");
  assert_true(wait_waiting(f->vic, 0));
  /* the client's Cancel: it leaves the queue CANCELLED */
  p = acquire_async(bob, &(acq_t){.targets = {N5}, .wait = true});
  assert_true(wait_waiting(f->vic, 1));
  send_cancel(bob, th_async_id(p));
  EXPECT(wait_answer(p, NULL, msg), DFNET_STATUS_CANCELLED, msg);
  assert_true(wait_waiting(f->vic, 0));
  audit_t *a = calloc(1, sizeof *a);
  assert_non_null(a);
  EXPECT(history(f->vic, N5, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  size_t queued = 0, dequeued = 0;
  for (size_t i = 0; i < a->count; i++) {
    queued += strcmp(a->rows[i].action, "queue") == 0;
    dequeued += strcmp(a->rows[i].action, "dequeue") == 0;
  }
  assert_int_equal(queued, 2);
  assert_int_equal(dequeued, 2);

  /* a dropped session: its request keeps its place for the grace, and is resumed */
  p = acquire_async(carol, &(acq_t){.targets = {N5}, .wait = true});
  assert_true(wait_waiting(f->vic, 1));
  uint64_t carol_id = waiter_at(f->vic, 1, NULL);
  th_async_t *pd = acquire_async(dave, &(acq_t){.targets = {N5}, .wait = true});
  assert_true(wait_waiting(f->vic, 2));
  assert_int_equal(th_async_wait(p, 0, NULL), DFNET_STATUS_DEADLINE_EXCEEDED); /* give it up */
  drop(f, carol);
  assert_true(wait_waiting(f->vic, 2)); /* still there, detached */
  assert_int_equal(waiter_at(f->vic, 1, who), carol_id);
  EXPECT(acquire(eve, &(acq_t){.resume_id = carol_id}, NULL, msg), DFNET_STATUS_PERMISSION_DENIED,
         msg);
  carol = peer(f, "carol", "operator");
  p = acquire_async(carol, &(acq_t){.resume_id = carol_id});
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(p, &lc, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(lc.holder, "carol");
  assert_false(th_async_done(pd));
  /* one not resumed within the grace leaves */
  assert_int_equal(th_async_wait(pd, 0, NULL), DFNET_STATUS_DEADLINE_EXCEEDED);
  drop(f, dave);
  assert_true(wait_waiting(f->vic, 0));
  EXPECT(acquire(eve, &(acq_t){.resume_id = carol_id}, NULL, msg), DFNET_STATUS_NOT_FOUND, msg);
  EXPECT(history(f->vic, N5, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  bool left = false;
  for (size_t i = 0; i < a->count; i++)
    left |= strstr(a->rows[i].detail, "did not come back") != NULL;
  assert_true(left);
  free(a);
}

/* ---- force release, history ------------------------------------------------------------- */

static void test_force_release_and_history(void **state) {
  fixture_t *f = *state;
  world(f, NULL);
  th_answer_calls(f->host, false);
  testhost_t *alice = peer(f, "alice", "operator"), *bob = peer(f, "bob", "operator");
  testhost_t *root = peer(f, "root", "admin");
  dfnet_v1_LeaseInfo la, lb;
  char msg[512];
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}, .reason = "flashing"}, &la, msg), DFNET_STATUS_OK,
         msg);
  th_async_t *inflight = call_async(alice, N5, la.token);
  th_event_t ev;
  assert_true(th_wait_event(f->host, dfnet_v1_Envelope_call_tag, N5, WAIT_MS, NULL, &ev));
  EXPECT(release(bob, la.id, NULL, true, "mine now", msg), DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(release(root, la.id, NULL, true, NULL, msg), DFNET_STATUS_INVALID_ARGUMENT, msg);
  EXPECT(release(root, la.id, NULL, false, NULL, msg), DFNET_STATUS_PERMISSION_DENIED, msg);
  EXPECT(release(root, la.id, NULL, true, "stuck CI job", msg), DFNET_STATUS_OK, msg);
  EXPECT(call_wait(inflight, msg), DFNET_STATUS_CANCELLED, msg);
  char want[64];
  snprintf(want, sizeof want, "lease %" PRIu64 " released", la.id);
  assert_has(msg, want);
  assert_true(th_wait_event(f->host, dfnet_v1_Envelope_cancel_tag, NULL, WAIT_MS, NULL, &ev));
  EXPECT(renew(alice, la.id, la.token, 0, NULL, msg), DFNET_STATUS_NOT_FOUND, msg);
  /* an admin's lease may have no expiry */
  EXPECT(acquire(root, &(acq_t){.targets = {N7}, .no_expiry = true}, &lb, msg), DFNET_STATUS_OK,
         msg);
  assert_int_equal(lb.expires_ms, 0);
  assert_int_equal(lb.ttl_ms, 0);
  char held[512];
  held_msg(N7, &lb, held, sizeof held);
  EXPECT(call(bob, N7, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, held);
  assert_has(msg, "(lease");
  assert_has(msg, ", no expiry)");

  audit_t *a = calloc(1, sizeof *a), *page = calloc(1, sizeof *page);
  assert_non_null(a);
  assert_non_null(page);
  EXPECT(history(f->vic, N5, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(a->count, 2);
  assert_string_equal(a->rows[0].action, "acquire");
  assert_string_equal(a->rows[0].actor, "alice");
  assert_string_equal(a->rows[0].detail, "flashing");
  assert_string_equal(a->rows[0].targets, N5);
  assert_string_equal(a->rows[1].action, "force_release");
  assert_string_equal(a->rows[1].actor, "root");
  assert_string_equal(a->rows[1].detail, "stuck CI job");
  assert_int_equal(a->rows[1].lease_id, la.id);
  /* more rows, then the whole log page by page */
  for (int i = 0; i < 4; i++) {
    EXPECT(acquire(bob, &(acq_t){.targets = {N6}}, &lb, msg), DFNET_STATUS_OK, msg);
    EXPECT(release(bob, lb.id, lb.token, false, "done", msg), DFNET_STATUS_OK, msg);
  }
  EXPECT(history(f->vic, NULL, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(msg + strlen(msg) - 7, "entries");
  size_t total = a->count, seen = 0;
  assert_true(total >= 11);
  uint64_t after = 0;
  for (int pages = 0;; pages++) {
    assert_true(pages < 10);
    EXPECT(history(f->vic, NULL, 3, after, page, msg), DFNET_STATUS_OK, msg);
    for (size_t i = 0; i < page->count; i++) {
      assert_int_equal(page->rows[i].seq, a->rows[seen + i].seq);
      assert_true(page->rows[i].seq > after);
      after = page->rows[i].seq;
    }
    seen += page->count;
    if (strstr(msg, "more") == NULL)
      break;
    assert_int_equal(page->count, 3);
  }
  assert_int_equal(seen, total);
  EXPECT(history(f->vic, N6, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(a->count, 8);
  for (size_t i = 0; i < a->count; i++)
    assert_string_equal(a->rows[i].targets, N6);
  EXPECT(history(f->vic, NULL, 10001, 0, a, msg), DFNET_STATUS_INVALID_ARGUMENT, msg);
  free(a);
  free(page);
}

/* ---- persistence ---------------------------------------------------------------------- */

static void test_restart_keeps_leases_and_queue(void **state) {
  fixture_t *f = *state;
  assert_int_equal(th_write_driver(f->drivers, "rng", "fuchsia.BIND_PROTOCOL == 31;", NULL), 0);
  start(f, "30", NULL);
  host_nodes(f);
  testhost_t *alice = peer(f, "alice", "operator"), *bob = peer(f, "bob", "operator");
  testhost_t *carol = peer(f, "carol", "operator");
  dfnet_v1_LeaseInfo la, lx, lb, lc;
  char msg[512], who[64];
  /* N6's lease expires while the manager is down; N5's is held, bob and carol wait */
  EXPECT(acquire(alice, &(acq_t){.targets = {N6}, .ttl_ms = 300}, &lx, msg), DFNET_STATUS_OK, msg);
  EXPECT(acquire(alice, &(acq_t){.targets = {N5}, .ttl_ms = 3600000, .reason = "ci"}, &la, msg),
         DFNET_STATUS_OK, msg);
  th_async_t *pb = acquire_async(bob, &(acq_t){.targets = {N5}, .wait = true});
  assert_true(wait_waiting(f->vic, 1));
  th_async_t *pc = acquire_async(carol, &(acq_t){.targets = {N5}, .wait = true});
  assert_true(wait_waiting(f->vic, 2));
  uint64_t qb = waiter_at(f->vic, 1, NULL), qc = waiter_at(f->vic, 2, NULL);
  assert_int_equal(th_async_wait(pb, 0, NULL), DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(th_async_wait(pc, 0, NULL), DFNET_STATUS_DEADLINE_EXCEEDED);
  while ((uint64_t)time(NULL) * 1000u <= lx.expires_ms + 1000u) /* N6's lease is past */
    usleep(100000);

  /* kill -9 right after the answers, start again on the same state directory */
  kill9(f);
  start(f, "30", NULL);
  host_nodes(f);
  alice = peer(f, "alice", "operator");
  bob = peer(f, "bob", "operator");
  carol = peer(f, "carol", "operator");
  lease_list_t *list = calloc(1, sizeof *list);
  assert_non_null(list);
  EXPECT(list_leases(f->vic, NULL, 0, list, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(msg, "1 leases, 2 waiting");
  assert_int_equal(list->items[0].id, la.id);
  assert_string_equal(list->items[0].holder, "alice");
  assert_int_equal(list->items[0].expires_ms, la.expires_ms);
  assert_int_equal(list->items[0].acquired_ms, la.acquired_ms);
  assert_string_equal(list->items[0].nodes[0], N5);
  assert_int_equal(list->items[1].id, qb);
  assert_int_equal(list->items[1].queue_position, 1);
  assert_string_equal(list->items[1].holder, "bob");
  assert_int_equal(list->items[2].id, qc);
  assert_int_equal(list->items[2].queue_position, 2);
  free(list);
  /* the token still works, and fences others */
  EXPECT(call(alice, N5, la.token, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(bob, N5, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  char want[512];
  held_msg(N5, &la, want, sizeof want);
  assert_string_equal(msg, want);
  /* the lease that expired while the manager was down ended at start-up, audited */
  EXPECT(call(bob, N6, NULL, msg), DFNET_STATUS_OK, msg);
  audit_t *a = calloc(1, sizeof *a);
  assert_non_null(a);
  EXPECT(history(f->vic, N6, 0, 0, a, msg), DFNET_STATUS_OK, msg);
  assert_true(audited(a, "expire", "dfnet-manager", lx.id));
  free(a);
  /* both resume (carol first): the queue's order is kept */
  pc = acquire_async(carol, &(acq_t){.resume_id = qc});
  pb = acquire_async(bob, &(acq_t){.resume_id = qb});
  assert_true(waiter_at(f->vic, 1, who) == qb);
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pb, &lb, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(lb.holder, "bob");
  assert_false(th_async_done(pc));
  EXPECT(release(bob, lb.id, lb.token, false, NULL, msg), DFNET_STATUS_OK, msg);
  EXPECT(wait_answer(pc, &lc, msg), DFNET_STATUS_OK, msg);
  assert_string_equal(lc.holder, "carol");
  drop_all(f);
  assert_int_equal(th_manager_stop(&f->mgr), 0);
}

/* ---- composites ------------------------------------------------------------------------ */

#define PAIR "dev.lab-a.busa.x.pair"
#define DUO_URL "dfnet-boot:///duo#meta/duo.json"

/* AddCompositeNodeSpec "pair": parent 0 the node whose spec.kind is "a" (composite node
 * "left", protocol 60), parent 1 "b" ("right", 61). Returns the answer's code. */
static dfnet_status_t add_pair_spec(testhost_t *admin) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_add_composite_node_spec_tag);
  dfnet_v1_AddCompositeNodeSpec *a = &req->pb.msg.add_composite_node_spec;
  a->has_spec = true;
  snprintf(a->spec.name, sizeof a->spec.name, "pair");
  a->spec.parents_count = 2;
  const char *kinds[] = {"a", "b"};
  const uint32_t protos[] = {60, 61};
  for (size_t i = 0; i < 2; i++) {
    dfnet_v1_ParentSpec *ps = &a->spec.parents[i];
    dfnet_v1_BindRule *br = &ps->bind_rules[0];
    ps->bind_rules_count = 1;
    br->which_key = dfnet_v1_BindRule_str_key_tag;
    snprintf(br->key.str_key, sizeof br->key.str_key, "spec.kind");
    br->condition = dfnet_v1_Condition_ACCEPT;
    br->values_count = 1;
    br->values[0].which_value = dfnet_v1_PropertyValue_str_value_tag;
    snprintf(br->values[0].value.str_value, sizeof br->values[0].value.str_value, "%s", kinds[i]);
    ps->properties_count = 1;
    ps->properties[0].which_key = dfnet_v1_NodeProperty_int_key_tag;
    ps->properties[0].key.int_key = 1; /* fuchsia.BIND_PROTOCOL */
    ps->properties[0].which_value = dfnet_v1_NodeProperty_int_value_tag;
    ps->properties[0].value.int_value = protos[i];
  }
  char msg[512];
  return request(admin, req, NULL, msg);
}

static void composite_drivers(fixture_t *f) {
  assert_int_equal(th_write_driver(f->drivers, "bus", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  assert_int_equal(th_write_driver(f->drivers, "duo",
                                   "composite duo;\n"
                                   "primary node \"left\" { fuchsia.BIND_PROTOCOL == 60; }\n"
                                   "node \"right\" { fuchsia.BIND_PROTOCOL == 61; }\n",
                                   "\"colocate\": \"true\""),
                   0);
}

/* Hosts lab-a and lab-b, each with a bus node (bound to `bus`) and a child offering a
 * service: dev.lab-a.busa.x (spec.kind a) and dev.lab-b.busb.y (b). Returns host b; host a
 * is f->host. */
static testhost_t *composite_hosts(fixture_t *f) {
  f->host = peer(f, "lab-a", "host");
  testhost_t *b = peer(f, "lab-b", "host");
  if (f->vic == NULL)
    f->vic = peer(f, "vic", "viewer");
  th_prop_t p1[] = {"#1=u:1"}, ka[] = {"spec.kind=s:a"}, kb[] = {"spec.kind=s:b"};
  assert_int_equal(th_node_add(f->host, "dev.lab-a", "busa", p1, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(th_node_add(b, "dev.lab-b", "busb", p1, 1, NULL, NULL, NULL), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_true(th_wait_node(f->vic, "dev.lab-a.busa", is_bound, WAIT_MS, info));
  assert_true(th_wait_node(f->vic, "dev.lab-b.busb", is_bound, WAIT_MS, info));
  free(info);
  const char *left[] = {"dfnet.test.Left", NULL}, *echo[] = {"dfnet.test.Echo", NULL};
  assert_int_equal(th_node_add(f->host, "dev.lab-a.busa", "x", ka, 1, left, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(th_node_add(b, "dev.lab-b.busb", "y", kb, 1, echo, NULL, NULL), DFNET_STATUS_OK);
  th_answer_calls(f->host, true);
  th_answer_calls(b, true);
  return b;
}

static void test_composite_lease(void **state) {
  fixture_t *f = *state;
  composite_drivers(f);
  start(f, "30", NULL);
  testhost_t *b = composite_hosts(f);
  testhost_t *admin = peer(f, "ada", "admin"), *alice = peer(f, "alice", "operator");
  testhost_t *olga = peer(f, "olga", "operator");
  assert_int_equal(add_pair_spec(admin), DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_true(th_wait_node(f->vic, PAIR, is_bound, WAIT_MS, info));
  dfnet_v1_LeaseInfo la, lo;
  char msg[512];
  /* a lease on the composite covers its parents, on both hosts; a parent that is a child
   * its parent's driver added to offer a service (x, y: no driver of their own) brings
   * that parent too, whose driver serves what it offers the composite (busa, busb) */
  EXPECT(acquire(alice, &(acq_t){.targets = {PAIR}}, &la, msg), DFNET_STATUS_OK, msg);
  assert_int_equal(la.nodes_count, 5);
  assert_int_equal(la.node_count, 5);
  assert_string_equal(la.nodes[0], PAIR);
  assert_string_equal(la.nodes[1], "dev.lab-a.busa.x");
  assert_string_equal(la.nodes[2], "dev.lab-a.busa");
  assert_string_equal(la.nodes[3], "dev.lab-b.busb.y");
  assert_string_equal(la.nodes[4], "dev.lab-b.busb");
  char want[512];
  held_msg("dev.lab-b.busb", &la, want, sizeof want);
  EXPECT(call(olga, "dev.lab-b.busb", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(call(olga, "dev.lab-b.busb.y", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  EXPECT(call(olga, "dev.lab-a.busa.x", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  EXPECT(call(olga, PAIR, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  /* and they cannot be leased by another */
  EXPECT(acquire(olga, &(acq_t){.targets = {"dev.lab-b.busb"}}, NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "is leased by alice");
  EXPECT(acquire(olga, &(acq_t){.targets = {"dev.lab-b.busb.y"}}, NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "is leased by alice");
  assert_int_equal(th_node_info(f->vic, "dev.lab-b.busb.y", info), DFNET_STATUS_OK);
  assert_int_equal(info->lease_id, la.id);
  EXPECT(call(alice, PAIR, la.token, msg), DFNET_STATUS_OK, msg);
  /* past the fence, the parent itself has no driver of its own (the composite's) */
  EXPECT(call(alice, "dev.lab-b.busb.y", la.token, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, "node dev.lab-b.busb.y has no running driver");
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);

  /* leases on the two parents would both cover the composite: they conflict */
  EXPECT(acquire(alice, &(acq_t){.targets = {"dev.lab-a.busa.x"}}, &la, msg), DFNET_STATUS_OK, msg);
  held_msg(PAIR, &la, want, sizeof want);
  EXPECT(acquire(olga, &(acq_t){.targets = {"dev.lab-b.busb.y"}}, NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(acquire(olga, &(acq_t){.targets = {"dev.lab-b.busb"}}, NULL, msg),
         DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  EXPECT(call(olga, PAIR, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, want);
  /* y itself is not alice's (only its composite child): past the fence, it has no driver */
  EXPECT(call(olga, "dev.lab-b.busb.y", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_string_equal(msg, "node dev.lab-b.busb.y has no running driver");
  EXPECT(release(alice, la.id, la.token, false, NULL, msg), DFNET_STATUS_OK, msg);

  /* a lease on a parent's bus covers the composite below it (through that parent) */
  EXPECT(acquire(olga, &(acq_t){.targets = {"dev.lab-b.busb"}}, &lo, msg), DFNET_STATUS_OK, msg);
  EXPECT(call(alice, PAIR, NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  assert_has(msg, "is leased by olga");
  /* a driver's call is not fenced: the composite's driver calls busb's offer */
  dfnet_status_t code = DFNET_STATUS_UNKNOWN;
  char reply[512];
  assert_int_equal(th_call(f->host, "dev.lab-b.busb", METHOD, PAIR, DUO_URL, "hi", &code, msg,
                           reply, sizeof reply),
                   DFNET_STATUS_OK);
  EXPECT(code, DFNET_STATUS_OK, msg);
  assert_string_equal(reply, PAIR "|" DUO_URL "|hi");
  EXPECT(call(alice, "dev.lab-b.busb", NULL, msg), DFNET_STATUS_FAILED_PRECONDITION, msg);
  (void)b;
  free(info);
}

static bool is_unbound(const dfnet_v1_NodeInfo *i) {
  return i->state == dfnet_v1_NodeState_UNBOUND && i->has_unbound_reason;
}

typedef struct found_driver {
  const char *url;
  bool found, disabled;
} found_driver_t;

static void find_driver(void *user, const dfnet_envelope_t *item) {
  found_driver_t *d = user;
  if (item->pb.which_msg == dfnet_v1_Envelope_driver_info_tag &&
      strcmp(item->pb.msg.driver_info.url, d->url) == 0) {
    d->found = true;
    d->disabled = item->pb.msg.driver_info.disabled;
  }
}

static bool driver_disabled(testhost_t *c, const char *url) {
  found_driver_t d = {.url = url};
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_drivers_tag);
  assert_int_equal(th_list(c, req, find_driver, &d, NULL), DFNET_STATUS_OK);
  free(req);
  assert_true(d.found);
  return d.disabled;
}

static void driver_control(testhost_t *admin, const char *url, dfnet_v1_DriverControl_Action act) {
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_driver_control_tag);
  snprintf(req->pb.msg.driver_control.url, sizeof req->pb.msg.driver_control.url, "%s", url);
  req->pb.msg.driver_control.action = act;
  dfnet_envelope_t *rep = calloc(1, sizeof *rep);
  assert_non_null(rep);
  assert_int_equal(th_request(admin, req, rep, WAIT_MS), DFNET_STATUS_OK);
  assert_int_equal(rep->pb.which_msg, dfnet_v1_Envelope_driver_control_result_tag);
  free(req);
  free(rep);
}

static void find_pair(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_composite_info_tag &&
      strcmp(item->pb.msg.composite_info.name, "pair") == 0)
    *(bool *)user = item->pb.msg.composite_info.from_spec;
}

#define OTHER_URL "dfnet-boot:///other#meta/other.json"

/* The other durable state: a disabled driver and a composite node spec survive a kill -9;
 * enabling survives a clean restart. */
static void test_restart_keeps_flags_and_specs(void **state) {
  fixture_t *f = *state;
  composite_drivers(f);
  assert_int_equal(th_write_driver(f->drivers, "other", "fuchsia.BIND_PROTOCOL == 32;", NULL), 0);
  start(f, "30", NULL);
  composite_hosts(f);
  testhost_t *admin = peer(f, "ada", "admin");
  th_prop_t p32[] = {"#1=u:32"};
  assert_int_equal(th_node_add(f->host, "dev.lab-a", "o0", p32, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  assert_non_null(info);
  assert_true(th_wait_node(f->vic, "dev.lab-a.o0", is_bound, WAIT_MS, info));
  driver_control(admin, OTHER_URL, dfnet_v1_DriverControl_Action_DISABLE);
  assert_int_equal(add_pair_spec(admin), DFNET_STATUS_OK);
  assert_int_equal(add_pair_spec(admin), DFNET_STATUS_ALREADY_EXISTS);
  assert_true(th_wait_node(f->vic, PAIR, is_bound, WAIT_MS, info));

  kill9(f);
  start(f, "30", NULL);
  composite_hosts(f);
  admin = peer(f, "ada", "admin");
  assert_true(driver_disabled(f->vic, OTHER_URL));
  assert_int_equal(th_node_add(f->host, "dev.lab-a", "o0", p32, 1, NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  assert_true(th_wait_node(f->vic, "dev.lab-a.o0", is_unbound, WAIT_MS, info));
  assert_string_equal(info->driver_url, "");
  /* the spec is back: the composite assembles again as its parents come */
  bool from_spec = false;
  dfnet_envelope_t *req = new_env(dfnet_v1_Envelope_list_composites_tag);
  assert_int_equal(th_list(f->vic, req, find_pair, &from_spec, NULL), DFNET_STATUS_OK);
  free(req);
  assert_true(from_spec);
  assert_true(th_wait_node(f->vic, PAIR, is_bound, WAIT_MS, info));
  assert_int_equal(add_pair_spec(admin), DFNET_STATUS_ALREADY_EXISTS);

  /* enabled, then a clean restart: it stays enabled */
  driver_control(admin, OTHER_URL, dfnet_v1_DriverControl_Action_ENABLE);
  drop_all(f);
  assert_int_equal(th_manager_stop(&f->mgr), 0);
  start(f, "30", NULL);
  f->vic = peer(f, "vic", "viewer");
  assert_false(driver_disabled(f->vic, OTHER_URL));
  free(info);
}

/* A store that cannot be opened stops the start-up, naming the file and the cause. */
static void test_unusable_store(void **state) {
  fixture_t *f = *state;
  char path[600];
  assert_int_equal(th_fresh_dir(f->state), 0);
  snprintf(path, sizeof path, "%s/dfnet.db", f->state);
  FILE *db = fopen(path, "w");
  assert_non_null(db);
  for (int i = 0; i < 64; i++)
    fputs("this is not a database, it is a text file ", db);
  fclose(db);
  const char *build = getenv("DFNET_BUILD_DIR");
  char exe[600];
  snprintf(exe, sizeof exe, "%s/manager/dfnet-manager", build ? build : ".");
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    execl(exe, exe, "--listen", "127.0.0.1:0", "--state-dir", f->state, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char out[4096];
  size_t len = 0;
  ssize_t n;
  while (len + 1 < sizeof out && (n = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
    len += (size_t)n;
  out[len] = '\0';
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 1);
  assert_has(out, path);
  assert_has(out, "DATA_LOSS");
  assert_true(strstr(out, "listening on") == NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_acquire_conflict_fencing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_require_lease, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_only_methods, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_only_require_lease, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry_and_renewal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wait_cancel_resume, setup, teardown),
      cmocka_unit_test_setup_teardown(test_force_release_and_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_keeps_leases_and_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_composite_lease, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_keeps_flags_and_specs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unusable_store, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
