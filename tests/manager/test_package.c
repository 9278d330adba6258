/* lib/package: deterministic packing, digests, safe unpacking (lib/package.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/package.h"

static void write_text(const char *dir, const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  char *slash = strrchr(path, '/');
  *slash = 0;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
  assert_int_equal(system(cmd), 0);
  *slash = '/';
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *make_pkg_dir(void) {
  char *dir = strdup("/tmp/dfnet-pkg-XXXXXX");
  assert_non_null(mkdtemp(dir));
  write_text(dir, "meta/demo.json", "{\"program\":{}}\n");
  write_text(dir, "meta/bind/demo.bindbc", "BIND");
  write_text(dir, "driver/demo.so", "ELF...");
  return dir;
}

static void rm_rf(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_pack_is_deterministic(void **state) {
  (void)state;
  char *a = make_pkg_dir();
  char *b = make_pkg_dir();
  /* Different mtimes and creation order must not change the bytes. */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "touch -d '2001-01-01' '%s/driver/demo.so'", b);
  assert_int_equal(system(cmd), 0);
  dfnet_package_buf_t pa = {0}, pb = {0};
  char err[256];
  assert_int_equal(dfnet_package_pack_dir(a, &pa, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(dfnet_package_pack_dir(b, &pb, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(pa.size, pb.size);
  assert_memory_equal(pa.data, pb.data, pa.size);
  uint8_t d[32];
  dfnet_package_digest(pa.data, pa.size, d);
  assert_int_equal(dfnet_package_verify(pb.data, pb.size, d), DFNET_STATUS_OK);
  pb.data[pb.size / 2] ^= 1;
  assert_int_equal(dfnet_package_verify(pb.data, pb.size, d), DFNET_STATUS_DATA_LOSS);
  dfnet_package_buf_free(&pa);
  dfnet_package_buf_free(&pb);
  rm_rf(a);
  rm_rf(b);
  free(a);
  free(b);
}

static void test_read_entry_and_unpack(void **state) {
  (void)state;
  char *src = make_pkg_dir();
  dfnet_package_buf_t pkg = {0}, body = {0};
  char err[256];
  assert_int_equal(dfnet_package_pack_dir(src, &pkg, err, sizeof err), DFNET_STATUS_OK);
  assert_int_equal(dfnet_package_read_entry(pkg.data, pkg.size, "meta/bind/demo.bindbc", 100, &body,
                                            err, sizeof err),
                   DFNET_STATUS_OK);
  assert_int_equal(body.size, 4);
  assert_memory_equal(body.data, "BIND", 4);
  dfnet_package_buf_free(&body);
  assert_int_equal(
      dfnet_package_read_entry(pkg.data, pkg.size, "meta/other.json", 100, &body, err, sizeof err),
      DFNET_STATUS_NOT_FOUND);
  assert_int_equal(
      dfnet_package_read_entry(pkg.data, pkg.size, "meta/demo.json", 3, &body, err, sizeof err),
      DFNET_STATUS_RESOURCE_EXHAUSTED);

  char *dst = strdup("/tmp/dfnet-unpack-XXXXXX");
  assert_non_null(mkdtemp(dst));
  assert_int_equal(dfnet_package_unpack(pkg.data, pkg.size, dst, err, sizeof err), DFNET_STATUS_OK);
  char path[512];
  snprintf(path, sizeof path, "%s/driver/demo.so", dst);
  assert_int_equal(access(path, R_OK), 0);
  /* A second unpack into the same directory refuses to overwrite. */
  assert_int_equal(dfnet_package_unpack(pkg.data, pkg.size, dst, err, sizeof err),
                   DFNET_STATUS_ALREADY_EXISTS);
  dfnet_package_buf_free(&pkg);
  rm_rf(src);
  rm_rf(dst);
  free(src);
  free(dst);
}

/* Build a tar in memory with one hostile entry. */
static la_ssize_t grow_write(struct archive *a, void *ud, const void *buf, size_t len) {
  (void)a;
  dfnet_package_buf_t *b = ud;
  b->data = realloc(b->data, b->size + len);
  memcpy(b->data + b->size, buf, len);
  b->size += len;
  return (la_ssize_t)len;
}

static dfnet_package_buf_t hostile_tar(const char *name, mode_t type, const char *link) {
  dfnet_package_buf_t b = {0};
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(a, &b, NULL, grow_write, NULL);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, 0644);
  if (link)
    archive_entry_set_symlink(e, link);
  archive_entry_set_size(e, type == AE_IFREG ? 3 : 0);
  archive_write_header(a, e);
  if (type == AE_IFREG)
    archive_write_data(a, "abc", 3);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return b;
}

static void test_unpack_refuses_hostile_entries(void **state) {
  (void)state;
  static const struct {
    const char *name;
    mode_t type;
    const char *link;
  } cases[] = {
      {"/etc/evil", AE_IFREG, NULL},
      {"../evil", AE_IFREG, NULL},
      {"meta/../../evil", AE_IFREG, NULL},
      {"meta/./x", AE_IFREG, NULL},
      {"link", AE_IFLNK, "/etc/passwd"},
      {"link2", AE_IFLNK, "../../x"},
      {"fifo", AE_IFIFO, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dfnet_package_buf_t t = hostile_tar(cases[i].name, cases[i].type, cases[i].link);
    char *dst = strdup("/tmp/dfnet-hostile-XXXXXX");
    assert_non_null(mkdtemp(dst));
    char err[256] = "";
    dfnet_status_t st = dfnet_package_unpack(t.data, t.size, dst, err, sizeof err);
    if (st != DFNET_STATUS_INVALID_ARGUMENT)
      fail_msg("case %s: got %s", cases[i].name, dfnet_status_str(st));
    assert_non_null(strstr(err, "refused"));
    rm_rf(dst);
    free(dst);
    dfnet_package_buf_free(&t);
  }
  /* Garbage is not an archive. */
  char *dst = strdup("/tmp/dfnet-hostile-XXXXXX");
  assert_non_null(mkdtemp(dst));
  uint8_t junk[1024];
  memset(junk, 0x5a, sizeof junk);
  char err[256];
  assert_int_equal(dfnet_package_unpack(junk, sizeof junk, dst, err, sizeof err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  rm_rf(dst);
  free(dst);
}

static void test_pack_refuses_links(void **state) {
  (void)state;
  char *src = make_pkg_dir();
  char path[512];
  snprintf(path, sizeof path, "%s/driver/link.so", src);
  assert_int_equal(symlink("/etc/passwd", path), 0);
  dfnet_package_buf_t pkg = {0};
  char err[512];
  assert_int_equal(dfnet_package_pack_dir(src, &pkg, err, sizeof err),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "link.so"));
  assert_null(pkg.data);
  assert_int_equal(dfnet_package_pack_dir("/nonexistent/dfnet", &pkg, err, sizeof err),
                   DFNET_STATUS_NOT_FOUND);
  rm_rf(src);
  free(src);
}

static void test_names_urls_digests(void **state) {
  (void)state;
  assert_true(dfnet_package_name_valid("rng-virtio_2"));
  assert_false(dfnet_package_name_valid(""));
  assert_false(dfnet_package_name_valid("-x"));
  assert_false(dfnet_package_name_valid("a/b"));
  assert_false(dfnet_package_name_valid("a.b"));
  char url[256];
  assert_int_equal(dfnet_package_url("rng", NULL, url, sizeof url), DFNET_STATUS_OK);
  assert_string_equal(url, "dfnet-boot:///rng#meta/rng.json");
  uint8_t d[32];
  for (int i = 0; i < 32; i++)
    d[i] = (uint8_t)(0xa0 + i);
  assert_int_equal(dfnet_package_url("rng", d, url, sizeof url), DFNET_STATUS_OK);
  assert_string_equal(url, "dfnet-pkg://a0a1a2a3a4a5/rng#meta/rng.json");
  assert_int_equal(dfnet_package_url("rng", d, url, 10), DFNET_STATUS_OUT_OF_RANGE);
  char hex[65];
  dfnet_package_digest_hex(d, hex);
  uint8_t back[32];
  assert_int_equal(dfnet_package_digest_parse(hex, back), DFNET_STATUS_OK);
  assert_memory_equal(back, d, 32);
  assert_int_equal(dfnet_package_digest_parse("zz", back), DFNET_STATUS_INVALID_ARGUMENT);
  /* SHA-256("abc") from FIPS 180-2. */
  dfnet_package_digest((const uint8_t *)"abc", 3, d);
  dfnet_package_digest_hex(d, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pack_is_deterministic),
      cmocka_unit_test(test_read_entry_and_unpack),
      cmocka_unit_test(test_unpack_refuses_hostile_entries),
      cmocka_unit_test(test_pack_refuses_links),
      cmocka_unit_test(test_names_urls_digests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
