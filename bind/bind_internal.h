/* dfnet bind: what the compiler, decoder, matcher and dumper share (not public).
 *
 * The compiler side (lexer, parser, symbol table, code generation) allocates everything
 * from one arena and reports the first error by formatting it and longjmp-ing back to the
 * public entry point, which frees the arena: no partial state survives an error, and no
 * function in between needs an error path (the pattern of Lua's luaD_throw).
 *
 * Sources: Fuchsia src/devices/lib/bind/src/ (parser/, compiler/, bytecode_encoder/,
 * interpreter/), docs/spec/bind.md.
 */
#ifndef DFNET_BIND_INTERNAL_H
#define DFNET_BIND_INTERNAL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/bind.h"
#include "lib/arena.h"

/* ---- bytecode v2 constants (Fuchsia bytecode_constants.rs) ---- */
#define BIND__MAGIC_BIND 0x42494E44u /* "BIND", written big-endian */
#define BIND__MAGIC_SYNB 0x53594E42u /* "SYNB" */
#define BIND__MAGIC_INST 0x494E5354u /* "INST" */
#define BIND__MAGIC_COMP 0x434F4D50u /* "COMP" */
#define BIND__MAGIC_DEBG 0x44454247u /* "DEBG" */
#define BIND__VERSION 2u
#define BIND__MAX_STRING 255u

enum bind__op {
  BIND__OP_EQUAL = 0x01,   /* EqualCondition: continue iff lhs == rhs */
  BIND__OP_INEQUAL = 0x02, /* InequalCondition */
  BIND__OP_JUMP = 0x10,    /* unconditional jump */
  BIND__OP_JUMP_EQ = 0x11, /* JumpIfEqual */
  BIND__OP_JUMP_NE = 0x12, /* JumpIfNotEqual */
  BIND__OP_LABEL = 0x20,   /* jump landing pad */
  BIND__OP_ABORT = 0x30,
};

enum bind__raw_type {
  BIND__RAW_KEY = 0,
  BIND__RAW_NUMBER = 1,
  BIND__RAW_STRING = 2,
  BIND__RAW_BOOL = 3,
  BIND__RAW_ENUM = 4,
};

/* ---- growable byte buffer (malloc'd, not arena) ---- */
typedef struct bind__buf {
  uint8_t *data;
  size_t len;
  size_t cap;
  bool oom;
} bind__buf;

