/* dfnet bind: compile rules / composite rules to bytecode v2.
 *
 * Code generation follows Fuchsia src/devices/lib/bind/src/compiler/compiler.rs
 * (compile_block) and the encoding bytecode_encoder/encode_v2.rs + instruction_encoder.rs
 * + symbol_table_encoder.rs, so the bytes are exactly Fuchsia bindc's (debug flag 0):
 *   k == v;            -> EqualCondition(k, v)            (0x01)
 *   k != v;            -> InequalCondition(k, v)          (0x02)
 *   accept k {a, b}    -> JumpIfEqual(k,a->L) JumpIfEqual(k,b->L) Abort Label L
 *   if c1 {B1} else {B2} -> JumpIfNotEqual(c1->L1) (JumpIfEqual for !=) B1 Jump->F
 *                          Label L1 B2 Label F
 *   false;             -> Abort;   true; -> nothing
 * Strings are interned on first use in encoding order (composite: device name, then each
 * node's name before its instructions; lhs before rhs). Numbers are truncated to u32 as
 * Fuchsia does (`value as u32`).
 */
#include <stdlib.h>
#include <string.h>

#include "bind/bind_internal.h"
#include "dfnet/bind_keys.h"

/* ---- IR ---- */

typedef struct bind__ir {
  uint8_t op; /* bind__op */
  const bind__sym *lhs;
  const bind__sym *rhs;
  uint32_t label; /* jumps: target label; LABEL: its id */
} bind__ir;

typedef struct bind__irlist {
  bind__ir *items;
  size_t count;
  size_t cap;
  uint32_t next_label;
} bind__irlist;

typedef struct bind__gen {
  bind__ctx *ctx;
  const bind__file *file;
  const bind__map *symbols;
  bind__irlist *out;
} bind__gen;

static void bind__ir_push(bind__gen *g, uint8_t op, const bind__sym *lhs, const bind__sym *rhs,
                          uint32_t label) {
  bind__irlist *l = g->out;
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    bind__ir *grown = bind__alloc(g->ctx, cap * sizeof(*grown));
    if (l->count) {
      memcpy(grown, l->items, l->count * sizeof(*grown));
    }
    l->items = grown;
    l->cap = cap;
  }
  bind__ir *ir = &l->items[l->count++];
  ir->op = op;
  ir->lhs = lhs;
  ir->rhs = rhs;
  ir->label = label;
}

static void bind__check_string(bind__gen *g, bind__pos pos, const char *text) {
  size_t n = strlen(text);
  if (n == 0) {
    bind__fail(g->ctx, g->file, pos, DFNET_STATUS_INVALID_ARGUMENT,
               "an empty string cannot be encoded (bytecode symbols are 1-255 bytes)");
  }
  if (n > BIND__MAX_STRING) {
    bind__fail(g->ctx, g->file, pos, DFNET_STATUS_INVALID_ARGUMENT,
               "string of %zu bytes is longer than the bytecode's 255-byte limit", n);
  }
}

const bind__sym *bind__lookup_key(bind__ctx *ctx, const bind__file *file, const bind__map *symbols,
                                  const char *name, bind__pos pos) {
  const bind__sym *s = bind__map_get(symbols, name);
  if (s == NULL) {
    bind__fail(ctx, file, pos, DFNET_STATUS_INVALID_ARGUMENT,
               "undeclared key '%s' (is its library in the 'using' list?)", name);
  }
  if (s->kind != BIND__SYM_KEY && s->kind != BIND__SYM_DEPRECATED_KEY) {
    bind__fail(ctx, file, pos, DFNET_STATUS_INVALID_ARGUMENT, "'%s' is a value, not a key", name);
  }
  return s;
}

