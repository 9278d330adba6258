#include "envelope_samples.h"

#include <stdio.h>
#include <string.h>

#define SET(field, text) snprintf((field), sizeof(field), "%s", (text))

static const uint8_t payload64[64] = {0x0a, 0x20, 'h', 'e', 'l', 'l', 'o', ' ', 'f',
                                      'r',  'o',  'm', ' ', 'd', 'f', 'n', 'e', 't'};
static const uint8_t digest[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                                   0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                                   0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

static void prop_int(dfnet_v1_NodeProperty *p, uint32_t key, uint32_t value) {
  p->which_key = dfnet_v1_NodeProperty_int_key_tag;
  p->key.int_key = key;
  p->which_value = dfnet_v1_NodeProperty_int_value_tag;
  p->value.int_value = value;
}

static void prop_enum(dfnet_v1_NodeProperty *p, uint32_t key, const char *value) {
  p->which_key = dfnet_v1_NodeProperty_int_key_tag;
  p->key.int_key = key;
  p->which_value = dfnet_v1_NodeProperty_enum_value_tag;
  SET(p->value.enum_value, value);
}

static void prop_str(dfnet_v1_NodeProperty *p, const char *key, const char *value) {
  p->which_key = dfnet_v1_NodeProperty_str_key_tag;
  SET(p->key.str_key, key);
  p->which_value = dfnet_v1_NodeProperty_str_value_tag;
  SET(p->value.str_value, value);
}

static void prop_bool(dfnet_v1_NodeProperty *p, const char *key, bool value) {
  p->which_key = dfnet_v1_NodeProperty_str_key_tag;
  SET(p->key.str_key, key);
  p->which_value = dfnet_v1_NodeProperty_bool_value_tag;
  p->value.bool_value = value;
}

/* The properties the PCI enumerator publishes for the fixture's virtio RNG. */
static pb_size_t pci_props(dfnet_v1_NodeProperty *p) {
  prop_enum(&p[0], 0x0001, "fuchsia.pci.BIND_PROTOCOL.DEVICE");
  prop_int(&p[1], 0x0100, 0x1af4);
  prop_int(&p[2], 0x0101, 0x1044);
  prop_int(&p[3], 0x0102, 0xff);
  prop_int(&p[4], 0x0103, 0xff);
  prop_int(&p[5], 0x0104, 0x00);
  prop_int(&p[6], 0x0105, 0x01);
  prop_int(&p[7], 0x0107, 0x28);
  prop_str(&p[8], "dfnet.pci.SYSFS_PATH", "/sys/bus/pci/devices/0000:00:05.0");
  prop_str(&p[9], "dfnet.pci.KERNEL_DRIVER", "virtio-pci");
  prop_bool(&p[10], "fuchsia.hardware.pci.Device", true);
  return 11;
}

#define WHICH(env, member) ((env)->pb.which_msg = dfnet_v1_Envelope_##member##_tag)

static void fill_status(dfnet_envelope_t *e) {
  WHICH(e, status);
  e->pb.msg.status.code = dfnet_v1_Code_NOT_FOUND;
  SET(e->pb.msg.status.message, "no node dev.lab-a.pci.00_09_0");
}
static void fill_hello(dfnet_envelope_t *e) {
  WHICH(e, hello);
  dfnet_v1_Hello *h = &e->pb.msg.hello;
  h->protocol_version = DFNET_PROTOCOL_VERSION;
  h->role = dfnet_v1_Role_HOST;
  SET(h->name, "lab-a");
  SET(h->arch, "x86_64");
  h->labels_count = 2;
  SET(h->labels[0].key, "rack");
  SET(h->labels[0].value, "r3");
  SET(h->labels[1].key, "board");
  SET(h->labels[1].value, "vim3");
  SET(h->software_version, "dfnet 0.1.0");
}
static void fill_welcome(dfnet_envelope_t *e) {
  WHICH(e, welcome);
  dfnet_v1_Welcome *w = &e->pb.msg.welcome;
  w->protocol_version = DFNET_PROTOCOL_VERSION;
  w->role = dfnet_v1_Role_HOST;
  SET(w->name, "lab-a");
  SET(w->server_name, "manager");
  w->session_id = 0x1122334455667788ull;
  w->host_grace_ms = 30000;
}
static void fill_node_add(dfnet_envelope_t *e) {
  WHICH(e, node_add);
  dfnet_v1_NodeAdd *n = &e->pb.msg.node_add;
  SET(n->parent, "dev.lab-a.pci");
  SET(n->name, "00_05_0");
  n->properties_count = pci_props(n->properties);
  n->offers_count = 1;
  SET(n->offers[0], "fuchsia.hardware.pci.Service");
  SET(n->class_name, "");
  SET(n->driver_url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  n->driver_host_id = 7;
}
static void fill_node_remove(dfnet_envelope_t *e) {
  WHICH(e, node_remove);
  SET(e->pb.msg.node_remove.moniker, "dev.lab-a.usb.001_002");
  e->pb.msg.node_remove.has_reason = true;
  e->pb.msg.node_remove.reason.code = dfnet_v1_Code_UNAVAILABLE;
  SET(e->pb.msg.node_remove.reason.message, "device unplugged");
}
static void fill_node_update(dfnet_envelope_t *e) {
  WHICH(e, node_update);
  dfnet_v1_NodeUpdate *u = &e->pb.msg.node_update;
  SET(u->moniker, "dev.lab-a.pci.00_05_0");
  u->properties_count = pci_props(u->properties);
}
static void fill_driver_start(dfnet_envelope_t *e) {
  WHICH(e, driver_start);
  dfnet_v1_DriverStart *d = &e->pb.msg.driver_start;
  SET(d->node, "dev.lab-a.pci.00_05_0");
  SET(d->url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  memcpy(d->package_digest, digest, 32);
  SET(d->binary, "driver/virtio-rng.so");
  d->dispatcher_opts_count = 1;
  SET(d->dispatcher_opts[0], "allow_sync_calls");
  d->properties_count = pci_props(d->properties);
  static const uint8_t manifest[] = "{\"runner\":\"driver\",\"binary\":\"driver/virtio-rng.so\"}";
  e->bulk.data = manifest;
  e->bulk.size = sizeof manifest - 1;
}
static void fill_driver_stop(dfnet_envelope_t *e) {
  WHICH(e, driver_stop);
  SET(e->pb.msg.driver_stop.node, "dev.lab-a.pci.00_05_0");
  SET(e->pb.msg.driver_stop.url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  e->pb.msg.driver_stop.driver_host_id = 3;
}
static void fill_driver_status(dfnet_envelope_t *e) {
  WHICH(e, driver_status);
  dfnet_v1_DriverStatus *s = &e->pb.msg.driver_status;
  SET(s->node, "dev.lab-a.pci.00_05_0");
  SET(s->url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  s->driver_host_id = 3;
  s->state = dfnet_v1_DriverState_FAILED;
  s->has_status = true;
  s->status.code = dfnet_v1_Code_FAILED_PRECONDITION;
  SET(s->status.message, "virtio_rng is not bound to 0000:00:05.0");
  s->pid = 4242;
}
static void fill_driver_host_exit(dfnet_envelope_t *e) {
  WHICH(e, driver_host_exit);
  dfnet_v1_DriverHostExit *x = &e->pb.msg.driver_host_exit;
  x->driver_host_id = 3;
  x->pid = 4242;
  x->exit_code = -1;
  x->signal = 11;
  x->nodes_count = 2;
  SET(x->nodes[0], "dev.lab-a.pci.00_05_0");
  SET(x->nodes[1], "dev.lab-a.pci.00_05_0.rng");
  SET(x->reason, "killed by SIGSEGV");
}
static void fill_driver_suspend(dfnet_envelope_t *e) {
  WHICH(e, driver_suspend);
  SET(e->pb.msg.driver_suspend.node, "dev.lab-a.pci.00_05_0");
  e->pb.msg.driver_suspend.driver_host_id = 3;
  e->pb.msg.driver_suspend.flags = 0xdcdc0100u;
}
static void fill_driver_resume(dfnet_envelope_t *e) {
  WHICH(e, driver_resume);
  SET(e->pb.msg.driver_resume.node, "dev.lab-a.pci.00_05_0");
  e->pb.msg.driver_resume.driver_host_id = 3;
}
static void fill_package_fetch(dfnet_envelope_t *e) {
  WHICH(e, package_fetch);
  memcpy(e->pb.msg.package_fetch.digest, digest, 32);
  e->pb.msg.package_fetch.offset = 65536;
  e->pb.msg.package_fetch.max_bytes = 65536;
}
static void fill_package_chunk(dfnet_envelope_t *e) {
  WHICH(e, package_chunk);
  memcpy(e->pb.msg.package_chunk.digest, digest, 32);
  e->pb.msg.package_chunk.offset = 65536;
  e->pb.msg.package_chunk.total_size = 65600;
  e->pb.msg.package_chunk.last = true;
  e->bulk.data = payload64;
  e->bulk.size = sizeof payload64;
}
static void fill_package_upload(dfnet_envelope_t *e) {
  WHICH(e, package_upload);
  memcpy(e->pb.msg.package_upload.digest, digest, 32);
  e->pb.msg.package_upload.total_size = 64;
  SET(e->pb.msg.package_upload.name, "virtio-rng");
  e->bulk.data = payload64;
  e->bulk.size = sizeof payload64;
}
void sample_typical_call(dfnet_envelope_t *e) {
  dfnet_envelope_init(e);
  e->pb.id = 1001;
  WHICH(e, call);
  dfnet_v1_Call *c = &e->pb.msg.call;
  SET(c->target, "dev.lab-a.pci.00_05_0");
  SET(c->method, "/dfnet.hw.rng.Rng/Read");
  c->deadline_ms = 5000;
  c->credit = 16;
  SET(c->caller, "alice");
  e->bulk.data = payload64;
  e->bulk.size = sizeof payload64;
}
static void fill_reply(dfnet_envelope_t *e) {
  WHICH(e, reply);
  e->pb.msg.reply.code = dfnet_v1_Code_OK;
  e->pb.msg.reply.end_of_stream = true;
  e->bulk.data = payload64;
  e->bulk.size = 32;
}
static void fill_cancel(dfnet_envelope_t *e) {
  WHICH(e, cancel);
  SET(e->pb.msg.cancel.reason, "client disconnected");
}
static void fill_stream_credit(dfnet_envelope_t *e) {
  WHICH(e, stream_credit);
  e->pb.msg.stream_credit.credit = 8;
}
static void fill_list_hosts(dfnet_envelope_t *e) { WHICH(e, list_hosts); }
static void fill_host_info(dfnet_envelope_t *e) {
  WHICH(e, host_info);
  dfnet_v1_HostInfo *h = &e->pb.msg.host_info;
  SET(h->name, "lab-a");
  SET(h->address, "10.200.1.2:53422");
  SET(h->arch, "aarch64");
  h->labels_count = 1;
  SET(h->labels[0].key, "rack");
  SET(h->labels[0].value, "r3");
  h->connected_since_ms = 1795000000000ull;
  h->online = true;
  h->node_count = 14;
  h->driver_host_count = 3;
  SET(h->software_version, "dfnet 0.1.0+bbcd979-dirty");
}
static void fill_list_nodes(dfnet_envelope_t *e) {
  WHICH(e, list_nodes);
  SET(e->pb.msg.list_nodes.filter, "pci");
  e->pb.msg.list_nodes.verbose = true;
}
static void fill_node_info(dfnet_envelope_t *e) {
  WHICH(e, node_info);
  dfnet_v1_NodeInfo *n = &e->pb.msg.node_info;
  SET(n->moniker, "dev.lab-a.pci.00_05_0");
  SET(n->name, "00_05_0");
  SET(n->host, "lab-a");
  n->properties_count = pci_props(n->properties);
  SET(n->class_name, "rng");
  SET(n->class_path, "class/rng/000");
  n->state = dfnet_v1_NodeState_BOUND;
  SET(n->driver_url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  n->driver_host_id = 3;
}
static void fill_list_drivers(dfnet_envelope_t *e) {
  WHICH(e, list_drivers);
  e->pb.msg.list_drivers.loaded = true;
  e->pb.msg.list_drivers.verbose = true;
}
static void fill_driver_info(dfnet_envelope_t *e) {
  WHICH(e, driver_info);
  dfnet_v1_DriverInfo *d = &e->pb.msg.driver_info;
  SET(d->url, "dfnet-boot:///pci-config#meta/pci-config.json");
  SET(d->name, "pci-config");
  memcpy(d->package_digest, digest, 32);
  d->source = dfnet_v1_DriverSource_BOOT;
  d->fallback = true;
  d->device_categories_count = 1;
  SET(d->device_categories[0].category, "misc");
  SET(d->device_categories[0].subcategory, "pci");
  d->device_count = 5;
  d->devices_count = 1;
  SET(d->devices[0], "dev.lab-a.pci.00_00_0");
  static const uint8_t bytecode[] = {'B', 'I', 'N', 'D', 2, 0, 0, 0, 0};
  e->bulk.data = bytecode;
  e->bulk.size = sizeof bytecode;
}
static void fill_list_composites(dfnet_envelope_t *e) {
  WHICH(e, list_composites);
  e->pb.msg.list_composites.verbose = true;
}
static void fill_composite_info(dfnet_envelope_t *e) {
  WHICH(e, composite_info);
  dfnet_v1_CompositeInfo *c = &e->pb.msg.composite_info;
  SET(c->name, "wallcreeper");
  SET(c->driver_url, "dfnet-boot:///wallcreeper#meta/wallcreeper.json");
  c->parents_count = 2;
  SET(c->parents[0].name, "wagtail");
  SET(c->parents[0].moniker, "dev.lab-a.board.gpio");
  c->parents[0].primary = true;
  SET(c->parents[1].name, "redpoll");
}
static void fill_add_composite_node_spec(dfnet_envelope_t *e) {
  WHICH(e, add_composite_node_spec);
  dfnet_v1_AddCompositeNodeSpec *a = &e->pb.msg.add_composite_node_spec;
  a->has_spec = true;
  SET(a->spec.name, "audio");
  a->spec.parents_count = 1;
  dfnet_v1_ParentSpec *p = &a->spec.parents[0];
  p->bind_rules_count = 1;
  p->bind_rules[0].which_key = dfnet_v1_BindRule_int_key_tag;
  p->bind_rules[0].key.int_key = 0x0001;
  p->bind_rules[0].condition = dfnet_v1_Condition_ACCEPT;
  p->bind_rules[0].values_count = 2;
  p->bind_rules[0].values[0].which_value = dfnet_v1_PropertyValue_int_value_tag;
  p->bind_rules[0].values[0].value.int_value = 31;
  p->bind_rules[0].values[1].which_value = dfnet_v1_PropertyValue_enum_value_tag;
  SET(p->bind_rules[0].values[1].value.enum_value, "fuchsia.i2c.BIND_PROTOCOL.DEVICE");
  p->properties_count = 1;
  prop_int(&p->properties[0], 0x0001, 31);
}
static void fill_driver_control(dfnet_envelope_t *e) {
  WHICH(e, driver_control);
  SET(e->pb.msg.driver_control.url, "dfnet-boot:///serial#meta/serial.json");
  e->pb.msg.driver_control.action = dfnet_v1_DriverControl_Action_UNREGISTER;
}
static void fill_driver_control_result(dfnet_envelope_t *e) {
  WHICH(e, driver_control_result);
  e->pb.msg.driver_control_result.driver_hosts = 2;
  e->pb.msg.driver_control_result.nodes = 3;
  SET(e->pb.msg.driver_control_result.url, "dfnet-pkg://0123456789ab/e1000#meta/e1000.json");
}
static void fill_request_bind(dfnet_envelope_t *e) {
  WHICH(e, request_bind);
  SET(e->pb.msg.request_bind.node, "dev.lab-a.usb.001_002");
  e->pb.msg.request_bind.force_rebind = true;
  SET(e->pb.msg.request_bind.driver_url_suffix, "usb-device.json");
}
static void fill_bind_why(dfnet_envelope_t *e) {
  WHICH(e, bind_why);
  SET(e->pb.msg.bind_why.node, "dev.lab-a.pci.00_03_0");
}
static void fill_bind_trace(dfnet_envelope_t *e) {
  WHICH(e, bind_trace);
  dfnet_v1_BindTrace *t = &e->pb.msg.bind_trace;
  SET(t->driver_url, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  t->result = dfnet_v1_BindResult_NO_MATCH;
  t->offset = 11;
  SET(t->instruction, "fuchsia.BIND_PCI_DID == 0x1044");
  SET(t->reason, "fuchsia.BIND_PCI_DID is 0x1041");
}
static void fill_watch(dfnet_envelope_t *e) {
  WHICH(e, watch);
  e->pb.msg.watch.nodes = true;
  e->pb.msg.watch.hosts = true;
}
static void fill_watch_event(dfnet_envelope_t *e) {
  WHICH(e, watch_event);
  dfnet_v1_WatchEvent *w = &e->pb.msg.watch_event;
  w->kind = dfnet_v1_WatchEvent_Kind_NODE_BOUND;
  SET(w->subject, "dev.lab-a.pci.00_05_0");
  SET(w->detail, "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  w->time_ms = 1795000000123ull;
}
static void fill_unbind_node(dfnet_envelope_t *e) {
  WHICH(e, unbind_node);
  SET(e->pb.msg.unbind_node.node, "dev.lab-a.pci.00_05_0");
}
static void fill_suspend_node(dfnet_envelope_t *e) {
  WHICH(e, suspend_node);
  SET(e->pb.msg.suspend_node.node, "dev.lab-a.pci.00_05_0");
  e->pb.msg.suspend_node.flags = 0xdcdc0400u;
}
static void fill_resume_node(dfnet_envelope_t *e) {
  WHICH(e, resume_node);
  SET(e->pb.msg.resume_node.node, "dev.lab-a.pci.00_05_0");
}
static void fill_add_test_node(dfnet_envelope_t *e) {
  WHICH(e, add_test_node);
  dfnet_v1_AddTestNode *t = &e->pb.msg.add_test_node;
  SET(t->parent, "dev.lab-a");
  SET(t->name, "try-rng");
  t->properties_count = pci_props(t->properties);
}
static void fill_remove_test_node(dfnet_envelope_t *e) {
  WHICH(e, remove_test_node);
  SET(e->pb.msg.remove_test_node.moniker, "dev.lab-a.try-rng");
}
static void fill_list_driver_hosts(dfnet_envelope_t *e) {
  WHICH(e, list_driver_hosts);
  SET(e->pb.msg.list_driver_hosts.host, "lab-a");
}
static void fill_driver_host_info(dfnet_envelope_t *e) {
  WHICH(e, driver_host_info);
  dfnet_v1_DriverHostInfo *h = &e->pb.msg.driver_host_info;
  SET(h->host, "lab-a");
  h->id = 3;
  h->pid = 4242;
  h->rss_bytes = 3u << 20;
  h->driver_urls_count = 1;
  SET(h->driver_urls[0], "dfnet-boot:///virtio-rng#meta/virtio-rng.json");
  h->nodes_count = 1;
  SET(h->nodes[0], "dev.lab-a.pci.00_05_0");
}
static void fill_lease_acquire(dfnet_envelope_t *e) {
  WHICH(e, lease_acquire);
  dfnet_v1_LeaseAcquire *a = &e->pb.msg.lease_acquire;
  a->targets_count = 1;
  SET(a->targets[0], "dev.lab-a.pci.00_05_0");
  a->match_count = 1;
  SET(a->match[0], "soc=imx8mp");
  a->ttl_ms = 3600000;
  a->wait = true;
  a->wait_ms = 300000;
  a->priority = dfnet_v1_LeasePriority_LEASE_PRIORITY_HIGH;
  SET(a->reason, "nightly flash test");
}
static void fill_lease_info(dfnet_envelope_t *e) {
  WHICH(e, lease_info);
  dfnet_v1_LeaseInfo *l = &e->pb.msg.lease_info;
  l->id = 42;
  SET(l->holder, "alice");
  l->targets_count = 1;
  SET(l->targets[0], "class/serial/000");
  l->nodes_count = 1;
  SET(l->nodes[0], "dev.lab-a.platform.uart0");
  l->node_count = 3;
  l->acquired_ms = 1796630400000ull;
  l->expires_ms = 1796632200000ull;
  l->ttl_ms = 1800000;
  SET(l->token, "42.5f1d3c0e9a7b2468ace013579bdf02468ace013579bdf02468ace013579bdf0");
  SET(l->reason, "debugging the bootloader");
}
static void fill_lease_renew(dfnet_envelope_t *e) {
  WHICH(e, lease_renew);
  e->pb.msg.lease_renew.id = 42;
  SET(e->pb.msg.lease_renew.token,
      "42.5f1d3c0e9a7b2468ace013579bdf02468ace013579bdf02468ace013579bdf0");
  e->pb.msg.lease_renew.ttl_ms = 600000;
}
static void fill_lease_release(dfnet_envelope_t *e) {
  WHICH(e, lease_release);
  e->pb.msg.lease_release.id = 42;
  e->pb.msg.lease_release.force = true;
  SET(e->pb.msg.lease_release.reason, "the CI job was cancelled");
}
static void fill_list_leases(dfnet_envelope_t *e) {
  WHICH(e, list_leases);
  SET(e->pb.msg.list_leases.target, "dev.lab-a");
}
static void fill_lease_history(dfnet_envelope_t *e) {
  WHICH(e, lease_history);
  SET(e->pb.msg.lease_history.target, "dev.lab-a.pci.00_05_0");
  e->pb.msg.lease_history.since_ms = 1796544000000ull;
  e->pb.msg.lease_history.limit = 100;
}
static void fill_artifact_open(dfnet_envelope_t *e) {
  WHICH(e, artifact_open);
  dfnet_v1_ArtifactOpen *a = &e->pb.msg.artifact_open;
  a->sha256.size = 32;
  memset(a->sha256.bytes, 0xab, 32);
  a->partial = true;
}

static void fill_lease_audit_entry(dfnet_envelope_t *e) {
  WHICH(e, lease_audit_entry);
  dfnet_v1_LeaseAuditEntry *a = &e->pb.msg.lease_audit_entry;
  a->seq = 1001;
  a->time_ms = 1796630400000ull;
  SET(a->actor, "root");
  SET(a->action, "force_release");
  a->lease_id = 42;
  SET(a->targets, "dev.lab-a.pci.00_05_0");
  SET(a->detail, "the CI job was cancelled");
}
/* trust.proto (issue 23) */
static void fill_cert_list(dfnet_envelope_t *e) { WHICH(e, cert_list); }
static void fill_cert_info(dfnet_envelope_t *e) {
  WHICH(e, cert_info);
  dfnet_v1_CertInfo *c = &e->pb.msg.cert_info;
  SET(c->serial, "5f0c2a9e11d04b7c8a0e3d2f6b1c9a77");
  SET(c->name, "lab-a");
  SET(c->role, "host");
  c->not_after_ms = 1799136000000ull;
  c->first_seen_ms = 1796544000000ull;
  c->last_seen_ms = 1796630400000ull;
  SET(c->last_address, "192.0.2.7:50312");
  c->revoked_ms = 1796640000000ull;
  SET(c->revoked_by, "root");
  SET(c->revoke_reason, "board stolen");
}
static void fill_cert_revoke(dfnet_envelope_t *e) {
  WHICH(e, cert_revoke);
  SET(e->pb.msg.cert_revoke.target, "lab-a");
  SET(e->pb.msg.cert_revoke.reason, "board stolen");
}
static void fill_cert_revoke_result(dfnet_envelope_t *e) {
  WHICH(e, cert_revoke_result);
  dfnet_v1_CertRevokeResult *r = &e->pb.msg.cert_revoke_result;
  r->serials_count = 2;
  SET(r->serials[0], "5f0c2a9e11d04b7c8a0e3d2f6b1c9a77");
  SET(r->serials[1], "6a1d3b0f22e15c8d9b1f4e307c2dab88");
  SET(r->name, "lab-a");
  r->sessions_closed = 1;
}
static void fill_token_create(dfnet_envelope_t *e) {
  WHICH(e, token_create);
  dfnet_v1_TokenCreate *t = &e->pb.msg.token_create;
  t->role = dfnet_v1_Role_HOST;
  SET(t->name_prefix, "rack3-");
  t->ttl_ms = 3600000;
  t->uses = 10;
  t->labels_count = 1;
  SET(t->labels[0].key, "rack");
  SET(t->labels[0].value, "3");
}
static void fill_token_info(dfnet_envelope_t *e) {
  WHICH(e, token_info);
  dfnet_v1_TokenInfo *t = &e->pb.msg.token_info;
  SET(t->id, "0a1b2c3d4e5f");
  SET(t->token, "0a1b2c3d4e5f.00112233445566778899aabbccddeeff");
  t->role = dfnet_v1_Role_HOST;
  SET(t->name, "lab-b");
  t->created_ms = 1796544000000ull;
  t->expires_ms = 1796547600000ull;
  t->uses_left = 1;
  SET(t->created_by, "root");
  SET(t->ca_pin, "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}
static void fill_token_list(dfnet_envelope_t *e) { WHICH(e, token_list); }
static void fill_token_revoke(dfnet_envelope_t *e) {
  WHICH(e, token_revoke);
  SET(e->pb.msg.token_revoke.id, "0a1b2c3d4e5f");
}
static void fill_enroll(dfnet_envelope_t *e) {
  WHICH(e, enroll);
  SET(e->pb.msg.enroll.token, "0a1b2c3d4e5f.00112233445566778899aabbccddeeff");
  e->pb.msg.enroll.csr_der.size = 200;
  memset(e->pb.msg.enroll.csr_der.bytes, 0x30, 200);
}
static void fill_enroll_result(dfnet_envelope_t *e) {
  dfnet_v1_EnrollResult *r = &e->pb.msg.enroll_result;
  WHICH(e, enroll_result);
  SET(r->certificate_pem, "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n");
  SET(r->ca_pem, "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n");
  r->labels_count = 1;
  SET(r->labels[0].key, "rack");
  SET(r->labels[0].value, "r3");
  SET(r->name, "board-7");
  r->role = dfnet_v1_Role_HOST;
  r->not_after_ms = 1800000000000ull;
}
static void fill_cert_renew(dfnet_envelope_t *e) {
  WHICH(e, cert_renew);
  e->pb.msg.cert_renew.csr_der.size = 180;
  memset(e->pb.msg.cert_renew.csr_der.bytes, 0x31, 180);
}
static void fill_cert_renew_result(dfnet_envelope_t *e) {
  WHICH(e, cert_renew_result);
  SET(e->pb.msg.cert_renew_result.certificate_pem, "-----BEGIN CERTIFICATE-----\n");
  e->pb.msg.cert_renew_result.not_after_ms = 1800000000000ull;
  SET(e->pb.msg.cert_renew_result.serial, "0a1b2c");
}
static void fill_call(dfnet_envelope_t *e) {
  uint64_t id = e->pb.id;
  sample_typical_call(e);
  e->pb.id = id;
}

static const struct {
  const char *name;
  void (*fill)(dfnet_envelope_t *);
} samples[] = {
    {"status", fill_status},
    {"hello", fill_hello},
    {"welcome", fill_welcome},
    {"node_add", fill_node_add},
    {"node_remove", fill_node_remove},
    {"node_update", fill_node_update},
    {"driver_start", fill_driver_start},
    {"driver_stop", fill_driver_stop},
    {"driver_status", fill_driver_status},
    {"driver_host_exit", fill_driver_host_exit},
    {"driver_suspend", fill_driver_suspend},
    {"driver_resume", fill_driver_resume},
    {"package_fetch", fill_package_fetch},
    {"package_chunk", fill_package_chunk},
    {"package_upload", fill_package_upload},
    {"call", fill_call},
    {"reply", fill_reply},
    {"cancel", fill_cancel},
    {"stream_credit", fill_stream_credit},
    {"list_hosts", fill_list_hosts},
    {"host_info", fill_host_info},
    {"list_nodes", fill_list_nodes},
    {"node_info", fill_node_info},
    {"list_drivers", fill_list_drivers},
    {"driver_info", fill_driver_info},
    {"list_composites", fill_list_composites},
    {"composite_info", fill_composite_info},
    {"add_composite_node_spec", fill_add_composite_node_spec},
    {"driver_control", fill_driver_control},
    {"driver_control_result", fill_driver_control_result},
    {"request_bind", fill_request_bind},
    {"bind_why", fill_bind_why},
    {"bind_trace", fill_bind_trace},
    {"watch", fill_watch},
    {"watch_event", fill_watch_event},
    {"unbind_node", fill_unbind_node},
    {"suspend_node", fill_suspend_node},
    {"resume_node", fill_resume_node},
    {"add_test_node", fill_add_test_node},
    {"remove_test_node", fill_remove_test_node},
    {"list_driver_hosts", fill_list_driver_hosts},
    {"driver_host_info", fill_driver_host_info},
    {"lease_acquire", fill_lease_acquire},
    {"lease_info", fill_lease_info},
    {"lease_renew", fill_lease_renew},
    {"lease_release", fill_lease_release},
    {"list_leases", fill_list_leases},
    {"lease_history", fill_lease_history},
    {"lease_audit_entry", fill_lease_audit_entry},
    {"artifact_open", fill_artifact_open},
    {"cert_list", fill_cert_list},
    {"cert_info", fill_cert_info},
    {"cert_revoke", fill_cert_revoke},
    {"cert_revoke_result", fill_cert_revoke_result},
    {"token_create", fill_token_create},
    {"token_info", fill_token_info},
    {"token_list", fill_token_list},
    {"token_revoke", fill_token_revoke},
    {"enroll", fill_enroll},
    {"enroll_result", fill_enroll_result},
    {"cert_renew", fill_cert_renew},
    {"cert_renew_result", fill_cert_renew_result},
};

size_t sample_count(void) { return sizeof samples / sizeof samples[0]; }

const char *sample_fill(size_t i, dfnet_envelope_t *env) {
  dfnet_envelope_init(env);
  env->pb.id = 100 + i;
  samples[i].fill(env);
  return samples[i].name;
}
