/* dfnet-manager: the checks every record of the store shares (store_internal.h): texts,
 * targets, node monikers, values a BIGINT holds, and the client roles' stored names. */
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"
#include "lib/role.h"
#include "manager/store_internal.h"

/* ---- Checks ----------------------------------------------------------------------------- */

bool store_sql__check_text(const char *text, size_t min, size_t max, const char *field, char *err,
                           size_t err_size) {
  if (text == NULL) {
    dfnet_why_set(err, err_size, "%s: missing", field);
    return false;
  }
  size_t n = strnlen(text, max + 1);
  if (n < min || n > max) {
    dfnet_why_set(err, err_size, "%s: %s (%zu..%zu bytes)", field, n < min ? "empty" : "too long",
                  min, max);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c < 0x20 || c == 0x7f) {
      dfnet_why_set(err, err_size, "%s: control character 0x%02x at byte %zu", field, c, i);
      return false;
    }
  }
  return true;
}

bool store_sql__check_targets(const store_target_t *targets, size_t count, size_t min, char *err,
                              size_t err_size) {
  if (count < min || count > STORE_TARGETS_MAX || (count > 0 && targets == NULL)) {
    dfnet_why_set(err, err_size, "targets: %zu of them (%zu..%u)", count, min, STORE_TARGETS_MAX);
    return false;
  }
  for (size_t i = 0; i < count; i++) {
    char field[32];
    snprintf(field, sizeof field, "target %zu", i);
    if ((unsigned)targets[i].kind > STORE_TARGET_SELECTOR) {
      dfnet_why_set(err, err_size, "%s: unknown kind %d", field, (int)targets[i].kind);
      return false;
    }
    if (!store_sql__check_text(targets[i].text, 1, STORE_TARGET_MAX, field, err, err_size))
      return false;
  }
  return true;
}

bool store_sql__check_nodes(const char *const *nodes, size_t count, char *err, size_t err_size) {
  if (count > STORE_NODES_MAX || (count > 0 && nodes == NULL)) {
    dfnet_why_set(err, err_size, "nodes: %zu of them (at most %u)", count, STORE_NODES_MAX);
    return false;
  }
  for (size_t i = 0; i < count; i++) {
    char field[32];
    snprintf(field, sizeof field, "node %zu", i);
    if (!store_sql__check_text(nodes[i], 1, STORE_TARGET_MAX, field, err, err_size))
      return false;
  }
  return true;
}

bool store_sql__check_u63(uint64_t v, const char *field, char *err, size_t err_size) {
  if (v <= (uint64_t)INT64_MAX)
    return true;
  dfnet_why_set(err, err_size, "%s: %llu is over 2^63 - 1", field, (unsigned long long)v);
  return false;
}

const char *store_sql__role_name(dfnet_v1_Role role) {
  const dfnet_role_t *r = dfnet_role_by_wire(role);
  return r != NULL && r->client_rank > 0 ? r->name : NULL;
}

bool store_sql__role_parse(const char *name, dfnet_v1_Role *out) {
  const dfnet_role_t *r = dfnet_role_by_name(name);
  if (r == NULL || r->client_rank == 0)
    return false;
  *out = r->wire;
  return true;
}
