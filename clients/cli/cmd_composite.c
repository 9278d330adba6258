/* dfnet CLI: `composite add SPEC.json` (role admin) — a composite node spec (DFv2's
 * fuchsia.driver.framework/CompositeNodeSpec: a name and parents, each given as bind rules
 * to match and the properties its composite sees) read from a JSON file and added with
 * dfnet_client_add_composite_node_spec. The format is clients/cli/JSON.md "composite add".
 *
 * The whole file is checked before anything is sent, against the wire's bounds
 * (proto/dfnet/v1/query.options): a typo — not JSON, an unknown or repeated field, a wrong
 * type, a value out of range — is reported naming the file and the field,
 * `dfnet: INVALID_ARGUMENT: spec.json: parents[0].bind_rules[1].condition: ...`, exit 2. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/cmdline.h"

#define SPEC_FILE_MAX (1u << 20)
#define SPEC_NAME_MAX 128     /* a node name (CompositeNodeSpec.name: 129 with the NUL) */
#define SPEC_PARENTS_MAX 16   /* CompositeNodeSpec.parents */
#define SPEC_RULES_MAX 4      /* ParentSpec.bind_rules */
#define SPEC_VALUES_MAX 3     /* BindRule.values */
#define SPEC_PROPERTIES_MAX 3 /* ParentSpec.properties */
#define SPEC_KEY_MAX 127      /* BindRule.str_key, NodeProperty.str_key */
#define SPEC_RULE_STR_MAX 127 /* PropertyValue.str_value, enum_value */
#define SPEC_PROP_STR_MAX 255 /* NodeProperty.str_value, enum_value */

/* A spec as the library takes it; every string points into the parsed JSON document. */
typedef struct spec {
  const char *file;
  const char *name;
  size_t parent_count;
  dfnet_client_parent_spec_t parents[SPEC_PARENTS_MAX];
  dfnet_client_bind_rule_t rules[SPEC_PARENTS_MAX][SPEC_RULES_MAX];
  dfnet_client_property_t values[SPEC_PARENTS_MAX][SPEC_RULES_MAX][SPEC_VALUES_MAX];
  dfnet_client_property_t properties[SPEC_PARENTS_MAX][SPEC_PROPERTIES_MAX];
} spec_t;

