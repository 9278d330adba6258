/* Files, done one way everywhere (docs/style.md 16): the errno → dfnet_status_t map, a
 * whole-file read with a bound, an atomic write, a directory's sorted names, and a walk of
 * the regular files of a tree.
 *
 * Reporting: these functions do not log (but for the one warning of
 * dfnet_file_write_atomic(), which has no other way to be heard). A failure returns its
 * status and, when `why` is not NULL, writes one line into why[0..why_size) saying what
 * failed, without the path the caller gave (the caller names it): "creating a temporary
 * file: No space left on device (errno 28)"; dfnet_tree_walk() names the entry it was at.
 * The caller logs that line or hands it to its user: the raw errno is in it (style rule 2).
 *
 * Threads: no shared state; any thread.
 */
#ifndef DFNET_LIB_FILEIO_H
#define DFNET_LIB_FILEIO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "dfnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errno → status ------------------------------------------------------------------- */

/* X(errno value, DFNET_STATUS_ suffix): the one map (libuv's UV_ERRNO_MAP). An errno not
 * listed is UNAVAILABLE: an I/O failure of the machine (EIO, EBUSY, ENODEV, ...), not the
 * caller's mistake, that retrying or fixing the machine may cure. INTERNAL is kept for the
 * errnos that mean a bug in dfnet. */
#define DFNET_ERRNO_MAP(X)                                                              \
  X(ENOENT, NOT_FOUND)              /* no such file or directory */                     \
  X(ENOTDIR, NOT_FOUND)             /* a component of the path is not a directory */    \
  X(EACCES, PERMISSION_DENIED)      /* permissions */                                   \
  X(EPERM, PERMISSION_DENIED)       /* not permitted (capabilities, immutable files) */ \
  X(EROFS, PERMISSION_DENIED)       /* read-only file system */                         \
  X(ENOSPC, RESOURCE_EXHAUSTED)     /* disk full */                                     \
  X(EDQUOT, RESOURCE_EXHAUSTED)     /* quota */                                         \
  X(EFBIG, RESOURCE_EXHAUSTED)      /* over the file size limit (RLIMIT_FSIZE) */       \
  X(ENOMEM, RESOURCE_EXHAUSTED)     /* out of memory */                                 \
  X(EMFILE, RESOURCE_EXHAUSTED)     /* out of file descriptors (process) */             \
  X(ENFILE, RESOURCE_EXHAUSTED)     /* out of file descriptors (system) */              \
  X(EEXIST, ALREADY_EXISTS)         /* O_EXCL, mkdir */                                 \
  X(EINVAL, INVALID_ARGUMENT)       /* a value the kernel refused (a sysfs write) */    \
  X(ENAMETOOLONG, INVALID_ARGUMENT) /* the path given is too long */                    \
  X(ELOOP, INVALID_ARGUMENT)        /* a link where O_NOFOLLOW wanted a file */         \
  X(EIO, UNAVAILABLE)               /* the device failed */                             \
  X(EAGAIN, UNAVAILABLE)            /* try again */                                     \
  X(EBUSY, UNAVAILABLE)             /* busy */                                          \
  X(ENODEV, UNAVAILABLE)            /* unplugged */                                     \
  X(ENXIO, UNAVAILABLE)             /* unplugged */                                     \
  X(EBADF, INTERNAL)                /* a bad descriptor: a bug */                       \
  X(EFAULT, INTERNAL)               /* a bad address: a bug */

/* The status for an errno (see DFNET_ERRNO_MAP). Inline, so that code that does not link
 * libdfnet-common (the drivers' drvkit) shares the very same map. */
static inline dfnet_status_t dfnet_errno_status(int err) {
  switch (err) {
#define DFNET_ERRNO_CASE_(e, status) \
  case e:                            \
    return DFNET_STATUS_##status;
    DFNET_ERRNO_MAP(DFNET_ERRNO_CASE_)
#undef DFNET_ERRNO_CASE_
  default:
    return DFNET_STATUS_UNAVAILABLE;
  }
}

/* ---- Reporting -------------------------------------------------------------------------- */

/* Write one formatted line into why[0..why_size), cut to fit, as the functions here (and
 * lib/package.c, whose `err` follows the same rule) report a failure; nothing when why is
 * NULL or why_size is 0. */
