/* include/dfnet/status.h: names, descriptions and parsing of the 17 gRPC codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "dfnet/status.h"

static void test_names_follow_grpc(void **state) {
  (void)state;
  assert_string_equal(dfnet_status_str(DFNET_STATUS_OK), "OK");
  assert_string_equal(dfnet_status_str(DFNET_STATUS_CANCELLED), "CANCELLED");
  assert_string_equal(dfnet_status_str(DFNET_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  assert_string_equal(dfnet_status_str(DFNET_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
  assert_int_equal(DFNET_STATUS_UNAVAILABLE, 14);
  assert_int_equal(DFNET_STATUS_UNAUTHENTICATED, 16);
}

static void test_every_code_round_trips(void **state) {
  (void)state;
  for (int i = 0; i < DFNET_STATUS_COUNT; i++) {
    dfnet_status_t parsed;
    assert_int_equal(dfnet_status_from_str(dfnet_status_str((dfnet_status_t)i), &parsed),
                     DFNET_STATUS_OK);
    assert_int_equal(parsed, i);
    assert_non_null(dfnet_status_description((dfnet_status_t)i));
    assert_true(strlen(dfnet_status_description((dfnet_status_t)i)) > 0);
  }
}

static void test_out_of_range(void **state) {
  (void)state;
  dfnet_status_t parsed = DFNET_STATUS_OK;
  assert_string_equal(dfnet_status_str((dfnet_status_t)17), "UNKNOWN_STATUS");
  assert_string_equal(dfnet_status_str((dfnet_status_t)-1), "UNKNOWN_STATUS");
  assert_int_equal(dfnet_status_from_str("NOPE", &parsed), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_status_from_str("ok", &parsed), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_status_from_str(NULL, &parsed), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(parsed, DFNET_STATUS_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_follow_grpc),
      cmocka_unit_test(test_every_code_round_trips),
      cmocka_unit_test(test_out_of_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
