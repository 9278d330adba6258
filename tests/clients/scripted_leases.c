/* The lease script of the scripted manager peer (scripted_server.h "The lease script"), on
 * the real transport's service thread. Waiting acquires and delayed grants live in fixed
 * slots (a slot whose timer is pending is not reused), so nothing is left allocated when
 * the server stops with a timer still pending. */
#include "scripted_leases.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASES_MAX 64
#define WAITS_MAX 16
#define DEFAULT_TTL_MS 1800000u
#define BUSY_EXPIRES_MS 1800000000000ull /* 2027-01-15T08:00:00Z */
#define DROP_ENTRY 77u
#define REVOKE_AFTER 2u /* renewals of a "dev.lab-a.revoked" lease that succeed */

typedef struct ss_lease {
  bool used, released;
  unsigned renews;
  dfnet_v1_LeaseInfo info; /* token included */
} ss_lease_t;

/* An acquire waiting in the queue, or one granted later. */
typedef struct ss_wait {
  bool used;          /* waiting */
  bool timer_pending; /* its slot is not reused until the timer fired */
  bool grant;         /* the timer grants it (else it ends the wait: wait_ms) */
  ss_leases_t *l;
  dfnet_session_id_t sid;
  uint64_t id;
  char holder[64];
  dfnet_v1_LeaseAcquire req;
} ss_wait_t;

struct ss_leases {
  dfnet_transport_t *t;
  dfnet_envelope_t *env; /* service thread only */
  pthread_mutex_t mu;    /* stats */
  ss_lease_stats_t stats;
  ss_lease_t leases[LEASES_MAX];
  ss_wait_t waits[WAITS_MAX];
  uint64_t next_id, next_queue_id;
};

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static dfnet_envelope_t *fresh(ss_leases_t *l, uint64_t id, pb_size_t which) {
  dfnet_envelope_init(l->env);
  l->env->pb.id = id;
  l->env->pb.which_msg = which;
  return l->env;
}

/* The session's role and CN (into name). */
static dfnet_v1_Role peer(ss_leases_t *l, dfnet_session_id_t sid, char name[64]) {
  dfnet_session_info_t info;
  char buf[512];
  name[0] = '\0';
  if (dfnet_transport_session_info(l->t, sid, &info, buf, sizeof buf) != DFNET_STATUS_OK)
    return dfnet_v1_Role_ROLE_UNSPECIFIED;
  snprintf(name, 64, "%s", info.peer_name);
  return info.role;
}

static void status(ss_leases_t *l, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void status(ss_leases_t *l, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                   const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dfnet_transport_send_status(l->t, sid, id, code, msg);
}

static ss_lease_t *lease_find(ss_leases_t *l, uint64_t id) {
  for (size_t i = 0; i < LEASES_MAX; i++)
    if (l->leases[i].used && l->leases[i].info.id == id)
      return &l->leases[i];
  return NULL;
}

static bool has_target(const dfnet_v1_LeaseInfo *w, const char *target) {
  for (pb_size_t i = 0; i < w->targets_count; i++)
    if (strcmp(w->targets[i], target) == 0)
      return true;
  return false;
}

/* Does w cover target: a target or node of it, or below one of its nodes? */
static bool covers(const dfnet_v1_LeaseInfo *w, const char *target) {
  if (has_target(w, target))
    return true;
  for (pb_size_t i = 0; i < w->nodes_count; i++) {
    size_t n = strlen(w->nodes[i]);
    if (strncmp(w->nodes[i], target, n) == 0 && (target[n] == '\0' || target[n] == '.'))
      return true;
  }
  return false;
}

static bool asks_for(const dfnet_v1_LeaseAcquire *a, const char *target) {
  for (pb_size_t i = 0; i < a->targets_count; i++)
    if (strcmp(a->targets[i], target) == 0)
      return true;
  return false;
}

/* "a,b,c" of n strings cap bytes apart. */
static void joined(char *out, size_t cap, const char *first, size_t stride, size_t n) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && used < cap; i++)
    used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", first + i * stride);
}

