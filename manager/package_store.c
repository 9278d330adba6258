/* dfnet-manager: the package store and the index's sources (docs/design.md "Driver packages").
 *
 * State directory layout (beside the PKI files of lib/pki.h):
 *   packages/<sha256 hex>.pkg   every package the manager serves, content-addressed
 *   registered/<sha256 hex>     a registered driver: its package name (one line); these are
 *                               loaded again at start, so registrations survive a restart;
 *                               unregistering removes it, then the package's bytes
 * Boot drivers are packed from --drivers DIR at every start (lib/package.h: the same
 * directory gives the same digest) and stored too, so hosts fetch them the same way. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
      DFNET_LOGE("store", path, "cannot create: %s", strerror(errno));
      return DFNET_STATUS_UNAVAILABLE;
    }
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t write_atomic(const char *path, const uint8_t *data, size_t size) {
  char tmp[1300];
  snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    DFNET_LOGE("store", tmp, "cannot create: %s", strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
  }
  size_t done = 0;
  while (done < size) {
    ssize_t w = write(fd, data + done, size - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      DFNET_LOGE("store", tmp, "write failed: %s", strerror(errno));
      close(fd);
      unlink(tmp);
      return DFNET_STATUS_UNAVAILABLE;
    }
    done += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    DFNET_LOGE("store", path, "cannot store: %s", strerror(errno));
    unlink(tmp);
    return DFNET_STATUS_UNAVAILABLE;
  }
  return DFNET_STATUS_OK;
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
    snprintf(err, err_size, "cannot remove %s: %s", path, strerror(errno));
    DFNET_LOGE("store", path, "cannot remove: %s", strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
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
    return errno == ENOENT ? DFNET_STATUS_NOT_FOUND : DFNET_STATUS_UNAVAILABLE;
  dfnet_status_t st = DFNET_STATUS_OK;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = DFNET_STATUS_UNAVAILABLE;
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

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of a directory (caller frees each and the array). */
static char **list_dir(const char *dir, size_t *count) {
  *count = 0;
  DIR *d = opendir(dir);
  if (d == NULL)
    return NULL;
  size_t cap = 16;
  char **names = malloc(cap * sizeof *names);
  struct dirent *de;
  while (names != NULL && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    if (*count == cap) {
      char **p = realloc(names, 2 * cap * sizeof *names);
      if (p == NULL)
        break;
      names = p;
      cap *= 2;
    }
    if ((names[*count] = strdup(de->d_name)) != NULL)
      (*count)++;
  }
  closedir(d);
  if (names != NULL)
    qsort(names, *count, sizeof *names, cmp_names);
  return names;
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
    size_t count = 0;
    char **names = list_dir(m->cfg.drivers_dir, &count);
    if (names == NULL)
      DFNET_LOGE("index", m->cfg.drivers_dir, "cannot read the drivers directory: %s",
                 strerror(errno));
    for (size_t i = 0; i < count; i++) {
      load_boot_one(m, m->cfg.drivers_dir, names[i]);
      free(names[i]);
    }
    free(names);
  }
  m->index.boot_indexed = true; /* fallbacks may match from now on */
}

static void load_registered_one(mgr_t *m, const char *hex) {
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  char path[1200], name[80] = "", err[600];
  if (dfnet_package_digest_parse(hex, digest) != DFNET_STATUS_OK)
    return;
  snprintf(path, sizeof path, "%s/registered/%s", m->cfg.state_dir, hex);
  FILE *f = fopen(path, "r");
  if (f == NULL || fgets(name, sizeof name, f) == NULL) {
    if (f)
      fclose(f);
    DFNET_LOGE("index", path, "unreadable registration");
    return;
  }
  fclose(f);
  name[strcspn(name, "\r\n")] = '\0';
  snprintf(path, sizeof path, "%s/packages/%s.pkg", m->cfg.state_dir, hex);
  dfnet_package_buf_t pkg = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0 || (uint64_t)sb.st_size > DFNET_PACKAGE_SIZE_MAX ||
      (pkg.data = malloc((size_t)sb.st_size + 1)) == NULL ||
      read(fd, pkg.data, (size_t)sb.st_size) != sb.st_size) {
    DFNET_LOGE("index", path, "registered package unreadable");
    if (fd >= 0)
      close(fd);
    dfnet_package_buf_free(&pkg);
    return;
  }
  close(fd);
  pkg.size = (size_t)sb.st_size;
  driver_t *d = NULL;
  if (dfnet_package_verify(pkg.data, pkg.size, digest) != DFNET_STATUS_OK)
    DFNET_LOGE("index", path, "registered package refused: SHA-256 does not match its name");
  else if (driver_index__add_package(&m->index, name, pkg.data, pkg.size, DRIVER_REGISTERED, &d,
                                     err, sizeof err) != DFNET_STATUS_OK)
    DFNET_LOGE("index", path, "registered package refused: %s", err);
  else
    DFNET_LOGI("index", d->url, "registered driver reloaded");
  dfnet_package_buf_free(&pkg);
}

void package_store__load_registered(mgr_t *m) {
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/registered", m->cfg.state_dir);
  size_t count = 0;
  char **names = list_dir(dir, &count);
  for (size_t i = 0; i < count; i++) {
    if (strchr(names[i], '.') == NULL)
      load_registered_one(m, names[i]);
    free(names[i]);
  }
  free(names);
}
