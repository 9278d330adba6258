/* dfnet driver packages: deterministic ustar archives named by SHA-256 (lib/package.h). */
#include "lib/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "lib/fileio.h"
#include "lib/hex.h"

/* A status of lib/fileio.h (its errno map included) narrowed to what lib/package.h
 * documents: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT and RESOURCE_EXHAUSTED as they
 * are, a file over its bound (OUT_OF_RANGE) RESOURCE_EXHAUSTED, any other failure of the
 * file system INTERNAL. */
static dfnet_status_t package_status(dfnet_status_t st) {
  switch (st) {
  case DFNET_STATUS_OK:
  case DFNET_STATUS_NOT_FOUND:
  case DFNET_STATUS_ALREADY_EXISTS:
  case DFNET_STATUS_INVALID_ARGUMENT:
  case DFNET_STATUS_RESOURCE_EXHAUSTED:
    return st;
  case DFNET_STATUS_OUT_OF_RANGE:
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  default:
    return DFNET_STATUS_INTERNAL;
  }
}

void dfnet_package_buf_free(dfnet_package_buf_t *buf) {
  if (buf == NULL)
    return;
  free(buf->data);
  buf->data = NULL;
  buf->size = 0;
}

/* ---- digests ------------------------------------------------------------------------ */

void dfnet_package_digest(const uint8_t *data, size_t size,
                          uint8_t out[DFNET_PACKAGE_DIGEST_SIZE]) {
  mbedtls_sha256_context ctx;
  mbedtls_sha256_init(&ctx);
  mbedtls_sha256_starts_ret(&ctx, 0);
  if (size > 0)
    mbedtls_sha256_update_ret(&ctx, data, size);
  mbedtls_sha256_finish_ret(&ctx, out);
  mbedtls_sha256_free(&ctx);
}

void dfnet_package_digest_hex(const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                              char out[DFNET_PACKAGE_DIGEST_HEX_SIZE]) {
  dfnet_hex_encode(digest, DFNET_PACKAGE_DIGEST_SIZE, out);
}

dfnet_status_t dfnet_package_digest_parse(const char *hex, uint8_t out[DFNET_PACKAGE_DIGEST_SIZE]) {
  if (hex == NULL || strlen(hex) != 2 * DFNET_PACKAGE_DIGEST_SIZE)
    return DFNET_STATUS_INVALID_ARGUMENT;
  uint8_t tmp[DFNET_PACKAGE_DIGEST_SIZE];
  for (size_t i = 0; i < DFNET_PACKAGE_DIGEST_SIZE; i++) {
    int hi = dfnet_hex_digit(hex[2 * i]), lo = dfnet_hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return DFNET_STATUS_INVALID_ARGUMENT;
    tmp[i] = (uint8_t)(hi << 4 | lo);
  }
  memcpy(out, tmp, sizeof tmp);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_package_verify(const uint8_t *data, size_t size,
                                    const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]) {
  uint8_t got[DFNET_PACKAGE_DIGEST_SIZE];
  dfnet_package_digest(data, size, got);
  return memcmp(got, digest, sizeof got) == 0 ? DFNET_STATUS_OK : DFNET_STATUS_DATA_LOSS;
}

/* ---- names and URLs ----------------------------------------------------------------- */

int dfnet_package_name_valid(const char *name) {
  if (name == NULL)
    return 0;
  size_t n = strlen(name);
  if (n == 0 || n > DFNET_PACKAGE_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-')))
      return 0;
  }
  return 1;
}

dfnet_status_t dfnet_package_url(const char *name, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                 char *out, size_t out_size) {
  if (!dfnet_package_name_valid(name))
    return DFNET_STATUS_INVALID_ARGUMENT;
  int n;
  if (digest == NULL) {
    n = snprintf(out, out_size, "dfnet-boot:///%s#meta/%s.json", name, name);
  } else {
    char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
    dfnet_package_digest_hex(digest, hex);
    n = snprintf(out, out_size, "dfnet-pkg://%.12s/%s#meta/%s.json", hex, name, name);
  }
  return (n < 0 || (size_t)n >= out_size) ? DFNET_STATUS_OUT_OF_RANGE : DFNET_STATUS_OK;
}

/* ---- packing ------------------------------------------------------------------------ */

typedef struct file_list {
  char **paths; /* relative, owned; room for DFNET_PACKAGE_ENTRIES_MAX, made by the first add */
  size_t count;
} file_list_t;

