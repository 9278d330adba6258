/* libdfnet-client: the manager's control requests (proto/dfnet/v1/query.proto), each one
 * unary request answered by a Status or one result: driver disable / enable / restart /
 * unregister (DriverControl, with its outcome per node), node control (a bind request,
 * unbind, suspend, resume), test nodes, adding a composite node spec, and registering a
 * driver package (PackageUpload, in chunks). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clients/lib/client_internal.h"
#include "lib/package.h"
#include "lib/property.h"

#define UPLOAD_CHUNK (256u * 1024u)

/* ---- one unary request -------------------------------------------------------------- */

/* Send req (freed here) and wait for its Status. */
static dfnet_status_t unary(dfnet_client_t *c, dfnet_envelope_t *req, dfnet_client_error_t *err) {
  dfnet_status_t st = client__query(c, req, false, 0, client__no_item, NULL, err);
  free(req);
  return st;
}

/* ---- driver control ------------------------------------------------------------------- */

/* A DriverControlResult kept whole: the public result first, its strings in the arena. */
typedef struct control_holder {
  dfnet_client_driver_control_result_t pub;
  dfnet_arena_t arena;
} control_holder_t;

void dfnet_client_driver_control_result_free(dfnet_client_driver_control_result_t *result) {
  if (result == NULL)
    return;
  control_holder_t *h = (control_holder_t *)result; /* pub is the first member */
  dfnet_arena_free(&h->arena);
  free(h);
}

/* The result's outcomes into the arena. false = out of memory. */
static bool outcomes_copy(dfnet_arena_t *a, const dfnet_v1_DriverControlResult *w,
                          dfnet_client_driver_control_result_t *r) {
  if (w->outcomes_count == 0)
    return true;
  dfnet_client_node_outcome_t *o = dfnet_arena_alloc(a, w->outcomes_count * sizeof *o);
  if (o == NULL)
    return false;
  bool ok = true;
  for (pb_size_t i = 0; i < w->outcomes_count; i++) {
    const dfnet_v1_NodeOutcome *wo = &w->outcomes[i];
    o[i].code = wo->has_status ? (dfnet_status_t)wo->status.code : DFNET_STATUS_OK;
    ok = ok && (o[i].node = client__arena_strdup(a, wo->node)) != NULL;
    ok = ok &&
         (o[i].message = client__arena_strdup(a, wo->has_status ? wo->status.message : "")) != NULL;
    ok = ok && (o[i].driver_url = client__arena_strdup(a, wo->driver_url)) != NULL;
  }
  r->outcome_count = w->outcomes_count;
  r->outcomes = o;
  return ok;
}

