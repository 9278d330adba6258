/* `dfnet`: the command line of dfnet, modelled on `ffx driver` (issue 7; docs/design.md
 * "Command line"; docs/spec/dfv2.md "What ffx driver prints"). Shared declarations of the CLI's
 * files (not installed). */
#ifndef DFNET_CLIENTS_CLI_CLI_H
#define DFNET_CLIENTS_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "dfnet/client.h"

/* Exit codes. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

/* ---- options (options.c): table-driven parsing with range checks ---- */
typedef enum cli_opt_type {
  CLI_OPT_FLAG = 1,   /* bool *dest = true */
  CLI_OPT_STRING = 2, /* const char **dest = argument */
  CLI_OPT_UINT = 3,   /* uint64_t *dest = strtoull + end pointer + [min, max] */
  CLI_OPT_LIST = 4,   /* cli_strings_t *dest: each use appends its argument (at most max) */
} cli_opt_type_t;

/* The arguments of a repeatable option (CLI_OPT_LIST), borrowed from argv. */
#define CLI_STRINGS_MAX 64
typedef struct cli_strings {
  const char *v[CLI_STRINGS_MAX];
  size_t n;
} cli_strings_t;

typedef struct cli_option {
  const char *name; /* long name without "--"; NULL ends a table */
  char short_name;  /* 'v' for -v, or 0 */
  cli_opt_type_t type;
  void *dest;
  uint64_t min, max; /* CLI_OPT_UINT; max: CLI_OPT_LIST's count (at most CLI_STRINGS_MAX) */
  const char *arg;   /* argument name in help ("URL", "MS") */
  const char *help;
} cli_option_t;

/* Table entries every command writes the same way. */
/* clang-format off */ /* (clang-format 14 would break these braced initializers) */
#define CLI_OPT_END {NULL, 0, 0, NULL, 0, 0, NULL, NULL}
#define CLI_OPT_JSON(dest) {"json", 0, CLI_OPT_FLAG, (dest), 0, 0, NULL, "print one JSON document"}
/* --data-hex HEX and --data-file FILE into a cli_payload_t (data.c); what: "the bytes to
 * send" (help: "the bytes to send, hex", "the bytes to send, from a file"). */
#define CLI_OPT_DATA(payload, what)                                                      \
  {"data-hex", 0, CLI_OPT_STRING, &(payload)->hex, 0, 0, "HEX", what ", hex"},           \
  {"data-file", 0, CLI_OPT_STRING, &(payload)->file, 0, 0, "FILE", what ", from a file"}
/* clang-format on */
/* The help line of a TARGET argument: CLI_TARGET_HELP("the port's", "serial") is
 * "  TARGET   the port's node moniker or class/serial/<NNN>". */
#define CLI_TARGET_HELP(whose, class_name) \
  "  TARGET   " whose " node moniker or class/" class_name "/<NNN>\n"

/* A command's syntax: its options and how many positional arguments it takes. */
typedef struct cli_syntax {
  const char *usage;           /* "node list [-v] [--exact] [FILTER]" */
  const char *about;           /* one paragraph */
  const cli_option_t *options; /* NULL-name-terminated; may be NULL */
  size_t min_args, max_args;
  const char *args_help; /* lines describing the positional arguments, or NULL */
} cli_syntax_t;

/* Parse argv[0..argc) (the words after the command's name) against syntax + the global
 * options. Positional arguments go to args (up to syntax->max_args). Returns CLI_EXIT_OK,
 * CLI_EXIT_USAGE (message printed), or -1 when --help was given (help printed; exit 0). */
int cli__parse(int argc, char **argv, const cli_syntax_t *syntax, const char **args, size_t *nargs);

/* Print a command's help to f. */
void cli__help(FILE *f, const cli_syntax_t *syntax);
/* Print an option table as help lines ("  -v, --verbose   ..."). */
void cli__help_options(FILE *f, const cli_option_t *table);

/* Describe mode: while fn is set, cli__parse does not parse; it hands the command's syntax
 * to fn (borrowed for the call: options and strings may live in the command's stack frame)
 * and returns -1, as after --help, so the command returns at once having done nothing.
 * Every command calls cli__parse (or cli__run) before anything else, so calling its
 * function in describe mode reads its options from the very table it parses with
 * (completion.c, the tests). NULL ends describe mode. Not thread-safe (one CLI thread). */
typedef void (*cli_describe_fn)(void *user, const cli_syntax_t *syntax);
void cli__set_describe(cli_describe_fn fn, void *user);

/* ---- global settings (config.c) ---- */
typedef struct cli_globals {
  const char *manager;
  const char *cert;
  const char *key;
  const char *ca;
  uint64_t connect_timeout_ms;
  const char *log_level;
} cli_globals_t;

