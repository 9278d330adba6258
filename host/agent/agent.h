/* dfnet-host internals: the state of the host agent and the functions its files share
 * (issue 6 "dfnet-host"; docs/architecture.md "Host session protocol (dfnet.host.v1)").
 *
 * Everything here is owned by the transport's service thread (see the top of main.c):
 * no function of this header may be called from another thread, except
 * agent__queue_push(), which is how other threads hand events in.
 *
 * Files: main.c (process, signals, threading), startup.c (the start-up checks: credentials,
 * inputs, driver host, cache directory), options.c (command line), nodes.c (the
 * node table), session.c (Hello, announcing, requests from the manager), cache.c (the
 * package cache and PackageFetch), drivers.c (DriverStart, driver hosts, supervisor
 * events), driver_stop.c (DriverStop, the stop order), calls.c (Call/Cancel/StreamCredit
 * forwarding: the manager's calls to drivers, and drivers' calls to other drivers, which it routes
 * to another driver host or to the manager), lifecycle.c (DriverSuspend/DriverResume,
 * ListDriverHosts, the suspend of every driver before a shutdown), artifacts.c
 * (dfnet.lab.ArtifactCache: the host's cache of uploaded artifacts, answered by the agent itself;
 * its bound in artifact_cache.c, its hash checkpoints in artifact_checkpoint.c, what those share
 * in artifacts_internal.h),
 * grants.c (what a driver is granted: the rights of its driver host, --allow-right, and the
 * descriptors opened for it).
 */
#ifndef DFNET_HOST_AGENT_AGENT_H
#define DFNET_HOST_AGENT_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uthash.h>

#include "dfnet/status.h"
#include "dfnet/v1/envelope.pb.h"
#include "host/enum/enum.h"
#include "host/supervisor/resources.h"
#include "host/supervisor/supervisor.h"
#include "lib/envelope.h"
#include "lib/package.h"
#include "lib/transport.h"

#define AGENT_SUBSYS "host"
#define AGENT_MONIKER_MAX 512             /* NodeAdd.parent / Call.target bound, with the NUL */
#define AGENT_LABELS_MAX 16               /* Hello.labels */
#define AGENT_FETCH_CHUNK (1024u * 1024u) /* PackageFetch.max_bytes we ask for */
#define AGENT_FETCH_DEADLINE_MS 30000u    /* per PackageFetch request */
#define AGENT_REQUEST_DEADLINE_MS 30000u  /* Hello, NodeAdd, NodeRemove */
#define AGENT_ALLOW_RESOURCES_MAX 32      /* --allow-resource globs */
/* Without any --allow-resource: the hardware RNG and hw_random's current source (read-only
 * sysfs text; virtio-rng checks it, drivers/virtio-rng). */
#define AGENT_ALLOW_RESOURCE_DEFAULT_1 "/dev/hwrng"
#define AGENT_ALLOW_RESOURCE_DEFAULT_2 "/sys/class/misc/hw_random/rng_current"
#define AGENT_DRIVER_USER_DEFAULT "dfnet-driver" /* --driver-user */
#define AGENT_RIGHTS_LISTED 8                    /* DriverHostInfo.rights max_count */

/* ---- command line (options.c) ------------------------------------------------------ */

typedef struct agent_label {
  char key[64];
  char value[128];
} agent_label_t;

/* --shutdown-reason: what a SIGTERM means for the drivers (docs/architecture.md "Host
 * session protocol", step 12). */
typedef enum agent_shutdown_reason {
  AGENT_SHUTDOWN_NONE = 0, /* stop the drivers */
  AGENT_SHUTDOWN_REBOOT,   /* suspend them (DFNET_SUSPEND_FLAG_REBOOT), then stop them */
  AGENT_SHUTDOWN_POWEROFF, /* the same with DFNET_SUSPEND_FLAG_POWEROFF */
} agent_shutdown_reason_t;

typedef struct agent_options {
  /* --config: the configuration file (NULL: host.conf in the default directory; options.c) */
  const char *config;
  const char *manager_url; /* wss://HOST:PORT[/path] */
  const char *cert_file;
  const char *key_file;
  const char *ca_file;
  /* --state-dir: where `dfnet-host join` wrote host.key, host.crt, ca.crt, labels and
   * manager (state_dir.c); the defaults of --cert, --key, --ca and --manager. NULL: the
   * default (state_dir.c agent__state_dir_default) */
  const char *state_dir;
  const char *name; /* NULL: the host name (see startup.c for the certificate's CN) */
  agent_label_t labels[AGENT_LABELS_MAX];
  size_t label_count;
  const char *sysfs_root; /* default "/sys" */
  const char *board_file; /* NULL: none */
  bool no_usb;
  const char *cache_dir;                   /* NULL: default (startup.c) */
  const char *driver_host;                 /* NULL: beside this executable */
  const char *log_level;                   /* NULL: DFNET_LOG_LEVEL or info */
  const char *log_format;                  /* --log-format: NULL: DFNET_LOG_FORMAT or text */
  uint32_t stop_grace_ms;                  /* --stop-grace-ms, default 5000 */
  agent_shutdown_reason_t shutdown_reason; /* --shutdown-reason, default none */
  uint32_t keepalive_ms; /* --keepalive-ms: ping after this much silence, drop after 3x */
  /* --artifact-cache-mb: the artifact cache's bound, MiB (default 8192; artifacts.c) */
  uint32_t artifact_cache_mb;
  /* --allow-resource: the globs a manifest resource must match (drivers.c, resources.h);
   * none given: the two AGENT_ALLOW_RESOURCE_DEFAULT_* */
  const char *allow_resources[AGENT_ALLOW_RESOURCES_MAX];
  size_t allow_resource_count;
  /* --driver-user: the user driver hosts run as when the agent runs as root (default
   * AGENT_DRIVER_USER_DEFAULT; main.c looks it up) */
  const char *driver_user;
  /* --no-sandbox: driver hosts run unconfined, as the agent, and no right is checked */
  bool no_sandbox;
  /* --allow-right: the rights (DFNET_RIGHT_* bits, lib/driver_rights.h) a driver may ask
   * for on this host (grants.c); default none */
  uint32_t allow_rights;
  /* --metrics-listen ADDR:PORT: plain HTTP GET /metrics (metrics.c; NULL: none) */
  const char *metrics_listen;
  bool help;    /* --help / -h: print agent__usage() */
  bool version; /* --version: print the version */
} agent_options_t;

