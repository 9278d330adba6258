/* libdfnet-client: leases (docs/architecture.md "Leases"; proto/dfnet/v1/lease.proto) —
 * a lease as the library gives it, renew, release, list, show and the audit log; the
 * client's lease token, which call.c puts in every Call (include/dfnet/client.h "Leases").
 * Acquiring one (waiting in the manager's queue, cancellable) is lease_acquire.c's; the
 * renewals of the leases acquired through this client are lease_renewal.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/lib/client_internal.h"

#define TOKEN_CAP sizeof(((dfnet_client_t *)0)->lease_token)
#define HISTORY_LIMIT_MAX 10000u

_Static_assert(sizeof(((dfnet_client_t *)0)->lease_token) ==
                   sizeof(((dfnet_v1_Call *)0)->lease_token),
               "the client's lease token is a Call.lease_token");
_Static_assert(DFNET_CLIENT_LEASE_LOW == (int)dfnet_v1_LeasePriority_LEASE_PRIORITY_LOW &&
                   DFNET_CLIENT_LEASE_HIGH == (int)dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH,
               "priorities are the wire's");

/* ---- results ------------------------------------------------------------------------ */

void dfnet_client_lease_free(dfnet_client_lease_t *lease) {
  if (lease == NULL)
    return;
  client_lease_holder_t *h = (client_lease_holder_t *)lease; /* pub is the first member */
  dfnet_arena_free(&h->arena);
  free(h);
}

void dfnet_client_lease_list_free(dfnet_client_lease_list_t *list) { client__list_free(list); }

void dfnet_client_lease_audit_list_free(dfnet_client_lease_audit_list_t *list) {
  client__list_free(list);
}

const char *dfnet_client_lease_priority_str(dfnet_client_lease_priority_t p) {
  switch (p) {
  case DFNET_CLIENT_LEASE_LOW:
    return "low";
  case DFNET_CLIENT_LEASE_HIGH:
    return "high";
  default:
    return "normal";
  }
}

/* A LeaseInfo into *l, its strings in the arena. false = out of memory. */
static bool lease_copy(dfnet_arena_t *a, const dfnet_v1_LeaseInfo *w, dfnet_client_lease_t *l) {
  bool ok = true;
  l->id = w->id;
  ok = (l->holder = client__arena_strdup(a, w->holder)) != NULL && ok;
  l->target_count = w->targets_count;
  l->targets = client__arena_strv(a, w->targets[0], sizeof w->targets[0], w->targets_count, &ok);
  l->node_count = w->node_count;
  l->node_list_count = w->nodes_count;
  l->nodes = client__arena_strv(a, w->nodes[0], sizeof w->nodes[0], w->nodes_count, &ok);
  l->acquired_ms = w->acquired_ms;
  l->expires_ms = w->expires_ms;
  l->ttl_ms = w->ttl_ms;
  l->priority = (dfnet_client_lease_priority_t)w->priority;
  ok = (l->token = client__arena_strdup(a, w->token)) != NULL && ok;
  l->queue_position = w->queue_position;
  ok = (l->reason = client__arena_strdup(a, w->reason)) != NULL && ok;
  return ok;
}

client_lease_holder_t *client__lease_holder_new(const dfnet_v1_LeaseInfo *w) {
  client_lease_holder_t *h = calloc(1, sizeof *h);
  if (h != NULL && !lease_copy(&h->arena, w, &h->pub)) {
    dfnet_client_lease_free(&h->pub);
    h = NULL;
  }
  return h;
}

/* ---- tokens ------------------------------------------------------------------------- */

uint64_t client__lease_token_id(const char *token) {
  uint64_t id = 0;
  const char *p = token;
  if (p == NULL || *p < '1' || *p > '9')
    return 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (id > (UINT64_MAX - 9) / 10)
      return 0;
    id = id * 10 + (uint64_t)(*p - '0');
  }
  return *p == '.' ? id : 0;
}

dfnet_status_t client__lease_init(dfnet_client_t *c, dfnet_client_error_t *err) {
  const char *token = getenv("DFNET_LEASE");
  return client__copy_field(c->lease_token, TOKEN_CAP, token, "DFNET_LEASE", err);
}

