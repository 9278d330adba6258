/* Renewing a certificate over an authenticated session (issue 23 item 3; docs/architecture.md
 * "Transport and trust"), for a client endpoint of lib/transport.h: the host agent's, and
 * libdfnet-client's when its owner asks (dfnet_client_renew_enable).
 *
 * After each Welcome the owner calls dfnet_renewer_welcomed(); at 2/3 of the certificate's
 * lifetime (+- 10 % of it, at random) the renewer makes a new P-256 key, sends its CSR in a
 * CertRenew on the session, writes the new key (first) and certificate over the endpoint's
 * files, each atomically, and reloads the endpoint's identity
 * (dfnet_transport_client_reload_identity): the next connection presents it, the session in
 * use carries on. A refusal is logged once and not asked again; the certificate is kept
 * until it expires. A lost session only delays the renewal to the next Welcome.
 * Thread: the transport's service thread, but new and free.
 */
#ifndef DFNET_LIB_RENEWER_H
#define DFNET_LIB_RENEWER_H

#include "lib/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dfnet_renewer dfnet_renewer_t;

/* What to renew. Strings are copied. */
typedef struct dfnet_renewer_config {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t endpoint; /* a client endpoint of t */
  const char *cert_file;        /* its certificate (PEM): read for the name and the window */
  const char *key_file;         /* its key; the same path as cert_file for one combined PEM */
  const char *subject;          /* the log lines' subject (the host's or user's name) */
} dfnet_renewer_config_t;

/* A renewer for cfg. *out: free with dfnet_renewer_free after destroying the transport.
 * Errors: INVALID_ARGUMENT (NULL or missing fields), INTERNAL (memory). Any thread. */
dfnet_status_t dfnet_renewer_new(const dfnet_renewer_config_t *cfg, dfnet_renewer_t **out)
    __attribute__((warn_unused_result));

/* The endpoint was welcomed on `session`: schedule the renewal from the certificate file's
 * validity (again: a timer pending is replaced). Nothing once a renewal was refused.
 * Service thread. */
void dfnet_renewer_welcomed(dfnet_renewer_t *r, dfnet_session_id_t session);

/* Free it, after dfnet_transport_destroy (which ends a CertRenew in flight). NULL: no-op. */
void dfnet_renewer_free(dfnet_renewer_t *r);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_RENEWER_H */