/* Parse argv, then the configuration file (--config, else host.conf: options.c), into *out
 * (pointers into argv and the file's text, kept until exit). On a bad flag, a missing or
 * out-of-range value, a malformed manager URL or a bad configuration file ("FILE:LINE:
 * ..."): writes a one-line reason into err[0..err_size) and returns INVALID_ARGUMENT. No
 * other file is opened here. */
dfnet_status_t agent__options_parse(int argc, char **argv, agent_options_t *out, char *err,
                                    size_t err_size);

/* The usage text (static). */
const char *agent__usage(void);

/* ---- state directory and join (state_dir.c, join.c; issue 23 item 2) ----------------- */

#define AGENT_STATE_KEY "host.key"    /* 0600: the key, made by join, never sent */
#define AGENT_STATE_CERT "host.crt"   /* the certificate the manager issued for it */
#define AGENT_STATE_CA "ca.crt"       /* the manager's CA (its pin checked by join) */
#define AGENT_STATE_LABELS "labels"   /* the join token's labels, "key=value" lines */
#define AGENT_STATE_MANAGER "manager" /* the manager's URL, one line */

/* Renewal (renew.c, lib/renewer.h): after each Welcome, renew this host's certificate at 2/3
 * of its lifetime (+- 10 %) over the session with a new key (CertRenew); the new key and
 * certificate replace the files (--key, --cert) atomically and the transport presents them
 * from the next connection on; the session carries on. A refusal is logged once and the
 * certificate kept until it expires. The renewer is made at the first call (a failure is
 * logged: no renewal). Service thread. */
struct agent;
void agent__renew_schedule(struct agent *a);

/* Add label "KEY=VALUE" to o->labels, checked as --label's (options.c). false: err says why. */
bool agent__label_parse(const char *text, agent_options_t *o, char *err, size_t err_size);

/* The default state directory into out: $DFNET_HOST_STATE_DIR, else /var/lib/dfnet-host
 * for root, else $XDG_STATE_HOME/dfnet-host, else ~/.local/state/dfnet-host. */
void agent__state_dir_default(char *out, size_t cap);

/* Complete parsed options from the state directory (o->state_dir or the default): a missing
 * --manager, --cert, --key or --ca is taken from its file there when that file exists, and
 * the labels file's labels are added (a --label of the same key wins). Then every one of the
 * four must be set. Errors (err: one line): INVALID_ARGUMENT (one missing: says join or the
 * flag; a malformed labels file). The paths live in static storage (one agent a process). */
dfnet_status_t agent__state_defaults(agent_options_t *o, char *err, size_t err_size);

/* `dfnet-host join URL --token T --ca-pin P [--name N] [--state-dir D]` (argv[0] is "join"):
 * enrols this host (lib/enroll.h) and writes the state directory. Prints where and the
 * next command; one line with the status on a refusal. Returns the exit code: 0, 1 (the
 * manager refused, or a file could not be written), 2 (usage). */
int agent__join(int argc, char **argv);

/* ---- state -------------------------------------------------------------------------- */

typedef enum agent_driver_state {
  AGENT_DRIVER_NONE = 0, /* no driver on the node */
  AGENT_DRIVER_FETCHING, /* DriverStart accepted, package being fetched */
  AGENT_DRIVER_STARTING, /* DriverStart sent to the driver host */
  AGENT_DRIVER_RUNNING,
  AGENT_DRIVER_STOPPING, /* DriverStop sent to the driver host */
  AGENT_DRIVER_DEAD,     /* its driver host died; calls fail UNAVAILABLE until the
                            manager starts or stops it */
} agent_driver_state_t;

/* One node the agent publishes: from an enumerator or added by a driver. Kept in
 * announce order (parents before children). */
