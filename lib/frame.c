/* Length-prefixed framing (lib/frame.h). */
#include "lib/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

void dfnet_frame_put_header(uint8_t header[DFNET_FRAME_HEADER_SIZE], uint32_t len) {
  header[0] = (uint8_t)len;
  header[1] = (uint8_t)(len >> 8);
  header[2] = (uint8_t)(len >> 16);
  header[3] = (uint8_t)(len >> 24);
}

uint32_t dfnet_frame_get_header(const uint8_t header[DFNET_FRAME_HEADER_SIZE]) {
  return (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 |
         (uint32_t)header[3] << 24;
}

void dfnet_frame_reader_init(dfnet_frame_reader_t *r, size_t max_frame) {
  memset(r, 0, sizeof *r);
  r->max_frame = max_frame;
}

void dfnet_frame_reader_free(dfnet_frame_reader_t *r) {
  free(r->buf);
  r->buf = NULL;
  r->buf_cap = 0;
}

dfnet_status_t dfnet_frame_reader_feed(dfnet_frame_reader_t *r, const uint8_t *data, size_t len,
                                       size_t *consumed, const uint8_t **frame, size_t *frame_len) {
  size_t used = 0;
  *frame = NULL;
  *frame_len = 0;
  while (used < len) {
    if (r->discard_left > 0) {
      size_t n = len - used < r->discard_left ? len - used : r->discard_left;
      r->discard_left -= n;
      used += n;
      continue;
    }
    if (!r->in_body) {
      while (r->header_have < DFNET_FRAME_HEADER_SIZE && used < len)
        r->header[r->header_have++] = data[used++];
      if (r->header_have < DFNET_FRAME_HEADER_SIZE)
        break;
      r->header_have = 0;
      size_t want = dfnet_frame_get_header(r->header);
      if (want > r->max_frame) {
        r->discard_left = want;
        *consumed = used;
        return DFNET_STATUS_RESOURCE_EXHAUSTED;
      }
      if (want > r->buf_cap) {
        uint8_t *grown = realloc(r->buf, want);
        if (grown == NULL) {
          r->discard_left = want;
          *consumed = used;
          return DFNET_STATUS_INTERNAL;
        }
        r->buf = grown;
        r->buf_cap = want;
      }
      r->want = want;
      r->have = 0;
      r->in_body = 1;
    }
    size_t n = len - used < r->want - r->have ? len - used : r->want - r->have;
    if (n > 0)
      memcpy(r->buf + r->have, data + used, n);
    r->have += n;
    used += n;
    if (r->have == r->want) {
      r->in_body = 0;
      *frame = r->buf;
      *frame_len = r->want;
      break;
    }
  }
  /* A zero-length frame completes as soon as its header does. */
  if (*frame == NULL && r->in_body && r->want == 0) {
    r->in_body = 0;
    *frame = r->buf ? r->buf : (const uint8_t *)"";
    *frame_len = 0;
  }
  *consumed = used;
  return DFNET_STATUS_OK;
}

void dfnet_frame_reader_feed_all(dfnet_frame_reader_t *r, const uint8_t *data, size_t len,
                                 dfnet_frame_fn fn, void *user) {
  size_t off = 0;
  while (off < len) {
    size_t used = 0, flen = 0;
    const uint8_t *frame = NULL;
    dfnet_status_t st = dfnet_frame_reader_feed(r, data + off, len - off, &used, &frame, &flen);
    off += used;
    if (st != DFNET_STATUS_OK)
      fn(user, st, NULL, 0);
    if (frame != NULL)
      fn(user, DFNET_STATUS_OK, frame, flen);
  }
}

dfnet_status_t dfnet_frame_write_fd(int fd, const uint8_t *body, size_t len) {
  if (len > UINT32_MAX)
    return DFNET_STATUS_INVALID_ARGUMENT;
  uint8_t header[DFNET_FRAME_HEADER_SIZE];
  dfnet_frame_put_header(header, (uint32_t)len);
  struct iovec iov[2] = {{header, sizeof header}, {(void *)body, len}};
  int iovcnt = len > 0 ? 2 : 1;
  struct iovec *cur = iov;
  while (iovcnt > 0) {
    struct msghdr msg = {.msg_iov = cur, .msg_iovlen = (size_t)iovcnt};
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
      n = writev(fd, cur, iovcnt);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return DFNET_STATUS_UNAVAILABLE;
    }
    size_t left = (size_t)n;
    while (iovcnt > 0 && left >= cur->iov_len) {
      left -= cur->iov_len;
      cur++;
      iovcnt--;
    }
    if (iovcnt > 0) {
      cur->iov_base = (uint8_t *)cur->iov_base + left;
      cur->iov_len -= left;
    }
  }
  return DFNET_STATUS_OK;
}
