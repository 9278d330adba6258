/* A client endpoint's new identity (lib/transport.h dfnet_transport_client_reload_identity;
 * issue 23 item 3, renewal): the certificate and key files were replaced; the next connection
 * must present them. lws reads a client's certificate once, into its vhost's SSL_CTX, which
 * also keeps the TLS sessions it may resume (whose certificate would be the old one), so the
 * endpoint gets a new vhost made from the files as they are now; the connection open now
 * stays on the old one, which lives until the transport goes.
 */
#include <stdio.h>
#include <stdlib.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/log.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

/* The files load and belong together. */
static dfnet_status_t identity_check(const transport__endpoint_t *ep) {
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_key_t *key = NULL;
  dfnet_status_t st = dfnet_pki_cert_load(ep->cert_file, &cert);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_key_load(ep->key_file, &key);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_key_check_pair(cert, key);
  dfnet_pki_key_free(key);
  dfnet_pki_cert_free(cert);
  return st == DFNET_STATUS_OK ? st : DFNET_STATUS_INVALID_ARGUMENT;
}

dfnet_status_t dfnet_transport_client_reload_identity(dfnet_transport_t *t,
                                                      dfnet_endpoint_id_t endpoint) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (t->serviced && !dfnet_transport_on_service_thread(t))
    return DFNET_STATUS_FAILED_PRECONDITION;
  if (endpoint == 0 || endpoint > t->n_endpoints || !t->endpoints[endpoint - 1]->is_client ||
      t->endpoints[endpoint - 1]->enroll)
    return DFNET_STATUS_NOT_FOUND;
  transport__endpoint_t *ep = t->endpoints[endpoint - 1];
  dfnet_status_t st = identity_check(ep);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE(SUB, ep->url, "the new identity (%s, %s) does not load: the old one stays",
               ep->cert_file, ep->key_file);
    return st;
  }
  transport__name_t *n = calloc(1, sizeof *n);
  if (n == NULL)
    return DFNET_STATUS_INTERNAL;
  snprintf(n->text, sizeof n->text, "dfnet-client-%u-%u", (unsigned)ep->id,
           (unsigned)++ep->identity_generation);
  struct lws_vhost *vh = transport__client_vhost_create(ep, n->text);
  if (vh == NULL) {
    DFNET_LOGE(SUB, ep->url, "cannot set up the client with its new identity (%s, %s)",
               ep->cert_file, ep->key_file);
    free(n);
    return DFNET_STATUS_INTERNAL;
  }
  LL_PREPEND(ep->vhost_names, n);
  ep->vhost = vh; /* the next connection's */
  DFNET_LOGI(SUB, ep->url, "new identity loaded from %s: used from the next connection on",
             ep->cert_file);
  return DFNET_STATUS_OK;
}
