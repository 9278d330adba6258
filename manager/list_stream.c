/* dfnet-manager: a list answered as a stream (docs/architecture.md "The wire"): one item
 * message a record, with the request's id, then a Status closing it (manager.h). */
#include <stdarg.h>

#include "manager/manager.h"

dfnet_envelope_t *list_stream__item(list_stream_t *ls, pb_size_t which) {
  return dfnet_envelope_reuse(ls->m->scratch, ls->id, which);
}

bool list_stream__send(list_stream_t *ls, dfnet_envelope_t *item) {
  if (ls->failed)
    return false;
  ls->failed = dfnet_transport_send(ls->m->transport, ls->sid, item, 0) != DFNET_STATUS_OK;
  ls->sent += !ls->failed;
  return !ls->failed;
}

void list_stream__end(list_stream_t *ls, const char *fmt, ...) {
  if (ls->failed) {
    sessions__reply_status(ls->m, ls->sid, ls->id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                           "list interrupted");
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  sessions__reply_vstatus(ls->m, ls->sid, ls->id, DFNET_STATUS_OK, fmt, ap);
  va_end(ap);
}
