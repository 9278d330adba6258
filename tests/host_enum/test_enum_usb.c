/* The USB enumerator under umockdev: devices recorded from real hardware
 * (the .umockdev files of tests/fixtures/usb/) are added to and removed from a libumockdev testbed
 * while the enumerator runs; libusb sees them through the emulated sysfs, /dev/bus/usb
 * and udev uevents. Run under umockdev-wrapper (LD_PRELOAD=libumockdev-preload.so).
 *
 * Waits below are hang guards (generous deadlines), not timing assertions. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <umockdev.h>

#include "bind/fuchsia_usb.h"
#include "dfnet/bind_keys.h"
#include "host/enum/enum.h"
#include "recorder.h"

#define WAIT_MS 10000

typedef struct usb_fixture {
  UMockdevTestbed *testbed;
  recorder_t rec;
  dfnet_enum_t *e;
} usb_fixture_t;

static void fixture_file(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, DFNET_FIXTURES_DIR "/usb/%s", name);
}

static void add_recording(usb_fixture_t *f, const char *name) {
  char path[PATH_MAX];
  GError *error = NULL;
  fixture_file(name, path, sizeof(path));
  if (!umockdev_testbed_add_from_file(f->testbed, path, &error)) {
    fail_msg("umockdev_testbed_add_from_file(%s): %s", path, error ? error->message : "?");
  }
}

/* Add only the first device record of a recording (records are separated by a blank
 * line; the first is the leaf device): a re-plug under a parent that stayed. */
static void add_first_record(usb_fixture_t *f, const char *name) {
  char path[PATH_MAX];
  gchar *text = NULL;
  GError *error = NULL;
  fixture_file(name, path, sizeof(path));
  assert_true(g_file_get_contents(path, &text, NULL, &error));
  char *blank = strstr(text, "\n\n");
  assert_non_null(blank);
  blank[1] = '\0';
  if (!umockdev_testbed_add_from_string(f->testbed, text, &error)) {
    fail_msg("umockdev_testbed_add_from_string: %s", error ? error->message : "?");
  }
  g_free(text);
}

/* Unplug: the kernel's "remove" uevent for the device, then its sysfs entry goes. */
static void unplug(usb_fixture_t *f, const char *sysfs_path) {
  umockdev_testbed_uevent(f->testbed, sysfs_path, "remove");
  umockdev_testbed_remove_device(f->testbed, sysfs_path);
}

static int setup(void **state) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
    fprintf(stderr,
            "test_enum_usb must run under umockdev-wrapper (LD_PRELOAD of "
            "libumockdev-preload.so)\n");
    return -1;
  }
  usb_fixture_t *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    return -1;
  }
  f->testbed = umockdev_testbed_new();
  if (!umockdev_in_mock_environment()) {
    fprintf(stderr, "the umockdev testbed is not active\n");
    g_object_unref(f->testbed);
    free(f);
    return -1;
  }
  recorder_init(&f->rec);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  usb_fixture_t *f = *state;
  dfnet_enum_destroy(f->e);
  g_object_unref(f->testbed);
  recorder_free(&f->rec);
  free(f);
  return 0;
}

static void start_usb(usb_fixture_t *f) {
  assert_int_equal(dfnet_enum_usb_new(&f->e), DFNET_STATUS_OK);
  assert_string_equal(dfnet_enum_name(f->e), "usb");
  dfnet_enum_sink_t sink = recorder_sink(&f->rec);
  assert_int_equal(dfnet_enum_start(f->e, &sink), DFNET_STATUS_OK);
}

static void check_device(const dfnet_v1_NodeAdd *node, uint32_t vid, uint32_t pid, uint32_t cls,
                         uint32_t sub, uint32_t proto, uint32_t bus, uint32_t address,
                         const char *port_path, const char *sysfs_name) {
  assert_non_null(node);
  assert_string_equal(node->parent, "usb");
  assert_false(node->owned);
  check_prop_int(node, DFNET_BIND_PROTOCOL, NULL, BIND_FUCHSIA_USB_BIND_PROTOCOL_DEVICE);
  check_prop_int(node, DFNET_BIND_PROTOCOL, NULL, 0x22); /* Fuchsia's fuchsia.usb value */
  check_prop_int(node, DFNET_BIND_USB_VID, NULL, vid);
  check_prop_int(node, DFNET_BIND_USB_PID, NULL, pid);
  check_prop_int(node, DFNET_BIND_USB_CLASS, NULL, cls);
  check_prop_int(node, DFNET_BIND_USB_SUBCLASS, NULL, sub);
  check_prop_int(node, DFNET_BIND_USB_PROTOCOL, NULL, proto);
  check_prop_int(node, 0, DFNET_ENUM_KEY_USB_BUS, bus);
  check_prop_int(node, 0, DFNET_ENUM_KEY_USB_ADDRESS, address);
  check_prop_str(node, 0, DFNET_ENUM_KEY_USB_PORT_PATH, port_path);
  check_prop_str(node, 0, DFNET_ENUM_KEY_USB_SYSFS_NAME, sysfs_name);
  char device_file[32];
  snprintf(device_file, sizeof device_file, "/dev/bus/usb/%03u/%03u", bus, address);
  check_prop_str(node, 0, DFNET_ENUM_KEY_USB_DEVICE_FILE, device_file);
  check_prop_absent(node, DFNET_BIND_USB_INTERFACE_NUMBER, NULL);
  check_prop_absent(node, 0, DFNET_ENUM_KEY_USB_CONFIGURATION);
  assert_int_equal(node->properties_count, 11);
  assert_int_equal(node->offers_count, 0);
}

/* The enumerator publishes device nodes only: a device's interfaces are children that the
 * driver bound to it adds (usb-device), never the enumerator's. */
