/* lib/driver_rights.h: a manifest's "rights" and "limits", the right names and their
 * formatting; one table of named cases for the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/driver_rights.h"

typedef struct rights_case {
  const char *name;
  const char *program; /* NULL: no program */
  dfnet_status_t want;
  uint32_t rights;
  uint32_t memory_mb;
  uint32_t open_files;
  const char *why; /* the whole reason, when want is an error */
} rights_case_t;

#define MB DFNET_DRIVER_MEMORY_MB_DEFAULT
#define FILES DFNET_DRIVER_OPEN_FILES_DEFAULT
#define BAD DFNET_STATUS_INVALID_ARGUMENT

static const rights_case_t k_cases[] = {
    {"no program", NULL, DFNET_STATUS_OK, 0, MB, FILES, NULL},
    {"empty program", "{}", DFNET_STATUS_OK, 0, MB, FILES, NULL},
    {"other keys only", "{\"runner\":\"driver\",\"config\":{\"rights\":1}}", DFNET_STATUS_OK, 0, MB,
     FILES, NULL},
    {"every right", "{\"rights\":[\"usb\",\"inet\",\"exec\"]}", DFNET_STATUS_OK, DFNET_RIGHTS_ALL,
     MB, FILES, NULL},
    {"no right", "{\"rights\":[]}", DFNET_STATUS_OK, 0, MB, FILES, NULL},
    {"limits", "{\"limits\":{\"memory_mb\":16,\"open_files\":65536}}", DFNET_STATUS_OK, 0, 16,
     65536, NULL},
    {"one limit", "{\"rights\":[\"exec\"],\"limits\":{\"open_files\":64}}", DFNET_STATUS_OK,
     DFNET_RIGHT_EXEC, MB, 64, NULL},
    {"not an object", "[\"inet\"]", BAD, 0, MB, FILES,
     "program: not a JSON object (or no memory to parse it)"},
    {"not JSON", "{\"rights\":", BAD, 0, MB, FILES,
     "program: not a JSON object (or no memory to parse it)"},
    {"rights not an array", "{\"rights\":\"inet\"}", BAD, 0, MB, FILES,
     "program.rights: must be an array of strings (inet, exec, usb)"},
    {"right not a string", "{\"rights\":[\"inet\",7]}", BAD, 0, MB, FILES,
     "program.rights[1]: must be a string (inet, exec, usb)"},
    {"unknown right, suggested", "{\"rights\":[\"inte\"]}", BAD, 0, MB, FILES,
     "program.rights[0]: unknown right \"inte\" (did you mean \"inet\"?) (rights: inet, exec, "
     "usb)"},
    {"unknown right, far", "{\"rights\":[\"root\"]}", BAD, 0, MB, FILES,
     "program.rights[0]: unknown right \"root\" (rights: inet, exec, usb)"},
    {"right twice", "{\"rights\":[\"usb\",\"exec\",\"usb\"]}", BAD, 0, MB, FILES,
     "program.rights[2]: \"usb\" is given twice"},
    {"limits not an object", "{\"limits\":[16]}", BAD, 0, MB, FILES,
     "program.limits: must be an object ({\"memory_mb\": N, \"open_files\": N})"},
    {"unknown limit, suggested", "{\"limits\":{\"memory_md\":64}}", BAD, 0, MB, FILES,
     "program.limits.memory_md: unknown limit (did you mean \"memory_mb\"?) (limits: "
     "memory_mb, open_files)"},
    {"unknown limit, far", "{\"limits\":{\"cpu\":1}}", BAD, 0, MB, FILES,
     "program.limits.cpu: unknown limit (limits: memory_mb, open_files)"},
    {"limit a string", "{\"limits\":{\"memory_mb\":\"64\"}}", BAD, 0, MB, FILES,
     "program.limits.memory_mb: \"64\" is not an integer (16..65536)"},
    {"limit a fraction", "{\"limits\":{\"open_files\":64.5}}", BAD, 0, MB, FILES,
     "program.limits.open_files: 64.5 is not an integer (16..65536)"},
    {"limit too small", "{\"limits\":{\"memory_mb\":15}}", BAD, 0, MB, FILES,
     "program.limits.memory_mb: 15 is out of range (16..65536)"},
    {"limit too large", "{\"limits\":{\"open_files\":65537}}", BAD, 0, MB, FILES,
     "program.limits.open_files: 65537 is out of range (16..65536)"},
    {"limit negative", "{\"limits\":{\"open_files\":-1}}", BAD, 0, MB, FILES,
     "program.limits.open_files: -1 is out of range (16..65536)"},
};