/* "FILE: PATH: message", exit 2. */
static int spec_fail(const spec_t *s, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int spec_fail(const spec_t *s, const char *path, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return cli__usage("%s: %s%s%s", s->file, path, path[0] ? ": " : "", msg);
}

/* at = path + suffix (a field's path, cut to cap). */
static void join(char *at, size_t cap, const char *path, const char *suffix) {
  size_t a = strlen(path), b = strlen(suffix);
  if (a > cap - 1)
    a = cap - 1;
  if (b > cap - 1 - a)
    b = cap - 1 - a;
  memcpy(at, path, a);
  memcpy(at + a, suffix, b);
  at[a + b] = '\0';
}

/* at = path + ".<array>[<i>]": the path of an array's item (cut to cap). */
static void item_path(char *at, size_t cap, const char *path, const char *array, size_t i) {
  char idx[48];
  snprintf(idx, sizeof idx, ".%s[%zu]", array, i);
  join(at, cap, path, idx);
}

static const char *type_name(const cJSON *j) {
  if (cJSON_IsNumber(j))
    return "a number";
  if (cJSON_IsString(j))
    return "a string";
  if (cJSON_IsBool(j))
    return "a bool";
  if (cJSON_IsNull(j))
    return "null";
  if (cJSON_IsArray(j))
    return "an array";
  return cJSON_IsObject(j) ? "an object" : "something else";
}

/* Every member of object `o` is one of `fields` (NULL-terminated), given once. */
static int check_fields(const spec_t *s, const cJSON *o, const char *path,
                        const char *const *fields, const char *what) {
  for (const cJSON *m = o->child; m != NULL; m = m->next) {
    char at[300];
    snprintf(at, sizeof at, "%s%s%s", path, path[0] ? "." : "", m->string);
    bool known = false;
    for (size_t i = 0; fields[i] != NULL && !known; i++)
      known = strcmp(m->string, fields[i]) == 0;
    if (!known) {
      char list[200] = "";
      for (size_t i = 0; fields[i] != NULL; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", fields[i]);
      return spec_fail(s, at, "unknown field (%s has: %s)", what, list);
    }
    for (const cJSON *k = o->child; k != m; k = k->next)
      if (strcmp(k->string, m->string) == 0)
        return spec_fail(s, at, "given twice");
  }
  return CLI_EXIT_OK;
}

/* j is an object (else "<its type>; <what> is <form>") with only the given fields. */
static int check_object(const spec_t *s, const cJSON *j, const char *path, const char *what,
                        const char *form, const char *const *fields) {
  if (!cJSON_IsObject(j))
    return spec_fail(s, path, "%s; %s is %s", type_name(j), what, form);
  return check_fields(s, j, path, fields, what);
}

/* A JSON number that is a whole number in 0..2^32-1. */
static bool as_uint32(const cJSON *j, uint32_t *out) {
  double v = j->valuedouble;
  if (!cJSON_IsNumber(j) || !(v >= 0 && v <= 4294967295.0) || (double)(uint32_t)v != v)
    return false;
  *out = (uint32_t)v;
  return true;
}

/* A string "0x1af4" or "6900" as a uint32. */
static bool text_uint32(const char *t, uint32_t *out) {
  uint64_t v = 0;
  if (!dfnet_cmdline_uint(t, 0, 0, 0xffffffffu, &v))
    return false;
  *out = (uint32_t)v;
  return true;
}

static int string_fits(const spec_t *s, const char *path, const char *v, size_t max) {
  if (strlen(v) > max)
    return spec_fail(s, path, "%zu bytes, at most %zu", strlen(v), max);
  return CLI_EXIT_OK;
}

/* The "key" member of object o: a number (an integer key, fuchsia.BIND_*'s deprecated
 * numbering) or a string. */
static int parse_key(const spec_t *s, const cJSON *o, const char *path, const char **str_key,
                     uint32_t *int_key) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "key");
  char at[300];
  join(at, sizeof at, path, ".key");
  if (j == NULL)
    return spec_fail(s, at,
                     "missing (a key: a string such as \"fuchsia.BIND_PROTOCOL\", or "
                     "an integer key)");
  if (cJSON_IsString(j)) {
    if (j->valuestring[0] == '\0')
      return spec_fail(s, at, "an empty key");
    *str_key = j->valuestring;
    return string_fits(s, at, j->valuestring, SPEC_KEY_MAX);
  }
  if (as_uint32(j, int_key)) {
    *str_key = NULL;
    return CLI_EXIT_OK;
  }
  return spec_fail(s, at, "%s; a key is a string or an integer in 0..4294967295", type_name(j));
}

/* A value: a number (uint), a string, true/false, or {"type": "uint"|"string"|"bool"|"enum",
 * "value": ...} (the listing's form; a uint may be written "0x0d0f" there). */
