/* dfnet-manager: certificate records and revocation (manager/cert.h; issue 23 item 4): the
 * records in memory (a hash by serial, loaded from the store), the transport's is_revoked
 * hook, the certificate of each open session, and CertRevoke's work. */
#include "lib/hex.h"
#include "manager/cert.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/suggest.h"
#include "manager/store.h"

#define SUB "cert"

/* A certificate record (store_cert_t's strings owned). */
typedef struct cert_rec {
  UT_hash_handle hh; /* by serial */
  char serial[STORE_SERIAL_MAX + 1];
  char name[STORE_PRINCIPAL_MAX + 1];
  char role[17];
  uint64_t not_after_ms;
  bool issued;
  uint64_t first_seen_ms, last_seen_ms;
  uint64_t stored_seen_ms; /* the last_seen_ms the store has */
  char last_address[STORE_ADDRESS_MAX + 1];
  uint64_t revoked_ms;
  char revoked_by[STORE_PRINCIPAL_MAX + 1];
  char reason[STORE_REASON_MAX + 1];
  uint32_t sessions; /* open sessions presenting it */
} cert_rec_t;

/* The certificate of an open session. */
typedef struct cert_session {
  UT_hash_handle hh; /* by sid */
  dfnet_session_id_t sid;
  char serial[STORE_SERIAL_MAX + 1];
} cert_session_t;

struct mgr_trust {
  cert_rec_t *certs;
  size_t count;
  cert_session_t *sessions;
  token_book_t *tokens;
};

static cert_rec_t *rec_find(mgr_t *m, const char *serial) {
  cert_rec_t *r = NULL;
  HASH_FIND_STR(m->trust->certs, serial, r);
  return r;
}

/* Copy c over r (a new record when r is NULL: added to the hash). NULL without memory. */
static cert_rec_t *rec_put(mgr_t *m, cert_rec_t *r, const store_cert_t *c) {
  if (r == NULL) {
    if ((r = calloc(1, sizeof *r)) == NULL)
      return NULL;
    snprintf(r->serial, sizeof r->serial, "%s", c->serial);
    HASH_ADD_STR(m->trust->certs, serial, r);
    m->trust->count++;
  }
  snprintf(r->name, sizeof r->name, "%s", c->name);
  snprintf(r->role, sizeof r->role, "%s", c->role);
  r->not_after_ms = c->not_after_ms;
  r->issued = c->issued;
  r->first_seen_ms = c->first_seen_ms;
  r->last_seen_ms = r->stored_seen_ms = c->last_seen_ms;
  snprintf(r->last_address, sizeof r->last_address, "%s", c->last_address);
  r->revoked_ms = c->revoked_ms;
  snprintf(r->revoked_by, sizeof r->revoked_by, "%s", c->revoked_by);
  snprintf(r->reason, sizeof r->reason, "%s", c->revoke_reason);
  return r;
}

static store_cert_t rec_view(const cert_rec_t *r) {
  return (store_cert_t){.serial = r->serial,
                        .name = r->name,
                        .role = r->role,
                        .not_after_ms = r->not_after_ms,
                        .issued = r->issued,
                        .first_seen_ms = r->first_seen_ms,
                        .last_seen_ms = r->last_seen_ms,
                        .last_address = r->last_address,
                        .revoked_ms = r->revoked_ms,
                        .revoked_by = r->revoked_by,
                        .revoke_reason = r->reason};
}