extern cli_globals_t cli_globals;
extern const cli_option_t cli_global_options[];

/* Fill what the command line left unset from DFNET_MANAGER / DFNET_CERT / DFNET_KEY /
 * DFNET_CA, then the config file (DFNET_CONFIG, else $XDG_CONFIG_HOME/dfnet/config, else
 * ~/.config/dfnet/config). Returns CLI_EXIT_OK or CLI_EXIT_USAGE (message printed). */
int cli__config_resolve(void);

/* The config file's path into out: DFNET_CONFIG (then *explicit_path), else
 * $XDG_CONFIG_HOME/dfnet/config, else $HOME/.config/dfnet/config. false when there is none
 * (no HOME). `dfnet login` writes there (cmd_login.c). */
bool cli__config_path(char *out, size_t cap, bool *explicit_path);

/* Connect with the global settings. Returns CLI_EXIT_OK, CLI_EXIT_USAGE (settings missing)
 * or CLI_EXIT_FAILED (message printed). */
int cli__connect(dfnet_client_t **out);

/* ---- the skeleton of a command (run.c) ---- */
#define CLI_ARGS_MAX 4 /* positional arguments a command takes at most */

/* One run of a command: what its hooks share. */
typedef struct cli_run {
  void *ctx;                      /* the command's own state: its options' values, results */
  const char *args[CLI_ARGS_MAX]; /* the positional arguments; NULL past those given */
  size_t nargs;
  bool json;              /* the command's --json (CLI_OPT_JSON) was given */
  dfnet_client_t *client; /* connected while request runs; NULL before and after */
  /* A result that reports a failure (a driver action that failed on a node), set by
   * request or print: once the result is printed, `dfnet: <failed_code>: <failed>` goes to
   * stderr and the command exits 1. failed "" = none. */
  dfnet_status_t failed_code;
  char failed[256];
} cli_run_t;

/* A command's hooks. cli__run parses argv against the command's syntax (--help, usage
 * errors and describe mode end the run there), then runs the hooks in this order and
 * stops at the first that fails:
 *   prepare  checks beyond the option table's, and the request built (optional)
 *            -- the connection is made here, unless request is NULL --
 *   request  what the command asks of the manager (NULL: the command does not connect)
 *            -- the connection is closed here --
 *   json     the result as one JSON document (NULL: out of memory), printed instead of
 *            print's text when the command's --json (CLI_OPT_JSON) was given (optional)
 *   print    the result as text, or how the command shows it (optional)
 *   release  frees what the others left in ctx; runs on every path once parsing is done
 *            (optional; ctx starts zeroed, so it frees only what is set)
 * A result printed in full may still report a failure (run.failed): exit 1 after it.
 * prepare, request and print return CLI_EXIT_OK or an exit code after printing why. */
typedef struct cli_command_ops {
  int (*prepare)(cli_run_t *run);
  int (*request)(cli_run_t *run);
  cJSON *(*json)(cli_run_t *run);
  int (*print)(cli_run_t *run);
  void (*release)(cli_run_t *run);
} cli_command_ops_t;

/* The results of the listings, which a request leaves first in its ctx (a pointer it sets;
 * NULL: nothing): X(name, type, the client's function that frees it). Each has a release
 * hook, cli__release_<name> (run.c), that frees it, so a listing needs none of its own. */
#define CLI_RESULTS(X)                                                                             \
  X(hosts, dfnet_client_host_list_t, dfnet_client_host_list_free)                                  \
  X(nodes, dfnet_client_node_list_t, dfnet_client_node_list_free)                                  \
  X(drivers, dfnet_client_driver_list_t, dfnet_client_driver_list_free)                            \
  X(driver_hosts, dfnet_client_driver_host_list_t, dfnet_client_driver_host_list_free)             \
  X(driver_control, dfnet_client_driver_control_result_t, dfnet_client_driver_control_result_free) \
  X(composites, dfnet_client_composite_list_t, dfnet_client_composite_list_free)                   \
  X(bind_traces, dfnet_client_bind_trace_list_t, dfnet_client_bind_trace_list_free)                \
  X(leases, dfnet_client_lease_list_t, dfnet_client_lease_list_free)                               \
  X(lease, dfnet_client_lease_t, dfnet_client_lease_free)
/* void cli__release_hosts(cli_run_t *run); and so on: release hooks. */
#define CLI_RESULT_RELEASE_DECLARE(name, type, free_fn) void cli__release_##name(cli_run_t *run);
CLI_RESULTS(CLI_RESULT_RELEASE_DECLARE)
#undef CLI_RESULT_RELEASE_DECLARE

