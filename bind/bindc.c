/* dfnet-bindc: compile, test, dump and match Fuchsia bind rules; generate C headers from
 * bind libraries.
 *
 *   dfnet-bindc compile [--include LIB.bind]... [--lib-dir DIR]... [--disable-autobind]
 *                       RULES.bind -o OUT.bindbc
 *   dfnet-bindc test RULES.bind --test-spec TESTS.json [--include ...] [--lib-dir ...]
 *   dfnet-bindc dump OUT.bindbc
 *   dfnet-bindc match OUT.bindbc [--node NAME] KEY=VALUE...
 *   dfnet-bindc header LIB.bind -o OUT.h
 *   dfnet-bindc [COMMAND] --help | --version
 *
 * Options are parsed by one table (k_options: which commands take each); every help text
 * is printed from the tables. An unknown command or option is answered with the nearest
 * known one; errors are "dfnet-bindc: <message>" (a rules file's mistakes keep the
 * compiler's "file:line:col: error: ..." form).
 * Exit codes: 0 ok, 1 a test failed or no match, 2 bad input (spec: issue 4).
 * The built-in library directory (bind/lib, DFNET_BIND_LIB_DIR) is searched for `using`
 * after --include files and --lib-dir directories. Mirrors Fuchsia's bindc
 * (src/devices/lib/bind/src/main.rs / tools/bindc).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind.h"
#include "lib/cmdline.h"
#include "lib/suggest.h"
#include "lib/version.h"

#ifndef DFNET_BIND_LIB_DIR
#define DFNET_BIND_LIB_DIR "bind/lib"
#endif

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_BAD_INPUT = 2 };

#define BINDC_MAX_FILES 64
#define BINDC_MAX_FILE (16u * 1024u * 1024u)

typedef struct bindc_args {
  const char *input;
  const char *output;
  const char *test_spec;
  const char *node;
  const char *includes[BINDC_MAX_FILES];
  size_t include_count;
  const char *lib_dirs[BINDC_MAX_FILES];
  size_t lib_dir_count;
  bool disable_autobind;
  char **rest; /* positional arguments after the input */
  size_t rest_count;
} bindc_args;

/* Read a whole file. Returns a malloc'd buffer (NUL-terminated) or NULL with a message. */
static char *bindc_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "dfnet-bindc: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  char *data = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (cap - n < 4096) {
      cap = cap ? cap * 2 : 8192;
      if (cap > BINDC_MAX_FILE + 8192) {
        fprintf(stderr, "dfnet-bindc: %s: larger than %u bytes\n", path, BINDC_MAX_FILE);
        goto read_failed;
      }
      char *grown = realloc(data, cap);
      if (grown == NULL) {
        fprintf(stderr, "dfnet-bindc: %s: out of memory\n", path);
        goto read_failed;
      }
      data = grown;
    }
    size_t got = fread(data + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) {
      break;
    }
  }
  if (ferror(f)) {
    fprintf(stderr, "dfnet-bindc: %s: read error\n", path);
    goto read_failed;
  }
  fclose(f);
  data[n] = '\0';
  *len = n;
  return data;
read_failed:
  free(data);
  fclose(f);
  return NULL;
}

static int bindc_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    fprintf(stderr, "dfnet-bindc: %s: %s\n", path, strerror(errno));
    return EXIT_BAD_INPUT;
  }
  size_t put = fwrite(data, 1, len, f);
  int closed = fclose(f);
  if (put != len || closed != 0) {
    fprintf(stderr, "dfnet-bindc: %s: write failed\n", path);
    return EXIT_BAD_INPUT;
  }
  return EXIT_OK;
}

/* ---- command line (table-driven, docs/style.md 12) --------------------------------------- */

/* The commands, each with the options it takes (bits of k_options' `commands`). */
typedef struct bindc_command {
  const char *name;
  int (*run)(const bindc_args *a);
  const char *usage; /* after "dfnet-bindc " */
  const char *summary;
  unsigned mask; /* this command's bit */
} bindc_command;

