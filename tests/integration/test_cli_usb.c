/* `dfnet usb ...` end to end: the real `dfnet` CLI (a child process) → a real dfnet-manager
 * → a real dfnet-host whose libusb sees the recorded Canon PowerShot SX200
 * (tests/fixtures/usb/canon-powershot-sx200.umockdev: 04a9:31c0 at bus 1 address 11, port
 * 1-1.5.2.3; one configuration, a PTP still-image interface with bulk endpoints 0x81 IN and
 * 0x02 OUT and interrupt endpoint 0x83 IN) → the real usb-device driver in a driver host.
 * The umockdev testbed belongs to this test; the agent and its driver hosts inherit it
 * (UMOCKDEV_DIR and the preload), and it replays the usbdevfs ioctls recorded while
 * gphoto2 talked to the camera (canon-powershot-sx200.ioctl), as test_usb_bulk does for
 * the driver alone.
 *
 * Checked: `usb descriptors` prints the device as lsusb -v does (VID/PID, the interface,
 * the three endpoint addresses) by moniker and by class path, and the same facts in its
 * JSON; the first PTP exchanges (OpenSession, GetDeviceInfo) through `usb bulk-out` and
 * `usb bulk-in` byte for byte, with each way of giving and taking the bytes (hex, a file,
 * JSON); errors of each verb: bad usage exits 2 before anything is sent, a failed call
 * exits 1 with `dfnet: <STATUS>: message` (a missing endpoint, the wrong transfer type,
 * control and interrupt transfers the recording has no answer for, an unknown target, a
 * viewer's call). The recording has no control transfer, so no control transfer can
 * succeed here; the string descriptors are not read either (a warning says so).
 * Runs under umockdev-wrapper (it re-executes itself under it when started without). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <umockdev.h>

#include "cli_run.h"
#include "drivers_hw/usb_testbed.h"
#include "fabric.h"

#define HOST "lab-c"
#define CAMERA "dev.lab-c.usb.001_011"
#define WAIT_MS 30000

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;
  UMockdevTestbed *testbed;
  char class_path[64];
} F;

static cli_run_t R; /* 1 MiB of output: static storage */

/* sandboxed (dfnet-host's default): usb-device asks for the right usb, which reaches the
 * testbed beneath $UMOCKDEV_DIR (docs/architecture.md "Confinement") */
static const char *const agent_extra[] = {"--allow-right", "usb", NULL};

static int setup(void **state) {
  (void)state;
  /* the testbed first: the processes started below inherit it */
  F.testbed = usb_testbed_new("canon-powershot-sx200.umockdev", "/dev/bus/usb/001/011",
                              "canon-powershot-sx200.ioctl");
  if (F.testbed == NULL)
    return -1;
  F.agent.name = HOST;
  F.agent.usb = true;
  F.agent.extra = agent_extra;
  if (fabric_init(&F.fab, "cli-usb", NULL, NULL) != 0 || fabric_issue(&F.fab, "host", HOST) != 0 ||
      fabric_issue(&F.fab, "operator", "op") != 0 || fabric_issue(&F.fab, "viewer", "watcher") != 0)
    return -1;
  /* the real usb-device driver package, as the build made it */
  if (fabric_sh("cp -r '%s/drivers/usb-device' '%s/drivers/usb-device'", F.fab.build, F.fab.root) !=
      0)
    return -1;
  const char *no_devices[] = {NULL};
  fabric_write_board(&F.fab, no_devices);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.op = fabric_connect(&F.fab, "op");
  if (F.op == NULL || !fabric_wait_node(F.op, CAMERA, fabric_is_bound, NULL, WAIT_MS, NULL)) {
    print_message("the camera's node did not bind; agent log: %s\n", F.agent.log);
    return -1;
  }
  /* the class entry the driver published */
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(F.op, CAMERA ".", false, false, NULL, &l, &err) != DFNET_STATUS_OK)
    return -1;
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->items[i].class_name, "usb-device") == 0)
      snprintf(F.class_path, sizeof F.class_path, "%s", l->items[i].class_path);
  dfnet_client_node_list_free(l);
  cli_use(&F.fab, "op");
  return F.class_path[0] != '\0' ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, &F.agent, 1);
  if (F.testbed != NULL)
    g_object_unref(F.testbed);
  return 0;
}

