/* `dfnet ui`: every HTTP request the page's endpoint gets (cmd_ui.h; docs/ui.md "Security").
 *
 * A request is served only when its Host header is this page's address (the listen address
 * and port; 127.0.0.1, localhost and [::1] too when it is loopback: a guard against DNS
 * rebinding) and it carries the token: `token=<hex>` in the query (the URL printed),
 * the cookie `dfnet_ui=<token>` the page's answer sets (HttpOnly, SameSite=Strict: another
 * site's page never sends it), or `Authorization: Bearer <token>`. Anything else is
 * answered 401 with no data, and said once on stderr. Only GET and HEAD are served (the
 * page changes nothing on the fleet). Service thread: nothing here blocks; the lists go
 * to the worker (cmd_ui_api.c), the event feed to cmd_ui_events.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/cmd_ui.h"

/* Every answer's headers: never cached, never framed, never sniffed, no Referer (the URL
 * carries the token), and scripts from the page itself only. */
#define UI_HEADERS                                                                      \
  "Cache-Control: no-store\r\n"                                                         \
  "X-Content-Type-Options: nosniff\r\n"                                                 \
  "X-Frame-Options: DENY\r\n"                                                           \
  "Referrer-Policy: no-referrer\r\n"                                                    \
  "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors " \
  "'none'; base-uri 'none'; form-action 'none'\r\n"
#define UI_JSON "application/json; charset=utf-8"

/* Does the candidate (len bytes) equal the token? Every byte of the token is looked at,
 * wherever they differ (the length is no secret: always UI_TOKEN_BYTES * 2). */
static bool token_equal(const cli_ui_t *ui, const char *candidate, size_t len) {
  const size_t n = sizeof ui->token - 1;
  volatile unsigned char diff = len != n;
  for (size_t i = 0; i < n; i++)
    diff |= (unsigned char)((i < len ? candidate[i] : 0) ^ ui->token[i]);
  return diff == 0;
}

/* The value of `name` in a list of "name=value" items separated by sep (a query: '&'; a
 * Cookie header: ';' and spaces): *value and *len, borrowed from list. */
static bool list_value(const char *list, char sep, const char *name, const char **value,
                       size_t *len) {
  const size_t nl = strlen(name);
  for (const char *p = list; p != NULL && *p != '\0';) {
    while (*p == ' ')
      p++;
    const char *end = strchr(p, sep);
    size_t item = end != NULL ? (size_t)(end - p) : strlen(p);
    if (item > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
      *value = p + nl + 1;
      *len = item - nl - 1;
      return true;
    }
    p = end != NULL ? end + 1 : NULL;
  }
  return false;
}

/* Which way the request carries the right token; NULL when it does not. */
static const char *token_given(const cli_ui_t *ui, const dfnet_http_request_t *req) {
  const char *v;
  size_t len;
  if (list_value(req->query, '&', "token", &v, &len) && token_equal(ui, v, len))
    return "query";
  if (list_value(req->cookie, ';', "dfnet_ui", &v, &len) && token_equal(ui, v, len))
    return "cookie";
  static const char bearer[] = "Bearer ";
  if (strncmp(req->authorization, bearer, sizeof bearer - 1) == 0) {
    v = req->authorization + sizeof bearer - 1;
    if (token_equal(ui, v, strlen(v)))
      return "header";
  }
  return NULL;
}

/* A text answer of the service thread. */
static bool answer_text(dfnet_http_response_t *resp, unsigned status, const char *headers,
                        const char *text) {
  resp->status = status;
  resp->headers = headers;
  resp->body = strdup(text);
  resp->body_len = resp->body != NULL ? strlen(text) : 0;
  return true;
}

static unsigned http_status_of(dfnet_status_t code) {
  switch (code) {
  case DFNET_STATUS_OK:
    return 200;
  case DFNET_STATUS_INVALID_ARGUMENT:
    return 400;
  case DFNET_STATUS_UNAUTHENTICATED:
    return 401;
  case DFNET_STATUS_PERMISSION_DENIED:
    return 403;
  case DFNET_STATUS_NOT_FOUND:
    return 404;
  case DFNET_STATUS_UNAVAILABLE:
  case DFNET_STATUS_RESOURCE_EXHAUSTED:
    return 503;
  case DFNET_STATUS_DEADLINE_EXCEEDED:
    return 504;
  default:
    return 502; /* the manager's answer was a failure */
  }
}

void ui__respond_json(cli_ui_t *ui, dfnet_http_id_t id, unsigned status, cJSON *doc) {
  dfnet_http_response_t r = {.status = status, .content_type = UI_JSON, .headers = UI_HEADERS};
  r.body = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (r.body == NULL) {
    r.status = 500;
    r.content_type = NULL;
    r.body = strdup("out of memory\n");
  }
  r.body_len = r.body != NULL ? strlen(r.body) : 0;
  (void)dfnet_transport_http_respond(ui->transport, id, &r); /* NOT_FOUND: the page left */
}

void ui__respond_error(cli_ui_t *ui, dfnet_http_id_t id, dfnet_status_t code, const char *msg) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(doc, "error");
  cJSON_AddStringToObject(e, "code", dfnet_status_str(code));
  cJSON_AddStringToObject(e, "message", msg);
  ui__respond_json(ui, id, http_status_of(code), doc);
}