static void file_list_free(file_list_t *l) {
  for (size_t i = 0; i < l->count; i++)
    free(l->paths[i]);
  free(l->paths);
  memset(l, 0, sizeof *l);
}

static dfnet_status_t file_list_add(file_list_t *l, const char *rel, char *err, size_t err_size) {
  if (l->count >= DFNET_PACKAGE_ENTRIES_MAX) {
    dfnet_why_set(err, err_size, "more than %u files", DFNET_PACKAGE_ENTRIES_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (l->paths == NULL && (l->paths = calloc(DFNET_PACKAGE_ENTRIES_MAX, sizeof *l->paths)) == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  if ((l->paths[l->count] = strdup(rel)) == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  l->count++;
  return DFNET_STATUS_OK;
}

/* dfnet_tree_visit_fn: a regular file to pack, within the entry bound. */
static dfnet_status_t collect_file(void *ctx, const char *rel, const char *path,
                                   const struct stat *sb, char *why, size_t why_size) {
  if ((uint64_t)sb->st_size > DFNET_PACKAGE_ENTRY_MAX) {
    dfnet_why_set(why, why_size, "%s: larger than %u bytes", path, DFNET_PACKAGE_ENTRY_MAX);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  return file_list_add(ctx, rel, why, why_size);
}

static int cmp_paths(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct mem_sink {
  uint8_t *data;
  size_t size, cap;
  bool overflow;
} mem_sink_t;

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t len) {
  (void)a;
  mem_sink_t *s = ud;
  if (s->size + len > DFNET_PACKAGE_SIZE_MAX) {
    s->overflow = true;
    return -1;
  }
  if (s->size + len > s->cap) {
    size_t cap = s->cap ? s->cap : 16384;
    while (cap < s->size + len)
      cap *= 2;
    uint8_t *p = realloc(s->data, cap);
    if (p == NULL) {
      s->overflow = true;
      return -1;
    }
    s->data = p;
    s->cap = cap;
  }
  memcpy(s->data + s->size, buf, len);
  s->size += len;
  return (la_ssize_t)len;
}

static dfnet_status_t pack_entries(struct archive *a, const char *dir, const file_list_t *l,
                                   char *err, size_t err_size) {
  struct archive_entry *e = archive_entry_new();
  if (e == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t i = 0; i < l->count && st == DFNET_STATUS_OK; i++) {
    char full[4096 + DFNET_PACKAGE_PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", dir, l->paths[i]);
    dfnet_file_t body;
    char why[300];
    st = package_status(dfnet_file_read(full, DFNET_PACKAGE_ENTRY_MAX, DFNET_FILE_NOFOLLOW, &body,
                                        why, sizeof why));
    if (st != DFNET_STATUS_OK) {
      dfnet_why_set(err, err_size, "%s: %s", full, why);
      break;
    }
    archive_entry_clear(e);
    archive_entry_set_pathname(e, l->paths[i]);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, (body.mode & 0111) ? 0755 : 0644);
    archive_entry_set_size(e, (la_int64_t)body.size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (body.size > 0 && archive_write_data(a, body.data, body.size) != (la_ssize_t)body.size)) {
      dfnet_why_set(err, err_size, "%s: archive: %s", l->paths[i], archive_error_string(a));
      st = DFNET_STATUS_INTERNAL;
    }
    dfnet_file_free(&body);
  }
  archive_entry_free(e);
  return st;
}

dfnet_status_t dfnet_package_pack_dir(const char *dir, dfnet_package_buf_t *out, char *err,
                                      size_t err_size) {
  file_list_t l = {0};
  mem_sink_t sink = {0};
  dfnet_status_t st =
      package_status(dfnet_tree_walk(dir, DFNET_PACKAGE_PATH_MAX, collect_file, &l, err, err_size));
  if (st != DFNET_STATUS_OK)
    goto free_list;
  if (l.count > 0)
    qsort(l.paths, l.count, sizeof *l.paths, cmp_paths);

  struct archive *a = archive_write_new();
  if (a == NULL) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto free_list;
  }
  if (archive_write_set_format_ustar(a) != ARCHIVE_OK ||
      archive_write_add_filter_none(a) != ARCHIVE_OK ||
      archive_write_set_bytes_per_block(a, 512) != ARCHIVE_OK ||
      archive_write_open(a, &sink, NULL, sink_write, NULL) != ARCHIVE_OK) {
    dfnet_why_set(err, err_size, "%s: archive: %s", dir, archive_error_string(a));
    st = DFNET_STATUS_INTERNAL;
    goto free_archive;
  }
  st = pack_entries(a, dir, &l, err, err_size);
  if (st == DFNET_STATUS_OK && archive_write_close(a) != ARCHIVE_OK) {
    dfnet_why_set(err, err_size, "%s: archive: %s", dir, archive_error_string(a));
    st = DFNET_STATUS_INTERNAL;
  }
  if (sink.overflow) {
    dfnet_why_set(err, err_size, "%s: archive larger than %u bytes", dir, DFNET_PACKAGE_SIZE_MAX);
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
free_archive:
  archive_write_free(a);
  if (st == DFNET_STATUS_OK) {
    out->data = sink.data;
    out->size = sink.size;
    sink.data = NULL;
  }
  free(sink.data);
free_list:
  file_list_free(&l);
  return st;
}

/* ---- reading ------------------------------------------------------------------------ */

static struct archive *open_reader(const uint8_t *data, size_t size) {
  struct archive *a = archive_read_new();
  if (a == NULL)
    return NULL;
  if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_support_filter_none(a) != ARCHIVE_OK ||
      archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
    archive_read_free(a);
    return NULL;
  }
  return a;
}

dfnet_status_t dfnet_package_read_entry(const uint8_t *data, size_t size, const char *path,
                                        size_t max_size, dfnet_package_buf_t *out, char *err,
                                        size_t err_size) {
  struct archive *a = open_reader(data, size);
  if (a == NULL) {
    dfnet_why_set(err, err_size, "not a tar archive");
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  struct archive_entry *e;
  int r;
  unsigned entries = 0;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    if (++entries > DFNET_PACKAGE_ENTRIES_MAX) {
      dfnet_why_set(err, err_size, "more than %u entries", DFNET_PACKAGE_ENTRIES_MAX);
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      goto free_reader;
    }
    const char *name = archive_entry_pathname(e);
    if (name == NULL || strcmp(name, path) != 0)
      continue;
    if (archive_entry_filetype(e) != AE_IFREG) {
      dfnet_why_set(err, err_size, "%s: not a regular file", path);
      st = DFNET_STATUS_INVALID_ARGUMENT;
      goto free_reader;
    }
    la_int64_t esize = archive_entry_size(e);
    if (esize < 0 || (uint64_t)esize > max_size) {
      dfnet_why_set(err, err_size, "%s: larger than %zu bytes", path, max_size);
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      goto free_reader;
    }
    uint8_t *buf = malloc((size_t)esize + 1);
    if (buf == NULL) {
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      goto free_reader;
    }
    la_ssize_t got = esize ? archive_read_data(a, buf, (size_t)esize) : 0;
    if (got != esize) {
      free(buf);
      dfnet_why_set(err, err_size, "%s: truncated", path);
      st = DFNET_STATUS_INVALID_ARGUMENT;
      goto free_reader;
    }
    buf[esize] = 0; /* convenience for text entries; not counted in size */
    out->data = buf;
    out->size = (size_t)esize;
    st = DFNET_STATUS_OK;
    goto free_reader;
  }
  if (r != ARCHIVE_EOF) {
    dfnet_why_set(err, err_size, "malformed archive: %s", archive_error_string(a));
    st = DFNET_STATUS_INVALID_ARGUMENT;
  } else {
    dfnet_why_set(err, err_size, "%s: no such entry in the package", path);
  }
free_reader:
  archive_read_free(a);
  return st;
}

/* ---- unpacking ---------------------------------------------------------------------- */

/* Open (creating if needed) the directory dir_path relative to root_fd, component by
 * component, never following a link. Returns an fd or -1 (errno set). */
static int open_dirs(int root_fd, const char *dir_path) {
  int fd = dup(root_fd);
  char part[DFNET_PACKAGE_PATH_MAX + 1];
  const char *p = dir_path;
  while (fd >= 0 && *p) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    memcpy(part, p, len);
    part[len] = '\0';
    p += len + (slash ? 1 : 0);
    if (len == 0)
      continue;
    if (mkdirat(fd, part, 0755) != 0 && errno != EEXIST) {
      close(fd);
      return -1;
    }
    int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(fd);
    fd = next;
  }
  return fd;
}

static dfnet_status_t write_entry(struct archive *a, int root_fd, const char *rel, mode_t mode,
                                  char *err, size_t err_size) {
  const char *slash = strrchr(rel, '/');
  char dir[DFNET_PACKAGE_PATH_MAX + 1] = "";
  if (slash != NULL)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - rel), rel);
  const char *base = slash ? slash + 1 : rel;
  int dfd = open_dirs(root_fd, dir);
  if (dfd < 0) {
    dfnet_why_set(err, err_size, "%s: cannot create its directory: %s", rel, strerror(errno));
    return DFNET_STATUS_INTERNAL;
  }
  dfnet_status_t st = DFNET_STATUS_OK;
  int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    dfnet_why_set(err, err_size, "%s: %s", rel, strerror(e));
    st = package_status(dfnet_errno_status(e));
    goto close_dir;
  }
  uint8_t buf[16384];
  la_ssize_t r;
  while ((r = archive_read_data(a, buf, sizeof buf)) > 0) {
    if (write(fd, buf, (size_t)r) != r) {
      dfnet_why_set(err, err_size, "%s: write failed: %s", rel, strerror(errno));
      st = DFNET_STATUS_INTERNAL;
      break;
    }
  }
  if (st == DFNET_STATUS_OK && r < 0) {
    dfnet_why_set(err, err_size, "%s: truncated: %s", rel, archive_error_string(a));
    st = DFNET_STATUS_INVALID_ARGUMENT;
  }
  close(fd);
close_dir:
  close(dfd);
  return st;
}

