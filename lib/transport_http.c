/* Plain HTTP requests on an endpoint (lib/transport.h "HTTP requests"; issue 24 items 4
 * and 5): /metrics on the manager's TLS listener and on --metrics-listen, the pages and
 * the event stream of `dfnet ui`.
 *
 * One transport__http_t per request, made when lws has read its headers (and its body, for
 * a POST), hung on the connection's pss and on t->http (t->mu: other threads find it by id
 * to answer or stream). The owner's answer is kept in it; the service thread writes it out
 * on HTTP_WRITEABLE: the headers, then the body in pieces of at most HTTP_PIECE bytes (one
 * write per writable callback, as lws asks), the last one LWS_WRITE_HTTP_FINAL. A request
 * is freed on the service thread only: when its answer is written (keep-alive: the
 * connection waits for the next one), or when its connection closes (on_http_gone, if the
 * owner still held it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <utlist.h>

#include "lib/log.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"
#define HTTP_PIECE (16u * 1024u)
/* How long a request the owner keeps (on_http returned false) may wait for its answer. */
#define HTTP_ANSWER_TIMEOUT_S 120

typedef struct http_piece {
  STAILQ_ENTRY(http_piece) link;
  char *data;
  size_t len, off;
} http_piece_t;

struct transport__http {
  struct transport__http *next, *prev; /* utlist DL: t->http (t->mu) */
  dfnet_transport_t *t;
  transport__endpoint_t *ep;
  struct lws *wsi;
  dfnet_http_id_t id;

  /* service thread */
  char method[8];
  uint8_t *body; /* a POST's, as it arrives */
  size_t body_len;
  bool body_too_big;
  bool owner_holds; /* on_http returned false, or a stream: the owner may still write */
  bool headers_sent;
  bool close_after; /* the connection cannot carry another request (a body left unread) */

  /* t->mu */
  bool answered;
  bool stream, ended;
  unsigned status;
  char *content_type, *headers;
  STAILQ_HEAD(, http_piece) pieces;
  size_t queued;
};

static const char *header(struct lws *wsi, enum lws_token_indexes tok, char *buf, size_t cap) {
  buf[0] = '\0';
  if (lws_hdr_total_length(wsi, tok) > 0 && lws_hdr_copy(wsi, buf, (int)cap, tok) < 0)
    buf[0] = '\0';
  return buf;
}

/* The query: lws's URI arguments (decoded), joined with '&'. */
static const char *query(struct lws *wsi, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  char frag[512];
  for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
       i++) {
    int n = snprintf(buf + len, cap - len, "%s%s", len ? "&" : "", frag);
    if (n < 0 || (size_t)n >= cap - len)
      break;
    len += (size_t)n;
  }
  return buf;
}

static void pieces_free(transport__http_t *h) {
  http_piece_t *p;
  while ((p = STAILQ_FIRST(&h->pieces)) != NULL) {
    STAILQ_REMOVE_HEAD(&h->pieces, link);
    free(p->data);
    free(p);
  }
  h->queued = 0;
}

/* Service thread: unlink and free h; tell the owner when it still held it. */
static void http_free(transport__http_t *h, bool tell_owner) {
  dfnet_transport_t *t = h->t;
  pthread_mutex_lock(&t->mu);
  DL_DELETE(t->http, h);
  bool held = h->owner_holds && (!h->answered || (h->stream && !h->ended));
  pthread_mutex_unlock(&t->mu);
  if (tell_owner && held && h->ep->on_http_gone != NULL)
    h->ep->on_http_gone(h->ep->user, h->id);
  pieces_free(h);
  free(h->content_type);
  free(h->headers);
  free(h->body);
  free(h);
}

/* t->mu held: the request with that id, or NULL. */
static transport__http_t *find_locked(dfnet_transport_t *t, dfnet_http_id_t id) {
  transport__http_t *h;
  DL_FOREACH(t->http, h) {
    if (h->id == id)
      return h;
  }
  return NULL;
}

/* t->mu held: append data (owned) to h's pieces. */
static dfnet_status_t push_locked(transport__http_t *h, char *data, size_t len) {
  if (data == NULL || len == 0) {
    free(data);
    return DFNET_STATUS_OK;
  }
  http_piece_t *p = malloc(sizeof *p);
  if (p == NULL) {
    free(data);
    return DFNET_STATUS_INTERNAL;
  }
  *p = (http_piece_t){.data = data, .len = len};
  STAILQ_INSERT_TAIL(&h->pieces, p, link);
  h->queued += len;
  return DFNET_STATUS_OK;
}

