/* Serving a metrics registry (lib/metrics.h) as GET /metrics on a transport's HTTP endpoint
 * (lib/transport.h "HTTP requests"; issue 24 item 4): the answer the manager's listeners
 * and the agent's --metrics-listen give, once. Who may ask is the caller's to check first
 * (the manager's TLS listener wants a viewer certificate or higher).
 *
 * Thread: the registry's owner's (the service thread of the transport the request came on,
 * for the manager and the agent). */
#ifndef DFNET_LIB_METRICS_HTTP_H
#define DFNET_LIB_METRICS_HTTP_H

#include <stdbool.h>

#include "lib/metrics.h"
#include "lib/transport.h"

/* Answer req into *resp and return true (an on_http answer at once):
 *   GET or HEAD /metrics: refresh(arg) first when refresh is not NULL (the owner counts its
 *     state now and its scrapes), then 200 with the text format of r (Content-Type
 *     DFNET_METRICS_CONTENT_TYPE, Cache-Control: no-store);
 *   another path: 404; another method: 405 (Allow: GET, HEAD);
 *   r NULL (no metrics): 503; r that cannot be rendered (memory): 500, logged once per
 *   request (subsystem "metrics", subject the peer's address).
 * Bodies are malloc(3)ed for the transport, which frees them. */
bool dfnet_metrics_http_answer(dfnet_metrics_t *r, void (*refresh)(void *arg), void *arg,
                               const dfnet_http_request_t *req, dfnet_http_response_t *resp);

#endif /* DFNET_LIB_METRICS_HTTP_H */
