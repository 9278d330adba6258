/* dfnet bind: the Fuchsia bind language compiler, bytecode v2 loader/verifier, matcher
 * and dumper.
 *
 * Sources: docs/spec/bind.md (the facts), Fuchsia src/devices/lib/bind/src/ (parser/,
 * compiler/, bytecode_encoder/encode_v2.rs, interpreter/decode_bind_rules.rs,
 * interpreter/match_bind.rs, debugger/debug_dump.rs). A program compiled here is
 * byte-for-byte what Fuchsia's bindc emits (bytecode v2, debug flag 0).
 *
 * Typical use by the manager:
 *   dfnet_bind_program_t *prog;                          // once per driver
 *   dfnet_bind_program_load(bytes, len, &prog, err, sizeof err);
 *   dfnet_bind_node_t node;                              // once per node
 *   dfnet_bind_node_init(&node, props, nprops);
 *   dfnet_bind_result_t r = dfnet_bind_program_match(prog, &node, NULL);  // many times
 *   dfnet_bind_program_destroy(prog);
 *
 * Results have kernel probe semantics (docs/style.md 9): DFNET_BIND_MATCH, DFNET_BIND_NO_MATCH
 * or DFNET_BIND_ERROR (a type mismatch between the program and the node's property), and
 * a trace (optional) keeps the reason.
 *
 * Thread safety: a loaded program and an initialised node are immutable; any number of
 * threads may match them concurrently. Matching never allocates.
 *
 * The bind module reports errors by status and message and never logs; the caller logs
 * the message once.
 */
#ifndef DFNET_BIND_H
#define DFNET_BIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Node properties                                                                       */
/* ------------------------------------------------------------------------------------ */

/* A property value's type (DFv2 NodePropertyValue: uint32, string, bool, enum). */
typedef enum dfnet_bind_value_type {
  DFNET_BIND_VALUE_UINT = 1,
  DFNET_BIND_VALUE_STRING = 2,
  DFNET_BIND_VALUE_BOOL = 3,
  DFNET_BIND_VALUE_ENUM = 4, /* str_value is the fully qualified value, e.g.
                                "fuchsia.hardware.pci.Service.ZirconTransport" */
} dfnet_bind_value_type_t;

/* One node property. The key is either an integer (deprecated) key — str_key NULL,
 * int_key e.g. DFNET_BIND_PCI_VID from dfnet/bind_keys.h — or a string key (str_key
 * non-NULL, int_key ignored). The value field that counts is chosen by `type`.
 * Strings are borrowed, never copied: they may point straight into a decoded wire
 * message and must outlive every dfnet_bind_node_t made from the property. */
typedef struct dfnet_bind_property {
  uint32_t int_key;
  const char *str_key;
  dfnet_bind_value_type_t type;
  uint32_t int_value;
  const char *str_value; /* STRING and ENUM */
  bool bool_value;
} dfnet_bind_property_t;

/* At most this many properties per node (docs/spec/dfv2.md "Nodes": up to 64). */
#define DFNET_BIND_NODE_MAX_PROPERTIES 64

/* A node's properties prepared for matching (string hashes computed once). Plain
 * storage: put it on the stack or in the node record; no destroy needed. */
typedef struct dfnet_bind_node {
  const dfnet_bind_property_t *props; /* borrowed */
  size_t count;
  uint64_t key_hash[DFNET_BIND_NODE_MAX_PROPERTIES];   /* 0 for integer keys */
  uint64_t value_hash[DFNET_BIND_NODE_MAX_PROPERTIES]; /* STRING/ENUM values, else 0 */
} dfnet_bind_node_t;

/* Prepare `count` properties for matching. The array and its strings are borrowed (see
 * dfnet_bind_property_t) and must stay unchanged while the node is used.
 * Returns OK; INVALID_ARGUMENT when count > DFNET_BIND_NODE_MAX_PROPERTIES, a string key
 * or a STRING/ENUM value is NULL, or a type is not one of the four. Never allocates. */
dfnet_status_t dfnet_bind_node_init(dfnet_bind_node_t *node, const dfnet_bind_property_t *props,
                                    size_t count);

/* ------------------------------------------------------------------------------------ */
/* Programs: load + verify once, match many times                                        */
/* ------------------------------------------------------------------------------------ */