enum { CMD_COMPILE = 1u, CMD_TEST = 2u, CMD_DUMP = 4u, CMD_MATCH = 8u, CMD_HEADER = 16u };

typedef enum bindc_opt_kind { OPT_VALUE, OPT_LIST, OPT_FLAG } bindc_opt_kind;

typedef struct bindc_option {
  const char *name; /* "--output" */
  char short_name;  /* 'o' for -o, or 0 */
  bindc_opt_kind kind;
  size_t offset;     /* OPT_VALUE: const char *; OPT_LIST: const char *[]; OPT_FLAG: bool */
  size_t count_off;  /* OPT_LIST: its size_t count */
  unsigned commands; /* the commands that take it */
  const char *arg;   /* the value's name in the help */
  const char *help;
} bindc_option;

#define ARG(field) offsetof(bindc_args, field)

static const bindc_option k_options[] = {
    {"--output", 'o', OPT_VALUE, ARG(output), 0, CMD_COMPILE | CMD_HEADER, "FILE",
     "where the bytecode (compile) or the header (header) goes (required)"},
    {"--include", 'i', OPT_LIST, ARG(includes), ARG(include_count), CMD_COMPILE | CMD_TEST,
     "LIB.bind", "a bind library the rules use (repeatable)"},
    {"--lib-dir", 0, OPT_LIST, ARG(lib_dirs), ARG(lib_dir_count), CMD_COMPILE | CMD_TEST, "DIR",
     "where `using` finds libraries, before the built-in ones (repeatable)"},
    {"--disable-autobind", 0, OPT_FLAG, ARG(disable_autobind), 0, CMD_COMPILE, NULL,
     "bind only when a parent asks (Fuchsia's disable_autobind)"},
    {"--test-spec", 0, OPT_VALUE, ARG(test_spec), 0, CMD_TEST, "TESTS.json",
     "the bind tests, in Fuchsia's format (required)"},
    {"--node", 0, OPT_VALUE, ARG(node), 0, CMD_MATCH, "NAME",
     "a composite's node to match against"},
};

static int bindc_compile(const bindc_args *a);
static int bindc_test(const bindc_args *a);
static int bindc_dump(const bindc_args *a);
static int bindc_match(const bindc_args *a);
static int bindc_header(const bindc_args *a);

static const bindc_command bindc_commands[] = {
    {"compile", bindc_compile,
     "compile [--include LIB.bind]... [--lib-dir DIR]... [--disable-autobind] RULES.bind "
     "-o OUT.bindbc",
     "compile bind rules to bytecode v2, the bytes Fuchsia's bindc emits", CMD_COMPILE},
    {"test", bindc_test,
     "test RULES.bind --test-spec TESTS.json [--include LIB.bind]... [--lib-dir DIR]...",
     "run Fuchsia-format bind tests against the rules", CMD_TEST},
    {"dump", bindc_dump, "dump OUT.bindbc", "print bytecode as its instructions", CMD_DUMP},
    {"match", bindc_match, "match OUT.bindbc [--node NAME] KEY=VALUE...",
     "match node properties against bytecode (exit 1: no match)", CMD_MATCH},
    {"header", bindc_header, "header LIB.bind -o OUT.h",
     "C constants (#define) of a bind library's keys and values", CMD_HEADER},
};
#define BINDC_COMMANDS (sizeof bindc_commands / sizeof bindc_commands[0])

static void bindc_print_options(FILE *f, unsigned mask) {
  static const dfnet_cmdline_layout_t layout = {.width = 30, .gap = "  ", .short_column = true};
  static const dfnet_cmdline_help_t help_and_version[] = {
      {'h', "--help", NULL, "this text", false, 0, 0},
      {0, "--version", NULL, "print dfnet-bindc's version", false, 0, 0}};
  char line[256];
  for (size_t i = 0; i < sizeof k_options / sizeof k_options[0]; i++) {
    const bindc_option *o = &k_options[i];
    if (!(o->commands & mask))
      continue;
    const dfnet_cmdline_help_t h = {o->short_name, o->name, o->arg, o->help, false, 0, 0};
    dfnet_cmdline_help_line(line, sizeof line, &layout, &h);
    fputs(line, f);
  }
  for (size_t i = 0; i < 2; i++) {
    dfnet_cmdline_help_line(line, sizeof line, &layout, &help_and_version[i]);
    fputs(line, f);
  }
}

