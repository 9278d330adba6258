/* A growable array's growth step (lib/array.h): room kept, doubling from `first`, the
 * overflow refused with the array left as it was, and many appends in a row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "lib/array.h"

static void room_left_returns_the_same_array(void **state) {
  (void)state;
  size_t cap = 0;
  int *a = dfnet_array_grow(NULL, 0, &cap, sizeof *a, 4);
  assert_non_null(a);
  assert_int_equal(cap, 4);
  int *same = dfnet_array_grow(a, 3, &cap, sizeof *a, 4);
  assert_ptr_equal(same, a);
  assert_int_equal(cap, 4);
  free(a);
}

static void doubles_until_it_holds_what_is_asked(void **state) {
  (void)state;
  size_t cap = 0;
  char *b = dfnet_array_reserve(NULL, 1000, &cap, 1, 256);
  assert_non_null(b);
  assert_int_equal(cap, 1024);
  b = dfnet_array_reserve(b, 1025, &cap, 1, 256);
  assert_non_null(b);
  assert_int_equal(cap, 2048);
  free(b);
  cap = 0;
  b = dfnet_array_reserve(NULL, 3, &cap, 1, 0); /* no first: starts at one */
  assert_non_null(b);
  assert_int_equal(cap, 4);
  free(b);
}

static void an_overflow_is_refused_and_the_array_kept(void **state) {
  (void)state;
  size_t cap = 0;
  uint64_t *a = dfnet_array_grow(NULL, 0, &cap, sizeof *a, 8);
  assert_non_null(a);
  a[7] = 42;
  assert_null(dfnet_array_reserve(a, SIZE_MAX / 2 + 2, &cap, sizeof *a, 8));
  assert_null(dfnet_array_reserve(a, SIZE_MAX / sizeof *a + 1, &cap, sizeof *a, 8));
  assert_int_equal(cap, 8);
  assert_int_equal(a[7], 42); /* still valid, still the caller's */
  free(a);
}

static void many_appends(void **state) {
  (void)state;
  size_t cap = 0, count = 0;
  size_t *a = NULL;
  for (size_t i = 0; i < 100000; i++) {
    size_t *p = dfnet_array_grow(a, count, &cap, sizeof *p, 16);
    assert_non_null(p);
    a = p;
    a[count++] = i;
  }
  assert_true(cap >= count);
  for (size_t i = 0; i < count; i++)
    assert_int_equal(a[i], i);
  free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(room_left_returns_the_same_array),
      cmocka_unit_test(doubles_until_it_holds_what_is_asked),
      cmocka_unit_test(an_overflow_is_refused_and_the_array_kept),
      cmocka_unit_test(many_appends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
