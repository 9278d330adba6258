/* `dfnet ui`: the live event feed, /api/events (cmd_ui.h; docs/ui.md "The API"). One watch
 * of every event (`dfnet watch`'s) for the whole command; each event goes to every open
 * stream as a Server-Sent Event (https://html.spec.whatwg.org/#server-sent-events):
 *
 *   id: 17
 *   data: {"kind":"NODE_BOUND","subject":"dev.lab-a.pci.00_05_0",...}   (cli__event_json)
 *
 * and the page re-reads the lists the event touches. When the watch ends by itself (the
 * session to the manager was lost) each stream gets `event: watch-ended`, and the worker
 * starts the watch again (cmd_ui_api.c). A stream whose reader is slow past the transport's
 * bound loses that event (RESOURCE_EXHAUSTED), not the others. */
#include <stdlib.h>
#include <string.h>

#include "lib/cmdline.h"

#include "clients/cli/cli.h"
#include "clients/cli/cmd_ui.h"

/* Write text to the streams ids[0..n). */
static void write_all(cli_ui_t *ui, const dfnet_http_id_t *ids, size_t n, const char *text) {
  const size_t len = strlen(text);
  for (size_t i = 0; i < n; i++) {
    char *piece = malloc(len);
    if (piece == NULL)
      return;
    memcpy(piece, text, len);
    (void)dfnet_transport_http_stream_write(ui->transport, ids[i], piece, len); /* gone: fine */
  }
}

/* Write text to every open stream. The ids are copied under the lock, written outside it. */
static void broadcast(cli_ui_t *ui, const char *text) {
  dfnet_http_id_t ids[UI_STREAMS_MAX];
  pthread_mutex_lock(&ui->lock);
  size_t n = ui->stream_count;
  memcpy(ids, ui->streams, n * sizeof ids[0]);
  pthread_mutex_unlock(&ui->lock);
  write_all(ui, ids, n, text);
}

/* Client thread: the event to every open stream, and into the backlog. */
static void on_event(void *user, dfnet_client_watch_id_t w, const dfnet_client_event_t *ev) {
  cli_ui_t *ui = user;
  (void)w;
  cJSON *o = cli__event_json(ev);
  char *json = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  /* "id: N": the event's number since `dfnet ui` started (1, 2, ...), by which the page
   * tells a replayed event from a new one after it reconnects */
  char *line = json != NULL ? malloc(strlen(json) + 48) : NULL;
  if (line != NULL) /* the compact JSON has no newline */
    sprintf(line, "id: %llu\ndata: %s\n\n", (unsigned long long)ui->events_seen + 1, json);
  cJSON_free(json);
  /* into the backlog and the streams' ids copied at once: a stream that opens meanwhile
   * gets it one way, not both, nor neither */
  dfnet_http_id_t ids[UI_STREAMS_MAX];
  pthread_mutex_lock(&ui->lock);
  char **slot = &ui->backlog[ui->events_seen % UI_BACKLOG];
  char *old = *slot;
  *slot = line; /* overwritten only here (the client thread): line stays valid below */
  ui->events_seen++;
  size_t n = ui->stream_count;
  memcpy(ids, ui->streams, n * sizeof ids[0]);
  pthread_mutex_unlock(&ui->lock);
  free(old);
  if (line != NULL)
    write_all(ui, ids, n, line);
}

/* The backlog, oldest first, after the stream's first lines (malloc'd; NULL: no memory).
 * Under ui->lock. */
static char *backlog_text(const cli_ui_t *ui, const char *first) {
  size_t len = strlen(first) + 1;
  for (size_t i = 0; i < UI_BACKLOG; i++)
    len += ui->backlog[i] != NULL ? strlen(ui->backlog[i]) : 0;
  char *text = malloc(len), *at = text;
  if (text == NULL)
    return NULL;
  at = stpcpy(at, first);
  uint64_t from = ui->events_seen > UI_BACKLOG ? ui->events_seen - UI_BACKLOG : 0;
  for (uint64_t k = from; k < ui->events_seen; k++)
    if (ui->backlog[k % UI_BACKLOG] != NULL)
      at = stpcpy(at, ui->backlog[k % UI_BACKLOG]);
  return text;
}

