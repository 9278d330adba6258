/* The board-file enumerator: the example file (tests/host_enum/board-example.json) with
 * every property checked, and a table of malformed files, each error naming the file,
 * the JSON path and the problem while the good devices still load. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bind/fuchsia_platform.h"
#include "dfnet/bind_keys.h"
#include "host/enum/enum.h"
#include "recorder.h"

static void run_board(const char *file, recorder_t *rec, dfnet_status_t want, dfnet_enum_t **out) {
  dfnet_enum_t *e = NULL;
  assert_int_equal(dfnet_enum_board_new(file, &e), DFNET_STATUS_OK);
  assert_string_equal(dfnet_enum_name(e), "board");
  dfnet_enum_sink_t sink = recorder_sink(rec);
  assert_int_equal(dfnet_enum_start(e, &sink), want);
  *out = e;
}

static void check_platform_ids(const dfnet_v1_NodeAdd *node, uint32_t vid, uint32_t pid,
                               uint32_t did) {
  assert_non_null(node);
  assert_string_equal(node->parent, "platform");
  check_prop_int(node, DFNET_BIND_PROTOCOL, NULL, BIND_FUCHSIA_PLATFORM_BIND_PROTOCOL_DEVICE);
  check_prop_int(node, DFNET_BIND_PROTOCOL, NULL, 85); /* Fuchsia's fuchsia.platform value */
  check_prop_int(node, DFNET_BIND_PLATFORM_DEV_VID, NULL, vid);
  check_prop_int(node, DFNET_BIND_PLATFORM_DEV_PID, NULL, pid);
  check_prop_int(node, DFNET_BIND_PLATFORM_DEV_DID, NULL, did);
  check_prop_str(node, 0, DFNET_ENUM_KEY_PLATFORM_NAME, node->name);
}

static void test_example_file(void **state) {
  (void)state;
  recorder_t rec;
  recorder_init(&rec);
  dfnet_enum_t *e = NULL;
  run_board(DFNET_ENUM_TEST_DIR "/board-example.json", &rec, DFNET_STATUS_OK, &e);
  assert_int_equal(dfnet_enum_board_error_count(e), 0);
  assert_int_equal(recorder_count(&rec), 6);
  assert_string_equal(rec.events[0].moniker, "platform");
  assert_true(rec.events[0].node->owned);
  assert_false(rec.from_other_thread);

  const dfnet_v1_NodeAdd *uart = recorder_added(&rec, "platform.uart0");
  check_platform_ids(uart, 0, 0, 0x1c);
  check_prop_str(uart, 0, DFNET_ENUM_KEY_PLATFORM_TTY, "/dev/ttyS0");
  check_prop_int(uart, DFNET_BIND_PLATFORM_DEV_INSTANCE_ID, NULL, 0);
  check_prop_enum(uart, "fuchsia.serial.CLASS", "fuchsia.serial.CLASS.CONSOLE");
  check_prop_str(uart, 0, "dfnet.board.LABEL", "console");
  check_prop_bool(uart, "dfnet.board.CONSOLE", true);
  assert_int_equal(uart->properties_count, 10);

  const dfnet_v1_NodeAdd *led = recorder_added(&rec, "platform.status-led");
  check_platform_ids(led, 1, 2, 3);
  check_prop_str(led, 0, DFNET_ENUM_KEY_PLATFORM_GPIO_CHIP, "/dev/gpiochip0");
  check_prop_int(led, 0, DFNET_ENUM_KEY_PLATFORM_GPIO_LINE, 17);
  assert_int_equal(led->properties_count, 7);

  const dfnet_v1_NodeAdd *eeprom = recorder_added(&rec, "platform.eeprom");
  check_platform_ids(eeprom, 0, 0, 0xffffffffu);
  check_prop_str(eeprom, 0, DFNET_ENUM_KEY_PLATFORM_I2C_BUS, "/dev/i2c-1");
  check_prop_int(eeprom, 0, DFNET_ENUM_KEY_PLATFORM_I2C_ADDRESS, 80);
  check_prop_str(eeprom, 0, DFNET_ENUM_KEY_PLATFORM_PATH, "/sys/bus/nvmem/devices/1-00500/nvmem");

  const dfnet_v1_NodeAdd *power = recorder_added(&rec, "platform.dut-power");
  check_prop_str(power, 0, BIND_DFNET_PLATFORM_POWER_BACKEND, "tasmota");
  check_prop_str(power, 0, BIND_DFNET_PLATFORM_POWER_ADDRESS, "http://10.0.0.5");
  check_prop_int(power, 0, BIND_DFNET_PLATFORM_POWER_INDEX, 2);

  const dfnet_v1_NodeAdd *sdmux = recorder_added(&rec, "platform.sd-mux");
  check_platform_ids(sdmux, 0, 0, 6);
  check_prop_str(sdmux, 0, DFNET_ENUM_KEY_PLATFORM_BLOCK,
                 "/dev/disk/by-id/usb-LinuxAut_sdmux_HS-SD_MMC_000000001-0:0");
  check_prop_bool(sdmux, DFNET_ENUM_KEY_PLATFORM_HAS_BLOCK, true);
  assert_int_equal(sdmux->properties_count, 7);
  dfnet_enum_destroy(e);
  recorder_free(&rec);
}

