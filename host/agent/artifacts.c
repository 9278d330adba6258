/* The host's artifact cache: dfnet.lab.ArtifactCache (proto/dfnet/lab/artifact.proto),
 * answered by the agent itself for any node of this host (calls.c hands it every Call whose
 * method starts with "/dfnet.lab.ArtifactCache/"; the node only selects the host, a node
 * without a driver included). docs/architecture.md "Artifacts".
 *
 * Layout of a->artifact_dir (<cache dir>/artifacts):
 *   <sha256 hex>        a complete artifact: whole and verified. Drivers open it by digest
 *                       (dfnet_driver_artifact_open: an ArtifactOpen the agent answers
 *                       with the file's descriptor, agent__artifact_open).
 *   <sha256 hex>.part   an upload under way: its leading bytes, appended by Put.
 * The mtime of a complete artifact is its last use (touched by Stat and Put): the cache's
 * bound (--artifact-cache-mb) is kept by deleting the least recently used first.
 *
 * One upload (a .part) keeps a record in memory while it goes on (at most UPLOADS_MAX; the
 * least recently used goes first): the .part's open descriptor, the bytes it holds and the
 * SHA-256 context of those bytes, updated with each chunk, so that a Put costs one pwrite and
 * the hash of its chunk. Without a record (after an agent restart, or once it was dropped)
 * the upload is taken up from its hash checkpoint, "<hex>.sha": the SHA-256 state of the
 * .part's first bytes, saved each WRITEBACK_STEP appended; the .part is cut back to it (at
 * most WRITEBACK_STEP lost) and nothing is hashed again. Without a usable checkpoint (another
 * mbedTLS build, a .part shorter than it, none at all) the next Put hashes the .part's bytes
 * once (a .part over REHASH_MAX is cut to it first, so that the loop is not held for long). The
 * last byte finishes the hash: equal to the digest, the file is fsync'd and renamed to its digest
 * (complete); else it is deleted (DATA_LOSS). Writeback is started every WRITEBACK_STEP bytes, so
 * that the final fsync has little left.
 *
 * Everything runs on the agent's service thread; each call is answered before it returns
 * (nothing is in flight, so a Cancel finds nothing). Replies: a final Reply with the
 * encoded ArtifactStatus in the envelope's bulk, or a final Reply with the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "dfnet/lab/artifact.pb.h"
#include "host/agent/agent.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define ARTIFACT_SUBSYS "artifact"
#define METHOD_PREFIX "/dfnet.lab.ArtifactCache/"
#define UPLOADS_MAX 16                 /* uploads whose record (and hash context) is kept */
#define CHUNK_MAX (4u * 1024u * 1024u) /* ArtifactPutRequest.data: 1 byte .. 4 MiB */
#define REHASH_CHUNK (1024u * 1024u)   /* reads when hashing a .part without a record */
#define REHASH_MAX (1024ull << 20)     /* a longer .part is cut to this before it is hashed */
#define WRITEBACK_STEP (32u << 20)     /* start writing back every this many bytes appended */
#define SHORT_HEX 12                   /* digits of the digest in log lines */

/* An upload under way: its .part file and the hash of the bytes it holds. */
struct agent_upload {
  uint8_t digest[32];
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
  uint64_t total; /* the artifact's size (ArtifactPutRequest.total_size) */
  uint64_t held;  /* bytes in the .part, every one of them hashed into sha */
  int fd;         /* the .part, read-write */
  mbedtls_sha256_context sha;
  uint64_t started_ms; /* monotonic: when this process took the upload up */
  uint64_t first_held; /* what the .part held then */
  uint64_t used_ms;    /* monotonic: its last Put (the record's LRU) */
  uint64_t logged_at;  /* the offset a "resumes" line was logged for (UINT64_MAX: none) */
  UT_hash_handle hh;   /* a->uploads, by digest */
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A log line's subject: the first SHORT_HEX digits of a digest (or of a cache file's name).
 * One at a time: the service thread's. */
static const char *tag(const char *hex) {
  static char buf[SHORT_HEX + 1];
  snprintf(buf, sizeof buf, "%.*s", SHORT_HEX, hex);
  return buf;
}

static uint64_t cache_limit(const agent_t *a) { return (uint64_t)a->opt.artifact_cache_mb << 20; }

