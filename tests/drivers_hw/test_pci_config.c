/* pci-config in a real dfnet-driver-host on the captured sysfs fixture: reads that match
 * the fixture's own config files, bounds, a missing config file. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "bind/fuchsia_pci.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/pci.pb.h"
#include "harness.h"

#define READ "/dfnet.hw.pci.Config/Read"

static const char *fixture_fn(const char *bdf) {
  static char path[PATH_MAX];
  snprintf(path, sizeof path, DFNET_FIXTURES_DIR "/sysfs-virtio-vm/devices/pci0000:00/%s", bdf);
  return path;
}

/* Start pci-config on a function whose "dfnet.pci.SYSFS_PATH" is sysfs_path; the harness
 * hands "sysfs" and "config" as the agent does, unless `untrusted`. The start's message in
 * msg[cap] (msg may be NULL). */
static hw_bench_t *start_with(const char *moniker, const char *sysfs_path, bool untrusted,
                              dfnet_status_t want, char *msg, size_t cap) {
  hw_bench_t *b = hw_bench_new();
  assert_non_null(b);
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_PCI_VID, 0x1af4),
      HW_PROP_STR("dfnet.pci.SYSFS_PATH", sysfs_path),
  };
  const hw_driver_t d = {.name = "pci-config",
                         .moniker = moniker,
                         .props = props,
                         .prop_count = 3,
                         .untrusted = untrusted};
  assert_int_equal(hw_start_driver(b, &d, msg, cap), want);
  return b;
}

static hw_bench_t *start_on(const char *moniker, const char *sysfs_path, dfnet_status_t want) {
  return start_with(moniker, sysfs_path, false, want, NULL, 0);
}

static dfnet_status_t config_read(hw_bench_t *b, const char *moniker, uint32_t offset,
                                  uint32_t length, dfnet_hw_pci_ReadReply *out, char *msg,
                                  size_t cap) {
  dfnet_hw_pci_ReadRequest req = {.offset = offset, .length = length};
  uint8_t buf[32];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_pci_ReadRequest_fields, &req));
  hw_reply_t r;
  dfnet_status_t st = hw_call(b, moniker, READ, buf, os.bytes_written, 0, &r);
  memset(out, 0, sizeof *out);
  if (st == DFNET_STATUS_OK) {
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_pci_ReadReply_fields, out));
  }
  if (msg != NULL)
    snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  return st;
}

static void read_fixture_config(const char *bdf, uint8_t *out, size_t cap) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/config", fixture_fn(bdf));
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fread(out, 1, cap, f), cap);
  fclose(f);
}

/* Every function of the fixture: vendor and device at offset 0 as the fixture's
 * `vendor`/`device` say, the whole space equal to the file. */
static void test_reads_match_fixture(void **state) {
  (void)state;
  static const struct {
    const char *bdf;
    uint16_t vendor, device;
  } fns[] = {{"0000:00:00.0", 0x8086, 0x0d57},
             {"0000:00:03.0", 0x1af4, 0x1041},
             {"0000:00:05.0", 0x1af4, 0x1044}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    char moniker[64];
    snprintf(moniker, sizeof moniker, "dev.lab.pci.00_0%c_0", fns[i].bdf[9]);
    hw_bench_t *b = start_on(moniker, fixture_fn(fns[i].bdf), DFNET_STATUS_OK);
    char child[80];
    snprintf(child, sizeof child, "%s.pci", moniker);
    assert_string_equal(hw_child_class(b, child), "pci");
    dfnet_hw_pci_ReadReply reply;
    assert_int_equal(config_read(b, moniker, 0, 4, &reply, NULL, 0), DFNET_STATUS_OK);
    assert_int_equal(reply.data.size, 4);
    assert_int_equal(reply.size, 256);
    assert_int_equal(reply.data.bytes[0] | reply.data.bytes[1] << 8, fns[i].vendor);
    assert_int_equal(reply.data.bytes[2] | reply.data.bytes[3] << 8, fns[i].device);
    uint8_t want[256];
    read_fixture_config(fns[i].bdf, want, sizeof want);
    assert_int_equal(config_read(b, moniker, 0, 256, &reply, NULL, 0), DFNET_STATUS_OK);
    assert_memory_equal(reply.data.bytes, want, 256);
    assert_int_equal(config_read(b, moniker, 255, 1, &reply, NULL, 0), DFNET_STATUS_OK);
    assert_int_equal(reply.data.bytes[0], want[255]);
    hw_bench_free(b);
  }
}

static void test_out_of_bounds(void **state) {
  (void)state;
  const char *moniker = "dev.lab.pci.00_05_0";
  hw_bench_t *b = start_on(moniker, fixture_fn("0000:00:05.0"), DFNET_STATUS_OK);
  dfnet_hw_pci_ReadReply reply;
  char msg[512];
  assert_int_equal(config_read(b, moniker, 250, 8, &reply, msg, sizeof msg),
                   DFNET_STATUS_OUT_OF_RANGE);
  assert_non_null(strstr(msg, "outside the 256 bytes"));
  assert_int_equal(config_read(b, moniker, 256, 1, &reply, NULL, 0), DFNET_STATUS_OUT_OF_RANGE);
  assert_int_equal(config_read(b, moniker, 0xffffffffu, 4096, &reply, NULL, 0),
                   DFNET_STATUS_OUT_OF_RANGE);
  assert_int_equal(config_read(b, moniker, 0, 0, &reply, NULL, 0), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(config_read(b, moniker, 0, 4097, &reply, NULL, 0),
                   DFNET_STATUS_INVALID_ARGUMENT);
  hw_bench_free(b);
}

/* The agent opens the function's directory and its config: what it cannot open fails the
 * start before the driver runs, with the file and the cause. */
static void test_missing_config_file(void **state) {
  (void)state;
  char msg[1024];
  hw_bench_t *b = start_with("dev.lab.pci.00_09_0", "/nonexistent/0000:00:09.0", false,
                             DFNET_STATUS_NOT_FOUND, msg, sizeof msg);
  assert_string_equal(msg,
                      "cannot open resource sysfs /nonexistent/0000:00:09.0: No such file "
                      "or directory");
  hw_bench_free(b);
  /* a directory without a config file */
  char dir[] = "/tmp/dfnet-pci-XXXXXX", want[256];
  assert_non_null(mkdtemp(dir));
  b = start_with("dev.lab.pci.00_09_0", dir, false, DFNET_STATUS_NOT_FOUND, msg, sizeof msg);
  snprintf(want, sizeof want, "cannot open resource config %s/config: No such file or directory",
           dir);
  assert_string_equal(msg, want);
  hw_bench_free(b);
  rmdir(dir);
}

/* A node whose properties the agent does not trust (one a driver added) gets nothing handed:
 * the driver opens nothing itself and says what it lacks. */
static void test_config_not_handed(void **state) {
  (void)state;
  hw_bench_t *b = start_with("dev.lab.pci.00_05_0", fixture_fn("0000:00:05.0"), true,
                             DFNET_STATUS_FAILED_PRECONDITION, NULL, 0);
  char *log = hw_bench_log(b);
  if (strstr(log, "the node has no resource \"config\"") == NULL)
    fail_msg("log lacks the reason:\n%s", log);
  free(log);
  hw_bench_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_match_fixture),
      cmocka_unit_test(test_out_of_bounds),
      cmocka_unit_test(test_missing_config_file),
      cmocka_unit_test(test_config_not_handed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