/* `dfnet-bindc --help` (to f: stdout when asked, stderr after bad usage). */
static void bindc_usage(FILE *f) {
  for (size_t i = 0; i < BINDC_COMMANDS; i++)
    fprintf(f, "%s dfnet-bindc %s\n", i ? "      " : "Usage:", bindc_commands[i].usage);
  fprintf(f,
          "       dfnet-bindc COMMAND --help\n\n"
          "Compile, test, dump and match Fuchsia bind rules (the bind language, bytecode v2),\n"
          "and make C headers from bind libraries. `using` finds libraries among --include\n"
          "files, then --lib-dir directories, then the built-in ones (" DFNET_BIND_LIB_DIR
          ").\n\nCommands:\n");
  for (size_t i = 0; i < BINDC_COMMANDS; i++)
    fprintf(f, "  %-30s  %s\n", bindc_commands[i].name, bindc_commands[i].summary);
  fprintf(f, "\nOptions:\n");
  bindc_print_options(f, ~0u);
  fprintf(f, "\nExit status:\n  0 ok, 1 a test failed or no match, 2 bad input or usage.\n");
}

static void bindc_command_help(const bindc_command *c) {
  printf("Usage: dfnet-bindc %s\n\n%c%s.\n\nOptions:\n", c->usage, c->summary[0] - 'a' + 'A',
         c->summary + 1);
  bindc_print_options(stdout, c->mask);
}

/* An unknown word: the nearest of `candidates` ("did you mean"). */
static int bindc_unknown(const char *what, const char *given, const char *const *candidates,
                         size_t n, const char *where) {
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, given);
  for (size_t i = 0; i < n; i++)
    dfnet_suggest_offer(&s, candidates[i]);
  char msg[1024];
  dfnet_cmdline_unknown(msg, sizeof msg, what, given, dfnet_suggest_best(&s), where);
  return dfnet_cmdline_usage("dfnet-bindc", "%s", msg); /* EXIT_BAD_INPUT */
}

static int bindc_unknown_option(const bindc_command *c, const char *given) {
  const char *names[2 * sizeof k_options / sizeof k_options[0] + 3];
  char shorts[sizeof k_options / sizeof k_options[0]][3];
  size_t n = 0;
  for (size_t i = 0; i < sizeof k_options / sizeof k_options[0]; i++) {
    if (!(k_options[i].commands & c->mask))
      continue;
    names[n++] = k_options[i].name;
    if (k_options[i].short_name != 0) {
      snprintf(shorts[i], sizeof shorts[i], "-%c", k_options[i].short_name);
      names[n++] = shorts[i];
    }
  }
  names[n++] = "--help";
  names[n++] = "--version";
  char where[64];
  snprintf(where, sizeof where, "dfnet-bindc %s --help lists the options", c->name);
  return bindc_unknown("option", given, names, n, where);
}

/* Parse a command's arguments: its options (table above), then the input, then the rest.
 * Returns EXIT_OK, -1 after --help or --version (exit 0), or EXIT_BAD_INPUT (message
 * printed). */
