/* Test bench for the hardware drivers (harness.h). */
#include "harness.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "driver_user.h"
#include "host/supervisor/resources.h"
#include "lib/envelope.h"

typedef struct hw_env {
  dfnet_envelope_t env; /* bulk points at `bulk` below */
  uint8_t *bulk;
  struct hw_env *next;
} hw_env_t;

typedef struct hw_child {
  char moniker[700];
  char class_name[32];
  dfnet_v1_NodeAdd *node; /* the NodeAdd as the driver sent it */
  struct hw_child *next;
} hw_child_t;

typedef struct hw_removed {
  char moniker[512];
  struct hw_removed *next;
} hw_removed_t;

struct hw_bench {
  dfnet_supervisor_t *sup;
  uint64_t host_id;
  uint64_t next_id;
  hw_env_t *head;
  hw_env_t **tail;
  hw_child_t *children;
  hw_removed_t *removed;
  bool exited;
  FILE *log; /* the driver host's stderr */
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *hw_package_dir(const char *name) {
  static char path[1024];
  const char *build = getenv("DFNET_BUILD_DIR");
  snprintf(path, sizeof path, "%s/drivers/%s", build != NULL ? build : ".", name);
  return path;
}

bool hw_test_package(char *dir, size_t cap, const char *name, const char *so, const char *config) {
  /* beneath the build's tests/drivers, a directory the sandboxed driver host may read (by
   * its descriptor: the directories above the build may be closed to the driver user, as a
   * clone in a 0700 home is), the binary a relative link to its neighbour there */
  const char *build = getenv("DFNET_BUILD_DIR");
  snprintf(dir, cap, "%s/tests/drivers/pkg-XXXXXX", build != NULL ? build : ".");
  if (mkdtemp(dir) == NULL || chmod(dir, 0755) != 0) {
    perror("hw_test_package: mkdtemp");
    return false;
  }
  char cmd[3000], path[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/meta' '%s/driver' && ln -s '../../%s' '%s/driver/%s.so'",
           dir, dir, so, dir, name);
  snprintf(path, sizeof path, "%s/meta/%s.json", dir, name);
  FILE *f = system(cmd) == 0 ? fopen(path, "w") : NULL;
  if (f == NULL) {
    fprintf(stderr, "hw_test_package: cannot make %s\n", path);
    return false;
  }
  fprintf(f,
          "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/%s.so\", "
          "\"bind\": \"meta/bind/%s.bindbc\", \"default_dispatcher_opts\": [], "
          "\"config\": {%s}}}\n",
          name, name, config);
  return fclose(f) == 0;
}

void hw_test_package_remove(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "hw_test_package_remove: cannot remove %s\n", dir);
}

static void answer(hw_bench_t *b, uint64_t id) {
  dfnet_envelope_t *st = calloc(1, sizeof *st);
  if (st == NULL)
    return;
  dfnet_envelope_init(st);
  st->pb.id = id;
  st->pb.which_msg = dfnet_v1_Envelope_status_tag;
  st->pb.msg.status.code = dfnet_v1_Code_OK;
  (void)dfnet_supervisor_send(b->sup, b->host_id, st);
  free(st);
}

static void on_envelope(void *arg, uint64_t host_id, const dfnet_envelope_t *env) {
  (void)host_id;
  hw_bench_t *b = arg;
  if (env->pb.which_msg == dfnet_v1_Envelope_node_add_tag) {
    hw_child_t *c = calloc(1, sizeof *c);
    if (c != NULL && (c->node = malloc(sizeof *c->node)) != NULL) {
      const dfnet_v1_NodeAdd *m = &env->pb.msg.node_add;
      snprintf(c->moniker, sizeof c->moniker, "%s.%s", m->parent, m->name);
      snprintf(c->class_name, sizeof c->class_name, "%s", m->class_name);
      *c->node = *m;
      c->next = b->children;
      b->children = c;
    } else {
      free(c);
    }
    answer(b, env->pb.id);
    return;
  }
  if (env->pb.which_msg == dfnet_v1_Envelope_node_remove_tag) {
    hw_removed_t *r = calloc(1, sizeof *r);
    if (r != NULL) {
      snprintf(r->moniker, sizeof r->moniker, "%s", env->pb.msg.node_remove.moniker);
      r->next = b->removed;
      b->removed = r;
    }
    answer(b, env->pb.id);
    return;
  }
  hw_env_t *e = calloc(1, sizeof *e);
  if (e == NULL)
    return;
  e->env = *env;
  if (env->bulk.size > 0) {
    e->bulk = malloc(env->bulk.size + 1);
    if (e->bulk == NULL) {
      free(e);
      return;
    }
    memcpy(e->bulk, env->bulk.data, env->bulk.size);
    e->bulk[env->bulk.size] = 0;
  }
  e->env.bulk.data = e->bulk;
  *b->tail = e;
  b->tail = &e->next;
}

