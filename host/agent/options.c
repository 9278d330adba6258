/* dfnet-host's command line (issue 6 "dfnet-host"), parsed by one table (docs/style.md 12):
 * each option names its kind, where its value goes and its range; numbers go through
 * dfnet_cmdline_uint (lib/cmdline.h: an end pointer and a range check). `--opt value` and
 * `--opt=value` both work.
 * Then the configuration file (issue 24 item 3; docs/configuration.md): --config FILE, else
 * host.conf in $DFNET_CONFIG_DIR or /etc/dfnet (lib/config_file.h); its keys are the
 * options' names without "--", its values go through apply() as the command line's do, and
 * an option the command line gave keeps the command line's value (all of its values, for a
 * repeatable one).
 * Nothing else is opened here: main.c checks the files and reports what is unreadable.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/agent/agent.h"
#include "lib/cmdline.h"
#include "lib/config_file.h"
#include "lib/driver_rights.h"
#include "lib/log.h"
#include "lib/log_format.h"
#include "lib/suggest.h"

typedef enum opt_kind {
  OPT_STRING,     /* const char * */
  OPT_FLAG,       /* bool, no value */
  OPT_LABEL,      /* k=v appended to labels */
  OPT_U32,        /* uint32_t in [min, max] */
  OPT_URL,        /* const char *, checked as wss://HOST:PORT[/path] */
  OPT_LOG_LEVEL,  /* const char *, checked by dfnet_log_level_parse */
  OPT_LOG_FORMAT, /* const char *, checked by dfnet_log_format_parse */
  OPT_SHUTDOWN,   /* agent_shutdown_reason_t: reboot, poweroff or none */
  OPT_ALLOW,      /* a glob appended to allow_resources */
  OPT_RIGHT,      /* a right (lib/driver_rights.h) added to the allow_rights bits */
} opt_kind_t;

typedef struct opt_spec {
  const char *name;
  opt_kind_t kind;
  size_t offset; /* into agent_options_t */
  uint32_t min, max;
  const char *arg; /* value placeholder in the usage text */
  const char *help;
} opt_spec_t;

#define OFF(field) offsetof(agent_options_t, field)

