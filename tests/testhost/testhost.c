/* Scripted test host sessions and clients on the real transport (testhost.h). */
#include "testhost/testhost.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dfnet/bind.h"
#include "lib/package.h"
#include "lib/pki.h"

/* ---- the manager process ------------------------------------------------------------ */

int th_fresh_dir(const char *path) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
  return system(cmd) == 0 ? 0 : -1;
}

int th_manager_start(th_manager_t *m, const char *state_dir, const char *drivers_dir, ...) {
  memset(m, 0, sizeof *m);
  snprintf(m->state_dir, sizeof m->state_dir, "%s", state_dir);
  snprintf(m->log_path, sizeof m->log_path, "%s.log", state_dir);
  const char *build = getenv("DFNET_BUILD_DIR");
  char exe[600];
  snprintf(exe, sizeof exe, "%s/manager/dfnet-manager", build ? build : ".");
  const char *argv[40] = {exe,       "--listen",    "127.0.0.1:0", "--state-dir",
                          state_dir, "--log-level", "debug"};
  int argc = 7;
  if (drivers_dir != NULL) {
    argv[argc++] = "--drivers";
    argv[argc++] = drivers_dir;
  }
  va_list ap;
  va_start(ap, drivers_dir);
  const char *a;
  while (argc < 38 && (a = va_arg(ap, const char *)) != NULL)
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  int pfd[2];
  if (pipe(pfd) != 0)
    return -1;
  pid_t pid = test_child_fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int log = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(pfd[1], 1);
    if (log >= 0)
      dup2(log, 2);
    close(pfd[0]);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  m->pid = pid;
  FILE *f = fdopen(pfd[0], "r");
  char line[256];
  int rc = -1;
  /* The child prints "dfnet-manager: listening on ADDR:PORT" once listening. */
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    char *p = strstr(line, "listening on ");
    if (p != NULL) {
      char *colon = strrchr(p, ':');
      m->port = (uint16_t)strtoul(colon + 1, NULL, 10);
      rc = 0;
      break;
    }
  }
  if (f != NULL)
    fclose(f);
  if (rc != 0)
    th_manager_stop(m);
  return rc;
}

bool th_manager_alive(th_manager_t *m) { return m->pid > 0 && waitpid(m->pid, NULL, WNOHANG) == 0; }

int th_manager_stop(th_manager_t *m) {
  if (m->pid <= 0)
    return -1;
  kill(m->pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 1000; i++) {
    pid_t r = waitpid(m->pid, &status, WNOHANG);
    if (r == m->pid) {
      m->pid = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    usleep(10000);
  }
  kill(m->pid, SIGKILL);
  waitpid(m->pid, &status, 0);
  m->pid = 0;
  return -1;
}

/* ---- driver packages ---------------------------------------------------------------- */

static int write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  size_t w = fwrite(data, 1, size, f);
  fclose(f);
  return w == size ? 0 : -1;
}

static int write_driver(const char *dir, const char *name, const char *bind_source,
                        const char *extra, bool disable_autobind) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s/meta/bind", dir, name);
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s/%s/driver'", path, dir, name);
  if (system(cmd) != 0)
    return -1;
  dfnet_bind_source_t src = {.path = name, .text = bind_source, .len = strlen(bind_source)};
  const char *lib_dirs[1] = {getenv("DFNET_SOURCE_DIR")};
  char libdir[600];
  snprintf(libdir, sizeof libdir, "%s/bind/lib", lib_dirs[0] ? lib_dirs[0] : ".");
  lib_dirs[0] = libdir;
  dfnet_bind_compile_options_t opts = {
      .lib_dirs = lib_dirs, .lib_dir_count = 1, .disable_autobind = disable_autobind};
  uint8_t *bc = NULL;
  size_t bc_len = 0;
  char *error = NULL;
  if (dfnet_bind_compile(&src, &opts, &bc, &bc_len, &error) != DFNET_STATUS_OK) {
    fprintf(stderr, "th_write_driver %s: %s\n", name, error ? error : "compile failed");
    free(error);
    return -1;
  }
  snprintf(path, sizeof path, "%s/%s/meta/bind/%s.bindbc", dir, name, name);
  int rc = write_file(path, bc, bc_len);
  free(bc);
  char json[2048];
  snprintf(json, sizeof json,
           "{\"program\": {\"runner\": \"driver\", \"binary\": \"driver/%s.so\", "
           "\"bind\": \"meta/bind/%s.bindbc\"%s%s}}\n",
           name, name, extra ? ", " : "", extra ? extra : "");
  snprintf(path, sizeof path, "%s/%s/meta/%s.json", dir, name, name);
  rc |= write_file(path, json, strlen(json));
  snprintf(path, sizeof path, "%s/%s/driver/%s.so", dir, name, name);
  rc |= write_file(path,
                   "\x7f"
                   "ELF placeholder",
                   16);
  return rc;
}

int th_write_driver(const char *dir, const char *name, const char *bind_source, const char *extra) {
  return write_driver(dir, name, bind_source, extra, false);
}

int th_write_driver_manual(const char *dir, const char *name, const char *bind_source,
                           const char *extra) {
  return write_driver(dir, name, bind_source, extra, true);
}

int th_pack(const char *pkg_dir, uint8_t **data, size_t *size, uint8_t digest[32]) {
  dfnet_package_buf_t b = {0};
  char err[300];
  if (dfnet_package_pack_dir(pkg_dir, &b, err, sizeof err) != DFNET_STATUS_OK) {
    fprintf(stderr, "th_pack: %s\n", err);
    return -1;
  }
  dfnet_package_digest(b.data, b.size, digest);
  *data = b.data;
  *size = b.size;
  return 0;
}

