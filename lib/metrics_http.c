/* GET /metrics for a registry (lib/metrics_http.h). */
#include "lib/metrics_http.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

static bool answer_text(dfnet_http_response_t *resp, unsigned status, const char *text) {
  *resp = (dfnet_http_response_t){.status = status, .body = strdup(text)};
  resp->body_len = resp->body ? strlen(resp->body) : 0;
  return true;
}

bool dfnet_metrics_http_answer(dfnet_metrics_t *r, void (*refresh)(void *arg), void *arg,
                               const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  if (strcmp(req->path, "/metrics") != 0)
    return answer_text(resp, 404, "not found: this listener serves GET /metrics only\n");
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
    answer_text(resp, 405, "method not allowed: GET /metrics\n");
    resp->headers = "Allow: GET, HEAD\r\n";
    return true;
  }
  if (r == NULL)
    return answer_text(resp, 503, "metrics are not available\n");
  if (refresh != NULL)
    refresh(arg);
  char *body = NULL;
  size_t len = 0;
  dfnet_status_t st = dfnet_metrics_render(r, &body, &len);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW("metrics", req->peer_address, "GET /metrics failed: %s", dfnet_status_str(st));
    return answer_text(resp, 500, "metrics could not be rendered (out of memory)\n");
  }
  *resp = (dfnet_http_response_t){.status = 200,
                                  .content_type = DFNET_METRICS_CONTENT_TYPE,
                                  .headers = "Cache-Control: no-store\r\n",
                                  .body = body,
                                  .body_len = len};
  return true;
}
