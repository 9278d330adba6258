/* dfnet-bindc end to end (real process, real files): exit codes 0 ok / 1 test failed or no
 * match / 2 bad input, the typo diagnostic with line:col and caret, the dump of the spec's
 * vector, match traces, Fuchsia-format tests, header generation and the generated headers
 * of the dfnet_bind_headers target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "bind/dfnet_hardware_rng.h"
#include "bind/fuchsia_pci.h"
#include "bind/fuchsia_usb.h"
#include "dfnet/bind.h"

static char g_dir[256];

typedef struct run_result {
  int code;
  char out[16384];
  char err[16384];
} run_result;

static void read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t got = read(fd, buf + n, cap - 1 - n);
    if (got <= 0) {
      break;
    }
    n += (size_t)got;
    if (n == cap - 1) {
      break;
    }
  }
  buf[n] = '\0';
}

/* Run dfnet-bindc with args (NULL-terminated), capturing stdout and stderr. */
static void bindc(run_result *r, const char *const *args) {
  char out_path[300], err_path[300];
  snprintf(out_path, sizeof out_path, "%s/stdout", g_dir);
  snprintf(err_path, sizeof err_path, "%s/stderr", g_dir);
  pid_t pid = test_child_fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(o, 1);
    dup2(e, 2);
    const char *argv[32] = {DFNET_BINDC};
    size_t n = 1;
    for (; args[n - 1] != NULL && n < 31; n++) {
      argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    execv(DFNET_BINDC, (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  r->code = WEXITSTATUS(status);
  int fd = open(out_path, O_RDONLY);
  read_all(fd, r->out, sizeof r->out);
  close(fd);
  fd = open(err_path, O_RDONLY);
  read_all(fd, r->err, sizeof r->err);
  close(fd);
}

static const char *path_of(const char *name) {
  static char buf[8][300];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 300, "%s/%s", g_dir, name);
  return p;
}

static void write_file(const char *name, const void *data, size_t len) {
  FILE *f = fopen(path_of(name), "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void write_text(const char *name, const char *text) { write_file(name, text, strlen(text)); }

static const char k_rng_rules[] =
    "using fuchsia.pci;\n"
    "fuchsia.BIND_PROTOCOL == fuchsia.pci.BIND_PROTOCOL.DEVICE;\n"
    "fuchsia.BIND_PCI_VID == fuchsia.pci.BIND_PCI_VID.VIRTIO;\n"
    "accept fuchsia.BIND_PCI_DID {\n"
    "  fuchsia.pci.BIND_PCI_DID.VIRTIO_DEV_TYPE_ENTROPY,\n"
    "  fuchsia.pci.BIND_PCI_DID.VIRTIO_DEV_TYPE_T_ENTROPY,\n"
    "}\n";

static void test_compile_writes_bytecode(void **state) {
  (void)state;
  write_text("rng.bind", k_rng_rules);
  run_result r;
  bindc(&r, (const char *[]){"compile", path_of("rng.bind"), "-o", path_of("rng.bindbc"), NULL});
  assert_int_equal(r.code, 0);
  FILE *f = fopen(path_of("rng.bindbc"), "rb");
  assert_non_null(f);
  uint8_t bytes[512];
  size_t n = fread(bytes, 1, sizeof bytes, f);
  fclose(f);
  dfnet_bind_program_t *prog = NULL;
  assert_int_equal(dfnet_bind_program_load(bytes, n, &prog, NULL, 0), DFNET_STATUS_OK);
  dfnet_bind_program_destroy(prog);
  assert_int_equal(n, 9 + 8 + 8 + 11 + 11 + 15 + 15 + 1 + 1);
}

/* Acceptance: a typo prints file:line:col, the line and a caret; exit 2. */
static void test_compile_typo_reports_line_and_column(void **state) {
  (void)state;
  write_text("typo.bind",
             "using fuchsia.pci;\n\n"
             "fuchsia.BIND_PROTOCOL == fuchsia.pci.BIND_PROTOCOL.DEVICE;\n"
             "fuchsia.BIND_PCI_VID = fuchsia.pci.BIND_PCI_VID.VIRTIO;\n");
  run_result r;
  bindc(&r, (const char *[]){"compile", path_of("typo.bind"), "-o", path_of("typo.bindbc"), NULL});
  assert_int_equal(r.code, 2);
  char want[1024];
  snprintf(want, sizeof want,
           "%s:4:22: error: expected '==' or '!=', found '='\n"
           "fuchsia.BIND_PCI_VID = fuchsia.pci.BIND_PCI_VID.VIRTIO;\n"
           "                     ^\n",
           path_of("typo.bind"));
  assert_string_equal(r.err, want);
  assert_int_equal(access(path_of("typo.bindbc"), F_OK), -1);

  write_text("typo2.bind", "fuchsia.BIND_PROTOCL == 1;\n");
  bindc(&r, (const char *[]){"compile", path_of("typo2.bind"), "-o", path_of("t2.bindbc"), NULL});
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, ":1:1: error: undeclared key 'fuchsia.BIND_PROTOCL'"));
}

/* Acceptance: dump of the spec's vector prints the composite with its two nodes. */
static void test_dump_spec_vector(void **state) {
  (void)state;
  static const uint8_t vec[110] = {
      0x42, 0x49, 0x4e, 0x44, 0x02, 0x00, 0x00, 0x00, 0x00, 0x53, 0x59, 0x4e, 0x42, 0x28,
      0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x77, 0x61, 0x6c, 0x6c, 0x63, 0x72, 0x65,
      0x65, 0x70, 0x65, 0x72, 0x00, 0x02, 0x00, 0x00, 0x00, 0x77, 0x61, 0x67, 0x74, 0x61,
      0x69, 0x6c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x72, 0x65, 0x64, 0x70, 0x6f, 0x6c, 0x6c,
      0x00, 0x43, 0x4f, 0x4d, 0x50, 0x2d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x50,
      0x02, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
      0x01, 0x01, 0x00, 0x00, 0x00, 0x51, 0x03, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00,
      0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30};
  write_file("spec.bindbc", vec, sizeof vec);
  run_result r;
  bindc(&r, (const char *[]){"dump", path_of("spec.bindbc"), NULL});
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out,
                      "Composite: wallcreeper\n"
                      "Node (primary): wagtail\n"
                      "  fuchsia.BIND_PROTOCOL == 1\n"
                      "Node: redpoll\n"
                      "  fuchsia.BIND_PROTOCOL != 2\n"
                      "  Abort\n");
  write_file("bad.bindbc", vec, 60);
  bindc(&r, (const char *[]){"dump", path_of("bad.bindbc"), NULL});
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "invalid bytecode"));
}

