/* dfnet bind: decode and verify bytecode v2 into an immutable program.
 *
 * Source: docs/spec/bind.md "Bytecode v2" and Fuchsia src/devices/lib/bind/src/interpreter/
 * decode_bind_rules.rs + instruction_decoder.rs. Security model: the bytes come from a
 * driver package, i.e. from anyone; every length, id, opcode, value type and jump is
 * checked here, once, before anything runs the program, so the matcher never has to.
 * Checks (each with its own reason): header magic/version/debug flag; section magics and
 * sizes that fit exactly; symbol ids 1, 2, 3 ... in order; symbol strings of 1-255 bytes,
 * NUL-terminated inside the section, valid UTF-8; known opcodes and value types; bools 0/1;
 * every symbol reference present; a key operand of type key/number/string and a value
 * operand that is not a key; jumps forward, inside the list, landing exactly on a 0x20
 * landing-pad instruction; composites with exactly one primary node, first, then
 * additional/optional nodes. Stricter than Fuchsia on two points it leaves as TODOs: the
 * landing pad is checked at load time, and operand roles are checked.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind_internal.h"
#include "dfnet/bind_keys.h"

#define BIND__MAX_PROGRAM (16u * 1024u * 1024u)

typedef struct bind__reader {
  const uint8_t *p;
  size_t len;
  size_t at;
  char *err;
  size_t err_len;
} bind__reader;

static __attribute__((format(printf, 2, 3))) bool bind__reject(bind__reader *r, const char *fmt,
                                                               ...) {
  if (r->err != NULL && r->err_len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->err_len, fmt, ap);
    va_end(ap);
  }
  return false;
}

static uint32_t bind__le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t bind__be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void bind__magic_text(uint32_t magic, char out[5]) {
  for (int i = 0; i < 4; i++) {
    uint8_t c = (uint8_t)(magic >> (24 - 8 * i));
    out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  out[4] = '\0';
}

/* Read a section header "MAGIC" u32-size; the size must fit in what is left. */
static bool __attribute__((warn_unused_result))
bind__section(bind__reader *r, uint32_t magic, const char *what, uint32_t *size) {
  if (r->len - r->at < 8) {
    return bind__reject(r, "truncated: no room for the %s section header at offset %zu", what,
                        r->at);
  }
  uint32_t got = bind__be32(r->p + r->at);
  if (got != magic) {
    char want[5], have[5];
    bind__magic_text(magic, want);
    bind__magic_text(got, have);
    return bind__reject(r, "expected section magic \"%s\" at offset %zu, found \"%s\"", want, r->at,
                        have);
  }
  *size = bind__le32(r->p + r->at + 4);
  r->at += 8;
  if (*size > r->len - r->at) {
    return bind__reject(r, "%s section size %u does not fit in the %zu bytes left", what, *size,
                        r->len - r->at);
  }
  return true;
}

static bool __attribute__((warn_unused_result))
bind__read_symbols(bind__reader *r, dfnet_bind_program_t *prog, uint8_t *owned, uint32_t size) {
  size_t end = r->at + size;
  size_t cap = 0;
  while (r->at < end) {
    if (end - r->at < 4) {
      return bind__reject(r, "symbol table: truncated symbol id at offset %zu", r->at);
    }
    uint32_t id = bind__le32(r->p + r->at);
    if (id != prog->symbol_count + 1) {
      return bind__reject(r, "symbol table: id %u at offset %zu out of order (expected %u)", id,
                          r->at, prog->symbol_count + 1);
    }
    r->at += 4;
    const uint8_t *nul = memchr(r->p + r->at, 0, end - r->at);
    if (nul == NULL) {
      return bind__reject(r, "symbol table: symbol %u is not NUL-terminated", id);
    }
    size_t n = (size_t)(nul - (r->p + r->at));
    if (n == 0) {
      return bind__reject(r, "symbol table: symbol %u is an empty string", id);
    }
    if (n > BIND__MAX_STRING) {
      return bind__reject(r, "symbol table: symbol %u is %zu bytes long (at most 255)", id, n);
    }
    if (bind__utf8_invalid_at(r->p + r->at, n) != n) {
      return bind__reject(r, "symbol table: symbol %u is not valid UTF-8", id);
    }
    if (prog->symbol_count == cap) {
      cap = cap ? cap * 2 : 16;
      const char **grown = realloc(prog->symbols, cap * sizeof(*grown));
      if (grown == NULL) {
        return bind__reject(r, "out of memory");
      }
      prog->symbols = grown;
    }
    prog->symbols[prog->symbol_count++] = (const char *)(owned + r->at);
    r->at += n + 1;
  }
  return true;
}

