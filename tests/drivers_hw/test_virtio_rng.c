/* virtio-rng in a real dfnet-driver-host: the real entropy device of this machine
 * (/sys + /dev/hwrng, skipped when absent), the captured sysfs fixture with other device
 * files, and every failure path (not the kernel's virtio_rng, no sysfs path, missing
 * device file, a stuck device, bad requests). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "bind/fuchsia_pci.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/rng.pb.h"
#include "harness.h"

#define MONIKER "dev.lab.pci.00_05_0"
#define READ "/dfnet.hw.rng.Rng/Read"
/* The device file is /dev/urandom: the setting names it, the manifest's resources too (the
 * harness opens them as the agent does). */
#define URANDOM "{\"config\": {\"device\": \"/dev/urandom\"}, \"resources\": [\"/dev/urandom\"]}"

static char fixture_fn_path[PATH_MAX];

/* The fixture's directory of PCI function `bdf` ("0000:00:05.0"). */
static const char *fixture_fn(const char *bdf) {
  snprintf(fixture_fn_path, sizeof fixture_fn_path,
           DFNET_FIXTURES_DIR "/sysfs-virtio-vm/devices/pci0000:00/%s", bdf);
  return fixture_fn_path;
}

/* The properties host/enum/pci.c publishes for a function. */
static size_t pci_props(hw_prop_t *p, uint32_t did, const char *sysfs_path) {
  size_t n = 0;
  p[n++] = (hw_prop_t)HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE);
  p[n++] = (hw_prop_t)HW_PROP_INT(DFNET_BIND_PCI_VID, 0x1af4);
  p[n++] = (hw_prop_t)HW_PROP_INT(DFNET_BIND_PCI_DID, did);
  p[n++] = (hw_prop_t)HW_PROP_INT(DFNET_BIND_PCI_CLASS, 0xff);
  if (sysfs_path != NULL)
    p[n++] = (hw_prop_t)HW_PROP_STR("dfnet.pci.SYSFS_PATH", sysfs_path);
  p[n++] = (hw_prop_t)HW_PROP_STR("dfnet.pci.KERNEL_DRIVER", "virtio-pci");
  return n;
}

static size_t encode_count(uint8_t *buf, size_t cap, uint32_t count) {
  dfnet_hw_rng_ReadRequest req = {.count = count};
  pb_ostream_t out = pb_ostream_from_buffer(buf, cap);
  assert_true(pb_encode(&out, dfnet_hw_rng_ReadRequest_fields, &req));
  return out.bytes_written;
}

typedef struct {
  uint8_t *data;
  size_t size;
} bytes_t;

static bool decode_data(pb_istream_t *stream, const pb_field_t *field, void **arg) {
  (void)field;
  bytes_t *b = *arg;
  b->size = stream->bytes_left;
  b->data = malloc(b->size + 1);
  return b->data != NULL && pb_read(stream, b->data, b->size);
}

/* Rng.Read(count) on the bench; the reply's bytes in *out (caller frees out->data). */
static dfnet_status_t rng_read(hw_bench_t *b, uint32_t count, uint32_t deadline_ms, bytes_t *out,
                               char *msg, size_t cap) {
  uint8_t req[16];
  size_t len = encode_count(req, sizeof req, count);
  hw_reply_t r;
  dfnet_status_t st = hw_call(b, MONIKER, READ, req, len, deadline_ms, &r);
  memset(out, 0, sizeof *out);
  if (msg != NULL)
    snprintf(msg, cap, "%s", r.message);
  if (st == DFNET_STATUS_OK) {
    dfnet_hw_rng_ReadReply reply = dfnet_hw_rng_ReadReply_init_zero;
    reply.data.funcs.decode = decode_data;
    reply.data.arg = out;
    pb_istream_t in = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&in, dfnet_hw_rng_ReadReply_fields, &reply));
  }
  hw_reply_free(&r);
  return st;
}

/* The message of the last start's Status (the reason a failed start gives the node). */
static char start_message[512];

static hw_bench_t *start_on(const char *sysfs_path, uint32_t did, const char *extra,
                            dfnet_status_t want) {
  hw_bench_t *b = hw_bench_new();
  assert_non_null(b);
  hw_prop_t props[8];
  size_t n = pci_props(props, did, sysfs_path);
  assert_int_equal(
      hw_start(b, "virtio-rng", MONIKER, props, n, extra, start_message, sizeof start_message),
      want);
  return b;
}