/* ---- malformed files --------------------------------------------------------------- */

typedef struct board_case {
  const char *name;
  const char *json;         /* NULL: the file does not exist */
  dfnet_status_t status;    /* of start() */
  const char *published[4]; /* device names that load */
  const char *errors[24];   /* "<json path>: <problem start>", in order */
} board_case_t;

#define DEV(n) "{\"name\": \"" n "\", \"vid\": 1, \"pid\": 2, \"did\": 3"

static const board_case_t cases[] = {
    {"missing_file", NULL, DFNET_STATUS_NOT_FOUND, {NULL}, {"$: cannot open: "}},
    {"empty_file",
     "",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$ (line 1, column 1): not valid JSON: the text ends too early"}},
    {"truncated",
     "{ \"devices\": [ ",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$ (line 1, column 16): not valid JSON: the text ends too early"}},
    {"syntax_error_line_3",
     "{\n  \"devices\": [\n    {\"name\": \"a\",, }\n  ]\n}",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$ (line 3, column 19): not valid JSON: syntax error near \" }\""}},
    {"trailing_garbage",
     "{\"devices\": []} x",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$ (line 1, column 17): not valid JSON: syntax error near \"x\""}},
    {"top_is_array",
     "[1, 2]",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$: expected an object {\"devices\": [...]}, got an array"}},
    {"no_devices",
     "{\"board\": \"x\"}",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$: missing \"devices\""}},
    {"devices_not_array",
     "{\"devices\": {}}",
     DFNET_STATUS_INVALID_ARGUMENT,
     {NULL},
     {"$.devices: expected an array, got an object"}},
    {"no_device_is_fine", "{\"devices\": []}", DFNET_STATUS_OK, {NULL}, {NULL}},
    {"bad_devices_skipped_good_ones_load",
     "{\"bord\": \"typo\", \"board\": 7, \"devices\": [\n" DEV(
         "a") "},\n"                                                          /* 0 */
              "{\"name\": \"b\", \"vid\": \"zz\", \"pid\": 0, \"did\": 0},\n" /* 1 */
     DEV("c.d") "},\n"                                                        /* 2 */
                "{\"name\": \"e\", \"vid\": 0, \"pid\": 0},\n"                /* 3 */
                "{\"name\": \"f\", \"vid\": -1, \"pid\": 0, \"did\": 0},\n"   /* 4 */
     DEV("g") ", \"pdi\": 3},\n"                                              /* 5 */
     DEV("h") ", \"resources\": {\"tty\": \"/dev/ttyUSB0\"}},\n"              /* 6 */
     DEV("a") "},\n"                                                          /* 7 */
     DEV("i") ", \"resources\": {\"gpio\": {\"chip\": \"/dev/gpiochip0\", \"line\": "
              "\"x\"}}},\n" DEV("j") ", \"resources\": {\"uart\": \"/dev/ttyS1\"}},\n" /* 9 */
     DEV("k") ", \"properties\": [{\"key\": \"fuchsia.BIND_NOPE\", \"type\": \"int\", "
              "\"value\": 1}]},\n" /* 10 */
     DEV("l") ", \"properties\": [{\"key\": \"dfnet.x\", \"type\": \"float\", \"value\": "
              "1}]},\n" DEV(
                  "m") ", \"properties\": [{\"key\": \"dfnet.x\", \"type\": \"int\", \"value\": "
                       "1}, "
                       "{\"key\": \"dfnet.x\", \"type\": \"int\", \"value\": 2}]},\n" /* 12 */
     DEV("n") ", \"properties\": [{\"key\": \"fuchsia.BIND_PLATFORM_DEV_VID\", "
              "\"type\": \"int\", \"value\": 3}]},\n"     /* 13 */
     DEV("o") ", \"resources\": {\"tty\": \"ttyS0\"}},\n" /* 14 */
     DEV("p") ", \"properties\": [{\"key\": \"fuchsia.serial.CLASS\", \"type\": \"enum\", "
              "\"value\": \"CONSOLE\"}]},\n" /* 15 */
     DEV("q") ", \"properties\": [{\"key\": \"dfnet.y\", \"type\": \"bool\", "
              "\"value\": \"yes\"}]},\n"                                   /* 16 */
              "42,\n"                                                      /* 17 */
              "{\"name\": \"r\", \"vid\": 1.5, \"pid\": 0, \"did\": 0},\n" /* 18 */
     DEV("s") ", \"properties\": [{\"key\": \"fuchsia.BIND_PCI_VID\", \"type\": \"string\", "
              "\"value\": \"x\"}]},\n"                       /* 19 */
     DEV("t") ", \"properties\": {\"key\": \"dfnet.x\"}},\n" /* 20 */
              "{\"vid\": 1, \"pid\": 2, \"did\": 3}\n"       /* 21 */
              "]}",
     DFNET_STATUS_OK,
     {"a", "h", NULL},
     {
         "$.devices[1].vid: expected an integer 0..4294967295, got the string \"zz\"",
         "$.devices[2].name: a device name is 1..128 characters",
         "$.devices[3]: missing \"did\"",
         "$.devices[4].vid: expected an integer 0..4294967295, got -1",
         "$.devices[5].pdi: unknown key",
         "$.devices[7].name: duplicate device name \"a\"",
         "$.devices[8].resources.gpio.line: expected an integer 0..4294967295, got the string",
         "$.devices[9].resources.uart: unknown resource",
         "$.devices[10].properties[0].key: fuchsia.BIND_NOPE is not a deprecated key",
         "$.devices[11].properties[0].type: unknown type \"float\"",
         "$.devices[12].properties[1]: the key dfnet.x is already set",
         "$.devices[13].properties[0]: the key fuchsia.BIND_PLATFORM_DEV_VID is already set",
         "$.devices[14].resources.tty: expected an absolute path",
         "$.devices[15].properties[0].value: an enum value is fully qualified",
         "$.devices[16].properties[0].value: expected true or false, got a string",
         "$.devices[17]: expected an object, got a number",
         "$.devices[18].vid: expected an integer 0..4294967295, got 1.5",
         "$.devices[19].properties[0].type: fuchsia.BIND_PCI_VID is an integer key",
         "$.devices[20].properties: expected an array, got an object",
         "$.devices[21]: missing \"name\"",
     }},
};

