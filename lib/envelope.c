/* Envelope codec (lib/envelope.h) on nanopb. The nanopb convention (bool + first error
 * message) is converted to dfnet_status_t here, once. */
#include "lib/envelope.h"

#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

/* include/dfnet/status.h mirrors dfnet.v1.Code: keep them equal. */
#define DFNET_STATUS_CHECK_(name, value, desc)                                             \
  _Static_assert(DFNET_STATUS_##name == (int)dfnet_v1_Code_##name,                         \
                 "status.h and status.proto disagree on " #name);
DFNET_STATUS_MAP(DFNET_STATUS_CHECK_)
#undef DFNET_STATUS_CHECK_

/* Encode callback for Envelope.bulk: writes the caller's bytes, nothing when empty. */
static bool bulk_encode(pb_ostream_t *stream, const pb_field_t *field, void *const *arg) {
  const dfnet_bytes_t *bulk = *arg;
  if (bulk == NULL || bulk->size == 0)
    return true;
  return pb_encode_tag_for_field(stream, field) &&
         pb_encode_string(stream, bulk->data, bulk->size);
}

/* What the bulk decode callback needs: where to put the view, and the input's bounds. */
typedef struct bulk_decode_ctx {
  dfnet_bytes_t *bulk;
  const uint8_t *input;
  size_t input_len;
} bulk_decode_ctx_t;

/* Decode callback for Envelope.bulk: records a view into the input buffer. The stream is
 * a buffer stream made by dfnet_envelope_decode(), whose state is the read pointer, and
 * nanopb already checked bytes_left against the input. But for a non-length-delimited wire
 * type nanopb hands us a substream over a copy on its own stack: refuse anything that does
 * not lie inside the input (found by tests/fuzz/fuzz_envelope). */
static bool bulk_decode(pb_istream_t *stream, const pb_field_t *field, void **arg) {
  (void)field;
  const bulk_decode_ctx_t *ctx = *arg;
  const uint8_t *at = stream->state;
  if (at < ctx->input || at > ctx->input + ctx->input_len ||
      stream->bytes_left > (size_t)(ctx->input + ctx->input_len - at)) {
    PB_SET_ERROR(stream, "bulk is not length-delimited");
    return false;
  }
  ctx->bulk->data = at;
  ctx->bulk->size = stream->bytes_left;
  return pb_read(stream, NULL, stream->bytes_left);
}

void dfnet_envelope_init(dfnet_envelope_t *env) {
  memset(env, 0, sizeof *env);
}

static void bind_bulk_for_encode(dfnet_envelope_t *env) {
  env->pb.bulk.funcs.encode = bulk_encode;
  env->pb.bulk.arg = &env->bulk;
}

dfnet_status_t dfnet_envelope_encoded_size(dfnet_envelope_t *env, size_t *out_len,
                                           const char **error) {
  bind_bulk_for_encode(env);
  if (!pb_get_encoded_size(out_len, dfnet_v1_Envelope_fields, &env->pb)) {
    if (error)
      *error = "envelope cannot be encoded";
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_envelope_encode(dfnet_envelope_t *env, uint8_t *buf, size_t cap,
                                     size_t *out_len, const char **error) {
  bind_bulk_for_encode(env);
  pb_ostream_t stream = pb_ostream_from_buffer(buf, cap);
  if (!pb_encode(&stream, dfnet_v1_Envelope_fields, &env->pb)) {
    const char *msg = PB_GET_ERROR(&stream);
    if (error)
      *error = msg;
    /* nanopb reports a full output buffer as "stream full". */
    return strcmp(msg, "stream full") == 0 ? DFNET_STATUS_RESOURCE_EXHAUSTED
                                           : DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out_len = stream.bytes_written;
  return DFNET_STATUS_OK;
}

/* nanopb's messages for a field over its static bound. */
static bool is_overflow(const char *msg) {
  return strcmp(msg, "string overflow") == 0 || strcmp(msg, "bytes overflow") == 0 ||
         strcmp(msg, "array overflow") == 0;
}

dfnet_status_t dfnet_envelope_decode(const uint8_t *buf, size_t len, size_t max_len,
                                     dfnet_envelope_t *out, const char **error) {
  out->bulk.data = NULL;
  out->bulk.size = 0;
  if (len > max_len) {
    if (error)
      *error = "frame larger than the bound";
    out->pb.id = 0;
    out->pb.which_msg = 0;
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  bulk_decode_ctx_t ctx = {&out->bulk, buf, len};
  out->pb.bulk.funcs.decode = bulk_decode;
  out->pb.bulk.arg = &ctx;
  pb_istream_t stream = pb_istream_from_buffer(buf, len);
  if (!pb_decode(&stream, dfnet_v1_Envelope_fields, &out->pb)) {
    const char *msg = PB_GET_ERROR(&stream);
    if (error)
      *error = msg;
    out->bulk.data = NULL;
    out->bulk.size = 0;
    return is_overflow(msg) ? DFNET_STATUS_RESOURCE_EXHAUSTED : DFNET_STATUS_INVALID_ARGUMENT;
  }
  out->pb.bulk.arg = NULL; /* ctx dies with this frame */
  if (out->pb.which_msg == 0) {
    if (error)
      *error = "envelope carries no known message";
    return DFNET_STATUS_UNIMPLEMENTED;
  }
  return DFNET_STATUS_OK;
}

const char *dfnet_envelope_msg_name(pb_size_t which_msg) {
  switch (which_msg) {
  case 0: return "none";
#define NAME_(field) case dfnet_v1_Envelope_##field##_tag: return #field;
  NAME_(status) NAME_(hello) NAME_(welcome)
  NAME_(node_add) NAME_(node_remove) NAME_(node_update)
  NAME_(driver_start) NAME_(driver_stop) NAME_(driver_status) NAME_(driver_host_exit)
  NAME_(package_fetch) NAME_(package_chunk) NAME_(package_upload)
  NAME_(call) NAME_(reply) NAME_(cancel) NAME_(stream_credit)
  NAME_(list_hosts) NAME_(host_info) NAME_(list_nodes) NAME_(node_info)
  NAME_(list_drivers) NAME_(driver_info) NAME_(list_composites) NAME_(composite_info)
  NAME_(add_composite_node_spec) NAME_(driver_control) NAME_(driver_control_result)
  NAME_(request_bind) NAME_(bind_why) NAME_(bind_trace) NAME_(watch) NAME_(watch_event)
#undef NAME_
  default: return "unknown";
  }
}
