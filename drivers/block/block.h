/* block: the driver's context and its WriteImage jobs, shared by block.c (lifecycle, the
 * handlers, the worker thread) and write_image.c (one WriteImage, run on the worker).
 *
 * Threads: `live_id` and `next_id` are the dispatcher's alone; a job belongs to the worker
 * (drivers/common/worker.h) from the moment it is posted until it has answered its call.
 */
#ifndef DFNET_DRIVERS_BLOCK_H
#define DFNET_DRIVERS_BLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "drivers/common/worker.h"

#define BLOCK_CHUNK (1024u * 1024u) /* bytes per read and write */
#define BLOCK_PROGRESS_MS 250u      /* at most one progress item per phase in this time */

/* One WriteImage the dispatcher accepted for the worker. */
typedef struct block_job {
  drvkit_job_t job;   /* first: the worker's (its call) */
  uint64_t id;        /* names it in the dispatcher's tasks and cancel callback, never reused */
  uint8_t sha256[32]; /* the artifact's digest, WriteImageRequest.artifact_sha256 */
  uint64_t follow_upload_size; /* WriteImageRequest.follow_upload_size: 0, or the size of
                                  an artifact whose upload may still be under way */
} block_job_t;

/* The driver's context (allocated zeroed by the driver host). */
typedef struct block_drv {
  dfnet_driver_t *driver;
  const char *path; /* "dfnet.platform.BLOCK": owned by the driver host until `stop` */
  int fd;           /* the resource "block": that file, O_RDWR (O_RDONLY: write-protected);
                       the driver host's, valid until `stop` returns; pread/pwrite only, so
                       the worker and the dispatcher share it */
  /* dispatcher only */
  uint64_t next_id;
  uint64_t live_id; /* the accepted WriteImage whose call has not ended; 0: none */
  /* runs the WriteImages (one waiting at most); its `stopping` ends one between two chunks */
  drvkit_worker_t worker;
} block_drv_t;

/* What a device file is. */
typedef struct block_dev {
  bool is_blkdev; /* a block device; else a regular file */
  uint64_t size;  /* bytes: BLKGETSIZE64, or st_size */
  bool read_only; /* BLKROGET; a regular file: not writable by this process */
} block_dev_t;

/* Describe the device file `path`, open as `fd`, into *out: its kind, its size in bytes and
 * its write protection (fstat, then BLKGETSIZE64 and BLKROGET for a block device; a regular
 * file, or any file fd was opened read-only for, is read-only when fd is O_RDONLY).
 * Any thread; brief (ioctls on an open file).
 * Returns OK; UNAVAILABLE (fstat or an ioctl failed, or the file is neither a block device
 * nor a regular file), the reason in why[why_size] with the path and the errno text. */
dfnet_status_t block__describe(int fd, const char *path, block_dev_t *out, char *why,
                               size_t why_size) __attribute__((warn_unused_result));

/* Run WriteImage `job` (write_image.c): open the artifact and the device, copy, fsync, drop
 * the device's page cache, read back and compare the SHA-256, streaming WriteImageProgress
 * items; between two chunks it stops when the call has ended or the driver is stopping.
 * Answers the job's call exactly once and, first, posts block__job_done(job->id) to the
 * dispatcher. Logs the start (digest, size) and the end (status, message) at info, or the
 * end at warn for a device or cache failure. The job stays the caller's (free it after).
 * Thread: the worker (it blocks for as long as the image takes). */
void block__write_image(block_drv_t *b, const block_job_t *job);

/* Task for the dispatcher (dfnet_task_fn): the WriteImage named by the id in `arg` is
 * answered, so it no longer holds the device. */
void block__job_done(dfnet_driver_t *driver, void *ctx, void *arg);

#endif /* DFNET_DRIVERS_BLOCK_H */
