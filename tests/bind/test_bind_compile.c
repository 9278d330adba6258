/* bind compiler: one named case per grammar rule, per syntax error and per semantic error
 * (docs/spec/bind.md "Language"), and encoder golden vectors (docs/spec/bind.md "Bytecode v2",
 * Fuchsia bytecode_encoder/encode_v2.rs).
 *
 * Each table row becomes its own cmocka test, named after the rule it covers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind.h"

/* A test library covering every key type (uint, string, bool, enum). */
static const char k_test_lib[] =
    "library test.lib;\n"
    "uint number_key { FIVE = 5, BIG = 0x100000001 };\n"
    "string name_key { A = \"alpha\", };\n"
    "bool flag { ON = true, OFF = false };\n"
    "enum kind { X, Y, };\n"
    "uint bare;\n";

/* Extends test.lib's key from another library: values scoped by the extending library. */
static const char k_ext_lib[] =
    "library test.ext;\n"
    "using test.lib;\n"
    "extend enum test.lib.kind { Z };\n"
    "extend uint fuchsia.BIND_PROTOCOL { EXT = 77 };\n";

typedef struct compile_case {
  const char *name;
  const char *rules;
  const char *extra_lib; /* an extra --include library, or NULL */
  dfnet_status_t status;
  const char *message; /* substring of the diagnostic (errors only) */
  unsigned line;       /* expected position of the diagnostic (0 = not checked) */
  unsigned col;
} compile_case;

static dfnet_status_t compile_text(const char *rules, const char *extra_lib, uint8_t **out,
                                   size_t *out_len, char **err) {
  dfnet_bind_source_t libs[2] = {{"test.lib.bind", k_test_lib, strlen(k_test_lib)},
                                 {"extra.bind", extra_lib, extra_lib ? strlen(extra_lib) : 0}};
  dfnet_bind_compile_options_t opts = {libs, extra_lib ? 2u : 1u, NULL, 0, false};
  dfnet_bind_source_t src = {"rules.bind", rules, strlen(rules)};
  return dfnet_bind_compile(&src, &opts, out, out_len, err);
}

static void run_compile_case(void **state) {
  const compile_case *c = *state;
  uint8_t *out = NULL;
  size_t len = 0;
  char *err = NULL;
  dfnet_status_t st = compile_text(c->rules, c->extra_lib, &out, &len, &err);
  if (st != c->status) {
    fprintf(stderr, "case %s: status %s, want %s\n%s", c->name, dfnet_status_str(st),
            dfnet_status_str(c->status), err ? err : "");
  }
  assert_int_equal(st, c->status);
  if (c->status == DFNET_STATUS_OK) {
    assert_non_null(out);
    assert_true(len >= 25);
    /* What the compiler emits, the verifier accepts. */
    dfnet_bind_program_t *prog = NULL;
    char why[256];
    assert_int_equal(dfnet_bind_program_load(out, len, &prog, why, sizeof why), DFNET_STATUS_OK);
    dfnet_bind_program_destroy(prog);
    assert_null(err);
  } else {
    assert_null(out);
    assert_non_null(err);
    if (strstr(err, c->message) == NULL) {
      fprintf(stderr, "case %s: diagnostic lacks \"%s\":\n%s", c->name, c->message, err);
    }
    assert_non_null(strstr(err, c->message));
    if (c->line) {
      char where[64];
      snprintf(where, sizeof where, "rules.bind:%u:%u: error: ", c->line, c->col);
      if (strncmp(err, where, strlen(where)) != 0) {
        fprintf(stderr, "case %s: want \"%s\", got:\n%s", c->name, where, err);
      }
      assert_int_equal(strncmp(err, where, strlen(where)), 0);
      /* The offending line and a caret under the column follow. */
      const char *nl = strchr(err, '\n');
      assert_non_null(nl);
      const char *caret_line = strchr(nl + 1, '\n');
      assert_non_null(caret_line);
      assert_int_equal(caret_line[c->col], '^');
    }
  }
  free(out);
  free(err);
}

/* clang-format off: clang-format 14 breaks a macro that is one braced initializer */
#define OK_CASE(n, r) \
  { n, r, NULL, DFNET_STATUS_OK, NULL, 0, 0 }
#define OK_CASE_LIB(n, r, l) \
  { n, r, l, DFNET_STATUS_OK, NULL, 0, 0 }
