/* bind decoder/verifier and dumper: the spec's 110-byte composite vector, Fuchsia's own
 * decoder/dumper vectors (interpreter/decode_bind_rules.rs, instruction_decoder.rs,
 * debugger/debug_dump.rs) and a malformed-bytecode table with one named case per decoder
 * check of docs/spec/bind.md "Bytecode v2".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind.h"

#define LE(x)                                                                       \
  (uint8_t)((x)&0xff), (uint8_t)(((x) >> 8) & 0xff), (uint8_t)(((x) >> 16) & 0xff), \
      (uint8_t)(((x) >> 24) & 0xff)
#define HEADER 'B', 'I', 'N', 'D', LE(2), 0
#define SYNB(n) 'S', 'Y', 'N', 'B', LE(n)
#define INST(n) 'I', 'N', 'S', 'T', LE(n)
#define COMP(n) 'C', 'O', 'M', 'P', LE(n)

/* docs/spec/bind.md "Worked example" (Fuchsia debug_dump.rs test_composite_bytecode_print). */
static const uint8_t k_spec_vector[110] = {
    0x42, 0x49, 0x4e, 0x44, 0x02, 0x00, 0x00, 0x00, 0x00, 0x53, 0x59, 0x4e, 0x42, 0x28, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x77, 0x61, 0x6c, 0x6c, 0x63, 0x72, 0x65, 0x65, 0x70, 0x65, 0x72,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x77, 0x61, 0x67, 0x74, 0x61, 0x69, 0x6c, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x72, 0x65, 0x64, 0x70, 0x6f, 0x6c, 0x6c, 0x00, 0x43, 0x4f, 0x4d, 0x50, 0x2d, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x50, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x01,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x51, 0x03, 0x00, 0x00, 0x00, 0x0c, 0x00,
    0x00, 0x00, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30};

static void test_spec_vector_decodes_and_dumps(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = NULL;
  char err[256];
  assert_int_equal(
      dfnet_bind_program_load(k_spec_vector, sizeof k_spec_vector, &prog, err, sizeof err),
      DFNET_STATUS_OK);
  assert_true(dfnet_bind_program_is_composite(prog));
  assert_string_equal(dfnet_bind_program_composite_name(prog), "wallcreeper");
  assert_int_equal(dfnet_bind_program_node_count(prog), 2);
  const char *name = NULL;
  dfnet_bind_node_type_t type;
  assert_int_equal(dfnet_bind_program_node_info(prog, 0, &name, &type), DFNET_STATUS_OK);
  assert_string_equal(name, "wagtail");
  assert_int_equal(type, DFNET_BIND_NODE_PRIMARY);
  assert_int_equal(dfnet_bind_program_node_info(prog, 1, &name, &type), DFNET_STATUS_OK);
  assert_string_equal(name, "redpoll");
  assert_int_equal(type, DFNET_BIND_NODE_ADDITIONAL);
  assert_int_equal(dfnet_bind_program_node_info(prog, 2, &name, &type), DFNET_STATUS_OUT_OF_RANGE);
  char *dump = dfnet_bind_program_dump(prog);
  assert_string_equal(dump,
                      "Node (primary): wagtail\n"
                      "  fuchsia.BIND_PROTOCOL == 1\n"
                      "Node: redpoll\n"
                      "  fuchsia.BIND_PROTOCOL != 2\n"
                      "  Abort\n");
  free(dump);
  size_t len = 0;
  assert_memory_equal(dfnet_bind_program_bytes(prog, &len), k_spec_vector, 110);
  assert_int_equal(len, 110);
  dfnet_bind_program_destroy(prog);
}

/* Fuchsia debug_dump.rs test_bytecode_print: an unknown number key prints in decimal. */
static void test_fuchsia_dump_vector(void **state) {
  (void)state;
  static const uint8_t bytes[] = {HEADER, SYNB(18), LE(1), 'W',  'R',  'E',      'N',  0,    LE(2),
                                  'D',    'U',      'C',   'K',  0,    INST(28), 0x01, 0x01, 0,
                                  0,      0,        0x05,  0x01, 0x10, 0,        0,    0x10, 0x11,
                                  0x01,   0,        0,     0,    0x00, 0x01,     0,    0,    0,
                                  0x02,   0x02,     0,     0,    0,    0x30,     0x20};
  dfnet_bind_program_t *prog = NULL;
  assert_int_equal(dfnet_bind_program_load(bytes, sizeof bytes, &prog, NULL, 0), DFNET_STATUS_OK);
  char *dump = dfnet_bind_program_dump(prog);
  assert_string_equal(dump,
                      "\n  83886080 == 268435472\n  Jump if Key(WREN) == \"DUCK\" to ??"
                      "\n  Abort\n  Label ??");
  free(dump);
  assert_false(dfnet_bind_program_is_composite(prog));
  assert_null(dfnet_bind_program_composite_name(prog));
  assert_int_equal(dfnet_bind_program_node_count(prog), 0);
  dfnet_bind_program_destroy(prog);
}