typedef struct agent_node {
  /* utlist DL: agent_t.nodes_head */
  struct agent_node *prev, *next;
  uint64_t uid;  /* never reused: names the record across loop turns */
  char *moniker; /* full: "dev.<host>.pci.00_05_0" */
  uint8_t *add;  /* the NodeAdd, protobuf-encoded (full parent moniker, no
                    driver_url/driver_host_id) */
  size_t add_len;
  uint64_t origin_host; /* 0: an enumerator's; UINT64_MAX: a composite node the manager made
                           (drivers.c); else the driver host whose driver added it */
  /* The driver bound to this node. */
  agent_driver_state_t driver;
  char *driver_url;
  uint64_t driver_host_id;
  /* Who waits for the answer of the DriverStart / DriverStop in progress (0: nobody,
   * e.g. after a reconnect or a stop of our own). */
  dfnet_session_id_t req_session;
  uint64_t req_id;
  uint64_t op_local_id; /* the START / STOP op in flight, 0 when none */
  /* A DriverStop that came while STARTING: stop as soon as it has started, then answer
   * this request. */
  bool stop_after_start;
  dfnet_session_id_t stop_session;
  uint64_t stop_id;
  struct agent_pending_start *pending_start; /* FETCHING: what to start once fetched */
  bool suspended;     /* RUNNING, and its driver host answered a DriverSuspend OK (no resume) */
  char *offered;      /* the offers its driver was given (offered.c); NULL: none */
  size_t offered_len; /* bytes in offered */
  char *resources;    /* what its driver was handed, "<name> <path>\n" each (drivers.c, shown
                         by ListDriverHosts); NULL: none */
} agent_node_t;

/* A DriverStart waiting for its package. */
typedef struct agent_pending_start {
  dfnet_v1_DriverStart msg;
  uint8_t *program; /* the manifest's program JSON (bulk), copied */
  size_t program_len;
} agent_pending_start_t;

/* ---- offered.c: the offers a node's driver was given ---- */
/* Keep DriverStart.offered as n's driver's offers (what was kept before goes). Service
 * thread. Returns false without memory (n then has none: its driver's calls to other
 * drivers of the board are refused). */
bool agent__offered_set(agent_node_t *n, const dfnet_v1_DriverStart *m);
/* Forget n's offers. */
void agent__offered_clear(agent_node_t *n);
/* Was n's driver offered the service of `method` ("/<package>.<Service>/<Method>") with
 * `source` (a moniker) as the node serving it? The agent's check of a driver's call within
 * the board (the manager's offers__permit across boards). */
bool agent__offered_permits(const agent_node_t *n, const char *source, const char *method);

/* Free a pending start (NULL is a no-op). */
void agent__pending_start_free(agent_pending_start_t *ps);

/* One driver host process. */
typedef struct agent_dh {
  struct agent_dh *next;
  uint64_t id;
  pid_t pid;
  unsigned drivers; /* nodes whose driver is starting, running or stopping in it */
  bool closing;     /* we asked it to go: its exit is not a crash */
  uint32_t rights;  /* its first driver's rights (DFNET_RIGHT_* bits): what it was confined
                       with; a driver colocated later may ask for no more (grants.c) */
} agent_dh_t;

/* What a request to a driver host is (ops keyed by our own id on the link). */
typedef enum agent_op_kind {
  AGENT_OP_START,
  AGENT_OP_STOP,
  AGENT_OP_CALL,
  AGENT_OP_SUSPEND, /* lifecycle.c */
  AGENT_OP_RESUME,
} agent_op_kind_t;

typedef struct agent_op agent_op_t;
struct agent_stop_wait;
struct agent_suspend_all;
typedef struct agent_fetch agent_fetch_t;
typedef struct agent_upload agent_upload_t;
typedef struct agent_queue_item agent_queue_item_t;

