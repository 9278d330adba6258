/* dfnet CLI: a generic call to a driver (`call`) and the entropy verb (`rng read`,
 * proto/dfnet/hw/rng.proto). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"

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

int cmd_call(int argc, char **argv) {
  const char *hex = NULL, *file = NULL;
  bool raw = false, json = false;
  uint64_t timeout = 0, credit = 16;
  const cli_option_t opts[] = {
      {"data-hex", 0, CLI_OPT_STRING, &hex, 0, 0, "HEX", "the request message, hex"},
      {"data-file", 0, CLI_OPT_STRING, &file, 0, 0, "FILE", "the request message, from a file"},
      {"timeout", 't', CLI_OPT_UINT, &timeout, 1, 86400000, "MS", "the call's deadline"},
      {"credit", 0, CLI_OPT_UINT, &credit, 1, 65536, "N",
       "streaming: replies in flight before we grant more (default 16)"},
      {"raw", 0, CLI_OPT_FLAG, &raw, 0, 0, NULL, "write reply payloads as raw bytes"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "call TARGET METHOD [--data-hex H | --data-file F] [--timeout MS] [--raw] [--json]",
      "Call METHOD on the driver serving TARGET (role operator). Each reply message is printed "
      "as one line of hex (or written raw with --raw); a server-streaming method prints one "
      "line per message until the stream ends.",
      opts,
      2,
      2,
      "  TARGET   a node moniker or class/<class>/<NNN>\n"
      "  METHOD   /<package>.<Service>/<Method>, e.g. /dfnet.hw.rng.Rng/Read\n"};
  const char *args[2];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (hex != NULL && file != NULL)
    return cli__usage("--data-hex and --data-file exclude each other");
  if (raw && json)
    return cli__usage("--raw and --json exclude each other");
  uint8_t *req = NULL;
  size_t len = 0;
  if (hex != NULL && cli__unhex(hex, &req, &len) != 0)
    return cli__usage("--data-hex: '%s' is not an even number of hex digits", hex);
  if (file != NULL && cli__read_file(file, CALL_PAYLOAD_MAX, &req, &len) != 0)
    return cli__usage("--data-file %s: %s", file, strerror(errno));
  call_wait_t w = {.out = {.raw = raw, .json = json}, .status = DFNET_STATUS_OK};
  call_out_t *out = &w.out;
  if (pipe(w.fd) != 0) {
    free(req);
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  }
  if (json)
    out->messages = cJSON_CreateArray();
  dfnet_client_t *c = NULL;
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    goto ready;
  dfnet_client_call_options_t co = {.deadline_ms = (uint32_t)timeout, .credit = (uint32_t)credit};
  dfnet_status_t st = dfnet_client_call_start(c, args[0], args[1], req, len, &co, call_message,
                                              call_done, &w, NULL);
  if (st != DFNET_STATUS_OK) {
    rc = cli__fail(st, "call %s %s not started", args[0], args[1]);
    goto ready;
  }
  char b;
  while (read(w.fd[0], &b, 1) < 0 && errno == EINTR) {
  }
  fflush(stdout);
  if (w.status != DFNET_STATUS_OK) {
    rc = cli__fail(w.status, "%s", w.message[0] ? w.message : dfnet_status_description(w.status));
  } else if (out->write_failed) {
    rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "writing the reply failed");
  } else if (json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "target", args[0]);
    cJSON_AddStringToObject(doc, "method", args[1]);
    cJSON_AddStringToObject(doc, "status", "OK");
    cJSON_AddItemToObject(doc, "messages", out->messages);
    out->messages = NULL;
    rc = cli__json_print(doc);
  }
ready:
  dfnet_client_close(c);
  cJSON_Delete(out->messages);
  close(w.fd[0]);
  close(w.fd[1]);
  free(req);
  return rc;
}

/* ---- rng read ------------------------------------------------------------------------ */

#define RNG_READ_MAX 65536u

int cmd_rng_read(int argc, char **argv) {
  bool hex = false, json = false;
  const char *out_file = NULL;
  uint64_t timeout = 30000;
  const cli_option_t opts[] = {
      {"hex", 0, CLI_OPT_FLAG, &hex, 0, 0, NULL, "print the bytes as hex"},
      {"out", 'o', CLI_OPT_STRING, &out_file, 0, 0, "FILE", "write the raw bytes to FILE"},
      {"timeout", 't', CLI_OPT_UINT, &timeout, 1, 86400000, "MS",
       "the call's deadline (default 30000)"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "rng read TARGET N [--hex | --out FILE | --json] [--timeout MS]",
      "Read N bytes of entropy from a hardware RNG (/dfnet.hw.rng.Rng/Read). Output: --hex "
      "prints hex, --out writes raw bytes to FILE; otherwise raw bytes when stdout is not a "
      "terminal, hex when it is.",
      opts,
      2,
      2,
      "  TARGET   the RNG's node moniker or class/rng/<NNN>\n"
      "  N        how many bytes, 1..65536\n"};
  const char *args[2];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  char *end = NULL;
  errno = 0;
  unsigned long long n = strtoull(args[1], &end, 0);
  if (args[1][0] == '-' || errno != 0 || end == args[1] || *end != '\0' || n < 1 ||
      n > RNG_READ_MAX)
    return cli__usage("N must be a number in 1..%u, not '%s'", RNG_READ_MAX, args[1]);
  if ((hex ? 1 : 0) + (out_file ? 1 : 0) + (json ? 1 : 0) > 1)
    return cli__usage("--hex, --out and --json exclude each other");
  cli_pb_t *pb = calloc(1, sizeof *pb);
  if (pb == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  cli__pb_varint(pb, 1, n); /* ReadRequest.count */
  dfnet_client_t *c = NULL;
  uint8_t *reply = NULL;
  size_t reply_len = 0;
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    goto done;
  dfnet_client_call_options_t co = {.deadline_ms = (uint32_t)timeout};
  dfnet_client_error_t err;
  if (dfnet_client_call(c, args[0], "/dfnet.hw.rng.Rng/Read", pb->buf, pb->len, &co, &reply,
                        &reply_len, &err) != DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto done;
  }
  const uint8_t *data = NULL;
  size_t data_len = 0;
  if (cli__pb_find_bytes(reply, reply_len, 1, &data, &data_len) < 0) { /* ReadReply.data */
    rc = cli__fail(DFNET_STATUS_DATA_LOSS, "malformed ReadReply (%zu bytes)", reply_len);
    goto done;
  }
  if (data_len != n)
    fprintf(stderr, "dfnet: warning: asked for %llu bytes, got %zu\n", n, data_len);
  if (out_file != NULL) {
    int fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || cli__write_all(fd, data, data_len) != 0)
      rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "%s: %s", out_file, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == CLI_EXIT_OK)
      rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "%s: %s", out_file, strerror(errno));
  } else if (json || hex || isatty(STDOUT_FILENO)) {
    char *h = cli__hex(data ? data : (const uint8_t *)"", data_len);
    if (h == NULL) {
      rc = cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    } else if (json) {
      cJSON *doc = cJSON_CreateObject();
      cJSON_AddStringToObject(doc, "target", args[0]);
      cJSON_AddNumberToObject(doc, "count", (double)data_len);
      cJSON_AddStringToObject(doc, "hex", h);
      rc = cli__json_print(doc);
    } else {
      printf("%s\n", h);
    }
    free(h);
  } else if (cli__write_all(STDOUT_FILENO, data, data_len) != 0) {
    rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "stdout: %s", strerror(errno));
  }
done:
  free(reply);
  dfnet_client_close(c);
  free(pb);
  return rc;
}