/* ---- sessions ----------------------------------------------------------------------- */

#define TH_EVENTS_MAX 8192

#define TH_STARTS_MAX 256 /* DriverStarts kept whole (~53 KiB each) */
#define TH_HELD_MAX 256   /* DriverStops held */
#define TH_DH_MAX 16      /* driver hosts a ListDriverHosts answer names */

/* A DriverStart whose answer is held (th_hold_starts). */
typedef struct th_held_start {
  uint64_t id;
  char node[512];
  char url[256];
  uint64_t dh;
} th_held_start_t;

struct testhost {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t ep;
  dfnet_session_id_t sid;
  bool host;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  th_event_t *events;
  size_t nevents;
  uint64_t next_dh;
  char fail_url[256];
  dfnet_status_t fail_code;
  dfnet_v1_DriverStart *starts[TH_STARTS_MAX]; /* the DriverStarts received, in order */
  size_t nstarts;
  bool answer_calls;
  bool hold_stops;
  uint64_t held[TH_HELD_MAX]; /* ids of the DriverStops held */
  size_t nheld;
  bool hold_starts;
  th_held_start_t *held_starts; /* TH_HELD_MAX, allocated when first needed */
  size_t nheld_starts;
  char fail_suspend[512]; /* "" = every node (when fail_suspend_code is not OK) */
  dfnet_status_t fail_suspend_code;
  bool dh_answer;
  th_driver_host_t dhs[TH_DH_MAX];
  size_t ndhs;
};

static void record(testhost_t *h, const dfnet_envelope_t *env) {
  th_event_t ev = {.which = env->pb.which_msg, .id = env->pb.id};
  switch (env->pb.which_msg) {
  case dfnet_v1_Envelope_driver_start_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.driver_start.node);
    snprintf(ev.url, sizeof ev.url, "%s", env->pb.msg.driver_start.url);
    ev.driver_host_id = env->pb.msg.driver_start.driver_host_id;
    break;
  case dfnet_v1_Envelope_driver_stop_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.driver_stop.node);
    snprintf(ev.url, sizeof ev.url, "%s", env->pb.msg.driver_stop.url);
    ev.driver_host_id = env->pb.msg.driver_stop.driver_host_id;
    break;
  case dfnet_v1_Envelope_node_remove_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.node_remove.moniker);
    break;
  case dfnet_v1_Envelope_driver_suspend_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.driver_suspend.node);
    ev.driver_host_id = env->pb.msg.driver_suspend.driver_host_id;
    ev.flags = env->pb.msg.driver_suspend.flags;
    break;
  case dfnet_v1_Envelope_driver_resume_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.driver_resume.node);
    ev.driver_host_id = env->pb.msg.driver_resume.driver_host_id;
    break;
  case dfnet_v1_Envelope_watch_event_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.watch_event.subject);
    snprintf(ev.url, sizeof ev.url, "%s", env->pb.msg.watch_event.detail);
    ev.kind = env->pb.msg.watch_event.kind;
    break;
  case dfnet_v1_Envelope_call_tag:
    snprintf(ev.node, sizeof ev.node, "%s", env->pb.msg.call.target);
    snprintf(ev.url, sizeof ev.url, "%s", env->pb.msg.call.method);
    snprintf(ev.caller, sizeof ev.caller, "%s", env->pb.msg.call.caller);
    snprintf(ev.caller_url, sizeof ev.caller_url, "%s", env->pb.msg.call.caller_driver_url);
    snprintf(ev.lease_token, sizeof ev.lease_token, "%s", env->pb.msg.call.lease_token);
    break;
  default:
    break;
  }
  dfnet_v1_DriverStart *start = NULL;
  if (env->pb.which_msg == dfnet_v1_Envelope_driver_start_tag &&
      (start = malloc(sizeof *start)) != NULL)
    *start = env->pb.msg.driver_start;
  pthread_mutex_lock(&h->mu);
  if (start != NULL && h->nstarts < TH_STARTS_MAX)
    h->starts[h->nstarts++] = start;
  else
    free(start);
  if (h->nevents < TH_EVENTS_MAX) {
    ev.seq = h->nevents;
    h->events[h->nevents++] = ev;
  }
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

/* DriverStatus RUNNING for the DriverStart `id` of (node, url) in driver host dh. */
static void send_running(testhost_t *h, dfnet_session_id_t sid, uint64_t id, const char *node,
                         const char *url, uint64_t dh) {
  dfnet_envelope_t *out = calloc(1, sizeof *out);
  if (out == NULL)
    return;
  dfnet_envelope_init(out);
  out->pb.id = id;
  out->pb.which_msg = dfnet_v1_Envelope_driver_status_tag;
  dfnet_v1_DriverStatus *st = &out->pb.msg.driver_status;
  snprintf(st->node, sizeof st->node, "%s", node);
  snprintf(st->url, sizeof st->url, "%s", url);
  st->driver_host_id = dh;
  st->state = dfnet_v1_DriverState_RUNNING;
  st->pid = 1000 + (uint32_t)dh;
  dfnet_transport_send(h->t, sid, out, 0);
  free(out);
}