#define ERR_CASE(n, r, m, l, c) \
  { n, r, NULL, DFNET_STATUS_INVALID_ARGUMENT, m, l, c }
#define ERR_CASE_LIB(n, r, lib, m) \
  { n, r, lib, DFNET_STATUS_INVALID_ARGUMENT, m, 0, 0 }
/* clang-format on */

static const compile_case k_grammar[] = {
    OK_CASE("grammar_condition_equal", "fuchsia.BIND_PROTOCOL == 1;"),
    OK_CASE("grammar_condition_not_equal", "fuchsia.BIND_PROTOCOL != 1;"),
    OK_CASE("grammar_using", "using test.lib;\ntest.lib.bare == 1;"),
    OK_CASE("grammar_using_as_alias", "using test.lib as t;\nt.bare == 1;\nt.kind == t.kind.X;"),
    OK_CASE("grammar_accept", "accept fuchsia.BIND_PROTOCOL { 1, 2, 3 }"),
    OK_CASE("grammar_accept_trailing_comma", "accept fuchsia.BIND_PROTOCOL { 1, 2, }"),
    OK_CASE("grammar_if_else", "if fuchsia.BIND_PROTOCOL == 1 { true; } else { false; }"),
    OK_CASE("grammar_if_else_if_else",
            "if fuchsia.BIND_PROTOCOL == 1 { true; }\n"
            "else if fuchsia.BIND_PROTOCOL != 2 { fuchsia.BIND_USB_VID == 3; }\n"
            "else { false; }"),
    OK_CASE("grammar_nested_if",
            "if fuchsia.BIND_PROTOCOL == 1 {\n"
            "  if fuchsia.BIND_USB_VID == 2 { true; } else { false; }\n"
            "} else { false; }"),
    OK_CASE("grammar_true", "true;"),
    OK_CASE("grammar_false", "false;"),
    OK_CASE("grammar_value_decimal", "fuchsia.BIND_PROTOCOL == 4294967295;"),
    OK_CASE("grammar_value_hex", "fuchsia.BIND_PROTOCOL == 0xDEADbeef;"),
    OK_CASE("grammar_value_string",
            "using test.lib;\ntest.lib.name_key == \"a \\\"quoted\\\" \\\\ x\";"),
    OK_CASE("grammar_value_bool",
            "using test.lib;\ntest.lib.flag == true;\ntest.lib.flag != false;"),
    OK_CASE("grammar_value_identifier", "using test.lib;\ntest.lib.kind == test.lib.kind.Y;"),
    OK_CASE("grammar_string_key_enum_value_interchange",
            "using test.lib;\ntest.lib.name_key == test.lib.kind.X;\ntest.lib.kind == \"text\";"),
    OK_CASE("grammar_line_comment", "// a comment\nfuchsia.BIND_PROTOCOL == 1; // trailing\n"),
    OK_CASE("grammar_nested_block_comment",
            "/* outer /* inner */ still comment */ fuchsia.BIND_PROTOCOL == 1;"),
    OK_CASE("grammar_composite",
            "composite c;\nprimary node \"a\" { fuchsia.BIND_PROTOCOL == 1; }\n"
            "node \"b\" { fuchsia.BIND_PROTOCOL == 2; }"),
    OK_CASE("grammar_composite_using",
            "composite c;\nusing test.lib;\nprimary node \"a\" { test.lib.flag == true; }"),
    OK_CASE("grammar_composite_optional",
            "composite c;\nprimary node \"a\" { true; }\noptional node \"o\" { false; }"),
    OK_CASE("grammar_composite_parent_keyword",
            "composite c;\nprimary parent \"a\" { true; }\nparent \"b\" { true; }"),
    OK_CASE_LIB("grammar_library_extend_other_library",
                "using test.ext;\ntest.lib.kind == test.ext.kind.Z;\n"
                "fuchsia.BIND_PROTOCOL == test.ext.BIND_PROTOCOL.EXT;",
                k_ext_lib),
    OK_CASE_LIB("grammar_library_transitive_dependency",
                "using test.ext;\ntest.lib.kind == test.lib.kind.X;", k_ext_lib),
    OK_CASE("grammar_number_truncated_to_u32",
            "using test.lib;\ntest.lib.number_key == test.lib.number_key.BIG;"),
};

