/* usb-device's interface children and dfnet.hw.usb.Interface, in a real dfnet-driver-host
 * under umockdev, with calls crafted as the host agent makes them for a child's driver
 * (Call.caller = the child's node moniker, Call.caller_driver_url = its driver's URL):
 *
 *  - the recorded Canon PowerShot SX200 (04a9:31c0, bus 1 address 11, port 1-1.5.2.3; one
 *    PTP still-image interface 6/1/1 with bulk endpoints 0x02 OUT and 0x81 IN and interrupt
 *    endpoint 0x83 IN) with the usbdevfs ioctls recorded while gphoto2 talked to it:
 *    usb-device adds the child ifc-000 with the interface's properties and the offer; the
 *    first PTP exchanges (OpenSession, GetDeviceInfo) run through the child's Interface,
 *    unary and as a ReadStream, and match the recording byte for byte (as test_drv_usb_bulk
 *    does through Device);
 *  - the recorded Holtek keyboard (04d9:1603, two HID interfaces with interrupt endpoints
 *    0x81 and 0x82): a child reaches only its own interface; another child's endpoint or
 *    interface is INVALID_ARGUMENT, anyone but a child is PERMISSION_DENIED; Claim takes a
 *    second interface (its child node goes) and Device transfers on a held interface are
 *    FAILED_PRECONDITION.
 * Run under umockdev-wrapper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <umockdev.h>

#include "bind/dfnet_hw_usb.h"
#include "bind/dfnet_usb.h"
#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/usb.pb.h"
#include "harness.h"
#include "usb_testbed.h"

#define DEVICE_NODE "dev.lab.usb.001_011"
#define IFC0 DEVICE_NODE ".ifc-000"
#define IFC1 DEVICE_NODE ".ifc-001"
#define INTERFACE "/dfnet.hw.usb.Interface/"
#define CLASS_URL "dfnet-boot:///a-class-driver"

static const hw_caller_t ifc0 = {.name = IFC0, .driver_url = CLASS_URL};
static const hw_caller_t ifc1 = {.name = IFC1, .driver_url = CLASS_URL};

typedef struct fixture {
  UMockdevTestbed *testbed;
  hw_bench_t *bench;
} fixture_t;

/* ---- set-up ---------------------------------------------------------------------------- */

static int setup_with(void **state, const char *recording, const char *ioctl_file) {
  fixture_t *f = calloc(1, sizeof *f);
  f->testbed = usb_testbed_new(recording, ioctl_file ? "/dev/bus/usb/001/011" : NULL, ioctl_file);
  if (f->testbed == NULL)
    return -1;
  f->bench = hw_bench_new(); /* after the testbed: the driver host inherits it */
  *state = f;
  return f->bench != NULL ? 0 : -1;
}

static int setup_camera(void **state) {
  return setup_with(state, "canon-powershot-sx200.umockdev", "canon-powershot-sx200.ioctl");
}

static int setup_keyboard(void **state) { return setup_with(state, "usbkbd.pcap.umockdev", NULL); }

static int teardown(void **state) {
  fixture_t *f = *state;
  hw_bench_free(f->bench);
  g_object_unref(f->testbed);
  free(f);
  return 0;
}

/* usb-device on the device node, as the enumerator publishes it. */
static void start_usb_device(fixture_t *f, uint32_t vid, uint32_t pid, const char *port) {
  char file[32];
  snprintf(file, sizeof file, "/dev/bus/usb/001/011");
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_USB_VID, vid),
      HW_PROP_INT(DFNET_BIND_USB_PID, pid),
      HW_PROP_INT(DFNET_BIND_USB_CLASS, 0),
      HW_PROP_STRKEY_INT(BIND_DFNET_USB_BUS, 1),
      HW_PROP_STRKEY_INT(BIND_DFNET_USB_ADDRESS, 11),
      HW_PROP_STR(BIND_DFNET_USB_PORT_PATH, port),
      HW_PROP_STR(BIND_DFNET_USB_SYSFS_NAME, port),
      HW_PROP_STR(BIND_DFNET_USB_DEVICE_FILE, file),
  };
  assert_int_equal(hw_start(f->bench, "usb-device", DEVICE_NODE, props, 9, NULL, NULL, 0),
                   DFNET_STATUS_OK);
}

