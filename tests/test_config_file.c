/* The configuration file reader (lib/config_file.h; issue 24 item 3): a table of files and
 * what the read gives — the entries, or the status and the message naming the file, the
 * line and the key — plus the boolean values and the directory ($DFNET_CONFIG_DIR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config_file.h"

/* The keys of the cases: an option table's names (the dashes are skipped). */
static const dfnet_config_key_t k_keys[] = {
    {"--listen", false}, {"--host-grace", false}, {"--label", true}, {"--no-usb", false}};
#define KEY_COUNT (sizeof k_keys / sizeof k_keys[0])

typedef struct read_case {
  const char *name;
  const char *text;
  dfnet_status_t want;
  const char *entries; /* OK: "key=value@line;" for each entry, in order */
  const char *message; /* not OK: what follows "PATH" in the message */
} read_case_t;

static const read_case_t k_cases[] = {
    {"empty file", "", DFNET_STATUS_OK, "", NULL},
    {"comments and blank lines", "# a comment\n\n   # indented\n\t\nlisten = 127.0.0.1:0\n",
     DFNET_STATUS_OK, "listen=127.0.0.1:0@5;", NULL},
    {"spaces, tabs and CRLF trimmed", "  listen\t=\t 0.0.0.0:7443  \r\nhost-grace=5",
     DFNET_STATUS_OK, "listen=0.0.0.0:7443@1;host-grace=5@2;", NULL},
    {"a value runs to the end of its line", "listen = a # not a comment\n", DFNET_STATUS_OK,
     "listen=a # not a comment@1;", NULL},
    {"the first '=' splits", "label = lab=a\n", DFNET_STATUS_OK, "label=lab=a@1;", NULL},
    {"repeated key of a list, in order", "label = a=1\nlisten = x\nlabel = b=2\n", DFNET_STATUS_OK,
     "label=a=1@1;listen=x@2;label=b=2@3;", NULL},
    {"duplicate key of a scalar", "listen = a\n\nlisten = b\n", DFNET_STATUS_INVALID_ARGUMENT, NULL,
     ":3: 'listen' given twice (first on line 1)"},
    {"unknown key with a suggestion", "# x\nlsiten = 127.0.0.1:0\n", DFNET_STATUS_INVALID_ARGUMENT,
     NULL, ":2: unknown key 'lsiten' (did you mean 'listen'?)"},
    {"unknown key, nothing near", "colour = blue\n", DFNET_STATUS_INVALID_ARGUMENT, NULL,
     ":1: unknown key 'colour'"},
    {"a key written with dashes is unknown", "--listen = x\n", DFNET_STATUS_INVALID_ARGUMENT, NULL,
     ":1: unknown key '--listen' (did you mean 'listen'?)"},
    {"no '='", "listen 127.0.0.1:0\n", DFNET_STATUS_INVALID_ARGUMENT, NULL,
     ":1: expected 'key = value'"},
    {"no key", " = 1\n", DFNET_STATUS_INVALID_ARGUMENT, NULL, ":1: expected 'key = value'"},
    {"empty value", "listen =   \n", DFNET_STATUS_INVALID_ARGUMENT, NULL,
     ":1: 'listen' has an empty value"},
};

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-config-XXXXXX");
  return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/test.conf", g_dir);
  unlink(path);
  return rmdir(g_dir);
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void test_cases(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/test.conf", g_dir);
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const read_case_t *c = &k_cases[i];
    write_file(path, c->text, strlen(c->text));
    dfnet_config_file_t f;
    char err[512] = "";
    dfnet_status_t st = dfnet_config_file_read(path, true, k_keys, KEY_COUNT, &f, err, sizeof err);
    if (st != c->want)
      fail_msg("%s: status %d, want %d (%s)", c->name, (int)st, (int)c->want, err);
    if (st != DFNET_STATUS_OK) {
      char want[512];
      snprintf(want, sizeof want, "%s%s", path, c->message);
      if (strcmp(err, want) != 0)
        fail_msg("%s: message '%s', want '%s'", c->name, err, want);
      assert_null(f.entries); /* nothing kept */
      continue;
    }
    char got[512] = "";
    for (size_t e = 0; e < f.count; e++) {
      const dfnet_config_entry_t *en = &f.entries[e];
      assert_string_equal(en->name, k_keys[en->key].name + 2);
      size_t n = strlen(got);
      snprintf(got + n, sizeof got - n, "%s=%s@%u;", en->name, en->value, en->line);
    }
    if (strcmp(got, c->entries) != 0)
      fail_msg("%s: entries '%s', want '%s'", c->name, got, c->entries);
    assert_true(f.found);
    dfnet_config_file_free(&f);
    assert_null(f.text);
  }
}