static const compile_case k_syntax_errors[] = {
    ERR_CASE("syntax_typo_single_equals", "fuchsia.BIND_PROTOCOL == 1;\nfuchsia.BIND_PCI_VID = 2;",
             "expected '==' or '!='", 2, 22),
    ERR_CASE("syntax_missing_semicolon", "fuchsia.BIND_PROTOCOL == 1\nfuchsia.BIND_PCI_VID == 2;",
             "expected ';' after the condition", 2, 1),
    ERR_CASE("syntax_no_statements", "using test.lib;\n", "at least one statement", 2, 1),
    ERR_CASE("syntax_empty_block", "if fuchsia.BIND_PROTOCOL == 1 { } else { true; }",
             "a block needs at least one statement", 1, 33),
    ERR_CASE("syntax_if_without_else", "if fuchsia.BIND_PROTOCOL == 1 { true; }",
             "needs an else block", 1, 40),
    ERR_CASE("syntax_unterminated_comment", "fuchsia.BIND_PROTOCOL == 1; /* /* */",
             "unterminated comment", 1, 29),
    ERR_CASE("syntax_unterminated_string", "fuchsia.BIND_PROTOCOL == \"abc;", "unterminated string",
             1, 26),
    ERR_CASE("syntax_bad_escape", "fuchsia.BIND_PROTOCOL == \"a\\nb\";", "may be escaped", 1, 28),
    ERR_CASE("syntax_unexpected_character", "fuchsia.BIND_PROTOCOL == 1 & 2;",
             "unexpected character '&'", 1, 28),
    ERR_CASE("syntax_number_overflow", "fuchsia.BIND_PROTOCOL == 18446744073709551616;",
             "does not fit in 64 bits", 1, 26),
    ERR_CASE("syntax_hex_without_digits", "fuchsia.BIND_PROTOCOL == 0xg;", "hex digits", 1, 26),
    ERR_CASE("syntax_number_with_letters", "fuchsia.BIND_PROTOCOL == 12ab;", "in number", 1, 28),
    ERR_CASE("syntax_identifier_trailing_underscore", "fuchsia.BIND_ == 1;", "cannot end with '_'",
             1, 13),
    ERR_CASE("syntax_missing_value", "fuchsia.BIND_PROTOCOL == ;", "expected a value", 1, 26),
    ERR_CASE("syntax_accept_missing_brace", "accept fuchsia.BIND_PROTOCOL 1, 2 }",
             "expected '{' to start the accept list", 1, 30),
    ERR_CASE("syntax_accept_empty", "accept fuchsia.BIND_PROTOCOL { }", "expected a value", 1, 32),
    ERR_CASE("syntax_using_after_statement", "true;\nusing test.lib;", "'using' must come before",
             2, 1),
    ERR_CASE("syntax_alias_compound", "using test.lib as a.b;\ntrue;", "single identifier", 1, 19),
    ERR_CASE("syntax_composite_no_nodes", "composite c;\nusing test.lib;\n", "at least one node", 3,
             1),
    ERR_CASE("syntax_composite_two_primaries",
             "composite c;\nprimary node \"a\" { true; }\nprimary node \"b\" { true; }",
             "exactly one primary node", 3, 1),
    ERR_CASE("syntax_composite_no_primary", "composite c;\nnode \"a\" { true; }",
             "exactly one primary node", 2, 6),
    ERR_CASE("syntax_composite_duplicate_node",
             "composite c;\nprimary node \"a\" { true; }\nnode \"a\" { true; }",
             "duplicate node name", 3, 6),
    ERR_CASE("syntax_composite_empty_node_name", "composite c;\nprimary node \"\" { true; }",
             "cannot be empty", 2, 14),
    ERR_CASE("syntax_composite_unquoted_node_name", "composite c;\nprimary node a { true; }",
             "node's name as a string", 2, 14),
    /* Regression (found by fuzz_bind_parser): invalid UTF-8 in a string compiled into a
     * symbol the verifier rejects. */
    ERR_CASE("syntax_invalid_utf8_in_string", "fuchsia.BIND_PROTOCOL == 1;\nx == \"a\x9e\";",
             "invalid UTF-8 (byte 0x9e)", 2, 8),
    ERR_CASE("syntax_composite_missing_name", "composite ;\nprimary node \"a\" { true; }",
             "composite's name", 1, 11),
};

