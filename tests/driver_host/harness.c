/* Test harness for dfnet-driver-host (harness.h). */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver_user.h"
#include "host/supervisor/resources.h"

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_envelope(void *arg, uint64_t host, const dfnet_envelope_t *env) {
  harness_t *h = arg;
  if (h->nrecs == h->cap) {
    h->cap = h->cap ? 2 * h->cap : 64;
    h->recs = realloc(h->recs, h->cap * sizeof *h->recs);
    if (h->recs == NULL)
      abort();
  }
  rec_t *r = &h->recs[h->nrecs++];
  memset(r, 0, sizeof *r);
  r->host = host;
  r->id = env->pb.id;
  r->which = env->pb.which_msg;
  if (env->bulk.size > 0) {
    r->bulk = malloc(env->bulk.size);
    memcpy(r->bulk, env->bulk.data, env->bulk.size);
    r->bulk_len = env->bulk.size;
  }
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_reply_tag:
    r->code = env->pb.msg.reply.code;
    r->eos = env->pb.msg.reply.end_of_stream;
    snprintf(r->message, sizeof r->message, "%s", env->pb.msg.reply.message);
    break;
  case dfnet_v1_Envelope_status_tag:
    r->code = env->pb.msg.status.code;
    r->eos = true;
    snprintf(r->message, sizeof r->message, "%s", env->pb.msg.status.message);
    break;
  case dfnet_v1_Envelope_node_add_tag: {
    const dfnet_v1_NodeAdd *m = &env->pb.msg.node_add;
    snprintf(r->parent, sizeof r->parent, "%s", m->parent);
    snprintf(r->name, sizeof r->name, "%s", m->name);
    snprintf(r->class_name, sizeof r->class_name, "%s", m->class_name);
    r->nprops = m->properties_count;
    r->owned = m->owned;
    if (h->answer_node_add) {
      dfnet_envelope_t *e = malloc(sizeof *e);
      dfnet_envelope_init(e);
      e->pb.id = env->pb.id;
      e->pb.which_msg = dfnet_v1_Envelope_status_tag;
      e->pb.msg.status.code = (dfnet_v1_Code)h->node_add_code;
      dfnet_supervisor_send(h->sup, host, e);
      free(e);
    }
    break;
  }
  case dfnet_v1_Envelope_node_remove_tag:
    snprintf(r->moniker, sizeof r->moniker, "%s", env->pb.msg.node_remove.moniker);
    break;
  case dfnet_v1_Envelope_call_tag: {
    const dfnet_v1_Call *m = &env->pb.msg.call;
    snprintf(r->target, sizeof r->target, "%s", m->target);
    snprintf(r->method, sizeof r->method, "%s", m->method);
    snprintf(r->caller, sizeof r->caller, "%s", m->caller);
    snprintf(r->caller_driver_url, sizeof r->caller_driver_url, "%s", m->caller_driver_url);
    r->deadline_ms = m->deadline_ms;
    r->credit = m->credit;
    break;
  }
  case dfnet_v1_Envelope_stream_credit_tag:
    r->credit = env->pb.msg.stream_credit.credit;
    break;
  case dfnet_v1_Envelope_cancel_tag:
    snprintf(r->message, sizeof r->message, "%s", env->pb.msg.cancel.reason);
    break;
  default:
    break;
  }
}

static void on_exit_cb(void *arg, const dfnet_driver_host_exit_t *x) {
  harness_t *h = arg;
  if (h->nexits == sizeof h->exits / sizeof h->exits[0])
    return;
  exit_rec_t *e = &h->exits[h->nexits++];
  memset(e, 0, sizeof *e);
  e->host = x->host_id;
  e->signal = x->signal;
  e->exit_code = x->exit_code;
  snprintf(e->reason, sizeof e->reason, "%s", x->reason);
  for (size_t i = 0; i < x->node_count; i++) {
    strncat(e->nodes, x->nodes[i], sizeof e->nodes - strlen(e->nodes) - 2);
    strcat(e->nodes, ",");
  }
}

/* The build tree's directories of drivers, which a sandboxed driver host may read. */
static const char *const *driver_dirs(void) {
  static char dirs[3][1024];
  static const char *list[4];
  const char *build = getenv("DFNET_BUILD_DIR");
  static const char *const sub[] = {"drivers", "tests/drivers", "tests/driver_host"};
  size_t n = 0;
  for (size_t i = 0; i < 3; i++) {
    snprintf(dirs[i], sizeof dirs[i], "%s/%s",
             build != NULL ? build : DFNET_TEST_DRIVER_DIR "/../..", sub[i]);
    if (access(dirs[i], F_OK) == 0)
      list[n++] = dirs[i];
  }
  list[n] = NULL;
  return list;
}

