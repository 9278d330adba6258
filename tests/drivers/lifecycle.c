/* lifecycle: a test driver for the driver lifecycle (issue 19 "Driver lifecycle and control
 * as the seeds describe it"): asynchronous start, start failures, suspend and resume, with a
 * trace of its hooks that several drivers in several processes may share. Other tests
 * (driver host, host agent, manager, end to end) rely on exactly what is written here.
 *
 * It serves dfnet.test.Lifecycle:
 *   /dfnet.test.Lifecycle/Ping   unary: replies OK "pong" (whatever the request).
 *   /dfnet.test.Lifecycle/Crash  unary: never replies: the driver host dies (abort()), as
 *                                a driver that crashes does.
 *
 * It is configured by its manifest program's "config" object (the program JSON the driver
 * host hands it, dfnet_driver_program_json()); every key is optional:
 *   "start_delay_ms": N    the start is asynchronous (dfnet_driver_start_async): a thread of
 *                          the driver completes it N ms later (dfnet_driver_start_complete).
 *                          Absent: a synchronous start (`start` returns the status).
 *   "start_status": "S"    the status the start completes (or `start` returns) with, a
 *                          status name as dfnet_status_str() spells it ("NOT_FOUND");
 *                          default "OK". An unknown name counts as "INVALID_ARGUMENT".
 *   "child": "NAME"        during the start, before it completes, add a child node NAME
 *                          (not owned: the manager binds a driver to it) offered
 *                          dfnet.test.Lifecycle, the service this driver serves.
 *   "trace": "PATH"        append one line per hook to the file PATH, each with a single
 *                          write(2) on an O_APPEND descriptor (created 0644 if missing), so
 *                          that drivers in several processes may share one file and the
 *                          order of their lines is the order of their hooks:
 *                            start <moniker>
 *                            suspend <moniker> <flags, hex: 0x%08x, e.g. 0xdcdc0100>
 *                            resume <moniker>
 *                            prepare_stop <moniker>
 *                            stop <moniker>
 *                          ("start" when `start` begins; the others when their hook runs.)
 *   "suspend_status": "S"  the status its suspend hook returns (default "OK"); resume
 *                          always returns OK.
 *   "child_protocol": N    the "child" node gets the property fuchsia.BIND_PROTOCOL (integer
 *                          key 1) = N, so that a driver's bind rules can match it (absent:
 *                          the child has no property).
 *   "owned_child": "NAME"  during the start, before it completes, also add an owned child
 *                          node NAME (OWNED_BY_PARENT: served by this driver, never bound)...
 *   "owned_class": "C"     ... of class C, so that clients reach this driver at
 *                          class/C/<NNN> (absent: no class).
 *   "start_gate": "PATH"   the start is asynchronous too, and completes only once the file
 *                          PATH exists (looked for every 10 ms), start_delay_ms (default 0)
 *                          after `start` at the earliest: the test decides when.
 *   "stop_delay_ms": N     its stop hook takes N ms (it sleeps, then writes its trace line),
 *                          as a driver that quiesces its hardware does: what stops after it
 *                          shows in the trace after its "stop" line only if it waited.
 *
 * A start that is stopped before it completed (the start timeout, a DriverStop): its
 * prepare_stop wakes the completing thread at once, which then calls
 * dfnet_driver_start_complete (refused: FAILED_PRECONDITION) and is joined.
 *
 * Built twice (tests/drivers/CMakeLists.txt): "lifecycle" (driver API version 2, with the
 * suspend and resume hooks) and, with LIFECYCLE_API_V1, "lifecycle_v1": a version-1 ops
 * table, which ends before suspend and resume. Its hooks are placed right behind that table
 * all the same, so a driver host that read them from a version-1 table would call them and
 * the trace would show it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dfnet/driver.h"
#include "test_file.h"

typedef struct lifecycle {
  dfnet_driver_t *driver;
  char trace[512]; /* "" when none */
  dfnet_status_t start_status, suspend_status;
  long start_delay_ms; /* < 0: synchronous start */
  char child[129];     /* "" when none */
  long child_protocol; /* < 0: the child has no property */
  char owned[129];     /* "" when none */
  char owned_class[65];
  long stop_delay_ms; /* 0: none */
  char gate[512];     /* "" when none */
  /* the thread completing an asynchronous start */
  pthread_t thread;
  bool thread_running;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool wake; /* prepare_stop: complete now */
} lifecycle_t;

