/* `dfnet ui`: the /api answers (cmd_ui.h; docs/ui.md "The API"). libdfnet-client's calls
 * block their thread, so none is made on the transport's service thread: on_http queues a
 * job, and one worker thread (enough for one user's local page) asks the manager and
 * answers with the very document the CLI's --json prints (cli__hosts_json ...:
 * clients/cli/JSON.md), or {"error": {"code", "message"}}. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utlist.h>

#include "clients/cli/cli.h"
#include "clients/cli/cmd_ui.h"
#include "clients/cli/trust.h"

bool ui__job_push(cli_ui_t *ui, ui_job_kind_t kind, dfnet_http_id_t http, const char *arg) {
  ui_job_t *j = calloc(1, sizeof *j);
  if (j == NULL)
    return false;
  j->kind = kind;
  j->http = http;
  snprintf(j->arg, sizeof j->arg, "%s", arg != NULL ? arg : "");
  pthread_mutex_lock(&ui->lock);
  bool ok = !ui->stopping && ui->queued < UI_JOBS_MAX;
  if (ok) {
    DL_APPEND(ui->jobs, j);
    ui->queued++;
    pthread_cond_signal(&ui->wake);
  }
  pthread_mutex_unlock(&ui->lock);
  if (!ok)
    free(j);
  return ok;
}

/* The next job, or NULL once stopping. */
static ui_job_t *job_pop(cli_ui_t *ui) {
  pthread_mutex_lock(&ui->lock);
  while (!ui->stopping && ui->jobs == NULL)
    pthread_cond_wait(&ui->wake, &ui->lock);
  ui_job_t *j = NULL;
  if (!ui->stopping) {
    j = ui->jobs;
    DL_DELETE(ui->jobs, j);
    ui->queued--;
  }
  pthread_mutex_unlock(&ui->lock);
  return j;
}

/* A library call's outcome: answered with its document, or with the error. */
static void answer(cli_ui_t *ui, const ui_job_t *j, dfnet_status_t st,
                   const dfnet_client_error_t *err, cJSON *doc) {
  if (st == DFNET_STATUS_OK)
    ui__respond_json(ui, j->http, 200, doc);
  else
    ui__respond_error(ui, j->http, err->code, err->message);
}

static void do_hosts(cli_ui_t *ui, const ui_job_t *j) {
  dfnet_client_host_list_t *l = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_list_hosts(ui->client, NULL, &l, &err);
  answer(ui, j, st, &err, st == DFNET_STATUS_OK ? cli__hosts_json(l) : NULL);
  dfnet_client_host_list_free(l);
}

/* /api/nodes and /api/boards: both from the verbose node list (boards: its board nodes). */
static void do_nodes(cli_ui_t *ui, const ui_job_t *j) {
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_list_nodes(ui->client, NULL, false, true, NULL, &l, &err);
  cJSON *doc = NULL;
  if (st == DFNET_STATUS_OK)
    doc = j->kind == UI_JOB_BOARDS ? cli__boards_json(l) : cli__nodes_json(l);
  answer(ui, j, st, &err, doc);
  dfnet_client_node_list_free(l);
}

static void do_leases(cli_ui_t *ui, const ui_job_t *j) {
  dfnet_client_lease_list_t *l = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_list_leases(ui->client, NULL, NULL, &l, &err);
  answer(ui, j, st, &err, st == DFNET_STATUS_OK ? cli__leases_json(l) : NULL);
  dfnet_client_lease_list_free(l);
}

static void do_certs(cli_ui_t *ui, const ui_job_t *j) {
  cli_cert_list_t l = {0};
  dfnet_client_error_t err;
  dfnet_status_t st = cli__cert_list_fetch(ui->client, &l, &err);
  answer(ui, j, st, &err, st == DFNET_STATUS_OK ? cli__certs_json(&l) : NULL);
  cli__cert_list_free(&l);
}

