/* A whole dfnet fabric for integration tests: the real dfnet-manager, real dfnet-host
 * agents (optionally each in a network namespace of its own) and libdfnet-client, with
 * certificates issued by the manager and driver packages built from the test drivers
 * (tests/drivers/). No mock of any dfnet part.
 *
 * Every function asserts (cmocka) on failure unless it says otherwise; call them from a
 * test or a group set-up. Binaries come from DFNET_BUILD_DIR (ctest), fixtures from
 * tests/fixtures/ (DFNET_FIXTURES_DIR, compiled in).
 */
#ifndef DFNET_TESTS_INTEGRATION_FABRIC_H
#define DFNET_TESTS_INTEGRATION_FABRIC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dfnet/client.h"

typedef struct fabric_agent {
  const char *name;
  char ns[32];              /* network namespace, "" = none (loopback) */
  char veth_root[16];       /* root-side interface of the veth pair */
  char addr_root[20];       /* the address this agent reaches the manager at */
  bool usb;                 /* enumerate USB (else --no-usb) */
  const char *const *extra; /* more dfnet-host arguments, NULL-terminated (may be NULL) */
  pid_t pid;
  char log[600];
} fabric_agent_t;

typedef struct fabric {
  char root[256];  /* /tmp/dfnet-<name>-<pid>: state, certs, drivers, logs */
  char build[512]; /* the build tree */
  pid_t manager;
  uint16_t port;
  char manager_log[600];
  const char *const *manager_extra; /* more dfnet-manager arguments, NULL-terminated */
} fabric_t;

/* A driver package made from a test driver: `so` is a file of build/tests/drivers/,
 * bound to board-file platform devices with vid 0xd0f and this did; `extra` adds JSON
 * members to the manifest's program block (NULL = none). */
typedef struct fabric_package {
  const char *name, *so, *extra;
  int did;
} fabric_package_t;

uint64_t fabric_now_ms(void);
void fabric_sleep_ms(unsigned ms);

/* Run a shell command; returns its exit status, or -1. */
int fabric_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Create a fresh fabric directory /tmp/dfnet-<name>-<pid>, the CA (manager certificate with
 * these SANs: NULL-terminated, may be NULL), and the driver packages (NULL-terminated by a
 * NULL name) in <root>/drivers. Returns 0 or -1 (printing why). */
int fabric_init(fabric_t *f, const char *name, const char *const *sans,
                const fabric_package_t *packages);

/* Issue a certificate with `role` for `name` into <root>/certs. Returns 0 or -1. */
int fabric_issue(fabric_t *f, const char *role, const char *name);

/* Write <root>/board.json with platform devices of vid 0xd0f: "name:did" entries,
 * NULL-terminated. */
void fabric_write_board(fabric_t *f, const char *const *devices);

/* A board UART for the real serial driver: a pseudo-terminal pair (both sides raw) whose
 * slave <root>/board.json gives as platform device `name`'s "tty" (fuchsia.BIND_SERIAL_CLASS
 * 3, a console), and the build's serial driver package copied into <root>/drivers. The
 * board's side (the master, O_NONBLOCK) into *board; the slave into *slave: keep it open,
 * so the pty stays up while the driver reopens it. Returns 0 or -1 (printing why). */
int fabric_pty_board(fabric_t *f, const char *name, int *board, int *slave);

/* Start dfnet-manager listening on `address` ("127.0.0.1" or "0.0.0.0"), port chosen by
 * the system, with the fabric's drivers and --host-grace grace_s. Waits for it to listen.
 * Also a restart, after fabric_stop_process(&f->manager, ...): the same state directory,
 * f->port the new port. Returns 0 or -1. */
int fabric_start_manager(fabric_t *f, const char *address, int grace_s);

/* Start dfnet-manager again (after fabric_stop_process(&f->manager, ...)) on the same state
 * directory and the same port, f->port: the agents and clients that knew it reconnect to
 * it. Waits for it to listen, trying again while the port is not free yet. Returns 0 or
 * -1. */
int fabric_restart_manager(fabric_t *f, const char *address, int grace_s);

/* Start a dfnet-host for `a` (its certificate must exist) on the sysfs fixture and the
 * board file, with USB only when a->usb, inside a->ns when set, connecting to
 * a->addr_root. Its driver hosts run sandboxed unless a->extra says --no-sandbox: as root,
 * as the driver user dfnet-driver, created first when missing (tests/driver_user.h). */
void fabric_start_agent(fabric_t *f, fabric_agent_t *a);

/* Put `a` in a new network namespace joined to the root one by a veth pair (10.231.x/30;
 * `index` picks x). fabric_netns_usable() first. */
void fabric_netns_create(fabric_agent_t *a, int index);
void fabric_netns_destroy(fabric_agent_t *a);
/* Can this process make network namespaces? *why gets the reason when not. */
bool fabric_netns_usable(char *why, size_t size);

/* Connect a client with the certificate of `name` (issued before). Returns it or NULL. */
dfnet_client_t *fabric_connect(fabric_t *f, const char *name);

/* Stop a process: `sig`, then SIGKILL after 5 s. Returns its wait status, or -1. */
int fabric_stop_process(pid_t *pid, int sig);

/* Stop everything and remove the directory (kept when DFNET_KEEP is set). */
void fabric_cleanup(fabric_t *f, fabric_agent_t *agents, int n);

/* The node as the manager shows it now. */
typedef struct fabric_node {
  bool found, offline;
  dfnet_client_node_state_t state;
  uint64_t driver_host_id;
} fabric_node_t;

fabric_node_t fabric_node(dfnet_client_t *c, const char *moniker);

typedef bool (*fabric_node_pred_t)(fabric_node_t n, const void *arg);
bool fabric_is_bound(fabric_node_t n, const void *arg);
bool fabric_is_offline(fabric_node_t n, const void *arg);
bool fabric_is_gone(fabric_node_t n, const void *arg);
bool fabric_is_found(fabric_node_t n, const void *arg);

/* Poll until pred holds (every 100 ms, up to ms). *out (may be NULL) gets the last view. */
bool fabric_wait_node(dfnet_client_t *c, const char *moniker, fabric_node_pred_t pred,
                      const void *arg, uint32_t ms, fabric_node_t *out);

/* A blocking unary call with a deadline; the reply (NUL-terminated, cut to size) in
 * reply_out when OK. Prints the status and message when not OK. */
dfnet_status_t fabric_call(dfnet_client_t *c, const char *target, const char *method,
                           const void *req, size_t len, uint32_t deadline_ms, char *reply_out,
                           size_t reply_size);

#endif