/* ---- calls ------------------------------------------------------------------------------ */

/* Interface.<method> by `who`; the reply decoded into *reply (when OK and reply_fields),
 * the message into msg[cap]. */
static dfnet_status_t call_by(fixture_t *f, const hw_caller_t *who, const char *method,
                              const pb_msgdesc_t *req_fields, const void *req,
                              const pb_msgdesc_t *reply_fields, void *reply, char *msg,
                              size_t cap) {
  uint8_t *buf = malloc(20000);
  pb_ostream_t os = pb_ostream_from_buffer(buf, 20000);
  assert_true(pb_encode(&os, req_fields, req));
  char path[128];
  snprintf(path, sizeof path, INTERFACE "%s", method);
  hw_reply_t r;
  dfnet_status_t st = hw_call_by(f->bench, who, DEVICE_NODE, path, buf, os.bytes_written, 0, &r);
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

/* A transfer request on `endpoint`: OUT with the bytes of out_hex, else IN of length. */
static dfnet_hw_usb_TransferRequest *transfer(uint32_t endpoint, const char *out_hex,
                                              uint32_t length) {
  dfnet_hw_usb_TransferRequest *t = calloc(1, sizeof *t);
  t->endpoint = endpoint;
  t->timeout_ms = 2000;
  if (out_hex != NULL)
    t->data.size = (pb_size_t)usb_testbed_unhex(out_hex, t->data.bytes, sizeof t->data.bytes);
  else
    t->length = length;
  return t;
}

/* A bulk transfer by ifc-000; returns its status, the reply in *reply when OK. */
static dfnet_status_t bulk(fixture_t *f, uint32_t endpoint, const char *out_hex, uint32_t length,
                           dfnet_hw_usb_TransferReply *reply, char *msg, size_t cap) {
  dfnet_hw_usb_TransferRequest *t = transfer(endpoint, out_hex, length);
  dfnet_status_t st = call_by(f, &ifc0, "BulkTransfer", dfnet_hw_usb_TransferRequest_fields, t,
                              dfnet_hw_usb_TransferReply_fields, reply, msg, cap);
  free(t);
  return st;
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

static void expect_in(fixture_t *f, const char *want_hex) {
  static uint8_t want[4096];
  size_t n = usb_testbed_unhex(want_hex, want, sizeof want);
  dfnet_hw_usb_TransferReply *reply = calloc(1, sizeof *reply);
  char msg[512];
  dfnet_status_t st = bulk(f, 0x81, NULL, 512, reply, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("bulk IN 0x81: %s: %s", dfnet_status_str(st), msg);
  assert_int_equal(reply->transferred, n);
  assert_int_equal(reply->data.size, n);
  assert_memory_equal(reply->data.bytes, want, n);
  free(reply);
}

/* ---- the recording's PTP session (PIMA 15740) -------------------------------------------- */

#define OPEN_SESSION "10000000010002100000000001000000" /* command: OpenSession(1), tid 0 */
#define OPEN_SESSION_OK "0C0000000300012000000000"      /* response: OK, tid 0 */
#define GET_DEVICE_INFO "0C0000000100011001000000"      /* command: GetDeviceInfo, tid 1 */
#define GET_DEVICE_INFO_OK "0C0000000300012001000000"   /* response: OK, tid 1 */

/* The GetDeviceInfo data container the camera sent (405 bytes: PTP 1.00, the Canon
 * extension set, operations, events, properties, formats, then "Canon Inc.", "Canon
 * PowerShot SX200 IS", "1-6.0.1.0" and its serial number as UTF-16 strings). */
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

/* ---- the camera ----------------------------------------------------------------------------- */

static void check_prop_uint(const dfnet_v1_NodeAdd *n, uint32_t int_key, const char *str_key,
                            uint32_t want) {
  for (pb_size_t i = 0; i < n->properties_count; i++) {
    const dfnet_v1_NodeProperty *p = &n->properties[i];
    bool key = int_key != 0
                   ? p->which_key == dfnet_v1_NodeProperty_int_key_tag && p->key.int_key == int_key
                   : p->which_key == dfnet_v1_NodeProperty_str_key_tag &&
                         strcmp(p->key.str_key, str_key) == 0;
    if (key) {
      assert_int_equal(p->which_value, dfnet_v1_NodeProperty_int_value_tag);
      if (p->value.int_value != want)
        fail_msg("property %s%u: %u, want %u", str_key ? str_key : "#", int_key, p->value.int_value,
                 want);
      return;
    }
  }
  fail_msg("no property %s%u", str_key ? str_key : "#", int_key);
}

static void check_prop_str(const dfnet_v1_NodeAdd *n, const char *key, const char *want) {
  for (pb_size_t i = 0; i < n->properties_count; i++) {
    const dfnet_v1_NodeProperty *p = &n->properties[i];
    if (p->which_key == dfnet_v1_NodeProperty_str_key_tag && strcmp(p->key.str_key, key) == 0) {
      assert_int_equal(p->which_value, dfnet_v1_NodeProperty_str_value_tag);
      assert_string_equal(p->value.str_value, want);
      return;
    }
  }
  fail_msg("no property %s", key);
}

/* The camera's interface child: Fuchsia's interface properties, where it is, and the
 * offer of its interface; for a driver to bind (not owned, no class). */
static void test_interface_child(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04a9, 0x31c0, "1-1.5.2.3");
  assert_string_equal(hw_child_class(f->bench, DEVICE_NODE ".usb-device"), "usb-device");
  const dfnet_v1_NodeAdd *n = hw_child_node(f->bench, IFC0);
  assert_non_null(n);
  assert_string_equal(n->parent, DEVICE_NODE);
  assert_string_equal(n->name, "ifc-000");
  assert_false(n->owned);
  assert_string_equal(n->class_name, "");
  check_prop_uint(n, DFNET_BIND_PROTOCOL, NULL, BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE);
  check_prop_uint(n, DFNET_BIND_PROTOCOL, NULL, 0x26); /* Fuchsia's fuchsia.usb value */
  check_prop_uint(n, DFNET_BIND_USB_VID, NULL, 0x04a9);
  check_prop_uint(n, DFNET_BIND_USB_PID, NULL, 0x31c0);
  check_prop_uint(n, DFNET_BIND_USB_CLASS, NULL, 6); /* still image: PTP */
  check_prop_uint(n, DFNET_BIND_USB_SUBCLASS, NULL, 1);
  check_prop_uint(n, DFNET_BIND_USB_PROTOCOL, NULL, 1);
  check_prop_uint(n, DFNET_BIND_USB_INTERFACE_NUMBER, NULL, 0);
  check_prop_uint(n, 0, BIND_DFNET_USB_BUS, 1);
  check_prop_uint(n, 0, BIND_DFNET_USB_ADDRESS, 11);
  check_prop_uint(n, 0, BIND_DFNET_USB_CONFIGURATION, 1);
  check_prop_str(n, BIND_DFNET_USB_PORT_PATH, "1-1.5.2.3");
  check_prop_str(n, BIND_DFNET_USB_SYSFS_NAME, "1-1.5.2.3:1.0");
  assert_int_equal(n->properties_count, 12);
  assert_int_equal(n->offers_count, 1);
  assert_string_equal(n->offers[0], BIND_DFNET_HW_USB_INTERFACE);
  assert_null(hw_child_node(f->bench, IFC1)); /* one interface, one child */
}

/* GetInterface: the interface's own descriptors (the configuration's, after its 9-byte
 * header: one interface, so everything else) and its endpoints. */
static void test_get_interface(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04a9, 0x31c0, "1-1.5.2.3");
  dfnet_hw_usb_GetInterfaceRequest req = dfnet_hw_usb_GetInterfaceRequest_init_zero;
  dfnet_hw_usb_InterfaceInfo *info = calloc(1, sizeof *info);
  char msg[512];
  dfnet_status_t st = call_by(f, &ifc0, "GetInterface", dfnet_hw_usb_GetInterfaceRequest_fields,
                              &req, dfnet_hw_usb_InterfaceInfo_fields, info, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("GetInterface: %s: %s", dfnet_status_str(st), msg);
  assert_int_equal(info->interface_number, 0);
  assert_int_equal(info->interface_class, 6);
  assert_int_equal(info->interface_subclass, 1);
  assert_int_equal(info->interface_protocol, 1);
  assert_int_equal(info->vendor_id, 0x04a9);
  assert_int_equal(info->product_id, 0x31c0);
  assert_int_equal(info->configuration_value, 1);
  assert_false(info->claimed);
  assert_int_equal(info->claimed_interfaces_count, 0);
  assert_int_equal(info->endpoints_count, 3);
  uint32_t want[3][2] = {{0x81, 2}, {0x02, 2}, {0x83, 3}}; /* address, bulk / interrupt */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(info->endpoints[i].address, want[i][0]);
    assert_int_equal(info->endpoints[i].attributes & 3, want[i][1]);
    assert_int_equal(info->endpoints[i].interface_number, 0);
  }
  assert_int_equal(info->endpoints[0].max_packet_size, 512);
  /* interface (9) + three endpoints (7 each) */
  assert_int_equal(info->descriptors.size, 9 + 3 * 7);
  assert_int_equal(info->descriptors.bytes[0], 9);
  assert_int_equal(info->descriptors.bytes[1], 4);     /* INTERFACE */
  assert_int_equal(info->descriptors.bytes[9 + 1], 5); /* ENDPOINT */
  free(info);
}

/* The recording's PTP session through ifc-000's Interface, byte for byte. */
static void test_ptp_session(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04a9, 0x31c0, "1-1.5.2.3");
  expect_out(f, OPEN_SESSION);
  expect_in(f, OPEN_SESSION_OK);
  expect_out(f, GET_DEVICE_INFO);
  expect_in(f, device_info_hex);
  expect_in(f, GET_DEVICE_INFO_OK);
}

