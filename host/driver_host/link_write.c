/* Writing to the driver host's link to the host agent: length-prefixed Envelopes on a
 * socketpair (docs/design.md "The wire"; lib/frame.h), from any thread under write_mu.
 * Reading the link is link.c's.
 *
 * Deferred writes. A dispatcher that has more tasks ready (the calls of one read, say)
 * leaves each reply its task sends in `out` and writes them all in one send when it runs
 * dry (its on_idle hook): one wake-up of the agent per batch instead of one per reply.
 * A task that then blocks must not hold back the replies before it, so the link thread
 * writes frames deferred for DH_DEFER_MAX_MS itself. It can only do that while awake, so
 * before it sleeps in poll() with no timeout it sets link_asleep and looks at
 * deferred_since_ns once more; a dispatcher sets deferred_since_ns and then looks at
 * link_asleep, and writes at once when set (sequentially consistent atomics: one of the
 * two always sees the other). Any write from any thread sends what was deferred first,
 * so frames leave in the order they were made.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/driver_host/runtime.h"
#include "lib/frame.h"
#include "lib/log.h"

#define LINK_SUBSYS "driver-host"
/* How many bytes a dispatcher defers. */
#define DH_DEFER_MAX_BYTES (32u * 1024u)
/* The write buffer kept between writes. */
#define DH_OUT_KEEP_BYTES (256u * 1024u)

/* Write everything in host->out. Called with write_mu held. */
static dfnet_status_t flush_locked(dh_host_t *host) {
  dfnet_status_t st = DFNET_STATUS_OK;
  size_t off = 0;
  while (off < host->out_len) {
    ssize_t n = send(host->fd, host->out + off, host->out_len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
      n = write(host->fd, host->out + off, host->out_len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      st = DFNET_STATUS_UNAVAILABLE;
      if (!atomic_exchange(&host->write_failed, true))
        DFNET_LOGW(LINK_SUBSYS, NULL, "link to the host agent lost while writing: %s",
                   strerror(errno));
      break;
    }
    off += (size_t)n;
  }
  host->out_len = 0;
  atomic_store(&host->deferred_since_ns, 0);
  if (host->out_cap > DH_OUT_KEEP_BYTES) {
    /* a large reply went out: do not keep its buffer for the small ones */
    free(host->out);
    host->out = NULL;
    host->out_cap = 0;
  }
  return st;
}

void dh__link_flush_deferred(void *arg) {
  dh_host_t *host = arg;
  if (atomic_load(&host->deferred_since_ns) == 0)
    return;
  pthread_mutex_lock(&host->write_mu);
  if (host->out_len > 0)
    flush_locked(host);
  pthread_mutex_unlock(&host->write_mu);
}

/* Fill, encode and write one envelope (or defer it: see the top of this file). `reset`:
 * clear the whole envelope first (~34 KiB) for a fill that sets only some fields of its
 * member; a fill that sets every field of its member (Reply, Status) skips it, since the
 * encoder reads only pb.id, pb.which_msg, the active member and bulk (lib/envelope.c). */
static dfnet_status_t link_send(dh_host_t *host, uint64_t id, dh_fill_fn fill, void *arg,
                                const uint8_t *bulk, size_t bulk_len, bool reset) {
  dfnet_status_t st;
  const char *err = NULL;
  size_t len = 0;
  if (atomic_load(&host->write_failed))
    return DFNET_STATUS_UNAVAILABLE;
  pthread_mutex_lock(&host->write_mu);
  if (reset)
    dfnet_envelope_init(host->wenv);
  host->wenv->pb.id = id;
  fill(host->wenv, arg);
  host->wenv->bulk.data = bulk;
  host->wenv->bulk.size = bulk_len;
  st = dfnet_envelope_encoded_size(host->wenv, &len, &err);
  if (st != DFNET_STATUS_OK)
    goto encode_failed;
  size_t need = host->out_len + DFNET_FRAME_HEADER_SIZE + len;
  if (need > host->out_cap) {
    size_t cap = host->out_cap ? host->out_cap : 4096u;
    while (cap < need)
      cap *= 2;
    uint8_t *grown = realloc(host->out, cap);
    if (grown == NULL) {
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      err = "out of memory";
      goto encode_failed;
    }
    host->out = grown;
    host->out_cap = cap;
  }
  uint8_t *frame = host->out + host->out_len;
  st = dfnet_envelope_encode(host->wenv, frame + DFNET_FRAME_HEADER_SIZE,
                             host->out_cap - host->out_len - DFNET_FRAME_HEADER_SIZE, &len, &err);
  if (st != DFNET_STATUS_OK)
    goto encode_failed;
  dfnet_frame_put_header(frame, (uint32_t)len);
  host->out_len += DFNET_FRAME_HEADER_SIZE + len;
  if (host->out_len < DH_DEFER_MAX_BYTES && dh__dispatcher_more_ready()) {
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&host->deferred_since_ns, &zero, dh__now_ns());
    if (!atomic_load(&host->link_asleep)) {
      pthread_mutex_unlock(&host->write_mu);
      return DFNET_STATUS_OK;
    }
  }
  st = flush_locked(host);
  pthread_mutex_unlock(&host->write_mu);
  return st;

encode_failed:
  DFNET_LOGE(LINK_SUBSYS, NULL, "cannot encode %s (id %llu): %s",
             dfnet_envelope_msg_name(host->wenv->pb.which_msg), (unsigned long long)id,
             err ? err : "?");
  pthread_mutex_unlock(&host->write_mu);
  return st;
}