typedef struct dfnet_bind_program dfnet_bind_program_t;

/* Decode and verify bytecode v2 (docs/spec/bind.md "Bytecode v2": every decoder check) into an
 * immutable program. The bytes are copied. On success *out owns the program; free it with
 * dfnet_bind_program_destroy. On failure *out is NULL and `err` (may be NULL) receives the
 * reason, e.g. "jump at instruction offset 12 does not land on a landing pad (0x20)".
 * Returns OK, INVALID_ARGUMENT (malformed bytecode, with the reason), RESOURCE_EXHAUSTED
 * (out of memory or larger than 16 MiB). */
dfnet_status_t dfnet_bind_program_load(const uint8_t *bytes, size_t len, dfnet_bind_program_t **out,
                                       char *err, size_t err_len);

/* Free a program (NULL is fine). */
void dfnet_bind_program_destroy(dfnet_bind_program_t *program);

/* The original bytecode (owned by the program). */
const uint8_t *dfnet_bind_program_bytes(const dfnet_bind_program_t *program, size_t *len);

typedef enum dfnet_bind_result {
  DFNET_BIND_MATCH = 0,
  DFNET_BIND_NO_MATCH = 1,
  DFNET_BIND_ERROR = 2, /* e.g. the program compares a uint key against a string value */
} dfnet_bind_result_t;

/* "match", "no match", "error". */
const char *dfnet_bind_result_str(dfnet_bind_result_t result);

/* Which instruction decided a match and why. */
typedef struct dfnet_bind_trace {
  bool at_end;           /* ran off the end: the node matched */
  uint32_t offset;       /* byte offset of the deciding instruction in its instruction list */
  uint32_t file_offset;  /* ... and in the whole bytecode */
  char instruction[192]; /* dumped text, e.g. "fuchsia.BIND_PCI_DID == 4164" */
  char reason[512];      /* e.g. "fuchsia.BIND_PCI_DID is 0x1041, want 0x1044",
                            "fuchsia.BIND_PCI_DID: property missing" */
} dfnet_bind_trace_t;

/* Run a plain (non-composite) program against a node. `trace` may be NULL; when given it
 * is filled (no allocation). A composite program returns DFNET_BIND_ERROR (match its
 * nodes with dfnet_bind_program_match_composite_node). Thread-safe, allocation-free. */
dfnet_bind_result_t dfnet_bind_program_match(const dfnet_bind_program_t *program,
                                             const dfnet_bind_node_t *node,
                                             dfnet_bind_trace_t *trace);

/* ---- composite programs ---- */

typedef enum dfnet_bind_node_type {
  DFNET_BIND_NODE_PRIMARY = 0x50,
  DFNET_BIND_NODE_ADDITIONAL = 0x51,
  DFNET_BIND_NODE_OPTIONAL = 0x52,
} dfnet_bind_node_type_t;

bool dfnet_bind_program_is_composite(const dfnet_bind_program_t *program);

/* The composite's device name (`composite NAME;`), or NULL for a plain program. */
const char *dfnet_bind_program_composite_name(const dfnet_bind_program_t *program);

/* Number of composite nodes (0 for a plain program). Node 0 is the primary; the others
 * follow in bytecode order (additional, then optional). */
size_t dfnet_bind_program_node_count(const dfnet_bind_program_t *program);

/* Name (owned by the program) and type of composite node `index`.
 * Returns OK, or OUT_OF_RANGE when index >= node count. */
dfnet_status_t dfnet_bind_program_node_info(const dfnet_bind_program_t *program, size_t index,
                                            const char **name, dfnet_bind_node_type_t *type);

/* Match one composite node's rules against a candidate node. Out-of-range index returns
 * DFNET_BIND_ERROR. Same guarantees as dfnet_bind_program_match. */
dfnet_bind_result_t dfnet_bind_program_match_composite_node(const dfnet_bind_program_t *program,
                                                            size_t index,
                                                            const dfnet_bind_node_t *node,
                                                            dfnet_bind_trace_t *trace);

/* ---- dump ---- */

/* The program as `ffx driver list -v` prints it (Fuchsia debugger/debug_dump.rs): plain
 * programs one instruction per line, each line starting with "\n  " ("\n  fuchsia.
 * BIND_PROTOCOL == 31"); composites "Node (primary): NAME" + its lines + "\n" per node.
 * Returns a malloc'd string the caller frees, or NULL when out of memory. */
