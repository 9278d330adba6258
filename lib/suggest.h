/* "Did you mean": the known word nearest to a mistyped one, for every binary's unknown
 * commands and options.
 *
 * Distance is Levenshtein's (insertions, deletions, substitutions of one byte each); a
 * candidate within DFNET_SUGGEST_MAX_DISTANCE of the word is suggested, the nearest first
 * offered winning a tie. Usage, over whatever table a parser has:
 *
 *   dfnet_suggest_t s;
 *   dfnet_suggest_init(&s, "--lisen");
 *   for (each option o) dfnet_suggest_offer(&s, o->name);   // "--listen", ...
 *   const char *best = dfnet_suggest_best(&s);              // "--listen", or NULL
 *
 * Nothing is allocated or copied: the word and the candidates are borrowed and must live
 * until the last call. Each suggester belongs to one thread.
 */
#ifndef DFNET_LIB_SUGGEST_H
#define DFNET_LIB_SUGGEST_H

#include <stddef.h>

#define DFNET_SUGGEST_MAX_DISTANCE 2

typedef struct dfnet_suggest {
  const char *word;
  const char *best; /* NULL while none is near enough */
  size_t best_distance;
} dfnet_suggest_t;

void dfnet_suggest_init(dfnet_suggest_t *s, const char *word);

/* Consider one candidate (NULL is ignored). An exact match is not suggested: the caller
 * would have found it. */
void dfnet_suggest_offer(dfnet_suggest_t *s, const char *candidate);

/* The nearest candidate within the distance, or NULL. */
const char *dfnet_suggest_best(const dfnet_suggest_t *s);

/* Levenshtein's distance between a and b, computed up to `cap`: the result is exact when
 * it is at most cap, and cap + 1 otherwise (long strings are not compared in full). */
size_t dfnet_suggest_distance(const char *a, const char *b, size_t cap);

#endif /* DFNET_LIB_SUGGEST_H */