/* The data phase and the response as two items of one ReadStream, then cancelled. */
static void test_ptp_read_stream(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04a9, 0x31c0, "1-1.5.2.3");
  expect_out(f, OPEN_SESSION);
  expect_in(f, OPEN_SESSION_OK);
  expect_out(f, GET_DEVICE_INFO);
  dfnet_hw_usb_ReadStreamRequest req = {.endpoint = 0x81, .length = 512};
  uint8_t buf[64];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_usb_ReadStreamRequest_fields, &req));
  uint64_t id = hw_call_start_by(f->bench, &ifc0, DEVICE_NODE, INTERFACE "ReadStream", buf,
                                 os.bytes_written, 1);
  assert_true(id != 0);
  const char *want[2] = {device_info_hex, GET_DEVICE_INFO_OK};
  for (int i = 0; i < 2; i++) {
    hw_reply_t r;
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    if (r.end_of_stream)
      fail_msg("item %d: the stream ended: %s: %s", i, dfnet_status_str(r.code), r.message);
    dfnet_hw_usb_TransferReply *item = calloc(1, sizeof *item);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_usb_TransferReply_fields, item));
    static uint8_t bytes[4096];
    size_t n = usb_testbed_unhex(want[i], bytes, sizeof bytes);
    assert_int_equal(item->transferred, n);
    assert_int_equal(item->data.size, n);
    assert_memory_equal(item->data.bytes, bytes, n);
    free(item);
    hw_reply_free(&r);
    if (i == 0) {
      /* credit 1: the second item waits for more credit */
      assert_false(hw_next_reply(f->bench, id, 300, &r));
      hw_credit(f->bench, id, 1);
    }
  }
  hw_cancel(f->bench, id);
  hw_reply_t end;
  assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &end));
  assert_true(end.end_of_stream);
  assert_int_equal(end.code, DFNET_STATUS_CANCELLED);
  hw_reply_free(&end);
}

