/* Driver lifecycle control through the agent (issue 19 "Driver lifecycle and control as the
 * seeds describe it"; docs/architecture.md "Host session protocol", steps 11-13):
 *
 *   - DriverSuspend / DriverResume from the manager: an op like a DriverStop's, sent to the
 *     driver host running the node's driver and answered with that driver host's Status (or
 *     the supervisor's UNAVAILABLE when it dies first);
 *   - ListDriverHosts from the manager: one DriverHostInfo per driver host (with its uid,
 *     whether it is sandboxed and its rights), then a Status;
 *   - the suspend of every driver before a shutdown (--shutdown-reason reboot|poweroff): the
 *     seeds' suspend(flags) callout, children before parents, bounded by --stop-grace-ms,
 *     after which main.c stops the drivers as for any SIGTERM.
 *
 * The suspend before a shutdown keeps a list of the nodes whose drivers were running (by
 * uid, in announce order). A node's DriverSuspend is sent once no node below it waits or
 * is in flight (the same rule as the stop order, driver_stop.c "stop order"); a suspend that
 * fails (or a driver host that dies) leaves the nodes above it running, as the manager's
 * SuspendNode does. Everything runs on the service thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dfnet/driver.h"
#include "host/agent/agent.h"
#include "lib/log.h"

#define LC_SUBSYS "host"
#define LC_INFO_MAX 16u /* DriverHostInfo.driver_urls / .nodes (query.options) */

/* ---- DriverSuspend / DriverResume ---------------------------------------------------------- */

/* Send DriverSuspend{flags} (or DriverResume) for n's driver; *op_id gets the op. The op
 * answers (session, manager_id) when session is not 0. */
