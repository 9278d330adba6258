/* A CA pin (lib/pki.h "Pins"): the SHA-256 of a certificate's SubjectPublicKeyInfo DER
 * (RFC 5280 §4.1.2.7), as kubeadm's --discovery-token-ca-cert-hash and RFC 7469's pins
 * take it: it names the key, and survives a re-issue of the CA certificate with the same
 * key. mbedTLS writes the DER and hashes it. */
#include <stdio.h>
#include <string.h>

#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "lib/hex.h"
#include "lib/pki_internal.h"

/* P-256 SubjectPublicKeyInfo DER is 91 bytes; room for any key mbedTLS parses. */
#define PIN_SPKI_MAX 2048

dfnet_status_t dfnet_pki_cert_spki_sha256(const dfnet_pki_cert_t *cert, uint8_t out[32]) {
  if (cert == NULL || out == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "pin: NULL certificate");
  unsigned char buf[PIN_SPKI_MAX];
  /* writes at the end of buf; returns the length */
  int n = mbedtls_pk_write_pubkey_der((mbedtls_pk_context *)&cert->crt.pk, buf, sizeof buf);
  if (n <= 0)
    return pki__fail_mbedtls(n, DFNET_STATUS_INTERNAL, NULL, "writing the public key");
  int rc = mbedtls_sha256_ret(buf + sizeof buf - (size_t)n, (size_t)n, out, 0);
  if (rc != 0)
    return pki__fail_mbedtls(rc, DFNET_STATUS_INTERNAL, NULL, "hashing the public key");
  return DFNET_STATUS_OK;
}

void dfnet_pki_pin_format(const uint8_t sha256[32], char out[DFNET_PKI_PIN_TEXT_SIZE]) {
  memcpy(out, "sha256:", 7);
  dfnet_hex_encode(sha256, 32, out + 7);
}

dfnet_status_t dfnet_pki_pin_parse(const char *text, uint8_t out[32]) {
  if (text == NULL || out == NULL || strncmp(text, "sha256:", 7) != 0 || strlen(text) != 7 + 64)
    return DFNET_STATUS_INVALID_ARGUMENT;
  for (size_t i = 0; i < 32; i++) {
    unsigned v = 0;
    for (size_t k = 0; k < 2; k++) {
      char c = text[7 + 2 * i + k];
      unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                          : 16u;
      if (d > 15)
        return DFNET_STATUS_INVALID_ARGUMENT;
      v = v * 16 + d;
    }
    out[i] = (uint8_t)v;
  }
  return DFNET_STATUS_OK;
}
