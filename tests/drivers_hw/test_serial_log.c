/* serial's history and writer seat in a real dfnet-driver-host, a pseudo-terminal pair as
 * the port (the test plays the board on the master): Log replays what arrived since the
 * driver started — all of it, the last lines, from a time, from an offset — and follows;
 * a small ring drops the oldest bytes and says how many; Attach holds the writer seat:
 * another caller's Write and a second Attach end FAILED_PRECONDITION naming the holder,
 * until the holder's stream ends. */
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "bind/fuchsia_platform.h"
#include "bind/fuchsia_serial.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/serial.pb.h"
#include "harness.h"

#define MONIKER "dev.lab.platform.uart0"
#define SERIAL "/dfnet.hw.serial.Serial/"

typedef struct fixture {
  int master, slave;
  char slave_path[128];
  hw_bench_t *bench;
} fixture_t;

static dfnet_status_t start_port(fixture_t *f, const char *program_extra) {
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_SERIAL_CLASS, BIND_FUCHSIA_SERIAL_BIND_SERIAL_CLASS_CONSOLE),
      HW_PROP_STR("dfnet.platform.NAME", "uart0"),
      HW_PROP_STR("dfnet.platform.TTY", f->slave_path),
  };
  return hw_start(f->bench, "serial", MONIKER, props, 4, program_extra, NULL, 0);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (openpty(&f->master, &f->slave, f->slave_path, NULL, NULL) != 0)
    return -1;
  struct termios t;
  tcgetattr(f->slave, &t);
  cfmakeraw(&t);
  tcsetattr(f->slave, TCSANOW, &t);
  f->bench = hw_bench_new();
  *state = f;
  return f->bench != NULL ? 0 : -1;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  hw_bench_free(f->bench);
  close(f->master);
  close(f->slave);
  free(f);
  return 0;
}

static uint64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The board prints text (on the pty's master side). */
static void board_prints(fixture_t *f, const char *text) {
  assert_int_equal(write(f->master, text, strlen(text)), (ssize_t)strlen(text));
}

/* A whole Log (without follow): its items' data joined into out (cap bytes), the dropped
 * bytes summed into *dropped, the first item's offset into *first. Returns the status. */
static dfnet_status_t log_all(fixture_t *f, const dfnet_hw_serial_LogRequest *req, char *out,
                              size_t cap, uint64_t *dropped, uint64_t *first) {
  uint8_t buf[64];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_serial_LogRequest_fields, req));
  uint64_t id = hw_call_start(f->bench, MONIKER, SERIAL "Log", buf, os.bytes_written, 64);
  assert_true(id != 0);
  size_t len = 0;
  *dropped = 0;
  bool any = false;
  for (;;) {
    hw_reply_t r;
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    if (r.end_of_stream) {
      dfnet_status_t st = r.code;
      hw_reply_free(&r);
      out[len] = '\0';
      return st;
    }
    dfnet_hw_serial_LogData *d = calloc(1, sizeof *d);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_serial_LogData_fields, d));
    if (!any && first != NULL)
      *first = d->offset;
    any = true;
    *dropped += d->dropped;
    assert_true(len + d->data.size < cap);
    memcpy(out + len, d->data.bytes, d->data.size);
    len += d->data.size;
    free(d);
    hw_reply_free(&r);
  }
}

/* Wait until the port's output reached `want` bytes (a Log from offset 0, repeated: what
 * the ring no longer holds counts as dropped). */
