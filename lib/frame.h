/* Length-prefixed framing for stream sockets (docs/design.md "The wire"): each frame is a u32
 * little-endian length followed by that many bytes (one encoded Envelope). Used across
 * the host agent <-> driver host socketpair.
 */
#ifndef DFNET_LIB_FRAME_H
#define DFNET_LIB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#define DFNET_FRAME_HEADER_SIZE 4u

/* Write the 4-byte header for a frame of `len` bytes. */
void dfnet_frame_put_header(uint8_t header[DFNET_FRAME_HEADER_SIZE], uint32_t len);

/* Read the length from a 4-byte header. */
uint32_t dfnet_frame_get_header(const uint8_t header[DFNET_FRAME_HEADER_SIZE]);

/* Incremental frame reader: feed it whatever read(2) returned, take whole frames out.
 * Its buffer grows to the largest frame seen, never beyond max_frame. Not thread-safe. */
typedef struct dfnet_frame_reader {
  size_t max_frame;
  uint8_t header[DFNET_FRAME_HEADER_SIZE];
  size_t header_have;
  uint8_t *buf; /* owned; frame body */
  size_t buf_cap;
  size_t want;         /* body length of the frame in progress */
  size_t have;         /* body bytes received so far */
  size_t discard_left; /* bytes still to skip of an oversized frame */
  int in_body;         /* header complete, receiving the body */
} dfnet_frame_reader_t;

/* Initialise a reader for frames of at most max_frame bytes. Allocates nothing yet. */
void dfnet_frame_reader_init(dfnet_frame_reader_t *r, size_t max_frame);

/* Free the reader's buffer (idempotent). Frames it returned become invalid. */
void dfnet_frame_reader_free(dfnet_frame_reader_t *r);

/* Consume bytes from data[0..len). Stops after the first complete frame.
 * *consumed: how many input bytes were used (call again with the rest).
 * Returns:
 *   OK with *frame != NULL: a complete frame, *frame_len bytes, owned by the reader and
 *     valid until the next call;
 *   OK with *frame == NULL: all input consumed, no frame complete yet;
 *   RESOURCE_EXHAUSTED: a header announced a frame over max_frame. Reported once, at its
 *     header; its body is skipped as it arrives, and the stream carries on after it;
 *   INTERNAL: out of memory (the reader is still usable; the frame is skipped). */
dfnet_status_t dfnet_frame_reader_feed(dfnet_frame_reader_t *r, const uint8_t *data, size_t len,
                                       size_t *consumed, const uint8_t **frame, size_t *frame_len);

/* What dfnet_frame_reader_feed_all hands on: a complete frame (st OK; frame owned by the
 * reader, valid during the call, len bytes), or a frame skipped (frame NULL; st
 * RESOURCE_EXHAUSTED or INTERNAL as dfnet_frame_reader_feed reports it), for the caller to
 * log. Called on the feeding thread; it must not feed the same reader. */
typedef void (*dfnet_frame_fn)(void *user, dfnet_status_t st, const uint8_t *frame, size_t len);

/* Consume all of data[0..len) (what one read(2) returned), calling fn once per frame
 * completed and once per frame skipped, in stream order. The reader keeps a partial frame
 * for the next call. */
void dfnet_frame_reader_feed_all(dfnet_frame_reader_t *r, const uint8_t *data, size_t len,
                                 dfnet_frame_fn fn, void *user);

/* Write one frame (header + body) to a blocking fd, retrying on EINTR and short writes.
 * Returns OK; UNAVAILABLE when the peer is gone (EPIPE, ECONNRESET) or another write
 * error; INVALID_ARGUMENT when len does not fit in u32. Uses MSG_NOSIGNAL on sockets. */
dfnet_status_t dfnet_frame_write_fd(int fd, const uint8_t *body, size_t len);

#endif /* DFNET_LIB_FRAME_H */