static int bindc_parse(const bindc_command *c, int argc, char **argv, bindc_args *a) {
  memset(a, 0, sizeof(*a));
  a->rest = calloc((size_t)argc + 1, sizeof(char *));
  if (a->rest == NULL) {
    fprintf(stderr, "dfnet-bindc: out of memory\n");
    return EXIT_BAD_INPUT;
  }
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (dfnet_cmdline_is_help(arg)) {
      bindc_command_help(c);
      return -1;
    }
    if (strcmp(arg, "--version") == 0) {
      dfnet_version_print("dfnet-bindc");
      return -1;
    }
    if (arg[0] != '-' || arg[1] == '\0') {
      if (a->input == NULL)
        a->input = arg;
      else
        a->rest[a->rest_count++] = argv[i];
      continue;
    }
    const bindc_option *o = NULL;
    for (size_t k = 0; k < sizeof k_options / sizeof k_options[0] && o == NULL; k++) {
      const bindc_option *t = &k_options[k];
      if ((t->commands & c->mask) &&
          (strcmp(arg, t->name) == 0 || (t->short_name && arg[1] == t->short_name && !arg[2])))
        o = t;
    }
    if (o == NULL)
      return bindc_unknown_option(c, arg);
    char *field = (char *)a + o->offset;
    if (o->kind == OPT_FLAG) {
      *(bool *)field = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dfnet-bindc: %s needs a value (%s)\n", arg, o->arg);
      return EXIT_BAD_INPUT;
    }
    const char *value = argv[++i];
    size_t *count = (size_t *)((char *)a + o->count_off);
    if (o->kind == OPT_VALUE) {
      *(const char **)field = value;
    } else if (*count >= BINDC_MAX_FILES) {
      fprintf(stderr, "dfnet-bindc: at most %d %s options\n", BINDC_MAX_FILES, o->name);
      return EXIT_BAD_INPUT;
    } else {
      ((const char **)field)[(*count)++] = value;
    }
  }
  if (a->input == NULL) {
    fprintf(stderr, "dfnet-bindc: %s: missing input (dfnet-bindc %s)\n", c->name, c->usage);
    return EXIT_BAD_INPUT;
  }
  return EXIT_OK;
}

static int bindc_header(const bindc_args *a) {
  if (a->output == NULL) {
    fprintf(stderr, "dfnet-bindc: header: -o OUT.h is required\n");
    return EXIT_BAD_INPUT;
  }
  size_t len = 0;
  char *text = bindc_read(a->input, &len);
  if (text == NULL) {
    return EXIT_BAD_INPUT;
  }
  dfnet_bind_source_t src = {a->input, text, len};
  char *out = NULL, *err = NULL;
  dfnet_status_t st = dfnet_bind_library_header(&src, &out, &err);
  free(text);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s", err ? err : "dfnet-bindc: out of memory\n");
    free(err);
    return EXIT_BAD_INPUT;
  }
  int rc = bindc_write(a->output, out, strlen(out));
  free(out);
  return rc;
}

/* Load --include files and build compile options (lib dirs: --lib-dir, then built-in). */
typedef struct bindc_libs {
  dfnet_bind_source_t sources[BINDC_MAX_FILES];
  char *texts[BINDC_MAX_FILES];
  const char *dirs[BINDC_MAX_FILES + 1];
  dfnet_bind_compile_options_t opts;
} bindc_libs;

static void bindc_libs_free(bindc_libs *l) {
  for (size_t i = 0; i < BINDC_MAX_FILES; i++) {
    free(l->texts[i]);
  }
}

static int bindc_libs_load(const bindc_args *a, bindc_libs *l) {
  memset(l, 0, sizeof(*l));
  for (size_t i = 0; i < a->include_count; i++) {
    size_t len = 0;
    l->texts[i] = bindc_read(a->includes[i], &len);
    if (l->texts[i] == NULL) {
      return EXIT_BAD_INPUT;
    }
    l->sources[i] = (dfnet_bind_source_t){a->includes[i], l->texts[i], len};
  }
  for (size_t i = 0; i < a->lib_dir_count; i++) {
    l->dirs[i] = a->lib_dirs[i];
  }
  const char *builtin = getenv("DFNET_BIND_LIB_DIR");
  l->dirs[a->lib_dir_count] = builtin && builtin[0] ? builtin : DFNET_BIND_LIB_DIR;
  l->opts.libraries = l->sources;
  l->opts.library_count = a->include_count;
  l->opts.lib_dirs = l->dirs;
  l->opts.lib_dir_count = a->lib_dir_count + 1;
  l->opts.disable_autobind = a->disable_autobind;
  return EXIT_OK;
}

