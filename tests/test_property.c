/* lib/property.h: round trips between the wire, bind, driver and client forms of a node
 * property, for every value type and both kinds of key; values without a type; strings cut
 * at the wire's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "lib/property.h"

/* One property of each value type, under an integer key and under a string key. */
typedef struct prop_case {
  const char *name;
  dfnet_bind_property_t bind;
  dfnet_property_type_t driver_type;
  dfnet_client_value_type_t client_type;
  pb_size_t wire_tag, rule_tag;
} prop_case_t;

static const prop_case_t cases[] = {
    {"uint, integer key",
     {.int_key = 1, .type = DFNET_BIND_VALUE_UINT, .int_value = 0x31},
     DFNET_PROPERTY_UINT,
     DFNET_CLIENT_VALUE_INT,
     dfnet_v1_NodeProperty_int_value_tag,
     dfnet_v1_PropertyValue_int_value_tag},
    {"string, string key",
     {.str_key = "fuchsia.test.NAME", .type = DFNET_BIND_VALUE_STRING, .str_value = "wagtail"},
     DFNET_PROPERTY_STRING,
     DFNET_CLIENT_VALUE_STRING,
     dfnet_v1_NodeProperty_str_value_tag,
     dfnet_v1_PropertyValue_str_value_tag},
    {"bool, string key",
     {.str_key = "fuchsia.hardware.pci.Device", .type = DFNET_BIND_VALUE_BOOL, .bool_value = true},
     DFNET_PROPERTY_BOOL,
     DFNET_CLIENT_VALUE_BOOL,
     dfnet_v1_NodeProperty_bool_value_tag,
     dfnet_v1_PropertyValue_bool_value_tag},
    {"bool false, integer key",
     {.int_key = 0x0201, .type = DFNET_BIND_VALUE_BOOL, .bool_value = false},
     DFNET_PROPERTY_BOOL,
     DFNET_CLIENT_VALUE_BOOL,
     dfnet_v1_NodeProperty_bool_value_tag,
     dfnet_v1_PropertyValue_bool_value_tag},
    {"enum, integer key",
     {.int_key = 2, .type = DFNET_BIND_VALUE_ENUM, .str_value = "fuchsia.usb.BIND_PROTOCOL.DEVICE"},
     DFNET_PROPERTY_ENUM,
     DFNET_CLIENT_VALUE_ENUM,
     dfnet_v1_NodeProperty_enum_value_tag,
     dfnet_v1_PropertyValue_enum_value_tag},
    {"uint 0, string key",
     {.str_key = "k", .type = DFNET_BIND_VALUE_UINT, .int_value = 0},
     DFNET_PROPERTY_UINT,
     DFNET_CLIENT_VALUE_INT,
     dfnet_v1_NodeProperty_int_value_tag,
     dfnet_v1_PropertyValue_int_value_tag},
};

static void assert_same_value(const dfnet_bind_property_t *a, const dfnet_bind_property_t *b) {
  assert_int_equal(a->type, b->type);
  assert_int_equal(a->int_value, b->int_value);
  assert_int_equal(a->bool_value, b->bool_value);
  if (a->str_value == NULL)
    assert_null(b->str_value);
  else
    assert_string_equal(a->str_value, b->str_value);
}

static void assert_same(const dfnet_bind_property_t *a, const dfnet_bind_property_t *b) {
  if (a->str_key == NULL) {
    assert_null(b->str_key);
    assert_int_equal(a->int_key, b->int_key);
  } else {
    assert_string_equal(a->str_key, b->str_key);
    assert_int_equal(b->int_key, 0);
  }
  assert_same_value(a, b);
}

