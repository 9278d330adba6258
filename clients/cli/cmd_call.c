/* dfnet CLI: a generic call to a driver (`call`) and the entropy verb (`rng read`,
 * proto/dfnet/hw/rng.proto). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "lib/cmdline.h"

#define CALL_PAYLOAD_MAX (4u * 1024u * 1024u - 4096u)

typedef struct call_out {
  bool raw, json;
  cJSON *messages; /* --json */
  size_t count;
  bool write_failed;
} call_out_t;

static void call_message(void *user, dfnet_client_call_id_t id, const uint8_t *data, size_t len) {
  call_out_t *o = user;
  (void)id;
  o->count++;
  if (o->raw) {
    if (cli__write_all(STDOUT_FILENO, data, len) != 0)
      o->write_failed = true;
    return;
  }
  char *hex = cli__hex(data, len);
  if (hex == NULL) {
    o->write_failed = true;
    return;
  }
  if (o->json)
    cJSON_AddItemToArray(o->messages, cJSON_CreateString(hex));
  else
    printf("%s\n", hex);
  free(hex);
}

/* The one user pointer of a call: what it prints and how the main thread waits. */
typedef struct call_wait {
  call_out_t out; /* first: call_message sees a call_out_t */
  int fd[2];
  dfnet_status_t status;
  char message[512];
} call_wait_t;

static void call_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  call_wait_t *w = user;
  (void)id;
  w->status = st;
  snprintf(w->message, sizeof w->message, "%s", msg);
  char b = 1;
  ssize_t wr = write(w->fd[1], &b, 1);
  (void)wr;
}

/* Everything a call holds: its options, what it prints and how the main thread waits. */
typedef struct call_state {
  call_wait_t w;
  cli_payload_t payload;
  uint64_t timeout, credit;
} call_state_t;

static int call_prepare(cli_run_t *run) {
  call_state_t *s = run->ctx;
  call_out_t *out = &s->w.out;
  int rc = cli__payload_check(&s->payload);
  if (rc != CLI_EXIT_OK)
    return rc;
  if (out->raw && out->json)
    return cli__usage("--raw and --json exclude each other");
  if ((rc = cli__payload_load(&s->payload, CALL_PAYLOAD_MAX, NULL)) != CLI_EXIT_OK)
    return rc;
  if (pipe(s->w.fd) != 0) {
    s->w.fd[0] = s->w.fd[1] = -1;
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  }
  if (out->json)
    out->messages = cJSON_CreateArray();
  return CLI_EXIT_OK;
}

static int call_request(cli_run_t *run) {
  call_state_t *s = run->ctx;
  call_wait_t *w = &s->w;
  dfnet_client_call_options_t co = {.deadline_ms = (uint32_t)s->timeout,
                                    .credit = (uint32_t)s->credit};
  dfnet_status_t st =
      dfnet_client_call_start(run->client, run->args[0], run->args[1], s->payload.data,
                              s->payload.len, &co, call_message, call_done, w, NULL);
  if (st != DFNET_STATUS_OK)
    return cli__fail(st, "call %s %s not started", run->args[0], run->args[1]);
  char b;
  while (read(w->fd[0], &b, 1) < 0 && errno == EINTR) {
  }
  fflush(stdout);
  if (w->status != DFNET_STATUS_OK)
    return cli__fail(w->status, "%s",
                     w->message[0] ? w->message : dfnet_status_description(w->status));
  if (w->out.write_failed)
    return cli__fail(DFNET_STATUS_UNAVAILABLE, "writing the reply failed");
  return CLI_EXIT_OK;
}

/* --json: the replies, after the call ended well (printed as they came otherwise). */
static cJSON *call_json(cli_run_t *run) {
  call_state_t *s = run->ctx;
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "target", run->args[0]);
  cJSON_AddStringToObject(doc, "method", run->args[1]);
  cJSON_AddStringToObject(doc, "status", "OK");
  cJSON_AddItemToObject(doc, "messages", s->w.out.messages);
  s->w.out.messages = NULL;
  return doc;
}

static void call_release(cli_run_t *run) {
  call_state_t *s = run->ctx;
  cJSON_Delete(s->w.out.messages);
  if (s->w.fd[0] >= 0) {
    close(s->w.fd[0]);
    close(s->w.fd[1]);
  }
  free(s->payload.data);
}