static int parse_value(const spec_t *s, const cJSON *j, const char *path, size_t str_max,
                       dfnet_client_property_t *v) {
  if (j == NULL)
    return spec_fail(s, path, "missing");
  if (cJSON_IsBool(j)) {
    v->type = DFNET_CLIENT_VALUE_BOOL;
    v->bool_value = cJSON_IsTrue(j);
    return CLI_EXIT_OK;
  }
  if (cJSON_IsString(j)) {
    v->type = DFNET_CLIENT_VALUE_STRING;
    v->str_value = j->valuestring;
    return string_fits(s, path, j->valuestring, str_max);
  }
  if (cJSON_IsNumber(j)) {
    v->type = DFNET_CLIENT_VALUE_INT;
    if (!as_uint32(j, &v->int_value))
      return spec_fail(s, path, "%g: a uint value is a whole number in 0..4294967295",
                       j->valuedouble);
    return CLI_EXIT_OK;
  }
  if (!cJSON_IsObject(j))
    return spec_fail(s, path,
                     "%s; a value is a number, a string, true/false or {\"type\": ..., "
                     "\"value\": ...}",
                     type_name(j));
  static const char *const fields[] = {"type", "value", NULL};
  int rc = check_fields(s, j, path, fields, "a typed value");
  if (rc != CLI_EXIT_OK)
    return rc;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  const cJSON *value = cJSON_GetObjectItemCaseSensitive(j, "value");
  char at[300];
  join(at, sizeof at, path, ".type");
  if (!cJSON_IsString(type))
    return spec_fail(s, at, "%s; wants \"uint\", \"string\", \"bool\" or \"enum\"",
                     type ? type_name(type) : "missing");
  join(at, sizeof at, path, ".value");
  if (value == NULL)
    return spec_fail(s, at, "missing");
  const char *t = type->valuestring;
  if (strcmp(t, "uint") == 0) {
    v->type = DFNET_CLIENT_VALUE_INT;
    if (as_uint32(value, &v->int_value) ||
        (cJSON_IsString(value) && text_uint32(value->valuestring, &v->int_value)))
      return CLI_EXIT_OK;
    return spec_fail(s, at,
                     "a uint value is a whole number in 0..4294967295 (or a string "
                     "such as \"0x1af4\")");
  }
  if (strcmp(t, "bool") == 0) {
    if (!cJSON_IsBool(value))
      return spec_fail(s, at, "%s; a bool value is true or false", type_name(value));
    v->type = DFNET_CLIENT_VALUE_BOOL;
    v->bool_value = cJSON_IsTrue(value);
    return CLI_EXIT_OK;
  }
  if (strcmp(t, "string") == 0 || strcmp(t, "enum") == 0) {
    if (!cJSON_IsString(value))
      return spec_fail(s, at, "%s; %s value is a string", type_name(value),
                       t[0] == 's' ? "a string" : "an enum");
    v->type = t[0] == 's' ? DFNET_CLIENT_VALUE_STRING : DFNET_CLIENT_VALUE_ENUM;
    v->str_value = value->valuestring;
    return string_fits(s, at, value->valuestring, str_max);
  }
  join(at, sizeof at, path, ".type");
  return spec_fail(s, at, "\"%s\"; wants \"uint\", \"string\", \"bool\" or \"enum\"", t);
}

/* An array member of o with 1..max (min 0 when optional) items; *out NULL when absent and
 * optional. */
static int get_array(const spec_t *s, const cJSON *o, const char *name, const char *path,
                     size_t min, size_t max, const cJSON **out) {
  char at[300];
  snprintf(at, sizeof at, "%s%s%s", path, path[0] ? "." : "", name);
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
  *out = a;
  if (a == NULL && min == 0)
    return CLI_EXIT_OK;
  if (a == NULL)
    return spec_fail(s, at, "missing (%zu..%zu wanted)", min, max);
  if (!cJSON_IsArray(a))
    return spec_fail(s, at, "%s; wants an array", type_name(a));
  int n = cJSON_GetArraySize(a);
  if (n < (int)min || n > (int)max)
    return spec_fail(s, at, "%d items, wants %zu..%zu", n, min, max);
  return CLI_EXIT_OK;
}

static int parse_rule(spec_t *s, const cJSON *j, const char *path, size_t p, size_t r) {
  dfnet_client_bind_rule_t *rule = &s->rules[p][r];
  static const char *const fields[] = {"key", "condition", "values", NULL};
  int rc = check_object(s, j, path, "a bind rule",
                        "{\"key\": ..., \"condition\": ..., \"values\": [...]}", fields);
  if (rc == CLI_EXIT_OK)
    rc = parse_key(s, j, path, &rule->str_key, &rule->int_key);
  if (rc != CLI_EXIT_OK)
    return rc;
  char at[300];
  const cJSON *cond = cJSON_GetObjectItemCaseSensitive(j, "condition");
  join(at, sizeof at, path, ".condition");
  const char *c = cJSON_IsString(cond) ? cond->valuestring : "";
  if (strcmp(c, "accept") == 0 || strcmp(c, "ACCEPT") == 0)
    rule->condition = DFNET_CLIENT_ACCEPT;
  else if (strcmp(c, "reject") == 0 || strcmp(c, "REJECT") == 0)
    rule->condition = DFNET_CLIENT_REJECT;
  else if (cond == NULL)
    return spec_fail(s, at, "missing (\"accept\" or \"reject\")");
  else
    return spec_fail(s, at, "%s%s%s; wants \"accept\" or \"reject\"",
                     cJSON_IsString(cond) ? "\"" : "", cJSON_IsString(cond) ? c : type_name(cond),
                     cJSON_IsString(cond) ? "\"" : "");
  const cJSON *values;
  if ((rc = get_array(s, j, "values", path, 1, SPEC_VALUES_MAX, &values)) != CLI_EXIT_OK)
    return rc;
  size_t i = 0;
  for (const cJSON *v = values->child; v != NULL; v = v->next, i++) {
    item_path(at, sizeof at, path, "values", i);
    if ((rc = parse_value(s, v, at, SPEC_RULE_STR_MAX, &s->values[p][r][i])) != CLI_EXIT_OK)
      return rc;
  }
  rule->value_count = i;
  rule->values = s->values[p][r];
  return CLI_EXIT_OK;
}

