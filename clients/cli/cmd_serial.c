/* dfnet CLI: serial ports (proto/dfnet/hw/serial.proto) — console, write, read, configure.
 *
 * `serial console` attaches to the port (Attach: a stream of what it receives from now on,
 * holding the port's writer seat) and writes what arrives to stdout, and sends what is
 * typed on stdin with Write; `--read-only` watches (Log with follow: no seat, nothing sent,
 * allowed while someone else holds the port's lease). When the connection to the manager
 * is lost the console asks again from the byte after the last it printed (LogData.offset),
 * so nothing the driver's history still holds is missed. When stdin is a terminal it is put
 * in raw mode (every key, Ctrl-C included, goes to the board) and restored on every way
 * out: `~.` at the start of a line, end of input, the stream ending, SIGTERM/SIGHUP, or an
 * error. `~~` at the start of a line sends one `~` (ssh's escape rules). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "clients/cli/serial_log.h"

#define SERIAL_CHUNK 4096u
#define M_CONFIGURE "/dfnet.hw.serial.Serial/Configure"
#define M_WRITE "/dfnet.hw.serial.Serial/Write"
#define M_READ "/dfnet.hw.serial.Serial/Read"
#define M_LOG "/dfnet.hw.serial.Serial/Log"
#define M_ATTACH "/dfnet.hw.serial.Serial/Attach"
#define CONSOLE_RESUME_TRIES 120   /* attempts to resume a stream the connection lost ... */
#define CONSOLE_RESUME_WAIT_MS 500 /* ... this far apart */
#define SERIAL_TARGET_HELP CLI_TARGET_HELP("the port's", "serial")

/* ---- terminal state, restored on every exit path ------------------------------------ */

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

static void terminal_restore(void) {
  if (termios_saved) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    termios_saved = 0;
  }
}

static int terminal_raw(void) {
  if (tcgetattr(STDIN_FILENO, &saved_termios) != 0)
    return -1;
  termios_saved = 1;
  atexit(terminal_restore);
  struct termios raw = saved_termios;
  cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  return tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
}

/* ---- write --------------------------------------------------------------------------- */

static dfnet_status_t serial_write(dfnet_client_t *c, const char *target, const uint8_t *data,
                                   size_t len, uint32_t timeout, dfnet_client_error_t *err) {
  cli_pb_t *pb = malloc(sizeof *pb);
  if (pb == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t off = 0; st == DFNET_STATUS_OK && off < len; off += SERIAL_CHUNK) {
    size_t n = len - off < SERIAL_CHUNK ? len - off : SERIAL_CHUNK;
    cli__pb_reset(pb);
    cli__pb_bytes(pb, 1, data + off, n); /* WriteRequest.data */
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    st = cli__pb_call(c, target, M_WRITE, pb, timeout, &reply, &reply_len, err);
    free(reply);
  }
  free(pb);
  return st;
}

/* ---- console --------------------------------------------------------------------------- */

typedef struct console {
  cli_stream_wait_t wait; /* first: the call's user serves cli__stream_wait_done */
  int ready[2]; /* written once, at the stream's first item (the port's stream is in place) */
  bool got_item;
  bool tty;                          /* stdin is a terminal: raw mode */
  bool line_start, tilde, quit, eof; /* what was typed: console_escape's state, the end */
  bool read_only;                    /* --read-only: Log, nothing typed is sent */
  bool resuming, have_offset;        /* asking again from next_offset */
  bool board;                        /* `board console`: the target is a board's name */
  char target[400];                  /* the port's node (or class path) */
  uint64_t next_offset;              /* the byte after the last one printed */
  dfnet_client_call_id_t sub;        /* the Attach or Log stream */
} console_t;