/* t->mu held: take resp as h's answer (resp->body passes to h). */
static dfnet_status_t answer_locked(transport__http_t *h, const dfnet_http_response_t *resp) {
  h->answered = true;
  h->status = resp->status;
  h->stream = resp->stream;
  h->content_type = strdup(resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
  h->headers = resp->headers ? strdup(resp->headers) : NULL;
  dfnet_status_t st = push_locked(h, resp->body, resp->body_len);
  if (h->content_type == NULL || (resp->headers != NULL && h->headers == NULL))
    return DFNET_STATUS_INTERNAL;
  return st;
}

/* Service thread: have h written (soon). */
static void kick(transport__http_t *h) { lws_callback_on_writable(h->wsi); }

/* The service thread, from the inbox: the request of that id has something to write. */
void transport__http_kick(dfnet_transport_t *t, dfnet_http_id_t id) {
  pthread_mutex_lock(&t->mu);
  transport__http_t *h = find_locked(t, id);
  pthread_mutex_unlock(&t->mu);
  if (h != NULL) /* only this thread frees it */
    kick(h);
}

/* Any thread: have the request of that id written, from the service thread. */
static dfnet_status_t kick_from_any(dfnet_transport_t *t, dfnet_http_id_t id) {
  if (dfnet_transport_on_service_thread(t)) {
    transport__http_kick(t, id);
    return DFNET_STATUS_OK;
  }
  transport__work_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return DFNET_STATUS_INTERNAL;
  w->kind = TRANSPORT__WORK_HTTP_KICK;
  w->request_id = id;
  transport__inbox_push(t, w);
  return DFNET_STATUS_OK;
}

/* ---- Requests ------------------------------------------------------------------------ */

/* Service thread: the request is whole: ask the owner. */
static int call_owner(transport__http_t *h, const transport__peer_t *peer) {
  struct lws *wsi = h->wsi;
  char path[1024], q[2048], accept[256], cookie[512], auth[512], host[256], addr[64];
  header(wsi,
         strcmp(h->method, "POST") == 0   ? WSI_TOKEN_POST_URI
         : strcmp(h->method, "HEAD") == 0 ? WSI_TOKEN_HEAD_URI
                                          : WSI_TOKEN_GET_URI,
         path, sizeof path);
  transport__peer_address(wsi, addr, sizeof addr);
  dfnet_http_request_t req = {
      .id = h->id,
      .endpoint = h->ep->id,
      .method = h->method,
      .path = path,
      .query = query(wsi, q, sizeof q),
      .peer_address = addr,
      .peer_name = peer ? peer->cn : NULL,
      .role = peer ? peer->role : dfnet_v1_Role_ROLE_UNSPECIFIED,
      .host = header(wsi, WSI_TOKEN_HOST, host, sizeof host),
      .accept = header(wsi, WSI_TOKEN_HTTP_ACCEPT, accept, sizeof accept),
      .cookie = header(wsi, WSI_TOKEN_HTTP_COOKIE, cookie, sizeof cookie),
      .authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof auth),
      .body = h->body,
      .body_len = h->body_len,
  };
  dfnet_http_response_t resp = {0};
  if (!h->ep->on_http(h->ep->user, &req, &resp)) {
    h->owner_holds = true;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP_ANSWER_TIMEOUT_S);
    return 0;
  }
  pthread_mutex_lock(&h->t->mu);
  dfnet_status_t st = answer_locked(h, &resp);
  h->owner_holds = resp.stream;
  pthread_mutex_unlock(&h->t->mu);
  if (st != DFNET_STATUS_OK)
    return -1;
  kick(h);
  return 0;
}

/* The answer of a request the transport refuses itself. */
static int refuse(transport__http_t *h, unsigned status, const char *why) {
  char *body = NULL;
  size_t len = 0;
  if (why != NULL && asprintf(&body, "%s\n", why) > 0)
    len = strlen(body);
  dfnet_http_response_t resp = {.status = status, .body = body, .body_len = len};
  pthread_mutex_lock(&h->t->mu);
  dfnet_status_t st = answer_locked(h, &resp);
  pthread_mutex_unlock(&h->t->mu);
  if (st != DFNET_STATUS_OK)
    return -1;
  kick(h);
  return 0;
}

