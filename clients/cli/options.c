/* dfnet CLI: table-driven option parsing (docs/style.md 12: strtoull + end pointer + range
 * checks, never atoi). "--name value", "--name=value", "-v", "--" ends the options.
 * Every command also accepts the global options (cli_global_options). An unknown option is
 * answered with the nearest known one ("did you mean", lib/suggest.h). Describe mode
 * (cli__set_describe) hands the table to a reader instead of parsing. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/cmdline.h"
#include "lib/suggest.h"

static cli_describe_fn describe_fn;
static void *describe_user;

void cli__set_describe(cli_describe_fn fn, void *user) {
  describe_fn = fn;
  describe_user = user;
}

/* The command's name in its usage: the words before the first option or argument
 * ("node list [-v] ..." -> "node list"; "usb bulk-in TARGET EP ..." -> "usb bulk-in"). */
static size_t command_name_len(const char *usage) {
  size_t len = 0;
  for (const char *w = usage; *w != '\0';) {
    if (*w == '[' || *w == '(' || *w == '-' || (*w >= 'A' && *w <= 'Z'))
      break;
    const char *end = w + strcspn(w, " ");
    len = (size_t)(end - usage);
    w = end + strspn(end, " ");
  }
  return len;
}

/* "unknown option 'X' (did you mean '--Y'?; dfnet CMD --help lists the options)": the
 * nearest option (long, or short for "-x") of the command and the global ones. */
static int unknown_option(const cli_syntax_t *syn, const cli_option_t *const tables[2],
                          const char *word, size_t len) {
  char given[64], longs[32][40], shorts[32][4];
  snprintf(given, sizeof given, "%.*s", (int)(len < 60 ? len : 60), word);
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, given);
  size_t n = 0;
  for (int k = 0; k < 2; k++) {
    for (const cli_option_t *t = tables[k]; t != NULL && t->name != NULL && n < 32; t++, n++) {
      snprintf(longs[n], sizeof longs[n], "--%s", t->name);
      dfnet_suggest_offer(&s, longs[n]);
      snprintf(shorts[n], sizeof shorts[n], "-%c", t->short_name);
      if (t->short_name != 0 && given[1] != '-')
        dfnet_suggest_offer(&s, shorts[n]);
    }
  }
  dfnet_suggest_offer(&s, "--help");
  char where[160], msg[1024];
  snprintf(where, sizeof where, "dfnet %.*s --help lists the options",
           (int)command_name_len(syn->usage), syn->usage);
  dfnet_cmdline_unknown(msg, sizeof msg, "option", given, dfnet_suggest_best(&s), where);
  return cli__usage("%s", msg);
}

static const cli_option_t *find_long(const cli_option_t *t, const char *name, size_t n) {
  for (; t != NULL && t->name != NULL; t++)
    if (strlen(t->name) == n && strncmp(t->name, name, n) == 0)
      return t;
  return NULL;
}

static const cli_option_t *find_short(const cli_option_t *t, char c) {
  for (; t != NULL && t->name != NULL; t++)
    if (t->short_name == c)
      return t;
  return NULL;
}

static int set_value(const cli_syntax_t *syn, const cli_option_t *o, const char *value) {
  switch (o->type) {
  case CLI_OPT_FLAG:
    *(bool *)o->dest = true;
    return CLI_EXIT_OK;
  case CLI_OPT_STRING:
    *(const char **)o->dest = value;
    return CLI_EXIT_OK;
  case CLI_OPT_UINT:
    if (!dfnet_cmdline_uint(value, 0, o->min, o->max, (uint64_t *)o->dest))
      return cli__usage("--%s wants a number in %" PRIu64 "..%" PRIu64 ", not '%s' (dfnet %s)",
                        o->name, o->min, o->max, value, syn->usage);
    return CLI_EXIT_OK;
  case CLI_OPT_LIST: {
    cli_strings_t *list = o->dest;
    size_t max = o->max < CLI_STRINGS_MAX ? (size_t)o->max : CLI_STRINGS_MAX;
    if (list->n >= max)
      return cli__usage("--%s given more than %zu times (dfnet %s)", o->name, max, syn->usage);
    list->v[list->n++] = value;
    return CLI_EXIT_OK;
  }
  }
  return CLI_EXIT_USAGE;
}

int cli__parse(int argc, char **argv, const cli_syntax_t *syn, const char **args, size_t *nargs) {
  const cli_option_t *const tables[2] = {syn->options, cli_global_options};
  bool only_args = false;
  *nargs = 0;
  if (describe_fn != NULL) {
    describe_fn(describe_user, syn);
    return -1;
  }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const cli_option_t *o = NULL;
    const char *value = NULL;
    if (!only_args && strcmp(a, "--") == 0) {
      only_args = true;
      continue;
    }
    if (!only_args && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      cli__help(stdout, syn);
      return -1;
    }
    if (!only_args && a[0] == '-' && a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t n = eq ? (size_t)(eq - name) : strlen(name);
      for (int k = 0; k < 2 && o == NULL; k++)
        o = find_long(tables[k], name, n);
      if (o == NULL)
        return unknown_option(syn, tables, a, n + 2);
      if (eq != NULL) {
        if (o->type == CLI_OPT_FLAG)
          return cli__usage("--%s takes no value", o->name);
        value = eq + 1;
      }
    } else if (!only_args && a[0] == '-' && a[1] != '\0' && a[2] == '\0') {
      for (int k = 0; k < 2 && o == NULL; k++)
        o = find_short(tables[k], a[1]);
      if (o == NULL)
        return unknown_option(syn, tables, a, strlen(a));
    } else {
      if (*nargs >= syn->max_args)
        return cli__usage("unexpected argument '%s' (dfnet %s)", a, syn->usage);
      args[(*nargs)++] = a;
      continue;
    }
    if (o->type != CLI_OPT_FLAG && value == NULL) {
      if (i + 1 >= argc)
        return cli__usage("--%s needs a value %s (dfnet %s)", o->name, o->arg ? o->arg : "",
                          syn->usage);
      value = argv[++i];
    }
    int rc = set_value(syn, o, value);
    if (rc != CLI_EXIT_OK)
      return rc;
  }
  if (*nargs < syn->min_args)
    return cli__usage("missing argument (dfnet %s)", syn->usage);
  return CLI_EXIT_OK;
}

void cli__help_options(FILE *f, const cli_option_t *t) {
  static const dfnet_cmdline_layout_t layout = {.width = 28, .gap = " ", .short_column = true};
  for (; t != NULL && t->name != NULL; t++) {
    char name[48], line[512];
    snprintf(name, sizeof name, "--%s", t->name);
    const dfnet_cmdline_help_t o = {.short_name = t->short_name,
                                    .name = name,
                                    .arg = t->arg,
                                    .help = t->help,
                                    .ranged = t->type == CLI_OPT_UINT,
                                    .min = t->min,
                                    .max = t->max};
    dfnet_cmdline_help_line(line, sizeof line, &layout, &o);
    fputs(line, f);
  }
}

void cli__help(FILE *f, const cli_syntax_t *syn) {
  fprintf(f, "Usage: dfnet %s\n\n%s\n", syn->usage, syn->about);
  if (syn->args_help)
    fprintf(f, "\nArguments:\n%s", syn->args_help);
  if (syn->options && syn->options->name) {
    fprintf(f, "\nOptions:\n");
    cli__help_options(f, syn->options);
  }
  fprintf(f,
          "\nGlobal options (defaults: DFNET_MANAGER, DFNET_CERT, DFNET_KEY, DFNET_CA, then "
          "~/.config/dfnet/config):\n");
  cli__help_options(f, cli_global_options);
}
