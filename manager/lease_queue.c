/* dfnet-manager: the lease wait queue (docs/architecture.md "Leases", "The queue"; lease.h
 * "lease_queue.c").
 *
 * A LeaseAcquire with `wait` that cannot be granted at once waits here, in queue order:
 * priority band (high, normal, low), then arrival (the store's durable seq). When nodes may
 * have come free the queue is tried in that order, and a request is granted when its targets
 * resolve and are free and no request before it that still waits wants one of its nodes:
 * nobody overtakes a request for the same nodes, and a request for other nodes is not held
 * up. A waiting request with a session is told its place (an interim LeaseInfo with the
 * entry's id and queue_position) when it is queued or resumed and whenever its place
 * changes, so that its client can show it and take it again with resume_id after a dropped
 * session. A request with an unresolvable target keeps waiting (its node may come back); the
 * queue is tried every LEASE_QUEUE_RETRY_MS while requests wait, for nodes that were bound
 * or added meanwhile. A request leaves at its wait_ms (DEADLINE_EXCEEDED), when its client
 * cancels it (CANCELLED), or, once its session ended, after the session grace (the host
 * grace, cfg.host_grace_ms) unless its principal takes its place again with resume_id. A
 * restarted manager loads the queue detached: each request waits the grace for its
 * principal. Each entry is in the store from its queueing to its leaving (audited "queue",
 * "dequeue").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "lib/log.h"
#include "manager/lease.h"

struct lease_waiter {
  lease_waiter_t *next; /* queue order (utlist LL: ls->queue) */
  uint64_t id, seq;
  char principal[STORE_PRINCIPAL_MAX + 1];
  dfnet_v1_Role role;
  store_priority_t priority;
  size_t target_count;
  store_target_kind_t kinds[STORE_TARGETS_MAX];
  char *targets[STORE_TARGETS_MAX];  /* as asked, selectors included; owned */
  uint64_t ttl_ms;                   /* the lease's when granted; 0: no expiry */
  uint64_t enqueued_ms, deadline_ms; /* wall clock; deadline 0: while its session lives */
  dfnet_session_id_t session;        /* the LeaseAcquire waiting for it; 0: detached */
  uint64_t request_id;
  uint64_t grace_end_ms; /* detached: when it leaves */
  uint32_t told;         /* the place its request was last told (0: none yet) */
  char reason[pb_membersize(dfnet_v1_LeaseAcquire, reason)];
};

static const char *priority_name(store_priority_t p) {
  return p == STORE_PRIORITY_HIGH ? "high" : p == STORE_PRIORITY_LOW ? "low" : "normal";
}

static void waiter_free(lease_waiter_t *w) {
  if (w == NULL)
    return;
  for (size_t i = 0; i < w->target_count; i++)
    free(w->targets[i]);
  free(w);
}

/* A waiter with copies of e's strings, or NULL without memory. */
static lease_waiter_t *waiter_new(const store_queue_entry_t *e, const char *reason) {
  lease_waiter_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->id = e->id;
  w->seq = e->seq;
  topology__fmt(w->principal, sizeof w->principal, "%s", e->principal);
  w->role = e->role;
  w->priority = e->priority;
  w->ttl_ms = e->ttl_ms;
  w->enqueued_ms = e->enqueued_ms;
  w->deadline_ms = e->deadline_ms;
  topology__fmt(w->reason, sizeof w->reason, "%s", reason ? reason : "");
  for (size_t i = 0; i < e->target_count && i < STORE_TARGETS_MAX; i++) {
    w->kinds[i] = e->targets[i].kind;
    w->target_count++;
    if ((w->targets[i] = strdup(e->targets[i].text)) == NULL) {
      waiter_free(w);
      return NULL;
    }
  }
  return w;
}

