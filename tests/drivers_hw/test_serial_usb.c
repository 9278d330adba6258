/* serial's USB backend in a real dfnet-driver-host: the serial driver bound to the interface
 * child "<adapter>.ifc-000" and offered dfnet.hw.usb.Interface by the adapter's node, whose
 * driver here is usb_serial_sim (tests/drivers/), a dfnet.hw.usb.Interface server playing the
 * adapter as usb-device would serve it: there is no recording of a USB serial adapter to
 * replay (tests/fixtures/usb/ has a camera and a keyboard), so the adapters' protocols are
 * checked against the requests they must send (the values Linux's drivers send for the same
 * settings), and the bytes make the round trip through the simulated adapter's loopback.
 *
 * For each chip (FTDI FT232R, CDC-ACM, CP210x, CH340): the port opens (claims, the chip's
 * set-up, 115200 8N1, the read stream), a Write comes back through Read (FTDI's status bytes
 * stripped), Configure sends the chip's requests for 9600 7E2 with RTS/CTS where the chip
 * has it, and a setting the chip does not have is INVALID_ARGUMENT. A port whose interface
 * cannot be claimed fails its calls UNAVAILABLE with the reason. */
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

#include "bind/dfnet_hw_usb.h"
#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/serial.pb.h"
#include "harness.h"

#define ADAPTER "dev.lab.usb.001_005"
#define PORT ADAPTER ".ifc-000"
#define SERIAL "/dfnet.hw.serial.Serial/"

typedef struct chip_case {
  const char *chip;
  uint32_t vid, pid, cls, subclass;
  /* the log of the port's opening: claims, the chip's set-up, 115200 8N1, the stream */
  const char *opening;
  /* the requests of Configure 9600 7E2 (RTS/CTS when rts_cts) */
  bool rts_cts;
  const char *configure;
  /* a setting the chip does not have */
  dfnet_hw_serial_Config unsupported;
} chip_case_t;

static const chip_case_t cases[] = {
    {
        .chip = "ftdi",
        .vid = 0x0403,
        .pid = 0x6001,
        .cls = 0xff,
        .subclass = 0xff,
        /* RESET, MODEM_CTRL DTR|RTS, BAUD 115200 (3 MHz / 26), DATA 8N1, FLOW none */
        .opening = "claim 0 detach\n"
                   "ctrl 40 00 0000 0000 \n"
                   "ctrl 40 01 0303 0000 \n"
                   "ctrl 40 03 001a 0000 \n"
                   "ctrl 40 04 0008 0000 \n"
                   "ctrl 40 02 0000 0000 \n"
                   "stream 0x81 4096\n",
        .rts_cts = true,
        /* 9600: 3 MHz / 312.5 = 0x4138 (FTDI AN232B-05); 7 bits, even (2 << 8), 2 stop
         * bits (2 << 11); RTS/CTS (1 << 8 in wIndex) */
        .configure = "ctrl 40 03 4138 0000 \n"
                     "ctrl 40 04 1207 0000 \n"
                     "ctrl 40 02 0000 0100 \n",
        .unsupported = {.data_bits = 5},
    },
    {
        .chip = "cdc-acm",
        .vid = 0x2e8a,
        .pid = 0x000a,
        .cls = 0x02,
        .subclass = 0x02,
        /* the data interface (Union: 0 -> 1) beside the communication one; DTR|RTS;
         * SET_LINE_CODING 115200 (0x0001c200), 1 stop bit, no parity, 8 bits */
        .opening = "claim 0 detach\n"
                   "claim 1 detach\n"
                   "ctrl 21 22 0003 0000 \n"
                   "ctrl 21 20 0000 0000 00c20100000008\n"
                   "stream 0x81 4096\n",
        .rts_cts = false,
        .configure = "ctrl 21 20 0000 0000 80250000020207\n",
        .unsupported = {.flow_control = dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS},
    },
    {
        .chip = "cp210x",
        .vid = 0x10c4,
        .pid = 0xea60,
        .cls = 0xff,
        .subclass = 0x00,
        /* IFC_ENABLE, SET_MHS DTR|RTS, SET_BAUDRATE 115200, SET_LINE_CTL 8N1, SET_FLOW:
         * DTR on, RTS on, no handshake */
        .opening = "claim 0 detach\n"
                   "ctrl 41 00 0001 0000 \n"
                   "ctrl 41 07 0303 0000 \n"
                   "ctrl 41 1e 0000 0000 00c20100\n"
                   "ctrl 41 03 0800 0000 \n"
                   "ctrl 41 13 0000 0000 01000000400000000000000000000000\n"
                   "stream 0x81 4096\n",
        .rts_cts = true,
        /* 9600; 2 stop bits, even parity (2 << 4), 7 bits (7 << 8); CTS handshake, RTS flow */
        .configure = "ctrl 41 1e 0000 0000 80250000\n"
                     "ctrl 41 03 0722 0000 \n"
                     "ctrl 41 13 0000 0000 09000000800000000000000000000000\n",
        .unsupported = {.flow_control = dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF},
    },
    {
        .chip = "ch340",
        .vid = 0x1a86,
        .pid = 0x7523,
        .cls = 0xff,
        .subclass = 0x01,
        /* SERIAL_INIT, MODEM_CTRL DTR|RTS (active low), prescaler/divisor 115200 (0xcc03, as
         * Linux's ch341, | 0x80), LCR RX|TX|CS8, no RTS/CTS */
        .opening = "claim 0 detach\n"
                   "ctrl 40 a1 0000 0000 \n"
                   "ctrl 40 a4 ff9f 0000 \n"
                   "ctrl 40 9a 1312 cc83 \n"
                   "ctrl 40 9a 2518 00c3 \n"
                   "ctrl 40 9a 2727 0000 \n"
                   "stream 0x82 4096\n",
        .rts_cts = true,
        /* 9600: 0xb202 (Linux's ch341); LCR RX|TX|PAR|EVEN|STOP2|CS7; RTS/CTS */
        .configure = "ctrl 40 9a 1312 b282 \n"
                     "ctrl 40 9a 2518 00de \n"
                     "ctrl 40 9a 2727 0101 \n",
        .unsupported = {.baud_rate = 4000000},
    },
};