static harness_t *new_harness(bool sandboxed, const char *driver_host_path) {
  harness_t *h = calloc(1, sizeof *h);
  h->env = malloc(sizeof *h->env);
  h->next_id = 1000;
  static const char *const extra[] = {"--log-level", "warn", NULL};
  dfnet_supervisor_config_t cfg = {
      .driver_host_path = driver_host_path,
      .extra_args = getenv("DFNET_LOG_LEVEL") ? NULL : extra,
      .stop_grace_ms = 10000,
      .sandbox = {.enabled = sandboxed, .read_only = driver_dirs()},
      .on_envelope = on_envelope,
      .on_exit = on_exit_cb,
      .arg = h,
  };
  if (sandboxed && !test_driver_user(&cfg.sandbox.uid, &cfg.sandbox.gid))
    abort();
  if (dfnet_supervisor_new(&cfg, &h->sup) != DFNET_STATUS_OK)
    abort();
  return h;
}

harness_t *h_new_sandbox(bool sandboxed) {
  return new_harness(sandboxed, DFNET_DRIVER_HOST_BUILD_PATH);
}

harness_t *h_new_at(const char *driver_host_path) { return new_harness(true, driver_host_path); }

harness_t *h_new(void) { return h_new_sandbox(true); }

void h_free(harness_t *h) {
  dfnet_supervisor_free(h->sup);
  for (size_t i = 0; i < h->nrecs; i++)
    free(h->recs[i].bulk);
  free(h->recs);
  free(h->env);
  free(h);
}

bool h_pump_until(harness_t *h, int ms, h_pred until, const void *arg) {
  long long end = now_ms() + ms;
  for (;;) {
    dfnet_supervisor_dispatch(h->sup);
    if (until != NULL && until(h, arg))
      return true;
    long long left = end - now_ms();
    if (left <= 0)
      return false;
    struct pollfd p = {.fd = dfnet_supervisor_fd(h->sup), .events = POLLIN};
    poll(&p, 1, (int)left);
  }
}

void h_pump(harness_t *h, int ms) { h_pump_until(h, ms, NULL, NULL); }

const char *h_driver(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s.so", DFNET_TEST_DRIVER_DIR, name);
  return path;
}

uint64_t h_spawn(harness_t *h) {
  uint64_t id = 0;
  if (dfnet_supervisor_spawn(h->sup, &id, NULL) != DFNET_STATUS_OK)
    abort();
  return id;
}

static rec_t *find_final(harness_t *h, uint64_t id) {
  for (size_t i = 0; i < h->nrecs; i++)
    if (h->recs[i].id == id && h->recs[i].eos &&
        (h->recs[i].which == dfnet_v1_Envelope_reply_tag ||
         h->recs[i].which == dfnet_v1_Envelope_status_tag))
      return &h->recs[i];
  return NULL;
}

static bool has_final(harness_t *h, const void *arg) {
  return find_final(h, *(const uint64_t *)arg) != NULL;
}

rec_t *h_final(harness_t *h, uint64_t id) {
  h_pump_until(h, 10000, has_final, &id);
  return find_final(h, id);
}

size_t h_count_finals(harness_t *h, uint64_t id) {
  size_t n = 0;
  for (size_t i = 0; i < h->nrecs; i++)
    n += h->recs[i].id == id && h->recs[i].eos &&
         (h->recs[i].which == dfnet_v1_Envelope_reply_tag ||
          h->recs[i].which == dfnet_v1_Envelope_status_tag);
  return n;
}

size_t h_count_items(harness_t *h, uint64_t id) {
  size_t n = 0;
  for (size_t i = 0; i < h->nrecs; i++)
    n += h->recs[i].id == id && h->recs[i].which == dfnet_v1_Envelope_reply_tag && !h->recs[i].eos;
  return n;
}

size_t h_final_index(harness_t *h, uint64_t id) {
  rec_t *r = find_final(h, id);
  return r == NULL ? SIZE_MAX : (size_t)(r - h->recs);
}

