/* dfnet-manager: host agent sessions (issue 5 "Topology and binding"): Hello/Welcome with
 * the name verified by the certificate, one live session per host name (the newer is
 * refused with ALREADY_EXISTS), nodes offline at once when a session drops and removed
 * after the grace period, and reconcile when the host comes back within it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

enum { PENDING_GRACE = 10 };

mgr_host_t *hosts__find(mgr_t *m, const char *name) {
  mgr_host_t *h = NULL;
  HASH_FIND_STR(m->hosts, name, h);
  return h;
}

mgr_host_t *hosts__get(mgr_t *m, uint32_t id) {
  mgr_host_t *h = NULL;
  HASH_FIND(hh_id, m->hosts_by_id, &id, sizeof id, h);
  return h;
}

static void host_free(mgr_t *m, mgr_host_t *h) {
  HASH_DEL(m->hosts, h);
  HASH_DELETE(hh_id, m->hosts_by_id, h);
  free(h);
}

void hosts__destroy_all(mgr_t *m) {
  mgr_host_t *h, *tmp;
  HASH_ITER(hh, m->hosts, h, tmp)
    host_free(m, h);
}

static void root_name(const mgr_host_t *h, char *out, size_t size) {
  topology__fmt(out, size, "dev.%s", h->name);
}

/* Remove every node of the host that is still offline, bottom-up; the host record too
 * when its session has not come back. */
static void on_grace_expired(void *user) {
  mgr_pending_t *p = user;
  mgr_t *m = p->mgr;
  mgr_host_t *h = hosts__get(m, p->host_id);
  pending__free(p);
  if (h == NULL)
    return;
  h->grace_timer = 0;
  char root[80];
  root_name(h, root, sizeof root);
  topology_node_t *r = topology__find(&m->topo, root);
  if (r != NULL && r->offline) {
    binder__remove_subtree(m, r, false, "host gone: grace period expired");
  } else {
    /* Reconnected: drop what was not re-announced (offline nodes; deepest first). */
    bool again = true;
    while (again) {
      again = false;
      topology_node_t *n, *tmp;
      HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
        if (n->host_id == h->id && n->offline) {
          binder__remove_subtree(m, n, false, "not re-announced within the grace period");
          again = true;
          break;
        }
      }
    }
  }
  if (h->session == 0) {
    DFNET_LOGI("hosts", h->name, "grace period expired: host and its nodes removed");
    streams__event(m, dfnet_v1_WatchEvent_Kind_HOST_REMOVED, h->name, "grace period expired",
                   DFNET_STATUS_UNAVAILABLE);
    metrics__host_gone(m, h->name);
    host_free(m, h);
  }
}

void hosts__session_closed(mgr_t *m, mgr_session_t *s) {
  mgr_host_t *h = hosts__get(m, s->host_id);
  if (h == NULL || h->session != s->id)
    return;
  h->session = 0;
  topology_node_t *n, *tmp;
  size_t count = 0;
  HASH_ITER(hh, m->topo.by_moniker, n, tmp) {
    if (n->host_id == h->id && !n->test) { /* a test node is the manager's: never offline */
      n->offline = true;
      n->suspended = false; /* the host's loss ends a suspend, unless its agent comes back
                               with the driver still suspended (DriverStatus SUSPENDED) */
      count++;
    }
  }
  DFNET_LOGW("hosts", h->name,
             "session lost: %zu nodes offline, removed in %u ms unless it "
             "comes back",
             count, m->cfg.host_grace_ms);
  streams__event(m, dfnet_v1_WatchEvent_Kind_HOST_DISCONNECTED, h->name, NULL,
                 DFNET_STATUS_UNAVAILABLE);
  if (h->grace_timer != 0)
    return; /* one already running from an earlier drop */
  mgr_pending_t *p = pending__new(m, PENDING_GRACE);
  if (p == NULL)
    return;
  p->host_id = h->id;
  if (pending__timer(p, m->cfg.host_grace_ms, on_grace_expired) != DFNET_STATUS_OK) {
    pending__free(p);
    return;
  }
  h->grace_timer = p->timer;
}