dfnet_status_t dfnet_client_set_lease_token(dfnet_client_t *c, const char *token) {
  if (c == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  char copy[TOKEN_CAP];
  if (client__copy_field(copy, sizeof copy, token, "lease token", NULL) != DFNET_STATUS_OK)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  memcpy(c->lease_token, copy, sizeof copy);
  pthread_mutex_unlock(&c->mu);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_lease_token(dfnet_client_t *c, char *buf, size_t cap) {
  if (c == NULL || buf == NULL || cap == 0)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  size_t n = strlen(c->lease_token);
  if (n < cap)
    memcpy(buf, c->lease_token, n + 1);
  else
    buf[0] = '\0';
  pthread_mutex_unlock(&c->mu);
  return n < cap ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

/* ---- renew, release ----------------------------------------------------------------- */

/* The lease and token a renew or release means: *id (0: the client's lease token's lease)
 * and token (NULL: the one the library knows) into out. INVALID_ARGUMENT with err set. */
static dfnet_status_t lease_named(dfnet_client_t *c, uint64_t *id, const char *token,
                                  char out[TOKEN_CAP], dfnet_client_error_t *err) {
  out[0] = '\0';
  if (token != NULL &&
      client__copy_field(out, TOKEN_CAP, token, "the lease token", err) != DFNET_STATUS_OK)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  if (*id == 0)
    *id = client__lease_token_id(token != NULL ? token : c->lease_token);
  bool known = token == NULL && *id != 0 && client__lease_record_token_locked(c, *id, out);
  if (token == NULL && !known && *id != 0 && client__lease_token_id(c->lease_token) == *id)
    memcpy(out, c->lease_token, TOKEN_CAP);
  pthread_mutex_unlock(&c->mu);
  if (*id == 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "no lease given, and the client has no lease token (DFNET_LEASE)");
  return DFNET_STATUS_OK;
}

/* client__query's on_item for an answer of one lease: the first LeaseInfo is kept. */
static dfnet_status_t lease_one_item(void *ctx, const dfnet_envelope_t *env) {
  client_lease_holder_t **h = ctx;
  if (env->pb.which_msg != dfnet_v1_Envelope_lease_info_tag)
    return DFNET_STATUS_INTERNAL;
  if (*h != NULL)
    return DFNET_STATUS_OK;
  *h = client__lease_holder_new(&env->pb.msg.lease_info);
  return *h != NULL ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t dfnet_client_lease_renew(dfnet_client_t *c, uint64_t id, const char *token,
                                        uint32_t ttl_ms, dfnet_client_lease_t **out,
                                        dfnet_client_error_t *err) {
  client__error_ok(err);
  if (out != NULL)
    *out = NULL;
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client is NULL");
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_lease_renew_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_LeaseRenew *m = &req->pb.msg.lease_renew;
  dfnet_status_t st = lease_named(c, &id, token, m->token, err);
  m->id = id;
  m->ttl_ms = ttl_ms;
  client_lease_holder_t *h = NULL;
  if (st == DFNET_STATUS_OK)
    st = client__query(c, req, false, 0, lease_one_item, &h, err);
  free(req);
  if (st == DFNET_STATUS_OK && h == NULL)
    st = client__fail(err, DFNET_STATUS_INTERNAL, "the manager's answer has no lease");
  if (st == DFNET_STATUS_OK)
    client__lease_record_renewed(c, id, h->pub.expires_ms, h->pub.ttl_ms);
  if (st == DFNET_STATUS_OK && out != NULL)
    *out = &h->pub;
  else if (h != NULL)
    dfnet_client_lease_free(&h->pub);
  return st;
}

dfnet_status_t client__lease_release_request(dfnet_client_t *c, uint64_t id, const char *token,
                                             bool force, const char *reason,
                                             dfnet_client_error_t *err) {
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_lease_release_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_LeaseRelease *m = &req->pb.msg.lease_release;
  m->id = id;
  m->force = force;
  snprintf(m->token, sizeof m->token, "%s", token);
  dfnet_status_t st = client__copy_field(m->reason, sizeof m->reason, reason, "the reason", err);
  if (st == DFNET_STATUS_OK)
    st = client__query(c, req, false, 0, client__no_item, NULL, err);
  free(req);
  return st;
}

dfnet_status_t dfnet_client_lease_release(dfnet_client_t *c, uint64_t id, const char *token,
                                          bool force, const char *reason,
                                          dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client is NULL");
  if (force && (reason == NULL || reason[0] == '\0'))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a forced release needs a reason");
  char tok[TOKEN_CAP];
  dfnet_status_t st = lease_named(c, &id, token, tok, err);
  if (st == DFNET_STATUS_OK)
    st = client__lease_release_request(c, id, tok, force, reason, err);
  if (st == DFNET_STATUS_OK || st == DFNET_STATUS_NOT_FOUND) /* either way it is gone */
    client__lease_record_end(c, id);
  return st;
}

/* ---- list, show, history ------------------------------------------------------------ */

static dfnet_status_t leases_fill(dfnet_envelope_t *req, const void *target,
                                  dfnet_client_error_t *err) {
  dfnet_v1_ListLeases *m = &req->pb.msg.list_leases;
  return client__copy_field(m->target, sizeof m->target, target, "target", err);
}

static bool leases_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  return lease_copy(arena, &env->pb.msg.lease_info, item);
}

static const client_list_kind_t lease_list = {
    .ask = dfnet_v1_Envelope_list_leases_tag,
    .fill = leases_fill,
    .answer = dfnet_v1_Envelope_lease_info_tag,
    .item_size = sizeof(dfnet_client_lease_t),
    .copy = leases_copy,
};

dfnet_status_t dfnet_client_list_leases(dfnet_client_t *c, const char *target,
                                        const dfnet_client_query_options_t *q,
                                        dfnet_client_lease_list_t **out,
                                        dfnet_client_error_t *err) {
  return client__list(c, &lease_list, target, q, (void **)out, err);
}

dfnet_status_t dfnet_client_lease_show(dfnet_client_t *c, uint64_t id,
                                       const dfnet_client_query_options_t *q,
                                       dfnet_client_lease_t **out, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || out == NULL || id == 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "client, a lease id and out are required");
  *out = NULL;
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_list_leases_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  req->pb.msg.list_leases.id = id;
  client_lease_holder_t *h = NULL;
  dfnet_status_t st = client__query(c, req, true, q ? q->deadline_ms : 0, lease_one_item, &h, err);
  free(req);
  if (st == DFNET_STATUS_OK && h == NULL)
    st = client__fail(err, DFNET_STATUS_NOT_FOUND, "no lease %" PRIu64, id);
  if (st != DFNET_STATUS_OK) {
    if (h != NULL)
      dfnet_client_lease_free(&h->pub);
    return st;
  }
  *out = &h->pub;
  return DFNET_STATUS_OK;
}

static dfnet_status_t history_fill(dfnet_envelope_t *req, const void *args,
                                   dfnet_client_error_t *err) {
  const dfnet_client_lease_history_query_t *hq = args;
  if (hq->limit > HISTORY_LIMIT_MAX)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "limit %u: at most %u", hq->limit,
                        HISTORY_LIMIT_MAX);
  dfnet_v1_LeaseHistory *m = &req->pb.msg.lease_history;
  m->since_ms = hq->since_ms;
  m->limit = hq->limit;
  m->after_seq = hq->after_seq;
  return client__copy_field(m->target, sizeof m->target, hq->target, "target", err);
}

static bool audit_copy(dfnet_arena_t *arena, const dfnet_envelope_t *env, void *item) {
  const dfnet_v1_LeaseAuditEntry *w = &env->pb.msg.lease_audit_entry;
  dfnet_client_lease_audit_t *e = item;
  e->seq = w->seq;
  e->time_ms = w->time_ms;
  e->lease_id = w->lease_id;
  bool ok = (e->actor = client__arena_strdup(arena, w->actor)) != NULL;
  ok = (e->action = client__arena_strdup(arena, w->action)) != NULL && ok;
  ok = (e->targets = client__arena_strdup(arena, w->targets)) != NULL && ok;
  ok = (e->detail = client__arena_strdup(arena, w->detail)) != NULL && ok;
  return ok;
}

/* The manager closes a history the limit cut with "N entries, more". */
static void audit_end(void *list, const char *message) {
  dfnet_client_lease_audit_list_t *l = list;
  l->more = strstr(message, "more") != NULL;
}

static const client_list_kind_t audit_list = {
    .ask = dfnet_v1_Envelope_lease_history_tag,
    .fill = history_fill,
    .answer = dfnet_v1_Envelope_lease_audit_entry_tag,
    .item_size = sizeof(dfnet_client_lease_audit_t),
    .copy = audit_copy,
    .end = audit_end,
};

dfnet_status_t dfnet_client_lease_history(dfnet_client_t *c,
                                          const dfnet_client_lease_history_query_t *hq,
                                          const dfnet_client_query_options_t *q,
                                          dfnet_client_lease_audit_list_t **out,
                                          dfnet_client_error_t *err) {
  const dfnet_client_lease_history_query_t none = {0};
  return client__list(c, &audit_list, hq != NULL ? hq : &none, q, (void **)out, err);
}
