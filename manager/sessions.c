/* dfnet-manager: sessions (docs/design.md "Security"): the first envelope is a Hello, answered
 * with Welcome; then each message is checked against the session's kind and role and
 * handed to its handle_<message>.c by the message table (dispatch.c). Enrollment sessions
 * (dfnet.enroll.v1, no certificate): one Enroll (handle_enroll.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/role.h"
#include "manager/cert.h"
#include "manager/lease.h"
#include "manager/manager.h"

mgr_session_t *sessions__find(mgr_t *m, dfnet_session_id_t sid) {
  mgr_session_t *s = NULL;
  HASH_FIND(hh, m->sessions, &sid, sizeof sid, s);
  return s;
}

static void session_free(mgr_t *m, mgr_session_t *s) {
  if (s->watch_id != 0 && m->watchers > 0)
    m->watchers--;
  if (s->hello_timer != 0)
    (void)dfnet_transport_timer_cancel(m->transport, s->hello_timer);
  HASH_DEL(m->sessions, s);
  free(s->upload.data);
  free(s);
}

void sessions__destroy_all(mgr_t *m) {
  mgr_session_t *s, *tmp;
  HASH_ITER(hh, m->sessions, s, tmp)
    session_free(m, s);
}

void sessions__reply_status(mgr_t *m, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                            const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sessions__reply_vstatus(m, sid, id, code, fmt, ap);
  va_end(ap);
}

void sessions__reply_vstatus(mgr_t *m, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                             const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  dfnet_status_t st = dfnet_transport_send_status(m->transport, sid, id, code, msg);
  if (st != DFNET_STATUS_OK && st != DFNET_STATUS_NOT_FOUND)
    DFNET_LOGW("sessions", NULL, "session %llu: status reply not sent: %s", (unsigned long long)sid,
               dfnet_status_str(st));
}

topology_node_t *sessions__node_or_reply(mgr_t *m, dfnet_session_id_t sid, uint64_t id,
                                         const char *name, bool moniker_only) {
  topology_node_t *n =
      moniker_only ? topology__find(&m->topo, name) : topology__find_named(&m->topo, name);
  if (n == NULL)
    sessions__reply_status(m, sid, id, DFNET_STATUS_NOT_FOUND, "node %s not found", name);
  return n;
}

/* The Hello deadline of a session ran out. The argument lives in the session, whose free
 * cancels the timer first; the session is still looked up by id. */
static void hello_timeout(void *user) {
  const mgr_hello_wait_t *w = user;
  mgr_session_t *s = sessions__find(w->m, w->sid);
  if (s != NULL && !s->welcomed) {
    s->hello_timer = 0;
    DFNET_LOGW("sessions", s->name, "no Hello within %u ms from %s: closing the session",
               w->m->cfg.hello_timeout_ms, s->address);
    char msg[64];
    snprintf(msg, sizeof msg, "no Hello within %u ms", w->m->cfg.hello_timeout_ms);
    dfnet_transport_session_close(w->m->transport, s->id, DFNET_STATUS_DEADLINE_EXCEEDED, msg);
  }
}

void sessions__on_open(void *user, const dfnet_session_info_t *info) {
  mgr_t *m = user;
  mgr_session_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    dfnet_transport_session_close(m->transport, info->id, DFNET_STATUS_RESOURCE_EXHAUSTED,
                                  "out of memory");
    return;
  }
  s->id = info->id;
  s->kind = strcmp(info->subprotocol, DFNET_SUBPROTOCOL_HOST) == 0     ? SESSION_HOST
            : strcmp(info->subprotocol, DFNET_SUBPROTOCOL_ENROLL) == 0 ? SESSION_ENROLL
                                                                       : SESSION_CLIENT;
  s->role = info->role;
  topology__fmt(s->name, sizeof s->name, "%s", info->peer_name ? info->peer_name : "");
  topology__fmt(s->address, sizeof s->address, "%s", info->peer_address ? info->peer_address : "");
  HASH_ADD(hh, m->sessions, id, sizeof s->id, s);
  metrics__session_open(m, info); /* its TLS handshake; a host's certificate expiry */
  if (s->kind != SESSION_ENROLL)
    cert__session_open(m, info); /* its certificate: recorded, revocable */
  /* A peer must speak first, and soon: a session that never sends Hello holds a socket and
   * memory for nothing (docs/protocol.md). */
  s->hello_wait.m = m;
  s->hello_wait.sid = s->id;
  (void)dfnet_transport_timer_start(m->transport, m->cfg.hello_timeout_ms, hello_timeout,
                                    &s->hello_wait, &s->hello_timer);
  DFNET_LOGD("sessions", s->name, "open (%s, role %s, %s)", info->subprotocol,
             info->role_name ? info->role_name : "?", s->address);
}

