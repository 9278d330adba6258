/* dfnet-host: what the artifact cache's files share (not for the rest of the agent: agent.h
 * declares the cache's interface, agent__artifact_*). docs/architecture.md "Artifacts".
 *
 * Files: artifacts.c (the method dispatch, the upload records, Stat and Put, ArtifactOpen;
 * the layout, resume and eviction are described at its top), artifact_cache.c (the cache's
 * bound: least recently used eviction), artifact_checkpoint.c (the hash checkpoints,
 * "<hex>.sha").
 *
 * Thread: everything here runs on the agent's service thread (agent.h), one call at a time.
 */
#ifndef DFNET_HOST_AGENT_ARTIFACTS_INTERNAL_H
#define DFNET_HOST_AGENT_ARTIFACTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/sha256.h>
#include <uthash.h>

#include "dfnet/status.h"
#include "host/agent/agent.h"
#include "lib/package.h"

#define ARTIFACT_SUBSYS "artifact"

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

/* A failed call's answer: its status and one line, also returned for the log. */
typedef struct artifact_err {
  dfnet_status_t code;
  char message[600];
} artifact_err_t;

/* ---- artifacts.c ---- */

/* A log line's subject: the first SHORT_HEX (12) digits of a digest (or of a cache file's name).
 * Returns a static buffer, valid until the next call: one at a time, the service thread's. */
const char *agent__artifact_tag(const char *hex);

/* Fill *e with code and the formatted line; returns code. */
dfnet_status_t agent__artifact_fail(artifact_err_t *e, dfnet_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The record of the upload of `digest` (a->uploads), or NULL: borrowed, a->uploads owns it. */
agent_upload_t *agent__artifact_upload_find(agent_t *a, const uint8_t digest[32]);

/* ---- the cache's bound (artifact_cache.c) ---- */

/* The cache's bound in bytes: --artifact-cache-mb. */
uint64_t agent__artifact_cache_limit(const agent_t *a);

/* Make room for the upload u, whose record was just made (its .part may hold bytes, after a
 * restart): the cache's files and the bytes u still needs must fit --artifact-cache-mb. The least
 * recently used complete artifacts and the .part files no upload record holds (abandoned uploads,
 * or from before a restart) are deleted (with their checkpoints), oldest first, until they do;
 * the .part of an upload under way is never deleted. Then the disk must have room for it.
 * Errors, in *e: RESOURCE_EXHAUSTED (it cannot fit: the message says how much the uploads under
 * way hold, or what the disk has free; out of memory), INTERNAL (the directory cannot be read). */
dfnet_status_t agent__artifact_make_room(agent_t *a, const agent_upload_t *u, artifact_err_t *e);

/* ---- hash checkpoints (artifact_checkpoint.c) ---- */

/* "<hex>.sha": the SHA-256 state of the first `held` bytes of "<hex>.part". The state is
 * mbedTLS's context as this build lays it out (mbedtls_sha256_clone copies it the same way):
 * a checkpoint from another mbedTLS version or layout is not used. */
typedef struct hash_checkpoint {
  char magic[8];            /* CHECKPOINT_MAGIC (artifact_checkpoint.c), no NUL */
  uint32_t mbedtls_version; /* MBEDTLS_VERSION_NUMBER */
  uint32_t ctx_size;        /* sizeof(mbedtls_sha256_context) */
  uint64_t total;           /* the artifact's size */
  uint64_t held;            /* bytes of the .part the state covers */
  mbedtls_sha256_context sha;
} hash_checkpoint_t;

/* Delete the checkpoint of the upload `hex`, if any (a failure other than ENOENT is logged). */
void agent__artifact_checkpoint_remove(const agent_t *a, const char *hex);

/* Save u's hash state. Best effort: a checkpoint that is not written (or is torn by a crash)
 * only means hashing the .part again (logged). */
void agent__artifact_checkpoint_save(const agent_t *a, const agent_upload_t *u);

/* The checkpoint of the upload `hex` of `total` bytes whose .part holds part_size bytes into *c:
 * true when there is one this build can take up (it covers 1 .. part_size bytes). */
bool agent__artifact_checkpoint_load(const agent_t *a, const char *hex, uint64_t total,
                                     uint64_t part_size, hash_checkpoint_t *c);

#endif /* DFNET_HOST_AGENT_ARTIFACTS_INTERNAL_H */
