/* bind matcher: docs/spec/bind.md "Matching" (Fuchsia interpreter/match_bind.rs) and the trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind.h"
#include "dfnet/bind_keys.h"

static const char k_lib[] =
    "library test.lib;\n"
    "string name;\n"
    "enum kind { X, Y };\n"
    "bool flag;\n"
    "uint count;\n";

static dfnet_bind_program_t *compile_program(const char *rules) {
  dfnet_bind_source_t lib = {"test.lib.bind", k_lib, strlen(k_lib)};
  dfnet_bind_compile_options_t opts = {&lib, 1, NULL, 0, false};
  dfnet_bind_source_t src = {"rules.bind", rules, strlen(rules)};
  uint8_t *bytes = NULL;
  size_t len = 0;
  char *err = NULL;
  dfnet_status_t st = dfnet_bind_compile(&src, &opts, &bytes, &len, &err);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "%s", err);
  }
  assert_int_equal(st, DFNET_STATUS_OK);
  dfnet_bind_program_t *prog = NULL;
  assert_int_equal(dfnet_bind_program_load(bytes, len, &prog, NULL, 0), DFNET_STATUS_OK);
  free(bytes);
  return prog;
}

static dfnet_bind_property_t uint_prop(uint32_t key, uint32_t value) {
  dfnet_bind_property_t p = {key, NULL, DFNET_BIND_VALUE_UINT, value, NULL, false};
  return p;
}

static dfnet_bind_property_t str_prop(const char *key, dfnet_bind_value_type_t type,
                                      const char *value) {
  dfnet_bind_property_t p = {0, key, type, 0, value, false};
  return p;
}

static dfnet_bind_result_t run(const dfnet_bind_program_t *prog, const dfnet_bind_property_t *props,
                               size_t n, dfnet_bind_trace_t *trace) {
  dfnet_bind_node_t node;
  assert_int_equal(dfnet_bind_node_init(&node, props, n), DFNET_STATUS_OK);
  return dfnet_bind_program_match(prog, &node, trace);
}

static void test_integer_keys_and_trace(void **state) {
  (void)state;
  dfnet_bind_program_t *prog =
      compile_program("fuchsia.BIND_PROTOCOL == 31;\nfuchsia.BIND_PCI_DID == 0x1044;\n");
  dfnet_bind_property_t props[] = {uint_prop(DFNET_BIND_PROTOCOL, 31),
                                   uint_prop(DFNET_BIND_PCI_DID, 0x1041)};
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, props, 2, &t), DFNET_BIND_NO_MATCH);
  assert_false(t.at_end);
  assert_int_equal(t.offset, 11);
  assert_int_equal(t.file_offset, 25 + 11);
  assert_string_equal(t.instruction, "fuchsia.BIND_PCI_DID == 4164");
  assert_string_equal(t.reason, "fuchsia.BIND_PCI_DID is 0x1041, want 0x1044");
  props[1].int_value = 0x1044;
  assert_int_equal(run(prog, props, 2, &t), DFNET_BIND_MATCH);
  assert_true(t.at_end);
  assert_int_equal(run(prog, props, 2, NULL), DFNET_BIND_MATCH);
  dfnet_bind_program_destroy(prog);
}

/* A number key falls back to the string key with the deprecated name; the integer key wins
 * when both are present. */
static void test_deprecated_key_fallback(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program("fuchsia.BIND_PROTOCOL == 31;");
  dfnet_bind_property_t by_name[] = {
      {0, "fuchsia.BIND_PROTOCOL", DFNET_BIND_VALUE_UINT, 31, NULL, false}};
  assert_int_equal(run(prog, by_name, 1, NULL), DFNET_BIND_MATCH);
  dfnet_bind_property_t both[] = {uint_prop(DFNET_BIND_PROTOCOL, 30), by_name[0]};
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, both, 2, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.reason, "fuchsia.BIND_PROTOCOL is 0x1e, want 0x1f");
  dfnet_bind_program_destroy(prog);
}