static void on_exit_cb(void *arg, const dfnet_driver_host_exit_t *exit) {
  hw_bench_t *b = arg;
  fprintf(stderr, "harness: driver host %llu ended: %s\n", (unsigned long long)exit->host_id,
          exit->reason);
  b->exited = true;
}

/* The build tree's directories of drivers, which the sandboxed driver host may read. */
static const char *const *driver_dirs(void) {
  static char dirs[2][1024];
  static const char *list[3];
  const char *build = getenv("DFNET_BUILD_DIR");
  snprintf(dirs[0], sizeof dirs[0], "%s/drivers", build != NULL ? build : ".");
  snprintf(dirs[1], sizeof dirs[1], "%s/tests/drivers", build != NULL ? build : ".");
  list[0] = dirs[0];
  list[1] = dirs[1];
  list[2] = NULL;
  return list;
}

hw_bench_t *hw_bench_new(void) { return hw_bench_new_sandbox(true); }

hw_bench_t *hw_bench_new_sandbox(bool sandboxed) {
  hw_bench_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->tail = &b->head;
  b->next_id = 100;
  /* The driver host inherits stderr: give it a file the test can read (hw_bench_log). */
  char path[] = "/tmp/dfnet-hw-log-XXXXXX";
  int fd = mkstemp(path);
  int saved = -1;
  if (fd >= 0) {
    /* The driver host appends through its own file description; the test reads through
     * another, so neither moves the other's offset. */
    int wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    unlink(path);
    b->log = fdopen(fd, "r");
    saved = wfd >= 0 ? dup(STDERR_FILENO) : -1;
    if (saved >= 0)
      dup2(wfd, STDERR_FILENO);
    if (wfd >= 0)
      close(wfd);
  }
  dfnet_supervisor_config_t cfg = {
      .driver_host_path = getenv("DFNET_DRIVER_HOST") ? NULL : DFNET_DRIVER_HOST_BUILD_PATH,
      .stop_grace_ms = 3000,
      .sandbox = {.enabled = sandboxed, .read_only = driver_dirs()},
      .on_envelope = on_envelope,
      .on_exit = on_exit_cb,
      .arg = b,
  };
  bool ok = (!sandboxed || test_driver_user(&cfg.sandbox.uid, &cfg.sandbox.gid)) &&
            dfnet_supervisor_new(&cfg, &b->sup) == DFNET_STATUS_OK &&
            dfnet_supervisor_spawn(b->sup, &b->host_id, NULL) == DFNET_STATUS_OK;
  if (saved >= 0) {
    dup2(saved, STDERR_FILENO);
    close(saved);
  }
  if (!ok) {
    hw_bench_free(b);
    return NULL;
  }
  return b;
}

void hw_bench_free(hw_bench_t *b) {
  if (b == NULL)
    return;
  dfnet_supervisor_free(b->sup);
  if (b->log != NULL) {
    /* Show the driver host's log with the test's output. */
    char buf[4096];
    size_t n;
    rewind(b->log);
    while ((n = fread(buf, 1, sizeof buf, b->log)) > 0)
      fwrite(buf, 1, n, stderr);
    fclose(b->log);
  }
  while (b->head != NULL) {
    hw_env_t *e = b->head;
    b->head = e->next;
    free(e->bulk);
    free(e);
  }
  while (b->children != NULL) {
    hw_child_t *c = b->children;
    b->children = c->next;
    free(c->node);
    free(c);
  }
  while (b->removed != NULL) {
    hw_removed_t *r = b->removed;
    b->removed = r->next;
    free(r);
  }
  free(b);
}

