/* The USB stack end to end (issue 18 item 3): a real dfnet-manager and a real dfnet-host
 * whose libusb sees the recorded Canon PowerShot SX200 (tests/fixtures/usb/
 * canon-powershot-sx200.umockdev, 04a9:31c0 at bus 1 address 11, port 1-1.5.2.3; one PTP
 * still-image interface 6/1/1) with the usbdevfs ioctls recorded while gphoto2 talked to it
 * (canon-powershot-sx200.ioctl). Nothing is started by hand:
 *
 *   the enumerator publishes the camera's device node; the manager binds usb-device (the
 *   fallback); usb-device adds ifc-000 offered dfnet.hw.usb.Interface; the manager binds the
 *   test class driver usb_class (tests/drivers/, packaged here with rules for a PTP
 *   interface offered the Interface, colocated with its parent) to it; usb_class runs PTP
 *   OpenSession and GetDeviceInfo through the offered Interface.
 *
 * Checked: the GetDeviceInfo dataset the class driver got matches the recording byte for
 * byte (as test_drv_usb_bulk does through libusb directly); `bind why` on the device node
 * says the class driver needs an offer it did not get; a remote client cannot use the
 * Interface service (PERMISSION_DENIED: it is the children's); unplugging the camera removes
 * the device node and everything under it, the class driver stopping first (it still sees
 * usb-device serving it when it stops). Runs under umockdev-wrapper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <umockdev.h>

#include "drivers_hw/usb_testbed.h"
#include "fabric.h"
#include "testhost/testhost.h"

#define HOST "lab-s"
#define CAMERA "dev.lab-s.usb.001_011"
#define CHILD CAMERA ".ifc-000"
#define CAMERA_SYSFS "/sys/devices/pci0000:00/0000:00:1a.0/usb1/1-1/1-1.5/1-1.5.2/1-1.5.2.3"
#define WAIT_MS 30000

/* usb_class on a PTP still-image interface (class 6, subclass 1, protocol 1) of usb-device */
#define PTP_RULES                                                       \
  "using dfnet.hw.usb;\n"                                               \
  "using fuchsia.usb;\n"                                                \
  "dfnet.hw.usb.Interface == dfnet.hw.usb.Interface.DriverTransport;\n" \
  "fuchsia.BIND_PROTOCOL == fuchsia.usb.BIND_PROTOCOL.INTERFACE;\n"     \
  "fuchsia.BIND_USB_CLASS == fuchsia.usb.BIND_USB_CLASS.IMAGE;\n"       \
  "fuchsia.BIND_USB_SUBCLASS == 1;\n"                                   \
  "fuchsia.BIND_USB_PROTOCOL == 1;\n"

/* The GetDeviceInfo data container the camera sent (405 bytes), as test_usb_bulk.c has it. */
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

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *op;
  UMockdevTestbed *testbed;
  char trace[300];
} F;

/* sandboxed (dfnet-host's default): usb-device asks for the right usb (which reaches the
 * testbed beneath $UMOCKDEV_DIR, docs/architecture.md "Confinement"), and the class driver's
 * trace is its manifest resource, which --allow-resource lets the agent open (set up below) */