const bind__sym *bind__lookup_value(bind__ctx *ctx, const bind__file *file,
                                    const bind__map *symbols, const bind__value *v) {
  bind__sym *s = NULL;
  switch (v->kind) {
  case BIND__V_NUMBER:
    return bind__sym_literal(ctx, BIND__SYM_NUMBER, v->number, NULL, false);
  case BIND__V_STRING:
    return bind__sym_literal(ctx, BIND__SYM_STRING, 0, v->text, false);
  case BIND__V_BOOL:
    return bind__sym_literal(ctx, BIND__SYM_BOOL, 0, NULL, v->boolean);
  case BIND__V_IDENT:
    s = bind__map_get(symbols, v->text);
    if (s == NULL) {
      bind__fail(ctx, file, v->pos, DFNET_STATUS_INVALID_ARGUMENT, "undeclared identifier '%s'",
                 v->text);
    }
    if (s->kind == BIND__SYM_KEY || s->kind == BIND__SYM_DEPRECATED_KEY) {
      bind__fail(ctx, file, v->pos, DFNET_STATUS_INVALID_ARGUMENT, "'%s' is a key, not a value",
                 v->text);
    }
    return s;
  }
  return NULL;
}

static const char *bind__sym_type_name(const bind__sym *s) {
  switch (s->kind) {
  case BIND__SYM_NUMBER:
    return "uint";
  case BIND__SYM_STRING:
    return "string";
  case BIND__SYM_BOOL:
    return "bool";
  case BIND__SYM_ENUM:
    return "enum";
  default:
    return "key";
  }
}

/* The right side's type must match the key's (strings and enums are interchangeable, as
 * in Fuchsia's instruction_encoder.rs is_matching_types; built-in keys are uint). */
static void bind__check_types(bind__ctx *ctx, const bind__file *file, const char *key_name,
                              const bind__sym *key, const bind__sym *value, bind__pos pos) {
  bind__vtype kt = key->kind == BIND__SYM_DEPRECATED_KEY ? BIND__T_UINT : key->key_type;
  bool ok = false;
  switch (kt) {
  case BIND__T_UINT:
    ok = value->kind == BIND__SYM_NUMBER;
    break;
  case BIND__T_BOOL:
    ok = value->kind == BIND__SYM_BOOL;
    break;
  case BIND__T_STRING:
  case BIND__T_ENUM:
    ok = value->kind == BIND__SYM_STRING || value->kind == BIND__SYM_ENUM;
    break;
  }
  if (!ok) {
    bind__fail(ctx, file, pos, DFNET_STATUS_INVALID_ARGUMENT,
               "type mismatch: key '%s' is %s, the value is %s", key_name, bind__vtype_name(kt),
               bind__sym_type_name(value));
  }
}

static void bind__check_operands(bind__gen *g, const bind__sym *key, const bind__sym *value,
                                 bind__pos key_pos, bind__pos value_pos) {
  if (key->kind == BIND__SYM_KEY) {
    bind__check_string(g, key_pos, key->text);
  }
  if (value->kind == BIND__SYM_STRING || value->kind == BIND__SYM_ENUM) {
    bind__check_string(g, value_pos, value->text);
  }
}

static void bind__gen_cond(bind__gen *g, const bind__cond *c, const bind__sym **lhs,
                           const bind__sym **rhs) {
  *lhs = bind__lookup_key(g->ctx, g->file, g->symbols, c->lhs, c->lhs_pos);
  *rhs = bind__lookup_value(g->ctx, g->file, g->symbols, &c->rhs);
  bind__check_types(g->ctx, g->file, c->lhs, *lhs, *rhs, c->rhs.pos);
  bind__check_operands(g, *lhs, *rhs, c->lhs_pos, c->rhs.pos);
}

