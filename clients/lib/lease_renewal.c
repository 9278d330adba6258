/* libdfnet-client: the renewals of the leases acquired through a client, at a third of
 * their TTL, on the client thread (include/dfnet/client.h "Leases"; lease.c acquires and
 * releases them).
 *
 * One record per lease acquired (client_lease_t, on c->leases under c->mu). A record has
 * at most one activity at a time — the timer of its next renewal, or its LeaseRenew in
 * flight — and whoever holds the activity frees the record once it finds it released
 * (dfnet_client_lease_release) or the client closing. A record without activity (not
 * renewed, or lost) is freed by the release itself, or at close. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "clients/lib/client_internal.h"
#include "lib/log.h"

#define SUB "client"
#define TOKEN_CAP sizeof(((dfnet_client_t *)0)->lease_token)
#define RENEW_DEADLINE_MAX_MS 10000u
#define RETRY_MIN_MS 50u
#define RETRY_MAX_MS 5000u

struct client_lease {
  client_lease_t *next; /* utlist LL: c->leases, newest first */
  dfnet_client_t *c;
  uint64_t id;
  char token[TOKEN_CAP];
  uint32_t ttl_ms;
  uint64_t expires_ms;    /* the manager's (wall clock) */
  uint64_t until_mono_ms; /* when it expires by our clock: the last grant + ttl_ms */
  bool renewing;          /* renewed (until lost) */
  bool active;            /* a timer or a LeaseRenew holds it */
  bool released;          /* released through the client: gone once inactive */
  bool warned;            /* this streak of failures was logged */
  uint32_t renewals, failures;
  dfnet_status_t status;
  char message[256];
  dfnet_client_lease_fn on_renew;
  void *user;
};

/* c->mu held: the live record of lease id, or NULL. */
static client_lease_t *record_find_locked(dfnet_client_t *c, uint64_t id) {
  client_lease_t *l;
  LL_FOREACH(c->leases, l) {
    if (l->id == id && !l->released)
      return l;
  }
  return NULL;
}

/* l's activity held: take c->mu and return true; or, when l is over (released, or the
 * client closing), unlink and free it and return false (c->mu not held, l gone). */
static bool record_lock(dfnet_client_t *c, client_lease_t *l) {
  pthread_mutex_lock(&c->mu);
  if (!l->released && !c->closing)
    return true;
  LL_DELETE(c->leases, l);
  pthread_mutex_unlock(&c->mu);
  free(l);
  return false;
}

void client__leases_free(dfnet_client_t *c) {
  client_lease_t *l, *next;
  LL_FOREACH_SAFE(c->leases, l, next) {
    free(l);
  }
  c->leases = NULL;
}

/* Failures the manager did not decide: tried again while the lease lives. */
static bool transient(dfnet_status_t code) {
  return code == DFNET_STATUS_UNAVAILABLE || code == DFNET_STATUS_DEADLINE_EXCEEDED ||
         code == DFNET_STATUS_RESOURCE_EXHAUSTED || code == DFNET_STATUS_CANCELLED;
}