static void console_data(void *user, dfnet_client_call_id_t id, const uint8_t *msg, size_t len) {
  console_t *k = user;
  (void)id;
  if (!k->got_item) {
    k->got_item = true;
    char b = 'r';
    ssize_t w = write(k->ready[1], &b, 1);
    (void)w;
  }
  cli_log_item_t it;
  if (!cli__serial_log_item(msg, len, &it))
    return;
  if (it.len > 0 || it.dropped > 0 || !k->have_offset) {
    k->next_offset = it.offset + it.len;
    k->have_offset = true;
  }
  /* LogData.dropped is rare (a console that fell 1 MiB behind); a gap in the output shows
   * it. */
  (void)cli__write_all(STDOUT_FILENO, it.data, it.len);
}

/* Apply ssh-style escapes to what was typed: `~.` at a line start quits, `~~` sends `~`.
 * Returns the bytes to send in out (at most 2*len), *quit set on `~.`. */
static size_t console_escape(const uint8_t *in, size_t len, uint8_t *out, bool *line_start,
                             bool *tilde, bool *quit) {
  size_t k = 0;
  for (size_t i = 0; i < len && !*quit; i++) {
    uint8_t ch = in[i];
    if (*tilde) {
      *tilde = false;
      if (ch == '.') {
        *quit = true;
        break;
      }
      if (ch != '~')
        out[k++] = '~';
      out[k++] = ch;
    } else if (*line_start && ch == '~') {
      *tilde = true;
      continue;
    } else {
      out[k++] = ch;
    }
    *line_start = ch == '\r' || ch == '\n';
  }
  return k;
}

static int console_prepare(cli_run_t *run) {
  console_t *k = run->ctx;
  k->tty = isatty(STDIN_FILENO);
  int rc = cli__stream_wait_open(&k->wait);
  if (rc != CLI_EXIT_OK)
    return rc;
  if (pipe(k->ready) != 0) {
    k->ready[0] = k->ready[1] = -1;
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  }
  return CLI_EXIT_OK;
}

/* The port's first item says the stream is in place: from then on nothing the board prints
 * is missed. Wait for it (or the stream's end) before saying "connected". */
static int console_wait_ready(const console_t *k, const char *target) {
  struct pollfd ready[2] = {{.fd = k->ready[0], .events = POLLIN},
                            {.fd = k->wait.pipe[0], .events = POLLIN}};
  int waited;
  do
    waited = poll(ready, 2, 10000);
  while (waited < 0 && errno == EINTR);
  if (waited == 0)
    return cli__fail(DFNET_STATUS_DEADLINE_EXCEEDED, "%s did not start its stream in 10 s", target);
  return CLI_EXIT_OK;
}

/* Send what is typed until `~.`, the end of input, the stream's end or a signal. */
static int console_type(cli_run_t *run, console_t *k) {
  uint8_t in[1024], out[2048];
  while (!k->quit && !k->eof && !cli__stop_signal()) {
    struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                          {.fd = k->wait.pipe[0], .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p[1].revents)
      break; /* the stream ended, or a signal */
    if (!(p[0].revents & (POLLIN | POLLHUP)))
      continue;
    ssize_t n = read(STDIN_FILENO, in, sizeof in);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      k->eof = true;
      break;
    }
    size_t m = console_escape(in, (size_t)n, out, &k->line_start, &k->tilde, &k->quit);
    if (k->read_only)
      continue; /* watching: only `~.` counts */
    dfnet_client_error_t err;
    if (m > 0 && serial_write(run->client, k->target, out, m, 10000, &err) != DFNET_STATUS_OK) {
      terminal_restore();
      return cli__fail_err(&err);
    }
  }
  if (k->eof && !k->tty) {
    /* Input came from a pipe: give the port a moment to answer before leaving. */
    struct pollfd p = {.fd = k->wait.pipe[0], .events = POLLIN};
    (void)poll(&p, 1, 500);
  }
  return CLI_EXIT_OK;
}

/* With the port's stream in place: signals, raw mode, then typing. */
static int console_session(cli_run_t *run, console_t *k) {
  int rc = console_wait_ready(k, k->target);
  if (rc != CLI_EXIT_OK)
    return rc;
  cli__stop_on_signals(k->wait.pipe[1]); /* SIGINT: only when stdin is not in raw mode */
  if (k->tty) {
    if (terminal_raw() != 0)
      return cli__fail(DFNET_STATUS_FAILED_PRECONDITION, "cannot set raw mode: %s",
                       strerror(errno));
    fprintf(stderr, "[dfnet: %s %s; ~. to quit]\r\n",
            k->read_only ? "watching (read-only)" : "connected to", k->target);
  }
  return console_type(run, k);
}

