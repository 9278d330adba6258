/* lib/fileio.c against real files in a temporary directory: the errno map, bounded reads,
 * atomic writes (one made to fail half-way leaves the old file as it was), sorted
 * directory names and tree walks. Every case closes what it opened (fds counted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileio.h"

typedef struct fixture {
  char dir[64];
  int fds; /* open at setup */
} fixture_t;

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
    n += de->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return n;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/dfnet-fileio-XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  f->fds = count_fds();
  *state = f;
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int teardown(void **state) {
  fixture_t *f = *state;
  assert_int_equal(count_fds(), f->fds); /* nothing leaked */
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static const char *path_in(const fixture_t *f, const char *name) {
  static char path[4][256];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, sizeof path[0], "%s/%s", f->dir, name);
  return p;
}

static void put(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  assert_int_equal(fputs(text, fp) >= 0, 1);
  assert_int_equal(fclose(fp), 0);
}

/* dfnet_dir_list(dir) joined with '|'. */
static void names_of(const char *dir, char *out, size_t size) {
  dfnet_dir_names_t names;
  assert_int_equal(dfnet_dir_list(dir, &names, NULL, 0), DFNET_STATUS_OK);
  out[0] = '\0';
  for (size_t i = 0; i < names.count; i++)
    snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "|" : "", names.names[i]);
  dfnet_dir_names_free(&names);
}

/* ---- The errno map -------------------------------------------------------------------- */

static void test_errno_map(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int err;
    dfnet_status_t want;
  } cases[] = {
      {"ENOENT", ENOENT, DFNET_STATUS_NOT_FOUND},
      {"ENOTDIR", ENOTDIR, DFNET_STATUS_NOT_FOUND},
      {"EACCES", EACCES, DFNET_STATUS_PERMISSION_DENIED},
      {"EPERM", EPERM, DFNET_STATUS_PERMISSION_DENIED},
      {"EROFS", EROFS, DFNET_STATUS_PERMISSION_DENIED},
      {"ENOSPC", ENOSPC, DFNET_STATUS_RESOURCE_EXHAUSTED},
      {"EDQUOT", EDQUOT, DFNET_STATUS_RESOURCE_EXHAUSTED},
      {"EFBIG", EFBIG, DFNET_STATUS_RESOURCE_EXHAUSTED},
      {"ENOMEM", ENOMEM, DFNET_STATUS_RESOURCE_EXHAUSTED},
      {"EMFILE", EMFILE, DFNET_STATUS_RESOURCE_EXHAUSTED},
      {"EEXIST", EEXIST, DFNET_STATUS_ALREADY_EXISTS},
      {"EINVAL", EINVAL, DFNET_STATUS_INVALID_ARGUMENT},
      {"ENAMETOOLONG", ENAMETOOLONG, DFNET_STATUS_INVALID_ARGUMENT},
      {"ELOOP", ELOOP, DFNET_STATUS_INVALID_ARGUMENT},
      {"EIO", EIO, DFNET_STATUS_UNAVAILABLE},
      {"EAGAIN", EAGAIN, DFNET_STATUS_UNAVAILABLE},
      {"EBUSY", EBUSY, DFNET_STATUS_UNAVAILABLE},
      {"ENODEV", ENODEV, DFNET_STATUS_UNAVAILABLE},
      {"ENXIO", ENXIO, DFNET_STATUS_UNAVAILABLE},
      {"EBADF", EBADF, DFNET_STATUS_INTERNAL},
      {"EFAULT", EFAULT, DFNET_STATUS_INTERNAL},
      {"EXDEV (not listed)", EXDEV, DFNET_STATUS_UNAVAILABLE},
      {"ETIMEDOUT (not listed)", ETIMEDOUT, DFNET_STATUS_UNAVAILABLE},
      {"0 (not an error)", 0, DFNET_STATUS_UNAVAILABLE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dfnet_status_t got = dfnet_errno_status(cases[i].err);
    if (got != cases[i].want)
      fail_msg("%s: %s, want %s", cases[i].name, dfnet_status_str(got),
               dfnet_status_str(cases[i].want));
  }
  /* Every row of the map is what dfnet_errno_status() answers. */
#define ROW_CHECK(e, status) assert_int_equal(dfnet_errno_status(e), DFNET_STATUS_##status);
  DFNET_ERRNO_MAP(ROW_CHECK)
#undef ROW_CHECK
}

/* ---- Reading --------------------------------------------------------------------------- */

