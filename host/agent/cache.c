/* The agent's driver package cache (issue 6 "Package cache"; docs/design.md "Driver packages";
 * docs/architecture.md "Host session protocol", step 4).
 *
 * Layout of --cache-dir:
 *   <sha256 hex>.tar   the package archive as the manager sent it
 *   <sha256 hex>/      the archive unpacked (lib/package.h's safe unpack)
 * An entry is used only when the archive's SHA-256 is its name and every file of the
 * unpacked directory equals its entry in the archive (and the driver binary is there when
 * the archive has it). Anything else is a corrupt entry: it is removed, logged, and the
 * package fetched again. New entries are written beside and renamed into place, so a
 * crash never leaves a half-written entry under its final name.
 *
 * On a miss the package comes from the manager: PackageFetch{digest, offset, max_bytes}
 * answered by PackageChunk (bytes in bulk) until `last`; one request at a time; one fetch
 * per digest however many DriverStarts wait for it.
 *
 * Modes (docs/architecture.md "Confinement"): the cache directory is 0711 (created so, or
 * changed to it when it exists), the directories made above it 0755; an unpacked package's
 * directories are 0755 and its files 0644 (0755 with an execute bit in the archive),
 * whatever the umask. So a driver host running as the driver user (dfnet-host
 * --driver-user) reads the package it was given by its path, and lists nothing of the
 * cache (artifacts/ stays 0700).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utlist.h>

#include "host/agent/agent.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define CACHE_SUBSYS "cache"

/* ---- files ---------------------------------------------------------------------------- */

dfnet_status_t agent__cache_init(const char *dir, char *err, size_t err_size) {
  char path[4096];
  if (agent__strlcpy(path, dir, sizeof path) >= sizeof path) {
    snprintf(err, err_size, "--cache-dir %s: path too long", dir);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  for (char *p = path + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
      snprintf(err, err_size, "--cache-dir %s: cannot create %s: %s", dir, path, strerror(errno));
      return dfnet_errno_status(errno);
    }
    *p = '/';
  }
  if (mkdir(path, 0711) != 0 && errno != EEXIST) {
    snprintf(err, err_size, "--cache-dir %s: %s", dir, strerror(errno));
    return dfnet_errno_status(errno);
  }
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    snprintf(err, err_size, "--cache-dir %s: not a directory", dir);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (access(path, W_OK | X_OK) != 0) {
    snprintf(err, err_size, "--cache-dir %s: not writable: %s", dir, strerror(errno));
    return DFNET_STATUS_PERMISSION_DENIED;
  }
  /* the driver user passes through to the packages, and lists nothing */
  if ((sb.st_mode & 07777) != 0711 && chmod(path, 0711) != 0) {
    int e = errno;
    snprintf(err, err_size, "--cache-dir %s: cannot make it mode 0711: %s", dir, strerror(e));
    return dfnet_errno_status(e);
  }
  return DFNET_STATUS_OK;
}

