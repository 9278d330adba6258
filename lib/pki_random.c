/* Random bytes for secrets (lib/pki.h "Secrets"): mbedTLS's CTR-DRBG (NIST SP 800-90A,
 * AES-256) seeded from mbedTLS's entropy sources (getrandom(2) on Linux), one fresh
 * generator per call so that no state is shared between threads. */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/platform_util.h>

#include "lib/pki_internal.h"

dfnet_status_t dfnet_pki_random(uint8_t *out, size_t len) {
  static const unsigned char pers[] = "dfnet secret";
  if (out == NULL && len > 0)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "random: no buffer");
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers, sizeof pers - 1);
  /* at most MBEDTLS_CTR_DRBG_MAX_REQUEST (1024) bytes per call */
  for (size_t off = 0; rc == 0 && off < len; off += MBEDTLS_CTR_DRBG_MAX_REQUEST) {
    size_t n = len - off < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len - off : MBEDTLS_CTR_DRBG_MAX_REQUEST;
    rc = mbedtls_ctr_drbg_random(&drbg, out + off, n);
  }
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  if (rc != 0) {
    mbedtls_platform_zeroize(out, len);
    return pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, NULL, "drawing random bytes");
  }
  return DFNET_STATUS_OK;
}
