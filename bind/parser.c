/* dfnet bind: parser for rules files, composite rules files and bind libraries.
 *
 * Grammar: docs/spec/bind.md "Language"; Fuchsia src/devices/lib/bind/src/parser/
 * (bind_rules.rs, bind_composite.rs, bind_library.rs, common.rs). Keywords are
 * contextual, as in Fuchsia: `if`, `accept`, `true`, `false` start a statement only when
 * the identifier is not followed by `==` / `!=`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bind/bind_internal.h"

typedef struct bind__parser {
  bind__ctx *ctx;
  bind__tokens *toks;
} bind__parser;

static const bind__tok *bind__peek(bind__parser *p, size_t ahead) {
  size_t i = p->toks->next + ahead;
  if (i >= p->toks->count) {
    i = p->toks->count - 1; /* EOF */
  }
  return &p->toks->toks[i];
}

static const bind__tok *bind__take(bind__parser *p) {
  const bind__tok *t = bind__peek(p, 0);
  if (t->kind != BIND__TOK_EOF) {
    p->toks->next++;
  }
  return t;
}

static _Noreturn __attribute__((format(printf, 3, 4))) void
bind__fail_at(bind__parser *p, const bind__tok *t, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bind__fail(p->ctx, p->toks->file, t->pos, DFNET_STATUS_INVALID_ARGUMENT, "%s", msg);
}

static const char *bind__tok_desc(bind__parser *p, const bind__tok *t) {
  switch (t->kind) {
  case BIND__TOK_EOF:
    return "end of file";
  case BIND__TOK_STRING:
    return bind__strcat3(p->ctx, "\"", t->text, "\"");
  default:
    return bind__strcat3(p->ctx, "'", t->text, "'");
  }
}

static const bind__tok *bind__expect(bind__parser *p, bind__tok_kind kind, const char *what) {
  const bind__tok *t = bind__peek(p, 0);
  if (t->kind != kind) {
    bind__fail(p->ctx, p->toks->file, t->pos, DFNET_STATUS_INVALID_ARGUMENT,
               "expected %s, found %s", what, bind__tok_desc(p, t));
  }
  return bind__take(p);
}

static bool bind__is_word(const bind__tok *t, const char *word) {
  return t->kind == BIND__TOK_IDENT && strcmp(t->text, word) == 0;
}

static void bind__expect_word(bind__parser *p, const char *word) {
  const bind__tok *t = bind__peek(p, 0);
  if (!bind__is_word(t, word)) {
    bind__fail(p->ctx, p->toks->file, t->pos, DFNET_STATUS_INVALID_ARGUMENT,
               "expected '%s', found %s", word, bind__tok_desc(p, t));
  }
  bind__take(p);
}

/* Grow an arena array by one element; returns the new element. */
static void *bind__push(bind__ctx *ctx, void **items, size_t *count, size_t *cap, size_t size) {
  if (*count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    void *grown = bind__alloc(ctx, ncap * size);
    if (*count) {
      memcpy(grown, *items, *count * size);
    }
    *items = grown;
    *cap = ncap;
  }
  return (char *)*items + (*count)++ * size;
}

/* using-list = ( "using" compound-identifier [ "as" IDENTIFIER ] ";" )* */
static void bind__parse_usings(bind__parser *p, bind__using **out, size_t *out_count) {
  size_t cap = 0;
  *out = NULL;
  *out_count = 0;
  while (bind__is_word(bind__peek(p, 0), "using")) {
    bind__take(p);
    const bind__tok *name = bind__expect(p, BIND__TOK_IDENT, "a library name after 'using'");
    bind__using *u = bind__push(p->ctx, (void **)out, out_count, &cap, sizeof(**out));
    u->name = name->text;
    u->pos = name->pos;
    if (bind__is_word(bind__peek(p, 0), "as")) {
      bind__take(p);
      const bind__tok *alias = bind__expect(p, BIND__TOK_IDENT, "an alias after 'as'");
      if (alias->compound) {
        bind__fail_at(p, alias, "an alias must be a single identifier, not '%s'", alias->text);
      }
      u->alias = alias->text;
    }
    bind__expect(p, BIND__TOK_SEMI, "';' after the using declaration");
  }
}

/* value = compound-identifier | STRING | NUMBER | "true" | "false" */
static void bind__parse_value(bind__parser *p, bind__value *v) {
  const bind__tok *t = bind__peek(p, 0);
  v->pos = t->pos;
  switch (t->kind) {
  case BIND__TOK_NUMBER:
    v->kind = BIND__V_NUMBER;
    v->number = t->number;
    break;
  case BIND__TOK_STRING:
    v->kind = BIND__V_STRING;
    v->text = t->text;
    break;
  case BIND__TOK_IDENT:
    if (strcmp(t->text, "true") == 0 || strcmp(t->text, "false") == 0) {
      v->kind = BIND__V_BOOL;
      v->boolean = t->text[0] == 't';
    } else {
      v->kind = BIND__V_IDENT;
      v->text = t->text;
    }
    break;
  default:
    bind__fail_at(p, t, "expected a value (number, string, true, false or identifier), found %s",
                  bind__tok_desc(p, t));
  }
  bind__take(p);
}

