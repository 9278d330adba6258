/* USB hot-plug through the USB stack (issue 6 "Targets", issue 18 item 3): a real
 * dfnet-manager and a real dfnet-host with USB on, whose libusb sees a umockdev testbed owned
 * by this test process (the agent and its driver hosts inherit UMOCKDEV_DIR and umockdev's
 * preload). The test plugs and unplugs a recorded USB keyboard (04d9:1603, two HID
 * interfaces) and watches the manager's node list:
 *
 *   plug    the enumerator publishes the device node (one node, no interface nodes);
 *           usb-device binds it and adds ifc-000 and ifc-001, offered dfnet.hw.usb.Interface;
 *           the test class driver usb_class (tests/drivers/, packaged here with rules for a
 *           HID interface offered the Interface, colocated with its parent) binds each;
 *   unplug  the device node and everything under it go, bottom-up: each class driver, when
 *           it stops, still sees usb-device serving it (its trace says "serving:OK"; the
 *           drivers share a driver host, so that is exact), i.e. the interface children's
 *           drivers stop before usb-device's.
 *
 * It prints the plug-to-visible, plug-to-bound and unplug-to-gone latencies (figures, not
 * assertions; the functional bound asserted is generous). Runs under umockdev-wrapper.
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

#define CYCLES 10
#define KEYBOARD_SYSFS "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"

/* usb_class on a HID interface child of usb-device */
#define HID_RULES                                                       \
  "using dfnet.hw.usb;\n"                                               \
  "using fuchsia.usb;\n"                                                \
  "fuchsia.BIND_PROTOCOL == fuchsia.usb.BIND_PROTOCOL.INTERFACE;\n"     \
  "dfnet.hw.usb.Interface == dfnet.hw.usb.Interface.DriverTransport;\n" \
  "fuchsia.BIND_USB_CLASS == fuchsia.usb.BIND_USB_CLASS.HID;\n"

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *client;
  UMockdevTestbed *testbed;
  char trace[300];
} F;

/* sandboxed (dfnet-host's default): usb-device asks for the right usb, which reaches the
 * testbed beneath $UMOCKDEV_DIR (docs/architecture.md "Confinement"), and the class driver's
 * trace is its manifest resource, which --allow-resource lets the agent open (set up below).
 * The testbed must be shared with the driver user too (setup, plug_keyboard): umockdev makes
 * its directory 0700, and a driver host, running as dfnet-driver, could not even pass it, so
 * the preload found no testbed and the bind of its netlink emulation's socket there failed
 * EACCES: libudev's monitor could not start, and libusb_init failed "Other error" (the file
 * modes' doing, not Landlock's). */
static const char *agent_extra[] = {"--allow-right", "usb", "--allow-resource", NULL, NULL};

static void recording(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, DFNET_FIXTURES_DIR "/usb/%s", name);
}

/* Plug the keyboard: its device record only (the root hub and controller stay), its files
 * open to the driver user (its device file read-write: the class drivers claim its
 * interfaces). The testbed sends the "add" uevent. */
static void plug_keyboard(void) {
  char path[512];
  gchar *text = NULL;
  GError *error = NULL;
  recording("usbkbd.pcap.umockdev", path, sizeof path);
  assert_true(g_file_get_contents(path, &text, NULL, &error));
  char *blank = strstr(text, "\n\n");
  assert_non_null(blank);
  blank[1] = '\0';
  if (!usb_testbed_add_shared(F.testbed, text))
    fail_msg("the keyboard could not be added to the testbed");
  g_free(text);
}

static void unplug_keyboard(void) {
  umockdev_testbed_uevent(F.testbed, KEYBOARD_SYSFS, "remove");
  umockdev_testbed_remove_device(F.testbed, KEYBOARD_SYSFS);
}

/* The keyboard's device node: a usb.<BBB>_<DDD> node with VID 04d9 (the enumerator
 * publishes nothing under it). */
