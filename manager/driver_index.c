/* dfnet-manager: the driver index (driver_index.h). */
#include "lib/array.h"
#include "manager/driver_index.h"
#include "manager/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define BYTECODE_MAX (1024u * 1024u)
#define MANIFEST_MAX (64u * 1024u)

void driver_index__init(driver_index_t *idx) { memset(idx, 0, sizeof *idx); }

void driver_index__manifest_free(driver_manifest_t *m) {
  free(m->binary);
  free(m->bind);
  for (size_t i = 0; i < m->dispatcher_opt_count; i++)
    free(m->dispatcher_opts[i]);
  for (size_t i = 0; i < m->category_count; i++) {
    free(m->categories[i][0]);
    free(m->categories[i][1]);
  }
  for (size_t i = 0; i < m->read_only_method_count; i++)
    free(m->read_only_methods[i]);
  free(m->program_json);
  memset(m, 0, sizeof *m);
}

static void driver_free(driver_t *d) {
  driver_index__manifest_free(&d->m);
  dfnet_bind_program_destroy(d->program);
  free(d->name);
  free(d->url);
  free(d);
}

void driver_index__destroy(driver_index_t *idx) {
  HASH_CLEAR(hh, idx->by_url);
  for (size_t i = 0; i < idx->count; i++)
    if (idx->drivers[i] != NULL)
      driver_free(idx->drivers[i]);
  free(idx->drivers);
  memset(idx, 0, sizeof *idx);
}

/* ---- manifest ----------------------------------------------------------------------- */

/* A "true"/"false" string field (the manifest's convention); a JSON bool is accepted too.
 * Absent = false. */
static bool get_flag(const cJSON *program, const char *field, bool *out, const char *file,
                     char *err, size_t err_size) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(program, field);
  *out = false;
  if (v == NULL)
    return true;
  if (cJSON_IsBool(v)) {
    *out = cJSON_IsTrue(v);
    return true;
  }
  if (cJSON_IsString(v) &&
      (strcmp(v->valuestring, "true") == 0 || strcmp(v->valuestring, "false") == 0)) {
    *out = strcmp(v->valuestring, "true") == 0;
    return true;
  }
  snprintf(err, err_size, "%s: program.%s: must be \"true\" or \"false\"", file, field);
  return false;
}

/* A required relative path inside the package. */
static bool get_path(const cJSON *program, const char *field, char **out, const char *file,
                     char *err, size_t err_size) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(program, field);
  if (v == NULL) {
    snprintf(err, err_size, "%s: program.%s: required field missing", file, field);
    return false;
  }
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || v->valuestring[0] == '/' ||
      strstr(v->valuestring, "..") != NULL || strlen(v->valuestring) > DFNET_PACKAGE_PATH_MAX) {
    snprintf(err, err_size, "%s: program.%s: must be a relative path inside the package", file,
             field);
    return false;
  }
  *out = strdup(v->valuestring);
  return *out != NULL;
}

/* An optional array of at most `max` `items` ("strings"): *out is NULL when absent. */
static bool get_array(const cJSON *program, const char *field, int max, const char *items,
                      const cJSON **out, const char *file, char *err, size_t err_size) {
  *out = cJSON_GetObjectItemCaseSensitive(program, field);
  if (*out == NULL || (cJSON_IsArray(*out) && cJSON_GetArraySize(*out) <= max))
    return true;
  snprintf(err, err_size, "%s: program.%s: must be an array of at most %d %s", file, field, max,
           items);
  return false;
}

static bool get_opts(const cJSON *program, driver_manifest_t *m, const char *file, char *err,
                     size_t err_size) {
  const cJSON *v;
  if (!get_array(program, "default_dispatcher_opts", DRIVER_OPTS_MAX, "strings", &v, file, err,
                 err_size))
    return false;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    if (!cJSON_IsString(e) || strcmp(e->valuestring, "allow_sync_calls") != 0) {
      snprintf(err, err_size,
               "%s: program.default_dispatcher_opts: unknown option (known: "
               "\"allow_sync_calls\")",
               file);
      return false;
    }
    m->dispatcher_opts[m->dispatcher_opt_count] = strdup(e->valuestring);
    if (m->dispatcher_opts[m->dispatcher_opt_count++] == NULL)
      return false;
  }
  return true;
}

