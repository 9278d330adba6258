/* The `dfnet usb descriptors` printer (clients/cli/usb_descriptors.c) on descriptors that
 * the recorded camera of tests/integration/test_cli_usb.c does not have: the recorded
 * keyboard's HID interfaces (tests/fixtures/usb/usbkbd.umockdev, 05f3:0007), an interface
 * association and class-specific descriptors lsusb does not know, and malformed bytes,
 * which are refused before anything is printed. A table of named cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"

/* The keyboard's device descriptor and configuration 1, from its recording's N: line. */
static const char keyboard_hex[] =
    "1201100100000008f305070020030000000109023b00020100a0200904000001030101000921000121012"
    "23f000705810308000809040100010300000009210001000122640007058203040008";

/* A device with an interface association, a class-specific interface descriptor and an
 * endpoint's class-specific descriptor; strings 1 (manufacturer), 2 (product and
 * configuration), 4 (the association), 5 (the interface). */
static const char iad_hex[] =
    "12010002ef0201400f0d0100000001020001" /* device: 0d0f:0001, class ef/02/01 */
    "09023d00020102800a"                   /* configuration 1, iConfiguration 2 */
    "080b00020e030004"                     /* interface association, iFunction 4 */
    "09040000010e010005"                   /* interface 0: video control, iInterface 5 */
    "0d240100011a00000000000000"           /* class-specific (VC header) */
    "0705830308000a"                       /* endpoint 0x83 interrupt */
    "062501020304"                         /* class-specific endpoint */
    "09040100000e020000";                  /* interface 1: video streaming */

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  for (; hex[0] && hex[1] && n < cap; hex += 2) {
    unsigned v;
    assert_int_equal(sscanf(hex, "%2x", &v), 1);
    out[n++] = (uint8_t)v;
  }
  return n;
}

/* A device from hex: 18 bytes of device descriptor, the rest one configuration. */
static cli_usb_device_t *device_of(const char *hex) {
  static uint8_t bytes[4096];
  size_t n = unhex(hex, bytes, sizeof bytes);
  assert_true(n > 18);
  cli_usb_device_t *d = calloc(1, sizeof *d);
  assert_non_null(d);
  memcpy(d->raw, bytes, 18);
  d->bus = 1;
  d->address = 9;
  snprintf(d->port_path, sizeof d->port_path, "1-1.5.4.2");
  d->configs[0].raw = malloc(n - 18);
  memcpy(d->configs[0].raw, bytes + 18, n - 18);
  d->configs[0].len = n - 18;
  d->configs[0].active = true;
  d->config_count = 1;
  return d;
}

static void device_free(cli_usb_device_t *d) {
  cli__usb_device_free(d);
  free(d);
}

/* The printer's text, NUL-terminated, into *text (the caller frees it). */
static void print_of(const cli_usb_device_t *d, char **text) {
  static size_t len;
  FILE *f = open_memstream(text, &len);
  assert_non_null(f);
  cli__usb_print(f, d);
  fclose(f);
}

static void expect_line(const char *out, const char *line) {
  size_t n = strlen(line);
  for (const char *at = strstr(out, line); at != NULL; at = strstr(at + 1, line))
    if ((at == out || at[-1] == '\n') && at[n] == '\n')
      return;
  fail_msg("no line \"%s\" in:\n%s", line, out);
}

static void test_hid_keyboard(void **state) {
  (void)state;
  cli_usb_device_t *d = device_of(keyboard_hex);
  char why[200];
  assert_int_equal(cli__usb_check(d, why, sizeof why), 0);
  uint8_t idx[255];
  assert_int_equal(cli__usb_string_indices(d, idx), 0);
  char *text = NULL;
  print_of(d, &text);
  const char *want[] = {
      "Bus 001 Device 009: ID 05f3:0007",
      "  bcdUSB               1.10",
      "  bcdDevice            3.20",
      "    bmAttributes         0xa0",
      "      (Bus Powered)",
      "      Remote Wakeup",
      "    MaxPower               64mA",
      "      bInterfaceClass         3 Human Interface Device",
      "      bInterfaceSubClass      1 Boot Interface Subclass",
      "      bInterfaceProtocol      1 Keyboard",
      "      bInterfaceSubClass      0 No Subclass",
      "      bInterfaceProtocol      0 None",
      "        HID Device Descriptor:",
      "          bcdHID               1.00",
      "          bCountryCode           33 US",
      "          bCountryCode            0 Not supported",
      "          bDescriptorType        34 Report",
      "          wDescriptorLength      63",
      "          wDescriptorLength     100",
      "         Report Descriptors: ",
      "        bEndpointAddress     0x82  EP 2 IN",
      "          Transfer Type            Interrupt",
      "        wMaxPacketSize     0x0004  1x 4 bytes",
      "        bInterval               8",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    expect_line(text, want[i]);
  /* the HID descriptor comes between its interface and the interface's endpoint */
  const char *ifc = strstr(text, "bInterfaceNumber        0");
  const char *hid = strstr(text, "HID Device Descriptor:");
  const char *ep = strstr(text, "bEndpointAddress     0x81");
  assert_true(ifc < hid && hid < ep);
  free(text);
  /* JSON: the class descriptor as the interface's extra */
  cJSON *doc = cli__usb_json(d, "dev.lab.usb.001_009");
  cJSON *ifcs = cJSON_GetObjectItem(
      cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "configurations"), 0), "interfaces");
  assert_int_equal(cJSON_GetArraySize(ifcs), 2);
  cJSON *extra = cJSON_GetObjectItem(cJSON_GetArrayItem(ifcs, 0), "extra");
  assert_int_equal(cJSON_GetArraySize(extra), 1);
  assert_string_equal(cJSON_GetArrayItem(extra, 0)->valuestring, "092100012101223f00");
  cJSON *ep1 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ifcs, 1), "endpoints"), 0);
  assert_int_equal(cJSON_GetObjectItem(ep1, "bEndpointAddress")->valueint, 0x82);
  assert_string_equal(cJSON_GetObjectItem(ep1, "transfer_type")->valuestring, "interrupt");
  assert_int_equal(
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "configurations"), 0),
                          "MaxPower_mA")
          ->valueint,
      64);
  cJSON_Delete(doc);
  device_free(d);
}