/* Does a come before b: a higher band, or the same band and earlier? */
static bool comes_before(const lease_waiter_t *a, const lease_waiter_t *b) {
  return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

/* Queue order as LL_INSERT_INORDER wants it: < 0 when a comes before b. w goes before the
 * first waiter that does not come before it (an equal one included). */
static int waiter_cmp(const lease_waiter_t *a, const lease_waiter_t *b) {
  return comes_before(a, b) ? -1 : comes_before(b, a) ? 1 : 0;
}

static void insert(mgr_leases_t *ls, lease_waiter_t *w) {
  LL_INSERT_INORDER(ls->queue, w, waiter_cmp);
  ls->queue_len++;
}

/* w is on ls->queue. */
static void unlink_waiter(mgr_leases_t *ls, lease_waiter_t *w) {
  LL_DELETE(ls->queue, w);
  ls->queue_len--;
}

/* w as a request (strings borrowed from w). */
static void waiter_ask(const lease_waiter_t *w, lease_ask_t *a) {
  *a = (lease_ask_t){.principal = w->principal,
                     .role = w->role,
                     .priority = w->priority,
                     .target_count = w->target_count,
                     .ttl_ms = w->ttl_ms,
                     .reason = w->reason};
  for (size_t i = 0; i < w->target_count; i++)
    a->targets[i] = (store_target_t){w->kinds[i], w->targets[i]};
}

/* The nodes w wants now, as well as can be told (best effort). */
static void waiter_wants(mgr_t *m, const lease_waiter_t *w, lease_plan_t *p) {
  lease_ask_t a;
  waiter_ask(w, &a);
  if (lease__resolve(m, &a, true, p, NULL, 0) != DFNET_STATUS_OK) /* best effort: never */
    p->target_count = p->root_count = p->node_count = 0;
}

static void targets_text(char *buf, size_t size, const lease_waiter_t *w) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < w->target_count && len + 1 < size; i++) {
    int n = snprintf(buf + len, size - len, "%s%s", i ? " " : "", w->targets[i]);
    len += n > 0 && (size_t)n < size - len ? (size_t)n : size - len - 1;
  }
}

/* w at queue position `position` as a LeaseInfo into *info (cleared first). */
static void waiter_info(const lease_waiter_t *w, uint32_t position, dfnet_v1_LeaseInfo *info) {
  memset(info, 0, sizeof *info);
  info->id = w->id;
  topology__fmt(info->holder, sizeof info->holder, "%s", w->principal);
  for (size_t i = 0; i < w->target_count && i < pb_arraysize(dfnet_v1_LeaseInfo, targets); i++)
    topology__fmt(info->targets[info->targets_count++], sizeof info->targets[0], "%s",
                  w->targets[i]);
  info->acquired_ms = w->enqueued_ms;
  info->expires_ms = w->deadline_ms;
  info->ttl_ms = w->ttl_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)w->ttl_ms;
  info->priority = w->priority == STORE_PRIORITY_HIGH ? dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH
                   : w->priority == STORE_PRIORITY_LOW
                       ? dfnet_v1_LeasePriority_LEASE_PRIORITY_LOW
                       : dfnet_v1_LeasePriority_LEASE_PRIORITY_NORMAL;
  info->queue_position = position;
  topology__fmt(info->reason, sizeof info->reason, "%s", w->reason);
}

/* Tell each waiting request with a session whose place changed (or that was never told)
 * where it is now: a LeaseInfo with its queue_position, an interim answer to its
 * LeaseAcquire (the last one has queue_position 0, or is a Status). Call after the queue
 * changed. */
static void tell_positions(mgr_t *m) {
  uint32_t position = 0;
  lease_waiter_t *w;
  LL_FOREACH(m->leases->queue, w) {
    position++;
    if (w->session == 0 || w->told == position)
      continue;
    dfnet_envelope_t *e = mgr__env(m);
    e->pb.id = w->request_id;
    e->pb.which_msg = dfnet_v1_Envelope_lease_info_tag;
    waiter_info(w, position, &e->pb.msg.lease_info);
    if (dfnet_transport_send(m->transport, w->session, e, 0) == DFNET_STATUS_OK)
      w->told = position;
  }
}

/* w leaves the queue: its removal and "dequeue" row (by actor, detail) go to the store (a
 * failure is logged: the next start-up drops it after the grace), its request is answered
 * `code` with `message` when attached (code OK: not answered), and it is freed. */