void dfnet_why_set(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Reading ---------------------------------------------------------------------------- */

/* Flags of the reads. */
#define DFNET_FILE_NOFOLLOW 1u /* refuse a symbolic link as the last component (ELOOP) */
#define DFNET_FILE_SECRET 2u   /* keys: every copy of the bytes is wiped before it is freed */

/* A whole file. */
typedef struct dfnet_file {
  uint8_t *data; /* size bytes and a NUL (not counted); free with dfnet_file_free() */
  size_t size;
  mode_t mode; /* the file's st_mode */
  bool secret; /* read with DFNET_FILE_SECRET: dfnet_file_free() wipes the bytes */
} dfnet_file_t;

/* Read the regular file `path` whole, at most `max` bytes, into out (its previous contents
 * are not freed). The file is read to its end, whatever its size says (sysfs says 4096).
 * Errors (out zeroed): the errno map for open/fstat/read; INVALID_ARGUMENT (not a regular
 * file); OUT_OF_RANGE (more than max bytes: the file is outside the bound, as for
 * dfnet_file_read_into()); RESOURCE_EXHAUSTED (no memory). */
dfnet_status_t dfnet_file_read(const char *path, size_t max, unsigned flags, dfnet_file_t *out,
                               char *why, size_t why_size) __attribute__((warn_unused_result));

/* Free out's bytes (wiped first when it was read with DFNET_FILE_SECRET); out is zeroed.
 * NULL or an empty out is a no-op. */
void dfnet_file_free(dfnet_file_t *out);

/* Read the regular file `path` whole into the caller's buf[cap] (cap >= 1), NUL-terminated;
 * *len_out (optional) gets its length. Nothing is allocated.
 * Errors: the errno map; INVALID_ARGUMENT (not a regular file); OUT_OF_RANGE (more than
 * cap - 1 bytes; buf then holds the first cap - 1). buf is always NUL-terminated. */
dfnet_status_t dfnet_file_read_into(const char *path, unsigned flags, char *buf, size_t cap,
                                    size_t *len_out, char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* ---- Writing ---------------------------------------------------------------------------- */

/* Replace `path` atomically with the bytes of iov[0..count): a temporary file beside it
 * (<path>.tmp.XXXXXX, created 0600 by mkstemp, so that nothing is readable by others even
 * briefly), write, fsync, fchmod to `mode`, close, rename over `path`, fsync of the
 * directory. On failure the temporary file is removed and `path` is as it was. A failed
 * fsync of the directory after the rename is only a warning (logged, subsystem "fileio"):
 * the new file is in place.
 * Errors: INVALID_ARGUMENT (empty path or too long for a temporary name), the errno map. */
dfnet_status_t dfnet_file_writev_atomic(const char *path, const struct iovec *iov, size_t count,
                                        mode_t mode, char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* Make a rename or an unlink of `path` durable: fsync of the directory holding it. Best
 * effort: a failure loses nothing that is not on disk under the old name already, so it is
 * only logged (a warning, subsystem "fileio", with the errno). */
void dfnet_file_sync_dir(const char *path);

/* dfnet_file_writev_atomic() of one buffer. */
dfnet_status_t dfnet_file_write_atomic(const char *path, const void *data, size_t size, mode_t mode,
                                       char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* ---- Directories ------------------------------------------------------------------------ */

/* A directory's entry names. */
typedef struct dfnet_dir_names {
  char **names; /* sorted by strcmp (bytes, not the locale); free with dfnet_dir_names_free() */
  size_t count;
} dfnet_dir_names_t;

/* The names in `dir`, but "." and "..", sorted. Hidden names are kept: the caller decides.
 * Errors (out zeroed): the errno map (ENOENT: NOT_FOUND, ...); RESOURCE_EXHAUSTED (no
 * memory). */
dfnet_status_t dfnet_dir_list(const char *dir, dfnet_dir_names_t *out, char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* Free the names; out is zeroed. NULL is a no-op. */
void dfnet_dir_names_free(dfnet_dir_names_t *out);

/* ---- Paths ------------------------------------------------------------------------------ */

/* Does the relative path `rel` stay below whatever directory it is joined to: 1..max bytes,
 * not absolute, no empty, "." or ".." component (one trailing '/', a directory, is
 * allowed)? Only the text is looked at (links are the caller's business). NULL: false. */
bool dfnet_path_below(const char *rel, size_t max);

/* ---- Trees ------------------------------------------------------------------------------ */

#define DFNET_TREE_DEPTH_MAX 16 /* directories below the root a walk enters */

/* A regular file dfnet_tree_walk() found: rel is its path below the root ("driver/x.so"),
 * path the root and rel joined, sb its lstat. Both strings are valid for the call only.
 * Returns OK to go on; any other status stops the walk and is returned (say why in why). */
typedef dfnet_status_t (*dfnet_tree_visit_fn)(void *ctx, const char *rel, const char *path,
                                              const struct stat *sb, char *why, size_t why_size);

/* Visit every regular file below `root`, each directory's names in dfnet_dir_list() order,
 * never following a link (lstat). Stops with INVALID_ARGUMENT, why naming the path, at a
 * link or special file, a directory more than DFNET_TREE_DEPTH_MAX levels down, or a rel
 * path over rel_max bytes; with the errno map when a directory cannot be read (the root
 * missing: NOT_FOUND) or an entry cannot be stat'ed; with RESOURCE_EXHAUSTED (no memory);
 * or with what visit returned. */
dfnet_status_t dfnet_tree_walk(const char *root, size_t rel_max, dfnet_tree_visit_fn visit,
                               void *ctx, char *why, size_t why_size)
    __attribute__((warn_unused_result));

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_FILEIO_H */
