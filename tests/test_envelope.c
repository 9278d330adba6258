/* lib/envelope.c: round trip of every message kind, and a table of malformed frames
 * (each gives an error status, none crashes; run under ASan+UBSan by scripts/test.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <pb_common.h>

#include "envelope_samples.h"
#include "lib/envelope.h"

#define BUF_CAP 65536

static dfnet_envelope_t *env_new(void) {
  dfnet_envelope_t *e = malloc(sizeof *e);
  assert_non_null(e);
  dfnet_envelope_init(e);
  return e;
}

static void test_round_trip_every_kind(void **state) {
  (void)state;
  dfnet_envelope_t *in = env_new(), *out = env_new();
  uint8_t *buf = malloc(BUF_CAP), *again = malloc(BUF_CAP);
  for (size_t i = 0; i < sample_count(); i++) {
    const char *name = sample_fill(i, in);
    size_t len = 0, len2 = 0, predicted = 0;
    const char *err = NULL;
    assert_int_equal(dfnet_envelope_encoded_size(in, &predicted, &err), DFNET_STATUS_OK);
    assert_int_equal(dfnet_envelope_encode(in, buf, BUF_CAP, &len, &err), DFNET_STATUS_OK);
    assert_int_equal(predicted, len);
    assert_int_equal(dfnet_envelope_decode(buf, len, DFNET_FRAME_MAX_DEFAULT, out, &err),
                     DFNET_STATUS_OK);
    assert_string_equal(dfnet_envelope_msg_name(out->pb.which_msg), name);
    assert_int_equal(out->pb.id, in->pb.id);
    assert_int_equal(out->bulk.size, in->bulk.size);
    if (in->bulk.size > 0) {
      assert_memory_equal(out->bulk.data, in->bulk.data, in->bulk.size);
      /* The bulk is a view into the frame, not a copy. */
      assert_true(out->bulk.data >= buf && out->bulk.data + out->bulk.size <= buf + len);
    }
    /* Re-encoding the decoded envelope gives the same bytes: nothing lost or changed. */
    assert_int_equal(dfnet_envelope_encode(out, again, BUF_CAP, &len2, &err), DFNET_STATUS_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
  }
  free(in);
  free(out);
  free(buf);
  free(again);
}

static void test_every_member_has_a_sample(void **state) {
  (void)state;
  /* Walk the generated descriptor: every oneof member of Envelope.msg must be covered. */
  dfnet_envelope_t *e = env_new();
  pb_field_iter_t it;
  size_t members = 0;
  assert_true(pb_field_iter_begin(&it, dfnet_v1_Envelope_fields, &e->pb));
  do {
    if (PB_HTYPE(it.type) == PB_HTYPE_ONEOF) {
      members++;
      int found = 0;
      for (size_t i = 0; i < sample_count(); i++) {
        sample_fill(i, e);
        if (e->pb.which_msg == it.tag)
          found = 1;
      }
      if (!found)
        fail_msg("no sample for Envelope member tag %u", (unsigned)it.tag);
    }
  } while (pb_field_iter_next(&it));
  assert_int_equal(members, sample_count());
  free(e);
}

static void test_encode_into_small_buffer(void **state) {
  (void)state;
  dfnet_envelope_t *e = env_new();
  uint8_t buf[16];
  size_t len = 0;
  const char *err = NULL;
  sample_typical_call(e);
  assert_int_equal(dfnet_envelope_encode(e, buf, sizeof buf, &len, &err),
                   DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(err);
  free(e);
}

/* ---- a tiny protobuf writer for hand-made frames ---- */
typedef struct {
  uint8_t b[8192];
  size_t n;
} raw_t;
static void raw_varint(raw_t *r, uint64_t v) {
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    r->b[r->n++] = byte | (v ? 0x80 : 0);
  } while (v);
}
static void raw_tag(raw_t *r, uint32_t field, uint32_t wt) {
  raw_varint(r, (uint64_t)field << 3 | wt);
}
static void raw_bytes(raw_t *r, uint32_t field, const void *data, size_t len) {
  raw_tag(r, field, 2);
  raw_varint(r, len);
  memcpy(r->b + r->n, data, len);
  r->n += len;
}

typedef struct {
  const char *name;
  void (*build)(raw_t *);
  dfnet_status_t want;
} bad_case_t;