static void bind__gen_block(bind__gen *g, const bind__block *b) {
  for (size_t i = 0; i < b->count; i++) {
    const bind__stmt *s = b->stmts[i];
    const bind__sym *lhs = NULL, *rhs = NULL;
    switch (s->kind) {
    case BIND__S_COND:
      bind__gen_cond(g, &s->cond, &lhs, &rhs);
      bind__ir_push(g, s->cond.equal ? BIND__OP_EQUAL : BIND__OP_INEQUAL, lhs, rhs, 0);
      break;
    case BIND__S_ACCEPT: {
      lhs = bind__lookup_key(g->ctx, g->file, g->symbols, s->accept_key, s->accept_key_pos);
      uint32_t label = g->out->next_label++;
      for (size_t j = 0; j < s->value_count; j++) {
        rhs = bind__lookup_value(g->ctx, g->file, g->symbols, &s->values[j]);
        bind__check_types(g->ctx, g->file, s->accept_key, lhs, rhs, s->values[j].pos);
        bind__check_operands(g, lhs, rhs, s->accept_key_pos, s->values[j].pos);
        bind__ir_push(g, BIND__OP_JUMP_EQ, lhs, rhs, label);
      }
      bind__ir_push(g, BIND__OP_ABORT, NULL, NULL, 0);
      bind__ir_push(g, BIND__OP_LABEL, NULL, NULL, label);
      break;
    }
    case BIND__S_IF: {
      if (i + 1 != b->count) {
        bind__fail(g->ctx, g->file, s->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "an if statement must be the last statement of its block");
      }
      uint32_t final_label = g->out->next_label++;
      for (size_t j = 0; j < s->branch_count; j++) {
        bind__gen_cond(g, &s->conds[j], &lhs, &rhs);
        uint32_t label = g->out->next_label++;
        bind__ir_push(g, s->conds[j].equal ? BIND__OP_JUMP_NE : BIND__OP_JUMP_EQ, lhs, rhs, label);
        bind__gen_block(g, &s->blocks[j]);
        bind__ir_push(g, BIND__OP_JUMP, NULL, NULL, final_label);
        bind__ir_push(g, BIND__OP_LABEL, NULL, NULL, label);
      }
      bind__gen_block(g, &s->else_block);
      bind__ir_push(g, BIND__OP_LABEL, NULL, NULL, final_label);
      break;
    }
    case BIND__S_FALSE:
      if (b->count != 1) {
        bind__fail(g->ctx, g->file, s->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "'false;' must be the only statement of its block");
      }
      bind__ir_push(g, BIND__OP_ABORT, NULL, NULL, 0);
      break;
    case BIND__S_TRUE:
      if (b->count != 1) {
        bind__fail(g->ctx, g->file, s->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "'true;' must be the only statement of its block");
      }
      break;
    }
  }
}

/* ---- encoder ---- */

typedef struct bind__obuf {
  bind__ctx *ctx;
  uint8_t *data;
  size_t len;
  size_t cap;
} bind__obuf;

static void bind__obuf_put(bind__obuf *o, const void *p, size_t n) {
  if (o->cap - o->len < n) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < n) {
      cap *= 2;
    }
    uint8_t *grown = bind__alloc(o->ctx, cap);
    if (o->len) {
      memcpy(grown, o->data, o->len);
    }
    o->data = grown;
    o->cap = cap;
  }
  memcpy(o->data + o->len, p, n);
  o->len += n;
}

static void bind__obuf_u8(bind__obuf *o, uint8_t v) { bind__obuf_put(o, &v, 1); }

static void bind__obuf_u32le(bind__obuf *o, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  bind__obuf_put(o, x, 4);
}

static void bind__obuf_u32be(bind__obuf *o, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  bind__obuf_put(o, x, 4);
}

typedef struct bind__symtab_enc {
  bind__map ids; /* text -> (void*)id */
  bind__obuf bytes;
  uint32_t next_id;
} bind__symtab_enc;

static uint32_t bind__intern(bind__symtab_enc *st, const char *text) {
  void *id = bind__map_get(&st->ids, text);
  if (id != NULL) {
    return (uint32_t)(uintptr_t)id;
  }
  uint32_t n = st->next_id++;
  bind__map_put(st->bytes.ctx, &st->ids, text, (void *)(uintptr_t)n);
  bind__obuf_u32le(&st->bytes, n);
  bind__obuf_put(&st->bytes, text, strlen(text) + 1);
  return n;
}

static void bind__encode_value(bind__obuf *o, bind__symtab_enc *st, const bind__sym *s) {
  /* The raw type of each symbol kind; a number key is the deprecated integer key. */
  static const uint8_t raw_type[] = {
      [BIND__SYM_DEPRECATED_KEY] = BIND__RAW_NUMBER,
      [BIND__SYM_KEY] = BIND__RAW_KEY,
      [BIND__SYM_NUMBER] = BIND__RAW_NUMBER,
      [BIND__SYM_STRING] = BIND__RAW_STRING,
      [BIND__SYM_BOOL] = BIND__RAW_BOOL,
      [BIND__SYM_ENUM] = BIND__RAW_ENUM,
  };
  uint32_t value;
  switch (s->kind) {
  case BIND__SYM_DEPRECATED_KEY:
    value = s->deprecated;
    break;
  case BIND__SYM_NUMBER:
    value = (uint32_t)s->number;
    break;
  case BIND__SYM_BOOL:
    value = s->boolean ? 1u : 0u;
    break;
  default: /* key, string, enum: a symbol id */
    value = bind__intern(st, s->text);
    break;
  }
  bind__obuf_u8(o, raw_type[s->kind]);
  bind__obuf_u32le(o, value);
}