static void test_match_prints_trace(void **state) {
  (void)state;
  write_text("rng.bind", k_rng_rules);
  run_result r;
  bindc(&r, (const char *[]){"compile", path_of("rng.bind"), "-o", path_of("rng.bindbc"), NULL});
  assert_int_equal(r.code, 0);
  bindc(&r, (const char *[]){"match", path_of("rng.bindbc"), "fuchsia.BIND_PROTOCOL=31",
                             "fuchsia.BIND_PCI_VID=0x1af4", "fuchsia.BIND_PCI_DID=0x1044", NULL});
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "match\n"));
  bindc(&r, (const char *[]){"match", path_of("rng.bindbc"), "fuchsia.BIND_PROTOCOL=31",
                             "fuchsia.BIND_PCI_VID=0x1af5", NULL});
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "no match\n"));
  assert_non_null(strstr(r.out, "fuchsia.BIND_PCI_VID == 6900"));
  assert_non_null(strstr(r.out, "fuchsia.BIND_PCI_VID is 0x1af5, want 0x1af4"));
  bindc(&r, (const char *[]){"match", path_of("rng.bindbc"), "oops", NULL});
  assert_int_equal(r.code, 2);
  /* A misspelt deprecated key: refused before matching (it was a string key, "no match"). */
  bindc(&r, (const char *[]){"match", path_of("rng.bindbc"), "fuchsia.BIND_PROTOCOL=31",
                             "fuchsia.BIND_PCI_VDI=0x1af4", NULL});
  assert_int_equal(r.code, 2);
  assert_string_equal(r.out, "");
  assert_non_null(strstr(r.err,
                         "dfnet-bindc: match: fuchsia.BIND_PCI_VDI is not a deprecated "
                         "key of fuchsia (did you mean 'fuchsia.BIND_PCI_VID'?)\n"));
}