typedef struct agent {
  agent_options_t opt;
  char host_name[65];
  char root[72]; /* "dev.<host>" */
  char cache_dir[4096];
  char artifact_dir[4200]; /* <cache_dir>/artifacts: the artifact cache (artifacts.c) */
  char driver_host_path[4096];
  /* confinement (sandbox.c): the user driver hosts run as (the agent's own unless it is root
   * and sandboxed), and the directories of driver code they read, NULL-terminated */
  uid_t driver_uid;
  gid_t driver_gid;
  const char *sandbox_read_only[2];

  dfnet_transport_t *t;
  dfnet_endpoint_id_t endpoint;
  dfnet_session_id_t session; /* the current manager session, 0 when disconnected */
  bool welcomed;              /* Welcome received on `session` */
  uint32_t host_grace_ms;
  /* renewal of this host's certificate (renew.c, lib/renewer.h; issue 23 item 3): made at
   * the first Welcome, freed after the transport */
  struct dfnet_renewer *renewer;

  /* One envelope to fill and send (sends encode during the call). Never held across a
   * call that might send something else. Each user resets it first: dfnet_envelope_init(),
   * or dfnet_envelope_reuse() where it then fills the member completely (calls.c relays
   * one per Call, Reply, Cancel and StreamCredit). */
  dfnet_envelope_t *scratch;

  dfnet_supervisor_t *sup;
  bool sup_corked;         /* calls of this loop turn wait for its end (main.c turn_end) */
  pthread_mutex_t wake_mu; /* guards transport_gone against posts from other threads */
  bool transport_gone;     /* a dispatch is queued on the service thread */

  dfnet_enum_t *enums[3];
  size_t enum_count;

  /* Events from other threads (enumerator hot-plug), in order. */
  pthread_mutex_t queue_mu;
  agent_queue_item_t *queue; /* utlist DL, oldest first (the head's prev is the tail) */
  bool queue_posted;

  agent_node_t *nodes_head; /* utlist DL, announce order (the head's prev is the tail) */
  size_t node_count;
  uint64_t next_uid;

  /* utlist LLs (drivers.c, driver_stop.c): the driver hosts running; the stops waiting for the
   * drivers below; the DriverStops answered once a driver this host stopped on its own has. */
  agent_dh_t *dhs;
  struct agent_stop_wait *stop_waits;
  struct agent_stop_answer *stop_answers;
  struct agent_suspend_all *suspend_all; /* the suspend before a shutdown (lifecycle.c) */
  agent_op_t *ops_by_local;              /* uthash on local_id */
  agent_op_t *calls_by_peer;             /* uthash on (session, manager id), or (AGENT_DH_KEY(driver
                                            host), its id) for a driver's call: calls only */
  uint64_t next_local_id;

  agent_fetch_t *fetches;
  agent_upload_t *uploads; /* artifact uploads under way, uthash by digest (artifacts.c) */

  /* DriverHostExit events that happened while disconnected, sent after the next Welcome. */
  dfnet_v1_DriverHostExit *pending_exits;
  size_t pending_exit_count;

  bool shutting_down;
  bool stopped; /* transport asked to stop */

  /* counters for logs, tests and the benchmark */
  uint64_t announces; /* full announces done */
  uint64_t session_opens;
  struct agent_metrics *metrics; /* metrics.c (NULL: none kept) */
} agent_t;

/* ---- metrics.c: counters, state at scrape time, --metrics-listen (docs/metrics.md) ----
 * Service thread; every hook is a no-op while a->metrics is NULL. */
/* Make a->metrics and, with --metrics-listen, listen there (plain HTTP GET /metrics),
 * printing "dfnet-host: metrics on ADDR:PORT". Returns 0, or the exit code (printed: 2 for
 * a malformed ADDR:PORT, 1 when it cannot listen or without memory). Before the loop runs. */
int agent__metrics_start(agent_t *a);
/* Free a->metrics (after the transport). */
void agent__metrics_free(agent_t *a);
/* A session to the manager opened (its TLS handshake: full or resumed; a reconnect). */
void agent__metrics_session_open(agent_t *a, const dfnet_session_info_t *info);
/* A driver start completed with `code` (OK: running). */
void agent__metrics_driver_start(agent_t *a, dfnet_status_t code);
/* A driver host exited without being asked to. */
void agent__metrics_driver_host_crash(agent_t *a);
/* A call from the manager relayed to a driver host (reply false: counted, with its payload
 * bytes) or a reply's payload bytes relayed back (reply true). */
void agent__metrics_call(agent_t *a, bool reply, size_t bytes);

/* ---- start-up checks (startup.c) ---------------------------------------------------
 * Main thread, before the transport exists: main() runs them in this order and exits 2 when
 * one returns false (it has printed one line saying why). */

/* The OS host name when it differs from the certificate's CN and no --name was given (set by
 * agent__check_credentials, logged once by main.c when the agent runs); "" otherwise. */
extern char agent__os_host_name[256];

/* Load and check the credentials; set the host name. --cert, --key and --ca must be readable
 * regular files, the key the certificate's, the certificate a host's ("host" role) verified
 * by the CA, and --name (if given) its CN. On true a->host_name is the CN and a->root
 * "dev.<CN>". On false one line was printed: by pki itself for a file it cannot load, verify
 * or pair, else a usage line naming the flag. */
bool agent__check_credentials(agent_t *a);

/* Check the inputs: --sysfs-root (a directory), --board (a readable regular file); find the
 * driver host executable (--driver-host, else $DFNET_DRIVER_HOST, else dfnet-driver-host
 * beside this executable or in the build tree's host/driver_host/) into a->driver_host_path;
 * make the cache directory (--cache-dir, else $XDG_CACHE_HOME/dfnet-host,
 * ~/.cache/dfnet-host or /var/cache/dfnet-host; agent__cache_init) into a->cache_dir (made
 * absolute) and its artifacts/ into a->artifact_dir; then agent__sandbox_prepare. false:
 * one usage line was printed (the first check that failed). */
bool agent__check_inputs(agent_t *a);

/* ---- queue (main.c) -------------------------------------------------------------- */

/* An event from another thread. */
struct agent_queue_item {
  agent_queue_item_t *next, *prev;
  enum { AGENT_Q_NODE_ADDED, AGENT_Q_NODE_REMOVED } kind;
  char *moniker; /* relative (enumerator), for removals */
  uint8_t *add;  /* encoded relative NodeAdd, for additions */
  size_t add_len;
};

/* Append an item (taking ownership) and make sure the service thread drains the queue.
 * Any thread. */
void agent__queue_push(agent_t *a, agent_queue_item_t *item);

/* ---- nodes (nodes.c) --------------------------------------------------------------- */

