/* virtio-rng: entropy from the virtio entropy device (virtio 1.2 spec section 5.4), served
 * as dfnet.hw.rng.Rng (proto/dfnet/hw/rng.proto).
 *
 * The kernel already drives the device: virtio-pci binds the PCI function, virtio_rng
 * binds the virtio device under it and registers it with the hw_random core, which
 * exposes it as /dev/hwrng (Documentation/admin-guide/hw_random.rst). This driver is the
 * network face of that device:
 *
 *   start   checks through sysfs that the kernel's virtio_rng sits on this very PCI
 *           function (<function>/virtio<N>/driver -> virtio_rng) and that hw_random reads
 *           from virtio_rng, takes the device file, publishes class "rng" and serves Rng.
 *           Anything else is FAILED_PRECONDITION with the reason, which the manager shows
 *           on the node. It opens nothing by path (include/dfnet/driver.h "Resources"):
 *           sysfs is read through the function's directory dfnet-host hands as "sysfs"
 *           (openat, readlinkat), hw_random's rng_current through the manifest's optional
 *           resource "/sys/class/misc/hw_random/rng_current" (not handed: not checked),
 *           and the device file is the manifest's resource "/dev/hwrng"
 *           (meta/virtio-rng.json "resources").
 *   Read    reads `count` bytes. The device's descriptor is O_NONBLOCK (hw_random has no poll,
 *           and a blocking read sleeps in the device driver where only a fatal signal
 *           ends it), so a read that finds no entropy ready is retried from a timer on
 *           the dispatcher every 5 ms until it is complete, the call is cancelled or
 *           passes its deadline, or the device gave nothing for 5 s (a stuck device):
 *           DEADLINE_EXCEEDED with how many bytes came. A hypervisor may rate-limit the
 *           device (QEMU's virtio-rng gives about 10 KB/s here), so a large Read is slow
 *           but never stuck. The dispatcher never blocks: no allow_sync_calls needed.
 *
 *   A device that fails (a read error, an end of file) fails the Read UNAVAILABLE; the
 *   next Read tries the same descriptor again (it was handed: the driver cannot reopen it;
 *   `dfnet driver restart` has the agent open it anew).
 *
 * Settings: the device file is "/dev/hwrng", or "device" in the manifest's program.config
 * object ({"config": {"device": "/dev/hwrng1"}}), or the environment variable
 * DFNET_VIRTIO_RNG_DEVICE (tests point it at other files). hw_random's current source is
 * read from "/sys/class/misc/hw_random/rng_current", or "rng_current" in program.config.
 * Each setting names the resource to use, so the manifest's "resources" must name that
 * file too (and the host's --allow-resource allow it).
 *
 * Node properties read: "dfnet.pci.SYSFS_PATH" (host/enum/pci.c), for messages.
 * Resources: "sysfs", the device file and rng_current by their paths (the driver host's
 * descriptors: never closed here).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pb_encode.h>

#include "dfnet/driver.h"
#include "dfnet/hw/rng.pb.h"
#include "drivers/common/drvkit.h"
#include "drivers/common/fairq.h"
#include "drivers/common/retry.h"
#include "drivers/common/start.h"

#define RNG_READ_MAX 65536u /* Rng.Read's bound on count, bytes */
#define RNG_STALL_MS 5000u  /* a device that gives nothing for this long is stuck */
#define RNG_RETRY_MS 5u     /* poll period while the device has nothing ready */
#define RNG_DEVICE_DEFAULT "/dev/hwrng"
#define RNG_CURRENT_DEFAULT "/sys/class/misc/hw_random/rng_current"

/* One Read waiting or in progress. Reads are served one at a time, each caller's in order,
 * the callers in turn (fairq.h): one caller's backlog delays another's Read by one Read. */
typedef struct rng_read {
  dfnet_call_t *call;
  uint8_t *buf;
  size_t count; /* bytes asked for */
  size_t got;   /* bytes read so far */
  uint64_t started_ms;
  uint64_t progress_ms; /* when the device last gave bytes (or the Read began) */
  void *next;           /* fairq link */
} rng_read_t;