int transport__http_request(struct lws *wsi, transport__endpoint_t *ep, transport__pss_t *pss,
                            const transport__peer_t *peer) {
  if (pss == NULL || pss->h != NULL)
    return -1; /* one request at a time per connection */
  transport__http_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return -1;
  h->t = ep->t;
  h->ep = ep;
  h->wsi = wsi;
  STAILQ_INIT(&h->pieces);
  if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
    snprintf(h->method, sizeof h->method, "GET");
  else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
    snprintf(h->method, sizeof h->method, "POST");
  else if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
    snprintf(h->method, sizeof h->method, "HEAD");
  pthread_mutex_lock(&ep->t->mu);
  h->id = ++ep->t->next_http_id;
  DL_APPEND(ep->t->http, h);
  pthread_mutex_unlock(&ep->t->mu);
  pss->h = h;
  pss->http_peer_ok = peer != NULL;
  if (peer != NULL)
    pss->peer = *peer;
  if (h->method[0] == '\0')
    return refuse(h, 405, "only GET, HEAD and POST are served here");
  if (strcmp(h->method, "POST") == 0) {
    /* RFC 7230 3.3.3: without Content-Length (lws 4.1 reads no chunked bodies) a request has
     * no body, but lws would wait for one: 411. One declared too large is refused unread. */
    char cl[24];
    uint64_t declared;
    header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
    if (cl[0] == '\0' || sscanf(cl, "%" SCNu64, &declared) != 1) {
      h->close_after = true;
      return refuse(h, 411, "a POST needs a Content-Length");
    }
    if (declared > DFNET_HTTP_BODY_MAX) {
      h->close_after = true;
      char why[96];
      snprintf(why, sizeof why, "the request body is larger than %u bytes", DFNET_HTTP_BODY_MAX);
      return refuse(h, 413, why);
    }
    return 0; /* the owner is asked once the body is in (transport__http_body) */
  }
  return call_owner(h, peer);
}

int transport__http_body(transport__pss_t *pss, const void *in, size_t len) {
  transport__http_t *h = pss ? pss->h : NULL;
  if (h == NULL)
    return -1;
  if (h->close_after || len == 0)
    return 0; /* refused before its body: not kept; or an empty piece (Content-Length: 0) */
  if (h->body_too_big || h->body_len + len > DFNET_HTTP_BODY_MAX) {
    h->body_too_big = true;
    return 0;
  }
  uint8_t *grown = realloc(h->body, h->body_len + len + 1);
  if (grown == NULL)
    return -1;
  memcpy(grown + h->body_len, in, len);
  h->body = grown;
  h->body_len += len;
  h->body[h->body_len] = '\0';
  return 0;
}

int transport__http_body_done(transport__pss_t *pss) {
  transport__http_t *h = pss ? pss->h : NULL;
  if (h == NULL)
    return -1;
  if (h->close_after)
    return 0; /* answered already */
  if (h->body_too_big) {
    char why[96];
    snprintf(why, sizeof why, "the request body is larger than %u bytes", DFNET_HTTP_BODY_MAX);
    return refuse(h, 413, why);
  }
  return call_owner(h, pss->http_peer_ok ? &pss->peer : NULL);
}

/* ---- Writing ------------------------------------------------------------------------- */

/* Write the status line and headers. 0, or -1 (close). */
static int write_headers(transport__http_t *h, const char *content_type, const char *extra,
                         size_t body_len, bool stream) {
  uint8_t buf[LWS_PRE + 2048];
  uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
  if (lws_add_http_common_headers(h->wsi, h->status, content_type,
                                  stream ? LWS_ILLEGAL_HTTP_CONTENT_LEN : body_len, &p, end))
    return -1;
  /* "Name: value\r\n" lines */
  for (const char *line = extra; line != NULL && *line != '\0';) {
    const char *eol = strstr(line, "\r\n");
    size_t n = eol ? (size_t)(eol - line) : strlen(line);
    const char *colon = memchr(line, ':', n);
    if (colon != NULL && colon > line) {
      char name[64];
      size_t nl = (size_t)(colon - line) + 1; /* with the colon */
      const char *value = colon + 1;
      while (value < line + n && *value == ' ')
        value++;
      if (nl < sizeof name) {
        memcpy(name, line, nl);
        name[nl] = '\0';
        if (lws_add_http_header_by_name(h->wsi, (const unsigned char *)name,
                                        (const unsigned char *)value, (int)(line + n - value), &p,
                                        end))
          return -1;
      }
    }
    line = eol ? eol + 2 : line + n;
  }
  if (lws_finalize_write_http_header(h->wsi, start, &p, end))
    return -1;
  h->headers_sent = true;
  if (stream)
    lws_http_mark_sse(h->wsi);
  return 0;
}

