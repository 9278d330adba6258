#include "echo_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_open(void *user, const dfnet_session_info_t *info) {
  echo_server_t *es = user;
  snprintf(es->last_peer, sizeof(es->last_peer), "%s", info->peer_name);
  snprintf(es->last_role, sizeof(es->last_role), "%s", info->role_name);
  es->last_session = info->id;
  if (info->tls_resumed)
    es->sessions_resumed++;
  es->sessions_opened++;
}

static void on_envelope(void *user, dfnet_session_id_t session, const dfnet_envelope_t *env) {
  echo_server_t *es = user;
  es->envelopes++;
  if (env->pb.which_msg == dfnet_v1_Envelope_call_tag) {
    if (strcmp(env->pb.msg.call.method, "/silent") == 0)
      return;
    if (strcmp(env->pb.msg.call.method, "/final") == 0) { /* as the manager's final replies */
      (void)dfnet_transport_send(es->t, session, (dfnet_envelope_t *)env, DFNET_SEND_PAST_HWM);
      return;
    }
    if (strcmp(env->pb.msg.call.method, "/stream") == 0) {
      dfnet_envelope_t *r = malloc(sizeof(*r));
      for (int i = 0; i < 6; i++) {
        dfnet_envelope_init(r);
        r->pb.id = env->pb.id;
        r->pb.which_msg = dfnet_v1_Envelope_reply_tag;
        r->pb.msg.reply.end_of_stream = i == 5;
        (void)dfnet_transport_send(es->t, session, r, 0);
      }
      free(r);
      return;
    }
  }
  if (env->pb.which_msg == dfnet_v1_Envelope_cancel_tag)
    return;
  /* Sent back as it is, without a copy (the envelope is 34 KiB): it is the transport's
   * receive envelope, and encoding it only (re)sets its bulk descriptor (envelope.h). */
  dfnet_status_t st = dfnet_transport_send(es->t, session, (dfnet_envelope_t *)env, 0);
  if (st != DFNET_STATUS_OK)
    fprintf(stderr, "echo: send failed: %s\n", dfnet_status_str(st));
}

int echo_server_start(echo_server_t *es, const char *dir, uint16_t port, uint32_t max_message,
                      uint32_t keepalive_ms) {
  char crt[512], key[512], ca[512];
  memset(es, 0, sizeof(*es));
  if (dfnet_transport_create(&es->t) != DFNET_STATUS_OK)
    return -1;
  snprintf(crt, sizeof(crt), "%s/manager.crt", dir);
  snprintf(key, sizeof(key), "%s/manager.key", dir);
  snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
  dfnet_server_config_t cfg = {
      .bind_address = "127.0.0.1",
      .port = port,
      .cert_file = crt,
      .key_file = key,
      .ca_file = ca,
      .limits = {.max_message_bytes = max_message, .keepalive_ms = keepalive_ms},
      .callbacks = {.on_session_open = on_open, .on_envelope = on_envelope},
      .user = es,
  };
  if (dfnet_transport_listen(es->t, &cfg, NULL, &es->port) != DFNET_STATUS_OK ||
      dfnet_transport_start(es->t) != DFNET_STATUS_OK) {
    dfnet_transport_destroy(es->t);
    es->t = NULL;
    return -1;
  }
  return 0;
}

void echo_server_stop(echo_server_t *es) {
  dfnet_transport_destroy(es->t);
  es->t = NULL;
}

#ifdef ECHO_SERVER_MAIN
int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [PORT [MAX_MESSAGE [KEEPALIVE_MS]]]\n", argv[0]);
    return 2;
  }
  static echo_server_t es;
  uint16_t port = argc > 2 ? (uint16_t)strtoul(argv[2], NULL, 10) : 0;
  uint32_t max = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
  uint32_t ka = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 0;
  if (echo_server_start(&es, argv[1], port, max, ka) != 0)
    return 1;
  printf("PORT %u\n", (unsigned)es.port);
  fflush(stdout);
  for (;;)
    pause();
}
#endif
