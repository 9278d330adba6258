/* dfnet-manager: ListDriverHosts from a client (ffx driver list-hosts; role viewer): one
 * DriverHostInfo per driver host of the named host (or of every host), closed by a Status.
 *
 * The manager asks each online host's agent the same message on its host session (a
 * streaming request, LIST_DEADLINE_MS), which answers with a DriverHostInfo per driver
 * host (id, pid, rss_bytes) and a Status. Once every agent answered, or its deadline passed,
 * the client gets the driver hosts the topology names (the nodes bound or starting in each,
 * their driver URLs) and those the agents named, with the agent's pid and rss, and the nodes
 * the agent names in each that the topology has starting a driver (a start not answered yet
 * has no driver host id at the manager; an asynchronous one may last long); an agent that
 * said nothing of one leaves what the manager knows (DriverStatus.pid), else 0; an offline
 * host's driver hosts have pid 0 (not known). The pids the agents report are kept on the
 * nodes (NodeInfo.driver_host_pid). The resources its drivers were handed are the agent's
 * word alone ("<node> <name> <path>"; docs/architecture.md "Resources"), and so is its
 * confinement: the uid it runs as, whether it is sandboxed and the rights it was started
 * with (docs/architecture.md "Confinement"; none of it when the agent did not answer).
 * Errors: NOT_FOUND (no such host), RESOURCE_EXHAUSTED.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

#define LIST_DEADLINE_MS 2000u

_Static_assert(sizeof(dfnet_v1_DriverHostInfo) < 65536, "a message struct stays under 64 KiB");

typedef struct dh_entry {
  uint32_t host_id;
  uint64_t id;
  uint32_t pid;
  uint64_t rss;
  bool answered; /* pid and rss from the agent */
  /* the nodes the agent named in it (NULL: none; malloc'd) */
  char (*agent_nodes)[sizeof(((dfnet_v1_DriverHostInfo *)0)->nodes[0])];
  pb_size_t agent_node_count;
  /* the resources the agent says its drivers were handed (NULL: none; malloc'd) */
  char (*resources)[sizeof(((dfnet_v1_DriverHostInfo *)0)->resources[0])];
  pb_size_t resource_count;
  /* its confinement, as the agent said (answered only) */
  uint32_t uid;
  bool sandboxed;
  char rights[8][16];
  pb_size_t right_count;
} dh_entry_t;

typedef struct gather {
  mgr_t *m;
  dfnet_session_id_t session;
  uint64_t request_id;
  uint32_t only_host; /* 0 = every host */
  dh_entry_t *entries;
  size_t count, cap;
  unsigned outstanding; /* agents asked and not done */
} gather_t;

typedef struct ask {
  gather_t *g;
  uint32_t host_id;
} ask_t;

/* The entry of (host, id), added when missing; NULL without memory. */
static dh_entry_t *entry(gather_t *g, uint32_t host_id, uint64_t id) {
  for (size_t i = 0; i < g->count; i++)
    if (g->entries[i].host_id == host_id && g->entries[i].id == id)
      return &g->entries[i];
  dh_entry_t *e = dfnet_array_grow(g->entries, g->count, &g->cap, sizeof *e, 16);
  if (e == NULL)
    return NULL;
  g->entries = e;
  g->entries[g->count] = (dh_entry_t){.host_id = host_id, .id = id};
  return &g->entries[g->count++];
}