static int bindc_exit_for(dfnet_status_t st) {
  return st == DFNET_STATUS_OK ? EXIT_OK : EXIT_BAD_INPUT;
}

static int bindc_compile(const bindc_args *a) {
  if (a->output == NULL) {
    fprintf(stderr, "dfnet-bindc: compile: -o OUT.bindbc is required\n");
    return EXIT_BAD_INPUT;
  }
  bindc_libs libs;
  size_t len = 0;
  char *text = NULL;
  uint8_t *out = NULL;
  char *err = NULL;
  size_t out_len = 0;
  int rc = bindc_libs_load(a, &libs);
  if (rc != EXIT_OK) {
    goto free_libs;
  }
  text = bindc_read(a->input, &len);
  if (text == NULL) {
    rc = EXIT_BAD_INPUT;
    goto free_libs;
  }
  dfnet_bind_source_t src = {a->input, text, len};
  dfnet_status_t st = dfnet_bind_compile(&src, &libs.opts, &out, &out_len, &err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s", err ? err : "dfnet-bindc: out of memory\n");
    rc = bindc_exit_for(st);
    goto free_output;
  }
  rc = bindc_write(a->output, out, out_len);
free_output:
  free(out);
  free(err);
  free(text);
free_libs:
  bindc_libs_free(&libs);
  return rc;
}

static int bindc_test(const bindc_args *a) {
  if (a->test_spec == NULL) {
    fprintf(stderr, "dfnet-bindc: test: --test-spec TESTS.json is required\n");
    return EXIT_BAD_INPUT;
  }
  bindc_libs libs;
  size_t len = 0, tests_len = 0;
  char *text = NULL, *tests = NULL, *report = NULL;
  int rc = bindc_libs_load(a, &libs);
  if (rc != EXIT_OK) {
    goto free_libs;
  }
  text = bindc_read(a->input, &len);
  tests = bindc_read(a->test_spec, &tests_len);
  if (text == NULL || tests == NULL) {
    rc = EXIT_BAD_INPUT;
    goto free_inputs;
  }
  dfnet_bind_source_t src = {a->input, text, len};
  dfnet_bind_source_t spec = {a->test_spec, tests, tests_len};
  dfnet_status_t st = dfnet_bind_run_tests(&src, &libs.opts, &spec, &report);
  if (report) {
    fputs(report, st == DFNET_STATUS_OK || st == DFNET_STATUS_ABORTED ? stdout : stderr);
  }
  rc = st == DFNET_STATUS_OK ? EXIT_OK : st == DFNET_STATUS_ABORTED ? EXIT_FAILED : EXIT_BAD_INPUT;
  free(report);
free_inputs:
  free(tests);
  free(text);
free_libs:
  bindc_libs_free(&libs);
  return rc;
}

/* Load a .bindbc file; prints the reason and returns NULL on failure. */
static dfnet_bind_program_t *bindc_load_program(const char *path) {
  size_t len = 0;
  char *bytes = bindc_read(path, &len);
  if (bytes == NULL) {
    return NULL;
  }
  dfnet_bind_program_t *prog = NULL;
  char err[256];
  if (dfnet_bind_program_load((const uint8_t *)bytes, len, &prog, err, sizeof err) !=
      DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-bindc: %s: invalid bytecode: %s\n", path,
            err[0] ? err : "out of memory");
  }
  free(bytes);
  return prog;
}

static int bindc_dump(const bindc_args *a) {
  dfnet_bind_program_t *prog = bindc_load_program(a->input);
  if (prog == NULL) {
    return EXIT_BAD_INPUT;
  }
  char *text = dfnet_bind_program_dump(prog);
  int rc = EXIT_OK;
  if (text == NULL) {
    fprintf(stderr, "dfnet-bindc: out of memory\n");
    rc = EXIT_BAD_INPUT;
  } else {
    if (dfnet_bind_program_is_composite(prog)) {
      printf("Composite: %s\n", dfnet_bind_program_composite_name(prog));
      fputs(text, stdout);
    } else {
      /* Fuchsia's dump starts each line with "\n  "; print it as lines. */
      printf("%s\n", text[0] == '\n' ? text + 1 : text);
    }
    free(text);
  }
  dfnet_bind_program_destroy(prog);
  return rc;
}