static void artifact_path(const agent_t *a, const char *hex, bool part, char *out, size_t size) {
  snprintf(out, size, "%s/%s%s", a->artifact_dir, hex, part ? ".part" : "");
}

/* ---- hash checkpoints ------------------------------------------------------------------- */

#define CHECKPOINT_MAGIC "dfnetsha"

/* "<hex>.sha": the SHA-256 state of the first `held` bytes of "<hex>.part". The state is
 * mbedTLS's context as this build lays it out (mbedtls_sha256_clone copies it the same way):
 * a checkpoint from another mbedTLS version or layout is not used. */
typedef struct hash_checkpoint {
  char magic[8];            /* CHECKPOINT_MAGIC, no NUL */
  uint32_t mbedtls_version; /* MBEDTLS_VERSION_NUMBER */
  uint32_t ctx_size;        /* sizeof(mbedtls_sha256_context) */
  uint64_t total;           /* the artifact's size */
  uint64_t held;            /* bytes of the .part the state covers */
  mbedtls_sha256_context sha;
} hash_checkpoint_t;

static void checkpoint_path(const agent_t *a, const char *hex, char *out, size_t size) {
  snprintf(out, size, "%s/%s.sha", a->artifact_dir, hex);
}

static void checkpoint_remove(const agent_t *a, const char *hex) {
  char path[4400];
  checkpoint_path(a, hex, path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT)
    DFNET_LOGW(ARTIFACT_SUBSYS, tag(hex), "cannot delete %s: %s", path, strerror(errno));
}

/* Save u's hash state. Best effort: a checkpoint that is not written (or is torn by a crash)
 * only means hashing the .part again. */
static void checkpoint_save(const agent_t *a, const agent_upload_t *u) {
  hash_checkpoint_t c;
  memset(&c, 0, sizeof c);
  memcpy(c.magic, CHECKPOINT_MAGIC, sizeof c.magic);
  c.mbedtls_version = MBEDTLS_VERSION_NUMBER;
  c.ctx_size = sizeof c.sha;
  c.total = u->total;
  c.held = u->held;
  mbedtls_sha256_clone(&c.sha, &u->sha);
  char path[4400];
  checkpoint_path(a, u->hex, path, sizeof path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || write(fd, &c, sizeof c) != (ssize_t)sizeof c)
    DFNET_LOGW(ARTIFACT_SUBSYS, tag(u->hex), "cannot save the hash checkpoint %s: %s", path,
               fd < 0 ? strerror(errno) : "short write");
  if (fd >= 0)
    close(fd);
}

/* The checkpoint of the upload `hex` of `total` bytes whose .part holds part_size bytes:
 * true when there is one this build can take up (it covers 1 .. part_size bytes). */
static bool checkpoint_load(const agent_t *a, const char *hex, uint64_t total, uint64_t part_size,
                            hash_checkpoint_t *c) {
  char path[4400];
  checkpoint_path(a, hex, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, c, sizeof *c);
  close(fd);
  return n == (ssize_t)sizeof *c && memcmp(c->magic, CHECKPOINT_MAGIC, sizeof c->magic) == 0 &&
         c->mbedtls_version == MBEDTLS_VERSION_NUMBER && c->ctx_size == sizeof c->sha &&
         c->total == total && c->held > 0 && c->held <= part_size;
}

/* Where an upload without a record is taken up, its .part holding part_size bytes: the
 * checkpoint's offset, else what can be hashed again (at most REHASH_MAX). */
static uint64_t resume_offset(const agent_t *a, const char *hex, uint64_t total,
                              uint64_t part_size) {
  hash_checkpoint_t c;
  if (checkpoint_load(a, hex, total, part_size, &c))
    return c.held;
  return part_size > REHASH_MAX ? REHASH_MAX : part_size;
}

bool agent__artifact_method(const char *method) {
  return strncmp(method, METHOD_PREFIX, sizeof METHOD_PREFIX - 1) == 0;
}

/* ---- replies ---------------------------------------------------------------------------- */