/* Start the console's stream: from now on (first), or from the byte after the last one
 * printed (resuming). */
static dfnet_status_t console_start(cli_run_t *run, console_t *k) {
  cli_pb_t pb;
  cli__pb_reset(&pb);
  if (k->have_offset)
    cli__pb_varint(&pb, 3, k->next_offset); /* LogRequest.offset */
  else
    cli__pb_varint(&pb, 4, 1); /* .now */
  cli__pb_varint(&pb, 5, 1);   /* .follow */
  k->got_item = k->wait.ended = false;
  dfnet_client_call_options_t co = {.credit = 32};
  return dfnet_client_call_start(run->client, k->target, k->read_only ? M_LOG : M_ATTACH, pb.buf,
                                 pb.len, &co, console_data, cli__stream_wait_done, k, &k->sub);
}

/* Drain a pipe written to once per event. */
static void drain(int fd) {
  char buf[64];
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (poll(&p, 1, 0) > 0 && read(fd, buf, sizeof buf) > 0)
    ;
}

/* The stream ended because the connection to the manager was lost (not the port, nor the
 * user): ask again from where it was, a few times. */
static bool console_resume(cli_run_t *run, console_t *k) {
  for (int i = 0; i < CONSOLE_RESUME_TRIES && !cli__stop_signal(); i++) {
    if (k->tty && i == 0)
      fprintf(stderr, "\r\n[dfnet: %s; resuming from byte %llu]\r\n", k->wait.message,
              (unsigned long long)k->next_offset);
    drain(k->wait.pipe[0]); /* the last attempt's end */
    struct pollfd p = {.fd = k->wait.pipe[0], .events = POLLIN};
    (void)poll(&p, 1, CONSOLE_RESUME_WAIT_MS); /* a pause, cut short by a signal */
    drain(k->ready[0]);
    if (console_start(run, k) != DFNET_STATUS_OK)
      continue; /* not connected again yet */
    /* the node may not be back yet either (its host reconnects too): NOT_FOUND, try again */
    if (console_wait_ready(k, k->target) == CLI_EXIT_OK && !k->wait.ended)
      return true;
  }
  return false;
}

static int console_request(cli_run_t *run) {
  console_t *k = run->ctx;
  snprintf(k->target, sizeof k->target, "%s", run->args[0]);
  if (k->board) {
    int rc = cli__board_console(run->client, run->args[0], k->target, sizeof k->target);
    if (rc != CLI_EXIT_OK)
      return rc;
  }
  dfnet_status_t st = console_start(run, k);
  if (st != DFNET_STATUS_OK)
    return cli__fail(st, "cannot %s %s", k->read_only ? "watch" : "attach to", k->target);
  int rc = console_session(run, k);
  while (rc == CLI_EXIT_OK && k->wait.ended && k->wait.status == DFNET_STATUS_UNAVAILABLE &&
         !k->quit && !k->eof && !cli__stop_signal() && k->have_offset &&
         strstr(k->wait.message, "manager") != NULL && console_resume(run, k))
    rc = console_type(run, k);
  terminal_restore();
  if (!k->wait.ended)
    dfnet_client_call_cancel(run->client, k->sub);
  return rc; /* closing the client runs cli__stream_wait_done */
}

/* How the console ended, once the client is closed. */
static int console_print(cli_run_t *run) {
  const console_t *k = run->ctx;
  int rc = CLI_EXIT_OK;
  /* CANCELLED by the user is no failure; by the manager (a lease that ended) it is */
  if (k->wait.ended && !k->quit && !k->eof && !cli__stop_signal() &&
      k->wait.status != DFNET_STATUS_OK &&
      (k->wait.status != DFNET_STATUS_CANCELLED || k->wait.message[0] != '\0'))
    rc = cli__fail(k->wait.status, "console ended: %s", k->wait.message);
  if (k->tty && rc == CLI_EXIT_OK)
    fprintf(stderr, "\n[dfnet: disconnected]\n");
  return rc;
}

