/* An arena (lib/arena.h): allocations zeroed and aligned for any type, one larger than a
 * block served whole, strings and bytes copied, a refused size leaving the arena as it was,
 * and a free that empties it (and may run twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/arena.h"

static void allocations_are_zeroed_and_aligned(void **state) {
  (void)state;
  dfnet_arena_t a = {.block_min = 64};
  for (size_t size = 0; size < 40; size++) {
    unsigned char *p = dfnet_arena_alloc(&a, size);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    for (size_t i = 0; i < size; i++)
      assert_int_equal(p[i], 0);
    memset(p, 0xa5, size); /* the next allocation must not see it */
  }
  dfnet_arena_free(&a);
  assert_null(a.head);
  assert_int_equal(a.block_min, 64);
}

static void a_large_allocation_gets_a_block_of_its_own(void **state) {
  (void)state;
  dfnet_arena_t a = {0};
  char *small = dfnet_arena_alloc(&a, 8);
  char *big = dfnet_arena_alloc(&a, 3 * DFNET_ARENA_BLOCK_DEFAULT);
  assert_non_null(small);
  assert_non_null(big);
  memset(big, 1, 3 * DFNET_ARENA_BLOCK_DEFAULT);
  char *after = dfnet_arena_alloc(&a, 8); /* a fresh block once the big one is full */
  assert_non_null(after);
  assert_true(after < big || after >= big + 3 * DFNET_ARENA_BLOCK_DEFAULT);
  dfnet_arena_free(&a);
}

static void copies_strings_and_bytes(void **state) {
  (void)state;
  dfnet_arena_t a = {0};
  char *s = dfnet_arena_strndup(&a, "driver-host", 6);
  assert_string_equal(s, "driver");
  assert_string_equal(dfnet_arena_strndup(&a, "", 0), "");
  const uint8_t bytes[] = {0, 1, 2, 0xff};
  uint8_t *copy = dfnet_arena_memdup(&a, bytes, sizeof bytes);
  assert_memory_equal(copy, bytes, sizeof bytes);
  assert_non_null(dfnet_arena_memdup(&a, NULL, 0));
  dfnet_arena_free(&a);
}

static void an_impossible_size_is_refused(void **state) {
  (void)state;
  dfnet_arena_t a = {0};
  assert_non_null(dfnet_arena_alloc(&a, 1));
  void *head = a.head;
  assert_null(dfnet_arena_alloc(&a, SIZE_MAX));
  assert_null(dfnet_arena_alloc(&a, SIZE_MAX - 8));
  assert_null(dfnet_arena_strndup(&a, "x", SIZE_MAX));
  assert_ptr_equal(a.head, head);
  dfnet_arena_free(&a);
  dfnet_arena_free(&a); /* idempotent */
  assert_null(a.head);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(allocations_are_zeroed_and_aligned),
      cmocka_unit_test(a_large_allocation_gets_a_block_of_its_own),
      cmocka_unit_test(copies_strings_and_bytes),
      cmocka_unit_test(an_impossible_size_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
