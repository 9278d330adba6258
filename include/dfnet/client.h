/* libdfnet-client: talk to a dfnet manager from any program (issue 7; docs/design.md "Calls",
 * "Security"; proto/dfnet/v1/query.proto and call.proto are the wire).
 *
 * Model
 *   A dfnet_client_t is one mutually authenticated TLS websocket session to a manager
 *   (subprotocol "dfnet.client.v1") served by one library thread (the "client thread").
 *   The role (admin, operator, viewer) comes from the client certificate's OU; the manager
 *   tells it back in its Welcome (dfnet_client_info). When the connection drops, every
 *   call, list and watch in flight ends with UNAVAILABLE, and the library reconnects by
 *   itself (with backoff); later requests wait up to their deadline (or the connect
 *   timeout) for the new session.
 *
 * Threads
 *   Every function may be called from any thread at any time between connect and
 *   dfnet_client_close, except where marked. Callbacks (calls, watches) run on the client
 *   thread, never under a lock of the library; they may call any function of this header
 *   except the blocking ones (dfnet_client_call, the list and control queries,
 *   dfnet_client_stream_next), which fail FAILED_PRECONDITION there.
 *
 * Errors
 *   Every function returns a gRPC status code (include/dfnet/status.h). Functions that
 *   talk to the manager also take `dfnet_client_error_t *err` (may be NULL) that receives
 *   the code and a human-readable message: the manager's or the driver's own message when
 *   the status came from the wire, the library's reason otherwise. Codes common to every
 *   request (not repeated below):
 *     INVALID_ARGUMENT    NULL where a value is required, a string over its wire bound
 *                         (target 511 bytes, method 255, monikers 511, URLs 255);
 *     UNAVAILABLE         not connected (no session within the timeout), or the session
 *                         was lost before the answer;
 *     DEADLINE_EXCEEDED   the request's deadline passed;
 *     PERMISSION_DENIED   the certificate's role may not do this (viewer: queries and
 *                         watch; operator: + calls and leases; admin: + driver and
 *                         composite changes, forced lease releases);
 *     FAILED_PRECONDITION a blocking function called on the client thread;
 *     RESOURCE_EXHAUSTED  the session's send queue is full, or out of memory;
 *     any code the manager or the driver answered with.
 *
 * Types
 *   No nanopb type appears here: results are plain C structs. Every list result is one
 *   allocation tree owned by the caller and freed with its *_free function; all strings
 *   inside it are NUL-terminated and live as long as the result.
 */
#ifndef DFNET_CLIENT_H
#define DFNET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DFNET_CLIENT_API __attribute__((visibility("default")))
#else
#define DFNET_CLIENT_API
#endif

typedef struct dfnet_client dfnet_client_t;

/* The status of a failed request, with its message (always NUL-terminated). */
typedef struct dfnet_client_error {
  dfnet_status_t code;
  char message[512];
} dfnet_client_error_t;

/* ---- Connecting ------------------------------------------------------------------- */

/* Levels of the library's own log lines (connection attempts, refusals, reconnects). */
typedef enum dfnet_client_log_level {
  DFNET_CLIENT_LOG_DEFAULT = 0, /* the DFNET_LOG_LEVEL environment variable, else WARN */
  DFNET_CLIENT_LOG_ERROR = 1,
  DFNET_CLIENT_LOG_WARN = 2,
  DFNET_CLIENT_LOG_INFO = 3,
  DFNET_CLIENT_LOG_DEBUG = 4,
} dfnet_client_log_level_t;

/* Receives one of the library's log lines: the whole line ("<UTC time> <E|W|I|D>
 * <subsystem> <subject>: <message>", no newline), borrowed for the call. Called from the
 * client thread or a caller's thread; must not block or call back into the library. */
typedef void (*dfnet_client_log_fn)(void *user, dfnet_client_log_level_t level, const char *line);

typedef struct dfnet_client_options {
  const char *url;             /* "wss://host:port" (required) */
  const char *cert_file;       /* PEM: the client certificate (role in its OU) (required) */
  const char *key_file;        /* PEM: its private key (required; may equal cert_file when
                                  that file holds both) */
  const char *ca_file;         /* PEM: the CA that signed the manager's certificate (required) */
  const char *server_name;     /* name the manager's certificate must carry; NULL = URL host */
  uint32_t connect_timeout_ms; /* how long connect (and a request made while
                                  reconnecting, without its own deadline) waits for a
                                  session; 0 = 10000 */
  dfnet_client_log_level_t log_level; /* the library's lines up to this level are kept */
  dfnet_client_log_fn log_fn;         /* where they go; NULL = stderr */
  void *log_user;                     /* passed to log_fn */
} dfnet_client_options_t;

/* The session as the manager granted it. */
typedef struct dfnet_client_info {
  char role[16];        /* "admin", "operator", "viewer" */
  char name[65];        /* our verified name (certificate CN) */
  char server_name[65]; /* the manager's name */
  uint64_t session_id;
} dfnet_client_info_t;

/* Connect to a manager: TLS with the given files, websocket upgrade, Hello, Welcome.
 * Blocks until the session is welcomed, an attempt fails in a way trying again cannot fix,
 * or the connect timeout passes. Strings are copied. The log options apply to every client
 * of the process (the library keeps one log): the last connect sets them.
 * On OK *out is a new client the caller closes with dfnet_client_close().
 * Errors (err->message says why, e.g. "cannot connect to wss://m:7443: the manager's
 * certificate is not signed by the CA in /etc/dfnet/ca.crt"): INVALID_ARGUMENT (missing
 * option, URL not wss://host:port), NOT_FOUND (a file missing), UNAUTHENTICATED (at once:
 * the manager's certificate is not from our CA, expired or for another name, or the manager
 * refused ours), PERMISSION_DENIED (at once: our role may not use the client protocol, or
 * the manager refused the Hello), UNAVAILABLE (the name does not resolve: at once; refused,
 * unreachable, timed out: after the connect timeout, with the last attempt's reason),
 * INTERNAL. *out is NULL on error. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_connect(const dfnet_client_options_t *opts,
                                                     dfnet_client_t **out,
                                                     dfnet_client_error_t *err);

/* End every call, stream and watch (their final callbacks run with CANCELLED, before this
 * returns), close the session, join the client thread, free everything. NULL is a no-op.
 * Not from the client thread (a callback). */
DFNET_CLIENT_API void dfnet_client_close(dfnet_client_t *client);