static int parse_property(spec_t *s, const cJSON *j, const char *path,
                          dfnet_client_property_t *prop) {
  static const char *const fields[] = {"key", "value", NULL};
  int rc = check_object(s, j, path, "a property", "{\"key\": ..., \"value\": ...}", fields);
  if (rc == CLI_EXIT_OK)
    rc = parse_key(s, j, path, &prop->str_key, &prop->int_key);
  char at[300];
  join(at, sizeof at, path, ".value");
  if (rc == CLI_EXIT_OK)
    rc = parse_value(s, cJSON_GetObjectItemCaseSensitive(j, "value"), at, SPEC_PROP_STR_MAX, prop);
  return rc;
}

static int parse_parent(spec_t *s, const cJSON *j, const char *path, size_t p) {
  static const char *const fields[] = {"bind_rules", "properties", NULL};
  int rc = check_object(s, j, path, "a parent", "{\"bind_rules\": [...], \"properties\": [...]}",
                        fields);
  const cJSON *rules = NULL, *props = NULL;
  if (rc == CLI_EXIT_OK)
    rc = get_array(s, j, "bind_rules", path, 1, SPEC_RULES_MAX, &rules);
  if (rc == CLI_EXIT_OK)
    rc = get_array(s, j, "properties", path, 0, SPEC_PROPERTIES_MAX, &props);
  char at[300];
  size_t i = 0;
  for (const cJSON *r = rules ? rules->child : NULL; rc == CLI_EXIT_OK && r; r = r->next, i++) {
    item_path(at, sizeof at, path, "bind_rules", i);
    rc = parse_rule(s, r, at, p, i);
  }
  s->parents[p].rule_count = i;
  s->parents[p].rules = s->rules[p];
  i = 0;
  for (const cJSON *k = props ? props->child : NULL; rc == CLI_EXIT_OK && k; k = k->next, i++) {
    item_path(at, sizeof at, path, "properties", i);
    rc = parse_property(s, k, at, &s->properties[p][i]);
  }
  s->parents[p].property_count = i;
  s->parents[p].properties = s->properties[p];
  return rc;
}

