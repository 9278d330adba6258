/* usb-device moving real data: bulk transfers to a recorded camera under umockdev. The
 * Canon PowerShot SX200 of tests/fixtures/usb/canon-powershot-sx200.umockdev (04a9:31c0,
 * bus 1 address 11, port 1-1.5.2.3, a PTP still-image interface with bulk endpoints 0x02 OUT
 * and 0x81 IN) with the usbdevfs ioctls recorded while gphoto2 talked to it (.ioctl):
 * umockdev answers a URB the driver submits when it is the one the recording has next. The
 * test speaks the first PTP exchanges (PIMA 15740) through the real usb-device driver in a
 * real driver host: OpenSession, then GetDeviceInfo, and checks the camera's answers byte
 * for byte. Run under umockdev-wrapper. */
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
#define BULK "/dfnet.hw.usb.Device/BulkTransfer"

typedef struct fixture {
  UMockdevTestbed *testbed;
  hw_bench_t *bench;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->testbed = usb_testbed_new("canon-powershot-sx200.umockdev", "/dev/bus/usb/001/011",
                               "canon-powershot-sx200.ioctl");
  if (f->testbed == NULL)
    return -1;
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

/* One bulk transfer; OUT when `out_hex` is given, else IN of `length` bytes. Returns the
 * status; *reply gets the reply when OK. */
static dfnet_status_t bulk(fixture_t *f, uint32_t endpoint, const char *out_hex, uint32_t length,
                           dfnet_hw_usb_TransferReply *reply, char *msg, size_t cap) {
  dfnet_hw_usb_TransferRequest *t = calloc(1, sizeof *t);
  t->endpoint = endpoint;
  t->timeout_ms = 2000;
  if (out_hex != NULL)
    t->data.size = (pb_size_t)usb_testbed_unhex(out_hex, t->data.bytes, sizeof t->data.bytes);
  else
    t->length = length;
  uint8_t *buf = malloc(20000);
  pb_ostream_t os = pb_ostream_from_buffer(buf, 20000);
  assert_true(pb_encode(&os, dfnet_hw_usb_TransferRequest_fields, t));
  free(t);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, MONIKER, BULK, buf, os.bytes_written, 0, &r);
  free(buf);
  if (st == DFNET_STATUS_OK) {
    memset(reply, 0, sizeof *reply);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_usb_TransferReply_fields, reply));
  }
  snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  return st;
}

static void expect_in(fixture_t *f, uint32_t length, const char *want_hex) {
  static uint8_t want[4096];
  size_t n = usb_testbed_unhex(want_hex, want, sizeof want);
  dfnet_hw_usb_TransferReply *reply = calloc(1, sizeof *reply);
  char msg[512];
  dfnet_status_t st = bulk(f, 0x81, NULL, length, reply, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("bulk IN 0x81: %s: %s", dfnet_status_str(st), msg);
  assert_int_equal(reply->transferred, n);
  assert_int_equal(reply->data.size, n);
  assert_memory_equal(reply->data.bytes, want, n);
  free(reply);
}

static void expect_out(fixture_t *f, const char *hex) {
  dfnet_hw_usb_TransferReply *reply = calloc(1, sizeof *reply);
  char msg[512];
  dfnet_status_t st = bulk(f, 0x02, hex, 0, reply, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("bulk OUT 0x02: %s: %s", dfnet_status_str(st), msg);
  assert_int_equal(reply->transferred, strlen(hex) / 2);
  free(reply);
}

/* The GetDeviceInfo dataset the camera sent (405 bytes: PTP 1.00, the Canon extension
 * set, operations, events, properties, formats, then "Canon Inc.", "Canon PowerShot SX200
 * IS", "1-6.0.1.0" and its serial number as UTF-16 strings). */
static const char device_info_hex[] =
    "950100000200011001000000640006000000640000000034000000141015101610171001100210031013901F"
    "900410051006100710081009100A101B100C100D100B100F101210019021901B901E90199006901C9002904C"
    "9024902590389039903A903B904B905E900E900F901090119001980298039804980598509051905C905D9010"
    "0000000140024003400440054006400740084009400A400B400C400E4001C005C00AC01400000045D04AD02E"
    "D02FD002D003D034D047D046D02DD02CD030D049D032D033D031D050D002D406D407D40100000001380B0000"
    "000130023006300A3008300138003801B103B104B101BF0B430061006E006F006E00200049006E0063002E00"
    "000019430061006E006F006E00200050006F00770065007200530068006F0074002000530058003200300030"
    "0020004900530000000A31002D0036002E0030002E0031002E00300000002143003700360037004600310043"
    "0037003100340031003700340043003300300039003200350035004600370030004500340041003700420032"
    "004500450032000000";

static void test_ptp_session(void **state) {
  fixture_t *f = *state;
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_USB_VID, 0x04a9),
      HW_PROP_INT(DFNET_BIND_USB_PID, 0x31c0),
      HW_PROP_INT(DFNET_BIND_USB_CLASS, 0),
      HW_PROP_STRKEY_INT(BIND_DFNET_USB_BUS, 1),
      HW_PROP_STRKEY_INT(BIND_DFNET_USB_ADDRESS, 11),
      HW_PROP_STR(BIND_DFNET_USB_PORT_PATH, "1-1.5.2.3"),
      HW_PROP_STR(BIND_DFNET_USB_SYSFS_NAME, "1-1.5.2.3"),
  };
  assert_int_equal(hw_start(f->bench, "usb-device", MONIKER, props, 8, NULL, NULL, 0),
                   DFNET_STATUS_OK);
  /* OpenSession(1): a command container out, the response "OK" (0x2001) in */
  expect_out(f, "10000000010002100000000001000000");
  expect_in(f, 512, "0C0000000300012000000000");
  /* GetDeviceInfo: the command, the data phase (the dataset), the response */
  expect_out(f, "0C0000000100011001000000");
  expect_in(f, 512, device_info_hex);
  expect_in(f, 512, "0C0000000300012001000000");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ptp_session, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
