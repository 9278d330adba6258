/* A manifest's "resources" (lib/resource.h). */
#include "lib/resource.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "lib/fileio.h"

/* Is `path` absolute, 2..DFNET_RESOURCE_NAME_MAX - 1 bytes, without an empty, "." or ".."
 * component and without a trailing '/'? */
static bool path_ok(const char *path) {
  size_t len = strlen(path);
  return len >= 2 && path[0] == '/' && path[len - 1] != '/' &&
         dfnet_path_below(path + 1, DFNET_RESOURCE_NAME_MAX - 2);
}

/* Entry i of "resources" into *out. False with why set. */
static bool entry(const cJSON *e, size_t i, dfnet_manifest_resource_t *out, char *why,
                  size_t why_size) {
  const cJSON *path = e;
  out->writable = false;
  out->optional = false;
  if (cJSON_IsObject(e)) {
    const cJSON *f;
    cJSON_ArrayForEach(f, e) {
      if (strcmp(f->string, "path") != 0 && strcmp(f->string, "access") != 0 &&
          strcmp(f->string, "optional") != 0) {
        dfnet_why_set(why, why_size,
                      "program.resources[%zu].%s: unknown field (path, access, optional)", i,
                      f->string);
        return false;
      }
    }
    const cJSON *optional = cJSON_GetObjectItemCaseSensitive(e, "optional");
    if (optional != NULL && !cJSON_IsBool(optional)) {
      dfnet_why_set(why, why_size, "program.resources[%zu].optional: must be true or false", i);
      return false;
    }
    out->optional = cJSON_IsTrue(optional);
    path = cJSON_GetObjectItemCaseSensitive(e, "path");
    const cJSON *access = cJSON_GetObjectItemCaseSensitive(e, "access");
    if (access != NULL) {
      const char *a = cJSON_GetStringValue(access);
      if (a == NULL || (strcmp(a, "r") != 0 && strcmp(a, "rw") != 0)) {
        dfnet_why_set(why, why_size, "program.resources[%zu].access: must be \"r\" or \"rw\"", i);
        return false;
      }
      out->writable = strcmp(a, "rw") == 0;
    }
  } else if (!cJSON_IsString(e)) {
    dfnet_why_set(why, why_size,
                  "program.resources[%zu]: must be a path or {\"path\": PATH, \"access\": "
                  "\"r\" | \"rw\", \"optional\": true | false}",
                  i);
    return false;
  }
  const char *p = cJSON_GetStringValue(path);
  if (p == NULL || !path_ok(p)) {
    dfnet_why_set(why, why_size,
                  "program.resources[%zu]%s: must be an absolute path of at most %u bytes "
                  "without \".\", \"..\" or empty components",
                  i, e == path ? "" : ".path", DFNET_RESOURCE_NAME_MAX - 1);
    return false;
  }
  memcpy(out->path, p, strlen(p) + 1);
  return true;
}

dfnet_status_t dfnet_manifest_resources_parse(const char *program_json, size_t len,
                                              dfnet_manifest_resource_t *out, size_t *count,
                                              char *why, size_t why_size) {
  *count = 0;
  cJSON *program = cJSON_ParseWithLength(program_json, len);
  dfnet_status_t st = DFNET_STATUS_INVALID_ARGUMENT;
  if (!cJSON_IsObject(program)) {
    dfnet_why_set(why, why_size, "program: not a JSON object (or no memory to parse it)");
    goto free_program;
  }
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(program, "resources");
  if (list == NULL) {
    st = DFNET_STATUS_OK;
    goto free_program;
  }
  if (!cJSON_IsArray(list) || (size_t)cJSON_GetArraySize(list) > DFNET_MANIFEST_RESOURCES_MAX) {
    dfnet_why_set(why, why_size, "program.resources: must be an array of at most %u paths",
                  DFNET_MANIFEST_RESOURCES_MAX);
    goto free_program;
  }
  const cJSON *e;
  size_t i = 0;
  cJSON_ArrayForEach(e, list) {
    if (!entry(e, i, &out[i], why, why_size))
      goto free_program;
    for (size_t k = 0; k < i; k++) {
      if (strcmp(out[k].path, out[i].path) == 0) {
        dfnet_why_set(why, why_size, "program.resources[%zu]: %s is given twice", i, out[i].path);
        goto free_program;
      }
    }
    i++;
  }
  *count = i;
  st = DFNET_STATUS_OK;
free_program:
  cJSON_Delete(program);
  return st;
}
