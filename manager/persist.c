/* dfnet-manager: the manager's durable state besides leases (issue 20 item 7; lease.h
 * "persist.c"; docs/architecture.md "Store"): the store opened at start-up, driver flags
 * (DriverControl DISABLE / ENABLE, kept by URL) and composite node specs (AddCompositeNodeSpec,
 * kept by name as their nanopb encoding). Each change is written through before it is
 * applied and answered; both come back at the next start-up (persist__load), the flags onto
 * the index before any host connects. Before this store, both lived in memory only: there
 * are no older files to import. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "lib/log.h"
#include "manager/lease.h"

dfnet_status_t persist__open(mgr_t *m, char *err, size_t err_size) {
  return store__open(m->cfg.state_dir, &m->store, err, err_size);
}

typedef struct flags_ctx {
  mgr_t *m;
  size_t applied, kept;
} flags_ctx_t;

static dfnet_status_t apply_flags(void *arg, const store_driver_flags_t *f) {
  flags_ctx_t *c = arg;
  driver_t *d = driver_index__find_url(&c->m->index, f->url);
  if (d == NULL) {
    c->kept++; /* a driver not loaded this time: its flags wait for it */
    DFNET_LOGD("persist", f->url, "flags kept for a driver not in the index");
    return DFNET_STATUS_OK;
  }
  d->disabled = f->disabled;
  c->applied++;
  if (f->disabled)
    DFNET_LOGI("persist", f->url, "disabled (as it was before the restart)");
  return DFNET_STATUS_OK;
}

/* Specs are collected first: the walk's statements are in use during the callback, and
 * binder__add_spec does not touch the store, but decoding and adding outside keeps the
 * rule simple. */
typedef struct specs_ctx {
  dfnet_v1_CompositeNodeSpec *specs;
  size_t count, cap;
  size_t bad;
} specs_ctx_t;

static dfnet_status_t collect_spec(void *arg, const store_spec_t *sp) {
  specs_ctx_t *c = arg;
  dfnet_v1_CompositeNodeSpec *specs =
      dfnet_array_grow(c->specs, c->count, &c->cap, sizeof *specs, 8);
  if (specs == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  c->specs = specs;
  dfnet_v1_CompositeNodeSpec *spec = &c->specs[c->count];
  memset(spec, 0, sizeof *spec);
  pb_istream_t is = pb_istream_from_buffer(sp->bytes, sp->size);
  if (!pb_decode(&is, dfnet_v1_CompositeNodeSpec_fields, spec)) {
    DFNET_LOGE("persist", sp->name, "composite node spec left out: it does not decode: %s",
               PB_GET_ERROR(&is));
    c->bad++;
    return DFNET_STATUS_OK;
  }
  c->count++;
  return DFNET_STATUS_OK;
}

dfnet_status_t persist__load(mgr_t *m, char *err, size_t err_size) {
  flags_ctx_t fc = {m, 0, 0};
  dfnet_status_t st = store__driver_flags_load(m->store, apply_flags, &fc, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  specs_ctx_t sc = {0};
  st = store__spec_load(m->store, collect_spec, &sc, err, err_size);
  if (st == DFNET_STATUS_RESOURCE_EXHAUSTED && err != NULL && err[0] == '\0')
    topology__fmt(err, err_size, "out of memory loading the composite node specs");
  size_t added = 0;
  for (size_t i = 0; st == DFNET_STATUS_OK && i < sc.count; i++) {
    char why[400];
    if (binder__add_spec(m, &sc.specs[i], why, sizeof why) == DFNET_STATUS_OK)
      added++;
    else
      DFNET_LOGE("persist", sc.specs[i].name, "composite node spec left out: %s", why);
  }
  free(sc.specs);
  if (st == DFNET_STATUS_OK && (fc.applied + fc.kept + added + sc.bad) > 0)
    DFNET_LOGI("persist", NULL, "driver flags: %zu applied, %zu kept; composite node specs: %zu",
               fc.applied, fc.kept, added);
  return st;
}

dfnet_status_t persist__driver_flags(mgr_t *m, const driver_t *d, bool disabled, char *err,
                                     size_t err_size) {
  store_driver_flags_t f = {.url = d->url, .disabled = disabled};
  return store__driver_flags_put(m->store, &f, err, err_size);
}

dfnet_status_t persist__driver_forget(mgr_t *m, const driver_t *d, char *err, size_t err_size) {
  dfnet_status_t st = store__driver_flags_delete(m->store, d->url, err, err_size);
  return st == DFNET_STATUS_NOT_FOUND ? DFNET_STATUS_OK : st;
}

dfnet_status_t persist__spec_add(mgr_t *m, const dfnet_v1_CompositeNodeSpec *spec, char *err,
                                 size_t err_size) {
  dfnet_status_t st = binder__spec_admissible(m, spec, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  uint8_t *buf = malloc(STORE_SPEC_SIZE_MAX);
  if (buf == NULL) {
    topology__fmt(err, err_size, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  pb_ostream_t os = pb_ostream_from_buffer(buf, STORE_SPEC_SIZE_MAX);
  if (!pb_encode(&os, dfnet_v1_CompositeNodeSpec_fields, spec)) {
    topology__fmt(err, err_size, "composite node spec %s does not encode: %s", spec->name,
                  PB_GET_ERROR(&os));
    free(buf);
    return DFNET_STATUS_INTERNAL;
  }
  store_spec_t sp = {.name = spec->name, .bytes = buf, .size = os.bytes_written};
  st = store__spec_put(m->store, &sp, err, err_size);
  free(buf);
  if (st != DFNET_STATUS_OK)
    return st;
  st = binder__add_spec(m, spec, err, err_size);
  if (st != DFNET_STATUS_OK) {
    char undo[600];
    if (store__spec_delete(m->store, spec->name, undo, sizeof undo) != DFNET_STATUS_OK)
      DFNET_LOGE("persist", spec->name, "composite node spec not removed again: %s", undo);
  }
  return st;
}
