/* The scripted manager peer of scripted_server.h on the real transport. */
#include "scripted_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/envelope.h"
#include "lib/pki.h"
#include "lib/transport.h"
#include "scripted_leases.h"

#define MAX_STREAMS 64

typedef struct ss_stream {
  bool used;
  dfnet_session_id_t sid;
  uint64_t id;
  uint32_t remaining, size, seq, credit;
} ss_stream_t;

struct scripted_server {
  dfnet_transport_t *t;
  dfnet_envelope_t *env; /* service thread only */
  pthread_mutex_t mu;
  ss_stats_t stats;
  ss_stream_t streams[MAX_STREAMS];
  uint8_t payload[65536];
  ss_leases_t *leases; /* scripted_leases.c */
};

int ss_issue(const char *state_dir, const char *role, const char *name, const char *out_dir) {
  dfnet_pki_role_t r;
  if (dfnet_pki_role_parse(role, &r) != DFNET_STATUS_OK)
    return -1;
  char crt[700];
  snprintf(crt, sizeof crt, "%s/%s.crt", out_dir, name);
  struct stat sb;
  if (stat(crt, &sb) == 0)
    return 0;
  return dfnet_pki_issue_to_dir(state_dir, r, name, out_dir, NULL, 0, 30) == DFNET_STATUS_OK ? 0
                                                                                             : -1;
}

int ss_make_certs(const char *dir) {
  char state[512], out[512];
  mkdir(dir, 0700);
  snprintf(state, sizeof state, "%s/state", dir);
  const char *sans[] = {"127.0.0.1"};
  if (dfnet_pki_init_state_dir(state, "manager", sans, 1, NULL) != DFNET_STATUS_OK)
    return -1;
  static const char *const who[3][2] = {
      {"admin", "alice"}, {"operator", "bob"}, {"viewer", "carol"}};
  for (size_t i = 0; i < 3; i++) {
    snprintf(out, sizeof out, "%s/%s", dir, who[i][0]);
    if (ss_issue(state, who[i][0], who[i][1], out) != 0)
      return -1;
  }
  return 0;
}

static dfnet_envelope_t *fresh(scripted_server_t *s, uint64_t id, pb_size_t which) {
  dfnet_envelope_init(s->env);
  s->env->pb.id = id;
  s->env->pb.which_msg = which;
  return s->env;
}

static void send_reply(scripted_server_t *s, dfnet_session_id_t sid, uint64_t id,
                       dfnet_status_t code, const char *msg, bool eos, const uint8_t *data,
                       size_t len) {
  dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_reply_tag);
  e->pb.msg.reply.code = (dfnet_v1_Code)code;
  snprintf(e->pb.msg.reply.message, sizeof e->pb.msg.reply.message, "%s", msg ? msg : "");
  e->pb.msg.reply.end_of_stream = eos;
  e->bulk.data = data;
  e->bulk.size = len;
  dfnet_transport_send(s->t, sid, e, 0);
}

static dfnet_v1_Role session_role(scripted_server_t *s, dfnet_session_id_t sid) {
  dfnet_session_info_t info;
  char buf[512];
  if (dfnet_transport_session_info(s->t, sid, &info, buf, sizeof buf) != DFNET_STATUS_OK)
    return dfnet_v1_Role_ROLE_UNSPECIFIED;
  return info.role;
}

