/* The command-line conventions every dfnet binary keeps (dfnet, dfnet-manager, dfnet-host,
 * dfnet-driver-host, dfnet-bindc), checked on the real binaries run as child processes:
 *   - `--version` prints "<binary> <version>", the same version for all five, which starts
 *     with CMake's project version;
 *   - help at every level exits 0 on stdout: each binary's --help, `dfnet VERB --help`
 *     (the verb's commands), every command's --help, read from the binary's own list;
 *   - a mistyped command or option: exit 2 and one line "<binary>: ... (did you mean
 *     '...'?" naming the nearest known word; a word near nothing gets no suggestion;
 *   - `dfnet completion bash`, sourced by bash, completes `dfnet no` to `node`, `dfnet
 *     node s` to `show`, options and option values; the zsh script parses (when zsh is
 *     installed);
 *   - the man pages the build made from the binaries' help: a .TH line with the version,
 *     NAME, and (when groff is installed) rendering without a warning;
 *   - in the CLI's own tables (describe mode): every command reaches its option table
 *     first, and a short flag means one long option across all commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "clients/cli/cli.h"

static char build[512], tmp[256];

typedef struct run {
  int status; /* exit code, -1 when killed */
  char out[256 * 1024];
  char err[16384];
} run_t;

static run_t R;

/* Run argv (NULL-terminated; argv[0] a path) with stdin /dev/null; fills R. */
static int run_v(const char *const *argv) {
  char out[400], err[400];
  snprintf(out, sizeof out, "%s/out", tmp);
  snprintf(err, sizeof err, "%s/err", tmp);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || o < 0 || e < 0)
      _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int ws = 0;
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  R.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  test_child_read_output(out, R.out, sizeof R.out);
  test_child_read_output(err, R.err, sizeof R.err);
  return R.status;
}

/* The five binaries, by name: their paths in the build tree. */
static const struct {
  const char *name, *path;
} binaries[] = {
    {"dfnet", "clients/dfnet"},
    {"dfnet-manager", "manager/dfnet-manager"},
    {"dfnet-host", "host/agent/dfnet-host"},
    {"dfnet-driver-host", "host/driver_host/dfnet-driver-host"},
    {"dfnet-bindc", "bind/dfnet-bindc"},
};
#define BINARY_COUNT (sizeof binaries / sizeof binaries[0])

static const char *bin_path(const char *name) {
  static char path[BINARY_COUNT][700];
  for (size_t i = 0; i < BINARY_COUNT; i++) {
    if (strcmp(binaries[i].name, name) == 0) {
      snprintf(path[i], sizeof path[i], "%s/%s", build, binaries[i].path);
      return path[i];
    }
  }
  fail_msg("no binary %s", name);
  return NULL;
}

