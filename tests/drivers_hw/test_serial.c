/* serial in a real dfnet-driver-host, with a pseudo-terminal pair as the port: the driver
 * opens the slave as a board-file serial port ("dfnet.platform.TTY"), the test plays the
 * board on the master: configuration, writes, reads, streams with credit, cancellation,
 * hang-up, and the failures. (The USB adapters: test_serial_usb.c.) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
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
  int master;
  int slave; /* kept open so the pty stays up between the driver's opens */
  char slave_path[128];
  hw_bench_t *bench;
} fixture_t;

static size_t encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *buf, size_t cap) {
  pb_ostream_t out = pb_ostream_from_buffer(buf, cap);
  assert_true(pb_encode(&out, fields, msg));
  return out.bytes_written;
}

static void decode(const hw_reply_t *r, const pb_msgdesc_t *fields, void *msg) {
  pb_istream_t in = pb_istream_from_buffer(r->data, r->size);
  assert_true(pb_decode(&in, fields, msg));
}

static void open_pty(fixture_t *f) {
  assert_int_equal(openpty(&f->master, &f->slave, f->slave_path, NULL, NULL), 0);
  /* The master side: raw too, so what the test writes arrives unchanged. */
  struct termios t;
  assert_int_equal(tcgetattr(f->slave, &t), 0);
  cfmakeraw(&t);
  assert_int_equal(tcsetattr(f->slave, TCSANOW, &t), 0);
}

/* Start serial on a board-file port whose "dfnet.platform.TTY" is `tty` (NULL: none); the
 * harness hands the tty as the agent does, unless `untrusted`. The start's message in
 * msg[cap] (msg may be NULL). */
static dfnet_status_t start_port(fixture_t *f, const char *tty, bool untrusted, char *msg,
                                 size_t cap) {
  hw_prop_t props[] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
      HW_PROP_INT(DFNET_BIND_PLATFORM_DEV_VID, 0),
      HW_PROP_INT(DFNET_BIND_PLATFORM_DEV_PID, 0),
      HW_PROP_INT(DFNET_BIND_PLATFORM_DEV_DID, 0x1c),
      HW_PROP_INT(DFNET_BIND_SERIAL_CLASS, BIND_FUCHSIA_SERIAL_BIND_SERIAL_CLASS_CONSOLE),
      HW_PROP_STR("dfnet.platform.NAME", "uart0"),
      HW_PROP_STR("dfnet.platform.TTY", tty),
  };
  const hw_driver_t d = {.name = "serial",
                         .moniker = MONIKER,
                         .props = props,
                         .prop_count = tty != NULL ? 7 : 6,
                         .untrusted = untrusted};
  return hw_start_driver(f->bench, &d, msg, cap);
}

static dfnet_status_t start_board_port(fixture_t *f, const char *tty) {
  return start_port(f, tty, false, NULL, 0);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  open_pty(f);
  f->bench = hw_bench_new();
  assert_non_null(f->bench);
  assert_int_equal(start_board_port(f, f->slave_path), DFNET_STATUS_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  hw_bench_free(f->bench);
  close(f->master);
  close(f->slave);
  free(f);
  return 0;
}

/* Read exactly n bytes from fd within HW_WAIT_MS. */
static void read_exactly(int fd, uint8_t *out, size_t n) {
  size_t got = 0;
  while (got < n) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, HW_WAIT_MS), 1);
    ssize_t r = read(fd, out + got, n - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
}

static dfnet_status_t serial_write(fixture_t *f, const void *data, size_t len) {
  dfnet_hw_serial_WriteRequest *req = calloc(1, sizeof *req);
  memcpy(req->data.bytes, data, len);
  req->data.size = (pb_size_t)len;
  uint8_t *buf = malloc(8192);
  size_t n = encode(dfnet_hw_serial_WriteRequest_fields, req, buf, 8192);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, MONIKER, SERIAL "Write", buf, n, 0, &r);
  if (st == DFNET_STATUS_OK) {
    dfnet_hw_serial_WriteReply reply;
    decode(&r, dfnet_hw_serial_WriteReply_fields, &reply);
    assert_int_equal(reply.written, len);
  }
  hw_reply_free(&r);
  free(buf);
  free(req);
  return st;
}