static const char k_tests_pass[] =
    "[{\"name\": \"entropy\", \"expected\": \"match\", \"device\": {"
    "\"fuchsia.BIND_PROTOCOL\": \"fuchsia.pci.BIND_PROTOCOL.DEVICE\","
    "\"fuchsia.BIND_PCI_VID\": \"fuchsia.pci.BIND_PCI_VID.VIRTIO\","
    "\"fuchsia.BIND_PCI_DID\": \"0x1005\"}},"
    "{\"name\": \"net\", \"expected\": \"abort\", \"device\": {"
    "\"fuchsia.BIND_PROTOCOL\": \"31\", \"fuchsia.BIND_PCI_VID\": \"0x1af4\","
    "\"fuchsia.BIND_PCI_DID\": \"fuchsia.pci.BIND_PCI_DID.VIRTIO_DEV_TYPE_NETWORK\"}}]";

static void test_test_command(void **state) {
  (void)state;
  write_text("rng.bind", k_rng_rules);
  write_text("pass.json", k_tests_pass);
  run_result r;
  bindc(&r,
        (const char *[]){"test", path_of("rng.bind"), "--test-spec", path_of("pass.json"), NULL});
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "[ RUN      ] entropy\n[       OK ] entropy\n"));
  assert_non_null(strstr(r.out, "[  PASSED  ]"));

  write_text("fail.json",
             "[{\"name\": \"wrong\", \"expected\": \"match\", \"device\": "
             "{\"fuchsia.BIND_PROTOCOL\": \"30\"}}]");
  bindc(&r,
        (const char *[]){"test", path_of("rng.bind"), "--test-spec", path_of("fail.json"), NULL});
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "[  FAILED  ] wrong"));
  assert_non_null(strstr(r.out, "fuchsia.BIND_PROTOCOL is 0x1e, want 0x1f"));

  write_text("bad.json", "{ \"not\": \"a list\" ");
  bindc(&r,
        (const char *[]){"test", path_of("rng.bind"), "--test-spec", path_of("bad.json"), NULL});
  assert_int_equal(r.code, 2);

  write_text("badkey.json",
             "[{\"name\": \"k\", \"expected\": \"match\", \"device\": "
             "{\"fuchsia.NOPE\": \"30\"}}]");
  bindc(&r,
        (const char *[]){"test", path_of("rng.bind"), "--test-spec", path_of("badkey.json"), NULL});
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "undeclared key 'fuchsia.NOPE'"));
}