dfnet_status_t dfnet_package_unpack(const uint8_t *data, size_t size, const char *dest_dir,
                                    char *err, size_t err_size) {
  int root_fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    int e = errno;
    dfnet_why_set(err, err_size, "%s: %s", dest_dir, strerror(e));
    return package_status(dfnet_errno_status(e));
  }
  dfnet_status_t st = DFNET_STATUS_OK;
  struct archive *a = open_reader(data, size);
  if (a == NULL) {
    dfnet_why_set(err, err_size, "not a tar archive");
    st = DFNET_STATUS_INVALID_ARGUMENT;
    goto close_root;
  }
  struct archive_entry *e;
  int r = ARCHIVE_OK;
  unsigned entries = 0;
  while (st == DFNET_STATUS_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *rel = archive_entry_pathname(e);
    mode_t type = archive_entry_filetype(e);
    if (++entries > DFNET_PACKAGE_ENTRIES_MAX) {
      dfnet_why_set(err, err_size, "more than %u entries", DFNET_PACKAGE_ENTRIES_MAX);
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    } else if (rel == NULL || !dfnet_path_below(rel, DFNET_PACKAGE_PATH_MAX)) {
      dfnet_why_set(err, err_size, "entry '%s': absolute path, '..' or empty part refused",
                    rel ? rel : "(none)");
      st = DFNET_STATUS_INVALID_ARGUMENT;
    } else if (archive_entry_hardlink(e) != NULL || archive_entry_symlink(e) != NULL ||
               (type != AE_IFREG && type != AE_IFDIR)) {
      dfnet_why_set(err, err_size, "entry '%s': links and special files are refused", rel);
      st = DFNET_STATUS_INVALID_ARGUMENT;
    } else if (archive_entry_size(e) < 0 ||
               (uint64_t)archive_entry_size(e) > DFNET_PACKAGE_ENTRY_MAX) {
      dfnet_why_set(err, err_size, "entry '%s': larger than %u bytes", rel,
                    DFNET_PACKAGE_ENTRY_MAX);
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    } else if (type == AE_IFDIR) {
      int fd = open_dirs(root_fd, rel);
      if (fd < 0) {
        dfnet_why_set(err, err_size, "entry '%s': %s", rel, strerror(errno));
        st = DFNET_STATUS_INTERNAL;
      } else {
        close(fd);
      }
    } else {
      mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;
      st = write_entry(a, root_fd, rel, mode, err, err_size);
    }
  }
  if (st == DFNET_STATUS_OK && r != ARCHIVE_EOF) {
    dfnet_why_set(err, err_size, "malformed archive: %s", archive_error_string(a));
    st = DFNET_STATUS_INVALID_ARGUMENT;
  }
  archive_read_free(a);
close_root:
  close(root_fd);
  return st;
}