static void wait_history(fixture_t *f, size_t want) {
  static char out[1 << 16];
  uint64_t dropped, first;
  dfnet_hw_serial_LogRequest all = {.which_from = dfnet_hw_serial_LogRequest_offset_tag};
  for (int i = 0; i < 200; i++) {
    assert_int_equal(log_all(f, &all, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
    if (strlen(out) + dropped >= want)
      return;
    usleep(10 * 1000);
  }
  fail_msg("the history never held %zu bytes", want);
}

static void test_replay(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start_port(f, NULL), DFNET_STATUS_OK);
  board_prints(f, "U-Boot 2024.01\nDRAM: 4 GiB\n");
  wait_history(f, 27);
  usleep(250 * 1000); /* a later mark */
  uint64_t between = unix_ms();
  usleep(50 * 1000);
  board_prints(f, "Starting kernel ...\nlogin: ");
  wait_history(f, 27 + 27);

  char out[8192];
  uint64_t dropped = 0, first = 0;
  dfnet_hw_serial_LogRequest req = dfnet_hw_serial_LogRequest_init_zero;
  assert_int_equal(log_all(f, &req, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
  assert_string_equal(out, "U-Boot 2024.01\nDRAM: 4 GiB\nStarting kernel ...\nlogin: ");
  assert_int_equal(first, 0);
  assert_int_equal(dropped, 0);

  req.which_from = dfnet_hw_serial_LogRequest_last_lines_tag;
  req.from.last_lines = 2; /* the line being written counts */
  assert_int_equal(log_all(f, &req, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
  assert_string_equal(out, "Starting kernel ...\nlogin: ");
  assert_int_equal(first, 27);

  req.which_from = dfnet_hw_serial_LogRequest_since_unix_ms_tag;
  req.from.since_unix_ms = between;
  assert_int_equal(log_all(f, &req, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
  assert_string_equal(out, "Starting kernel ...\nlogin: ");

  req.which_from = dfnet_hw_serial_LogRequest_offset_tag; /* a console resuming */
  req.from.offset = 43;
  assert_int_equal(log_all(f, &req, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
  assert_string_equal(out, "...\nlogin: ");
  assert_int_equal(first, 43);
}

/* A ring of 1 KiB: 3000 bytes later, a Log from the start says 1976 were dropped. */
static void test_small_ring_drops(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start_port(f, "{\"config\": {\"history_bytes\": \"1024\"}}"), DFNET_STATUS_OK);
  char line[101];
  memset(line, 'x', 99);
  line[99] = '\n';
  line[100] = '\0';
  for (int i = 0; i < 30; i++)
    board_prints(f, line);
  wait_history(f, 3000);
  char out[8192];
  uint64_t dropped = 0, first = 0;
  dfnet_hw_serial_LogRequest req = dfnet_hw_serial_LogRequest_init_zero;
  req.which_from = dfnet_hw_serial_LogRequest_offset_tag;
  req.from.offset = 0;
  assert_int_equal(log_all(f, &req, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
  assert_int_equal(strlen(out), 1024);
  assert_int_equal(dropped, 3000 - 1024);
  assert_int_equal(first, 3000 - 1024);
  /* a bad setting is refused at start */
  assert_int_equal(hw_stop(f->bench, MONIKER), DFNET_STATUS_OK);
  assert_int_equal(start_port(f, "{\"config\": {\"history_bytes\": \"12\"}}"),
                   DFNET_STATUS_INVALID_ARGUMENT);
}

/* Wait until the port's output reached exactly `want` bytes: a Log from byte want - 1 gives
 * that byte (or says the ring dropped it) once it is there. */
static void wait_end(fixture_t *f, uint64_t want) {
  static char out[1 << 16];
  uint64_t dropped, first;
  dfnet_hw_serial_LogRequest req = {.which_from = dfnet_hw_serial_LogRequest_offset_tag,
                                    .from.offset = want - 1};
  for (int i = 0; i < 500; i++) {
    assert_int_equal(log_all(f, &req, out, sizeof out, &dropped, &first), DFNET_STATUS_OK);
    if (strlen(out) > 0 || dropped > 0)
      return;
    usleep(10 * 1000);
  }
  fail_msg("the port's output never reached %llu bytes", (unsigned long long)want);
}

/* A replay (no follow) the ring overtakes while the caller's window is shut (past the 64
 * items the driver host queues for a call): it skips what is gone (dropped) and still ends
 * at the end the history had when it was asked for — nothing printed later comes with it
 * (regression: it sent the newer bytes). */
static void test_overtaken_replay_ends_where_asked(void **state) {
  fixture_t *f = *state;
  enum { OLD = 400000, NEW = 600000 }; /* a ring of 400000 */
  assert_int_equal(start_port(f, "{\"config\": {\"history_bytes\": \"400000\"}}"), DFNET_STATUS_OK);
  static char chunk[4001];
  memset(chunk, 'a', 4000);
  for (int i = 0; i < OLD / 4000; i++)
    board_prints(f, chunk);
  wait_end(f, OLD);
  dfnet_hw_serial_LogRequest req = {.which_from = dfnet_hw_serial_LogRequest_offset_tag};
  uint8_t buf[64];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_serial_LogRequest_fields, &req));
  uint64_t id = hw_call_start(f->bench, MONIKER, SERIAL "Log", buf, os.bytes_written, 1);
  hw_reply_t r;
  assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r)); /* the first 4096; the rest wait */
  hw_reply_free(&r);
  memset(chunk, 'b', 4000);
  for (int i = 0; i < NEW / 4000; i++)
    board_prints(f, chunk);
  wait_end(f, OLD + NEW);
  hw_credit(f->bench, id, 1000);
  uint64_t got = 4096, dropped = 0;
  for (;;) {
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    if (r.end_of_stream) {
      assert_int_equal(r.code, DFNET_STATUS_OK);
      hw_reply_free(&r);
      break;
    }
    dfnet_hw_serial_LogData *d = calloc(1, sizeof *d);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_serial_LogData_fields, d));
    assert_null(memchr(d->data.bytes, 'b', d->data.size));
    got += d->data.size;
    dropped += d->dropped;
    free(d);
    hw_reply_free(&r);
  }
  assert_true(dropped > 0);
  assert_int_equal(got + dropped, OLD); /* every byte asked for: sent, or said gone */
}

/* Follow: the empty first item, then what the board prints. */
static void test_follow(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start_port(f, NULL), DFNET_STATUS_OK);
  dfnet_hw_serial_LogRequest req = {
      .which_from = dfnet_hw_serial_LogRequest_now_tag, .from.now = true, .follow = true};
  uint8_t buf[64];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_serial_LogRequest_fields, &req));
  uint64_t id = hw_call_start(f->bench, MONIKER, SERIAL "Log", buf, os.bytes_written, 64);
  hw_reply_t r;
  assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
  assert_false(r.end_of_stream);
  assert_int_equal(r.size, 0); /* in place */
  hw_reply_free(&r);
  board_prints(f, "hello\n");
  char got[64] = "";
  while (strlen(got) < 6) {
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    assert_false(r.end_of_stream);
    dfnet_hw_serial_LogData *d = calloc(1, sizeof *d);
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_serial_LogData_fields, d));
    strncat(got, (const char *)d->data.bytes, d->data.size);
    free(d);
    hw_reply_free(&r);
  }
  assert_string_equal(got, "hello\n");
  hw_cancel(f->bench, id);
}

