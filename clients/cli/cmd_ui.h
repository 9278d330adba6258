/* `dfnet ui`: a web page of the fleet (issue 24 item 5; docs/ui.md). Shared declarations of
 * its files:
 *   cmd_ui.c         the command: options, the token, the order things start and stop in
 *   cmd_ui_http.c    every HTTP request: the token, the page's files, routing to the others
 *   cmd_ui_api.c     /api/<list>: one worker thread asks the manager and answers
 *   cmd_ui_events.c  /api/events: the manager's watch as Server-Sent Events
 *   ui_assets.c      the page (clients/ui/), embedded at build time (clients/ui/embed.cmake)
 *
 * Threads
 *   main      runs the command, waits for SIGINT/SIGTERM/SIGHUP, stops everything in order;
 *   service   the transport's: on_http and on_http_gone (never blocks: no manager call);
 *   worker    cmd_ui_api.c's: every blocking call to the manager, one at a time, answered
 *             with dfnet_transport_http_respond (any thread);
 *   client    libdfnet-client's: the watch's callbacks, which write to the open streams.
 * ui->lock guards the job queue and the list of open event streams; nothing is called out
 * while it is held (docs/style.md 8).
 */
#ifndef DFNET_CLIENTS_CLI_CMD_UI_H
#define DFNET_CLIENTS_CLI_CMD_UI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dfnet/client.h"
#include "lib/log_limit.h"
#include "lib/transport.h"

#define UI_TOKEN_BYTES 16 /* random bytes of the token: 32 hex digits */
#define UI_STREAMS_MAX 16 /* open /api/events streams at once (more: 503) */
#define UI_PING_MS 15000  /* an SSE comment to every stream this often (cmd_ui_events.c) */
#define UI_JOBS_MAX 64    /* /api requests waiting for the worker (more: 503) */
#define UI_ARG_MAX 512    /* the decoded argument of a request (a moniker) */
#define UI_WATCH_RETRY_MS 1000
#define UI_BACKLOG 100 /* the last events, replayed to a feed that opens */

/* What the worker does for one request. */
typedef enum ui_job_kind {
  UI_JOB_HOSTS = 1, /* /api/hosts: `host list --json` */
  UI_JOB_NODES,     /* /api/nodes: `node list --json` */
  UI_JOB_BOARDS,    /* /api/boards: `board list --json` */
  UI_JOB_LEASES,    /* /api/leases: `lease list --json` */
  UI_JOB_CERTS,     /* /api/certs: `cert list --json` */
  UI_JOB_BIND_WHY,  /* /api/bind-why?node=M: `bind why M --json` */
  UI_JOB_INFO,      /* /api/info: who the page speaks as, to which manager */
  UI_JOB_WATCH,     /* (no request) start the watch again after it ended */
} ui_job_kind_t;

typedef struct ui_job {
  struct ui_job *next, *prev; /* cli_ui_t's jobs */
  ui_job_kind_t kind;
  dfnet_http_id_t http; /* the request to answer (0 for UI_JOB_WATCH) */
  char arg[UI_ARG_MAX]; /* decoded; "" when none */
} ui_job_t;

typedef struct cli_ui {
  dfnet_client_t *client;       /* the user's own connection to the manager */
  const char *manager_url;      /* as the settings gave it (borrowed from cli_globals) */
  dfnet_transport_t *transport; /* serves HTTP: its own service thread */
  char token[UI_TOKEN_BYTES * 2 + 1];
  /* The Host header values a request may carry (a guard against DNS rebinding): the listen
   * address and, when it is loopback, 127.0.0.1, localhost and [::1], each with the port
   * (set before the transport serves) */
  char hosts[4][80];
  dfnet_log_limit_t refusals; /* the 401 lines on stderr (service thread) */

  pthread_mutex_t lock;
  /* worker (cmd_ui_api.c) */
  pthread_cond_t wake;
  pthread_t worker;
  bool worker_started, stopping;
  ui_job_t *jobs; /* utlist DL, oldest first */
  size_t queued;
  /* events (cmd_ui_events.c) */
  dfnet_http_id_t streams[UI_STREAMS_MAX];
  size_t stream_count;
  dfnet_client_watch_id_t watch; /* 0: none running */
  uint64_t events_seen;
  uint32_t ping_ms;          /* ui__events_keepalive_start */
  char *backlog[UI_BACKLOG]; /* the last events as SSE text (malloc'd), oldest at
                                events_seen % UI_BACKLOG once full */
} cli_ui_t;

/* ---- cmd_ui_http.c ---- */
/* The transport's on_http and on_http_gone for the page's endpoint (user: the cli_ui_t). */
bool ui__on_http(void *user, const dfnet_http_request_t *req, dfnet_http_response_t *resp);
void ui__on_http_gone(void *user, dfnet_http_id_t id);
/* Answer request id later (any thread): status, a JSON document (deleted here; NULL: out of
 * memory, answered 500). The answer is dropped if the request is gone. */
void ui__respond_json(cli_ui_t *ui, dfnet_http_id_t id, unsigned status, cJSON *doc);
/* {"error": {"code": "<STATUS>", "message": msg}} with the HTTP status for code. */
void ui__respond_error(cli_ui_t *ui, dfnet_http_id_t id, dfnet_status_t code, const char *msg);

/* ---- cmd_ui_api.c ---- */
/* Start the worker thread. CLI_EXIT_OK, or CLI_EXIT_FAILED (printed). Main thread. */
int ui__worker_start(cli_ui_t *ui);
/* Queue a job (copied). false when the queue is full or stopping (answer 503). Any thread. */
bool ui__job_push(cli_ui_t *ui, ui_job_kind_t kind, dfnet_http_id_t http, const char *arg);
/* Stop the worker after the call it makes, drop what waits (its requests go unanswered:
 * the transport's end answers them), join it. Idempotent. Main thread. */
void ui__worker_stop(cli_ui_t *ui);

/* ---- cmd_ui_events.c ---- */
/* Start the watch of every event (DFNET_CLIENT_WATCH_ALL). OK, or the library's error. Any
 * thread but the client's. */
dfnet_status_t ui__watch_start(cli_ui_t *ui, dfnet_client_error_t *err);
/* /api/events: open the stream of request id (fills *resp: text/event-stream). false when
 * UI_STREAMS_MAX are open (*resp then says 503). Service thread. */
bool ui__events_open(cli_ui_t *ui, dfnet_http_id_t id, dfnet_http_response_t *resp);
/* Forget stream id (gone). Service thread. */
void ui__events_gone(cli_ui_t *ui, dfnet_http_id_t id);
/* Free the backlog. Main thread, once the client is closed. */
void ui__events_free(cli_ui_t *ui);
/* Start writing ": ping" to every open stream every UI_PING_MS (DFNET_UI_PING_MS, 10 ms ..
 * 1 h, for tests), so that the streams of pages that closed are found gone and free their
 * slots. After the transport started. */
void ui__events_keepalive_start(cli_ui_t *ui);

/* ---- ui_assets.c (generated) ---- */
typedef struct ui_asset {
  const char *path;         /* "/app.js" ("/" is index.html) */
  const char *content_type; /* "text/javascript; charset=utf-8" */
  const unsigned char *data;
  size_t len;
} ui_asset_t;
extern const ui_asset_t ui_assets[];
extern const size_t ui_asset_count;

#endif /* DFNET_CLIENTS_CLI_CMD_UI_H */