char *dfnet_bind_program_dump(const dfnet_bind_program_t *program);

/* ------------------------------------------------------------------------------------ */
/* Compiler                                                                              */
/* ------------------------------------------------------------------------------------ */

/* A source text with the path used in messages. `text` need not be NUL-terminated. */
typedef struct dfnet_bind_source {
  const char *path;
  const char *text;
  size_t len;
} dfnet_bind_source_t;

typedef struct dfnet_bind_compile_options {
  const dfnet_bind_source_t *libraries; /* --include files (bind libraries) */
  size_t library_count;
  const char *const *lib_dirs; /* searched for `using a.b;` as DIR/a.b.bind, in order */
  size_t lib_dir_count;
  bool disable_autobind; /* bindc --disable-autobind: prepend fuchsia.BIND_AUTOBIND == 0 */
} dfnet_bind_compile_options_t;

/* Compile a rules file or composite rules file (docs/spec/bind.md "Language") to bytecode v2.
 * `opts` may be NULL (no libraries). `using` libraries are taken from opts->libraries
 * first, then from opts->lib_dirs.
 * On success *out (malloc'd, caller frees) holds *out_len bytes. On failure *error
 * (malloc'd, caller frees; may be NULL if out of memory) holds
 * "file:line:col: error: message\n<the line>\n<caret>\n".
 * Returns OK, INVALID_ARGUMENT (syntax or semantic error), NOT_FOUND (a `using` library
 * that cannot be found), RESOURCE_EXHAUSTED (out of memory). */
dfnet_status_t dfnet_bind_compile(const dfnet_bind_source_t *rules,
                                  const dfnet_bind_compile_options_t *opts, uint8_t **out,
                                  size_t *out_len, char **error);

/* Generate C constants from a bind library (`dfnet-bindc header`):
 *   library fuchsia.pci; extend uint fuchsia.BIND_PROTOCOL { DEVICE = 31, };
 *     -> #define BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE 31u
 * string values and enum values as string literals (an enum value is its fully qualified
 * text "lib.KEY.VALUE"), bools as true/false, and each key the library declares itself as
 * #define BIND_LIB_KEY "lib.KEY". `guard_name` names the include guard source (may be
 * NULL: derived from the library name).
 * On success *out is a malloc'd NUL-terminated header text. Errors as dfnet_bind_compile
 * (the library is parsed, not resolved against its `using` list). */
dfnet_status_t dfnet_bind_library_header(const dfnet_bind_source_t *library, char **out,
                                         char **error);

/* Run Fuchsia-format bind tests (tests.json, plain or composite; docs/spec/bind.md "Bind
 * tests") against rules compiled with `opts`. Progress lines in Fuchsia's format
 * ("[ RUN      ] name", "[       OK ] name", "[  FAILED  ] name") and, for a failed
 * test, the matcher's trace, are appended to *report (malloc'd, caller frees).
 * Returns OK when every test passed, ABORTED when a test failed, INVALID_ARGUMENT for a
 * bad rules file or test file (message in *report), NOT_FOUND / RESOURCE_EXHAUSTED as
 * dfnet_bind_compile. */
dfnet_status_t dfnet_bind_run_tests(const dfnet_bind_source_t *rules,
                                    const dfnet_bind_compile_options_t *opts,
                                    const dfnet_bind_source_t *tests_json, char **report);

/* Build the properties of `KEY=VALUE` arguments (`dfnet-bindc match`), read as `dfnet node
 * add-test --property` reads them (lib/property_text.h): KEY a deprecated key name
 * ("fuchsia.BIND_PCI_VID"; a misspelt one is refused), a number (an integer key) or a
 * string key; VALUE a number (decimal or 0x hex), true/false, an enum value lib.KEY.VALUE,
 * "a quoted string" or other text (a string). Each argument is parsed in place and the
 * strings point into `args`, which must outlive the properties. Returns OK,
 * INVALID_ARGUMENT (the mistake, naming the part, in err), or OUT_OF_RANGE when count >
 * max. */
dfnet_status_t dfnet_bind_parse_property_args(char *const *args, size_t count,
                                              dfnet_bind_property_t *props, size_t max, char *err,
                                              size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_BIND_H */