static void test_read_bound(void **state) {
  fixture_t *f = *state;
  const char *p = path_in(f, "ten");
  put(p, "0123456789");
  dfnet_file_t file;
  char why[256];
  /* Exactly the bound: the whole file, NUL-terminated. */
  assert_int_equal(dfnet_file_read(p, 10, 0, &file, why, sizeof why), DFNET_STATUS_OK);
  assert_int_equal(file.size, 10);
  assert_string_equal((const char *)file.data, "0123456789");
  assert_true(S_ISREG(file.mode));
  assert_false(file.secret);
  dfnet_file_free(&file);
  assert_null(file.data);
  dfnet_file_free(&file); /* twice: a no-op */
  /* One byte over: OUT_OF_RANGE, nothing handed out, the reason says the bound. */
  assert_int_equal(dfnet_file_read(p, 9, 0, &file, why, sizeof why), DFNET_STATUS_OUT_OF_RANGE);
  assert_null(file.data);
  assert_int_equal(file.size, 0);
  assert_non_null(strstr(why, "over 9"));
  /* Empty: a valid empty string. */
  put(path_in(f, "empty"), "");
  assert_int_equal(dfnet_file_read(path_in(f, "empty"), 0, DFNET_FILE_SECRET, &file, NULL, 0),
                   DFNET_STATUS_OK);
  assert_int_equal(file.size, 0);
  assert_string_equal((const char *)file.data, "");
  assert_true(file.secret);
  dfnet_file_free(&file);
}

/* A file longer than its size says (procfs says 0) is read to its end, still bounded. */
static void test_read_past_stated_size(void **state) {
  (void)state;
  dfnet_file_t file;
  assert_int_equal(dfnet_file_read("/proc/self/status", 1 << 20, 0, &file, NULL, 0),
                   DFNET_STATUS_OK);
  assert_true(file.size > 100);
  assert_non_null(strstr((const char *)file.data, "Pid:"));
  dfnet_file_free(&file);
  assert_int_equal(dfnet_file_read("/proc/self/status", 20, 0, &file, NULL, 0),
                   DFNET_STATUS_OUT_OF_RANGE);
  assert_null(file.data);
}

static void test_read_errors(void **state) {
  fixture_t *f = *state;
  static const struct {
    const char *name;
    const char *path; /* below the fixture's directory */
    unsigned flags;
    dfnet_status_t want;
    const char *why; /* in the reason */
  } cases[] = {
      {"missing file", "absent", 0, DFNET_STATUS_NOT_FOUND, "opening: "},
      {"missing directory", "absent/x", 0, DFNET_STATUS_NOT_FOUND, "(errno 2)"},
      {"a directory", "sub", 0, DFNET_STATUS_INVALID_ARGUMENT, "not a regular file"},
      {"a link, NOFOLLOW", "link", DFNET_FILE_NOFOLLOW, DFNET_STATUS_INVALID_ARGUMENT, "errno"},
      {"a link followed", "link", 0, DFNET_STATUS_OK, NULL},
  };
  assert_int_equal(mkdir(path_in(f, "sub"), 0700), 0);
  put(path_in(f, "target"), "t");
  assert_int_equal(symlink("target", path_in(f, "link")), 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dfnet_file_t file;
    char why[256] = "";
    dfnet_status_t got =
        dfnet_file_read(path_in(f, cases[i].path), 100, cases[i].flags, &file, why, sizeof why);
    if (got != cases[i].want)
      fail_msg("%s: %s (%s)", cases[i].name, dfnet_status_str(got), why);
    if (cases[i].why != NULL && strstr(why, cases[i].why) == NULL)
      fail_msg("%s: reason \"%s\"", cases[i].name, why);
    if (got != DFNET_STATUS_OK)
      assert_null(file.data);
    dfnet_file_free(&file);
  }
}