/* The option table of a command whose only option is --json (cli__run resets it). */
extern const cli_option_t cli_json_options[];

/* Run one command: parse argv against syntax, then ops' hooks with ctx. Returns the exit
 * code (0 after --help and in describe mode). */
int cli__run(int argc, char **argv, const cli_syntax_t *syntax, const cli_command_ops_t *ops,
             void *ctx);

/* ---- stopping on a signal (signals.c) ----
 * A long-running command (a console, a followed log) ends on SIGINT, SIGTERM and SIGHUP:
 * cli__stop_on_signals installs handlers that record the signal and write one byte to
 * wake_fd (a pipe the command polls; -1: none), so that its wait ends; cli__stop_signal is
 * the signal seen (0: none); cli__stop_wake_off stops the writes before the pipe closes.
 * Main thread. */
void cli__stop_on_signals(int wake_fd);
void cli__stop_wake_off(void);
int cli__stop_signal(void);
/* The default actions again (the process ends on those signals): for a blocking wait that
 * nothing needs to clean up after, as between the steps of an upload. Main thread. */
void cli__stop_default(void);

/* ---- waiting for a stream (signals.c) ----
 * A command that starts a server stream and waits for its end: a cli_stream_wait_t first
 * in the command's ctx (so the call's `user` serves its item callback and
 * cli__stream_wait_done alike); open it in prepare, start and wait with cli__stream_run in
 * request (or pass cli__stream_wait_done as the call's done callback and cli__stream_wait),
 * close it in release. */
typedef struct cli_stream_wait {
  int pipe[2];           /* written when the stream ends, or by a signal */
  dfnet_status_t status; /* how it ended (OK when a signal stopped it) */
  char message[512];
  bool ended; /* the stream ended (set before the pipe is written) */
} cli_stream_wait_t;
/* CLI_EXIT_OK, or the failure printed. */
int cli__stream_wait_open(cli_stream_wait_t *w);
/* The call's done callback (client thread): keeps the status and message, wakes the wait. */
void cli__stream_wait_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st,
                           const char *msg);
/* The same for any end (a watch's): status st, message msg (NULL: ""), ended; then one byte
 * 'e' to w->pipe[1]. Client thread. */
void cli__stream_wait_end(cli_stream_wait_t *w, dfnet_status_t st, const char *msg);
/* Block until the stream ends or SIGINT/SIGTERM/SIGHUP; on a signal, cancel call `id` and
 * return true. Main thread. */
bool cli__stream_wait(cli_stream_wait_t *w, dfnet_client_t *c, dfnet_client_call_id_t id);
/* Start the server stream `method` on target with request req[len) (credit 32), whose items go
 * to on_item with w as user (so w is first in the command's ctx) and whose end wakes w, then
 * wait as cli__stream_wait. Returns the start's status: not OK, nothing started (the caller
 * says what could not be done); OK, the stream ended or a signal cancelled it (w->status,
 * w->message say how it ended). Main thread. */
dfnet_status_t cli__stream_run(cli_stream_wait_t *w, dfnet_client_t *c, const char *target,
                               const char *method, const void *req, size_t len,
                               dfnet_client_message_fn on_item);
/* Close the pipe (and stop the signal's writes to it). */
void cli__stream_wait_close(cli_stream_wait_t *w);

/* ---- errors ---- */
/* "dfnet: <STATUS>: message" on stderr; returns the exit code for it (USAGE for
 * INVALID_ARGUMENT raised locally is chosen by the caller). */
