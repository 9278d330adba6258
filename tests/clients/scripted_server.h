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
 *   DriverControl         -> url containing "missing": NOT_FOUND; RESTART: result 2
 *                            (viewer/operator: PERMISSION_DENIED)
 */
#ifndef DFNET_TESTS_CLIENTS_SCRIPTED_SERVER_H
#define DFNET_TESTS_CLIENTS_SCRIPTED_SERVER_H

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
} ss_stats_t;

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