/* bind -> wire -> bind, and its value alone through a bind rule's value. */
static void wire_round_trip(const prop_case_t *c) {
  dfnet_v1_NodeProperty w;
  dfnet_v1_PropertyValue v;
  dfnet_bind_property_t back;
  assert_int_equal(dfnet_property_to_wire(&c->bind, &w), DFNET_PROPERTY_WIRE_OK);
  assert_int_equal(w.which_value, c->wire_tag);
  assert_int_equal(w.which_key, c->bind.str_key ? dfnet_v1_NodeProperty_str_key_tag
                                                : dfnet_v1_NodeProperty_int_key_tag);
  assert_true(dfnet_property_from_wire(&w, &back));
  assert_same(&c->bind, &back);
  if (back.str_value != NULL) /* borrowed from the wire struct */
    assert_ptr_equal(back.str_value, w.value.str_value);
  assert_int_equal(dfnet_property_value_to_wire(&c->bind, &v), DFNET_PROPERTY_WIRE_OK);
  assert_int_equal(v.which_value, c->rule_tag);
  assert_true(dfnet_property_value_from_wire(&v, &back));
  assert_null(back.str_key);
  assert_int_equal(back.int_key, 0);
  assert_same_value(&c->bind, &back);
}

/* bind -> driver -> bind and bind -> client -> bind, strings borrowed. */
static void api_round_trips(const prop_case_t *c) {
  dfnet_node_property_t d;
  dfnet_client_property_t cp;
  dfnet_bind_property_t back;
  dfnet_property_to_driver(&c->bind, &d);
  dfnet_property_to_client(&c->bind, &cp);
  assert_int_equal(d.type, c->driver_type);
  assert_int_equal(cp.type, c->client_type);
  assert_ptr_equal(d.str_key, c->bind.str_key);
  assert_ptr_equal(cp.str_key, c->bind.str_key);
  assert_ptr_equal(d.value_str, c->bind.str_value);
  assert_ptr_equal(cp.str_value, c->bind.str_value);
  dfnet_property_from_driver(&d, &back);
  assert_same(&c->bind, &back);
  dfnet_property_from_client(&cp, &back);
  assert_same(&c->bind, &back);
}

/* wire -> bind -> driver -> bind -> client -> bind -> wire: the four forms in a ring. */
static void ring_of_four(const prop_case_t *c) {
  dfnet_v1_NodeProperty w, w2;
  dfnet_bind_property_t b;
  dfnet_node_property_t d;
  dfnet_client_property_t cp;
  assert_int_equal(dfnet_property_to_wire(&c->bind, &w), DFNET_PROPERTY_WIRE_OK);
  assert_true(dfnet_property_from_wire(&w, &b));
  dfnet_property_to_driver(&b, &d);
  dfnet_property_from_driver(&d, &b);
  dfnet_property_to_client(&b, &cp);
  dfnet_property_from_client(&cp, &b);
  assert_int_equal(dfnet_property_to_wire(&b, &w2), DFNET_PROPERTY_WIRE_OK);
  assert_memory_equal(&w, &w2, sizeof w);
}

/* Every case, every value type and both kinds of key, through every form. */
static void test_round_trips(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    print_message("%s\n", cases[i].name);
    wire_round_trip(&cases[i]);
    api_round_trips(&cases[i]);
    ring_of_four(&cases[i]);
  }
}

/* Only the field of the value's type survives; a string key's int_key is 0. */
static void test_other_fields_cleared(void **state) {
  (void)state;
  dfnet_client_property_t cp = {.str_key = "k",
                                .int_key = 7,
                                .type = DFNET_CLIENT_VALUE_INT,
                                .int_value = 5,
                                .bool_value = true,
                                .str_value = "stray"};
  dfnet_bind_property_t b;
  dfnet_property_from_client(&cp, &b);
  assert_int_equal(b.int_key, 0);
  assert_int_equal(b.type, DFNET_BIND_VALUE_UINT);
  assert_int_equal(b.int_value, 5);
  assert_false(b.bool_value);
  assert_null(b.str_value);
  dfnet_node_property_t d = {.type = DFNET_PROPERTY_STRING, .value_uint = 9, .value_str = "s"};
  dfnet_property_from_driver(&d, &b);
  assert_int_equal(b.type, DFNET_BIND_VALUE_STRING);
  assert_int_equal(b.int_value, 0);
  assert_string_equal(b.str_value, "s");
}