static void answer_start(testhost_t *h, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_DriverStart *ds = &env->pb.msg.driver_start;
  pthread_mutex_lock(&h->mu);
  bool fail = h->fail_url[0] != '\0' && strstr(ds->url, h->fail_url) != NULL;
  dfnet_status_t code = h->fail_code;
  uint64_t dh = ds->driver_host_id ? ds->driver_host_id : ++h->next_dh;
  if (h->hold_starts && h->held_starts == NULL)
    h->held_starts = calloc(TH_HELD_MAX, sizeof *h->held_starts);
  bool hold = h->hold_starts && h->held_starts != NULL && h->nheld_starts < TH_HELD_MAX;
  if (hold) {
    th_held_start_t *hs = &h->held_starts[h->nheld_starts++];
    hs->id = env->pb.id;
    snprintf(hs->node, sizeof hs->node, "%s", ds->node);
    snprintf(hs->url, sizeof hs->url, "%s", ds->url);
    hs->dh = dh;
  }
  pthread_mutex_unlock(&h->mu);
  if (hold)
    return;
  if (fail) {
    dfnet_transport_send_status(h->t, sid, env->pb.id, code, "test host: start refused");
    return;
  }
  send_running(h, sid, env->pb.id, ds->node, ds->url, dh);
}

/* DriverSuspend / DriverResume: OK unless told to fail that node. */
static void answer_suspend(testhost_t *h, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const char *node = env->pb.which_msg == dfnet_v1_Envelope_driver_suspend_tag
                         ? env->pb.msg.driver_suspend.node
                         : env->pb.msg.driver_resume.node;
  pthread_mutex_lock(&h->mu);
  dfnet_status_t code = h->fail_suspend_code;
  bool fail =
      code != DFNET_STATUS_OK && (h->fail_suspend[0] == '\0' || strcmp(h->fail_suspend, node) == 0);
  pthread_mutex_unlock(&h->mu);
  dfnet_transport_send_status(h->t, sid, env->pb.id, fail ? code : DFNET_STATUS_OK,
                              fail ? "test host: the driver refused" : "done");
}

/* ListDriverHosts: the driver hosts set by th_set_driver_hosts, then Status OK. */
static void answer_driver_hosts(testhost_t *h, dfnet_session_id_t sid, uint64_t id) {
  th_driver_host_t dhs[TH_DH_MAX];
  pthread_mutex_lock(&h->mu);
  bool answer = h->dh_answer;
  size_t n = h->ndhs;
  memcpy(dhs, h->dhs, sizeof dhs);
  pthread_mutex_unlock(&h->mu);
  dfnet_envelope_t *out = calloc(1, sizeof *out);
  if (!answer || out == NULL) {
    free(out);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    dfnet_envelope_init(out);
    out->pb.id = id;
    out->pb.which_msg = dfnet_v1_Envelope_driver_host_info_tag;
    out->pb.msg.driver_host_info.id = dhs[i].id;
    out->pb.msg.driver_host_info.pid = dhs[i].pid;
    out->pb.msg.driver_host_info.rss_bytes = dhs[i].rss_bytes;
    dfnet_transport_send(h->t, sid, out, 0);
  }
  free(out);
  dfnet_transport_send_status(h->t, sid, id, DFNET_STATUS_OK, "driver hosts");
}

/* A Call answered OK with "<caller>|<caller_driver_url>|<request>". */
static void answer_call(testhost_t *h, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  const dfnet_v1_Call *c = &env->pb.msg.call;
  size_t cap = strlen(c->caller) + strlen(c->caller_driver_url) + env->bulk.size + 3;
  char *payload = malloc(cap);
  dfnet_envelope_t *out = calloc(1, sizeof *out);
  if (payload != NULL && out != NULL) {
    int n = snprintf(payload, cap, "%s|%s|", c->caller, c->caller_driver_url);
    if (env->bulk.size > 0)
      memcpy(payload + n, env->bulk.data, env->bulk.size);
    dfnet_envelope_init(out);
    out->pb.id = env->pb.id;
    out->pb.which_msg = dfnet_v1_Envelope_reply_tag;
    out->pb.msg.reply.code = dfnet_v1_Code_OK;
    out->pb.msg.reply.end_of_stream = true;
    out->bulk.data = (const uint8_t *)payload;
    out->bulk.size = (size_t)n + env->bulk.size;
    dfnet_transport_send(h->t, sid, out, 0);
  }
  free(out);
  free(payload);
}

/* Recorded once answered or held: a test that saw an envelope may release what it held. */
static void on_envelope(void *user, dfnet_session_id_t sid, const dfnet_envelope_t *env) {
  testhost_t *h = user;
  if (env->pb.which_msg == dfnet_v1_Envelope_driver_start_tag) {
    answer_start(h, sid, env);
  } else if (env->pb.which_msg == dfnet_v1_Envelope_driver_stop_tag) {
    pthread_mutex_lock(&h->mu);
    bool hold = h->hold_stops && h->nheld < TH_HELD_MAX;
    if (hold)
      h->held[h->nheld++] = env->pb.id;
    pthread_mutex_unlock(&h->mu);
    if (!hold)
      dfnet_transport_send_status(h->t, sid, env->pb.id, DFNET_STATUS_OK, "stopped");
  } else if (env->pb.which_msg == dfnet_v1_Envelope_driver_suspend_tag ||
             env->pb.which_msg == dfnet_v1_Envelope_driver_resume_tag) {
    answer_suspend(h, sid, env);
  } else if (env->pb.which_msg == dfnet_v1_Envelope_list_driver_hosts_tag) {
    answer_driver_hosts(h, sid, env->pb.id);
  } else if (env->pb.which_msg == dfnet_v1_Envelope_call_tag) {
    pthread_mutex_lock(&h->mu);
    bool answer = h->answer_calls;
    pthread_mutex_unlock(&h->mu);
    if (answer)
      answer_call(h, sid, env);
  }
  record(h, env);
}