/* Answer the call OK with an ArtifactStatus in the bulk. */
static void reply_artifact_status(agent_t *a, dfnet_session_id_t session, uint64_t id,
                                  uint64_t held, uint64_t total, bool complete) {
  if (session == 0 || session != a->session)
    return;
  const dfnet_lab_ArtifactStatus msg = {
      .size_held = held, .total_size = total, .complete = complete};
  uint8_t buf[dfnet_lab_ArtifactStatus_size];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  if (!pb_encode(&os, dfnet_lab_ArtifactStatus_fields, &msg)) {
    agent__reply_call_status(a, session, id, DFNET_STATUS_INTERNAL, PB_GET_ERROR(&os));
    return;
  }
  dfnet_envelope_t *env = dfnet_envelope_reuse(a->scratch, id, dfnet_v1_Envelope_reply_tag);
  env->pb.msg.reply = (dfnet_v1_Reply){.code = dfnet_v1_Code_OK, .end_of_stream = true};
  env->bulk = (dfnet_bytes_t){buf, os.bytes_written};
  /* small, and it ends the call: it passes a full send queue */
  dfnet_status_t st = dfnet_transport_send(a->t, session, env, DFNET_SEND_PAST_HWM);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(ARTIFACT_SUBSYS, a->host_name, "cannot answer call %llu: %s", (unsigned long long)id,
               dfnet_status_str(st));
}

/* A failed call's answer: its status and one line, also returned for the log. */
typedef struct artifact_err {
  dfnet_status_t code;
  char message[600];
} artifact_err_t;

static dfnet_status_t fail(artifact_err_t *e, dfnet_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static dfnet_status_t fail(artifact_err_t *e, dfnet_status_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  e->code = code;
  return code;
}

/* A failed file operation: ENOSPC and EDQUOT are the disk being full (RESOURCE_EXHAUSTED),
 * anything else INTERNAL (artifact.proto), with the errno text. */
static dfnet_status_t fail_errno(artifact_err_t *e, int err, const char *what, const char *path) {
  if (err == ENOSPC || err == EDQUOT)
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "the artifact cache's disk is full: %s %s: %s",
                what, path, strerror(err));
  return fail(e, DFNET_STATUS_INTERNAL, "%s %s: %s (errno %d)", what, path, strerror(err), err);
}

/* ---- the upload records ----------------------------------------------------------------- */

static agent_upload_t *upload_find(agent_t *a, const uint8_t digest[32]) {
  agent_upload_t *u = NULL;
  HASH_FIND(hh, a->uploads, digest, 32, u);
  return u;
}

