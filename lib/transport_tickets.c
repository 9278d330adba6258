/* TLS session tickets (RFC 5077) of a server endpoint, with keys that outlive the process
 * (issue 23 item 5 "Restarts without a storm"; docs/architecture.md "Transport and trust").
 *
 * mbedTLS's ticket module (ssl_ticket.c: AES-256-GCM, a 4-octet key name, the session
 * serialized with the peer's certificate, MBEDTLS_SSL_KEEP_PEER_CERTIFICATE) makes and opens
 * the tickets. Its context holds two keys and replaces the older with a random one when the
 * active one is a lifetime old, but only in memory, and mbedTLS 2.28 has no call to give it
 * keys. So the two keys live in a file of the state directory (0600, replaced atomically),
 * are put into the context's key slots at start-up (mbedtls_cipher_setkey, as the module
 * does itself), and our write callback rotates them (a new random key becomes the active
 * one, the active one the previous one, the file rewritten) before mbedTLS would: the
 * module's own rotation never runs, and every key that ever made a ticket is on disk.
 *
 * A ticket lives as long as a key is active (the rotation period, 24 h by default):
 * mbedTLS refuses a ticket whose session began more than a lifetime ago, and a key stays
 * (as the previous one) for a period after it stops making tickets, so every ticket that is
 * still valid can be opened, across restarts too.
 *
 * The file, 97 octets: "DFNETTK1", the active slot (0 or 1), then for each slot its name
 * (4 octets), its AES-256 key (32) and when it was made (Unix seconds, 8, big-endian).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <mbedtls/cipher.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_ticket.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

#define TICKET_MAGIC "DFNETTK1"
#define TICKET_MAGIC_LEN 8
#define TICKET_NAME_LEN 4
#define TICKET_KEY_LEN 32
#define TICKET_SLOT_LEN (TICKET_NAME_LEN + TICKET_KEY_LEN + 8)
#define TICKET_FILE_LEN (TICKET_MAGIC_LEN + 1 + 2 * TICKET_SLOT_LEN)

typedef struct ticket_key {
  uint8_t name[TICKET_NAME_LEN];
  uint8_t key[TICKET_KEY_LEN];
  uint64_t made; /* Unix seconds */
} ticket_key_t;

struct transport__tickets {
  mbedtls_ssl_ticket_context ctx;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  char *path;
  uint32_t rotate_secs;
  ticket_key_t keys[2];
  unsigned active;
};

/* A new random key in slot i, made now. Returns an mbedTLS error or 0. */
static int key_generate(transport__tickets_t *tk, unsigned i) {
  ticket_key_t *k = &tk->keys[i];
  int rc = mbedtls_ctr_drbg_random(&tk->drbg, k->name, sizeof k->name);
  if (rc == 0)
    rc = mbedtls_ctr_drbg_random(&tk->drbg, k->key, sizeof k->key);
  k->made = (uint64_t)time(NULL);
  return rc;
}

/* Write both keys to tk->path (0600, atomically). */
static dfnet_status_t keys_save(const transport__tickets_t *tk) {
  uint8_t buf[TICKET_FILE_LEN], *p = buf;
  memcpy(p, TICKET_MAGIC, TICKET_MAGIC_LEN);
  p += TICKET_MAGIC_LEN;
  *p++ = (uint8_t)tk->active;
  for (unsigned i = 0; i < 2; i++) {
    memcpy(p, tk->keys[i].name, TICKET_NAME_LEN);
    memcpy(p + TICKET_NAME_LEN, tk->keys[i].key, TICKET_KEY_LEN);
    p += TICKET_NAME_LEN + TICKET_KEY_LEN;
    for (int b = 7; b >= 0; b--)
      *p++ = (uint8_t)(tk->keys[i].made >> (8 * b));
  }
  char why[256] = "";
  dfnet_status_t st = dfnet_file_write_atomic(tk->path, buf, sizeof buf, 0600, why, sizeof why);
  mbedtls_platform_zeroize(buf, sizeof buf);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGE(SUB, tk->path, "cannot write the session ticket keys: %s", why);
  return st;
}

