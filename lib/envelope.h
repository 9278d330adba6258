/* The dfnet wire: encode and decode one dfnet.v1.Envelope (docs/design.md "The wire";
 * proto/dfnet/v1/envelope.proto).
 *
 * Security model (after nanopb docs/security.md): the decoder never trusts its input.
 * Every string, bytes and repeated field has a static bound (the .options beside each
 * proto/dfnet/v1 file); the one unbounded field, Envelope.bulk, is not copied but returned as a
 * view into the input buffer, so decoding allocates nothing and never reads outside [buf, buf+len).
 * A frame over the caller's bound is refused before parsing. Decoding a malformed frame returns a
 * status and nanopb's first error message; it never crashes (fuzzed in tests/fuzz/).
 */
#ifndef DFNET_LIB_ENVELOPE_H
#define DFNET_LIB_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"
#include "dfnet/v1/envelope.pb.h"

/* Hello.protocol_version spoken by this build. */
#define DFNET_PROTOCOL_VERSION 1u

/* Default bound of one frame (one websocket message or one socketpair frame), bytes. */
#define DFNET_FRAME_MAX_DEFAULT (4u * 1024u * 1024u)

/* A borrowed byte range. The owner of `data` is written wherever one is returned. */
typedef struct dfnet_bytes {
  const uint8_t *data;
  size_t size;
} dfnet_bytes_t;

/* One envelope in memory (about 34 KiB: the nanopb union of every message; keep it off
 * small stacks). `pb` is nanopb's struct: set pb.id, pb.which_msg and the member in pb.msg.
 * `bulk` is the member's bulk bytes (a call's payload, a package chunk, bind bytecode ...):
 * on encode, the caller's bytes (borrowed for the call); on decode, a view into the
 * decoded buffer (valid as long as that buffer). pb.bulk is managed by the codec. */
typedef struct dfnet_envelope {
  dfnet_v1_Envelope pb;
  dfnet_bytes_t bulk;
} dfnet_envelope_t;

/* Reset *env to an empty envelope (id 0, no member, no bulk). */
void dfnet_envelope_init(dfnet_envelope_t *env);

/* Reset *env to id 0, no bulk and member `which` with every field zero, clearing only
 * that member's member_size bytes of the union: the encoder reads nothing else, so this
 * is dfnet_envelope_init() for one member without its ~34 KiB memset. Use through
 * DFNET_ENVELOPE_INIT_MEMBER(env, dfnet_v1_Envelope_call_tag, call). */
void dfnet_envelope_init_member(dfnet_envelope_t *env, pb_size_t which, size_t member_size);
#define DFNET_ENVELOPE_INIT_MEMBER(env, which, member) \
  dfnet_envelope_init_member((env), (which), sizeof(env)->pb.msg.member)

/* Set *env to id `id`, member `which` and no bulk, and return env, clearing nothing else:
 * for a scratch envelope the caller then fills member `which` of completely (a relayed
 * Call, Reply, Cancel or StreamCredit), which the encoder reads alone with pb.id,
 * pb.which_msg and bulk. No memset at all, where dfnet_envelope_init() clears ~34 KiB;
 * inline because the agent and the manager relay one of these per message. */
static inline dfnet_envelope_t *dfnet_envelope_reuse(dfnet_envelope_t *env, uint64_t id,
                                                     pb_size_t which) {
  env->pb.id = id;
  env->pb.which_msg = which;
  env->bulk.data = NULL;
  env->bulk.size = 0;
  return env;
}

/* Size in bytes that dfnet_envelope_encode() will produce, in *out_len.
 * Returns OK, or INVALID_ARGUMENT if the envelope cannot be encoded (e.g. a string longer
 * than its bound; *error then holds nanopb's message). env->pb.bulk is (re)set. */
dfnet_status_t dfnet_envelope_encoded_size(dfnet_envelope_t *env, size_t *out_len,
                                           const char **error);

/* Encode *env into buf[0..cap). On OK, *out_len is the number of bytes written.
 * Errors: RESOURCE_EXHAUSTED when cap is too small; INVALID_ARGUMENT when the envelope
 * cannot be encoded. *error (if error != NULL) receives nanopb's message, a static string.
 * env->pb.bulk is (re)set to point at env->bulk. Nothing is allocated. */
dfnet_status_t dfnet_envelope_encode(dfnet_envelope_t *env, uint8_t *buf, size_t cap,
                                     size_t *out_len, const char **error);

/* Decode buf[0..len) into *out. max_len is the frame bound (DFNET_FRAME_MAX_DEFAULT unless
 * configured). out->bulk points into buf (borrowed: valid while buf is).
 * Returns:
 *   OK                  decoded; out->pb.which_msg names a known member;
 *   RESOURCE_EXHAUSTED  len > max_len, or a string/bytes/repeated field over its bound;
 *   INVALID_ARGUMENT    malformed protobuf (truncated, bad wire type, varint overflow ...);
 *   UNIMPLEMENTED       well formed but with no known member (a newer peer's message, or
 *                       none): out->pb.id is valid, so the caller can answer that id.
 * On any error *error (if non-NULL) receives a static message (nanopb's first error).
 * Never reads outside buf[0..len); allocates nothing. */
dfnet_status_t dfnet_envelope_decode(const uint8_t *buf, size_t len, size_t max_len,
                                     dfnet_envelope_t *out, const char **error);

/* The member's field name ("call", "node_add", ...), or "none"/"unknown" (static). */
const char *dfnet_envelope_msg_name(pb_size_t which_msg);

#endif /* DFNET_LIB_ENVELOPE_H */
