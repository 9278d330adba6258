/* dfnet bind: lexer for rules, composite rules and library files.
 *
 * Lexical rules from Fuchsia src/devices/lib/bind/src/parser/common.rs (docs/spec/bind.md
 * "Lexical"): IDENTIFIER [a-zA-Z]([a-zA-Z0-9_]*[a-zA-Z0-9])?, joined by '.' into compound
 * identifiers (no spaces around the dots); NUMBER decimal or 0x hex, up to u64; STRING
 * "..." where a backslash escapes '"' or '\' and the text is kept as written (Fuchsia
 * keeps the escapes in the symbol); comments // to end of line and nested block comments.
 */
#include <string.h>

#include "bind/bind_internal.h"

typedef struct bind__lexer {
  bind__ctx *ctx;
  const bind__file *file;
  size_t i;
  uint32_t line;
  size_t line_start;
} bind__lexer;

static bind__pos bind__lexer_pos(const bind__lexer *lx, size_t at) {
  bind__pos p = {lx->line, (uint32_t)(at - lx->line_start + 1), (uint32_t)at};
  return p;
}

static bool bind__is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool bind__is_digit(char c) { return c >= '0' && c <= '9'; }
static bool bind__is_alnum(char c) { return bind__is_alpha(c) || bind__is_digit(c); }
static int bind__hex_val(char c) {
  if (bind__is_digit(c)) {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

static void bind__newline(bind__lexer *lx, size_t at) {
  lx->line++;
  lx->line_start = at + 1;
}

/* Skip whitespace and comments. */
static void bind__skip(bind__lexer *lx) {
  const char *t = lx->file->text;
  size_t n = lx->file->len;
  while (lx->i < n) {
    char c = t[lx->i];
    if (c == '\n') {
      bind__newline(lx, lx->i);
      lx->i++;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      lx->i++;
    } else if (c == '/' && lx->i + 1 < n && t[lx->i + 1] == '/') {
      while (lx->i < n && t[lx->i] != '\n') {
        lx->i++;
      }
    } else if (c == '/' && lx->i + 1 < n && t[lx->i + 1] == '*') {
      bind__pos start = bind__lexer_pos(lx, lx->i);
      unsigned depth = 1;
      lx->i += 2;
      while (lx->i < n && depth > 0) {
        if (t[lx->i] == '/' && lx->i + 1 < n && t[lx->i + 1] == '*') {
          depth++;
          lx->i += 2;
        } else if (t[lx->i] == '*' && lx->i + 1 < n && t[lx->i + 1] == '/') {
          depth--;
          lx->i += 2;
        } else {
          if (t[lx->i] == '\n') {
            bind__newline(lx, lx->i);
          }
          lx->i++;
        }
      }
      if (depth > 0) {
        bind__fail(lx->ctx, lx->file, start, DFNET_STATUS_INVALID_ARGUMENT, "unterminated comment");
      }
    } else {
      return;
    }
  }
}

static void bind__lex_ident(bind__lexer *lx, bind__tok *tok) {
  const char *t = lx->file->text;
  size_t n = lx->file->len;
  size_t start = lx->i;
  for (;;) {
    lx->i++; /* first letter */
    while (lx->i < n && (bind__is_alnum(t[lx->i]) || t[lx->i] == '_')) {
      lx->i++;
    }
    if (t[lx->i - 1] == '_') {
      bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, lx->i - 1), DFNET_STATUS_INVALID_ARGUMENT,
                 "an identifier cannot end with '_'");
    }
    if (lx->i + 1 < n && t[lx->i] == '.' && bind__is_alpha(t[lx->i + 1])) {
      tok->compound = true;
      lx->i++;
      continue;
    }
    if (lx->i < n && t[lx->i] == '.') {
      bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, lx->i + 1), DFNET_STATUS_INVALID_ARGUMENT,
                 "expected an identifier after '.' (identifiers start with a letter)");
    }
    break;
  }
  tok->kind = BIND__TOK_IDENT;
  tok->text = bind__strndup(lx->ctx, t + start, lx->i - start);
}

static void bind__lex_number(bind__lexer *lx, bind__tok *tok) {
  const char *t = lx->file->text;
  size_t n = lx->file->len;
  size_t start = lx->i;
  uint64_t v = 0;
  bool overflow = false;
  if (t[lx->i] == '0' && lx->i + 1 < n && t[lx->i + 1] == 'x') {
    lx->i += 2;
    if (lx->i >= n || bind__hex_val(t[lx->i]) < 0) {
      bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, start), DFNET_STATUS_INVALID_ARGUMENT,
                 "expected hex digits after '0x'");
    }
    while (lx->i < n && bind__hex_val(t[lx->i]) >= 0) {
      if (v >> 60) {
        overflow = true;
      }
      v = (v << 4) | (uint64_t)bind__hex_val(t[lx->i]);
      lx->i++;
    }
  } else {
    while (lx->i < n && bind__is_digit(t[lx->i])) {
      uint64_t d = (uint64_t)(t[lx->i] - '0');
      if (v > (UINT64_MAX - d) / 10) {
        overflow = true;
      }
      v = v * 10 + d;
      lx->i++;
    }
  }
  if (overflow) {
    bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, start), DFNET_STATUS_INVALID_ARGUMENT,
               "number does not fit in 64 bits");
  }
  if (lx->i < n && (bind__is_alnum(t[lx->i]) || t[lx->i] == '_')) {
    bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, lx->i), DFNET_STATUS_INVALID_ARGUMENT,
               "invalid character '%c' in number", t[lx->i]);
  }
  tok->kind = BIND__TOK_NUMBER;
  tok->number = v;
  tok->text = bind__strndup(lx->ctx, t + start, lx->i - start);
}