static void test_association_and_unknown(void **state) {
  (void)state;
  cli_usb_device_t *d = device_of(iad_hex);
  char why[200];
  assert_int_equal(cli__usb_check(d, why, sizeof why), 0);
  uint8_t idx[255];
  size_t n = cli__usb_string_indices(d, idx);
  assert_int_equal(n, 4);
  assert_memory_equal(idx, ((uint8_t[]){1, 2, 4, 5}), 4);
  d->strings[1] = strdup("dfnet");
  d->strings[2] = strdup("Test Camera");
  d->strings[5] = strdup("Camera Function");
  char *text = NULL;
  print_of(d, &text);
  const char *want[] = {
      "Bus 001 Device 009: ID 0d0f:0001 dfnet Test Camera",
      "  bDeviceClass          239 Miscellaneous Device",
      "  bDeviceSubClass         2 ?",
      "  bDeviceProtocol         1 Interface Association",
      "  iManufacturer           1 dfnet",
      "  iProduct                2 Test Camera",
      "    iConfiguration          2 Test Camera",
      "    Interface Association:",
      "      bFirstInterface         0",
      "      bInterfaceCount         2",
      "      bFunctionClass         14 Video",
      "      bFunctionSubClass       3 Video Interface Collection",
      "      iFunction               4 ",
      "      bInterfaceClass        14 Video",
      "      bInterfaceSubClass      1 Video Control",
      "      iInterface              5 Camera Function",
      "      ** UNRECOGNIZED:  0d 24 01 00 01 1a 00 00 00 00 00 00 00",
      "        ** UNRECOGNIZED:  06 25 01 02 03 04",
      "      bInterfaceNumber        1",
      "      bNumEndpoints           0",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    expect_line(text, want[i]);
  free(text);
  cJSON *doc = cli__usb_json(d, "x");
  cJSON *dev = cJSON_GetObjectItem(doc, "device");
  assert_string_equal(cJSON_GetObjectItem(dev, "manufacturer")->valuestring, "dfnet");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(dev, "serial")));
  cJSON *cfg = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "configurations"), 0);
  assert_string_equal(cJSON_GetObjectItem(cfg, "configuration")->valuestring, "Test Camera");
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(cfg, "extra"), 0)->valuestring,
                      "080b00020e030004");
  cJSON *ifc = cJSON_GetArrayItem(cJSON_GetObjectItem(cfg, "interfaces"), 0);
  cJSON *ep = cJSON_GetArrayItem(cJSON_GetObjectItem(ifc, "endpoints"), 0);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(ep, "extra"), 0)->valuestring,
                      "062501020304");
  cJSON_Delete(doc);
  device_free(d);
}

/* Bytes that are not descriptors: refused, with the reason. */
typedef struct bad {
  const char *what, *hex, *why;
} bad_t;

static const bad_t bads[] = {
    {"not a device descriptor", "1202000200000040a904c0310200010203010902090001010080fa",
     "the device descriptor is not one"},
    {"not a configuration first", "1201000200000040a904c031020001020301090400000000000000",
     "configuration 0 does not start with a configuration descriptor"},
    {"a zero bLength", "1201000200000040a904c0310200010203010902100001010080fa0004",
     "a descriptor at byte 9 overruns"},
    {"an overrun", "1201000200000040a904c0310200010203010902120001010080fa0904000000",
     "a descriptor at byte 9 overruns its 14 bytes"},
    {"a short endpoint", "1201000200000040a904c0310200010203010902100001010080fa060581020002",
     "descriptor type 5 at byte 9 is 6 bytes long"},
};

static void test_malformed(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    cli_usb_device_t *d = device_of(bads[i].hex);
    char why[200] = "";
    if (cli__usb_check(d, why, sizeof why) == 0 || strstr(why, bads[i].why) == NULL)
      fail_msg("%s: \"%s\"", bads[i].what, why);
    device_free(d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hid_keyboard),
      cmocka_unit_test(test_association_and_unknown),
      cmocka_unit_test(test_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
