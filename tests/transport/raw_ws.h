/* A raw websocket client over the tests' raw TLS client (tls_fixture.h), for tests that must
 * send what our own transport never sends: unmasked or RSV frames, garbage, envelopes with
 * broken members, floods it does not read the answers to. It speaks RFC 6455 by hand.
 *
 * Every function reports failure by return value and never aborts; tests assert on it.
 * Reads wait at most the timeout given to raw_ws_open (a hang guard, not a timing). */
#ifndef DFNET_TESTS_RAW_WS_H
#define DFNET_TESTS_RAW_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/envelope.h"

typedef struct raw_ws raw_ws_t;

/* TLS 1.2 to 127.0.0.1:port with cert/key (PEM paths), trusting ca, then the websocket
 * upgrade asking for `subprotocol`. Returns the connection, or NULL; *http (may be NULL)
 * gets the server's HTTP status (101 when upgraded, 0 when there was no answer). */
raw_ws_t *raw_ws_open(uint16_t port, const char *ca, const char *cert, const char *key,
                      const char *subprotocol, unsigned timeout_ms, int *http);

/* One frame: opcode (2 binary, 8 close, 9 ping, 10 pong), masked or not, RSV bits (0..7,
 * put in bits 4..6 of the first byte). Returns 0, -1, or -2 when the peer did not read it
 * within the timeout. */
int raw_ws_send_frame(raw_ws_t *w, int opcode, const void *data, size_t len, bool masked, int rsv);

/* An envelope as one masked binary frame. Returns 0 or -1. */
int raw_ws_send_env(raw_ws_t *w, dfnet_envelope_t *env);

/* The next frame: its opcode, the payload in a malloc'd *data (caller frees; may be NULL
 * when len is 0). Returns the opcode, -1 on EOF or error, -2 on timeout. */
int raw_ws_read_frame(raw_ws_t *w, uint8_t **data, size_t *len);

/* The next envelope: answers pings, skips pongs. Returns 0, -1 (closed: *close_code gets
 * the close frame's code when there was one, else 0; may be NULL), -2 (timeout), -3 (an
 * envelope that did not decode). env->bulk is not valid after the call (members are). */
int raw_ws_read_env(raw_ws_t *w, dfnet_envelope_t *env, int *close_code);

void raw_ws_close(raw_ws_t *w);

#endif
