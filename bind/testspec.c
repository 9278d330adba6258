/* dfnet bind: Fuchsia-format bind tests (tests.json) and KEY=VALUE property arguments.
 *
 * Source: Fuchsia src/devices/lib/bind/src/test.rs (plain: [{"name", "expected":
 * "match"|"abort", "device": {KEY: VALUE}}], composite: [{"node": NAME, "tests": [...]}];
 * progress lines "[ RUN      ] name" / "[       OK ] name" / "[  FAILED  ] name") and
 * debugger/device_specification.rs (keys and values in bind syntax, resolved through the
 * rules' symbol table). Unlike Fuchsia's runner, every test runs (not only up to the first
 * failure) and a failure prints the matcher's trace.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind_internal.h"
#include "lib/property_text.h"

typedef struct bind__test_state {
  bind__buf report;
  cJSON *root;
  dfnet_bind_program_t *program;
  int failed;
} bind__test_state;

static void bind__test_free(bind__test_state *st) {
  cJSON_Delete(st->root);
  dfnet_bind_program_destroy(st->program);
}

/* The key or value text of a test device as a source, named in messages
 * 'tests.json: test "<name>" <what>' (what: "\": key", "\": value"). */
static bind__file *bind__test_text(bind__ctx *ctx, const char *test_name, const char *what,
                                   const char *text) {
  bind__file *f = bind__alloc(ctx, sizeof(*f));
  f->path = bind__strcat3(ctx, "tests.json: test \"", test_name, what);
  f->text = text;
  f->len = strlen(text);
  return f;
}

/* Resolve one "KEY": "VALUE" pair of a test device into a property. */
static void bind__test_property(bind__ctx *ctx, const bind__compiled *c, const char *test_name,
                                const char *key, const char *value, dfnet_bind_property_t *p) {
  bind__file *kf = bind__test_text(ctx, test_name, "\": key", key);
  bind__tokens toks;
  bind__lex(ctx, kf, &toks);
  if (toks.count != 2 || toks.toks[0].kind != BIND__TOK_IDENT) {
    bind__fail(ctx, kf, (bind__pos){1, 1, 0}, DFNET_STATUS_INVALID_ARGUMENT,
               "'%s' is not a key name", key);
  }
  const bind__sym *k = bind__lookup_key(ctx, kf, &c->symbols, key, (bind__pos){1, 1, 0});
  memset(p, 0, sizeof(*p));
  if (k->kind == BIND__SYM_DEPRECATED_KEY) {
    p->int_key = k->deprecated;
  } else {
    p->str_key = k->text;
  }
  bind__file *vf = bind__test_text(ctx, test_name, "\": value", value);
  bind__value v;
  bind__parse_value_text(ctx, vf, &v);
  const bind__sym *s = bind__lookup_value(ctx, vf, &c->symbols, &v);
  switch (s->kind) {
  case BIND__SYM_NUMBER:
    p->type = DFNET_BIND_VALUE_UINT;
    p->int_value = (uint32_t)s->number;
    break;
  case BIND__SYM_STRING:
    p->type = DFNET_BIND_VALUE_STRING;
    p->str_value = s->text;
    break;
  case BIND__SYM_BOOL:
    p->type = DFNET_BIND_VALUE_BOOL;
    p->bool_value = s->boolean;
    break;
  default:
    p->type = DFNET_BIND_VALUE_ENUM;
    p->str_value = s->text;
    break;
  }
}

static const char *bind__json_string(const cJSON *obj, const char *field) {
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, field);
  return cJSON_IsString(f) ? f->valuestring : NULL;
}

static void bind__run_one(bind__ctx *ctx, bind__test_state *st, const bind__compiled *c,
                          size_t node_index, const cJSON *test) {
  const char *name = bind__json_string(test, "name");
  const char *expected = bind__json_string(test, "expected");
  const cJSON *device = cJSON_GetObjectItemCaseSensitive(test, "device");
  if (name == NULL || expected == NULL || !cJSON_IsObject(device) ||
      (strcmp(expected, "match") != 0 && strcmp(expected, "abort") != 0)) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
               "tests.json: every test needs \"name\", \"expected\" (\"match\" or \"abort\") "
               "and a \"device\" object");
  }
  dfnet_bind_property_t props[DFNET_BIND_NODE_MAX_PROPERTIES];
  size_t n = 0;
  const cJSON *item = NULL;
  cJSON_ArrayForEach(item, device) {
    if (!cJSON_IsString(item)) {
      bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
                 "tests.json: test \"%s\": the value of \"%s\" must be a string", name,
                 item->string);
    }
    if (n == DFNET_BIND_NODE_MAX_PROPERTIES) {
      bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
                 "tests.json: test \"%s\": more than %d properties", name,
                 DFNET_BIND_NODE_MAX_PROPERTIES);
    }
    bind__test_property(ctx, c, name, item->string, item->valuestring, &props[n++]);
  }
  dfnet_bind_node_t node;
  if (dfnet_bind_node_init(&node, props, n) != DFNET_STATUS_OK) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
               "tests.json: test \"%s\": invalid properties", name);
  }
  dfnet_bind_trace_t trace;
  dfnet_bind_result_t r =
      st->program->composite
          ? dfnet_bind_program_match_composite_node(st->program, node_index, &node, &trace)
          : dfnet_bind_program_match(st->program, &node, &trace);
  bool want_match = strcmp(expected, "match") == 0;
  bind__buf_printf(&st->report, "[ RUN      ] %s\n", name);
  if ((r == DFNET_BIND_MATCH && want_match) || (r == DFNET_BIND_NO_MATCH && !want_match)) {
    bind__buf_printf(&st->report, "[       OK ] %s\n", name);
    return;
  }
  st->failed++;
  bind__buf_printf(&st->report, "  expected %s, got %s\n", want_match ? "match" : "abort",
                   dfnet_bind_result_str(r));
  if (trace.at_end) {
    bind__buf_printf(&st->report, "  every condition held\n");
  } else {
    bind__buf_printf(&st->report, "  at offset %u: %s\n  %s\n", trace.offset, trace.instruction,
                     trace.reason);
  }
  bind__buf_printf(&st->report, "[  FAILED  ] %s\n", name);
}

