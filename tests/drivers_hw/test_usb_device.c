/* usb-device in a real dfnet-driver-host under umockdev: the recorded Holtek keyboard
 * (tests/fixtures/usb/usbkbd.pcap.umockdev, 04d9:1603 at bus 1 address 11, port 1-3)
 * in a libumockdev testbed; the driver host inherits the testbed (UMOCKDEV_DIR) and the
 * preload (LD_PRELOAD), so libusb in the driver sees the recorded device. Descriptors are
 * compared with the recording's own bytes; transfers that the recording cannot answer
 * must end with a status and a message, never hang. Run under umockdev-wrapper. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <umockdev.h>

#include "bind/dfnet_usb.h"
#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/usb.pb.h"
#include "harness.h"
#include "usb_testbed.h"

#define MONIKER "dev.lab.usb.001_011"
#define DEVICE "/dfnet.hw.usb.Device/"

/* The descriptors of the recording (its "N: bus/usb/001/011=" line): the device
 * descriptor, then configuration 1 (59 bytes). */
static const char kbd_hex[] =
    "1201100100000008D904031610030102000109023B00020100A032090400000103010100092110010001223E"
    "000705810308000A0904010001030000000921100100012265000705820308000A";

typedef struct fixture {
  UMockdevTestbed *testbed;
  hw_bench_t *bench;
  uint8_t descriptors[128];
  size_t descriptors_len;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->testbed = usb_testbed_new("usbkbd.pcap.umockdev", NULL, NULL);
  if (f->testbed == NULL)
    return -1;
  f->descriptors_len = usb_testbed_unhex(kbd_hex, f->descriptors, sizeof f->descriptors);
  f->bench = hw_bench_new(); /* after the testbed: the driver host inherits it */
  *state = f;
  return f->bench != NULL ? 0 : -1;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  hw_bench_free(f->bench);
  g_object_unref(f->testbed);
  free(f);
  return 0;
}

static dfnet_status_t start(fixture_t *f, uint32_t bus, uint32_t address, const char *port) {
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_USB_VID, 0x04d9),
      HW_PROP_INT(DFNET_BIND_USB_PID, 0x1603),
      HW_PROP_INT(DFNET_BIND_USB_CLASS, 0),
      HW_PROP_STRKEY_INT(BIND_DFNET_USB_BUS, bus),
      HW_PROP_STRKEY_INT(BIND_DFNET_USB_ADDRESS, address),
      HW_PROP_STR(BIND_DFNET_USB_PORT_PATH, port),
      HW_PROP_STR(BIND_DFNET_USB_SYSFS_NAME, port),
  };
  return hw_start(f->bench, "usb-device", MONIKER, props, 8, NULL, NULL, 0);
}

static dfnet_status_t call(fixture_t *f, const char *method, const pb_msgdesc_t *req_fields,
                           const void *req, const pb_msgdesc_t *reply_fields, void *reply,
                           char *msg, size_t cap) {
  uint8_t *buf = malloc(20000);
  pb_ostream_t os = pb_ostream_from_buffer(buf, 20000);
  assert_true(pb_encode(&os, req_fields, req));
  char path[128];
  snprintf(path, sizeof path, DEVICE "%s", method);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, MONIKER, path, buf, os.bytes_written, 0, &r);
  free(buf);
  if (st == DFNET_STATUS_OK && reply_fields != NULL) {
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, reply_fields, reply));
  }
  if (msg != NULL)
    snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  return st;
}

static void test_descriptors(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, 1, 11, "1-3"), DFNET_STATUS_OK);
  assert_string_equal(hw_child_class(f->bench, MONIKER ".usb-device"), "usb-device");

  dfnet_hw_usb_GetDeviceDescriptorRequest dreq = dfnet_hw_usb_GetDeviceDescriptorRequest_init_zero;
  dfnet_hw_usb_DeviceDescriptor d;
  assert_int_equal(call(f, "GetDeviceDescriptor", dfnet_hw_usb_GetDeviceDescriptorRequest_fields,
                        &dreq, dfnet_hw_usb_DeviceDescriptor_fields, &d, NULL, 0),
                   DFNET_STATUS_OK);
  assert_int_equal(d.raw.size, 18);
  assert_memory_equal(d.raw.bytes, f->descriptors, 18);
  assert_int_equal(d.vendor_id, 0x04d9);
  assert_int_equal(d.product_id, 0x1603);
  assert_int_equal(d.usb_version, 0x0110);
  assert_int_equal(d.num_configurations, 1);
  assert_int_equal(d.product_index, 2);
  assert_int_equal(d.bus, 1);
  assert_int_equal(d.address, 11);
  assert_string_equal(d.port_path, "1-3");

  dfnet_hw_usb_GetConfigDescriptorRequest creq = {.index = 0};
  dfnet_hw_usb_ConfigDescriptor *c = calloc(1, sizeof *c);
  assert_int_equal(call(f, "GetConfigDescriptor", dfnet_hw_usb_GetConfigDescriptorRequest_fields,
                        &creq, dfnet_hw_usb_ConfigDescriptor_fields, c, NULL, 0),
                   DFNET_STATUS_OK);
  assert_int_equal(c->raw.size, 59);
  assert_memory_equal(c->raw.bytes, f->descriptors + 18, 59); /* HID descriptors included */
  assert_int_equal(c->configuration_value, 1);
  assert_int_equal(c->num_interfaces, 2);
  free(c);

  char msg[512];
  creq.index = 1;
  assert_int_equal(call(f, "GetConfigDescriptor", dfnet_hw_usb_GetConfigDescriptorRequest_fields,
                        &creq, NULL, NULL, msg, sizeof msg),
                   DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(msg, "the device has 1"));
}

