/* The CLI's own parsing and formatting, linked (no process): `--property KEY=VALUE` as
 * `node add-test` reads it (cli__property_parse: every key and value form, the wire's
 * bounds, each mistake's message), checked against `dfnet-bindc match`'s reading of the
 * same text (the same property or the same mistake), and sizes for people (cli__size_str,
 * `driver host list`'s RSS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "dfnet/bind.h"
#include "lib/property.h"

typedef struct good {
  const char *arg;
  const char *str_key; /* NULL: int_key */
  uint32_t int_key;
  dfnet_client_value_type_t type;
  uint32_t int_value;
  bool bool_value;
  const char *str_value;
} good_t;

/* dfnet-bindc match reads `arg` as the CLI does: the same property, or the same mistake
 * (why_cli: the CLI's message, or NULL when the CLI accepted it as *cli). */
static void bindc_reads_alike(const char *arg, const dfnet_client_property_t *cli,
                              const char *why_cli) {
  char text[512], err[400] = "";
  snprintf(text, sizeof text, "%s", arg);
  char *args[] = {text};
  dfnet_bind_property_t bp;
  dfnet_status_t st = dfnet_bind_parse_property_args(args, 1, &bp, 1, err, sizeof err);
  if (why_cli != NULL) {
    if (st != DFNET_STATUS_INVALID_ARGUMENT || strcmp(err, why_cli) != 0)
      fail_msg("%.60s: bindc %s \"%s\", the CLI \"%s\"", arg, dfnet_status_str(st), err, why_cli);
    return;
  }
  if (st != DFNET_STATUS_OK)
    fail_msg("%.60s: bindc refused it: %s", arg, err);
  dfnet_client_property_t p;
  dfnet_property_to_client(&bp, &p);
  assert_int_equal(p.type, cli->type);
  assert_int_equal(p.int_key, cli->int_key);
  assert_int_equal(p.int_value, cli->int_value);
  assert_int_equal(p.bool_value, cli->bool_value);
  assert_true((p.str_key == NULL) == (cli->str_key == NULL));
  if (p.str_key != NULL)
    assert_string_equal(p.str_key, cli->str_key);
  assert_true((p.str_value == NULL) == (cli->str_value == NULL));
  if (p.str_value != NULL)
    assert_string_equal(p.str_value, cli->str_value);
}

static void test_property_forms(void **state) {
  (void)state;
  static const good_t good[] = {
      {"fuchsia.BIND_PROTOCOL=85", NULL, 1, DFNET_CLIENT_VALUE_INT, 85, false, NULL},
      {"fuchsia.BIND_PCI_VID=0x1af4", NULL, 0x100, DFNET_CLIENT_VALUE_INT, 0x1af4, false, NULL},
      {"fuchsia.BIND_USB_CLASS=0", NULL, 0x202, DFNET_CLIENT_VALUE_INT, 0, false, NULL},
      {"0x0300=4294967295", NULL, 0x300, DFNET_CLIENT_VALUE_INT, 4294967295u, false, NULL},
      {"vendor.ok=true", "vendor.ok", 0, DFNET_CLIENT_VALUE_BOOL, 0, true, NULL},
      {"vendor.ok=false", "vendor.ok", 0, DFNET_CLIENT_VALUE_BOOL, 0, false, NULL},
      {"vendor.name=Red Hat", "vendor.name", 0, DFNET_CLIENT_VALUE_STRING, 0, false, "Red Hat"},
      {"vendor.name=\"true\"", "vendor.name", 0, DFNET_CLIENT_VALUE_STRING, 0, false, "true"},
      {"vendor.name=\"\"", "vendor.name", 0, DFNET_CLIENT_VALUE_STRING, 0, false, ""},
      {"vendor.v=\"1.2.3\"", "vendor.v", 0, DFNET_CLIENT_VALUE_STRING, 0, false, "1.2.3"},
      {"vendor.role=gpio.in", "vendor.role", 0, DFNET_CLIENT_VALUE_STRING, 0, false, "gpio.in"},
      {"k=a=b", "k", 0, DFNET_CLIENT_VALUE_STRING, 0, false, "a=b"},
      {"fuchsia.usb.BIND_PROTOCOL=fuchsia.usb.BIND_PROTOCOL.DEVICE", "fuchsia.usb.BIND_PROTOCOL", 0,
       DFNET_CLIENT_VALUE_ENUM, 0, false, "fuchsia.usb.BIND_PROTOCOL.DEVICE"},
      {"a.Key=lib.KEY.VALUE", "a.Key", 0, DFNET_CLIENT_VALUE_ENUM, 0, false, "lib.KEY.VALUE"},
      {"a.Key=lib.KEY.9VALUE", "a.Key", 0, DFNET_CLIENT_VALUE_STRING, 0, false, "lib.KEY.9VALUE"},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    const good_t *g = &good[i];
    cli_property_arg_t a;
    char why[400] = "";
    if (!cli__property_parse(g->arg, &a, why, sizeof why))
      fail_msg("%s: refused: %s", g->arg, why);
    const dfnet_client_property_t *p = &a.prop;
    bindc_reads_alike(g->arg, p, NULL);
    if (g->str_key == NULL) {
      assert_null(p->str_key);
      assert_int_equal(p->int_key, g->int_key);
    } else {
      assert_non_null(p->str_key);
      assert_string_equal(p->str_key, g->str_key);
    }
    if (p->type != g->type)
      fail_msg("%s: type %d, wanted %d", g->arg, p->type, g->type);
    assert_int_equal(p->int_value, g->int_value);
    assert_int_equal(p->bool_value, g->bool_value);
    if (g->str_value == NULL)
      assert_null(p->str_value);
    else
      assert_string_equal(p->str_value, g->str_value);
  }
}