static void on_open(void *user, const dfnet_session_info_t *info) {
  testhost_t *h = user;
  pthread_mutex_lock(&h->mu);
  h->sid = info->id;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void on_closed(void *user, dfnet_session_id_t sid, dfnet_status_t reason,
                      const char *message) {
  (void)reason;
  (void)message;
  testhost_t *h = user;
  pthread_mutex_lock(&h->mu);
  if (h->sid == sid)
    h->sid = 0;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static dfnet_v1_Role role_of(const char *role) {
  if (strcmp(role, "host") == 0)
    return dfnet_v1_Role_HOST;
  if (strcmp(role, "admin") == 0)
    return dfnet_v1_Role_ADMIN;
  if (strcmp(role, "operator") == 0)
    return dfnet_v1_Role_OPERATOR;
  return dfnet_v1_Role_VIEWER;
}

int th_issue(th_manager_t *m, const char *name, const char *role, char *dir, size_t size) {
  snprintf(dir, size, "%s-certs/%s-%s", m->state_dir, role, name);
  char crt[1024];
  snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
  if (access(crt, R_OK) == 0)
    return 0;
  char parent[700];
  snprintf(parent, sizeof parent, "%s-certs", m->state_dir);
  mkdir(parent, 0700);
  dfnet_pki_role_t r;
  if (dfnet_pki_role_parse(role, &r) != DFNET_STATUS_OK)
    return -1;
  return dfnet_pki_issue_to_dir(m->state_dir, r, name, dir, NULL, 0, 30) == DFNET_STATUS_OK ? 0
                                                                                            : -1;
}

void th_close(testhost_t *h) {
  if (h == NULL)
    return;
  dfnet_transport_destroy(h->t);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  for (size_t i = 0; i < h->nstarts; i++)
    free(h->starts[i]);
  free(h->held_starts);
  free(h->events);
  free(h);
}

testhost_t *th_connect(th_manager_t *m, const char *name, const char *role,
                       dfnet_status_t *status) {
  if (status)
    *status = DFNET_STATUS_UNAVAILABLE;
  char dir[700], crt[1024], key[1024], ca[1024], url[64];
  if (th_issue(m, name, role, dir, sizeof dir) != 0)
    return NULL;
  snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
  snprintf(key, sizeof key, "%s/%s.key", dir, name);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)m->port);
  testhost_t *h = calloc(1, sizeof *h);
  if (h == NULL || (h->events = calloc(TH_EVENTS_MAX, sizeof *h->events)) == NULL) {
    free(h);
    return NULL;
  }
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  h->host = strcmp(role, "host") == 0;
  dfnet_client_config_t cc = {
      .url = url,
      .subprotocol = h->host ? DFNET_SUBPROTOCOL_HOST : DFNET_SUBPROTOCOL_CLIENT,
      .cert_file = crt,
      .key_file = key,
      .ca_file = ca,
      .backoff_initial_ms = 200,
      .backoff_max_ms = 60000,
      .callbacks = {.on_session_open = on_open,
                    .on_envelope = on_envelope,
                    .on_session_closed = on_closed},
      .user = h,
  };
  if (dfnet_transport_create(&h->t) != DFNET_STATUS_OK ||
      dfnet_transport_connect(h->t, &cc, &h->ep) != DFNET_STATUS_OK ||
      dfnet_transport_start(h->t) != DFNET_STATUS_OK ||
      dfnet_transport_wait_session(h->t, h->ep, 10000, &h->sid) != DFNET_STATUS_OK)
    goto fail;
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  if (req == NULL || rep == NULL) {
    free(req);
    free(rep);
    goto fail;
  }
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_hello_tag;
  req->pb.msg.hello.protocol_version = DFNET_PROTOCOL_VERSION;
  req->pb.msg.hello.role = role_of(role);
  snprintf(req->pb.msg.hello.name, sizeof req->pb.msg.hello.name, "%s", name);
  snprintf(req->pb.msg.hello.arch, sizeof req->pb.msg.hello.arch, "x86_64");
  dfnet_status_t st = th_request(h, req, rep, 10000);
  bool ok = st == DFNET_STATUS_OK && rep->pb.which_msg == dfnet_v1_Envelope_welcome_tag;
  if (status)
    *status = ok                      ? DFNET_STATUS_OK
              : st != DFNET_STATUS_OK ? st
              : rep->pb.which_msg == dfnet_v1_Envelope_status_tag
                  ? (dfnet_status_t)rep->pb.msg.status.code
                  : DFNET_STATUS_UNKNOWN;
  free(req);
  free(rep);
  if (ok)
    return h;
fail:
  th_close(h);
  return NULL;
}

dfnet_session_id_t th_session(testhost_t *h) {
  pthread_mutex_lock(&h->mu);
  dfnet_session_id_t s = h->sid;
  pthread_mutex_unlock(&h->mu);
  return s;
}

void th_fail_url(testhost_t *h, const char *url_part, dfnet_status_t code) {
  pthread_mutex_lock(&h->mu);
  snprintf(h->fail_url, sizeof h->fail_url, "%s", code == DFNET_STATUS_OK ? "" : url_part);
  h->fail_code = code;
  pthread_mutex_unlock(&h->mu);
}

dfnet_status_t th_request(testhost_t *h, dfnet_envelope_t *req, dfnet_envelope_t *reply,
                          uint32_t timeout_ms) {
  void *bulk = NULL;
  dfnet_status_t st =
      dfnet_transport_request_sync(h->t, th_session(h), req, timeout_ms, reply, &bulk);
  free(bulk);
  reply->bulk.data = NULL;
  reply->bulk.size = 0;
  return st;
}

