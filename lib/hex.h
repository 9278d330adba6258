/* Hexadecimal digits, read one way everywhere (docs/style.md 16): the CLI's --data-hex and
 * `serial write --hex`, and a package digest's 64 hex digits (lib/package.h).
 *
 * Threads: no state; any thread. */
#ifndef DFNET_LIB_HEX_H
#define DFNET_LIB_HEX_H

#ifdef __cplusplus
extern "C" {
#endif

/* The value of the hex digit c, 0..15 ('0'-'9', 'a'-'f', 'A'-'F'), or -1 for any other
 * character. */
int dfnet_hex_digit(char c);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_HEX_H */