/* condition = compound-identifier ( "==" | "!=" ) value */
static void bind__parse_cond(bind__parser *p, bind__cond *c) {
  const bind__tok *lhs = bind__expect(p, BIND__TOK_IDENT, "a key");
  c->lhs = lhs->text;
  c->lhs_pos = lhs->pos;
  const bind__tok *op = bind__peek(p, 0);
  if (op->kind != BIND__TOK_EQ && op->kind != BIND__TOK_NE) {
    bind__fail_at(p, op, "expected '==' or '!=', found %s", bind__tok_desc(p, op));
  }
  bind__take(p);
  c->equal = op->kind == BIND__TOK_EQ;
  bind__parse_value(p, &c->rhs);
}

static void bind__parse_block(bind__parser *p, bind__block *b);

static bind__stmt *bind__parse_statement(bind__parser *p) {
  const bind__tok *t = bind__peek(p, 0);
  const bind__tok *t1 = bind__peek(p, 1);
  bind__stmt *s = bind__alloc(p->ctx, sizeof(*s));
  s->pos = t->pos;
  if (t->kind != BIND__TOK_IDENT) {
    bind__fail_at(p, t,
                  "expected a statement (KEY == VALUE;, KEY != VALUE;, accept, if, true; or "
                  "false;), found %s",
                  bind__tok_desc(p, t));
  }
  if (t1->kind == BIND__TOK_EQ || t1->kind == BIND__TOK_NE) {
    s->kind = BIND__S_COND;
    bind__parse_cond(p, &s->cond);
    bind__expect(p, BIND__TOK_SEMI, "';' after the condition");
    return s;
  }
  if (bind__is_word(t, "true") || bind__is_word(t, "false")) {
    s->kind = t->text[0] == 't' ? BIND__S_TRUE : BIND__S_FALSE;
    bind__take(p);
    bind__expect(p, BIND__TOK_SEMI,
                 s->kind == BIND__S_TRUE ? "';' after 'true'" : "';' after 'false'");
    return s;
  }
  if (bind__is_word(t, "accept")) {
    s->kind = BIND__S_ACCEPT;
    bind__take(p);
    const bind__tok *key = bind__expect(p, BIND__TOK_IDENT, "a key after 'accept'");
    s->accept_key = key->text;
    s->accept_key_pos = key->pos;
    bind__expect(p, BIND__TOK_LBRACE, "'{' to start the accept list");
    size_t cap = 0;
    do {
      if (s->value_count > 0 && bind__peek(p, 0)->kind == BIND__TOK_RBRACE) {
        break; /* trailing comma */
      }
      bind__value *v =
          bind__push(p->ctx, (void **)&s->values, &s->value_count, &cap, sizeof(*s->values));
      bind__parse_value(p, v);
    } while (bind__peek(p, 0)->kind == BIND__TOK_COMMA && bind__take(p));
    bind__expect(p, BIND__TOK_RBRACE, "',' or '}' in the accept list");
    return s;
  }
  if (bind__is_word(t, "if")) {
    s->kind = BIND__S_IF;
    size_t cap_c = 0, cap_b = 0, count_b = 0;
    bind__take(p);
    for (;;) {
      bind__cond *c =
          bind__push(p->ctx, (void **)&s->conds, &s->branch_count, &cap_c, sizeof(*s->conds));
      bind__parse_cond(p, c);
      bind__block *b =
          bind__push(p->ctx, (void **)&s->blocks, &count_b, &cap_b, sizeof(*s->blocks));
      bind__parse_block(p, b);
      const bind__tok *e = bind__peek(p, 0);
      if (!bind__is_word(e, "else")) {
        bind__fail_at(p, e, "an if statement needs an else block: expected 'else', found %s",
                      bind__tok_desc(p, e));
      }
      bind__take(p);
      if (bind__is_word(bind__peek(p, 0), "if")) {
        bind__take(p);
        continue;
      }
      bind__parse_block(p, &s->else_block);
      return s;
    }
  }
  bind__fail_at(p, t1, "expected '==' or '!=', found %s", bind__tok_desc(p, t1));
}