struct th_pending_request {
  pthread_t thread;
  testhost_t *h;
  uint32_t timeout_ms;
  dfnet_envelope_t req, reply;
  dfnet_status_t status;
};

static void *request_thread(void *arg) {
  th_pending_request_t *p = arg;
  p->status = th_request(p->h, &p->req, &p->reply, p->timeout_ms);
  return NULL;
}

th_pending_request_t *th_request_start(testhost_t *h, const dfnet_envelope_t *req,
                                       uint32_t timeout_ms) {
  th_pending_request_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->h = h;
  p->timeout_ms = timeout_ms;
  p->req = *req;
  if (pthread_create(&p->thread, NULL, request_thread, p) != 0) {
    free(p);
    return NULL;
  }
  return p;
}

dfnet_status_t th_request_join(th_pending_request_t *p, dfnet_envelope_t *reply) {
  if (p == NULL)
    return DFNET_STATUS_INTERNAL;
  pthread_join(p->thread, NULL);
  dfnet_status_t st = p->status;
  if (reply != NULL)
    *reply = p->reply;
  free(p);
  return st;
}

struct th_async {
  testhost_t *h;
  uint64_t id;
  bool done, abandoned; /* abandoned: th_async_wait gave up; the completion frees it */
  dfnet_status_t status;
  dfnet_envelope_t reply;
  uint32_t position; /* the last queue place a waiting LeaseAcquire was told */
};

/* A waiting LeaseAcquire's interim answers (its place in the queue) are not its answer. */
static bool async_is_last(void *user, const dfnet_envelope_t *reply) {
  (void)user;
  return reply->pb.which_msg != dfnet_v1_Envelope_lease_info_tag ||
         reply->pb.msg.lease_info.queue_position == 0;
}

static void on_async_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                           bool last) {
  th_async_t *a = user;
  testhost_t *h = a->h;
  pthread_mutex_lock(&h->mu);
  if (!last) {
    a->position = reply->pb.msg.lease_info.queue_position;
  } else if (!a->done) {
    a->status = status;
    if (status == DFNET_STATUS_OK) {
      a->reply = *reply;
      a->reply.bulk.data = NULL;
      a->reply.bulk.size = 0;
    }
  }
  a->done = a->done || last; /* a unary request: its one answer is its last */
  bool free_it = last && a->abandoned;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  if (free_it)
    free(a);
}

th_async_t *th_async_start(testhost_t *h, dfnet_envelope_t *req, uint32_t timeout_ms) {
  th_async_t *a = calloc(1, sizeof *a);
  if (a == NULL)
    return NULL;
  a->h = h;
  dfnet_request_opts_t opts = {.deadline_ms = timeout_ms,
                               .streaming = true,
                               .is_last = async_is_last,
                               .on_reply = on_async_reply,
                               .user = a};
  if (dfnet_transport_request(h->t, th_session(h), req, &opts, DFNET_SEND_WAIT, &a->id) !=
      DFNET_STATUS_OK) {
    free(a);
    return NULL;
  }
  return a;
}

uint64_t th_async_id(const th_async_t *a) { return a->id; }

uint32_t th_async_position(th_async_t *a) {
  pthread_mutex_lock(&a->h->mu);
  uint32_t position = a->position;
  pthread_mutex_unlock(&a->h->mu);
  return position;
}

bool th_async_done(th_async_t *a) {
  pthread_mutex_lock(&a->h->mu);
  bool done = a->done;
  pthread_mutex_unlock(&a->h->mu);
  return done;
}

dfnet_status_t th_async_wait(th_async_t *a, uint32_t timeout_ms, dfnet_envelope_t *reply) {
  testhost_t *h = a->h;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&h->mu);
  while (!a->done && pthread_cond_timedwait(&h->cv, &h->mu, &deadline) != ETIMEDOUT)
    ;
  bool done = a->done;
  if (!done)
    a->abandoned = true;
  dfnet_status_t st = done ? a->status : DFNET_STATUS_DEADLINE_EXCEEDED;
  if (done && reply != NULL && st == DFNET_STATUS_OK)
    *reply = a->reply;
  pthread_mutex_unlock(&h->mu);
  if (done)
    free(a);
  return st;
}

dfnet_status_t th_send(testhost_t *h, dfnet_envelope_t *env) {
  return dfnet_transport_send(h->t, th_session(h), env, DFNET_SEND_WAIT);
}

/* ---- host messages ------------------------------------------------------------------ */

static int parse_prop(const char *spec, dfnet_v1_NodeProperty *p) {
  memset(p, 0, sizeof *p);
  const char *eq = strchr(spec, '=');
  if (eq == NULL || strlen(eq) < 3 || eq[2] != ':')
    return -1;
  if (spec[0] == '#') {
    p->which_key = dfnet_v1_NodeProperty_int_key_tag;
    p->key.int_key = (uint32_t)strtoul(spec + 1, NULL, 0);
  } else {
    p->which_key = dfnet_v1_NodeProperty_str_key_tag;
    snprintf(p->key.str_key, sizeof p->key.str_key, "%.*s", (int)(eq - spec), spec);
  }
  const char *v = eq + 3;
  switch (eq[1]) {
  case 'u':
    p->which_value = dfnet_v1_NodeProperty_int_value_tag;
    p->value.int_value = (uint32_t)strtoul(v, NULL, 0);
    break;
  case 's':
    p->which_value = dfnet_v1_NodeProperty_str_value_tag;
    snprintf(p->value.str_value, sizeof p->value.str_value, "%s", v);
    break;
  case 'b':
    p->which_value = dfnet_v1_NodeProperty_bool_value_tag;
    p->value.bool_value = strcmp(v, "true") == 0;
    break;
  case 'e':
    p->which_value = dfnet_v1_NodeProperty_enum_value_tag;
    snprintf(p->value.enum_value, sizeof p->value.enum_value, "%s", v);
    break;
  default:
    return -1;
  }
  return 0;
}