static dfnet_status_t send_control(agent_t *a, agent_node_t *n, bool resume, uint32_t flags,
                                   dfnet_session_id_t session, uint64_t manager_id,
                                   uint64_t *op_id) {
  agent_op_t *op = agent__op_new(a, resume ? AGENT_OP_RESUME : AGENT_OP_SUSPEND, n->driver_host_id);
  if (op == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  op->node_uid = n->uid;
  op->moniker = strdup(n->moniker);
  op->session = session;
  op->manager_id = manager_id;
  dfnet_envelope_t *env = a->scratch;
  dfnet_envelope_init(env);
  env->pb.id = op->local_id;
  if (resume) {
    env->pb.which_msg = dfnet_v1_Envelope_driver_resume_tag;
    agent__strlcpy(env->pb.msg.driver_resume.node, n->moniker,
                   sizeof env->pb.msg.driver_resume.node);
    env->pb.msg.driver_resume.driver_host_id = n->driver_host_id;
  } else {
    env->pb.which_msg = dfnet_v1_Envelope_driver_suspend_tag;
    agent__strlcpy(env->pb.msg.driver_suspend.node, n->moniker,
                   sizeof env->pb.msg.driver_suspend.node);
    env->pb.msg.driver_suspend.driver_host_id = n->driver_host_id;
    env->pb.msg.driver_suspend.flags = flags;
  }
  dfnet_status_t st = dfnet_supervisor_send(a->sup, n->driver_host_id, env);
  if (st != DFNET_STATUS_OK) {
    agent__op_free(a, op);
    return st;
  }
  if (op_id != NULL)
    *op_id = op->local_id;
  return DFNET_STATUS_OK;
}

void agent__handle_driver_control(agent_t *a, dfnet_session_id_t session,
                                  const dfnet_envelope_t *env) {
  bool resume = env->pb.which_msg == dfnet_v1_Envelope_driver_resume_tag;
  const char *moniker = resume ? env->pb.msg.driver_resume.node : env->pb.msg.driver_suspend.node;
  uint64_t named =
      resume ? env->pb.msg.driver_resume.driver_host_id : env->pb.msg.driver_suspend.driver_host_id;
  uint64_t id = env->pb.id;
  const char *verb = resume ? "DriverResume" : "DriverSuspend";
  agent_node_t *n = agent__node_find(a, moniker);
  if (n == NULL) {
    agent__reply_status(a, session, id, DFNET_STATUS_NOT_FOUND, "no node %s on this host", moniker);
    return;
  }
  if (n->driver == AGENT_DRIVER_DEAD) {
    agent__reply_status(a, session, id, DFNET_STATUS_UNAVAILABLE, "the driver host of %s died",
                        moniker);
    return;
  }
  if (n->driver != AGENT_DRIVER_RUNNING) {
    agent__reply_status(a, session, id, DFNET_STATUS_FAILED_PRECONDITION,
                        n->driver == AGENT_DRIVER_NONE ? "no driver runs on %s"
                                                       : "the driver of %s is not running",
                        moniker);
    return;
  }
  if (named != 0 && named != n->driver_host_id)
    DFNET_LOGW(LC_SUBSYS, moniker, "%s names driver host %llu, it runs in %llu", verb,
               (unsigned long long)named, (unsigned long long)n->driver_host_id);
  uint32_t flags = resume ? 0 : env->pb.msg.driver_suspend.flags;
  dfnet_status_t st = send_control(a, n, resume, flags, session, id, NULL);
  if (st != DFNET_STATUS_OK) {
    agent__reply_status(a, session, id,
                        st == DFNET_STATUS_RESOURCE_EXHAUSTED ? st : DFNET_STATUS_UNAVAILABLE,
                        "the driver host of %s is gone", moniker);
    return;
  }
  DFNET_LOGI(LC_SUBSYS, moniker, "%s (flags 0x%x) sent to driver host %llu", verb, flags,
             (unsigned long long)n->driver_host_id);
}

static void suspend_all_answered(agent_t *a, uint64_t op_id, dfnet_status_t code,
                                 const char *message);

void agent__control_answered(agent_t *a, agent_op_t *op, dfnet_status_t code, const char *message) {
  bool resume = op->kind == AGENT_OP_RESUME;
  agent_node_t *n = agent__node_find_uid(a, op->node_uid);
  if (n != NULL && n->driver == AGENT_DRIVER_RUNNING && n->driver_host_id == op->host_id &&
      code == DFNET_STATUS_OK)
    n->suspended = !resume;
  DFNET_LOGI(LC_SUBSYS, op->moniker != NULL ? op->moniker : "?", "driver %s: %s%s%s",
             resume ? "resume" : "suspend", dfnet_status_str(code), message[0] ? ": " : "",
             message);
  if (op->session != 0)
    agent__reply_status(a, op->session, op->manager_id, code, "%s", message);
  uint64_t op_id = op->local_id;
  agent__op_free(a, op);
  suspend_all_answered(a, op_id, code, message);
}

/* ---- ListDriverHosts --------------------------------------------------------------------- */

/* The resident set size of process pid, bytes (0: not known). */
static uint64_t rss_bytes(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  unsigned long long size = 0, resident = 0;
  int got = fscanf(f, "%llu %llu", &size, &resident);
  fclose(f);
  long page = sysconf(_SC_PAGESIZE);
  return got == 2 && page > 0 ? resident * (uint64_t)page : 0;
}

static bool driver_present(const agent_node_t *n) {
  return n->driver == AGENT_DRIVER_STARTING || n->driver == AGENT_DRIVER_RUNNING ||
         n->driver == AGENT_DRIVER_STOPPING;
}

/* Add "<node> <name> <path>" to m for each resource n's driver was handed (the first 32). */
static void add_resources(const agent_node_t *n, dfnet_v1_DriverHostInfo *m) {
  const size_t cap = sizeof m->resources / sizeof m->resources[0];
  for (const char *line = n->resources; line != NULL && *line != '\0';) {
    size_t len = strcspn(line, "\n");
    if (m->resources_count < cap)
      snprintf(m->resources[m->resources_count++], sizeof m->resources[0], "%s %.*s", n->moniker,
               (int)len, line);
    line += len + (line[len] == '\n');
  }
}

/* Fill a DriverHostInfo for dh: its drivers' URLs (distinct), nodes and resources. */
static void fill_info(agent_t *a, const agent_dh_t *dh, dfnet_v1_DriverHostInfo *m) {
  agent__strlcpy(m->host, a->host_name, sizeof m->host);
  m->id = dh->id;
  m->pid = dh->pid > 0 ? (uint32_t)dh->pid : 0;
  m->rss_bytes = dh->pid > 0 ? rss_bytes(dh->pid) : 0;
  /* its confinement: every driver host of this agent runs as one user, sandboxed or not */
  uid_t uid = dfnet_supervisor_driver_uid(a->sup);
  m->uid = (uint32_t)uid;
  m->sandboxed = dfnet_supervisor_sandboxed(a->sup);
  _Static_assert(pb_arraysize(dfnet_v1_DriverHostInfo, rights) == AGENT_RIGHTS_LISTED,
                 "DriverHostInfo.rights bound");
  m->rights_count = (pb_size_t)agent__rights_names(dh->rights, m->rights, AGENT_RIGHTS_LISTED);
  for (agent_node_t *n = a->nodes_head; n != NULL; n = n->next) {
    if (n->driver_host_id != dh->id || !driver_present(n))
      continue;
    if (m->nodes_count < LC_INFO_MAX)
      agent__strlcpy(m->nodes[m->nodes_count++], n->moniker, sizeof m->nodes[0]);
    add_resources(n, m);
    if (n->driver_url == NULL)
      continue;
    bool seen = false;
    for (pb_size_t i = 0; i < m->driver_urls_count && !seen; i++)
      seen = strcmp(m->driver_urls[i], n->driver_url) == 0;
    if (!seen && m->driver_urls_count < LC_INFO_MAX)
      agent__strlcpy(m->driver_urls[m->driver_urls_count++], n->driver_url,
                     sizeof m->driver_urls[0]);
  }
}

static int by_id(const void *x, const void *y) {
  uint64_t a = (*(agent_dh_t *const *)x)->id, b = (*(agent_dh_t *const *)y)->id;
  return a < b ? -1 : a > b;
}

void agent__handle_list_driver_hosts(agent_t *a, dfnet_session_id_t session,
                                     const dfnet_envelope_t *env) {
  uint64_t id = env->pb.id;
  const char *want = env->pb.msg.list_driver_hosts.host;
  size_t count = 0;
  for (agent_dh_t *d = a->dhs; d != NULL; d = d->next)
    count += !d->closing;
  agent_dh_t **all = count > 0 ? calloc(count, sizeof *all) : NULL;
  if (count > 0 && all == NULL) {
    agent__reply_status(a, session, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (want[0] != '\0' && strcmp(want, a->host_name) != 0)
    count = 0; /* another host's: none of ours */
  size_t n = 0;
  for (agent_dh_t *d = a->dhs; d != NULL && n < count; d = d->next)
    if (!d->closing)
      all[n++] = d;
  if (n > 1)
    qsort(all, n, sizeof *all, by_id);
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t i = 0; i < n && st == DFNET_STATUS_OK; i++) {
    dfnet_envelope_t *out = a->scratch;
    dfnet_envelope_init(out);
    out->pb.id = id;
    out->pb.which_msg = dfnet_v1_Envelope_driver_host_info_tag;
    fill_info(a, all[i], &out->pb.msg.driver_host_info);
    st = session == a->session ? dfnet_transport_send(a->t, session, out, 0)
                               : DFNET_STATUS_UNAVAILABLE;
  }
  free(all);
  if (st != DFNET_STATUS_OK)
    agent__reply_status(a, session, id, st, "the list did not fit the manager link");
  else
    agent__reply_status(a, session, id, DFNET_STATUS_OK, NULL);
}

/* ---- the suspend before a shutdown --------------------------------------------------------- */

typedef enum sa_state { SA_WAIT, SA_SENT, SA_DONE } sa_state_t;

typedef struct sa_item {
  uint64_t uid;
  char *moniker;
  sa_state_t state;
  uint64_t op_id; /* SA_SENT: the DriverSuspend's op */
} sa_item_t;

struct agent_suspend_all {
  sa_item_t *items;
  size_t count;
  uint32_t flags;
  bool finished;
  void (*done)(agent_t *a);
};

uint32_t agent__shutdown_flags(const agent_options_t *opt) {
  switch (opt->shutdown_reason) {
  case AGENT_SHUTDOWN_REBOOT:
    return DFNET_SUSPEND_FLAG_REBOOT;
  case AGENT_SHUTDOWN_POWEROFF:
    return DFNET_SUSPEND_FLAG_POWEROFF;
  case AGENT_SHUTDOWN_NONE:
    break;
  }
  return 0;
}

static bool strictly_below(const char *moniker, const char *ancestor) {
  return agent__moniker_within(moniker, ancestor) && strcmp(moniker, ancestor) != 0;
}

/* Does a node below item i still wait for its suspend or its answer? */
static bool sa_blocked(const struct agent_suspend_all *sa, size_t i) {
  for (size_t j = 0; j < sa->count; j++)
    if (j != i && sa->items[j].state != SA_DONE &&
        strictly_below(sa->items[j].moniker, sa->items[i].moniker))
      return true;
  return false;
}

static void sa_finish(agent_t *a, const char *why) {
  struct agent_suspend_all *sa = a->suspend_all;
  if (sa == NULL || sa->finished)
    return;
  sa->finished = true;
  DFNET_LOGI(LC_SUBSYS, a->host_name, "drivers suspended (flags 0x%x)%s%s: stopping them",
             sa->flags, why != NULL ? ": " : "", why != NULL ? why : "");
  sa->done(a);
}

/* Send the suspends nothing below blocks any more (repeated while items settle: a node gone
 * or no longer running unblocks its parent at once); finish when nothing is left. */
static void sa_progress(agent_t *a) {
  struct agent_suspend_all *sa = a->suspend_all;
  if (sa == NULL || sa->finished)
    return;
  bool changed = true, left = false;
  while (changed) {
    changed = false;
    left = false;
    for (size_t i = 0; i < sa->count; i++) {
      sa_item_t *it = &sa->items[i];
      if (it->state == SA_SENT)
        left = true;
      if (it->state != SA_WAIT)
        continue;
      left = true;
      if (sa_blocked(sa, i))
        continue;
      agent_node_t *n = agent__node_find_uid(a, it->uid);
      changed = true;
      if (n == NULL || n->driver != AGENT_DRIVER_RUNNING || n->suspended ||
          send_control(a, n, false, sa->flags, 0, 0, &it->op_id) != DFNET_STATUS_OK) {
        it->state = SA_DONE; /* gone, stopped, already suspended, or its host is going */
        continue;
      }
      it->state = SA_SENT;
    }
  }
  if (!left)
    sa_finish(a, NULL);
}

static void suspend_all_answered(agent_t *a, uint64_t op_id, dfnet_status_t code,
                                 const char *message) {
  struct agent_suspend_all *sa = a->suspend_all;
  if (sa == NULL || sa->finished)
    return;
  sa_item_t *it = NULL;
  for (size_t i = 0; i < sa->count && it == NULL; i++)
    if (sa->items[i].state == SA_SENT && sa->items[i].op_id == op_id)
      it = &sa->items[i];
  if (it == NULL)
    return;
  it->state = SA_DONE;
  if (code != DFNET_STATUS_OK) {
    DFNET_LOGW(LC_SUBSYS, it->moniker, "not suspended: %s: %s; the drivers above it stay running",
               dfnet_status_str(code), message);
    for (size_t i = 0; i < sa->count; i++)
      if (sa->items[i].state == SA_WAIT && strictly_below(it->moniker, sa->items[i].moniker))
        sa->items[i].state = SA_DONE;
  }
  sa_progress(a);
}

static void sa_timeout(void *user) {
  agent_t *a = user;
  sa_finish(a, "not every driver answered within --stop-grace-ms");
}

bool agent__shutdown_suspend(agent_t *a, uint32_t flags, void (*done)(agent_t *a)) {
  size_t count = 0;
  for (agent_node_t *n = a->nodes_head; n != NULL; n = n->next)
    count += n->driver == AGENT_DRIVER_RUNNING && !n->suspended;
  if (count == 0 || a->suspend_all != NULL)
    return false;
  struct agent_suspend_all *sa = calloc(1, sizeof *sa);
  sa_item_t *items = calloc(count, sizeof *items);
  if (sa == NULL || items == NULL) {
    DFNET_LOGE(LC_SUBSYS, a->host_name, "out of memory: the drivers are not suspended");
    free(sa);
    free(items);
    return false;
  }
  size_t k = 0;
  for (agent_node_t *n = a->nodes_head; n != NULL && k < count; n = n->next) {
    if (n->driver != AGENT_DRIVER_RUNNING || n->suspended)
      continue;
    items[k] = (sa_item_t){.uid = n->uid, .moniker = strdup(n->moniker), .state = SA_WAIT};
    if (items[k].moniker == NULL)
      items[k].state = SA_DONE; /* no memory: it will be stopped without a suspend */
    else
      k++;
  }
  *sa = (struct agent_suspend_all){.items = items, .count = k, .flags = flags, .done = done};
  a->suspend_all = sa;
  DFNET_LOGI(LC_SUBSYS, a->host_name, "suspending %zu drivers (flags 0x%x), children first", k,
             flags);
  if (dfnet_transport_timer_start(a->t, a->opt.stop_grace_ms, sa_timeout, a, NULL) !=
      DFNET_STATUS_OK)
    DFNET_LOGW(LC_SUBSYS, a->host_name, "no timer for the suspend: it waits for every answer");
  sa_progress(a);
  return true;
}

void agent__lifecycle_free(agent_t *a) {
  struct agent_suspend_all *sa = a->suspend_all;
  if (sa == NULL)
    return;
  for (size_t i = 0; i < sa->count; i++)
    free(sa->items[i].moniker);
  free(sa->items);
  free(sa);
  a->suspend_all = NULL;
}
