/* dfnet CLI: `watch` — the fleet's events as they happen, one line each (JSON Lines with
 * --json, documented in clients/cli/JSON.md "watch"), until Ctrl-C, N events or a timeout. */
#include <signal.h>
#include <sys/select.h>
#include <unistd.h>

#include "clients/cli/cli.h"

/* ---- watch ---------------------------------------------------------------------------- */

typedef struct watch_state {
  /* its pipe: written when the watch should end (count reached, its end, a signal) */
  cli_stream_wait_t wait;
  bool json, nodes, drivers, hosts;
  uint64_t want, seen; /* --count (0: no end), events printed */
  uint64_t timeout;    /* --timeout MS (0: none) */
  bool ended;          /* the wait woke for the watch's end (not the count, a signal) */
  bool timed_out;
} watch_state_t;

static volatile sig_atomic_t watch_interrupted;
static int watch_sigfd = -1;

static void watch_on_signal(int sig) {
  (void)sig;
  watch_interrupted = 1;
  if (watch_sigfd >= 0) {
    char b = 's';
    ssize_t w = write(watch_sigfd, &b, 1);
    (void)w;
  }
}

cJSON *cli__event_json(const dfnet_client_event_t *ev) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "kind", dfnet_client_event_kind_str(ev->kind));
  cJSON_AddStringToObject(o, "subject", ev->subject);
  cJSON_AddItemToObject(o, "detail", cli__json_string_or_null(ev->detail));
  cJSON_AddStringToObject(o, "code", dfnet_status_str(ev->code));
  cJSON_AddItemToObject(o, "message", cli__json_string_or_null(ev->message));
  cJSON_AddNumberToObject(o, "time_ms", (double)ev->time_ms);
  return o;
}

static void watch_event(void *user, dfnet_client_watch_id_t w, const dfnet_client_event_t *ev) {
  watch_state_t *s = user;
  (void)w;
  if (s->want != 0 && s->seen >= s->want)
    return;
  char when[40];
  cli__time_str(ev->time_ms, when, sizeof when);
  if (s->json) {
    cli__json_line(cli__event_json(ev));
  } else {
    printf("%s %-18s %s", when, dfnet_client_event_kind_str(ev->kind), ev->subject);
    if (ev->detail[0] != '\0')
      printf(" %s", ev->detail);
    if (ev->code != DFNET_STATUS_OK || ev->message[0] != '\0')
      printf(" (%s: %s)", dfnet_status_str(ev->code), ev->message);
    printf("\n");
  }
  fflush(stdout);
  s->seen++;
  if (s->want != 0 && s->seen >= s->want) {
    char b = 'c';
    ssize_t wr = write(s->wait.pipe[1], &b, 1);
    (void)wr;
  }
}

static void watch_end(void *user, dfnet_client_watch_id_t w, dfnet_status_t status,
                      const char *message) {
  watch_state_t *s = user;
  (void)w;
  cli__stream_wait_end(&s->wait, status, message);
}

/* Wait for: count reached, the end, a signal or the timeout. */
static void watch_wait(watch_state_t *s) {
  for (;;) {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(s->wait.pipe[0], &rd);
    struct timeval tv = {.tv_sec = (time_t)(s->timeout / 1000),
                         .tv_usec = (long)(s->timeout % 1000) * 1000};
    int n = select(s->wait.pipe[0] + 1, &rd, NULL, NULL, s->timeout ? &tv : NULL);
    if (n == 0) {
      s->timed_out = true;
      return;
    }
    if (n < 0)
      continue; /* EINTR: the handler wrote to the pipe */
    char b;
    if (read(s->wait.pipe[0], &b, 1) == 1) {
      s->ended = b == 'e';
      return;
    }
  }
}

static int watch_prepare(cli_run_t *run) {
  watch_state_t *s = run->ctx;
  if (pipe(s->wait.pipe) != 0) {
    s->wait.pipe[0] = s->wait.pipe[1] = -1;
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe failed");
  }
  return CLI_EXIT_OK;
}

static int watch_request(cli_run_t *run) {
  watch_state_t *s = run->ctx;
  unsigned what = (s->nodes ? DFNET_CLIENT_WATCH_NODES : 0) |
                  (s->drivers ? DFNET_CLIENT_WATCH_DRIVERS : 0) |
                  (s->hosts ? DFNET_CLIENT_WATCH_HOSTS : 0);
  watch_sigfd = s->wait.pipe[1];
  struct sigaction sa = {.sa_handler = watch_on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  dfnet_client_watch_id_t id;
  dfnet_client_error_t err;
  if (dfnet_client_watch(run->client, what, watch_event, watch_end, s, &id, &err) !=
      DFNET_STATUS_OK)
    return cli__fail_err(&err);
  watch_wait(s);
  if (!s->ended)
    dfnet_client_watch_cancel(run->client, id);
  return CLI_EXIT_OK; /* closing the client runs watch_end */
}

/* How the watch ended (the client closed: watch_end has run). */
static int watch_print(cli_run_t *run) {
  const watch_state_t *s = run->ctx;
  if (s->timed_out && !(s->want != 0 && s->seen >= s->want))
    return cli__fail(DFNET_STATUS_DEADLINE_EXCEEDED, "%llu event(s) in %llu ms",
                     (unsigned long long)s->seen, (unsigned long long)s->timeout);
  if (s->ended && s->wait.status != DFNET_STATUS_OK && s->wait.status != DFNET_STATUS_CANCELLED)
    return cli__fail(s->wait.status, "watch ended: %s", s->wait.message);
  return CLI_EXIT_OK;
}

static void watch_release(cli_run_t *run) {
  watch_state_t *s = run->ctx;
  watch_sigfd = -1;
  cli__stream_wait_close(&s->wait);
}

int cmd_watch(int argc, char **argv) {
  static const cli_command_ops_t ops = {watch_prepare, watch_request, NULL, watch_print,
                                        watch_release};
  watch_state_t s = {.wait = {.status = DFNET_STATUS_OK, .pipe = {-1, -1}}};
  const cli_option_t opts[] = {
      {"nodes", 0, CLI_OPT_FLAG, &s.nodes, 0, 0, NULL, "node events"},
      {"drivers", 0, CLI_OPT_FLAG, &s.drivers, 0, 0, NULL, "driver events"},
      {"hosts", 0, CLI_OPT_FLAG, &s.hosts, 0, 0, NULL, "host events (default: all three)"},
      {"count", 'n', CLI_OPT_UINT, &s.want, 1, 1000000000, "N", "stop after N events"},
      {"timeout", 0, CLI_OPT_UINT, &s.timeout, 1, 86400000, "MS",
       "stop after MS milliseconds (exit 1, DEADLINE_EXCEEDED, unless --count was reached)"},
      {"json", 0, CLI_OPT_FLAG, &s.json, 0, 0, NULL, "one JSON object per line per event"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "watch [--nodes] [--drivers] [--hosts] [-n N] [--timeout MS] [--json]",
      .about =
          "Print the fleet's events as they happen, one per line, until Ctrl-C (exit 0), N "
          "events, or the timeout.",
      .options = opts};
  return cli__run(argc, argv, &syn, &ops, &s);
}
