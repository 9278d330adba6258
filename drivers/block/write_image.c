/* block: one WriteImage, run on the worker thread (block.h; proto/dfnet/hw/block.proto).
 *
 *   open    the artifact (dfnet_driver_artifact_open: NOT_FOUND when the host's cache has no
 *           complete artifact with that digest); the device is the driver's resource
 *           "block" (block.h: dfnet-host opened it O_RDWR, a block device O_EXCL, so that a
 *           mounted one never reaches the driver), UNAVAILABLE when it was handed read-only
 *           (write-protected); a block device smaller than the artifact is OUT_OF_RANGE (a
 *           regular file may grow).
 *   WRITE   1 MiB chunks, pread from the artifact and pwrite to the device from byte 0.
 *           Each chunk's writeback starts at once and the chunk BLOCK_WINDOW behind is
 *           waited for and dropped from the page cache (sync_file_range, posix_fadvise),
 *           so the progress is the device's, not the page cache's, and the fsync is short;
 *           that chunk, on the device now, is then read back and hashed: VERIFY's work for
 *           all but the last BLOCK_WINDOW is done while writing (not where sync_file_range
 *           is refused: the read would come from the page cache).
 *   SYNC    fsync; then the device's cached pages are dropped (POSIX_FADV_DONTNEED, and
 *           BLKFLSBUF for a block device, which needs CAP_SYS_ADMIN: its failure is
 *           ignored), so that the read-back comes from the device.
 *   VERIFY  the rest of the artifact's length is read back (pread on the same descriptor,
 *           whose cached pages were dropped) and hashed (SHA-256, mbedTLS; its first item
 *           says how much WRITE read back already); DATA_LOSS when the digest is not the
 *           requested one (a device that drops writes, or an artifact whose content does
 *           not match its name).
 *
 * Following an upload (follow_upload_size): when the cache has no complete artifact yet,
 * WRITE reads the upload's .part as it grows: before each chunk it waits (FOLLOW_POLL_MS
 * sleeps, the call's status checked each time) until the file holds the chunk, and every
 * FOLLOW_LOOK_MS it looks for the complete artifact (read from then on), a new .part (the
 * agent made another: read from it) or neither for FOLLOW_GONE_MS (the upload was discarded:
 * ABORTED). What it read is unverified; the read-back SHA-256 decides, as always.
 *
 * Progress: a WriteImageProgress{phase, done_bytes, total_bytes} at each phase's start
 * (done 0), then at most one per BLOCK_PROGRESS_MS, and one at its end (done == total), in
 * that order; dfnet_call_send blocks the worker while the caller's window is full.
 * Between two chunks the call's status is checked: a cancelled call, a passed deadline
 * or a stopping driver ends the work there (the device holds a partial image).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <pb_encode.h>

#include "dfnet/driver.h"
#include "dfnet/hw/block.pb.h"
#include "drivers/block/block.h"
#include "drivers/common/drvkit.h"

#define BLOCK_WINDOW (8u * BLOCK_CHUNK) /* written but not yet waited for */
#define FOLLOW_POLL_MS 5u               /* following an upload: how often its size is read */
#define FOLLOW_LOOK_MS 100u             /* ... and how often its files are looked for */
#define FOLLOW_GONE_MS 2000u            /* neither file this long: the upload was discarded */

typedef dfnet_hw_block_WriteImageProgress_Phase phase_t;

/* One WriteImage in progress. */
typedef struct image_run {
  block_drv_t *b;
  const block_job_t *job;
  char hex[65];   /* the digest asked for, lowercase hex */
  int art_fd;     /* -1: closed (also while following an upload that has not begun) */
  int dev_fd;     /* the resource "block" (the driver host's: never closed here) */
  uint64_t total; /* the artifact's size, bytes */
  bool following; /* art_fd is an upload's .part, or none yet: see await_bytes */
  block_dev_t dev;
  uint8_t *buf; /* BLOCK_CHUNK bytes */
  uint64_t started_ms;
  uint64_t last_item_ms;      /* of the current phase */
  uint64_t reported;          /* the last item's done_bytes */
  mbedtls_sha256_context sha; /* of the device's bytes read back, [0, verified) */
  uint64_t verified;          /* read back and hashed so far */
  bool behind;                /* WRITE reads back behind itself (sync_file_range works) */
  uint8_t *back;              /* BLOCK_CHUNK bytes for those reads */
  dfnet_status_t status;      /* the outcome, with msg */
  char msg[512];
} image_run_t;

