/* libFuzzer target: the bind compiler (lexer, parser, symbol table, code generation) on
 * arbitrary rules text, with a test library that has every key type.
 * Invariants (bind/bind_internal.h, docs/spec/bind.md): no crash, no hang, no leak; an error
 * always comes with a diagnostic; what compiles, the verifier accepts; the library header
 * generator never crashes on the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dfnet/bind.h"

static const char k_lib[] =
    "library test.lib;\n"
    "uint number_key { FIVE = 5 };\n"
    "string name_key { A = \"alpha\" };\n"
    "bool flag { ON = true };\n"
    "enum kind { X, Y };\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dfnet_bind_source_t lib = {"test.lib.bind", k_lib, sizeof k_lib - 1};
  dfnet_bind_compile_options_t opts = {&lib, 1, NULL, 0, (size & 1) != 0};
  dfnet_bind_source_t src = {"fuzz.bind", (const char *)data, size};
  uint8_t *out = NULL;
  size_t len = 0;
  char *err = NULL;
  dfnet_status_t st = dfnet_bind_compile(&src, &opts, &out, &len, &err);
  if (st == DFNET_STATUS_OK) {
    dfnet_bind_program_t *prog = NULL;
    if (dfnet_bind_program_load(out, len, &prog, NULL, 0) != DFNET_STATUS_OK) {
      abort(); /* the compiler emitted bytecode its own verifier rejects */
    }
    dfnet_bind_program_destroy(prog);
  } else if (st == DFNET_STATUS_INVALID_ARGUMENT && err == NULL) {
    abort(); /* a syntax or semantic error without a diagnostic */
  }
  free(out);
  free(err);

  char *header = NULL;
  err = NULL;
  if (dfnet_bind_library_header(&src, &header, &err) == DFNET_STATUS_OK && header == NULL) {
    abort();
  }
  free(header);
  free(err);
  return 0;
}
