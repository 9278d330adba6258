/* A property key as a person writes it: in `dfnet node add-test --property`, in a board
 * file's properties and in `dfnet-bindc match KEY=VALUE`.
 *
 * A name that begins "fuchsia.BIND_" names one of Fuchsia's deprecated integer keys
 * (include/dfnet/bind_keys.h; docs/spec/bind.md): it must be one of them, or it is refused with
 * the nearest one (lib/suggest.h), so a misspelt key is not taken for a string key that no
 * bind rule tests. Any other text is a string key, left to the caller to check.
 *
 * Nothing is allocated; the key is borrowed for the call. Thread-safe (no state).
 */
#ifndef DFNET_LIB_BIND_KEY_NAME_H
#define DFNET_LIB_BIND_KEY_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Resolve `key`. true: *int_key is the deprecated key's number, or 0 when key is a string
 * key (it does not begin "fuchsia.BIND_"). false: key begins "fuchsia.BIND_" and is no
 * deprecated key; `why` gets "<key> is not a deprecated key of fuchsia (did you mean
 * '<nearest>'?)" (without the parenthesis when none is near), cut to cap - 1 bytes, and
 * *int_key is untouched. */
bool dfnet_bind_key_name_resolve(const char *key, uint32_t *int_key, char *why, size_t cap);

#endif /* DFNET_LIB_BIND_KEY_NAME_H */
