/* dfnet-manager: TokenList from a client, role admin (proto/dfnet/v1/trust.proto; issue 23
 * item 1): one TokenInfo per join token, by creation, never a secret; closed by Status OK
 * "N tokens". An item that does not fit the send queue ends it RESOURCE_EXHAUSTED. */
#include "manager/cert.h"

static dfnet_status_t send_one(void *arg, const store_token_t *t) {
  list_stream_t *ls = arg;
  dfnet_envelope_t *w = list_stream__item(ls, dfnet_v1_Envelope_token_info_tag);
  handle__token_info_fill(t, &w->pb.msg.token_info);
  return list_stream__send(ls, w) ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

void handle__token_list(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  list_stream_t ls = {m, s->id, env->pb.id, 0, false};
  (void)token__each(cert__tokens(m), send_one, &ls); /* fails only as ls records */
  list_stream__end(&ls, "%zu tokens", ls.sent);
}
