/* dfnet driver packages: deterministic archives, content-addressed by SHA-256
 * (docs/design.md "Driver packages").
 *
 * A package is the package directory
 *     meta/<name>.json  meta/bind/<name>.bindbc  driver/<name>.so  (and anything else)
 * packed as a POSIX ustar archive (libarchive) that depends only on the files' relative
 * paths, contents and executable bit: entries sorted bytewise by path, regular files only,
 * mtime 0, uid/gid 0, no user or group names, mode 0644 or 0755. The same directory gives
 * the same bytes on every machine, so a package's id is the SHA-256 of its archive bytes.
 *
 * Driver URLs (used by the manager, the host agent and the CLI):
 *   boot drivers (--drivers DIR):    dfnet-boot:///<name>#meta/<name>.json
 *   registered drivers (uploaded):   dfnet-pkg://<first 12 hex digits of the
 * digest>/<name>#meta/<name>.json after Fuchsia's fuchsia-boot:/// and fuchsia-pkg:// URLs (the
 * fragment names the component manifest inside the package).
 *
 * Security model for unpacking (the archive may come from the network): the digest is
 * checked by the caller before unpacking (dfnet_package_verify); every entry must be a
 * regular file or a directory (links of any kind are refused, so none can escape the
 * root), its path relative, without `..`, `.` or empty components, at most
 * DFNET_PACKAGE_PATH_MAX bytes, at most DFNET_PACKAGE_ENTRY_MAX bytes, and at most
 * DFNET_PACKAGE_ENTRIES_MAX entries; files are created with O_EXCL|O_NOFOLLOW below a
 * directory walked with O_NOFOLLOW, so an existing link in the destination is not followed.
 *
 * Errors are dfnet status codes; a human-readable reason naming the file or entry goes to
 * the caller's `err` buffer (may be NULL), nothing is logged here.
 */
#ifndef DFNET_LIB_PACKAGE_H
#define DFNET_LIB_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#define DFNET_PACKAGE_DIGEST_SIZE 32u                 /* SHA-256 */
#define DFNET_PACKAGE_DIGEST_HEX_SIZE 65u             /* 64 hex digits + NUL */
#define DFNET_PACKAGE_ENTRY_MAX (64u * 1024u * 1024u) /* bytes of one file */
#define DFNET_PACKAGE_SIZE_MAX (128u * 1024u * 1024u) /* bytes of one archive */
#define DFNET_PACKAGE_ENTRIES_MAX 1024u
#define DFNET_PACKAGE_PATH_MAX 255u
#define DFNET_PACKAGE_NAME_MAX 63u /* a package (driver) name */
#define DFNET_PACKAGE_URL_MAX 256u

/* An archive in memory. `data` is owned by whoever holds the struct: free with
 * dfnet_package_buf_free(). */
typedef struct dfnet_package_buf {
  uint8_t *data;
  size_t size;
} dfnet_package_buf_t;

/* Free buf->data and zero *buf (idempotent). */
void dfnet_package_buf_free(dfnet_package_buf_t *buf);

/* Pack the directory `dir` into a deterministic ustar archive in *out (caller frees with
 * dfnet_package_buf_free). Only regular files and directories are allowed.
 * Errors: NOT_FOUND (dir missing), INVALID_ARGUMENT (a link, device or other special file;
 * a path too long; more than DFNET_PACKAGE_ENTRIES_MAX entries), RESOURCE_EXHAUSTED (a file
 * over DFNET_PACKAGE_ENTRY_MAX or the archive over DFNET_PACKAGE_SIZE_MAX, or out of
 * memory), INTERNAL (a read or libarchive failure). *out is untouched on error. */
dfnet_status_t dfnet_package_pack_dir(const char *dir, dfnet_package_buf_t *out, char *err,
                                      size_t err_size);

/* SHA-256 of data[0..size) into out (mbedTLS). */
void dfnet_package_digest(const uint8_t *data, size_t size, uint8_t out[DFNET_PACKAGE_DIGEST_SIZE]);

/* Lower-case hex of a digest, NUL-terminated, into out. */
void dfnet_package_digest_hex(const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                              char out[DFNET_PACKAGE_DIGEST_HEX_SIZE]);

/* Parse 64 hex digits (either case) into out. Returns OK or INVALID_ARGUMENT. */
dfnet_status_t dfnet_package_digest_parse(const char *hex, uint8_t out[DFNET_PACKAGE_DIGEST_SIZE]);

/* Does SHA-256(data[0..size)) equal digest? OK, or DATA_LOSS when it does not. */
dfnet_status_t dfnet_package_verify(const uint8_t *data, size_t size,
                                    const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]);

/* Unpack an archive into the existing directory dest_dir (see the security model above).
 * Errors: INVALID_ARGUMENT (malformed archive; an absolute path, `..`, a link or special
 * file; the entry is named in err), RESOURCE_EXHAUSTED (an entry over
 * DFNET_PACKAGE_ENTRY_MAX, too many entries), ALREADY_EXISTS (a file exists at an entry's
 * path), NOT_FOUND (dest_dir missing), INTERNAL (a write failed). On error, files already
 * written stay: unpack into a fresh directory and remove it on failure. */
dfnet_status_t dfnet_package_unpack(const uint8_t *data, size_t size, const char *dest_dir,
                                    char *err, size_t err_size);

/* Copy the contents of the regular file at `path` inside the archive into *out (caller
 * frees with dfnet_package_buf_free). At most max_size bytes are accepted.
 * Errors: NOT_FOUND (no such entry), INVALID_ARGUMENT (malformed archive or the entry is not
 * a regular file), RESOURCE_EXHAUSTED (the entry is larger than max_size, or out of
 * memory). *out is untouched on error. */
dfnet_status_t dfnet_package_read_entry(const uint8_t *data, size_t size, const char *path,
                                        size_t max_size, dfnet_package_buf_t *out, char *err,
                                        size_t err_size);

/* Is `name` a valid package (driver) name: 1..DFNET_PACKAGE_NAME_MAX bytes of
 * [A-Za-z0-9_-], starting with a letter or digit? (Keeps names safe in paths and URLs.) */
int dfnet_package_name_valid(const char *name);

/* Driver URLs (see above) into out[0..out_size). digest is NULL for a boot driver.
 * Returns OK, INVALID_ARGUMENT (name not valid), or OUT_OF_RANGE (out too small). */
dfnet_status_t dfnet_package_url(const char *name, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                 char *out, size_t out_size);

#endif /* DFNET_LIB_PACKAGE_H */