static void test_read_into(void **state) {
  fixture_t *f = *state;
  const char *p = path_in(f, "attr");
  put(p, "0x1af4\n");
  char buf[8];
  size_t len = 99;
  assert_int_equal(dfnet_file_read_into(p, 0, buf, sizeof buf, &len, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(len, 7);
  assert_string_equal(buf, "0x1af4\n");
  /* cap - 1 bytes fit; one more does not: OUT_OF_RANGE with the first cap - 1 kept. */
  char small[7];
  assert_int_equal(dfnet_file_read_into(p, 0, small, sizeof small, &len, NULL, 0),
                   DFNET_STATUS_OUT_OF_RANGE);
  assert_int_equal(len, 6);
  assert_string_equal(small, "0x1af4");
  assert_int_equal(dfnet_file_read_into(p, 0, small, 0, &len, NULL, 0), DFNET_STATUS_OUT_OF_RANGE);
  assert_int_equal(dfnet_file_read_into(path_in(f, "absent"), 0, buf, sizeof buf, &len, NULL, 0),
                   DFNET_STATUS_NOT_FOUND);
  assert_string_equal(buf, "");
}

/* ---- Writing ---------------------------------------------------------------------------- */

static void test_write_atomic(void **state) {
  fixture_t *f = *state;
  const char *p = path_in(f, "out");
  mode_t old_umask = umask(077); /* the mode is the one given, whatever the umask */
  assert_int_equal(dfnet_file_write_atomic(p, "first", 5, 0644, NULL, 0), DFNET_STATUS_OK);
  umask(old_umask);
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0644);
  /* Replaced whole, in two parts, with a new mode. */
  struct iovec parts[2] = {{.iov_base = "sec", .iov_len = 3}, {.iov_base = "ond", .iov_len = 3}};
  assert_int_equal(dfnet_file_writev_atomic(p, parts, 2, 0600, NULL, 0), DFNET_STATUS_OK);
  dfnet_file_t file;
  assert_int_equal(dfnet_file_read(p, 100, 0, &file, NULL, 0), DFNET_STATUS_OK);
  assert_string_equal((const char *)file.data, "second");
  assert_int_equal(file.mode & 07777, 0600);
  dfnet_file_free(&file);
  char names[256];
  names_of(f->dir, names, sizeof names);
  assert_string_equal(names, "out"); /* no temporary file left */
}

/* The write fails half-way (the file size limit: a full disk without one): the old file
 * is untouched and no temporary file is left. */
static void test_write_failure_keeps_old_file(void **state) {
  fixture_t *f = *state;
  const char *p = path_in(f, "keep");
  put(p, "old contents");
  static char big[64 * 1024];
  memset(big, 'x', sizeof big);
  struct rlimit was;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
  struct rlimit small = {.rlim_cur = 4096, .rlim_max = was.rlim_max};
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  char why[256] = "";
  dfnet_status_t st = dfnet_file_write_atomic(p, big, sizeof big, 0644, why, sizeof why);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
  signal(SIGXFSZ, old_handler);
  assert_int_equal(st, DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(why, "writing: "));
  assert_non_null(strstr(why, "(errno 27)")); /* EFBIG */
  dfnet_file_t file;
  assert_int_equal(dfnet_file_read(p, 100, 0, &file, NULL, 0), DFNET_STATUS_OK);
  assert_string_equal((const char *)file.data, "old contents");
  dfnet_file_free(&file);
  char names[256];
  names_of(f->dir, names, sizeof names);
  assert_string_equal(names, "keep");
}

static void test_write_errors(void **state) {
  fixture_t *f = *state;
  char why[256] = "";
  assert_int_equal(dfnet_file_write_atomic(path_in(f, "absent/x"), "x", 1, 0644, why, sizeof why),
                   DFNET_STATUS_NOT_FOUND);
  assert_non_null(strstr(why, "creating a temporary file"));
  assert_int_equal(dfnet_file_write_atomic("", "x", 1, 0644, NULL, 0),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_int_equal(dfnet_file_write_atomic(NULL, "x", 1, 0644, NULL, 0),
                   DFNET_STATUS_INVALID_ARGUMENT);
  /* Over a directory: the rename fails, the directory stays, no temporary file. */
  assert_int_equal(mkdir(path_in(f, "d"), 0700), 0);
  put(path_in(f, "d/inside"), "i");
  assert_int_not_equal(dfnet_file_write_atomic(path_in(f, "d"), "x", 1, 0644, why, sizeof why),
                       DFNET_STATUS_OK);
  assert_non_null(strstr(why, "renaming into place"));
  char names[256];
  names_of(f->dir, names, sizeof names);
  assert_string_equal(names, "d");
}

/* ---- Paths ------------------------------------------------------------------------------ */

static void test_path_below(void **state) {
  (void)state;
  static const struct {
    const char *rel;
    bool below;
  } cases[] = {
      {"a", true},     {"driver/x.so", true},  {"dir/", true},
      {"a//", true},   {".hidden", true},      {"a..b/c", true},
      {"", false},     {"/etc/passwd", false}, {".", false},
      {"..", false},   {"a/../../b", false},   {"a/./b", false},
      {"a//b", false}, {"/", false},           {"0123456789abcdefg", false}, /* over max (16) */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (dfnet_path_below(cases[i].rel, 16) != cases[i].below)
      fail_msg("\"%s\": want %s", cases[i].rel, cases[i].below ? "below" : "refused");
  }
  assert_false(dfnet_path_below(NULL, 16));
}

/* ---- Directories and trees ------------------------------------------------------------ */

static void test_dir_list_sorted(void **state) {
  fixture_t *f = *state;
  const char *make[] = {"b", "a.b", "a-c", "B", ".hidden", "a"};
  for (size_t i = 0; i < sizeof make / sizeof make[0]; i++)
    put(path_in(f, make[i]), "");
  char names[256];
  names_of(f->dir, names, sizeof names);
  assert_string_equal(names, ".hidden|B|a|a-c|a.b|b"); /* bytes, not the locale */
  dfnet_dir_names_t none;
  char why[256];
  assert_int_equal(dfnet_dir_list(path_in(f, "absent"), &none, why, sizeof why),
                   DFNET_STATUS_NOT_FOUND);
  assert_null(none.names);
  assert_int_equal(none.count, 0);
  assert_non_null(strstr(why, "reading the directory"));
  dfnet_dir_names_free(&none);
}

typedef struct seen {
  char list[512];
  const char *stop_at; /* rel that returns DATA_LOSS */
} seen_t;

static dfnet_status_t see(void *ctx, const char *rel, const char *path, const struct stat *sb,
                          char *why, size_t why_size) {
  seen_t *s = ctx;
  assert_true(S_ISREG(sb->st_mode));
  assert_non_null(strstr(path, rel));
  snprintf(s->list + strlen(s->list), sizeof s->list - strlen(s->list), "%s%s",
           s->list[0] ? "|" : "", rel);
  if (s->stop_at != NULL && strcmp(rel, s->stop_at) == 0) {
    snprintf(why, why_size, "stopped at %s", rel);
    return DFNET_STATUS_DATA_LOSS;
  }
  return DFNET_STATUS_OK;
}

static void test_tree_walk(void **state) {
  fixture_t *f = *state;
  assert_int_equal(mkdir(path_in(f, "t"), 0700), 0);
  assert_int_equal(mkdir(path_in(f, "t/sub"), 0700), 0);
  assert_int_equal(mkdir(path_in(f, "t/e"), 0700), 0);
  put(path_in(f, "t/z"), "");
  put(path_in(f, "t/sub/a"), "");
  put(path_in(f, "t/.h"), "");
  seen_t s = {0};
  char why[512] = "";
  assert_int_equal(dfnet_tree_walk(path_in(f, "t"), 64, see, &s, why, sizeof why), DFNET_STATUS_OK);
  assert_string_equal(s.list, ".h|sub/a|z");
  /* The visitor's status stops the walk. */
  s = (seen_t){.stop_at = "sub/a"};
  assert_int_equal(dfnet_tree_walk(path_in(f, "t"), 64, see, &s, why, sizeof why),
                   DFNET_STATUS_DATA_LOSS);
  assert_string_equal(s.list, ".h|sub/a");
  assert_string_equal(why, "stopped at sub/a");
  /* A rel path over the bound. */
  s = (seen_t){0};
  assert_int_equal(dfnet_tree_walk(path_in(f, "t"), 4, see, &s, why, sizeof why),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "sub/a: path longer than 4 bytes"));
  /* A link is never followed. */
  assert_int_equal(symlink("/etc/passwd", path_in(f, "t/sub/link")), 0);
  s = (seen_t){0};
  assert_int_equal(dfnet_tree_walk(path_in(f, "t"), 64, see, &s, why, sizeof why),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "sub/link: a link or special file"));
  /* No root. */
  assert_int_equal(dfnet_tree_walk(path_in(f, "absent"), 64, see, &s, why, sizeof why),
                   DFNET_STATUS_NOT_FOUND);
}