/* A missing property makes == false and != true. */
static void test_missing_property(void **state) {
  (void)state;
  dfnet_bind_program_t *eq = compile_program("fuchsia.BIND_PCI_VID == 1;");
  dfnet_bind_program_t *ne = compile_program("fuchsia.BIND_PCI_VID != 1;");
  dfnet_bind_trace_t t;
  assert_int_equal(run(eq, NULL, 0, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.reason, "fuchsia.BIND_PCI_VID: property missing");
  assert_int_equal(run(ne, NULL, 0, &t), DFNET_BIND_MATCH);
  dfnet_bind_program_destroy(eq);
  dfnet_bind_program_destroy(ne);
}

/* A rule that needs a service offer the node did not get says so (issue 18: `bind why` on a
 * child that was offered nothing). */
static void test_missing_offer_is_named(void **state) {
  (void)state;
  static const char svc[] = "library test.svc;\nenum Echo { ZirconTransport, DriverTransport };\n";
  dfnet_bind_source_t lib = {"test.svc.bind", svc, strlen(svc)};
  dfnet_bind_compile_options_t opts = {&lib, 1, NULL, 0, false};
  static const char rules[] = "using test.svc;\ntest.svc.Echo == test.svc.Echo.DriverTransport;\n";
  dfnet_bind_source_t src = {"rules.bind", rules, strlen(rules)};
  uint8_t *bytes = NULL;
  size_t len = 0;
  char *err = NULL;
  assert_int_equal(dfnet_bind_compile(&src, &opts, &bytes, &len, &err), DFNET_STATUS_OK);
  dfnet_bind_program_t *prog = NULL;
  assert_int_equal(dfnet_bind_program_load(bytes, len, &prog, NULL, 0), DFNET_STATUS_OK);
  free(bytes);
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, NULL, 0, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.reason,
                      "test.svc.Echo: property missing: the node was not offered test.svc.Echo "
                      "(its parent's driver offers it to the child it adds)");
  dfnet_bind_property_t offered[] = {
      str_prop("test.svc.Echo", DFNET_BIND_VALUE_STRING, "test.svc.Echo.DriverTransport")};
  assert_int_equal(run(prog, offered, 1, &t), DFNET_BIND_MATCH);
  dfnet_bind_program_destroy(prog);
  /* any other missing string key keeps the plain reason */
  prog = compile_program("using test.lib;\ntest.lib.name == \"x\";\n");
  assert_int_equal(run(prog, NULL, 0, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.reason, "test.lib.name: property missing");
  dfnet_bind_program_destroy(prog);
}

/* Enum and string values compare equal when their text is. */
static void test_enum_equals_string_by_text(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program(
      "using test.lib;\ntest.lib.kind == test.lib.kind.X;\ntest.lib.name == \"test.lib.kind.Y\";");
  dfnet_bind_property_t props[] = {
      str_prop("test.lib.kind", DFNET_BIND_VALUE_STRING, "test.lib.kind.X"),
      str_prop("test.lib.name", DFNET_BIND_VALUE_ENUM, "test.lib.kind.Y")};
  assert_int_equal(run(prog, props, 2, NULL), DFNET_BIND_MATCH);
  props[0].type = DFNET_BIND_VALUE_ENUM;
  assert_int_equal(run(prog, props, 2, NULL), DFNET_BIND_MATCH);
  props[0].str_value = "test.lib.kind.Y";
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, props, 2, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.instruction, "Key(test.lib.kind) == Enum(test.lib.kind.X)");
  assert_string_equal(t.reason, "test.lib.kind is test.lib.kind.Y, want test.lib.kind.X");
  dfnet_bind_program_destroy(prog);
}

/* Any other type mismatch is an error, not a silent no-match. */
static void test_type_mismatch_is_error(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program("using test.lib;\ntest.lib.count == 3;");
  dfnet_bind_property_t props[] = {str_prop("test.lib.count", DFNET_BIND_VALUE_STRING, "3")};
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, props, 1, &t), DFNET_BIND_ERROR);
  assert_non_null(strstr(t.reason, "type mismatch"));
  props[0].type = DFNET_BIND_VALUE_BOOL;
  assert_int_equal(run(prog, props, 1, &t), DFNET_BIND_ERROR);
  dfnet_bind_program_destroy(prog);
}

static void test_bool_values(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program("using test.lib;\ntest.lib.flag == true;");
  dfnet_bind_property_t props[] = {{0, "test.lib.flag", DFNET_BIND_VALUE_BOOL, 0, NULL, true}};
  assert_int_equal(run(prog, props, 1, NULL), DFNET_BIND_MATCH);
  props[0].bool_value = false;
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, props, 1, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.reason, "test.lib.flag is false, want true");
  dfnet_bind_program_destroy(prog);
}