/* Send what the stream's credit allows; end it when done. */
static void stream_pump(scripted_server_t *s, ss_stream_t *st) {
  while (st->remaining > 0 && st->credit > 0) {
    memset(s->payload, (int)(st->seq & 0xff), st->size);
    send_reply(s, st->sid, st->id, DFNET_STATUS_OK, NULL, false, s->payload, st->size);
    st->seq++;
    st->remaining--;
    st->credit--;
  }
  if (st->remaining == 0) {
    send_reply(s, st->sid, st->id, DFNET_STATUS_OK, NULL, true, NULL, 0);
    st->used = false;
  }
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void on_call(scripted_server_t *s, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_Call *c = &env->pb.msg.call;
  uint64_t id = env->pb.id;
  pthread_mutex_lock(&s->mu);
  s->stats.calls++;
  s->stats.last_deadline_ms = c->deadline_ms;
  s->stats.last_credit = c->credit;
  snprintf(s->stats.last_lease_token, sizeof s->stats.last_lease_token, "%s", c->lease_token);
  pthread_mutex_unlock(&s->mu);
  dfnet_v1_Role role = session_role(s, sid);
  if (role != dfnet_v1_Role_ADMIN && role != dfnet_v1_Role_OPERATOR) {
    dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_PERMISSION_DENIED,
                                "Call needs role operator");
    return;
  }
  if (strcmp(c->method, "/test.Echo/Unary") == 0) {
    uint8_t *copy = malloc(env->bulk.size + 1);
    if (env->bulk.size)
      memcpy(copy, env->bulk.data, env->bulk.size);
    send_reply(s, sid, id, DFNET_STATUS_OK, NULL, true, copy, env->bulk.size);
    free(copy);
  } else if (strcmp(c->method, "/test.Echo/Stream") == 0 && env->bulk.size >= 8) {
    ss_stream_t *st = NULL;
    for (size_t i = 0; i < MAX_STREAMS && st == NULL; i++)
      if (!s->streams[i].used)
        st = &s->streams[i];
    if (st == NULL) {
      send_reply(s, sid, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "too many streams", true, NULL, 0);
      return;
    }
    *st = (ss_stream_t){.used = true,
                        .sid = sid,
                        .id = id,
                        .remaining = le32(env->bulk.data),
                        .size = le32(env->bulk.data + 4),
                        .credit = c->credit ? c->credit : 1};
    if (st->size > sizeof s->payload)
      st->size = sizeof s->payload;
    stream_pump(s, st);
  } else if (strcmp(c->method, "/test.Echo/Block") == 0) {
    /* never answered */
  } else if (strcmp(c->method, "/test.Echo/Fail") == 0) {
    send_reply(s, sid, id, DFNET_STATUS_NOT_FOUND, "no node 'x'", true, NULL, 0);
  } else if (strcmp(c->method, "/test.Echo/Drop") == 0) {
    dfnet_transport_session_close(s->t, sid, DFNET_STATUS_UNAVAILABLE, "dropped");
  } else if (strcmp(c->method, "/dfnet.hw.rng.Rng/Read") == 0) {
    uint32_t count = 0;
    const uint8_t *p = env->bulk.data;
    if (env->bulk.size >= 2 && p[0] == 0x08) { /* field 1 varint */
      for (size_t i = 1, shift = 0; i < env->bulk.size && shift < 32; i++, shift += 7) {
        count |= (uint32_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80))
          break;
      }
    }
    if (count == 0 || count > 65536) {
      send_reply(s, sid, id, DFNET_STATUS_INVALID_ARGUMENT, "count must be 1..65536", true, NULL,
                 0);
      return;
    }
    uint8_t *msg = malloc(count + 8);
    size_t k = 0;
    msg[k++] = 0x0a; /* field 1, bytes */
    uint32_t v = count;
    while (v >= 0x80) {
      msg[k++] = (uint8_t)(v | 0x80);
      v >>= 7;
    }
    msg[k++] = (uint8_t)v;
    for (uint32_t i = 0; i < count; i++)
      msg[k++] = (uint8_t)i;
    send_reply(s, sid, id, DFNET_STATUS_OK, NULL, true, msg, k);
    free(msg);
  } else {
    send_reply(s, sid, id, DFNET_STATUS_UNIMPLEMENTED, "the driver does not serve it", true, NULL,
               0);
  }
}

