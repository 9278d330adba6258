/* The block driver (drivers/block) on a real fabric: the real dfnet-manager, a real
 * dfnet-host whose board file names two block resources, and the driver in its
 * dfnet-driver-host, called through libdfnet-client (tests/integration/fabric.c). The
 * artifacts are put straight into the agent's cache ("<cache-dir>/artifacts/<hex>", whose
 * files the agent hands the driver as descriptors: ArtifactOpen), as a finished upload
 * leaves them.
 *
 * Targets: `disk`, a regular file, and `stick`, a loop device over a sparse 16 MiB file
 * (`losetup -f --show`; the test runs as root). Without a loop device the cases that need
 * one are skipped with the reason. The loop device is detached on every way out: its
 * autoclear flag is set while the test holds it open (a killed test leaves nothing), and the
 * group teardown, or an exit handler when the set-up failed, clears it through the
 * descriptor the test holds, so it can only ever be that very device.
 *
 * Checked: Info; WriteImage to both, its progress items in order ending with VERIFY done ==
 * total, the success message, and the target's first bytes read back by the test; NOT_FOUND
 * (a missing artifact), INVALID_ARGUMENT (a digest of 31 or 0 bytes), OUT_OF_RANGE (an image
 * larger than the loop device), DATA_LOSS (an artifact whose content is not what its name
 * says: the read-back digest differs); two concurrent WriteImage (one FAILED_PRECONDITION);
 * a cancel after the first progress item and a passing deadline (the driver stops between
 * chunks, says so in its log, and serves the next call); a driver restart during a
 * WriteImage (the call ends UNAVAILABLE, the worker is joined, the new driver serves).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "child.h"
#include "dfnet/hw/block.pb.h"
#include "integration/fabric.h"

#define HOST "lab-b"
#define DISK "dev." HOST ".platform.disk"
#define STICK "dev." HOST ".platform.stick"
#define WRITE_IMAGE "/dfnet.hw.block.Block/WriteImage"
#define INFO "/dfnet.hw.block.Block/Info"
#define BLOCK_URL "dfnet-boot:///block#meta/block.json"
#define WAIT_MS 30000
#define MIB (1024u * 1024u)
#define LOOP_SIZE (16u * MIB)
#define BIG_SIZE (256u * MIB) /* long enough to be cancelled: a sparse artifact */
#define ITEMS_MAX 4096

typedef dfnet_hw_block_WriteImageProgress item_t;

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;
  char disk[320];      /* the regular file `disk` names */
  char loop_dev[64];   /* "/dev/loopN", "" without one */
  int loop_fd;         /* held open while attached, -1 */
  char no_loop[512];   /* why there is no loop device */
  uint8_t big_sha[32]; /* the BIG_SIZE artifact of zeros */
  bool big_ready;
} F = {.loop_fd = -1};

/* ---- digests and artifacts ---------------------------------------------------------- */

static void sha256(const uint8_t *data, size_t len, uint8_t out[32]) {
  assert_int_equal(mbedtls_sha256_ret(data, len, out, 0), 0);
}

