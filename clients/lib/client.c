/* libdfnet-client: the client — connect, close, info — and its session with the manager:
 * Hello/Welcome over lib/transport.h, connection failures kept for the callers waiting for
 * a session, reconnects done by the transport (include/dfnet/client.h "Model").
 *
 * The transport's callbacks here run on the client thread; they update the client's session
 * state under c->mu and wake the callers waiting in client__session. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/lib/client_internal.h"
#include "lib/log.h"
#include "lib/renewer.h"
#include "lib/role.h"
#include "lib/version.h"

#define SUB "client"
#define DEFAULT_CONNECT_TIMEOUT_MS 10000u

/* ---- the session -------------------------------------------------------------------- */

static void hello_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                        bool last);

/* A session opened: say Hello; the Welcome (hello_reply) makes it ours. */
static void on_session_open(void *user, const dfnet_session_info_t *info) {
  dfnet_client_t *c = user;
  dfnet_envelope_t *env = malloc(sizeof *env);
  if (env == NULL) {
    dfnet_transport_session_close(c->t, info->id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_hello_tag;
  env->pb.msg.hello.protocol_version = DFNET_PROTOCOL_VERSION;
  env->pb.msg.hello.role = dfnet_v1_Role_ROLE_UNSPECIFIED; /* the certificate says */
  snprintf(env->pb.msg.hello.software_version, sizeof env->pb.msg.hello.software_version, "%s",
           dfnet_version_software());
  dfnet_request_opts_t opts = {
      .deadline_ms = c->connect_timeout_ms, .on_reply = hello_reply, .user = c};
  pthread_mutex_lock(&c->mu);
  c->hello_status = DFNET_STATUS_OK;
  c->hello_message[0] = '\0';
  c->connect_status = DFNET_STATUS_OK;
  pthread_mutex_unlock(&c->mu);
  dfnet_status_t st = dfnet_transport_request(c->t, info->id, env, &opts, 0, NULL);
  free(env);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW(SUB, info->peer_name, "Hello not sent: %s", dfnet_status_str(st));
}

static void hello_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply,
                        bool last) {
  dfnet_client_t *c = user;
  (void)last;
  struct dfnet_renewer *renewer = NULL;
  dfnet_session_id_t welcomed = 0;
  pthread_mutex_lock(&c->mu);
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_welcome_tag) {
    const dfnet_v1_Welcome *w = &reply->pb.msg.welcome;
    const dfnet_role_t *role = dfnet_role_by_wire(w->role); /* a client role, or "none" */
    snprintf(c->info.role, sizeof c->info.role, "%s",
             role != NULL && role->client_rank > 0 ? role->name : "none");
    snprintf(c->info.name, sizeof c->info.name, "%s", w->name);
    snprintf(c->info.server_name, sizeof c->info.server_name, "%s", w->server_name);
    c->info.session_id = w->session_id;
    /* The session the Welcome came on is the one the transport has now. */
    c->session = dfnet_transport_client_session(c->t, c->endpoint);
    c->hello_status = DFNET_STATUS_OK;
    renewer = c->renewer;
    welcomed = c->session;
  } else if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_status_tag) {
    c->hello_status = (dfnet_status_t)reply->pb.msg.status.code;
    if (c->hello_status == DFNET_STATUS_OK)
      c->hello_status = DFNET_STATUS_UNKNOWN;
    snprintf(c->hello_message, sizeof c->hello_message, "%s", reply->pb.msg.status.message);
  } else {
    c->hello_status = status == DFNET_STATUS_OK ? DFNET_STATUS_INTERNAL : status;
    snprintf(c->hello_message, sizeof c->hello_message, "no Welcome from the manager (%s)",
             status == DFNET_STATUS_OK ? dfnet_envelope_msg_name(reply->pb.which_msg)
                                       : dfnet_status_str(status));
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (renewer != NULL) /* dfnet_client_renew_enable: renew on this session (cert_renewal.c) */
    dfnet_renewer_welcomed(renewer, welcomed);
}

static void on_session_closed(void *user, dfnet_session_id_t sid, dfnet_status_t reason,
                              const char *message) {
  dfnet_client_t *c = user;
  client__session_gone(c, sid);
  DFNET_LOGD(SUB, NULL, "session %llu closed: %s %s", (unsigned long long)sid,
             dfnet_status_str(reason), message ? message : "");
}