/* Fill h->env with a DriverStart (id, node, binary, properties, offers; no program). */
static void fill_start(harness_t *h, uint64_t id, const char *node, const char *so,
                       const char *dispatcher_opt, const char *const *props,
                       const char *const (*offered)[3], size_t noffered) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  e->pb.id = id;
  e->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &e->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", node);
  snprintf(m->url, sizeof m->url, "dfnet-test://%s", strrchr(so, '/') + 1);
  snprintf(m->binary, sizeof m->binary, "%s", strrchr(so, '/') + 1);
  snprintf(m->local_path, sizeof m->local_path, "%.*s", (int)(strrchr(so, '/') - so), so);
  if (dispatcher_opt != NULL) {
    m->dispatcher_opts_count = 1;
    snprintf(m->dispatcher_opts[0], sizeof m->dispatcher_opts[0], "%s", dispatcher_opt);
  }
  m->properties_count = 1;
  m->properties[0].which_key = dfnet_v1_NodeProperty_int_key_tag;
  m->properties[0].key.int_key = 1;
  m->properties[0].which_value = dfnet_v1_NodeProperty_int_value_tag;
  m->properties[0].value.int_value = 0x1f;
  for (size_t i = 0; props != NULL && props[i] != NULL; i += 2) {
    dfnet_v1_NodeProperty *p = &m->properties[m->properties_count++];
    p->which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(p->key.str_key, sizeof p->key.str_key, "%s", props[i]);
    if (strcmp(props[i + 1], "true") == 0) {
      p->which_value = dfnet_v1_NodeProperty_bool_value_tag;
      p->value.bool_value = true;
    } else {
      p->which_value = dfnet_v1_NodeProperty_str_value_tag;
      snprintf(p->value.str_value, sizeof p->value.str_value, "%s", props[i + 1]);
    }
  }
  for (size_t i = 0; i < noffered; i++) {
    dfnet_v1_Offer *o = &m->offered[m->offered_count++];
    snprintf(o->service, sizeof o->service, "%s", offered[i][0]);
    snprintf(o->instance, sizeof o->instance, "%s", offered[i][1]);
    snprintf(o->source, sizeof o->source, "%s", offered[i][2]);
  }
}

/* Send h->env, a DriverStart whose bulk is `program` (may be NULL), with the program's
 * "resources" opened as dfnet-host opens them (every one allowed) and handed. */
static dfnet_status_t send_start(harness_t *h, uint64_t host, const char *program) {
  dfnet_envelope_t *e = h->env;
  dfnet_v1_DriverStart *m = &e->pb.msg.driver_start;
  e->bulk.data = (const uint8_t *)program;
  e->bulk.size = program != NULL ? strlen(program) : 0;
  dfnet_manifest_resource_t listed[DFNET_MANIFEST_RESOURCES_MAX];
  const char *allow[DFNET_MANIFEST_RESOURCES_MAX];
  size_t nlisted = 0;
  if (program != NULL && dfnet_manifest_resources_parse(program, e->bulk.size, listed, &nlisted,
                                                        NULL, 0) != DFNET_STATUS_OK)
    nlisted = 0; /* dfnet_resources_open says why */
  for (size_t i = 0; i < nlisted; i++)
    allow[i] = listed[i].path;
  const dfnet_resource_source_t src = {
      .program_json = program, .program_len = e->bulk.size, .allow = allow, .allow_count = nlisted};
  dfnet_resource_set_t res;
  char why[600] = "";
  dfnet_status_t st = dfnet_resources_open(&src, &res, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "harness: DriverStart of %s not sent: %s: %s\n", m->node, dfnet_status_str(st),
            why);
    return st;
  }
  int fds[DFNET_RESOURCES_MAX];
  for (size_t i = 0; i < res.count; i++) {
    snprintf(m->resources[m->resources_count++], sizeof m->resources[0], "%s", res.items[i].name);
    fds[i] = res.items[i].fd;
  }
  st = dfnet_supervisor_send_fds(h->sup, host, e, fds, res.count);
  dfnet_resources_close(&res);
  return st;
}

static int start(harness_t *h, uint64_t host, const char *node, const char *so,
                 const char *dispatcher_opt, const char *const *props,
                 const char *const (*offered)[3], size_t noffered, rec_t **status_out) {
  uint64_t id = h->next_id++;
  fill_start(h, id, node, so, dispatcher_opt, props, offered, noffered);
  static const char program[] = "{\"runner\":\"driver\",\"colocate\":\"false\"}";
  if (send_start(h, host, program) != DFNET_STATUS_OK)
    return -1;
  rec_t *r = h_final(h, id);
  if (status_out != NULL)
    *status_out = r;
  return r == NULL ? -1 : r->code;
}