/* `line` is a whole line of out. */
static void expect_line(const char *out, const char *line) {
  size_t n = strlen(line);
  for (const char *at = strstr(out, line); at != NULL; at = strstr(at + 1, line))
    if ((at == out || at[-1] == '\n') && at[n] == '\n')
      return;
  fail_msg("no line \"%s\" in:\n%s", line, out);
}

static void test_descriptors_text(void **state) {
  (void)state;
  /* by moniker; the string descriptors are read from the device by default: the recording
   * has none, so they are reported missing (a warning) and the rest is printed */
  assert_int_equal(cli_run(&R, &F.fab, "usb", "descriptors", CAMERA, NULL), 0);
  assert_true(strncmp(R.err, "dfnet: warning: string descriptors not read: ", 45) == 0);
  expect_line(R.out, "Bus 001 Device 011: ID 04a9:31c0");
  expect_line(R.out, "Device Descriptor:");
  expect_line(R.out, "  bcdUSB               2.00");
  expect_line(R.out, "  idVendor           0x04a9 ");
  expect_line(R.out, "  idProduct          0x31c0 ");
  expect_line(R.out, "  bDeviceClass            0 (Defined at Interface level)");
  expect_line(R.out, "  iManufacturer           1 ");
  expect_line(R.out, "  bNumConfigurations      1");
  expect_line(R.out, "  Configuration Descriptor:");
  expect_line(R.out, "    wTotalLength       0x0027");
  expect_line(R.out, "    bmAttributes         0xc0");
  expect_line(R.out, "      Self Powered");
  expect_line(R.out, "    Interface Descriptor:");
  expect_line(R.out, "      bInterfaceNumber        0");
  expect_line(R.out, "      bNumEndpoints           3");
  expect_line(R.out, "      bInterfaceClass         6 Imaging");
  expect_line(R.out, "      bInterfaceSubClass      1 Still Image Capture");
  expect_line(R.out, "      bInterfaceProtocol      1 Picture Transfer Protocol (PIMA 15470)");
  expect_line(R.out, "        bEndpointAddress     0x81  EP 1 IN");
  expect_line(R.out, "        bEndpointAddress     0x02  EP 2 OUT");
  expect_line(R.out, "        bEndpointAddress     0x83  EP 3 IN");
  expect_line(R.out, "          Transfer Type            Bulk");
  expect_line(R.out, "          Transfer Type            Interrupt");
  expect_line(R.out, "        wMaxPacketSize     0x0200  1x 512 bytes");
  /* by class path, without the string descriptors (no warning): the same text */
  static char first[sizeof R.out];
  memcpy(first, R.out, sizeof first);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "descriptors", F.class_path, "--no-strings", NULL),
                   0);
  assert_string_equal(R.err, "");
  assert_string_equal(R.out, first);
}

static void test_descriptors_json(void **state) {
  (void)state;
  assert_int_equal(
      cli_run(&R, &F.fab, "usb", "descriptors", F.class_path, "--json", "--no-strings", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_string_equal(cJSON_GetObjectItem(doc, "target")->valuestring, F.class_path);
  assert_int_equal(cJSON_GetObjectItem(doc, "bus")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(doc, "address")->valueint, 11);
  assert_string_equal(cJSON_GetObjectItem(doc, "port_path")->valuestring, "1-1.5.2.3");
  cJSON *dev = cJSON_GetObjectItem(doc, "device");
  assert_int_equal(cJSON_GetObjectItem(dev, "idVendor")->valueint, 0x04a9);
  assert_int_equal(cJSON_GetObjectItem(dev, "idProduct")->valueint, 0x31c0);
  assert_int_equal(cJSON_GetObjectItem(dev, "bcdUSB")->valueint, 0x0200);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(dev, "manufacturer")));
  assert_string_equal(cJSON_GetObjectItem(dev, "raw_hex")->valuestring,
                      "1201000200000040a904c031020001020301");
  cJSON *configs = cJSON_GetObjectItem(doc, "configurations");
  assert_int_equal(cJSON_GetArraySize(configs), 1);
  cJSON *cfg = cJSON_GetArrayItem(configs, 0);
  assert_int_equal(cJSON_GetObjectItem(cfg, "bConfigurationValue")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(cfg, "wTotalLength")->valueint, 39);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cfg, "active")));
  cJSON *ifcs = cJSON_GetObjectItem(cfg, "interfaces");
  assert_int_equal(cJSON_GetArraySize(ifcs), 1);
  cJSON *ifc = cJSON_GetArrayItem(ifcs, 0);
  assert_int_equal(cJSON_GetObjectItem(ifc, "bInterfaceNumber")->valueint, 0);
  assert_int_equal(cJSON_GetObjectItem(ifc, "bInterfaceClass")->valueint, 6);
  cJSON *eps = cJSON_GetObjectItem(ifc, "endpoints");
  assert_int_equal(cJSON_GetArraySize(eps), 3);
  static const struct {
    int address;
    const char *dir, *type;
    int max_packet;
  } want[] = {{0x81, "in", "bulk", 512}, {0x02, "out", "bulk", 512}, {0x83, "in", "interrupt", 8}};
  for (int i = 0; i < 3; i++) {
    cJSON *ep = cJSON_GetArrayItem(eps, i);
    assert_int_equal(cJSON_GetObjectItem(ep, "bEndpointAddress")->valueint, want[i].address);
    assert_string_equal(cJSON_GetObjectItem(ep, "direction")->valuestring, want[i].dir);
    assert_string_equal(cJSON_GetObjectItem(ep, "transfer_type")->valuestring, want[i].type);
    assert_int_equal(cJSON_GetObjectItem(ep, "wMaxPacketSize")->valueint, want[i].max_packet);
  }
  cJSON_Delete(doc);
}

