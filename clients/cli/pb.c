/* dfnet CLI: just enough protobuf (https://protobuf.dev/programming-guides/encoding/) to
 * build the few request messages of the hardware protocols' verbs (rng, serial, usb) and to
 * pick a bytes or varint field out of their replies, without generating code for every
 * .proto; and the unary call that sends such a message. */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"

size_t cli__pb_put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  return n;
}

static void put_varint(cli_pb_t *pb, uint64_t v) {
  if (pb->len + CLI_PB_VARINT_MAX > sizeof pb->buf) {
    pb->overflow = true;
    return;
  }
  pb->len += cli__pb_put_varint(pb->buf + pb->len, v);
}

void cli__pb_reset(cli_pb_t *pb) {
  pb->len = 0;
  pb->overflow = false;
}

void cli__pb_varint(cli_pb_t *pb, uint32_t field, uint64_t value) {
  if (value == 0)
    return; /* proto3: the default is not written */
  put_varint(pb, (uint64_t)field << 3 | 0u);
  put_varint(pb, value);
}

void cli__pb_bytes(cli_pb_t *pb, uint32_t field, const void *data, size_t len) {
  if (len == 0)
    return;
  put_varint(pb, (uint64_t)field << 3 | 2u);
  put_varint(pb, len);
  if (pb->len + len > sizeof pb->buf) {
    pb->overflow = true;
    return;
  }
  memcpy(pb->buf + pb->len, data, len);
  pb->len += len;
}

static int get_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*off >= len)
      return -1;
    uint8_t b = p[(*off)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

/* Walk msg's fields to the first one numbered `field` of wire type `want` (0 varint, 2
 * length-delimited): 1 found (*value: the varint or the length, *at: where the bytes
 * start), 0 absent, -1 malformed. */
static int find_field(const uint8_t *msg, size_t len, uint32_t field, unsigned want,
                      uint64_t *value, size_t *at) {
  size_t off = 0;
  while (off < len) {
    uint64_t key, v;
    if (get_varint(msg, len, &off, &key) != 0)
      return -1;
    switch (key & 7u) {
    case 0:
      if (get_varint(msg, len, &off, &v) != 0)
        return -1;
      if ((key >> 3) == field && want == 0) {
        *value = v;
        *at = off;
        return 1;
      }
      break;
    case 1:
      if (len - off < 8)
        return -1;
      off += 8;
      break;
    case 5:
      if (len - off < 4)
        return -1;
      off += 4;
      break;
    case 2:
      if (get_varint(msg, len, &off, &v) != 0 || v > len - off)
        return -1;
      if ((key >> 3) == field && want == 2) {
        *value = v;
        *at = off;
        return 1;
      }
      off += (size_t)v;
      break;
    default:
      return -1;
    }
  }
  return 0;
}

int cli__pb_find_bytes(const uint8_t *msg, size_t len, uint32_t field, const uint8_t **data,
                       size_t *data_len) {
  uint64_t n = 0;
  size_t at = 0;
  int rc = find_field(msg, len, field, 2, &n, &at);
  if (rc == 1) {
    *data = msg + at;
    *data_len = (size_t)n;
  }
  return rc;
}

int cli__pb_find_varint(const uint8_t *msg, size_t len, uint32_t field, uint64_t *value) {
  size_t at = 0;
  *value = 0;
  return find_field(msg, len, field, 0, value, &at);
}

/* ---- the call ------------------------------------------------------------------------ */

dfnet_status_t cli__pb_call(dfnet_client_t *c, const char *target, const char *method,
                            const cli_pb_t *pb, uint32_t deadline_ms, uint8_t **reply,
                            size_t *reply_len, dfnet_client_error_t *err) {
  dfnet_client_call_options_t co = {.deadline_ms = deadline_ms};
  *reply = NULL;
  *reply_len = 0;
  return dfnet_client_call(c, target, method, pb->buf, pb->len, &co, reply, reply_len, err);
}

int cli__unary_new(cli_unary_t *u) {
  u->pb = calloc(1, sizeof *u->pb);
  if (u->pb == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  return CLI_EXIT_OK;
}

int cli__unary_request(cli_run_t *run) {
  cli_unary_t *u = run->ctx; /* first in the command's ctx */
  dfnet_client_error_t err;
  return cli__status(cli__pb_call(run->client, run->args[0], u->method, u->pb,
                                  (uint32_t)u->deadline_ms, &u->reply, &u->reply_len, &err),
                     &err);
}

void cli__unary_release(cli_run_t *run) {
  cli_unary_t *u = run->ctx;
  free(u->reply);
  free(u->pb);
}
