/* lib/frame.c: u32 LE length-prefixed frames over a real socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/frame.h"

static void test_header_is_little_endian(void **state) {
  (void)state;
  uint8_t h[4];
  dfnet_frame_put_header(h, 0x01020304u);
  assert_int_equal(h[0], 0x04);
  assert_int_equal(h[3], 0x01);
  assert_int_equal(dfnet_frame_get_header(h), 0x01020304u);
}

/* Feed a stream one byte at a time: frames come out whole and in order. */
static void test_byte_at_a_time(void **state) {
  (void)state;
  uint8_t stream[64];
  size_t n = 0;
  const char *bodies[] = {"alpha", "", "gamma-gamma"};
  for (int i = 0; i < 3; i++) {
    size_t len = strlen(bodies[i]);
    dfnet_frame_put_header(stream + n, (uint32_t)len);
    memcpy(stream + n + 4, bodies[i], len);
    n += 4 + len;
  }
  dfnet_frame_reader_t r;
  dfnet_frame_reader_init(&r, 1024);
  int got = 0;
  for (size_t i = 0; i < n; i++) {
    size_t used = 0;
    const uint8_t *frame;
    size_t flen;
    assert_int_equal(dfnet_frame_reader_feed(&r, stream + i, 1, &used, &frame, &flen),
                     DFNET_STATUS_OK);
    assert_int_equal(used, 1);
    if (frame) {
      assert_int_equal(flen, strlen(bodies[got]));
      assert_memory_equal(frame, bodies[got], flen);
      got++;
    }
  }
  assert_int_equal(got, 3);
  dfnet_frame_reader_free(&r);
  dfnet_frame_reader_free(&r); /* idempotent */
}

/* An oversized frame is reported once and skipped; the next frame still arrives. */
static void test_oversized_frame_is_skipped(void **state) {
  (void)state;
  uint8_t stream[256];
  size_t n = 0;
  dfnet_frame_put_header(stream, 100);
  memset(stream + 4, 'x', 100);
  n = 104;
  dfnet_frame_put_header(stream + n, 2);
  memcpy(stream + n + 4, "ok", 2);
  n += 6;
  dfnet_frame_reader_t r;
  dfnet_frame_reader_init(&r, 64);
  size_t off = 0, used = 0, flen = 0;
  const uint8_t *frame = NULL;
  assert_int_equal(dfnet_frame_reader_feed(&r, stream, n, &used, &frame, &flen),
                   DFNET_STATUS_RESOURCE_EXHAUSTED);
  assert_null(frame);
  off += used;
  assert_int_equal(dfnet_frame_reader_feed(&r, stream + off, n - off, &used, &frame, &flen),
                   DFNET_STATUS_OK);
  assert_non_null(frame);
  assert_int_equal(flen, 2);
  assert_memory_equal(frame, "ok", 2);
  assert_int_equal(off + used, n);
  dfnet_frame_reader_free(&r);
}

/* What feed_all handed on, as text: "ok:<body>" per frame, "skip:<status>" per skip. */
typedef struct seen {
  char log[256];
} seen_t;

static void note_frame(void *user, dfnet_status_t st, const uint8_t *frame, size_t len) {
  seen_t *s = user;
  size_t at = strlen(s->log);
  if (frame == NULL)
    snprintf(s->log + at, sizeof s->log - at, "skip:%s ", dfnet_status_str(st));
  else
    snprintf(s->log + at, sizeof s->log - at, "ok:%.*s ", (int)len, (const char *)frame);
}

/* feed_all: every frame of a read in order, the oversized one reported as skipped in its
 * place, and a frame cut between two reads handed on once the second read completes it. */
static void test_feed_all_in_stream_order(void **state) {
  (void)state;
  uint8_t stream[256];
  size_t n = 0;
  const char *bodies[] = {"one", NULL, "two", "three"};
  for (size_t i = 0; i < 4; i++) {
    size_t len = bodies[i] != NULL ? strlen(bodies[i]) : 100;
    dfnet_frame_put_header(stream + n, (uint32_t)len);
    if (bodies[i] != NULL)
      memcpy(stream + n + 4, bodies[i], len);
    else
      memset(stream + n + 4, 'x', len);
    n += 4 + len;
  }
  dfnet_frame_reader_t r;
  dfnet_frame_reader_init(&r, 64);
  seen_t seen = {{0}};
  dfnet_frame_reader_feed_all(&r, stream, n - 3, note_frame, &seen); /* "three" cut short */
  assert_string_equal(seen.log, "ok:one skip:RESOURCE_EXHAUSTED ok:two ");
  dfnet_frame_reader_feed_all(&r, stream + n - 3, 3, note_frame, &seen);
  assert_string_equal(seen.log, "ok:one skip:RESOURCE_EXHAUSTED ok:two ok:three ");
  dfnet_frame_reader_free(&r);
}

/* Real socketpair: a 1 MiB frame written by one end is read whole by the other. */
static void test_socketpair_large_frame(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  size_t big = 1u << 20;
  uint8_t *body = malloc(big);
  for (size_t i = 0; i < big; i++)
    body[i] = (uint8_t)(i * 31 + 7);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(sv[0]);
    _exit(dfnet_frame_write_fd(sv[1], body, big) == DFNET_STATUS_OK ? 0 : 1);
  }
  close(sv[1]);
  dfnet_frame_reader_t r;
  dfnet_frame_reader_init(&r, 4u << 20);
  uint8_t chunk[65536];
  const uint8_t *frame = NULL;
  size_t flen = 0;
  while (frame == NULL) {
    ssize_t got = read(sv[0], chunk, sizeof chunk);
    assert_true(got > 0);
    size_t off = 0;
    while (off < (size_t)got && frame == NULL) {
      size_t used = 0;
      assert_int_equal(
          dfnet_frame_reader_feed(&r, chunk + off, (size_t)got - off, &used, &frame, &flen),
          DFNET_STATUS_OK);
      off += used;
    }
  }
  assert_int_equal(flen, big);
  assert_memory_equal(frame, body, big);
  int status = 0;
  waitpid(pid, &status, 0);
  assert_int_equal(status, 0);
  dfnet_frame_reader_free(&r);
  close(sv[0]);
  free(body);
}

static void test_write_to_closed_peer(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close(sv[1]);
  assert_int_equal(dfnet_frame_write_fd(sv[0], (const uint8_t *)"x", 1), DFNET_STATUS_UNAVAILABLE);
  close(sv[0]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_is_little_endian),
      cmocka_unit_test(test_byte_at_a_time),
      cmocka_unit_test(test_oversized_frame_is_skipped),
      cmocka_unit_test(test_feed_all_in_stream_order),
      cmocka_unit_test(test_socketpair_large_frame),
      cmocka_unit_test(test_write_to_closed_peer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