static void waiter_leave(mgr_t *m, lease_waiter_t *w, const char *actor, const char *detail,
                         dfnet_status_t code, const char *message) {
  char err[600] = "";
  store_target_t targets[STORE_TARGETS_MAX];
  for (size_t i = 0; i < w->target_count; i++)
    targets[i] = (store_target_t){w->kinds[i], w->targets[i]};
  dfnet_status_t st = store__begin(m->store, err, sizeof err);
  if (st == DFNET_STATUS_OK)
    st = store__queue_delete(m->store, w->id, err, sizeof err);
  if (st == DFNET_STATUS_OK)
    st = lease__audit(m, STORE_AUDIT_DEQUEUE, actor, 0, targets, w->target_count, NULL, 0, detail,
                      err, sizeof err);
  if (st == DFNET_STATUS_OK)
    st = store__commit(m->store, err, sizeof err);
  else
    store__rollback(m->store);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGE("lease", w->principal, "request %" PRIu64 " left the queue unrecorded: %s", w->id,
               err);
  DFNET_LOGI("lease", w->principal, "request %" PRIu64 ": %s", w->id, detail);
  unlink_waiter(m->leases, w);
  if (w->session != 0 && code != DFNET_STATUS_OK)
    sessions__reply_status(m, w->session, w->request_id, code, "%s", message);
  waiter_free(w);
}