static void test_accept_list(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program("accept fuchsia.BIND_USB_VID { 1, 2, 3 }");
  dfnet_bind_property_t props[] = {uint_prop(DFNET_BIND_USB_VID, 2)};
  assert_int_equal(run(prog, props, 1, NULL), DFNET_BIND_MATCH);
  props[0].int_value = 9;
  dfnet_bind_trace_t t;
  assert_int_equal(run(prog, props, 1, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.instruction, "Abort");
  assert_int_equal(t.offset, 45);
  assert_string_equal(t.reason, "fuchsia.BIND_USB_VID is 0x9, not in the accept list");
  assert_int_equal(run(prog, NULL, 0, &t), DFNET_BIND_NO_MATCH);
  assert_string_equal(t.reason, "fuchsia.BIND_USB_VID: property missing (accept list)");
  dfnet_bind_program_destroy(prog);
}

static void test_if_else_if_else(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program(
      "if fuchsia.BIND_PROTOCOL == 1 { fuchsia.BIND_USB_VID == 10; }\n"
      "else if fuchsia.BIND_PROTOCOL != 2 { fuchsia.BIND_USB_VID == 20; }\n"
      "else { false; }");
  struct {
    uint32_t protocol, vid;
    dfnet_bind_result_t want;
  } cases[] = {{1, 10, DFNET_BIND_MATCH},    {1, 20, DFNET_BIND_NO_MATCH},
               {3, 20, DFNET_BIND_MATCH},    {3, 10, DFNET_BIND_NO_MATCH},
               {2, 10, DFNET_BIND_NO_MATCH}, {2, 20, DFNET_BIND_NO_MATCH}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dfnet_bind_property_t props[] = {uint_prop(DFNET_BIND_PROTOCOL, cases[i].protocol),
                                     uint_prop(DFNET_BIND_USB_VID, cases[i].vid)};
    dfnet_bind_trace_t t;
    assert_int_equal(run(prog, props, 2, &t), cases[i].want);
    if (cases[i].protocol == 2) {
      assert_string_equal(t.instruction, "Abort");
      assert_string_equal(t.reason, "the rules abort here (false)");
    }
  }
  dfnet_bind_program_destroy(prog);
}

static void test_composite_nodes(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program(
      "composite c;\nusing test.lib;\n"
      "primary node \"p\" { fuchsia.BIND_PROTOCOL == 1; }\n"
      "optional node \"o\" { test.lib.flag == true; }\n"
      "node \"a\" { fuchsia.BIND_PROTOCOL == 2; }\n");
  assert_int_equal(dfnet_bind_program_node_count(prog), 3);
  const char *name;
  dfnet_bind_node_type_t type;
  assert_int_equal(dfnet_bind_program_node_info(prog, 1, &name, &type), DFNET_STATUS_OK);
  assert_string_equal(name, "a");
  assert_int_equal(type, DFNET_BIND_NODE_ADDITIONAL);
  assert_int_equal(dfnet_bind_program_node_info(prog, 2, &name, &type), DFNET_STATUS_OK);
  assert_string_equal(name, "o");
  assert_int_equal(type, DFNET_BIND_NODE_OPTIONAL);
  dfnet_bind_property_t props[] = {uint_prop(DFNET_BIND_PROTOCOL, 2)};
  dfnet_bind_node_t node;
  assert_int_equal(dfnet_bind_node_init(&node, props, 1), DFNET_STATUS_OK);
  assert_int_equal(dfnet_bind_program_match_composite_node(prog, 0, &node, NULL),
                   DFNET_BIND_NO_MATCH);
  assert_int_equal(dfnet_bind_program_match_composite_node(prog, 1, &node, NULL), DFNET_BIND_MATCH);
  assert_int_equal(dfnet_bind_program_match_composite_node(prog, 2, &node, NULL),
                   DFNET_BIND_NO_MATCH);
  dfnet_bind_trace_t t;
  assert_int_equal(dfnet_bind_program_match_composite_node(prog, 3, &node, &t), DFNET_BIND_ERROR);
  assert_int_equal(dfnet_bind_program_match(prog, &node, &t), DFNET_BIND_ERROR);
  assert_non_null(strstr(t.reason, "composite"));
  dfnet_bind_program_destroy(prog);
}

static void test_node_init_rejects_bad_properties(void **state) {
  (void)state;
  dfnet_bind_node_t node;
  dfnet_bind_property_t many[DFNET_BIND_NODE_MAX_PROPERTIES + 1];
  memset(many, 0, sizeof many);
  for (size_t i = 0; i < DFNET_BIND_NODE_MAX_PROPERTIES + 1; i++) {
    many[i] = uint_prop((uint32_t)i, 0);
  }
  assert_int_equal(dfnet_bind_node_init(&node, many, DFNET_BIND_NODE_MAX_PROPERTIES),
                   DFNET_STATUS_OK);
  assert_int_equal(dfnet_bind_node_init(&node, many, DFNET_BIND_NODE_MAX_PROPERTIES + 1),
                   DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_bind_property_t null_string[] = {str_prop("k", DFNET_BIND_VALUE_STRING, NULL)};
  assert_int_equal(dfnet_bind_node_init(&node, null_string, 1), DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_bind_property_t bad_type[] = {str_prop("k", (dfnet_bind_value_type_t)9, "v")};
  assert_int_equal(dfnet_bind_node_init(&node, bad_type, 1), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(node.count, 0);
}

static void test_property_args(void **state) {
  (void)state;
  char a0[] = "fuchsia.BIND_PCI_VID=0x1af4";
  char a1[] = "test.lib.name=\"hello\"";
  char a2[] = "test.lib.flag=true";
  char a3[] = "test.lib.kind=test.lib.kind.X";
  char a4[] = "count=42";
  char *args[] = {a0, a1, a2, a3, a4};
  dfnet_bind_property_t props[5];
  char err[128];
  assert_int_equal(dfnet_bind_parse_property_args(args, 5, props, 5, err, sizeof err),
                   DFNET_STATUS_OK);
  assert_null(props[0].str_key);
  assert_int_equal(props[0].int_key, DFNET_BIND_PCI_VID);
  assert_int_equal(props[0].int_value, 0x1af4);
  assert_string_equal(props[1].str_value, "hello");
  assert_int_equal(props[1].type, DFNET_BIND_VALUE_STRING);
  assert_true(props[2].bool_value);
  assert_int_equal(props[3].type, DFNET_BIND_VALUE_ENUM);
  assert_string_equal(props[3].str_key, "test.lib.kind");
  assert_int_equal(props[4].int_value, 42);
  char b0[] = "novalue";
  char b1[] = "k=0x1ffffffff";
  char b2[] = "k=\"open";
  char *bad[][1] = {{b0}, {b1}, {b2}};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(dfnet_bind_parse_property_args(bad[i], 1, props, 5, err, sizeof err),
                     DFNET_STATUS_INVALID_ARGUMENT);
  }
  assert_int_equal(dfnet_bind_parse_property_args(args, 5, props, 4, err, sizeof err),
                   DFNET_STATUS_OUT_OF_RANGE);
  /* A misspelt deprecated key is refused, not taken for a string key no rule tests. */
  char typo[] = "fuchsia.BIND_PCI_VDI=0x1af4";
  char *typo_args[] = {typo};
  assert_int_equal(dfnet_bind_parse_property_args(typo_args, 1, props, 5, err, sizeof err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_string_equal(err,
                      "fuchsia.BIND_PCI_VDI is not a deprecated key of fuchsia (did you "
                      "mean 'fuchsia.BIND_PCI_VID'?)");
}

/* Readers share one program and one node from several threads. */
typedef struct shared {
  const dfnet_bind_program_t *prog;
  const dfnet_bind_node_t *node;
  int mismatches;
} shared;

static void *reader(void *arg) {
  shared *s = arg;
  for (int i = 0; i < 20000; i++) {
    dfnet_bind_trace_t t;
    if (dfnet_bind_program_match(s->prog, s->node, (i & 1) ? &t : NULL) != DFNET_BIND_MATCH) {
      s->mismatches++;
    }
  }
  return NULL;
}

static void test_concurrent_readers(void **state) {
  (void)state;
  dfnet_bind_program_t *prog = compile_program(
      "using test.lib;\nfuchsia.BIND_PROTOCOL == 5;\ntest.lib.kind == test.lib.kind.Y;");
  dfnet_bind_property_t props[] = {
      uint_prop(DFNET_BIND_PROTOCOL, 5),
      str_prop("test.lib.kind", DFNET_BIND_VALUE_ENUM, "test.lib.kind.Y")};
  dfnet_bind_node_t node;
  assert_int_equal(dfnet_bind_node_init(&node, props, 2), DFNET_STATUS_OK);
  pthread_t th[4];
  shared s[4];
  for (int i = 0; i < 4; i++) {
    s[i] = (shared){prog, &node, 0};
    assert_int_equal(pthread_create(&th[i], NULL, reader, &s[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(s[i].mismatches, 0);
  }
  dfnet_bind_program_destroy(prog);
}

int main(void) {
  static const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_integer_keys_and_trace),
      cmocka_unit_test(test_deprecated_key_fallback),
      cmocka_unit_test(test_missing_property),
      cmocka_unit_test(test_missing_offer_is_named),
      cmocka_unit_test(test_enum_equals_string_by_text),
      cmocka_unit_test(test_type_mismatch_is_error),
      cmocka_unit_test(test_bool_values),
      cmocka_unit_test(test_accept_list),
      cmocka_unit_test(test_if_else_if_else),
      cmocka_unit_test(test_composite_nodes),
      cmocka_unit_test(test_node_init_rejects_bad_properties),
      cmocka_unit_test(test_property_args),
      cmocka_unit_test(test_concurrent_readers),
  };
  return cmocka_run_group_tests_name("bind_match", tests, NULL, NULL);
}
