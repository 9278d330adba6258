/* Calls through libdfnet-client for the call benchmarks (rpc_bench, driver_calls_bench):
 * unary round trips one at a time (p50 / p99), calls per second with 16 in flight per
 * connection (each completion starts the next call from the client's callback), and the
 * single-hop floor: the scripted manager peer of tests/clients (the real transport, TLS 1.2)
 * answering /test.Echo/Unary itself, one secure-websocket hop away. Every failure ends the
 * run (bench_die). Measures nothing by itself. */
#ifndef DFNET_BENCH_CLIENT_CALLS_H
#define DFNET_BENCH_CLIENT_CALLS_H

#include "dfnet/client.h"
#include "bench_util.h"

/* The floor peer's node and unary method. */
#define BENCH_FLOOR_NODE "n"
#define BENCH_FLOOR_UNARY "/test.Echo/Unary"

/* Calls kept in flight on each connection by bench_client_rate, and its most connections. */
enum { BENCH_DEPTH = 16, BENCH_MAX_CLIENTS = 4 };

/* 5000 unary calls of 64 bytes, one at a time, after 300 not counted; each reply must be the
 * request echoed. */
bench_latency_t bench_client_latency(dfnet_client_t *c, const char *node, const char *method);

/* Keep BENCH_DEPTH unary calls of 64 bytes in flight on each of `clients` new connections
 * (connect()) for `seconds` after a 300 ms warm-up; returns completed calls per second, and
 * in cpu[] what each of `procs` spent per call meanwhile. Closes the connections. */
double bench_client_rate(dfnet_client_t *(*connect)(void), const char *node, const char *method,
                         int clients, double seconds, const bench_procs_t *procs,
                         double cpu[BENCH_PROCS_MAX]);

/* The end-to-end streaming figure (rpc_bench's, image_bench's reference): one call of
 * `method` on `node` (the echo test driver's Stream: a 4-byte little-endian count, then the
 * item's bytes) streaming `count` items of `size` bytes with this credit window; returns
 * MB/s, and in cpu[] what each of `procs` spent per MiB meanwhile. */
double bench_client_stream(dfnet_client_t *c, const char *node, const char *method, uint32_t count,
                           uint32_t size, uint32_t credit, const bench_procs_t *procs,
                           double cpu[BENCH_PROCS_MAX]);

/* Start the floor peer (its certificates in /tmp/dfnet-<prefix>-peer-<pid>, removed at
 * exit) and connect to it as an operator. */
void bench_floor_start(const char *prefix);
dfnet_client_t *bench_floor_connect(void);
/* Stop the peer (idempotent; also at exit). */
void bench_floor_stop(void);

#endif