static void test_composite_test_and_lib_dir(void **state) {
  (void)state;
  char libdir[300];
  snprintf(libdir, sizeof libdir, "%s/libs", g_dir);
  mkdir(libdir, 0700);
  write_text("libs/my.birds.bind", "library my.birds;\nenum song { TRILL, WARBLE };\n");
  write_text("comp.bind",
             "composite choir;\nusing my.birds;\n"
             "primary node \"lead\" { my.birds.song == my.birds.song.TRILL; }\n"
             "optional node \"echo\" { fuchsia.BIND_PROTOCOL == 3; }\n");
  write_text("comp.json",
             "[{\"node\": \"lead\", \"tests\": [{\"name\": \"trill\", \"expected\": \"match\","
             "\"device\": {\"my.birds.song\": \"my.birds.song.TRILL\"}},"
             "{\"name\": \"warble\", \"expected\": \"abort\","
             "\"device\": {\"my.birds.song\": \"my.birds.song.WARBLE\"}}]},"
             "{\"node\": \"echo\", \"tests\": [{\"name\": \"three\", \"expected\": \"match\","
             "\"device\": {\"fuchsia.BIND_PROTOCOL\": \"3\"}}]}]");
  run_result r;
  bindc(&r, (const char *[]){"test", path_of("comp.bind"), "--lib-dir", libdir, "--test-spec",
                             path_of("comp.json"), NULL});
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "[ RUN      ] Test for composite node echo"));
  bindc(&r,
        (const char *[]){"test", path_of("comp.bind"), "--test-spec", path_of("comp.json"), NULL});
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "library 'my.birds' not found"));
  bindc(&r, (const char *[]){"compile", "--include", path_of("libs/my.birds.bind"),
                             path_of("comp.bind"), "-o", path_of("comp.bindbc"), NULL});
  assert_int_equal(r.code, 0);
  bindc(&r, (const char *[]){"match", path_of("comp.bindbc"), "my.birds.song=my.birds.song.TRILL",
                             NULL});
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "Node (primary): lead: match"));
  assert_non_null(strstr(r.out, "Node (optional): echo: no match"));
}

static void test_header_command(void **state) {
  (void)state;
  write_text("hdr.bind",
             "library fuchsia.pci;\nextend uint fuchsia.BIND_PROTOCOL { DEVICE = 30, };\n");
  run_result r;
  bindc(&r, (const char *[]){"header", path_of("hdr.bind"), "-o", path_of("hdr.h"), NULL});
  assert_int_equal(r.code, 0);
  FILE *f = fopen(path_of("hdr.h"), "r");
  char text[2048];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_non_null(strstr(text, "#define BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE 30u\n"));
  bindc(&r, (const char *[]){"header", path_of("hdr.bind"), NULL});
  assert_int_equal(r.code, 2);
}

/* The dfnet_bind_headers target's headers, included above, carry Fuchsia's values. */
static void test_generated_headers(void **state) {
  (void)state;
  assert_int_equal(BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE, 0x1f);
  assert_int_equal(BIND_FUCHSIA_PCI_BIND_PCI_VID_VIRTIO, 0x1af4);
  assert_int_equal(BIND_FUCHSIA_PCI_BIND_PCI_DID_VIRTIO_DEV_TYPE_ENTROPY, 0x1044);
  assert_int_equal(BIND_FUCHSIA_USB_BIND_PROTOCOL_INTERFACE, 0x26);
  assert_string_equal(BIND_DFNET_HARDWARE_RNG_SERVICE, "dfnet.hardware.rng.Service");
  assert_string_equal(BIND_DFNET_HARDWARE_RNG_SERVICE_ZIRCONTRANSPORT,
                      "dfnet.hardware.rng.Service.ZirconTransport");
}

static void test_usage_errors(void **state) {
  (void)state;
  run_result r;
  bindc(&r, (const char *[]){"frobnicate", NULL});
  assert_int_equal(r.code, 2);
  bindc(&r, (const char *[]){"compile", path_of("rng.bind"), NULL});
  assert_int_equal(r.code, 2);
  bindc(&r, (const char *[]){"compile", path_of("missing.bind"), "-o", path_of("x"), NULL});
  assert_int_equal(r.code, 2);
  bindc(&r, (const char *[]){"dump", NULL});
  assert_int_equal(r.code, 2);
  bindc(&r, (const char *[]){"compile", "--bogus", NULL});
  assert_int_equal(r.code, 2);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/dfnet-bindc-test-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  static const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compile_writes_bytecode),
      cmocka_unit_test(test_compile_typo_reports_line_and_column),
      cmocka_unit_test(test_dump_spec_vector),
      cmocka_unit_test(test_match_prints_trace),
      cmocka_unit_test(test_test_command),
      cmocka_unit_test(test_composite_test_and_lib_dir),
      cmocka_unit_test(test_header_command),
      cmocka_unit_test(test_generated_headers),
      cmocka_unit_test(test_usage_errors),
  };
  return cmocka_run_group_tests_name("dfnet_bindc", tests, setup, teardown);
}