/* Run `name args...` (NULL-terminated). */
static int run(const char *name, ...) {
  const char *argv[32] = {bin_path(name)};
  size_t n = 1;
  va_list ap;
  va_start(ap, name);
  for (const char *a = va_arg(ap, const char *); a != NULL && n < 31; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  return run_v(argv);
}

/* ---- --version ---- */

static void test_version_everywhere(void **state) {
  (void)state;
  char first[128] = "";
  for (size_t i = 0; i < BINARY_COUNT; i++) {
    assert_int_equal(run(binaries[i].name, "--version", NULL), 0);
    size_t len = strlen(binaries[i].name);
    if (strncmp(R.out, binaries[i].name, len) != 0 || R.out[len] != ' ')
      fail_msg("%s --version printed \"%s\"", binaries[i].name, R.out);
    const char *version = R.out + len + 1;
    assert_true(strncmp(version, DFNET_PROJECT_VERSION, strlen(DFNET_PROJECT_VERSION)) == 0);
    char c = version[strlen(DFNET_PROJECT_VERSION)];
    assert_true(c == '\n' || c == '+'); /* "0.1.0" or "0.1.0+<git describe>" */
    assert_string_equal(R.err, "");
    if (i == 0)
      snprintf(first, sizeof first, "%s", version);
    else if (strcmp(first, version) != 0)
      fail_msg("%s says %s, dfnet says %s", binaries[i].name, version, first);
  }
}

/* ---- help at every level ---- */

/* The terms of the entries under "Commands:" in a help text, into names (cap each). */
static size_t help_commands(const char *help, char names[][48], size_t cap) {
  const char *at = strstr(help, "\nCommands:\n");
  if (at == NULL)
    return 0;
  size_t n = 0;
  for (const char *line = at + 11; *line == ' ' && n < cap;) {
    const char *end = strchr(line, '\n');
    const char *term = line + strspn(line, " ");
    const char *gap = strstr(term, "  ");
    if (end == NULL || gap == NULL || gap > end)
      break;
    snprintf(names[n++], 48, "%.*s", (int)(gap - term), term);
    line = end + 1;
  }
  return n;
}

static void expect_help(const char *what, const char *usage_prefix) {
  if (R.status != 0 || strncmp(R.out, usage_prefix, strlen(usage_prefix)) != 0 || R.err[0])
    fail_msg("%s: exit %d, stdout \"%.200s\", stderr \"%s\" (wanted exit 0, \"%s...\")", what,
             R.status, R.out, R.err, usage_prefix);
}

/* `name COMMAND --help` for every command `name --help` lists; a command may be two words. */
static size_t every_command_help(const char *name) {
  char names[64][48];
  assert_int_equal(run(name, "--help", NULL), 0);
  size_t n = help_commands(R.out, names, 64);
  for (size_t i = 0; i < n; i++) {
    char words[48], *second = NULL;
    snprintf(words, sizeof words, "%.47s", names[i]);
    char *space = strchr(words, ' ');
    if (space != NULL) {
      *space = '\0';
      second = space + 1;
    }
    if (second != NULL)
      run(name, words, second, "--help", NULL);
    else
      run(name, words, "--help", NULL);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "Usage: %.40s %.47s", name, names[i]);
    expect_help(prefix, prefix);
  }
  return n;
}

static void test_help_at_every_level(void **state) {
  (void)state;
  static const struct {
    const char *name, *args[3], *prefix;
  } tops[] = {
      {"dfnet", {"--help"}, "Usage: dfnet "},
      {"dfnet", {"-h"}, "Usage: dfnet "},
      {"dfnet", {"help"}, "Usage: dfnet "},
      {"dfnet", {"node", "--help"}, "Usage: dfnet node COMMAND"},
      {"dfnet", {"driver", "-h"}, "Usage: dfnet driver COMMAND"},
      {"dfnet-manager", {"--help"}, "Usage: dfnet-manager "},
      {"dfnet-manager", {"issue", "--help"}, "Usage: dfnet-manager issue "},
      {"dfnet-manager", {"init", "-h"}, "Usage: dfnet-manager init "},
      {"dfnet-host", {"--help"}, "Usage: dfnet-host "},
      {"dfnet-host", {"-h"}, "Usage: dfnet-host "},
      {"dfnet-driver-host", {"--help"}, "Usage: dfnet-driver-host "},
      {"dfnet-bindc", {"--help"}, "Usage: dfnet-bindc "},
      {"dfnet-bindc", {"-h"}, "Usage: dfnet-bindc "},
      {"dfnet-bindc", {"compile", "--help"}, "Usage: dfnet-bindc compile "},
  };
  for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
    const char *argv[5] = {bin_path(tops[i].name)};
    size_t n = 1;
    for (size_t k = 0; k < 3 && tops[i].args[k] != NULL; k++)
      argv[n++] = tops[i].args[k];
    run_v(argv);
    char what[128];
    snprintf(what, sizeof what, "%s %s %s", tops[i].name, tops[i].args[0],
             tops[i].args[1] ? tops[i].args[1] : "");
    expect_help(what, tops[i].prefix);
  }
  /* the verb level lists the verb's commands */
  assert_int_equal(run("dfnet", "node", "--help", NULL), 0);
  assert_non_null(strstr(R.out, "  node list "));
  assert_non_null(strstr(R.out, "  node show "));
  assert_non_null(strstr(R.out, "  node dump "));
  assert_null(strstr(R.out, "driver list"));
  /* a verb alone: its commands on stderr, exit 2 */
  assert_int_equal(run("dfnet", "node", NULL), 2);
  assert_string_equal(R.err,
                      "dfnet: INVALID_ARGUMENT: 'node' wants one of its commands: list, show, "
                      "dump, bind, unbind, suspend, resume, add-test, remove-test (dfnet node "
                      "--help)\n");
  /* `driver host` is a command whose first argument is its own command, `list` */
  assert_int_equal(run("dfnet", "driver", "host", NULL), 2);
  assert_string_equal(R.err,
                      "dfnet: INVALID_ARGUMENT: 'driver host' wants one of its commands: "
                      "list (dfnet driver host --help)\n");
  /* every command each binary lists */
  assert_true(every_command_help("dfnet") >= 26);
  assert_int_equal(every_command_help("dfnet-manager"), 2);
  assert_int_equal(every_command_help("dfnet-bindc"), 5);
}