static void bind__run_list(bind__ctx *ctx, bind__test_state *st, const bind__compiled *c,
                           size_t node_index, const cJSON *list) {
  if (!cJSON_IsArray(list)) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
               "tests.json: expected an array of tests");
  }
  bind__buf_printf(&st->report, "[----------]\n");
  const cJSON *test = NULL;
  cJSON_ArrayForEach(test, list) {
    if (!cJSON_IsObject(test)) {
      bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
                 "tests.json: every test must be an object");
    }
    bind__run_one(ctx, st, c, node_index, test);
  }
  bind__buf_printf(&st->report, "[----------]\n");
}

static void bind__run_suite(bind__ctx *ctx, bind__test_state *st, const dfnet_bind_source_t *rules,
                            const dfnet_bind_compile_options_t *opts,
                            const dfnet_bind_source_t *tests) {
  bind__file file = {rules->path ? rules->path : "<input>", rules->text, rules->len};
  bind__compiled c;
  bind__compile_file(ctx, &file, opts, &c);
  char err[256];
  if (dfnet_bind_program_load(c.bytes, c.len, &st->program, err, sizeof err) != DFNET_STATUS_OK) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INTERNAL,
               "compiled program does not verify: %s", err);
  }
  st->root = cJSON_ParseWithLength(tests->text, tests->len);
  if (st->root == NULL) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT, "%s: not valid JSON",
               tests->path ? tests->path : "tests.json");
  }
  if (!cJSON_IsArray(st->root)) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
               "%s: expected a JSON array of tests", tests->path ? tests->path : "tests.json");
  }
  const cJSON *first = cJSON_GetArrayItem(st->root, 0);
  bool composite_spec = first && cJSON_GetObjectItemCaseSensitive(first, "node") != NULL;
  if (composite_spec != st->program->composite) {
    bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
               "%s: %s tests for %s rules", tests->path ? tests->path : "tests.json",
               composite_spec ? "composite" : "plain",
               st->program->composite ? "composite" : "plain");
  }
  if (!composite_spec) {
    bind__run_list(ctx, st, &c, 0, st->root);
    return;
  }
  const cJSON *spec = NULL;
  cJSON_ArrayForEach(spec, st->root) {
    const char *node = bind__json_string(spec, "node");
    if (node == NULL) {
      bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
                 "tests.json: every composite entry needs \"node\" and \"tests\"");
    }
    bind__buf_printf(&st->report, "[ RUN      ] Test for composite node %s\n", node);
    size_t index = st->program->code_count;
    for (size_t i = 0; i < st->program->code_count; i++) {
      if (strcmp(st->program->codes[i].name, node) == 0) {
        index = i;
      }
    }
    if (index == st->program->code_count) {
      bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
                 "tests.json: the composite has no node \"%s\"", node);
    }
    int before = st->failed;
    bind__run_list(ctx, st, &c, index, cJSON_GetObjectItemCaseSensitive(spec, "tests"));
    bind__buf_printf(&st->report, "[  %s  ] %s\n", st->failed == before ? "    OK" : "FAILED",
                     node);
  }
}

typedef struct bind__test_job {
  bind__test_state *st;
  const dfnet_bind_source_t *rules;
  const dfnet_bind_compile_options_t *opts;
  const dfnet_bind_source_t *tests;
  bool ran; /* the context was allocated and the suite began */
} bind__test_job;

static dfnet_status_t bind__tests_body(bind__ctx *ctx, void *arg) {
  bind__test_job *job = arg;
  bind__test_state *st = job->st;
  job->ran = true;
  bind__run_suite(ctx, st, job->rules, job->opts, job->tests);
  bind__buf_printf(&st->report, "%s\n", st->failed ? "[  FAILED  ]" : "[  PASSED  ]");
  return st->failed ? DFNET_STATUS_ABORTED : DFNET_STATUS_OK;
}

dfnet_status_t dfnet_bind_run_tests(const dfnet_bind_source_t *rules,
                                    const dfnet_bind_compile_options_t *opts,
                                    const dfnet_bind_source_t *tests_json, char **report) {
  *report = NULL;
  bind__test_state *const st = calloc(1, sizeof(*st));
  if (st == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  bind__test_job job = {.st = st, .rules = rules, .opts = opts, .tests = tests_json};
  char *error = NULL;
  dfnet_status_t status = bind__ctx_run(bind__tests_body, &job, &error);
  if (!job.ran) {
    free(st);
    return status;
  }
  if (error) {
    bind__buf_put(&st->report, error, strlen(error));
    free(error);
  }
  bind__buf_u8(&st->report, '\0');
  if (st->report.oom) {
    bind__buf_free(&st->report);
    status = DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *report = (char *)st->report.data;
  bind__test_free(st);
  free(st);
  return status;
}

/* ---- KEY=VALUE ---- */

dfnet_status_t dfnet_bind_parse_property_args(char *const *args, size_t count,
                                              dfnet_bind_property_t *props, size_t max, char *err,
                                              size_t err_len) {
  if (count > max) {
    snprintf(err, err_len, "%zu properties, at most %zu", count, max);
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  for (size_t i = 0; i < count; i++) {
    if (!dfnet_property_text_parse(args[i], &props[i], err, err_len)) {
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
  }
  return DFNET_STATUS_OK;
}
