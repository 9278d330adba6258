/* Receiving (lib/transport.h "Bounds", "Envelope ids"): a websocket message reassembled
 * from its pieces (decoded in place when it came in one), the receive bound (a message
 * over it is discarded as it arrives and answered RESOURCE_EXHAUSTED with its id), and
 * dispatch: a reply to a request of ours, a peer's envelope for on_envelope, or an answer
 * to what did not decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "lib/log.h"
#include "lib/transport.h"
#include "lib/transport_internal.h"

#define SUB "transport"

/* The id of an envelope from its first bytes (field 1, varint), or 0. */
static uint64_t prefix_id(const uint8_t *p, size_t n) {
  if (n < 2 || p[0] != 0x08)
    return 0;
  uint64_t v = 0;
  for (size_t i = 1, shift = 0; i < n && shift < 64; i++, shift += 7) {
    v |= (uint64_t)(p[i] & 0x7f) << shift;
    if (!(p[i] & 0x80))
      return v;
  }
  return 0;
}

static bool is_our_id(const transport__session_t *s, uint64_t id) {
  return id != 0 && (id & 1u) == (s->ep->is_client ? 1u : 0u);
}

/* Service thread: a message that did not decode. When its id can be read, it still gets an
 * answer: a request of the peer's gets the decoder's status with that id, a reply to one
 * of ours ends our request with it. Nobody waits out a deadline for a frame we dropped. */
static void dispatch_malformed(transport__session_t *s, const uint8_t *buf, size_t len,
                               dfnet_status_t st, const char *err) {
  dfnet_transport_t *t = s->t;
  uint64_t id = prefix_id(buf, len);
  transport__peer_warn(s, "malformed envelopes", "malformed %zu-byte envelope (id %llu): %s: %s",
                       len, (unsigned long long)id, dfnet_status_str(st), err ? err : "?");
  if (id == 0)
    return;
  dfnet_status_t answer =
      st == DFNET_STATUS_RESOURCE_EXHAUSTED ? st : DFNET_STATUS_INVALID_ARGUMENT;
  if (is_our_id(s, id)) {
    transport__request_end(s, id, answer);
    return;
  }
  char msg[300];
  snprintf(msg, sizeof msg, "malformed envelope: %s", err ? err : dfnet_status_str(st));
  (void)dfnet_transport_send_status(t, s->id, id, answer, msg);
}

/* Service thread: one whole message arrived. */
static void dispatch(transport__session_t *s, const uint8_t *buf, size_t len) {
  dfnet_transport_t *t = s->t;
  dfnet_envelope_t *env = &t->rx_env;
  const char *err = NULL;
  dfnet_session_id_t sid = s->id;
  s->stats.received_messages++;
  dfnet_status_t st = dfnet_envelope_decode(buf, len, s->ep->limits.max_message_bytes, env, &err);
  if (st != DFNET_STATUS_OK && st != DFNET_STATUS_UNIMPLEMENTED) {
    dispatch_malformed(s, buf, len, st, err);
    return;
  }
  uint64_t id = env->pb.id;
  if (is_our_id(s, id) && transport__request_reply(s, env, st))
    return;
  if (st == DFNET_STATUS_UNIMPLEMENTED) {
    transport__peer_warn(s, "unknown envelopes",
                         "envelope %llu of an unknown kind: answering UNIMPLEMENTED",
                         (unsigned long long)id);
    (void)dfnet_transport_send_status(t, sid, id, DFNET_STATUS_UNIMPLEMENTED,
                                      "unknown envelope member");
    return;
  }
  if (s->ep->cb.on_envelope)
    s->ep->cb.on_envelope(s->ep->user, sid, env);
}

static void rx_reset(transport__session_t *s) {
  s->rx_in_message = false;
  s->rx_oversize = false;
  s->rx_len = 0;
  s->rx_total = 0;
  s->rx_prefix_len = 0;
  if (s->rx_cap > 1024u * 1024u) { /* do not keep a large buffer for an idle session */
    free(s->rx_buf);
    s->rx_buf = NULL;
    s->rx_cap = 0;
  }
}

int transport__on_receive(transport__session_t *s, struct lws *wsi, const uint8_t *in, size_t len) {
  bool final = lws_is_final_fragment(wsi);
  s->last_rx_ms = dfnet_transport_now_ms();
  if (!s->rx_in_message) {
    s->rx_in_message = true;
    if (!lws_frame_is_binary(wsi)) {
      DFNET_LOGW(SUB, s->peer_name, "closing: a text websocket message (dfnet speaks binary)");
      transport__session_kill(s, DFNET_STATUS_UNAVAILABLE, "text message received");
      return 0;
    }
    if (final) { /* the whole message in one piece: decode in place */
      dispatch(s, in, len);
      rx_reset(s);
      return 0;
    }
  }
  size_t max = s->ep->limits.max_message_bytes;
  if (s->rx_prefix_len < sizeof(s->rx_prefix)) {
    size_t n = sizeof(s->rx_prefix) - s->rx_prefix_len;
    if (n > len)
      n = len;
    memcpy(s->rx_prefix + s->rx_prefix_len, in, n);
    s->rx_prefix_len += n;
  }
  s->rx_total += len;
  if (!s->rx_oversize && s->rx_total > max) {
    s->rx_oversize = true;
    free(s->rx_buf);
    s->rx_buf = NULL;
    s->rx_cap = 0;
    s->rx_len = 0;
  }
  if (!s->rx_oversize) {
    if (s->rx_len + len > s->rx_cap) {
      size_t want = s->rx_len + len + lws_remaining_packet_payload(wsi);
      size_t cap = s->rx_cap ? s->rx_cap : 64u * 1024u;
      while (cap < want)
        cap *= 2;
      if (cap > max)
        cap = max;
      uint8_t *n = realloc(s->rx_buf, cap);
      if (n == NULL) {
        DFNET_LOGE(SUB, s->peer_name, "out of memory receiving a %zu-byte message", want);
        transport__session_kill(s, DFNET_STATUS_UNAVAILABLE, "out of memory");
        return 0;
      }
      s->rx_buf = n;
      s->rx_cap = cap;
    }
    memcpy(s->rx_buf + s->rx_len, in, len);
    s->rx_len += len;
  }
  if (!final)
    return 0;
  if (s->rx_oversize) {
    uint64_t id = prefix_id(s->rx_prefix, s->rx_prefix_len);
    char msg[128];
    snprintf(msg, sizeof(msg), "message of %zu bytes exceeds the %zu-byte bound", s->rx_total, max);
    transport__peer_warn(s, "oversized envelopes", "envelope %llu refused: %s",
                         (unsigned long long)id, msg);
    s->stats.received_messages++;
    (void)dfnet_transport_send_status(s->t, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, msg);
  } else {
    dispatch(s, s->rx_buf, s->rx_len);
  }
  rx_reset(s);
  return 0;
}