typedef struct fixture {
  hw_bench_t *bench;
  char sim_dir[64];
} fixture_t;

static size_t encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *buf, size_t cap) {
  pb_ostream_t out = pb_ostream_from_buffer(buf, cap);
  assert_true(pb_encode(&out, fields, msg));
  return out.bytes_written;
}

/* The simulated adapter on ADAPTER and serial on its interface child, offered the Interface
 * by the adapter's node. */
static void start_port(fixture_t *f, const chip_case_t *c, const char *config_extra) {
  f->bench = hw_bench_new();
  assert_non_null(f->bench);
  char config[128];
  snprintf(config, sizeof config, "\"chip\": \"%s\"%s", c->chip, config_extra);
  assert_true(hw_test_package(f->sim_dir, sizeof f->sim_dir, "usb-serial-sim", "usb_serial_sim.so",
                              config));
  const hw_driver_t sim = {.name = "usb-serial-sim", .package_dir = f->sim_dir, .moniker = ADAPTER};
  char msg[512];
  dfnet_status_t st = hw_start_driver(f->bench, &sim, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("usb-serial-sim: %s: %s", dfnet_status_str(st), msg);
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE),
      HW_PROP_INT(DFNET_BIND_USB_VID, c->vid),
      HW_PROP_INT(DFNET_BIND_USB_PID, c->pid),
      HW_PROP_INT(DFNET_BIND_USB_CLASS, c->cls),
      HW_PROP_INT(DFNET_BIND_USB_SUBCLASS, c->subclass),
      HW_PROP_INT(DFNET_BIND_USB_INTERFACE_NUMBER, 0),
      HW_PROP_STR(BIND_DFNET_HW_USB_INTERFACE, BIND_DFNET_HW_USB_INTERFACE_DRIVERTRANSPORT),
  };
  const hw_offer_t offer = {.service = BIND_DFNET_HW_USB_INTERFACE, .source = ADAPTER};
  const hw_driver_t serial = {.name = "serial",
                              .moniker = PORT,
                              .props = props,
                              .prop_count = sizeof props / sizeof props[0],
                              .offers = &offer,
                              .offer_count = 1};
  st = hw_start_driver(f->bench, &serial, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("serial: %s: %s", dfnet_status_str(st), msg);
}

static void stop_port(fixture_t *f) {
  hw_bench_free(f->bench);
  hw_test_package_remove(f->sim_dir);
}

/* Serial.Configure: the status, the settings in effect into *got when OK. */
static dfnet_status_t configure(fixture_t *f, const dfnet_hw_serial_Config *want,
                                dfnet_hw_serial_Config *got, char *msg, size_t cap) {
  uint8_t buf[64];
  size_t n = encode(dfnet_hw_serial_Config_fields, want, buf, sizeof buf);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, PORT, SERIAL "Configure", buf, n, 5000, &r);
  if (st == DFNET_STATUS_OK) {
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_serial_Config_fields, got));
  }
  snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  return st;
}

/* The simulated adapter's log. */
static char *sim_log(fixture_t *f) {
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, ADAPTER, "/dfnet.test.UsbSim/Log", NULL, 0, 5000, &r),
                   DFNET_STATUS_OK);
  char *text = calloc(1, r.size + 1);
  memcpy(text, r.data, r.size);
  hw_reply_free(&r);
  return text;
}

static dfnet_status_t serial_write(fixture_t *f, const char *text, char *msg, size_t cap) {
  dfnet_hw_serial_WriteRequest *req = calloc(1, sizeof *req);
  req->data.size = (pb_size_t)strlen(text);
  memcpy(req->data.bytes, text, req->data.size);
  uint8_t *buf = malloc(8192);
  size_t n = encode(dfnet_hw_serial_WriteRequest_fields, req, buf, 8192);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, PORT, SERIAL "Write", buf, n, 5000, &r);
  if (st == DFNET_STATUS_OK) {
    dfnet_hw_serial_WriteReply reply;
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_serial_WriteReply_fields, &reply));
    assert_int_equal(reply.written, strlen(text));
  }
  snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  free(buf);
  free(req);
  return st;
}