static const opt_spec_t k_options[] = {
    {"--manager", OPT_URL, OFF(manager_url), 0, 0, "wss://HOST:PORT",
     "the manager to connect to (required)"},
    {"--cert", OPT_STRING, OFF(cert_file), 0, 0, "FILE", "this host's certificate, PEM (required)"},
    {"--key", OPT_STRING, OFF(key_file), 0, 0, "FILE", "its private key, PEM (required)"},
    {"--ca", OPT_STRING, OFF(ca_file), 0, 0, "FILE",
     "the CA that signed the manager's certificate, PEM (required)"},
    {"--state-dir", OPT_STRING, OFF(state_dir), 0, 0, "DIR",
     "where `dfnet-host join` wrote this host's key, certificate, CA, labels and manager URL: "
     "the defaults of --cert, --key, --ca, --manager and labels (default $DFNET_HOST_STATE_DIR, "
     "/var/lib/dfnet-host as root, else $XDG_STATE_HOME/dfnet-host or "
     "~/.local/state/dfnet-host)"},
    {"--name", OPT_STRING, OFF(name), 0, 0, "NAME",
     "host name (default: the host name; must be the certificate's CN)"},
    {"--label", OPT_LABEL, OFF(labels), 0, 0, "K=V", "a label of this host (repeatable)"},
    {"--sysfs-root", OPT_STRING, OFF(sysfs_root), 0, 0, "DIR", "where sysfs is (default /sys)"},
    {"--board", OPT_STRING, OFF(board_file), 0, 0, "FILE", "board file (JSON) of platform devices"},
    {"--no-usb", OPT_FLAG, OFF(no_usb), 0, 0, NULL, "do not enumerate USB"},
    {"--metrics-listen", OPT_STRING, OFF(metrics_listen), 0, 0, "ADDR:PORT",
     "serve GET /metrics (Prometheus text) as plain HTTP, without authentication, there "
     "(e.g. 127.0.0.1:9465; default none)"},
    {"--cache-dir", OPT_STRING, OFF(cache_dir), 0, 0, "DIR",
     "driver package cache, made mode 0711 (default $XDG_CACHE_HOME/dfnet-host or "
     "~/.cache/dfnet-host)"},
    {"--artifact-cache-mb", OPT_U32, OFF(artifact_cache_mb), 1, 16777216, "MB",
     "the artifact cache's bound (<cache dir>/artifacts), MiB; the least recently used "
     "artifacts go first (default 8192)"},
    {"--allow-resource", OPT_ALLOW, OFF(allow_resources), 0, 0, "GLOB",
     "a file a driver's manifest may ask for (\"resources\"), fnmatch(3) with FNM_PATHNAME "
     "('*' stops at '/'); the agent opens it and hands the driver the descriptor; repeatable; "
     "given once or more, it replaces the defaults " AGENT_ALLOW_RESOURCE_DEFAULT_1
     " and " AGENT_ALLOW_RESOURCE_DEFAULT_2},
    {"--allow-right", OPT_RIGHT, OFF(allow_rights), 0, 0, "RIGHT",
     "a right a driver's manifest may ask for (\"rights\"): inet (sockets), exec (running "
     "programs) or usb (USB device files); a driver asking for one not allowed is refused; "
     "repeatable; default none"},
    {"--driver-user", OPT_STRING, OFF(driver_user), 0, 0, "NAME",
     "the user driver hosts run as when dfnet-host runs as root (default " AGENT_DRIVER_USER_DEFAULT
     "; it must exist: useradd --system --no-create-home --shell "
     "/usr/sbin/nologin " AGENT_DRIVER_USER_DEFAULT ")"},
    {"--no-sandbox", OPT_FLAG, OFF(no_sandbox), 0, 0, NULL,
     "run driver hosts unconfined, as dfnet-host's own user, with every right (no "
     "--driver-user, Landlock, seccomp or limits); `dfnet host list` says SANDBOX OFF"},
    {"--driver-host", OPT_STRING, OFF(driver_host), 0, 0, "PATH",
     "dfnet-driver-host executable (default: beside dfnet-host)"},
    {"--keepalive-ms", OPT_U32, OFF(keepalive_ms), 50, 600000, "MS",
     "ping the manager after this much silence; it is lost after 3 (default 10000)"},
    {"--stop-grace-ms", OPT_U32, OFF(stop_grace_ms), 100, 600000, "MS",
     "time a driver host gets to stop its drivers before SIGKILL (default 5000)"},
    {"--shutdown-reason", OPT_SHUTDOWN, OFF(shutdown_reason), 0, 0, "WHY",
     "reboot, poweroff or none: on SIGTERM, suspend the drivers for that reason (children "
     "first, within --stop-grace-ms) before stopping them (default none)"},
    {"--log-level", OPT_LOG_LEVEL, OFF(log_level), 0, 0, "LEVEL",
     "error, warn, info or debug (default info)"},
    {"--log-format", OPT_LOG_FORMAT, OFF(log_format), 0, 0, "FORMAT",
     "text, or json: one JSON object a line; driver hosts log alike (default text; "
     "DFNET_LOG_FORMAT)"},
    {"--config", OPT_STRING, OFF(config), 0, 0, "FILE",
     "settings, one 'key = value' a line, the keys these options' names without '--'; the "
     "command line wins (default $DFNET_CONFIG_DIR/host.conf, else " DFNET_CONFIG_DIR_DEFAULT
     "/host.conf, if it exists; docs/configuration.md)"},
    {"--help", OPT_FLAG, OFF(help), 0, 0, NULL, "this text (also -h)"},
    {"--version", OPT_FLAG, OFF(version), 0, 0, NULL, "print dfnet-host's version"},
};

const char *agent__usage(void) {
  static char text[8192];
  if (text[0] != '\0')
    return text;
  size_t n = (size_t)snprintf(
      text, sizeof text,
      "Usage: dfnet-host --manager wss://HOST:PORT --cert FILE --key FILE --ca FILE "
      "[OPTIONS]\n"
      "       dfnet-host [--state-dir DIR] [OPTIONS]     (after dfnet-host join)\n"
      "       dfnet-host join wss://HOST:PORT --token ID.SECRET --ca-pin sha256:HEX "
      "[--name NAME] [--state-dir DIR]\n"
      "       dfnet-host --help | --version\n\n"
      "The host agent of a dfnet fleet: it publishes this machine's hardware (PCI functions\n"
      "from sysfs, USB devices with hot-plug, the board file's platform devices) as nodes to\n"
      "the manager, runs the drivers the manager binds to them in driver-host processes, and\n"
      "carries calls to them. It reconnects forever; drivers keep running meanwhile.\n\n"
      "Options:\n");
  static const dfnet_cmdline_layout_t layout = {.width = 28, .gap = " "};
  for (size_t i = 0; i < sizeof k_options / sizeof k_options[0] && n < sizeof text; i++) {
    const opt_spec_t *o = &k_options[i];
    const dfnet_cmdline_help_t h = {.name = o->name,
                                    .arg = o->arg,
                                    .help = o->help,
                                    .ranged = o->kind == OPT_U32,
                                    .min = o->min,
                                    .max = o->max};
    n += (size_t)dfnet_cmdline_help_line(text + n, sizeof text - n, &layout, &h);
  }
  return text;
}