/* Forget a record; with unlink_part, delete its .part too (the upload starts over). */
static void upload_drop(agent_t *a, agent_upload_t *u, bool unlink_part) {
  HASH_DEL(a->uploads, u);
  if (unlink_part) {
    char path[4400];
    artifact_path(a, u->hex, true, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
      DFNET_LOGW(ARTIFACT_SUBSYS, tag(u->hex), "cannot delete %s: %s", path, strerror(errno));
    checkpoint_remove(a, u->hex);
  }
  if (u->fd >= 0)
    close(u->fd);
  mbedtls_sha256_free(&u->sha);
  free(u);
}

void agent__artifacts_free(agent_t *a) {
  agent_upload_t *u, *tmp;
  HASH_ITER(hh, a->uploads, u, tmp) {
    upload_drop(a, u, false);
  }
}

/* ---- the cache's bound ------------------------------------------------------------------ */

/* A file of the cache the bound may delete. */
typedef struct cache_file {
  char name[DFNET_PACKAGE_DIGEST_HEX_SIZE + 5]; /* "<hex>" or "<hex>.part" */
  uint64_t size;
  struct timespec mtime;
} cache_file_t;

static bool is_hex64(const char *s) {
  for (int i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

static int by_mtime(const void *pa, const void *pb) {
  const cache_file_t *x = pa, *y = pb;
  if (x->mtime.tv_sec != y->mtime.tv_sec)
    return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
  return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : x->mtime.tv_nsec > y->mtime.tv_nsec;
}

/* Make room for the upload u, whose record was just made (its .part may hold bytes, after a
 * restart): the cache's files and the bytes u still needs must fit --artifact-cache-mb. The least
 * recently used complete artifacts and the .part files no upload record holds (abandoned uploads,
 * or from before a restart) are deleted, oldest first, until they do; the .part of an upload under
 * way is never deleted. Then the disk must have room for it. Errors: RESOURCE_EXHAUSTED (it cannot
 * fit: the message says how much the uploads under way hold, or what the disk has free), INTERNAL
 * (the directory cannot be read). */
static dfnet_status_t make_room(agent_t *a, const agent_upload_t *u, artifact_err_t *e) {
  dfnet_dir_names_t names;
  char why[256];
  if (dfnet_dir_list(a->artifact_dir, &names, why, sizeof why) != DFNET_STATUS_OK)
    return fail(e, DFNET_STATUS_INTERNAL, "reading %s: %s", a->artifact_dir, why);
  cache_file_t *files = calloc(names.count + 1, sizeof *files);
  if (files == NULL) {
    dfnet_dir_names_free(&names);
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  size_t n = 0;
  uint64_t used = 0, busy = 0; /* all files; the .parts of uploads under way */
  for (size_t i = 0; i < names.count; i++) {
    const char *name = names.names[i];
    size_t len = strlen(name);
    bool part = len == 69 && strcmp(name + 64, ".part") == 0;
    char path[4400];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", a->artifact_dir, name);
    if ((len != 64 && !part) || !is_hex64(name) || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
      continue; /* not ours */
    used += (uint64_t)sb.st_size;
    uint8_t digest[32];
    bool recorded = false;
    if (part) {
      char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
      snprintf(hex, sizeof hex, "%.64s", name);
      recorded = dfnet_package_digest_parse(hex, digest) == DFNET_STATUS_OK &&
                 upload_find(a, digest) != NULL;
    }
    if (recorded) {
      busy += (uint64_t)sb.st_size;
      continue;
    }
    snprintf(files[n].name, sizeof files[n].name, "%s", name);
    files[n].size = (uint64_t)sb.st_size;
    files[n].mtime = sb.st_mtim;
    n++;
  }
  dfnet_dir_names_free(&names);
  qsort(files, n, sizeof *files, by_mtime);
  uint64_t limit = cache_limit(a), need = u->total - u->held;
  for (size_t i = 0; i < n && used + need > limit; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", a->artifact_dir, files[i].name);
    if (unlink(path) != 0) {
      DFNET_LOGW(ARTIFACT_SUBSYS, tag(files[i].name), "cannot evict %s: %s", path, strerror(errno));
      continue;
    }
    used -= files[i].size;
    if (strlen(files[i].name) > 64) /* a .part: its checkpoint goes with it */
      checkpoint_remove(a, files[i].name);
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(files[i].name),
               "evicted %s (%llu bytes, least recently used) to make room", files[i].name,
               (unsigned long long)files[i].size);
  }
  free(files);
  if (used + need > limit)
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED,
                "the artifact cache (%u MiB, --artifact-cache-mb) cannot take %llu bytes more: "
                "uploads under way hold %llu bytes",
                a->opt.artifact_cache_mb, (unsigned long long)need, (unsigned long long)busy);
  struct statvfs vfs;
  if (statvfs(a->artifact_dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize < need)
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED,
                "the artifact cache's disk has %llu bytes free, the artifact needs %llu more",
                (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize,
                (unsigned long long)need);
  return DFNET_STATUS_OK;
}

/* Hash the first `held` bytes of u's .part into u->sha (a record made for a .part that was
 * there before it). */
static dfnet_status_t upload_rehash(agent_upload_t *u, const char *path, artifact_err_t *e) {
  uint8_t *buf = malloc(REHASH_CHUNK);
  if (buf == NULL)
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  dfnet_status_t st = DFNET_STATUS_OK;
  for (uint64_t off = 0; off < u->held && st == DFNET_STATUS_OK;) {
    size_t want = u->held - off < REHASH_CHUNK ? (size_t)(u->held - off) : REHASH_CHUNK;
    ssize_t n = pread(u->fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      st = n < 0 ? fail_errno(e, errno, "reading", path)
                 : fail(e, DFNET_STATUS_INTERNAL, "%s ended at %llu bytes while hashing it", path,
                        (unsigned long long)off);
    else if (mbedtls_sha256_update_ret(&u->sha, buf, (size_t)n) != 0)
      st = fail(e, DFNET_STATUS_INTERNAL, "SHA-256 update failed");
    else
      off += (uint64_t)n;
  }
  free(buf);
  return st;
}

/* The record of the upload of `digest` with this total size, made (and the .part opened,
 * created, and hashed when it holds bytes) when there is none. A record or a .part of
 * another total size, or a .part longer than the total, is dropped first: the upload
 * starts over. On OK *out is the record. */
static dfnet_status_t upload_get(agent_t *a, const uint8_t digest[32], uint64_t total,
                                 agent_upload_t **out, artifact_err_t *e) {
  agent_upload_t *u = upload_find(a, digest);
  if (u != NULL && u->total != total) {
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(u->hex),
               "upload of %llu bytes dropped at %llu: a Put for %llu bytes starts it over",
               (unsigned long long)u->total, (unsigned long long)u->held,
               (unsigned long long)total);
    upload_drop(a, u, true);
    u = NULL;
  }
  if (u != NULL) {
    *out = u;
    return DFNET_STATUS_OK;
  }
  if (HASH_COUNT(a->uploads) >= UPLOADS_MAX) { /* forget the least recently used record */
    agent_upload_t *lru = NULL, *it, *tmp;
    HASH_ITER(hh, a->uploads, it, tmp) {
      if (lru == NULL || it->used_ms < lru->used_ms)
        lru = it;
    }
    upload_drop(a, lru, false); /* its .part stays: hashed again if it goes on */
  }
  if ((u = calloc(1, sizeof *u)) == NULL)
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  memcpy(u->digest, digest, 32);
  dfnet_package_digest_hex(digest, u->hex);
  u->total = total;
  u->logged_at = UINT64_MAX;
  u->started_ms = u->used_ms = now_ms();
  mbedtls_sha256_init(&u->sha);
  char path[4400];
  artifact_path(a, u->hex, true, path, sizeof path);
  struct stat sb;
  dfnet_status_t st = DFNET_STATUS_OK;
  u->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (u->fd < 0 || fstat(u->fd, &sb) != 0)
    st = fail_errno(e, errno, "opening", path);
  else if (!S_ISREG(sb.st_mode))
    st = fail(e, DFNET_STATUS_INTERNAL, "%s is not a regular file", path);
  else if (mbedtls_sha256_starts_ret(&u->sha, 0) != 0)
    st = fail(e, DFNET_STATUS_INTERNAL, "SHA-256 start failed");
  if (st == DFNET_STATUS_OK && (uint64_t)sb.st_size > total && ftruncate(u->fd, 0) != 0)
    st = fail_errno(e, errno, "truncating", path);
  hash_checkpoint_t c;
  bool from_checkpoint = false;
  if (st == DFNET_STATUS_OK && (uint64_t)sb.st_size <= total &&
      checkpoint_load(a, u->hex, total, (uint64_t)sb.st_size, &c) &&
      ftruncate(u->fd, (off_t)c.held) == 0) {
    u->held = c.held; /* taken up where its hash was saved: nothing to hash again */
    mbedtls_sha256_clone(&u->sha, &c.sha);
    from_checkpoint = true;
  } else if (st == DFNET_STATUS_OK && (uint64_t)sb.st_size <= total) {
    u->held = (uint64_t)sb.st_size;
    /* hashing blocks the loop (~4 s per GiB with mbedTLS here): keep it bounded */
    if (u->held > REHASH_MAX && ftruncate(u->fd, (off_t)REHASH_MAX) == 0)
      u->held = REHASH_MAX;
    st = upload_rehash(u, path, e);
  }
  if (st != DFNET_STATUS_OK) {
    if (u->fd >= 0)
      close(u->fd);
    mbedtls_sha256_free(&u->sha);
    free(u);
    return st;
  }
  u->first_held = u->held;
  if (u->held > 0 && from_checkpoint)
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(u->hex),
               "upload of %llu bytes resumes at offset %llu (from its hash checkpoint)",
               (unsigned long long)total, (unsigned long long)u->held);
  else if (u->held > 0)
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(u->hex),
               "upload of %llu bytes resumes at offset %llu (the .part's bytes hashed in %llu ms)",
               (unsigned long long)total, (unsigned long long)u->held,
               (unsigned long long)(now_ms() - u->started_ms));
  HASH_ADD(hh, a->uploads, digest, 32, u);
  if (make_room(a, u, e) != DFNET_STATUS_OK) {
    DFNET_LOGW(ARTIFACT_SUBSYS, tag(u->hex), "upload of %llu bytes refused: %s",
               (unsigned long long)total, e->message);
    upload_drop(a, u, true);
    return e->code;
  }
  *out = u;
  return DFNET_STATUS_OK;
}

/* ---- Stat and Put ------------------------------------------------------------------------ */

/* The checks every method makes: a 32-byte digest, a size 1 .. the cache's bound. */
static dfnet_status_t check_artifact(const agent_t *a, size_t digest_len, uint64_t total,
                                     artifact_err_t *e) {
  if (digest_len != 32)
    return fail(e, DFNET_STATUS_INVALID_ARGUMENT, "sha256 has %zu bytes, not 32", digest_len);
  if (total == 0)
    return fail(e, DFNET_STATUS_INVALID_ARGUMENT, "total_size is 0: an artifact has bytes");
  if (total > cache_limit(a))
    return fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED,
                "an artifact of %llu bytes is larger than the artifact cache may hold (%u MiB, "
                "--artifact-cache-mb)",
                (unsigned long long)total, a->opt.artifact_cache_mb);
  return DFNET_STATUS_OK;
}

/* payload decoded into req, the ArtifactCache request `name` of nanopb `fields`. */
static dfnet_status_t request_decode(dfnet_bytes_t payload, const pb_msgdesc_t *fields, void *req,
                                     const char *name, artifact_err_t *e) {
  pb_istream_t is = pb_istream_from_buffer(payload.data, payload.size);
  if (!pb_decode(&is, fields, req))
    return fail(e, DFNET_STATUS_INVALID_ARGUMENT, "not an %s: %s", name, PB_GET_ERROR(&is));
  return DFNET_STATUS_OK;
}

/* The complete artifact `hex`: true with its size when it is there (its mtime touched: it
 * was used). */
static bool complete_size(const agent_t *a, const char *hex, uint64_t *size) {
  char path[4400];
  struct stat sb;
  artifact_path(a, hex, false, path, sizeof path);
  if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
    return false;
  (void)utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
  *size = (uint64_t)sb.st_size;
  return true;
}

static dfnet_status_t artifact_stat(agent_t *a, dfnet_bytes_t payload, uint64_t *held,
                                    uint64_t *total, bool *complete, artifact_err_t *e) {
  dfnet_lab_ArtifactStatRequest req = dfnet_lab_ArtifactStatRequest_init_zero;
  if (request_decode(payload, dfnet_lab_ArtifactStatRequest_fields, &req, "ArtifactStatRequest",
                     e) != DFNET_STATUS_OK ||
      check_artifact(a, req.sha256.size, req.total_size, e) != DFNET_STATUS_OK)
    return e->code;
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE], path[4400];
  dfnet_package_digest_hex(req.sha256.bytes, hex);
  *total = req.total_size;
  *complete = complete_size(a, hex, held);
  if (*complete)
    return DFNET_STATUS_OK;
  agent_upload_t *u = upload_find(a, req.sha256.bytes);
  struct stat sb;
  artifact_path(a, hex, true, path, sizeof path);
  *held = 0;
  if (u != NULL && u->total != req.total_size) {
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(hex), "upload of %llu bytes dropped: asked for %llu bytes",
               (unsigned long long)u->total, (unsigned long long)req.total_size);
    upload_drop(a, u, true);
  } else if (u != NULL) {
    *held = u->held;
    if (u->held > 0 && u->logged_at != u->held) { /* a client takes it up again: once */
      u->logged_at = u->held;
      DFNET_LOGI(ARTIFACT_SUBSYS, tag(hex), "upload of %llu bytes resumes at offset %llu",
                 (unsigned long long)u->total, (unsigned long long)u->held);
    }
  } else if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
    if ((uint64_t)sb.st_size > req.total_size) {
      DFNET_LOGI(ARTIFACT_SUBSYS, tag(hex), "dropped a .part of %llu bytes: asked for %llu bytes",
                 (unsigned long long)sb.st_size, (unsigned long long)req.total_size);
      if (unlink(path) != 0)
        return fail_errno(e, errno, "deleting", path);
      checkpoint_remove(a, hex);
    } else {
      *held = resume_offset(a, hex, req.total_size, (uint64_t)sb.st_size);
    }
  }
  return DFNET_STATUS_OK;
}