/* The "power" resource (drivers/power): two good ones, and each mistake a board file can make. */
static const board_case_t power_case = {
    "power_resources",
    "{\"devices\": [\n" DEV("a") ", \"resources\": {\"power\": {\"backend\": \"shelly-gen2\", "
                                  "\"address\": \"10.0.0.6\", \"index\": 1}}},\n" /* 0 */
    DEV("b") ", \"resources\": {\"power\": {\"backend\": \"command\", \"on\": \"relay 3 on\", "
             "\"off\": \"relay 3 off\"}}},\n"                                  /* 1 */
    DEV("c") ", \"resources\": {\"power\": {\"backend\": \"tasmotta\"}}},\n"     /* 2 */
    DEV("d") ", \"resources\": {\"power\": {\"backend\": \"tasmota\"}}},\n"      /* 3 */
    DEV("e") ", \"resources\": {\"power\": {\"backend\": \"tasmota\", \"address\": "
             "\"10.0.0.5\", \"on\": \"x\"}}},\n"                                 /* 4 */
    DEV("f") ", \"resources\": {\"power\": {\"backend\": \"command\", \"on\": \"x\"}}},\n" /* 5 */
    DEV("g") ", \"resources\": {\"power\": \"http://10.0.0.5\"}},\n"               /* 6 */
    DEV("h") ", \"resources\": {\"power\": {\"address\": \"10.0.0.5\"}}},\n"       /* 7 */
    DEV("i") ", \"resources\": {\"power\": {\"backend\": \"tasmota\", \"address\": "
             "\"10.0.0.5\", \"index\": 300}}}\n"                                   /* 8 */
    "]}",
    DFNET_STATUS_OK,
    {"a", "b", NULL},
    {
        "$.devices[2].resources.power.backend: unknown backend \"tasmotta\"",
        "$.devices[3].resources.power: missing \"address\"",
        "$.devices[4].resources.power.on: unknown key (an HTTP backend takes address and index)",
        "$.devices[5].resources.power: missing \"off\"",
        "$.devices[6].resources.power: expected an object {\"backend\", ...}, got a string",
        "$.devices[7].resources.power: missing \"backend\"",
        "$.devices[8].resources.power.index: expected an integer 0..255, got 300",
    }};