/* nftw: an unpacked package readable by every user, whatever the umask was. */
static int open_mode(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)ftw;
  mode_t mode = type == FTW_D ? 0755 : (sb->st_mode & 0100) ? 0755 : 0644;
  if ((type == FTW_D || type == FTW_F) && (sb->st_mode & 07777) != mode && chmod(path, mode) != 0)
    return errno != 0 ? errno : EIO;
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (type == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void entry_paths(agent_t *a, const char *hex, char *dir, size_t dir_size, char *tar,
                        size_t tar_size) {
  snprintf(dir, dir_size, "%s/%s", a->cache_dir, hex);
  snprintf(tar, tar_size, "%s/%s.tar", a->cache_dir, hex);
}

static void drop_entry(agent_t *a, const char *hex, const char *why) {
  char dir[4200], tar[4200];
  entry_paths(a, hex, dir, sizeof dir, tar, sizeof tar);
  DFNET_LOGW(CACHE_SUBSYS, hex, "corrupt cache entry dropped: %s", why);
  rm_tree(dir);
  unlink(tar);
}

typedef struct archive_view {
  const uint8_t *data;
  size_t size;
} archive_view_t;

/* dfnet_tree_visit_fn: does the unpacked file hold the archive's entry `rel`? DATA_LOSS
 * when it does not. */
static dfnet_status_t file_matches(void *ctx, const char *rel, const char *path,
                                   const struct stat *sb, char *why, size_t why_size) {
  const archive_view_t *ar = ctx;
  (void)sb;
  dfnet_package_buf_t want = {0};
  dfnet_file_t have = {0};
  char perr[256];
  dfnet_status_t st = DFNET_STATUS_DATA_LOSS;
  if (dfnet_package_read_entry(ar->data, ar->size, rel, DFNET_PACKAGE_ENTRY_MAX, &want, perr,
                               sizeof perr) != DFNET_STATUS_OK)
    snprintf(why, why_size, "%s is not in the archive", rel);
  else if (dfnet_file_read(path, DFNET_PACKAGE_ENTRY_MAX, DFNET_FILE_NOFOLLOW, &have, NULL, 0) !=
               DFNET_STATUS_OK ||
           have.size != want.size || memcmp(have.data, want.data, have.size) != 0)
    snprintf(why, why_size, "%s differs from the archive", rel);
  else
    st = DFNET_STATUS_OK;
  dfnet_file_free(&have);
  dfnet_package_buf_free(&want);
  return st;
}

/* Does every regular file below dir equal its entry in the archive (and is there nothing
 * else: no link, no special file)? */
static bool tree_matches(const char *dir, const uint8_t *ar, size_t ar_size, char *why,
                         size_t why_size) {
  archive_view_t view = {ar, ar_size};
  return dfnet_tree_walk(dir, DFNET_PACKAGE_PATH_MAX, file_matches, &view, why, why_size) ==
         DFNET_STATUS_OK;
}

dfnet_status_t agent__cache_lookup(agent_t *a, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                   const char *binary, char *dir_out, size_t dir_size) {
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE], dir[4200], tar[4200], why[512];
  dfnet_package_digest_hex(digest, hex);
  entry_paths(a, hex, dir, sizeof dir, tar, sizeof tar);
  struct stat dsb, tsb;
  bool have_dir = lstat(dir, &dsb) == 0, have_tar = lstat(tar, &tsb) == 0;
  if (!have_dir && !have_tar)
    return DFNET_STATUS_NOT_FOUND;
  if (!have_dir || !have_tar || !S_ISDIR(dsb.st_mode) || !S_ISREG(tsb.st_mode)) {
    drop_entry(a, hex, "incomplete (archive or directory missing)");
    return DFNET_STATUS_NOT_FOUND;
  }
  dfnet_file_t archive;
  dfnet_status_t st =
      dfnet_file_read(tar, DFNET_PACKAGE_SIZE_MAX, DFNET_FILE_NOFOLLOW, &archive, NULL, 0);
  if (st != DFNET_STATUS_OK) {
    snprintf(why, sizeof why, "archive unreadable: %s", dfnet_status_str(st));
    drop_entry(a, hex, why);
    return DFNET_STATUS_NOT_FOUND;
  }
  const uint8_t *ar = archive.data;
  size_t ar_size = archive.size;
  if (dfnet_package_verify(ar, ar_size, digest) != DFNET_STATUS_OK) {
    dfnet_file_free(&archive);
    drop_entry(a, hex, "the archive's SHA-256 is not its name");
    return DFNET_STATUS_NOT_FOUND;
  }
  bool ok = tree_matches(dir, ar, ar_size, why, sizeof why);
  if (ok && binary != NULL && dfnet_path_below(binary, DFNET_PACKAGE_PATH_MAX)) {
    dfnet_package_buf_t so = {0};
    char perr[64];
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", dir, binary);
    if (dfnet_package_read_entry(ar, ar_size, binary, DFNET_PACKAGE_ENTRY_MAX, &so, perr,
                                 sizeof perr) == DFNET_STATUS_OK &&
        access(path, R_OK) != 0) {
      snprintf(why, sizeof why, "%s missing from the unpacked directory", binary);
      ok = false;
    }
    dfnet_package_buf_free(&so);
  }
  dfnet_file_free(&archive);
  if (!ok) {
    drop_entry(a, hex, why);
    return DFNET_STATUS_NOT_FOUND;
  }
  agent__strlcpy(dir_out, dir, dir_size);
  return DFNET_STATUS_OK;
}

dfnet_status_t agent__cache_store(agent_t *a, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                  const uint8_t *data, size_t size, char *dir_out, size_t dir_size,
                                  char *err, size_t err_size) {
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE], dir[4200], tar[4200], tmp[4300];
  dfnet_package_digest_hex(digest, hex);
  entry_paths(a, hex, dir, sizeof dir, tar, sizeof tar);
  rm_tree(dir);
  unlink(tar);
  char why[300];
  dfnet_status_t st = dfnet_file_write_atomic(tar, data, size, 0644, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s: %s", tar, why);
    return st;
  }
  snprintf(tmp, sizeof tmp, "%s/.unpack-%s-XXXXXX", a->cache_dir, hex);
  if (mkdtemp(tmp) == NULL) {
    int e = errno;
    snprintf(err, err_size, "%s: %s", tmp, strerror(e));
    unlink(tar);
    return dfnet_errno_status(e);
  }
  char perr[512];
  st = dfnet_package_unpack(data, size, tmp, perr, sizeof perr);
  if (st != DFNET_STATUS_OK) {
    snprintf(err, err_size, "unpacking package %.12s: %s", hex, perr);
    goto unpack_failed;
  }
  int walk = nftw(tmp, open_mode, 16, FTW_PHYS);
  if (walk != 0) {
    int e = walk > 0 ? walk : errno != 0 ? errno : EIO;
    st = dfnet_errno_status(e);
    snprintf(err, err_size, "%s: cannot set its modes (0755, 0644): %s", tmp, strerror(e));
    goto unpack_failed;
  }
  if (rename(tmp, dir) != 0) {
    st = dfnet_errno_status(errno);
    snprintf(err, err_size, "%s: %s", dir, strerror(errno));
    goto unpack_failed;
  }
  agent__strlcpy(dir_out, dir, dir_size);
  return DFNET_STATUS_OK;

