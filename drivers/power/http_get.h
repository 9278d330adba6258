/* http_get: one HTTP/1.1 GET to a networked power switch, over libwebsockets' HTTP client
 * (the project's one HTTP stack), blocking the calling thread until the answer, an error,
 * the timeout or an abort. The power driver's worker thread is the only caller.
 *
 * Addresses are what a board file's "power" resource gives: "http://host[:port][/prefix]"
 * or "host[:port]" (http assumed). Plugs' local APIs are plain HTTP on the lab's network;
 * https and authentication are not supported (http_url_parse refuses "https://").
 */
#ifndef DFNET_DRIVERS_POWER_HTTP_GET_H
#define DFNET_DRIVERS_POWER_HTTP_GET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

/* A parsed switch address. */
typedef struct http_url {
  char host[128];   /* name or address, without brackets */
  uint16_t port;    /* 80 unless given */
  char prefix[128]; /* path before the API's own ("" or "/plug1"), no trailing '/' */
} http_url_t;

/* Parse `address` into *url. Returns OK; INVALID_ARGUMENT with the reason in why[why_size]
 * (an empty or over-long host, a port outside 1..65535, a scheme other than http). Any
 * thread. */
dfnet_status_t http_url_parse(const char *address, http_url_t *url, char *why, size_t why_size);

/* GET `path` (starting with '/', appended to url->prefix; the query already escaped) from
 * *url. Blocks for at most timeout_ms, checking *abort (set by another thread) every 50 ms.
 * On OK, the body's first body_size - 1 bytes are in body (NUL-terminated; more is
 * dropped) and the HTTP status in *http_status (any status: the caller judges it).
 * Returns OK; UNAVAILABLE with the reason in why (cannot connect, the connection broke,
 * no answer within timeout_ms, aborted); RESOURCE_EXHAUSTED (libwebsockets could not make
 * a context). Any thread but one at a time per thread (a context of its own per request). */
dfnet_status_t http_get(const http_url_t *url, const char *path, uint32_t timeout_ms,
                        const atomic_bool *abort, char *body, size_t body_size, int *http_status,
                        char *why, size_t why_size);

#endif /* DFNET_DRIVERS_POWER_HTTP_GET_H */