/* Only the child's driver may call: not a remote client (even one named like the child),
 * not the device's own node, not a child that does not exist, not a look-alike moniker. */
static void test_only_the_child(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04a9, 0x31c0, "1-1.5.2.3");
  const hw_caller_t others[] = {
      {.name = "op", .driver_url = ""},
      {.name = IFC0, .driver_url = ""}, /* a client whose certificate is named so */
      {.name = "", .driver_url = CLASS_URL},
      {.name = DEVICE_NODE, .driver_url = CLASS_URL},
      {.name = IFC1, .driver_url = CLASS_URL},
      {.name = IFC0 "0", .driver_url = CLASS_URL},
      {.name = DEVICE_NODE ".ifc-00", .driver_url = CLASS_URL},
      {.name = "dev.lab.usb.001_012.ifc-000", .driver_url = CLASS_URL},
      {.name = IFC0 ".usb-device", .driver_url = CLASS_URL},
  };
  dfnet_hw_usb_TransferRequest *t = transfer(0x02, OPEN_SESSION, 0);
  char msg[512];
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    dfnet_status_t st = call_by(f, &others[i], "BulkTransfer", dfnet_hw_usb_TransferRequest_fields,
                                t, NULL, NULL, msg, sizeof msg);
    if (st != DFNET_STATUS_PERMISSION_DENIED)
      fail_msg("caller \"%s\" (%s): %s: %s", others[i].name, others[i].driver_url,
               dfnet_status_str(st), msg);
    assert_non_null(strstr(msg, "serves the drivers of " DEVICE_NODE "'s interface children"));
  }
  dfnet_hw_usb_GetInterfaceRequest g = dfnet_hw_usb_GetInterfaceRequest_init_zero;
  assert_int_equal(call_by(f, &others[0], "GetInterface", dfnet_hw_usb_GetInterfaceRequest_fields,
                           &g, NULL, NULL, msg, sizeof msg),
                   DFNET_STATUS_PERMISSION_DENIED);
  /* and the child itself gets through (the recording answers) */
  expect_out(f, OPEN_SESSION);
  expect_in(f, OPEN_SESSION_OK);
  free(t);
}

