/* The artifact cache's hash checkpoints: "<hex>.sha" beside an upload's "<hex>.part", the
 * SHA-256 state of the .part's first bytes, saved each WRITEBACK_STEP appended (artifacts.c
 * upload_append) so that an upload without a record (after an agent restart, or once its
 * record was dropped) is taken up there without hashing its bytes again. Only the file's
 * format, writing, reading and deletion live here; when one is saved or used: artifacts.c
 * (its top describes the whole cache). docs/architecture.md "Artifacts".
 *
 * Service thread (artifacts_internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "host/agent/artifacts_internal.h"
#include "lib/log.h"

#define CHECKPOINT_MAGIC "dfnetsha"

static void checkpoint_path(const agent_t *a, const char *hex, char *out, size_t size) {
  snprintf(out, size, "%s/%s.sha", a->artifact_dir, hex);
}

void agent__artifact_checkpoint_remove(const agent_t *a, const char *hex) {
  char path[4400];
  checkpoint_path(a, hex, path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT)
    DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(hex), "cannot delete %s: %s", path,
               strerror(errno));
}

void agent__artifact_checkpoint_save(const agent_t *a, const agent_upload_t *u) {
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
    DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(u->hex),
               "cannot save the hash checkpoint %s: %s", path,
               fd < 0 ? strerror(errno) : "short write");
  if (fd >= 0)
    close(fd);
}

bool agent__artifact_checkpoint_load(const agent_t *a, const char *hex, uint64_t total,
                                     uint64_t part_size, hash_checkpoint_t *c) {
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