/* Renew this client's own certificate over its session, as the host agent does (issue 23
 * item 3): at 2/3 of its lifetime (+- 10 % of it), a new P-256 key is made, the manager
 * issues a certificate of the same name and role for it, and both are written over the
 * cert_file and key_file given to dfnet_client_connect (the key first, each atomically;
 * one combined PEM when they are the same file); the next connection presents them, the
 * session in use carries on. For long-lived programs (a short one never reaches 2/3; `dfnet
 * cert renew` renews by hand). A refusal (a revoked certificate) is logged once and the
 * certificate kept until it expires. Calling it again does nothing. Errors:
 * INVALID_ARGUMENT (c NULL), RESOURCE_EXHAUSTED/INTERNAL (memory). Since ABI 1.1. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_renew_enable(dfnet_client_t *c,
                                                          dfnet_client_error_t *err);

/* Copy of the current session's Welcome. Errors: UNAVAILABLE (not connected now). */
DFNET_CLIENT_API dfnet_status_t dfnet_client_info(dfnet_client_t *client, dfnet_client_info_t *out);

/* ---- Calls to drivers (docs/design.md "Calls") ------------------------------------------ */

/* A call in flight. 0 is "none"; never reused within a client. */
typedef uint64_t dfnet_client_call_id_t;

typedef struct dfnet_client_call_options {
  uint32_t deadline_ms; /* the call's deadline from now, enforced here and sent to every
                           hop as the time left; 0 = none */
  uint32_t credit;      /* streaming: replies the manager may send before we grant more
                           (the flow-control window); 0 = 16 */
} dfnet_client_call_options_t;

/* Blocking unary call: send `request` (len bytes, the method's protobuf message; copied)
 * to `method` ("/<package>.<Service>/<Method>") on `target` (a node moniker or
 * "class/<class>/<NNN>"), wait for its reply. On OK, *reply / *reply_len hold the reply
 * payload in a malloc'd buffer the caller frees with free() (NULL/0 for an empty reply).
 * opts may be NULL (no deadline). A server-streaming method answered with several
 * messages: the last payload is returned. Errors (besides the common ones): the call's
 * final status, e.g. NOT_FOUND (unknown target), FAILED_PRECONDITION (node without a
 * driver), UNIMPLEMENTED (the driver does not serve the method), UNAVAILABLE (host or
 * driver gone). Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_call(dfnet_client_t *client, const char *target,
                                                  const char *method, const void *request,
                                                  size_t len,
                                                  const dfnet_client_call_options_t *opts,
                                                  uint8_t **reply, size_t *reply_len,
                                                  dfnet_client_error_t *err);

/* One message of a call (a unary reply, or one message of a stream). data is borrowed for
 * the callback only. Runs on the client thread. When it returns, the message counts as
 * consumed for the flow-control window. */
typedef void (*dfnet_client_message_fn)(void *user, dfnet_client_call_id_t call,
                                        const uint8_t *data, size_t len);
/* The call's final status: called exactly once per started call, last. message is
 * borrowed for the callback. Runs on the client thread. */
typedef void (*dfnet_client_done_fn)(void *user, dfnet_client_call_id_t call, dfnet_status_t status,
                                     const char *message);

/* Start a unary or server-streaming call with callbacks (request copied). on_message may
 * be NULL (messages dropped); on_done is required. On OK *call_out (may be NULL) names the
 * call; on_done will run exactly once, never during this function. On error no callback
 * ever runs. Errors: the common ones (UNAVAILABLE when not connected). Any thread, the
 * client thread included. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_call_start(
    dfnet_client_t *client, const char *target, const char *method, const void *request, size_t len,
    const dfnet_client_call_options_t *opts, dfnet_client_message_fn on_message,
    dfnet_client_done_fn on_done, void *user, dfnet_client_call_id_t *call_out);

/* Cancel a call (a Cancel goes to the manager and on to the driver): on_done runs with
 * CANCELLED soon unless the call already ended. Errors: NOT_FOUND (no such call in flight:
 * it ended, or was cancelled already — cancelling twice is harmless). Any thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_call_cancel(dfnet_client_t *client,
                                                         dfnet_client_call_id_t call);

/* A pull-style server-streaming call: messages are queued (at most `credit` of them) and
 * read with dfnet_client_stream_next; credit is granted back as they are read, so a slow
 * reader slows the driver down instead of growing memory. */
typedef struct dfnet_client_stream dfnet_client_stream_t;

/* Start a streaming call (request copied). On OK *out is a stream the caller ends with
 * dfnet_client_stream_close. Errors: as dfnet_client_call_start. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_stream_open(dfnet_client_t *client, const char *target,
                                                         const char *method, const void *request,
                                                         size_t len,
                                                         const dfnet_client_call_options_t *opts,
                                                         dfnet_client_stream_t **out,
                                                         dfnet_client_error_t *err);

/* Next message, waiting up to timeout_ms (0 = forever). On OK *data and *len hold a malloc'd
 * copy the caller frees with free() (NULL/0 for an empty message). Returns:
 *   OK                 a message;
 *   ABORTED            the stream ended with OK (end of stream, nothing more to read);
 *   DEADLINE_EXCEEDED  timeout_ms passed with no message (the stream goes on);
 *   any other code     the stream's final status (err holds its message).
 * Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_stream_next(dfnet_client_stream_t *stream,
                                                         uint32_t timeout_ms, uint8_t **data,
                                                         size_t *len, dfnet_client_error_t *err);

/* Cancel the stream if it is still running and free it. NULL is a no-op. Any thread but
 * the client thread. */
DFNET_CLIENT_API void dfnet_client_stream_close(dfnet_client_stream_t *stream);

/* ---- Queries (the manager's client API, dfnet.client.v1) ---------------------------- */

/* Options of every query: deadline from now; 0 = 30000 ms. */
typedef struct dfnet_client_query_options {
  uint32_t deadline_ms;
} dfnet_client_query_options_t;

typedef enum dfnet_client_value_type {
  DFNET_CLIENT_VALUE_NONE = 0,
  DFNET_CLIENT_VALUE_INT = 1, /* uint32 */
  DFNET_CLIENT_VALUE_STRING = 2,
  DFNET_CLIENT_VALUE_BOOL = 3,
  DFNET_CLIENT_VALUE_ENUM = 4, /* str_value holds the fully qualified value */
} dfnet_client_value_type_t;

/* One DFv2 node property. The key is an integer key (str_key NULL) or a string key. */
typedef struct dfnet_client_property {
  const char *str_key; /* NULL: the key is int_key (a deprecated fuchsia.BIND_* key) */
  uint32_t int_key;
  dfnet_client_value_type_t type;
  uint32_t int_value;    /* INT */
  bool bool_value;       /* BOOL */
  const char *str_value; /* STRING, ENUM; NULL otherwise */
} dfnet_client_property_t;

