/* libdfnet-client: renewing the client's own certificate over its session
 * (dfnet_client_renew_enable; issue 23 item 3): lib/renewer.h on the client's endpoint and
 * the certificate and key files it connected with. */
#include <stdlib.h>

#include "clients/lib/client_internal.h"
#include "lib/renewer.h"

/* Client thread: schedule the renewal on the session welcomed before it was enabled. */
static void enabled(void *user) {
  dfnet_client_t *c = user;
  pthread_mutex_lock(&c->mu);
  dfnet_renewer_t *r = c->renewer;
  dfnet_session_id_t sid = c->session;
  pthread_mutex_unlock(&c->mu);
  if (sid != 0)
    dfnet_renewer_welcomed(r, sid);
}

dfnet_status_t dfnet_client_renew_enable(dfnet_client_t *c, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client is NULL");
  pthread_mutex_lock(&c->mu);
  dfnet_status_t st = DFNET_STATUS_OK;
  bool made = false;
  if (c->renewer == NULL) {
    dfnet_renewer_config_t cfg = {.t = c->t,
                                  .endpoint = c->endpoint,
                                  .cert_file = c->cert_file,
                                  .key_file = c->key_file,
                                  .subject = c->url};
    st = dfnet_renewer_new(&cfg, &c->renewer);
    made = st == DFNET_STATUS_OK;
  }
  pthread_mutex_unlock(&c->mu);
  if (st != DFNET_STATUS_OK)
    return client__fail(err, st, "cannot set up the certificate's renewal");
  if (made && (st = dfnet_transport_post(c->t, enabled, c)) != DFNET_STATUS_OK)
    return client__fail(err, st, "cannot schedule the certificate's renewal");
  return DFNET_STATUS_OK;
}
