/* dfnet bind: library resolution and the symbol table.
 *
 * Source: Fuchsia src/devices/lib/bind/src/compiler/symbol_table.rs (construct_symbol_table,
 * find_qualified_identifier, get_aliases) and compiler/dependency_graph.rs. Rules:
 * - the deprecated keys (dfnet/bind_keys.h) are built in as fuchsia.BIND_*;
 * - a library's own keys are LIB.KEY; `extend` names a key qualified by a library the
 *   library uses (or its alias), or a fuchsia.BIND_* key;
 * - values are scoped by the library that declares them: LIB.KEY.VALUE, KEY being the
 *   last component of the key's name; an enum value's text is that qualified name;
 * - a library the rules use `as ALIAS` is known only by the alias.
 * Libraries reached through `using` are resolved depth-first, dependencies first; a cycle
 * is an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind_internal.h"
#include "dfnet/bind_keys.h"

typedef struct bind__lib_entry {
  bind__library_ast ast;
  bind__file file;
  int state; /* 0 = new, 1 = visiting, 2 = done */
} bind__lib_entry;

typedef struct bind__resolver {
  bind__ctx *ctx;
  const dfnet_bind_compile_options_t *opts;
  bind__map libs; /* name -> bind__lib_entry* */
  bind__lib_entry **order;
  size_t order_count;
  size_t order_cap;
} bind__resolver;

static bind__lib_entry *bind__parse_lib_text(bind__ctx *ctx, const char *path, const char *text,
                                             size_t len) {
  bind__lib_entry *e = bind__alloc(ctx, sizeof(*e));
  e->file.path = bind__strndup(ctx, path, strlen(path));
  e->file.text = text;
  e->file.len = len;
  bind__tokens toks;
  bind__lex(ctx, &e->file, &toks);
  bind__parse_library(ctx, &toks, &e->ast);
  return e;
}

/* Read DIR/NAME.bind into the arena; NULL when there is no such file. */
static bind__lib_entry *bind__load_from_dir(bind__ctx *ctx, const char *dir, const char *name) {
  char *path = bind__strcat3(ctx, dir, "/", bind__strcat3(ctx, name, ".bind", ""));
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *text = bind__alloc(ctx, cap);
  for (;;) {
    if (len == cap) {
      if (cap >= 16u * 1024u * 1024u) {
        fclose(f);
        bind__fail(ctx, NULL, (bind__pos){0, 0, 0}, DFNET_STATUS_INVALID_ARGUMENT,
                   "%s: library file too large", path);
      }
      char *grown = bind__alloc(ctx, cap * 2);
      memcpy(grown, text, len);
      text = grown;
      cap *= 2;
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      break;
    }
  }
  fclose(f);
  return bind__parse_lib_text(ctx, path, text, len);
}

static bind__lib_entry *bind__find_library(bind__resolver *r, const char *name) {
  bind__lib_entry *e = bind__map_get(&r->libs, name);
  if (e != NULL) {
    return e;
  }
  for (size_t i = 0; r->opts && i < r->opts->lib_dir_count; i++) {
    e = bind__load_from_dir(r->ctx, r->opts->lib_dirs[i], name);
    if (e != NULL) {
      if (strcmp(e->ast.name, name) != 0) {
        bind__fail(r->ctx, &e->file, e->ast.name_pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "file %s.bind declares library '%s', expected '%s'", name, e->ast.name, name);
      }
      bind__map_put(r->ctx, &r->libs, e->ast.name, e);
      return e;
    }
  }
  return NULL;
}