/* ---- the keyboard: two interfaces, two children ---------------------------------------- */

static dfnet_status_t interrupt_in(fixture_t *f, const hw_caller_t *who, uint32_t endpoint,
                                   char *msg, size_t cap) {
  dfnet_hw_usb_TransferRequest *t = transfer(endpoint, NULL, 8);
  t->timeout_ms = 200;
  dfnet_status_t st = call_by(f, who, "InterruptTransfer", dfnet_hw_usb_TransferRequest_fields, t,
                              NULL, NULL, msg, cap);
  free(t);
  return st;
}

static dfnet_status_t control(fixture_t *f, const hw_caller_t *who, uint32_t type, uint32_t request,
                              uint32_t index, char *msg, size_t cap) {
  dfnet_hw_usb_ControlTransferRequest *c = calloc(1, sizeof *c);
  c->request_type = type;
  c->request = request;
  c->index = index;
  c->length = (type & 0x80) ? 8 : 0;
  c->timeout_ms = 200;
  dfnet_status_t st = call_by(f, who, "ControlTransfer", dfnet_hw_usb_ControlTransferRequest_fields,
                              c, NULL, NULL, msg, cap);
  free(c);
  return st;
}

static void test_keyboard_children(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04d9, 0x1603, "1-3");
  const dfnet_v1_NodeAdd *n0 = hw_child_node(f->bench, IFC0);
  const dfnet_v1_NodeAdd *n1 = hw_child_node(f->bench, IFC1);
  assert_non_null(n0);
  assert_non_null(n1);
  check_prop_uint(n0, DFNET_BIND_USB_CLASS, NULL, 3); /* HID, boot keyboard */
  check_prop_uint(n0, DFNET_BIND_USB_SUBCLASS, NULL, 1);
  check_prop_uint(n0, DFNET_BIND_USB_PROTOCOL, NULL, 1);
  check_prop_uint(n0, DFNET_BIND_USB_INTERFACE_NUMBER, NULL, 0);
  check_prop_str(n0, BIND_DFNET_USB_SYSFS_NAME, "1-3:1.0");
  check_prop_uint(n1, DFNET_BIND_USB_CLASS, NULL, 3);
  check_prop_uint(n1, DFNET_BIND_USB_SUBCLASS, NULL, 0);
  check_prop_uint(n1, DFNET_BIND_USB_PROTOCOL, NULL, 0);
  check_prop_uint(n1, DFNET_BIND_USB_INTERFACE_NUMBER, NULL, 1);
  check_prop_str(n1, BIND_DFNET_USB_SYSFS_NAME, "1-3:1.1");
  assert_string_equal(n1->offers[0], BIND_DFNET_HW_USB_INTERFACE);
}