static void hex_digest(const uint8_t d[32], char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Record the outcome (the first one wins) and return false, so that a step can end with
 * `return fail(...)`. */
static bool fail(image_run_t *r, dfnet_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(image_run_t *r, dfnet_status_t status, const char *fmt, ...) {
  if (r->status != DFNET_STATUS_OK)
    return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  r->status = status;
  return false;
}

/* Has the call ended, or is the driver stopping? Then record why and return false. */
static bool still_wanted(image_run_t *r, uint64_t done, const char *what) {
  dfnet_status_t st = dfnet_call_status(r->job->job.call);
  if (st == DFNET_STATUS_OK && dfnet_call_deadline_left_ms(r->job->job.call) == 0)
    st = DFNET_STATUS_DEADLINE_EXCEEDED;
  if (st == DFNET_STATUS_OK && atomic_load(&r->b->worker.stopping))
    st = DFNET_STATUS_UNAVAILABLE;
  if (st == DFNET_STATUS_OK)
    return true;
  return fail(r, st, "the call ended after %" PRIu64 " of %" PRIu64 " bytes %s: %s", done, r->total,
              what, dfnet_status_str(st));
}

/* Send a progress item: always at a phase's start and end (`edge`), else only when
 * BLOCK_PROGRESS_MS passed since the phase's last one. False when the call has ended. */
static bool progress(image_run_t *r, phase_t phase, uint64_t done, bool edge) {
  uint64_t now = drvkit__now_ms();
  if (!edge && now - r->last_item_ms < BLOCK_PROGRESS_MS)
    return true;
  r->last_item_ms = now;
  r->reported = done;
  dfnet_hw_block_WriteImageProgress item = {
      .phase = phase, .done_bytes = done, .total_bytes = r->total};
  uint8_t buf[dfnet_hw_block_WriteImageProgress_size];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  if (!pb_encode(&os, dfnet_hw_block_WriteImageProgress_fields, &item))
    return fail(r, DFNET_STATUS_INTERNAL, "a progress item cannot be encoded: %s",
                PB_GET_ERROR(&os));
  dfnet_status_t st = dfnet_call_send(r->job->job.call, buf, os.bytes_written);
  if (st != DFNET_STATUS_OK)
    return fail(r, st, "the call ended after %" PRIu64 " of %" PRIu64 " bytes: %s", done, r->total,
                dfnet_status_str(st));
  return true;
}

/* ---- open --------------------------------------------------------------------------- */

static bool open_artifact(image_run_t *r) {
  dfnet_status_t st = dfnet_driver_artifact_open(r->b->driver, r->job->sha256, &r->art_fd);
  if (st == DFNET_STATUS_NOT_FOUND && r->job->follow_upload_size > 0) {
    r->following = true; /* the .part is opened when the first chunk is wanted */
    r->total = r->job->follow_upload_size;
    return true;
  }
  switch (st) {
  case DFNET_STATUS_OK:
    break;
  case DFNET_STATUS_NOT_FOUND:
    return fail(r, st, "this host's artifact cache has no complete artifact %s: upload it first",
                r->hex);
  case DFNET_STATUS_UNAVAILABLE:
    return fail(r, st, "the host agent does not answer for its artifact cache");
  default:
    return fail(r, st, "artifact %s cannot be opened (the driver host's log says why)", r->hex);
  }
  struct stat sb;
  if (fstat(r->art_fd, &sb) != 0)
    return fail(r, DFNET_STATUS_INTERNAL, "artifact %s: fstat: %s", r->hex, strerror(errno));
  r->total = (uint64_t)sb.st_size;
  return true;
}

static bool open_device(image_run_t *r) {
  const char *path = r->b->path;
  r->dev_fd = r->b->fd;
  char why[400];
  dfnet_status_t st = block__describe(r->dev_fd, path, &r->dev, why, sizeof why);
  if (st != DFNET_STATUS_OK)
    return fail(r, st, "%s", why);
  int flags = fcntl(r->dev_fd, F_GETFL);
  if (flags >= 0 && (flags & O_ACCMODE) == O_RDONLY)
    return fail(r, DFNET_STATUS_UNAVAILABLE,
                "%s is read-only (write-protected: dfnet-host could open it for reading only)",
                path);
  if (r->dev.is_blkdev && r->total > r->dev.size)
    return fail(r, DFNET_STATUS_OUT_OF_RANGE,
                "artifact %s has %" PRIu64 " bytes: more than %s holds (%" PRIu64 " bytes)", r->hex,
                r->total, path, r->dev.size);
  return true;
}

/* ---- WRITE -------------------------------------------------------------------------- */

/* Following an upload: read from fd (a complete artifact's or a newer .part's) from now on. */
static void artifact_switch(image_run_t *r, int fd, bool complete) {
  if (r->art_fd >= 0)
    close(r->art_fd);
  r->art_fd = fd;
  r->following = !complete;
}

/* Following an upload: look for its files (see the top). True while it may go on. */
static bool follow_look(image_run_t *r, uint64_t *gone_since) {
  int fd = -1;
  struct stat a, b;
  if (dfnet_driver_artifact_open(r->b->driver, r->job->sha256, &fd) == DFNET_STATUS_OK) {
    if (fstat(fd, &a) != 0 || (uint64_t)a.st_size != r->total) {
      close(fd);
      return fail(r, DFNET_STATUS_FAILED_PRECONDITION,
                  "the complete artifact %s is not the %" PRIu64 " bytes asked to follow", r->hex,
                  r->total);
    }
    artifact_switch(r, fd, true);
    return true;
  }
  if (dfnet_driver_artifact_open_partial(r->b->driver, r->job->sha256, &fd) == DFNET_STATUS_OK) {
    *gone_since = 0;
    if (r->art_fd < 0 || fstat(fd, &a) != 0 || fstat(r->art_fd, &b) != 0 || a.st_ino != b.st_ino)
      artifact_switch(r, fd, false);
    else
      close(fd);
    return true;
  }
  if (r->art_fd < 0) /* the upload has not begun: wait for it (the deadline bounds it) */
    return true;
  uint64_t now = drvkit__now_ms();
  if (*gone_since == 0)
    *gone_since = now;
  return now - *gone_since < FOLLOW_GONE_MS ||
         fail(r, DFNET_STATUS_ABORTED,
              "the upload of artifact %s was discarded (neither its .part nor the complete "
              "artifact is in the host's cache)",
              r->hex);
}

/* Following an upload: wait until the artifact's file holds `want` bytes. */
static bool await_bytes(image_run_t *r, uint64_t off, uint64_t want) {
  uint64_t looked = 0, gone_since = 0;
  for (;;) {
    struct stat sb;
    if (r->art_fd >= 0 && fstat(r->art_fd, &sb) == 0 && (uint64_t)sb.st_size >= want)
      return true;
    if (!still_wanted(r, off, "written"))
      return false;
    /* what is written so far is told before waiting for more */
    if (off > r->reported && !progress(r, dfnet_hw_block_WriteImageProgress_Phase_WRITE, off, true))
      return false;
    uint64_t now = drvkit__now_ms();
    if (r->art_fd < 0 || now - looked >= FOLLOW_LOOK_MS) {
      looked = now;
      if (!follow_look(r, &gone_since))
        return false;
      if (!r->following)
        return true; /* complete: all there */
      if (r->art_fd < 0)
        usleep(FOLLOW_POLL_MS * 1000u);
      continue;
    }
    usleep(FOLLOW_POLL_MS * 1000u);
  }
}

/* pread exactly n bytes of the artifact at off. */
static bool read_artifact(image_run_t *r, uint64_t off, size_t n) {
  if (r->following && !await_bytes(r, off, off + n))
    return false;
  for (size_t got = 0; got < n;) {
    ssize_t k = pread(r->art_fd, r->buf + got, n - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return fail(r, DFNET_STATUS_INTERNAL, "artifact %s: read at %" PRIu64 ": %s", r->hex,
                  off + got, strerror(errno));
    if (k == 0)
      return fail(r, DFNET_STATUS_INTERNAL,
                  "artifact %s ends after %" PRIu64 " of %" PRIu64 " bytes", r->hex, off + got,
                  r->total);
    got += (size_t)k;
  }
  return true;
}

/* pwrite exactly n bytes to the device at off. */
static bool write_device(image_run_t *r, uint64_t off, size_t n) {
  for (size_t put = 0; put < n;) {
    ssize_t k = pwrite(r->dev_fd, r->buf + put, n - put, (off_t)(off + put));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return fail(r, DFNET_STATUS_UNAVAILABLE, "%s: write at %" PRIu64 ": %s", r->b->path,
                  off + put, k < 0 ? strerror(errno) : "nothing written");
    put += (size_t)k;
  }
  return true;
}

static bool read_back(image_run_t *r, uint8_t *buf, uint64_t off, size_t n);

/* Start the writeback of [off, off + n); wait for the chunk BLOCK_WINDOW behind it, drop it
 * from the page cache and read it back. A file system without sync_file_range (EINVAL) is
 * left to fsync, and its bytes to VERIFY. */
static bool pace_writeback(image_run_t *r, uint64_t off, size_t n) {
  unsigned wait = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  int rc = sync_file_range(r->dev_fd, (off_t)off, (off_t)n, SYNC_FILE_RANGE_WRITE);
  if (rc == 0 && off >= BLOCK_WINDOW) {
    uint64_t old = off - BLOCK_WINDOW;
    rc = sync_file_range(r->dev_fd, (off_t)old, BLOCK_CHUNK, wait);
    if (rc == 0)
      (void)posix_fadvise(r->dev_fd, (off_t)old, BLOCK_CHUNK, POSIX_FADV_DONTNEED);
    if (rc == 0 && r->behind && old == r->verified && !read_back(r, r->back, old, BLOCK_CHUNK))
      return false;
  }
  if (rc != 0)
    r->behind = false;
  if (rc != 0 && errno != EINVAL && errno != ESPIPE && errno != ENOSYS)
    return fail(r, DFNET_STATUS_UNAVAILABLE, "%s: writing back at %" PRIu64 ": %s", r->b->path, off,
                strerror(errno));
  return true;
}

static bool write_phase(image_run_t *r) {
  const phase_t phase = dfnet_hw_block_WriteImageProgress_Phase_WRITE;
  if (!progress(r, phase, 0, true))
    return false;
  for (uint64_t off = 0; off < r->total;) {
    size_t n = r->total - off < BLOCK_CHUNK ? (size_t)(r->total - off) : BLOCK_CHUNK;
    if (!still_wanted(r, off, "written") || !read_artifact(r, off, n) || !write_device(r, off, n) ||
        !pace_writeback(r, off, n))
      return false;
    off += n;
    if (!progress(r, phase, off, off == r->total))
      return false;
  }
  return r->total > 0 || progress(r, phase, 0, true);
}

/* ---- SYNC --------------------------------------------------------------------------- */

static bool sync_phase(image_run_t *r) {
  const phase_t phase = dfnet_hw_block_WriteImageProgress_Phase_SYNC;
  if (!progress(r, phase, 0, true))
    return false;
  while (fsync(r->dev_fd) != 0) {
    if (errno != EINTR)
      return fail(r, DFNET_STATUS_UNAVAILABLE, "%s: fsync: %s", r->b->path, strerror(errno));
  }
  /* the read-back must come from the device, not from the pages just written */
  (void)posix_fadvise(r->dev_fd, 0, 0, POSIX_FADV_DONTNEED);
  if (r->dev.is_blkdev)
    (void)ioctl(r->dev_fd, BLKFLSBUF, 0);
  return progress(r, phase, r->total, true);
}

/* ---- VERIFY ------------------------------------------------------------------------- */

/* Read back the device's n bytes at off (into buf) and hash them on: off must be
 * r->verified. */
static bool read_back(image_run_t *r, uint8_t *buf, uint64_t off, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t k = pread(r->dev_fd, buf + got, n - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return fail(r, DFNET_STATUS_UNAVAILABLE, "%s: read back at %" PRIu64 ": %s", r->b->path,
                  off + got, strerror(errno));
    if (k == 0)
      return fail(r, DFNET_STATUS_DATA_LOSS,
                  "%s: read back only %" PRIu64 " of the %" PRIu64 " bytes written", r->b->path,
                  off + got, r->total);
    got += (size_t)k;
  }
  if (mbedtls_sha256_update_ret(&r->sha, buf, n) != 0)
    return fail(r, DFNET_STATUS_INTERNAL, "SHA-256 update failed");
  (void)posix_fadvise(r->dev_fd, (off_t)off, (off_t)n, POSIX_FADV_DONTNEED);
  r->verified = off + n;
  return true;
}

static bool verify_phase(image_run_t *r) {
  const phase_t phase = dfnet_hw_block_WriteImageProgress_Phase_VERIFY;
  if (!progress(r, phase, r->verified, true))
    return false;
  while (r->verified < r->total) {
    uint64_t off = r->verified;
    size_t n = r->total - off < BLOCK_CHUNK ? (size_t)(r->total - off) : BLOCK_CHUNK;
    if (!still_wanted(r, off, "read back") || !read_back(r, r->buf, off, n) ||
        !(r->verified == r->total || progress(r, phase, r->verified, false)))
      return false;
  }
  uint8_t digest[32];
  if (mbedtls_sha256_finish_ret(&r->sha, digest) != 0)
    return fail(r, DFNET_STATUS_INTERNAL, "SHA-256 cannot finish");
  if (!progress(r, phase, r->total, true))
    return false;
  if (memcmp(digest, r->job->sha256, sizeof digest) != 0) {
    char got[65];
    hex_digest(digest, got);
    return fail(r, DFNET_STATUS_DATA_LOSS, "read-back SHA-256 %s differs from the artifact's %s",
                got, r->hex);
  }
  double s = (double)(drvkit__now_ms() - r->started_ms) / 1000.0;
  snprintf(r->msg, sizeof r->msg,
           "wrote %" PRIu64 " bytes to %s in %.1f s; read-back SHA-256 matches", r->total,
           r->b->path, s);
  return true;
}

/* ---- the job ------------------------------------------------------------------------ */

/* Answer the call with the outcome, after telling the dispatcher that the device is free
 * (posted first: a caller that sends its next WriteImage once it has this answer finds the
 * device free). */
static void finish(image_run_t *r) {
  block_drv_t *b = r->b;
  dfnet_call_t *call = r->job->job.call;
  (void)dfnet_driver_post(b->driver, 0, block__job_done, (void *)(uintptr_t)r->job->id);
  dfnet_status_t st = r->status;
  bool device_trouble = st == DFNET_STATUS_UNAVAILABLE || st == DFNET_STATUS_DATA_LOSS ||
                        st == DFNET_STATUS_INTERNAL || st == DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_driver_log(b->driver, device_trouble ? DFNET_DRIVER_LOG_WARN : DFNET_DRIVER_LOG_INFO,
                   "WriteImage %s: %s: %s", r->hex, dfnet_status_str(st), r->msg);
  (void)dfnet_call_reply(call, st, r->msg, NULL, 0);
}

void block__write_image(block_drv_t *b, const block_job_t *job) {
  image_run_t r = {.b = b, .job = job, .art_fd = -1, .dev_fd = -1, .status = DFNET_STATUS_OK};
  hex_digest(job->sha256, r.hex);
  r.started_ms = drvkit__now_ms();
  if (!still_wanted(&r, 0, "written") || !open_artifact(&r) || !open_device(&r))
    goto close_files;
  const char *who = dfnet_call_caller(job->job.call);
  dfnet_driver_log(b->driver, DFNET_DRIVER_LOG_INFO,
                   "WriteImage %s (%" PRIu64 " bytes) to %s%s%s%s", r.hex, r.total, b->path,
                   r.following ? ", following its upload" : "", who[0] != '\0' ? " for " : "", who);
  r.buf = aligned_alloc(4096, BLOCK_CHUNK);
  r.back = aligned_alloc(4096, BLOCK_CHUNK);
  mbedtls_sha256_init(&r.sha);
  r.behind = true;
  if (r.buf == NULL || r.back == NULL)
    fail(&r, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for two %u-byte buffers", BLOCK_CHUNK);
  else if (mbedtls_sha256_starts_ret(&r.sha, 0) != 0)
    fail(&r, DFNET_STATUS_INTERNAL, "SHA-256 cannot start");
  else
    (void)(write_phase(&r) && sync_phase(&r) && verify_phase(&r));
  mbedtls_sha256_free(&r.sha);
  free(r.back);
  free(r.buf);
close_files:
  if (r.art_fd >= 0)
    close(r.art_fd);
  finish(&r);
}