typedef enum dfnet_client_node_state {
  DFNET_CLIENT_NODE_UNSPECIFIED = 0,
  DFNET_CLIENT_NODE_UNBOUND = 1,
  DFNET_CLIENT_NODE_BOUND = 2,
  DFNET_CLIENT_NODE_OWNED_BY_PARENT = 3,
  DFNET_CLIENT_NODE_OWNED_BY_COMPOSITE = 4,
  DFNET_CLIENT_NODE_QUARANTINED = 5,
  DFNET_CLIENT_NODE_STARTING = 6, /* its driver's start has not completed */
} dfnet_client_node_state_t;

/* "unbound", "bound", "owned by parent", "owned by composite(s)", "quarantined",
 * "starting", "unspecified" (static). */
DFNET_CLIENT_API const char *dfnet_client_node_state_str(dfnet_client_node_state_t state);

typedef struct dfnet_client_host {
  const char *name;
  const char *address;
  const char *arch;
  size_t label_count;
  const char **label_keys; /* label_count entries each */
  const char **label_values;
  uint64_t connected_since_ms; /* Unix epoch ms */
  bool online;
  uint32_t node_count;
  uint32_t driver_host_count;
  const char *software_version; /* its agent's, "dfnet 0.1.0+<git>"; "" when unknown */
  /* Leases (dfnet_client_lease_acquire): who holds leases on its nodes (at most 4 listed)
   * and how many of its nodes a lease covers. 0 and NULL from a manager without leases. */
  size_t lease_holder_count;
  const char **lease_holders;
  uint32_t leased_nodes;
  /* Its agent confines its driver hosts (their own user, Landlock, seccomp); false: the
   * agent runs with --no-sandbox (or predates confinement): its drivers run unconfined. */
  bool sandboxed;
} dfnet_client_host_t;

typedef struct dfnet_client_host_list {
  size_t count;
  dfnet_client_host_t *items;
} dfnet_client_host_list_t;

/* An offer a node received (DFv2 Offer): a service, under an instance name ("default"; a
 * composite's parent's name), served by the driver bound to node `source` (a moniker).
 * Strings owned by the list, as every string of it. */
typedef struct dfnet_client_offer {
  const char *service;
  const char *instance;
  const char *source;
} dfnet_client_offer_t;

typedef struct dfnet_client_node {
  const char *moniker;
  const char *name;
  const char *host;
  const char *class_name; /* "" when none */
  const char *class_path; /* "class/<class>/<NNN>", "" when none */
  dfnet_client_node_state_t state;
  const char *driver_url; /* "" when none */
  uint64_t driver_host_id;
  dfnet_status_t unbound_code; /* OK when bound or no reason known */
  const char *unbound_message; /* "" when none */
  bool offline;                /* its host's session dropped (grace period) */
  size_t property_count;       /* verbose queries only */
  dfnet_client_property_t *properties;
  size_t offer_count;
  const char **offers;
  size_t parent_count; /* composite nodes: every parent's moniker */
  const char **parents;
  /* Verbose queries only: the offers the node received, each with the node that serves it
   * (a composite: every parent's, renamed; the names in `offers` are a plain node's own).
   * 0 and NULL from a manager that does not send them. */
  size_t offered_count;
  const dfnet_client_offer_t *offered;
  uint32_t driver_host_pid;  /* the pid of its driver host; 0: none or not known */
  bool suspended;            /* its driver is suspended (dfnet_client_node_suspend) */
  bool test;                 /* a test node (dfnet_client_test_node_add): never started */
  uint64_t lease_id;         /* the lease covering it (dfnet_client_lease_acquire); 0: none */
  const char *lease_holder;  /* its holder; "" when none */
  uint64_t lease_expires_ms; /* Unix epoch ms; 0: never (or no lease) */
} dfnet_client_node_t;

typedef struct dfnet_client_node_list {
  size_t count;
  dfnet_client_node_t *items;
} dfnet_client_node_list_t;

typedef enum dfnet_client_driver_source {
  DFNET_CLIENT_DRIVER_SOURCE_UNSPECIFIED = 0,
  DFNET_CLIENT_DRIVER_SOURCE_BOOT = 1,
  DFNET_CLIENT_DRIVER_SOURCE_REGISTERED = 2,
} dfnet_client_driver_source_t;

typedef struct dfnet_client_driver {
  const char *url;
  const char *name;
  uint8_t package_digest[32];
  bool has_digest;
  dfnet_client_driver_source_t source;
  bool fallback, colocate, host_restart_on_crash, disabled;
  size_t category_count;
  const char **categories; /* category_count entries each */
  const char **subcategories;
  const char *composite_name; /* "" when not composite bind rules */
  uint32_t device_count;      /* nodes it is bound to */
  size_t device_list_count;   /* verbose: the first of them */
  const char **devices;
  size_t dispatcher_opt_count;
  const char **dispatcher_opts;
  const uint8_t *bind_bytecode; /* verbose: bytecode v2; NULL otherwise */
  size_t bind_bytecode_len;
  bool disable_autobind;     /* binds only on a request (dfnet_client_request_bind) */
  uint32_t start_timeout_ms; /* the manifest's; 0: the default (30000) */
  size_t resource_count;     /* the manifest's "resources": "/dev/hwrng", "/dev/x (rw)" */
  const char **resources;
  size_t right_count; /* the manifest's "rights": "inet", "exec", "usb"; 0: none */
  const char **rights;
  uint32_t memory_mb;  /* the manifest's "limits": memory bound of its driver host, MiB (the
                          default when not given; 0 from a manager that predates limits) */
  uint32_t open_files; /* ... and its open descriptors (likewise) */
} dfnet_client_driver_t;

typedef struct dfnet_client_driver_list {
  size_t count;
  dfnet_client_driver_t *items;
} dfnet_client_driver_list_t;

typedef struct dfnet_client_composite_parent {
  const char *name;    /* the rule's node name or the spec parent's index */
  const char *moniker; /* "" = unbound */
  bool primary;
  bool optional;
  /* A composite node spec's parent in a verbose listing: the bind rules and properties the
   * spec gave it (dfnet_client_bind_rule_t, below); rule_count is 0 for composite bind
   * rules and in a listing that is not verbose. */
  size_t rule_count;
  const struct dfnet_client_bind_rule *rules;
  size_t property_count;
  const dfnet_client_property_t *properties;
} dfnet_client_composite_parent_t;