/* A NodeInfo in s->env, to be sent (node_item). */
static dfnet_v1_NodeInfo *node_fill(scripted_server_t *s, uint64_t id, const char *moniker,
                                    const char *driver, dfnet_v1_NodeState state, bool verbose) {
  dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_node_info_tag);
  dfnet_v1_NodeInfo *n = &e->pb.msg.node_info;
  snprintf(n->moniker, sizeof n->moniker, "%s", moniker);
  const char *dot = strrchr(moniker, '.');
  snprintf(n->name, sizeof n->name, "%s", dot ? dot + 1 : moniker);
  snprintf(n->host, sizeof n->host, "lab-a");
  snprintf(n->driver_url, sizeof n->driver_url, "%s", driver);
  n->state = state;
  if (driver[0]) {
    n->driver_host_id = 7;
    n->driver_host_pid = 4242;
    snprintf(n->class_name, sizeof n->class_name, "rng");
    snprintf(n->class_path, sizeof n->class_path, "class/rng/000");
  } else if (state == dfnet_v1_NodeState_UNBOUND) {
    n->has_unbound_reason = true;
    n->unbound_reason.code = dfnet_v1_Code_NOT_FOUND;
    snprintf(n->unbound_reason.message, sizeof n->unbound_reason.message, "no driver matched");
  }
  if (verbose) {
    n->properties_count = 4;
    n->properties[0].which_key = dfnet_v1_NodeProperty_int_key_tag;
    n->properties[0].key.int_key = 0x0100; /* fuchsia.BIND_PCI_VID */
    n->properties[0].which_value = dfnet_v1_NodeProperty_int_value_tag;
    n->properties[0].value.int_value = 0x1af4;
    n->properties[1].which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(n->properties[1].key.str_key, sizeof n->properties[1].key.str_key,
             "fuchsia.hardware.pci.Device");
    n->properties[1].which_value = dfnet_v1_NodeProperty_bool_value_tag;
    n->properties[1].value.bool_value = true;
    n->properties[2].which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(n->properties[2].key.str_key, sizeof n->properties[2].key.str_key, "vendor.name");
    n->properties[2].which_value = dfnet_v1_NodeProperty_str_value_tag;
    snprintf(n->properties[2].value.str_value, sizeof n->properties[2].value.str_value, "Red Hat");
    n->properties[3].which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(n->properties[3].key.str_key, sizeof n->properties[3].key.str_key,
             "fuchsia.hardware.pci.Service");
    n->properties[3].which_value = dfnet_v1_NodeProperty_enum_value_tag;
    snprintf(n->properties[3].value.enum_value, sizeof n->properties[3].value.enum_value,
             "fuchsia.hardware.pci.Service.ZirconTransport");
    n->offers_count = 1;
    snprintf(n->offers[0], sizeof n->offers[0], "fuchsia.hardware.pci.Service");
  }
  return n;
}

static void node_item(scripted_server_t *s, dfnet_session_id_t sid, uint64_t id,
                      const char *moniker, const char *driver, dfnet_v1_NodeState state,
                      bool verbose) {
  node_fill(s, id, moniker, driver, state, verbose);
  dfnet_transport_send(s->t, sid, s->env, 0);
}

/* The nodes of driver lifecycle (issue 19), listed only when asked by their moniker: one
 * starting, one suspended, one test node. */
static void lifecycle_node(scripted_server_t *s, dfnet_session_id_t sid, uint64_t id,
                           const char *moniker, bool verbose) {
  static const char rng[] = "dfnet-boot:///virtio-rng#meta/virtio-rng.json";
  dfnet_v1_NodeInfo *n = NULL;
  if (strcmp(moniker, "dev.lab-a.pci.00_08_0") == 0) {
    n = node_fill(s, id, moniker, rng, dfnet_v1_NodeState_NODE_STARTING, verbose);
  } else if (strcmp(moniker, "dev.lab-a.pci.00_09_0") == 0) {
    n = node_fill(s, id, moniker, rng, dfnet_v1_NodeState_BOUND, verbose);
    n->suspended = true;
    n->driver_host_pid = 4343;
  } else if (strcmp(moniker, "dev.lab-a.pci.00_0a_0") == 0) { /* leased */
    n = node_fill(s, id, moniker, rng, dfnet_v1_NodeState_BOUND, verbose);
    n->lease_id = 7;
    snprintf(n->lease_holder, sizeof n->lease_holder, "alice");
    n->lease_expires_ms = 1800000000000ull;
  } else if (strcmp(moniker, "dev.lab-a.pci.t0") == 0) {
    n = node_fill(s, id, moniker, "", dfnet_v1_NodeState_UNBOUND, verbose);
    n->test = true;
    n->unbound_reason.code = dfnet_v1_Code_OK;
    snprintf(n->unbound_reason.message, sizeof n->unbound_reason.message,
             "test node: would bind %s", rng);
  }
  if (n != NULL)
    dfnet_transport_send(s->t, sid, s->env, 0);
}

