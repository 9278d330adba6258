/* A scripted manager peer for the client tests: the REAL transport server
 * (lib/transport.h) with real certificates from lib/pki.h, answering the client API and
 * calls from a script (no mock of our transport; only the manager's logic is scripted).
 *
 * Certificates (ss_make_certs): <dir>/state (CA + manager certificate, SANs 127.0.0.1),
 * <dir>/admin/alice.{crt,key}, <dir>/operator/bob.*, <dir>/viewer/carol.*, each with ca.crt.
 *
 * Script:
 *   Hello                 -> Welcome (role from the certificate)
 *   Call (viewer)         -> Status PERMISSION_DENIED "Call needs role operator"
 *   /test.Echo/Unary      -> one Reply, end_of_stream, payload = request
 *   /test.Echo/Stream     -> request = u32 LE count, u32 LE size: `count` Replies of `size`
 *                            bytes (byte = sequence number), sent only while the caller's
 *                            credit allows, then end_of_stream OK
 *   /test.Echo/Block      -> never answered (deadline / cancel tests); a Cancel is counted
 *   /test.Echo/Fail       -> Reply NOT_FOUND "no node 'x'"
 *   /test.Echo/Drop       -> the session is closed (host gone)
 *   /dfnet.hw.rng.Rng/Read-> ReadReply{data = count bytes 0,1,2,...}
 *   other methods         -> Reply UNIMPLEMENTED
 *   ListNodes filter "many" -> 5000 verbose NodeInfo (3 properties each); else 3 fixed nodes
 *   ListHosts / ListDrivers / ListComposites / BindWhy -> fixed items, then Status OK
 *   Watch                 -> 3 WatchEvents, then waits; Cancel -> Status CANCELLED
 *   ListNodes exact "dev.lab-a.pci.00_08_0" (starting), "...00_09_0" (bound, suspended),
 *                         "dev.lab-a.pci.t0" (a test node): only when asked by that moniker
 *   DriverControl         -> url containing "missing": NOT_FOUND; RESTART: result 2 driver
 *                            hosts, one outcome (00_05_0 running virtio-rng); url containing
 *                            "partial": a result whose second outcome (00_06_0) failed
 *                            FAILED_PRECONDITION; other actions: Status OK alone
 *                            (viewer/operator: PERMISSION_DENIED)
 *   ListDriverHosts       -> host "" three driver hosts (lab-b's offline: pid and RSS 0),
 *                            "lab-a" its two, another host NOT_FOUND
 *   RequestBind, UnbindNode, SuspendNode, ResumeNode, AddTestNode, RemoveTestNode
 *                         -> recorded (ss_stats: last_*); node "dev.none": NOT_FOUND; else
 *                            Status OK with a message (none for ResumeNode); not admin:
 *                            PERMISSION_DENIED
 *   Call                  its lease_token recorded (ss_stats: last_lease_token)
 *   ListNodes exact "dev.lab-a.pci.00_0a_0": a node lease 7 (alice's) covers; ListHosts:
 *                         lab-a's lease holder alice, 1 leased node
 *   Leases                scripted_leases.c (ss_lease_stats below)
 */
#ifndef DFNET_TESTS_CLIENTS_SCRIPTED_SERVER_H
#define DFNET_TESTS_CLIENTS_SCRIPTED_SERVER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct scripted_server scripted_server_t;

typedef struct ss_stats {
  unsigned cancels; /* Cancel envelopes received for Block calls */
  unsigned watch_cancels;
  unsigned credits;          /* StreamCredit envelopes received */
  uint64_t credit_total;     /* sum of their credit */
  uint32_t last_deadline_ms; /* Call.deadline_ms of the last call */
  uint32_t last_credit;      /* Call.credit of the last call */
  unsigned calls;
  int last_which;            /* the last node control request's Envelope member (0: none) */
  char last_node[700];       /* its node (AddTestNode: "<parent>.<name>") */
  uint32_t last_flags;       /* SuspendNode.flags; RequestBind.force_rebind */
  char last_driver[256];     /* RequestBind.driver_url_suffix */
  char last_props[2048];     /* AddTestNode: "<key>=<u|s|b|e>:<value>;" per property, keys of
                                integers as "#<n>" */
  char last_lease_token[96]; /* Call.lease_token of the last call */
} ss_stats_t;

