/* A client endpoint's reconnect backoff: exponential with "full jitter" (AWS Architecture
 * Blog, Marc Brooker, "Exponential Backoff and Jitter", 2015; issue 23 item 5): retry n
 * waits a uniform random time in [0, min(cap, base x multiplier^n)]. Of the schemes that
 * post compares, full jitter spreads a fleet that lost its server at the same moment most
 * evenly over the window, so a restarted manager sees a steady trickle instead of waves.
 * Defaults (lib/transport.h): base 500 ms, x2, cap 30 s.
 *
 * A restarting server: for a minute after a session ended, an attempt that found nothing
 * listening (connection refused) keeps the window at 1 s at most. Knocking on a closed port
 * costs the server nothing, and a window grown to 4 or 8 s while the manager restarted
 * (about 2 s) made a fleet of 1,000 hosts wait that long after it listened again
 * (bench/reconnect_storm: 6.1 s instead of <= 5 s). Any attempt that reaches a listening
 * server and fails (a TLS handshake that timed out under load, a refusal) grows the window
 * as before: that is the load the backoff must spread.
 */
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/transport.h"
#include "lib/transport_internal.h"

/* xorshift64* (Vigna, 2016): enough to spread delays, and per endpoint: rand(3) would give
 * every process the same sequence (nobody calls srand) and the fleet's retries would align. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

void transport__backoff_init(transport__endpoint_t *ep, const dfnet_client_config_t *cfg) {
  ep->backoff_initial_ms =
      cfg->backoff_initial_ms ? cfg->backoff_initial_ms : DFNET_TRANSPORT_BACKOFF_BASE_MS_DEFAULT;
  ep->backoff_multiplier = cfg->backoff_multiplier >= 1.0
                               ? cfg->backoff_multiplier
                               : DFNET_TRANSPORT_BACKOFF_MULTIPLIER_DEFAULT;
  ep->backoff_max_ms =
      cfg->backoff_max_ms ? cfg->backoff_max_ms : DFNET_TRANSPORT_BACKOFF_CAP_MS_DEFAULT;
  if (ep->backoff_max_ms < ep->backoff_initial_ms)
    ep->backoff_max_ms = ep->backoff_initial_ms;
  ep->backoff_jitter_pct = 0; /* unused: full jitter */
  ep->backoff_next_ms = ep->backoff_initial_ms;
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid() << 32 ^
           (uint64_t)(uintptr_t)ep;
  }
  ep->backoff_rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

/* A server restarting: the session ended a short while ago and nothing listens at its
 * address yet. */
static bool server_restarting(const transport__endpoint_t *ep) {
  return ep->last_refused && ep->lost_ms != 0 &&
         dfnet_transport_now_ms() - ep->lost_ms < DFNET_TRANSPORT_BACKOFF_RESTART_PERIOD_MS;
}

double transport__backoff_next_delay_ms(transport__endpoint_t *ep) {
  if (server_restarting(ep) && ep->backoff_next_ms > DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS)
    ep->backoff_next_ms = ep->backoff_max_ms < DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS
                              ? ep->backoff_max_ms
                              : DFNET_TRANSPORT_BACKOFF_RESTART_CAP_MS;
  double window = ep->backoff_next_ms; /* min(cap, base x multiplier^n) */
  double u = (double)(rng_next(&ep->backoff_rng) >> 11) / (double)(1ULL << 53); /* [0, 1) */
  ep->backoff_next_ms = window * ep->backoff_multiplier;
  if (ep->backoff_next_ms > ep->backoff_max_ms)
    ep->backoff_next_ms = ep->backoff_max_ms;
  return u * window;
}

void transport__backoff_reset(transport__endpoint_t *ep) {
  ep->backoff_next_ms = ep->backoff_initial_ms;
}