static void console_release(cli_run_t *run) {
  console_t *k = run->ctx;
  cli__stream_wait_close(&k->wait);
  for (int i = 0; i < 2; i++)
    if (k->ready[i] >= 0)
      close(k->ready[i]);
}

#define CONSOLE_ABOUT                                                                      \
  "what it receives is written to stdout, what you type is sent to it. One console at a "  \
  "time may type on a port (the writer seat; on a leased port, its holder's); any number " \
  "may watch with --read-only. A lost connection is resumed from the last byte printed. "  \
  "Raw terminal mode when stdin is a terminal; `~.` at the start of a line quits, `~~` "   \
  "sends a `~`."

/* serial console TARGET, or (board) board console NAME. */
static int console_command(int argc, char **argv, bool board) {
  static const cli_command_ops_t ops = {console_prepare, console_request, NULL, console_print,
                                        console_release};
  console_t k = {.wait = {.status = DFNET_STATUS_OK, .pipe = {-1, -1}},
                 .ready = {-1, -1},
                 .line_start = true,
                 .board = board};
  const cli_option_t opts[] = {{"read-only", 0, CLI_OPT_FLAG, &k.read_only, 0, 0, NULL,
                                "watch only: nothing typed is sent, no writer seat taken"},
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = board ? "board console NAME [--read-only]" : "serial console TARGET [--read-only]",
      .about =
          board ? "Connect this terminal to a lab board's console (its serial port): " CONSOLE_ABOUT
                : "Connect this terminal to a serial port: " CONSOLE_ABOUT,
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help =
          board ? "  NAME     the board's name (`dfnet board list`)\n" : SERIAL_TARGET_HELP};
  return cli__run(argc, argv, &syn, &ops, &k);
}

int cmd_serial_console(int argc, char **argv) { return console_command(argc, argv, false); }

int cmd_board_console(int argc, char **argv) { return console_command(argc, argv, true); }

/* ---- serial write / read ------------------------------------------------------------- */

typedef struct serial_write_cmd {
  bool hex, newline;
  uint64_t timeout;
  uint8_t *data; /* what is sent (malloc'd) */
  size_t len;
} serial_write_t;

static int serial_write_prepare(cli_run_t *run) {
  serial_write_t *s = run->ctx;
  const char *text = run->args[1];
  if (s->hex) {
    if (cli__unhex(text, &s->data, &s->len) != 0)
      return cli__usage("DATA '%s' is not an even number of hex digits", text);
  } else {
    s->len = strlen(text);
    s->data = malloc(s->len + 2);
    if (s->data == NULL)
      return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(s->data, text, s->len);
  }
  if (s->newline) {
    uint8_t *d = realloc(s->data, s->len + 2);
    if (d == NULL)
      return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    s->data = d;
    s->data[s->len++] = '\r';
    s->data[s->len++] = '\n';
  }
  return CLI_EXIT_OK;
}

static int serial_write_request(cli_run_t *run) {
  serial_write_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(
      serial_write(run->client, run->args[0], s->data, s->len, (uint32_t)s->timeout, &err), &err);
}

static int serial_write_print(cli_run_t *run) {
  const serial_write_t *s = run->ctx;
  printf("Wrote %zu byte(s).\n", s->len);
  return CLI_EXIT_OK;
}

static void serial_write_release(cli_run_t *run) {
  serial_write_t *s = run->ctx;
  free(s->data);
}