/* Line and column of `at` in text. */
static void where(const char *text, const char *at, unsigned *line, unsigned *col) {
  *line = 1;
  *col = 1;
  for (const char *p = text; p < at && *p; p++) {
    if (*p == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* Parse the file's document into *s; *doc (the caller deletes it) holds s's strings. */
static int parse_spec(spec_t *s, const char *text, size_t len, cJSON **doc) {
  const char *end = NULL;
  *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (*doc == NULL) {
    const char *at = cJSON_GetErrorPtr();
    if (at == NULL || at < text || at > text + len)
      at = text + len;
    unsigned line, col;
    where(text, at, &line, &col);
    return cli__usage("%s:%u:%u: not valid JSON (near '%.12s')", s->file, line, col,
                      at < text + len ? at : "end of file");
  }
  for (const char *p = end; p < text + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
      unsigned line, col;
      where(text, p, &line, &col);
      return cli__usage("%s:%u:%u: not valid JSON (something after the document)", s->file, line,
                        col);
    }
  const cJSON *root = *doc;
  static const char *const fields[] = {"name", "parents", NULL};
  int rc = check_object(s, root, "", "a composite node spec", "{\"name\": ..., \"parents\": [...]}",
                        fields);
  if (rc != CLI_EXIT_OK)
    return rc;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (!cJSON_IsString(name))
    return spec_fail(s, "name", "%s; wants the spec's name, a string",
                     name ? type_name(name) : "missing");
  if (name->valuestring[0] == '\0' || strchr(name->valuestring, '.') != NULL)
    return spec_fail(s, "name", "\"%s\": a node name, not empty and without '.'",
                     name->valuestring);
  if ((rc = string_fits(s, "name", name->valuestring, SPEC_NAME_MAX)) != CLI_EXIT_OK)
    return rc;
  s->name = name->valuestring;
  const cJSON *parents;
  if ((rc = get_array(s, root, "parents", "", 1, SPEC_PARENTS_MAX, &parents)) != CLI_EXIT_OK)
    return rc;
  size_t i = 0;
  for (const cJSON *p = parents->child; rc == CLI_EXIT_OK && p; p = p->next, i++) {
    char at[64];
    snprintf(at, sizeof at, "parents[%zu]", i);
    rc = parse_parent(s, p, at, i);
  }
  s->parent_count = i;
  return rc;
}

typedef struct composite_add {
  uint8_t *text; /* the file, NUL-terminated */
  spec_t *spec;
  cJSON *doc; /* the file's document: the spec's strings */
} composite_add_t;

/* The whole file read and checked before anything is sent. */
static int composite_add_prepare(cli_run_t *run) {
  composite_add_t *s = run->ctx;
  const char *file = run->args[0];
  size_t len = 0;
  if (cli__read_file(file, SPEC_FILE_MAX, &s->text, &len) != 0)
    return cli__usage("%s: %s", file,
                      errno == EFBIG ? "over 1 MiB: not a composite node spec" : strerror(errno));
  uint8_t *z = realloc(s->text, len + 1); /* NUL-terminated for the messages' excerpts */
  if (z == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  s->text = z;
  s->text[len] = '\0';
  if ((s->spec = calloc(1, sizeof *s->spec)) == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  s->spec->file = file;
  return parse_spec(s->spec, (const char *)s->text, len, &s->doc);
}

static int composite_add_request(cli_run_t *run) {
  const composite_add_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_add_composite_node_spec(
                         run->client, s->spec->name, s->spec->parents, s->spec->parent_count, &err),
                     &err);
}

static cJSON *composite_add_json(cli_run_t *run) {
  const composite_add_t *s = run->ctx;
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "name", s->spec->name);
  cJSON_AddNumberToObject(out, "parents", (double)s->spec->parent_count);
  return out;
}

static int composite_add_print(cli_run_t *run) {
  const composite_add_t *s = run->ctx;
  printf("Added composite node spec %s (%zu parent%s).\n", s->spec->name, s->spec->parent_count,
         s->spec->parent_count == 1 ? "" : "s");
  return CLI_EXIT_OK;
}

static void composite_add_release(cli_run_t *run) {
  composite_add_t *s = run->ctx;
  cJSON_Delete(s->doc);
  free(s->spec);
  free(s->text);
}

int cmd_composite_add(int argc, char **argv) {
  static const cli_command_ops_t ops = {composite_add_prepare, composite_add_request,
                                        composite_add_json, composite_add_print,
                                        composite_add_release};
  static const cli_syntax_t syn = {
      .usage = "composite add SPEC.json [--json]",
      .about =
          "Add a composite node spec (role admin): a name and 1..16 parents, each with the "
          "bind rules a node must match and the properties the composite sees (Fuchsia's "
          "CompositeNodeSpec). The file's format: clients/cli/JSON.md \"composite add\". "
          "The file is checked before anything is sent; a mistake names the field (exit 2).",
      .options = cli_json_options,
      .min_args = 1,
      .max_args = 1,
      .args_help = "  SPEC.json  the spec, a JSON file\n"};
  composite_add_t s = {0};
  return cli__run(argc, argv, &syn, &ops, &s);
}