void ui__events_free(cli_ui_t *ui) {
  for (size_t i = 0; i < UI_BACKLOG; i++) {
    free(ui->backlog[i]);
    ui->backlog[i] = NULL;
  }
}

/* Client thread: the watch is over. */
static void on_end(void *user, dfnet_client_watch_id_t w, dfnet_status_t st, const char *msg) {
  cli_ui_t *ui = user;
  (void)w;
  pthread_mutex_lock(&ui->lock);
  ui->watch = 0;
  bool stopping = ui->stopping;
  pthread_mutex_unlock(&ui->lock);
  if (stopping || st == DFNET_STATUS_CANCELLED)
    return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "code", dfnet_status_str(st));
  cJSON_AddStringToObject(o, "message", msg != NULL ? msg : "");
  char *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  char *text = json != NULL ? malloc(strlen(json) + 40) : NULL;
  if (text != NULL) {
    sprintf(text, "event: watch-ended\ndata: %s\n\n", json);
    broadcast(ui, text);
  }
  free(text);
  cJSON_free(json);
  (void)ui__job_push(ui, UI_JOB_WATCH, 0, NULL); /* false: stopping */
}

dfnet_status_t ui__watch_start(cli_ui_t *ui, dfnet_client_error_t *err) {
  dfnet_client_watch_id_t id = 0;
  dfnet_status_t st =
      dfnet_client_watch(ui->client, DFNET_CLIENT_WATCH_ALL, on_event, on_end, ui, &id, err);
  if (st == DFNET_STATUS_OK) {
    pthread_mutex_lock(&ui->lock);
    ui->watch = id;
    pthread_mutex_unlock(&ui->lock);
  }
  return st;
}

/* The stream starts with the backlog: the page shows what happened since `dfnet ui` began
 * (at most UI_BACKLOG events), then every event as it comes. */
bool ui__events_open(cli_ui_t *ui, dfnet_http_id_t id, dfnet_http_response_t *resp) {
  pthread_mutex_lock(&ui->lock);
  bool room = ui->stream_count < UI_STREAMS_MAX;
  char *first = NULL;
  if (room) {
    ui->streams[ui->stream_count++] = id;
    first = backlog_text(ui, "retry: 2000\n: dfnet ui event feed\n\n");
  }
  pthread_mutex_unlock(&ui->lock);
  resp->status = room ? 200 : 503;
  resp->content_type = room ? "text/event-stream" : NULL;
  resp->headers = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  resp->stream = room;
  resp->body = room ? first : strdup("too many event feeds open\n");
  resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
  return room;
}

void ui__events_gone(cli_ui_t *ui, dfnet_http_id_t id) {
  pthread_mutex_lock(&ui->lock);
  for (size_t i = 0; i < ui->stream_count; i++) {
    if (ui->streams[i] == id) {
      ui->streams[i] = ui->streams[--ui->stream_count];
      break;
    }
  }
  pthread_mutex_unlock(&ui->lock);
}

/* The HTTP transport's thread, every ui->ping_ms: an SSE comment to every open stream. The
 * transport sees a reader that left only when it writes to it (lib/transport.h
 * on_http_gone), so on a quiet fleet the streams of closed pages would keep their
 * UI_STREAMS_MAX slots, and a page opened later would get 503. */
static void ping(void *user) {
  cli_ui_t *ui = user;
  broadcast(ui, ": ping\n\n");
  (void)dfnet_transport_timer_start(ui->transport, ui->ping_ms, ping, ui, NULL);
}

void ui__events_keepalive_start(cli_ui_t *ui) {
  uint64_t ms = UI_PING_MS;
  const char *e = getenv("DFNET_UI_PING_MS"); /* tests: a short period */
  if (e != NULL && !dfnet_cmdline_uint(e, 10, 10, 3600000, &ms))
    ms = UI_PING_MS;
  ui->ping_ms = (uint32_t)ms;
  (void)dfnet_transport_timer_start(ui->transport, ui->ping_ms, ping, ui, NULL);
}