static dfnet_status_t load_one(void *arg, const store_cert_t *c) {
  mgr_t *m = arg;
  return rec_put(m, rec_find(m, c->serial), c) != NULL ? DFNET_STATUS_OK
                                                       : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t cert__init(mgr_t *m, char *err, size_t err_size) {
  if ((m->trust = calloc(1, sizeof *m->trust)) == NULL) {
    dfnet_why_set(err, err_size, "out of memory for the certificate records");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  dfnet_status_t st = store__cert_load(m->store, NULL, load_one, m, err, err_size);
  if (st == DFNET_STATUS_RESOURCE_EXHAUSTED)
    dfnet_why_set(err, err_size, "out of memory for the certificate records");
  if (st == DFNET_STATUS_OK)
    st = token__book_open(m->store, &m->trust->tokens, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  size_t revoked = 0;
  for (cert_rec_t *r = m->trust->certs; r != NULL; r = r->hh.next)
    revoked += r->revoked_ms != 0;
  DFNET_LOGI(SUB, NULL, "%zu certificate records, %zu revoked", m->trust->count, revoked);
  return DFNET_STATUS_OK;
}

void cert__destroy(mgr_t *m) {
  if (m->trust == NULL)
    return;
  cert_rec_t *r, *rt;
  HASH_ITER(hh, m->trust->certs, r, rt) {
    HASH_DEL(m->trust->certs, r);
    free(r);
  }
  cert_session_t *s, *st;
  HASH_ITER(hh, m->trust->sessions, s, st) {
    HASH_DEL(m->trust->sessions, s);
    free(s);
  }
  token__book_free(m->trust->tokens);
  free(m->trust);
  m->trust = NULL;
}

token_book_t *cert__tokens(mgr_t *m) { return m->trust->tokens; }

/* ---- The transport's hook and the sessions ------------------------------------------ */

static void revoked_text(const cert_rec_t *r, char *out, size_t cap) {
  snprintf(out, cap, "certificate %s of %s was revoked: %s", r->serial, r->name, r->reason);
}

bool cert__is_revoked(void *user, const uint8_t *serial, size_t len, const char *cn, char *why,
                      size_t why_cap) {
  mgr_t *m = user;
  char hex[STORE_SERIAL_MAX + 1];
  (void)cn;
  if (m->trust == NULL || len == 0 || 2 * len > STORE_SERIAL_MAX)
    return false;
  dfnet_hex_encode(serial, len, hex);
  const cert_rec_t *r = rec_find(m, hex);
  if (r == NULL || r->revoked_ms == 0)
    return false;
  revoked_text(r, why, why_cap);
  return true;
}

/* store__cert_load of one serial: what the store has now (issued by `dfnet-manager issue`
 * since the manager started) over the record, keeping the sighting in memory. */
static dfnet_status_t reload_one(void *arg, const store_cert_t *c) {
  cert_rec_t *r = arg;
  r->issued = c->issued;
  if (r->first_seen_ms == 0 || (c->first_seen_ms != 0 && c->first_seen_ms < r->first_seen_ms))
    r->first_seen_ms = c->first_seen_ms;
  return DFNET_STATUS_OK;
}

/* Write r's sighting to the store when the store's copy is stale (cert.h "Records"); a
 * record new to this manager is read back (the issue verb may have written it). */
static void record_seen(mgr_t *m, cert_rec_t *r, bool changed, bool fresh) {
  if (!changed && r->last_seen_ms - r->stored_seen_ms < CERT_SEEN_WRITE_MS)
    return;
  char err[600];
  store_cert_t c = rec_view(r);
  if (store__cert_seen(m->store, &c, err, sizeof err) != DFNET_STATUS_OK ||
      (fresh &&
       store__cert_load(m->store, r->serial, reload_one, r, err, sizeof err) != DFNET_STATUS_OK)) {
    DFNET_LOGW(SUB, r->name, "certificate %s not recorded: %s", r->serial, err);
    return;
  }
  r->stored_seen_ms = r->last_seen_ms;
}

void cert__session_open(mgr_t *m, const dfnet_session_info_t *info) {
  if (m->trust == NULL || info->serial_hex == NULL || info->serial_hex[0] == '\0')
    return;
  cert_session_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return;
  s->sid = info->id;
  snprintf(s->serial, sizeof s->serial, "%s", info->serial_hex);
  HASH_ADD(hh, m->trust->sessions, sid, sizeof s->sid, s);
  cert_rec_t *r = rec_find(m, s->serial);
  uint64_t now = mgr__wall_ms();
  bool fresh = r == NULL, changed = fresh;
  if (r == NULL) {
    store_cert_t c = {.serial = s->serial,
                      .name = info->peer_name,
                      .role = info->role_name,
                      .not_after_ms = (uint64_t)(info->not_after > 0 ? info->not_after : 0) * 1000u,
                      .first_seen_ms = now,
                      .last_address = "",
                      .revoked_by = "",
                      .revoke_reason = ""};
    if ((r = rec_put(m, NULL, &c)) == NULL)
      return;
    r->stored_seen_ms = 0;
  }
  if (r->first_seen_ms == 0)
    r->first_seen_ms = now;
  changed = changed || strcmp(r->last_address, info->peer_address) != 0;
  snprintf(r->last_address, sizeof r->last_address, "%s", info->peer_address);
  r->last_seen_ms = now;
  r->sessions++;
  record_seen(m, r, changed, fresh);
}

void cert__session_closed(mgr_t *m, dfnet_session_id_t sid) {
  cert_session_t *s = NULL;
  if (m->trust == NULL)
    return;
  HASH_FIND(hh, m->trust->sessions, &sid, sizeof sid, s);
  if (s == NULL)
    return;
  cert_rec_t *r = rec_find(m, s->serial);
  if (r != NULL && r->sessions > 0)
    r->sessions--;
  HASH_DEL(m->trust->sessions, s);
  free(s);
}

bool cert__session_cert(mgr_t *m, dfnet_session_id_t sid, char serial[STORE_SERIAL_MAX + 1],
                        bool *revoked, char *why, size_t why_cap) {
  cert_session_t *s = NULL;
  if (m->trust == NULL)
    return false;
  HASH_FIND(hh, m->trust->sessions, &sid, sizeof sid, s);
  if (s == NULL)
    return false;
  snprintf(serial, STORE_SERIAL_MAX + 1, "%s", s->serial);
  const cert_rec_t *r = rec_find(m, s->serial);
  *revoked = r != NULL && r->revoked_ms != 0;
  if (*revoked)
    revoked_text(r, why, why_cap);
  return true;
}

/* ---- Revocation --------------------------------------------------------------------- */

/* A serial as the records keep it: lower-case hex without colons, into out. false when
 * text is not one (then it may be a name). */
static bool serial_normalize(const char *text, char *out, size_t cap) {
  size_t n = 0;
  for (const char *p = text; *p; p++) {
    if (*p == ':')
      continue;
    if (!isxdigit((unsigned char)*p) || n + 1 >= cap)
      return false;
    out[n++] = (char)tolower((unsigned char)*p);
  }
  out[n] = '\0';
  return n > 0;
}

/* A revocation for store__change_audited. */
typedef struct revocation {
  const char *serial;
  uint64_t now_ms;
  const char *actor, *reason;
} revocation_t;

static dfnet_status_t store_revocation(store_t *s, void *arg, char *err, size_t err_size) {
  const revocation_t *rv = arg;
  return store__cert_revoke(s, rv->serial, rv->now_ms, rv->actor, rv->reason, err, err_size);
}

/* Revoke r (store, audit row, in one transaction), then keep it revoked. */
static dfnet_status_t revoke_one(mgr_t *m, cert_rec_t *r, const char *reason, const char *actor,
                                 uint64_t now, char *why, size_t why_size) {
  char target[8 + STORE_SERIAL_MAX], detail[STORE_DETAIL_MAX + 1];
  snprintf(target, sizeof target, "cert:%s", r->serial);
  snprintf(detail, sizeof detail, "%s (%s): %s", r->name, r->role, reason);
  store_audit_t row = {
      .time_ms = now, .actor = actor, .action = STORE_AUDIT_CERT_REVOKE, .detail = detail};
  revocation_t rv = {r->serial, now, actor, reason};
  dfnet_status_t st =
      store__change_audited_on(m->store, store_revocation, &rv, target, row, why, why_size);
  if (st != DFNET_STATUS_OK)
    return st;
  r->revoked_ms = now;
  snprintf(r->revoked_by, sizeof r->revoked_by, "%s", actor);
  snprintf(r->reason, sizeof r->reason, "%s", reason);
  DFNET_LOGW(SUB, r->name, "certificate %s (%s) revoked by %s: %s", r->serial, r->role, actor,
             reason);
  return DFNET_STATUS_OK;
}

/* Close every open session presenting a revoked certificate; returns how many. */
static size_t close_revoked_sessions(mgr_t *m) {
  size_t closed = 0;
  for (cert_session_t *s = m->trust->sessions; s != NULL; s = s->hh.next) {
    const cert_rec_t *r = rec_find(m, s->serial);
    if (r == NULL || r->revoked_ms == 0)
      continue;
    char msg[400];
    revoked_text(r, msg, sizeof msg);
    if (dfnet_transport_session_close(m->transport, s->sid, DFNET_STATUS_UNAUTHENTICATED, msg) ==
        DFNET_STATUS_OK)
      closed++;
  }
  return closed;
}

/* NOT_FOUND for target, with the nearest name as a suggestion. */
static dfnet_status_t not_found(mgr_t *m, const char *target, char *why, size_t why_size) {
  dfnet_suggest_t sg;
  dfnet_suggest_init(&sg, target);
  for (const cert_rec_t *r = m->trust->certs; r != NULL; r = r->hh.next)
    dfnet_suggest_offer(&sg, r->name);
  const char *best = dfnet_suggest_best(&sg);
  if (best != NULL)
    dfnet_why_set(why, why_size,
                  "no certificate named or numbered %s: did you mean %s? (dfnet "
                  "cert list)",
                  target, best);
  else
    dfnet_why_set(why, why_size, "no certificate named or numbered %s (dfnet cert list)", target);
  return DFNET_STATUS_NOT_FOUND;
}

dfnet_status_t cert__revoke(mgr_t *m, const char *target, const char *reason, const char *actor,
                            cert_revoke_result_t *out, char *why, size_t why_size) {
  memset(out, 0, sizeof *out);
  size_t rlen = reason != NULL ? strlen(reason) : 0;
  if (rlen == 0 || rlen > CERT_REASON_MAX) {
    dfnet_why_set(why, why_size, "a revocation needs a reason of 1..%u bytes (--reason)",
                  CERT_REASON_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  char serial[STORE_SERIAL_MAX + 1];
  cert_rec_t *one = serial_normalize(target, serial, sizeof serial) ? rec_find(m, serial) : NULL;
  uint64_t now = mgr__wall_ms();
  size_t matched = 0;
  for (cert_rec_t *r = m->trust->certs; r != NULL; r = r->hh.next) {
    if (one != NULL ? r != one : strcmp(r->name, target) != 0)
      continue;
    matched++;
    snprintf(out->name, sizeof out->name, "%s", r->name);
    if (r->revoked_ms != 0) {
      out->already++;
      continue;
    }
    dfnet_status_t st = revoke_one(m, r, reason, actor, now, why, why_size);
    if (st != DFNET_STATUS_OK)
      return st;
    if (out->revoked < 16)
      snprintf(out->serials[out->revoked], sizeof out->serials[0], "%s", r->serial);
    out->revoked++;
  }
  if (matched == 0)
    return not_found(m, target, why, why_size);
  if (out->revoked == 0) {
    dfnet_why_set(why, why_size, "%s: %s revoked already", target,
                  out->already == 1 ? "its certificate was" : "all its certificates were");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  out->sessions_closed = close_revoked_sessions(m);
  return DFNET_STATUS_OK;
}

bool cert__remember(mgr_t *m, const store_cert_t *c) {
  return rec_put(m, rec_find(m, c->serial), c) != NULL;
}

bool cert__live_of_name(mgr_t *m, const char *name, uint64_t now_ms,
                        char serial[STORE_SERIAL_MAX + 1], uint64_t *not_after_ms) {
  for (const cert_rec_t *r = m->trust->certs; r != NULL; r = r->hh.next) {
    if (strcmp(r->name, name) != 0 || r->revoked_ms != 0 || r->not_after_ms <= now_ms)
      continue;
    snprintf(serial, STORE_SERIAL_MAX + 1, "%s", r->serial);
    *not_after_ms = r->not_after_ms;
    return true;
  }
  return false;
}

/* ---- Listing ------------------------------------------------------------------------ */

static int by_name_serial(const void *a, const void *b) {
  const cert_rec_t *x = *(const cert_rec_t *const *)a, *y = *(const cert_rec_t *const *)b;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : strcmp(x->serial, y->serial);
}

dfnet_status_t cert__each(mgr_t *m, cert_each_fn fn, void *arg) {
  size_t n = m->trust->count, i = 0;
  cert_rec_t **all = malloc((n ? n : 1) * sizeof *all);
  if (all == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  for (cert_rec_t *r = m->trust->certs; r != NULL && i < n; r = r->hh.next)
    all[i++] = r;
  qsort(all, i, sizeof *all, by_name_serial);
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t k = 0; k < i && st == DFNET_STATUS_OK; k++) {
    store_cert_t c = rec_view(all[k]);
    st = fn(arg, &c, all[k]->sessions > 0);
  }
  free(all);
  return st;
}