int cli__fail(dfnet_status_t code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli__fail_err(const dfnet_client_error_t *err);
/* A library call's outcome: CLI_EXIT_OK for DFNET_STATUS_OK, else err printed (exit 1). */
int cli__status(dfnet_status_t st, const dfnet_client_error_t *err);
int cli__usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- output (output.c) ---- */
/* Key / value of a property as `ffx driver list-devices -v` prints them. */
void cli__property_key(const dfnet_client_property_t *p, char *buf, size_t cap);
void cli__property_value(const dfnet_client_property_t *p, char *buf, size_t cap);
/* {"key": ..., "key_name": ..., "type": ..., "value": ...} */
cJSON *cli__property_json(const dfnet_client_property_t *p);
/* A composite node spec's bind rule as `ffx driver list-composite-node-specs -v` prints
 * it: "Accept fuchsia.BIND_PROTOCOL { 0x000003, 0x000004 }" (keys and values as
 * cli__property_key / cli__property_value print them). */
void cli__bind_rule_text(const dfnet_client_bind_rule_t *r, char *buf, size_t cap);
/* {"key": ..., ["key_name": ...,] "condition": "accept"|"reject", "values": [{"type": ...,
 * "value": ...}, ...]} (clients/cli/JSON.md "composite list") */
cJSON *cli__bind_rule_json(const dfnet_client_bind_rule_t *r);
/* Print a JSON document (pretty) and a newline to stdout; frees it. CLI_EXIT_OK or
 * CLI_EXIT_FAILED (out of memory). */
int cli__json_print(cJSON *doc);
/* s for text, or dflt ("-", "None") when s is NULL or "" (the client's empty fields). */
const char *cli__nonempty(const char *s, const char *dflt);
/* A JSON string, or null when s is NULL or "" (the client's empty fields). New item, owned by
 * the caller (or the object it is added to); NULL when out of memory. */
cJSON *cli__json_string_or_null(const char *s);
/* A moment (Unix ms) as cli__time_str prints it, as a JSON string; null for 0 (never). New
 * item, owned by the caller (or the object it is added to); NULL when out of memory. */
cJSON *cli__json_time(uint64_t epoch_ms);
/* A JSON array of the n strings v[0..n) (copied). New item, owned by the caller (or the
 * object it is added to); NULL when out of memory. */
cJSON *cli__json_strings(const char *const *v, size_t n);
/* Print o as one line of JSON on stdout (JSON Lines: the streaming verbs' --json), flush,
 * and delete o (NULL: nothing printed). */
void cli__json_line(cJSON *o);
/* ---- the listings' documents (clients/cli/JSON.md) ----
 * Built by one function each, for the command's --json and for `dfnet ui`'s /api answers
 * alike (cmd_ui_api.c). Each returns a new document the caller deletes (NULL when out of
 * memory); the list is only read. */
/* `host list --json`: {"hosts": [...]} (cmd_host.c) */
cJSON *cli__hosts_json(const dfnet_client_host_list_t *list);
/* `node list --json`: {"nodes": [...]}, each node with its properties and offers
 * (cmd_node_list.c) */
cJSON *cli__nodes_json(const dfnet_client_node_list_t *list);
/* `bind why NODE --json`: {"node": node, "traces": [...]} (cmd_bind_why.c) */
cJSON *cli__bind_why_json(const char *node, const dfnet_client_bind_trace_list_t *list);
/* One event of `watch --json` (an object, not a document of its own; cmd_watch.c) */
cJSON *cli__event_json(const dfnet_client_event_t *ev);
/* `board list --json`: {"boards": [...]}, the board nodes of a node list (cmd_board.c) */
cJSON *cli__boards_json(const dfnet_client_node_list_t *nodes);
/* `lease list --json`: {"leases": [...], "queue": [...]} (lease_format.c) */
cJSON *cli__leases_json(const dfnet_client_lease_list_t *list);

/* Lower-case hex of data into a malloc'd string (NULL on OOM). */
char *cli__hex(const uint8_t *data, size_t len);
/* Parse hex (even length, optional whitespace) into a malloc'd buffer. 0 or -1. */
int cli__unhex(const char *text, uint8_t **out, size_t *len);
/* Read a whole file (at most max bytes). 0 or -1 with errno. */
int cli__read_file(const char *path, size_t max, uint8_t **out, size_t *len);
/* Write all bytes to fd. 0 or -1. */
int cli__write_all(int fd, const void *data, size_t len);
/* "2024-05-01T12:00:00.123Z" */
void cli__time_str(uint64_t epoch_ms, char *buf, size_t cap);
/* A size for people: "512 B", "812.0 KiB", "2.1 MiB", "1.5 GiB". */
void cli__size_str(uint64_t bytes, char *buf, size_t cap);

/* ---- durations and moments (duration.c): parsed and printed in one place ---- */
/* A duration: <number><unit> groups, units ms, s, m, h, d ("90s", "1h30m", "2d"), or a
 * whole number of seconds alone ("300"); "0" is zero. Into *ms; false for anything else or
 * over max_ms. */
bool cli__duration_parse(const char *text, uint64_t max_ms, uint64_t *ms);
/* A duration for people: "1h30m", "45s", "2d3h", "250ms". */
void cli__duration_str(uint64_t ms, char *buf, size_t cap);
/* A moment: a duration ago ("1d", "2h": before now_ms) or ISO 8601, UTC unless it says
 * otherwise ("2026-12-07", "2026-12-07T10:00Z", "2026-12-07T10:00:00.5+01:00"). Into
 * *epoch_ms (Unix ms); false for anything else. */
bool cli__time_parse(const char *text, uint64_t now_ms, uint64_t *epoch_ms);
/* The wall clock, Unix epoch ms. */
uint64_t cli__now_ms(void);
/* An expiry for people: "2026-12-07T10:00:00.000Z (in 29m59s)", "... (expired 5s ago)",
 * "never" (0); the time left in its two largest units ("in 39d14h"). */
void cli__expiry_str(uint64_t expires_ms, uint64_t now_ms, char *buf, size_t cap);

/* ---- KEY=VALUE properties on the command line (property_arg.c) ---- */
/* One `KEY=VALUE` argument parsed: the property, its strings in `text`. */
typedef struct cli_property_arg {
  dfnet_client_property_t prop;
  char text[400]; /* "KEY\0VALUE\0": the property's strings */
} cli_property_arg_t;

/* Parse `KEY=VALUE` as a node property, as lib/property_text.h reads it (the forms of
 * `composite add`'s values, as text; dfnet-bindc match reads it alike). *out's strings
 * point into out->text. true, or false with *why (cap bytes) saying what is wrong, naming
 * the part. */
bool cli__property_parse(const char *arg, cli_property_arg_t *out, char *why, size_t cap);

/* ---- a command's bytes: what it sends, what it read (data.c) ---- */
/* A request's bytes from --data-hex or --data-file (CLI_OPT_DATA). */
typedef struct cli_payload {
  const char *hex, *file; /* the options' values (borrowed from argv) */
  uint8_t *data;          /* loaded: malloc'd, freed by the payload's owner; NULL when empty */
  size_t len;
} cli_payload_t;

/* At most one of --data-hex and --data-file: CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
int cli__payload_check(const cli_payload_t *p);
/* Check, then load the payload: at most max bytes. too_big names a --data-file over max
 * (NULL: the system's message for EFBIG). CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
int cli__payload_load(cli_payload_t *p, size_t max, const char *too_big);

/* How bytes read from a device are shown. */
typedef struct cli_bytes_out {
  bool hex, json;       /* --hex, --json */
  const char *out_file; /* --out FILE: the raw bytes go there */
  bool raw_when_piped;  /* neither --hex nor --json: raw bytes when stdout is no terminal */
} cli_bytes_out_t;

/* Show data as o says; doc (--json; may be NULL otherwise) gets "hex" and is printed, or
 * freed. CLI_EXIT_OK or CLI_EXIT_FAILED (printed). */
int cli__bytes_print(const cli_bytes_out_t *o, const uint8_t *data, size_t len, cJSON *doc);

/* ---- commands ---- */
typedef int (*cli_command_fn)(int argc, char **argv);

/* The command table (commands.c): `dfnet VERB [SUB]`. */
typedef struct cli_command {
  const char *verb;
  const char *sub; /* NULL: the verb alone */
  cli_command_fn fn;
  const char *summary;
} cli_command_t;

extern const cli_command_t cli_commands[];
extern const size_t cli_command_count;

/* The command `verb sub` (sub ignored for a verb without subcommands), or NULL. */
const cli_command_t *cli__command_find(const char *verb, const char *sub);
/* Is verb the verb of a command? */
bool cli__verb_known(const char *verb);
/* "Did you mean": the verb nearest to word (verb NULL), or the nearest subcommand of verb;
 * NULL when none is near (lib/suggest.h). */
const char *cli__suggest_command(const char *verb, const char *word);
/* "list, show, dump": the subcommands of verb, into buf (cut to cap). */
void cli__verb_subs(const char *verb, char *buf, size_t cap);
/* `dfnet --help` and `dfnet VERB --help`. */
void cli__help_main(FILE *f);
void cli__help_verb(FILE *f, const char *verb);

int cmd_completion(int argc, char **argv);
int cmd_host_list(int argc, char **argv);
int cmd_node_list(int argc, char **argv);
int cmd_node_show(int argc, char **argv);
int cmd_node_dump(int argc, char **argv);
int cmd_composite_list(int argc, char **argv);
int cmd_bind_why(int argc, char **argv);
int cmd_watch(int argc, char **argv);
/* `dfnet ui [--listen ADDR:PORT]`: the fleet's web page (cmd_ui.c) */
int cmd_ui(int argc, char **argv);
int cmd_driver_list(int argc, char **argv);
int cmd_driver_register(int argc, char **argv);
int cmd_driver_disable(int argc, char **argv);
int cmd_driver_enable(int argc, char **argv);
int cmd_driver_restart(int argc, char **argv);
int cmd_driver_unregister(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_rng_read(int argc, char **argv);
int cmd_power_on(int argc, char **argv);
int cmd_power_off(int argc, char **argv);
int cmd_power_cycle(int argc, char **argv);
int cmd_power_get(int argc, char **argv);
int cmd_board_add(int argc, char **argv);
int cmd_board_list(int argc, char **argv);
int cmd_board_show(int argc, char **argv);
int cmd_board_cycle(int argc, char **argv);
int cmd_board_console(int argc, char **argv);

/* The serial port node of lab board `name` (the device its console parent, the serial
 * driver's offered child "port", hangs from) into out[cap]. CLI_EXIT_OK, or the failure
 * printed (NOT_FOUND: no such board is up). cmd_board.c. */
int cli__board_console(dfnet_client_t *c, const char *name, char *out, size_t cap);
int cmd_serial_console(int argc, char **argv);
int cmd_serial_write(int argc, char **argv);
int cmd_serial_read(int argc, char **argv);
int cmd_serial_log(int argc, char **argv);
int cmd_serial_configure(int argc, char **argv);
int cmd_usb_descriptors(int argc, char **argv);
int cmd_usb_control(int argc, char **argv);
int cmd_usb_bulk_in(int argc, char **argv);
int cmd_usb_bulk_out(int argc, char **argv);
int cmd_usb_interrupt_in(int argc, char **argv);
int cmd_usb_interrupt_out(int argc, char **argv);
int cmd_composite_add(int argc, char **argv);
int cmd_node_bind(int argc, char **argv);
int cmd_node_unbind(int argc, char **argv);
int cmd_node_suspend(int argc, char **argv);
int cmd_node_resume(int argc, char **argv);
int cmd_node_add_test(int argc, char **argv);
int cmd_node_remove_test(int argc, char **argv);
int cmd_driver_host(int argc, char **argv);
int cmd_lease_acquire(int argc, char **argv);
int cmd_lease_list(int argc, char **argv);
int cmd_lease_show(int argc, char **argv);
int cmd_lease_renew(int argc, char **argv);
int cmd_lease_release(int argc, char **argv);
int cmd_lease_history(int argc, char **argv);
int cmd_lease_run(int argc, char **argv);
int cmd_image_upload(int argc, char **argv);
int cmd_image_write(int argc, char **argv);

/* ---- images (image_upload.c, cmd_image.c): a file into a host's artifact cache, then onto
 * a device ----
 * proto/dfnet/lab/artifact.proto (dfnet.lab.ArtifactCache, answered by the host agent for any
 * node of its host) and proto/dfnet/hw/block.proto (dfnet.hw.block.Block/WriteImage). */
/* Puts of 1 MiB in flight: by default (the fastest in bench/image_bench.c), and the most a
 * cli_image_t may ask for (the manager's send queue towards a host holds 8 MiB). */
#define CLI_IMAGE_WINDOW 4
#define CLI_IMAGE_WINDOW_MAX 8

/* Progress of one phase: "upload", then (WriteImage) "write", "sync", "verify". */
typedef struct cli_image_progress {
  const char *phase;    /* static */
  uint64_t done_bytes;  /* of the phase: the bytes the host holds, written, read back */
  uint64_t total_bytes; /* the image's size */
  uint64_t base_bytes;  /* done_bytes when the phase began in this run (a resumed upload) */
  double seconds;       /* since the phase began in this run */
  bool end;             /* the phase is over; reported once, last */
} cli_image_progress_t;

/* Called with each progress report: the upload's from the thread running
 * cli__image_upload, WriteImage's from the client thread; never two at once. p is borrowed
 * for the call. */
typedef void (*cli_image_progress_fn)(void *user, const cli_image_progress_t *p);

/* An image: the file, how to upload it, and what the upload did. Zero it, set fd = -1,
 * then cli__image_open. */
typedef struct cli_image {
  int fd;             /* the file, read-only (-1: none) */
  uint64_t size;      /* its bytes (at least 1) */
  uint8_t sha256[32]; /* its digest: the artifact's name */
  char hex[65];       /* the same, lower-case hex */
  unsigned window;    /* Puts in flight: 0 = CLI_IMAGE_WINDOW; at most CLI_IMAGE_WINDOW_MAX */
  cli_image_progress_fn progress; /* may be NULL */
  void *progress_user;
  /* what cli__image_upload did */
  uint64_t start_offset; /* what the host held when it began */
  uint64_t held;         /* what the host holds now (size once uploaded) */
  uint64_t sent;         /* bytes it added to what the host held */
  bool already;          /* the host had it complete: nothing sent */
  bool uploading;        /* cli__image_upload_write: the upload runs (atomic) */
  bool stop;             /* cli__image_upload_write: the write failed, stop uploading (atomic) */
  unsigned retries;      /* times it asked Stat again after a failure and went on */
  double seconds;        /* its wall time */
} cli_image_t;

/* Open `path` and read it through once for its SHA-256 (mbedTLS, 1 MiB reads). CLI_EXIT_OK;
 * else the failure printed: CLI_EXIT_USAGE (the file cannot be opened or is not a regular
 * file: "FILE <path>: <why>"), CLI_EXIT_FAILED (INVALID_ARGUMENT: it is empty; UNAVAILABLE: a
 * read failed). im->fd may be open either way: cli__image_close. Main thread. */
int cli__image_open(cli_image_t *im, const char *path);
/* Close the file (idempotent). */
void cli__image_close(cli_image_t *im);

/* What the upload and WriteImage share (image_upload.c). */
#define CLI_IMAGE_REPORT_MS 250 /* progress at most this often */
/* Milliseconds of the monotonic clock (CLOCK_MONOTONIC): when a phase began. */
uint64_t cli__image_mono_ms(void);
/* Report progress of `phase` to im->progress (nothing when it is NULL): done of im->size
 * bytes, base of them done when the phase began in this run at since_ms (cli__image_mono_ms);
 * end: the phase is over. Called on the thread that runs the phase. */
void cli__image_report(cli_image_t *im, const char *phase, uint64_t done, uint64_t base,
                       uint64_t since_ms, bool end);
/* Wait for a byte on fd (a wake pipe, non-blocking), up to ms; drains what is there. False
 * when a signal stopped us (cli__stop_signal). */
bool cli__image_wait_wake(int fd, int ms);

/* Upload the opened image into the artifact cache of target's host (target: any node of
 * it, a moniker or a class path): Stat, then Puts of 1 MiB from what the host holds, with
 * im->window in flight; a Put refused FAILED_PRECONDITION or lost with the connection
 * (UNAVAILABLE; the library reconnects, and a NOT_FOUND right after is taken for the host not
 * announced again yet) makes it Stat again and go on, and one refused RESOURCE_EXHAUSTED (a
 * full send queue) goes on with one Put in flight, until 10 attempts in a row add nothing.
 * Progress goes to im->progress (the first report right after the first Stat, with what the
 * host held). Blocks (not on the client thread); SIGINT, SIGTERM and SIGHUP stop it
 * (cli__stop_on_signals is installed meanwhile). On OK the host has it complete (im->already:
 * it had it before). Errors in err: the last status of the host or the manager (NOT_FOUND:
 * no such target; RESOURCE_EXHAUSTED: the cache cannot hold it; DATA_LOSS: what the host
 * received does not hash to the digest, e.g. the file changed meanwhile; PERMISSION_DENIED,
 * FAILED_PRECONDITION: another's lease ...), CANCELLED on a signal (the host keeps what it
 * holds), a file that cannot be read again (UNAVAILABLE), RESOURCE_EXHAUSTED (memory). */
dfnet_status_t cli__image_upload(dfnet_client_t *c, const char *target, cli_image_t *im,
                                 dfnet_client_error_t *err);

/* Have target's block driver write the uploaded image to its device (WriteImage, credit 16,
 * this deadline), reporting the "write", "sync" and "verify" phases to im->progress from the
 * client thread. Blocks until the stream ends; a signal cancels it. On OK message[cap] holds
 * the driver's last words ("wrote N bytes to PATH in X.X s; read-back SHA-256 matches").
 * Errors in err: the driver's (NOT_FOUND: the host's cache does not have it; OUT_OF_RANGE,
 * FAILED_PRECONDITION, UNAVAILABLE, DATA_LOSS: see block.proto), the manager's (NOT_FOUND,
 * FAILED_PRECONDITION: no driver on target, or leased), DEADLINE_EXCEEDED, CANCELLED (a
 * signal: the device holds a partial image). */
dfnet_status_t cli__image_write(dfnet_client_t *c, const char *target, cli_image_t *im,
                                uint32_t deadline_ms, char *message, size_t cap,
                                dfnet_client_error_t *err);

/* `image write`: upload the opened image and have target's block driver write it, both at
 * once: WriteImage starts first with follow_upload_size (the driver writes the upload's
 * bytes as they arrive; block.proto), then the upload runs as cli__image_upload's. While the
 * upload runs, only its progress is reported. A WriteImage that fails for good meanwhile
 * (OUT_OF_RANGE, FAILED_PRECONDITION, PERMISSION_DENIED ...) stops the upload and is the
 * error returned; one lost with the connection or whose upload was started over
 * (UNAVAILABLE, ABORTED, CANCELLED, DEADLINE_EXCEEDED) is made again, as cli__image_write,
 * once the upload is done; a failed upload cancels the WriteImage. Errors: cli__image_upload's
 * and cli__image_write's. Blocks; main thread. */
dfnet_status_t cli__image_upload_write(dfnet_client_t *c, const char *target, cli_image_t *im,
                                       uint32_t deadline_ms, char *message, size_t cap,
                                       dfnet_client_error_t *err);

/* ---- USB descriptors (usb_descriptors.c): lsusb -v's text and dfnet's JSON ---- */
#define CLI_USB_CONFIGS_MAX 8 /* configurations read (bNumConfigurations is rarely > 1) */

typedef struct cli_usb_config {
  uint8_t *raw; /* wTotalLength bytes as the device sent them (malloc'd) */
  size_t len;
  bool active;
} cli_usb_config_t;

typedef struct cli_usb_device {
  uint8_t raw[18]; /* the device descriptor */
  uint32_t bus, address;
  char port_path[32];
  size_t config_count;
  cli_usb_config_t configs[CLI_USB_CONFIGS_MAX];
  char *strings[256]; /* string descriptor index -> UTF-8 (malloc'd), NULL = not read */
} cli_usb_device_t;

/* Check the device descriptor and every configuration: each descriptor's bLength at least
 * 2 and inside wTotalLength, a configuration descriptor first. 0, or -1 with *why set. */
int cli__usb_check(const cli_usb_device_t *d, char *why, size_t cap);
/* The nonzero string indices the descriptors name (iManufacturer ... iInterface), each
 * once, in order of appearance, into out[255]; returns how many. */
size_t cli__usb_string_indices(const cli_usb_device_t *d, uint8_t *out);
/* The descriptors as `lsusb -v` prints them (its field names, hex and indentation). */
void cli__usb_print(FILE *f, const cli_usb_device_t *d);
/* One JSON document (clients/cli/JSON.md "usb descriptors"); NULL when out of memory. */
cJSON *cli__usb_json(const cli_usb_device_t *d, const char *target);
/* Free what *d holds (not d). */
void cli__usb_device_free(cli_usb_device_t *d);

/* ---- a tiny protobuf writer/reader for the hardware protocols' messages (pb.c) ---- */
typedef struct cli_pb {
  uint8_t buf[66 * 1024];
  size_t len;
  bool overflow;
} cli_pb_t;
#define CLI_PB_VARINT_MAX 10 /* bytes of a 64-bit varint */
/* Write v as a protobuf varint at p (room for CLI_PB_VARINT_MAX bytes); returns its length. */
size_t cli__pb_put_varint(uint8_t *p, uint64_t v);
/* Empty pb for the next message. */
void cli__pb_reset(cli_pb_t *pb);
void cli__pb_varint(cli_pb_t *pb, uint32_t field, uint64_t value);
void cli__pb_bytes(cli_pb_t *pb, uint32_t field, const void *data, size_t len);
/* Find the first length-delimited field `field` of a message. 1 found, 0 absent, -1
 * malformed. */
int cli__pb_find_bytes(const uint8_t *msg, size_t len, uint32_t field, const uint8_t **data,
                       size_t *data_len);
/* Find the first varint field `field` (*value 0 when absent: proto3's default). 1 found,
 * 0 absent, -1 malformed. */
int cli__pb_find_varint(const uint8_t *msg, size_t len, uint32_t field, uint64_t *value);

/* pb sent to method on target as one unary call with a deadline; *reply (malloc'd, the
 * caller frees it; NULL/0 for an empty reply) as dfnet_client_call gives it. */
dfnet_status_t cli__pb_call(dfnet_client_t *c, const char *target, const char *method,
                            const cli_pb_t *pb, uint32_t deadline_ms, uint8_t **reply,
                            size_t *reply_len, dfnet_client_error_t *err);

/* A command's one unary call, first in its ctx: prepare allocates and fills pb
 * (cli__unary_new) and sets the deadline; cli__unary_request and cli__unary_release are
 * its request and release hooks (or what its own release calls). */
typedef struct cli_unary {
  const char *method;
  uint64_t deadline_ms; /* at most UINT32_MAX; a CLI_OPT_UINT may set it */
  cli_pb_t *pb;         /* the request (malloc'd) */
  uint8_t *reply;       /* the reply (malloc'd) */
  size_t reply_len;
} cli_unary_t;

/* Allocate u->pb: CLI_EXIT_OK or CLI_EXIT_FAILED ("out of memory" printed). */
int cli__unary_new(cli_unary_t *u);
/* Request hook: the call to the run's target (args[0]); the failure printed. */
int cli__unary_request(cli_run_t *run);
/* Release hook: free the request and the reply. */
void cli__unary_release(cli_run_t *run);

#endif /* DFNET_CLIENTS_CLI_CLI_H */