static void on_list_nodes(scripted_server_t *s, dfnet_session_id_t sid,
                          const dfnet_envelope_t *env) {
  const dfnet_v1_ListNodes q = env->pb.msg.list_nodes;
  uint64_t id = env->pb.id;
  if (strcmp(q.filter, "many") == 0) {
    char m[64];
    for (int i = 0; i < 5000; i++) {
      snprintf(m, sizeof m, "dev.lab-a.many.n%04d", i);
      node_item(s, sid, id, m, "", dfnet_v1_NodeState_UNBOUND, q.verbose);
    }
  } else {
    static const struct {
      const char *moniker, *driver;
      dfnet_v1_NodeState state;
    } nodes[] = {
        {"dev.lab-a", "", dfnet_v1_NodeState_OWNED_BY_PARENT},
        {"dev.lab-a.pci", "", dfnet_v1_NodeState_OWNED_BY_PARENT},
        {"dev.lab-a.pci.00_05_0", "dfnet-boot:///virtio-rng#meta/virtio-rng.json",
         dfnet_v1_NodeState_BOUND},
        {"dev.lab-a.pci.00_06_0", "", dfnet_v1_NodeState_UNBOUND},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
      bool match = q.exact ? strcmp(nodes[i].moniker, q.filter) == 0
                           : strstr(nodes[i].moniker, q.filter) != NULL;
      if (match)
        node_item(s, sid, id, nodes[i].moniker, nodes[i].driver, nodes[i].state, q.verbose);
    }
    if (q.exact)
      lifecycle_node(s, sid, id, q.filter, q.verbose);
  }
  dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
}

static void on_list_hosts(scripted_server_t *s, dfnet_session_id_t sid, uint64_t id) {
  for (int i = 0; i < 2; i++) {
    dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_host_info_tag);
    dfnet_v1_HostInfo *h = &e->pb.msg.host_info;
    snprintf(h->name, sizeof h->name, "lab-%c", 'a' + i);
    snprintf(h->address, sizeof h->address, "127.0.0.1:%d", 40000 + i);
    snprintf(h->arch, sizeof h->arch, "x86_64");
    h->online = i == 0;
    h->node_count = 4 + (uint32_t)i;
    h->driver_host_count = 1;
    h->connected_since_ms = 1700000000000ull;
    h->labels_count = 1;
    snprintf(h->labels[0].key, sizeof h->labels[0].key, "rack");
    snprintf(h->labels[0].value, sizeof h->labels[0].value, "r%d", i);
    /* lab-b's agent runs with --no-sandbox */
    h->sandboxed = i == 0;
    if (i == 0) { /* lease 7 */
      h->lease_holders_count = 1;
      snprintf(h->lease_holders[0], sizeof h->lease_holders[0], "alice");
      h->leased_nodes = 1;
    }
    dfnet_transport_send(s->t, sid, e, 0);
  }
  dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
}

static void on_list_drivers(scripted_server_t *s, dfnet_session_id_t sid,
                            const dfnet_envelope_t *env) {
  static const uint8_t bytecode[] = {'B', 'I', 'N', 'D', 2, 0, 0, 0};
  uint64_t id = env->pb.id;
  const char *names[] = {"virtio-rng", "pci-config"};
  for (int i = 0; i < 2; i++) {
    if (env->pb.msg.list_drivers.loaded && i == 1)
      continue;
    dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_driver_info_tag);
    dfnet_v1_DriverInfo *d = &e->pb.msg.driver_info;
    snprintf(d->name, sizeof d->name, "%s", names[i]);
    snprintf(d->url, sizeof d->url, "dfnet-boot:///%s#meta/%s.json", names[i], names[i]);
    d->source = dfnet_v1_DriverSource_BOOT;
    d->fallback = i == 1;
    d->disable_autobind = i == 1;
    d->start_timeout_ms = i == 0 ? 2000 : 0;
    d->device_count = i == 0 ? 1 : 0;
    d->device_categories_count = 1;
    snprintf(d->device_categories[0].category, sizeof d->device_categories[0].category, "misc");
    snprintf(d->device_categories[0].subcategory, sizeof d->device_categories[0].subcategory, "%s",
             i == 0 ? "rng" : "");
    if (i == 0) {
      d->devices_count = 1;
      snprintf(d->devices[0], sizeof d->devices[0], "dev.lab-a.pci.00_05_0");
    }
    /* virtio-rng: no rights, the default limits; pci-config: two rights, its own limits */
    d->memory_mb = i == 0 ? 512 : 64;
    d->open_files = i == 0 ? 1024 : 256;
    if (i == 1) {
      d->rights_count = 2;
      snprintf(d->rights[0], sizeof d->rights[0], "inet");
      snprintf(d->rights[1], sizeof d->rights[1], "exec");
    }
    if (env->pb.msg.list_drivers.verbose) {
      e->bulk.data = bytecode;
      e->bulk.size = sizeof bytecode;
    }
    dfnet_transport_send(s->t, sid, e, 0);
  }
  dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
}