/* wss://HOST:PORT[/path]: HOST a name or an IPv4 literal, or [IPv6]; PORT 1..65535. */
static bool url_valid(const char *url, char *why, size_t why_size) {
  static const char scheme[] = "wss://";
  if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
    snprintf(why, why_size, "must start with wss://");
    return false;
  }
  const char *host = url + sizeof scheme - 1;
  const char *colon;
  if (*host == '[') {
    const char *close = strchr(host, ']');
    if (close == NULL || close == host + 1) {
      snprintf(why, why_size, "unterminated or empty [IPv6] host");
      return false;
    }
    colon = close + 1;
    if (*colon != ':') {
      snprintf(why, why_size, "missing :PORT after the host");
      return false;
    }
  } else {
    size_t len = strcspn(host, ":/");
    if (len == 0) {
      snprintf(why, why_size, "missing host");
      return false;
    }
    for (size_t i = 0; i < len; i++) {
      char c = host[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == '_')) {
        snprintf(why, why_size, "bad character '%c' in the host", c);
        return false;
      }
    }
    colon = host + len;
    if (*colon != ':') {
      snprintf(why, why_size, "missing :PORT after the host");
      return false;
    }
  }
  const char *port = colon + 1;
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(port, &end, 10);
  if (end == port || errno != 0 || v == 0 || v > 65535 || (*end != '\0' && *end != '/') ||
      *port == '-' || *port == '+') {
    snprintf(why, why_size, "port must be 1..65535");
    return false;
  }
  return true;
}

static bool label_parse(const char *text, agent_options_t *o, char *err, size_t err_size) {
  const char *eq = strchr(text, '=');
  if (eq == NULL || eq == text) {
    snprintf(err, err_size, "--label %s: want KEY=VALUE", text);
    return false;
  }
  size_t klen = (size_t)(eq - text), vlen = strlen(eq + 1);
  if (o->label_count >= AGENT_LABELS_MAX) {
    snprintf(err, err_size, "--label %s: at most %d labels", text, AGENT_LABELS_MAX);
    return false;
  }
  agent_label_t *l = &o->labels[o->label_count];
  if (klen >= sizeof l->key || vlen >= sizeof l->value) {
    snprintf(err, err_size, "--label %s: key at most %zu bytes, value at most %zu", text,
             sizeof l->key - 1, sizeof l->value - 1);
    return false;
  }
  for (size_t i = 0; i < klen; i++) {
    char c = text[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_' || c == '/')) {
      snprintf(err, err_size, "--label %s: bad character '%c' in the key", text, c);
      return false;
    }
  }
  memcpy(l->key, text, klen);
  l->key[klen] = '\0';
  memcpy(l->value, eq + 1, vlen + 1);
  o->label_count++;
  return true;
}

bool agent__label_parse(const char *text, agent_options_t *o, char *err, size_t err_size) {
  return label_parse(text, o, err, err_size);
}

/* --allow-right NAME: one of lib/driver_rights.h's names, added to *rights; a typo is told
 * with the nearest right and the list of them (dfnet_right_parse's words). */
static bool right_parse(const opt_spec_t *spec, const char *value, uint32_t *rights, char *err,
                        size_t err_size) {
  dfnet_right_t right;
  char why[200];
  if (dfnet_right_parse(value, &right, why, sizeof why) == DFNET_STATUS_OK) {
    *rights |= (uint32_t)right;
    return true;
  }
  snprintf(err, err_size, "%s %s: %s", spec->name, value, why);
  return false;
}

/* A string option's value checked for its kind (OPT_STRING, OPT_URL, OPT_LOG_LEVEL,
 * OPT_LOG_FORMAT); false with err set when it is not one. */
