/* dfnet's version (version.h); DFNET_VERSION comes from the generated dfnet_version.h. */
#include "lib/version.h"

#include <stdio.h>

#include "dfnet_version.h"

const char *dfnet_version(void) { return DFNET_VERSION; }

const char *dfnet_version_software(void) { return "dfnet " DFNET_VERSION; }

void dfnet_version_print(const char *binary) { printf("%s %s\n", binary, DFNET_VERSION); }
