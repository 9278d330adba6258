/* Files, done one way everywhere (lib/fileio.h). */
#include "lib/fileio.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

#define FILEIO_LOG "fileio"

void dfnet_why_set(char *why, size_t why_size, const char *fmt, ...) {
  if (why == NULL || why_size == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_size, fmt, ap);
  va_end(ap);
}

/* The one place an errno of this file becomes a status and a reason. */
static dfnet_status_t errno_fail(int err, const char *what, char *why, size_t why_size) {
  dfnet_why_set(why, why_size, "%s: %s (errno %d)", what, strerror(err), err);
  return dfnet_errno_status(err);
}

/* Free p; wipe its `size` bytes first when they are secret. */
static void release(void *p, size_t size, bool secret) {
  if (p != NULL && secret)
    explicit_bzero(p, size);
  free(p);
}

/* ---- Reading ---------------------------------------------------------------------------- */

/* Open `path` for reading and check it is a regular file. Returns the fd, or -1 with *st
 * and why set. */
static int open_regular(const char *path, unsigned flags, struct stat *sb, dfnet_status_t *st,
                        char *why, size_t why_size) {
  int oflags = O_RDONLY | O_CLOEXEC | ((flags & DFNET_FILE_NOFOLLOW) ? O_NOFOLLOW : 0);
  int fd = open(path, oflags);
  if (fd < 0) {
    *st = errno_fail(errno, "opening", why, why_size);
    return -1;
  }
  if (fstat(fd, sb) != 0) {
    *st = errno_fail(errno, "stat", why, why_size);
    close(fd);
    return -1;
  }
  if (!S_ISREG(sb->st_mode)) {
    dfnet_why_set(why, why_size, "not a regular file");
    *st = DFNET_STATUS_INVALID_ARGUMENT;
    close(fd);
    return -1;
  }
  return fd;
}

/* Read fd into buf[0..cap) until its end or cap bytes. Returns the bytes read, or -1
 * (errno set). */