/* PTP OpenSession (PIMA 15740): the command container out on 0x02, the response "OK"
 * (0x2001) in on 0x81, as the recording has them. */
static void test_ptp_session(void **state) {
  (void)state;
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-out", CAMERA, "0x02", "--data-hex",
                           "10000000010002100000000001000000", "--timeout", "2000", NULL),
                   0);
  assert_string_equal(R.out, "Wrote 16 byte(s).\n");
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-in", F.class_path, "0x81", "--length", "512",
                           "--hex", "--timeout", "2000", NULL),
                   0);
  assert_string_equal(R.out, "0c0000000300012000000000\n");
  /* GetDeviceInfo (transaction 1): the command from a file, the data phase to a file (the
   * 405-byte DeviceInfo dataset: PTP 1.00, then the vendor's strings), the response as
   * JSON */
  char cmd[400], info[400];
  snprintf(cmd, sizeof cmd, "%s/getdeviceinfo.bin", F.fab.root);
  snprintf(info, sizeof info, "%s/deviceinfo.bin", F.fab.root);
  static const uint8_t get_device_info[12] = {0x0c, 0, 0, 0, 1, 0, 0x01, 0x10, 1, 0, 0, 0};
  FILE *f = fopen(cmd, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(get_device_info, 1, 12, f), 12);
  fclose(f);
  assert_int_equal(
      cli_run(&R, &F.fab, "usb", "bulk-out", CAMERA, "2", "--data-file", cmd, "--json", NULL), 0);
  cJSON *doc = cli_json(&R);
  assert_int_equal(cJSON_GetObjectItem(doc, "endpoint")->valueint, 2);
  assert_int_equal(cJSON_GetObjectItem(doc, "transferred")->valueint, 12);
  cJSON_Delete(doc);
  assert_int_equal(
      cli_run(&R, &F.fab, "usb", "bulk-in", CAMERA, "0x81", "--length", "512", "--out", info, NULL),
      0);
  assert_string_equal(R.out, "");
  static uint8_t data[1024];
  f = fopen(info, "rb");
  assert_non_null(f);
  size_t n = fread(data, 1, sizeof data, f);
  fclose(f);
  assert_int_equal(n, 405);
  static const uint8_t head[] = {0x95, 0x01, 0, 0, 0x02, 0, 0x01, 0x10, 0x01, 0, 0, 0};
  assert_memory_equal(data, head, sizeof head); /* a data container of GetDeviceInfo */
  static const uint8_t canon[] = {'C', 0, 'a', 0, 'n', 0, 'o', 0, 'n', 0}; /* UTF-16LE */
  assert_non_null(memmem(data, n, canon, sizeof canon));
  assert_int_equal(
      cli_run(&R, &F.fab, "usb", "bulk-in", CAMERA, "0x81", "--length", "512", "--json", NULL), 0);
  doc = cli_json(&R);
  assert_int_equal(cJSON_GetObjectItem(doc, "transferred")->valueint, 12);
  assert_string_equal(cJSON_GetObjectItem(doc, "hex")->valuestring, "0c0000000300012001000000");
  cJSON_Delete(doc);
}

