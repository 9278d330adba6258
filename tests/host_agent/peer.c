/* The scripted manager-side peer of peer.h, on the real transport server. */
#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void peer_init(peer_t *p, const char *cert, const char *key, const char *ca) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  snprintf(p->cert, sizeof p->cert, "%s", cert);
  snprintf(p->key, sizeof p->key, "%s", key);
  snprintf(p->ca, sizeof p->ca, "%s", ca);
  p->node_add_code = DFNET_STATUS_OK;
}

static void record(peer_t *p, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  peer_rec_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return;
  r->which = env->pb.which_msg;
  r->id = env->pb.id;
  r->session = session;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_hello_tag:
    r->m.hello = env->pb.msg.hello;
    break;
  case dfnet_v1_Envelope_node_add_tag:
    r->m.node_add = env->pb.msg.node_add;
    break;
  case dfnet_v1_Envelope_node_remove_tag:
    r->m.node_remove = env->pb.msg.node_remove;
    break;
  case dfnet_v1_Envelope_driver_host_exit_tag:
    r->m.driver_host_exit = env->pb.msg.driver_host_exit;
    break;
  case dfnet_v1_Envelope_package_fetch_tag:
    r->m.package_fetch = env->pb.msg.package_fetch;
    break;
  case dfnet_v1_Envelope_call_tag:
    r->m.call = env->pb.msg.call;
    break;
  case dfnet_v1_Envelope_cancel_tag:
    r->m.cancel = env->pb.msg.cancel;
    break;
  default:
    break;
  }
  r->bulk_len = env->bulk.size < sizeof r->bulk ? env->bulk.size : sizeof r->bulk;
  if (r->bulk_len > 0)
    memcpy(r->bulk, env->bulk.data, r->bulk_len);
  pthread_mutex_lock(&p->mu);
  r->session_index = p->sessions_opened;
  if (p->rec_count == p->rec_cap) {
    size_t cap = p->rec_cap ? p->rec_cap * 2 : 64;
    peer_rec_t **grown = realloc(p->recs, cap * sizeof *grown);
    if (grown == NULL) {
      pthread_mutex_unlock(&p->mu);
      free(r);
      return;
    }
    p->recs = grown;
    p->rec_cap = cap;
  }
  p->recs[p->rec_count++] = r;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void on_open(void *user, const dfnet_session_info_t *info) {
  peer_t *p = user;
  pthread_mutex_lock(&p->mu);
  p->session = info->id;
  p->sessions_opened++;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void on_closed(void *user, dfnet_session_id_t session, dfnet_status_t reason,
                      const char *message) {
  peer_t *p = user;
  (void)reason;
  (void)message;
  pthread_mutex_lock(&p->mu);
  if (p->session == session)
    p->session = 0;
  p->sessions_closed++;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void serve_fetch(peer_t *p, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  const dfnet_v1_PackageFetch *f = &env->pb.msg.package_fetch;
  pthread_mutex_lock(&p->mu);
  p->fetches++;
  peer_pkg_t *pkg = NULL;
  for (size_t i = 0; i < p->pkg_count; i++)
    if (memcmp(p->pkgs[i].digest, f->digest, 32) == 0)
      pkg = &p->pkgs[i];
  pthread_mutex_unlock(&p->mu);
  if (pkg == NULL || f->offset > pkg->size) {
    dfnet_transport_send_status(p->t, session, env->pb.id, DFNET_STATUS_NOT_FOUND,
                                "no such package");
    return;
  }
  size_t n = pkg->size - (size_t)f->offset;
  uint32_t max = f->max_bytes && f->max_bytes < PEER_CHUNK ? f->max_bytes : PEER_CHUNK;
  if (n > max)
    n = max;
  dfnet_envelope_t *out = calloc(1, sizeof *out);
  if (out == NULL)
    return;
  dfnet_envelope_init(out);
  out->pb.id = env->pb.id;
  out->pb.which_msg = dfnet_v1_Envelope_package_chunk_tag;
  memcpy(out->pb.msg.package_chunk.digest, pkg->digest, 32);
  out->pb.msg.package_chunk.offset = f->offset;
  out->pb.msg.package_chunk.total_size = pkg->size;
  out->pb.msg.package_chunk.last = f->offset + n == pkg->size;
  out->bulk.data = pkg->data + f->offset;
  out->bulk.size = n;
  dfnet_transport_send(p->t, session, out, 0);
  free(out);
}

/* A driver's call the agent sent up: answered as the manager would have it answered. */
static void answer_call(peer_t *p, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  const dfnet_v1_Call *m = &env->pb.msg.call;
  size_t mlen = strlen(m->method);
  if (!p->answer_calls || mlen < 5 || strcmp(m->method + mlen - 5, "/Echo") != 0)
    return;
  char text[1600];
  int n = snprintf(text, sizeof text, "manager:%.*s;caller=%s;url=%s", (int)env->bulk.size,
                   (const char *)env->bulk.data, m->caller, m->caller_driver_url);
  dfnet_envelope_t *w = calloc(1, sizeof *w);
  if (w == NULL || n < 0)
    return;
  dfnet_envelope_init(w);
  w->pb.id = env->pb.id;
  w->pb.which_msg = dfnet_v1_Envelope_reply_tag;
  w->pb.msg.reply.code = dfnet_v1_Code_OK;
  w->pb.msg.reply.end_of_stream = true;
  w->bulk.data = (const uint8_t *)text;
  w->bulk.size = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
  dfnet_transport_send(p->t, session, w, 0);
  free(w);
}

static void on_envelope(void *user, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  peer_t *p = user;
  record(p, session, env);
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_hello_tag: {
    dfnet_envelope_t *w = calloc(1, sizeof *w);
    if (w == NULL)
      return;
    dfnet_envelope_init(w);
    char buf[512];
    dfnet_session_info_t info;
    w->pb.id = env->pb.id;
    w->pb.which_msg = dfnet_v1_Envelope_welcome_tag;
    w->pb.msg.welcome.protocol_version = DFNET_PROTOCOL_VERSION;
    w->pb.msg.welcome.role = dfnet_v1_Role_HOST;
    if (dfnet_transport_session_info(p->t, session, &info, buf, sizeof buf) == DFNET_STATUS_OK)
      snprintf(w->pb.msg.welcome.name, sizeof w->pb.msg.welcome.name, "%s", info.peer_name);
    snprintf(w->pb.msg.welcome.server_name, sizeof w->pb.msg.welcome.server_name, "peer");
    w->pb.msg.welcome.session_id = session;
    w->pb.msg.welcome.host_grace_ms = 5000;
    dfnet_transport_send(p->t, session, w, 0);
    free(w);
    break;
  }
  case dfnet_v1_Envelope_node_add_tag:
  case dfnet_v1_Envelope_node_remove_tag:
    dfnet_transport_send_status(p->t, session, env->pb.id, p->node_add_code, NULL);
    break;
  case dfnet_v1_Envelope_package_fetch_tag:
    serve_fetch(p, session, env);
    break;
  case dfnet_v1_Envelope_call_tag:
    answer_call(p, session, env);
    break;
  default:
    break;
  }
}

int peer_start(peer_t *p, uint16_t port) {
  if (dfnet_transport_create(&p->t) != DFNET_STATUS_OK)
    return -1;
  dfnet_server_config_t cfg = {.bind_address = "127.0.0.1",
                               .port = port,
                               .cert_file = p->cert,
                               .key_file = p->key,
                               .ca_file = p->ca,
                               .callbacks = {.on_session_open = on_open,
                                             .on_envelope = on_envelope,
                                             .on_session_closed = on_closed},
                               .user = p};
  uint16_t got = 0;
  /* After a restart the old socket may linger a moment: retry the bind. */
  for (int attempt = 0; attempt < 50; attempt++) {
    if (dfnet_transport_listen(p->t, &cfg, NULL, &got) == DFNET_STATUS_OK) {
      p->port = got;
      return dfnet_transport_start(p->t) == DFNET_STATUS_OK ? 0 : -1;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  dfnet_transport_destroy(p->t);
  p->t = NULL;
  return -1;
}

void peer_stop(peer_t *p) {
  dfnet_transport_destroy(p->t);
  p->t = NULL;
  pthread_mutex_lock(&p->mu);
  p->session = 0;
  pthread_mutex_unlock(&p->mu);
}

void peer_free(peer_t *p) {
  for (size_t i = 0; i < p->rec_count; i++)
    free(p->recs[i]);
  free(p->recs);
  for (size_t i = 0; i < p->pkg_count; i++)
    free(p->pkgs[i].data);
  p->recs = NULL;
  p->rec_count = p->rec_cap = p->pkg_count = 0;
}

void peer_add_package(peer_t *p, const uint8_t digest[32], const uint8_t *data, size_t size) {
  pthread_mutex_lock(&p->mu);
  if (p->pkg_count < sizeof p->pkgs / sizeof p->pkgs[0]) {
    peer_pkg_t *k = &p->pkgs[p->pkg_count];
    k->data = malloc(size);
    if (k->data != NULL) {
      memcpy(k->digest, digest, 32);
      memcpy(k->data, data, size);
      k->size = size;
      p->pkg_count++;
    }
  }
  pthread_mutex_unlock(&p->mu);
}

static void deadline_in(struct timespec *ts, uint32_t ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

long peer_wait(peer_t *p, pb_size_t which, peer_pred_fn pred, const void *arg, size_t *from,
               uint32_t timeout_ms) {
  struct timespec until;
  deadline_in(&until, timeout_ms);
  size_t i = from ? *from : 0;
  long found = -1;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    for (; i < p->rec_count; i++) {
      const peer_rec_t *r = p->recs[i];
      if ((which == 0 || r->which == which) && (pred == NULL || pred(r, arg))) {
        found = (long)i;
        break;
      }
    }
    if (found >= 0)
      break;
    if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0) {
      /* one last look */
      for (; i < p->rec_count; i++) {
        const peer_rec_t *r = p->recs[i];
        if ((which == 0 || r->which == which) && (pred == NULL || pred(r, arg))) {
          found = (long)i;
          break;
        }
      }
      break;
    }
  }
  pthread_mutex_unlock(&p->mu);
  if (found >= 0 && from != NULL)
    *from = (size_t)found + 1;
  return found;
}

dfnet_session_id_t peer_wait_session(peer_t *p, dfnet_session_id_t after, uint32_t timeout_ms) {
  struct timespec until;
  deadline_in(&until, timeout_ms);
  dfnet_session_id_t s = 0;
  pthread_mutex_lock(&p->mu);
  while ((p->session == 0 || p->session == after) &&
         pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0) {
  }
  if (p->session != 0 && p->session != after)
    s = p->session;
  pthread_mutex_unlock(&p->mu);
  return s;
}

bool peer_get(peer_t *p, size_t i, peer_rec_t *out) {
  bool ok = false;
  pthread_mutex_lock(&p->mu);
  if (i < p->rec_count) {
    *out = *p->recs[i];
    ok = true;
  }
  pthread_mutex_unlock(&p->mu);
  return ok;
}

size_t peer_count(peer_t *p) {
  pthread_mutex_lock(&p->mu);
  size_t n = p->rec_count;
  pthread_mutex_unlock(&p->mu);
  return n;
}

size_t peer_fetches(peer_t *p) {
  pthread_mutex_lock(&p->mu);
  size_t n = p->fetches;
  pthread_mutex_unlock(&p->mu);
  return n;
}

bool peer_is_node(const peer_rec_t *r, const void *moniker) {
  if (r->which != dfnet_v1_Envelope_node_add_tag)
    return false;
  char full[700];
  snprintf(full, sizeof full, "%s.%s", r->m.node_add.parent, r->m.node_add.name);
  return strcmp(full, (const char *)moniker) == 0;
}
