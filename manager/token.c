/* dfnet-manager: join tokens (manager/token.h; issue 23 item 1): the book of tokens in
 * memory, written through the store, and their redemption with a per-address rate limit. */
#include "lib/hex.h"
#include "lib/array.h"
#include "manager/token.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/platform_util.h>
#include <uthash.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "lib/role.h"

#define SUB "token"
#define WINDOW_MS 60000u

/* A token in memory: its strings, and the store's view of them (view points in here). */
typedef struct token_rec {
  char id[TOKEN_ID_HEX + 1];
  char name[STORE_PRINCIPAL_MAX + 1];
  char prefix[STORE_PRINCIPAL_MAX + 1];
  char by[STORE_PRINCIPAL_MAX + 1];
  char keys[STORE_LABELS_MAX][STORE_LABEL_KEY_MAX + 1];
  char values[STORE_LABELS_MAX][STORE_LABEL_VALUE_MAX + 1];
  store_label_t labels[STORE_LABELS_MAX];
  store_token_t view;
} token_rec_t;

/* Failures of one source address in the current minute. */
typedef struct token_source {
  UT_hash_handle hh;
  char addr[64];
  uint64_t window_start_ms;
  uint32_t failures;
} token_source_t;

struct token_book {
  store_t *store;
  token_rec_t **recs; /* by creation */
  size_t count, cap;
  token_source_t *sources;
  size_t source_count;
};

/* Copy t into a new record (NULL without memory). */
static token_rec_t *rec_new(const store_token_t *t) {
  token_rec_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->view = *t;
  snprintf(r->id, sizeof r->id, "%s", t->id);
  snprintf(r->name, sizeof r->name, "%s", t->name ? t->name : "");
  snprintf(r->prefix, sizeof r->prefix, "%s", t->name_prefix ? t->name_prefix : "");
  snprintf(r->by, sizeof r->by, "%s", t->created_by);
  for (size_t i = 0; i < t->label_count && i < STORE_LABELS_MAX; i++) {
    snprintf(r->keys[i], sizeof r->keys[i], "%s", t->labels[i].key);
    snprintf(r->values[i], sizeof r->values[i], "%s", t->labels[i].value);
    r->labels[i] = (store_label_t){r->keys[i], r->values[i]};
  }
  r->view.id = r->id;
  r->view.name = r->name;
  r->view.name_prefix = r->prefix;
  r->view.created_by = r->by;
  r->view.labels = r->labels;
  return r;
}

/* Keep r at the end of the book (it takes r). false without memory (r is freed). */
static bool book_add(token_book_t *b, token_rec_t *r) {
  token_rec_t **recs = dfnet_array_grow(b->recs, b->count, &b->cap, sizeof *recs, 16);
  if (recs == NULL) {
    free(r);
    return false;
  }
  b->recs = recs;
  b->recs[b->count++] = r;
  return true;
}

static token_rec_t *book_find(token_book_t *b, const char *id) {
  for (size_t i = 0; i < b->count; i++)
    if (strcmp(b->recs[i]->id, id) == 0)
      return b->recs[i];
  return NULL;
}

static dfnet_status_t load_one(void *arg, const store_token_t *t) {
  token_book_t *b = arg;
  token_rec_t *r = rec_new(t);
  return r != NULL && book_add(b, r) ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

dfnet_status_t token__book_open(store_t *store, token_book_t **out, char *err, size_t err_size) {
  *out = NULL;
  token_book_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    dfnet_why_set(err, err_size, "out of memory for the join tokens");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  b->store = store;
  dfnet_status_t st = store__token_load(store, load_one, b, err, err_size);
  if (st != DFNET_STATUS_OK) {
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED)
      dfnet_why_set(err, err_size, "out of memory for the join tokens");
    token__book_free(b);
    return st;
  }
  *out = b;
  return DFNET_STATUS_OK;
}