static dfnet_status_t write_as(fixture_t *f, const char *who, const char *text, char *msg,
                               size_t cap) {
  dfnet_hw_serial_WriteRequest *req = calloc(1, sizeof *req);
  req->data.size = (pb_size_t)strlen(text);
  memcpy(req->data.bytes, text, req->data.size);
  uint8_t *buf = malloc(8192);
  pb_ostream_t os = pb_ostream_from_buffer(buf, 8192);
  assert_true(pb_encode(&os, dfnet_hw_serial_WriteRequest_fields, req));
  hw_caller_t c = {.name = who, .driver_url = ""};
  hw_reply_t r;
  dfnet_status_t st =
      hw_call_by(f->bench, &c, MONIKER, SERIAL "Write", buf, os.bytes_written, 0, &r);
  snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  free(buf);
  free(req);
  return st;
}

static uint64_t attach_as(fixture_t *f, const char *who) {
  dfnet_hw_serial_LogRequest req = {.which_from = dfnet_hw_serial_LogRequest_now_tag,
                                    .from.now = true};
  uint8_t buf[64];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_serial_LogRequest_fields, &req));
  hw_caller_t c = {.name = who, .driver_url = ""};
  return hw_call_start_by(f->bench, &c, MONIKER, SERIAL "Attach", buf, os.bytes_written, 64);
}

static void test_writer_seat(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start_port(f, NULL), DFNET_STATUS_OK);
  char msg[512];
  assert_int_equal(write_as(f, "bob", "x", msg, sizeof msg), DFNET_STATUS_OK); /* no seat yet */
  uint64_t alice = attach_as(f, "alice");
  hw_reply_t r;
  assert_true(hw_next_reply(f->bench, alice, HW_WAIT_MS, &r));
  assert_false(r.end_of_stream); /* attached: the empty first item */
  hw_reply_free(&r);

  assert_int_equal(write_as(f, "alice", "ls\n", msg, sizeof msg), DFNET_STATUS_OK);
  assert_int_equal(write_as(f, "bob", "reboot\n", msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(msg, "alice is attached"));
  uint64_t bob = attach_as(f, "bob");
  assert_true(hw_next_reply(f->bench, bob, HW_WAIT_MS, &r));
  assert_true(r.end_of_stream);
  assert_int_equal(r.code, DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r.message, "alice is already attached"));
  hw_reply_free(&r);

  hw_cancel(f->bench, alice); /* her console goes: the seat is free */
  assert_true(hw_next_reply(f->bench, alice, HW_WAIT_MS, &r));
  hw_reply_free(&r);
  dfnet_status_t st = DFNET_STATUS_FAILED_PRECONDITION;
  for (int i = 0; i < 100 && st != DFNET_STATUS_OK; i++) {
    st = write_as(f, "bob", "reboot\n", msg, sizeof msg);
    if (st != DFNET_STATUS_OK)
      usleep(10 * 1000);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_small_ring_drops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overtaken_replay_ends_where_asked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_writer_seat, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
