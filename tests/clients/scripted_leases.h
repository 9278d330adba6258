/* The lease script of the scripted manager peer (scripted_server.h "The lease script"):
 * scripted_server.c hands it the lease protocol's envelopes. Service thread only, but
 * ss_leases_stats (any thread). */
#ifndef DFNET_TESTS_CLIENTS_SCRIPTED_LEASES_H
#define DFNET_TESTS_CLIENTS_SCRIPTED_LEASES_H

#include <stdbool.h>

#include "lib/transport.h"
#include "scripted_server.h"

typedef struct ss_leases ss_leases_t;

/* NULL when out of memory. */
ss_leases_t *ss_leases_new(dfnet_transport_t *t);
void ss_leases_free(ss_leases_t *l);

/* A lease request, or a Cancel of an acquire waiting here: answered, true. Anything else:
 * false (not touched). */
bool ss_leases_envelope(ss_leases_t *l, dfnet_session_id_t sid, const dfnet_envelope_t *env);

void ss_leases_stats(ss_leases_t *l, ss_lease_stats_t *out);

#endif
