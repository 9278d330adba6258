/* dfnet-manager: sessions (docs/design.md "Security"): the first envelope is a Hello, answered
 * with Welcome; then each message is checked against the session's kind and role and
 * handed to its handle_<message>.c. viewer: queries (ListDriverHosts too) and watch;
 * operator: + calls; admin: + driver and composite changes and node control (UnbindNode,
 * SuspendNode, ResumeNode, AddTestNode, RemoveTestNode); host: only the host messages, among them
 * the calls its drivers make to nodes of other hosts (Call, Cancel, StreamCredit; handle_call.c
 * checks the calling node). Leases (lease.h): ListLeases and LeaseHistory viewer; LeaseAcquire,
 * LeaseRenew and LeaseRelease operator (high priority, no expiry and force: admin, checked
 * by their handlers). Certificates and join tokens (cert.h): CertList viewer; CertRevoke,
 * TokenCreate, TokenList and TokenRevoke admin; CertRenew any host or client (its own
 * certificate). Enrollment sessions (dfnet.enroll.v1, no certificate): one Enroll
 * (handle_enroll.c). Anything else: PERMISSION_DENIED. */
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
  HASH_ITER(hh, m->sessions, s, tmp) session_free(m, s);
}

void sessions__reply_status(mgr_t *m, dfnet_session_id_t sid, uint64_t id, dfnet_status_t code,
                            const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
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
static dfnet_v1_Role client_role_needed(pb_size_t which) {
  switch (which) {
  case dfnet_v1_Envelope_list_hosts_tag:
  case dfnet_v1_Envelope_list_nodes_tag:
  case dfnet_v1_Envelope_list_drivers_tag:
  case dfnet_v1_Envelope_list_composites_tag:
  case dfnet_v1_Envelope_bind_why_tag:
  case dfnet_v1_Envelope_watch_tag:
  case dfnet_v1_Envelope_cancel_tag:
  case dfnet_v1_Envelope_list_driver_hosts_tag:
  case dfnet_v1_Envelope_list_leases_tag:
  case dfnet_v1_Envelope_lease_history_tag:
  case dfnet_v1_Envelope_cert_list_tag:
  case dfnet_v1_Envelope_cert_renew_tag:
    return dfnet_v1_Role_VIEWER;
  case dfnet_v1_Envelope_call_tag:
  case dfnet_v1_Envelope_stream_credit_tag:
  case dfnet_v1_Envelope_lease_acquire_tag:
  case dfnet_v1_Envelope_lease_renew_tag:
  case dfnet_v1_Envelope_lease_release_tag:
    return dfnet_v1_Role_OPERATOR;
  case dfnet_v1_Envelope_add_composite_node_spec_tag:
  case dfnet_v1_Envelope_driver_control_tag:
  case dfnet_v1_Envelope_request_bind_tag:
  case dfnet_v1_Envelope_package_upload_tag:
  case dfnet_v1_Envelope_unbind_node_tag:
  case dfnet_v1_Envelope_suspend_node_tag:
  case dfnet_v1_Envelope_resume_node_tag:
  case dfnet_v1_Envelope_add_test_node_tag:
  case dfnet_v1_Envelope_remove_test_node_tag:
  case dfnet_v1_Envelope_cert_revoke_tag:
  case dfnet_v1_Envelope_token_create_tag:
  case dfnet_v1_Envelope_token_list_tag:
  case dfnet_v1_Envelope_token_revoke_tag:
    return dfnet_v1_Role_ADMIN;
  default:
    return dfnet_v1_Role_ROLE_UNSPECIFIED;
  }
}

static bool host_message(pb_size_t which) {
  switch (which) {
  case dfnet_v1_Envelope_node_add_tag:
  case dfnet_v1_Envelope_node_remove_tag:
  case dfnet_v1_Envelope_node_update_tag:
  case dfnet_v1_Envelope_driver_status_tag:
  case dfnet_v1_Envelope_driver_host_exit_tag:
  case dfnet_v1_Envelope_package_fetch_tag:
  case dfnet_v1_Envelope_call_tag: /* a driver calling a node of another host */
  case dfnet_v1_Envelope_cancel_tag:
  case dfnet_v1_Envelope_stream_credit_tag:
  case dfnet_v1_Envelope_cert_renew_tag:
    return true;
  default:
    return false;
  }
}

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

static void on_cancel(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  if (handle__call_cancel(m, s, env) || lease_queue__cancel(m, s, env->pb.id))
    return;
  if (s->watch_id != 0 && env->pb.id == s->watch_id) {
    s->watch_id = 0;
    if (m->watchers > 0)
      m->watchers--;
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_CANCELLED, "watch cancelled");
  }
}

/* The node control messages (docs/architecture.md "Node control"), and what is left. */
static void dispatch_node_control(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_unbind_node_tag:
    handle__unbind_node(m, s, env);
    break;
  case dfnet_v1_Envelope_suspend_node_tag:
    handle__suspend_node(m, s, env);
    break;
  case dfnet_v1_Envelope_resume_node_tag:
    handle__resume_node(m, s, env);
    break;
  case dfnet_v1_Envelope_add_test_node_tag:
    handle__add_test_node(m, s, env);
    break;
  case dfnet_v1_Envelope_remove_test_node_tag:
    handle__remove_test_node(m, s, env);
    break;
  case dfnet_v1_Envelope_list_driver_hosts_tag:
    handle__list_driver_hosts(m, s, env);
    break;
  default:
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_UNIMPLEMENTED,
                           "%s is not implemented by this manager",
                           dfnet_envelope_msg_name(env->pb.which_msg));
    break;
  }
}