static dfnet_status_t status_of(dfnet_status_t st, const dfnet_envelope_t *rep, char *message) {
  if (message)
    message[0] = '\0';
  if (st != DFNET_STATUS_OK)
    return st;
  if (rep->pb.which_msg != dfnet_v1_Envelope_status_tag)
    return DFNET_STATUS_UNKNOWN;
  if (message)
    snprintf(message, 512, "%s", rep->pb.msg.status.message);
  return (dfnet_status_t)rep->pb.msg.status.code;
}

static dfnet_status_t node_add(testhost_t *h, const char *parent, const char *name,
                               const th_prop_t *props, size_t nprops, const char *const *offers,
                               const char *class_name, const char *url, uint64_t dh, char *message,
                               bool owned) {
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  if (req == NULL || rep == NULL)
    goto free_envs;
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_node_add_tag;
  dfnet_v1_NodeAdd *a = &req->pb.msg.node_add;
  snprintf(a->parent, sizeof a->parent, "%s", parent);
  snprintf(a->name, sizeof a->name, "%s", name);
  for (size_t i = 0; i < nprops && i < 64; i++) {
    if (parse_prop(props[i], &a->properties[i]) != 0) {
      st = DFNET_STATUS_INVALID_ARGUMENT;
      goto free_envs;
    }
    a->properties_count++;
  }
  for (size_t i = 0; offers && offers[i] && i < 16; i++) {
    snprintf(a->offers[i], sizeof a->offers[i], "%s", offers[i]);
    a->offers_count++;
  }
  if (class_name)
    snprintf(a->class_name, sizeof a->class_name, "%s", class_name);
  a->owned = owned;
  if (url) {
    snprintf(a->driver_url, sizeof a->driver_url, "%s", url);
    a->driver_host_id = dh;
  }
  st = status_of(th_request(h, req, rep, 10000), rep, message);
free_envs:
  free(req);
  free(rep);
  return st;
}

dfnet_status_t th_node_add(testhost_t *h, const char *parent, const char *name,
                           const th_prop_t *props, size_t nprops, const char *const *offers,
                           const char *class_name, char *message) {
  return node_add(h, parent, name, props, nprops, offers, class_name, NULL, 0, message, false);
}

dfnet_status_t th_node_add_owned(testhost_t *h, const char *parent, const char *name,
                                 const char *class_name) {
  return node_add(h, parent, name, NULL, 0, NULL, class_name, NULL, 0, NULL, true);
}

static void on_watch_event(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                           bool last) {
  (void)last;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_watch_event_tag)
    record(user, reply);
}

dfnet_status_t th_watch(testhost_t *h) {
  dfnet_envelope_t *req = calloc(1, sizeof *req);
  if (req == NULL)
    return DFNET_STATUS_INTERNAL;
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_watch_tag;
  dfnet_request_opts_t opts = {.streaming = true, .on_reply = on_watch_event, .user = h};
  dfnet_status_t st =
      dfnet_transport_request(h->t, th_session(h), req, &opts, DFNET_SEND_WAIT, NULL);
  free(req);
  return st;
}

dfnet_status_t th_node_add_running(testhost_t *h, const char *parent, const char *name,
                                   const th_prop_t *props, size_t nprops, const char *driver_url,
                                   uint64_t driver_host_id) {
  return node_add(h, parent, name, props, nprops, NULL, NULL, driver_url, driver_host_id, NULL,
                  false);
}

dfnet_status_t th_node_remove(testhost_t *h, const char *moniker) {
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  if (req != NULL && rep != NULL) {
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_node_remove_tag;
    snprintf(req->pb.msg.node_remove.moniker, sizeof req->pb.msg.node_remove.moniker, "%s",
             moniker);
    st = status_of(th_request(h, req, rep, 10000), rep, NULL);
  }
  free(req);
  free(rep);
  return st;
}

dfnet_status_t th_driver_host_exit(testhost_t *h, uint64_t dh, const char *const *nodes) {
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  if (env == NULL)
    return DFNET_STATUS_INTERNAL;
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_driver_host_exit_tag;
  dfnet_v1_DriverHostExit *e = &env->pb.msg.driver_host_exit;
  e->driver_host_id = dh;
  e->pid = 1000 + (uint32_t)dh;
  e->exit_code = -1;
  e->signal = 11;
  snprintf(e->reason, sizeof e->reason, "killed by SIGSEGV");
  for (size_t i = 0; nodes && nodes[i] && i < 16; i++)
    snprintf(e->nodes[e->nodes_count++], sizeof e->nodes[0], "%s", nodes[i]);
  dfnet_status_t st = th_send(h, env);
  free(env);
  return st;
}

/* ---- recorded envelopes ------------------------------------------------------------- */

static bool event_matches(const th_event_t *e, pb_size_t which, const char *node) {
  return (which == 0 || e->which == which) && (node == NULL || strcmp(e->node, node) == 0);
}

