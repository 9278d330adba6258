/* board (drivers/board) in a real dfnet-driver-host, with its two parents beside it in the
 * same driver host, as colocated drivers: power on a Tasmota plug emulated on loopback
 * (plug_sim.c) and serial on a pseudo-terminal pair whose master plays the board's
 * console. The plug's relay turning on "boots" the board: the test writes a U-Boot-like
 * banner ending in "login: " to the master. The board's node gets its offers from the
 * bench as a composite's: Power under "power" (and "default", the primary's), Serial
 * under "console".
 *
 *   test_cycle_matches   CycleAndWait "login:" streams the banner, ends OK with matched;
 *                        the plug saw Off, then On.
 *   test_cycle_timeout   a pattern that never comes: DEADLINE_EXCEEDED after an item
 *                        holding the console's last 4 KiB; a board that prints nothing:
 *                        the same, with an empty tail.
 *   test_cycle_busy      a second CycleAndWait while one runs: FAILED_PRECONDITION; once
 *                        the first is cancelled another one runs.
 *   test_power_state     Power{ON} reaches the plug; State gives the power state and the
 *                        console's last line, and answers OK when the plug fails.
 *   test_invalid         an empty pattern, a timeout over the bound: INVALID_ARGUMENT.
 */
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "bind/fuchsia_platform.h"
#include "bind/fuchsia_serial.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/power.pb.h"
#include "dfnet/lab/board.pb.h"
#include "harness.h"
#include "plug_sim.h"

#define POWER_NODE "dev.lab-a.platform.dut-power"
#define SERIAL_NODE "dev.lab-a.platform.uart0"
#define BOARD_NODE "dev.lab-a.platform.dut-power.outlet.dut"
#define BOARD "/dfnet.lab.Board/"
#define FAST "{\"config\": {\"request_timeout_ms\": \"400\"}}"
#define OFF_MS 100

typedef struct fixture {
  hw_bench_t *bench;
  plug_sim_t *plug;
  int master, slave;
  char slave_path[128];
  atomic_bool boots; /* the relay turning on prints the banner */
  char banner[8192];
} fixture_t;

/* The plug's relay changed: a board powered on prints its banner. */
static void on_change(void *arg, unsigned relay, bool on) {
  fixture_t *f = arg;
  (void)relay;
  if (on && atomic_load(&f->boots)) {
    size_t n = strlen(f->banner);
    if (write(f->master, f->banner, n) != (ssize_t)n)
      fprintf(stderr, "test_board: the banner was not written whole\n");
  }
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL || openpty(&f->master, &f->slave, f->slave_path, NULL, NULL) != 0)
    return -1;
  struct termios t;
  tcgetattr(f->slave, &t);
  cfmakeraw(&t);
  tcsetattr(f->slave, TCSANOW, &t);
  /* over 4 KiB, so that it takes several items and the tail is cut */
  size_t n = (size_t)snprintf(f->banner, sizeof f->banner, "U-Boot 2024.01 (emulated)\r\n");
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(f->banner + n, sizeof f->banner - n,
                          "DRAM:  bank %03d tested ok .......................\r\n", i);
  snprintf(f->banner + n, sizeof f->banner - n, "Starting kernel ...\r\n\r\nbuildroot login: ");
  f->plug = plug_sim_start(on_change, f);
  f->bench = hw_bench_new();
  if (f->plug == NULL || f->bench == NULL)
    return -1;
  *state = f;

  char address[64], msg[512];
  snprintf(address, sizeof address, "http://127.0.0.1:%u", plug_sim_port(f->plug));
  hw_prop_t power_props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
      HW_PROP_STR("dfnet.platform.NAME", "dut-power"),
      HW_PROP_STR("dfnet.platform.POWER_BACKEND", "tasmota"),
      HW_PROP_STR("dfnet.platform.POWER_ADDRESS", address),
  };
  const hw_driver_t power = {.name = "power",
                             .moniker = POWER_NODE,
                             .props = power_props,
                             .prop_count = 4,
                             .program_extra = FAST};
  dfnet_status_t st = hw_start_driver(f->bench, &power, msg, sizeof msg);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "power: %s: %s\n", dfnet_status_str(st), msg);
    return -1;
  }
  hw_prop_t serial_props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_SERIAL_CLASS, BIND_FUCHSIA_SERIAL_BIND_SERIAL_CLASS_CONSOLE),
      HW_PROP_STR("dfnet.platform.NAME", "uart0"),
      HW_PROP_STR("dfnet.platform.TTY", f->slave_path),
  };
  const hw_driver_t serial = {
      .name = "serial", .moniker = SERIAL_NODE, .props = serial_props, .prop_count = 4};
  st = hw_start_driver(f->bench, &serial, msg, sizeof msg);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "serial: %s: %s\n", dfnet_status_str(st), msg);
    return -1;
  }
  hw_prop_t board_props[] = {
      HW_PROP_STR("dfnet.lab.ROLE", "power"),
  };
  const hw_offer_t offers[] = {
      {.service = "dfnet.hw.power.Power", .instance = "power", .source = POWER_NODE},
      {.service = "dfnet.hw.power.Power", .instance = "default", .source = POWER_NODE},
      {.service = "dfnet.hw.serial.Serial", .instance = "console", .source = SERIAL_NODE},
  };
  const hw_driver_t board = {.name = "board",
                             .moniker = BOARD_NODE,
                             .props = board_props,
                             .prop_count = 1,
                             .offers = offers,
                             .offer_count = 3};
  st = hw_start_driver(f->bench, &board, msg, sizeof msg);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "board: %s: %s\n", dfnet_status_str(st), msg);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  hw_bench_free(f->bench);
  plug_sim_stop(f->plug);
  close(f->master);
  close(f->slave);
  free(f);
  return 0;
}