static bool get_categories(const cJSON *program, driver_manifest_t *m, const char *file, char *err,
                           size_t err_size) {
  const cJSON *v;
  if (!get_array(program, "device_categories", DRIVER_CATEGORIES_MAX, "objects", &v, file, err,
                 err_size))
    return false;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "category");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "subcategory");
    if (!cJSON_IsObject(e) || !cJSON_IsString(c) || strlen(c->valuestring) > 63 ||
        (s != NULL && (!cJSON_IsString(s) || strlen(s->valuestring) > 63))) {
      snprintf(err, err_size,
               "%s: program.device_categories: each entry needs a string \"category\" and "
               "an optional string \"subcategory\" (at most 63 bytes)",
               file);
      return false;
    }
    size_t i = m->category_count++;
    m->categories[i][0] = strdup(c->valuestring);
    m->categories[i][1] = strdup(s ? s->valuestring : "");
    if (m->categories[i][0] == NULL || m->categories[i][1] == NULL)
      return false;
  }
  return true;
}

/* "read_only_methods": full method paths ("/dfnet.hw.serial.Serial/Subscribe"), each
 * 2..DRIVER_METHOD_PATH_MAX bytes, a '/' first and another after it. Absent = none. */
static bool get_read_only_methods(const cJSON *program, driver_manifest_t *m, const char *file,
                                  char *err, size_t err_size) {
  const cJSON *v;
  if (!get_array(program, "read_only_methods", DRIVER_READ_ONLY_METHODS_MAX, "strings", &v, file,
                 err, err_size))
    return false;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    size_t len = cJSON_IsString(e) ? strlen(e->valuestring) : 0;
    if (len < 2 || len > DRIVER_METHOD_PATH_MAX || e->valuestring[0] != '/' ||
        strchr(e->valuestring + 1, '/') == NULL) {
      snprintf(err, err_size,
               "%s: program.read_only_methods: each entry must be a full method path "
               "(\"/<protocol>/<method>\", 2..%d bytes)",
               file, DRIVER_METHOD_PATH_MAX);
      return false;
    }
    m->read_only_methods[m->read_only_method_count] = strdup(e->valuestring);
    if (m->read_only_methods[m->read_only_method_count++] == NULL)
      return false;
  }
  return true;
}

bool driver_index__method_read_only(const driver_t *d, const char *method) {
  for (size_t i = 0; i < d->m.read_only_method_count; i++)
    if (strcmp(d->m.read_only_methods[i], method) == 0)
      return true;
  return false;
}

/* "start_timeout_ms": milliseconds, 1..DRIVER_START_TIMEOUT_MAX_MS, a JSON integer or a
 * string of digits (the manifest writes flags as strings). Absent = 0 (the default). */
static bool get_start_timeout(const cJSON *program, uint32_t *out, const char *file, char *err,
                              size_t err_size) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(program, "start_timeout_ms");
  *out = 0;
  if (v == NULL)
    return true;
  double ms = -1;
  if (cJSON_IsNumber(v)) {
    ms = v->valuedouble;
  } else if (cJSON_IsString(v) && v->valuestring[0] != '\0' &&
             strspn(v->valuestring, "0123456789") == strlen(v->valuestring) &&
             strlen(v->valuestring) <= 7) {
    ms = strtod(v->valuestring, NULL);
  }
  if (ms < 1 || ms > DRIVER_START_TIMEOUT_MAX_MS || ms != (double)(uint32_t)ms) {
    snprintf(err, err_size,
             "%s: program.start_timeout_ms: must be a whole number of milliseconds from 1 to %u",
             file, DRIVER_START_TIMEOUT_MAX_MS);
    return false;
  }
  *out = (uint32_t)ms;
  return true;
}

/* The program block's fields. "config" is the driver's own settings (an object handed to
 * the driver untouched, as the whole program block is); any other field is a typo. */
static const char *const known_fields[] = {
    "runner",
    "binary",
    "bind",
    "colocate",
    "fallback",
    "default_dispatcher_opts",
    "host_restart_on_crash",
    "device_categories",
    "config",
    "start_timeout_ms",
    "read_only_methods",
    "resources",
    "rights",
    "limits",
    NULL,
};