static void bad_oversized_string(raw_t *r) {
  raw_t status = {0};
  char text[600];
  memset(text, 'a', sizeof text);
  raw_bytes(&status, 2, text, sizeof text); /* Status.message, bound 511 */
  raw_tag(r, 1, 0);
  raw_varint(r, 9);
  raw_bytes(r, 2, status.b, status.n);
}
static void bad_oversized_repeated(raw_t *r) {
  raw_t add = {0}, prop = {0};
  raw_tag(&prop, 1, 0);
  raw_varint(&prop, 1);
  raw_tag(&prop, 3, 0);
  raw_varint(&prop, 31);
  for (int i = 0; i < 65; i++) /* NodeAdd.properties, bound 64 */
    raw_bytes(&add, 3, prop.b, prop.n);
  raw_bytes(r, 16, add.b, add.n);
}
static void bad_wrong_wire_type(raw_t *r) { raw_bytes(r, 1, "xx", 2); /* id is a varint */ }
static void bad_varint_overflow(raw_t *r) {
  raw_tag(r, 1, 0);
  for (int i = 0; i < 11; i++)
    r->b[r->n++] = 0xff;
  r->b[r->n++] = 0x01;
}
static void bad_unknown_member(raw_t *r) {
  raw_tag(r, 1, 0);
  raw_varint(r, 77);
  raw_bytes(r, 99, "\x08\x01", 2); /* a member a newer peer might send */
}
static void bad_no_member(raw_t *r) {
  raw_tag(r, 1, 0);
  raw_varint(r, 78);
}
static void bad_submessage_past_end(raw_t *r) {
  raw_tag(r, 2, 2);
  raw_varint(r, 50); /* claims 50 bytes, has 2 */
  r->b[r->n++] = 0x08;
  r->b[r->n++] = 0x05;
}
static void bad_digest_length(raw_t *r) {
  raw_t fetch = {0};
  raw_bytes(&fetch, 1, "short", 5); /* fixed 32 bytes */
  raw_bytes(r, 24, fetch.b, fetch.n);
}
static void bad_field_zero(raw_t *r) {
  raw_tag(r, 0, 0);
  raw_varint(r, 1);
}
static void bad_group_wire_type(raw_t *r) {
  raw_tag(r, 2, 3); /* start group: not proto3 */
  raw_tag(r, 2, 4);
}
static void bad_nested_string_overflow(raw_t *r) {
  raw_t call = {0};
  char target[700];
  memset(target, 'n', sizeof target);
  raw_bytes(&call, 1, target, sizeof target); /* Call.target, bound 511 */
  raw_bytes(r, 5, call.b, call.n);
}
static void bad_truncated_length(raw_t *r) {
  raw_tag(r, 15, 2);
  r->b[r->n++] = 0x80; /* unterminated length varint */
}

/* Regression (found by fuzz_envelope): bulk sent as fixed64 made the decoder return a view
 * into nanopb's stack copy instead of the frame. */
static void bad_bulk_wrong_wire_type(raw_t *r) {
  raw_tag(r, 2, 2);
  raw_varint(r, 0);
  raw_tag(r, 15, 1);
  for (int i = 0; i < 8; i++)
    r->b[r->n++] = 0xff;
}

static const bad_case_t bad_cases[] = {
    {"bulk with a fixed64 wire type", bad_bulk_wrong_wire_type, DFNET_STATUS_INVALID_ARGUMENT},
    {"oversized string", bad_oversized_string, DFNET_STATUS_RESOURCE_EXHAUSTED},
    {"oversized nested string", bad_nested_string_overflow, DFNET_STATUS_RESOURCE_EXHAUSTED},
    {"oversized repeated field", bad_oversized_repeated, DFNET_STATUS_RESOURCE_EXHAUSTED},
    {"wrong wire type", bad_wrong_wire_type, DFNET_STATUS_INVALID_ARGUMENT},
    {"varint overflow", bad_varint_overflow, DFNET_STATUS_INVALID_ARGUMENT},
    {"unknown member", bad_unknown_member, DFNET_STATUS_UNIMPLEMENTED},
    {"no member", bad_no_member, DFNET_STATUS_UNIMPLEMENTED},
    {"submessage past the end", bad_submessage_past_end, DFNET_STATUS_INVALID_ARGUMENT},
    {"fixed-length bytes of the wrong size", bad_digest_length, DFNET_STATUS_INVALID_ARGUMENT},
    {"field number zero", bad_field_zero, DFNET_STATUS_INVALID_ARGUMENT},
    {"group wire type", bad_group_wire_type, DFNET_STATUS_INVALID_ARGUMENT},
    {"truncated length", bad_truncated_length, DFNET_STATUS_INVALID_ARGUMENT},
};

/* dfnet_envelope_init_member over a dirty envelope (another member's fields and bulk
 * left behind) encodes exactly what dfnet_envelope_init would. */