void token__book_free(token_book_t *b) {
  if (b == NULL)
    return;
  for (size_t i = 0; i < b->count; i++) {
    mbedtls_platform_zeroize(b->recs[i]->view.secret_digest, STORE_DIGEST_SIZE);
    free(b->recs[i]);
  }
  free(b->recs);
  token_source_t *s, *tmp;
  HASH_ITER(hh, b->sources, s, tmp) {
    HASH_DEL(b->sources, s);
    free(s);
  }
  free(b);
}

dfnet_status_t token__each(token_book_t *b, store_token_fn fn, void *arg) {
  for (size_t i = 0; i < b->count; i++) {
    dfnet_status_t st = fn(arg, &b->recs[i]->view);
    if (st != DFNET_STATUS_OK)
      return st;
  }
  return DFNET_STATUS_OK;
}

/* ---- Creating and revoking ---------------------------------------------------------- */

/* A name prefix: 1..63 characters of a dfnet name's ([A-Za-z0-9._-], not starting with '.'
 * or '-'), so that prefix + something can be a name. */
static bool prefix_valid(const char *p) {
  size_t n = strlen(p);
  if (n == 0 || n >= STORE_PRINCIPAL_MAX || p[0] == '.' || p[0] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
          (p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == '_' || p[i] == '-'))
      return false;
  return true;
}

/* A label key: 1..63 of [A-Za-z0-9._/-]; a value: 0..127 printable ASCII. */
static bool label_valid(const store_label_t *l) {
  size_t k = strlen(l->key), v = strlen(l->value);
  if (k == 0 || k > STORE_LABEL_KEY_MAX || v > STORE_LABEL_VALUE_MAX)
    return false;
  for (size_t i = 0; i < k; i++)
    if (!((l->key[i] >= 'a' && l->key[i] <= 'z') || (l->key[i] >= 'A' && l->key[i] <= 'Z') ||
          (l->key[i] >= '0' && l->key[i] <= '9') || strchr("._/-", l->key[i]) != NULL))
      return false;
  for (size_t i = 0; i < v; i++)
    if ((unsigned char)l->value[i] < 0x20 || (unsigned char)l->value[i] > 0x7e)
      return false;
  return true;
}

static bool spec_valid(const token_spec_t *s, char *err, size_t err_size) {
  const char *name = s->name ? s->name : "", *prefix = s->name_prefix ? s->name_prefix : "";
  if (s->role != dfnet_v1_Role_HOST && s->role != dfnet_v1_Role_OPERATOR &&
      s->role != dfnet_v1_Role_VIEWER)
    dfnet_why_set(err, err_size, "a join token's role is host, operator or viewer");
  else if (name[0] && prefix[0])
    dfnet_why_set(err, err_size, "give a name or a name prefix, not both");
  else if (name[0] && !dfnet_pki_name_valid(name))
    dfnet_why_set(err, err_size,
                  "name \"%s\" is not a dfnet name (1..64 of A-Z a-z 0-9 . _ -, not starting "
                  "with . or -)",
                  name);
  else if (prefix[0] && !prefix_valid(prefix))
    dfnet_why_set(err, err_size, "name prefix \"%s\" is not the start of a dfnet name", prefix);
  else if (s->ttl_ms > TOKEN_TTL_MAX_MS)
    dfnet_why_set(err, err_size, "ttl %" PRIu64 " ms is over the maximum, 30 days", s->ttl_ms);
  else if (s->uses > TOKEN_USES_MAX)
    dfnet_why_set(err, err_size, "uses %u is over the maximum, %u", s->uses, TOKEN_USES_MAX);
  else if (s->label_count > STORE_LABELS_MAX)
    dfnet_why_set(err, err_size, "%zu labels (at most %u)", s->label_count, STORE_LABELS_MAX);
  else {
    for (size_t i = 0; i < s->label_count; i++) {
      if (!label_valid(&s->labels[i])) {
        dfnet_why_set(err, err_size,
                      "label %zu: a key is 1..63 of A-Z a-z 0-9 . _ / -, a value 0..127 "
                      "printable characters",
                      i + 1);
        return false;
      }
    }
    return true;
  }
  return false;
}

