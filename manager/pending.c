/* dfnet-manager: records of work that outlives a loop turn (timers, requests in flight).
 * They refer to nodes, drivers and hosts by id (docs/style.md 7); timers are linked so that
 * shutdown can cancel and free them. */
#include <stdlib.h>
#include <utlist.h>

#include "manager/manager.h"

mgr_pending_t *pending__new(mgr_t *m, int kind) {
  mgr_pending_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->mgr = m;
  p->kind = kind;
  return p;
}

/* Off m->pending when on it (a DL member's prev is never NULL). */
static void unlink_pending(mgr_pending_t *p) {
  if (p->prev != NULL) {
    DL_DELETE(p->mgr->pending, p);
    p->next = p->prev = NULL;
  }
}

void pending__free(mgr_pending_t *p) {
  if (p == NULL)
    return;
  unlink_pending(p);
  free(p);
}

dfnet_status_t pending__timer(mgr_pending_t *p, uint32_t delay_ms, dfnet_work_fn fn) {
  mgr_t *m = p->mgr;
  dfnet_status_t st = dfnet_transport_timer_start(m->transport, delay_ms, fn, p, &p->timer);
  if (st != DFNET_STATUS_OK)
    return st;
  DL_PREPEND(m->pending, p);
  return DFNET_STATUS_OK;
}

void pending__cancel_all(mgr_t *m) {
  while (m->pending != NULL) {
    mgr_pending_t *p = m->pending;
    dfnet_transport_timer_cancel(m->transport, p->timer);
    pending__free(p);
  }
}