static const compile_case k_semantic_errors[] = {
    ERR_CASE("semantic_undeclared_key", "fuchsia.BIND_PROTOCL == 1;", "undeclared key", 1, 1),
    ERR_CASE("semantic_key_from_unused_library", "test.lib.bare == 1;", "undeclared key", 1, 1),
    ERR_CASE("semantic_value_used_as_key", "using test.lib;\ntest.lib.kind.X == 1;",
             "is a value, not a key", 2, 1),
    ERR_CASE("semantic_key_used_as_value", "using test.lib;\ntest.lib.bare == test.lib.bare;",
             "is a key, not a value", 2, 18),
    ERR_CASE("semantic_undeclared_value", "using test.lib;\ntest.lib.kind == test.lib.kind.W;",
             "undeclared identifier", 2, 18),
    ERR_CASE("semantic_type_mismatch_uint_string", "using test.lib;\ntest.lib.bare == \"x\";",
             "type mismatch", 2, 18),
    ERR_CASE("semantic_type_mismatch_bool_number", "using test.lib;\ntest.lib.flag == 1;",
             "type mismatch", 2, 18),
    ERR_CASE("semantic_type_mismatch_deprecated_key", "fuchsia.BIND_PROTOCOL == \"one\";",
             "type mismatch", 1, 26),
    ERR_CASE("semantic_type_mismatch_in_accept",
             "using test.lib;\naccept test.lib.bare { 1, true }", "type mismatch", 2, 27),
    ERR_CASE("semantic_if_not_last",
             "if fuchsia.BIND_PROTOCOL == 1 { true; } else { false; }\nfuchsia.BIND_PROTOCOL == 2;",
             "must be the last statement", 1, 1),
    ERR_CASE("semantic_true_not_alone", "fuchsia.BIND_PROTOCOL == 1;\ntrue;",
             "'true;' must be the only", 2, 1),
    ERR_CASE("semantic_false_not_alone", "false;\nfuchsia.BIND_PROTOCOL == 1;",
             "'false;' must be the only", 1, 1),
    ERR_CASE("semantic_empty_string_value", "using test.lib;\ntest.lib.name_key == \"\";",
             "empty string", 2, 22),
    ERR_CASE("semantic_string_too_long",
             "using test.lib;\ntest.lib.name_key == "
             "\"0123456789012345678901234567890123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789012345678901234567890123456789"
             "01234567890123456789012345678901234567890123456789\";",
             "255-byte limit", 2, 22),
    {"semantic_library_not_found", "using no.such.lib;\ntrue;", NULL, DFNET_STATUS_NOT_FOUND,
     "library 'no.such.lib' not found", 1, 7},
    ERR_CASE("semantic_library_used_twice", "using test.lib;\nusing test.lib;\ntrue;", "used twice",
             2, 7),
    ERR_CASE_LIB("semantic_library_extend_local_name", "using bad;\ntrue;",
                 "library bad;\nextend uint thing;\n", "'extend' needs a qualified key"),
    ERR_CASE_LIB("semantic_library_qualified_without_extend", "using bad;\ntrue;",
                 "library bad;\nuint fuchsia.BIND_PROTOCOL;\n", "must be declared with 'extend'"),
    ERR_CASE_LIB("semantic_library_unresolved_qualification", "using bad;\ntrue;",
                 "library bad;\nextend uint other.lib.key;\n", "not a library this library uses"),
    ERR_CASE_LIB("semantic_library_duplicate_key", "using bad;\ntrue;",
                 "library bad;\nuint k;\nuint k;\n", "already declared"),
    ERR_CASE_LIB("semantic_library_extend_type_mismatch", "using bad;\ntrue;",
                 "library bad;\nusing test.lib;\nextend string test.lib.bare;\n", "type mismatch"),
    ERR_CASE_LIB("semantic_library_extend_deprecated_type_mismatch", "using bad;\ntrue;",
                 "library bad;\nextend string fuchsia.BIND_PROTOCOL;\n", "built-in uint key"),
    ERR_CASE_LIB("semantic_library_extend_undeclared", "using bad;\ntrue;",
                 "library bad;\nusing test.lib;\nextend uint test.lib.nope;\n",
                 "cannot extend undeclared key"),
    ERR_CASE_LIB("semantic_library_duplicate_value", "using bad;\ntrue;",
                 "library bad;\nuint k { A = 1, A = 2 };\n", "duplicate value"),
    ERR_CASE_LIB("semantic_library_value_type", "using bad;\ntrue;",
                 "library bad;\nuint k { A = \"x\" };\n", "expected a uint literal"),
    ERR_CASE_LIB("semantic_library_dependency_cycle", "using bad;\ntrue;",
                 "library bad;\nusing bad;\n", "dependency cycle"),
    ERR_CASE_LIB("semantic_library_missing_semicolon", "using bad;\ntrue;",
                 "library bad;\nuint k\n", "expected ';' after the declaration"),
};