static bool __attribute__((warn_unused_result))
bind__read_operand(bind__reader *r, const dfnet_bind_program_t *prog, size_t at, bool key_side,
                   bind__operand *op) {
  op->type = r->p[at];
  op->raw = bind__le32(r->p + at + 1);
  switch (op->type) {
  case BIND__RAW_NUMBER:
    if (key_side) {
      op->deprecated_name = dfnet_bind_key_name(op->raw);
      op->hash = op->deprecated_name ? bind__hash(op->deprecated_name) : 0;
    }
    return true;
  case BIND__RAW_BOOL:
    if (key_side) {
      return bind__reject(r, "instruction at offset %zu: a bool cannot be a key", at);
    }
    if (op->raw > 1) {
      return bind__reject(r, "instruction at offset %zu: bool value %u is not 0 or 1", at, op->raw);
    }
    return true;
  case BIND__RAW_KEY:
  case BIND__RAW_STRING:
  case BIND__RAW_ENUM:
    if (op->type == BIND__RAW_KEY && !key_side) {
      return bind__reject(r, "instruction at offset %zu: a key cannot be a value", at);
    }
    if (op->type == BIND__RAW_ENUM && key_side) {
      return bind__reject(r, "instruction at offset %zu: an enum value cannot be a key", at);
    }
    if (op->raw == 0 || op->raw > prog->symbol_count) {
      return bind__reject(r, "instruction at offset %zu: symbol %u is not in the symbol table", at,
                          op->raw);
    }
    op->text = prog->symbols[op->raw - 1];
    op->hash = bind__hash(op->text);
    return true;
  default:
    return bind__reject(r, "instruction at offset %zu: unknown value type 0x%02x", at, op->type);
  }
}

static size_t bind__find_inst(const bind__code *c, uint32_t offset) {
  size_t lo = 0, hi = c->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->insts[mid].offset < offset) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/* An instruction's encoded size and the offset of its operands in it (0: none), by
 * opcode (Fuchsia instruction_decoder.rs). False for an unknown opcode. */
static bool bind__inst_layout(uint8_t op, size_t *size, size_t *operands_at) {
  static const struct {
    uint8_t op, size, operands_at;
  } layouts[] = {
      {BIND__OP_EQUAL, 11, 1},   {BIND__OP_INEQUAL, 11, 1}, {BIND__OP_JUMP, 5, 0},
      {BIND__OP_JUMP_EQ, 15, 5}, {BIND__OP_JUMP_NE, 15, 5}, {BIND__OP_LABEL, 1, 0},
      {BIND__OP_ABORT, 1, 0},
  };
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
    if (layouts[i].op == op) {
      *size = layouts[i].size;
      *operands_at = layouts[i].operands_at;
      return true;
    }
  }
  return false;
}

static bool bind__is_jump(uint8_t op) { return op >= BIND__OP_JUMP && op <= BIND__OP_JUMP_NE; }

/* Room for one more instruction in code->insts and its parallel jump_offsets. */
static bool __attribute__((warn_unused_result))
bind__grow_code(bind__reader *r, bind__code *code, size_t *cap, uint32_t **jump_offsets) {
  if (code->count < *cap) {
    return true;
  }
  *cap = *cap ? *cap * 2 : 16;
  bind__inst *grown = realloc(code->insts, *cap * sizeof(*grown));
  uint32_t *grown_jumps = realloc(*jump_offsets, *cap * sizeof(*grown_jumps));
  if (grown != NULL) {
    code->insts = grown;
  }
  if (grown_jumps != NULL) {
    *jump_offsets = grown_jumps;
  }
  if (grown == NULL || grown_jumps == NULL) {
    return bind__reject(r, "out of memory");
  }
  return true;
}