/* Encode / decode a NodeAdd for the table. encode: *out malloc'd (caller frees).
 * Returns OK, INVALID_ARGUMENT (does not encode / decode), RESOURCE_EXHAUSTED (memory). */
dfnet_status_t agent__node_add_encode(const dfnet_v1_NodeAdd *add, uint8_t **out, size_t *len);
dfnet_status_t agent__node_add_decode(const uint8_t *buf, size_t len, dfnet_v1_NodeAdd *out);

/* The node with this full moniker, or NULL. */
agent_node_t *agent__node_find(agent_t *a, const char *moniker);
agent_node_t *agent__node_find_uid(agent_t *a, uint64_t uid);

/* Insert a node (add->parent is full; the moniker is parent.name). The parent must be
 * known (or be the host root). Returns OK with *out; ALREADY_EXISTS; NOT_FOUND (unknown
 * parent); INVALID_ARGUMENT (name with '.', moniker too long); RESOURCE_EXHAUSTED. */
dfnet_status_t agent__node_insert(agent_t *a, const dfnet_v1_NodeAdd *add, uint64_t origin_host,
                                  agent_node_t **out);

/* Remove the node and its subtree from the table. A driver still live on a removed node
 * is stopped (agent__driver_stop_local). Tells nobody else. */
void agent__node_drop_subtree(agent_t *a, agent_node_t *node);

/* Remove the nodes added by drivers below `node` (not node itself). */
void agent__node_drop_driver_children(agent_t *a, agent_node_t *node);

/* Is `moniker` equal to `ancestor` or below it? */
bool agent__moniker_within(const char *moniker, const char *ancestor);

/* Free every node (shutdown). */
void agent__nodes_free(agent_t *a);

/* ---- session (session.c) ------------------------------------------------------------ */

void agent__on_session_open(void *user, const dfnet_session_info_t *info);
void agent__on_session_closed(void *user, dfnet_session_id_t session, dfnet_status_t reason,
                              const char *message);

/* NodeRemove from the manager, which removed the node's subtree after a driver host crash
 * without restart: nodes that drivers added are dropped here too; a hardware node stays (it
 * is announced again after the next reconnect). Answered OK when it carries an id. */
void agent__handle_node_remove(agent_t *a, dfnet_session_id_t session, const dfnet_envelope_t *env);

/* ---- the message tables (dispatch.c) --------------------------------------------------
 * Service thread. What the manager sends a welcomed agent, each member to its handler (while
 * the agent stops, only Cancel and StreamCredit; the rest is answered UNAVAILABLE), and
 * what the driver hosts send (main.c wires agent__dh_on_envelope as the supervisor's
 * callback). A member without a handler: UNIMPLEMENTED to a manager's request, else logged
 * and dropped. */
void agent__on_envelope(void *user, dfnet_session_id_t session, const dfnet_envelope_t *env);
void agent__dh_on_envelope(void *arg, uint64_t host_id, const dfnet_envelope_t *env);

/* Send NodeAdd for a node now, when welcomed (announce or new node). */
void agent__send_node_add(agent_t *a, agent_node_t *node);
/* Send NodeRemove{moniker} now, when welcomed. */
void agent__send_node_remove(agent_t *a, const char *moniker);
/* Send DriverHostExit now when welcomed, else keep it for after the next Welcome. */
void agent__send_driver_host_exit(agent_t *a, const dfnet_v1_DriverHostExit *ex);

/* Answer a manager request with a Status (if the session is still the current one). */
void agent__reply_status(agent_t *a, dfnet_session_id_t session, uint64_t id, dfnet_status_t code,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* An enumerator node (relative parent) arrived from the queue / was removed. */
void agent__enum_node_added(agent_t *a, const dfnet_v1_NodeAdd *rel);
void agent__enum_node_removed(agent_t *a, const char *rel_moniker);

/* Requests from a driver host: a driver adds or removes a child node (step 7). */
void agent__dh_node_add(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *req);
void agent__dh_node_remove(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *req);

/* Answer a driver host's request with a Status carrying its id. */
void agent__dh_answer_status(agent_t *a, uint64_t dh_id, uint64_t request_id, dfnet_status_t code,
                             const char *message);

/* A new envelope, zeroed (heap: Envelope is 34 KiB). NULL when out of memory. */
dfnet_envelope_t *agent__envelope_new(void);

/* ---- package cache (cache.c) -------------------------------------------------------- */

/* Create the cache directory (mode 0711; the parents it makes 0755) if needed, and make an
 * existing one 0711 (cache.c "Modes"). Returns OK; else one line into err[err_size] and
 * INVALID_ARGUMENT (path too long, not a directory), PERMISSION_DENIED (not writable), or
 * the errno's status (mkdir, chmod). */
dfnet_status_t agent__cache_init(const char *dir, char *err, size_t err_size);

/* Is the package in the cache and sound? On OK, dir_out gets its unpacked directory.
 * NOT_FOUND: not cached. A corrupt entry (archive digest, unpacked file differing from
 * the archive, binary missing) is removed, logged, and NOT_FOUND returned. */
dfnet_status_t agent__cache_lookup(agent_t *a, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                   const char *binary, char *dir_out, size_t dir_size);

/* Store verified archive bytes and unpack them. On OK dir_out gets the unpacked dir. */
dfnet_status_t agent__cache_store(agent_t *a, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                                  const uint8_t *data, size_t size, char *dir_out, size_t dir_size,
                                  char *err, size_t err_size);

/* Fetch a package from the manager (PackageFetch chunks), verify, store; then call
 * done(a, node_uid, status, dir, message) for every waiter. Several waiters on one digest
 * share one fetch. done is called later (never during this call). */
typedef void (*agent_fetch_done_fn)(agent_t *a, uint64_t node_uid, dfnet_status_t st,
                                    const char *dir, const char *message);
void agent__cache_fetch(agent_t *a, const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE],
                        uint64_t node_uid, agent_fetch_done_fn done);