/* A child's requests reach its own interface only. */
static void test_other_interfaces_refused(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04d9, 0x1603, "1-3");
  char msg[512];
  /* interface 1's endpoint, from interface 0's child, and the other way round */
  assert_int_equal(interrupt_in(f, &ifc0, 0x82, msg, sizeof msg), DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "endpoint 0x82 is not an endpoint of ifc-000's interfaces"));
  assert_int_equal(interrupt_in(f, &ifc1, 0x81, msg, sizeof msg), DFNET_STATUS_INVALID_ARGUMENT);
  /* an endpoint the device does not have */
  assert_int_equal(interrupt_in(f, &ifc0, 0x85, msg, sizeof msg), DFNET_STATUS_INVALID_ARGUMENT);
  /* its own interrupt endpoint as a bulk one */
  dfnet_hw_usb_TransferRequest *t = transfer(0x81, NULL, 8);
  assert_int_equal(call_by(f, &ifc0, "BulkTransfer", dfnet_hw_usb_TransferRequest_fields, t, NULL,
                           NULL, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "is an interrupt endpoint"));
  free(t);
  /* a class request to interface 1 (HID GET_REPORT), to interface 1's endpoint */
  assert_int_equal(control(f, &ifc0, 0xa1, 0x01, 1, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "not one of ifc-000's interfaces"));
  assert_int_equal(control(f, &ifc0, 0x02, 0x01, 0x82, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* the device's own standard requests: SET_CONFIGURATION, SET_INTERFACE */
  assert_int_equal(control(f, &ifc0, 0x00, 0x09, 0, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "addresses the device, not an interface"));
  assert_int_equal(control(f, &ifc0, 0x01, 0x0b, 0, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* streams: an OUT endpoint, another child's */
  dfnet_hw_usb_ReadStreamRequest rs = {.endpoint = 0x82, .length = 8};
  assert_int_equal(call_by(f, &ifc0, "ReadStream", dfnet_hw_usb_ReadStreamRequest_fields, &rs, NULL,
                           NULL, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  rs.endpoint = 0x01;
  assert_int_equal(call_by(f, &ifc0, "ReadStream", dfnet_hw_usb_ReadStreamRequest_fields, &rs, NULL,
                           NULL, msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* alternate settings of another interface, or that do not exist */
  dfnet_hw_usb_SetAlternateSettingRequest alt = {.interface_number = 1};
  assert_int_equal(call_by(f, &ifc0, "SetAlternateSetting",
                           dfnet_hw_usb_SetAlternateSettingRequest_fields, &alt, NULL, NULL, msg,
                           sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  alt = (dfnet_hw_usb_SetAlternateSettingRequest){.interface_number = 0, .alternate_setting = 1};
  assert_int_equal(call_by(f, &ifc0, "SetAlternateSetting",
                           dfnet_hw_usb_SetAlternateSettingRequest_fields, &alt, NULL, NULL, msg,
                           sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* an interface the configuration does not have */
  dfnet_hw_usb_ClaimRequest claim = {.interface_number = 5};
  assert_int_equal(call_by(f, &ifc0, "Claim", dfnet_hw_usb_ClaimRequest_fields, &claim, NULL, NULL,
                           msg, sizeof msg),
                   DFNET_STATUS_INVALID_ARGUMENT);
}

/* Claims: a child's own interface, then the other one beside it (Fuchsia's
 * ClaimInterface): the other child's node is removed and its calls refused; the Device
 * service keeps off held interfaces; Release hands them back to it. */
static void test_claims(void **state) {
  fixture_t *f = *state;
  start_usb_device(f, 0x04d9, 0x1603, "1-3");
  assert_non_null(hw_child_node(f->bench, IFC1));
  char msg[512];
  dfnet_hw_usb_InterfaceInfo *info = calloc(1, sizeof *info);
  dfnet_hw_usb_ClaimRequest claim = {.interface_number = 0, .detach_kernel_driver = true};
  dfnet_status_t st = call_by(f, &ifc0, "Claim", dfnet_hw_usb_ClaimRequest_fields, &claim,
                              dfnet_hw_usb_InterfaceInfo_fields, info, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("Claim 0: %s: %s", dfnet_status_str(st), msg);
  assert_true(info->claimed);
  assert_int_equal(info->endpoints_count, 1);
  /* the Device service keeps off interface 0 now */
  dfnet_hw_usb_TransferRequest *t = transfer(0x81, NULL, 8);
  t->timeout_ms = 200;
  uint8_t buf[64];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_usb_TransferRequest_fields, t));
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, DEVICE_NODE, "/dfnet.hw.usb.Device/InterruptTransfer", buf,
                           os.bytes_written, 0, &r),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r.message, "held by the driver of " IFC0));
  hw_reply_free(&r);
  /* interface 1 beside it: its child goes */
  claim.interface_number = 1;
  memset(info, 0, sizeof *info);
  st = call_by(f, &ifc0, "Claim", dfnet_hw_usb_ClaimRequest_fields, &claim,
               dfnet_hw_usb_InterfaceInfo_fields, info, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("Claim 1: %s: %s", dfnet_status_str(st), msg);
  assert_int_equal(info->claimed_interfaces_count, 1);
  assert_int_equal(info->claimed_interfaces[0], 1);
  assert_int_equal(info->endpoints_count, 2);
  assert_int_equal(info->endpoints[1].address, 0x82);
  assert_int_equal(info->endpoints[1].interface_number, 1);
  assert_int_equal(hw_child_removed(f->bench, IFC1), 1);
  assert_int_equal(interrupt_in(f, &ifc1, 0x82, msg, sizeof msg), DFNET_STATUS_PERMISSION_DENIED);
  /* SET_IDLE to interface 1 is ifc-000's to send now (whatever the recording answers) */
  assert_int_not_equal(control(f, &ifc0, 0x21, 0x0a, 1, msg, sizeof msg),
                       DFNET_STATUS_INVALID_ARGUMENT);
  /* claiming it twice is harmless; the other child cannot claim anything */
  assert_int_equal(call_by(f, &ifc0, "Claim", dfnet_hw_usb_ClaimRequest_fields, &claim, NULL, NULL,
                           msg, sizeof msg),
                   DFNET_STATUS_OK);
  /* Release: the Device service may use interface 0 again (the recording has no answer:
   * the transfer times out, it is not refused) */
  dfnet_hw_usb_ReleaseRequest rel = dfnet_hw_usb_ReleaseRequest_init_zero;
  assert_int_equal(call_by(f, &ifc0, "Release", dfnet_hw_usb_ReleaseRequest_fields, &rel, NULL,
                           NULL, msg, sizeof msg),
                   DFNET_STATUS_OK);
  st = hw_call(f->bench, DEVICE_NODE, "/dfnet.hw.usb.Device/InterruptTransfer", buf,
               os.bytes_written, 0, &r);
  assert_int_not_equal(st, DFNET_STATUS_FAILED_PRECONDITION);
  hw_reply_free(&r);
  free(t);
  free(info);
}

/* ---- a class driver bound to the child, in the same driver host ------------------------- */

static void read_trace(const char *path, char *out, size_t cap) {
  FILE *t = fopen(path, "r");
  assert_non_null(t);
  size_t got = fread(out, 1, cap - 1, t);
  out[got] = '\0';
  fclose(t);
}

/* Start usb-device on the camera and the usb_class test driver on ifc-000, offered the
 * Interface by the device's node, in the same driver host; trace[cap] is its trace file,
 * dir[cap] its package. */
static void start_class(fixture_t *f, char *trace, size_t tcap, char *dir, size_t dcap) {
  start_usb_device(f, 0x04a9, 0x31c0, "1-1.5.2.3");
  snprintf(trace, tcap, "/tmp/dfnet-usb-class-trace-%d", (int)getpid());
  char config[256], extra[256];
  snprintf(config, sizeof config, "\"ptp\": \"true\", \"trace\": \"%s\"", trace);
  /* the trace is handed to the driver: its sandboxed driver host opens nothing by path */
  snprintf(extra, sizeof extra, "{\"resources\": [{\"path\": \"%s\", \"access\": \"rw\"}]}", trace);
  FILE *empty = fopen(trace, "w");
  assert_non_null(empty);
  fclose(empty);
  assert_true(hw_test_package(dir, dcap, "usb-class", "usb_class.so", config));
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE),
      HW_PROP_INT(DFNET_BIND_USB_CLASS, 6),
      HW_PROP_STR(BIND_DFNET_HW_USB_INTERFACE, BIND_DFNET_HW_USB_INTERFACE_DRIVERTRANSPORT),
  };
  const hw_offer_t offer = {.service = BIND_DFNET_HW_USB_INTERFACE, .source = DEVICE_NODE};
  const hw_driver_t d = {.name = "usb-class",
                         .package_dir = dir,
                         .moniker = IFC0,
                         .props = props,
                         .prop_count = 3,
                         .offers = &offer,
                         .offer_count = 1,
                         .program_extra = extra};
  char msg[512];
  dfnet_status_t st = hw_start_driver(f->bench, &d, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("usb-class: %s: %s", dfnet_status_str(st), msg);
}

/* The class driver's PTP session runs through usb-device in the same driver host (each
 * call handed from one dispatcher to the other) and the dataset matches the recording byte
 * for byte. Stopped child first, as DFv2 removes nodes, it sees usb-device still serving. */
static void test_class_driver_ptp(void **state) {
  fixture_t *f = *state;
  char dir[64], trace[128], lines[512];
  start_class(f, trace, sizeof trace, dir, sizeof dir);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, IFC0, "/dfnet.test.UsbClass/DeviceInfo", NULL, 0, 0, &r);
  if (st != DFNET_STATUS_OK)
    fail_msg("DeviceInfo: %s: %s", dfnet_status_str(st), r.message);
  static uint8_t want[4096];
  size_t n = usb_testbed_unhex(device_info_hex, want, sizeof want);
  assert_int_equal(r.size, n);
  assert_memory_equal(r.data, want, n);
  hw_reply_free(&r);
  assert_int_equal(hw_stop(f->bench, IFC0), DFNET_STATUS_OK);
  assert_int_equal(hw_stop(f->bench, DEVICE_NODE), DFNET_STATUS_OK);
  read_trace(trace, lines, sizeof lines);
  assert_string_equal(lines, "start " IFC0 "\nprepare_stop " IFC0 " serving:OK\nstop " IFC0
                             " serving:OK\n");
  unlink(trace);
  hw_test_package_remove(dir);
}

/* The trace tells the orders apart: with the parent stopped first, the child sees its
 * offer's driver gone, and its calls end UNAVAILABLE. */
static void test_parent_stopped_first_is_seen(void **state) {
  fixture_t *f = *state;
  char dir[64], trace[128], lines[512];
  start_class(f, trace, sizeof trace, dir, sizeof dir);
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, IFC0, "/dfnet.test.UsbClass/DeviceInfo", NULL, 0, 0, &r),
                   DFNET_STATUS_OK);
  hw_reply_free(&r);
  assert_int_equal(hw_stop(f->bench, DEVICE_NODE), DFNET_STATUS_OK);
  assert_int_equal(hw_stop(f->bench, IFC0), DFNET_STATUS_OK);
  read_trace(trace, lines, sizeof lines);
  assert_string_equal(lines, "start " IFC0 "\nprepare_stop " IFC0 " serving:UNAVAILABLE\nstop " IFC0
                             " serving:UNAVAILABLE\n");
  unlink(trace);
  hw_test_package_remove(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_interface_child, setup_camera, teardown),
      cmocka_unit_test_setup_teardown(test_get_interface, setup_camera, teardown),
      cmocka_unit_test_setup_teardown(test_ptp_session, setup_camera, teardown),
      cmocka_unit_test_setup_teardown(test_ptp_read_stream, setup_camera, teardown),
      cmocka_unit_test_setup_teardown(test_only_the_child, setup_camera, teardown),
      cmocka_unit_test_setup_teardown(test_keyboard_children, setup_keyboard, teardown),
      cmocka_unit_test_setup_teardown(test_other_interfaces_refused, setup_keyboard, teardown),
      cmocka_unit_test_setup_teardown(test_claims, setup_keyboard, teardown),
      cmocka_unit_test_setup_teardown(test_class_driver_ptp, setup_camera, teardown),
      cmocka_unit_test_setup_teardown(test_parent_stopped_first_is_seen, setup_camera, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