/* Decode the instruction at r->at (the list began at `start`, ends at `end`) into *inst;
 * a jump's encoded offset into *jump_offset. */
static bool __attribute__((warn_unused_result))
bind__read_inst(bind__reader *r, const dfnet_bind_program_t *prog, size_t start, size_t end,
                bind__inst *inst, uint32_t *jump_offset) {
  memset(inst, 0, sizeof(*inst));
  inst->op = r->p[r->at];
  inst->offset = (uint32_t)(r->at - start);
  inst->file_offset = (uint32_t)r->at;
  size_t need, operands_at;
  if (!bind__inst_layout(inst->op, &need, &operands_at)) {
    return bind__reject(r, "instruction at offset %u: unknown opcode 0x%02x", inst->offset,
                        inst->op);
  }
  if (end - r->at < need) {
    return bind__reject(r, "instruction at offset %u: truncated (opcode 0x%02x needs %zu bytes)",
                        inst->offset, inst->op, need);
  }
  if (operands_at != 0) {
    size_t operands = r->at + operands_at;
    if (!bind__read_operand(r, prog, operands, true, &inst->lhs) ||
        !bind__read_operand(r, prog, operands + 5, false, &inst->rhs)) {
      return false;
    }
  }
  *jump_offset = bind__is_jump(inst->op) ? bind__le32(r->p + r->at + 1) : 0;
  r->at += need;
  return true;
}

/* Resolve every jump of `code` (`size` bytes) to the index of its landing pad. */
static bool __attribute__((warn_unused_result))
bind__resolve_jumps(bind__reader *r, bind__code *code, const uint32_t *jump_offsets,
                    uint32_t size) {
  for (size_t i = 0; i < code->count; i++) {
    bind__inst *inst = &code->insts[i];
    if (!bind__is_jump(inst->op)) {
      continue;
    }
    /* The offset counts from the end of the jump instruction to the pad's opcode. */
    uint64_t target =
        (uint64_t)inst->offset + (inst->op == BIND__OP_JUMP ? 5u : 15u) + jump_offsets[i];
    if (target >= size) {
      return bind__reject(r,
                          "jump at instruction offset %u goes past the end (offset %u, %u bytes)",
                          inst->offset, jump_offsets[i], size);
    }
    size_t k = bind__find_inst(code, (uint32_t)target);
    if (k >= code->count || code->insts[k].offset != target ||
        code->insts[k].op != BIND__OP_LABEL) {
      return bind__reject(r,
                          "jump at instruction offset %u does not land on a landing pad (0x20) at "
                          "offset %llu",
                          inst->offset, (unsigned long long)target);
    }
    inst->target = (uint32_t)k;
  }
  return true;
}

/* Decode `size` bytes of instructions at r->at into `code`. With debug, every instruction
 * is preceded by a u32 source line (Fuchsia instruction_encoder.rs, enable_debug). */
static bool __attribute__((warn_unused_result))
bind__read_code(bind__reader *r, const dfnet_bind_program_t *prog, uint32_t size, bool debug,
                bind__code *code) {
  size_t start = r->at, end = r->at + size;
  size_t cap = 0;
  code->byte_len = size;
  code->file_offset = (uint32_t)start;
  uint32_t *jump_offsets = NULL; /* parallel to insts: the encoded offset of each jump */
  bool ok = false;
  while (r->at < end) {
    if (debug) {
      if (end - r->at < 4) {
        bind__reject(r, "instruction at offset %zu: truncated debug line number", r->at - start);
        goto decode_failed;
      }
      r->at += 4;
    }
    if (r->at >= end) {
      bind__reject(r, "instruction list ends after a debug line number");
      goto decode_failed;
    }
    if (!bind__grow_code(r, code, &cap, &jump_offsets) ||
        !bind__read_inst(r, prog, start, end, &code->insts[code->count],
                         &jump_offsets[code->count])) {
      goto decode_failed;
    }
    code->count++;
  }
  ok = bind__resolve_jumps(r, code, jump_offsets, size);
decode_failed:
  free(jump_offsets);
  return ok;
}

