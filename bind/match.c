/* dfnet bind: run a verified program against a node's properties.
 *
 * Semantics: docs/spec/bind.md "Matching" and Fuchsia src/devices/lib/bind/src/interpreter/
 * match_bind.rs: a number key looks up the integer key and, if absent, the string key with
 * the deprecated name ("fuchsia.BIND_PROTOCOL"); a missing property makes == false and
 * != true; enum and string values are equal when their text is; any other type mismatch
 * is an error (DFNET_BIND_ERROR). Running off the end is a match.
 *
 * Speed: the program was verified and its symbols resolved and hashed at load time, and
 * dfnet_bind_node_init hashed the node's strings once, so a lookup is a scan of at most
 * 64 (typically ~12) integer/hash compares, confirmed by one strcmp. Nothing allocates;
 * the program and the node are only read, so concurrent matching is safe.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bind/bind_internal.h"

dfnet_status_t dfnet_bind_node_init(dfnet_bind_node_t *node, const dfnet_bind_property_t *props,
                                    size_t count) {
  node->props = props;
  node->count = 0;
  if (count > DFNET_BIND_NODE_MAX_PROPERTIES || (count > 0 && props == NULL)) {
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < count; i++) {
    const dfnet_bind_property_t *p = &props[i];
    node->key_hash[i] = p->str_key ? bind__hash(p->str_key) : 0;
    switch (p->type) {
    case DFNET_BIND_VALUE_STRING:
    case DFNET_BIND_VALUE_ENUM:
      if (p->str_value == NULL) {
        return DFNET_STATUS_INVALID_ARGUMENT;
      }
      node->value_hash[i] = bind__hash(p->str_value);
      break;
    case DFNET_BIND_VALUE_UINT:
    case DFNET_BIND_VALUE_BOOL:
      node->value_hash[i] = 0;
      break;
    default:
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
  }
  node->count = count;
  return DFNET_STATUS_OK;
}

const char *dfnet_bind_result_str(dfnet_bind_result_t result) {
  static const char *const names[] = {
      [DFNET_BIND_MATCH] = "match",
      [DFNET_BIND_NO_MATCH] = "no match",
      [DFNET_BIND_ERROR] = "error",
  };
  return (unsigned)result < sizeof names / sizeof names[0] ? names[result] : "unknown";
}

/* Index of the node's property for `key`, or -1. */
static long bind__find_prop(const dfnet_bind_node_t *node, const bind__operand *key) {
  if (key->type == BIND__RAW_NUMBER) {
    for (size_t i = 0; i < node->count; i++) {
      if (node->props[i].str_key == NULL && node->props[i].int_key == key->raw) {
        return (long)i;
      }
    }
    if (key->deprecated_name == NULL) {
      return -1;
    }
  }
  const char *name = key->type == BIND__RAW_NUMBER ? key->deprecated_name : key->text;
  for (size_t i = 0; i < node->count; i++) {
    if (node->key_hash[i] == key->hash && strcmp(node->props[i].str_key, name) == 0) {
      return (long)i;
    }
  }
  return -1;
}

typedef enum bind__cmp {
  BIND__CMP_MISSING,
  BIND__CMP_EQUAL,
  BIND__CMP_DIFFERENT,
  BIND__CMP_MISMATCH,
} bind__cmp;

static bind__cmp bind__compare(const dfnet_bind_node_t *node, const bind__inst *inst,
                               long *prop_index) {
  long i = bind__find_prop(node, &inst->lhs);
  *prop_index = i;
  if (i < 0) {
    return BIND__CMP_MISSING;
  }
  const dfnet_bind_property_t *p = &node->props[i];
  const bind__operand *v = &inst->rhs;
  switch (p->type) {
  case DFNET_BIND_VALUE_UINT:
    if (v->type != BIND__RAW_NUMBER) {
      return BIND__CMP_MISMATCH;
    }
    return p->int_value == v->raw ? BIND__CMP_EQUAL : BIND__CMP_DIFFERENT;
  case DFNET_BIND_VALUE_BOOL:
    if (v->type != BIND__RAW_BOOL) {
      return BIND__CMP_MISMATCH;
    }
    return (p->bool_value ? 1u : 0u) == v->raw ? BIND__CMP_EQUAL : BIND__CMP_DIFFERENT;
  case DFNET_BIND_VALUE_STRING:
  case DFNET_BIND_VALUE_ENUM:
    if (v->type != BIND__RAW_STRING && v->type != BIND__RAW_ENUM) {
      return BIND__CMP_MISMATCH;
    }
    return node->value_hash[i] == v->hash && strcmp(p->str_value, v->text) == 0
               ? BIND__CMP_EQUAL
               : BIND__CMP_DIFFERENT;
  }
  return BIND__CMP_MISMATCH;
}

/* ---- trace text (only when a trace is asked for) ---- */