static size_t encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *buf, size_t cap) {
  pb_ostream_t os = pb_ostream_from_buffer(buf, cap);
  assert_true(pb_encode(&os, fields, msg));
  return os.bytes_written;
}

static uint64_t cycle_start(fixture_t *f, const char *pattern, uint32_t timeout_ms) {
  dfnet_lab_CycleAndWaitRequest req = {.timeout_ms = timeout_ms, .off_ms = OFF_MS};
  snprintf(req.pattern, sizeof req.pattern, "%s", pattern);
  uint8_t buf[256];
  size_t n = encode(dfnet_lab_CycleAndWaitRequest_fields, &req, buf, sizeof buf);
  uint64_t id = hw_call_start(f->bench, BOARD_NODE, BOARD "CycleAndWait", buf, n, 16);
  assert_true(id != 0);
  return id;
}

/* A CycleAndWait's items and end. */
typedef struct cycle_result {
  dfnet_status_t status;
  char message[512];
  char console[32768]; /* every item's console bytes, joined */
  size_t len;
  size_t items;
  bool last_matched;    /* the last item said matched */
  bool last_tail;       /* the last item was marked tail */
  int tails;            /* items marked tail */
  bool any_matched;     /* an item said matched */
  char last_item[8192]; /* the last item's console */
  size_t last_item_len;
} cycle_result_t;

static void cycle_collect(fixture_t *f, uint64_t id, cycle_result_t *out) {
  memset(out, 0, sizeof *out);
  for (;;) {
    hw_reply_t r;
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    if (r.end_of_stream) {
      out->status = r.code;
      snprintf(out->message, sizeof out->message, "%s", r.message);
      hw_reply_free(&r);
      return;
    }
    dfnet_lab_CycleProgress *p = calloc(1, sizeof *p);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_lab_CycleProgress_fields, p));
    assert_true(out->len + p->console.size < sizeof out->console);
    memcpy(out->console + out->len, p->console.bytes, p->console.size);
    out->len += p->console.size;
    memcpy(out->last_item, p->console.bytes, p->console.size);
    out->last_item_len = p->console.size;
    out->last_matched = p->matched;
    out->last_tail = p->tail;
    out->tails += p->tail;
    out->any_matched |= p->matched;
    out->items++;
    free(p);
    hw_reply_free(&r);
    hw_credit(f->bench, id, 1);
  }
}