int cmd_call(int argc, char **argv) {
  static const cli_command_ops_t ops = {call_prepare, call_request, call_json, NULL, call_release};
  call_state_t s = {.w = {.status = DFNET_STATUS_OK, .fd = {-1, -1}}, .credit = 16};
  const cli_option_t opts[] = {
      CLI_OPT_DATA(&s.payload, "the request message"),
      {"timeout", 't', CLI_OPT_UINT, &s.timeout, 1, 86400000, "MS", "the call's deadline"},
      {"credit", 0, CLI_OPT_UINT, &s.credit, 1, 65536, "N",
       "streaming: replies in flight before we grant more (default 16)"},
      {"raw", 0, CLI_OPT_FLAG, &s.w.out.raw, 0, 0, NULL, "write reply payloads as raw bytes"},
      CLI_OPT_JSON(&s.w.out.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "call TARGET METHOD [--data-hex H | --data-file F] [--timeout MS] [--raw] [--json]",
      .about = "Call METHOD on the driver serving TARGET (role operator). Each reply message is "
               "printed as one line of hex (or written raw with --raw); a server-streaming method "
               "prints one line per message until the stream ends.",
      .options = opts,
      .min_args = 2,
      .max_args = 2,
      .args_help = CLI_TARGET_HELP("a", "<class>") "  METHOD   /<package>.<Service>/<Method>, "
                                                   "e.g. /dfnet.hw.rng.Rng/Read\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- rng read ------------------------------------------------------------------------ */

#define RNG_READ_MAX 65536u

typedef struct rng_read {
  cli_unary_t call; /* first: cli__unary_request */
  cli_bytes_out_t out;
  uint64_t count; /* N */
} rng_read_t;

static int rng_read_prepare(cli_run_t *run) {
  rng_read_t *s = run->ctx;
  if (!dfnet_cmdline_uint(run->args[1], 0, 1, RNG_READ_MAX, &s->count))
    return cli__usage("N must be a number in 1..%u, not '%s'", RNG_READ_MAX, run->args[1]);
  if ((s->out.hex ? 1 : 0) + (s->out.out_file ? 1 : 0) + (s->out.json ? 1 : 0) > 1)
    return cli__usage("--hex, --out and --json exclude each other");
  int rc = cli__unary_new(&s->call);
  if (rc == CLI_EXIT_OK)
    cli__pb_varint(s->call.pb, 1, s->count); /* ReadRequest.count */
  return rc;
}

static int rng_read_print(cli_run_t *run) {
  const rng_read_t *s = run->ctx;
  const uint8_t *data = NULL;
  size_t len = 0;
  if (cli__pb_find_bytes(s->call.reply, s->call.reply_len, 1, &data, &len) < 0) /* .data */
    return cli__fail(DFNET_STATUS_DATA_LOSS, "malformed ReadReply (%zu bytes)", s->call.reply_len);
  if (len != s->count)
    fprintf(stderr, "dfnet: warning: asked for %llu bytes, got %zu\n", (unsigned long long)s->count,
            len);
  cJSON *doc = NULL;
  if (s->out.json) {
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "target", run->args[0]);
    cJSON_AddNumberToObject(doc, "count", (double)len);
  }
  return cli__bytes_print(&s->out, data, len, doc);
}

int cmd_rng_read(int argc, char **argv) {
  static const cli_command_ops_t ops = {rng_read_prepare, cli__unary_request, NULL, rng_read_print,
                                        cli__unary_release};
  rng_read_t s = {.call = {.method = "/dfnet.hw.rng.Rng/Read", .deadline_ms = 30000},
                  .out.raw_when_piped = true};
  const cli_option_t opts[] = {
      {"hex", 0, CLI_OPT_FLAG, &s.out.hex, 0, 0, NULL, "print the bytes as hex"},
      {"out", 'o', CLI_OPT_STRING, &s.out.out_file, 0, 0, "FILE", "write the raw bytes to FILE"},
      {"timeout", 't', CLI_OPT_UINT, &s.call.deadline_ms, 1, 86400000, "MS",
       "the call's deadline (default 30000)"},
      CLI_OPT_JSON(&s.out.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "rng read TARGET N [--hex | --out FILE | --json] [--timeout MS]",
      .about =
          "Read N bytes of entropy from a hardware RNG (/dfnet.hw.rng.Rng/Read). Output: "
          "--hex prints hex, --out writes raw bytes to FILE; otherwise raw bytes when stdout "
          "is not a terminal, hex when it is.",
      .options = opts,
      .min_args = 2,
      .max_args = 2,
      .args_help = CLI_TARGET_HELP("the RNG's", "rng") "  N        how many bytes, 1..65536\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}