/* "{" statement+ "}" */
static void bind__parse_block(bind__parser *p, bind__block *b) {
  bind__expect(p, BIND__TOK_LBRACE, "'{'");
  size_t cap = 0;
  const bind__tok *t = bind__peek(p, 0);
  if (t->kind == BIND__TOK_RBRACE) {
    bind__fail_at(p, t, "%s", "a block needs at least one statement");
  }
  while (bind__peek(p, 0)->kind != BIND__TOK_RBRACE) {
    if (bind__peek(p, 0)->kind == BIND__TOK_EOF) {
      bind__fail_at(p, bind__peek(p, 0), "expected '}' to close the block, found %s",
                    "end of file");
    }
    bind__stmt **slot = bind__push(p->ctx, (void **)&b->stmts, &b->count, &cap, sizeof(*b->stmts));
    *slot = bind__parse_statement(p);
  }
  bind__take(p);
}

bool bind__is_composite(bind__tokens *toks) {
  const bind__tok *t = &toks->toks[0];
  const bind__tok *t1 = toks->count > 1 ? &toks->toks[1] : t;
  return bind__is_word(t, "composite") && t1->kind != BIND__TOK_EQ && t1->kind != BIND__TOK_NE;
}

/* rule = using-list statement+ */
void bind__parse_rules(bind__ctx *ctx, bind__tokens *toks, bind__rules_ast *out) {
  bind__parser p = {ctx, toks};
  memset(out, 0, sizeof(*out));
  bind__parse_usings(&p, &out->usings, &out->using_count);
  size_t cap = 0;
  if (bind__peek(&p, 0)->kind == BIND__TOK_EOF) {
    bind__fail_at(&p, bind__peek(&p, 0), "%s", "bind rules need at least one statement");
  }
  while (bind__peek(&p, 0)->kind != BIND__TOK_EOF) {
    const bind__tok *t = bind__peek(&p, 0);
    if (bind__is_word(t, "using")) {
      bind__fail_at(&p, t, "%s", "'using' must come before the first statement");
    }
    bind__stmt **slot = bind__push(ctx, (void **)&out->statements.stmts, &out->statements.count,
                                   &cap, sizeof(bind__stmt *));
    *slot = bind__parse_statement(&p);
  }
}

/* composite = "composite" compound-identifier ";" using-list node+
 * node = [ "primary" | "optional" ] ( "node" | "parent" ) STRING block */
void bind__parse_composite(bind__ctx *ctx, bind__tokens *toks, bind__composite_ast *out) {
  bind__parser p = {ctx, toks};
  memset(out, 0, sizeof(*out));
  bind__expect_word(&p, "composite");
  out->name = bind__expect(&p, BIND__TOK_IDENT, "the composite's name after 'composite'")->text;
  bind__expect(&p, BIND__TOK_SEMI, "';' after the composite's name");
  bind__parse_usings(&p, &out->usings, &out->using_count);
  size_t cap = 0;
  bool have_primary = false;
  while (bind__peek(&p, 0)->kind != BIND__TOK_EOF) {
    const bind__tok *t = bind__peek(&p, 0);
    bind__node_kind kind = BIND__NODE_ADDITIONAL;
    if (bind__is_word(t, "primary") || bind__is_word(t, "optional")) {
      kind = t->text[0] == 'p' ? BIND__NODE_PRIMARY : BIND__NODE_OPTIONAL;
      bind__take(&p);
    }
    const bind__tok *kw = bind__peek(&p, 0);
    if (!bind__is_word(kw, "node") && !bind__is_word(kw, "parent")) {
      bind__fail_at(&p, kw, "expected 'node', 'primary node' or 'optional node', found %s",
                    bind__tok_desc(&p, kw));
    }
    bind__take(&p);
    const bind__tok *name = bind__peek(&p, 0);
    if (name->kind != BIND__TOK_STRING) {
      bind__fail_at(&p, name, "expected the node's name as a string, found %s",
                    bind__tok_desc(&p, name));
    }
    bind__take(&p);
    if (name->text[0] == '\0') {
      bind__fail_at(&p, name, "%s", "a node name cannot be empty");
    }
    for (size_t i = 0; i < out->node_count; i++) {
      if (strcmp(out->nodes[i].name, name->text) == 0) {
        bind__fail_at(&p, name, "duplicate node name \"%s\"", name->text);
      }
    }
    if (kind == BIND__NODE_PRIMARY) {
      if (have_primary) {
        bind__fail_at(&p, t, "%s", "a composite has exactly one primary node; this is a second");
      }
      have_primary = true;
    }
    bind__node_ast *n =
        bind__push(ctx, (void **)&out->nodes, &out->node_count, &cap, sizeof(*out->nodes));
    n->kind = kind;
    n->name = name->text;
    n->pos = name->pos;
    bind__parse_block(&p, &n->statements);
  }
  if (out->node_count == 0) {
    bind__fail_at(&p, bind__peek(&p, 0), "%s", "a composite needs at least one node");
  }
  if (!have_primary) {
    bind__fail(ctx, toks->file, out->nodes[0].pos, DFNET_STATUS_INVALID_ARGUMENT,
               "a composite needs exactly one primary node ('primary node \"NAME\" { ... }')");
  }
}