static void send_welcome(mgr_t *m, mgr_session_t *s, uint64_t id) {
  dfnet_envelope_t *env = mgr__env(m);
  env->pb.id = id;
  env->pb.which_msg = dfnet_v1_Envelope_welcome_tag;
  dfnet_v1_Welcome *w = &env->pb.msg.welcome;
  w->protocol_version = DFNET_PROTOCOL_VERSION;
  w->role = s->role;
  topology__fmt(w->name, sizeof w->name, "%s", s->name);
  topology__fmt(w->server_name, sizeof w->server_name, "dfnet-manager");
  w->session_id = s->id;
  w->host_grace_ms = m->cfg.host_grace_ms;
  dfnet_status_t st = dfnet_transport_send(m->transport, s->id, env, 0);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW("hosts", s->name, "Welcome not sent: %s", dfnet_status_str(st));
  s->welcomed = true;
}

static mgr_host_t *host_new(mgr_t *m, const char *name) {
  mgr_host_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  h->id = ++m->next_host_id;
  topology__fmt(h->name, sizeof h->name, "%s", name);
  HASH_ADD_STR(m->hosts, name, h);
  HASH_ADD(hh_id, m->hosts_by_id, id, sizeof h->id, h);
  return h;
}

/* The host's root node dev.<name>: kept by the host agent (never bound). */
static dfnet_status_t ensure_root(mgr_t *m, mgr_host_t *h) {
  char root[80];
  root_name(h, root, sizeof root);
  topology_node_t *r = topology__find(&m->topo, root);
  if (r != NULL) {
    r->offline = false;
    return DFNET_STATUS_OK;
  }
  topology_add_args_t a = {.name = root, .owned = true, .host_id = h->id};
  char err[200];
  dfnet_status_t st = topology__add(&m->topo, NULL, &a, &r, err, sizeof err);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE("hosts", h->name, "root node %s: %s", root, err);
    return st;
  }
  h->node_count++;
  streams__event(m, dfnet_v1_WatchEvent_Kind_NODE_ADDED, root, NULL, DFNET_STATUS_OK);
  return DFNET_STATUS_OK;
}

void hosts__hello(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_Hello *hello = &env->pb.msg.hello;
  if (hello->name[0] != '\0' && strcmp(hello->name, s->name) != 0) {
    DFNET_LOGW("hosts", s->name, "refused: Hello names '%s', the certificate '%s'", hello->name,
               s->name);
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_PERMISSION_DENIED,
                           "Hello.name '%s' is not the certificate's name '%s'", hello->name,
                           s->name);
    dfnet_transport_session_close(m->transport, s->id, DFNET_STATUS_PERMISSION_DENIED,
                                  "host name mismatch");
    return;
  }
  if (strchr(s->name, '.') != NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INVALID_ARGUMENT,
                           "host name '%s' contains '.': not a node name", s->name);
    dfnet_transport_session_close(m->transport, s->id, DFNET_STATUS_INVALID_ARGUMENT,
                                  "host name contains '.'");
    return;
  }
  mgr_host_t *h = hosts__find(m, s->name);
  if (h != NULL && h->session != 0) {
    DFNET_LOGW("hosts", s->name, "refused: a session for this host is already live");
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_ALREADY_EXISTS,
                           "host %s already has a live session", s->name);
    dfnet_transport_session_close(m->transport, s->id, DFNET_STATUS_ALREADY_EXISTS,
                                  "host already connected");
    return;
  }
  bool resumed = h != NULL;
  if (h == NULL && (h = host_new(m, s->name)) == NULL) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  h->session = s->id;
  topology__fmt(h->address, sizeof h->address, "%s", s->address);
  topology__fmt(h->arch, sizeof h->arch, "%s", hello->arch);
  topology__fmt(h->software_version, sizeof h->software_version, "%s", hello->software_version);
  h->sandboxed = hello->sandboxed;
  h->label_count = hello->labels_count;
  memcpy(h->labels, hello->labels, sizeof h->labels);
  h->connected_since_ms = mgr__wall_ms();
  s->host_id = h->id;
  if (ensure_root(m, h) != DFNET_STATUS_OK) {
    sessions__reply_status(m, s->id, env->pb.id, DFNET_STATUS_INTERNAL,
                           "cannot create the host's root node");
    return;
  }
  send_welcome(m, s, env->pb.id);
  DFNET_LOGI("hosts", h->name, "%s from %s (%s, %s%s)", resumed ? "reconnected" : "connected",
             s->address, h->arch, h->software_version[0] ? h->software_version : "no version",
             h->sandboxed ? "" : ", SANDBOX OFF: its drivers run unconfined");
  streams__event(m, dfnet_v1_WatchEvent_Kind_HOST_CONNECTED, h->name, s->address, DFNET_STATUS_OK);
}