/* The driver's context (allocated zeroed by the driver host). */
typedef struct virtio_rng {
  dfnet_driver_t *driver;
  char device[256];     /* device file: the name of its resource */
  int fd;               /* its descriptor (the driver host's), O_NONBLOCK */
  fairq_t reads;        /* Reads waiting; the next served first (fairq__peek) */
  drvkit_retry_t retry; /* runs pump again while the device has nothing ready */
} virtio_rng_t;

/* ---- start: is this PCI function the kernel's virtio_rng? ---------------------------- */

/* Find the virtio device under the PCI function whose sysfs directory is `dir` (the
 * resource "sysfs"; sysfs_path names it in messages) and the kernel driver bound to it. OK
 * when it is virtio_rng; else FAILED_PRECONDITION with the reason in why. */
static dfnet_status_t check_kernel_virtio_rng(int dir, const char *sysfs_path, char *why,
                                              size_t cap) {
  int list_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *list = list_fd >= 0 ? fdopendir(list_fd) : NULL;
  if (list == NULL) {
    snprintf(why, cap, "cannot read the PCI function's sysfs directory %s: %s", sysfs_path,
             strerror(errno));
    if (list_fd >= 0)
      close(list_fd);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  char seen[160] = "";
  dfnet_status_t st = DFNET_STATUS_FAILED_PRECONDITION;
  struct dirent *e;
  while ((e = readdir(list)) != NULL) {
    if (strncmp(e->d_name, "virtio", 6) != 0 || e->d_name[6] < '0' || e->d_name[6] > '9')
      continue;
    char path[300], target[4096];
    snprintf(path, sizeof path, "%s/driver", e->d_name);
    const char *bound = "no driver";
    if (drvkit__read_link_at(dir, path, target, sizeof target) == DFNET_STATUS_OK)
      bound = drvkit__basename(target);
    if (strcmp(bound, "virtio_rng") == 0) {
      st = DFNET_STATUS_OK;
      break;
    }
    snprintf(seen, sizeof seen, "%.32s is bound to %.64s", e->d_name, bound);
  }
  closedir(list);
  if (st == DFNET_STATUS_OK)
    return st;
  if (seen[0] == '\0') {
    char target[4096];
    bool has = drvkit__read_link_at(dir, "driver", target, sizeof target) == DFNET_STATUS_OK;
    snprintf(seen, sizeof seen, "no virtio device under it (kernel PCI driver: %.64s)",
             has ? drvkit__basename(target) : "none");
  }
  snprintf(why, cap, "%.64s is not the kernel's virtio_rng (%s), so %s does not read it",
           drvkit__basename(sysfs_path), seen, RNG_DEVICE_DEFAULT);
  return st;
}

/* hw_random serves /dev/hwrng from its *current* source, which may be another rng (a
 * TPM, a CPU's). When the driver was handed hw_random's "rng_current" attribute (the
 * manifest's optional resource RNG_CURRENT_DEFAULT, or the file the setting "rng_current"
 * names), check that the current source is a virtio_rng. Not handed (a machine without
 * hw_random's attributes, a host whose --allow-resource leaves it out) or unreadable: the
 * check is skipped, logged at debug. */
static dfnet_status_t check_hwrng_current(dfnet_driver_t *driver, char *why, size_t cap) {
  char path[128]; /* a manifest resource's path: at most 127 bytes */
  if (drvkit__setting(driver, "rng_current", NULL, RNG_CURRENT_DEFAULT, path, sizeof path) !=
      DFNET_STATUS_OK) {
    snprintf(why, cap, "setting \"rng_current\": must be a path shorter than %zu bytes",
             sizeof path);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  int fd = dfnet_driver_resource_fd(driver, path);
  char current[128];
  ssize_t n = fd >= 0 ? pread(fd, current, sizeof current - 1, 0) : -1;
  if (n < 0) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_DEBUG,
                     "hw_random's current source not checked: %s %s", path,
                     fd < 0 ? "was not handed" : strerror(errno));
    return DFNET_STATUS_OK;
  }
  while (n > 0 && (current[n - 1] == '\n' || current[n - 1] == ' '))
    n--;
  current[n] = '\0';
  if (strncmp(current, "virtio_rng", 10) == 0)
    return DFNET_STATUS_OK;
  snprintf(why, cap, "hw_random's current source is \"%s\", not virtio_rng (%s)", current, path);
  return DFNET_STATUS_FAILED_PRECONDITION;
}