/* Take the first queued envelope with this id, waiting up to timeout_ms. */
static hw_env_t *take(hw_bench_t *b, uint64_t id, uint32_t timeout_ms) {
  uint64_t until = now_ms() + timeout_ms;
  for (;;) {
    for (hw_env_t **p = &b->head; *p != NULL; p = &(*p)->next) {
      if ((*p)->env.pb.id != id)
        continue;
      hw_env_t *e = *p;
      *p = e->next;
      if (b->tail == &e->next)
        b->tail = p;
      e->next = NULL;
      return e;
    }
    uint64_t now = now_ms();
    if (now >= until)
      return NULL;
    struct pollfd pfd = {.fd = dfnet_supervisor_fd(b->sup), .events = POLLIN};
    (void)poll(&pfd, 1, (int)(until - now));
    dfnet_supervisor_dispatch(b->sup);
  }
}

static void free_env(hw_env_t *e) {
  if (e != NULL)
    free(e->bulk);
  free(e);
}

static dfnet_status_t send_env(hw_bench_t *b, dfnet_envelope_t *env) {
  return dfnet_supervisor_send(b->sup, b->host_id, env);
}

static dfnet_status_t wait_status(hw_bench_t *b, uint64_t id, char *msg, size_t cap) {
  hw_env_t *e = take(b, id, HW_WAIT_MS);
  dfnet_status_t st = DFNET_STATUS_DEADLINE_EXCEEDED;
  const char *text = "no Status from the driver host in time";
  if (e != NULL && e->env.pb.which_msg == dfnet_v1_Envelope_status_tag) {
    st = (dfnet_status_t)e->env.pb.msg.status.code;
    text = e->env.pb.msg.status.message;
  } else if (e != NULL) {
    st = DFNET_STATUS_INTERNAL;
    text = "unexpected answer";
  }
  if (msg != NULL)
    snprintf(msg, cap, "%s", text);
  if (st != DFNET_STATUS_OK)
    fprintf(stderr, "harness: request %llu: %s: %s\n", (unsigned long long)id, dfnet_status_str(st),
            text);
  free_env(e);
  return st;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *text = calloc(1, 65537);
  size_t n = text != NULL ? fread(text, 1, 65536, f) : 0;
  (void)n;
  fclose(f);
  return text;
}

static void fill_prop(dfnet_v1_NodeProperty *p, const hw_prop_t *in) {
  if (in->int_key != 0) {
    p->which_key = dfnet_v1_NodeProperty_int_key_tag;
    p->key.int_key = in->int_key;
  } else {
    p->which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(p->key.str_key, sizeof p->key.str_key, "%s", in->str_key);
  }
  if (in->is_string) {
    p->which_value = dfnet_v1_NodeProperty_str_value_tag;
    snprintf(p->value.str_value, sizeof p->value.str_value, "%s", in->str_value);
  } else {
    p->which_value = dfnet_v1_NodeProperty_int_value_tag;
    p->value.int_value = in->uint_value;
  }
}

dfnet_status_t hw_start(hw_bench_t *b, const char *name, const char *moniker,
                        const hw_prop_t *props, size_t prop_count, const char *program_extra,
                        char *msg, size_t cap) {
  const hw_driver_t d = {.name = name,
                         .moniker = moniker,
                         .props = props,
                         .prop_count = prop_count,
                         .program_extra = program_extra};
  return hw_start_driver(b, &d, msg, cap);
}