/* Fail every fetch of this session (session closed). */
void agent__cache_session_closed(agent_t *a, dfnet_session_id_t session);
void agent__cache_free(agent_t *a);

/* ---- artifact cache (artifacts.c) -------------------------------------------------- */

/* Is `method` one of dfnet.lab.ArtifactCache ("/dfnet.lab.ArtifactCache/...")? The agent
 * answers those itself, for any node of this host. */
bool agent__artifact_method(const char *method);

/* Answer a Call of dfnet.lab.ArtifactCache (proto/dfnet/lab/artifact.proto) from the manager
 * session `session` with envelope id `id`; payload (the Call's bulk, borrowed for the call)
 * is the request. Answered before it returns, with one final Reply: OK with the encoded
 * ArtifactStatus in the bulk, or an error: INVALID_ARGUMENT (not the method's message;
 * sha256 not 32 bytes; total_size 0; a Put chunk empty, over 4 MiB or past total_size),
 * RESOURCE_EXHAUSTED (total_size over --artifact-cache-mb; the cache cannot make room: its
 * bound or its disk; ENOSPC/EDQUOT while writing), FAILED_PRECONDITION ("expected offset N":
 * a Put not at the bytes held), DATA_LOSS (the SHA-256 of the whole upload differs: it is
 * discarded), INTERNAL (a file operation of the cache failed: the message has the path and
 * the errno text), UNIMPLEMENTED (another method). Runs blocking file I/O (a pwrite per Put;
 * at the last one, an fsync; the first Put after a restart hashes the .part held) on the
 * service thread. Layout, resume and eviction: the top of artifacts.c. */
void agent__artifact_call(agent_t *a, dfnet_session_id_t session, uint64_t id,
                          const dfnet_v1_Call *call, dfnet_bytes_t payload);

/* A driver host's ArtifactOpen (proto/dfnet/v1/driver.proto) from driver host `dh_id`:
 * answered with a Status carrying its id, OK with the file's read-only descriptor attached
 * (a complete artifact's mtime touched: it was used), or INVALID_ARGUMENT (sha256 not 32
 * bytes), NOT_FOUND (no such artifact, or no upload of it under way), INTERNAL (the open
 * failed otherwise: logged). Service thread. */
void agent__artifact_open(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env);

/* Close and free every upload record (exit). The .part files stay for the next run. */
void agent__artifacts_free(agent_t *a);

/* ---- drivers (drivers.c, driver_stop.c) --------------------------------------------- */

void agent__handle_driver_start(agent_t *a, dfnet_session_id_t session,
                                const dfnet_envelope_t *env);
void agent__handle_driver_stop(agent_t *a, dfnet_session_id_t session, const dfnet_envelope_t *env);

/* Stop the driver of a node on our own (no manager request), e.g. its node went away:
 * once every driver below it has stopped (driver_stop.c, "stop order"). */
void agent__driver_stop_local(agent_t *a, agent_node_t *node);

/* A driver host's Reply or Status to what the agent asked of it: a call's answer goes on to
 * its caller (agent__call_answer), a DriverStart's, DriverStop's or suspend's ends its op.
 * An answer to no op of that driver host is dropped (debug log). */
void agent__dh_answer(agent_t *a, uint64_t host_id, const dfnet_envelope_t *env);
/* Supervisor callback (run inside dfnet_supervisor_dispatch on the service thread). */
void agent__sup_on_exit(void *arg, const dfnet_driver_host_exit_t *exit);

agent_dh_t *agent__dh_find(agent_t *a, uint64_t id);

/* main.c: a driver host ended; during shutdown, finish once none is left. */
void agent__shutdown_progress(agent_t *a);

/* Shutdown: stop every driver, each once the drivers below it have stopped (the stop order
 * of agent__driver_stop_local), and close each driver host once it has no driver left (one
 * without driver at once); true when none is left. */
bool agent__drivers_close_all(agent_t *a);
void agent__drivers_free(agent_t *a);

/* Shared by drivers.c and driver_stop.c (service thread). */

/* Forget n's driver: its state NONE, its url, offers, resources and pending start freed. */
void agent__driver_clear(agent_node_t *n);
/* Close driver host dh (NULL: nothing) once it has no driver left and is not closing. */
void agent__dh_release(agent_t *a, agent_dh_t *dh);
/* Send DriverStop for the driver of `moniker` (url may be NULL) to driver host host_id, with
 * an AGENT_OP_STOP op for its answer; node_uid 0: nobody to tell. Returns OK (*op_id, may be
 * NULL, gets the op's local id), RESOURCE_EXHAUSTED (no memory for the op), or
 * dfnet_supervisor_send's error (the driver host is going or gone); no op is left then. */