void sessions__on_closed(void *user, dfnet_session_id_t sid, dfnet_status_t reason,
                         const char *message) {
  mgr_t *m = user;
  mgr_session_t *s = sessions__find(m, sid);
  if (s == NULL)
    return;
  DFNET_LOGD("sessions", s->name, "closed: %s %s", dfnet_status_str(reason),
             message ? message : "");
  if (s->kind == SESSION_HOST && !m->stopping)
    hosts__session_closed(m, s);
  calls__session_closed(m, s->id);       /* a client's calls, or those of a host's drivers */
  lease_queue__session_closed(m, s->id); /* its waiting lease requests keep their places */
  cert__session_closed(m, s->id);
  session_free(m, s);
}

/* The least role a client message needs (lib/role.h ranks them: admin > operator >
 * viewer), or ROLE_UNSPECIFIED when it is not a client message. */
static void on_hello(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_Hello *h = &env->pb.msg.hello;
  if (s->welcomed) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_FAILED_PRECONDITION,
                           "Hello already received");
    return;
  }
  if (h->protocol_version != DFNET_PROTOCOL_VERSION) {
    DFNET_LOGW("sessions", s->name,
               "Hello with protocol version %u refused (this manager speaks %u)",
               (unsigned)h->protocol_version, (unsigned)DFNET_PROTOCOL_VERSION);
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_FAILED_PRECONDITION,
                           "protocol version %u is not spoken here: this manager speaks version %u",
                           (unsigned)h->protocol_version, (unsigned)DFNET_PROTOCOL_VERSION);
    dfnet_transport_session_close(m->transport, s->id, DFNET_STATUS_FAILED_PRECONDITION,
                                  "protocol version mismatch");
    return;
  }
  if (h->role != dfnet_v1_Role_ROLE_UNSPECIFIED && h->role != s->role) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                           "Hello claims role %d, the certificate grants %d", (int)h->role,
                           (int)s->role);
    dfnet_transport_session_close(m->transport, s->id, DFNET_STATUS_PERMISSION_DENIED,
                                  "role mismatch");
    return;
  }
  if (s->kind == SESSION_HOST) {
    hosts__hello(m, s, env);
    return;
  }
  dfnet_envelope_t *w = mgr__env(m);
  w->pb.id = env->pb.id;
  w->pb.which_msg = dfnet_v1_Envelope_welcome_tag;
  w->pb.msg.welcome.protocol_version = DFNET_PROTOCOL_VERSION;
  w->pb.msg.welcome.role = s->role;
  topology__fmt(w->pb.msg.welcome.name, sizeof w->pb.msg.welcome.name, "%s", s->name);
  topology__fmt(w->pb.msg.welcome.server_name, sizeof w->pb.msg.welcome.server_name,
                "dfnet-manager");
  w->pb.msg.welcome.session_id = s->id;
  w->pb.msg.welcome.host_grace_ms = m->cfg.host_grace_ms;
  dfnet_transport_send(m->transport, s->id, w, 0);
  s->welcomed = true;
}

void sessions__on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  mgr_t *m = user;
  mgr_session_t *s = sessions__find(m, sid);
  if (s == NULL || m->stopping)
    return;
  pb_size_t which = env->pb.which_msg;
  if (s->kind == SESSION_ENROLL) { /* one Enroll, nothing else (handle_enroll.c) */
    handle__enroll(m, s, env);
    return;
  }
  if (which == dfnet_v1_Envelope_hello_tag) {
    on_hello(m, s, env);
    if (s->welcomed && s->hello_timer != 0) {
      (void)dfnet_transport_timer_cancel(m->transport, s->hello_timer);
      s->hello_timer = 0;
    }
    return;
  }
  if (!s->welcomed) {
    sessions__reply_status(m, sid, env->pb.id, DFNET_STATUS_FAILED_PRECONDITION,
                           "send Hello first");
    return;
  }
  if (which == dfnet_v1_Envelope_status_tag) {
    DFNET_LOGD("sessions", s->name, "unsolicited Status %d ignored", (int)env->pb.msg.status.code);
    return;
  }
  dispatch__envelope(m, s, env);
}