/* library = "library" compound-identifier ";" using-list declaration*
 * declaration = [ "extend" ] type compound-identifier [ "{" values "}" ] ";" */
static void bind__parse_decl_values(bind__parser *p, bind__decl *d) {
  size_t cap = 0;
  bind__take(p); /* { */
  do {
    if (d->value_count > 0 && bind__peek(p, 0)->kind == BIND__TOK_RBRACE) {
      break; /* trailing comma */
    }
    const bind__tok *name = bind__expect(p, BIND__TOK_IDENT, "a value name");
    if (name->compound) {
      bind__fail_at(p, name, "a value name must be a single identifier, not '%s'", name->text);
    }
    for (size_t i = 0; i < d->value_count; i++) {
      if (strcmp(d->values[i].name, name->text) == 0) {
        bind__fail_at(p, name, "duplicate value '%s'", name->text);
      }
    }
    bind__lib_value *v =
        bind__push(p->ctx, (void **)&d->values, &d->value_count, &cap, sizeof(*d->values));
    v->name = name->text;
    v->pos = name->pos;
    if (d->type == BIND__T_ENUM) {
      continue;
    }
    bind__expect(p, BIND__TOK_ASSIGN, "'=' after the value name");
    const bind__tok *lit = bind__peek(p, 0);
    if (d->type == BIND__T_UINT && lit->kind == BIND__TOK_NUMBER) {
      v->number = lit->number;
    } else if (d->type == BIND__T_STRING && lit->kind == BIND__TOK_STRING) {
      v->text = lit->text;
    } else if (d->type == BIND__T_BOOL &&
               (bind__is_word(lit, "true") || bind__is_word(lit, "false"))) {
      v->boolean = lit->text[0] == 't';
    } else {
      bind__fail(p->ctx, p->toks->file, lit->pos, DFNET_STATUS_INVALID_ARGUMENT,
                 "expected a %s literal for a %s key, found %s", bind__vtype_name(d->type),
                 bind__vtype_name(d->type), bind__tok_desc(p, lit));
    }
    bind__take(p);
  } while (bind__peek(p, 0)->kind == BIND__TOK_COMMA && bind__take(p));
  bind__expect(p, BIND__TOK_RBRACE, "',' or '}' in the value list");
}

void bind__parse_library(bind__ctx *ctx, bind__tokens *toks, bind__library_ast *out) {
  bind__parser p = {ctx, toks};
  memset(out, 0, sizeof(*out));
  out->file = toks->file;
  bind__expect_word(&p, "library");
  const bind__tok *name = bind__expect(&p, BIND__TOK_IDENT, "the library name");
  out->name = name->text;
  out->name_pos = name->pos;
  bind__expect(&p, BIND__TOK_SEMI, "';' after the library name");
  bind__parse_usings(&p, &out->usings, &out->using_count);
  size_t cap = 0;
  static const struct {
    const char *word;
    bind__vtype type;
  } types[] = {{"uint", BIND__T_UINT},
               {"string", BIND__T_STRING},
               {"bool", BIND__T_BOOL},
               {"enum", BIND__T_ENUM}};
  while (bind__peek(&p, 0)->kind != BIND__TOK_EOF) {
    bind__decl *d =
        bind__push(ctx, (void **)&out->decls, &out->decl_count, &cap, sizeof(*out->decls));
    d->pos = bind__peek(&p, 0)->pos;
    if (bind__is_word(bind__peek(&p, 0), "extend")) {
      d->extends = true;
      bind__take(&p);
    }
    const bind__tok *ty = bind__peek(&p, 0);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
      if (bind__is_word(ty, types[i].word)) {
        d->type = types[i].type;
      }
    }
    if (d->type == 0) {
      bind__fail_at(&p, ty, "expected a type (uint, string, bool or enum), found %s",
                    bind__tok_desc(&p, ty));
    }
    bind__take(&p);
    const bind__tok *key = bind__expect(&p, BIND__TOK_IDENT, "the key's name");
    d->name = key->text;
    d->pos = key->pos;
    if (bind__peek(&p, 0)->kind == BIND__TOK_LBRACE) {
      bind__parse_decl_values(&p, d);
    }
    bind__expect(&p, BIND__TOK_SEMI, "';' after the declaration");
  }
}

void bind__parse_value_text(bind__ctx *ctx, const bind__file *file, bind__value *out) {
  bind__tokens toks;
  bind__lex(ctx, file, &toks);
  bind__parser p = {ctx, &toks};
  bind__parse_value(&p, out);
  const bind__tok *t = bind__peek(&p, 0);
  if (t->kind != BIND__TOK_EOF) {
    bind__fail_at(&p, t, "unexpected %s after the value", bind__tok_desc(&p, t));
  }
}