/* A DriverControlResult with outcomes: 00_05_0 running again; with "partial", 00_06_0
 * failed. */
static void control_result(scripted_server_t *s, dfnet_session_id_t sid, uint64_t id,
                           const dfnet_v1_DriverControl *d) {
  static const char rng[] = "dfnet-boot:///virtio-rng#meta/virtio-rng.json";
  bool partial = strstr(d->url, "partial") != NULL;
  dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_driver_control_result_tag);
  dfnet_v1_DriverControlResult *r = &e->pb.msg.driver_control_result;
  r->driver_hosts = d->action == dfnet_v1_DriverControl_Action_RESTART ? 2 : 0;
  r->nodes = partial ? 3 : 1;
  snprintf(r->url, sizeof r->url, "%s", partial ? "dfnet-boot:///partial#meta/partial.json" : rng);
  r->outcomes_count = partial ? 2 : 1;
  snprintf(r->outcomes[0].node, sizeof r->outcomes[0].node, "dev.lab-a.pci.00_05_0");
  r->outcomes[0].has_status = true;
  snprintf(r->outcomes[0].driver_url, sizeof r->outcomes[0].driver_url, "%s", rng);
  if (partial) {
    snprintf(r->outcomes[1].node, sizeof r->outcomes[1].node, "dev.lab-a.pci.00_06_0");
    r->outcomes[1].has_status = true;
    r->outcomes[1].status.code = dfnet_v1_Code_FAILED_PRECONDITION;
    snprintf(r->outcomes[1].status.message, sizeof r->outcomes[1].status.message,
             "start failed: no device");
  }
  dfnet_transport_send(s->t, sid, e, 0);
}

static void driver_host_item(scripted_server_t *s, dfnet_session_id_t sid, uint64_t id,
                             const char *host, uint64_t dh, uint32_t pid, uint64_t rss,
                             const char *driver, const char *node) {
  dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_driver_host_info_tag);
  dfnet_v1_DriverHostInfo *h = &e->pb.msg.driver_host_info;
  snprintf(h->host, sizeof h->host, "%s", host);
  h->id = dh;
  h->pid = pid;
  h->rss_bytes = rss;
  h->driver_urls_count = 1;
  snprintf(h->driver_urls[0], sizeof h->driver_urls[0], "%s", driver);
  h->nodes_count = 1;
  snprintf(h->nodes[0], sizeof h->nodes[0], "%s", node);
  /* lab-a's agent confines them as uid 998; pci-config's driver host got the right inet */
  h->uid = pid != 0 ? 998 : 0;
  h->sandboxed = pid != 0;
  if (strstr(driver, "pci-config") != NULL && pid != 0) {
    h->rights_count = 1;
    snprintf(h->rights[0], sizeof h->rights[0], "inet");
  }
  dfnet_transport_send(s->t, sid, e, 0);
}