static const ui_asset_t *asset_find(const char *path) {
  if (strcmp(path, "/index.html") == 0)
    path = "/";
  for (size_t i = 0; i < ui_asset_count; i++)
    if (strcmp(ui_assets[i].path, path) == 0)
      return &ui_assets[i];
  return NULL;
}

/* One of the page's files; the page itself (re)sets the cookie, so that its scripts and
 * feed are served without the token in their URLs. */
static bool answer_asset(const cli_ui_t *ui, const ui_asset_t *a, dfnet_http_response_t *resp) {
  static __thread char headers[1024]; /* copied by the transport during the call */
  if (strcmp(a->path, "/") == 0)
    snprintf(headers, sizeof headers,
             UI_HEADERS "Set-Cookie: dfnet_ui=%s; Path=/; HttpOnly; SameSite=Strict\r\n",
             ui->token);
  else
    snprintf(headers, sizeof headers, UI_HEADERS);
  resp->status = 200;
  resp->content_type = a->content_type;
  resp->headers = headers;
  resp->body = malloc(a->len ? a->len : 1);
  if (resp->body == NULL)
    return answer_text(resp, 500, NULL, "out of memory\n");
  memcpy(resp->body, a->data, a->len);
  resp->body_len = a->len;
  return true;
}

static const struct {
  const char *path;
  ui_job_kind_t kind;
  const char *arg; /* the query parameter the job needs, or NULL */
} api_routes[] = {
    {"/api/hosts", UI_JOB_HOSTS, NULL},   {"/api/nodes", UI_JOB_NODES, NULL},
    {"/api/boards", UI_JOB_BOARDS, NULL}, {"/api/leases", UI_JOB_LEASES, NULL},
    {"/api/certs", UI_JOB_CERTS, NULL},   {"/api/bind-why", UI_JOB_BIND_WHY, "node"},
    {"/api/info", UI_JOB_INFO, NULL},
};

/* /api/<list>: to the worker, answered later (false), or at once on a bad request. */
static bool route_api(cli_ui_t *ui, const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
    if (strcmp(req->path, api_routes[i].path) != 0)
      continue;
    char arg[UI_ARG_MAX] = "";
    const char *v;
    size_t len;
    if (api_routes[i].arg != NULL) {
      if (!list_value(req->query, '&', api_routes[i].arg, &v, &len) || len == 0 ||
          len >= sizeof arg)
        return answer_text(resp, 400, UI_HEADERS, "a query parameter is missing or too long\n");
      memcpy(arg, v, len); /* the transport gives the query decoded */
      arg[len] = '\0';
    }
    if (!ui__job_push(ui, api_routes[i].kind, req->id, arg))
      return answer_text(resp, 503, UI_HEADERS, "busy: too many requests wait\n");
    return false;
  }
  return answer_text(resp, 404, UI_HEADERS, "no such page\n");
}

/* Is the Host header one of this page's addresses? A page of another site whose name an
 * attacker made resolve to 127.0.0.1 (DNS rebinding) sends its own name. */
static bool host_allowed(const cli_ui_t *ui, const char *host) {
  for (size_t i = 0; i < sizeof ui->hosts / sizeof ui->hosts[0]; i++)
    if (ui->hosts[i][0] != '\0' && strcasecmp(host, ui->hosts[i]) == 0)
      return true;
  return false;
}

bool ui__on_http(void *user, const dfnet_http_request_t *req, dfnet_http_response_t *resp) {
  cli_ui_t *ui = user;
  const char *kind = NULL;
  if (!host_allowed(ui, req->host))
    kind = "a Host header that is not this page's address";
  else if (token_given(ui, req) == NULL)
    kind = "no valid token";
  if (kind != NULL) {
    uint32_t more = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    if (dfnet_log_limit_allow(&ui->refusals, kind, now_ms, &more)) {
      char also[80] = ""; /* a flood is one line per 10 s (lib/log_limit.h) */
      if (more != 0)
        snprintf(also, sizeof also, " (and %" PRIu32 " more since the last such line)", more);
      fprintf(stderr, "dfnet ui: refused %s %s from %s: %s (401)%s\n", req->method, req->path,
              req->peer_address, kind, also);
    }
    return answer_text(resp, 401, UI_HEADERS,
                       "401: open the URL `dfnet ui` printed (it carries the token and the "
                       "address)\n");
  }
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
    return answer_text(resp, 405, UI_HEADERS "Allow: GET, HEAD\r\n", "only GET and HEAD\n");
  const ui_asset_t *a = asset_find(req->path);
  if (a != NULL)
    return answer_asset(ui, a, resp);
  if (strcmp(req->path, "/api/events") == 0) {
    ui__events_open(ui, req->id, resp);
    return true;
  }
  if (strncmp(req->path, "/api/", 5) == 0)
    return route_api(ui, req, resp);
  return answer_text(resp, 404, UI_HEADERS, "no such page\n");
}

void ui__on_http_gone(void *user, dfnet_http_id_t id) { ui__events_gone(user, id); }