/* The shapes a table cannot say: a NUL byte, a line over the bound, a missing file. */
static void test_bounds_and_missing(void **state) {
  (void)state;
  char path[128], err[512], want[512];
  dfnet_config_file_t f;
  snprintf(path, sizeof path, "%s/test.conf", g_dir);
  write_file(path, "listen = a\nlis\0ten = b\n", 23);
  assert_int_equal(dfnet_config_file_read(path, true, k_keys, KEY_COUNT, &f, err, sizeof err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  snprintf(want, sizeof want, "%s:2: a NUL byte", path);
  assert_string_equal(err, want);

  static char text[DFNET_CONFIG_LINE_MAX + 32];
  memset(text, 'x', sizeof text);
  memcpy(text, "# ok\nlisten = ", 14);
  write_file(path, text, sizeof text);
  assert_int_equal(dfnet_config_file_read(path, true, k_keys, KEY_COUNT, &f, err, sizeof err),
                   DFNET_STATUS_OUT_OF_RANGE);
  snprintf(want, sizeof want, "%s:2: line longer than %u bytes", path, DFNET_CONFIG_LINE_MAX);
  assert_string_equal(err, want);

  /* exactly the bound is fine */
  text[5 + DFNET_CONFIG_LINE_MAX] = '\n';
  write_file(path, text, 6 + DFNET_CONFIG_LINE_MAX);
  assert_int_equal(dfnet_config_file_read(path, true, k_keys, KEY_COUNT, &f, err, sizeof err),
                   DFNET_STATUS_OK);
  assert_int_equal(f.count, 1);
  assert_int_equal(strlen(f.entries[0].value), DFNET_CONFIG_LINE_MAX - 9);
  dfnet_config_file_free(&f);

  char missing[160];
  snprintf(missing, sizeof missing, "%s/none.conf", g_dir);
  assert_int_equal(dfnet_config_file_read(missing, false, k_keys, KEY_COUNT, &f, err, sizeof err),
                   DFNET_STATUS_OK);
  assert_false(f.found);
  assert_int_equal(f.count, 0);
  dfnet_config_file_free(&f);
  assert_int_equal(dfnet_config_file_read(missing, true, k_keys, KEY_COUNT, &f, err, sizeof err),
                   DFNET_STATUS_NOT_FOUND);
  assert_int_equal(strncmp(err, missing, strlen(missing)), 0);
  assert_non_null(strstr(err, "No such file or directory"));
  /* /dev/null: no settings (DFNET_CONFIG=/dev/null); another device is refused */
  assert_int_equal(
      dfnet_config_file_read("/dev/null", true, k_keys, KEY_COUNT, &f, err, sizeof err),
      DFNET_STATUS_OK);
  assert_true(f.found);
  assert_int_equal(f.count, 0);
  dfnet_config_file_free(&f);
  assert_int_equal(
      dfnet_config_file_read("/dev/zero", true, k_keys, KEY_COUNT, &f, err, sizeof err),
      DFNET_STATUS_INVALID_ARGUMENT);
  assert_string_equal(err, "/dev/zero: not a regular file");
}

static void test_bool(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int want; /* 1, 0, or -1: not a boolean */
  } cases[] = {{"true", 1},  {"yes", 1}, {"on", 1},  {"1", 1},      {"YES", 1},
               {"false", 0}, {"no", 0},  {"off", 0}, {"0", 0},      {"False", 0},
               {"", -1},     {"2", -1},  {"y", -1},  {"maybe", -1}, {"true ", -1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool v = false;
    bool ok = dfnet_config_bool(cases[i].text, &v);
    if (ok != (cases[i].want >= 0) || (ok && v != (cases[i].want == 1)))
      fail_msg("dfnet_config_bool('%s')", cases[i].text);
  }
}

static void test_path(void **state) {
  (void)state;
  char path[256];
  setenv("DFNET_CONFIG_DIR", "/tmp/somewhere", 1);
  dfnet_config_path(path, sizeof path, "manager.conf");
  assert_string_equal(path, "/tmp/somewhere/manager.conf");
  setenv("DFNET_CONFIG_DIR", "", 1);
  dfnet_config_path(path, sizeof path, "host.conf");
  assert_string_equal(path, DFNET_EXPECTED_CONFIG_DIR "/host.conf");
  unsetenv("DFNET_CONFIG_DIR");
  dfnet_config_path(path, sizeof path, "host.conf");
  assert_string_equal(path, DFNET_EXPECTED_CONFIG_DIR "/host.conf");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_bounds_and_missing),
      cmocka_unit_test(test_bool),
      cmocka_unit_test(test_path),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