static void test_cycle_matches(void **state) {
  fixture_t *f = *state;
  atomic_store(&f->boots, true);
  free(plug_sim_take_log(f->plug));
  cycle_result_t *res = calloc(1, sizeof *res);
  cycle_collect(f, cycle_start(f, "login:", 10000), res);
  if (res->status != DFNET_STATUS_OK)
    fail_msg("CycleAndWait: %s: %s", dfnet_status_str(res->status), res->message);
  assert_true(res->last_matched);
  assert_int_equal(res->tails, 0);
  assert_true(res->items >= 2); /* the banner is over 4 KiB */
  /* every byte of the banner up to the pattern, in order */
  const char *end = strstr(f->banner, "login:") + strlen("login:");
  size_t want = (size_t)(end - f->banner);
  assert_true(res->len >= want);
  assert_memory_equal(res->console, f->banner, want);
  /* the plug was switched off, then on */
  char *log = plug_sim_take_log(f->plug);
  const char *off = strstr(log, "Power1%20Off"), *on = strstr(log, "Power1%20On");
  if (off == NULL || on == NULL || off > on)
    fail_msg("the plug got:\n%s", log);
  free(log);
  assert_true(plug_sim_relay(f->plug, 1));
  free(res);
}

static void test_cycle_timeout(void **state) {
  fixture_t *f = *state;
  cycle_result_t *res = calloc(1, sizeof *res);
  /* the board boots but never prints the pattern: the tail is the last 4 KiB */
  atomic_store(&f->boots, true);
  cycle_collect(f, cycle_start(f, "never printed", 700), res);
  assert_int_equal(res->status, DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_string_equal(res->message, "pattern \"never printed\" not seen within 700 ms");
  assert_false(res->any_matched);
  size_t blen = strlen(f->banner);
  assert_int_equal(res->last_item_len, 4096);
  assert_memory_equal(res->last_item, f->banner + blen - 4096, 4096);
  assert_true(res->last_tail); /* marked: a caller that streamed it all may skip it */
  assert_int_equal(res->tails, 1);

  /* a board that prints nothing: the tail item is there, empty */
  atomic_store(&f->boots, false);
  cycle_collect(f, cycle_start(f, "login:", 500), res);
  assert_int_equal(res->status, DFNET_STATUS_DEADLINE_EXCEEDED);
  assert_string_equal(res->message, "pattern \"login:\" not seen within 500 ms");
  assert_int_equal(res->items, 1);
  assert_int_equal(res->last_item_len, 0);
  assert_false(res->any_matched);
  free(res);
}

static void test_cycle_busy(void **state) {
  fixture_t *f = *state;
  atomic_store(&f->boots, false);
  uint64_t first = cycle_start(f, "login:", 20000);
  uint64_t second = cycle_start(f, "login:", 1000);
  cycle_result_t *res = calloc(1, sizeof *res);
  cycle_collect(f, second, res);
  assert_int_equal(res->status, DFNET_STATUS_FAILED_PRECONDITION);
  assert_string_equal(res->message, "a cycle is already running");
  assert_int_equal(res->items, 0);
  /* the first one still runs; cancelled, it frees the board for another */
  hw_cancel(f->bench, first);
  cycle_collect(f, first, res);
  assert_int_equal(res->status, DFNET_STATUS_CANCELLED);
  usleep(300 * 1000); /* the previous Power.Cycle finishes (off 100 ms) */
  atomic_store(&f->boots, true);
  cycle_collect(f, cycle_start(f, "login:", 10000), res);
  if (res->status != DFNET_STATUS_OK)
    fail_msg("CycleAndWait after a cancel: %s: %s", dfnet_status_str(res->status), res->message);
  assert_true(res->last_matched);
  free(res);
}

static dfnet_status_t board_state(fixture_t *f, dfnet_lab_BoardState *out) {
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, BOARD_NODE, BOARD "State", NULL, 0, 5000, &r);
  memset(out, 0, sizeof *out);
  if (st == DFNET_STATUS_OK) {
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_lab_BoardState_fields, out));
  }
  hw_reply_free(&r);
  return st;
}