static void test_tree_walk_depth(void **state) {
  fixture_t *f = *state;
  char path[512];
  snprintf(path, sizeof path, "%s/deep", f->dir);
  for (int i = 0; i <= DFNET_TREE_DEPTH_MAX; i++) {
    assert_int_equal(mkdir(path, 0700), 0);
    strcat(path, "/d");
  }
  /* DFNET_TREE_DEPTH_MAX levels below the root are entered... */
  seen_t s = {0};
  char why[512] = "";
  assert_int_equal(dfnet_tree_walk(path_in(f, "deep"), 256, see, &s, why, sizeof why),
                   DFNET_STATUS_OK);
  /* ...one more is refused. */
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(dfnet_tree_walk(path_in(f, "deep"), 256, see, &s, why, sizeof why),
                   DFNET_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "nested too deep"));
}

/* A case with a fresh temporary directory, removed after it. */
#define IN_TMPDIR(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errno_map), cmocka_unit_test(test_path_below),
      IN_TMPDIR(test_read_bound),       IN_TMPDIR(test_read_past_stated_size),
      IN_TMPDIR(test_read_errors),      IN_TMPDIR(test_read_into),
      IN_TMPDIR(test_write_atomic),     IN_TMPDIR(test_write_failure_keeps_old_file),
      IN_TMPDIR(test_write_errors),     IN_TMPDIR(test_dir_list_sorted),
      IN_TMPDIR(test_tree_walk),        IN_TMPDIR(test_tree_walk_depth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