bool th_wait_event(testhost_t *h, pb_size_t which, const char *node, uint32_t timeout_ms,
                   size_t *from, th_event_t *out) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  size_t i = from ? *from : 0;
  bool found = false;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    for (; i < h->nevents && !found; i++) {
      if (event_matches(&h->events[i], which, node)) {
        if (out)
          *out = h->events[i];
        found = true;
      }
    }
    if (found || pthread_cond_timedwait(&h->cv, &h->mu, &deadline) == ETIMEDOUT)
      break;
  }
  if (!found) {
    for (; i < h->nevents && !found; i++)
      if (event_matches(&h->events[i], which, node)) {
        if (out)
          *out = h->events[i];
        found = true;
      }
  }
  pthread_mutex_unlock(&h->mu);
  if (found && from)
    *from = i;
  return found;
}

bool th_driver_start(testhost_t *h, const char *node, dfnet_v1_DriverStart *out) {
  bool found = false;
  pthread_mutex_lock(&h->mu);
  for (size_t i = h->nstarts; i > 0 && !found; i--) {
    if (strcmp(h->starts[i - 1]->node, node) == 0) {
      *out = *h->starts[i - 1];
      found = true;
    }
  }
  pthread_mutex_unlock(&h->mu);
  return found;
}

void th_answer_calls(testhost_t *h, bool on) {
  pthread_mutex_lock(&h->mu);
  h->answer_calls = on;
  pthread_mutex_unlock(&h->mu);
}

void th_hold_stops(testhost_t *h, bool on) {
  pthread_mutex_lock(&h->mu);
  h->hold_stops = on;
  pthread_mutex_unlock(&h->mu);
}

size_t th_release_stops(testhost_t *h) {
  uint64_t ids[TH_HELD_MAX];
  pthread_mutex_lock(&h->mu);
  size_t n = h->nheld;
  memcpy(ids, h->held, n * sizeof ids[0]);
  h->nheld = 0;
  pthread_mutex_unlock(&h->mu);
  for (size_t i = 0; i < n; i++)
    dfnet_transport_send_status(h->t, th_session(h), ids[i], DFNET_STATUS_OK, "stopped");
  return n;
}

void th_hold_starts(testhost_t *h, bool on) {
  pthread_mutex_lock(&h->mu);
  h->hold_starts = on;
  pthread_mutex_unlock(&h->mu);
}

size_t th_release_starts(testhost_t *h, dfnet_status_t code) {
  pthread_mutex_lock(&h->mu);
  size_t n = h->nheld_starts;
  th_held_start_t *held = NULL;
  if (n > 0 && (held = malloc(n * sizeof *held)) != NULL)
    memcpy(held, h->held_starts, n * sizeof *held);
  h->nheld_starts = 0;
  pthread_mutex_unlock(&h->mu);
  if (held == NULL)
    return 0;
  dfnet_session_id_t sid = th_session(h);
  for (size_t i = 0; i < n; i++) {
    if (code == DFNET_STATUS_OK)
      send_running(h, sid, held[i].id, held[i].node, held[i].url, held[i].dh);
    else
      dfnet_transport_send_status(h->t, sid, held[i].id, code, "test host: start failed");
  }
  free(held);
  return n;
}

void th_fail_suspend(testhost_t *h, const char *node, dfnet_status_t code) {
  pthread_mutex_lock(&h->mu);
  snprintf(h->fail_suspend, sizeof h->fail_suspend, "%s", node ? node : "");
  h->fail_suspend_code = code;
  pthread_mutex_unlock(&h->mu);
}

void th_set_driver_hosts(testhost_t *h, const th_driver_host_t *items, size_t count, bool answer) {
  pthread_mutex_lock(&h->mu);
  h->ndhs = count < TH_DH_MAX ? count : TH_DH_MAX;
  if (h->ndhs > 0)
    memcpy(h->dhs, items, h->ndhs * sizeof *items);
  h->dh_answer = answer;
  pthread_mutex_unlock(&h->mu);
}

dfnet_status_t th_call(testhost_t *h, const char *target, const char *method, const char *caller,
                       const char *caller_url, const char *req, dfnet_status_t *code, char *message,
                       char *reply, size_t reply_size) {
  dfnet_envelope_t *env = calloc(1, sizeof *env), *rep = calloc(1, sizeof *rep);
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  if (env == NULL || rep == NULL)
    goto free_envs;
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_call_tag;
  dfnet_v1_Call *c = &env->pb.msg.call;
  snprintf(c->target, sizeof c->target, "%s", target);
  snprintf(c->method, sizeof c->method, "%s", method);
  snprintf(c->caller, sizeof c->caller, "%s", caller ? caller : "");
  snprintf(c->caller_driver_url, sizeof c->caller_driver_url, "%s", caller_url ? caller_url : "");
  c->deadline_ms = 10000;
  if (req != NULL) {
    env->bulk.data = (const uint8_t *)req;
    env->bulk.size = strlen(req);
  }
  void *bulk = NULL;
  st = dfnet_transport_request_sync(h->t, th_session(h), env, 12000, rep, &bulk);
  if (st == DFNET_STATUS_OK) {
    bool is_reply = rep->pb.which_msg == dfnet_v1_Envelope_reply_tag;
    *code = is_reply ? (dfnet_status_t)rep->pb.msg.reply.code
            : rep->pb.which_msg == dfnet_v1_Envelope_status_tag
                ? (dfnet_status_t)rep->pb.msg.status.code
                : DFNET_STATUS_UNKNOWN;
    if (message)
      snprintf(message, 512, "%s",
               is_reply                                            ? rep->pb.msg.reply.message
               : rep->pb.which_msg == dfnet_v1_Envelope_status_tag ? rep->pb.msg.status.message
                                                                   : "");
    if (reply != NULL && reply_size > 0) {
      size_t n = rep->bulk.size < reply_size - 1 ? rep->bulk.size : reply_size - 1;
      if (n > 0)
        memcpy(reply, rep->bulk.data, n);
      reply[n] = '\0';
    }
  }
  free(bulk);
free_envs:
  free(env);
  free(rep);
  return st;
}