int cmd_serial_write(int argc, char **argv) {
  static const cli_command_ops_t ops = {serial_write_prepare, serial_write_request, NULL,
                                        serial_write_print, serial_write_release};
  serial_write_t s = {.timeout = 10000};
  const cli_option_t opts[] = {
      {"hex", 0, CLI_OPT_FLAG, &s.hex, 0, 0, NULL, "DATA is hex"},
      /* no short form: -n is --count everywhere (watch), and echo's -n means the reverse */
      {"newline", 0, CLI_OPT_FLAG, &s.newline, 0, 0, NULL, "append \\r\\n"},
      {"timeout", 't', CLI_OPT_UINT, &s.timeout, 1, 86400000, "MS",
       "deadline of each Write (default 10000)"},
      CLI_OPT_END};
  const cli_syntax_t syn = {.usage = "serial write TARGET DATA [--hex] [--newline] [--timeout MS]",
                            .about = "Send DATA to a serial port (/dfnet.hw.serial.Serial/Write).",
                            .options = opts,
                            .min_args = 2,
                            .max_args = 2,
                            .args_help = SERIAL_TARGET_HELP
                            "  DATA     the text to send (or hex with --hex)\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}

typedef struct serial_read {
  cli_unary_t call; /* first: cli__unary_request */
  bool hex;
  uint64_t max, wait;
} serial_read_t;

static int serial_read_prepare(cli_run_t *run) {
  serial_read_t *s = run->ctx;
  int rc = cli__unary_new(&s->call);
  if (rc != CLI_EXIT_OK)
    return rc;
  cli__pb_varint(s->call.pb, 1, s->max);  /* ReadRequest.max_bytes */
  cli__pb_varint(s->call.pb, 2, s->wait); /* ReadRequest.timeout_ms */
  s->call.deadline_ms = (uint32_t)s->wait + 10000;
  return CLI_EXIT_OK;
}

static int serial_read_print(cli_run_t *run) {
  const serial_read_t *s = run->ctx;
  const uint8_t *data = NULL;
  size_t n = 0;
  if (cli__pb_find_bytes(s->call.reply, s->call.reply_len, 1, &data, &n) < 0)
    return cli__fail(DFNET_STATUS_DATA_LOSS, "malformed ReadReply");
  if (s->hex) {
    char *h = cli__hex(data ? data : (const uint8_t *)"", n);
    printf("%s\n", h ? h : "");
    free(h);
  } else {
    (void)cli__write_all(STDOUT_FILENO, data, n);
  }
  return CLI_EXIT_OK;
}

int cmd_serial_read(int argc, char **argv) {
  static const cli_command_ops_t ops = {serial_read_prepare, cli__unary_request, NULL,
                                        serial_read_print, cli__unary_release};
  serial_read_t s = {.call.method = M_READ, .max = 4096, .wait = 1000};
  const cli_option_t opts[] = {
      {"max", 0, CLI_OPT_UINT, &s.max, 1, 4096, "N", "at most N bytes (default 4096)"},
      {"wait", 'w', CLI_OPT_UINT, &s.wait, 0, 600000, "MS",
       "wait up to MS for the first byte (default 1000)"},
      {"hex", 0, CLI_OPT_FLAG, &s.hex, 0, 0, NULL, "print hex"},
      CLI_OPT_END};
  const cli_syntax_t syn = {.usage = "serial read TARGET [--max N] [--wait MS] [--hex]",
                            .about =
                                "Read what a serial port received and nobody read yet "
                                "(/dfnet.hw.serial.Serial/Read).",
                            .options = opts,
                            .min_args = 1,
                            .max_args = 1,
                            .args_help = SERIAL_TARGET_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- serial configure ------------------------------------------------------------------ */

static int parse_enum(const char *text, const char *const *names, size_t n, uint64_t *out) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(text, names[i]) == 0) {
      *out = i;
      return 0;
    }
  }
  return -1;
}

static const char *const parities[] = {"none", "odd", "even"};
static const char *const flows[] = {"none", "rts-cts", "xon-xoff"};

typedef struct serial_configure {
  cli_unary_t call; /* first: cli__unary_request */
  uint64_t baud, data_bits, stop_bits, parity, flow;
  const char *parity_s, *flow_s;
  bool json;
} serial_configure_t;

/* The settings in effect, as the reply's Config says them (proto3 defaults filled in). */
typedef struct line_settings {
  uint64_t baud, data_bits, stop_bits;
  const char *parity, *flow;
} line_settings_t;

static line_settings_t line_settings(const serial_configure_t *s) {
  const uint8_t *m = s->call.reply;
  size_t n = s->call.reply_len;
  uint64_t b, d, p, st, f; /* 0 when absent (or the reply is malformed) */
  (void)cli__pb_find_varint(m, n, 1, &b);
  (void)cli__pb_find_varint(m, n, 2, &d);
  (void)cli__pb_find_varint(m, n, 3, &p);
  (void)cli__pb_find_varint(m, n, 4, &st);
  (void)cli__pb_find_varint(m, n, 5, &f);
  return (line_settings_t){.baud = b ? b : 115200,
                           .data_bits = d ? d : 8,
                           .stop_bits = st ? st : 1,
                           .parity = p < 3 ? parities[p] : "?",
                           .flow = f < 3 ? flows[f] : "?"};
}

static int serial_configure_prepare(cli_run_t *run) {
  serial_configure_t *s = run->ctx;
  if (s->parity_s && parse_enum(s->parity_s, parities, 3, &s->parity) != 0)
    return cli__usage("--parity wants none, odd or even, not '%s'", s->parity_s);
  if (s->flow_s && parse_enum(s->flow_s, flows, 3, &s->flow) != 0)
    return cli__usage("--flow wants none, rts-cts or xon-xoff, not '%s'", s->flow_s);
  int rc = cli__unary_new(&s->call);
  if (rc != CLI_EXIT_OK)
    return rc;
  cli__pb_varint(s->call.pb, 1, s->baud);
  cli__pb_varint(s->call.pb, 2, s->data_bits);
  cli__pb_varint(s->call.pb, 3, s->parity);
  cli__pb_varint(s->call.pb, 4, s->stop_bits);
  cli__pb_varint(s->call.pb, 5, s->flow);
  return CLI_EXIT_OK;
}

static cJSON *serial_configure_json(cli_run_t *run) {
  line_settings_t l = line_settings(run->ctx);
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddNumberToObject(doc, "baud", (double)l.baud);
  cJSON_AddNumberToObject(doc, "data_bits", (double)l.data_bits);
  cJSON_AddStringToObject(doc, "parity", l.parity);
  cJSON_AddNumberToObject(doc, "stop_bits", (double)l.stop_bits);
  cJSON_AddStringToObject(doc, "flow", l.flow);
  return doc;
}

static int serial_configure_print(cli_run_t *run) {
  line_settings_t l = line_settings(run->ctx);
  printf("%llu baud, %llu data bits, parity %s, %llu stop bit(s), flow control %s\n",
         (unsigned long long)l.baud, (unsigned long long)l.data_bits, l.parity,
         (unsigned long long)l.stop_bits, l.flow);
  return CLI_EXIT_OK;
}

int cmd_serial_configure(int argc, char **argv) {
  static const cli_command_ops_t ops = {serial_configure_prepare, cli__unary_request,
                                        serial_configure_json, serial_configure_print,
                                        cli__unary_release};
  serial_configure_t s = {.call = {.method = M_CONFIGURE, .deadline_ms = 10000}};
  const cli_option_t opts[] = {
      {"baud", 'b', CLI_OPT_UINT, &s.baud, 50, 4000000, "N", "baud rate (default 115200)"},
      {"data-bits", 0, CLI_OPT_UINT, &s.data_bits, 5, 8, "N", "data bits (default 8)"},
      {"stop-bits", 0, CLI_OPT_UINT, &s.stop_bits, 1, 2, "N", "stop bits (default 1)"},
      {"parity", 0, CLI_OPT_STRING, &s.parity_s, 0, 0, "P", "none|odd|even (default none)"},
      {"flow", 0, CLI_OPT_STRING, &s.flow_s, 0, 0, "F", "none|rts-cts|xon-xoff (default none)"},
      CLI_OPT_JSON(&s.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage =
          "serial configure TARGET [--baud N] [--data-bits N] [--parity P] [--stop-bits N] "
          "[--flow F] [--json]",
      .about =
          "Set a serial port's line settings and print those in effect "
          "(/dfnet.hw.serial.Serial/Configure).",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = SERIAL_TARGET_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}