/* nanopb callback of ArtifactPutRequest.data: keep a view of the bytes in the payload. */
static bool data_view(pb_istream_t *stream, const pb_field_t *field, void **arg) {
  (void)field;
  dfnet_bytes_t *view = *arg;
  view->data = stream->state; /* a buffer stream's state is its read position */
  view->size = stream->bytes_left;
  return pb_read(stream, NULL, stream->bytes_left);
}

/* The last byte is in: finish the hash; equal to the digest, publish the file under it
 * (fsync, rename, the directory's fsync); else delete it. The record goes either way. */
static dfnet_status_t upload_finish(agent_t *a, agent_upload_t *u, artifact_err_t *e) {
  uint8_t got[32];
  char part[4400], done[4400];
  artifact_path(a, u->hex, true, part, sizeof part);
  artifact_path(a, u->hex, false, done, sizeof done);
  double secs = (double)(now_ms() - u->started_ms) / 1000.0;
  dfnet_status_t st = DFNET_STATUS_OK;
  if (mbedtls_sha256_finish_ret(&u->sha, got) != 0)
    st = fail(e, DFNET_STATUS_INTERNAL, "SHA-256 finish failed");
  else if (memcmp(got, u->digest, 32) != 0)
    st = fail(e, DFNET_STATUS_DATA_LOSS, "SHA-256 of the %llu bytes received does not match",
              (unsigned long long)u->total);
  else if (fsync(u->fd) != 0)
    st = fail_errno(e, errno, "fsync of", part);
  else if (rename(part, done) != 0)
    st = fail_errno(e, errno, "renaming", part);
  if (st == DFNET_STATUS_OK) {
    dfnet_file_sync_dir(done);
    checkpoint_remove(a, u->hex);
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(u->hex),
               "complete: %llu bytes verified (taken up at offset %llu %.1f s ago)",
               (unsigned long long)u->total, (unsigned long long)u->first_held, secs);
    upload_drop(a, u, false);
    return st;
  }
  DFNET_LOGW(ARTIFACT_SUBSYS, tag(u->hex), "upload of %llu bytes discarded: %s",
             (unsigned long long)u->total, e->message);
  upload_drop(a, u, true);
  return st;
}

