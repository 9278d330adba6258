/* Envelope codec (lib/envelope.h) on nanopb. The nanopb convention (bool + first error
 * message) is converted to dfnet_status_t here, once. */
#include "lib/envelope.h"

#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

/* include/dfnet/status.h mirrors dfnet.v1.Code: keep them equal. */
#define DFNET_STATUS_CHECK_(name, value, desc)                     \
  _Static_assert(DFNET_STATUS_##name == (int)dfnet_v1_Code_##name, \
                 "status.h and status.proto disagree on " #name);
DFNET_STATUS_MAP(DFNET_STATUS_CHECK_)
#undef DFNET_STATUS_CHECK_

/* Every member of Envelope.msg: X(field name, message type). The codec walks the Envelope's
 * top level itself (id, the one member, bulk) instead of iterating nanopb's descriptor of
 * 45 fields, which cost about half of each encode/decode; inside a member nanopb does the
 * work. Field numbers come from the generated header, so this table cannot drift. */
/* clang-format off: clang-format 14 does not keep one X() per line */
#define DFNET_ENVELOPE_MEMBERS(X)                  \
  X(status, Status)                                \
  X(hello, Hello)                                  \
  X(welcome, Welcome)                              \
  X(node_add, NodeAdd)                             \
  X(node_remove, NodeRemove)                       \
  X(node_update, NodeUpdate)                       \
  X(driver_start, DriverStart)                     \
  X(driver_stop, DriverStop)                       \
  X(driver_status, DriverStatus)                   \
  X(driver_host_exit, DriverHostExit)              \
  X(driver_suspend, DriverSuspend)                 \
  X(driver_resume, DriverResume)                   \
  X(package_fetch, PackageFetch)                   \
  X(package_chunk, PackageChunk)                   \
  X(package_upload, PackageUpload)                 \
  X(call, Call)                                    \
  X(reply, Reply)                                  \
  X(cancel, Cancel)                                \
  X(stream_credit, StreamCredit)                   \
  X(list_hosts, ListHosts)                         \
  X(host_info, HostInfo)                           \
  X(list_nodes, ListNodes)                         \
  X(node_info, NodeInfo)                           \
  X(list_drivers, ListDrivers)                     \
  X(driver_info, DriverInfo)                       \
  X(list_composites, ListComposites)               \
  X(composite_info, CompositeInfo)                 \
  X(add_composite_node_spec, AddCompositeNodeSpec) \
  X(driver_control, DriverControl)                 \
  X(driver_control_result, DriverControlResult)    \
  X(request_bind, RequestBind)                     \
  X(bind_why, BindWhy)                             \
  X(bind_trace, BindTrace)                         \
  X(watch, Watch)                                  \
  X(watch_event, WatchEvent)                       \
  X(unbind_node, UnbindNode)                       \
  X(suspend_node, SuspendNode)                     \
  X(resume_node, ResumeNode)                       \
  X(add_test_node, AddTestNode)                    \
  X(remove_test_node, RemoveTestNode)              \
  X(list_driver_hosts, ListDriverHosts)            \
  X(driver_host_info, DriverHostInfo)              \
  X(lease_acquire, LeaseAcquire)                   \
  X(lease_info, LeaseInfo)                         \
  X(lease_renew, LeaseRenew)                       \
  X(lease_release, LeaseRelease)                   \
  X(list_leases, ListLeases)                       \
  X(lease_history, LeaseHistory)                   \
  X(lease_audit_entry, LeaseAuditEntry)            \
  X(artifact_open, ArtifactOpen)                   \
  X(cert_list, CertList)                           \
  X(cert_info, CertInfo)                           \
  X(cert_revoke, CertRevoke)                       \
  X(cert_revoke_result, CertRevokeResult)          \
  X(token_create, TokenCreate)                     \
  X(token_info, TokenInfo)                         \
  X(token_list, TokenList)                         \
  X(token_revoke, TokenRevoke)                     \
  X(enroll, Enroll)                                \
  X(enroll_result, EnrollResult)                   \
  X(cert_renew, CertRenew)                         \
  X(cert_renew_result, CertRenewResult)
/* clang-format on */

enum { ENVELOPE_ID_TAG = dfnet_v1_Envelope_id_tag, ENVELOPE_BULK_TAG = dfnet_v1_Envelope_bulk_tag };

/* The member's message descriptor, or NULL for a field number that is not a member. */
static const pb_msgdesc_t *member_fields(uint32_t tag) {
  switch (tag) {
#define MEMBER_FIELDS_(field, type)     \
  case dfnet_v1_Envelope_##field##_tag: \
    return dfnet_v1_##type##_fields;
    DFNET_ENVELOPE_MEMBERS(MEMBER_FIELDS_)
#undef MEMBER_FIELDS_
  default:
    return NULL;
  }
}

const char *dfnet_envelope_msg_name(pb_size_t which_msg) {
  switch (which_msg) {
  case 0:
    return "none";
#define MEMBER_NAME_(field, type)       \
  case dfnet_v1_Envelope_##field##_tag: \
    return #field;
    DFNET_ENVELOPE_MEMBERS(MEMBER_NAME_)
#undef MEMBER_NAME_
  default:
    return "unknown";
  }
}

void dfnet_envelope_init(dfnet_envelope_t *env) { memset(env, 0, sizeof *env); }

void dfnet_envelope_init_member(dfnet_envelope_t *env, pb_size_t which, size_t member_size) {
  env->pb.id = 0;
  env->pb.which_msg = which;
  memset(&env->pb.msg, 0, member_size);
  env->bulk.data = NULL;
  env->bulk.size = 0;
}

static bool encode_bulk(pb_ostream_t *stream, const dfnet_bytes_t *bulk) {
  if (bulk->size == 0)
    return true;
  return pb_encode_tag(stream, PB_WT_STRING, ENVELOPE_BULK_TAG) &&
         pb_encode_string(stream, bulk->data, bulk->size);
}

/* Fields in field-number order, as protoc and nanopb emit them: id, members below 15,
 * bulk, members above 15. Proto3: id 0 and empty bulk are not written. */
static bool encode_envelope(pb_ostream_t *stream, const dfnet_envelope_t *env) {
  pb_size_t which = env->pb.which_msg;
  const pb_msgdesc_t *fields = NULL;
  if (which != 0) {
    fields = member_fields(which);
    if (fields == NULL) {
      PB_SET_ERROR(stream, "unknown envelope member");
      return false;
    }
  }
  if (env->pb.id != 0 && !(pb_encode_tag(stream, PB_WT_VARINT, ENVELOPE_ID_TAG) &&
                           pb_encode_varint(stream, env->pb.id)))
    return false;
  if (which > ENVELOPE_BULK_TAG && !encode_bulk(stream, &env->bulk))
    return false;
  if (which != 0 && !(pb_encode_tag(stream, PB_WT_STRING, which) &&
                      pb_encode_submessage(stream, fields, &env->pb.msg)))
    return false;
  if (which < ENVELOPE_BULK_TAG && !encode_bulk(stream, &env->bulk))
    return false;
  return true;
}

dfnet_status_t dfnet_envelope_encoded_size(dfnet_envelope_t *env, size_t *out_len,
                                           const char **error) {
  pb_ostream_t sizing = PB_OSTREAM_SIZING;
  if (!encode_envelope(&sizing, env)) {
    if (error)
      *error = PB_GET_ERROR(&sizing);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out_len = sizing.bytes_written;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_envelope_encode(dfnet_envelope_t *env, uint8_t *buf, size_t cap,
                                     size_t *out_len, const char **error) {
  pb_ostream_t stream = pb_ostream_from_buffer(buf, cap);
  if (!encode_envelope(&stream, env)) {
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

static bool fail(pb_istream_t *stream, const char *msg) {
  PB_SET_ERROR(stream, msg);
  return false;
}

/* One length-delimited top-level field: the bulk view, or a member decoded in place. As in
 * protobuf, a later member replaces an earlier one and a repeated member is merged. */
static bool decode_delimited(pb_istream_t *stream, uint32_t tag, dfnet_envelope_t *out) {
  pb_istream_t sub;
  if (!pb_make_string_substream(stream, &sub))
    return false;
  bool ok;
  if (tag == ENVELOPE_BULK_TAG) {
    /* A buffer stream's state is its read pointer: the bytes are in the input. */
    out->bulk.data = sub.state;
    out->bulk.size = sub.bytes_left;
    ok = pb_read(&sub, NULL, sub.bytes_left);
  } else {
    const pb_msgdesc_t *fields = member_fields(tag);
    if (fields == NULL) {
      ok = pb_read(&sub, NULL, sub.bytes_left); /* unknown field: skipped */
    } else {
      unsigned flags = out->pb.which_msg == tag ? PB_DECODE_NOINIT : 0;
      ok = pb_decode_ex(&sub, fields, &out->pb.msg, flags);
      out->pb.which_msg = ok ? (pb_size_t)tag : 0;
    }
  }
#ifndef PB_NO_ERRMSG
  if (!ok && stream->errmsg == NULL)
    stream->errmsg = sub.errmsg;
#endif
  return pb_close_string_substream(stream, &sub) && ok;
}

static bool decode_envelope(pb_istream_t *stream, dfnet_envelope_t *out) {
  while (stream->bytes_left > 0) {
    pb_wire_type_t wire_type;
    uint32_t tag;
    bool eof;
    if (!pb_decode_tag(stream, &wire_type, &tag, &eof))
      return eof ? true : false;
    if (tag == 0)
      return fail(stream, "zero tag");
    if (tag == ENVELOPE_ID_TAG) {
      if (wire_type != PB_WT_VARINT)
        return fail(stream, "wrong wire type");
      if (!pb_decode_varint(stream, &out->pb.id))
        return false;
    } else if (tag == ENVELOPE_BULK_TAG || member_fields(tag) != NULL) {
      if (wire_type != PB_WT_STRING)
        return fail(stream, "wrong wire type");
      if (!decode_delimited(stream, tag, out))
        return false;
    } else if (!pb_skip_field(stream, wire_type)) {
      return false;
    }
  }
  return true;
}

dfnet_status_t dfnet_envelope_decode(const uint8_t *buf, size_t len, size_t max_len,
                                     dfnet_envelope_t *out, const char **error) {
  out->pb.id = 0;
  out->pb.which_msg = 0;
  out->bulk.data = NULL;
  out->bulk.size = 0;
  if (len > max_len) {
    if (error)
      *error = "frame larger than the bound";
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  pb_istream_t stream = pb_istream_from_buffer(buf, len);
  if (!decode_envelope(&stream, out)) {
    const char *msg = PB_GET_ERROR(&stream);
    if (error)
      *error = msg;
    out->pb.which_msg = 0;
    out->bulk.data = NULL;
    out->bulk.size = 0;
    return is_overflow(msg) ? DFNET_STATUS_RESOURCE_EXHAUSTED : DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (out->pb.which_msg == 0) {
    if (error)
      *error = "envelope carries no known message";
    return DFNET_STATUS_UNIMPLEMENTED;
  }
  return DFNET_STATUS_OK;
}