dfnet_status_t dh__link_send(dh_host_t *host, uint64_t id, dh_fill_fn fill, void *arg,
                             const uint8_t *bulk, size_t bulk_len) {
  return link_send(host, id, fill, arg, bulk, bulk_len, true);
}

typedef struct status_args {
  dfnet_status_t code;
  const char *message;
} status_args_t;

static void fill_status(dfnet_envelope_t *env, void *arg) {
  status_args_t *a = arg;
  env->pb.which_msg = dfnet_v1_Envelope_status_tag;
  env->pb.msg.status.code = (dfnet_v1_Code)a->code;
  dh__strlcpy(env->pb.msg.status.message, a->message ? a->message : "",
              sizeof env->pb.msg.status.message);
}

dfnet_status_t dh__link_send_status(dh_host_t *host, uint64_t id, dfnet_status_t code,
                                    const char *message) {
  status_args_t a = {code, message};
  return link_send(host, id, fill_status, &a, NULL, 0, false);
}

typedef struct reply_args {
  dfnet_status_t code;
  const char *message;
  bool eos;
} reply_args_t;

static void fill_reply(dfnet_envelope_t *env, void *arg) {
  reply_args_t *a = arg;
  env->pb.which_msg = dfnet_v1_Envelope_reply_tag;
  env->pb.msg.reply.code = (dfnet_v1_Code)a->code;
  env->pb.msg.reply.end_of_stream = a->eos;
  dh__strlcpy(env->pb.msg.reply.message, a->message ? a->message : "",
              sizeof env->pb.msg.reply.message);
}

dfnet_status_t dh__link_send_reply(dh_host_t *host, uint64_t id, dfnet_status_t code,
                                   const char *message, bool end_of_stream, const uint8_t *data,
                                   size_t len) {
  reply_args_t a = {code, message, end_of_stream};
  return link_send(host, id, fill_reply, &a, data, len, false);
}

static void fill_call(dfnet_envelope_t *env, void *arg) {
  env->pb.which_msg = dfnet_v1_Envelope_call_tag;
  env->pb.msg.call = *(const dfnet_v1_Call *)arg;
}

dfnet_status_t dh__link_send_call(dh_host_t *host, uint64_t id, const dfnet_v1_Call *m,
                                  const uint8_t *data, size_t len) {
  return link_send(host, id, fill_call, (void *)m, data, len, false);
}

static void fill_cancel(dfnet_envelope_t *env, void *arg) {
  env->pb.which_msg = dfnet_v1_Envelope_cancel_tag;
  dh__strlcpy(env->pb.msg.cancel.reason, arg, sizeof env->pb.msg.cancel.reason);
}

dfnet_status_t dh__link_send_cancel(dh_host_t *host, uint64_t id, const char *reason) {
  return link_send(host, id, fill_cancel, (void *)reason, NULL, 0, false);
}

static void fill_credit(dfnet_envelope_t *env, void *arg) {
  env->pb.which_msg = dfnet_v1_Envelope_stream_credit_tag;
  env->pb.msg.stream_credit.credit = *(const uint32_t *)arg;
}

dfnet_status_t dh__link_send_credit(dh_host_t *host, uint64_t id, uint32_t credit) {
  return link_send(host, id, fill_credit, &credit, NULL, 0, false);
}
