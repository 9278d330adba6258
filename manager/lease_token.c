/* dfnet-manager: lease fencing tokens (docs/architecture.md "Leases", "Fencing"): the
 * capability a client's Call carries in Call.lease_token. "<id>.<64 hex>": the lease's id,
 * then 256 random bits (dfnet_pki_random: a CTR-DRBG seeded from getrandom(2)). The manager keeps
 * only the SHA-256 of the whole text (store__token_digest) and compares in constant time
 * (store__token_matches).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "lib/hex.h"
#include "lib/pki.h"
#include "manager/lease.h"

_Static_assert(20 + 1 + 2 * LEASE_TOKEN_RANDOM_BYTES + 1 <= LEASE_TOKEN_SIZE,
               "a token with the largest id fits");
_Static_assert(LEASE_TOKEN_SIZE <= pb_membersize(dfnet_v1_Call, lease_token), "Call carries it");
_Static_assert(LEASE_TOKEN_SIZE <= pb_membersize(dfnet_v1_LeaseInfo, token), "LeaseInfo too");

dfnet_status_t lease__token_new(uint64_t id, char *out) {
  uint8_t r[LEASE_TOKEN_RANDOM_BYTES];
  dfnet_status_t st = dfnet_pki_random(r, sizeof r);
  if (st != DFNET_STATUS_OK)
    return st;
  int len = snprintf(out, LEASE_TOKEN_SIZE, "%" PRIu64 ".", id);
  dfnet_hex_encode(r, sizeof r, out + len);
  mbedtls_platform_zeroize(r, sizeof r);
  return DFNET_STATUS_OK;
}

uint64_t lease__token_id(const char *token) {
  uint64_t id = 0;
  size_t i = 0;
  for (; token[i] >= '0' && token[i] <= '9' && i < 20; i++) {
    uint64_t d = (uint64_t)(token[i] - '0');
    if (id > (UINT64_MAX - d) / 10)
      return 0;
    id = id * 10 + d;
  }
  if (i == 0 || token[i] != '.' || strlen(token + i + 1) != 2 * LEASE_TOKEN_RANDOM_BYTES)
    return 0;
  return id;
}
