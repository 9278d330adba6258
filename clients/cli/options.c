/* dfnet CLI: table-driven option parsing (docs/style.md 12: strtoull + end pointer + range
 * checks, never atoi). "--name value", "--name=value", "-v", "--" ends the options.
 * Every command also accepts the global options (cli_global_options). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"

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
  case CLI_OPT_UINT: {
    char *end = NULL;
    errno = 0;
    if (value[0] == '-' || value[0] == '\0')
      return cli__usage("--%s wants a number in %" PRIu64 "..%" PRIu64 ", not '%s' (dfnet %s)",
                        o->name, o->min, o->max, value, syn->usage);
    unsigned long long v = strtoull(value, &end, 0);
    if (errno != 0 || end == value || *end != '\0' || v < o->min || v > o->max)
      return cli__usage("--%s wants a number in %" PRIu64 "..%" PRIu64 ", not '%s' (dfnet %s)",
                        o->name, o->min, o->max, value, syn->usage);
    *(uint64_t *)o->dest = v;
    return CLI_EXIT_OK;
  }
  }
  return CLI_EXIT_USAGE;
}

int cli__parse(int argc, char **argv, const cli_syntax_t *syn, const char **args, size_t *nargs) {
  const cli_option_t *tables[2] = {syn->options, cli_global_options};
  bool only_args = false;
  *nargs = 0;
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
        return cli__usage("unknown option '%.*s' (dfnet %s; --help lists the options)",
                          (int)(n + 2), a, syn->usage);
      if (eq != NULL) {
        if (o->type == CLI_OPT_FLAG)
          return cli__usage("--%s takes no value", o->name);
        value = eq + 1;
      }
    } else if (!only_args && a[0] == '-' && a[1] != '\0' && a[2] == '\0') {
      for (int k = 0; k < 2 && o == NULL; k++)
        o = find_short(tables[k], a[1]);
      if (o == NULL)
        return cli__usage("unknown option '%s' (dfnet %s; --help lists the options)", a,
                          syn->usage);
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

static void print_options(FILE *f, const cli_option_t *t) {
  for (; t != NULL && t->name != NULL; t++) {
    char left[64];
    if (t->short_name)
      snprintf(left, sizeof left, "-%c, --%s%s%s", t->short_name, t->name, t->arg ? " " : "",
               t->arg ? t->arg : "");
    else
      snprintf(left, sizeof left, "    --%s%s%s", t->name, t->arg ? " " : "", t->arg ? t->arg : "");
    fprintf(f, "  %-28s %s", left, t->help);
    if (t->type == CLI_OPT_UINT)
      fprintf(f, " (%" PRIu64 "..%" PRIu64 ")", t->min, t->max);
    fputc('\n', f);
  }
}

void cli__help(FILE *f, const cli_syntax_t *syn) {
  fprintf(f, "Usage: dfnet %s\n\n%s\n", syn->usage, syn->about);
  if (syn->args_help)
    fprintf(f, "\nArguments:\n%s", syn->args_help);
  if (syn->options && syn->options->name) {
    fprintf(f, "\nOptions:\n");
    print_options(f, syn->options);
  }
  fprintf(f,
          "\nGlobal options (defaults: DFNET_MANAGER, DFNET_CERT, DFNET_KEY, DFNET_CA, then "
          "~/.config/dfnet/config):\n");
  print_options(f, cli_global_options);
}
