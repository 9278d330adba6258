/* The PCI enumerator against the captured sysfs of tests/fixtures/sysfs-virtio-vm/
 * (every function, every property, checked against the fixture README's table), against
 * small trees the test builds (real symlinks, broken functions), and against this
 * machine's /sys. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bind/fuchsia_pci.h"
#include "dfnet/bind_keys.h"
#include "host/enum/enum.h"
#include "host/enum/sysfs.h"
#include "recorder.h"

/* The fixture README's table (+ revision and subsystem ids from the captured files). */
typedef struct pci_expect {
  const char *node; /* relative moniker */
  const char *bdf;  /* sysfs name */
  uint32_t vid, did, class_code, revision, subsys_vid, subsys_did;
  const char *driver; /* NULL: none bound */
} pci_expect_t;

static const pci_expect_t fixture_functions[] = {
    {"pci.00_00_0", "0000:00:00.0", 0x8086, 0x0d57, 0x060000, 0x00, 0x0000, 0x0000, NULL},
    {"pci.00_01_0", "0000:00:01.0", 0x1af4, 0x1045, 0xffff00, 0x01, 0x1af4, 0x1045, "virtio-pci"},
    {"pci.00_02_0", "0000:00:02.0", 0x1af4, 0x1042, 0x018000, 0x01, 0x1af4, 0x1042, "virtio-pci"},
    {"pci.00_03_0", "0000:00:03.0", 0x1af4, 0x1041, 0x020000, 0x01, 0x1af4, 0x1041, "virtio-pci"},
    {"pci.00_04_0", "0000:00:04.0", 0x1af4, 0x1053, 0xffff00, 0x01, 0x1af4, 0x1053, "virtio-pci"},
    {"pci.00_05_0", "0000:00:05.0", 0x1af4, 0x1044, 0xffff00, 0x01, 0x1af4, 0x1044, "virtio-pci"},
};
#define FIXTURE_COUNT (sizeof(fixture_functions) / sizeof(fixture_functions[0]))

static const char *fixture_root(char *buf, size_t cap) {
  snprintf(buf, cap, "%s", DFNET_FIXTURES_DIR "/sysfs-virtio-vm");
  char *real = realpath(buf, NULL);
  assert_non_null(real);
  snprintf(buf, cap, "%s", real);
  free(real);
  return buf;
}

static void run_pci(const char *root, recorder_t *rec, dfnet_status_t want) {
  dfnet_enum_t *e = NULL;
  assert_int_equal(dfnet_enum_pci_new(root, &e), DFNET_STATUS_OK);
  assert_string_equal(dfnet_enum_name(e), "pci");
  dfnet_enum_sink_t sink = recorder_sink(rec);
  assert_int_equal(dfnet_enum_start(e, &sink), want);
  dfnet_enum_destroy(e);
}