/* Grant req to holder: a new lease, sent as the answer to id. */
static void grant(ss_leases_t *l, dfnet_session_id_t sid, uint64_t id, const char *holder,
                  const dfnet_v1_LeaseAcquire *req) {
  ss_lease_t *slot = NULL;
  for (size_t i = 0; i < LEASES_MAX && slot == NULL; i++)
    if (!l->leases[i].used)
      slot = &l->leases[i];
  if (slot == NULL) {
    status(l, sid, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "too many leases");
    return;
  }
  memset(slot, 0, sizeof *slot);
  slot->used = true;
  dfnet_v1_LeaseInfo *w = &slot->info;
  w->id = l->next_id++;
  snprintf(w->holder, sizeof w->holder, "%s", holder);
  for (pb_size_t i = 0; i < req->targets_count; i++)
    snprintf(w->targets[w->targets_count++], sizeof w->targets[0], "%s", req->targets[i]);
  if (req->match_count > 0 && w->targets_count < 16)
    snprintf(w->targets[w->targets_count++], sizeof w->targets[0], "dev.lab-a.pci.00_05_0");
  _Static_assert(sizeof w->nodes[0] == sizeof w->targets[0], "nodes and targets differ");
  for (pb_size_t i = 0; i < w->targets_count; i++) /* one struct: no snprintf (-Wrestrict) */
    memcpy(w->nodes[w->nodes_count++], w->targets[i], sizeof w->nodes[0]);
  w->node_count = w->nodes_count;
  w->acquired_ms = wall_ms();
  w->ttl_ms = req->no_expiry ? 0 : req->ttl_ms ? req->ttl_ms : DEFAULT_TTL_MS;
  w->expires_ms = w->ttl_ms ? w->acquired_ms + w->ttl_ms : 0;
  w->priority = req->priority;
  snprintf(w->reason, sizeof w->reason, "%s", req->reason);
  int n = snprintf(w->token, sizeof w->token, "%llu.", (unsigned long long)w->id);
  for (int k = 0; k < 64; k++)
    w->token[n + k] = "0123456789abcdef"[(w->id * 7 + (uint64_t)k * 13) % 16];
  w->token[n + 64] = '\0';
  dfnet_envelope_t *e = fresh(l, id, dfnet_v1_Envelope_lease_info_tag);
  e->pb.msg.lease_info = *w;
  dfnet_transport_send(l->t, sid, e, 0);
}

/* A waiting request's place in the queue, sent to id. */
static void queued(ss_leases_t *l, dfnet_session_id_t sid, uint64_t id, uint64_t entry,
                   const char *holder, const dfnet_v1_LeaseAcquire *req, uint32_t position) {
  dfnet_envelope_t *e = fresh(l, id, dfnet_v1_Envelope_lease_info_tag);
  dfnet_v1_LeaseInfo *w = &e->pb.msg.lease_info;
  w->id = entry;
  snprintf(w->holder, sizeof w->holder, "%s", holder);
  for (pb_size_t i = 0; i < req->targets_count; i++)
    snprintf(w->targets[w->targets_count++], sizeof w->targets[0], "%s", req->targets[i]);
  w->acquired_ms = wall_ms();
  w->priority = req->priority;
  w->queue_position = position;
  dfnet_transport_send(l->t, sid, e, 0);
}

/* A wait's timer: grant it, or end it at its wait_ms. */
static void wait_timer(void *user) {
  ss_wait_t *w = user;
  w->timer_pending = false;
  if (!w->used)
    return; /* cancelled meanwhile */
  w->used = false;
  if (w->grant)
    grant(w->l, w->sid, w->id, w->holder, &w->req);
  else
    status(w->l, w->sid, w->id, DFNET_STATUS_DEADLINE_EXCEEDED,
           "waited %u ms in the queue for dev.lab-a.busy", w->req.wait_ms);
}

/* Keep req waiting (with a timer when it is granted later or has a wait_ms). */
static void wait_start(ss_leases_t *l, dfnet_session_id_t sid, uint64_t id, const char *holder,
                       const dfnet_v1_LeaseAcquire *req, bool grant_later) {
  ss_wait_t *w = NULL;
  for (size_t i = 0; i < WAITS_MAX && w == NULL; i++)
    if (!l->waits[i].used && !l->waits[i].timer_pending)
      w = &l->waits[i];
  if (w == NULL) {
    status(l, sid, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "too many waiting");
    return;
  }
  *w = (ss_wait_t){.used = true, .grant = grant_later, .l = l, .sid = sid, .id = id};
  snprintf(w->holder, sizeof w->holder, "%s", holder);
  w->req = *req;
  uint32_t delay = grant_later ? 200u : req->wait_ms;
  if (delay > 0 && dfnet_transport_timer_start(l->t, delay, wait_timer, w, NULL) == DFNET_STATUS_OK)
    w->timer_pending = true;
}

