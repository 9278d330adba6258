/* block: writes disk images to a block device, served as dfnet.hw.block.Block
 * (proto/dfnet/hw/block.proto) with class "block", on a board-file platform device whose
 * "block" resource names the device file (host/enum/board_device.c: "dfnet.platform.BLOCK"): a
 * USB stick or an SD mux's card reader on the lab PC, a loop device or a regular file in
 * tests. labgrid's USBStorageDriver.write_image is the model; the images come from the
 * host's artifact cache (dfnet_driver_artifact_open, proto/dfnet/lab/artifact.proto).
 *
 *   start   takes the device file dfnet-host opened and handed as the resource "block"
 *           (include/dfnet/driver.h "Resources"; the driver opens nothing: the node's
 *           property names it in messages; FAILED_PRECONDITION when there is none), starts
 *           the worker thread, serves Block and publishes class "block". dfnet-host holds a
 *           block device O_EXCL for the driver: nobody mounts it while the driver runs,
 *           and a mounted one fails the start. The descriptor is the driver's for its whole
 *           life: a card swapped in the reader is the same device, but a USB stick
 *           unplugged and plugged again is not (the descriptor then fails with ENODEV/EIO:
 *           `dfnet driver restart` has dfnet-host open it anew).
 *   Info    runs on the dispatcher: fstat and two ioctls on the descriptor.
 *   WriteImage
 *           is checked on the dispatcher (the digest's length; one WriteImage at a time:
 *           FAILED_PRECONDITION while the call of another has not ended) and run on the
 *           worker (write_image.c), which never blocks the dispatcher. A WriteImage whose
 *           call ended (cancelled, deadline) stops between two chunks; the next one may be
 *           accepted at once and waits for the worker meanwhile (one such at most).
 *   stop    (prepare_stop) sets the stop flag the worker polls between chunks (its call has
 *           already ended UNAVAILABLE), joins it and ends a WriteImage still queued
 *           UNAVAILABLE.
 *
 * Threads: handlers and the cancel callback on the default dispatcher (no allow_sync_calls);
 * the worker sends the progress items and answers its calls itself (dfnet_call_send and
 * dfnet_call_reply run on any thread; a full credit window blocks the worker, never the
 * dispatcher).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bind/dfnet_platform.h"
#include "dfnet/driver.h"
#include "dfnet/hw/block.pb.h"
#include "drivers/block/block.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/start.h"

static void *id_arg(uint64_t id) { return (void *)(uintptr_t)id; }
static uint64_t arg_id(void *arg) { return (uint64_t)(uintptr_t)arg; }

dfnet_status_t block__describe(int fd, const char *path, block_dev_t *out, char *why,
                               size_t why_size) {
  struct stat sb;
  *out = (block_dev_t){0};
  if (fstat(fd, &sb) != 0) {
    snprintf(why, why_size, "%s: fstat: %s", path, strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
  }
  int flags = fcntl(fd, F_GETFL);
  bool fd_read_only = flags >= 0 && (flags & O_ACCMODE) == O_RDONLY;
  if (S_ISREG(sb.st_mode)) {
    out->size = (uint64_t)sb.st_size;
    out->read_only = fd_read_only;
    return DFNET_STATUS_OK;
  }
  if (!S_ISBLK(sb.st_mode)) {
    snprintf(why, why_size, "%s is neither a block device nor a regular file", path);
    return DFNET_STATUS_UNAVAILABLE;
  }
  out->is_blkdev = true;
  int ro = 0;
  if (ioctl(fd, BLKGETSIZE64, &out->size) != 0 || ioctl(fd, BLKROGET, &ro) != 0) {
    snprintf(why, why_size, "%s: cannot size the block device: %s", path, strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
  }
  out->read_only = ro != 0 || fd_read_only;
  return DFNET_STATUS_OK;
}

/* ---- the worker --------------------------------------------------------------------- */

/* Run a WriteImage on the worker (drvkit_run_fn). */
static void run_write_image(void *ctx, drvkit_job_t *job) {
  block__write_image(ctx, (const block_job_t *)job);
}

void block__job_done(dfnet_driver_t *driver, void *ctx, void *arg) {
  (void)driver;
  block_drv_t *b = ctx;
  if (b->live_id == arg_id(arg))
    b->live_id = 0;
}

