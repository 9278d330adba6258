/* fairq: pending work served round-robin by caller (fairq.h). */
#include "fairq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

struct fairq_lane {
  fairq_lane_t *next, *prev; /* the ring */
  char caller[65];
  void *head, *tail;
};

static void **link_of(const fairq_t *q, void *item) {
  return (void **)((char *)item + q->next_offset);
}

void fairq__init(fairq_t *q, size_t next_offset) {
  memset(q, 0, sizeof *q);
  q->next_offset = next_offset;
}

static fairq_lane_t *lane_find(const fairq_t *q, const char *caller) {
  fairq_lane_t *l;
  CDL_FOREACH(q->lanes, l) {
    if (strncmp(l->caller, caller, sizeof l->caller - 1) == 0)
      return l;
  }
  return NULL;
}

bool fairq__push(fairq_t *q, const char *caller, void *item) {
  if (caller == NULL)
    caller = "";
  fairq_lane_t *l = lane_find(q, caller);
  if (l == NULL) {
    if ((l = calloc(1, sizeof *l)) == NULL)
      return false;
    snprintf(l->caller, sizeof l->caller, "%s", caller);
    CDL_APPEND(q->lanes, l); /* served last in this round: just before the current lane */
  }
  *link_of(q, item) = NULL;
  if (l->tail != NULL)
    *link_of(q, l->tail) = item;
  else
    l->head = item;
  l->tail = item;
  q->count++;
  return true;
}

void *fairq__peek(const fairq_t *q) { return q->lanes != NULL ? q->lanes->head : NULL; }

void *fairq__pop(fairq_t *q) {
  fairq_lane_t *l = q->lanes;
  if (l == NULL)
    return NULL;
  void *item = l->head;
  l->head = *link_of(q, item);
  if (l->head == NULL)
    l->tail = NULL;
  q->count--;
  if (l->head != NULL) {
    q->lanes = l->next; /* the next caller is served next */
  } else {
    CDL_DELETE(q->lanes, l); /* the lane after it (if any) is served next */
    free(l);
  }
  return item;
}

void fairq__destroy(fairq_t *q) {
  while (q->lanes != NULL) {
    fairq_lane_t *l = q->lanes;
    CDL_DELETE(q->lanes, l);
    free(l);
  }
  q->count = 0;
}