/* Serial.Read; the data into out (at most 4096 bytes), its size returned. */
static size_t serial_read(fixture_t *f, uint32_t max, uint32_t timeout_ms, uint8_t *out,
                          dfnet_status_t want) {
  dfnet_hw_serial_ReadRequest req = {.max_bytes = max, .timeout_ms = timeout_ms};
  uint8_t buf[32];
  size_t n = encode(dfnet_hw_serial_ReadRequest_fields, &req, buf, sizeof buf);
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, MONIKER, SERIAL "Read", buf, n, 0, &r), want);
  size_t size = 0;
  if (want == DFNET_STATUS_OK) {
    dfnet_hw_serial_ReadReply *reply = calloc(1, sizeof *reply);
    decode(&r, dfnet_hw_serial_ReadReply_fields, reply);
    size = reply->data.size;
    memcpy(out, reply->data.bytes, size);
    free(reply);
  }
  hw_reply_free(&r);
  return size;
}

static void test_class_and_configure(void **state) {
  fixture_t *f = *state;
  assert_string_equal(hw_child_class(f->bench, MONIKER ".serial"), "serial");
  dfnet_hw_serial_Config want = {.baud_rate = 9600,
                                 .data_bits = 7,
                                 .parity = dfnet_hw_serial_Parity_PARITY_EVEN,
                                 .stop_bits = 2,
                                 .flow_control = dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS};
  uint8_t buf[64];
  size_t n = encode(dfnet_hw_serial_Config_fields, &want, buf, sizeof buf);
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, MONIKER, SERIAL "Configure", buf, n, 0, &r), DFNET_STATUS_OK);
  dfnet_hw_serial_Config got;
  decode(&r, dfnet_hw_serial_Config_fields, &got);
  hw_reply_free(&r);
  /* The reply is what the kernel kept. A pty keeps the rate, stop bits and flow control
   * but forces CS8 without parity (drivers/tty/pty.c pty_set_termios). */
  struct termios t;
  assert_int_equal(tcgetattr(f->slave, &t), 0);
  assert_int_equal(got.baud_rate, 9600);
  assert_int_equal(cfgetospeed(&t), B9600);
  assert_int_equal(got.stop_bits, 2);
  assert_true(t.c_cflag & CSTOPB);
  assert_int_equal(got.flow_control, dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS);
  assert_true(t.c_cflag & CRTSCTS);
  assert_int_equal(got.data_bits, (t.c_cflag & CSIZE) == CS7 ? 7 : 8);
  assert_int_equal(got.parity, (t.c_cflag & PARENB) ? dfnet_hw_serial_Parity_PARITY_EVEN
                                                    : dfnet_hw_serial_Parity_PARITY_NONE);
  assert_false(t.c_lflag & (ECHO | ICANON));

  /* Defaults: 115200 8N1. */
  dfnet_hw_serial_Config zero = dfnet_hw_serial_Config_init_zero;
  n = encode(dfnet_hw_serial_Config_fields, &zero, buf, sizeof buf);
  assert_int_equal(hw_call(f->bench, MONIKER, SERIAL "Configure", buf, n, 0, &r), DFNET_STATUS_OK);
  decode(&r, dfnet_hw_serial_Config_fields, &got);
  hw_reply_free(&r);
  assert_int_equal(got.baud_rate, 115200);
  assert_int_equal(got.data_bits, 8);
  assert_int_equal(got.stop_bits, 1);
  assert_int_equal(got.parity, dfnet_hw_serial_Parity_PARITY_NONE);

  /* Refused: an odd rate, 9 data bits, 3 stop bits. */
  const dfnet_hw_serial_Config bad[] = {{.baud_rate = 12345}, {.data_bits = 9}, {.stop_bits = 3}};
  for (size_t i = 0; i < 3; i++) {
    n = encode(dfnet_hw_serial_Config_fields, &bad[i], buf, sizeof buf);
    assert_int_equal(hw_call(f->bench, MONIKER, SERIAL "Configure", buf, n, 0, &r),
                     DFNET_STATUS_INVALID_ARGUMENT);
    hw_reply_free(&r);
  }
}