static void test_usage_errors(void **state) {
  (void)state;
  /* exit 2, before anything is sent */
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-in", CAMERA, "0x02", "--length", "8", NULL), 2);
  assert_non_null(strstr(R.err,
                         "dfnet: INVALID_ARGUMENT: EP '0x02': bulk-in wants the address "
                         "of an IN endpoint"));
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-out", CAMERA, "0x81", "--data-hex", "00", NULL),
                   2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-in", CAMERA, "0x81", NULL), 2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-in", CAMERA, "0x81", "--length", "16385", NULL),
                   2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-out", CAMERA, "2", NULL), 2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "control", CAMERA, "--request", "6", NULL), 2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "control", CAMERA, "--request-type", "0x80",
                           "--request", "6", "--data-hex", "00", NULL),
                   2);
  assert_non_null(strstr(R.err, "is IN (bit 7 set)"));
  assert_int_equal(cli_run(&R, &F.fab, "usb", "control", CAMERA, "--request-type", "0x00",
                           "--request", "9", "--length", "2", NULL),
                   2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "descriptors", NULL), 2);
  assert_int_equal(cli_run(&R, &F.fab, "usb", "frobnicate", CAMERA, NULL), 2);
}

static void test_call_errors(void **state) {
  (void)state;
  /* exit 1 with the driver's status and message */
  assert_int_equal(cli_run(&R, &F.fab, "usb", "bulk-in", CAMERA, "0x85", "--length", "8", NULL), 1);
  assert_non_null(strstr(R.err,
                         "dfnet: NOT_FOUND: endpoint 0x85 is not in the active "
                         "configuration"));
  assert_int_equal(
      cli_run(&R, &F.fab, "usb", "interrupt-in", CAMERA, "0x81", "--length", "8", NULL), 1);
  assert_non_null(strstr(R.err, "dfnet: INVALID_ARGUMENT: endpoint 0x81 is not an interrupt"));
  /* a transfer that reaches the (recorded) device, which has no answer for it: it ends
   * with the driver's status and message, exit 1 */
  assert_int_equal(cli_run(&R, &F.fab, "usb", "control", CAMERA, "--request-type", "0x80",
                           "--request", "0", "--length", "2", "--timeout", "300", NULL),
                   1);
  assert_true(strncmp(R.err, "dfnet: ", 7) == 0);
  assert_non_null(strstr(R.err, ": control transfer on 1-1.5.2.3 (bus 1 address 11): "));
  assert_string_equal(R.out, "");
  assert_int_equal(cli_run(&R, &F.fab, "usb", "interrupt-in", CAMERA, "0x83", "--length", "8",
                           "--timeout", "300", NULL),
                   1);
  assert_non_null(strstr(R.err, ": interrupt transfer on 1-1.5.2.3 (bus 1 address 11): "));
  /* an unknown target; a viewer (every call of a driver needs role operator) */
  assert_int_equal(cli_run(&R, &F.fab, "usb", "descriptors", "dev.lab-c.usb.009_099", NULL), 1);
  assert_non_null(strstr(R.err, "dfnet: NOT_FOUND:"));
  cli_use(&F.fab, "watcher");
  assert_int_equal(cli_run(&R, &F.fab, "usb", "descriptors", CAMERA, NULL), 1);
  assert_non_null(strstr(R.err, "dfnet: PERMISSION_DENIED:"));
  cli_use(&F.fab, "op");
}

/* Re-executes itself under umockdev-wrapper (its preload must be in place before the
 * process starts). */
static void under_umockdev(int argc, char **argv) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload != NULL && strstr(preload, "libumockdev-preload") != NULL)
    return;
  static char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    perror("/proc/self/exe");
    exit(1);
  }
  self[len] = '\0';
  /* under ASan the preload comes before the ASan runtime */
  const char *asan = getenv("ASAN_OPTIONS");
  static char opts[1024];
  snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
           asan && asan[0] ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1);
  char *args[16];
  int n = 0;
  args[n++] = DFNET_UMOCKDEV_WRAPPER;
  args[n++] = self;
  for (int i = 1; i < argc && n < 15; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  execv(args[0], args);
  perror(DFNET_UMOCKDEV_WRAPPER);
  exit(1);
}

int main(int argc, char **argv) {
  under_umockdev(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptors_text), cmocka_unit_test(test_descriptors_json),
      cmocka_unit_test(test_ptp_session),      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_call_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