typedef struct dfnet_client_composite {
  const char *name;
  const char *driver_url;
  const char *moniker; /* "" = not assembled */
  bool from_spec;
  size_t parent_count;
  dfnet_client_composite_parent_t *parents;
} dfnet_client_composite_t;

typedef struct dfnet_client_composite_list {
  size_t count;
  dfnet_client_composite_t *items;
} dfnet_client_composite_list_t;

typedef enum dfnet_client_bind_result {
  DFNET_CLIENT_BIND_UNSPECIFIED = 0,
  DFNET_CLIENT_BIND_MATCH = 1,
  DFNET_CLIENT_BIND_NO_MATCH = 2,
  DFNET_CLIENT_BIND_ERROR = 3,
} dfnet_client_bind_result_t;

typedef struct dfnet_client_bind_trace {
  const char *driver_url;
  dfnet_client_bind_result_t result;
  uint32_t offset;         /* byte offset of the deciding instruction */
  const char *instruction; /* as dumped */
  const char *reason;
  const char *composite_node; /* "" unless a composite rule's node */
} dfnet_client_bind_trace_t;

typedef struct dfnet_client_bind_trace_list {
  size_t count;
  dfnet_client_bind_trace_t *items;
} dfnet_client_bind_trace_list_t;

/* List the fleet's hosts. On OK *out is a new list (caller frees with
 * dfnet_client_host_list_free). Errors: the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_list_hosts(dfnet_client_t *client,
                                                        const dfnet_client_query_options_t *q,
                                                        dfnet_client_host_list_t **out,
                                                        dfnet_client_error_t *err);

/* List nodes whose moniker contains `filter` (NULL or "" = all; exact: the whole moniker).
 * verbose: with properties and offers. On OK *out is a new list (free with
 * dfnet_client_node_list_free). Errors: the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_list_nodes(dfnet_client_t *client, const char *filter,
                                                        bool exact, bool verbose,
                                                        const dfnet_client_query_options_t *q,
                                                        dfnet_client_node_list_t **out,
                                                        dfnet_client_error_t *err);

/* List the driver index (loaded: only drivers bound to a node; verbose: with bind
 * bytecode and devices). On OK *out is new (free with dfnet_client_driver_list_free).
 * Errors: the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_list_drivers(dfnet_client_t *client, bool loaded,
                                                          bool verbose,
                                                          const dfnet_client_query_options_t *q,
                                                          dfnet_client_driver_list_t **out,
                                                          dfnet_client_error_t *err);

/* List composites (composite bind rules instances and composite node specs); verbose: with
 * each spec parent's bind rules and properties. On OK *out is new (free with
 * dfnet_client_composite_list_free). Not on the client thread. Errors: the common ones. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_list_composites(dfnet_client_t *client, bool verbose,
                                                             const dfnet_client_query_options_t *q,
                                                             dfnet_client_composite_list_t **out,
                                                             dfnet_client_error_t *err);

/* The matcher's trace for `node` against `driver_url` (NULL or "" = every driver; a URL,
 * or a driver's name when no other driver has it): one entry per driver considered. On OK
 * *out is new (free with dfnet_client_bind_trace_list_free). Errors: NOT_FOUND (no such
 * node or driver), FAILED_PRECONDITION (several drivers have that name: the message lists
 * their URLs), the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_bind_why(dfnet_client_t *client, const char *node,
                                                      const char *driver_url,
                                                      const dfnet_client_query_options_t *q,
                                                      dfnet_client_bind_trace_list_t **out,
                                                      dfnet_client_error_t *err);

/* Free a result. NULL is a no-op. */
DFNET_CLIENT_API void dfnet_client_host_list_free(dfnet_client_host_list_t *list);
DFNET_CLIENT_API void dfnet_client_node_list_free(dfnet_client_node_list_t *list);
DFNET_CLIENT_API void dfnet_client_driver_list_free(dfnet_client_driver_list_t *list);
DFNET_CLIENT_API void dfnet_client_composite_list_free(dfnet_client_composite_list_t *list);
DFNET_CLIENT_API void dfnet_client_bind_trace_list_free(dfnet_client_bind_trace_list_t *list);

/* ---- Driver control (role admin) ------------------------------------------------------ */

/* Every function here names the driver by `url`: its URL, or its name ("pci-config") when
 * no other driver of the index has that name. Errors common to them: INVALID_ARGUMENT
 * (url NULL or ""), NOT_FOUND (no driver has that URL or name), FAILED_PRECONDITION
 * (several drivers have that name: the message lists their URLs; give one of them). */

/* Disable / enable a driver of the index. Both return once the nodes they touched have
 * settled (enable: the nodes it now binds, unbound ones and those it takes from a fallback
 * driver, run it or failed to start it). Errors: the ones above, the common ones. Not on the
 * client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_driver_disable(dfnet_client_t *client, const char *url,
                                                            dfnet_client_error_t *err);
DFNET_CLIENT_API dfnet_status_t dfnet_client_driver_enable(dfnet_client_t *client, const char *url,
                                                           dfnet_client_error_t *err);

/* Restart every driver host running the driver `url`; *restarted (may be NULL) gets how
 * many. Errors: the ones above, the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_driver_restart(dfnet_client_t *client, const char *url,
                                                            uint32_t *restarted,
                                                            dfnet_client_error_t *err);

/* Unregister the registered driver `url` (role admin): the manager stops it on every node
 * it was bound to (or starting on), removes its package from its state directory (it does
 * not come back after a restart), takes it out of the index, and matches those nodes
 * again: another driver or a fallback binds them, or they stay unbound with the reason.
 * Watchers of driver events see DRIVER_UNREGISTERED. *nodes (may be NULL; 0 on error) gets
 * how many nodes it was stopped on; url_out (may be NULL; url_cap bytes, 256 suffice) the
 * URL of the driver that was unregistered ("" on error). Errors: the ones above;
 * FAILED_PRECONDITION also for a boot driver (--drivers DIR: it is loaded again at every start;
 * disable it instead); UNAVAILABLE also when the manager cannot remove the package's record from
 * its state directory (nothing changed); the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_driver_unregister(dfnet_client_t *client,
                                                               const char *url, uint32_t *nodes,
                                                               char *url_out, size_t url_cap,
                                                               dfnet_client_error_t *err);

/* Register a driver: pack the package directory `pkg_dir` (meta/<name>.json,
 * meta/bind/<name>.bindbc, driver/<name>.so) deterministically (lib/package.h), upload it
 * in chunks with its SHA-256, and let the manager verify and index it. On OK, url_out (may
 * be NULL; url_cap bytes, 256 suffice) gets the driver's URL
 * "dfnet-pkg://<12 hex>/<name>#meta/<name>.json", and err (when given) the manager's
 * answer: "registered URL", or "already registered URL" when this very package (the same
 * SHA-256) was registered before: registering is idempotent and nothing changed.
 * Errors: NOT_FOUND (pkg_dir missing), INVALID_ARGUMENT (not a package directory: no single
 * meta/<name>.json, bad name, a link or special file), RESOURCE_EXHAUSTED (package too
 * large), ALREADY_EXISTS (another package has that URL), DATA_LOSS (the manager's digest
 * check failed), the manager's verdict on the manifest or bytecode (INVALID_ARGUMENT), the
 * common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_driver_register(dfnet_client_t *client,
                                                             const char *pkg_dir, char *url_out,
                                                             size_t url_cap,
                                                             dfnet_client_error_t *err);

/* DFv2 RequestBind on a node (role admin; `dfnet node bind`): a manual bind, matched with
 * fuchsia.BIND_AUTOBIND = 0 (autobind attempts present 1), so disable_autobind drivers bind
 * here only. It also clears a quarantine and a node unbound with dfnet_client_node_unbind.
 * force_rebind restarts binding of a bound node; driver_url_suffix (NULL = any)
 * restricts the candidates. Errors: NOT_FOUND, ALREADY_EXISTS (a request pending),
 * FAILED_PRECONDITION (already bound and not forced), the common ones. Not on the client
 * thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_request_bind(dfnet_client_t *client, const char *node,
                                                          bool force_rebind,
                                                          const char *driver_url_suffix,
                                                          dfnet_client_error_t *err);

/* ---- Node control (role admin; docs/architecture.md "Node control") -------------------- */