static void bind__key_text(const bind__operand *key, char *out, size_t n) {
  if (key->type == BIND__RAW_NUMBER) {
    if (key->deprecated_name) {
      snprintf(out, n, "%s", key->deprecated_name);
    } else {
      snprintf(out, n, "key 0x%x", key->raw);
    }
  } else {
    snprintf(out, n, "%s", key->text);
  }
}

/* The property type an operand's raw type compares with (docs/spec/bind.md "Matching":
 * enum and string values compare by text). A verified program's values are never keys. */
static dfnet_bind_value_type_t bind__operand_type(uint8_t raw) {
  static const dfnet_bind_value_type_t types[] = {
      [BIND__RAW_NUMBER] = DFNET_BIND_VALUE_UINT,
      [BIND__RAW_STRING] = DFNET_BIND_VALUE_STRING,
      [BIND__RAW_BOOL] = DFNET_BIND_VALUE_BOOL,
      [BIND__RAW_ENUM] = DFNET_BIND_VALUE_ENUM,
  };
  return raw < sizeof types / sizeof types[0] && types[raw] != 0 ? types[raw]
                                                                 : DFNET_BIND_VALUE_ENUM;
}

/* A value as the trace shows it: 0x1f, true, "text", lib.KEY.VALUE. */
static void bind__value_text(dfnet_bind_value_type_t type, uint32_t number, const char *text,
                             char *out, size_t n) {
  switch (type) {
  case DFNET_BIND_VALUE_UINT:
    snprintf(out, n, "0x%x", number);
    break;
  case DFNET_BIND_VALUE_BOOL:
    snprintf(out, n, "%s", number ? "true" : "false");
    break;
  case DFNET_BIND_VALUE_STRING:
    snprintf(out, n, "\"%s\"", text);
    break;
  case DFNET_BIND_VALUE_ENUM:
    snprintf(out, n, "%s", text);
    break;
  }
}

static void bind__want_text(const bind__operand *v, char *out, size_t n) {
  bind__value_text(bind__operand_type(v->type), v->raw, v->text, out, n);
}

static void bind__have_text(const dfnet_bind_property_t *p, char *out, size_t n) {
  bool text = p->type == DFNET_BIND_VALUE_STRING || p->type == DFNET_BIND_VALUE_ENUM;
  uint32_t number = p->type == DFNET_BIND_VALUE_BOOL   ? (p->bool_value ? 1u : 0u)
                    : p->type == DFNET_BIND_VALUE_UINT ? p->int_value
                                                       : 0u;
  bind__value_text(p->type, number, text ? p->str_value : NULL, out, n);
}

/* The type a program's value compares as, by name ("uint"); "key" for a key. */
static const char *bind__value_type_text(uint8_t raw) {
  if (raw == BIND__RAW_KEY || raw > BIND__RAW_ENUM) {
    return "key";
  }
  return bind__vtype_name((bind__vtype)bind__operand_type(raw));
}

static void bind__trace_at(dfnet_bind_trace_t *t, const bind__code *code, size_t pc) {
  const bind__inst *inst = &code->insts[pc];
  t->at_end = false;
  t->offset = inst->offset;
  t->file_offset = inst->file_offset;
  bind__format_inst(inst, t->instruction, sizeof t->instruction);
}

/* A missing property that a service offer would have set: the value compared is
 * "<key>.DriverTransport" or "<key>.ZirconTransport" (docs/spec/dfv2.md "Nodes": a parent
 * offering service S to a child gives it S = S.<transport>). Says so into out. */
static void bind__missing_text(const bind__operand *key, const bind__operand *value,
                               const char *key_text, const char *suffix, char *out, size_t n) {
  static const char *const transports[] = {".DriverTransport", ".ZirconTransport"};
  if (key->type != BIND__RAW_NUMBER && key->text != NULL && value->text != NULL) {
    size_t kl = strlen(key->text);
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++) {
      if (strncmp(value->text, key->text, kl) == 0 &&
          strcmp(value->text + kl, transports[i]) == 0) {
        snprintf(out, n,
                 "%s: property missing%s: the node was not offered %s (its parent's driver "
                 "offers it to the child it adds)",
                 key_text, suffix, key->text);
        return;
      }
    }
  }
  snprintf(out, n, "%s: property missing%s", key_text, suffix);
}