/* Append data at u->held. A failed write leaves the .part as it was (truncated back). */
static dfnet_status_t upload_append(agent_t *a, agent_upload_t *u, dfnet_bytes_t data,
                                    artifact_err_t *e) {
  char path[4400];
  artifact_path(a, u->hex, true, path, sizeof path);
  for (size_t done = 0; done < data.size;) {
    ssize_t n = pwrite(u->fd, data.data + done, data.size - done, (off_t)(u->held + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int err = n < 0 ? errno : ENOSPC;
      if (ftruncate(u->fd, (off_t)u->held) != 0)
        DFNET_LOGW(ARTIFACT_SUBSYS, tag(u->hex), "cannot truncate %s back: %s", path,
                   strerror(errno));
      return fail_errno(e, err, "writing", path);
    }
    done += (size_t)n;
  }
  if (mbedtls_sha256_update_ret(&u->sha, data.data, data.size) != 0)
    return fail(e, DFNET_STATUS_INTERNAL, "SHA-256 update failed");
  uint64_t step = u->held / WRITEBACK_STEP;
  u->held += data.size;
  if (u->held / WRITEBACK_STEP != step && u->held < u->total) {
    /* start the writeback now (the final fsync is short), and save where the hash is */
    (void)sync_file_range(u->fd, (off64_t)(step * WRITEBACK_STEP), WRITEBACK_STEP,
                          SYNC_FILE_RANGE_WRITE);
    checkpoint_save(a, u);
  }
  u->used_ms = now_ms();
  return DFNET_STATUS_OK;
}

static dfnet_status_t artifact_put(agent_t *a, dfnet_bytes_t payload, uint64_t *held,
                                   uint64_t *total, bool *complete, artifact_err_t *e) {
  dfnet_lab_ArtifactPutRequest req = dfnet_lab_ArtifactPutRequest_init_zero;
  dfnet_bytes_t data = {NULL, 0};
  req.data.funcs.decode = data_view;
  req.data.arg = &data;
  if (request_decode(payload, dfnet_lab_ArtifactPutRequest_fields, &req, "ArtifactPutRequest", e) !=
          DFNET_STATUS_OK ||
      check_artifact(a, req.sha256.size, req.total_size, e) != DFNET_STATUS_OK)
    return e->code;
  if (data.size == 0 || data.size > CHUNK_MAX)
    return fail(e, DFNET_STATUS_INVALID_ARGUMENT, "a chunk has 1 byte to 4 MiB, not %zu",
                data.size);
  if (req.offset > req.total_size || data.size > req.total_size - req.offset)
    return fail(e, DFNET_STATUS_INVALID_ARGUMENT,
                "%zu bytes at offset %llu go past total_size %llu", data.size,
                (unsigned long long)req.offset, (unsigned long long)req.total_size);
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
  dfnet_package_digest_hex(req.sha256.bytes, hex);
  *total = req.total_size;
  if ((*complete = complete_size(a, hex, held)))
    return DFNET_STATUS_OK; /* complete already: nothing changes */
  agent_upload_t *u = NULL;
  if (upload_get(a, req.sha256.bytes, req.total_size, &u, e) != DFNET_STATUS_OK)
    return e->code;
  if (req.offset != u->held)
    return fail(e, DFNET_STATUS_FAILED_PRECONDITION, "expected offset %llu",
                (unsigned long long)u->held);
  if (u->held == 0)
    DFNET_LOGI(ARTIFACT_SUBSYS, tag(hex), "upload of %llu bytes starts",
               (unsigned long long)u->total);
  if (upload_append(a, u, data, e) != DFNET_STATUS_OK) {
    DFNET_LOGW(ARTIFACT_SUBSYS, tag(hex), "upload of %llu bytes stopped at %llu: %s",
               (unsigned long long)u->total, (unsigned long long)u->held, e->message);
    return e->code;
  }
  *held = u->held;
  if (u->held < u->total)
    return DFNET_STATUS_OK;
  if (upload_finish(a, u, e) != DFNET_STATUS_OK)
    return e->code;
  *complete = true;
  return DFNET_STATUS_OK;
}

void agent__artifact_open(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env) {
  const dfnet_v1_ArtifactOpen *m = &env->pb.msg.artifact_open;
  dfnet_envelope_t *reply =
      dfnet_envelope_reuse(a->scratch, env->pb.id, dfnet_v1_Envelope_status_tag);
  dfnet_v1_Status *s = &reply->pb.msg.status;
  int fd = -1;
  if (m->sha256.size != 32) {
    s->code = (dfnet_v1_Code)DFNET_STATUS_INVALID_ARGUMENT;
    snprintf(s->message, sizeof s->message, "sha256 has %u bytes, not 32",
             (unsigned)m->sha256.size);
  } else {
    char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE], path[4400];
    dfnet_package_digest_hex(m->sha256.bytes, hex);
    artifact_path(a, hex, m->partial, path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      s->code = (dfnet_v1_Code)DFNET_STATUS_OK;
      if (!m->partial) /* a use: the least recently used go first */
        (void)futimens(fd, NULL);
    } else {
      int err = errno;
      s->code = (dfnet_v1_Code)(err == ENOENT ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_INTERNAL);
      snprintf(s->message, sizeof s->message, "artifact %s%s: %s", hex, m->partial ? ".part" : "",
               strerror(err));
      if (err != ENOENT)
        DFNET_LOGW(ARTIFACT_SUBSYS, tag(hex), "a driver cannot have %s: %s", path, strerror(err));
    }
  }
  dfnet_status_t st = fd >= 0 ? dfnet_supervisor_send_fds(a->sup, dh_id, reply, &fd, 1)
                              : dfnet_supervisor_send(a->sup, dh_id, reply);
  if (fd >= 0)
    close(fd); /* the supervisor sends its own copy */
  if (st != DFNET_STATUS_OK)
    DFNET_LOGD(ARTIFACT_SUBSYS, NULL, "cannot answer driver host %llu's ArtifactOpen: %s",
               (unsigned long long)dh_id, dfnet_status_str(st));
}

void agent__artifact_call(agent_t *a, dfnet_session_id_t session, uint64_t id,
                          const dfnet_v1_Call *call, dfnet_bytes_t payload) {
  const char *name = call->method + sizeof METHOD_PREFIX - 1;
  artifact_err_t e = {DFNET_STATUS_OK, ""};
  uint64_t held = 0, total = 0;
  bool complete = false;
  dfnet_status_t st;
  if (strcmp(name, "Stat") == 0)
    st = artifact_stat(a, payload, &held, &total, &complete, &e);
  else if (strcmp(name, "Put") == 0)
    st = artifact_put(a, payload, &held, &total, &complete, &e);
  else
    st = fail(&e, DFNET_STATUS_UNIMPLEMENTED, "dfnet.lab.ArtifactCache has no method %s", name);
  if (st == DFNET_STATUS_OK)
    reply_artifact_status(a, session, id, held, total, complete);
  else
    agent__reply_call_status(a, session, id, st, e.message);
}
