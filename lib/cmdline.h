/* What the command lines of dfnet's five binaries (dfnet, dfnet-manager, dfnet-host,
 * dfnet-driver-host, dfnet-bindc) share: the usage-error line, the "unknown option (did you
 * mean ...)" message, --help, whole numbers with a range, and an option's help line.
 *
 * Each binary keeps its own option table and parsing loop: the kinds of their options
 * differ (repeatable lists, URLs, labels, options per command) and so does the wording of
 * their messages, which users, scripts, tests and the man pages read. What is the same in
 * all of them is here, once.
 *
 * Nothing is allocated; strings are borrowed for the call. Output goes to the FILE or
 * buffer given, errors to stderr. Thread-safe (no state).
 */
#ifndef DFNET_LIB_CMDLINE_H
#define DFNET_LIB_CMDLINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every binary's exit code for bad usage. */
#define DFNET_CMDLINE_EXIT_USAGE 2

/* "<prefix>: <message>\n" on stderr: the message formatted as vprintf does, cut to 1023
 * bytes. prefix: the binary's name ("dfnet-manager"), or more ("dfnet: INVALID_ARGUMENT").
 * When stderr is the journal (lib/log.h), "<3>" goes first: journald keeps it as an error. */
void dfnet_cmdline_vreport(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* A usage error: dfnet_cmdline_vreport, then DFNET_CMDLINE_EXIT_USAGE is returned. */
int dfnet_cmdline_usage(const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "unknown <what> '<given>' (did you mean '<best>'?; <where>)" into buf, as snprintf writes
 * (cut to cap - 1 bytes). what: "option" or "command"; best: the nearest known word
 * (lib/suggest.h), or NULL when none is near; where: where the known words are listed
 * ("dfnet-host --help lists the options"), or NULL. Without best: "unknown <what> '<given>'
 * (<where>)"; without where: "... (did you mean '<best>'?)" or nothing after the word. */
void dfnet_cmdline_unknown(char *buf, size_t cap, const char *what, const char *given,
                           const char *best, const char *where);

/* Does arg ask for help: "--help" or "-h"? */
bool dfnet_cmdline_is_help(const char *arg);

/* text as a whole number in [min, max] into *out: digits of base (0: C's 0x and 0 prefixes
 * too), no sign, nothing after them. false (*out untouched) for anything else. */
bool dfnet_cmdline_uint(const char *text, int base, uint64_t min, uint64_t max, uint64_t *out);

/* One option, as its help line shows it. */
typedef struct dfnet_cmdline_help {
  char short_name;  /* 'o' for "-o, ", or 0 */
  const char *name; /* with its dashes: "--output" */
  const char *arg;  /* the value's name ("FILE"), or NULL for a flag */
  const char *help;
  bool ranged;       /* a number: " (min..max)" follows the help */
  uint64_t min, max; /* when ranged */
} dfnet_cmdline_help_t;

/* How a binary lays out its help lines: "  <left column><gap><help>\n". */
typedef struct dfnet_cmdline_layout {
  int width;         /* the left column ("-o, --output FILE") is padded to this */
  const char *gap;   /* between the columns: " " or "  " */
  bool short_column; /* an option without a short form is indented as if it had one */
} dfnet_cmdline_layout_t;

/* The help line of o into buf, as snprintf writes (returns what snprintf returns). */
int dfnet_cmdline_help_line(char *buf, size_t cap, const dfnet_cmdline_layout_t *layout,
                            const dfnet_cmdline_help_t *o);

#endif /* DFNET_LIB_CMDLINE_H */