/* Unbind `node`: stop its driver (the drivers below first); it stays unbound ("unbound by
 * <who>") until dfnet_client_request_bind. Errors: NOT_FOUND, FAILED_PRECONDITION (no
 * driver, or owned by its parent or a composite), the common ones. Not on the client
 * thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_node_unbind(dfnet_client_t *client, const char *node,
                                                         dfnet_client_error_t *err);

/* Suspend the drivers of `node` and of every node below it, children first, with `flags`
 * (DFNET_SUSPEND_FLAG_* of dfnet/driver.h; 0 = SUSPEND_RAM); calls to them end UNAVAILABLE
 * "suspended" until resumed. Resume: parents first. Both return once every driver has
 * answered. Errors: NOT_FOUND, FAILED_PRECONDITION (no driver runs there; resume: not
 * suspended), the first driver's error (its message names the node; the others that did
 * suspend stay suspended), the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_node_suspend(dfnet_client_t *client, const char *node,
                                                          uint32_t flags,
                                                          dfnet_client_error_t *err);
DFNET_CLIENT_API dfnet_status_t dfnet_client_node_resume(dfnet_client_t *client, const char *node,
                                                         dfnet_client_error_t *err);

/* ffx driver test-node add: a node only the manager has, `parent`.`name`, with `count`
 * properties (borrowed), matched against the index but never started: its unbound message
 * says which driver would bind it. Errors: NOT_FOUND (parent), ALREADY_EXISTS,
 * INVALID_ARGUMENT (name, properties), the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_test_node_add(dfnet_client_t *client,
                                                           const char *parent, const char *name,
                                                           const dfnet_client_property_t *props,
                                                           size_t count, dfnet_client_error_t *err);
/* ffx driver test-node remove. Errors: NOT_FOUND, FAILED_PRECONDITION (not a test node),
 * the common ones. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_test_node_remove(dfnet_client_t *client,
                                                              const char *moniker,
                                                              dfnet_client_error_t *err);

/* One driver host (ffx driver list-hosts). Strings owned by the list. */
typedef struct dfnet_client_driver_host {
  const char *host;
  uint64_t id;
  uint32_t pid;       /* 0: not known (host offline) */
  uint64_t rss_bytes; /* 0: not known */
  size_t driver_count;
  const char **driver_urls;
  size_t node_count;
  const char **nodes;
  size_t resource_count; /* the descriptors its drivers were handed: "<node> <name> <path>" */
  const char **resources;
  /* Its confinement, as its agent reports it (not known when pid is 0): */
  uint32_t uid;       /* the user it runs as */
  bool sandboxed;     /* confined (false: its agent runs with --no-sandbox) */
  size_t right_count; /* the rights it was started with: "inet", "exec", "usb"; 0: none */
  const char **rights;
} dfnet_client_driver_host_t;

typedef struct dfnet_client_driver_host_list {
  size_t count;
  dfnet_client_driver_host_t *items;
} dfnet_client_driver_host_list_t;

/* List the driver hosts of `host` (NULL or "" = every host). On OK *out is new (free with
 * dfnet_client_driver_host_list_free). Errors: NOT_FOUND (no such host), the common ones.
 * Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_list_driver_hosts(
    dfnet_client_t *client, const char *host, const dfnet_client_query_options_t *q,
    dfnet_client_driver_host_list_t **out, dfnet_client_error_t *err);
DFNET_CLIENT_API void dfnet_client_driver_host_list_free(dfnet_client_driver_host_list_t *list);

/* A driver control action's outcome on one node. */
typedef struct dfnet_client_node_outcome {
  const char *node;
  dfnet_status_t code; /* OK: running again (restart), matched again (disable, unregister),
                          running (enable) */
  const char *message;
  const char *driver_url; /* what runs on it now; "" = nothing */
} dfnet_client_node_outcome_t;

typedef enum dfnet_client_driver_action {
  DFNET_CLIENT_DRIVER_DISABLE = 1,
  DFNET_CLIENT_DRIVER_ENABLE = 2,
  DFNET_CLIENT_DRIVER_RESTART = 3,
  DFNET_CLIENT_DRIVER_UNREGISTER = 4,
} dfnet_client_driver_action_t;

typedef struct dfnet_client_driver_control_result {
  const char *url;       /* the driver's URL */
  uint32_t driver_hosts; /* RESTART: driver hosts restarted */
  uint32_t nodes;        /* nodes the action stopped the driver on (enable: started it on) */
  size_t outcome_count;  /* at most 32; `nodes` counts them all */
  dfnet_client_node_outcome_t *outcomes;
} dfnet_client_driver_control_result_t;

