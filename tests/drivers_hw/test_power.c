/* power in a real dfnet-driver-host: Tasmota, Shelly Gen1 and Gen2 plugs emulated on
 * loopback (plug_sim.c) and the external-command backend, called with real Call envelopes:
 * the requests each API gets, the state read back, Cycle's order, and every way a switch
 * fails (no answer, an error answer, garbage, a relay that does not move, nobody
 * listening, a failing command), each UNAVAILABLE naming the switch. */
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

#include "bind/fuchsia_platform.h"
#include "dfnet/bind_keys.h"
#include "dfnet/hw/power.pb.h"
#include "harness.h"
#include "plug_sim.h"

#define MONIKER "dev.lab-a.platform.dut-power"
#define POWER "/dfnet.hw.power.Power/"
#define FAST "{\"config\": {\"request_timeout_ms\": \"400\"}}"

typedef struct fixture {
  hw_bench_t *bench;
  plug_sim_t *plug;
  char address[64];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->bench = hw_bench_new();
  f->plug = plug_sim_start(NULL, NULL);
  if (f->bench == NULL || f->plug == NULL)
    return -1;
  snprintf(f->address, sizeof f->address, "http://127.0.0.1:%u", plug_sim_port(f->plug));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  hw_bench_free(f->bench);
  plug_sim_stop(f->plug);
  free(f);
  return 0;
}

/* Start power on MONIKER with backend, address (NULL: none) and index (UINT32_MAX: none). */
static dfnet_status_t start(fixture_t *f, const char *backend, const char *address, uint32_t index,
                            char *msg, size_t cap) {
  hw_prop_t props[4] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
      HW_PROP_STR("dfnet.platform.POWER_BACKEND", backend),
  };
  size_t n = 2;
  if (address != NULL)
    props[n++] = (hw_prop_t)HW_PROP_STR("dfnet.platform.POWER_ADDRESS", address);
  if (index != UINT32_MAX)
    props[n++] = (hw_prop_t)HW_PROP_STRKEY_INT("dfnet.platform.POWER_INDEX", index);
  return hw_start(f->bench, "power", MONIKER, props, n, FAST, msg, cap);
}

/* Call `method` with an empty request (or a Cycle with off_ms); the reply into *out. */
static dfnet_status_t call(fixture_t *f, const char *method, uint32_t off_ms, uint32_t deadline_ms,
                           dfnet_hw_power_PowerState *out, char *msg, size_t cap) {
  uint8_t buf[16];
  size_t len = 0;
  if (off_ms != 0) {
    dfnet_hw_power_CycleRequest req = {.off_ms = off_ms};
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    assert_true(pb_encode(&os, dfnet_hw_power_CycleRequest_fields, &req));
    len = os.bytes_written;
  }
  char path[64];
  snprintf(path, sizeof path, POWER "%s", method);
  hw_reply_t r;
  dfnet_status_t st = hw_call(f->bench, MONIKER, path, buf, len, deadline_ms, &r);
  memset(out, 0, sizeof *out);
  if (st == DFNET_STATUS_OK) {
    pb_istream_t is = pb_istream_from_buffer(r.data, r.size);
    assert_true(pb_decode(&is, dfnet_hw_power_PowerState_fields, out));
  }
  if (msg != NULL)
    snprintf(msg, cap, "%s", r.message);
  hw_reply_free(&r);
  return st;
}

static void assert_log(fixture_t *f, const char *want) {
  char *log = plug_sim_take_log(f->plug);
  if (strcmp(log, want) != 0)
    fail_msg("the plug got:\n%swanted:\n%s", log, want);
  free(log);
}