/* Service thread, HTTP_WRITEABLE: write what h has. 0 to go on, -1 to close. */
int transport__http_writable(transport__pss_t *pss) {
  transport__http_t *h = pss ? pss->h : NULL;
  if (h == NULL)
    return 0;
  dfnet_transport_t *t = h->t;
  pthread_mutex_lock(&t->mu);
  bool answered = h->answered, stream = h->stream;
  pthread_mutex_unlock(&t->mu);
  if (!answered)
    return 0;
  if (!h->headers_sent) {
    /* content_type, headers and queued are set once (answer_locked) before answered */
    if (write_headers(h, h->content_type, h->headers, h->queued, stream) != 0)
      return -1;
    if (strcmp(h->method, "HEAD") == 0) {
      struct lws *wsi = h->wsi;
      pss->h = NULL;
      http_free(h, false);
      return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(h->wsi);
    return 0;
  }
  uint8_t buf[LWS_PRE + HTTP_PIECE];
  size_t n = 0;
  pthread_mutex_lock(&t->mu);
  http_piece_t *p = STAILQ_FIRST(&h->pieces);
  if (p != NULL) {
    n = p->len - p->off < HTTP_PIECE ? p->len - p->off : HTTP_PIECE;
    memcpy(buf + LWS_PRE, p->data + p->off, n);
    p->off += n;
    h->queued -= n;
    if (p->off == p->len) {
      STAILQ_REMOVE_HEAD(&h->pieces, link);
      free(p->data);
      free(p);
    }
  }
  bool more = !STAILQ_EMPTY(&h->pieces);
  bool ended = h->ended;
  pthread_mutex_unlock(&t->mu);
  bool last = !stream && !more;
  if (n > 0 || last) {
    enum lws_write_protocol kind = last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
    if (lws_write(h->wsi, buf + LWS_PRE, n, kind) != (int)n)
      return -1;
  }
  if (last) {
    struct lws *wsi = h->wsi;
    bool close_after = h->close_after;
    pss->h = NULL;
    http_free(h, false);
    return close_after || lws_http_transaction_completed(wsi) ? -1 : 0;
  }
  if (more)
    lws_callback_on_writable(h->wsi);
  else if (stream && ended)
    return -1; /* no Content-Length: the end of the stream is the end of the connection */
  return 0;
}

void transport__http_closed(transport__pss_t *pss) {
  if (pss == NULL || pss->h == NULL)
    return;
  transport__http_t *h = pss->h;
  pss->h = NULL;
  http_free(h, true);
}

/* ---- The API (lib/transport.h) --------------------------------------------------------- */

dfnet_status_t dfnet_transport_http_respond(dfnet_transport_t *t, dfnet_http_id_t id,
                                            const dfnet_http_response_t *resp) {
  if (resp == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (t == NULL || resp->status < 100 || resp->status > 599) {
    free(resp->body);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  pthread_mutex_lock(&t->mu);
  transport__http_t *h = find_locked(t, id);
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  if (h != NULL && !h->answered)
    st = answer_locked(h, resp);
  else
    free(resp->body);
  pthread_mutex_unlock(&t->mu);
  if (st != DFNET_STATUS_OK)
    return st;
  return kick_from_any(t, id);
}

dfnet_status_t dfnet_transport_http_stream_write(dfnet_transport_t *t, dfnet_http_id_t id,
                                                 char *data, size_t len) {
  if (t == NULL) {
    free(data);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  pthread_mutex_lock(&t->mu);
  transport__http_t *h = find_locked(t, id);
  dfnet_status_t st;
  if (h == NULL || !h->answered || !h->stream || h->ended) {
    st = DFNET_STATUS_NOT_FOUND;
    free(data);
  } else if (h->queued + len > DFNET_HTTP_STREAM_HWM) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    free(data);
  } else {
    st = push_locked(h, data, len);
  }
  pthread_mutex_unlock(&t->mu);
  if (st != DFNET_STATUS_OK)
    return st;
  return kick_from_any(t, id);
}

dfnet_status_t dfnet_transport_http_end(dfnet_transport_t *t, dfnet_http_id_t id) {
  if (t == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&t->mu);
  transport__http_t *h = find_locked(t, id);
  dfnet_status_t st = DFNET_STATUS_NOT_FOUND;
  if (h != NULL && h->answered && h->stream && !h->ended) {
    h->ended = true;
    st = DFNET_STATUS_OK;
  }
  pthread_mutex_unlock(&t->mu);
  if (st != DFNET_STATUS_OK)
    return st;
  return kick_from_any(t, id);
}