static void test_parse_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const rights_case_t *c = &k_cases[i];
    dfnet_driver_rights_t r;
    char why[256] = "";
    size_t len = c->program != NULL ? strlen(c->program) : 0;
    dfnet_status_t st = dfnet_driver_rights_parse(c->program, len, &r, why, sizeof why);
    if (st != c->want)
      fail_msg("case \"%s\": %s, want %s (%s)", c->name, dfnet_status_str(st),
               dfnet_status_str(c->want), why);
    if (c->want != DFNET_STATUS_OK) {
      if (strcmp(why, c->why) != 0)
        fail_msg("case \"%s\": why\n  \"%s\"\nwant\n  \"%s\"", c->name, why, c->why);
      /* the defaults, on error too */
      assert_int_equal(r.rights, 0);
      assert_int_equal(r.memory_mb, MB);
      assert_int_equal(r.open_files, FILES);
      continue;
    }
    if (r.rights != c->rights || r.memory_mb != c->memory_mb || r.open_files != c->open_files)
      fail_msg("case \"%s\": rights %#x memory %u files %u", c->name, r.rights, r.memory_mb,
               r.open_files);
  }
}

/* The program is read within len bytes: what follows is not looked at. */
static void test_parse_length(void **state) {
  (void)state;
  const char text[] = "{\"rights\":[\"inet\"]}{garbage";
  dfnet_driver_rights_t r;
  assert_int_equal(dfnet_driver_rights_parse(text, 19, &r, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(r.rights, DFNET_RIGHT_INET);
  assert_int_equal(dfnet_driver_rights_parse(text, 0, &r, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(r.rights, 0);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(dfnet_right_name(DFNET_RIGHT_INET), "inet");
  assert_string_equal(dfnet_right_name(DFNET_RIGHT_EXEC), "exec");
  assert_string_equal(dfnet_right_name(DFNET_RIGHT_USB), "usb");
  assert_null(dfnet_right_name((dfnet_right_t)0));
  assert_null(dfnet_right_name((dfnet_right_t)(DFNET_RIGHT_INET | DFNET_RIGHT_USB)));
  assert_null(dfnet_right_name((dfnet_right_t)(1u << 5)));
  dfnet_right_t r;
  char why[128] = "";
  assert_int_equal(dfnet_right_parse("usb", &r, why, sizeof why), DFNET_STATUS_OK);
  assert_int_equal(r, DFNET_RIGHT_USB);
  assert_int_equal(dfnet_right_parse("ecex", &r, why, sizeof why), DFNET_STATUS_INVALID_ARGUMENT);
  assert_string_equal(why,
                      "unknown right \"ecex\" (did you mean \"exec\"?) (rights: inet, exec, usb)");
  assert_int_equal(dfnet_right_parse("", &r, why, sizeof why), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_right_parse(NULL, &r, NULL, 0), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_right_parse("INET", &r, why, sizeof why), DFNET_STATUS_INVALID_ARGUMENT);
}

static void test_format(void **state) {
  (void)state;
  char buf[32];
  assert_int_equal(dfnet_rights_format(0, buf, sizeof buf), 4);
  assert_string_equal(buf, "none");
  assert_int_equal(dfnet_rights_format(DFNET_RIGHT_USB | DFNET_RIGHT_INET, buf, sizeof buf), 8);
  assert_string_equal(buf, "inet,usb");
  assert_int_equal(dfnet_rights_format(DFNET_RIGHTS_ALL, buf, sizeof buf), 13);
  assert_string_equal(buf, "inet,exec,usb");
  assert_int_equal(dfnet_rights_format(1u << 9, buf, sizeof buf), 4); /* no right: none */
  assert_string_equal(buf, "none");
  /* cut to fit, the full length returned; cap 0 writes nothing */
  assert_int_equal(dfnet_rights_format(DFNET_RIGHTS_ALL, buf, 6), 13);
  assert_string_equal(buf, "inet,");
  buf[0] = 'x';
  assert_int_equal(dfnet_rights_format(DFNET_RIGHT_EXEC, buf, 0), 4);
  assert_int_equal(buf[0], 'x');
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_table),
      cmocka_unit_test(test_parse_length),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