static void test_fixture_every_function(void **state) {
  (void)state;
  char root[PATH_MAX];
  fixture_root(root, sizeof(root));
  recorder_t rec;
  recorder_init(&rec);
  run_pci(root, &rec, DFNET_STATUS_OK);

  /* The bus node first, then one node per function, nothing else. */
  assert_int_equal(recorder_count(&rec), 1 + FIXTURE_COUNT);
  assert_int_equal(rec.events[0].kind, REC_ADDED);
  assert_string_equal(rec.events[0].node->name, "pci");
  assert_string_equal(rec.events[0].node->parent, "");
  assert_true(rec.events[0].node->owned);
  assert_int_equal(rec.events[0].node->properties_count, 0);
  assert_false(rec.from_other_thread); /* synchronously in start() */

  for (size_t i = 0; i < FIXTURE_COUNT; i++) {
    const pci_expect_t *f = &fixture_functions[i];
    const dfnet_v1_NodeAdd *node = recorder_added(&rec, f->node);
    if (node == NULL) {
      fail_msg("no node %s", f->node);
    }
    assert_string_equal(node->parent, "pci");
    assert_false(node->owned);
    unsigned bus, dev, fn;
    assert_int_equal(sscanf(f->bdf, "0000:%2x:%2x.%1x", &bus, &dev, &fn), 3);

    check_prop_int(node, DFNET_BIND_PROTOCOL, NULL, BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE);
    check_prop_int(node, DFNET_BIND_PROTOCOL, NULL, 0x1f); /* Fuchsia's fuchsia.pci value */
    check_prop_int(node, DFNET_BIND_PCI_VID, NULL, f->vid);
    check_prop_int(node, DFNET_BIND_PCI_DID, NULL, f->did);
    check_prop_int(node, DFNET_BIND_PCI_CLASS, NULL, f->class_code >> 16);
    check_prop_int(node, DFNET_BIND_PCI_SUBCLASS, NULL, (f->class_code >> 8) & 0xff);
    check_prop_int(node, DFNET_BIND_PCI_INTERFACE, NULL, f->class_code & 0xff);
    check_prop_int(node, DFNET_BIND_PCI_REVISION, NULL, f->revision);
    /* BIND_PCI_TOPO_PACK(bus, dev, func) of Fuchsia's binding_priv.h */
    check_prop_int(node, DFNET_BIND_PCI_TOPO, NULL, (bus << 8) | (dev << 3) | fn);
    check_prop_int(node, 0, DFNET_ENUM_KEY_PCI_SUBSYSTEM_VID, f->subsys_vid);
    check_prop_int(node, 0, DFNET_ENUM_KEY_PCI_SUBSYSTEM_DID, f->subsys_did);

    char want_path[PATH_MAX + 64];
    snprintf(want_path, sizeof(want_path), "%s/devices/pci0000:00/%s", root, f->bdf);
    check_prop_str(node, 0, DFNET_ENUM_KEY_PCI_SYSFS_PATH, want_path);
    if (f->driver != NULL) {
      check_prop_str(node, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER, f->driver);
    } else {
      check_prop_absent(node, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER);
    }
    /* 8 integer keys + 2 subsystem ids + path (+ driver) */
    assert_int_equal(node->properties_count, f->driver != NULL ? 12 : 11);
  }
  /* 00:00.0 carries the host bridge class 0x06/0x00/0x00 and TOPO 0. */
  check_prop_int(recorder_added(&rec, "pci.00_00_0"), DFNET_BIND_PCI_TOPO, NULL, 0);
  /* 00:05.0, the RNG: TOPO 0x28 (dev 5 << 3). */
  check_prop_int(recorder_added(&rec, "pci.00_05_0"), DFNET_BIND_PCI_TOPO, NULL, 0x28);
  recorder_free(&rec);
}

/* The fixture's virtio child links resolve the way the virtio-rng driver will read them:
 * <SYSFS_PATH>/virtio4/driver names virtio_rng. */
static void test_fixture_virtio_child_driver(void **state) {
  (void)state;
  char root[PATH_MAX];
  fixture_root(root, sizeof(root));
  recorder_t rec;
  recorder_init(&rec);
  run_pci(root, &rec, DFNET_STATUS_OK);
  const dfnet_v1_NodeProperty *p =
      dfnet_enum_prop_find(recorder_added(&rec, "pci.00_05_0"), 0, DFNET_ENUM_KEY_PCI_SYSFS_PATH);
  assert_non_null(p);
  char link[PATH_MAX + 32], target[PATH_MAX];
  snprintf(link, sizeof(link), "%s/virtio4/driver", p->value.str_value);
  assert_int_equal(sysfs__read_link(link, target, sizeof(target)), DFNET_STATUS_OK);
  assert_string_equal(sysfs__basename(target), "virtio_rng");
  recorder_free(&rec);
}

/* ---- trees built by the test ------------------------------------------------------- */

static char tmp_root[64];

static void mkdirs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mkdirs(const char *fmt, ...) {
  char path[PATH_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof(path), fmt, ap);
  va_end(ap);
  for (char *c = path + 1; *c != '\0'; c++) {
    if (*c == '/') {
      *c = '\0';
      mkdir(path, 0755);
      *c = '/';
    }
  }
  assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void write_attr(const char *dir, const char *name, const char *text) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < sizeof path);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A function directory with real symlinks, as the kernel makes them. */