/* Any driver control action on `url` (see the functions above for each), returning once
 * the nodes it touched have settled, with the outcome per node. On OK *out is new (free
 * with dfnet_client_driver_control_result_free). Errors: as the action's function. Not on
 * the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_driver_control(
    dfnet_client_t *client, dfnet_client_driver_action_t action, const char *url,
    dfnet_client_driver_control_result_t **out, dfnet_client_error_t *err);
DFNET_CLIENT_API void
dfnet_client_driver_control_result_free(dfnet_client_driver_control_result_t *result);

/* A composite node spec (fuchsia.driver.framework CompositeNodeSpec): parents given as bind
 * rules (ACCEPT: the key has one of the values; REJECT: none of them) and the properties
 * the matching node's composite will see. Property/value pointers are borrowed. */
typedef enum dfnet_client_condition {
  DFNET_CLIENT_ACCEPT = 1,
  DFNET_CLIENT_REJECT = 2,
} dfnet_client_condition_t;

typedef struct dfnet_client_bind_rule {
  const char *str_key; /* NULL: int_key */
  uint32_t int_key;
  dfnet_client_condition_t condition;
  size_t value_count; /* 1..3; each value's key fields are ignored */
  const dfnet_client_property_t *values;
} dfnet_client_bind_rule_t;

typedef struct dfnet_client_parent_spec {
  size_t rule_count; /* 1..4 */
  const dfnet_client_bind_rule_t *rules;
  size_t property_count; /* 0..3 */
  const dfnet_client_property_t *properties;
} dfnet_client_parent_spec_t;

/* Add a composite node spec (role admin) of 1..16 parents, which may be on different hosts.
 * Everything is copied. Errors: INVALID_ARGUMENT (no name, no parents, over the bounds
 * above), ALREADY_EXISTS (a spec of that name), the common ones. Not on the client
 * thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_add_composite_node_spec(
    dfnet_client_t *client, const char *name, const dfnet_client_parent_spec_t *parents,
    size_t parent_count, dfnet_client_error_t *err);

/* ---- Leases (docs/architecture.md "Leases"; proto/dfnet/v1/lease.proto) ---------------- */

/* A lease gives one principal (a certificate's CN) exclusive use of nodes for a time: a
 * client's call to a node a lease covers must carry the lease's token, else the manager
 * ends it FAILED_PRECONDITION naming the holder ("dev.lab-a.pci.00_05_0 is leased by alice
 * until 2026-12-07T10:00:00Z (lease 42)").
 *
 * The lease token. Every call this client starts carries its lease token in
 * Call.lease_token: DFNET_LEASE from the environment at connect (what `dfnet lease acquire`
 * prints and `dfnet lease run` sets), else what dfnet_client_set_lease_token set, else the
 * token of the first lease this client acquired (dfnet_client_lease_acquire sets it when the
 * client has none). Releasing that lease through this client clears it, and so does the
 * manager's refusal of the library's renewal of it, NOT_FOUND or PERMISSION_DENIED (it
 * expired, or was released elsewhere or by an admin's force): the next lease acquired
 * becomes the client's lease token.
 *
 * Renewal. A lease this client acquired is renewed by the library at a third of its TTL
 * while the client lives, on the client thread (no thread of the caller's is needed). A
 * renewal that fails for want of the manager (connection lost, no answer) is tried again
 * until the lease would expire; one the manager refuses (the lease expired, was released by
 * someone else or by an admin's force) ends the renewals. Either way the first failure is
 * logged once (a warning), the lease's on_renew callback is told, and
 * dfnet_client_lease_state says so. dfnet_client_close stops renewing but does not release:
 * the lease lives to the end of its TTL unless renewed elsewhere (with its token). */

typedef enum dfnet_client_lease_priority {
  DFNET_CLIENT_LEASE_NORMAL = 0,
  DFNET_CLIENT_LEASE_LOW = 1,
  DFNET_CLIENT_LEASE_HIGH = 2, /* role admin only */
} dfnet_client_lease_priority_t;

/* "normal", "low", "high"; "normal" for an unknown value (static). */
DFNET_CLIENT_API const char *dfnet_client_lease_priority_str(dfnet_client_lease_priority_t p);

/* A lease held, or a request waiting in the queue (queue_position > 0). Strings are owned
 * by the result. */
typedef struct dfnet_client_lease {
  uint64_t id;
  const char *holder; /* the principal (certificate CN) */
  size_t target_count;
  const char **targets;   /* as asked (a selector: the node it picked) */
  uint32_t node_count;    /* how many nodes it covers in all */
  size_t node_list_count; /* the first of them (subtree roots), at most 16 */
  const char **nodes;
  uint64_t acquired_ms; /* Unix epoch ms (a waiting request: when it was queued) */
  uint64_t expires_ms;  /* Unix epoch ms; 0 = never (or waiting) */
  uint32_t ttl_ms;      /* what a renewal extends it by; 0 = no expiry */
  dfnet_client_lease_priority_t priority;
  const char *token;       /* "<id>.<64 hex>": only in the answer to the holder's own
                              acquire; "" otherwise */
  uint32_t queue_position; /* a waiting request's place (1 = next); 0 = held */
  const char *reason;      /* "" when none */
} dfnet_client_lease_t;

typedef struct dfnet_client_lease_list {
  size_t count;
  dfnet_client_lease_t *items; /* held leases, then waiting requests in queue order */
} dfnet_client_lease_list_t;

/* A lease the library renews: status OK after a renewal (expires_ms: the new expiry), or,
 * once and last, why the library stopped renewing it: NOT_FOUND (it expired, or was
 * released elsewhere or by an admin's force), PERMISSION_DENIED (its token was refused),
 * DEADLINE_EXCEEDED (it expired while the manager could not be reached), any other code
 * the manager answered with. message is borrowed for the call. Client thread. */
typedef void (*dfnet_client_lease_fn)(void *user, uint64_t lease_id, dfnet_status_t status,
                                      uint64_t expires_ms, const char *message);

/* A waiting acquire's place in the queue (1 = next), each time the manager tells it.
 * request_id is the queue entry's id. Client thread. */
typedef void (*dfnet_client_lease_queue_fn)(void *user, uint64_t request_id, uint32_t position);