/* Read both keys from tk->path. NOT_FOUND when there is no file; INVALID_ARGUMENT (logged)
 * when it is not one of ours. */
static dfnet_status_t keys_load(transport__tickets_t *tk) {
  dfnet_file_t f = {0};
  char why[256] = "";
  dfnet_status_t st =
      dfnet_file_read(tk->path, TICKET_FILE_LEN, DFNET_FILE_SECRET, &f, why, sizeof why);
  if (st == DFNET_STATUS_NOT_FOUND)
    return st;
  if (st != DFNET_STATUS_OK || f.size != TICKET_FILE_LEN ||
      memcmp(f.data, TICKET_MAGIC, TICKET_MAGIC_LEN) != 0 || f.data[TICKET_MAGIC_LEN] > 1) {
    DFNET_LOGE(SUB, tk->path, "not a session ticket key file (%s): remove it to start anew",
               st != DFNET_STATUS_OK ? why : "wrong size or contents");
    dfnet_file_free(&f);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  const uint8_t *p = f.data + TICKET_MAGIC_LEN;
  tk->active = *p++;
  for (unsigned i = 0; i < 2; i++) {
    memcpy(tk->keys[i].name, p, TICKET_NAME_LEN);
    memcpy(tk->keys[i].key, p + TICKET_NAME_LEN, TICKET_KEY_LEN);
    p += TICKET_NAME_LEN + TICKET_KEY_LEN;
    tk->keys[i].made = 0;
    for (int b = 0; b < 8; b++)
      tk->keys[i].made = (tk->keys[i].made << 8) | *p++;
  }
  if ((f.mode & 077) != 0)
    DFNET_LOGW(SUB, tk->path, "session ticket key file is readable by others (mode %03o)",
               (unsigned)(f.mode & 0777));
  dfnet_file_free(&f);
  return DFNET_STATUS_OK;
}

/* Put slot i's key into mbedTLS's context, as ssl_ticket_gen_key() does with its own. */
static int key_install(transport__tickets_t *tk, unsigned i) {
  mbedtls_ssl_ticket_key *mk = &tk->ctx.keys[i];
  memcpy(mk->name, tk->keys[i].name, TICKET_NAME_LEN);
  mk->generation_time = (uint32_t)tk->keys[i].made;
  return mbedtls_cipher_setkey(&mk->ctx, tk->keys[i].key, mbedtls_cipher_get_key_bitlen(&mk->ctx),
                               MBEDTLS_ENCRYPT);
}

/* The active key is a period old (or from the future: the clock went back, which would make
 * mbedTLS rotate by itself): the other slot gets a new key and becomes the active one. */
static void keys_rotate_if_due(transport__tickets_t *tk) {
  uint64_t now = (uint64_t)time(NULL), made = tk->keys[tk->active].made;
  if (now >= made && now - made < tk->rotate_secs)
    return;
  unsigned next = 1u - tk->active;
  if (key_generate(tk, next) != 0 || key_install(tk, next) != 0) {
    DFNET_LOGE(SUB, tk->path, "cannot make a new session ticket key: the old one stays");
    return;
  }
  tk->active = next;
  tk->ctx.active = (unsigned char)next;
  if (keys_save(tk) == DFNET_STATUS_OK)
    DFNET_LOGI(SUB, tk->path, "session ticket key rotated (the previous one is still accepted)");
}

/* mbedtls_ssl_ticket_write_t: rotate when due, then mbedTLS makes the ticket. Service
 * thread (every handshake runs there). */
static int tickets_write(void *p, const mbedtls_ssl_session *session, unsigned char *start,
                         const unsigned char *end, size_t *tlen, uint32_t *lifetime) {
  transport__tickets_t *tk = p;
  keys_rotate_if_due(tk);
  return mbedtls_ssl_ticket_write(&tk->ctx, session, start, end, tlen, lifetime);
}

/* mbedtls_ssl_ticket_parse_t: mbedTLS opens it with whichever of the two keys named it. */
static int tickets_parse(void *p, mbedtls_ssl_session *session, unsigned char *buf, size_t len) {
  transport__tickets_t *tk = p;
  return mbedtls_ssl_ticket_parse(&tk->ctx, session, buf, len);
}

/* Load the keys (or make and write them), set mbedTLS's context up with them. */
static dfnet_status_t tickets_init(transport__tickets_t *tk) {
  static const unsigned char pers[] = "dfnet session tickets";
  if (mbedtls_ctr_drbg_seed(&tk->drbg, mbedtls_entropy_func, &tk->entropy, pers, sizeof pers - 1) !=
      0) {
    DFNET_LOGE(SUB, tk->path, "cannot seed the random generator for session tickets");
    return DFNET_STATUS_INTERNAL;
  }
  dfnet_status_t st = keys_load(tk);
  if (st == DFNET_STATUS_NOT_FOUND) {
    tk->active = 0;
    if (key_generate(tk, 0) != 0 || key_generate(tk, 1) != 0)
      return DFNET_STATUS_INTERNAL;
    if ((st = keys_save(tk)) != DFNET_STATUS_OK)
      return st;
    DFNET_LOGI(SUB, tk->path, "new session ticket keys");
  } else if (st != DFNET_STATUS_OK) {
    return st;
  }
  if (mbedtls_ssl_ticket_setup(&tk->ctx, mbedtls_ctr_drbg_random, &tk->drbg,
                               MBEDTLS_CIPHER_AES_256_GCM, tk->rotate_secs) != 0 ||
      key_install(tk, 0) != 0 || key_install(tk, 1) != 0) {
    DFNET_LOGE(SUB, tk->path, "cannot set up mbedTLS's session ticket context");
    return DFNET_STATUS_INTERNAL;
  }
  tk->ctx.active = (unsigned char)tk->active;
  return DFNET_STATUS_OK;
}

dfnet_status_t transport__tickets_enable(transport__endpoint_t *ep, const char *path,
                                         uint32_t rotate_secs) {
  transport__tickets_t *tk = calloc(1, sizeof *tk);
  if (tk == NULL || (tk->path = strdup(path)) == NULL) {
    free(tk);
    return DFNET_STATUS_INTERNAL;
  }
  tk->rotate_secs = rotate_secs ? rotate_secs : DFNET_TRANSPORT_TICKET_ROTATE_SECS_DEFAULT;
  mbedtls_ssl_ticket_init(&tk->ctx);
  mbedtls_entropy_init(&tk->entropy);
  mbedtls_ctr_drbg_init(&tk->drbg);
  ep->tickets = tk; /* freed with the endpoint, whatever happens below */
  dfnet_status_t st = tickets_init(tk);
  if (st != DFNET_STATUS_OK)
    return st;
  if (lws_tls_vhost_session_tickets(ep->vhost, tickets_write, tickets_parse, tk) != 0) {
    DFNET_LOGE(SUB, path, "libwebsockets refused the session tickets (no TLS on the listener)");
    return DFNET_STATUS_INTERNAL;
  }
  DFNET_LOGI(SUB, path, "TLS session tickets on (RFC 5077; keys rotated every %u s)",
             (unsigned)tk->rotate_secs);
  return DFNET_STATUS_OK;
}

void transport__tickets_free(transport__tickets_t *tk) {
  if (tk == NULL)
    return;
  mbedtls_ssl_ticket_free(&tk->ctx);
  mbedtls_ctr_drbg_free(&tk->drbg);
  mbedtls_entropy_free(&tk->entropy);
  mbedtls_platform_zeroize(tk->keys, sizeof tk->keys);
  free(tk->path);
  free(tk);
}
