/* dfnet-host: the host agent (issue 6 "dfnet-host"; docs/design.md "The picture";
 * docs/architecture.md "Host session protocol (dfnet.host.v1)").
 *
 *   dfnet-host --manager wss://HOST:PORT --cert FILE --key FILE --ca FILE [--name NAME]
 *              [--label k=v ...] [--sysfs-root DIR] [--board FILE] [--no-usb]
 *              [--cache-dir DIR] [--driver-host PATH] [--log-level L]
 *              [--stop-grace-ms MS] [--shutdown-reason reboot|poweroff|none]
 *              [--artifact-cache-mb MB] [--allow-resource GLOB ...]
 *              [--allow-right RIGHT ...] [--driver-user NAME] [--no-sandbox]
 *
 * It publishes the hardware of this machine as DFv2 nodes under dev.<host> (enumerators in
 * host/enum/), keeps one session to the manager (reconnecting forever with backoff, and
 * announcing every node again with the drivers still running on them after each
 * reconnect), and does what the manager asks: start and stop drivers in driver host
 * processes (host/supervisor/), with packages from its cache, and carry calls to them.
 * SIGINT / SIGTERM: its driver hosts stop their drivers (prepare_stop, stop) and exit,
 * the session is closed, exit 0; with --shutdown-reason reboot|poweroff the drivers are
 * suspended first (the seeds' suspend(flags), children before parents). The agent does not
 * guess why it is stopped: a unit file that knows (a shutdown or reboot target's ordering)
 * passes the flag. Bad usage or unusable files: one line on stderr, exit 2 (the start-up
 * checks: startup.c). Driver hosts run confined (sandbox.c; --no-sandbox: unconfined, said by
 * a warning at start).
 *
 * Threads
 *   - The main thread runs dfnet_transport_run(): it is the transport's service thread
 *     and the only thread that touches the agent's state (agent_t, nodes, ops, fetches,
 *     driver hosts). Every transport callback, every supervisor callback and every
 *     enumerator event handler runs there, one at a time.
 *   - The supervisor (host/supervisor/) has no thread: it is driven through its epoll fd,
 *     which the transport's loop polls beside its sockets (dfnet_transport_watch_fd).
 *     When it is readable, dfnet_supervisor_dispatch() runs on the main thread, so the
 *     callbacks (driver hosts' envelopes, exits) run there, between transport callbacks.
 *     What a turn of the loop relays to driver hosts (Calls, Cancels, credits) is held
 *     back (dfnet_supervisor_cork) and written at the end of the turn, one write per
 *     driver host for the whole batch (dfnet_transport_set_turn_end).
 *   - The USB enumerator's libusb event thread reports hot-plug. The sink copies each
 *     event into the agent's queue (a mutex-protected FIFO, so order is kept) and posts
 *     one drain. PCI and board events go the same way (from main(), before the loop).
 *   - A small signal thread reads the self-pipe written by the SIGINT/SIGTERM handler and
 *     posts the shutdown. The handler itself only write(2)s one byte.
 *   Posting from those threads stops (under wake_mu) before the transport is destroyed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utlist.h>

#include "host/agent/agent.h"
#include "lib/cmdline.h"
#include "lib/log.h"
#include "lib/log_format.h"
#include "lib/renewer.h"
#include "lib/service_notify.h"
#include "lib/version.h"

#define PROGRAM "dfnet-host"

static int g_signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  ssize_t n = write(g_signal_pipe[1], &b, 1);
  (void)n;
  errno = saved;
}

/* ---- work posted from other threads ---------------------------------------------------- */

/* Post fn unless the transport is going away. Any thread. */
static dfnet_status_t post_guarded(agent_t *a, dfnet_work_fn fn, void *user) {
  dfnet_status_t st = DFNET_STATUS_CANCELLED;
  pthread_mutex_lock(&a->wake_mu);
  if (!a->transport_gone)
    st = dfnet_transport_post(a->t, fn, user);
  pthread_mutex_unlock(&a->wake_mu);
  return st;
}

/* The supervisor's epoll fd is readable (watched by the transport): run its callbacks. */
static void sup_dispatch(void *user) {
  agent_t *a = user;
  dfnet_supervisor_dispatch(a->sup);
}

/* The end of a turn of the loop: write what the turn's calls queued for driver hosts. */
static void turn_end(void *user) {
  agent_t *a = user;
  if (a->sup_corked) {
    a->sup_corked = false;
    dfnet_supervisor_uncork(a->sup);
  }
}

