/* dfnet CLI: global settings — command line, then DFNET_MANAGER / DFNET_CERT / DFNET_KEY /
 * DFNET_CA, then the config file — and connecting with them.
 *
 * Config file (DFNET_CONFIG, else $XDG_CONFIG_HOME/dfnet/config, else
 * $HOME/.config/dfnet/config; a missing default file is fine, a missing DFNET_CONFIG file
 * is an error). Read by lib/config_file.h (the format of every dfnet configuration file,
 * docs/configuration.md), strictly, one setting per line:
 *     # comment (a line whose first non-blank character is '#'); blank lines are ignored
 *     manager = wss://127.0.0.1:7443
 *     cert = admin.crt          # NOT a comment: values run to the end of the line
 *     key = admin.key
 *     ca = ca.crt
 * Keys: manager, cert, key, ca. Spaces around '=' and at the ends are trimmed; the value
 * must not be empty; a key may appear once; any other line is an error naming the file
 * and line (an unknown key with the nearest known one). Relative paths of cert/key/ca are
 * relative to the config file's directory. */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/cmdline.h"
#include "lib/config_file.h"
#include "lib/log.h"

cli_globals_t cli_globals = {.connect_timeout_ms = 10000};

const cli_option_t cli_global_options[] = {
    {"manager", 0, CLI_OPT_STRING, &cli_globals.manager, 0, 0, "URL",
     "the manager, wss://host:port (DFNET_MANAGER)"},
    {"cert", 0, CLI_OPT_STRING, &cli_globals.cert, 0, 0, "FILE",
     "client certificate, PEM; its OU is the role (DFNET_CERT)"},
    {"key", 0, CLI_OPT_STRING, &cli_globals.key, 0, 0, "FILE", "its private key, PEM (DFNET_KEY)"},
    {"ca", 0, CLI_OPT_STRING, &cli_globals.ca, 0, 0, "FILE",
     "the CA that signed the manager's certificate (DFNET_CA)"},
    {"connect-timeout", 0, CLI_OPT_UINT, &cli_globals.connect_timeout_ms, 1, 600000, "MS",
     "how long to wait for the session (default 10000)"},
    {"log-level", 0, CLI_OPT_STRING, &cli_globals.log_level, 0, 0, "LEVEL",
     "error|warn|info|debug (default warn; DFNET_LOG_LEVEL)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

int cli__fail(dfnet_status_t code, const char *fmt, ...) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "dfnet: %s", dfnet_status_str(code));
  va_list ap;
  va_start(ap, fmt);
  dfnet_cmdline_vreport(prefix, fmt, ap);
  va_end(ap);
  return CLI_EXIT_FAILED;
}

int cli__fail_err(const dfnet_client_error_t *err) {
  return cli__fail(err->code, "%s",
                   err->message[0] ? err->message : dfnet_status_description(err->code));
}

int cli__status(dfnet_status_t st, const dfnet_client_error_t *err) {
  return st == DFNET_STATUS_OK ? CLI_EXIT_OK : cli__fail_err(err);
}

int cli__usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dfnet_cmdline_vreport("dfnet: INVALID_ARGUMENT", fmt, ap);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

/* Values read from the file live until exit (the process is short-lived). */
static const char *file_value(const char *dir, const char *value, bool is_path) {
  if (!is_path || value[0] == '/')
    return strdup(value);
  size_t n = strlen(dir) + strlen(value) + 2;
  char *p = malloc(n);
  if (p != NULL)
    snprintf(p, n, "%s/%s", dir, value);
  return p;
}

/* The file, read by lib/config_file.h (its format and messages); a setting fills what the
 * command line and the environment left unset. */
static int read_config(const char *path, bool must_exist) {
  static const dfnet_config_key_t keys[] = {
      {"manager", false}, {"cert", false}, {"key", false}, {"ca", false}};
  const char **dest[] = {&cli_globals.manager, &cli_globals.cert, &cli_globals.key,
                         &cli_globals.ca};
  const bool is_path[] = {false, true, true, true};
  dfnet_config_file_t f;
  char err[1200];
  dfnet_status_t st = dfnet_config_file_read(path, must_exist, keys, sizeof keys / sizeof keys[0],
                                             &f, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    return st == DFNET_STATUS_NOT_FOUND ? cli__usage("config file %s", err) : cli__usage("%s", err);
  char *copy = strdup(path);
  const char *dir = copy ? dirname(copy) : ".";
  for (size_t i = 0; i < f.count; i++)
    if (*dest[f.entries[i].key] == NULL)
      *dest[f.entries[i].key] = file_value(dir, f.entries[i].value, is_path[f.entries[i].key]);
  free(copy);
  dfnet_config_file_free(&f);
  return CLI_EXIT_OK;
}

bool cli__config_path(char *out, size_t cap, bool *explicit_path) {
  const char *e = getenv("DFNET_CONFIG");
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  *explicit_path = e != NULL && e[0] != '\0';
  if (*explicit_path)
    snprintf(out, cap, "%s", e);
  else if (xdg != NULL && xdg[0] == '/')
    snprintf(out, cap, "%s/dfnet/config", xdg);
  else if (home != NULL && home[0] != '\0')
    snprintf(out, cap, "%s/.config/dfnet/config", home);
  else
    return false;
  return true;
}

int cli__config_resolve(void) {
  const char *env[4] = {getenv("DFNET_MANAGER"), getenv("DFNET_CERT"), getenv("DFNET_KEY"),
                        getenv("DFNET_CA")};
  const char **dest[4] = {&cli_globals.manager, &cli_globals.cert, &cli_globals.key,
                          &cli_globals.ca};
  for (int i = 0; i < 4; i++)
    if (*dest[i] == NULL && env[i] != NULL && env[i][0] != '\0')
      *dest[i] = env[i];
  char path[4096];
  bool explicit_path;
  if (!cli__config_path(path, sizeof path, &explicit_path))
    return CLI_EXIT_OK;
  return read_config(path, explicit_path);
}

int cli__connect(dfnet_client_t **out) {
  int rc = cli__config_resolve();
  if (rc != CLI_EXIT_OK)
    return rc;
  const char *missing = cli_globals.manager == NULL ? "--manager (or DFNET_MANAGER)"
                        : cli_globals.cert == NULL  ? "--cert (or DFNET_CERT)"
                        : cli_globals.key == NULL   ? "--key (or DFNET_KEY)"
                        : cli_globals.ca == NULL    ? "--ca (or DFNET_CA)"
                                                    : NULL;
  if (missing != NULL)
    return cli__usage("%s is not set (nor in the config file)", missing);
  dfnet_client_options_t o = {.url = cli_globals.manager,
                              .cert_file = cli_globals.cert,
                              .key_file = cli_globals.key,
                              .ca_file = cli_globals.ca,
                              .connect_timeout_ms = (uint32_t)cli_globals.connect_timeout_ms,
                              /* the CLI prints the error itself; DFNET_LOG_LEVEL shows more */
                              .log_level = getenv("DFNET_LOG_LEVEL") != NULL
                                               ? DFNET_CLIENT_LOG_DEFAULT
                                               : DFNET_CLIENT_LOG_ERROR};
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_connect(&o, out, &err);
  if (st != DFNET_STATUS_OK) {
    cli__fail_err(&err);
    return st == DFNET_STATUS_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
  }
  return CLI_EXIT_OK;
}