dfnet_status_t hw_start_driver(hw_bench_t *b, const hw_driver_t *d, char *msg, size_t cap) {
  const char *name = d->name, *moniker = d->moniker, *program_extra = d->program_extra;
  const hw_prop_t *props = d->props;
  size_t prop_count = d->prop_count;
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s", d->package_dir != NULL ? d->package_dir : hw_package_dir(name));
  snprintf(path, sizeof path, "%s/meta/%s.json", dir, name);
  char *text = read_file(path);
  cJSON *manifest = text != NULL ? cJSON_Parse(text) : NULL;
  free(text);
  cJSON *program = cJSON_GetObjectItemCaseSensitive(manifest, "program");
  if (program == NULL) {
    if (msg != NULL)
      snprintf(msg, cap, "no manifest at %s", path);
    cJSON_Delete(manifest);
    return DFNET_STATUS_NOT_FOUND;
  }
  cJSON *extra = program_extra != NULL ? cJSON_Parse(program_extra) : NULL;
  cJSON *item;
  cJSON_ArrayForEach(item, extra) {
    cJSON_DeleteItemFromObjectCaseSensitive(program, item->string);
    cJSON_AddItemToObject(program, item->string, cJSON_Duplicate(item, true));
  }
  cJSON_Delete(extra);

  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_envelope_init(env);
  env->pb.id = b->next_id++;
  env->pb.which_msg = dfnet_v1_Envelope_driver_start_tag;
  dfnet_v1_DriverStart *m = &env->pb.msg.driver_start;
  snprintf(m->node, sizeof m->node, "%s", moniker);
  snprintf(m->url, sizeof m->url, "dfnet-boot:///%s", name);
  snprintf(m->binary, sizeof m->binary, "%s",
           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(program, "binary")));
  snprintf(m->local_path, sizeof m->local_path, "%.255s", dir);
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(program, "default_dispatcher_opts")) {
    if (cJSON_IsString(item) && m->dispatcher_opts_count < 4)
      snprintf(m->dispatcher_opts[m->dispatcher_opts_count++], sizeof m->dispatcher_opts[0], "%s",
               item->valuestring);
  }
  for (size_t i = 0; i < prop_count && i < 64; i++)
    fill_prop(&m->properties[m->properties_count++], &props[i]);
  for (size_t i = 0; i < d->offer_count && i < sizeof m->offered / sizeof m->offered[0]; i++) {
    dfnet_v1_Offer *o = &m->offered[m->offered_count++];
    snprintf(o->service, sizeof o->service, "%s", d->offers[i].service);
    snprintf(o->instance, sizeof o->instance, "%s",
             d->offers[i].instance != NULL ? d->offers[i].instance : "default");
    snprintf(o->source, sizeof o->source, "%s", d->offers[i].source);
    if (m->offers_count < sizeof m->offers / sizeof m->offers[0])
      snprintf(m->offers[m->offers_count++], sizeof m->offers[0], "%s", d->offers[i].service);
  }
  char *json = cJSON_PrintUnformatted(program);
  cJSON_Delete(manifest);
  env->bulk.data = (const uint8_t *)json;
  env->bulk.size = json != NULL ? strlen(json) : 0;
  uint64_t id = env->pb.id;
  /* The node's resources, opened as the agent opens them (host/supervisor/resources.h) for a
   * node of its own: from the properties, and the manifest's, each allowed by name. */
  dfnet_manifest_resource_t listed[DFNET_MANIFEST_RESOURCES_MAX];
  const char *allow[DFNET_MANIFEST_RESOURCES_MAX];
  size_t nlisted = 0;
  if (dfnet_manifest_resources_parse(json, env->bulk.size, listed, &nlisted, NULL, 0) !=
      DFNET_STATUS_OK)
    nlisted = 0; /* dfnet_resources_open says why */
  for (size_t i = 0; i < nlisted; i++)
    allow[i] = listed[i].path;
  const dfnet_resource_source_t src = {.properties = d->untrusted ? NULL : m->properties,
                                       .property_count = d->untrusted ? 0 : m->properties_count,
                                       .program_json = json,
                                       .program_len = env->bulk.size,
                                       .allow = allow,
                                       .allow_count = nlisted};
  dfnet_resource_set_t *res = calloc(1, sizeof *res);
  char why[600] = "";
  dfnet_status_t st = dfnet_resources_open(&src, res, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "harness: DriverStart of %s not sent: %s: %s\n", moniker, dfnet_status_str(st),
            why);
    if (msg != NULL)
      snprintf(msg, cap, "%s", why);
    free(res);
    free(env);
    free(json);
    return st;
  }
  int fds[DFNET_RESOURCES_MAX];
  for (size_t i = 0; i < res->count; i++) {
    snprintf(m->resources[i], sizeof m->resources[i], "%s", res->items[i].name);
    fds[i] = res->items[i].fd;
  }
  m->resources_count = (pb_size_t)res->count;
  st = dfnet_supervisor_send_fds(b->sup, b->host_id, env, fds, res->count);
  dfnet_resources_close(res);
  free(res);
  free(env);
  free(json);
  if (st != DFNET_STATUS_OK)
    return st;
  return wait_status(b, id, msg, cap);
}