static void check_no_interfaces(const recorder_t *rec) {
  for (size_t i = 0; i < rec->count; i++) {
    if (strstr(rec->events[i].moniker, ".ifc-") != NULL)
      fail_msg("the enumerator reported an interface node: %s", rec->events[i].moniker);
    if (rec->events[i].kind == REC_ADDED && strcmp(rec->events[i].moniker, "usb") != 0)
      assert_string_equal(rec->events[i].node->parent, "usb");
  }
}

/* Nothing plugged at start: only the bus node. Then the Holtek keyboard (04d9:1603, two
 * HID interfaces) behind its xHCI root hub is plugged in: both devices arrive from the
 * event thread, one node each. Then the keyboard is unplugged: one removal. */
static void test_keyboard_plug_unplug(void **state) {
  usb_fixture_t *f = *state;
  start_usb(f);
  assert_int_equal(recorder_count(&f->rec), 1);
  assert_string_equal(f->rec.events[0].moniker, "usb");
  assert_true(f->rec.events[0].node->owned);

  add_recording(f, "usbkbd.pcap.umockdev");
  /* bus + root hub + keyboard */
  if (!recorder_wait(&f->rec, 3, WAIT_MS)) {
    fail_msg("hot-plug: %zu events after %d ms, want 3", recorder_count(&f->rec), WAIT_MS);
  }
  assert_true(f->rec.from_other_thread); /* reported by the event thread */
  check_device(recorder_added(&f->rec, "usb.001_001"), 0x1d6b, 0x0002, 9, 0, 1, 1, 1, "1-0",
               "usb1");
  check_device(recorder_added(&f->rec, "usb.001_011"), 0x04d9, 0x1603, 0, 0, 0, 1, 11, "1-3",
               "1-3");
  /* nothing more comes: no interface nodes */
  assert_false(recorder_wait(&f->rec, 4, 300));
  check_no_interfaces(&f->rec);

  unplug(f, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3");
  if (!recorder_wait(&f->rec, 4, WAIT_MS)) {
    fail_msg("unplug: no event after %d ms", WAIT_MS);
  }
  assert_int_equal(f->rec.events[3].kind, REC_REMOVED);
  assert_string_equal(f->rec.events[3].moniker, "usb.001_011");
  assert_int_equal(recorder_count_of(&f->rec, REC_REMOVED, "usb.001_001"), 0);

  /* Plugged again (same address in the recording): published again. */
  add_first_record(f, "usbkbd.pcap.umockdev");
  if (!recorder_wait(&f->rec, 5, WAIT_MS)) {
    fail_msg("re-plug: %zu events after %d ms, want 5", recorder_count(&f->rec), WAIT_MS);
  }
  assert_int_equal(recorder_count_of(&f->rec, REC_ADDED, "usb.001_011"), 2);
  assert_int_equal(recorder_count_of(&f->rec, REC_ADDED, "usb.001_001"), 1);
  check_no_interfaces(&f->rec);

  dfnet_enum_stop(f->e);
  size_t after_stop = recorder_count(&f->rec);
  unplug(f, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3");
  assert_false(recorder_wait(&f->rec, after_stop + 1, 300)); /* nothing after stop */
}

/* The Canon camera tree is plugged before start: start() reports all five devices
 * synchronously with their port paths through two hubs, one node each. Unplugging the NEC
 * hub takes the camera behind it too. */
static void test_canon_tree(void **state) {
  usb_fixture_t *f = *state;
  add_recording(f, "canon-powershot-sx200.umockdev");
  start_usb(f);
  assert_false(f->rec.from_other_thread);
  check_device(recorder_added(&f->rec, "usb.001_001"), 0x1d6b, 0x0002, 9, 0, 0, 1, 1, "1-0",
               "usb1");
  check_device(recorder_added(&f->rec, "usb.001_002"), 0x8087, 0x0020, 9, 0, 1, 1, 2, "1-1", "1-1");
  check_device(recorder_added(&f->rec, "usb.001_003"), 0x17ef, 0x1005, 9, 0, 2, 1, 3, "1-1.5",
               "1-1.5");
  check_device(recorder_added(&f->rec, "usb.001_005"), 0x0409, 0x0058, 9, 0, 1, 1, 5, "1-1.5.2",
               "1-1.5.2");
  /* The camera: class defined per interface (its PTP interface is usb-device's child) */
  check_device(recorder_added(&f->rec, "usb.001_011"), 0x04a9, 0x31c0, 0, 0, 0, 1, 11, "1-1.5.2.3",
               "1-1.5.2.3");
  assert_int_equal(recorder_count(&f->rec), 1 + 5); /* bus, devices */
  check_no_interfaces(&f->rec);

  size_t before = recorder_count(&f->rec);
  unplug(f, "/sys/devices/pci0000:00/0000:00:1a.0/usb1/1-1/1-1.5/1-1.5.2/1-1.5.2.3");
  unplug(f, "/sys/devices/pci0000:00/0000:00:1a.0/usb1/1-1/1-1.5/1-1.5.2");
  if (!recorder_wait(&f->rec, before + 2, WAIT_MS)) {
    fail_msg("unplug: %zu events, want %zu", recorder_count(&f->rec), before + 2);
  }
  assert_int_equal(recorder_count_of(&f->rec, REC_REMOVED, "usb.001_011"), 1);
  assert_int_equal(recorder_count_of(&f->rec, REC_REMOVED, "usb.001_005"), 1);
  assert_int_equal(recorder_count(&f->rec), before + 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_keyboard_plug_unplug, setup, teardown),
      cmocka_unit_test_setup_teardown(test_canon_tree, setup, teardown),
  };
  return cmocka_run_group_tests_name("usb_umockdev", tests, NULL, NULL);
}
