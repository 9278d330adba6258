/* manager/topology: node DAG, names, properties, offers, class paths (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "manager/topology.h"

static dfnet_v1_NodeProperty prop_int(uint32_t key, uint32_t v) {
  dfnet_v1_NodeProperty p = {0};
  p.which_key = dfnet_v1_NodeProperty_int_key_tag;
  p.key.int_key = key;
  p.which_value = dfnet_v1_NodeProperty_int_value_tag;
  p.value.int_value = v;
  return p;
}

static dfnet_v1_NodeProperty prop_str(const char *key, const char *v) {
  dfnet_v1_NodeProperty p = {0};
  p.which_key = dfnet_v1_NodeProperty_str_key_tag;
  snprintf(p.key.str_key, sizeof p.key.str_key, "%s", key);
  p.which_value = dfnet_v1_NodeProperty_str_value_tag;
  snprintf(p.value.str_value, sizeof p.value.str_value, "%s", v);
  return p;
}

static topology_node_t *add(topology_t *t, topology_node_t *parent, const char *name,
                            const dfnet_v1_NodeProperty *props, size_t n, dfnet_status_t want) {
  topology_add_args_t a = {.name = name, .props = props, .prop_count = n, .host_id = 1};
  topology_node_t *out = NULL;
  char err[256] = "";
  dfnet_status_t st = topology__add(t, parent, &a, &out, err, sizeof err);
  if (st != want)
    fail_msg("add %s: got %s (%s), want %s", name, dfnet_status_str(st), err,
             dfnet_status_str(want));
  return out;
}

static void test_names_and_monikers(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.lab-a", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *pci = add(&t, root, "pci", NULL, 0, DFNET_STATUS_OK);
  assert_string_equal(pci->moniker, "dev.lab-a.pci");
  assert_string_equal(topology__name(pci), "pci");
  assert_ptr_equal(topology__find(&t, "dev.lab-a.pci"), pci);
  add(&t, root, "pci", NULL, 0, DFNET_STATUS_ALREADY_EXISTS);
  add(&t, root, "a.b", NULL, 0, DFNET_STATUS_INVALID_ARGUMENT);
  add(&t, root, "", NULL, 0, DFNET_STATUS_INVALID_ARGUMENT);
  char longname[200];
  memset(longname, 'x', 129);
  longname[129] = 0;
  add(&t, root, longname, NULL, 0, DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(t.count, 2);
  topology__remove(&t, pci);
  assert_null(topology__find(&t, "dev.lab-a.pci"));
  assert_int_equal(root->child_count, 0);
  topology__destroy(&t);
}

static void test_property_checks(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.h", NULL, 0, DFNET_STATUS_OK);
  dfnet_v1_NodeProperty dup[2] = {prop_int(0x100, 1), prop_int(0x100, 2)};
  add(&t, root, "dup", dup, 2, DFNET_STATUS_INVALID_ARGUMENT);
  /* The integer key and its deprecated string name are the same key. */
  dfnet_v1_NodeProperty alias[2] = {prop_int(0x100, 1), prop_str("fuchsia.BIND_PCI_VID", "x")};
  add(&t, root, "alias", alias, 2, DFNET_STATUS_INVALID_ARGUMENT);
  dfnet_v1_NodeProperty many[65];
  for (int i = 0; i < 65; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    many[i] = prop_str(k, "v");
  }
  add(&t, root, "many", many, 65, DFNET_STATUS_INVALID_ARGUMENT);
  topology_node_t *ok = add(&t, root, "ok", many, 64, DFNET_STATUS_OK);
  assert_int_equal(ok->prop_count, 64);
  dfnet_v1_NodeProperty nokey = {0};
  nokey.which_value = dfnet_v1_NodeProperty_int_value_tag;
  add(&t, root, "nokey", &nokey, 1, DFNET_STATUS_INVALID_ARGUMENT);
  topology__destroy(&t);
}

/* DFv2: the services a driver offers to a child it adds give that child (and only that
 * child: not its children) the property "<service>" = "<service>.DriverTransport". */