typedef struct dfnet_client_lease_options {
  const char *const *targets; /* node monikers (a node covers its subtree, a composite node
                                 its parents too) or class paths; borrowed */
  size_t target_count;        /* 0..16 */
  const char *const *match;   /* selectors KEY=VALUE that one online, bound node must all
                                 satisfy (host=NAME, class=NAME, a host label, a node
                                 property); it is added to the targets; borrowed */
  size_t match_count;         /* 0..8; targets and selectors: at least one of them */
  uint32_t ttl_ms;            /* 0 = the manager's default (30 min); at most the role's
                                 maximum (operator: 24 h) */
  bool no_expiry;             /* never expires (role admin only) */
  bool wait;                  /* queue while a target is leased */
  uint32_t wait_ms;           /* with wait: give up after this long; 0 = as long as it takes */
  dfnet_client_lease_priority_t priority; /* the queue's band (HIGH: role admin only) */
  const char *reason;                     /* kept in the audit log; NULL = none */
  bool no_renew;                          /* the library does not renew it */
  dfnet_client_lease_fn on_renew;         /* renewals and their end (may be NULL) */
  dfnet_client_lease_queue_fn on_queued;  /* the place while waiting (may be NULL) */
  void *user;                             /* passed to both */
} dfnet_client_lease_options_t;

/* Acquire a lease on opts' targets and selectors, all or nothing (role operator). Blocks
 * until the manager grants it — at once, or, with wait, when the queue reaches it — or
 * refuses it, or the wait ends. On OK *out is the lease with its token (free with
 * dfnet_client_lease_free); the library renews it (unless no_renew) and it becomes the
 * client's lease token when the client has none. A wait ends with DEADLINE_EXCEEDED after
 * wait_ms, or CANCELLED after dfnet_client_lease_acquire_cancel; the request leaves the
 * queue either way. A session lost while waiting: the library asks for the same place in
 * the queue again once reconnected (the manager keeps it 30 s). Strings are copied.
 * Errors: INVALID_ARGUMENT (no target nor selector, over the bounds: 16 targets of 511
 * bytes, 8 selectors of 255, a reason of 255; a selector without '='; the manager's: a TTL
 * over the role's maximum), NOT_FOUND (a target, or no node for the selectors),
 * PERMISSION_DENIED (HIGH or no_expiry without role admin; role viewer),
 * FAILED_PRECONDITION (a target is leased and not wait: the message names the holder, the
 * lease and its expiry), DEADLINE_EXCEEDED, CANCELLED, the common ones. *out is NULL on
 * error. Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_acquire(dfnet_client_t *client,
                                                           const dfnet_client_lease_options_t *opts,
                                                           dfnet_client_lease_t **out,
                                                           dfnet_client_error_t *err);

/* End every dfnet_client_lease_acquire of this client that is running now: each returns
 * CANCELLED soon, its request taken out of the queue (a lease granted in the meantime is
 * released). Errors: INVALID_ARGUMENT (client NULL), NOT_FOUND (none running; cancelling
 * twice is harmless). Any thread but a signal handler. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_acquire_cancel(dfnet_client_t *client);

/* Renew lease `id` (0: the lease of the client's lease token): it now expires ttl_ms from
 * now (0: its own TTL). token: NULL = the one the library knows (a lease this client
 * acquired, or the client's lease token when it is that lease's); "" = none (role admin).
 * On OK *out (may be NULL) gets the lease (free with dfnet_client_lease_free). Errors:
 * INVALID_ARGUMENT (id 0 and no lease token; token over 95 bytes), NOT_FOUND (no such
 * lease: it expired or was released), PERMISSION_DENIED (wrong token), the common ones.
 * Not on the client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_renew(dfnet_client_t *client, uint64_t id,
                                                         const char *token, uint32_t ttl_ms,
                                                         dfnet_client_lease_t **out,
                                                         dfnet_client_error_t *err);

/* Release lease `id` (0: the lease of the client's lease token), token as for
 * dfnet_client_lease_renew. The holder's calls and streams on its nodes end CANCELLED and
 * the queue moves on. force (role admin): another principal's lease, with a reason; a
 * reason (NULL = none) is kept in the audit log in any case. The library stops renewing it,
 * and forgets the client's lease token when it was this lease's. Errors: INVALID_ARGUMENT
 * (id 0 and no lease token, force without a reason, over the bounds), NOT_FOUND,
 * PERMISSION_DENIED (wrong token; force without role admin), the common ones. Not on the
 * client thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_release(dfnet_client_t *client, uint64_t id,
                                                           const char *token, bool force,
                                                           const char *reason,
                                                           dfnet_client_error_t *err);

/* List the leases (role viewer): held ones, then the requests waiting in the queue, in
 * order. target (NULL or "" = all): only those covering that node (moniker or class path).
 * On OK *out is new (free with dfnet_client_lease_list_free) and err's message is the
 * manager's count ("2 leases, 1 waiting"). Errors: the common ones. Not on the client
 * thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_list_leases(dfnet_client_t *client, const char *target,
                                                         const dfnet_client_query_options_t *q,
                                                         dfnet_client_lease_list_t **out,
                                                         dfnet_client_error_t *err);

/* Lease `id` (held or waiting) as dfnet_client_list_leases has it. On OK *out is new (free
 * with dfnet_client_lease_free). Errors: NOT_FOUND, the common ones. Not on the client
 * thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_show(dfnet_client_t *client, uint64_t id,
                                                        const dfnet_client_query_options_t *q,
                                                        dfnet_client_lease_t **out,
                                                        dfnet_client_error_t *err);

/* One change of the lease audit log. Strings owned by the list. */
typedef struct dfnet_client_lease_audit {
  uint64_t seq;       /* its place in the log (paging: after_seq) */
  uint64_t time_ms;   /* Unix epoch ms */
  const char *actor;  /* a principal, or "dfnet-manager" for an expiry */
  const char *action; /* acquire, renew, release, expire, force_release, queue, dequeue,
                         grant */
  uint64_t lease_id;
  const char *targets;
  const char *detail; /* the reason given, or what happened; "" when none */
} dfnet_client_lease_audit_t;

typedef struct dfnet_client_lease_audit_list {
  size_t count;
  dfnet_client_lease_audit_t *items; /* oldest first */
  bool more; /* the limit cut it: ask again with after_seq = items[count - 1].seq */
} dfnet_client_lease_audit_list_t;

/* Which part of the audit log dfnet_client_lease_history reads. */
typedef struct dfnet_client_lease_history_query {
  const char *target; /* a moniker or a target as asked; NULL or "" = every lease */
  uint64_t since_ms;  /* Unix epoch ms; 0 = from the beginning */
  uint32_t limit;     /* entries at most: 0 = 1000; at most 10000 */
  uint64_t after_seq; /* paging: only entries after this one */
} dfnet_client_lease_history_query_t;

/* The lease audit log (role viewer), oldest first. h may be NULL (everything, 1000 at
 * most). On OK *out is new (free with dfnet_client_lease_audit_list_free). Errors:
 * INVALID_ARGUMENT (limit over 10000, target over 511 bytes), the common ones. Not on the
 * client thread. */