static uint32_t clamp_ms(uint64_t v, uint32_t lo, uint32_t hi) {
  return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

static void renew_fire(void *user);

/* l's next renewal could not be scheduled (out of memory), its activity held: renewals
 * end. */
static void renew_stop(client_lease_t *l) {
  dfnet_client_t *c = l->c;
  if (!record_lock(c, l))
    return;
  l->renewing = l->active = false;
  l->status = DFNET_STATUS_RESOURCE_EXHAUSTED;
  snprintf(l->message, sizeof l->message, "out of memory for a timer");
  uint64_t id = l->id, expires = l->expires_ms;
  dfnet_client_lease_fn fn = l->on_renew;
  void *user = l->user;
  pthread_mutex_unlock(&c->mu);
  DFNET_LOGW(SUB, NULL, "lease %" PRIu64 " is no longer renewed: out of memory", id);
  if (fn != NULL)
    fn(user, id, DFNET_STATUS_RESOURCE_EXHAUSTED, expires, "out of memory for a timer");
}

/* What a renewal (or its failure to be sent) came to, with l's activity held: the next
 * renewal, a retry, or the end. */
static void renew_outcome(client_lease_t *l, dfnet_status_t code, const char *message,
                          const dfnet_v1_LeaseInfo *info) {
  dfnet_client_t *c = l->c;
  uint64_t now = dfnet_transport_now_ms();
  uint32_t delay = 0;
  bool report = false, warn = false, lost = false;
  if (!record_lock(c, l))
    return;
  if (code == DFNET_STATUS_OK) {
    l->expires_ms = info->expires_ms;
    l->ttl_ms = info->ttl_ms;
    l->until_mono_ms = now + l->ttl_ms;
    l->renewals++;
    l->failures = 0;
    l->warned = false;
    report = true;
    delay = l->ttl_ms / 3 ? l->ttl_ms / 3 : 1;
    if (l->ttl_ms == 0 || l->expires_ms == 0) /* it no longer expires */
      l->renewing = l->active = false;
  } else if (transient(code) && now + RETRY_MIN_MS < l->until_mono_ms) {
    l->failures++;
    warn = !l->warned;
    l->warned = true;
    delay = clamp_ms(l->ttl_ms / 10, RETRY_MIN_MS, RETRY_MAX_MS);
    delay = clamp_ms(delay, 1, (uint32_t)(l->until_mono_ms - now));
  } else {
    lost = report = true;
    l->failures++;
    l->status = transient(code) ? DFNET_STATUS_DEADLINE_EXCEEDED : code;
    snprintf(l->message, sizeof l->message, "%s%s",
             transient(code) ? "it expired before it could be renewed: " : "", message);
    l->renewing = l->active = false;
    /* the manager says it is gone, or its token is none: the client's token no longer
     * names a lease (as after a release), and the next lease acquired becomes it */
    if ((code == DFNET_STATUS_NOT_FOUND || code == DFNET_STATUS_PERMISSION_DENIED) &&
        client__lease_token_id(c->lease_token) == l->id)
      c->lease_token[0] = '\0';
  }
  uint64_t id = l->id, expires = l->expires_ms;
  dfnet_status_t status = lost ? l->status : DFNET_STATUS_OK;
  char text[256];
  snprintf(text, sizeof text, "%s", lost ? l->message : "");
  dfnet_client_lease_fn fn = l->on_renew;
  void *user = l->user;
  bool schedule = !lost && l->active;
  pthread_mutex_unlock(&c->mu);
  /* From here l is ours only while it is active (a timer follows); lost: not at all. */
  if (warn)
    DFNET_LOGW(SUB, NULL,
               "lease %" PRIu64 ": renewal failed (%s: %s); trying again until it expires", id,
               dfnet_status_str(code), message);
  if (lost)
    DFNET_LOGW(SUB, NULL, "lease %" PRIu64 " is no longer renewed: %s: %s", id,
               dfnet_status_str(status), text);
  if (schedule &&
      dfnet_transport_timer_start(c->t, delay, renew_fire, l, NULL) != DFNET_STATUS_OK) {
    renew_stop(l);
    return;
  }
  if (report && fn != NULL)
    fn(user, id, status, expires, text);
}

/* The LeaseRenew's answer (client thread; also while the transport is destroyed). */
static void renew_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *env, bool last) {
  client_lease_t *l = user;
  (void)last;
  if (status != DFNET_STATUS_OK) {
    renew_outcome(l, status,
                  status == DFNET_STATUS_DEADLINE_EXCEEDED ? "no answer from the manager"
                  : status == DFNET_STATUS_UNAVAILABLE     ? "connection to the manager lost"
                                                           : dfnet_status_str(status),
                  NULL);
  } else if (env->pb.which_msg == dfnet_v1_Envelope_lease_info_tag) {
    renew_outcome(l, DFNET_STATUS_OK, "", &env->pb.msg.lease_info);
  } else if (env->pb.which_msg == dfnet_v1_Envelope_status_tag &&
             env->pb.msg.status.code != dfnet_v1_Code_OK) {
    renew_outcome(l, (dfnet_status_t)env->pb.msg.status.code, env->pb.msg.status.message, NULL);
  } else {
    renew_outcome(l, DFNET_STATUS_INTERNAL, "the manager's answer to LeaseRenew has no lease",
                  NULL);
  }
}

