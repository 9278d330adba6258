/* dfnet bind: the compile context's arena (lib/arena.h, failing the context when out of
 * memory), byte buffer, string map and error formatting for the compiler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "bind/bind_internal.h"

#define BIND__ARENA_BLOCK (64u * 1024u)

static void bind__oom(bind__ctx *ctx) {
  free(ctx->error);
  ctx->error = NULL; /* "out of memory" is carried by the status */
  ctx->status = DFNET_STATUS_RESOURCE_EXHAUSTED;
  longjmp(ctx->fail, 1);
}

void *bind__alloc(bind__ctx *ctx, size_t n) {
  void *p = dfnet_arena_alloc(&ctx->arena, n);
  if (p == NULL) {
    bind__oom(ctx);
  }
  return p;
}

char *bind__strndup(bind__ctx *ctx, const char *s, size_t n) {
  char *p = dfnet_arena_strndup(&ctx->arena, s, n);
  if (p == NULL) {
    bind__oom(ctx);
  }
  return p;
}

char *bind__strcat3(bind__ctx *ctx, const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *p = bind__alloc(ctx, la + lb + lc + 1);
  memcpy(p, a, la);
  memcpy(p + la, b, lb);
  memcpy(p + la + lb, c, lc);
  p[la + lb + lc] = '\0';
  return p;
}

void bind__ctx_free(bind__ctx *ctx, char **error) {
  dfnet_arena_free(&ctx->arena);
  if (error) {
    *error = ctx->error;
  } else {
    free(ctx->error);
  }
  free(ctx);
}

dfnet_status_t bind__ctx_run(dfnet_status_t (*body)(bind__ctx *ctx, void *arg), void *arg,
                             char **error) {
  if (error) {
    *error = NULL;
  }
  bind__ctx *const ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  ctx->arena.block_min = BIND__ARENA_BLOCK;
  if (setjmp(ctx->fail) != 0) {
    dfnet_status_t status = ctx->status;
    bind__ctx_free(ctx, error);
    return status;
  }
  dfnet_status_t status = body(ctx, arg);
  bind__ctx_free(ctx, NULL);
  return status;
}

/* ---- byte buffer ---- */

static bool bind__buf_reserve(bind__buf *b, size_t extra) {
  if (b->oom || extra > SIZE_MAX - b->len) {
    b->oom = true;
    return false;
  }
  uint8_t *p = dfnet_array_reserve(b->data, b->len + extra, &b->cap, 1, 256);
  if (p == NULL) {
    b->oom = true;
    return false;
  }
  b->data = p;
  return true;
}

void bind__buf_put(bind__buf *b, const void *data, size_t n) {
  if (n == 0 || !bind__buf_reserve(b, n)) {
    return;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

void bind__buf_u8(bind__buf *b, uint8_t v) { bind__buf_put(b, &v, 1); }

void bind__buf_u32le(bind__buf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  bind__buf_put(b, x, 4);
}

void bind__buf_u32be(bind__buf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  bind__buf_put(b, x, 4);
}

void bind__buf_printf(bind__buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !bind__buf_reserve(b, (size_t)n + 1)) {
    va_end(ap2);
    return;
  }
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
  b->data[b->len] = '\0'; /* reserved above; keeps text buffers terminated */
}

void bind__buf_free(bind__buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = false;
}

/* ---- errors ---- */

void bind__fail(bind__ctx *ctx, const bind__file *file, bind__pos pos, dfnet_status_t status,
                const char *fmt, ...) {
  bind__buf b = {0};
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *path = file && file->path ? file->path : "<input>";
  if (file == NULL || pos.line == 0) {
    bind__buf_printf(&b, "%s: error: %s\n", path, msg);
  } else {
    bind__buf_printf(&b, "%s:%u:%u: error: %s\n", path, pos.line, pos.col, msg);
    /* The offending line, then a caret under the column (tabs kept so it lines up). */
    size_t start = pos.offset <= file->len ? pos.offset : file->len;
    while (start > 0 && file->text[start - 1] != '\n') {
      start--;
    }
    size_t end = start;
    while (end < file->len && file->text[end] != '\n' && file->text[end] != '\r') {
      end++;
    }
    bind__buf_put(&b, file->text + start, end - start);
    bind__buf_u8(&b, '\n');
    for (size_t i = start; i < pos.offset && i < end; i++) {
      bind__buf_u8(&b, file->text[i] == '\t' ? '\t' : ' ');
    }
    bind__buf_put(&b, "^\n", 3); /* includes the NUL */
  }
  if (b.oom) {
    bind__buf_free(&b);
    bind__oom(ctx);
  }
  free(ctx->error);
  ctx->error = (char *)b.data;
  ctx->status = status;
  longjmp(ctx->fail, 1);
}

/* ---- string map ---- */

uint64_t bind__hash(const char *s) {
  /* FNV-1a 64; never 0 so 0 can mean "no string". */
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) {
    h ^= (uint8_t)*s;
    h *= 0x100000001b3ull;
  }
  return h ? h : 1;
}

void *bind__map_get(const bind__map *m, const char *key) {
  if (m->cap == 0) {
    return NULL;
  }
  size_t i = (size_t)bind__hash(key) & (m->cap - 1);
  while (m->slots[i].key != NULL) {
    if (strcmp(m->slots[i].key, key) == 0) {
      return m->slots[i].value;
    }
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}

static void bind__map_insert(bind__map_entry *slots, size_t cap, const char *key, void *value) {
  size_t i = (size_t)bind__hash(key) & (cap - 1);
  while (slots[i].key != NULL && strcmp(slots[i].key, key) != 0) {
    i = (i + 1) & (cap - 1);
  }
  slots[i].key = key;
  slots[i].value = value;
}

void bind__map_put(bind__ctx *ctx, bind__map *m, const char *key, void *value) {
  if ((m->count + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    bind__map_entry *slots = bind__alloc(ctx, cap * sizeof(*slots));
    for (size_t i = 0; i < m->cap; i++) {
      if (m->slots[i].key != NULL) {
        bind__map_insert(slots, cap, m->slots[i].key, m->slots[i].value);
      }
    }
    m->slots = slots;
    m->cap = cap;
  }
  if (bind__map_get(m, key) == NULL) {
    m->count++;
  }
  bind__map_insert(m->slots, m->cap, key, value);
}

const char *bind__vtype_name(bind__vtype t) {
  static const char *const names[] = {
      [BIND__T_UINT] = "uint",
      [BIND__T_STRING] = "string",
      [BIND__T_BOOL] = "bool",
      [BIND__T_ENUM] = "enum",
  };
  return (unsigned)t < sizeof names / sizeof names[0] && names[t] != NULL ? names[t] : "?";
}

size_t bind__utf8_invalid_at(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i <= extra) {
      return i;
    }
    for (size_t k = 1; k <= extra; k++) {
      if ((s[i + k] & 0xc0) != 0x80) {
        return i;
      }
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return i;
    }
    i += extra + 1;
  }
  return n;
}