static void bind__lex_string(bind__lexer *lx, bind__tok *tok) {
  const char *t = lx->file->text;
  size_t n = lx->file->len;
  bind__pos start_pos = bind__lexer_pos(lx, lx->i);
  size_t start = ++lx->i;
  for (;;) {
    if (lx->i >= n) {
      bind__fail(lx->ctx, lx->file, start_pos, DFNET_STATUS_INVALID_ARGUMENT,
                 "unterminated string");
    }
    char c = t[lx->i];
    if (c == '"') {
      break;
    }
    if (c == '\0') {
      bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, lx->i), DFNET_STATUS_INVALID_ARGUMENT,
                 "NUL byte in string");
    }
    if (c == '\\') {
      if (lx->i + 1 >= n || (t[lx->i + 1] != '"' && t[lx->i + 1] != '\\')) {
        bind__fail(lx->ctx, lx->file, bind__lexer_pos(lx, lx->i), DFNET_STATUS_INVALID_ARGUMENT,
                   "only \\\" and \\\\ may be escaped");
      }
      lx->i += 2;
      continue;
    }
    if (c == '\n') {
      bind__newline(lx, lx->i);
    }
    lx->i++;
  }
  tok->kind = BIND__TOK_STRING;
  tok->text = bind__strndup(lx->ctx, t + start, lx->i - start);
  lx->i++; /* closing quote */
}

void bind__lex(bind__ctx *ctx, const bind__file *file, bind__tokens *out) {
  bind__lexer lx = {ctx, file, 0, 1, 0};
  /* Source files are UTF-8 (Fuchsia reads them into a Rust String); symbols must be too. */
  size_t bad = bind__utf8_invalid_at((const uint8_t *)file->text, file->len);
  if (bad != file->len) {
    for (size_t i = 0; i < bad; i++) {
      if (file->text[i] == '\n') {
        bind__newline(&lx, i);
      }
    }
    bind__fail(ctx, file, bind__lexer_pos(&lx, bad), DFNET_STATUS_INVALID_ARGUMENT,
               "invalid UTF-8 (byte 0x%02x)", (unsigned char)file->text[bad]);
  }
  size_t cap = 64, count = 0;
  bind__tok *toks = bind__alloc(ctx, cap * sizeof(*toks));
  for (;;) {
    bind__skip(&lx);
    if (count == cap) {
      bind__tok *grown = bind__alloc(ctx, cap * 2 * sizeof(*toks));
      memcpy(grown, toks, cap * sizeof(*toks));
      toks = grown;
      cap *= 2;
    }
    bind__tok *tok = &toks[count++];
    memset(tok, 0, sizeof(*tok));
    tok->pos = bind__lexer_pos(&lx, lx.i);
    if (lx.i >= file->len) {
      tok->kind = BIND__TOK_EOF;
      tok->text = "end of file";
      break;
    }
    const char *t = file->text;
    char c = t[lx.i];
    char c2 = lx.i + 1 < file->len ? t[lx.i + 1] : '\0';
    if (bind__is_alpha(c)) {
      bind__lex_ident(&lx, tok);
    } else if (bind__is_digit(c)) {
      bind__lex_number(&lx, tok);
    } else if (c == '"') {
      bind__lex_string(&lx, tok);
    } else if (c == '=' && c2 == '=') {
      tok->kind = BIND__TOK_EQ;
      tok->text = "==";
      lx.i += 2;
    } else if (c == '!' && c2 == '=') {
      tok->kind = BIND__TOK_NE;
      tok->text = "!=";
      lx.i += 2;
    } else {
      static const struct {
        char c;
        bind__tok_kind kind;
        const char *text;
      } punct[] = {{';', BIND__TOK_SEMI, ";"},
                   {'{', BIND__TOK_LBRACE, "{"},
                   {'}', BIND__TOK_RBRACE, "}"},
                   {',', BIND__TOK_COMMA, ","},
                   {'=', BIND__TOK_ASSIGN, "="}};
      bool found = false;
      for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++) {
        if (punct[i].c == c) {
          tok->kind = punct[i].kind;
          tok->text = punct[i].text;
          found = true;
          break;
        }
      }
      if (!found) {
        if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
          bind__fail(ctx, file, tok->pos, DFNET_STATUS_INVALID_ARGUMENT,
                     "unexpected character '%c'", c);
        }
        bind__fail(ctx, file, tok->pos, DFNET_STATUS_INVALID_ARGUMENT, "unexpected byte 0x%02x",
                   (unsigned char)c);
      }
      lx.i++;
    }
  }
  out->file = file;
  out->toks = toks;
  out->count = count;
  out->next = 0;
}