/* lab-b's first (the CLI sorts), offline; then lab-a's two. */
static void on_list_driver_hosts(scripted_server_t *s, dfnet_session_id_t sid,
                                 const dfnet_envelope_t *env) {
  static const char rng[] = "dfnet-boot:///virtio-rng#meta/virtio-rng.json";
  static const char pci[] = "dfnet-boot:///pci-config#meta/pci-config.json";
  const char *host = env->pb.msg.list_driver_hosts.host;
  uint64_t id = env->pb.id;
  if (host[0] != '\0' && strcmp(host, "lab-a") != 0 && strcmp(host, "lab-b") != 0) {
    dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_NOT_FOUND, "no host 'x'");
    return;
  }
  if (host[0] == '\0' || strcmp(host, "lab-b") == 0)
    driver_host_item(s, sid, id, "lab-b", 1, 0, 0, pci, "dev.lab-b.pci.00_01_0");
  if (host[0] == '\0' || strcmp(host, "lab-a") == 0) {
    driver_host_item(s, sid, id, "lab-a", 7, 4242, 2202010, rng, "dev.lab-a.pci.00_05_0");
    driver_host_item(s, sid, id, "lab-a", 2, 4100, 512000, pci, "dev.lab-a.pci.00_06_0");
  }
  dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
}

/* "<key>=<type>:<value>;" of a property, appended to out. */
static void property_text(const dfnet_v1_NodeProperty *p, char *out, size_t cap) {
  size_t n = strlen(out);
  char key[160];
  if (p->which_key == dfnet_v1_NodeProperty_int_key_tag)
    snprintf(key, sizeof key, "#%u", p->key.int_key);
  else
    snprintf(key, sizeof key, "%s", p->key.str_key);
  switch (p->which_value) {
  case dfnet_v1_NodeProperty_int_value_tag:
    snprintf(out + n, cap - n, "%s=u:%u;", key, p->value.int_value);
    break;
  case dfnet_v1_NodeProperty_bool_value_tag:
    snprintf(out + n, cap - n, "%s=b:%s;", key, p->value.bool_value ? "true" : "false");
    break;
  case dfnet_v1_NodeProperty_str_value_tag:
    snprintf(out + n, cap - n, "%s=s:%s;", key, p->value.str_value);
    break;
  case dfnet_v1_NodeProperty_enum_value_tag:
    snprintf(out + n, cap - n, "%s=e:%s;", key, p->value.enum_value);
    break;
  default:
    snprintf(out + n, cap - n, "%s=?;", key);
    break;
  }
}

/* RequestBind and the node control requests: recorded, answered with a Status. */
static void on_node_control(scripted_server_t *s, dfnet_session_id_t sid,
                            const dfnet_envelope_t *env) {
  const char *node = "", *message = "";
  ss_stats_t *st = &s->stats;
  pthread_mutex_lock(&s->mu);
  st->last_which = env->pb.which_msg;
  st->last_flags = 0;
  st->last_driver[0] = st->last_props[0] = '\0';
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_request_bind_tag:
    node = env->pb.msg.request_bind.node;
    st->last_flags = env->pb.msg.request_bind.force_rebind;
    snprintf(st->last_driver, sizeof st->last_driver, "%s",
             env->pb.msg.request_bind.driver_url_suffix);
    message = "starting dfnet-boot:///virtio-rng#meta/virtio-rng.json";
    break;
  case dfnet_v1_Envelope_unbind_node_tag:
    node = env->pb.msg.unbind_node.node;
    message = "stopped 1 driver";
    break;
  case dfnet_v1_Envelope_suspend_node_tag:
    node = env->pb.msg.suspend_node.node;
    st->last_flags = env->pb.msg.suspend_node.flags;
    message = "2 drivers suspended";
    break;
  case dfnet_v1_Envelope_resume_node_tag:
    node = env->pb.msg.resume_node.node;
    break;
  case dfnet_v1_Envelope_add_test_node_tag:
    node = env->pb.msg.add_test_node.parent;
    for (pb_size_t i = 0; i < env->pb.msg.add_test_node.properties_count; i++)
      property_text(&env->pb.msg.add_test_node.properties[i], st->last_props,
                    sizeof st->last_props);
    message = "would bind dfnet-boot:///virtio-rng#meta/virtio-rng.json";
    break;
  default:
    node = env->pb.msg.remove_test_node.moniker;
    break;
  }
  snprintf(st->last_node, sizeof st->last_node, "%s%s%s", node,
           env->pb.which_msg == dfnet_v1_Envelope_add_test_node_tag ? "." : "",
           env->pb.which_msg == dfnet_v1_Envelope_add_test_node_tag ? env->pb.msg.add_test_node.name
                                                                    : "");
  pthread_mutex_unlock(&s->mu);
  if (session_role(s, sid) != dfnet_v1_Role_ADMIN)
    dfnet_transport_send_status(s->t, sid, env->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                                "node control needs role admin");
  else if (strcmp(node, "dev.none") == 0)
    dfnet_transport_send_status(s->t, sid, env->pb.id, DFNET_STATUS_NOT_FOUND,
                                "no node 'dev.none'");
  else
    dfnet_transport_send_status(s->t, sid, env->pb.id, DFNET_STATUS_OK, message);
}