/* Requests the driver refuses before touching the device. */
static void test_bad_transfers(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, 1, 11, "1-3"), DFNET_STATUS_OK);
  char msg[512];
  dfnet_hw_usb_TransferRequest *t = calloc(1, sizeof *t);
  t->endpoint = 0x81; /* the keyboard's interrupt IN endpoint */
  t->length = 8;
  assert_int_equal(
      call(f, "BulkTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL, NULL, msg, sizeof msg),
      DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "not a bulk endpoint"));
  t->endpoint = 0x85;
  assert_int_equal(call(f, "InterruptTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL, NULL,
                        msg, sizeof msg),
                   DFNET_STATUS_NOT_FOUND);
  t->endpoint = 0x81;
  t->length = 0;
  assert_int_equal(call(f, "InterruptTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL, NULL,
                        msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  t->length = 8;
  t->timeout_ms = 60001;
  assert_int_equal(call(f, "InterruptTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL, NULL,
                        msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  free(t);
  dfnet_hw_usb_ControlTransferRequest *c = calloc(1, sizeof *c);
  c->request_type = 0x80;
  c->length = 5000;
  assert_int_equal(call(f, "ControlTransfer", dfnet_hw_usb_ControlTransferRequest_fields, c, NULL,
                        NULL, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  free(c);
}

/* Requests that reach the (recorded) device: whatever the recording can answer, each
 * ends with one status and a message, within its timeout. */
static void test_device_io_ends(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, 1, 11, "1-3"), DFNET_STATUS_OK);
  char msg[512];
  dfnet_hw_usb_GetStringDescriptorRequest s = {.index = 2};
  dfnet_hw_usb_StringDescriptor sd;
  dfnet_status_t st = call(f, "GetStringDescriptor", dfnet_hw_usb_GetStringDescriptorRequest_fields,
                           &s, dfnet_hw_usb_StringDescriptor_fields, &sd, msg, sizeof msg);
  fprintf(stderr, "GetStringDescriptor(2): %s: %s\n", dfnet_status_str(st),
          st == DFNET_STATUS_OK ? sd.text : msg);
  assert_true(st == DFNET_STATUS_OK || msg[0] != '\0');
  dfnet_hw_usb_TransferRequest *t = calloc(1, sizeof *t);
  t->endpoint = 0x81;
  t->length = 8;
  t->timeout_ms = 200;
  st = call(f, "InterruptTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL, NULL, msg,
            sizeof msg);
  fprintf(stderr, "InterruptTransfer(0x81): %s: %s\n", dfnet_status_str(st), msg);
  assert_true(st != DFNET_STATUS_OK && msg[0] != '\0');
  free(t);
}

/* Under the keyboard's recorded usbmon capture (umockdev replays it strictly in order),
 * a transfer the recording does not start with is never answered: the transfer's timeout
 * ends it with DEADLINE_EXCEEDED and the byte count, and the driver serves the next
 * request. (Replaying the capture itself would need the kernel HID driver's exact URB
 * sequence: not something a remote client issues.) */
static void test_transfer_timeout(void **state) {
  fixture_t *f = *state;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", DFNET_FIXTURES_DIR "/usb/usbkbd.pcap.pcapng");
  GError *error = NULL;
  assert_true(umockdev_testbed_load_pcap(
      f->testbed, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3", path, &error));
  assert_true(usb_testbed_share(f->testbed)); /* the driver user reaches what was added */
  assert_int_equal(start(f, 1, 11, "1-3"), DFNET_STATUS_OK);
  char msg[512];
  dfnet_hw_usb_TransferRequest *t = calloc(1, sizeof *t);
  t->endpoint = 0x81;
  t->length = 8;
  t->timeout_ms = 300;
  t->detach_kernel_driver = true;
  assert_int_equal(call(f, "InterruptTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL, NULL,
                        msg, sizeof msg),
                   DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_non_null(strstr(msg, "interrupt transfer timed out after 0 bytes"));
  free(t);
  dfnet_hw_usb_GetDeviceDescriptorRequest dreq = dfnet_hw_usb_GetDeviceDescriptorRequest_init_zero;
  dfnet_hw_usb_DeviceDescriptor d;
  assert_int_equal(call(f, "GetDeviceDescriptor", dfnet_hw_usb_GetDeviceDescriptorRequest_fields,
                        &dreq, dfnet_hw_usb_DeviceDescriptor_fields, &d, NULL, 0),
                   DFNET_STATUS_OK);
}

static void test_device_not_there(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, 1, 99, "1-3"), DFNET_STATUS_FAILED_PRECONDITION);
  char *log = hw_bench_log(f->bench);
  assert_non_null(strstr(log, "no USB device at bus 1 address 99"));
  free(log);
  hw_bench_free(f->bench); /* a fresh driver host: the failed driver may still be leaving */
  f->bench = hw_bench_new();
  assert_non_null(f->bench);
  assert_int_equal(start(f, 1, 11, "1-4.2"), DFNET_STATUS_FAILED_PRECONDITION);
  log = hw_bench_log(f->bench);
  assert_non_null(strstr(log, "is at port 1-3, not 1-4.2"));
  free(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_descriptors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_transfers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_device_io_ends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_device_not_there, setup, teardown),
      cmocka_unit_test_setup_teardown(test_transfer_timeout, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