unpack_failed:
  rm_tree(tmp);
  unlink(tar);
  return st;
}

/* ---- fetching from the manager -------------------------------------------------------- */

typedef struct fetch_waiter {
  uint64_t node_uid;
  agent_fetch_done_fn done;
} fetch_waiter_t;

struct agent_fetch {
  agent_fetch_t *next;
  agent_t *a;
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
  dfnet_session_id_t session;
  uint8_t *buf;
  size_t size;
  uint64_t total;
  bool have_total;
  fetch_waiter_t *waiters;
  size_t waiter_count;
  dfnet_status_t result; /* for a fetch finished from a posted work item */
  char message[300];
};

/* End a fetch: unlink it, tell every waiter, free it. */
static void fetch_finish(agent_fetch_t *f, dfnet_status_t st, const char *dir,
                         const char *message) {
  agent_t *a = f->a;
  LL_DELETE(a->fetches, f);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(CACHE_SUBSYS, f->hex, "fetch failed: %s: %s", dfnet_status_str(st), message);
  for (size_t i = 0; i < f->waiter_count; i++)
    f->waiters[i].done(a, f->waiters[i].node_uid, st, dir, message);
  free(f->waiters);
  free(f->buf);
  free(f);
}

static void fetch_finish_posted(void *user) {
  agent_fetch_t *f = user;
  fetch_finish(f, f->result, NULL, f->message);
}

/* Fail from a context where the waiters must not run now. */
static void fetch_fail_later(agent_fetch_t *f, dfnet_status_t st, const char *message) {
  f->result = st;
  agent__strlcpy(f->message, message, sizeof f->message);
  if (dfnet_transport_post(f->a->t, fetch_finish_posted, f) != DFNET_STATUS_OK) {
    DFNET_LOGE(CACHE_SUBSYS, f->hex, "out of memory: fetch abandoned");
    LL_DELETE(f->a->fetches, f);
    free(f->waiters);
    free(f->buf);
    free(f);
  }
}

static dfnet_status_t fetch_request(agent_fetch_t *f);

static void fetch_complete(agent_fetch_t *f) {
  agent_t *a = f->a;
  char err[600], dir[4200];
  if (dfnet_package_verify(f->buf, f->size, f->digest) != DFNET_STATUS_OK) {
    fetch_finish(f, DFNET_STATUS_DATA_LOSS, NULL,
                 "the package received does not have the SHA-256 asked for");
    return;
  }
  dfnet_status_t st =
      agent__cache_store(a, f->digest, f->buf, f->size, dir, sizeof dir, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    fetch_finish(f, st, NULL, err);
    return;
  }
  DFNET_LOGI(CACHE_SUBSYS, f->hex, "package fetched (%zu bytes) and verified", f->size);
  fetch_finish(f, DFNET_STATUS_OK, dir, "");
}