static void do_bind_why(cli_ui_t *ui, const ui_job_t *j) {
  dfnet_client_bind_trace_list_t *l = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_bind_why(ui->client, j->arg, NULL, NULL, &l, &err);
  answer(ui, j, st, &err, st == DFNET_STATUS_OK ? cli__bind_why_json(j->arg, l) : NULL);
  dfnet_client_bind_trace_list_free(l);
}

/* {"name", "role", "manager", "manager_name", "events_seen"}: the header of the page. */
static void do_info(cli_ui_t *ui, const ui_job_t *j) {
  dfnet_client_info_t info;
  dfnet_status_t st = dfnet_client_info(ui->client, &info);
  if (st != DFNET_STATUS_OK) {
    ui__respond_error(ui, j->http, st, "the session to the manager is not up");
    return;
  }
  pthread_mutex_lock(&ui->lock);
  uint64_t seen = ui->events_seen;
  pthread_mutex_unlock(&ui->lock);
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "name", info.name);
  cJSON_AddStringToObject(doc, "role", info.role);
  cJSON_AddStringToObject(doc, "manager", ui->manager_url);
  cJSON_AddStringToObject(doc, "manager_name", info.server_name);
  cJSON_AddNumberToObject(doc, "events_seen", (double)seen);
  ui__respond_json(ui, j->http, 200, doc);
}

/* The watch ended without being asked to: start it again after a pause (the session may be
 * coming back), until it runs or the command stops. */
static void do_watch(cli_ui_t *ui, const ui_job_t *j) {
  (void)j;
  struct timespec pause = {.tv_sec = UI_WATCH_RETRY_MS / 1000,
                           .tv_nsec = (long)(UI_WATCH_RETRY_MS % 1000) * 1000000L};
  nanosleep(&pause, NULL);
  dfnet_client_error_t err;
  if (ui__watch_start(ui, &err) != DFNET_STATUS_OK) /* the session is not back yet */
    (void)ui__job_push(ui, UI_JOB_WATCH, 0, NULL);  /* false: stopping */
}

/* What the worker does for each kind of job. */
static void (*const job_fns[])(cli_ui_t *ui, const ui_job_t *j) = {
    [UI_JOB_HOSTS] = do_hosts,   [UI_JOB_NODES] = do_nodes, [UI_JOB_BOARDS] = do_nodes,
    [UI_JOB_LEASES] = do_leases, [UI_JOB_CERTS] = do_certs, [UI_JOB_BIND_WHY] = do_bind_why,
    [UI_JOB_INFO] = do_info,     [UI_JOB_WATCH] = do_watch,
};

static void *worker_main(void *arg) {
  cli_ui_t *ui = arg;
  for (ui_job_t *j; (j = job_pop(ui)) != NULL; free(j))
    if ((size_t)j->kind < sizeof job_fns / sizeof job_fns[0] && job_fns[j->kind] != NULL)
      job_fns[j->kind](ui, j);
  return NULL;
}

int ui__worker_start(cli_ui_t *ui) {
  if (pthread_create(&ui->worker, NULL, worker_main, ui) != 0)
    return cli__fail(DFNET_STATUS_INTERNAL, "cannot start the worker thread");
  ui->worker_started = true;
  return CLI_EXIT_OK;
}

void ui__worker_stop(cli_ui_t *ui) {
  pthread_mutex_lock(&ui->lock);
  ui->stopping = true;
  ui_job_t *left = ui->jobs;
  ui->jobs = NULL;
  ui->queued = 0;
  pthread_cond_broadcast(&ui->wake);
  pthread_mutex_unlock(&ui->lock);
  ui_job_t *j, *tmp;
  DL_FOREACH_SAFE(left, j, tmp) {
    DL_DELETE(left, j);
    free(j);
  }
  if (ui->worker_started)
    pthread_join(ui->worker, NULL);
  ui->worker_started = false;
}