static void assert_log_has(hw_bench_t *b, const char *needle) {
  char *log = hw_bench_log(b);
  if (strstr(log, needle) == NULL)
    fail_msg("driver host log lacks \"%s\":\n%s", needle, log);
  free(log);
}

/* The machine's own entropy device, as the acceptance test uses it. */
static void test_real_hwrng(void **state) {
  (void)state;
  char sysfs[PATH_MAX];
  if (access("/dev/hwrng", R_OK) != 0 ||
      realpath("/sys/bus/pci/devices/0000:00:05.0", sysfs) == NULL) {
    fprintf(stderr, "SKIPPED: no readable /dev/hwrng or no PCI function 00:05.0 here\n");
    skip();
  }
  hw_bench_t *b = start_on(sysfs, 0x1044, NULL, DFNET_STATUS_OK);
  assert_string_equal(hw_child_class(b, MONIKER ".rng"), "rng");
  bytes_t one, two;
  assert_int_equal(rng_read(b, 32, 10000, &one, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(rng_read(b, 32, 10000, &two, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(one.size, 32);
  assert_int_equal(two.size, 32);
  assert_memory_not_equal(one.data, two.data, 32);
  free(one.data);
  free(two.data);
  assert_int_equal(hw_stop(b, MONIKER), DFNET_STATUS_OK);
  hw_bench_free(b);
}

/* The fixture's 00:05.0 is the kernel's virtio_rng; the bytes come from /dev/urandom. */
static void test_fixture_reads(void **state) {
  (void)state;
  hw_bench_t *b = start_on(fixture_fn("0000:00:05.0"), 0x1044, URANDOM, DFNET_STATUS_OK);
  assert_string_equal(hw_child_class(b, MONIKER ".rng"), "rng");
  bytes_t one, two, big;
  assert_int_equal(rng_read(b, 16, 0, &one, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(rng_read(b, 16, 0, &two, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(one.size, 16);
  assert_memory_not_equal(one.data, two.data, 16);
  assert_int_equal(rng_read(b, 65536, 0, &big, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(big.size, 65536);
  free(one.data);
  free(two.data);
  free(big.data);
  hw_bench_free(b);
}

static void test_bad_requests(void **state) {
  (void)state;
  hw_bench_t *b = start_on(fixture_fn("0000:00:05.0"), 0x1044, URANDOM, DFNET_STATUS_OK);
  bytes_t none;
  char msg[512];
  assert_int_equal(rng_read(b, 65537, 0, &none, msg, sizeof msg), DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "65537"));
  assert_int_equal(rng_read(b, 0, 0, &none, msg, sizeof msg), DFNET_STATUS_INVALID_ARGUMENT);
  /* Not a ReadRequest: a field 1 of wire type 2 whose length runs past the end. */
  static const uint8_t garbage[] = {0x0a, 0x7f, 0x01};
  hw_reply_t r;
  assert_int_equal(hw_call(b, MONIKER, READ, garbage, sizeof garbage, 0, &r),
                   DFNET_STATUS_INVALID_ARGUMENT);
  hw_reply_free(&r);
  assert_int_equal(hw_call(b, MONIKER, "/dfnet.hw.rng.Rng/Write", NULL, 0, 0, &r),
                   DFNET_STATUS_UNIMPLEMENTED);
  hw_reply_free(&r);
  hw_bench_free(b);
}

/* 00:03.0 of the fixture is virtio_net: /dev/hwrng is not that function. */
static void test_not_virtio_rng(void **state) {
  (void)state;
  hw_bench_t *b =
      start_on(fixture_fn("0000:00:03.0"), 0x1044, URANDOM, DFNET_STATUS_FAILED_PRECONDITION);
  assert_log_has(b, "0000:00:03.0 is not the kernel's virtio_rng (virtio2 is bound to virtio_net)");
  /* The reason travels in the start's Status, so the node shows why it is unbound. */
  if (strstr(start_message, "virtio2 is bound to virtio_net") == NULL)
    fail_msg("start status lacks the driver's reason: \"%s\"", start_message);
  hw_bench_free(b);
  /* The host bridge has no virtio device at all. */
  b = start_on(fixture_fn("0000:00:00.0"), 0x1044, NULL, DFNET_STATUS_FAILED_PRECONDITION);
  assert_log_has(b, "no virtio device under it");
  hw_bench_free(b);
}

/* hw_random's current source, read from the manifest's resource the setting "rng_current"
 * names: a file that names another source refuses the start, one that names virtio_rng
 * starts; not handed (missing, as optional in the manifest, or not listed), not checked. */
static void test_hwrng_current(void **state) {
  (void)state;
  char root[] = "/tmp/dfnet-rng-sysfs-XXXXXX";
  assert_non_null(mkdtemp(root));
  char fn[PATH_MAX], path[2 * PATH_MAX + 128];
  snprintf(fn, sizeof fn, "%s/devices/pci0000:00/0000:00:05.0", root);
  snprintf(path, sizeof path,
           "mkdir -p '%s/virtio4' '%s/class/misc/hw_random' && touch '%s/config'", fn, root, fn);
  assert_int_equal(system(path), 0);
  /* the kernel's link, kept as a file holding its text (as in the captured fixture) */
  snprintf(path, sizeof path, "%s/virtio4/driver", fn);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("../../../../bus/virtio/drivers/virtio_rng\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/class/misc/hw_random/rng_current", root);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("tpm-rng-0\n", f);
  fclose(f);
  char extra[1024];
  snprintf(extra, sizeof extra,
           "{\"config\": {\"device\": \"/dev/urandom\", \"rng_current\": \"%.127s\"}, "
           "\"resources\": [\"/dev/urandom\", {\"path\": \"%.127s\", \"optional\": true}]}",
           path, path);
  hw_bench_t *b = start_on(fn, 0x1044, extra, DFNET_STATUS_FAILED_PRECONDITION);
  assert_log_has(b, "hw_random's current source is \"tpm-rng-0\", not virtio_rng");
  hw_bench_free(b);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("virtio_rng.0\n", f);
  fclose(f);
  b = start_on(fn, 0x1044, extra, DFNET_STATUS_OK);
  hw_bench_free(b);
  /* an optional resource whose file is missing is not handed: the check is skipped */
  assert_int_equal(unlink(path), 0);
  b = start_on(fn, 0x1044, extra, DFNET_STATUS_OK);
  hw_bench_free(b);
  /* not listed: not handed either (the bench's resources come from the manifest only) */
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("tpm-rng-0\n", f);
  fclose(f);
  b = start_on(fn, 0x1044, URANDOM, DFNET_STATUS_OK);
  hw_bench_free(b);
  snprintf(path, sizeof path, "rm -rf '%s'", root);
  assert_int_equal(system(path), 0);
}

static void test_no_sysfs_path(void **state) {
  (void)state;
  hw_bench_t *b = start_on(NULL, 0x1044, URANDOM, DFNET_STATUS_FAILED_PRECONDITION);
  assert_log_has(b, "dfnet.pci.SYSFS_PATH");
  hw_bench_free(b);
  /* the agent opens the function's directory: one that is not there fails the start first */
  b = start_on("/nonexistent/0000:00:05.0", 0x1044, URANDOM, DFNET_STATUS_NOT_FOUND);
  assert_string_equal(start_message,
                      "cannot open resource sysfs /nonexistent/0000:00:05.0: No "
                      "such file or directory");
  hw_bench_free(b);
}

static void test_missing_device_file(void **state) {
  (void)state;
  /* the manifest names it: the agent cannot open it, the start fails there */
  hw_bench_t *b = start_on(
      fixture_fn("0000:00:05.0"), 0x1044,
      "{\"config\": {\"device\": \"/nonexistent/hwrng\"}, \"resources\": [\"/nonexistent/hwrng\"]}",
      DFNET_STATUS_NOT_FOUND);
  assert_string_equal(start_message,
                      "cannot open resource /nonexistent/hwrng: No such file or directory");
  hw_bench_free(b);
  /* the setting names a file the manifest does not: the driver opens nothing itself */
  b = start_on(fixture_fn("0000:00:05.0"), 0x1044, "{\"config\": {\"device\": \"/dev/urandom\"}}",
               DFNET_STATUS_FAILED_PRECONDITION);
  assert_log_has(b, "/dev/urandom was not handed to the driver: the manifest's \"resources\"");
  hw_bench_free(b);
}

/* A device that gives nothing (a FIFO nobody writes, named through the environment
 * variable): the call's deadline ends the Read, the driver's stall bound ends one without
 * a deadline, and bytes that come later are served. */
static void test_stuck_device(void **state) {
  (void)state;
  char dir[] = "/tmp/dfnet-rng-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char fifo[PATH_MAX];
  snprintf(fifo, sizeof fifo, "%s/hwrng", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  int wfd = open(fifo, O_RDWR | O_CLOEXEC); /* a writer exists: reads say EAGAIN, not EOF */
  assert_true(wfd >= 0);

  char extra[PATH_MAX + 32];
  snprintf(extra, sizeof extra, "{\"resources\": [\"%s\"]}", fifo);
  setenv("DFNET_VIRTIO_RNG_DEVICE", fifo, 1);
  hw_bench_t *b = start_on(fixture_fn("0000:00:05.0"), 0x1044, extra, DFNET_STATUS_OK);
  unsetenv("DFNET_VIRTIO_RNG_DEVICE");

  bytes_t none;
  char msg[512];
  assert_int_equal(rng_read(b, 16, 300, &none, msg, sizeof msg), DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(rng_read(b, 16, 0, &none, msg, sizeof msg), DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_non_null(strstr(msg, "gave nothing for 5000 ms: 0 of 16 bytes"));

  /* A Read waiting for the device gets what arrives. */
  uint8_t req[16];
  size_t len = encode_count(req, sizeof req, 4);
  uint64_t id = hw_call_start(b, MONIKER, READ, req, len, 0);
  assert_true(id != 0);
  hw_reply_t r;
  assert_false(hw_next_reply(b, id, 100, &r));
  assert_int_equal(write(wfd, "abcd", 4), 4);
  assert_true(hw_next_reply(b, id, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_OK);
  assert_non_null(memmem(r.data, r.size, "abcd", 4));
  hw_reply_free(&r);

  hw_bench_free(b);
  close(wfd);
  unlink(fifo);
  rmdir(dir);
}

/* Fairness between callers: alice queues five Reads of 64 bytes on a device that gives
 * bytes only when the test writes them; bob's Read, made after all of them, is served
 * right after the one of alice's in progress, not after her whole backlog. */
static void test_callers_served_in_turn(void **state) {
  (void)state;
  char dir[] = "/tmp/dfnet-rng-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char fifo[PATH_MAX];
  snprintf(fifo, sizeof fifo, "%s/hwrng", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  int wfd = open(fifo, O_RDWR | O_CLOEXEC);
  assert_true(wfd >= 0);
  char extra[PATH_MAX + 32];
  snprintf(extra, sizeof extra, "{\"resources\": [\"%s\"]}", fifo);
  setenv("DFNET_VIRTIO_RNG_DEVICE", fifo, 1);
  hw_bench_t *b = start_on(fixture_fn("0000:00:05.0"), 0x1044, extra, DFNET_STATUS_OK);
  unsetenv("DFNET_VIRTIO_RNG_DEVICE");

  uint8_t req[16];
  size_t len = encode_count(req, sizeof req, 64);
  uint64_t alice[5], bob;
  for (int i = 0; i < 5; i++) {
    alice[i] = hw_call_start_as(b, "alice", MONIKER, READ, req, len, 0);
    assert_true(alice[i] != 0);
  }
  hw_reply_t r;
  assert_false(hw_next_reply(b, alice[0], 100, &r)); /* all five queued, the first begun */
  bob = hw_call_start_as(b, "bob", MONIKER, READ, req, len, 0);
  assert_true(bob != 0);
  assert_false(hw_next_reply(b, bob, 100, &r));
  /* 64 bytes at a time: alice's first Read, then bob's, then alice's second */
  uint8_t chunk[64];
  memset(chunk, 'a', sizeof chunk);
  assert_int_equal(write(wfd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
  assert_true(hw_next_reply(b, alice[0], HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_OK);
  hw_reply_free(&r);
  memset(chunk, 'b', sizeof chunk);
  assert_int_equal(write(wfd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
  assert_true(hw_next_reply(b, bob, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_OK);
  assert_non_null(memmem(r.data, r.size, "bbbbbbbb", 8)); /* the bytes written for bob */
  hw_reply_free(&r);
  assert_false(hw_next_reply(b, alice[1], 100, &r));
  memset(chunk, 'c', sizeof chunk);
  assert_int_equal(write(wfd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
  assert_true(hw_next_reply(b, alice[1], HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_OK);
  hw_reply_free(&r);

  hw_bench_free(b);
  close(wfd);
  unlink(fifo);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_hwrng),
      cmocka_unit_test(test_fixture_reads),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_not_virtio_rng),
      cmocka_unit_test(test_hwrng_current),
      cmocka_unit_test(test_no_sysfs_path),
      cmocka_unit_test(test_missing_device_file),
      cmocka_unit_test(test_stuck_device),
      cmocka_unit_test(test_callers_served_in_turn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