/* Read until `want` bytes came (each Read waits up to a second for the first byte). */
static void expect_read(fixture_t *f, const char *want) {
  char got[4096] = "";
  size_t have = 0, n = strlen(want);
  for (int tries = 0; tries < 10 && have < n; tries++) {
    dfnet_hw_serial_ReadRequest req = {.max_bytes = 4096, .timeout_ms = 1000};
    uint8_t buf[32];
    size_t len = encode(dfnet_hw_serial_ReadRequest_fields, &req, buf, sizeof buf);
    hw_reply_t r;
    assert_int_equal(hw_call(f->bench, PORT, SERIAL "Read", buf, len, 5000, &r), DFNET_STATUS_OK);
    dfnet_hw_serial_ReadReply *reply = calloc(1, sizeof *reply);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_serial_ReadReply_fields, reply));
    assert_true(have + reply->data.size < sizeof got);
    memcpy(got + have, reply->data.bytes, reply->data.size);
    have += reply->data.size;
    free(reply);
    hw_reply_free(&r);
  }
  got[have] = '\0';
  assert_string_equal(got, want);
}

static void run_case(const chip_case_t *c) {
  fixture_t f = {0};
  print_message("chip %s\n", c->chip);
  start_port(&f, c, "");
  /* the first Configure waits for the port to open; then the log holds the opening */
  dfnet_hw_serial_Config want = {.baud_rate = 9600,
                                 .data_bits = 7,
                                 .parity = dfnet_hw_serial_Parity_PARITY_EVEN,
                                 .stop_bits = 2,
                                 .flow_control =
                                     c->rts_cts ? dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS
                                                : dfnet_hw_serial_FlowControl_FLOW_CONTROL_NONE};
  dfnet_hw_serial_Config got = dfnet_hw_serial_Config_init_zero;
  char msg[512];
  dfnet_status_t st = configure(&f, &want, &got, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("%s: Configure: %s: %s", c->chip, dfnet_status_str(st), msg);
  assert_int_equal(got.baud_rate, 9600);
  assert_int_equal(got.data_bits, 7);
  assert_int_equal(got.parity, dfnet_hw_serial_Parity_PARITY_EVEN);
  assert_int_equal(got.stop_bits, 2);
  char *log = sim_log(&f);
  char expected[2048];
  snprintf(expected, sizeof expected, "%s%s", c->opening, c->configure);
  assert_string_equal(log, expected);
  free(log);
  /* a setting the chip does not have: refused, nothing sent */
  st = configure(&f, &c->unsupported, &got, msg, sizeof msg);
  assert_int_equal(st, DFNET_STATUS_INVALID_ARGUMENT);
  /* bytes out and back through the adapter's loopback; longer than an FTDI packet */
  const char *text = "hello over USB: 0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
  st = serial_write(&f, text, msg, sizeof msg);
  if (st != DFNET_STATUS_OK)
    fail_msg("%s: Write: %s: %s", c->chip, dfnet_status_str(st), msg);
  expect_read(&f, text);
  stop_port(&f);
}

static void test_chips(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_case(&cases[i]);
}

/* An interface that cannot be claimed (a kernel driver holds it): the port fails, and the
 * calls say why. */
static void test_claim_refused(void **state) {
  (void)state;
  fixture_t f = {0};
  start_port(&f, &cases[0], ", \"fail_claim\": \"true\"");
  char msg[512];
  assert_int_equal(serial_write(&f, "x", msg, sizeof msg), DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(msg, "claiming the interface: FAILED_PRECONDITION"));
  assert_non_null(strstr(msg, "held by kernel driver ftdi_sio"));
  dfnet_hw_serial_ReadRequest req = {.timeout_ms = 100};
  uint8_t buf[32];
  size_t len = encode(dfnet_hw_serial_ReadRequest_fields, &req, buf, sizeof buf);
  hw_reply_t r;
  assert_int_equal(hw_call(f.bench, PORT, SERIAL "Read", buf, len, 5000, &r),
                   DFNET_STATUS_UNAVAILABLE);
  hw_reply_free(&r);
  stop_port(&f);
}

/* Without the offer (a node that is not usb-device's child) serial does not start. */
static void test_no_offer(void **state) {
  (void)state;
  hw_bench_t *b = hw_bench_new();
  assert_non_null(b);
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE),
      HW_PROP_INT(DFNET_BIND_USB_VID, 0x0403),
      HW_PROP_INT(DFNET_BIND_USB_PID, 0x6001),
  };
  assert_int_equal(hw_start(b, "serial", PORT, props, 3, NULL, NULL, 0),
                   DFNET_STATUS_FAILED_PRECONDITION);
  char *log = hw_bench_log(b);
  assert_non_null(strstr(log, "cannot connect to the dfnet.hw.usb.Interface offered to the node"));
  free(log);
  hw_bench_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chips),
      cmocka_unit_test(test_claim_refused),
      cmocka_unit_test(test_no_offer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
