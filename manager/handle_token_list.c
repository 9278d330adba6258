/* dfnet-manager: TokenList from a client, role admin (proto/dfnet/v1/trust.proto; issue 23
 * item 1): one TokenInfo per join token, by creation, never a secret; closed by Status OK
 * "N tokens". An item that does not fit the send queue ends it RESOURCE_EXHAUSTED. */
#include "manager/cert.h"

typedef struct list_ctx {
  mgr_t *m;
  dfnet_session_id_t sid;
  uint64_t id;
  size_t count;
} list_ctx_t;

static dfnet_status_t send_one(void *arg, const store_token_t *t) {
  list_ctx_t *x = arg;
  dfnet_envelope_t *w =
      dfnet_envelope_reuse(x->m->scratch, x->id, dfnet_v1_Envelope_token_info_tag);
  handle__token_info_fill(t, &w->pb.msg.token_info);
  if (dfnet_transport_send(x->m->transport, x->sid, w, 0) != DFNET_STATUS_OK)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  x->count++;
  return DFNET_STATUS_OK;
}

void handle__token_list(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  list_ctx_t x = {m, s->id, env->pb.id, 0};
  if (token__each(cert__tokens(m), send_one, &x) != DFNET_STATUS_OK)
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                           "list interrupted");
  else
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_OK, "%zu tokens", x.count);
}