/* The WriteImage's call ended before its answer (cancel callback, on the dispatcher): the
 * worker stops at its next chunk, and the device is free for the next WriteImage. */
static void write_image_ended(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  (void)call;
  (void)why;
  block__job_done(NULL, ctx, arg);
}

/* ---- handlers ------------------------------------------------------------------------ */

static void block_write_image(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  block_drv_t *b = ctx;
  dfnet_hw_block_WriteImageRequest req;
  if (!drvkit__decode(call, dfnet_hw_block_WriteImageRequest_fields, &req, request, len))
    return;
  if (req.artifact_sha256.size != 32) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT,
                 "artifact_sha256 has %u bytes: expected 32 (a SHA-256 digest)",
                 (unsigned)req.artifact_sha256.size);
    return;
  }
  if (b->live_id != 0 || drvkit__worker_pending(&b->worker) > 0) {
    drvkit__fail(call, DFNET_STATUS_FAILED_PRECONDITION, "%s: a WriteImage is already running",
                 b->path);
    return;
  }
  block_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory queueing the WriteImage");
    return;
  }
  job->id = ++b->next_id;
  job->job.call = call;
  memcpy(job->sha256, req.artifact_sha256.bytes, sizeof job->sha256);
  job->follow_upload_size = req.follow_upload_size;
  /* before the worker has it: the handle is valid until the worker answers */
  if (!drvkit__worker_post(&b->worker, &job->job)) { /* it stops */
    free(job);
    drvkit__fail(call, DFNET_STATUS_UNAVAILABLE, "the driver is stopping");
    return;
  }
  (void)dfnet_call_on_cancel(call, write_image_ended, id_arg(job->id));
  b->live_id = job->id;
}

static void block_info(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  block_drv_t *b = ctx;
  dfnet_hw_block_InfoRequest req;
  if (!drvkit__decode(call, dfnet_hw_block_InfoRequest_fields, &req, request, len))
    return;
  block_dev_t dev;
  char why[400];
  dfnet_status_t st = block__describe(b->fd, b->path, &dev, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    drvkit__fail(call, st, "%s", why);
    return;
  }
  dfnet_hw_block_BlockInfo reply = dfnet_hw_block_BlockInfo_init_zero;
  snprintf(reply.path, sizeof reply.path, "%s", b->path);
  reply.size_bytes = dev.size;
  reply.read_only = dev.read_only;
  drvkit__reply(call, dfnet_hw_block_BlockInfo_fields, &reply);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static dfnet_status_t block_start(dfnet_driver_t *driver, void *ctx) {
  block_drv_t *b = ctx;
  b->driver = driver;
  b->path = drvkit__prop_string(driver, BIND_DFNET_PLATFORM_BLOCK);
  if (b->path == NULL || b->path[0] != '/') {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "the node has no \"%s\" property naming a device file by its absolute path",
                     BIND_DFNET_PLATFORM_BLOCK);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  b->fd = drvkit__resource(driver, "block", "\"" BIND_DFNET_PLATFORM_BLOCK "\"");
  if (b->fd < 0)
    return DFNET_STATUS_FAILED_PRECONDITION;
  if (drvkit__worker_start(&b->worker, 1, run_write_image, b) != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "cannot start the worker thread");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  static const dfnet_method_t methods[] = {
      {.name = "WriteImage", .handler = block_write_image, .server_streaming = true},
      {.name = "Info", .handler = block_info},
  };
  dfnet_status_t st = drvkit__serve(driver, "dfnet.hw.block.Block", methods,
                                    sizeof methods / sizeof methods[0], "block");
  if (st != DFNET_STATUS_OK) {
    drvkit__worker_fini(&b->worker);
    return st;
  }
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving the block device %s", b->path);
  return DFNET_STATUS_OK;
}

/* A WriteImage running stops at its next chunk (its call has ended); one queued ends
 * UNAVAILABLE. */
static void block_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  block_drv_t *b = ctx;
  drvkit__worker_stop(&b->worker);
}

static void block_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  block_drv_t *b = ctx;
  drvkit__worker_fini(&b->worker);
}

DFNET_DRIVER("block", block_drv_t, .start = block_start, .prepare_stop = block_prepare_stop,
             .stop = block_stop);
