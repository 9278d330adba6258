/* The driver host's link to the host agent: length-prefixed Envelopes on a socketpair
 * (DESIGN.md "The wire"; lib/frame.h). Writes come from any thread under write_mu; reads
 * happen on the link thread (dh__link_run), which also expires deadlines and reaps
 * stopped drivers.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host/driver_host/runtime.h"
#include "lib/frame.h"
#include "lib/log.h"

#define LINK_SUBSYS "driver-host"
#define LINK_READ_CHUNK (64u * 1024u)

void dh__strlcpy(char *dst, const char *src, size_t cap) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

dfnet_status_t dh__host_init(dh_host_t *host, int fd) {
  memset(host, 0, sizeof *host);
  host->fd = fd;
  host->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (host->wake_fd < 0) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd: %s", strerror(errno));
    return DFNET_STATUS_INTERNAL;
  }
  host->wenv = malloc(sizeof *host->wenv);
  if (host->wenv == NULL) {
    close(host->wake_fd);
    return DFNET_STATUS_INTERNAL;
  }
  pthread_mutex_init(&host->write_mu, NULL);
  pthread_mutex_init(&host->calls_mu, NULL);
  atomic_store(&host->next_id, 1);
  atomic_store(&host->write_failed, false);
  return DFNET_STATUS_OK;
}

void dh__host_fini(dh_host_t *host) {
  free(host->wenv);
  free(host->wbuf);
  close(host->wake_fd);
  pthread_mutex_destroy(&host->write_mu);
  pthread_mutex_destroy(&host->calls_mu);
}

/* Fill, encode and write one envelope. `reset`: clear the whole envelope first (~34 KiB)
 * for a fill that sets only some fields of its member; a fill that sets every field of
 * its member (Reply, Status) skips it, since the encoder reads only pb.id, pb.which_msg,
 * the active member and bulk (lib/envelope.c). */
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
  if (len > host->wbuf_cap) {
    uint8_t *grown = realloc(host->wbuf, len);
    if (grown == NULL) {
      st = DFNET_STATUS_RESOURCE_EXHAUSTED;
      err = "out of memory";
      goto encode_failed;
    }
    host->wbuf = grown;
    host->wbuf_cap = len;
  }
  st = dfnet_envelope_encode(host->wenv, host->wbuf, host->wbuf_cap, &len, &err);
  if (st != DFNET_STATUS_OK)
    goto encode_failed;
  st = dfnet_frame_write_fd(host->fd, host->wbuf, len);
  if (st != DFNET_STATUS_OK) {
    if (!atomic_exchange(&host->write_failed, true))
      DFNET_LOGW(LINK_SUBSYS, NULL, "link to the host agent lost while writing: %s",
                 strerror(errno));
  }
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
                                   const char *message, bool end_of_stream,
                                   const uint8_t *data, size_t len) {
  reply_args_t a = {code, message, end_of_stream};
  return link_send(host, id, fill_reply, &a, data, len, false);
}