/* ---- did you mean; one error format ---- */

typedef struct mistake {
  const char *name;
  const char *args[4];
  const char *message; /* after "<name>: " */
} mistake_t;

static const mistake_t mistakes[] = {
    {"dfnet", {"nod"}, "INVALID_ARGUMENT: unknown command 'nod' (did you mean 'node'?"},
    {"dfnet",
     {"node", "shw"},
     "INVALID_ARGUMENT: 'node' has no command 'shw' (did you mean 'show'?)"},
    {"dfnet",
     {"node", "list", "--exat"},
     "INVALID_ARGUMENT: unknown option '--exat' (did you mean '--exact'?; dfnet node list --help"},
    {"dfnet",
     {"--managr", "x", "host", "list"},
     "INVALID_ARGUMENT: unknown option '--managr' (did "
     "you mean '--manager'?"},
    {"dfnet",
     {"driver", "unregister", "--jsn", "x"},
     "INVALID_ARGUMENT: unknown option '--jsn' "
     "(did you mean '--json'?"},
    {"dfnet", {"frobnicate"}, "INVALID_ARGUMENT: unknown command 'frobnicate' (dfnet --help"},
    {"dfnet",
     {"driver", "host", "lsit"},
     "INVALID_ARGUMENT: 'driver host' has no command 'lsit' (did you mean 'list'?)"},
    {"dfnet",
     {"node", "suspend", "--reson", "x"},
     "INVALID_ARGUMENT: unknown option '--reson' (did you mean '--reason'?; dfnet node suspend "
     "--help"},
    {"dfnet",
     {"node", "add-test", "--proprety", "k=1"},
     "INVALID_ARGUMENT: unknown option '--proprety' (did you mean '--property'?"},
    {"dfnet-manager", {"isue"}, "unknown command 'isue' (did you mean 'issue'?"},
    {"dfnet-manager", {"--listn", "x"}, "unknown option '--listn' (did you mean '--listen'?"},
    {"dfnet-manager",
     {"issue", "--nme", "x"},
     "unknown option '--nme' (did you mean '--name'?; "
     "dfnet-manager issue --help"},
    {"dfnet-manager", {"issue"}, "issue: --role, --name and --out are required"},
    {"dfnet-host",
     {"--managr", "wss://x:1"},
     "unknown option '--managr' (did you mean "
     "'--manager'?"},
    {"dfnet-driver-host", {"--fdd", "3"}, "unknown option '--fdd' (did you mean '--fd'?)"},
    {"dfnet-driver-host", {NULL}, "--fd is required"},
    {"dfnet-bindc", {"compil"}, "unknown command 'compil' (did you mean 'compile'?"},
    {"dfnet-bindc",
     {"compile", "--lib-dr", "x"},
     "unknown option '--lib-dr' (did you mean "
     "'--lib-dir'?; dfnet-bindc compile --help"},
    {"dfnet-bindc", {"frobnicate"}, "unknown command 'frobnicate' (dfnet-bindc --help"},
};

static void test_did_you_mean(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof mistakes / sizeof mistakes[0]; i++) {
    const mistake_t *m = &mistakes[i];
    const char *argv[6] = {bin_path(m->name)};
    size_t n = 1;
    for (size_t k = 0; k < 4 && m->args[k] != NULL; k++)
      argv[n++] = m->args[k];
    run_v(argv);
    char want[300];
    snprintf(want, sizeof want, "%s: %s", m->name, m->message);
    const char *nl = strchr(R.err, '\n');
    bool one_line = nl != NULL && nl[1] == '\0';
    if (R.status != 2 || strncmp(R.err, want, strlen(want)) != 0 || !one_line)
      fail_msg("%s %s: exit %d, stderr \"%s\"; wanted exit 2 and one line \"%s...\"", m->name,
               m->args[0] ? m->args[0] : "", R.status, R.err, want);
    if (strstr(m->message, "did you mean") == NULL && strstr(R.err, "did you mean") != NULL)
      fail_msg("%s %s: suggested something: %s", m->name, m->args[0] ? m->args[0] : "", R.err);
  }
}

