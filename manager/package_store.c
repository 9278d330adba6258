/* dfnet-manager: the package store and the index's sources (docs/design.md "Driver packages").
 *
 * State directory layout (beside the PKI files of lib/pki.h):
 *   packages/<sha256 hex>.pkg   every package the manager serves, content-addressed
 *   registered/<sha256 hex>     a registered driver: its package name (one line); these are
 *                               loaded again at start, so registrations survive a restart;
 *                               unregistering removes it, then the package's bytes
 * Boot drivers are packed from --drivers DIR at every start (lib/package.h: the same
 * directory gives the same digest) and stored too, so hosts fetch them the same way. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "manager/manager.h"

static void store_path(mgr_t *m, const char *sub, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                       const char *suffix, char *out, size_t size) {
  char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
  dfnet_package_digest_hex(digest, hex);
  snprintf(out, size, "%s/%s/%s%s", m->cfg.state_dir, sub, hex, suffix);
}

dfnet_status_t package_store__init(mgr_t *m) {
  const char *subs[] = {"packages", "registered"};
  for (size_t i = 0; i < 2; i++) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, subs[i]);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      int err = errno;
      DFNET_LOGE("store", path, "cannot create: %s (errno %d)", strerror(err), err);
      return dfnet_errno_status(err);
    }
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t write_atomic(const char *path, const uint8_t *data, size_t size) {
  char why[300];
  dfnet_status_t st = dfnet_file_write_atomic(path, data, size, 0600, why, sizeof why);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGE("store", path, "cannot store: %s", why);
  return st;
}

dfnet_status_t package_store__put(mgr_t *m, const uint8_t *data, size_t size,
                                  const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]) {
  char path[1200];
  store_path(m, "packages", digest, ".pkg", path, sizeof path);
  if (access(path, R_OK) == 0)
    return DFNET_STATUS_OK;
  return write_atomic(path, data, size);
}

dfnet_status_t package_store__remember(mgr_t *m, const char *name,
                                       const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]) {
  char path[1200], line[80];
  store_path(m, "registered", digest, "", path, sizeof path);
  int n = snprintf(line, sizeof line, "%s\n", name);
  return write_atomic(path, (const uint8_t *)line, (size_t)n);
}

dfnet_status_t package_store__forget(mgr_t *m, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                     const driver_t *leaving, char *err, size_t err_size) {
  char path[1200];
  store_path(m, "registered", digest, "", path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT) {
    int e = errno;
    snprintf(err, err_size, "cannot remove %s: %s", path, strerror(e));
    DFNET_LOGE("store", path, "cannot remove: %s (errno %d)", strerror(e), e);
    return dfnet_errno_status(e);
  }
  for (size_t i = 0; i < m->index.count; i++) {
    const driver_t *d = m->index.drivers[i];
    if (d != NULL && d != leaving && memcmp(d->digest, digest, DFNET_PACKAGE_DIGEST_SIZE) == 0)
      return DFNET_STATUS_OK; /* the bytes still serve that driver */
  }
  store_path(m, "packages", digest, ".pkg", path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT) /* the record is gone: it will not load again */
    DFNET_LOGW("store", path, "cannot remove: %s", strerror(errno));
  return DFNET_STATUS_OK;
}

dfnet_status_t package_store__read(mgr_t *m, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                   uint64_t offset, uint8_t *buf, size_t max, size_t *got,
                                   uint64_t *total) {
  char path[1200];
  store_path(m, "packages", digest, ".pkg", path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return dfnet_errno_status(errno);
  dfnet_status_t st = DFNET_STATUS_OK;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = dfnet_errno_status(errno);
    goto close_fd;
  }
  *total = (uint64_t)sb.st_size;
  if (offset > *total) {
    st = DFNET_STATUS_OUT_OF_RANGE;
    goto close_fd;
  }
  size_t want = *total - offset < max ? (size_t)(*total - offset) : max;
  ssize_t r = want ? pread(fd, buf, want, (off_t)offset) : 0;
  if (r < 0 || (size_t)r != want) {
    st = DFNET_STATUS_UNAVAILABLE;
    goto close_fd;
  }
  *got = want;
close_fd:
  close(fd);
  return st;
}