static bind__code *bind__add_code(dfnet_bind_program_t *prog, size_t *cap) {
  if (prog->code_count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    bind__code *grown = realloc(prog->codes, ncap * sizeof(*grown));
    if (grown == NULL) {
      return NULL;
    }
    prog->codes = grown;
    *cap = ncap;
  }
  bind__code *c = &prog->codes[prog->code_count++];
  memset(c, 0, sizeof(*c));
  return c;
}

static bool __attribute__((warn_unused_result))
bind__read_composite(bind__reader *r, dfnet_bind_program_t *prog, uint32_t size, bool debug) {
  size_t end = r->at + size;
  size_t cap = 0;
  if (size < 4) {
    return bind__reject(r, "composite: no device name id");
  }
  uint32_t name_id = bind__le32(r->p + r->at);
  if (name_id == 0 || name_id > prog->symbol_count) {
    return bind__reject(r, "composite: device name symbol %u is not in the symbol table", name_id);
  }
  prog->composite_name = prog->symbols[name_id - 1];
  r->at += 4;
  if (r->at == end) {
    return bind__reject(r, "composite: no nodes (a composite needs one primary node)");
  }
  while (r->at < end) {
    if (end - r->at < 9) {
      return bind__reject(r, "composite: truncated node header at offset %zu", r->at);
    }
    uint8_t type = r->p[r->at];
    bool first = prog->code_count == 0;
    if (type != BIND__NODE_PRIMARY && type != BIND__NODE_ADDITIONAL &&
        type != BIND__NODE_OPTIONAL) {
      return bind__reject(r, "composite: unknown node type 0x%02x at offset %zu", type, r->at);
    }
    if (first && type != BIND__NODE_PRIMARY) {
      return bind__reject(r,
                          "composite: the first node must be the primary node (0x50), "
                          "found 0x%02x",
                          type);
    }
    if (!first && type == BIND__NODE_PRIMARY) {
      return bind__reject(r, "composite: more than one primary node (second at offset %zu)", r->at);
    }
    uint32_t node_name = bind__le32(r->p + r->at + 1);
    uint32_t inst_len = bind__le32(r->p + r->at + 5);
    if (node_name == 0 || node_name > prog->symbol_count) {
      return bind__reject(r, "composite: node name symbol %u is not in the symbol table",
                          node_name);
    }
    r->at += 9;
    if (inst_len > end - r->at) {
      return bind__reject(r,
                          "composite: node \"%s\" instruction size %u does not fit in the "
                          "%zu bytes left",
                          prog->symbols[node_name - 1], inst_len, end - r->at);
    }
    bind__code *code = bind__add_code(prog, &cap);
    if (code == NULL) {
      return bind__reject(r, "out of memory");
    }
    code->name = prog->symbols[node_name - 1];
    code->kind = (bind__node_kind)type;
    if (!bind__read_code(r, prog, inst_len, debug, code)) {
      return false;
    }
  }
  return true;
}