static void make_function(const char *bdf, const char *vendor, const char *driver) {
  char dir[256], link[PATH_MAX], target[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/devices/pci0001:00/%s", tmp_root, bdf);
  mkdirs("%s", dir);
  write_attr(dir, "vendor", vendor);
  write_attr(dir, "device", "0x1044\n");
  write_attr(dir, "class", "0x0c0330\n");
  write_attr(dir, "revision", "0x02\n");
  mkdirs("%s/bus/pci/devices", tmp_root);
  mkdirs("%s/bus/pci/drivers/%s", tmp_root, driver ? driver : "none");
  snprintf(link, sizeof(link), "%s/bus/pci/devices/%s", tmp_root, bdf);
  snprintf(target, sizeof(target), "../../../devices/pci0001:00/%s", bdf);
  assert_int_equal(symlink(target, link), 0);
  if (driver != NULL) {
    snprintf(link, sizeof(link), "%s/driver", dir);
    snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
    assert_int_equal(symlink(target, link), 0);
  }
}

static int tree_setup(void **state) {
  (void)state;
  snprintf(tmp_root, sizeof(tmp_root), "/tmp/dfnet-enum-pci-XXXXXX");
  if (mkdtemp(tmp_root) == NULL) {
    return -1;
  }
  return 0;
}

static int tree_teardown(void **state) {
  (void)state;
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
  return system(cmd) == 0 ? 0 : -1;
}

/* Real symlinks, a PCI domain other than 0, a function without a driver, and a function
 * with a malformed attribute that is skipped while the others are published. */
static void test_tree_symlinks_domain_and_bad_function(void **state) {
  (void)state;
  make_function("0001:02:1f.7", "0x8086\n", "xhci_hcd");
  make_function("0001:03:00.0", "0x10de\n", NULL);
  make_function("0001:04:00.0", "0xzzzz\n", NULL);   /* not a number */
  make_function("0001:05:00.0", "0x123456\n", NULL); /* vendor over 16 bits */
  char junk[PATH_MAX];
  snprintf(junk, sizeof(junk), "%s/bus/pci/devices/not-an-address", tmp_root);
  assert_int_equal(mkdir(junk, 0755), 0); /* ignored */

  recorder_t rec;
  recorder_init(&rec);
  run_pci(tmp_root, &rec, DFNET_STATUS_OK);
  assert_int_equal(recorder_count(&rec), 3); /* bus + two good functions */

  const dfnet_v1_NodeAdd *xhci = recorder_added(&rec, "pci.0001_02_1f_7");
  assert_non_null(xhci);
  check_prop_int(xhci, DFNET_BIND_PCI_VID, NULL, 0x8086);
  check_prop_int(xhci, DFNET_BIND_PCI_CLASS, NULL, 0x0c);
  check_prop_int(xhci, DFNET_BIND_PCI_SUBCLASS, NULL, 0x03);
  check_prop_int(xhci, DFNET_BIND_PCI_INTERFACE, NULL, 0x30);
  check_prop_int(xhci, DFNET_BIND_PCI_REVISION, NULL, 2);
  check_prop_int(xhci, DFNET_BIND_PCI_TOPO, NULL, (2u << 8) | (0x1fu << 3) | 7u);
  check_prop_str(xhci, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER, "xhci_hcd");
  check_prop_absent(xhci, 0, DFNET_ENUM_KEY_PCI_SUBSYSTEM_VID); /* no such attributes */
  char want[PATH_MAX + 64];
  char *real_root = realpath(tmp_root, NULL);
  assert_non_null(real_root);
  snprintf(want, sizeof(want), "%s/devices/pci0001:00/0001:02:1f.7", real_root);
  free(real_root);
  check_prop_str(xhci, 0, DFNET_ENUM_KEY_PCI_SYSFS_PATH, want);

  const dfnet_v1_NodeAdd *gpu = recorder_added(&rec, "pci.0001_03_00_0");
  assert_non_null(gpu);
  check_prop_absent(gpu, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER);
  assert_null(recorder_added(&rec, "pci.0001_04_00_0"));
  assert_null(recorder_added(&rec, "pci.0001_05_00_0"));
  recorder_free(&rec);
}

/* A root without a PCI bus publishes nothing and is not an error; a root that does not
 * exist is NOT_FOUND. */
static void test_missing_roots(void **state) {
  (void)state;
  recorder_t rec;
  recorder_init(&rec);
  run_pci(tmp_root, &rec, DFNET_STATUS_OK); /* empty dir */
  assert_int_equal(recorder_count(&rec), 0);
  char missing[PATH_MAX + 16];
  snprintf(missing, sizeof(missing), "%s/nope", tmp_root);
  run_pci(missing, &rec, DFNET_STATUS_NOT_FOUND);
  assert_int_equal(recorder_count(&rec), 0);
  recorder_free(&rec);

  dfnet_enum_t *e = NULL;
  assert_int_equal(dfnet_enum_pci_new("", &e), DFNET_STATUS_INVALID_ARGUMENT);
}

/* The core's contract: a bad sink is refused, an enumerator starts once, stop twice is
 * harmless. */
static void test_core_contract(void **state) {
  (void)state;
  char root[PATH_MAX];
  fixture_root(root, sizeof(root));
  dfnet_enum_t *e = NULL;
  assert_int_equal(dfnet_enum_pci_new(root, &e), DFNET_STATUS_OK);
  dfnet_enum_sink_t bad = {0};
  assert_int_equal(dfnet_enum_start(e, &bad), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_enum_start(e, NULL), DFNET_STATUS_INVALID_ARGUMENT);
  recorder_t rec;
  recorder_init(&rec);
  dfnet_enum_sink_t sink = recorder_sink(&rec);
  assert_int_equal(dfnet_enum_start(e, &sink), DFNET_STATUS_OK);
  assert_int_equal(dfnet_enum_start(e, &sink), DFNET_STATUS_FAILED_PRECONDITION);
  dfnet_enum_stop(e);
  dfnet_enum_stop(e);
  dfnet_enum_destroy(e);
  dfnet_enum_destroy(NULL);
  assert_int_equal(recorder_count(&rec), 1 + FIXTURE_COUNT);
  assert_int_equal(dfnet_enum_board_error_count(NULL), 0);
  recorder_free(&rec);
}

/* This machine's /sys: every function there is published, and what the nodes say agrees
 * with what sysfs says when read another way (realpath, readlink). */
static void test_real_sys(void **state) {
  (void)state;
  struct stat st;
  if (stat("/sys/bus/pci/devices", &st) != 0) {
    skip();
  }
  recorder_t rec;
  recorder_init(&rec);
  run_pci("/sys", &rec, DFNET_STATUS_OK);
  size_t functions = 0;
  FILE *ls = popen("ls /sys/bus/pci/devices", "r");
  assert_non_null(ls);
  char bdf[64];
  while (fscanf(ls, "%63s", bdf) == 1) {
    unsigned dom, bus, dev, fn;
    assert_int_equal(sscanf(bdf, "%4x:%2x:%2x.%1x", &dom, &bus, &dev, &fn), 4);
    char moniker[64];
    if (dom == 0) {
      snprintf(moniker, sizeof(moniker), "pci.%02x_%02x_%x", bus, dev, fn);
    } else {
      snprintf(moniker, sizeof(moniker), "pci.%04x_%02x_%02x_%x", dom, bus, dev, fn);
    }
    const dfnet_v1_NodeAdd *node = recorder_added(&rec, moniker);
    if (node == NULL) {
      fail_msg("no node %s for /sys/bus/pci/devices/%s", moniker, bdf);
    }
    char link[128], real[PATH_MAX], driver[PATH_MAX];
    snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", bdf);
    assert_non_null(realpath(link, real));
    check_prop_str(node, 0, DFNET_ENUM_KEY_PCI_SYSFS_PATH, real);
    snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/driver", bdf);
    ssize_t n = readlink(link, driver, sizeof(driver) - 1);
    if (n > 0) {
      driver[n] = '\0';
      check_prop_str(node, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER, strrchr(driver, '/') + 1);
    } else {
      check_prop_absent(node, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER);
    }
    uint32_t vendor;
    char dir[128];
    snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", bdf);
    assert_int_equal(sysfs__read_uint(dir, "vendor", 0xffff, &vendor), DFNET_STATUS_OK);
    check_prop_int(node, DFNET_BIND_PCI_VID, NULL, vendor);
    functions++;
  }
  pclose(ls);
  assert_int_equal(recorder_count(&rec), 1 + functions);
  recorder_free(&rec);
}

/* scripts/capture-sysfs.sh of this machine's /sys: the enumerator sees the capture as it
 * sees the live tree (the same nodes with the same properties, the sysfs path moved under
 * the capture), so a capture made with the script is a faithful fixture. */
static void test_capture_script_matches_live(void **state) {
  (void)state;
  struct stat st;
  const char *source = getenv("DFNET_SOURCE_DIR");
  if (stat("/sys/bus/pci/devices", &st) != 0 || source == NULL) {
    skip();
  }
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof(cmd), "'%s/scripts/capture-sysfs.sh' '%s/capture' >/dev/null", source,
           tmp_root);
  assert_int_equal(system(cmd), 0);
  char capture[PATH_MAX], real_capture[PATH_MAX];
  snprintf(capture, sizeof(capture), "%s/capture", tmp_root);
  assert_non_null(realpath(capture, real_capture));

  recorder_t live, cap;
  recorder_init(&live);
  recorder_init(&cap);
  run_pci("/sys", &live, DFNET_STATUS_OK);
  run_pci(capture, &cap, DFNET_STATUS_OK);
  assert_int_equal(recorder_count(&cap), recorder_count(&live));
  for (size_t i = 0; i < live.count; i++) {
    const dfnet_v1_NodeAdd *want = live.events[i].node;
    const dfnet_v1_NodeAdd *got = recorder_added(&cap, live.events[i].moniker);
    if (got == NULL) {
      fail_msg("the capture has no node %s", live.events[i].moniker);
    }
    assert_int_equal(got->properties_count, want->properties_count);
    for (pb_size_t p = 0; p < want->properties_count; p++) {
      const dfnet_v1_NodeProperty *w = &want->properties[p];
      if (w->which_key == dfnet_v1_NodeProperty_str_key_tag &&
          strcmp(w->key.str_key, DFNET_ENUM_KEY_PCI_SYSFS_PATH) == 0) {
        char moved[PATH_MAX * 2];
        snprintf(moved, sizeof(moved), "%s%s", real_capture, w->value.str_value + strlen("/sys"));
        check_prop_str(got, 0, DFNET_ENUM_KEY_PCI_SYSFS_PATH, moved);
        continue;
      }
      uint32_t int_key = w->which_key == dfnet_v1_NodeProperty_int_key_tag ? w->key.int_key : 0;
      const char *str_key = int_key == 0 ? w->key.str_key : NULL;
      if (w->which_value == dfnet_v1_NodeProperty_str_value_tag) {
        check_prop_str(got, int_key, str_key, w->value.str_value);
      } else {
        assert_int_equal(w->which_value, dfnet_v1_NodeProperty_int_value_tag);
        check_prop_int(got, int_key, str_key, w->value.int_value);
      }
    }
  }
  recorder_free(&live);
  recorder_free(&cap);
}