int h_start(harness_t *h, uint64_t host, const char *node, const char *so,
            const char *dispatcher_opt, const char *const *props, rec_t **status_out) {
  return start(h, host, node, so, dispatcher_opt, props, NULL, 0, status_out);
}

int h_start_offered(harness_t *h, uint64_t host, const char *node, const char *so,
                    const char *const *props, const char *const (*offered)[3], size_t n,
                    rec_t **status_out) {
  return start(h, host, node, so, NULL, props, offered, n, status_out);
}

uint64_t h_start_send(harness_t *h, uint64_t host, const char *node, const char *so,
                      const char *const *props, const char *program, uint32_t start_timeout_ms) {
  uint64_t id = h->next_id++;
  fill_start(h, id, node, so, NULL, props, NULL, 0);
  h->env->pb.msg.driver_start.start_timeout_ms = start_timeout_ms;
  return send_start(h, host, program) == DFNET_STATUS_OK ? id : 0;
}

uint64_t h_start_send_fds(harness_t *h, uint64_t host, const char *node, const char *so,
                          const char *program, const char *const *names, size_t nnames,
                          const int *fds, size_t nfds) {
  return h_start_send_props_fds(h, host, node, so, NULL, program, names, nnames, fds, nfds);
}

uint64_t h_start_send_props_fds(harness_t *h, uint64_t host, const char *node, const char *so,
                                const char *const *props, const char *program,
                                const char *const *names, size_t nnames, const int *fds,
                                size_t nfds) {
  uint64_t id = h->next_id++;
  fill_start(h, id, node, so, NULL, props, NULL, 0);
  dfnet_envelope_t *e = h->env;
  dfnet_v1_DriverStart *m = &e->pb.msg.driver_start;
  for (size_t i = 0; i < nnames && i < sizeof m->resources / sizeof m->resources[0]; i++)
    snprintf(m->resources[m->resources_count++], sizeof m->resources[0], "%s", names[i]);
  e->bulk.data = (const uint8_t *)program;
  e->bulk.size = program != NULL ? strlen(program) : 0;
  return dfnet_supervisor_send_fds(h->sup, host, e, fds, nfds) == DFNET_STATUS_OK ? id : 0;
}

int h_control(harness_t *h, uint64_t host, const char *node, bool resume, uint32_t flags,
              rec_t **status_out) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  uint64_t id = h->next_id++;
  e->pb.id = id;
  if (resume) {
    e->pb.which_msg = dfnet_v1_Envelope_driver_resume_tag;
    snprintf(e->pb.msg.driver_resume.node, sizeof e->pb.msg.driver_resume.node, "%s", node);
  } else {
    e->pb.which_msg = dfnet_v1_Envelope_driver_suspend_tag;
    snprintf(e->pb.msg.driver_suspend.node, sizeof e->pb.msg.driver_suspend.node, "%s", node);
    e->pb.msg.driver_suspend.flags = flags;
  }
  if (dfnet_supervisor_send(h->sup, host, e) != DFNET_STATUS_OK)
    return -1;
  rec_t *r = h_final(h, id);
  if (status_out != NULL)
    *status_out = r;
  return r == NULL ? -1 : r->code;
}

int h_reply(harness_t *h, uint64_t host, uint64_t id, int code, const char *message, bool eos,
            const void *data, size_t len) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  e->pb.id = id;
  e->pb.which_msg = dfnet_v1_Envelope_reply_tag;
  e->pb.msg.reply.code = (dfnet_v1_Code)code;
  e->pb.msg.reply.end_of_stream = eos;
  snprintf(e->pb.msg.reply.message, sizeof e->pb.msg.reply.message, "%s", message ? message : "");
  e->bulk.data = data;
  e->bulk.size = len;
  return dfnet_supervisor_send(h->sup, host, e);
}

int h_status(harness_t *h, uint64_t host, uint64_t id, int code, const char *message) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  e->pb.id = id;
  e->pb.which_msg = dfnet_v1_Envelope_status_tag;
  e->pb.msg.status.code = (dfnet_v1_Code)code;
  snprintf(e->pb.msg.status.message, sizeof e->pb.msg.status.message, "%s", message ? message : "");
  return dfnet_supervisor_send(h->sup, host, e);
}