/* ---- configuration ---------------------------------------------------------------------- */

static dfnet_status_t status_named(const cJSON *item, dfnet_status_t dflt) {
  if (!cJSON_IsString(item))
    return dflt;
  static const struct {
    const char *name;
    dfnet_status_t code;
  } k_codes[] = {
#define LC_STATUS_NAME_(name, value, desc) {#name, DFNET_STATUS_##name},
      DFNET_STATUS_MAP(LC_STATUS_NAME_)
#undef LC_STATUS_NAME_
  };
  for (size_t i = 0; i < sizeof k_codes / sizeof k_codes[0]; i++)
    if (strcmp(k_codes[i].name, item->valuestring) == 0)
      return k_codes[i].code;
  return DFNET_STATUS_INVALID_ARGUMENT;
}

static void read_config(lifecycle_t *lc) {
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(lc->driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const cJSON *delay = cJSON_GetObjectItemCaseSensitive(config, "start_delay_ms");
  const cJSON *trace = cJSON_GetObjectItemCaseSensitive(config, "trace");
  const cJSON *child = cJSON_GetObjectItemCaseSensitive(config, "child");
  const cJSON *protocol = cJSON_GetObjectItemCaseSensitive(config, "child_protocol");
  const cJSON *owned = cJSON_GetObjectItemCaseSensitive(config, "owned_child");
  const cJSON *owned_class = cJSON_GetObjectItemCaseSensitive(config, "owned_class");
  const cJSON *stop_delay = cJSON_GetObjectItemCaseSensitive(config, "stop_delay_ms");
  const cJSON *gate = cJSON_GetObjectItemCaseSensitive(config, "start_gate");
  lc->start_delay_ms =
      cJSON_IsNumber(delay) && delay->valuedouble >= 0 ? (long)delay->valuedouble : -1;
  lc->start_status =
      status_named(cJSON_GetObjectItemCaseSensitive(config, "start_status"), DFNET_STATUS_OK);
  lc->suspend_status =
      status_named(cJSON_GetObjectItemCaseSensitive(config, "suspend_status"), DFNET_STATUS_OK);
  snprintf(lc->trace, sizeof lc->trace, "%s", cJSON_IsString(trace) ? trace->valuestring : "");
  snprintf(lc->child, sizeof lc->child, "%s", cJSON_IsString(child) ? child->valuestring : "");
  lc->child_protocol =
      cJSON_IsNumber(protocol) && protocol->valuedouble >= 0 && protocol->valuedouble <= UINT32_MAX
          ? (long)protocol->valuedouble
          : -1;
  snprintf(lc->owned, sizeof lc->owned, "%s", cJSON_IsString(owned) ? owned->valuestring : "");
  snprintf(lc->gate, sizeof lc->gate, "%s", cJSON_IsString(gate) ? gate->valuestring : "");
  if (lc->gate[0] != '\0' && lc->start_delay_ms < 0)
    lc->start_delay_ms = 0;
  snprintf(lc->owned_class, sizeof lc->owned_class, "%s",
           cJSON_IsString(owned_class) ? owned_class->valuestring : "");
  lc->stop_delay_ms =
      cJSON_IsNumber(stop_delay) && stop_delay->valuedouble > 0 && stop_delay->valuedouble <= 60000
          ? (long)stop_delay->valuedouble
          : 0;
  cJSON_Delete(program);
}

/* One line "<what> <moniker>[ <extra>]" appended to the trace with one write(2). */
static void trace(lifecycle_t *lc, const char *what, const char *extra) {
  if (lc->trace[0] == '\0')
    return;
  char line[800];
  int n = snprintf(line, sizeof line, "%s %s%s%s\n", what, dfnet_driver_node_moniker(lc->driver),
                   extra != NULL ? " " : "", extra != NULL ? extra : "");
  if (n < 0 || (size_t)n >= sizeof line)
    return;
  if (test_file_write(lc->driver, lc->trace, line, true) != 0)
    dfnet_driver_log(lc->driver, DFNET_DRIVER_LOG_WARN, "trace %s: %s", lc->trace, strerror(errno));
}

/* ---- the service -------------------------------------------------------------------------- */

static void lc_ping(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  (void)req;
  (void)len;
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)"pong", 4);
}