static ssize_t read_full(int fd, void *buf, size_t cap) {
  size_t have = 0;
  while (have < cap) {
    ssize_t n = read(fd, (uint8_t *)buf + have, cap - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    have += (size_t)n;
  }
  return (ssize_t)have;
}

/* Move the first `have` bytes of *buf into a new buffer of `cap` bytes (not realloc: a
 * secret old copy is wiped). false when out of memory (*buf untouched). */
static bool grow(uint8_t **buf, size_t have, size_t old_cap, size_t cap, bool secret) {
  uint8_t *bigger = malloc(cap);
  if (bigger == NULL)
    return false;
  memcpy(bigger, *buf, have);
  release(*buf, old_cap, secret);
  *buf = bigger;
  return true;
}

dfnet_status_t dfnet_file_read(const char *path, size_t max, unsigned flags, dfnet_file_t *out,
                               char *why, size_t why_size) {
  memset(out, 0, sizeof *out);
  bool secret = (flags & DFNET_FILE_SECRET) != 0;
  if (max > SIZE_MAX - 2)
    max = SIZE_MAX - 2;
  struct stat sb;
  dfnet_status_t st = DFNET_STATUS_OK;
  int fd = open_regular(path, flags, &sb, &st, why, why_size);
  if (fd < 0)
    return st;
  if ((uint64_t)sb.st_size > max) {
    dfnet_why_set(why, why_size, "file of %lld bytes, over %zu", (long long)sb.st_size, max);
    st = DFNET_STATUS_OUT_OF_RANGE;
    goto fd_opened;
  }
  /* Room for the size the file says, one byte more to see its end, and the NUL. */
  size_t cap = (size_t)sb.st_size + 2, have = 0;
  uint8_t *buf = malloc(cap);
  if (buf == NULL)
    goto out_of_memory;
  for (;;) {
    ssize_t n = read_full(fd, buf + have, cap - 1 - have);
    if (n < 0) {
      st = errno_fail(errno, "reading", why, why_size);
      goto buf_made;
    }
    have += (size_t)n;
    if (have < cap - 1)
      break; /* the end of the file */
    if (have > max) {
      dfnet_why_set(why, why_size, "file over %zu bytes", max);
      st = DFNET_STATUS_OUT_OF_RANGE;
      goto buf_made;
    }
    /* Longer than it said (sysfs, procfs): grow, up to max bytes + 1 + the NUL. */
    size_t bigger = cap <= (max + 2) / 2 ? 2 * cap : max + 2;
    if (!grow(&buf, have, cap, bigger, secret))
      goto out_of_memory;
    cap = bigger;
  }
  buf[have] = '\0';
  out->data = buf;
  out->size = have;
  out->mode = sb.st_mode;
  out->secret = secret;
  goto fd_opened;

out_of_memory:
  dfnet_why_set(why, why_size, "out of memory");
  st = DFNET_STATUS_RESOURCE_EXHAUSTED;
buf_made:
  release(buf, cap, secret);
fd_opened:
  close(fd);
  return st;
}

void dfnet_file_free(dfnet_file_t *out) {
  if (out == NULL)
    return;
  release(out->data, out->data != NULL ? out->size + 1 : 0, out->secret);
  memset(out, 0, sizeof *out);
}

dfnet_status_t dfnet_file_read_into(const char *path, unsigned flags, char *buf, size_t cap,
                                    size_t *len_out, char *why, size_t why_size) {
  if (len_out != NULL)
    *len_out = 0;
  if (cap == 0) {
    dfnet_why_set(why, why_size, "no room");
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  buf[0] = '\0';
  struct stat sb;
  dfnet_status_t st = DFNET_STATUS_OK;
  int fd = open_regular(path, flags, &sb, &st, why, why_size);
  if (fd < 0)
    return st;
  ssize_t n = read_full(fd, buf, cap - 1);
  if (n < 0) {
    st = errno_fail(errno, "reading", why, why_size);
    n = 0;
  } else if ((size_t)n == cap - 1) {
    char extra;
    if (read(fd, &extra, 1) != 0) {
      dfnet_why_set(why, why_size, "longer than %zu bytes", cap - 1);
      st = DFNET_STATUS_OUT_OF_RANGE;
    }
  }
  close(fd);
  buf[n] = '\0';
  if (len_out != NULL)
    *len_out = (size_t)n;
  return st;
}

/* ---- Writing ---------------------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

void dfnet_file_sync_dir(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(dir, sizeof dir, ".");
  else if (slash == path)
    snprintf(dir, sizeof dir, "/");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    DFNET_LOGW(FILEIO_LOG, dir, "fsync of the directory: %s (errno %d)", strerror(errno), errno);
  if (fd >= 0)
    close(fd);
}

dfnet_status_t dfnet_file_writev_atomic(const char *path, const struct iovec *iov, size_t count,
                                        mode_t mode, char *why, size_t why_size) {
  size_t plen = path != NULL ? strlen(path) : 0;
  if (plen == 0 || plen > PATH_MAX - 16) {
    dfnet_why_set(why, why_size, "path too long or empty");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
  int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
  if (fd < 0)
    return errno_fail(errno, "creating a temporary file", why, why_size);
  const char *what = "writing";
  for (size_t i = 0; i < count; i++) {
    if (write_all(fd, iov[i].iov_base, iov[i].iov_len) != 0)
      goto io_failed;
  }
  what = "fsync";
  if (fsync(fd) != 0)
    goto io_failed;
  what = "chmod";
  if (fchmod(fd, mode) != 0)
    goto io_failed;
  what = "closing";
  int closed = close(fd);
  fd = -1;
  if (closed != 0)
    goto io_failed;
  what = "renaming into place";
  if (rename(tmp, path) != 0)
    goto io_failed;
  dfnet_file_sync_dir(path);
  return DFNET_STATUS_OK;

io_failed : {
  int err = errno;
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  return errno_fail(err, what, why, why_size);
}
}

dfnet_status_t dfnet_file_write_atomic(const char *path, const void *data, size_t size, mode_t mode,
                                       char *why, size_t why_size) {
  struct iovec one = {.iov_base = (void *)data, .iov_len = size};
  return dfnet_file_writev_atomic(path, &one, 1, mode, why, why_size);
}

/* ---- Directories ------------------------------------------------------------------------ */

static int not_dots(const struct dirent *de) {
  return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

/* By bytes: alphasort(3) follows the locale. */
static int by_bytes(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

dfnet_status_t dfnet_dir_list(const char *dir, dfnet_dir_names_t *out, char *why, size_t why_size) {
  memset(out, 0, sizeof *out);
  struct dirent **ents = NULL;
  int n = scandir(dir, &ents, not_dots, by_bytes);
  if (n < 0)
    return errno_fail(errno, "reading the directory", why, why_size);
  dfnet_status_t st = DFNET_STATUS_OK;
  out->names = calloc(n > 0 ? (size_t)n : 1, sizeof *out->names);
  for (int i = 0; i < n; i++) {
    char *copy = out->names != NULL ? strdup(ents[i]->d_name) : NULL;
    if (copy != NULL)
      out->names[out->count++] = copy;
    else
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    free(ents[i]);
  }
  free(ents);
  if (out->names == NULL)
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  if (st != DFNET_STATUS_OK) {
    dfnet_why_set(why, why_size, "out of memory");
    dfnet_dir_names_free(out);
  }
  return st;
}

void dfnet_dir_names_free(dfnet_dir_names_t *out) {
  if (out == NULL)
    return;
  for (size_t i = 0; i < out->count; i++)
    free(out->names[i]);
  free(out->names);
  memset(out, 0, sizeof *out);
}

/* ---- Paths ------------------------------------------------------------------------------ */

bool dfnet_path_below(const char *rel, size_t max) {
  size_t n = rel != NULL ? strlen(rel) : 0;
  if (n == 0 || n > max || rel[0] == '/')
    return false;
  for (const char *p = rel; *p != '\0';) {
    size_t len = strcspn(p, "/");
    if (len == 0 && p[1] == '\0')
      return true; /* a trailing '/' (a directory) */
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
      return false;
    p += len;
    if (*p == '/')
      p++;
  }
  return true;
}

/* ---- Trees ------------------------------------------------------------------------------ */

typedef struct tree_walk {
  char path[PATH_MAX]; /* the root, then "/<rel>" while below it */
  size_t root_len;
  size_t rel_max;
  dfnet_tree_visit_fn visit;
  void *ctx;
  char *why;
  size_t why_size;
} tree_walk_t;

static dfnet_status_t walk_dir(tree_walk_t *w, size_t len, int depth);

/* The entry `name` of the directory w->path[0..len): append it, visit or enter it, and cut
 * w->path back. */
static dfnet_status_t walk_entry(tree_walk_t *w, size_t len, const char *name, int depth) {
  size_t end = len + 1 + strlen(name);
  if (end - w->root_len - 1 > w->rel_max || end >= sizeof w->path) {
    dfnet_why_set(w->why, w->why_size, "%s/%s: path longer than %zu bytes", w->path, name,
                  w->rel_max);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  snprintf(w->path + len, sizeof w->path - len, "/%s", name);
  dfnet_status_t st;
  struct stat sb;
  if (lstat(w->path, &sb) != 0) {
    int err = errno;
    char what[PATH_MAX + 8];
    snprintf(what, sizeof what, "%s: stat", w->path);
    st = errno_fail(err, what, w->why, w->why_size);
  } else if (S_ISDIR(sb.st_mode)) {
    st = walk_dir(w, end, depth + 1);
  } else if (S_ISREG(sb.st_mode)) {
    st = w->visit(w->ctx, w->path + w->root_len + 1, w->path, &sb, w->why, w->why_size);
  } else {
    dfnet_why_set(w->why, w->why_size,
                  "%s: a link or special file, not a regular file or directory", w->path);
    st = DFNET_STATUS_INVALID_ARGUMENT;
  }
  w->path[len] = '\0';
  return st;
}

/* The directory w->path[0..len), `depth` levels below the root. */
static dfnet_status_t walk_dir(tree_walk_t *w, size_t len, int depth) {
  if (depth > DFNET_TREE_DEPTH_MAX) {
    dfnet_why_set(w->why, w->why_size, "%s: directories nested too deep", w->path);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_dir_names_t names;
  char reason[256];
  dfnet_status_t st = dfnet_dir_list(w->path, &names, reason, sizeof reason);
  if (st != DFNET_STATUS_OK) {
    dfnet_why_set(w->why, w->why_size, "%s: %s", w->path, reason);
    return st;
  }
  for (size_t i = 0; i < names.count && st == DFNET_STATUS_OK; i++)
    st = walk_entry(w, len, names.names[i], depth);
  dfnet_dir_names_free(&names);
  return st;
}

dfnet_status_t dfnet_tree_walk(const char *root, size_t rel_max, dfnet_tree_visit_fn visit,
                               void *ctx, char *why, size_t why_size) {
  tree_walk_t *w = calloc(1, sizeof *w);
  if (w == NULL) {
    dfnet_why_set(why, why_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  w->rel_max = rel_max;
  w->visit = visit;
  w->ctx = ctx;
  w->why = why;
  w->why_size = why_size;
  w->root_len = strlen(root);
  dfnet_status_t st = DFNET_STATUS_INVALID_ARGUMENT;
  if (w->root_len >= sizeof w->path - 2)
    dfnet_why_set(why, why_size, "%s: path too long", root);
  else
    st = walk_dir(w, (size_t)snprintf(w->path, sizeof w->path, "%s", root), 0);
  free(w);
  return st;
}