typedef struct id_q {
  pb_size_t which;
  uint64_t id;
  size_t skip;
} id_q_t;

static rec_t *find_id(harness_t *h, const id_q_t *q) {
  size_t skip = q->skip;
  for (size_t i = 0; i < h->nrecs; i++)
    if (h->recs[i].which == q->which && h->recs[i].id == q->id && skip-- == 0)
      return &h->recs[i];
  return NULL;
}

static bool has_id(harness_t *h, const void *arg) { return find_id(h, arg) != NULL; }

rec_t *h_wait_id(harness_t *h, pb_size_t which, uint64_t id, size_t skip, int ms) {
  id_q_t q = {which, id, skip};
  h_pump_until(h, ms, has_id, &q);
  return find_id(h, &q);
}

int h_stop(harness_t *h, uint64_t host, const char *node) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  uint64_t id = h->next_id++;
  e->pb.id = id;
  e->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
  snprintf(e->pb.msg.driver_stop.node, sizeof e->pb.msg.driver_stop.node, "%s", node);
  if (dfnet_supervisor_send(h->sup, host, e) != DFNET_STATUS_OK)
    return -1;
  rec_t *r = h_final(h, id);
  return r == NULL ? -1 : r->code;
}

uint64_t h_call(harness_t *h, uint64_t host, const char *target, const char *method,
                const void *data, size_t len, uint32_t deadline_ms, uint32_t credit) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  uint64_t id = h->next_id++;
  e->pb.id = id;
  e->pb.which_msg = dfnet_v1_Envelope_call_tag;
  dfnet_v1_Call *m = &e->pb.msg.call;
  snprintf(m->target, sizeof m->target, "%s", target);
  snprintf(m->method, sizeof m->method, "%s", method);
  m->deadline_ms = deadline_ms;
  m->credit = credit;
  e->bulk.data = data;
  e->bulk.size = len;
  if (dfnet_supervisor_send(h->sup, host, e) != DFNET_STATUS_OK)
    return 0;
  return id;
}

static int send_about(harness_t *h, uint64_t host, uint64_t id, pb_size_t which, uint32_t credit) {
  dfnet_envelope_t *e = h->env;
  dfnet_envelope_init(e);
  e->pb.id = id;
  e->pb.which_msg = which;
  if (which == dfnet_v1_Envelope_stream_credit_tag)
    e->pb.msg.stream_credit.credit = credit;
  return dfnet_supervisor_send(h->sup, host, e);
}

int h_cancel(harness_t *h, uint64_t host, uint64_t id) {
  return send_about(h, host, id, dfnet_v1_Envelope_cancel_tag, 0);
}

int h_credit(harness_t *h, uint64_t host, uint64_t id, uint32_t credit) {
  return send_about(h, host, id, dfnet_v1_Envelope_stream_credit_tag, credit);
}

static bool has_exit(harness_t *h, const void *arg) {
  for (size_t i = 0; i < h->nexits; i++)
    if (h->exits[i].host == *(const uint64_t *)arg)
      return true;
  return false;
}

exit_rec_t *h_wait_exit(harness_t *h, uint64_t host) {
  h_pump_until(h, 15000, has_exit, &host);
  for (size_t i = 0; i < h->nexits; i++)
    if (h->exits[i].host == host)
      return &h->exits[i];
  return NULL;
}

typedef struct msg_q {
  pb_size_t which;
  size_t skip;
} msg_q_t;

static rec_t *find_msg(harness_t *h, pb_size_t which, size_t skip) {
  for (size_t i = 0; i < h->nrecs; i++)
    if (h->recs[i].which == which && skip-- == 0)
      return &h->recs[i];
  return NULL;
}

static bool has_msg(harness_t *h, const void *arg) {
  const msg_q_t *q = arg;
  return find_msg(h, q->which, q->skip) != NULL;
}

rec_t *h_wait_msg(harness_t *h, pb_size_t which, size_t skip) {
  msg_q_t q = {which, skip};
  h_pump_until(h, 10000, has_msg, &q);
  return find_msg(h, which, skip);
}

void h_close_clean(harness_t *h, uint64_t host) {
  assert_int_equal(dfnet_supervisor_close(h->sup, host), DFNET_STATUS_OK);
  exit_rec_t *x = h_wait_exit(h, host);
  assert_non_null(x);
  assert_int_equal(x->signal, 0);
  assert_int_equal(x->exit_code, 0);
}