static bool string_check(const opt_spec_t *spec, const char *value, char *err, size_t err_size) {
  char why[96];
  dfnet_log_level_t level;
  dfnet_log_format_t format;
  switch (spec->kind) {
  case OPT_URL:
    if (url_valid(value, why, sizeof why))
      return true;
    snprintf(err, err_size, "%s %s: malformed manager URL: %s", spec->name, value, why);
    return false;
  case OPT_LOG_LEVEL:
    if (dfnet_log_level_parse(value, &level) == 0)
      return true;
    snprintf(err, err_size, "%s %s: want error, warn, info or debug", spec->name, value);
    return false;
  case OPT_LOG_FORMAT:
    if (dfnet_log_format_parse(value, &format) == 0)
      return true;
    snprintf(err, err_size, "%s %s: want text or json", spec->name, value);
    return false;
  default: /* OPT_STRING */
    if (value[0] != '\0')
      return true;
    snprintf(err, err_size, "%s: empty value", spec->name);
    return false;
  }
}

static bool apply(const opt_spec_t *spec, const char *value, agent_options_t *o, char *err,
                  size_t err_size) {
  char *field = (char *)o + spec->offset;
  switch (spec->kind) {
  case OPT_FLAG:
    *(bool *)field = true;
    return true;
  case OPT_STRING:
  case OPT_URL:
  case OPT_LOG_LEVEL:
  case OPT_LOG_FORMAT: /* kept as given, once checked */
    if (!string_check(spec, value, err, err_size))
      return false;
    *(const char **)field = value;
    return true;
  case OPT_LABEL:
    return label_parse(value, o, err, err_size);
  case OPT_ALLOW:
    if (value[0] != '/' || o->allow_resource_count >= AGENT_ALLOW_RESOURCES_MAX) {
      snprintf(err, err_size, "%s %s: want an absolute path or glob (at most %d of them)",
               spec->name, value, AGENT_ALLOW_RESOURCES_MAX);
      return false;
    }
    o->allow_resources[o->allow_resource_count++] = value;
    return true;
  case OPT_RIGHT:
    return right_parse(spec, value, (uint32_t *)field, err, err_size);
  case OPT_SHUTDOWN: {
    static const struct {
      const char *name;
      agent_shutdown_reason_t reason;
    } k_reasons[] = {{"none", AGENT_SHUTDOWN_NONE},
                     {"reboot", AGENT_SHUTDOWN_REBOOT},
                     {"poweroff", AGENT_SHUTDOWN_POWEROFF}};
    for (size_t i = 0; i < sizeof k_reasons / sizeof k_reasons[0]; i++) {
      if (strcmp(value, k_reasons[i].name) == 0) {
        *(agent_shutdown_reason_t *)field = k_reasons[i].reason;
        return true;
      }
    }
    snprintf(err, err_size, "%s %s: want reboot, poweroff or none", spec->name, value);
    return false;
  }
  case OPT_U32: {
    uint64_t v = 0;
    if (!dfnet_cmdline_uint(value, 10, spec->min, spec->max, &v)) {
      snprintf(err, err_size, "%s %s: want a number in %u..%u", spec->name, value, spec->min,
               spec->max);
      return false;
    }
    *(uint32_t *)field = (uint32_t)v;
    return true;
  }
  }
  return false;
}

#define OPTION_COUNT (sizeof k_options / sizeof k_options[0])

/* One setting of the file: as apply() takes the command line's value, but named as its key
 * ("keepalive-ms 5: want ...") after "FILE:LINE: "; a flag's value is true or false. */
static bool apply_setting(const char *path, const dfnet_config_entry_t *e, const opt_spec_t *spec,
                          agent_options_t *o, char *err, size_t err_size) {
  opt_spec_t named = *spec;
  named.name = spec->name + 2;
  char why[512];
  bool ok;
  if (spec->kind == OPT_FLAG) {
    ok = dfnet_config_bool(e->value, (bool *)((char *)o + spec->offset));
    if (!ok)
      snprintf(why, sizeof why, "%s: '%s' is not true or false (yes/no, 1/0)", named.name,
               e->value);
  } else {
    ok = apply(&named, e->value, o, why, sizeof why);
  }
  if (!ok)
    snprintf(err, err_size, "%s:%u: %s", path, e->line, why);
  return ok;
}

/* The configuration file into *out, but for the options the command line gave. Its text
 * lives until exit (out points into it; one agent a process). */