static const char *agent_extra[] = {"--allow-right", "usb", "--allow-resource", NULL, NULL};

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
  if (fabric_init(&F.fab, "usb-stack", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", HOST) != 0 || fabric_issue(&F.fab, "operator", "op") != 0)
    return -1;
  snprintf(F.trace, sizeof F.trace, "%s/usb-class.trace", F.fab.root);
  char drivers[300], extra[900];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  snprintf(extra, sizeof extra,
           "\"colocate\": \"true\", \"config\": {\"ptp\": \"true\", \"trace\": \"%s\"}, "
           "\"resources\": [{\"path\": \"%s\", \"access\": \"rw\"}]",
           F.trace, F.trace);
  agent_extra[3] = F.trace;
  if (fabric_sh("touch '%s'", F.trace) != 0 || /* the agent opens it; it creates nothing */
      fabric_sh("cp -r '%s/drivers/usb-device' '%s/usb-device'", F.fab.build, drivers) != 0 ||
      th_write_driver(drivers, "usb-class", PTP_RULES, extra) != 0 ||
      fabric_sh("cp '%s/tests/drivers/usb_class.so' '%s/usb-class/driver/usb-class.so'",
                F.fab.build, drivers) != 0)
    return -1;
  const char *no_devices[] = {NULL};
  fabric_write_board(&F.fab, no_devices);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.op = fabric_connect(&F.fab, "op");
  if (F.op == NULL || !fabric_wait_node(F.op, CAMERA, fabric_is_bound, NULL, WAIT_MS, NULL) ||
      !fabric_wait_node(F.op, CHILD, fabric_is_bound, NULL, WAIT_MS, NULL)) {
    print_message("the camera or its interface did not bind; agent log: %s, manager log: %s\n",
                  F.agent.log, F.fab.manager_log);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.op);
  fabric_cleanup(&F.fab, &F.agent, 1);
  if (F.testbed != NULL)
    g_object_unref(F.testbed);
  return 0;
}

/* The class driver's PTP session through the offered Interface: the dataset, byte for
 * byte; the class driver shares usb-device's driver host (colocate). */
static void test_ptp_through_the_offer(void **state) {
  (void)state;
  assert_int_equal(fabric_node(F.op, CHILD).driver_host_id,
                   fabric_node(F.op, CAMERA).driver_host_id);
  uint8_t *reply = NULL;
  size_t len = 0;
  dfnet_client_error_t err;
  dfnet_client_call_options_t o = {.deadline_ms = 20000};
  dfnet_status_t st = dfnet_client_call(F.op, CHILD, "/dfnet.test.UsbClass/DeviceInfo", NULL, 0, &o,
                                        &reply, &len, &err);
  if (st != DFNET_STATUS_OK)
    fail_msg("DeviceInfo: %s: %s", dfnet_status_str(st), err.message);
  static uint8_t want[4096];
  size_t n = usb_testbed_unhex(device_info_hex, want, sizeof want);
  assert_int_equal(len, n);
  assert_memory_equal(reply, want, n);
  free(reply);
}

/* The Interface service is the children's: a remote client gets PERMISSION_DENIED, on the
 * device's node and on its class path alike; Device stays the clients'. */
static void test_interface_is_not_a_clients(void **state) {
  (void)state;
  dfnet_client_error_t err;
  dfnet_client_call_options_t o = {.deadline_ms = 10000};
  uint8_t *reply = NULL;
  size_t len = 0;
  assert_int_equal(dfnet_client_call(F.op, CAMERA, "/dfnet.hw.usb.Interface/GetInterface", NULL, 0,
                                     &o, &reply, &len, &err),
                   DFNET_STATUS_PERMISSION_DENIED);
  assert_non_null(strstr(err.message, "serves the drivers of " CAMERA "'s interface children"));
  free(reply);
  reply = NULL;
  assert_int_equal(dfnet_client_call(F.op, CAMERA, "/dfnet.hw.usb.Device/GetDeviceDescriptor", NULL,
                                     0, &o, &reply, &len, &err),
                   DFNET_STATUS_OK);
  free(reply);
}

/* `bind why` on the device node, which was offered nothing, for the class driver whose
 * rules need the Interface offer: the trace says the offer is what is missing. */
static void test_bind_why_names_the_missing_offer(void **state) {
  (void)state;
  dfnet_client_bind_trace_list_t *list = NULL;
  dfnet_client_error_t err;
  assert_int_equal(dfnet_client_bind_why(F.op, CAMERA, "usb-class", NULL, &list, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(list->count, 1);
  assert_int_equal(list->items[0].result, DFNET_CLIENT_BIND_NO_MATCH);
  if (strstr(list->items[0].reason, "the node was not offered dfnet.hw.usb.Interface") == NULL)
    fail_msg("reason: %s", list->items[0].reason);
  dfnet_client_bind_trace_list_free(list);
  list = NULL;
  assert_int_equal(dfnet_client_bind_why(F.op, CHILD, "usb-class", NULL, &list, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(list->count, 1);
  assert_int_equal(list->items[0].result, DFNET_CLIENT_BIND_MATCH);
  dfnet_client_bind_trace_list_free(list);
}

/* Unplug: the device node and its subtree go; the class driver stopped first. */
static void test_unplug_bottom_up(void **state) {
  (void)state;
  umockdev_testbed_uevent(F.testbed, CAMERA_SYSFS, "remove");
  umockdev_testbed_remove_device(F.testbed, CAMERA_SYSFS);
  assert_true(fabric_wait_node(F.op, CAMERA, fabric_is_gone, NULL, WAIT_MS, NULL));
  assert_false(fabric_node(F.op, CHILD).found);
  char text[4096] = "";
  for (int i = 0; i < 100 && strstr(text, "\nstop ") == NULL; i++) {
    FILE *f = fopen(F.trace, "r");
    if (f != NULL) {
      size_t got = fread(text, 1, sizeof text - 1, f);
      text[got] = '\0';
      fclose(f);
    }
    fabric_sleep_ms(50);
  }
  assert_string_equal(text, "start " CHILD "\nprepare_stop " CHILD " serving:OK\nstop " CHILD
                            " serving:OK\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ptp_through_the_offer),
      cmocka_unit_test(test_interface_is_not_a_clients),
      cmocka_unit_test(test_bind_why_names_the_missing_offer),
      cmocka_unit_test(test_unplug_bottom_up),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