size_t th_count_events(testhost_t *h, pb_size_t which, const char *node) {
  size_t n = 0;
  pthread_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->nevents; i++)
    n += event_matches(&h->events[i], which, node);
  pthread_mutex_unlock(&h->mu);
  return n;
}

size_t th_events(testhost_t *h, th_event_t **out) {
  pthread_mutex_lock(&h->mu);
  size_t n = h->nevents;
  *out = malloc((n ? n : 1) * sizeof **out);
  if (*out != NULL)
    memcpy(*out, h->events, n * sizeof **out);
  pthread_mutex_unlock(&h->mu);
  return *out ? n : 0;
}

/* ---- client requests ---------------------------------------------------------------- */

typedef struct list_ctx {
  testhost_t *h;
  void (*each)(void *, const dfnet_envelope_t *);
  void *user;
  bool done;
  dfnet_status_t status;
  char message[512];
} list_ctx_t;

static void on_list_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                          bool last) {
  list_ctx_t *c = user;
  pthread_mutex_lock(&c->h->mu);
  if (status != DFNET_STATUS_OK) {
    c->status = status;
  } else if (reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    c->status = (dfnet_status_t)reply->pb.msg.status.code;
    snprintf(c->message, sizeof c->message, "%s", reply->pb.msg.status.message);
  } else if (c->each) {
    pthread_mutex_unlock(&c->h->mu);
    c->each(c->user, reply);
    pthread_mutex_lock(&c->h->mu);
  }
  if (last) {
    c->done = true;
    pthread_cond_broadcast(&c->h->cv);
  }
  pthread_mutex_unlock(&c->h->mu);
}

dfnet_status_t th_list(testhost_t *h, dfnet_envelope_t *req,
                       void (*each)(void *user, const dfnet_envelope_t *item), void *user,
                       char *message) {
  list_ctx_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return DFNET_STATUS_INTERNAL;
  c->h = h;
  c->each = each;
  c->user = user;
  dfnet_request_opts_t opts = {
      .deadline_ms = 60000, .streaming = true, .on_reply = on_list_reply, .user = c};
  dfnet_status_t st =
      dfnet_transport_request(h->t, th_session(h), req, &opts, DFNET_SEND_WAIT, NULL);
  if (st != DFNET_STATUS_OK) {
    free(c);
    return st;
  }
  pthread_mutex_lock(&h->mu);
  while (!c->done)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  st = c->status;
  if (message)
    snprintf(message, 512, "%s", c->message);
  free(c);
  return st;
}

static void copy_node_info(void *user, const dfnet_envelope_t *item) {
  if (item->pb.which_msg == dfnet_v1_Envelope_node_info_tag)
    *(dfnet_v1_NodeInfo *)user = item->pb.msg.node_info;
}

dfnet_status_t th_node_info(testhost_t *h, const char *moniker, dfnet_v1_NodeInfo *out) {
  dfnet_envelope_t *req = calloc(1, sizeof *req);
  if (req == NULL)
    return DFNET_STATUS_INTERNAL;
  dfnet_envelope_init(req);
  req->pb.which_msg = dfnet_v1_Envelope_list_nodes_tag;
  snprintf(req->pb.msg.list_nodes.filter, sizeof req->pb.msg.list_nodes.filter, "%s", moniker);
  req->pb.msg.list_nodes.exact = true;
  req->pb.msg.list_nodes.verbose = true;
  memset(out, 0, sizeof *out);
  dfnet_status_t st = th_list(h, req, copy_node_info, out, NULL);
  free(req);
  if (st == DFNET_STATUS_OK && out->moniker[0] == '\0')
    st = DFNET_STATUS_NOT_FOUND;
  return st;
}

bool th_wait_node(testhost_t *h, const char *moniker, bool (*pred)(const dfnet_v1_NodeInfo *),
                  uint32_t timeout_ms, dfnet_v1_NodeInfo *out) {
  dfnet_v1_NodeInfo *info = calloc(1, sizeof *info);
  bool ok = false;
  for (uint32_t waited = 0; info != NULL && waited <= timeout_ms; waited += 20) {
    if (th_node_info(h, moniker, info) == DFNET_STATUS_OK && pred(info)) {
      ok = true;
      break;
    }
    usleep(20000);
  }
  if (ok && out)
    *out = *info;
  free(info);
  return ok;
}

dfnet_status_t th_upload(testhost_t *h, const char *name, const uint8_t *data, size_t size,
                         const uint8_t digest[32], size_t chunk, char *message) {
  dfnet_envelope_t *req = calloc(1, sizeof *req), *rep = calloc(1, sizeof *rep);
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  for (size_t off = 0; req != NULL && rep != NULL && off < size; off += chunk) {
    dfnet_envelope_init(req);
    req->pb.which_msg = dfnet_v1_Envelope_package_upload_tag;
    dfnet_v1_PackageUpload *u = &req->pb.msg.package_upload;
    memcpy(u->digest, digest, 32);
    u->offset = off;
    u->total_size = size;
    snprintf(u->name, sizeof u->name, "%s", name);
    req->bulk.data = data + off;
    req->bulk.size = size - off < chunk ? size - off : chunk;
    st = status_of(th_request(h, req, rep, 10000), rep, message);
    if (st != DFNET_STATUS_OK)
      break;
  }
  free(req);
  free(rep);
  return st;
}