static int entry_cmp(const void *a, const void *b) {
  const dh_entry_t *x = a, *y = b;
  if (x->host_id != y->host_id)
    return x->host_id < y->host_id ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static bool runs_driver(const topology_node_t *n) {
  return n->driver_id != 0 && n->driver_host_id != 0 &&
         (n->state == dfnet_v1_NodeState_BOUND || n->starting);
}

static void gather_free(gather_t *g) {
  for (size_t i = 0; i < g->count; i++) {
    free(g->entries[i].agent_nodes);
    free(g->entries[i].resources);
  }
  free(g->entries);
  free(g);
}

/* Add node n, which runs (or starts) its driver in di's driver host, to di: the node (the
 * first 16) and its driver's URL (distinct, the first 16). */
static void add_node(mgr_t *m, const topology_node_t *n, dfnet_v1_DriverHostInfo *di) {
  const size_t url_cap = pb_arraysize(dfnet_v1_DriverHostInfo, driver_urls);
  const size_t node_cap = pb_arraysize(dfnet_v1_DriverHostInfo, nodes);
  if (di->nodes_count < node_cap)
    topology__fmt(di->nodes[di->nodes_count++], sizeof di->nodes[0], "%s", n->moniker);
  const driver_t *d = driver_index__get(&m->index, n->driver_id);
  bool seen = d == NULL;
  for (pb_size_t i = 0; i < di->driver_urls_count && !seen; i++)
    seen = strcmp(di->driver_urls[i], d->url) == 0;
  if (!seen && di->driver_urls_count < url_cap)
    topology__fmt(di->driver_urls[di->driver_urls_count++], sizeof di->driver_urls[0], "%s",
                  d->url);
}

/* Fill di for entry e: its drivers and nodes from the topology (the first 16 of each). */
static void fill_info(mgr_t *m, const dh_entry_t *e, dfnet_v1_DriverHostInfo *di) {
  mgr_host_t *h = hosts__get(m, e->host_id);
  topology__fmt(di->host, sizeof di->host, "%s", h ? h->name : "");
  di->id = e->id;
  di->pid = e->pid;
  di->rss_bytes = e->rss;
  topology_node_t *n, *tmp;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->host_id != e->host_id || n->driver_host_id != e->id || !runs_driver(n))
      continue;
    if (e->answered && e->pid != 0)
      n->driver_host_pid = e->pid; /* the agent's word is the newest */
    else if (di->pid == 0 && h != NULL && h->session != 0)
      di->pid = n->driver_host_pid; /* an offline host's is not known: 0 */
    add_node(m, n, di);
  }
  if (e->resource_count > 0)
    memcpy(di->resources, e->resources, e->resource_count * sizeof di->resources[0]);
  di->resources_count = e->resource_count;
  di->uid = e->uid;
  di->sandboxed = e->sandboxed;
  _Static_assert(sizeof e->rights == sizeof di->rights, "DriverHostInfo.rights bounds");
  memcpy(di->rights, e->rights, e->right_count * sizeof di->rights[0]);
  di->rights_count = e->right_count;
  /* A start the host has not answered: the agent knows where it runs, the manager not yet. */
  for (pb_size_t i = 0; i < e->agent_node_count; i++) {
    n = topology__find(&m->topo, e->agent_nodes[i]);
    if (n != NULL && n->host_id == e->host_id && n->starting && n->driver_id != 0 &&
        n->driver_host_id == 0)
      add_node(m, n, di);
  }
}

/* Every agent is done: answer the client and free g. */
static void gather_emit(gather_t *g) {
  mgr_t *m = g->m;
  topology_node_t *n, *tmp;
  bool oom = false;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (runs_driver(n) && (g->only_host == 0 || n->host_id == g->only_host))
      oom |= entry(g, n->host_id, n->driver_host_id) == NULL;
  }
  if (g->count > 1)
    qsort(g->entries, g->count, sizeof *g->entries, entry_cmp);
  size_t sent = 0;
  dfnet_status_t st = oom ? DFNET_STATUS_RESOURCE_EXHAUSTED : DFNET_STATUS_OK;
  for (size_t i = 0; i < g->count && st == DFNET_STATUS_OK; i++) {
    dfnet_envelope_t *env = mgr__env(m);
    env->pb.id = g->request_id;
    env->pb.which_msg = dfnet_v1_Envelope_driver_host_info_tag;
    fill_info(m, &g->entries[i], &env->pb.msg.driver_host_info);
    st = dfnet_transport_send(m->transport, g->session, env, DFNET_SEND_WAIT);
    sent += st == DFNET_STATUS_OK;
  }
  if (st == DFNET_STATUS_OK)
    sessions__reply_status(m, g->session, g->request_id, st, "%zu driver hosts", sent);
  else
    sessions__reply_status(m, g->session, g->request_id, st, "list interrupted");
  gather_free(g);
}