static void on_misc(scripted_server_t *s, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  uint64_t id = env->pb.id;
  dfnet_v1_Role role = session_role(s, sid);
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_list_composites_tag: {
    dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_composite_info_tag);
    dfnet_v1_CompositeInfo *k = &e->pb.msg.composite_info;
    snprintf(k->name, sizeof k->name, "audio");
    snprintf(k->driver_url, sizeof k->driver_url, "dfnet-boot:///audio#meta/audio.json");
    k->parents_count = 2;
    snprintf(k->parents[0].name, sizeof k->parents[0].name, "i2c");
    snprintf(k->parents[0].moniker, sizeof k->parents[0].moniker, "dev.lab-a.i2c");
    k->parents[0].primary = true;
    snprintf(k->parents[1].name, sizeof k->parents[1].name, "gpio");
    dfnet_transport_send(s->t, sid, e, 0);
    dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
    return;
  }
  case dfnet_v1_Envelope_bind_why_tag: {
    if (strcmp(env->pb.msg.bind_why.node, "dev.none") == 0) {
      dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_NOT_FOUND, "no node 'dev.none'");
      return;
    }
    dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_bind_trace_tag);
    dfnet_v1_BindTrace *t = &e->pb.msg.bind_trace;
    snprintf(t->driver_url, sizeof t->driver_url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
    t->result = dfnet_v1_BindResult_NO_MATCH;
    t->offset = 18;
    snprintf(t->instruction, sizeof t->instruction, "fuchsia.BIND_PCI_DID == 0x1044");
    snprintf(t->reason, sizeof t->reason, "property fuchsia.BIND_PCI_DID is 0x1000, want 0x1044");
    dfnet_transport_send(s->t, sid, e, 0);
    dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
    return;
  }
  case dfnet_v1_Envelope_watch_tag:
    for (int i = 0; i < 3; i++) {
      dfnet_envelope_t *e = fresh(s, id, dfnet_v1_Envelope_watch_event_tag);
      dfnet_v1_WatchEvent *w = &e->pb.msg.watch_event;
      w->kind = i == 0 ? dfnet_v1_WatchEvent_Kind_NODE_ADDED : dfnet_v1_WatchEvent_Kind_NODE_BOUND;
      snprintf(w->subject, sizeof w->subject, "dev.lab-a.n%d", i);
      w->time_ms = 1700000000000ull + (uint64_t)i;
      dfnet_transport_send(s->t, sid, e, 0);
    }
    return;
  case dfnet_v1_Envelope_cancel_tag: {
    bool is_stream = false;
    for (size_t i = 0; i < MAX_STREAMS; i++) {
      if (s->streams[i].used && s->streams[i].sid == sid && s->streams[i].id == id) {
        s->streams[i].used = false;
        is_stream = true;
      }
    }
    pthread_mutex_lock(&s->mu);
    if (strcmp(env->pb.msg.cancel.reason, "watch") == 0 || !is_stream)
      s->stats.cancels++;
    pthread_mutex_unlock(&s->mu);
    dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_CANCELLED, "cancelled");
    return;
  }
  case dfnet_v1_Envelope_stream_credit_tag:
    pthread_mutex_lock(&s->mu);
    s->stats.credits++;
    s->stats.credit_total += env->pb.msg.stream_credit.credit;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < MAX_STREAMS; i++) {
      ss_stream_t *st = &s->streams[i];
      if (st->used && st->sid == sid && st->id == id) {
        st->credit += env->pb.msg.stream_credit.credit;
        stream_pump(s, st);
        break;
      }
    }
    return;
  case dfnet_v1_Envelope_driver_control_tag: {
    const dfnet_v1_DriverControl *d = &env->pb.msg.driver_control;
    if (role != dfnet_v1_Role_ADMIN) {
      dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_PERMISSION_DENIED,
                                  "driver_control needs role admin");
    } else if (strstr(d->url, "missing") != NULL) {
      dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_NOT_FOUND, "no driver with that URL");
    } else if (d->action == dfnet_v1_DriverControl_Action_RESTART ||
               strstr(d->url, "partial") != NULL) {
      control_result(s, sid, id, d);
    } else {
      dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_OK, "");
    }
    return;
  }
  default:
    dfnet_transport_send_status(s->t, sid, id, DFNET_STATUS_UNIMPLEMENTED, "not scripted");
    return;
  }
}

