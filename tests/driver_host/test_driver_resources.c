/* Resources handed, not opened (docs/architecture.md "Resources"; include/dfnet/driver.h):
 * DriverStart frames sent with descriptors through the real supervisor
 * (dfnet_supervisor_send_fds: SCM_RIGHTS on the socketpair) to a real dfnet-driver-host,
 * and the resource test driver (tests/drivers/resource.c) reading what
 * dfnet_driver_resource_fd() gives it.
 *
 * Checked: a regular file and a pipe arrive under their names and are read through; a name
 * not handed is -1; the descriptors are closed once the driver has stopped (the pipe's
 * writer sees no reader left); a frame naming more resources than descriptors came with
 * is refused INTERNAL naming the missing ones, and its descriptor is closed, while the
 * driver host carries on; several DriverStarts queued with a Call between them (one
 * write) each get their own descriptors in order; 16 descriptors at once; a DriverStart
 * written in many parts (a 2 MiB bulk through a full socket) still gets its descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dfnet/status.h"
#include "harness.h"

#define NODE_A "dev.t.platform.a"
#define NODE_B "dev.t.platform.b"
#define LIST "/dfnet.test.Resource/List"
#define READ "/dfnet.test.Resource/Read"

static int setup(void **state) {
  signal(SIGPIPE, SIG_IGN);
  *state = h_new();
  return 0;
}

static int teardown(void **state) {
  h_free(*state);
  return 0;
}

/* A temporary regular file holding `text`, opened read-only (the caller closes it). */
static int temp_file(const char *text) {
  char path[] = "/tmp/dfnet-res-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  int ro = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(ro >= 0);
  unlink(path);
  close(fd);
  return ro;
}