static void queue_drain(void *user) {
  agent_t *a = user;
  pthread_mutex_lock(&a->queue_mu);
  agent_queue_item_t *items = a->queue;
  a->queue = NULL;
  a->queue_posted = false;
  pthread_mutex_unlock(&a->queue_mu);
  dfnet_v1_NodeAdd *add = malloc(sizeof *add);
  agent_queue_item_t *item, *tmp;
  DL_FOREACH_SAFE(items, item, tmp) {
    if (item->kind == AGENT_Q_NODE_REMOVED) {
      agent__enum_node_removed(a, item->moniker);
    } else if (add != NULL &&
               agent__node_add_decode(item->add, item->add_len, add) == DFNET_STATUS_OK) {
      agent__enum_node_added(a, add);
    } else {
      DFNET_LOGE(AGENT_SUBSYS, a->host_name, "an enumerator event was lost (memory)");
    }
    free(item->moniker);
    free(item->add);
    free(item);
  }
  free(add);
}

void agent__queue_push(agent_t *a, agent_queue_item_t *item) {
  pthread_mutex_lock(&a->queue_mu);
  DL_APPEND(a->queue, item);
  bool need_post = !a->queue_posted;
  a->queue_posted = true;
  pthread_mutex_unlock(&a->queue_mu);
  if (need_post && post_guarded(a, queue_drain, a) != DFNET_STATUS_OK) {
    pthread_mutex_lock(&a->queue_mu);
    a->queue_posted = false;
    pthread_mutex_unlock(&a->queue_mu);
  }
}

static void queue_free(agent_t *a) {
  agent_queue_item_t *item, *tmp;
  DL_FOREACH_SAFE(a->queue, item, tmp) {
    free(item->moniker);
    free(item->add);
    free(item);
  }
  a->queue = NULL;
}

/* Enumerator sink: any thread (USB hot-plug comes from libusb's event thread). */
static void sink_added(void *ctx, const dfnet_v1_NodeAdd *node) {
  agent_t *a = ctx;
  agent_queue_item_t *item = calloc(1, sizeof *item);
  if (item == NULL || agent__node_add_encode(node, &item->add, &item->add_len) != DFNET_STATUS_OK) {
    DFNET_LOGE(AGENT_SUBSYS, node->name, "node event lost (memory or encoding)");
    free(item);
    return;
  }
  item->kind = AGENT_Q_NODE_ADDED;
  agent__queue_push(a, item);
}

static void sink_removed(void *ctx, const char *moniker) {
  agent_t *a = ctx;
  agent_queue_item_t *item = calloc(1, sizeof *item);
  if (item == NULL || (item->moniker = strdup(moniker)) == NULL) {
    DFNET_LOGE(AGENT_SUBSYS, moniker, "node removal lost (memory)");
    free(item);
    return;
  }
  item->kind = AGENT_Q_NODE_REMOVED;
  agent__queue_push(a, item);
}

/* ---- shutdown (service thread) --------------------------------------------------------- */

static void stop_now(void *user) {
  agent_t *a = user;
  if (!a->stopped) {
    a->stopped = true;
    dfnet_transport_stop(a->t);
  }
}

static bool g_finishing;

static void shutdown_finish(void *user) {
  agent_t *a = user;
  if (g_finishing)
    return;
  g_finishing = true;
  if (a->dhs != NULL)
    DFNET_LOGW(AGENT_SUBSYS, a->host_name, "driver hosts still running at exit: killed");
  if (a->session != 0 && dfnet_transport_session_close(a->t, a->session, DFNET_STATUS_CANCELLED,
                                                       "host agent stopping") == DFNET_STATUS_OK) {
    /* on_session_closed stops the loop; this timer is the safety net. */
    (void)dfnet_transport_timer_start(a->t, 2000, stop_now, a, NULL);
    return;
  }
  stop_now(a);
}

/* Called by drivers.c after a driver host ended. */
void agent__shutdown_progress(agent_t *a) {
  if (a->shutting_down && a->dhs == NULL)
    shutdown_finish(a);
}

/* Stop every driver, the drivers below a node before its own (prepare_stop, stop), closing
 * each driver host once it has none left; then finish (at the latest after the grace). */
static void shutdown_stop_drivers(agent_t *a) {
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "stopping: stopping the drivers, closing the session");
  if (agent__drivers_close_all(a)) {
    shutdown_finish(a);
    return;
  }
  (void)dfnet_transport_timer_start(a->t, a->opt.stop_grace_ms + 2000, shutdown_finish, a, NULL);
}

/* SIGINT / SIGTERM. With --shutdown-reason reboot or poweroff, every running driver is
 * suspended first (children before parents, within --stop-grace-ms: lifecycle.c). */
static void shutdown_begin(void *user) {
  agent_t *a = user;
  if (a->shutting_down)
    return;
  a->shutting_down = true;
  uint32_t flags = agent__shutdown_flags(&a->opt);
  if (flags != 0 && agent__shutdown_suspend(a, flags, shutdown_stop_drivers))
    return;
  shutdown_stop_drivers(a);
}