static size_t bind__ir_size(uint8_t op) {
  switch (op) {
  case BIND__OP_EQUAL:
  case BIND__OP_INEQUAL:
    return 11;
  case BIND__OP_JUMP:
    return 5;
  case BIND__OP_JUMP_EQ:
  case BIND__OP_JUMP_NE:
    return 15;
  default:
    return 1;
  }
}

static void bind__encode_irlist(bind__ctx *ctx, const bind__irlist *l, bind__symtab_enc *st,
                                bind__obuf *o) {
  /* Pass 1: the byte offset of every label. */
  size_t nlabels = l->next_label ? l->next_label : 1;
  uint32_t *label_at = bind__alloc(ctx, nlabels * sizeof(*label_at));
  size_t at = 0;
  for (size_t i = 0; i < l->count; i++) {
    if (l->items[i].op == BIND__OP_LABEL) {
      label_at[l->items[i].label] = (uint32_t)at;
    }
    at += bind__ir_size(l->items[i].op);
  }
  /* Pass 2: emit; a jump's offset counts from its end to the landing pad. */
  size_t start = o->len;
  for (size_t i = 0; i < l->count; i++) {
    const bind__ir *ir = &l->items[i];
    bind__obuf_u8(o, ir->op);
    if (ir->op == BIND__OP_JUMP || ir->op == BIND__OP_JUMP_EQ || ir->op == BIND__OP_JUMP_NE) {
      size_t end = o->len - start - 1 + bind__ir_size(ir->op);
      bind__obuf_u32le(o, (uint32_t)(label_at[ir->label] - end));
    }
    if (ir->lhs != NULL) {
      bind__encode_value(o, st, ir->lhs);
      bind__encode_value(o, st, ir->rhs);
    }
  }
}

static void bind__emit_header(bind__obuf *o, const bind__symtab_enc *st, uint32_t magic,
                              const bind__obuf *body) {
  bind__obuf_u32be(o, BIND__MAGIC_BIND);
  bind__obuf_u32le(o, BIND__VERSION);
  bind__obuf_u8(o, 0); /* debug flag */
  bind__obuf_u32be(o, BIND__MAGIC_SYNB);
  bind__obuf_u32le(o, (uint32_t)st->bytes.len);
  if (st->bytes.len) {
    bind__obuf_put(o, st->bytes.data, st->bytes.len);
  }
  bind__obuf_u32be(o, magic);
  bind__obuf_u32le(o, (uint32_t)body->len);
  if (body->len) {
    bind__obuf_put(o, body->data, body->len);
  }
}

typedef struct bind__node_ir {
  const char *name;
  bind__node_kind kind;
  bind__irlist ir;
} bind__node_ir;

static void bind__gen_statements(bind__ctx *ctx, const bind__file *file, const bind__map *syms,
                                 const bind__block *b, bind__irlist *out) {
  bind__gen g = {ctx, file, syms, out};
  bind__gen_block(&g, b);
}