/* A malloc'd copy of src[0..count), elements of `size` bytes; NULL for none or out of
 * memory (the list then shows none). */
static void *copy_of(const void *src, size_t count, size_t size) {
  void *p = count > 0 ? malloc(count * size) : NULL;
  if (p != NULL)
    memcpy(p, src, count * size);
  return p;
}

static void on_agent_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                           bool last) {
  ask_t *a = user;
  gather_t *g = a->g;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_driver_host_info_tag) {
    const dfnet_v1_DriverHostInfo *di = &reply->pb.msg.driver_host_info;
    dh_entry_t *e = di->id != 0 ? entry(g, a->host_id, di->id) : NULL;
    if (e != NULL) {
      e->pid = di->pid;
      e->rss = di->rss_bytes;
      e->answered = true;
      e->uid = di->uid;
      e->sandboxed = di->sandboxed;
      memcpy(e->rights, di->rights, di->rights_count * sizeof e->rights[0]);
      e->right_count = di->rights_count;
      free(e->agent_nodes);
      e->agent_nodes = copy_of(di->nodes, di->nodes_count, sizeof *e->agent_nodes);
      e->agent_node_count = e->agent_nodes != NULL ? di->nodes_count : 0;
      free(e->resources);
      e->resources = copy_of(di->resources, di->resources_count, sizeof *e->resources);
      e->resource_count = e->resources != NULL ? di->resources_count : 0;
    }
  } else if (last && status != DFNET_STATUS_OK) {
    DFNET_LOGD("hosts", NULL, "host %u: ListDriverHosts: %s", (unsigned)a->host_id,
               dfnet_status_str(status));
  }
  if (!last)
    return;
  free(a);
  if (--g->outstanding == 0) {
    if (g->m->stopping) {
      gather_free(g);
      return;
    }
    gather_emit(g);
  }
}

/* Ask host h's agent; true when asked (its answer will come). */
static bool ask_agent(gather_t *g, mgr_host_t *h) {
  if (h->session == 0)
    return false;
  ask_t *a = calloc(1, sizeof *a);
  if (a == NULL)
    return false;
  a->g = g;
  a->host_id = h->id;
  dfnet_envelope_t *env = mgr__env(g->m);
  env->pb.which_msg = dfnet_v1_Envelope_list_driver_hosts_tag;
  topology__fmt(env->pb.msg.list_driver_hosts.host, sizeof env->pb.msg.list_driver_hosts.host, "%s",
                h->name);
  dfnet_request_opts_t opts = {
      .deadline_ms = LIST_DEADLINE_MS, .streaming = true, .on_reply = on_agent_reply, .user = a};
  g->outstanding++;
  if (dfnet_transport_request(g->m->transport, h->session, env, &opts, 0, NULL) !=
      DFNET_STATUS_OK) {
    g->outstanding--;
    free(a);
    return false;
  }
  return true;
}

void handle__list_driver_hosts(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_ListDriverHosts *q = &env->pb.msg.list_driver_hosts;
  mgr_host_t *only = NULL;
  if (q->host[0] != '\0' && (only = hosts__find(m, q->host)) == NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_NOT_FOUND, "no host %s", q->host);
    return;
  }
  gather_t *g = calloc(1, sizeof *g);
  if (g == NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  *g = (gather_t){.m = m, .session = s->id, .request_id = env->pb.id};
  g->only_host = only ? only->id : 0;
  g->outstanding = 1; /* ours, while asking */
  if (only != NULL) {
    ask_agent(g, only);
  } else {
    mgr_host_t *h, *tmp;
    HASH_ITER(hh, m->hosts, h, tmp)
      ask_agent(g, h);
  }
  if (--g->outstanding == 0)
    gather_emit(g);
}