void dh__host_queue_reap(dh_host_t *host, dfnet_driver_t *drv) {
  dh_reap_t *r = malloc(sizeof *r);
  uint64_t one = 1;
  pthread_mutex_lock(&host->calls_mu);
  if (r != NULL) {
    r->driver = drv;
    r->next = host->reap;
    host->reap = r;
  }
  pthread_mutex_unlock(&host->calls_mu);
  if (r == NULL)
    DFNET_LOGE(LINK_SUBSYS, drv->moniker, "out of memory queueing the driver's reaping");
  if (write(host->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd write: %s", strerror(errno));
}

static void reap_stopped(dh_host_t *host) {
  uint64_t v;
  if (read(host->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
    DFNET_LOGE(LINK_SUBSYS, NULL, "eventfd read: %s", strerror(errno));
  pthread_mutex_lock(&host->calls_mu);
  dh_reap_t *list = host->reap;
  host->reap = NULL;
  pthread_mutex_unlock(&host->calls_mu);
  while (list != NULL) {
    dh_reap_t *next = list->next;
    dfnet_driver_t **pp = &host->drivers;
    while (*pp != NULL && *pp != list->driver)
      pp = &(*pp)->next;
    if (*pp != NULL)
      *pp = list->driver->next;
    dh__driver_reap(list->driver);
    free(list);
    list = next;
  }
}

static dfnet_driver_t *find_driver(dh_host_t *host, const char *moniker) {
  for (dfnet_driver_t *d = host->drivers; d != NULL; d = d->next)
    if (strcmp(d->moniker, moniker) == 0)
      return d;
  return NULL;
}

static void handle_driver_stop(dh_host_t *host, uint64_t id, const dfnet_v1_DriverStop *m) {
  dfnet_driver_t *drv = find_driver(host, m->node);
  if (drv == NULL) {
    char msg[600];
    snprintf(msg, sizeof msg, "no driver on node %s in this driver host", m->node);
    DFNET_LOGW(LINK_SUBSYS, m->node, "DriverStop: %s", msg);
    dh__link_send_status(host, id, DFNET_STATUS_NOT_FOUND, msg);
    return;
  }
  dh__driver_begin_stop(drv, id);
}

static void handle_frame(dh_host_t *host, dfnet_envelope_t *env, const uint8_t *frame,
                         size_t len) {
  const char *err = NULL;
  dfnet_status_t st = dfnet_envelope_decode(frame, len, DFNET_FRAME_MAX_DEFAULT, env, &err);
  if (st == DFNET_STATUS_UNIMPLEMENTED) {
    DFNET_LOGW(LINK_SUBSYS, NULL, "envelope id %llu with no known member: UNIMPLEMENTED",
               (unsigned long long)env->pb.id);
    dh__link_send_status(host, env->pb.id, st, "message not understood by dfnet-driver-host");
    return;
  }
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(LINK_SUBSYS, NULL, "dropping a malformed frame (%zu bytes): %s: %s", len,
               dfnet_status_str(st), err ? err : "?");
    return;
  }
  uint64_t id = env->pb.id;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_driver_start_tag:
    if (host->link_down)
      return;
    dh__driver_handle_start(host, id, &env->pb.msg.driver_start, env->bulk);
    break;
  case dfnet_v1_Envelope_driver_stop_tag:
    handle_driver_stop(host, id, &env->pb.msg.driver_stop);
    break;
  case dfnet_v1_Envelope_call_tag:
    dh__call_handle(host, id, &env->pb.msg.call, env->bulk);
    break;
  case dfnet_v1_Envelope_cancel_tag:
    dh__call_handle_cancel(host, id);
    break;
  case dfnet_v1_Envelope_stream_credit_tag:
    dh__call_handle_credit(host, id, env->pb.msg.stream_credit.credit);
    break;
  case dfnet_v1_Envelope_status_tag:
    dh__driver_child_status(host, id, (dfnet_status_t)env->pb.msg.status.code,
                            env->pb.msg.status.message);
    break;
  default:
    DFNET_LOGW(LINK_SUBSYS, NULL, "unexpected %s (id %llu): UNIMPLEMENTED",
               dfnet_envelope_msg_name(env->pb.which_msg), (unsigned long long)id);
    dh__link_send_status(host, id, DFNET_STATUS_UNIMPLEMENTED,
                         "dfnet-driver-host does not handle this message");
    break;
  }
}

/* The link is gone: stop every driver (no one to answer). */
static void link_down(dh_host_t *host) {
  if (host->link_down)
    return;
  host->link_down = true;
  DFNET_LOGI(LINK_SUBSYS, NULL, "link to the host agent closed: stopping every driver");
  for (dfnet_driver_t *d = host->drivers; d != NULL; d = d->next)
    dh__driver_begin_stop(d, 0);
}

int dh__link_run(dh_host_t *host) {
  dfnet_frame_reader_t reader;
  dfnet_envelope_t *env = malloc(sizeof *env);
  uint8_t *chunk = malloc(LINK_READ_CHUNK);
  int rc = 0;
  if (env == NULL || chunk == NULL) {
    DFNET_LOGE(LINK_SUBSYS, NULL, "out of memory");
    rc = 1;
    goto alloc_failed;
  }
  dfnet_frame_reader_init(&reader, DFNET_FRAME_MAX_DEFAULT);
  while (!host->link_down || host->drivers != NULL) {
    int timeout = dh__call_expire(host);
    struct pollfd pfd[2] = {{.fd = host->wake_fd, .events = POLLIN},
                            {.fd = host->fd, .events = POLLIN}};
    int n = poll(pfd, host->link_down ? 1 : 2, timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      DFNET_LOGE(LINK_SUBSYS, NULL, "poll: %s", strerror(errno));
      rc = 1;
      break;
    }
    if (pfd[0].revents & POLLIN)
      reap_stopped(host);
    if (host->link_down || pfd[1].revents == 0)
      continue;
    ssize_t got = read(host->fd, chunk, LINK_READ_CHUNK);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (got <= 0) {
      link_down(host);
      continue;
    }
    size_t off = 0;
    while (off < (size_t)got) {
      size_t used = 0, flen = 0;
      const uint8_t *frame = NULL;
      dfnet_status_t st = dfnet_frame_reader_feed(&reader, chunk + off, (size_t)got - off,
                                                  &used, &frame, &flen);
      off += used;
      if (st != DFNET_STATUS_OK)
        DFNET_LOGW(LINK_SUBSYS, NULL, "frame skipped: %s", dfnet_status_str(st));
      if (frame != NULL)
        handle_frame(host, env, frame, flen);
    }
    if (atomic_load(&host->write_failed))
      link_down(host);
  }
  dfnet_frame_reader_free(&reader);
alloc_failed:
  free(chunk);
  free(env);
  return rc;
}