static void lc_crash(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  lifecycle_t *lc = ctx;
  (void)call;
  (void)req;
  (void)len;
  dfnet_driver_log(lc->driver, DFNET_DRIVER_LOG_INFO, "crashing as asked");
  abort();
}

static const dfnet_method_t lc_methods[] = {{"Ping", lc_ping, false}, {"Crash", lc_crash, false}};

/* ---- start -------------------------------------------------------------------------------- */

static void child_added(dfnet_driver_t *driver, void *ctx, const char *name, dfnet_status_t status,
                        void *arg) {
  (void)ctx;
  (void)arg;
  dfnet_driver_log(driver,
                   status == DFNET_STATUS_OK ? DFNET_DRIVER_LOG_INFO : DFNET_DRIVER_LOG_WARN,
                   "child %s: %s", name, dfnet_status_str(status));
}

static dfnet_status_t add_child(lifecycle_t *lc) {
  const char *offers[] = {"dfnet.test.Lifecycle"};
  dfnet_node_property_t protocol = {
      .int_key = 1, .type = DFNET_PROPERTY_UINT, .value_uint = (uint32_t)lc->child_protocol};
  dfnet_child_args_t args = {.name = lc->child,
                             .properties = lc->child_protocol >= 0 ? &protocol : NULL,
                             .property_count = lc->child_protocol >= 0 ? 1 : 0,
                             .offers = offers,
                             .offer_count = 1};
  return dfnet_driver_add_child(lc->driver, &args, child_added, NULL);
}

static dfnet_status_t add_owned_child(lifecycle_t *lc) {
  dfnet_child_args_t args = {.name = lc->owned,
                             .class_name = lc->owned_class[0] != '\0' ? lc->owned_class : NULL,
                             .owned = true};
  return dfnet_driver_add_child(lc->driver, &args, child_added, NULL);
}

/* CLOCK_MONOTONIC now + ms. */
static struct timespec after_ms(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

/* The completing thread: after start_delay_ms and once the gate (if any) is open, or at
 * once when prepare_stop wakes it. */
static void *complete_later(void *arg) {
  lifecycle_t *lc = arg;
  struct timespec until = after_ms(lc->start_delay_ms);
  pthread_mutex_lock(&lc->mu);
  int rc = 0;
  while (!lc->wake && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&lc->cv, &lc->mu, &until);
  while (!lc->wake && lc->gate[0] != '\0' && access(lc->gate, F_OK) != 0) {
    struct timespec poll = after_ms(10);
    pthread_cond_timedwait(&lc->cv, &lc->mu, &poll);
  }
  pthread_mutex_unlock(&lc->mu);
  dfnet_status_t st = dfnet_driver_start_complete(lc->driver, lc->start_status);
  dfnet_driver_log(lc->driver, DFNET_DRIVER_LOG_INFO, "start completed with %s: %s",
                   dfnet_status_str(lc->start_status), dfnet_status_str(st));
  return NULL;
}

static dfnet_status_t start_thread(lifecycle_t *lc) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&lc->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&lc->mu, NULL);
  if (pthread_create(&lc->thread, NULL, complete_later, lc) != 0) {
    dfnet_driver_log(lc->driver, DFNET_DRIVER_LOG_ERROR, "cannot create the start thread");
    pthread_cond_destroy(&lc->cv);
    pthread_mutex_destroy(&lc->mu);
    return DFNET_STATUS_INTERNAL;
  }
  lc->thread_running = true;
  return DFNET_STATUS_OK;
}