static void bind__visit(bind__resolver *r, const bind__file *from_file, const bind__using *u) {
  bind__lib_entry *e = bind__find_library(r, u->name);
  if (e == NULL) {
    bind__fail(r->ctx, from_file, u->pos, DFNET_STATUS_NOT_FOUND,
               "library '%s' not found (give it with --include or put %s.bind in a --lib-dir)",
               u->name, u->name);
  }
  if (e->state == 2) {
    return;
  }
  if (e->state == 1) {
    bind__fail(r->ctx, from_file, u->pos, DFNET_STATUS_INVALID_ARGUMENT,
               "dependency cycle: library '%s' uses itself through its dependencies", u->name);
  }
  e->state = 1;
  for (size_t i = 0; i < e->ast.using_count; i++) {
    bind__visit(r, &e->file, &e->ast.usings[i]);
  }
  e->state = 2;
  if (r->order_count == r->order_cap) {
    size_t cap = r->order_cap ? r->order_cap * 2 : 8;
    bind__lib_entry **grown = bind__alloc(r->ctx, cap * sizeof(*grown));
    if (r->order_count) {
      memcpy(grown, r->order, r->order_count * sizeof(*grown));
    }
    r->order = grown;
    r->order_cap = cap;
  }
  r->order[r->order_count++] = e;
}

static bind__sym *bind__new_sym(bind__ctx *ctx, bind__sym_kind kind) {
  bind__sym *s = bind__alloc(ctx, sizeof(*s));
  s->kind = kind;
  return s;
}

bind__sym *bind__sym_literal(bind__ctx *ctx, bind__sym_kind kind, uint64_t number, const char *text,
                             bool boolean) {
  bind__sym *s = bind__new_sym(ctx, kind);
  if (kind == BIND__SYM_NUMBER)
    s->number = number;
  else if (kind == BIND__SYM_BOOL)
    s->boolean = boolean;
  else
    s->text = text;
  return s;
}

static const char *bind__parent_of(bind__ctx *ctx, const char *name) {
  const char *dot = strrchr(name, '.');
  return dot ? bind__strndup(ctx, name, (size_t)(dot - name)) : NULL;
}

static const char *bind__last(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot ? dot + 1 : name;
}

/* Fuchsia find_qualified_identifier(): the key a declaration names. */
static const char *bind__qualify_decl(bind__ctx *ctx, const bind__lib_entry *lib,
                                      const bind__decl *d, const char *local_qualified) {
  const char *ns = bind__parent_of(ctx, d->name);
  if (ns != NULL) {
    if (!d->extends) {
      bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
                 "'%s' is qualified, so it must be declared with 'extend'", d->name);
    }
    if (strcmp(ns, "fuchsia") == 0) {
      return d->name;
    }
    for (size_t i = 0; i < lib->ast.using_count; i++) {
      const bind__using *u = &lib->ast.usings[i];
      if (strcmp(ns, u->name) == 0 || (u->alias && strcmp(ns, u->alias) == 0)) {
        return bind__strcat3(ctx, u->name, ".", bind__last(d->name));
      }
    }
    bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
               "cannot resolve '%s': '%s' is not a library this library uses", d->name, ns);
  }
  if (d->extends) {
    bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
               "'extend' needs a qualified key from a used library (e.g. "
               "'extend uint fuchsia.BIND_PROTOCOL'), not the local name '%s'",
               d->name);
  }
  return local_qualified;
}

/* The symbol kind of a library's values, by the type of their key (the parser accepts no
 * other type). */
static const bind__sym_kind sym_of_type[] = {
    [BIND__T_UINT] = BIND__SYM_NUMBER,
    [BIND__T_STRING] = BIND__SYM_STRING,
    [BIND__T_BOOL] = BIND__SYM_BOOL,
    [BIND__T_ENUM] = BIND__SYM_ENUM,
};

