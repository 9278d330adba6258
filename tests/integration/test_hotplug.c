/* USB hot-plug to node visible at the manager (issue 6 "Targets"): a real dfnet-manager and
 * a real dfnet-host with USB on, whose libusb sees a umockdev testbed owned by this test
 * process (the agent inherits UMOCKDEV_DIR and umockdev's preload). The test plugs and
 * unplugs a recorded USB keyboard (04d9:1603, two interfaces) and watches the manager's
 * node list: the device node and its interface children appear, then go. It prints the
 * plug-to-visible and unplug-to-gone latencies (figures, not assertions; the functional
 * bound asserted is generous). Runs under umockdev-wrapper.
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

#include "fabric.h"

#define CYCLES 10
#define KEYBOARD_SYSFS "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"

static struct {
  fabric_t fab;
  fabric_agent_t agent;
  dfnet_client_t *client;
  UMockdevTestbed *testbed;
} F;

static void recording(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, DFNET_FIXTURES_DIR "/usb/%s", name);
}

/* Plug the keyboard: its device record only (the root hub and controller stay). The
 * testbed sends the "add" uevent. */
static void plug_keyboard(void) {
  char path[512];
  gchar *text = NULL;
  GError *error = NULL;
  recording("usbkbd.pcap.umockdev", path, sizeof path);
  assert_true(g_file_get_contents(path, &text, NULL, &error));
  char *blank = strstr(text, "\n\n");
  assert_non_null(blank);
  blank[1] = '\0';
  if (!umockdev_testbed_add_from_string(F.testbed, text, &error))
    fail_msg("umockdev_testbed_add_from_string: %s", error ? error->message : "?");
  g_free(text);
}

static void unplug_keyboard(void) {
  umockdev_testbed_uevent(F.testbed, KEYBOARD_SYSFS, "remove");
  umockdev_testbed_remove_device(F.testbed, KEYBOARD_SYSFS);
}

/* The keyboard's node: a usb.<BBB>_<DDD> node with two ifc-* children. */
static bool keyboard_visible(char *moniker, size_t size) {
  dfnet_client_node_list_t *list = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(F.client, "dev.lab-u.usb.", false, false, NULL, &list, &err) !=
      DFNET_STATUS_OK)
    return false;
  bool found = false;
  for (size_t i = 0; i < list->count && !found; i++) {
    const char *m = list->items[i].moniker;
    const char *ifc = strstr(m, ".ifc-001");
    if (ifc != NULL && ifc[strlen(".ifc-001")] == '\0') {
      snprintf(moniker, size, "%.*s", (int)(ifc - m), m);
      found = true;
    }
  }
  dfnet_client_node_list_free(list);
  return found;
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

  F.agent.name = "lab-u";
  F.agent.usb = true;
  if (fabric_init(&F.fab, "hotplug", NULL, NULL) != 0 ||
      fabric_issue(&F.fab, "host", "lab-u") != 0 || fabric_issue(&F.fab, "viewer", "watcher") != 0)
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

static void test_plug_unplug_reaches_the_manager(void **state) {
  (void)state;
  uint64_t plug[CYCLES], unplug[CYCLES];
  char moniker[256] = "";
  for (int i = 0; i < CYCLES; i++) {
    uint64_t t0 = fabric_now_ms();
    plug_keyboard();
    while (!keyboard_visible(moniker, sizeof moniker) && fabric_now_ms() - t0 < 10000)
      fabric_sleep_ms(2);
    plug[i] = fabric_now_ms() - t0;
    assert_true(plug[i] < 10000);
    assert_true(fabric_node(F.client, moniker).found);

    t0 = fabric_now_ms();
    unplug_keyboard();
    while (fabric_node(F.client, moniker).found && fabric_now_ms() - t0 < 10000)
      fabric_sleep_ms(2);
    unplug[i] = fabric_now_ms() - t0;
    assert_true(unplug[i] < 10000);
  }
  qsort(plug, CYCLES, sizeof plug[0], cmp_u64);
  qsort(unplug, CYCLES, sizeof unplug[0], cmp_u64);
  print_message(
      "hotplug: %s plug -> visible at the manager: median %llu ms, max %llu ms; "
      "unplug -> gone: median %llu ms, max %llu ms (%d cycles; target < 1000 ms)\n",
      moniker, (unsigned long long)plug[CYCLES / 2], (unsigned long long)plug[CYCLES - 1],
      (unsigned long long)unplug[CYCLES / 2], (unsigned long long)unplug[CYCLES - 1], CYCLES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plug_unplug_reaches_the_manager),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