/* ---- completion ---- */

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static bool have(const char *program) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", program);
  return system(cmd) == 0;
}

static void test_completion_bash(void **state) {
  (void)state;
  assert_int_equal(run("dfnet", "completion", "bash", NULL), 0);
  char script[400], driver[400];
  snprintf(script, sizeof script, "%s/dfnet.bash", tmp);
  snprintf(driver, sizeof driver, "%s/complete.sh", tmp);
  write_text(script, R.out);
  /* t WORDS...: complete the last word the way bash does on <TAB>, print COMPREPLY */
  write_text(driver,
             "source \"$1\"\n"
             "t() {\n"
             "  COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()\n"
             "  _dfnet\n"
             "  echo \"${COMPREPLY[*]}\"\n"
             "}\n"
             "t dfnet no\n"
             "t dfnet node s\n"
             "t dfnet node add-test dev.x t0 --pro\n"
             "t dfnet driver h\n"
             "t dfnet node list --ex\n"
             "t dfnet --manager wss://m:1 dr\n"
             "t dfnet driver un\n"
             "t dfnet node list --log-level w\n"
             "t dfnet completion z\n"
             "t dfnet watch -n 3 --js\n"
             "t dfnet frob\n"
             "complete -p dfnet\n");
  const char *argv[] = {"/bin/bash", "--norc", "--noprofile", driver, script, NULL};
  if (access(argv[0], X_OK) != 0)
    argv[0] = "/usr/bin/bash";
  assert_int_equal(run_v(argv), 0);
  assert_string_equal(R.out,
                      "node\n"
                      "show suspend\n"
                      "--property\n"
                      "host\n"
                      "--exact\n"
                      "driver\n"
                      "unregister\n"
                      "warn\n"
                      "zsh\n"
                      "--json\n"
                      "\n"
                      "complete -o default -F _dfnet dfnet\n");
  assert_string_equal(R.err, "");
}

static void test_completion_zsh(void **state) {
  (void)state;
  assert_int_equal(run("dfnet", "completion", "zsh", NULL), 0);
  assert_true(strncmp(R.out, "#compdef dfnet\n", 15) == 0);
  assert_non_null(strstr(R.out, "'unregister:unregister a registered driver'"));
  assert_non_null(strstr(R.out, "compdef _dfnet dfnet"));
  assert_int_equal(run("dfnet", "completion", "fish", NULL), 2);
  assert_non_null(strstr(R.err, "dfnet: INVALID_ARGUMENT: completion: 'fish'"));
  if (!have("zsh")) {
    print_message("zsh is not installed: the zsh script's syntax is not checked\n");
    return;
  }
  assert_int_equal(run("dfnet", "completion", "zsh", NULL), 0);
  char script[400];
  snprintf(script, sizeof script, "%s/_dfnet", tmp);
  write_text(script, R.out);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "zsh -n '%s'", script);
  assert_int_equal(system(cmd), 0);
}

/* ---- man pages ---- */