void bind__buf_put(bind__buf *b, const void *data, size_t n);
void bind__buf_u8(bind__buf *b, uint8_t v);
void bind__buf_u32le(bind__buf *b, uint32_t v);
void bind__buf_u32be(bind__buf *b, uint32_t v);
void bind__buf_printf(bind__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bind__buf_free(bind__buf *b);

/* ---- compile context: arena + error jump ---- */
typedef struct bind__pos {
  uint32_t line; /* 1-based; 0 = no position */
  uint32_t col;  /* 1-based byte column */
  uint32_t offset;
} bind__pos;

typedef struct bind__file {
  const char *path; /* for messages */
  const char *text;
  size_t len;
} bind__file;

typedef struct bind__ctx {
  dfnet_arena_t arena; /* lib/arena.h; blocks of BIND__ARENA_BLOCK */
  jmp_buf fail;
  char *error; /* malloc'd diagnostic after a failure */
  dfnet_status_t status;
} bind__ctx;

void *bind__alloc(bind__ctx *ctx, size_t n); /* zeroed; fails the context on OOM */
char *bind__strndup(bind__ctx *ctx, const char *s, size_t n);
char *bind__strcat3(bind__ctx *ctx, const char *a, const char *b, const char *c);
/* Free a heap-allocated context and its arena. When `error` is non-NULL it receives the
 * context's diagnostic (caller frees), else the diagnostic is freed. Entry points keep the
 * context on the heap so nothing they read after longjmp is an automatic variable changed
 * since setjmp (C11 7.13.2.1). */
void bind__ctx_free(bind__ctx *ctx, char **error);

/* Run body(ctx, arg) in a fresh context, the one home of the entry points' setjmp: a
 * bind__fail inside body lands here. Returns what body returns; or the failure's status
 * with its diagnostic in *error (caller frees; freed when error is NULL); or
 * RESOURCE_EXHAUSTED before body runs when no context could be allocated. *error is NULL
 * unless body failed. The arena is freed before this returns: body copies out (malloc)
 * what must outlive it. */
dfnet_status_t bind__ctx_run(dfnet_status_t (*body)(bind__ctx *ctx, void *arg), void *arg,
                             char **error);

/* Format "path:line:col: error: message\n<line>\n<caret>\n" (or "path: error: message"
 * without a position), store it in ctx->error and longjmp to ctx->fail. */
_Noreturn void bind__fail(bind__ctx *ctx, const bind__file *file, bind__pos pos,
                          dfnet_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Offset of the first byte that is not valid UTF-8 (overlong forms, surrogates and code
 * points above U+10FFFF are invalid), or n when all of s is valid. */
size_t bind__utf8_invalid_at(const uint8_t *s, size_t n);

/* ---- string -> pointer hash map (arena) ---- */
typedef struct bind__map_entry {
  const char *key;
  void *value;
} bind__map_entry;
typedef struct bind__map {
  bind__map_entry *slots;
  size_t cap; /* power of two */
  size_t count;
} bind__map;

void *bind__map_get(const bind__map *m, const char *key);
void bind__map_put(bind__ctx *ctx, bind__map *m, const char *key, void *value);
uint64_t bind__hash(const char *s);

/* ---- lexer ---- */
typedef enum bind__tok_kind {
  BIND__TOK_EOF = 0,
  BIND__TOK_IDENT, /* compound identifier: a.b.C */
  BIND__TOK_NUMBER,
  BIND__TOK_STRING, /* text is the raw content between the quotes */
  BIND__TOK_SEMI,
  BIND__TOK_LBRACE,
  BIND__TOK_RBRACE,
  BIND__TOK_COMMA,
  BIND__TOK_EQ,     /* == */
  BIND__TOK_NE,     /* != */
  BIND__TOK_ASSIGN, /* = */
} bind__tok_kind;

typedef struct bind__tok {
  bind__tok_kind kind;
  bind__pos pos;
  const char *text; /* arena, NUL-terminated */
  uint64_t number;
  bool compound; /* identifier with at least one '.' */
} bind__tok;

typedef struct bind__tokens {
  const bind__file *file;
  bind__tok *toks;
  size_t count;
  size_t next;
} bind__tokens;

void bind__lex(bind__ctx *ctx, const bind__file *file, bind__tokens *out);

/* ---- AST ---- */
/* A declared key's type; the same values as a property's dfnet_bind_value_type_t, so that
 * bind__vtype_name names both. */
typedef enum bind__vtype {
  BIND__T_UINT = 1,
  BIND__T_STRING = 2,
  BIND__T_BOOL = 3,
  BIND__T_ENUM = 4,
} bind__vtype;
_Static_assert(BIND__T_UINT == (int)DFNET_BIND_VALUE_UINT &&
                   BIND__T_STRING == (int)DFNET_BIND_VALUE_STRING &&
                   BIND__T_BOOL == (int)DFNET_BIND_VALUE_BOOL &&
                   BIND__T_ENUM == (int)DFNET_BIND_VALUE_ENUM,
               "bind__vtype and dfnet_bind_value_type_t share their values");

typedef struct bind__using {
  const char *name;  /* compound */
  const char *alias; /* or NULL */
  bind__pos pos;
} bind__using;

typedef enum bind__value_kind {
  BIND__V_NUMBER,
  BIND__V_STRING,
  BIND__V_BOOL,
  BIND__V_IDENT,
} bind__value_kind;

typedef struct bind__value {
  bind__value_kind kind;
  uint64_t number;
  bool boolean;
  const char *text; /* string content or identifier */
  bind__pos pos;
} bind__value;

typedef struct bind__cond {
  const char *lhs;
  bind__pos lhs_pos;
  bool equal; /* == (true) or != */
  bind__value rhs;
} bind__cond;

typedef enum bind__stmt_kind {
  BIND__S_COND,
  BIND__S_ACCEPT,
  BIND__S_IF,
  BIND__S_TRUE,
  BIND__S_FALSE,
} bind__stmt_kind;

typedef struct bind__stmt bind__stmt;
typedef struct bind__block {
  bind__stmt **stmts;
  size_t count;
} bind__block;

struct bind__stmt {
  bind__stmt_kind kind;
  bind__pos pos;
  bind__cond cond; /* S_COND */
  /* S_ACCEPT */
  const char *accept_key;
  bind__pos accept_key_pos;
  bind__value *values;
  size_t value_count;
  /* S_IF: conds[i] guards blocks[i]; else_block last */
  bind__cond *conds;
  bind__block *blocks;
  size_t branch_count;
  bind__block else_block;
};

typedef struct bind__rules_ast {
  bind__using *usings;
  size_t using_count;
  bind__block statements;
} bind__rules_ast;

typedef enum bind__node_kind {
  BIND__NODE_PRIMARY = 0x50,
  BIND__NODE_ADDITIONAL = 0x51,
  BIND__NODE_OPTIONAL = 0x52,
} bind__node_kind;

typedef struct bind__node_ast {
  bind__node_kind kind;
  const char *name;
  bind__pos pos;
  bind__block statements;
} bind__node_ast;

typedef struct bind__composite_ast {
  const char *name;
  bind__using *usings;
  size_t using_count;
  bind__node_ast *nodes; /* in source order */
  size_t node_count;
} bind__composite_ast;

typedef struct bind__lib_value {
  const char *name;
  bind__pos pos;
  uint64_t number;
  const char *text;
  bool boolean;
} bind__lib_value;

typedef struct bind__decl {
  bool extends;
  bind__vtype type;
  const char *name; /* as written, maybe qualified */
  bind__pos pos;
  bind__lib_value *values;
  size_t value_count;
} bind__decl;

typedef struct bind__library_ast {
  const bind__file *file;
  const char *name;
  bind__pos name_pos;
  bind__using *usings;
  size_t using_count;
  bind__decl *decls;
  size_t decl_count;
} bind__library_ast;

/* True when the file's first token is the keyword `composite`. */
bool bind__is_composite(bind__tokens *toks);
void bind__parse_rules(bind__ctx *ctx, bind__tokens *toks, bind__rules_ast *out);
void bind__parse_composite(bind__ctx *ctx, bind__tokens *toks, bind__composite_ast *out);
void bind__parse_library(bind__ctx *ctx, bind__tokens *toks, bind__library_ast *out);
/* Parse one bind-syntax value (tests.json / `match KEY=VALUE`): number, "string", true,
 * false or an identifier. */
void bind__parse_value_text(bind__ctx *ctx, const bind__file *file, bind__value *out);

/* "uint", "string", "bool", "enum"; "?" for anything else. */
const char *bind__vtype_name(bind__vtype t);

/* ---- symbol table (Fuchsia compiler/symbol_table.rs) ---- */
typedef enum bind__sym_kind {
  BIND__SYM_DEPRECATED_KEY,
  BIND__SYM_KEY,
  BIND__SYM_NUMBER,
  BIND__SYM_STRING,
  BIND__SYM_BOOL,
  BIND__SYM_ENUM,
} bind__sym_kind;

typedef struct bind__sym {
  bind__sym_kind kind;
  bind__vtype key_type; /* SYM_KEY */
  uint32_t deprecated;  /* SYM_DEPRECATED_KEY */
  uint64_t number;
  bool boolean;
  const char *text; /* SYM_KEY: qualified key name; SYM_STRING/SYM_ENUM: value text */
} bind__sym;

/* A new symbol for a literal: kind NUMBER (number), STRING or ENUM (text) or BOOL (boolean),
 * only that field set; in the arena (fails through ctx as bind__alloc). symbols.c. */
bind__sym *bind__sym_literal(bind__ctx *ctx, bind__sym_kind kind, uint64_t number, const char *text,
                             bool boolean);

typedef struct bind__libset {
  const dfnet_bind_compile_options_t *opts;
  bind__map by_name; /* library name -> bind__library_ast* (parsed --include files) */
} bind__libset;

/* Build the symbol table for a `using` list: the deprecated keys plus every library the
 * list reaches (resolved from opts->libraries, then opts->lib_dirs). */
void bind__symbols_build(bind__ctx *ctx, const bind__file *rules_file,
                         const dfnet_bind_compile_options_t *opts, const bind__using *usings,
                         size_t using_count, bind__map *out);

/* ---- compiler (compiler.c) ---- */
typedef struct bind__compiled {
  bind__map symbols; /* the symbol table the rules were compiled with */
  uint8_t *bytes;    /* arena */
  size_t len;
  bool composite;
} bind__compiled;

/* Compile one rules or composite rules file (fails through ctx). */
void bind__compile_file(bind__ctx *ctx, const bind__file *file,
                        const dfnet_bind_compile_options_t *opts, bind__compiled *out);
/* Symbol lookups with the compiler's diagnostics (fail through ctx). */
const bind__sym *bind__lookup_key(bind__ctx *ctx, const bind__file *file, const bind__map *symbols,
                                  const char *name, bind__pos pos);
const bind__sym *bind__lookup_value(bind__ctx *ctx, const bind__file *file,
                                    const bind__map *symbols, const bind__value *v);

/* ---- decoded program (program.c) ---- */
typedef struct bind__operand {
  uint8_t type; /* bind__raw_type */
  uint32_t raw;
  const char *text;            /* symbol text for key/string/enum */
  uint64_t hash;               /* of text; for a number key: of its deprecated name (0 if none) */
  const char *deprecated_name; /* number key: "fuchsia.BIND_..." or NULL */
} bind__operand;

typedef struct bind__inst {
  uint8_t op;
  uint32_t offset;      /* byte offset of the op in the instruction list */
  uint32_t file_offset; /* byte offset in the whole bytecode */
  uint32_t target;      /* jumps: index of the landing pad instruction */
  bind__operand lhs;
  bind__operand rhs;
} bind__inst;

typedef struct bind__code {
  bind__inst *insts;
  size_t count;
  uint32_t byte_len;
  uint32_t file_offset; /* of the first instruction byte */
  const char *name;     /* composite node name */
  bind__node_kind kind;
} bind__code;

struct dfnet_bind_program {
  uint8_t *bytes; /* owned copy; symbol strings point into it */
  size_t len;
  const char **symbols; /* symbols[id - 1] */
  uint32_t symbol_count;
  bool composite;
  const char *composite_name;
  bind__code *codes; /* plain: one; composite: primary, then additional/optional in order */
  size_t code_count;
};

/* Format one instruction the way Fuchsia's debug_dump.rs does ("fuchsia.BIND_PROTOCOL ==
 * 1", "Jump if Key(x) == \"y\" to ??", "Abort", "Label ??"). Never allocates. */
void bind__format_inst(const bind__inst *inst, char *out, size_t out_len);

#endif /* DFNET_BIND_INTERNAL_H */
