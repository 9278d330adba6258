/* dfnet CLI: a node property written on the command line as `KEY=VALUE` (`node add-test
 * --property`, as `ffx driver test-node add` takes one), read as dfnet-bindc match reads
 * it (lib/property_text.h) and kept with its strings for the request. */
#include <stdio.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "lib/property.h"
#include "lib/property_text.h"

/* A text cut to fit is longer than any property, so it is refused as too long. */
_Static_assert(sizeof(((cli_property_arg_t *)0)->text) > DFNET_PROPERTY_TEXT_MAX + 1,
               "cli_property_arg_t.text holds the longest KEY=VALUE and one byte more");

bool cli__property_parse(const char *arg, cli_property_arg_t *out, char *why, size_t cap) {
  memset(out, 0, sizeof *out);
  snprintf(out->text, sizeof out->text, "%s", arg);
  dfnet_bind_property_t p;
  if (!dfnet_property_text_parse(out->text, &p, why, cap))
    return false;
  dfnet_property_to_client(&p, &out->prop);
  return true;
}