dfnet_status_t hw_stop(hw_bench_t *b, const char *moniker) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_envelope_init(env);
  env->pb.id = b->next_id++;
  env->pb.which_msg = dfnet_v1_Envelope_driver_stop_tag;
  snprintf(env->pb.msg.driver_stop.node, sizeof env->pb.msg.driver_stop.node, "%s", moniker);
  uint64_t id = env->pb.id;
  dfnet_status_t st = send_env(b, env);
  free(env);
  return st != DFNET_STATUS_OK ? st : wait_status(b, id, NULL, 0);
}

static hw_child_t *find_child(hw_bench_t *b, const char *child_moniker) {
  /* Let a NodeAdd sent right after start arrive. */
  for (int i = 0; i < 50; i++) {
    for (hw_child_t *c = b->children; c != NULL; c = c->next)
      if (strcmp(c->moniker, child_moniker) == 0)
        return c;
    struct pollfd pfd = {.fd = dfnet_supervisor_fd(b->sup), .events = POLLIN};
    (void)poll(&pfd, 1, 20);
    dfnet_supervisor_dispatch(b->sup);
  }
  return NULL;
}

const char *hw_child_class(hw_bench_t *b, const char *child_moniker) {
  hw_child_t *c = find_child(b, child_moniker);
  return c != NULL ? c->class_name : NULL;
}

const dfnet_v1_NodeAdd *hw_child_node(hw_bench_t *b, const char *child_moniker) {
  hw_child_t *c = find_child(b, child_moniker);
  return c != NULL ? c->node : NULL;
}

size_t hw_child_removed(hw_bench_t *b, const char *moniker) {
  /* Let a NodeRemove sent just before arrive. */
  for (int i = 0; i < 10; i++) {
    struct pollfd pfd = {.fd = dfnet_supervisor_fd(b->sup), .events = POLLIN};
    (void)poll(&pfd, 1, 10);
    dfnet_supervisor_dispatch(b->sup);
  }
  size_t n = 0;
  for (hw_removed_t *r = b->removed; r != NULL; r = r->next)
    n += strcmp(r->moniker, moniker) == 0;
  return n;
}

uint64_t hw_call_start(hw_bench_t *b, const char *target, const char *method, const void *request,
                       size_t len, uint32_t credit) {
  return hw_call_start_as(b, "", target, method, request, len, credit);
}

uint64_t hw_call_start_as(hw_bench_t *b, const char *caller, const char *target, const char *method,
                          const void *request, size_t len, uint32_t credit) {
  const hw_caller_t who = {.name = caller, .driver_url = ""};
  return hw_call_start_by(b, &who, target, method, request, len, credit);
}

uint64_t hw_call_start_by(hw_bench_t *b, const hw_caller_t *who, const char *target,
                          const char *method, const void *request, size_t len, uint32_t credit) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_envelope_init(env);
  env->pb.id = b->next_id++;
  env->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(env->pb.msg.call.caller, sizeof env->pb.msg.call.caller, "%s", who->name);
  snprintf(env->pb.msg.call.caller_driver_url, sizeof env->pb.msg.call.caller_driver_url, "%s",
           who->driver_url != NULL ? who->driver_url : "");
  snprintf(env->pb.msg.call.target, sizeof env->pb.msg.call.target, "%s", target);
  snprintf(env->pb.msg.call.method, sizeof env->pb.msg.call.method, "%s", method);
  env->pb.msg.call.credit = credit;
  env->bulk.data = request;
  env->bulk.size = len;
  uint64_t id = env->pb.id;
  dfnet_status_t st = send_env(b, env);
  free(env);
  return st == DFNET_STATUS_OK ? id : 0;
}