static bool keyboard_visible(char *moniker, size_t size) {
  dfnet_client_node_list_t *list = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(F.client, "dev.lab-u.usb.", false, false, NULL, &list, &err) !=
      DFNET_STATUS_OK)
    return false;
  bool found = false;
  for (size_t i = 0; i < list->count && !found; i++) {
    const char *m = list->items[i].moniker;
    if (strcmp(m, "dev.lab-u.usb.001_011") == 0) {
      snprintf(moniker, size, "%s", m);
      found = true;
    }
  }
  dfnet_client_node_list_free(list);
  return found;
}

/* The trace file's text (empty when none). */
static void read_trace(char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen(F.trace, "r");
  if (f == NULL)
    return;
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  fclose(f);
}

/* Wait until the trace holds `line` (a whole line) `times` times. */
static bool trace_has(const char *line, int times, uint32_t ms) {
  static char text[1 << 16];
  uint64_t t0 = fabric_now_ms();
  do {
    read_trace(text, sizeof text);
    int n = 0;
    size_t len = strlen(line);
    for (const char *at = strstr(text, line); at != NULL; at = strstr(at + 1, line))
      n += (at == text || at[-1] == '\n') && at[len] == '\n';
    if (n >= times)
      return true;
    fabric_sleep_ms(20);
  } while (fabric_now_ms() - t0 < ms);
  return false;
}