static void test_write_reaches_the_other_side(void **state) {
  fixture_t *f = *state;
  assert_int_equal(serial_write(f, "hello board\r\n", 13), DFNET_STATUS_OK);
  uint8_t got[13];
  read_exactly(f->master, got, 13);
  assert_memory_equal(got, "hello board\r\n", 13);
  /* 4096 bytes, every value. */
  uint8_t big[4096];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)(i * 7);
  assert_int_equal(serial_write(f, big, sizeof big), DFNET_STATUS_OK);
  uint8_t back[4096];
  read_exactly(f->master, back, sizeof back);
  assert_memory_equal(back, big, sizeof big);
}

static void test_read(void **state) {
  fixture_t *f = *state;
  uint8_t out[4096];
  /* Nothing yet: an empty OK, at once or after the timeout. */
  assert_int_equal(serial_read(f, 0, 0, out, DFNET_STATUS_OK), 0);
  assert_int_equal(serial_read(f, 0, 50, out, DFNET_STATUS_OK), 0);
  /* Data written by the board arrives. */
  assert_int_equal(write(f->master, "login: ", 7), 7);
  size_t got = 0;
  while (got < 7)
    got += serial_read(f, 0, 2000, out + got, DFNET_STATUS_OK);
  assert_memory_equal(out, "login: ", 7);
  /* max_bytes is honoured. */
  assert_int_equal(write(f->master, "abcdef", 6), 6);
  got = 0;
  while (got < 2)
    got += serial_read(f, 2 - (uint32_t)got, 2000, out + got, DFNET_STATUS_OK);
  assert_memory_equal(out, "ab", 2);
  got = 0;
  while (got < 4)
    got += serial_read(f, 0, 2000, out + got, DFNET_STATUS_OK);
  assert_memory_equal(out, "cdef", 4);
  /* A parked Read is served by what arrives later. */
  dfnet_hw_serial_ReadRequest req = {.timeout_ms = 5000};
  uint8_t buf[32];
  size_t n = encode(dfnet_hw_serial_ReadRequest_fields, &req, buf, sizeof buf);
  uint64_t id = hw_call_start(f->bench, MONIKER, SERIAL "Read", buf, n, 0);
  hw_reply_t r;
  assert_false(hw_next_reply(f->bench, id, 100, &r));
  assert_int_equal(write(f->master, "#", 1), 1);
  assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_OK);
  dfnet_hw_serial_ReadReply *reply = calloc(1, sizeof *reply);
  decode(&r, dfnet_hw_serial_ReadReply_fields, reply);
  assert_int_equal(reply->data.size, 1);
  assert_int_equal(reply->data.bytes[0], '#');
  free(reply);
  hw_reply_free(&r);
  /* Over the bound. */
  serial_read(f, 4097, 0, out, DFNET_STATUS_INVALID_ARGUMENT);
}

/* A Subscribe stream's first item: empty, the stream is in place (serial.proto); its
 * credit is given back. */
static void expect_subscribed(fixture_t *f, uint64_t id) {
  hw_reply_t r;
  assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_OK);
  assert_false(r.end_of_stream);
  dfnet_hw_serial_Data *item = calloc(1, sizeof *item);
  decode(&r, dfnet_hw_serial_Data_fields, item);
  assert_int_equal(item->data.size, 0);
  assert_int_equal(item->dropped, 0);
  free(item);
  hw_reply_free(&r);
  hw_credit(f->bench, id, 1);
  assert_false(hw_next_reply(f->bench, id, 100, &r)); /* nothing more yet */
}

