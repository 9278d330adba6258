/* "Did you mean" (suggest.h): Levenshtein's distance, two rows, bounded by the cap. */
#include "lib/suggest.h"

#include <string.h>

#define WORD_MAX 128 /* longer words are never near anything we know */

size_t dfnet_suggest_distance(const char *a, const char *b, size_t cap) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > WORD_MAX || lb > WORD_MAX)
    return cap + 1;
  if ((la > lb ? la - lb : lb - la) > cap)
    return cap + 1;
  size_t prev[WORD_MAX + 1], cur[WORD_MAX + 1];
  for (size_t j = 0; j <= lb; j++)
    prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    size_t row_min = cur[0];
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      if (cur[j] < row_min)
        row_min = cur[j];
    }
    if (row_min > cap)
      return cap + 1;
    memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
  }
  return prev[lb] <= cap ? prev[lb] : cap + 1;
}

void dfnet_suggest_init(dfnet_suggest_t *s, const char *word) {
  s->word = word;
  s->best = NULL;
  s->best_distance = DFNET_SUGGEST_MAX_DISTANCE + 1;
}

void dfnet_suggest_offer(dfnet_suggest_t *s, const char *candidate) {
  if (candidate == NULL || s->word == NULL || strcmp(candidate, s->word) == 0)
    return;
  size_t d = dfnet_suggest_distance(s->word, candidate, DFNET_SUGGEST_MAX_DISTANCE);
  if (d < s->best_distance) {
    s->best = candidate;
    s->best_distance = d;
  }
}

const char *dfnet_suggest_best(const dfnet_suggest_t *s) { return s->best; }