/* The lease messages (lease.h); false for any other. */
static bool dispatch_lease(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_lease_acquire_tag:
    handle__lease_acquire(m, s, env);
    return true;
  case dfnet_v1_Envelope_lease_renew_tag:
    handle__lease_renew(m, s, env);
    return true;
  case dfnet_v1_Envelope_lease_release_tag:
    handle__lease_release(m, s, env);
    return true;
  case dfnet_v1_Envelope_list_leases_tag:
    handle__list_leases(m, s, env);
    return true;
  case dfnet_v1_Envelope_lease_history_tag:
    handle__lease_history(m, s, env);
    return true;
  default:
    return false;
  }
}

/* The certificate and join token messages (cert.h); false for any other. */
static bool dispatch_trust(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_cert_list_tag:
    handle__cert_list(m, s, env);
    return true;
  case dfnet_v1_Envelope_cert_revoke_tag:
    handle__cert_revoke(m, s, env);
    return true;
  case dfnet_v1_Envelope_token_create_tag:
    handle__token_create(m, s, env);
    return true;
  case dfnet_v1_Envelope_token_list_tag:
    handle__token_list(m, s, env);
    return true;
  case dfnet_v1_Envelope_token_revoke_tag:
    handle__token_revoke(m, s, env);
    return true;
  case dfnet_v1_Envelope_cert_renew_tag:
    handle__cert_renew(m, s, env);
    return true;
  default:
    return false;
  }
}

static void dispatch_client(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  uint64_t id = env->pb.id;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_list_hosts_tag:
    streams__list_hosts(m, s, id);
    break;
  case dfnet_v1_Envelope_list_nodes_tag:
    streams__list_nodes(m, s, id, &env->pb.msg.list_nodes);
    break;
  case dfnet_v1_Envelope_list_drivers_tag:
    streams__list_drivers(m, s, id, &env->pb.msg.list_drivers);
    break;
  case dfnet_v1_Envelope_list_composites_tag:
    streams__list_composites(m, s, id, &env->pb.msg.list_composites);
    break;
  case dfnet_v1_Envelope_bind_why_tag:
    streams__bind_why(m, s, id, &env->pb.msg.bind_why);
    break;
  case dfnet_v1_Envelope_watch_tag:
    handle__watch(m, s, env);
    break;
  case dfnet_v1_Envelope_cancel_tag:
    on_cancel(m, s, env);
    break;
  case dfnet_v1_Envelope_call_tag:
    handle__call(m, s, env);
    break;
  case dfnet_v1_Envelope_stream_credit_tag:
    handle__stream_credit(m, s, env);
    break;
  case dfnet_v1_Envelope_add_composite_node_spec_tag:
    handle__add_composite_node_spec(m, s, env);
    break;
  case dfnet_v1_Envelope_driver_control_tag:
    handle__driver_control(m, s, env);
    break;
  case dfnet_v1_Envelope_request_bind_tag:
    handle__request_bind(m, s, env);
    break;
  case dfnet_v1_Envelope_package_upload_tag:
    handle__package_upload(m, s, env);
    break;
  default:
    if (!dispatch_lease(m, s, env) && !dispatch_trust(m, s, env))
      dispatch_node_control(m, s, env);
    break;
  }
}

static void dispatch_host(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_node_add_tag:
    handle__node_add(m, s, env);
    break;
  case dfnet_v1_Envelope_node_remove_tag:
    handle__node_remove(m, s, env);
    break;
  case dfnet_v1_Envelope_node_update_tag:
    handle__node_update(m, s, env);
    break;
  case dfnet_v1_Envelope_driver_status_tag:
    handle__driver_status(m, s, env);
    break;
  case dfnet_v1_Envelope_driver_host_exit_tag:
    handle__driver_host_exit(m, s, env);
    break;
  case dfnet_v1_Envelope_call_tag:
    handle__call(m, s, env);
    break;
  case dfnet_v1_Envelope_cancel_tag:
    (void)handle__call_cancel(m, s, env); /* of a call that ended: nothing to do */
    break;
  case dfnet_v1_Envelope_stream_credit_tag:
    handle__stream_credit(m, s, env);
    break;
  case dfnet_v1_Envelope_cert_renew_tag:
    handle__cert_renew(m, s, env);
    break;
  default:
    handle__package_fetch(m, s, env);
    break;
  }
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
  if (s->kind == SESSION_HOST) {
    if (!host_message(which)) {
      sessions__reply_status(m, sid, env->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                             "%s is not a host message", dfnet_envelope_msg_name(which));
      return;
    }
    dispatch_host(m, s, env);
    return;
  }
  dfnet_v1_Role need = client_role_needed(which);
  if (need == dfnet_v1_Role_ROLE_UNSPECIFIED) {
    sessions__reply_status(m, sid, env->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                           "%s is not a client message", dfnet_envelope_msg_name(which));
    return;
  }
  if (!dfnet_role_allows(s->role, need)) {
    DFNET_LOGI("sessions", s->name, "%s refused: role too low", dfnet_envelope_msg_name(which));
    sessions__reply_status(m, sid, env->pb.id, DFNET_STATUS_PERMISSION_DENIED, "%s needs role %s",
                           dfnet_envelope_msg_name(which), dfnet_role_by_wire(need)->name);
    return;
  }
  dispatch_client(m, s, env);
}