static void bindc_print_trace(dfnet_bind_result_t r, const dfnet_bind_trace_t *t) {
  printf("%s\n", dfnet_bind_result_str(r));
  if (t->at_end) {
    printf("  ran to the end of the rules: every condition held\n");
  } else {
    printf("  at offset %u (file offset %u): %s\n  %s\n", t->offset, t->file_offset, t->instruction,
           t->reason);
  }
}

static int bindc_match(const bindc_args *a) {
  dfnet_bind_property_t props[DFNET_BIND_NODE_MAX_PROPERTIES];
  char err[256];
  dfnet_status_t st = dfnet_bind_parse_property_args(
      a->rest, a->rest_count, props, DFNET_BIND_NODE_MAX_PROPERTIES, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-bindc: match: %s\n", err);
    return EXIT_BAD_INPUT;
  }
  dfnet_bind_program_t *prog = bindc_load_program(a->input);
  if (prog == NULL) {
    return EXIT_BAD_INPUT;
  }
  int rc = EXIT_FAILED;
  dfnet_bind_node_t node;
  if (dfnet_bind_node_init(&node, props, a->rest_count) != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-bindc: match: invalid properties\n");
    rc = EXIT_BAD_INPUT;
    goto destroy_program;
  }
  dfnet_bind_trace_t trace;
  if (!dfnet_bind_program_is_composite(prog)) {
    dfnet_bind_result_t r = dfnet_bind_program_match(prog, &node, &trace);
    bindc_print_trace(r, &trace);
    rc = r == DFNET_BIND_MATCH ? EXIT_OK : EXIT_FAILED;
    goto destroy_program;
  }
  /* Composite: every node (or --node NAME); the exit code says whether any matched. */
  bool any = false, found = false;
  for (size_t i = 0; i < dfnet_bind_program_node_count(prog); i++) {
    const char *name = NULL;
    dfnet_bind_node_type_t type;
    if (dfnet_bind_program_node_info(prog, i, &name, &type) != DFNET_STATUS_OK ||
        (a->node && strcmp(a->node, name) != 0)) {
      continue;
    }
    found = true;
    dfnet_bind_result_t r = dfnet_bind_program_match_composite_node(prog, i, &node, &trace);
    printf("Node%s: %s: ",
           type == DFNET_BIND_NODE_PRIMARY    ? " (primary)"
           : type == DFNET_BIND_NODE_OPTIONAL ? " (optional)"
                                              : "",
           name);
    bindc_print_trace(r, &trace);
    any = any || r == DFNET_BIND_MATCH;
  }
  if (!found) {
    fprintf(stderr, "dfnet-bindc: match: the composite has no node '%s'\n", a->node);
    rc = EXIT_BAD_INPUT;
  } else {
    rc = any ? EXIT_OK : EXIT_FAILED;
  }
destroy_program:
  dfnet_bind_program_destroy(prog);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    bindc_usage(stderr);
    return EXIT_BAD_INPUT;
  }
  if (dfnet_cmdline_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
    bindc_usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    dfnet_version_print("dfnet-bindc");
    return EXIT_OK;
  }
  const char *names[BINDC_COMMANDS];
  for (size_t i = 0; i < BINDC_COMMANDS; i++) {
    names[i] = bindc_commands[i].name;
    if (strcmp(argv[1], bindc_commands[i].name) == 0) {
      bindc_args a;
      int rc = bindc_parse(&bindc_commands[i], argc - 2, argv + 2, &a);
      if (rc == EXIT_OK)
        rc = bindc_commands[i].run(&a);
      free(a.rest);
      return rc < 0 ? EXIT_OK : rc;
    }
  }
  return bindc_unknown(argv[1][0] == '-' ? "option" : "command", argv[1], names, BINDC_COMMANDS,
                       "dfnet-bindc --help lists the commands");
}