static int setup(void **state) {
  (void)state;
  const char *preload = getenv("LD_PRELOAD");
  if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
    print_message("test_hotplug must run under umockdev-wrapper\n");
    return -1;
  }
  F.testbed = umockdev_testbed_new(); /* sets UMOCKDEV_DIR: the agent inherits it */
  char path[512];
  GError *error = NULL;
  /* The root hub and its controller; the keyboard comes later. */
  recording("usbkbd.pcap.umockdev", path, sizeof path);
  if (!umockdev_testbed_add_from_file(F.testbed, path, &error))
    return -1;
  umockdev_testbed_uevent(F.testbed, KEYBOARD_SYSFS, "remove");
  umockdev_testbed_remove_device(F.testbed, KEYBOARD_SYSFS);
  if (!usb_testbed_share(F.testbed)) /* the driver user's: see agent_extra */
    return -1;

  F.agent.name = "lab-u";
  F.agent.usb = true;
  F.agent.extra = agent_extra;
  if (fabric_init(&F.fab, "hotplug", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", "lab-u") != 0 || fabric_issue(&F.fab, "viewer", "watcher") != 0)
    return -1;
  /* usb-device as the build made it; usb_class on the HID interfaces, colocated */
  snprintf(F.trace, sizeof F.trace, "%s/usb-class.trace", F.fab.root);
  char drivers[300], extra[900];
  snprintf(drivers, sizeof drivers, "%s/drivers", F.fab.root);
  snprintf(extra, sizeof extra,
           "\"colocate\": \"true\", \"config\": {\"trace\": \"%s\"}, "
           "\"resources\": [{\"path\": \"%s\", \"access\": \"rw\"}]",
           F.trace, F.trace);
  agent_extra[3] = F.trace;
  if (fabric_sh("touch '%s'", F.trace) != 0 || /* the agent opens it; it creates nothing */
      fabric_sh("cp -r '%s/drivers/usb-device' '%s/usb-device'", F.fab.build, drivers) != 0 ||
      th_write_driver(drivers, "usb-class", HID_RULES, extra) != 0 ||
      fabric_sh("cp '%s/tests/drivers/usb_class.so' '%s/usb-class/driver/usb-class.so'",
                F.fab.build, drivers) != 0)
    return -1;
  const char *no_devices[] = {NULL};
  fabric_write_board(&F.fab, no_devices);
  if (fabric_start_manager(&F.fab, "127.0.0.1", 30) != 0)
    return -1;
  fabric_start_agent(&F.fab, &F.agent);
  F.client = fabric_connect(&F.fab, "watcher");
  if (F.client == NULL)
    return -1;
  return fabric_wait_node(F.client, "dev.lab-u.usb", fabric_is_found, NULL, 20000, NULL) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  dfnet_client_close(F.client);
  fabric_cleanup(&F.fab, &F.agent, 1);
  g_object_unref(F.testbed);
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The keyboard's interface children are bound, by the class driver, in usb-device's driver
 * host. */
static bool children_bound(const char *moniker, uint64_t ms) {
  char child[2][300];
  uint64_t t0 = fabric_now_ms();
  for (int i = 0; i < 2; i++) {
    snprintf(child[i], sizeof child[i], "%s.ifc-%03d", moniker, i);
    uint64_t spent = fabric_now_ms() - t0;
    if (spent >= ms ||
        !fabric_wait_node(F.client, child[i], fabric_is_bound, NULL, (uint32_t)(ms - spent), NULL))
      return false;
  }
  fabric_node_t parent = fabric_node(F.client, moniker);
  for (int i = 0; i < 2; i++)
    assert_int_equal(fabric_node(F.client, child[i]).driver_host_id, parent.driver_host_id);
  return true;
}

static void test_plug_unplug_reaches_the_manager(void **state) {
  (void)state;
  uint64_t plug[CYCLES], bound[CYCLES], unplug[CYCLES];
  char moniker[256] = "", line[400];
  for (int i = 0; i < CYCLES; i++) {
    uint64_t t0 = fabric_now_ms();
    plug_keyboard();
    while (!keyboard_visible(moniker, sizeof moniker) && fabric_now_ms() - t0 < 10000)
      fabric_sleep_ms(2);
    plug[i] = fabric_now_ms() - t0;
    assert_true(plug[i] < 10000);
    if (!children_bound(moniker, 20000))
      fail_msg("cycle %d: the keyboard's interface children were not bound; agent log: %s", i,
               F.agent.log);
    bound[i] = fabric_now_ms() - t0;
    /* the enumerator's node has no interface nodes of its own: only usb-device's two
     * children (and its class entry) are under it */
    dfnet_client_node_list_t *list = NULL;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.", moniker);
    assert_int_equal(dfnet_client_list_nodes(F.client, prefix, false, false, NULL, &list, NULL),
                     DFNET_STATUS_OK);
    for (size_t k = 0; k < list->count; k++) {
      const char *m = list->items[k].moniker + strlen(prefix);
      if (strcmp(m, "ifc-000") != 0 && strcmp(m, "ifc-001") != 0 && strcmp(m, "usb-device") != 0)
        fail_msg("unexpected node %s", list->items[k].moniker);
    }
    dfnet_client_node_list_free(list);

    t0 = fabric_now_ms();
    unplug_keyboard();
    while (fabric_node(F.client, moniker).found && fabric_now_ms() - t0 < 10000)
      fabric_sleep_ms(2);
    unplug[i] = fabric_now_ms() - t0;
    assert_true(unplug[i] < 10000);
    /* bottom-up: each class driver stopped while usb-device still served it */
    for (int c = 0; c < 2; c++) {
      snprintf(line, sizeof line, "stop %s.ifc-%03d serving:OK", moniker, c);
      if (!trace_has(line, i + 1, 5000)) {
        static char text[1 << 16];
        read_trace(text, sizeof text);
        fail_msg("cycle %d: no \"%s\" in the class drivers' trace:\n%s", i, line, text);
      }
    }
  }
  static char text[1 << 16];
  read_trace(text, sizeof text);
  assert_null(strstr(text, "UNAVAILABLE"));
  qsort(plug, CYCLES, sizeof plug[0], cmp_u64);
  qsort(bound, CYCLES, sizeof bound[0], cmp_u64);
  qsort(unplug, CYCLES, sizeof unplug[0], cmp_u64);
  print_message(
      "hotplug: %s plug -> visible at the manager: median %llu ms, max %llu ms; "
      "-> its interfaces bound: median %llu ms, max %llu ms; unplug -> gone: median "
      "%llu ms, max %llu ms (%d cycles; target < 1000 ms)\n",
      moniker, (unsigned long long)plug[CYCLES / 2], (unsigned long long)plug[CYCLES - 1],
      (unsigned long long)bound[CYCLES / 2], (unsigned long long)bound[CYCLES - 1],
      (unsigned long long)unplug[CYCLES / 2], (unsigned long long)unplug[CYCLES - 1], CYCLES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plug_unplug_reaches_the_manager),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