void bind__compile_file(bind__ctx *ctx, const bind__file *file,
                        const dfnet_bind_compile_options_t *opts, bind__compiled *out) {
  memset(out, 0, sizeof(*out));
  bind__tokens toks;
  bind__lex(ctx, file, &toks);
  bind__symtab_enc st = {0};
  st.bytes.ctx = ctx;
  st.next_id = 1;
  bind__obuf body = {ctx, NULL, 0, 0};
  bind__obuf all = {ctx, NULL, 0, 0};
  if (bind__is_composite(&toks)) {
    bind__composite_ast ast;
    bind__parse_composite(ctx, &toks, &ast);
    bind__symbols_build(ctx, file, opts, ast.usings, ast.using_count, &out->symbols);
    bind__check_string(&(bind__gen){ctx, file, NULL, NULL}, (bind__pos){1, 1, 0}, ast.name);
    out->composite = true;
    bind__node_ir *nodes = bind__alloc(ctx, ast.node_count * sizeof(*nodes));
    /* Emitted order: primary, additional, optional (Fuchsia encode_composite_to_bytecode). */
    static const bind__node_kind order[] = {BIND__NODE_PRIMARY, BIND__NODE_ADDITIONAL,
                                            BIND__NODE_OPTIONAL};
    size_t k = 0;
    for (size_t o = 0; o < 3; o++) {
      for (size_t i = 0; i < ast.node_count; i++) {
        if (ast.nodes[i].kind != order[o]) {
          continue;
        }
        bind__check_string(&(bind__gen){ctx, file, NULL, NULL}, ast.nodes[i].pos,
                           ast.nodes[i].name);
        nodes[k].name = ast.nodes[i].name;
        nodes[k].kind = ast.nodes[i].kind;
        bind__gen_statements(ctx, file, &out->symbols, &ast.nodes[i].statements, &nodes[k].ir);
        k++;
      }
    }
    bind__obuf_u32le(&body, bind__intern(&st, ast.name));
    for (size_t i = 0; i < ast.node_count; i++) {
      bind__obuf node = {ctx, NULL, 0, 0};
      uint32_t name_id = bind__intern(&st, nodes[i].name);
      bind__encode_irlist(ctx, &nodes[i].ir, &st, &node);
      bind__obuf_u8(&body, (uint8_t)nodes[i].kind);
      bind__obuf_u32le(&body, name_id);
      bind__obuf_u32le(&body, (uint32_t)node.len);
      if (node.len) {
        bind__obuf_put(&body, node.data, node.len);
      }
    }
    bind__emit_header(&all, &st, BIND__MAGIC_COMP, &body);
  } else {
    bind__rules_ast ast;
    bind__parse_rules(ctx, &toks, &ast);
    bind__symbols_build(ctx, file, opts, ast.usings, ast.using_count, &out->symbols);
    bind__irlist ir = {0};
    bind__gen g = {ctx, file, &out->symbols, &ir};
    if (opts && opts->disable_autobind) {
      /* Fuchsia SymbolicInstructionInfo::disable_autobind(): BIND_AUTOBIND == 0 first. */
      bind__sym *key = bind__map_get(&out->symbols, "fuchsia.BIND_AUTOBIND");
      bind__sym *zero = bind__alloc(ctx, sizeof(*zero));
      zero->kind = BIND__SYM_NUMBER;
      bind__ir_push(&g, BIND__OP_EQUAL, key, zero, 0);
    }
    bind__gen_block(&g, &ast.statements);
    bind__encode_irlist(ctx, &ir, &st, &body);
    bind__emit_header(&all, &st, BIND__MAGIC_INST, &body);
  }
  out->bytes = all.data;
  out->len = all.len;
}

typedef struct bind__compile_job {
  const dfnet_bind_source_t *rules;
  const dfnet_bind_compile_options_t *opts;
  uint8_t *bytes; /* malloc'd copy of the bytecode */
  size_t len;
} bind__compile_job;

static dfnet_status_t bind__compile_body(bind__ctx *ctx, void *arg) {
  bind__compile_job *job = arg;
  const dfnet_bind_source_t *rules = job->rules;
  bind__file file = {rules->path ? rules->path : "<input>", rules->text, rules->len};
  bind__compiled c;
  bind__compile_file(ctx, &file, job->opts, &c);
  job->bytes = malloc(c.len);
  if (job->bytes == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  memcpy(job->bytes, c.bytes, c.len);
  job->len = c.len;
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_bind_compile(const dfnet_bind_source_t *rules,
                                  const dfnet_bind_compile_options_t *opts, uint8_t **out,
                                  size_t *out_len, char **error) {
  *out = NULL;
  *out_len = 0;
  bind__compile_job job = {.rules = rules, .opts = opts};
  dfnet_status_t status = bind__ctx_run(bind__compile_body, &job, error);
  if (status == DFNET_STATUS_OK) {
    *out = job.bytes;
    *out_len = job.len;
  }
  return status;
}
