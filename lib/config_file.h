/* Configuration files: the one reader of dfnet's "key = value" files (issue 24 item 3;
 * docs/configuration.md), used by dfnet-manager (manager.conf), dfnet-host (host.conf) and
 * the dfnet CLI (~/.config/dfnet/config).
 *
 * The format, one setting per line:
 *     # a comment: a line whose first non-blank character is '#'
 *     listen = 0.0.0.0:7443      # NOT a comment: a value runs to the end of its line
 *     label = lab=a              # the first '=' splits: the value may hold '='
 * Blank lines are ignored; spaces and tabs around the key and the value are trimmed (and a
 * CR before the newline). The keys are the caller's (a binary's long options without "--");
 * a key not among them is an error with the nearest known key (lib/suggest.h); the value
 * must not be empty; a key may appear on several lines only when it is repeatable (a list,
 * its lines kept in order). The reader checks the shape, the keys and the repeats; the
 * caller checks each value, with the same code as the command line's, and names the file
 * and the line in its message ("FILE:LINE: ...").
 *
 * Memory: dfnet_config_file_read() allocates; the entries point into the file's own copy of
 * the text, which lives until dfnet_config_file_free(). The key table is borrowed for the
 * call. No state: any thread.
 */
#ifndef DFNET_LIB_CONFIG_FILE_H
#define DFNET_LIB_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "dfnet/status.h"

/* The daemons' configuration directory, from CMake (lib/cmdline.cmake); $DFNET_CONFIG_DIR
 * replaces it at run time (dfnet_config_path). */
#ifndef DFNET_CONFIG_DIR_DEFAULT
#define DFNET_CONFIG_DIR_DEFAULT "/etc/dfnet"
#endif

#define DFNET_CONFIG_FILE_MAX (256u * 1024u) /* bytes; a larger file is refused */
#define DFNET_CONFIG_LINE_MAX 4096u          /* bytes of one line, its newline excluded */

/* A key the caller knows. */
typedef struct dfnet_config_key {
  const char *name; /* "listen"; leading dashes are skipped, so an option's "--listen" serves */
  bool repeatable;  /* may appear on several lines */
} dfnet_config_key_t;

/* One setting, in the file's order. */
typedef struct dfnet_config_entry {
  size_t key;        /* its index in the key table given to the read */
  const char *name;  /* the key as written (the table's name without dashes) */
  const char *value; /* trimmed; never empty */
  unsigned line;     /* 1-based */
} dfnet_config_entry_t;

/* A file read (zero it before the read, or let the read do it). */
typedef struct dfnet_config_file {
  char *text; /* the file's bytes, cut into the names and values */
  dfnet_config_entry_t *entries;
  size_t count;
  bool found; /* false: the file does not exist (and need not): no entries */
} dfnet_config_file_t;

/* Read and check `path` against keys[0..key_count) into *out (zeroed first).
 * must_exist: a missing file is an error; else it is OK with out->found false. The path
 * /dev/null is an empty file (no settings), as for other tools ("DFNET_CONFIG=/dev/null").
 * Errors, with one line in err[0..err_size) that names the file (and the line):
 *   NOT_FOUND (missing and must_exist), PERMISSION_DENIED, ... (lib/fileio.h's errno map):
 *     "PATH: <why>";
 *   OUT_OF_RANGE: larger than DFNET_CONFIG_FILE_MAX ("PATH: ..."), or a line longer than
 *     DFNET_CONFIG_LINE_MAX ("PATH:LINE: line longer than 4096 bytes");
 *   INVALID_ARGUMENT: "PATH:LINE: expected 'key = value'" (no '=', or no key),
 *     "PATH:LINE: unknown key 'lsiten' (did you mean 'listen'?)",
 *     "PATH:LINE: 'listen' has an empty value",
 *     "PATH:LINE: 'listen' given twice (first on line N)" (a key that is not repeatable),
 *     "PATH:LINE: a NUL byte";
 *   RESOURCE_EXHAUSTED: no memory.
 * On an error *out holds nothing (freed). */
dfnet_status_t dfnet_config_file_read(const char *path, bool must_exist,
                                      const dfnet_config_key_t *keys, size_t key_count,
                                      dfnet_config_file_t *out, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Free what a read allocated; f is zeroed. A zeroed f is a no-op. */
void dfnet_config_file_free(dfnet_config_file_t *f);

/* A flag's value: true, yes, on, 1 or false, no, off, 0 (case-insensitive) into *out.
 * false for anything else (*out untouched). */
bool dfnet_config_bool(const char *text, bool *out);

/* The path of the daemon configuration file `name` ("manager.conf") into out: in
 * $DFNET_CONFIG_DIR when it is set and not empty (tests), else in the directory compiled in
 * (CMake's ${CMAKE_INSTALL_FULL_SYSCONFDIR}/dfnet: /etc/dfnet for the prefix /usr). Cut to
 * cap - 1 bytes. */
void dfnet_config_path(char *out, size_t cap, const char *name);

#endif /* DFNET_LIB_CONFIG_FILE_H */