static bool __attribute__((warn_unused_result))
bind__decode(bind__reader *r, dfnet_bind_program_t *prog) {
  if (r->len < 9) {
    return bind__reject(r, "truncated: %zu bytes, the header alone is 9", r->len);
  }
  if (bind__be32(r->p) != BIND__MAGIC_BIND) {
    char have[5];
    bind__magic_text(bind__be32(r->p), have);
    return bind__reject(r, "not bind bytecode: magic \"%s\", expected \"BIND\"", have);
  }
  uint32_t version = bind__le32(r->p + 4);
  if (version != BIND__VERSION) {
    return bind__reject(r, "unsupported bytecode version %u (only version 2)", version);
  }
  uint8_t debug = r->p[8];
  if (debug > 1) {
    return bind__reject(r, "invalid debug flag 0x%02x (0 or 1)", debug);
  }
  r->at = 9;
  uint32_t size = 0;
  if (!bind__section(r, BIND__MAGIC_SYNB, "symbol table (SYNB)", &size) ||
      !bind__read_symbols(r, prog, prog->bytes, size)) {
    return false;
  }
  if (r->len - r->at < 8) {
    return bind__reject(r, "truncated: no instruction section after the symbol table");
  }
  uint32_t magic = bind__be32(r->p + r->at);
  prog->composite = magic == BIND__MAGIC_COMP;
  if (!bind__section(r, prog->composite ? BIND__MAGIC_COMP : BIND__MAGIC_INST,
                     prog->composite ? "composite (COMP)" : "instruction (INST)", &size)) {
    return false;
  }
  size_t body_end = r->at + size;
  if (debug == 0 && body_end != r->len) {
    return bind__reject(r, "%zu unexpected bytes after the %s section", r->len - body_end,
                        prog->composite ? "COMP" : "INST");
  }
  if (prog->composite) {
    if (!bind__read_composite(r, prog, size, debug == 1)) {
      return false;
    }
  } else {
    size_t cap = 0;
    bind__code *code = bind__add_code(prog, &cap);
    if (code == NULL) {
      return bind__reject(r, "out of memory");
    }
    if (!bind__read_code(r, prog, size, debug == 1, code)) {
      return false;
    }
  }
  if (debug == 1) {
    uint32_t debug_size = 0;
    if (!bind__section(r, BIND__MAGIC_DEBG, "debug (DEBG)", &debug_size)) {
      return false;
    }
    if (r->at + debug_size != r->len) {
      return bind__reject(r, "debug section size %u does not match the %zu bytes left", debug_size,
                          r->len - r->at);
    }
  }
  return true;
}

dfnet_status_t dfnet_bind_program_load(const uint8_t *bytes, size_t len, dfnet_bind_program_t **out,
                                       char *err, size_t err_len) {
  *out = NULL;
  if (err && err_len) {
    err[0] = '\0';
  }
  if (len > BIND__MAX_PROGRAM) {
    if (err && err_len) {
      snprintf(err, err_len, "bytecode of %zu bytes is larger than %u", len, BIND__MAX_PROGRAM);
    }
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  dfnet_bind_program_t *prog = calloc(1, sizeof(*prog));
  if (prog == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  prog->bytes = malloc(len ? len : 1);
  if (prog->bytes == NULL) {
    free(prog);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  if (len) {
    memcpy(prog->bytes, bytes, len);
  }
  prog->len = len;
  bind__reader r = {prog->bytes, len, 0, err, err_len};
  if (!bind__decode(&r, prog)) {
    bool oom = err && strcmp(err, "out of memory") == 0;
    dfnet_bind_program_destroy(prog);
    return oom ? DFNET_STATUS_RESOURCE_EXHAUSTED : DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out = prog;
  return DFNET_STATUS_OK;
}

void dfnet_bind_program_destroy(dfnet_bind_program_t *program) {
  if (program == NULL) {
    return;
  }
  for (size_t i = 0; i < program->code_count; i++) {
    free(program->codes[i].insts);
  }
  free(program->codes);
  free(program->symbols);
  free(program->bytes);
  free(program);
}

const uint8_t *dfnet_bind_program_bytes(const dfnet_bind_program_t *program, size_t *len) {
  *len = program->len;
  return program->bytes;
}

bool dfnet_bind_program_is_composite(const dfnet_bind_program_t *program) {
  return program->composite;
}

const char *dfnet_bind_program_composite_name(const dfnet_bind_program_t *program) {
  return program->composite ? program->composite_name : NULL;
}

size_t dfnet_bind_program_node_count(const dfnet_bind_program_t *program) {
  return program->composite ? program->code_count : 0;
}

dfnet_status_t dfnet_bind_program_node_info(const dfnet_bind_program_t *program, size_t index,
                                            const char **name, dfnet_bind_node_type_t *type) {
  if (!program->composite || index >= program->code_count) {
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  if (name) {
    *name = program->codes[index].name;
  }
  if (type) {
    *type = (dfnet_bind_node_type_t)program->codes[index].kind;
  }
  return DFNET_STATUS_OK;
}
