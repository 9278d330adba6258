/* "Did you mean" (lib/suggest.h): Levenshtein's distance, bounded; the nearest candidate
 * within 2 wins, the first offered on a tie; nothing farther, and never the word itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/suggest.h"

typedef struct distance_case {
  const char *a, *b;
  size_t cap, want;
} distance_case_t;

static const distance_case_t distances[] = {
    {"", "", 2, 0},
    {"node", "node", 2, 0},
    {"nod", "node", 2, 1},         /* one deletion */
    {"ndoe", "node", 2, 2},        /* a swap is two substitutions */
    {"--exat", "--exact", 2, 1},   /* one insertion */
    {"--listn", "--listen", 2, 1}, /* one insertion */
    {"kitten", "sitting", 5, 3},   /* the textbook case, computed in full */
    {"kitten", "sitting", 2, 3},   /* over the cap: cap + 1 */
    {"a", "abcdefgh", 2, 3},       /* lengths alone are too far apart */
    {"frobnicate", "node", 2, 3},
};

static void test_distance(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof distances / sizeof distances[0]; i++) {
    const distance_case_t *c = &distances[i];
    size_t got = dfnet_suggest_distance(c->a, c->b, c->cap);
    if (got != c->want)
      fail_msg("distance(%s, %s, cap %zu) = %zu, want %zu", c->a, c->b, c->cap, got, c->want);
    assert_int_equal(dfnet_suggest_distance(c->b, c->a, c->cap), c->want); /* symmetric */
  }
  char long_word[300];
  memset(long_word, 'x', sizeof long_word - 1);
  long_word[sizeof long_word - 1] = '\0';
  assert_int_equal(dfnet_suggest_distance(long_word, long_word, 2), 3); /* not compared */
}

typedef struct suggest_case {
  const char *word;
  const char *candidates[6];
  const char *want; /* NULL: no suggestion */
} suggest_case_t;

static const suggest_case_t suggestions[] = {
    {"nod", {"host", "node", "driver", NULL}, "node"},
    {"shw", {"list", "show", "dump", NULL}, "show"},
    {"isue", {"init", "issue", NULL}, "issue"},
    {"--lib-dr", {"--output", "--include", "--lib-dir", NULL}, "--lib-dir"},
    {"frobnicate", {"host", "node", "driver", NULL}, NULL}, /* nothing near */
    {"node", {"node", NULL}, NULL},                         /* the word itself */
    {"lst", {"last", "list", NULL}, "last"},                /* a tie: the first */
    {"drver", {"drivers", "driver", NULL}, "driver"},       /* the nearest, not the first */
    {"x", {NULL}, NULL},
};

static void test_suggest(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof suggestions / sizeof suggestions[0]; i++) {
    const suggest_case_t *c = &suggestions[i];
    dfnet_suggest_t s;
    dfnet_suggest_init(&s, c->word);
    dfnet_suggest_offer(&s, NULL); /* ignored */
    for (size_t k = 0; c->candidates[k] != NULL; k++)
      dfnet_suggest_offer(&s, c->candidates[k]);
    const char *got = dfnet_suggest_best(&s);
    if ((got == NULL) != (c->want == NULL) || (got != NULL && strcmp(got, c->want) != 0))
      fail_msg("suggest(%s) = %s, want %s", c->word, got ? got : "(none)",
               c->want ? c->want : "(none)");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_distance),
      cmocka_unit_test(test_suggest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