static void *signal_thread(void *arg) {
  agent_t *a = arg;
  for (;;) {
    unsigned char b;
    ssize_t n = read(g_signal_pipe[0], &b, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || b == 0)
      return NULL;
    dfnet_service_notify_stopping("stopping");
    if (post_guarded(a, shutdown_begin, a) != DFNET_STATUS_OK)
      return NULL;
  }
}

/* ---- the enumerators ------------------------------------------------------------------ */

/* Create and start the enumerators. Returns false (after one line) when the board file
 * cannot be used; PCI or USB trouble is logged and the agent goes on without them. */
static bool start_enumerators(agent_t *a) {
  dfnet_enum_sink_t sink = {.node_added = sink_added, .node_removed = sink_removed, .ctx = a};
  dfnet_enum_t *e = NULL;
  if (dfnet_enum_pci_new(a->opt.sysfs_root, &e) == DFNET_STATUS_OK) {
    a->enums[a->enum_count++] = e;
    if (dfnet_enum_start(e, &sink) != DFNET_STATUS_OK)
      DFNET_LOGW(AGENT_SUBSYS, a->host_name, "PCI enumeration of %s failed: no PCI nodes",
                 a->opt.sysfs_root);
  }
  if (a->opt.board_file != NULL) {
    e = NULL;
    if (dfnet_enum_board_new(a->opt.board_file, &e) != DFNET_STATUS_OK)
      return dfnet_cmdline_usage(PROGRAM, "--board %s: cannot be used", a->opt.board_file), false;
    a->enums[a->enum_count++] = e;
    dfnet_status_t st = dfnet_enum_start(e, &sink);
    if (st != DFNET_STATUS_OK) {
      dfnet_cmdline_usage(PROGRAM, "--board %s: %s (see the line above)", a->opt.board_file,
                          dfnet_status_str(st));
      return false;
    }
  }
  if (!a->opt.no_usb) {
    e = NULL;
    if (dfnet_enum_usb_new(&e) == DFNET_STATUS_OK) {
      a->enums[a->enum_count++] = e;
      if (dfnet_enum_start(e, &sink) != DFNET_STATUS_OK)
        DFNET_LOGW(AGENT_SUBSYS, a->host_name, "USB enumeration failed: no USB nodes");
    }
  }
  return true;
}

/* ---- main ---------------------------------------------------------------------------- */

/* Make every thread that posts stop posting, then destroy the transport (its callbacks
 * still run during destroy, on this thread). */
static void transport_teardown(agent_t *a) {
  pthread_mutex_lock(&a->wake_mu);
  a->transport_gone = true;
  pthread_mutex_unlock(&a->wake_mu);
  dfnet_transport_destroy(a->t);
  a->t = NULL;
  dfnet_renewer_free(a->renewer); /* after the transport: a CertRenew in flight ended */
  a->renewer = NULL;
}

