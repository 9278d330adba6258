/* libFuzzer target: the bytecode v2 decoder/verifier, then the dumper and the matcher on
 * whatever it accepts. Invariants (bind/program.c security model): no crash, hang, leak or
 * out-of-bounds read on any input; a verified program dumps and matches any node without
 * error paths the verifier should have caught (a match result is always one of the three). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind.h"
#include "dfnet/bind_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dfnet_bind_program_t *prog = NULL;
  char err[256];
  if (dfnet_bind_program_load(data, size, &prog, err, sizeof err) != DFNET_STATUS_OK) {
    if (prog != NULL || err[0] == '\0') {
      abort();
    }
    return 0;
  }
  char *dump = dfnet_bind_program_dump(prog);
  free(dump);
  static const dfnet_bind_property_t props[] = {
      {DFNET_BIND_PROTOCOL, NULL, DFNET_BIND_VALUE_UINT, 1, NULL, false},
      {DFNET_BIND_PCI_VID, NULL, DFNET_BIND_VALUE_UINT, 0x1af4, NULL, false},
      {0, "fuchsia.BIND_PCI_DID", DFNET_BIND_VALUE_UINT, 0x1044, NULL, false},
      {0, "WREN", DFNET_BIND_VALUE_STRING, 0, "DUCK", false},
      {0, "k", DFNET_BIND_VALUE_ENUM, 0, "e", false},
      {0, "flag", DFNET_BIND_VALUE_BOOL, 0, NULL, true},
  };
  dfnet_bind_node_t node;
  if (dfnet_bind_node_init(&node, props, sizeof props / sizeof props[0]) != DFNET_STATUS_OK) {
    abort();
  }
  dfnet_bind_trace_t trace;
  size_t nodes = dfnet_bind_program_node_count(prog);
  if (dfnet_bind_program_is_composite(prog)) {
    for (size_t i = 0; i < nodes; i++) {
      dfnet_bind_result_t a = dfnet_bind_program_match_composite_node(prog, i, &node, &trace);
      dfnet_bind_result_t b = dfnet_bind_program_match_composite_node(prog, i, &node, NULL);
      if (a != b) {
        abort(); /* the trace must not change the result */
      }
    }
  } else {
    dfnet_bind_result_t a = dfnet_bind_program_match(prog, &node, &trace);
    if (a != dfnet_bind_program_match(prog, &node, NULL) || a > DFNET_BIND_ERROR) {
      abort();
    }
  }
  dfnet_bind_program_destroy(prog);
  return 0;
}