static dfnet_status_t lc_start(dfnet_driver_t *driver, void *ctx) {
  lifecycle_t *lc = ctx;
  lc->driver = driver;
  read_config(lc);
  trace(lc, "start", NULL);
  dfnet_status_t st = dfnet_driver_serve(driver, "dfnet.test.Lifecycle", lc_methods,
                                         sizeof lc_methods / sizeof lc_methods[0]);
  if (st == DFNET_STATUS_OK && lc->child[0] != '\0')
    st = add_child(lc);
  if (st == DFNET_STATUS_OK && lc->owned[0] != '\0')
    st = add_owned_child(lc);
  if (st != DFNET_STATUS_OK || lc->start_delay_ms < 0)
    return st != DFNET_STATUS_OK ? st : lc->start_status;
  st = dfnet_driver_start_async(driver);
  if (st == DFNET_STATUS_OK)
    st = start_thread(lc);
  return st;
}

/* ---- the other hooks ------------------------------------------------------------------------ */

static dfnet_status_t lc_suspend(dfnet_driver_t *driver, void *ctx, uint32_t flags) {
  (void)driver;
  lifecycle_t *lc = ctx;
  char hex[16];
  snprintf(hex, sizeof hex, "0x%08x", flags);
  trace(lc, "suspend", hex);
  return lc->suspend_status;
}

static dfnet_status_t lc_resume(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  trace(ctx, "resume", NULL);
  return DFNET_STATUS_OK;
}

static void lc_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  lifecycle_t *lc = ctx;
  trace(lc, "prepare_stop", NULL);
  if (!lc->thread_running)
    return;
  pthread_mutex_lock(&lc->mu);
  lc->wake = true;
  pthread_cond_signal(&lc->cv);
  pthread_mutex_unlock(&lc->mu);
  pthread_join(lc->thread, NULL);
  lc->thread_running = false;
  pthread_cond_destroy(&lc->cv);
  pthread_mutex_destroy(&lc->mu);
}

static void lc_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  lifecycle_t *lc = ctx;
  if (lc->stop_delay_ms > 0) {
    struct timespec ts = {lc->stop_delay_ms / 1000, (lc->stop_delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  trace(lc, "stop", NULL);
}

#ifndef LIFECYCLE_API_V1
DFNET_DRIVER("lifecycle", lifecycle_t, .start = lc_start, .prepare_stop = lc_prepare_stop,
             .stop = lc_stop, .suspend = lc_suspend, .resume = lc_resume);
#else
/* A version-1 ops table (the fields before "API version 2" in dfnet_driver_ops_t), with the
 * version-2 hooks right behind it where a driver host must never look. */
typedef struct v1_ops {
  uint32_t api_version;
  const char *name;
  size_t ctx_size;
  dfnet_status_t (*start)(dfnet_driver_t *driver, void *ctx);
  void (*prepare_stop)(dfnet_driver_t *driver, void *ctx);
  void (*stop)(dfnet_driver_t *driver, void *ctx);
} v1_ops_t;

static const struct {
  v1_ops_t ops;
  dfnet_status_t (*suspend)(dfnet_driver_t *driver, void *ctx, uint32_t flags);
  dfnet_status_t (*resume)(dfnet_driver_t *driver, void *ctx);
} lifecycle_v1 = {
    .ops = {.api_version = 1,
            .name = "lifecycle-v1",
            .ctx_size = sizeof(lifecycle_t),
            .start = lc_start,
            .prepare_stop = lc_prepare_stop,
            .stop = lc_stop},
    .suspend = lc_suspend,
    .resume = lc_resume,
};

__attribute__((
    visibility("default"))) extern const dfnet_driver_registration_t dfnet_driver_registration;
const dfnet_driver_registration_t dfnet_driver_registration = {
    .api_version = 1, .ops = (const dfnet_driver_ops_t *)&lifecycle_v1};
#endif