static void bind__add_library(bind__ctx *ctx, bind__map *table, const bind__lib_entry *lib,
                              const char *alias) {
  const char *name = lib->ast.name;
  for (size_t i = 0; i < lib->ast.decl_count; i++) {
    const bind__decl *d = &lib->ast.decls[i];
    const char *key_name = bind__last(d->name);
    const char *local_v = bind__strcat3(ctx, name, ".", key_name);
    const char *local_k = alias ? bind__strcat3(ctx, alias, ".", key_name) : local_v;
    const char *qualified_v = bind__qualify_decl(ctx, lib, d, local_v);
    const char *qualified_k = alias ? bind__qualify_decl(ctx, lib, d, local_k) : qualified_v;

    bind__sym *existing = bind__map_get(table, qualified_k);
    if (existing == NULL) {
      if (d->extends) {
        bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "cannot extend undeclared key '%s'", qualified_k);
      }
      bind__sym *k = bind__new_sym(ctx, BIND__SYM_KEY);
      k->key_type = d->type;
      k->text = qualified_v;
      bind__map_put(ctx, table, qualified_k, k);
    } else if (existing->kind == BIND__SYM_KEY) {
      if (!d->extends) {
        bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "key '%s' is already declared; use 'extend' to add values to it", qualified_k);
      }
      if (existing->key_type != d->type) {
        bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "type mismatch: '%s' is declared %s, extended as %s", qualified_k,
                   bind__vtype_name(existing->key_type), bind__vtype_name(d->type));
      }
    } else if (existing->kind == BIND__SYM_DEPRECATED_KEY) {
      if (d->type != BIND__T_UINT) {
        bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "type mismatch: '%s' is a built-in uint key, extended as %s", qualified_k,
                   bind__vtype_name(d->type));
      }
    } else {
      bind__fail(ctx, &lib->file, d->pos, DFNET_STATUS_INVALID_ARGUMENT,
                 "'%s' is a value, not a key", qualified_k);
    }

    for (size_t j = 0; j < d->value_count; j++) {
      const bind__lib_value *v = &d->values[j];
      const char *value_k = bind__strcat3(ctx, local_k, ".", v->name);
      if (bind__map_get(table, value_k) != NULL) {
        bind__fail(ctx, &lib->file, v->pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "'%s' is already declared", value_k);
      }
      /* an enum value's symbol is its qualified name */
      const char *text =
          d->type == BIND__T_ENUM ? bind__strcat3(ctx, local_v, ".", v->name) : v->text;
      bind__map_put(ctx, table, value_k,
                    bind__sym_literal(ctx, sym_of_type[d->type], v->number, text, v->boolean));
    }
  }
}

void bind__symbols_build(bind__ctx *ctx, const bind__file *rules_file,
                         const dfnet_bind_compile_options_t *opts, const bind__using *usings,
                         size_t using_count, bind__map *out) {
  bind__resolver r = {0};
  r.ctx = ctx;
  r.opts = opts;
  /* Every --include file is parsed (a broken one is an error, as in Fuchsia's bindc). */
  for (size_t i = 0; opts && i < opts->library_count; i++) {
    const dfnet_bind_source_t *src = &opts->libraries[i];
    bind__lib_entry *e =
        bind__parse_lib_text(ctx, src->path ? src->path : "<library>", src->text, src->len);
    bind__lib_entry *dup = bind__map_get(&r.libs, e->ast.name);
    if (dup != NULL) {
      bind__fail(ctx, &e->file, e->ast.name_pos, DFNET_STATUS_INVALID_ARGUMENT,
                 "library '%s' is given twice (also in %s)", e->ast.name, dup->file.path);
    }
    bind__map_put(ctx, &r.libs, e->ast.name, e);
  }
  for (size_t i = 0; i < using_count; i++) {
    for (size_t j = 0; j < i; j++) {
      if (strcmp(usings[i].name, usings[j].name) == 0) {
        bind__fail(ctx, rules_file, usings[i].pos, DFNET_STATUS_INVALID_ARGUMENT,
                   "library '%s' is used twice", usings[i].name);
      }
    }
    bind__visit(&r, rules_file, &usings[i]);
  }

  memset(out, 0, sizeof(*out));
  size_t key_count = 0;
  const dfnet_bind_key_entry_t *keys = dfnet_bind_keys(&key_count);
  for (size_t i = 0; i < key_count; i++) {
    bind__sym *s = bind__new_sym(ctx, BIND__SYM_DEPRECATED_KEY);
    s->deprecated = keys[i].value;
    s->text = keys[i].name;
    bind__map_put(ctx, out, keys[i].name, s);
  }
  for (size_t i = 0; i < r.order_count; i++) {
    const char *alias = NULL;
    for (size_t j = 0; j < using_count; j++) {
      if (strcmp(usings[j].name, r.order[i]->ast.name) == 0) {
        alias = usings[j].alias;
      }
    }
    bind__add_library(ctx, out, r.order[i], alias);
  }
}
