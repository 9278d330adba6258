/* dfnet CLI: serial ports (proto/dfnet/hw/serial.proto) — console, write, read, configure.
 *
 * `serial console` subscribes to everything the port receives (Subscribe, a server stream
 * with a credit window) and writes it to stdout, and sends what is typed on stdin with
 * Write. When stdin is a terminal it is put in raw mode (every key, Ctrl-C included, goes
 * to the board) and restored on every way out: `~.` at the start of a line, end of input,
 * the stream ending, SIGTERM/SIGHUP, or an error. `~~` at the start of a line sends one
 * `~` (ssh's escape rules). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "clients/cli/cli.h"

#define SERIAL_CHUNK 4096u
#define M_CONFIGURE "/dfnet.hw.serial.Serial/Configure"
#define M_WRITE "/dfnet.hw.serial.Serial/Write"
#define M_READ "/dfnet.hw.serial.Serial/Read"
#define M_SUBSCRIBE "/dfnet.hw.serial.Serial/Subscribe"

/* ---- terminal state, restored on every exit path ------------------------------------ */

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;
static volatile sig_atomic_t console_signal;
static int console_wake = -1;

static void terminal_restore(void) {
  if (termios_saved) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    termios_saved = 0;
  }
}

static void console_on_signal(int sig) {
  console_signal = sig;
  if (console_wake >= 0) {
    char b = 's';
    ssize_t w = write(console_wake, &b, 1);
    (void)w;
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
    pb->len = 0;
    pb->overflow = false;
    cli__pb_bytes(pb, 1, data + off, n); /* WriteRequest.data */
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    dfnet_client_call_options_t co = {.deadline_ms = timeout};
    st = dfnet_client_call(c, target, M_WRITE, pb->buf, pb->len, &co, &reply, &reply_len, err);
    free(reply);
  }
  free(pb);
  return st;
}

/* ---- console --------------------------------------------------------------------------- */

typedef struct console {
  int wake[2];
  int ready[2]; /* written once, at the stream's first item (the port's stream is in place) */
  bool got_item;
  dfnet_status_t status;
  char message[512];
  bool ended;
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
  const uint8_t *data = NULL;
  size_t n = 0;
  if (cli__pb_find_bytes(msg, len, 1, &data, &n) > 0) /* Data.data */
    (void)cli__write_all(STDOUT_FILENO, data, n);
  /* Data.dropped (field 2, varint) is rare; a gap in the output shows it. */
}

