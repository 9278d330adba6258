/* The test peer: a dfnet transport server that echoes envelopes back (same id, same bulk).
 * A Call whose method is "/silent" is never answered; "/final" is echoed past the send
 * queue's high-water mark (DFNET_SEND_PAST_HWM, as final replies are); "/stream" with five
 * Replies and a sixth with end_of_stream. Used in-process and as a child process
 * (transport_echo_server DIR [PORT [MAX_MESSAGE]]: prints "PORT <n>" then serves). */
#ifndef DFNET_TESTS_ECHO_SERVER_H
#define DFNET_TESTS_ECHO_SERVER_H

#include <stdint.h>

#include "lib/transport.h"

typedef struct echo_server {
  dfnet_transport_t *t;
  uint16_t port;
  _Atomic unsigned sessions_opened;
  _Atomic unsigned sessions_resumed; /* of those, how many resumed a TLS session */
  _Atomic unsigned envelopes;
  _Atomic dfnet_session_id_t last_session; /* the session last opened */
  char last_peer[80];
  char last_role[80];
} echo_server_t;

/* Start on 127.0.0.1:port (0 = ephemeral) with the certificates of `dir`, serviced on
 * its own thread. Returns 0 or -1. */
int echo_server_start(echo_server_t *es, const char *dir, uint16_t port, uint32_t max_message,
                      uint32_t keepalive_ms);
void echo_server_stop(echo_server_t *es);

#endif