static void to_reply(hw_env_t *e, hw_reply_t *out) {
  memset(out, 0, sizeof *out);
  if (e->env.pb.which_msg != dfnet_v1_Envelope_reply_tag) {
    out->code = DFNET_STATUS_INTERNAL;
    snprintf(out->message, sizeof out->message, "not a Reply: %s",
             dfnet_envelope_msg_name(e->env.pb.which_msg));
    out->end_of_stream = true;
    return;
  }
  out->code = (dfnet_status_t)e->env.pb.msg.reply.code;
  snprintf(out->message, sizeof out->message, "%s", e->env.pb.msg.reply.message);
  out->end_of_stream = e->env.pb.msg.reply.end_of_stream;
  out->data = e->bulk;
  out->size = e->env.bulk.size;
  e->bulk = NULL;
}

bool hw_next_reply(hw_bench_t *b, uint64_t id, uint32_t timeout_ms, hw_reply_t *out) {
  hw_env_t *e = take(b, id, timeout_ms);
  if (e == NULL)
    return false;
  to_reply(e, out);
  free_env(e);
  return true;
}

dfnet_status_t hw_call(hw_bench_t *b, const char *target, const char *method, const void *request,
                       size_t len, uint32_t deadline_ms, hw_reply_t *out) {
  const hw_caller_t nobody = {.name = "", .driver_url = ""};
  return hw_call_by(b, &nobody, target, method, request, len, deadline_ms, out);
}

dfnet_status_t hw_call_by(hw_bench_t *b, const hw_caller_t *who, const char *target,
                          const char *method, const void *request, size_t len, uint32_t deadline_ms,
                          hw_reply_t *out) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_envelope_init(env);
  env->pb.id = b->next_id++;
  env->pb.which_msg = dfnet_v1_Envelope_call_tag;
  snprintf(env->pb.msg.call.caller, sizeof env->pb.msg.call.caller, "%s", who->name);
  snprintf(env->pb.msg.call.caller_driver_url, sizeof env->pb.msg.call.caller_driver_url, "%s",
           who->driver_url != NULL ? who->driver_url : "");
  snprintf(env->pb.msg.call.target, sizeof env->pb.msg.call.target, "%s", target);
  snprintf(env->pb.msg.call.method, sizeof env->pb.msg.call.method, "%s", method);
  env->pb.msg.call.deadline_ms = deadline_ms;
  env->bulk.data = request;
  env->bulk.size = len;
  uint64_t id = env->pb.id;
  dfnet_status_t st = send_env(b, env);
  free(env);
  memset(out, 0, sizeof *out);
  if (st != DFNET_STATUS_OK) {
    out->code = st;
    snprintf(out->message, sizeof out->message, "harness: cannot send the call");
    return st;
  }
  if (!hw_next_reply(b, id, HW_WAIT_MS, out)) {
    out->code = DFNET_STATUS_DEADLINE_EXCEEDED;
    snprintf(out->message, sizeof out->message, "harness: no reply within %d ms", HW_WAIT_MS);
  }
  if (out->code != DFNET_STATUS_OK)
    fprintf(stderr, "harness: %s -> %s: %s\n", method, dfnet_status_str(out->code), out->message);
  return out->code;
}

static void send_simple(hw_bench_t *b, uint64_t id, pb_size_t which, uint32_t credit) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  dfnet_envelope_init(env);
  env->pb.id = id;
  env->pb.which_msg = which;
  if (which == dfnet_v1_Envelope_stream_credit_tag)
    env->pb.msg.stream_credit.credit = credit;
  else
    snprintf(env->pb.msg.cancel.reason, sizeof env->pb.msg.cancel.reason, "test cancels");
  (void)send_env(b, env);
  free(env);
}

void hw_credit(hw_bench_t *b, uint64_t id, uint32_t credit) {
  send_simple(b, id, dfnet_v1_Envelope_stream_credit_tag, credit);
}

void hw_cancel(hw_bench_t *b, uint64_t id) { send_simple(b, id, dfnet_v1_Envelope_cancel_tag, 0); }

void hw_reply_free(hw_reply_t *r) {
  free(r->data);
  r->data = NULL;
  r->size = 0;
}

char *hw_bench_log(hw_bench_t *b) {
  size_t cap = 1 << 20, len = 0;
  char *text = calloc(1, cap + 1);
  if (text == NULL || b->log == NULL)
    return text;
  rewind(b->log);
  len = fread(text, 1, cap, b->log);
  text[len] = 0;
  return text;
}