static bool check_fields(const cJSON *program, const char *file, char *err, size_t err_size) {
  const cJSON *e;
  cJSON_ArrayForEach(e, program) {
    bool known = false;
    for (size_t i = 0; known_fields[i] && !known; i++)
      known = strcmp(e->string, known_fields[i]) == 0;
    if (!known) {
      snprintf(err, err_size, "%s: program.%s: unknown field", file, e->string);
      return false;
    }
  }
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  if (config != NULL && !cJSON_IsObject(config)) {
    snprintf(err, err_size, "%s: program.config: must be an object (the driver's settings)", file);
    return false;
  }
  const cJSON *runner = cJSON_GetObjectItemCaseSensitive(program, "runner");
  if (runner == NULL) {
    snprintf(err, err_size, "%s: program.runner: required field missing", file);
    return false;
  }
  if (!cJSON_IsString(runner) || strcmp(runner->valuestring, "driver") != 0) {
    snprintf(err, err_size, "%s: program.runner: must be \"driver\"", file);
    return false;
  }
  return true;
}

dfnet_status_t driver_index__parse_manifest(const char *text, size_t len, const char *file,
                                            driver_manifest_t *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  if (len > MANIFEST_MAX) {
    snprintf(err, err_size, "%s: larger than %u bytes", file, MANIFEST_MAX);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (root == NULL) {
    const char *at = cJSON_GetErrorPtr();
    snprintf(err, err_size, "%s: not valid JSON (near byte %ld)", file,
             at && at >= text && at <= text + len ? (long)(at - text) : -1L);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = DFNET_STATUS_INVALID_ARGUMENT;
  const cJSON *program = cJSON_GetObjectItemCaseSensitive(root, "program");
  if (!cJSON_IsObject(root) || !cJSON_IsObject(program)) {
    snprintf(err, err_size, "%s: program: required object missing", file);
    goto free_json;
  }
  if (!check_fields(program, file, err, err_size) ||
      !get_path(program, "binary", &out->binary, file, err, err_size) ||
      !get_path(program, "bind", &out->bind, file, err, err_size) ||
      !get_flag(program, "colocate", &out->colocate, file, err, err_size) ||
      !get_flag(program, "fallback", &out->fallback, file, err, err_size) ||
      !get_flag(program, "host_restart_on_crash", &out->host_restart_on_crash, file, err,
                err_size) ||
      !get_opts(program, out, file, err, err_size) ||
      !get_categories(program, out, file, err, err_size) ||
      !get_read_only_methods(program, out, file, err, err_size) ||
      !get_start_timeout(program, &out->start_timeout_ms, file, err, err_size))
    goto free_manifest;
  if (out->colocate && out->host_restart_on_crash) {
    snprintf(err, err_size,
             "%s: program.host_restart_on_crash: Both host_restart_on_crash and colocate "
             "cannot be true",
             file);
    goto free_manifest;
  }
  out->program_json = cJSON_PrintUnformatted(program);
  if (out->program_json == NULL) {
    st = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto free_manifest;
  }
  char why[300];
  if (dfnet_manifest_resources_parse(out->program_json, strlen(out->program_json), out->resources,
                                     &out->resource_count, why, sizeof why) != DFNET_STATUS_OK ||
      dfnet_driver_rights_parse(out->program_json, strlen(out->program_json), &out->rights, why,
                                sizeof why) != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s: %s", file, why);
    goto free_manifest;
  }
  st = DFNET_STATUS_OK;
  goto free_json;
free_manifest:
  driver_index__manifest_free(out);
free_json:
  cJSON_Delete(root);
  return st;
}

/* ---- packages ----------------------------------------------------------------------- */

static dfnet_status_t index_append(driver_index_t *idx, driver_t *d) {
  driver_t **p = dfnet_array_grow(idx->drivers, idx->count, &idx->cap, sizeof *p, 16);
  if (p == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  idx->drivers = p;
  idx->drivers[idx->count++] = d;
  d->id = (uint32_t)idx->count;
  HASH_ADD_KEYPTR(hh, idx->by_url, d->url, strlen(d->url), d);
  return DFNET_STATUS_OK;
}

/* Does the program start with the instruction dfnet-bindc --disable-autobind puts first
 * (Fuchsia's disable_autobind(): fuchsia.BIND_AUTOBIND == 0)? Read from its dump, the one
 * text form of an instruction (bind/dump.c). */
static bool autobind_disabled(const dfnet_bind_program_t *program) {
  static const char first[] = "\n  fuchsia.BIND_AUTOBIND == 0";
  char *dump = dfnet_bind_program_dump(program);
  bool yes = dump != NULL && strncmp(dump, first, sizeof first - 1) == 0 &&
             (dump[sizeof first - 1] == '\n' || dump[sizeof first - 1] == '\0');
  free(dump);
  return yes;
}

static dfnet_status_t load_bytecode(driver_t *d, const uint8_t *pkg, size_t pkg_size,
                                    const char *name, char *err, size_t err_size) {
  char sub[256];
  dfnet_package_buf_t bc = {0};
  dfnet_status_t st =
      dfnet_package_read_entry(pkg, pkg_size, d->m.bind, BYTECODE_MAX, &bc, sub, sizeof sub);
  if (st != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s/meta/%s.json: program.bind: %s", name, name, sub);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  st = dfnet_bind_program_load(bc.data, bc.size, &d->program, sub, sizeof sub);
  dfnet_package_buf_free(&bc);
  if (st != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s/%s: program.bind: bytecode refused: %s", name, d->m.bind, sub);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  d->composite = dfnet_bind_program_is_composite(d->program);
  d->disable_autobind = !d->composite && autobind_disabled(d->program);
  return DFNET_STATUS_OK;
}

dfnet_status_t driver_index__add_package(driver_index_t *idx, const char *name, const uint8_t *pkg,
                                         size_t pkg_size, driver_source_t source, driver_t **out,
                                         char *err, size_t err_size) {
  if (!dfnet_package_name_valid(name)) {
    snprintf(err, err_size, "%s: not a valid package name ([A-Za-z0-9_-], 1..63)", name);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  driver_t *d = calloc(1, sizeof *d);
  if (d == NULL)
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  dfnet_status_t st = DFNET_STATUS_RESOURCE_EXHAUSTED;
  char file[160], url[DFNET_PACKAGE_URL_MAX], sub[256];
  snprintf(file, sizeof file, "meta/%s.json", name);
  dfnet_package_digest(pkg, pkg_size, d->digest);
  dfnet_package_url(name, source == DRIVER_BOOT ? NULL : d->digest, url, sizeof url);
  d->name = strdup(name);
  d->url = strdup(url);
  d->source = source;
  if (d->name == NULL || d->url == NULL)
    goto free_driver;
  if (driver_index__find_url(idx, url) != NULL) {
    snprintf(err, err_size, "%s: a driver with this URL is already in the index", url);
    st = DFNET_STATUS_ALREADY_EXISTS;
    goto free_driver;
  }
  dfnet_package_buf_t manifest = {0};
  st = dfnet_package_read_entry(pkg, pkg_size, file, MANIFEST_MAX, &manifest, sub, sizeof sub);
  if (st != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s/%s: %s", name, file, sub);
    st = DFNET_STATUS_INVALID_ARGUMENT;
    goto free_driver;
  }
  char path[200];
  snprintf(path, sizeof path, "%s/%s", name, file);
  st = driver_index__parse_manifest((const char *)manifest.data, manifest.size, path, &d->m, err,
                                    err_size);
  dfnet_package_buf_free(&manifest);
  if (st != DFNET_STATUS_OK)
    goto free_driver;
  dfnet_package_buf_t bin = {0};
  st = dfnet_package_read_entry(pkg, pkg_size, d->m.binary, 1, &bin, sub, sizeof sub);
  dfnet_package_buf_free(&bin);
  if (st == DFNET_STATUS_NOT_FOUND || st == DFNET_STATUS_INVALID_ARGUMENT) {
    snprintf(err, err_size, "%s: program.binary: %s", path, sub);
    st = DFNET_STATUS_INVALID_ARGUMENT;
    goto free_driver;
  }
  st = load_bytecode(d, pkg, pkg_size, name, err, err_size);
  if (st != DFNET_STATUS_OK)
    goto free_driver;
  st = index_append(idx, d);
  if (st != DFNET_STATUS_OK)
    goto free_driver;
  *out = d;
  return DFNET_STATUS_OK;
free_driver:
  driver_free(d);
  return st;
}

uint32_t driver_index__start_timeout_ms(const driver_t *d) {
  return d->m.start_timeout_ms != 0 ? d->m.start_timeout_ms : DRIVER_START_TIMEOUT_DEFAULT_MS;
}

driver_t *driver_index__find_url(const driver_index_t *idx, const char *url) {
  driver_t *d = NULL;
  HASH_FIND_STR(idx->by_url, url, d);
  return d;
}

driver_t *driver_index__get(const driver_index_t *idx, uint32_t id) {
  if (id == 0 || id > idx->count)
    return NULL;
  return idx->drivers[id - 1];
}

dfnet_status_t driver_index__resolve(const driver_index_t *idx, const char *what, driver_t **out,
                                     char *err, size_t err_size) {
  *out = driver_index__find_url(idx, what);
  if (*out != NULL)
    return DFNET_STATUS_OK;
  driver_t *named[8];
  size_t n = 0;
  for (size_t i = 0; i < idx->count; i++) {
    driver_t *d = idx->drivers[i];
    if (d == NULL || strcmp(d->name, what) != 0)
      continue;
    if (n < sizeof named / sizeof named[0])
      named[n] = d;
    n++;
  }
  if (n == 1) {
    *out = named[0];
    return DFNET_STATUS_OK;
  }
  if (n == 0) {
    snprintf(err, err_size, "no driver with URL or name '%s'", what);
    return DFNET_STATUS_NOT_FOUND;
  }
  int w = snprintf(err, err_size, "%zu drivers are named '%s'; give the URL of one: ", n, what);
  if (w > 0 && (size_t)w < err_size) {
    for (size_t i = 0; i < n && i < sizeof named / sizeof named[0]; i++) {
      size_t used = strlen(err);
      snprintf(err + used, err_size - used, "%s%s", i ? ", " : "", named[i]->url);
    }
  }
  return DFNET_STATUS_FAILED_PRECONDITION;
}

driver_t *driver_index__find_registered(const driver_index_t *idx,
                                        const uint8_t digest[DFNET_PACKAGE_DIGEST_SIZE]) {
  for (size_t i = 0; i < idx->count; i++) {
    driver_t *d = idx->drivers[i];
    if (d != NULL && d->source == DRIVER_REGISTERED &&
        memcmp(d->digest, digest, DFNET_PACKAGE_DIGEST_SIZE) == 0)
      return d;
  }
  return NULL;
}

void driver_index__remove(driver_index_t *idx, driver_t *d) {
  if (d == NULL || d->id == 0 || d->id > idx->count || idx->drivers[d->id - 1] != d)
    return;
  HASH_DEL(idx->by_url, d);
  idx->drivers[d->id - 1] = NULL;
  driver_free(d);
}

/* ---- matching ----------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return b <= a && strcmp(s + a - b, suffix) == 0;
}

static void list_urls(char *out, size_t size, driver_t *const *ds, size_t n) {
  size_t used = strlen(out);
  for (size_t i = 0; i < n && used < size; i++) {
    int w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", ds[i]->url);
    if (w < 0)
      break;
    used += (size_t)w;
  }
}

void driver_index__match(const driver_index_t *idx, const dfnet_bind_node_t *node,
                         const char *url_suffix, driver_match_t *out) {
  driver_t *hits[2][4]; /* [0] non-fallback, [1] fallback: the first few */
  size_t nhits[2] = {0, 0};
  const driver_t *error_driver = NULL;
  dfnet_bind_trace_t trace;
  for (size_t i = 0; i < idx->count; i++) {
    driver_t *d = idx->drivers[i];
    if (d == NULL || d->disabled || d->composite)
      continue;
    if (url_suffix != NULL && url_suffix[0] != '\0' && !ends_with(d->url, url_suffix))
      continue;
    int level = d->m.fallback ? 1 : 0;
    if (level == 1 && !idx->boot_indexed)
      continue;
    dfnet_bind_result_t r = dfnet_bind_program_match(d->program, node, NULL);
    if (r == DFNET_BIND_MATCH) {
      if (nhits[level] < 4)
        hits[level][nhits[level]] = d;
      nhits[level]++;
    } else if (r == DFNET_BIND_ERROR && error_driver == NULL) {
      error_driver = d;
    }
  }
  memset(out, 0, sizeof *out);
  for (int level = 0; level < 2; level++) {
    if (nhits[level] == 1) {
      out->status = DFNET_STATUS_OK;
      out->driver = hits[level][0];
      return;
    }
    if (nhits[level] > 1) {
      out->status = DFNET_STATUS_FAILED_PRECONDITION;
      snprintf(out->reason, sizeof out->reason,
               "multiple %s drivers matched: ", level ? "fallback" : "non-fallback");
      list_urls(out->reason, sizeof out->reason, hits[level], nhits[level] < 4 ? nhits[level] : 4);
      return;
    }
  }
  out->status = DFNET_STATUS_NOT_FOUND;
  if (error_driver != NULL) {
    dfnet_bind_program_match(error_driver->program, node, &trace);
    topology__fmt(out->reason, sizeof out->reason, "no driver matched (%s: bind error at '%s': %s)",
                  error_driver->url, trace.instruction, trace.reason);
  } else {
    snprintf(out->reason, sizeof out->reason, "no driver matched");
  }
}
