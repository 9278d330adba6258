/* dfnet-manager: CertList from a client, role viewer (proto/dfnet/v1/trust.proto; issue 23
 * item 4): one CertInfo per certificate record, by name then serial, closed by Status OK
 * "N certificates, M revoked". An item that does not fit the session's send queue ends the
 * list RESOURCE_EXHAUSTED "list interrupted". */
#include <stdio.h>

#include "manager/cert.h"

typedef struct list_ctx {
  list_stream_t ls;
  size_t revoked;
} list_ctx_t;

static dfnet_status_t send_one(void *arg, const store_cert_t *c, bool online) {
  list_ctx_t *x = arg;
  dfnet_envelope_t *w = list_stream__item(&x->ls, dfnet_v1_Envelope_cert_info_tag);
  dfnet_v1_CertInfo *i = &w->pb.msg.cert_info;
  *i = (dfnet_v1_CertInfo)dfnet_v1_CertInfo_init_zero;
  snprintf(i->serial, sizeof i->serial, "%s", c->serial);
  snprintf(i->name, sizeof i->name, "%s", c->name);
  snprintf(i->role, sizeof i->role, "%s", c->role);
  i->not_after_ms = c->not_after_ms;
  i->first_seen_ms = c->first_seen_ms;
  i->last_seen_ms = c->last_seen_ms;
  snprintf(i->last_address, sizeof i->last_address, "%s", c->last_address);
  i->issued = c->issued;
  i->revoked_ms = c->revoked_ms;
  snprintf(i->revoked_by, sizeof i->revoked_by, "%s", c->revoked_by);
  snprintf(i->revoke_reason, sizeof i->revoke_reason, "%s", c->revoke_reason);
  i->online = online;
  if (!list_stream__send(&x->ls, w))
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  x->revoked += c->revoked_ms != 0;
  return DFNET_STATUS_OK;
}

void handle__cert_list(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  list_ctx_t x = {{m, s->id, env->pb.id, 0, false}, 0};
  (void)cert__each(m, send_one, &x); /* fails only as x.ls records */
  list_stream__end(&x.ls, "%zu certificates, %zu revoked", x.ls.sent, x.revoked);
}