/* Everything after the start-up checks. Returns the exit code. */
static int run_agent(agent_t *a) {
  int rc = 1;
  pthread_t sig_thread;
  bool sig_thread_started = false;
  if (dfnet_transport_create(&a->t) != DFNET_STATUS_OK)
    return 1;
  if ((rc = agent__metrics_start(a)) != 0) /* --metrics-listen (issue 24 item 4) */
    goto destroy_transport;
  rc = 1;
  /* driver hosts log to the same stderr: at the same level, in the same format */
  const char *extra[5] = {"--log-format", dfnet_log_format_name(dfnet_log_format_get()), NULL, NULL,
                          NULL};
  if (a->opt.log_level != NULL) {
    extra[2] = "--log-level";
    extra[3] = a->opt.log_level;
  }
  dfnet_supervisor_config_t sc = {.driver_host_path = a->driver_host_path,
                                  .extra_args = extra,
                                  .stop_grace_ms = a->opt.stop_grace_ms,
                                  .on_envelope = agent__dh_on_envelope,
                                  .on_exit = agent__dh_on_exit,
                                  .arg = a};
  agent__sandbox_config(a, &sc.sandbox);
  dfnet_status_t st = dfnet_supervisor_new(&sc, &a->sup);
  if (st != DFNET_STATUS_OK) {
    rc = dfnet_cmdline_usage(PROGRAM, "--driver-host %s: cannot start the supervisor: %s",
                             a->driver_host_path, dfnet_status_str(st));
    goto destroy_transport;
  }
  st = dfnet_transport_watch_fd(a->t, dfnet_supervisor_fd(a->sup), sup_dispatch, a);
  if (st == DFNET_STATUS_OK)
    st = dfnet_transport_set_turn_end(a->t, turn_end, a);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-host: cannot watch the supervisor: %s\n", dfnet_status_str(st));
    goto free_supervisor;
  }
  if (!start_enumerators(a)) {
    rc = DFNET_CMDLINE_EXIT_USAGE;
    goto stop_enumerators;
  }
  dfnet_client_config_t cc = {.url = a->opt.manager_url,
                              .subprotocol = DFNET_SUBPROTOCOL_HOST,
                              .cert_file = a->opt.cert_file,
                              .key_file = a->opt.key_file,
                              .ca_file = a->opt.ca_file,
                              .backoff_initial_ms = 250,
                              .backoff_multiplier = 1.6,
                              .backoff_max_ms = 5000,
                              /* a relay: a turn's replies go out in one write */
                              .limits = {.batch_messages = 16, .keepalive_ms = a->opt.keepalive_ms},
                              .callbacks = {.on_session_open = agent__on_session_open,
                                            .on_envelope = agent__on_envelope,
                                            .on_session_closed = agent__on_session_closed},
                              .user = a};
  st = dfnet_transport_connect(a->t, &cc, &a->endpoint);
  if (st != DFNET_STATUS_OK) {
    rc = dfnet_cmdline_usage(PROGRAM, "--manager %s: %s", a->opt.manager_url, dfnet_status_str(st));
    goto stop_enumerators;
  }
  sig_thread_started = pthread_create(&sig_thread, NULL, signal_thread, a) == 0;
  if (agent__os_host_name[0] != '\0')
    DFNET_LOGI(AGENT_SUBSYS, a->host_name,
               "host name \"%s\" differs from the certificate's name: publishing as \"%s\"",
               agent__os_host_name, a->host_name);
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "%s: manager %s, cache %s, driver host %s",
             dfnet_version_software(), a->opt.manager_url, a->cache_dir, a->driver_host_path);
  agent__sandbox_announce(a);
  dfnet_service_notify_ready("serving; manager %s", a->opt.manager_url); /* reconnects forever */

  st = dfnet_transport_run(a->t);
  rc = st == DFNET_STATUS_OK ? 0 : 1;
  if (sig_thread_started) {
    unsigned char quit = 0;
    ssize_t n = write(g_signal_pipe[1], &quit, 1);
    (void)n;
    pthread_join(sig_thread, NULL);
  }
  DFNET_LOGI(AGENT_SUBSYS, a->host_name, "stopped");

stop_enumerators:
  for (size_t i = 0; i < a->enum_count; i++)
    dfnet_enum_stop(a->enums[i]);
free_supervisor:
  transport_teardown(a);
  dfnet_supervisor_free(a->sup);
  a->sup = NULL;
  return rc;
destroy_transport:
  transport_teardown(a);
  return rc;
}

int main(int argc, char **argv) {
  static agent_t agent;
  agent_t *a = &agent;
  char err[512];
  if (argc > 1 && strcmp(argv[1], "join") == 0) /* enrol with a join token (join.c) */
    return agent__join(argc - 1, argv + 1);
  if (agent__options_parse(argc, argv, &a->opt, err, sizeof err) != DFNET_STATUS_OK)
    return dfnet_cmdline_usage(PROGRAM, "%s", err);
  if (a->opt.help) {
    fputs(agent__usage(), stdout);
    return 0;
  }
  if (a->opt.version) {
    dfnet_version_print("dfnet-host");
    return 0;
  }
  if (a->opt.log_level != NULL) {
    dfnet_log_level_t level;
    if (dfnet_log_level_parse(a->opt.log_level, &level) == 0)
      dfnet_log_set_level(level);
  }
  if (dfnet_log_format_configure(a->opt.log_format) != 0)
    return dfnet_cmdline_usage(PROGRAM, "DFNET_LOG_FORMAT '%s': want text or json",
                               getenv("DFNET_LOG_FORMAT"));
  if (!agent__check_credentials(a) || !agent__check_inputs(a))
    return DFNET_CMDLINE_EXIT_USAGE;

  pthread_mutex_init(&a->queue_mu, NULL);
  pthread_mutex_init(&a->wake_mu, NULL);
  a->scratch = agent__envelope_new();
  if (a->scratch == NULL || pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    fprintf(stderr, "dfnet-host: out of resources at start\n");
    free(a->scratch);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN); /* a closed terminal or a reload request must not stop the host */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int rc = run_agent(a);

  for (size_t i = 0; i < a->enum_count; i++)
    dfnet_enum_destroy(a->enums[i]);
  queue_free(a);
  agent__ops_free(a);
  agent__cache_free(a);
  agent__artifacts_free(a);
  agent__nodes_free(a);
  agent__drivers_free(a);
  agent__lifecycle_free(a);
  agent__metrics_free(a);
  free(a->pending_exits);
  free(a->scratch);
  close(g_signal_pipe[0]);
  close(g_signal_pipe[1]);
  return rc;
}
