/* The artifact cache's bound (--artifact-cache-mb): before an upload's record is made room
 * for, the least recently used complete artifacts (their mtime, touched by Stat, Put and
 * ArtifactOpen) and the .part files no upload record holds are deleted, oldest first, until
 * the cache's files and the bytes the upload still needs fit. The layout of the cache and the
 * rest of its story: the top of artifacts.c. docs/architecture.md "Artifacts".
 *
 * Service thread (artifacts_internal.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "host/agent/artifacts_internal.h"
#include "lib/fileio.h"
#include "lib/log.h"

uint64_t agent__artifact_cache_limit(const agent_t *a) {
  return (uint64_t)a->opt.artifact_cache_mb << 20;
}

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

dfnet_status_t agent__artifact_make_room(agent_t *a, const agent_upload_t *u, artifact_err_t *e) {
  dfnet_dir_names_t names;
  char why[256];
  if (dfnet_dir_list(a->artifact_dir, &names, why, sizeof why) != DFNET_STATUS_OK)
    return agent__artifact_fail(e, DFNET_STATUS_INTERNAL, "reading %s: %s", a->artifact_dir, why);
  cache_file_t *files = calloc(names.count + 1, sizeof *files);
  if (files == NULL) {
    dfnet_dir_names_free(&names);
    return agent__artifact_fail(e, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
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
                 agent__artifact_upload_find(a, digest) != NULL;
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
  uint64_t limit = agent__artifact_cache_limit(a), need = u->total - u->held;
  for (size_t i = 0; i < n && used + need > limit; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", a->artifact_dir, files[i].name);
    if (unlink(path) != 0) {
      DFNET_LOGW(ARTIFACT_SUBSYS, agent__artifact_tag(files[i].name), "cannot evict %s: %s", path,
                 strerror(errno));
      continue;
    }
    used -= files[i].size;
    if (strlen(files[i].name) > 64) /* a .part: its checkpoint goes with it */
      agent__artifact_checkpoint_remove(a, files[i].name);
    DFNET_LOGI(ARTIFACT_SUBSYS, agent__artifact_tag(files[i].name),
               "evicted %s (%llu bytes, least recently used) to make room", files[i].name,
               (unsigned long long)files[i].size);
  }
  free(files);
  if (used + need > limit)
    return agent__artifact_fail(
        e, DFNET_STATUS_RESOURCE_EXHAUSTED,
        "the artifact cache (%u MiB, --artifact-cache-mb) cannot take %llu bytes more: "
        "uploads under way hold %llu bytes",
        a->opt.artifact_cache_mb, (unsigned long long)need, (unsigned long long)busy);
  struct statvfs vfs;
  if (statvfs(a->artifact_dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize < need)
    return agent__artifact_fail(
        e, DFNET_STATUS_RESOURCE_EXHAUSTED,
        "the artifact cache's disk has %llu bytes free, the artifact needs %llu more",
        (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize,
        (unsigned long long)need);
  return DFNET_STATUS_OK;
}