static void test_offer_derived_properties(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.h", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *bus = add(&t, root, "bus", NULL, 0, DFNET_STATUS_OK);
  /* "" is no offer, and an offer given twice is one */
  const char offers[4][128] = {"fuchsia.hardware.pci.Service", "", "dfnet.hardware.rng.Service",
                               "fuchsia.hardware.pci.Service"};
  dfnet_v1_NodeProperty own = prop_int(1, 31);
  topology_add_args_t a = {.name = "dev0",
                           .props = &own,
                           .prop_count = 1,
                           .offers = offers,
                           .offer_count = 4,
                           .host_id = 1};
  topology_node_t *child = NULL;
  char err[256];
  assert_int_equal(topology__add(&t, bus, &a, &child, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(child->offer_count, 2);
  assert_int_equal(child->prop_count, 3);
  assert_int_equal(child->derived_count, 2);
  assert_string_equal(child->props[1].str_key, "fuchsia.hardware.pci.Service");
  assert_string_equal(child->props[1].str_value, "fuchsia.hardware.pci.Service.DriverTransport");
  assert_int_equal(child->props[1].type, DFNET_BIND_VALUE_STRING);
  /* the parent has none (it offered them), nor has the child's child */
  assert_int_equal(bus->prop_count, 0);
  topology_node_t *grandchild = add(&t, child, "leaf", NULL, 0, DFNET_STATUS_OK);
  assert_int_equal(grandchild->prop_count, 0);
  assert_int_equal(grandchild->derived_count, 0);
  /* back to the wire: own, then derived; cut at the caller's max */
  dfnet_v1_NodeProperty wire[3];
  assert_int_equal(topology__props_to_wire(child, wire, 3), 3);
  assert_memory_equal(&wire[0], &own, sizeof own);
  assert_int_equal(wire[2].which_key, dfnet_v1_NodeProperty_str_key_tag);
  assert_string_equal(wire[2].key.str_key, "dfnet.hardware.rng.Service");
  assert_int_equal(wire[2].which_value, dfnet_v1_NodeProperty_str_value_tag);
  assert_string_equal(wire[2].value.str_value, "dfnet.hardware.rng.Service.DriverTransport");
  assert_int_equal(topology__props_to_wire(child, wire, 2), 2);
  /* an own property of that key wins over the derived one */
  dfnet_v1_NodeProperty mine = prop_str("dfnet.hardware.rng.Service", "mine");
  const char one[1][128] = {"dfnet.hardware.rng.Service"};
  topology_add_args_t b = {.name = "dev1",
                           .props = &mine,
                           .prop_count = 1,
                           .offers = one,
                           .offer_count = 1,
                           .host_id = 1};
  topology_node_t *other = NULL;
  assert_int_equal(topology__add(&t, bus, &b, &other, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(other->prop_count, 1);
  assert_string_equal(other->props[0].str_value, "mine");
  /* NodeUpdate: the derived properties follow the new offers */
  const char upd[1][128] = {"dfnet.test.Echo"};
  assert_int_equal(topology__update(&t, child, &own, 1, upd, 1, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(child->prop_count, 2);
  assert_string_equal(child->props[1].str_key, "dfnet.test.Echo");
  assert_string_equal(child->props[1].str_value, "dfnet.test.Echo.DriverTransport");
  assert_int_equal(topology__update(&t, child, &own, 1, NULL, 0, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(child->prop_count, 1);
  assert_int_equal(child->offer_count, 0);
  topology__destroy(&t);
}

static void test_class_paths(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.h", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *n[3];
  for (int i = 0; i < 3; i++) {
    char name[8];
    snprintf(name, sizeof name, "r%d", i);
    topology_add_args_t a = {.name = name, .class_name = "rng", .host_id = 1};
    char err[256];
    assert_int_equal(topology__add(&t, root, &a, &n[i], err, sizeof err), DFNET_STATUS_OK);
  }
  char path[64];
  topology__class_path(n[2], path, sizeof path);
  assert_string_equal(path, "class/rng/002");
  /* Stable while the node lives: removing 001 does not renumber 002, nor reuse 001. */
  topology__remove(&t, n[1]);
  topology__class_path(n[2], path, sizeof path);
  assert_string_equal(path, "class/rng/002");
  assert_ptr_equal(topology__find_class_path(&t, "class/rng/002"), n[2]);
  assert_null(topology__find_class_path(&t, "class/rng/001"));
  assert_null(topology__find_class_path(&t, "class/rng/x"));
  topology_add_args_t bad = {.name = "bad", .class_name = "no/slash", .host_id = 1};
  topology_node_t *out;
  char err[256];
  assert_int_equal(topology__add(&t, root, &bad, &out, err, sizeof err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  topology__class_path(root, path, sizeof path);
  assert_string_equal(path, "");
  topology__destroy(&t);
}

static topology_node_t *add_class(topology_t *t, topology_node_t *parent, const char *name,
                                  const char *class_name) {
  topology_add_args_t a = {.name = name, .class_name = class_name, .host_id = 1};
  topology_node_t *n = NULL;
  char err[256];
  dfnet_status_t st = topology__add(t, parent, &a, &n, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    fail_msg("add %s: %s: %s", name, dfnet_status_str(st), err);
  return n;
}

static void assert_class_path(const topology_node_t *n, const char *want) {
  char path[64];
  topology__class_path(n, path, sizeof path);
  assert_string_equal(path, want);
}

/* Class numbers are stable per moniker (udev-style persistent names): a node that goes and
 * comes back (agent restart, host reconnect, replug) gets its number back, even when other
 * nodes of the class came and went meanwhile; a new moniker takes the lowest number no live
 * node holds and no other moniker reserved. */
static void test_class_paths_stable_per_moniker(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.h", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *a = add_class(&t, root, "a", "rng");
  topology_node_t *b = add_class(&t, root, "b", "rng");
  add_class(&t, root, "s", "serial");
  assert_class_path(a, "class/rng/000");
  assert_class_path(b, "class/rng/001");
  /* a goes: 000 is free but reserved for a; a new moniker takes 002, not 000 */
  topology__remove(&t, a);
  topology_node_t *c = add_class(&t, root, "c", "rng");
  assert_class_path(c, "class/rng/002");
  /* b and a come back in the other order: each gets its own number */
  topology__remove(&t, b);
  assert_null(topology__find_class_path(&t, "class/rng/001"));
  a = add_class(&t, root, "a", "rng");
  b = add_class(&t, root, "b", "rng");
  assert_class_path(a, "class/rng/000");
  assert_class_path(b, "class/rng/001");
  assert_ptr_equal(topology__find_class_path(&t, "class/rng/000"), a);
  assert_ptr_equal(topology__find_class_path(&t, "class/rng/001"), b);
  assert_ptr_equal(topology__find_class_path(&t, "class/rng/002"), c);
  /* the same moniker in another class is a separate number */
  topology__remove(&t, a);
  a = add_class(&t, root, "a", "serial");
  assert_class_path(a, "class/serial/001");
  assert_null(topology__find_class_path(&t, "class/rng/000"));
  topology__destroy(&t);
}

/* Reservations are bounded per class: past CLASS_PATHS_RESERVED_MAX monikers that came and
 * went, the oldest reservation is forgotten and its number taken by the next new moniker. */
static void test_class_paths_reservations_bounded(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.h", NULL, 0, DFNET_STATUS_OK);
  for (int i = 0; i < CLASS_PATHS_RESERVED_MAX; i++) {
    char name[16];
    snprintf(name, sizeof name, "n%d", i);
    topology__remove(&t, add_class(&t, root, name, "usb-device"));
  }
  topology_node_t *late = add_class(&t, root, "late", "usb-device");
  assert_class_path(late, "class/usb-device/000"); /* n0's, the oldest, was forgotten */
  topology_node_t *n1 = add_class(&t, root, "n1", "usb-device");
  assert_class_path(n1, "class/usb-device/001"); /* still reserved */
  topology__destroy(&t);
}

static void test_composite_node(void **state) {
  (void)state;
  topology_t t;
  topology__init(&t);
  topology_node_t *root = add(&t, NULL, "dev.h", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *a = add(&t, root, "a", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *b = add(&t, root, "b", NULL, 0, DFNET_STATUS_OK);
  topology_node_t *parents[2] = {a, b}, *c = NULL;
  char err[256];
  assert_int_equal(topology__add_composite(&t, parents, 2, "combo", 1, &c, err, sizeof err),
                   DFNET_STATUS_OK);
  assert_string_equal(c->moniker, "dev.h.a.combo");
  assert_int_equal(c->parent_count, 2);
  assert_int_equal(a->child_count, 1);
  assert_int_equal(b->child_count, 1);
  topology__remove(&t, c);
  assert_int_equal(a->child_count, 0);
  assert_int_equal(b->child_count, 0);
  topology__destroy(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_and_monikers),
      cmocka_unit_test(test_property_checks),
      cmocka_unit_test(test_offer_derived_properties),
      cmocka_unit_test(test_class_paths),
      cmocka_unit_test(test_class_paths_stable_per_moniker),
      cmocka_unit_test(test_class_paths_reservations_bounded),
      cmocka_unit_test(test_composite_node),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