static bool read_config(agent_options_t *out, const bool given[OPTION_COUNT], char *err,
                        size_t err_size) {
  static dfnet_config_file_t file;
  dfnet_config_key_t keys[OPTION_COUNT];
  const opt_spec_t *by_key[OPTION_COUNT];
  size_t n = 0, given_index[OPTION_COUNT];
  for (size_t k = 0; k < OPTION_COUNT; k++) {
    const char *name = k_options[k].name;
    if (strcmp(name, "--config") == 0 || strcmp(name, "--help") == 0 ||
        strcmp(name, "--version") == 0)
      continue;
    bool repeatable = k_options[k].kind == OPT_LABEL || k_options[k].kind == OPT_ALLOW ||
                      k_options[k].kind == OPT_RIGHT;
    keys[n] = (dfnet_config_key_t){name, repeatable};
    given_index[n] = k;
    by_key[n++] = &k_options[k];
  }
  char path[1024];
  if (out->config != NULL)
    snprintf(path, sizeof path, "%s", out->config);
  else
    dfnet_config_path(path, sizeof path, "host.conf");
  if (dfnet_config_file_read(path, out->config != NULL, keys, n, &file, err, err_size) !=
      DFNET_STATUS_OK)
    return false;
  for (size_t i = 0; i < file.count; i++) {
    const dfnet_config_entry_t *e = &file.entries[i];
    if (!given[given_index[e->key]] && !apply_setting(path, e, by_key[e->key], out, err, err_size))
      return false;
  }
  return true;
}

dfnet_status_t agent__options_parse(int argc, char **argv, agent_options_t *out, char *err,
                                    size_t err_size) {
  bool on_command_line[OPTION_COUNT] = {false};
  memset(out, 0, sizeof *out);
  out->sysfs_root = "/sys";
  out->stop_grace_ms = 5000;
  out->keepalive_ms = DFNET_TRANSPORT_KEEPALIVE_MS_DEFAULT;
  out->artifact_cache_mb = 8192;
  out->driver_user = AGENT_DRIVER_USER_DEFAULT;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *inline_value = NULL;
    size_t name_len = strlen(arg);
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) == 0 && eq != NULL) {
      name_len = (size_t)(eq - arg);
      inline_value = eq + 1;
    }
    if (strcmp(arg, "-h") == 0) { /* the short form of --help */
      arg = "--help";
      name_len = strlen(arg);
    }
    const opt_spec_t *spec = NULL;
    for (size_t k = 0; k < sizeof k_options / sizeof k_options[0]; k++)
      if (strlen(k_options[k].name) == name_len && strncmp(k_options[k].name, arg, name_len) == 0)
        spec = &k_options[k];
    if (spec == NULL) {
      char given[64];
      snprintf(given, sizeof given, "%.*s", (int)(name_len < 60 ? name_len : 60), arg);
      dfnet_suggest_t s;
      dfnet_suggest_init(&s, given);
      for (size_t k = 0; k < sizeof k_options / sizeof k_options[0]; k++)
        dfnet_suggest_offer(&s, k_options[k].name);
      dfnet_cmdline_unknown(err, err_size, "option", given, dfnet_suggest_best(&s),
                            "dfnet-host --help lists the options");
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    const char *value = NULL;
    if (spec->kind == OPT_FLAG) {
      if (inline_value != NULL) {
        snprintf(err, err_size, "%s takes no value", spec->name);
        return DFNET_STATUS_INVALID_ARGUMENT;
      }
    } else if (inline_value != NULL) {
      value = inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      snprintf(err, err_size, "%s needs a value (%s)", spec->name, spec->arg);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
    if (!apply(spec, value, out, err, err_size))
      return DFNET_STATUS_INVALID_ARGUMENT;
    on_command_line[spec - k_options] = true;
  }
  if (!out->help && !out->version && !read_config(out, on_command_line, err, err_size))
    return DFNET_STATUS_INVALID_ARGUMENT;
  if (out->allow_resource_count == 0) {
    out->allow_resources[out->allow_resource_count++] = AGENT_ALLOW_RESOURCE_DEFAULT_1;
    out->allow_resources[out->allow_resource_count++] = AGENT_ALLOW_RESOURCE_DEFAULT_2;
  }
  if (out->help || out->version)
    return DFNET_STATUS_OK;
  return agent__state_defaults(out, err, err_size); /* and the required ones are set */
}
