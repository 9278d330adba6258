/* Hexadecimal digits, read and written one way everywhere (docs/style.md 16): the CLI's
 * --data-hex and `serial write --hex`, a package digest's 64 hex digits (lib/package.h),
 * certificate serials, key pins and tokens.
 *
 * Threads: no state; any thread. */
#ifndef DFNET_LIB_HEX_H
#define DFNET_LIB_HEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The value of the hex digit c, 0..15 ('0'-'9', 'a'-'f', 'A'-'F'), or -1 for any other
 * character. */
int dfnet_hex_digit(char c);

/* in[0..n) as 2n lower-case hex digits into out, then a NUL: out holds 2n + 1 bytes. */
void dfnet_hex_encode(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_HEX_H */