static void hex(const uint8_t d[32], char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void artifact_path(const uint8_t d[32], char *out, size_t size) {
  char h[65];
  hex(d, h);
  snprintf(out, size, "%s/cache-%s/artifacts/%s", F.fab.root, HOST, h);
}

/* Put `data` into the agent's artifact cache under the name `name` (its digest, unless the
 * case wants a lie), as a finished upload does: written aside, then renamed. */
static void put_artifact(const uint8_t *data, size_t len, const uint8_t name[32]) {
  char path[512], tmp[560];
  artifact_path(name, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.test-tmp", path);
  FILE *f = fopen(tmp, "wb");
  assert_non_null(f);
  assert_int_equal(len == 0 ? 0 : fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rename(tmp, path), 0);
}

/* `len` pseudo-random bytes (malloc'd) and their digest. */
static uint8_t *random_image(size_t len, uint32_t seed, uint8_t sha[32]) {
  uint8_t *p = malloc(len);
  assert_non_null(p);
  for (size_t i = 0; i < len; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (uint8_t)(seed >> 16);
  }
  sha256(p, len, sha);
  return p;
}

/* The BIG_SIZE artifact: a sparse file of zeros (reading it costs no disk). */
static void big_artifact(void) {
  if (F.big_ready)
    return;
  uint8_t *zero = calloc(1, MIB);
  assert_non_null(zero);
  mbedtls_sha256_context c;
  mbedtls_sha256_init(&c);
  assert_int_equal(mbedtls_sha256_starts_ret(&c, 0), 0);
  for (unsigned i = 0; i < BIG_SIZE / MIB; i++)
    assert_int_equal(mbedtls_sha256_update_ret(&c, zero, MIB), 0);
  assert_int_equal(mbedtls_sha256_finish_ret(&c, F.big_sha), 0);
  mbedtls_sha256_free(&c);
  free(zero);
  char path[512];
  artifact_path(F.big_sha, path, sizeof path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, BIG_SIZE), 0);
  close(fd);
  F.big_ready = true;
}

/* ---- the loop device ---------------------------------------------------------------- */

/* Detach the loop device the test attached (what `losetup -d` does, through the descriptor
 * the test holds: never another device) and close it. Idempotent. */
static void loop_detach(void) {
  if (F.loop_fd < 0)
    return;
  if (ioctl(F.loop_fd, LOOP_CLR_FD, 0) != 0)
    fprintf(stderr, "test_drv_block: detaching %s: %s\n", F.loop_dev, strerror(errno));
  close(F.loop_fd);
  F.loop_fd = -1;
}

/* Attach `file` to a free loop device with `losetup -f --show` (a child process), hold it
 * open and set its autoclear flag. False with F.no_loop when it cannot. */
static bool loop_attach(const char *file) {
  int out[2];
  if (pipe(out) != 0)
    return snprintf(F.no_loop, sizeof F.no_loop, "pipe: %s", strerror(errno)), false;
  pid_t pid = test_child_fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execlp("losetup", "losetup", "-f", "--show", file, (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  char dev[64] = "";
  ssize_t n = pid > 0 ? read(out[0], dev, sizeof dev - 1) : -1;
  close(out[0]);
  int status = 0;
  if (pid > 0)
    waitpid(pid, &status, 0);
  dev[n > 0 ? n : 0] = '\0';
  dev[strcspn(dev, "\n")] = '\0';
  if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      strncmp(dev, "/dev/loop", 9) != 0) {
    snprintf(F.no_loop, sizeof F.no_loop, "`losetup -f --show %s` failed (exit %d): no loop device",
             file, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return false;
  }
  snprintf(F.loop_dev, sizeof F.loop_dev, "%s", dev);
  if ((F.loop_fd = open(dev, O_RDONLY | O_CLOEXEC)) < 0) {
    snprintf(F.no_loop, sizeof F.no_loop, "%s: %s", dev, strerror(errno));
    F.loop_dev[0] = '\0';
    return false; /* cannot hold it: it stays attached, named in the message */
  }
  atexit(loop_detach);
  struct loop_info64 info;
  if (ioctl(F.loop_fd, LOOP_GET_STATUS64, &info) == 0) {
    info.lo_flags |= LO_FLAGS_AUTOCLEAR;
    (void)ioctl(F.loop_fd, LOOP_SET_STATUS64, &info);
  }
  return true;
}

/* ---- set-up ------------------------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  F.agent.name = HOST;
  const fabric_package_t none[] = {{NULL, NULL, NULL, 0}};
  if (fabric_init(&F.fab, "drv-block", NULL, none) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "operator", "alice") != 0 ||
      fabric_issue(&F.fab, "admin", "root-admin") != 0 ||
      fabric_sh("cp -a '%s/drivers/block' '%s/drivers/'", F.fab.build, F.fab.root) != 0)
    return -1;
  snprintf(F.disk, sizeof F.disk, "%s/disk.img", F.fab.root);
  char backing[320], board[320];
  snprintf(backing, sizeof backing, "%s/stick.img", F.fab.root);
  if (fabric_sh("touch '%s' && truncate -s %u '%s'", F.disk, LOOP_SIZE, backing) != 0)
    return -1;
  if (!loop_attach(backing))
    print_message("test_drv_block: %s: the loop device cases are skipped\n", F.no_loop);
  snprintf(board, sizeof board, "%s/board.json", F.fab.root);
  FILE *b = fopen(board, "w");
  if (b == NULL)
    return -1;
  fprintf(b,
          "{\"devices\": [\n"
          " {\"name\": \"disk\", \"vid\": 0, \"pid\": 0, \"did\": 7, \"resources\": {\"block\": "
          "\"%s\"}}%s",
          F.disk, F.loop_dev[0] != '\0' ? ",\n" : "]}\n");
  if (F.loop_dev[0] != '\0')
    fprintf(b,
            " {\"name\": \"stick\", \"vid\": 0, \"pid\": 0, \"did\": 8, \"resources\": "
            "{\"block\": \"%s\"}}]}\n",
            F.loop_dev);
  fclose(b);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  if ((F.op = fabric_connect(&F.fab, "alice")) == NULL ||
      !fabric_wait_node(F.op, DISK, fabric_is_bound, NULL, WAIT_MS, NULL) ||
      (F.loop_dev[0] != '\0' &&
       !fabric_wait_node(F.op, STICK, fabric_is_bound, NULL, WAIT_MS, NULL)))
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, &F.agent, 1); /* the driver hosts' descriptors go first */
  loop_detach();
  return 0;
}

/* ---- a WriteImage call -------------------------------------------------------------- */

typedef struct wi {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  item_t items[ITEMS_MAX];
  size_t count;
  bool bad_item; /* an item that does not decode */
  int done;      /* final callbacks: exactly one */
  dfnet_status_t status;
  char message[512];
  dfnet_client_call_id_t id;
} wi_t;

static void on_item(void *user, dfnet_client_call_id_t call, const uint8_t *data, size_t len) {
  (void)call;
  wi_t *w = user;
  item_t item = dfnet_hw_block_WriteImageProgress_init_zero;
  pb_istream_t in = pb_istream_from_buffer(data, len);
  bool ok = pb_decode(&in, dfnet_hw_block_WriteImageProgress_fields, &item);
  pthread_mutex_lock(&w->mu);
  if (!ok)
    w->bad_item = true;
  else if (w->count < ITEMS_MAX)
    w->items[w->count++] = item;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void on_done(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                    const char *message) {
  (void)call;
  wi_t *w = user;
  pthread_mutex_lock(&w->mu);
  w->done++;
  w->status = status;
  snprintf(w->message, sizeof w->message, "%s", message != NULL ? message : "");
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static wi_t *wi_new(void) {
  wi_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  return w;
}

static void wi_free(wi_t *w) {
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

/* Start WriteImage{digest of `len` bytes, follow_upload_size `follow`} on `target`. */
static void wi_start_follow(wi_t *w, const char *target, const uint8_t *digest, size_t len,
                            uint64_t follow, uint32_t deadline_ms) {
  dfnet_hw_block_WriteImageRequest req = dfnet_hw_block_WriteImageRequest_init_zero;
  memcpy(req.artifact_sha256.bytes, digest, len);
  req.artifact_sha256.size = (pb_size_t)len;
  req.follow_upload_size = follow;
  uint8_t buf[dfnet_hw_block_WriteImageRequest_size];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_block_WriteImageRequest_fields, &req));
  dfnet_client_call_options_t o = {.deadline_ms = deadline_ms};
  assert_int_equal(dfnet_client_call_start(F.op, target, WRITE_IMAGE, buf, os.bytes_written, &o,
                                           on_item, on_done, w, &w->id),
                   DFNET_STATUS_OK);
}

static void wi_start(wi_t *w, const char *target, const uint8_t *digest, size_t len,
                     uint32_t deadline_ms) {
  wi_start_follow(w, target, digest, len, 0, deadline_ms);
}

/* Has the call ended? */
static bool wi_ended(wi_t *w) {
  pthread_mutex_lock(&w->mu);
  bool done = w->done > 0;
  pthread_mutex_unlock(&w->mu);
  return done;
}

/* Wait until the call has ended (items == 0) or holds `items` items. */
static bool wi_wait(wi_t *w, size_t items, uint32_t ms) {
  uint64_t end = fabric_now_ms() + ms;
  pthread_mutex_lock(&w->mu);
  while (w->done == 0 && (items == 0 || w->count < items) && fabric_now_ms() < end) {
    pthread_mutex_unlock(&w->mu);
    fabric_sleep_ms(10);
    pthread_mutex_lock(&w->mu);
  }
  bool ok = items == 0 ? w->done > 0 : w->count >= items;
  pthread_mutex_unlock(&w->mu);
  return ok;
}

/* A whole WriteImage: its final status; *out (may be NULL) keeps the record. */
static dfnet_status_t write_image(const char *target, const uint8_t *digest, size_t len,
                                  wi_t **out) {
  wi_t *w = wi_new();
  wi_start(w, target, digest, len, 60000);
  assert_true(wi_wait(w, 0, 70000));
  fabric_sleep_ms(20); /* a second final callback would come now */
  assert_int_equal(w->done, 1);
  assert_false(w->bad_item);
  print_message("  WriteImage %s: %s: %s (%zu items)\n", target, dfnet_status_str(w->status),
                w->message, w->count);
  dfnet_status_t st = w->status;
  if (out != NULL)
    *out = w;
  else
    wi_free(w);
  return st;
}

/* The items of a whole WriteImage: WRITE, SYNC, VERIFY in order, each starting at 0 (VERIFY:
 * at what WRITE read back already) and ending at `total`, done never going back within a
 * phase. */
static void check_progress(const wi_t *w, uint64_t total) {
  static const char *const names[] = {"WRITE", "SYNC", "VERIFY"};
  int phase = -1;
  uint64_t done = 0;
  bool ended[3] = {false, false, false};
  for (size_t i = 0; i < w->count; i++) {
    const item_t *it = &w->items[i];
    assert_int_equal(it->total_bytes, total);
    assert_true(it->done_bytes <= total);
    if ((int)it->phase != phase) {
      if ((int)it->phase < phase || (phase >= 0 && !ended[phase]))
        fail_msg("item %zu: %s %" PRIu64 " after %s %" PRIu64, i, names[it->phase], it->done_bytes,
                 names[phase], done);
      phase = (int)it->phase;
      if (phase != dfnet_hw_block_WriteImageProgress_Phase_VERIFY) /* VERIFY: read back already */
        assert_int_equal(it->done_bytes, 0);
    } else if (it->done_bytes < done) {
      fail_msg("item %zu: %s went back from %" PRIu64 " to %" PRIu64, i, names[phase], done,
               it->done_bytes);
    }
    done = it->done_bytes;
    ended[phase] = done == total;
  }
  assert_int_equal(phase, dfnet_hw_block_WriteImageProgress_Phase_VERIFY);
  assert_true(ended[0] && ended[1] && ended[2]);
  assert_int_equal(w->items[w->count - 1].done_bytes, total);
}

/* The first `len` bytes of `path` equal `want`, read back after dropping the cache. */
static void check_content(const char *path, const uint8_t *want, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  struct stat sb;
  assert_int_equal(fstat(fd, &sb), 0);
  if (S_ISBLK(sb.st_mode))
    (void)ioctl(fd, BLKFLSBUF, 0);
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  uint8_t *got = malloc(len + 1);
  assert_non_null(got);
  size_t have = 0;
  ssize_t n;
  while (have < len && (n = pread(fd, got + have, len - have, (off_t)have)) > 0)
    have += (size_t)n;
  close(fd);
  assert_int_equal(have, len);
  if (memcmp(got, want, len) != 0)
    fail_msg("%s does not hold the image", path);
  free(got);
}

/* How many lines of the agent's log (the driver host's stderr) hold both strings. */
static int log_lines(const char *a, const char *b) {
  FILE *f = fopen(F.agent.log, "r");
  if (f == NULL)
    return 0;
  char line[2048];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, a) != NULL && strstr(line, b) != NULL;
  fclose(f);
  return n;
}

/* Wait until the driver logged the end of `count` WriteImages of `digest` that stopped
 * between chunks with `status`. */
static void wait_stopped_lines(const uint8_t digest[32], const char *status, int count) {
  char h[65], what[160];
  hex(digest, h);
  snprintf(what, sizeof what, "WriteImage %s: %s: the call ended after", h, status);
  uint64_t end = fabric_now_ms() + 10000;
  while (log_lines(what, "bytes") < count && fabric_now_ms() < end)
    fabric_sleep_ms(50);
  if (log_lines(what, "bytes") < count)
    fail_msg("the driver did not log \"%s ...\" %d times", what, count);
}

/* ---- the cases ---------------------------------------------------------------------- */

static void test_info(void **state) {
  (void)state;
  const char *targets[] = {DISK, STICK};
  for (int i = 0; i < 2; i++) {
    if (i == 1 && F.loop_dev[0] == '\0')
      break;
    uint8_t *data = NULL;
    size_t len = 0;
    dfnet_client_error_t err;
    dfnet_client_call_options_t o = {.deadline_ms = 5000};
    dfnet_status_t st = dfnet_client_call(F.op, targets[i], INFO, NULL, 0, &o, &data, &len, &err);
    if (st != DFNET_STATUS_OK)
      fail_msg("Info %s: %s: %s", targets[i], dfnet_status_str(st), err.message);
    dfnet_hw_block_BlockInfo info = dfnet_hw_block_BlockInfo_init_zero;
    pb_istream_t in = pb_istream_from_buffer(data, len);
    assert_true(pb_decode(&in, dfnet_hw_block_BlockInfo_fields, &info));
    free(data);
    struct stat sb;
    assert_int_equal(stat(F.disk, &sb), 0);
    assert_string_equal(info.path, i == 0 ? F.disk : F.loop_dev);
    assert_int_equal(info.size_bytes, i == 0 ? (uint64_t)sb.st_size : LOOP_SIZE);
    assert_false(info.read_only);
  }
}

static void test_write_file(void **state) {
  (void)state;
  size_t len = 3 * MIB + 123; /* not a whole number of chunks */
  uint8_t sha[32];
  uint8_t *image = random_image(len, 1, sha);
  put_artifact(image, len, sha);
  wi_t *w = NULL;
  assert_int_equal(write_image(DISK, sha, 32, &w), DFNET_STATUS_OK);
  check_progress(w, len);
  char want[512];
  snprintf(want, sizeof want, "wrote %zu bytes to %s in ", len, F.disk);
  assert_non_null(strstr(w->message, want));
  assert_non_null(strstr(w->message, " s; read-back SHA-256 matches"));
  check_content(F.disk, image, len);
  wi_free(w);

  /* 12 MiB: all but the last 8 MiB (the writeback window) were read back while writing,
   * so VERIFY starts at 4 MiB (ext4 and tmpfs take sync_file_range) */
  size_t mid = 12 * MIB;
  uint8_t *twelve = random_image(mid, 3, sha);
  put_artifact(twelve, mid, sha);
  assert_int_equal(write_image(DISK, sha, 32, &w), DFNET_STATUS_OK);
  check_progress(w, mid);
  bool found = false;
  for (size_t i = 0; i < w->count && !found; i++) {
    if (w->items[i].phase == dfnet_hw_block_WriteImageProgress_Phase_VERIFY) {
      assert_int_equal(w->items[i].done_bytes, 4 * MIB);
      found = true;
    }
  }
  assert_true(found);
  check_content(F.disk, twelve, mid);
  wi_free(w);
  free(twelve);

  /* a shorter image over it: only its own bytes are written (a regular file keeps its size) */
  uint8_t *small = random_image(4096, 2, sha);
  put_artifact(small, 4096, sha);
  assert_int_equal(write_image(DISK, sha, 32, NULL), DFNET_STATUS_OK);
  check_content(F.disk, small, 4096);
  struct stat sb;
  assert_int_equal(stat(F.disk, &sb), 0);
  assert_true((size_t)sb.st_size >= mid);
  free(small);
  free(image);
}

/* Append data[from, to) to the .part of an upload of `name`, as the agent's Puts do. */
static void part_append(const uint8_t name[32], const uint8_t *data, size_t from, size_t to) {
  char path[512], part[520];
  artifact_path(name, path, sizeof path);
  snprintf(part, sizeof part, "%s.part", path);
  FILE *f = fopen(part, "ab");
  assert_non_null(f);
  assert_int_equal(fwrite(data + from, 1, to - from, f), to - from);
  assert_int_equal(fclose(f), 0);
}

/* WriteImage{follow_upload_size} before the upload began: the driver waits for the .part,
 * writes its bytes as they come (progress moves before the upload is complete), and once
 * the .part becomes the complete artifact (renamed) it verifies and ends OK. A followed
 * upload that is discarded (its .part deleted, no artifact) ends ABORTED. */
static void test_follow_upload(void **state) {
  (void)state;
  size_t len = 6 * MIB + 77;
  uint8_t sha[32];
  uint8_t *image = random_image(len, 7, sha);
  wi_t *w = wi_new();
  wi_start_follow(w, DISK, sha, 32, len, 60000);
  fabric_sleep_ms(200); /* no .part yet: it waits */
  assert_false(wi_ended(w));
  part_append(sha, image, 0, 2 * MIB);
  /* its first bytes are written while the rest has not come: WRITE progress moves */
  uint64_t end = fabric_now_ms() + 10000;
  bool moved = false;
  while (!moved && fabric_now_ms() < end) {
    fabric_sleep_ms(20);
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->count; i++)
      moved = moved || (w->items[i].phase == 0 && w->items[i].done_bytes >= MIB);
    pthread_mutex_unlock(&w->mu);
  }
  assert_true(moved);
  assert_false(wi_ended(w));
  part_append(sha, image, 2 * MIB, len);
  char path[512], part[520];
  artifact_path(sha, path, sizeof path);
  snprintf(part, sizeof part, "%s.part", path);
  assert_int_equal(rename(part, path), 0); /* verified by the agent: complete */
  assert_true(wi_wait(w, 0, 30000));
  assert_int_equal(w->status, DFNET_STATUS_OK);
  check_progress(w, len);
  check_content(F.disk, image, len);
  wi_free(w);
  free(image);

  /* discarded: the .part goes, no artifact comes */
  image = random_image(3 * MIB, 8, sha);
  w = wi_new();
  wi_start_follow(w, DISK, sha, 32, 3 * MIB, 60000);
  part_append(sha, image, 0, MIB);
  fabric_sleep_ms(300);
  artifact_path(sha, path, sizeof path);
  snprintf(part, sizeof part, "%s.part", path);
  assert_int_equal(unlink(part), 0);
  assert_true(wi_wait(w, 0, 30000));
  assert_int_equal(w->status, DFNET_STATUS_ABORTED);
  assert_non_null(strstr(w->message, "was discarded"));
  wi_free(w);
  free(image);
}

static void test_write_loop_device(void **state) {
  (void)state;
  if (F.loop_dev[0] == '\0') {
    print_message("skipped: %s\n", F.no_loop);
    skip();
  }
  size_t len = 5 * MIB + 4096;
  uint8_t sha[32];
  uint8_t *image = random_image(len, 3, sha);
  put_artifact(image, len, sha);
  wi_t *w = NULL;
  assert_int_equal(write_image(STICK, sha, 32, &w), DFNET_STATUS_OK);
  check_progress(w, len);
  char want[512];
  snprintf(want, sizeof want, "wrote %zu bytes to %s in ", len, F.loop_dev);
  assert_non_null(strstr(w->message, want));
  check_content(F.loop_dev, image, len);
  wi_free(w);
  free(image);
}

static void test_errors(void **state) {
  (void)state;
  uint8_t sha[32];
  char h[65];
  wi_t *w = NULL;

  /* no such artifact: the message names it */
  uint8_t *image = random_image(1000, 4, sha);
  hex(sha, h);
  assert_int_equal(write_image(DISK, sha, 32, &w), DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(w->message, h));
  assert_int_equal(w->count, 0);
  wi_free(w);

  /* a digest that is not 32 bytes */
  assert_int_equal(write_image(DISK, sha, 31, &w), DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(w->message, "31 bytes"));
  wi_free(w);
  assert_int_equal(write_image(DISK, sha, 0, NULL), DFNET_STATUS_INVALID_ARGUMENT);

  /* an artifact whose content is not what its name says: the read-back digest differs */
  uint8_t other[32];
  uint8_t *lie = random_image(2 * MIB, 5, other);
  put_artifact(lie, 2 * MIB, sha); /* named by the 1000-byte image's digest */
  assert_int_equal(write_image(DISK, sha, 32, &w), DFNET_STATUS_DATA_LOSS);
  char oh[65], want[256];
  hex(other, oh);
  snprintf(want, sizeof want, "read-back SHA-256 %s differs from the artifact's %s", oh, h);
  assert_non_null(strstr(w->message, want));
  check_progress(w, 2 * MIB); /* the whole work was done, and verified */
  wi_free(w);
  free(lie);
  free(image);

  /* larger than the loop device */
  if (F.loop_dev[0] == '\0') {
    print_message("OUT_OF_RANGE not checked: %s\n", F.no_loop);
    return;
  }
  size_t len = LOOP_SIZE + 512;
  image = random_image(len, 6, sha);
  put_artifact(image, len, sha);
  assert_int_equal(write_image(STICK, sha, 32, &w), DFNET_STATUS_OUT_OF_RANGE);
  assert_non_null(strstr(w->message, F.loop_dev));
  assert_int_equal(w->count, 0); /* refused before anything was written */
  wi_free(w);
  free(image);
}

/* Two WriteImage at once: one is refused; the other is cancelled after its first item, and
 * the driver serves the next call. */
static void test_concurrent_and_cancel(void **state) {
  (void)state;
  big_artifact();
  wi_t *a = wi_new(), *b = wi_new();
  wi_start(a, DISK, F.big_sha, 32, 60000);
  wi_start(b, DISK, F.big_sha, 32, 60000);
  /* one of them is refused at once; the other streams */
  uint64_t end = fabric_now_ms() + 10000;
  while (!wi_ended(a) && !wi_ended(b) && fabric_now_ms() < end)
    fabric_sleep_ms(10);
  wi_t *refused = wi_ended(a) ? a : b, *running = refused == a ? b : a;
  assert_true(wi_ended(refused));
  assert_int_equal(refused->status, DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(refused->message, "a WriteImage is already running"));
  assert_true(wi_wait(running, 1, 10000));
  assert_false(wi_ended(running));
  assert_int_equal(running->items[0].phase, dfnet_hw_block_WriteImageProgress_Phase_WRITE);

  assert_int_equal(dfnet_client_call_cancel(F.op, running->id), DFNET_STATUS_OK);
  assert_true(wi_wait(running, 0, 10000));
  assert_int_equal(running->status, DFNET_STATUS_CANCELLED);
  print_message("  cancelled after %zu items\n", running->count);
  wi_free(a);
  wi_free(b);

  /* the driver stops between two chunks (it says so) and takes the next WriteImage */
  wait_stopped_lines(F.big_sha, "CANCELLED", 1);
  uint8_t sha[32];
  uint8_t *image = random_image(MIB, 7, sha);
  put_artifact(image, MIB, sha);
  assert_int_equal(write_image(DISK, sha, 32, NULL), DFNET_STATUS_OK);
  check_content(F.disk, image, MIB);
  free(image);
}

/* A deadline that passes mid-write ends the call there. */
static void test_deadline(void **state) {
  (void)state;
  big_artifact();
  wi_t *w = wi_new();
  wi_start(w, DISK, F.big_sha, 32, 300);
  assert_true(wi_wait(w, 0, 10000));
  assert_int_equal(w->status, DFNET_STATUS_DEADLINE_EXCEEDED);
  wi_free(w);
  /* the driver saw the call end (the deadline at its driver host, or the client's cancel) */
  char h[65], what[160];
  hex(F.big_sha, h);
  snprintf(what, sizeof what, "WriteImage %s: ", h);
  uint64_t end = fabric_now_ms() + 10000;
  while (log_lines(what, "the call ended after") < 2 && fabric_now_ms() < end)
    fabric_sleep_ms(50);
  assert_int_equal(log_lines(what, "the call ended after"), 2);
  uint8_t sha[32];
  uint8_t *image = random_image(MIB, 8, sha);
  put_artifact(image, MIB, sha);
  assert_int_equal(write_image(DISK, sha, 32, NULL), DFNET_STATUS_OK);
  free(image);
}

/* The driver stopped (an admin's restart) during a WriteImage: the call ends UNAVAILABLE,
 * the stop joins the worker, and the driver that starts again serves. */
static void test_restart_during_write(void **state) {
  (void)state;
  big_artifact();
  dfnet_client_t *admin = fabric_connect(&F.fab, "root-admin");
  assert_non_null(admin);
  wi_t *w = wi_new();
  wi_start(w, DISK, F.big_sha, 32, 60000);
  assert_true(wi_wait(w, 1, 10000));
  dfnet_client_driver_control_result_t *res = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st =
      dfnet_client_driver_control(admin, DFNET_CLIENT_DRIVER_RESTART, BLOCK_URL, &res, &err);
  if (st != DFNET_STATUS_OK)
    fail_msg("restart: %s: %s", dfnet_status_str(st), err.message);
  for (size_t i = 0; i < res->outcome_count; i++)
    assert_int_equal(res->outcomes[i].code, DFNET_STATUS_OK);
  dfnet_client_driver_control_result_free(res);
  assert_true(wi_wait(w, 0, 10000));
  assert_int_equal(w->status, DFNET_STATUS_UNAVAILABLE);
  wi_free(w);
  wait_stopped_lines(F.big_sha, "UNAVAILABLE", 1);
  dfnet_client_close(admin);

  assert_true(fabric_wait_node(F.op, DISK, fabric_is_bound, NULL, WAIT_MS, NULL));
  uint8_t sha[32];
  uint8_t *image = random_image(MIB, 9, sha);
  put_artifact(image, MIB, sha);
  assert_int_equal(write_image(DISK, sha, 32, NULL), DFNET_STATUS_OK);
  check_content(F.disk, image, MIB);
  free(image);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_info),          cmocka_unit_test(test_write_file),
      cmocka_unit_test(test_follow_upload), cmocka_unit_test(test_write_loop_device),
      cmocka_unit_test(test_errors),        cmocka_unit_test(test_concurrent_and_cancel),
      cmocka_unit_test(test_deadline),      cmocka_unit_test(test_restart_during_write),
  };
  return cmocka_run_group_tests_name("block", tests, group_setup, group_teardown);
}
