/* dfnet CLI: `serial log TARGET` — a serial port's history (Serial.Log,
 * proto/dfnet/hw/serial.proto): what the port received since its driver started, as far as
 * the driver's ring holds it, from a time, the last N lines or a byte offset; with
 * --follow, then what arrives, until Ctrl-C. The bytes go to stdout as they came; --json
 * prints one JSON object per item instead (offset, time, dropped, data as text). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "clients/cli/serial_log.h"
#include "lib/cmdline.h"

#define M_LOG "/dfnet.hw.serial.Serial/Log"

typedef struct serial_log_cmd {
  cli_stream_wait_t wait; /* first: the call's user serves cli__stream_wait_done */
  const char *since;      /* --since: a duration ago or a time */
  uint64_t lines;         /* --lines */
  const char *offset;     /* --offset */
  bool follow, json;
  cli_pb_t *pb;
  uint64_t dropped;
} serial_log_t;

bool cli__serial_log_item(const uint8_t *msg, size_t len, cli_log_item_t *out) {
  memset(out, 0, sizeof *out);
  if (cli__pb_find_bytes(msg, len, 1, &out->data, &out->len) < 0 || /* LogData.data */
      cli__pb_find_varint(msg, len, 2, &out->offset) < 0 ||         /* .offset */
      cli__pb_find_varint(msg, len, 3, &out->unix_ms) < 0 ||        /* .unix_ms */
      cli__pb_find_varint(msg, len, 4, &out->dropped) < 0)          /* .dropped */
    return false;
  return true;
}

static void log_item(void *user, dfnet_client_call_id_t id, const uint8_t *msg, size_t len) {
  serial_log_t *s = user;
  (void)id;
  cli_log_item_t it;
  if (!cli__serial_log_item(msg, len, &it))
    return;
  s->dropped += it.dropped;
  if (!s->json) {
    (void)cli__write_all(STDOUT_FILENO, it.data, it.len);
    return;
  }
  if (it.len == 0 && it.dropped == 0)
    return; /* the "in place" item of a follow stream */
  cJSON *o = cJSON_CreateObject();
  char *text = strndup((const char *)it.data, it.len);
  cJSON_AddNumberToObject(o, "offset", (double)it.offset);
  cJSON_AddItemToObject(o, "time", cli__json_time(it.unix_ms));
  cJSON_AddNumberToObject(o, "dropped", (double)it.dropped);
  cJSON_AddStringToObject(o, "data", text != NULL ? text : "");
  free(text);
  cli__json_line(o);
}

static int log_prepare(cli_run_t *run) {
  serial_log_t *s = run->ctx;
  int given = (s->since != NULL) + (s->lines != 0) + (s->offset != NULL);
  if (given > 1)
    return cli__usage("--since, --lines and --offset exclude each other");
  if (cli__stream_wait_open(&s->wait) != CLI_EXIT_OK)
    return CLI_EXIT_FAILED;
  if ((s->pb = malloc(sizeof *s->pb)) == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  cli__pb_reset(s->pb);
  if (s->since != NULL) {
    uint64_t t;
    if (!cli__time_parse(s->since, cli__now_ms(), &t))
      return cli__usage("--since: '%s' is neither a duration (10m, 2h) nor a time", s->since);
    cli__pb_varint(s->pb, 1, t); /* LogRequest.since_unix_ms */
  } else if (s->lines != 0) {
    cli__pb_varint(s->pb, 2, s->lines); /* .last_lines */
  } else if (s->offset != NULL) {
    uint64_t offset;
    if (!dfnet_cmdline_uint(s->offset, 0, 0, UINT64_MAX, &offset))
      return cli__usage("--offset must be a byte offset, not '%s'", s->offset);
    cli__pb_varint(s->pb, 3, offset); /* .offset */
  }
  if (s->follow)
    cli__pb_varint(s->pb, 5, 1); /* .follow */
  return CLI_EXIT_OK;
}

static int log_request(cli_run_t *run) {
  serial_log_t *s = run->ctx;
  dfnet_status_t st =
      cli__stream_run(&s->wait, run->client, run->args[0], M_LOG, s->pb->buf, s->pb->len, log_item);
  if (st != DFNET_STATUS_OK)
    return cli__fail(st, "cannot read the log of %s", run->args[0]);
  return CLI_EXIT_OK; /* closing the client ends the stream */
}

static int log_print(cli_run_t *run) {
  const serial_log_t *s = run->ctx;
  if (s->dropped > 0)
    fprintf(stderr, "dfnet: %llu bytes were no longer kept (the driver's history is a ring)\n",
            (unsigned long long)s->dropped);
  if (!cli__stop_signal() && s->wait.status != DFNET_STATUS_OK)
    return cli__fail(s->wait.status, "%s", s->wait.message);
  return CLI_EXIT_OK;
}

static void log_release(cli_run_t *run) {
  serial_log_t *s = run->ctx;
  free(s->pb);
  cli__stream_wait_close(&s->wait);
}

int cmd_serial_log(int argc, char **argv) {
  static const cli_command_ops_t ops = {log_prepare, log_request, NULL, log_print, log_release};
  serial_log_t s = {.wait = {.pipe = {-1, -1}}};
  const cli_option_t opts[] = {
      {"since", 0, CLI_OPT_STRING, &s.since, 0, 0, "WHEN",
       "from this time on: a duration ago (10m, 2h) or a time (2026-12-07T10:00:00Z)"},
      {"lines", 0, CLI_OPT_UINT, &s.lines, 1, 1000000, "N", "the last N lines"},
      {"offset", 0, CLI_OPT_STRING, &s.offset, 0, 0, "BYTE",
       "from this byte of the port's output (a LogData offset)"},
      {"follow", 'f', CLI_OPT_FLAG, &s.follow, 0, 0, NULL, "then print what arrives, until Ctrl-C"},
      {"json", 0, CLI_OPT_FLAG, &s.json, 0, 0, NULL,
       "one JSON object per line per chunk: offset, time, dropped, data"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "serial log TARGET [--since WHEN | --lines N | --offset BYTE] [--follow] [--json]",
      .about =
          "Print what a serial port received since its driver started, as far as the "
          "driver's history holds it (default 1 MiB): all of it, or from --since, the last "
          "--lines, or a byte --offset; --follow then prints what arrives. Anyone who may "
          "call may read a port's log, also while someone else holds its lease.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = CLI_TARGET_HELP("the port's", "serial")};
  return cli__run(argc, argv, &syn, &ops, &s);
}