static void test_init_member_matches_init(void **state) {
  (void)state;
  dfnet_envelope_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  assert_non_null(a);
  assert_non_null(b);
  memset(a, 0xA5, sizeof *a);
  dfnet_envelope_init(b);
  DFNET_ENVELOPE_INIT_MEMBER(a, dfnet_v1_Envelope_call_tag, call);
  b->pb.which_msg = dfnet_v1_Envelope_call_tag;
  strcpy(a->pb.msg.call.target, "dev.x");
  strcpy(b->pb.msg.call.target, "dev.x");
  uint8_t ea[2048], eb[2048];
  size_t la = 0, lb = 0;
  assert_int_equal(dfnet_envelope_encode(a, ea, sizeof ea, &la, NULL), DFNET_STATUS_OK);
  assert_int_equal(dfnet_envelope_encode(b, eb, sizeof eb, &lb, NULL), DFNET_STATUS_OK);
  assert_int_equal(la, lb);
  assert_memory_equal(ea, eb, la);
  free(a);
  free(b);
}

static void test_malformed_table(void **state) {
  (void)state;
  dfnet_envelope_t *e = env_new();
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    raw_t *r = calloc(1, sizeof *r);
    bad_cases[i].build(r);
    /* Decode from an exactly-sized heap copy so ASan sees any read past the end. */
    uint8_t *copy = malloc(r->n);
    memcpy(copy, r->b, r->n);
    const char *err = NULL;
    dfnet_status_t got = dfnet_envelope_decode(copy, r->n, DFNET_FRAME_MAX_DEFAULT, e, &err);
    if (got != bad_cases[i].want)
      fail_msg("%s: got %s (%s), want %s", bad_cases[i].name, dfnet_status_str(got),
               err ? err : "-", dfnet_status_str(bad_cases[i].want));
    assert_non_null(err);
    assert_true(strlen(err) > 0);
    free(copy);
    free(r);
  }
  free(e);
}

static void test_unknown_member_keeps_id(void **state) {
  (void)state;
  dfnet_envelope_t *e = env_new();
  raw_t r = {0};
  bad_unknown_member(&r);
  assert_int_equal(dfnet_envelope_decode(r.b, r.n, DFNET_FRAME_MAX_DEFAULT, e, NULL),
                   DFNET_STATUS_UNIMPLEMENTED);
  assert_int_equal(e->pb.id, 77); /* so the receiver can answer UNIMPLEMENTED to it */
  free(e);
}

static void test_frame_over_bound(void **state) {
  (void)state;
  dfnet_envelope_t *e = env_new();
  uint8_t buf[4096];
  size_t len = 0;
  sample_typical_call(e);
  assert_int_equal(dfnet_envelope_encode(e, buf, sizeof buf, &len, NULL), DFNET_STATUS_OK);
  const char *err = NULL;
  assert_int_equal(dfnet_envelope_decode(buf, len, len - 1, e, &err),
                   DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(err);
  free(e);
}

/* Every prefix of every valid frame: either an error, or (cut at a field boundary) a
 * valid shorter envelope that re-encodes to exactly that prefix. Never a crash. */
static void test_truncated_at_every_byte(void **state) {
  (void)state;
  dfnet_envelope_t *in = env_new(), *out = env_new();
  uint8_t *buf = malloc(BUF_CAP), *again = malloc(BUF_CAP);
  size_t errors = 0;
  for (size_t i = 0; i < sample_count(); i++) {
    sample_fill(i, in);
    size_t len = 0;
    assert_int_equal(dfnet_envelope_encode(in, buf, BUF_CAP, &len, NULL), DFNET_STATUS_OK);
    for (size_t cut = 0; cut < len; cut++) {
      uint8_t *prefix = malloc(cut ? cut : 1);
      memcpy(prefix, buf, cut);
      const char *err = NULL;
      dfnet_status_t st = dfnet_envelope_decode(prefix, cut, DFNET_FRAME_MAX_DEFAULT, out, &err);
      if (st == DFNET_STATUS_OK) {
        size_t len2 = 0;
        assert_int_equal(dfnet_envelope_encode(out, again, BUF_CAP, &len2, NULL), DFNET_STATUS_OK);
        assert_int_equal(len2, cut);
        assert_memory_equal(again, prefix, cut);
      } else {
        assert_non_null(err);
        errors++;
      }
      free(prefix);
    }
  }
  assert_true(errors > 0);
  free(in);
  free(out);
  free(buf);
  free(again);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_every_kind),
      cmocka_unit_test(test_every_member_has_a_sample),
      cmocka_unit_test(test_encode_into_small_buffer),
      cmocka_unit_test(test_init_member_matches_init),
      cmocka_unit_test(test_malformed_table),
      cmocka_unit_test(test_unknown_member_keeps_id),
      cmocka_unit_test(test_frame_over_bound),
      cmocka_unit_test(test_truncated_at_every_byte),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