static void console_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st,
                         const char *msg) {
  console_t *k = user;
  (void)id;
  k->status = st;
  snprintf(k->message, sizeof k->message, "%s", msg);
  k->ended = true;
  char b = 'e';
  ssize_t w = write(k->wake[1], &b, 1);
  (void)w;
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

int cmd_serial_console(int argc, char **argv) {
  const cli_syntax_t syn = {
      "serial console TARGET",
      "Connect this terminal to a serial port: what it receives is written to stdout, what "
      "you type is sent to it. Raw terminal mode when stdin is a terminal; `~.` at the start "
      "of a line quits, `~~` sends a `~`.",
      NULL,
      1,
      1,
      "  TARGET   the port's node moniker or class/serial/<NNN>\n"};
  const char *args[1];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  console_t k = {.status = DFNET_STATUS_OK};
  bool tty = isatty(STDIN_FILENO);
  bool line_start = true, tilde = false, quit = false, eof = false;
  if (pipe(k.wake) != 0)
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  if (pipe(k.ready) != 0) {
    close(k.wake[0]);
    close(k.wake[1]);
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  }
  dfnet_client_t *c = NULL;
  dfnet_client_call_id_t sub = 0;
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    goto piped;
  dfnet_client_call_options_t co = {.credit = 32};
  dfnet_status_t st = dfnet_client_call_start(c, args[0], M_SUBSCRIBE, NULL, 0, &co, console_data,
                                              console_done, &k, &sub);
  if (st != DFNET_STATUS_OK) {
    rc = cli__fail(st, "cannot subscribe to %s", args[0]);
    goto connected;
  }
  /* The port's first item says the stream is in place: from then on nothing the board
   * prints is missed. Wait for it (or the stream's end) before saying "connected". */
  struct pollfd ready[2] = {{.fd = k.ready[0], .events = POLLIN},
                            {.fd = k.wake[0], .events = POLLIN}};
  int waited;
  do
    waited = poll(ready, 2, 10000);
  while (waited < 0 && errno == EINTR);
  if (waited == 0) {
    rc = cli__fail(DFNET_STATUS_DEADLINE_EXCEEDED, "%s did not start its stream in 10 s", args[0]);
    goto subscribed;
  }
  console_wake = k.wake[1];
  struct sigaction sa = {.sa_handler = console_on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGINT, &sa, NULL); /* only reached when stdin is not in raw mode */
  if (tty) {
    if (terminal_raw() != 0) {
      rc = cli__fail(DFNET_STATUS_FAILED_PRECONDITION, "cannot set raw mode: %s", strerror(errno));
      goto subscribed;
    }
    fprintf(stderr, "[dfnet: connected to %s; ~. to quit]\r\n", args[0]);
  }
  uint8_t in[1024], out[2048];
  while (!quit && !eof && !console_signal) {
    struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                          {.fd = k.wake[0], .events = POLLIN}};
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
      eof = true;
      break;
    }
    size_t m = console_escape(in, (size_t)n, out, &line_start, &tilde, &quit);
    dfnet_client_error_t err;
    if (m > 0 && serial_write(c, args[0], out, m, 10000, &err) != DFNET_STATUS_OK) {
      terminal_restore();
      rc = cli__fail_err(&err);
      goto subscribed;
    }
  }
  if (eof && !tty) {
    /* Input came from a pipe: give the port a moment to answer before leaving. */
    struct pollfd p = {.fd = k.wake[0], .events = POLLIN};
    (void)poll(&p, 1, 500);
  }
subscribed:
  terminal_restore();
  if (!k.ended)
    dfnet_client_call_cancel(c, sub);
connected:
  dfnet_client_close(c); /* console_done has run when this returns */
  console_wake = -1;
  if (rc == CLI_EXIT_OK && k.ended && !quit && !eof && k.status != DFNET_STATUS_CANCELLED &&
      k.status != DFNET_STATUS_OK)
    rc = cli__fail(k.status, "console ended: %s", k.message);
  if (tty && rc == CLI_EXIT_OK)
    fprintf(stderr, "\n[dfnet: disconnected]\n");
piped:
  close(k.wake[0]);
  close(k.wake[1]);
  close(k.ready[0]);
  close(k.ready[1]);
  return rc;
}

/* ---- serial write / read ------------------------------------------------------------- */