static void test_property_mistakes(void **state) {
  (void)state;
  char long_key[200], long_value[300], too_long[420];
  memset(long_key, 'k', 128);
  snprintf(long_key + 128, sizeof long_key - 128, "=1");
  snprintf(long_value, sizeof long_value, "k=%0256d", 0);
  long_value[2] = 'x'; /* a string, not a number */
  memset(too_long, 'k', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0';
  too_long[5] = '=';
  const struct {
    const char *arg, *says;
  } bad[] = {
      {"novalue", "'novalue' is not KEY=VALUE"},
      {"=1", "'=1' is not KEY=VALUE"},
      {"k=", "'k=' has no value (an empty string is written \"\")"},
      {"fuchsia.BIND_PCI_VDI=1",
       "fuchsia.BIND_PCI_VDI is not a deprecated key of fuchsia (did you mean "
       "'fuchsia.BIND_PCI_VID'?)"},
      {"fuchsia.BIND_NOTHING_LIKE_IT=1",
       "fuchsia.BIND_NOTHING_LIKE_IT is not a deprecated key of "
       "fuchsia"},
      {"12x=1", "key '12x' is not a number in 0..4294967295 (an integer key)"},
      {"ve ndor=1", "key 've ndor' has a blank or control character"},
      {"k=12x",
       "value '12x' is not a number in 0..4294967295 (decimal or 0x hex; a string "
       "starting with a digit is quoted: \"12x\")"},
      {"k=-1", NULL}, /* a string: "-1" */
      {"k=\"open", "value \"open: a quoted string ends with '\"'"},
      {"fuchsia.BIND_PROTOCOL=fuchsia.platform.BIND_PROTOCOL.DEVICE",
       "fuchsia.BIND_PROTOCOL is an integer key: its value is a number, not "
       "'fuchsia.platform.BIND_PROTOCOL.DEVICE'"},
      {"1=true", "1 is an integer key"},
      {long_key, "the key is 128 bytes, at most 127"},
      {long_value, "the value is 256 bytes, at most 255"},
      {too_long, "is too long"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cli_property_arg_t a;
    char why[400] = "";
    bool ok = cli__property_parse(bad[i].arg, &a, why, sizeof why);
    bindc_reads_alike(bad[i].arg, &a.prop, ok ? NULL : why);
    if (bad[i].says == NULL) {
      assert_true(ok);
      continue;
    }
    if (ok || strstr(why, bad[i].says) == NULL)
      fail_msg("%.60s: %s \"%s\", wanted \"%s\"", bad[i].arg, ok ? "accepted" : "refused", why,
               bad[i].says);
    if (strncmp(bad[i].arg, "fuchsia.BIND_NOTHING", 20) == 0)
      assert_null(strstr(why, "did you mean"));
  }
}

static void test_size_str(void **state) {
  (void)state;
  static const struct {
    uint64_t bytes;
    const char *text;
  } sizes[] = {{0, "0 B"},
               {1023, "1023 B"},
               {1024, "1.0 KiB"},
               {512000, "500.0 KiB"},
               {2202010, "2.1 MiB"},
               {1610612736ull, "1.5 GiB"},
               {5ull << 40, "5.0 TiB"},
               {5ull << 50, "5120.0 TiB"}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char buf[32];
    cli__size_str(sizes[i].bytes, buf, sizeof buf);
    assert_string_equal(buf, sizes[i].text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_property_forms),
      cmocka_unit_test(test_property_mistakes),
      cmocka_unit_test(test_size_str),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