/* client__query's on_item: the DriverControlResult, copied into the holder. */
static dfnet_status_t control_item(void *ctx, const dfnet_envelope_t *env) {
  control_holder_t *h = ctx;
  if (env->pb.which_msg != dfnet_v1_Envelope_driver_control_result_tag)
    return DFNET_STATUS_INTERNAL;
  const dfnet_v1_DriverControlResult *w = &env->pb.msg.driver_control_result;
  h->pub.driver_hosts = w->driver_hosts;
  h->pub.nodes = w->nodes;
  if (w->url[0] != '\0' && (h->pub.url = client__arena_strdup(&h->arena, w->url)) == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  return outcomes_copy(&h->arena, w, &h->pub) ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

static bool action_to_wire(dfnet_client_driver_action_t action,
                           dfnet_v1_DriverControl_Action *out) {
  switch (action) {
  case DFNET_CLIENT_DRIVER_DISABLE:
    *out = dfnet_v1_DriverControl_Action_DISABLE;
    return true;
  case DFNET_CLIENT_DRIVER_ENABLE:
    *out = dfnet_v1_DriverControl_Action_ENABLE;
    return true;
  case DFNET_CLIENT_DRIVER_RESTART:
    *out = dfnet_v1_DriverControl_Action_RESTART;
    return true;
  case DFNET_CLIENT_DRIVER_UNREGISTER:
    *out = dfnet_v1_DriverControl_Action_UNREGISTER;
    return true;
  }
  return false;
}

/* DriverControl `action` on `url` into h (the answer: a DriverControlResult, or only a
 * Status from a manager that sends no result for that action). */
static dfnet_status_t control_request(dfnet_client_t *c, dfnet_client_driver_action_t action,
                                      const char *url, control_holder_t *h,
                                      dfnet_client_error_t *err) {
  dfnet_v1_DriverControl_Action wire;
  if (!action_to_wire(action, &wire))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "unknown driver action %d",
                        (int)action);
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_driver_control_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_DriverControl *m = &req->pb.msg.driver_control;
  m->action = wire;
  dfnet_status_t st = client__copy_field(m->url, sizeof m->url, url, "driver URL", err);
  if (st == DFNET_STATUS_OK)
    st = client__query(c, req, false, 0, control_item, h, err);
  free(req);
  if (st == DFNET_STATUS_OK && h->pub.url == NULL &&
      (h->pub.url = client__arena_strdup(&h->arena, url)) == NULL)
    st = client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  return st;
}

dfnet_status_t dfnet_client_driver_control(dfnet_client_t *c, dfnet_client_driver_action_t action,
                                           const char *url,
                                           dfnet_client_driver_control_result_t **out,
                                           dfnet_client_error_t *err) {
  client__error_ok(err);
  if (out != NULL)
    *out = NULL;
  if (c == NULL || out == NULL || url == NULL || url[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a driver URL or name is required");
  control_holder_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  dfnet_status_t st = control_request(c, action, url, h, err);
  if (st != DFNET_STATUS_OK) {
    dfnet_client_driver_control_result_free(&h->pub);
    return st;
  }
  *out = &h->pub;
  return DFNET_STATUS_OK;
}

/* The four driver functions on dfnet_client_driver_control. On OK, *count (may be NULL)
 * gets the result's driver_hosts (RESTART) or nodes (UNREGISTER), url_out (may be NULL)
 * the driver's URL. */
static dfnet_status_t driver_control(dfnet_client_t *c, const char *url,
                                     dfnet_client_driver_action_t action, uint32_t *count,
                                     char *url_out, size_t url_cap, dfnet_client_error_t *err) {
  if (count != NULL)
    *count = 0;
  if (url_out != NULL && url_cap > 0)
    url_out[0] = '\0';
  dfnet_client_driver_control_result_t *r = NULL;
  dfnet_status_t st = dfnet_client_driver_control(c, action, url, &r, err);
  if (st != DFNET_STATUS_OK)
    return st;
  if (count != NULL)
    *count = action == DFNET_CLIENT_DRIVER_UNREGISTER ? r->nodes : r->driver_hosts;
  if (url_out != NULL && url_cap > 0)
    snprintf(url_out, url_cap, "%s", r->url);
  dfnet_client_driver_control_result_free(r);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_driver_disable(dfnet_client_t *c, const char *url,
                                           dfnet_client_error_t *err) {
  return driver_control(c, url, DFNET_CLIENT_DRIVER_DISABLE, NULL, NULL, 0, err);
}

dfnet_status_t dfnet_client_driver_enable(dfnet_client_t *c, const char *url,
                                          dfnet_client_error_t *err) {
  return driver_control(c, url, DFNET_CLIENT_DRIVER_ENABLE, NULL, NULL, 0, err);
}

dfnet_status_t dfnet_client_driver_restart(dfnet_client_t *c, const char *url, uint32_t *restarted,
                                           dfnet_client_error_t *err) {
  return driver_control(c, url, DFNET_CLIENT_DRIVER_RESTART, restarted, NULL, 0, err);
}

dfnet_status_t dfnet_client_driver_unregister(dfnet_client_t *c, const char *url, uint32_t *nodes,
                                              char *url_out, size_t url_cap,
                                              dfnet_client_error_t *err) {
  return driver_control(c, url, DFNET_CLIENT_DRIVER_UNREGISTER, nodes, url_out, url_cap, err);
}

/* ---- node control --------------------------------------------------------------------- */

dfnet_status_t dfnet_client_request_bind(dfnet_client_t *c, const char *node, bool force_rebind,
                                         const char *driver_url_suffix, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || node == NULL || node[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a node moniker is required");
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_request_bind_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_RequestBind *m = &req->pb.msg.request_bind;
  dfnet_status_t st = client__copy_field(m->node, sizeof m->node, node, "node", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(m->driver_url_suffix, sizeof m->driver_url_suffix, driver_url_suffix,
                            "driver URL suffix", err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  m->force_rebind = force_rebind;
  return unary(c, req, err);
}

/* A request naming one node (UnbindNode, SuspendNode, ResumeNode, RemoveTestNode), its
 * moniker in the member's one string field; flags: SuspendNode's. Answered by a Status. */
static dfnet_status_t node_request(dfnet_client_t *c, pb_size_t which, const char *node,
                                   uint32_t flags, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || node == NULL || node[0] == '\0')
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a node moniker is required");
  dfnet_envelope_t *req = client__envelope_new(which, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  char *field = NULL;
  size_t cap = 0;
  switch (which) {
  case dfnet_v1_Envelope_unbind_node_tag:
    field = req->pb.msg.unbind_node.node;
    cap = sizeof req->pb.msg.unbind_node.node;
    break;
  case dfnet_v1_Envelope_suspend_node_tag:
    field = req->pb.msg.suspend_node.node;
    cap = sizeof req->pb.msg.suspend_node.node;
    req->pb.msg.suspend_node.flags = flags;
    break;
  case dfnet_v1_Envelope_resume_node_tag:
    field = req->pb.msg.resume_node.node;
    cap = sizeof req->pb.msg.resume_node.node;
    break;
  default: /* dfnet_v1_Envelope_remove_test_node_tag */
    field = req->pb.msg.remove_test_node.moniker;
    cap = sizeof req->pb.msg.remove_test_node.moniker;
    break;
  }
  dfnet_status_t st = client__copy_field(field, cap, node, "node", err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  return unary(c, req, err);
}

dfnet_status_t dfnet_client_node_unbind(dfnet_client_t *c, const char *node,
                                        dfnet_client_error_t *err) {
  return node_request(c, dfnet_v1_Envelope_unbind_node_tag, node, 0, err);
}

dfnet_status_t dfnet_client_node_suspend(dfnet_client_t *c, const char *node, uint32_t flags,
                                         dfnet_client_error_t *err) {
  return node_request(c, dfnet_v1_Envelope_suspend_node_tag, node, flags, err);
}

dfnet_status_t dfnet_client_node_resume(dfnet_client_t *c, const char *node,
                                        dfnet_client_error_t *err) {
  return node_request(c, dfnet_v1_Envelope_resume_node_tag, node, 0, err);
}

dfnet_status_t dfnet_client_test_node_remove(dfnet_client_t *c, const char *moniker,
                                             dfnet_client_error_t *err) {
  return node_request(c, dfnet_v1_Envelope_remove_test_node_tag, moniker, 0, err);
}

/* ---- composite node specs ------------------------------------------------------------ */

static dfnet_status_t value_to_wire(const dfnet_client_property_t *p, dfnet_v1_PropertyValue *v,
                                    dfnet_client_error_t *err) {
  dfnet_bind_property_t b;
  dfnet_property_from_client(p, &b);
  switch (dfnet_property_value_to_wire(&b, v)) {
  case DFNET_PROPERTY_WIRE_OK:
    return DFNET_STATUS_OK;
  case DFNET_PROPERTY_WIRE_NO_VALUE:
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a value without a type");
  default: /* client__copy_field says what did not fit */
    return client__copy_field(v->value.str_value, sizeof v->value.str_value, b.str_value,
                              "bind rule value", err);
  }
}

static dfnet_status_t property_to_wire(const dfnet_client_property_t *p, dfnet_v1_NodeProperty *w,
                                       dfnet_client_error_t *err) {
  dfnet_bind_property_t b;
  dfnet_property_from_client(p, &b);
  switch (dfnet_property_to_wire(&b, w)) {
  case DFNET_PROPERTY_WIRE_OK:
    return DFNET_STATUS_OK;
  case DFNET_PROPERTY_WIRE_KEY_CUT: /* client__copy_field says what did not fit */
    return client__copy_field(w->key.str_key, sizeof w->key.str_key, b.str_key, "property key",
                              err);
  case DFNET_PROPERTY_WIRE_VALUE_CUT:
    return client__copy_field(w->value.str_value, sizeof w->value.str_value, b.str_value,
                              "property value", err);
  default:
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a property without a value");
  }
}

static dfnet_status_t spec_to_wire(const char *name, const dfnet_client_parent_spec_t *parents,
                                   size_t parent_count, dfnet_v1_CompositeNodeSpec *spec,
                                   dfnet_client_error_t *err) {
  if (name == NULL || name[0] == '\0' || parents == NULL || parent_count == 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "a composite node spec needs a name and parents");
  if (parent_count > sizeof spec->parents / sizeof spec->parents[0])
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "%zu parents, at most %zu",
                        parent_count, sizeof spec->parents / sizeof spec->parents[0]);
  dfnet_status_t st = client__copy_field(spec->name, sizeof spec->name, name, "spec name", err);
  spec->parents_count = (pb_size_t)parent_count;
  for (size_t i = 0; st == DFNET_STATUS_OK && i < parent_count; i++) {
    const dfnet_client_parent_spec_t *p = &parents[i];
    dfnet_v1_ParentSpec *w = &spec->parents[i];
    size_t max_rules = sizeof w->bind_rules / sizeof w->bind_rules[0];
    size_t max_props = sizeof w->properties / sizeof w->properties[0];
    if (p->rule_count == 0 || p->rule_count > max_rules || p->property_count > max_props)
      return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                          "parent %zu: %zu bind rules (1..%zu), %zu properties (0..%zu)", i,
                          p->rule_count, max_rules, p->property_count, max_props);
    w->bind_rules_count = (pb_size_t)p->rule_count;
    for (size_t r = 0; st == DFNET_STATUS_OK && r < p->rule_count; r++) {
      const dfnet_client_bind_rule_t *rule = &p->rules[r];
      dfnet_v1_BindRule *wr = &w->bind_rules[r];
      size_t max_values = sizeof wr->values / sizeof wr->values[0];
      if (rule->value_count == 0 || rule->value_count > max_values ||
          (rule->condition != DFNET_CLIENT_ACCEPT && rule->condition != DFNET_CLIENT_REJECT))
        return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                            "parent %zu rule %zu: needs ACCEPT or REJECT and 1..%zu values", i, r,
                            max_values);
      if (rule->str_key != NULL) {
        wr->which_key = dfnet_v1_BindRule_str_key_tag;
        st = client__copy_field(wr->key.str_key, sizeof wr->key.str_key, rule->str_key,
                                "bind rule key", err);
      } else {
        wr->which_key = dfnet_v1_BindRule_int_key_tag;
        wr->key.int_key = rule->int_key;
      }
      wr->condition = rule->condition == DFNET_CLIENT_ACCEPT ? dfnet_v1_Condition_ACCEPT
                                                             : dfnet_v1_Condition_REJECT;
      wr->values_count = (pb_size_t)rule->value_count;
      for (size_t v = 0; st == DFNET_STATUS_OK && v < rule->value_count; v++)
        st = value_to_wire(&rule->values[v], &wr->values[v], err);
    }
    w->properties_count = (pb_size_t)p->property_count;
    for (size_t k = 0; st == DFNET_STATUS_OK && k < p->property_count; k++)
      st = property_to_wire(&p->properties[k], &w->properties[k], err);
  }
  return st;
}

dfnet_status_t dfnet_client_add_composite_node_spec(dfnet_client_t *c, const char *name,
                                                    const dfnet_client_parent_spec_t *parents,
                                                    size_t parent_count,
                                                    dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "client is NULL");
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_add_composite_node_spec_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  req->pb.msg.add_composite_node_spec.has_spec = true;
  dfnet_status_t st =
      spec_to_wire(name, parents, parent_count, &req->pb.msg.add_composite_node_spec.spec, err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  return unary(c, req, err);
}

/* ---- test nodes (ffx driver test-node) ------------------------------------------------ */

dfnet_status_t dfnet_client_test_node_add(dfnet_client_t *c, const char *parent, const char *name,
                                          const dfnet_client_property_t *props, size_t count,
                                          dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || parent == NULL || parent[0] == '\0' || name == NULL || name[0] == '\0' ||
      (props == NULL && count > 0))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "a test node needs a parent moniker and a name");
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_add_test_node_tag, err);
  if (req == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_v1_AddTestNode *m = &req->pb.msg.add_test_node;
  size_t max = sizeof m->properties / sizeof m->properties[0];
  dfnet_status_t st = count > max
                          ? client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                                         "%zu properties, at most %zu", count, max)
                          : client__copy_field(m->parent, sizeof m->parent, parent, "parent", err);
  if (st == DFNET_STATUS_OK)
    st = client__copy_field(m->name, sizeof m->name, name, "name", err);
  m->properties_count = (pb_size_t)(st == DFNET_STATUS_OK ? count : 0);
  for (size_t i = 0; st == DFNET_STATUS_OK && i < count; i++)
    st = property_to_wire(&props[i], &m->properties[i], err);
  if (st != DFNET_STATUS_OK) {
    free(req);
    return st;
  }
  return unary(c, req, err);
}

/* ---- driver register ------------------------------------------------------------------ */

/* The package's name: the one meta/<name>.json of the directory. */
static dfnet_status_t package_name(const char *dir, char *name, size_t cap,
                                   dfnet_client_error_t *err) {
  char meta[4096];
  snprintf(meta, sizeof meta, "%s/meta", dir);
  DIR *d = opendir(meta);
  if (d == NULL) {
    struct stat sb;
    if (stat(dir, &sb) != 0)
      return client__fail(err, DFNET_STATUS_NOT_FOUND, "%s: no such package directory", dir);
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%s is not a driver package: no meta/ directory", dir);
  }
  size_t found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
      if (found == 0 && n - 5 < cap) {
        memcpy(name, e->d_name, n - 5);
        name[n - 5] = '\0';
      }
      found++;
    }
  }
  closedir(d);
  if (found != 1)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%s: expected exactly one meta/<name>.json, found %zu", dir, found);
  if (!dfnet_package_name_valid(name))
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "%s: '%s' is not a valid driver name ([A-Za-z0-9_-], at most %u)", dir,
                        name, DFNET_PACKAGE_NAME_MAX);
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_client_driver_register(dfnet_client_t *c, const char *pkg_dir, char *url_out,
                                            size_t url_cap, dfnet_client_error_t *err) {
  client__error_ok(err);
  if (c == NULL || pkg_dir == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "a package directory is required");
  char name[DFNET_PACKAGE_NAME_MAX + 1];
  dfnet_status_t st = package_name(pkg_dir, name, sizeof name, err);
  if (st != DFNET_STATUS_OK)
    return st;
  dfnet_package_buf_t pkg = {0};
  char why[512];
  st = dfnet_package_pack_dir(pkg_dir, &pkg, why, sizeof why);
  if (st != DFNET_STATUS_OK)
    return client__fail(err, st, "%s: %s", pkg_dir, why);
  uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE];
  dfnet_package_digest(pkg.data, pkg.size, digest);
  dfnet_envelope_t *req = client__envelope_new(dfnet_v1_Envelope_package_upload_tag, err);
  if (req == NULL) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto packed;
  }
  size_t off = 0;
  do {
    size_t n = pkg.size - off < UPLOAD_CHUNK ? pkg.size - off : UPLOAD_CHUNK;
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_package_upload_tag;
    dfnet_v1_PackageUpload *m = &req->pb.msg.package_upload;
    memcpy(m->digest, digest, sizeof digest);
    m->offset = off;
    m->total_size = pkg.size;
    snprintf(m->name, sizeof m->name, "%s", name);
    req->bulk.data = pkg.data + off;
    req->bulk.size = n;
    st = client__query(c, req, false, 0, client__no_item, NULL, err);
    off += n;
  } while (st == DFNET_STATUS_OK && off < pkg.size);
  free(req);
  if (st == DFNET_STATUS_OK && url_out != NULL && url_cap > 0) {
    st = dfnet_package_url(name, digest, url_out, url_cap);
    if (st != DFNET_STATUS_OK)
      client__fail(err, st, "URL buffer of %zu bytes too small", url_cap);
  }
packed:
  dfnet_package_buf_free(&pkg);
  return st;
}