static void test_power_state(void **state) {
  fixture_t *f = *state;
  /* Power{ON} is forwarded: the plug's relay is on and the PowerState says so */
  dfnet_lab_PowerRequest req = {.action = dfnet_lab_PowerRequest_Action_ON};
  uint8_t buf[16];
  size_t n = encode(dfnet_lab_PowerRequest_fields, &req, buf, sizeof buf);
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, BOARD_NODE, BOARD "Power", buf, n, 5000, &r), DFNET_STATUS_OK);
  dfnet_hw_power_PowerState ps = dfnet_hw_power_PowerState_init_zero;
  pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
  assert_true(pb_decode(&is, dfnet_hw_power_PowerState_fields, &ps));
  hw_reply_free(&r);
  assert_int_equal(ps.state, dfnet_hw_power_State_ON);
  assert_string_equal(ps.backend, "tasmota");
  assert_true(plug_sim_relay(f->plug, 1));

  /* State: the power and the console's last non-empty line */
  const char *text = "U-Boot 2024.01\r\nHit any key to stop autoboot\r\n=> version\r\n\r\n";
  assert_int_equal(write(f->master, text, strlen(text)), (ssize_t)strlen(text));
  dfnet_lab_BoardState s;
  for (int i = 0; i < 200; i++) {
    assert_int_equal(board_state(f, &s), DFNET_STATUS_OK);
    if (strcmp(s.last_line, "=> version") == 0)
      break;
    usleep(10 * 1000);
  }
  assert_string_equal(s.last_line, "=> version");
  assert_int_equal(s.power, dfnet_hw_power_State_ON);
  assert_string_equal(s.power_error, "");
  assert_string_equal(s.console_error, "");

  /* Power{OFF} then State: OFF */
  req.action = dfnet_lab_PowerRequest_Action_OFF;
  n = encode(dfnet_lab_PowerRequest_fields, &req, buf, sizeof buf);
  assert_int_equal(hw_call(f->bench, BOARD_NODE, BOARD "Power", buf, n, 5000, &r), DFNET_STATUS_OK);
  hw_reply_free(&r);
  assert_int_equal(board_state(f, &s), DFNET_STATUS_OK);
  assert_int_equal(s.power, dfnet_hw_power_State_OFF);

  /* a plug that fails: Power ends with the parent's status, State still answers */
  plug_sim_set_mode(f->plug, PLUG_ERROR_500);
  req.action = dfnet_lab_PowerRequest_Action_ON;
  n = encode(dfnet_lab_PowerRequest_fields, &req, buf, sizeof buf);
  assert_int_equal(hw_call(f->bench, BOARD_NODE, BOARD "Power", buf, n, 5000, &r),
                   DFNET_STATUS_UNAVAILABLE);
  assert_true(strncmp(r.message, "power: ", 7) == 0);
  hw_reply_free(&r);
  assert_int_equal(board_state(f, &s), DFNET_STATUS_OK);
  assert_int_equal(s.power, dfnet_hw_power_State_STATE_UNKNOWN);
  assert_true(strncmp(s.power_error, "UNAVAILABLE: ", 13) == 0);
  assert_string_equal(s.last_line, "=> version");
  assert_string_equal(s.console_error, "");
}

static void test_invalid(void **state) {
  fixture_t *f = *state;
  cycle_result_t *res = calloc(1, sizeof *res);
  cycle_collect(f, cycle_start(f, "", 1000), res);
  assert_int_equal(res->status, DFNET_STATUS_INVALID_ARGUMENT);
  cycle_collect(f, cycle_start(f, "login:", 3600001), res);
  assert_int_equal(res->status, DFNET_STATUS_INVALID_ARGUMENT);
  /* 129 bytes do not fit the bound (encoded by hand: nanopb would not encode it) */
  uint8_t buf[256];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  uint8_t longp[129];
  memset(longp, 'x', sizeof longp);
  assert_true(pb_encode_tag(&os, PB_WT_STRING, dfnet_lab_CycleAndWaitRequest_pattern_tag));
  assert_true(pb_encode_string(&os, longp, sizeof longp));
  uint64_t id =
      hw_call_start(f->bench, BOARD_NODE, BOARD "CycleAndWait", buf, os.bytes_written, 16);
  assert_true(id != 0);
  cycle_collect(f, id, res);
  assert_int_equal(res->status, DFNET_STATUS_INVALID_ARGUMENT);
  /* an unknown Power action */
  uint8_t pbuf[] = {0x08, 0x09}; /* action = 9 */
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, BOARD_NODE, BOARD "Power", pbuf, sizeof pbuf, 5000, &r),
                   DFNET_STATUS_INVALID_ARGUMENT);
  hw_reply_free(&r);
  free(res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cycle_matches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cycle_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cycle_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_power_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
