/* dfnet's version: one string for every binary and every Hello.
 *
 * It is CMake's project version, followed in a git checkout by `git describe --always
 * --dirty` as semver build metadata ("0.1.0+bbcd979-dirty"); outside one, the plain
 * "0.1.0". Generated at build time (cmake/DfnetVersion.cmake), so the five binaries of one
 * build print the same version. Thread-safe (constant data).
 */
#ifndef DFNET_LIB_VERSION_H
#define DFNET_LIB_VERSION_H

/* "0.1.0+bbcd979-dirty" (static storage). */
const char *dfnet_version(void);

/* "dfnet 0.1.0+bbcd979-dirty" (static storage): what a host agent and libdfnet-client send
 * as Hello.software_version, and what `dfnet host list` shows. */
const char *dfnet_version_software(void);

/* Print "<binary> <version>\n" to stdout: every binary's --version. */
void dfnet_version_print(const char *binary);

#endif /* DFNET_LIB_VERSION_H */
