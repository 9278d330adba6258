/* Cross-check of our codec with the reference implementation, protoc:
 *  - a frame encoded by us decodes with `protoc --decode=dfnet.v1.Envelope` to the
 *    expected text;
 *  - for every message kind, our bytes -> protoc text -> `protoc --encode` bytes -> our
 *    decoder gives back the same envelope (re-encoded byte for byte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope_samples.h"
#include "lib/envelope.h"

#define CAP 65536

static char dir[] = "/tmp/dfnet-protoc-XXXXXX";

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static size_t read_file(const char *path, void *data, size_t cap) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(data, 1, cap, f);
  assert_true(n < cap);
  fclose(f);
  return n;
}

static void protoc(const char *mode, const char *in, const char *out) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "'%s' --%s=dfnet.v1.Envelope -I'%s' dfnet/v1/envelope.proto < '%s' > '%s'", DFNET_PROTOC,
           mode, DFNET_PROTO_ROOT, in, out);
  if (system(cmd) != 0)
    fail_msg("protoc failed: %s", cmd);
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_ours_decodes_with_protoc_to_expected_text(void **state) {
  (void)state;
  dfnet_envelope_t *e = malloc(sizeof *e);
  static uint8_t buf[CAP];
  char bin[256], txt[256], text[4096] = {0};
  size_t len = 0;
  e->pb.id = 0;
  dfnet_envelope_init(e);
  e->pb.id = 7;
  e->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(e->pb.msg.call.target, sizeof e->pb.msg.call.target, "class/rng/000");
  snprintf(e->pb.msg.call.method, sizeof e->pb.msg.call.method, "/dfnet.hw.rng.Rng/Read");
  e->pb.msg.call.deadline_ms = 2500;
  e->bulk.data = (const uint8_t *)"\x08\x20";
  e->bulk.size = 2;
  assert_int_equal(dfnet_envelope_encode(e, buf, CAP, &len, NULL), DFNET_STATUS_OK);
  snprintf(bin, sizeof bin, "%s/call.bin", dir);
  snprintf(txt, sizeof txt, "%s/call.txt", dir);
  write_file(bin, buf, len);
  protoc("decode", bin, txt);
  read_file(txt, text, sizeof text);
  assert_string_equal(text,
                      "id: 7\n"
                      "call {\n"
                      "  target: \"class/rng/000\"\n"
                      "  method: \"/dfnet.hw.rng.Rng/Read\"\n"
                      "  deadline_ms: 2500\n"
                      "}\n"
                      "bulk: \"\\010 \"\n");
  free(e);
}

static void test_protoc_text_decodes_with_ours(void **state) {
  (void)state;
  static const char text[] =
      "id: 42\n"
      "node_add {\n"
      "  parent: \"dev.lab-a.usb\"\n"
      "  name: \"001_002\"\n"
      "  properties { int_key: 1 enum_value: \"fuchsia.usb.BIND_PROTOCOL.DEVICE\" }\n"
      "  properties { int_key: 0x200 int_value: 0x04d9 }\n"
      "  properties { str_key: \"dfnet.usb.PORT_PATH\" str_value: \"1-1\" }\n"
      "  properties { str_key: \"fuchsia.hardware.usb.Device\" bool_value: true }\n"
      "  class_name: \"usb-device\"\n"
      "}\n";
  char txt[256], bin[256];
  static uint8_t buf[CAP];
  snprintf(txt, sizeof txt, "%s/node.txt", dir);
  snprintf(bin, sizeof bin, "%s/node.bin", dir);
  write_file(txt, text, strlen(text));
  protoc("encode", txt, bin);
  size_t len = read_file(bin, buf, CAP);
  dfnet_envelope_t *e = malloc(sizeof *e);
  const char *err = NULL;
  assert_int_equal(dfnet_envelope_decode(buf, len, DFNET_FRAME_MAX_DEFAULT, e, &err),
                   DFNET_STATUS_OK);
  assert_int_equal(e->pb.id, 42);
  assert_int_equal(e->pb.which_msg, dfnet_v1_Envelope_node_add_tag);
  const dfnet_v1_NodeAdd *n = &e->pb.msg.node_add;
  assert_string_equal(n->parent, "dev.lab-a.usb");
  assert_string_equal(n->name, "001_002");
  assert_int_equal(n->properties_count, 4);
  assert_int_equal(n->properties[0].which_key, dfnet_v1_NodeProperty_int_key_tag);
  assert_int_equal(n->properties[0].key.int_key, 1);
  assert_int_equal(n->properties[0].which_value, dfnet_v1_NodeProperty_enum_value_tag);
  assert_string_equal(n->properties[0].value.enum_value, "fuchsia.usb.BIND_PROTOCOL.DEVICE");
  assert_int_equal(n->properties[1].key.int_key, 0x200);
  assert_int_equal(n->properties[1].value.int_value, 0x04d9);
  assert_string_equal(n->properties[2].key.str_key, "dfnet.usb.PORT_PATH");
  assert_string_equal(n->properties[2].value.str_value, "1-1");
  assert_int_equal(n->properties[3].which_value, dfnet_v1_NodeProperty_bool_value_tag);
  assert_true(n->properties[3].value.bool_value);
  assert_string_equal(n->class_name, "usb-device");
  free(e);
}

static void test_every_kind_through_protoc(void **state) {
  (void)state;
  dfnet_envelope_t *in = malloc(sizeof *in), *out = malloc(sizeof *out);
  static uint8_t ours[CAP], theirs[CAP], again[CAP];
  for (size_t i = 0; i < sample_count(); i++) {
    const char *name = sample_fill(i, in);
    char bin[256], txt[256], bin2[256];
    size_t len = 0, len2 = 0;
    snprintf(bin, sizeof bin, "%s/%s.bin", dir, name);
    snprintf(txt, sizeof txt, "%s/%s.txt", dir, name);
    snprintf(bin2, sizeof bin2, "%s/%s.protoc.bin", dir, name);
    assert_int_equal(dfnet_envelope_encode(in, ours, CAP, &len, NULL), DFNET_STATUS_OK);
    write_file(bin, ours, len);
    protoc("decode", bin, txt);
    protoc("encode", txt, bin2);
    size_t tlen = read_file(bin2, theirs, CAP);
    const char *err = NULL;
    dfnet_status_t st = dfnet_envelope_decode(theirs, tlen, DFNET_FRAME_MAX_DEFAULT, out, &err);
    if (st != DFNET_STATUS_OK)
      fail_msg("%s: protoc's bytes do not decode: %s", name, err);
    assert_int_equal(dfnet_envelope_encode(out, again, CAP, &len2, NULL), DFNET_STATUS_OK);
    if (len2 != len || memcmp(again, ours, len) != 0)
      fail_msg("%s: differs after the trip through protoc", name);
  }
  free(in);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ours_decodes_with_protoc_to_expected_text),
      cmocka_unit_test(test_protoc_text_decodes_with_ours),
      cmocka_unit_test(test_every_kind_through_protoc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
