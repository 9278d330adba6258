/* Renewing a certificate over an authenticated session (lib/renewer.h; issue 23 item 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/enroll.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "lib/renewer.h"

#define SUB "renew"
#define RENEW_DEADLINE_MS 30000u

struct dfnet_renewer {
  dfnet_transport_t *t;
  dfnet_endpoint_id_t endpoint;
  char *cert_file, *key_file, *subject;
  dfnet_session_id_t session; /* the welcomed session the timer will use */
  dfnet_timer_id_t timer;     /* at 2/3 of the lifetime; 0: none */
  bool in_flight;             /* a CertRenew waits for its answer */
  bool refused;               /* refused: logged once, not asked again */
  dfnet_pki_key_t *key;       /* the new key of the CertRenew in flight */
};

/* The certificate file's name and validity window (UTC seconds). */
static bool cert_read(const char *path, dfnet_pki_cert_info_t *info) {
  dfnet_pki_cert_t *c = NULL;
  bool ok = dfnet_pki_cert_load(path, &c) == DFNET_STATUS_OK &&
            dfnet_pki_cert_info(c, info) == DFNET_STATUS_OK;
  dfnet_pki_cert_free(c);
  return ok;
}

/* Write the new key and certificate over the files. */
static dfnet_status_t write_files(const dfnet_renewer_t *r, const dfnet_pki_key_t *key,
                                  const char *pem, char *why, size_t why_size) {
  if (strcmp(r->cert_file, r->key_file) != 0)
    return dfnet_enroll_write(key, pem, NULL, r->key_file, r->cert_file, NULL, why, why_size);
  dfnet_pki_cert_t *c = NULL; /* one PEM file holding both */
  dfnet_status_t st = dfnet_pki_cert_parse((const uint8_t *)pem, strlen(pem), &c);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_pem_write(c, key, r->cert_file);
  dfnet_pki_cert_free(c);
  snprintf(why, why_size, "cannot write %s", r->cert_file);
  return st;
}

/* The manager's certificate: written, loaded for the next connection, the next renewal
 * scheduled. */
static void renewed(dfnet_renewer_t *r, const dfnet_v1_CertRenewResult *res,
                    const dfnet_pki_key_t *key) {
  char why[600];
  dfnet_status_t st = write_files(r, key, res->certificate_pem, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGE(SUB, r->subject, "certificate %s renewed, but %s: %s", res->serial, why,
               dfnet_status_str(st));
    return;
  }
  (void)dfnet_transport_client_reload_identity(r->t, r->endpoint); /* logs a failure */
  char until[40] = "?";
  time_t na = (time_t)(res->not_after_ms / 1000u);
  struct tm tm;
  if (gmtime_r(&na, &tm) != NULL)
    strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
  DFNET_LOGI(SUB, r->subject,
             "certificate renewed: %s, valid until %s, written to %s (key %s); presented from "
             "the next connection on",
             res->serial, until, r->cert_file, r->key_file);
  dfnet_renewer_welcomed(r, r->session);
}

/* The CertRenew's answer (service thread). */
static void on_reply(void *user, dfnet_status_t status, const dfnet_envelope_t *reply, bool last) {
  dfnet_renewer_t *r = user;
  (void)last;
  dfnet_pki_key_t *key = r->key;
  r->key = NULL;
  r->in_flight = false;
  if (status == DFNET_STATUS_OK && reply->pb.which_msg == dfnet_v1_Envelope_cert_renew_result_tag) {
    renewed(r, &reply->pb.msg.cert_renew_result, key);
  } else if (status == DFNET_STATUS_OK) { /* the manager's refusal: once */
    r->refused = true;
    bool is_status = reply->pb.which_msg == dfnet_v1_Envelope_status_tag;
    DFNET_LOGW(SUB, r->subject, "certificate renewal refused: %s: %s; %s is kept until it expires",
               is_status ? dfnet_status_str((dfnet_status_t)reply->pb.msg.status.code) : "INTERNAL",
               is_status ? reply->pb.msg.status.message : "unexpected answer", r->cert_file);
  } else {
    DFNET_LOGD(SUB, r->subject, "certificate renewal not answered (%s): at the next session",
               dfnet_status_str(status));
  }
  dfnet_pki_key_free(key);
}

/* The renewal's time came: a new key, its CSR, a CertRenew on the session. */
static void due(void *user) {
  dfnet_renewer_t *r = user;
  dfnet_pki_cert_info_t info;
  r->timer = 0;
  if (r->session == 0 || r->in_flight || r->refused || !cert_read(r->cert_file, &info))
    return;
  dfnet_envelope_t *env = calloc(1, sizeof *env);
  if (env == NULL)
    return;
  dfnet_envelope_init(env);
  env->pb.which_msg = dfnet_v1_Envelope_cert_renew_tag;
  dfnet_status_t st = dfnet_renew_csr(info.cn, &r->key, &env->pb.msg.cert_renew);
  dfnet_request_opts_t o = {.deadline_ms = RENEW_DEADLINE_MS, .on_reply = on_reply, .user = r};
  if (st == DFNET_STATUS_OK)
    st = dfnet_transport_request(r->t, r->session, env, &o, 0, NULL);
  free(env);
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW(SUB, r->subject, "certificate renewal not sent: %s", dfnet_status_str(st));
    dfnet_pki_key_free(r->key);
    r->key = NULL;
    return;
  }
  r->in_flight = true;
  DFNET_LOGI(SUB, r->subject, "renewing the certificate of %s (a new key)", info.cn);
}

void dfnet_renewer_welcomed(dfnet_renewer_t *r, dfnet_session_id_t session) {
  if (r == NULL)
    return;
  r->session = session;
  if (r->timer != 0)
    (void)dfnet_transport_timer_cancel(r->t, r->timer);
  r->timer = 0;
  dfnet_pki_cert_info_t info;
  if (r->refused || r->in_flight || !cert_read(r->cert_file, &info))
    return;
  uint64_t delay = dfnet_renew_delay_ms((int64_t)info.not_before, (int64_t)info.not_after,
                                        (int64_t)time(NULL), (double)rand() / RAND_MAX);
  if (delay > UINT32_MAX)
    delay = UINT32_MAX; /* ~49 days: scheduled again at the next Welcome anyway */
  if (dfnet_transport_timer_start(r->t, (uint32_t)delay, due, r, &r->timer) == DFNET_STATUS_OK)
    DFNET_LOGD(SUB, r->subject, "certificate renewal in %llu ms", (unsigned long long)delay);
}

dfnet_status_t dfnet_renewer_new(const dfnet_renewer_config_t *cfg, dfnet_renewer_t **out) {
  if (cfg == NULL || out == NULL || cfg->t == NULL || cfg->cert_file == NULL ||
      cfg->key_file == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_renewer_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return DFNET_STATUS_INTERNAL;
  r->t = cfg->t;
  r->endpoint = cfg->endpoint;
  r->cert_file = strdup(cfg->cert_file);
  r->key_file = strdup(cfg->key_file);
  r->subject = strdup(cfg->subject ? cfg->subject : "");
  if (r->cert_file == NULL || r->key_file == NULL || r->subject == NULL) {
    dfnet_renewer_free(r);
    return DFNET_STATUS_INTERNAL;
  }
  *out = r;
  return DFNET_STATUS_OK;
}

void dfnet_renewer_free(dfnet_renewer_t *r) {
  if (r == NULL)
    return;
  dfnet_pki_key_free(r->key);
  free(r->cert_file);
  free(r->key_file);
  free(r->subject);
  free(r);
}