/* No value: a wire value not set, a client NONE, a type in no table. */
static void test_no_value(void **state) {
  (void)state;
  dfnet_v1_NodeProperty w;
  memset(&w, 0, sizeof w);
  w.which_key = dfnet_v1_NodeProperty_int_key_tag;
  w.key.int_key = 3;
  dfnet_bind_property_t b;
  assert_false(dfnet_property_from_wire(&w, &b));
  assert_int_equal(b.type, DFNET_PROPERTY_NO_VALUE);
  assert_int_equal(b.int_key, 3);
  dfnet_v1_PropertyValue v;
  memset(&v, 0, sizeof v);
  assert_false(dfnet_property_value_from_wire(&v, &b));

  dfnet_client_property_t cp;
  dfnet_property_to_client(&b, &cp);
  assert_int_equal(cp.type, DFNET_CLIENT_VALUE_NONE);
  dfnet_node_property_t d;
  dfnet_property_to_driver(&b, &d);
  assert_int_equal(d.type, DFNET_PROPERTY_UINT);
  assert_int_equal(d.value_uint, 0);
  assert_int_equal(dfnet_property_to_wire(&b, &w), DFNET_PROPERTY_WIRE_NO_VALUE);
  assert_int_equal(w.which_value, 0);
  assert_int_equal(dfnet_property_value_to_wire(&b, &v), DFNET_PROPERTY_WIRE_NO_VALUE);
  assert_int_equal(v.which_value, 0);

  cp = (dfnet_client_property_t){.type = (dfnet_client_value_type_t)9, .int_value = 1};
  dfnet_property_from_client(&cp, &b);
  assert_int_equal(b.type, DFNET_PROPERTY_NO_VALUE);
  assert_int_equal(b.int_value, 0);
  d = (dfnet_node_property_t){.type = (dfnet_property_type_t)4};
  dfnet_property_from_driver(&d, &b);
  assert_int_equal(b.type, DFNET_PROPERTY_NO_VALUE);
  b.type = (dfnet_bind_value_type_t)5;
  assert_int_equal(dfnet_property_to_wire(&b, &w), DFNET_PROPERTY_WIRE_NO_VALUE);
}

/* Strings over the wire's bounds are cut to them, and said so: the key first. */
static void test_cut_at_the_bounds(void **state) {
  (void)state;
  char key[sizeof((dfnet_v1_NodeProperty *)0)->key.str_key + 1];
  char value[sizeof((dfnet_v1_NodeProperty *)0)->value.str_value + 1];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = '\0';
  memset(value, 'v', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  dfnet_v1_NodeProperty w;
  dfnet_bind_property_t b = {.str_key = key, .type = DFNET_BIND_VALUE_ENUM, .str_value = value};
  assert_int_equal(dfnet_property_to_wire(&b, &w), DFNET_PROPERTY_WIRE_KEY_CUT);
  assert_int_equal(strlen(w.key.str_key), sizeof w.key.str_key - 1);
  assert_int_equal(strlen(w.value.enum_value), sizeof w.value.enum_value - 1);
  key[sizeof key - 2] = '\0'; /* fits exactly */
  assert_int_equal(dfnet_property_to_wire(&b, &w), DFNET_PROPERTY_WIRE_VALUE_CUT);
  assert_string_equal(w.key.str_key, key);
  value[sizeof value - 2] = '\0';
  assert_int_equal(dfnet_property_to_wire(&b, &w), DFNET_PROPERTY_WIRE_OK);
  assert_string_equal(w.value.enum_value, value);

  dfnet_v1_PropertyValue v; /* a bind rule's strings are shorter */
  assert_int_equal(dfnet_property_value_to_wire(&b, &v), DFNET_PROPERTY_WIRE_VALUE_CUT);
  assert_int_equal(strlen(v.value.enum_value), sizeof v.value.enum_value - 1);
  b.str_value = NULL; /* NULL is "" */
  assert_int_equal(dfnet_property_value_to_wire(&b, &v), DFNET_PROPERTY_WIRE_OK);
  assert_string_equal(v.value.enum_value, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_other_fields_cleared),
      cmocka_unit_test(test_no_value),
      cmocka_unit_test(test_cut_at_the_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