/* A token's creation or revocation, for store__change_audited. */
typedef struct token_change {
  const store_token_t *t;
  uint64_t now_ms;
} token_change_t;

static dfnet_status_t store_token_put(store_t *s, void *arg, char *err, size_t err_size) {
  return store__token_put(s, ((const token_change_t *)arg)->t, err, err_size);
}

static dfnet_status_t store_token_revoke(store_t *s, void *arg, char *err, size_t err_size) {
  const token_change_t *c = arg;
  return store__token_revoke(s, c->t->id, c->now_ms, err, err_size);
}

/* Write t and its audit row in one transaction. */
static dfnet_status_t write_audited(token_book_t *b, const store_token_t *t, const char *by,
                                    store_audit_action_t action, uint64_t now_ms,
                                    const char *detail, char *err, size_t err_size) {
  char target[32];
  snprintf(target, sizeof target, "token:%s", t->id);
  store_audit_t row = {.time_ms = now_ms, .actor = by, .action = action, .detail = detail};
  token_change_t change = {t, now_ms};
  return store__change_audited_on(
      b->store, action == STORE_AUDIT_TOKEN_CREATE ? store_token_put : store_token_revoke, &change,
      target, row, err, err_size);
}

dfnet_status_t token__create(token_book_t *b, const token_spec_t *spec, const char *by,
                             uint64_t now_ms, char token_out[TOKEN_TEXT_SIZE],
                             const store_token_t **info, char *err, size_t err_size) {
  if (!spec_valid(spec, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  uint8_t raw[TOKEN_ID_BYTES + TOKEN_SECRET_BYTES];
  char id[TOKEN_ID_HEX + 1];
  do { /* a new id (6 octets: a clash is all but impossible, and checked) */
    if (dfnet_pki_random(raw, sizeof raw) != DFNET_STATUS_OK) {
      dfnet_why_set(err, err_size, "no random bytes for a token (see the log)");
      return DFNET_STATUS_INTERNAL;
    }
    dfnet_hex_encode(raw, TOKEN_ID_BYTES, id);
  } while (book_find(b, id) != NULL);
  dfnet_hex_encode(raw, TOKEN_ID_BYTES, token_out);
  token_out[TOKEN_ID_HEX] = '.';
  dfnet_hex_encode(raw + TOKEN_ID_BYTES, TOKEN_SECRET_BYTES, token_out + TOKEN_ID_HEX + 1);
  mbedtls_platform_zeroize(raw, sizeof raw);
  store_token_t t = {.id = id,
                     .role = spec->role,
                     .name = spec->name ? spec->name : "",
                     .name_prefix = spec->name_prefix ? spec->name_prefix : "",
                     .labels = spec->labels,
                     .label_count = spec->label_count,
                     .created_ms = now_ms,
                     .created_by = by,
                     .expires_ms = now_ms + (spec->ttl_ms ? spec->ttl_ms : TOKEN_TTL_DEFAULT_MS),
                     .uses_left = spec->uses ? spec->uses : 1};
  /* the id salts the digest: it is the start of the hashed text */
  store__token_digest((const uint8_t *)token_out, strlen(token_out), t.secret_digest);
  token_rec_t *r = rec_new(&t);
  char detail[256], expires[32];
  time_t secs = (time_t)(t.expires_ms / 1000u);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(detail, sizeof detail, "role %s, %s%s, %u use%s, expires %s",
           dfnet_role_by_wire(t.role)->name, t.name[0] ? "name " : "name prefix ",
           t.name[0]          ? t.name
           : t.name_prefix[0] ? t.name_prefix
                              : "(any)",
           t.uses_left, t.uses_left == 1 ? "" : "s", expires);
  dfnet_status_t st =
      r == NULL ? DFNET_STATUS_RESOURCE_EXHAUSTED
                : write_audited(b, &t, by, STORE_AUDIT_TOKEN_CREATE, now_ms, detail, err, err_size);
  mbedtls_platform_zeroize(t.secret_digest, sizeof t.secret_digest);
  if (st == DFNET_STATUS_OK && !book_add(b, r)) { /* in the store: there at the next start */
    r = NULL;
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  if (st != DFNET_STATUS_OK) {
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED)
      dfnet_why_set(err, err_size, "out of memory for the token");
    free(r);
    mbedtls_platform_zeroize(token_out, TOKEN_TEXT_SIZE);
    token_out[0] = '\0';
    return st;
  }
  DFNET_LOGI(SUB, by, "join token %s created: %s", id, detail);
  if (info != NULL)
    *info = &r->view;
  return DFNET_STATUS_OK;
}

dfnet_status_t token__revoke(token_book_t *b, const char *id, const char *by, uint64_t now_ms,
                             char *err, size_t err_size) {
  token_rec_t *r = book_find(b, id ? id : "");
  if (r == NULL) {
    dfnet_why_set(err, err_size, "no join token %s (dfnet token list)", id ? id : "");
    return DFNET_STATUS_NOT_FOUND;
  }
  if (r->view.revoked_ms != 0) {
    dfnet_why_set(err, err_size, "join token %s was revoked already", id);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  dfnet_status_t st =
      write_audited(b, &r->view, by, STORE_AUDIT_TOKEN_REVOKE, now_ms, "revoked", err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  r->view.revoked_ms = now_ms;
  DFNET_LOGI(SUB, by, "join token %s revoked", id);
  return DFNET_STATUS_OK;
}

/* ---- Redeeming ---------------------------------------------------------------------- */

/* The host part of "192.0.2.7:50312" / "[::1]:50312" into out. */
static void source_host(const char *source, char *out, size_t cap) {
  const char *s = source ? source : "?";
  const char *end = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
  if (s[0] == '[')
    s++;
  size_t n = end != NULL && end >= s ? (size_t)(end - s) : strlen(s);
  snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

/* The source's record for the current window (NULL without memory: not limited). Records
 * of quiet sources are dropped when TOKEN_SOURCES_MAX is reached. */
static token_source_t *source_get(token_book_t *b, const char *addr, uint64_t now_ms) {
  token_source_t *s = NULL;
  HASH_FIND_STR(b->sources, addr, s);
  if (s == NULL) {
    if (b->source_count >= TOKEN_SOURCES_MAX) {
      token_source_t *x, *tmp;
      HASH_ITER(hh, b->sources, x, tmp) {
        if (now_ms - x->window_start_ms >= WINDOW_MS) {
          HASH_DEL(b->sources, x);
          free(x);
          b->source_count--;
        }
      }
    }
    if (b->source_count >= TOKEN_SOURCES_MAX || (s = calloc(1, sizeof *s)) == NULL)
      return NULL;
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    s->window_start_ms = now_ms;
    HASH_ADD_STR(b->sources, addr, s);
    b->source_count++;
  }
  if (now_ms - s->window_start_ms >= WINDOW_MS) {
    s->window_start_ms = now_ms;
    s->failures = 0;
  }
  return s;
}

/* Refuse: log once, count the failure against the source (unless counted is false). */
static dfnet_status_t refuse(token_source_t *src, const char *addr, dfnet_status_t code,
                             bool counted, char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static dfnet_status_t refuse(token_source_t *src, const char *addr, dfnet_status_t code,
                             bool counted, char *why, size_t why_size, const char *fmt, ...) {
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (counted && src != NULL)
    src->failures++;
  DFNET_LOGW(SUB, addr, "join token refused: %s: %s", dfnet_status_str(code), text);
  dfnet_why_set(why, why_size, "%s", text);
  return code;
}

/* Is text "<12 hex>.<32 hex>"? */
static bool token_shape(const char *text) {
  if (text == NULL || strlen(text) != TOKEN_TEXT_SIZE - 1 || text[TOKEN_ID_HEX] != '.')
    return false;
  for (size_t i = 0; i < TOKEN_TEXT_SIZE - 1; i++)
    if (i != TOKEN_ID_HEX &&
        !((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
      return false;
  return true;
}

static void grant_fill(const token_rec_t *r, token_grant_t *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->id, sizeof out->id, "%s", r->id);
  out->role = r->view.role;
  snprintf(out->name, sizeof out->name, "%s", r->name);
  snprintf(out->name_prefix, sizeof out->name_prefix, "%s", r->prefix);
  out->label_count = r->view.label_count;
  for (size_t i = 0; i < out->label_count; i++) {
    size_t k = strlen(r->keys[i]);
    memcpy(out->label_text[i], r->keys[i], k + 1);
    snprintf(out->label_text[i] + k + 1, sizeof out->label_text[i] - k - 1, "%s", r->values[i]);
    out->labels[i] = (store_label_t){out->label_text[i], out->label_text[i] + k + 1};
  }
  out->uses_left = r->view.uses_left;
}

dfnet_status_t token__redeem(token_book_t *b, const char *text, const char *source, uint64_t now_ms,
                             token_accept_fn accept, void *arg, token_grant_t *out, char *why,
                             size_t why_size) {
  char addr[64];
  source_host(source, addr, sizeof addr);
  token_source_t *src = source_get(b, addr, now_ms);
  if (src != NULL && src->failures >= TOKEN_FAILURES_PER_MINUTE)
    return refuse(src, addr, DFNET_STATUS_RESOURCE_EXHAUSTED, false, why, why_size,
                  "%u failed attempts from %s within a minute: try again later", src->failures,
                  addr);
  if (!token_shape(text))
    return refuse(src, addr, DFNET_STATUS_INVALID_ARGUMENT, true, why, why_size,
                  "not a join token (<12 hex digits>.<32 hex digits>)");
  char id[TOKEN_ID_HEX + 1];
  memcpy(id, text, TOKEN_ID_HEX);
  id[TOKEN_ID_HEX] = '\0';
  token_rec_t *r = book_find(b, id);
  /* an unknown id is compared against a digest all the same: the answer takes as long */
  static const uint8_t nothing[STORE_DIGEST_SIZE];
  bool match = store__token_matches(r != NULL ? r->view.secret_digest : nothing,
                                    (const uint8_t *)text, TOKEN_TEXT_SIZE - 1);
  if (r == NULL || !match)
    return refuse(src, addr, DFNET_STATUS_UNAUTHENTICATED, true, why, why_size,
                  "join token %s: no such token, or a wrong secret", id);
  if (r->view.revoked_ms != 0)
    return refuse(src, addr, DFNET_STATUS_PERMISSION_DENIED, true, why, why_size,
                  "join token %s was revoked", id);
  if (now_ms >= r->view.expires_ms)
    return refuse(src, addr, DFNET_STATUS_DEADLINE_EXCEEDED, true, why, why_size,
                  "join token %s expired", id);
  if (r->view.uses_left == 0)
    return refuse(src, addr, DFNET_STATUS_RESOURCE_EXHAUSTED, true, why, why_size,
                  "join token %s has no uses left", id);
  char err[512];
  grant_fill(r, out);
  out->uses_left = r->view.uses_left - 1;
  dfnet_status_t st = accept != NULL ? accept(arg, out, err, sizeof err) : DFNET_STATUS_OK;
  if (st != DFNET_STATUS_OK)
    return refuse(src, addr, st, false, why, why_size, "join token %s: %s", id, err);
  st = store__token_set_uses(b->store, id, r->view.uses_left - 1, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    return refuse(src, addr, st, false, why, why_size, "join token %s: %s", id, err);
  r->view.uses_left--;
  DFNET_LOGI(SUB, addr, "join token %s redeemed (%u use%s left)", id, r->view.uses_left,
             r->view.uses_left == 1 ? "" : "s");
  return DFNET_STATUS_OK;
}