/* Collect `want` bytes of a Subscribe stream, granting credit as items come. */
static void stream_collect(fixture_t *f, uint64_t id, uint8_t *out, size_t want,
                           uint64_t *dropped) {
  size_t got = 0;
  *dropped = 0;
  while (got < want) {
    hw_reply_t r;
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    assert_int_equal(r.code, DFNET_STATUS_OK);
    assert_false(r.end_of_stream);
    dfnet_hw_serial_Data *item = calloc(1, sizeof *item);
    decode(&r, dfnet_hw_serial_Data_fields, item);
    assert_true(got + item->data.size <= want);
    memcpy(out + got, item->data.bytes, item->data.size);
    got += item->data.size;
    *dropped += item->dropped;
    free(item);
    hw_reply_free(&r);
    hw_credit(f->bench, id, 1);
  }
}

static void test_subscribe(void **state) {
  fixture_t *f = *state;
  uint64_t a = hw_call_start(f->bench, MONIKER, SERIAL "Subscribe", NULL, 0, 4);
  uint64_t b = hw_call_start(f->bench, MONIKER, SERIAL "Subscribe", NULL, 0, 4);
  assert_true(a != 0 && b != 0);
  hw_reply_t r;
  expect_subscribed(f, a);
  expect_subscribed(f, b);
  assert_int_equal(write(f->master, "U-Boot 2024.01\r\n", 16), 16);
  uint8_t out[16];
  uint64_t dropped;
  stream_collect(f, a, out, 16, &dropped);
  assert_memory_equal(out, "U-Boot 2024.01\r\n", 16);
  stream_collect(f, b, out, 16, &dropped);
  assert_memory_equal(out, "U-Boot 2024.01\r\n", 16);
  assert_int_equal(dropped, 0);
  /* Read sees the same bytes: every reader gets everything. */
  uint8_t rd[32];
  size_t got = 0;
  while (got < 16)
    got += serial_read(f, 0, 2000, rd + got, DFNET_STATUS_OK);
  assert_memory_equal(rd, "U-Boot 2024.01\r\n", 16);

  /* Cancel `a`: it ends CANCELLED; `b` goes on. */
  hw_cancel(f->bench, a);
  assert_true(hw_next_reply(f->bench, a, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_CANCELLED);
  assert_true(r.end_of_stream);
  hw_reply_free(&r);
  assert_int_equal(write(f->master, "more", 4), 4);
  stream_collect(f, b, out, 4, &dropped);
  assert_memory_equal(out, "more", 4);
}

/* A stream whose caller grants no credit: the driver buffers (bounded), drops the oldest
 * and says how many; nothing blocks Read or Write meanwhile. */
static void test_subscribe_credit_and_bound(void **state) {
  fixture_t *f = *state;
  uint64_t id = hw_call_start(f->bench, MONIKER, SERIAL "Subscribe", NULL, 0, 1);
  hw_reply_t r;
  expect_subscribed(f, id);
  /* 1 MiB from the board, while the stream may carry only one item (the driver host
   * queues 64 items for credit, the stream's buffer holds 64 KiB). */
  static uint8_t chunk[4096];
  memset(chunk, 'x', sizeof chunk);
  size_t total = 1024 * 1024;
  for (size_t sent = 0; sent < total;) {
    ssize_t n = write(f->master, chunk, sizeof chunk);
    if (n < 0 && errno == EAGAIN) {
      usleep(1000);
      continue;
    }
    assert_true(n > 0);
    sent += (size_t)n;
    /* Keep the Read buffer drained so the pty never fills. */
    uint8_t out[4096];
    (void)serial_read(f, 0, 0, out, DFNET_STATUS_OK);
  }
  /* The driver still answers at once. */
  assert_int_equal(serial_write(f, "ok", 2), DFNET_STATUS_OK);
  uint8_t two[2];
  read_exactly(f->master, two, 2);
  /* Now take everything the stream holds: at most its bound, the rest counted as
   * dropped. */
  size_t got = 0;
  uint64_t dropped = 0;
  while (got + dropped < total) {
    assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
    assert_int_equal(r.code, DFNET_STATUS_OK);
    dfnet_hw_serial_Data *item = calloc(1, sizeof *item);
    decode(&r, dfnet_hw_serial_Data_fields, item);
    got += item->data.size;
    dropped += item->dropped;
    free(item);
    hw_reply_free(&r);
    hw_credit(f->bench, id, 1);
  }
  assert_int_equal(got + dropped, total);
  assert_true(dropped > 0);
  /* Bounded: the stream's buffer, the driver host's queue of 64 items, the item held, and
   * what was still in the pty's kernel buffers when the test stopped writing. */
  assert_true(got <= 64 * 1024 + 64 * 4096 + 4096 + 192 * 1024);
}

/* The board side hangs up: waiting calls and streams end UNAVAILABLE with the reason. */
static void test_hang_up(void **state) {
  fixture_t *f = *state;
  uint64_t id = hw_call_start(f->bench, MONIKER, SERIAL "Subscribe", NULL, 0, 4);
  hw_reply_t r;
  expect_subscribed(f, id);
  close(f->master);
  f->master = -1;
  assert_true(hw_next_reply(f->bench, id, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(r.message, "failed"));
  hw_reply_free(&r);
  uint8_t out[16];
  serial_read(f, 0, 1000, out, DFNET_STATUS_UNAVAILABLE);
  assert_int_equal(serial_write(f, "x", 1), DFNET_STATUS_UNAVAILABLE);
}

/* The start fails `want`; the reason is in the start's message (the agent's, or the
 * driver's) and, for the driver's, in its log. */
static void expect_start_failure(const char *tty, bool untrusted, dfnet_status_t want,
                                 const char *reason) {
  fixture_t f = {.bench = hw_bench_new()};
  char msg[1024];
  assert_int_equal(start_port(&f, tty, untrusted, msg, sizeof msg), want);
  char *log = hw_bench_log(f.bench);
  if (strstr(msg, reason) == NULL)
    fail_msg("the start's message lacks \"%s\": \"%s\"", reason, msg);
  if (want == DFNET_STATUS_FAILED_PRECONDITION && strstr(log, reason) == NULL)
    fail_msg("log lacks \"%s\":\n%s", reason, log);
  free(log);
  hw_bench_free(f.bench);
}

static void test_no_tty(void **state) {
  (void)state;
  expect_start_failure(NULL, false, DFNET_STATUS_FAILED_PRECONDITION,
                       "neither \"dfnet.platform.TTY\"");
  /* the agent opens the tty: what it cannot open fails the start before the driver runs */
  expect_start_failure("/dev/nonexistent-tty", false, DFNET_STATUS_NOT_FOUND,
                       "cannot open resource tty /dev/nonexistent-tty: No such file or directory");
  expect_start_failure("ttyS0", false, DFNET_STATUS_INVALID_ARGUMENT,
                       "resource tty: \"ttyS0\" is not an absolute path");
  expect_start_failure("/dev/null", false, DFNET_STATUS_FAILED_PRECONDITION,
                       "/dev/null is not a terminal");
  /* a node whose properties the agent does not trust (one a driver added): nothing is
   * handed, and the driver opens nothing itself */
  expect_start_failure("/dev/null", true, DFNET_STATUS_FAILED_PRECONDITION,
                       "/dev/null was not handed to the driver");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_class_and_configure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_reaches_the_other_side, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscribe_credit_and_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hang_up, setup, teardown),
      cmocka_unit_test(test_no_tty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
