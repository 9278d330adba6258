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
 *
 * This file: the method dispatch, the upload records, Stat and Put, ArtifactOpen. The cache's
 * bound (the eviction): artifact_cache.c; the hash checkpoints: artifact_checkpoint.c; what
 * they share: artifacts_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "dfnet/lab/artifact.pb.h"
#include "host/agent/agent.h"
#include "host/agent/artifacts_internal.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define METHOD_PREFIX "/dfnet.lab.ArtifactCache/"
#define UPLOADS_MAX 16                 /* uploads whose record (and hash context) is kept */
#define CHUNK_MAX (4u * 1024u * 1024u) /* ArtifactPutRequest.data: 1 byte .. 4 MiB */
#define REHASH_CHUNK (1024u * 1024u)   /* reads when hashing a .part without a record */
#define REHASH_MAX (1024ull << 20)     /* a longer .part is cut to this before it is hashed */
#define WRITEBACK_STEP (32u << 20)     /* start writing back every this many bytes appended */
#define SHORT_HEX 12                   /* digits of the digest in log lines */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *agent__artifact_tag(const char *hex) {
  static char buf[SHORT_HEX + 1];
  snprintf(buf, sizeof buf, "%.*s", SHORT_HEX, hex);
  return buf;
}

static void artifact_path(const agent_t *a, const char *hex, bool part, char *out, size_t size) {
  snprintf(out, size, "%s/%s%s", a->artifact_dir, hex, part ? ".part" : "");
}

/* Where an upload without a record is taken up, its .part holding part_size bytes: the
 * checkpoint's offset, else what can be hashed again (at most REHASH_MAX). */
static uint64_t resume_offset(const agent_t *a, const char *hex, uint64_t total,
                              uint64_t part_size) {
  hash_checkpoint_t c;
  if (agent__artifact_checkpoint_load(a, hex, total, part_size, &c))
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

dfnet_status_t agent__artifact_fail(artifact_err_t *e, dfnet_status_t code, const char *fmt, ...) {
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
    return agent__artifact_fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED,
                                "the artifact cache's disk is full: %s %s: %s", what, path,
                                strerror(err));
  return agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "%s %s: %s (errno %d)", what, path,
                              strerror(err), err);
}

/* ---- the upload records ----------------------------------------------------------------- */

agent_upload_t *agent__artifact_upload_find(agent_t *a, const uint8_t digest[32]) {
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
      DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex), "cannot delete %s: %s", path,
                 strerror(errno));
    agent__artifact_checkpoint_remove(a, u->hex);
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

/* Hash the first `held` bytes of u's .part into u->sha (a record made for a .part that was
 * there before it). */
