/* dfnet-manager: PackageUpload from an admin client: register a driver at run time
 * (issue 5 "Driver index"; docs/spec/dfv2.md "Driver index policy" 4 and 5). One request per
 * chunk, in order, each answered with Status; the answer to the last chunk says whether
 * the package verified (SHA-256), loaded (manifest, bytecode) and registered ("registered
 * URL"). Then every unbound node is matched again. The very package of a registered driver
 * (same SHA-256, same name) is answered OK "already registered URL" and changes nothing;
 * another package whose URL is taken is ALREADY_EXISTS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

static void upload_reset(mgr_upload_t *u) {
  free(u->data);
  memset(u, 0, sizeof *u);
}

static dfnet_status_t upload_begin(mgr_upload_t *u, const dfnet_v1_PackageUpload *p, char *err,
                                   size_t err_size) {
  upload_reset(u);
  if (!dfnet_package_name_valid(p->name)) {
    topology__fmt(err, err_size, "package name '%s' is not 1..63 of [A-Za-z0-9_-]", p->name);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (p->total_size == 0 || p->total_size > MGR_UPLOAD_MAX) {
    topology__fmt(err, err_size, "total_size %llu not in 1..%u", (unsigned long long)p->total_size,
                  MGR_UPLOAD_MAX);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  u->data = malloc((size_t)p->total_size);
  if (u->data == NULL) {
    topology__fmt(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  u->active = true;
  u->total = p->total_size;
  memcpy(u->digest, p->digest, sizeof u->digest);
  topology__fmt(u->name, sizeof u->name, "%s", p->name);
  return DFNET_STATUS_OK;
}

/* The last chunk has come: verify, load and register the package. OK (msg says what
 * happened; *added is the driver when it is new in the index, else NULL), or the status
 * that refused it with msg saying why. */
static dfnet_status_t upload_finish(mgr_t *m, mgr_upload_t *u, driver_t **added, char *msg,
                                    size_t msg_size) {
  *added = NULL;
  if (dfnet_package_verify(u->data, u->size, u->digest) != DFNET_STATUS_OK) {
    topology__fmt(msg, msg_size, "SHA-256 of the %zu bytes received does not match the digest",
                  u->size);
    return DFNET_STATUS_DATA_LOSS;
  }
  driver_t *d = driver_index__find_registered(&m->index, u->digest);
  if (d != NULL && strcmp(d->name, u->name) == 0) {
    /* the very same package: registering is idempotent (provisioning scripts re-run);
     * the store is written again in case it refused the first time */
    if (package_store__put(m, u->data, u->size, u->digest) == DFNET_STATUS_OK)
      package_store__remember(m, u->name, u->digest);
    topology__fmt(msg, msg_size, "already registered %s", d->url);
    DFNET_LOGI("index", d->url, "registered again: the same package (SHA-256), nothing changed");
    return DFNET_STATUS_OK;
  }
  dfnet_status_t st = driver_index__add_package(&m->index, u->name, u->data, u->size,
                                                DRIVER_REGISTERED, &d, msg, msg_size);
  if (st != DFNET_STATUS_OK)
    return st;
  *added = d;
  st = package_store__put(m, u->data, u->size, u->digest);
  if (st == DFNET_STATUS_OK)
    st = package_store__remember(m, u->name, u->digest);
  if (st != DFNET_STATUS_OK) {
    topology__fmt(msg, msg_size, "%s registered for this run only: the state dir refused it (%s)",
                  d->url, dfnet_status_str(st));
    return DFNET_STATUS_OK;
  }
  topology__fmt(msg, msg_size, "registered %s", d->url);
  DFNET_LOGI("index", d->url, "registered (%zu bytes)", u->size);
  streams__event(m, dfnet_v1_WatchEvent_Kind_DRIVER_REGISTERED, d->url, NULL, DFNET_STATUS_OK);
  return DFNET_STATUS_OK;
}

void handle__package_upload(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_PackageUpload *p = &env->pb.msg.package_upload;
  mgr_upload_t *u = &s->upload;
  uint64_t id = env->pb.id;
  char msg[600] = "";
  dfnet_status_t st = DFNET_STATUS_OK;
  if (p->offset == 0) {
    st = upload_begin(u, p, msg, sizeof msg);
  } else if (!u->active || memcmp(u->digest, p->digest, sizeof u->digest) != 0 ||
             p->offset != u->size || p->total_size != u->total) {
    topology__fmt(msg, sizeof msg,
                  "chunk at offset %llu does not continue an upload (expected %zu)",
                  (unsigned long long)p->offset, u->active ? u->size : 0);
    st = DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (st == DFNET_STATUS_OK && u->size + env->bulk.size > u->total) {
    topology__fmt(msg, sizeof msg, "chunk runs past total_size %llu", (unsigned long long)u->total);
    st = DFNET_STATUS_OUT_OF_RANGE;
  }
  if (st != DFNET_STATUS_OK) {
    DFNET_LOGW("index", s->name, "upload refused: %s", msg);
    upload_reset(u);
    sessions__reply_status(m, s->id, id, st, "%s", msg);
    return;
  }
  if (env->bulk.size > 0)
    memcpy(u->data + u->size, env->bulk.data, env->bulk.size);
  u->size += env->bulk.size;
  if (u->size < u->total) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_OK, "%zu of %llu bytes", u->size,
                           (unsigned long long)u->total);
    return;
  }
  driver_t *registered;
  st = upload_finish(m, u, &registered, msg, sizeof msg);
  upload_reset(u);
  if (st != DFNET_STATUS_OK)
    DFNET_LOGW("index", s->name, "package refused: %s", msg);
  sessions__reply_status(m, s->id, id, st, "%s", msg);
  if (st == DFNET_STATUS_OK)
    binder__bind_all_unbound(m);
  if (st == DFNET_STATUS_OK && registered != NULL) {
    char why[400];
    topology__fmt(why, sizeof why, "driver %s registered by %s", registered->url, s->name);
    control__reclaim_from_fallbacks(m, registered, why, NULL);
  }
}