/* The lease script (scripted_leases.c):
 *   LeaseAcquire  viewer: PERMISSION_DENIED; a target "dev.none": NOT_FOUND; HIGH priority or
 *                 no_expiry without role admin: PERMISSION_DENIED; a target
 *                 "dev.lab-a.busy" (lease 7, alice's): without wait FAILED_PRECONDITION
 *                 "dev.lab-a.busy is leased by alice until 2027-01-15T08:00:00Z (lease 7)";
 *                 with wait LeaseInfo{id 90.., position 2}, {position 1}, then nothing until
 *                 a Cancel (Status CANCELLED, counted) or wait_ms (DEADLINE_EXCEEDED);
 *                 a target "dev.lab-a.queue": position 1, granted 200 ms later;
 *                 a target "dev.lab-a.drop": position 1 (entry 77), then the session is
 *                 closed; asked again with resume_id 77: granted;
 *                 else granted at once: ids from 42, holder the CN, targets as asked (a
 *                 selector: "dev.lab-a.pci.00_05_0"), nodes the targets, TTL ttl_ms or 30
 *                 min (no_expiry: 0, expires 0), token "<id>.<64 hex>"
 *   LeaseRenew    unknown or released: NOT_FOUND "no lease N"; wrong token (not admin):
 *                 PERMISSION_DENIED; a lease on "dev.lab-a.revoked" from its 3rd renewal:
 *                 NOT_FOUND "lease N expired"; a lease on "dev.lab-a.mute": never answered;
 *                 else expires = now + (ttl_ms or its TTL): LeaseInfo (no token)
 *   LeaseRelease  unknown or released: NOT_FOUND; force without admin or wrong token:
 *                 PERMISSION_DENIED; force without reason: INVALID_ARGUMENT; else Status OK
 *                 "lease N released"
 *   ListLeases    the held leases (lease 7 first), then request 9 waiting (bob, position 1,
 *                 dev.lab-a.busy); target: those with it as a target or node (or a node
 *                 above it); id: that one; Status "N leases, M waiting"
 *   LeaseHistory  4 entries (seq 1..4: acquire, queue, renew, expire); target (exact),
 *                 since_ms, after_seq, limit (0: 1000) applied; Status "N entries" (",
 *                 more" when the limit cut it) */
typedef struct ss_lease_stats {
  unsigned acquires, renews, releases, cancels, lists, histories;
  uint64_t renew_ms[32];  /* monotonic ms at each LeaseRenew received (the first 32) */
  char acq_targets[1024]; /* the last LeaseAcquire: targets, selectors ','-joined */
  char acq_match[1024];
  uint32_t acq_ttl_ms, acq_wait_ms;
  bool acq_no_expiry, acq_wait;
  int acq_priority;
  char acq_reason[256];
  uint64_t acq_resume_id;
  uint64_t renew_id; /* the last LeaseRenew */
  char renew_token[96];
  uint32_t renew_ttl_ms;
  uint64_t release_id; /* the last LeaseRelease */
  char release_token[96];
  bool release_force;
  char release_reason[256];
  char list_target[512]; /* the last ListLeases */
  uint64_t list_id;
  char hist_target[512]; /* the last LeaseHistory */
  uint64_t hist_since_ms, hist_after_seq;
  uint32_t hist_limit;
} ss_lease_stats_t;

void ss_lease_stats(scripted_server_t *s, ss_lease_stats_t *out);

/* Issue a certificate for `name` with `role` from the CA in state_dir into out_dir
 * (<name>.crt, .key, .pem, ca.crt) unless it is there already. 0 or -1. */
int ss_issue(const char *state_dir, const char *role, const char *name, const char *out_dir);

/* Make the certificate tree under dir (created). 0 or -1. */
int ss_make_certs(const char *dir);

/* Start serving on 127.0.0.1:<ephemeral>. NULL on failure. */
scripted_server_t *ss_start(const char *cert_dir, uint16_t *port);

void ss_stats(scripted_server_t *s, ss_stats_t *out);

/* Stop and free. NULL is fine. */
void ss_stop(scripted_server_t *s);

#endif