/* sysfs helpers: links saved as files, lexical normalization of a target outside. */
static void test_sysfs_helpers(void **state) {
  (void)state;
  char dir[PATH_MAX], buf[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/helpers", tmp_root);
  mkdirs("%s", dir);
  write_attr(dir, "as-file", "../../x/./y/../driver-name\n");
  write_attr(dir, "not-a-link", "hello\n");
  write_attr(dir, "num", "0x1af4\n");
  write_attr(dir, "neg", "-1\n");
  char p[PATH_MAX + 32];
  snprintf(p, sizeof(p), "%s/as-file", dir);
  assert_int_equal(sysfs__read_link(p, buf, sizeof(buf)), DFNET_STATUS_OK);
  assert_string_equal(buf, "../../x/./y/../driver-name");
  assert_int_equal(sysfs__resolve_link(p, buf, sizeof(buf)), DFNET_STATUS_OK);
  assert_string_equal(sysfs__basename(buf), "driver-name");
  assert_null(strstr(buf, "/./"));
  assert_null(strstr(buf, "/../"));
  snprintf(p, sizeof(p), "%s/not-a-link", dir);
  assert_int_equal(sysfs__read_link(p, buf, sizeof(buf)), DFNET_STATUS_INVALID_ARGUMENT);
  snprintf(p, sizeof(p), "%s/missing", dir);
  assert_int_equal(sysfs__read_link(p, buf, sizeof(buf)), DFNET_STATUS_NOT_FOUND);
  uint32_t v = 0;
  assert_int_equal(sysfs__read_uint(dir, "num", 0xffff, &v), DFNET_STATUS_OK);
  assert_int_equal(v, 0x1af4);
  assert_int_equal(sysfs__read_uint(dir, "num", 0xff, &v), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(sysfs__read_uint(dir, "neg", 0xff, &v), DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(sysfs__read_uint(dir, "missing", 0xff, &v), DFNET_STATUS_NOT_FOUND);
  char small[4];
  assert_int_equal(sysfs__read_attr(dir, "not-a-link", small, sizeof(small)),
                   DFNET_STATUS_OUT_OF_RANGE);
}

int main(void) {
  const struct CMUnitTest fixture_tests[] = {
      cmocka_unit_test(test_fixture_every_function),
      cmocka_unit_test(test_fixture_virtio_child_driver),
      cmocka_unit_test(test_core_contract),
      cmocka_unit_test(test_real_sys),
  };
  const struct CMUnitTest tree_tests[] = {
      cmocka_unit_test_setup_teardown(test_missing_roots, tree_setup, tree_teardown),
      cmocka_unit_test_setup_teardown(test_tree_symlinks_domain_and_bad_function, tree_setup,
                                      tree_teardown),
      cmocka_unit_test_setup_teardown(test_sysfs_helpers, tree_setup, tree_teardown),
      cmocka_unit_test_setup_teardown(test_capture_script_matches_live, tree_setup, tree_teardown),
  };
  int failed = cmocka_run_group_tests_name("pci_fixture", fixture_tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("pci_trees", tree_tests, NULL, NULL);
  return failed;
}