DFNET_CLIENT_API dfnet_status_t
dfnet_client_lease_history(dfnet_client_t *client, const dfnet_client_lease_history_query_t *h,
                           const dfnet_client_query_options_t *q,
                           dfnet_client_lease_audit_list_t **out, dfnet_client_error_t *err);

/* Free a result. NULL is a no-op. */
DFNET_CLIENT_API void dfnet_client_lease_free(dfnet_client_lease_t *lease);
DFNET_CLIENT_API void dfnet_client_lease_list_free(dfnet_client_lease_list_t *list);
DFNET_CLIENT_API void dfnet_client_lease_audit_list_free(dfnet_client_lease_audit_list_t *list);

/* Set the client's lease token (above), which the calls it starts from now on carry (a
 * call already started keeps its own): "<id>.<64 hex>"; NULL or "" = none. Copied.
 * Errors: INVALID_ARGUMENT (client NULL, token over 95 bytes). Any thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_set_lease_token(dfnet_client_t *client,
                                                             const char *token);

/* Copy the client's lease token into buf (cap bytes; 96 suffice; "" = none). Errors:
 * INVALID_ARGUMENT (NULL, cap 0), RESOURCE_EXHAUSTED (cap too small: buf holds ""). Any
 * thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_token(dfnet_client_t *client, char *buf,
                                                         size_t cap);

/* A lease this client acquired, as its renewals know it. */
typedef struct dfnet_client_lease_state {
  uint64_t id;
  bool renewing;         /* the library still renews it (false: no_renew, no expiry, lost) */
  uint64_t expires_ms;   /* the expiry the manager last gave; 0 = never */
  uint32_t ttl_ms;       /* 0 = no expiry */
  uint32_t renewals;     /* renewals done so far */
  uint32_t failures;     /* failed renewals in a row (being tried again while renewing) */
  dfnet_status_t status; /* OK while held; else why the library stopped renewing it (as
                            dfnet_client_lease_fn) */
  char message[256];     /* "" while OK */
} dfnet_client_lease_state_t;

/* The state of lease `id`, acquired through this client. Errors: INVALID_ARGUMENT (NULL),
 * NOT_FOUND (not acquired through this client, or released through it since). Any thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_lease_state(dfnet_client_t *client, uint64_t id,
                                                         dfnet_client_lease_state_t *out);

/* ---- Watch ---------------------------------------------------------------------------- */

typedef enum dfnet_client_event_kind {
  DFNET_CLIENT_EVENT_UNSPECIFIED = 0,
  DFNET_CLIENT_EVENT_NODE_ADDED = 1,
  DFNET_CLIENT_EVENT_NODE_REMOVED = 2,
  DFNET_CLIENT_EVENT_NODE_UPDATED = 3,
  DFNET_CLIENT_EVENT_NODE_BOUND = 4,
  DFNET_CLIENT_EVENT_NODE_UNBOUND = 5,
  DFNET_CLIENT_EVENT_DRIVER_REGISTERED = 6,
  DFNET_CLIENT_EVENT_DRIVER_DISABLED = 7,
  DFNET_CLIENT_EVENT_DRIVER_ENABLED = 8,
  DFNET_CLIENT_EVENT_DRIVER_HOST_EXITED = 9,
  DFNET_CLIENT_EVENT_HOST_CONNECTED = 10,
  DFNET_CLIENT_EVENT_HOST_DISCONNECTED = 11,
  DFNET_CLIENT_EVENT_HOST_REMOVED = 12,
  DFNET_CLIENT_EVENT_DRIVER_UNREGISTERED = 13, /* subject: its URL; detail: by whom */
  DFNET_CLIENT_EVENT_NODE_SUSPENDED = 14,      /* subject: the node; detail: the flags */
  DFNET_CLIENT_EVENT_NODE_RESUMED = 15,
  DFNET_CLIENT_EVENT_LEASE_ACQUIRED = 16, /* subject: the lease id; detail: holder, targets */
  DFNET_CLIENT_EVENT_LEASE_RELEASED = 17, /* detail: by whom and why (a forced release too) */
  DFNET_CLIENT_EVENT_LEASE_EXPIRED = 18,
  DFNET_CLIENT_EVENT_LEASE_QUEUED = 19, /* a request waits; detail: principal and targets */
} dfnet_client_event_kind_t;

/* "NODE_ADDED", ... "UNSPECIFIED" (static). */
DFNET_CLIENT_API const char *dfnet_client_event_kind_str(dfnet_client_event_kind_t kind);

/* One event; every pointer is borrowed for the callback. */
typedef struct dfnet_client_event {
  dfnet_client_event_kind_t kind;
  const char *subject; /* moniker, driver URL or host name */
  const char *detail;  /* driver URL bound, exit reason ... ("" when none) */
  dfnet_status_t code;
  const char *message; /* "" when none */
  uint64_t time_ms;    /* Unix epoch ms */
} dfnet_client_event_t;

/* A watch. 0 is "none"; never reused within a client. */
typedef uint64_t dfnet_client_watch_id_t;

enum {
  DFNET_CLIENT_WATCH_NODES = 1u << 0,
  DFNET_CLIENT_WATCH_DRIVERS = 1u << 1,
  DFNET_CLIENT_WATCH_HOSTS = 1u << 2,
  DFNET_CLIENT_WATCH_ALL = 7u,
};

typedef void (*dfnet_client_event_fn)(void *user, dfnet_client_watch_id_t watch,
                                      const dfnet_client_event_t *event);

/* Watch the fleet: on_event per event (client thread), then on_end exactly once with the
 * watch's final status (CANCELLED after dfnet_client_watch_cancel, UNAVAILABLE when the
 * session was lost, or what the manager ended it with); nothing runs after on_end. `what`
 * is a set of DFNET_CLIENT_WATCH_* bits (0 = all). On error no callback ever runs.
 * Errors: the common ones. Any thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_watch(dfnet_client_t *client, unsigned what,
                                                   dfnet_client_event_fn on_event,
                                                   dfnet_client_done_fn on_end, void *user,
                                                   dfnet_client_watch_id_t *watch_out,
                                                   dfnet_client_error_t *err);

/* Stop a watch: on_end runs with CANCELLED soon, unless it already ended. Errors:
 * NOT_FOUND (not running: ended, or cancelled already — cancelling twice is harmless).
 * Any thread. */
DFNET_CLIENT_API dfnet_status_t dfnet_client_watch_cancel(dfnet_client_t *client,
                                                          dfnet_client_watch_id_t watch);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_CLIENT_H */