static void on_acquire(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseAcquire *a = &env->pb.msg.lease_acquire;
  uint64_t id = env->pb.id;
  char who[64];
  dfnet_v1_Role role = peer(l, sid, who);
  pthread_mutex_lock(&l->mu);
  ss_lease_stats_t *st = &l->stats;
  st->acquires++;
  joined(st->acq_targets, sizeof st->acq_targets, a->targets[0], sizeof a->targets[0],
         a->targets_count);
  joined(st->acq_match, sizeof st->acq_match, a->match[0], sizeof a->match[0], a->match_count);
  st->acq_ttl_ms = a->ttl_ms;
  st->acq_wait_ms = a->wait_ms;
  st->acq_no_expiry = a->no_expiry;
  st->acq_wait = a->wait;
  st->acq_priority = (int)a->priority;
  snprintf(st->acq_reason, sizeof st->acq_reason, "%s", a->reason);
  st->acq_resume_id = a->resume_id;
  pthread_mutex_unlock(&l->mu);
  bool admin = role == dfnet_v1_Role_ADMIN;
  if (!admin && role != dfnet_v1_Role_OPERATOR)
    status(l, sid, id, DFNET_STATUS_PERMISSION_DENIED, "LeaseAcquire needs role operator");
  else if (asks_for(a, "dev.none"))
    status(l, sid, id, DFNET_STATUS_NOT_FOUND, "no node or class entry 'dev.none'");
  else if (!admin && a->priority == dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH)
    status(l, sid, id, DFNET_STATUS_PERMISSION_DENIED, "priority high needs role admin");
  else if (!admin && a->no_expiry)
    status(l, sid, id, DFNET_STATUS_PERMISSION_DENIED, "a lease without expiry needs role admin");
  else if (asks_for(a, "dev.lab-a.busy") && !a->wait)
    status(l, sid, id, DFNET_STATUS_FAILED_PRECONDITION,
           "dev.lab-a.busy is leased by alice until 2027-01-15T08:00:00Z (lease 7)");
  else if (asks_for(a, "dev.lab-a.busy")) {
    uint64_t entry = l->next_queue_id++;
    queued(l, sid, id, entry, who, a, 2);
    queued(l, sid, id, entry, who, a, 1);
    wait_start(l, sid, id, who, a, false);
  } else if (asks_for(a, "dev.lab-a.queue")) {
    queued(l, sid, id, l->next_queue_id++, who, a, 1);
    wait_start(l, sid, id, who, a, true);
  } else if (asks_for(a, "dev.lab-a.drop") && a->resume_id != DROP_ENTRY) {
    queued(l, sid, id, DROP_ENTRY, who, a, 1);
    dfnet_transport_session_close(l->t, sid, DFNET_STATUS_UNAVAILABLE, "dropped while queued");
  } else {
    grant(l, sid, id, who, a);
  }
}

static void on_renew(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseRenew *r = &env->pb.msg.lease_renew;
  uint64_t id = env->pb.id;
  char who[64];
  dfnet_v1_Role role = peer(l, sid, who);
  pthread_mutex_lock(&l->mu);
  if (l->stats.renews < 32)
    l->stats.renew_ms[l->stats.renews] = mono_ms();
  l->stats.renews++;
  l->stats.renew_id = r->id;
  snprintf(l->stats.renew_token, sizeof l->stats.renew_token, "%s", r->token);
  l->stats.renew_ttl_ms = r->ttl_ms;
  pthread_mutex_unlock(&l->mu);
  ss_lease_t *s = lease_find(l, r->id);
  if (s == NULL || s->released) {
    status(l, sid, id, DFNET_STATUS_NOT_FOUND, "no lease %llu", (unsigned long long)r->id);
    return;
  }
  if (role != dfnet_v1_Role_ADMIN && strcmp(r->token, s->info.token) != 0) {
    status(l, sid, id, DFNET_STATUS_PERMISSION_DENIED, "not the token of lease %llu",
           (unsigned long long)r->id);
    return;
  }
  if (has_target(&s->info, "dev.lab-a.mute"))
    return; /* never answered */
  if (has_target(&s->info, "dev.lab-a.revoked") && s->renews >= REVOKE_AFTER) {
    s->released = true;
    status(l, sid, id, DFNET_STATUS_NOT_FOUND, "lease %llu expired", (unsigned long long)r->id);
    return;
  }
  s->renews++;
  uint32_t ttl = r->ttl_ms ? r->ttl_ms : s->info.ttl_ms;
  s->info.expires_ms = ttl ? wall_ms() + ttl : 0;
  dfnet_envelope_t *e = fresh(l, id, dfnet_v1_Envelope_lease_info_tag);
  e->pb.msg.lease_info = s->info;
  e->pb.msg.lease_info.token[0] = '\0';
  dfnet_transport_send(l->t, sid, e, 0);
}

