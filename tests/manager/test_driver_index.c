/* manager/driver_index: manifest validation, package loading, the DFv2 matching policy
 * (no network). Packages are built from real bind sources compiled in-process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager/driver_index.h"
#include "testhost/testhost.h"

/* ---- manifests: one named case per check ---- */

static const struct manifest_case {
  const char *name;
  const char *json;
  const char *want_in_error; /* NULL = valid */
} manifest_cases[] = {
    {"minimal",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"driver/x.so\","
     "\"bind\":\"meta/bind/x.bindbc\"}}",
     NULL},
    {"all_fields",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"driver/x.so\","
     "\"bind\":\"meta/bind/x.bindbc\",\"colocate\":\"true\",\"fallback\":\"false\","
     "\"default_dispatcher_opts\":[\"allow_sync_calls\"],"
     "\"host_restart_on_crash\":\"false\",\"device_categories\":"
     "[{\"category\":\"misc\",\"subcategory\":\"rng\"}]}}",
     NULL},
    {"not_json", "{\"program\":", "not valid JSON"},
    {"no_program", "{\"x\":1}", "program: required object missing"},
    {"no_runner", "{\"program\":{\"binary\":\"driver/x.so\",\"bind\":\"b\"}}",
     "program.runner: required field missing"},
    {"wrong_runner", "{\"program\":{\"runner\":\"elf\",\"binary\":\"d\",\"bind\":\"b\"}}",
     "program.runner: must be \"driver\""},
    {"no_binary", "{\"program\":{\"runner\":\"driver\",\"bind\":\"b\"}}",
     "program.binary: required field missing"},
    {"no_bind", "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\"}}",
     "program.bind: required field missing"},
    {"binary_escapes",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"../x.so\",\"bind\":\"b\"}}",
     "program.binary: must be a relative path"},
    {"bad_flag",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"fallback\":\"yes\"}}",
     "program.fallback: must be"},
    {"both_colocate_restart",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"colocate\":\"true\",\"host_restart_on_crash\":\"true\"}}",
     "Both host_restart_on_crash and colocate cannot be true"},
    {"bad_opts",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"default_dispatcher_opts\":[\"go_fast\"]}}",
     "program.default_dispatcher_opts: unknown option"},
    {"bad_categories",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"device_categories\":[{\"sub\":1}]}}",
     "program.device_categories"},
    {"unknown_field",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"fallbak\":\"true\"}}",
     "program.fallbak: unknown field"},
    {"config_object",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"config\":{\"device\":\"/dev/hwrng\"}}}",
     NULL},
    {"config_not_object",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"config\":\"/dev/hwrng\"}}",
     "program.config: must be an object"},
    {"read_only_not_array",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"read_only_methods\":\"/dfnet.hw.serial.Serial/Subscribe\"}}",
     "program.read_only_methods: must be an array of at most 32 strings"},
    {"read_only_entry_not_string",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"read_only_methods\":[\"/a.B/C\",7]}}",
     "program.read_only_methods: each entry must be a full method path"},
    {"read_only_no_second_slash",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"read_only_methods\":[\"/dfnet.hw.serial.Serial.Subscribe\"]}}",
     "program.read_only_methods: each entry must be a full method path"},
    {"read_only_no_leading_slash",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"read_only_methods\":[\"dfnet.hw.serial.Serial/Subscribe\"]}}",
     "program.read_only_methods: each entry must be a full method path"},
    {"read_only_too_short",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"read_only_methods\":[\"/\"]}}",
     "program.read_only_methods: each entry must be a full method path"},
    /* "resources" (lib/resource.h): the files a driver needs beyond its node's */
    {"resources_ok",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[\"/dev/hwrng\",{\"path\":\"/dev/x\",\"access\":\"rw\"},"
     "{\"path\":\"/dev/y\"}]}}",
     NULL},
    {"resources_not_array",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":\"/dev/hwrng\"}}",
     "program.resources: must be an array of at most 8 paths"},
    {"resources_relative",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[\"dev/hwrng\"]}}",
     "program.resources[0]: must be an absolute path"},
    {"resources_dotdot",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[\"/dev/hwrng\",{\"path\":\"/dev/../etc/shadow\"}]}}",
     "program.resources[1].path: must be an absolute path"},
    {"resources_bad_access",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[{\"path\":\"/dev/x\",\"access\":\"w\"}]}}",
     "program.resources[0].access: must be \"r\" or \"rw\""},
    {"resources_unknown_key",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[{\"path\":\"/dev/x\",\"mode\":\"rw\"}]}}",
     "program.resources[0].mode: unknown field"},
    {"resources_twice",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[\"/dev/x\",{\"path\":\"/dev/x\"}]}}",
     "program.resources[1]: /dev/x is given twice"},
    {"resources_too_many",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"resources\":[\"/a\",\"/b\",\"/c\",\"/d\",\"/e\",\"/f\",\"/g\",\"/h\",\"/i\"]}}",
     "program.resources: must be an array of at most 8 paths"},
    /* "rights" and "limits" (lib/driver_rights.h): refused with the parser's words */
    {"rights_ok",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"rights\":[\"inet\",\"exec\"],\"limits\":{\"memory_mb\":64,\"open_files\":256}}}",
     NULL},
    {"rights_typo",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"rights\":[\"inetz\"]}}",
     "program.rights[0]: unknown right \"inetz\" (did you mean \"inet\"?)"},
    {"limits_range",
     "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
     "\"limits\":{\"memory_mb\":1}}}",
     "memory_mb"},
};

static void test_manifest_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof manifest_cases / sizeof manifest_cases[0]; i++) {
    const struct manifest_case *c = &manifest_cases[i];
    driver_manifest_t m;
    char err[512] = "";
    dfnet_status_t st =
        driver_index__parse_manifest(c->json, strlen(c->json), "meta/x.json", &m, err, sizeof err);
    if (c->want_in_error == NULL) {
      if (st != DFNET_STATUS_OK)
        fail_msg("case %s: refused: %s", c->name, err);
      driver_index__manifest_free(&m);
    } else {
      if (st != DFNET_STATUS_INVALID_ARGUMENT || strstr(err, c->want_in_error) == NULL ||
          strstr(err, "meta/x.json") == NULL)
        fail_msg("case %s: got %s '%s', want '%s'", c->name, dfnet_status_str(st), err,
                 c->want_in_error);
    }
  }
}

/* "resources": parsed into the manifest in order, with their access; kept in the program
 * block the agent receives (it opens them). */
static void test_manifest_resources(void **state) {
  (void)state;
  static const char json[] =
      "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
      "\"resources\":[\"/dev/hwrng\",{\"path\":\"/dev/x\",\"access\":\"rw\"}]}}";
  driver_manifest_t m;
  char err[512] = "";
  dfnet_status_t st =
      driver_index__parse_manifest(json, strlen(json), "meta/x.json", &m, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    fail_msg("refused: %s", err);
  assert_int_equal(m.resource_count, 2);
  assert_string_equal(m.resources[0].path, "/dev/hwrng");
  assert_false(m.resources[0].writable);
  assert_string_equal(m.resources[1].path, "/dev/x");
  assert_true(m.resources[1].writable);
  assert_non_null(strstr(m.program_json, "\"resources\""));
  /* no "rights" nor "limits": none, and the defaults */
  assert_int_equal(m.rights.rights, 0);
  assert_int_equal(m.rights.memory_mb, DFNET_DRIVER_MEMORY_MB_DEFAULT);
  assert_int_equal(m.rights.open_files, DFNET_DRIVER_OPEN_FILES_DEFAULT);
  driver_index__manifest_free(&m);
}

/* "read_only_methods": parsed into the manifest in order, owned; an empty array is none;
 * too many entries, or one too long, refused naming the member. */
static void test_read_only_methods(void **state) {
  (void)state;
  static const char head[] =
      "{\"program\":{\"runner\":\"driver\",\"binary\":\"d\",\"bind\":\"b\","
      "\"read_only_methods\":[";
  driver_manifest_t m;
  char err[512] = "", json[16384];
  snprintf(json, sizeof json,
           "%s\"/dfnet.hw.serial.Serial/Subscribe\",\"/dfnet.test.Echo/Watch\"]}}", head);
  dfnet_status_t st =
      driver_index__parse_manifest(json, strlen(json), "meta/x.json", &m, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    fail_msg("refused: %s", err);
  assert_int_equal(m.read_only_method_count, 2);
  assert_string_equal(m.read_only_methods[0], "/dfnet.hw.serial.Serial/Subscribe");
  assert_string_equal(m.read_only_methods[1], "/dfnet.test.Echo/Watch");
  /* the program block sent with DriverStart keeps it (the driver sees its manifest) */
  assert_non_null(strstr(m.program_json, "\"read_only_methods\""));
  driver_t d = {.m = m};
  assert_true(driver_index__method_read_only(&d, "/dfnet.hw.serial.Serial/Subscribe"));
  assert_true(driver_index__method_read_only(&d, "/dfnet.test.Echo/Watch"));
  assert_false(driver_index__method_read_only(&d, "/dfnet.hw.serial.Serial/Write"));
  assert_false(driver_index__method_read_only(&d, "/dfnet.hw.serial.Serial/Subscrib"));
  assert_false(driver_index__method_read_only(&d, ""));
  driver_index__manifest_free(&m);
  assert_int_equal(m.read_only_method_count, 0);

  /* empty: none */
  snprintf(json, sizeof json, "%s]}}", head);
  st = driver_index__parse_manifest(json, strlen(json), "meta/x.json", &m, err, sizeof err);
  if (st != DFNET_STATUS_OK)
    fail_msg("empty refused: %s", err);
  assert_int_equal(m.read_only_method_count, 0);
  driver_index__manifest_free(&m);

  /* 32 entries are fine, 33 are too many */
  for (int n = 32; n <= 33; n++) {
    size_t len = (size_t)snprintf(json, sizeof json, "%s", head);
    for (int i = 0; i < n; i++)
      len += (size_t)snprintf(json + len, sizeof json - len, "%s\"/p.P/M%d\"", i ? "," : "", i);
    snprintf(json + len, sizeof json - len, "]}}");
    err[0] = '\0';
    st = driver_index__parse_manifest(json, strlen(json), "meta/x.json", &m, err, sizeof err);
    if (n == 32) {
      if (st != DFNET_STATUS_OK)
        fail_msg("32 refused: %s", err);
      assert_int_equal(m.read_only_method_count, 32);
      assert_string_equal(m.read_only_methods[31], "/p.P/M31");
      driver_index__manifest_free(&m);
    } else {
      assert_int_equal(st, DFNET_STATUS_INVALID_ARGUMENT);
      assert_string_equal(err,
                          "meta/x.json: program.read_only_methods: must be an array of at "
                          "most 32 strings");
    }
  }

  /* 255 bytes are fine, 256 too long */
  for (int len = 255; len <= 256; len++) {
    char path[300];
    memset(path, 'm', sizeof path);
    memcpy(path, "/p.P/", 5);
    path[len] = '\0';
    snprintf(json, sizeof json, "%s\"%s\"]}}", head, path);
    err[0] = '\0';
    st = driver_index__parse_manifest(json, strlen(json), "meta/x.json", &m, err, sizeof err);
    if (len == 255) {
      if (st != DFNET_STATUS_OK)
        fail_msg("255 bytes refused: %s", err);
      assert_int_equal(strlen(m.read_only_methods[0]), 255);
      driver_index__manifest_free(&m);
    } else {
      assert_int_equal(st, DFNET_STATUS_INVALID_ARGUMENT);
      assert_non_null(strstr(err, "meta/x.json: program.read_only_methods: each entry"));
    }
  }
}

/* ---- packages and matching ---- */

static char tmp_dir[256];

static driver_t *load(driver_index_t *idx, const char *name, const char *rules, const char *extra,
                      driver_source_t source, dfnet_status_t want, char *err_out) {
  assert_int_equal(th_write_driver(tmp_dir, name, rules, extra), 0);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmp_dir, name);
  uint8_t *pkg;
  size_t size;
  uint8_t digest[32];
  assert_int_equal(th_pack(dir, &pkg, &size, digest), 0);
  driver_t *d = NULL;
  char err[512] = "";
  dfnet_status_t st = driver_index__add_package(idx, name, pkg, size, source, &d, err, sizeof err);
  free(pkg);
  if (st != want)
    fail_msg("load %s: got %s (%s)", name, dfnet_status_str(st), err);
  if (err_out)
    strcpy(err_out, err);
  return d;
}

static void node_of(dfnet_bind_node_t *n, dfnet_bind_property_t *p, uint32_t proto) {
  memset(p, 0, sizeof *p);
  p->int_key = 1; /* fuchsia.BIND_PROTOCOL */
  p->type = DFNET_BIND_VALUE_UINT;
  p->int_value = proto;
  assert_int_equal(dfnet_bind_node_init(n, p, 1), DFNET_STATUS_OK);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/dfnet-index-test-%d", (int)getpid());
  return th_fresh_dir(tmp_dir);
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  return system(cmd);
}

static void test_policy(void **state) {
  (void)state;
  driver_index_t idx;
  driver_index__init(&idx);
  driver_t *a =
      load(&idx, "a", "fuchsia.BIND_PROTOCOL == 1;", NULL, DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  load(&idx, "b", "fuchsia.BIND_PROTOCOL == 2;", NULL, DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  load(&idx, "b2", "fuchsia.BIND_PROTOCOL == 2;", NULL, DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  driver_t *fb = load(&idx, "fb", "fuchsia.BIND_PROTOCOL == 3;", "\"fallback\": \"true\"",
                      DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  load(&idx, "fb2", "fuchsia.BIND_PROTOCOL == 4;", "\"fallback\": \"true\"", DRIVER_BOOT,
       DFNET_STATUS_OK, NULL);
  load(&idx, "fb3", "fuchsia.BIND_PROTOCOL == 4;", "\"fallback\": \"true\"", DRIVER_BOOT,
       DFNET_STATUS_OK, NULL);
  load(&idx, "fbx", "fuchsia.BIND_PROTOCOL == 1;", "\"fallback\": \"true\"", DRIVER_BOOT,
       DFNET_STATUS_OK, NULL);
  assert_string_equal(a->url, "dfnet-boot:///a#meta/a.json");

  dfnet_bind_node_t n;
  dfnet_bind_property_t p;
  driver_match_t r;
  /* Exactly one non-fallback match wins (the fallback that also matches does not count). */
  node_of(&n, &p, 1);
  idx.boot_indexed = true;
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_OK);
  assert_ptr_equal(r.driver, a);
  /* Two non-fallback matches: an error naming both, never a pick. */
  node_of(&n, &p, 2);
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r.reason, "multiple non-fallback drivers matched"));
  assert_non_null(strstr(r.reason, "dfnet-boot:///b#"));
  assert_non_null(strstr(r.reason, "dfnet-boot:///b2#"));
  /* Suffix narrows the candidates (RequestBind driver_url_suffix). */
  driver_index__match(&idx, &n, "b2#meta/b2.json", &r);
  assert_int_equal(r.status, DFNET_STATUS_OK);
  /* Fallback: only once boot drivers are indexed. */
  node_of(&n, &p, 3);
  idx.boot_indexed = false;
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_NOT_FOUND);
  idx.boot_indexed = true;
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_OK);
  assert_ptr_equal(r.driver, fb);
  /* Two fallbacks: an error too. */
  node_of(&n, &p, 4);
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r.reason, "multiple fallback drivers matched"));
  /* Disabled drivers are skipped. */
  fb->disabled = true;
  node_of(&n, &p, 3);
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_NOT_FOUND);
  assert_string_equal(r.reason, "no driver matched");
  driver_index__destroy(&idx);
}

static void test_bad_packages(void **state) {
  (void)state;
  driver_index_t idx;
  driver_index__init(&idx);
  char err[512];
  load(&idx, "good", "fuchsia.BIND_PROTOCOL == 1;", NULL, DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  /* Same URL twice. */
  load(&idx, "good", "fuchsia.BIND_PROTOCOL == 1;", NULL, DRIVER_BOOT, DFNET_STATUS_ALREADY_EXISTS,
       NULL);
  /* Bad manifest field: the message names the file and the field. */
  load(&idx, "both", "fuchsia.BIND_PROTOCOL == 1;",
       "\"colocate\": \"true\", \"host_restart_on_crash\": \"true\"", DRIVER_BOOT,
       DFNET_STATUS_INVALID_ARGUMENT, err);
  assert_non_null(strstr(err, "both/meta/both.json: program.host_restart_on_crash"));
  /* Corrupt bytecode: refused at load with the verifier's reason. */
  assert_int_equal(th_write_driver(tmp_dir, "corrupt", "fuchsia.BIND_PROTOCOL == 1;", NULL), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/corrupt/meta/bind/corrupt.bindbc", tmp_dir);
  FILE *f = fopen(path, "wb");
  fputs("BIND\x02\x00\x00\x00\x07garbage", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/corrupt", tmp_dir);
  uint8_t *pkg;
  size_t size;
  uint8_t digest[32];
  assert_int_equal(th_pack(path, &pkg, &size, digest), 0);
  driver_t *d = NULL;
  assert_int_equal(
      driver_index__add_package(&idx, "corrupt", pkg, size, DRIVER_BOOT, &d, err, sizeof err),
      DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "program.bind: bytecode refused"));
  free(pkg);
  /* Missing binary. */
  snprintf(path, sizeof path, "rm %s/good/driver/good.so", tmp_dir);
  assert_int_equal(system(path), 0);
  snprintf(path, sizeof path, "%s/good", tmp_dir);
  assert_int_equal(th_pack(path, &pkg, &size, digest), 0);
  assert_int_equal(
      driver_index__add_package(&idx, "good", pkg, size, DRIVER_REGISTERED, &d, err, sizeof err),
      DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "program.binary"));
  free(pkg);
  assert_int_equal(idx.count, 1);
  driver_index__destroy(&idx);
}

/* Drivers named by URL or by a unique name; ambiguity lists every candidate; a removed
 * driver resolves no more, its id stays unused, and matching skips its hole. */
static void test_resolve_and_remove(void **state) {
  (void)state;
  driver_index_t idx;
  driver_index__init(&idx);
  idx.boot_indexed = true;
  driver_t *boot =
      load(&idx, "lamp", "fuchsia.BIND_PROTOCOL == 1;", NULL, DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  driver_t *solo =
      load(&idx, "solo", "fuchsia.BIND_PROTOCOL == 2;", NULL, DRIVER_BOOT, DFNET_STATUS_OK, NULL);
  driver_t *out = NULL;
  char err[600];
  /* the URL, then the name */
  assert_int_equal(driver_index__resolve(&idx, solo->url, &out, err, sizeof err), DFNET_STATUS_OK);
  assert_ptr_equal(out, solo);
  assert_int_equal(driver_index__resolve(&idx, "solo", &out, err, sizeof err), DFNET_STATUS_OK);
  assert_ptr_equal(out, solo);
  assert_int_equal(driver_index__resolve(&idx, "sol", &out, err, sizeof err),
                   DFNET_STATUS_NOT_FOUND);
  assert_string_equal(err, "no driver with URL or name 'sol'");
  /* a registered package with a boot driver's name: the name is ambiguous, the URLs not */
  driver_t *reg = load(&idx, "lamp", "fuchsia.BIND_PROTOCOL == 3;", NULL, DRIVER_REGISTERED,
                       DFNET_STATUS_OK, NULL);
  assert_int_equal(driver_index__resolve(&idx, "lamp", &out, err, sizeof err),
                   DFNET_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(err, "2 drivers are named 'lamp'"));
  assert_non_null(strstr(err, boot->url));
  assert_non_null(strstr(err, reg->url));
  assert_int_equal(driver_index__resolve(&idx, reg->url, &out, err, sizeof err), DFNET_STATUS_OK);
  assert_ptr_equal(out, reg);
  /* found by its digest while registered */
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  memcpy(digest, reg->digest, sizeof digest);
  assert_ptr_equal(driver_index__find_registered(&idx, digest), reg);
  assert_null(driver_index__find_registered(&idx, boot->digest));
  /* removed: gone by URL, name and digest; its id answers NULL; the name is unique again;
   * matching walks past the hole */
  char url[DFNET_PACKAGE_URL_MAX];
  snprintf(url, sizeof url, "%s", reg->url);
  uint32_t id = reg->id;
  driver_index__remove(&idx, reg);
  assert_null(driver_index__find_url(&idx, url));
  assert_null(driver_index__get(&idx, id));
  assert_null(driver_index__find_registered(&idx, digest));
  assert_int_equal(driver_index__resolve(&idx, "lamp", &out, err, sizeof err), DFNET_STATUS_OK);
  assert_ptr_equal(out, boot);
  dfnet_bind_node_t n;
  dfnet_bind_property_t p;
  driver_match_t r;
  node_of(&n, &p, 3);
  driver_index__match(&idx, &n, NULL, &r);
  assert_int_equal(r.status, DFNET_STATUS_NOT_FOUND);
  /* a later driver gets a new id, never the removed one */
  driver_t *next = load(&idx, "next", "fuchsia.BIND_PROTOCOL == 3;", NULL, DRIVER_REGISTERED,
                        DFNET_STATUS_OK, NULL);
  assert_true(next->id > id);
  driver_index__match(&idx, &n, NULL, &r);
  assert_ptr_equal(r.driver, next);
  driver_index__destroy(&idx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_manifest_table),     cmocka_unit_test(test_read_only_methods),
      cmocka_unit_test(test_manifest_resources), cmocka_unit_test(test_policy),
      cmocka_unit_test(test_bad_packages),       cmocka_unit_test(test_resolve_and_remove),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