dfnet_status_t agent__driver_send_stop(agent_t *a, uint64_t host_id, const char *moniker,
                                       const char *url, uint64_t node_uid, uint64_t *op_id);
/* Send every stop waiting for the drivers below it that nothing blocks any more. */
void agent__stop_waits_progress(agent_t *a);
/* Answer the manager's DriverStops whose orphaned driver has stopped. */
void agent__stop_answers_progress(agent_t *a);
/* Forget the waiting stops of driver host host_id, gone with its drivers. */
void agent__stop_waits_forget_host(agent_t *a, uint64_t host_id);

/* ---- grants (grants.c) ------------------------------------------------------------- */

/* The rights of the driver ps starts (its manifest's "rights", lib/driver_rights.h) into
 * *rights, checked against this host: each must be one --allow-right allows, and, for a
 * driver colocated in a running driver host (ps->msg.driver_host_id), one that driver host
 * was started with. With --no-sandbox only read, never refused. On error why[cap] holds the
 * one line the node keeps as its reason: INVALID_ARGUMENT (the "rights" or "limits" do not
 * parse), PERMISSION_DENIED ("driver <url> needs the right inet, which this host does not
 * allow (dfnet-host --allow-right inet)"), FAILED_PRECONDITION (more than the colocated
 * driver host has, naming them). Service thread; nothing is spawned or opened. */
dfnet_status_t agent__rights_check(agent_t *a, const agent_pending_start_t *ps, uint32_t *rights,
                                   char *why, size_t cap) __attribute__((warn_unused_result));

/* The names of the DFNET_RIGHT_* bits of `rights` ("inet", "exec", "usb"), in bit order,
 * into out[0 .. cap); returns how many. */
size_t agent__rights_names(uint32_t rights, char (*out)[16], size_t cap);

/* Open the resources of n's driver into *set (docs/architecture.md "Resources";
 * host/supervisor/resources.h): the files its node's properties name, only for a node our
 * enumerators published (a driver's child or a composite node could name any path), and
 * the manifest's (ps->program), within --allow-resource. Returns dfnet_resources_open's
 * status; INTERNAL (the node's record does not decode), RESOURCE_EXHAUSTED (memory). On
 * error why[cap] says which one and why, and nothing is open. */
dfnet_status_t agent__resources_open(agent_t *a, const agent_node_t *n,
                                     const agent_pending_start_t *ps, dfnet_resource_set_t *set,
                                     char *why, size_t cap) __attribute__((warn_unused_result));

/* The resources of a set as "<name> <path>\n" lines (malloc'd, the caller frees; NULL when
 * none or without memory: they are then not listed). */
char *agent__resources_text(const dfnet_resource_set_t *res);

/* ---- confinement (sandbox.c) ------------------------------------------------------ */

/* At start, after the cache directory is made and the driver host found (startup.c): the
 * driver user and what its driver hosts read. Sandboxed and root: --driver-user is looked
 * up (missing: "driver user NAME does not exist: create it (useradd ...), name another with
 * --driver-user, or run drivers unconfined with --no-sandbox"; uid 0 refused) and must be
 * able to run the driver host executable (else a line naming the directory or file it is
 * stopped at). Returns false after printing one usage line (exit 2); true with
 * a->driver_uid, driver_gid and sandbox_read_only set. Main thread, before the supervisor
 * exists. */
bool agent__sandbox_prepare(agent_t *a);

/* The supervisor's sandbox config from what agent__sandbox_prepare set (pointers into *a,
 * which the supervisor copies). */
void agent__sandbox_config(const agent_t *a, dfnet_sandbox_config_t *out);

/* Log how driver hosts run: one INFO line (user, uid, code directory, rights allowed), or
 * with --no-sandbox one WARN line saying loudly that they run unconfined. */
void agent__sandbox_announce(const agent_t *a);

/* ---- lifecycle control (lifecycle.c) ----------------------------------------------- */

/* DriverSuspend / DriverResume from the manager: relayed to the driver host of the node's
 * running driver and answered with its Status (the manager's id). Answered here instead:
 * NOT_FOUND (no such node), FAILED_PRECONDITION (no running driver on it: none, fetching,
 * starting, stopping), UNAVAILABLE (its driver host died, or is gone); a driver host that
 * dies before answering: UNAVAILABLE (the supervisor's exactly-once Status). */
void agent__handle_driver_control(agent_t *a, dfnet_session_id_t session,
                                  const dfnet_envelope_t *env);

/* ListDriverHosts from the manager: one DriverHostInfo per driver host of this agent that
 * is not closing (in id order; host, id, pid, rss_bytes from /proc/<pid>/statm, the uid it
 * runs as, sandboxed, its rights, the URLs and nodes of the drivers starting, running or
 * stopping in it, at most 16 each, and what they were handed) with the request's id, then
 * Status OK. A request naming another host gets the Status only. */
