/* dfnet-host: the message tables (docs/architecture.md "Transport and trust"). For each Envelope
 * member the manager may send a welcomed agent: its handler, and whether it is still
 * handled while the agent stops (Cancel and StreamCredit are, so that the calls in flight
 * end as their callers ask; anything else is answered UNAVAILABLE then). For each member a
 * driver host may send: its handler. One row a message: the tables are the whole dispatch.
 * A member without a row is the manager's request answered UNIMPLEMENTED (its event
 * logged and dropped), or a driver host's message logged and dropped. Service thread. */
#include "host/agent/agent.h"
#include "lib/log.h"

typedef void (*manager_fn)(agent_t *a, dfnet_session_id_t session, const dfnet_envelope_t *env);
typedef void (*driver_host_fn)(agent_t *a, uint64_t host_id, const dfnet_envelope_t *env);

typedef struct {
  manager_fn handle;
  bool while_stopping; /* handled while the agent stops */
} manager_entry_t;

/* A Status nobody waits for (the answer to a request that ended). */
static void stray_status(agent_t *a, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  (void)session;
  DFNET_LOGD(AGENT_SUBSYS, a->host_name, "stray Status for id %llu dropped",
             (unsigned long long)env->pb.id);
}

#define FROM_MANAGER(member, fn, stopping) [dfnet_v1_Envelope_##member##_tag] = {fn, stopping}

static const manager_entry_t k_from_manager[] = {
    FROM_MANAGER(driver_start, agent__handle_driver_start, false),
    FROM_MANAGER(driver_stop, agent__handle_driver_stop, false),
    FROM_MANAGER(driver_suspend, agent__handle_driver_control, false),
    FROM_MANAGER(driver_resume, agent__handle_driver_control, false),
    FROM_MANAGER(list_driver_hosts, agent__handle_list_driver_hosts, false),
    FROM_MANAGER(call, agent__handle_call, false),
    FROM_MANAGER(cancel, agent__handle_call_control, true),
    FROM_MANAGER(stream_credit, agent__handle_call_control, true),
    FROM_MANAGER(node_remove, agent__handle_node_remove, false),
    FROM_MANAGER(status, stray_status, false),
};

#define FROM_DRIVER_HOST(member, fn) [dfnet_v1_Envelope_##member##_tag] = fn

static const driver_host_fn k_from_driver_host[] = {
    FROM_DRIVER_HOST(call, agent__dh_call),
    FROM_DRIVER_HOST(cancel, agent__dh_call_control),
    FROM_DRIVER_HOST(stream_credit, agent__dh_call_control),
    FROM_DRIVER_HOST(artifact_open, agent__artifact_open),
    FROM_DRIVER_HOST(reply, agent__dh_answer),
    FROM_DRIVER_HOST(status, agent__dh_answer),
    FROM_DRIVER_HOST(node_add, agent__dh_node_add),
    FROM_DRIVER_HOST(node_remove, agent__dh_node_remove),
};

#define COUNT(table) (sizeof(table) / sizeof((table)[0]))

void agent__on_envelope(void *user, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  agent_t *a = user;
  if (session != a->session)
    return;
  if (!a->welcomed) {
    agent__reply_status(a, session, env->pb.id, DFNET_STATUS_FAILED_PRECONDITION, "no Welcome yet");
    return;
  }
  pb_size_t which = env->pb.which_msg;
  manager_entry_t row =
      which < COUNT(k_from_manager) ? k_from_manager[which] : (manager_entry_t){NULL, false};
  if (a->shutting_down && !row.while_stopping) {
    if (which == dfnet_v1_Envelope_call_tag)
      agent__reply_call_status(a, session, env->pb.id, DFNET_STATUS_UNAVAILABLE,
                               "host agent stopping");
    else
      agent__reply_status(a, session, env->pb.id, DFNET_STATUS_UNAVAILABLE, "host agent stopping");
    return;
  }
  if (row.handle != NULL)
    row.handle(a, session, env);
  else if (env->pb.id != 0)
    agent__reply_status(a, session, env->pb.id, DFNET_STATUS_UNIMPLEMENTED,
                        "a host agent does not handle %s", dfnet_envelope_msg_name(which));
  else
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "unexpected event %s dropped",
               dfnet_envelope_msg_name(which));
}

void agent__dh_on_envelope(void *arg, uint64_t host_id, const dfnet_envelope_t *env) {
  agent_t *a = arg;
  pb_size_t which = env->pb.which_msg;
  driver_host_fn handle = which < COUNT(k_from_driver_host) ? k_from_driver_host[which] : NULL;
  if (handle != NULL)
    handle(a, host_id, env);
  else
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "driver host %llu sent %s: dropped",
               (unsigned long long)host_id, dfnet_envelope_msg_name(which));
}