int cmd_serial_write(int argc, char **argv) {
  bool hex = false, newline = false;
  uint64_t timeout = 10000;
  const cli_option_t opts[] = {
      {"hex", 0, CLI_OPT_FLAG, &hex, 0, 0, NULL, "DATA is hex"},
      /* no short form: -n is --count everywhere (watch), and echo's -n means the reverse */
      {"newline", 0, CLI_OPT_FLAG, &newline, 0, 0, NULL, "append \\r\\n"},
      {"timeout", 't', CLI_OPT_UINT, &timeout, 1, 86400000, "MS",
       "deadline of each Write (default 10000)"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"serial write TARGET DATA [--hex] [--newline] [--timeout MS]",
                            "Send DATA to a serial port (/dfnet.hw.serial.Serial/Write).",
                            opts,
                            2,
                            2,
                            "  TARGET   the port's node moniker or class/serial/<NNN>\n"
                            "  DATA     the text to send (or hex with --hex)\n"};
  const char *args[2];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  uint8_t *data = NULL;
  size_t len = 0;
  if (hex) {
    if (cli__unhex(args[1], &data, &len) != 0)
      return cli__usage("DATA '%s' is not an even number of hex digits", args[1]);
  } else {
    len = strlen(args[1]);
    data = malloc(len + 2);
    if (data == NULL)
      return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(data, args[1], len);
  }
  if (newline) {
    uint8_t *d = realloc(data, len + 2);
    if (d == NULL) {
      free(data);
      return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    }
    data = d;
    data[len++] = '\r';
    data[len++] = '\n';
  }
  dfnet_client_t *c = NULL;
  if ((rc = cli__connect(&c)) == CLI_EXIT_OK) {
    dfnet_client_error_t err;
    if (serial_write(c, args[0], data, len, (uint32_t)timeout, &err) != DFNET_STATUS_OK)
      rc = cli__fail_err(&err);
    else
      printf("Wrote %zu byte(s).\n", len);
  }
  dfnet_client_close(c);
  free(data);
  return rc;
}

int cmd_serial_read(int argc, char **argv) {
  bool hex = false;
  uint64_t max = 4096, wait = 1000;
  const cli_option_t opts[] = {
      {"max", 0, CLI_OPT_UINT, &max, 1, 4096, "N", "at most N bytes (default 4096)"},
      {"wait", 'w', CLI_OPT_UINT, &wait, 0, 600000, "MS",
       "wait up to MS for the first byte (default 1000)"},
      {"hex", 0, CLI_OPT_FLAG, &hex, 0, 0, NULL, "print hex"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {"serial read TARGET [--max N] [--wait MS] [--hex]",
                            "Read what a serial port received and nobody read yet "
                            "(/dfnet.hw.serial.Serial/Read).",
                            opts,
                            1,
                            1,
                            "  TARGET   the port's node moniker or class/serial/<NNN>\n"};
  const char *args[1];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  cli_pb_t *pb = calloc(1, sizeof *pb);
  if (pb == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  cli__pb_varint(pb, 1, max);  /* ReadRequest.max_bytes */
  cli__pb_varint(pb, 2, wait); /* ReadRequest.timeout_ms */
  dfnet_client_t *c = NULL;
  uint8_t *reply = NULL;
  size_t reply_len = 0;
  if ((rc = cli__connect(&c)) == CLI_EXIT_OK) {
    dfnet_client_call_options_t co = {.deadline_ms = (uint32_t)wait + 10000};
    dfnet_client_error_t err;
    const uint8_t *data = NULL;
    size_t n = 0;
    if (dfnet_client_call(c, args[0], M_READ, pb->buf, pb->len, &co, &reply, &reply_len, &err) !=
        DFNET_STATUS_OK) {
      rc = cli__fail_err(&err);
    } else if (cli__pb_find_bytes(reply, reply_len, 1, &data, &n) < 0) {
      rc = cli__fail(DFNET_STATUS_DATA_LOSS, "malformed ReadReply");
    } else if (hex) {
      char *h = cli__hex(data ? data : (const uint8_t *)"", n);
      printf("%s\n", h ? h : "");
      free(h);
    } else {
      (void)cli__write_all(STDOUT_FILENO, data, n);
    }
  }
  free(reply);
  dfnet_client_close(c);
  free(pb);
  return rc;
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

/* A varint field of a message (first occurrence); 0 when absent. */
static uint64_t pb_varint_field(const uint8_t *m, size_t len, uint32_t field) {
  size_t off = 0;
  while (off < len) {
    uint64_t key = 0, v = 0;
    int shift = 0;
    while (off < len) {
      uint8_t b = m[off++];
      key |= (uint64_t)(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80))
        break;
    }
    if ((key & 7u) != 0)
      return 0; /* Config holds varints only */
    shift = 0;
    while (off < len) {
      uint8_t b = m[off++];
      v |= (uint64_t)(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80))
        break;
    }
    if ((key >> 3) == field)
      return v;
  }
  return 0;
}

int cmd_serial_configure(int argc, char **argv) {
  static const char *const parities[] = {"none", "odd", "even"};
  static const char *const flows[] = {"none", "rts-cts", "xon-xoff"};
  uint64_t baud = 0, data_bits = 0, stop_bits = 0, parity = 0, flow = 0;
  const char *parity_s = NULL, *flow_s = NULL;
  bool json = false;
  const cli_option_t opts[] = {
      {"baud", 'b', CLI_OPT_UINT, &baud, 50, 4000000, "N", "baud rate (default 115200)"},
      {"data-bits", 0, CLI_OPT_UINT, &data_bits, 5, 8, "N", "data bits (default 8)"},
      {"stop-bits", 0, CLI_OPT_UINT, &stop_bits, 1, 2, "N", "stop bits (default 1)"},
      {"parity", 0, CLI_OPT_STRING, &parity_s, 0, 0, "P", "none|odd|even (default none)"},
      {"flow", 0, CLI_OPT_STRING, &flow_s, 0, 0, "F", "none|rts-cts|xon-xoff (default none)"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "serial configure TARGET [--baud N] [--data-bits N] [--parity P] "
      "[--stop-bits N] [--flow F] [--json]",
      "Set a serial port's line settings and print those in effect "
      "(/dfnet.hw.serial.Serial/Configure).",
      opts,
      1,
      1,
      "  TARGET   the port's node moniker or class/serial/<NNN>\n"};
  const char *args[1];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (parity_s && parse_enum(parity_s, parities, 3, &parity) != 0)
    return cli__usage("--parity wants none, odd or even, not '%s'", parity_s);
  if (flow_s && parse_enum(flow_s, flows, 3, &flow) != 0)
    return cli__usage("--flow wants none, rts-cts or xon-xoff, not '%s'", flow_s);
  cli_pb_t *pb = calloc(1, sizeof *pb);
  if (pb == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  cli__pb_varint(pb, 1, baud);
  cli__pb_varint(pb, 2, data_bits);
  cli__pb_varint(pb, 3, parity);
  cli__pb_varint(pb, 4, stop_bits);
  cli__pb_varint(pb, 5, flow);
  dfnet_client_t *c = NULL;
  uint8_t *reply = NULL;
  size_t reply_len = 0;
  if ((rc = cli__connect(&c)) == CLI_EXIT_OK) {
    dfnet_client_call_options_t co = {.deadline_ms = 10000};
    dfnet_client_error_t err;
    if (dfnet_client_call(c, args[0], M_CONFIGURE, pb->buf, pb->len, &co, &reply, &reply_len,
                          &err) != DFNET_STATUS_OK) {
      rc = cli__fail_err(&err);
    } else {
      uint64_t b = pb_varint_field(reply, reply_len, 1), d = pb_varint_field(reply, reply_len, 2),
               p = pb_varint_field(reply, reply_len, 3), s = pb_varint_field(reply, reply_len, 4),
               f = pb_varint_field(reply, reply_len, 5);
      const char *ps = p < 3 ? parities[p] : "?", *fs = f < 3 ? flows[f] : "?";
      if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddNumberToObject(doc, "baud", (double)(b ? b : 115200));
        cJSON_AddNumberToObject(doc, "data_bits", (double)(d ? d : 8));
        cJSON_AddStringToObject(doc, "parity", ps);
        cJSON_AddNumberToObject(doc, "stop_bits", (double)(s ? s : 1));
        cJSON_AddStringToObject(doc, "flow", fs);
        rc = cli__json_print(doc);
      } else {
        printf("%llu baud, %llu data bits, parity %s, %llu stop bit(s), flow control %s\n",
               (unsigned long long)(b ? b : 115200), (unsigned long long)(d ? d : 8), ps,
               (unsigned long long)(s ? s : 1), fs);
      }
    }
  }
  free(reply);
  dfnet_client_close(c);
  free(pb);
  return rc;
}