/* The "block" resource (drivers/block): a device file or a regular file standing for one,
 * always an absolute path. */
static const board_case_t block_case = {
    "block_resources",
    "{\"devices\": [\n" DEV("a") ", \"resources\": {\"block\": \"/dev/sda\"}},\n" /* 0 */
    DEV("b") ", \"resources\": {\"block\": \"/var/lib/lab/sd.img\"}},\n"           /* 1 */
    DEV("c") ", \"resources\": {\"block\": \"sda\"}},\n"                           /* 2 */
    DEV("d") ", \"resources\": {\"block\": 8}},\n"                                   /* 3 */
    DEV("e") ", \"resources\": {\"block\": {\"path\": \"/dev/sdb\"}}},\n"           /* 4 */
    DEV("f") ", \"resources\": {\"blk\": \"/dev/sdc\"}}\n"                           /* 5 */
    "]}",
    DFNET_STATUS_OK,
    {"a", "b", NULL},
    {
        "$.devices[2].resources.block: expected an absolute path of at most 255 bytes, got "
        "\"sda\"",
        "$.devices[3].resources.block: expected a string, got a number",
        "$.devices[4].resources.block: expected a string, got an object",
        "$.devices[5].resources.blk: unknown resource (tty, gpio, i2c, spi, path, power or block)",
    }};

/* Top-level problems are reported before the devices' (they are checked first). */
static const char *const top_level_errors[] = {
    "$.bord: unknown key (board, devices); ignored",
    "$.board: expected a string, got a number; ignored",
};

