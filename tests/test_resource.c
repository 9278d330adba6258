/* A manifest's "resources" (lib/resource.h) and how the agent opens them
 * (host/supervisor/resources.h): the "optional" member, a table of named cases for the
 * parser, and an optional resource that is missing or not allowed, left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/supervisor/resources.h"
#include "lib/resource.h"

typedef struct parse_case {
  const char *name;
  const char *program;
  dfnet_status_t want;
  size_t count;
  bool optional[2];
  const char *why;
} parse_case_t;

static const parse_case_t k_cases[] = {
    {"path and object",
     "{\"resources\": [\"/dev/a\", {\"path\": \"/dev/b\", \"optional\": true}]}",
     DFNET_STATUS_OK,
     2,
     {false, true},
     NULL},
    {"optional false",
     "{\"resources\": [{\"path\": \"/dev/b\", \"optional\": false}]}",
     DFNET_STATUS_OK,
     1,
     {false, false},
     NULL},
    {"optional not a bool",
     "{\"resources\": [{\"path\": \"/dev/b\", \"optional\": \"yes\"}]}",
     DFNET_STATUS_INVALID_ARGUMENT,
     0,
     {false, false},
     "program.resources[0].optional: must be true or false"},
    {"unknown member",
     "{\"resources\": [{\"path\": \"/dev/b\", \"optinal\": true}]}",
     DFNET_STATUS_INVALID_ARGUMENT,
     0,
     {false, false},
     "program.resources[0].optinal: unknown field (path, access, optional)"},
};

static void test_parse(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const parse_case_t *c = &k_cases[i];
    dfnet_manifest_resource_t out[DFNET_MANIFEST_RESOURCES_MAX];
    size_t count = 0;
    char why[256] = "";
    dfnet_status_t st = dfnet_manifest_resources_parse(c->program, strlen(c->program), out, &count,
                                                       why, sizeof why);
    if (st != c->want)
      fail_msg("case \"%s\": %s (%s)", c->name, dfnet_status_str(st), why);
    if (st != DFNET_STATUS_OK) {
      assert_string_equal(why, c->why);
      continue;
    }
    assert_int_equal(count, c->count);
    for (size_t k = 0; k < count; k++)
      assert_int_equal(out[k].optional, c->optional[k]);
  }
}

/* Opened as the agent opens them: an optional resource missing or not allowed is left out;
 * a required one fails the start. */
static void test_open_optional(void **state) {
  (void)state;
  const char *program =
      "{\"resources\": [{\"path\": \"/nonexistent/x\", \"optional\": true}, "
      "{\"path\": \"/dev/null\", \"optional\": true}, \"/dev/zero\"]}";
  const char *const allow_all[] = {"/nonexistent/x", "/dev/null", "/dev/zero"};
  dfnet_resource_source_t src = {.program_json = program,
                                 .program_len = strlen(program),
                                 .allow = allow_all,
                                 .allow_count = 3};
  dfnet_resource_set_t set;
  char why[256] = "";
  assert_int_equal(dfnet_resources_open(&src, &set, why, sizeof why), DFNET_STATUS_OK);
  assert_int_equal(set.count, 2);
  assert_string_equal(set.items[0].name, "/dev/null");
  assert_string_equal(set.items[1].name, "/dev/zero");
  dfnet_resources_close(&set);
  /* /dev/null not allowed: left out; /dev/zero not allowed: refused */
  const char *const allow_zero[] = {"/dev/zero"};
  src.allow = allow_zero;
  src.allow_count = 1;
  assert_int_equal(dfnet_resources_open(&src, &set, why, sizeof why), DFNET_STATUS_OK);
  assert_int_equal(set.count, 1);
  assert_string_equal(set.items[0].name, "/dev/zero");
  dfnet_resources_close(&set);
  src.allow_count = 0;
  assert_int_equal(dfnet_resources_open(&src, &set, why, sizeof why),
                   DFNET_STATUS_PERMISSION_DENIED);
  assert_string_equal(
      why, "resource /dev/zero is not allowed on this host (dfnet-host --allow-resource)");
  assert_int_equal(set.count, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_open_optional),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