/* Call `method` on node with `req`; the reply's status, its bytes in out[cap] (a string). */
static int call(harness_t *h, uint64_t host, const char *node, const char *method, const char *req,
                char *out, size_t cap) {
  uint64_t id = h_call(h, host, node, method, req, req != NULL ? strlen(req) : 0, 5000, 0);
  assert_true(id != 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  if (out != NULL)
    snprintf(out, cap, "%.*s", (int)r->bulk_len, r->bulk != NULL ? (const char *)r->bulk : "");
  return r->code;
}

/* The Status of DriverStart `id`, its message in msg[cap]. */
static int start_status(harness_t *h, uint64_t id, char *msg, size_t cap) {
  assert_true(id != 0);
  rec_t *r = h_final(h, id);
  assert_non_null(r);
  if (msg != NULL)
    snprintf(msg, cap, "%s", r->message);
  return r->code;
}

/* Has every reader of the pipe whose writer is `wfd` closed it (within ms)? */
static bool readers_gone(harness_t *h, int wfd, int ms) {
  for (int waited = 0; waited < ms; waited += 20) {
    struct pollfd p = {.fd = wfd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
      return true;
    h_pump(h, 20);
  }
  return false;
}

static void test_handed_and_read(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  int file = temp_file("file-content");
  int pipefd[2];
  assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
  const char *names[] = {"file", "/dev/pipe"};
  const int fds[] = {file, pipefd[0]};
  uint64_t id = h_start_send_fds(h, host, NODE_A, h_driver("resource"), NULL, names, 2, fds, 2);
  assert_int_equal(start_status(h, id, NULL, 0), DFNET_STATUS_OK);
  /* the supervisor sent duplicates: ours go, the driver host keeps its own */
  close(file);
  close(pipefd[0]);

  char out[512];
  assert_int_equal(call(h, host, NODE_A, LIST, NULL, out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "file=file,/dev/pipe=fifo");
  assert_int_equal(call(h, host, NODE_A, READ, "file", out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "file-content");
  assert_int_equal(write(pipefd[1], "through the pipe", 16), 16);
  assert_int_equal(call(h, host, NODE_A, READ, "/dev/pipe", out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "through the pipe");
  assert_int_equal(call(h, host, NODE_A, READ, "tty", out, sizeof out), DFNET_STATUS_NOT_FOUND);

  /* stopped: the driver host closes its descriptors (the pipe has no reader left) */
  assert_false(readers_gone(h, pipefd[1], 0));
  assert_int_equal(h_stop(h, host, NODE_A), DFNET_STATUS_OK);
  assert_true(readers_gone(h, pipefd[1], 5000));
  close(pipefd[1]);
  h_close_clean(h, host);
}

static void test_missing_descriptors(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  int pipefd[2];
  assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
  const char *names[] = {"tty", "block"};
  uint64_t id =
      h_start_send_fds(h, host, NODE_A, h_driver("resource"), NULL, names, 2, &pipefd[0], 1);
  close(pipefd[0]);
  char msg[600];
  assert_int_equal(start_status(h, id, msg, sizeof msg), DFNET_STATUS_INTERNAL);
  assert_non_null(strstr(msg, "names 2 resources but 1 descriptors came with it"));
  assert_non_null(strstr(msg, "missing: block"));
  assert_true(readers_gone(h, pipefd[1], 5000)); /* the one that came is closed */
  close(pipefd[1]);
  /* the driver host carries on: the next start is served */
  int file = temp_file("second");
  const char *one[] = {"file"};
  id = h_start_send_fds(h, host, NODE_B, h_driver("resource"), NULL, one, 1, &file, 1);
  close(file);
  assert_int_equal(start_status(h, id, NULL, 0), DFNET_STATUS_OK);
  char out[64];
  assert_int_equal(call(h, host, NODE_B, READ, "file", out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "second");
  h_close_clean(h, host);
}

/* Corked: two DriverStarts with descriptors and a Call between them leave in one turn; each
 * start gets its own descriptors, in order. Then 16 at once. */
static void test_order_and_many(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  assert_int_equal(h_start(h, host, "dev.t.platform.echo", h_driver("echo"), NULL, NULL, NULL),
                   DFNET_STATUS_OK);
  int a = temp_file("for a"), b = temp_file("for b");
  const char *names[] = {"file"};
  dfnet_supervisor_cork(h->sup);
  uint64_t ida = h_start_send_fds(h, host, NODE_A, h_driver("resource"), NULL, names, 1, &a, 1);
  uint64_t echo =
      h_call(h, host, "dev.t.platform.echo", "/dfnet.test.Echo/Echo", "between", 7, 5000, 0);
  uint64_t idb = h_start_send_fds(h, host, NODE_B, h_driver("resource"), NULL, names, 1, &b, 1);
  dfnet_supervisor_uncork(h->sup);
  close(a);
  close(b);
  assert_int_equal(start_status(h, ida, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(start_status(h, idb, NULL, 0), DFNET_STATUS_OK);
  rec_t *r = h_final(h, echo);
  assert_non_null(r);
  assert_int_equal(r->code, DFNET_STATUS_OK);
  char out[64];
  assert_int_equal(call(h, host, NODE_A, READ, "file", out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "for a");
  assert_int_equal(call(h, host, NODE_B, READ, "file", out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "for b");

  /* DFNET_RESOURCES_MAX (16) descriptors with one frame */
  char name_store[16][8];
  const char *many[16];
  int fds[16];
  for (int i = 0; i < 16; i++) {
    snprintf(name_store[i], sizeof name_store[i], "r%d", i);
    many[i] = name_store[i];
    char text[8];
    snprintf(text, sizeof text, "f%d", i);
    fds[i] = temp_file(text);
  }
  uint64_t id = h_start_send_fds(h, host, "dev.t.platform.many", h_driver("resource"), NULL, many,
                                 16, fds, 16);
  for (int i = 0; i < 16; i++)
    close(fds[i]);
  assert_int_equal(start_status(h, id, NULL, 0), DFNET_STATUS_OK);
  assert_int_equal(call(h, host, "dev.t.platform.many", READ, "r15", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "f15");
  assert_int_equal(call(h, host, "dev.t.platform.many", READ, "r0", out, sizeof out),
                   DFNET_STATUS_OK);
  assert_string_equal(out, "f0");
  /* more than 16 is refused by the supervisor, nothing sent */
  int extra[17];
  for (int i = 0; i < 17; i++)
    extra[i] = 0;
  assert_int_equal(h_start_send_fds(h, host, "dev.t.platform.more", h_driver("resource"), NULL,
                                    many, 16, extra, 17),
                   0);
  h_close_clean(h, host);
}

/* A DriverStart of 2 MiB (its bulk) written in many parts while the driver host reads: the
 * descriptors went with the first part. */
static void test_frame_in_parts(void **state) {
  harness_t *h = *state;
  uint64_t host = h_spawn(h);
  size_t len = 2u * 1024u * 1024u;
  char *program = malloc(len + 32);
  assert_non_null(program);
  int n = snprintf(program, len + 32, "{\"pad\": \"");
  memset(program + n, 'x', len);
  snprintf(program + n + len, 32, "\"}");
  int file = temp_file("big frame");
  const char *names[] = {"file"};
  uint64_t id =
      h_start_send_fds(h, host, NODE_A, h_driver("resource"), program, names, 1, &file, 1);
  close(file);
  free(program);
  assert_int_equal(start_status(h, id, NULL, 0), DFNET_STATUS_OK);
  char out[64];
  assert_int_equal(call(h, host, NODE_A, READ, "file", out, sizeof out), DFNET_STATUS_OK);
  assert_string_equal(out, "big frame");
  h_close_clean(h, host);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handed_and_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_descriptors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_and_many, setup, teardown),
      cmocka_unit_test_setup_teardown(test_frame_in_parts, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