/* An attempt to connect failed: remember why for the callers waiting for a session. */
static void on_connect_error(void *user, dfnet_status_t code, const char *message,
                             bool retry_helps) {
  dfnet_client_t *c = user;
  pthread_mutex_lock(&c->mu);
  c->connect_status = code;
  c->connect_retry_helps = retry_helps;
  snprintf(c->connect_message, sizeof c->connect_message, "%s", message);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void client__session_gone(dfnet_client_t *c, dfnet_session_id_t sid) {
  pthread_mutex_lock(&c->mu);
  if (c->session == sid)
    c->session = 0;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

dfnet_status_t client__session(dfnet_client_t *c, uint32_t timeout_ms, dfnet_session_id_t *sid,
                               dfnet_client_error_t *err) {
  if (dfnet_transport_on_service_thread(c->t))
    return client__fail(err, DFNET_STATUS_FAILED_PRECONDITION,
                        "a blocking dfnet_client function was called from a callback");
  unsigned ms = timeout_ms ? timeout_ms : c->connect_timeout_ms;
  struct timespec until;
  client__deadline(&until, ms);
  dfnet_status_t st = DFNET_STATUS_OK;
  pthread_mutex_lock(&c->mu);
  while (c->session == 0) {
    if (c->closing) {
      st = client__fail(err, DFNET_STATUS_CANCELLED, "the client is closing");
      break;
    }
    if (c->hello_status != DFNET_STATUS_OK) {
      st = client__fail(err, c->hello_status, "the manager refused the session: %s",
                        c->hello_message);
      break;
    }
    if (c->connect_status != DFNET_STATUS_OK && !c->connect_retry_helps) {
      st = client__fail(err, c->connect_status, "cannot connect to %s: %s", c->url,
                        c->connect_message);
      break;
    }
    if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT && c->session == 0) {
      if (c->connect_status != DFNET_STATUS_OK)
        st = client__fail(err, DFNET_STATUS_UNAVAILABLE,
                          "cannot connect to %s: %s (still failing after %u ms)", c->url,
                          c->connect_message, ms);
      else
        st = client__fail(err, DFNET_STATUS_UNAVAILABLE,
                          "not connected to %s (no session within %u ms)", c->url, ms);
      break;
    }
  }
  *sid = c->session;
  pthread_mutex_unlock(&c->mu);
  return st;
}

/* ---- the client --------------------------------------------------------------------- */

static dfnet_status_t check_options(const dfnet_client_options_t *opts, dfnet_client_error_t *err) {
  if (opts == NULL || opts->url == NULL || opts->cert_file == NULL || opts->key_file == NULL ||
      opts->ca_file == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "url, cert_file, key_file and ca_file are required");
  if (strncmp(opts->url, "wss://", 6) != 0)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT,
                        "manager URL '%s' is not wss://host:port", opts->url);
  return DFNET_STATUS_OK;
}

/* The transport's endpoint for opts: the manager's URL, our files, the callbacks above. */
static dfnet_status_t add_endpoint(dfnet_client_t *c, const dfnet_client_options_t *opts,
                                   dfnet_client_error_t *err) {
  dfnet_client_config_t cfg = {
      .url = opts->url,
      .subprotocol = DFNET_SUBPROTOCOL_CLIENT,
      .cert_file = opts->cert_file,
      .key_file = opts->key_file,
      .ca_file = opts->ca_file,
      .server_name = opts->server_name,
      .callbacks = {.on_session_open = on_session_open,
                    .on_envelope = client__op_unsolicited,
                    .on_session_closed = on_session_closed,
                    .on_connect_error = on_connect_error},
      .user = c,
      /* The peer is the manager, a relay, and three more hops follow: the calls a turn
       * starts (callbacks starting the next ones) go out in halves of 16, not quarters
       * (rpc_bench, 16 in flight: +6% calls/s, -15% client CPU per call). */
      .limits = {.batch_messages = 8},
  };
  c->cert_file = strdup(opts->cert_file); /* for dfnet_client_renew_enable */
  c->key_file = strdup(opts->key_file);
  if (c->cert_file == NULL || c->key_file == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  dfnet_status_t st = dfnet_transport_connect(c->t, &cfg, &c->endpoint);
  if (st != DFNET_STATUS_OK)
    client__fail(err, st, "cannot connect to %s with cert %s, key %s, CA %s: %s", opts->url,
                 opts->cert_file, opts->key_file, opts->ca_file,
                 st == DFNET_STATUS_NOT_FOUND ? "a file is missing" : "bad URL or options");
  return st;
}

dfnet_status_t dfnet_client_connect(const dfnet_client_options_t *opts, dfnet_client_t **out,
                                    dfnet_client_error_t *err) {
  client__error_ok(err);
  if (out == NULL)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  dfnet_status_t st = check_options(opts, err);
  if (st != DFNET_STATUS_OK)
    return st;
  dfnet_client_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return client__fail(err, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  pthread_mutex_init(&c->mu, NULL);
  client__cond_init(&c->cv);
  c->connect_timeout_ms =
      opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
  client__log_configure(opts);
  snprintf(c->url, sizeof c->url, "%s", opts->url);
  st = client__lease_init(c, err);
  if (st != DFNET_STATUS_OK)
    goto close_client;
  st = dfnet_transport_create(&c->t);
  if (st != DFNET_STATUS_OK) {
    client__fail(err, st, "cannot create the transport");
    goto close_client;
  }
  st = add_endpoint(c, opts, err);
  if (st != DFNET_STATUS_OK)
    goto close_client;
  st = dfnet_transport_start(c->t);
  if (st != DFNET_STATUS_OK) {
    client__fail(err, st, "cannot start the client thread");
    goto close_client;
  }
  dfnet_session_id_t sid;
  st = client__session(c, 0, &sid, err);
  if (st != DFNET_STATUS_OK)
    goto close_client;
  *out = c;
  return DFNET_STATUS_OK;

close_client:
  dfnet_client_close(c); /* c->t may still be NULL: dfnet_transport_destroy allows it */
  return st;
}

void dfnet_client_close(dfnet_client_t *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  c->closing = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  /* Fails every request in flight with CANCELLED: each op's final callback runs. */
  dfnet_transport_destroy(c->t);
  client__leases_free(c);         /* renewals end here; the leases stay the manager's */
  dfnet_renewer_free(c->renewer); /* after the transport: its CertRenew in flight ended */
  free(c->cert_file);
  free(c->key_file);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

dfnet_status_t dfnet_client_info(dfnet_client_t *c, dfnet_client_info_t *out) {
  if (c == NULL || out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  dfnet_status_t st = c->session ? DFNET_STATUS_OK : DFNET_STATUS_UNAVAILABLE;
  if (st == DFNET_STATUS_OK)
    *out = c->info;
  pthread_mutex_unlock(&c->mu);
  return st;
}