static void on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  scripted_server_t *s = user;
  if (ss_leases_envelope(s->leases, sid, env))
    return;
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_hello_tag: {
    dfnet_v1_Role role = session_role(s, sid);
    dfnet_envelope_t *e = fresh(s, env->pb.id, dfnet_v1_Envelope_welcome_tag);
    e->pb.msg.welcome.protocol_version = DFNET_PROTOCOL_VERSION;
    e->pb.msg.welcome.role = role;
    snprintf(e->pb.msg.welcome.server_name, sizeof e->pb.msg.welcome.server_name, "scripted");
    e->pb.msg.welcome.session_id = sid;
    dfnet_transport_send(s->t, sid, e, 0);
    return;
  }
  case dfnet_v1_Envelope_call_tag:
    on_call(s, sid, env);
    return;
  case dfnet_v1_Envelope_list_nodes_tag:
    on_list_nodes(s, sid, env);
    return;
  case dfnet_v1_Envelope_list_hosts_tag:
    on_list_hosts(s, sid, env->pb.id);
    return;
  case dfnet_v1_Envelope_list_drivers_tag:
    on_list_drivers(s, sid, env);
    return;
  case dfnet_v1_Envelope_list_driver_hosts_tag:
    on_list_driver_hosts(s, sid, env);
    return;
  case dfnet_v1_Envelope_request_bind_tag:
  case dfnet_v1_Envelope_unbind_node_tag:
  case dfnet_v1_Envelope_suspend_node_tag:
  case dfnet_v1_Envelope_resume_node_tag:
  case dfnet_v1_Envelope_add_test_node_tag:
  case dfnet_v1_Envelope_remove_test_node_tag:
    on_node_control(s, sid, env);
    return;
  default:
    on_misc(s, sid, env);
    return;
  }
}

scripted_server_t *ss_start(const char *dir, uint16_t *port) {
  scripted_server_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->env = malloc(sizeof *s->env);
  pthread_mutex_init(&s->mu, NULL);
  char crt[600], key[600], ca[600];
  snprintf(crt, sizeof crt, "%s/state/manager.crt", dir);
  snprintf(key, sizeof key, "%s/state/manager.key", dir);
  snprintf(ca, sizeof ca, "%s/state/ca.crt", dir);
  dfnet_server_config_t cfg = {.bind_address = "127.0.0.1",
                               .cert_file = crt,
                               .key_file = key,
                               .ca_file = ca,
                               .callbacks = {.on_envelope = on_envelope},
                               .user = s};
  if (s->env == NULL || dfnet_transport_create(&s->t) != DFNET_STATUS_OK ||
      (s->leases = ss_leases_new(s->t)) == NULL ||
      dfnet_transport_listen(s->t, &cfg, NULL, port) != DFNET_STATUS_OK ||
      dfnet_transport_start(s->t) != DFNET_STATUS_OK) {
    ss_stop(s);
    return NULL;
  }
  return s;
}

void ss_stats(scripted_server_t *s, ss_stats_t *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->stats;
  pthread_mutex_unlock(&s->mu);
}

void ss_lease_stats(scripted_server_t *s, ss_lease_stats_t *out) {
  ss_leases_stats(s->leases, out);
}

void ss_stop(scripted_server_t *s) {
  if (s == NULL)
    return;
  dfnet_transport_destroy(s->t);
  ss_leases_free(s->leases);
  pthread_mutex_destroy(&s->mu);
  free(s->env);
  free(s);
}