static void on_release(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_LeaseRelease *r = &env->pb.msg.lease_release;
  uint64_t id = env->pb.id;
  char who[64];
  dfnet_v1_Role role = peer(l, sid, who);
  pthread_mutex_lock(&l->mu);
  l->stats.releases++;
  l->stats.release_id = r->id;
  snprintf(l->stats.release_token, sizeof l->stats.release_token, "%s", r->token);
  l->stats.release_force = r->force;
  snprintf(l->stats.release_reason, sizeof l->stats.release_reason, "%s", r->reason);
  pthread_mutex_unlock(&l->mu);
  ss_lease_t *s = lease_find(l, r->id);
  if (s == NULL || s->released)
    status(l, sid, id, DFNET_STATUS_NOT_FOUND, "no lease %llu", (unsigned long long)r->id);
  else if (r->force && role != dfnet_v1_Role_ADMIN)
    status(l, sid, id, DFNET_STATUS_PERMISSION_DENIED, "a forced release needs role admin");
  else if (r->force && r->reason[0] == '\0')
    status(l, sid, id, DFNET_STATUS_INVALID_ARGUMENT, "a forced release needs a reason");
  else if (!r->force && strcmp(r->token, s->info.token) != 0)
    status(l, sid, id, DFNET_STATUS_PERMISSION_DENIED, "not the token of lease %llu",
           (unsigned long long)r->id);
  else {
    s->released = true;
    status(l, sid, id, DFNET_STATUS_OK, "lease %llu released", (unsigned long long)r->id);
  }
}

static void on_list(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_ListLeases *q = &env->pb.msg.list_leases;
  uint64_t id = env->pb.id;
  pthread_mutex_lock(&l->mu);
  l->stats.lists++;
  snprintf(l->stats.list_target, sizeof l->stats.list_target, "%s", q->target);
  l->stats.list_id = q->id;
  pthread_mutex_unlock(&l->mu);
  unsigned held = 0, waiting = 0;
  for (size_t i = 0; i < LEASES_MAX; i++) {
    const ss_lease_t *s = &l->leases[i];
    if (!s->used || s->released || (q->id != 0 && s->info.id != q->id) ||
        (q->target[0] != '\0' && !covers(&s->info, q->target)))
      continue;
    dfnet_envelope_t *e = fresh(l, id, dfnet_v1_Envelope_lease_info_tag);
    e->pb.msg.lease_info = s->info;
    e->pb.msg.lease_info.token[0] = '\0';
    dfnet_transport_send(l->t, sid, e, 0);
    held++;
  }
  if ((q->id == 0 || q->id == 9) &&
      (q->target[0] == '\0' || strcmp(q->target, "dev.lab-a.busy") == 0)) {
    dfnet_envelope_t *e = fresh(l, id, dfnet_v1_Envelope_lease_info_tag);
    dfnet_v1_LeaseInfo *w = &e->pb.msg.lease_info;
    w->id = 9;
    snprintf(w->holder, sizeof w->holder, "bob");
    w->targets_count = 1;
    snprintf(w->targets[0], sizeof w->targets[0], "dev.lab-a.busy");
    w->acquired_ms = BUSY_EXPIRES_MS - 1700000;
    w->ttl_ms = 3600000;
    w->queue_position = 1;
    snprintf(w->reason, sizeof w->reason, "nightly");
    dfnet_transport_send(l->t, sid, e, 0);
    waiting++;
  }
  status(l, sid, id, DFNET_STATUS_OK, "%u leases, %u waiting", held, waiting);
}