void agent__handle_list_driver_hosts(agent_t *a, dfnet_session_id_t session,
                                     const dfnet_envelope_t *env);

/* The answer (a Status) of a SUSPEND / RESUME op from its driver host; frees the op. */
void agent__control_answered(agent_t *a, agent_op_t *op, dfnet_status_t code, const char *message);

/* The suspend flags of --shutdown-reason (DFNET_SUSPEND_FLAG_REBOOT / _POWEROFF), 0 for
 * none. */
uint32_t agent__shutdown_flags(const agent_options_t *opt);

/* Before a shutdown: suspend every running driver that is not suspended with `flags`, the
 * drivers below a node before the node's (a node waits until every suspend below it is
 * answered; one that failed leaves the nodes above it running), all within
 * opt.stop_grace_ms. Then done(a) runs, once (possibly before this returns). Returns false,
 * calling nothing, when no driver runs. */
bool agent__shutdown_suspend(agent_t *a, uint32_t flags, void (*done)(agent_t *a));

/* Free what lifecycle.c keeps (exit). */
void agent__lifecycle_free(agent_t *a);

/* ---- ops and calls (calls.c) --------------------------------------------------------- */

/* calls_by_peer's key "session" for a call a driver host made: its id with the top bit
 * (session ids and driver host ids both count from 1 and never reach it). */
#define AGENT_DH_KEY(dh_id) ((dh_id) | (1ull << 63))

typedef struct agent_call_ctx agent_call_ctx_t;

struct agent_op {
  uint64_t local_id;
  agent_op_kind_t kind;
  uint64_t host_id;           /* the driver host the request went to (0: none, CALL up to
                                 the manager) */
  uint64_t node_uid;          /* START / STOP / SUSPEND / RESUME */
  bool fresh_host;            /* START: the host was spawned for it */
  bool stopping;              /* START: a DriverStop went behind it (driver_stop.c stop_starting):
                                 its answer changes nothing, the stop's does */
  char *moniker;              /* START / STOP: the node (to stop an orphaned driver, to
                                 stop parents after children); owned */
  dfnet_session_id_t session; /* CALL, SUSPEND, RESUME from the manager: its session (0 once
                                 gone; 0 for the agent's own suspend before a shutdown) */
  uint64_t manager_id;        /* ... and its envelope id */
  struct {
    uint64_t session, id;
  } peer_key; /* CALL: key of calls_by_peer (session, manager id) */
  bool in_peer_table;
  /* CALL from a driver host (a driver calling another driver, calls.c): */
  uint64_t caller_dh;            /* the calling driver host (0: the manager calls) */
  uint64_t caller_id;            /* its id of the Call */
  bool caller_answered;          /* its final answer went (deadline) or it died */
  uint64_t target_uid;           /* the serving node on this host (0: up to the manager) */
  dfnet_session_id_t up_session; /* up to the manager: the session and request id */
  uint64_t up_request;
  dfnet_timer_id_t timer; /* the deadline at this hop (0: none) */
  agent_call_ctx_t *timer_ctx;
  UT_hash_handle hh_local, hh_peer;
};

/* Create an op with a fresh local id (linked into ops_by_local). NULL on no memory. */
agent_op_t *agent__op_new(agent_t *a, agent_op_kind_t kind, uint64_t host_id);
agent_op_t *agent__op_find(agent_t *a, uint64_t local_id);
void agent__op_free(agent_t *a, agent_op_t *op);
void agent__ops_free(agent_t *a);

void agent__handle_call(agent_t *a, dfnet_session_id_t session, const dfnet_envelope_t *env);
void agent__handle_call_control(agent_t *a, dfnet_session_id_t session,
                                const dfnet_envelope_t *env); /* Cancel, StreamCredit */
/* A Reply (or a Status) for a call op from the driver host. */
void agent__call_answer(agent_t *a, agent_op_t *op, const dfnet_envelope_t *env);
/* The session went away: cancel its calls at the driver hosts. */
void agent__calls_session_closed(agent_t *a, dfnet_session_id_t session);

/* A Call from driver host dh_id: one of its drivers calls a service offered to its node
 * (routed to the node's driver host here, or up to the manager; refused with a Reply when
 * the caller is no node of dh_id's, or was offered no such service). */
void agent__dh_call(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env);
/* Cancel / StreamCredit from a driver host for a call its driver made. */
void agent__dh_call_control(agent_t *a, uint64_t dh_id, const dfnet_envelope_t *env);
/* The supervisor's exit callback (main.c wires it): a driver host that ended has the calls
 * its drivers made cancelled, then agent__sup_on_exit (drivers.c) runs. */
void agent__dh_on_exit(void *arg, const dfnet_driver_host_exit_t *exit);

/* Send a final Reply{code, message, end_of_stream} with the given id. */
void agent__reply_call_status(agent_t *a, dfnet_session_id_t session, uint64_t id,
                              dfnet_status_t code, const char *message);

/* ---- small helpers (nodes.c) ------------------------------------------------------- */

/* strlcpy: copies at most size-1 bytes, always terminates; returns strlen(src). */
size_t agent__strlcpy(char *dst, const char *src, size_t size);

#endif /* DFNET_HOST_AGENT_AGENT_H */
