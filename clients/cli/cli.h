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
} cli_opt_type_t;

typedef struct cli_option {
  const char *name; /* long name without "--"; NULL ends a table */
  char short_name;  /* 'v' for -v, or 0 */
  cli_opt_type_t type;
  void *dest;
  uint64_t min, max; /* CLI_OPT_UINT */
  const char *arg;   /* argument name in help ("URL", "MS") */
  const char *help;
} cli_option_t;

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

/* Connect with the global settings. Returns CLI_EXIT_OK, CLI_EXIT_USAGE (settings missing)
 * or CLI_EXIT_FAILED (message printed). */
int cli__connect(dfnet_client_t **out);

/* The start of every command that talks to the manager: cli__parse, then cli__connect.
 * Returns CLI_EXIT_OK with *out connected (the caller closes it); -1 when --help was given
 * (help printed; the command exits 0); else the exit code to return (message printed). */
int cli__begin(int argc, char **argv, const cli_syntax_t *syntax, const char **args, size_t *nargs,
               dfnet_client_t **out);

/* ---- errors ---- */
/* "dfnet: <STATUS>: message" on stderr; returns the exit code for it (USAGE for
 * INVALID_ARGUMENT raised locally is chosen by the caller). */
int cli__fail(dfnet_status_t code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli__fail_err(const dfnet_client_error_t *err);
int cli__usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- output (output.c) ---- */
/* Key / value of a property as `ffx driver list-devices -v` prints them. */
void cli__property_key(const dfnet_client_property_t *p, char *buf, size_t cap);
void cli__property_value(const dfnet_client_property_t *p, char *buf, size_t cap);
/* {"key": ..., "key_name": ..., "type": ..., "value": ...} */
cJSON *cli__property_json(const dfnet_client_property_t *p);
/* Print a JSON document (pretty) and a newline to stdout; frees it. CLI_EXIT_OK or
 * CLI_EXIT_FAILED (out of memory). */
int cli__json_print(cJSON *doc);
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

/* ---- commands ---- */
typedef int (*cli_command_fn)(int argc, char **argv);
int cmd_host_list(int argc, char **argv);
int cmd_node_list(int argc, char **argv);
int cmd_node_show(int argc, char **argv);
int cmd_node_dump(int argc, char **argv);
int cmd_composite_list(int argc, char **argv);
int cmd_bind_why(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_driver_list(int argc, char **argv);
int cmd_driver_register(int argc, char **argv);
int cmd_driver_disable(int argc, char **argv);
int cmd_driver_enable(int argc, char **argv);
int cmd_driver_restart(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_rng_read(int argc, char **argv);
int cmd_serial_console(int argc, char **argv);
int cmd_serial_write(int argc, char **argv);
int cmd_serial_read(int argc, char **argv);
int cmd_serial_configure(int argc, char **argv);

/* ---- a tiny protobuf writer/reader for the hardware protocols' messages (pb.c) ---- */
typedef struct cli_pb {
  uint8_t buf[66 * 1024];
  size_t len;
  bool overflow;
} cli_pb_t;
void cli__pb_varint(cli_pb_t *pb, uint32_t field, uint64_t value);
void cli__pb_bytes(cli_pb_t *pb, uint32_t field, const void *data, size_t len);
/* Find the first length-delimited field `field` of a message. 1 found, 0 absent, -1
 * malformed. */
int cli__pb_find_bytes(const uint8_t *msg, size_t len, uint32_t field, const uint8_t **data,
                       size_t *data_len);

#endif /* DFNET_CLIENTS_CLI_CLI_H */