/* The device file's descriptor: the resource named by rng->device, made non-blocking. */
static dfnet_status_t take_device(virtio_rng_t *rng, char *why, size_t cap) {
  rng->fd = dfnet_driver_resource_fd(rng->driver, rng->device);
  if (rng->fd < 0) {
    snprintf(why, cap,
             "%s was not handed to the driver: the manifest's \"resources\" must name it "
             "(and dfnet-host --allow-resource allow it)",
             rng->device);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  int flags = fcntl(rng->fd, F_GETFL);
  if (flags < 0 || fcntl(rng->fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    snprintf(why, cap, "%s: cannot make it non-blocking: %s", rng->device, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

/* ---- Read ------------------------------------------------------------------------------ */

static bool encode_data(pb_ostream_t *stream, const pb_field_t *field, void *const *arg) {
  const rng_read_t *job = *arg;
  return pb_encode_tag_for_field(stream, field) && pb_encode_string(stream, job->buf, job->got);
}

typedef enum { FILL_DONE, FILL_WAIT, FILL_FAILED } fill_t;

/* Read what the device has ready into the head job. FILL_FAILED sets *st and why. */
static fill_t fill(virtio_rng_t *rng, rng_read_t *job, dfnet_status_t *st, char *why, size_t cap) {
  while (job->got < job->count) {
    ssize_t n = read(rng->fd, job->buf + job->got, job->count - job->got);
    if (n > 0) {
      job->got += (size_t)n;
      job->progress_ms = drvkit__now_ms();
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return FILL_WAIT;
    int err = n < 0 ? errno : 0;
    snprintf(why, cap, "reading %s: %s (after %zu of %zu bytes)", rng->device,
             n == 0 ? "end of file" : strerror(err), job->got, job->count);
    *st = n == 0 ? DFNET_STATUS_UNAVAILABLE : drvkit__status_from_errno(err);
    if (*st == DFNET_STATUS_INVALID_ARGUMENT || *st == DFNET_STATUS_INTERNAL)
      *st = DFNET_STATUS_UNAVAILABLE; /* the device failed, not the caller */
    return FILL_FAILED;
  }
  return FILL_DONE;
}

static void pop_head(virtio_rng_t *rng) {
  rng_read_t *job = fairq__pop(&rng->reads);
  free(job->buf);
  free(job);
}

/* Serve the queued Reads as far as the device allows; re-arm the retry timer when it has
 * nothing ready. Runs on the dispatcher. */
static void pump(virtio_rng_t *rng) {
  rng_read_t *job;
  while ((job = fairq__peek(&rng->reads)) != NULL) {
    dfnet_status_t st = DFNET_STATUS_OK;
    char why[400];
    fill_t r = fill(rng, job, &st, why, sizeof why);
    if (r == FILL_DONE) {
      dfnet_hw_rng_ReadReply reply = dfnet_hw_rng_ReadReply_init_zero;
      reply.data.funcs.encode = encode_data;
      reply.data.arg = job;
      drvkit__reply(job->call, dfnet_hw_rng_ReadReply_fields, &reply);
    } else if (r == FILL_FAILED) {
      drvkit__fail(job->call, st, "%s", why);
    } else if ((st = dfnet_call_status(job->call)) != DFNET_STATUS_OK) {
      /* Cancelled or past its deadline: the caller already has that status. */
      (void)dfnet_call_reply(job->call, st, NULL, NULL, 0);
    } else if (drvkit__now_ms() - job->progress_ms >= RNG_STALL_MS) {
      drvkit__fail(job->call, DFNET_STATUS_DEADLINE_EXCEEDED,
                   "%s gave nothing for %u ms: %zu of %zu bytes in %llu ms", rng->device,
                   RNG_STALL_MS, job->got, job->count,
                   (unsigned long long)(drvkit__now_ms() - job->started_ms));
    } else {
      drvkit__retry_arm(rng->driver, &rng->retry);
      return; /* stopping: stop() ends what is left */
    }
    pop_head(rng);
  }
}

static void pump_again(void *ctx) { pump(ctx); }

/* /dfnet.hw.rng.Rng/Read */
static void rng_read(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  virtio_rng_t *rng = ctx;
  dfnet_hw_rng_ReadRequest req = dfnet_hw_rng_ReadRequest_init_zero;
  if (!drvkit__decode(call, dfnet_hw_rng_ReadRequest_fields, &req, request, len))
    return;
  if (req.count == 0 || req.count > RNG_READ_MAX) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "count %u: must be 1..%u bytes", req.count,
                 RNG_READ_MAX);
    return;
  }
  rng_read_t *job = calloc(1, sizeof *job);
  if (job == NULL || (job->buf = malloc(req.count)) == NULL) {
    free(job);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory for %u bytes", req.count);
    return;
  }
  job->call = call;
  job->count = req.count;
  job->started_ms = drvkit__now_ms();
  job->progress_ms = job->started_ms;
  if (!fairq__push(&rng->reads, dfnet_call_caller(call), job)) {
    free(job->buf);
    free(job);
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory queueing the Read");
    return;
  }
  if (fairq__count(&rng->reads) == 1) /* else a pump is already waiting for the device */
    pump(rng);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static dfnet_status_t virtio_rng_start(dfnet_driver_t *driver, void *ctx) {
  virtio_rng_t *rng = ctx;
  char why[600];
  rng->driver = driver;
  rng->fd = -1;
  fairq__init(&rng->reads, offsetof(rng_read_t, next));
  rng->retry = (drvkit_retry_t){.run = pump_again, .delay_ms = RNG_RETRY_MS};

  const char *sysfs_path = drvkit__pci_sysfs_path(driver);
  if (sysfs_path == NULL)
    return DFNET_STATUS_FAILED_PRECONDITION;
  int dir = drvkit__resource(driver, "sysfs", "a PCI function's \"dfnet.pci.SYSFS_PATH\"");
  if (dir < 0)
    return DFNET_STATUS_FAILED_PRECONDITION;
  dfnet_status_t st = check_kernel_virtio_rng(dir, sysfs_path, why, sizeof why);
  if (st == DFNET_STATUS_OK)
    st = check_hwrng_current(driver, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    return st;
  }
  st = drvkit__setting(driver, "device", "DFNET_VIRTIO_RNG_DEVICE", RNG_DEVICE_DEFAULT, rng->device,
                       sizeof rng->device);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "setting \"device\": must be a path shorter than %zu bytes",
                     sizeof rng->device);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (take_device(rng, why, sizeof why) != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "%s", why);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  static const dfnet_method_t methods[] = {{.name = "Read", .handler = rng_read}};
  st = drvkit__serve(driver, "dfnet.hw.rng.Rng", methods, 1, "rng");
  if (st != DFNET_STATUS_OK)
    return st;
  dfnet_driver_log(driver, DFNET_DRIVER_LOG_INFO, "serving %s for %s", rng->device,
                   drvkit__basename(sysfs_path));
  return DFNET_STATUS_OK;
}

static void virtio_rng_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  virtio_rng_t *rng = ctx;
  /* The retry timer is dropped with the dispatcher: end the Reads it was waiting for. */
  rng_read_t *job;
  while ((job = fairq__peek(&rng->reads)) != NULL) {
    (void)dfnet_call_reply(job->call, DFNET_STATUS_UNAVAILABLE, "the driver stopped", NULL, 0);
    pop_head(rng);
  }
  fairq__destroy(&rng->reads); /* rng->fd is the driver host's, closed after `stop` */
}

DFNET_DRIVER("virtio-rng", virtio_rng_t, .start = virtio_rng_start, .stop = virtio_rng_stop);