static void load_boot_one(mgr_t *m, const char *dir, const char *name) {
  char path[1200], err[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return;
  dfnet_package_buf_t pkg = {0};
  dfnet_status_t st = dfnet_package_pack_dir(path, &pkg, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE("index", path, "boot driver refused: %s", err);
    return;
  }
  driver_t *d = NULL;
  st = driver_index__add_package(&m->index, name, pkg.data, pkg.size, DRIVER_BOOT, &d, err,
                                 sizeof err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE("index", path, "boot driver refused: %s", err);
  } else {
    package_store__put(m, pkg.data, pkg.size, d->digest);
    DFNET_LOGI("index", d->url, "boot driver loaded%s%s", d->m.fallback ? " (fallback)" : "",
               d->composite ? " (composite)" : "");
  }
  dfnet_package_buf_free(&pkg);
}

void package_store__load_boot(mgr_t *m) {
  if (m->cfg.drivers_dir != NULL) {
    dfnet_dir_names_t dir;
    char why[300];
    if (dfnet_dir_list(m->cfg.drivers_dir, &dir, why, sizeof why) != DFNET_STATUS_OK)
      DFNET_LOGE("index", m->cfg.drivers_dir, "cannot read the drivers directory: %s", why);
    for (size_t i = 0; i < dir.count; i++) {
      if (dir.names[i][0] != '.') /* hidden: not a driver */
        load_boot_one(m, m->cfg.drivers_dir, dir.names[i]);
    }
    dfnet_dir_names_free(&dir);
  }
  m->index.boot_indexed = true; /* fallbacks may match from now on */
}

static void load_registered_one(mgr_t *m, const char *hex) {
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  char path[1200], name[80] = "", err[600];
  if (dfnet_package_digest_parse(hex, digest) != DFNET_STATUS_OK)
    return;
  snprintf(path, sizeof path, "%s/registered/%s", m->cfg.state_dir, hex);
  if (dfnet_file_read_into(path, 0, name, sizeof name, NULL, NULL, 0) != DFNET_STATUS_OK) {
    DFNET_LOGE("index", path, "unreadable registration");
    return;
  }
  name[strcspn(name, "\r\n")] = '\0';
  snprintf(path, sizeof path, "%s/packages/%s.pkg", m->cfg.state_dir, hex);
  dfnet_file_t pkg;
  if (dfnet_file_read(path, DFNET_PACKAGE_SIZE_MAX, 0, &pkg, NULL, 0) != DFNET_STATUS_OK) {
    DFNET_LOGE("index", path, "registered package unreadable");
    return;
  }
  driver_t *d = NULL;
  if (dfnet_package_verify(pkg.data, pkg.size, digest) != DFNET_STATUS_OK)
    DFNET_LOGE("index", path, "registered package refused: SHA-256 does not match its name");
  else if (driver_index__add_package(&m->index, name, pkg.data, pkg.size, DRIVER_REGISTERED, &d,
                                     err, sizeof err) != DFNET_STATUS_OK)
    DFNET_LOGE("index", path, "registered package refused: %s", err);
  else
    DFNET_LOGI("index", d->url, "registered driver reloaded");
  dfnet_file_free(&pkg);
}

void package_store__load_registered(mgr_t *m) {
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/registered", m->cfg.state_dir);
  dfnet_dir_names_t names;
  if (dfnet_dir_list(dir, &names, NULL, 0) != DFNET_STATUS_OK)
    return;
  for (size_t i = 0; i < names.count; i++) {
    if (strchr(names.names[i], '.') == NULL) /* not a temporary file */
      load_registered_one(m, names.names[i]);
  }
  dfnet_dir_names_free(&names);
}