dfnet_status_t lease_queue__enqueue(mgr_t *m, const mgr_session_t *s, uint64_t id,
                                    const lease_ask_t *a, uint32_t wait_ms, char *err,
                                    size_t err_size) {
  mgr_leases_t *ls = m->leases;
  size_t mine = 0;
  const lease_waiter_t *q;
  LL_FOREACH(ls->queue, q) {
    mine += q->session == s->id;
  }
  if (mine >= LEASE_WAITERS_PER_SESSION_MAX) {
    topology__fmt(err, err_size, "%u lease requests wait on this session: the limit",
                  LEASE_WAITERS_PER_SESSION_MAX);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  uint64_t now = mgr__wall_ms();
  store_queue_entry_t e = {.principal = a->principal,
                           .role = a->role,
                           .priority = a->priority,
                           .targets = a->targets,
                           .target_count = a->target_count,
                           .ttl_ms = a->ttl_ms,
                           .enqueued_ms = now,
                           .deadline_ms = wait_ms ? now + wait_ms : 0};
  lease_waiter_t *w = waiter_new(&e, a->reason);
  if (w == NULL) {
    topology__fmt(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  dfnet_status_t st = store__begin(m->store, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__next(m->store, STORE_ID_QUEUE, &e.id, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__next(m->store, STORE_ID_QUEUE_SEQ, &e.seq, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__queue_put(m->store, &e, err, err_size);
  char detail[STORE_DETAIL_MAX + 1];
  topology__fmt(detail, sizeof detail, "request %" PRIu64 " waits (priority %s)%s%s", e.id,
                priority_name(a->priority), a->reason && a->reason[0] ? ": " : "",
                a->reason ? a->reason : "");
  if (st == DFNET_STATUS_OK)
    st = lease__audit(m, STORE_AUDIT_QUEUE, a->principal, 0, a->targets, a->target_count, NULL, 0,
                      detail, err, err_size);
  if (st == DFNET_STATUS_OK)
    st = store__commit(m->store, err, err_size);
  else
    store__rollback(m->store);
  if (st != DFNET_STATUS_OK) {
    waiter_free(w);
    return st;
  }
  w->id = e.id;
  w->seq = e.seq;
  w->session = s->id;
  w->request_id = id;
  insert(ls, w);
  char subject[24], text[700], what[600];
  targets_text(what, sizeof what, w);
  snprintf(subject, sizeof subject, "%" PRIu64, w->id);
  topology__fmt(text, sizeof text, "%s: %s", w->principal, what);
  DFNET_LOGI("lease", w->principal, "%s", detail);
  streams__event(m, dfnet_v1_WatchEvent_Kind_LEASE_QUEUED, subject, text, DFNET_STATUS_OK);
  tell_positions(m);
  lease__arm_timer(m);
  return DFNET_STATUS_OK;
}

bool lease_queue__blocker(mgr_t *m, store_priority_t priority, const lease_plan_t *p,
                          uint64_t *waiter_id, const char **principal, const char **node) {
  lease_plan_t *wants = malloc(sizeof *wants);
  bool found = false;
  const lease_waiter_t *w;
  if (wants != NULL) {
    LL_FOREACH(m->leases->queue, w) {
      if (w->priority < priority)
        break; /* a lower band: it comes after */
      waiter_wants(m, w, wants);
      if ((found = lease__plans_overlap(m, p, wants, node))) {
        if (waiter_id != NULL)
          *waiter_id = w->id;
        if (principal != NULL)
          *principal = w->principal;
        break;
      }
    }
  }
  free(wants);
  return found;
}

/* Grant w its plan p and answer its request; false when the store refused (w stays). */
static bool grant(mgr_t *m, lease_waiter_t *w, const lease_ask_t *a, const lease_plan_t *p) {
  char token[LEASE_TOKEN_SIZE], err[600];
  mgr_lease_t *l = NULL;
  dfnet_status_t st = lease__grant(m, a, p, w->id, &l, token, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE("lease", w->principal, "request %" PRIu64 " not granted: %s", w->id, err);
    return false;
  }
  dfnet_session_id_t sid = w->session;
  uint64_t rid = w->request_id, lid = l->id;
  uint64_t now = mgr__wall_ms();
  metrics__lease_waited(m, now > w->enqueued_ms ? now - w->enqueued_ms : 0);
  unlink_waiter(m->leases, w);
  waiter_free(w);
  st = lease__send_info(m, sid, rid, l, token);
  memset(token, 0, sizeof token);
  if (st == DFNET_STATUS_NOT_FOUND) { /* nobody has the token: give the nodes back */
    char why[64];
    snprintf(why, sizeof why, "lease %" PRIu64 " released", lid);
    if (lease__end(m, l, STORE_AUDIT_RELEASE, LEASE_ACTOR_MANAGER,
                   "its requester went away before the answer", why, err,
                   sizeof err) != DFNET_STATUS_OK)
      DFNET_LOGE("lease", why, "not recorded (it expires in time): %s", err);
  }
  return true;
}

/* What the requests tried so far still want, plan after plan: each plan's nodes only (a few
 * pointers, not a whole lease_plan_t per request). Borrowed monikers, as a plan's. */
typedef struct wanted_plan {
  size_t first; /* its first node in wanted_t.nodes */
  size_t root_count, node_count;
} wanted_plan_t;

typedef struct wanted {
  const char **nodes; /* every plan's nodes, one plan after the other */
  size_t node_count, node_cap;
  wanted_plan_t *plans;
  size_t count;
} wanted_t;

/* Keep plan p in w (room for its entry is there). False without memory. */
static bool wanted_keep(wanted_t *w, const lease_plan_t *p) {
  if (w->node_count + p->node_count > w->node_cap) {
    size_t cap = w->node_cap * 2 + p->node_count + 16;
    const char **nodes = realloc(w->nodes, cap * sizeof *nodes);
    if (nodes == NULL)
      return false;
    w->nodes = nodes;
    w->node_cap = cap;
  }
  memcpy(w->nodes + w->node_count, p->nodes, p->node_count * sizeof *p->nodes);
  w->plans[w->count].first = w->node_count;
  w->plans[w->count].root_count = p->root_count;
  w->plans[w->count].node_count = p->node_count;
  w->node_count += p->node_count;
  w->count++;
  return true;
}

/* Does plan p want a node that a plan kept in w wants? view: room for one plan. */
static bool wanted_overlaps(mgr_t *m, const wanted_t *w, const lease_plan_t *p,
                            lease_plan_t *view) {
  for (size_t i = 0; i < w->count; i++) {
    view->root_count = w->plans[i].root_count;
    view->node_count = w->plans[i].node_count;
    memcpy(view->nodes, w->nodes + w->plans[i].first, view->node_count * sizeof *view->nodes);
    if (lease__plans_overlap(m, p, view, NULL))
      return true;
  }
  return false;
}

void lease_queue__try(mgr_t *m) {
  mgr_leases_t *ls = m->leases;
  if (ls == NULL || ls->queue == NULL || m->stopping)
    return;
  /* what the requests before the one tried still want */
  wanted_t wanted = {.plans = malloc(ls->queue_len * sizeof *wanted.plans)};
  if (wanted.plans == NULL)
    return;
  lease_plan_t plan, view;
  bool granted_any = false;
  lease_waiter_t *w, *next;
  LL_FOREACH_SAFE(ls->queue, w, next) {
    lease_ask_t a;
    waiter_ask(w, &a);
    bool resolved =
        w->session != 0 && lease__resolve(m, &a, false, &plan, NULL, 0) == DFNET_STATUS_OK;
    bool free_now =
        resolved && !lease__conflicts(m, &plan) && !wanted_overlaps(m, &wanted, &plan, &view);
    if (free_now && grant(m, w, &a, &plan)) {
      granted_any = true;
      continue;
    }
    if (!resolved) /* resolved, the plan is what it wants: best effort gives the same */
      waiter_wants(m, w, &plan);
    if (!wanted_keep(&wanted, &plan))
      break; /* out of memory: the next try carries on */
  }
  free(wanted.nodes);
  free(wanted.plans);
  if (granted_any) {
    tell_positions(m);
    lease__arm_timer(m);
  }
}

bool lease_queue__cancel(mgr_t *m, const mgr_session_t *s, uint64_t id) {
  if (m->leases == NULL)
    return false;
  lease_waiter_t *w;
  LL_FOREACH(m->leases->queue, w) {
    if (w->session != s->id || w->request_id != id)
      continue;
    char detail[96], message[96];
    snprintf(detail, sizeof detail, "request %" PRIu64 " cancelled by its client", w->id);
    snprintf(message, sizeof message, "lease request %" PRIu64 " cancelled", w->id);
    waiter_leave(m, w, s->name, detail, DFNET_STATUS_CANCELLED, message);
    lease_queue__try(m);
    tell_positions(m);
    lease__arm_timer(m);
    return true;
  }
  return false;
}

void lease_queue__session_closed(mgr_t *m, dfnet_session_id_t sid) {
  if (m->leases == NULL || m->stopping)
    return;
  uint64_t grace_end = mgr__wall_ms() + m->cfg.host_grace_ms;
  bool any = false;
  lease_waiter_t *w;
  LL_FOREACH(m->leases->queue, w) {
    if (w->session != sid)
      continue;
    w->session = 0;
    w->request_id = 0;
    w->grace_end_ms = grace_end;
    any = true;
    DFNET_LOGI("lease", w->principal,
               "request %" PRIu64 " keeps its place for %u ms: its session ended", w->id,
               m->cfg.host_grace_ms);
  }
  if (any)
    lease__arm_timer(m);
}

dfnet_status_t lease_queue__resume(mgr_t *m, const mgr_session_t *s, uint64_t id, uint64_t queue_id,
                                   char *err, size_t err_size) {
  lease_waiter_t *w;
  LL_SEARCH_SCALAR(m->leases->queue, w, id, queue_id);
  if (w == NULL) {
    topology__fmt(err, err_size,
                  "no waiting request %" PRIu64 " (granted, timed out, or its grace ran out)",
                  queue_id);
    return DFNET_STATUS_NOT_FOUND;
  }
  if (strcmp(w->principal, s->name) != 0) {
    topology__fmt(err, err_size, "waiting request %" PRIu64 " is %s's", queue_id, w->principal);
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  if (w->session != 0 && (w->session != s->id || w->request_id != id))
    sessions__reply_status(m, w->session, w->request_id, DFNET_STATUS_CANCELLED,
                           "lease request %" PRIu64 " resumed by another request", w->id);
  w->session = s->id;
  w->request_id = id;
  w->grace_end_ms = 0;
  w->told = 0; /* the new request is told its place, unless granted at once */
  DFNET_LOGI("lease", w->principal, "request %" PRIu64 " resumed", w->id);
  lease_queue__try(m);
  tell_positions(m);
  lease__arm_timer(m);
  return DFNET_STATUS_OK;
}

uint64_t lease_queue__next_due(mgr_t *m, uint64_t now) {
  uint64_t due = UINT64_MAX;
  const lease_waiter_t *w;
  LL_FOREACH(m->leases->queue, w) {
    if (w->deadline_ms != 0 && w->deadline_ms < due)
      due = w->deadline_ms;
    if (w->session == 0 && w->grace_end_ms < due)
      due = w->grace_end_ms;
    if (w->session != 0 && now + LEASE_QUEUE_RETRY_MS < due)
      due = now + LEASE_QUEUE_RETRY_MS;
  }
  return due;
}

/* Why w still waits, for its DEADLINE_EXCEEDED: who holds what it wants. */
static void still_taken(mgr_t *m, const lease_waiter_t *w, char *buf, size_t size) {
  lease_plan_t *p = malloc(sizeof *p);
  lease_ask_t a;
  waiter_ask(w, &a);
  const char *node = NULL;
  const mgr_lease_t *l = NULL;
  if (p != NULL && lease__resolve(m, &a, true, p, NULL, 0) == DFNET_STATUS_OK)
    l = lease__conflict(m, p, &node);
  char held[700] = "its targets are not free";
  if (l != NULL)
    lease__fmt_held(held, sizeof held, node, l);
  topology__fmt(buf, size, "waited %" PRIu64 " ms for lease request %" PRIu64 ": %s",
                w->deadline_ms - w->enqueued_ms, w->id, held);
  free(p);
}

void lease_queue__expire(mgr_t *m, uint64_t now) {
  size_t before = m->leases->queue_len;
  lease_waiter_t *w, *next;
  LL_FOREACH_SAFE(m->leases->queue, w, next) {
    char detail[128], message[900];
    if (w->deadline_ms != 0 && w->deadline_ms <= now) {
      still_taken(m, w, message, sizeof message);
      snprintf(detail, sizeof detail, "request %" PRIu64 " timed out after %" PRIu64 " ms", w->id,
               w->deadline_ms - w->enqueued_ms);
      waiter_leave(m, w, LEASE_ACTOR_MANAGER, detail, DFNET_STATUS_DEADLINE_EXCEEDED, message);
    } else if (w->session == 0 && w->grace_end_ms <= now) {
      snprintf(detail, sizeof detail,
               "request %" PRIu64 ": its client did not come back within %u ms", w->id,
               m->cfg.host_grace_ms);
      waiter_leave(m, w, LEASE_ACTOR_MANAGER, detail, DFNET_STATUS_OK, NULL);
    }
  }
  if (m->leases->queue_len != before)
    tell_positions(m);
}

typedef struct load_ctx {
  mgr_t *m;
  uint64_t grace_end;
} load_ctx_t;

static dfnet_status_t load_one(void *arg, const store_queue_entry_t *e) {
  load_ctx_t *c = arg;
  lease_waiter_t *w = waiter_new(e, NULL);
  if (w == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  w->grace_end_ms = c->grace_end;
  insert(c->m->leases, w);
  return DFNET_STATUS_OK;
}

dfnet_status_t lease_queue__load(mgr_t *m, char *err, size_t err_size) {
  load_ctx_t c = {m, mgr__wall_ms() + m->cfg.host_grace_ms};
  dfnet_status_t st = store__queue_load(m->store, load_one, &c, err, err_size);
  if (st == DFNET_STATUS_RESOURCE_EXHAUSTED && err != NULL && err[0] == '\0')
    topology__fmt(err, err_size, "out of memory loading the lease queue");
  if (st == DFNET_STATUS_OK && m->leases->queue_len > 0)
    DFNET_LOGI("lease", NULL, "%zu waiting request(s) loaded: each waits %u ms for its client",
               m->leases->queue_len, m->cfg.host_grace_ms);
  return st;
}

void lease_queue__destroy(mgr_t *m) {
  mgr_leases_t *ls = m->leases;
  lease_waiter_t *w, *next;
  LL_FOREACH_SAFE(ls->queue, w, next) {
    waiter_free(w);
  }
  ls->queue = NULL;
  ls->queue_len = 0;
}

/* Does w want a node overlapping `node` (either below the other)? */
static bool waiter_concerns(mgr_t *m, const lease_waiter_t *w, const char *node) {
  lease_plan_t *p = malloc(sizeof *p);
  bool hit = false;
  if (p != NULL) {
    waiter_wants(m, w, p);
    for (size_t i = 0; i < p->node_count && !hit; i++)
      hit = lease__descends(m, node, p->nodes[i]) || lease__descends(m, p->nodes[i], node);
  }
  free(p);
  return hit;
}

size_t lease_queue__each(mgr_t *m, uint64_t id, const char *node,
                         bool (*fn)(void *arg, const dfnet_v1_LeaseInfo *info), void *arg) {
  dfnet_v1_LeaseInfo *info = malloc(sizeof *info);
  size_t given = 0;
  uint32_t position = 0;
  const lease_waiter_t *w;
  if (info != NULL) {
    LL_FOREACH(m->leases->queue, w) {
      position++;
      if ((id != 0 && w->id != id) || (node != NULL && !waiter_concerns(m, w, node)))
        continue;
      waiter_info(w, position, info);
      given++;
      if (!fn(arg, info))
        break;
    }
  }
  free(info);
  return given;
}