static void bind__trace_compare(dfnet_bind_trace_t *t, const dfnet_bind_node_t *node,
                                const bind__code *code, size_t pc, bind__cmp cmp, long prop) {
  const bind__inst *inst = &code->insts[pc];
  char key[96], want[160], have[160];
  bind__trace_at(t, code, pc);
  bind__key_text(&inst->lhs, key, sizeof key);
  bind__want_text(&inst->rhs, want, sizeof want);
  switch (cmp) {
  case BIND__CMP_MISSING:
    bind__missing_text(&inst->lhs, &inst->rhs, key, "", t->reason, sizeof t->reason);
    break;
  case BIND__CMP_MISMATCH:
    snprintf(t->reason, sizeof t->reason,
             "type mismatch: %s is a %s property, the program compares it with a %s", key,
             bind__vtype_name((bind__vtype)node->props[prop].type),
             bind__value_type_text(inst->rhs.type));
    break;
  case BIND__CMP_DIFFERENT:
    bind__have_text(&node->props[prop], have, sizeof have);
    snprintf(t->reason, sizeof t->reason, "%s is %s, want %s", key, have, want);
    break;
  case BIND__CMP_EQUAL:
    bind__have_text(&node->props[prop], have, sizeof have);
    snprintf(t->reason, sizeof t->reason, "%s is %s, want anything else", key, have);
    break;
  }
}

static void bind__trace_abort(dfnet_bind_trace_t *t, const dfnet_bind_node_t *node,
                              const bind__code *code, size_t pc) {
  bind__trace_at(t, code, pc);
  /* An Abort right after JumpIfEqual instructions is the end of an accept list. */
  if (pc > 0 && code->insts[pc - 1].op == BIND__OP_JUMP_EQ) {
    const bind__inst *prev = &code->insts[pc - 1];
    char key[96], have[160];
    bind__key_text(&prev->lhs, key, sizeof key);
    long prop = bind__find_prop(node, &prev->lhs);
    if (prop < 0) {
      bind__missing_text(&prev->lhs, &prev->rhs, key, " (accept list)", t->reason,
                         sizeof t->reason);
    } else {
      bind__have_text(&node->props[prop], have, sizeof have);
      snprintf(t->reason, sizeof t->reason, "%s is %s, not in the accept list", key, have);
    }
    return;
  }
  snprintf(t->reason, sizeof t->reason, "the rules abort here (false)");
}

static dfnet_bind_result_t bind__run(const bind__code *code, const dfnet_bind_node_t *node,
                                     dfnet_bind_trace_t *trace) {
  size_t pc = 0;
  while (pc < code->count) {
    const bind__inst *inst = &code->insts[pc];
    long prop = -1;
    bind__cmp cmp;
    switch (inst->op) {
    case BIND__OP_EQUAL:
    case BIND__OP_INEQUAL:
    case BIND__OP_JUMP_EQ:
    case BIND__OP_JUMP_NE: {
      cmp = bind__compare(node, inst, &prop);
      bool jump = inst->op == BIND__OP_JUMP_EQ || inst->op == BIND__OP_JUMP_NE;
      bool wants_equal = inst->op == BIND__OP_EQUAL || inst->op == BIND__OP_JUMP_EQ;
      bool holds = wants_equal == (cmp == BIND__CMP_EQUAL);
      if (cmp == BIND__CMP_MISMATCH || (!jump && !holds)) {
        if (trace) {
          bind__trace_compare(trace, node, code, pc, cmp, prop);
        }
        return cmp == BIND__CMP_MISMATCH ? DFNET_BIND_ERROR : DFNET_BIND_NO_MATCH;
      }
      pc = jump && holds ? inst->target : pc + 1;
      break;
    }
    case BIND__OP_JUMP:
      pc = inst->target;
      break;
    case BIND__OP_ABORT:
      if (trace) {
        bind__trace_abort(trace, node, code, pc);
      }
      return DFNET_BIND_NO_MATCH;
    default: /* BIND__OP_LABEL */
      pc++;
      break;
    }
  }
  if (trace) {
    trace->at_end = true;
    trace->offset = code->byte_len;
    trace->file_offset = code->file_offset + code->byte_len;
    snprintf(trace->instruction, sizeof trace->instruction, "(end of the rules)");
    snprintf(trace->reason, sizeof trace->reason, "every condition held");
  }
  return DFNET_BIND_MATCH;
}

static void bind__trace_error(dfnet_bind_trace_t *trace, const char *reason) {
  if (trace) {
    memset(trace, 0, sizeof(*trace));
    snprintf(trace->reason, sizeof trace->reason, "%s", reason);
  }
}

dfnet_bind_result_t dfnet_bind_program_match(const dfnet_bind_program_t *program,
                                             const dfnet_bind_node_t *node,
                                             dfnet_bind_trace_t *trace) {
  if (program->composite) {
    bind__trace_error(trace, "a composite program: match each of its nodes");
    return DFNET_BIND_ERROR;
  }
  return bind__run(&program->codes[0], node, trace);
}

dfnet_bind_result_t dfnet_bind_program_match_composite_node(const dfnet_bind_program_t *program,
                                                            size_t index,
                                                            const dfnet_bind_node_t *node,
                                                            dfnet_bind_trace_t *trace) {
  if (!program->composite || index >= program->code_count) {
    bind__trace_error(trace, "no such composite node");
    return DFNET_BIND_ERROR;
  }
  return bind__run(&program->codes[index], node, trace);
}