/* Timer: renew l now. */
static void renew_fire(void *user) {
  client_lease_t *l = user;
  dfnet_client_t *c = l->c;
  if (!record_lock(c, l))
    return;
  dfnet_session_id_t sid = c->session;
  /* An answer is waited for a third of the TTL at most, so that a retry still fits. */
  uint64_t now = dfnet_transport_now_ms();
  uint64_t left = l->until_mono_ms > now ? l->until_mono_ms - now : 1;
  uint32_t deadline =
      clamp_ms(left < l->ttl_ms / 3 ? left : l->ttl_ms / 3, 1, RENEW_DEADLINE_MAX_MS);
  dfnet_envelope_t *env = sid != 0 ? malloc(sizeof *env) : NULL;
  if (env != NULL) {
    DFNET_ENVELOPE_INIT_MEMBER(env, dfnet_v1_Envelope_lease_renew_tag, lease_renew);
    env->pb.msg.lease_renew.id = l->id;
    memcpy(env->pb.msg.lease_renew.token, l->token, sizeof l->token);
  }
  pthread_mutex_unlock(&c->mu);
  if (sid == 0) {
    renew_outcome(l, DFNET_STATUS_UNAVAILABLE, "not connected to the manager", NULL);
    return;
  }
  if (env == NULL) {
    renew_outcome(l, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  dfnet_request_opts_t ro = {.deadline_ms = deadline, .on_reply = renew_reply, .user = l};
  dfnet_status_t st = dfnet_transport_request(c->t, sid, env, &ro, 0, NULL);
  free(env);
  if (st != DFNET_STATUS_OK)
    renew_outcome(l,
                  st == DFNET_STATUS_NOT_FOUND  ? DFNET_STATUS_UNAVAILABLE
                  : st == DFNET_STATUS_INTERNAL ? DFNET_STATUS_RESOURCE_EXHAUSTED
                                                : st,
                  "LeaseRenew not sent", NULL);
}

void client__lease_record_start(dfnet_client_t *c, const dfnet_client_lease_t *lease,
                                const dfnet_client_lease_options_t *o) {
  client_lease_t *l = calloc(1, sizeof *l);
  if (l == NULL) {
    DFNET_LOGW(SUB, NULL, "lease %" PRIu64 " is not renewed: out of memory", lease->id);
    return;
  }
  l->c = c;
  l->id = lease->id;
  snprintf(l->token, sizeof l->token, "%s", lease->token);
  l->ttl_ms = lease->ttl_ms;
  l->expires_ms = lease->expires_ms;
  l->until_mono_ms = dfnet_transport_now_ms() + lease->ttl_ms;
  l->renewing = !o->no_renew && lease->ttl_ms > 0 && lease->expires_ms > 0;
  l->active = l->renewing;
  l->on_renew = o->on_renew;
  l->user = o->user;
  uint32_t delay = lease->ttl_ms / 3 ? lease->ttl_ms / 3 : 1;
  pthread_mutex_lock(&c->mu);
  LL_PREPEND(c->leases, l);
  if (c->lease_token[0] == '\0') /* the client's lease token when it has none */
    memcpy(c->lease_token, l->token, sizeof l->token);
  bool renewing = l->renewing;
  pthread_mutex_unlock(&c->mu);
  if (renewing && dfnet_transport_timer_start(c->t, delay, renew_fire, l, NULL) != DFNET_STATUS_OK)
    renew_stop(l);
}

void client__lease_record_end(dfnet_client_t *c, uint64_t id) {
  client_lease_t *gone = NULL;
  pthread_mutex_lock(&c->mu);
  client_lease_t *l = record_find_locked(c, id);
  if (l != NULL) {
    l->released = true;
    if (!l->active) {
      LL_DELETE(c->leases, l);
      gone = l;
    }
  }
  if (client__lease_token_id(c->lease_token) == id)
    c->lease_token[0] = '\0';
  pthread_mutex_unlock(&c->mu);
  free(gone);
}

dfnet_status_t dfnet_client_lease_state(dfnet_client_t *c, uint64_t id,
                                        dfnet_client_lease_state_t *out) {
  if (c == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  const client_lease_t *l = record_find_locked(c, id);
  if (l != NULL) {
    *out = (dfnet_client_lease_state_t){.id = l->id,
                                        .renewing = l->renewing,
                                        .expires_ms = l->expires_ms,
                                        .ttl_ms = l->ttl_ms,
                                        .renewals = l->renewals,
                                        .failures = l->failures,
                                        .status = l->status};
    snprintf(out->message, sizeof out->message, "%s", l->message);
  }
  pthread_mutex_unlock(&c->mu);
  return l != NULL ? DFNET_STATUS_OK : DFNET_STATUS_NOT_FOUND;
}

bool client__lease_record_token_locked(dfnet_client_t *c, uint64_t id, char *out) {
  const client_lease_t *l = record_find_locked(c, id);
  if (l != NULL)
    memcpy(out, l->token, TOKEN_CAP);
  return l != NULL;
}

void client__lease_record_renewed(dfnet_client_t *c, uint64_t id, uint64_t expires_ms,
                                  uint32_t ttl_ms) {
  uint64_t now = dfnet_transport_now_ms();
  pthread_mutex_lock(&c->mu);
  client_lease_t *l = record_find_locked(c, id);
  if (l != NULL) { /* the renewals go on from the new expiry */
    l->expires_ms = expires_ms;
    l->ttl_ms = ttl_ms ? ttl_ms : l->ttl_ms;
    l->until_mono_ms = now + l->ttl_ms;
  }
  pthread_mutex_unlock(&c->mu);
}