/* Every value type prints the way Fuchsia's Symbol Display does. */
static void test_dump_value_types(void **state) {
  (void)state;
  static const uint8_t bytes[] = {
      HEADER,     SYNB(18), LE(1), 'k',  0,     LE(2), 's',   0,     LE(3), 'e',   0,    INST(49),
      0x01,       0,        LE(1), 2,    LE(2), 0x02,  0,     LE(1), 4,     LE(3), 0x01, 1,
      LE(0x0600), 3,        LE(1), 0x12, LE(0), 2,     LE(2), 1,     LE(7), 0x20};
  dfnet_bind_program_t *prog = NULL;
  char err[256];
  dfnet_status_t st = dfnet_bind_program_load(bytes, sizeof bytes, &prog, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s\n", err);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
  char *dump = dfnet_bind_program_dump(prog);
  assert_string_equal(dump,
                      "\n  Key(k) == \"s\"\n  Key(k) != Enum(e)\n"
                      "  fuchsia.BIND_SERIAL_CLASS == true\n"
                      "  Jump if \"s\" != 7 to ??\n  Label ??");
  free(dump);
  dfnet_bind_program_destroy(prog);
}

/* Debug flag 1: a u32 line number before every instruction and a DEBG section. */
static void test_debug_flag_program(void **state) {
  (void)state;
  static const uint8_t bytes[] = {'B',   'I',   'N',   'D',   LE(2), 1,    SYNB(0), INST(44),
                                  LE(3), 0x11,  LE(9), 1,     LE(1), 1,    LE(2),   LE(4),
                                  0x30,  LE(5), 0x20,  LE(6), 0x01,  1,    LE(1),   1,
                                  LE(2), 'D',   'E',   'B',   'G',   LE(0)};
  dfnet_bind_program_t *prog = NULL;
  char err[256];
  dfnet_status_t st = dfnet_bind_program_load(bytes, sizeof bytes, &prog, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s\n", err);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
  char *dump = dfnet_bind_program_dump(prog);
  assert_string_equal(dump,
                      "\n  Jump if fuchsia.BIND_PROTOCOL == 2 to ??\n  Abort\n  Label ??"
                      "\n  fuchsia.BIND_PROTOCOL == 2");
  free(dump);
  dfnet_bind_program_destroy(prog);
}

typedef struct bad_case {
  const char *name;
  const uint8_t *bytes;
  size_t len;
  const char *reason; /* substring of the rejection */
} bad_case;

#define BAD(n, r, ...)                              \
  static const uint8_t n##_bytes[] = {__VA_ARGS__}; \
  static const bad_case n = {#n, n##_bytes, sizeof n##_bytes, r}

BAD(truncated_header, "truncated", 'B', 'I', 'N', 'D', LE(2));
BAD(wrong_magic, "magic \"AIND\"", 'A', 'I', 'N', 'D', LE(2), 0, SYNB(0), INST(0));
BAD(wrong_version, "version 3", 'B', 'I', 'N', 'D', LE(3), 0, SYNB(0), INST(0));
BAD(bad_debug_flag, "debug flag 0x02", 'B', 'I', 'N', 'D', LE(2), 2, SYNB(0), INST(0));
BAD(symb_not_synb, "expected section magic \"SYNB\"", HEADER, 'S', 'Y', 'M', 'B', LE(0), INST(0));
BAD(symbol_section_too_big, "does not fit", HEADER, SYNB(100), INST(0));
BAD(symbol_ids_out_of_order, "out of order", HEADER, SYNB(6), LE(2), 'a', 0, INST(0));
BAD(symbol_id_zero, "out of order", HEADER, SYNB(6), LE(0), 'a', 0, INST(0));
BAD(symbol_id_truncated, "truncated symbol id", HEADER, SYNB(2), 1, 0, INST(0));
BAD(symbol_empty, "empty string", HEADER, SYNB(5), LE(1), 0, INST(0));
BAD(symbol_unterminated, "not NUL-terminated", HEADER, SYNB(6), LE(1), 'a', 'b', INST(0));
BAD(symbol_invalid_utf8, "UTF-8", HEADER, SYNB(7), LE(1), 0xc3, 0x28, 0, INST(0));
BAD(missing_instruction_section, "no instruction section", HEADER, SYNB(0));
BAD(wrong_instruction_magic, "found \"INSX\"", HEADER, SYNB(0), 'I', 'N', 'S', 'X', LE(0));
BAD(instruction_section_too_big, "does not fit", HEADER, SYNB(0), INST(12), 0x30);
BAD(trailing_bytes, "unexpected bytes after", HEADER, SYNB(0), INST(1), 0x30, 0x30);
BAD(unknown_opcode, "unknown opcode 0x40", HEADER, SYNB(0), INST(1), 0x40);
BAD(truncated_instruction, "truncated", HEADER, SYNB(0), INST(7), 0x01, 1, LE(1), 1);
/* Fuchsia instruction_decoder.rs test_invalid_value_type. */
BAD(unknown_value_type, "unknown value type 0x10", HEADER, SYNB(0), INST(11), 0x01, 0x01, 0, 0, 0,
    0x05, 0x10, 0, 0, 0, 0);
/* Fuchsia test_value_invalid_bool. */
BAD(bool_not_0_or_1, "bool value 16777216", HEADER, SYNB(0), INST(11), 0x01, 0x01, 0, 0, 0, 0x05,
    0x03, 0, 0, 0, 0x01);
/* Fuchsia test_value_string_missing_in_symbols. */
BAD(string_symbol_missing, "symbol 83886080 is not in the symbol table", HEADER, SYNB(0), INST(11),
    0x01, 0x02, 0, 0, 0, 0x05, 0x10, 0, 0, 0, 0);
BAD(enum_symbol_missing, "symbol 2 is not", HEADER, SYNB(6), LE(1), 'k', 0, INST(11), 0x01, 0,
    LE(1), 4, LE(2));
/* Fuchsia test_invalid_outofbounds_jump_offset. */
BAD(jump_past_end, "goes past the end", HEADER, SYNB(0), INST(24), 0x11, 0x01, 0, 0, 0, 0x01, 0, 0,
    0, 0x05, 0x01, 0x10, 0, 0, 0, 0x30, 0x20, 0x10, 0x02, 0, 0, 0, 0x30, 0x20);
BAD(jump_not_on_landing_pad, "does not land on a landing pad", HEADER, SYNB(0), INST(7), 0x10,
    LE(0), 0x30, 0x20);
BAD(jump_into_operand_byte_0x20, "does not land on a landing pad", HEADER, SYNB(0), INST(16), 0x10,
    LE(2), 0x01, 1, LE(0x20), 1, LE(0x20));
BAD(key_as_value, "a key cannot be a value", HEADER, SYNB(6), LE(1), 'k', 0, INST(11), 0x01, 1,
    LE(1), 0, LE(1));
BAD(bool_as_key, "a bool cannot be a key", HEADER, SYNB(0), INST(11), 0x01, 3, LE(1), 1, LE(1));
BAD(enum_as_key, "an enum value cannot be a key", HEADER, SYNB(6), LE(1), 'k', 0, INST(11), 0x01, 4,
    LE(1), 1, LE(1));
BAD(composite_no_device_name, "no device name", HEADER, SYNB(0), COMP(2), 0, 0);
BAD(composite_device_name_missing, "device name symbol 1", HEADER, SYNB(0), COMP(4), LE(1));
BAD(composite_no_nodes, "no nodes", HEADER, SYNB(6), LE(1), 'c', 0, COMP(4), LE(1));
BAD(composite_first_node_not_primary, "first node must be the primary", HEADER, SYNB(6), LE(1), 'c',
    0, COMP(13), LE(1), 0x51, LE(1), LE(0));
BAD(composite_two_primary_nodes, "more than one primary", HEADER, SYNB(6), LE(1), 'c', 0, COMP(22),
    LE(1), 0x50, LE(1), LE(0), 0x50, LE(1), LE(0));
BAD(composite_unknown_node_type, "unknown node type 0x53", HEADER, SYNB(6), LE(1), 'c', 0, COMP(22),
    LE(1), 0x50, LE(1), LE(0), 0x53, LE(1), LE(0));
BAD(composite_node_name_missing, "node name symbol 9", HEADER, SYNB(6), LE(1), 'c', 0, COMP(13),
    LE(1), 0x50, LE(9), LE(0));
BAD(composite_node_too_big, "does not fit", HEADER, SYNB(6), LE(1), 'c', 0, COMP(14), LE(1), 0x50,
    LE(1), LE(2), 0x30);
BAD(composite_truncated_node_header, "truncated node header", HEADER, SYNB(6), LE(1), 'c', 0,
    COMP(9), LE(1), 0x50, LE(1));
/* Fuchsia test_invalid_value_type_composite_primary. */
BAD(composite_bad_value_in_node, "unknown value type 0x05", HEADER, SYNB(6), LE(1), 'c', 0,
    COMP(24), LE(1), 0x50, LE(1), LE(11), 0x02, 0x01, 0, 0, 0, 0x02, 0x05, 0, 0, 0, 0x10);
BAD(debug_without_debug_section, "no room for the debug (DEBG) section", 'B', 'I', 'N', 'D', LE(2),
    1, SYNB(0), INST(0));
BAD(debug_section_wrong_size, "debug section size", 'B', 'I', 'N', 'D', LE(2), 1, SYNB(0), INST(0),
    'D', 'E', 'B', 'G', LE(0), 0);

static const bad_case *const k_bad[] = {
    &truncated_header,
    &wrong_magic,
    &wrong_version,
    &bad_debug_flag,
    &symb_not_synb,
    &symbol_section_too_big,
    &symbol_ids_out_of_order,
    &symbol_id_zero,
    &symbol_id_truncated,
    &symbol_empty,
    &symbol_unterminated,
    &symbol_invalid_utf8,
    &missing_instruction_section,
    &wrong_instruction_magic,
    &instruction_section_too_big,
    &trailing_bytes,
    &unknown_opcode,
    &truncated_instruction,
    &unknown_value_type,
    &bool_not_0_or_1,
    &string_symbol_missing,
    &enum_symbol_missing,
    &jump_past_end,
    &jump_not_on_landing_pad,
    &jump_into_operand_byte_0x20,
    &key_as_value,
    &bool_as_key,
    &enum_as_key,
    &composite_no_device_name,
    &composite_device_name_missing,
    &composite_no_nodes,
    &composite_first_node_not_primary,
    &composite_two_primary_nodes,
    &composite_unknown_node_type,
    &composite_node_name_missing,
    &composite_node_too_big,
    &composite_truncated_node_header,
    &composite_bad_value_in_node,
    &debug_without_debug_section,
    &debug_section_wrong_size,
};

static void run_bad_case(void **state) {
  const bad_case *c = *state;
  /* Load from a heap copy of exactly len bytes so ASan sees any overread. */
  uint8_t *copy = malloc(c->len);
  memcpy(copy, c->bytes, c->len);
  dfnet_bind_program_t *prog = (dfnet_bind_program_t *)copy; /* must be reset to NULL */
  char err[256];
  dfnet_status_t st = dfnet_bind_program_load(copy, c->len, &prog, err, sizeof err);
  if (st != DFNET_STATUS_INVALID_ARGUMENT || strstr(err, c->reason) == NULL) {
    fprintf(stderr, "case %s: status %s, reason \"%s\", want \"%s\"\n", c->name,
            dfnet_status_str(st), err, c->reason);
  }
  assert_int_equal(st, DFNET_STATUS_INVALID_ARGUMENT);
  assert_null(prog);
  assert_non_null(strstr(err, c->reason));
  /* No shorter prefix crashes the loader either. */
  for (size_t n = 0; n < c->len; n++) {
    if (dfnet_bind_program_load(copy, n, &prog, NULL, 0) == DFNET_STATUS_OK) {
      dfnet_bind_program_destroy(prog);
    }
  }
  free(copy);
}

/* Every prefix of the valid spec vector is rejected; the whole is accepted. */
static void test_spec_vector_prefixes_rejected(void **state) {
  (void)state;
  for (size_t n = 0; n < sizeof k_spec_vector; n++) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, k_spec_vector, n);
    dfnet_bind_program_t *prog = NULL;
    assert_int_equal(dfnet_bind_program_load(copy, n, &prog, NULL, 0),
                     DFNET_STATUS_INVALID_ARGUMENT);
    assert_null(prog);
    free(copy);
  }
}

int main(void) {
  static const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_vector_decodes_and_dumps),
      cmocka_unit_test(test_fuchsia_dump_vector),
      cmocka_unit_test(test_dump_value_types),
      cmocka_unit_test(test_debug_flag_program),
      cmocka_unit_test(test_spec_vector_prefixes_rejected),
  };
  size_t n = sizeof k_bad / sizeof k_bad[0];
  struct CMUnitTest *bad = calloc(n, sizeof(*bad));
  for (size_t i = 0; i < n; i++) {
    bad[i].name = k_bad[i]->name;
    bad[i].test_func = run_bad_case;
    bad[i].initial_state = (void *)k_bad[i];
  }
  int failed = cmocka_run_group_tests_name("program", tests, NULL, NULL);
  failed += _cmocka_run_group_tests("malformed_bytecode", bad, n, NULL, NULL);
  free(bad);
  return failed;
}
