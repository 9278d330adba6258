/* http_get: see http_get.h. Modelled on libwebsockets' minimal-http-client: a context
 * without a listening port, one client connection with method GET, the body gathered from
 * LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ. A 50 ms timer keeps lws_service() returning so
 * that the deadline and the abort flag are checked while nothing arrives. */
#include "drivers/power/http_get.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_TICK_US (50 * LWS_US_PER_MS)

/* One request: the context's user data. */
typedef struct http_req {
  char *body;
  size_t body_size, body_len;
  int status;     /* HTTP status, 0 until the headers came */
  bool done;      /* answered, failed or closed */
  char error[96]; /* a connection error from lws, "" when none */
  struct lws_context *ctx;
  lws_sorted_usec_list_t tick;
} http_req_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

dfnet_status_t http_url_parse(const char *address, http_url_t *url, char *why, size_t why_size) {
  memset(url, 0, sizeof *url);
  url->port = 80;
  const char *p = address;
  if (strncmp(p, "https://", 8) == 0) {
    snprintf(why, why_size, "\"%s\": https is not supported (plugs' local APIs are http)", address);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (strncmp(p, "http://", 7) == 0)
    p += 7;
  else if (strstr(p, "://") != NULL) {
    snprintf(why, why_size, "\"%s\": only http:// addresses are supported", address);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  size_t host_len = strcspn(p, ":/");
  if (host_len == 0 || host_len >= sizeof url->host) {
    snprintf(why, why_size, "\"%s\": the host must be 1..%zu characters", address,
             sizeof url->host - 1);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  memcpy(url->host, p, host_len);
  p += host_len;
  if (*p == ':') {
    char *end;
    unsigned long port = strtoul(p + 1, &end, 10);
    if (end == p + 1 || port == 0 || port > 65535 || (*end != '\0' && *end != '/')) {
      snprintf(why, why_size, "\"%s\": the port must be 1..65535", address);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    url->port = (uint16_t)port;
    p = end;
  }
  size_t prefix_len = strlen(p);
  while (prefix_len > 0 && p[prefix_len - 1] == '/')
    prefix_len--;
  if (prefix_len >= sizeof url->prefix) {
    snprintf(why, why_size, "\"%s\": the path must be shorter than %zu characters", address,
             sizeof url->prefix);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  memcpy(url->prefix, p, prefix_len);
  return DFNET_STATUS_OK;
}

static http_req_t *req_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

static int on_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len) {
  http_req_t *r;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    r = req_of(wsi);
    snprintf(r->error, sizeof r->error, "%s", in != NULL ? (const char *)in : "connection failed");
    r->done = true;
    return 0;
  case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    req_of(wsi)->status = (int)lws_http_client_http_response(wsi);
    return 0;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    r = req_of(wsi);
    if (r->body_len + 1 < r->body_size) {
      size_t n = len < r->body_size - 1 - r->body_len ? len : r->body_size - 1 - r->body_len;
      memcpy(r->body + r->body_len, in, n);
      r->body_len += n;
      r->body[r->body_len] = '\0';
    }
    return 0;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
    char buf[1024 + LWS_PRE];
    char *p = buf + LWS_PRE;
    int n = (int)sizeof buf - LWS_PRE;
    return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
  }
  case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
  case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    r = req_of(wsi);
    if (!r->done && r->status == 0 && r->error[0] == '\0')
      snprintf(r->error, sizeof r->error, "the connection closed before an answer");
    r->done = true;
    return 0;
  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

static const struct lws_protocols protocols[] = {{"dfnet-power-http", on_http, 0, 0, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

/* Keeps lws_service() returning every HTTP_TICK_US. */
static void tick(lws_sorted_usec_list_t *sul) {
  http_req_t *r = lws_container_of(sul, http_req_t, tick);
  lws_sul_schedule(r->ctx, 0, &r->tick, tick, HTTP_TICK_US);
}

/* libwebsockets' own log: errors only (this driver's copy of the library: it is linked in
 * statically, so the setting is the driver's alone). */
static void lws_log_quiet(void) { lws_set_log_level(LLL_ERR, NULL); }

dfnet_status_t http_get(const http_url_t *url, const char *path, uint32_t timeout_ms,
                        const atomic_bool *abort, char *body, size_t body_size, int *http_status,
                        char *why, size_t why_size) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, lws_log_quiet);
  http_req_t r = {.body = body, .body_size = body_size};
  if (body_size > 0)
    body[0] = '\0';
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.user = &r;
  info.fd_limit_per_thread = 4;
  struct lws_context *ctx = r.ctx = lws_create_context(&info);
  if (ctx == NULL) {
    snprintf(why, why_size, "cannot make a libwebsockets context");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  char full_path[400];
  snprintf(full_path, sizeof full_path, "%s%s", url->prefix, path);
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = ctx;
  ci.address = url->host;
  ci.host = url->host;
  ci.origin = url->host;
  ci.port = url->port;
  ci.path = full_path;
  ci.method = "GET";
  ci.protocol = protocols[0].name;
  ci.alpn = "http/1.1";
  uint64_t deadline = now_ms() + timeout_ms;
  if (lws_client_connect_via_info(&ci) == NULL && !r.done) {
    snprintf(r.error, sizeof r.error, "cannot start a connection");
    r.done = true;
  }
  lws_sul_schedule(ctx, 0, &r.tick, tick, HTTP_TICK_US);
  bool late = false, aborted = false;
  while (!r.done) {
    if ((aborted = atomic_load(abort)) || (late = now_ms() >= deadline))
      break;
    if (lws_service(ctx, 0) < 0)
      break;
  }
  lws_context_destroy(ctx);
  if (r.done && r.error[0] == '\0' && r.status != 0) {
    *http_status = r.status;
    return DFNET_STATUS_OK;
  }
  if (aborted)
    snprintf(why, why_size, "GET %s:%u%s: the driver is stopping", url->host, url->port, full_path);
  else if (late || !r.done)
    snprintf(why, why_size, "GET %s:%u%s: no answer within %u ms", url->host, url->port, full_path,
             timeout_ms);
  else
    snprintf(why, why_size, "GET %s:%u%s: %s", url->host, url->port, full_path,
             r.error[0] != '\0' ? r.error : "no answer");
  return DFNET_STATUS_UNAVAILABLE;
}