static void test_tasmota(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, "tasmota", f->address, UINT32_MAX, NULL, 0), DFNET_STATUS_OK);
  assert_string_equal(hw_child_class(f->bench, MONIKER ".power"), "power");
  dfnet_hw_power_PowerState s;
  assert_int_equal(call(f, "Get", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_OFF);
  assert_int_equal(s.changed_unix_ms, 0); /* no change seen yet */
  assert_string_equal(s.backend, "tasmota");
  assert_string_equal(s.address, f->address);
  assert_log(f, "/cm?cmnd=Power1\n");

  assert_int_equal(call(f, "On", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_true(s.changed_unix_ms > 0);
  assert_true(plug_sim_relay(f->plug, 1));
  assert_log(f, "/cm?cmnd=Power1%20On\n/cm?cmnd=Power1\n"); /* switched, then read back */

  assert_int_equal(call(f, "Off", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_OFF);
  assert_false(plug_sim_relay(f->plug, 1));
  assert_log(f, "/cm?cmnd=Power1%20Off\n/cm?cmnd=Power1\n");
}

static void test_shelly(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, "shelly-gen1", f->address, UINT32_MAX, NULL, 0), DFNET_STATUS_OK);
  dfnet_hw_power_PowerState s;
  assert_int_equal(call(f, "On", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_true(plug_sim_relay(f->plug, 0));
  assert_log(f, "/relay/0?turn=on\n/relay/0\n");
  assert_int_equal(hw_stop(f->bench, MONIKER), DFNET_STATUS_OK);

  /* Gen2, the second switch of a two-channel plug */
  assert_int_equal(start(f, "shelly-gen2", f->address, 1, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(call(f, "On", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_true(plug_sim_relay(f->plug, 1));
  assert_int_equal(call(f, "Off", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_OFF);
  assert_log(f,
             "/rpc/Switch.Set?id=1&on=true\n/rpc/Switch.GetStatus?id=1\n"
             "/rpc/Switch.Set?id=1&on=false\n/rpc/Switch.GetStatus?id=1\n");
  assert_true(plug_sim_relay(f->plug, 0)); /* the other switch untouched */
}

static void test_cycle(void **state) {
  fixture_t *f = *state;
  plug_sim_set_relay(f->plug, 2, true);
  assert_int_equal(start(f, "tasmota", f->address, 2, NULL, 0), DFNET_STATUS_OK);
  dfnet_hw_power_PowerState s;
  assert_int_equal(call(f, "Cycle", 150, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_log(f, "/cm?cmnd=Power2%20Off\n/cm?cmnd=Power2\n/cm?cmnd=Power2%20On\n/cm?cmnd=Power2\n");

  char msg[512];
  uint8_t buf[16];
  dfnet_hw_power_CycleRequest req = {.off_ms = 600001};
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  assert_true(pb_encode(&os, dfnet_hw_power_CycleRequest_fields, &req));
  hw_reply_t r;
  assert_int_equal(hw_call(f->bench, MONIKER, POWER "Cycle", buf, os.bytes_written, 0, &r),
                   DFNET_STATUS_INVALID_ARGUMENT);
  snprintf(msg, sizeof msg, "%s", r.message);
  hw_reply_free(&r);
  assert_non_null(strstr(msg, "off_ms 600001"));

  /* the call's deadline passes while the power is off: it stays off, the switch is free */
  assert_int_equal(call(f, "Cycle", 5000, 600, &s, NULL, 0), DFNET_STATUS_DEADLINE_EXCEEDED);
  usleep(200 * 1000);
  assert_false(plug_sim_relay(f->plug, 2));
  assert_int_equal(call(f, "Get", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_OFF);
}

/* Every way the switch fails: UNAVAILABLE, the address in the message; the driver goes on. */
static void test_failures(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, "tasmota", f->address, UINT32_MAX, NULL, 0), DFNET_STATUS_OK);
  dfnet_hw_power_PowerState s;
  char msg[512];
  static const struct {
    plug_mode_t mode;
    const char *method, *says;
  } cases[] = {{PLUG_SILENT, "Get", "no answer within"},
               {PLUG_ERROR_500, "On", "answered HTTP 500"},
               {PLUG_GARBAGE, "Get", "not a JSON object"},
               {PLUG_STUCK, "On", "switched on, but it reads back off"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    plug_sim_set_mode(f->plug, cases[i].mode);
    assert_int_equal(call(f, cases[i].method, 0, 0, &s, msg, sizeof msg), DFNET_STATUS_UNAVAILABLE);
    if (strstr(msg, cases[i].says) == NULL || strstr(msg, "127.0.0.1") == NULL)
      fail_msg("case %zu: %s", i, msg);
  }
  /* a call with a deadline shorter than the timeout still ends UNAVAILABLE, before it */
  plug_sim_set_mode(f->plug, PLUG_SILENT);
  assert_int_equal(call(f, "Get", 0, 300, &s, msg, sizeof msg), DFNET_STATUS_UNAVAILABLE);
  plug_sim_set_mode(f->plug, PLUG_NORMAL);
  assert_int_equal(call(f, "On", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_int_equal(hw_stop(f->bench, MONIKER), DFNET_STATUS_OK);

  /* nobody listening there */
  assert_int_equal(start(f, "tasmota", "127.0.0.1:1", UINT32_MAX, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(call(f, "Get", 0, 0, &s, msg, sizeof msg), DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(msg, "127.0.0.1:1"));
}

/* A stop while the switch does not answer is prompt; the queued calls end UNAVAILABLE. */
static void test_stop_while_waiting(void **state) {
  fixture_t *f = *state;
  assert_int_equal(start(f, "tasmota", f->address, UINT32_MAX, NULL, 0), DFNET_STATUS_OK);
  plug_sim_set_mode(f->plug, PLUG_SILENT);
  uint64_t a = hw_call_start(f->bench, MONIKER, POWER "Get", NULL, 0, 0);
  uint64_t b = hw_call_start(f->bench, MONIKER, POWER "On", NULL, 0, 0);
  assert_true(a != 0 && b != 0);
  usleep(100 * 1000);
  assert_int_equal(hw_stop(f->bench, MONIKER), DFNET_STATUS_OK);
  hw_reply_t r;
  assert_true(hw_next_reply(f->bench, a, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_UNAVAILABLE);
  hw_reply_free(&r);
  assert_true(hw_next_reply(f->bench, b, HW_WAIT_MS, &r));
  assert_int_equal(r.code, DFNET_STATUS_UNAVAILABLE);
  hw_reply_free(&r);
}

static void test_bad_properties(void **state) {
  fixture_t *f = *state;
  char msg[512];
  assert_int_equal(start(f, "x10", f->address, UINT32_MAX, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(start(f, "tasmota", NULL, UINT32_MAX, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(start(f, "shelly-gen2", "https://10.0.0.5", UINT32_MAX, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(start(f, "tasmota", "10.0.0.5:99999", UINT32_MAX, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_int_equal(start(f, "command", NULL, UINT32_MAX, msg, sizeof msg),
                   DFNET_STATUS_FAILED_PRECONDITION);
  char *log = hw_bench_log(f->bench);
  assert_non_null(strstr(log, "\"x10\": not one of tasmota"));
  assert_non_null(strstr(log, "https is not supported"));
  assert_non_null(strstr(log, "the port must be 1..65535"));
  assert_non_null(strstr(log, "needs dfnet.platform.POWER_ON"));
  free(log);
}

/* Start the command backend with these commands (get may be NULL). */
static dfnet_status_t start_command(fixture_t *f, const char *on, const char *off,
                                    const char *get) {
  hw_prop_t props[5] = {
      HW_PROP_INT(DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE),
      HW_PROP_STR("dfnet.platform.POWER_BACKEND", "command"),
      HW_PROP_STR("dfnet.platform.POWER_ON", on),
      HW_PROP_STR("dfnet.platform.POWER_OFF", off),
  };
  size_t n = 4;
  if (get != NULL)
    props[n++] = (hw_prop_t)HW_PROP_STR("dfnet.platform.POWER_GET", get);
  return hw_start(f->bench, "power", MONIKER, props, n, FAST, NULL, 0);
}

/* A shell command (bash: its /dev/tcp) asking the plug's Shelly API for `query` on relay
 * $DFNET_POWER_INDEX, its answer through `then` (a redirection or a pipeline): the way a
 * lab's power command reaches a networked switch, with the driver's rights "exec" and "inet"
 * (its driver host is sandboxed: the command can write no file). */
static void plug_command(const fixture_t *f, char *out, size_t cap, const char *query,
                         const char *then) {
  snprintf(out, cap,
           "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%u;printf \"GET /relay/$DFNET_POWER_INDEX%s "
           "HTTP/1.0\\r\\n\\r\\n\">&3;cat<&3%s'",
           plug_sim_port(f->plug), query, then);
}

static void test_command(void **state) {
  fixture_t *f = *state;
  char on[256], off[256], get[256];
  plug_command(f, on, sizeof on, "?turn=on", ">/dev/null");
  plug_command(f, off, sizeof off, "?turn=off", ">/dev/null");
  plug_command(f, get, sizeof get, "", "|grep -o \"ison\\\":[a-z]*\"|cut -d: -f2");
  assert_int_equal(start_command(f, on, off, get), DFNET_STATUS_OK);
  dfnet_hw_power_PowerState s;
  char msg[512];
  assert_int_equal(call(f, "On", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_string_equal(s.backend, "command");
  assert_true(plug_sim_relay(f->plug, 0));
  assert_int_equal(call(f, "Cycle", 50, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_ON);
  assert_int_equal(call(f, "Off", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_OFF);
  assert_false(plug_sim_relay(f->plug, 0));
  assert_int_equal(hw_stop(f->bench, MONIKER), DFNET_STATUS_OK);

  /* a failing command: its status and output; a hanging one: killed in time */
  assert_int_equal(start_command(f, "echo relay board not found >&2; exit 3", "sleep 30", NULL),
                   DFNET_STATUS_OK);
  assert_int_equal(call(f, "On", 0, 0, &s, msg, sizeof msg), DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(msg, "exit status 3"));
  assert_non_null(strstr(msg, "relay board not found"));
  assert_int_equal(call(f, "Off", 0, 0, &s, msg, sizeof msg), DFNET_STATUS_UNAVAILABLE);
  assert_non_null(strstr(msg, "did not finish in time"));
  /* without a get command the state is unknown */
  assert_int_equal(call(f, "Get", 0, 0, &s, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(s.state, dfnet_hw_power_State_STATE_UNKNOWN);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tasmota, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shelly, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_while_waiting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_properties, setup, teardown),
      cmocka_unit_test_setup_teardown(test_command, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