static char tmp_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/dfnet-enum-board-XXXXXX");
  return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void run_case(const board_case_t *c) {
  char file[PATH_MAX + 64];
  snprintf(file, sizeof(file), "%s/%s.json", tmp_dir, c->name);
  if (c->json != NULL) {
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(c->json, f);
    fclose(f);
  }
  recorder_t rec;
  recorder_init(&rec);
  dfnet_enum_t *e = NULL;
  run_board(file, &rec, c->status, &e);

  /* The expected errors, in order: "<file>: <path>: <problem...>". */
  size_t want = 0;
  const char *expected[32];
  if (c->status == DFNET_STATUS_OK && strstr(c->name, "bad_devices") != NULL) {
    expected[want++] = top_level_errors[0];
    expected[want++] = top_level_errors[1];
  }
  for (size_t i = 0; i < 24 && c->errors[i] != NULL; i++) {
    expected[want++] = c->errors[i];
  }
  size_t got = dfnet_enum_board_error_count(e);
  for (size_t i = 0; i < got; i++) {
    print_message("  %s\n", dfnet_enum_board_error(e, i));
  }
  if (got != want) {
    fail_msg("case %s: %zu errors, want %zu", c->name, got, want);
  }
  for (size_t i = 0; i < want; i++) {
    char line[PATH_MAX + 1024];
    snprintf(line, sizeof(line), "%s: %s", file, expected[i]);
    const char *err = dfnet_enum_board_error(e, i);
    if (strncmp(err, line, strlen(line)) != 0) {
      fail_msg("case %s: error %zu is\n  %s\nwant it to start with\n  %s", c->name, i, err, line);
    }
  }
  assert_null(dfnet_enum_board_error(e, got));

  /* What loaded: the bus node and the good devices, nothing else. */
  size_t published = 0;
  for (size_t i = 0; i < 4 && c->published[i] != NULL; i++) {
    char moniker[160];
    snprintf(moniker, sizeof(moniker), "platform.%s", c->published[i]);
    if (recorder_count_of(&rec, REC_ADDED, moniker) != 1) {
      fail_msg("case %s: %s not published exactly once", c->name, moniker);
    }
    check_platform_ids(recorder_added(&rec, moniker), 1, 2, 3);
    published++;
  }
  size_t bus = c->status == DFNET_STATUS_OK ? 1 : 0;
  assert_int_equal(recorder_count(&rec), bus + published);
  dfnet_enum_destroy(e);
  recorder_free(&rec);
}

static void test_malformed_files(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    print_message("case %s\n", cases[i].name);
    run_case(&cases[i]);
  }
  run_case(&power_case);
  run_case(&block_case);
}

/* The file is read by start(), not new(); a directory or an empty path are refused. */
static void test_paths(void **state) {
  (void)state;
  dfnet_enum_t *e = NULL;
  assert_int_equal(dfnet_enum_board_new("", &e), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_enum_board_new(NULL, &e), DFNET_STATUS_INVALID_ARGUMENT);
  recorder_t rec;
  recorder_init(&rec);
  run_board(tmp_dir, &rec, DFNET_STATUS_INVALID_ARGUMENT, &e); /* a directory */
  assert_int_equal(dfnet_enum_board_error_count(e), 1);
  assert_non_null(strstr(dfnet_enum_board_error(e, 0), ": $: cannot read: "));
  assert_int_equal(recorder_count(&rec), 0);
  dfnet_enum_destroy(e);

  /* A file over 1 MiB. */
  char big[PATH_MAX + 16];
  snprintf(big, sizeof(big), "%s/big.json", tmp_dir);
  FILE *f = fopen(big, "w");
  assert_non_null(f);
  fputs("{\"devices\": [], \"board\": \"", f);
  for (int i = 0; i < 1100 * 1024; i++) {
    fputc('x', f);
  }
  fputs("\"}", f);
  fclose(f);
  run_board(big, &rec, DFNET_STATUS_RESOURCE_EXHAUSTED, &e);
  assert_non_null(strstr(dfnet_enum_board_error(e, 0), ": $: larger than 1048576 bytes"));
  dfnet_enum_destroy(e);
  assert_int_equal(recorder_count(&rec), 0);
  recorder_free(&rec);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example_file),
      cmocka_unit_test_setup_teardown(test_malformed_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
  };
  return cmocka_run_group_tests_name("board", tests, NULL, NULL);
}
