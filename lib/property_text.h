/* A node property written as text, `KEY=VALUE`: `dfnet node add-test --property` (as `ffx
 * driver test-node add` takes one) and `dfnet-bindc match` read it alike, so a property
 * tried offline is the property the fleet gets (docs/spec/bind.md "The trace").
 *
 *   KEY    a deprecated key fuchsia.BIND_* (an integer key; a misspelt one is refused with
 *          the nearest, lib/bind_key_name.h), a number 0..4294967295 (an integer key), or
 *          any other text (a string key: at most 127 bytes, no blank or control character);
 *   VALUE  a number (decimal or 0x hex, 0..4294967295: uint), true or false (bool), an
 *          enum value lib.KEY.VALUE (three or more dotted identifiers:
 *          "fuchsia.usb.BIND_PROTOCOL.DEVICE"), "a quoted string", or any other text (a
 *          string); a string or enum value is at most 255 bytes. An integer key takes a
 *          number only.
 *
 * The bounds are the wire's (proto/dfnet/v1/node.options: str_key 127, str_value and
 * enum_value 255), checked here so that a property is refused before anything is sent.
 * Thread-safe (no state); nothing is allocated.
 */
#ifndef DFNET_LIB_PROPERTY_TEXT_H
#define DFNET_LIB_PROPERTY_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "dfnet/bind.h"

/* The longest KEY=VALUE text, in bytes without the NUL: the longest key, '=', the longest
 * value quoted. */
#define DFNET_PROPERTY_TEXT_MAX (127 + 1 + 255 + 2)

/* Parse `text` (NUL-terminated, at most DFNET_PROPERTY_TEXT_MAX bytes) in place: the '='
 * and a quoted value's closing quote become NULs, and out's strings point into text, which
 * must outlive *out. true: *out is the property (bind form, include/dfnet/bind.h; convert
 * it with lib/property.h). false: a mistake; `why` (cap bytes, cut to fit) says what is
 * wrong and names the part ("'k=' has no value ...", "key '12x' is not a number ..."),
 * and text and *out are left in an unspecified state. */
bool dfnet_property_text_parse(char *text, dfnet_bind_property_t *out, char *why, size_t cap);

#endif /* DFNET_LIB_PROPERTY_TEXT_H */