/* ---- encoder golden vectors ---- */

#define LE(x)                                                                       \
  (uint8_t)((x)&0xff), (uint8_t)(((x) >> 8) & 0xff), (uint8_t)(((x) >> 16) & 0xff), \
      (uint8_t)(((x) >> 24) & 0xff)
#define HEADER 'B', 'I', 'N', 'D', LE(2), 0
#define SYNB(n) 'S', 'Y', 'N', 'B', LE(n)
#define INST(n) 'I', 'N', 'S', 'T', LE(n)
#define COMP(n) 'C', 'O', 'M', 'P', LE(n)

static void expect_bytes(const char *rules, const char *extra_lib, const uint8_t *want,
                         size_t want_len) {
  uint8_t *out = NULL;
  size_t len = 0;
  char *err = NULL;
  dfnet_status_t st = compile_text(rules, extra_lib, &out, &len, &err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s", err);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
  if (len != want_len || memcmp(out, want, len) != 0) {
    for (size_t i = 0; i < len || i < want_len; i++) {
      fprintf(stderr, "%4zu: got %02x want %02x%s\n", i, i < len ? out[i] : 0,
              i < want_len ? want[i] : 0,
              (i < len && i < want_len && out[i] == want[i]) ? "" : "  <--");
    }
  }
  assert_int_equal(len, want_len);
  assert_memory_equal(out, want, want_len);
  free(out);
}

/* Smallest program: one deprecated-key condition, no symbols. */
static void test_golden_single_condition(void **state) {
  (void)state;
  static const uint8_t want[] = {HEADER, SYNB(0), INST(11), 0x01, 1, LE(1), 1, LE(1)};
  expect_bytes("fuchsia.BIND_PROTOCOL == 1;", NULL, want, sizeof want);
}

/* `false;` alone compiles to Abort; `true;` alone to nothing (Fuchsia test_empty_symbol_table). */
static void test_golden_true_false(void **state) {
  (void)state;
  static const uint8_t abort_prog[] = {HEADER, SYNB(0), INST(1), 0x30};
  static const uint8_t empty_prog[] = {HEADER, SYNB(0), INST(0)};
  expect_bytes("false;", NULL, abort_prog, sizeof abort_prog);
  expect_bytes("true;", NULL, empty_prog, sizeof empty_prog);
}

/* Every opcode, every value type, an accept list, nested if / else if / else, symbol
 * interning in first-use order (a string used twice gets one id). */
static void test_golden_every_opcode(void **state) {
  (void)state;
  static const char rules[] =
      "using test.lib;\n"
      "fuchsia.BIND_PROTOCOL != 3;\n"
      "test.lib.flag == true;\n"
      "accept test.lib.name_key { \"alpha\", test.lib.name_key.A }\n"
      "if test.lib.kind == test.lib.kind.X {\n"
      "  test.lib.bare == test.lib.number_key.FIVE;\n"
      "} else if test.lib.kind != test.lib.kind.Y {\n"
      "  if fuchsia.BIND_USB_VID == 0x18d1 { true; } else { false; }\n"
      "} else {\n"
      "  false;\n"
      "}\n";
  static const uint8_t want[] = {
      HEADER,
      SYNB(126),
      LE(1),
      't',
      'e',
      's',
      't',
      '.',
      'l',
      'i',
      'b',
      '.',
      'f',
      'l',
      'a',
      'g',
      0,
      LE(2),
      't',
      'e',
      's',
      't',
      '.',
      'l',
      'i',
      'b',
      '.',
      'n',
      'a',
      'm',
      'e',
      '_',
      'k',
      'e',
      'y',
      0,
      LE(3),
      'a',
      'l',
      'p',
      'h',
      'a',
      0,
      LE(4),
      't',
      'e',
      's',
      't',
      '.',
      'l',
      'i',
      'b',
      '.',
      'k',
      'i',
      'n',
      'd',
      0,
      LE(5),
      't',
      'e',
      's',
      't',
      '.',
      'l',
      'i',
      'b',
      '.',
      'k',
      'i',
      'n',
      'd',
      '.',
      'X',
      0,
      LE(6),
      't',
      'e',
      's',
      't',
      '.',
      'l',
      'i',
      'b',
      '.',
      'b',
      'a',
      'r',
      'e',
      0,
      LE(7),
      't',
      'e',
      's',
      't',
      '.',
      'l',
      'i',
      'b',
      '.',
      'k',
      'i',
      'n',
      'd',
      '.',
      'Y',
      0,
      INST(132),
      /* 0 */ 0x02,
      1,
      LE(1),
      1,
      LE(3),
      /* 11 */ 0x01,
      0,
      LE(1),
      3,
      LE(1),
      /* 22 */ 0x11,
      LE(16),
      0,
      LE(2),
      2,
      LE(3),
      /* 37 */ 0x11,
      LE(1),
      0,
      LE(2),
      2,
      LE(3),
      /* 52 */ 0x30,
      /* 53 */ 0x20,
      /* 54 */ 0x12,
      LE(16),
      0,
      LE(4),
      4,
      LE(5),
      /* 69 */ 0x01,
      0,
      LE(6),
      1,
      LE(5),
      /* 80 */ 0x10,
      LE(46),
      /* 85 */ 0x20,
      /* 86 */ 0x11,
      LE(28),
      0,
      LE(4),
      4,
      LE(7),
      /* 101 */ 0x12,
      LE(5),
      1,
      LE(0x200),
      1,
      LE(0x18d1),
      /* 116 */ 0x10,
      LE(2),
      /* 121 */ 0x20,
      /* 122 */ 0x30,
      /* 123 */ 0x20,
      /* 124 */ 0x10,
      LE(2),
      /* 129 */ 0x20,
      /* 130 */ 0x30,
      /* 131 */ 0x20,
  };
  expect_bytes(rules, NULL, want, sizeof want);
}

/* Composite: emitted primary, additional, optional whatever the source order; device name
 * interned first, each node's name before its instructions. */
static void test_golden_composite_node_order(void **state) {
  (void)state;
  static const char rules[] =
      "composite hummingbird;\n"
      "using test.lib;\n"
      "optional node \"oilbird\" { fuchsia.BIND_PROTOCOL == 2; }\n"
      "node \"ovenbird\" { test.lib.flag == false; }\n"
      "primary node \"fireback\" { fuchsia.BIND_PROTOCOL == 1; }\n";
  static const uint8_t want[] = {
      HEADER, SYNB(72), LE(1),  'h',   'u',      'm',    'm',   'i',   'n',    'g',  'b',
      'i',    'r',      'd',    0,     LE(2),    'f',    'i',   'r',   'e',    'b',  'a',
      'c',    'k',      0,      LE(3), 'o',      'v',    'e',   'n',   'b',    'i',  'r',
      'd',    0,        LE(4),  't',   'e',      's',    't',   '.',   'l',    'i',  'b',
      '.',    'f',      'l',    'a',   'g',      0,      LE(5), 'o',   'i',    'l',  'b',
      'i',    'r',      'd',    0,     COMP(64), LE(1),  0x50,  LE(2), LE(11), 0x01, 1,
      LE(1),  1,        LE(1),  0x51,  LE(3),    LE(11), 0x01,  0,     LE(4),  3,    LE(0),
      0x52,   LE(5),    LE(11), 0x01,  1,        LE(1),  1,     LE(2),
  };
  expect_bytes(rules, NULL, want, sizeof want);
}

/* The spec's worked example minus the non-standalone `false;` (docs/spec/bind.md): the 110-byte
 * vector is this program plus one Abort byte and a 0x2d instead of 0x2c COMP size. */
static void test_golden_spec_example_shape(void **state) {
  (void)state;
  static const char rules[] =
      "composite wallcreeper;\n"
      "primary node \"wagtail\" { fuchsia.BIND_PROTOCOL == 1; }\n"
      "node \"redpoll\" { fuchsia.BIND_PROTOCOL != 2; }\n";
  static const uint8_t want[] = {
      0x42, 0x49, 0x4e, 0x44, 0x02, 0x00, 0x00, 0x00, 0x00, 0x53, 0x59, 0x4e, 0x42, 0x28,
      0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x77, 0x61, 0x6c, 0x6c, 0x63, 0x72, 0x65,
      0x65, 0x70, 0x65, 0x72, 0x00, 0x02, 0x00, 0x00, 0x00, 0x77, 0x61, 0x67, 0x74, 0x61,
      0x69, 0x6c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x72, 0x65, 0x64, 0x70, 0x6f, 0x6c, 0x6c,
      0x00, 0x43, 0x4f, 0x4d, 0x50, 0x2c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x50,
      0x02, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
      0x01, 0x01, 0x00, 0x00, 0x00, 0x51, 0x03, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00,
      0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00};
  expect_bytes(rules, NULL, want, sizeof want);
}

/* Fuchsia encode_v2.rs test_duplicate_symbols: a key and a string value with the same text
 * share one symbol; numbers are never interned; 64-bit literals are truncated to u32. */
static void test_golden_shared_symbols_and_truncation(void **state) {
  (void)state;
  static const char lib[] = "library sym;\nstring puffleg;\nuint sunangel;\n";
  static const char rules[] =
      "using sym;\n"
      "sym.puffleg == \"sym.sunangel\";\n"
      "sym.sunangel != 0x100000002;\n";
  static const uint8_t want[] = {
      HEADER, SYNB(33), LE(1), 's', 'y',   'm', '.',   'p',  'u', 'f',   'f', 'l',   'e', 'g',
      0,      LE(2),    's',   'y', 'm',   '.', 's',   'u',  'n', 'a',   'n', 'g',   'e', 'l',
      0,      INST(22), 0x01,  0,   LE(1), 2,   LE(2), 0x02, 0,   LE(2), 1,   LE(2),
  };
  expect_bytes(rules, lib, want, sizeof want);
}

/* --disable-autobind (Fuchsia disable_autobind()): BIND_AUTOBIND == 0 comes first. */
static void test_golden_disable_autobind(void **state) {
  (void)state;
  static const uint8_t want[] = {HEADER, SYNB(0), INST(22), 0x01,  1, LE(2), 1,
                                 LE(0),  0x01,    1,        LE(1), 1, LE(5)};
  dfnet_bind_compile_options_t opts = {NULL, 0, NULL, 0, true};
  dfnet_bind_source_t src = {"r.bind", "fuchsia.BIND_PROTOCOL == 5;", 27};
  uint8_t *out = NULL;
  size_t len = 0;
  char *err = NULL;
  assert_int_equal(dfnet_bind_compile(&src, &opts, &out, &len, &err), DFNET_STATUS_OK);
  assert_int_equal(len, sizeof want);
  assert_memory_equal(out, want, sizeof want);
  free(out);
}

/* The built-in libraries compile real Fuchsia-style rules through the search path. */
static void test_builtin_library_search_path(void **state) {
  (void)state;
  const char *src_dir = getenv("DFNET_SOURCE_DIR");
  assert_non_null(src_dir);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/bind/lib", src_dir);
  const char *dirs[] = {dir};
  dfnet_bind_compile_options_t opts = {NULL, 0, dirs, 1, false};
  static const char rules[] =
      "using fuchsia.pci;\nusing dfnet.hardware.rng;\n"
      "fuchsia.BIND_PROTOCOL == fuchsia.pci.BIND_PROTOCOL.DEVICE;\n"
      "fuchsia.BIND_PCI_VID == fuchsia.pci.BIND_PCI_VID.VIRTIO;\n"
      "dfnet.hardware.rng.Service == dfnet.hardware.rng.Service.ZirconTransport;\n";
  static const uint8_t want[] = {
      HEADER,     SYNB(78), LE(1),    'd',   'f', 'n',   'e',   't',      '.',  'h', 'a',       'r',
      'd',        'w',      'a',      'r',   'e', '.',   'r',   'n',      'g',  '.', 'S',       'e',
      'r',        'v',      'i',      'c',   'e', 0,     LE(2), 'd',      'f',  'n', 'e',       't',
      '.',        'h',      'a',      'r',   'd', 'w',   'a',   'r',      'e',  '.', 'r',       'n',
      'g',        '.',      'S',      'e',   'r', 'v',   'i',   'c',      'e',  '.', 'Z',       'i',
      'r',        'c',      'o',      'n',   'T', 'r',   'a',   'n',      's',  'p', 'o',       'r',
      't',        0,        INST(33), 0x01,  1,   LE(1), 1,     LE(0x1f), 0x01, 1,   LE(0x100), 1,
      LE(0x1af4), 0x01,     0,        LE(1), 4,   LE(2),
  };
  dfnet_bind_source_t src = {"r.bind", rules, strlen(rules)};
  uint8_t *out = NULL;
  size_t len = 0;
  char *err = NULL;
  dfnet_status_t st = dfnet_bind_compile(&src, &opts, &out, &len, &err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s", err);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
  assert_int_equal(len, sizeof want);
  assert_memory_equal(out, want, sizeof want);
  free(out);
}

static void test_library_header(void **state) {
  (void)state;
  static const char lib[] =
      "library fuchsia.pci;\n"
      "extend uint fuchsia.BIND_PROTOCOL { DEVICE = 30, };\n"
      "string Name { A = \"alpha\" };\n"
      "enum fuchsia_kind { X };\n"
      "bool flag { ON = true };\n";
  dfnet_bind_source_t src = {"fuchsia.pci.bind", lib, strlen(lib)};
  char *out = NULL, *err = NULL;
  assert_int_equal(dfnet_bind_library_header(&src, &out, &err), DFNET_STATUS_OK);
  assert_non_null(strstr(out, "#define BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE 30u\n"));
  assert_non_null(strstr(out, "#define BIND_FUCHSIA_PCI_NAME \"fuchsia.pci.Name\"\n"));
  assert_non_null(strstr(out, "#define BIND_FUCHSIA_PCI_NAME_A \"alpha\"\n"));
  assert_non_null(
      strstr(out, "#define BIND_FUCHSIA_PCI_FUCHSIA_KIND_X \"fuchsia.pci.fuchsia_kind.X\"\n"));
  assert_non_null(strstr(out, "#define BIND_FUCHSIA_PCI_FLAG_ON true\n"));
  assert_null(strstr(out, "BIND_FUCHSIA_PCI_BIND_PROTOCOL \"")); /* not its own key */
  free(out);
  static const char bad[] = "library x;\nuint k { A = };\n";
  dfnet_bind_source_t bad_src = {"x.bind", bad, strlen(bad)};
  assert_int_equal(dfnet_bind_library_header(&bad_src, &out, &err), DFNET_STATUS_INVALID_ARGUMENT);
  assert_null(out);
  assert_non_null(strstr(err, "x.bind:2:14: error:"));
  free(err);
}

/* No input makes the compiler crash or loop: every prefix of a valid file is handled. */
static void test_every_prefix_terminates(void **state) {
  (void)state;
  static const char rules[] =
      "using test.lib as t; /* c */ if t.kind == t.kind.X { accept t.bare { 1, 0x2, } }"
      " else { t.name_key != \"a\\\"b\"; } // end\n";
  for (size_t n = 0; n <= sizeof rules - 1; n++) {
    char *prefix = malloc(n + 1);
    memcpy(prefix, rules, n);
    prefix[n] = '\0';
    uint8_t *out = NULL;
    size_t len = 0;
    char *err = NULL;
    dfnet_status_t st = compile_text(prefix, NULL, &out, &len, &err);
    assert_true(st == DFNET_STATUS_OK || (st == DFNET_STATUS_INVALID_ARGUMENT && err != NULL));
    free(out);
    free(err);
    free(prefix);
  }
}

static int run_table(const char *group, const compile_case *cases, size_t n) {
  struct CMUnitTest *tests = calloc(n, sizeof(*tests));
  for (size_t i = 0; i < n; i++) {
    tests[i].name = cases[i].name;
    tests[i].test_func = run_compile_case;
    tests[i].initial_state = (void *)&cases[i];
  }
  int failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
  free(tests);
  return failed;
}

int main(void) {
  static const struct CMUnitTest golden[] = {
      cmocka_unit_test(test_golden_single_condition),
      cmocka_unit_test(test_golden_true_false),
      cmocka_unit_test(test_golden_every_opcode),
      cmocka_unit_test(test_golden_composite_node_order),
      cmocka_unit_test(test_golden_spec_example_shape),
      cmocka_unit_test(test_golden_shared_symbols_and_truncation),
      cmocka_unit_test(test_golden_disable_autobind),
      cmocka_unit_test(test_builtin_library_search_path),
      cmocka_unit_test(test_library_header),
      cmocka_unit_test(test_every_prefix_terminates),
  };
  int failed = 0;
  failed += run_table("grammar", k_grammar, sizeof k_grammar / sizeof k_grammar[0]);
  failed += run_table("syntax_errors", k_syntax_errors,
                      sizeof k_syntax_errors / sizeof k_syntax_errors[0]);
  failed += run_table("semantic_errors", k_semantic_errors,
                      sizeof k_semantic_errors / sizeof k_semantic_errors[0]);
  failed += cmocka_run_group_tests_name("encoder_golden", golden, NULL, NULL);
  return failed;
}
