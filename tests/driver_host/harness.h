/* Test harness for dfnet-driver-host: a real supervisor (host/supervisor) spawning real
 * driver host processes over real socketpairs, recording what comes back.
 *
 * The driver hosts are sandboxed by default, as dfnet-host's (docs/architecture.md
 * "Confinement"): as the driver user (tests/driver_user.h) when the test runs as root,
 * reading their drivers through the build tree's directories of drivers (drivers/,
 * tests/drivers/, tests/driver_host/). The files a test driver writes for its test are
 * handed to it: a start whose program lists "resources" gets them opened as dfnet-host
 * opens them (host/supervisor/resources.h, every one allowed). */
#ifndef DFNET_TESTS_DRIVER_HOST_HARNESS_H
#define DFNET_TESTS_DRIVER_HOST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/supervisor/supervisor.h"

typedef struct rec {
  uint64_t host;
  uint64_t id;
  pb_size_t which;
  int code;
  char message[512];
  bool eos;
  uint8_t *bulk;
  size_t bulk_len;
  /* NodeAdd / NodeRemove */
  char parent[512];
  char name[129];
  char moniker[512];
  char class_name[32];
  unsigned nprops;
  bool owned;
  /* Call (a driver's call to another driver), StreamCredit */
  char target[512];
  char method[256];
  char caller[512];
  char caller_driver_url[256];
  uint32_t deadline_ms;
  uint32_t credit;
} rec_t;

typedef struct exit_rec {
  uint64_t host;
  int signal;
  int exit_code;
  char reason[256];
  char nodes[1024]; /* comma-separated */
} exit_rec_t;

typedef struct harness {
  dfnet_supervisor_t *sup;
  dfnet_envelope_t *env; /* for sending */
  rec_t *recs;
  size_t nrecs, cap;
  exit_rec_t exits[16];
  size_t nexits;
  bool answer_node_add; /* reply Status(node_add_code) to NodeAdd */
  int node_add_code;
  uint64_t next_id;
} harness_t;

/* A harness whose driver hosts are sandboxed (h_new) or not. Aborts when it cannot. */
harness_t *h_new(void);
harness_t *h_new_sandbox(bool sandboxed);
/* A sandboxed harness whose driver host executable is `driver_host_path` (copied). */
harness_t *h_new_at(const char *driver_host_path);
void h_free(harness_t *h);
/* Pump events for up to ms (returns early when `until` is true). */
typedef bool (*h_pred)(harness_t *h, const void *arg);
bool h_pump_until(harness_t *h, int ms, h_pred until, const void *arg);
void h_pump(harness_t *h, int ms);

/* Path of a test driver .so by name ("echo"). Static buffer. */
const char *h_driver(const char *name);

uint64_t h_spawn(harness_t *h);
/* Start driver `so` on node; props: str-key string property pairs (k, v, ..., NULL).
 * Returns the Status code (waits up to 10 s). */
int h_start(harness_t *h, uint64_t host, const char *node, const char *so,
            const char *dispatcher_opt, const char *const *props, rec_t **status_out);
/* The same with DriverStart.offered: `offered` holds n (service, instance, source) triples. */
int h_start_offered(harness_t *h, uint64_t host, const char *node, const char *so,
                    const char *const *props, const char *const (*offered)[3], size_t n,
                    rec_t **status_out);
/* Send a DriverStart with the manifest's program JSON `program` (the bulk bytes; its
 * "resources" handed) and start_timeout_ms, without waiting for its answer. Returns its id
 * (0: not sent, or a resource that cannot be opened: the reason on stderr). */
uint64_t h_start_send(harness_t *h, uint64_t host, const char *node, const char *so,
                      const char *const *props, const char *program, uint32_t start_timeout_ms);
/* Send a DriverStart whose `resources` are names[0 .. nnames) with the descriptors
 * fds[0 .. nfds) (dfnet_supervisor_send_fds: duplicated, the caller keeps its own; nfds may
 * differ from nnames to test a frame that lacks some) and program (may be NULL) as its bulk,
 * without waiting for its answer. Returns its id (0: not sent). */
uint64_t h_start_send_fds(harness_t *h, uint64_t host, const char *node, const char *so,
                          const char *program, const char *const *names, size_t nnames,
                          const int *fds, size_t nfds);
/* The same with the node's string properties `props` (k, v, ..., NULL; may be NULL). */
uint64_t h_start_send_props_fds(harness_t *h, uint64_t host, const char *node, const char *so,
                                const char *const *props, const char *program,
                                const char *const *names, size_t nnames, const int *fds,
                                size_t nfds);
/* DriverSuspend{flags} (resume false) or DriverResume (resume true) of node; returns the
 * Status code (waits up to 10 s; -1 when none). *status_out (may be NULL) gets the record,
 * valid until the next pump. */
int h_control(harness_t *h, uint64_t host, const char *node, bool resume, uint32_t flags,
              rec_t **status_out);
/* Answer a driver host's own request `id` (a driver's Call) as the agent would: one Reply
 * (or a Status). Returns the supervisor's status. */
int h_reply(harness_t *h, uint64_t host, uint64_t id, int code, const char *message, bool eos,
            const void *data, size_t len);
int h_status(harness_t *h, uint64_t host, uint64_t id, int code, const char *message);
/* The skip-th record of kind `which` with this id, waiting up to ms; NULL if none. */
rec_t *h_wait_id(harness_t *h, pb_size_t which, uint64_t id, size_t skip, int ms);
int h_stop(harness_t *h, uint64_t host, const char *node);
/* Send a Call; returns its id. */
uint64_t h_call(harness_t *h, uint64_t host, const char *target, const char *method,
                const void *data, size_t len, uint32_t deadline_ms, uint32_t credit);
int h_cancel(harness_t *h, uint64_t host, uint64_t id);
int h_credit(harness_t *h, uint64_t host, uint64_t id, uint32_t credit);
/* Wait for the final answer (Reply eos or Status) of id. NULL after 10 s. */
rec_t *h_final(harness_t *h, uint64_t id);
/* Number of final answers / stream items recorded for id. */
size_t h_count_finals(harness_t *h, uint64_t id);
size_t h_count_items(harness_t *h, uint64_t id);
/* Index of the final of id in the record order, or SIZE_MAX. */
size_t h_final_index(harness_t *h, uint64_t id);
exit_rec_t *h_wait_exit(harness_t *h, uint64_t host);
/* Close the host and check it exited cleanly (code 0: under ASan, no leaks either). */
void h_close_clean(harness_t *h, uint64_t host);
rec_t *h_wait_msg(harness_t *h, pb_size_t which, size_t skip);

#endif
