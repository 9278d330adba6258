/* dfnet bind: print a program the way `ffx driver list -v` does.
 *
 * Source: Fuchsia src/devices/lib/bind/src/debugger/debug_dump.rs (dump_bind_rules,
 * dump_condition, Symbol's Display in compiler/symbol_table.rs): a number key prints as
 * its deprecated name ("fuchsia.BIND_PROTOCOL") or in decimal, other keys as Key(name),
 * numbers in decimal, strings quoted, enums Enum(name); jumps and labels print "??" for
 * their targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind_internal.h"

static int bind__format_operand(const bind__operand *op, bool key_side, char *out, size_t n) {
  switch (op->type) {
  case BIND__RAW_NUMBER:
    if (key_side && op->deprecated_name) {
      return snprintf(out, n, "%s", op->deprecated_name);
    }
    return snprintf(out, n, "%u", op->raw);
  case BIND__RAW_BOOL:
    return snprintf(out, n, "%s", op->raw ? "true" : "false");
  case BIND__RAW_KEY:
    return snprintf(out, n, "Key(%s)", op->text);
  case BIND__RAW_STRING:
    return snprintf(out, n, "\"%s\"", op->text);
  case BIND__RAW_ENUM:
    return snprintf(out, n, "Enum(%s)", op->text);
  }
  return snprintf(out, n, "?");
}

static void bind__format_cond(const bind__inst *inst, bool equal, char *out, size_t n) {
  char lhs[300], rhs[300];
  bind__format_operand(&inst->lhs, true, lhs, sizeof lhs);
  bind__format_operand(&inst->rhs, false, rhs, sizeof rhs);
  snprintf(out, n, "%s %s %s", lhs, equal ? "==" : "!=", rhs);
}

void bind__format_inst(const bind__inst *inst, char *out, size_t out_len) {
  char cond[620];
  switch (inst->op) {
  case BIND__OP_EQUAL:
  case BIND__OP_INEQUAL:
    bind__format_cond(inst, inst->op == BIND__OP_EQUAL, out, out_len);
    break;
  case BIND__OP_JUMP:
    snprintf(out, out_len, "Jump to ??");
    break;
  case BIND__OP_JUMP_EQ:
  case BIND__OP_JUMP_NE:
    bind__format_cond(inst, inst->op == BIND__OP_JUMP_EQ, cond, sizeof cond);
    snprintf(out, out_len, "Jump if %s to ??", cond);
    break;
  case BIND__OP_LABEL:
    snprintf(out, out_len, "Label ??");
    break;
  case BIND__OP_ABORT:
    snprintf(out, out_len, "Abort");
    break;
  default:
    snprintf(out, out_len, "?");
    break;
  }
}

static void bind__dump_code(bind__buf *b, const bind__code *code) {
  char line[700];
  for (size_t i = 0; i < code->count; i++) {
    bind__format_inst(&code->insts[i], line, sizeof line);
    bind__buf_printf(b, "\n  %s", line);
  }
}

char *dfnet_bind_program_dump(const dfnet_bind_program_t *program) {
  bind__buf b = {0};
  if (!program->composite) {
    bind__dump_code(&b, &program->codes[0]);
  } else {
    for (size_t i = 0; i < program->code_count; i++) {
      const bind__code *code = &program->codes[i];
      const char *label = code->kind == BIND__NODE_PRIMARY    ? "Node (primary): "
                          : code->kind == BIND__NODE_OPTIONAL ? "Node (optional): "
                                                              : "Node: ";
      bind__buf_printf(&b, "%s%s", label, code->name);
      bind__dump_code(&b, code);
      bind__buf_u8(&b, '\n');
    }
  }
  bind__buf_u8(&b, '\0');
  if (b.oom) {
    bind__buf_free(&b);
    return NULL;
  }
  return (char *)b.data;
}