static void on_history(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  static const struct {
    uint64_t seq, time_ms;
    const char *actor, *action;
    uint64_t lease;
    const char *targets, *detail;
  } log[] = {
      {1, BUSY_EXPIRES_MS - 1800000, "alice", "acquire", 7, "dev.lab-a.busy", "ci run 12"},
      {2, BUSY_EXPIRES_MS - 1700000, "bob", "queue", 9, "dev.lab-a.busy", ""},
      {3, BUSY_EXPIRES_MS - 1600000, "alice", "renew", 7, "dev.lab-a.busy", ""},
      {4, BUSY_EXPIRES_MS - 1500000, "dfnet-manager", "expire", 5, "dev.lab-b.pci.00_01_0",
       "expired"},
  };
  const dfnet_v1_LeaseHistory *q = &env->pb.msg.lease_history;
  uint64_t id = env->pb.id;
  pthread_mutex_lock(&l->mu);
  l->stats.histories++;
  snprintf(l->stats.hist_target, sizeof l->stats.hist_target, "%s", q->target);
  l->stats.hist_since_ms = q->since_ms;
  l->stats.hist_after_seq = q->after_seq;
  l->stats.hist_limit = q->limit;
  pthread_mutex_unlock(&l->mu);
  uint32_t limit = q->limit ? q->limit : 1000, sent = 0;
  bool more = false;
  for (size_t i = 0; i < sizeof log / sizeof log[0]; i++) {
    if (log[i].seq <= q->after_seq || log[i].time_ms < q->since_ms ||
        (q->target[0] != '\0' && strcmp(q->target, log[i].targets) != 0))
      continue;
    if (sent == limit) {
      more = true;
      break;
    }
    dfnet_envelope_t *e = fresh(l, id, dfnet_v1_Envelope_lease_audit_entry_tag);
    dfnet_v1_LeaseAuditEntry *a = &e->pb.msg.lease_audit_entry;
    a->seq = log[i].seq;
    a->time_ms = log[i].time_ms;
    snprintf(a->actor, sizeof a->actor, "%s", log[i].actor);
    snprintf(a->action, sizeof a->action, "%s", log[i].action);
    a->lease_id = log[i].lease;
    snprintf(a->targets, sizeof a->targets, "%s", log[i].targets);
    snprintf(a->detail, sizeof a->detail, "%s", log[i].detail);
    dfnet_transport_send(l->t, sid, e, 0);
    sent++;
  }
  status(l, sid, id, DFNET_STATUS_OK, "%u entries%s", sent, more ? ", more" : "");
}

/* A Cancel of a waiting acquire: it leaves the queue. */
static bool on_cancel(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  for (size_t i = 0; i < WAITS_MAX; i++) {
    ss_wait_t *w = &l->waits[i];
    if (w->used && w->sid == sid && w->id == env->pb.id) {
      w->used = false;
      pthread_mutex_lock(&l->mu);
      l->stats.cancels++;
      pthread_mutex_unlock(&l->mu);
      status(l, sid, env->pb.id, DFNET_STATUS_CANCELLED, "left the queue");
      return true;
    }
  }
  return false;
}

bool ss_leases_envelope(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_lease_acquire_tag:
    on_acquire(l, sid, env);
    return true;
  case dfnet_v1_Envelope_lease_renew_tag:
    on_renew(l, sid, env);
    return true;
  case dfnet_v1_Envelope_lease_release_tag:
    on_release(l, sid, env);
    return true;
  case dfnet_v1_Envelope_list_leases_tag:
    on_list(l, sid, env);
    return true;
  case dfnet_v1_Envelope_lease_history_tag:
    on_history(l, sid, env);
    return true;
  case dfnet_v1_Envelope_cancel_tag:
    return on_cancel(l, sid, env);
  default:
    return false;
  }
}

ss_leases_t *ss_leases_new(dfnet_transport_t *t) {
  ss_leases_t *l = calloc(1, sizeof *l);
  if (l == NULL)
    return NULL;
  l->env = malloc(sizeof *l->env);
  if (l->env == NULL) {
    free(l);
    return NULL;
  }
  l->t = t;
  pthread_mutex_init(&l->mu, NULL);
  l->next_id = 42;
  l->next_queue_id = 90;
  /* lease 7: alice's, on dev.lab-a.busy */
  ss_lease_t *s = &l->leases[0];
  s->used = true;
  s->info.id = 7;
  snprintf(s->info.holder, sizeof s->info.holder, "alice");
  s->info.targets_count = s->info.nodes_count = 1;
  snprintf(s->info.targets[0], sizeof s->info.targets[0], "dev.lab-a.busy");
  snprintf(s->info.nodes[0], sizeof s->info.nodes[0], "dev.lab-a.busy");
  s->info.node_count = 3;
  s->info.ttl_ms = DEFAULT_TTL_MS;
  s->info.acquired_ms = BUSY_EXPIRES_MS - DEFAULT_TTL_MS;
  s->info.expires_ms = BUSY_EXPIRES_MS;
  snprintf(s->info.reason, sizeof s->info.reason, "ci run 12");
  snprintf(s->info.token, sizeof s->info.token, "7.%064d", 0);
  return l;
}

void ss_leases_free(ss_leases_t *l) {
  if (l == NULL)
    return;
  pthread_mutex_destroy(&l->mu);
  free(l->env);
  free(l);
}

void ss_leases_stats(ss_leases_t *l, ss_lease_stats_t *out) {
  pthread_mutex_lock(&l->mu);
  *out = l->stats;
  pthread_mutex_unlock(&l->mu);
}
