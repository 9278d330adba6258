/* dfnet-manager: the message table (docs/design.md "Security"; docs/architecture.md
 * "Manager"): for each Envelope member a welcomed session may send, its handler, the least
 * role a client needs to send it, and whether a host may. One row a message: the table is
 * both the access rule and the dispatch. viewer: queries (ListDriverHosts too) and watch;
 * operator: + calls; admin: + driver and composite changes and node control (UnbindNode,
 * SuspendNode, ResumeNode, AddTestNode, RemoveTestNode); host: only the host messages, among
 * them the calls its drivers make to nodes of other hosts (Call, Cancel, StreamCredit;
 * handle_call.c checks the calling node). Leases (lease.h): ListLeases and LeaseHistory
 * viewer; LeaseAcquire, LeaseRenew and LeaseRelease operator (high priority, no expiry and
 * force: admin, checked by their handlers). Certificates and join tokens (cert.h): CertList
 * viewer; CertRevoke, TokenCreate, TokenList and TokenRevoke admin; CertRenew any host or
 * client (its own certificate). Anything else: PERMISSION_DENIED. */
#include "lib/log.h"
#include "lib/role.h"
#include "manager/cert.h"
#include "manager/lease.h"
#include "manager/manager.h"

typedef void (*dispatch_fn)(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env);

/* client: its handler for a client session, which needs role client_role at least (NULL:
 * no client may send it); host: its handler for a host session (NULL: no host may send it).
 * The two differ only for Cancel, whose client form also ends watches and queued lease
 * requests. */
typedef struct {
  dispatch_fn client;
  dfnet_v1_Role client_role;
  dispatch_fn host;
} dispatch_entry_t;

#define VIEWER dfnet_v1_Role_VIEWER
#define OPERATOR dfnet_v1_Role_OPERATOR
#define ADMIN dfnet_v1_Role_ADMIN
#define NONE dfnet_v1_Role_ROLE_UNSPECIFIED
#define ROW(member, client, role, host) [dfnet_v1_Envelope_##member##_tag] = {client, role, host}

/* A client's Cancel: of a call, else of a queued lease request, else of its watch. */
static void client_cancel(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  if (handle__call_cancel(m, s, env) || lease_queue__cancel(m, s, env->pb.id))
    return;
  if (s->watch_id != 0 && env->pb.id == s->watch_id) {
    s->watch_id = 0;
    if (m->watchers > 0)
      m->watchers--;
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_CANCELLED, "watch cancelled");
  }
}

/* A host's Cancel: of a call its driver made (one that ended already: nothing to do). */
static void host_cancel(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  (void)handle__call_cancel(m, s, env);
}

static const dispatch_entry_t k_messages[] = {
    /* queries and watch */
    ROW(list_hosts, streams__list_hosts, VIEWER, NULL),
    ROW(list_nodes, streams__list_nodes, VIEWER, NULL),
    ROW(list_drivers, streams__list_drivers, VIEWER, NULL),
    ROW(list_composites, streams__list_composites, VIEWER, NULL),
    ROW(bind_why, streams__bind_why, VIEWER, NULL),
    ROW(watch, handle__watch, VIEWER, NULL),
    ROW(list_driver_hosts, handle__list_driver_hosts, VIEWER, NULL),
    /* calls (handle_call.c) */
    ROW(call, handle__call, OPERATOR, handle__call),
    ROW(cancel, client_cancel, VIEWER, host_cancel),
    ROW(stream_credit, handle__stream_credit, OPERATOR, handle__stream_credit),
    /* drivers, composites, packages, node control */
    ROW(add_composite_node_spec, handle__add_composite_node_spec, ADMIN, NULL),
    ROW(driver_control, handle__driver_control, ADMIN, NULL),
    ROW(request_bind, handle__request_bind, ADMIN, NULL),
    ROW(package_upload, handle__package_upload, ADMIN, NULL),
    ROW(unbind_node, handle__unbind_node, ADMIN, NULL),
    ROW(suspend_node, handle__suspend_node, ADMIN, NULL),
    ROW(resume_node, handle__resume_node, ADMIN, NULL),
    ROW(add_test_node, handle__add_test_node, ADMIN, NULL),
    ROW(remove_test_node, handle__remove_test_node, ADMIN, NULL),
    /* leases (lease.h) */
    ROW(lease_acquire, handle__lease_acquire, OPERATOR, NULL),
    ROW(lease_renew, handle__lease_renew, OPERATOR, NULL),
    ROW(lease_release, handle__lease_release, OPERATOR, NULL),
    ROW(list_leases, handle__list_leases, VIEWER, NULL),
    ROW(lease_history, handle__lease_history, VIEWER, NULL),
    /* certificates and join tokens (cert.h) */
    ROW(cert_list, handle__cert_list, VIEWER, NULL),
    ROW(cert_revoke, handle__cert_revoke, ADMIN, NULL),
    ROW(token_create, handle__token_create, ADMIN, NULL),
    ROW(token_list, handle__token_list, ADMIN, NULL),
    ROW(token_revoke, handle__token_revoke, ADMIN, NULL),
    ROW(cert_renew, handle__cert_renew, VIEWER, handle__cert_renew),
    /* from hosts only */
    ROW(node_add, NULL, NONE, handle__node_add),
    ROW(node_remove, NULL, NONE, handle__node_remove),
    ROW(node_update, NULL, NONE, handle__node_update),
    ROW(driver_status, NULL, NONE, handle__driver_status),
    ROW(driver_host_exit, NULL, NONE, handle__driver_host_exit),
    ROW(package_fetch, NULL, NONE, handle__package_fetch),
};

/* Answer PERMISSION_DENIED with why env is refused (its message's name is looked up only
 * here, off the path of the messages that pass). */
static void refuse(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env,
                   const dispatch_entry_t *e) {
  const char *name = dfnet_envelope_msg_name(env->pb.which_msg);
  if (s->kind == SESSION_HOST || e == NULL || e->client == NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                           "%s is not a %s message", name,
                           s->kind == SESSION_HOST ? "host" : "client");
    return;
  }
  DFNET_LOGI("sessions", s->name, "%s refused: role too low", name);
  sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_PERMISSION_DENIED, "%s needs role %s",
                         name, dfnet_role_by_wire(e->client_role)->name);
}

void dispatch__envelope(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  pb_size_t which = env->pb.which_msg;
  const dispatch_entry_t *e =
      which < sizeof k_messages / sizeof k_messages[0] ? &k_messages[which] : NULL;
  bool host = s->kind == SESSION_HOST;
  dispatch_fn handler = e == NULL ? NULL : host ? e->host : e->client;
  if (handler != NULL && (host || dfnet_role_allows(s->role, e->client_role)))
    handler(m, s, env);
  else
    refuse(m, s, env, e);
}