static void on_chunk(void *user, dfnet_status_t status, const dfnet_envelope_t *reply, bool last) {
  agent_fetch_t *f = user;
  (void)last;
  char msg[600];
  if (status != DFNET_STATUS_OK) {
    snprintf(msg, sizeof msg, "PackageFetch: %s", dfnet_status_str(status));
    fetch_finish(f, status == DFNET_STATUS_DEADLINE_EXCEEDED ? status : DFNET_STATUS_UNAVAILABLE,
                 NULL, msg);
    return;
  }
  if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    dfnet_status_t code = (dfnet_status_t)reply->pb.msg.status.code;
    snprintf(msg, sizeof msg, "manager: %s", reply->pb.msg.status.message);
    fetch_finish(f, code != DFNET_STATUS_OK ? code : DFNET_STATUS_INTERNAL, NULL, msg);
    return;
  }
  if (reply->pb.which_msg != dfnet_v1_Envelope_package_chunk_tag) {
    fetch_finish(f, DFNET_STATUS_INTERNAL, NULL, "PackageFetch answered with something else");
    return;
  }
  const dfnet_v1_PackageChunk *c = &reply->pb.msg.package_chunk;
  const char *bad = NULL;
  if (memcmp(c->digest, f->digest, sizeof f->digest) != 0)
    bad = "a chunk of another package";
  else if (c->offset != f->size)
    bad = "a chunk at the wrong offset";
  else if (c->total_size > DFNET_PACKAGE_SIZE_MAX)
    bad = "a package over the size bound";
  else if (f->have_total && c->total_size != f->total)
    bad = "the package's total size changed";
  else if ((uint64_t)f->size + reply->bulk.size > c->total_size)
    bad = "more bytes than the package's total size";
  else if (!c->last && reply->bulk.size == 0)
    bad = "an empty chunk that is not the last";
  else if (c->last && (uint64_t)f->size + reply->bulk.size != c->total_size)
    bad = "the last chunk ends before the total size";
  if (bad != NULL) {
    fetch_finish(f, DFNET_STATUS_DATA_LOSS, NULL, bad);
    return;
  }
  if (!f->have_total) {
    f->have_total = true;
    f->total = c->total_size;
    f->buf = malloc(f->total > 0 ? (size_t)f->total : 1);
    if (f->buf == NULL) {
      fetch_finish(f, DFNET_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
      return;
    }
  }
  if (reply->bulk.size > 0)
    memcpy(f->buf + f->size, reply->bulk.data, reply->bulk.size);
  f->size += reply->bulk.size;
  if (c->last) {
    fetch_complete(f);
    return;
  }
  dfnet_status_t st = fetch_request(f);
  if (st != DFNET_STATUS_OK) {
    snprintf(msg, sizeof msg, "cannot send PackageFetch: %s", dfnet_status_str(st));
    fetch_finish(f, st, NULL, msg);
  }
}

static dfnet_status_t fetch_request(agent_fetch_t *f) {
  agent_t *a = f->a;
  if (f->session == 0 || f->session != a->session)
    return DFNET_STATUS_UNAVAILABLE;
  dfnet_envelope_t *env = a->scratch;
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_package_fetch_tag;
  memcpy(env->pb.msg.package_fetch.digest, f->digest, sizeof f->digest);
  env->pb.msg.package_fetch.offset = f->size;
  env->pb.msg.package_fetch.max_bytes = AGENT_FETCH_CHUNK;
  dfnet_request_opts_t opts = {
      .deadline_ms = AGENT_FETCH_DEADLINE_MS, .on_reply = on_chunk, .user = f};
  return dfnet_transport_request(a->t, f->session, env, &opts, 0, NULL);
}

void agent__cache_fetch(agent_t *a, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                        uint64_t node_uid, agent_fetch_done_fn done) {
  agent_fetch_t *f;
  LL_FOREACH(a->fetches, f) { /* at most one fetch a digest */
    if (memcmp(f->digest, digest, sizeof f->digest) == 0)
      break;
  }
  bool fresh = f == NULL;
  if (fresh) {
    f = calloc(1, sizeof *f);
    if (f == NULL) {
      DFNET_LOGE(CACHE_SUBSYS, NULL, "out of memory starting a fetch");
      return;
    }
    f->a = a;
    memcpy(f->digest, digest, sizeof f->digest);
    dfnet_package_digest_hex(digest, f->hex);
    f->session = a->session;
    LL_PREPEND(a->fetches, f);
  }
  fetch_waiter_t *grown = realloc(f->waiters, (f->waiter_count + 1) * sizeof *grown);
  if (grown == NULL) {
    DFNET_LOGE(CACHE_SUBSYS, f->hex, "out of memory joining a fetch");
    if (fresh)
      fetch_fail_later(f, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  f->waiters = grown;
  f->waiters[f->waiter_count++] = (fetch_waiter_t){node_uid, done};
  if (!fresh)
    return;
  DFNET_LOGI(CACHE_SUBSYS, f->hex, "not cached: fetching from the manager");
  dfnet_status_t st = fetch_request(f);
  if (st != DFNET_STATUS_OK) {
    char msg[128];
    snprintf(msg, sizeof msg, "cannot send PackageFetch: %s", dfnet_status_str(st));
    fetch_fail_later(f, st, msg);
  }
}

void agent__cache_session_closed(agent_t *a, dfnet_session_id_t session) {
  /* Their requests completed UNAVAILABLE before the session's close callback: nothing is
   * left but fetches that never got a request out (they finish from their posted work). */
  (void)a;
  (void)session;
}

void agent__cache_free(agent_t *a) {
  agent_fetch_t *f, *tmp;
  LL_FOREACH_SAFE(a->fetches, f, tmp) {
    LL_DELETE(a->fetches, f);
    free(f->waiters);
    free(f->buf);
    free(f);
  }
}