static void test_man_pages(void **state) {
  (void)state;
  if (!DFNET_MAN_BUILT) {
    print_message("built with DFNET_MAN=OFF: no man pages to check\n");
    return;
  }
  assert_int_equal(run("dfnet", "--version", NULL), 0);
  char version[128];
  snprintf(version, sizeof version, "%.100s", R.out + 6);
  version[strcspn(version, "\n")] = '\0';
  bool groff = have("groff");
  for (size_t i = 0; i < BINARY_COUNT; i++) {
    const char *name = binaries[i].name;
    char path[700], text[256 * 1024], th[256], upper[64];
    snprintf(path, sizeof path, "%s/man/%s.1", build, name);
    test_child_read_output(path, text, sizeof text);
    if (text[0] == '\0')
      fail_msg("%s: missing or empty (the build makes it: cmake/DfnetMan.cmake)", path);
    size_t k = 0;
    for (; name[k] && k < sizeof upper - 1; k++)
      upper[k] = (char)toupper((unsigned char)name[k]);
    upper[k] = '\0';
    snprintf(th, sizeof th, "\n.TH %s 1 \"", upper);
    assert_non_null(strstr(text, th));
    snprintf(th, sizeof th, "\" \"dfnet %s\" \"dfnet manual\"\n", version);
    assert_non_null(strstr(text, th));
    snprintf(th, sizeof th, "\n.SH NAME\n%s \\- ", name);
    assert_non_null(strstr(text, th));
    assert_non_null(strstr(text, "\n.SH SYNOPSIS\n"));
    assert_non_null(strstr(text, "\n.SH OPTIONS\n"));
    if (!groff)
      continue;
    const char *argv[] = {"/bin/sh", "-c", "groff -man -Tutf8 -ww -P-cbu \"$0\"", path, NULL};
    assert_int_equal(run_v(argv), 0);
    if (R.err[0] != '\0')
      fail_msg("groff warns on %s: %s", path, R.err);
    assert_non_null(strstr(R.out, "SYNOPSIS"));
    if (strcmp(name, "dfnet") == 0) /* a command's own section, from its --help */
      assert_non_null(strstr(R.out, "dfnet driver unregister [--json] DRIVER"));
  }
  if (!groff)
    print_message("groff is not installed: the pages' .TH lines were checked, not rendered\n");
}

/* ---- the CLI's own tables ---- */

typedef struct flags_seen {
  const cli_command_t *cmd;
  unsigned described;
  char owner[128][64]; /* short flag -> "--long (command)" */
} flags_seen_t;

static void note_flags(flags_seen_t *s, const cli_option_t *t, const char *where) {
  for (; t != NULL && t->name != NULL; t++) {
    unsigned char c = (unsigned char)t->short_name;
    if (c == 0)
      continue;
    assert_true(c < 128);
    char mine[64];
    snprintf(mine, sizeof mine, "--%s", t->name);
    if (s->owner[c][0] == '\0')
      snprintf(s->owner[c], sizeof s->owner[c], "%s", mine);
    else if (strcmp(s->owner[c], mine) != 0)
      fail_msg("-%c is %s in %s but %s elsewhere", c, mine, where, s->owner[c]);
  }
}

static void describe(void *user, const cli_syntax_t *syn) {
  flags_seen_t *s = user;
  s->described++;
  char where[64];
  snprintf(where, sizeof where, "%s %s", s->cmd->verb, s->cmd->sub ? s->cmd->sub : "");
  /* the usage names the command it belongs to */
  assert_true(strncmp(syn->usage, s->cmd->verb, strlen(s->cmd->verb)) == 0);
  note_flags(s, syn->options, where);
}

static void test_one_meaning_per_short_flag(void **state) {
  (void)state;
  static flags_seen_t s;
  memset(&s, 0, sizeof s);
  note_flags(&s, cli_global_options, "the global options");
  char *none[] = {NULL};
  for (size_t i = 0; i < cli_command_count; i++) {
    s.cmd = &cli_commands[i];
    s.described = 0;
    cli__set_describe(describe, &s);
    int rc = cli_commands[i].fn(0, none);
    cli__set_describe(NULL, NULL);
    if (s.described != 1 || rc != 0)
      fail_msg("%s %s: described %u times, exit %d (every command parses its table first)",
               cli_commands[i].verb, cli_commands[i].sub ? cli_commands[i].sub : "", s.described,
               rc);
  }
  /* -h is --help everywhere (cli__parse answers it before any table) */
  assert_true(s.owner['h'][0] == '\0');
}

static int setup(void **state) {
  (void)state;
  const char *b = getenv("DFNET_BUILD_DIR");
  snprintf(build, sizeof build, "%s", b ? b : ".");
  snprintf(tmp, sizeof tmp, "/tmp/dfnet-conventions-%d", (int)getpid());
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_everywhere),
      cmocka_unit_test(test_help_at_every_level),
      cmocka_unit_test(test_did_you_mean),
      cmocka_unit_test(test_completion_bash),
      cmocka_unit_test(test_completion_zsh),
      cmocka_unit_test(test_man_pages),
      cmocka_unit_test(test_one_meaning_per_short_flag),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