static dfnet_status_t upload_rehash(agent_upload_t *u, const char *path, artifact_err_t *e) {
  uint8_t *buf = malloc(REHASH_CHUNK);
  if (buf == NULL)
    return agent__artifact_fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  dfnet_status_t st = DFNET_STATUS_OK;
  for (uint64_t off = 0; off < u->held && st == DFNET_STATUS_OK;) {
    size_t want = u->held - off < REHASH_CHUNK ? (size_t)(u->held - off) : REHASH_CHUNK;
    ssize_t n = pread(u->fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      st = n < 0 ? fail_errno(e, errno, "reading", path)
                 : agent__artifact_fail(e, DFNET_STATUS_INTERNAL,
                                        "%s ended at %llu bytes while hashing it", path,
                                        (unsigned long long)off);
    else if (mbedtls_sha256_update_ret(&u->sha, buf, (size_t)n) != 0)
      st = agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "SHA-256 update failed");
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
  agent_upload_t *u = agent__artifact_upload_find(a, digest);
  if (u != NULL && u->total != total) {
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex),
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
    return agent__artifact_fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
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
    st = agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "%s is not a regular file", path);
  else if (mbedtls_sha256_starts_ret(&u->sha, 0) != 0)
    st = agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "SHA-256 start failed");
  if (st == DFNET_STATUS_OK && (uint64_t)sb.st_size > total && ftruncate(u->fd, 0) != 0)
    st = fail_errno(e, errno, "truncating", path);
  hash_checkpoint_t c;
  bool from_checkpoint = false;
  if (st == DFNET_STATUS_OK && (uint64_t)sb.st_size <= total &&
      agent__artifact_checkpoint_load(a, u->hex, total, (uint64_t)sb.st_size, &c) &&
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
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex),
               "upload of %llu bytes resumes at offset %llu (from its hash checkpoint)",
               (unsigned long long)total, (unsigned long long)u->held);
  else if (u->held > 0)
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex),
               "upload of %llu bytes resumes at offset %llu (the .part's bytes hashed in %llu ms)",
               (unsigned long long)total, (unsigned long long)u->held,
               (unsigned long long)(now_ms() - u->started_ms));
  HASH_ADD(hh, a->uploads, digest, 32, u);
  if (agent__artifact_make_room(a, u, e) != DFNET_STATUS_OK) {
    DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex), "upload of %llu bytes refused: %s",
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
    return agent__artifact_fail(e, DFNET_STATUS_INVALID_ARGUMENT, "sha256 has %zu bytes, not 32",
                                digest_len);
  if (total == 0)
    return agent__artifact_fail(e, DFNET_STATUS_INVALID_ARGUMENT,
                                "total_size is 0: an artifact has bytes");
  if (total > agent__artifact_cache_limit(a))
    return agent__artifact_fail(
        e, DFNET_STATUS_RESOURCE_EXHAUSTED,
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
    return agent__artifact_fail(e, DFNET_STATUS_INVALID_ARGUMENT, "not an %s: %s", name,
                                PB_GET_ERROR(&is));
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
  agent_upload_t *u = agent__artifact_upload_find(a, req.sha256.bytes);
  struct stat sb;
  artifact_path(a, hex, true, path, sizeof path);
  *held = 0;
  if (u != NULL && u->total != req.total_size) {
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(hex),
               "upload of %llu bytes dropped: asked for %llu bytes", (unsigned long long)u->total,
               (unsigned long long)req.total_size);
    upload_drop(a, u, true);
  } else if (u != NULL) {
    *held = u->held;
    if (u->held > 0 && u->logged_at != u->held) { /* a client takes it up again: once */
      u->logged_at = u->held;
      DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(hex),
                 "upload of %llu bytes resumes at offset %llu", (unsigned long long)u->total,
                 (unsigned long long)u->held);
    }
  } else if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
    if ((uint64_t)sb.st_size > req.total_size) {
      DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(hex),
                 "dropped a .part of %llu bytes: asked for %llu bytes",
                 (unsigned long long)sb.st_size, (unsigned long long)req.total_size);
      if (unlink(path) != 0)
        return fail_errno(e, errno, "deleting", path);
      agent__artifact_checkpoint_remove(a, hex);
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
    st = agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "SHA-256 finish failed");
  else if (memcmp(got, u->digest, 32) != 0)
    st = agent__artifact_fail(e, DFNET_STATUS_DATA_LOSS,
                              "SHA-256 of the %llu bytes received does not match",
                              (unsigned long long)u->total);
  else if (fsync(u->fd) != 0)
    st = fail_errno(e, errno, "fsync of", part);
  else if (rename(part, done) != 0)
    st = fail_errno(e, errno, "renaming", part);
  if (st == DFNET_STATUS_OK) {
    dfnet_file_sync_dir(done);
    agent__artifact_checkpoint_remove(a, u->hex);
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex),
               "complete: %llu bytes verified (taken up at offset %llu %.1f s ago)",
               (unsigned long long)u->total, (unsigned long long)u->first_held, secs);
    upload_drop(a, u, false);
    return st;
  }
  DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex), "upload of %llu bytes discarded: %s",
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
        DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex), "cannot truncate %s back: %s",
                   path, strerror(errno));
      return fail_errno(e, err, "writing", path);
    }
    done += (size_t)n;
  }
  if (mbedtls_sha256_update_ret(&u->sha, data.data, data.size) != 0)
    return agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "SHA-256 update failed");
  uint64_t step = u->held / WRITEBACK_STEP;
  u->held += data.size;
  if (u->held / WRITEBACK_STEP != step && u->held < u->total) {
    /* start the writeback now (the final fsync is short), and save where the hash is */
    (void)sync_file_range(u->fd, (off64_t)(step * WRITEBACK_STEP), WRITEBACK_STEP,
                          SYNC_FILE_RANGE_WRITE);
    agent__artifact_checkpoint_save(a, u);
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
    return agent__artifact_fail(e, DFNET_STATUS_INVALID_ARGUMENT,
                                "a chunk has 1 byte to 4 MiB, not %zu", data.size);
  if (req.offset > req.total_size || data.size > req.total_size - req.offset)
    return agent__artifact_fail(e, DFNET_STATUS_INVALID_ARGUMENT,
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
    return agent__artifact_fail(e, DFNET_STATUS_FAILED_PRECONDITION, "expected offset %llu",
                                (unsigned long long)u->held);
  if (u->held == 0)
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(hex), "upload of %llu bytes starts",
               (unsigned long long)u->total);
  if (upload_append(a, u, data, e) != DFNET_STATUS_OK) {
    DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(hex),
               "upload of %llu bytes stopped at %llu: %s", (unsigned long long)u->total,
               (unsigned long long)u->held, e->message);
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
        DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(hex), "a driver cannot have %s: %s", path,
                   strerror(err));
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
    st = agent__artifact_fail(&e, DFNET_STATUS_UNIMPLEMENTED,
                              "dfnet.lab.ArtifactCache has no method %s", name);
  if (st == DFNET_STATUS_OK)
    reply_artifact_status(a, session, id, held, total, complete);
  else
    agent__reply_call_status(a, session, id, st, e.message);
}
